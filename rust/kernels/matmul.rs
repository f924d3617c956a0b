//! Matrix products: `C = A·B` (optionally `C += A·B`) and NumPy-style batched products.
//!
//! The arithmetic is the `gemm` crate's: packed micro-kernels chosen at run time (AVX2/FMA,
//! AVX-512, NEON), arbitrary row/column strides and Rayon parallelism. This file is its one safe
//! wrapper: a `MatRef` proves that every element its shape and strides address lies inside its
//! slice, so the single `unsafe` call below cannot read or write out of bounds, and no `unsafe`
//! reaches the rest of the crate.
//!
//! Transposes cost nothing: `MatRef::t` swaps the strides. gemm splits the output into tiles and
//! accumulates each tile over `k` in a fixed order, whatever the thread count, so results are
//! bit-identical for any number of threads (tested below).

use super::parallel;
use super::{Real, ShapeError};
use crate::ensure;

/// Floating-point operations (multiply-adds) under which a product runs on the calling thread.
pub const GEMM_PAR_THRESHOLD: usize = 1 << 20;

/// A read-only strided matrix view: element `(i, j)` is `data[i·rs + j·cs]`.
#[derive(Clone, Copy, Debug)]
pub struct MatRef<'a, T> {
    data: &'a [T],
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

impl<'a, T> MatRef<'a, T> {
    /// A view with explicit (non-negative, element) strides; errors if any addressed element
    /// would fall outside `data`.
    pub fn new(data: &'a [T], rows: usize, cols: usize, rs: usize, cs: usize) -> Result<Self, ShapeError> {
        if rows > 0 && cols > 0 {
            let last = (rows - 1)
                .checked_mul(rs)
                .and_then(|a| (cols - 1).checked_mul(cs).and_then(|b| a.checked_add(b)));
            ensure!(
                matches!(last, Some(l) if l < data.len()),
                "matrix view {rows}x{cols} with strides ({rs}, {cs}) exceeds a buffer of {} elements",
                data.len()
            );
        }
        Ok(Self {
            data,
            rows,
            cols,
            rs,
            cs,
        })
    }

    /// A contiguous row-major `(rows, cols)` view.
    pub fn row_major(data: &'a [T], rows: usize, cols: usize) -> Result<Self, ShapeError> {
        ensure!(
            data.len() == rows * cols,
            "a {rows}x{cols} matrix needs {} elements, got {}",
            rows * cols,
            data.len()
        );
        Self::new(data, rows, cols, cols, 1)
    }

    /// The transpose, as a view of the same memory.
    pub fn t(self) -> Self {
        Self {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
        }
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Element `(i, j)`, bounds-checked (for tests and naive loops).
    pub fn at(&self, i: usize, j: usize) -> &T {
        &self.data[i * self.rs + j * self.cs]
    }

    /// Rows `r0..r1` (`r0 < r1 <= rows`), as a view of the same memory.
    pub fn row_band(self, r0: usize, r1: usize) -> Self {
        debug_assert!(r0 < r1 && r1 <= self.rows);
        Self {
            data: &self.data[r0 * self.rs..],
            rows: r1 - r0,
            ..self
        }
    }
}

/// `c ← a·b` (or `c ← c + a·b` when `accumulate`), with `c` a contiguous row-major
/// `(a.rows, b.cols)` slice. `threads` caps the parallelism (1 = calling thread only).
pub fn gemm_into<T: Real>(
    c: &mut [T],
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    accumulate: bool,
    threads: usize,
) -> Result<(), ShapeError> {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    ensure!(
        b.rows == k,
        "matmul: inner dimensions differ: a is {m}x{k}, b is {}x{n}",
        b.rows
    );
    ensure!(
        c.len() == m * n,
        "matmul: output has {} elements, expected {m}x{n}",
        c.len()
    );
    if m == 0 || n == 0 {
        return Ok(());
    }
    if k == 0 {
        if !accumulate {
            c.fill(T::zero());
        }
        return Ok(());
    }
    let par = if threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    let mut run = || {
        // SAFETY: `MatRef::new` checked that every (i, j) with i < rows, j < cols addresses an
        // element inside its slice; `c` is exactly m·n contiguous elements written through
        // (rs = n, cs = 1); `a` and `b` are shared borrows and `c` an exclusive one, so they
        // cannot alias; T is f32 or f64, both supported by gemm.
        unsafe {
            gemm::gemm(
                m,
                n,
                k,
                c.as_mut_ptr(),
                1,
                n as isize,
                accumulate,
                a.data.as_ptr(),
                a.cs as isize,
                a.rs as isize,
                b.data.as_ptr(),
                b.cs as isize,
                b.rs as isize,
                T::one(),
                T::one(),
                false,
                false,
                false,
                par,
            )
        }
    };
    if threads > 1 {
        parallel::install(run)
    } else {
        run()
    }
    Ok(())
}

/// Rows of `c` per band below which [`gemm_into_banded`] does not split.
pub const BAND_MIN_ROWS: usize = 32;

/// `c ← a·b` like [`gemm_into`], parallel by bands of whole rows of `c`: up to `threads`
/// bands, each one serial GEMM on its own thread. GEMM's own threading splits a product into
/// many small jobs with a barrier per depth block, which does not scale on products of MLP size
/// (128 rows: two threads run no faster than one); bands keep every core on one long serial
/// product.
///
/// Same bits as one serial call: GEMM computes each element of `c` with the same kernel and the
/// same depth blocking wherever its row falls (the blocking depends on `k` alone once a product
/// is past GEMM's small-matrix paths, which the split stays clear of: bands are at least
/// `BAND_MIN_ROWS` rows, and outputs of 64 columns or fewer are not split). Tested below.
pub fn gemm_into_banded<T: Real>(
    c: &mut [T],
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    accumulate: bool,
    threads: usize,
) -> Result<(), ShapeError> {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    let bands = threads.min(m / BAND_MIN_ROWS);
    if bands < 2 || n <= 64 || k <= 2 {
        return gemm_into(c, a, b, accumulate, threads);
    }
    ensure!(
        b.rows == k,
        "matmul: inner dimensions differ: a is {m}x{k}, b is {}x{n}",
        b.rows
    );
    ensure!(
        c.len() == m * n,
        "matmul: output has {} elements, expected {m}x{n}",
        c.len()
    );
    let rows = m.div_ceil(bands);
    parallel::install(|| {
        use rayon::prelude::*;
        c.par_chunks_mut(rows * n).enumerate().try_for_each(|(i, band)| {
            let r0 = i * rows;
            gemm_into(band, a.row_band(r0, r0 + band.len() / n), b, accumulate, 1)
        })
    })
}

/// Threads a product of `m·k·n` multiply-adds deserves.
pub fn gemm_threads(m: usize, k: usize, n: usize) -> usize {
    let flops = m.saturating_mul(k).saturating_mul(n);
    if flops < GEMM_PAR_THRESHOLD {
        1
    } else {
        parallel::num_threads().min(flops / (GEMM_PAR_THRESHOLD / 2)).max(1)
    }
}

/// `c ← a·b` for a 2-D product, threads chosen by size.
pub fn matmul<T: Real>(c: &mut [T], a: MatRef<'_, T>, b: MatRef<'_, T>) -> Result<(), ShapeError> {
    let t = gemm_threads(a.rows, a.cols, b.cols);
    gemm_into(c, a, b, false, t)
}

/// One operand of a batched product: `batch` matrices of `rows×cols` at `batch_stride` elements
/// apart (`batch == 1` broadcasts, as NumPy does).
#[derive(Clone, Copy, Debug)]
pub struct Batched<'a, T> {
    pub first: MatRef<'a, T>,
    pub batch: usize,
    pub batch_stride: usize,
}

impl<'a, T> Batched<'a, T> {
    fn get(&self, i: usize) -> MatRef<'a, T> {
        let i = if self.batch == 1 { 0 } else { i };
        let off = i * self.batch_stride;
        MatRef {
            data: &self.first.data[off..],
            ..self.first
        }
    }

    /// `batch` matrices of `rows×cols` in a slice; `rs`, `cs` are strides within each matrix.
    pub fn new(
        data: &'a [T],
        batch: usize,
        batch_stride: usize,
        rows: usize,
        cols: usize,
        rs: usize,
        cs: usize,
    ) -> Result<Self, ShapeError> {
        ensure!(batch >= 1, "batched matmul: empty batch of operands");
        let first = MatRef::new(data, rows, cols, rs, cs)?;
        // The last matrix must lie inside the slice too.
        let off = (batch - 1).saturating_mul(batch_stride);
        ensure!(
            rows == 0 || cols == 0 || off < data.len(),
            "batched operand of {batch} matrices exceeds its buffer"
        );
        MatRef::new(&data[off.min(data.len())..], rows, cols, rs, cs)?;
        Ok(Self {
            first,
            batch,
            batch_stride,
        })
    }

    pub fn t(self) -> Self {
        Self {
            first: self.first.t(),
            ..self
        }
    }
}

/// `c[i] ← a[i]·b[i]` for `i < max(a.batch, b.batch)`; a batch of 1 broadcasts. Many small
/// products run in parallel over the batch; few large ones use GEMM's own threads.
pub fn batched_matmul<T: Real>(c: &mut [T], a: Batched<'_, T>, b: Batched<'_, T>) -> Result<(), ShapeError> {
    let (m, k, n) = (a.first.rows, a.first.cols, b.first.cols);
    ensure!(
        b.first.rows == k,
        "matmul: inner dimensions differ: a is {m}x{k}, b is {}x{n}",
        b.first.rows
    );
    ensure!(
        a.batch == b.batch || a.batch == 1 || b.batch == 1,
        "matmul: batch dimensions {} and {} do not broadcast",
        a.batch,
        b.batch
    );
    let batch = a.batch.max(b.batch);
    ensure!(
        c.len() == batch * m * n,
        "matmul: output has {} elements, expected {batch}x{m}x{n}",
        c.len()
    );
    if batch == 0 || m == 0 || n == 0 {
        return Ok(());
    }
    let per = gemm_threads(m, k, n);
    if per > 1 || batch == 1 {
        for (i, ci) in c.chunks_mut(m * n).enumerate() {
            gemm_into(ci, a.get(i), b.get(i), false, per)?;
        }
        Ok(())
    } else {
        let total = batch.saturating_mul(m * k * n);
        let results = std::sync::Mutex::new(Ok(()));
        parallel::for_each_chunk(
            c,
            m * n,
            if total > GEMM_PAR_THRESHOLD { PAR_COST } else { 0 },
            |off, ci| {
                let i = off / (m * n);
                if let Err(e) = gemm_into(ci, a.get(i), b.get(i), false, 1) {
                    *results.lock().unwrap_or_else(|p| p.into_inner()) = Err(e);
                }
            },
        );
        results.into_inner().unwrap_or_else(|p| p.into_inner())
    }
}

/// Makes `for_each_chunk` go parallel for a batch whose total work passed the GEMM threshold.
const PAR_COST: usize = parallel::PAR_THRESHOLD;

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: MatRef<'_, f64>, b: MatRef<'_, f64>) -> Vec<f64> {
        let mut c = vec![0.0; a.rows() * b.cols()];
        for i in 0..a.rows() {
            for j in 0..b.cols() {
                let mut s = 0.0;
                for p in 0..a.cols() {
                    s += a.at(i, p) * b.at(p, j);
                }
                c[i * b.cols() + j] = s;
            }
        }
        c
    }

    fn fill(n: usize, seed: u64) -> Vec<f64> {
        // A small LCG: deterministic values in [-1, 1) without a dependency.
        let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (0..n)
            .map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
            })
            .collect()
    }

    fn close(x: &[f64], y: &[f64], tol: f64) {
        assert_eq!(x.len(), y.len());
        for (i, (a, b)) in x.iter().zip(y).enumerate() {
            assert!((a - b).abs() <= tol * (1.0 + b.abs()), "index {i}: {a} vs {b}");
        }
    }

    #[test]
    fn matches_naive_on_awkward_shapes() {
        for &(m, k, n) in &[
            (0, 3, 4),
            (3, 0, 4),
            (1, 1, 1),
            (7, 9, 5),
            (8, 16, 8),
            (17, 33, 15),
            (33, 65, 31),
            (128, 100, 64),
        ] {
            let a = fill(m * k, 1);
            let b = fill(k * n, 2);
            let (am, bm) = (
                MatRef::row_major(&a, m, k).unwrap(),
                MatRef::row_major(&b, k, n).unwrap(),
            );
            let mut c = vec![f64::NAN; m * n];
            matmul(&mut c, am, bm).unwrap();
            close(&c, &naive(am, bm), 1e-12);
        }
    }

    #[test]
    fn transposed_views_need_no_copy() {
        let (m, k, n) = (13, 7, 11);
        let at = fill(k * m, 3); // stored as (k, m)
        let bt = fill(n * k, 4); // stored as (n, k)
        let a = MatRef::row_major(&at, k, m).unwrap().t();
        let b = MatRef::row_major(&bt, n, k).unwrap().t();
        let mut c = vec![0.0; m * n];
        matmul(&mut c, a, b).unwrap();
        close(&c, &naive(a, b), 1e-12);
    }

    #[test]
    fn accumulate_adds_to_the_output() {
        let (m, k, n) = (5, 6, 7);
        let a = fill(m * k, 5);
        let b = fill(k * n, 6);
        let (am, bm) = (
            MatRef::row_major(&a, m, k).unwrap(),
            MatRef::row_major(&b, k, n).unwrap(),
        );
        let mut c = vec![1.0; m * n];
        gemm_into(&mut c, am, bm, true, 1).unwrap();
        let want: Vec<f64> = naive(am, bm).iter().map(|v| v + 1.0).collect();
        close(&c, &want, 1e-12);
    }

    #[test]
    fn f32_matches_f64_naive() {
        let (m, k, n) = (31, 257, 9);
        let a = fill(m * k, 7);
        let b = fill(k * n, 8);
        let a32: Vec<f32> = a.iter().map(|&v| v as f32).collect();
        let b32: Vec<f32> = b.iter().map(|&v| v as f32).collect();
        let mut c = vec![0f32; m * n];
        matmul(
            &mut c,
            MatRef::row_major(&a32, m, k).unwrap(),
            MatRef::row_major(&b32, k, n).unwrap(),
        )
        .unwrap();
        let a64: Vec<f64> = a32.iter().map(|&v| v as f64).collect();
        let b64: Vec<f64> = b32.iter().map(|&v| v as f64).collect();
        let want = naive(
            MatRef::row_major(&a64, m, k).unwrap(),
            MatRef::row_major(&b64, k, n).unwrap(),
        );
        let got: Vec<f64> = c.iter().map(|&v| v as f64).collect();
        close(&got, &want, 1e-5);
    }

    #[test]
    fn bit_identical_for_any_thread_count() {
        let (m, k, n) = (256, 300, 200);
        let a = fill(m * k, 9);
        let b = fill(k * n, 10);
        let (am, bm) = (
            MatRef::row_major(&a, m, k).unwrap(),
            MatRef::row_major(&b, k, n).unwrap(),
        );
        let mut c1 = vec![0.0; m * n];
        gemm_into(&mut c1, am, bm, false, 1).unwrap();
        for t in [2, 3, 4] {
            let mut ct = vec![0.0; m * n];
            parallel::install(|| gemm_into(&mut ct, am, bm, false, t)).unwrap();
            assert!(
                c1.iter().zip(&ct).all(|(x, y)| x.to_bits() == y.to_bits()),
                "threads={t}"
            );
        }
    }

    #[test]
    fn banded_products_are_bit_identical_to_one_serial_product() {
        // (m, k, n, a transposed, b transposed): the shapes of an MLP's forward, dW and dx.
        let shapes = [
            (128, 784, 256, false, false),
            (784, 128, 256, true, false),
            (128, 256, 784, false, true),
            (128, 100, 100, false, false),
            (100, 128, 100, true, false),
            (97, 33, 65, false, false),
            (512, 1024, 1024, false, false),
            (1024, 512, 1024, true, false),
            (64, 600, 70, false, true),
            (300, 7, 10, false, false),
        ];
        for &(m, k, n, ta, tb) in &shapes {
            let a = fill(m * k, 13);
            let b = fill(k * n, 14);
            let am = if ta {
                MatRef::row_major(&a, k, m).unwrap().t()
            } else {
                MatRef::row_major(&a, m, k).unwrap()
            };
            let bm = if tb {
                MatRef::row_major(&b, n, k).unwrap().t()
            } else {
                MatRef::row_major(&b, k, n).unwrap()
            };
            let a32: Vec<f32> = a.iter().map(|&v| v as f32).collect();
            let b32: Vec<f32> = b.iter().map(|&v| v as f32).collect();
            let am32 = if ta {
                MatRef::row_major(&a32, k, m).unwrap().t()
            } else {
                MatRef::row_major(&a32, m, k).unwrap()
            };
            let bm32 = if tb {
                MatRef::row_major(&b32, n, k).unwrap().t()
            } else {
                MatRef::row_major(&b32, k, n).unwrap()
            };
            let mut want = vec![0.0; m * n];
            gemm_into(&mut want, am, bm, false, 1).unwrap();
            let mut want32 = vec![0f32; m * n];
            gemm_into(&mut want32, am32, bm32, false, 1).unwrap();
            for t in [2, 3, 4, 7] {
                let mut got = vec![f64::NAN; m * n];
                gemm_into_banded(&mut got, am, bm, false, t).unwrap();
                assert!(
                    got.iter().zip(&want).all(|(x, y)| x.to_bits() == y.to_bits()),
                    "f64 {m}x{k}x{n} threads={t}"
                );
                let mut got32 = vec![f32::NAN; m * n];
                gemm_into_banded(&mut got32, am32, bm32, false, t).unwrap();
                assert!(
                    got32.iter().zip(&want32).all(|(x, y)| x.to_bits() == y.to_bits()),
                    "f32 {m}x{k}x{n} threads={t}"
                );
            }
        }
        let a = fill(6, 1);
        let mut c = vec![0.0; 4];
        let am = MatRef::row_major(&a, 2, 3).unwrap();
        assert!(gemm_into_banded(&mut c, am, am, false, 2).is_err());
    }

    #[test]
    fn batched_broadcasts_like_numpy() {
        let (batch, m, k, n) = (6, 4, 5, 3);
        let a = fill(batch * m * k, 11);
        let b = fill(k * n, 12); // one matrix, broadcast over the batch
        let ab = Batched::new(&a, batch, m * k, m, k, k, 1).unwrap();
        let bb = Batched::new(&b, 1, 0, k, n, n, 1).unwrap();
        let mut c = vec![0.0; batch * m * n];
        batched_matmul(&mut c, ab, bb).unwrap();
        for i in 0..batch {
            let want = naive(
                MatRef::row_major(&a[i * m * k..(i + 1) * m * k], m, k).unwrap(),
                bb.first,
            );
            close(&c[i * m * n..(i + 1) * m * n], &want, 1e-12);
        }
    }

    #[test]
    fn bad_shapes_are_errors_not_panics() {
        let a = vec![0.0f64; 6];
        assert!(MatRef::row_major(&a, 2, 4).is_err());
        assert!(MatRef::new(&a, 3, 3, 3, 1).is_err());
        let am = MatRef::row_major(&a, 2, 3).unwrap();
        let mut c = vec![0.0; 4];
        assert!(matmul(&mut c, am, am).is_err());
    }
}
