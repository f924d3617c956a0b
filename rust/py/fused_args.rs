//! The array arguments of a `FusedPlan` call: checked directly on each array's C struct and
//! then used as slices, without rust-numpy's borrow tracker.
//!
//! Per-call cost matters: a step of a small network takes microseconds, and the tracker's
//! bookkeeping for the dozens of arrays of a step costs about as much. So every array is checked
//! directly on its C struct — dtype, C-contiguity, shape, writeability — and the writable ones
//! must not overlap each other or any input (sorted address ranges, checked at every call).
//! Safety of the unchecked slices that follow:
//! - the arrays stay alive for the whole call: they are items of tuples (immutable) that the
//!   caller's frame holds, or arguments held by it;
//! - no two slices alias where one is written (the overlap check), and each slice covers
//!   exactly the array's contiguous data (C-contiguous, `len` elements of the checked dtype);
//! - the slices never outlive the call: they are kept in the plan's reusable slot vectors only
//!   between the checks and the return, and a drop guard empties those vectors on every exit,
//!   unwinding included;
//! - the GIL is released during the compute. Python code that mutates or resizes these same
//!   arrays from another thread meanwhile is unsupported (as in PyTorch): a data race.

use super::super::array::tuple;
use crate::kernels::fused::step::{Loss, Optimizer, Target};
use crate::kernels::vmath::VMath;
use numpy::npyffi::{_PyArray_GET_ITEM_DATA, NPY_ARRAY_ALIGNED, NPY_ARRAY_C_CONTIGUOUS, NPY_ARRAY_WRITEABLE};
use numpy::{Element, PyArrayDyn, PyUntypedArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyTuple;

/// The caller's arrays of one call as slices (see the module documentation for why this is
/// sound). Emptied by `Guard` when the call returns.
pub(super) struct Slots<T: 'static> {
    pub(super) params: Vec<&'static mut [T]>,
    pub(super) grads: Vec<&'static mut [T]>,
    pub(super) states: Vec<&'static mut [T]>,
    pub(super) buffers: Vec<&'static mut [T]>,
    pub(super) uniforms: Vec<&'static [T]>,
    /// `(start, end, writable, argument)` byte ranges, for the overlap check.
    ranges: Vec<(usize, usize, bool, Arg)>,
}

/// An argument of a call, named only when a message needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Arg {
    X,
    Y,
    Out,
    Param(usize),
    Grad(usize),
    State(usize),
    Buffer(usize),
    Uniform(usize),
    Order,
    Uniforms,
}

impl<T> Slots<T> {
    pub(super) fn new() -> Self {
        Self {
            params: vec![],
            grads: vec![],
            states: vec![],
            buffers: vec![],
            uniforms: vec![],
            ranges: vec![],
        }
    }

    fn clear(&mut self) {
        self.params.clear();
        self.grads.clear();
        self.states.clear();
        self.buffers.clear();
        self.uniforms.clear();
        self.ranges.clear();
    }
}

/// Empties the slots on every exit from a call.
pub(super) struct Guard<'a, T: 'static>(pub(super) &'a mut Slots<T>);

impl<T> Drop for Guard<'_, T> {
    fn drop(&mut self) {
        self.0.clear();
    }
}

/// An array's data after the checks: address and element count.
#[derive(Clone, Copy)]
pub(super) struct Raw {
    ptr: usize,
    len: usize,
}

/// Checks `obj` as a C-contiguous `E` array of shape `want` (with `free_rows`, any number of
/// rows: `want[0]` is ignored) and, with `writable`, a writeable one. Returns its data and its
/// first dimension. Nothing is allocated unless there is an error to report.
fn raw_array<E: Element>(
    f: &str,
    arg: &dyn Fn() -> String,
    obj: &Bound<'_, PyAny>,
    want: &[usize],
    free_rows: bool,
    writable: bool,
    dtype: &str,
) -> PyResult<(Raw, usize)> {
    let arr = obj.cast::<PyArrayDyn<E>>().map_err(|_| {
        PyTypeError::new_err(format!(
            "{f}: argument '{}' must be a {dtype} numpy.ndarray, got {}",
            arg(),
            super::super::array::describe(obj)
        ))
    })?;
    // SAFETY: `arr` is a live NumPy array (checked just above) and we hold the GIL.
    let fields = unsafe { &*_PyArray_GET_ITEM_DATA(arr.as_array_ptr()) };
    let s = arr.shape();
    let ok = s.len() == want.len()
        && s.iter()
            .zip(want)
            .enumerate()
            .all(|(i, (&d, &w))| d == w || (free_rows && i == 0));
    if !ok {
        let w: Vec<String> = want
            .iter()
            .enumerate()
            .map(|(i, v)| if free_rows && i == 0 { "n".into() } else { v.to_string() })
            .collect();
        return Err(PyValueError::new_err(format!(
            "{f}: argument '{}' has shape {}, expected ({}{})",
            arg(),
            tuple(s),
            w.join(", "),
            if want.len() == 1 { "," } else { "" }
        )));
    }
    if fields.flags & NPY_ARRAY_C_CONTIGUOUS == 0 {
        return Err(PyValueError::new_err(format!(
            "{f}: argument '{}' must be C-contiguous",
            arg()
        )));
    }
    // A view at an odd byte offset of a buffer is contiguous but misaligned; reading it as a
    // `&[T]` would be undefined behaviour.
    if fields.flags & NPY_ARRAY_ALIGNED == 0 {
        return Err(PyValueError::new_err(format!(
            "{f}: argument '{}' is not aligned to its dtype (a view at an odd byte offset); pass an aligned copy (np.array(a))",
            arg()
        )));
    }
    if writable && fields.flags & NPY_ARRAY_WRITEABLE == 0 {
        return Err(PyValueError::new_err(format!(
            "{f}: argument '{}' is read-only but is written in place",
            arg()
        )));
    }
    Ok((
        Raw {
            ptr: fields.data as usize,
            len: arr.len(),
        },
        s.first().copied().unwrap_or(1),
    ))
}

/// Records an argument's byte range for the overlap check.
fn note<T>(slots: &mut Slots<T>, r: Raw, size: usize, writable: bool, arg: Arg) {
    if r.len > 0 {
        slots.ranges.push((r.ptr, r.ptr + r.len * size, writable, arg));
    }
}

/// `ValueError` if a written array overlaps any other argument.
pub(super) fn check_overlaps<T>(f: &str, slots: &mut Slots<T>, meta: &Meta) -> PyResult<()> {
    slots.ranges.sort_unstable();
    for w in slots.ranges.windows(2) {
        let ((_, end0, w0, a0), (start1, _, w1, a1)) = (w[0], w[1]);
        if start1 < end0 && (w0 || w1) {
            return Err(PyValueError::new_err(format!(
                "{f}: arguments '{}' and '{}' share memory, and one of them is written in place",
                meta.arg_name(a0),
                meta.arg_name(a1)
            )));
        }
    }
    Ok(())
}

/// # Safety
/// `r` describes the live, C-contiguous data of an array of `T` that nothing else accesses
/// while the slice is used, and the slice is dropped before the call returns (module docs).
pub(super) unsafe fn slice_mut<T>(r: Raw) -> &'static mut [T] {
    if r.len == 0 {
        return &mut [];
    }
    unsafe { std::slice::from_raw_parts_mut(r.ptr as *mut T, r.len) }
}

/// # Safety
/// As `slice_mut`, for data that is only read.
pub(super) unsafe fn slice<T>(r: Raw) -> &'static [T] {
    if r.len == 0 {
        return &[];
    }
    unsafe { std::slice::from_raw_parts(r.ptr as *const T, r.len) }
}

/// What a plan knows besides its workspaces: enough to check every argument.
pub(super) struct Meta {
    pub(super) opt: Option<Optimizer>,
    pub(super) loss: Option<Loss>,
    /// The loss's options (`mae`/`huber` keep `loss: Mse` for their float targets) and the
    /// optimizer's gradient clipping (see `kernels::fused::step::Extras`).
    pub(super) loss_fn: Option<crate::kernels::losses::LossFn>,
    pub(super) clip: crate::kernels::clip::Clip,
    /// Per-parameter optimizers and learning-rate ratios (parameter groups); empty: `opt` for all.
    pub(super) per_param: Vec<(Optimizer, f64)>,
    pub(super) param_names: Vec<String>,
    pub(super) shapes: Vec<Vec<usize>>,
    pub(super) buffer_lens: Vec<usize>,
    pub(super) uniform_widths: Vec<usize>,
    /// Every state array's parameter and name, in the order of `states` (parameter groups may
    /// keep different arrays: `per_param`'s own).
    pub(super) state_of: Vec<(usize, &'static str)>,
    pub(super) input_dim: usize,
    pub(super) output_dim: usize,
}

/// The tuples of one call, as given.
pub(super) struct StepArgs<'a, 'py> {
    pub(super) params: &'a Bound<'py, PyTuple>,
    pub(super) grads: &'a Bound<'py, PyTuple>,
    pub(super) states: &'a Bound<'py, PyTuple>,
    pub(super) buffers: &'a Bound<'py, PyTuple>,
    /// `None` where the uniforms come otherwise (an epoch's flat array, or no training).
    pub(super) uniforms: Option<&'a Bound<'py, PyTuple>>,
}

fn check_count(f: &str, arg: &str, t: &Bound<'_, PyTuple>, want: usize) -> PyResult<()> {
    if t.len() != want {
        return Err(PyValueError::new_err(format!(
            "{f}: argument '{arg}' has {} arrays, expected {want}",
            t.len()
        )));
    }
    Ok(())
}

impl Meta {
    fn name(&self, i: usize) -> String {
        self.param_names.get(i).cloned().unwrap_or_else(|| format!("#{i}"))
    }

    /// The name of an argument, for a message (`params[1] (dense_0/bias)`).
    fn arg_name(&self, a: Arg) -> String {
        match a {
            Arg::X => "x".into(),
            Arg::Y => "y".into(),
            Arg::Out => "out".into(),
            Arg::Param(i) => format!("params[{i}] ({})", self.name(i)),
            Arg::Grad(i) => format!("grads[{i}] ({})", self.name(i)),
            Arg::State(i) => match self.state_of.get(i) {
                Some(&(p, key)) => format!("states[{i}] ({}: {key})", self.name(p)),
                None => format!("states[{i}]"),
            },
            Arg::Buffer(i) => format!("buffers[{i}]"),
            Arg::Uniform(i) => format!("uniforms[{i}]"),
            Arg::Order => "order".into(),
            Arg::Uniforms => "uniforms".into(),
        }
    }

    /// Checks one array argument and records it; returns its data and first dimension.
    #[allow(clippy::too_many_arguments)]
    fn take<E: Element, T>(
        &self,
        f: &str,
        s: &mut Slots<T>,
        a: Arg,
        obj: &Bound<'_, PyAny>,
        want: &[usize],
        free_rows: bool,
        writable: bool,
    ) -> PyResult<(Raw, usize)> {
        let dtype = if std::any::type_name::<E>() == "i64" {
            "int64"
        } else {
            "same-dtype"
        };
        let (r, rows) = raw_array::<E>(f, &|| self.arg_name(a), obj, want, free_rows, writable, dtype)?;
        note(s, r, std::mem::size_of::<E>(), writable, a);
        Ok((r, rows))
    }

    /// Checks `params` and `buffers` (writable in training) and, in training, `grads`,
    /// `states` and `uniforms`, filling the slots.
    pub(super) fn take_state<T: VMath + Element>(
        &self,
        f: &str,
        s: &mut Slots<T>,
        a: &StepArgs<'_, '_>,
        train: bool,
        n: usize,
    ) -> PyResult<()> {
        let np = self.shapes.len();
        check_count(f, "params", a.params, np)?;
        check_count(f, "buffers", a.buffers, self.buffer_lens.len())?;
        for (i, obj) in a.params.iter_borrowed().enumerate() {
            let (r, _) = self.take::<T, T>(f, s, Arg::Param(i), &obj, &self.shapes[i], false, train)?;
            // SAFETY: checked above; see the module documentation.
            s.params.push(unsafe { slice_mut(r) });
        }
        for (i, obj) in a.buffers.iter_borrowed().enumerate() {
            let (r, _) = self.take::<T, T>(f, s, Arg::Buffer(i), &obj, &self.buffer_lens[i..=i], false, train)?;
            // SAFETY: as above.
            s.buffers.push(unsafe { slice_mut(r) });
        }
        if !train {
            return Ok(());
        }
        if self.opt.is_none() {
            return Err(PyValueError::new_err(format!(
                "{f}: this plan was built without an optimizer"
            )));
        }
        check_count(f, "grads", a.grads, np)?;
        check_count(f, "states", a.states, self.state_of.len())?;
        for (i, obj) in a.grads.iter_borrowed().enumerate() {
            let (r, _) = self.take::<T, T>(f, s, Arg::Grad(i), &obj, &self.shapes[i], false, true)?;
            // SAFETY: as above.
            s.grads.push(unsafe { slice_mut(r) });
        }
        for (i, obj) in a.states.iter_borrowed().enumerate() {
            let shape = &self.shapes[self.state_of[i].0];
            let (r, _) = self.take::<T, T>(f, s, Arg::State(i), &obj, shape, false, true)?;
            // SAFETY: as above.
            s.states.push(unsafe { slice_mut(r) });
        }
        let Some(uniforms) = a.uniforms else {
            return Ok(());
        };
        check_count(f, "uniforms", uniforms, self.uniform_widths.len())?;
        for (i, obj) in uniforms.iter_borrowed().enumerate() {
            let (r, _) = self.take::<T, T>(f, s, Arg::Uniform(i), &obj, &[n, self.uniform_widths[i]], false, false)?;
            // SAFETY: as above (read only).
            s.uniforms.push(unsafe { slice(r) });
        }
        Ok(())
    }

    /// A 1-D array of any length: the epoch's `order` (int64) or flat `uniforms` (`T`), read only.
    pub(super) fn take_flat<E: Element, T>(
        &self,
        f: &str,
        s: &mut Slots<T>,
        a: Arg,
        obj: &Bound<'_, PyAny>,
    ) -> PyResult<Raw> {
        Ok(self.take::<E, T>(f, s, a, obj, &[0], true, false)?.0)
    }

    /// `out (rows, output_dim)` with any number of rows, written.
    pub(super) fn take_out_rows<T: Element>(&self, f: &str, s: &mut Slots<T>, out: &Bound<'_, PyAny>) -> PyResult<Raw> {
        Ok(self
            .take::<T, T>(f, s, Arg::Out, out, &[0, self.output_dim], true, true)?
            .0)
    }

    /// `x (n, input_dim)` of `T`; returns it and `n`.
    pub(super) fn take_x<T: Element>(&self, f: &str, s: &mut Slots<T>, x: &Bound<'_, PyAny>) -> PyResult<(Raw, usize)> {
        self.take::<T, T>(f, s, Arg::X, x, &[0, self.input_dim], true, false)
    }

    /// The targets for `loss`: int64 labels `(n,)` or `T` values `(n, C)` (cross-entropy takes
    /// both: values are soft targets); `true` for labels.
    pub(super) fn take_target<T: Element>(
        &self,
        f: &str,
        s: &mut Slots<T>,
        loss: Loss,
        y: &Bound<'_, PyAny>,
        n: usize,
    ) -> PyResult<(Raw, bool)> {
        let soft = || y.cast::<PyArrayDyn<T>>().is_ok_and(|a| a.ndim() == 2);
        if loss == Loss::CrossEntropy && !soft() {
            Ok((self.take::<i64, T>(f, s, Arg::Y, y, &[n], false, false)?.0, true))
        } else {
            Ok((
                self.take::<T, T>(f, s, Arg::Y, y, &[n, self.output_dim], false, false)?
                    .0,
                false,
            ))
        }
    }

    /// `out (n, output_dim)`, written.
    pub(super) fn take_out<T: Element>(
        &self,
        f: &str,
        s: &mut Slots<T>,
        out: &Bound<'_, PyAny>,
        n: usize,
    ) -> PyResult<Raw> {
        Ok(self
            .take::<T, T>(f, s, Arg::Out, out, &[n, self.output_dim], false, true)?
            .0)
    }
}

/// # Safety
/// As `slice`: `r` was checked as int64 labels or `T` targets (`labels` says which).
pub(super) unsafe fn target_of<T>(r: Raw, labels: bool) -> Target<'static, T> {
    if labels {
        Target::Labels(unsafe { slice::<i64>(r) })
    } else {
        Target::Values(unsafe { slice::<T>(r) })
    }
}
