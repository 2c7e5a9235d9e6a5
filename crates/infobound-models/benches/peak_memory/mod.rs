//! Peak heap memory of one bench step, beside criterion's time.
//!
//! [`CountingAllocator`] is the bench binary's global allocator: mimalloc (the allocator the
//! `infobound` binary runs with) plus two relaxed atomic counters, the bytes live now and their
//! high-water mark since the last [`CountingAllocator::start_window`]. It counts the bytes asked
//! for (`Layout::size`), from every thread (Burn's and rayon's workers included), not the pages
//! mimalloc keeps resident.
//!
//! After criterion has timed a bench (its warm-up and samples ran), [`record_step`] runs ONE
//! more step in a window and reports, in bytes:
//! - `peak_bytes`: the high-water mark during that step minus the bytes live before the
//!   workload was built, i.e. the workload's own peak footprint (parameters, optimiser state,
//!   inputs, and the step's activations, gradients and temporaries);
//! - `resident_bytes`: what the workload holds between steps (live at the step's start minus
//!   the same baseline);
//! - `step_bytes`: the step's transient part (`peak_bytes − resident_bytes`).
//!
//! Memory that the process allocates on first use and keeps (the backend's buffers) lands in
//! whichever bench comes first; a bench file settles it with throwaway steps before its first
//! baseline (`vae_step.rs`: `settle_process`).
//!
//! Output: one JSON object per bench on a line of its own,
//! `{"bench": "<criterion id>", "peak_bytes": …, "resident_bytes": …, "step_bytes": …}`,
//! appended to the file named by `INFOBOUND_BENCH_MEMORY` (`cargo xtask bench` sets it to
//! `<target>/bench-memory.jsonl` and reads it back into the `peak MiB` columns), and the same
//! figures on stderr. Each line is one `write` to a file opened for appending, and the bench
//! binaries run one after the other, so lines never interleave.

use std::alloc::{GlobalAlloc, Layout};
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};

/// mimalloc with a count of the live bytes and their high-water mark (see the module docs).
pub struct CountingAllocator {
    live: AtomicUsize,
    peak: AtomicUsize,
}

impl CountingAllocator {
    /// An allocator with nothing counted yet.
    pub const fn new() -> Self {
        Self {
            live: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
        }
    }

    /// Bytes allocated and not yet freed.
    pub fn live(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }

    /// Starts a measurement window: the high-water mark restarts from the live bytes now,
    /// which it returns.
    pub fn start_window(&self) -> usize {
        let now = self.live();
        self.peak.store(now, Ordering::Relaxed);
        now
    }

    /// The high-water mark of the live bytes since [`Self::start_window`].
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }

    fn grow(&self, bytes: usize) {
        let now = self.live.fetch_add(bytes, Ordering::Relaxed) + bytes;
        // A load first: most allocations do not raise the mark, and a load is cheaper than a
        // read-modify-write on a shared line.
        if now > self.peak.load(Ordering::Relaxed) {
            self.peak.fetch_max(now, Ordering::Relaxed);
        }
    }

    fn shrink(&self, bytes: usize) {
        self.live.fetch_sub(bytes, Ordering::Relaxed);
    }
}

// A global allocator is `unsafe` by definition (the workspace denies `unsafe_code`).
// SAFETY: every call is forwarded unchanged to mimalloc, which upholds the `GlobalAlloc`
// contract; the counters only observe sizes.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let ptr = unsafe { mimalloc::MiMalloc.alloc(layout) };
        if !ptr.is_null() {
            self.grow(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let ptr = unsafe { mimalloc::MiMalloc.alloc_zeroed(layout) };
        if !ptr.is_null() {
            self.grow(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) };
        self.shrink(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let new = unsafe { mimalloc::MiMalloc.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            if new_size >= layout.size() {
                self.grow(new_size - layout.size());
            } else {
                self.shrink(layout.size() - new_size);
            }
        }
        new
    }
}

/// Runs `step` once in a measurement window of `allocator` and reports the bench `id`'s
/// memory (module docs), relative to `baseline`: the live bytes before its workload was built.
pub fn record_step(allocator: &CountingAllocator, id: &str, baseline: usize, step: impl FnOnce()) {
    let start = allocator.start_window();
    step();
    let peak = allocator.peak();
    let record = serde_json::json!({
        "bench": id,
        "peak_bytes": peak.saturating_sub(baseline),
        "resident_bytes": start.saturating_sub(baseline),
        "step_bytes": peak.saturating_sub(start),
    });
    const MIB: f64 = 1024.0 * 1024.0;
    eprintln!(
        "peak memory {id}: {:.1} MiB ({:.1} MiB held between steps + {:.1} MiB during the step)",
        peak.saturating_sub(baseline) as f64 / MIB,
        start.saturating_sub(baseline) as f64 / MIB,
        peak.saturating_sub(start) as f64 / MIB,
    );
    let Some(path) = std::env::var_os("INFOBOUND_BENCH_MEMORY").map(std::path::PathBuf::from)
    else {
        return;
    };
    let line = format!("{record}\n");
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut file| file.write_all(line.as_bytes()));
    if let Err(e) = written {
        eprintln!("peak memory {id}: not written to {}: {e}", path.display());
    }
}
