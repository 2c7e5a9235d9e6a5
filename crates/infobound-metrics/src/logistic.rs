//! L2-regularised multinomial logistic regression, the classifier behind the β-VAE score, the
//! explicitness score and the linear probe (scikit-learn's `LogisticRegression` defaults:
//! C = 1, intercept not penalised).
//!
//! For classes `c_1 < … < c_K` and weights `W` (K × d) and intercepts `b`, `p(c_k | x) =
//! softmax_k(W x + b)`. The fit minimises the scikit-learn objective divided by `C·n`:
//!
//! `L(W, b) = (1/n) Σ_i −log p(y_i | x_i) + ‖W‖² / (2 C n)`.
//!
//! With two classes the first class's logit is fixed at 0 and one weight vector is fitted, which is
//! exactly binary logistic regression. The solver is L-BFGS (Nocedal & Wright, alg. 7.4–7.5,
//! memory 10) with a backtracking Armijo line search, from a zero start; the loss and gradient are
//! summed over fixed-size row chunks in a fixed order, so fits are bit-for-bit reproducible.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::{CodeMatrix, MetricsError};

/// Rows per chunk of the parallel loss/gradient sum (fixed, so the summation order is too).
const CHUNK_ROWS: usize = 1024;
/// Pairs kept by L-BFGS.
const LBFGS_MEMORY: usize = 10;
/// Armijo sufficient-decrease constant.
const ARMIJO: f64 = 1e-4;
/// Step halvings tried before the line search gives up.
const MAX_BACKTRACKS: usize = 60;

/// Parameters of the logistic-regression fit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LogisticRegressionConfig {
    /// Inverse L2 strength C (scikit-learn's `C`, default 1).
    pub inverse_regularization: f64,
    /// L-BFGS iteration cap.
    pub max_iterations: usize,
    /// Stop when the largest absolute gradient entry of `L` is at most this.
    pub gradient_tolerance: f64,
    /// Stop when an iteration lowers `L` by less than this fraction of `max(|L|, 1)`.
    pub relative_loss_tolerance: f64,
}

impl Default for LogisticRegressionConfig {
    fn default() -> Self {
        Self {
            inverse_regularization: 1.0,
            max_iterations: 1000,
            gradient_tolerance: 1e-6,
            relative_loss_tolerance: 1e-12,
        }
    }
}

/// How the fit ended.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FitSummary {
    /// L-BFGS iterations taken.
    pub iterations: usize,
    /// Whether a tolerance was met before the iteration cap.
    pub converged: bool,
    /// Final value of `L`.
    pub loss: f64,
}

/// A fitted multinomial logistic-regression model.
#[derive(Debug, Clone, PartialEq)]
pub struct LogisticRegression {
    classes: Vec<usize>,
    num_features: usize,
    /// Row-major `rows × (d + 1)`: weights then intercept; `rows` is K, or 1 for two classes.
    parameters: Vec<f64>,
    summary: FitSummary,
}

/// The problem the optimiser sees.
struct Objective<'a> {
    x: &'a CodeMatrix,
    targets: Vec<usize>,
    num_classes: usize,
    rows: usize,
    penalty: f64,
}

impl Objective<'_> {
    fn width(&self) -> usize {
        self.x.num_codes() + 1
    }

    /// `L` and its gradient at `params`.
    fn evaluate(&self, params: &[f64]) -> (f64, Vec<f64>) {
        let n = self.x.num_samples();
        let width = self.width();
        let partials: Vec<(f64, Vec<f64>)> = (0..n)
            .step_by(CHUNK_ROWS)
            .collect::<Vec<_>>()
            .into_par_iter()
            .map(|start| {
                let mut loss = 0.0;
                let mut grad = vec![0.0; params.len()];
                let mut logits = vec![0.0; self.num_classes];
                for i in start..(start + CHUNK_ROWS).min(n) {
                    let xi = self.x.row(i);
                    logits_into(params, self.rows, xi, &mut logits);
                    let lse = log_sum_exp(&logits);
                    let y = self.targets[i];
                    loss += lse - logits[y];
                    let offset = self.num_classes - self.rows;
                    for r in 0..self.rows {
                        let k = r + offset;
                        let residual = (logits[k] - lse).exp() - f64::from(u8::from(k == y));
                        let g = &mut grad[r * width..(r + 1) * width];
                        g[..width - 1]
                            .iter_mut()
                            .zip(xi)
                            .for_each(|(g, &v)| *g += residual * v);
                        g[width - 1] += residual;
                    }
                }
                (loss, grad)
            })
            .collect();
        let mut loss = 0.0;
        let mut grad = vec![0.0; params.len()];
        for (l, g) in partials {
            loss += l;
            grad.iter_mut().zip(&g).for_each(|(a, b)| *a += b);
        }
        let inv_n = 1.0 / n as f64;
        loss *= inv_n;
        grad.iter_mut().for_each(|g| *g *= inv_n);
        for r in 0..self.rows {
            for j in 0..width - 1 {
                let w = params[r * width + j];
                loss += 0.5 * self.penalty * w * w;
                grad[r * width + j] += self.penalty * w;
            }
        }
        (loss, grad)
    }
}

/// Class logits for one row; with a single parameter row (binary) class 0's logit is 0.
fn logits_into(params: &[f64], rows: usize, x: &[f64], logits: &mut [f64]) {
    let width = x.len() + 1;
    let offset = logits.len() - rows;
    logits[..offset].fill(0.0);
    for r in 0..rows {
        let p = &params[r * width..(r + 1) * width];
        logits[r + offset] = p[width - 1]
            + p[..width - 1]
                .iter()
                .zip(x)
                .map(|(w, v)| w * v)
                .sum::<f64>();
    }
}

fn log_sum_exp(v: &[f64]) -> f64 {
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    max + v.iter().map(|x| (x - max).exp()).sum::<f64>().ln()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// L-BFGS two-loop recursion: `−H g` from the stored `(s, y)` pairs.
fn lbfgs_direction(grad: &[f64], history: &[(Vec<f64>, Vec<f64>)]) -> Vec<f64> {
    let mut q: Vec<f64> = grad.iter().map(|g| -g).collect();
    let mut alphas = Vec::with_capacity(history.len());
    for (s, y) in history.iter().rev() {
        let alpha = dot(s, &q) / dot(y, s);
        q.iter_mut().zip(y).for_each(|(q, y)| *q -= alpha * y);
        alphas.push(alpha);
    }
    if let Some((s, y)) = history.last() {
        let gamma = dot(s, y) / dot(y, y);
        q.iter_mut().for_each(|q| *q *= gamma);
    }
    for ((s, y), alpha) in history.iter().zip(alphas.iter().rev()) {
        let beta = dot(y, &q) / dot(y, s);
        q.iter_mut()
            .zip(s)
            .for_each(|(q, s)| *q += (alpha - beta) * s);
    }
    q
}

fn minimise(
    objective: &Objective<'_>,
    config: &LogisticRegressionConfig,
) -> (Vec<f64>, FitSummary) {
    let mut params = vec![0.0; objective.rows * objective.width()];
    let (mut loss, mut grad) = objective.evaluate(&params);
    let mut history: Vec<(Vec<f64>, Vec<f64>)> = Vec::with_capacity(LBFGS_MEMORY);
    let inf_norm = |g: &[f64]| g.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let mut iterations = 0;
    let mut converged = inf_norm(&grad) <= config.gradient_tolerance;
    while !converged && iterations < config.max_iterations {
        iterations += 1;
        let mut direction = lbfgs_direction(&grad, &history);
        let mut slope = dot(&grad, &direction);
        if slope >= 0.0 {
            history.clear();
            direction = grad.iter().map(|g| -g).collect();
            slope = dot(&grad, &direction);
        }
        let mut step = if history.is_empty() {
            (1.0 / dot(&grad, &grad).sqrt()).min(1.0)
        } else {
            1.0
        };
        let mut accepted = None;
        for _ in 0..MAX_BACKTRACKS {
            let trial: Vec<f64> = params
                .iter()
                .zip(&direction)
                .map(|(p, d)| p + step * d)
                .collect();
            let (trial_loss, trial_grad) = objective.evaluate(&trial);
            if trial_loss <= loss + ARMIJO * step * slope {
                accepted = Some((trial, trial_loss, trial_grad));
                break;
            }
            step *= 0.5;
        }
        let Some((trial, trial_loss, trial_grad)) = accepted else {
            // No decrease along a descent direction: the loss is flat to machine precision.
            converged = true;
            break;
        };
        let s: Vec<f64> = trial.iter().zip(&params).map(|(a, b)| a - b).collect();
        let y: Vec<f64> = trial_grad.iter().zip(&grad).map(|(a, b)| a - b).collect();
        if dot(&s, &y) > 1e-16 * dot(&y, &y).max(f64::MIN_POSITIVE) {
            if history.len() == LBFGS_MEMORY {
                history.remove(0);
            }
            history.push((s, y));
        }
        let decrease = loss - trial_loss;
        params = trial;
        grad = trial_grad;
        converged = inf_norm(&grad) <= config.gradient_tolerance
            || decrease <= config.relative_loss_tolerance * loss.abs().max(1.0);
        loss = trial_loss;
    }
    (
        params,
        FitSummary {
            iterations,
            converged,
            loss,
        },
    )
}

impl LogisticRegression {
    /// Fits the model to the rows of `x` with class labels `labels` (any `usize` values; at least two
    /// distinct ones).
    pub fn fit(
        x: &CodeMatrix,
        labels: &[usize],
        config: &LogisticRegressionConfig,
    ) -> Result<Self, MetricsError> {
        if labels.len() != x.num_samples() {
            return Err(MetricsError::ShapeMismatch(format!(
                "{} rows but {} labels",
                x.num_samples(),
                labels.len()
            )));
        }
        if !(config.inverse_regularization.is_finite() && config.inverse_regularization > 0.0) {
            return Err(MetricsError::InvalidParameter(format!(
                "inverse regularisation C must be positive, got {}",
                config.inverse_regularization
            )));
        }
        let mut classes = labels.to_vec();
        classes.sort_unstable();
        classes.dedup();
        if classes.len() < 2 {
            return Err(MetricsError::InvalidInput(format!(
                "logistic regression needs at least two classes, got {}",
                classes.len()
            )));
        }
        let targets = labels
            .iter()
            .map(|l| classes.binary_search(l).unwrap_or_default())
            .collect();
        let num_classes = classes.len();
        let objective = Objective {
            x,
            targets,
            num_classes,
            rows: if num_classes == 2 { 1 } else { num_classes },
            penalty: 1.0 / (config.inverse_regularization * x.num_samples() as f64),
        };
        let (parameters, summary) = minimise(&objective, config);
        Ok(Self {
            classes,
            num_features: x.num_codes(),
            parameters,
            summary,
        })
    }

    /// The class labels, ascending; column k of the probabilities belongs to `classes()[k]`.
    pub fn classes(&self) -> &[usize] {
        &self.classes
    }

    /// How the fit ended.
    pub fn summary(&self) -> FitSummary {
        self.summary
    }

    fn check_width(&self, x: &CodeMatrix) -> Result<(), MetricsError> {
        if x.num_codes() == self.num_features {
            Ok(())
        } else {
            Err(MetricsError::ShapeMismatch(format!(
                "model fitted on {} features, given {}",
                self.num_features,
                x.num_codes()
            )))
        }
    }

    /// Class logits `W x + b`, row-major n × K (with two classes, class 0's logit is 0).
    pub fn decision_function(&self, x: &CodeMatrix) -> Result<Vec<f64>, MetricsError> {
        self.check_width(x)?;
        let k = self.classes.len();
        let rows = self.parameters.len() / (self.num_features + 1);
        let mut out = vec![0.0; x.num_samples() * k];
        for (xi, logits) in x.rows().zip(out.chunks_exact_mut(k)) {
            logits_into(&self.parameters, rows, xi, logits);
        }
        Ok(out)
    }

    /// Class probabilities, row-major n × K.
    pub fn predict_proba(&self, x: &CodeMatrix) -> Result<Vec<f64>, MetricsError> {
        let mut out = self.decision_function(x)?;
        for logits in out.chunks_exact_mut(self.classes.len()) {
            let lse = log_sum_exp(logits);
            logits.iter_mut().for_each(|l| *l = (*l - lse).exp());
        }
        Ok(out)
    }

    /// Most probable class of each row (ties to the smaller label).
    pub fn predict(&self, x: &CodeMatrix) -> Result<Vec<usize>, MetricsError> {
        let logits = self.decision_function(x)?;
        Ok(logits
            .chunks_exact(self.classes.len())
            .map(|l| {
                let best = l
                    .iter()
                    .enumerate()
                    .fold(
                        (0, f64::NEG_INFINITY),
                        |b, (i, &v)| if v > b.1 { (i, v) } else { b },
                    );
                self.classes[best.0]
            })
            .collect())
    }

    /// Fraction of rows of `x` whose predicted class equals `labels`.
    pub fn accuracy(&self, x: &CodeMatrix, labels: &[usize]) -> Result<f64, MetricsError> {
        if labels.len() != x.num_samples() || labels.is_empty() {
            return Err(MetricsError::ShapeMismatch(format!(
                "{} rows but {} labels (need at least one)",
                x.num_samples(),
                labels.len()
            )));
        }
        let predicted = self.predict(x)?;
        let correct = predicted.iter().zip(labels).filter(|(p, l)| p == l).count();
        Ok(correct as f64 / labels.len() as f64)
    }
}
