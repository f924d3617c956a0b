//! PReLU (He et al., "Delving Deep into Rectifiers", ICCV 2015) with one learned slope per unit:
//! `x (n, m)`, `a (m,)`, `y = x if x > 0 else a·x`.
//!
//! Backward: `dx = dy if x > 0 else a·dy` and `da_j = Σ_i dy_ij·x_ij·[x_ij ≤ 0]`, the column sum
//! reduced over fixed row blocks (bit-identical for any thread count), as PyTorch's
//! `_prelu_kernel_backward` followed by a sum over the batch.

use super::{blocked_colsum, colsum_workspace_len, rows_per_chunk};
use crate::ensure;
use crate::kernels::{Real, ShapeError};

simd_fn! {
fn forward_rows<T: Real>(slope: &[T], m: usize, x: &[T], y: &mut [T]) {
    for (xr, yr) in x.chunks_exact(m).zip(y.chunks_exact_mut(m)) {
        for ((yj, &xj), &a) in yr.iter_mut().zip(xr).zip(slope) {
            *yj = if xj > T::zero() { xj } else { a * xj };
        }
    }
}
}

simd_fn! {
fn backward_rows<T: Real>(slope: &[T], m: usize, dy: &[T], x: &[T], dx: &mut [T], part: &mut [T]) {
    part.fill(T::zero());
    for ((gr, xr), dr) in dy.chunks_exact(m).zip(x.chunks_exact(m)).zip(dx.chunks_exact_mut(m)) {
        for ((((d, p), &g), &xj), &a) in dr.iter_mut().zip(part.iter_mut()).zip(gr).zip(xr).zip(slope) {
            let pos = xj > T::zero();
            *d = if pos { g } else { a * g };
            *p += if pos { T::zero() } else { g * xj };
        }
    }
}
}

/// `y ← prelu(x)` for `x, y (n, m)` and `slope (m,)`.
pub fn prelu_forward<T: Real>(x: &[T], slope: &[T], n: usize, m: usize, y: &mut [T]) -> Result<(), ShapeError> {
    ensure!(
        x.len() == n * m && y.len() == n * m,
        "prelu: x and y have {} and {} elements, expected {n}x{m}",
        x.len(),
        y.len()
    );
    ensure!(
        slope.len() == m,
        "prelu: slope has {} elements, expected {m}",
        slope.len()
    );
    if m == 0 {
        return Ok(());
    }
    let c = rows_per_chunk(m) * m;
    crate::kernels::parallel::for_each_chunk(y, c, 1, |off, yc| forward_rows(slope, m, &x[off..off + yc.len()], yc));
    Ok(())
}

/// Elements of workspace `prelu_backward` needs for `n` rows of `m` units.
pub fn prelu_workspace_len(n: usize, m: usize) -> usize {
    colsum_workspace_len(n, m)
}

/// `dx ← dy·prelu'(x)` and `dslope ← Σ_i dy_ij x_ij [x_ij ≤ 0]`; `ws` holds
/// `prelu_workspace_len(n, m)` elements.
#[allow(clippy::too_many_arguments)]
pub fn prelu_backward<T: Real>(
    dy: &[T],
    x: &[T],
    slope: &[T],
    n: usize,
    m: usize,
    dx: &mut [T],
    ws: &mut [T],
    dslope: &mut [T],
) -> Result<(), ShapeError> {
    ensure!(
        dy.len() == n * m && x.len() == n * m,
        "prelu backward: dy and x have {} and {} elements, expected {n}x{m}",
        dy.len(),
        x.len()
    );
    ensure!(
        slope.len() == m,
        "prelu backward: slope has {} elements, expected {m}",
        slope.len()
    );
    blocked_colsum(n, m, 1, dx, ws, dslope, |r, dxc, part| {
        let e = r.start * m..r.end * m;
        backward_rows(slope, m, &dy[e.clone()], &x[e], dxc, part)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::activation::tests::{close, fill};
    use crate::kernels::parallel;

    #[test]
    fn matches_naive_serial_and_parallel() {
        for &(n, m) in &[
            (0usize, 3usize),
            (3, 0),
            (1, 1),
            (5, 7),
            (9, 8),
            (64, 9),
            (65, 15),
            (130, 16),
            (17, 17),
            (3000, 33),
        ] {
            let x = fill(n * m, 1, -2.0, 2.0);
            let dy = fill(n * m, 2, -1.0, 1.0);
            let a = fill(m, 3, 0.0, 0.5);
            let mut y = vec![f64::NAN; n * m];
            prelu_forward(&x, &a, n, m, &mut y).unwrap();
            let want: Vec<f64> = x
                .iter()
                .enumerate()
                .map(|(i, &v)| if v > 0.0 { v } else { a[i % m] * v })
                .collect();
            close(&y, &want, 0.0, "prelu");
            let mut dx = vec![f64::NAN; n * m];
            let mut ws = vec![f64::NAN; prelu_workspace_len(n, m)];
            let mut da = vec![f64::NAN; m];
            prelu_backward(&dy, &x, &a, n, m, &mut dx, &mut ws, &mut da).unwrap();
            let want: Vec<f64> = x
                .iter()
                .zip(&dy)
                .enumerate()
                .map(|(i, (&v, &g))| if v > 0.0 { g } else { a[i % m] * g })
                .collect();
            close(&dx, &want, 0.0, "prelu dx");
            for j in 0..m {
                let s: f64 = (0..n)
                    .map(|i| {
                        if x[i * m + j] > 0.0 {
                            0.0
                        } else {
                            dy[i * m + j] * x[i * m + j]
                        }
                    })
                    .sum();
                assert!((da[j] - s).abs() <= 1e-12 * (1.0 + s.abs()), "dslope {} vs {s}", da[j]);
            }
        }
    }

    #[test]
    fn dslope_is_bit_identical_for_any_thread_count() {
        let (n, m) = (4000, 40);
        let x = fill(n * m, 4, -2.0, 2.0);
        let a = fill(m, 5, 0.0, 0.5);
        let mut dx = vec![0.0; n * m];
        let mut ws = vec![0.0; prelu_workspace_len(n, m)];
        let run = |t: usize, dx: &mut [f64], ws: &mut [f64]| {
            parallel::set_num_threads(t).unwrap();
            let mut da = vec![0.0; m];
            prelu_backward(&x, &x, &a, n, m, dx, ws, &mut da).unwrap();
            da
        };
        let one = run(1, &mut dx, &mut ws);
        for t in [2, 3] {
            let da = run(t, &mut dx, &mut ws);
            assert!(
                da.iter().zip(&one).all(|(p, q)| p.to_bits() == q.to_bits()),
                "threads={t}"
            );
        }
    }

    #[test]
    fn shape_errors() {
        let x = vec![0.0f64; 6];
        let mut y = vec![0.0f64; 6];
        assert!(prelu_forward(&x, &x[..2], 2, 3, &mut y).is_err());
        let mut d = vec![0.0; 3];
        assert!(prelu_backward(&x, &x, &x[..3], 2, 3, &mut y[..5], &mut [], &mut d).is_err());
    }
}
