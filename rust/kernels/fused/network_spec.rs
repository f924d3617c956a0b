//! The layer list of a [`super::Network`]: what each layer computes and its widths (the math
//! of every kind is in `network.rs`'s documentation), the shapes of its parameters and
//! buffers, and the checks of its hyper-parameters.

use crate::ensure;
use crate::kernels::activation::Act;
use crate::kernels::batch_norm;
use crate::kernels::{Real, ShapeError};

/// What a layer computes (its widths are in [`LayerSpec`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LayerKind<T> {
    /// `y = f(x·W + b)`; parameters: the kernel `W (in, out)`, then the bias `b (out,)` if any.
    Dense {
        bias: bool,
        act: Act<T>,
    },
    /// Parameters γ, β; buffers running mean, running variance (all `(m,)`).
    BatchNorm {
        momentum: f64,
        eps: f64,
    },
    /// An elementwise activation.
    Activation(Act<T>),
    Softmax,
    LogSoftmax,
    /// Parameter: the slopes `(m,)`.
    PRelu,
    /// `in = out·k`.
    Maxout {
        k: usize,
    },
    /// Inverted dropout; `rate ∈ [0, 1)`.
    Dropout {
        rate: f64,
    },
    /// Alpha dropout with its affine correction `a`, `b` and the saturation value `alpha_p`.
    AlphaDropout {
        rate: f64,
        a: f64,
        b: f64,
        alpha_p: f64,
    },
}

/// One layer: its kind and its input and output widths.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LayerSpec<T> {
    pub kind: LayerKind<T>,
    pub inp: usize,
    pub out: usize,
}

impl<T: Real> LayerSpec<T> {
    /// Shapes of the layer's parameters, in the model's order.
    pub fn param_shapes(&self) -> Vec<Vec<usize>> {
        match self.kind {
            LayerKind::Dense { bias, .. } => {
                let mut v = vec![vec![self.inp, self.out]];
                if bias {
                    v.push(vec![self.out]);
                }
                v
            }
            LayerKind::BatchNorm { .. } => vec![vec![self.out], vec![self.out]],
            LayerKind::PRelu => vec![vec![self.out]],
            _ => vec![],
        }
    }

    /// Number of non-trainable buffers (BatchNorm's running mean and variance), each `(out,)`.
    pub fn n_buffers(&self) -> usize {
        match self.kind {
            LayerKind::BatchNorm { .. } => 2,
            _ => 0,
        }
    }

    /// Whether the layer takes a matrix of uniforms `(n, out)` in a training forward.
    pub fn draws(&self) -> bool {
        match self.kind {
            LayerKind::Dropout { rate } | LayerKind::AlphaDropout { rate, .. } => rate > 0.0,
            _ => false,
        }
    }

    /// Whether the layer's output is its input (no buffer, no arithmetic).
    pub(super) fn passes_through(&self, training: bool) -> bool {
        match self.kind {
            LayerKind::Activation(Act::Identity) => true,
            LayerKind::Dropout { .. } | LayerKind::AlphaDropout { .. } => !(training && self.draws()),
            _ => false,
        }
    }

    pub(super) fn check(&self, i: usize) -> Result<(), ShapeError> {
        let (inp, out) = (self.inp, self.out);
        ensure!(
            inp >= 1 && out >= 1,
            "layer {i}: widths must be >= 1, got in={inp}, out={out}"
        );
        match self.kind {
            LayerKind::Dense { .. } => {}
            LayerKind::Maxout { k } => {
                ensure!(
                    k >= 1 && inp == out * k,
                    "layer {i} (maxout): in={inp} must be out={out} times k={k}"
                )
            }
            _ => ensure!(
                inp == out,
                "layer {i}: in={inp} and out={out} must be equal for this layer"
            ),
        }
        match self.kind {
            LayerKind::BatchNorm { momentum, eps } => batch_norm::check_hyper(momentum, eps)
                .map_err(|e| ShapeError(format!("layer {i} (batch_norm): {e}")))?,
            LayerKind::Dropout { rate } | LayerKind::AlphaDropout { rate, .. } => ensure!(
                rate.is_finite() && (0.0..1.0).contains(&rate),
                "layer {i} (dropout): rate must be in [0, 1), got {rate}"
            ),
            _ => {}
        }
        if let LayerKind::AlphaDropout { a, b, alpha_p, .. } = self.kind {
            ensure!(
                a.is_finite() && b.is_finite() && alpha_p.is_finite(),
                "layer {i} (alpha_dropout): a, b and alpha_p must be finite"
            );
        }
        Ok(())
    }
}
