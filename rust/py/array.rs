//! Borrowing, allocating and dtype dispatch for every binding: the one place where a NumPy
//! array becomes a Rust slice and back. Each check names the Python argument and the shapes or
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
use std::borrow::Cow;

/// The two element types every kernel is instantiated for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dt {
    F32,
    F64,
}

/// Runs a generic binding body for a dtype: `by_dtype!(dt => run(args…))` calls
/// `run::<f32>(args…)` or `run::<f64>(args…)`. `dt` is usually `same_dtype(…)?`, which names
/// the argument whose dtype differs. The one f32/f64 dispatch of the bindings.
macro_rules! by_dtype {
    ($dt:expr => $run:ident ( $($arg:expr),* $(,)? )) => {
        match $dt {
            $crate::py::array::Dt::F32 => $run::<f32>($($arg),*),
            $crate::py::array::Dt::F64 => $run::<f64>($($arg),*),
        }
    };
}
pub(crate) use by_dtype;

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

/// `ValueError` for a misaligned array (a view at an odd byte offset of a buffer): the kernels
/// read arrays as `&[T]`, which must be aligned.
pub fn check_aligned(fname: &str, arg: &str, a: &Bound<'_, PyUntypedArray>) -> PyResult<()> {
    // SAFETY: `a` is a live NumPy array and we hold the GIL.
    let flags = unsafe { (*numpy::npyffi::_PyArray_GET_ITEM_DATA(a.as_array_ptr())).flags };
    if flags & numpy::npyffi::NPY_ARRAY_ALIGNED == 0 {
        return Err(PyValueError::new_err(format!(
            "{fname}: argument '{arg}' is not aligned to its dtype (a view at an odd byte offset); \
             pass an aligned copy (np.array(a))"
        )));
    }
    Ok(())
}

/// `obj` as a `T` array, aligned: the check both borrows start with.
fn typed<'a, 'py, T: Element>(
    fname: &str,
    arg: &str,
    obj: &'a Bound<'py, PyAny>,
) -> PyResult<&'a Bound<'py, PyArrayDyn<T>>> {
    let arr = obj.cast::<PyArrayDyn<T>>().map_err(|_| {
        PyTypeError::new_err(format!(
            "{fname}: argument '{arg}' has the wrong dtype: {}",
            describe(obj)
        ))
    })?;
    check_aligned(fname, arg, arr.as_untyped())?;
    Ok(arr)
}

/// Borrows `obj` (already known to be a `T` array) read-only.
pub fn readonly<'py, T: Element>(
    fname: &str,
    arg: &str,
    obj: &Bound<'py, PyAny>,
) -> PyResult<PyReadonlyArrayDyn<'py, T>> {
    let arr = typed::<T>(fname, arg, obj)?;
    // Every binding takes its read borrows before its write borrows, so a read borrow that
    // fails means another call, on another thread, is writing this array right now.
    arr.try_readonly().map_err(|_| {
        PyValueError::new_err(format!(
            "{fname}: argument '{arg}' cannot be read: another call (on another thread) is writing \
             that array in place right now (an optimizer step, an out= or a running statistic); \
             wait for it to finish, or give each thread its own arrays"
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
    let arr = typed::<T>(fname, arg, obj)?;
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
            "{fname}: argument '{arg}' is written in place but shares memory with another argument of this call, \
             or another call on another thread is using that array right now"
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
/// a second line of defence); `shape_err` adds the function's name.
impl From<ShapeError> for PyErr {
    fn from(e: ShapeError) -> PyErr {
        PyValueError::new_err(e.to_string())
    }
}

/// A kernel's shape error as a `ValueError` prefixed with the function's name.
pub fn shape_err(fname: &str, e: ShapeError) -> PyErr {
    PyValueError::new_err(format!("{fname}: {e}"))
}

/// C-ordered data of a read-only borrow: borrowed when contiguous, else copied once (into a
/// fallibly allocated buffer).
pub fn c_order<'a, T: Element + Clone>(fname: &str, a: &'a PyReadonlyArrayDyn<'_, T>) -> PyResult<Cow<'a, [T]>> {
    // `as_slice` also accepts Fortran order, whose memory order is not the logical one.
    match a.as_slice() {
        Ok(s) if a.is_c_contiguous() => Ok(Cow::Borrowed(s)),
        _ => c_copy(fname, "an input", a.as_array()).map(Cow::Owned),
    }
}

/// The mutable data of an array this binding just created (always C-contiguous).
pub fn fresh<'a, T: Element>(w: &'a mut PyReadwriteArrayDyn<'_, T>) -> &'a mut [T] {
    w.as_slice_mut().expect("a new array is contiguous")
}

// --- allocations whose size comes from the caller ------------------------------------------------
//
// An allocation that fails in Rust's infallible paths (`vec!`, `collect`) aborts the process,
// and rust-numpy's `PyArray::zeros`/`new` panic on NumPy's NULL (a `PanicException`, which
// `except Exception` misses). Every array or buffer sized by the caller's shapes goes through
// these instead: the element count is checked arithmetic (an overflow is a `ValueError`), and a
// failed allocation is a `MemoryError` saying what was being allocated and how many bytes.

/// `Π shape`, or a `ValueError` naming `what` when the product overflows.
pub fn numel(fname: &str, what: &str, shape: &[usize]) -> PyResult<usize> {
    shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).ok_or_else(|| {
        PyValueError::new_err(format!(
            "{fname}: the shape {} of {what} has more elements than this machine can address",
            tuple(shape)
        ))
    })
}

/// Bytes of `len` elements of `T`, or a `ValueError` on overflow; `isize::MAX` is the most any
/// allocation may ask for.
fn nbytes<T>(fname: &str, what: &str, len: usize) -> PyResult<usize> {
    len.checked_mul(std::mem::size_of::<T>())
        .filter(|&b| b <= isize::MAX as usize)
        .ok_or_else(|| {
            PyValueError::new_err(format!(
                "{fname}: {what} would need more than {} bytes ({len} elements)",
                isize::MAX
            ))
        })
}

pub fn memory_err(fname: &str, what: &str, bytes: usize) -> PyErr {
    pyo3::exceptions::PyMemoryError::new_err(format!(
        "{fname}: cannot allocate {what}: {bytes} bytes ({:.1} GiB)",
        bytes as f64 / (1u64 << 30) as f64
    ))
}

/// A `Vec` of `len` copies of `fill`, or a `MemoryError`.
pub fn alloc_vec<T: Clone>(fname: &str, what: &str, len: usize, fill: T) -> PyResult<Vec<T>> {
    let bytes = nbytes::<T>(fname, what, len)?;
    let mut v = Vec::new();
    v.try_reserve_exact(len).map_err(|_| memory_err(fname, what, bytes))?;
    v.resize(len, fill);
    Ok(v)
}

/// The elements of an array view in C order, copied into a fallibly allocated `Vec`.
pub fn c_copy<T: Clone>(fname: &str, arg: &str, view: numpy::ndarray::ArrayViewD<'_, T>) -> PyResult<Vec<T>> {
    let what = format!("a C-ordered copy of {arg} (shape {})", tuple(view.shape()));
    let bytes = nbytes::<T>(fname, &what, view.len())?;
    let mut v = Vec::new();
    v.try_reserve_exact(view.len())
        .map_err(|_| memory_err(fname, &what, bytes))?;
    v.extend(view.iter().cloned());
    Ok(v)
}

/// A new zeroed C-ordered array of `shape`; NumPy's own allocation failure becomes a
/// `MemoryError` naming `what` and the bytes.
pub fn zeros<'py, T: Element>(
    py: Python<'py>,
    fname: &str,
    what: &str,
    shape: &[usize],
) -> PyResult<Bound<'py, PyArrayDyn<T>>> {
    allocate(py, fname, what, shape, true)
}

/// A new C-ordered array for a kernel to fill, left unzeroed: zeroing would cost a pass over
/// memory as long as a cheap activation itself.
///
/// Contract: the caller hands the whole array to a kernel that writes each element (every
/// kernel's outputs are fully written, empty shapes included) before the array reaches
/// Python; on an error the array is dropped unseen. Its memory comes from NumPy's allocator,
/// and any bit pattern is a valid `f32`, `f64` or `i64`.
pub fn uninit<'py, T: Element>(
    py: Python<'py>,
    fname: &str,
    what: &str,
    shape: &[usize],
) -> PyResult<Bound<'py, PyArrayDyn<T>>> {
    allocate(py, fname, what, shape, false)
}

fn allocate<'py, T: Element>(
    py: Python<'py>,
    fname: &str,
    what: &str,
    shape: &[usize],
    zeroed: bool,
) -> PyResult<Bound<'py, PyArrayDyn<T>>> {
    use numpy::npyffi::{self, npy_intp, PY_ARRAY_API};
    use numpy::PyArrayDescrMethods;
    let len = numel(fname, what, shape)?;
    let bytes = nbytes::<T>(fname, what, len)?;
    let mut dims: Vec<npy_intp> = shape.iter().map(|&d| d as npy_intp).collect();
    let describe = || format!("{what} ({} {})", tuple(shape), T::get_dtype(py));
    // SAFETY: as rust-numpy's `PyArray::zeros`/`new` (the descriptor reference is stolen by
    // NumPy, the dims outlive the call), but a NULL result is returned as the error NumPy set
    // instead of a panic. An uninitialized array is fully written by the caller's kernel
    // before Python sees it (see `uninit`).
    unsafe {
        let descr = T::get_dtype(py).into_dtype_ptr();
        let ptr = if zeroed {
            PY_ARRAY_API.PyArray_Zeros(py, dims.len() as i32, dims.as_mut_ptr(), descr, 0)
        } else {
            PY_ARRAY_API.PyArray_NewFromDescr(
                py,
                npyffi::get_type_object(py, npyffi::NpyTypes::PyArray_Type),
                descr,
                dims.len() as i32,
                dims.as_mut_ptr(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                0,
                std::ptr::null_mut(),
            )
        };
        if ptr.is_null() {
            let err = PyErr::take(py);
            return Err(match err {
                Some(e) if !e.is_instance_of::<pyo3::exceptions::PyMemoryError>(py) => e,
                _ => memory_err(fname, &describe(), bytes),
            });
        }
        Ok(Bound::from_owned_ptr(py, ptr).cast_into_unchecked())
    }
}
