//! Thread policy: one Rayon pool owned by initcore, and a work-size threshold under which a
//! kernel runs on the calling thread.
//!
//! Handing work to another thread costs a few microseconds; an MLP-sized elementwise op over
//! 128×256 values costs about as much. So every kernel asks `threads_for(work)` and runs
//! serially below `PAR_THRESHOLD` elements. The pool size comes from `set_num_threads`, else the
//! `INITCORE_NUM_THREADS` variable, else the number of CPUs.
//!
//! Determinism: work is split into blocks whose size never depends on the thread count, and
//! partial results are combined in block order, so every result is bit-identical for any
//! number of threads (see `map_blocks`).

use rayon::prelude::*;
use rayon::{ThreadPool, ThreadPoolBuilder};
use std::ops::Range;
use std::sync::{Arc, RwLock};

/// Elements of work below which a kernel stays on the calling thread.
pub const PAR_THRESHOLD: usize = 1 << 15;

static POOL: RwLock<Option<Arc<ThreadPool>>> = RwLock::new(None);

fn default_threads() -> usize {
    std::env::var("INITCORE_NUM_THREADS")
        .ok()
        .and_then(|s| s.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1))
}

fn build(n: usize) -> Result<Arc<ThreadPool>, String> {
    ThreadPoolBuilder::new()
        .num_threads(n)
        .thread_name(|i| format!("initcore-{i}"))
        .build()
        .map(Arc::new)
        .map_err(|e| e.to_string())
}

/// The pool, created on first use.
pub fn pool() -> Arc<ThreadPool> {
    if let Some(p) = POOL.read().unwrap_or_else(|e| e.into_inner()).as_ref() {
        return p.clone();
    }
    let mut guard = POOL.write().unwrap_or_else(|e| e.into_inner());
    if guard.is_none() {
        let n = default_threads();
        *guard = Some(build(n).unwrap_or_else(|_| build(1).expect("a one-thread pool")));
    }
    guard.as_ref().unwrap().clone()
}

/// Number of threads kernels may use.
pub fn num_threads() -> usize {
    pool().current_num_threads()
}

/// Replaces the pool with one of `n` threads (`n >= 1`). Calls already running keep the old one.
pub fn set_num_threads(n: usize) -> Result<(), String> {
    if n == 0 {
        return Err("the number of threads must be at least 1".into());
    }
    let p = build(n)?;
    *POOL.write().unwrap_or_else(|e| e.into_inner()) = Some(p);
    Ok(())
}

/// How many threads `work` elements deserve: 1 below the threshold, else at most one thread per
/// `PAR_THRESHOLD` elements, capped by the pool size.
#[inline]
pub fn threads_for(work: usize) -> usize {
    if work < 2 * PAR_THRESHOLD {
        1
    } else {
        (work / PAR_THRESHOLD).clamp(1, num_threads())
    }
}

/// Runs `f` inside initcore's pool (so nested Rayon calls, GEMM's included, use it).
pub fn install<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    pool().install(f)
}

/// Applies `f(offset, chunk)` to consecutive chunks of `out` of `chunk` elements (the last may
/// be shorter); `offset` is the chunk's first index, so `f` can read matching input ranges.
/// Runs in parallel when `out.len() * cost` elements of work deserve it.
pub fn for_each_chunk<T: Send>(out: &mut [T], chunk: usize, cost: usize, f: impl Fn(usize, &mut [T]) + Sync + Send) {
    let chunk = chunk.max(1);
    if threads_for(out.len().saturating_mul(cost)) > 1 {
        install(|| out.par_chunks_mut(chunk).enumerate().for_each(|(i, c)| f(i * chunk, c)))
    } else {
        out.chunks_mut(chunk).enumerate().for_each(|(i, c)| f(i * chunk, c))
    }
}

/// Maps the fixed blocks `[i·block, min((i+1)·block, len))` of `0..len` through `f` and returns
/// the results in block order. Block boundaries do not depend on the thread count, so a caller
/// that folds the results in order gets the same bits whether this ran on 1 thread or 64.
pub fn map_blocks<R: Send>(
    len: usize,
    block: usize,
    cost: usize,
    f: impl Fn(Range<usize>) -> R + Sync + Send,
) -> Vec<R> {
    let block = block.max(1);
    let nblocks = len.div_ceil(block);
    let range = |i: usize| i * block..((i + 1) * block).min(len);
    if nblocks > 1 && threads_for(len.saturating_mul(cost)) > 1 {
        install(|| (0..nblocks).into_par_iter().map(|i| f(range(i))).collect())
    } else {
        (0..nblocks).map(|i| f(range(i))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_blocks_is_ordered_and_covers_everything() {
        let parts = map_blocks(1_000_003, 4096, 1, |r| (r.start, r.end));
        assert_eq!(parts.first().unwrap().0, 0);
        assert_eq!(parts.last().unwrap().1, 1_000_003);
        for w in parts.windows(2) {
            assert_eq!(w[0].1, w[1].0);
        }
    }

    #[test]
    fn for_each_chunk_visits_every_element_once() {
        let mut v = vec![0u32; 200_001];
        for_each_chunk(&mut v, 1000, 1, |off, c| {
            for (j, x) in c.iter_mut().enumerate() {
                *x += (off + j) as u32;
            }
        });
        assert!(v.iter().enumerate().all(|(i, &x)| x == i as u32));
    }

    #[test]
    fn threshold_keeps_small_work_serial() {
        assert_eq!(threads_for(10), 1);
        assert_eq!(threads_for(PAR_THRESHOLD), 1);
    }
}
