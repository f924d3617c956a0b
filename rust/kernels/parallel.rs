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
//! number of threads. Every reduction over the rows of a matrix (column sums, batch-norm
//! statistics, column statistics, loss sums) does this one way, [`RowBlocks`]: the rows are cut
//! into fixed blocks of a kernel's own constant number of rows; each block, on whatever thread,
//! reduces its rows in order into its own part of a caller's workspace (and may write its rows
//! of a row-wise output on the way); then the parts are combined in block order on one thread
//! ([`fold_blocks`], [`RowBlocks::sum`], or a kernel's own merge). A block's arithmetic depends
//! only on its rows, and the combination only on the block order, so 1 thread, 64 threads, or a
//! team member computing a band of blocks (a band starts on a block boundary) give the same bits.
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
use std::ops::{Add, Range};
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
///
/// Read from `POOL_SIZE`, which every pool records when it is built, once there is one: every
/// kernel call asks, and `pool()` takes a lock and clones an `Arc` (on the tiny network, 1.5%
/// of a step).
pub fn num_threads() -> usize {
    if in_team() {
        return 1;
    }
    match POOL_SIZE.load(Ordering::Relaxed) {
        0 => pool().current_num_threads(),
        n => n,
    }
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

/// Like [`for_each_chunk`], over two outputs cut into the same number of chunks (`ca` elements
/// of `a` and `cb` of `b` per chunk): `f(chunk_index, a_chunk, b_chunk)`, in parallel when
/// `a.len() * cost` elements of work deserve it.
pub fn for_each_chunk_pair<A: Send, B: Send>(
    a: &mut [A],
    ca: usize,
    b: &mut [B],
    cb: usize,
    cost: usize,
    f: impl Fn(usize, &mut [A], &mut [B]) + Sync + Send,
) {
    let parallel = threads_for(a.len().saturating_mul(cost)) > 1;
    chunk_pairs(parallel, a, ca, b, cb, f)
}

fn chunk_pairs<A: Send, B: Send>(
    parallel: bool,
    a: &mut [A],
    ca: usize,
    b: &mut [B],
    cb: usize,
    f: impl Fn(usize, &mut [A], &mut [B]) + Sync + Send,
) {
    let (ca, cb) = (ca.max(1), cb.max(1));
    if parallel {
        install(|| {
            a.par_chunks_mut(ca)
                .zip(b.par_chunks_mut(cb))
                .enumerate()
                .for_each(|(i, (x, y))| f(i, x, y))
        })
    } else {
        a.chunks_mut(ca)
            .zip(b.chunks_mut(cb))
            .enumerate()
            .for_each(|(i, (x, y))| f(i, x, y))
    }
}

/// The fixed row blocks of a reduction over `n` rows (see the module docs): block `b` holds
/// rows `[b·rows, min((b+1)·rows, n))`, and its partial lives at `parts[b·stride..(b+1)·stride]`
/// of the caller's workspace (`count()·stride` values). `rows` is the kernel's own constant;
/// the blocks depend on nothing else, in particular not on the thread count.
///
/// `row_cost` is the work of one row in elementwise-op units: the blocks run in parallel when
/// `threads_for(n·row_cost)` says so (never inside a team), in any order; nothing here
/// allocates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RowBlocks {
    n: usize,
    rows: usize,
}

impl RowBlocks {
    /// `n` rows in blocks of `rows` (at least 1).
    pub const fn new(n: usize, rows: usize) -> Self {
        Self {
            n,
            rows: if rows == 0 { 1 } else { rows },
        }
    }

    /// Number of blocks, `⌈n/rows⌉`.
    pub const fn count(&self) -> usize {
        self.n.div_ceil(self.rows)
    }

    /// The rows of block `b` (empty past the last block).
    pub fn rows_of(&self, b: usize) -> Range<usize> {
        let r0 = b.saturating_mul(self.rows).min(self.n);
        r0..r0.saturating_add(self.rows).min(self.n)
    }

    fn parallel(&self, row_cost: usize) -> bool {
        self.count() > 1 && threads_for(self.n.saturating_mul(row_cost)) > 1
    }

    /// `f(rows, part)` for every block, `part` being its `stride` values of `parts`. Blocks
    /// past the end of `parts` do not run (the caller sizes it: `count()·stride`).
    pub fn for_each<P: Send>(
        &self,
        parts: &mut [P],
        stride: usize,
        row_cost: usize,
        f: impl Fn(Range<usize>, &mut [P]) + Sync + Send,
    ) {
        if stride == 0 {
            return;
        }
        let parts = head(parts, self.count().saturating_mul(stride));
        let f = |(b, p): (usize, &mut [P])| f(self.rows_of(b), p);
        if self.parallel(row_cost) {
            install(|| parts.par_chunks_mut(stride).enumerate().for_each(f))
        } else {
            parts.chunks_mut(stride).enumerate().for_each(f)
        }
    }

    /// [`for_each`](Self::for_each) that also hands each block its rows of the row-wise output
    /// `out` (`m` values per row): `f(rows, out_rows, part)`.
    pub fn for_each_with<T: Send, P: Send>(
        &self,
        out: &mut [T],
        m: usize,
        parts: &mut [P],
        stride: usize,
        row_cost: usize,
        f: impl Fn(Range<usize>, &mut [T], &mut [P]) + Sync + Send,
    ) {
        if m == 0 || stride == 0 {
            return;
        }
        let out = head(out, self.n.saturating_mul(m));
        let parts = head(parts, self.count().saturating_mul(stride));
        chunk_pairs(self.parallel(row_cost), out, self.rows * m, parts, stride, |b, o, p| {
            f(self.rows_of(b), o, p)
        })
    }

    /// `Σ_b f(rows_b, out_rows_b)` added in block order from 0, `((0 + s_0) + s_1) + …`, for
    /// reductions to one `f64` (the losses) that also write their rows of `out` (`m` per row).
    /// In parallel the blocks run in groups of `SUM_GROUP`, whose partials wait on the stack.
    pub fn sum<T: Send>(
        &self,
        out: &mut [T],
        m: usize,
        row_cost: usize,
        f: impl Fn(Range<usize>, &mut [T]) -> f64 + Sync + Send,
    ) -> f64 {
        if m == 0 {
            return 0.0;
        }
        let out = head(out, self.n.saturating_mul(m));
        let c = self.rows * m;
        if !self.parallel(row_cost) {
            return out
                .chunks_mut(c)
                .enumerate()
                .fold(0.0, |a, (b, o)| a + f(self.rows_of(b), o));
        }
        install(|| {
            let mut parts = [0.0f64; SUM_GROUP];
            let mut total = 0.0;
            for (g, group) in out.chunks_mut(SUM_GROUP * c).enumerate() {
                let parts = &mut parts[..group.len().div_ceil(c)];
                parts
                    .par_iter_mut()
                    .zip(group.par_chunks_mut(c))
                    .enumerate()
                    .for_each(|(i, (p, o))| *p = f(self.rows_of(g * SUM_GROUP + i), o));
                total = parts.iter().fold(total, |a, &p| a + p);
            }
            total
        })
    }
}

/// The first `len` values of `s` (all of them if it is shorter).
fn head<T>(s: &mut [T], len: usize) -> &mut [T] {
    let len = len.min(s.len());
    &mut s[..len]
}

/// Blocks per parallel group of [`RowBlocks::sum`]: 2 KiB of partials on the stack, and groups
/// large enough (256 blocks of rows) that one fork-join per group costs nothing that counts.
const SUM_GROUP: usize = 256;

/// `out ← ((p_0 + p_1) + p_2) + …`, the block partials added in block order, where `p_b` is the
/// first `out.len()` values of block `b`'s part `parts[b·stride..(b+1)·stride]` (block 0 is
/// copied, not added to 0; no blocks give 0). The one fold of [`RowBlocks`] partials.
pub fn fold_blocks<T: Copy + Default + Add<Output = T>>(parts: &[T], stride: usize, out: &mut [T]) {
    let mut blocks = parts.chunks(stride.max(1));
    match blocks.next() {
        Some(first) => out.iter_mut().zip(first).for_each(|(o, &v)| *o = v),
        None => out.fill(T::default()),
    }
    for part in blocks {
        out.iter_mut().zip(part).for_each(|(o, &v)| *o = *o + v);
    }
}

#[cfg(test)]
#[path = "parallel_tests.rs"]
mod tests;
