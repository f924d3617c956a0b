//! The element type of every kernel: `f32` or `f64`.
//!
//! Kernels are written once, generic over `Real`; the bindings instantiate both. Constants are
//! written as `T::of(0.5)` so that literals convert exactly once, at compile time after inlining.

use num_traits::Float;
use std::fmt::Debug;
use std::iter::Sum;
use std::ops::{AddAssign, DivAssign, MulAssign, SubAssign};

pub trait Real:
    Float + Default + Debug + Send + Sync + 'static + Sum + AddAssign + SubAssign + MulAssign + DivAssign
{
    /// Machine epsilon of the type.
    const EPSILON: Self;
    /// Converts an `f64` constant (rounding to nearest for `f32`).
    fn of(x: f64) -> Self;
    /// Widens to `f64` (exact for both types).
    fn f64(self) -> f64;
}

impl Real for f32 {
    const EPSILON: Self = f32::EPSILON;
    #[inline(always)]
    fn of(x: f64) -> Self {
        x as f32
    }
    #[inline(always)]
    fn f64(self) -> f64 {
        self as f64
    }
}

impl Real for f64 {
    const EPSILON: Self = f64::EPSILON;
    #[inline(always)]
    fn of(x: f64) -> Self {
        x
    }
    #[inline(always)]
    fn f64(self) -> f64 {
        self
    }
}
