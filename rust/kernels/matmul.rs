//! Matrix products: `C = A·B` (optionally `C += A·B`) and NumPy-style batched products.
//!
//! Two engines compute them. On x86-64 CPUs with AVX-512F or AVX2+FMA, f32 and f64 products
//! run on initcore's own packed GEMM (`matmul/packed.rs`, micro-kernels in `matmul/x86.rs`),
//! BLIS-style, with reusable per-thread packing buffers, split across Rayon workers by row or
//! column bands of `C`. Everything else (other CPUs and architectures) runs on the `gemm`
//! crate (packed micro-kernels for NEON and older x86, arbitrary strides, Rayon parallelism).
//! Which engine runs depends only on the CPU and the element type, never on the shape, so a
//! product split into bands runs on one engine throughout.
//!
//! Safety: a `MatRef` proves that every element its shape and strides address lies inside its
//! slice, so the `unsafe` calls into the engines cannot read or write out of bounds.
//!
//! Transposes cost nothing: `MatRef::t` swaps the strides. Both engines accumulate each
//! element of `C` over `k` in an order fixed by `k` alone (never split across threads), so
//! results are bit-identical for any number of threads and any band split (tested in
//! `matmul/tests.rs`).

use super::parallel;
use super::{Real, ShapeError};
use crate::ensure;
use std::any::TypeId;

#[cfg(target_arch = "x86_64")]
mod packed;
mod panels;
pub use panels::{gemm_into_panels, pack_panels, panel_width, panels_len, shares_packing};
#[cfg(target_arch = "x86_64")]
mod x86;

/// Floating-point operations (multiply-adds) under which a product runs on the calling thread.
/// Waking the pool's threads costs tens of µs on the virtual machines this runs on: at 1 << 20,
/// 128×100 @ 100×100 (1.3M, ~10 µs of work) ran on two threads at 93 GFLOP/s, alone at 163.
pub const GEMM_PAR_THRESHOLD: usize = 1 << 21;

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

    /// Columns `c0..c1` (`c0 < c1 <= cols`), as a view of the same memory.
    pub fn col_band(self, c0: usize, c1: usize) -> Self {
        debug_assert!(c0 < c1 && c1 <= self.cols);
        Self {
            data: &self.data[c0 * self.cs..],
            cols: c1 - c0,
            ..self
        }
    }

    /// The same view with its element type spelled `U`, if `T` is `U`.
    fn cast<U: 'static>(self) -> Option<MatRef<'a, U>>
    where
        T: 'static,
    {
        (TypeId::of::<T>() == TypeId::of::<U>()).then(|| MatRef {
            // SAFETY: T and U are the same type, so the slice is reinterpreted as itself.
            data: unsafe { std::slice::from_raw_parts(self.data.as_ptr() as *const U, self.data.len()) },
            rows: self.rows,
            cols: self.cols,
            rs: self.rs,
            cs: self.cs,
        })
    }
}

/// `s` with its element type spelled `U`, if `T` is `U`.
#[cfg(target_arch = "x86_64")]
fn cast_slice<T: 'static, U: 'static>(s: &[T]) -> Option<&[U]> {
    // SAFETY: T and U are the same type, so the slice is reinterpreted as itself.
    (TypeId::of::<T>() == TypeId::of::<U>())
        .then(|| unsafe { std::slice::from_raw_parts(s.as_ptr() as *const U, s.len()) })
}

/// `c` with its element type spelled `U`, if `T` is `U`.
fn cast_mut<T: 'static, U: 'static>(c: &mut [T]) -> Option<&mut [U]> {
    // SAFETY: T and U are the same type, so the slice is reinterpreted as itself.
    (TypeId::of::<T>() == TypeId::of::<U>())
        .then(|| unsafe { std::slice::from_raw_parts_mut(c.as_mut_ptr() as *mut U, c.len()) })
}

/// `(m, k, n)` of `c (m×n) ← a (m×k)·b (k×n)` with `c` of `c_len` elements, or an error
/// naming the mismatch.
fn product_dims<T>(c_len: usize, a: MatRef<'_, T>, b: MatRef<'_, T>) -> Result<(usize, usize, usize), ShapeError> {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    ensure!(
        b.rows == k,
        "matmul: inner dimensions differ: a is {m}x{k}, b is {}x{n}",
        b.rows
    );
    ensure!(c_len == m * n, "matmul: output has {c_len} elements, expected {m}x{n}");
    Ok((m, k, n))
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
    let (m, k, n) = product_dims(c.len(), a, b)?;
    if m == 0 || n == 0 {
        return Ok(());
    }
    if k == 0 {
        if !accumulate {
            c.fill(T::zero());
        }
        return Ok(());
    }
    if !packed_into(c, a, b, accumulate, threads) {
        let par = if threads > 1 {
            gemm::Parallelism::Rayon(threads)
        } else {
            gemm::Parallelism::None
        };
        let n = c.len() / m;
        // SAFETY: `c` is m·n contiguous elements, written through row stride n; `a` and `b`
        // are shared borrows, `c` an exclusive one, so they cannot alias.
        let mut run = || unsafe { crate_gemm(c.as_mut_ptr(), n, a, b, accumulate, par) };
        if threads > 1 {
            parallel::install(run)
        } else {
            run()
        }
    }
    Ok(())
}

/// `c (a.rows × b.cols, row stride ldc) ← (c +) a·b` on the `gemm` crate.
///
/// # Safety
/// `c` addresses `a.rows` rows `ldc` apart of `b.cols` writable elements, not overlapping `a`
/// or `b`; `a.cols == b.rows`.
unsafe fn crate_gemm<T: Real>(
    c: *mut T,
    ldc: usize,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    accumulate: bool,
    par: gemm::Parallelism,
) {
    // SAFETY: `MatRef::new` checked that every (i, j) with i < rows, j < cols addresses an
    // element inside its slice; the caller vouches for `c`; T is f32 or f64, both supported.
    unsafe {
        gemm::gemm(
            a.rows,
            b.cols,
            a.cols,
            c,
            1,
            ldc as isize,
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
}

/// Whether this CPU runs `T`'s products on initcore's packed GEMM.
fn has_packed<T: Real>() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        if TypeId::of::<T>() == TypeId::of::<f32>() {
            return packed::isa_f32().is_some();
        }
        if TypeId::of::<T>() == TypeId::of::<f64>() {
            return packed::isa_f64().is_some();
        }
    }
    false
}

/// Runs the product on the packed GEMM if this CPU has it for `T` (else returns `false` and
/// writes nothing). Shapes are checked and non-empty.
fn packed_into<T: Real>(c: &mut [T], a: MatRef<'_, T>, b: MatRef<'_, T>, accumulate: bool, threads: usize) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        if let (Some(isa), Some(c), Some(a), Some(b)) = (packed::isa_f32(), cast_mut(c), a.cast(), b.cast()) {
            packed_run(isa, c, a, b, accumulate, threads);
            return true;
        }
        if let (Some(isa), Some(c), Some(a), Some(b)) = (packed::isa_f64(), cast_mut(c), a.cast(), b.cast()) {
            packed_run(isa, c, a, b, accumulate, threads);
            return true;
        }
    }
    let _ = (c, a, b, accumulate, threads);
    false
}

/// The packed GEMM on up to `threads` workers, each on its own band of rows or columns of `c`
/// (never splitting `k`, so the bits do not depend on the split).
#[cfg(target_arch = "x86_64")]
fn packed_run<T: Real>(
    isa: &'static packed::Isa<T>,
    c: &mut [T],
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    accumulate: bool,
    threads: usize,
) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    let (mr, nr) = isa.tile();
    // One band: rows lo..hi (or columns lo..hi) of c. A band whose packing buffer cannot be
    // allocated runs on the gemm crate instead; nothing of it was written before that.
    let band = |out: packed::OutPtr<T>, by_rows: bool, lo: usize, hi: usize| {
        let (a, b, c) = if by_rows {
            // SAFETY: lo < hi <= m: row lo of c lies inside its m·n elements.
            (a.row_band(lo, hi), b, unsafe { out.get().add(lo * n) })
        } else {
            // SAFETY: lo < hi <= n: column lo of row 0 lies inside c.
            (a, b.col_band(lo, hi), unsafe { out.get().add(lo) })
        };
        // SAFETY: c addresses a.rows rows n apart of b.cols elements of the caller's `c`,
        // disjoint from every other band's, and `a`, `b` are shared borrows of other memory.
        unsafe {
            if packed::gemm_serial(isa, a, b, None, c, n, accumulate).is_err() {
                crate_gemm(c, n, a, b, accumulate, gemm::Parallelism::None);
            }
        }
    };
    let out = packed::OutPtr(c.as_mut_ptr());
    let (by_rows, parts) = packed::split(mr, nr, m, k, n, threads.max(1));
    if parts <= 1 {
        return band(out, true, 0, m);
    }
    let (len, step) = if by_rows { (m, mr) } else { (n, nr) };
    parallel::install(|| {
        use rayon::prelude::*;
        (0..parts).into_par_iter().for_each(|w| {
            let (lo, hi) = packed::part(len, step, parts, w);
            if lo < hi {
                band(out, by_rows, lo, hi);
            }
        })
    });
}

/// Whether a band of rows of any product computes its elements as the whole product does, as
/// initcore's packed GEMM guarantees (`packed.rs`). The `gemm` crate does so only past its
/// small-matrix paths: for outputs wider than 64 columns and depth above 2 (see
/// [`gemm_into_banded`]).
pub fn bands_any_shape<T: Real>() -> bool {
    has_packed::<T>()
}

/// Rows of `c` per band below which [`gemm_into_banded`] does not split.
pub const BAND_MIN_ROWS: usize = 32;

/// `c ← a·b` like [`gemm_into`], parallel by bands of `c`, each one serial product on its own
/// thread.
///
/// On the packed GEMM this is `gemm_into` itself, which already cuts `c` into row or column
/// bands (whichever balances better) and gives every split the same bits. On the `gemm` crate
/// it cuts rows: the crate's own threading splits a product into many small jobs with a
/// barrier per depth block, which does not scale on products of MLP size (128 rows: two
/// threads run no faster than one), while bands keep every core on one long serial product.
/// The crate computes each element with the same kernel and depth blocking wherever its row
/// falls once a product is past its small-matrix paths, which the split stays clear of: bands
/// are at least `BAND_MIN_ROWS` rows, and outputs of 64 columns or fewer are not split.
/// Tested in `matmul/tests.rs`.
pub fn gemm_into_banded<T: Real>(
    c: &mut [T],
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    accumulate: bool,
    threads: usize,
) -> Result<(), ShapeError> {
    if has_packed::<T>() {
        // The packed GEMM splits rows or columns itself, whichever balances better.
        return gemm_into(c, a, b, accumulate, threads);
    }
    let (m, k, n) = product_dims(c.len(), a, b)?;
    let bands = threads.min(m / BAND_MIN_ROWS);
    if bands < 2 || n <= 64 || k <= 2 {
        return gemm_into(c, a, b, accumulate, threads);
    }
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
mod tests;

#[cfg(test)]
mod panels_tests;
