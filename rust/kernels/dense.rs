//! A dense (fully connected) layer, Keras layout: `x (n, in)`, `W (in, out)`, `b (out,)`.
//!
//! Forward:  `z = x·W + b`, `y = f(z)`.
//! Backward: `dz = dy ⊙ f'(z)`, `dW = xᵀ·dz`, `db = Σ_rows dz`, `dx = dz·Wᵀ`
//! (the equations of any textbook, e.g. Goodfellow et al., *Deep Learning*, §6.5; PyTorch's
//! `nn.Linear` computes the same with `W` stored transposed).
//!
//! The products are GEMM (`matmul::gemm_into`); the transposes `xᵀ` and `Wᵀ` are strided views,
//! never copies. Everything between the products is one fused pass: the forward adds the bias
//! and applies the activation while `z` is read once (`activation::bias_act_forward`); the
//! backward forms `dz` and accumulates `db` in the same pass
//! (`activation::bias_act_backward`), over fixed row blocks so that `db` is bit-identical for
//! any thread count (GEMM is too, see `matmul`). With the identity activation `dz = dy` and
//! the products read `dy` directly.
//!
//! The functions write into caller-provided slices and allocate nothing, so that a training
//! step can call them in a loop with workspaces it keeps. They are the one implementation of
//! the layer: the layer-by-layer path (`py/dense.rs`) and the whole-network step
//! (`fused/network.rs`) both call them.
//!
//! Threads: each product is split in row bands of at least `BAND_MACS` multiply-adds, one
//! serial GEMM per thread (`matmul::gemm_into_banded`), and the two backward products run side
//! by side on two halves of the pool when both are big enough (`JOIN_MACS`). Serial GEMMs that
//! each keep one core busy scale better than GEMM's own threading at MLP sizes, and every split
//! gives the same bits as one serial call.

use super::activation::{bias_act_backward, bias_act_forward, colsum_workspace_len, column_sums, Act};
use super::matmul::{gemm_into_banded, MatRef};
use super::parallel;
use super::vmath::VMath;
use super::ShapeError;
use crate::ensure;

/// Multiply-adds per row band of a product split across threads (about 10 µs of one core): on
/// smaller bands, handing work to another thread costs more than it saves (measured on the
/// 100-unit layers of the `snn` workload).
pub(crate) const BAND_MACS: usize = 1 << 19;
/// Multiply-adds of each of a layer's two backward products above which they run side by side.
pub(crate) const JOIN_MACS: usize = 1 << 19;

/// Threads (row bands) for an `m×k` by `k×n` product: one per `BAND_MACS` of work.
fn band_threads(m: usize, k: usize, n: usize) -> usize {
    (m.saturating_mul(k).saturating_mul(n) / BAND_MACS).clamp(1, parallel::num_threads())
}

/// Shape of one dense layer for a batch: `n` rows, `inp` inputs, `out` units.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DenseShape {
    pub n: usize,
    pub inp: usize,
    pub out: usize,
}

impl DenseShape {
    /// Elements of the `ws` workspace that `dense_backward` needs (0 for up to
    /// `activation::SUM_BLOCK_ROWS` rows).
    pub fn backward_workspace_len(&self) -> usize {
        colsum_workspace_len(self.n, self.out)
    }

    fn check(&self, what: &str, args: &[(&str, usize, usize)]) -> Result<(), ShapeError> {
        for &(name, got, want) in args {
            ensure!(
                got == want,
                "dense {what}: {name} has {got} elements, expected {want} (n={}, in={}, out={})",
                self.n,
                self.inp,
                self.out
            );
        }
        Ok(())
    }
}

/// Forward: `z ← x·W (+ b)`, `y ← f(z)`. Slices: `x (n·in)`, `w (in·out)`, `b (out)`,
/// `z, y (n·out)`, all row-major.
#[allow(clippy::too_many_arguments)]
pub fn dense_forward<T: VMath>(
    s: DenseShape,
    x: &[T],
    w: &[T],
    b: Option<&[T]>,
    act: Act<T>,
    z: &mut [T],
    y: &mut [T],
) -> Result<(), ShapeError> {
    let DenseShape { n, inp, out } = s;
    s.check(
        "forward",
        &[
            ("x", x.len(), n * inp),
            ("w", w.len(), inp * out),
            ("z", z.len(), n * out),
            ("y", y.len(), n * out),
        ],
    )?;
    if let Some(b) = b {
        s.check("forward", &[("b", b.len(), out)])?;
    }
    gemm_into_banded(
        z,
        MatRef::row_major(x, n, inp)?,
        MatRef::row_major(w, inp, out)?,
        false,
        band_threads(n, inp, out),
    )?;
    bias_act_forward(act, b, n, out, z, y)
}

/// Backward from `dy (n·out)` and the forward's `x`, `w`, `z`, `y`:
/// `dz ← dy ⊙ f'(z)` (scratch of `n·out` elements; unused, and may be empty, for the identity),
/// `dw ← xᵀ·dz (in·out)`, `db ← Σ_rows dz (out)`, and `dx ← dz·Wᵀ (n·in)` when `dx` is given.
/// `ws` holds `s.backward_workspace_len()` elements.
#[allow(clippy::too_many_arguments)]
pub fn dense_backward<T: VMath>(
    s: DenseShape,
    dy: &[T],
    x: &[T],
    w: &[T],
    z: &[T],
    y: &[T],
    act: Act<T>,
    dz: &mut [T],
    ws: &mut [T],
    dx: Option<&mut [T]>,
    dw: &mut [T],
    db: &mut [T],
) -> Result<(), ShapeError> {
    let DenseShape { n, inp, out } = s;
    s.check(
        "backward",
        &[
            ("dy", dy.len(), n * out),
            ("x", x.len(), n * inp),
            ("w", w.len(), inp * out),
            ("z", z.len(), n * out),
            ("y", y.len(), n * out),
            ("dw", dw.len(), inp * out),
            ("db", db.len(), out),
        ],
    )?;
    if let Some(dx) = dx.as_deref() {
        s.check("backward", &[("dx", dx.len(), n * inp)])?;
    }
    if act != Act::Identity {
        s.check("backward", &[("dz", dz.len(), n * out)])?;
    }
    let dz: &[T] = if act == Act::Identity {
        column_sums(dy, n, out, ws, db)?;
        dy
    } else {
        bias_act_backward(act, dy, z, y, n, out, dz, ws, db)?;
        dz
    };
    let dzm = MatRef::row_major(dz, n, out)?;
    let xt = MatRef::row_major(x, n, inp)?.t();
    let (tw, tx) = (band_threads(inp, n, out), band_threads(n, out, inp));
    match dx {
        Some(dx) => {
            let wt = MatRef::row_major(w, inp, out)?.t();
            let threads = parallel::num_threads();
            if threads > 1 && n * out * inp >= JOIN_MACS {
                let half = (threads / 2).max(1);
                let (a, b) = parallel::install(|| {
                    rayon::join(
                        || gemm_into_banded(dw, xt, dzm, false, tw.min(half)),
                        || gemm_into_banded(dx, dzm, wt, false, tx.min(half)),
                    )
                });
                a.and(b)
            } else {
                gemm_into_banded(dw, xt, dzm, false, tw)?;
                gemm_into_banded(dx, dzm, wt, false, tx)
            }
        }
        None => gemm_into_banded(dw, xt, dzm, false, tw),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::activation::tests::fill;
    use crate::kernels::parallel;

    fn naive_mm(a: &[f64], b: &[f64], m: usize, k: usize, n: usize) -> Vec<f64> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
            }
        }
        c
    }

    fn transpose(a: &[f64], r: usize, c: usize) -> Vec<f64> {
        let mut t = vec![0.0; r * c];
        for i in 0..r {
            for j in 0..c {
                t[j * r + i] = a[i * c + j];
            }
        }
        t
    }

    fn near(got: &[f64], want: &[f64], what: &str) {
        assert_eq!(got.len(), want.len(), "{what}");
        for (i, (a, b)) in got.iter().zip(want).enumerate() {
            assert!((a - b).abs() <= 1e-11 * (1.0 + b.abs()), "{what}[{i}]: {a} vs {b}");
        }
    }

    fn run(s: DenseShape, act: Act<f64>, bias: bool, need_dx: bool) -> [Vec<f64>; 5] {
        let DenseShape { n, inp, out } = s;
        let x = fill(n * inp, 1, -1.0, 1.0);
        let w = fill(inp * out, 2, -0.5, 0.5);
        let b = fill(out, 3, -0.5, 0.5);
        let dy = fill(n * out, 4, -1.0, 1.0);
        let (mut z, mut y) = (vec![f64::NAN; n * out], vec![f64::NAN; n * out]);
        dense_forward(s, &x, &w, bias.then_some(&b[..]), act, &mut z, &mut y).unwrap();
        let (mut dz, mut ws) = (vec![f64::NAN; n * out], vec![f64::NAN; s.backward_workspace_len()]);
        let (mut dx, mut dw, mut db) = (vec![f64::NAN; n * inp], vec![f64::NAN; inp * out], vec![f64::NAN; out]);
        dense_backward(
            s,
            &dy,
            &x,
            &w,
            &z,
            &y,
            act,
            &mut dz,
            &mut ws,
            need_dx.then_some(&mut dx[..]),
            &mut dw,
            &mut db,
        )
        .unwrap();

        // Naive: the textbook equations with the activation's own kernels for f and f'.
        let mut zw = naive_mm(&x, &w, n, inp, out);
        if bias {
            zw.iter_mut().enumerate().for_each(|(i, v)| *v += b[i % out]);
        }
        near(&z, &zw, "z");
        let mut yw = vec![0.0; n * out];
        crate::kernels::activation::act_forward(act, &zw, &mut yw).unwrap();
        near(&y, &yw, "y");
        let mut dzw = vec![0.0; n * out];
        crate::kernels::activation::act_backward(act, &dy, &zw, &yw, &mut dzw).unwrap();
        near(&dw, &naive_mm(&transpose(&x, n, inp), &dzw, inp, n, out), "dw");
        let dbw: Vec<f64> = (0..out).map(|j| (0..n).map(|i| dzw[i * out + j]).sum()).collect();
        near(&db, &dbw, "db");
        if need_dx {
            near(&dx, &naive_mm(&dzw, &transpose(&w, inp, out), n, out, inp), "dx");
        } else {
            assert!(dx.iter().all(|v| v.is_nan()), "dx untouched");
        }
        [z, y, dx, dw, db]
    }

    #[test]
    fn matches_naive_on_awkward_shapes() {
        let acts = [
            Act::Identity,
            Act::Relu,
            Act::Tanh,
            Act::Sigmoid,
            Act::LeakyRelu(0.1),
            Act::Elu(1.0),
            Act::Selu,
        ];
        let shapes = [
            (0, 3, 4),
            (3, 0, 4),
            (3, 4, 0),
            (1, 1, 1),
            (7, 9, 8),
            (16, 15, 17),
            (65, 33, 9),
            (130, 70, 65),
        ];
        for (i, &(n, inp, out)) in shapes.iter().enumerate() {
            for (j, &act) in acts.iter().enumerate() {
                run(DenseShape { n, inp, out }, act, (i + j) % 2 == 0, (i + j) % 3 != 0);
            }
        }
    }

    #[test]
    fn bit_identical_for_any_thread_count() {
        let s = DenseShape {
            n: 512,
            inp: 300,
            out: 200,
        };
        parallel::set_num_threads(1).unwrap();
        let one = run(s, Act::Tanh, true, true);
        for t in [2, 3] {
            parallel::set_num_threads(t).unwrap();
            let got = run(s, Act::Tanh, true, true);
            for (a, b) in got.iter().zip(&one) {
                assert!(a.iter().zip(b).all(|(p, q)| p.to_bits() == q.to_bits()), "threads={t}");
            }
        }
    }

    #[test]
    fn shape_errors_are_errors_not_panics() {
        let s = DenseShape { n: 2, inp: 3, out: 4 };
        let v = vec![0.0f64; 100];
        let (mut z, mut y) = (vec![0.0; 8], vec![0.0; 8]);
        assert!(dense_forward(s, &v[..5], &v[..12], None, Act::Relu, &mut z, &mut y).is_err());
        assert!(dense_forward(s, &v[..6], &v[..12], Some(&v[..3]), Act::Relu, &mut z, &mut y).is_err());
        assert!(dense_forward(s, &v[..6], &v[..12], None, Act::Relu, &mut z[..7], &mut y).is_err());
        let (mut dz, mut dw, mut db, mut dx) = (vec![0.0; 8], vec![0.0; 12], vec![0.0; 4], vec![0.0; 5]);
        assert!(dense_backward(
            s,
            &v[..8],
            &v[..6],
            &v[..12],
            &v[..8],
            &v[..8],
            Act::Relu,
            &mut dz,
            &mut [],
            Some(&mut dx[..]),
            &mut dw,
            &mut db
        )
        .is_err());
        assert!(dense_backward(
            s,
            &v[..8],
            &v[..6],
            &v[..12],
            &v[..8],
            &v[..7],
            Act::Relu,
            &mut dz,
            &mut [],
            None,
            &mut dw,
            &mut db
        )
        .is_err());
    }
}
