//! Evaluation of a network without training: the loss and accuracy sums over batches, and the
//! native metrics (top-k accuracy, MAE, MSE, R²) summed in one pass over the outputs.

use super::network::Network;
use super::step::*;
use crate::ensure;
use crate::kernels::losses::{check_weighted_loss, weighted_loss, Reduction};
use crate::kernels::parallel;
use crate::kernels::vmath::VMath;
use crate::kernels::ShapeError;

/// The result of [`evaluate`]: the summed loss and, for the classification losses, the number
/// of correct predictions out of `count`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Evaluation {
    pub loss_sum: f64,
    pub correct: usize,
    pub count: usize,
}

/// Evaluation-mode forward over all `n` rows of `x` in batches of at most `batch` rows (and
/// the workspace's capacity): the output into `out` (`n × output_dim`, when given) and, with a
/// `target`, the summed loss (batch sums added in order, as `Sequential.evaluate` does) and the
/// accuracy counts (cross-entropy: arg-max, first maximum, equals the label; binary
/// cross-entropy: `(out > 0) == (t ≥ 0.5)` per entry). Updates nothing.
#[allow(clippy::too_many_arguments)]
pub fn evaluate<T: VMath>(
    net: &mut Network<T>,
    x: &[T],
    n: usize,
    batch: usize,
    params: &[&mut [T]],
    buffers: &mut [&mut [T]],
    target: Option<(Loss, Target<'_, T>)>,
    out: Option<&mut [T]>,
) -> Result<Evaluation, ShapeError> {
    let mut none = MetricSums::default();
    evaluate_with_metrics(
        net,
        x,
        n,
        batch,
        params,
        buffers,
        target,
        out,
        &Extras::plain(),
        &mut none,
    )
}

/// The sums of the metrics [`evaluate_with_metrics`] computes on every batch's output, in
/// `f64`, in row order (Keras's definitions, `python/initcore/metrics.py`):
/// ```text
/// top_k   [#{j : z_ij > z_i,y_i} < k] per row (labels)        hits out of the rows
/// errors  Σ |p − t|, Σ (p − t)² over all entries (values)      mae, mse = sums / entries
/// r2      per column Σ t, Σ t², Σ (t − p)² (values)            1 − SS_res / (Σt² − (Σt)²/n)
/// ```
/// Set `top_k` (the `k`s, hits 0), `errors` and `r2` to ask for them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MetricSums {
    pub top_k: Vec<(usize, usize)>,
    pub errors: bool,
    pub abs_sum: f64,
    pub sq_sum: f64,
    pub entries: usize,
    pub r2: bool,
    pub col_sum: Vec<f64>,
    pub col_sq: Vec<f64>,
    pub col_res: Vec<f64>,
    pub rows: usize,
}

impl MetricSums {
    fn wanted(&self) -> bool {
        !self.top_k.is_empty() || self.errors || self.r2
    }

    fn add<T: VMath>(&mut self, o: &[T], c: usize, target: &Target<'_, T>) {
        match *target {
            Target::Labels(l) => {
                for (row, &y) in o.chunks_exact(c).zip(l) {
                    let own = row[y as usize];
                    let above = row.iter().filter(|&&v| v > own).count();
                    for (k, hits) in self.top_k.iter_mut() {
                        *hits += (above < *k) as usize;
                    }
                }
            }
            Target::Values(t) => {
                if self.errors {
                    for (&p, &tv) in o.iter().zip(t) {
                        let d = p.f64() - tv.f64();
                        self.abs_sum += d.abs();
                        self.sq_sum += d * d;
                    }
                    self.entries += o.len();
                }
                if self.r2 {
                    self.col_sum.resize(c, 0.0);
                    self.col_sq.resize(c, 0.0);
                    self.col_res.resize(c, 0.0);
                    for (row, trow) in o.chunks_exact(c).zip(t.chunks_exact(c)) {
                        for j in 0..c {
                            let (p, tv) = (row[j].f64(), trow[j].f64());
                            self.col_sum[j] += tv;
                            self.col_sq[j] += tv * tv;
                            self.col_res[j] += (tv - p) * (tv - p);
                        }
                    }
                }
            }
        }
        self.rows += o.len() / c.max(1);
    }
}

/// [`evaluate`], also accumulating the metrics `metrics` asks for (see [`MetricSums`]). The
/// loss's options and per-sample weights `(n,)` of `extras` (the rest is unused) make each
/// batch's loss the weighted kernel's `Σ_i w_i·l_i` (`losses::weighted_loss`, reduction sum),
/// as `Sequential.evaluate` adds it batch by batch.
#[allow(clippy::too_many_arguments)]
pub fn evaluate_with_metrics<T: VMath>(
    net: &mut Network<T>,
    x: &[T],
    n: usize,
    batch: usize,
    params: &[&mut [T]],
    buffers: &mut [&mut [T]],
    target: Option<(Loss, Target<'_, T>)>,
    mut out: Option<&mut [T]>,
    extras: &Extras<'_, T>,
    metrics: &mut MetricSums,
) -> Result<Evaluation, ShapeError> {
    let (d, c) = (net.input_dim(), net.output_dim());
    ensure!(!metrics.wanted() || target.is_some(), "metrics need targets");
    if let Some((_, t)) = &target {
        ensure!(
            metrics.top_k.is_empty() || matches!(t, Target::Labels(_)),
            "top_k_accuracy needs class labels"
        );
        ensure!(
            !(metrics.errors || metrics.r2) || matches!(t, Target::Values(_)),
            "mae, mse and r2 need targets of the output's shape"
        );
    }
    ensure!(batch >= 1, "argument 'batch_size' must be >= 1");
    ensure!(
        x.len() == n * d,
        "argument 'x' has {} elements, expected {n}x{d}",
        x.len()
    );
    if let Some(o) = out.as_deref() {
        ensure!(
            o.len() == n * c,
            "argument 'out' has {} elements, expected {n}x{c}",
            o.len()
        );
    }
    if let Some((loss, t)) = &target {
        check_target(*loss, t, n, c)?;
        if let Some(lf) = extras.weighted(*loss) {
            check_weighted_loss(&lf, n * c, n, c, &targets_of(t), extras.weights, n * c)?;
        }
    }
    let rows = batch.min(net.capacity()).max(1);
    let pooled = net.wants_pool(rows);
    let mut run = move || -> Result<Evaluation, ShapeError> {
        let mut ev = Evaluation {
            loss_sum: 0.0,
            correct: 0,
            count: 0,
        };
        let mut r0 = 0;
        while r0 < n {
            let r1 = (r0 + rows).min(n);
            let nb = r1 - r0;
            let xb = &x[r0 * d..r1 * d];
            net.forward(xb, nb, params, buffers, &[], false)?;
            let (o, g) = net.output_and_grad(xb, nb);
            if let Some(dst) = out.as_deref_mut() {
                dst[r0 * c..r1 * c].copy_from_slice(o);
            }
            if let Some((loss, t)) = &target {
                let tb = match t {
                    Target::Labels(l) => Target::Labels(&l[r0..r1]),
                    Target::Values(v) => Target::Values(&v[r0 * c..r1 * c]),
                };
                ev.loss_sum += match extras.weighted(*loss) {
                    None => loss_and_grad(*loss, o, nb, c, &tb, Reduction::Sum, g)?,
                    Some(lf) => {
                        let w = extras.weights.map(|w| &w[r0..r1]);
                        weighted_loss(lf, o, nb, c, targets_of(&tb), w, Reduction::Sum, g)?
                    }
                };
                match (loss, tb) {
                    (Loss::CrossEntropy, Target::Labels(l)) => {
                        for (row, &label) in o.chunks_exact(c).zip(l) {
                            ev.correct += (np_argmax(row) as i64 == label) as usize;
                        }
                        ev.count += nb;
                    }
                    // Soft targets: the arg-max class of the output against the target's.
                    (Loss::CrossEntropy, Target::Values(t)) => {
                        for (row, trow) in o.chunks_exact(c).zip(t.chunks_exact(c)) {
                            ev.correct += (np_argmax(row) == np_argmax(trow)) as usize;
                        }
                        ev.count += nb;
                    }
                    (Loss::BinaryCrossEntropy, Target::Values(t)) => {
                        for (&v, &tv) in o.iter().zip(t) {
                            ev.correct += ((v > T::zero()) == (tv >= T::of(0.5))) as usize;
                        }
                        ev.count += nb * c;
                    }
                    _ => {}
                }
                if metrics.wanted() {
                    metrics.add(o, c, &tb);
                }
            }
            r0 = r1;
        }
        Ok(ev)
    };
    if pooled {
        parallel::install(run)
    } else {
        run()
    }
}
