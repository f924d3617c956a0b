//! `cross_entropy`, `binary_cross_entropy`, `mse`, `mae`, `huber` (see `kernels::losses`): each
//! returns `(loss: float, grad: ndarray)`. Labels may be any integer dtype; inputs in any layout
//! are copied to C order when needed; the gradient is a new C-ordered array of the input's shape.
//! Without options (`sample_weight`, `label_smoothing`, soft targets) the three classic losses
//! call their plain kernels; with any option, or for `mae`/`huber`, `kernels::losses::weighted_loss`.

use super::array::{
    by_dtype, c_order, check_ndim, check_shape, describe, fresh, readonly, same_dtype, shape_err, tuple, zeros, Dt,
};
use crate::kernels::losses::{self, Label, LossFn, Reduction, Targets};
use crate::kernels::vmath::VMath;
use crate::kernels::ShapeError;
use numpy::{Element, PyArrayDescrMethods, PyArrayDyn, PyArrayMethods, PyUntypedArray, PyUntypedArrayMethods};
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
    let g = zeros::<T>(py, CE, "an output", &[n, c])?;
    let loss = {
        let mut w = g.readwrite();
        let gs = fresh(&mut w);
        py.detach(|| losses::cross_entropy(&zs, n, c, &ls, red, gs))
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

/// Softmax cross-entropy of ``logits (n, C)`` against integer ``labels (n,)`` in ``[0, C)``,
/// or against soft targets ``(n, C)`` (rows of probabilities, the logits' dtype); returns
/// ``(loss, dlogits)`` with ``dlogits = (softmax − onehot)/n`` for ``"mean"``.
/// ``label_smoothing=ε`` mixes the targets with the uniform distribution (``(1 − ε)t + ε/C``);
/// ``sample_weight (n,)`` weights each row's loss (the mean still divides by ``n``).
#[pyfunction]
#[pyo3(signature = (logits, labels, reduction="mean", label_smoothing=0.0, sample_weight=None))]
fn cross_entropy<'py>(
    py: Python<'py>,
    logits: &Bound<'py, PyAny>,
    labels: &Bound<'py, PyAny>,
    reduction: &str,
    label_smoothing: f64,
    sample_weight: Option<&Bound<'py, PyAny>>,
) -> PyResult<(f64, Py<PyAny>)> {
    let dt = same_dtype(CE, &[("logits", Some(logits))])?;
    let red = self::reduction(CE, reduction)?;
    let Ok(arr) = labels.cast::<PyUntypedArray>() else {
        return Err(PyTypeError::new_err(format!(
            "{CE}: argument 'labels' must be an integer numpy.ndarray (or float targets (n, C)), got {}",
            describe(labels)
        )));
    };
    let soft = arr.dtype().kind() == b'f';
    if soft && arr.ndim() != 2 {
        return Err(PyTypeError::new_err(format!(
            "{CE}: argument 'labels' must be integer class indices (n,) or float targets (n, C) of the logits' shape, got {}",
            describe(labels)
        )));
    }
    let loss = LossFn::CrossEntropy { label_smoothing };
    loss.validate().map_err(|e| shape_err(CE, e))?;
    if soft || label_smoothing != 0.0 || sample_weight.is_some() {
        return weighted(
            py,
            CE,
            ("logits", "labels"),
            loss,
            logits,
            labels,
            !soft,
            sample_weight,
            red,
            dt,
        );
    }
    by_dtype!(dt => ce_labels(py, logits, labels, red))
}

/// The weighted kernel on `out` and `target` (integer labels when `labels`), with `weights`.
#[allow(clippy::too_many_arguments)]
fn weighted<'py>(
    py: Python<'py>,
    fname: &str,
    names: (&str, &str),
    loss: LossFn,
    out: &Bound<'py, PyAny>,
    target: &Bound<'py, PyAny>,
    labels: bool,
    weights: Option<&Bound<'py, PyAny>>,
    red: Reduction,
    dt: Dt,
) -> PyResult<(f64, Py<PyAny>)> {
    let floats = [
        (names.0, Some(out)),
        (names.1, if labels { None } else { Some(target) }),
        ("sample_weight", weights),
    ];
    let dt2 = same_dtype(fname, &floats)?;
    debug_assert!(dt2 == dt);
    macro_rules! with_labels {
        ($T:ty, $($L:ty),*) => {{
            $(
                if target.cast::<PyArrayDyn<$L>>().is_ok() {
                    return weighted_run::<$T, $L>(py, fname, names, loss, out, target, true, weights, red);
                }
            )*
            Err(PyTypeError::new_err(format!(
                "{fname}: argument '{}' must be an integer numpy.ndarray (class indices) or float targets, got {}",
                names.1,
                describe(target)
            )))
        }};
    }
    match (dt, labels) {
        (Dt::F32, false) => weighted_run::<f32, i64>(py, fname, names, loss, out, target, false, weights, red),
        (Dt::F64, false) => weighted_run::<f64, i64>(py, fname, names, loss, out, target, false, weights, red),
        (Dt::F32, true) => with_labels!(f32, i64, i32, u8, i8, i16, u16, u32, u64),
        (Dt::F64, true) => with_labels!(f64, i64, i32, u8, i8, i16, u16, u32, u64),
    }
}

#[allow(clippy::too_many_arguments)]
fn weighted_run<'py, T: VMath + Element, L: Label + Element>(
    py: Python<'py>,
    fname: &str,
    names: (&str, &str),
    loss: LossFn,
    out: &Bound<'py, PyAny>,
    target: &Bound<'py, PyAny>,
    labels: bool,
    weights: Option<&Bound<'py, PyAny>>,
    red: Reduction,
) -> PyResult<(f64, Py<PyAny>)> {
    let ro = readonly::<T>(fname, names.0, out)?;
    let shape = ro.shape().to_vec();
    if loss.per_row() {
        check_ndim(fname, names.0, &shape, &[2])?;
    } else if shape.is_empty() {
        check_ndim(fname, names.0, &shape, &[1, 2])?;
    }
    // Rows are the first axis; a row is everything else (weights are per row).
    let n = shape[0];
    let c = shape[1..].iter().product::<usize>();
    if n == 0 || c == 0 {
        return Err(PyValueError::new_err(format!(
            "{fname}: argument '{}' is empty (shape {}); a loss needs at least one entry",
            names.0,
            tuple(&shape)
        )));
    }
    let rw = match weights {
        Some(w) => {
            let r = readonly::<T>(fname, "sample_weight", w)?;
            check_shape(fname, "sample_weight", r.shape(), &[n], "one weight per row")?;
            Some(r)
        }
        None => None,
    };
    let (rl, rt) = if labels {
        let r = target
            .cast::<PyArrayDyn<L>>()
            .map_err(|_| PyTypeError::new_err(format!("{fname}: argument '{}': {}", names.1, describe(target))))?
            .try_readonly()
            .map_err(|e| PyValueError::new_err(format!("{fname}: argument '{}' cannot be borrowed ({e})", names.1)))?;
        check_shape(fname, names.1, r.shape(), &[n], "one label per row")?;
        (Some(r), None)
    } else {
        let r = readonly::<T>(fname, names.1, target)?;
        check_shape(
            fname,
            names.1,
            r.shape(),
            &shape,
            &format!("the shape of '{}'", names.0),
        )?;
        (None, Some(r))
    };
    let os = c_order(fname, &ro)?;
    let ws = rw.as_ref().map(|a| c_order(fname, a)).transpose()?;
    let ls = rl.as_ref().map(|a| c_order(fname, a)).transpose()?;
    let ts = rt.as_ref().map(|a| c_order(fname, a)).transpose()?;
    let g = zeros::<T>(py, fname, "an output", &shape)?;
    let value = {
        let mut w = g.readwrite();
        let gs = fresh(&mut w);
        let t = match (&ls, &ts) {
            (Some(l), _) => Targets::Labels(&l[..]),
            (_, Some(t)) => Targets::Values(&t[..]),
            _ => unreachable!(),
        };
        let wts = ws.as_deref();
        py.detach(|| losses::weighted_loss(loss, &os, n, c, t, wts, red, gs))
            .map_err(|e| shape_err(fname, e))?
    };
    Ok((value, g.into_any().unbind()))
}

/// The losses of two same-shaped arrays that have a plain kernel (no options).
#[derive(Clone, Copy)]
enum Plain {
    BinaryCrossEntropy,
    Mse,
}

impl Plain {
    fn run<T: VMath>(self, a: &[T], b: &[T], red: Reduction, grad: &mut [T]) -> Result<f64, ShapeError> {
        match self {
            Self::BinaryCrossEntropy => losses::binary_cross_entropy(a, b, red, grad),
            Self::Mse => losses::mse(a, b, red, grad),
        }
    }
}

fn pair_run<'py, T: VMath + Element>(
    py: Python<'py>,
    fname: &str,
    names: (&str, &str),
    a: &Bound<'py, PyAny>,
    b: &Bound<'py, PyAny>,
    red: Reduction,
    kernel: Plain,
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
    let g = zeros::<T>(py, fname, "an output", &shape)?;
    let loss = {
        let mut w = g.readwrite();
        let gs = fresh(&mut w);
        py.detach(|| kernel.run(&as_, &bs, red, gs))
            .map_err(|e| shape_err(fname, e))?
    };
    Ok((loss, g.into_any().unbind()))
}

fn pair<'py>(
    py: Python<'py>,
    fname: &str,
    names: (&str, &str),
    a: &Bound<'py, PyAny>,
    b: &Bound<'py, PyAny>,
    reduction: &str,
    kernel: Plain,
) -> PyResult<(f64, Py<PyAny>)> {
    let dt = same_dtype(fname, &[(names.0, Some(a)), (names.1, Some(b))])?;
    let red = self::reduction(fname, reduction)?;
    by_dtype!(dt => pair_run(py, fname, names, a, b, red, kernel))
}

/// Sigmoid binary cross-entropy on ``logits`` against ``targets`` (same shape), in the stable
/// form ``max(z, 0) − z·t + log1p(e^{−|z|})``; returns ``(loss, (sigmoid(z) − t)/N)``.
/// ``sample_weight`` (one per row, the first axis) weights each row's loss.
#[pyfunction]
#[pyo3(signature = (logits, targets, reduction="mean", sample_weight=None))]
fn binary_cross_entropy<'py>(
    py: Python<'py>,
    logits: &Bound<'py, PyAny>,
    targets: &Bound<'py, PyAny>,
    reduction: &str,
    sample_weight: Option<&Bound<'py, PyAny>>,
) -> PyResult<(f64, Py<PyAny>)> {
    let f = "binary_cross_entropy";
    if sample_weight.is_some() {
        return options(
            py,
            f,
            ("logits", "targets"),
            LossFn::BinaryCrossEntropy,
            logits,
            targets,
            sample_weight,
            reduction,
        );
    }
    pair(
        py,
        f,
        ("logits", "targets"),
        logits,
        targets,
        reduction,
        Plain::BinaryCrossEntropy,
    )
}

/// Squared error over all entries; returns ``(loss, 2(pred − target)/N)`` for ``"mean"``;
/// ``sample_weight`` (one per row) weights each row's loss.
#[pyfunction]
#[pyo3(signature = (pred, target, reduction="mean", sample_weight=None))]
fn mse<'py>(
    py: Python<'py>,
    pred: &Bound<'py, PyAny>,
    target: &Bound<'py, PyAny>,
    reduction: &str,
    sample_weight: Option<&Bound<'py, PyAny>>,
) -> PyResult<(f64, Py<PyAny>)> {
    if sample_weight.is_some() {
        return options(
            py,
            "mse",
            ("pred", "target"),
            LossFn::Mse,
            pred,
            target,
            sample_weight,
            reduction,
        );
    }
    pair(py, "mse", ("pred", "target"), pred, target, reduction, Plain::Mse)
}

/// An elementwise loss through the weighted kernel.
#[allow(clippy::too_many_arguments)]
fn options<'py>(
    py: Python<'py>,
    fname: &str,
    names: (&str, &str),
    loss: LossFn,
    a: &Bound<'py, PyAny>,
    b: &Bound<'py, PyAny>,
    weights: Option<&Bound<'py, PyAny>>,
    reduction: &str,
) -> PyResult<(f64, Py<PyAny>)> {
    let dt = same_dtype(
        fname,
        &[(names.0, Some(a)), (names.1, Some(b)), ("sample_weight", weights)],
    )?;
    let red = self::reduction(fname, reduction)?;
    loss.validate().map_err(|e| shape_err(fname, e))?;
    weighted(py, fname, names, loss, a, b, false, weights, red, dt)
}

/// Absolute error over all entries (``torch.nn.L1Loss``); returns ``(loss, sign(pred −
/// target)/N)`` for ``"mean"``; ``sample_weight`` (one per row) weights each row's loss.
#[pyfunction]
#[pyo3(signature = (pred, target, reduction="mean", sample_weight=None))]
fn mae<'py>(
    py: Python<'py>,
    pred: &Bound<'py, PyAny>,
    target: &Bound<'py, PyAny>,
    reduction: &str,
    sample_weight: Option<&Bound<'py, PyAny>>,
) -> PyResult<(f64, Py<PyAny>)> {
    options(
        py,
        "mae",
        ("pred", "target"),
        LossFn::Mae,
        pred,
        target,
        sample_weight,
        reduction,
    )
}

/// Huber loss with threshold ``delta`` (``torch.nn.HuberLoss``): ``½d²`` for ``|d| ≤ δ``, else
/// ``δ(|d| − ½δ)``, averaged over all entries for ``"mean"``; ``sample_weight`` per row.
#[pyfunction]
#[pyo3(signature = (pred, target, reduction="mean", delta=1.0, sample_weight=None))]
fn huber<'py>(
    py: Python<'py>,
    pred: &Bound<'py, PyAny>,
    target: &Bound<'py, PyAny>,
    reduction: &str,
    delta: f64,
    sample_weight: Option<&Bound<'py, PyAny>>,
) -> PyResult<(f64, Py<PyAny>)> {
    options(
        py,
        "huber",
        ("pred", "target"),
        LossFn::Huber { delta },
        pred,
        target,
        sample_weight,
        reduction,
    )
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(mae, m)?)?;
    m.add_function(wrap_pyfunction!(huber, m)?)?;
    m.add_function(wrap_pyfunction!(cross_entropy, m)?)?;
    m.add_function(wrap_pyfunction!(binary_cross_entropy, m)?)?;
    m.add_function(wrap_pyfunction!(mse, m)?)?;
    Ok(())
}
