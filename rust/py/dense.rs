//! Bindings of `kernels::dense`: `dense_forward(x, w, b, activation, alpha) -> (y, z)` and
//! `dense_backward(dy, x, w, z, y, activation, alpha, need_dx) -> (dx | None, dW, db)`.
//!
//! Inputs that are not C-contiguous are copied once to C order; outputs are new C-ordered
//! arrays. Everything is validated before the kernel runs.

use super::activation::{parse_act, ActName, Float};
use super::array::{
    alloc_vec, by_dtype, c_order, check_ndim, check_shape, readonly, same_dtype, shape_err, tuple, uninit,
};
use crate::kernels::activation::Act;
use crate::kernels::dense::{self, DenseShape};
use numpy::{PyArrayMethods, PyUntypedArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

/// Checks `x (n, in)` and `w (in, out)`; returns the layer's shape.
fn layer_shape(fname: &str, xs: &[usize], ws: &[usize]) -> PyResult<DenseShape> {
    check_ndim(fname, "x", xs, &[2])?;
    check_ndim(fname, "w", ws, &[2])?;
    if xs[1] != ws[0] {
        return Err(PyValueError::new_err(format!(
            "{fname}: argument 'w' has shape {}, expected ({}, out) to match 'x' of shape {}",
            tuple(ws),
            xs[1],
            tuple(xs)
        )));
    }
    Ok(DenseShape {
        n: xs[0],
        inp: xs[1],
        out: ws[1],
    })
}

fn forward_run<'py, T: Float>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    w: &Bound<'py, PyAny>,
    b: Option<&Bound<'py, PyAny>>,
    activation: &ActName,
    alpha: Option<&Bound<'py, PyAny>>,
) -> PyResult<(Py<PyAny>, Py<PyAny>)> {
    const F: &str = "dense_forward";
    let act = parse_act::<T>(F, activation, alpha)?;
    let (rx, rw) = (readonly::<T>(F, "x", x)?, readonly::<T>(F, "w", w)?);
    let s = layer_shape(F, rx.shape(), rw.shape())?;
    let rb = b.map(|b| readonly::<T>(F, "b", b)).transpose()?;
    if let Some(rb) = &rb {
        check_shape(F, "b", rb.shape(), &[s.out], "one bias per column of 'w'")?;
    }
    let (xs, ws) = (c_order(F, &rx)?, c_order(F, &rw)?);
    let bs = rb.as_ref().map(|b| c_order(F, b)).transpose()?;
    let (y, z) = (
        uninit::<T>(py, F, "an output", &[s.n, s.out])?,
        uninit::<T>(py, F, "an output", &[s.n, s.out])?,
    );
    {
        let (mut wy, mut wz) = (y.readwrite(), z.readwrite());
        let (ys, zs) = (wy.as_slice_mut().expect("new"), wz.as_slice_mut().expect("new"));
        py.detach(|| dense::dense_forward(s, &xs, &ws, bs.as_deref(), act, zs, ys))
            .map_err(|e| shape_err(F, e))?;
    }
    Ok((y.into_any().unbind(), z.into_any().unbind()))
}

/// ``z = x·W + b``, ``y = f(z)`` (Keras layout: ``x (n, in)``, ``W (in, out)``, ``b (out,)``);
/// returns ``(y, z)``. The bias and activation are one fused pass after the GEMM.
#[pyfunction]
#[pyo3(signature = (x, w, b=None, activation=ActName::identity(), alpha=None), text_signature = "(x, w, b=None, activation='identity', alpha=None)")]
fn dense_forward<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    w: &Bound<'py, PyAny>,
    b: Option<&Bound<'py, PyAny>>,
    activation: ActName,
    alpha: Option<&Bound<'py, PyAny>>,
) -> PyResult<(Py<PyAny>, Py<PyAny>)> {
    by_dtype!(same_dtype("dense_forward", &[("x", Some(x)), ("w", Some(w)), ("b", b)])? => forward_run(py, x, w, b, &activation, alpha))
}

type Grads = (Option<Py<PyAny>>, Py<PyAny>, Py<PyAny>);

#[allow(clippy::too_many_arguments)]
fn backward_run<'py, T: Float>(
    py: Python<'py>,
    dy: &Bound<'py, PyAny>,
    x: &Bound<'py, PyAny>,
    w: &Bound<'py, PyAny>,
    z: &Bound<'py, PyAny>,
    y: &Bound<'py, PyAny>,
    activation: &ActName,
    alpha: Option<&Bound<'py, PyAny>>,
    need_dx: bool,
) -> PyResult<Grads> {
    const F: &str = "dense_backward";
    let act = parse_act::<T>(F, activation, alpha)?;
    let (rdy, rx, rw) = (
        readonly::<T>(F, "dy", dy)?,
        readonly::<T>(F, "x", x)?,
        readonly::<T>(F, "w", w)?,
    );
    let (rz, ry) = (readonly::<T>(F, "z", z)?, readonly::<T>(F, "y", y)?);
    let s = layer_shape(F, rx.shape(), rw.shape())?;
    for (name, r) in [("dy", &rdy), ("z", &rz), ("y", &ry)] {
        check_shape(F, name, r.shape(), &[s.n, s.out], "rows of 'x', columns of 'w'")?;
    }
    let (gs, xs, ws, zs, ys) = (
        c_order(F, &rdy)?,
        c_order(F, &rx)?,
        c_order(F, &rw)?,
        c_order(F, &rz)?,
        c_order(F, &ry)?,
    );
    let dx = need_dx
        .then(|| uninit::<T>(py, F, "an output", &[s.n, s.inp]))
        .transpose()?;
    let (dw, db) = (
        uninit::<T>(py, F, "an output", &[s.inp, s.out])?,
        uninit::<T>(py, F, "an output", &[s.out])?,
    );
    {
        let mut wdx = dx.as_ref().map(|a| a.readwrite());
        let (mut wdw, mut wdb) = (dw.readwrite(), db.readwrite());
        let dxs = wdx.as_mut().map(|w| w.as_slice_mut().expect("new"));
        let (dws, dbs) = (wdw.as_slice_mut().expect("new"), wdb.as_slice_mut().expect("new"));
        let dz_len = if act == Act::Identity { 0 } else { s.n * s.out };
        let mut dz = alloc_vec(F, "the gradient workspace", dz_len, T::zero())?;
        let mut wsp = alloc_vec(F, "the workspace", s.backward_workspace_len(), T::zero())?;
        py.detach(|| dense::dense_backward(s, &gs, &xs, &ws, &zs, &ys, act, &mut dz, &mut wsp, dxs, dws, dbs))
            .map_err(|e| shape_err(F, e))?;
    }
    Ok((
        dx.map(|a| a.into_any().unbind()),
        dw.into_any().unbind(),
        db.into_any().unbind(),
    ))
}

/// ``dz = dy ⊙ f'(z)``; returns ``(dx = dz·Wᵀ or None, dW = xᵀ·dz, db = Σ_rows dz)``. ``z``
/// and ``y`` are the forward's outputs. ``db`` is reduced in a fixed order (bit-identical
/// for any thread count).
#[pyfunction]
#[pyo3(signature = (dy, x, w, z, y, activation=ActName::identity(), alpha=None, need_dx=true), text_signature = "(dy, x, w, z, y, activation='identity', alpha=None, need_dx=True)")]
#[allow(clippy::too_many_arguments)]
fn dense_backward<'py>(
    py: Python<'py>,
    dy: &Bound<'py, PyAny>,
    x: &Bound<'py, PyAny>,
    w: &Bound<'py, PyAny>,
    z: &Bound<'py, PyAny>,
    y: &Bound<'py, PyAny>,
    activation: ActName,
    alpha: Option<&Bound<'py, PyAny>>,
    need_dx: bool,
) -> PyResult<Grads> {
    let args = [
        ("dy", Some(dy)),
        ("x", Some(x)),
        ("w", Some(w)),
        ("z", Some(z)),
        ("y", Some(y)),
    ];
    by_dtype!(same_dtype("dense_backward", &args)? => backward_run(py, dy, x, w, z, y, &activation, alpha, need_dx))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(dense_forward, m)?)?;
    m.add_function(wrap_pyfunction!(dense_backward, m)?)?;
    Ok(())
}
