//! The training forward and backward of a [`Network`] run by a thread team
//! (`team.rs`): each layer's work is one or two phases, every member computing a static share.
//!
//! ```text
//! Dense forward   rows r of the batch:    z_r = x_r·W (+ b), y_r = f(z_r), through a whole
//!                 segment of consecutive Dense layers in one phase (row r needs only row r)
//! Dense backward  A: 64-row blocks B:     dz_B = dy_B ⊙ f'(z_B),  s_B = Σ_{rows of B} dz_B
//!                 B: rows i of W:         dW_i = (xᵀ)_i·dz        (the batch sum K is never split)
//!                    rows r of the batch: dx_r = dz_r·Wᵀ
//!                    leader:              db   = ((s_0 + s_1) + s_2) + …
//! elementwise     ranges of elements:     activation, dropout masks, their backward
//! BatchNorm       64-row blocks, then rows (`network_team_batch_norm.rs`)
//! ```
//! The forward segment also takes the activation layers between its Dense layers. The
//! backward is in `network_team_backward.rs`, which also merges a Dense layer's dx phase with
//! the dz work of the Dense layer below.
//!
//! Bit-identity with [`Network::forward`] / [`Network::backward`] (and so with the
//! layer-by-layer path) for any team size:
//! - a product's row band is computed by GEMM exactly as that row is in the whole product
//!   (same kernel, same depth blocking; `matmul::gemm_into_banded` relies on and tests this),
//!   under its conditions: bands of at least `BAND_MIN_ROWS` rows, and, on the `gemm` crate
//!   (`matmul::bands_any_shape`), outputs wider than 64 columns and depth above 2 — products
//!   that miss them run whole on one member;
//! - `db` folds the same fixed 64-row block partials in the same order as
//!   `activation::bias_act_backward` (`parallel::fold_blocks`), and bands start on block
//!   boundaries;
//! - everything else is elementwise.
//!
//! Shared packing: where every member of a row split would pack all of a product's B itself
//! (`matmul::shares_packing`: W with rows 2 KiB apart in the forward, dz for dW, Wᵀ for dx),
//! the members first pack disjoint columns of it into one buffer (`team_panels`), meet, and
//! then all read it (`matmul::gemm_into_panels`): one packing per step instead of one per
//! member. The kernels load the same values either way, so the bits do not change.
//!
//! BatchNorm's passes over 64-row blocks split by whole blocks, with the folds of their
//! partials on the leader between (`network_team_batch_norm.rs`).
//!
//! Layers with work too small to split, and the kinds not listed (PReLU, Maxout,
//! softmax), run whole on the leader with the serial kernels of `network.rs`
//! (`forward_layer`, `backward_layer`): one copy of the math.
//!
//! Memory: members write disjoint bands of the network's own workspaces (see `Bands`); the
//! block partials of `db` live in `team_parts`, sized in `reserve`; the shared packing in
//! `team_panels`, grown once, on the first step that needs it (if that allocation fails,
//! each member packs its own B as before). Nothing is allocated in steady state.

use super::{input_of, LayerKind, Network};
use crate::kernels::activation::{act_forward, bias_act_forward, Act, CHUNK, SUM_BLOCK_ROWS};
use crate::kernels::batch_norm;
use crate::kernels::dense::BAND_MACS;
use crate::kernels::dropout::{alpha_dropout_forward, dropout_forward};
use crate::kernels::matmul::{
    bands_any_shape, gemm_into, gemm_into_panels, pack_panels, panel_width, panels_len, shares_packing, MatRef,
    BAND_MIN_ROWS,
};
use crate::kernels::parallel;
use crate::kernels::team::Team;
use crate::kernels::vmath::VMath;
use crate::kernels::ShapeError;
use std::ops::Range;

/// Elements of elementwise work per member below which a phase is not split: a phase handoff
/// costs about a µs, as much as an elementwise pass over a few thousand values. Elementwise
/// ranges start at multiples of `activation::CHUNK`, where the kernels' own parallel split
/// cuts (so a vectorized loop's tail falls where it falls in a serial call's chunks).
pub(crate) const ELEM_PER_PART: usize = CHUNK;

/// A mutable slice that team members write in disjoint bands.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Bands<T> {
    ptr: *mut T,
    len: usize,
}

// SAFETY: `Bands` hands out only the ranges its users promise are disjoint (see `part`).
unsafe impl<T: Send> Send for Bands<T> {}
unsafe impl<T: Send> Sync for Bands<T> {}

impl<T> Bands<T> {
    pub(crate) fn new(s: &mut [T]) -> Self {
        Self {
            ptr: s.as_mut_ptr(),
            len: s.len(),
        }
    }

    /// Elements `r` (bounds-checked).
    ///
    /// # Safety
    /// While the returned slice lives, no other member may hold an overlapping range, and the
    /// slice `Bands::new` took must not be used otherwise.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn part(&self, r: Range<usize>) -> &mut [T] {
        assert!(r.start <= r.end && r.end <= self.len, "band {r:?} of {}", self.len);
        std::slice::from_raw_parts_mut(self.ptr.add(r.start), r.end - r.start)
    }
}

/// Member `w`'s band of `0..len` cut into `parts` bands whose boundaries are multiples of
/// `align` (the last members' bands may be empty).
pub(crate) fn band(len: usize, parts: usize, align: usize, w: usize) -> Range<usize> {
    let per = len.div_ceil(parts.max(1)).div_ceil(align) * align;
    (w * per).min(len)..((w + 1) * per).min(len)
}

/// Bands a `rows×k` by `k×cols` product is split into on a team of `size` (1: whole).
pub(crate) fn product_parts<T: VMath>(rows: usize, k: usize, cols: usize, size: usize) -> usize {
    if !bands_any_shape::<T>() && (cols <= 64 || k <= 2) {
        return 1;
    }
    let macs = rows.saturating_mul(k).saturating_mul(cols);
    (rows / BAND_MIN_ROWS).min(macs / BAND_MACS).clamp(1, size.max(1))
}

/// Grows `buf` to at least `len` elements; `false` if that allocation fails.
fn room<T: VMath>(buf: &mut Vec<T>, len: usize) -> bool {
    if buf.len() < len {
        if buf.try_reserve_exact(len - buf.len()).is_err() {
            return false;
        }
        buf.resize(len, T::zero());
    }
    true
}

/// Elements of a shared packing of `b`, if `parts` members of a row split of a product by `b`
/// would each pack all of it (0: they read it in place, or there is one member).
fn shared_len<T: VMath>(b: MatRef<'_, T>, parts: usize) -> usize {
    if parts > 1 && shares_packing(b) {
        panels_len::<T>(b.rows(), b.cols())
    } else {
        0
    }
}

/// Member `t`'s share (whole panels of columns, cut into `parts`) of packing all of `b` into
/// `panels`, a `panels_len` buffer.
fn pack_share<T: VMath>(panels: Bands<T>, b: MatRef<'_, T>, parts: usize, t: usize) -> Result<(), ShapeError> {
    let nr = panel_width::<T>().ok_or_else(|| ShapeError("shared packing without a packed engine".into()))?;
    let cols = band(b.cols(), parts, nr, t);
    if cols.is_empty() {
        return Ok(());
    }
    // SAFETY: `panels` is the whole buffer; members' column bands are disjoint and start on
    // panel boundaries, and no one reads the buffer until the phase ends.
    unsafe { pack_panels(panels.ptr, panels.len, b, cols.start, cols.end) }
}

/// `c ← a·b` on one member, reading B from `panels` if it was packed for the team.
fn product<T: VMath>(c: &mut [T], a: MatRef<'_, T>, b: MatRef<'_, T>, panels: Option<&[T]>) -> Result<(), ShapeError> {
    match panels {
        Some(p) => gemm_into_panels(c, a, b, p, false),
        None => gemm_into(c, a, b, false, 1),
    }
}

/// Parts an elementwise pass over `len` values is split into.
pub(crate) fn elem_parts(len: usize, size: usize) -> usize {
    (len / ELEM_PER_PART).clamp(1, size.max(1))
}

impl<T: VMath> Network<T> {
    /// Parts layer `i`'s forward and backward split into on a team of `size`, over `n` rows
    /// (1: it runs whole, on the leader).
    fn layer_parts(&self, i: usize, n: usize, size: usize) -> (usize, usize) {
        let s = self.specs[i];
        let len = n * s.out;
        match s.kind {
            LayerKind::Dense { .. } => {
                let fwd = product_parts::<T>(n, s.inp, s.out, size);
                let dz = elem_parts(len, size).min(n.div_ceil(SUM_BLOCK_ROWS));
                let dw = product_parts::<T>(s.inp, n, s.out, size);
                let dx = if i > self.stop {
                    product_parts::<T>(n, s.out, s.inp, size)
                } else {
                    1
                };
                (fwd, dz.max(dw).max(dx))
            }
            LayerKind::Activation(Act::Identity) => (1, 1),
            LayerKind::Activation(_) => (elem_parts(len, size), elem_parts(len, size)),
            LayerKind::Dropout { .. } | LayerKind::AlphaDropout { .. } if s.draws() => {
                (elem_parts(len, size), elem_parts(len, size))
            }
            LayerKind::BatchNorm { .. } => {
                let p = elem_parts(len, size).min(n.div_ceil(batch_norm::BLOCK_ROWS));
                (p, p)
            }
            _ => (1, 1),
        }
    }

    /// The team a training step over `n` rows deserves: the most parts any phase splits into
    /// with the whole pool (1: no phase splits, and the step runs without a team).
    pub fn team_size(&self, n: usize) -> usize {
        let threads = parallel::num_threads();
        if threads <= 1 || !parallel::team_enabled() {
            return 1;
        }
        (0..self.specs.len())
            .map(|i| {
                let (f, b) = self.layer_parts(i, n, threads);
                f.max(b)
            })
            .max()
            .unwrap_or(1)
    }

    /// Whether layer `j` is an elementwise activation that computes something (not the
    /// identity): the kind a team phase can take on the same rows as the layer before it.
    pub(crate) fn is_rowwise_act(&self, j: usize) -> bool {
        matches!(self.specs.get(j).map(|s| s.kind), Some(LayerKind::Activation(a)) if a != Act::Identity)
    }

    /// Layer `i`'s W as a matrix.
    fn weights<'p>(&self, i: usize, params: &'p [&mut [T]]) -> Result<MatRef<'p, T>, ShapeError> {
        let s = self.specs[i];
        MatRef::row_major(&*params[self.first_param[i]], s.inp, s.out)
    }

    /// Elements of the team's shared packing so far (tests check that it was used).
    #[cfg(test)]
    pub(crate) fn team_panels_len(&self) -> usize {
        self.team_panels.len()
    }

    /// Runs the forward segment that starts at Dense layer `i` (`parts` row bands, on `team`)
    /// and returns its last layer. The segment i..=j: Dense layers with the same row split and
    /// the activations between them, in one phase, each member taking its rows through all of
    /// them (a row's forward needs only that row and the weights; an elementwise kernel
    /// computes each element alike wherever its range starts). Only the first may need W
    /// packed for the team, since packing needs a phase of its own.
    #[allow(clippy::too_many_arguments)]
    fn forward_segment(
        &mut self,
        team: &Team<'_>,
        i: usize,
        prev: Option<usize>,
        x: &[T],
        n: usize,
        params: &[&mut [T]],
        parts: usize,
    ) -> Result<usize, ShapeError> {
        let (s, size) = (self.specs[i], team.size());
        let mut j = i;
        while j + 1 < self.specs.len() {
            let joins = match self.specs[j + 1].kind {
                LayerKind::Dense { .. } => {
                    self.layer_parts(j + 1, n, size).0 == parts && shared_len(self.weights(j + 1, params)?, parts) == 0
                }
                _ => self.is_rowwise_act(j + 1),
            };
            if !joins {
                break;
            }
            j += 1;
        }
        let wm = self.weights(i, params)?;
        let plen = shared_len(wm, parts);
        let shared = plen > 0 && room(&mut self.team_panels, plen);
        if shared {
            let pk = Bands::new(&mut self.team_panels[..plen]);
            team.run(&|t, _| pack_share(pk, wm, parts, t))?;
        }
        let panels = shared.then(|| &self.team_panels[..plen]);
        self.team_segment.clear();
        for l in i..=j {
            let (sl, p0) = (self.specs[l], self.first_param[l]);
            if let LayerKind::Dense { bias: true, .. } = sl.kind {
                let b = params[p0 + 1].len();
                crate::ensure!(b == sl.out, "dense forward: b has {b} elements, expected {}", sl.out);
            }
            let lw = &mut self.ws[l];
            let len = n * sl.out;
            // An activation has no z; its slot repeats y and is not used.
            let z = if lw.z.len() >= len {
                Bands::new(&mut lw.z[..len])
            } else {
                Bands::new(&mut lw.out[..len])
            };
            self.team_segment.push([z, Bands::new(&mut lw.out[..len])]);
        }
        let (specs, first, segment) = (&self.specs[i..=j], &self.first_param[i..=j], &self.team_segment);
        let x_in = input_of(x, &self.ws[..i], prev, n * s.inp);
        team.run(&|t, _| {
            let r = band(n, parts, 1, t);
            if r.is_empty() {
                return Ok(());
            }
            let mut input = &x_in[r.start * s.inp..r.end * s.inp];
            for (q, (sl, [z, y])) in specs.iter().zip(segment).enumerate() {
                let m = sl.out;
                let (bias, act) = match sl.kind {
                    LayerKind::Dense { bias, act } => (bias, act),
                    LayerKind::Activation(act) => {
                        // SAFETY: as below.
                        let y = unsafe { y.part(r.start * m..r.end * m) };
                        act_forward(act, input, y)?;
                        input = y;
                        continue;
                    }
                    _ => unreachable!("a forward segment holds Dense layers and activations only"),
                };
                let p0 = first[q];
                let wm = MatRef::row_major(&*params[p0], sl.inp, m)?;
                let b = if bias { Some(&*params[p0 + 1]) } else { None };
                // SAFETY: members' row bands are disjoint, and a member reads back
                // only the rows of `y` it wrote.
                let (z, y) = unsafe { (z.part(r.start * m..r.end * m), y.part(r.start * m..r.end * m)) };
                let xm = MatRef::row_major(input, r.len(), sl.inp)?;
                product(z, xm, wm, if q == 0 { panels } else { None })?;
                bias_act_forward(act, b, r.len(), m, z, y)?;
                input = y;
            }
            Ok(())
        })?;
        for l in i..=j {
            self.src[l] = Some(l);
        }
        Ok(j)
    }

    /// [`Network::forward`] in training mode, on `team`.
    pub fn forward_team(
        &mut self,
        team: &Team<'_>,
        x: &[T],
        n: usize,
        params: &[&mut [T]],
        buffers: &mut [&mut [T]],
        uniforms: &[&[T]],
    ) -> Result<(), ShapeError> {
        self.check_args(x, n, params, buffers, Some(uniforms))?;
        let size = team.size();
        let mut prev: Option<usize> = None;
        let mut i = 0;
        while i < self.specs.len() {
            let s = self.specs[i];
            let parts = self.layer_parts(i, n, size).0;
            if parts <= 1 || s.passes_through(true) {
                prev = self.forward_layer(i, prev, x, n, params, buffers, uniforms, true)?;
                i += 1;
                continue;
            }
            let segment = match s.kind {
                LayerKind::Dense { .. } => Some(self.forward_segment(team, i, prev, x, n, params, parts)?),
                LayerKind::BatchNorm { .. } => {
                    Some(self.batch_norm_forward_team(team, i, prev, x, n, params, buffers, parts)?)
                }
                _ => None,
            };
            if let Some(j) = segment {
                prev = Some(j);
                i = j + 1;
                continue;
            }
            let (before, rest) = self.ws.split_at_mut(i);
            let w = &mut rest[0];
            let x_in = input_of(x, before, prev, n * s.inp);
            let len = n * s.out;
            let y = Bands::new(&mut w.out[..len]);
            match s.kind {
                LayerKind::Activation(act) => team.run(&|t, _| {
                    let r = band(len, parts, CHUNK, t);
                    // SAFETY: members' ranges are disjoint.
                    act_forward(act, &x_in[r.clone()], unsafe { y.part(r) })
                })?,
                LayerKind::Dropout { rate } => {
                    let u = uniforms[self.first_uniform[i]];
                    let mask = Bands::new(&mut w.mask[..len]);
                    team.run(&|t, _| {
                        let r = band(len, parts, CHUNK, t);
                        // SAFETY: members' ranges are disjoint.
                        let (mk, yy) = unsafe { (mask.part(r.clone()), y.part(r.clone())) };
                        dropout_forward(&x_in[r.clone()], &u[r], rate, mk, yy)
                    })?
                }
                LayerKind::AlphaDropout { rate, a, b, alpha_p } => {
                    let u = uniforms[self.first_uniform[i]];
                    let mask = Bands::new(&mut w.mask[..len]);
                    team.run(&|t, _| {
                        let r = band(len, parts, CHUNK, t);
                        // SAFETY: members' ranges are disjoint.
                        let (mk, yy) = unsafe { (mask.part(r.clone()), y.part(r.clone())) };
                        alpha_dropout_forward(&x_in[r.clone()], &u[r], rate, a, b, alpha_p, mk, yy)
                    })?
                }
                _ => unreachable!(
                    "Dense and BatchNorm layers run as segments; layer_parts splits only them, elementwise and dropout layers"
                ),
            }
            prev = Some(i);
            self.src[i] = prev;
            i += 1;
        }
        Ok(())
    }
}

#[path = "network_team_backward.rs"]
mod backward;

#[path = "network_team_batch_norm.rs"]
mod batch_norm_team;
