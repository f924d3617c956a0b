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

use super::common::{dt_str, Dt};
use crate::kernels::activation::Act;
use crate::kernels::network::{LayerKind, LayerSpec, Network};
use crate::kernels::optim::{Adagrad, Adam, NAdam, RmsProp, Sgd};
use crate::kernels::train::{evaluate, train_step, Loss, Optimizer, State};
use crate::kernels::vmath::VMath;
use args::{check_overlaps, slice, slice_mut, target_of, value_err, Guard, Meta, Slots, StepArgs};
use numpy::Element;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

/// Grows `net`'s workspaces to `rows` rows, or raises `MemoryError` first. `Network::reserve`
/// allocates infallibly (a failure aborts the interpreter), so the bytes it will ask for are
/// bounded from above here (every per-layer buffer, the two gradient buffers and the scratch
/// space, per row) and asked for once, fallibly, before it runs: a batch far too large for the
/// machine is refused with its size instead of killing the process.
fn reserve<T: VMath>(f: &str, net: &mut Network<T>, rows: usize) -> PyResult<()> {
    if rows <= net.capacity() {
        return Ok(());
    }
    let t = std::mem::size_of::<T>();
    let (mut elems, mut idx, mut widest, mut f64s) = (0usize, 0usize, net.input_dim(), 0usize);
    for s in net.specs() {
        elems = elems.saturating_add(s.out.saturating_mul(2));
        widest = widest.max(s.inp).max(s.out);
        match s.kind {
            LayerKind::Maxout { .. } => idx = idx.saturating_add(s.out),
            LayerKind::BatchNorm { .. } => f64s = f64s.max(s.out.saturating_mul(2)),
            _ => {}
        }
    }
    elems = elems.saturating_add(widest.saturating_mul(3));
    let per_row = elems
        .saturating_mul(t)
        .saturating_add(idx.saturating_mul(8))
        .saturating_add(f64s.saturating_mul(8));
    let bytes = per_row.saturating_mul(rows);
    let what = format!("the workspaces for a batch of {rows} rows");
    if bytes > isize::MAX as usize {
        return Err(super::common::memory_err(f, &what, bytes));
    }
    let mut probe: Vec<u8> = Vec::new();
    probe
        .try_reserve_exact(bytes)
        .map_err(|_| super::common::memory_err(f, &what, bytes))?;
    drop(probe);
    net.reserve(rows);
    Ok(())
}

/// One dtype's plan.
struct Plan<T: 'static> {
    net: Network<T>,
    meta: Meta,
    slots: Slots<T>,
    /// NAdam's `mu_product` per parameter, copied from and back to the caller's list.
    mu: Vec<f64>,
}

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
        reserve(F, net, n)?;
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
        reserve(F, net, batch.min(n))?;
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
        reserve(F, net, batch.min(n))?;
        // SAFETY: as in `step`.
        let (xs, target) = unsafe { (slice::<T>(rx), target_of::<T>(ry, labels)) };
        let Slots { params, buffers, .. } = s;
        let ev = py
            .detach(|| evaluate(net, xs, n, batch, params, buffers, Some((loss, target)), None))
            .map_err(|e| value_err(F, e))?;
        Ok((ev.loss_sum, ev.correct, ev.count))
    }
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

fn act_of<T: VMath>(f: &str, name: &str, alpha: Option<f64>) -> PyResult<Act<T>> {
    Act::<T>::parse(name, alpha).map_err(|e| PyValueError::new_err(format!("{f}: {e}")))
}

fn layer_spec<T: VMath>(f: &str, i: usize, item: &Bound<'_, PyAny>) -> PyResult<LayerSpec<T>> {
    let t = item
        .cast::<PyTuple>()
        .map_err(|_| PyTypeError::new_err(format!("{f}: layers[{i}] must be a tuple")))?;
    let kind: String = t.get_item(0)?.extract()?;
    let bad = |e: PyErr| PyValueError::new_err(format!("{f}: layers[{i}] ({kind}): {e}"));
    let spec = match kind.as_str() {
        "dense" => {
            let (_, inp, out, bias, act, alpha): (String, usize, usize, bool, String, Option<f64>) =
                t.extract().map_err(bad)?;
            LayerSpec {
                kind: LayerKind::Dense {
                    bias,
                    act: act_of(f, &act, alpha)?,
                },
                inp,
                out,
            }
        }
        "batch_norm" => {
            let (_, m, momentum, eps): (String, usize, f64, f64) = t.extract().map_err(bad)?;
            LayerSpec {
                kind: LayerKind::BatchNorm { momentum, eps },
                inp: m,
                out: m,
            }
        }
        "activation" => {
            let (_, m, act, alpha): (String, usize, String, Option<f64>) = t.extract().map_err(bad)?;
            let kind = match act.as_str() {
                "softmax" => LayerKind::Softmax,
                "log_softmax" => LayerKind::LogSoftmax,
                _ => LayerKind::Activation(act_of(f, &act, alpha)?),
            };
            LayerSpec { kind, inp: m, out: m }
        }
        "prelu" => {
            let (_, m): (String, usize) = t.extract().map_err(bad)?;
            LayerSpec {
                kind: LayerKind::PRelu,
                inp: m,
                out: m,
            }
        }
        "maxout" => {
            let (_, inp, k): (String, usize, usize) = t.extract().map_err(bad)?;
            if k == 0 || inp % k != 0 {
                return Err(PyValueError::new_err(format!(
                    "{f}: layers[{i}] (maxout): k={k} does not divide {inp}"
                )));
            }
            LayerSpec {
                kind: LayerKind::Maxout { k },
                inp,
                out: inp / k,
            }
        }
        "dropout" => {
            let (_, m, rate): (String, usize, f64) = t.extract().map_err(bad)?;
            LayerSpec {
                kind: LayerKind::Dropout { rate },
                inp: m,
                out: m,
            }
        }
        "alpha_dropout" => {
            let (_, m, rate, a, b, alpha_p): (String, usize, f64, f64, f64, f64) = t.extract().map_err(bad)?;
            LayerSpec {
                kind: LayerKind::AlphaDropout { rate, a, b, alpha_p },
                inp: m,
                out: m,
            }
        }
        _ => {
            return Err(PyValueError::new_err(format!(
                "{f}: layers[{i}] has an unknown kind '{kind}'"
            )))
        }
    };
    Ok(spec)
}

/// `(kind, hyper)` → an optimizer; every key of `hyper` must be known and every needed one given.
fn optimizer_of(f: &str, kind: &str, hyper: &Bound<'_, PyDict>) -> PyResult<Optimizer> {
    let known: &[&str] = match kind {
        "sgd" => &["lr", "momentum", "dampening", "weight_decay", "nesterov", "maximize"],
        "adagrad" => &["lr", "lr_decay", "weight_decay", "eps", "maximize"],
        "rmsprop" => &["lr", "alpha", "eps", "weight_decay", "momentum", "centered", "maximize"],
        "adam" | "adamw" => &["lr", "beta1", "beta2", "eps", "weight_decay", "amsgrad", "maximize"],
        "nadam" => &[
            "lr",
            "beta1",
            "beta2",
            "eps",
            "weight_decay",
            "momentum_decay",
            "decoupled_weight_decay",
            "maximize",
        ],
        _ => return Err(PyValueError::new_err(format!("{f}: unknown optimizer kind '{kind}'"))),
    };
    for k in hyper.keys() {
        let k: String = k.extract()?;
        if !known.contains(&k.as_str()) {
            return Err(PyValueError::new_err(format!(
                "{f}: hyper-parameter '{k}' of {kind} is not supported"
            )));
        }
    }
    let num = |k: &str| -> PyResult<f64> {
        hyper
            .get_item(k)?
            .ok_or_else(|| PyValueError::new_err(format!("{f}: hyper-parameter '{k}' of {kind} is missing")))?
            .extract::<f64>()
    };
    let flag = |k: &str| -> PyResult<bool> {
        hyper
            .get_item(k)?
            .ok_or_else(|| PyValueError::new_err(format!("{f}: hyper-parameter '{k}' of {kind} is missing")))?
            .extract::<bool>()
    };
    let opt = match kind {
        "sgd" => Optimizer::Sgd(Sgd {
            lr: num("lr")?,
            momentum: num("momentum")?,
            dampening: num("dampening")?,
            weight_decay: num("weight_decay")?,
            nesterov: flag("nesterov")?,
            maximize: flag("maximize")?,
        }),
        "adagrad" => Optimizer::Adagrad(Adagrad {
            lr: num("lr")?,
            lr_decay: num("lr_decay")?,
            weight_decay: num("weight_decay")?,
            eps: num("eps")?,
            maximize: flag("maximize")?,
        }),
        "rmsprop" => Optimizer::RmsProp(RmsProp {
            lr: num("lr")?,
            alpha: num("alpha")?,
            eps: num("eps")?,
            weight_decay: num("weight_decay")?,
            momentum: num("momentum")?,
            centered: flag("centered")?,
            maximize: flag("maximize")?,
        }),
        "adam" | "adamw" => Optimizer::Adam(Adam {
            lr: num("lr")?,
            beta1: num("beta1")?,
            beta2: num("beta2")?,
            eps: num("eps")?,
            weight_decay: num("weight_decay")?,
            amsgrad: flag("amsgrad")?,
            decoupled_weight_decay: kind == "adamw",
            maximize: flag("maximize")?,
        }),
        _ => Optimizer::NAdam(NAdam {
            lr: num("lr")?,
            beta1: num("beta1")?,
            beta2: num("beta2")?,
            eps: num("eps")?,
            weight_decay: num("weight_decay")?,
            momentum_decay: num("momentum_decay")?,
            decoupled_weight_decay: flag("decoupled_weight_decay")?,
            maximize: flag("maximize")?,
        }),
    };
    opt.validate().map_err(|e| value_err(f, e))?;
    Ok(opt)
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
            uniforms,
        };
        dispatch!(self, p => p.step(py, x, y, &a, step, lr, out, mu_products))
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
            uniforms: &empty,
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
            uniforms: &empty,
        };
        dispatch!(self, p => p.evaluate(py, x, y, l, batch_size.max(1), &a))
    }

    /// Grows the workspaces to ``rows`` rows (a no-op if they hold as many).
    fn reserve(&mut self, rows: usize) -> PyResult<()> {
        dispatch!(self, p => reserve("TrainPlan.reserve", &mut p.net, rows))
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
