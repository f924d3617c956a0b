//! Tests of the shared packing (`panels.rs`): panels built by several threads, each packing
//! its own columns, give the ordinary product's bits; bad arguments are errors.
#[cfg(target_arch = "x86_64")]
use super::tests::{engines_f32, engines_f64, run_isa};
use super::tests::{fill, same_bits, to_f32, view, view_len, EDGE_SHAPES};
use super::*;

/// `packed::gemm_serial` on `panels` built by `splits` threads (each packing its own NR-aligned
/// columns), over row bands `cuts`, into `c`.
#[cfg(target_arch = "x86_64")]
fn run_panels<T: Real>(
    isa: &'static packed::Isa<T>,
    c: &mut [T],
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    acc: bool,
    splits: usize,
    cuts: &[usize],
) {
    let (m, k, n) = (a.rows(), a.cols(), b.cols());
    let nr = isa.tile().1;
    let mut panels = vec![T::nan(); packed::panels_len(nr, k, n)];
    let per = n.div_ceil(nr).div_ceil(splits) * nr;
    for c0 in (0..n).step_by(per) {
        // SAFETY: the buffer is panels_len long, and only this call touches it.
        unsafe { packed::pack_panels(isa, panels.as_mut_ptr(), b, c0, (c0 + per).min(n)) };
    }
    let mut r0 = 0;
    for r1 in cuts.iter().copied().filter(|&r| r > 0 && r < m).chain([m]) {
        // SAFETY: rows r0..r1 of the m×n c; panels holds panels_len(nr, k, n) elements.
        let ok = unsafe {
            packed::gemm_serial(
                isa,
                a.row_band(r0, r1),
                b,
                Some(&panels),
                c[r0 * n..].as_mut_ptr(),
                n,
                acc,
            )
        };
        assert!(ok.is_ok());
        r0 = r1;
    }
}

/// A B packed once, by any number of threads, and read by row bands of C gives the bits of
/// the ordinary product, on every layout of B (row-major read in place or not, transposed,
/// odd strides), every edge shape and both engine families; panels start NaN, so a value the
/// packing missed would show.
#[cfg(target_arch = "x86_64")]
#[test]
fn shared_panels_give_the_bits_of_the_ordinary_product() {
    for &(m, k, n) in &EDGE_SHAPES {
        for (la, lb) in [(0, 0), (0, 1), (1, 0), (2, 3), (3, 2)] {
            let a = fill(view_len(m, k, la), 32);
            let b = fill(view_len(k, n, lb), 33);
            let (am, bm) = (view(&a, m, k, la), view(&b, k, n, lb));
            let (a32, b32) = (to_f32(&a), to_f32(&b));
            let (am32, bm32) = (view(&a32, m, k, la), view(&b32, k, n, lb));
            let cuts = [m / 3, m / 2 + 1];
            for isa in engines_f64() {
                let mut want = fill(m * n, 34);
                run_isa(isa, &mut want, am, bm, true, 1);
                for splits in [1, 2, 3] {
                    let mut got = fill(m * n, 34);
                    run_panels(isa, &mut got, am, bm, true, splits, &cuts);
                    assert!(
                        same_bits(&got, &want),
                        "f64 {m}x{k}x{n} layouts {la}{lb} splits {splits}"
                    );
                }
            }
            for isa in engines_f32() {
                let mut want = vec![0f32; m * n];
                run_isa(isa, &mut want, am32, bm32, false, 1);
                for splits in [1, 2, 3] {
                    let mut got = vec![f32::NAN; m * n];
                    run_panels(isa, &mut got, am32, bm32, false, splits, &cuts);
                    assert!(
                        same_bits(&got, &want),
                        "f32 {m}x{k}x{n} layouts {la}{lb} splits {splits}"
                    );
                }
            }
        }
    }
}

/// The public entry points check what they are given.
#[test]
fn shared_panels_reject_bad_arguments() {
    let (m, k, n) = (40, 30, 70);
    let a = to_f32(&fill(m * k, 35));
    let b = to_f32(&fill(k * n, 36));
    let (am, bm) = (
        MatRef::row_major(&a, m, k).unwrap(),
        MatRef::row_major(&b, k, n).unwrap(),
    );
    let Some(nr) = panel_width::<f32>() else {
        // SAFETY: fails before writing.
        assert!(unsafe { pack_panels([0f32; 4].as_mut_ptr(), 4, bm, 0, n) }.is_err());
        return;
    };
    let mut panels = vec![0f32; panels_len::<f32>(k, n)];
    assert_eq!(panels.len(), n.div_ceil(nr) * nr * k);
    let len = panels.len();
    // SAFETY: each call gets the whole buffer and its length; the checks fail before writing.
    unsafe {
        assert!(
            pack_panels(panels.as_mut_ptr(), len, bm, 1, n).is_err(),
            "unaligned start"
        );
        assert!(
            pack_panels(panels.as_mut_ptr(), len, bm, 0, n + 1).is_err(),
            "past the last column"
        );
        assert!(
            pack_panels(panels.as_mut_ptr(), len - 1, bm, 0, n).is_err(),
            "short buffer"
        );
        pack_panels(panels.as_mut_ptr(), len, bm, 0, n).unwrap();
    }
    let mut c = vec![0f32; m * n];
    assert!(
        gemm_into_panels(&mut c, am, bm, &panels[1..], false).is_err(),
        "short panels"
    );
    assert!(
        gemm_into_panels(&mut c[1..], am, bm, &panels, false).is_err(),
        "short output"
    );
    gemm_into_panels(&mut c, am, bm, &panels, false).unwrap();
    let mut want = vec![0f32; m * n];
    gemm_into(&mut want, am, bm, false, 1).unwrap();
    assert!(same_bits(&c, &want));
    // A row-major B whose rows are 2 KiB apart is packed by every thread; one 1 KiB apart is not.
    let wide = vec![0f32; 3 * 512];
    assert!(shares_packing(MatRef::row_major(&wide, 3, 512).unwrap()));
    assert!(!shares_packing(MatRef::row_major(&wide[..3 * 256], 3, 256).unwrap()));
    assert!(shares_packing(MatRef::row_major(&wide[..3 * 256], 3, 256).unwrap().t()));
}
