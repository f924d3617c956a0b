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
use crate::kernels::optim::{
    adagrad_step, adam_step, nadam_step, rmsprop_step, sgd_step, Adagrad, Adam, NAdam, RMSprop, Sgd,
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
    fn weighted(&self, loss: Loss) -> Option<LossFn> {
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

fn targets_of<'a, T>(target: &Target<'a, T>) -> Targets<'a, T, i64> {
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

    fn uses_mu_product(&self) -> bool {
        matches!(self, Optimizer::NAdam(_))
    }

    /// Updates one parameter; returns NAdam's new `mu_product` (else the one given).
    fn update<T: VMath>(
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

/// NumPy's `argmax` of a row: the first maximum, or the first NaN if there is one.
pub(crate) fn np_argmax<T: VMath>(row: &[T]) -> usize {
    row.iter().enumerate().fold(0, |b, (j, &v)| {
        if !row[b].is_nan() && (v > row[b] || v.is_nan()) {
            j
        } else {
            b
        }
    })
}

/// `loss(out, target)` with `reduction`, its gradient written into `grad`.
fn loss_and_grad<T: VMath>(
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

/// The result of [`evaluate`]: the summed loss and, for the classification losses, the number
/// of correct predictions out of `count`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Evaluation {
    pub loss_sum: f64,
    pub correct: usize,
    pub count: usize,
}

/// Evaluation-mode forward over all `n` rows of `x` in batches of at most `batch` rows (and
/// the workspace's capacity): the output into `out` (`n × output_dim`, when given) and, with a
/// `target`, the summed loss (batch sums added in order, as `Sequential.evaluate` does) and the
/// accuracy counts (cross-entropy: arg-max, first maximum, equals the label; binary
/// cross-entropy: `(out > 0) == (t ≥ 0.5)` per entry). Updates nothing.
#[allow(clippy::too_many_arguments)]
pub fn evaluate<T: VMath>(
    net: &mut Network<T>,
    x: &[T],
    n: usize,
    batch: usize,
    params: &[&mut [T]],
    buffers: &mut [&mut [T]],
    target: Option<(Loss, Target<'_, T>)>,
    out: Option<&mut [T]>,
) -> Result<Evaluation, ShapeError> {
    let mut none = MetricSums::default();
    evaluate_with_metrics(
        net,
        x,
        n,
        batch,
        params,
        buffers,
        target,
        out,
        &Extras::plain(),
        &mut none,
    )
}

/// The sums of the metrics [`evaluate_with_metrics`] computes on every batch's output, in
/// `f64`, in row order (Keras's definitions, `python/initcore/metrics.py`):
/// ```text
/// top_k   [#{j : z_ij > z_i,y_i} < k] per row (labels)        hits out of the rows
/// errors  Σ |p − t|, Σ (p − t)² over all entries (values)      mae, mse = sums / entries
/// r2      per column Σ t, Σ t², Σ (t − p)² (values)            1 − SS_res / (Σt² − (Σt)²/n)
/// ```
/// Set `top_k` (the `k`s, hits 0), `errors` and `r2` to ask for them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MetricSums {
    pub top_k: Vec<(usize, usize)>,
    pub errors: bool,
    pub abs_sum: f64,
    pub sq_sum: f64,
    pub entries: usize,
    pub r2: bool,
    pub col_sum: Vec<f64>,
    pub col_sq: Vec<f64>,
    pub col_res: Vec<f64>,
    pub rows: usize,
}

impl MetricSums {
    fn wanted(&self) -> bool {
        !self.top_k.is_empty() || self.errors || self.r2
    }

    fn add<T: VMath>(&mut self, o: &[T], c: usize, target: &Target<'_, T>) {
        match *target {
            Target::Labels(l) => {
                for (row, &y) in o.chunks_exact(c).zip(l) {
                    let own = row[y as usize];
                    let above = row.iter().filter(|&&v| v > own).count();
                    for (k, hits) in self.top_k.iter_mut() {
                        *hits += (above < *k) as usize;
                    }
                }
            }
            Target::Values(t) => {
                if self.errors {
                    for (&p, &tv) in o.iter().zip(t) {
                        let d = p.f64() - tv.f64();
                        self.abs_sum += d.abs();
                        self.sq_sum += d * d;
                    }
                    self.entries += o.len();
                }
                if self.r2 {
                    self.col_sum.resize(c, 0.0);
                    self.col_sq.resize(c, 0.0);
                    self.col_res.resize(c, 0.0);
                    for (row, trow) in o.chunks_exact(c).zip(t.chunks_exact(c)) {
                        for j in 0..c {
                            let (p, tv) = (row[j].f64(), trow[j].f64());
                            self.col_sum[j] += tv;
                            self.col_sq[j] += tv * tv;
                            self.col_res[j] += (tv - p) * (tv - p);
                        }
                    }
                }
            }
        }
        self.rows += o.len() / c.max(1);
    }
}

/// [`evaluate`], also accumulating the metrics `metrics` asks for (see [`MetricSums`]). The
/// loss's options and per-sample weights `(n,)` of `extras` (the rest is unused) make each
/// batch's loss the weighted kernel's `Σ_i w_i·l_i` (`losses::weighted_loss`, reduction sum),
/// as `Sequential.evaluate` adds it batch by batch.
#[allow(clippy::too_many_arguments)]
pub fn evaluate_with_metrics<T: VMath>(
    net: &mut Network<T>,
    x: &[T],
    n: usize,
    batch: usize,
    params: &[&mut [T]],
    buffers: &mut [&mut [T]],
    target: Option<(Loss, Target<'_, T>)>,
    mut out: Option<&mut [T]>,
    extras: &Extras<'_, T>,
    metrics: &mut MetricSums,
) -> Result<Evaluation, ShapeError> {
    let (d, c) = (net.input_dim(), net.output_dim());
    ensure!(!metrics.wanted() || target.is_some(), "metrics need targets");
    if let Some((_, t)) = &target {
        ensure!(
            metrics.top_k.is_empty() || matches!(t, Target::Labels(_)),
            "top_k_accuracy needs class labels"
        );
        ensure!(
            !(metrics.errors || metrics.r2) || matches!(t, Target::Values(_)),
            "mae, mse and r2 need targets of the output's shape"
        );
    }
    ensure!(batch >= 1, "argument 'batch_size' must be >= 1");
    ensure!(
        x.len() == n * d,
        "argument 'x' has {} elements, expected {n}x{d}",
        x.len()
    );
    if let Some(o) = out.as_deref() {
        ensure!(
            o.len() == n * c,
            "argument 'out' has {} elements, expected {n}x{c}",
            o.len()
        );
    }
    if let Some((loss, t)) = &target {
        check_target(*loss, t, n, c)?;
        if let Some(lf) = extras.weighted(*loss) {
            check_weighted_loss(&lf, n * c, n, c, &targets_of(t), extras.weights, n * c)?;
        }
    }
    let rows = batch.min(net.capacity()).max(1);
    let pooled = net.wants_pool(rows);
    let mut run = move || -> Result<Evaluation, ShapeError> {
        let mut ev = Evaluation {
            loss_sum: 0.0,
            correct: 0,
            count: 0,
        };
        let mut r0 = 0;
        while r0 < n {
            let r1 = (r0 + rows).min(n);
            let nb = r1 - r0;
            let xb = &x[r0 * d..r1 * d];
            net.forward(xb, nb, params, buffers, &[], false)?;
            let (o, g) = net.output_and_grad(xb, nb);
            if let Some(dst) = out.as_deref_mut() {
                dst[r0 * c..r1 * c].copy_from_slice(o);
            }
            if let Some((loss, t)) = &target {
                let tb = match t {
                    Target::Labels(l) => Target::Labels(&l[r0..r1]),
                    Target::Values(v) => Target::Values(&v[r0 * c..r1 * c]),
                };
                ev.loss_sum += match extras.weighted(*loss) {
                    None => loss_and_grad(*loss, o, nb, c, &tb, Reduction::Sum, g)?,
                    Some(lf) => {
                        let w = extras.weights.map(|w| &w[r0..r1]);
                        weighted_loss(lf, o, nb, c, targets_of(&tb), w, Reduction::Sum, g)?
                    }
                };
                match (loss, tb) {
                    (Loss::CrossEntropy, Target::Labels(l)) => {
                        for (row, &label) in o.chunks_exact(c).zip(l) {
                            let best = row.iter().enumerate().fold(0, |b, (j, &v)| {
                                if v > row[b] || (v.is_nan() && !row[b].is_nan()) {
                                    j
                                } else {
                                    b
                                }
                            });
                            ev.correct += (best as i64 == label) as usize;
                        }
                        ev.count += nb;
                    }
                    // Soft targets: the arg-max class of the output against the target's.
                    (Loss::CrossEntropy, Target::Values(t)) => {
                        for (row, trow) in o.chunks_exact(c).zip(t.chunks_exact(c)) {
                            ev.correct += (np_argmax(row) == np_argmax(trow)) as usize;
                        }
                        ev.count += nb;
                    }
                    (Loss::BinaryCrossEntropy, Target::Values(t)) => {
                        for (&v, &tv) in o.iter().zip(t) {
                            ev.correct += ((v > T::zero()) == (tv >= T::of(0.5))) as usize;
                        }
                        ev.count += nb * c;
                    }
                    _ => {}
                }
                if metrics.wanted() {
                    metrics.add(o, c, &tb);
                }
            }
            r0 = r1;
        }
        Ok(ev)
    };
    if pooled {
        parallel::install(run)
    } else {
        run()
    }
}

#[cfg(test)]
#[path = "step_tests.rs"]
mod tests;

#[path = "step_team.rs"]
mod team;
use team::step_on_team;

#[cfg(test)]
#[path = "step_team_tests.rs"]
mod team_tests;
