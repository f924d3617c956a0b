//! Where a training step's time goes, phase by phase (an ignored test, run by hand on a quiet
//! machine): `cargo test --release --lib profile_phases -- --ignored --nocapture`.

use super::*;
use crate::kernels::activation::tests::fill;
use crate::kernels::parallel;

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
        team_phases(
            name,
            &mut net,
            &x,
            n,
            &labels,
            &mut params,
            &mut buffers,
            &mut grads,
            reps,
        );
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

/// The phases of a step as `step::step_on_team` runs them (forward, loss on the leader,
/// backward, optimizer split by parameter ranges), on a team of one and on one of the whole
/// pool: per-phase minimum over `reps` steps, and how much each phase gains from the team
/// (a memory-bound phase gains least).
#[allow(clippy::too_many_arguments)]
fn team_phases(
    name: &str,
    net: &mut Network<f32>,
    x: &[f32],
    n: usize,
    labels: &[i64],
    params: &mut [Vec<f32>],
    buffers: &mut [Vec<f32>],
    grads: &mut [Vec<f32>],
    reps: usize,
) {
    use crate::kernels::fused::step::{optimizer_phase_team, Extras, Optimizer};
    use crate::kernels::losses::{cross_entropy, Reduction};
    use crate::kernels::optim::Adam;
    use std::time::Instant;
    let opt = Optimizer::Adam(Adam::default());
    let mut states: Vec<Vec<f32>> = params
        .iter()
        .flat_map(|p| [vec![0.0; p.len()], vec![0.0; p.len()]])
        .collect();
    let c = net.output_dim();
    let mut rows = vec![];
    for size in [1, parallel::pool_size()] {
        let mut best = [f64::INFINITY; 4];
        parallel::with_team(size, |team| {
            for r in 0..reps + 3 {
                let t0 = Instant::now();
                let mut p: Vec<&mut [f32]> = params.iter_mut().map(|a| &mut a[..]).collect();
                let mut b: Vec<&mut [f32]> = buffers.iter_mut().map(|a| &mut a[..]).collect();
                net.forward_team(team, x, n, &p, &mut b, &[]).unwrap();
                let t1 = Instant::now();
                let (o, g) = net.output_and_grad(x, n);
                cross_entropy(o, n, c, labels, Reduction::Mean, g).unwrap();
                let t2 = Instant::now();
                let mut gs: Vec<&mut [f32]> = grads.iter_mut().map(|a| &mut a[..]).collect();
                net.backward_team(team, x, n, &p, &mut gs).unwrap();
                let t3 = Instant::now();
                let mut st: Vec<&mut [f32]> = states.iter_mut().map(|a| &mut a[..]).collect();
                let extras = Extras::plain();
                optimizer_phase_team(team, &opt, 1e-3, &extras, r as u64 + 1, &mut p, &gs, &mut st, &mut []).unwrap();
                let t4 = Instant::now();
                for (bst, t) in best.iter_mut().zip([t1 - t0, t2 - t1, t3 - t2, t4 - t3]) {
                    *bst = bst.min(t.as_secs_f64());
                }
            }
            rows.push((team.size(), best));
        });
    }
    for (size, best) in &rows {
        let gain = |k: usize| rows[0].1[k] / best[k];
        println!(
            "{name:5} team of {size}: forward {:8.1} us ({:.2}x)  loss {:6.1} us  backward {:8.1} us ({:.2}x)  optimizer {:7.1} us ({:.2}x)",
            best[0] * 1e6,
            gain(0),
            best[1] * 1e6,
            best[2] * 1e6,
            gain(2),
            best[3] * 1e6,
            gain(3)
        );
    }
}
