//! Bindings of `kernels::dropout`: `dropout_forward(x, u, rate) -> (y, mask)`,
//! `alpha_dropout_forward(x, u, rate, a, b, alpha_p) -> (y, mask)` and
//! `dropout_backward(dy, mask) -> dx`. Inputs that are not C-contiguous are copied once to C
//! order; outputs are new C-ordered arrays; everything is validated before the kernel runs.

use super::activation::Float;
use super::array::{by_dtype, c_order, check_shape, readonly, same_dtype, shape_err, uninit};
use crate::kernels::dropout;
use numpy::{PyArrayMethods, PyUntypedArrayMethods};
use pyo3::prelude::*;

/// The forward of either kind: `alpha` = `(a, b, alpha_p)` for alpha dropout.
fn forward_run<'py, T: Float>(
    py: Python<'py>,
    f: &str,
    x: &Bound<'py, PyAny>,
    u: &Bound<'py, PyAny>,
    rate: f64,
    alpha: Option<(f64, f64, f64)>,
) -> PyResult<(Py<PyAny>, Py<PyAny>)> {
    let (rx, ru) = (readonly::<T>(f, "x", x)?, readonly::<T>(f, "u", u)?);
    let shape = rx.shape().to_vec();
    check_shape(f, "u", ru.shape(), &shape, "one uniform per element of 'x'")?;
    let (xs, us) = (c_order(f, &rx)?, c_order(f, &ru)?);
    let (y, mask) = (
        uninit::<T>(py, f, "an output", &shape)?,
        uninit::<T>(py, f, "an output", &shape)?,
    );
    {
        let (mut wy, mut wm) = (y.readwrite(), mask.readwrite());
        let (ys, ms) = (wy.as_slice_mut().expect("new"), wm.as_slice_mut().expect("new"));
        py.detach(|| match alpha {
            None => dropout::dropout_forward(&xs, &us, rate, ms, ys),
            Some((a, b, ap)) => dropout::alpha_dropout_forward(&xs, &us, rate, a, b, ap, ms, ys),
        })
        .map_err(|e| shape_err(f, e))?;
    }
    Ok((y.into_any().unbind(), mask.into_any().unbind()))
}

/// Inverted dropout from the uniforms ``u`` (same shape as ``x``, in ``[0, 1)``):
/// ``mask = (u >= rate) / (1 - rate)``, ``y = x * mask``; returns ``(y, mask)``.
#[pyfunction]
fn dropout_forward<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    u: &Bound<'py, PyAny>,
    rate: f64,
) -> PyResult<(Py<PyAny>, Py<PyAny>)> {
    const F: &str = "dropout_forward";
    by_dtype!(same_dtype(F, &[("x", Some(x)), ("u", Some(u))])? => forward_run(py, F, x, u, rate, None))
}

/// Alpha dropout from the uniforms ``u``: ``keep = u >= rate``, ``mask = keep * a``,
/// ``y = x * mask + ((1 - keep) * (a * alpha_p) + b)``; returns ``(y, mask)``.
#[pyfunction]
fn alpha_dropout_forward<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    u: &Bound<'py, PyAny>,
    rate: f64,
    a: f64,
    b: f64,
    alpha_p: f64,
) -> PyResult<(Py<PyAny>, Py<PyAny>)> {
    const F: &str = "alpha_dropout_forward";
    let alpha = Some((a, b, alpha_p));
    by_dtype!(same_dtype(F, &[("x", Some(x)), ("u", Some(u))])? => forward_run(py, F, x, u, rate, alpha))
}

fn backward_run<'py, T: Float>(
    py: Python<'py>,
    dy: &Bound<'py, PyAny>,
    mask: &Bound<'py, PyAny>,
) -> PyResult<Py<PyAny>> {
    const F: &str = "dropout_backward";
    let (rdy, rm) = (readonly::<T>(F, "dy", dy)?, readonly::<T>(F, "mask", mask)?);
    let shape = rdy.shape().to_vec();
    check_shape(F, "mask", rm.shape(), &shape, "the shape of 'dy'")?;
    let (dys, ms) = (c_order(F, &rdy)?, c_order(F, &rm)?);
    let dx = uninit::<T>(py, F, "an output", &shape)?;
    {
        let mut w = dx.readwrite();
        let dxs = w.as_slice_mut().expect("new");
        py.detach(|| dropout::dropout_backward(&dys, &ms, dxs))
            .map_err(|e| shape_err(F, e))?;
    }
    Ok(dx.into_any().unbind())
}

/// Backward of both dropouts: ``dx = dy * mask``.
#[pyfunction]
fn dropout_backward<'py>(py: Python<'py>, dy: &Bound<'py, PyAny>, mask: &Bound<'py, PyAny>) -> PyResult<Py<PyAny>> {
    by_dtype!(same_dtype("dropout_backward", &[("dy", Some(dy)), ("mask", Some(mask))])? => backward_run(py, dy, mask))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(dropout_forward, m)?)?;
    m.add_function(wrap_pyfunction!(alpha_dropout_forward, m)?)?;
    m.add_function(wrap_pyfunction!(dropout_backward, m)?)
}
