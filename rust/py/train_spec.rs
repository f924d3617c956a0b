//! The plain descriptions `TrainPlan` is built from, parsed: a layer tuple into a
//! `LayerSpec`, an optimizer `(kind, hyper)` pair into an `Optimizer`. Every value is checked
//! here (unknown kinds and hyper-parameters, missing ones, a Maxout `k` that does not divide
//! the width), so a plan is only ever built from a valid description.

use super::args::value_err;
use crate::kernels::activation::Act;
use crate::kernels::network::{LayerKind, LayerSpec};
use crate::kernels::optim::{Adagrad, Adam, NAdam, RmsProp, Sgd};
use crate::kernels::train::Optimizer;
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

/// `(kind, hyper)` → an optimizer; every key of `hyper` must be known and every needed one given.
pub(super) fn optimizer_of(f: &str, kind: &str, hyper: &Bound<'_, PyDict>) -> PyResult<Optimizer> {
    let known: &[&str] = match kind {
        "sgd" => &["lr", "momentum", "dampening", "weight_decay", "nesterov", "maximize"],
        "adagrad" => &["lr", "lr_decay", "weight_decay", "eps", "maximize"],
        "rmsprop" => &["lr", "alpha", "eps", "weight_decay", "momentum", "centered", "maximize"],
        "adam" | "adamw" => &["lr", "beta1", "beta2", "eps", "weight_decay", "amsgrad", "maximize"],
        "nadam" => &[
            "lr",
            "beta1",
            "beta2",
            "eps",
            "weight_decay",
            "momentum_decay",
            "decoupled_weight_decay",
            "maximize",
        ],
        _ => return Err(PyValueError::new_err(format!("{f}: unknown optimizer kind '{kind}'"))),
    };
    for k in hyper.keys() {
        let k: String = k.extract()?;
        if !known.contains(&k.as_str()) {
            return Err(PyValueError::new_err(format!(
                "{f}: hyper-parameter '{k}' of {kind} is not supported"
            )));
        }
    }
    let num = |k: &str| -> PyResult<f64> {
        hyper
            .get_item(k)?
            .ok_or_else(|| PyValueError::new_err(format!("{f}: hyper-parameter '{k}' of {kind} is missing")))?
            .extract::<f64>()
    };
    let flag = |k: &str| -> PyResult<bool> {
        hyper
            .get_item(k)?
            .ok_or_else(|| PyValueError::new_err(format!("{f}: hyper-parameter '{k}' of {kind} is missing")))?
            .extract::<bool>()
    };
    let opt = match kind {
        "sgd" => Optimizer::Sgd(Sgd {
            lr: num("lr")?,
            momentum: num("momentum")?,
            dampening: num("dampening")?,
            weight_decay: num("weight_decay")?,
            nesterov: flag("nesterov")?,
            maximize: flag("maximize")?,
        }),
        "adagrad" => Optimizer::Adagrad(Adagrad {
            lr: num("lr")?,
            lr_decay: num("lr_decay")?,
            weight_decay: num("weight_decay")?,
            eps: num("eps")?,
            maximize: flag("maximize")?,
        }),
        "rmsprop" => Optimizer::RmsProp(RmsProp {
            lr: num("lr")?,
            alpha: num("alpha")?,
            eps: num("eps")?,
            weight_decay: num("weight_decay")?,
            momentum: num("momentum")?,
            centered: flag("centered")?,
            maximize: flag("maximize")?,
        }),
        "adam" | "adamw" => Optimizer::Adam(Adam {
            lr: num("lr")?,
            beta1: num("beta1")?,
            beta2: num("beta2")?,
            eps: num("eps")?,
            weight_decay: num("weight_decay")?,
            amsgrad: flag("amsgrad")?,
            decoupled_weight_decay: kind == "adamw",
            maximize: flag("maximize")?,
        }),
        _ => Optimizer::NAdam(NAdam {
            lr: num("lr")?,
            beta1: num("beta1")?,
            beta2: num("beta2")?,
            eps: num("eps")?,
            weight_decay: num("weight_decay")?,
            momentum_decay: num("momentum_decay")?,
            decoupled_weight_decay: flag("decoupled_weight_decay")?,
            maximize: flag("maximize")?,
        }),
    };
    opt.validate().map_err(|e| value_err(f, e))?;
    Ok(opt)
}
