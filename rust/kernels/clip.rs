//! Gradient clipping, in place, over a model's gradient arrays.
//!
//! ```text
//! Norm(c)        per array g:  ‖g‖₂ > c  ⇒  g ← g·(c/‖g‖₂)          (Keras `clipnorm`)
//! GlobalNorm(c)  all arrays:   N = √(Σ_g ‖g‖₂²);  N > c  ⇒  g ← g·(c/N)   (Keras `global_clipnorm`)
//! Value(v)       every entry:  g ← clamp(g, −v, v)                   (Keras `clipvalue`)
//! TorchNorm(c)   all arrays:   k = c/(N + 1e-6);  k < 1  ⇒  g ← g·k   (`torch.nn.utils.clip_grad_norm_`)
//! ```
//! Keras computes `g·c / max(‖g‖, c)` for every array; here the multiplication is skipped when
//! nothing is clipped (the factor would be 1 up to a rounding), so an unclipped gradient keeps
//! its bits. Norms are accumulated in `f64` in a fixed order (8 lanes per array, arrays in
//! order), so the result is the same on every path that calls this kernel, and the factor is
//! rounded once to the element type. A non-finite norm (an overflowed or NaN gradient) scales
//! by `c/∞ = 0` or NaN exactly as the formulas say; nothing here hides it.

use super::Real;
use crate::ensure;

/// The clipping rule of an optimizer (at most one applies, as in Keras).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Clip {
    None,
    Norm(f64),
    GlobalNorm(f64),
    Value(f64),
    TorchNorm(f64),
}

impl Clip {
    /// `"none"`, `"norm"`, `"global_norm"`, `"value"`, `"torch_norm"` with its threshold.
    pub fn parse(mode: &str, threshold: f64) -> Option<Self> {
        Some(match mode {
            "none" => Self::None,
            "norm" => Self::Norm(threshold),
            "global_norm" => Self::GlobalNorm(threshold),
            "value" => Self::Value(threshold),
            "torch_norm" => Self::TorchNorm(threshold),
            _ => return None,
        })
    }

    pub fn validate(&self) -> Result<(), super::ShapeError> {
        if let Self::Norm(c) | Self::GlobalNorm(c) | Self::Value(c) | Self::TorchNorm(c) = *self {
            ensure!(c > 0.0 && !c.is_nan(), "the clipping threshold must be > 0, got {c}");
        }
        Ok(())
    }
}

const LANES: usize = 8;

/// `Σ g²` in `f64`, in 8 fixed lanes folded in order.
pub fn sum_squares<T: Real>(g: &[T]) -> f64 {
    let mut acc = [0.0f64; LANES];
    let mut it = g.chunks_exact(LANES);
    for c in &mut it {
        for k in 0..LANES {
            let v = c[k].f64();
            acc[k] += v * v;
        }
    }
    for (k, &v) in it.remainder().iter().enumerate() {
        acc[k] += v.f64() * v.f64();
    }
    acc.iter().fold(0.0, |a, &b| a + b)
}

fn scale<T: Real>(g: &mut [T], factor: f64) {
    let f = T::of(factor);
    for v in g.iter_mut() {
        *v *= f;
    }
}

/// Clips `grads` in place by `clip`; returns the norm before clipping (the global one, or for
/// `Norm` the largest per-array norm; 0 for `Value` and `None`).
pub fn clip_gradients<T: Real>(grads: &mut [&mut [T]], clip: Clip) -> Result<f64, super::ShapeError> {
    clip.validate()?;
    Ok(match clip {
        Clip::None => 0.0,
        Clip::Value(v) => {
            let (lo, hi) = (T::of(-v), T::of(v));
            for g in grads.iter_mut() {
                for x in g.iter_mut() {
                    // NaN stays NaN (as `np.clip` and `torch.clamp`).
                    *x = if *x < lo {
                        lo
                    } else if *x > hi {
                        hi
                    } else {
                        *x
                    };
                }
            }
            0.0
        }
        Clip::Norm(c) => {
            let mut largest = 0.0f64;
            for g in grads.iter_mut() {
                let norm = sum_squares(g).sqrt();
                largest = largest.max(norm);
                if norm > c {
                    scale(g, c / norm);
                }
            }
            largest
        }
        Clip::GlobalNorm(c) | Clip::TorchNorm(c) => {
            let norm = grads.iter().map(|g| sum_squares(g)).fold(0.0, |a, b| a + b).sqrt();
            let factor = match clip {
                Clip::TorchNorm(_) => c / (norm + 1e-6),
                _ => c / norm,
            };
            if factor < 1.0 || norm.is_nan() {
                for g in grads.iter_mut() {
                    scale(g, factor);
                }
            }
            norm
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_rule_matches_its_formula() {
        let a0 = vec![3.0f64, 4.0]; // norm 5
        let b0 = vec![0.0f64, 0.5]; // norm 0.5
        let run = |clip| {
            let (mut a, mut b) = (a0.clone(), b0.clone());
            let n = clip_gradients(&mut [&mut a[..], &mut b[..]], clip).unwrap();
            (a, b, n)
        };
        let (a, b, n) = run(Clip::Norm(1.0));
        // The factor c/‖g‖ = 0.2, rounded once, then one product per entry.
        assert_eq!((a, b, n), (vec![3.0 * 0.2, 4.0 * 0.2], vec![0.0, 0.5], 5.0));
        let (a, b, n) = run(Clip::GlobalNorm(1.0));
        let total = (25.25f64).sqrt();
        assert_eq!(n, total);
        assert_eq!(a, vec![3.0 * (1.0 / total), 4.0 * (1.0 / total)]);
        assert_eq!(b, vec![0.0, 0.5 * (1.0 / total)]);
        let (a, b, _) = run(Clip::GlobalNorm(10.0));
        assert_eq!((a, b), (a0.clone(), b0.clone()), "nothing clipped, bits kept");
        let (a, b, _) = run(Clip::Value(0.4));
        assert_eq!((a, b), (vec![0.4, 0.4], vec![0.0, 0.4]));
        let (a, _, n) = run(Clip::TorchNorm(1.0));
        assert_eq!(a[0], 3.0 * (1.0 / (total + 1e-6)));
        assert_eq!(n, total);
        assert!(clip_gradients::<f64>(&mut [], Clip::Norm(0.0)).is_err());
        assert!(clip_gradients::<f64>(&mut [], Clip::Value(f64::NAN)).is_err());
    }

    #[test]
    fn sum_squares_is_exact_on_small_integers() {
        let g: Vec<f32> = (0..37).map(|i| i as f32).collect();
        assert_eq!(sum_squares(&g), (0..37).map(|i| (i * i) as f64).sum::<f64>());
    }
}
