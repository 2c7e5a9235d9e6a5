//! Weighted k-nearest-neighbour classifier on frozen features, the SSL monitor of Wu et al.,
//! "Unsupervised Feature Learning via Non-Parametric Instance Discrimination" (CVPR 2018), as in the
//! MoCo CIFAR demo and MVEB's `Pretrainer.knn_predict`:
//!
//! with unit-norm features, `s_j = q·b_j` for the k most similar bank rows, class score
//! `c(y) = Σ_{j ∈ top-k, y_j = y} exp(s_j / τ)`, prediction `argmax_y c(y)`.
//!
//! Similarities are computed block-wise with an `f32` faer matrix product (the precision of the
//! reference implementations), the top-k selection and votes in parallel over queries.

use faer::linalg::matmul::matmul;
use std::cmp::Ordering;

use faer::{Accum, Mat, MatRef, Par};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::{CodeMatrix, MetricsError};

/// Version tag of the kNN-monitor definition implemented here.
pub const KNN_VERSION: &str = "infobound-knn-monitor/1";

/// Queries per block: bounds the similarity buffer to `QUERY_BLOCK × bank` floats.
const QUERY_BLOCK: usize = 256;

/// Parameters of the kNN classifier (defaults: Wu et al. 2018 / MoCo demo).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct KnnConfig {
    /// Neighbours voting, k.
    pub k: usize,
    /// Temperature τ of the vote weights `exp(s / τ)`.
    pub temperature: f64,
}

impl Default for KnnConfig {
    fn default() -> Self {
        Self {
            k: 200,
            temperature: 0.1,
        }
    }
}

/// Accuracy of the kNN classifier on labelled queries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KnnAccuracy {
    /// Fraction of queries whose predicted label equals their label.
    pub accuracy: f64,
    /// Number of queries.
    pub num_queries: usize,
    /// Bank size.
    pub bank_size: usize,
    /// Parameters used.
    pub config: KnnConfig,
    /// Metric name and version, [`KNN_VERSION`].
    pub metric_version: String,
}

/// A feature bank (unit-normalised rows) with labels, ready to classify queries.
#[derive(Debug, Clone)]
pub struct KnnClassifier {
    bank: Mat<f32>,
    /// Dense class index of every bank row, into `classes`.
    targets: Vec<usize>,
    /// The distinct labels, ascending.
    classes: Vec<usize>,
    config: KnnConfig,
}

fn unit_rows_f32(x: &CodeMatrix, what: &str) -> Result<Mat<f32>, MetricsError> {
    let norms: Vec<f64> = x
        .rows()
        .map(|r| r.iter().map(|v| v * v).sum::<f64>().sqrt())
        .collect();
    if let Some(i) = norms.iter().position(|&n| n == 0.0) {
        return Err(MetricsError::InvalidInput(format!(
            "{what}: row {i} is zero and has no cosine similarity"
        )));
    }
    Ok(Mat::from_fn(x.num_samples(), x.num_codes(), |i, j| {
        (x.row(i)[j] / norms[i]) as f32
    }))
}

impl KnnClassifier {
    /// Stores `bank` (one feature row per sample, L2-normalised here) and its class `labels`.
    pub fn new(
        bank: &CodeMatrix,
        labels: &[usize],
        config: KnnConfig,
    ) -> Result<Self, MetricsError> {
        if labels.len() != bank.num_samples() {
            return Err(MetricsError::ShapeMismatch(format!(
                "{} bank rows but {} labels",
                bank.num_samples(),
                labels.len()
            )));
        }
        if config.k == 0 || config.k > bank.num_samples() {
            return Err(MetricsError::InvalidParameter(format!(
                "k = {} must be in 1..={} (the bank size)",
                config.k,
                bank.num_samples()
            )));
        }
        if !(config.temperature.is_finite() && config.temperature > 0.0) {
            return Err(MetricsError::InvalidParameter(format!(
                "temperature must be positive, got {}",
                config.temperature
            )));
        }
        let mut classes = labels.to_vec();
        classes.sort_unstable();
        classes.dedup();
        Ok(Self {
            bank: unit_rows_f32(bank, "kNN bank")?,
            targets: labels
                .iter()
                .map(|l| classes.binary_search(l).unwrap_or_default())
                .collect(),
            classes,
            config,
        })
    }

    /// Predicted label of every row of `queries` (ties in the class score go to the smaller label;
    /// ties in similarity at the k-th place to the earlier bank row).
    pub fn predict(&self, queries: &CodeMatrix) -> Result<Vec<usize>, MetricsError> {
        if queries.num_codes() != self.bank.ncols() {
            return Err(MetricsError::ShapeMismatch(format!(
                "queries of width {} for a bank of width {}",
                queries.num_codes(),
                self.bank.ncols()
            )));
        }
        let queries = unit_rows_f32(queries, "kNN queries")?;
        let bank_size = self.bank.nrows();
        let mut predictions = Vec::with_capacity(queries.nrows());
        // Bank × queryᵀ, so that each query's similarities are one contiguous column.
        let mut similarities = Mat::<f32>::zeros(bank_size, QUERY_BLOCK.min(queries.nrows()));
        for start in (0..queries.nrows()).step_by(QUERY_BLOCK) {
            let rows = QUERY_BLOCK.min(queries.nrows() - start);
            let block: MatRef<'_, f32> = queries.as_ref().subrows(start, rows);
            matmul(
                similarities.as_mut().subcols_mut(0, rows),
                Accum::Replace,
                self.bank.as_ref(),
                block.transpose(),
                1.0f32,
                Par::rayon(0),
            );
            let similarities = &similarities;
            let block_predictions: Vec<usize> = (0..rows)
                .into_par_iter()
                .map_init(
                    || Vec::with_capacity(bank_size),
                    |scratch: &mut Vec<f32>, r| self.vote(similarities.col_as_slice(r), scratch),
                )
                .collect();
            predictions.extend(block_predictions);
        }
        Ok(predictions)
    }

    /// Weighted vote of the k bank rows most similar to one query, `similarities[j]` being its
    /// similarity to bank row j. The k-th largest similarity is found by selection on a copy;
    /// rows tied with it are taken in bank order until k are chosen.
    fn vote(&self, similarities: &[f32], scratch: &mut Vec<f32>) -> usize {
        let k = self.config.k;
        scratch.clear();
        scratch.extend_from_slice(similarities);
        let (_, kth, _) = scratch.select_nth_unstable_by(k - 1, |a, b| b.total_cmp(a));
        let threshold = *kth;
        let above = similarities
            .iter()
            .filter(|s| s.total_cmp(&threshold).is_gt())
            .count();
        let mut ties_left = k - above;
        let mut scores = vec![0.0f64; self.classes.len()];
        for (j, &s) in similarities.iter().enumerate() {
            let take = match s.total_cmp(&threshold) {
                Ordering::Greater => true,
                Ordering::Equal if ties_left > 0 => {
                    ties_left -= 1;
                    true
                }
                _ => false,
            };
            if take {
                scores[self.targets[j]] += (f64::from(s) / self.config.temperature).exp();
            }
        }
        let best = scores
            .iter()
            .enumerate()
            .fold((0, f64::NEG_INFINITY), |best, (c, &v)| {
                if v > best.1 { (c, v) } else { best }
            })
            .0;
        self.classes[best]
    }

    /// Accuracy of [`KnnClassifier::predict`] against `labels`.
    pub fn evaluate(
        &self,
        queries: &CodeMatrix,
        labels: &[usize],
    ) -> Result<KnnAccuracy, MetricsError> {
        if labels.len() != queries.num_samples() || labels.is_empty() {
            return Err(MetricsError::ShapeMismatch(format!(
                "{} queries but {} labels (need at least one)",
                queries.num_samples(),
                labels.len()
            )));
        }
        let predicted = self.predict(queries)?;
        let correct = predicted.iter().zip(labels).filter(|(p, l)| p == l).count();
        Ok(KnnAccuracy {
            accuracy: correct as f64 / labels.len() as f64,
            num_queries: labels.len(),
            bank_size: self.bank.nrows(),
            config: self.config,
            metric_version: KNN_VERSION.into(),
        })
    }
}

/// One-shot kNN accuracy: builds a [`KnnClassifier`] on `bank` and evaluates it on `queries`.
pub fn knn_accuracy(
    bank: &CodeMatrix,
    bank_labels: &[usize],
    queries: &CodeMatrix,
    query_labels: &[usize],
    config: KnnConfig,
) -> Result<KnnAccuracy, MetricsError> {
    KnnClassifier::new(bank, bank_labels, config)?.evaluate(queries, query_labels)
}
