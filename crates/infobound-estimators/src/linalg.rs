//! Symmetric-positive-definite solves and an order statistic, the two pieces of linear
//! algebra the kernel score estimators need and Burn 0.22 lacks (it has no Cholesky, solve or
//! inverse, and `topk` over B² entries is slower than a host selection).
//!
//! **Which solve path.** [`spd_solve`] factorises on the host in f64 with `faer`
//! (`Mat::llt(Side::Lower)` + triangular solves). [`spd_solve_tensor_ops`] is a Cholesky written
//! with Burn tensor ops that stays on the tensor's device. Medians on the flex CPU backend
//! (`cargo bench -p infobound-estimators --profile dev --bench estimators -- --quick`, f32
//! vMF-kernel matrix + 0.01 I, 128 right-hand sides, 2-core machine shared with other jobs,
//! load average ≈ 5.7):
//!
//! | B | host `faer` f64 | tensor ops (flex, f32) |
//! |---|---|---|
//! | 128 | 1.13 ms | 2.72 ms |
//! | 256 | 3.55 ms | 8.27 ms |
//! | 512 | 11.8 ms | 40.0 ms |
//! | 1024 | 64.2 ms | 239 ms |
//!
//! The host path wins at every size (2.3–3.7×; an earlier run at load ≈ 5 gave 3.3–4.4×) and is the more accurate one, so the estimators
//! use it. The tensor-op path is kept public because on a GPU the host round trip of the B×B
//! matrix may dominate; it is also differentiable, which the host path is not. Neither path
//! forms an explicit inverse.
//!
//! **Accuracy with f32 tensors** (max error relative to the largest entry, against an f64 solve
//! of the exact system built from the `vmf_score.json` reference batches): the host path only
//! rounds its inputs and output to f32 — 5e-7 to 1.3e-4 on the well-conditioned batches and
//! 2.2e-2 on the width-clamped one (kernel entries up to e^{10} ≈ 22 026, plus η = 0.01 on the
//! diagonal). The f32 tensor-op Cholesky reaches 1.9e-4 and 1.1e-1 respectively. In f64 both
//! paths agree with the reference to ≤ 1e-10.

use burn::prelude::*;
use faer::linalg::solvers::Solve;
use faer::{Mat, Side};

use crate::EstimatorError;
use crate::validate;

/// Solves `A X = R` for symmetric positive definite `A` (`[n, n]`) and `R` (`[n, m]`) on the host,
/// in f64, by Cholesky factorisation `A = L Lᵀ` and two triangular solves (`faer`).
///
/// The result is a constant tensor (no autodiff graph) on `rhs`'s device in `rhs`'s dtype; use it
/// where the solution is held fixed, like the score in MVEB's entropy gradient. Only the lower
/// triangle of `A` is read.
///
/// # Errors
/// [`EstimatorError::ShapeMismatch`] if `A` is not square or `R` has another row count,
/// [`EstimatorError::NonFinite`] for NaN/∞ entries,
/// [`EstimatorError::NotPositiveDefinite`] if the factorisation fails.
pub fn spd_solve(matrix: Tensor<2>, rhs: Tensor<2>) -> Result<Tensor<2>, EstimatorError> {
    let [n, m] = rhs.dims();
    validate::same_shape("matrix", &matrix, [n, n])?;
    let device = rhs.device();
    let dtype = rhs.dtype();
    let a = matrix.detach().try_into_vec_as::<f64>()?;
    let r = rhs.detach().try_into_vec_as::<f64>()?;
    validate::all_finite_host("matrix", &a)?;
    validate::all_finite_host("rhs", &r)?;
    let x = spd_solve_host(&a, n, &r, m)?;
    Ok(Tensor::from_data(
        TensorData::new(x, [n, m]),
        (&device, dtype),
    ))
}

/// Host Cholesky solve on row-major slices: `a` is n×n, `rhs` and the result are n×m.
pub(crate) fn spd_solve_host(
    a: &[f64],
    n: usize,
    rhs: &[f64],
    m: usize,
) -> Result<Vec<f64>, EstimatorError> {
    let a = Mat::<f64>::from_fn(n, n, |i, j| a[i * n + j]);
    let r = Mat::<f64>::from_fn(n, m, |i, j| rhs[i * m + j]);
    let factor = a
        .llt(Side::Lower)
        .map_err(|_| EstimatorError::NotPositiveDefinite { size: n })?;
    let x = factor.solve(&r);
    let mut out = Vec::with_capacity(n * m);
    for i in 0..n {
        for j in 0..m {
            out.push(x[(i, j)]);
        }
    }
    Ok(out)
}

/// Solves `A X = R` for symmetric positive definite `A` with Burn tensor ops on the tensors'
/// device: left-looking Cholesky `A = L Lᵀ` (column j: `c = A[j.., j] − L[j.., ..j] L[j, ..j]ᵀ`,
/// `L[j.., j] = c / √c_0`), then forward substitution `L Y = R` and back substitution
/// `Lᵀ X = Y`, one row at a time.
///
/// About 3n small tensor operations: slower than [`spd_solve`] on CPU backends (see the module
/// docs), but it needs no host round trip and is differentiable. Computes in the tensors' dtype
/// (f32 loses accuracy on ill-conditioned matrices, see the module docs).
///
/// # Errors
/// [`EstimatorError::ShapeMismatch`] if `A` is not square or `R` has another row count,
/// [`EstimatorError::NonFinite`] for NaN/∞ entries,
/// [`EstimatorError::NotPositiveDefinite`] if a pivot is not positive.
pub fn spd_solve_tensor_ops(
    matrix: Tensor<2>,
    rhs: Tensor<2>,
) -> Result<Tensor<2>, EstimatorError> {
    let [n, _] = rhs.dims();
    validate::same_shape("matrix", &matrix, [n, n])?;
    validate::all_finite("matrix", &matrix)?;
    validate::all_finite("rhs", &rhs)?;
    let factor = cholesky_tensor_ops(matrix);
    // A non-positive pivot shows up as NaN (√ of a negative) or ∞ (division by √0); checking
    // once at the end avoids a device synchronisation per column.
    if validate::all_finite("cholesky factor", &factor).is_err() {
        return Err(EstimatorError::NotPositiveDefinite { size: n });
    }
    Ok(triangular_solves(&factor, rhs))
}

/// Solves `A X = R` for symmetric positive definite `A` (`[n, n]`) and `R` (`[n, m]`) by
/// `iterations` steps of the conjugate-gradient method (Hestenes & Stiefel, "Methods of
/// conjugate gradients for solving linear systems", J. Res. NBS 49(6), 1952), run on every column
/// of R at once with Burn tensor ops on the tensors' device:
///
/// `X₀ = 0, R₀ = P₀ = R`; per step, column-wise, `α = (RᵀR) / (PᵀAP)`, `X += α P`,
/// `R −= α AP`, `β = (R'ᵀR') / (RᵀR)`, `P = R' + β P`.
///
/// One matrix product and about a dozen element-wise operations per step and no host read
/// inside the loop, so a GPU never waits on the host: the iteration count is fixed by the
/// caller, and the residual is checked once at the end. After k steps the error in the A-norm has shrunk at least by
/// `2((√κ − 1)/(√κ + 1))^k` (κ the condition number of A), and in exact arithmetic the
/// method ends after n steps; the iterations the vMF kernel matrices need are tabulated in
/// [`crate::score`]. In f32 the attainable accuracy is set by the rounding of A and R (on the
/// vMF reference batches ≈ 5e-4 relative, and no better with more steps).
///
/// The result is a constant tensor (no autodiff graph) in the tensors' dtype.
///
/// # Errors
/// [`EstimatorError::ShapeMismatch`] if `A` is not square or `R` has another row count,
/// [`EstimatorError::InvalidParameter`] if `iterations` is 0 or `tolerance` is not finite and
/// positive, [`EstimatorError::NonFinite`] for NaN/∞ entries of `A` or `R`,
/// [`EstimatorError::NotConverged`] if the largest relative residual `‖A x − r‖ / ‖r‖` over the
/// columns exceeds `tolerance` (too few iterations for A's condition number, an indefinite A,
/// or a tolerance below what the dtype can reach).
pub fn spd_solve_conjugate_gradient(
    matrix: Tensor<2>,
    rhs: Tensor<2>,
    iterations: usize,
    tolerance: f64,
) -> Result<Tensor<2>, EstimatorError> {
    let [n, _] = rhs.dims();
    validate::same_shape("matrix", &matrix, [n, n])?;
    validate::at_least_one("iterations", iterations)?;
    validate::positive("tolerance", tolerance)?;
    validate::all_finite("matrix", &matrix)?;
    validate::all_finite("rhs", &rhs)?;
    let (matrix, rhs) = (matrix.detach(), rhs.detach());
    let solution = conjugate_gradient_unchecked(matrix.clone(), rhs.clone(), iterations);
    let residual = (matrix.matmul(solution.clone()) - rhs.clone())
        .square()
        .sum_dim(0)
        .sqrt();
    // A zero column of R has the zero solution: its residual is measured absolutely.
    let scale = rhs
        .square()
        .sum_dim(0)
        .sqrt()
        .clamp_min(f64::from(f32::MIN_POSITIVE));
    let relative_residual = (residual / scale).max().try_into_scalar::<f64>()?;
    // A NaN residual fails too.
    if relative_residual.is_nan() || relative_residual > tolerance {
        return Err(EstimatorError::NotConverged {
            iterations,
            relative_residual,
            tolerance,
        });
    }
    Ok(solution)
}

/// [`spd_solve_conjugate_gradient`] without any check or host read (the caller guarantees the
/// shapes and `iterations ≥ 1`).
pub(crate) fn conjugate_gradient_unchecked(
    matrix: Tensor<2>,
    rhs: Tensor<2>,
    iterations: usize,
) -> Tensor<2> {
    // Guards the divisions once a column has converged exactly (0/0 would be NaN; 0/tiny is
    // the 0 step that leaves it converged). The smallest normal f32, so that it is not 0 in
    // either dtype.
    let tiny = f64::from(f32::MIN_POSITIVE);
    let mut solution = rhs.zeros_like();
    let mut residual = rhs;
    let mut direction = residual.clone();
    let mut residual_norm = residual.clone().square().sum_dim(0);
    for _ in 0..iterations {
        let image = matrix.clone().matmul(direction.clone());
        let curvature = (direction.clone() * image.clone()).sum_dim(0);
        let step = residual_norm.clone() / curvature.clamp_min(tiny);
        solution = solution + direction.clone() * step.clone();
        residual = residual - image * step;
        let next_norm = residual.clone().square().sum_dim(0);
        let beta = next_norm.clone() / residual_norm.clamp_min(tiny);
        direction = residual.clone() + direction * beta;
        residual_norm = next_norm;
    }
    solution
}

/// `X` with `L Lᵀ X = R` for the lower-triangular `factor` L, by forward and back substitution
/// row by row.
fn triangular_solves(factor: &Tensor<2>, rhs: Tensor<2>) -> Tensor<2> {
    let [n, m] = rhs.dims();
    let options = (&rhs.device(), rhs.dtype());

    let mut forward = Tensor::<2>::zeros([n, m], options);
    for i in 0..n {
        let mut row = rhs.clone().slice(s![i..i + 1, ..]);
        if i > 0 {
            let known = factor
                .clone()
                .slice(s![i..i + 1, 0..i])
                .matmul(forward.clone().slice(s![0..i, ..]));
            row = row - known;
        }
        let pivot = factor.clone().slice(s![i..i + 1, i..i + 1]);
        forward = forward.slice_assign(s![i..i + 1, ..], row / pivot);
    }

    let upper = factor.clone().transpose();
    let mut solution = Tensor::<2>::zeros([n, m], options);
    for i in (0..n).rev() {
        let mut row = forward.clone().slice(s![i..i + 1, ..]);
        if i + 1 < n {
            let known = upper
                .clone()
                .slice(s![i..i + 1, i + 1..])
                .matmul(solution.clone().slice(s![i + 1.., ..]));
            row = row - known;
        }
        let pivot = upper.clone().slice(s![i..i + 1, i..i + 1]);
        solution = solution.slice_assign(s![i..i + 1, ..], row / pivot);
    }
    solution
}

/// Lower Cholesky factor with tensor ops; a non-positive pivot leaves NaN or ∞ in it.
fn cholesky_tensor_ops(matrix: Tensor<2>) -> Tensor<2> {
    let [n, _] = matrix.dims();
    let mut factor = Tensor::<2>::zeros([n, n], (&matrix.device(), matrix.dtype()));
    for j in 0..n {
        let mut column = matrix.clone().slice(s![j.., j..j + 1]);
        if j > 0 {
            let row_j = factor.clone().slice(s![j..j + 1, 0..j]);
            column = column
                - factor
                    .clone()
                    .slice(s![j.., 0..j])
                    .matmul(row_j.transpose());
        }
        let pivot = column.clone().slice(s![0..1, ..]);
        factor = factor.slice_assign(s![j.., j..j + 1], column / pivot.sqrt());
    }
    factor
}

/// The k-th largest (1-based) of the B² entries of a symmetric B × B matrix, given its
/// `diagonal` (B values) and its strictly lower triangle `off_diagonal` (B(B − 1)/2 values, each
/// standing for two entries of the matrix), by selection over B²/2 values instead of B².
///
/// Exact: with a₁ ≥ a₂ ≥ … the sorted diagonal and e₁ ≥ e₂ ≥ … the off-diagonal values each
/// taken twice (e_m = o_⌈m/2⌉ for o the sorted off-diagonal values), the k-th largest of the
/// union of two sorted lists is `max_j min(a_j, e_{k−j})` (a₀ = e₀ = +∞): any j largest of one
/// and k − j largest of the other are k entries ≥ that minimum, and the split of the true top k
/// attains it. Only the ranks ⌈(k − j)/2⌉, j = 0..=B, of the off-diagonal values are needed: one
/// `select_nth_unstable` places the largest of those ranks, a second the smallest, and the
/// window of ≈ B/2 values between them is sorted.
///
/// Both slices are reordered. The caller guarantees finite values, `diagonal.len() = B ≥ 2`,
/// `off_diagonal.len() = B(B − 1)/2` and `1 ≤ k ≤ B²/2`.
pub(crate) fn kth_largest_symmetric(
    diagonal: &mut [f64],
    off_diagonal: &mut [f64],
    k: usize,
) -> f64 {
    let descending = |a: &f64, b: &f64| b.total_cmp(a);
    diagonal.sort_unstable_by(descending);
    let pairs = off_diagonal.len();
    // j diagonal entries among the top k: 0 ≤ j ≤ B, and k − j ≤ 2·pairs.
    let j_min = k.saturating_sub(2 * pairs);
    let j_max = k.min(diagonal.len());
    // Off-diagonal ranks (1-based) ⌈(k − j)/2⌉ for k − j ≥ 1.
    let rank_high = k.div_ceil(2);
    let rank_low = (k - j_max).max(1).div_ceil(2);
    off_diagonal.select_nth_unstable_by(rank_high - 1, descending);
    if rank_low < rank_high {
        let above = &mut off_diagonal[..rank_high - 1];
        above.select_nth_unstable_by(rank_low - 1, descending);
        above[rank_low..].sort_unstable_by(descending);
    }
    let doubled = |m: usize| {
        if m == 0 {
            f64::INFINITY
        } else {
            off_diagonal[m.div_ceil(2) - 1]
        }
    };
    let diagonal_at = |j: usize| {
        if j == 0 {
            f64::INFINITY
        } else {
            diagonal[j - 1]
        }
    };
    (j_min..=j_max)
        .map(|j| diagonal_at(j).min(doubled(k - j)))
        .fold(f64::NEG_INFINITY, f64::max)
}

/// `exp(x)` in f64 without a call, for loops that vectorise (libm's `exp` is a call per value:
/// 12 ns each, 3.2 ms of the 512 × 512 vMF kernel matrix before this); the loops run it under
/// pulp's run-time dispatch, inlined (`KernelColumns` in `score.rs`).
///
/// Cody–Waite reduction `x = n ln 2 + r`, |r| ≤ ln 2 / 2, with ln 2 split in two (fdlibm's
/// `ln2HI`/`ln2LO`, so n·ln2HI is exact), then the degree-13 Taylor polynomial of e^r (its
/// truncation error r¹⁴/14! < 5e-18, evaluated by Estrin's scheme) and the scaling by 2ⁿ through the exponent bits. Measured
/// against libm on the vMF kernel's arguments: relative error ≤ 2.3e-16 (one ulp). Arguments
/// above 709 give +∞, as libm does; below −708 the result is flushed to 0 (libm gives a
/// subnormal < 3e-308 there, which is nothing beside the ridge η on the kernel's diagonal).
#[inline(always)]
pub(crate) fn exp_one(x: f64) -> f64 {
    // 1.5·2⁵²: adding it rounds x·log₂e to an integer held in the low mantissa bits.
    const SHIFT: f64 = 6_755_399_441_055_744.0;
    const LN2_HI: f64 = 6.931_471_803_691_238e-1;
    const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
    const HIGHEST: f64 = 709.0;
    const LOWEST: f64 = -708.0;
    // 1/k! for k = 0..=13.
    const INVERSE_FACTORIALS: [f64; 14] = [
        1.0,
        1.0,
        0.5,
        1.0 / 6.0,
        1.0 / 24.0,
        1.0 / 120.0,
        1.0 / 720.0,
        1.0 / 5_040.0,
        1.0 / 40_320.0,
        1.0 / 362_880.0,
        1.0 / 3_628_800.0,
        1.0 / 39_916_800.0,
        1.0 / 479_001_600.0,
        1.0 / 6_227_020_800.0,
    ];
    let clamped = x.clamp(LOWEST, HIGHEST);
    let shifted = clamped * std::f64::consts::LOG2_E + SHIFT;
    let n = shifted - SHIFT;
    let r = (clamped - n * LN2_HI) - n * LN2_LO;
    // Σ_{k ≤ 13} r^k / k! by Estrin's scheme: pairs, then powers r², r⁴, r⁸, so the chain of
    // dependent operations is 7 long instead of Horner's 26 (the loop was latency-bound).
    let r2 = r * r;
    let r4 = r2 * r2;
    let r8 = r4 * r4;
    let pair = |k: usize| INVERSE_FACTORIALS[k] + INVERSE_FACTORIALS[k + 1] * r;
    let low = (pair(0) + r2 * pair(2)) + r4 * (pair(4) + r2 * pair(6));
    let high = (pair(8) + r2 * pair(10)) + r4 * pair(12);
    let polynomial = low + r8 * high;
    // n sits in the low bits of `shifted` as a two's-complement offset from SHIFT's bits;
    // 2ⁿ is the f64 with biased exponent n + 1023.
    let exponent = shifted
        .to_bits()
        .wrapping_sub(SHIFT.to_bits())
        .wrapping_add(1023)
        << 52;
    let value = polynomial * f64::from_bits(exponent);
    if x > HIGHEST {
        f64::INFINITY
    } else if x < LOWEST {
        0.0
    } else {
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// The selection over the lower triangle equals the k-th largest of all B² entries,
    /// including matrices with many ties (values on a coarse grid) and diagonals that are not
    /// the smallest entries.
    #[test]
    fn symmetric_selection_equals_full_selection() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        for trial in 0..400 {
            let b = 2 + trial % 23;
            let grid = [2.0, 7.0, 1e6][trial % 3];
            let mut full = vec![0.0; b * b];
            for i in 0..b {
                for j in 0..=i {
                    let value = (rng.random::<f64>() * grid).round() / grid - 0.3;
                    full[i * b + j] = value;
                    full[j * b + i] = value;
                }
            }
            let mut diagonal: Vec<f64> = (0..b).map(|i| full[i * b + i]).collect();
            let mut off_diagonal: Vec<f64> = (0..b)
                .flat_map(|i| (0..i).map(move |j| (i, j)))
                .map(|(i, j)| full[i * b + j])
                .collect();
            for k in [1, b, b * b / 4, b * b / 2] {
                let k = k.max(1);
                let mut sorted = full.clone();
                sorted.sort_by(|x, y| y.total_cmp(x));
                let fast =
                    kth_largest_symmetric(&mut diagonal.clone(), &mut off_diagonal.clone(), k);
                assert_eq!(fast, sorted[k - 1], "B = {b}, k = {k}");
            }
            // Also with the reordering the first call leaves behind.
            let k = b * b / 2;
            let once = kth_largest_symmetric(&mut diagonal, &mut off_diagonal, k);
            assert_eq!(
                kth_largest_symmetric(&mut diagonal, &mut off_diagonal, k),
                once
            );
        }
    }

    #[test]
    fn vectorised_exp_matches_libm() {
        let mut values: Vec<f64> = (-19_900..=19_900).map(|i| f64::from(i) * 0.0355).collect();
        values.extend([0.0, -0.0, 1e-300, -1e-300, 708.9, -707.9, 10.0 / 0.1]);
        let computed: Vec<f64> = values.iter().map(|&x| exp_one(x)).collect();
        for (x, y) in values.iter().zip(&computed) {
            let expected = x.exp();
            let error = ((y - expected) / expected).abs();
            assert!(
                error <= 4.5e-16,
                "exp({x}) = {y}, libm {expected}: {error:e}"
            );
        }
        let edges = [
            709.5,
            1e308,
            f64::INFINITY,
            -708.5,
            -1e308,
            f64::NEG_INFINITY,
        ]
        .map(exp_one);
        assert_eq!(
            edges,
            [f64::INFINITY, f64::INFINITY, f64::INFINITY, 0.0, 0.0, 0.0]
        );
        assert!(exp_one(f64::NAN).is_nan());
    }
}
