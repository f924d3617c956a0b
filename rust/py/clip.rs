//! `clip_gradients(grads, mode, threshold)`: gradient clipping in place over a tuple of arrays
//! (see `kernels::clip`). Every array must be writable, C-contiguous, of one float dtype and
//! disjoint from the others; all of it is checked before the first write.

use super::array::{by_dtype, c_slice_mut, readwrite, same_dtype, shape_err};
use crate::kernels::clip::{self, Clip};
use crate::kernels::Real;
use numpy::{Element, PyReadwriteArrayDyn, PyUntypedArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyTuple;

const F: &str = "clip_gradients";

fn run<T: Real + Element>(py: Python<'_>, grads: &Bound<'_, PyTuple>, rule: Clip) -> PyResult<f64> {
    let items: Vec<Bound<'_, PyAny>> = grads.iter().collect();
    let mut borrows: Vec<PyReadwriteArrayDyn<'_, T>> = Vec::with_capacity(items.len());
    for (i, g) in items.iter().enumerate() {
        let b = readwrite::<T>(F, &format!("grads[{i}]"), g)?;
        if !b.is_c_contiguous() {
            return Err(PyValueError::new_err(format!(
                "{F}: argument 'grads[{i}]' must be C-contiguous to be written in place"
            )));
        }
        borrows.push(b);
    }
    let mut slices: Vec<&mut [T]> = Vec::with_capacity(borrows.len());
    for (i, b) in borrows.iter_mut().enumerate() {
        slices.push(c_slice_mut(F, &format!("grads[{i}]"), b)?);
    }
    py.detach(|| clip::clip_gradients(&mut slices, rule))
        .map_err(|e| shape_err(F, e))
}

/// Clips the gradient arrays ``grads`` (a tuple) in place; ``mode`` is ``"norm"`` (each array
/// to norm ``threshold``, Keras ``clipnorm``), ``"global_norm"`` (Keras ``global_clipnorm``),
/// ``"value"`` (Keras ``clipvalue``) or ``"torch_norm"`` (``clip_grad_norm_``). Returns the
/// norm before clipping (the global one; the largest per-array one for ``"norm"``; 0 for
/// ``"value"``).
#[pyfunction]
fn clip_gradients(py: Python<'_>, grads: &Bound<'_, PyTuple>, mode: &str, threshold: f64) -> PyResult<f64> {
    let rule = Clip::parse(mode, threshold).ok_or_else(|| {
        PyValueError::new_err(format!(
            "{F}: argument 'mode' must be 'norm', 'global_norm', 'value' or 'torch_norm', got {mode:?}"
        ))
    })?;
    rule.validate().map_err(|e| shape_err(F, e))?;
    if grads.is_empty() {
        return Ok(0.0);
    }
    let items: Vec<Bound<'_, PyAny>> = grads.iter().collect();
    let named: Vec<(String, Bound<'_, PyAny>)> = items
        .iter()
        .enumerate()
        .map(|(i, g)| (format!("grads[{i}]"), g.clone()))
        .collect();
    let args: Vec<(&str, Option<&Bound<'_, PyAny>>)> = named.iter().map(|(n, g)| (n.as_str(), Some(g))).collect();
    by_dtype!(same_dtype(F, &args)? => run(py, grads, rule))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(clip_gradients, m)?)
}
