//! Bindings of `kernels::activation`: elementwise activations (any shape), the softmax family
//! (2-D, along the last axis), PReLU and maxout.
//!
//! Inputs that are not C-contiguous are copied once to C order; `out=` arrays must be
//! C-contiguous and may not overlap an input (rust-numpy's borrow check makes that a
//! `ValueError` naming 'out'). Everything is validated before anything is written.

use super::array::{
    self, by_dtype, c_order, check_ndim, check_shape, readonly, readwrite, same_dtype, shape_err, tuple, uninit,
};
use crate::kernels::activation::{self as k, Act};
use crate::kernels::vmath::VMath;
use crate::kernels::ShapeError;
use numpy::{Element, PyArrayDyn, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyString};
use pyo3::Borrowed;

/// The element types the kernels are instantiated for.
pub(super) trait Float: VMath + Element {}
impl Float for f32 {}
impl Float for f64 {}

/// An `activation=` argument as passed: the name, or (for a non-str) a description of the
/// object, reported as a `TypeError` naming 'activation' by `parse_act`.
pub(super) struct ActName(Result<String, String>);

impl ActName {
    /// The default of `dense_forward`/`dense_backward`.
    pub(super) fn identity() -> Self {
        ActName(Ok("identity".into()))
    }
}

impl<'a, 'py> FromPyObject<'a, 'py> for ActName {
    type Error = PyErr;
    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        let obj: &Bound<'py, PyAny> = &obj;
        Ok(ActName(match obj.cast::<PyString>() {
            Ok(s) => Ok(s.to_cow()?.into_owned()),
            Err(_) => Err(array::describe(obj)),
        }))
    }
}

/// Parses `activation`/`alpha`: a non-str name or a non-number alpha is a `TypeError`, an
/// unknown name or a bad alpha a `ValueError`, each naming the argument.
pub(super) fn parse_act<T: Float>(
    fname: &str,
    activation: &ActName,
    alpha: Option<&Bound<'_, PyAny>>,
) -> PyResult<Act<T>> {
    let name = activation
        .0
        .as_ref()
        .map_err(|what| PyTypeError::new_err(format!("{fname}: argument 'activation' must be a str, got {what}")))?;
    let alpha = match alpha {
        None => None,
        Some(a) => Some(
            a.cast::<PyBool>()
                .is_err()
                .then(|| a.extract::<f64>().ok())
                .flatten()
                .ok_or_else(|| {
                    PyTypeError::new_err(format!(
                        "{fname}: argument 'alpha' must be a float, got {}",
                        array::describe(a)
                    ))
                })?,
        ),
    };
    Act::<T>::parse(name, alpha).map_err(|e| PyValueError::new_err(format!("{fname}: {e}")))
}

/// `k` of maxout: an int (not a bool) `>= 1`.
fn check_k(fname: &str, k: &Bound<'_, PyAny>) -> PyResult<usize> {
    let v = k
        .cast::<PyBool>()
        .is_err()
        .then(|| k.extract::<i64>().ok())
        .flatten()
        .ok_or_else(|| {
            PyTypeError::new_err(format!(
                "{fname}: argument 'k' must be an int, got {}",
                array::describe(k)
            ))
        })?;
    if v < 1 {
        return Err(PyValueError::new_err(format!(
            "{fname}: argument 'k' must be >= 1, got {v}"
        )));
    }
    Ok(v as usize)
}

/// Runs `kernel(out)` without the GIL on `out` (validated: C-contiguous, `shape`, not
/// overlapping an input) or on a new array of `shape`, and returns the array written.
fn into_output<'py, T: Float>(
    py: Python<'py>,
    fname: &str,
    out: Option<&Bound<'py, PyAny>>,
    shape: &[usize],
    context: &str,
    kernel: impl FnOnce(&mut [T]) -> Result<(), ShapeError> + Send,
) -> PyResult<Py<PyAny>> {
    match out {
        Some(o) => {
            let mut w = readwrite::<T>(fname, "out", o)?;
            check_shape(fname, "out", w.shape(), shape, context)?;
            let s = array::c_slice_mut(fname, "out", &mut w)?;
            py.detach(|| kernel(s)).map_err(|e| shape_err(fname, e))?;
            Ok(o.clone().unbind())
        }
        None => {
            let arr = uninit::<T>(py, fname, "an output", shape)?;
            {
                let mut w = arr.readwrite();
                let s = w.as_slice_mut().expect("a new array is contiguous");
                py.detach(|| kernel(s)).map_err(|e| shape_err(fname, e))?;
            }
            Ok(arr.into_any().unbind())
        }
    }
}

/// `ValueError` unless `got` equals the shape of `ref_arg`.
fn same_shape(fname: &str, arg: &str, got: &[usize], want: &[usize], ref_arg: &str) -> PyResult<()> {
    check_shape(fname, arg, got, want, &format!("the shape of '{ref_arg}'"))
}

/// `(rows, cols)` of a 2-D shape.
fn dims2(s: &[usize]) -> (usize, usize) {
    (s[0], s[1])
}

// --- elementwise --------------------------------------------------------------------------

fn forward_run<'py, T: Float>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    activation: &ActName,
    alpha: Option<&Bound<'py, PyAny>>,
    out: Option<&Bound<'py, PyAny>>,
) -> PyResult<Py<PyAny>> {
    const F: &str = "activation_forward";
    let act = parse_act::<T>(F, activation, alpha)?;
    let rx = readonly::<T>(F, "x", x)?;
    let shape = rx.shape().to_vec();
    let xs = c_order(F, &rx)?;
    into_output::<T>(py, F, out, &shape, "the shape of 'x'", |y| k::act_forward(act, &xs, y))
}

/// ``y = f(x)`` elementwise for any shape; see ``initcore.reference.activation`` for the
/// table of activations. ``out`` (C-contiguous, ``x``'s shape and dtype) receives ``y``.
#[pyfunction]
#[pyo3(signature = (x, activation, alpha=None, out=None))]
fn activation_forward<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    activation: ActName,
    alpha: Option<&Bound<'py, PyAny>>,
    out: Option<&Bound<'py, PyAny>>,
) -> PyResult<Py<PyAny>> {
    by_dtype!(same_dtype("activation_forward", &[("x", Some(x)), ("out", out)])? => forward_run(py, x, &activation, alpha, out))
}

#[allow(clippy::too_many_arguments)]
fn backward_run<'py, T: Float>(
    py: Python<'py>,
    dy: &Bound<'py, PyAny>,
    x: &Bound<'py, PyAny>,
    y: &Bound<'py, PyAny>,
    activation: &ActName,
    alpha: Option<&Bound<'py, PyAny>>,
    out: Option<&Bound<'py, PyAny>>,
) -> PyResult<Py<PyAny>> {
    const F: &str = "activation_backward";
    let act = parse_act::<T>(F, activation, alpha)?;
    let (rdy, rx, ry) = (
        readonly::<T>(F, "dy", dy)?,
        readonly::<T>(F, "x", x)?,
        readonly::<T>(F, "y", y)?,
    );
    let shape = rdy.shape().to_vec();
    same_shape(F, "x", rx.shape(), &shape, "dy")?;
    same_shape(F, "y", ry.shape(), &shape, "dy")?;
    let (gs, xs, ys) = (c_order(F, &rdy)?, c_order(F, &rx)?, c_order(F, &ry)?);
    into_output::<T>(py, F, out, &shape, "the shape of 'dy'", |dx| {
        k::act_backward(act, &gs, &xs, &ys, dx)
    })
}

/// ``dx = dy · f'(x)`` with ``y = f(x)`` from the forward (sigmoid, tanh, elu and selu read
/// ``y``; nothing transcendental is recomputed).
#[pyfunction]
#[pyo3(signature = (dy, x, y, activation, alpha=None, out=None))]
#[allow(clippy::too_many_arguments)]
fn activation_backward<'py>(
    py: Python<'py>,
    dy: &Bound<'py, PyAny>,
    x: &Bound<'py, PyAny>,
    y: &Bound<'py, PyAny>,
    activation: ActName,
    alpha: Option<&Bound<'py, PyAny>>,
    out: Option<&Bound<'py, PyAny>>,
) -> PyResult<Py<PyAny>> {
    by_dtype!(same_dtype("activation_backward", &[("dy", Some(dy)), ("x", Some(x)), ("y", Some(y)), ("out", out)])? => backward_run(py, dy, x, y, &activation, alpha, out))
}

// --- softmax family -----------------------------------------------------------------------

type RowKernel<T> = fn(&[T], usize, usize, &mut [T]) -> Result<(), ShapeError>;
type RowBackward<T> = fn(&[T], &[T], usize, usize, &mut [T]) -> Result<(), ShapeError>;

fn rows_forward_run<'py, T: Float>(
    py: Python<'py>,
    fname: &str,
    kernel: RowKernel<T>,
    x: &Bound<'py, PyAny>,
    out: Option<&Bound<'py, PyAny>>,
) -> PyResult<Py<PyAny>> {
    let rx = readonly::<T>(fname, "x", x)?;
    let shape = rx.shape().to_vec();
    check_ndim(fname, "x", &shape, &[2])?;
    let (n, m) = dims2(&shape);
    let xs = c_order(fname, &rx)?;
    into_output::<T>(py, fname, out, &shape, "the shape of 'x'", |y| kernel(&xs, n, m, y))
}

fn rows_backward_run<'py, T: Float>(
    py: Python<'py>,
    fname: &str,
    kernel: RowBackward<T>,
    dy: &Bound<'py, PyAny>,
    y: &Bound<'py, PyAny>,
) -> PyResult<Py<PyAny>> {
    let (rdy, ry) = (readonly::<T>(fname, "dy", dy)?, readonly::<T>(fname, "y", y)?);
    let shape = rdy.shape().to_vec();
    check_ndim(fname, "dy", &shape, &[2])?;
    same_shape(fname, "y", ry.shape(), &shape, "dy")?;
    let (n, m) = dims2(&shape);
    let (gs, ys) = (c_order(fname, &rdy)?, c_order(fname, &ry)?);
    into_output::<T>(py, fname, None, &shape, "", |dx| kernel(&gs, &ys, n, m, dx))
}

/// ``y_ij = e^(x_ij − max_k x_ik) / Σ_k e^(x_ik − max_k x_ik)`` for a 2-D ``x``.
#[pyfunction]
#[pyo3(signature = (x, out=None))]
fn softmax<'py>(py: Python<'py>, x: &Bound<'py, PyAny>, out: Option<&Bound<'py, PyAny>>) -> PyResult<Py<PyAny>> {
    const F: &str = "softmax";
    by_dtype!(same_dtype(F, &[("x", Some(x)), ("out", out)])? => rows_forward_run(py, F, k::softmax, x, out))
}

/// ``dx = y ⊙ (dy − Σ_j dy_j y_j)`` with ``y = softmax(x)``.
#[pyfunction]
fn softmax_backward<'py>(py: Python<'py>, dy: &Bound<'py, PyAny>, y: &Bound<'py, PyAny>) -> PyResult<Py<PyAny>> {
    const F: &str = "softmax_backward";
    by_dtype!(same_dtype(F, &[("dy", Some(dy)), ("y", Some(y))])? => rows_backward_run(py, F, k::softmax_backward, dy, y))
}

/// ``y_ij = x_ij − m_i − log Σ_k e^(x_ik − m_i)`` with ``m_i = max_k x_ik``.
#[pyfunction]
#[pyo3(signature = (x, out=None))]
fn log_softmax<'py>(py: Python<'py>, x: &Bound<'py, PyAny>, out: Option<&Bound<'py, PyAny>>) -> PyResult<Py<PyAny>> {
    const F: &str = "log_softmax";
    by_dtype!(same_dtype(F, &[("x", Some(x)), ("out", out)])? => rows_forward_run(py, F, k::log_softmax, x, out))
}

/// ``dx = dy − e^y Σ_j dy_j`` with ``y = log_softmax(x)``.
#[pyfunction]
fn log_softmax_backward<'py>(py: Python<'py>, dy: &Bound<'py, PyAny>, y: &Bound<'py, PyAny>) -> PyResult<Py<PyAny>> {
    const F: &str = "log_softmax_backward";
    by_dtype!(same_dtype(F, &[("dy", Some(dy)), ("y", Some(y))])? => rows_backward_run(py, F, k::log_softmax_backward, dy, y))
}

// --- PReLU ----------------------------------------------------------------------------------

/// Checks `x (n, m)` and `slope (m,)`; returns `(n, m)`.
fn prelu_shapes(fname: &str, xs: &[usize], ss: &[usize]) -> PyResult<(usize, usize)> {
    check_ndim(fname, "x", xs, &[2])?;
    check_shape(fname, "slope", ss, &[xs[1]], "one slope per column of 'x'")?;
    Ok(dims2(xs))
}

fn prelu_forward_run<'py, T: Float>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    slope: &Bound<'py, PyAny>,
) -> PyResult<Py<PyAny>> {
    const F: &str = "prelu_forward";
    let (rx, rs) = (readonly::<T>(F, "x", x)?, readonly::<T>(F, "slope", slope)?);
    let shape = rx.shape().to_vec();
    let (n, m) = prelu_shapes(F, &shape, rs.shape())?;
    let (xs, ss) = (c_order(F, &rx)?, c_order(F, &rs)?);
    into_output::<T>(py, F, None, &shape, "", |y| k::prelu_forward(&xs, &ss, n, m, y))
}

/// ``y = x if x > 0 else slope·x`` for ``x (n, m)`` and one slope per column ``(m,)``.
#[pyfunction]
fn prelu_forward<'py>(py: Python<'py>, x: &Bound<'py, PyAny>, slope: &Bound<'py, PyAny>) -> PyResult<Py<PyAny>> {
    by_dtype!(same_dtype("prelu_forward", &[("x", Some(x)), ("slope", Some(slope))])? => prelu_forward_run(py, x, slope))
}

fn prelu_backward_run<'py, T: Float>(
    py: Python<'py>,
    dy: &Bound<'py, PyAny>,
    x: &Bound<'py, PyAny>,
    slope: &Bound<'py, PyAny>,
) -> PyResult<(Py<PyAny>, Py<PyAny>)> {
    const F: &str = "prelu_backward";
    let (rdy, rx, rs) = (
        readonly::<T>(F, "dy", dy)?,
        readonly::<T>(F, "x", x)?,
        readonly::<T>(F, "slope", slope)?,
    );
    let shape = rx.shape().to_vec();
    let (n, m) = prelu_shapes(F, &shape, rs.shape())?;
    same_shape(F, "dy", rdy.shape(), &shape, "x")?;
    let (gs, xs, ss) = (c_order(F, &rdy)?, c_order(F, &rx)?, c_order(F, &rs)?);
    let (dx, ds) = (
        uninit::<T>(py, F, "an output", &shape)?,
        uninit::<T>(py, F, "an output", &[m])?,
    );
    {
        let (mut wdx, mut wds) = (dx.readwrite(), ds.readwrite());
        let (dxs, dss) = (wdx.as_slice_mut().expect("new"), wds.as_slice_mut().expect("new"));
        let mut ws = array::alloc_vec(F, "the workspace", k::prelu::prelu_workspace_len(n, m), T::zero())?;
        py.detach(|| k::prelu_backward(&gs, &xs, &ss, n, m, dxs, &mut ws, dss))
            .map_err(|e| shape_err(F, e))?;
    }
    Ok((dx.into_any().unbind(), ds.into_any().unbind()))
}

/// Returns ``(dx, dslope)``: ``dx = dy if x > 0 else slope·dy``,
/// ``dslope_j = Σ_i dy_ij·x_ij·[x_ij ≤ 0]`` (deterministic for any thread count).
#[pyfunction]
fn prelu_backward<'py>(
    py: Python<'py>,
    dy: &Bound<'py, PyAny>,
    x: &Bound<'py, PyAny>,
    slope: &Bound<'py, PyAny>,
) -> PyResult<(Py<PyAny>, Py<PyAny>)> {
    by_dtype!(same_dtype("prelu_backward", &[("dy", Some(dy)), ("x", Some(x)), ("slope", Some(slope))])? => prelu_backward_run(py, dy, x, slope))
}

// --- maxout ---------------------------------------------------------------------------------

fn maxout_forward_run<'py, T: Float>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    kk: usize,
) -> PyResult<(Py<PyAny>, Py<PyAny>)> {
    const F: &str = "maxout_forward";
    let rx = readonly::<T>(F, "x", x)?;
    let shape = rx.shape().to_vec();
    check_ndim(F, "x", &shape, &[2])?;
    let (n, c) = dims2(&shape);
    if c % kk != 0 {
        return Err(PyValueError::new_err(format!(
            "{F}: argument 'k' = {kk} does not divide the {c} columns of 'x' (shape {})",
            tuple(&shape)
        )));
    }
    let m = c / kk;
    let xs = c_order(F, &rx)?;
    let (y, arg) = (
        uninit::<T>(py, F, "an output", &[n, m])?,
        uninit::<i64>(py, F, "an output", &[n, m])?,
    );
    {
        let (mut wy, mut wa) = (y.readwrite(), arg.readwrite());
        let (ys, args) = (wy.as_slice_mut().expect("new"), wa.as_slice_mut().expect("new"));
        py.detach(|| k::maxout_forward(&xs, n, m, kk, ys, args))
            .map_err(|e| shape_err(F, e))?;
    }
    Ok((y.into_any().unbind(), arg.into_any().unbind()))
}

/// ``x (n, m·k)`` → ``(y (n, m), argmax (n, m) int64)`` with ``y_ij = max_{p<k} x_{i, j·k+p}``
/// (first maximum wins; a NaN counts as the maximum, as in ``np.argmax``).
#[pyfunction]
fn maxout_forward<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    k: &Bound<'py, PyAny>,
) -> PyResult<(Py<PyAny>, Py<PyAny>)> {
    const F: &str = "maxout_forward";
    let dt = array::float_dtype(F, "x", x)?;
    let kk = check_k(F, k)?;
    by_dtype!(dt => maxout_forward_run(py, x, kk))
}

fn maxout_backward_run<'py, T: Float>(
    py: Python<'py>,
    dy: &Bound<'py, PyAny>,
    argmax: &Bound<'py, PyAny>,
    kk: usize,
) -> PyResult<Py<PyAny>> {
    const F: &str = "maxout_backward";
    let rdy = readonly::<T>(F, "dy", dy)?;
    let ra = argmax.cast::<PyArrayDyn<i64>>().map_err(|_| {
        PyTypeError::new_err(format!(
            "{F}: argument 'argmax' must be an int64 numpy.ndarray, got {}",
            array::describe(argmax)
        ))
    })?;
    let ra = ra
        .try_readonly()
        .map_err(|e| PyValueError::new_err(format!("{F}: argument 'argmax' cannot be borrowed for reading ({e})")))?;
    let shape = rdy.shape().to_vec();
    check_ndim(F, "dy", &shape, &[2])?;
    same_shape(F, "argmax", ra.shape(), &shape, "dy")?;
    let (n, m) = dims2(&shape);
    let args = c_order(F, &ra)?;
    if let Some(bad) = args.iter().find(|&&a| a < 0 || a >= kk as i64) {
        return Err(PyValueError::new_err(format!(
            "{F}: argument 'argmax' has a value outside [0, {kk}): {bad}"
        )));
    }
    let gs = c_order(F, &rdy)?;
    let cols = m.checked_mul(kk).ok_or_else(|| {
        PyValueError::new_err(format!(
            "{F}: the output would have {m}·k = {m}·{kk} columns, more than this machine can address"
        ))
    })?;
    array::numel(F, "the output", &[n, cols])?;
    into_output::<T>(py, F, None, &[n, cols], "", |dx| {
        k::maxout_backward(&gs, &args, n, m, kk, dx)
    })
}

/// Routes ``dy (n, m)`` to the arg-max column of each group of ``k``: ``dx (n, m·k)``.
#[pyfunction]
fn maxout_backward<'py>(
    py: Python<'py>,
    dy: &Bound<'py, PyAny>,
    argmax: &Bound<'py, PyAny>,
    k: &Bound<'py, PyAny>,
) -> PyResult<Py<PyAny>> {
    const F: &str = "maxout_backward";
    let dt = array::float_dtype(F, "dy", dy)?;
    let kk = check_k(F, k)?;
    by_dtype!(dt => maxout_backward_run(py, dy, argmax, kk))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(activation_forward, m)?)?;
    m.add_function(wrap_pyfunction!(activation_backward, m)?)?;
    m.add_function(wrap_pyfunction!(softmax, m)?)?;
    m.add_function(wrap_pyfunction!(softmax_backward, m)?)?;
    m.add_function(wrap_pyfunction!(log_softmax, m)?)?;
    m.add_function(wrap_pyfunction!(log_softmax_backward, m)?)?;
    m.add_function(wrap_pyfunction!(prelu_forward, m)?)?;
    m.add_function(wrap_pyfunction!(prelu_backward, m)?)?;
    m.add_function(wrap_pyfunction!(maxout_forward, m)?)?;
    m.add_function(wrap_pyfunction!(maxout_backward, m)?)?;
    Ok(())
}
