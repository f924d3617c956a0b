//! A product's B packed once and shared by the threads of a row split of `C = A·B`.
//!
//! Each thread of a row split computes `C[rows, :] = A[rows, :]·B` with all of B, and the
//! packed GEMM packs B into slivers first (when it cannot read it in place: see
//! `shares_packing`), so `T` threads pack B `T` times. Here the threads pack disjoint
//! columns of it into one buffer (`pack_panels`), meet, and each reads the whole buffer
//! (`gemm_into_panels`): B is packed once. The buffer is laid out exactly as a thread's own
//! packed B blocks (Goto & van de Geijn, TOMS 2008: a KC×NC block of NR-column slivers), one
//! depth block after another, so the micro-kernel loads the same values in the same order and
//! the bits do not change. BLIS shares its packed B between the threads of a team the same
//! way (Smith et al., "Anatomy of High-Performance Many-Threaded Matrix Multiplication",
//! IPDPS 2014).

#[cfg(target_arch = "x86_64")]
use super::{cast_mut, cast_slice, packed};
use super::{gemm_into, product_dims, MatRef};
use crate::ensure;
use crate::kernels::{Real, ShapeError};
#[cfg(target_arch = "x86_64")]
use std::any::TypeId;

/// Columns per panel of a shared packing of B ([`pack_panels`]), or `None` where products
/// run on the `gemm` crate, which packs nothing ahead.
pub fn panel_width<T: Real>() -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    {
        if TypeId::of::<T>() == TypeId::of::<f32>() {
            return packed::isa_f32().map(|isa| isa.tile().1);
        }
        if TypeId::of::<T>() == TypeId::of::<f64>() {
            return packed::isa_f64().map(|isa| isa.tile().1);
        }
    }
    None
}

/// Elements of a `k×n` B packed by [`pack_panels`] (0 where [`panel_width`] is `None`).
pub fn panels_len<T: Real>(k: usize, n: usize) -> usize {
    #[cfg(target_arch = "x86_64")]
    if let Some(nr) = panel_width::<T>() {
        return packed::panels_len(nr, k, n);
    }
    let _ = (k, n);
    0
}

/// Whether every thread of a row split of `c = a·b` would pack all of `b` itself, so that
/// packing it once ([`pack_panels`], shared by [`gemm_into_panels`]) saves work. A row-major
/// `b` is read in place, except when its row stride is a multiple of 2 KiB (see
/// `packed.rs`); a transposed one is always packed.
pub fn shares_packing<T: Real>(b: MatRef<'_, T>) -> bool {
    #[cfg(target_arch = "x86_64")]
    if panel_width::<T>().is_some() {
        return packed::packs_b(b);
    }
    let _ = b;
    false
}

/// Packs columns `c0..c1` of `b` into `panels`, a buffer of `len` =
/// [`panels_len`]`(b.rows, b.cols)` elements; `c0` is a multiple of [`panel_width`]. Threads
/// that pack disjoint column ranges into one buffer build it together, and any split gives the
/// same buffer. (The buffer is laid out depth block by depth block, so one thread's columns
/// are not one contiguous range of it: hence a pointer, not a slice.)
///
/// # Safety
/// `panels` addresses `len` writable elements; calls on the same buffer may run at once only
/// with disjoint column ranges, and nothing else reads or writes it meanwhile.
pub unsafe fn pack_panels<T: Real>(
    panels: *mut T,
    len: usize,
    b: MatRef<'_, T>,
    c0: usize,
    c1: usize,
) -> Result<(), ShapeError> {
    let Some(nr) = panel_width::<T>() else {
        return Err(ShapeError("pack_panels: this CPU's engine packs nothing ahead".into()));
    };
    ensure!(
        c0.is_multiple_of(nr) && c0 <= c1 && c1 <= b.cols,
        "pack_panels: columns {c0}..{c1} of {} (panels of {nr})",
        b.cols
    );
    let need = panels_len::<T>(b.rows, b.cols);
    ensure!(
        len == need,
        "pack_panels: {len} elements for a {}x{} b, expected {need}",
        b.rows,
        b.cols
    );
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY (both): the caller's contract, with the length checked above.
        if let (Some(isa), Some(b)) = (packed::isa_f32(), b.cast()) {
            unsafe { packed::pack_panels(isa, panels as *mut f32, b, c0, c1) };
        } else if let (Some(isa), Some(b)) = (packed::isa_f64(), b.cast()) {
            unsafe { packed::pack_panels(isa, panels as *mut f64, b, c0, c1) };
        }
    }
    Ok(())
}

/// `c ← a·b` (or `c += a·b`) on the calling thread like `gemm_into(.., 1)`, reading B from
/// `panels`, all of `b` packed by [`pack_panels`]. The same bits as `gemm_into`: the kernel
/// loads the same values whether it packed them itself or not.
pub fn gemm_into_panels<T: Real>(
    c: &mut [T],
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    panels: &[T],
    accumulate: bool,
) -> Result<(), ShapeError> {
    let (m, k, n) = product_dims(c.len(), a, b)?;
    let need = panels_len::<T>(k, n);
    ensure!(
        panel_width::<T>().is_some() && panels.len() == need,
        "gemm_into_panels: {} packed elements for a {k}x{n} b, expected {need}",
        panels.len()
    );
    if m == 0 || n == 0 || k == 0 {
        return gemm_into(c, a, b, accumulate, 1);
    }
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY (both): c is m·n contiguous elements written with row stride n, an exclusive
        // borrow, so it overlaps none of the shared borrows a, b and panels, whose length was
        // checked above; all dimensions are non-zero.
        let done = if let (Some(isa), Some(c), Some(a), Some(b), Some(p)) =
            (packed::isa_f32(), cast_mut(c), a.cast(), b.cast(), cast_slice(panels))
        {
            unsafe { packed::gemm_serial(isa, a, b, Some(p), c.as_mut_ptr(), n, accumulate) }
        } else if let (Some(isa), Some(c), Some(a), Some(b), Some(p)) =
            (packed::isa_f64(), cast_mut(c), a.cast(), b.cast(), cast_slice(panels))
        {
            unsafe { packed::gemm_serial(isa, a, b, Some(p), c.as_mut_ptr(), n, accumulate) }
        } else {
            Err(())
        };
        if done.is_ok() {
            return Ok(());
        }
    }
    // The A packing buffer could not be allocated: the ordinary path has its own fallback.
    gemm_into(c, a, b, accumulate, 1)
}
