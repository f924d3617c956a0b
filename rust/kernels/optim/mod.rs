//! In-place optimizer steps with the rules and defaults of `torch.optim` (PyTorch 2.x: the
//! algorithm boxes of its documentation and its `_single_tensor_*` implementations).
//!
//! One call updates one parameter tensor and its state for step `t` (counting from 1, the value
//! PyTorch's `state["step"]` has once incremented). Shared conventions:
//! - `g = grad`, or `−grad` with `maximize`, negated before the weight decay as in PyTorch;
//! - coupled (L2) weight decay λ makes `g ← g + λ·p`, and is skipped when λ = 0 (so an infinite
//!   parameter does not turn the gradient into NaN); decoupled decay (AdamW, NAdamW) makes
//!   `p ← p·(1 − η·λ)` first;
//! - scalars that depend only on hyper-parameters and `t` (bias corrections, step sizes, `1 − β`)
//!   are computed in `f64` and rounded once to `T`, as PyTorch does with its Python-scalar
//!   hyper-parameters; the element arithmetic is then the same sequence of correctly rounded
//!   operations as the NumPy reference (`python/initcore/reference/optim.py`), with no fused
//!   multiply-add, so the two backends usually agree to the last bit.
//!
//! The per-algorithm math and its textbook forms are in `sgd.rs` (SGD, momentum, Nesterov),
//! `adaptive.rs` (Adagrad, RMSprop) and `adam.rs` (Adam, AdamW, AMSGrad, NAdam).
//!
//! Speed: each step is one memory-bound pass that reads `grad` and reads and writes `param` and
//! every state array once (`zipN` below, compiled for AVX2/AVX-512/NEON with run-time dispatch);
//! flags become loop-invariant selects rather than branches, so the loops vectorize. Above
//! `parallel::PAR_THRESHOLD` elements the arrays are cut at fixed multiples of `CHUNK` and the
//! pieces run on initcore's pool. Every element's result depends on that element alone, so the
//! output is bit-identical for any thread count.
//!
//! Errors: lengths, hyper-parameters and the presence of the state arrays are all checked before
//! anything is written. They come back as the crate's `ShapeError`, whose message names the
//! argument (`argument 'lr' must be >= 0, got -1`); the bindings prefix the function name.

use super::parallel::{install, threads_for, PAR_THRESHOLD};
use super::{Real, ShapeError};

mod adam;
mod adaptive;
mod sgd;

hyper_table!(Sgd; num lr, momentum, dampening, weight_decay; flag nesterov, maximize);
hyper_table!(Adagrad; num lr, lr_decay, weight_decay, eps; flag maximize);
hyper_table!(RMSprop; num lr, alpha, eps, weight_decay, momentum; flag centered, maximize);
hyper_table!(Adam; num lr, beta1, beta2, eps, weight_decay; flag amsgrad, decoupled_weight_decay, maximize);
hyper_table!(NAdam; num lr, beta1, beta2, eps, weight_decay, momentum_decay; flag decoupled_weight_decay, maximize);

pub use adam::{adam_step, nadam_step, Adam, NAdam};
pub use adaptive::{adagrad_step, rmsprop_step, Adagrad, RMSprop};
pub use sgd::{sgd_step, Sgd};

/// One hyper-parameter value as it crosses a language boundary.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum HyperValue {
    Num(f64),
    Flag(bool),
}

/// The hyper-parameters of one optimizer as a table: their names (with whether each is a flag)
/// and a setter by name, so a binding extracts every optimizer with one generic loop instead of
/// a hand-written copy of each struct.
pub trait Hyper: Default {
    /// `(name, is_flag)` for every field, in declaration order.
    const FIELDS: &'static [(&'static str, bool)];
    /// Sets field `name`; `false` when no field has that name or the value's kind is wrong.
    fn set(&mut self, name: &str, value: HyperValue) -> bool;
}

/// Implements [`Hyper`] from the struct's field lists: `hyper_table!(Sgd; num lr, momentum;
/// flag nesterov)`.
macro_rules! hyper_table {
    ($t:ty; num $($n:ident),*; flag $($b:ident),*) => {
        impl $crate::kernels::optim::Hyper for $t {
            const FIELDS: &'static [(&'static str, bool)] = &[$((stringify!($n), false),)* $((stringify!($b), true),)*];
            fn set(&mut self, name: &str, value: $crate::kernels::optim::HyperValue) -> bool {
                use $crate::kernels::optim::HyperValue;
                match (name, value) {
                    $((stringify!($n), HyperValue::Num(v)) => self.$n = v,)*
                    $((stringify!($b), HyperValue::Flag(v)) => self.$b = v,)*
                    _ => return false,
                }
                true
            }
        }
    };
}
use hyper_table;

/// Elements per parallel piece: pieces start at multiples of this, whatever the thread count.
pub const CHUNK: usize = PAR_THRESHOLD;

// ---------------------------------------------------------------------------------------------
// Argument checks (shared by every step; messages name the Python argument)

fn err(msg: String) -> ShapeError {
    ShapeError(msg)
}

/// `step ≥ 1`.
pub(crate) fn check_step(step: u64) -> Result<(), ShapeError> {
    if step < 1 {
        return Err(err(format!(
            "argument 'step' must be >= 1 (steps count from 1), got {step}"
        )));
    }
    Ok(())
}

/// Finite, and `v ≥ lo` (`v > lo` when `open`).
pub(crate) fn check_min(arg: &str, v: f64, lo: f64, open: bool) -> Result<(), ShapeError> {
    check_finite(arg, v)?;
    if (open && v <= lo) || (!open && v < lo) {
        return Err(err(format!(
            "argument '{arg}' must be {} {lo}, got {v}",
            if open { ">" } else { ">=" }
        )));
    }
    Ok(())
}

pub(crate) fn check_finite(arg: &str, v: f64) -> Result<(), ShapeError> {
    if !v.is_finite() {
        return Err(err(format!("argument '{arg}' must be finite, got {v}")));
    }
    Ok(())
}

/// A decay rate: `0 ≤ v < 1`.
pub(crate) fn check_rate(arg: &str, v: f64) -> Result<(), ShapeError> {
    check_min(arg, v, 0.0, false)?;
    if v >= 1.0 {
        return Err(err(format!("argument '{arg}' must be < 1, got {v}")));
    }
    Ok(())
}

/// A state array's length equals the parameter's.
pub(crate) fn check_len(arg: &str, len: usize, n: usize) -> Result<(), ShapeError> {
    if len != n {
        return Err(err(format!(
            "argument '{arg}' has {len} elements, expected {n} (the size of 'param')"
        )));
    }
    Ok(())
}

/// An optional state array is given exactly when the configuration uses it (`why` says why it
/// is needed, `None` when it is not), and then has the parameter's length.
pub(crate) fn check_state<T>(
    arg: &str,
    state: &Option<&mut [T]>,
    why: Option<&str>,
    n: usize,
) -> Result<(), ShapeError> {
    match (state, why) {
        (None, Some(why)) => Err(err(format!("argument '{arg}' is required ({why})"))),
        (Some(_), None) => Err(err(format!(
            "argument '{arg}' must be None: this configuration does not use it"
        ))),
        (Some(s), Some(_)) => check_len(arg, s.len(), n),
        (None, None) => Ok(()),
    }
}

/// `+1` or `−1`: multiplying by it negates exactly, so `maximize` costs no branch.
#[inline(always)]
pub(crate) fn sign<T: Real>(maximize: bool) -> T {
    if maximize {
        -T::one()
    } else {
        T::one()
    }
}

// ---------------------------------------------------------------------------------------------
// Fixed-chunk parallel driver

/// A bundle of equally long slices that can be cut at the same index.
pub(crate) trait Split: Sized + Send {
    fn len(&self) -> usize;
    fn split_at(self, mid: usize) -> (Self, Self);
}

impl<T: Send> Split for &mut [T] {
    fn len(&self) -> usize {
        <[T]>::len(self)
    }
    fn split_at(self, mid: usize) -> (Self, Self) {
        self.split_at_mut(mid)
    }
}

impl<T: Sync> Split for &[T] {
    fn len(&self) -> usize {
        <[T]>::len(self)
    }
    fn split_at(self, mid: usize) -> (Self, Self) {
        <[T]>::split_at(self, mid)
    }
}

macro_rules! split_tuple {
    ($($a:ident),+) => {
        #[allow(non_snake_case)]
        impl<$($a: Split),+> Split for ($($a,)+) {
            fn len(&self) -> usize {
                self.0.len()
            }
            fn split_at(self, mid: usize) -> (Self, Self) {
                let ($($a,)+) = self;
                $(let $a = $a.split_at(mid);)+
                (($($a.0,)+), ($($a.1,)+))
            }
        }
    };
}
split_tuple!(A, B);
split_tuple!(A, B, C);
split_tuple!(A, B, C, D);
split_tuple!(A, B, C, D, E);

/// `(param, grad, states…)` bundles as the step closures receive them.
pub(crate) type Three<'a, T> = (&'a mut [T], &'a [T], &'a mut [T]);
pub(crate) type Four<'a, T> = (&'a mut [T], &'a [T], &'a mut [T], &'a mut [T]);
pub(crate) type Five<'a, T> = (&'a mut [T], &'a [T], &'a mut [T], &'a mut [T], &'a mut [T]);

/// Runs `f` on the whole bundle below the parallel threshold, else on pieces cut at multiples
/// of `CHUNK`, in parallel on initcore's pool. The caller has checked that all lengths agree.
pub(crate) fn chunked<S: Split>(arrays: S, f: &(impl Fn(S) + Sync)) {
    if threads_for(arrays.len()) > 1 {
        install(|| halve(arrays, f))
    } else {
        f(arrays)
    }
}

fn halve<S: Split>(arrays: S, f: &(impl Fn(S) + Sync)) {
    let n = arrays.len();
    if n <= CHUNK {
        return f(arrays);
    }
    let mid = n.div_ceil(CHUNK) / 2 * CHUNK;
    let (a, b) = arrays.split_at(mid);
    rayon::join(|| halve(a, f), || halve(b, f));
}

// ---------------------------------------------------------------------------------------------
// Vectorized element loops: `f` is inlined into each instruction-set clone. Zipped slice
// iterators carry no bounds checks, so LLVM vectorizes the body.

simd_fn! {
pub(crate) fn zip2<T: Real, F: Fn(&mut T, T)>(p: &mut [T], g: &[T], f: F) {
    for (p, &g) in p.iter_mut().zip(g) {
        f(p, g)
    }
}
}

simd_fn! {
pub(crate) fn zip3<T: Real, F: Fn(&mut T, T, &mut T)>(p: &mut [T], g: &[T], a: &mut [T], f: F) {
    for ((p, &g), a) in p.iter_mut().zip(g).zip(a.iter_mut()) {
        f(p, g, a)
    }
}
}

simd_fn! {
pub(crate) fn zip4<T: Real, F: Fn(&mut T, T, &mut T, &mut T)>(p: &mut [T], g: &[T], a: &mut [T], b: &mut [T], f: F) {
    for (((p, &g), a), b) in p.iter_mut().zip(g).zip(a.iter_mut()).zip(b.iter_mut()) {
        f(p, g, a, b)
    }
}
}

simd_fn! {
pub(crate) fn zip5<T: Real, F: Fn(&mut T, T, &mut T, &mut T, &mut T)>(
    p: &mut [T],
    g: &[T],
    a: &mut [T],
    b: &mut [T],
    c: &mut [T],
    f: F,
) {
    for ((((p, &g), a), b), c) in p
        .iter_mut()
        .zip(g)
        .zip(a.iter_mut())
        .zip(b.iter_mut())
        .zip(c.iter_mut())
    {
        f(p, g, a, b, c)
    }
}
}

#[cfg(test)]
pub(crate) mod testing {
    //! Shared by the kernels' tests: deterministic data and the sizes that exercise the SIMD
    //! tails and both the serial and the parallel path.
    use super::CHUNK;
    use crate::kernels::Real;

    /// 0, 1, SIMD widths ±1, odd, and two sizes above the parallel threshold (one ragged).
    pub const SIZES: [usize; 12] = [0, 1, 2, 7, 8, 9, 15, 16, 17, 1001, 2 * CHUNK + 5, 3 * CHUNK];

    /// Values in about [−scale, scale] from a fixed linear congruential sequence.
    pub fn data<T: Real>(n: usize, seed: u64, scale: f64) -> Vec<T> {
        crate::kernels::test_data::uniform(n, seed)
            .into_iter()
            .map(|v| T::of(v * scale))
            .collect()
    }

    /// Non-negative values, as a second-moment state has.
    pub fn positive<T: Real>(n: usize, seed: u64, scale: f64) -> Vec<T> {
        data::<T>(n, seed, scale).into_iter().map(|x| x * x).collect()
    }

    /// Bitwise equality, NaNs included, with the first differing index in the message.
    pub fn same_bits<T: Real>(got: &[T], want: &[T], what: &str) {
        assert_eq!(got.len(), want.len(), "{what}: lengths");
        for (i, (a, b)) in got.iter().zip(want).enumerate() {
            assert!(
                a.f64().to_bits() == b.f64().to_bits(),
                "{what}[{i}]: got {a:?}, want {b:?}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_covers_everything_once_at_fixed_boundaries() {
        for n in [0, 1, CHUNK, CHUNK + 1, 2 * CHUNK, 5 * CHUNK + 17] {
            let mut v = vec![0u32; n];
            let starts = std::sync::Mutex::new(Vec::new());
            let base = v.as_ptr() as usize;
            chunked(&mut v[..], &|c: &mut [u32]| {
                starts.lock().unwrap().push((c.as_ptr() as usize - base) / 4);
                c.iter_mut().for_each(|x| *x += 1);
            });
            assert!(v.iter().all(|&x| x == 1), "n = {n}");
            if threads_for(n) > 1 {
                assert!(starts.lock().unwrap().iter().all(|&s| s % CHUNK == 0), "n = {n}");
            }
        }
    }

    #[test]
    fn split_tuple_cuts_every_member_at_the_same_index() {
        let mut a = [1, 2, 3, 4, 5];
        let b = [6, 7, 8, 9, 10];
        let ((a0, b0), (a1, b1)) = Split::split_at((&mut a[..], &b[..]), 2);
        assert_eq!((a0.len(), b0, a1.len(), b1), (2, &[6, 7][..], 3, &[8, 9, 10][..]));
    }

    #[test]
    fn argument_checks_name_the_argument() {
        assert!(check_step(0).unwrap_err().0.contains("'step'"));
        assert!(check_step(1).is_ok());
        assert!(check_min("lr", -1.0, 0.0, false).unwrap_err().0.contains("'lr'"));
        assert!(check_min("lr", 0.0, 0.0, false).is_ok());
        assert!(check_min("eps", 0.0, 0.0, true)
            .unwrap_err()
            .0
            .contains("'eps' must be > 0"));
        assert!(check_min("lr", f64::NAN, 0.0, false).unwrap_err().0.contains("finite"));
        assert!(check_rate("beta1", 1.0).unwrap_err().0.contains("'beta1' must be < 1"));
        assert!(check_rate("beta1", 0.0).is_ok());
        let mut s = [0.0f32; 3];
        assert!(check_state::<f32>("buf", &None, Some("momentum > 0"), 3)
            .unwrap_err()
            .0
            .contains("'buf' is required"));
        assert!(check_state("buf", &Some(&mut s[..]), None, 3)
            .unwrap_err()
            .0
            .contains("must be None"));
        assert!(check_state("buf", &Some(&mut s[..]), Some("x"), 4)
            .unwrap_err()
            .0
            .contains("3 elements, expected 4"));
    }
}

#[cfg(test)]
mod hyper_table_tests {
    use super::*;

    /// Every field of the table is settable by name with its own kind, and nothing else is.
    fn check<H: Hyper + PartialEq + std::fmt::Debug>() {
        for &(name, is_flag) in H::FIELDS {
            let mut h = H::default();
            let (right, wrong) = if is_flag {
                (HyperValue::Flag(true), HyperValue::Num(0.5))
            } else {
                (HyperValue::Num(0.125), HyperValue::Flag(true))
            };
            assert!(h.set(name, right), "{name}");
            assert_ne!(h, H::default(), "setting {name} changed nothing");
            assert!(!h.set(name, wrong), "{name} accepted the wrong kind");
        }
        assert!(!H::default().set("no_such_field", HyperValue::Num(1.0)));
    }

    #[test]
    fn every_optimizer_table_covers_its_fields() {
        check::<Sgd>();
        check::<Adagrad>();
        check::<RMSprop>();
        check::<Adam>();
        check::<NAdam>();
        assert_eq!(Sgd::FIELDS.len(), 6);
        assert_eq!(Adam::FIELDS.len(), 8);
        assert_eq!(NAdam::FIELDS.len(), 8);
    }
}
