//! Dense row-major matrices of codes or features.

use crate::MetricsError;

/// Row-major `f64` matrix: one row per sample, one column per code (latent dimension) or feature.
#[derive(Debug, Clone, PartialEq)]
pub struct CodeMatrix {
    num_codes: usize,
    values: Vec<f64>,
}

impl CodeMatrix {
    /// Wraps row-major `values` with `num_codes` columns; rejects ragged input and non-finite values.
    pub fn new(num_codes: usize, values: Vec<f64>) -> Result<Self, MetricsError> {
        if num_codes == 0 {
            return Err(MetricsError::InvalidInput(
                "a code matrix needs at least one column".into(),
            ));
        }
        if !values.len().is_multiple_of(num_codes) {
            return Err(MetricsError::ShapeMismatch(format!(
                "{} values do not fill rows of {num_codes} columns",
                values.len()
            )));
        }
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            return Err(MetricsError::NonFinite {
                what: "codes".into(),
                row: i / num_codes,
                col: i % num_codes,
            });
        }
        Ok(Self { num_codes, values })
    }

    /// Builds from rows (each of equal length).
    pub fn from_rows(rows: &[Vec<f64>]) -> Result<Self, MetricsError> {
        let d = rows.first().map_or(0, Vec::len);
        if rows.iter().any(|r| r.len() != d) {
            return Err(MetricsError::ShapeMismatch("rows of unequal length".into()));
        }
        Self::new(d, rows.concat())
    }

    /// Number of samples.
    pub fn num_samples(&self) -> usize {
        self.values.len() / self.num_codes
    }

    /// Number of codes (columns).
    pub fn num_codes(&self) -> usize {
        self.num_codes
    }

    /// Row `i`. Panics if out of range, like slice indexing.
    pub fn row(&self, i: usize) -> &[f64] {
        &self.values[i * self.num_codes..(i + 1) * self.num_codes]
    }

    /// Iterator over rows.
    pub fn rows(&self) -> impl ExactSizeIterator<Item = &[f64]> {
        self.values.chunks_exact(self.num_codes)
    }

    /// Column `j` copied out.
    pub fn column(&self, j: usize) -> Vec<f64> {
        self.rows().map(|r| r[j]).collect()
    }

    /// Row-major values.
    pub fn as_slice(&self) -> &[f64] {
        &self.values
    }
}
