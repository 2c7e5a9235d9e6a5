//! Statistics helpers for reports: Welch's unequal-variance t-test between two samples of
//! scores (e.g. one metric over the seeds of two methods).

use crate::MetricsError;

/// The result of [`welch_t_test`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WelchTest {
    /// `mean(a) − mean(b)`.
    pub mean_difference: f64,
    /// The t statistic `(mean(a) − mean(b)) / sqrt(s_a²/n_a + s_b²/n_b)`.
    pub t: f64,
    /// The Welch–Satterthwaite degrees of freedom (not an integer in general).
    pub degrees_of_freedom: f64,
    /// Two-sided p-value `P(|T| ≥ |t|)` for `T` Student-t with
    /// [`degrees_of_freedom`](Self::degrees_of_freedom).
    pub p_value: f64,
}

/// Welch's two-sample t-test of equal means without assuming equal variances.
///
/// With sample means `ā`, `b̄`, sample variances `s_a²`, `s_b²` (divisor `n − 1`) and sizes
/// `n_a`, `n_b`, and `v_a = s_a²/n_a`, `v_b = s_b²/n_b`:
///
/// ```text
/// t = (ā − b̄) / sqrt(v_a + v_b)
/// ν = (v_a + v_b)² / (v_a²/(n_a − 1) + v_b²/(n_b − 1))          (Welch–Satterthwaite)
/// p = P(|T_ν| ≥ |t|) = I_{ν/(ν+t²)}(ν/2, 1/2)
/// ```
///
/// where `I_x(a, b)` is the regularised incomplete beta function (evaluated by its continued
/// fraction, modified Lentz's method). Sources: B. L. Welch, "The generalization of 'Student's'
/// problem when several different population variances are involved", Biometrika 34 (1947),
/// 28–35; F. E. Satterthwaite, "An approximate distribution of estimates of variance
/// components", Biometrics Bulletin 2 (1946), 110–114. The result equals
/// `scipy.stats.ttest_ind(a, b, equal_var=False)` (see `reference/welch_t_test_scipy.json`).
///
/// One constant sample is fine (its variance term is 0).
///
/// # Errors
/// [`MetricsError::SampleTooSmall`] if a sample has fewer than 2 values,
/// [`MetricsError::NonFiniteSample`] if a value is NaN or infinite,
/// [`MetricsError::ZeroVariance`] if both samples are constant (t is undefined), and
/// [`MetricsError::Numerical`] if a mean or variance overflows.
///
/// ```
/// use infobound_metrics::welch_t_test;
/// let test = welch_t_test(&[0.61, 0.64, 0.66], &[0.52, 0.55, 0.51])?;
/// assert!((test.mean_difference - 0.11).abs() < 1e-12);
/// assert!(test.p_value < 0.01);
/// # Ok::<(), infobound_metrics::MetricsError>(())
/// ```
pub fn welch_t_test(a: &[f64], b: &[f64]) -> Result<WelchTest, MetricsError> {
    let (mean_a, var_a) = mean_and_variance("a", a)?;
    let (mean_b, var_b) = mean_and_variance("b", b)?;
    if var_a == 0.0 && var_b == 0.0 {
        return Err(MetricsError::ZeroVariance { mean_a, mean_b });
    }
    let (n_a, n_b) = (a.len() as f64, b.len() as f64);
    let (v_a, v_b) = (var_a / n_a, var_b / n_b);
    let standard_error_squared = v_a + v_b;
    let mean_difference = mean_a - mean_b;
    let t = mean_difference / standard_error_squared.sqrt();
    let degrees_of_freedom = standard_error_squared * standard_error_squared
        / (v_a * v_a / (n_a - 1.0) + v_b * v_b / (n_b - 1.0));
    if !t.is_finite() || !degrees_of_freedom.is_finite() {
        return Err(MetricsError::Numerical(format!(
            "Welch t-test: t = {t}, degrees of freedom = {degrees_of_freedom} \
             (means {mean_a}, {mean_b}; variances {var_a}, {var_b})"
        )));
    }
    let p_value = student_t_two_sided_p(t, degrees_of_freedom);
    Ok(WelchTest {
        mean_difference,
        t,
        degrees_of_freedom,
        p_value,
    })
}

/// Mean and sample variance (divisor `n − 1`) of `values`, the moments [`welch_t_test`]
/// compares.
///
/// # Errors
/// [`MetricsError::SampleTooSmall`] below two values, [`MetricsError::NonFiniteSample`] for
/// NaN / ±∞, [`MetricsError::Numerical`] on overflow.
pub fn sample_mean_and_variance(values: &[f64]) -> Result<(f64, f64), MetricsError> {
    mean_and_variance("values", values)
}

/// Mean and sample variance (divisor `n − 1`) of `values`, checked.
fn mean_and_variance(sample: &'static str, values: &[f64]) -> Result<(f64, f64), MetricsError> {
    if values.len() < 2 {
        return Err(MetricsError::SampleTooSmall {
            sample,
            len: values.len(),
        });
    }
    if let Some((index, &value)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(MetricsError::NonFiniteSample {
            sample,
            index,
            value,
        });
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let variance = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (n - 1.0);
    if !mean.is_finite() || !variance.is_finite() {
        return Err(MetricsError::Numerical(format!(
            "sample {sample}: mean {mean}, variance {variance} overflow"
        )));
    }
    Ok((mean, variance))
}

/// `P(|T| ≥ |t|)` for Student's t with `dof` degrees of freedom: `I_x(dof/2, 1/2)` with
/// `x = dof/(dof + t²)`; `1 − x = t²/(dof + t²)` is computed directly so neither tail loses
/// precision to cancellation.
fn student_t_two_sided_p(t: f64, dof: f64) -> f64 {
    let t2 = t * t;
    let x = dof / (dof + t2);
    let y = t2 / (dof + t2);
    regularized_incomplete_beta(dof / 2.0, 0.5, x, y).clamp(0.0, 1.0)
}

/// The regularised incomplete beta function `I_x(a, b)` for `a, b > 0`, `x ∈ [0, 1]`, given
/// `y = 1 − x` separately.
///
/// `I_x(a, b) = x^a y^b / (a B(a, b)) · 1/(1+ d₁/(1+ d₂/(1+ …)))` with
/// `d_{2m+1} = −(a+m)(a+b+m) x / ((a+2m)(a+2m+1))`, `d_{2m} = m(b−m) x / ((a+2m−1)(a+2m))`
/// (Abramowitz & Stegun 26.5.8), which converges fast for `x < (a+1)/(a+b+2)`; otherwise
/// `I_x(a, b) = 1 − I_y(b, a)`.
fn regularized_incomplete_beta(a: f64, b: f64, x: f64, y: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if y <= 0.0 {
        return 1.0;
    }
    let log_front = a * x.ln() + b * y.ln() - ln_beta(a, b);
    if x < (a + 1.0) / (a + b + 2.0) {
        log_front.exp() * beta_continued_fraction(a, b, x) / a
    } else {
        1.0 - log_front.exp() * beta_continued_fraction(b, a, y) / b
    }
}

/// The continued fraction of [`regularized_incomplete_beta`] by the modified Lentz method
/// (W. J. Lentz 1976; Thompson & Barnett 1986), as in Numerical Recipes §6.4 `betacf`.
fn beta_continued_fraction(a: f64, b: f64, x: f64) -> f64 {
    // Our choice: stop when a step changes the value by less than 1e-15 relative (a few ulps,
    // as Numerical Recipes' `EPS`), within 10 000 terms; the fraction needs O(sqrt(max(a, b)))
    // terms, so the cap is never reached for the degrees of freedom a report produces.
    const EPSILON: f64 = 1e-15;
    const TINY: f64 = 1e-300;
    const MAX_TERMS: usize = 10_000;
    let clamp_tiny = |v: f64| if v.abs() < TINY { TINY } else { v };
    let mut c = 1.0;
    let mut d = 1.0 / clamp_tiny(1.0 - (a + b) * x / (a + 1.0));
    let mut h = d;
    for m in 1..=MAX_TERMS {
        let m = m as f64;
        let m2 = 2.0 * m;
        let even = m * (b - m) * x / ((a + m2 - 1.0) * (a + m2));
        d = 1.0 / clamp_tiny(1.0 + even * d);
        c = clamp_tiny(1.0 + even / c);
        h *= d * c;
        let odd = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1.0));
        d = 1.0 / clamp_tiny(1.0 + odd * d);
        c = clamp_tiny(1.0 + odd / c);
        let step = d * c;
        h *= step;
        if (step - 1.0).abs() < EPSILON {
            break;
        }
    }
    h
}

/// `ln B(a, b) = ln Γ(a) + ln Γ(b) − ln Γ(a + b)`.
fn ln_beta(a: f64, b: f64) -> f64 {
    ln_gamma(a) + ln_gamma(b) - ln_gamma(a + b)
}

/// `ln Γ(x)` for `x > 0` by the Lanczos approximation with `g = 7` and 9 coefficients
/// (C. Lanczos, SIAM J. Numer. Anal. B 1 (1964) 86–96; coefficients as tabulated by
/// P. Godfrey), relative error about 1e-15; `x < 0.5` goes through the reflection
/// `Γ(x) Γ(1 − x) = π / sin(πx)`.
fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const COEFFICIENTS: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut sum = COEFFICIENTS[0];
    for (i, &c) in COEFFICIENTS.iter().enumerate().skip(1) {
        sum += c / (x + i as f64);
    }
    let t = x + G + 0.5;
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ln_gamma_matches_factorials_and_half() {
        // Γ(n) = (n − 1)!, Γ(1/2) = √π.
        let mut factorial = 1.0_f64;
        for n in 1..30 {
            let expected = factorial.ln();
            let got = ln_gamma(n as f64);
            assert!(
                (got - expected).abs() <= 1e-13 * expected.abs().max(1.0),
                "ln Γ({n}) = {got}, expected {expected}"
            );
            factorial *= n as f64;
        }
        let half = ln_gamma(0.5);
        assert!((half - std::f64::consts::PI.sqrt().ln()).abs() < 1e-14);
    }

    #[test]
    fn incomplete_beta_has_closed_forms() {
        // I_x(a, 1) = x^a and I_x(1, b) = 1 − (1 − x)^b.
        for &x in &[0.01, 0.3, 0.5, 0.77, 0.999] {
            for &a in &[0.5, 1.0, 2.5, 17.0] {
                let got = regularized_incomplete_beta(a, 1.0, x, 1.0 - x);
                let expected = x.powf(a);
                assert!((got - expected).abs() < 1e-13, "I_{x}({a}, 1) = {got}");
                let got = regularized_incomplete_beta(1.0, a, x, 1.0 - x);
                let expected = 1.0 - (1.0 - x).powf(a);
                assert!((got - expected).abs() < 1e-13, "I_{x}(1, {a}) = {got}");
            }
        }
    }

    #[test]
    fn student_t_with_one_degree_of_freedom_is_cauchy() {
        // P(|T₁| ≥ t) = 1 − 2 atan(t)/π.
        for &t in &[0.0, 0.1, 1.0, 3.0, 50.0] {
            let expected = 1.0 - 2.0 * f64::atan(t) / std::f64::consts::PI;
            let got = student_t_two_sided_p(t, 1.0);
            assert!(
                (got - expected).abs() < 1e-13,
                "t = {t}: {got} vs {expected}"
            );
        }
    }

    #[test]
    fn swapping_samples_flips_the_sign_only() {
        let a = [1.0, 2.0, 4.0, 3.5];
        let b = [0.5, 0.7, 0.2];
        let ab = welch_t_test(&a, &b).expect("valid samples");
        let ba = welch_t_test(&b, &a).expect("valid samples");
        assert_eq!(ab.mean_difference, -ba.mean_difference);
        assert_eq!(ab.t, -ba.t);
        assert_eq!(ab.degrees_of_freedom, ba.degrees_of_freedom);
        assert_eq!(ab.p_value, ba.p_value);
    }

    #[test]
    fn typed_errors_name_the_sample() {
        assert!(matches!(
            welch_t_test(&[1.0], &[1.0, 2.0]),
            Err(MetricsError::SampleTooSmall {
                sample: "a",
                len: 1
            })
        ));
        assert!(matches!(
            welch_t_test(&[1.0, 2.0], &[]),
            Err(MetricsError::SampleTooSmall {
                sample: "b",
                len: 0
            })
        ));
        assert!(matches!(
            welch_t_test(&[1.0, 2.0], &[1.0, f64::NAN, 3.0]),
            Err(MetricsError::NonFiniteSample {
                sample: "b",
                index: 1,
                ..
            })
        ));
        assert!(matches!(
            welch_t_test(&[1.0, 1.0], &[2.0, 2.0, 2.0]),
            Err(MetricsError::ZeroVariance { mean_a, mean_b }) if mean_a == 1.0 && mean_b == 2.0
        ));
        assert!(matches!(
            welch_t_test(&[1e308, -1e308], &[0.0, 1.0]),
            Err(MetricsError::Numerical(_))
        ));
    }
}
