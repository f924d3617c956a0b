//! Column sums `out_j = Σ_i x_ij` of a row-major `(n, m)` matrix that are bit-identical for
//! any thread count: rows are cut into fixed blocks of `SUM_BLOCK_ROWS`, each block sums its
//! rows in order into a partial row of a caller-provided workspace, and the partial rows are
//! added in block order. A variant fuses the reduction with a pass that writes the rows (a
//! dense layer's `dz` and `db`, PReLU's `dx` and `dslope`).

use super::{CHUNK, SUM_BLOCK_ROWS};
use crate::ensure;
use crate::kernels::parallel::{self, for_each_chunk};
use crate::kernels::{Real, ShapeError};
use rayon::prelude::*;

simd_fn! {
/// `part ← Σ_rows x` over the rows of `x` (`m` columns).
fn sum_rows<T: Real>(m: usize, x: &[T], part: &mut [T]) {
    part.fill(T::zero());
    for r in x.chunks_exact(m) {
        for (p, &v) in part.iter_mut().zip(r) {
            *p += v;
        }
    }
}
}

simd_fn! {
fn add_into<T: Real>(acc: &mut [T], x: &[T]) {
    for (a, &v) in acc.iter_mut().zip(x) {
        *a += v;
    }
}
}

/// Like `parallel::for_each_chunk`, over two outputs cut into the same number of chunks
/// (`ca` elements of `a` and `cb` of `b` per chunk): `f(chunk_index, a_chunk, b_chunk)`.
pub(crate) fn for_each_chunk_pair<A: Send, B: Send>(
    a: &mut [A],
    ca: usize,
    b: &mut [B],
    cb: usize,
    cost: usize,
    f: impl Fn(usize, &mut [A], &mut [B]) + Sync + Send,
) {
    let (ca, cb) = (ca.max(1), cb.max(1));
    if parallel::threads_for(a.len().saturating_mul(cost)) > 1 {
        parallel::install(|| {
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

/// Rows per parallel chunk of a row-wise pass over `m` columns.
#[inline]
pub(crate) fn rows_per_chunk(m: usize) -> usize {
    (CHUNK / m.max(1)).max(1)
}

/// Elements of workspace that a column reduction over `n` rows and `m` columns needs: one
/// partial row per block of `SUM_BLOCK_ROWS` rows, or none when there is a single block.
pub fn colsum_workspace_len(n: usize, m: usize) -> usize {
    let blocks = n.div_ceil(SUM_BLOCK_ROWS);
    if blocks > 1 {
        blocks * m
    } else {
        0
    }
}

/// Deterministic blocked column reduction with a row-wise side output: for each block of
/// `SUM_BLOCK_ROWS` rows, `block(rows_out_chunk, first_row, partial)` writes its rows of
/// `rows_out` (`m` elements per row) and sets `partial` (`m`) to its column sums; partials are
/// then added in block order into `out`. `ws` holds `colsum_workspace_len(n, m)` elements.
pub(crate) fn blocked_colsum<T: Real>(
    n: usize,
    m: usize,
    cost: usize,
    rows_out: &mut [T],
    ws: &mut [T],
    out: &mut [T],
    block: impl Fn(&mut [T], usize, &mut [T]) + Sync + Send,
) -> Result<(), ShapeError> {
    ensure!(
        rows_out.len() == n * m,
        "column reduction: row output has {} elements, expected {n}x{m}",
        rows_out.len()
    );
    ensure!(
        out.len() == m,
        "column reduction: sum has {} elements, expected {m}",
        out.len()
    );
    let need = colsum_workspace_len(n, m);
    ensure!(
        ws.len() >= need,
        "column reduction: workspace has {} elements, needs {need}",
        ws.len()
    );
    if m == 0 {
        return Ok(());
    }
    if need == 0 {
        block(rows_out, 0, out);
        return Ok(());
    }
    let ws = &mut ws[..need];
    for_each_chunk_pair(rows_out, SUM_BLOCK_ROWS * m, ws, m, cost, |i, rows, part| {
        block(rows, i * SUM_BLOCK_ROWS, part)
    });
    let (first, rest) = ws.split_at(m);
    out.copy_from_slice(first);
    for part in rest.chunks_exact(m) {
        add_into(out, part);
    }
    Ok(())
}

/// `out ← Σ_rows x` for `x (n, m)`, deterministic (fixed row blocks, combined in order).
/// `ws` holds `colsum_workspace_len(n, m)` elements.
pub fn column_sums<T: Real>(x: &[T], n: usize, m: usize, ws: &mut [T], out: &mut [T]) -> Result<(), ShapeError> {
    ensure!(
        x.len() == n * m,
        "column sums: input has {} elements, expected {n}x{m}",
        x.len()
    );
    ensure!(
        out.len() == m,
        "column sums: output has {} elements, expected {m}",
        out.len()
    );
    let need = colsum_workspace_len(n, m);
    ensure!(
        ws.len() >= need,
        "column sums: workspace has {} elements, needs {need}",
        ws.len()
    );
    if m == 0 {
        return Ok(());
    }
    if need == 0 {
        sum_rows(m, x, out);
        return Ok(());
    }
    let ws = &mut ws[..need];
    for_each_chunk(ws, m, SUM_BLOCK_ROWS, |off, part| {
        let r0 = (off / m) * SUM_BLOCK_ROWS;
        let r1 = (r0 + SUM_BLOCK_ROWS).min(n);
        sum_rows(m, &x[r0 * m..r1 * m], part);
    });
    let (first, rest) = ws.split_at(m);
    out.copy_from_slice(first);
    for part in rest.chunks_exact(m) {
        add_into(out, part);
    }
    Ok(())
}

/// The block partials of [`column_sums`] for a band of rows that starts on a block boundary:
/// `parts` (`⌈rows/SUM_BLOCK_ROWS⌉ · m`) receives one partial row per block of the band. A
/// team computes the bands of a batch on several threads, then [`fold_blocks`] adds the
/// partials in block order: the same additions in the same order as `column_sums`, so the
/// same bits.
pub(crate) fn column_sum_blocks<T: Real>(x: &[T], m: usize, parts: &mut [T]) {
    if m == 0 {
        return;
    }
    for (rows, part) in x.chunks(SUM_BLOCK_ROWS * m).zip(parts.chunks_exact_mut(m)) {
        sum_rows(m, rows, part);
    }
}

/// `out ← Σ_blocks parts`, in block order, as `column_sums` and `blocked_colsum` fold their
/// partials (a single block is copied: the one-block path writes its sums directly).
pub(crate) fn fold_blocks<T: Real>(parts: &[T], m: usize, out: &mut [T]) {
    if m == 0 {
        return;
    }
    let (first, rest) = parts.split_at(m);
    out.copy_from_slice(first);
    for part in rest.chunks_exact(m) {
        add_into(out, part);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::activation::tests::fill;
    use crate::kernels::activation::{bias_act_backward, Act};

    #[test]
    fn column_sums_are_bit_identical_for_any_thread_count() {
        let (n, m) = (2000, 129);
        let x = fill(n * m, 9, -1.0, 1.0);
        let mut ws = vec![0.0; colsum_workspace_len(n, m)];
        let mut want = vec![0.0; m];
        parallel::set_num_threads(1).unwrap();
        column_sums(&x, n, m, &mut ws, &mut want).unwrap();
        for t in [2, 3, 4] {
            let mut got = vec![0.0; m];
            parallel::set_num_threads(t).unwrap();
            column_sums(&x, n, m, &mut ws, &mut got).unwrap();
            assert!(
                got.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits()),
                "threads={t}"
            );
            let mut dz = vec![0.0; n * m];
            let mut db = vec![0.0; m];
            bias_act_backward(Act::Tanh, &x, &x, &x, n, m, &mut dz, &mut ws, &mut db).unwrap();
            parallel::set_num_threads(1).unwrap();
            let mut db1 = vec![0.0; m];
            bias_act_backward(Act::Tanh, &x, &x, &x, n, m, &mut dz, &mut ws, &mut db1).unwrap();
            assert!(
                db.iter().zip(&db1).all(|(a, b)| a.to_bits() == b.to_bits()),
                "threads={t}"
            );
        }
    }
}
