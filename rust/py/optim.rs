//! `sgd_step`, `adagrad_step`, `rmsprop_step`, `adam_step`, `adamw_step`, `nadam_step`: in-place
//! optimizer updates (see `kernels::optim` for the math).
//!
//! `param` and the state arrays are written in place, so they must be writable, C-contiguous
//! and disjoint; `grad` is only read: any layout is accepted (copied to C order when needed),
//! but it must not share memory with an array being written. Every array has `param`'s shape
//! and dtype. The kernel checks the hyper-parameters, the step and which states the
//! configuration needs; all of it happens before the first write.

use super::array::{by_dtype, c_slice_mut, check_shape, describe, readwrite, same_dtype, shape_err};
use crate::kernels::optim::{self, Adagrad, Adam, NAdam, RMSprop, Sgd};
use crate::kernels::{Real, ShapeError};
use numpy::{Element, PyArrayDyn, PyArrayMethods, PyReadonlyArrayDyn, PyReadwriteArrayDyn, PyUntypedArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use std::borrow::Cow;

type Obj<'py> = Bound<'py, PyAny>;

/// The borrows of one call: `param` and the `N` optional states for writing, `grad` for reading.
struct Borrowed<'py, T: Element, const N: usize> {
    param: PyReadwriteArrayDyn<'py, T>,
    grad: PyReadonlyArrayDyn<'py, T>,
    states: [Option<PyReadwriteArrayDyn<'py, T>>; N],
}

/// Borrows and checks every array (writability, aliasing, shapes) without writing anything.
fn borrow<'py, T: Element, const N: usize>(
    f: &str,
    param: &Obj<'py>,
    grad: &Obj<'py>,
    states: [(&str, Option<&Obj<'py>>); N],
) -> PyResult<Borrowed<'py, T, N>> {
    let param = readwrite::<T>(f, "param", param)?;
    let shape = param.shape().to_vec();
    let mut st: [Option<PyReadwriteArrayDyn<'py, T>>; N] = std::array::from_fn(|_| None);
    for (slot, (name, obj)) in st.iter_mut().zip(states) {
        if let Some(obj) = obj {
            let s = readwrite::<T>(f, name, obj)?;
            check_shape(f, name, s.shape(), &shape, "the shape of 'param'")?;
            *slot = Some(s);
        }
    }
    // The writable borrows above make rust-numpy refuse a read borrow of overlapping memory.
    let g = grad
        .cast::<PyArrayDyn<T>>()
        .map_err(|_| PyTypeError::new_err(format!("{f}: argument 'grad' has the wrong dtype: {}", describe(grad))))?
        .try_readonly()
        .map_err(|_| {
            PyValueError::new_err(format!(
                "{f}: argument 'grad' shares memory with an array this call writes in place ('param' or a state; pass a copy), \
                 or another call on another thread is writing it right now"
            ))
        })?;
    check_shape(f, "grad", g.shape(), &shape, "the shape of 'param'")?;
    Ok(Borrowed {
        param,
        grad: g,
        states: st,
    })
}

impl<'py, T: Element + Real, const N: usize> Borrowed<'py, T, N> {
    /// Runs `kernel(param, grad, states)` without the GIL.
    fn run<R: Send>(
        &mut self,
        py: Python<'_>,
        f: &str,
        names: [&str; N],
        kernel: impl FnOnce(&mut [T], &[T], [Option<&mut [T]>; N]) -> Result<R, ShapeError> + Send,
    ) -> PyResult<R> {
        for (s, name) in self.states.iter().zip(names) {
            if matches!(s, Some(s) if !s.is_c_contiguous()) {
                return Err(PyValueError::new_err(format!(
                    "{f}: argument '{name}' must be C-contiguous to be written in place"
                )));
            }
        }
        // `as_slice` also accepts Fortran order, whose memory order is not the logical one.
        let g: Cow<'_, [T]> = match self.grad.as_slice() {
            Ok(s) if self.grad.is_c_contiguous() => Cow::Borrowed(s),
            _ => Cow::Owned(super::array::c_copy(f, "'grad'", self.grad.as_array())?),
        };
        let p = c_slice_mut(f, "param", &mut self.param)?;
        let st = self
            .states
            .each_mut()
            .map(|s| s.as_mut().and_then(|s| s.as_slice_mut().ok()));
        py.detach(|| kernel(p, &g, st)).map_err(|e| shape_err(f, e))
    }
}

/// `step` as the kernels take it, or a `ValueError` for step < 1.
fn step_arg(f: &str, step: i64) -> PyResult<u64> {
    if step < 1 {
        return Err(PyValueError::new_err(format!(
            "{f}: argument 'step' must be >= 1 (steps count from 1), got {step}"
        )));
    }
    Ok(step as u64)
}

// ---------------------------------------------------------------------------------------------

/// One step of ``torch.optim.SGD`` in place (momentum, dampening, Nesterov, weight decay,
/// maximize). ``momentum_buffer`` is required exactly when ``momentum > 0``.
#[pyfunction]
#[pyo3(signature = (param, grad, momentum_buffer=None, *, step, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=false, maximize=false))]
#[allow(clippy::too_many_arguments)]
fn sgd_step<'py>(
    py: Python<'py>,
    param: &Obj<'py>,
    grad: &Obj<'py>,
    momentum_buffer: Option<&Obj<'py>>,
    step: i64,
    lr: f64,
    momentum: f64,
    dampening: f64,
    weight_decay: f64,
    nesterov: bool,
    maximize: bool,
) -> PyResult<()> {
    const F: &str = "sgd_step";
    let h = Sgd {
        lr,
        momentum,
        dampening,
        weight_decay,
        nesterov,
        maximize,
    };
    let step = step_arg(F, step)?;
    fn go<T: Element + Real>(
        py: Python<'_>,
        p: &Obj<'_>,
        g: &Obj<'_>,
        b: Option<&Obj<'_>>,
        step: u64,
        h: Sgd,
    ) -> PyResult<()> {
        borrow::<T, 1>(F, p, g, [("momentum_buffer", b)])?.run(py, F, ["momentum_buffer"], |p, g, [b]| {
            optim::sgd_step(p, g, b, step, &h)
        })
    }
    by_dtype!(same_dtype(
        F,
        &[
            ("param", Some(param)),
            ("grad", Some(grad)),
            ("momentum_buffer", momentum_buffer),
        ],
    )? => go(py, param, grad, momentum_buffer, step, h))
}

/// One step of ``torch.optim.Adagrad`` in place.
#[pyfunction]
#[pyo3(signature = (param, grad, state_sum, *, step, lr=1e-2, lr_decay=0.0, weight_decay=0.0, eps=1e-10, maximize=false))]
#[allow(clippy::too_many_arguments)]
fn adagrad_step<'py>(
    py: Python<'py>,
    param: &Obj<'py>,
    grad: &Obj<'py>,
    state_sum: &Obj<'py>,
    step: i64,
    lr: f64,
    lr_decay: f64,
    weight_decay: f64,
    eps: f64,
    maximize: bool,
) -> PyResult<()> {
    const F: &str = "adagrad_step";
    let h = Adagrad {
        lr,
        lr_decay,
        weight_decay,
        eps,
        maximize,
    };
    let step = step_arg(F, step)?;
    fn go<T: Element + Real>(
        py: Python<'_>,
        p: &Obj<'_>,
        g: &Obj<'_>,
        s: &Obj<'_>,
        step: u64,
        h: Adagrad,
    ) -> PyResult<()> {
        borrow::<T, 1>(F, p, g, [("state_sum", Some(s))])?.run(py, F, ["state_sum"], |p, g, [s]| match s {
            Some(s) => optim::adagrad_step(p, g, s, step, &h),
            None => Err(ShapeError("argument 'state_sum' is required".into())),
        })
    }
    by_dtype!(same_dtype(
        F,
        &[
            ("param", Some(param)),
            ("grad", Some(grad)),
            ("state_sum", Some(state_sum)),
        ],
    )? => go(py, param, grad, state_sum, step, h))
}

/// One step of ``torch.optim.RMSprop`` in place. ``momentum_buffer`` is required exactly when
/// ``momentum > 0``, ``grad_avg`` exactly when ``centered``.
#[pyfunction]
#[pyo3(signature = (param, grad, square_avg, momentum_buffer=None, grad_avg=None, *, step, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=false, maximize=false))]
#[allow(clippy::too_many_arguments)]
fn rmsprop_step<'py>(
    py: Python<'py>,
    param: &Obj<'py>,
    grad: &Obj<'py>,
    square_avg: &Obj<'py>,
    momentum_buffer: Option<&Obj<'py>>,
    grad_avg: Option<&Obj<'py>>,
    step: i64,
    lr: f64,
    alpha: f64,
    eps: f64,
    weight_decay: f64,
    momentum: f64,
    centered: bool,
    maximize: bool,
) -> PyResult<()> {
    const F: &str = "rmsprop_step";
    let h = RMSprop {
        lr,
        alpha,
        eps,
        weight_decay,
        momentum,
        centered,
        maximize,
    };
    let step = step_arg(F, step)?;
    let states = [
        ("square_avg", Some(square_avg)),
        ("momentum_buffer", momentum_buffer),
        ("grad_avg", grad_avg),
    ];
    fn go<T: Element + Real>(
        py: Python<'_>,
        p: &Obj<'_>,
        g: &Obj<'_>,
        st: [(&str, Option<&Obj<'_>>); 3],
        step: u64,
        h: RMSprop,
    ) -> PyResult<()> {
        borrow::<T, 3>(F, p, g, st)?.run(
            py,
            F,
            ["square_avg", "momentum_buffer", "grad_avg"],
            |p, g, [s, b, a]| match s {
                Some(s) => optim::rmsprop_step(p, g, s, b, a, step, &h),
                None => Err(ShapeError("argument 'square_avg' is required".into())),
            },
        )
    }
    let dt = same_dtype(
        F,
        &[
            ("param", Some(param)),
            ("grad", Some(grad)),
            ("square_avg", Some(square_avg)),
            ("momentum_buffer", momentum_buffer),
            ("grad_avg", grad_avg),
        ],
    )?;
    by_dtype!(dt => go(py, param, grad, states, step, h))
}

#[allow(clippy::too_many_arguments)]
fn adam_common<'py>(
    py: Python<'py>,
    f: &'static str,
    param: &Obj<'py>,
    grad: &Obj<'py>,
    exp_avg: &Obj<'py>,
    exp_avg_sq: &Obj<'py>,
    max_exp_avg_sq: Option<&Obj<'py>>,
    step: i64,
    h: Adam,
) -> PyResult<()> {
    let step = step_arg(f, step)?;
    let states = [
        ("exp_avg", Some(exp_avg)),
        ("exp_avg_sq", Some(exp_avg_sq)),
        ("max_exp_avg_sq", max_exp_avg_sq),
    ];
    fn go<T: Element + Real>(
        py: Python<'_>,
        f: &str,
        p: &Obj<'_>,
        g: &Obj<'_>,
        st: [(&str, Option<&Obj<'_>>); 3],
        step: u64,
        h: Adam,
    ) -> PyResult<()> {
        borrow::<T, 3>(f, p, g, st)?.run(
            py,
            f,
            ["exp_avg", "exp_avg_sq", "max_exp_avg_sq"],
            |p, g, [m, v, vm]| match (m, v) {
                (Some(m), Some(v)) => optim::adam_step(p, g, m, v, vm, step, &h),
                _ => Err(ShapeError("arguments 'exp_avg' and 'exp_avg_sq' are required".into())),
            },
        )
    }
    let dt = same_dtype(
        f,
        &[
            ("param", Some(param)),
            ("grad", Some(grad)),
            ("exp_avg", Some(exp_avg)),
            ("exp_avg_sq", Some(exp_avg_sq)),
            ("max_exp_avg_sq", max_exp_avg_sq),
        ],
    )?;
    by_dtype!(dt => go(py, f, param, grad, states, step, h))
}

/// One step of ``torch.optim.Adam`` in place (AMSGrad with ``amsgrad``, which requires
/// ``max_exp_avg_sq``; AdamW with ``decoupled_weight_decay``).
#[pyfunction]
#[pyo3(signature = (param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq=None, *, step, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, amsgrad=false, decoupled_weight_decay=false, maximize=false))]
#[allow(clippy::too_many_arguments)]
fn adam_step<'py>(
    py: Python<'py>,
    param: &Obj<'py>,
    grad: &Obj<'py>,
    exp_avg: &Obj<'py>,
    exp_avg_sq: &Obj<'py>,
    max_exp_avg_sq: Option<&Obj<'py>>,
    step: i64,
    lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
    amsgrad: bool,
    decoupled_weight_decay: bool,
    maximize: bool,
) -> PyResult<()> {
    let h = Adam {
        lr,
        beta1,
        beta2,
        eps,
        weight_decay,
        amsgrad,
        decoupled_weight_decay,
        maximize,
    };
    adam_common(
        py,
        "adam_step",
        param,
        grad,
        exp_avg,
        exp_avg_sq,
        max_exp_avg_sq,
        step,
        h,
    )
}

/// One step of ``torch.optim.AdamW`` in place: Adam with decoupled weight decay.
#[pyfunction]
#[pyo3(signature = (param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq=None, *, step, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=1e-2, amsgrad=false, maximize=false))]
#[allow(clippy::too_many_arguments)]
fn adamw_step<'py>(
    py: Python<'py>,
    param: &Obj<'py>,
    grad: &Obj<'py>,
    exp_avg: &Obj<'py>,
    exp_avg_sq: &Obj<'py>,
    max_exp_avg_sq: Option<&Obj<'py>>,
    step: i64,
    lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
    amsgrad: bool,
    maximize: bool,
) -> PyResult<()> {
    let h = Adam {
        lr,
        beta1,
        beta2,
        eps,
        weight_decay,
        amsgrad,
        decoupled_weight_decay: true,
        maximize,
    };
    adam_common(
        py,
        "adamw_step",
        param,
        grad,
        exp_avg,
        exp_avg_sq,
        max_exp_avg_sq,
        step,
        h,
    )
}

/// One step of ``torch.optim.NAdam`` in place; returns the updated ``mu_product`` (start at 1.0).
#[pyfunction]
#[pyo3(signature = (param, grad, exp_avg, exp_avg_sq, *, step, mu_product, lr=2e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, momentum_decay=4e-3, decoupled_weight_decay=false, maximize=false))]
#[allow(clippy::too_many_arguments)]
fn nadam_step<'py>(
    py: Python<'py>,
    param: &Obj<'py>,
    grad: &Obj<'py>,
    exp_avg: &Obj<'py>,
    exp_avg_sq: &Obj<'py>,
    step: i64,
    mu_product: f64,
    lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
    momentum_decay: f64,
    decoupled_weight_decay: bool,
    maximize: bool,
) -> PyResult<f64> {
    const F: &str = "nadam_step";
    let h = NAdam {
        lr,
        beta1,
        beta2,
        eps,
        weight_decay,
        momentum_decay,
        decoupled_weight_decay,
        maximize,
    };
    let step = step_arg(F, step)?;
    let states = [("exp_avg", Some(exp_avg)), ("exp_avg_sq", Some(exp_avg_sq))];
    fn go<T: Element + Real>(
        py: Python<'_>,
        p: &Obj<'_>,
        g: &Obj<'_>,
        st: [(&str, Option<&Obj<'_>>); 2],
        step: u64,
        mp: f64,
        h: NAdam,
    ) -> PyResult<f64> {
        borrow::<T, 2>(F, p, g, st)?.run(py, F, ["exp_avg", "exp_avg_sq"], |p, g, [m, v]| match (m, v) {
            (Some(m), Some(v)) => optim::nadam_step(p, g, m, v, step, mp, &h),
            _ => Err(ShapeError("arguments 'exp_avg' and 'exp_avg_sq' are required".into())),
        })
    }
    by_dtype!(same_dtype(
        F,
        &[
            ("param", Some(param)),
            ("grad", Some(grad)),
            ("exp_avg", Some(exp_avg)),
            ("exp_avg_sq", Some(exp_avg_sq)),
        ],
    )? => go(py, param, grad, states, step, mu_product, h))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(sgd_step, m)?)?;
    m.add_function(wrap_pyfunction!(adagrad_step, m)?)?;
    m.add_function(wrap_pyfunction!(rmsprop_step, m)?)?;
    m.add_function(wrap_pyfunction!(adam_step, m)?)?;
    m.add_function(wrap_pyfunction!(adamw_step, m)?)?;
    m.add_function(wrap_pyfunction!(nadam_step, m)?)?;
    Ok(())
}
