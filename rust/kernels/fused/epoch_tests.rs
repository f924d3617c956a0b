//! Tests of `epoch.rs`: a run is exactly its steps (the same bits as `train_step` on batches
//! gathered by hand), its sums are `fit`'s, a stop leaves whole steps, bad arguments write nothing.

use super::*;
use crate::kernels::activation::tests::fill;
use crate::kernels::fused::network::tests::{every_layer, inputs, muts};
use crate::kernels::fused::step::train_step;
use crate::kernels::optim::Adam;

const ROWS: usize = 23;
const BATCH: usize = 5;

struct World {
    net: Network<f64>,
    x: Vec<f64>,
    params: Vec<Vec<f64>>,
    grads: Vec<Vec<f64>>,
    states: Vec<Vec<f64>>,
    buffers: Vec<Vec<f64>>,
}

fn world() -> World {
    let net = Network::new(5, every_layer(), 1).unwrap();
    let (x, params, buffers, _) = inputs(&net, ROWS, 7);
    let grads = params.iter().map(|p| vec![0.0; p.len()]).collect();
    let states = params
        .iter()
        .flat_map(|p| [vec![0.0; p.len()], vec![0.0; p.len()]])
        .collect();
    World {
        net,
        x,
        params,
        grads,
        states,
        buffers,
    }
}

fn order() -> Vec<i64> {
    (0..ROWS as i64).map(|i| (i * 7 + 3) % ROWS as i64).collect()
}

fn adam() -> Optimizer {
    Optimizer::Adam(Adam::default())
}

/// The same batches, one `train_step` each, gathered by hand; returns the epoch's sums.
fn by_steps(
    w: &mut World,
    loss: Loss,
    target: Target<'_, f64>,
    steps: usize,
    uniforms: &[f64],
    lrs: &[f64],
) -> Progress {
    let (d, c) = (w.net.input_dim(), w.net.output_dim());
    let ord = order();
    let widths = w.net.uniform_widths().to_vec();
    let mut p = Progress::default();
    let mut at = 0;
    for (s, idx) in ord.chunks(BATCH).take(steps).enumerate() {
        let n = idx.len();
        let xb: Vec<f64> = idx
            .iter()
            .flat_map(|&i| w.x[i as usize * d..(i as usize + 1) * d].to_vec())
            .collect();
        let (lb, vb): (Vec<i64>, Vec<f64>) = match target {
            Target::Labels(l) => (idx.iter().map(|&i| l[i as usize]).collect(), vec![]),
            Target::Values(v) => (
                vec![],
                idx.iter()
                    .flat_map(|&i| v[i as usize * c..(i as usize + 1) * c].to_vec())
                    .collect(),
            ),
        };
        let tb = if lb.is_empty() {
            Target::Values(&vb[..])
        } else {
            Target::Labels(&lb[..])
        };
        let mut us: Vec<&[f64]> = vec![];
        for &wd in &widths {
            us.push(&uniforms[at..at + n * wd]);
            at += n * wd;
        }
        w.net.reserve(n);
        let mut out = vec![0.0; n * c];
        let st = State {
            params: &mut muts(&mut w.params),
            grads: &mut muts(&mut w.grads),
            states: &mut muts(&mut w.states),
            buffers: &mut muts(&mut w.buffers),
            mu_products: &mut [],
        };
        let v = train_step(
            &mut w.net,
            &adam(),
            lrs[s],
            1 + s as u64,
            loss,
            &xb,
            n,
            tb,
            &us,
            st,
            &mut out,
            Extras::plain(),
        )
        .unwrap();
        let (ok, count) = accuracy_counts(loss, &out, n, c, &tb);
        p.steps += 1;
        p.loss_sum += v * n as f64;
        p.samples += n;
        p.correct += ok;
        p.count += count;
        p.last_rows = n;
    }
    p
}

#[allow(clippy::too_many_arguments)]
fn run(
    w: &mut World,
    loss: Loss,
    target: Target<'_, f64>,
    count: usize,
    uniforms: &[f64],
    lrs: Option<&[f64]>,
    order: &[i64],
    poll: &mut dyn FnMut(&Progress) -> bool,
) -> (Result<(), ShapeError>, Progress) {
    let args = EpochArgs {
        x: &w.x,
        rows: ROWS,
        target,
        order,
        batch: BATCH,
        first: 0,
        count,
        uniforms,
        lrs,
        lr: 1e-3,
        step0: 1,
        loss_sum0: 0.0,
        weights: None,
        loss_fn: None,
        clip: Clip::None,
        per_param: &[],
        param_lrs: None,
        momentums: None,
    };
    let st = State {
        params: &mut muts(&mut w.params),
        grads: &mut muts(&mut w.grads),
        states: &mut muts(&mut w.states),
        buffers: &mut muts(&mut w.buffers),
        mu_products: &mut [],
    };
    let mut ws = EpochWs::new();
    let mut out = vec![0.0; BATCH * w.net.output_dim()];
    let mut p = Progress::default();
    let r = train_epoch(&mut w.net, &adam(), loss, &args, st, &mut ws, &mut out, &mut p, poll);
    (r, p)
}

fn uniforms_for(w: &World, rows: usize) -> Vec<f64> {
    fill(rows * w.net.uniform_widths().iter().sum::<usize>(), 99, 0.0, 1.0)
}

#[test]
fn an_epoch_is_exactly_its_steps_for_each_loss() {
    let c = world().net.output_dim();
    let labels: Vec<i64> = (0..ROWS as i64).map(|i| (i * 5) % c as i64).collect();
    let values = fill(ROWS * c, 4, 0.0, 1.0);
    for loss in [Loss::CrossEntropy, Loss::BinaryCrossEntropy, Loss::Mse] {
        let target = if loss == Loss::CrossEntropy {
            Target::Labels(&labels[..])
        } else {
            Target::Values(&values[..])
        };
        let (mut a, mut b) = (world(), world());
        let steps = ROWS.div_ceil(BATCH);
        let u = uniforms_for(&a, ROWS);
        let lrs: Vec<f64> = (0..steps).map(|s| 1e-3 * (1.0 + s as f64)).collect();
        let (r, got) = run(&mut a, loss, target, steps, &u, Some(&lrs), &order(), &mut |_| false);
        r.unwrap();
        let want = by_steps(&mut b, loss, target, steps, &u, &lrs);
        assert_eq!(got.loss_sum.to_bits(), want.loss_sum.to_bits(), "{loss:?}");
        assert_eq!(got, want, "{loss:?}");
        assert_eq!(got.last_rows, ROWS - (steps - 1) * BATCH);
        for (p, q) in a
            .params
            .iter()
            .chain(&a.buffers)
            .chain(&a.states)
            .zip(b.params.iter().chain(&b.buffers).chain(&b.states))
        {
            assert!(p.iter().zip(q).all(|(x, y)| x.to_bits() == y.to_bits()), "{loss:?}");
        }
        if loss != Loss::Mse {
            assert!(got.count > 0);
        }
    }
}

#[test]
fn a_stopped_run_has_completed_whole_steps() {
    let labels: Vec<i64> = (0..ROWS as i64).map(|i| i % 3).collect(); // every_layer has 4 outputs
    let (mut a, mut b) = (world(), world());
    let u = uniforms_for(&a, ROWS);
    let lrs = vec![1e-3; 5];
    let mut polls = 0;
    let (r, got) = run(
        &mut a,
        Loss::CrossEntropy,
        Target::Labels(&labels),
        5,
        &u,
        None,
        &order(),
        &mut |p| {
            polls += 1;
            p.steps == 2
        },
    );
    r.unwrap();
    assert_eq!((got.steps, polls), (2, 2));
    let want = by_steps(&mut b, Loss::CrossEntropy, Target::Labels(&labels), 2, &u, &lrs);
    assert_eq!(got, want);
    assert_eq!(a.params, b.params);
}

/// Order, uniforms, batch count, learning rates, labels, and the word the error must contain.
type Case = (Vec<i64>, Vec<f64>, usize, Option<Vec<f64>>, Vec<i64>, &'static str);

#[test]
fn bad_arguments_write_nothing() {
    let labels: Vec<i64> = (0..ROWS as i64).map(|i| i % 3).collect(); // every_layer has 4 outputs
    let mut a = world();
    let before = (a.params.clone(), a.buffers.clone(), a.states.clone());
    let u = uniforms_for(&a, ROWS);
    let mut bad_order = order();
    bad_order[20] = ROWS as i64;
    let cases: Vec<Case> = vec![
        (bad_order, u.clone(), 5, None, labels.clone(), "order[20]"),
        (order(), u[1..].to_vec(), 5, None, labels.clone(), "uniforms"),
        (order(), u.clone(), 6, None, labels.clone(), "batches"),
        (order(), u.clone(), 5, Some(vec![1e-3; 4]), labels.clone(), "lrs"),
        (order(), u.clone(), 5, Some(vec![-1.0; 5]), labels.clone(), "lr"),
        (
            order(),
            u.clone(),
            5,
            None,
            labels.iter().map(|&l| l + 2).collect(),
            "y[",
        ),
    ];
    for (ord, u, count, lrs, l, what) in cases {
        let (r, p) = run(
            &mut a,
            Loss::CrossEntropy,
            Target::Labels(&l),
            count,
            &u,
            lrs.as_deref(),
            &ord,
            &mut |_| false,
        );
        let e = r.unwrap_err();
        assert!(e.0.contains(what), "{what}: {e}");
        assert_eq!(p.steps, 0);
        assert_eq!((&a.params, &a.buffers, &a.states), (&before.0, &before.1, &before.2));
    }
}
