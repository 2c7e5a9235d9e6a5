//! Exact split search for [`crate::gbt`], reproducing scikit-learn 1.9.1's
//! `DecisionTreeRegressor(splitter="best")` as gradient boosting grows it
//! (`sklearn/tree/_splitter.pyx` `node_split_best`, `_partitioner.pyx` `next_p`,
//! `_criterion.pyx` `MSE`, `_tree.pyx` `DepthFirstTreeBuilder`):
//!
//! - features are `float32` (scikit-learn converts `X` to `float32` before boosting);
//! - in a node, every position between two consecutive sorted values `a < b` with
//!   `b > a + 1e-7` (`FEATURE_THRESHOLD`, compared in `float32`) is a candidate, with threshold
//!   `a/2 + b/2` in `f64`; `min_samples_leaf = 1`;
//! - a candidate is ranked by the squared-error proxy `S_l²/n_l + S_r²/n_r` (sums of the
//!   residuals), the node keeps the first strict maximum;
//! - a node is a leaf at the maximum depth, with fewer than 2 samples, or when its impurity
//!   `Σ r²/n − (Σ r/n)²` is at most `f64::EPSILON`;
//! - the importance of a split is `n·imp − n_l·imp_l − n_r·imp_r`.
//!
//! Ties: scikit-learn visits the features of each node in a random order (Fisher–Yates driven by
//! the splitter's xorshift state, seeded per tree from the boosting `random_state`) and keeps the
//! first of equally good splits. Equal residuals are common in boosting, so exact ties between
//! codes are too; we replay the same draws (see [`crate::gbt::TreeTargets::seed`]), so for the same
//! `random_state` the same tie wins. Near-ties are decided by rounding, so sums are formed in
//! scikit-learn's orders too: a node's totals over its samples as its splitter's in-place
//! partition leaves them, leaf means by numpy's pairwise sum in index order. What we do not
//! replay is the order its introsort gives *equal* values of a feature (we keep index order) and
//! its criterion's backward update after a run of equal values longer than the rest of the
//! node; with repeated values a near-tie can therefore still go the other way (the reference
//! test measures ≤ 3e-4 on importances then; with distinct values the trees are identical).
//!
//! Speed (our design): every feature is sorted once per classifier; each tree works on a copy of
//! the sorted blocks, grown depth first, and a split stably partitions every feature's block of
//! the node, so each node's samples stay sorted by every feature without re-sorting (`O(n·d)` per
//! level). Children at the maximum depth are leaves and skip the partition.

use crate::gbt::{
    FittedTree, Node, SplitSearch, Tree, TreeTargets, check_f32_representable, newton_leaf_value,
};
use crate::{CodeMatrix, MetricsError};

/// A candidate whose reciprocal-based proxy estimate is below `best · SCREEN_FACTOR` is skipped:
/// the estimate and the exact proxy differ by at most ~6 ulps (both are sums of two non-negative
/// terms, each rounded a few times), far less than this margin (our choice).
const SCREEN_FACTOR: f64 = 1.0 - 1e-12;

/// scikit-learn's `FEATURE_THRESHOLD` (`_partitioner.pxd`): sorted neighbours closer than this
/// are not separated.
const FEATURE_THRESHOLD: f32 = 1e-7;

/// Features as `float32`, each sorted once.
pub(crate) struct SortedFeatures {
    num_samples: usize,
    num_features: usize,
    /// `values[f·n + i]`: sample `i`'s feature `f`.
    values: Vec<f32>,
    /// `reciprocal[k] = 1/k` (`reciprocal[0]` unused).
    reciprocal: Vec<f64>,
    /// `sorted[f·n + p] = (sample, value)`, ascending by value.
    sorted: Vec<(u32, f32)>,
}

impl SortedFeatures {
    /// Rounds `codes` to `f32` and sorts every column.
    pub(crate) fn new(codes: &CodeMatrix) -> Result<Self, MetricsError> {
        check_f32_representable(codes, "code")?;
        let n = codes.num_samples();
        let d = codes.num_codes();
        if u32::try_from(n).is_err() {
            return Err(MetricsError::InvalidInput(format!(
                "{n} samples exceed the tree builder's u32 sample index"
            )));
        }
        let mut values = vec![0.0f32; n * d];
        for (i, row) in codes.rows().enumerate() {
            for (f, &v) in row.iter().enumerate() {
                values[f * n + i] = v as f32;
            }
        }
        let mut sorted = Vec::with_capacity(n * d);
        for f in 0..d {
            let mut order: Vec<(u32, f32)> = codes
                .rows()
                .enumerate()
                .map(|(i, row)| (i as u32, row[f] as f32))
                .collect();
            order.sort_by(|a, b| a.1.total_cmp(&b.1));
            sorted.extend(order);
        }
        Ok(Self {
            num_samples: n,
            num_features: d,
            values,
            reciprocal: (0..=n)
                .map(|k| if k == 0 { 0.0 } else { 1.0 / k as f64 })
                .collect(),
            sorted,
        })
    }
}

/// scikit-learn's `our_rand_r` (`sklearn/utils/_random.pxd`): xorshift32, a zero state replaced
/// by 1, output reduced modulo `2^31`.
fn our_rand_r(state: &mut u32) -> u32 {
    if *state == 0 {
        *state = 1;
    }
    *state ^= *state << 13;
    *state ^= *state >> 17;
    *state ^= *state << 5;
    *state % (RAND_R_MAX + 1)
}

/// scikit-learn's `RAND_R_MAX` (`sklearn/utils/_random.pxd`).
pub(crate) const RAND_R_MAX: u32 = 0x7FFF_FFFF;

/// scikit-learn's `rand_int(low, high)` (`sklearn/tree/_utils.pyx`): uniform in `[low, high)`.
fn rand_int(low: usize, high: usize, state: &mut u32) -> usize {
    low + our_rand_r(state) as usize % (high - low)
}

/// The best split of one node.
#[derive(Clone, Copy)]
struct Candidate {
    feature: usize,
    threshold: f64,
    left_count: usize,
}

/// Sums of a split's children in scikit-learn's orders.
struct ChildTotals {
    /// `(Σ r, Σ r²)` of the left child, as its criterion starts.
    left: (f64, f64),
    /// The same for the right child.
    right: (f64, f64),
    /// The left sum the parent's criterion holds when it computes the children's impurities.
    left_sum: f64,
}

/// scikit-learn's `MSE.node_impurity` / `children_impurity` for `count` samples.
fn impurity(count: usize, sum: f64, sq_sum: f64) -> f64 {
    let n = count as f64;
    let mean = sum / n;
    sq_sum / n - mean * mean
}

/// One tree being grown depth first, in scikit-learn's node order (a node, then its left subtree,
/// then its right subtree), so that its splitter's random feature order can be replayed.
struct Grower<'a> {
    features: &'a SortedFeatures,
    targets: &'a TreeTargets<'a>,
    /// Working copy of `SortedFeatures::sorted`: every open node owns the same range
    /// `start..end` of each feature's block, sorted by that feature.
    sorted: Vec<(u32, f32)>,
    buffer: Vec<(u32, f32)>,
    goes_left: Vec<bool>,
    /// The splitter's `rand_r_state`.
    rng: u32,
    /// The splitter's `features` and `constant_features` arrays, which persist across nodes.
    order: Vec<usize>,
    constant: Vec<usize>,
    nodes: Vec<Node>,
    importances: Vec<f64>,
    per_sample_value: Vec<f64>,
    /// The leaf each sample ends in.
    leaf_of: Vec<u32>,
}

impl Grower<'_> {
    /// Grows the node over `start..end` (sorted in every feature if `sorted_in` is `None`, only
    /// in that feature otherwise) and returns its id. `totals` are `(Σ r, Σ r²)` summed in
    /// scikit-learn's order of the node's samples; `node_impurity` is what scikit-learn stores.
    #[allow(clippy::too_many_arguments)]
    fn grow(
        &mut self,
        start: usize,
        end: usize,
        depth: usize,
        totals: (f64, f64),
        node_impurity: f64,
        known_constants: usize,
        sorted_in: Option<usize>,
    ) -> usize {
        let id = self.nodes.len();
        self.nodes.push(Node::Leaf(0.0));
        let count = end - start;
        let may_split = sorted_in.is_none()
            && depth < self.targets.max_depth
            && count >= 2
            && node_impurity > f64::EPSILON;
        let split = if may_split {
            self.best_split(start, end, totals.0, known_constants)
        } else {
            None
        };
        let Some((c, constants, last_sorted)) = split else {
            self.make_leaf(id, start, end, sorted_in.unwrap_or(0));
            return id;
        };
        let children = self.children_totals(start, end, totals, last_sorted, &c);
        let right_count = count - c.left_count;
        let left_impurity = impurity(c.left_count, children.left_sum, children.left.1);
        let right_impurity = impurity(
            right_count,
            totals.0 - children.left_sum,
            totals.1 - children.left.1,
        );
        self.importances[c.feature] += count as f64 * node_impurity
            - c.left_count as f64 * left_impurity
            - right_count as f64 * right_impurity;
        let mid = start + c.left_count;
        // Children at the maximum depth are leaves: they need their samples only, which the
        // split feature's block already holds in two parts.
        let children_sorted_in = if depth + 1 >= self.targets.max_depth {
            Some(c.feature)
        } else {
            self.partition(start, end, c.feature, mid);
            None
        };
        let left = self.grow(
            start,
            mid,
            depth + 1,
            children.left,
            left_impurity,
            constants,
            children_sorted_in,
        );
        let right = self.grow(
            mid,
            end,
            depth + 1,
            children.right,
            right_impurity,
            constants,
            children_sorted_in,
        );
        self.nodes[id] = Node::Split {
            feature: c.feature,
            threshold: c.threshold,
            left,
            right,
        };
        id
    }

    /// The children's sums as scikit-learn forms them. Its splitter leaves the node's samples in
    /// the order of the last feature it sorted (`last_sorted`), partitions them in place by
    /// swapping (`partition_samples_final`), and each child then sums `r` and `r²` in that order
    /// (`RegressionCriterion.init`). The left sum behind the children's impurities is summed
    /// forward over the left part, or, when the left part is the larger, as the node's sum minus
    /// the right part taken from the end (`RegressionCriterion.update`).
    fn children_totals(
        &self,
        start: usize,
        end: usize,
        totals: (f64, f64),
        last_sorted: usize,
        c: &Candidate,
    ) -> ChildTotals {
        let n = self.features.num_samples;
        let mut samples: Vec<u32> = self.sorted[last_sorted * n + start..last_sorted * n + end]
            .iter()
            .map(|&(i, _)| i)
            .collect();
        let values = &self.features.values[c.feature * n..(c.feature + 1) * n];
        let (mut p, mut partition_end) = (0, samples.len() - 1);
        while p < partition_end {
            if f64::from(values[samples[p] as usize]) <= c.threshold {
                p += 1;
            } else {
                samples.swap(p, partition_end);
                partition_end -= 1;
            }
        }
        let residual = self.targets.residual;
        let sums = |part: &[u32]| {
            part.iter().fold((0.0, 0.0), |(s, q), &i| {
                let r = residual[i as usize];
                (s + r, q + r * r)
            })
        };
        let (left_part, right_part) = samples.split_at(c.left_count);
        let left = sums(left_part);
        let right = sums(right_part);
        let left_sum = if left_part.len() <= right_part.len() {
            left.0
        } else {
            right_part
                .iter()
                .rev()
                .fold(totals.0, |s, &i| s - residual[i as usize])
        };
        ChildTotals {
            left,
            right,
            left_sum,
        }
    }

    /// Records `id` as the leaf of the samples in `start..end` of `feature`'s block; leaf values
    /// are set once the tree is complete.
    fn make_leaf(&mut self, id: usize, start: usize, end: usize, feature: usize) {
        let n = self.features.num_samples;
        for &(i, _) in &self.sorted[feature * n + start..feature * n + end] {
            self.leaf_of[i as usize] = id as u32;
        }
    }

    /// Sets every leaf's Newton value from its samples taken in ascending index order, as
    /// scikit-learn does.
    fn set_leaf_values(&mut self) {
        let mut members: Vec<Vec<usize>> = vec![Vec::new(); self.nodes.len()];
        for (i, &leaf) in self.leaf_of.iter().enumerate() {
            members[leaf as usize].push(i);
        }
        for (node, samples) in self.nodes.iter_mut().zip(&members) {
            if let Node::Leaf(value) = node
                && !samples.is_empty()
            {
                *value = newton_leaf_value(samples, self.targets);
                for &i in samples {
                    self.per_sample_value[i] = *value;
                }
            }
        }
    }

    /// Stable partition of every feature's block `start..end`: the first `mid − start` samples
    /// of `split_feature`'s block go left.
    fn partition(&mut self, start: usize, end: usize, split_feature: usize, mid: usize) {
        let n = self.features.num_samples;
        for (p, &(i, _)) in self.sorted[split_feature * n..][start..end]
            .iter()
            .enumerate()
        {
            self.goes_left[i as usize] = start + p < mid;
        }
        for f in 0..self.features.num_features {
            if f == split_feature {
                continue;
            }
            let block = &mut self.sorted[f * n + start..f * n + end];
            let mut write = 0;
            self.buffer.clear();
            for k in 0..block.len() {
                let e = block[k];
                if self.goes_left[e.0 as usize] {
                    block[write] = e;
                    write += 1;
                } else {
                    self.buffer.push(e);
                }
            }
            block[write..].copy_from_slice(&self.buffer);
        }
    }

    /// scikit-learn's `node_split_best`: features drawn in its random order (Fisher–Yates over
    /// the splitter's persistent `features` array, skipping features known or found constant),
    /// the first strict maximum of the proxy kept. Returns the split and the node's constant
    /// feature count handed to its children.
    fn best_split(
        &mut self,
        start: usize,
        end: usize,
        sum: f64,
        known_constants: usize,
    ) -> Option<(Candidate, usize, usize)> {
        let num_features = self.features.num_features;
        let count = end - start;
        let mut best: Option<Candidate> = None;
        let mut best_proxy = f64::NEG_INFINITY;
        let mut last_sorted = 0;
        let mut f_i = num_features;
        let mut visited = 0;
        let mut found_constants = 0;
        let mut drawn_constants = 0;
        let mut total_constants = known_constants;
        while f_i > total_constants
            && (visited < num_features || visited <= found_constants + drawn_constants)
        {
            visited += 1;
            let mut f_j = rand_int(drawn_constants, f_i - found_constants, &mut self.rng);
            if f_j < known_constants {
                self.order.swap(drawn_constants, f_j);
                drawn_constants += 1;
                continue;
            }
            f_j += found_constants;
            let feature = self.order[f_j];
            last_sorted = feature;
            let n = self.features.num_samples;
            let segment = &self.sorted[feature * n + start..feature * n + end];
            if segment[count - 1].1 <= segment[0].1 + FEATURE_THRESHOLD {
                self.order.swap(f_j, total_constants);
                found_constants += 1;
                total_constants += 1;
                continue;
            }
            f_i -= 1;
            self.order.swap(f_i, f_j);
            let residual = self.targets.residual;
            let reciprocal = &self.features.reciprocal;
            let (mut left_count, mut left_sum) = (0usize, 0.0);
            let mut last = segment[0].1;
            for &(i, value) in segment {
                if left_count > 0 && value > last + FEATURE_THRESHOLD {
                    let right_count = count - left_count;
                    let right_sum = sum - left_sum;
                    let (left_square, right_square) = (left_sum * left_sum, right_sum * right_sum);
                    // Screening (our speed-up): with precomputed reciprocals the proxy is within a
                    // few ulps of scikit-learn's two divisions, so a candidate whose estimate is
                    // clearly below the best cannot win; only the others pay for the divisions,
                    // and the comparison itself uses scikit-learn's exact expression.
                    let estimate = left_square * reciprocal[left_count]
                        + right_square * reciprocal[right_count];
                    if estimate >= best_proxy * SCREEN_FACTOR {
                        let proxy =
                            left_square / left_count as f64 + right_square / right_count as f64;
                        if proxy > best_proxy {
                            best_proxy = proxy;
                            best = Some(Candidate {
                                feature,
                                threshold: f64::from(last) / 2.0 + f64::from(value) / 2.0,
                                left_count,
                            });
                        }
                    }
                }
                let r = residual[i as usize];
                left_count += 1;
                left_sum += r;
                last = value;
            }
        }
        // The splitter keeps the constant features' order for siblings and children.
        self.order[..known_constants].copy_from_slice(&self.constant[..known_constants]);
        let found = known_constants..known_constants + found_constants;
        self.constant[found.clone()].copy_from_slice(&self.order[found]);
        best.map(|c| (c, total_constants, last_sorted))
    }
}

impl SortedFeatures {
    fn grow(&self, targets: &TreeTargets<'_>) -> FittedTree {
        let n = self.num_samples;
        let d = self.num_features;
        let mut grower = Grower {
            features: self,
            targets,
            sorted: self.sorted.clone(),
            buffer: Vec::with_capacity(n),
            goes_left: vec![false; n],
            rng: targets.seed,
            order: (0..d).collect(),
            constant: vec![0; d],
            nodes: Vec::new(),
            importances: vec![0.0; d],
            per_sample_value: vec![0.0; n],
            leaf_of: vec![0; n],
        };
        // The root's samples are in index order.
        let totals = targets
            .residual
            .iter()
            .fold((0.0, 0.0), |(s, q), &r| (s + r, q + r * r));
        let root_impurity = impurity(n, totals.0, totals.1);
        grower.grow(0, n, 0, totals, root_impurity, 0, None);
        grower.set_leaf_values();
        let importances = grower.importances.iter().map(|v| v / n as f64).collect();
        FittedTree {
            num_nodes: grower.nodes.len(),
            tree: Tree {
                nodes: grower.nodes,
            },
            importances,
            per_sample_value: grower.per_sample_value,
        }
    }
}

impl SplitSearch for SortedFeatures {
    fn num_samples(&self) -> usize {
        self.num_samples
    }

    fn num_features(&self) -> usize {
        self.num_features
    }

    fn fit_tree(&self, targets: &TreeTargets<'_>) -> FittedTree {
        self.grow(targets)
    }

    fn prepare_row(&self, row: &[f64]) -> Vec<f64> {
        row.iter().map(|&v| f64::from(v as f32)).collect()
    }
}
