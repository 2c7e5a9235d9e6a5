//! What a trained encoder's posterior looks like: per-latent KL, activity, the aggregate
//! posterior against the prior, and the correlation of the means. Pure functions of the μ and
//! log σ² of a sample of data images.

use serde::{Deserialize, Serialize};

/// Variance of μ_k over the data above which latent k counts as active (Burda, Grosse &
/// Salakhutdinov 2016, "Importance Weighted Autoencoders", § 5.2: `A_u = Cov_x(E_q[u])` > 10⁻²).
pub const ACTIVITY_THRESHOLD: f64 = 1e-2;

/// The posterior of a sample of n images, per latent and summarised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatentDiagnostics {
    /// Images the statistics are computed from.
    pub num_images: usize,
    /// E_x KL(q(z_k|x) ‖ N(0, 1)) per latent, in nats.
    pub kl_per_latent: Vec<f64>,
    /// Σ_k of the above: the rate E_x KL(q(z|x) ‖ N(0, I)) that the capacity C targets.
    pub total_kl: f64,
    /// Var_x μ_k per latent.
    pub mu_variance: Vec<f64>,
    /// Latents with Var_x μ_k > [`ACTIVITY_THRESHOLD`], in order.
    pub active: Vec<usize>,
    /// Number of active latents.
    pub active_latents: usize,
    /// Mean of the aggregate posterior q(z) = E_x q(z|x) per latent (the prior's is 0).
    pub aggregate_posterior_mean: Vec<f64>,
    /// Standard deviation of q(z) per latent, √(Var_x μ_k + E_x σ_k²) by the law of total
    /// variance (the prior's is 1).
    pub aggregate_posterior_std: Vec<f64>,
    /// KL(N(m, diag s²) ‖ N(0, I)) = ½ Σ_k (s_k² + m_k² − 1 − ln s_k²) for the moment-matched
    /// diagonal Gaussian of q(z): how far the aggregate posterior's first two moments are from
    /// the prior's. Our diagnostic; it is not a bound on KL(q(z) ‖ p(z)).
    pub aggregate_gaussian_kl: f64,
    /// Mean |corr(μ_j, μ_k)| over pairs of active latents (none with fewer than two).
    pub mean_abs_corr_mu: Option<f64>,
}

/// Diagnostics of `n` posteriors given row-major `mu` and `logvar` of shape `[n, k]`.
///
/// Returns `None` for fewer than two images, a `k` of zero or mismatched lengths.
pub fn latent_diagnostics(mu: &[f32], logvar: &[f32], k: usize) -> Option<LatentDiagnostics> {
    if k == 0 || mu.len() != logvar.len() || !mu.len().is_multiple_of(k) || mu.len() / k < 2 {
        return None;
    }
    let n = mu.len() / k;
    let mut kl_per_latent = Vec::with_capacity(k);
    let mut mu_mean = Vec::with_capacity(k);
    let mut mu_variance = Vec::with_capacity(k);
    let mut aggregate_posterior_std = Vec::with_capacity(k);
    for j in 0..k {
        let kl = latent_column(mu, j, k)
            .zip(latent_column(logvar, j, k))
            .map(|(m, lv)| 0.5 * (m * m + lv.exp() - 1.0 - lv))
            .sum::<f64>()
            / n as f64;
        let m = latent_column(mu, j, k).sum::<f64>() / n as f64;
        let var = latent_column(mu, j, k)
            .map(|v| (v - m).powi(2))
            .sum::<f64>()
            / n as f64;
        let mean_sigma2 = latent_column(logvar, j, k).map(f64::exp).sum::<f64>() / n as f64;
        kl_per_latent.push(kl);
        mu_mean.push(m);
        mu_variance.push(var);
        aggregate_posterior_std.push((var + mean_sigma2).sqrt());
    }
    let active: Vec<usize> = (0..k)
        .filter(|&j| mu_variance[j] > ACTIVITY_THRESHOLD)
        .collect();
    let aggregate_gaussian_kl = mu_mean
        .iter()
        .zip(&aggregate_posterior_std)
        .map(|(m, s)| 0.5 * (s * s + m * m - 1.0 - (s * s).ln()))
        .sum();
    let mut correlations = Vec::new();
    for (a, &i) in active.iter().enumerate() {
        for &j in &active[a + 1..] {
            let covariance = latent_column(mu, i, k)
                .zip(latent_column(mu, j, k))
                .map(|(x, y)| (x - mu_mean[i]) * (y - mu_mean[j]))
                .sum::<f64>()
                / n as f64;
            correlations.push((covariance / (mu_variance[i] * mu_variance[j]).sqrt()).abs());
        }
    }
    let mean_abs_corr_mu = (!correlations.is_empty())
        .then(|| correlations.iter().sum::<f64>() / correlations.len() as f64);
    Some(LatentDiagnostics {
        num_images: n,
        total_kl: kl_per_latent.iter().sum(),
        kl_per_latent,
        mu_variance,
        active_latents: active.len(),
        active,
        aggregate_posterior_mean: mu_mean,
        aggregate_posterior_std,
        aggregate_gaussian_kl,
        mean_abs_corr_mu,
    })
}

/// Latent `j` of row-major `[n, k]` values, widened to f64.
fn latent_column(values: &[f32], j: usize, k: usize) -> impl Iterator<Item = f64> + '_ {
    values.iter().skip(j).step_by(k).map(|&v| f64::from(v))
}

/// The traversal offsets of the α-TCVAE authors' evaluation, δ ∈ linspace(−25, 25, 11), applied
/// as z_k + δ·σ_k(x) (Cmeo97/benchmark_VAE @2777974, `src/pythae/pipelines/metrics.py`).
pub fn authors_traversal_offsets() -> Vec<f64> {
    (0..11).map(|j| -25.0 + 5.0 * j as f64).collect()
}

/// Codes of the traversals of one base code `z` (length k) with posterior standard deviations
/// `sigma`: for each latent in `latents`, one row of codes equal to `z` except z_k + δ·σ_k for
/// each δ of `offsets`.
pub fn posterior_traversal_codes(
    z: &[f32],
    sigma: &[f32],
    latents: &[usize],
    offsets: &[f64],
) -> Vec<f32> {
    let mut codes = Vec::with_capacity(latents.len() * offsets.len() * z.len());
    for &latent in latents {
        for &delta in offsets {
            let mut code = z.to_vec();
            code[latent] = (f64::from(z[latent]) + delta * f64::from(sigma[latent])) as f32;
            codes.extend(code);
        }
    }
    codes
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two latents: the first carries a factor (μ spread ±2, σ = 0.1), the second is the prior
    /// (μ = 0, σ = 1); a third copies the first with the opposite sign.
    fn codes() -> (Vec<f32>, Vec<f32>) {
        let mut mu = Vec::new();
        let mut logvar = Vec::new();
        for i in 0..100 {
            let m = if i % 2 == 0 { 2.0 } else { -2.0 };
            mu.extend([m, 0.0, -m]);
            logvar.extend([(0.01f32).ln(), 0.0, (0.01f32).ln()]);
        }
        (mu, logvar)
    }

    #[test]
    fn kl_activity_and_aggregate_moments_follow_their_definitions() {
        let (mu, logvar) = codes();
        let d = latent_diagnostics(&mu, &logvar, 3).expect("enough images");
        // KL of N(±2, 0.01) to N(0, 1): ½(4 + 0.01 − 1 − ln 0.01).
        let informative = 0.5 * (4.0 + 0.01 - 1.0 - 0.01f64.ln());
        assert!(
            (d.kl_per_latent[0] - informative).abs() < 1e-5,
            "{:?}",
            d.kl_per_latent
        );
        assert!(d.kl_per_latent[1].abs() < 1e-12);
        assert!((d.total_kl - 2.0 * informative).abs() < 1e-5);
        assert_eq!(d.active, vec![0, 2]);
        assert_eq!(d.active_latents, 2);
        // Var(z) = Var(μ) + E σ² = 4 + 0.01 for the informative latents, 1 for the prior one.
        assert!((d.aggregate_posterior_std[0] - 4.01f64.sqrt()).abs() < 1e-5);
        assert!((d.aggregate_posterior_std[1] - 1.0).abs() < 1e-12);
        // The prior latent adds nothing to the moment-matched KL.
        let per_latent = 0.5 * (4.01 - 1.0 - 4.01f64.ln());
        assert!((d.aggregate_gaussian_kl - 2.0 * per_latent).abs() < 1e-5);
        // Latents 0 and 2 are perfectly anti-correlated.
        assert!((d.mean_abs_corr_mu.expect("two active") - 1.0).abs() < 1e-9);
    }

    #[test]
    fn a_collapsed_code_has_no_active_latent_and_no_correlation() {
        let mu = vec![0.0f32; 20];
        let logvar = vec![0.0f32; 20];
        let d = latent_diagnostics(&mu, &logvar, 2).expect("enough images");
        assert_eq!(d.active_latents, 0);
        assert_eq!(d.mean_abs_corr_mu, None);
        assert!(d.total_kl.abs() < 1e-12 && d.aggregate_gaussian_kl.abs() < 1e-12);
        assert!(latent_diagnostics(&mu[..2], &logvar[..2], 2).is_none());
        assert!(latent_diagnostics(&mu, &logvar[..4], 2).is_none());
    }

    #[test]
    fn traversals_move_one_active_latent_by_delta_sigma() {
        let offsets = authors_traversal_offsets();
        assert_eq!(offsets.len(), 11);
        assert_eq!((offsets[0], offsets[5], offsets[10]), (-25.0, 0.0, 25.0));
        let codes =
            posterior_traversal_codes(&[1.0, 2.0, 3.0], &[0.1, 1.0, 0.5], &[0, 2], &offsets);
        assert_eq!(codes.len(), 2 * 11 * 3);
        // First row: latent 0 from 1 − 2.5 to 1 + 2.5, the others fixed.
        assert!((codes[0] - (1.0 - 2.5)).abs() < 1e-6 && codes[1] == 2.0 && codes[2] == 3.0);
        let last = &codes[codes.len() - 3..];
        assert!(last[0] == 1.0 && last[1] == 2.0 && (last[2] - (3.0 + 12.5)).abs() < 1e-6);
    }
}
