//! Batch normalization over the rows of `x (n, m)` (Ioffe & Szegedy 2015), with the conventions
//! of PyTorch's `BatchNorm1d`.
//!
//! Training, per column `j` over the `n` rows:
//! ```text
//! mean_j   = (1/n) Σ_i x_ij
//! var_j    = (1/n) Σ_i (x_ij − mean_j)²        biased; a second pass, never E[x²] − E[x]²
//! invstd_j = 1 / sqrt(var_j + eps)
//! y_ij     = ((x_ij − mean_j) · invstd_j) · γ_j + β_j
//! running_mean ← (1 − momentum)·running_mean + momentum·mean
//! running_var  ← (1 − momentum)·running_var  + momentum·var·n/(n − 1)   (unbiased, as PyTorch)
//! ```
//! Evaluation normalizes with the running statistics instead and updates nothing.
//!
//! Backward, with `x̂ = (x − mean)·invstd`, `dβ = Σ_i dy`, `dγ = Σ_i dy·x̂`:
//! ```text
//! training:   dx = (γ·invstd/n) · (n·dy − dβ − x̂·dγ)
//! evaluation: dx = dy · (γ·invstd)
//! ```
//!
//! The column sums are accumulated in `f64` for both element types, as PyTorch's CPU kernel
//! does: float32 activations with a large mean and a small spread (mean 1e4, std 1e-2) then still
//! get their variance to ~1e-7 relative, where an `f32` sum would already lose the mean.
//!
//! Determinism: every column sum runs over the fixed row blocks of `parallel::RowBlocks`
//! (`BLOCK_ROWS` rows each; the contract is stated there), each block's partial sums in its own
//! slice of the caller's workspace, folded in block order by `parallel::fold_blocks`. Rows are
//! contiguous, so a block accumulates whole rows into `m` partial sums and the inner loop runs
//! along a row (vectorized across columns), never down a column.

use super::parallel::{fold_blocks, for_each_chunk, RowBlocks};
use super::rows::{quads, split4};
use super::{Real, ShapeError};
use crate::ensure;
use std::ops::Range;

/// Rows per block of the column sums. Fixed, so that the summation order never depends on the
/// thread count.
pub const BLOCK_ROWS: usize = 64;

/// The row blocks of an `n`-row batch.
fn blocks(n: usize) -> RowBlocks {
    RowBlocks::new(n, BLOCK_ROWS)
}

/// `f64` workspace length that [`forward_train`] needs for `x (n, m)`: one partial-sum row per
/// row block, then the `f64` mean and the `f64` sum of squared deviations.
pub fn forward_workspace_len(n: usize, m: usize) -> usize {
    (blocks(n).count() + 2) * m
}

/// `f64` workspace length that [`backward`] needs for `x (n, m)`: two partial sums (`dβ`, `dγ`)
/// per row block, then their two totals.
pub fn backward_workspace_len(n: usize, m: usize) -> usize {
    2 * (blocks(n).count() + 1) * m
}

/// Checks the hyper-parameters as PyTorch would accept them.
pub fn check_hyper(momentum: f64, eps: f64) -> Result<(), ShapeError> {
    ensure!(
        momentum.is_finite() && (0.0..=1.0).contains(&momentum),
        "argument 'momentum' must be finite and in [0, 1], got {momentum}"
    );
    ensure!(
        eps.is_finite() && eps > 0.0,
        "argument 'eps' must be finite and > 0, got {eps}"
    );
    Ok(())
}

fn check_vec(name: &str, len: usize, m: usize) -> Result<(), ShapeError> {
    ensure!(
        len == m,
        "argument '{name}' has {len} elements, expected {m} (one per column of x)"
    );
    Ok(())
}

fn check_mat(name: &str, len: usize, n: usize, m: usize) -> Result<(), ShapeError> {
    ensure!(len == n * m, "argument '{name}' has {len} elements, expected {n}x{m}");
    Ok(())
}

// ------------------------------------------------------------------------------------------
// Leaf loops: one block of whole rows, compiled per instruction set. The column index is the
// inner loop, so each row is one contiguous, vectorizable sweep.

simd_fn! {
/// `part[j] = Σ_rows x[r, j]` in `f64`.
fn block_sum<T: Real>(x: &[T], part: &mut [f64]) {
    let m = part.len();
    part.fill(0.0);
    let (q, rest) = quads(x, m);
    for q in q {
        let (a, b, c, d) = split4(q, m);
        for ((((p, &a), &b), &c), &d) in part.iter_mut().zip(a).zip(b).zip(c).zip(d) {
            *p = *p + a.f64() + b.f64() + c.f64() + d.f64();
        }
    }
    for row in rest {
        for (p, &v) in part.iter_mut().zip(row) {
            *p += v.f64();
        }
    }
}
}

simd_fn! {
/// `part[j] = Σ_rows (x[r, j] − mean[j])²` in `f64`.
fn block_sqdev<T: Real>(x: &[T], mean: &[f64], part: &mut [f64]) {
    let m = part.len();
    part.fill(0.0);
    let sq = |v: T, mu: f64| {
        let d = v.f64() - mu;
        d * d
    };
    let (q, rest) = quads(x, m);
    for q in q {
        let (a, b, c, d) = split4(q, m);
        for (((((p, &a), &b), &c), &d), &mu) in part.iter_mut().zip(a).zip(b).zip(c).zip(d).zip(mean) {
            *p = *p + sq(a, mu) + sq(b, mu) + sq(c, mu) + sq(d, mu);
        }
    }
    for row in rest {
        for ((p, &v), &mu) in part.iter_mut().zip(row).zip(mean) {
            *p += sq(v, mu);
        }
    }
}
}

simd_fn! {
/// `db[j] = Σ_rows dy`, `dg[j] = Σ_rows dy·(x − mean)` in `f64` (`invstd` is applied once, after).
fn block_grad_sums<T: Real>(dy: &[T], x: &[T], mean: &[T], db: &mut [f64], dg: &mut [f64]) {
    let m = db.len();
    db.fill(0.0);
    dg.fill(0.0);
    let prod = |d: T, v: T, mu: T| d.f64() * (v.f64() - mu.f64());
    let ((qd, rd), (qx, rx)) = (quads(dy, m), quads(x, m));
    let mean = &mean[..m];
    for (qd, qx) in qd.zip(qx) {
        let ((d0, d1, d2, d3), (x0, x1, x2, x3)) = (split4(qd, m), split4(qx, m));
        // Equal lengths, visible to the compiler: no bounds checks in the loop.
        let (d0, d1, d2, d3, x0, x1, x2, x3) = (
            &d0[..m],
            &d1[..m],
            &d2[..m],
            &d3[..m],
            &x0[..m],
            &x1[..m],
            &x2[..m],
            &x3[..m],
        );
        let (db, dg) = (&mut db[..m], &mut dg[..m]);
        for j in 0..m {
            let mu = mean[j];
            db[j] = db[j] + d0[j].f64() + d1[j].f64() + d2[j].f64() + d3[j].f64();
            dg[j] = dg[j]
                + prod(d0[j], x0[j], mu)
                + prod(d1[j], x1[j], mu)
                + prod(d2[j], x2[j], mu)
                + prod(d3[j], x3[j], mu);
        }
    }
    for (dyr, xr) in rd.zip(rx) {
        for ((((b, g), &d), &v), &mu) in db.iter_mut().zip(dg.iter_mut()).zip(dyr).zip(xr).zip(mean) {
            *b += d.f64();
            *g += prod(d, v, mu);
        }
    }
}
}

simd_fn! {
/// `y = ((x − mean)·invstd)·γ + β`, row by row.
fn block_normalize<T: Real>(x: &[T], mean: &[T], invstd: &[T], gamma: &[T], beta: &[T], y: &mut [T]) {
    let m = mean.len();
    for (yr, xr) in y.chunks_exact_mut(m).zip(x.chunks_exact(m)) {
        for (((((o, &v), &mu), &s), &g), &b) in yr.iter_mut().zip(xr).zip(mean).zip(invstd).zip(gamma).zip(beta) {
            *o = ((v - mu) * s) * g + b;
        }
    }
}
}

simd_fn! {
/// Training `dx = (γ·invstd·(1/n)) · (n·dy − dβ − x̂·dγ)` with `x̂ = (x − mean)·invstd`.
#[allow(clippy::too_many_arguments)]
fn block_dx_train<T: Real>(
    dy: &[T],
    x: &[T],
    gamma: &[T],
    mean: &[T],
    invstd: &[T],
    dgamma: &[T],
    dbeta: &[T],
    nf: T,
    inv_n: T,
    dx: &mut [T],
) {
    let m = mean.len();
    for ((o, d), xr) in dx.chunks_exact_mut(m).zip(dy.chunks_exact(m)).zip(x.chunks_exact(m)) {
        let cols = o
            .iter_mut()
            .zip(d)
            .zip(xr)
            .zip(gamma)
            .zip(mean)
            .zip(invstd)
            .zip(dgamma)
            .zip(dbeta);
        for (((((((o, &d), &v), &g), &mu), &s), &dg), &db) in cols {
            let xhat = (v - mu) * s;
            *o = (g * s * inv_n) * (nf * d - db - xhat * dg);
        }
    }
}
}

simd_fn! {
/// Evaluation `dx = dy·(γ·invstd)`.
fn block_dx_eval<T: Real>(dy: &[T], gamma: &[T], invstd: &[T], dx: &mut [T]) {
    let m = gamma.len();
    for (o, d) in dx.chunks_exact_mut(m).zip(dy.chunks_exact(m)) {
        for (((o, &d), &g), &s) in o.iter_mut().zip(d).zip(gamma).zip(invstd) {
            *o = d * (g * s);
        }
    }
}
}

// ------------------------------------------------------------------------------------------
// The stages of a training pass: row-block passes and the folds between them. `forward_train`
// and `backward` run them in order, each pass's blocks on the rayon pool; the fused team step
// (`fused/network_team_batch_norm.rs`) runs each pass's blocks split across its members, with
// the folds on its leader between. The same calls on the same blocks, so the same bits.

/// The training forward's `f64` workspace ([`forward_workspace_len`]): the block partials,
/// the mean, and the total of squared deviations.
pub fn forward_work(work: &mut [f64], n: usize, m: usize) -> (&mut [f64], &mut [f64], &mut [f64]) {
    let (parts, rest) = work.split_at_mut(blocks(n).count() * m);
    let (mean64, rest) = rest.split_at_mut(m);
    (parts, mean64, &mut rest[..m])
}

/// The backward's `f64` workspace ([`backward_workspace_len`]): `2m` partials per block
/// (`dβ`, then `dγ` before `invstd`), and their two totals.
pub fn backward_work(work: &mut [f64], n: usize, m: usize) -> (&mut [f64], &mut [f64]) {
    let (parts, rest) = work.split_at_mut(2 * blocks(n).count() * m);
    (parts, &mut rest[..2 * m])
}

/// The rows of block `b` of an `n`-row batch (`BLOCK_ROWS` each; empty past the last).
pub fn block_rows(n: usize, b: usize) -> Range<usize> {
    blocks(n).rows_of(b)
}

/// Forward pass 1 over one block, rows `r` of `x (·, m)`: its column sums, into `part` (`m`).
pub fn sum_block<T: Real>(x: &[T], m: usize, r: Range<usize>, part: &mut [f64]) {
    block_sum(&x[r.start * m..r.end * m], part);
}

/// `mean64 ← (Σ_blocks parts) / n`, the block partials of pass 1 added in block order.
pub fn mean_from(parts: &[f64], n: usize, mean64: &mut [f64]) {
    fold_blocks(parts, mean64.len(), mean64);
    let nf = n as f64;
    for mu in mean64.iter_mut() {
        *mu /= nf;
    }
}

/// Forward pass 2 over one block: its column sums of squared deviations from `mean64`.
pub fn sqdev_block<T: Real>(x: &[T], m: usize, r: Range<usize>, mean64: &[f64], part: &mut [f64]) {
    block_sqdev(&x[r.start * m..r.end * m], mean64, part);
}

/// From pass 2's block partials (folded into `var64`): the saved mean and `1/sqrt(var + eps)`,
/// and, with `running`, PyTorch's running update with the unbiased variance.
#[allow(clippy::too_many_arguments)]
pub fn finish_stats<T: Real>(
    parts: &[f64],
    n: usize,
    mean64: &[f64],
    var64: &mut [f64],
    eps: f64,
    running: Option<(&mut [T], &mut [T])>,
    momentum: f64,
    save_mean: &mut [T],
    save_invstd: &mut [T],
) {
    let m = mean64.len();
    fold_blocks(parts, m, var64);
    let nf = n as f64;
    let unbias = nf / (nf - 1.0);
    for j in 0..m {
        let var = var64[j] / nf;
        save_mean[j] = T::of(mean64[j]);
        save_invstd[j] = T::of(1.0 / (var + eps).sqrt());
    }
    if let Some((rm, rv)) = running {
        for j in 0..m {
            let var = var64[j] / nf;
            rm[j] = T::of((1.0 - momentum) * rm[j].f64() + momentum * mean64[j]);
            rv[j] = T::of((1.0 - momentum) * rv[j].f64() + momentum * var * unbias);
        }
    }
}

/// Forward pass 3 over any rows: `y = ((x − mean)·invstd)·γ + β` (`x`, `y` those rows only).
pub fn normalize_rows<T: Real>(x: &[T], mean: &[T], invstd: &[T], gamma: &[T], beta: &[T], y: &mut [T]) {
    block_normalize(x, mean, invstd, gamma, beta, y);
}

/// Backward pass 1 over one block, rows `r`: `part[..m] ← Σ dy`, `part[m..2m] ← Σ dy·(x − mean)`.
pub fn grad_sums_block<T: Real>(dy: &[T], x: &[T], m: usize, r: Range<usize>, mean: &[T], part: &mut [f64]) {
    let e = r.start * m..r.end * m;
    let (db, dg) = part.split_at_mut(m);
    block_grad_sums(&dy[e.clone()], &x[e], mean, db, &mut dg[..m]);
}

/// From pass 1's block partials (folded into `sums`): `dβ` and `dγ = invstd·Σ dy·(x − mean)`.
pub fn finish_grads<T: Real>(parts: &[f64], invstd: &[T], sums: &mut [f64], dgamma: &mut [T], dbeta: &mut [T]) {
    let m = invstd.len();
    fold_blocks(parts, 2 * m, sums);
    for j in 0..m {
        dbeta[j] = T::of(sums[j]);
        dgamma[j] = T::of(sums[m + j] * invstd[j].f64());
    }
}

/// Backward pass 2 in training, rows `r` of an `n`-row batch: their `dx` (`dx` those rows only;
/// `dy`, `x` whole).
#[allow(clippy::too_many_arguments)]
pub fn dx_train_rows<T: Real>(
    dy: &[T],
    x: &[T],
    n: usize,
    r: Range<usize>,
    gamma: &[T],
    mean: &[T],
    invstd: &[T],
    dgamma: &[T],
    dbeta: &[T],
    dx: &mut [T],
) {
    let m = gamma.len();
    let e = r.start * m..r.end * m;
    let (nf, inv_n) = (T::of(n as f64), T::of(1.0 / n as f64));
    block_dx_train(&dy[e.clone()], &x[e], gamma, mean, invstd, dgamma, dbeta, nf, inv_n, dx);
}

// ------------------------------------------------------------------------------------------
// Public API: caller-provided outputs and workspace, nothing allocated.

/// Training-mode forward of `x (n, m)`, row-major. Writes `y (n, m)`, `save_mean (m,)` and
/// `save_invstd (m,)`; when `running = Some((running_mean, running_var))` updates them in place.
/// `work` must hold [`forward_workspace_len`]`(n, m)` values (its contents are scratch).
/// Needs `n ≥ 2` (PyTorch: "Expected more than 1 value per channel when training").
#[allow(clippy::too_many_arguments)]
pub fn forward_train<T: Real>(
    x: &[T],
    n: usize,
    m: usize,
    gamma: &[T],
    beta: &[T],
    running: Option<(&mut [T], &mut [T])>,
    momentum: f64,
    eps: f64,
    y: &mut [T],
    save_mean: &mut [T],
    save_invstd: &mut [T],
    work: &mut [f64],
) -> Result<(), ShapeError> {
    check_hyper(momentum, eps)?;
    ensure!(
        n > 1,
        "Expected more than 1 value per channel when training, got input of shape ({n}, {m}) (argument 'x' needs at least 2 rows)"
    );
    check_mat("x", x.len(), n, m)?;
    check_mat("y", y.len(), n, m)?;
    for (name, len) in [
        ("gamma", gamma.len()),
        ("beta", beta.len()),
        ("save_mean", save_mean.len()),
        ("save_invstd", save_invstd.len()),
    ] {
        check_vec(name, len, m)?;
    }
    if let Some((rm, rv)) = &running {
        check_vec("running_mean", rm.len(), m)?;
        check_vec("running_var", rv.len(), m)?;
    }
    ensure!(
        work.len() >= forward_workspace_len(n, m),
        "workspace has {} values, batch_norm::forward_train needs {}",
        work.len(),
        forward_workspace_len(n, m)
    );
    if m == 0 {
        return Ok(());
    }
    let blocks = blocks(n);
    let (parts, mean64, var64) = forward_work(work, n, m);
    blocks.for_each(parts, m, m, |r, p| sum_block(x, m, r, p));
    mean_from(parts, n, mean64);
    let mean64: &[f64] = mean64;
    blocks.for_each(parts, m, m, |r, p| sqdev_block(x, m, r, mean64, p));
    finish_stats(parts, n, mean64, var64, eps, running, momentum, save_mean, save_invstd);
    normalize(x, m, save_mean, save_invstd, gamma, beta, y);
    Ok(())
}

/// Evaluation-mode forward: normalizes with the running statistics, writes `y`,
/// `save_mean = running_mean` and `save_invstd = 1/sqrt(running_var + eps)`; updates nothing.
#[allow(clippy::too_many_arguments)]
pub fn forward_eval<T: Real>(
    x: &[T],
    n: usize,
    m: usize,
    gamma: &[T],
    beta: &[T],
    running_mean: &[T],
    running_var: &[T],
    eps: f64,
    y: &mut [T],
    save_mean: &mut [T],
    save_invstd: &mut [T],
) -> Result<(), ShapeError> {
    check_hyper(0.0, eps)?;
    check_mat("x", x.len(), n, m)?;
    check_mat("y", y.len(), n, m)?;
    for (name, len) in [
        ("gamma", gamma.len()),
        ("beta", beta.len()),
        ("running_mean", running_mean.len()),
        ("running_var", running_var.len()),
        ("save_mean", save_mean.len()),
        ("save_invstd", save_invstd.len()),
    ] {
        check_vec(name, len, m)?;
    }
    if m == 0 {
        return Ok(());
    }
    save_mean.copy_from_slice(running_mean);
    for (s, &v) in save_invstd.iter_mut().zip(running_var) {
        *s = T::of(1.0 / (v.f64() + eps).sqrt());
    }
    normalize(x, m, save_mean, save_invstd, gamma, beta, y);
    Ok(())
}

fn normalize<T: Real>(x: &[T], m: usize, mean: &[T], invstd: &[T], gamma: &[T], beta: &[T], y: &mut [T]) {
    for_each_chunk(y, BLOCK_ROWS * m, 1, |off, yb| {
        normalize_rows(&x[off..off + yb.len()], mean, invstd, gamma, beta, yb)
    });
}

/// Backward of either mode for `x (n, m)` given the forward's `save_mean` and `save_invstd`.
/// Writes `dx (n, m)`, `dgamma (m,)`, `dbeta (m,)`; `work` must hold
/// [`backward_workspace_len`]`(n, m)` values.
#[allow(clippy::too_many_arguments)]
pub fn backward<T: Real>(
    dy: &[T],
    x: &[T],
    n: usize,
    m: usize,
    gamma: &[T],
    save_mean: &[T],
    save_invstd: &[T],
    training: bool,
    dx: &mut [T],
    dgamma: &mut [T],
    dbeta: &mut [T],
    work: &mut [f64],
) -> Result<(), ShapeError> {
    check_mat("x", x.len(), n, m)?;
    check_mat("dy", dy.len(), n, m)?;
    check_mat("dx", dx.len(), n, m)?;
    for (name, len) in [
        ("gamma", gamma.len()),
        ("save_mean", save_mean.len()),
        ("save_invstd", save_invstd.len()),
        ("dgamma", dgamma.len()),
        ("dbeta", dbeta.len()),
    ] {
        check_vec(name, len, m)?;
    }
    ensure!(
        work.len() >= backward_workspace_len(n, m),
        "workspace has {} values, batch_norm::backward needs {}",
        work.len(),
        backward_workspace_len(n, m)
    );
    if m == 0 {
        return Ok(());
    }
    if n == 0 {
        dgamma.fill(T::zero());
        dbeta.fill(T::zero());
        return Ok(());
    }
    let blocks = blocks(n);
    let (parts, sums) = backward_work(work, n, m);
    blocks.for_each(parts, 2 * m, m, |r, p| grad_sums_block(dy, x, m, r, save_mean, p));
    finish_grads(parts, save_invstd, sums, dgamma, dbeta);
    let (dgamma, dbeta): (&[T], &[T]) = (dgamma, dbeta);
    if training {
        for_each_chunk(dx, BLOCK_ROWS * m, 1, |off, o| {
            let r = off / m..(off + o.len()) / m;
            dx_train_rows(dy, x, n, r, gamma, save_mean, save_invstd, dgamma, dbeta, o)
        });
    } else {
        for_each_chunk(dx, BLOCK_ROWS * m, 1, |off, o| {
            block_dx_eval(&dy[off..off + o.len()], gamma, save_invstd, o)
        });
    }
    Ok(())
}

#[cfg(test)]
#[path = "batch_norm_tests.rs"]
mod tests;
