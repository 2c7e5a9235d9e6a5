//! Small dense linear-algebra helpers on top of faer: Gram matrices, covariances and symmetric
//! eigendecompositions. Everything is `f64`; matrices are built from row-major [`CodeMatrix`]es.

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatRef, Par, Side};

use crate::{CodeMatrix, MetricsError};

/// The matrix `X` (n × d) as a faer view over the row-major storage, without copying.
pub(crate) fn view(x: &CodeMatrix) -> MatRef<'_, f64> {
    MatRef::from_row_major_slice(x.as_slice(), x.num_samples(), x.num_codes())
}

/// Row Gram matrix `X Xᵀ` (n × n).
pub(crate) fn row_gram(x: MatRef<'_, f64>) -> Mat<f64> {
    let mut gram = Mat::<f64>::zeros(x.nrows(), x.nrows());
    matmul(
        gram.as_mut(),
        Accum::Replace,
        x,
        x.transpose(),
        1.0,
        Par::rayon(0),
    );
    gram
}

/// Column Gram matrix `Xᵀ X` (d × d).
pub(crate) fn column_gram(x: MatRef<'_, f64>) -> Mat<f64> {
    let mut gram = Mat::<f64>::zeros(x.ncols(), x.ncols());
    matmul(
        gram.as_mut(),
        Accum::Replace,
        x.transpose(),
        x,
        1.0,
        Par::rayon(0),
    );
    gram
}

/// Product `A B` of two dense matrices.
pub(crate) fn product(a: MatRef<'_, f64>, b: MatRef<'_, f64>) -> Mat<f64> {
    let mut out = Mat::<f64>::zeros(a.nrows(), b.ncols());
    matmul(out.as_mut(), Accum::Replace, a, b, 1.0, Par::rayon(0));
    out
}

/// `(A + Aᵀ) / 2`: removes the round-off asymmetry of products such as `S Σ S` before an
/// eigensolver that reads only one triangle.
pub(crate) fn symmetrised(a: MatRef<'_, f64>) -> Mat<f64> {
    Mat::from_fn(a.nrows(), a.ncols(), |i, j| 0.5 * (a[(i, j)] + a[(j, i)]))
}

/// Eigenvalues of a symmetric matrix (lower triangle read), in non-decreasing order.
pub(crate) fn symmetric_eigenvalues(a: MatRef<'_, f64>) -> Result<Vec<f64>, MetricsError> {
    a.self_adjoint_eigenvalues(Side::Lower)
        .map_err(|e| MetricsError::Numerical(format!("symmetric eigensolver failed: {e:?}")))
}

/// Square root `U diag(√max(λ, 0)) Uᵀ` of a symmetric positive semi-definite matrix; the clamp
/// removes the tiny negative eigenvalues round-off gives singular covariances.
pub(crate) fn psd_sqrt(a: MatRef<'_, f64>) -> Result<Mat<f64>, MetricsError> {
    let eigen = a
        .self_adjoint_eigen(Side::Lower)
        .map_err(|e| MetricsError::Numerical(format!("symmetric eigensolver failed: {e:?}")))?;
    let u = eigen.U();
    let s = eigen.S().column_vector();
    let scaled = Mat::from_fn(u.nrows(), u.ncols(), |i, j| {
        u[(i, j)] * s[j].max(0.0).sqrt()
    });
    Ok(product(scaled.as_ref(), u.transpose()))
}

/// Column means and the unbiased sample covariance `Σ = (X − μ)ᵀ(X − μ) / (n − 1)`
/// (numpy `cov(rowvar=False)`, as pytorch-fid uses). Needs n ≥ 2.
pub(crate) fn mean_and_covariance(x: &CodeMatrix) -> Result<(Vec<f64>, Mat<f64>), MetricsError> {
    let n = x.num_samples();
    let d = x.num_codes();
    if n < 2 {
        return Err(MetricsError::InvalidInput(format!(
            "a covariance needs at least 2 samples, got {n}"
        )));
    }
    let mut mean = vec![0.0; d];
    for row in x.rows() {
        mean.iter_mut().zip(row).for_each(|(m, v)| *m += v);
    }
    mean.iter_mut().for_each(|m| *m /= n as f64);
    let centred = Mat::from_fn(n, d, |i, j| x.row(i)[j] - mean[j]);
    let mut cov = column_gram(centred.as_ref());
    let scale = 1.0 / (n as f64 - 1.0);
    for j in 0..d {
        for i in 0..d {
            cov[(i, j)] *= scale;
        }
    }
    Ok((mean, cov))
}

/// Rows scaled to unit Euclidean norm; a zero row has no direction and is rejected.
pub(crate) fn unit_rows(x: &CodeMatrix, what: &str) -> Result<CodeMatrix, MetricsError> {
    let mut values = Vec::with_capacity(x.as_slice().len());
    for (i, row) in x.rows().enumerate() {
        let norm = row.iter().map(|v| v * v).sum::<f64>().sqrt();
        if norm == 0.0 {
            return Err(MetricsError::InvalidInput(format!(
                "{what}: row {i} is zero and has no cosine similarity"
            )));
        }
        values.extend(row.iter().map(|v| v / norm));
    }
    CodeMatrix::new(x.num_codes(), values)
}

/// Per-column standardisation fitted on one matrix (scikit-learn `StandardScaler`: mean and
/// population standard deviation; a constant column keeps scale 1).
pub(crate) struct Standardiser {
    mean: Vec<f64>,
    scale: Vec<f64>,
}

impl Standardiser {
    /// Column means and standard deviations of `x`.
    pub(crate) fn fit(x: &CodeMatrix) -> Self {
        let n = x.num_samples().max(1) as f64;
        let d = x.num_codes();
        let mut mean = vec![0.0; d];
        for row in x.rows() {
            mean.iter_mut().zip(row).for_each(|(m, v)| *m += v);
        }
        mean.iter_mut().for_each(|m| *m /= n);
        let mut var = vec![0.0; d];
        for row in x.rows() {
            var.iter_mut()
                .zip(row.iter().zip(&mean))
                .for_each(|(s, (v, m))| *s += (v - m) * (v - m));
        }
        let scale = var
            .iter()
            .map(|s| {
                let sd = (s / n).sqrt();
                if sd > 0.0 { sd } else { 1.0 }
            })
            .collect();
        Self { mean, scale }
    }

    /// `(x − mean) / scale`, column-wise.
    pub(crate) fn transform(&self, x: &CodeMatrix) -> Result<CodeMatrix, MetricsError> {
        if x.num_codes() != self.mean.len() {
            return Err(MetricsError::ShapeMismatch(format!(
                "standardiser fitted on {} columns, given {}",
                self.mean.len(),
                x.num_codes()
            )));
        }
        let values = x
            .rows()
            .flat_map(|row| {
                row.iter()
                    .zip(self.mean.iter().zip(&self.scale))
                    .map(|(v, (m, s))| (v - m) / s)
            })
            .collect();
        CodeMatrix::new(x.num_codes(), values)
    }
}
