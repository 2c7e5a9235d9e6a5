//! Gradient-boosted regression trees for classification (Friedman, "Greedy Function
//! Approximation: A Gradient Boosting Machine", Ann. Statist. 2001), following scikit-learn's
//! `GradientBoostingClassifier` with its defaults: multinomial deviance with K trees per stage
//! (one tree for two classes), depth-limited trees split by the Friedman-MSE criterion on the
//! residuals `y_ik − p_ik`, one Newton step per leaf `γ = (K−1)/K · Σ r / Σ p(1−p)`
//! (`Σ r / Σ p(1−p)` for two classes), shrinkage `η`, and impurity-decrease feature importances
//! normalised like `feature_importances_`.
//!
//! Split finding is histogram based: each feature is cut once, before boosting, into at most
//! `max_bins` bins whose thresholds are midpoints between consecutive distinct values (exactly
//! scikit-learn's candidate thresholds when a feature has at most `max_bins` distinct values) or,
//! otherwise, one cut per run of `(n − 1)/(max_bins − 1)` consecutive sorted values, at the widest
//! gap of the run. With more distinct values than bins a split can only fall on one of these
//! cuts, which changes results slightly relative to scikit-learn's exact search; thresholds are
//! global midpoints rather than midpoints within the node, which only moves test points lying
//! between two training values of the same bin boundary.

use rayon::prelude::*;

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
    /// Histogram bins per feature (2..=256).
    pub max_bins: usize,
}

/// Features cut into bins once, row-major (`bins[i·d + f]`, one byte per value) with
/// `bins[i·d + f] = #{t ∈ thresholds[f] : t < x_if}`, so `x ≤ thresholds[f][b]` exactly when the
/// bin is at most `b`; feature `f` owns histogram slots `offsets[f]..offsets[f + 1]`.
pub(crate) struct BinnedFeatures {
    bins: Vec<u8>,
    thresholds: Vec<Vec<f64>>,
    offsets: Vec<usize>,
    num_features: usize,
    num_samples: usize,
}

impl BinnedFeatures {
    /// Cuts every column of `codes` into at most `max_bins` bins.
    pub(crate) fn new(codes: &CodeMatrix, max_bins: usize) -> Self {
        let d = codes.num_codes();
        let n = codes.num_samples();
        let mut bins = vec![0u8; n * d];
        let mut thresholds = Vec::with_capacity(d);
        let mut offsets = vec![0];
        for f in 0..d {
            let column = codes.column(f);
            let cuts = cut_points(&column, max_bins);
            for (i, &x) in column.iter().enumerate() {
                bins[i * d + f] = cuts.partition_point(|&t| t < x) as u8;
            }
            offsets.push(offsets[f] + cuts.len() + 1);
            thresholds.push(cuts);
        }
        Self {
            bins,
            thresholds,
            offsets,
            num_features: d,
            num_samples: n,
        }
    }

    fn bin(&self, sample: usize, feature: usize) -> usize {
        usize::from(self.bins[sample * self.num_features + feature])
    }
}

/// Cut points of one feature: midpoints between consecutive distinct values when there are at
/// most `max_bins` of them; otherwise the `n − 1` gaps between consecutive sorted values are split
/// into `max_bins − 1` runs of equal length and each run contributes one cut, at the midpoint of
/// its widest gap (bins of roughly equal frequency that still cut at natural gaps, e.g. between
/// two well-separated clusters).
fn cut_points(column: &[f64], max_bins: usize) -> Vec<f64> {
    let mut sorted = column.to_vec();
    sorted.sort_unstable_by(f64::total_cmp);
    let mut distinct = sorted.clone();
    distinct.dedup();
    if distinct.len() <= max_bins {
        return distinct.windows(2).map(|w| 0.5 * (w[0] + w[1])).collect();
    }
    let num_gaps = sorted.len() - 1;
    let num_runs = max_bins - 1;
    let mut cuts: Vec<f64> = Vec::with_capacity(num_runs);
    for run in 0..num_runs {
        let (start, end) = (run * num_gaps / num_runs, (run + 1) * num_gaps / num_runs);
        // Gap g lies between sorted[g] and sorted[g + 1].
        let widest = (start..end)
            .max_by(|&a, &b| (sorted[a + 1] - sorted[a]).total_cmp(&(sorted[b + 1] - sorted[b])));
        if let Some(g) = widest
            && sorted[g + 1] > sorted[g]
        {
            cuts.push(0.5 * (sorted[g] + sorted[g + 1]));
        }
    }
    cuts
}

#[derive(Debug, Clone)]
enum Node {
    Split {
        feature: usize,
        threshold: f64,
        left: usize,
        right: usize,
    },
    Leaf(f64),
}

#[derive(Debug, Clone)]
struct Tree {
    nodes: Vec<Node>,
}

impl Tree {
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

/// `(Σ r, count)` per bin of every feature of one node, laid out by `BinnedFeatures::offsets`.
struct Histogram {
    sums: Vec<f64>,
    counts: Vec<u32>,
}

/// What fitting one tree produces: the tree, its unnormalised importances (Σ of weighted impurity
/// decreases divided by the root size, scikit-learn `compute_feature_importances(normalize=False)`)
/// and the leaf value reached by every training sample.
struct FittedTree {
    tree: Tree,
    importances: Vec<f64>,
    num_nodes: usize,
    per_sample_value: Vec<f64>,
}

struct TreeBuilder<'a> {
    features: &'a BinnedFeatures,
    residual: &'a [f64],
    /// Σ p(1 − p) terms of the Newton leaf step.
    curvature: &'a [f64],
    leaf_scale: f64,
    max_depth: usize,
    nodes: Vec<Node>,
    importances: Vec<f64>,
    per_sample_value: Vec<f64>,
}

impl TreeBuilder<'_> {
    fn histogram(&self, indices: &[usize]) -> Histogram {
        let features = self.features;
        let total = features.offsets[features.num_features];
        let mut sums = vec![0.0; total];
        let mut counts = vec![0u32; total];
        for &i in indices {
            let r = self.residual[i];
            let row = &features.bins[i * features.num_features..(i + 1) * features.num_features];
            for (&b, &offset) in row.iter().zip(&features.offsets) {
                let slot = offset + usize::from(b);
                sums[slot] += r;
                counts[slot] += 1;
            }
        }
        Histogram { sums, counts }
    }

    /// Grows the subtree over `indices` and returns its node id; `histogram` is `None` exactly
    /// at the maximum depth, where nodes are leaves.
    fn grow(&mut self, indices: &mut [usize], histogram: Option<Histogram>, depth: usize) -> usize {
        let n = indices.len();
        let sum: f64 = indices.iter().map(|&i| self.residual[i]).sum();
        let sum_sq: f64 = indices
            .iter()
            .map(|&i| self.residual[i] * self.residual[i])
            .sum();
        let impurity = sum_sq / n as f64 - (sum / n as f64).powi(2);
        let split = match &histogram {
            Some(h) if n >= 2 && impurity > f64::EPSILON => {
                best_split(h, &self.features.offsets, n as u32, sum)
            }
            _ => None,
        };
        let (Some((feature, bin, decrease)), Some(histogram)) = (split, histogram) else {
            return self.leaf(indices);
        };
        let id = self.nodes.len();
        let threshold = self.features.thresholds[feature][bin];
        self.nodes.push(Node::Leaf(0.0));
        // The decrease is ≥ 0 in exact arithmetic; rounding must not make an importance negative.
        self.importances[feature] += decrease.max(0.0);
        let features = self.features;
        let cut = partition(indices, |i| features.bin(i, feature) <= bin);
        let (left_indices, right_indices) = indices.split_at_mut(cut);
        // Histogram subtraction: scan only the smaller child, derive the larger; children at the
        // maximum depth are leaves and need none.
        let (left_hist, right_hist) = if depth + 1 >= self.max_depth {
            (None, None)
        } else if left_indices.len() <= right_indices.len() {
            let small = self.histogram(left_indices);
            let large = subtract(histogram, &small);
            (Some(small), Some(large))
        } else {
            let small = self.histogram(right_indices);
            let large = subtract(histogram, &small);
            (Some(large), Some(small))
        };
        let left = self.grow(left_indices, left_hist, depth + 1);
        let right = self.grow(right_indices, right_hist, depth + 1);
        self.nodes[id] = Node::Split {
            feature,
            threshold,
            left,
            right,
        };
        id
    }

    fn leaf(&mut self, indices: &[usize]) -> usize {
        let numerator: f64 =
            indices.iter().map(|&i| self.residual[i]).sum::<f64>() * self.leaf_scale;
        let denominator: f64 = indices.iter().map(|&i| self.curvature[i]).sum();
        // scikit-learn's guard against a vanishing curvature.
        let value = if denominator.abs() < 1e-150 {
            0.0
        } else {
            numerator / denominator
        };
        for &i in indices {
            self.per_sample_value[i] = value;
        }
        self.nodes.push(Node::Leaf(value));
        self.nodes.len() - 1
    }
}

/// Best `(feature, bin, n·impurity decrease)` by the Friedman-MSE proxy
/// `(n_r G_l − n_l G_r)² / (n_l n_r)` (ties: first feature, lowest bin).
fn best_split(
    histogram: &Histogram,
    offsets: &[usize],
    n: u32,
    sum: f64,
) -> Option<(usize, usize, f64)> {
    let mut best: Option<(usize, usize, f64, f64)> = None;
    for (feature, range) in offsets.windows(2).enumerate() {
        let (mut g_left, mut n_left) = (0.0, 0u32);
        // The last bin of a feature cannot be the left side of a split.
        for (bin, slot) in (range[0]..range[1] - 1).enumerate() {
            g_left += histogram.sums[slot];
            n_left += histogram.counts[slot];
            if n_left == 0 {
                continue;
            }
            let n_right = n - n_left;
            if n_right == 0 {
                break;
            }
            let g_right = sum - g_left;
            let (nl, nr) = (f64::from(n_left), f64::from(n_right));
            let diff = nr * g_left - nl * g_right;
            let proxy = diff * diff / (nl * nr);
            if best.is_none_or(|b| proxy > b.3) {
                let decrease =
                    g_left * g_left / nl + g_right * g_right / nr - sum * sum / f64::from(n);
                best = Some((feature, bin, decrease, proxy));
            }
        }
    }
    best.map(|(f, b, d, _)| (f, b, d))
}

fn subtract(mut parent: Histogram, child: &Histogram) -> Histogram {
    parent
        .sums
        .iter_mut()
        .zip(&child.sums)
        .for_each(|(p, c)| *p -= c);
    parent
        .counts
        .iter_mut()
        .zip(&child.counts)
        .for_each(|(p, c)| *p -= c);
    parent
}

/// Stable in-place partition; returns the number of elements satisfying `goes_left`.
fn partition(indices: &mut [usize], goes_left: impl Fn(usize) -> bool) -> usize {
    let (left, right): (Vec<usize>, Vec<usize>) = indices.iter().partition(|&&i| goes_left(i));
    let cut = left.len();
    indices[..cut].copy_from_slice(&left);
    indices[cut..].copy_from_slice(&right);
    cut
}

fn fit_tree(
    features: &BinnedFeatures,
    residual: &[f64],
    curvature: &[f64],
    leaf_scale: f64,
    max_depth: usize,
) -> FittedTree {
    let n = features.num_samples;
    let mut builder = TreeBuilder {
        features,
        residual,
        curvature,
        leaf_scale,
        max_depth,
        nodes: Vec::new(),
        importances: vec![0.0; features.num_features],
        per_sample_value: vec![0.0; n],
    };
    let mut indices: Vec<usize> = (0..n).collect();
    let root_histogram = (max_depth > 0).then(|| builder.histogram(&indices));
    builder.grow(&mut indices, root_histogram, 0);
    let importances = builder.importances.iter().map(|v| v / n as f64).collect();
    FittedTree {
        num_nodes: builder.nodes.len(),
        tree: Tree {
            nodes: builder.nodes,
        },
        importances,
        per_sample_value: builder.per_sample_value,
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

impl GbtClassifier {
    /// Boosts on binned `features` to predict `labels` (at least two distinct values).
    pub(crate) fn fit(
        features: &BinnedFeatures,
        labels: &[usize],
        settings: GbtSettings,
    ) -> Result<Self, MetricsError> {
        let n = labels.len();
        let mut classes = labels.to_vec();
        classes.sort_unstable();
        classes.dedup();
        if classes.len() < 2 {
            return Err(MetricsError::InvalidInput(
                "a classifier needs labels with at least two values".into(),
            ));
        }
        let y: Vec<usize> = labels
            .iter()
            .map(|l| classes.partition_point(|c| c < l))
            .collect();
        let num_classes = classes.len();
        let mut counts = vec![0usize; num_classes];
        for &c in &y {
            counts[c] += 1;
        }
        let priors: Vec<f64> = counts.iter().map(|&c| c as f64 / n as f64).collect();
        let binary = num_classes == 2;
        let num_outputs = if binary { 1 } else { num_classes };
        let initial: Vec<f64> = if binary {
            vec![(priors[1] / priors[0]).ln()]
        } else {
            priors.iter().map(|p| p.ln()).collect()
        };
        // raw[i * num_outputs + k]
        let mut raw: Vec<f64> = (0..n).flat_map(|_| initial.iter().copied()).collect();
        let mut stages = Vec::with_capacity(settings.num_stages);
        let mut importance_sum = vec![0.0; features.num_features];
        let mut num_relevant_trees = 0usize;
        let leaf_scale = if binary {
            1.0
        } else {
            (num_classes as f64 - 1.0) / num_classes as f64
        };
        for _ in 0..settings.num_stages {
            let probabilities = probabilities(&raw, num_outputs);
            let fitted: Vec<FittedTree> = (0..num_outputs)
                .into_par_iter()
                .map(|k| {
                    let target_class = if binary { 1 } else { k };
                    let (residual, curvature): (Vec<f64>, Vec<f64>) = (0..n)
                        .map(|i| {
                            let p = probabilities[i * num_outputs + k];
                            let target = if y[i] == target_class { 1.0 } else { 0.0 };
                            (target - p, p * (1.0 - p))
                        })
                        .unzip();
                    fit_tree(
                        features,
                        &residual,
                        &curvature,
                        leaf_scale,
                        settings.max_depth,
                    )
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
        let total: f64 = importance_sum.iter().sum();
        let importances = if num_relevant_trees == 0 || total <= 0.0 {
            vec![0.0; importance_sum.len()]
        } else {
            // mean over trees, then normalised to sum 1: the mean's divisor cancels.
            importance_sum.iter().map(|v| v / total).collect()
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

    /// Predicted label of one feature row.
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

/// Class index from raw scores: sign for one output, first argmax otherwise.
fn decide(raw: &[f64]) -> usize {
    if raw.len() == 1 {
        return usize::from(raw[0] > 0.0);
    }
    let mut best = 0;
    for (k, &v) in raw.iter().enumerate() {
        if v > raw[best] {
            best = k;
        }
    }
    best
}

/// Sigmoid (one output) or softmax (several) of the raw scores, row-major like `raw`.
fn probabilities(raw: &[f64], num_outputs: usize) -> Vec<f64> {
    if num_outputs == 1 {
        return raw.iter().map(|r| 1.0 / (1.0 + (-r).exp())).collect();
    }
    raw.par_chunks(num_outputs)
        .flat_map_iter(|row| {
            let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let exps: Vec<f64> = row.iter().map(|r| (r - max).exp()).collect();
            let sum: f64 = exps.iter().sum();
            exps.into_iter().map(move |e| e / sum)
        })
        .collect()
}
