//! A training step on a thread team (`team.rs`): the forward and backward split by
//! `network_team.rs`, the loss and the gradient clipping on the leader (the loss phase stays
//! `step::output_loss`, the one seam for other losses), and the optimizer update split by
//! parameter ranges. Every optimizer kernel is elementwise (`θ ← θ − lr·u(g, state)` per
//! element, `torch.optim`'s rules, see `optim/`), so any split of the elements gives the bits
//! of the serial loop over parameters.

use super::{output_loss, Extras, Loss, Optimizer, State, Target};
use crate::ensure;
use crate::kernels::activation::CHUNK;
use crate::kernels::clip::{clip_gradients, Clip};
use crate::kernels::fused::network::Network;
use crate::kernels::team::Team;
use crate::kernels::vmath::VMath;
use crate::kernels::ShapeError;

/// A checked step on a team: the forward and backward split by `network_team.rs`, the loss
/// and the clipping on the leader, the update split by parameter ranges.
#[allow(clippy::too_many_arguments)]
pub(super) fn step_on_team<T: VMath>(
    team: &Team<'_>,
    net: &mut Network<T>,
    opt: &Optimizer,
    lr: f64,
    step: u64,
    loss: Loss,
    x: &[T],
    n: usize,
    target: &Target<'_, T>,
    uniforms: &[&[T]],
    st: State<'_, '_, T>,
    out: &mut [T],
    extras: &Extras<'_, T>,
) -> Result<f64, ShapeError> {
    net.forward_team(team, x, n, st.params, st.buffers, uniforms)?;
    let value = output_loss(net, loss, x, n, target, out, extras)?;
    net.backward_team(team, x, n, st.params, st.grads)?;
    if extras.clip != Clip::None {
        clip_gradients(st.grads, extras.clip)?;
    }
    optimizer_phase_team(
        team,
        opt,
        lr,
        extras,
        step,
        st.params,
        st.grads,
        st.states,
        st.mu_products,
    )?;
    Ok(value)
}

/// Elements of optimizer update per member below which the update is not split.
const OPT_PER_PART: usize = 1 << 14;

/// Slots of `&mut [T]` arrays (parameters, optimizer states) that members update in disjoint
/// element ranges.
struct Slots<'b, T>(*mut &'b mut [T]);

// SAFETY: members touch disjoint ranges of the arrays (see `range`).
unsafe impl<T: Send> Sync for Slots<'_, T> {}

impl<T> Slots<'_, T> {
    /// Elements `r` of array `i`, without a reference to the whole array (members reach the
    /// same array at once).
    ///
    /// # Safety
    /// `i` is in bounds, and no other live slice overlaps `r` of array `i`.
    #[allow(clippy::mut_from_ref)]
    unsafe fn range(&self, i: usize, r: std::ops::Range<usize>) -> &mut [T] {
        let whole: *mut [T] = std::ptr::addr_of_mut!(**self.0.add(i));
        assert!(r.start <= r.end && r.end <= whole.len());
        std::slice::from_raw_parts_mut((whole as *mut T).add(r.start), r.end - r.start)
    }
}

/// [`optimizer_phase`] (or the parameter groups' loop) split across `team`: the parameters
/// are laid end to end and cut into one range per member, at multiples of `CHUNK`. Every
/// update kernel is elementwise, so any split gives the same bits; NAdam's `mu_product` is
/// advanced once per parameter after the phase.
#[allow(clippy::too_many_arguments)]
pub(crate) fn optimizer_phase_team<T: VMath>(
    team: &Team<'_>,
    opt: &Optimizer,
    lr: f64,
    extras: &Extras<'_, T>,
    step: u64,
    params: &mut [&mut [T]],
    grads: &[&mut [T]],
    states: &mut [&mut [T]],
    mu_products: &mut [f64],
) -> Result<(), ShapeError> {
    let opt_of = |i: usize| {
        if extras.per_param.is_empty() {
            *opt
        } else {
            extras.param_opt(i, lr)
        }
    };
    // Parameter i keeps its own optimizer's state arrays (groups may differ: SGD with and
    // without momentum, AMSGrad in one group), stored one parameter after another.
    let ns_of = |i: usize| extras.per_param.get(i).map_or(opt.n_states(), |(o, _)| o.n_states());
    let np = params.len();
    let n_states: usize = (0..np).map(ns_of).sum();
    ensure!(
        (0..np).all(|i| ns_of(i) <= 3) && states.len() == n_states && grads.len() == np,
        "optimizer phase: {} state arrays and {} gradients for {np} parameters",
        states.len(),
        grads.len()
    );
    let total: usize = grads.iter().map(|g| g.len()).sum();
    let parts = (total / OPT_PER_PART).clamp(1, team.size());
    if parts == 1 {
        let mut at = 0;
        for i in 0..np {
            let st = &mut states[at..at + ns_of(i)];
            at += ns_of(i);
            let mu = mu_products.get(i).copied().unwrap_or(1.0);
            let new_mu = opt_of(i).update(&mut *params[i], &*grads[i], st, step, mu)?;
            if let Some(m) = mu_products.get_mut(i) {
                *m = new_mu;
            }
        }
        return Ok(());
    }
    let mut at = 0;
    for (i, (p, g)) in params.iter().zip(grads).enumerate() {
        ensure!(
            p.len() == g.len(),
            "parameter {i} has {} elements, its gradient {}",
            p.len(),
            g.len()
        );
        for (k, st) in states.iter().enumerate().skip(at).take(ns_of(i)) {
            ensure!(
                st.len() == p.len(),
                "optimizer state {k} has {} elements, its parameter {}",
                st.len(),
                p.len()
            );
        }
        at += ns_of(i);
    }
    let per = total.div_ceil(parts).div_ceil(CHUNK) * CHUNK;
    let (ps, ss) = (Slots(params.as_mut_ptr()), Slots(states.as_mut_ptr()));
    let mus: &[f64] = mu_products;
    team.run(&|t, _| {
        let (lo, hi) = ((t * per).min(total), ((t + 1) * per).min(total));
        let (mut at, mut s_at) = (0, 0);
        for (i, g) in grads.iter().enumerate() {
            let (a, b) = (lo.max(at), hi.min(at + g.len()));
            let ns = ns_of(i);
            if a < b {
                let r = a - at..b - at;
                // SAFETY: members' ranges of the concatenated parameters are disjoint, and the
                // states share their parameter's ranges; lengths were checked above.
                let p = unsafe { ps.range(i, r.clone()) };
                let mut st: [&mut [T]; 3] = [&mut [], &mut [], &mut []];
                for (k, s) in st.iter_mut().take(ns).enumerate() {
                    *s = unsafe { ss.range(s_at + k, r.clone()) };
                }
                let mu = mus.get(i).copied().unwrap_or(1.0);
                opt_of(i).update(p, &g[r], &mut st[..ns], step, mu)?;
            }
            at += g.len();
            s_at += ns;
        }
        Ok(())
    })?;
    if opt.uses_mu_product() {
        for (i, m) in mu_products.iter_mut().enumerate() {
            let mut st: [&mut [T]; 3] = [&mut [], &mut [], &mut []];
            *m = opt_of(i).update(&mut [], &[], &mut st[..ns_of(i)], step, *m)?;
        }
    }
    Ok(())
}
