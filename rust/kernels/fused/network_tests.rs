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

/// Where a step's time goes, phase by phase, on the benchmark workloads (float32, Adam):
/// `cargo test --release --lib profile_phases -- --ignored --nocapture`. Not a correctness test.
#[test]
#[ignore]
fn profile_phases() {
    use crate::kernels::losses::{cross_entropy, Reduction};
    use crate::kernels::matmul::{gemm_into, gemm_into_banded, gemm_threads, MatRef};
    use crate::kernels::optim::{adam_step, Adam};
    use std::time::Instant;
    type Workload = (&'static str, Vec<usize>, usize, bool, Act<f32>);
    let workloads: [Workload; 5] = [
        ("tiny", vec![64, 64, 10], 32, false, Act::Relu),
        ("mlp", vec![784, 256, 128, 10], 128, false, Act::Relu),
        ("bn", vec![784, 256, 128, 10], 128, true, Act::Relu),
        (
            "snn",
            std::iter::once(784)
                .chain(std::iter::repeat_n(100, 20))
                .chain(std::iter::once(10))
                .collect(),
            128,
            false,
            Act::Selu,
        ),
        ("wide", vec![784, 1024, 1024, 10], 512, false, Act::Relu),
    ];
    for (name, sizes, n, bn, act) in workloads {
        let mut specs = vec![];
        for (i, w) in sizes.windows(2).enumerate() {
            let last = i + 2 == sizes.len();
            let a = if last || bn { Act::Identity } else { act };
            specs.push(LayerSpec {
                kind: LayerKind::Dense { bias: true, act: a },
                inp: w[0],
                out: w[1],
            });
            if bn && !last {
                specs.push(LayerSpec {
                    kind: LayerKind::BatchNorm {
                        momentum: 0.1,
                        eps: 1e-5,
                    },
                    inp: w[1],
                    out: w[1],
                });
                specs.push(LayerSpec {
                    kind: LayerKind::Activation(act),
                    inp: w[1],
                    out: w[1],
                });
            }
        }
        let mut net = Network::<f32>::new(sizes[0], specs, n).unwrap();
        let to32 = |v: Vec<f64>| v.into_iter().map(|a| a as f32).collect::<Vec<f32>>();
        let x = to32(fill(n * sizes[0], 1, -1.0, 1.0));
        let labels: Vec<i64> = (0..n as i64).map(|i| i % *sizes.last().unwrap() as i64).collect();
        let mut params: Vec<Vec<f32>> = net
            .param_shapes()
            .iter()
            .map(|s| to32(fill(s.iter().product(), 2, -0.05, 0.05)))
            .collect();
        let mut grads: Vec<Vec<f32>> = params.iter().map(|p| vec![0.0; p.len()]).collect();
        let mut m1: Vec<Vec<f32>> = grads.clone();
        let mut m2: Vec<Vec<f32>> = grads.clone();
        let mut buffers: Vec<Vec<f32>> = net.buffer_lens().iter().map(|&m| vec![1.0; m]).collect();
        let c = net.output_dim();
        let reps = if name == "wide" {
            10
        } else if name == "tiny" {
            5000
        } else {
            100
        };
        // Per-step minimum of each phase (robust to a busy machine), run as `step::train_step`
        // runs it (inside the pool when the network has parallel work), and outside the pool
        // for comparison.
        for pooled in [net.wants_pool(n), false, net.wants_pool(n)] {
            let mut best = [f64::INFINITY; 4];
            let mut steps = || {
                for r in 0..reps + 3 {
                    let t0 = Instant::now();
                    let p: Vec<&mut [f32]> = params.iter_mut().map(|a| &mut a[..]).collect();
                    let mut b: Vec<&mut [f32]> = buffers.iter_mut().map(|a| &mut a[..]).collect();
                    net.forward(&x, n, &p, &mut b, &[], true).unwrap();
                    let t1 = Instant::now();
                    let (o, g) = net.output_and_grad(&x, n);
                    cross_entropy(o, n, c, &labels, Reduction::Mean, g).unwrap();
                    let t2 = Instant::now();
                    let mut gs: Vec<&mut [f32]> = grads.iter_mut().map(|a| &mut a[..]).collect();
                    net.backward(&x, n, &p, &mut gs).unwrap();
                    let t3 = Instant::now();
                    drop(p);
                    for (((pp, gg), a), v) in params.iter_mut().zip(&grads).zip(&mut m1).zip(&mut m2) {
                        adam_step(pp, gg, a, v, None, r as u64 + 1, &Adam::default()).unwrap();
                    }
                    let t4 = Instant::now();
                    for (bst, t) in best.iter_mut().zip([t1 - t0, t2 - t1, t3 - t2, t4 - t3]) {
                        *bst = bst.min(t.as_secs_f64());
                    }
                }
            };
            if pooled {
                parallel::install(&mut steps)
            } else {
                steps()
            }
            let us = |t: f64| t * 1e6;
            println!(
                "{name:5} {} forward {:8.1} us  loss {:6.1} us  backward {:8.1} us  adam {:7.1} us  sum {:8.1} us",
                if pooled { "pooled  " } else { "unpooled" },
                us(best[0]),
                us(best[1]),
                us(best[2]),
                us(best[3]),
                us(best.iter().sum())
            );
        }
        // The whole step as `step::train_step` runs it: on a team when the network deserves
        // one, and with the team turned off (each kernel forking and joining on its own).
        let team_was = parallel::team_enabled();
        for team in [true, false, true] {
            use crate::kernels::fused::step::{train_step, Extras, Loss, Optimizer, State, Target};
            parallel::set_team_enabled(team);
            let opt = Optimizer::Adam(Adam::default());
            let mut states: Vec<Vec<f32>> = m1.iter().chain(&m2).cloned().collect();
            let ns = states.len() / 2;
            let mut ordered: Vec<&mut [f32]> = vec![];
            let (a, b) = states.split_at_mut(ns);
            for (x1, x2) in a.iter_mut().zip(b.iter_mut()) {
                ordered.push(&mut x1[..]);
                ordered.push(&mut x2[..]);
            }
            let mut out = vec![0f32; n * c];
            let mut best = f64::INFINITY;
            let mut ps: Vec<&mut [f32]> = params.iter_mut().map(|a| &mut a[..]).collect();
            let mut gs: Vec<&mut [f32]> = grads.iter_mut().map(|a| &mut a[..]).collect();
            let mut bs: Vec<&mut [f32]> = buffers.iter_mut().map(|a| &mut a[..]).collect();
            for r in 0..reps + 3 {
                let t0 = Instant::now();
                let st = State {
                    params: &mut ps,
                    grads: &mut gs,
                    states: &mut ordered,
                    buffers: &mut bs,
                    mu_products: &mut [],
                };
                let target = Target::Labels(&labels);
                train_step(
                    &mut net,
                    &opt,
                    1e-3,
                    r as u64 + 1,
                    Loss::CrossEntropy,
                    &x,
                    n,
                    target,
                    &[],
                    st,
                    &mut out,
                    Extras::plain(),
                )
                .unwrap();
                best = best.min(t0.elapsed().as_secs_f64());
            }
            println!(
                "{name:5} train_step, team {} (team size {}): {:8.1} us",
                if team { "on " } else { "off" },
                net.team_size(n),
                best * 1e6
            );
        }
        parallel::set_team_enabled(team_was);
        let mut shapes = vec![];
        for w in sizes.windows(2) {
            shapes.push(("fwd x.W", n, w[0], w[1], false, false));
            shapes.push(("dW = xT.dz", w[0], n, w[1], true, false));
            shapes.push(("dx = dz.WT", n, w[1], w[0], false, true));
        }
        for (what, m, k, nn, ta, tb_) in shapes {
            let a = vec![0.5f32; m * k];
            let b = vec![0.25f32; k * nn];
            let mut cc = vec![0f32; m * nn];
            let am = if ta {
                MatRef::row_major(&a, k, m).unwrap().t()
            } else {
                MatRef::row_major(&a, m, k).unwrap()
            };
            let bm = if tb_ {
                MatRef::row_major(&b, nn, k).unwrap().t()
            } else {
                MatRef::row_major(&b, k, nn).unwrap()
            };
            let reps = (2e8 / (m * k * nn) as f64).clamp(3.0, 20000.0) as usize;
            let th = gemm_threads(m, k, nn);
            let mut line = format!("        {what:11} {m:4}x{k:4}x{nn:4}");
            for (label, threads, banded) in [
                ("1 thread", 1, false),
                ("gemm's threads", th, false),
                ("bands", th, true),
            ] {
                let run = |cc: &mut [f32]| {
                    if banded {
                        gemm_into_banded(cc, am, bm, false, threads)
                    } else {
                        gemm_into(cc, am, bm, false, threads)
                    }
                };
                run(&mut cc).unwrap();
                let t0 = Instant::now();
                for _ in 0..reps {
                    run(&mut cc).unwrap();
                }
                let t = t0.elapsed().as_secs_f64() / reps as f64;
                line += &format!(
                    "  {label} ({threads}): {:6.1} GFLOP/s",
                    2.0 * (m * k * nn) as f64 / t / 1e9
                );
            }
            println!("{line}");
        }
    }
}
