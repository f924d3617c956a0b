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

pub(crate) use colsum::{blocked_colsum, column_sum_blocks, fold_blocks, for_each_chunk_pair, rows_per_chunk};
pub use colsum::{colsum_workspace_len, column_sums};
use element::{op, ElementOp};

pub use maxout::{maxout_backward, maxout_forward};
pub use prelu::{prelu_backward, prelu_forward};
pub use softmax::{log_softmax, log_softmax_backward, softmax, softmax_backward};

use super::parallel::{self, for_each_chunk};
use super::vmath::VMath;
use super::{Real, ShapeError};
use crate::ensure;
use multiversion::multiversion;

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

#[multiversion(targets("x86_64+avx2+fma", "x86_64+avx512f+avx512bw+avx512dq+avx512vl", "aarch64+neon"))]
fn map_forward<T: VMath, O: ElementOp<T>>(op: O, x: &[T], y: &mut [T]) {
    for (yi, &xi) in y.iter_mut().zip(x) {
        *yi = op.f(xi);
    }
}

#[multiversion(targets("x86_64+avx2+fma", "x86_64+avx512f+avx512bw+avx512dq+avx512vl", "aarch64+neon"))]
fn map_backward<T: VMath, O: ElementOp<T>>(op: O, dy: &[T], x: &[T], y: &[T], dx: &mut [T]) {
    for (((d, &g), &a), &b) in dx.iter_mut().zip(dy).zip(x).zip(y) {
        *d = op.grad(g, a, b);
    }
}

/// `z ← z + b` and `y ← f(z)` row by row (`b` of length `m`, or `None`).
#[multiversion(targets("x86_64+avx2+fma", "x86_64+avx512f+avx512bw+avx512dq+avx512vl", "aarch64+neon"))]
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

/// `dz ← dy · f'(z)` row by row, and `part ← Σ_rows dz` (length `m`).
#[multiversion(targets("x86_64+avx2+fma", "x86_64+avx512f+avx512bw+avx512dq+avx512vl", "aarch64+neon"))]
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
    with_op!(act, o => blocked_colsum(n, m, PASS_COST, dz, ws, db, |dzc, r0, part| {
        let r = r0 * m..r0 * m + dzc.len();
        bias_backward_rows(o, m, &dy[r.clone()], &z[r.clone()], &y[r], dzc, part)
    }))
}

/// A band of [`bias_act_backward`] for a team: rows of `dy`, `z`, `y`, `dz` starting on a
/// block boundary of the batch, `dz ← dy · f'(z)` and one partial column sum per block of
/// `SUM_BLOCK_ROWS` rows into `parts` (`⌈rows/SUM_BLOCK_ROWS⌉ · m`); `colsum::fold_blocks`
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
    let c = SUM_BLOCK_ROWS * m;
    with_op!(act, o => {
        for (i, (dzc, part)) in dz.chunks_mut(c).zip(parts.chunks_exact_mut(m)).enumerate() {
            let r = i * c..i * c + dzc.len();
            bias_backward_rows(o, m, &dy[r.clone()], &z[r.clone()], &y[r], dzc, part);
        }
    });
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Deterministic values in [lo, hi) (an LCG; no dependency).
    pub(crate) fn fill(n: usize, seed: u64, lo: f64, hi: f64) -> Vec<f64> {
        crate::kernels::test_data::range(n, seed, lo, hi)
    }

    pub(crate) fn close(got: &[f64], want: &[f64], rtol: f64, what: &str) {
        assert_eq!(got.len(), want.len(), "{what}: length");
        for (i, (a, b)) in got.iter().zip(want).enumerate() {
            assert!(
                (a - b).abs() <= rtol * (1e-30 + b.abs()) || (a.is_nan() && b.is_nan()),
                "{what}[{i}]: {a} vs {b}"
            );
        }
    }

    fn all_acts() -> Vec<Act<f64>> {
        vec![
            Act::Identity,
            Act::Sigmoid,
            Act::Tanh,
            Act::Relu,
            Act::LeakyRelu(0.2),
            Act::Elu(0.7),
            Act::Selu,
        ]
    }

    /// The table of the module documentation, with std's functions.
    fn naive_f(act: Act<f64>, x: f64) -> f64 {
        let (l, a) = (SELU_LAMBDA, SELU_ALPHA);
        match act {
            Act::Identity => x,
            Act::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            Act::Tanh => x.tanh(),
            Act::Relu => x.max(0.0),
            Act::LeakyRelu(s) => {
                if x > 0.0 {
                    x
                } else {
                    s * x
                }
            }
            Act::Elu(s) => {
                if x > 0.0 {
                    x
                } else {
                    s * x.exp_m1()
                }
            }
            Act::Selu => {
                if x > 0.0 {
                    l * x
                } else {
                    l * a * x.exp_m1()
                }
            }
        }
    }

    fn naive_df(act: Act<f64>, x: f64) -> f64 {
        let (l, a) = (SELU_LAMBDA, SELU_ALPHA);
        match act {
            Act::Identity => 1.0,
            Act::Sigmoid => naive_f(act, x) * (1.0 - naive_f(act, x)),
            Act::Tanh => 1.0 - x.tanh().powi(2),
            Act::Relu => {
                if x > 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
            Act::LeakyRelu(s) => {
                if x > 0.0 {
                    1.0
                } else {
                    s
                }
            }
            Act::Elu(s) => {
                if x > 0.0 {
                    1.0
                } else {
                    s * x.exp()
                }
            }
            Act::Selu => {
                if x > 0.0 {
                    l
                } else {
                    l * a * x.exp()
                }
            }
        }
    }

    #[test]
    fn forward_and_backward_match_naive_on_simd_edges_serial_and_parallel() {
        for act in all_acts() {
            for n in [0usize, 1, 7, 8, 9, 15, 16, 17, 1000, 3 * parallel::PAR_THRESHOLD + 5] {
                let x = fill(n, n as u64 + 1, -6.0, 6.0);
                let dy = fill(n, n as u64 + 2, -1.0, 1.0);
                let mut y = vec![f64::NAN; n];
                act_forward(act, &x, &mut y).unwrap();
                let want: Vec<f64> = x.iter().map(|&v| naive_f(act, v)).collect();
                close(&y, &want, 1e-14, act.name());
                let mut dx = vec![f64::NAN; n];
                act_backward(act, &dy, &x, &y, &mut dx).unwrap();
                // 1 − y² loses relative accuracy where tanh saturates: compare on the scale of dy.
                let want: Vec<f64> = x.iter().zip(&dy).map(|(&v, &g)| g * naive_df(act, v)).collect();
                assert!(
                    dx.iter().zip(&want).all(|(a, b)| (a - b).abs() <= 1e-12),
                    "{} backward",
                    act.name()
                );
                // f32 against the f64 result.
                let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
                let mut y32 = vec![f32::NAN; n];
                act_forward(
                    Act::<f32>::parse(
                        act.name(),
                        match act {
                            Act::LeakyRelu(a) | Act::Elu(a) => Some(a),
                            _ => None,
                        },
                    )
                    .unwrap(),
                    &x32,
                    &mut y32,
                )
                .unwrap();
                let want: Vec<f64> = x32.iter().map(|&v| naive_f(act, v as f64)).collect();
                let got: Vec<f64> = y32.iter().map(|&v| v as f64).collect();
                close(&got, &want, 1e-6, act.name());
            }
        }
    }

    #[test]
    fn saturation_and_nan() {
        for act in all_acts() {
            let x = [1e4, -1e4, f64::INFINITY, f64::NEG_INFINITY, f64::NAN];
            let mut y = [0.0; 5];
            act_forward(act, &x, &mut y).unwrap();
            assert!(y[4].is_nan(), "{} NaN", act.name());
            for (i, (&a, &b)) in x[..4].iter().zip(&y[..4]).enumerate() {
                let want = naive_f(act, a);
                assert!(a == b || want == b, "{}({a}) = {b}, expected {want} (#{i})", act.name());
            }
        }
    }

    #[test]
    fn parse_names_alias_defaults_and_errors() {
        assert_eq!(Act::<f64>::parse("linear", None).unwrap(), Act::Identity);
        assert_eq!(Act::<f64>::parse("leaky_relu", None).unwrap(), Act::LeakyRelu(0.01));
        assert_eq!(Act::<f64>::parse("elu", None).unwrap(), Act::Elu(1.0));
        assert_eq!(Act::<f32>::parse("elu", Some(0.5)).unwrap(), Act::Elu(0.5f32));
        assert!(Act::<f64>::parse("swish", None).unwrap_err().0.contains("'activation'"));
        assert!(Act::<f64>::parse("Relu", None).unwrap_err().0.contains("'activation'"));
        assert!(Act::<f64>::parse("relu", Some(0.1)).unwrap_err().0.contains("'alpha'"));
        assert!(Act::<f64>::parse("elu", Some(f64::NAN))
            .unwrap_err()
            .0
            .contains("'alpha'"));
        assert!(Act::<f64>::parse("leaky_relu", Some(f64::INFINITY))
            .unwrap_err()
            .0
            .contains("'alpha'"));
    }

    fn naive_colsum(x: &[f64], n: usize, m: usize) -> Vec<f64> {
        (0..m).map(|j| (0..n).map(|i| x[i * m + j]).sum()).collect()
    }

    #[test]
    fn bias_act_forward_and_backward_match_naive() {
        for act in all_acts() {
            for &(n, m) in &[
                (0usize, 3usize),
                (3, 0),
                (1, 1),
                (7, 9),
                (8, 16),
                (17, 15),
                (65, 33),
                (300, 257),
            ] {
                let z0 = fill(n * m, 3, -4.0, 4.0);
                let b = fill(m, 4, -1.0, 1.0);
                let dy = fill(n * m, 5, -1.0, 1.0);
                let mut z = z0.clone();
                let mut y = vec![f64::NAN; n * m];
                bias_act_forward(act, Some(&b), n, m, &mut z, &mut y).unwrap();
                let zb: Vec<f64> = z0.iter().enumerate().map(|(i, &v)| v + b[i % m.max(1)]).collect();
                close(&z, &zb, 0.0, "z + b");
                close(
                    &y,
                    &zb.iter().map(|&v| naive_f(act, v)).collect::<Vec<_>>(),
                    1e-14,
                    act.name(),
                );
                let mut dz = vec![f64::NAN; n * m];
                let mut ws = vec![f64::NAN; colsum_workspace_len(n, m)];
                let mut db = vec![f64::NAN; m];
                bias_act_backward(act, &dy, &z, &y, n, m, &mut dz, &mut ws, &mut db).unwrap();
                let want: Vec<f64> = zb.iter().zip(&dy).map(|(&v, &g)| g * naive_df(act, v)).collect();
                assert!(
                    dz.iter().zip(&want).all(|(a, b)| (a - b).abs() <= 1e-12),
                    "{} backward",
                    act.name()
                );
                let sums = naive_colsum(&dz, n, m);
                for (a, b) in db.iter().zip(&sums) {
                    assert!((a - b).abs() <= 1e-12 * (1.0 + b.abs()), "db {a} vs {b}");
                }
                let mut cs = vec![f64::NAN; m];
                column_sums(&dz, n, m, &mut ws, &mut cs).unwrap();
                assert!(
                    cs.iter().zip(&db).all(|(a, b)| a.to_bits() == b.to_bits()),
                    "column_sums == fused db"
                );
            }
        }
    }

    #[test]
    fn shape_errors_are_errors_not_panics() {
        let x = vec![0.0f64; 6];
        let mut y = vec![0.0f64; 5];
        assert!(act_forward(Act::Relu, &x, &mut y).is_err());
        assert!(act_backward(Act::Relu, &x, &x, &x, &mut y).is_err());
        let mut z = vec![0.0f64; 6];
        let mut y6 = vec![0.0f64; 6];
        assert!(bias_act_forward(Act::Relu, Some(&x[..2]), 2, 3, &mut z, &mut y6).is_err());
        assert!(bias_act_forward(Act::Relu, None, 3, 3, &mut z, &mut y6).is_err());
        let mut db = vec![0.0; 3];
        let mut ws: Vec<f64> = vec![];
        assert!(bias_act_backward(Act::Relu, &x, &x, &x, 2, 3, &mut z, &mut ws, &mut db[..2]).is_err());
        let big = vec![0.0; 200 * 3];
        assert!(
            column_sums(&big, 200, 3, &mut ws, &mut db).is_err(),
            "missing workspace"
        );
    }
}
