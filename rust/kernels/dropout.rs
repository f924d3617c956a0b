//! Dropout and alpha dropout from given uniforms, and their backward.
//!
//! ```text
//! Dropout       keep = [u ≥ rate], mask = keep·(1/(1 − rate)), y = x ⊙ mask       dx = dy ⊙ mask
//! AlphaDropout  mask = keep·a,     y = x ⊙ mask + ((1 − keep)·(a·α′) + b)          dx = dy ⊙ mask
//! ```
//! Inverted dropout (Srivastava et al. 2014, as `torch.nn.Dropout`) and alpha dropout
//! (Klambauer et al. 2017, `torch.nn.AlphaDropout`; `α′ = −λα` of SELU, `a`, `b` the affine
//! correction that keeps mean 0 and variance 1). The uniforms `u ∈ [0, 1)` are the caller's —
//! in initcore the model's NumPy Generator draws them (`rng.random(x.shape, dtype)`), so every
//! path drops the same units. Each value is formed with the operations of the NumPy reference
//! (`initcore.reference.ops.dropout_forward`), in the same order and precision, with no fused
//! multiply-add, so the kernels match it bit for bit. The constants `1/(1 − rate)` and `a·α′`
//! are computed in `f64` and rounded once to the dtype, as NumPy's `dtype.type(...)` does.
//!
//! These are the one implementation: the layer-by-layer path (`layers.Dropout` through
//! `ops`) and the whole-network step (`fused/network.rs`) both call them.

use super::vmath::VMath;
use super::{Real, ShapeError};
use crate::ensure;

fn check_rate(rate: f64) -> Result<(), ShapeError> {
    ensure!(
        rate.is_finite() && (0.0..1.0).contains(&rate),
        "dropout: rate must be in [0, 1), got {rate}"
    );
    Ok(())
}

fn check_lens(what: &str, lens: &[(&str, usize)]) -> Result<(), ShapeError> {
    let n = lens[0].1;
    for &(name, len) in lens {
        ensure!(len == n, "{what}: {name} has {len} elements, {} has {n}", lens[0].0);
    }
    Ok(())
}

simd_fn! {
fn dropout_rows<T: Real>(x: &[T], u: &[T], rate: T, scale: T, mask: &mut [T], y: &mut [T]) {
    for (((m, o), &xi), &ui) in mask.iter_mut().zip(y.iter_mut()).zip(x).zip(u) {
        let keep = if ui >= rate { T::one() } else { T::zero() };
        *m = keep * scale;
        *o = xi * *m;
    }
}
}

simd_fn! {
#[allow(clippy::too_many_arguments)]
fn alpha_dropout_rows<T: Real>(x: &[T], u: &[T], rate: T, a: T, c: T, b: T, mask: &mut [T], y: &mut [T]) {
    for (((m, o), &xi), &ui) in mask.iter_mut().zip(y.iter_mut()).zip(x).zip(u) {
        let keep = if ui >= rate { T::one() } else { T::zero() };
        *m = keep * a;
        *o = xi * *m + ((T::one() - keep) * c + b);
    }
}
}

simd_fn! {
fn mul_into<T: Real>(dy: &[T], mask: &[T], dx: &mut [T]) {
    for ((d, &g), &m) in dx.iter_mut().zip(dy).zip(mask) {
        *d = g * m;
    }
}
}

/// Inverted dropout: `mask ← [u ≥ rate]·(1/(1 − rate))`, `y ← x ⊙ mask` (all the same length).
pub fn dropout_forward<T: VMath>(x: &[T], u: &[T], rate: f64, mask: &mut [T], y: &mut [T]) -> Result<(), ShapeError> {
    check_rate(rate)?;
    check_lens(
        "dropout_forward",
        &[("x", x.len()), ("u", u.len()), ("mask", mask.len()), ("y", y.len())],
    )?;
    dropout_rows(x, u, T::of(rate), T::of(1.0 / (1.0 - rate)), mask, y);
    Ok(())
}

/// Alpha dropout: `mask ← [u ≥ rate]·a`, `y ← x ⊙ mask + ((1 − keep)·(a·alpha_p) + b)`.
#[allow(clippy::too_many_arguments)]
pub fn alpha_dropout_forward<T: VMath>(
    x: &[T],
    u: &[T],
    rate: f64,
    a: f64,
    b: f64,
    alpha_p: f64,
    mask: &mut [T],
    y: &mut [T],
) -> Result<(), ShapeError> {
    check_rate(rate)?;
    ensure!(
        a.is_finite() && b.is_finite() && alpha_p.is_finite(),
        "alpha_dropout: a, b and alpha_p must be finite, got {a}, {b}, {alpha_p}"
    );
    check_lens(
        "alpha_dropout_forward",
        &[("x", x.len()), ("u", u.len()), ("mask", mask.len()), ("y", y.len())],
    )?;
    alpha_dropout_rows(x, u, T::of(rate), T::of(a), T::of(a * alpha_p), T::of(b), mask, y);
    Ok(())
}

/// Backward of both: `dx ← dy ⊙ mask`.
pub fn dropout_backward<T: VMath>(dy: &[T], mask: &[T], dx: &mut [T]) -> Result<(), ShapeError> {
    check_lens(
        "dropout_backward",
        &[("dy", dy.len()), ("mask", mask.len()), ("dx", dx.len())],
    )?;
    mul_into(dy, mask, dx);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::activation::tests::fill;

    #[test]
    fn masks_keep_exactly_the_units_at_or_above_the_rate() {
        let x = fill(1000, 1, -2.0, 2.0);
        let mut u = fill(1000, 2, 0.0, 1.0);
        u[0] = 0.25; // exactly the rate: kept, as NumPy's `>=`
        let (mut mask, mut y) = (vec![0.0; 1000], vec![0.0; 1000]);
        dropout_forward(&x, &u, 0.25, &mut mask, &mut y).unwrap();
        for i in 0..1000 {
            let want = if u[i] >= 0.25 { 1.0 / 0.75 } else { 0.0 };
            assert_eq!(mask[i], want);
            assert_eq!(y[i], x[i] * want);
        }
        let (a, b, ap) = (1.2, -0.3, -1.7580993408473766);
        alpha_dropout_forward(&x, &u, 0.25, a, b, ap, &mut mask, &mut y).unwrap();
        for i in 0..1000 {
            let keep: f64 = if u[i] >= 0.25 { 1.0 } else { 0.0 };
            assert_eq!(mask[i], keep * a);
            assert_eq!(y[i], x[i] * (keep * a) + ((1.0 - keep) * (a * ap) + b));
        }
        let dy = fill(1000, 3, -1.0, 1.0);
        let mut dx = vec![0.0; 1000];
        dropout_backward(&dy, &mask, &mut dx).unwrap();
        assert!(dx.iter().zip(&dy).zip(&mask).all(|((d, g), m)| *d == g * m));
    }

    #[test]
    fn bad_arguments_are_errors() {
        let (x, u) = (vec![1.0f32; 4], vec![0.5f32; 3]);
        let (mut m, mut y) = (vec![0.0f32; 4], vec![0.0f32; 4]);
        assert!(dropout_forward(&x, &u, 0.5, &mut m, &mut y)
            .unwrap_err()
            .0
            .contains("u has 3"));
        assert!(dropout_forward(&x, &x, 1.0, &mut m, &mut y)
            .unwrap_err()
            .0
            .contains("rate"));
        assert!(alpha_dropout_forward(&x, &x, 0.1, f64::NAN, 0.0, 0.0, &mut m, &mut y).is_err());
        assert!(dropout_backward(&x, &u, &mut m).is_err());
        assert_eq!(m, vec![0.0; 4]);
    }
}
