//! Adam, AdamW, AMSGrad and NAdam, as `torch.optim.Adam`, `AdamW` and `NAdam`.
//!
//! Adam (Kingma & Ba 2015, Algorithm 1), at step t, with bias corrections `bc₁ = 1 − β₁ᵗ`,
//! `bc₂ = 1 − β₂ᵗ`:
//! ```text
//! g ← g + λ·p              (coupled decay)   or   p ← p·(1 − η·λ)   (decoupled: AdamW)
//! m ← β₁·m + (1 − β₁)·g
//! v ← β₂·v + (1 − β₂)·g²
//! v_max ← max(v_max, v)    (AMSGrad; v_max replaces v in the denominator)
//! p ← p − (η/bc₁) · m / (√v/√bc₂ + ε)
//! ```
//! That is Algorithm 1's `θ ← θ − α·m̂/(√v̂ + ε)`: ε is added after the bias correction, outside
//! the square root, exactly as PyTorch's `denom = (exp_avg_sq.sqrt() / sqrt(bc2)).add_(eps)`.
//! The paper's "more efficient" ordering `θ ← θ − α·(√bc₂/bc₁)·m/(√v + ε̂)` (TensorFlow, Keras)
//! adds ε̂ before the correction, and equals this only for `ε̂ = ε·√bc₂`. AMSGrad (Reddi et al.
//! 2018) keeps the maximum of the uncorrected `v`, corrected by `√bc₂` like `v`. AdamW
//! (Loshchilov & Hutter 2019) multiplies λ by η, as PyTorch does.
//!
//! NAdam (Dozat 2016) with momentum decay ψ: `μ_t = β₁·(1 − ½·0.96^{tψ})`, `Π_t = Π_{t−1}·μ_t`,
//! m and v as Adam, then
//! ```text
//! d = √(v/bc₂) + ε
//! p ← p − η·(1 − μ_t)/(1 − Π_t) · g/d − η·μ_{t+1}/(1 − Π_t·μ_{t+1}) · m/d
//! ```
//! applied as two successive additions, as PyTorch does (here v is divided by bc₂ *before* the
//! square root). Decoupled weight decay (NAdamW) is PyTorch ≥ 2.2's. `Π` is kept in `f64` by
//! the caller (PyTorch keeps a float32 tensor by default).

use super::{check_len, check_min, check_rate, check_state, check_step, chunked, sign, zip4, zip5, Five, Four};
use crate::kernels::{Real, ShapeError};

/// Hyper-parameters of `torch.optim.Adam`; `decoupled_weight_decay` makes it AdamW.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Adam {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    pub amsgrad: bool,
    pub decoupled_weight_decay: bool,
    pub maximize: bool,
}

impl Default for Adam {
    /// `torch.optim.Adam`'s defaults.
    fn default() -> Self {
        Self {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            amsgrad: false,
            decoupled_weight_decay: false,
            maximize: false,
        }
    }
}

impl Adam {
    /// `torch.optim.AdamW`'s defaults (decoupled, `weight_decay = 1e-2`).
    pub fn adamw() -> Self {
        Self {
            weight_decay: 1e-2,
            decoupled_weight_decay: true,
            ..Self::default()
        }
    }

    /// `lr ≥ 0`, `0 ≤ β < 1`, `eps > 0`, `weight_decay ≥ 0`, all finite.
    pub fn validate(&self) -> Result<(), ShapeError> {
        validate_common(self.lr, self.beta1, self.beta2, self.eps, self.weight_decay)
    }
}

fn validate_common(lr: f64, beta1: f64, beta2: f64, eps: f64, weight_decay: f64) -> Result<(), ShapeError> {
    check_min("lr", lr, 0.0, false)?;
    check_rate("beta1", beta1)?;
    check_rate("beta2", beta2)?;
    check_min("eps", eps, 0.0, true)?;
    check_min("weight_decay", weight_decay, 0.0, false)
}

/// The moment updates shared by Adam and NAdam, with the step's scalars rounded to `T`.
#[derive(Clone, Copy)]
struct Moments<T> {
    sgn: T,
    coupled: bool,
    wd: T,
    /// `1 − η·λ` with decoupled decay, else exactly 1 (so the multiply changes nothing).
    decay: T,
    b1: T,
    keep1: T,
    b2: T,
    keep2: T,
}

impl<T: Real> Moments<T> {
    fn new(sgn: bool, lr: f64, wd: f64, decoupled: bool, beta1: f64, beta2: f64) -> Self {
        Self {
            sgn: sign::<T>(sgn),
            coupled: wd != 0.0 && !decoupled,
            wd: T::of(wd),
            decay: if decoupled && wd != 0.0 {
                T::of(1.0 - lr * wd)
            } else {
                T::one()
            },
            b1: T::of(beta1),
            keep1: T::of(1.0 - beta1),
            b2: T::of(beta2),
            keep2: T::of(1.0 - beta2),
        }
    }

    /// Decays `p`, updates `m` and `v`; returns the (decayed-direction) gradient.
    #[inline(always)]
    fn update(&self, p: &mut T, g: T, m: &mut T, v: &mut T) -> T {
        *p *= self.decay;
        let g = g * self.sgn;
        let g = if self.coupled { g + self.wd * *p } else { g };
        *m = self.b1 * *m + self.keep1 * g;
        *v = self.b2 * *v + self.keep2 * g * g;
        g
    }
}

/// One Adam / AdamW / AMSGrad step at step `step` (from 1), in place. `max_exp_avg_sq` is
/// required exactly when `amsgrad`.
pub fn adam_step<T: Real>(
    param: &mut [T],
    grad: &[T],
    exp_avg: &mut [T],
    exp_avg_sq: &mut [T],
    max_exp_avg_sq: Option<&mut [T]>,
    step: u64,
    h: &Adam,
) -> Result<(), ShapeError> {
    check_step(step)?;
    h.validate()?;
    let n = param.len();
    check_len("grad", grad.len(), n)?;
    check_len("exp_avg", exp_avg.len(), n)?;
    check_len("exp_avg_sq", exp_avg_sq.len(), n)?;
    check_state(
        "max_exp_avg_sq",
        &max_exp_avg_sq,
        h.amsgrad.then_some("amsgrad=True"),
        n,
    )?;

    let mo = Moments::<T>::new(
        h.maximize,
        h.lr,
        h.weight_decay,
        h.decoupled_weight_decay,
        h.beta1,
        h.beta2,
    );
    let t = step as f64;
    let bc1 = 1.0 - h.beta1.powf(t);
    let bc2_sqrt = T::of((1.0 - h.beta2.powf(t)).sqrt());
    let step_size = T::of(h.lr / bc1);
    let eps = T::of(h.eps);
    let apply = move |p: &mut T, m: T, v: T| {
        let denom = v.sqrt() / bc2_sqrt + eps;
        *p -= step_size * (m / denom);
    };
    match max_exp_avg_sq {
        None => chunked((param, grad, exp_avg, exp_avg_sq), &|(p, g, m, v): Four<'_, T>| {
            zip4(p, g, m, v, |p, g, m, v| {
                mo.update(p, g, m, v);
                apply(p, *m, *v)
            })
        }),
        Some(vmax) => chunked((param, grad, exp_avg, exp_avg_sq, vmax), &|(p, g, m, v, vm): Five<
            '_,
            T,
        >| {
            zip5(p, g, m, v, vm, |p, g, m, v, vm| {
                mo.update(p, g, m, v);
                // NaN-propagating like torch.maximum / np.maximum.
                *vm = if *v > *vm || v.is_nan() { *v } else { *vm };
                apply(p, *m, *vm)
            })
        }),
    }
    Ok(())
}

/// Hyper-parameters of `torch.optim.NAdam` (PyTorch's defaults).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NAdam {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    pub momentum_decay: f64,
    pub decoupled_weight_decay: bool,
    pub maximize: bool,
}

impl Default for NAdam {
    fn default() -> Self {
        Self {
            lr: 2e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            momentum_decay: 4e-3,
            decoupled_weight_decay: false,
            maximize: false,
        }
    }
}

impl NAdam {
    /// Adam's checks, and `momentum_decay ≥ 0`.
    pub fn validate(&self) -> Result<(), ShapeError> {
        validate_common(self.lr, self.beta1, self.beta2, self.eps, self.weight_decay)?;
        check_min("momentum_decay", self.momentum_decay, 0.0, false)
    }

    /// `μ_t = β₁·(1 − ½·0.96^{tψ})`.
    pub fn mu(&self, step: u64) -> f64 {
        self.beta1 * (1.0 - 0.5 * 0.96f64.powf(step as f64 * self.momentum_decay))
    }
}

/// One NAdam step at step `step` (from 1), in place; `mu_product` is `Π_{t−1}` (1.0 before
/// the first step, in `[0, 1]`). Returns `Π_t`, to pass to the next step.
pub fn nadam_step<T: Real>(
    param: &mut [T],
    grad: &[T],
    exp_avg: &mut [T],
    exp_avg_sq: &mut [T],
    step: u64,
    mu_product: f64,
    h: &NAdam,
) -> Result<f64, ShapeError> {
    check_step(step)?;
    h.validate()?;
    check_min("mu_product", mu_product, 0.0, false)?;
    if mu_product > 1.0 {
        return Err(ShapeError(format!(
            "argument 'mu_product' must be <= 1 (a product of momenta in [0, 1)), got {mu_product}"
        )));
    }
    let n = param.len();
    check_len("grad", grad.len(), n)?;
    check_len("exp_avg", exp_avg.len(), n)?;
    check_len("exp_avg_sq", exp_avg_sq.len(), n)?;

    let mo = Moments::<T>::new(
        h.maximize,
        h.lr,
        h.weight_decay,
        h.decoupled_weight_decay,
        h.beta1,
        h.beta2,
    );
    let bc2 = T::of(1.0 - h.beta2.powf(step as f64));
    let (mu, mu_next) = (h.mu(step), h.mu(step + 1));
    let mu_product = mu_product * mu;
    let mu_product_next = mu_product * mu_next;
    let c_grad = T::of(-h.lr * (1.0 - mu) / (1.0 - mu_product));
    let c_mom = T::of(-h.lr * mu_next / (1.0 - mu_product_next));
    let eps = T::of(h.eps);
    chunked((param, grad, exp_avg, exp_avg_sq), &|(p, g, m, v): Four<'_, T>| {
        zip4(p, g, m, v, |p, g, m, v| {
            let g = mo.update(p, g, m, v);
            let denom = (*v / bc2).sqrt() + eps;
            *p += c_grad * (g / denom);
            *p += c_mom * (*m / denom);
        })
    });
    Ok(mu_product)
}

#[cfg(test)]
mod tests {
    use super::super::testing::{data, positive, same_bits, SIZES};
    use super::*;

    fn naive_adam<T: Real>(p: &mut [T], g: &[T], m: &mut [T], v: &mut [T], vm: &mut [T], t: u64, h: &Adam) {
        let bc1 = 1.0 - h.beta1.powf(t as f64);
        let bc2s = (1.0 - h.beta2.powf(t as f64)).sqrt();
        for i in 0..p.len() {
            let mut gi = if h.maximize { -g[i] } else { g[i] };
            if h.weight_decay != 0.0 {
                if h.decoupled_weight_decay {
                    p[i] *= T::of(1.0 - h.lr * h.weight_decay);
                } else {
                    gi += T::of(h.weight_decay) * p[i];
                }
            }
            m[i] = T::of(h.beta1) * m[i] + T::of(1.0 - h.beta1) * gi;
            v[i] = T::of(h.beta2) * v[i] + T::of(1.0 - h.beta2) * gi * gi;
            let vh = if h.amsgrad {
                vm[i] = if v[i].is_nan() || vm[i].is_nan() {
                    T::nan()
                } else {
                    vm[i].max(v[i])
                };
                vm[i]
            } else {
                v[i]
            };
            let denom = vh.sqrt() / T::of(bc2s) + T::of(h.eps);
            p[i] -= T::of(h.lr / bc1) * (m[i] / denom);
        }
    }

    fn check_adam<T: Real>() {
        for n in SIZES {
            for amsgrad in [false, true] {
                for (weight_decay, decoupled_weight_decay, maximize) in [
                    (0.0, false, false),
                    (0.01, false, false),
                    (0.01, true, true),
                    (0.0, true, false),
                ] {
                    let h = Adam {
                        lr: 0.01,
                        amsgrad,
                        weight_decay,
                        decoupled_weight_decay,
                        maximize,
                        ..Adam::default()
                    };
                    for step in [1, 2, 10] {
                        let (mut p, g, mut m) = (data::<T>(n, 1, 2.0), data::<T>(n, 2, 1.0), data::<T>(n, 3, 0.5));
                        let (mut v, mut vm) = (positive::<T>(n, 4, 1.0), positive::<T>(n, 5, 1.0));
                        let (mut p0, mut m0, mut v0, mut vm0) = (p.clone(), m.clone(), v.clone(), vm.clone());
                        naive_adam(&mut p0, &g, &mut m0, &mut v0, &mut vm0, step, &h);
                        let vmax = amsgrad.then_some(&mut vm[..]);
                        adam_step(&mut p, &g, &mut m, &mut v, vmax, step, &h).unwrap();
                        same_bits(&p, &p0, &format!("param n={n} step={step} {h:?}"));
                        same_bits(&m, &m0, "exp_avg");
                        same_bits(&v, &v0, "exp_avg_sq");
                        same_bits(&vm, &vm0, "max_exp_avg_sq");
                    }
                }
            }
        }
    }

    fn naive_nadam<T: Real>(p: &mut [T], g: &[T], m: &mut [T], v: &mut [T], t: u64, mp: f64, h: &NAdam) -> f64 {
        let bc2 = 1.0 - h.beta2.powf(t as f64);
        let mu = h.beta1 * (1.0 - 0.5 * 0.96f64.powf(t as f64 * h.momentum_decay));
        let mu1 = h.beta1 * (1.0 - 0.5 * 0.96f64.powf((t + 1) as f64 * h.momentum_decay));
        let mp = mp * mu;
        for i in 0..p.len() {
            let mut gi = if h.maximize { -g[i] } else { g[i] };
            if h.weight_decay != 0.0 {
                if h.decoupled_weight_decay {
                    p[i] *= T::of(1.0 - h.lr * h.weight_decay);
                } else {
                    gi += T::of(h.weight_decay) * p[i];
                }
            }
            m[i] = T::of(h.beta1) * m[i] + T::of(1.0 - h.beta1) * gi;
            v[i] = T::of(h.beta2) * v[i] + T::of(1.0 - h.beta2) * gi * gi;
            let denom = (v[i] / T::of(bc2)).sqrt() + T::of(h.eps);
            p[i] += T::of(-h.lr * (1.0 - mu) / (1.0 - mp)) * (gi / denom);
            p[i] += T::of(-h.lr * mu1 / (1.0 - mp * mu1)) * (m[i] / denom);
        }
        mp
    }

    fn check_nadam<T: Real>() {
        for n in SIZES {
            for (weight_decay, decoupled_weight_decay, maximize) in
                [(0.0, false, false), (0.01, false, true), (0.01, true, false)]
            {
                let h = NAdam {
                    weight_decay,
                    decoupled_weight_decay,
                    maximize,
                    ..NAdam::default()
                };
                for (step, mp) in [(1, 1.0), (5, 0.5)] {
                    let (mut p, g, mut m, mut v) = (
                        data::<T>(n, 1, 2.0),
                        data::<T>(n, 2, 1.0),
                        data::<T>(n, 3, 0.5),
                        positive::<T>(n, 4, 1.0),
                    );
                    let (mut p0, mut m0, mut v0) = (p.clone(), m.clone(), v.clone());
                    let want = naive_nadam(&mut p0, &g, &mut m0, &mut v0, step, mp, &h);
                    let got = nadam_step(&mut p, &g, &mut m, &mut v, step, mp, &h).unwrap();
                    assert_eq!(got, want);
                    same_bits(&p, &p0, &format!("param n={n} {h:?}"));
                    same_bits(&m, &m0, "exp_avg");
                    same_bits(&v, &v0, "exp_avg_sq");
                }
            }
        }
    }

    #[test]
    fn adam_matches_naive_loop() {
        check_adam::<f32>();
        check_adam::<f64>();
    }

    #[test]
    fn nadam_matches_naive_loop() {
        check_nadam::<f32>();
        check_nadam::<f64>();
    }

    #[test]
    fn adam_first_steps_by_hand() {
        // One scalar, g = 0.5 then −0.25, β₁ = 0.9, β₂ = 0.999, ε = 1e-8, η = 0.1.
        let h = Adam {
            lr: 0.1,
            ..Adam::default()
        };
        let (mut p, mut m, mut v) = ([1.0f64], [0.0f64], [0.0f64]);
        adam_step(&mut p, &[0.5], &mut m, &mut v, None, 1, &h).unwrap();
        // m̂ = 0.5, v̂ = 0.25: the first step is η·g/(|g| + ε).
        assert!((p[0] - (1.0 - 0.1 * 0.5 / (0.5 + 1e-8))).abs() < 1e-15);
        adam_step(&mut p, &[-0.25], &mut m, &mut v, None, 2, &h).unwrap();
        let m2 = 0.9 * 0.05 + 0.1 * -0.25;
        let v2 = 0.999 * 0.00025 + 0.001 * 0.0625;
        let (mh, vh) = (m2 / (1.0 - 0.81), v2 / (1.0 - 0.999f64 * 0.999));
        let want = 1.0 - 0.1 * 0.5 / (0.5 + 1e-8) - 0.1 * mh / (vh.sqrt() + 1e-8);
        assert!((p[0] - want).abs() < 1e-14, "{} vs {want}", p[0]);
    }

    #[test]
    fn amsgrad_keeps_the_maximum_and_propagates_nan() {
        let h = Adam {
            amsgrad: true,
            ..Adam::default()
        };
        let (mut p, mut m, mut v, mut vm) = ([0.0f32; 3], [0.0f32; 3], [0.0f32, 0.0, 0.0], [5.0f32, 0.0, f32::NAN]);
        adam_step(&mut p, &[1.0, 1.0, 1.0], &mut m, &mut v, Some(&mut vm), 3, &h).unwrap();
        assert_eq!(vm[0], 5.0);
        assert_eq!(vm[1], v[1]);
        assert!(vm[2].is_nan() && p[2].is_nan());
    }

    #[test]
    fn bad_arguments_write_nothing() {
        let (mut p, g, mut m, mut v, mut vm) = ([1.0f32; 3], [1.0f32; 3], [1.0f32; 3], [1.0f32; 3], [1.0f32; 3]);
        let h = Adam::default();
        let e = |r: Result<(), ShapeError>| r.unwrap_err().0;
        assert!(
            e(adam_step(&mut p, &g, &mut m, &mut v, None, 1, &Adam { eps: 0.0, ..h })).contains("'eps' must be > 0")
        );
        assert!(e(adam_step(
            &mut p,
            &g,
            &mut m,
            &mut v,
            None,
            1,
            &Adam { beta2: 1.0, ..h }
        ))
        .contains("'beta2'"));
        assert!(e(adam_step(
            &mut p,
            &g,
            &mut m,
            &mut v,
            None,
            1,
            &Adam { beta1: -0.1, ..h }
        ))
        .contains("'beta1'"));
        assert!(e(adam_step(
            &mut p,
            &g,
            &mut m,
            &mut v,
            None,
            1,
            &Adam { amsgrad: true, ..h }
        ))
        .contains("'max_exp_avg_sq' is required"));
        assert!(
            e(adam_step(&mut p, &g, &mut m, &mut v, Some(&mut vm), 1, &h)).contains("'max_exp_avg_sq' must be None")
        );
        assert!(e(adam_step(&mut p, &g, &mut m[..1], &mut v, None, 1, &h)).contains("'exp_avg'"));
        assert!(e(adam_step(&mut p, &g, &mut m, &mut v, None, 0, &h)).contains("'step'"));
        let nh = NAdam::default();
        let en = |r: Result<f64, ShapeError>| r.unwrap_err().0;
        assert!(en(nadam_step(&mut p, &g, &mut m, &mut v, 1, 1.5, &nh)).contains("'mu_product'"));
        assert!(en(nadam_step(
            &mut p,
            &g,
            &mut m,
            &mut v,
            1,
            1.0,
            &NAdam {
                momentum_decay: -1.0,
                ..nh
            }
        ))
        .contains("'momentum_decay'"));
        assert!(en(nadam_step(&mut p, &g, &mut m, &mut v[..2], 1, 1.0, &nh)).contains("'exp_avg_sq'"));
        assert_eq!((p, m, v, vm), ([1.0; 3], [1.0; 3], [1.0; 3], [1.0; 3]));
    }
}
