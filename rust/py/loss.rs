//! `cross_entropy`, `binary_cross_entropy`, `mse` (see `kernels::loss`): each returns
//! `(loss: float, grad: ndarray)`. Labels may be any integer dtype; inputs in any layout are
//! copied to C order when needed; the gradient is a new C-ordered array of the input's shape.

use super::batch_norm::{c_order, fresh, new_array};
use super::common::{check_ndim, check_shape, describe, readonly, same_dtype, shape_err, tuple, Dt};
use crate::kernels::loss::{self, Label, Reduction};
use crate::kernels::vmath::VMath;
use crate::kernels::Real;
use numpy::{Element, PyArrayDyn, PyArrayMethods, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

fn reduction(fname: &str, r: &str) -> PyResult<Reduction> {
    Reduction::parse(r).ok_or_else(|| {
        PyValueError::new_err(format!(
            "{fname}: argument 'reduction' must be 'mean' or 'sum', got {r:?}"
        ))
    })
}

const CE: &str = "cross_entropy";

fn ce_run<'py, T: VMath + Element, L: Label + Element>(
    py: Python<'py>,
    logits: &Bound<'py, PyAny>,
    labels: &Bound<'py, PyAny>,
    red: Reduction,
) -> PyResult<(f64, Py<PyAny>)> {
    let rz = readonly::<T>(CE, "logits", logits)?;
    check_ndim(CE, "logits", rz.shape(), &[2])?;
    let (n, c) = (rz.shape()[0], rz.shape()[1]);
    if n == 0 || c == 0 {
        return Err(PyValueError::new_err(format!(
            "{CE}: argument 'logits' is empty (shape {}); need n >= 1 rows and C >= 1 classes",
            tuple(rz.shape())
        )));
    }
    let rl = labels
        .cast::<PyArrayDyn<L>>()
        .map_err(|_| {
            PyTypeError::new_err(format!(
                "{CE}: argument 'labels' has an unexpected dtype: {}",
                describe(labels)
            ))
        })?
        .try_readonly()
        .map_err(|e| PyValueError::new_err(format!("{CE}: argument 'labels' cannot be borrowed ({e})")))?;
    check_shape(CE, "labels", rl.shape(), &[n], "one per row of logits")?;
    let (zs, ls) = (c_order(CE, &rz)?, c_order(CE, &rl)?);
    let g = new_array::<T>(py, CE, &[n, c])?;
    let loss = {
        let mut w = g.readwrite();
        let gs = fresh(&mut w);
        py.detach(|| loss::cross_entropy(&zs, n, c, &ls, red, gs))
            .map_err(|e| shape_err(CE, e))?
    };
    Ok((loss, g.into_any().unbind()))
}

fn ce_labels<'py, T: VMath + Element>(
    py: Python<'py>,
    logits: &Bound<'py, PyAny>,
    labels: &Bound<'py, PyAny>,
    red: Reduction,
) -> PyResult<(f64, Py<PyAny>)> {
    macro_rules! try_int {
        ($($t:ty),*) => {$(
            if labels.cast::<PyArrayDyn<$t>>().is_ok() {
                return ce_run::<T, $t>(py, logits, labels, red);
            }
        )*};
    }
    try_int!(i64, i32, u8, i8, i16, u16, u32, u64);
    Err(PyTypeError::new_err(format!(
        "{CE}: argument 'labels' must be an integer numpy.ndarray (class indices), got {}",
        describe(labels)
    )))
}

/// Softmax cross-entropy of ``logits (n, C)`` against integer ``labels (n,)`` in ``[0, C)``;
/// returns ``(loss, dlogits)`` with ``dlogits = (softmax − onehot)/n`` for ``"mean"``.
#[pyfunction]
#[pyo3(signature = (logits, labels, reduction="mean"))]
fn cross_entropy<'py>(
    py: Python<'py>,
    logits: &Bound<'py, PyAny>,
    labels: &Bound<'py, PyAny>,
    reduction: &str,
) -> PyResult<(f64, Py<PyAny>)> {
    let dt = same_dtype(CE, &[("logits", Some(logits))])?;
    let red = self::reduction(CE, reduction)?;
    if labels.cast::<PyUntypedArray>().is_err() {
        return Err(PyTypeError::new_err(format!(
            "{CE}: argument 'labels' must be an integer numpy.ndarray, got {}",
            describe(labels)
        )));
    }
    match dt {
        Dt::F32 => ce_labels::<f32>(py, logits, labels, red),
        Dt::F64 => ce_labels::<f64>(py, logits, labels, red),
    }
}

type Kernel<T> = fn(&[T], &[T], Reduction, &mut [T]) -> Result<f64, crate::kernels::ShapeError>;

fn pair_run<'py, T: Real + Element>(
    py: Python<'py>,
    fname: &str,
    names: (&str, &str),
    a: &Bound<'py, PyAny>,
    b: &Bound<'py, PyAny>,
    red: Reduction,
    kernel: Kernel<T>,
) -> PyResult<(f64, Py<PyAny>)> {
    let ra = readonly::<T>(fname, names.0, a)?;
    let rb = readonly::<T>(fname, names.1, b)?;
    let shape = ra.shape().to_vec();
    check_shape(
        fname,
        names.1,
        rb.shape(),
        &shape,
        &format!("the shape of '{}'", names.0),
    )?;
    if ra.len() == 0 {
        return Err(PyValueError::new_err(format!(
            "{fname}: argument '{}' is empty (shape {}); a loss needs at least one entry",
            names.0,
            tuple(&shape)
        )));
    }
    let (as_, bs) = (c_order(fname, &ra)?, c_order(fname, &rb)?);
    let g = new_array::<T>(py, fname, &shape)?;
    let loss = {
        let mut w = g.readwrite();
        let gs = fresh(&mut w);
        py.detach(|| kernel(&as_, &bs, red, gs))
            .map_err(|e| shape_err(fname, e))?
    };
    Ok((loss, g.into_any().unbind()))
}

#[allow(clippy::too_many_arguments)]
fn pair<'py>(
    py: Python<'py>,
    fname: &str,
    names: (&str, &str),
    a: &Bound<'py, PyAny>,
    b: &Bound<'py, PyAny>,
    reduction: &str,
    k32: Kernel<f32>,
    k64: Kernel<f64>,
) -> PyResult<(f64, Py<PyAny>)> {
    let dt = same_dtype(fname, &[(names.0, Some(a)), (names.1, Some(b))])?;
    let red = self::reduction(fname, reduction)?;
    match dt {
        Dt::F32 => pair_run::<f32>(py, fname, names, a, b, red, k32),
        Dt::F64 => pair_run::<f64>(py, fname, names, a, b, red, k64),
    }
}

/// Sigmoid binary cross-entropy on ``logits`` against ``targets`` (same shape), in the stable
/// form ``max(z, 0) − z·t + log1p(e^{−|z|})``; returns ``(loss, (sigmoid(z) − t)/N)``.
#[pyfunction]
#[pyo3(signature = (logits, targets, reduction="mean"))]
fn binary_cross_entropy<'py>(
    py: Python<'py>,
    logits: &Bound<'py, PyAny>,
    targets: &Bound<'py, PyAny>,
    reduction: &str,
) -> PyResult<(f64, Py<PyAny>)> {
    let f = "binary_cross_entropy";
    pair(
        py,
        f,
        ("logits", "targets"),
        logits,
        targets,
        reduction,
        loss::binary_cross_entropy::<f32>,
        loss::binary_cross_entropy::<f64>,
    )
}

/// Squared error over all entries; returns ``(loss, 2(pred − target)/N)`` for ``"mean"``.
#[pyfunction]
#[pyo3(signature = (pred, target, reduction="mean"))]
fn mse<'py>(
    py: Python<'py>,
    pred: &Bound<'py, PyAny>,
    target: &Bound<'py, PyAny>,
    reduction: &str,
) -> PyResult<(f64, Py<PyAny>)> {
    pair(
        py,
        "mse",
        ("pred", "target"),
        pred,
        target,
        reduction,
        loss::mse::<f32>,
        loss::mse::<f64>,
    )
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(cross_entropy, m)?)?;
    m.add_function(wrap_pyfunction!(binary_cross_entropy, m)?)?;
    m.add_function(wrap_pyfunction!(mse, m)?)?;
    Ok(())
}
