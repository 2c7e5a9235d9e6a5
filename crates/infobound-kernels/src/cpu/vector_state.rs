//! Clearing the upper halves of the x86 vector registers after faer's GEMM.
//!
//! faer's f32 kernels on x86-64 are `private-gemm-x86`'s generated assembly, which returns with
//! the upper bits of the YMM/ZMM registers still set (no `vzeroupper`, which compiled code
//! issues before it returns). Until something clears them, every legacy-SSE instruction on that
//! thread — this crate's own loops (built for baseline x86-64), flex's element-wise ops, libm —
//! waits on a merge with that stale state. Measured on the 1-channel β-TCVAE step: 65 ms with its
//! linear layers on faer, 48 ms with the state cleared after each GEMM, against 50 ms with the
//! layers on flex's own matmul.

use faer::Par;

/// `vzeroupper` on the calling thread (nothing on CPUs without AVX or off x86-64).
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
pub(crate) fn clear_upper_state() {
    if std::arch::is_x86_feature_detected!("avx") {
        // SAFETY: the CPU supports AVX (checked just above), the only requirement of
        // `vzeroupper`. It zeroes bits 128 and up of YMM/ZMM 0–15, which the x86-64 calling
        // convention leaves caller-saved, so no live value can be held there across this call.
        unsafe { std::arch::x86_64::_mm256_zeroupper() }
    }
}

/// `vzeroupper` on the calling thread (nothing on CPUs without AVX or off x86-64).
#[cfg(not(target_arch = "x86_64"))]
pub(crate) fn clear_upper_state() {}

/// Clears the state on every thread that a GEMM run with `par` may have used: the calling
/// thread, and for a parallel GEMM every thread of the rayon pool.
pub(crate) fn clear_after(par: Par) {
    clear_upper_state();
    if !matches!(par, Par::Seq) {
        rayon::broadcast(|_| clear_upper_state());
    }
}
