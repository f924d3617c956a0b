//! The losses with options: per-sample weights, label smoothing, soft (probability) targets,
//! and the robust regression losses, on raw network outputs `z (n, C)`.
//!
//! ```text
//! cross_entropy   q = (1 − ε)·t + ε/C,  t = onehot(y) or soft targets (rows of probabilities)
//!                 l_i = Σ_j q_ij·(lse_i − z_ij)                 dl_i/dz_ij = p_ij·Σ_j q_ij − q_ij
//! bce             l_ij = max(z, 0) − z·t + log1p(e^{−|z|})       dl/dz = sigmoid(z) − t
//! mse             l_ij = (p − t)²                                dl/dp = 2(p − t)
//! mae             l_ij = |p − t|                                 dl/dp = sign(p − t)  (0 at 0)
//! huber           l_ij = ½d² if |d| ≤ δ else δ(|d| − ½δ)         dl/dp = d if |d| ≤ δ else δ·sign(d)
//! ```
//! `lse_i = log Σ_j e^{z_ij}`, `p = softmax(z)`. This is `torch.nn.CrossEntropyLoss` with
//! `label_smoothing=ε` (class-index or probability targets; Szegedy et al. 2016 for smoothing),
//! `BCEWithLogitsLoss`, `MSELoss`, `L1Loss` and `HuberLoss(delta=δ)` (Huber 1964); Keras's
//! `CategoricalCrossentropy(from_logits=True, label_smoothing=ε)` and `Huber(delta)` agree.
//!
//! Sample weights `w (n,)` multiply each row's loss and gradient, and the mean divides by the
//! number of rows (cross-entropy) or entries (the others) *without* the weights: Keras's
//! `sum_over_batch_size` reduction, `Σ_i w_i·l_i / n`, which is what `fit(sample_weight=...)`
//! optimizes there (PyTorch's `weight=` divides by `Σ w` instead). Without weights every
//! formula is its `torch.nn` loss with `reduction="mean"` or `"sum"`.
//!
//! Row losses are computed in the element type and summed in `f64` over fixed blocks of rows,
//! folded in block order: the loss is bit-identical for any thread count. Labels and weights
//! are checked before anything is written.

use super::{Label, Reduction};
use crate::ensure;
use crate::kernels::parallel::RowBlocks;
use crate::kernels::vmath::VMath;
use crate::kernels::{Real, ShapeError};

/// A loss and its options (the kind of target is given separately, see [`Targets`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LossFn {
    /// Softmax cross-entropy with label smoothing `ε ∈ [0, 1]`.
    CrossEntropy {
        label_smoothing: f64,
    },
    BinaryCrossEntropy,
    Mse,
    Mae,
    /// Huber loss with threshold `δ > 0`.
    Huber {
        delta: f64,
    },
}

impl LossFn {
    /// `"cross_entropy"`, `"binary_cross_entropy"`, `"mse"`, `"mae"`, `"huber"`, with the
    /// option that applies (the other is ignored).
    pub fn parse(name: &str, label_smoothing: f64, delta: f64) -> Option<Self> {
        Some(match name {
            "cross_entropy" => Self::CrossEntropy { label_smoothing },
            "binary_cross_entropy" => Self::BinaryCrossEntropy,
            "mse" => Self::Mse,
            "mae" => Self::Mae,
            "huber" => Self::Huber { delta },
            _ => return None,
        })
    }

    pub fn validate(&self) -> Result<(), ShapeError> {
        match *self {
            Self::CrossEntropy { label_smoothing: e } => ensure!(
                (0.0..=1.0).contains(&e),
                "argument 'label_smoothing' must be in [0, 1], got {e}"
            ),
            Self::Huber { delta } => ensure!(
                delta > 0.0 && delta.is_finite(),
                "argument 'delta' must be a finite number > 0, got {delta}"
            ),
            _ => {}
        }
        Ok(())
    }

    /// Whether the mean divides by rows (cross-entropy) rather than entries.
    pub fn per_row(&self) -> bool {
        matches!(self, Self::CrossEntropy { .. })
    }
}

/// The targets of a batch: class indices `(n,)` (cross-entropy only) or values `(n, C)`
/// (soft class probabilities for cross-entropy).
#[derive(Clone, Copy, Debug)]
pub enum Targets<'a, T, L> {
    Labels(&'a [L]),
    Values(&'a [T]),
}

/// Rows per block of the loss sums (and per parallel task).
const BLOCK_ENTRIES: usize = 4096;

/// Checks every argument of [`weighted_loss`]; nothing is written.
pub fn check_weighted_loss<T: Real, L: Label>(
    loss: &LossFn,
    out_len: usize,
    n: usize,
    c: usize,
    target: &Targets<'_, T, L>,
    weights: Option<&[T]>,
    grad_len: usize,
) -> Result<(), ShapeError> {
    loss.validate()?;
    ensure!(
        n > 0 && c > 0,
        "the output is empty (shape ({n}, {c})); a loss needs at least one entry"
    );
    ensure!(out_len == n * c, "the output has {out_len} elements, expected {n}x{c}");
    ensure!(
        grad_len == n * c,
        "the gradient has {grad_len} elements, expected {n}x{c}"
    );
    match target {
        Targets::Labels(l) => {
            ensure!(
                loss.per_row(),
                "integer labels are for cross_entropy only; this loss takes float targets ({n}, {c})"
            );
            super::check_labels(l, n, c)?;
        }
        Targets::Values(v) => ensure!(
            v.len() == n * c,
            "argument 'targets' has {} elements, expected {n}x{c}",
            v.len()
        ),
    }
    if let Some(w) = weights {
        ensure!(
            w.len() == n,
            "argument 'sample_weight' has shape ({},), expected ({n},) (one per row)",
            w.len()
        );
        if let Some((i, v)) = w.iter().enumerate().find(|(_, v)| !(v.is_finite() && **v >= T::zero())) {
            return Err(ShapeError(format!(
                "argument 'sample_weight' has sample_weight[{i}] = {v:?}; weights must be finite and >= 0"
            )));
        }
    }
    Ok(())
}

/// `loss(out, target)` with optional per-row `weights` and `reduction`; writes `grad (n, C)`
/// and returns the loss (see the module docs for the formulas and the weighted mean).
#[allow(clippy::too_many_arguments)]
pub fn weighted_loss<T: VMath, L: Label>(
    loss: LossFn,
    out: &[T],
    n: usize,
    c: usize,
    target: Targets<'_, T, L>,
    weights: Option<&[T]>,
    reduction: Reduction,
    grad: &mut [T],
) -> Result<f64, ShapeError> {
    check_weighted_loss(&loss, out.len(), n, c, &target, weights, grad.len())?;
    let count = if loss.per_row() { n } else { n * c };
    let scale = match reduction {
        Reduction::Mean => 1.0 / count as f64,
        Reduction::Sum => 1.0,
    };
    let rows_per_block = (BLOCK_ENTRIES / c).max(1);
    let block = |r0: usize, g: &mut [T]| -> f64 {
        let rows = g.len() / c;
        let z = &out[r0 * c..(r0 + rows) * c];
        let w = weights.map(|w| &w[r0..r0 + rows]);
        match (loss, target) {
            (LossFn::CrossEntropy { label_smoothing }, t) => {
                let t = match t {
                    Targets::Labels(l) => Targets::Labels(&l[r0..r0 + rows]),
                    Targets::Values(v) => Targets::Values(&v[r0 * c..(r0 + rows) * c]),
                };
                ce_rows(z, c, t, label_smoothing, w, scale, g)
            }
            (_, Targets::Values(v)) => ew_rows(loss, z, &v[r0 * c..(r0 + rows) * c], c, w, scale, g),
            (_, Targets::Labels(_)) => unreachable!("checked: labels are for cross-entropy"),
        }
    };
    // The same fixed blocks (so the same bits for any thread count) as the plain kernels.
    let total = RowBlocks::new(n, rows_per_block).sum(grad, c, 8 * c, |r, g| block(r.start, g));
    Ok(total * scale)
}

/// Cross-entropy rows: returns `Σ_i w_i·l_i` (unscaled), writes `grad = w_i·scale·(p·Σq − q)`.
fn ce_rows<T: VMath, L: Label>(
    z: &[T],
    c: usize,
    target: Targets<'_, T, L>,
    eps: f64,
    w: Option<&[T]>,
    scale: f64,
    g: &mut [T],
) -> f64 {
    let mut total = 0.0f64;
    let keep = T::of(1.0 - eps);
    let spread = T::of(eps / c as f64);
    for (i, (zr, gr)) in z.chunks_exact(c).zip(g.chunks_exact_mut(c)).enumerate() {
        let mx = zr.iter().fold(T::neg_infinity(), |m, &v| if v > m { v } else { m });
        // g ← z − max, then e^{z − max}; the row loss uses the shifted logits (lse − z is shift-free).
        let mut s = T::zero();
        for (o, &v) in gr.iter_mut().zip(zr) {
            *o = (v - mx).vexp();
            s += *o;
        }
        let lse = s.ln(); // log Σ e^{z − max}
        let wi = w.map_or(T::one(), |w| w[i]);
        let gs = T::of(scale) * wi;
        let mut row = 0.0f64;
        match target {
            Targets::Labels(l) => {
                let y = l[i].index().unwrap_or(0).min(c - 1); // checked by the caller
                                                              // Σq = 1: l = lse − (1 − ε)(z_y − max) − ε/C·Σ_j (z_j − max).
                let mut zsum = 0.0f64;
                for (j, (o, &v)) in gr.iter_mut().zip(zr).enumerate() {
                    let q = if j == y { keep + spread } else { spread };
                    zsum += (v - mx).f64();
                    *o = (*o / s - q) * gs;
                }
                row += lse.f64() - keep.f64() * (zr[y] - mx).f64() - spread.f64() * zsum;
            }
            Targets::Values(t) => {
                let tr = &t[i * c..(i + 1) * c];
                let qsum: T = tr.iter().fold(T::zero(), |a, &v| a + (keep * v + spread));
                for ((o, &v), &tv) in gr.iter_mut().zip(zr).zip(tr) {
                    let q = keep * tv + spread;
                    row += (q * (lse - (v - mx))).f64();
                    *o = (*o / s * qsum - q) * gs;
                }
            }
        }
        total += wi.f64() * row;
    }
    total
}

/// Elementwise-loss rows: returns `Σ_i w_i·Σ_j l_ij` (unscaled), writes the weighted gradient.
fn ew_rows<T: VMath>(loss: LossFn, a: &[T], b: &[T], c: usize, w: Option<&[T]>, scale: f64, g: &mut [T]) -> f64 {
    let (zero, one, two, half) = (T::zero(), T::one(), T::of(2.0), T::of(0.5));
    let mut total = 0.0f64;
    for (i, ((ar, br), gr)) in a
        .chunks_exact(c)
        .zip(b.chunks_exact(c))
        .zip(g.chunks_exact_mut(c))
        .enumerate()
    {
        let wi = w.map_or(one, |w| w[i]);
        let gs = T::of(scale) * wi;
        let mut row = 0.0f64;
        match loss {
            LossFn::BinaryCrossEntropy => {
                for ((o, &z), &t) in gr.iter_mut().zip(ar).zip(br) {
                    let e = (-z.abs()).vexp();
                    row += (z.max(zero) - z * t + e.ln_1p()).f64();
                    let sig = if z >= zero { one / (one + e) } else { e / (one + e) };
                    *o = (sig - t) * gs;
                }
            }
            LossFn::Mse => {
                for ((o, &p), &t) in gr.iter_mut().zip(ar).zip(br) {
                    let d = p - t;
                    row += d.f64() * d.f64();
                    *o = (two * d) * gs;
                }
            }
            LossFn::Mae => {
                for ((o, &p), &t) in gr.iter_mut().zip(ar).zip(br) {
                    let d = p - t;
                    row += d.abs().f64();
                    let s = if d > zero {
                        one
                    } else if d < zero {
                        -one
                    } else {
                        zero
                    };
                    *o = s * gs;
                }
            }
            LossFn::Huber { delta } => {
                let dl = T::of(delta);
                for ((o, &p), &t) in gr.iter_mut().zip(ar).zip(br) {
                    let d = p - t;
                    if d.abs() <= dl {
                        row += (half * d * d).f64();
                        *o = d * gs;
                    } else {
                        row += (dl * (d.abs() - half * dl)).f64();
                        *o = (if d > zero { dl } else { -dl }) * gs;
                    }
                }
            }
            LossFn::CrossEntropy { .. } => unreachable!("cross-entropy rows are ce_rows"),
        }
        total += wi.f64() * row;
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::losses::{binary_cross_entropy, cross_entropy, mse};
    use crate::kernels::parallel::{self, PAR_THRESHOLD};
    use crate::kernels::test_data::uniform as data;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol * (1.0 + b.abs())
    }

    /// Central differences of the summed loss in f64 against the analytic gradient.
    fn gradcheck(loss: LossFn, n: usize, c: usize, labels: bool, weighted: bool) {
        let z: Vec<f64> = data(n * c, 11).iter().map(|&v| 3.0 * v).collect();
        let raw: Vec<f64> = data(n * c, 12).iter().map(|&v| 0.5 + 0.5 * v).collect();
        let t: Vec<f64> = if loss.per_row() {
            // rows of probabilities
            raw.chunks(c)
                .flat_map(|r| {
                    let s: f64 = r.iter().sum();
                    r.iter().map(move |v| v / s).collect::<Vec<_>>()
                })
                .collect()
        } else {
            data(n * c, 13).iter().map(|&v| 2.0 * v).collect()
        };
        let y: Vec<i64> = (0..n as i64).map(|i| (i * 3 + 1) % c as i64).collect();
        let w: Vec<f64> = (0..n).map(|i| 0.25 + i as f64 * 0.5).collect();
        let wo = if weighted { Some(&w[..]) } else { None };
        let target = |_: ()| -> Targets<'_, f64, i64> {
            if labels {
                Targets::Labels(&y)
            } else {
                Targets::Values(&t)
            }
        };
        for red in [Reduction::Mean, Reduction::Sum] {
            let mut g = vec![0.0; n * c];
            let l0 = weighted_loss(loss, &z, n, c, target(()), wo, red, &mut g).unwrap();
            let mut zz = z.clone();
            let mut scratch = vec![0.0; n * c];
            for k in 0..n * c {
                let h = 1e-6;
                zz[k] = z[k] + h;
                let lp = weighted_loss(loss, &zz, n, c, target(()), wo, red, &mut scratch).unwrap();
                zz[k] = z[k] - h;
                let lm = weighted_loss(loss, &zz, n, c, target(()), wo, red, &mut scratch).unwrap();
                zz[k] = z[k];
                let fd = (lp - lm) / (2.0 * h);
                assert!(
                    (fd - g[k]).abs() <= 1e-6 * (1.0 + fd.abs()),
                    "{loss:?} n={n} c={c} k={k}: fd {fd} vs {} (loss {l0})",
                    g[k]
                );
            }
        }
    }

    #[test]
    fn gradients_match_finite_differences() {
        for &(n, c) in &[(1usize, 1usize), (3, 4), (7, 10), (5, 1)] {
            for weighted in [false, true] {
                for eps in [0.0, 0.1] {
                    gradcheck(LossFn::CrossEntropy { label_smoothing: eps }, n, c, true, weighted);
                    gradcheck(LossFn::CrossEntropy { label_smoothing: eps }, n, c, false, weighted);
                }
                gradcheck(LossFn::BinaryCrossEntropy, n, c, false, weighted);
                gradcheck(LossFn::Mse, n, c, false, weighted);
                gradcheck(LossFn::Mae, n, c, false, weighted);
                gradcheck(LossFn::Huber { delta: 1.0 }, n, c, false, weighted);
                gradcheck(LossFn::Huber { delta: 0.3 }, n, c, false, weighted);
            }
        }
    }

    #[test]
    fn without_options_equals_the_plain_losses() {
        let (n, c) = (37, 9);
        let z: Vec<f64> = data(n * c, 1).iter().map(|&v| 4.0 * v).collect();
        let t: Vec<f64> = data(n * c, 2).iter().map(|&v| 0.5 + 0.5 * v).collect();
        let y: Vec<i64> = (0..n as i64).map(|i| i % c as i64).collect();
        let (mut g1, mut g2) = (vec![0.0; n * c], vec![0.0; n * c]);
        for red in [Reduction::Mean, Reduction::Sum] {
            let ce = LossFn::CrossEntropy { label_smoothing: 0.0 };
            let a = weighted_loss(ce, &z, n, c, Targets::Labels(&y), None, red, &mut g1).unwrap();
            let b = cross_entropy(&z, n, c, &y, red, &mut g2).unwrap();
            assert!(close(a, b, 1e-13) && g1.iter().zip(&g2).all(|(p, q)| (p - q).abs() < 1e-15));
            // one-hot probability targets are the labels
            let onehot: Vec<f64> = (0..n * c).map(|k| (k % c == y[k / c] as usize) as u8 as f64).collect();
            let a = weighted_loss::<f64, i64>(ce, &z, n, c, Targets::Values(&onehot), None, red, &mut g1).unwrap();
            assert!(close(a, b, 1e-13) && g1.iter().zip(&g2).all(|(p, q)| (p - q).abs() < 1e-15));
            let a = weighted_loss::<f64, i64>(LossFn::Mse, &z, n, c, Targets::Values(&t), None, red, &mut g1).unwrap();
            let b = mse(&z, &t, red, &mut g2).unwrap();
            assert!(close(a, b, 1e-13) && g1.iter().zip(&g2).all(|(p, q)| (p - q).abs() < 1e-15));
            let bce = LossFn::BinaryCrossEntropy;
            let a = weighted_loss::<f64, i64>(bce, &z, n, c, Targets::Values(&t), None, red, &mut g1).unwrap();
            let b = binary_cross_entropy(&z, &t, red, &mut g2).unwrap();
            assert!(close(a, b, 1e-13) && g1.iter().zip(&g2).all(|(p, q)| (p - q).abs() < 1e-15));
        }
    }

    #[test]
    fn weights_are_the_keras_sum_over_batch_size() {
        // Σ w_i l_i / n: doubling one row's weight equals repeating that row, over n + 0 rows.
        let (n, c) = (4, 3);
        let z: Vec<f64> = data(n * c, 5).to_vec();
        let t: Vec<f64> = data(n * c, 6).to_vec();
        let w = [1.0, 2.0, 0.0, 1.0];
        let mut g = vec![0.0; n * c];
        let lw = weighted_loss::<f64, i64>(
            LossFn::Mae,
            &z,
            n,
            c,
            Targets::Values(&t),
            Some(&w),
            Reduction::Sum,
            &mut g,
        )
        .unwrap();
        let per_row: Vec<f64> = (0..n)
            .map(|i| (0..c).map(|j| (z[i * c + j] - t[i * c + j]).abs()).sum())
            .collect();
        let want: f64 = per_row.iter().zip(&w).map(|(l, w)| l * w).sum();
        assert!(close(lw, want, 1e-14));
        let lm = weighted_loss::<f64, i64>(
            LossFn::Mae,
            &z,
            n,
            c,
            Targets::Values(&t),
            Some(&w),
            Reduction::Mean,
            &mut g,
        )
        .unwrap();
        assert!(close(lm, want / (n * c) as f64, 1e-14));
        assert!(g[6..9].iter().all(|&v| v == 0.0), "a zero weight gives a zero gradient");
    }

    #[test]
    fn bad_arguments_write_nothing() {
        let mut g = [7f32; 6];
        let ce = LossFn::CrossEntropy { label_smoothing: 0.0 };
        let z = [0f32; 6];
        let e = weighted_loss(ce, &z, 2, 3, Targets::Labels(&[0i64, 3]), None, Reduction::Mean, &mut g).unwrap_err();
        assert!(e.0.contains("labels[1] = 3"), "{}", e.0);
        let e = weighted_loss(
            ce,
            &z,
            2,
            3,
            Targets::Labels(&[0i64, 1]),
            Some(&[1.0, -1.0]),
            Reduction::Mean,
            &mut g,
        )
        .unwrap_err();
        assert!(e.0.contains("sample_weight[1]"), "{}", e.0);
        let e = weighted_loss(
            ce,
            &z,
            2,
            3,
            Targets::Labels(&[0i64, 1]),
            Some(&[1.0]),
            Reduction::Mean,
            &mut g,
        )
        .unwrap_err();
        assert!(e.0.contains("sample_weight"), "{}", e.0);
        let bad = LossFn::CrossEntropy { label_smoothing: 1.5 };
        assert!(weighted_loss(
            bad,
            &z,
            2,
            3,
            Targets::Labels(&[0i64, 1]),
            None,
            Reduction::Mean,
            &mut g
        )
        .is_err());
        let e = weighted_loss(
            LossFn::Huber { delta: 0.0 },
            &z,
            2,
            3,
            Targets::<f32, i64>::Values(&z),
            None,
            Reduction::Mean,
            &mut g,
        )
        .unwrap_err();
        assert!(e.0.contains("delta"), "{}", e.0);
        let e = weighted_loss(
            LossFn::Mse,
            &z,
            2,
            3,
            Targets::Labels(&[0i64, 1]),
            None,
            Reduction::Mean,
            &mut g,
        )
        .unwrap_err();
        assert!(e.0.contains("cross_entropy only"), "{}", e.0);
        assert!(g.iter().all(|&v| v == 7.0));
    }

    #[test]
    fn thread_count_independent() {
        let (n, c) = (4 * PAR_THRESHOLD / 10, 10);
        let z: Vec<f32> = data(n * c, 1).iter().map(|&v| 5.0 * v as f32).collect();
        let t: Vec<f32> = data(n * c, 2).iter().map(|&v| 0.5 + 0.5 * v as f32).collect();
        let w: Vec<f32> = data(n, 3).iter().map(|&v| 1.0 + v as f32).collect();
        let y: Vec<i64> = (0..n as i64).map(|i| i % 10).collect();
        let run = || {
            let mut g1 = vec![0f32; n * c];
            let mut g2 = vec![0f32; n * c];
            let ce = LossFn::CrossEntropy { label_smoothing: 0.1 };
            let l1 = weighted_loss(ce, &z, n, c, Targets::Labels(&y), Some(&w), Reduction::Mean, &mut g1).unwrap();
            let hub = LossFn::Huber { delta: 1.0 };
            let l2 = weighted_loss::<f32, i64>(hub, &z, n, c, Targets::Values(&t), Some(&w), Reduction::Mean, &mut g2)
                .unwrap();
            (l1.to_bits(), l2.to_bits(), g1, g2)
        };
        let prev = parallel::num_threads();
        parallel::set_num_threads(1).unwrap();
        let one = run();
        parallel::set_num_threads(3).unwrap();
        let three = run();
        parallel::set_num_threads(prev).unwrap();
        assert!(one == three);
    }
}
