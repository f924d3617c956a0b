//! initcore's own packed GEMM for x86-64 (AVX-512F or AVX2+FMA, f32 and f64):
//! `C ← A·B` or `C ← C + A·B` for strided `A (m×k)`, `B (k×n)` and a row-major `C` band.
//!
//! The loop nest is BLIS's five loops around a register-tile micro-kernel (Goto & van de Geijn,
//! "Anatomy of High-Performance Matrix Multiplication", TOMS 2008; Van Zee & van de Geijn, TOMS
//! 2015), with the roles of A and B mirrored because `C` is row-major here:
//!
//! ```text
//! for i0 in M by MC            A block (MC×KC) packed into MR-row slivers  (L3)
//!   for p0 in K by KC          depth blocks: the same for every band and thread
//!     pack A[i0.., p0..]
//!     for j0 in N by NC        B block (KC×NC) packed into NR-column slivers (L2)
//!       pack B[p0.., j0..]
//!       for ir in MC by MR     one A sliver stays in L1 ...
//!         for jr in NC by NR   ... while the B slivers stream from L2
//!           micro-kernel: C[ir.., jr..] (+)= A sliver · B sliver
//! ```
//!
//! Packing reads any strides (so `Aᵀ`, `Bᵀ` and Fortran-ordered operands cost the same as
//! row-major ones) into contiguous slivers the kernel reads with unit stride.
//!
//! Determinism: the depth blocks depend on `k` alone (`k` is cut into `⌈k/KC⌉` equal blocks),
//! and the micro-kernel computes each element the same way wherever it lies (see `x86.rs`), so
//! `C` is bit-identical for every split of its rows or columns into bands and for every thread
//! count. The thread split below is one such split.
//!
//! Memory: the packing buffers are per thread and reused (`thread_local!`), so a product
//! allocates only the first time a thread meets a larger block, never per call in steady state.

use super::x86;
use super::MatRef;
use std::cell::RefCell;

/// `(kc, a, lda, b, ldb, c, ldc, load_c, cols)`: see `x86.rs`.
pub(super) type KernelFn<T> = unsafe fn(usize, *const T, usize, *const T, usize, *mut T, usize, bool, usize);

/// One instruction set's kernels and blocking for one element type.
pub(super) struct Isa<T: 'static> {
    mr: usize,
    nr: usize,
    /// Largest depth block: the A sliver (MR×KC) fills about half of L1.
    kc: usize,
    /// Rows of the packed A block (a multiple of MR).
    mc: usize,
    /// Columns of the packed B block (a multiple of NR): KC×NC fills about half of L2.
    nc: usize,
    /// `[B sliver whole, last B sliver narrower than NR read in place][packed A, row-major A
    /// read in place][rows - 1][vectors - 1]`.
    kernels: [[&'static [[KernelFn<T>; 2]]; 2]; 2],
    /// `serial_impl` with this family's `MR`, `NR` as constants, so that packing unrolls.
    serial: SerialFn<T>,
    /// `pack_b::<T, NR>`, for [`pack_panels`].
    panels: PanelFn<T>,
}

type SerialFn<T> =
    unsafe fn(&Isa<T>, MatRef<'_, T>, MatRef<'_, T>, Option<&[T]>, *mut T, usize, bool) -> Result<(), ()>;
type PanelFn<T> = fn(&mut [T], MatRef<'_, T>, usize, usize, usize, usize);

static AVX512_F32: Isa<f32> = Isa {
    mr: x86::avx512_f32::MR,
    nr: x86::avx512_f32::NR,
    kc: 384,
    mc: 1200,
    nc: 384,
    kernels: [
        [&x86::avx512_f32::TABLE[0][0], &x86::avx512_f32::TABLE[0][1]],
        [&x86::avx512_f32::TABLE[1][0], &x86::avx512_f32::TABLE[1][1]],
    ],
    serial: serial_impl::<f32, { x86::avx512_f32::MR }, { x86::avx512_f32::NR }>,
    panels: pack_b::<f32, { x86::avx512_f32::NR }>,
};
static AVX512_F64: Isa<f64> = Isa {
    mr: x86::avx512_f64::MR,
    nr: x86::avx512_f64::NR,
    kc: 256,
    mc: 600,
    nc: 256,
    kernels: [
        [&x86::avx512_f64::TABLE[0][0], &x86::avx512_f64::TABLE[0][1]],
        [&x86::avx512_f64::TABLE[1][0], &x86::avx512_f64::TABLE[1][1]],
    ],
    serial: serial_impl::<f64, { x86::avx512_f64::MR }, { x86::avx512_f64::NR }>,
    panels: pack_b::<f64, { x86::avx512_f64::NR }>,
};
static AVX2_F32: Isa<f32> = Isa {
    mr: x86::avx2_f32::MR,
    nr: x86::avx2_f32::NR,
    kc: 384,
    mc: 600,
    nc: 192,
    kernels: [
        [&x86::avx2_f32::TABLE[0][0], &x86::avx2_f32::TABLE[0][1]],
        [&x86::avx2_f32::TABLE[1][0], &x86::avx2_f32::TABLE[1][1]],
    ],
    serial: serial_impl::<f32, { x86::avx2_f32::MR }, { x86::avx2_f32::NR }>,
    panels: pack_b::<f32, { x86::avx2_f32::NR }>,
};
static AVX2_F64: Isa<f64> = Isa {
    mr: x86::avx2_f64::MR,
    nr: x86::avx2_f64::NR,
    kc: 256,
    mc: 600,
    nc: 128,
    kernels: [
        [&x86::avx2_f64::TABLE[0][0], &x86::avx2_f64::TABLE[0][1]],
        [&x86::avx2_f64::TABLE[1][0], &x86::avx2_f64::TABLE[1][1]],
    ],
    serial: serial_impl::<f64, { x86::avx2_f64::MR }, { x86::avx2_f64::NR }>,
    panels: pack_b::<f64, { x86::avx2_f64::NR }>,
};

/// `INITCORE_GEMM=crate` in the environment (read once) sends every product to the `gemm`
/// crate: for comparing the two engines, and a way out should these kernels misbehave on
/// some CPU.
fn enabled() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var("INITCORE_GEMM").map_or(true, |v| v.trim() != "crate"))
}

/// The kernels this CPU runs for `f32`, if any (else the `gemm` crate computes).
pub(super) fn isa_f32() -> Option<&'static Isa<f32>> {
    if !enabled() {
        None
    } else if std::arch::is_x86_feature_detected!("avx512f") {
        Some(&AVX512_F32)
    } else if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        Some(&AVX2_F32)
    } else {
        None
    }
}

/// The kernels this CPU runs for `f64`, if any.
pub(super) fn isa_f64() -> Option<&'static Isa<f64>> {
    if !enabled() {
        None
    } else if std::arch::is_x86_feature_detected!("avx512f") {
        Some(&AVX512_F64)
    } else if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        Some(&AVX2_F64)
    } else {
        None
    }
}

/// AVX2 kernels even on an AVX-512 CPU (tests cover both families on one machine).
#[cfg(test)]
pub(super) fn avx2_f32() -> Option<&'static Isa<f32>> {
    (std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")).then_some(&AVX2_F32)
}

#[cfg(test)]
pub(super) fn avx2_f64() -> Option<&'static Isa<f64>> {
    (std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")).then_some(&AVX2_F64)
}

/// 64-byte aligned storage, so that packed slivers start on cache lines.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([u8; 64]);

thread_local! {
    static BUFFER: RefCell<Vec<Line>> = const { RefCell::new(Vec::new()) };
}

/// The length of `k`'s depth blocks: `⌈k/kc_max⌉` equal blocks (the last shorter), a
/// function of `k` alone.
fn depth_blocks(k: usize, kc_max: usize) -> usize {
    k.div_ceil(k.div_ceil(kc_max))
}

/// Raw pointer to a `C` band, sendable to the worker that owns its rows or columns.
#[derive(Clone, Copy)]
pub(super) struct OutPtr<T>(pub *mut T);
// SAFETY: each worker writes a disjoint set of elements of `C` (see `gemm_parallel`).
unsafe impl<T: Send> Send for OutPtr<T> {}
// SAFETY: as above; the pointer itself is only copied.
unsafe impl<T: Send> Sync for OutPtr<T> {}

impl<T> OutPtr<T> {
    /// The pointer (a method, so that closures capture the whole sendable wrapper).
    pub(super) fn get(self) -> *mut T {
        self.0
    }
}

/// `C (m×n, row stride ldc) ← (C +) A·B` on the calling thread. `Err(())` only if the packing
/// buffer cannot be allocated (the caller falls back to the `gemm` crate).
///
/// `panels`, if given, is all of `b` packed by [`pack_panels`] with this `isa` (by one thread
/// or by several, each its own columns): the kernel then reads B from it and packs none
/// itself, which lets the threads of a row split share one packing of B instead of each
/// repeating all of it. The kernel loads the same values either way, so the bits do not
/// change.
///
/// # Safety
/// `c` addresses `a.rows()` rows `ldc >= b.cols()` apart of `b.cols()` writable elements, not
/// overlapping `a`, `b` or `panels`; `a.cols() == b.rows()`, all dimensions non-zero;
/// `panels` holds `panels_len(b.rows(), b.cols())` elements.
pub(super) unsafe fn gemm_serial<T>(
    isa: &Isa<T>,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    panels: Option<&[T]>,
    c: *mut T,
    ldc: usize,
    accumulate: bool,
) -> Result<(), ()> {
    // SAFETY: the caller's contract is `serial_impl`'s.
    unsafe { (isa.serial)(isa, a, b, panels, c, ldc, accumulate) }
}

/// Elements of `b` (`k×n`) packed by [`pack_panels`]: all of it in `NR`-column slivers,
/// the last zero-padded.
pub(super) fn panels_len(nr: usize, k: usize, n: usize) -> usize {
    n.div_ceil(nr) * nr * k
}

/// Whether [`gemm_serial`] would pack `b` itself (rather than read it in place), so that a
/// shared packing saves work: the rule `serial_impl` applies (see there).
pub(super) fn packs_b<T>(b: MatRef<'_, T>) -> bool {
    b.cs != 1 || (b.rs * std::mem::size_of::<T>()).is_multiple_of(2048)
}

/// Packs columns `c0..c1` of `b` (`c0` a multiple of NR) into `panels`, a [`panels_len`]
/// buffer, laid out as `serial_impl` packs one B block, depth block after depth block: the
/// block at depth `p0` (length `kb`, `b.rows`' depth blocks) starts at `p0·n̄` (`n̄` = `n`
/// rounded up to NR) and holds sliver `s` at `s·NR·kb`. A block's slivers are contiguous, as
/// in a thread's own packing: laid out sliver by sliver over all of `k` instead, the slivers
/// of one block were `NR·k` elements apart (128 KiB for `k` = 1024), all on the same L2 sets.
///
/// # Safety
/// `panels` addresses `panels_len(NR, b.rows, b.cols)` writable elements. Calls on the same
/// buffer may run at once from several threads if their column ranges are disjoint; nothing
/// else reads or writes the buffer meanwhile.
pub(super) unsafe fn pack_panels<T: Copy>(isa: &Isa<T>, panels: *mut T, b: MatRef<'_, T>, c0: usize, c1: usize) {
    let (k, n, nr) = (b.rows, b.cols, isa.nr);
    debug_assert!(c0.is_multiple_of(nr) && c0 <= c1 && c1 <= n);
    let kc = depth_blocks(k, isa.kc);
    let width = (c1 - c0).div_ceil(nr) * nr;
    for p0 in (0..k).step_by(kc) {
        let kb = kc.min(k - p0);
        // SAFETY: block p0 spans p0·n̄ .. (p0 + kb)·n̄ of the buffer, and these columns' slivers
        // c0·kb .. (c0 + width)·kb of it, inside by the contract and disjoint from other calls'.
        let dst = unsafe { std::slice::from_raw_parts_mut(panels.add(p0 * n.div_ceil(nr) * nr + c0 * kb), width * kb) };
        (isa.panels)(dst, b, p0, kb, c0, c1 - c0);
    }
}

/// [`gemm_serial`] for a family whose tile is `MR×NR`.
///
/// # Safety
/// As [`gemm_serial`]; `MR`, `NR` are `isa`'s.
unsafe fn serial_impl<T: Copy + Default + 'static, const MR: usize, const NR: usize>(
    isa: &Isa<T>,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    panels: Option<&[T]>,
    c: *mut T,
    ldc: usize,
    accumulate: bool,
) -> Result<(), ()> {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    let (mr, nr) = (MR, NR);
    debug_assert!(isa.mr == MR && isa.nr == NR);
    let kc = depth_blocks(k, isa.kc);
    let mc = isa.mc.min(m.div_ceil(mr) * mr);
    let nc = isa.nc.min(n.div_ceil(nr) * nr);
    let (a_len, b_len) = (mc * kc, kc * nc);
    let per_line = 64 / std::mem::size_of::<T>();
    let lines = a_len.div_ceil(per_line) + b_len.div_ceil(per_line);
    let run = |buf: &mut Vec<Line>| -> Result<(), ()> {
        if buf.len() < lines {
            buf.try_reserve_exact(lines - buf.len()).map_err(|_| ())?;
            buf.resize(lines, Line([0; 64]));
        }
        let base = buf.as_mut_ptr() as *mut T;
        // SAFETY: the buffer holds `lines` 64-byte lines, at least a_len + b_len elements of T
        // (f32 or f64, whose alignment divides 64), all initialised (zeroed on growth), and no
        // other reference to it exists while this call runs.
        let (ap, bp) = unsafe {
            (
                std::slice::from_raw_parts_mut(base, a_len),
                std::slice::from_raw_parts_mut(base.add(a_len.div_ceil(per_line) * per_line), b_len),
            )
        };
        for i0 in (0..m).step_by(mc) {
            let mb = mc.min(m - i0);
            for (blk, p0) in (0..k).step_by(kc).enumerate() {
                let kb = kc.min(k - p0);
                // This depth block of `panels` (see `pack_panels`).
                let panel_block = panels.map(|pb| &pb[p0 * n.div_ceil(NR) * NR..]);
                let load_c = accumulate || blk > 0;
                // A row-major A is read in place (its rows are already contiguous in depth),
                // unless its row stride is a multiple of 2 KiB: then the MR rows fall into
                // at most two L1 sets and evict each other while the kernel sweeps the B
                // slivers; with one B sliver (n <= NR) there is no sweep and no reuse to
                // protect, so packing would only add a pass. Other layouts are packed. The
                // kernels compute the same either way.
                let unfolded = |stride: usize| n <= NR || !(stride * std::mem::size_of::<T>()).is_multiple_of(2048);
                let direct = a.cs == 1 && unfolded(a.rs);
                // Aᵀ stored row-major (dW = Xᵀ·dY) holds each depth step's MR values side by
                // side, as a packed sliver does with stride MR; read in place with stride
                // `a.cs`, by the same rule.
                let direct_t = !direct && a.rs == 1 && unfolded(a.cs);
                if !direct && !direct_t {
                    pack_a::<T, MR>(ap, a, i0, mb, p0, kb);
                }
                // A row-major B (forward X·W, dW = Xᵀ·dY) is read in place by the same rule:
                // NR contiguous values per depth step are what the kernel loads from a packed
                // sliver too, so packing it only copied it, once per thread (each thread of a
                // row split packed all of B). Its rows then stream from L2 at stride `b.rs`,
                // which a multiple of 2 KiB would fold onto a few L2 sets.
                // A last sliver narrower than NR is read in place too, by the masked kernels
                // (`x86.rs`), which load only its columns.
                let direct_b = panels.is_none() && !packs_b(b);
                for j0 in (0..n).step_by(nc) {
                    let nb = nc.min(n - j0);
                    if !direct_b && panels.is_none() {
                        pack_b::<T, NR>(bp, b, p0, kb, j0, nb);
                    }
                    for ir in (0..mb).step_by(mr) {
                        let rows = mr.min(mb - ir);
                        let (a_sliver, lda) = if direct {
                            (a.data[(i0 + ir) * a.rs + p0..].as_ptr(), a.rs)
                        } else if direct_t {
                            (a.data[i0 + ir + p0 * a.cs..].as_ptr(), a.cs)
                        } else {
                            (ap[ir * kb..].as_ptr(), MR)
                        };
                        for jr in (0..nb).step_by(nr) {
                            let cols = nr.min(nb - jr);
                            let (b_sliver, ldb) = if let Some(pb) = panel_block {
                                (pb[(j0 + jr) * kb..].as_ptr(), NR)
                            } else if direct_b {
                                (b.data[p0 * b.rs + j0 + jr..].as_ptr(), b.rs)
                            } else {
                                (bp[jr * kb..].as_ptr(), NR)
                            };
                            let masked = usize::from(direct_b && cols < nr);
                            let kernel = isa.kernels[masked][usize::from(direct)][rows - 1][usize::from(cols > nr / 2)];
                            // SAFETY: the A sliver holds kb·MR elements (rows beyond `rows`
                            // are never read), or, direct, `a` has rows i0+ir.. i0+ir+rows
                            // with depth p0..p0+kb at stride lda (direct_t: the same with
                            // rows and depth swapped); the B sliver holds kb·NR
                            // elements (in `panels`: see `pack_panels`), or, direct, `b`
                            // has depth rows p0..p0+kb with the `cols` columns
                            // j0+jr.. j0+jr+cols <= n at stride ldb, all NR read unless the
                            // kernel is the masked one; the tile's `rows` rows of `cols`
                            // elements at (i0+ir, j0+jr) lie inside C by the contract above;
                            // the packing buffers are not C.
                            unsafe {
                                kernel(
                                    kb,
                                    a_sliver,
                                    lda,
                                    b_sliver,
                                    ldb,
                                    c.add((i0 + ir) * ldc + j0 + jr),
                                    ldc,
                                    load_c,
                                    cols,
                                )
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    };
    BUFFER.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => run(&mut buf),
        // Only a re-entrant call could find the buffer taken; give it its own.
        Err(_) => run(&mut Vec::new()),
    })
}

/// Packs rows `i0..i0+mb`, depth `p0..p0+kb` of `a` into MR-row slivers: sliver `s` holds, for
/// each depth step `p`, the `MR` values `a[i0 + s·MR + i, p0 + p]` at `s·MR·kb + p·MR + i`.
/// A last partial sliver leaves its missing rows as they were (the kernel never reads them).
fn pack_a<T: Copy + Default, const MR: usize>(
    dst: &mut [T],
    a: MatRef<'_, T>,
    i0: usize,
    mb: usize,
    p0: usize,
    kb: usize,
) {
    for (s, r0) in (0..mb).step_by(MR).enumerate() {
        let rows = MR.min(mb - r0);
        let out = &mut dst[s * MR * kb..(s + 1) * MR * kb];
        let src = &a.data[(i0 + r0) * a.rs + p0 * a.cs..];
        if a.rs == 1 && rows == MR {
            // Aᵀ stored row-major (dW = Xᵀ·dY): each depth step's MR values are contiguous.
            for (p, o) in out.chunks_exact_mut(MR).enumerate() {
                let o: &mut [T; MR] = o.try_into().expect("MR-element chunk");
                *o = src[p * a.cs..p * a.cs + MR].try_into().expect("MR contiguous elements");
            }
        } else if a.cs == 1 && rows == MR {
            // Row-major A (packed only when its row stride folds onto few L1 sets).
            transpose_runs(src, a.rs, MR, kb, out, MR);
        } else {
            for p in 0..kb {
                for i in 0..rows {
                    out[p * MR + i] = src[i * a.rs + p * a.cs];
                }
            }
        }
    }
}

/// `out[p·ld + j] = src[j·stride + p]` for `j < runs`, `p < kb`: `runs` contiguous runs of
/// `kb` values, `stride` apart, laid side by side (a transpose). It goes through a small tile,
/// TILE values of TILE runs at a time, TILE runs from start to end before the next TILE, so
/// that each run is read as whole cache lines in a stream a prefetcher follows. Reading all
/// runs side by side one value at a time kept every run's line live at once, `stride` apart;
/// with a stride of 4 KiB (1024 f32 columns) they all fall into one L1 set and every read
/// missed (`ops.matmul` 512×1024 by 1024×1024ᵀ: packing 21% of the time, now 6%).
fn transpose_runs<T: Copy + Default>(src: &[T], stride: usize, runs: usize, kb: usize, out: &mut [T], ld: usize) {
    const TILE: usize = 16;
    let mut tile = [[T::default(); TILE]; TILE];
    for j0 in (0..runs).step_by(TILE) {
        let w = TILE.min(runs - j0);
        for p0 in (0..kb).step_by(TILE) {
            let q = TILE.min(kb - p0);
            for (j, t) in tile.iter_mut().enumerate().take(w) {
                let at = (j0 + j) * stride + p0;
                if q == TILE {
                    // A fixed length, so that the copy is vector moves, not a call.
                    *t = src[at..at + TILE].try_into().expect("TILE contiguous elements");
                } else {
                    t[..q].copy_from_slice(&src[at..at + q]);
                }
            }
            for (p, o) in out[p0 * ld..(p0 + q) * ld].chunks_exact_mut(ld).enumerate() {
                for (x, t) in o[j0..j0 + w].iter_mut().zip(&tile) {
                    *x = t[p];
                }
            }
        }
    }
}

/// Packs depth `p0..p0+kb`, columns `j0..j0+nb` of `b` into NR-column slivers: sliver `s`
/// holds `b[p0 + p, j0 + s·NR + j]` at `s·NR·kb + p·NR + j`; a partial sliver's missing
/// columns are zeroed.
fn pack_b<T: Copy + Default, const NR: usize>(
    dst: &mut [T],
    b: MatRef<'_, T>,
    p0: usize,
    kb: usize,
    j0: usize,
    nb: usize,
) {
    for (s, c0) in (0..nb).step_by(NR).enumerate() {
        let cols = NR.min(nb - c0);
        let out = &mut dst[s * NR * kb..(s + 1) * NR * kb];
        let src = &b.data[p0 * b.rs + (j0 + c0) * b.cs..];
        if b.cs == 1 && cols == NR {
            // Row-major B (forward, dW): whole rows of the sliver are contiguous.
            for (p, o) in out.chunks_exact_mut(NR).enumerate() {
                let o: &mut [T; NR] = o.try_into().expect("NR-element chunk");
                *o = src[p * b.rs..p * b.rs + NR].try_into().expect("NR contiguous elements");
            }
        } else if b.rs == 1 && cols == NR {
            // Bᵀ stored row-major (dX = dY·Wᵀ): its NR columns are contiguous runs.
            transpose_runs(src, b.cs, NR, kb, out, NR);
        } else {
            if cols < NR {
                out.fill(T::default());
            }
            for j in 0..cols {
                for p in 0..kb {
                    out[p * NR + j] = src[p * b.rs + j * b.cs];
                }
            }
        }
    }
}

/// How a product is cut between `threads` workers: row bands or column bands of `C`, in
/// whole slivers, whichever leaves the largest share smallest (counting the packing each
/// worker repeats: all of B for a row band, all of A for a column band), with rows preferred
/// unless columns are 5% cheaper: a row band of `C` is contiguous, and each worker then packs
/// only its own rows of A, whose packing is the costlier (a transpose, where B's is a copy).
/// On two threads, interleaved in one process, rows against columns at 2048³ (1% apart by
/// this count): 371-381 against 353-382 GFLOP/s; at 1024³: 382-383 against 357-383.
pub(super) fn split(isa_mr: usize, isa_nr: usize, m: usize, k: usize, n: usize, threads: usize) -> (bool, usize) {
    let share = |len: usize, step: usize| len.div_ceil(step).div_ceil(threads) * step;
    let by_rows = share(m, isa_mr).min(m) * n * k + k * n;
    let by_cols = share(n, isa_nr).min(n) * m * k + m * k;
    let rows = by_rows <= by_cols + by_cols / 20;
    let (len, step) = if rows { (m, isa_mr) } else { (n, isa_nr) };
    (rows, threads.min(len.div_ceil(step)))
}

/// The `w`-th of `parts` ranges of `len` in whole steps of `step`.
pub(super) fn part(len: usize, step: usize, parts: usize, w: usize) -> (usize, usize) {
    let slivers = len.div_ceil(step);
    let lo = (w * slivers / parts * step).min(len);
    let hi = ((w + 1) * slivers / parts * step).min(len);
    (lo, hi)
}

impl<T> Isa<T> {
    /// `(MR, NR)`: the register tile, the unit of every split.
    pub(super) fn tile(&self) -> (usize, usize) {
        (self.mr, self.nr)
    }
}

#[cfg(test)]
mod transpose_tests {
    use super::transpose_runs;

    /// Every shape class of `transpose_runs` (whole and edge tiles in both directions, the
    /// packers' run counts 12 and 32), for 4- and 8-byte values, against its definition, and
    /// without writing outside the `runs` columns of each row.
    fn check<T: Copy + Default + PartialEq + std::fmt::Debug>(value: impl Fn(usize) -> T, sentinel: T) {
        for runs in [1, 5, 12, 16, 17, 32, 33] {
            for kb in [1, 7, 16, 31, 100] {
                let (stride, ld) = (kb + 3, runs + 5);
                let src: Vec<T> = (0..(runs - 1) * stride + kb).map(&value).collect();
                let mut out = vec![sentinel; (kb - 1) * ld + runs + 5];
                transpose_runs(&src, stride, runs, kb, &mut out, ld);
                for (at, o) in out.iter().enumerate() {
                    let (p, j) = (at / ld, at % ld);
                    let want = if p < kb && j < runs {
                        src[j * stride + p]
                    } else {
                        sentinel
                    };
                    assert_eq!(*o, want, "runs {runs} kb {kb}: out[{p}][{j}]");
                }
            }
        }
    }

    #[test]
    fn transpose_runs_is_a_transpose() {
        // Distinct values in no order (a multiplicative hash): a misplaced one cannot match.
        let bits = |i: usize| (i as u32 + 1).wrapping_mul(0x9E37_79B9);
        check(bits, u32::MAX);
        check(|i| u64::from(bits(i)) << 29 | i as u64, u64::MAX);
    }
}
