//! A thread team: a set of workers of initcore's Rayon pool, with the calling thread as worker
//! 0 (the leader), that runs a whole training step — or a run of steps — as one parallel
//! program. The leader executes the program; at each parallel phase it publishes the phase's
//! function, every member runs `f(worker, size)` on its static share, and the leader waits
//! until all have finished before going on. This replaces one fork-join (a Rayon job handed to
//! sleeping threads, tens of µs to wake on these VMs) per kernel with two cache-line handoffs
//! per phase (about a µs) between threads that are already awake.
//!
//! ```text
//! leader:  admit workers ─ phase₁: publish f₁, run f₁(0), wait ─ serial work ─ phase₂ … ─ exit
//! worker:  join ───────────  wait, run f₁(w), done ───────────────  wait, run f₂(w) … ─ leave
//! ```
//!
//! Admission: the team's workers are `T − 1` jobs spawned on the pool (`Scope::spawn`, so Rayon
//! stays the one thread provider and the at-fork handler's reset covers the team). A job that
//! starts within the admission window (`ADMIT`) joins with the next id; the leader then closes
//! the team, and a job that starts later leaves at once. So a pool busy with other work (another
//! Python thread's kernels, another team) gives a smaller team, never a deadlock: no member
//! ever waits for a thread that has not joined. Results must therefore not depend on the team's
//! size — every phase splits its work so that any split gives the same bits (see
//! `network_team.rs`).
//!
//! Waiting (`wait_until`): spin for `SPIN` with `spin_loop` (phases are µs apart), then yield
//! for `YIELD` (the leader may be doing serial work: the loss, gathering a batch), then sleep in
//! short `park_timeout` slices (the leader is away: a progress poll that takes the GIL).
//!
//! Members never hand work to the pool (`parallel::TeamMember` makes every kernel serial on
//! them): the pool's other threads are inside the team, and a job queued for them would wait
//! forever. A panic in a phase is caught, the phase completes, and the leader reports it as an
//! error, so a broken phase cannot leave a member waiting forever.

use super::parallel::{self, TeamMember};
use super::ShapeError;
use std::cell::Cell;
use std::marker::PhantomData;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a waiting member spins, then yields, before it sleeps.
const SPIN: Duration = Duration::from_micros(2);
const YIELD: Duration = Duration::from_micros(1000);
/// One sleep of a waiting member (its wake-up latency once the leader is long away).
const NAP: Duration = Duration::from_micros(200);
/// How long the leader waits for its workers to join.
const ADMIT: Duration = Duration::from_millis(2);
/// Set in `joined` when admission closes.
const CLOSED: usize = 1 << (usize::BITS - 1);

/// The function of one phase: `f(worker, team_size)`.
pub type PhaseFn<'a> = dyn Fn(usize, usize) -> Result<(), ShapeError> + Sync + 'a;

/// A thin pointer to the current phase's `&PhaseFn` (a fat pointer cannot be stored atomically).
type Slot = *const PhaseFn<'static>;

struct Shared {
    /// Members so far (the leader counts), `CLOSED` once admission ends.
    joined: AtomicUsize,
    /// Phase generation: the leader bumps it to start a phase (or to end the team).
    gen: AtomicUsize,
    /// Workers (not the leader) done with the current phase.
    done: AtomicUsize,
    exit: AtomicBool,
    /// The current phase's function, as a pointer to a `Slot` on the leader's stack.
    job: AtomicPtr<Slot>,
    /// The first error or panic of the current phase.
    failed: Mutex<Option<ShapeError>>,
}

/// The leader's handle on a running team; see the module documentation.
pub struct Team<'t> {
    shared: &'t Shared,
    size: usize,
    /// Not `Sync`: only the leader may start phases (a phase that captured the team and called
    /// `run` from a worker would wait for itself).
    _leader_only: PhantomData<Cell<()>>,
}

/// Spins, yields, then naps until `ready()`.
#[inline]
fn wait_until(ready: impl Fn() -> bool) {
    let mut spins = 0u32;
    let start = Instant::now();
    loop {
        if ready() {
            return;
        }
        spins += 1;
        if !spins.is_multiple_of(64) {
            std::hint::spin_loop();
            continue;
        }
        let waited = start.elapsed();
        if waited < SPIN {
            std::hint::spin_loop();
        } else if waited < SPIN + YIELD {
            std::thread::yield_now();
        } else {
            std::thread::park_timeout(NAP);
        }
    }
}

fn record(shared: &Shared, e: ShapeError) {
    let mut slot = shared.failed.lock().unwrap_or_else(|p| p.into_inner());
    slot.get_or_insert(e);
}

fn run_guarded(shared: &Shared, f: &PhaseFn<'_>, w: usize, size: usize) {
    match catch_unwind(AssertUnwindSafe(|| f(w, size))) {
        Ok(Ok(())) => {}
        Ok(Err(e)) => record(shared, e),
        Err(_) => record(
            shared,
            ShapeError(format!("a team worker panicked in a phase (worker {w} of {size})")),
        ),
    }
}

/// A spawned job: join if admission is open, then run phases until the leader ends the team.
fn worker(shared: &Shared) {
    let mut j = shared.joined.load(Ordering::Acquire);
    let id = loop {
        if j & CLOSED != 0 {
            return;
        }
        match shared
            .joined
            .compare_exchange_weak(j, j + 1, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => break j,
            Err(now) => j = now,
        }
    };
    let _member = TeamMember::enter();
    // Admission closes before the first phase, so the size is final once a phase starts.
    let mut seen = 0;
    loop {
        wait_until(|| shared.gen.load(Ordering::Acquire) != seen);
        seen = shared.gen.load(Ordering::Acquire);
        if shared.exit.load(Ordering::Acquire) {
            return;
        }
        let size = shared.joined.load(Ordering::Acquire) & !CLOSED;
        // SAFETY: the leader stored a pointer to a live `Slot` before bumping `gen` (Release,
        // read above with Acquire), and keeps both the slot and the function it points to alive
        // until every worker has counted itself in `done` for this phase.
        let f: &PhaseFn<'_> = unsafe { &**shared.job.load(Ordering::Acquire) };
        run_guarded(shared, f, id, size);
        shared.done.fetch_add(1, Ordering::AcqRel);
    }
}

impl Team<'_> {
    /// Members, the leader included.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Runs `f(w, size)` on every member `w` (the leader is 0) and returns when all are done;
    /// the first error any member returned (or a panic, as an error) is the result. On a team
    /// of one this is a plain call.
    pub fn run(&self, f: &PhaseFn<'_>) -> Result<(), ShapeError> {
        if self.size == 1 {
            return f(0, 1);
        }
        let sh = self.shared;
        // SAFETY (lifetime erasure): workers use the pointer only between the `gen` bump below
        // and their `done` increment, and this function does not return before `done` counts
        // every worker, so `f` outlives every use.
        let slot: Slot = unsafe { std::mem::transmute::<*const PhaseFn<'_>, Slot>(f as *const PhaseFn<'_>) };
        sh.job.store(&slot as *const Slot as *mut Slot, Ordering::Release);
        sh.done.store(0, Ordering::Release);
        sh.gen.fetch_add(1, Ordering::AcqRel);
        run_guarded(sh, f, 0, self.size);
        let workers = self.size - 1;
        wait_until(|| sh.done.load(Ordering::Acquire) == workers);
        match sh.failed.lock().unwrap_or_else(|p| p.into_inner()).take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// Runs `body` with a team of up to `want` members (the calling thread and `want − 1` workers
/// of initcore's pool; fewer if the pool is smaller or busy). `want <= 1`, a one-thread pool,
/// or a caller already inside a team runs `body` with a team of one, on the calling thread,
/// with nothing spawned. Every member runs kernels serially while the team lives.
pub fn with_team<R>(want: usize, body: impl FnOnce(&Team<'_>) -> R) -> R {
    let shared = Shared {
        joined: AtomicUsize::new(1),
        gen: AtomicUsize::new(0),
        done: AtomicUsize::new(0),
        exit: AtomicBool::new(false),
        job: AtomicPtr::new(std::ptr::null_mut()),
        failed: Mutex::new(None),
    };
    let want = if parallel::in_team() {
        1
    } else {
        want.min(parallel::pool_size())
    };
    if want <= 1 {
        let _member = TeamMember::enter();
        shared.joined.store(1 | CLOSED, Ordering::Release);
        return body(&Team {
            shared: &shared,
            size: 1,
            _leader_only: PhantomData,
        });
    }
    let pool = parallel::pool();
    let sh = &shared;
    pool.in_place_scope(|s| {
        for _ in 1..want {
            s.spawn(move |_| worker(sh));
        }
        let start = Instant::now();
        wait_until(|| sh.joined.load(Ordering::Acquire) >= want || start.elapsed() >= ADMIT);
        let size = sh.joined.fetch_or(CLOSED, Ordering::AcqRel) & !CLOSED;
        let _member = TeamMember::enter();
        // Ends the team even if `body` panics, so that no worker waits forever.
        struct End<'a>(&'a Shared);
        impl Drop for End<'_> {
            fn drop(&mut self) {
                self.0.exit.store(true, Ordering::Release);
                self.0.gen.fetch_add(1, Ordering::AcqRel);
            }
        }
        let _end = End(sh);
        body(&Team {
            shared: sh,
            size,
            _leader_only: PhantomData,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    #[test]
    fn every_member_runs_every_phase_once() {
        for want in [1, 2, 3, 8] {
            let hits: Vec<AtomicU64> = (0..8).map(|_| AtomicU64::new(0)).collect();
            let size = with_team(want, |team| {
                for _ in 0..1000 {
                    team.run(&|w, n| {
                        assert!(w < n);
                        hits[w].fetch_add(1, Ordering::Relaxed);
                        Ok(())
                    })
                    .unwrap();
                }
                team.size()
            });
            assert!(size >= 1 && size <= want);
            for (w, h) in hits.iter().enumerate() {
                let want_hits = if w < size { 1000 } else { 0 };
                assert_eq!(h.load(Ordering::Relaxed), want_hits, "want {want}, worker {w}");
            }
        }
    }

    #[test]
    fn phases_see_each_others_writes() {
        // Each phase reads what the previous phase wrote on other members.
        let data: Vec<AtomicUsize> = (0..64).map(|_| AtomicUsize::new(0)).collect();
        with_team(3, |team| {
            for round in 1..200 {
                team.run(&|w, n| {
                    for (i, d) in data.iter().enumerate().skip(w).step_by(n) {
                        assert_eq!(d.load(Ordering::Relaxed), (round - 1) * i);
                    }
                    Ok(())
                })
                .unwrap();
                team.run(&|w, n| {
                    // A different split than the reader's: writes cross members.
                    let per = data.len().div_ceil(n);
                    for (i, d) in data.iter().enumerate().skip(w * per).take(per) {
                        d.store(round * i, Ordering::Relaxed);
                    }
                    Ok(())
                })
                .unwrap();
            }
        });
    }

    #[test]
    fn errors_and_panics_come_back_as_errors() {
        with_team(3, |team| {
            let last = team.size() - 1;
            let e = team.run(&|w, _| {
                if w == last {
                    Err(ShapeError("bad".into()))
                } else {
                    Ok(())
                }
            });
            assert_eq!(e.unwrap_err().0, "bad");
            if team.size() > 1 {
                let e = team.run(&|w, _| {
                    if w == 1 {
                        panic!("boom");
                    }
                    Ok(())
                });
                assert!(e.unwrap_err().0.contains("panicked"));
            }
            // The team still works.
            team.run(&|_, _| Ok(())).unwrap();
        });
    }

    #[test]
    fn members_run_kernels_serially_and_teams_do_not_nest() {
        with_team(2, |team| {
            team.run(&|_, _| {
                assert!(parallel::in_team());
                assert_eq!(parallel::num_threads(), 1);
                assert_eq!(parallel::threads_for(usize::MAX / 2), 1);
                with_team(4, |inner| assert_eq!(inner.size(), 1));
                Ok(())
            })
            .unwrap();
        });
        assert!(!parallel::in_team());
    }

    /// What a team costs: forming one, and one phase (empty, and with ~20 µs of work per
    /// member). `cargo test --release --lib team_costs -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn team_costs() {
        let work = |us: f64| {
            let t = Instant::now();
            while t.elapsed().as_secs_f64() * 1e6 < us {
                std::hint::spin_loop();
            }
        };
        for want in [2, 3] {
            let (mut form, mut sizes) = (f64::INFINITY, vec![]);
            for _ in 0..200 {
                let t = Instant::now();
                let s = with_team(want, |team| team.size());
                form = form.min(t.elapsed().as_secs_f64());
                sizes.push(s);
                work(200.0);
            }
            let full = sizes.iter().filter(|&&s| s == want.min(parallel::pool_size())).count();
            let (mut empty, mut busy) = (vec![], vec![]);
            with_team(want, |team| {
                for _ in 0..2000 {
                    let t = Instant::now();
                    team.run(&|_, _| Ok(())).unwrap();
                    empty.push(t.elapsed().as_secs_f64());
                    let t = Instant::now();
                    team.run(&|_, _| {
                        work(20.0);
                        Ok(())
                    })
                    .unwrap();
                    busy.push(t.elapsed().as_secs_f64() - 20e-6);
                }
            });
            empty.sort_by(f64::total_cmp);
            busy.sort_by(f64::total_cmp);
            let us = |v: &[f64], q: f64| v[((v.len() - 1) as f64 * q) as usize] * 1e6;
            println!(
                "team of {want} (pool {}): forming min {:.1} us, full in {full}/200; empty phase min/median/p99 {:.2}/{:.2}/{:.2} us; 20-us phase overhead {:.2}/{:.2}/{:.2} us",
                parallel::pool_size(),
                form * 1e6,
                us(&empty, 0.0),
                us(&empty, 0.5),
                us(&empty, 0.99),
                us(&busy, 0.0),
                us(&busy, 0.5),
                us(&busy, 0.99)
            );
        }
    }
}
