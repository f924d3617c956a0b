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
//! them. Partial vectors are stored through a stack buffer with scalar adds, which round the
//! same as the vector add.

use super::packed::KernelFn;
use core::arch::x86_64::*;

macro_rules! kernel_family {
    ($modname:ident, $feat:literal, $t:ty, $zero:ident, $load:ident, $store:ident, $set1:ident,
     $fma:ident, $add:ident, $lanes:literal, $mr:literal, [$($r:literal)+]) => {
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
            /// Depth step `p` of B is the `NV·lanes` values at `b[p·ldb..]`: `ldb = NR` for a
            /// packed sliver, the row stride for a row-major B read in place.
            ///
            /// # Safety
            /// The CPU supports the enabled features; `a` addresses `R×kc` readable elements
            /// as above and `b` addresses `kc` runs of `NV·lanes` readable elements `ldb`
            /// apart; `c` addresses `R` rows `ldc` apart of `cols` writable elements each, not
            /// aliased by `a` or `b`.
            #[allow(clippy::too_many_arguments)]
            #[target_feature(enable = $feat)]
            unsafe fn kernel<const DIRECT: bool, const R: usize, const NV: usize>(
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
                let mut acc = [[$zero(); NV]; R];
                for p in 0..kc {
                    // SAFETY: p < kc, so the B read stays inside the caller's kc runs.
                    let bp = unsafe { b.add(p * ldb) };
                    let mut bv = [$zero(); NV];
                    for (v, x) in bv.iter_mut().enumerate() {
                        // SAFETY: v·lanes + lanes <= NR elements of this depth step.
                        *x = unsafe { $load(bp.add(v * $lanes)) };
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
                    let mut tile = [[[0.0 as $t; $lanes]; NV]; R];
                    for (t, row) in tile.iter_mut().zip(&acc) {
                        for (tv, x) in t.iter_mut().zip(row) {
                            // SAFETY: `tv` is `lanes` writable elements.
                            unsafe { $store(tv.as_mut_ptr(), *x) };
                        }
                    }
                    for (i, t) in tile.iter().enumerate() {
                        for (j, &x) in t.as_flattened().iter().take(cols).enumerate() {
                            // SAFETY: row i < R, column j < cols. The scalar add rounds as the
                            // vector add does.
                            unsafe {
                                let d = c.add(i * ldc + j);
                                *d = if load_c { *d + x } else { x };
                            }
                        }
                    }
                }
            }

            /// `TABLE[direct][r - 1][nv - 1]`: the kernel for an `r`-row, `nv`-vector tile.
            pub static TABLE: [[[KernelFn<$t>; 2]; MR]; 2] = [
                [$([kernel::<false, $r, 1>, kernel::<false, $r, 2>]),+],
                [$([kernel::<true, $r, 1>, kernel::<true, $r, 2>]),+],
            ];
        }
    };
}

kernel_family!(avx512_f32, "avx512f", f32, _mm512_setzero_ps, _mm512_loadu_ps, _mm512_storeu_ps,
    _mm512_set1_ps, _mm512_fmadd_ps, _mm512_add_ps, 16, 12, [1 2 3 4 5 6 7 8 9 10 11 12]);
kernel_family!(avx512_f64, "avx512f", f64, _mm512_setzero_pd, _mm512_loadu_pd, _mm512_storeu_pd,
    _mm512_set1_pd, _mm512_fmadd_pd, _mm512_add_pd, 8, 12, [1 2 3 4 5 6 7 8 9 10 11 12]);
kernel_family!(avx2_f32, "avx2,fma", f32, _mm256_setzero_ps, _mm256_loadu_ps, _mm256_storeu_ps,
    _mm256_set1_ps, _mm256_fmadd_ps, _mm256_add_ps, 8, 6, [1 2 3 4 5 6]);
kernel_family!(avx2_f64, "avx2,fma", f64, _mm256_setzero_pd, _mm256_loadu_pd, _mm256_storeu_pd,
    _mm256_set1_pd, _mm256_fmadd_pd, _mm256_add_pd, 4, 6, [1 2 3 4 5 6]);
