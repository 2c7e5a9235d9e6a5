//! Lasso regression by cyclic coordinate descent (Friedman, Hastie, Tibshirani, "Regularization
//! Paths for Generalized Linear Models via Coordinate Descent", J. Stat. Softw. 2010), minimising
//! scikit-learn's `Lasso` objective `(1/2n)‖y − Xw − b‖² + α‖w‖₁` with an unpenalised intercept.

/// Coefficients `w` of the Lasso fit of `y` on the columns of `x` (column-major `x[j][i]`).
///
/// Coordinate update on centred data: `w_j ← S(x_jᵀ r_j / n, α) / (x_jᵀx_j / n)` with
/// `r_j = y − Σ_{l≠j} x_l w_l` and `S(a, α) = sign(a) max(|a| − α, 0)`; stops when no coefficient
/// moves by more than `tolerance` in a sweep, or after `max_iter` sweeps.
pub(crate) fn lasso_coefficients(
    x: &[Vec<f64>],
    y: &[f64],
    alpha: f64,
    tolerance: f64,
    max_iter: usize,
) -> Vec<f64> {
    let n = y.len() as f64;
    let centred: Vec<Vec<f64>> = x
        .iter()
        .map(|col| {
            let mean = col.iter().sum::<f64>() / n;
            col.iter().map(|v| v - mean).collect()
        })
        .collect();
    let y_mean = y.iter().sum::<f64>() / n;
    let mut residual: Vec<f64> = y.iter().map(|v| v - y_mean).collect();
    let norms: Vec<f64> = centred
        .iter()
        .map(|col| col.iter().map(|v| v * v).sum::<f64>() / n)
        .collect();
    let mut w = vec![0.0; x.len()];
    for _ in 0..max_iter {
        let mut largest_step: f64 = 0.0;
        for (j, col) in centred.iter().enumerate() {
            if norms[j] == 0.0 {
                continue;
            }
            let rho =
                col.iter().zip(&residual).map(|(a, r)| a * r).sum::<f64>() / n + norms[j] * w[j];
            let updated = rho.signum() * (rho.abs() - alpha).max(0.0) / norms[j];
            let step = updated - w[j];
            if step != 0.0 {
                residual
                    .iter_mut()
                    .zip(col)
                    .for_each(|(r, a)| *r -= step * a);
                w[j] = updated;
            }
            largest_step = largest_step.max(step.abs());
        }
        if largest_step <= tolerance {
            break;
        }
    }
    w
}
