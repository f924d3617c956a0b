//! Tests of `matmul.rs`: against a naive product, and bit-identity across threads and bands.
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

pub(super) fn fill(n: usize, seed: u64) -> Vec<f64> {
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

/// A `rows×cols` view of `data` in one of four layouts: row-major, transposed (column-major),
/// or either with a gap of 3 elements between rows/columns (odd strides).
pub(super) fn view<T>(data: &[T], rows: usize, cols: usize, layout: usize) -> MatRef<'_, T> {
    match layout {
        0 => MatRef::new(data, rows, cols, cols, 1).unwrap(),
        1 => MatRef::new(data, rows, cols, 1, rows).unwrap(),
        2 => MatRef::new(data, rows, cols, cols + 3, 1).unwrap(),
        _ => MatRef::new(data, rows, cols, 1, rows + 3).unwrap(),
    }
}

/// Elements a `view(.., layout)` needs.
pub(super) fn view_len(rows: usize, cols: usize, layout: usize) -> usize {
    match layout {
        0 | 1 => rows * cols,
        2 => rows * (cols + 3),
        _ => cols * (rows + 3),
    }
}

pub(super) fn to_f32(x: &[f64]) -> Vec<f32> {
    x.iter().map(|&v| v as f32).collect()
}

pub(super) fn same_bits<T: Real>(x: &[T], y: &[T]) -> bool {
    x.len() == y.len()
        && x.iter()
            .zip(y)
            .all(|(a, b)| a.to_f64().unwrap().to_bits() == b.to_f64().unwrap().to_bits())
}

/// Shapes that cross every edge of the packed GEMM: partial register tiles (m % MR, n % NR,
/// one-vector tiles), several depth blocks (k > KC), several A blocks (m > MC) and B blocks
/// (n > NC), k = 1, and a row-major A packed rather than read in place.
pub(super) const EDGE_SHAPES: [(usize, usize, usize); 15] = [
    (1, 1, 1),
    (1, 300, 1),
    (5, 1, 40),
    (11, 17, 7),
    (12, 16, 32),
    (13, 385, 33),
    (25, 400, 47),
    (37, 3, 100),
    (64, 520, 17),
    (130, 64, 400),
    (1210, 20, 45),
    (30, 800, 530),
    (25, 512, 40), // row stride 2 KiB (f32) / 4 KiB (f64): A is packed, not read in place
    (9, 40, 512),  // the same for B
    (512, 24, 40), // and for a column-major A (column stride 2 KiB)
];

#[cfg(target_arch = "x86_64")]
pub(super) fn run_isa<T: Real>(
    isa: &'static packed::Isa<T>,
    c: &mut [T],
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    acc: bool,
    t: usize,
) {
    parallel::install(|| packed_run(isa, c, a, b, acc, t));
}

/// Each engine this machine has for `T`: the one `gemm_into` picks, and the AVX2 kernels.
#[cfg(target_arch = "x86_64")]
pub(super) fn engines_f64() -> Vec<&'static packed::Isa<f64>> {
    packed::isa_f64().into_iter().chain(packed::avx2_f64()).collect()
}

#[cfg(target_arch = "x86_64")]
pub(super) fn engines_f32() -> Vec<&'static packed::Isa<f32>> {
    packed::isa_f32().into_iter().chain(packed::avx2_f32()).collect()
}

#[cfg(target_arch = "x86_64")]
#[test]
fn packed_engines_match_naive_on_every_layout_and_edge() {
    for &(m, k, n) in &EDGE_SHAPES {
        for (la, lb) in [(0, 0), (0, 1), (1, 0), (1, 1), (2, 3), (3, 2)] {
            let a = fill(view_len(m, k, la), 21);
            let b = fill(view_len(k, n, lb), 22);
            let (am, bm) = (view(&a, m, k, la), view(&b, k, n, lb));
            let want = naive(am, bm);
            let (a32, b32) = (to_f32(&a), to_f32(&b));
            let (am32, bm32) = (view(&a32, m, k, la), view(&b32, k, n, lb));
            let a64: Vec<f64> = a32.iter().map(|&v| v as f64).collect();
            let b64: Vec<f64> = b32.iter().map(|&v| v as f64).collect();
            let want32 = naive(view(&a64, m, k, la), view(&b64, k, n, lb));
            for isa in engines_f64() {
                for acc in [false, true] {
                    let mut c = vec![if acc { 0.5 } else { f64::NAN }; m * n];
                    run_isa(isa, &mut c, am, bm, acc, 1);
                    let w: Vec<f64> = want.iter().map(|v| v + if acc { 0.5 } else { 0.0 }).collect();
                    close(&c, &w, 1e-12 * k as f64);
                }
            }
            for isa in engines_f32() {
                let mut c = vec![f32::NAN; m * n];
                run_isa(isa, &mut c, am32, bm32, false, 1);
                let got: Vec<f64> = c.iter().map(|&v| v as f64).collect();
                close(&got, &want32, 2e-6 * (k as f64).sqrt());
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[test]
fn packed_engines_are_bit_identical_for_any_thread_count() {
    for &(m, k, n) in &EDGE_SHAPES {
        let a = fill(m * k, 23);
        let b = fill(k * n, 24);
        let (am, bm) = (
            MatRef::row_major(&a, m, k).unwrap(),
            MatRef::row_major(&b, k, n).unwrap(),
        );
        let (a32, b32) = (to_f32(&a), to_f32(&b));
        let (am32, bm32) = (
            MatRef::row_major(&a32, m, k).unwrap(),
            MatRef::row_major(&b32, k, n).unwrap(),
        );
        for isa in engines_f64() {
            let mut one = vec![0.25; m * n];
            run_isa(isa, &mut one, am, bm, true, 1);
            for t in [2, 3, 5, 8] {
                let mut c = vec![0.25; m * n];
                run_isa(isa, &mut c, am, bm, true, t);
                assert!(same_bits(&c, &one), "f64 {m}x{k}x{n} threads={t}");
            }
        }
        for isa in engines_f32() {
            let mut one = vec![0f32; m * n];
            run_isa(isa, &mut one, am32, bm32, false, 1);
            for t in [2, 3, 5, 8] {
                let mut c = vec![f32::NAN; m * n];
                run_isa(isa, &mut c, am32, bm32, false, t);
                assert!(same_bits(&c, &one), "f32 {m}x{k}x{n} threads={t}");
            }
        }
    }
}

/// The thread team calls `gemm_into(.., threads = 1)` on bands of rows of C (forward, dX) and
/// on bands of columns (dW by columns of W, into its own buffer): every band split, aligned to
/// the register tile or not, gives the bits of the whole product.
#[test]
fn row_and_column_bands_are_bit_identical_to_the_whole_product() {
    let forms = [
        (128, 784, 256, 0, 0),
        (128, 256, 784, 0, 1),
        (784, 128, 256, 1, 0),
        (97, 385, 70, 1, 1),
        (33, 20, 45, 2, 3),
    ];
    for &(m, k, n, la, lb) in &forms {
        let a = to_f32(&fill(view_len(m, k, la), 25));
        let b = to_f32(&fill(view_len(k, n, lb), 26));
        let (am, bm) = (view(&a, m, k, la), view(&b, k, n, lb));
        let mut whole = vec![0f32; m * n];
        gemm_into(&mut whole, am, bm, false, 1).unwrap();
        for cuts in [vec![1], vec![5, 13], vec![12, 24, 36], vec![m / 2], vec![m - 1]] {
            let mut got = vec![f32::NAN; m * n];
            let mut r0 = 0;
            for r1 in cuts.iter().copied().filter(|&r| r < m).chain([m]) {
                gemm_into(&mut got[r0 * n..r1 * n], am.row_band(r0, r1), bm, false, 1).unwrap();
                r0 = r1;
            }
            assert!(same_bits(&got, &whole), "rows {m}x{k}x{n} cuts {cuts:?}");
        }
        for cuts in [vec![1], vec![7, 40], vec![16, 32], vec![n / 2], vec![n - 1]] {
            let mut c0 = 0;
            for c1 in cuts.iter().copied().filter(|&c| c < n).chain([n]) {
                let w = c1 - c0;
                let mut part = vec![f32::NAN; m * w];
                gemm_into(&mut part, am, bm.col_band(c0, c1), false, 1).unwrap();
                for i in 0..m {
                    assert!(
                        same_bits(&part[i * w..(i + 1) * w], &whole[i * n + c0..i * n + c1]),
                        "columns {m}x{k}x{n} cuts {cuts:?} row {i}"
                    );
                }
                c0 = c1;
            }
        }
    }
}

/// Accumulating into C adds exactly what a fresh product computes, element by element as
/// `c + (a·b)` rounded once, for every thread count.
#[test]
fn accumulate_is_bit_identical_across_thread_counts() {
    let (m, k, n) = (200, 900, 150);
    let a = fill(m * k, 27);
    let b = fill(k * n, 28);
    let (am, bm) = (
        MatRef::row_major(&a, m, k).unwrap(),
        MatRef::row_major(&b, k, n).unwrap(),
    );
    let base = fill(m * n, 29);
    let mut one = base.clone();
    gemm_into(&mut one, am, bm, true, 1).unwrap();
    for t in [2, 3] {
        let mut c = base.clone();
        parallel::install(|| gemm_into(&mut c, am, bm, true, t)).unwrap();
        assert!(same_bits(&c, &one), "threads={t}");
    }
    let mut want = naive(am, bm);
    want.iter_mut().zip(&base).for_each(|(w, b)| *w += b);
    close(&one, &want, 1e-12 * k as f64);
}

#[test]
fn non_finite_inputs_propagate_and_padding_stays_out_of_the_output() {
    // Inf/NaN in A and B reach exactly the elements they touch; the packed engine's padded
    // tile lanes (n % NR, m % MR) never leak into neighbours.
    let (m, k, n) = (13, 5, 33);
    let mut a = fill(m * k, 30);
    let b = fill(k * n, 31);
    a[2 * k + 1] = f64::INFINITY; // row 2
    a[7 * k] = f64::NAN; // row 7
    let (am, bm) = (
        MatRef::row_major(&a, m, k).unwrap(),
        MatRef::row_major(&b, k, n).unwrap(),
    );
    let mut c = vec![0.0; m * n];
    gemm_into(&mut c, am, bm, false, 1).unwrap();
    for i in 0..m {
        for j in 0..n {
            let v = c[i * n + j];
            match i {
                2 => assert!(v.is_infinite() || v.is_nan(), "({i},{j})"),
                7 => assert!(v.is_nan(), "({i},{j})"),
                _ => assert!(v.is_finite(), "({i},{j}) = {v}"),
            }
        }
    }
}

/// A row-major B is read in place, its last sliver narrower than NR by the masked kernels; the
/// same B stored column-major is packed into zero-padded slivers. Both give the same bits, and
/// the masked stores leave the output's neighbours (a wider `ldc`) alone.
#[cfg(target_arch = "x86_64")]
#[test]
fn a_narrow_sliver_read_in_place_gives_the_bits_of_a_packed_one() {
    fn check<T: Real>(isa: &'static packed::Isa<T>, a: &[T], b: &[T], (m, k, n): (usize, usize, usize)) {
        let bt: Vec<T> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect();
        let am = MatRef::row_major(a, m, k).unwrap();
        let (in_place, packed) = (view(b, k, n, 0), view(&bt, k, n, 1));
        for acc in [false, true] {
            let ld = n + 5;
            let start = T::from(0.25).unwrap();
            let mut c = [vec![start; m * ld], vec![start; m * ld]];
            for (c, bm) in c.iter_mut().zip([in_place, packed]) {
                // SAFETY: `c` holds m rows `ld` apart of n elements; nothing else aliases it.
                unsafe { packed::gemm_serial(isa, am, bm, None, c.as_mut_ptr(), ld, acc).unwrap() };
            }
            assert!(same_bits(&c[0], &c[1]), "{m}x{k}x{n} acc={acc}");
            let gaps = c[0].chunks(ld).flat_map(|row| &row[n..]);
            assert!(
                gaps.into_iter().all(|&v| v == start),
                "{m}x{k}x{n}: a store crossed column {n}"
            );
        }
    }
    for &(m, k, n) in &EDGE_SHAPES {
        let (a, b) = (fill(m * k, 25), fill(k * n, 26));
        for isa in engines_f64() {
            check(isa, &a, &b, (m, k, n));
        }
        for isa in engines_f32() {
            check(isa, &to_f32(&a), &to_f32(&b), (m, k, n));
        }
    }
}
