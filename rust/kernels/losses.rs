//! Losses on raw network outputs, each returning the loss (an `f64`) and writing its gradient.
//!
//! ```text
//! cross_entropy:        L = Σ_i [ log Σ_j exp(z_ij) − z_i,y_i ]           dL/dz = softmax(z) − onehot(y)
//! binary_cross_entropy: L = Σ [ max(z, 0) − z·t + log1p(exp(−|z|)) ]     dL/dz = sigmoid(z) − t
//! mse:                  L = Σ (p − t)²                                    dL/dp = 2(p − t)
//! ```
//! With `Reduction::Mean` the loss and the gradient are divided by the number of rows (cross
//! entropy, as `torch.nn.CrossEntropyLoss`) or of entries (BCE and MSE, as `BCEWithLogitsLoss`
//! and `MSELoss`). Cross-entropy subtracts each row's maximum before `exp` and BCE uses the
//! form above, so neither overflows nor takes `log(0)` for any finite logit.
//!
//! The per-row (per-entry) losses are computed in the element type and summed in `f64` over
//! the fixed blocks of `parallel::RowBlocks`, added in block order (`RowBlocks::sum`): the loss
//! is bit-identical for any thread count.
//! `exp` is `vmath`'s vectorizable one (≤ 1 ULP in f32, 2 in f64); the per-row `ln` of cross
//! entropy and BCE's `ln_1p` are the standard library's (one call per row, resp. per entry).
//!
//! The losses with options (sample weights, label smoothing, soft targets, `mae`, `huber`) are
//! [`weighted_loss`] in `losses/weighted.rs`; the three plain kernels here stay the fast path.

use super::parallel::RowBlocks;
use super::rows::{row_max, row_sum};
use super::vmath::VMath;
use super::{Real, ShapeError};
use crate::ensure;
use std::fmt::Display;

// Per-sample weights, label smoothing, soft targets, MAE and Huber (one kernel for all of them).
mod weighted;
pub use weighted::{check_weighted_loss, weighted_loss, LossFn, Targets};

/// How the per-sample losses are combined.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reduction {
    Mean,
    Sum,
}

impl Reduction {
    /// `"mean"` or `"sum"`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "mean" => Some(Self::Mean),
            "sum" => Some(Self::Sum),
            _ => None,
        }
    }
}

/// An integer class label of any width or signedness.
pub trait Label: Copy + Send + Sync + Display + 'static {
    /// The class index, or `None` if negative or not representable.
    fn index(self) -> Option<usize>;
}

macro_rules! impl_label {
    ($($t:ty),*) => {$(
        impl Label for $t {
            #[inline(always)]
            fn index(self) -> Option<usize> {
                usize::try_from(self).ok()
            }
        }
    )*};
}
impl_label!(i8, i16, i32, i64, isize, u8, u16, u32, u64, usize);

/// Rows per block of the cross-entropy loss sum.
const CE_BLOCK_ROWS: usize = 256;
/// Entries per block of the elementwise losses' sums.
const EW_BLOCK: usize = 4096;
/// Independent `f64` accumulators inside a block, so that the sum vectorizes without
/// reassociation (and stays in a fixed order).
const LANES: usize = 8;

/// Folds `LANES` partial sums in a fixed order.
#[inline(always)]
fn fold_lanes(acc: [f64; LANES]) -> f64 {
    acc.iter().fold(0.0, |a, &b| a + b)
}

/// `labels` has one class index in `[0, c)` per row of an `(n, c)` output: the one check of
/// integer labels (cross-entropy here and in `weighted.rs`), run before anything is written.
pub(crate) fn check_labels<L: Label>(labels: &[L], n: usize, c: usize) -> Result<(), ShapeError> {
    ensure!(
        labels.len() == n,
        "argument 'labels' has shape ({},), expected ({n},) (one per row of logits)",
        labels.len()
    );
    if let Some((i, l)) = labels
        .iter()
        .enumerate()
        .find(|(_, l)| !matches!(l.index(), Some(k) if k < c))
    {
        return Err(ShapeError(format!(
            "argument 'labels' has labels[{i}] = {l}, outside [0, {c})"
        )));
    }
    Ok(())
}

/// Softmax cross-entropy of `logits (n, c)` (row-major) against `labels (n,)`; writes
/// `dlogits (n, c)` and returns the loss. Labels are checked before anything is written.
pub fn cross_entropy<T: VMath, L: Label>(
    logits: &[T],
    n: usize,
    c: usize,
    labels: &[L],
    reduction: Reduction,
    dlogits: &mut [T],
) -> Result<f64, ShapeError> {
    ensure!(
        n > 0 && c > 0,
        "argument 'logits' is empty (shape ({n}, {c})); need n >= 1 rows and C >= 1 classes"
    );
    ensure!(
        logits.len() == n * c,
        "argument 'logits' has {} elements, expected {n}x{c}",
        logits.len()
    );
    ensure!(
        dlogits.len() == n * c,
        "argument 'dlogits' has {} elements, expected {n}x{c}",
        dlogits.len()
    );
    check_labels(labels, n, c)?;
    let scale = match reduction {
        Reduction::Mean => T::of(1.0 / n as f64),
        Reduction::Sum => T::one(),
    };
    let total = RowBlocks::new(n, CE_BLOCK_ROWS).sum(dlogits, c, 4 * c, |r, g| {
        ce_block(&logits[r.start * c..r.end * c], c, &labels[r], scale, g)
    });
    Ok(match reduction {
        Reduction::Mean => total / n as f64,
        Reduction::Sum => total,
    })
}

simd_fn! {
fn ce_block<T: VMath, L: Label>(z: &[T], c: usize, labels: &[L], scale: T, g: &mut [T]) -> f64 {
    let mut total = 0.0f64;
    // Pass 1, per row: z − max into g, and the −(z_y − max) part of the loss.
    for ((zr, gr), &l) in z.chunks_exact(c).zip(g.chunks_exact_mut(c)).zip(labels) {
        let y = l.index().unwrap_or(0).min(c - 1); // checked by the caller
        let mx = row_max(zr);
        for (o, &v) in gr.iter_mut().zip(zr) {
            *o = v - mx;
        }
        total -= gr[y].f64();
    }
    // Pass 2: exp over the whole block at once, one long vectorized loop (rows of 10 would
    // leave a scalar remainder in every row).
    for o in g.iter_mut() {
        *o = o.vexp();
    }
    // Pass 3, per row: (p − onehot)·scale, and Σ_rows log s = log Π_rows s with one `ln` per
    // block instead of one per row. Every s lies in [1, C] (the row maximum contributes
    // exp(0) = 1), so the product only grows; it is rescaled by exact powers of two.
    let (mut prod, mut exp2) = (1.0f64, 0i64);
    for (gr, &l) in g.chunks_exact_mut(c).zip(labels) {
        let y = l.index().unwrap_or(0).min(c - 1);
        let s = row_sum(gr);
        prod *= s.f64();
        if prod > TWO_POW_600 {
            prod *= TWO_POW_MINUS_600;
            exp2 += 600;
        }
        for (j, o) in gr.iter_mut().enumerate() {
            let onehot = if j == y { T::one() } else { T::zero() };
            *o = (*o / s - onehot) * scale;
        }
    }
    total + (prod.ln() + exp2 as f64 * std::f64::consts::LN_2)
}
}

const TWO_POW_600: f64 = 4.149515568880993e180;
const TWO_POW_MINUS_600: f64 = 2.409919865102884e-181;

/// Sigmoid binary cross-entropy of `logits` against `targets` (same length `len`, any shape);
/// writes `grad` and returns the loss.
pub fn binary_cross_entropy<T: VMath>(
    logits: &[T],
    targets: &[T],
    reduction: Reduction,
    grad: &mut [T],
) -> Result<f64, ShapeError> {
    elementwise(logits, targets, reduction, grad, "logits", "targets", bce_block)
}

/// Mean (or summed) squared error; writes `grad = 2(p − t)` (÷ N for the mean).
pub fn mse<T: Real>(pred: &[T], target: &[T], reduction: Reduction, grad: &mut [T]) -> Result<f64, ShapeError> {
    elementwise(pred, target, reduction, grad, "pred", "target", mse_block)
}

fn elementwise<T: Real>(
    a: &[T],
    b: &[T],
    reduction: Reduction,
    grad: &mut [T],
    a_name: &str,
    b_name: &str,
    block: fn(&[T], &[T], T, &mut [T]) -> f64,
) -> Result<f64, ShapeError> {
    let len = a.len();
    ensure!(len > 0, "argument '{a_name}' is empty; a loss needs at least one entry");
    ensure!(
        b.len() == len,
        "argument '{b_name}' has {} elements, expected {len} (the size of '{a_name}')",
        b.len()
    );
    ensure!(
        grad.len() == len,
        "the gradient has {} elements, expected {len}",
        grad.len()
    );
    let scale = match reduction {
        Reduction::Mean => T::of(1.0 / len as f64),
        Reduction::Sum => T::one(),
    };
    let total = RowBlocks::new(len, EW_BLOCK).sum(grad, 1, 8, |r, g| block(&a[r.clone()], &b[r], scale, g));
    Ok(match reduction {
        Reduction::Mean => total / len as f64,
        Reduction::Sum => total,
    })
}

simd_fn! {
fn bce_block<T: VMath>(z: &[T], t: &[T], scale: T, g: &mut [T]) -> f64 {
    let one = T::one();
    // e = exp(−|z|) first, in a loop that vectorizes; `ln_1p` below is a libm call per entry.
    for (o, &zz) in g.iter_mut().zip(z) {
        *o = (-zz.abs()).vexp();
    }
    let mut acc = [0.0f64; LANES];
    let each = |z: T, t: T, g: &mut T| -> f64 {
        let e = *g;
        let loss = z.max(T::zero()) - z * t + e.ln_1p();
        let sig = if z >= T::zero() { one / (one + e) } else { e / (one + e) };
        *g = (sig - t) * scale;
        loss.f64()
    };
    let (zc, zr) = z.split_at(z.len() / LANES * LANES);
    let (tc, tr) = t.split_at(zc.len());
    let (gc, gr) = g.split_at_mut(zc.len());
    for ((zz, tt), gg) in zc
        .chunks_exact(LANES)
        .zip(tc.chunks_exact(LANES))
        .zip(gc.chunks_exact_mut(LANES))
    {
        let (zz, tt, gg): (&[T; LANES], &[T; LANES], &mut [T; LANES]) =
            (zz.try_into().unwrap(), tt.try_into().unwrap(), gg.try_into().unwrap());
        for k in 0..LANES {
            acc[k] += each(zz[k], tt[k], &mut gg[k]);
        }
    }
    for (k, ((&zz, &tt), gg)) in zr.iter().zip(tr).zip(gr.iter_mut()).enumerate() {
        acc[k] += each(zz, tt, gg);
    }
    fold_lanes(acc)
}
}

simd_fn! {
fn mse_block<T: Real>(p: &[T], t: &[T], scale: T, g: &mut [T]) -> f64 {
    let two = T::of(2.0);
    let mut acc = [0.0f64; LANES];
    let (pc, pr) = p.split_at(p.len() / LANES * LANES);
    let (tc, tr) = t.split_at(pc.len());
    let (gc, gr) = g.split_at_mut(pc.len());
    for ((pp, tt), gg) in pc
        .chunks_exact(LANES)
        .zip(tc.chunks_exact(LANES))
        .zip(gc.chunks_exact_mut(LANES))
    {
        let (pp, tt, gg): (&[T; LANES], &[T; LANES], &mut [T; LANES]) =
            (pp.try_into().unwrap(), tt.try_into().unwrap(), gg.try_into().unwrap());
        for k in 0..LANES {
            let d = pp[k] - tt[k];
            gg[k] = (two * d) * scale;
            let d = d.f64();
            acc[k] += d * d;
        }
    }
    for (k, ((&pp, &tt), gg)) in pr.iter().zip(tr).zip(gr.iter_mut()).enumerate() {
        let d = pp - tt;
        *gg = (two * d) * scale;
        let d = d.f64();
        acc[k] += d * d;
    }
    fold_lanes(acc)
}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::parallel::{self, PAR_THRESHOLD};

    use crate::kernels::test_data::uniform as data;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol * (1.0 + b.abs())
    }

    fn check_ce<T: VMath>(n: usize, c: usize, red: Reduction, tol: f64) {
        let z: Vec<T> = data(n * c, (n * 7 + c) as u64)
            .iter()
            .map(|&v| T::of(4.0 * v))
            .collect();
        let labels: Vec<u8> = (0..n).map(|i| ((i * 5 + 3) % c) as u8).collect();
        let mut g = vec![T::zero(); n * c];
        let loss = cross_entropy(&z, n, c, &labels, red, &mut g).unwrap();
        let div = if red == Reduction::Mean { n as f64 } else { 1.0 };
        let mut want = 0.0;
        for i in 0..n {
            let row: Vec<f64> = z[i * c..(i + 1) * c].iter().map(|v| v.f64()).collect();
            let lse = row.iter().map(|v| v.exp()).sum::<f64>().ln();
            want += lse - row[labels[i] as usize];
            for j in 0..c {
                let p = (row[j] - lse).exp() - if j == labels[i] as usize { 1.0 } else { 0.0 };
                assert!(close(g[i * c + j].f64(), p / div, tol), "ce grad n={n} c={c}");
            }
        }
        assert!(
            close(loss, want / div, tol * 10.0),
            "ce loss n={n} c={c}: {loss} vs {}",
            want / div
        );
    }

    fn check_ew<T: VMath>(len: usize, red: Reduction, tol: f64) {
        let z: Vec<T> = data(len, len as u64).iter().map(|&v| T::of(30.0 * v)).collect();
        let t: Vec<T> = data(len, 3 + len as u64)
            .iter()
            .map(|&v| T::of(0.5 + 0.5 * v))
            .collect();
        let div = if red == Reduction::Mean { len as f64 } else { 1.0 };
        let mut g = vec![T::zero(); len];
        let loss = binary_cross_entropy(&z, &t, red, &mut g).unwrap();
        let mut want = 0.0;
        for k in 0..len {
            let (z, t) = (z[k].f64(), t[k].f64());
            // log(1 + e^z) − z·t, the textbook form, safe here in f64 for |z| ≤ 30.
            want += (1.0 + z.exp()).ln() - z * t;
            assert!(close(g[k].f64(), (1.0 / (1.0 + (-z).exp()) - t) / div, tol), "bce grad");
        }
        assert!(close(loss, want / div, tol * 10.0), "bce loss {loss} vs {}", want / div);
        let loss = mse(&z, &t, red, &mut g).unwrap();
        let want: f64 = z.iter().zip(&t).map(|(a, b)| (a.f64() - b.f64()).powi(2)).sum::<f64>() / div;
        assert!(close(loss, want, tol * 10.0), "mse loss");
        for k in 0..len {
            assert!(
                close(g[k].f64(), 2.0 * (z[k].f64() - t[k].f64()) / div, tol),
                "mse grad"
            );
        }
    }

    #[test]
    fn losses_match_naive_loops() {
        for red in [Reduction::Mean, Reduction::Sum] {
            for &n in &[1, 2, 7, 8, 9, 15, 16, 17, 300] {
                for &c in &[1, 2, 7, 8, 9, 10, 17] {
                    check_ce::<f64>(n, c, red, 1e-13);
                    check_ce::<f32>(n, c, red, 1e-5);
                }
            }
            for &len in &[1, 7, 8, 9, 15, 16, 17, 5000] {
                check_ew::<f64>(len, red, 1e-13);
                check_ew::<f32>(len, red, 1e-5);
            }
        }
    }

    #[test]
    fn extreme_logits_stay_finite() {
        let z = [1e4f32, -1e4, 0.0, 88.0, -104.0, 3e38];
        let t = [0.0f32, 1.0, 0.5, 1.0, 0.0, 1.0];
        let mut g = [0f32; 6];
        let l = binary_cross_entropy(&z, &t, Reduction::Sum, &mut g).unwrap();
        assert!(l.is_finite() && g.iter().all(|v| v.is_finite()));
        assert!((l - (1e4 + 1e4 + 2f64.ln() + 0.0 + 0.0 + 0.0)).abs() < 1e-3);
        let mut g = [0f64; 6];
        let l = cross_entropy(
            &[1e300, -1e300, 0.0, 7e2, 7e2, -7e2],
            2,
            3,
            &[1i64, 2],
            Reduction::Mean,
            &mut g,
        )
        .unwrap();
        assert!(l.is_finite() && g.iter().all(|v| v.is_finite()));
    }

    #[test]
    fn equal_logits_give_log_c_across_product_rescaling() {
        // s = C in every row: 256 rows of C = 1000 multiply to 10^768, far past 2^600.
        for &(n, c) in &[(300usize, 10usize), (700, 1000)] {
            let z = vec![0.25f64; n * c];
            let labels: Vec<u32> = (0..n as u32).map(|i| i % c as u32).collect();
            let mut g = vec![0.0; n * c];
            let l = cross_entropy(&z, n, c, &labels, Reduction::Sum, &mut g).unwrap();
            assert!((l - n as f64 * (c as f64).ln()).abs() < 1e-12 * l, "{l}");
        }
    }

    #[test]
    fn labels_are_checked_before_writing() {
        let mut g = [7f32; 6];
        let e = cross_entropy(&[0f32; 6], 2, 3, &[0i32, 3], Reduction::Mean, &mut g).unwrap_err();
        assert!(e.0.contains("labels[1] = 3"), "{}", e.0);
        let e = cross_entropy(&[0f32; 6], 2, 3, &[-1i64, 0], Reduction::Mean, &mut g).unwrap_err();
        assert!(e.0.contains("labels[0] = -1"), "{}", e.0);
        assert!(cross_entropy(&[0f32; 0], 0, 3, &[0u8; 0], Reduction::Mean, &mut []).is_err());
        assert!(mse(&[0f32; 0], &[], Reduction::Mean, &mut []).is_err());
        assert!(g.iter().all(|&v| v == 7.0));
    }

    #[test]
    fn parallel_losses_are_thread_count_independent() {
        let (n, c) = (4 * PAR_THRESHOLD / 10, 10);
        let z: Vec<f32> = data(n * c, 1).iter().map(|&v| 5.0 * v as f32).collect();
        let t: Vec<f32> = data(n * c, 2).iter().map(|&v| 0.5 + 0.5 * v as f32).collect();
        let labels: Vec<i64> = (0..n as i64).map(|i| i % 10).collect();
        let run = || {
            let mut g1 = vec![0f32; n * c];
            let mut g2 = vec![0f32; n * c];
            let mut g3 = vec![0f32; n * c];
            let l1 = cross_entropy(&z, n, c, &labels, Reduction::Mean, &mut g1).unwrap();
            let l2 = binary_cross_entropy(&z, &t, Reduction::Mean, &mut g2).unwrap();
            let l3 = mse(&z, &t, Reduction::Sum, &mut g3).unwrap();
            (l1.to_bits(), l2.to_bits(), l3.to_bits(), g1, g2, g3)
        };
        let prev = parallel::num_threads();
        parallel::set_num_threads(1).unwrap();
        let one = run();
        parallel::set_num_threads(3).unwrap();
        let three = run();
        parallel::set_num_threads(prev).unwrap();
        assert!(one == three);
        check_ce::<f32>(n / 4, c, Reduction::Mean, 1e-5);
    }
}
