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
//!
//! fork: a forked child has only the thread that called `fork`; the pool's worker threads stay
//! in the parent, and a job handed to them would wait forever. A `pthread_atfork` child handler
//! therefore forgets the pool in the child (leaked, not dropped: dropping would try to join
//! threads that do not exist there), and the child's first parallel kernel builds a fresh one.
//! This is what Python's `multiprocessing` "fork" start method needs (the default on Linux up to
//! Python 3.13).

use rayon::prelude::*;
use rayon::{ThreadPool, ThreadPoolBuilder};
use std::cell::Cell;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Once, OnceLock, RwLock, TryLockError};

pub use super::team::{with_team, Team};

thread_local! {
    /// Set while this thread is a member of a [`Team`]: every kernel it calls then runs on it
    /// alone. A team member must never hand work to the pool: the pool's other threads are
    /// inside the team, waiting at its barrier, and would never pick the work up.
    static IN_TEAM: Cell<bool> = const { Cell::new(false) };
}

/// Whether the calling thread is inside a team (see `IN_TEAM`).
#[inline]
pub fn in_team() -> bool {
    IN_TEAM.with(|c| c.get())
}

/// Marks the calling thread a team member until the guard drops.
pub(crate) struct TeamMember(bool);

impl TeamMember {
    pub(crate) fn enter() -> Self {
        Self(IN_TEAM.with(|c| c.replace(true)))
    }
}

impl Drop for TeamMember {
    fn drop(&mut self) {
        let was = self.0;
        IN_TEAM.with(|c| c.set(was));
    }
}

/// Elements of work below which a kernel stays on the calling thread.
pub const PAR_THRESHOLD: usize = 1 << 15;

/// The most threads a pool may have: more than any CPU this code meets has cores, and few
/// enough that a mistyped count fails at once instead of spending seconds spawning threads.
pub const MAX_THREADS: usize = 1024;

static POOL: RwLock<Option<Arc<ThreadPool>>> = RwLock::new(None);

/// The size of the last pool built (0: none yet), so that a forked child's new pool has the
/// size the parent chose with `set_num_threads`.
static POOL_SIZE: AtomicUsize = AtomicUsize::new(0);

/// Set in a forked child if another parent thread held `POOL`'s lock at the moment of the fork:
/// that thread does not exist in the child, so the lock never frees, and the child uses
/// `CHILD_POOL` instead.
static POOL_LOCK_LOST: AtomicBool = AtomicBool::new(false);
static CHILD_POOL: OnceLock<Arc<ThreadPool>> = OnceLock::new();
static AT_FORK: Once = Once::new();

/// Runs in the child, inside `fork()`, with one thread: only a try-lock, no allocation.
extern "C" fn forget_pool_in_child() {
    match POOL.try_write() {
        Ok(mut guard) => std::mem::forget(guard.take()),
        Err(TryLockError::Poisoned(e)) => std::mem::forget(e.into_inner().take()),
        Err(TryLockError::WouldBlock) => POOL_LOCK_LOST.store(true, Ordering::SeqCst),
    }
}

fn register_at_fork() {
    #[cfg(unix)]
    AT_FORK.call_once(|| {
        // SAFETY: the handler is an `extern "C" fn()` with static lifetime; registration only
        // fails for lack of memory, and then forks behave as before (nothing is unsound).
        unsafe {
            libc::pthread_atfork(None, None, Some(forget_pool_in_child));
        }
    });
}

/// `INITCORE_NUM_THREADS` if it is a whole number in `1..=MAX_THREADS`, else `None` (the
/// Python package warns about a value it cannot use).
pub fn env_threads() -> Option<usize> {
    std::env::var("INITCORE_NUM_THREADS")
        .ok()
        .and_then(|s| s.trim().parse::<usize>().ok())
        .filter(|&n| (1..=MAX_THREADS).contains(&n))
}

fn default_threads() -> usize {
    env_threads().unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .min(MAX_THREADS)
    })
}

fn build(n: usize) -> Result<Arc<ThreadPool>, String> {
    let p = ThreadPoolBuilder::new()
        .num_threads(n)
        .thread_name(|i| format!("initcore-{i}"))
        .build()
        .map(Arc::new)
        .map_err(|e| e.to_string())?;
    POOL_SIZE.store(n, Ordering::Relaxed);
    Ok(p)
}

/// The size for a new pool: the last one's (a forked child keeps its parent's choice), else
/// the default.
fn next_size() -> usize {
    match POOL_SIZE.load(Ordering::Relaxed) {
        0 => default_threads(),
        n => n,
    }
}

/// The pool, created on first use (and again in a forked child).
pub fn pool() -> Arc<ThreadPool> {
    if POOL_LOCK_LOST.load(Ordering::Relaxed) {
        return CHILD_POOL
            .get_or_init(|| build(next_size()).unwrap_or_else(|_| build(1).expect("a one-thread pool")))
            .clone();
    }
    register_at_fork();
    if let Some(p) = POOL.read().unwrap_or_else(|e| e.into_inner()).as_ref() {
        return p.clone();
    }
    let mut guard = POOL.write().unwrap_or_else(|e| e.into_inner());
    if guard.is_none() {
        let n = next_size();
        *guard = Some(build(n).unwrap_or_else(|_| build(1).expect("a one-thread pool")));
    }
    guard.as_ref().unwrap().clone()
}

/// Number of threads kernels may use: the pool's size, or 1 inside a team.
pub fn num_threads() -> usize {
    if in_team() {
        return 1;
    }
    pool().current_num_threads()
}

/// The pool's size, whatever thread asks.
pub fn pool_size() -> usize {
    pool().current_num_threads()
}

/// Whether training steps may run on a thread team (`team.rs`): 0 = not decided yet (then the
/// `INITCORE_TEAM` variable decides: off if `0`, on otherwise), 1 = yes, 2 = no.
///
/// On by default: on a quiet 2-core machine the team made the 60,000-sample epoch 1.4-1.6x
/// faster and every step workload as fast or faster (README "Benchmarks"). When the team's
/// threads must share one CPU (an oversubscribed machine), each phase handoff waits for a
/// yield instead of a spin; `INITCORE_TEAM=0` then returns to one fork-join per kernel.
static TEAM: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

/// Whether a training step may run on a thread team; see `set_team_enabled`.
pub fn team_enabled() -> bool {
    match TEAM.load(Ordering::Relaxed) {
        1 => true,
        2 => false,
        _ => {
            let on = std::env::var("INITCORE_TEAM").map_or(true, |v| v.trim() != "0");
            TEAM.store(if on { 1 } else { 2 }, Ordering::Relaxed);
            on
        }
    }
}

/// Turns the team step on or off (off: each kernel forks and joins on its own, as before the
/// team; for comparisons). Results are the same bits either way.
pub fn set_team_enabled(on: bool) {
    TEAM.store(if on { 1 } else { 2 }, Ordering::Relaxed);
}

/// Replaces the pool with one of `n` threads (`n >= 1`). Calls already running keep the old one.
pub fn set_num_threads(n: usize) -> Result<(), String> {
    if !(1..=MAX_THREADS).contains(&n) {
        return Err(format!("the number of threads must be in 1..={MAX_THREADS}, got {n}"));
    }
    if POOL_LOCK_LOST.load(Ordering::Relaxed) {
        return Err("set_num_threads is unavailable in this forked child (its pool is fixed)".into());
    }
    register_at_fork();
    let p = build(n)?;
    *POOL.write().unwrap_or_else(|e| e.into_inner()) = Some(p);
    Ok(())
}

/// How many threads `work` elements deserve: 1 below the threshold, else at most one thread per
/// `PAR_THRESHOLD` elements, capped by the pool size.
#[inline]
pub fn threads_for(work: usize) -> usize {
    if work < 2 * PAR_THRESHOLD || in_team() {
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
    fn thread_counts_are_bounded() {
        assert!(set_num_threads(0).is_err());
        assert!(set_num_threads(MAX_THREADS + 1).is_err());
        assert!(set_num_threads(usize::MAX).is_err());
    }

    /// A child forked after the pool has run parallel work must get a working pool.
    #[cfg(unix)]
    #[test]
    fn a_forked_child_gets_a_fresh_pool() {
        let sum = |n: u64| install(|| (0..n).into_par_iter().sum::<u64>());
        assert_eq!(sum(1_000_000), 499_999_500_000);
        // SAFETY: the child only runs Rust code of this crate and leaves with `_exit`.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            let ok = sum(1_000_000) == 499_999_500_000;
            unsafe { libc::_exit(if ok { 0 } else { 1 }) };
        }
        let mut status = 0;
        // Poll with a deadline: a hung child fails the test instead of hanging it.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
            if r == pid {
                break;
            }
            if std::time::Instant::now() > deadline {
                unsafe { libc::kill(pid, libc::SIGKILL) };
                panic!("the forked child hung in the thread pool");
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
    }

    #[test]
    fn threshold_keeps_small_work_serial() {
        assert_eq!(threads_for(10), 1);
        assert_eq!(threads_for(PAR_THRESHOLD), 1);
    }
}
