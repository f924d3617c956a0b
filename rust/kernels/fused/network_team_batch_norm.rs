//! BatchNorm's training forward and backward on a thread team (`network_team.rs`): the passes
//! of `batch_norm.rs` over 64-row blocks, each split across the members by whole blocks, with
//! the folds of the block partials on the leader between them.
//!
//! ```text
//! forward   phase 1  blocks B of a member:  s_B  = Σ_{rows of B} x          leader: μ = Σ_B s_B / n
//!           phase 2  blocks B:              q_B  = Σ_{rows of B} (x − μ)²   leader: σ², invstd, running
//!           phase 3  rows r:                y_r  = ((x_r − μ)·invstd)·γ + β, then the activation
//!                                           layers that follow, on the same rows
//! backward  phase 1  blocks B:              the backward of the activation layers above, then
//!                                           Σ_B dy, Σ_B dy·(x − μ)          leader: dβ, dγ
//!           phase 2  rows r:                dx_r = (γ·invstd/n)·(n·dy_r − dβ − x̂_r·dγ)
//! ```
//! Bit-identity with the serial kernel for any team size: the block passes call the same
//! per-block functions on the same fixed blocks, and the folds add the partials in block order
//! (`parallel::fold_blocks`), exactly as `batch_norm::forward_train` and `batch_norm::backward`
//! do; the row passes are per element.
//!
//! Before this, BatchNorm ran whole on the leader while its partners waited: on the `bn`
//! workload (784-256-128-10, batch 128) about 60 µs of a 460 µs step.

use super::{band, input_of, Bands, LayerKind, Network};
use crate::kernels::activation::act_forward;
use crate::kernels::batch_norm::{
    backward_work, block_rows, dx_train_rows, finish_grads, finish_stats, forward_work, grad_sums_block, mean_from,
    normalize_rows, sqdev_block, sum_block, BLOCK_ROWS,
};
use crate::kernels::team::Team;
use crate::kernels::vmath::VMath;
use crate::kernels::ShapeError;
use std::ops::Range;

/// Member `t`'s blocks of an `n`-row batch cut into `parts` bands of whole blocks.
fn member_blocks(n: usize, parts: usize, t: usize) -> Range<usize> {
    let r = band(n, parts, BLOCK_ROWS, t);
    r.start / BLOCK_ROWS..r.end.div_ceil(BLOCK_ROWS)
}

/// Runs `pass(rows, part)` for every block on `team` (`parts` bands of blocks), block `b`'s
/// partial being `parts64[b·stride..(b+1)·stride]`.
fn block_pass<P: Fn(Range<usize>, &mut [f64]) + Sync>(
    team: &Team<'_>,
    n: usize,
    parts: usize,
    parts64: &mut [f64],
    stride: usize,
    pass: P,
) -> Result<(), ShapeError> {
    let pb = Bands::new(parts64);
    team.run(&|t, _| {
        for b in member_blocks(n, parts, t) {
            // SAFETY: members' blocks are disjoint.
            pass(block_rows(n, b), unsafe { pb.part(b * stride..(b + 1) * stride) });
        }
        Ok(())
    })
}

impl<T: VMath> Network<T> {
    /// BatchNorm layer `i`'s training forward on `team` in `parts` bands, followed in its last
    /// phase by the activation layers after it; returns the last layer run.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn batch_norm_forward_team(
        &mut self,
        team: &Team<'_>,
        i: usize,
        prev: Option<usize>,
        x: &[T],
        n: usize,
        params: &[&mut [T]],
        buffers: &mut [&mut [T]],
        parts: usize,
    ) -> Result<usize, ShapeError> {
        let s = self.specs[i];
        let LayerKind::BatchNorm { momentum, eps } = s.kind else {
            unreachable!("batch_norm_forward_team runs BatchNorm layers")
        };
        let m = s.out;
        let mut j = i;
        while self.is_rowwise_act(j + 1) {
            j += 1;
        }
        let p0 = self.first_param[i];
        let (gamma, beta) = (&*params[p0], &*params[p0 + 1]);
        let (rm, rv) = buffers[self.first_buffer[i]..].split_at_mut(1);
        let len = n * m;
        self.team_segment.clear();
        for l in i..=j {
            // These layers have no z: the slot's first band is y, the second unused.
            let y = Bands::new(&mut self.ws[l].out[..len]);
            self.team_segment.push([y, y]);
        }
        let (before, rest) = self.ws.split_at_mut(i);
        let w = &mut rest[0];
        let x_in = input_of(x, before, prev, len);
        let (parts64, mean64, var64) = forward_work(&mut self.work64, n, m);
        block_pass(team, n, parts, parts64, m, |r, p| sum_block(x_in, m, r, p))?;
        mean_from(parts64, n, mean64);
        let mean64: &[f64] = mean64;
        block_pass(team, n, parts, parts64, m, |r, p| sqdev_block(x_in, m, r, mean64, p))?;
        let running = Some((&mut *rm[0], &mut *rv[0]));
        finish_stats(
            parts64,
            n,
            mean64,
            var64,
            eps,
            running,
            momentum,
            &mut w.mean,
            &mut w.invstd,
        );
        let (mean, invstd) = (&w.mean[..], &w.invstd[..]);
        let (specs, segment) = (&self.specs[i..=j], &self.team_segment);
        team.run(&|t, _| {
            let r = band(n, parts, 1, t);
            let e = r.start * m..r.end * m;
            // SAFETY: members' row bands are disjoint, and a member reads back only the rows
            // it wrote.
            let y = unsafe { segment[0][0].part(e.clone()) };
            normalize_rows(&x_in[e.clone()], mean, invstd, gamma, beta, y);
            let mut input: &[T] = y;
            for (sl, [y, _]) in specs.iter().zip(segment).skip(1) {
                let LayerKind::Activation(act) = sl.kind else {
                    unreachable!("only activations follow BatchNorm in its phase")
                };
                // SAFETY: as above.
                let y = unsafe { y.part(e.clone()) };
                act_forward(act, input, y)?;
                input = y;
            }
            Ok(())
        })?;
        for l in i..=j {
            self.src[l] = Some(l);
        }
        Ok(j)
    }
}

/// BatchNorm's training backward on `team` in `parts` bands: `dγ`, `dβ` (on the leader, from
/// the members' block partials), then `dx`'s rows. The first phase starts with `above(rows)`,
/// the backward of the activation layers above it for a member's rows, which ends in those
/// rows of `dy` (so those activations cost no phase of their own). `x` is the layer's whole
/// input, `mean` and `invstd` its forward's.
#[allow(clippy::too_many_arguments)]
pub(super) fn batch_norm_backward_team<T: VMath>(
    team: &Team<'_>,
    n: usize,
    parts: usize,
    above: &(dyn Fn(Range<usize>) -> Result<(), ShapeError> + Sync),
    (dy, x): (Bands<T>, &[T]),
    (gamma, mean, invstd): (&[T], &[T], &[T]),
    work64: &mut [f64],
    (dgamma, dbeta): (&mut [T], &mut [T]),
    dx: Bands<T>,
) -> Result<(), ShapeError> {
    let m = gamma.len();
    crate::ensure!(
        dgamma.len() == m && dbeta.len() == m,
        "batch norm backward: gradients of {} and {} elements, expected {m}",
        dgamma.len(),
        dbeta.len()
    );
    let (parts64, sums) = backward_work(work64, n, m);
    let pb = Bands::new(parts64);
    team.run(&|t, _| {
        let r = band(n, parts, BLOCK_ROWS, t);
        if r.is_empty() {
            return Ok(());
        }
        above(r.clone())?;
        for b in member_blocks(n, parts, t) {
            let rows = block_rows(n, b);
            let e = rows.start * m..rows.end * m;
            // SAFETY: members' blocks (and so their rows of dy) are disjoint.
            let (d, p) = unsafe { (dy.part(e.clone()), pb.part(2 * b * m..2 * (b + 1) * m)) };
            grad_sums_block(d, &x[e], m, 0..rows.len(), mean, p);
        }
        Ok(())
    })?;
    finish_grads(parts64, invstd, sums, dgamma, dbeta);
    let (dgamma, dbeta): (&[T], &[T]) = (dgamma, dbeta);
    team.run(&|t, _| {
        let r = band(n, parts, 1, t);
        let e = r.start * m..r.end * m;
        // SAFETY: members' row bands are disjoint; dy is no longer written.
        let (d, dxr) = unsafe { (dy.part(e.clone()), dx.part(e.clone())) };
        dx_train_rows(d, &x[e], n, 0..r.len(), gamma, mean, invstd, dgamma, dbeta, dxr);
        Ok(())
    })
}
