//! `TrainPlan`: a whole network's training step, prediction and evaluation, one call each
//! (see `kernels::network` and `kernels::train`). Built once from a plain description of the
//! layers (`python/initcore/fused.py` makes it from a `Sequential`), it owns only workspaces;
//! parameters, gradients, optimizer states and BatchNorm buffers are the caller's NumPy arrays,
//! passed to every call as tuples and updated in place.
//!
//! Per-call cost matters, so the array arguments are checked on their C structs and used as
//! unchecked slices: `train_args.rs` has the checks and the safety argument.

#[path = "train_args.rs"]
mod args;
#[path = "train_spec.rs"]
mod spec;

use super::common::{dt_str, Dt};
use crate::kernels::epoch::{train_epoch, EpochArgs, EpochWs, Progress};
use crate::kernels::network::Network;
use crate::kernels::train::{evaluate, train_step, Loss, Optimizer, State};
use crate::kernels::vmath::VMath;
use args::{check_overlaps, slice, slice_mut, target_of, value_err, Arg, Guard, Meta, Slots, StepArgs};
use numpy::Element;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};
use spec::{layer_spec, optimizer_of};
use std::time::{Duration, Instant};

/// One dtype's plan.
struct Plan<T: 'static> {
    net: Network<T>,
    meta: Meta,
    slots: Slots<T>,
    /// NAdam's `mu_product` per parameter, copied from and back to the caller's list.
    mu: Vec<f64>,
    /// An epoch's gathered batch rows.
    gathered: EpochWs<T>,
}

/// How often a running epoch looks for a pending signal (Ctrl-C), re-acquiring the GIL briefly.
const SIGNAL_CHECK: Duration = Duration::from_millis(50);

impl<T: VMath + Element> Plan<T> {
    #[allow(clippy::too_many_arguments)]
    fn step(
        &mut self,
        py: Python<'_>,
        x: &Bound<'_, PyAny>,
        y: &Bound<'_, PyAny>,
        a: &StepArgs<'_, '_>,
        step: u64,
        lr: f64,
        out: &Bound<'_, PyAny>,
        mu: Option<&Bound<'_, PyList>>,
    ) -> PyResult<f64> {
        const F: &str = "TrainPlan.step";
        let Plan {
            net,
            meta,
            slots,
            mu: mu_vals,
            ..
        } = self;
        let loss = meta
            .loss
            .ok_or_else(|| PyValueError::new_err(format!("{F}: this plan was built without a loss")))?;
        let opt = meta
            .opt
            .ok_or_else(|| PyValueError::new_err(format!("{F}: this plan was built without an optimizer")))?;
        let g = Guard(slots);
        let s = &mut *g.0;
        let (rx, n) = meta.take_x(F, s, x)?;
        let (ry, labels) = meta.take_target(F, s, loss, y, n)?;
        let ro = meta.take_out(F, s, out, n)?;
        meta.take_state(F, s, a, true, n)?;
        check_overlaps(F, s, meta)?;
        mu_vals.clear();
        if let Optimizer::NAdam(_) = opt {
            let list =
                mu.ok_or_else(|| PyValueError::new_err(format!("{F}: argument 'mu_products' is required for nadam")))?;
            for v in list.iter() {
                mu_vals.push(v.extract::<f64>()?);
            }
        }
        net.reserve(n);
        // SAFETY: checked above (shapes, dtypes, contiguity, overlaps); see the module docs.
        let (xs, outs, target) = unsafe { (slice::<T>(rx), slice_mut::<T>(ro), target_of::<T>(ry, labels)) };
        let Slots {
            params,
            grads,
            states,
            buffers,
            uniforms,
            ..
        } = s;
        let value = py
            .detach(|| {
                let st = State {
                    params,
                    grads,
                    states,
                    buffers,
                    mu_products: &mut mu_vals[..],
                };
                train_step(net, &opt, lr, step, loss, xs, n, target, uniforms, st, outs)
            })
            .map_err(|e| value_err(F, e))?;
        drop(g);
        if let Some(list) = mu {
            for (i, &v) in mu_vals.iter().enumerate() {
                list.set_item(i, v)?;
            }
        }
        Ok(value)
    }

    /// Batches `first .. first + count` of an epoch in one call (`kernels::epoch`), the GIL
    /// released; returns after `max_seconds` (a whole step done) when that is positive, and on a
    /// pending signal, whose exception it raises. `progress` always receives how far it got.
    #[allow(clippy::too_many_arguments)]
    fn epoch(
        &mut self,
        py: Python<'_>,
        e: &EpochCall<'_, '_>,
        a: &StepArgs<'_, '_>,
        mu: Option<&Bound<'_, PyList>>,
        progress: &Bound<'_, PyList>,
    ) -> PyResult<()> {
        const F: &str = "TrainPlan.epoch";
        let Plan {
            net,
            meta,
            slots,
            mu: mu_vals,
            gathered,
        } = self;
        let loss = meta
            .loss
            .ok_or_else(|| PyValueError::new_err(format!("{F}: this plan was built without a loss")))?;
        let opt = meta
            .opt
            .ok_or_else(|| PyValueError::new_err(format!("{F}: this plan was built without an optimizer")))?;
        if e.step0 < 1 {
            return Err(PyValueError::new_err(format!(
                "{F}: argument 'step' must be >= 1 (steps count from 1), got {}",
                e.step0
            )));
        }
        let g = Guard(slots);
        let s = &mut *g.0;
        let (rx, rows) = meta.take_x(F, s, e.x)?;
        let (ry, labels) = meta.take_target(F, s, loss, e.y, rows)?;
        let rorder = meta.take_flat::<i64, T>(F, s, Arg::Order, e.order)?;
        let runi = meta.take_flat::<T, T>(F, s, Arg::Uniforms, e.uniforms)?;
        let ro = meta.take_out_rows(F, s, e.out)?;
        meta.take_state(F, s, a, true, 0)?;
        check_overlaps(F, s, meta)?;
        mu_vals.clear();
        if let Optimizer::NAdam(_) = opt {
            let list =
                mu.ok_or_else(|| PyValueError::new_err(format!("{F}: argument 'mu_products' is required for nadam")))?;
            for v in list.iter() {
                mu_vals.push(v.extract::<f64>()?);
            }
        }
        // SAFETY: checked above (shapes, dtypes, contiguity, overlaps); see `train_args.rs`.
        let (xs, outs, target, order, uniforms) = unsafe {
            (
                slice::<T>(rx),
                slice_mut::<T>(ro),
                target_of::<T>(ry, labels),
                slice::<i64>(rorder),
                slice::<T>(runi),
            )
        };
        let args = EpochArgs {
            x: xs,
            rows,
            target,
            order,
            batch: e.batch,
            first: e.first,
            count: e.count,
            uniforms,
            lrs: e.lrs.as_deref(),
            lr: e.lr,
            step0: e.step0,
            loss_sum0: e.loss_sum,
        };
        let Slots {
            params,
            grads,
            states,
            buffers,
            ..
        } = s;
        let mut prog = Progress::default();
        let max_seconds = e.max_seconds;
        let (result, pending) = py.detach(|| {
            let st = State {
                params,
                grads,
                states,
                buffers,
                mu_products: &mut mu_vals[..],
            };
            let start = Instant::now();
            let mut last_check = start;
            let mut pending: Option<PyErr> = None;
            let mut poll = |_: &Progress| {
                let now = Instant::now();
                if now.duration_since(last_check) >= SIGNAL_CHECK {
                    last_check = now;
                    if let Err(err) = Python::attach(|py| py.check_signals()) {
                        pending = Some(err);
                        return true;
                    }
                }
                max_seconds > 0.0 && now.duration_since(start).as_secs_f64() >= max_seconds
            };
            let r = train_epoch(net, &opt, loss, &args, st, gathered, outs, &mut prog, &mut poll);
            (r, pending)
        });
        drop(g);
        let vals: [f64; 6] = [
            prog.steps as f64,
            prog.loss_sum,
            prog.samples as f64,
            prog.correct as f64,
            prog.count as f64,
            prog.last_rows as f64,
        ];
        for (i, v) in vals.iter().enumerate() {
            if i < progress.len() {
                progress.set_item(i, v)?;
            } else {
                progress.append(v)?;
            }
        }
        if let Some(list) = mu {
            for (i, &v) in mu_vals.iter().enumerate() {
                list.set_item(i, v)?;
            }
        }
        result.map_err(|err| value_err(F, err))?;
        match pending {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }

    fn predict(
        &mut self,
        py: Python<'_>,
        x: &Bound<'_, PyAny>,
        out: &Bound<'_, PyAny>,
        batch: usize,
        a: &StepArgs<'_, '_>,
    ) -> PyResult<()> {
        const F: &str = "TrainPlan.predict";
        let Plan { net, meta, slots, .. } = self;
        let g = Guard(slots);
        let s = &mut *g.0;
        let (rx, n) = meta.take_x(F, s, x)?;
        let ro = meta.take_out(F, s, out, n)?;
        meta.take_state(F, s, a, false, n)?;
        check_overlaps(F, s, meta)?;
        net.reserve(batch.min(n));
        // SAFETY: as in `step`.
        let (xs, outs) = unsafe { (slice::<T>(rx), slice_mut::<T>(ro)) };
        let Slots { params, buffers, .. } = s;
        py.detach(|| evaluate(net, xs, n, batch, params, buffers, None, Some(outs)))
            .map_err(|e| value_err(F, e))?;
        Ok(())
    }

    fn evaluate(
        &mut self,
        py: Python<'_>,
        x: &Bound<'_, PyAny>,
        y: &Bound<'_, PyAny>,
        loss: Loss,
        batch: usize,
        a: &StepArgs<'_, '_>,
    ) -> PyResult<(f64, usize, usize)> {
        const F: &str = "TrainPlan.evaluate";
        let Plan { net, meta, slots, .. } = self;
        let g = Guard(slots);
        let s = &mut *g.0;
        let (rx, n) = meta.take_x(F, s, x)?;
        let (ry, labels) = meta.take_target(F, s, loss, y, n)?;
        meta.take_state(F, s, a, false, n)?;
        check_overlaps(F, s, meta)?;
        net.reserve(batch.min(n));
        // SAFETY: as in `step`.
        let (xs, target) = unsafe { (slice::<T>(rx), target_of::<T>(ry, labels)) };
        let Slots { params, buffers, .. } = s;
        let ev = py
            .detach(|| evaluate(net, xs, n, batch, params, buffers, Some((loss, target)), None))
            .map_err(|e| value_err(F, e))?;
        Ok((ev.loss_sum, ev.correct, ev.count))
    }
}

/// The epoch-specific arguments of `TrainPlan.epoch`.
struct EpochCall<'a, 'py> {
    x: &'a Bound<'py, PyAny>,
    y: &'a Bound<'py, PyAny>,
    order: &'a Bound<'py, PyAny>,
    uniforms: &'a Bound<'py, PyAny>,
    out: &'a Bound<'py, PyAny>,
    batch: usize,
    first: usize,
    count: usize,
    step0: u64,
    lr: f64,
    lrs: Option<Vec<f64>>,
    max_seconds: f64,
    loss_sum: f64,
}

enum Inner {
    F32(Plan<f32>),
    F64(Plan<f64>),
}

macro_rules! dispatch {
    ($self:expr, $p:ident => $body:expr) => {
        match &mut $self.inner {
            Inner::F32($p) => $body,
            Inner::F64($p) => $body,
        }
    };
}

/// A fused training plan for one network, dtype, optimizer and loss (see the module docs).
#[pyclass(module = "initcore._core", name = "TrainPlan")]
pub struct TrainPlan {
    inner: Inner,
    dtype: Dt,
}

fn build<T: VMath + Element>(
    f: &str,
    layers: &Bound<'_, PyAny>,
    input_dim: usize,
    capacity: usize,
    opt: Option<Optimizer>,
    loss: Option<Loss>,
    param_names: Vec<String>,
) -> PyResult<Plan<T>> {
    let mut specs = Vec::new();
    for (i, item) in layers.try_iter()?.enumerate() {
        specs.push(layer_spec::<T>(f, i, &item?)?);
    }
    let net = Network::new(input_dim, specs, capacity).map_err(|e| value_err(f, e))?;
    let shapes = net.param_shapes().to_vec();
    if !param_names.is_empty() && param_names.len() != shapes.len() {
        return Err(PyValueError::new_err(format!(
            "{f}: {} parameter names given, the layers have {} parameters",
            param_names.len(),
            shapes.len()
        )));
    }
    let meta = Meta {
        opt,
        loss,
        param_names,
        buffer_lens: net.buffer_lens().to_vec(),
        uniform_widths: net.uniform_widths().to_vec(),
        state_names: opt.map(|o| o.state_names()).unwrap_or_default(),
        shapes,
        input_dim,
        output_dim: net.output_dim(),
    };
    Ok(Plan {
        net,
        meta,
        slots: Slots::new(),
        mu: Vec::new(),
        gathered: EpochWs::new(),
    })
}

#[pymethods]
impl TrainPlan {
    /// ``TrainPlan(layers, input_dim, dtype, capacity=1, optimizer=None, loss=None,
    /// param_names=())``. ``layers``: tuples ``("dense", in, out, use_bias, activation, alpha)``,
    /// ``("batch_norm", m, momentum, eps)``, ``("activation", m, name, alpha)`` (``name`` may
    /// be ``"softmax"``/``"log_softmax"``), ``("prelu", m)``, ``("maxout", in, k)``,
    /// ``("dropout", m, rate)``, ``("alpha_dropout", m, rate, a, b, alpha_p)``. ``optimizer``:
    /// ``(kind, hyper)`` as ``initcore.optim`` has them. ``loss``: ``"cross_entropy"``,
    /// ``"binary_cross_entropy"`` or ``"mse"``.
    #[new]
    #[pyo3(signature = (layers, input_dim, dtype, capacity=1, optimizer=None, loss=None, param_names=Vec::new()))]
    fn new(
        layers: &Bound<'_, PyAny>,
        input_dim: usize,
        dtype: &str,
        capacity: usize,
        optimizer: Option<(String, Bound<'_, PyDict>)>,
        loss: Option<&str>,
        param_names: Vec<String>,
    ) -> PyResult<Self> {
        const F: &str = "TrainPlan";
        let opt = match &optimizer {
            Some((kind, hyper)) => Some(optimizer_of(F, kind, hyper)?),
            None => None,
        };
        let loss = match loss {
            Some(l) => Some(Loss::parse(l).ok_or_else(|| {
                PyValueError::new_err(format!(
                    "{F}: argument 'loss' must be cross_entropy, binary_cross_entropy or mse, got '{l}'"
                ))
            })?),
            None => None,
        };
        let (inner, dt) = match dtype {
            "float32" => (
                Inner::F32(build(F, layers, input_dim, capacity, opt, loss, param_names)?),
                Dt::F32,
            ),
            "float64" => (
                Inner::F64(build(F, layers, input_dim, capacity, opt, loss, param_names)?),
                Dt::F64,
            ),
            _ => {
                return Err(PyTypeError::new_err(format!(
                    "{F}: argument 'dtype' must be 'float32' or 'float64', got '{dtype}'"
                )))
            }
        };
        Ok(Self { inner, dtype: dt })
    }

    /// One training step; returns the mean loss. ``params``, ``grads``: tuples in the model's
    /// parameter order; ``states``: the optimizer's state arrays, ``state_names`` of them per
    /// parameter; ``buffers``: BatchNorm running means and variances; ``uniforms``: ``(n,
    /// width)`` draws in ``[0, 1)`` per dropout layer; ``out``: ``(n, output_dim)`` receives
    /// the network output; ``mu_products`` (NAdam): a list of floats, updated in place.
    #[pyo3(signature = (x, y, params, grads, states, buffers, uniforms, step, lr, out, mu_products=None))]
    #[allow(clippy::too_many_arguments)]
    fn step(
        &mut self,
        py: Python<'_>,
        x: &Bound<'_, PyAny>,
        y: &Bound<'_, PyAny>,
        params: &Bound<'_, PyTuple>,
        grads: &Bound<'_, PyTuple>,
        states: &Bound<'_, PyTuple>,
        buffers: &Bound<'_, PyTuple>,
        uniforms: &Bound<'_, PyTuple>,
        step: u64,
        lr: f64,
        out: &Bound<'_, PyAny>,
        mu_products: Option<&Bound<'_, PyList>>,
    ) -> PyResult<f64> {
        let a = StepArgs {
            params,
            grads,
            states,
            buffers,
            uniforms: Some(uniforms),
        };
        dispatch!(self, p => p.step(py, x, y, &a, step, lr, out, mu_products))
    }

    /// Training steps over batches ``first .. first + count`` of an epoch, in one call (the GIL
    /// released): batch ``b`` is rows ``order[b*batch_size:(b+1)*batch_size]`` of ``x``, ``y``
    /// (all samples), gathered here. ``uniforms``: a flat array of the steps' dropout draws back
    /// to back (empty without dropout); ``step``: the optimizer step count of the first step;
    /// ``lrs``: one learning rate per step (else ``lr`` for all); ``loss_sum``: the epoch's running
    /// loss sum, continued; ``out (rows, output_dim)``
    /// with rows for a batch receives each step's output. Returns after ``max_seconds`` (if
    /// positive) at a step's end; a pending signal raises its exception (Ctrl-C:
    /// ``KeyboardInterrupt``) after the step in progress. ``progress`` (a list) always receives
    /// ``[steps, loss_sum, samples, correct, count, last_rows]``.
    #[pyo3(signature = (x, y, order, batch_size, first, count, params, grads, states, buffers, uniforms, step, lr, out, progress, mu_products=None, lrs=None, max_seconds=0.0, loss_sum=0.0))]
    #[allow(clippy::too_many_arguments)]
    fn epoch(
        &mut self,
        py: Python<'_>,
        x: &Bound<'_, PyAny>,
        y: &Bound<'_, PyAny>,
        order: &Bound<'_, PyAny>,
        batch_size: usize,
        first: usize,
        count: usize,
        params: &Bound<'_, PyTuple>,
        grads: &Bound<'_, PyTuple>,
        states: &Bound<'_, PyTuple>,
        buffers: &Bound<'_, PyTuple>,
        uniforms: &Bound<'_, PyAny>,
        step: u64,
        lr: f64,
        out: &Bound<'_, PyAny>,
        progress: &Bound<'_, PyList>,
        mu_products: Option<&Bound<'_, PyList>>,
        lrs: Option<Vec<f64>>,
        max_seconds: f64,
        loss_sum: f64,
    ) -> PyResult<()> {
        let a = StepArgs {
            params,
            grads,
            states,
            buffers,
            uniforms: None,
        };
        let e = EpochCall {
            x,
            y,
            order,
            uniforms,
            out,
            batch: batch_size,
            first,
            count,
            step0: step,
            lr,
            lrs,
            max_seconds,
            loss_sum,
        };
        dispatch!(self, p => p.epoch(py, &e, &a, mu_products, progress))
    }

    /// Evaluation-mode output of ``x`` into ``out (n, output_dim)``, in batches of
    /// ``batch_size`` rows.
    fn predict(
        &mut self,
        py: Python<'_>,
        x: &Bound<'_, PyAny>,
        out: &Bound<'_, PyAny>,
        batch_size: usize,
        params: &Bound<'_, PyTuple>,
        buffers: &Bound<'_, PyTuple>,
    ) -> PyResult<()> {
        let empty = PyTuple::empty(py);
        let a = StepArgs {
            params,
            grads: &empty,
            states: &empty,
            buffers,
            uniforms: None,
        };
        dispatch!(self, p => p.predict(py, x, out, batch_size.max(1), &a))
    }

    /// Evaluation-mode ``(summed loss, correct, count)`` over ``x``, ``y`` in batches.
    #[allow(clippy::too_many_arguments)]
    fn evaluate(
        &mut self,
        py: Python<'_>,
        x: &Bound<'_, PyAny>,
        y: &Bound<'_, PyAny>,
        loss: &str,
        batch_size: usize,
        params: &Bound<'_, PyTuple>,
        buffers: &Bound<'_, PyTuple>,
    ) -> PyResult<(f64, usize, usize)> {
        let l = Loss::parse(loss)
            .ok_or_else(|| PyValueError::new_err(format!("TrainPlan.evaluate: unknown loss '{loss}'")))?;
        let empty = PyTuple::empty(py);
        let a = StepArgs {
            params,
            grads: &empty,
            states: &empty,
            buffers,
            uniforms: None,
        };
        dispatch!(self, p => p.evaluate(py, x, y, l, batch_size.max(1), &a))
    }

    /// Grows the workspaces to ``rows`` rows (a no-op if they hold as many).
    fn reserve(&mut self, rows: usize) {
        dispatch!(self, p => p.net.reserve(rows))
    }

    /// Rows the workspaces hold (the largest batch seen).
    #[getter]
    fn capacity(&self) -> usize {
        match &self.inner {
            Inner::F32(p) => p.net.capacity(),
            Inner::F64(p) => p.net.capacity(),
        }
    }

    /// ``"float32"`` or ``"float64"``.
    #[getter]
    fn dtype(&self) -> &'static str {
        dt_str(self.dtype)
    }

    /// Names of the optimizer state arrays passed per parameter, in order.
    #[getter]
    fn state_names(&self) -> Vec<&'static str> {
        let opt = match &self.inner {
            Inner::F32(p) => p.meta.opt,
            Inner::F64(p) => p.meta.opt,
        };
        opt.map(|o| o.state_names()).unwrap_or_default()
    }

    /// Shapes of the parameters, in order.
    #[getter]
    fn param_shapes(&self) -> Vec<Vec<usize>> {
        match &self.inner {
            Inner::F32(p) => p.meta.shapes.clone(),
            Inner::F64(p) => p.meta.shapes.clone(),
        }
    }

    /// Widths of the uniform matrices a step takes (one per dropout layer with rate > 0).
    #[getter]
    fn uniform_widths(&self) -> Vec<usize> {
        match &self.inner {
            Inner::F32(p) => p.meta.uniform_widths.clone(),
            Inner::F64(p) => p.meta.uniform_widths.clone(),
        }
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<TrainPlan>()
}
