//! Maxout (Goodfellow et al., "Maxout Networks", ICML 2013): `x (n, m·k)` → `y (n, m)` with
//! `y_ij = max_{p<k} x_{i, j·k+p}` (the `k` pieces of unit `j` are adjacent columns).
//!
//! The arg-max `p` is kept (as `i64`, for NumPy's int64) so that the backward routes `dy_ij` to
//! column `j·k + p` alone, as PyTorch's max-pooling backward does. Ties go to the first maximum;
//! a NaN counts as the maximum (the first NaN wins), matching `np.argmax`.

use super::rows_per_chunk;
use crate::ensure;
use crate::kernels::parallel::{self, for_each_chunk_pair};
use crate::kernels::{Real, ShapeError};

fn forward_rows<T: Real>(k: usize, x: &[T], y: &mut [T], arg: &mut [i64]) {
    for ((g, yj), aj) in x.chunks_exact(k).zip(y.iter_mut()).zip(arg.iter_mut()) {
        let (mut best, mut at) = (g[0], 0usize);
        for (p, &v) in g.iter().enumerate().skip(1) {
            if v > best || (v.is_nan() && !best.is_nan()) {
                best = v;
                at = p;
            }
        }
        *yj = best;
        *aj = at as i64;
    }
}

/// `y ← maxout(x)` and `arg ← argmax` for `x (n, m·k)`, `y, arg (n, m)`, `k ≥ 1`.
pub fn maxout_forward<T: Real>(
    x: &[T],
    n: usize,
    m: usize,
    k: usize,
    y: &mut [T],
    arg: &mut [i64],
) -> Result<(), ShapeError> {
    ensure!(k >= 1, "maxout: k must be at least 1");
    ensure!(
        x.len() == n * m * k,
        "maxout: x has {} elements, expected {n}x{}",
        x.len(),
        m * k
    );
    ensure!(
        y.len() == n * m && arg.len() == n * m,
        "maxout: y and argmax have {} and {} elements, expected {n}x{m}",
        y.len(),
        arg.len()
    );
    if n * m == 0 {
        return Ok(());
    }
    let c = rows_per_chunk(m * k) * m;
    for_each_chunk_pair(y, c, arg, c, k, |i, yc, ac| {
        let off = i * c * k;
        forward_rows(k, &x[off..off + yc.len() * k], yc, ac)
    });
    Ok(())
}

/// `dx ← 0` except `dx_{i, j·k + arg_ij} = dy_ij`, for `dy, arg (n, m)`, `dx (n, m·k)`. An
/// `arg` outside `[0, k)` is an error, found before anything is written.
pub fn maxout_backward<T: Real>(
    dy: &[T],
    arg: &[i64],
    n: usize,
    m: usize,
    k: usize,
    dx: &mut [T],
) -> Result<(), ShapeError> {
    ensure!(k >= 1, "maxout backward: k must be at least 1");
    ensure!(
        dy.len() == n * m && arg.len() == n * m,
        "maxout backward: dy and argmax have {} and {} elements, expected {n}x{m}",
        dy.len(),
        arg.len()
    );
    ensure!(
        dx.len() == n * m * k,
        "maxout backward: dx has {} elements, expected {n}x{}",
        dx.len(),
        m * k
    );
    let bad = arg.iter().position(|&a| a < 0 || a >= k as i64);
    ensure!(
        bad.is_none(),
        "maxout backward: argmax has a value outside [0, {k}): {}",
        arg[bad.unwrap_or(0)]
    );
    let c = rows_per_chunk(m * k) * m * k;
    parallel::for_each_chunk(dx, c, 1, |off, dc| {
        dc.fill(T::zero());
        let g0 = off / k;
        // `a < k` was checked above, so the index is in bounds.
        for ((group, &g), &a) in dc.chunks_exact_mut(k).zip(&dy[g0..]).zip(&arg[g0..]) {
            group[a as usize] = g;
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::activation::tests::fill;

    #[test]
    fn matches_naive_serial_and_parallel() {
        for &(n, m, k) in &[
            (0usize, 3usize, 2usize),
            (3, 0, 2),
            (1, 1, 1),
            (4, 7, 3),
            (5, 8, 2),
            (3, 9, 5),
            (2, 17, 4),
            (3000, 20, 3),
        ] {
            // Values on a coarse grid so that ties occur.
            let x: Vec<f64> = fill(n * m * k, 1, -3.0, 3.0).iter().map(|v| v.round()).collect();
            let mut y = vec![f64::NAN; n * m];
            let mut arg = vec![-1i64; n * m];
            maxout_forward(&x, n, m, k, &mut y, &mut arg).unwrap();
            for g in 0..n * m {
                let grp = &x[g * k..(g + 1) * k];
                let mx = grp.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                assert_eq!(y[g], mx);
                assert_eq!(
                    arg[g],
                    grp.iter().position(|&v| v == mx).unwrap() as i64,
                    "first max wins"
                );
            }
            let dy = fill(n * m, 2, -1.0, 1.0);
            let mut dx = vec![f64::NAN; n * m * k];
            maxout_backward(&dy, &arg, n, m, k, &mut dx).unwrap();
            for g in 0..n * m {
                for p in 0..k {
                    assert_eq!(dx[g * k + p], if p as i64 == arg[g] { dy[g] } else { 0.0 });
                }
            }
        }
    }

    #[test]
    fn nan_wins_like_numpy_argmax() {
        let x = [1.0f32, f32::NAN, 5.0, f32::NAN];
        let (mut y, mut arg) = ([0f32; 1], [0i64; 1]);
        maxout_forward(&x, 1, 1, 4, &mut y, &mut arg).unwrap();
        assert!(y[0].is_nan());
        assert_eq!(arg[0], 1);
    }

    #[test]
    fn bad_argmax_and_shapes_are_errors_and_write_nothing() {
        let dy = [1.0f64, 2.0];
        let mut dx = [7.0f64; 4];
        assert!(maxout_backward(&dy, &[0, 2], 1, 2, 2, &mut dx).is_err());
        assert!(maxout_backward(&dy, &[-1, 0], 1, 2, 2, &mut dx).is_err());
        assert_eq!(dx, [7.0; 4]);
        assert!(maxout_backward(&dy, &[0, 1], 1, 2, 2, &mut dx[..3]).is_err());
        let (mut y, mut arg) = ([0f64; 2], [0i64; 2]);
        assert!(maxout_forward(&dx, 1, 2, 3, &mut y, &mut arg).is_err());
        assert!(maxout_forward(&dx, 1, 2, 0, &mut y, &mut arg).is_err());
    }
}
