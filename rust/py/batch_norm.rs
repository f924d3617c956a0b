//! `batch_norm_forward` / `batch_norm_backward` (see `kernels::batch_norm`). Read-only inputs in
//! any layout are copied to C order when needed; the running statistics, written in place, must
//! be C-contiguous, writable and not shared with another argument. Every check runs before the
//! running statistics are touched.

use super::array::{
    alloc_vec, by_dtype, c_order, c_slice_mut, check_ndim, check_shape, fresh, readonly, readwrite, same_dtype,
    shape_err, tuple, zeros,
};
use crate::kernels::batch_norm as bn;
use crate::kernels::Real;
use numpy::{Element, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

const FWD: &str = "batch_norm_forward";
const BWD: &str = "batch_norm_backward";

fn check_hyper(momentum: f64, eps: f64) -> PyResult<()> {
    if !momentum.is_finite() || !(0.0..=1.0).contains(&momentum) {
        return Err(PyValueError::new_err(format!(
            "{FWD}: argument 'momentum' must be finite and in [0, 1], got {momentum}"
        )));
    }
    if !eps.is_finite() || eps <= 0.0 {
        return Err(PyValueError::new_err(format!(
            "{FWD}: argument 'eps' must be finite and > 0, got {eps}"
        )));
    }
    Ok(())
}

type Triple = (Py<PyAny>, Py<PyAny>, Py<PyAny>);

#[allow(clippy::too_many_arguments)]
fn forward_run<'py, T: Real + Element>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    gamma: &Bound<'py, PyAny>,
    beta: &Bound<'py, PyAny>,
    running_mean: Option<&Bound<'py, PyAny>>,
    running_var: Option<&Bound<'py, PyAny>>,
    training: bool,
    momentum: f64,
    eps: f64,
) -> PyResult<Triple> {
    let rx = readonly::<T>(FWD, "x", x)?;
    let rg = readonly::<T>(FWD, "gamma", gamma)?;
    let rb = readonly::<T>(FWD, "beta", beta)?;
    check_ndim(FWD, "x", rx.shape(), &[2])?;
    let (n, m) = (rx.shape()[0], rx.shape()[1]);
    let ctx = "one per column of x";
    check_shape(FWD, "gamma", rg.shape(), &[m], ctx)?;
    check_shape(FWD, "beta", rb.shape(), &[m], ctx)?;
    let running = match (running_mean, running_var) {
        (Some(a), Some(b)) => Some((a, b)),
        (None, None) => None,
        (a, _) => {
            let missing = if a.is_none() { "running_mean" } else { "running_var" };
            return Err(PyValueError::new_err(format!(
                "{FWD}: argument '{missing}' is None; give both running statistics or neither"
            )));
        }
    };
    let (xs, gs, bs) = (c_order(FWD, &rx)?, c_order(FWD, &rg)?, c_order(FWD, &rb)?);
    let y = zeros::<T>(py, FWD, "an output", &[n, m])?;
    let sm = zeros::<T>(py, FWD, "an output", &[m])?;
    let si = zeros::<T>(py, FWD, "an output", &[m])?;
    {
        let mut wy = y.readwrite();
        let (mut wm, mut wi) = (sm.readwrite(), si.readwrite());
        let (ys, ms, is) = (
            fresh(&mut wy),
            wm.as_slice_mut().expect("new"),
            wi.as_slice_mut().expect("new"),
        );
        if training {
            if n <= 1 {
                return Err(PyValueError::new_err(format!(
                    "{FWD}: Expected more than 1 value per channel when training, got input of shape {} (argument 'x' needs at least 2 rows)",
                    tuple(rx.shape())
                )));
            }
            let mut work = alloc_vec(FWD, "the workspace", bn::forward_workspace_len(n, m), 0.0f64)?;
            match running {
                Some((a, b)) => {
                    let mut wa = readwrite::<T>(FWD, "running_mean", a)?;
                    let mut wb = readwrite::<T>(FWD, "running_var", b)?;
                    check_shape(FWD, "running_mean", wa.shape(), &[m], ctx)?;
                    check_shape(FWD, "running_var", wb.shape(), &[m], ctx)?;
                    let ra = c_slice_mut(FWD, "running_mean", &mut wa)?;
                    let rv = c_slice_mut(FWD, "running_var", &mut wb)?;
                    py.detach(|| {
                        bn::forward_train(
                            &xs,
                            n,
                            m,
                            &gs,
                            &bs,
                            Some((ra, rv)),
                            momentum,
                            eps,
                            ys,
                            ms,
                            is,
                            &mut work,
                        )
                    })
                }
                None => {
                    py.detach(|| bn::forward_train(&xs, n, m, &gs, &bs, None, momentum, eps, ys, ms, is, &mut work))
                }
            }
            .map_err(|e| shape_err(FWD, e))?;
        } else {
            let Some((a, b)) = running else {
                return Err(PyValueError::new_err(format!(
                    "{FWD}: evaluation mode (training=False) needs 'running_mean' and 'running_var'"
                )));
            };
            let ra = readonly::<T>(FWD, "running_mean", a)?;
            let rv = readonly::<T>(FWD, "running_var", b)?;
            check_shape(FWD, "running_mean", ra.shape(), &[m], ctx)?;
            check_shape(FWD, "running_var", rv.shape(), &[m], ctx)?;
            let (ras, rvs) = (c_order(FWD, &ra)?, c_order(FWD, &rv)?);
            py.detach(|| bn::forward_eval(&xs, n, m, &gs, &bs, &ras, &rvs, eps, ys, ms, is))
                .map_err(|e| shape_err(FWD, e))?;
        }
    }
    Ok((y.into_any().unbind(), sm.into_any().unbind(), si.into_any().unbind()))
}

/// Batch normalization of ``x (n, c)``; returns ``(y, save_mean, save_invstd)``.
///
/// Training: biased batch variance (two passes, float64 sums); the running statistics, when
/// given, are updated in place with PyTorch's rule (unbiased variance). Evaluation: normalizes
/// with the running statistics, which are then required.
#[pyfunction]
#[pyo3(signature = (x, gamma, beta, running_mean=None, running_var=None, training=true, momentum=0.1, eps=1e-5))]
#[allow(clippy::too_many_arguments)]
fn batch_norm_forward<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    gamma: &Bound<'py, PyAny>,
    beta: &Bound<'py, PyAny>,
    running_mean: Option<&Bound<'py, PyAny>>,
    running_var: Option<&Bound<'py, PyAny>>,
    training: bool,
    momentum: f64,
    eps: f64,
) -> PyResult<Triple> {
    let dt = same_dtype(
        FWD,
        &[
            ("x", Some(x)),
            ("gamma", Some(gamma)),
            ("beta", Some(beta)),
            ("running_mean", running_mean),
            ("running_var", running_var),
        ],
    )?;
    check_hyper(momentum, eps)?;
    by_dtype!(dt => forward_run(py, x, gamma, beta, running_mean, running_var, training, momentum, eps))
}

#[allow(clippy::too_many_arguments)]
fn backward_run<'py, T: Real + Element>(
    py: Python<'py>,
    dy: &Bound<'py, PyAny>,
    x: &Bound<'py, PyAny>,
    gamma: &Bound<'py, PyAny>,
    save_mean: &Bound<'py, PyAny>,
    save_invstd: &Bound<'py, PyAny>,
    training: bool,
) -> PyResult<Triple> {
    let rdy = readonly::<T>(BWD, "dy", dy)?;
    let rx = readonly::<T>(BWD, "x", x)?;
    let rg = readonly::<T>(BWD, "gamma", gamma)?;
    let rm = readonly::<T>(BWD, "save_mean", save_mean)?;
    let ri = readonly::<T>(BWD, "save_invstd", save_invstd)?;
    check_ndim(BWD, "x", rx.shape(), &[2])?;
    let (n, m) = (rx.shape()[0], rx.shape()[1]);
    check_shape(BWD, "dy", rdy.shape(), &[n, m], "the shape of x")?;
    for (name, a) in [("gamma", &rg), ("save_mean", &rm), ("save_invstd", &ri)] {
        check_shape(BWD, name, a.shape(), &[m], "one per column of x")?;
    }
    let (dys, xs, gs, ms, is) = (
        c_order(BWD, &rdy)?,
        c_order(BWD, &rx)?,
        c_order(BWD, &rg)?,
        c_order(BWD, &rm)?,
        c_order(BWD, &ri)?,
    );
    let dx = zeros::<T>(py, BWD, "an output", &[n, m])?;
    let dg = zeros::<T>(py, BWD, "an output", &[m])?;
    let db = zeros::<T>(py, BWD, "an output", &[m])?;
    {
        let (mut w1, mut w2, mut w3) = (dx.readwrite(), dg.readwrite(), db.readwrite());
        let (o1, o2, o3) = (
            fresh(&mut w1),
            w2.as_slice_mut().expect("new"),
            w3.as_slice_mut().expect("new"),
        );
        let mut work = alloc_vec(BWD, "the workspace", bn::backward_workspace_len(n, m), 0.0f64)?;
        py.detach(|| bn::backward(&dys, &xs, n, m, &gs, &ms, &is, training, o1, o2, o3, &mut work))
            .map_err(|e| shape_err(BWD, e))?;
    }
    Ok((dx.into_any().unbind(), dg.into_any().unbind(), db.into_any().unbind()))
}

/// Backward of :func:`batch_norm_forward`; returns ``(dx, dgamma, dbeta)``.
#[pyfunction]
#[pyo3(signature = (dy, x, gamma, save_mean, save_invstd, training=true))]
fn batch_norm_backward<'py>(
    py: Python<'py>,
    dy: &Bound<'py, PyAny>,
    x: &Bound<'py, PyAny>,
    gamma: &Bound<'py, PyAny>,
    save_mean: &Bound<'py, PyAny>,
    save_invstd: &Bound<'py, PyAny>,
    training: bool,
) -> PyResult<Triple> {
    let dt = same_dtype(
        BWD,
        &[
            ("dy", Some(dy)),
            ("x", Some(x)),
            ("gamma", Some(gamma)),
            ("save_mean", Some(save_mean)),
            ("save_invstd", Some(save_invstd)),
        ],
    )?;
    by_dtype!(dt => backward_run(py, dy, x, gamma, save_mean, save_invstd, training))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(batch_norm_forward, m)?)?;
    m.add_function(wrap_pyfunction!(batch_norm_backward, m)?)?;
    Ok(())
}
