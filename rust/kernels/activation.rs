//! Activation functions: forward `y = f(x)` and backward `dx = dy · f'(x)`, elementwise on slices,
//! plus the fused bias + activation passes of a dense layer.
//!
//! | activation   | f(x)                                  | f'(x), with y = f(x)        |
//! |--------------|---------------------------------------|-----------------------------|
//! | `identity`   | x                                     | 1                           |
//! | `sigmoid`    | 1 / (1 + e^(−x))                      | y (1 − y)                   |
//! | `tanh`       | tanh x                                | 1 − y²                      |
//! | `relu`       | max(x, 0)                             | [x > 0]                     |
//! | `leaky_relu` | x if x > 0 else α x (α = 0.01)        | 1 if x > 0 else α           |
//! | `elu`        | x if x > 0 else α (e^x − 1) (α = 1)   | 1 if x > 0 else y + α       |
//! | `selu`       | λ x if x > 0 else λα (e^x − 1)        | λ if x > 0 else y + λα      |
//!
//! SELU's λ and α are the exact constants of Klambauer et al., "Self-Normalizing Neural
//! Networks" (NeurIPS 2017). The derivative at a kink follows PyTorch (`relu'(0) = 0`,
//! `leaky_relu'(0) = α`, `elu'(0) = α`). The backward reads `y` wherever that avoids recomputing
//! a transcendental function, as PyTorch's `sigmoid_backward`/`tanh_backward` do. `e^x − 1` is
//! `expm1`, so ELU/SELU keep full relative accuracy for small `|x|`. NaN propagates through every
//! forward.
//!
//! The transcendental functions come from `vmath` (branch-free, vectorized); every hot loop
//! here is a plain zip over equal-length slices with selects, compiled per instruction set by
//! `multiversion`. Elementwise work is parallel over fixed chunks above the threshold, so the
//! result never depends on the thread count. Column sums (a dense layer's `db`, PReLU's
//! `dslope`) are reduced over fixed blocks of `SUM_BLOCK_ROWS` rows whose partial sums are
//! combined in block order: bit-identical for any thread count.
//!
//! Submodules: `element` (one type per activation, for monomorphic loops), `colsum` (the
//! deterministic column reductions), `softmax` (softmax and log-softmax along rows), `prelu`,
//! `maxout`.

pub mod colsum;
mod element;
pub mod maxout;
pub mod prelu;
pub mod softmax;

pub(crate) use colsum::{blocked_colsum, column_sum_blocks, rows_per_chunk};
pub use colsum::{colsum_workspace_len, column_sums};
use element::{op, ElementOp};

pub use maxout::{maxout_backward, maxout_forward};
pub use prelu::{prelu_backward, prelu_forward};
pub use softmax::{log_softmax, log_softmax_backward, softmax, softmax_backward};

use super::parallel::{self, for_each_chunk, for_each_chunk_pair, RowBlocks};
use super::vmath::VMath;
use super::{Real, ShapeError};
use crate::ensure;

/// λ of SELU (Klambauer et al. 2017).
pub const SELU_LAMBDA: f64 = 1.050_700_987_355_480_493_419_334_985_294_6;
/// α of SELU (Klambauer et al. 2017).
pub const SELU_ALPHA: f64 = 1.673_263_242_354_377_284_817_042_991_671_7;

/// Elements per parallel chunk of an elementwise pass.
pub const CHUNK: usize = 1 << 13;
/// Work per element of an activation pass, in units of `parallel::PAR_THRESHOLD`'s. Even tanh
/// (about eight times a copy) is 1: measured at 128×256 on a shared 2-core machine, handing
/// half of a vectorized pass to a second thread cost more than it saved, so passes go parallel
/// from `2·PAR_THRESHOLD` elements on, whatever the activation.
pub const PASS_COST: usize = 1;
/// Rows per block of a column reduction; fixed so that sums do not depend on the thread count.
pub const SUM_BLOCK_ROWS: usize = 64;

/// An elementwise activation with its parameter.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Act<T> {
    Identity,
    Sigmoid,
    Tanh,
    Relu,
    /// Negative slope α.
    LeakyRelu(T),
    /// α of `α (e^x − 1)` for `x ≤ 0`.
    Elu(T),
    Selu,
}

/// A bad activation name or parameter; the message names the argument (`'activation'` or
/// `'alpha'`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivationError(pub String);

impl std::fmt::Display for ActivationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ActivationError {}

/// Accepted names, in the order of `_core.pyi` (`linear` is an alias of `identity`).
pub const ACTIVATION_NAMES: [&str; 8] = [
    "identity",
    "linear",
    "sigmoid",
    "tanh",
    "relu",
    "leaky_relu",
    "elu",
    "selu",
];

impl<T: Real> Act<T> {
    /// Parses a name and an optional `alpha`: `leaky_relu` (default 0.01) and `elu` (default
    /// 1.0) take one; for the others it must be `None`. Unknown names and non-finite alphas
    /// are errors.
    pub fn parse(name: &str, alpha: Option<f64>) -> Result<Self, ActivationError> {
        let with_alpha = |default: f64| -> Result<T, ActivationError> {
            match alpha {
                None => Ok(T::of(default)),
                Some(a) if a.is_finite() => Ok(T::of(a)),
                Some(a) => Err(ActivationError(format!("argument 'alpha' must be finite, got {a}"))),
            }
        };
        let act = match name {
            "identity" | "linear" => Act::Identity,
            "sigmoid" => Act::Sigmoid,
            "tanh" => Act::Tanh,
            "relu" => Act::Relu,
            "selu" => Act::Selu,
            "leaky_relu" => return Ok(Act::LeakyRelu(with_alpha(0.01)?)),
            "elu" => return Ok(Act::Elu(with_alpha(1.0)?)),
            _ => {
                return Err(ActivationError(format!(
                    "argument 'activation' is unknown: '{name}' (expected one of {})",
                    ACTIVATION_NAMES.join(", ")
                )))
            }
        };
        match alpha {
            None => Ok(act),
            Some(a) => Err(ActivationError(format!(
                "argument 'alpha' must be None for activation '{name}', got {a}"
            ))),
        }
    }

    /// The canonical name.
    pub fn name(self) -> &'static str {
        match self {
            Act::Identity => "identity",
            Act::Sigmoid => "sigmoid",
            Act::Tanh => "tanh",
            Act::Relu => "relu",
            Act::LeakyRelu(_) => "leaky_relu",
            Act::Elu(_) => "elu",
            Act::Selu => "selu",
        }
    }
}

/// Binds `$op` to the `ElementOp` of `$act` and evaluates `$body` (one monomorphic copy each).
macro_rules! with_op {
    ($act:expr, $op:ident => $body:expr) => {
        match $act {
            Act::Identity => {
                let $op = op::Identity;
                $body
            }
            Act::Sigmoid => {
                let $op = op::Sigmoid;
                $body
            }
            Act::Tanh => {
                let $op = op::Tanh;
                $body
            }
            Act::Relu => {
                let $op = op::Relu;
                $body
            }
            Act::LeakyRelu(a) => {
                let $op = op::LeakyRelu(a);
                $body
            }
            Act::Elu(a) => {
                let $op = op::Elu(a);
                $body
            }
            Act::Selu => {
                let $op = op::Selu;
                $body
            }
        }
    };
}

simd_fn! {
fn map_forward<T: VMath, O: ElementOp<T>>(op: O, x: &[T], y: &mut [T]) {
    for (yi, &xi) in y.iter_mut().zip(x) {
        *yi = op.f(xi);
    }
}
}

simd_fn! {
fn map_backward<T: VMath, O: ElementOp<T>>(op: O, dy: &[T], x: &[T], y: &[T], dx: &mut [T]) {
    for (((d, &g), &a), &b) in dx.iter_mut().zip(dy).zip(x).zip(y) {
        *d = op.grad(g, a, b);
    }
}
}

simd_fn! {
/// `z ← z + b` and `y ← f(z)` row by row (`b` of length `m`, or `None`).
fn bias_forward_rows<T: VMath, O: ElementOp<T>>(op: O, b: Option<&[T]>, m: usize, z: &mut [T], y: &mut [T]) {
    for (zr, yr) in z.chunks_exact_mut(m).zip(y.chunks_exact_mut(m)) {
        match b {
            Some(b) => {
                for ((zj, yj), &bj) in zr.iter_mut().zip(yr.iter_mut()).zip(b) {
                    let v = *zj + bj;
                    *zj = v;
                    *yj = op.f(v);
                }
            }
            None => {
                for (yj, &zj) in yr.iter_mut().zip(zr.iter()) {
                    *yj = op.f(zj);
                }
            }
        }
    }
}
}

simd_fn! {
/// `dz ← dy · f'(z)` row by row, and `part ← Σ_rows dz` (length `m`).
fn bias_backward_rows<T: VMath, O: ElementOp<T>>(
    op: O,
    m: usize,
    dy: &[T],
    z: &[T],
    y: &[T],
    dz: &mut [T],
    part: &mut [T],
) {
    part.fill(T::zero());
    let rows = dz
        .chunks_exact_mut(m)
        .zip(dy.chunks_exact(m))
        .zip(z.chunks_exact(m))
        .zip(y.chunks_exact(m));
    for (((dzr, dyr), zr), yr) in rows {
        for ((((d, p), &g), &a), &b) in dzr.iter_mut().zip(part.iter_mut()).zip(dyr).zip(zr).zip(yr) {
            let v = op.grad(g, a, b);
            *d = v;
            *p += v;
        }
    }
}
}

/// `y ← f(x)` elementwise (`x`, `y` of equal length).
pub fn act_forward<T: VMath>(act: Act<T>, x: &[T], y: &mut [T]) -> Result<(), ShapeError> {
    ensure!(
        x.len() == y.len(),
        "{}: input has {} elements but output has {}",
        act.name(),
        x.len(),
        y.len()
    );
    with_op!(act, o => for_each_chunk(y, CHUNK, PASS_COST, |off, c| map_forward(o, &x[off..off + c.len()], c)));
    Ok(())
}

/// `dx ← dy · f'(x)` elementwise, with `y = f(x)` from the forward (all of equal length).
pub fn act_backward<T: VMath>(act: Act<T>, dy: &[T], x: &[T], y: &[T], dx: &mut [T]) -> Result<(), ShapeError> {
    let n = dx.len();
    ensure!(
        dy.len() == n && x.len() == n && y.len() == n,
        "{} backward: dy, x, y, dx have {}, {}, {}, {} elements; they must be equal",
        act.name(),
        dy.len(),
        x.len(),
        y.len(),
        n
    );
    with_op!(act, o => for_each_chunk(dx, CHUNK, PASS_COST, |off, c| {
        let r = off..off + c.len();
        map_backward(o, &dy[r.clone()], &x[r.clone()], &y[r], c)
    }));
    Ok(())
}

/// The fused epilogue of a dense layer's forward, one pass over `z (n, m)`: `z ← z + b` (a
/// row vector of length `m`, when given) and `y ← f(z)`.
pub fn bias_act_forward<T: VMath>(
    act: Act<T>,
    b: Option<&[T]>,
    n: usize,
    m: usize,
    z: &mut [T],
    y: &mut [T],
) -> Result<(), ShapeError> {
    ensure!(
        z.len() == n * m,
        "bias+{}: z has {} elements, expected {n}x{m}",
        act.name(),
        z.len()
    );
    ensure!(
        y.len() == n * m,
        "bias+{}: y has {} elements, expected {n}x{m}",
        act.name(),
        y.len()
    );
    if let Some(b) = b {
        ensure!(
            b.len() == m,
            "bias+{}: bias has {} elements, expected {m}",
            act.name(),
            b.len()
        );
    }
    if m == 0 {
        return Ok(());
    }
    let c = rows_per_chunk(m) * m;
    with_op!(act, o => for_each_chunk_pair(z, c, y, c, PASS_COST, |_, zc, yc| bias_forward_rows(o, b, m, zc, yc)));
    Ok(())
}

/// The fused first step of a dense layer's backward, one pass: `dz ← dy · f'(z)` (with
/// `y = f(z)`) and `db ← Σ_rows dz`, deterministic for any thread count. `ws` holds
/// `colsum_workspace_len(n, m)` elements.
#[allow(clippy::too_many_arguments)]
pub fn bias_act_backward<T: VMath>(
    act: Act<T>,
    dy: &[T],
    z: &[T],
    y: &[T],
    n: usize,
    m: usize,
    dz: &mut [T],
    ws: &mut [T],
    db: &mut [T],
) -> Result<(), ShapeError> {
    for (name, len) in [("dy", dy.len()), ("z", z.len()), ("y", y.len())] {
        ensure!(
            len == n * m,
            "{} backward: {name} has {len} elements, expected {n}x{m}",
            act.name()
        );
    }
    with_op!(act, o => blocked_colsum(n, m, PASS_COST, dz, ws, db, |r, dzc, part| {
        let e = r.start * m..r.end * m;
        bias_backward_rows(o, m, &dy[e.clone()], &z[e.clone()], &y[e], dzc, part)
    }))
}

/// A band of [`bias_act_backward`] for a team: rows of `dy`, `z`, `y`, `dz` starting on a
/// block boundary of the batch, `dz ← dy · f'(z)` and one partial column sum per block of
/// `SUM_BLOCK_ROWS` rows into `parts` (`⌈rows/SUM_BLOCK_ROWS⌉ · m`); `parallel::fold_blocks`
/// over all bands' partials then gives `db` with the bits of `bias_act_backward`. The caller
/// (`network_team.rs`) has checked the shapes.
pub(crate) fn bias_act_backward_blocks<T: VMath>(
    act: Act<T>,
    dy: &[T],
    z: &[T],
    y: &[T],
    m: usize,
    dz: &mut [T],
    parts: &mut [T],
) {
    if m == 0 {
        return;
    }
    let blocks = RowBlocks::new(dz.len() / m, SUM_BLOCK_ROWS);
    with_op!(act, o => blocks.for_each_with(dz, m, parts, m, PASS_COST * m, |r, dzc, part| {
        let e = r.start * m..r.end * m;
        bias_backward_rows(o, m, &dy[e.clone()], &z[e.clone()], &y[e], dzc, part)
    }));
}

#[cfg(test)]
#[path = "activation_tests.rs"]
pub(crate) mod tests;
