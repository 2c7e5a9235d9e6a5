//! Shared by the loss-curve tests (Burn's layers against the kernels, one network each).

/// Asserts that `generic` learns (its last loss is below `first − margin`) and that `kernels`
/// follows it to 1e-3 relative at every step. Summation order differs (GEMM blocking and
/// two-pass batch norm vs Burn's ops), so the curves agree to float tolerance, not bit for bit;
/// the optimiser amplifies early rounding only slowly.
pub fn assert_curves_agree(generic: &[f32], kernels: &[f32], margin: f32) {
    let (first, last) = (generic[0], generic[generic.len() - 1]);
    assert!(last < first - margin, "the run must learn: {generic:?}");
    assert_eq!(generic.len(), kernels.len(), "curve lengths differ");
    for (step, (g, k)) in generic.iter().zip(kernels).enumerate() {
        let relative = (g - k).abs() / g.abs().max(1.0);
        assert!(
            relative < 1e-3,
            "step {step}: generic {g}, kernels {k} (relative {relative:.2e})"
        );
    }
}
