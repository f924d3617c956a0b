//! SGD with momentum, dampening, Nesterov momentum and weight decay, as `torch.optim.SGD`.
//!
//! With learning rate η, momentum μ, dampening τ, weight decay λ, at step t:
//! ```text
//! g ← g + λ·p
//! b ← g                   if t = 1          (μ > 0 only)
//! b ← μ·b + (1 − τ)·g     if t > 1
//! g ← g + μ·b  (Nesterov)   or   g ← b
//! p ← p − η·g
//! ```
//! Classical momentum (Polyak 1964; Sutskever et al. 2013), `v ← ρ·v − η·g; w ← w + v`, is the
//! same rule at τ = 0 and constant η, with `v = −η·b`: the buffer holds gradients, not steps,
//! which is why the two differ once η changes. Nesterov's `v ← ρ·v − η·∇f(w + ρ·v); w ← w + v`
//! becomes, in the look-ahead variable `w̃ = w + ρ·v`, `w̃ ← w̃ + ρ·v_new − η·∇f(w̃)`, that is
//! PyTorch's `p ← p − η·(g + μ·b_new)`: `param` is the look-ahead point (Sutskever et al. 2013;
//! Bengio et al. 2013). PyTorch starts the buffer as a copy of the first gradient (no
//! dampening), which is `b ← μ·0 + g`, the textbook start `v₀ = 0`.

use super::{check_finite, check_len, check_min, check_state, check_step, chunked, sign, zip2, zip3, Three};
use crate::kernels::{Real, ShapeError};

/// Hyper-parameters of `torch.optim.SGD` (default `lr` as in PyTorch ≥ 2.1).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sgd {
    pub lr: f64,
    pub momentum: f64,
    pub dampening: f64,
    pub weight_decay: f64,
    pub nesterov: bool,
    pub maximize: bool,
}

impl Default for Sgd {
    fn default() -> Self {
        Self {
            lr: 1e-3,
            momentum: 0.0,
            dampening: 0.0,
            weight_decay: 0.0,
            nesterov: false,
            maximize: false,
        }
    }
}

impl Sgd {
    /// `lr ≥ 0`, `momentum ≥ 0`, `weight_decay ≥ 0`, all finite; Nesterov needs momentum > 0
    /// and zero dampening (PyTorch's `ValueError`).
    pub fn validate(&self) -> Result<(), ShapeError> {
        check_min("lr", self.lr, 0.0, false)?;
        check_min("momentum", self.momentum, 0.0, false)?;
        check_finite("dampening", self.dampening)?;
        check_min("weight_decay", self.weight_decay, 0.0, false)?;
        if self.nesterov && (self.momentum <= 0.0 || self.dampening != 0.0) {
            return Err(ShapeError(format!(
                "Nesterov momentum requires a momentum and zero dampening (argument 'nesterov' with momentum={}, dampening={})",
                self.momentum, self.dampening
            )));
        }
        Ok(())
    }
}

/// One SGD step at step `step` (from 1), in place. `momentum_buffer` (the length of `param`)
/// is required exactly when `momentum > 0`; on step 1 its old contents are ignored.
pub fn sgd_step<T: Real>(
    param: &mut [T],
    grad: &[T],
    momentum_buffer: Option<&mut [T]>,
    step: u64,
    h: &Sgd,
) -> Result<(), ShapeError> {
    check_step(step)?;
    h.validate()?;
    let n = param.len();
    check_len("grad", grad.len(), n)?;
    check_state(
        "momentum_buffer",
        &momentum_buffer,
        (h.momentum > 0.0).then_some("momentum > 0"),
        n,
    )?;

    let sgn = sign::<T>(h.maximize);
    let use_wd = h.weight_decay != 0.0;
    let wd = T::of(h.weight_decay);
    let lr = T::of(h.lr);
    let dir = move |p: T, g: T| {
        let g = g * sgn;
        if use_wd {
            g + wd * p
        } else {
            g
        }
    };
    match momentum_buffer {
        None => chunked((param, grad), &|(p, g): (&mut [T], &[T])| {
            zip2(p, g, |p, g| *p -= lr * dir(*p, g))
        }),
        Some(buf) => {
            let first = step == 1;
            let nesterov = h.nesterov;
            let mu = T::of(h.momentum);
            let keep = T::of(1.0 - h.dampening);
            chunked((param, grad, buf), &|(p, g, b): Three<'_, T>| {
                zip3(p, g, b, |p, g, b| {
                    let g = dir(*p, g);
                    let nb = if first { g } else { mu * *b + keep * g };
                    *b = nb;
                    let d = if nesterov { g + mu * nb } else { nb };
                    *p -= lr * d;
                })
            })
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testing::{data, same_bits, SIZES};
    use super::*;

    /// PyTorch's loop, written out per element.
    fn naive<T: Real>(p: &mut [T], g: &[T], b: &mut [T], step: u64, h: &Sgd) {
        for i in 0..p.len() {
            let mut gi = if h.maximize { -g[i] } else { g[i] };
            if h.weight_decay != 0.0 {
                gi += T::of(h.weight_decay) * p[i];
            }
            if h.momentum > 0.0 {
                if step == 1 {
                    b[i] = gi;
                } else {
                    b[i] = T::of(h.momentum) * b[i] + T::of(1.0 - h.dampening) * gi;
                }
                gi = if h.nesterov {
                    gi + T::of(h.momentum) * b[i]
                } else {
                    b[i]
                };
            }
            p[i] -= T::of(h.lr) * gi;
        }
    }

    fn configs() -> Vec<Sgd> {
        let mut v = Vec::new();
        for momentum in [0.0, 0.9] {
            for dampening in [0.0, 0.25] {
                for nesterov in [false, true] {
                    for weight_decay in [0.0, 0.01] {
                        for maximize in [false, true] {
                            let h = Sgd {
                                lr: 0.05,
                                momentum,
                                dampening,
                                weight_decay,
                                nesterov,
                                maximize,
                            };
                            if h.validate().is_ok() {
                                v.push(h);
                            }
                        }
                    }
                }
            }
        }
        v
    }

    fn check<T: Real>() {
        for n in SIZES {
            for h in configs() {
                for step in [1, 2, 7] {
                    let (mut p, g, mut b) = (data::<T>(n, 1, 2.0), data::<T>(n, 2, 1.0), data::<T>(n, 3, 1.0));
                    let (mut p0, mut b0) = (p.clone(), b.clone());
                    naive(&mut p0, &g, &mut b0, step, &h);
                    let buf = (h.momentum > 0.0).then_some(&mut b[..]);
                    sgd_step(&mut p, &g, buf, step, &h).unwrap();
                    same_bits(&p, &p0, &format!("param n={n} step={step} {h:?}"));
                    same_bits(&b, &b0, "momentum_buffer");
                }
            }
        }
    }

    #[test]
    fn matches_naive_loop_f32() {
        check::<f32>();
    }

    #[test]
    fn matches_naive_loop_f64() {
        check::<f64>();
    }

    #[test]
    fn classical_momentum_is_the_same_rule_at_constant_lr() {
        // v ← ρv − ηg; w ← w + v on f(w) = ½·a·w², against sgd_step (τ = 0).
        let (a, eta, rho) = (0.7f64, 0.1, 0.9);
        let h = Sgd {
            lr: eta,
            momentum: rho,
            ..Sgd::default()
        };
        let (mut w, mut v) = (1.5f64, 0.0f64);
        let (mut p, mut b) = ([1.5f64], [0.0f64]);
        for t in 1..=20 {
            let g = a * w;
            v = rho * v - eta * g;
            w += v;
            let gp = [a * p[0]];
            sgd_step(&mut p, &gp, Some(&mut b), t, &h).unwrap();
            assert!(
                (p[0] - w).abs() <= 1e-14 * w.abs().max(1.0),
                "step {t}: {} vs {w}",
                p[0]
            );
        }
    }

    #[test]
    fn bad_arguments_write_nothing() {
        let (mut p, g, mut b) = ([1.0f32; 4], [1.0f32; 4], [2.0f32; 4]);
        let h = Sgd {
            lr: 0.1,
            momentum: 0.9,
            ..Sgd::default()
        };
        let cases: Vec<(Result<(), ShapeError>, &str)> = vec![
            (sgd_step(&mut p, &g[..3], Some(&mut b), 1, &h), "'grad'"),
            (sgd_step(&mut p, &g, Some(&mut b[..2]), 1, &h), "'momentum_buffer'"),
            (sgd_step(&mut p, &g, None, 1, &h), "'momentum_buffer' is required"),
            (sgd_step(&mut p, &g, Some(&mut b), 0, &h), "'step'"),
            (sgd_step(&mut p, &g, Some(&mut b), 1, &Sgd { lr: -1.0, ..h }), "'lr'"),
            (
                sgd_step(
                    &mut p,
                    &g,
                    Some(&mut b),
                    1,
                    &Sgd {
                        weight_decay: f64::NAN,
                        ..h
                    },
                ),
                "'weight_decay'",
            ),
            (
                sgd_step(
                    &mut p,
                    &g,
                    Some(&mut b),
                    1,
                    &Sgd {
                        nesterov: true,
                        dampening: 0.1,
                        ..h
                    },
                ),
                "Nesterov",
            ),
            (
                sgd_step(&mut p, &g, Some(&mut b), 1, &Sgd { momentum: 0.0, ..h }),
                "must be None",
            ),
        ];
        for (r, want) in cases {
            assert!(r.unwrap_err().0.contains(want), "{want}");
        }
        assert_eq!((p, b), ([1.0; 4], [2.0; 4]));
    }
}
