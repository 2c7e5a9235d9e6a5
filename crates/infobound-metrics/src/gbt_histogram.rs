//! Histogram split search for [`crate::gbt`]: each feature is cut once, before boosting, into at
//! most `max_bins` bins whose thresholds are midpoints between consecutive distinct values
//! (exactly scikit-learn's candidate thresholds when a feature has at most `max_bins` distinct
//! values) or, otherwise, one cut per run of `(n − 1)/(max_bins − 1)` consecutive sorted values,
//! at the widest gap of the run (our choice). With more distinct values than bins a split can
//! only fall on one of these cuts; on continuous codes this moves DCI by 0.02–0.07 below
//! scikit-learn's exact search (measured in the project's metrics issue), so it is the faster,
//! approximate option, [`crate::DciSplitSearch::Histogram`]. Thresholds are global midpoints, and
//! rows are compared in `f64`.

use crate::CodeMatrix;
use crate::gbt::{FittedTree, Node, SplitSearch, Tree, TreeTargets, newton_leaf_value};

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

/// `(Σ r, count)` per bin of every feature of one node, laid out by `BinnedFeatures::offsets`.
struct Histogram {
    sums: Vec<f64>,
    counts: Vec<u32>,
}

struct TreeBuilder<'a> {
    features: &'a BinnedFeatures,
    residual: &'a [f64],
    targets: &'a TreeTargets<'a>,
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
        let mut samples = indices.to_vec();
        samples.sort_unstable();
        let value = newton_leaf_value(&samples, self.targets);
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

fn fit_tree(features: &BinnedFeatures, targets: &TreeTargets<'_>) -> FittedTree {
    let n = features.num_samples;
    let max_depth = targets.max_depth;
    let mut builder = TreeBuilder {
        features,
        residual: targets.residual,
        targets,
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

impl SplitSearch for BinnedFeatures {
    fn num_samples(&self) -> usize {
        self.num_samples
    }

    fn num_features(&self) -> usize {
        self.num_features
    }

    fn fit_tree(&self, targets: &TreeTargets<'_>) -> FittedTree {
        fit_tree(self, targets)
    }

    fn prepare_row(&self, row: &[f64]) -> Vec<f64> {
        row.to_vec()
    }
}
