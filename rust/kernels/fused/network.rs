//! A whole multi-layer perceptron as one value: the layer list with its shapes, the workspaces
//! of a batch, and the forward and backward passes over them, calling the in-place kernels.
//!
//! Layers (the model API's, `python/initcore/layers.py`; Dense as `dense.rs`), for a batch `x (n, in)`:
//! ```text
//! Dense         z = x·W + b, y = f(z)          dz = dy ⊙ f'(z); dW = xᵀ·dz; db = Σ_rows dz; dx = dz·Wᵀ
//! BatchNorm     y = (x − μ_B)/√(σ²_B + ε)·γ + β (training; running statistics in evaluation)
//! Activation    y = f(x) elementwise, or softmax / log-softmax along each row
//! PReLU         y = x if x > 0 else a_j·x      da_j = Σ_i dy_ij·x_ij·[x_ij ≤ 0]
//! Maxout        y_ij = max_p x_{i, j·k+p}      dy routed to the arg-max
//! Dropout       y = x ⊙ mask, mask = [u ≥ rate]/(1 − rate)            dx = dy ⊙ mask
//! AlphaDropout  y = x ⊙ (keep·a) + ((1 − keep)·a·α′ + b), keep = [u ≥ rate]   dx = dy ⊙ keep·a
//! ```
//! (Srivastava et al. 2014; Klambauer et al. 2017 for alpha dropout, `α′ = −λα` of SELU.) The
//! uniforms `u` are drawn by the caller — in initcore by the model's NumPy Generator, exactly as
//! the layer-by-layer path draws them — so both paths drop the same units. The masks are formed
//! with the same operations, in the same order and the same precision as the NumPy layers, so
//! they match bit for bit.
//!
//! The backward pass stops at the first layer that has parameters (nothing below it needs a
//! gradient), and that layer computes no input gradient when it is a Dense layer, as
//! `Sequential.backward(need_dx=False)` does.
//!
//! Memory: every workspace is sized once for `capacity` rows ([`Network::new`],
//! [`Network::reserve`]); a batch of `n ≤ capacity` rows uses a prefix, so a training step
//! allocates nothing. Layers that change nothing (the identity activation, dropout in
//! evaluation or at rate 0) own no output buffer: their output *is* their input.
//!
//! Parameters, their gradients and the BatchNorm running statistics are not owned: every call
//! receives them as slices, in the order of the model's `parameters()` (a Dense kernel, then its
//! bias; BatchNorm γ, β; PReLU slopes) and `buffers()` (running mean, running variance), so the
//! caller's arrays are read and written in place.
//!
//! Every layer is computed by the same kernel the layer-by-layer path calls (`dense.rs`,
//! `dropout.rs`, `batch_norm.rs`, `activation.rs`), so the two paths are one copy of the math.
//!
//! Threads: each kernel picks its own (the Dense products in row bands, `dense.rs`; the others
//! serial below the work threshold). Every piece is bit-identical for any thread count, so the
//! whole pass is too.

use crate::ensure;
use crate::kernels::activation::{
    self, act_backward, act_forward, colsum_workspace_len, log_softmax, log_softmax_backward, maxout_backward,
    maxout_forward, prelu_backward, prelu_forward, softmax, softmax_backward, Act,
};
use crate::kernels::batch_norm;
use crate::kernels::dense::{self, dense_backward, dense_forward, DenseShape};
use crate::kernels::dropout::{alpha_dropout_forward, dropout_backward, dropout_forward};
use crate::kernels::parallel;
use crate::kernels::vmath::VMath;
use crate::kernels::ShapeError;

#[path = "network_spec.rs"]
mod spec;
pub use spec::{LayerKind, LayerSpec};

/// The workspace of one layer, sized for `capacity` rows (empty vectors where unused).
#[derive(Debug, Default)]
struct LayerWs<T> {
    /// The output `y`.
    out: Vec<T>,
    /// Dense: the pre-activation `z`.
    z: Vec<T>,
    /// Dropout: the mask the forward multiplied by.
    mask: Vec<T>,
    /// Maxout: the arg-max of each group.
    arg: Vec<i64>,
    /// BatchNorm: the batch (or running) mean and 1/√(var + ε) of the last forward.
    mean: Vec<T>,
    invstd: Vec<T>,
}

/// A network and its workspaces. See the module documentation.
#[derive(Debug)]
pub struct Network<T> {
    specs: Vec<LayerSpec<T>>,
    input_dim: usize,
    capacity: usize,
    n_params: usize,
    /// Index of the first parameter, buffer and uniform matrix of each layer.
    first_param: Vec<usize>,
    first_buffer: Vec<usize>,
    first_uniform: Vec<usize>,
    /// The first layer with parameters (`specs.len()` if none): the backward stops there.
    stop: usize,
    /// Shapes and lengths of the parameters, lengths of the buffers, widths of the uniforms.
    param_shapes: Vec<Vec<usize>>,
    param_lens: Vec<usize>,
    buffer_lens: Vec<usize>,
    uniform_widths: Vec<usize>,
    ws: Vec<LayerWs<T>>,
    /// Where each layer's output lives after the last forward: `None` = the input `x`.
    src: Vec<Option<usize>>,
    /// Gradient ping-pong buffers and the `dz` scratch, `capacity × max width` each.
    grad: [Vec<T>; 2],
    dz: Vec<T>,
    /// Column-sum partials (`activation::colsum_workspace_len`) and a bias-less `db`.
    colsum: Vec<T>,
    db_scratch: Vec<T>,
    /// BatchNorm's `f64` partial sums.
    work64: Vec<f64>,
    /// A team's per-block partial sums of a Dense layer's `db`, two layers' worth
    /// (`network_team.rs`).
    team_parts: Vec<T>,
    /// A team's shared packing of a product's B (`network_team.rs`): grown on the first step
    /// that needs it, so a network that never runs on a team never holds it.
    team_panels: Vec<T>,
    /// The `z` and `y` bands of the layers of a team's forward segment (`network_team.rs`),
    /// refilled per segment within a capacity of one per layer.
    team_segment: Vec<[team::Bands<T>; 2]>,
    /// The alternate `dz` of a team's backward (`network_team.rs`), grown on first use.
    team_dz: Vec<T>,
}

/// Where a layer reads its input: the caller's `x` or an earlier layer's output.
fn input_of<'a, T>(x: &'a [T], before: &'a [LayerWs<T>], src: Option<usize>, len: usize) -> &'a [T] {
    match src {
        None => &x[..len],
        Some(j) => &before[j].out[..len],
    }
}

impl<T: VMath> Network<T> {
    /// Checks the layer list (consecutive widths, hyper-parameters) and allocates workspaces for
    /// `capacity` rows.
    pub fn new(input_dim: usize, specs: Vec<LayerSpec<T>>, capacity: usize) -> Result<Self, ShapeError> {
        ensure!(!specs.is_empty(), "the network has no layers");
        let mut width = input_dim;
        for (i, s) in specs.iter().enumerate() {
            s.check(i)?;
            ensure!(
                s.inp == width,
                "layer {i} takes {} inputs but the layer below gives {width}",
                s.inp
            );
            width = s.out;
        }
        let (mut p, mut b, mut u) = (0, 0, 0);
        let (mut first_param, mut first_buffer, mut first_uniform) = (vec![], vec![], vec![]);
        for s in &specs {
            first_param.push(p);
            first_buffer.push(b);
            first_uniform.push(u);
            p += s.param_shapes().len();
            b += s.n_buffers();
            u += s.draws() as usize;
        }
        let stop = specs
            .iter()
            .position(|s| !s.param_shapes().is_empty())
            .unwrap_or(specs.len());
        let n = specs.len();
        let param_shapes: Vec<Vec<usize>> = specs.iter().flat_map(|s| s.param_shapes()).collect();
        let mut net = Self {
            param_lens: param_shapes.iter().map(|s| s.iter().product()).collect(),
            param_shapes,
            buffer_lens: specs
                .iter()
                .flat_map(|s| std::iter::repeat_n(s.out, s.n_buffers()))
                .collect(),
            uniform_widths: specs.iter().filter(|s| s.draws()).map(|s| s.out).collect(),
            specs,
            input_dim,
            capacity: 0,
            n_params: p,
            first_param,
            first_buffer,
            first_uniform,
            stop,
            ws: (0..n).map(|_| LayerWs::default()).collect(),
            src: vec![None; n],
            grad: [vec![], vec![]],
            dz: vec![],
            colsum: vec![],
            db_scratch: vec![],
            work64: vec![],
            team_parts: vec![],
            team_panels: vec![],
            team_segment: Vec::with_capacity(n),
            team_dz: vec![],
        };
        net.reserve(capacity.max(1));
        Ok(net)
    }

    /// Grows every workspace to hold `rows` rows (nothing happens if it already does).
    pub fn reserve(&mut self, rows: usize) {
        if rows <= self.capacity {
            return;
        }
        let cap = rows;
        let mut widest = self.input_dim;
        let (mut colsum, mut work64, mut dense_out) = (0, 0, 0);
        for (s, w) in self.specs.iter().zip(self.ws.iter_mut()) {
            let (m, len) = (s.out, cap * s.out);
            widest = widest.max(s.inp).max(s.out);
            *w = LayerWs::default();
            match s.kind {
                LayerKind::Dense { .. } => {
                    w.out = vec![T::zero(); len];
                    w.z = vec![T::zero(); len];
                    colsum = colsum.max(colsum_workspace_len(cap, m));
                    dense_out = dense_out.max(m);
                }
                LayerKind::BatchNorm { .. } => {
                    w.out = vec![T::zero(); len];
                    w.mean = vec![T::zero(); m];
                    w.invstd = vec![T::zero(); m];
                    work64 = work64
                        .max(batch_norm::forward_workspace_len(cap, m))
                        .max(batch_norm::backward_workspace_len(cap, m));
                }
                LayerKind::Activation(Act::Identity) => {}
                LayerKind::Activation(_) | LayerKind::Softmax | LayerKind::LogSoftmax => w.out = vec![T::zero(); len],
                LayerKind::PRelu => {
                    w.out = vec![T::zero(); len];
                    colsum = colsum.max(colsum_workspace_len(cap, m));
                }
                LayerKind::Maxout { .. } => {
                    w.out = vec![T::zero(); len];
                    w.arg = vec![0; len];
                }
                LayerKind::Dropout { .. } | LayerKind::AlphaDropout { .. } => {
                    if s.draws() {
                        w.out = vec![T::zero(); len];
                        w.mask = vec![T::zero(); len];
                    }
                }
            }
        }
        self.grad = [vec![T::zero(); cap * widest], vec![T::zero(); cap * widest]];
        self.dz = vec![T::zero(); cap * dense_out];
        self.colsum = vec![T::zero(); colsum];
        self.db_scratch = vec![T::zero(); dense_out];
        self.work64 = vec![0.0; work64];
        // Two halves: a team's backward fills one layer's partials while folding another's.
        self.team_parts = vec![T::zero(); 2 * cap.div_ceil(activation::SUM_BLOCK_ROWS) * dense_out];
        self.capacity = cap;
    }

    pub fn specs(&self) -> &[LayerSpec<T>] {
        &self.specs
    }

    pub fn input_dim(&self) -> usize {
        self.input_dim
    }

    pub fn output_dim(&self) -> usize {
        self.specs.last().map_or(self.input_dim, |s| s.out)
    }

    /// Rows the workspaces hold.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Number of parameter arrays (the length of `params` and `grads`).
    pub fn n_params(&self) -> usize {
        self.n_params
    }

    /// Shapes of every parameter, in order.
    pub fn param_shapes(&self) -> &[Vec<usize>] {
        &self.param_shapes
    }

    /// Lengths of every buffer, in order.
    pub fn buffer_lens(&self) -> &[usize] {
        &self.buffer_lens
    }

    /// Widths of the uniform matrices a training forward takes, in order (`(n, width)` each).
    pub fn uniform_widths(&self) -> &[usize] {
        &self.uniform_widths
    }

    /// Whether a pass over `n` rows has work for more than one thread (a product big enough to
    /// be split or run beside another): then the whole pass runs inside the pool, so that each
    /// parallel kernel finds its threads awake instead of waking them from the calling thread.
    pub fn wants_pool(&self, n: usize) -> bool {
        parallel::num_threads() > 1
            && self
                .specs
                .iter()
                .any(|s| matches!(s.kind, LayerKind::Dense { .. }) && n * s.inp * s.out >= dense::JOIN_MACS)
    }

    /// Whether a training forward needs at least two rows (BatchNorm's batch statistics).
    pub fn needs_two_rows(&self) -> bool {
        self.specs.iter().any(|s| matches!(s.kind, LayerKind::BatchNorm { .. }))
    }

    /// Checks the arguments of a pass over `n` rows; `uniforms` only in training.
    pub fn check_args(
        &self,
        x: &[T],
        n: usize,
        params: &[&mut [T]],
        buffers: &[&mut [T]],
        uniforms: Option<&[&[T]]>,
    ) -> Result<(), ShapeError> {
        ensure!(
            n <= self.capacity,
            "a batch of {n} rows exceeds the workspace's {} rows (reserve first)",
            self.capacity
        );
        ensure!(
            x.len() == n * self.input_dim,
            "argument 'x' has {} elements, expected {n}x{}",
            x.len(),
            self.input_dim
        );
        ensure!(
            params.len() == self.n_params,
            "{} parameter arrays given, the network has {}",
            params.len(),
            self.n_params
        );
        for (i, (p, &len)) in params.iter().zip(&self.param_lens).enumerate() {
            ensure!(
                p.len() == len,
                "parameter {i} has {} elements, expected {:?}",
                p.len(),
                self.param_shapes[i]
            );
        }
        let lens = &self.buffer_lens;
        ensure!(
            buffers.len() == lens.len(),
            "{} buffers given, the network has {}",
            buffers.len(),
            lens.len()
        );
        for (i, (b, &len)) in buffers.iter().zip(lens).enumerate() {
            ensure!(b.len() == len, "buffer {i} has {} elements, expected {len}", b.len());
        }
        if let Some(u) = uniforms {
            let widths = &self.uniform_widths;
            ensure!(
                u.len() == widths.len(),
                "{} uniform matrices given, the network's dropout layers take {}",
                u.len(),
                widths.len()
            );
            for (i, (a, &w)) in u.iter().zip(widths).enumerate() {
                ensure!(
                    a.len() == n * w,
                    "uniform matrix {i} has {} elements, expected {n}x{w}",
                    a.len()
                );
            }
            if self.needs_two_rows() {
                ensure!(
                    n >= 2,
                    "Expected more than 1 value per channel when training, got a batch of {n} row(s) (BatchNorm needs at least 2)"
                );
            }
        }
        Ok(())
    }

    /// The output of the last forward: `n × output_dim` values (`x` itself if every layer
    /// passed it through).
    pub fn output<'a>(&'a self, x: &'a [T], n: usize) -> &'a [T] {
        let len = n * self.output_dim();
        input_of(x, &self.ws, *self.src.last().unwrap_or(&None), len)
    }

    /// Forward pass over `n ≤ capacity` rows of `x`. Training: BatchNorm uses (and updates, in
    /// `buffers`) batch statistics and dropout layers use `uniforms`; evaluation: running
    /// statistics, no dropout (`uniforms` is ignored). Arguments are checked first.
    pub fn forward(
        &mut self,
        x: &[T],
        n: usize,
        params: &[&mut [T]],
        buffers: &mut [&mut [T]],
        uniforms: &[&[T]],
        training: bool,
    ) -> Result<(), ShapeError> {
        self.check_args(x, n, params, buffers, training.then_some(uniforms))?;
        let mut prev: Option<usize> = None;
        for i in 0..self.specs.len() {
            prev = self.forward_layer(i, prev, x, n, params, buffers, uniforms, training)?;
        }
        Ok(())
    }

    /// Layer `i` of [`Network::forward`] (arguments checked), reading the output of layer
    /// `prev` (`None`: `x`); returns where its own output lives.
    #[allow(clippy::too_many_arguments)]
    fn forward_layer(
        &mut self,
        i: usize,
        prev: Option<usize>,
        x: &[T],
        n: usize,
        params: &[&mut [T]],
        buffers: &mut [&mut [T]],
        uniforms: &[&[T]],
        training: bool,
    ) -> Result<Option<usize>, ShapeError> {
        {
            let s = self.specs[i];
            if s.passes_through(training) {
                self.src[i] = prev;
                return Ok(prev);
            }
            let (before, rest) = self.ws.split_at_mut(i);
            let w = &mut rest[0];
            let x_in = input_of(x, before, prev, n * s.inp);
            let (m, len) = (s.out, n * s.out);
            let p0 = self.first_param[i];
            match s.kind {
                LayerKind::Dense { bias, act } => {
                    let b = if bias { Some(&*params[p0 + 1]) } else { None };
                    let shape = DenseShape { n, inp: s.inp, out: m };
                    dense_forward(shape, x_in, params[p0], b, act, &mut w.z[..len], &mut w.out[..len])?;
                }
                LayerKind::BatchNorm { momentum, eps } => {
                    let (gamma, beta) = (&*params[p0], &*params[p0 + 1]);
                    let (rm, rv) = buffers[self.first_buffer[i]..].split_at_mut(1);
                    let (rm, rv) = (&mut *rm[0], &mut *rv[0]);
                    let y = &mut w.out[..len];
                    if training {
                        batch_norm::forward_train(
                            x_in,
                            n,
                            m,
                            gamma,
                            beta,
                            Some((rm, rv)),
                            momentum,
                            eps,
                            y,
                            &mut w.mean,
                            &mut w.invstd,
                            &mut self.work64,
                        )?;
                    } else {
                        batch_norm::forward_eval(x_in, n, m, gamma, beta, rm, rv, eps, y, &mut w.mean, &mut w.invstd)?;
                    }
                }
                LayerKind::Activation(act) => act_forward(act, x_in, &mut w.out[..len])?,
                LayerKind::Softmax => softmax(x_in, n, m, &mut w.out[..len])?,
                LayerKind::LogSoftmax => log_softmax(x_in, n, m, &mut w.out[..len])?,
                LayerKind::PRelu => prelu_forward(x_in, &*params[p0], n, m, &mut w.out[..len])?,
                LayerKind::Maxout { k } => maxout_forward(x_in, n, m, k, &mut w.out[..len], &mut w.arg[..len])?,
                LayerKind::Dropout { rate } => {
                    let u = uniforms[self.first_uniform[i]];
                    dropout_forward(x_in, u, rate, &mut w.mask[..len], &mut w.out[..len])?;
                }
                LayerKind::AlphaDropout { rate, a, b, alpha_p } => {
                    let u = uniforms[self.first_uniform[i]];
                    let (mask, y) = (&mut w.mask[..len], &mut w.out[..len]);
                    alpha_dropout_forward(x_in, u, rate, a, b, alpha_p, mask, y)?;
                }
            }
            self.src[i] = Some(i);
        }
        Ok(Some(i))
    }

    /// The buffer to which a loss writes `d loss / d output` (`n × output_dim` values) before
    /// [`Network::backward`].
    pub fn output_grad(&mut self, n: usize) -> &mut [T] {
        let len = n * self.output_dim();
        &mut self.grad[0][..len]
    }

    /// The forward's output and the gradient buffer together (for a loss).
    pub fn output_and_grad<'a>(&'a mut self, x: &'a [T], n: usize) -> (&'a [T], &'a mut [T]) {
        let len = n * self.output_dim();
        let out = input_of(x, &self.ws, *self.src.last().unwrap_or(&None), len);
        (out, &mut self.grad[0][..len])
    }

    /// Backward pass of the last *training* forward (same `x`, `n` and `params`), from the output
    /// gradient in [`Network::output_grad`]; overwrites every parameter's gradient in `grads`.
    pub fn backward(
        &mut self,
        x: &[T],
        n: usize,
        params: &[&mut [T]],
        grads: &mut [&mut [T]],
    ) -> Result<(), ShapeError> {
        self.check_grads(params, grads)?;
        let mut flip = false;
        for i in (self.stop..self.specs.len()).rev() {
            flip ^= self.backward_layer(i, flip, x, n, params, grads)?;
        }
        Ok(())
    }

    fn check_grads(&self, params: &[&mut [T]], grads: &[&mut [T]]) -> Result<(), ShapeError> {
        ensure!(
            grads.len() == self.n_params,
            "{} gradient arrays given, the network has {}",
            grads.len(),
            self.n_params
        );
        for (i, (g, p)) in grads.iter().zip(params).enumerate() {
            ensure!(
                g.len() == p.len(),
                "gradient {i} has {} elements, its parameter {}",
                g.len(),
                p.len()
            );
        }
        Ok(())
    }

    /// Layer `i` of [`Network::backward`] (arguments checked): its output gradient is in
    /// `grad[flip as usize]`, its input gradient goes to the other buffer. Returns whether it
    /// wrote one (the buffers then swap roles).
    fn backward_layer(
        &mut self,
        i: usize,
        flip: bool,
        x: &[T],
        n: usize,
        params: &[&mut [T]],
        grads: &mut [&mut [T]],
    ) -> Result<bool, ShapeError> {
        let [g0, g1] = &mut self.grad;
        let (dy_buf, dx_buf) = if flip { (g1, g0) } else { (g0, g1) };
        {
            let s = self.specs[i];
            if s.passes_through(true) {
                return Ok(false);
            }
            let prev = if i == 0 { None } else { self.src[i - 1] };
            let x_in = input_of(x, &self.ws, prev, n * s.inp);
            let w = &self.ws[i];
            let (m, len) = (s.out, n * s.out);
            let need_dx = i > self.stop;
            let dy = &dy_buf[..len];
            let dx = &mut dx_buf[..n * s.inp];
            let p0 = self.first_param[i];
            match s.kind {
                LayerKind::Dense { bias, act } => {
                    let (gw, gb) = grads[p0..].split_at_mut(1);
                    let db: &mut [T] = if bias { &mut *gb[0] } else { &mut self.db_scratch[..m] };
                    let (z, y, w_) = (&w.z[..len], &w.out[..len], &*params[p0]);
                    let shape = DenseShape { n, inp: s.inp, out: m };
                    let dz = if act == Act::Identity {
                        &mut [][..]
                    } else {
                        &mut self.dz[..len]
                    };
                    let ws = &mut self.colsum[..shape.backward_workspace_len()];
                    dense_backward(shape, dy, x_in, w_, z, y, act, dz, ws, need_dx.then_some(dx), gw[0], db)?;
                }
                LayerKind::BatchNorm { .. } => {
                    let (dg, dbeta) = grads[p0..].split_at_mut(1);
                    batch_norm::backward(
                        dy,
                        x_in,
                        n,
                        m,
                        &*params[p0],
                        &w.mean,
                        &w.invstd,
                        true,
                        dx,
                        &mut *dg[0],
                        &mut *dbeta[0],
                        &mut self.work64,
                    )?;
                }
                LayerKind::Activation(act) => act_backward(act, dy, x_in, &w.out[..len], dx)?,
                LayerKind::Softmax => softmax_backward(dy, &w.out[..len], n, m, dx)?,
                LayerKind::LogSoftmax => log_softmax_backward(dy, &w.out[..len], n, m, dx)?,
                LayerKind::PRelu => {
                    prelu_backward(dy, x_in, &*params[p0], n, m, dx, &mut self.colsum, &mut *grads[p0])?
                }
                LayerKind::Maxout { k } => maxout_backward(dy, &w.arg[..len], n, m, k, dx)?,
                LayerKind::Dropout { .. } | LayerKind::AlphaDropout { .. } => dropout_backward(dy, &w.mask[..len], dx)?,
            }
        }
        Ok(true)
    }
}

#[path = "network_team.rs"]
mod team;

#[cfg(test)]
#[path = "network_tests.rs"]
pub(crate) mod tests;

#[cfg(test)]
#[path = "network_profile.rs"]
mod profile;
