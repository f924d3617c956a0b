//! Pure-Rust kernels on slices and shapes. Nothing here knows about Python (the bindings live in rust/py).
//!
//! Conventions shared by every kernel:
//! - matrices are row-major `(rows, cols)` slices unless a `MatRef` says otherwise;
//! - a dense layer computes `z = x·W + b` with `x: (n, in)`, `W: (in, out)` (Keras layout);
//! - shape errors are returned as `ShapeError`, never panics: the bindings validate first, and
//!   kernels re-check cheaply so that a bug cannot read out of bounds.

/// Compiles the wrapped function once per SIMD target initcore dispatches to at run time (AVX2
/// with FMA, AVX-512, NEON; the build's baseline elsewhere), through `multiversion`: the one
/// list of those targets in the crate. Defined before the modules so that they all see it.
///
/// `multiversion` runs the first listed target the CPU supports, so the widest comes first
/// (with AVX2 listed first, an AVX-512 CPU ran the AVX2 clones and never the AVX-512 ones).
/// Every clone does the same operations in the same order, so results do not depend on which
/// one runs.
macro_rules! simd_fn {
    ($item:item) => {
        #[::multiversion::multiversion(targets(
            "x86_64+avx512f+avx512bw+avx512dq+avx512vl",
            "x86_64+avx2+fma",
            "aarch64+neon"
        ))]
        $item
    };
}

pub mod activation;
pub mod batch_norm;
pub mod clip;
pub mod dense;
pub mod dropout;
pub mod fused;
pub mod losses;
pub mod matmul;
pub mod optim;
pub mod parallel;
pub mod real;
pub mod rows;
pub mod stats;
pub mod team;
pub mod vmath;

#[cfg(test)]
mod test_data;

pub use real::Real;

/// A shape mismatch detected inside a kernel: the message names the operands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShapeError(pub String);

impl std::fmt::Display for ShapeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ShapeError {}

/// Returns `Err(ShapeError)` with a formatted message unless `cond` holds.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        {
            let holds: bool = $cond;
            if !holds {
                return Err($crate::kernels::ShapeError(format!($($fmt)+)));
            }
        }
    };
}
