//! Softmax and log-softmax along the last axis of `x (n, m)`, and their backwards.
//!
//! `softmax(x)_j = e^(x_j − c) / Σ_k e^(x_k − c)` and
//! `log_softmax(x)_j = x_j − c − log Σ_k e^(x_k − c)` with `c = max_k x_k`: subtracting the row
//! maximum makes every exponent ≤ 0, so nothing overflows (the usual "safe softmax", as in
//! PyTorch's `softmax`/`log_softmax` CPU kernels).
//!
//! Backwards, from the forward's output `y`:
//! `softmax: dx = y ⊙ (dy − Σ_j dy_j y_j)`, `log_softmax: dx = dy − e^y Σ_j dy_j`.
//!
//! Each row is handled by one thread; within a row, sums use eight interleaved accumulators in a
//! fixed order (vectorizable, and independent of the thread count). A NaN anywhere in a row
//! makes the whole row NaN, as in NumPy.

use super::{parallel, rows_per_chunk};
use crate::ensure;
use crate::kernels::rows::{row_dot, row_max, row_sum};
use crate::kernels::vmath::VMath;
use crate::kernels::{Real, ShapeError};

simd_fn! {
fn softmax_rows<T: VMath>(m: usize, x: &[T], y: &mut [T]) {
    for (xr, yr) in x.chunks_exact(m).zip(y.chunks_exact_mut(m)) {
        let c = row_max(xr);
        // x − c ≤ 0 (or NaN), the cheaper exponential's domain.
        for (yj, &xj) in yr.iter_mut().zip(xr) {
            *yj = (xj - c).vexp_nonpos();
        }
        let s = row_sum(yr);
        for yj in yr.iter_mut() {
            *yj /= s;
        }
    }
}
}

simd_fn! {
fn log_softmax_rows<T: VMath>(m: usize, x: &[T], y: &mut [T]) {
    for (xr, yr) in x.chunks_exact(m).zip(y.chunks_exact_mut(m)) {
        let c = row_max(xr);
        // y holds e^(x − c) first, only to be summed.
        for (yj, &xj) in yr.iter_mut().zip(xr) {
            *yj = (xj - c).vexp_nonpos();
        }
        let lse = row_sum(yr).ln();
        for (yj, &xj) in yr.iter_mut().zip(xr) {
            *yj = (xj - c) - lse;
        }
    }
}
}

simd_fn! {
fn softmax_backward_rows<T: VMath>(m: usize, dy: &[T], y: &[T], dx: &mut [T]) {
    for ((gr, yr), dr) in dy.chunks_exact(m).zip(y.chunks_exact(m)).zip(dx.chunks_exact_mut(m)) {
        let dot = row_dot(gr, yr);
        for ((d, &g), &v) in dr.iter_mut().zip(gr).zip(yr) {
            *d = v * (g - dot);
        }
    }
}
}

simd_fn! {
fn log_softmax_backward_rows<T: VMath>(m: usize, dy: &[T], y: &[T], dx: &mut [T]) {
    for ((gr, yr), dr) in dy.chunks_exact(m).zip(y.chunks_exact(m)).zip(dx.chunks_exact_mut(m)) {
        let s = row_sum(gr);
        for ((d, &g), &v) in dr.iter_mut().zip(gr).zip(yr) {
            *d = g - v.vexp() * s;
        }
    }
}
}

/// Runs `f(element_range, output_chunk)` over chunks of whole rows, in parallel when worth it.
fn by_rows<T: Real>(n: usize, m: usize, out: &mut [T], f: impl Fn(std::ops::Range<usize>, &mut [T]) + Sync + Send) {
    if n == 0 || m == 0 {
        return;
    }
    parallel::for_each_chunk(out, rows_per_chunk(m) * m, super::PASS_COST, |off, c| {
        f(off..off + c.len(), c)
    });
}

fn check(what: &str, n: usize, m: usize, args: &[(&str, usize)]) -> Result<(), ShapeError> {
    for &(name, len) in args {
        ensure!(len == n * m, "{what}: {name} has {len} elements, expected {n}x{m}");
    }
    Ok(())
}

/// `y ← softmax(x)` row by row, `x` and `y` of `n·m` elements.
pub fn softmax<T: VMath>(x: &[T], n: usize, m: usize, y: &mut [T]) -> Result<(), ShapeError> {
    check("softmax", n, m, &[("x", x.len()), ("y", y.len())])?;
    by_rows(n, m, y, |r, c| softmax_rows(m, &x[r], c));
    Ok(())
}

/// `dx ← y ⊙ (dy − Σ_j dy_j y_j)` row by row, with `y = softmax(x)`.
pub fn softmax_backward<T: VMath>(dy: &[T], y: &[T], n: usize, m: usize, dx: &mut [T]) -> Result<(), ShapeError> {
    check(
        "softmax backward",
        n,
        m,
        &[("dy", dy.len()), ("y", y.len()), ("dx", dx.len())],
    )?;
    by_rows(n, m, dx, |r, c| softmax_backward_rows(m, &dy[r.clone()], &y[r], c));
    Ok(())
}

/// `y ← log_softmax(x)` row by row.
pub fn log_softmax<T: VMath>(x: &[T], n: usize, m: usize, y: &mut [T]) -> Result<(), ShapeError> {
    check("log_softmax", n, m, &[("x", x.len()), ("y", y.len())])?;
    by_rows(n, m, y, |r, c| log_softmax_rows(m, &x[r], c));
    Ok(())
}

/// `dx ← dy − e^y Σ_j dy_j` row by row, with `y = log_softmax(x)`.
pub fn log_softmax_backward<T: VMath>(dy: &[T], y: &[T], n: usize, m: usize, dx: &mut [T]) -> Result<(), ShapeError> {
    check(
        "log_softmax backward",
        n,
        m,
        &[("dy", dy.len()), ("y", y.len()), ("dx", dx.len())],
    )?;
    by_rows(n, m, dx, |r, c| log_softmax_backward_rows(m, &dy[r.clone()], &y[r], c));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::activation::tests::{close, fill};

    fn naive_softmax(x: &[f64], n: usize, m: usize) -> Vec<f64> {
        let mut y = vec![0.0; n * m];
        for i in 0..n {
            let r = &x[i * m..(i + 1) * m];
            let c = r.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let s: f64 = r.iter().map(|v| (v - c).exp()).sum();
            for j in 0..m {
                y[i * m + j] = (r[j] - c).exp() / s;
            }
        }
        y
    }

    const SHAPES: &[(usize, usize)] = &[
        (0, 4),
        (4, 0),
        (1, 1),
        (3, 7),
        (2, 8),
        (5, 9),
        (4, 15),
        (3, 16),
        (2, 17),
        (40, 1000),
    ];

    #[test]
    fn forward_and_backward_match_naive() {
        for &(n, m) in SHAPES {
            let x = fill(n * m, 1, -30.0, 30.0);
            let dy = fill(n * m, 2, -1.0, 1.0);
            let want = naive_softmax(&x, n, m);
            let mut y = vec![f64::NAN; n * m];
            softmax(&x, n, m, &mut y).unwrap();
            close(&y, &want, 1e-13, "softmax");
            let mut dx = vec![f64::NAN; n * m];
            softmax_backward(&dy, &y, n, m, &mut dx).unwrap();
            for i in 0..n {
                let r = i * m..(i + 1) * m;
                let dot: f64 = dy[r.clone()].iter().zip(&want[r.clone()]).map(|(a, b)| a * b).sum();
                for j in r {
                    let w = want[j] * (dy[j] - dot);
                    assert!(
                        (dx[j] - w).abs() <= 1e-13 * (1.0 + w.abs()),
                        "softmax backward {} vs {w}",
                        dx[j]
                    );
                }
            }
            let mut ly = vec![f64::NAN; n * m];
            log_softmax(&x, n, m, &mut ly).unwrap();
            let lwant: Vec<f64> = want.iter().map(|v| v.ln()).collect();
            for (a, b) in ly.iter().zip(&lwant) {
                assert!((a - b).abs() <= 1e-12 * (1.0 + b.abs()), "log_softmax {a} vs {b}");
            }
            log_softmax_backward(&dy, &ly, n, m, &mut dx).unwrap();
            for i in 0..n {
                let r = i * m..(i + 1) * m;
                let s: f64 = dy[r.clone()].iter().sum();
                for j in r {
                    let w = dy[j] - want[j] * s;
                    assert!(
                        (dx[j] - w).abs() <= 1e-12 * (1.0 + w.abs()),
                        "log_softmax backward {} vs {w}",
                        dx[j]
                    );
                }
            }
        }
    }

    #[test]
    fn large_inputs_do_not_overflow_and_nan_propagates_per_row() {
        let x = [1e4f32, 0.0, -1e4, 3.0, f32::NAN, 1.0];
        let mut y = [0f32; 6];
        softmax(&x, 2, 3, &mut y).unwrap();
        assert_eq!(&y[..3], &[1.0, 0.0, 0.0]);
        assert!(y[3..].iter().all(|v| v.is_nan()));
        log_softmax(&x, 2, 3, &mut y).unwrap();
        assert_eq!(&y[..3], &[0.0, -1e4, -2e4]);
        assert!(y[3..].iter().all(|v| v.is_nan()));
    }

    #[test]
    fn parallel_rows_equal_serial_rows() {
        let (n, m) = (300, 301);
        let x = fill(n * m, 5, -5.0, 5.0);
        let mut y = vec![0.0; n * m];
        softmax(&x, n, m, &mut y).unwrap();
        for i in [0, 150, 299] {
            let mut yi = vec![0.0; m];
            softmax(&x[i * m..(i + 1) * m], 1, m, &mut yi).unwrap();
            assert!(yi.iter().zip(&y[i * m..]).all(|(a, b)| a.to_bits() == b.to_bits()));
        }
    }

    #[test]
    fn shape_errors() {
        let x = vec![0.0f64; 6];
        let mut y = vec![0.0f64; 5];
        assert!(softmax(&x, 2, 3, &mut y).is_err());
        assert!(log_softmax_backward(&x, &x, 3, 3, &mut y).is_err());
    }
}
