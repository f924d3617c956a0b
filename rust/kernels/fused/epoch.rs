//! A run of consecutive training steps (a whole epoch, or part of one) as one call: the batches
//! gathered from the caller's data in the caller's shuffled order, one `step::train_step` each, and
//! the running sums `fit` logs.
//!
//! ```text
//! for b in first .. first + count:                    batch b = order[b·B .. min((b+1)·B, len)]
//!     x_b, t_b ← rows order[batch b] of x, target     (gathered into workspace rows)
//!     L_b      ← train_step(x_b, t_b, lr_b, step₀ + (b − first))
//!     loss_sum += L_b · n_b;  correct += [argmax out_b = t_b] (cross-entropy) or
//!                             [(out_b > 0) = (t_b ≥ 0.5)] per entry (binary cross-entropy)
//! ```
//! This is `Sequential.fit`'s inner loop (`python/initcore/model.py`) with each step the fused
//! one, so the parameters, optimizer states and logs are the same bits as that loop's: the loss
//! sum is accumulated in `f64` in batch order exactly as `total += value * len(idx)` does, and
//! the accuracy test is NumPy's `argmax` (first maximum; a NaN wins) or its sign test.
//!
//! Dropout uniforms are the caller's: one flat array holding, step after step and layer after
//! layer, the `(n_b, width)` matrices `rng.random` would have drawn for each step. NumPy's
//! generators fill consecutive draws from one stream, so one draw of the total length is those
//! matrices back to back (the float32 path included: the buffered 32-bit half carries over
//! between calls exactly as within one).
//!
//! The caller may stop the run between steps: `poll` is called after every completed step
//! (with the progress so far) and returns `true` to stop. Nothing is left half-done: a stopped
//! run has completed `progress.steps` whole steps.

use super::network::Network;
use super::step::{check_target, np_argmax, train_step_on, Extras, Loss, Optimizer, State, Target};
use crate::ensure;
use crate::kernels::clip::Clip;
use crate::kernels::losses::LossFn;
use crate::kernels::parallel;
use crate::kernels::team::Team;
use crate::kernels::vmath::VMath;
use crate::kernels::ShapeError;

/// The data and schedule of one run of steps.
pub struct EpochArgs<'a, T> {
    /// All samples, `rows × input_dim`, and their targets (labels `(rows,)` or `(rows, C)`).
    pub x: &'a [T],
    pub rows: usize,
    pub target: Target<'a, T>,
    /// The epoch's row order and batch size; batch `b` is `order[b·batch .. (b+1)·batch]`.
    pub order: &'a [i64],
    pub batch: usize,
    /// The batches to run: `first .. first + count`.
    pub first: usize,
    pub count: usize,
    /// The dropout uniforms of these steps, back to back (empty without dropout).
    pub uniforms: &'a [T],
    /// The learning rate of every step, or one for all.
    pub lrs: Option<&'a [f64]>,
    pub lr: f64,
    /// The optimizer step count of the first step (counted from 1).
    pub step0: u64,
    /// The running `Σ loss_b · n_b` of the epoch's earlier batches, which this run continues.
    pub loss_sum0: f64,
    /// Per-sample weights of all `rows` (gathered per batch as the targets are), the loss's
    /// options and the clipping of every step (see `step::Extras`).
    pub weights: Option<&'a [T]>,
    pub loss_fn: Option<LossFn>,
    pub clip: Clip,
    /// Parameter groups (see `step::Extras`): with `lrs`, each group's rate is `lrs[s]·ratio`;
    /// without, the groups' own rates `param_lrs`.
    pub per_param: &'a [(Optimizer, f64)],
    pub param_lrs: Option<&'a [f64]>,
    /// The momentum / β₁ of every step for every parameter (OneCycle's cycled momentum,
    /// `train::Extras::momentum`), or the plan's.
    pub momentums: Option<&'a [f64]>,
}

/// What a run has done so far.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Progress {
    pub steps: usize,
    /// `loss_sum0 + Σ loss_b · n_b` over the completed steps.
    pub loss_sum: f64,
    /// Samples seen, and correct predictions out of `count` (classification losses).
    pub samples: usize,
    pub correct: usize,
    pub count: usize,
    /// Rows of the last completed batch (its output is in `out[..rows·C]`).
    pub last_rows: usize,
}

/// Gathered batch rows, sized for the largest batch (grown, never shrunk).
#[derive(Debug, Default)]
pub struct EpochWs<T> {
    x: Vec<T>,
    labels: Vec<i64>,
    values: Vec<T>,
    weights: Vec<T>,
}

impl<T: VMath> EpochWs<T> {
    pub fn new() -> Self {
        Self {
            x: vec![],
            labels: vec![],
            values: vec![],
            weights: vec![],
        }
    }

    fn reserve(&mut self, rows: usize, d: usize, c: usize, labels: bool) {
        if self.x.len() < rows * d {
            self.x = vec![T::zero(); rows * d];
        }
        if labels && self.labels.len() < rows {
            self.labels = vec![0; rows];
        }
        if !labels && self.values.len() < rows * c {
            self.values = vec![T::zero(); rows * c];
        }
    }
}

/// Rows of batch `b` of an order of `len` rows.
fn batch_range(b: usize, batch: usize, len: usize) -> std::ops::Range<usize> {
    (b * batch).min(len)..((b + 1) * batch).min(len)
}

/// Copies rows `idx` of the `width`-wide matrix `src` into the first `idx.len()` rows of `dst`.
fn gather<T: Copy>(src: &[T], width: usize, idx: &[i64], dst: &mut [T]) {
    for (row, &i) in dst.chunks_exact_mut(width).zip(idx) {
        let i = i as usize;
        row.copy_from_slice(&src[i * width..(i + 1) * width]);
    }
}

/// Largest batch (bytes of gathered rows) whose rows [`prefetch_rows`] fetches a step ahead.
/// A small batch's rows are a few cache lines each, scattered over the data set, and the copy
/// waits on each (the tiny network in `fit`, 32 rows of 256 B: the gather took 0.8 µs of a
/// 8.7 µs step, 0.5 µs with the prefetch); a step's compute is time enough to bring them in. A
/// large batch is left to the copy itself, whose long rows the hardware prefetcher follows:
/// fetching all of it ahead would only evict the step's own weights.
const PREFETCH_MAX_BYTES: usize = 32 << 10;

/// Asks the CPU to bring rows `idx` of `src` into cache for the next batch's [`gather`]. A
/// hint: it changes no value (and does nothing on other architectures).
fn prefetch_rows<T>(src: &[T], width: usize, idx: &[i64]) {
    let bytes = width * std::mem::size_of::<T>();
    if idx.len() * bytes > PREFETCH_MAX_BYTES {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    for &i in idx {
        let row = src[i as usize * width..(i as usize + 1) * width].as_ptr() as *const i8;
        for off in (0..bytes).step_by(64) {
            // SAFETY: a prefetch reads nothing and cannot fault; this address lies inside the
            // row anyway.
            unsafe { std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(row.add(off)) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (src, idx);
}

/// `(correct, count)` of one batch's output `out (n, c)` against its targets.
pub fn accuracy_counts<T: VMath>(loss: Loss, out: &[T], n: usize, c: usize, target: &Target<'_, T>) -> (usize, usize) {
    match (loss, target) {
        (Loss::CrossEntropy, Target::Labels(l)) => {
            let mut correct = 0;
            for (row, &label) in out.chunks_exact(c).zip(&l[..n]) {
                correct += (np_argmax(row) as i64 == label) as usize;
            }
            (correct, n)
        }
        // Soft targets: the arg-max class of the output against the target's, as fit counts it.
        (Loss::CrossEntropy, Target::Values(t)) => {
            let correct = out
                .chunks_exact(c)
                .zip(t[..n * c].chunks_exact(c))
                .filter(|(row, trow)| np_argmax(row) == np_argmax(trow))
                .count();
            (correct, n)
        }
        (Loss::BinaryCrossEntropy, Target::Values(t)) => {
            let correct = out
                .iter()
                .zip(&t[..n * c])
                .filter(|(&v, &tv)| (v > T::zero()) == (tv >= T::of(0.5)))
                .count();
            (correct, n * c)
        }
        _ => (0, 0),
    }
}

/// Checks a run's arguments (beyond what every `step::train_step` checks) before anything is written.
fn check<T: VMath>(net: &Network<T>, loss: Loss, a: &EpochArgs<'_, T>) -> Result<usize, ShapeError> {
    let (d, c) = (net.input_dim(), net.output_dim());
    ensure!(a.batch >= 1, "argument 'batch_size' must be >= 1");
    ensure!(
        a.x.len() == a.rows * d,
        "argument 'x' has {} elements, expected {}x{d}",
        a.x.len(),
        a.rows
    );
    check_target(loss, &a.target, a.rows, c)?;
    // The options of every step, checked once here so that no step fails halfway through.
    if let Some(lf) = a.loss_fn {
        lf.validate()?;
    }
    a.clip.validate()?;
    if let Some(w) = a.weights {
        ensure!(
            w.len() == a.rows,
            "argument 'sample_weight' has {} values, expected {} (one per row of x)",
            w.len(),
            a.rows
        );
        if let Some(i) = w.iter().position(|v| !(v.is_finite() && *v >= T::zero())) {
            return Err(ShapeError(format!(
                "argument 'sample_weight' has sample_weight[{i}] = {:?}; weights must be finite and >= 0",
                w[i]
            )));
        }
    }
    if let Some(i) = a.order.iter().position(|&i| i < 0 || i as usize >= a.rows) {
        return Err(ShapeError(format!(
            "argument 'order': order[{i}] = {} is outside [0, {})",
            a.order[i], a.rows
        )));
    }
    let len = a.order.len();
    ensure!(
        a.first.saturating_add(a.count) <= len.div_ceil(a.batch),
        "batches {}..{} requested, the order of {len} rows has {} batches of {}",
        a.first,
        a.first.saturating_add(a.count),
        len.div_ceil(a.batch),
        a.batch
    );
    let per_row: usize = net.uniform_widths().iter().sum();
    let rows: usize = (a.first..a.first + a.count)
        .map(|b| batch_range(b, a.batch, len).len())
        .sum();
    ensure!(
        a.uniforms.len() == rows * per_row,
        "argument 'uniforms' has {} values, expected {rows} rows x {per_row} dropout units = {}",
        a.uniforms.len(),
        rows * per_row
    );
    if let Some(l) = a.lrs {
        ensure!(
            l.len() == a.count,
            "argument 'lrs' has {} learning rates, expected one per step ({})",
            l.len(),
            a.count
        );
    }
    let largest = (a.first..a.first + a.count)
        .map(|b| batch_range(b, a.batch, len).len())
        .max()
        .unwrap_or(0);
    Ok(largest)
}

/// Runs batches `first .. first + count` (see the module documentation); `out` holds the
/// output of the last completed step. Returns early, after a whole step, when `poll` says so.
/// Errors found before the first step write nothing; `progress` says how far a run got.
#[allow(clippy::too_many_arguments)]
pub fn train_epoch<T: VMath>(
    net: &mut Network<T>,
    opt: &Optimizer,
    loss: Loss,
    a: &EpochArgs<'_, T>,
    st: State<'_, '_, T>,
    ws: &mut EpochWs<T>,
    out: &mut [T],
    progress: &mut Progress,
    poll: &mut dyn FnMut(&Progress) -> bool,
) -> Result<(), ShapeError> {
    *progress = Progress {
        loss_sum: a.loss_sum0,
        ..Progress::default()
    };
    let largest = check(net, loss, a)?;
    let (d, c) = (net.input_dim(), net.output_dim());
    ensure!(
        out.len() >= largest * c,
        "argument 'out' has {} elements, a batch needs {largest}x{c}",
        out.len()
    );
    if let Some(l) = a.lrs {
        for &lr in l {
            opt.with_lr(lr).validate()?;
        }
    }
    if let Some(m) = a.momentums {
        ensure!(
            m.len() == a.count,
            "argument 'momentums' has {} values, expected one per step ({})",
            m.len(),
            a.count
        );
        for &v in m {
            opt.checked_momentum(v)?;
            for (o, _) in a.per_param {
                o.checked_momentum(v)?;
            }
        }
    }
    let labels = matches!(a.target, Target::Labels(_));
    ws.reserve(largest, d, c, labels);
    net.reserve(largest);
    let widths = net.uniform_widths().to_vec();
    let mut uniforms: Vec<&[T]> = Vec::with_capacity(widths.len());
    let mut u_at = 0;
    let State {
        params,
        grads,
        states,
        buffers,
        mu_products,
    } = st;
    // One team for the whole run (`team.rs`): its workers stay awake from step to step, and
    // the leader (this thread) gathers, polls and logs between steps.
    let want = net.team_size(largest);
    let mut run = |team: Option<&Team<'_>>| -> Result<(), ShapeError> {
        for s in 0..a.count {
            let r = batch_range(a.first + s, a.batch, a.order.len());
            let (idx, n) = (&a.order[r.clone()], r.len());
            gather(a.x, d, idx, &mut ws.x[..n * d]);
            if s + 1 < a.count {
                let next = batch_range(a.first + s + 1, a.batch, a.order.len());
                prefetch_rows(a.x, d, &a.order[next]);
            }
            let target = match a.target {
                Target::Labels(l) => {
                    for (dst, &i) in ws.labels[..n].iter_mut().zip(idx) {
                        *dst = l[i as usize];
                    }
                    Target::Labels(&ws.labels[..n])
                }
                Target::Values(v) => {
                    gather(v, c, idx, &mut ws.values[..n * c]);
                    Target::Values(&ws.values[..n * c])
                }
            };
            uniforms.clear();
            for &w in &widths {
                uniforms.push(&a.uniforms[u_at..u_at + n * w]);
                u_at += n * w;
            }
            let weights = match a.weights {
                Some(w) => {
                    ws.weights.clear();
                    ws.weights.extend(idx.iter().map(|&i| w[i as usize]));
                    Some(&ws.weights[..])
                }
                None => None,
            };
            let extras = Extras {
                loss_fn: a.loss_fn,
                weights,
                clip: a.clip,
                per_param: a.per_param,
                param_lrs: if a.lrs.is_some() { None } else { a.param_lrs },
                momentum: a.momentums.map(|m| m[s]),
            };
            let lr = a.lrs.map_or(a.lr, |l| l[s]);
            let st = State {
                params: &mut *params,
                grads: &mut *grads,
                states: &mut *states,
                buffers: &mut *buffers,
                mu_products: &mut *mu_products,
            };
            let o = &mut out[..n * c];
            let value = train_step_on(
                team,
                net,
                opt,
                lr,
                a.step0 + s as u64,
                loss,
                &ws.x[..n * d],
                n,
                target,
                &uniforms,
                st,
                o,
                extras,
            )?;
            let (ok, count) = accuracy_counts(loss, o, n, c, &target);
            progress.steps += 1;
            progress.loss_sum += value * n as f64;
            progress.samples += n;
            progress.correct += ok;
            progress.count += count;
            progress.last_rows = n;
            if s + 1 < a.count && poll(progress) {
                break;
            }
        }
        Ok(())
    };
    if want > 1 {
        parallel::with_team(want, |team| run(Some(team)))
    } else {
        run(None)
    }
}

#[cfg(test)]
#[path = "epoch_tests.rs"]
mod tests;
