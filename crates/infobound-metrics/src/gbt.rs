//! Gradient-boosted regression trees for classification (Friedman, "Greedy Function
//! Approximation: A Gradient Boosting Machine", Ann. Statist. 2001), following scikit-learn
//! 1.9.1's `GradientBoostingClassifier` with its defaults (`sklearn/ensemble/_gb.py`):
//!
//! - prior initialisation: `F_0 = logit(p_1)` (computed as scipy does) for two classes, the symmetric multinomial link
//!   `F_0k = log(p_k / (Π_j p_j)^{1/K})` otherwise, with the class frequencies `p` clipped to
//!   `[ε, 1 − ε]` (`_init_raw_predictions`);
//! - per stage the negative gradient of the half binomial / half multinomial deviance,
//!   `r_ik = [y_i = k] − p_ik`, computed once from the stage's start (`_fit_stage`);
//! - one regression tree per class (one in total for two classes) fitted to `r_·k` by squared
//!   error (scikit-learn 1.9 grows its boosting trees with `criterion="squared_error"`; its
//!   deprecated `friedman_mse` ranks splits identically for unit weights);
//! - one Newton step per leaf, `γ = (K−1)/K · mean(r) / mean(q(1−q))` with `q = [y = k] − r`
//!   (`mean(r) / mean(q(1−q))` for two classes; 0 when the denominator is below 1e-150,
//!   `_update_terminal_regions`, `_safe_divide`);
//! - `F ← F + η γ`; prediction `argmax_k F_k` (`F ≥ 0` for two classes);
//! - `feature_importances_`: per tree, `Σ_nodes n_t·imp_t − n_l·imp_l − n_r·imp_r` divided by the
//!   root size (`Tree.compute_feature_importances(normalize=False)`), averaged over the trees with
//!   more than one node and normalised to sum 1.
//!
//! How a tree finds its splits is a [`SplitSearch`]: [`crate::gbt_exact`] reproduces
//! scikit-learn's exact search, [`crate::gbt_histogram`] is the faster binned approximation.

use rayon::prelude::*;

use crate::gbt_exact::RAND_R_MAX;
use crate::{CodeMatrix, MetricsError};

/// Boosting hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct GbtSettings {
    /// Boosting stages.
    pub num_stages: usize,
    /// Maximum tree depth.
    pub max_depth: usize,
    /// Shrinkage η.
    pub learning_rate: f64,
    /// scikit-learn's `random_state` (an integer seed of numpy's legacy `RandomState`).
    pub random_state: u32,
}

/// One node of a fitted regression tree.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    Split {
        feature: usize,
        threshold: f64,
        left: usize,
        right: usize,
    },
    Leaf(f64),
}

/// A fitted regression tree; node 0 is the root.
#[derive(Debug, Clone)]
pub(crate) struct Tree {
    pub nodes: Vec<Node>,
}

impl Tree {
    /// The leaf value reached by `row` (`x ≤ threshold` goes left, scikit-learn's rule).
    fn predict(&self, row: &[f64]) -> f64 {
        let mut at = 0;
        loop {
            match self.nodes[at] {
                Node::Leaf(value) => return value,
                Node::Split {
                    feature,
                    threshold,
                    left,
                    right,
                } => {
                    at = if row[feature] <= threshold {
                        left
                    } else {
                        right
                    }
                }
            }
        }
    }
}

/// What one tree is fitted to.
pub(crate) struct TreeTargets<'a> {
    /// Negative gradient `r_i` (the regression target).
    pub residual: &'a [f64],
    /// `q_i (1 − q_i)` with `q_i = y_i − r_i`, the Newton denominator terms.
    pub curvature: &'a [f64],
    /// `(K − 1)/K` for K > 2 classes, 1 for two.
    pub leaf_scale: f64,
    /// Maximum depth (≥ 1).
    pub max_depth: usize,
    /// The tree splitter's `rand_r_state`: scikit-learn draws it per tree, in fitting order, as
    /// `random_state.randint(0, RAND_R_MAX)` (`Splitter.init` in `_splitter.pyx`).
    pub seed: u32,
}

/// What fitting one tree produces: the tree, its unnormalised importances (scikit-learn
/// `compute_feature_importances(normalize=False)`), its node count and the leaf value of every
/// training sample.
pub(crate) struct FittedTree {
    pub tree: Tree,
    pub importances: Vec<f64>,
    pub num_nodes: usize,
    pub per_sample_value: Vec<f64>,
}

/// How trees choose their splits; implemented by the exact and the histogram search.
pub(crate) trait SplitSearch: Sync {
    /// Training samples.
    fn num_samples(&self) -> usize;
    /// Features per sample.
    fn num_features(&self) -> usize;
    /// Grows one tree on `targets` and sets its leaves by [`newton_leaf_value`].
    fn fit_tree(&self, targets: &TreeTargets<'_>) -> FittedTree;
    /// The row as the trees compare it (the exact search, like scikit-learn, rounds to `f32`).
    fn prepare_row(&self, row: &[f64]) -> Vec<f64>;
}

/// scikit-learn's leaf value: `scale · mean(r) / mean(c)` over the leaf's samples, 0 when
/// `|mean(c)| < 1e-150` (`_update_terminal_regions`, `_safe_divide` in `_gb.py`). The means are
/// `np.average`s: numpy's pairwise sums over the samples in ascending index order (scikit-learn
/// takes them by `np.nonzero`), reproduced by [`numpy_pairwise_sum`] so that leaf values, and
/// through them every later residual, agree bit for bit.
pub(crate) fn newton_leaf_value(samples: &[usize], targets: &TreeTargets<'_>) -> f64 {
    let count = samples.len() as f64;
    let gather = |values: &[f64]| -> Vec<f64> { samples.iter().map(|&i| values[i]).collect() };
    let numerator = numpy_pairwise_sum(&gather(targets.residual)) / count;
    let denominator = numpy_pairwise_sum(&gather(targets.curvature)) / count;
    if denominator.abs() < 1e-150 {
        0.0
    } else {
        numerator * targets.leaf_scale / denominator
    }
}

/// numpy's `pairwise_sum` for `float64` (`numpy/_core/src/umath/loops_utils.h.src`): fewer than 8
/// values summed in order; up to 128 in eight interleaved partial sums combined as
/// `((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))`, then the remainder in order; longer
/// arrays split at `n/2` rounded down to a multiple of 8.
pub(crate) fn numpy_pairwise_sum(values: &[f64]) -> f64 {
    let n = values.len();
    if n < 8 {
        let mut sum = 0.0;
        for &v in values {
            sum += v;
        }
        sum
    } else if n <= 128 {
        let mut r = [0.0; 8];
        r.copy_from_slice(&values[..8]);
        let whole = n - n % 8;
        for chunk in values[8..whole].chunks_exact(8) {
            for (acc, &v) in r.iter_mut().zip(chunk) {
                *acc += v;
            }
        }
        let mut sum = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for &v in &values[whole..] {
            sum += v;
        }
        sum
    } else {
        let half = n / 2;
        let half = half - half % 8;
        numpy_pairwise_sum(&values[..half]) + numpy_pairwise_sum(&values[half..])
    }
}

/// A fitted boosted classifier.
pub(crate) struct GbtClassifier {
    classes: Vec<usize>,
    initial: Vec<f64>,
    /// `stages[s][k]`: one tree per class (one in total for two classes).
    stages: Vec<Vec<Tree>>,
    learning_rate: f64,
    /// Normalised feature importances (sum 1, or all 0 when no tree split).
    pub importances: Vec<f64>,
    /// Accuracy on the training set.
    pub train_accuracy: f64,
}

/// Class frequencies clipped to `[ε, 1 − ε]` as `_init_raw_predictions` does.
fn clipped_priors(y: &[usize], num_classes: usize) -> Vec<f64> {
    let mut counts = vec![0usize; num_classes];
    for &c in y {
        counts[c] += 1;
    }
    counts
        .iter()
        .map(|&c| (c as f64 / y.len() as f64).clamp(f64::EPSILON, 1.0 - f64::EPSILON))
        .collect()
}

/// `log(p / (1 − p))` as `scipy.special.logit` computes it (scipy's `_logit.h`): the direct
/// formula away from ½, `log1p(s) − log1p(−s)` with `s = 2(p − ½)` for `0.3 ≤ p ≤ 0.65`, where
/// it is more accurate. The initial score must match scipy's to the last bit, or boosting drifts
/// into different near-tie decisions later.
fn scipy_logit(p: f64) -> f64 {
    if !(0.3..=0.65).contains(&p) {
        (p / (1.0 - p)).ln()
    } else {
        let s = 2.0 * (p - 0.5);
        s.ln_1p() - (-s).ln_1p()
    }
}

/// Negative gradient of the half binomial deviance, `y − expit(F)`, in scikit-learn's
/// branch-stable form (`cgradient_half_binomial` in `_loss.pyx.tp`).
fn binomial_negative_gradient(y: f64, raw: f64) -> f64 {
    let gradient = if raw > -37.0 {
        let e = (-raw).exp();
        ((1.0 - y) - y * e) / (1.0 + e)
    } else {
        raw.exp() - y
    };
    -gradient
}

impl GbtClassifier {
    /// Boosts on `features` to predict `labels` (at least two distinct values).
    pub(crate) fn fit(
        features: &impl SplitSearch,
        labels: &[usize],
        settings: GbtSettings,
    ) -> Result<Self, MetricsError> {
        let n = labels.len();
        if n != features.num_samples() {
            return Err(MetricsError::ShapeMismatch(format!(
                "{} labels for {} feature rows",
                n,
                features.num_samples()
            )));
        }
        let mut classes = labels.to_vec();
        classes.sort_unstable();
        classes.dedup();
        if classes.len() < 2 {
            return Err(MetricsError::InvalidInput(format!(
                "a classifier needs labels with at least two values, got {}",
                classes.len()
            )));
        }
        let y: Vec<usize> = labels
            .iter()
            .map(|l| classes.partition_point(|c| c < l))
            .collect();
        let num_classes = classes.len();
        let priors = clipped_priors(&y, num_classes);
        let binary = num_classes == 2;
        let num_outputs = if binary { 1 } else { num_classes };
        let initial: Vec<f64> = if binary {
            vec![scipy_logit(priors[1])]
        } else {
            let log_geometric_mean =
                priors.iter().map(|p| p.ln()).sum::<f64>() / num_classes as f64;
            let geometric_mean = log_geometric_mean.exp();
            priors.iter().map(|p| (p / geometric_mean).ln()).collect()
        };
        // raw[i * num_outputs + k]
        let mut raw: Vec<f64> = (0..n).flat_map(|_| initial.iter().copied()).collect();
        let mut stages = Vec::with_capacity(settings.num_stages);
        let mut importance_sum = vec![0.0; features.num_features()];
        let mut num_relevant_trees = 0usize;
        let leaf_scale = if binary {
            1.0
        } else {
            (num_classes as f64 - 1.0) / num_classes as f64
        };
        let mut random_state = LegacyRandomState::new(settings.random_state);
        for _ in 0..settings.num_stages {
            let seeds: Vec<u32> = (0..num_outputs)
                .map(|_| random_state.randint_below(RAND_R_MAX))
                .collect();
            let negative_gradient = negative_gradient(&raw, &y, num_outputs);
            let fitted: Vec<FittedTree> = (0..num_outputs)
                .into_par_iter()
                .map(|k| {
                    let target_class = if binary { 1 } else { k };
                    let (residual, curvature): (Vec<f64>, Vec<f64>) = (0..n)
                        .map(|i| {
                            let r = negative_gradient[i * num_outputs + k];
                            let target = if y[i] == target_class { 1.0 } else { 0.0 };
                            // scikit-learn recovers the probability as `y − r`.
                            let q = target - r;
                            (r, q * (1.0 - q))
                        })
                        .unzip();
                    features.fit_tree(&TreeTargets {
                        residual: &residual,
                        curvature: &curvature,
                        leaf_scale,
                        max_depth: settings.max_depth,
                        seed: seeds[k],
                    })
                })
                .collect();
            let mut stage = Vec::with_capacity(num_outputs);
            for (k, f) in fitted.into_iter().enumerate() {
                for i in 0..n {
                    raw[i * num_outputs + k] += settings.learning_rate * f.per_sample_value[i];
                }
                if f.num_nodes > 1 {
                    num_relevant_trees += 1;
                    importance_sum
                        .iter_mut()
                        .zip(&f.importances)
                        .for_each(|(s, v)| *s += v);
                }
                stage.push(f.tree);
            }
            stages.push(stage);
        }
        let importances = if num_relevant_trees == 0 {
            vec![0.0; importance_sum.len()]
        } else {
            let mean: Vec<f64> = importance_sum
                .iter()
                .map(|v| v / num_relevant_trees as f64)
                .collect();
            let total: f64 = mean.iter().sum();
            if total > 0.0 {
                mean.iter().map(|v| v / total).collect()
            } else {
                vec![0.0; mean.len()]
            }
        };
        let correct = (0..n)
            .filter(|&i| decide(&raw[i * num_outputs..(i + 1) * num_outputs]) == y[i])
            .count();
        Ok(Self {
            classes,
            initial,
            stages,
            learning_rate: settings.learning_rate,
            importances,
            train_accuracy: correct as f64 / n as f64,
        })
    }

    /// Predicted label of one feature row, already passed through
    /// [`SplitSearch::prepare_row`].
    pub(crate) fn predict(&self, row: &[f64]) -> usize {
        let mut raw = self.initial.clone();
        for stage in &self.stages {
            for (r, tree) in raw.iter_mut().zip(stage) {
                *r += self.learning_rate * tree.predict(row);
            }
        }
        self.classes[decide(&raw)]
    }
}

/// Class index from raw scores: `F ≥ 0` for one output, first argmax otherwise (scikit-learn's
/// `GradientBoostingClassifier.predict`).
fn decide(raw: &[f64]) -> usize {
    if raw.len() == 1 {
        return usize::from(raw[0] >= 0.0);
    }
    let mut best = 0;
    for (k, &v) in raw.iter().enumerate() {
        if v > raw[best] {
            best = k;
        }
    }
    best
}

/// Negative gradients `[y_i = k] − p_ik`, row-major like `raw`: the stable binomial form for one
/// output, softmax by `exp(F − max) / Σ` otherwise (`sum_exp_minus_max` in scikit-learn).
fn negative_gradient(raw: &[f64], y: &[usize], num_outputs: usize) -> Vec<f64> {
    if num_outputs == 1 {
        return raw
            .iter()
            .zip(y)
            .map(|(&r, &c)| binomial_negative_gradient(c as f64, r))
            .collect();
    }
    raw.par_chunks(num_outputs)
        .zip(y.par_iter())
        .flat_map_iter(|(row, &c)| {
            let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let exps: Vec<f64> = row.iter().map(|r| (r - max).exp()).collect();
            let sum: f64 = exps.iter().sum();
            exps.into_iter()
                .enumerate()
                .map(move |(k, e)| f64::from(u8::from(k == c)) - e / sum)
        })
        .collect()
}

/// Checks that every code is finite once rounded to `f32` (scikit-learn fits trees on `float32`
/// copies and rejects values too large for them).
pub(crate) fn check_f32_representable(codes: &CodeMatrix, what: &str) -> Result<(), MetricsError> {
    let d = codes.num_codes();
    match codes
        .as_slice()
        .iter()
        .position(|&v| !(v as f32).is_finite())
    {
        Some(at) => Err(MetricsError::InvalidInput(format!(
            "{what} value {} at row {}, column {} overflows float32, which the trees use",
            codes.as_slice()[at],
            at / d,
            at % d
        ))),
        None => Ok(()),
    }
}

/// numpy's legacy `RandomState(seed)` as far as scikit-learn's trees use it: MT19937 seeded by
/// `init_genrand(seed)` (`mt19937_seed` in numpy's `mt19937.c`) and `randint(0, high)` by masked
/// rejection on 32-bit outputs (`random_bounded_uint64` → `buffered_bounded_masked_uint32` in
/// numpy's `distributions.c`).
pub(crate) struct LegacyRandomState {
    state: [u32; 624],
    position: usize,
}

impl LegacyRandomState {
    pub(crate) fn new(seed: u32) -> Self {
        let mut state = [0u32; 624];
        state[0] = seed;
        for i in 1..624 {
            let previous = state[i - 1];
            state[i] = 1_812_433_253u32
                .wrapping_mul(previous ^ (previous >> 30))
                .wrapping_add(i as u32);
        }
        Self {
            state,
            position: 624,
        }
    }

    fn next_u32(&mut self) -> u32 {
        if self.position >= 624 {
            for i in 0..624 {
                let y = (self.state[i] & 0x8000_0000) | (self.state[(i + 1) % 624] & 0x7FFF_FFFF);
                let mut next = self.state[(i + 397) % 624] ^ (y >> 1);
                if y & 1 == 1 {
                    next ^= 0x9908_B0DF;
                }
                self.state[i] = next;
            }
            self.position = 0;
        }
        let mut y = self.state[self.position];
        self.position += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9D2C_5680;
        y ^= (y << 15) & 0xEFC6_0000;
        y ^ (y >> 18)
    }

    /// `randint(0, high)` for `1 ≤ high ≤ 2^32 − 1`: uniform in `[0, high)`.
    pub(crate) fn randint_below(&mut self, high: u32) -> u32 {
        let range = high - 1;
        if range == 0 {
            return 0;
        }
        let mask = u32::MAX >> range.leading_zeros();
        loop {
            let value = self.next_u32() & mask;
            if value <= range {
                return value;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// numpy's `RandomState(s).randint(0, 2^31 − 1)` sequences recorded by
    /// `reference/scripts/dci_explicitness_reference.py` (700 draws: past MT19937's 624-word
    /// regeneration).
    #[test]
    fn legacy_random_state_matches_numpy() {
        let reference: serde_json::Value =
            serde_json::from_str(include_str!("../reference/dci_explicitness_sklearn.json"))
                .expect("reference JSON parses");
        let sequences = reference["numpy_legacy_randint_2147483647"]
            .as_object()
            .expect("recorded draws");
        assert!(!sequences.is_empty());
        for (seed, draws) in sequences {
            let mut rng = LegacyRandomState::new(seed.parse().expect("u32 seed"));
            let ours: Vec<u64> = draws
                .as_array()
                .expect("draws")
                .iter()
                .map(|_| u64::from(rng.randint_below(RAND_R_MAX)))
                .collect();
            let expected: Vec<u64> = draws
                .as_array()
                .expect("draws")
                .iter()
                .map(|d| d.as_u64().expect("integer"))
                .collect();
            assert_eq!(ours, expected, "seed {seed}");
        }
    }
}
