//! Column sums `out_j = Σ_i x_ij` of a row-major `(n, m)` matrix over the fixed row blocks of
//! `parallel::RowBlocks` (`SUM_BLOCK_ROWS` rows each; the determinism contract is there): each
//! block sums its rows in order into a partial row of a caller-provided workspace, and
//! `parallel::fold_blocks` adds the partial rows in block order. A variant fuses the reduction
//! with a pass that writes the rows (a dense layer's `dz` and `db`, PReLU's `dx` and `dslope`).

use super::{CHUNK, SUM_BLOCK_ROWS};
use crate::ensure;
use crate::kernels::parallel::{fold_blocks, RowBlocks};
use crate::kernels::{Real, ShapeError};
use std::ops::Range;

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

/// Rows per parallel chunk of a row-wise pass over `m` columns.
#[inline]
pub(crate) fn rows_per_chunk(m: usize) -> usize {
    (CHUNK / m.max(1)).max(1)
}

/// The row blocks of a column reduction over `n` rows.
fn blocks(n: usize) -> RowBlocks {
    RowBlocks::new(n, SUM_BLOCK_ROWS)
}

/// Elements of workspace that a column reduction over `n` rows and `m` columns needs: one
/// partial row per block of `SUM_BLOCK_ROWS` rows, or none when there is a single block.
pub fn colsum_workspace_len(n: usize, m: usize) -> usize {
    match blocks(n).count() {
        b if b > 1 => b * m,
        _ => 0,
    }
}

/// Deterministic blocked column reduction with a row-wise side output: for each block of
/// `SUM_BLOCK_ROWS` rows, `block(rows, rows_out_chunk, partial)` writes those rows of
/// `rows_out` (`m` elements per row) and sets `partial` (`m`) to their column sums; partials are
/// then added in block order into `out`. `ws` holds `colsum_workspace_len(n, m)` elements;
/// `cost` is the work per element.
pub(crate) fn blocked_colsum<T: Real>(
    n: usize,
    m: usize,
    cost: usize,
    rows_out: &mut [T],
    ws: &mut [T],
    out: &mut [T],
    block: impl Fn(Range<usize>, &mut [T], &mut [T]) + Sync + Send,
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
        block(0..n, rows_out, out);
        return Ok(());
    }
    let ws = &mut ws[..need];
    blocks(n).for_each_with(rows_out, m, ws, m, cost * m, block);
    fold_blocks(ws, m, out);
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
    column_sum_blocks(x, m, ws);
    fold_blocks(ws, m, out);
    Ok(())
}

/// The block partials of [`column_sums`] for a band of rows that starts on a block boundary:
/// `parts` (`⌈rows/SUM_BLOCK_ROWS⌉ · m`) receives one partial row per block of the band. A
/// team computes the bands of a batch on several threads, then `parallel::fold_blocks` adds
/// the partials in block order: the same additions in the same order as `column_sums`, so the
/// same bits.
pub(crate) fn column_sum_blocks<T: Real>(x: &[T], m: usize, parts: &mut [T]) {
    if m == 0 {
        return;
    }
    blocks(x.len() / m).for_each(parts, m, m, |r, part| sum_rows(m, &x[r.start * m..r.end * m], part));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::activation::tests::fill;
    use crate::kernels::activation::{bias_act_backward, Act};
    use crate::kernels::parallel;

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
