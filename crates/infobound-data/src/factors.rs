//! Factor state spaces, kept apart from pixel storage (as in disent's `StateSpace`).

use rand::{Rng, RngCore};

use crate::DataError;

/// Row-major matrix of factor class indices: one row per sample, one column per factor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FactorMatrix {
    num_factors: usize,
    values: Vec<usize>,
}

impl FactorMatrix {
    /// Wraps row-major `values` holding `values.len() / num_factors` rows.
    pub fn new(num_factors: usize, values: Vec<usize>) -> Result<Self, DataError> {
        if num_factors == 0 {
            return Err(DataError::InvalidArgument(
                "a factor matrix needs at least one factor column".into(),
            ));
        }
        if !values.len().is_multiple_of(num_factors) {
            return Err(DataError::InvalidArgument(format!(
                "{} values do not fill rows of {num_factors} factors",
                values.len()
            )));
        }
        Ok(Self {
            num_factors,
            values,
        })
    }

    /// Number of samples (rows).
    pub fn len(&self) -> usize {
        self.values.len() / self.num_factors
    }

    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Number of factors (columns).
    pub fn num_factors(&self) -> usize {
        self.num_factors
    }

    /// Factor values of sample `i`. Panics if `i >= len()` like slice indexing.
    pub fn row(&self, i: usize) -> &[usize] {
        &self.values[i * self.num_factors..(i + 1) * self.num_factors]
    }

    /// Iterator over the rows.
    pub fn rows(&self) -> impl ExactSizeIterator<Item = &[usize]> {
        self.values.chunks_exact(self.num_factors)
    }

    /// Column `k` (all samples' value of factor `k`).
    pub fn column(&self, k: usize) -> Vec<usize> {
        self.rows().map(|r| r[k]).collect()
    }

    /// The row-major values.
    pub fn as_slice(&self) -> &[usize] {
        &self.values
    }

    /// Consumes the matrix, returning its row-major values.
    pub fn into_values(self) -> Vec<usize> {
        self.values
    }
}

/// A discrete factor-of-variation space: names and number of values per factor, flattened in
/// row-major order (the last factor varies fastest), which is the order of the dSprites, 3DShapes
/// and MPI3D files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FactorSpace {
    names: Vec<String>,
    sizes: Vec<usize>,
    strides: Vec<usize>,
    len: usize,
}

impl FactorSpace {
    /// Builds a space from factor names and sizes (each size ≥ 1).
    pub fn new(names: Vec<String>, sizes: Vec<usize>) -> Result<Self, DataError> {
        if names.is_empty() || names.len() != sizes.len() {
            return Err(DataError::InvalidArgument(format!(
                "a factor space needs one size per name and at least one factor (got {} names, {} sizes)",
                names.len(),
                sizes.len()
            )));
        }
        if let Some(i) = sizes.iter().position(|&s| s == 0) {
            return Err(DataError::InvalidArgument(format!(
                "factor `{}` has zero values",
                names[i]
            )));
        }
        let mut strides = vec![1usize; sizes.len()];
        let mut len = 1usize;
        for k in (0..sizes.len()).rev() {
            strides[k] = len;
            len = len.checked_mul(sizes[k]).ok_or_else(|| {
                DataError::InvalidArgument("factor space size overflows usize".into())
            })?;
        }
        Ok(Self {
            names,
            sizes,
            strides,
            len,
        })
    }

    /// Number of factors.
    pub fn num_factors(&self) -> usize {
        self.sizes.len()
    }

    /// Factor names, in storage order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Number of values of each factor.
    pub fn sizes(&self) -> &[usize] {
        &self.sizes
    }

    /// Total number of states, `Π_k sizes[k]`.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: a valid space has at least one state.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Checks one factor vector against the space.
    pub fn validate(&self, factors: &[usize]) -> Result<(), DataError> {
        if factors.len() != self.sizes.len() {
            return Err(DataError::FactorCount {
                expected: self.sizes.len(),
                got: factors.len(),
            });
        }
        for (k, (&v, &s)) in factors.iter().zip(&self.sizes).enumerate() {
            if v >= s {
                return Err(DataError::FactorOutOfRange {
                    name: self.names[k].clone(),
                    size: s,
                    value: v,
                });
            }
        }
        Ok(())
    }

    /// Checks every row of a factor matrix against the space.
    pub fn validate_matrix(&self, factors: &FactorMatrix) -> Result<(), DataError> {
        if factors.num_factors() != self.num_factors() {
            return Err(DataError::FactorCount {
                expected: self.num_factors(),
                got: factors.num_factors(),
            });
        }
        factors.rows().try_for_each(|r| self.validate(r))
    }

    /// Row-major flat index of a factor vector: `Σ_k factors[k] · Π_{j>k} sizes[j]`.
    pub fn index_of(&self, factors: &[usize]) -> Result<usize, DataError> {
        self.validate(factors)?;
        Ok(factors.iter().zip(&self.strides).map(|(v, s)| v * s).sum())
    }

    /// Inverse of [`FactorSpace::index_of`].
    pub fn factors_of(&self, index: usize) -> Result<Vec<usize>, DataError> {
        if index >= self.len {
            return Err(DataError::IndexOutOfRange {
                index,
                len: self.len,
            });
        }
        Ok(self
            .strides
            .iter()
            .zip(&self.sizes)
            .map(|(stride, size)| (index / stride) % size)
            .collect())
    }

    /// `n` factor vectors drawn independently and uniformly from each factor.
    pub fn sample(&self, n: usize, rng: &mut dyn RngCore) -> FactorMatrix {
        let mut values = Vec::with_capacity(n * self.num_factors());
        for _ in 0..n {
            values.extend(self.sizes.iter().map(|&s| rng.random_range(0..s)));
        }
        FactorMatrix {
            num_factors: self.num_factors(),
            values,
        }
    }

    /// Copies of `factors` in which every factor except `keep` is resampled uniformly
    /// (the pairs used by the β-VAE and FactorVAE scores).
    pub fn resample_all_but(
        &self,
        factors: &FactorMatrix,
        keep: usize,
        rng: &mut dyn RngCore,
    ) -> Result<FactorMatrix, DataError> {
        self.validate_matrix(factors)?;
        if keep >= self.num_factors() {
            return Err(DataError::InvalidArgument(format!(
                "factor index {keep} out of range for {} factors",
                self.num_factors()
            )));
        }
        let mut values = factors.values.clone();
        for row in values.chunks_exact_mut(self.num_factors()) {
            for (k, v) in row.iter_mut().enumerate() {
                if k != keep {
                    *v = rng.random_range(0..self.sizes[k]);
                }
            }
        }
        Ok(FactorMatrix {
            num_factors: self.num_factors(),
            values,
        })
    }

    /// All values of factor `k` with the other factors fixed at `base`: one row per value.
    pub fn traverse(&self, base: &[usize], k: usize) -> Result<FactorMatrix, DataError> {
        self.validate(base)?;
        if k >= self.num_factors() {
            return Err(DataError::InvalidArgument(format!(
                "factor index {k} out of range for {} factors",
                self.num_factors()
            )));
        }
        let mut values = Vec::with_capacity(self.sizes[k] * base.len());
        for v in 0..self.sizes[k] {
            values.extend_from_slice(base);
            let last = values.len() - base.len() + k;
            values[last] = v;
        }
        Ok(FactorMatrix {
            num_factors: self.num_factors(),
            values,
        })
    }
}
