//! Tests of `step.rs`'s options: soft targets (the weighted kernel's probability rows), a
//! per-call momentum (OneCycle's cycled momentum / β₁) and parameter groups that keep different
//! state arrays, each against the step built from its parts.

use super::tests::{by_parts, optimizers, run_step, world, World};
use super::*;
use crate::kernels::activation::tests::fill;
use crate::kernels::fused::network::tests::{muts, refs};
use crate::kernels::fused::optimizer::*;
use crate::kernels::optim::*;

fn run_with(w: &mut World, opt: &Optimizer, step: u64, target: Target<'_, f64>, extras: Extras<'_, f64>) -> f64 {
    let n = w.x.len() / w.net.input_dim();
    let mut out = vec![0.0; n * w.net.output_dim()];
    let st = State {
        params: &mut muts(&mut w.params),
        grads: &mut muts(&mut w.grads),
        states: &mut muts(&mut w.states),
        buffers: &mut muts(&mut w.buffers),
        mu_products: &mut w.mu,
    };
    let x = w.x.clone();
    let u = w.uniforms.clone();
    train_step(
        &mut w.net,
        opt,
        0.01,
        step,
        Loss::CrossEntropy,
        &x,
        n,
        target,
        &refs(&u),
        st,
        &mut out,
        extras,
    )
    .unwrap()
}

#[test]
fn soft_targets_step_is_its_parts_and_the_weighted_kernel() {
    let (n, c) = (10, 4);
    let raw = fill(n * c, 8, 0.1, 1.0);
    let probs: Vec<f64> = raw
        .chunks(c)
        .flat_map(|r| {
            let s: f64 = r.iter().sum();
            r.iter().map(move |v| v / s).collect::<Vec<_>>()
        })
        .collect();
    for opt in optimizers() {
        let (mut a, mut b) = (world(&opt, n), world(&opt, n));
        for step in 1..=2 {
            let mut out = vec![0.0; n * c];
            let got = run_step(
                &mut a,
                &opt,
                0.01,
                step,
                Loss::CrossEntropy,
                Target::Values(&probs),
                &mut out,
            )
            .unwrap();
            let (want, want_out) = by_parts(&mut b, &opt, 0.01, step, Loss::CrossEntropy, Target::Values(&probs), n);
            assert_eq!(got.to_bits(), want.to_bits(), "{opt:?} step {step}");
            assert_eq!(out, want_out);
            assert_eq!(a.params, b.params);
            assert_eq!(a.grads, b.grads);
        }
    }
    // The soft-target loss is the weighted kernel's probability rows (the layer path's kernel).
    let z = fill(n * c, 9, -2.0, 2.0);
    let (mut g1, mut g2) = (vec![0.0; n * c], vec![0.0; n * c]);
    let a = loss_and_grad(
        Loss::CrossEntropy,
        &z,
        n,
        c,
        &Target::Values(&probs),
        Reduction::Mean,
        &mut g1,
    )
    .unwrap();
    let ce = LossFn::CrossEntropy { label_smoothing: 0.0 };
    let b = weighted_loss::<f64, i64>(ce, &z, n, c, Targets::Values(&probs), None, Reduction::Mean, &mut g2).unwrap();
    assert_eq!((a.to_bits(), g1), (b.to_bits(), g2));
}

#[test]
fn a_per_call_momentum_is_the_optimizer_with_that_momentum() {
    let n = 6;
    for opt in optimizers() {
        if matches!(opt, Optimizer::Adagrad(_)) {
            continue;
        }
        let m = 0.8;
        let keeps = opt.checked_momentum(m).is_ok();
        let (mut a, mut b) = (world(&opt, n), world(&opt, n));
        let target: Vec<i64> = (0..n as i64).map(|i| i % 4).collect();
        if !keeps {
            continue; // a momentum of 0 would need a buffer: refused (below)
        }
        for step in 1..=3 {
            let extras = Extras {
                momentum: Some(m),
                ..Extras::plain()
            };
            let va = run_with(&mut a, &opt, step, Target::Labels(&target), extras);
            let vb = run_with(
                &mut b,
                &opt.with_momentum(m),
                step,
                Target::Labels(&target),
                Extras::plain(),
            );
            assert_eq!(va.to_bits(), vb.to_bits(), "{opt:?}");
            assert_eq!(a.params, b.params, "{opt:?}");
            assert_eq!(a.states, b.states, "{opt:?}");
        }
    }
    // A momentum that would change the state arrays is refused before anything is written.
    let sgd = Optimizer::Sgd(Sgd {
        lr: 0.1,
        momentum: 0.9,
        ..Sgd::default()
    });
    let mut w = world(&sgd, n);
    let before = w.params.clone();
    let target: Vec<i64> = vec![0; n];
    let mut out = vec![0.0; n * w.net.output_dim()];
    let st = State {
        params: &mut muts(&mut w.params),
        grads: &mut muts(&mut w.grads),
        states: &mut muts(&mut w.states),
        buffers: &mut muts(&mut w.buffers),
        mu_products: &mut w.mu,
    };
    let extras = Extras {
        momentum: Some(0.0),
        ..Extras::plain()
    };
    let e = train_step(
        &mut w.net,
        &sgd,
        0.1,
        1,
        Loss::CrossEntropy,
        &w.x,
        n,
        Target::Labels(&target),
        &refs(&w.uniforms),
        st,
        &mut out,
        extras,
    )
    .unwrap_err();
    assert!(e.0.contains("state arrays"), "{}", e.0);
    assert_eq!(w.params, before);
    assert!(Optimizer::Adagrad(Adagrad::default()).checked_momentum(0.5).is_err());
}

#[test]
fn groups_may_keep_different_state_arrays() {
    // Every other parameter without momentum (no buffer): states hold only the others' buffers.
    let n = 6;
    let with = Optimizer::Sgd(Sgd {
        lr: 0.1,
        momentum: 0.9,
        ..Sgd::default()
    });
    let without = Optimizer::Sgd(Sgd {
        lr: 0.1,
        ..Sgd::default()
    });
    let mut w = world(&with, n);
    let np = w.params.len();
    let per: Vec<(Optimizer, f64)> = (0..np)
        .map(|i| (if i % 2 == 0 { with } else { without }, 1.0))
        .collect();
    w.states = (0..np)
        .filter(|i| i % 2 == 0)
        .map(|i| vec![0.0; w.params[i].len()])
        .collect();
    let mut want = world(&with, n);
    want.states = want.params.iter().map(|p| vec![0.0; p.len()]).collect();
    let target: Vec<i64> = (0..n as i64).map(|i| i % 4).collect();
    for step in 1..=3 {
        let extras = Extras {
            per_param: &per,
            ..Extras::plain()
        };
        let got = run_with(&mut w, &with, step, Target::Labels(&target), extras);
        // By hand: every parameter updated by its own optimizer (the buffers of `want` for the
        // momentum-free parameters stay unused).
        let (value, _) = {
            let ws = &mut want;
            let nn = ws.x.len() / ws.net.input_dim();
            ws.net
                .forward(
                    &ws.x,
                    nn,
                    &muts(&mut ws.params),
                    &mut muts(&mut ws.buffers),
                    &refs(&ws.uniforms),
                    true,
                )
                .unwrap();
            let c = ws.net.output_dim();
            let out = ws.net.output(&ws.x, nn).to_vec();
            let mut g = vec![0.0; nn * c];
            let v = loss_and_grad(
                Loss::CrossEntropy,
                &out,
                nn,
                c,
                &Target::Labels(&target),
                Reduction::Mean,
                &mut g,
            )
            .unwrap();
            ws.net.output_grad(nn).copy_from_slice(&g);
            ws.net
                .backward(&ws.x, nn, &muts(&mut ws.params), &mut muts(&mut ws.grads))
                .unwrap();
            for (i, (o, _)) in per.iter().enumerate() {
                let o = o.with_lr(0.01);
                let mut st = muts(&mut ws.states[i..i + o.n_states()]);
                o.update(&mut ws.params[i], &ws.grads[i], &mut st, step, 1.0).unwrap();
            }
            (v, out)
        };
        assert_eq!(got.to_bits(), value.to_bits());
        assert_eq!(w.params, want.params, "step {step}");
    }
    let kept: Vec<&Vec<f64>> = want.states.iter().step_by(2).collect();
    assert_eq!(w.states.iter().collect::<Vec<_>>(), kept);
}
