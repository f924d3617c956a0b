//! Tests of `batch_norm.rs`.

use super::*;
use crate::kernels::parallel::{self, PAR_THRESHOLD};

use crate::kernels::test_data::uniform as data;

fn naive_stats(x: &[f64], n: usize, m: usize) -> (Vec<f64>, Vec<f64>) {
    let mut mean = vec![0.0; m];
    let mut var = vec![0.0; m];
    for j in 0..m {
        mean[j] = (0..n).map(|i| x[i * m + j]).sum::<f64>() / n as f64;
        var[j] = (0..n).map(|i| (x[i * m + j] - mean[j]).powi(2)).sum::<f64>() / n as f64;
    }
    (mean, var)
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * (1.0 + b.abs())
}

fn check_forward_backward<T: Real>(n: usize, m: usize, tol: f64) {
    let xs = data(n * m, (n * 31 + m) as u64);
    let x: Vec<T> = xs.iter().map(|&v| T::of(3.0 * v + 0.5)).collect();
    let x64: Vec<f64> = x.iter().map(|v| v.f64()).collect();
    let gamma: Vec<T> = data(m, 7).iter().map(|&v| T::of(1.0 + 0.5 * v)).collect();
    let beta: Vec<T> = data(m, 8).iter().map(|&v| T::of(v)).collect();
    let (mut rm, mut rv) = (vec![T::of(0.25); m], vec![T::of(2.0); m]);
    let (mut y, mut sm, mut si) = (vec![T::zero(); n * m], vec![T::zero(); m], vec![T::zero(); m]);
    let mut work = vec![0.0; forward_workspace_len(n, m)];
    forward_train(
        &x,
        n,
        m,
        &gamma,
        &beta,
        Some((&mut rm, &mut rv)),
        0.1,
        1e-5,
        &mut y,
        &mut sm,
        &mut si,
        &mut work,
    )
    .unwrap();
    let (mean, var) = naive_stats(&x64, n, m);
    for j in 0..m {
        assert!(close(sm[j].f64(), mean[j], tol), "mean n={n} m={m} j={j}");
        assert!(
            close(si[j].f64(), 1.0 / (var[j] + 1e-5).sqrt(), tol),
            "invstd n={n} m={m} j={j}"
        );
        assert!(close(rm[j].f64(), 0.9 * 0.25 + 0.1 * mean[j], tol));
        assert!(close(
            rv[j].f64(),
            0.9 * 2.0 + 0.1 * var[j] * n as f64 / (n - 1) as f64,
            tol
        ));
        for i in 0..n {
            let want = (x64[i * m + j] - mean[j]) / (var[j] + 1e-5).sqrt() * gamma[j].f64() + beta[j].f64();
            assert!(close(y[i * m + j].f64(), want, tol * 10.0), "y n={n} m={m}");
        }
    }
    // Backward against the textbook formula evaluated in f64.
    let dy: Vec<T> = data(n * m, 99).iter().map(|&v| T::of(v)).collect();
    let (mut dx, mut dg, mut db) = (vec![T::zero(); n * m], vec![T::zero(); m], vec![T::zero(); m]);
    let mut bw = vec![0.0; backward_workspace_len(n, m)];
    for training in [true, false] {
        backward(
            &dy, &x, n, m, &gamma, &sm, &si, training, &mut dx, &mut dg, &mut db, &mut bw,
        )
        .unwrap();
        for j in 0..m {
            let (mu, s, g) = (sm[j].f64(), si[j].f64(), gamma[j].f64());
            let xh = |i: usize| (x64[i * m + j] - mu) * s;
            let sdb: f64 = (0..n).map(|i| dy[i * m + j].f64()).sum();
            let sdg: f64 = (0..n).map(|i| dy[i * m + j].f64() * xh(i)).sum();
            assert!(close(db[j].f64(), sdb, tol * n as f64), "dbeta");
            assert!(close(dg[j].f64(), sdg, tol * n as f64), "dgamma");
            for i in 0..n {
                let d = dy[i * m + j].f64();
                let want = if training {
                    g * s / n as f64 * (n as f64 * d - sdb - xh(i) * sdg)
                } else {
                    d * g * s
                };
                assert!(
                    close(dx[i * m + j].f64(), want, tol * 10.0 * n as f64),
                    "dx n={n} m={m} train={training}"
                );
            }
        }
    }
}

#[test]
fn matches_naive_loops_on_awkward_shapes() {
    for &n in &[2, 3, 7, 8, 9, 15, 16, 17, 63, 64, 65, 130] {
        for &m in &[0, 1, 7, 8, 9, 15, 16, 17] {
            check_forward_backward::<f64>(n, m, 1e-12);
            check_forward_backward::<f32>(n, m, 1e-5);
        }
    }
}

#[test]
fn parallel_path_matches_naive_and_is_thread_count_independent() {
    let (n, m) = (1000, 3 * PAR_THRESHOLD / 1000 + 5);
    check_forward_backward::<f32>(n, m, 1e-5);
    let x: Vec<f32> = data(n * m, 3).iter().map(|&v| v as f32).collect();
    let g = vec![1.5f32; m];
    let b = vec![0.1f32; m];
    let run = || {
        let (mut y, mut sm, mut si) = (vec![0f32; n * m], vec![0f32; m], vec![0f32; m]);
        let mut w = vec![0.0; forward_workspace_len(n, m)];
        forward_train(&x, n, m, &g, &b, None, 0.1, 1e-5, &mut y, &mut sm, &mut si, &mut w).unwrap();
        let (mut dx, mut dg, mut db) = (vec![0f32; n * m], vec![0f32; m], vec![0f32; m]);
        let mut bw = vec![0.0; backward_workspace_len(n, m)];
        backward(&x, &y, n, m, &g, &sm, &si, true, &mut dx, &mut dg, &mut db, &mut bw).unwrap();
        (y, sm, si, dx, dg, db)
    };
    let prev = parallel::num_threads();
    parallel::set_num_threads(1).unwrap();
    let one = run();
    parallel::set_num_threads(3).unwrap();
    let three = run();
    parallel::set_num_threads(prev).unwrap();
    assert!(one == three, "results differ between 1 and 3 threads");
}

#[test]
fn variance_of_large_mean_small_spread_f32() {
    let (n, m) = (1000, 3);
    let x: Vec<f32> = data(n * m, 5).iter().map(|&v| (1e4 + 1e-2 * 1.7 * v) as f32).collect();
    let x64: Vec<f64> = x.iter().map(|&v| v as f64).collect();
    let (_, var) = naive_stats(&x64, n, m);
    let (mut y, mut sm, mut si) = (vec![0f32; n * m], vec![0f32; m], vec![0f32; m]);
    let mut w = vec![0.0; forward_workspace_len(n, m)];
    forward_train(
        &x, n, m, &[1.0; 3], &[0.0; 3], None, 0.1, 1e-12, &mut y, &mut sm, &mut si, &mut w,
    )
    .unwrap();
    for j in 0..m {
        let got = 1.0 / (si[j] as f64).powi(2) - 1e-12;
        assert!((got - var[j]).abs() <= 1e-5 * var[j], "var {got} vs {}", var[j]);
    }
}

#[test]
fn eval_mode_uses_running_statistics() {
    let (n, m) = (5, 3);
    let x: Vec<f64> = data(n * m, 11);
    let (rm, rv) = (vec![0.5, -1.0, 2.0], vec![4.0, 0.25, 1.0]);
    let (g, b) = (vec![2.0, 1.0, 0.5], vec![0.0, 1.0, -1.0]);
    let (mut y, mut sm, mut si) = (vec![0.0; n * m], vec![0.0; m], vec![0.0; m]);
    forward_eval(&x, n, m, &g, &b, &rm, &rv, 1e-5, &mut y, &mut sm, &mut si).unwrap();
    assert_eq!(sm, rm);
    for j in 0..m {
        assert_eq!(si[j], 1.0 / (rv[j] + 1e-5).sqrt());
        for i in 0..n {
            assert!(close(y[i * m + j], (x[i * m + j] - rm[j]) * si[j] * g[j] + b[j], 1e-15));
        }
    }
    // Empty batches are fine in evaluation.
    forward_eval::<f64>(&[], 0, m, &g, &b, &rm, &rv, 1e-5, &mut [], &mut sm, &mut si).unwrap();
}

#[test]
fn bad_arguments_are_errors_and_write_nothing() {
    let x = vec![1.0f64; 6];
    let (mut y, mut sm, mut si) = (vec![7.0; 6], vec![7.0; 3], vec![7.0; 3]);
    let (mut rm, mut rv) = (vec![7.0; 3], vec![7.0; 3]);
    let mut w = vec![0.0; forward_workspace_len(2, 3)];
    let g = [1.0; 3];
    let e = forward_train(
        &x[..3],
        1,
        3,
        &g,
        &g,
        Some((&mut rm, &mut rv)),
        0.1,
        1e-5,
        &mut y[..3],
        &mut sm,
        &mut si,
        &mut w,
    );
    assert!(e
        .unwrap_err()
        .0
        .contains("Expected more than 1 value per channel when training"));
    assert!(
        forward_train(&x, 2, 3, &g, &g, None, 1.5, 1e-5, &mut y, &mut sm, &mut si, &mut w)
            .unwrap_err()
            .0
            .contains("momentum")
    );
    assert!(
        forward_train(&x, 2, 3, &g, &g, None, 0.1, 0.0, &mut y, &mut sm, &mut si, &mut w)
            .unwrap_err()
            .0
            .contains("eps")
    );
    assert!(
        forward_train(&x, 2, 3, &g[..2], &g, None, 0.1, 1e-5, &mut y, &mut sm, &mut si, &mut w)
            .unwrap_err()
            .0
            .contains("gamma")
    );
    assert!(
        forward_train(&x, 2, 3, &g, &g, None, 0.1, 1e-5, &mut y, &mut sm, &mut si, &mut w[..1])
            .unwrap_err()
            .0
            .contains("workspace")
    );
    assert!(y.iter().chain(&sm).chain(&si).chain(&rm).chain(&rv).all(|&v| v == 7.0));
}
