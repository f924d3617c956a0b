//! The training backward of a [`Network`] on a thread team (see `network_team.rs` for the
//! phases and the bit-identity argument), with one saving: when the layer below a Dense layer
//! is a Dense layer split the same way, its dz work joins this layer's dx phase.
//!
//! ```text
//! Dense i, phase A (unless done above):  dz_B = dy_B ⊙ f'(z_B),  s_B = Σ_{rows of B} dz_B
//! Dense i, phase B:  dW_i rows;  dx_r = dz_r·Wᵀ for rows r;  then, merged, for the same rows
//!                    dz'_r = dx_r ⊙ f'(z'_r) and s'_B of layer i − 1 (the rows of a member's
//!                    dx are the rows of its dz', so no barrier is needed between them)
//! ```
//!
//! dz and the db partials alternate between two buffer pairs, since layer i's pair is still
//! read (dW_i, db_i) while layer i − 1's is written.
//!
//! The activations directly above a BatchNorm layer that splits have no phase either: the
//! BatchNorm's first phase runs their backward on its members' rows before its own block sums
//! (`network_team_batch_norm.rs`).

use super::batch_norm_team::batch_norm_backward_team;
use super::{band, elem_parts, pack_share, product, product_parts, room, shared_len, Bands};
use crate::kernels::activation::{
    act_backward, bias_act_backward_blocks, column_sum_blocks, Act, CHUNK, SUM_BLOCK_ROWS,
};
use crate::kernels::dropout::dropout_backward;
use crate::kernels::fused::network::{input_of, LayerKind, Network};
use crate::kernels::matmul::{MatRef, BAND_MIN_ROWS};
use crate::kernels::parallel::fold_blocks;
use crate::kernels::team::Team;
use crate::kernels::vmath::VMath;
use crate::kernels::ShapeError;
use std::ops::Range;

/// A member's share of a Dense layer's dz work over rows `r` (starting on a 64-row block):
/// `dz = dy ⊙ f'(z)` (nothing to compute for the identity, whose dz is dy) and the partial
/// column sums of its blocks, which `fold_blocks` later adds into db. `dy` holds rows `r`
/// only; `z` and `y` are the layer's whole arrays.
#[allow(clippy::too_many_arguments)]
fn dz_share<T: VMath>(
    act: Act<T>,
    m: usize,
    r: Range<usize>,
    dy: &[T],
    z: &[T],
    y: &[T],
    dz: Option<Bands<T>>,
    partials: Bands<T>,
    between: Option<(Act<T>, &[T], &[T])>,
) -> Result<(), ShapeError> {
    let (b0, b1) = (r.start / SUM_BLOCK_ROWS, r.end.div_ceil(SUM_BLOCK_ROWS));
    let rows = r.start * m..r.end * m;
    // SAFETY: members' row bands (and so their blocks) are disjoint.
    let part = unsafe { partials.part(b0 * m..b1 * m) };
    if let (Some((a, xa, ya)), Some(dz)) = (between, dz) {
        // The activation's backward is the Dense layer's dz (it has no activation of its own).
        // SAFETY: as above.
        let dz = unsafe { dz.part(rows.clone()) };
        act_backward(a, dy, &xa[rows.clone()], &ya[rows], dz)?;
        column_sum_blocks(dz, m, part);
        return Ok(());
    }
    match dz {
        None => column_sum_blocks(dy, m, part),
        // SAFETY: as above.
        Some(dz) => bias_act_backward_blocks(
            act,
            dy,
            &z[rows.clone()],
            &y[rows.clone()],
            m,
            unsafe { dz.part(rows) },
            part,
        ),
    }
    Ok(())
}

/// Layer `i`'s dx phase also does the dz work of Dense layer `dense` below it (see
/// `merge_below`), in `parts` bands of 64-row blocks.
#[derive(Clone, Copy)]
struct Below<T> {
    parts: usize,
    dense: usize,
    act: Act<T>,
    /// The activation between them, if any.
    between: Option<Act<T>>,
}

/// The buffers of a [`Below`] for one phase: the lower Dense layer's z and y, where its dz
/// (if stored rather than left in the gradient buffer) and its block partials go, and the
/// activation between, with its input and output.
#[derive(Clone, Copy)]
struct BelowWork<'a, T> {
    parts: usize,
    act: Act<T>,
    z: &'a [T],
    y: &'a [T],
    dz: Option<Bands<T>>,
    partials: Bands<T>,
    between: Option<(Act<T>, &'a [T], &'a [T])>,
}

impl<T: VMath> Network<T> {
    /// The layer below's dz work, if it can run in layer `i`'s dx phase: a Dense layer split
    /// across the team, directly below or under one activation (then the Dense layer must
    /// have no activation of its own, and its dz is the activation's backward of dx). The dx
    /// bands then follow its 64-row blocks; every band must be a product of at least
    /// `BAND_MIN_ROWS` rows (the `gemm` crate's condition for band bit-identity), and the
    /// alternate dz buffer must be there.
    fn merge_below(&mut self, i: usize, n: usize, size: usize) -> Option<Below<T>> {
        let (d, between) = match self.specs.get(i.wrapping_sub(1))?.kind {
            LayerKind::Dense { .. } => (i - 1, None),
            LayerKind::Activation(a) if a != Act::Identity && i >= 2 => (i - 2, Some(a)),
            _ => return None,
        };
        let s = self.specs[d];
        let LayerKind::Dense { act, .. } = s.kind else {
            return None;
        };
        if d < self.stop || (between.is_some() && act != Act::Identity) {
            return None;
        }
        // Splitting the dz work costs no phase here, so it follows the dx bands even where a
        // phase of its own would not pay (`elem_parts`).
        let blocks = n.div_ceil(SUM_BLOCK_ROWS);
        let parts = size.min(blocks);
        let per = n.div_ceil(parts).div_ceil(SUM_BLOCK_ROWS) * SUM_BLOCK_ROWS;
        let last = n - (n.div_ceil(per) - 1) * per;
        let splits = self.layer_parts(d, n, size).1 > 1 && parts > 1 && last >= BAND_MIN_ROWS;
        let stored = act != Act::Identity || between.is_some();
        if !(splits && (!stored || room(&mut self.team_dz, n * s.out))) {
            return None;
        }
        Some(Below {
            parts,
            dense: d,
            act,
            between,
        })
    }

    /// Whether layer `i` is one of the activations (elementwise, not the identity) directly
    /// above a BatchNorm layer that splits across the team, which then runs their backward in
    /// its first phase, on its rows.
    fn above_batch_norm(&self, i: usize, n: usize, size: usize) -> bool {
        if !self.is_rowwise_act(i) {
            return false;
        }
        let mut j = i;
        while j > self.stop && self.is_rowwise_act(j) {
            j -= 1;
        }
        matches!(self.specs[j].kind, LayerKind::BatchNorm { .. }) && self.layer_parts(j, n, size).1 > 1
    }

    /// [`Network::backward`] on `team`.
    pub fn backward_team(
        &mut self,
        team: &Team<'_>,
        x: &[T],
        n: usize,
        params: &[&mut [T]],
        grads: &mut [&mut [T]],
    ) -> Result<(), ShapeError> {
        self.check_grads(params, grads)?;
        let size = team.size();
        let mut flip = false;
        // Some((pair, stored)): the layer above computed this layer's dz and db partials (into
        // that pair of buffers; dz itself only if `stored`, else dz is dy) in its dx phase.
        let mut ready: Option<(bool, bool)> = None;
        // An activation whose backward the layer above did with the Dense layer under it.
        let mut skip: Option<usize> = None;
        // Activations skipped so far whose backward the BatchNorm layer under them runs.
        let mut above_bn = 0;
        for i in (self.stop..self.specs.len()).rev() {
            if skip == Some(i) {
                // Its dx went straight into the dz of the layer below, which reads it from
                // there, not from the gradient buffers: so no flip either.
                skip = None;
                continue;
            }
            if self.above_batch_norm(i, n, size) {
                above_bn += 1;
                continue;
            }
            let s = self.specs[i];
            let parts = self.layer_parts(i, n, size).1;
            if parts <= 1 || s.passes_through(true) {
                debug_assert!(ready.is_none(), "only a split Dense layer takes its dz from above");
                debug_assert!(above_bn == 0, "activations are left only to a split BatchNorm");
                flip ^= self.backward_layer(i, flip, x, n, params, grads)?;
                continue;
            }
            // A Dense layer's dx (none for the first layer with parameters) is split in `px`
            // bands; one that splits may compute the layer below's dz in its dx phase.
            let px = if i > self.stop {
                product_parts::<T>(n, s.out, s.inp, size)
            } else {
                0
            };
            let below = match s.kind {
                LayerKind::Dense { .. } if px > 1 => self.merge_below(i, n, size),
                _ => None,
            };
            let prev = if i == 0 { None } else { self.src[i - 1] };
            let x_in = input_of(x, &self.ws, prev, n * s.inp);
            let w = &self.ws[i];
            let (m, len) = (s.out, n * s.out);
            let [g0, g1] = &mut self.grad;
            let (dy_buf, dx_buf) = if flip { (g1, g0) } else { (g0, g1) };
            let dy = &dy_buf[..len];
            let dx = Bands::new(&mut dx_buf[..n * s.inp]);
            match s.kind {
                LayerKind::Dense { bias, act } => {
                    let p0 = self.first_param[i];
                    let blocks = n.div_ceil(SUM_BLOCK_ROWS);
                    let half = self.team_parts.len() / 2;
                    // dz and the db partials live in the pair `alt` (primary or alternate): a
                    // phase that computes layer i's dx and, with it, the layer below's dz
                    // writes the other pair while this one is still being read.
                    let done = ready.take();
                    let (alt, own_phase) = (done.is_some_and(|d| d.0), done.is_none());
                    let stored = done.map_or(act != Act::Identity, |d| d.1);
                    let wt = MatRef::row_major(&*params[p0], s.inp, m)?.t();
                    let pw = product_parts::<T>(s.inp, n, m, size);
                    // Shared packings of Wᵀ (for dx) and of dz (for dW; packed once dz is
                    // complete). dz is laid out as dy is. Wᵀ is packed while dz is computed,
                    // which it does not need; or, when the layer above computed dz, with dz.
                    // (Left to each member, every member transposes all of Wᵀ: on two cores
                    // no slower, the transposes being bound by memory either way, but the
                    // work grows with the team.)
                    let (mut len_wt, mut len_dz) = (shared_len(wt, px), shared_len(MatRef::row_major(dy, n, m)?, pw));
                    if !room(&mut self.team_panels, len_wt + len_dz) {
                        (len_wt, len_dz) = (0, 0);
                    }
                    let (pk_wt, pk_dz) = {
                        let (a, b) = self.team_panels[..len_wt + len_dz].split_at_mut(len_wt);
                        (Bands::new(a), Bands::new(b))
                    };
                    let (z, y) = (&w.z[..len], &w.out[..len]);
                    if own_phase {
                        let pa = elem_parts(len, size).min(blocks);
                        let partials = Bands::new(&mut self.team_parts[..half]);
                        let dz_bands = (act != Act::Identity).then(|| Bands::new(&mut self.dz[..len]));
                        team.run(&|t, _| {
                            if len_wt > 0 {
                                pack_share(pk_wt, wt, px, t)?;
                            }
                            let r = band(n, pa, SUM_BLOCK_ROWS, t);
                            if !r.is_empty() {
                                dz_share(
                                    act,
                                    m,
                                    r.clone(),
                                    &dy[r.start * m..r.end * m],
                                    z,
                                    y,
                                    dz_bands,
                                    partials,
                                    None,
                                )?;
                            }
                            Ok(())
                        })?;
                    }
                    // The layer below, if its dz can be computed in this layer's dx phase:
                    // a Dense layer split the same way, whose 64-row blocks the dx bands then
                    // follow (any row split of dx gives the same bits).
                    let (dz_here, dz_other) = if alt {
                        (&self.team_dz, &mut self.dz)
                    } else {
                        (&self.dz, &mut self.team_dz)
                    };
                    let dz: &[T] = if stored { &dz_here[..len] } else { dy };
                    let (parts_a, parts_b) = self.team_parts.split_at_mut(half);
                    let (partials, partials_below) = if alt {
                        (&*parts_b, parts_a)
                    } else {
                        (&*parts_a, parts_b)
                    };
                    let partials = &partials[..blocks * m];
                    let (gw, gb) = grads[p0..].split_at_mut(1);
                    let db: &mut [T] = if bias { &mut *gb[0] } else { &mut self.db_scratch[..m] };
                    crate::ensure!(
                        db.len() == m && gw[0].len() == s.inp * m,
                        "dense backward: gradient shapes do not match the layer ({}x{m})",
                        s.inp
                    );
                    let (db, dw) = (Bands::new(db), Bands::new(&mut *gw[0]));
                    let dzm = MatRef::row_major(dz, n, m)?;
                    let xt = MatRef::row_major(x_in, n, s.inp)?.t();
                    let wt_now = len_wt > 0 && !own_phase;
                    if len_dz > 0 || wt_now {
                        team.run(&|t, _| {
                            if wt_now {
                                pack_share(pk_wt, wt, px, t)?;
                            }
                            if len_dz > 0 {
                                pack_share(pk_dz, dzm, pw, t)?;
                            }
                            Ok(())
                        })?;
                    }
                    let (panels_wt, panels_dz) = self.team_panels[..len_wt + len_dz].split_at(len_wt);
                    let panels_wt = (len_wt > 0).then_some(panels_wt);
                    let panels_dz = (len_dz > 0).then_some(panels_dz);
                    let inp = s.inp;
                    // The layer below's dz work (`below`): its act, z and y, and where its dz
                    // and partials go.
                    let below = below.map(|b| {
                        let lb = n * inp;
                        let wb = &self.ws[b.dense];
                        let stored = b.act != Act::Identity || b.between.is_some();
                        BelowWork {
                            parts: b.parts,
                            act: b.act,
                            z: &wb.z[..lb],
                            y: &wb.out[..lb],
                            dz: stored.then(|| Bands::new(&mut dz_other[..lb])),
                            partials: Bands::new(partials_below),
                            // The activation's input is the Dense layer's output; its own
                            // output is the input of layer i.
                            between: b.between.map(|a| (a, &wb.out[..lb], x_in)),
                        }
                    });
                    team.run(&|t, _| {
                        if t == 0 {
                            // SAFETY: only member 0 writes `db`.
                            fold_blocks(partials, m, unsafe { db.part(0..m) });
                        }
                        let r = band(inp, pw, 1, t);
                        if t < pw && !r.is_empty() {
                            // SAFETY: members' row bands of dW are disjoint.
                            let dwr = unsafe { dw.part(r.start * m..r.end * m) };
                            product(dwr, xt.row_band(r.start, r.end), dzm, panels_dz)?;
                        }
                        let r = match below {
                            Some(b) => band(n, b.parts, SUM_BLOCK_ROWS, t),
                            None if t < px => band(n, px, 1, t),
                            None => 0..0,
                        };
                        if !r.is_empty() {
                            // SAFETY: members' row bands of dx are disjoint.
                            let dxr = unsafe { dx.part(r.start * inp..r.end * inp) };
                            product(dxr, dzm.row_band(r.start, r.end), wt, panels_wt)?;
                            if let Some(b) = below {
                                dz_share(b.act, inp, r, dxr, b.z, b.y, b.dz, b.partials, b.between)?;
                            }
                        }
                        Ok(())
                    })?;
                    if let Some(b) = below {
                        ready = Some((!alt, b.dz.is_some()));
                        if b.between.is_some() {
                            skip = Some(i - 1);
                        }
                    }
                }
                LayerKind::Activation(act) => {
                    let y = &w.out[..len];
                    team.run(&|t, _| {
                        let r = band(len, parts, CHUNK, t);
                        // SAFETY: members' ranges are disjoint.
                        let dxr = unsafe { dx.part(r.clone()) };
                        act_backward(act, &dy[r.clone()], &x_in[r.clone()], &y[r], dxr)
                    })?
                }
                LayerKind::Dropout { .. } | LayerKind::AlphaDropout { .. } => {
                    let mask = &w.mask[..len];
                    team.run(&|t, _| {
                        let r = band(len, parts, CHUNK, t);
                        // SAFETY: members' ranges are disjoint.
                        dropout_backward(&dy[r.clone()], &mask[r.clone()], unsafe { dx.part(r) })
                    })?
                }
                LayerKind::BatchNorm { .. } => {
                    // The activations above (skipped by the loop) run in this layer's first
                    // phase, top down, alternating between the gradient buffers as their own
                    // phases would: the top one's dy is in `dy_buf`.
                    let c = std::mem::take(&mut above_bn);
                    let bufs = [Bands::new(&mut dy_buf[..len]), Bands::new(&mut dx_buf[..len])];
                    let (specs, ws) = (&self.specs, &self.ws);
                    let above = |r: Range<usize>| -> Result<(), ShapeError> {
                        let e = r.start * m..r.end * m;
                        for q in 0..c {
                            let k = i + c - q;
                            let LayerKind::Activation(act) = specs[k].kind else {
                                unreachable!("only activations are left to the BatchNorm below")
                            };
                            // SAFETY: members' row bands are disjoint; the two buffers differ.
                            let (from, to) = unsafe { (bufs[q % 2].part(e.clone()), bufs[1 - q % 2].part(e.clone())) };
                            act_backward(act, from, &ws[k - 1].out[e.clone()], &ws[k].out[e.clone()], to)?;
                        }
                        Ok(())
                    };
                    let p0 = self.first_param[i];
                    let (dg, dbeta) = grads[p0..].split_at_mut(1);
                    batch_norm_backward_team(
                        team,
                        n,
                        parts,
                        &above,
                        (bufs[c % 2], x_in),
                        (&*params[p0], &w.mean, &w.invstd),
                        &mut self.work64,
                        (&mut *dg[0], &mut *dbeta[0]),
                        bufs[1 - c % 2],
                    )?;
                    // The activations' flips, which the loop skipped with them.
                    flip ^= c % 2 == 1;
                }
                _ => unreachable!("layer_parts splits only Dense, BatchNorm, elementwise and dropout layers"),
            }
            flip = !flip;
        }
        Ok(())
    }
}
