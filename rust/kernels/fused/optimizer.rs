//! The optimizer of a fused step: one enum over the `torch.optim` rules of `kernels::optim`, with
//! their hyper-parameters, the state arrays each needs, and the update of one parameter.

use crate::ensure;
use crate::kernels::optim::{
    adagrad_step, adam_step, nadam_step, rmsprop_step, sgd_step, Adagrad, Adam, NAdam, RMSprop, Sgd,
};
use crate::kernels::vmath::VMath;
use crate::kernels::ShapeError;

/// An optimizer: its kind and hyper-parameters (the `lr` field is replaced by each call's).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Optimizer {
    Sgd(Sgd),
    Adagrad(Adagrad),
    RMSprop(RMSprop),
    /// Adam, AdamW (`decoupled_weight_decay`) and AMSGrad.
    Adam(Adam),
    NAdam(NAdam),
}

impl Optimizer {
    /// State arrays per parameter, in the order the step takes them (the names of the Python
    /// optimizer's `state` entries).
    pub fn state_names(&self) -> Vec<&'static str> {
        match self {
            Optimizer::Sgd(h) => {
                if h.momentum > 0.0 {
                    vec!["momentum_buffer"]
                } else {
                    vec![]
                }
            }
            Optimizer::Adagrad(_) => vec!["state_sum"],
            Optimizer::RMSprop(h) => {
                let mut v = vec!["square_avg"];
                if h.momentum > 0.0 {
                    v.push("momentum_buffer");
                }
                if h.centered {
                    v.push("grad_avg");
                }
                v
            }
            Optimizer::Adam(h) => {
                if h.amsgrad {
                    vec!["exp_avg", "exp_avg_sq", "max_exp_avg_sq"]
                } else {
                    vec!["exp_avg", "exp_avg_sq"]
                }
            }
            Optimizer::NAdam(_) => vec!["exp_avg", "exp_avg_sq"],
        }
    }

    pub fn n_states(&self) -> usize {
        match self {
            Optimizer::Sgd(h) => (h.momentum > 0.0) as usize,
            Optimizer::Adagrad(_) => 1,
            Optimizer::RMSprop(h) => 1 + (h.momentum > 0.0) as usize + h.centered as usize,
            Optimizer::Adam(h) => 2 + h.amsgrad as usize,
            Optimizer::NAdam(_) => 2,
        }
    }

    /// A copy with learning rate `lr`.
    pub fn with_lr(&self, lr: f64) -> Self {
        let mut o = *self;
        match &mut o {
            Optimizer::Sgd(h) => h.lr = lr,
            Optimizer::Adagrad(h) => h.lr = lr,
            Optimizer::RMSprop(h) => h.lr = lr,
            Optimizer::Adam(h) => h.lr = lr,
            Optimizer::NAdam(h) => h.lr = lr,
        }
        o
    }

    /// A copy with momentum (SGD, RMSprop) or β₁ (Adam, NAdam) `m`; Adagrad has neither.
    pub fn with_momentum(&self, m: f64) -> Self {
        let mut o = *self;
        match &mut o {
            Optimizer::Sgd(h) => h.momentum = m,
            Optimizer::RMSprop(h) => h.momentum = m,
            Optimizer::Adam(h) => h.beta1 = m,
            Optimizer::NAdam(h) => h.beta1 = m,
            Optimizer::Adagrad(_) => {}
        }
        o
    }

    /// [`Optimizer::with_momentum`], checked: valid, and keeping the same state arrays.
    pub fn checked_momentum(&self, m: f64) -> Result<Self, ShapeError> {
        ensure!(
            !matches!(self, Optimizer::Adagrad(_)),
            "argument 'momentum': adagrad has no momentum or beta1 to set"
        );
        let o = self.with_momentum(m);
        o.validate()?;
        ensure!(
            o.n_states() == self.n_states(),
            "argument 'momentum' = {m} changes the optimizer's state arrays (a momentum of 0 keeps no buffer)"
        );
        Ok(o)
    }

    /// The kernel's own checks of the hyper-parameters.
    pub fn validate(&self) -> Result<(), ShapeError> {
        match self {
            Optimizer::Sgd(h) => h.validate(),
            Optimizer::Adagrad(h) => h.validate(),
            Optimizer::RMSprop(h) => h.validate(),
            Optimizer::Adam(h) => h.validate(),
            Optimizer::NAdam(h) => h.validate(),
        }
    }

    pub(super) fn uses_mu_product(&self) -> bool {
        matches!(self, Optimizer::NAdam(_))
    }

    /// Updates one parameter; returns NAdam's new `mu_product` (else the one given).
    pub(super) fn update<T: VMath>(
        &self,
        p: &mut [T],
        g: &[T],
        st: &mut [&mut [T]],
        step: u64,
        mu_product: f64,
    ) -> Result<f64, ShapeError> {
        let mut it = st.iter_mut().map(|s| &mut **s);
        match self {
            Optimizer::Sgd(h) => sgd_step(p, g, it.next(), step, h).map(|_| mu_product),
            Optimizer::Adagrad(h) => {
                let s = it
                    .next()
                    .ok_or_else(|| ShapeError("missing state 'state_sum'".into()))?;
                adagrad_step(p, g, s, step, h).map(|_| mu_product)
            }
            Optimizer::RMSprop(h) => {
                let sq = it
                    .next()
                    .ok_or_else(|| ShapeError("missing state 'square_avg'".into()))?;
                let mb = if h.momentum > 0.0 { it.next() } else { None };
                let ga = if h.centered { it.next() } else { None };
                rmsprop_step(p, g, sq, mb, ga, step, h).map(|_| mu_product)
            }
            Optimizer::Adam(h) => {
                let (m, v) = (it.next(), it.next());
                let (Some(m), Some(v)) = (m, v) else {
                    return Err(ShapeError("missing Adam state".into()));
                };
                adam_step(p, g, m, v, it.next(), step, h).map(|_| mu_product)
            }
            Optimizer::NAdam(h) => {
                let (m, v) = (it.next(), it.next());
                let (Some(m), Some(v)) = (m, v) else {
                    return Err(ShapeError("missing NAdam state".into()));
                };
                nadam_step(p, g, m, v, step, mu_product, h)
            }
        }
    }
}
