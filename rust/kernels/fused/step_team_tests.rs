//! Tests of the team step (`team.rs`, `network_team.rs`, `optimizer_phase_team`): on a
//! network whose layers split across a team, a step on a team of 1, 2 or 3 members gives the
//! bits of the serial step built from its parts (forward, loss, backward, one optimizer kernel
//! per parameter), for several optimizers, parameter groups and clipping; and a run of steps
//! (`epoch::train_epoch`, whose batches differ in size) gives the same bits for any pool size.

use super::*;
use crate::kernels::activation::tests::fill;
use crate::kernels::activation::Act;
use crate::kernels::fused::epoch::{train_epoch, EpochArgs, EpochWs, Progress};
use crate::kernels::fused::network::tests::{inputs, muts, refs};
use crate::kernels::fused::network::{LayerKind, LayerSpec};
use crate::kernels::fused::optimizer::*;
use crate::kernels::optim::*;
use crate::kernels::team::with_team;

const INPUT: usize = 96;
const CLASSES: usize = 10;

/// Every kind the team splits (Dense with and without bias and activation, elementwise
/// activations, both dropouts, BatchNorm: before a Dense layer, before one activation and
/// before two, which join its phases) at sizes that split.
/// The 256-wide layer's rows are 2 KiB apart, so its W (forward) and dz (dW) are packed once
/// for the team and shared, as every Wᵀ (dx) is.
fn big_layers() -> Vec<LayerSpec<f64>> {
    use LayerKind::*;
    let spec = |kind, inp, out| LayerSpec { kind, inp, out };
    vec![
        spec(
            Dense {
                bias: true,
                act: Act::Relu,
            },
            INPUT,
            128,
        ),
        // Two Dense layers in a row: the team's forward runs them as one segment.
        spec(
            Dense {
                bias: false,
                act: Act::Relu,
            },
            128,
            128,
        ),
        spec(Dropout { rate: 0.3 }, 128, 128),
        spec(
            BatchNorm {
                momentum: 0.1,
                eps: 1e-5,
            },
            128,
            128,
        ),
        spec(Activation(Act::Relu), 128, 128),
        spec(
            Dense {
                bias: true,
                act: Act::Tanh,
            },
            128,
            128,
        ),
        spec(Activation(Act::Selu), 128, 128),
        spec(
            AlphaDropout {
                rate: 0.2,
                a: 0.9,
                b: 0.3,
                alpha_p: -1.7580993408473766,
            },
            128,
            128,
        ),
        spec(
            BatchNorm {
                momentum: 0.1,
                eps: 1e-5,
            },
            128,
            128,
        ),
        spec(
            Dense {
                bias: false,
                act: Act::Identity,
            },
            128,
            100,
        ),
        spec(Activation(Act::Sigmoid), 100, 100),
        spec(
            Dense {
                bias: true,
                act: Act::Elu(0.7),
            },
            100,
            256,
        ),
        spec(
            BatchNorm {
                momentum: 0.2,
                eps: 1e-3,
            },
            256,
            256,
        ),
        spec(Activation(Act::Relu), 256, 256),
        spec(Activation(Act::Tanh), 256, 256),
        spec(
            Dense {
                bias: true,
                act: Act::Identity,
            },
            256,
            CLASSES,
        ),
    ]
}

struct Model {
    net: Network<f64>,
    x: Vec<f64>,
    params: Vec<Vec<f64>>,
    grads: Vec<Vec<f64>>,
    states: Vec<Vec<f64>>,
    buffers: Vec<Vec<f64>>,
    uniforms: Vec<Vec<f64>>,
    mu: Vec<f64>,
}

fn model(opt: &Optimizer, n: usize) -> Model {
    let net = Network::new(INPUT, big_layers(), n).unwrap();
    let (x, params, buffers, uniforms) = inputs(&net, n, 5);
    let grads = params.iter().map(|p| vec![f64::NAN; p.len()]).collect();
    let states = params
        .iter()
        .flat_map(|p| (0..opt.n_states()).map(|k| fill(p.len(), 60 + k as u64, 0.0, 0.1)))
        .collect();
    let mu = if opt.uses_mu_product() {
        vec![1.0; params.len()]
    } else {
        vec![]
    };
    Model {
        net,
        x,
        params,
        grads,
        states,
        buffers,
        uniforms,
        mu,
    }
}

fn bits(m: &Model) -> Vec<Vec<u64>> {
    let all = m
        .params
        .iter()
        .chain(&m.grads)
        .chain(&m.states)
        .chain(&m.buffers)
        .chain(std::iter::once(&m.mu));
    all.map(|v| v.iter().map(|x| x.to_bits()).collect()).collect()
}

/// The serial forward, cross-entropy and backward: leaves the gradients in `m.grads`, returns
/// the loss.
fn forward_backward(m: &mut Model, labels: &[i64]) -> f64 {
    let n = labels.len();
    let net = &mut m.net;
    net.forward(
        &m.x,
        n,
        &muts(&mut m.params),
        &mut muts(&mut m.buffers),
        &refs(&m.uniforms),
        true,
    )
    .unwrap();
    let out = net.output(&m.x, n).to_vec();
    let mut g = vec![0.0; n * CLASSES];
    let value = cross_entropy(&out, n, CLASSES, labels, Reduction::Mean, &mut g).unwrap();
    net.output_grad(n).copy_from_slice(&g);
    net.backward(&m.x, n, &muts(&mut m.params), &mut muts(&mut m.grads))
        .unwrap();
    value
}

/// The serial step from its parts, with the same extras.
fn by_parts(m: &mut Model, opt: &Optimizer, lr: f64, step: u64, labels: &[i64], extras: &Extras<'_, f64>) -> f64 {
    let value = forward_backward(m, labels);
    if extras.clip != Clip::None {
        clip_gradients(&mut muts(&mut m.grads), extras.clip).unwrap();
    }
    let ns = opt.n_states();
    for i in 0..m.params.len() {
        let o = if extras.per_param.is_empty() {
            opt.with_lr(lr)
        } else {
            extras.param_opt(i, lr)
        };
        let mut st = muts(&mut m.states[i * ns..(i + 1) * ns]);
        let mu = m.mu.get(i).copied().unwrap_or(1.0);
        let new_mu = o.update(&mut m.params[i], &m.grads[i], &mut st, step, mu).unwrap();
        if let Some(v) = m.mu.get_mut(i) {
            *v = new_mu;
        }
    }
    value
}

/// One step on a team of up to `want` members; returns the loss and the team's size.
fn on_team(
    m: &mut Model,
    want: usize,
    opt: &Optimizer,
    lr: f64,
    step: u64,
    labels: &[i64],
    extras: Extras<'_, f64>,
) -> (f64, usize) {
    let n = labels.len();
    let mut out = vec![0.0; n * CLASSES];
    let st = State {
        params: &mut muts(&mut m.params),
        grads: &mut muts(&mut m.grads),
        states: &mut muts(&mut m.states),
        buffers: &mut muts(&mut m.buffers),
        mu_products: &mut m.mu,
    };
    let (x, u) = (&m.x, refs(&m.uniforms));
    let net = &mut m.net;
    with_team(want, |team| {
        let v = train_step_on(
            Some(team),
            net,
            opt,
            lr,
            step,
            Loss::CrossEntropy,
            x,
            n,
            Target::Labels(labels),
            &u,
            st,
            &mut out,
            extras,
        )
        .unwrap();
        (v, team.size())
    })
}

#[test]
fn the_network_splits_and_tiny_networks_do_not() {
    let net = Network::new(INPUT, big_layers(), 256).unwrap();
    parallel::set_team_enabled(true);
    parallel::set_num_threads(3).unwrap();
    // (Another test may resize the pool meanwhile; a size of 1 is then the answer.)
    let size = net.team_size(256);
    assert!(size == 3 || parallel::pool_size() < 3, "team size {size}");
    let tiny = Network::<f32>::new(
        64,
        vec![
            LayerSpec {
                kind: LayerKind::Dense {
                    bias: true,
                    act: Act::Relu,
                },
                inp: 64,
                out: 64,
            },
            LayerSpec {
                kind: LayerKind::Dense {
                    bias: true,
                    act: Act::Identity,
                },
                inp: 64,
                out: 10,
            },
        ],
        32,
    )
    .unwrap();
    assert_eq!(
        tiny.team_size(32),
        1,
        "the 64-64-10 network at batch 32 never pays for a team"
    );
}

#[test]
fn a_team_step_is_bit_identical_to_the_serial_step_for_any_team_size() {
    let opts = [
        Optimizer::Adam(Adam {
            amsgrad: true,
            weight_decay: 0.1,
            ..Adam::default()
        }),
        Optimizer::NAdam(NAdam::default()),
        Optimizer::Sgd(Sgd {
            lr: 0.1,
            momentum: 0.9,
            nesterov: true,
            ..Sgd::default()
        }),
        Optimizer::RMSprop(RMSprop {
            momentum: 0.9,
            centered: true,
            ..RMSprop::default()
        }),
    ];
    let mut multi = 0;
    for (k, opt) in opts.iter().enumerate() {
        // 256 rows: four 64-row blocks; 200 rows: a ragged last block and band.
        for n in [256, 200] {
            let labels: Vec<i64> = (0..n as i64).map(|i| (i * 7 + k as i64) % CLASSES as i64).collect();
            let groups: Vec<(Optimizer, f64)> = (0..model(opt, n).params.len())
                .map(|i| (*opt, if i % 3 == 0 { 0.5 } else { 1.0 }))
                .collect();
            let extras = |variant: usize| Extras {
                clip: if variant == 1 {
                    Clip::GlobalNorm(0.5)
                } else {
                    Clip::None
                },
                per_param: if variant == 2 { &groups[..] } else { &[] },
                ..Extras::plain()
            };
            for variant in 0..3 {
                let mut want = model(opt, n);
                let mut got: Vec<Model> = (0..3).map(|_| model(opt, n)).collect();
                for step in 1..=2 {
                    let lr = 0.01 * step as f64;
                    let v = by_parts(&mut want, opt, lr, step, &labels, &extras(variant));
                    for (t, m) in got.iter_mut().enumerate() {
                        if parallel::pool_size() < 3 {
                            parallel::set_num_threads(3).unwrap();
                        }
                        let (g, size) = on_team(m, t + 1, opt, lr, step, &labels, extras(variant));
                        multi += (size > 1) as usize;
                        // The 256-wide layer's dz and the 100-wide one's Wᵀ were packed together.
                        let both = crate::kernels::matmul::panels_len::<f64>(n, 256)
                            + crate::kernels::matmul::panels_len::<f64>(256, 100);
                        assert!(
                            size == 1 || m.net.team_panels_len() >= both,
                            "team {size}: no shared packing"
                        );
                        assert_eq!(
                            g.to_bits(),
                            v.to_bits(),
                            "{opt:?} n={n} variant {variant} team {size} step {step}"
                        );
                        assert!(
                            bits(m) == bits(&want),
                            "{opt:?} n={n} variant {variant} team {size} step {step}"
                        );
                    }
                }
            }
        }
    }
    assert!(multi > 0, "no step ran on a team of more than one member");
}

#[test]
fn a_run_of_steps_is_bit_identical_for_any_pool_size() {
    let opt = Optimizer::Adam(Adam::default());
    let rows = 600; // batches of 256, 256 and 88 rows
    let run = |threads: usize| -> (Vec<Vec<u64>>, Progress) {
        let mut m = model(&opt, 256);
        let x = fill(rows * INPUT, 9, -1.5, 1.5);
        let labels: Vec<i64> = (0..rows as i64).map(|i| (i * 3) % CLASSES as i64).collect();
        let order: Vec<i64> = (0..rows as i64).map(|i| (i * 7) % rows as i64).collect();
        let per_row: usize = m.net.uniform_widths().iter().sum();
        let uniforms = fill(rows * per_row, 10, 0.0, 1.0);
        let args = EpochArgs {
            x: &x,
            rows,
            target: Target::Labels(&labels),
            order: &order,
            batch: 256,
            first: 0,
            count: 3,
            uniforms: &uniforms,
            lrs: None,
            momentums: None,
            lr: 0.01,
            step0: 1,
            loss_sum0: 0.0,
            weights: None,
            loss_fn: None,
            clip: Clip::None,
            per_param: &[],
            param_lrs: None,
        };
        // The team on (the default is off): the run forms one team for its steps.
        parallel::set_team_enabled(true);
        parallel::set_num_threads(threads).unwrap();
        let mut ws = EpochWs::new();
        let mut out = vec![0.0; 256 * CLASSES];
        let mut progress = Progress::default();
        let st = State {
            params: &mut muts(&mut m.params),
            grads: &mut muts(&mut m.grads),
            states: &mut muts(&mut m.states),
            buffers: &mut muts(&mut m.buffers),
            mu_products: &mut m.mu,
        };
        train_epoch(
            &mut m.net,
            &opt,
            Loss::CrossEntropy,
            &args,
            st,
            &mut ws,
            &mut out,
            &mut progress,
            &mut |_| false,
        )
        .unwrap();
        (bits(&m), progress)
    };
    let (one, p1) = run(1);
    assert_eq!(p1.steps, 3);
    for t in [2, 3] {
        let (got, p) = run(t);
        assert_eq!(p.loss_sum.to_bits(), p1.loss_sum.to_bits(), "threads={t}");
        assert_eq!(p.correct, p1.correct);
        assert!(got == one, "threads={t}");
    }
}

/// Parameter groups that keep different state arrays (SGD with momentum in some groups, without
/// in others: one buffer or none per parameter, stored one parameter after another) give the
/// serial bits on a team too: each member finds its parameters' states at their own offsets.
#[test]
fn groups_with_different_state_arrays_are_bit_identical_on_a_team() {
    let with = Optimizer::Sgd(Sgd {
        lr: 0.1,
        momentum: 0.9,
        ..Sgd::default()
    });
    let without = Optimizer::Sgd(Sgd {
        lr: 0.1,
        ..Sgd::default()
    });
    let n = 200;
    let labels: Vec<i64> = (0..n as i64).map(|i| (i * 5) % CLASSES as i64).collect();
    let np = model(&with, n).params.len();
    let groups: Vec<(Optimizer, f64)> = (0..np)
        .map(|i| if i % 2 == 0 { (with, 1.0) } else { (without, 0.5) })
        .collect();
    // One momentum buffer for the even parameters, none for the odd ones.
    let fresh = || {
        let mut m = model(&with, n);
        m.states = (0..np)
            .filter(|i| i % 2 == 0)
            .map(|i| fill(m.params[i].len(), 70 + i as u64, 0.0, 0.1))
            .collect();
        m
    };
    let extras = || Extras {
        per_param: &groups[..],
        ..Extras::plain()
    };
    let mut want = fresh();
    let mut got: Vec<Model> = (0..3).map(|_| fresh()).collect();
    let mut multi = 0;
    for step in 1..=2u64 {
        let lr = 0.05;
        // The serial step from its parts, each parameter's states at its own offset.
        {
            let m = &mut want;
            forward_backward(m, &labels);
            let ex = extras();
            let mut at = 0;
            for i in 0..np {
                let o = ex.param_opt(i, lr);
                let k = o.n_states();
                let mut st = muts(&mut m.states[at..at + k]);
                at += k;
                o.update(&mut m.params[i], &m.grads[i], &mut st, step, 1.0).unwrap();
            }
        }
        for (t, m) in got.iter_mut().enumerate() {
            if parallel::pool_size() < 3 {
                parallel::set_num_threads(3).unwrap();
            }
            let (_, size) = on_team(m, t + 1, &with, lr, step, &labels, extras());
            multi += (size > 1) as usize;
            assert!(bits(m) == bits(&want), "team {size} step {step}");
        }
    }
    assert!(multi > 0, "no step ran on a team of more than one member");
}
