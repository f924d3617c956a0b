//! The typed half of `FusedPlan`: a `Plan<T>` per dtype holds the network, optimizer and
//! loss, and runs `step`, `epoch`, `predict` and `evaluate` on borrowed arrays with the GIL
//! released (`epoch` re-acquires it briefly to report progress and check for signals).

use super::*;

/// Grows `net`'s workspaces to `rows` rows, or raises `MemoryError` first. `Network::reserve`
/// allocates infallibly (a failure aborts the interpreter), so the bytes it will ask for are
/// bounded from above here (every per-layer buffer, the two gradient buffers and the scratch
/// space, per row) and asked for once, fallibly, before it runs: a batch far too large for the
/// machine is refused with its size instead of killing the process.
pub(super) fn reserve<T: VMath>(f: &str, net: &mut Network<T>, rows: usize) -> PyResult<()> {
    if rows <= net.capacity() {
        return Ok(());
    }
    let t = std::mem::size_of::<T>();
    let (mut elems, mut idx, mut widest, mut f64s) = (0usize, 0usize, net.input_dim(), 0usize);
    for s in net.specs() {
        elems = elems.saturating_add(s.out.saturating_mul(2));
        widest = widest.max(s.inp).max(s.out);
        match s.kind {
            LayerKind::Maxout { .. } => idx = idx.saturating_add(s.out),
            LayerKind::BatchNorm { .. } => f64s = f64s.max(s.out.saturating_mul(2)),
            _ => {}
        }
    }
    elems = elems.saturating_add(widest.saturating_mul(3));
    let per_row = elems
        .saturating_mul(t)
        .saturating_add(idx.saturating_mul(8))
        .saturating_add(f64s.saturating_mul(8));
    let bytes = per_row.saturating_mul(rows);
    let what = format!("the workspaces for a batch of {rows} rows");
    if bytes > isize::MAX as usize {
        return Err(crate::py::array::memory_err(f, &what, bytes));
    }
    let mut probe: Vec<u8> = Vec::new();
    probe
        .try_reserve_exact(bytes)
        .map_err(|_| crate::py::array::memory_err(f, &what, bytes))?;
    drop(probe);
    net.reserve(rows);
    Ok(())
}

/// One dtype's plan.
pub(super) struct Plan<T: 'static> {
    pub(super) net: Network<T>,
    pub(super) meta: Meta,
    pub(super) slots: Slots<T>,
    /// NAdam's `mu_product` per parameter, copied from and back to the caller's list.
    pub(super) mu: Vec<f64>,
    /// An epoch's gathered batch rows.
    pub(super) gathered: EpochWs<T>,
}

/// How often a running epoch looks for a pending signal (Ctrl-C), re-acquiring the GIL briefly.
pub(super) const SIGNAL_CHECK: Duration = Duration::from_millis(50);

/// The optional per-sample weights `(rows,)` of `T`, borrowed read-only.
pub(super) fn weights_of<'py, T: Element>(
    f: &str,
    w: Option<&Bound<'py, PyAny>>,
    rows: usize,
) -> PyResult<Option<PyReadonlyArrayDyn<'py, T>>> {
    let Some(w) = w else { return Ok(None) };
    let r = readonly::<T>(f, "sample_weight", w)?;
    check_shape(f, "sample_weight", r.shape(), &[rows], "one weight per row of x")?;
    Ok(Some(r))
}

impl<T: VMath + Element> Plan<T> {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn step(
        &mut self,
        py: Python<'_>,
        x: &Bound<'_, PyAny>,
        y: &Bound<'_, PyAny>,
        a: &StepArgs<'_, '_>,
        step: u64,
        lr: f64,
        out: &Bound<'_, PyAny>,
        mu: Option<&Bound<'_, PyList>>,
        weights: Option<&Bound<'_, PyAny>>,
        (param_lrs, momentum): (Option<Vec<f64>>, Option<f64>),
    ) -> PyResult<f64> {
        const F: &str = "FusedPlan.step";
        let Plan {
            net,
            meta,
            slots,
            mu: mu_vals,
            ..
        } = self;
        let loss = meta
            .loss
            .ok_or_else(|| PyValueError::new_err(format!("{F}: this plan was built without a loss")))?;
        let opt = meta
            .opt
            .ok_or_else(|| PyValueError::new_err(format!("{F}: this plan was built without an optimizer")))?;
        let g = Guard(slots);
        let s = &mut *g.0;
        let (rx, n) = meta.take_x(F, s, x)?;
        let (ry, labels) = meta.take_target(F, s, loss, y, n)?;
        let ro = meta.take_out(F, s, out, n)?;
        meta.take_state(F, s, a, true, n)?;
        check_overlaps(F, s, meta)?;
        mu_vals.clear();
        if let Optimizer::NAdam(_) = opt {
            let list =
                mu.ok_or_else(|| PyValueError::new_err(format!("{F}: argument 'mu_products' is required for nadam")))?;
            for v in list.iter() {
                mu_vals.push(v.extract::<f64>()?);
            }
        }
        let rw = weights_of::<T>(F, weights, n)?;
        let ws = rw.as_ref().map(|w| crate::py::array::c_order(F, w)).transpose()?;
        reserve(F, net, n)?;
        // SAFETY: checked above (shapes, dtypes, contiguity, overlaps); see the module docs.
        let (xs, outs, target) = unsafe { (slice::<T>(rx), slice_mut::<T>(ro), target_of::<T>(ry, labels)) };
        let Slots {
            params,
            grads,
            states,
            buffers,
            uniforms,
            ..
        } = s;
        let value = py
            .detach(|| {
                let st = State {
                    params,
                    grads,
                    states,
                    buffers,
                    mu_products: &mut mu_vals[..],
                };
                let extras = Extras {
                    loss_fn: meta.loss_fn,
                    weights: ws.as_deref(),
                    clip: meta.clip,
                    per_param: &meta.per_param,
                    param_lrs: param_lrs.as_deref(),
                    momentum,
                };
                train_step(net, &opt, lr, step, loss, xs, n, target, uniforms, st, outs, extras)
            })
            .map_err(|e| shape_err(F, e))?;
        drop(g);
        if let Some(list) = mu {
            for (i, &v) in mu_vals.iter().enumerate() {
                list.set_item(i, v)?;
            }
        }
        Ok(value)
    }

    /// Batches `first .. first + count` of an epoch in one call (`kernels::fused::epoch`), the GIL
    /// released; returns after `max_seconds` (a whole step done) when that is positive, and on a
    /// pending signal, whose exception it raises. `progress` always receives how far it got.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn epoch(
        &mut self,
        py: Python<'_>,
        e: &EpochCall<'_, '_>,
        a: &StepArgs<'_, '_>,
        mu: Option<&Bound<'_, PyList>>,
        progress: &Bound<'_, PyList>,
    ) -> PyResult<()> {
        const F: &str = "FusedPlan.epoch";
        let Plan {
            net,
            meta,
            slots,
            mu: mu_vals,
            gathered,
        } = self;
        let loss = meta
            .loss
            .ok_or_else(|| PyValueError::new_err(format!("{F}: this plan was built without a loss")))?;
        let opt = meta
            .opt
            .ok_or_else(|| PyValueError::new_err(format!("{F}: this plan was built without an optimizer")))?;
        if e.step0 < 1 {
            return Err(PyValueError::new_err(format!(
                "{F}: argument 'step' must be >= 1 (steps count from 1), got {}",
                e.step0
            )));
        }
        let g = Guard(slots);
        let s = &mut *g.0;
        let (rx, rows) = meta.take_x(F, s, e.x)?;
        let (ry, labels) = meta.take_target(F, s, loss, e.y, rows)?;
        let rorder = meta.take_flat::<i64, T>(F, s, Arg::Order, e.order)?;
        let runi = meta.take_flat::<T, T>(F, s, Arg::Uniforms, e.uniforms)?;
        let ro = meta.take_out_rows(F, s, e.out)?;
        let rw = weights_of::<T>(F, e.weights, rows)?;
        let ws = rw.as_ref().map(|w| crate::py::array::c_order(F, w)).transpose()?;
        meta.take_state(F, s, a, true, 0)?;
        check_overlaps(F, s, meta)?;
        // The epoch grows the workspaces to its batch size inside the call: ask for them here,
        // fallibly, so that a batch too large for the machine raises MemoryError instead.
        reserve(F, net, e.batch.min(rows))?;
        mu_vals.clear();
        if let Optimizer::NAdam(_) = opt {
            let list =
                mu.ok_or_else(|| PyValueError::new_err(format!("{F}: argument 'mu_products' is required for nadam")))?;
            for v in list.iter() {
                mu_vals.push(v.extract::<f64>()?);
            }
        }
        // SAFETY: checked above (shapes, dtypes, contiguity, overlaps); see `fused_args.rs`.
        let (xs, outs, target, order, uniforms) = unsafe {
            (
                slice::<T>(rx),
                slice_mut::<T>(ro),
                target_of::<T>(ry, labels),
                slice::<i64>(rorder),
                slice::<T>(runi),
            )
        };
        let args = EpochArgs {
            x: xs,
            rows,
            target,
            order,
            batch: e.batch,
            first: e.first,
            count: e.count,
            uniforms,
            lrs: e.lrs.as_deref(),
            lr: e.lr,
            step0: e.step0,
            loss_sum0: e.loss_sum,
            weights: ws.as_deref(),
            loss_fn: meta.loss_fn,
            clip: meta.clip,
            per_param: &meta.per_param,
            param_lrs: e.param_lrs.as_deref(),
            momentums: e.momentums.as_deref(),
        };
        let Slots {
            params,
            grads,
            states,
            buffers,
            ..
        } = s;
        let mut prog = Progress::default();
        let max_seconds = e.max_seconds;
        let (result, pending) = py.detach(|| {
            let st = State {
                params,
                grads,
                states,
                buffers,
                mu_products: &mut mu_vals[..],
            };
            let start = Instant::now();
            let mut last_check = start;
            let mut pending: Option<PyErr> = None;
            let mut poll = |_: &Progress| {
                let now = Instant::now();
                if now.duration_since(last_check) >= SIGNAL_CHECK {
                    last_check = now;
                    if let Err(err) = Python::attach(|py| py.check_signals()) {
                        pending = Some(err);
                        return true;
                    }
                }
                max_seconds > 0.0 && now.duration_since(start).as_secs_f64() >= max_seconds
            };
            let r = train_epoch(net, &opt, loss, &args, st, gathered, outs, &mut prog, &mut poll);
            (r, pending)
        });
        drop(g);
        let vals: [f64; 6] = [
            prog.steps as f64,
            prog.loss_sum,
            prog.samples as f64,
            prog.correct as f64,
            prog.count as f64,
            prog.last_rows as f64,
        ];
        for (i, v) in vals.iter().enumerate() {
            if i < progress.len() {
                progress.set_item(i, v)?;
            } else {
                progress.append(v)?;
            }
        }
        if let Some(list) = mu {
            for (i, &v) in mu_vals.iter().enumerate() {
                list.set_item(i, v)?;
            }
        }
        result.map_err(|err| shape_err(F, err))?;
        match pending {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }

    pub(super) fn predict(
        &mut self,
        py: Python<'_>,
        x: &Bound<'_, PyAny>,
        out: &Bound<'_, PyAny>,
        batch: usize,
        a: &StepArgs<'_, '_>,
    ) -> PyResult<()> {
        const F: &str = "FusedPlan.predict";
        let Plan { net, meta, slots, .. } = self;
        let g = Guard(slots);
        let s = &mut *g.0;
        let (rx, n) = meta.take_x(F, s, x)?;
        let ro = meta.take_out(F, s, out, n)?;
        meta.take_state(F, s, a, false, n)?;
        check_overlaps(F, s, meta)?;
        reserve(F, net, batch.min(n))?;
        // SAFETY: as in `step`.
        let (xs, outs) = unsafe { (slice::<T>(rx), slice_mut::<T>(ro)) };
        let Slots { params, buffers, .. } = s;
        py.detach(|| evaluate(net, xs, n, batch, params, buffers, None, Some(outs)))
            .map_err(|e| shape_err(F, e))?;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn evaluate(
        &mut self,
        py: Python<'_>,
        x: &Bound<'_, PyAny>,
        y: &Bound<'_, PyAny>,
        (loss, loss_fn): (Loss, Option<LossFn>),
        weights: Option<&Bound<'_, PyAny>>,
        batch: usize,
        a: &StepArgs<'_, '_>,
        metrics: &mut MetricSums,
    ) -> PyResult<(f64, usize, usize)> {
        const F: &str = "FusedPlan.evaluate";
        let Plan { net, meta, slots, .. } = self;
        let g = Guard(slots);
        let s = &mut *g.0;
        let (rx, n) = meta.take_x(F, s, x)?;
        let (ry, labels) = meta.take_target(F, s, loss, y, n)?;
        meta.take_state(F, s, a, false, n)?;
        check_overlaps(F, s, meta)?;
        let rw = weights_of::<T>(F, weights, n)?;
        let ws = rw.as_ref().map(|w| crate::py::array::c_order(F, w)).transpose()?;
        reserve(F, net, batch.min(n))?;
        // SAFETY: as in `step`.
        let (xs, target) = unsafe { (slice::<T>(rx), target_of::<T>(ry, labels)) };
        let Slots { params, buffers, .. } = s;
        let extras = Extras {
            loss_fn,
            weights: ws.as_deref(),
            ..Extras::plain()
        };
        let ev = py
            .detach(|| {
                let t = Some((loss, target));
                evaluate_with_metrics(net, xs, n, batch, params, buffers, t, None, &extras, metrics)
            })
            .map_err(|e| shape_err(F, e))?;
        Ok((ev.loss_sum, ev.correct, ev.count))
    }
}

/// The epoch-specific arguments of `FusedPlan.epoch`.
pub(super) struct EpochCall<'a, 'py> {
    pub(super) x: &'a Bound<'py, PyAny>,
    pub(super) y: &'a Bound<'py, PyAny>,
    pub(super) order: &'a Bound<'py, PyAny>,
    pub(super) uniforms: &'a Bound<'py, PyAny>,
    pub(super) out: &'a Bound<'py, PyAny>,
    pub(super) batch: usize,
    pub(super) first: usize,
    pub(super) count: usize,
    pub(super) step0: u64,
    pub(super) lr: f64,
    pub(super) lrs: Option<Vec<f64>>,
    pub(super) max_seconds: f64,
    pub(super) loss_sum: f64,
    pub(super) weights: Option<&'a Bound<'py, PyAny>>,
    pub(super) param_lrs: Option<Vec<f64>>,
    pub(super) momentums: Option<Vec<f64>>,
}
