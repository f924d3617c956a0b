//! Tests of `step.rs`: a step is exactly its parts (forward, loss, backward, one optimizer
//! kernel per parameter) for every optimizer and loss; errors write nothing; evaluation.

use super::*;
use crate::kernels::activation::tests::fill;
use crate::kernels::activation::Act;
use crate::kernels::fused::evaluate::*;
use crate::kernels::fused::network::tests::{every_layer, inputs, muts, refs};
use crate::kernels::fused::network::{LayerKind, LayerSpec};
use crate::kernels::fused::optimizer::*;
use crate::kernels::optim::*;

pub(super) fn optimizers() -> Vec<Optimizer> {
    vec![
        Optimizer::Sgd(Sgd {
            lr: 0.1,
            ..Sgd::default()
        }),
        Optimizer::Sgd(Sgd {
            lr: 0.1,
            momentum: 0.9,
            nesterov: true,
            weight_decay: 1e-2,
            ..Sgd::default()
        }),
        Optimizer::Sgd(Sgd {
            lr: 0.1,
            momentum: 0.5,
            dampening: 0.1,
            maximize: true,
            ..Sgd::default()
        }),
        Optimizer::Adagrad(Adagrad {
            lr_decay: 0.01,
            weight_decay: 0.1,
            ..Adagrad::default()
        }),
        Optimizer::RMSprop(RMSprop::default()),
        Optimizer::RMSprop(RMSprop {
            momentum: 0.9,
            centered: true,
            weight_decay: 0.01,
            ..RMSprop::default()
        }),
        Optimizer::Adam(Adam::default()),
        Optimizer::Adam(Adam {
            amsgrad: true,
            weight_decay: 0.1,
            maximize: true,
            ..Adam::default()
        }),
        Optimizer::Adam(Adam::adamw()),
        Optimizer::NAdam(NAdam::default()),
        Optimizer::NAdam(NAdam {
            decoupled_weight_decay: true,
            weight_decay: 0.1,
            ..NAdam::default()
        }),
    ]
}

pub(super) struct World {
    pub(super) net: Network<f64>,
    pub(super) x: Vec<f64>,
    pub(super) params: Vec<Vec<f64>>,
    pub(super) grads: Vec<Vec<f64>>,
    pub(super) states: Vec<Vec<f64>>,
    pub(super) buffers: Vec<Vec<f64>>,
    pub(super) uniforms: Vec<Vec<f64>>,
    pub(super) mu: Vec<f64>,
}

pub(super) fn world(opt: &Optimizer, n: usize) -> World {
    let net = Network::new(5, every_layer(), n).unwrap();
    let (x, params, buffers, uniforms) = inputs(&net, n, 11);
    let grads = params.iter().map(|p| vec![f64::NAN; p.len()]).collect();
    let states = params
        .iter()
        .flat_map(|p| {
            (0..opt.n_states())
                .map(|k| {
                    if k == 0 {
                        fill(p.len(), 50, 0.0, 0.1)
                    } else {
                        vec![0.0; p.len()]
                    }
                })
                .collect::<Vec<_>>()
        })
        .collect();
    let mu = if opt.uses_mu_product() {
        vec![1.0; params.len()]
    } else {
        vec![]
    };
    World {
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

pub(super) fn run_step(
    w: &mut World,
    opt: &Optimizer,
    lr: f64,
    step: u64,
    loss: Loss,
    target: Target<'_, f64>,
    out: &mut [f64],
) -> Result<f64, ShapeError> {
    let n = w.x.len() / w.net.input_dim();
    let st = State {
        params: &mut muts(&mut w.params),
        grads: &mut muts(&mut w.grads),
        states: &mut muts(&mut w.states),
        buffers: &mut muts(&mut w.buffers),
        mu_products: &mut w.mu,
    };
    train_step(
        &mut w.net,
        opt,
        lr,
        step,
        loss,
        &w.x,
        n,
        target,
        &refs(&w.uniforms),
        st,
        out,
        Extras::plain(),
    )
}

/// The same step from its parts.
pub(super) fn by_parts(
    w: &mut World,
    opt: &Optimizer,
    lr: f64,
    step: u64,
    loss: Loss,
    target: Target<'_, f64>,
    n: usize,
) -> (f64, Vec<f64>) {
    w.net
        .forward(
            &w.x,
            n,
            &muts(&mut w.params),
            &mut muts(&mut w.buffers),
            &refs(&w.uniforms),
            true,
        )
        .unwrap();
    let out = w.net.output(&w.x, n).to_vec();
    let c = w.net.output_dim();
    let mut g = vec![0.0; n * c];
    let value = loss_and_grad(loss, &out, n, c, &target, Reduction::Mean, &mut g).unwrap();
    w.net.output_grad(n).copy_from_slice(&g);
    w.net
        .backward(&w.x, n, &muts(&mut w.params), &mut muts(&mut w.grads))
        .unwrap();
    let o = opt.with_lr(lr);
    let ns = o.n_states();
    for i in 0..w.params.len() {
        let mut st = muts(&mut w.states[i * ns..(i + 1) * ns]);
        let mu = w.mu.get(i).copied().unwrap_or(1.0);
        let m = o.update(&mut w.params[i], &w.grads[i], &mut st, step, mu).unwrap();
        if let Some(v) = w.mu.get_mut(i) {
            *v = m;
        }
    }
    (value, out)
}

#[test]
fn a_step_is_exactly_its_parts_for_every_optimizer_and_loss() {
    let n = 10;
    let c = 4;
    let labels: Vec<i64> = (0..n as i64).map(|i| (i * 7) % c as i64).collect();
    let values = fill(n * c, 3, 0.0, 1.0);
    for opt in optimizers() {
        for loss in [Loss::CrossEntropy, Loss::BinaryCrossEntropy, Loss::Mse] {
            let target = || {
                if loss == Loss::CrossEntropy {
                    Target::Labels(&labels[..])
                } else {
                    Target::Values(&values[..])
                }
            };
            let (mut a, mut b) = (world(&opt, n), world(&opt, n));
            for step in 1..=3 {
                let lr = 0.01 * step as f64; // a schedule: the rate changes between steps
                let mut out = vec![0.0; n * c];
                let got = run_step(&mut a, &opt, lr, step, loss, target(), &mut out).unwrap();
                let (want, want_out) = by_parts(&mut b, &opt, lr, step, loss, target(), n);
                assert_eq!(got.to_bits(), want.to_bits(), "{opt:?} {loss:?} step {step}");
                assert_eq!(out, want_out);
                let bits = |w: &World| -> Vec<Vec<u64>> {
                    let all = w
                        .params
                        .iter()
                        .chain(&w.grads)
                        .chain(&w.states)
                        .chain(&w.buffers)
                        .chain(std::iter::once(&w.mu));
                    all.map(|v| v.iter().map(|x| x.to_bits()).collect()).collect()
                };
                assert!(bits(&a) == bits(&b), "{opt:?} {loss:?} step {step}");
            }
            if opt.uses_mu_product() {
                assert!(a.mu.iter().all(|&m| m < 1.0), "NAdam advances mu_product");
            }
        }
    }
}

#[test]
fn training_lowers_the_loss() {
    let opt = Optimizer::Adam(Adam {
        lr: 1e-2,
        ..Adam::default()
    });
    let n = 16;
    let mut w = world(&opt, n);
    let specs = vec![
        LayerSpec {
            kind: LayerKind::Dense {
                bias: true,
                act: Act::Relu,
            },
            inp: 5,
            out: 16,
        },
        LayerSpec {
            kind: LayerKind::Dense {
                bias: true,
                act: Act::Identity,
            },
            inp: 16,
            out: 4,
        },
    ];
    w.net = Network::new(5, specs, n).unwrap();
    let (x, params, _, _) = inputs(&w.net, n, 12);
    w.grads = params.iter().map(|p| vec![0.0; p.len()]).collect();
    w.states = params.iter().flat_map(|p| vec![vec![0.0; p.len()]; 2]).collect();
    (w.x, w.params, w.buffers, w.uniforms) = (x, params, vec![], vec![]);
    let labels: Vec<i64> = (0..n as i64).map(|i| i % 4).collect();
    let mut out = vec![0.0; n * 4];
    let first = run_step(
        &mut w,
        &opt,
        1e-2,
        1,
        Loss::CrossEntropy,
        Target::Labels(&labels),
        &mut out,
    )
    .unwrap();
    let mut last = first;
    for t in 2..=200 {
        last = run_step(
            &mut w,
            &opt,
            1e-2,
            t,
            Loss::CrossEntropy,
            Target::Labels(&labels),
            &mut out,
        )
        .unwrap();
    }
    assert!(last < 0.5 * first, "loss {first} -> {last}");
}

#[test]
fn errors_are_found_before_anything_is_written() {
    let opt = Optimizer::Sgd(Sgd {
        lr: 0.1,
        momentum: 0.9,
        ..Sgd::default()
    });
    let n = 6;
    let labels: Vec<i64> = vec![0, 1, 2, 3, 0, 1];
    let bad: Vec<i64> = vec![0, 1, 2, 4, 0, 1];
    let mut w = world(&opt, n);
    let snapshot = |w: &World| (w.params.clone(), w.states.clone(), w.buffers.clone());
    let before = snapshot(&w);
    let mut out = vec![0.0; n * 4];
    let lab = Target::Labels(&labels[..]);
    let cases: Vec<(Result<f64, ShapeError>, &str)> = vec![
        (
            run_step(&mut w, &opt, 0.1, 1, Loss::CrossEntropy, Target::Labels(&bad), &mut out),
            "y[3] = 4",
        ),
        (
            run_step(&mut w, &opt, -0.1, 1, Loss::CrossEntropy, lab, &mut out),
            "'lr'",
        ),
        (
            run_step(&mut w, &opt, f64::NAN, 1, Loss::CrossEntropy, lab, &mut out),
            "'lr'",
        ),
        (
            run_step(&mut w, &opt, 0.1, 0, Loss::CrossEntropy, lab, &mut out),
            "'step'",
        ),
        (
            run_step(&mut w, &opt, 0.1, 1, Loss::Mse, lab, &mut out),
            "float targets",
        ),
        (
            run_step(
                &mut w,
                &opt,
                0.1,
                1,
                Loss::CrossEntropy,
                Target::Labels(&labels[1..]),
                &mut out,
            ),
            "'y'",
        ),
        (
            run_step(&mut w, &opt, 0.1, 1, Loss::CrossEntropy, lab, &mut out[1..]),
            "'out'",
        ),
    ];
    for (r, want) in cases {
        let e = r.unwrap_err().0;
        assert!(e.contains(want), "{e} should mention {want}");
    }
    w.states.pop();
    let e = run_step(&mut w, &opt, 0.1, 1, Loss::CrossEntropy, lab, &mut out)
        .unwrap_err()
        .0;
    assert!(e.contains("optimizer state"), "{e}");
    let mut w2 = world(&opt, n);
    w2.states[3].pop();
    assert!(run_step(&mut w2, &opt, 0.1, 1, Loss::CrossEntropy, lab, &mut out)
        .unwrap_err()
        .0
        .contains("optimizer state 3"));
    let nadam = Optimizer::NAdam(NAdam::default());
    let mut w3 = world(&nadam, n);
    w3.mu[0] = 1.5;
    assert!(run_step(&mut w3, &nadam, 0.1, 1, Loss::CrossEntropy, lab, &mut out)
        .unwrap_err()
        .0
        .contains("mu_product"));
    w.states.push(vec![]);
    let (p, _, b) = snapshot(&w);
    assert_eq!((p, b), (before.0, before.2), "nothing written");
}

#[test]
fn evaluation_sums_batches_and_counts_correct_predictions() {
    let specs = vec![
        LayerSpec {
            kind: LayerKind::Dense {
                bias: true,
                act: Act::Tanh,
            },
            inp: 3,
            out: 6,
        },
        LayerSpec {
            kind: LayerKind::BatchNorm {
                momentum: 0.1,
                eps: 1e-5,
            },
            inp: 6,
            out: 6,
        },
        LayerSpec {
            kind: LayerKind::Dropout { rate: 0.5 },
            inp: 6,
            out: 6,
        },
        LayerSpec {
            kind: LayerKind::Dense {
                bias: true,
                act: Act::Identity,
            },
            inp: 6,
            out: 3,
        },
    ];
    let n = 23;
    let mut net = Network::new(3, specs, 5).unwrap();
    let (x, mut params, mut buffers, _) = inputs(&net, n, 8);
    let labels: Vec<i64> = (0..n as i64).map(|i| i % 3).collect();
    let targets = fill(n * 3, 9, 0.0, 1.0);
    let mut out = vec![0.0; n * 3];
    let p = muts(&mut params);
    let ev = evaluate(
        &mut net,
        &x,
        n,
        4,
        &p,
        &mut muts(&mut buffers),
        Some((Loss::CrossEntropy, Target::Labels(&labels))),
        Some(&mut out),
    )
    .unwrap();
    // One batch with all rows (a bigger workspace) gives the same outputs.
    let mut big = Network::new(3, net.specs().to_vec(), n).unwrap();
    let mut full = vec![0.0; n * 3];
    evaluate(&mut big, &x, n, n, &p, &mut muts(&mut buffers), None, Some(&mut full)).unwrap();
    for (a, b) in out.iter().zip(&full) {
        assert!((a - b).abs() < 1e-13);
    }
    let mut want_loss = 0.0;
    let mut want_correct = 0;
    for r0 in (0..n).step_by(4) {
        let r1 = (r0 + 4).min(n);
        let mut g = vec![0.0; (r1 - r0) * 3];
        want_loss += cross_entropy(
            &out[r0 * 3..r1 * 3],
            r1 - r0,
            3,
            &labels[r0..r1],
            Reduction::Sum,
            &mut g,
        )
        .unwrap();
    }
    for i in 0..n {
        let row = &out[i * 3..i * 3 + 3];
        let best = (0..3).fold(0, |b, j| if row[j] > row[b] { j } else { b });
        want_correct += (best as i64 == labels[i]) as usize;
    }
    assert_eq!((ev.loss_sum, ev.correct, ev.count), (want_loss, want_correct, n));
    let ev = evaluate(
        &mut net,
        &x,
        n,
        7,
        &p,
        &mut muts(&mut buffers),
        Some((Loss::BinaryCrossEntropy, Target::Values(&targets))),
        None,
    )
    .unwrap();
    let want = out
        .iter()
        .zip(&targets)
        .filter(|(&o, &t)| (o > 0.0) == (t >= 0.5))
        .count();
    assert_eq!((ev.correct, ev.count), (want, n * 3));
    let ev = evaluate(
        &mut net,
        &x,
        n,
        7,
        &p,
        &mut muts(&mut buffers),
        Some((Loss::Mse, Target::Values(&targets))),
        None,
    )
    .unwrap();
    let want: f64 = out.iter().zip(&targets).map(|(o, t)| (o - t) * (o - t)).sum();
    assert!((ev.loss_sum - want).abs() < 1e-12 && ev.count == 0);
    assert!(evaluate(&mut net, &x, n, 0, &p, &mut muts(&mut buffers), None, None).is_err());
    assert!(evaluate(
        &mut net,
        &x,
        n,
        4,
        &p,
        &mut muts(&mut buffers),
        Some((Loss::CrossEntropy, Target::Labels(&labels[1..]))),
        None
    )
    .is_err());
}

#[test]
fn argmax_is_numpys_first_maximum_or_first_nan() {
    let nan = f64::NAN;
    let cases: [(&[f64], usize); 7] = [
        (&[1.0, 3.0, 3.0, 2.0], 1),
        (&[nan, 5.0], 0),
        (&[1.0, nan, 5.0, nan], 1),
        (&[2.0, 5.0, nan], 2),
        (&[f64::NEG_INFINITY, f64::NEG_INFINITY], 0),
        (&[-0.0, 0.0], 0),
        (&[], 0),
    ];
    for (row, want) in cases {
        assert_eq!(np_argmax(row), want, "{row:?}");
    }
    // Against the definition, on rows with ties, infinities and NaNs in every position.
    let pool = [0.5, -1.0, 0.5, f64::INFINITY, nan, -0.0];
    for code in 0..6usize.pow(4) {
        let row: Vec<f64> = (0..4).map(|d| pool[code / 6usize.pow(d) % 6]).collect();
        let want = row.iter().position(|v| v.is_nan()).unwrap_or_else(|| {
            let top = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            row.iter().position(|&v| v == top).unwrap()
        });
        assert_eq!(np_argmax(&row), want, "{row:?}");
    }
}
