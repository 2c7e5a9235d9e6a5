//! A bounded in-memory cache of rendered images, keyed by flat state index.

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};

/// Keeps up to `capacity` rendered `u8` images; once full, further images are rendered but not
/// stored (no eviction, so a training run over a fixed subset keeps its whole subset cached).
#[derive(Debug)]
pub(crate) struct RenderCache {
    capacity: usize,
    images: RwLock<HashMap<usize, Box<[u8]>>>,
}

impl RenderCache {
    /// An empty cache holding at most `capacity` images.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            images: RwLock::new(HashMap::new()),
        }
    }

    /// Copies image `index` into `out`, rendering it with `render` (and storing it while there is
    /// room) when it is not cached yet.
    pub(crate) fn render_through(&self, index: usize, out: &mut [u8], render: impl Fn(&mut [u8])) {
        // A panic while holding the lock cannot leave a half-written entry (entries are inserted
        // whole), so a poisoned lock is still safe to use.
        let full = {
            let images = self.images.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(image) = images.get(&index) {
                out.copy_from_slice(image);
                return;
            }
            images.len() >= self.capacity
        };
        render(out);
        // Once full, misses skip the write lock so rendering threads do not serialise on it.
        if !full {
            let mut images = self.images.write().unwrap_or_else(PoisonError::into_inner);
            if images.len() < self.capacity {
                images.entry(index).or_insert_with(|| out.into());
            }
        }
    }

    /// Number of cached images.
    pub(crate) fn len(&self) -> usize {
        self.images
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}
