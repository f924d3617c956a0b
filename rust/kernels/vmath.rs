//! Vectorizable `exp`, `expm1`, `tanh` and the logistic sigmoid for `f32` and `f64`.
//!
//! `std`'s transcendental functions are calls into libm, which LLVM cannot vectorize; these are
//! branch-free (selects only), so a loop over a slice of them compiles to SIMD code.
//!
//! Method (Cody & Waite range reduction, as in Cephes and fdlibm):
//! - `e^x = 2^k · e^r` with `k = round(x / ln 2)` and `r = x − k·ln 2` (`|r| ≤ ln2/2`), `ln 2` split
//!   in a short high part (so `k·ln2_hi` is exact) and a low correction.
//! - `e^r − 1 = r + r²·P(r)`. For `f64`, `P` is the Taylor polynomial (`e^r − 1` to degree 14,
//!   truncation error under 0.05 ULP on `|r| ≤ ln2/2`). For `f32`, `P` has degree 4 (`e^r − 1`
//!   to degree 6), fitted for minimum maximum relative error of `e^r − 1` on
//!   `|r| ≤ 1.02·ln2/2` (Lawson's iteration in `f64`, then rounded to `f32`): 0.3 ULP of
//!   approximation error, two multiply-adds fewer than Taylor's degree 8.
//! - `2^k` is built directly in the exponent bits. Because `2^k` alone would leave the normal
//!   range at both ends (results near overflow, and subnormal results), it is applied as two
//!   factors `2^⌊k/2⌋ · 2^⌈k/2⌉`, which makes overflow and gradual underflow come out of the
//!   final multiplication exactly where the true value overflows or underflows.
//! - `expm1(x) = 2^k·(e^r − 1) + (2^k − 1)`, evaluated as `v·(t·q + (t − 1/v))` with
//!   `t = 2^⌊k/2⌋`, `v = 2^⌈k/2⌉`, `q = e^r − 1`: no cancellation for small `x` (where `k = 0`).
//! - For `x ≤ 0` (softmax, the sigmoid, `tanh`, ELU) one factor does: `2^k` itself for
//!   `expm1`, and `2^(k+off)·2^−off` for `exp`, with `off` (64, 600) keeping the first normal.
//! - `tanh|x| = −m / (2 + m)` with `m = expm1(−2|x|) ∈ (−1, 0]`, then the sign of `x`: accurate
//!   near 0 (no `1 − e` cancellation) and exactly ±1 for large `|x|`.
//! - `σ(x) = 1 / (1 + e)` for `x ≥ 0` and `e / (1 + e)` for `x < 0`, with `e = e^(−|x|) ≤ 1`:
//!   never overflows and keeps full relative accuracy in the tail (σ(−100) = e^−100).
//!
//! Error bounds (maximum error in units in the last place, measured against `std`'s `f64`
//! functions over dense sweeps and random inputs by the tests below; for `f64` the figure
//! includes the reference's own error of up to 1 ULP):
//!
//! | function  | f32 bound (measured) | f64 bound (measured) |
//! |-----------|----------------------|----------------------|
//! | `exp`     | 1.5 ULP (1.01)       | 2 ULP (1)            |
//! | `exp`, x ≤ 0 | 1.5 ULP (1.01)    | 2 ULP (1)            |
//! | `expm1`   | 2 ULP (1.48)         | 3 ULP (2)            |
//! | `expm1`, x ≤ 0 | 1 ULP (0.90)    | 2 ULP (1)            |
//! | `tanh`    | 3 ULP (2.47)         | 4 ULP (3)            |
//! | `sigmoid` | 3 ULP (2.06)         | 3 ULP (2)            |
//!
//! The larger `tanh` and `expm1` errors come from `|x|` in 0.2..1, where `k ≠ 0` and
//! `2^k·q + (2^k − 1)` partly cancels; they stay far inside the 5e-6 (`f32`) and 1e-13 (`f64`)
//! relative tolerances the Python tests use for transcendental kernels.
//!
//! Special values: NaN in gives NaN out; `exp` overflows to `+inf` only where the true value
//! exceeds the largest finite number and underflows gradually through the subnormals to `0`;
//! `expm1(−inf) = −1`, `tanh(±inf) = ±1`, `σ(+inf) = 1`, `σ(−inf) = 0`, and inputs as large as
//! `±1e4` saturate to exactly those values with no NaN on the way.
//!
//! The polynomial is evaluated with `mul_add`. Inside the multiversioned kernels (AVX2+FMA,
//! AVX-512, NEON) that is one instruction; in the portable fallback it is a correctly rounded
//! libm call, slower but bit-identical, so results do not depend on the instruction set.

// The range-reduction constants are written with the digits their sources publish.
#![allow(clippy::excessive_precision)]

use super::Real;

/// Transcendental functions that LLVM can vectorize (see the module documentation for the
/// method and the error bounds). Implemented for `f32` and `f64`.
pub trait VMath: Real {
    /// `e^x`.
    fn vexp(self) -> Self;
    /// `e^x` for `x ≤ 0` only (cheaper; a positive `x` gives a wrong result).
    fn vexp_nonpos(self) -> Self;
    /// `e^x − 1`, accurate for small `|x|`.
    fn vexpm1(self) -> Self;
    /// `e^x − 1` for `x ≤ 0` only (cheaper; a positive `x` gives a wrong result).
    fn vexpm1_nonpos(self) -> Self;
    /// `tanh x`.
    fn vtanh(self) -> Self;
    /// The logistic sigmoid `1 / (1 + e^(−x))`.
    fn vsigmoid(self) -> Self;
}

macro_rules! impl_vmath {
    (
        $m:ident, $t:ident, mantissa = $mant:expr, bias = $bias:expr,
        exp_hi = $hi:expr, exp_lo = $lo:expr, expm1_lo = $m1lo:expr, off = $off:expr,
        ln2_hi = $ln2hi:expr, ln2_lo = $ln2lo:expr, poly = [$($c:expr),+]
    ) => {
        mod $m {
            /// `(v + ROUND) − ROUND` rounds `v` to an integer (ties to even) for `|v| < 2^(mant−1)`.
            const ROUND: $t = 1.5 * (1u64 << $mant) as $t;
            const BIAS: $t = $bias as $t;
            const LOG2E: $t = std::f64::consts::LOG2_E as $t;

            #[inline(always)]
            fn round_int(v: $t) -> $t {
                (v + ROUND) - ROUND
            }

            /// `2^n` for an integral `n` with `−bias < n ≤ bias`: `n + ROUND + bias` holds
            /// `n + bias` in its low mantissa bits, which a shift moves into the exponent field.
            #[inline(always)]
            fn pow2i(n: $t) -> $t {
                $t::from_bits((n + (ROUND + BIAS)).to_bits() << $mant)
            }

            /// `e^r − 1` on `|r| ≤ ln2/2`: `r + r²·(c₀ + r·(c₁ + …))`.
            #[inline(always)]
            fn expm1_poly(r: $t) -> $t {
                let c: &[$t] = &[$($c),+];
                let mut h = c[c.len() - 1];
                let mut i = c.len() - 1;
                while i > 0 {
                    i -= 1;
                    h = h.mul_add(r, c[i]);
                }
                (r * r).mul_add(h, r)
            }

            /// Clamps into `[lo, hi]` with selects that let NaN through.
            #[inline(always)]
            fn clamp(x: $t, lo: $t, hi: $t) -> $t {
                let x = if x > hi { hi } else { x };
                if x < lo { lo } else { x }
            }

            /// `(k, r, 2^(k + off))` with `x = k·ln2 + r`, `k` integral. One rounding constant
            /// does three jobs: `x·log2e + c` rounds to an integer, `− c` recovers `k`, and the
            /// low mantissa bits already hold `k + bias + off`, the exponent field of `2^(k+off)`
            /// (valid while `0 < k + bias + off < 2·bias + 1`).
            #[inline(always)]
            fn reduce(x: $t, off: $t) -> ($t, $t, $t) {
                let c = ROUND + BIAS + off;
                let t = x.mul_add(LOG2E, c);
                let k = t - c;
                let r = (-k).mul_add($ln2hi, x);
                let r = (-k).mul_add($ln2lo, r);
                (k, r, $t::from_bits(t.to_bits() << $mant))
            }

            /// `(t, v) = (2^⌊k/2⌋, 2^⌈k/2⌉)`: two factors that stay normal for every `k` of a
            /// finite or overflowing result, and for gradual underflow.
            #[inline(always)]
            fn split(k: $t) -> ($t, $t, $t) {
                let k1 = round_int(k * 0.5 - 0.25);
                (pow2i(k1), pow2i(k - k1), pow2i(k1 - k))
            }

            #[inline(always)]
            pub fn exp(x: $t) -> $t {
                let x = clamp(x, $lo, $hi);
                let (k, r, _) = reduce(x, 0.0);
                let (t, v, _) = split(k);
                ((1.0 + expm1_poly(r)) * t) * v
            }

            /// `exp` for `x ≤ 0` (or NaN): `2^(k + off)` is normal for every `k` down to the
            /// least subnormal result, and the final `· 2^−off` rounds once into the subnormals.
            #[inline(always)]
            pub fn exp_nonpos(x: $t) -> $t {
                let x = if x < $lo { $lo } else { x };
                let (_, r, s) = reduce(x, $off);
                ((1.0 + expm1_poly(r)) * s) * pow2i(-$off)
            }

            #[inline(always)]
            pub fn expm1(x: $t) -> $t {
                let x = clamp(x, $m1lo, $hi);
                let (k, r, _) = reduce(x, 0.0);
                let (t, v, inv_v) = split(k);
                t.mul_add(expm1_poly(r), t - inv_v) * v
            }

            /// `expm1` for `x ≤ 0` (or NaN): there `k ∈ [k(lo), 0]` and `2^k` is one normal
            /// factor, so `2^k·q + (2^k − 1)` needs no split scaling.
            #[inline(always)]
            pub fn expm1_nonpos(x: $t) -> $t {
                let x = if x < $m1lo { $m1lo } else { x };
                let (_, r, s) = reduce(x, 0.0);
                s.mul_add(expm1_poly(r), s - 1.0)
            }

            #[inline(always)]
            pub fn tanh(x: $t) -> $t {
                let m = expm1_nonpos(-2.0 * x.abs());
                (m / (-2.0 - m)).copysign(x)
            }

            #[inline(always)]
            pub fn sigmoid(x: $t) -> $t {
                let e = exp_nonpos(-x.abs());
                let num = if x >= 0.0 { 1.0 } else { e };
                num / (1.0 + e)
            }
        }

        impl VMath for $t {
            #[inline(always)]
            fn vexp(self) -> Self {
                $m::exp(self)
            }
            #[inline(always)]
            fn vexp_nonpos(self) -> Self {
                $m::exp_nonpos(self)
            }
            #[inline(always)]
            fn vexpm1(self) -> Self {
                $m::expm1(self)
            }
            #[inline(always)]
            fn vexpm1_nonpos(self) -> Self {
                $m::expm1_nonpos(self)
            }
            #[inline(always)]
            fn vtanh(self) -> Self {
                $m::tanh(self)
            }
            #[inline(always)]
            fn vsigmoid(self) -> Self {
                $m::sigmoid(self)
            }
        }
    };
}

// exp overflows above ln(f32::MAX) = 88.72 and is 0 below −103.97 (half the least subnormal);
// expm1 is −1 to f32 precision below −17.3. ln2_hi = 355/512 has 9 significant bits, so
// k·ln2_hi is exact for |k| ≤ 2^15 (Cephes' split).
impl_vmath!(
    imp32,
    f32,
    mantissa = 23,
    bias = 127,
    exp_hi = 89.0,
    exp_lo = -104.0,
    expm1_lo = -18.0,
    off = 64.0,
    ln2_hi = 0.693_359_375,
    ln2_lo = -2.121_944_4e-4,
    poly = [
        0.499_999_97,
        0.166_665_33,
        0.041_667_245,
        0.008_367_854,
        0.001_388_226_8
    ]
);

// exp overflows above ln(f64::MAX) = 709.78 and is 0 below −745.13; expm1 is −1 to f64
// precision below −37.4. ln2_hi/ln2_lo are fdlibm's (ln2_hi has 32 significant bits).
impl_vmath!(
    imp64,
    f64,
    mantissa = 52,
    bias = 1023,
    exp_hi = 710.0,
    exp_lo = -746.0,
    expm1_lo = -40.0,
    off = 600.0,
    ln2_hi = 6.931_471_803_691_238_164_90e-1,
    ln2_lo = 1.908_214_929_270_587_700_02e-10,
    poly = [
        1.0 / 2.0,
        1.0 / 6.0,
        1.0 / 24.0,
        1.0 / 120.0,
        1.0 / 720.0,
        1.0 / 5040.0,
        1.0 / 40320.0,
        1.0 / 362880.0,
        1.0 / 3628800.0,
        1.0 / 39916800.0,
        1.0 / 479001600.0,
        1.0 / 6227020800.0,
        1.0 / 87178291200.0
    ]
);

simd_fn! {
/// `y ← e^x` elementwise (`x` and `y` of equal length, else nothing is written).
pub fn exp_slice<T: VMath>(x: &[T], y: &mut [T]) {
    if x.len() == y.len() {
        for (yi, &xi) in y.iter_mut().zip(x) {
            *yi = xi.vexp();
        }
    }
}
}

simd_fn! {
/// `y ← tanh x` elementwise (`x` and `y` of equal length, else nothing is written).
pub fn tanh_slice<T: VMath>(x: &[T], y: &mut [T]) {
    if x.len() == y.len() {
        for (yi, &xi) in y.iter_mut().zip(x) {
            *yi = xi.vtanh();
        }
    }
}
}

simd_fn! {
/// `y ← σ(x)` elementwise (`x` and `y` of equal length, else nothing is written).
pub fn sigmoid_slice<T: VMath>(x: &[T], y: &mut [T]) {
    if x.len() == y.len() {
        for (yi, &xi) in y.iter_mut().zip(x) {
            *yi = xi.vsigmoid();
        }
    }
}
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic uniform values in [0, 1) (an LCG; no dependency).
    fn uniforms(n: usize, seed: u64) -> Vec<f64> {
        crate::kernels::test_data::unit(n, seed)
    }

    /// Inputs: a dense sweep of `[lo, hi]`, random values spread over magnitudes 1e-30..|hi|,
    /// and the edges.
    fn inputs(lo: f64, hi: f64) -> Vec<f64> {
        let n = 200_000;
        let mut v: Vec<f64> = (0..=n).map(|i| lo + (hi - lo) * i as f64 / n as f64).collect();
        let top = hi.abs().max(lo.abs()).ln();
        for (i, u) in uniforms(200_000, 7).into_iter().enumerate() {
            let mag = (-69.0 + (top + 69.0) * u).exp();
            let x = if i % 2 == 0 { mag } else { -mag };
            if x >= lo && x <= hi {
                v.push(x);
            }
        }
        v.extend([0.0, -0.0, 1e-300, -1e-300, lo, hi]);
        v
    }

    fn ulp32(r: f64) -> f64 {
        let a = (r as f32).abs();
        if !a.is_finite() {
            return f64::INFINITY;
        }
        (f32::from_bits(a.to_bits() + 1) as f64 - a as f64).max(f32::from_bits(1) as f64)
    }

    fn ulp64(r: f64) -> f64 {
        let a = r.abs();
        f64::from_bits(a.to_bits() + 1) - a
    }

    /// Max error in ULP of `f` (f32) against the f64 reference `g`, on inputs in `[lo, hi]`.
    fn max_ulp_f32(f: fn(f32) -> f32, g: fn(f64) -> f64, lo: f64, hi: f64) -> f64 {
        let mut worst = 0.0f64;
        for x in inputs(lo, hi) {
            let x = x as f32;
            let (got, want) = (f(x) as f64, g(x as f64));
            let err = if got == want {
                0.0
            } else {
                (got - want).abs() / ulp32(want)
            };
            assert!(err.is_finite(), "x={x}: got {got}, want {want}");
            worst = worst.max(err);
        }
        worst
    }

    fn max_ulp_f64(f: fn(f64) -> f64, g: fn(f64) -> f64, lo: f64, hi: f64) -> f64 {
        let mut worst = 0.0f64;
        for x in inputs(lo, hi) {
            let (got, want) = (f(x), g(x));
            let err = if got == want {
                0.0
            } else {
                (got - want).abs() / ulp64(want)
            };
            assert!(err.is_finite(), "x={x}: got {got}, want {want}");
            worst = worst.max(err);
        }
        worst
    }

    /// σ in f64 to within about 1 ULP: `e^(−|x|)` from std, then `1 + e` as an exact
    /// two-term sum so that only the division and std's exp round.
    fn sigmoid_ref(x: f64) -> f64 {
        let e = (-x.abs()).exp();
        let s = 1.0 + e;
        let s_lo = e - (s - 1.0);
        let num = if x >= 0.0 { 1.0 } else { e };
        let q = num / s;
        q - q * s_lo / s
    }

    #[test]
    fn exp_ulp_bounds() {
        let e32 = max_ulp_f32(f32::vexp, f64::exp, -103.0, 88.7);
        let e64 = max_ulp_f64(f64::vexp, f64::exp, -745.0, 709.7);
        assert!(e32 <= 1.5, "f32 exp: {e32} ULP");
        assert!(e64 <= 2.0, "f64 exp: {e64} ULP");
    }

    #[test]
    fn expm1_ulp_bounds() {
        let e32 = max_ulp_f32(f32::vexpm1, f64::exp_m1, -30.0, 88.7);
        let e64 = max_ulp_f64(f64::vexpm1, f64::exp_m1, -50.0, 709.7);
        assert!(e32 <= 2.0, "f32 expm1: {e32} ULP");
        assert!(e64 <= 3.0, "f64 expm1: {e64} ULP");
    }

    #[test]
    fn exp_nonpos_ulp_bounds() {
        let e32 = max_ulp_f32(f32::vexp_nonpos, f64::exp, -103.0, 0.0);
        let e64 = max_ulp_f64(f64::vexp_nonpos, f64::exp, -745.0, 0.0);
        assert!(e32 <= 1.5, "f32 exp (x <= 0): {e32} ULP");
        assert!(e64 <= 2.0, "f64 exp (x <= 0): {e64} ULP");
        assert_eq!(f64::vexp_nonpos(-1e4), 0.0);
        assert_eq!(f32::vexp_nonpos(f32::NEG_INFINITY), 0.0);
        assert!(f32::vexp_nonpos(f32::NAN).is_nan());
        assert!(f64::vexp_nonpos(-740.0) > 0.0 && f64::vexp_nonpos(-740.0) < f64::MIN_POSITIVE);
        assert!(f32::vexp_nonpos(-100.0) > 0.0 && f32::vexp_nonpos(-100.0) < f32::MIN_POSITIVE);
    }

    #[test]
    fn expm1_nonpos_ulp_bounds() {
        let e32 = max_ulp_f32(f32::vexpm1_nonpos, f64::exp_m1, -30.0, 0.0);
        let e64 = max_ulp_f64(f64::vexpm1_nonpos, f64::exp_m1, -50.0, 0.0);
        assert!(e32 <= 1.0, "f32 expm1 (x <= 0): {e32} ULP");
        assert!(e64 <= 2.0, "f64 expm1 (x <= 0): {e64} ULP");
        assert_eq!(f64::vexpm1_nonpos(-1e4), -1.0);
        assert_eq!(f32::vexpm1_nonpos(f32::NEG_INFINITY), -1.0);
        assert!(f32::vexpm1_nonpos(f32::NAN).is_nan());
    }

    #[test]
    fn tanh_ulp_bounds() {
        let e32 = max_ulp_f32(f32::vtanh, f64::tanh, -30.0, 30.0);
        let e64 = max_ulp_f64(f64::vtanh, f64::tanh, -30.0, 30.0);
        assert!(e32 <= 3.0, "f32 tanh: {e32} ULP");
        assert!(e64 <= 4.0, "f64 tanh: {e64} ULP");
    }

    #[test]
    fn sigmoid_ulp_bounds() {
        let e32 = max_ulp_f32(f32::vsigmoid, sigmoid_ref, -103.0, 30.0);
        let e64 = max_ulp_f64(f64::vsigmoid, sigmoid_ref, -745.0, 40.0);
        assert!(e32 <= 3.0, "f32 sigmoid: {e32} ULP");
        assert!(e64 <= 3.0, "f64 sigmoid: {e64} ULP");
    }

    #[test]
    fn special_values_and_saturation() {
        for x in [1e4f64, -1e4, f64::INFINITY, f64::NEG_INFINITY, 800.0, -800.0] {
            let s = f64::vsigmoid(x);
            let t = f64::vtanh(x);
            assert_eq!(s, if x > 0.0 { 1.0 } else { 0.0 }, "sigmoid({x})");
            assert_eq!(t, x.signum(), "tanh({x})");
            assert_eq!(f32::vsigmoid(x as f32), s as f32);
            assert_eq!(f32::vtanh(x as f32), t as f32);
            assert_eq!(f64::vexp(x), x.exp(), "exp({x})");
            assert_eq!(f32::vexp(x as f32), (x as f32).exp(), "exp({x})");
            assert_eq!(f64::vexpm1(x), x.exp_m1(), "expm1({x})");
            assert_eq!(f32::vexpm1(x as f32), (x as f32).exp_m1(), "expm1({x})");
        }
        // Overflow exactly where the true value overflows, not before.
        assert!(f64::vexp(709.78).is_finite() && f64::vexp(709.79).is_infinite());
        assert!(f32::vexp(88.72).is_finite() && f32::vexp(88.73).is_infinite());
        assert!(f64::vexpm1(709.78).is_finite() && f32::vexpm1(88.72).is_finite());
        // Gradual underflow: subnormal results.
        assert!(f64::vexp(-740.0) > 0.0 && f64::vexp(-740.0) < f64::MIN_POSITIVE);
        assert!(f32::vexp(-100.0) > 0.0 && f32::vexp(-100.0) < f32::MIN_POSITIVE);
        assert_eq!(f64::vsigmoid(-740.0), f64::vexp(-740.0));
        for f in [f64::vexp, f64::vexpm1, f64::vtanh, f64::vsigmoid] {
            assert!(f(f64::NAN).is_nan());
        }
        for f in [f32::vexp, f32::vexpm1, f32::vtanh, f32::vsigmoid] {
            assert!(f(f32::NAN).is_nan());
        }
        assert_eq!(f64::vexp(0.0), 1.0);
        assert_eq!(f32::vexp(0.0), 1.0);
        assert_eq!(f64::vsigmoid(0.0), 0.5);
        assert_eq!(f64::vtanh(-0.0).to_bits(), (-0.0f64).to_bits());
    }

    #[test]
    fn slices_match_scalars_on_simd_edges() {
        for n in [0usize, 1, 7, 8, 9, 15, 16, 17, 33] {
            let x: Vec<f32> = uniforms(n, n as u64)
                .iter()
                .map(|&u| (u * 40.0 - 20.0) as f32)
                .collect();
            let mut y = vec![0f32; n];
            exp_slice(&x, &mut y);
            assert!(x.iter().zip(&y).all(|(a, b)| a.vexp().to_bits() == b.to_bits()));
            tanh_slice(&x, &mut y);
            assert!(x.iter().zip(&y).all(|(a, b)| a.vtanh().to_bits() == b.to_bits()));
            sigmoid_slice(&x, &mut y);
            assert!(x.iter().zip(&y).all(|(a, b)| a.vsigmoid().to_bits() == b.to_bits()));
        }
    }
}
