//! Tests of `network.rs`: gradients against finite differences for every layer kind, the
//! prefix (smaller batch) rule, evaluation mode, thread-count bit identity, and errors.

use super::*;
use crate::kernels::activation::tests::fill;
use crate::kernels::parallel;

/// Layers of every kind, widths chained from `input_dim = 5`.
pub(crate) fn every_layer() -> Vec<LayerSpec<f64>> {
    use LayerKind::*;
    let spec = |kind, inp, out| LayerSpec { kind, inp, out };
    vec![
        spec(
            Dense {
                bias: true,
                act: Act::Relu,
            },
            5,
            8,
        ),
        spec(
            BatchNorm {
                momentum: 0.1,
                eps: 1e-5,
            },
            8,
            8,
        ),
        spec(Dropout { rate: 0.3 }, 8, 8),
        spec(
            Dense {
                bias: true,
                act: Act::Tanh,
            },
            8,
            6,
        ),
        spec(PRelu, 6, 6),
        spec(
            Dense {
                bias: false,
                act: Act::Identity,
            },
            6,
            8,
        ),
        spec(Maxout { k: 2 }, 8, 4),
        spec(
            AlphaDropout {
                rate: 0.2,
                a: 0.9,
                b: 0.3,
                alpha_p: -1.7580993408473766,
            },
            4,
            4,
        ),
        spec(Activation(Act::Selu), 4, 4),
        spec(
            Dense {
                bias: true,
                act: Act::Elu(0.7),
            },
            4,
            5,
        ),
        spec(Activation(Act::Identity), 5, 5),
        spec(Activation(Act::Sigmoid), 5, 5),
        spec(
            Dense {
                bias: true,
                act: Act::LeakyRelu(0.1),
            },
            5,
            6,
        ),
        spec(LogSoftmax, 6, 6),
        spec(
            Dense {
                bias: true,
                act: Act::Identity,
            },
            6,
            4,
        ),
        spec(Softmax, 4, 4),
    ]
}

/// Parameter values (BatchNorm γ near 1), buffers (running variance 1) and uniforms.
/// `x`, parameters, buffers and uniforms of a test batch.
pub(crate) type Inputs = (Vec<f64>, Vec<Vec<f64>>, Vec<Vec<f64>>, Vec<Vec<f64>>);

pub(crate) fn inputs(net: &Network<f64>, n: usize, seed: u64) -> Inputs {
    let x = fill(n * net.input_dim(), seed, -1.5, 1.5);
    let params = net
        .param_shapes()
        .iter()
        .enumerate()
        .map(|(i, s)| {
            fill(
                s.iter().product(),
                seed + 10 + i as u64,
                if s.len() == 1 { 0.5 } else { -0.6 },
                if s.len() == 1 { 1.2 } else { 0.6 },
            )
        })
        .collect();
    let buffers = net
        .buffer_lens()
        .iter()
        .enumerate()
        .map(|(i, &m)| vec![(i % 2) as f64; m])
        .collect();
    let uniforms = net
        .uniform_widths()
        .iter()
        .enumerate()
        .map(|(i, &w)| fill(n * w, seed + 100 + i as u64, 0.0, 1.0))
        .collect();
    (x, params, buffers, uniforms)
}

pub(crate) fn muts(v: &mut [Vec<f64>]) -> Vec<&mut [f64]> {
    v.iter_mut().map(|a| &mut a[..]).collect()
}

pub(crate) fn refs(v: &[Vec<f64>]) -> Vec<&[f64]> {
    v.iter().map(|a| &a[..]).collect()
}

/// `Σ output ⊙ r` after a training forward.
fn objective(
    net: &mut Network<f64>,
    x: &[f64],
    n: usize,
    params: &mut [Vec<f64>],
    buffers: &mut [Vec<f64>],
    uniforms: &[Vec<f64>],
    r: &[f64],
) -> f64 {
    net.forward(x, n, &muts(params), &mut muts(buffers), &refs(uniforms), true)
        .unwrap();
    net.output(x, n).iter().zip(r).map(|(a, b)| a * b).sum()
}

fn gradcheck(specs: Vec<LayerSpec<f64>>, n: usize) {
    let mut net = Network::new(specs[0].inp, specs, n).unwrap();
    let (x, mut params, mut buffers, uniforms) = inputs(&net, n, 1);
    let r = fill(n * net.output_dim(), 7, -1.0, 1.0);
    objective(&mut net, &x, n, &mut params, &mut buffers, &uniforms, &r);
    net.output_grad(n).copy_from_slice(&r);
    let mut grads: Vec<Vec<f64>> = params.iter().map(|p| vec![f64::NAN; p.len()]).collect();
    net.backward(&x, n, &muts(&mut params), &mut muts(&mut grads)).unwrap();
    let eps = 1e-6;
    for i in 0..params.len() {
        for j in 0..params[i].len() {
            let old = params[i][j];
            params[i][j] = old + eps;
            let fp = objective(&mut net, &x, n, &mut params, &mut buffers, &uniforms, &r);
            params[i][j] = old - eps;
            let fm = objective(&mut net, &x, n, &mut params, &mut buffers, &uniforms, &r);
            params[i][j] = old;
            let num = (fp - fm) / (2.0 * eps);
            let got = grads[i][j];
            assert!(
                (got - num).abs() <= 1e-6 * (1.0 + num.abs()),
                "param {i}[{j}]: backward {got}, finite difference {num}"
            );
        }
    }
}

#[test]
fn gradients_of_every_layer_kind_match_finite_differences() {
    gradcheck(every_layer(), 9);
}

#[test]
fn layers_below_the_first_parameter_are_skipped() {
    use LayerKind::*;
    let specs = vec![
        LayerSpec {
            kind: Dropout { rate: 0.5 },
            inp: 4,
            out: 4,
        },
        LayerSpec {
            kind: Activation(Act::Tanh),
            inp: 4,
            out: 4,
        },
        LayerSpec {
            kind: BatchNorm {
                momentum: 0.1,
                eps: 1e-5,
            },
            inp: 4,
            out: 4,
        },
        LayerSpec {
            kind: Dense {
                bias: true,
                act: Act::Sigmoid,
            },
            inp: 4,
            out: 3,
        },
    ];
    gradcheck(specs.clone(), 6);
    let net = Network::new(4, specs, 2).unwrap();
    assert_eq!(net.stop, 2);
}

#[test]
fn a_smaller_batch_uses_a_prefix_of_the_workspace() {
    let (n, big) = (13, 70);
    let mut small_net = Network::new(5, every_layer(), n).unwrap();
    let mut big_net = Network::new(5, every_layer(), big).unwrap();
    let (x, params, buffers, uniforms) = inputs(&small_net, n, 3);
    let run = |net: &mut Network<f64>| {
        let (mut p, mut b) = (params.clone(), buffers.clone());
        net.forward(&x, n, &muts(&mut p), &mut muts(&mut b), &refs(&uniforms), true)
            .unwrap();
        let out = net.output(&x, n).to_vec();
        net.output_grad(n).copy_from_slice(&out);
        let mut g: Vec<Vec<f64>> = p.iter().map(|a| vec![0.0; a.len()]).collect();
        net.backward(&x, n, &muts(&mut p), &mut muts(&mut g)).unwrap();
        (out, g, b)
    };
    let (a, b) = (run(&mut small_net), run(&mut big_net));
    assert_eq!(a, b);
    // Growing keeps working and changes nothing either.
    small_net.reserve(big);
    assert_eq!(small_net.capacity(), big);
    assert_eq!(run(&mut small_net), a);
}

#[test]
fn evaluation_uses_running_statistics_and_no_dropout() {
    use LayerKind::*;
    let specs = vec![
        LayerSpec {
            kind: Dense {
                bias: true,
                act: Act::Identity,
            },
            inp: 3,
            out: 4,
        },
        LayerSpec {
            kind: Dropout { rate: 0.5 },
            inp: 4,
            out: 4,
        },
        LayerSpec {
            kind: BatchNorm {
                momentum: 0.1,
                eps: 1e-5,
            },
            inp: 4,
            out: 4,
        },
    ];
    let n = 6;
    let mut net = Network::new(3, specs, n).unwrap();
    let (x, mut params, _, _) = inputs(&net, n, 4);
    let mut buffers = vec![vec![0.5, -0.5, 0.0, 1.0], vec![4.0, 1.0, 0.25, 2.0]];
    let before = buffers.clone();
    net.forward(&x, n, &muts(&mut params), &mut muts(&mut buffers), &[], false)
        .unwrap();
    assert_eq!(buffers, before, "evaluation updates nothing");
    let out = net.output(&x, n);
    for i in 0..n {
        for j in 0..4 {
            let z: f64 = params[1][j] + (0..3).map(|k| x[i * 3 + k] * params[0][k * 4 + j]).sum::<f64>();
            let want = (z - before[0][j]) / (before[1][j] + 1e-5).sqrt() * params[2][j] + params[3][j];
            assert!((out[i * 4 + j] - want).abs() < 1e-12, "{i},{j}");
        }
    }
}

#[test]
fn results_are_bit_identical_for_any_thread_count() {
    use LayerKind::*;
    let specs = vec![
        LayerSpec {
            kind: Dense {
                bias: true,
                act: Act::Relu,
            },
            inp: 64,
            out: 256,
        },
        LayerSpec {
            kind: BatchNorm {
                momentum: 0.1,
                eps: 1e-5,
            },
            inp: 256,
            out: 256,
        },
        LayerSpec {
            kind: Dropout { rate: 0.25 },
            inp: 256,
            out: 256,
        },
        LayerSpec {
            kind: Dense {
                bias: true,
                act: Act::Tanh,
            },
            inp: 256,
            out: 200,
        },
        LayerSpec {
            kind: PRelu,
            inp: 200,
            out: 200,
        },
        LayerSpec {
            kind: Dense {
                bias: true,
                act: Act::Identity,
            },
            inp: 200,
            out: 10,
        },
    ];
    let n = 700;
    let run = |threads: usize| {
        parallel::set_num_threads(threads).unwrap();
        let mut net = Network::new(64, specs.clone(), n).unwrap();
        let (x, mut p, mut b, u) = inputs(&net, n, 5);
        net.forward(&x, n, &muts(&mut p), &mut muts(&mut b), &refs(&u), true)
            .unwrap();
        let out = net.output(&x, n).to_vec();
        net.output_grad(n).copy_from_slice(&out);
        let mut g: Vec<Vec<f64>> = p.iter().map(|a| vec![0.0; a.len()]).collect();
        net.backward(&x, n, &muts(&mut p), &mut muts(&mut g)).unwrap();
        let bits = |v: &[f64]| v.iter().map(|a| a.to_bits()).collect::<Vec<_>>();
        (
            bits(&out),
            g.iter().map(|a| bits(a)).collect::<Vec<_>>(),
            b.iter().map(|a| bits(a)).collect::<Vec<_>>(),
        )
    };
    let one = run(1);
    for t in [2, 3] {
        assert!(run(t) == one, "threads={t}");
    }
}

#[test]
fn dropout_masks_follow_the_numpy_layers() {
    // Dropout: mask = [u >= rate]·(1/(1 − rate)); alpha dropout: keep·a and (1 − keep)·a·α′ + b.
    let x = [1.5f32, -2.0, 0.25, 3.0];
    let u = [0.1f32, 0.5, 0.3, 0.29];
    let (mut m, mut y) = ([0f32; 4], [0f32; 4]);
    crate::kernels::dropout::dropout_forward(&x, &u, 0.3, &mut m, &mut y).unwrap();
    let s = (1.0f64 / 0.7) as f32;
    assert_eq!(m, [0.0, s, s, 0.0]);
    assert_eq!(y, [0.0, -2.0 * s, 0.25 * s, 0.0]);
    let (a, c, b) = (0.9f32, (0.9f64 * -1.7580993408473766) as f32, 0.3f32);
    crate::kernels::dropout::alpha_dropout_forward(&x, &u, 0.3, 0.9, 0.3, -1.7580993408473766, &mut m, &mut y).unwrap();
    assert_eq!(m, [0.0, a, a, 0.0]);
    assert_eq!(
        y,
        [1.5 * 0.0 + (c + b), -2.0 * a + b, 0.25 * a + b, 3.0 * 0.0 + (c + b)]
    );
}

#[test]
fn bad_networks_and_arguments_are_errors() {
    use LayerKind::*;
    let d = |inp, out| LayerSpec::<f64> {
        kind: Dense {
            bias: true,
            act: Act::Relu,
        },
        inp,
        out,
    };
    assert!(Network::<f64>::new(3, vec![], 4).is_err());
    assert!(Network::new(3, vec![d(4, 2)], 4)
        .unwrap_err()
        .0
        .contains("takes 4 inputs"));
    assert!(Network::new(3, vec![d(3, 0)], 4).is_err());
    assert!(Network::new(
        3,
        vec![
            d(3, 4),
            LayerSpec {
                kind: Maxout { k: 3 },
                inp: 4,
                out: 1
            }
        ],
        4
    )
    .is_err());
    assert!(Network::new(
        3,
        vec![
            d(3, 4),
            LayerSpec {
                kind: Dropout { rate: 1.0 },
                inp: 4,
                out: 4
            }
        ],
        4
    )
    .is_err());
    assert!(Network::new(
        3,
        vec![
            d(3, 4),
            LayerSpec {
                kind: BatchNorm {
                    momentum: 2.0,
                    eps: 1e-5
                },
                inp: 4,
                out: 4
            }
        ],
        4
    )
    .is_err());
    assert!(Network::new(
        3,
        vec![
            d(3, 4),
            LayerSpec {
                kind: PRelu,
                inp: 4,
                out: 3
            }
        ],
        4
    )
    .is_err());

    let mut net = Network::new(5, every_layer(), 8).unwrap();
    let (x, mut p, mut b, u) = inputs(&net, 8, 6);
    let ok = |net: &mut Network<f64>, x: &[f64], n, p: &mut [Vec<f64>], b: &mut [Vec<f64>], u: &[Vec<f64>]| {
        net.forward(x, n, &muts(p), &mut muts(b), &refs(u), true)
    };
    assert!(ok(&mut net, &x, 8, &mut p, &mut b, &u).is_ok());
    assert!(ok(&mut net, &x[..35], 7, &mut p, &mut b, &u)
        .unwrap_err()
        .0
        .contains("uniform matrix 0"));
    assert!(ok(&mut net, &x, 9, &mut p, &mut b, &u)
        .unwrap_err()
        .0
        .contains("exceeds"));
    assert!(ok(&mut net, &x[..39], 8, &mut p, &mut b, &u)
        .unwrap_err()
        .0
        .contains("'x'"));
    assert!(ok(&mut net, &x, 8, &mut p[1..], &mut b, &u)
        .unwrap_err()
        .0
        .contains("parameter arrays"));
    assert!(ok(&mut net, &x, 8, &mut p, &mut b[1..], &u)
        .unwrap_err()
        .0
        .contains("buffers"));
    assert!(ok(&mut net, &x, 8, &mut p, &mut b, &u[1..])
        .unwrap_err()
        .0
        .contains("uniform"));
    let mut short = p.clone();
    short[2].pop();
    assert!(ok(&mut net, &x, 8, &mut short, &mut b, &u)
        .unwrap_err()
        .0
        .contains("parameter 2"));
    let u1: Vec<Vec<f64>> = u.iter().map(|a| a[..a.len() / 8].to_vec()).collect();
    assert!(ok(&mut net, &x[..5], 1, &mut p, &mut b, &u1)
        .unwrap_err()
        .0
        .contains("more than 1 value"));
    let mut g: Vec<Vec<f64>> = p.iter().map(|a| vec![0.0; a.len()]).collect();
    g[0].pop();
    assert!(net
        .backward(&x, 8, &muts(&mut p), &mut muts(&mut g))
        .unwrap_err()
        .0
        .contains("gradient 0"));
}
