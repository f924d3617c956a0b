//! `TrainPlan`: a whole network's training step, prediction and evaluation, one call each
//! (see `kernels::network` and `kernels::train`). Built once from a plain description of the
//! layers (`python/initcore/fused.py` makes it from a `Sequential`), it owns only workspaces;
//! parameters, gradients, optimizer states and BatchNorm buffers are the caller's NumPy arrays,
//! passed to every call as tuples and updated in place.
//!
//! Per-call cost matters (a step of a small network takes microseconds), so arrays are not
//! borrowed through rust-numpy's borrow tracker. Instead every array is checked directly on its
//! C struct — dtype, C-contiguity, shape, writeability — and the writable ones must not overlap
//! each other or any input (sorted address ranges). Safety of the unchecked slices that follow:
//! - the arrays stay alive for the whole call: they are items of tuples (immutable) that the
//!   caller's frame holds, or arguments held by it;
//! - no two slices alias where one is written (the overlap check), and each slice covers
//!   exactly the array's contiguous data (C-contiguous, `len` elements of the checked dtype);
//! - the slices never outlive the call: they are kept in the plan's reusable slot vectors only
//!   between the checks and the return, and a drop guard empties those vectors on every exit,
//!   unwinding included;
//! - the GIL is released during the compute. Python code that mutates or resizes these same
//!   arrays from another thread meanwhile is unsupported (as in PyTorch): a data race.

use super::common::{dt_str, tuple, Dt};
use crate::kernels::activation::Act;
use crate::kernels::network::{LayerKind, LayerSpec, Network};
use crate::kernels::optim::{Adagrad, Adam, NAdam, RmsProp, Sgd};
use crate::kernels::train::{evaluate, train_step, Loss, Optimizer, State, Target};
use crate::kernels::vmath::VMath;
use crate::kernels::ShapeError;
use numpy::npyffi::{_PyArray_GET_ITEM_DATA, NPY_ARRAY_C_CONTIGUOUS, NPY_ARRAY_WRITEABLE};
use numpy::{Element, PyArrayDyn, PyUntypedArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

/// The caller's arrays of one call as slices (see the module documentation for why this is
/// sound). Emptied by `Guard` when the call returns.
struct Slots<T: 'static> {
    params: Vec<&'static mut [T]>,
    grads: Vec<&'static mut [T]>,
    states: Vec<&'static mut [T]>,
    buffers: Vec<&'static mut [T]>,
    uniforms: Vec<&'static [T]>,
    /// `(start, end, writable, argument)` byte ranges, for the overlap check.
    ranges: Vec<(usize, usize, bool, Arg)>,
}

/// An argument of a call, named only when a message needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Arg {
    X,
    Y,
    Out,
    Param(usize),
    Grad(usize),
    State(usize),
    Buffer(usize),
    Uniform(usize),
}

impl<T> Slots<T> {
    fn new() -> Self {
        Self { params: vec![], grads: vec![], states: vec![], buffers: vec![], uniforms: vec![], ranges: vec![] }
    }

    fn clear(&mut self) {
        self.params.clear();
        self.grads.clear();
        self.states.clear();
        self.buffers.clear();
        self.uniforms.clear();
        self.ranges.clear();
    }
}

/// Empties the slots on every exit from a call.
struct Guard<'a, T: 'static>(&'a mut Slots<T>);

impl<T> Drop for Guard<'_, T> {
    fn drop(&mut self) {
        self.0.clear();
    }
}

/// An array's data after the checks: address and element count.
#[derive(Clone, Copy)]
struct Raw {
    ptr: usize,
    len: usize,
}

/// Checks `obj` as a C-contiguous `E` array of shape `want` (with `free_rows`, any number of
/// rows: `want[0]` is ignored) and, with `writable`, a writeable one. Returns its data and its
/// first dimension. Nothing is allocated unless there is an error to report.
fn raw_array<E: Element>(
    f: &str,
    arg: &dyn Fn() -> String,
    obj: &Bound<'_, PyAny>,
    want: &[usize],
    free_rows: bool,
    writable: bool,
    dtype: &str,
) -> PyResult<(Raw, usize)> {
    let arr = obj.cast::<PyArrayDyn<E>>().map_err(|_| {
        PyTypeError::new_err(format!("{f}: argument '{}' must be a {dtype} numpy.ndarray, got {}", arg(), super::common::describe(obj)))
    })?;
    // SAFETY: `arr` is a live NumPy array (checked just above) and we hold the GIL.
    let fields = unsafe { &*_PyArray_GET_ITEM_DATA(arr.as_array_ptr()) };
    let s = arr.shape();
    let ok = s.len() == want.len() && s.iter().zip(want).enumerate().all(|(i, (&d, &w))| d == w || (free_rows && i == 0));
    if !ok {
        let w: Vec<String> = want.iter().enumerate().map(|(i, v)| if free_rows && i == 0 { "n".into() } else { v.to_string() }).collect();
        return Err(PyValueError::new_err(format!(
            "{f}: argument '{}' has shape {}, expected ({}{})",
            arg(),
            tuple(s),
            w.join(", "),
            if want.len() == 1 { "," } else { "" }
        )));
    }
    if fields.flags & NPY_ARRAY_C_CONTIGUOUS == 0 {
        return Err(PyValueError::new_err(format!("{f}: argument '{}' must be C-contiguous", arg())));
    }
    if writable && fields.flags & NPY_ARRAY_WRITEABLE == 0 {
        return Err(PyValueError::new_err(format!("{f}: argument '{}' is read-only but is written in place", arg())));
    }
    Ok((Raw { ptr: fields.data as usize, len: arr.len() }, s.first().copied().unwrap_or(1)))
}

/// Records an argument's byte range for the overlap check.
fn note<T>(slots: &mut Slots<T>, r: Raw, size: usize, writable: bool, arg: Arg) {
    if r.len > 0 {
        slots.ranges.push((r.ptr, r.ptr + r.len * size, writable, arg));
    }
}

/// `ValueError` if a written array overlaps any other argument.
fn check_overlaps<T>(f: &str, slots: &mut Slots<T>, meta: &Meta) -> PyResult<()> {
    slots.ranges.sort_unstable();
    for w in slots.ranges.windows(2) {
        let ((_, end0, w0, a0), (start1, _, w1, a1)) = (w[0], w[1]);
        if start1 < end0 && (w0 || w1) {
            return Err(PyValueError::new_err(format!(
                "{f}: arguments '{}' and '{}' share memory, and one of them is written in place",
                meta.arg_name(a0),
                meta.arg_name(a1)
            )));
        }
    }
    Ok(())
}

/// # Safety
/// `r` describes the live, C-contiguous data of an array of `T` that nothing else accesses
/// while the slice is used, and the slice is dropped before the call returns (module docs).
unsafe fn slice_mut<T>(r: Raw) -> &'static mut [T] {
    if r.len == 0 {
        return &mut [];
    }
    unsafe { std::slice::from_raw_parts_mut(r.ptr as *mut T, r.len) }
}

/// # Safety
/// As `slice_mut`, for data that is only read.
unsafe fn slice<T>(r: Raw) -> &'static [T] {
    if r.len == 0 {
        return &[];
    }
    unsafe { std::slice::from_raw_parts(r.ptr as *const T, r.len) }
}

fn value_err(f: &str, e: ShapeError) -> PyErr {
    PyValueError::new_err(format!("{f}: {e}"))
}

/// What a plan knows besides its workspaces: enough to check every argument.
struct Meta {
    opt: Option<Optimizer>,
    loss: Option<Loss>,
    param_names: Vec<String>,
    shapes: Vec<Vec<usize>>,
    buffer_lens: Vec<usize>,
    uniform_widths: Vec<usize>,
    state_names: Vec<&'static str>,
    input_dim: usize,
    output_dim: usize,
}

/// One dtype's plan.
struct Plan<T: 'static> {
    net: Network<T>,
    meta: Meta,
    slots: Slots<T>,
    /// NAdam's `mu_product` per parameter, copied from and back to the caller's list.
    mu: Vec<f64>,
}

/// The tuples of one call, as given.
struct StepArgs<'a, 'py> {
    params: &'a Bound<'py, PyTuple>,
    grads: &'a Bound<'py, PyTuple>,
    states: &'a Bound<'py, PyTuple>,
    buffers: &'a Bound<'py, PyTuple>,
    uniforms: &'a Bound<'py, PyTuple>,
}

fn check_count(f: &str, arg: &str, t: &Bound<'_, PyTuple>, want: usize) -> PyResult<()> {
    if t.len() != want {
        return Err(PyValueError::new_err(format!("{f}: argument '{arg}' has {} arrays, expected {want}", t.len())));
    }
    Ok(())
}

impl Meta {
    fn name(&self, i: usize) -> String {
        self.param_names.get(i).cloned().unwrap_or_else(|| format!("#{i}"))
    }

    /// The name of an argument, for a message (`params[1] (dense_0/bias)`).
    fn arg_name(&self, a: Arg) -> String {
        let ns = self.state_names.len().max(1);
        match a {
            Arg::X => "x".into(),
            Arg::Y => "y".into(),
            Arg::Out => "out".into(),
            Arg::Param(i) => format!("params[{i}] ({})", self.name(i)),
            Arg::Grad(i) => format!("grads[{i}] ({})", self.name(i)),
            Arg::State(i) => format!("states[{i}] ({}: {})", self.name(i / ns), self.state_names.get(i % ns).unwrap_or(&"?")),
            Arg::Buffer(i) => format!("buffers[{i}]"),
            Arg::Uniform(i) => format!("uniforms[{i}]"),
        }
    }

    /// Checks one array argument and records it; returns its data and first dimension.
    #[allow(clippy::too_many_arguments)]
    fn take<E: Element, T>(&self, f: &str, s: &mut Slots<T>, a: Arg, obj: &Bound<'_, PyAny>, want: &[usize], free_rows: bool, writable: bool) -> PyResult<(Raw, usize)> {
        let dtype = if std::any::type_name::<E>() == "i64" { "int64" } else { "same-dtype" };
        let (r, rows) = raw_array::<E>(f, &|| self.arg_name(a), obj, want, free_rows, writable, dtype)?;
        note(s, r, std::mem::size_of::<E>(), writable, a);
        Ok((r, rows))
    }

    /// Checks `params` and `buffers` (writable in training) and, in training, `grads`,
    /// `states` and `uniforms`, filling the slots.
    fn take_state<T: VMath + Element>(&self, f: &str, s: &mut Slots<T>, a: &StepArgs<'_, '_>, train: bool, n: usize) -> PyResult<()> {
        let np = self.shapes.len();
        check_count(f, "params", a.params, np)?;
        check_count(f, "buffers", a.buffers, self.buffer_lens.len())?;
        for (i, obj) in a.params.iter_borrowed().enumerate() {
            let (r, _) = self.take::<T, T>(f, s, Arg::Param(i), &obj, &self.shapes[i], false, train)?;
            // SAFETY: checked above; see the module documentation.
            s.params.push(unsafe { slice_mut(r) });
        }
        for (i, obj) in a.buffers.iter_borrowed().enumerate() {
            let (r, _) = self.take::<T, T>(f, s, Arg::Buffer(i), &obj, &self.buffer_lens[i..=i], false, train)?;
            // SAFETY: as above.
            s.buffers.push(unsafe { slice_mut(r) });
        }
        if !train {
            return Ok(());
        }
        let opt = self.opt.ok_or_else(|| PyValueError::new_err(format!("{f}: this plan was built without an optimizer")))?;
        let ns = opt.n_states();
        check_count(f, "grads", a.grads, np)?;
        check_count(f, "states", a.states, np * ns)?;
        check_count(f, "uniforms", a.uniforms, self.uniform_widths.len())?;
        for (i, obj) in a.grads.iter_borrowed().enumerate() {
            let (r, _) = self.take::<T, T>(f, s, Arg::Grad(i), &obj, &self.shapes[i], false, true)?;
            // SAFETY: as above.
            s.grads.push(unsafe { slice_mut(r) });
        }
        for (i, obj) in a.states.iter_borrowed().enumerate() {
            let (r, _) = self.take::<T, T>(f, s, Arg::State(i), &obj, &self.shapes[i / ns], false, true)?;
            // SAFETY: as above.
            s.states.push(unsafe { slice_mut(r) });
        }
        for (i, obj) in a.uniforms.iter_borrowed().enumerate() {
            let (r, _) = self.take::<T, T>(f, s, Arg::Uniform(i), &obj, &[n, self.uniform_widths[i]], false, false)?;
            // SAFETY: as above (read only).
            s.uniforms.push(unsafe { slice(r) });
        }
        Ok(())
    }

    /// `x (n, input_dim)` of `T`; returns it and `n`.
    fn take_x<T: Element>(&self, f: &str, s: &mut Slots<T>, x: &Bound<'_, PyAny>) -> PyResult<(Raw, usize)> {
        self.take::<T, T>(f, s, Arg::X, x, &[0, self.input_dim], true, false)
    }

    /// The targets for `loss`: int64 labels `(n,)` or `T` values `(n, C)`; `true` for labels.
    fn take_target<T: Element>(&self, f: &str, s: &mut Slots<T>, loss: Loss, y: &Bound<'_, PyAny>, n: usize) -> PyResult<(Raw, bool)> {
        if loss == Loss::CrossEntropy {
            Ok((self.take::<i64, T>(f, s, Arg::Y, y, &[n], false, false)?.0, true))
        } else {
            Ok((self.take::<T, T>(f, s, Arg::Y, y, &[n, self.output_dim], false, false)?.0, false))
        }
    }

    /// `out (n, output_dim)`, written.
    fn take_out<T: Element>(&self, f: &str, s: &mut Slots<T>, out: &Bound<'_, PyAny>, n: usize) -> PyResult<Raw> {
        Ok(self.take::<T, T>(f, s, Arg::Out, out, &[n, self.output_dim], false, true)?.0)
    }
}

/// # Safety
/// As `slice`: `r` was checked as int64 labels or `T` targets (`labels` says which).
unsafe fn target_of<T>(r: Raw, labels: bool) -> Target<'static, T> {
    if labels {
        Target::Labels(unsafe { slice::<i64>(r) })
    } else {
        Target::Values(unsafe { slice::<T>(r) })
    }
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
        let Plan { net, meta, slots, mu: mu_vals } = self;
        let loss = meta.loss.ok_or_else(|| PyValueError::new_err(format!("{F}: this plan was built without a loss")))?;
        let opt = meta.opt.ok_or_else(|| PyValueError::new_err(format!("{F}: this plan was built without an optimizer")))?;
        let g = Guard(slots);
        let s = &mut *g.0;
        let (rx, n) = meta.take_x(F, s, x)?;
        let (ry, labels) = meta.take_target(F, s, loss, y, n)?;
        let ro = meta.take_out(F, s, out, n)?;
        meta.take_state(F, s, a, true, n)?;
        check_overlaps(F, s, meta)?;
        mu_vals.clear();
        if let Optimizer::NAdam(_) = opt {
            let list = mu.ok_or_else(|| PyValueError::new_err(format!("{F}: argument 'mu_products' is required for nadam")))?;
            for v in list.iter() {
                mu_vals.push(v.extract::<f64>()?);
            }
        }
        net.reserve(n);
        // SAFETY: checked above (shapes, dtypes, contiguity, overlaps); see the module docs.
        let (xs, outs, target) = unsafe { (slice::<T>(rx), slice_mut::<T>(ro), target_of::<T>(ry, labels)) };
        let Slots { params, grads, states, buffers, uniforms, .. } = s;
        let value = py
            .detach(|| {
                let st = State { params, grads, states, buffers, mu_products: &mut mu_vals[..] };
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

    fn predict(&mut self, py: Python<'_>, x: &Bound<'_, PyAny>, out: &Bound<'_, PyAny>, batch: usize, a: &StepArgs<'_, '_>) -> PyResult<()> {
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
        py.detach(|| evaluate(net, xs, n, batch, params, buffers, None, Some(outs))).map_err(|e| value_err(F, e))?;
        Ok(())
    }

    fn evaluate(&mut self, py: Python<'_>, x: &Bound<'_, PyAny>, y: &Bound<'_, PyAny>, loss: Loss, batch: usize, a: &StepArgs<'_, '_>) -> PyResult<(f64, usize, usize)> {
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
        let ev = py.detach(|| evaluate(net, xs, n, batch, params, buffers, Some((loss, target)), None)).map_err(|e| value_err(F, e))?;
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
    let t = item.cast::<PyTuple>().map_err(|_| PyTypeError::new_err(format!("{f}: layers[{i}] must be a tuple")))?;
    let kind: String = t.get_item(0)?.extract()?;
    let bad = |e: PyErr| PyValueError::new_err(format!("{f}: layers[{i}] ({kind}): {e}"));
    let spec = match kind.as_str() {
        "dense" => {
            let (_, inp, out, bias, act, alpha): (String, usize, usize, bool, String, Option<f64>) = t.extract().map_err(bad)?;
            LayerSpec { kind: LayerKind::Dense { bias, act: act_of(f, &act, alpha)? }, inp, out }
        }
        "batch_norm" => {
            let (_, m, momentum, eps): (String, usize, f64, f64) = t.extract().map_err(bad)?;
            LayerSpec { kind: LayerKind::BatchNorm { momentum, eps }, inp: m, out: m }
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
            LayerSpec { kind: LayerKind::PRelu, inp: m, out: m }
        }
        "maxout" => {
            let (_, inp, k): (String, usize, usize) = t.extract().map_err(bad)?;
            if k == 0 || inp % k != 0 {
                return Err(PyValueError::new_err(format!("{f}: layers[{i}] (maxout): k={k} does not divide {inp}")));
            }
            LayerSpec { kind: LayerKind::Maxout { k }, inp, out: inp / k }
        }
        "dropout" => {
            let (_, m, rate): (String, usize, f64) = t.extract().map_err(bad)?;
            LayerSpec { kind: LayerKind::Dropout { rate }, inp: m, out: m }
        }
        "alpha_dropout" => {
            let (_, m, rate, a, b, alpha_p): (String, usize, f64, f64, f64, f64) = t.extract().map_err(bad)?;
            LayerSpec { kind: LayerKind::AlphaDropout { rate, a, b, alpha_p }, inp: m, out: m }
        }
        _ => return Err(PyValueError::new_err(format!("{f}: layers[{i}] has an unknown kind '{kind}'"))),
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
        "nadam" => &["lr", "beta1", "beta2", "eps", "weight_decay", "momentum_decay", "decoupled_weight_decay", "maximize"],
        _ => return Err(PyValueError::new_err(format!("{f}: unknown optimizer kind '{kind}'"))),
    };
    for k in hyper.keys() {
        let k: String = k.extract()?;
        if !known.contains(&k.as_str()) {
            return Err(PyValueError::new_err(format!("{f}: hyper-parameter '{k}' of {kind} is not supported")));
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
    Ok(Plan { net, meta, slots: Slots::new(), mu: Vec::new() })
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
                PyValueError::new_err(format!("{F}: argument 'loss' must be cross_entropy, binary_cross_entropy or mse, got '{l}'"))
            })?),
            None => None,
        };
        let (inner, dt) = match dtype {
            "float32" => (Inner::F32(build(F, layers, input_dim, capacity, opt, loss, param_names)?), Dt::F32),
            "float64" => (Inner::F64(build(F, layers, input_dim, capacity, opt, loss, param_names)?), Dt::F64),
            _ => return Err(PyTypeError::new_err(format!("{F}: argument 'dtype' must be 'float32' or 'float64', got '{dtype}'"))),
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
        let a = StepArgs { params, grads, states, buffers, uniforms };
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
        let a = StepArgs { params, grads: &empty, states: &empty, buffers, uniforms: &empty };
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
        let l = Loss::parse(loss).ok_or_else(|| PyValueError::new_err(format!("TrainPlan.evaluate: unknown loss '{loss}'")))?;
        let empty = PyTuple::empty(py);
        let a = StepArgs { params, grads: &empty, states: &empty, buffers, uniforms: &empty };
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
