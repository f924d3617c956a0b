//! `FusedPlan`: a whole network's training step, prediction and evaluation, one call each
//! (see `kernels::fused::network` and `kernels::fused::step`). Built once from a plain description of the
//! layers (`python/initcore/fused.py` makes it from a `Sequential`), it owns only workspaces;
//! parameters, gradients, optimizer states and BatchNorm buffers are the caller's NumPy arrays,
//! passed to every call as tuples and updated in place.
//!
//! Per-call cost matters, so the array arguments are checked on their C structs and used as
//! unchecked slices: `fused_args.rs` has the checks and the safety argument.

#[path = "fused_args.rs"]
mod args;
#[path = "fused_spec.rs"]
mod spec;

use super::array::{check_shape, dt_str, readonly, shape_err, Dt};
use crate::kernels::clip::Clip;
use crate::kernels::fused::epoch::{train_epoch, EpochArgs, EpochWs, Progress};
use crate::kernels::fused::network::{LayerKind, Network};
use crate::kernels::fused::step::{
    evaluate, evaluate_with_metrics, train_step, Extras, Loss, MetricSums, Optimizer, State,
};
use crate::kernels::losses::LossFn;
use crate::kernels::vmath::VMath;
use args::{check_overlaps, slice, slice_mut, target_of, Arg, Guard, Meta, Slots, StepArgs};
use numpy::{Element, PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};
use spec::{layer_spec, optimizer_of};
use std::time::{Duration, Instant};
#[path = "fused_plan.rs"]
mod fused_plan;
use fused_plan::{reserve, EpochCall, Plan};

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
#[pyclass(module = "initcore._core", name = "FusedPlan")]
pub struct FusedPlan {
    inner: Inner,
    dtype: Dt,
}

#[allow(clippy::too_many_arguments)]
fn build<T: VMath + Element>(
    f: &str,
    layers: &Bound<'_, PyAny>,
    input_dim: usize,
    capacity: usize,
    opt: Option<Optimizer>,
    loss: Option<Loss>,
    param_names: Vec<String>,
    (loss_fn, clip, per_param): (Option<LossFn>, Clip, Vec<(Optimizer, f64)>),
) -> PyResult<Plan<T>> {
    let mut specs = Vec::new();
    for (i, item) in layers.try_iter()?.enumerate() {
        specs.push(layer_spec::<T>(f, i, &item?)?);
    }
    let net = Network::new(input_dim, specs, capacity).map_err(|e| shape_err(f, e))?;
    let shapes = net.param_shapes().to_vec();
    if !param_names.is_empty() && param_names.len() != shapes.len() {
        return Err(PyValueError::new_err(format!(
            "{f}: {} parameter names given, the layers have {} parameters",
            param_names.len(),
            shapes.len()
        )));
    }
    if !per_param.is_empty() && per_param.len() != shapes.len() {
        return Err(PyValueError::new_err(format!(
            "{f}: {} param_optimizers given, the layers have {} parameters",
            per_param.len(),
            shapes.len()
        )));
    }
    let state_of = (0..shapes.len())
        .flat_map(|i| {
            let o = per_param.get(i).map(|(o, _)| *o).or(opt);
            o.map(|o| o.state_names())
                .unwrap_or_default()
                .into_iter()
                .map(move |k| (i, k))
        })
        .collect();
    let meta = Meta {
        opt,
        loss,
        loss_fn,
        clip,
        per_param,
        param_names,
        buffer_lens: net.buffer_lens().to_vec(),
        uniform_widths: net.uniform_widths().to_vec(),
        state_of,
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
impl FusedPlan {
    /// ``FusedPlan(layers, input_dim, dtype, capacity=1, optimizer=None, loss=None,
    /// param_names=())``. ``layers``: tuples ``("dense", in, out, use_bias, activation, alpha)``,
    /// ``("batch_norm", m, momentum, eps)``, ``("activation", m, name, alpha)`` (``name`` may
    /// be ``"softmax"``/``"log_softmax"``), ``("prelu", m)``, ``("maxout", in, k)``,
    /// ``("dropout", m, rate)``, ``("alpha_dropout", m, rate, a, b, alpha_p)``. ``optimizer``:
    /// ``(kind, hyper)`` as ``initcore.optim`` has them. ``loss``: ``"cross_entropy"``,
    /// ``"binary_cross_entropy"``, ``"mse"``, ``"mae"`` or ``"huber"``, with
    /// ``label_smoothing`` (cross-entropy) and ``delta`` (Huber). ``clip``: the optimizer's
    /// gradient clipping ``(mode, threshold)`` (``initcore.ops.clip_gradients``' modes).
    #[new]
    /// ``param_optimizers``: parameter groups, one ``(hyper, lr_ratio)`` per parameter (the
    /// optimizer's kind; ``kernels::fused::step::Extras``).
    #[pyo3(signature = (layers, input_dim, dtype, capacity=1, optimizer=None, loss=None, param_names=Vec::new(), label_smoothing=0.0, delta=1.0, clip=None, param_optimizers=None))]
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        layers: &Bound<'_, PyAny>,
        input_dim: usize,
        dtype: &str,
        capacity: usize,
        optimizer: Option<(String, Bound<'_, PyDict>)>,
        loss: Option<&str>,
        param_names: Vec<String>,
        label_smoothing: f64,
        delta: f64,
        clip: Option<(String, f64)>,
        param_optimizers: Option<Vec<(Bound<'_, PyDict>, f64)>>,
    ) -> PyResult<Self> {
        const F: &str = "FusedPlan";
        let opt = match &optimizer {
            Some((kind, hyper)) => Some(optimizer_of(F, kind, hyper)?),
            None => None,
        };
        let mut per_param = Vec::new();
        // Groups may keep other state arrays than the optimizer's (FusedPlan.param_state_names).
        if let (Some(list), Some((kind, _)), Some(_)) = (&param_optimizers, &optimizer, opt) {
            for (i, (hyper, ratio)) in list.iter().enumerate() {
                let p = optimizer_of(F, kind, hyper)?;
                if !(ratio.is_finite() && *ratio >= 0.0) {
                    return Err(PyValueError::new_err(format!(
                        "{F}: param_optimizers[{i}] has the learning-rate ratio {ratio}"
                    )));
                }
                per_param.push((p, *ratio));
            }
        }
        let bad_loss = |l: &str| {
            PyValueError::new_err(format!(
                "{F}: argument 'loss' must be cross_entropy, binary_cross_entropy, mse, mae or huber, got '{l}'"
            ))
        };
        // mae and huber take float targets as mse does; their kernel is the weighted one.
        let (loss, loss_fn) = match loss {
            Some(l) => {
                let f = LossFn::parse(l, label_smoothing, delta).ok_or_else(|| bad_loss(l))?;
                f.validate().map_err(|e| shape_err(F, e))?;
                let kind = Loss::parse(l).unwrap_or(Loss::Mse);
                let plain = matches!(f, LossFn::CrossEntropy { label_smoothing } if label_smoothing == 0.0)
                    || matches!(f, LossFn::BinaryCrossEntropy | LossFn::Mse);
                (Some(kind), if plain { None } else { Some(f) })
            }
            None => (None, None),
        };
        let clip = match &clip {
            Some((mode, t)) => Clip::parse(mode, *t)
                .ok_or_else(|| PyValueError::new_err(format!("{F}: argument 'clip' has an unknown mode '{mode}'")))?,
            None => Clip::None,
        };
        clip.validate().map_err(|e| shape_err(F, e))?;
        let extras = (loss_fn, clip, per_param);
        let (inner, dt) = match dtype {
            "float32" => (
                Inner::F32(build(F, layers, input_dim, capacity, opt, loss, param_names, extras)?),
                Dt::F32,
            ),
            "float64" => (
                Inner::F64(build(F, layers, input_dim, capacity, opt, loss, param_names, extras)?),
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
    /// ``sample_weight (n,)``: per-sample weights of the loss (``kernels::losses::weighted_loss``).
    /// ``param_lrs``: with parameter groups, every parameter's learning rate (its group's).
    /// ``momentum``: this step's momentum (SGD, RMSprop) or β₁ (Adam family) for every
    /// parameter instead of the plan's (a cycled momentum); it must keep the state arrays.
    #[pyo3(signature = (x, y, params, grads, states, buffers, uniforms, step, lr, out, mu_products=None, sample_weight=None, param_lrs=None, momentum=None))]
    #[allow(clippy::too_many_arguments)]
    pub(super) fn step(
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
        sample_weight: Option<&Bound<'_, PyAny>>,
        param_lrs: Option<Vec<f64>>,
        momentum: Option<f64>,
    ) -> PyResult<f64> {
        let a = StepArgs {
            params,
            grads,
            states,
            buffers,
            uniforms: Some(uniforms),
        };
        dispatch!(self, p => p.step(py, x, y, &a, step, lr, out, mu_products, sample_weight, (param_lrs, momentum)))
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
    /// ``sample_weight (rows,)``: per-sample weights of all rows, gathered with them.
    /// ``param_lrs``: with parameter groups and no ``lrs``, every parameter's learning rate.
    /// ``momentums``: one momentum / β₁ per step for every parameter (``step``'s ``momentum``).
    #[pyo3(signature = (x, y, order, batch_size, first, count, params, grads, states, buffers, uniforms, step, lr, out, progress, mu_products=None, lrs=None, max_seconds=0.0, loss_sum=0.0, sample_weight=None, param_lrs=None, momentums=None))]
    #[allow(clippy::too_many_arguments)]
    pub(super) fn epoch(
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
        sample_weight: Option<&Bound<'_, PyAny>>,
        param_lrs: Option<Vec<f64>>,
        momentums: Option<Vec<f64>>,
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
            weights: sample_weight,
            param_lrs,
            momentums,
        };
        dispatch!(self, p => p.epoch(py, &e, &a, mu_products, progress))
    }

    /// Evaluation-mode output of ``x`` into ``out (n, output_dim)``, in batches of
    /// ``batch_size`` rows.
    pub(super) fn predict(
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

    /// Evaluation-mode ``(summed loss, correct, count)`` over ``x``, ``y`` in batches; with
    /// ``top_k`` (a list of ``k``s), ``errors`` (mae/mse) or ``r2``, a fourth element: a dict of
    /// the metric sums (``kernels::fused::step::MetricSums``: ``top_k`` ``[(k, hits)]``, ``abs_sum``,
    /// ``sq_sum``, ``entries``, ``col_sum``, ``col_sq``, ``col_res``, ``rows``).
    /// ``loss`` may also be ``"mae"`` or ``"huber"``; ``label_smoothing``, ``delta`` and
    /// ``sample_weight (n,)`` make the summed loss the weighted kernel's ``Σ w_i·l_i``
    /// (``kernels::losses::weighted_loss``); ``y`` may be soft targets ``(n, C)`` for cross-entropy.
    #[pyo3(signature = (x, y, loss, batch_size, params, buffers, top_k=Vec::new(), errors=false, r2=false, label_smoothing=0.0, delta=1.0, sample_weight=None))]
    #[allow(clippy::too_many_arguments)]
    pub(super) fn evaluate<'py>(
        &mut self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        y: &Bound<'py, PyAny>,
        loss: &str,
        batch_size: usize,
        params: &Bound<'py, PyTuple>,
        buffers: &Bound<'py, PyTuple>,
        top_k: Vec<usize>,
        errors: bool,
        r2: bool,
        label_smoothing: f64,
        delta: f64,
        sample_weight: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let lf = LossFn::parse(loss, label_smoothing, delta)
            .ok_or_else(|| PyValueError::new_err(format!("FusedPlan.evaluate: unknown loss '{loss}'")))?;
        lf.validate().map_err(|e| shape_err("FusedPlan.evaluate", e))?;
        // mae and huber take float targets as mse does; the options need the weighted kernel.
        let l = Loss::parse(loss).unwrap_or(Loss::Mse);
        let plain = matches!(lf, LossFn::CrossEntropy { label_smoothing } if label_smoothing == 0.0)
            || matches!(lf, LossFn::BinaryCrossEntropy | LossFn::Mse);
        let lf = if plain { None } else { Some(lf) };
        if let Some(k) = top_k.iter().find(|&&k| k == 0) {
            return Err(PyValueError::new_err(format!(
                "FusedPlan.evaluate: top_k must hold positive ints, got {k}"
            )));
        }
        let empty = PyTuple::empty(py);
        let a = StepArgs {
            params,
            grads: &empty,
            states: &empty,
            buffers,
            uniforms: None,
        };
        let wanted = !top_k.is_empty() || errors || r2;
        let mut m = MetricSums {
            top_k: top_k.into_iter().map(|k| (k, 0)).collect(),
            errors,
            r2,
            ..MetricSums::default()
        };
        let (loss_sum, correct, count) =
            dispatch!(self, p => p.evaluate(py, x, y, (l, lf), sample_weight, batch_size.max(1), &a, &mut m))?;
        if !wanted {
            return PyTuple::new(
                py,
                [
                    loss_sum.into_pyobject(py)?.into_any(),
                    correct.into_pyobject(py)?.into_any(),
                    count.into_pyobject(py)?.into_any(),
                ],
            );
        }
        let d = PyDict::new(py);
        d.set_item("top_k", m.top_k)?;
        d.set_item("abs_sum", m.abs_sum)?;
        d.set_item("sq_sum", m.sq_sum)?;
        d.set_item("entries", m.entries)?;
        d.set_item("col_sum", m.col_sum)?;
        d.set_item("col_sq", m.col_sq)?;
        d.set_item("col_res", m.col_res)?;
        d.set_item("rows", m.rows)?;
        PyTuple::new(
            py,
            [
                loss_sum.into_pyobject(py)?.into_any(),
                correct.into_pyobject(py)?.into_any(),
                count.into_pyobject(py)?.into_any(),
                d.into_any(),
            ],
        )
    }

    /// Grows the workspaces to ``rows`` rows (a no-op if they hold as many).
    pub(super) fn reserve(&mut self, rows: usize) -> PyResult<()> {
        dispatch!(self, p => reserve("FusedPlan.reserve", &mut p.net, rows))
    }

    /// Rows the workspaces hold (the largest batch seen).
    #[getter]
    pub(super) fn capacity(&self) -> usize {
        match &self.inner {
            Inner::F32(p) => p.net.capacity(),
            Inner::F64(p) => p.net.capacity(),
        }
    }

    /// ``"float32"`` or ``"float64"``.
    #[getter]
    pub(super) fn dtype(&self) -> &'static str {
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

    /// Names of each parameter's optimizer state arrays, in the order ``states`` takes them
    /// (``state_names`` for every parameter, unless parameter groups keep other arrays).
    #[getter]
    fn param_state_names(&self) -> Vec<Vec<&'static str>> {
        let meta = match &self.inner {
            Inner::F32(p) => &p.meta,
            Inner::F64(p) => &p.meta,
        };
        let mut out = vec![Vec::new(); meta.shapes.len()];
        for &(i, k) in &meta.state_of {
            out[i].push(k);
        }
        out
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
    m.add_class::<FusedPlan>()
}
