//! Reuse of the host estimators' large f64 buffers between calls on one thread.
//!
//! The vMF and RBF score estimators need a few B × B and B × d f64 buffers per call (hundreds of
//! KiB to MiB). glibc serves such sizes from fresh pages and returns them to the system when
//! they are freed, so every call paid a page fault per 4 KiB (at (B, d) = (256, 256) about 225
//! faults, 0.4 of 1.8 ms; at (128, 2048) 1 400 faults, 2.8 of 4.8 ms, on the bench machine's
//! virtual CPU). Each thread keeps up to [`KEPT`] freed buffers and [`KEPT`] freed matrices
//! instead: the memory held is at most that many of the largest the thread has used. Contents
//! never carry over: [`zeroed`] and [`zeroed_square`] hand out zeros.

use std::cell::RefCell;

use faer::Mat;

/// Buffers a thread keeps for reuse.
const KEPT: usize = 4;

thread_local! {
    static FREE: RefCell<Vec<Vec<f64>>> = const { RefCell::new(Vec::new()) };
    static SQUARES: RefCell<Vec<Mat<f64>>> = const { RefCell::new(Vec::new()) };
}

/// `len` zeros, in a buffer this thread used before where one is large enough.
pub(crate) fn zeroed(len: usize) -> Vec<f64> {
    match FREE.with(|free| take_fitting(&mut free.borrow_mut(), len, Vec::capacity)) {
        Some(mut buffer) => {
            buffer.clear();
            buffer.resize(len, 0.0);
            buffer
        }
        None => vec![0.0; len],
    }
}

/// Returns `buffer` for reuse by [`zeroed`] on this thread.
pub(crate) fn recycle(buffer: Vec<f64>) {
    FREE.with(|free| keep(&mut free.borrow_mut(), buffer, Vec::capacity));
}

/// The `size × size` zero matrix, in a matrix this thread used before where one is large
/// enough. A `faer` matrix rather than a [`zeroed`] slice: its columns are aligned for SIMD,
/// which the Cholesky factorisation needs to run at full speed (B = 512 took 1.3 ms more on
/// an 8-byte-aligned slice).
pub(crate) fn zeroed_square(size: usize) -> Mat<f64> {
    match SQUARES.with(|free| take_fitting(&mut free.borrow_mut(), size, Mat::nrows)) {
        Some(mut matrix) => {
            matrix.truncate(0, 0);
            matrix.resize_with(size, size, |_, _| 0.0);
            matrix
        }
        None => Mat::zeros(size, size),
    }
}

/// Returns the square `matrix` for reuse by [`zeroed_square`] on this thread. Its size is what
/// it is kept under: its allocation holds at least that.
pub(crate) fn recycle_square(matrix: Mat<f64>) {
    SQUARES.with(|free| keep(&mut free.borrow_mut(), matrix, Mat::nrows));
}

/// Removes and returns the smallest kept item whose `size` is at least `needed`.
fn take_fitting<T>(free: &mut Vec<T>, needed: usize, size: impl Fn(&T) -> usize) -> Option<T> {
    let fitting = free
        .iter()
        .enumerate()
        .filter(|(_, item)| size(item) >= needed)
        .min_by_key(|(_, item)| size(item))
        .map(|(index, _)| index)?;
    Some(free.swap_remove(fitting))
}

/// Keeps `item`, then drops the smallest kept item while more than [`KEPT`] are kept.
fn keep<T>(free: &mut Vec<T>, item: T, size: impl Fn(&T) -> usize) {
    free.push(item);
    if free.len() > KEPT {
        let smallest = free
            .iter()
            .enumerate()
            .min_by_key(|(_, item)| size(item))
            .map(|(index, _)| index);
        if let Some(index) = smallest {
            free.swap_remove(index);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reused buffer comes back as zeros of the asked length, whatever it held.
    #[test]
    fn reused_buffers_are_zeroed() {
        let mut first = zeroed(1000);
        first.iter_mut().for_each(|value| *value = 7.0);
        let address = first.as_ptr();
        recycle(first);
        let second = zeroed(500);
        assert_eq!(second.as_ptr(), address, "the buffer was not reused");
        assert_eq!(second, vec![0.0; 500]);
        recycle(second);
        let third = zeroed(2000);
        assert_eq!(third, vec![0.0; 2000]);
    }

    /// A reused matrix comes back as the zero matrix of the asked size.
    #[test]
    fn reused_matrices_are_zero() {
        let mut first = zeroed_square(40);
        first.fill(3.0);
        recycle_square(first);
        let second = zeroed_square(30);
        assert_eq!(second, Mat::<f64>::zeros(30, 30));
        recycle_square(second);
        assert_eq!(zeroed_square(50), Mat::<f64>::zeros(50, 50));
    }

    /// At most `KEPT` buffers stay with a thread, the largest ones.
    #[test]
    fn keeps_the_largest_buffers() {
        std::thread::spawn(|| {
            for len in 1..=KEPT + 3 {
                recycle(vec![0.0; len * 10]);
            }
            let kept: Vec<usize> = FREE.with(|free| {
                let mut sizes: Vec<usize> = free
                    .borrow()
                    .iter()
                    .map(|buffer| buffer.capacity())
                    .collect();
                sizes.sort_unstable();
                sizes
            });
            let expected: Vec<usize> = (4..=KEPT + 3).map(|len| len * 10).collect();
            assert_eq!(kept, expected);
        })
        .join()
        .expect("thread");
    }
}
