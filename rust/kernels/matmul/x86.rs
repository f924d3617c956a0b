//! x86-64 micro-kernels for the packed GEMM (`packed.rs`): `C[r×c] ← (C +) Σ_p a_p ⊗ b_p`,
//! one register tile of the output accumulated over one depth block.
//!
//! The register blocking follows BLIS (Van Zee & van de Geijn, "BLIS: A Framework for Rapidly
//! Instantiating BLAS Functionality", TOMS 2015; the `skx` and `haswell` sub-configurations),
//! mirrored for a row-major `C`: the vector dimension runs along a row of `C` (two vectors, `NR`
//! columns) and the broadcast dimension down its rows (`MR` rows), so each depth step is two
//! vector loads of the packed `B` sliver, `MR` scalar broadcasts from the packed `A` sliver and
//! `2·MR` fused multiply-adds into `2·MR` accumulator registers:
//! AVX-512F: f32 12×32, f64 12×16 (24 accumulators of 32 registers);
//! AVX2+FMA: f32 6×16, f64 6×8 (12 of 16).
//!
//! Determinism: every output element is one accumulator lane that starts at zero and takes one
//! FMA per depth step, in depth order, then one add into `C` (or a plain store on the first
//! depth block when not accumulating). Which kernel of the table computes it (edge tiles use
//! the `r < MR` / one-vector variants) and where its row or column falls change nothing in
//! that sequence, so results do not depend on the tile, the band or the thread that computes
//! them. A partial last vector (an edge tile's `cols < NV·lanes`) is loaded and stored under a
//! lane mask, and its lanes compute as a full vector's do.
//!
//! A B sliver narrower than a tile (the last of a row-major B whose columns are not a multiple
//! of NR, e.g. the 10 columns of a classifier's W) is read in place too, by the `MASKED`
//! kernels: their last vector of B is a masked load, which touches only the sliver's `cols`
//! columns (a masked-off lane reads no memory and cannot fault), so the sliver need not be
//! copied into a zero-padded buffer first. The other lanes are zero, and they are never stored.

use super::packed::KernelFn;
use core::arch::x86_64::*;

macro_rules! kernel_family {
    ($modname:ident, $feat:literal, $t:ty, $zero:ident, $load:ident, $store:ident, $set1:ident,
     $fma:ident, $add:ident, $lanes:literal, $mr:literal, [$($r:literal)+],
     $mask:ident, $mload:ident, $mstore:ident) => {
        pub(super) mod $modname {
            use super::*;

            /// Rows of the register tile, and the packed A sliver's stride per depth step.
            pub const MR: usize = $mr;
            /// Columns of the register tile (two vectors), and the packed B sliver's stride.
            pub const NR: usize = 2 * $lanes;

            /// Accumulates `R` rows × `NV` vectors of `C` over `kc` depth steps, then writes
            /// the first `cols` columns of each row (`cols > (NV-1)·lanes`). `A(i, p)` is
            /// `a[p·lda + i]` (a packed sliver with `lda = MR`, or a row-major Aᵀ read in
            /// place) or, if `DIRECT`, `a[i·lda + p]` (rows of a row-major A read in place,
            /// which saves transposing them into a sliver).
            /// Depth step `p` of B is the `NV·lanes` values at `b[p·ldb..]` (if `MASKED`, only
            /// its first `cols`): `ldb = NR` for a packed sliver, the row stride for a
            /// row-major B read in place.
            ///
            /// # Safety
            /// The CPU supports the enabled features; `a` addresses `R×kc` readable elements
            /// as above and `b` addresses `kc` runs of `NV·lanes` (`MASKED`: `cols`) readable
            /// elements `ldb` apart; `c` addresses `R` rows `ldc` apart of `cols` writable
            /// elements each, not aliased by `a` or `b`.
            #[allow(clippy::too_many_arguments)]
            #[target_feature(enable = $feat)]
            unsafe fn kernel<const MASKED: bool, const DIRECT: bool, const R: usize, const NV: usize>(
                kc: usize,
                a: *const $t,
                lda: usize,
                b: *const $t,
                ldb: usize,
                c: *mut $t,
                ldc: usize,
                load_c: bool,
                cols: usize,
            ) {
                // The lanes of the last vector that lie inside the tile's columns.
                let last = cols - (NV - 1) * $lanes;
                // SAFETY: 1 <= last <= lanes (cols > (NV-1)·lanes by the contract).
                let mask = unsafe { $mask(last) };
                let mut acc = [[$zero(); NV]; R];
                for p in 0..kc {
                    // SAFETY: p < kc, so the B read stays inside the caller's kc runs.
                    let bp = unsafe { b.add(p * ldb) };
                    let mut bv = [$zero(); NV];
                    for (v, x) in bv.iter_mut().enumerate() {
                        // SAFETY: v·lanes + lanes <= NR elements of this depth step, or, for a
                        // MASKED last vector, the `last` lanes up to column `cols`.
                        *x = unsafe {
                            if MASKED && v == NV - 1 {
                                $mload(bp.add(v * $lanes), mask)
                            } else {
                                $load(bp.add(v * $lanes))
                            }
                        };
                    }
                    for (i, row) in acc.iter_mut().enumerate() {
                        // SAFETY: i < R, p < kc: an element of A the caller guarantees.
                        let ai = $set1(unsafe { *a.add(if DIRECT { i * lda + p } else { p * lda + i }) });
                        for (x, y) in row.iter_mut().zip(&bv) {
                            *x = $fma(ai, *y, *x);
                        }
                    }
                }
                // Constant trip counts only, so that `acc` stays in registers (a loop with a
                // data-dependent body here made LLVM keep it on the stack and zero it per call).
                if cols == NV * $lanes {
                    for (i, row) in acc.iter().enumerate() {
                        for (v, x) in row.iter().enumerate() {
                            // SAFETY: row i < R, columns v·lanes.. +lanes <= cols.
                            unsafe {
                                let cv = c.add(i * ldc + v * $lanes);
                                $store(cv, if load_c { $add($load(cv), *x) } else { *x });
                            }
                        }
                    }
                } else {
                    for (i, row) in acc.iter().enumerate() {
                        for (v, x) in row.iter().enumerate() {
                            // SAFETY: row i < R; the full vectors lie below column
                            // (NV-1)·lanes < cols, the last one's mask stops at cols.
                            unsafe {
                                let cv = c.add(i * ldc + v * $lanes);
                                if v + 1 < NV {
                                    $store(cv, if load_c { $add($load(cv), *x) } else { *x });
                                } else {
                                    let y = if load_c { $add($mload(cv, mask), *x) } else { *x };
                                    $mstore(cv, mask, y);
                                }
                            }
                        }
                    }
                }
            }

            /// `TABLE[masked][direct][r - 1][nv - 1]`: the kernel for an `r`-row, `nv`-vector
            /// tile.
            pub static TABLE: [[[[KernelFn<$t>; 2]; MR]; 2]; 2] = [
                [
                    [$([kernel::<false, false, $r, 1>, kernel::<false, false, $r, 2>]),+],
                    [$([kernel::<false, true, $r, 1>, kernel::<false, true, $r, 2>]),+],
                ],
                [
                    [$([kernel::<true, false, $r, 1>, kernel::<true, false, $r, 2>]),+],
                    [$([kernel::<true, true, $r, 1>, kernel::<true, true, $r, 2>]),+],
                ],
            ];
        }
    };
}

// Lane masks and masked moves, one set per family: AVX-512 takes a mask register, AVX2 a
// vector whose lanes' sign bits select.

/// The first `k` of 16 lanes (1 <= k <= 16).
#[target_feature(enable = "avx512f")]
unsafe fn mask16(k: usize) -> __mmask16 {
    ((1u32 << k) - 1) as __mmask16
}

/// The first `k` of 8 lanes (1 <= k <= 8).
#[target_feature(enable = "avx512f")]
unsafe fn mask8(k: usize) -> __mmask8 {
    ((1u32 << k) - 1) as __mmask8
}

#[target_feature(enable = "avx512f")]
unsafe fn mload16(p: *const f32, m: __mmask16) -> __m512 {
    // SAFETY: the caller's: the selected lanes are readable (the others read nothing).
    unsafe { _mm512_maskz_loadu_ps(m, p) }
}

#[target_feature(enable = "avx512f")]
unsafe fn mstore16(p: *mut f32, m: __mmask16, v: __m512) {
    // SAFETY: the caller's: the selected lanes are writable (the others write nothing).
    unsafe { _mm512_mask_storeu_ps(p, m, v) }
}

#[target_feature(enable = "avx512f")]
unsafe fn mload8(p: *const f64, m: __mmask8) -> __m512d {
    // SAFETY: as `mload16`.
    unsafe { _mm512_maskz_loadu_pd(m, p) }
}

#[target_feature(enable = "avx512f")]
unsafe fn mstore8(p: *mut f64, m: __mmask8, v: __m512d) {
    // SAFETY: as `mstore16`.
    unsafe { _mm512_mask_storeu_pd(p, m, v) }
}

/// Eight all-ones lanes, then eight zero lanes: a window of 8 (or 4 doubles' worth) starting
/// `lanes - k` in is the mask of the first `k` lanes.
static ONES_THEN_ZEROS: [i32; 16] = [-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0];

/// The first `k` of 8 `f32` lanes (1 <= k <= 8).
#[target_feature(enable = "avx2")]
unsafe fn vmask8(k: usize) -> __m256i {
    // SAFETY: 8 - k + 8 <= 16 elements.
    unsafe { _mm256_loadu_si256(ONES_THEN_ZEROS[8 - k..].as_ptr() as *const __m256i) }
}

/// The first `k` of 4 `f64` lanes (1 <= k <= 4): each lane two 32-bit halves.
#[target_feature(enable = "avx2")]
unsafe fn vmask4(k: usize) -> __m256i {
    // SAFETY: 2·(4 - k) + 8 <= 16 elements.
    unsafe { _mm256_loadu_si256(ONES_THEN_ZEROS[2 * (4 - k)..].as_ptr() as *const __m256i) }
}

#[target_feature(enable = "avx2")]
unsafe fn vmload8(p: *const f32, m: __m256i) -> __m256 {
    // SAFETY: as `mload16`.
    unsafe { _mm256_maskload_ps(p, m) }
}

#[target_feature(enable = "avx2")]
unsafe fn vmstore8(p: *mut f32, m: __m256i, v: __m256) {
    // SAFETY: as `mstore16`.
    unsafe { _mm256_maskstore_ps(p, m, v) }
}

#[target_feature(enable = "avx2")]
unsafe fn vmload4(p: *const f64, m: __m256i) -> __m256d {
    // SAFETY: as `mload16`.
    unsafe { _mm256_maskload_pd(p, m) }
}

#[target_feature(enable = "avx2")]
unsafe fn vmstore4(p: *mut f64, m: __m256i, v: __m256d) {
    // SAFETY: as `mstore16`.
    unsafe { _mm256_maskstore_pd(p, m, v) }
}

kernel_family!(avx512_f32, "avx512f", f32, _mm512_setzero_ps, _mm512_loadu_ps, _mm512_storeu_ps,
    _mm512_set1_ps, _mm512_fmadd_ps, _mm512_add_ps, 16, 12, [1 2 3 4 5 6 7 8 9 10 11 12],
    mask16, mload16, mstore16);
kernel_family!(avx512_f64, "avx512f", f64, _mm512_setzero_pd, _mm512_loadu_pd, _mm512_storeu_pd,
    _mm512_set1_pd, _mm512_fmadd_pd, _mm512_add_pd, 8, 12, [1 2 3 4 5 6 7 8 9 10 11 12],
    mask8, mload8, mstore8);
kernel_family!(avx2_f32, "avx2,fma", f32, _mm256_setzero_ps, _mm256_loadu_ps, _mm256_storeu_ps,
    _mm256_set1_ps, _mm256_fmadd_ps, _mm256_add_ps, 8, 6, [1 2 3 4 5 6],
    vmask8, vmload8, vmstore8);
kernel_family!(avx2_f64, "avx2,fma", f64, _mm256_setzero_pd, _mm256_loadu_pd, _mm256_storeu_pd,
    _mm256_set1_pd, _mm256_fmadd_pd, _mm256_add_pd, 4, 6, [1 2 3 4 5 6],
    vmask4, vmload4, vmstore4);
