//! L2-regularised squared-hinge linear SVM on one feature plus a regularised bias (liblinear's
//! `L2R_L2LOSS_SVC` problem behind scikit-learn's `LinearSVC`, `intercept_scaling = 1`), one-vs-rest
//! for more than two classes, with `class_weight="balanced"`. With two unknowns the primal is
//! solved directly by a finite Newton method instead of liblinear's dual coordinate descent
//! (Hsieh et al., ICML 2008): both reach the same unique optimum, Newton in a few passes.

/// Solver settings (scikit-learn `LinearSVC` defaults: `tol = 1e-4`, `max_iter = 1000`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct SvmSettings {
    /// Regularisation constant `C` of `min_w ½‖w‖² + Σ_i C_i max(0, 1 − y_i wᵀx_i)²`.
    pub c: f64,
    /// Stop when the gradient norm falls below this fraction of its initial value.
    pub tolerance: f64,
    /// Maximum number of Newton steps.
    pub max_iter: usize,
}

/// A trained one-feature classifier: one `(weight, bias)` per class (one-vs-rest), or a single
/// pair for two classes (positive = the second class), as liblinear stores it.
pub(crate) struct OneFeatureSvm {
    classes: Vec<usize>,
    planes: Vec<(f64, f64)>,
}

impl OneFeatureSvm {
    /// Fits on `x` (one feature) and labels `y`; `y` must hold at least two distinct labels.
    pub(crate) fn fit(x: &[f64], y: &[usize], settings: SvmSettings) -> Self {
        let mut classes = y.to_vec();
        classes.sort_unstable();
        classes.dedup();
        let n = y.len() as f64;
        // Balanced weights n / (K n_c) multiply C per sample.
        let weights: Vec<f64> = classes
            .iter()
            .map(|c| n / (classes.len() as f64 * y.iter().filter(|&v| v == c).count() as f64))
            .collect();
        let cost: Vec<f64> = y
            .iter()
            .map(|v| settings.c * weights[classes.partition_point(|c| c < v)])
            .collect();
        let positives: Vec<usize> = if classes.len() == 2 {
            vec![classes[1]]
        } else {
            classes.clone()
        };
        let planes = positives
            .iter()
            .map(|&positive| {
                let signs: Vec<f64> = y
                    .iter()
                    .map(|&v| if v == positive { 1.0 } else { -1.0 })
                    .collect();
                primal_newton(x, &signs, &cost, settings)
            })
            .collect();
        Self { classes, planes }
    }

    /// The predicted label of `x`: the class whose decision value `w x + b` is largest (sign for
    /// two classes).
    pub(crate) fn predict(&self, x: f64) -> usize {
        if self.planes.len() == 1 {
            let (w, b) = self.planes[0];
            return if w * x + b > 0.0 {
                self.classes[1]
            } else {
                self.classes[0]
            };
        }
        let mut best = 0;
        let mut best_value = f64::NEG_INFINITY;
        for (k, &(w, b)) in self.planes.iter().enumerate() {
            let value = w * x + b;
            if value > best_value {
                best_value = value;
                best = k;
            }
        }
        self.classes[best]
    }
}

/// Minimises the primal `f(w̃) = ½‖w̃‖² + Σ_i C_i max(0, 1 − y_i w̃ᵀx̃_i)²` over `w̃ = (w, b)`,
/// `x̃_i = (x_i, 1)`, by generalised Newton steps `−H⁻¹∇f` with
/// `∇f = w̃ − 2 Σ_{i∈A} C_i y_i (1 − y_i w̃ᵀx̃_i) x̃_i`, `H = I + 2 Σ_{i∈A} C_i x̃_i x̃_iᵀ` over the
/// margin violators `A`, and Armijo backtracking (Mangasarian, "A finite Newton method for
/// classification", 2002). `f` is strictly convex, so this is the unique optimum that liblinear's
/// dual coordinate descent approaches; the stopping rule is `‖∇f‖ ≤ tolerance · ‖∇f(0)‖`.
fn primal_newton(
    x: &[f64],
    signs: &[f64],
    cost: &[f64],
    settings: SvmSettings,
) -> (f64, f64) {
    let objective = |w: f64, b: f64| {
        0.5 * (w * w + b * b)
            + x.iter()
                .zip(signs)
                .zip(cost)
                .map(|((&xi, &yi), &ci)| {
                    let slack = (1.0 - yi * (w * xi + b)).max(0.0);
                    ci * slack * slack
                })
                .sum::<f64>()
    };
    let (mut w, mut b) = (0.0, 0.0);
    let mut initial_norm = None;
    for _ in 0..settings.max_iter {
        let (mut gw, mut gb) = (w, b);
        let (mut hww, mut hwb, mut hbb) = (1.0, 0.0, 1.0);
        for ((&xi, &yi), &ci) in x.iter().zip(signs).zip(cost) {
            let slack = 1.0 - yi * (w * xi + b);
            if slack > 0.0 {
                gw -= 2.0 * ci * yi * slack * xi;
                gb -= 2.0 * ci * yi * slack;
                hww += 2.0 * ci * xi * xi;
                hwb += 2.0 * ci * xi;
                hbb += 2.0 * ci;
            }
        }
        let norm = gw.hypot(gb);
        let reference = *initial_norm.get_or_insert(norm);
        if norm <= settings.tolerance * reference || norm == 0.0 {
            break;
        }
        let det = hww * hbb - hwb * hwb;
        let (dw, db) = (-(hbb * gw - hwb * gb) / det, -(hww * gb - hwb * gw) / det);
        let current = objective(w, b);
        let slope = gw * dw + gb * db;
        let mut step = 1.0;
        while step > 1e-12 && objective(w + step * dw, b + step * db) > current + 0.01 * step * slope
        {
            step *= 0.5;
        }
        w += step * dw;
        b += step * db;
    }
    (w, b)
}
