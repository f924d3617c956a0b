//! Adagrad and RMSprop: per-coordinate step sizes from accumulated squared gradients, as
//! `torch.optim.Adagrad` and `torch.optim.RMSprop`.
//!
//! Adagrad (Duchi, Hazan & Singer 2011), at step t:
//! ```text
//! g ← g + λ·p;   η_t = η / (1 + (t − 1)·lr_decay)
//! G ← G + g²;    p ← p − η_t·g / (√G + ε)
//! ```
//! RMSprop (Tieleman & Hinton 2012; the centered form is Graves 2013):
//! ```text
//! g ← g + λ·p
//! s ← α·s + (1 − α)·g²
//! a ← α·a + (1 − α)·g                        (centered)
//! d = √(s − a²) + ε   (centered)   or   d = √s + ε
//! b ← μ·b + g/d;  p ← p − η·b                (μ > 0)   else   p ← p − η·g/d
//! ```
//! In both, ε sits outside the square root, as in PyTorch (TensorFlow 1 put RMSprop's inside,
//! `√(s + ε)`). RMSprop's momentum form is Graves' `m ← μ·m + η·g/d; p ← p − m` at constant η
//! (`m = η·b`). PyTorch does not clamp `s − a²`, which rounding can make slightly negative
//! (then NaN); neither do we.

use super::{
    check_len, check_min, check_rate, check_state, check_step, chunked, sign, zip3, zip4, zip5, Five, Four, Three,
};
use crate::kernels::{Real, ShapeError};

/// Hyper-parameters of `torch.optim.Adagrad` (PyTorch's defaults).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Adagrad {
    pub lr: f64,
    pub lr_decay: f64,
    pub weight_decay: f64,
    pub eps: f64,
    pub maximize: bool,
}

impl Default for Adagrad {
    fn default() -> Self {
        Self {
            lr: 1e-2,
            lr_decay: 0.0,
            weight_decay: 0.0,
            eps: 1e-10,
            maximize: false,
        }
    }
}

impl Adagrad {
    /// Every value finite and ≥ 0.
    pub fn validate(&self) -> Result<(), ShapeError> {
        check_min("lr", self.lr, 0.0, false)?;
        check_min("lr_decay", self.lr_decay, 0.0, false)?;
        check_min("weight_decay", self.weight_decay, 0.0, false)?;
        check_min("eps", self.eps, 0.0, false)
    }
}

/// One Adagrad step at step `step` (from 1), in place; `state_sum` is the running sum of
/// squared gradients (PyTorch's `initial_accumulator_value` is its starting value).
pub fn adagrad_step<T: Real>(
    param: &mut [T],
    grad: &[T],
    state_sum: &mut [T],
    step: u64,
    h: &Adagrad,
) -> Result<(), ShapeError> {
    check_step(step)?;
    h.validate()?;
    let n = param.len();
    check_len("grad", grad.len(), n)?;
    check_len("state_sum", state_sum.len(), n)?;

    let sgn = sign::<T>(h.maximize);
    let use_wd = h.weight_decay != 0.0;
    let wd = T::of(h.weight_decay);
    let clr = T::of(h.lr / (1.0 + (step - 1) as f64 * h.lr_decay));
    let eps = T::of(h.eps);
    chunked((param, grad, state_sum), &|(p, g, s): Three<'_, T>| {
        zip3(p, g, s, |p, g, s| {
            let g = g * sgn;
            let g = if use_wd { g + wd * *p } else { g };
            *s += g * g;
            let std = s.sqrt() + eps;
            *p -= clr * (g / std);
        })
    });
    Ok(())
}

/// Hyper-parameters of `torch.optim.RMSprop` (PyTorch's defaults).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RMSprop {
    pub lr: f64,
    pub alpha: f64,
    pub eps: f64,
    pub weight_decay: f64,
    pub momentum: f64,
    pub centered: bool,
    pub maximize: bool,
}

impl Default for RMSprop {
    fn default() -> Self {
        Self {
            lr: 1e-2,
            alpha: 0.99,
            eps: 1e-8,
            weight_decay: 0.0,
            momentum: 0.0,
            centered: false,
            maximize: false,
        }
    }
}

impl RMSprop {
    /// `0 ≤ alpha < 1`; `lr`, `eps`, `weight_decay`, `momentum` finite and ≥ 0.
    pub fn validate(&self) -> Result<(), ShapeError> {
        check_min("lr", self.lr, 0.0, false)?;
        check_rate("alpha", self.alpha)?;
        check_min("eps", self.eps, 0.0, false)?;
        check_min("weight_decay", self.weight_decay, 0.0, false)?;
        check_min("momentum", self.momentum, 0.0, false)
    }
}

/// Scalars of one RMSprop step, rounded to `T`.
#[derive(Clone, Copy)]
struct Rms<T> {
    sgn: T,
    use_wd: bool,
    wd: T,
    alpha: T,
    keep: T,
    eps: T,
    lr: T,
    mu: T,
}

impl<T: Real> Rms<T> {
    /// The gradient and the new `s` (and `a`); returns `(g, d)`.
    #[inline(always)]
    fn avg(&self, p: T, g: T, s: &mut T, a: Option<&mut T>) -> (T, T) {
        let g = g * self.sgn;
        let g = if self.use_wd { g + self.wd * p } else { g };
        *s = self.alpha * *s + self.keep * g * g;
        let d = match a {
            Some(a) => {
                *a = self.alpha * *a + self.keep * g;
                (*s - *a * *a).sqrt() + self.eps
            }
            None => s.sqrt() + self.eps,
        };
        (g, d)
    }

    #[inline(always)]
    fn plain(&self, p: &mut T, g: T, d: T) {
        *p -= self.lr * (g / d);
    }

    #[inline(always)]
    fn momentum(&self, p: &mut T, g: T, d: T, b: &mut T) {
        *b = self.mu * *b + g / d;
        *p -= self.lr * *b;
    }
}

/// One RMSprop step, in place. `momentum_buffer` is required exactly when `momentum > 0`,
/// `grad_avg` exactly when `centered`. `step` (from 1) does not enter the rule; it is checked
/// for a uniform interface.
pub fn rmsprop_step<T: Real>(
    param: &mut [T],
    grad: &[T],
    square_avg: &mut [T],
    momentum_buffer: Option<&mut [T]>,
    grad_avg: Option<&mut [T]>,
    step: u64,
    h: &RMSprop,
) -> Result<(), ShapeError> {
    check_step(step)?;
    h.validate()?;
    let n = param.len();
    check_len("grad", grad.len(), n)?;
    check_len("square_avg", square_avg.len(), n)?;
    check_state(
        "momentum_buffer",
        &momentum_buffer,
        (h.momentum > 0.0).then_some("momentum > 0"),
        n,
    )?;
    check_state("grad_avg", &grad_avg, h.centered.then_some("centered=True"), n)?;

    let c = Rms {
        sgn: sign::<T>(h.maximize),
        use_wd: h.weight_decay != 0.0,
        wd: T::of(h.weight_decay),
        alpha: T::of(h.alpha),
        keep: T::of(1.0 - h.alpha),
        eps: T::of(h.eps),
        lr: T::of(h.lr),
        mu: T::of(h.momentum),
    };
    match (momentum_buffer, grad_avg) {
        (None, None) => chunked((param, grad, square_avg), &|(p, g, s): Three<'_, T>| {
            zip3(p, g, s, |p, g, s| {
                let (g, d) = c.avg(*p, g, s, None);
                c.plain(p, g, d)
            })
        }),
        (None, Some(ga)) => chunked((param, grad, square_avg, ga), &|(p, g, s, a): Four<'_, T>| {
            zip4(p, g, s, a, |p, g, s, a| {
                let (g, d) = c.avg(*p, g, s, Some(a));
                c.plain(p, g, d)
            })
        }),
        (Some(buf), None) => chunked((param, grad, square_avg, buf), &|(p, g, s, b): Four<'_, T>| {
            zip4(p, g, s, b, |p, g, s, b| {
                let (g, d) = c.avg(*p, g, s, None);
                c.momentum(p, g, d, b)
            })
        }),
        (Some(buf), Some(ga)) => chunked((param, grad, square_avg, buf, ga), &|(p, g, s, b, a): Five<'_, T>| {
            zip5(p, g, s, b, a, |p, g, s, b, a| {
                let (g, d) = c.avg(*p, g, s, Some(a));
                c.momentum(p, g, d, b)
            })
        }),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testing::{data, positive, same_bits, SIZES};
    use super::*;

    fn naive_adagrad<T: Real>(p: &mut [T], g: &[T], s: &mut [T], step: u64, h: &Adagrad) {
        let clr = h.lr / (1.0 + (step - 1) as f64 * h.lr_decay);
        for i in 0..p.len() {
            let mut gi = if h.maximize { -g[i] } else { g[i] };
            if h.weight_decay != 0.0 {
                gi += T::of(h.weight_decay) * p[i];
            }
            s[i] += gi * gi;
            p[i] -= T::of(clr) * (gi / (s[i].sqrt() + T::of(h.eps)));
        }
    }

    fn naive_rmsprop<T: Real>(p: &mut [T], g: &[T], s: &mut [T], b: &mut [T], a: &mut [T], h: &RMSprop) {
        let (al, keep) = (T::of(h.alpha), T::of(1.0 - h.alpha));
        for i in 0..p.len() {
            let mut gi = if h.maximize { -g[i] } else { g[i] };
            if h.weight_decay != 0.0 {
                gi += T::of(h.weight_decay) * p[i];
            }
            s[i] = al * s[i] + keep * gi * gi;
            let avg = if h.centered {
                a[i] = al * a[i] + keep * gi;
                (s[i] - a[i] * a[i]).sqrt() + T::of(h.eps)
            } else {
                s[i].sqrt() + T::of(h.eps)
            };
            if h.momentum > 0.0 {
                b[i] = T::of(h.momentum) * b[i] + gi / avg;
                p[i] -= T::of(h.lr) * b[i];
            } else {
                p[i] -= T::of(h.lr) * (gi / avg);
            }
        }
    }

    fn check_adagrad<T: Real>() {
        for n in SIZES {
            for (lr_decay, weight_decay, maximize) in [(0.0, 0.0, false), (0.1, 0.01, false), (0.0, 0.02, true)] {
                let h = Adagrad {
                    lr: 0.1,
                    lr_decay,
                    weight_decay,
                    maximize,
                    ..Adagrad::default()
                };
                for step in [1, 3] {
                    let (mut p, g, mut s) = (data::<T>(n, 1, 2.0), data::<T>(n, 2, 1.0), positive::<T>(n, 3, 1.0));
                    let (mut p0, mut s0) = (p.clone(), s.clone());
                    naive_adagrad(&mut p0, &g, &mut s0, step, &h);
                    adagrad_step(&mut p, &g, &mut s, step, &h).unwrap();
                    same_bits(&p, &p0, &format!("param n={n} {h:?}"));
                    same_bits(&s, &s0, "state_sum");
                }
            }
        }
    }

    fn check_rmsprop<T: Real>() {
        for n in SIZES {
            for momentum in [0.0, 0.9] {
                for centered in [false, true] {
                    for (weight_decay, maximize) in [(0.0, false), (0.01, true)] {
                        let h = RMSprop {
                            momentum,
                            centered,
                            weight_decay,
                            maximize,
                            ..RMSprop::default()
                        };
                        let (mut p, g) = (data::<T>(n, 1, 2.0), data::<T>(n, 2, 1.0));
                        // s ≥ a² keeps the centered square root real.
                        let (mut a, mut b) = (data::<T>(n, 4, 0.5), data::<T>(n, 5, 1.0));
                        let mut s: Vec<T> = a
                            .iter()
                            .zip(positive::<T>(n, 3, 1.0))
                            .map(|(&x, y)| x * x + y)
                            .collect();
                        let (mut p0, mut s0, mut b0, mut a0) = (p.clone(), s.clone(), b.clone(), a.clone());
                        naive_rmsprop(&mut p0, &g, &mut s0, &mut b0, &mut a0, &h);
                        let buf = (momentum > 0.0).then_some(&mut b[..]);
                        let ga = centered.then_some(&mut a[..]);
                        rmsprop_step(&mut p, &g, &mut s, buf, ga, 1, &h).unwrap();
                        same_bits(&p, &p0, &format!("param n={n} {h:?}"));
                        same_bits(&s, &s0, "square_avg");
                        same_bits(&b, &b0, "momentum_buffer");
                        same_bits(&a, &a0, "grad_avg");
                    }
                }
            }
        }
    }

    #[test]
    fn adagrad_matches_naive_loop() {
        check_adagrad::<f32>();
        check_adagrad::<f64>();
    }

    #[test]
    fn rmsprop_matches_naive_loop() {
        check_rmsprop::<f32>();
        check_rmsprop::<f64>();
    }

    #[test]
    fn adagrad_first_step_is_sign_times_lr() {
        // G = g² after one step from zero, so the step is η·g/(|g| + ε) ≈ η·sign(g).
        let (mut p, mut s) = ([0.0f64, 0.0], [0.0f64, 0.0]);
        adagrad_step(
            &mut p,
            &[3.0, -0.5],
            &mut s,
            1,
            &Adagrad {
                lr: 0.1,
                eps: 0.0,
                ..Adagrad::default()
            },
        )
        .unwrap();
        assert_eq!(p, [-0.1, 0.1]);
        assert_eq!(s, [9.0, 0.25]);
    }

    #[test]
    fn bad_arguments_write_nothing() {
        let (mut p, g, mut s, mut b) = ([1.0f64; 3], [1.0f64; 3], [1.0f64; 3], [1.0f64; 3]);
        let h = RMSprop::default();
        let e = |r: Result<(), ShapeError>| r.unwrap_err().0;
        assert!(e(rmsprop_step(&mut p, &g, &mut s[..2], None, None, 1, &h)).contains("'square_avg'"));
        assert!(e(rmsprop_step(
            &mut p,
            &g,
            &mut s,
            None,
            None,
            1,
            &RMSprop { alpha: 1.0, ..h }
        ))
        .contains("'alpha'"));
        assert!(e(rmsprop_step(
            &mut p,
            &g,
            &mut s,
            None,
            None,
            1,
            &RMSprop { centered: true, ..h }
        ))
        .contains("'grad_avg' is required"));
        assert!(
            e(rmsprop_step(&mut p, &g, &mut s, Some(&mut b), None, 1, &h)).contains("'momentum_buffer' must be None")
        );
        assert!(e(rmsprop_step(
            &mut p,
            &g,
            &mut s,
            None,
            None,
            1,
            &RMSprop { eps: -1.0, ..h }
        ))
        .contains("'eps'"));
        let a = Adagrad::default();
        assert!(e(adagrad_step(&mut p, &g, &mut s, 1, &Adagrad { lr_decay: -0.1, ..a })).contains("'lr_decay'"));
        assert!(e(adagrad_step(&mut p, &g[..1], &mut s, 1, &a)).contains("'grad'"));
        assert!(e(adagrad_step(&mut p, &g, &mut s, 0, &a)).contains("'step'"));
        assert_eq!((p, s, b), ([1.0; 3], [1.0; 3], [1.0; 3]));
    }
}
