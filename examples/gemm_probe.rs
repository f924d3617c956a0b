//! Times `gemm_into` at one shape, without Python in the way:
//! `cargo run --release --example gemm_probe -- m k n form threads [f64]`, form 0 = NN,
//! 1 = NTᵀ (b transposed), 2 = TᵀN (a transposed). `INITCORE_GEMM=crate` times the gemm crate.
//! Prints the best of 5 rounds of about 2 GFLOP each (a probe for tuning, not a benchmark).
use initcore::kernels::matmul::{gemm_into, MatRef};
use initcore::kernels::Real;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let a: Vec<usize> = args.iter().filter_map(|s| s.parse().ok()).collect();
    if args.iter().any(|s| s == "f64") {
        probe::<f64>(&a)
    } else {
        probe::<f32>(&a)
    }
}

fn probe<T: Real>(a: &[usize]) {
    let (m, k, n, form, t) = (a[0], a[1], a[2], a[3], a[4]);
    let av: Vec<T> = (0..m * k).map(|i| T::of((i % 7) as f64 * 0.1)).collect();
    let bv: Vec<T> = (0..k * n).map(|i| T::of((i % 5) as f64 * 0.1)).collect();
    let am = if form == 2 {
        MatRef::row_major(&av, k, m).unwrap().t()
    } else {
        MatRef::row_major(&av, m, k).unwrap()
    };
    let bm = if form == 1 {
        MatRef::row_major(&bv, n, k).unwrap().t()
    } else {
        MatRef::row_major(&bv, k, n).unwrap()
    };
    let mut c = vec![T::zero(); m * n];
    let flops = 2.0 * (m * k * n) as f64;
    let reps = ((2e9 / flops) as usize).clamp(3, 200000);
    let mut best = f64::MAX;
    for _ in 0..5 {
        let t0 = Instant::now();
        for _ in 0..reps {
            gemm_into(&mut c, am, bm, false, t).unwrap();
        }
        best = best.min(t0.elapsed().as_secs_f64() / reps as f64);
    }
    println!(
        "{} {m}x{k}x{n} form{form} t{t}: {:.1} GFLOP/s, {:.2} us",
        std::any::type_name::<T>(),
        flops / best / 1e9,
        best * 1e6
    );
}
