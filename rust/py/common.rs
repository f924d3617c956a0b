//! Validation shared by every binding. Each check names the Python argument and the shapes or
//! dtypes involved, and runs before anything is written.
//!
//! Arrays arrive as `&Bound<PyAny>`; `float_dtype` finds whether they are float32 or float64
//! (anything else — ints, float16, object, a list — is a `TypeError`), and `same_dtype` insists
//! that every float operand of a call shares one dtype (NumPy would silently upcast; a kernel
//! must not). Writable outputs are borrowed through rust-numpy's borrow checker, so an `out=`
//! that aliases an input, or a read-only array, becomes a `ValueError` naming the argument.

use crate::kernels::ShapeError;
use numpy::{
    Element, PyArrayDyn, PyArrayMethods, PyReadonlyArrayDyn, PyReadwriteArrayDyn, PyUntypedArray, PyUntypedArrayMethods,
};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

/// The two element types every kernel is instantiated for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dt {
    F32,
    F64,
}

/// Describes an object for an error message: `float16 array of shape (3, 4)` or `list`.
pub fn describe(obj: &Bound<'_, PyAny>) -> String {
    match obj.cast::<PyUntypedArray>() {
        Ok(a) => format!("{} array of shape {:?}", dtype_name(a), a.shape()),
        Err(_) => obj
            .get_type()
            .name()
            .map(|n| n.to_string())
            .unwrap_or_else(|_| "object".into()),
    }
}

fn dtype_name(a: &Bound<'_, PyUntypedArray>) -> String {
    a.dtype().str().map(|s| s.to_string()).unwrap_or_else(|_| "?".into())
}

/// float32 or float64, else a `TypeError` naming `arg`.
pub fn float_dtype(fname: &str, arg: &str, obj: &Bound<'_, PyAny>) -> PyResult<Dt> {
    if obj.cast::<PyArrayDyn<f32>>().is_ok() {
        Ok(Dt::F32)
    } else if obj.cast::<PyArrayDyn<f64>>().is_ok() {
        Ok(Dt::F64)
    } else {
        Err(PyTypeError::new_err(format!(
            "{fname}: argument '{arg}' must be a float32 or float64 numpy.ndarray, got {}",
            describe(obj)
        )))
    }
}

/// The common float dtype of several arrays (`None` entries are skipped), else a `TypeError`
/// naming the first argument that differs.
pub fn same_dtype(fname: &str, args: &[(&str, Option<&Bound<'_, PyAny>>)]) -> PyResult<Dt> {
    let mut first: Option<(&str, Dt)> = None;
    for (name, obj) in args {
        let Some(obj) = obj else { continue };
        let dt = float_dtype(fname, name, obj)?;
        match first {
            None => first = Some((name, dt)),
            Some((fname0, dt0)) if dt0 != dt => {
                return Err(PyTypeError::new_err(format!(
                    "{fname}: argument '{name}' is {} but '{fname0}' is {}; all float arrays of one call must share a dtype (cast with .astype)",
                    dt_str(dt),
                    dt_str(dt0)
                )))
            }
            _ => {}
        }
    }
    first
        .map(|(_, d)| d)
        .ok_or_else(|| PyTypeError::new_err(format!("{fname}: no array arguments")))
}

pub fn dt_str(d: Dt) -> &'static str {
    match d {
        Dt::F32 => "float32",
        Dt::F64 => "float64",
    }
}

/// Borrows `obj` (already known to be a `T` array) read-only.
pub fn readonly<'py, T: Element>(
    fname: &str,
    arg: &str,
    obj: &Bound<'py, PyAny>,
) -> PyResult<PyReadonlyArrayDyn<'py, T>> {
    let arr = obj.cast::<PyArrayDyn<T>>().map_err(|_| {
        PyTypeError::new_err(format!(
            "{fname}: argument '{arg}' has the wrong dtype: {}",
            describe(obj)
        ))
    })?;
    arr.try_readonly().map_err(|e| {
        PyValueError::new_err(format!(
            "{fname}: argument '{arg}' cannot be borrowed for reading ({e}); is it also passed as an output?"
        ))
    })
}

/// Borrows `obj` for writing: read-only arrays and arrays that overlap another borrowed
/// argument are `ValueError`s naming `arg`.
pub fn readwrite<'py, T: Element>(
    fname: &str,
    arg: &str,
    obj: &Bound<'py, PyAny>,
) -> PyResult<PyReadwriteArrayDyn<'py, T>> {
    let arr = obj.cast::<PyArrayDyn<T>>().map_err(|_| {
        PyTypeError::new_err(format!(
            "{fname}: argument '{arg}' has the wrong dtype: {}",
            describe(obj)
        ))
    })?;
    let writeable = obj
        .getattr("flags")
        .and_then(|f| f.getattr("writeable"))
        .and_then(|w| w.extract::<bool>())
        .unwrap_or(false);
    if !writeable {
        return Err(PyValueError::new_err(format!(
            "{fname}: argument '{arg}' is read-only but is written in place"
        )));
    }
    arr.try_readwrite().map_err(|_| {
        PyValueError::new_err(format!(
            "{fname}: argument '{arg}' is written in place but shares memory with another argument of this call"
        ))
    })
}

/// Contiguous (C-order) data of a writable borrow, or a `ValueError` naming `arg`.
pub fn c_slice_mut<'a, T: Element>(
    fname: &str,
    arg: &str,
    a: &'a mut PyReadwriteArrayDyn<'_, T>,
) -> PyResult<&'a mut [T]> {
    if !a.is_c_contiguous() {
        return Err(PyValueError::new_err(format!(
            "{fname}: argument '{arg}' must be C-contiguous to be written in place"
        )));
    }
    a.as_slice_mut()
        .map_err(|_| PyValueError::new_err(format!("{fname}: argument '{arg}' must be C-contiguous")))
}

/// `ValueError` unless `obj`'s shape equals `want`.
pub fn check_shape(fname: &str, arg: &str, got: &[usize], want: &[usize], context: &str) -> PyResult<()> {
    if got != want {
        return Err(PyValueError::new_err(format!(
            "{fname}: argument '{arg}' has shape {:?}, expected {:?}{}",
            tuple(got),
            tuple(want),
            if context.is_empty() {
                String::new()
            } else {
                format!(" ({context})")
            }
        )));
    }
    Ok(())
}

/// `ValueError` unless the array has `ndim` dimensions.
pub fn check_ndim(fname: &str, arg: &str, shape: &[usize], ndim: &[usize]) -> PyResult<()> {
    if !ndim.contains(&shape.len()) {
        let want = ndim.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(" or ");
        return Err(PyValueError::new_err(format!(
            "{fname}: argument '{arg}' must be {want}-D, got shape {}",
            tuple(shape)
        )));
    }
    Ok(())
}

/// A shape printed as a Python tuple.
pub fn tuple(s: &[usize]) -> String {
    match s.len() {
        1 => format!("({},)", s[0]),
        _ => format!("({})", s.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")),
    }
}

/// A kernel's shape error as a Python `ValueError` (the bindings validate first, so this is
/// a second line of defence).
pub fn shape_err(fname: &str, e: ShapeError) -> PyErr {
    PyValueError::new_err(format!("{fname}: {e}"))
}
