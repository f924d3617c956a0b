//! The plain descriptions `FusedPlan` is built from, parsed: a layer tuple into a
//! `LayerSpec`, an optimizer `(kind, hyper)` pair into an `Optimizer`. Every value is checked
//! here (unknown kinds and hyper-parameters, missing ones, a Maxout `k` that does not divide
//! the width), so a plan is only ever built from a valid description.

use super::super::array::shape_err;
use crate::kernels::activation::Act;
use crate::kernels::fused::network::{LayerKind, LayerSpec};
use crate::kernels::fused::step::Optimizer;
use crate::kernels::optim::{Adam, Hyper, HyperValue};
use crate::kernels::vmath::VMath;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

fn act_of<T: VMath>(f: &str, name: &str, alpha: Option<f64>) -> PyResult<Act<T>> {
    Act::<T>::parse(name, alpha).map_err(|e| PyValueError::new_err(format!("{f}: {e}")))
}

pub(super) fn layer_spec<T: VMath>(f: &str, i: usize, item: &Bound<'_, PyAny>) -> PyResult<LayerSpec<T>> {
    let t = item
        .cast::<PyTuple>()
        .map_err(|_| PyTypeError::new_err(format!("{f}: layers[{i}] must be a tuple")))?;
    let kind: String = t.get_item(0)?.extract()?;
    let bad = |e: PyErr| PyValueError::new_err(format!("{f}: layers[{i}] ({kind}): {e}"));
    let spec = match kind.as_str() {
        "dense" => {
            let (_, inp, out, bias, act, alpha): (String, usize, usize, bool, String, Option<f64>) =
                t.extract().map_err(bad)?;
            LayerSpec {
                kind: LayerKind::Dense {
                    bias,
                    act: act_of(f, &act, alpha)?,
                },
                inp,
                out,
            }
        }
        "batch_norm" => {
            let (_, m, momentum, eps): (String, usize, f64, f64) = t.extract().map_err(bad)?;
            LayerSpec {
                kind: LayerKind::BatchNorm { momentum, eps },
                inp: m,
                out: m,
            }
        }
        "activation" => {
            let (_, m, act, alpha): (String, usize, String, Option<f64>) = t.extract().map_err(bad)?;
            let kind = match act.as_str() {
                "softmax" => LayerKind::Softmax,
                "log_softmax" => LayerKind::LogSoftmax,
                _ => LayerKind::Activation(act_of(f, &act, alpha)?),
            };
            LayerSpec { kind, inp: m, out: m }
        }
        "prelu" => {
            let (_, m): (String, usize) = t.extract().map_err(bad)?;
            LayerSpec {
                kind: LayerKind::PRelu,
                inp: m,
                out: m,
            }
        }
        "maxout" => {
            let (_, inp, k): (String, usize, usize) = t.extract().map_err(bad)?;
            if k == 0 || inp % k != 0 {
                return Err(PyValueError::new_err(format!(
                    "{f}: layers[{i}] (maxout): k={k} does not divide {inp}"
                )));
            }
            LayerSpec {
                kind: LayerKind::Maxout { k },
                inp,
                out: inp / k,
            }
        }
        "dropout" => {
            let (_, m, rate): (String, usize, f64) = t.extract().map_err(bad)?;
            LayerSpec {
                kind: LayerKind::Dropout { rate },
                inp: m,
                out: m,
            }
        }
        "alpha_dropout" => {
            let (_, m, rate, a, b, alpha_p): (String, usize, f64, f64, f64, f64) = t.extract().map_err(bad)?;
            LayerSpec {
                kind: LayerKind::AlphaDropout { rate, a, b, alpha_p },
                inp: m,
                out: m,
            }
        }
        _ => {
            return Err(PyValueError::new_err(format!(
                "{f}: layers[{i}] has an unknown kind '{kind}'"
            )))
        }
    };
    Ok(spec)
}

/// The fields of `H` read from `hyper`: every key must be a field (less `fixed`, which the
/// optimizer's kind decides) and every field must be given.
fn hyper_of<H: Hyper>(f: &str, kind: &str, hyper: &Bound<'_, PyDict>, fixed: &[&str]) -> PyResult<H> {
    let fields = || H::FIELDS.iter().filter(|(name, _)| !fixed.contains(name));
    for k in hyper.keys() {
        let k: String = k.extract()?;
        if !fields().any(|(name, _)| *name == k) {
            return Err(PyValueError::new_err(format!(
                "{f}: hyper-parameter '{k}' of {kind} is not supported"
            )));
        }
    }
    let mut h = H::default();
    for &(name, is_flag) in fields() {
        let v = hyper
            .get_item(name)?
            .ok_or_else(|| PyValueError::new_err(format!("{f}: hyper-parameter '{name}' of {kind} is missing")))?;
        let value = if is_flag {
            HyperValue::Flag(v.extract()?)
        } else {
            HyperValue::Num(v.extract()?)
        };
        h.set(name, value);
    }
    Ok(h)
}

/// `(kind, hyper)` → an optimizer; every key of `hyper` must be known and every needed one given.
pub(super) fn optimizer_of(f: &str, kind: &str, hyper: &Bound<'_, PyDict>) -> PyResult<Optimizer> {
    // Adam and AdamW are one rule; the kind, not a key, says which decay it uses.
    let adam = |decoupled: bool| -> PyResult<Optimizer> {
        let h: Adam = hyper_of(f, kind, hyper, &["decoupled_weight_decay"])?;
        Ok(Optimizer::Adam(Adam {
            decoupled_weight_decay: decoupled,
            ..h
        }))
    };
    let opt = match kind {
        "sgd" => Optimizer::Sgd(hyper_of(f, kind, hyper, &[])?),
        "adagrad" => Optimizer::Adagrad(hyper_of(f, kind, hyper, &[])?),
        "rmsprop" => Optimizer::RMSprop(hyper_of(f, kind, hyper, &[])?),
        "adam" => adam(false)?,
        "adamw" => adam(true)?,
        "nadam" => Optimizer::NAdam(hyper_of(f, kind, hyper, &[])?),
        _ => return Err(PyValueError::new_err(format!("{f}: unknown optimizer kind '{kind}'"))),
    };
    opt.validate().map_err(|e| shape_err(f, e))?;
    Ok(opt)
}
