//! Tests of `activation.rs`.

use super::*;

/// Deterministic values in [lo, hi) (an LCG; no dependency).
pub(crate) fn fill(n: usize, seed: u64, lo: f64, hi: f64) -> Vec<f64> {
    crate::kernels::test_data::range(n, seed, lo, hi)
}

pub(crate) fn close(got: &[f64], want: &[f64], rtol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (a, b)) in got.iter().zip(want).enumerate() {
        assert!(
            (a - b).abs() <= rtol * (1e-30 + b.abs()) || (a.is_nan() && b.is_nan()),
            "{what}[{i}]: {a} vs {b}"
        );
    }
}

fn all_acts() -> Vec<Act<f64>> {
    vec![
        Act::Identity,
        Act::Sigmoid,
        Act::Tanh,
        Act::Relu,
        Act::LeakyRelu(0.2),
        Act::Elu(0.7),
        Act::Selu,
    ]
}

/// The table of the module documentation, with std's functions.
fn naive_f(act: Act<f64>, x: f64) -> f64 {
    let (l, a) = (SELU_LAMBDA, SELU_ALPHA);
    match act {
        Act::Identity => x,
        Act::Sigmoid => 1.0 / (1.0 + (-x).exp()),
        Act::Tanh => x.tanh(),
        Act::Relu => x.max(0.0),
        Act::LeakyRelu(s) => {
            if x > 0.0 {
                x
            } else {
                s * x
            }
        }
        Act::Elu(s) => {
            if x > 0.0 {
                x
            } else {
                s * x.exp_m1()
            }
        }
        Act::Selu => {
            if x > 0.0 {
                l * x
            } else {
                l * a * x.exp_m1()
            }
        }
    }
}

fn naive_df(act: Act<f64>, x: f64) -> f64 {
    let (l, a) = (SELU_LAMBDA, SELU_ALPHA);
    match act {
        Act::Identity => 1.0,
        Act::Sigmoid => naive_f(act, x) * (1.0 - naive_f(act, x)),
        Act::Tanh => 1.0 - x.tanh().powi(2),
        Act::Relu => {
            if x > 0.0 {
                1.0
            } else {
                0.0
            }
        }
        Act::LeakyRelu(s) => {
            if x > 0.0 {
                1.0
            } else {
                s
            }
        }
        Act::Elu(s) => {
            if x > 0.0 {
                1.0
            } else {
                s * x.exp()
            }
        }
        Act::Selu => {
            if x > 0.0 {
                l
            } else {
                l * a * x.exp()
            }
        }
    }
}

#[test]
fn forward_and_backward_match_naive_on_simd_edges_serial_and_parallel() {
    for act in all_acts() {
        for n in [0usize, 1, 7, 8, 9, 15, 16, 17, 1000, 3 * parallel::PAR_THRESHOLD + 5] {
            let x = fill(n, n as u64 + 1, -6.0, 6.0);
            let dy = fill(n, n as u64 + 2, -1.0, 1.0);
            let mut y = vec![f64::NAN; n];
            act_forward(act, &x, &mut y).unwrap();
            let want: Vec<f64> = x.iter().map(|&v| naive_f(act, v)).collect();
            close(&y, &want, 1e-14, act.name());
            let mut dx = vec![f64::NAN; n];
            act_backward(act, &dy, &x, &y, &mut dx).unwrap();
            // 1 − y² loses relative accuracy where tanh saturates: compare on the scale of dy.
            let want: Vec<f64> = x.iter().zip(&dy).map(|(&v, &g)| g * naive_df(act, v)).collect();
            assert!(
                dx.iter().zip(&want).all(|(a, b)| (a - b).abs() <= 1e-12),
                "{} backward",
                act.name()
            );
            // f32 against the f64 result.
            let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
            let mut y32 = vec![f32::NAN; n];
            act_forward(
                Act::<f32>::parse(
                    act.name(),
                    match act {
                        Act::LeakyRelu(a) | Act::Elu(a) => Some(a),
                        _ => None,
                    },
                )
                .unwrap(),
                &x32,
                &mut y32,
            )
            .unwrap();
            let want: Vec<f64> = x32.iter().map(|&v| naive_f(act, v as f64)).collect();
            let got: Vec<f64> = y32.iter().map(|&v| v as f64).collect();
            close(&got, &want, 1e-6, act.name());
        }
    }
}

#[test]
fn saturation_and_nan() {
    for act in all_acts() {
        let x = [1e4, -1e4, f64::INFINITY, f64::NEG_INFINITY, f64::NAN];
        let mut y = [0.0; 5];
        act_forward(act, &x, &mut y).unwrap();
        assert!(y[4].is_nan(), "{} NaN", act.name());
        for (i, (&a, &b)) in x[..4].iter().zip(&y[..4]).enumerate() {
            let want = naive_f(act, a);
            assert!(a == b || want == b, "{}({a}) = {b}, expected {want} (#{i})", act.name());
        }
    }
}

#[test]
fn parse_names_alias_defaults_and_errors() {
    assert_eq!(Act::<f64>::parse("linear", None).unwrap(), Act::Identity);
    assert_eq!(Act::<f64>::parse("leaky_relu", None).unwrap(), Act::LeakyRelu(0.01));
    assert_eq!(Act::<f64>::parse("elu", None).unwrap(), Act::Elu(1.0));
    assert_eq!(Act::<f32>::parse("elu", Some(0.5)).unwrap(), Act::Elu(0.5f32));
    assert!(Act::<f64>::parse("swish", None).unwrap_err().0.contains("'activation'"));
    assert!(Act::<f64>::parse("Relu", None).unwrap_err().0.contains("'activation'"));
    assert!(Act::<f64>::parse("relu", Some(0.1)).unwrap_err().0.contains("'alpha'"));
    assert!(Act::<f64>::parse("elu", Some(f64::NAN))
        .unwrap_err()
        .0
        .contains("'alpha'"));
    assert!(Act::<f64>::parse("leaky_relu", Some(f64::INFINITY))
        .unwrap_err()
        .0
        .contains("'alpha'"));
}

fn naive_colsum(x: &[f64], n: usize, m: usize) -> Vec<f64> {
    (0..m).map(|j| (0..n).map(|i| x[i * m + j]).sum()).collect()
}

#[test]
fn bias_act_forward_and_backward_match_naive() {
    for act in all_acts() {
        for &(n, m) in &[
            (0usize, 3usize),
            (3, 0),
            (1, 1),
            (7, 9),
            (8, 16),
            (17, 15),
            (65, 33),
            (300, 257),
        ] {
            let z0 = fill(n * m, 3, -4.0, 4.0);
            let b = fill(m, 4, -1.0, 1.0);
            let dy = fill(n * m, 5, -1.0, 1.0);
            let mut z = z0.clone();
            let mut y = vec![f64::NAN; n * m];
            bias_act_forward(act, Some(&b), n, m, &mut z, &mut y).unwrap();
            let zb: Vec<f64> = z0.iter().enumerate().map(|(i, &v)| v + b[i % m.max(1)]).collect();
            close(&z, &zb, 0.0, "z + b");
            close(
                &y,
                &zb.iter().map(|&v| naive_f(act, v)).collect::<Vec<_>>(),
                1e-14,
                act.name(),
            );
            let mut dz = vec![f64::NAN; n * m];
            let mut ws = vec![f64::NAN; colsum_workspace_len(n, m)];
            let mut db = vec![f64::NAN; m];
            bias_act_backward(act, &dy, &z, &y, n, m, &mut dz, &mut ws, &mut db).unwrap();
            let want: Vec<f64> = zb.iter().zip(&dy).map(|(&v, &g)| g * naive_df(act, v)).collect();
            assert!(
                dz.iter().zip(&want).all(|(a, b)| (a - b).abs() <= 1e-12),
                "{} backward",
                act.name()
            );
            let sums = naive_colsum(&dz, n, m);
            for (a, b) in db.iter().zip(&sums) {
                assert!((a - b).abs() <= 1e-12 * (1.0 + b.abs()), "db {a} vs {b}");
            }
            let mut cs = vec![f64::NAN; m];
            column_sums(&dz, n, m, &mut ws, &mut cs).unwrap();
            assert!(
                cs.iter().zip(&db).all(|(a, b)| a.to_bits() == b.to_bits()),
                "column_sums == fused db"
            );
        }
    }
}

#[test]
fn shape_errors_are_errors_not_panics() {
    let x = vec![0.0f64; 6];
    let mut y = vec![0.0f64; 5];
    assert!(act_forward(Act::Relu, &x, &mut y).is_err());
    assert!(act_backward(Act::Relu, &x, &x, &x, &mut y).is_err());
    let mut z = vec![0.0f64; 6];
    let mut y6 = vec![0.0f64; 6];
    assert!(bias_act_forward(Act::Relu, Some(&x[..2]), 2, 3, &mut z, &mut y6).is_err());
    assert!(bias_act_forward(Act::Relu, None, 3, 3, &mut z, &mut y6).is_err());
    let mut db = vec![0.0; 3];
    let mut ws: Vec<f64> = vec![];
    assert!(bias_act_backward(Act::Relu, &x, &x, &x, 2, 3, &mut z, &mut ws, &mut db[..2]).is_err());
    let big = vec![0.0; 200 * 3];
    assert!(
        column_sums(&big, 200, 3, &mut ws, &mut db).is_err(),
        "missing workspace"
    );
}
