//! One training step of a [`Network`] as a single call: forward (training mode), the loss and
//! its gradient, the backward pass, and the optimizer update of every parameter in place; and
//! evaluation over a data set in batches.
//!
//! ```text
//! out  = net(x)                         (BatchNorm batch statistics, dropout masks from `uniforms`)
//! L    = loss(out, target)               mean reduction; dL/dout written by the loss kernel
//! ∇θ L = backward                       overwrites every gradient array
//! θ    ← optimizer(θ, ∇θ L, state, t)    every parameter, in the model's order
//! ```
//! The loss is `losses::cross_entropy` (integer labels; soft targets go to the weighted kernel's
//! probability rows, `losses::weighted_loss`), `binary_cross_entropy` or `mse`, all
//! with the mean reduction of `torch.nn`; the update is one of the `optim` kernels, with the
//! rules of `torch.optim`. The learning rate and the step count `t` are arguments of each call,
//! so schedules and resumed optimizers are honoured. Parameters, gradients and optimizer states
//! are the caller's slices; the step allocates nothing.
//!
//! Every argument (shapes, labels, hyper-parameters, the two rows BatchNorm needs) is checked
//! before anything is written, so an error leaves parameters, running statistics and optimizer
//! states as they were.

use super::network::Network;
use crate::ensure;
use crate::kernels::clip::{clip_gradients, Clip};
use crate::kernels::losses::{
    binary_cross_entropy, check_weighted_loss, cross_entropy, mse, weighted_loss, LossFn, Reduction, Targets,
};
use crate::kernels::parallel;
use crate::kernels::team::Team;
use crate::kernels::vmath::VMath;
use crate::kernels::ShapeError;

/// The training loss, on the network's raw output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Loss {
    /// Softmax cross-entropy against integer labels `(n,)`.
    CrossEntropy,
    /// Sigmoid binary cross-entropy against targets `(n, C)`.
    BinaryCrossEntropy,
    /// Squared error against targets `(n, C)`.
    Mse,
}

impl Loss {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "cross_entropy" => Some(Self::CrossEntropy),
            "binary_cross_entropy" => Some(Self::BinaryCrossEntropy),
            "mse" => Some(Self::Mse),
            _ => None,
        }
    }
}

/// What a step computes beyond the plain one, chosen per call: the loss's options (label
/// smoothing, `mae`, `huber`: `loss_fn`), per-sample `weights` of the batch (both through
/// `losses::weighted_loss`, as the layer-by-layer path calls it), and the gradient clipping run
/// between the backward pass and the update (`clip::clip_gradients`). [`Extras::plain`] is
/// the plain step, whose code path is untouched.
///
/// Parameter groups (`torch.optim`'s `param_groups`): `per_param[i]` is parameter `i`'s
/// optimizer (its group's hyper-parameters) and the ratio of its learning rate to the step's;
/// its rate is `param_lrs[i]` when given (the groups' current rates), else `lr·ratio` (what a
/// schedule setting the default rate gives every group). Empty: one optimizer for all. Groups
/// may keep different state arrays (SGD with and without momentum, AMSGrad in one group):
/// `states` then holds each parameter's own `n_states`, parameter after parameter.
///
/// `momentum`: this step's momentum (SGD, RMSprop) or β₁ (Adam family) for every parameter,
/// replacing the plan's, as `torch.optim.lr_scheduler.OneCycleLR(cycle_momentum=True)` sets it
/// in every group before each step; it must keep the state arrays (a momentum stays > 0).
#[derive(Clone, Copy, Debug)]
pub struct Extras<'a, T> {
    pub loss_fn: Option<LossFn>,
    pub weights: Option<&'a [T]>,
    pub clip: Clip,
    pub per_param: &'a [(Optimizer, f64)],
    pub param_lrs: Option<&'a [f64]>,
    pub momentum: Option<f64>,
}

impl<T> Extras<'_, T> {
    pub fn plain() -> Self {
        Self {
            loss_fn: None,
            weights: None,
            clip: Clip::None,
            per_param: &[],
            param_lrs: None,
            momentum: None,
        }
    }

    /// Parameter `i`'s optimizer with its learning rate at a step of rate `lr`.
    fn param_opt(&self, i: usize, lr: f64) -> Optimizer {
        let (o, ratio) = self.per_param[i];
        let o = o.with_lr(self.param_lrs.map_or(lr * ratio, |l| l[i]));
        self.momentum.map_or(o, |m| o.with_momentum(m))
    }

    /// The weighted kernel's loss for `loss`, when the options or weights call for it.
    pub(super) fn weighted(&self, loss: Loss) -> Option<LossFn> {
        if self.loss_fn.is_none() && self.weights.is_none() {
            return None;
        }
        Some(self.loss_fn.unwrap_or(match loss {
            Loss::CrossEntropy => LossFn::CrossEntropy { label_smoothing: 0.0 },
            Loss::BinaryCrossEntropy => LossFn::BinaryCrossEntropy,
            Loss::Mse => LossFn::Mse,
        }))
    }
}

pub(super) fn targets_of<'a, T>(target: &Target<'a, T>) -> Targets<'a, T, i64> {
    match *target {
        Target::Labels(l) => Targets::Labels(l),
        Target::Values(v) => Targets::Values(v),
    }
}

/// The targets of a batch: labels for cross-entropy, values of the output's shape otherwise.
#[derive(Clone, Copy, Debug)]
pub enum Target<'a, T> {
    Labels(&'a [i64]),
    Values(&'a [T]),
}

/// The mutable state a training step reads and writes, all the caller's: parameters, their
/// gradients, the optimizer's state arrays (`n_states` per parameter, parameter-major), the
/// BatchNorm buffers and NAdam's `mu_product` per parameter (empty for the other optimizers).
pub struct State<'a, 'b, T> {
    pub params: &'a mut [&'b mut [T]],
    pub grads: &'a mut [&'b mut [T]],
    pub states: &'a mut [&'b mut [T]],
    pub buffers: &'a mut [&'b mut [T]],
    pub mu_products: &'a mut [f64],
}

pub(crate) fn check_target<T>(loss: Loss, target: &Target<'_, T>, n: usize, c: usize) -> Result<(), ShapeError> {
    match (loss, target) {
        (Loss::CrossEntropy, Target::Labels(l)) => {
            ensure!(
                l.len() == n,
                "argument 'y' has {} labels, expected {n} (one per row of x)",
                l.len()
            );
            if let Some(i) = l.iter().position(|&v| v < 0 || v >= c as i64) {
                return Err(ShapeError(format!(
                    "argument 'y': y[{i}] = {} is outside [0, {c}) (the model has {c} outputs)",
                    l[i]
                )));
            }
        }
        // Soft targets (rows of class probabilities), as torch.nn.CrossEntropyLoss takes them.
        (_, Target::Values(v)) => ensure!(
            v.len() == n * c,
            "argument 'y' has {} values, expected {n}x{c}",
            v.len()
        ),
        (_, Target::Labels(_)) => return Err(ShapeError("binary_cross_entropy and mse take float targets".into())),
    }
    Ok(())
}

/// NumPy's `argmax` of a row: the first maximum, or the first NaN if there is one (0 for an
/// empty row). The scan selects without branching (a branch on which value is larger is
/// mispredicted about once per new maximum: the accuracy count of the tiny network's 32 rows of
/// 10 took 8% of its step); a NaN, which no comparison finds larger, is looked for only if the
/// scan saw one.
pub(crate) fn np_argmax<T: VMath>(row: &[T]) -> usize {
    let Some(&first) = row.first() else {
        return 0;
    };
    let (mut best, mut top, mut nan) = (0, first, false);
    for (j, &v) in row.iter().enumerate().skip(1) {
        let larger = v > top;
        best = if larger { j } else { best };
        top = if larger { v } else { top };
        nan |= v.is_nan();
    }
    if nan || first.is_nan() {
        return row.iter().position(|v| v.is_nan()).unwrap_or(0);
    }
    best
}

/// `loss(out, target)` with `reduction`, its gradient written into `grad`.
pub(super) fn loss_and_grad<T: VMath>(
    loss: Loss,
    out: &[T],
    n: usize,
    c: usize,
    target: &Target<'_, T>,
    reduction: Reduction,
    grad: &mut [T],
) -> Result<f64, ShapeError> {
    match (loss, target) {
        (Loss::CrossEntropy, Target::Labels(l)) => cross_entropy(out, n, c, l, reduction, grad),
        // Soft targets: the weighted kernel's probability-target rows, as the layer path calls it.
        (Loss::CrossEntropy, Target::Values(t)) => weighted_loss::<T, i64>(
            LossFn::CrossEntropy { label_smoothing: 0.0 },
            out,
            n,
            c,
            Targets::Values(t),
            None,
            reduction,
            grad,
        ),
        (Loss::BinaryCrossEntropy, Target::Values(t)) => binary_cross_entropy(out, t, reduction, grad),
        (Loss::Mse, Target::Values(t)) => mse(out, t, reduction, grad),
        _ => Err(ShapeError("the loss does not match the kind of target".into())),
    }
}

/// One training step over the `n` rows of `x`; returns the (mean) loss. `out` (`n ×
/// output_dim`) receives the network output. `uniforms` are the dropout layers' uniform draws.
///
/// A network whose layers are big enough to split ([`Network::team_size`]) runs the step on a
/// thread team (`team.rs`, `network_team.rs`); the bits are those of the serial step.
#[allow(clippy::too_many_arguments)]
pub fn train_step<T: VMath>(
    net: &mut Network<T>,
    opt: &Optimizer,
    lr: f64,
    step: u64,
    loss: Loss,
    x: &[T],
    n: usize,
    target: Target<'_, T>,
    uniforms: &[&[T]],
    st: State<'_, '_, T>,
    out: &mut [T],
    extras: Extras<'_, T>,
) -> Result<f64, ShapeError> {
    train_step_on(None, net, opt, lr, step, loss, x, n, target, uniforms, st, out, extras)
}

/// [`train_step`] on the caller's `team` (a run of steps keeps one team; `None`: a team of its
/// own when the network deserves one).
#[allow(clippy::too_many_arguments)]
pub fn train_step_on<T: VMath>(
    team: Option<&Team<'_>>,
    net: &mut Network<T>,
    opt: &Optimizer,
    lr: f64,
    step: u64,
    loss: Loss,
    x: &[T],
    n: usize,
    target: Target<'_, T>,
    uniforms: &[&[T]],
    st: State<'_, '_, T>,
    out: &mut [T],
    extras: Extras<'_, T>,
) -> Result<f64, ShapeError> {
    // Everything is checked before anything is written.
    let c = net.output_dim();
    if let Some(lf) = extras.weighted(loss) {
        check_weighted_loss(&lf, n * c, n, c, &targets_of(&target), extras.weights, n * c)?;
    }
    extras.clip.validate()?;
    if !extras.per_param.is_empty() {
        let np = net.n_params();
        ensure!(
            extras.per_param.len() == np && !matches!(extras.param_lrs, Some(l) if l.len() != np),
            "{} per-parameter optimizers given, the network has {np} parameters",
            extras.per_param.len()
        );
        for i in 0..np {
            let o = extras.param_opt(i, lr);
            o.validate()?;
            ensure!(
                o.n_states() == extras.per_param[i].0.n_states() && o.uses_mu_product() == opt.uses_mu_product(),
                "parameter {i}'s optimizer keeps other state arrays than the plan's"
            );
        }
    }
    ensure!(
        step >= 1,
        "argument 'step' must be >= 1 (steps count from 1), got {step}"
    );
    let opt = match extras.momentum {
        Some(m) => opt.checked_momentum(m)?.with_lr(lr),
        None => opt.with_lr(lr),
    };
    opt.validate()?;
    ensure!(n >= 1, "argument 'x' has no rows");
    net.check_args(x, n, st.params, st.buffers, Some(uniforms))?;
    check_target(loss, &target, n, c)?;
    ensure!(
        out.len() == n * c,
        "argument 'out' has {} elements, expected {n}x{c}",
        out.len()
    );
    let np = net.n_params();
    ensure!(
        st.grads.len() == np,
        "{} gradient arrays given, the network has {np}",
        st.grads.len()
    );
    for (i, (g, p)) in st.grads.iter().zip(st.params.iter()).enumerate() {
        ensure!(
            g.len() == p.len(),
            "gradient {i} has {} elements, its parameter {}",
            g.len(),
            p.len()
        );
    }
    // Parameter i's state arrays: `opt`'s count each, or its group optimizer's.
    let ns_of = |i: usize| extras.per_param.get(i).map_or(opt.n_states(), |(o, _)| o.n_states());
    let total: usize = (0..np).map(ns_of).sum();
    ensure!(
        st.states.len() == total,
        "{} optimizer state arrays given, expected {total} ({} per parameter)",
        st.states.len(),
        opt.n_states()
    );
    let mut at = 0;
    for i in 0..np {
        for s in &st.states[at..at + ns_of(i)] {
            ensure!(
                s.len() == st.params[i].len(),
                "optimizer state {at} has {} elements, its parameter {}",
                s.len(),
                st.params[i].len()
            );
            at += 1;
        }
    }
    if opt.uses_mu_product() {
        ensure!(
            st.mu_products.len() == np,
            "{} mu_product values given, expected {np}",
            st.mu_products.len()
        );
        if let Some(bad) = st.mu_products.iter().find(|v| !(0.0..=1.0).contains(*v)) {
            return Err(ShapeError(format!(
                "argument 'mu_product' must be in [0, 1], got {bad}"
            )));
        }
    }

    if let Some(team) = team {
        return step_on_team(
            team, net, &opt, lr, step, loss, x, n, &target, uniforms, st, out, &extras,
        );
    }
    let want = net.team_size(n);
    if want > 1 {
        return parallel::with_team(want, |team| {
            step_on_team(
                team, net, &opt, lr, step, loss, x, n, &target, uniforms, st, out, &extras,
            )
        });
    }
    let pooled = net.wants_pool(n);
    let mut run = move || -> Result<f64, ShapeError> {
        let value = loss_phase(net, loss, x, n, &target, st.params, st.buffers, uniforms, out, &extras)?;
        net.backward(x, n, st.params, st.grads)?;
        if extras.clip != Clip::None {
            clip_gradients(st.grads, extras.clip)?;
        }
        if extras.per_param.is_empty() {
            optimizer_phase(&opt, step, st.params, st.grads, st.states, st.mu_products)?;
        } else {
            let mut at = 0;
            for i in 0..np {
                let o = extras.param_opt(i, lr);
                let states = &mut st.states[at..at + o.n_states()];
                at += o.n_states();
                let mu = st.mu_products.get(i).copied().unwrap_or(1.0);
                let new_mu = o.update(&mut *st.params[i], &*st.grads[i], states, step, mu)?;
                if let Some(m) = st.mu_products.get_mut(i) {
                    *m = new_mu;
                }
            }
        }
        Ok(value)
    };
    // A network with parallel work runs inside the pool (see `Network::wants_pool`).
    if pooled {
        parallel::install(run)
    } else {
        run()
    }
}

/// The loss phase of a step: the training forward, the loss, and `d loss / d output` left in
/// the network's output gradient for `Network::backward`; `out` receives the output. Returns
/// the mean loss. (A seam: a weighted or other loss replaces this phase alone.)
#[allow(clippy::too_many_arguments)]
pub fn loss_phase<T: VMath>(
    net: &mut Network<T>,
    loss: Loss,
    x: &[T],
    n: usize,
    target: &Target<'_, T>,
    params: &[&mut [T]],
    buffers: &mut [&mut [T]],
    uniforms: &[&[T]],
    out: &mut [T],
    extras: &Extras<'_, T>,
) -> Result<f64, ShapeError> {
    net.forward(x, n, params, buffers, uniforms, true)?;
    output_loss(net, loss, x, n, target, out, extras)
}

/// The loss of the last training forward's output (copied to `out`), with `d loss / d output`
/// left in the network's output gradient. Shared by the serial step and the team's.
#[allow(clippy::too_many_arguments)]
fn output_loss<T: VMath>(
    net: &mut Network<T>,
    loss: Loss,
    x: &[T],
    n: usize,
    target: &Target<'_, T>,
    out: &mut [T],
    extras: &Extras<'_, T>,
) -> Result<f64, ShapeError> {
    let c = net.output_dim();
    let (o, g) = net.output_and_grad(x, n);
    out.copy_from_slice(o);
    match extras.weighted(loss) {
        None => loss_and_grad(loss, o, n, c, target, Reduction::Mean, g),
        Some(lf) => weighted_loss(lf, o, n, c, targets_of(target), extras.weights, Reduction::Mean, g),
    }
}

/// The optimizer phase of a step: every parameter updated from its gradient, in the model's
/// order (`opt` carries this step's learning rate). (A seam: gradient clipping goes before it.)
pub fn optimizer_phase<T: VMath>(
    opt: &Optimizer,
    step: u64,
    params: &mut [&mut [T]],
    grads: &[&mut [T]],
    states: &mut [&mut [T]],
    mu_products: &mut [f64],
) -> Result<(), ShapeError> {
    let ns = opt.n_states();
    for i in 0..params.len() {
        let states = &mut states[i * ns..(i + 1) * ns];
        let mu = mu_products.get(i).copied().unwrap_or(1.0);
        let new_mu = opt.update(&mut *params[i], &*grads[i], states, step, mu)?;
        if let Some(m) = mu_products.get_mut(i) {
            *m = new_mu;
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "step_tests.rs"]
pub(crate) mod tests;

#[cfg(test)]
#[path = "step_options_tests.rs"]
mod options_tests;

#[path = "step_team.rs"]
mod team;
pub use super::evaluate::{evaluate, evaluate_with_metrics, Evaluation, MetricSums};
pub use super::optimizer::Optimizer;
#[cfg(test)]
pub(crate) use team::optimizer_phase_team;
use team::step_on_team;

#[cfg(test)]
#[path = "step_team_tests.rs"]
mod team_tests;
