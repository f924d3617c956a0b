//! `column_stats(x, edges=None, saturation=None)` (see `kernels::stats`): returns a dict of
//! float64 per-column statistics, an int64 histogram and two fractions. `edges` may be float32
//! or float64 whatever `x` is (they are compared in float64, as `np.histogram` would).

use super::array::{alloc_vec, by_dtype, c_order, check_ndim, describe, float_dtype, readonly, shape_err, tuple};
use crate::kernels::stats::{self, ColumnStatsOut};
use crate::kernels::Real;
use numpy::{Element, IntoPyArray, PyUntypedArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

const F: &str = "column_stats";

/// The values of a float array widened to f64 (histogram edges are compared in f64).
fn widened<T: Real + Element>(obj: &Bound<'_, PyAny>) -> PyResult<Vec<f64>> {
    Ok(c_order(F, &readonly::<T>(F, "edges", obj)?)?
        .iter()
        .map(|&v| v.f64())
        .collect())
}

fn edges_f64(obj: &Bound<'_, PyAny>) -> PyResult<Vec<f64>> {
    let e = by_dtype!(float_dtype(F, "edges", obj)? => widened(obj))?;
    let shape = obj
        .cast::<numpy::PyUntypedArray>()
        .map(|a| a.shape().to_vec())
        .unwrap_or_default();
    if shape.len() != 1 || e.len() < 2 {
        return Err(PyValueError::new_err(format!(
            "{F}: argument 'edges' must be 1-D with at least 2 entries, got shape {}",
            tuple(&shape)
        )));
    }
    stats::check_edges(&e).map_err(|err| shape_err(F, err))?;
    Ok(e)
}

fn saturation_pair(obj: &Bound<'_, PyAny>) -> PyResult<(f64, f64)> {
    let v: Vec<f64> = obj.extract().map_err(|_| {
        PyValueError::new_err(format!(
            "{F}: argument 'saturation' must be a pair (low, high) of floats, got {}",
            describe(obj)
        ))
    })?;
    let [low, high] = v[..] else {
        return Err(PyValueError::new_err(format!(
            "{F}: argument 'saturation' must be a pair (low, high) of floats, got {} values",
            v.len()
        )));
    };
    stats::check_saturation(low, high).map_err(|e| shape_err(F, e))?;
    Ok((low, high))
}

fn run<'py, T: Real + Element>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    edges: Option<Vec<f64>>,
    saturation: Option<(f64, f64)>,
) -> PyResult<Bound<'py, PyDict>> {
    let rx = readonly::<T>(F, "x", x)?;
    check_ndim(F, "x", rx.shape(), &[2])?;
    let (n, m) = (rx.shape()[0], rx.shape()[1]);
    if n == 0 || m == 0 {
        return Err(PyValueError::new_err(format!(
            "{F}: argument 'x' is empty (shape {}); statistics need at least one entry",
            tuple(rx.shape())
        )));
    }
    let xs = c_order(F, &rx)?;
    let nbins = edges.as_ref().map_or(0, |e| e.len() - 1);
    let col = |what| alloc_vec(F, what, m, 0.0);
    let (mut mean, mut var, mut min, mut max) = (
        col("the means")?,
        col("the variances")?,
        col("the minima")?,
        col("the maxima")?,
    );
    let mut hist = alloc_vec(F, "the histogram", nbins, 0i64)?;
    let mut work = alloc_vec(F, "the workspace", stats::workspace_len(n, m, nbins), 0.0)?;
    let fr = py
        .detach(|| {
            let out = ColumnStatsOut {
                mean: &mut mean,
                var: &mut var,
                min: &mut min,
                max: &mut max,
                hist: &mut hist,
            };
            stats::column_stats(&xs, n, m, edges.as_deref(), saturation, &mut work, out)
        })
        .map_err(|e| shape_err(F, e))?;
    let d = PyDict::new(py);
    d.set_item("mean", mean.into_pyarray(py))?;
    d.set_item("var", var.into_pyarray(py))?;
    d.set_item("min", min.into_pyarray(py))?;
    d.set_item("max", max.into_pyarray(py))?;
    d.set_item("hist", hist.into_pyarray(py))?;
    d.set_item("saturated_fraction", fr.saturated)?;
    d.set_item("dead_fraction", fr.dead)?;
    Ok(d)
}

/// Per-column mean, biased variance, min and max (float64), a histogram of all entries over
/// ``edges`` (``np.histogram`` semantics, int64), the share of entries ``≤ low`` or ``≥ high``
/// for ``saturation=(low, high)`` and the share of all-zero columns, in one pass over ``x``.
/// NaNs propagate to the column's mean/var/min/max and are in no bin and never saturated.
#[pyfunction]
#[pyo3(signature = (x, edges=None, saturation=None))]
fn column_stats<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    edges: Option<&Bound<'py, PyAny>>,
    saturation: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let dt = float_dtype(F, "x", x)?;
    let edges = edges.map(edges_f64).transpose()?;
    let saturation = saturation.map(saturation_pair).transpose()?;
    by_dtype!(dt => run(py, x, edges, saturation))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(column_stats, m)?)
}
