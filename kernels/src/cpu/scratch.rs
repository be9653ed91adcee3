//! Reusable scratch memory for the CPU twins. Their large transient buffers (im2col columns,
//! per-item weight-gradient partials: up to tens of MB per call) would otherwise come fresh
//! from mmap on every call and go back on return. Profiled on a resnet18_in step, first-touch
//! page faults on them, with the TLB shootdowns each costs a multi-threaded process, took over
//! a quarter of the time.

use bytemuck::Pod;
use std::sync::Mutex;

/// Buffers waiting for reuse, as u64 words (aligned for f32 and f64).
static POOL: Mutex<Vec<Vec<u64>>> = Mutex::new(Vec::new());

/// Most bytes the pool keeps; beyond it, returned buffers are freed.
const POOL_MAX_BYTES: usize = 1 << 30;

/// A buffer of at least the asked length, from the pool when one is large enough. Its
/// contents are arbitrary: callers write every element they later read.
pub(crate) struct Scratch {
    words: Vec<u64>,
}

impl Scratch {
    pub(crate) fn take<T: Pod>(len: usize) -> Scratch {
        let words = (len * std::mem::size_of::<T>()).div_ceil(8);
        let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
        // The smallest pooled buffer that is large enough.
        let pick = pool
            .iter()
            .enumerate()
            .filter(|(_, b)| b.len() >= words)
            .min_by_key(|(_, b)| b.len())
            .map(|(i, _)| i);
        let words = match pick {
            Some(i) => pool.swap_remove(i),
            None => vec![0u64; words],
        };
        Scratch { words }
    }

    /// The first `len` elements as T.
    pub(crate) fn slice<T: Pod>(&mut self, len: usize) -> &mut [T] {
        &mut bytemuck::cast_slice_mut(&mut self.words)[..len]
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let words = std::mem::take(&mut self.words);
        let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
        let held: usize = pool.iter().map(|b| b.len() * 8).sum();
        if held + words.len() * 8 <= POOL_MAX_BYTES {
            pool.push(words);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Scratch;

    #[test]
    fn buffers_fit_the_type_and_length_asked() {
        {
            let mut s = Scratch::take::<f64>(1000);
            s.slice::<f64>(1000)[999] = 1.0;
        }
        // Possibly the buffer just returned (8000 bytes): 2001 f32 still fit.
        let mut s = Scratch::take::<f32>(2001);
        assert_eq!(s.slice::<f32>(2001).len(), 2001);
        let mut t = Scratch::take::<f64>(3);
        assert_eq!(t.slice::<f64>(3).len(), 3);
    }
}
