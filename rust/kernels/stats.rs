//! Column statistics of an activation matrix `x (n, m)` in one pass over memory, for
//! diagnostics that must stay cheap next to a training step.
//!
//! Per column `j` (in `f64`): `mean_j`, the biased `var_j = (1/n) Σ_i (x_ij − mean_j)²`, `min_j`,
//! `max_j`. Over all entries: a histogram with `np.histogram` semantics (bin `k` is
//! `[e_k, e_{k+1})`, the last bin also holds `e_last`, values outside the edges are not counted),
//! the share of entries `≤ low` or `≥ high` (saturation) and the share of columns that are
//! exactly 0 on every row (dead units).
//!
//! Method: `x` is cut into the fixed row blocks of `parallel::RowBlocks`, `BLOCK_ROWS` whole
//! rows each (the determinism contract is stated there). Each block, still in cache,
//! is read twice: once for sums, extrema, histogram and saturation, once for its squared
//! deviations from its own mean; so memory sees `x` once. Block results are merged in block
//! order with Chan, Golub & LeVeque's pairwise update
//! ```text
//! δ = mean_b − mean_a;  mean ← mean_a + δ·n_b/(n_a + n_b);  M2 ← M2_a + M2_b + δ²·n_a·n_b/(n_a + n_b)
//! ```
//! which is stable (no E[x²] − E[x]²) and, being in a fixed order over fixed blocks, gives the
//! same bits for any thread count.
//!
//! NaN: a column holding a NaN gets NaN `mean`, `var`, `min` and `max` (and is not dead); a NaN
//! falls in no histogram bin and is never saturated. An infinity gives an infinite mean and a
//! NaN variance, as in NumPy, lies outside the (finite) edges, and counts as saturated.

use super::parallel::RowBlocks;
use super::rows::{quads, split4};
use super::{Real, ShapeError};
use crate::ensure;

/// Rows per block: a block of `64·m` values stays in L1/L2 between its two reads.
pub const BLOCK_ROWS: usize = 64;

/// Outputs of [`column_stats`]; `mean`, `var`, `min`, `max` have one entry per column, `hist`
/// one per bin (empty without edges).
pub struct ColumnStatsOut<'a> {
    pub mean: &'a mut [f64],
    pub var: &'a mut [f64],
    pub min: &'a mut [f64],
    pub max: &'a mut [f64],
    pub hist: &'a mut [i64],
}

/// The two scalar results of [`column_stats`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Fractions {
    /// Share of entries `≤ low` or `≥ high` (0 without a saturation range).
    pub saturated: f64,
    /// Share of columns that are exactly 0 on every row.
    pub dead: f64,
}

/// Copies of the histogram per block: consecutive entries count into different copies, so
/// that runs of values in one bin do not serialize on one memory counter.
const HIST_COPIES: usize = 4;

/// Values per block in the workspace: mean, M2, min, max per column, then `HIST_COPIES`
/// histograms and the saturated count (counts are exact integers in `f64` up to 2⁵³).
fn block_len(m: usize, nbins: usize) -> usize {
    4 * m + HIST_COPIES * nbins + 1
}

/// `f64` workspace length [`column_stats`] needs for `x (n, m)` and `nbins` histogram bins.
pub fn workspace_len(n: usize, m: usize, nbins: usize) -> usize {
    RowBlocks::new(n, BLOCK_ROWS).count() * block_len(m, nbins)
}

/// Checks histogram edges: at least 2, finite, strictly increasing.
pub fn check_edges(edges: &[f64]) -> Result<(), ShapeError> {
    ensure!(
        edges.len() >= 2,
        "argument 'edges' must be 1-D with at least 2 entries, got {}",
        edges.len()
    );
    ensure!(
        edges.iter().all(|e| e.is_finite()) && edges.windows(2).all(|w| w[0] < w[1]),
        "argument 'edges' must be finite and strictly increasing"
    );
    Ok(())
}

/// Checks a saturation range: `low < high`, neither NaN.
pub fn check_saturation(low: f64, high: f64) -> Result<(), ShapeError> {
    ensure!(
        low < high,
        "argument 'saturation' must have low < high, got ({low}, {high})"
    );
    Ok(())
}

/// Finds the histogram bin of a value without branches on the data: from the uniform spacing
/// when the edges are even (to within a tenth of a bin, so the guess is off by at most one and
/// one comparison each way with the true edges makes it exact), else by a branch-free binary
/// search.
struct Binner<'a> {
    edges: &'a [f64],
    lo: f64,
    hi: f64,
    inv_width: f64,
    uniform: bool,
}

impl<'a> Binner<'a> {
    fn new(edges: &'a [f64]) -> Self {
        let nb = edges.len() - 1;
        let (lo, hi) = (edges[0], edges[nb]);
        let width = (hi - lo) / nb as f64;
        let uniform = edges
            .iter()
            .enumerate()
            .all(|(i, &e)| (e - (lo + i as f64 * width)).abs() <= 0.1 * width);
        Self {
            edges,
            lo,
            hi,
            inv_width: 1.0 / width,
            uniform,
        }
    }

    /// `(bin, 1.0)` for `v` in `[lo, hi]`, else `(some bin, 0.0)` (also for NaN): the caller adds
    /// the weight, so out-of-range values cost no branch.
    #[inline(always)]
    fn bin(&self, v: f64) -> (usize, f64) {
        let e = self.edges;
        let last = e.len() - 2; // the last bin
        let inside = (v >= self.lo) & (v <= self.hi);
        let k = if self.uniform {
            // f64::max/min send NaN to 0 and clamp out-of-range guesses into the table.
            let g = ((v - self.lo) * self.inv_width).max(0.0).min(last as f64) as usize;
            let g = g - (v < e[g]) as usize * (g > 0) as usize;
            (g + (v >= e[g + 1]) as usize).min(last)
        } else {
            // Largest k ≤ last with e[k] ≤ v (for v in range; garbage but in bounds otherwise).
            let (mut base, mut len) = (0usize, last + 1);
            while len > 1 {
                let half = len / 2;
                base = if e[base + half] <= v { base + half } else { base };
                len -= half;
            }
            base
        };
        (k, if inside { 1.0 } else { 0.0 })
    }
}

/// NaN-propagating minimum/maximum updates (NaN sticks once seen, as `np.min`).
#[inline(always)]
fn nan_min(acc: f64, v: f64) -> f64 {
    if v < acc || v.is_nan() {
        v
    } else {
        acc
    }
}

#[inline(always)]
fn nan_max(acc: f64, v: f64) -> f64 {
    if v > acc || v.is_nan() {
        v
    } else {
        acc
    }
}

simd_fn! {
/// One block of whole rows into `part` (layout of `block_len`).
fn block_stats<T: Real>(
    x: &[T],
    m: usize,
    binner: Option<&Binner<'_>>,
    saturation: Option<(f64, f64)>,
    part: &mut [f64],
) {
    let rows = x.len() / m;
    let (mean, rest) = part.split_at_mut(m);
    let (m2, rest) = rest.split_at_mut(m);
    let (mn, rest) = rest.split_at_mut(m);
    let (mx, rest) = rest.split_at_mut(m);
    let (hist, sat) = rest.split_at_mut(rest.len() - 1);
    mean.fill(0.0);
    m2.fill(0.0);
    mn.fill(f64::INFINITY);
    mx.fill(f64::NEG_INFINITY);
    hist.fill(0.0);
    let mut nsat = 0u64;
    // `f64::min`/`max` ignore NaN but always store, so these stay plain vector loops (a
    // NaN-sticky select becomes a masked store, which stalls the next row's load). A NaN makes
    // the column sum NaN, which is where it is caught below. Four rows per accumulator update,
    // added left to right: the same order as one row at a time.
    let (groups, rest) = quads(x, m);
    for q in groups {
        let (a, b, c, d) = split4(q, m);
        let (a, b, c, d) = (&a[..m], &b[..m], &c[..m], &d[..m]);
        let (mean, mn, mx) = (&mut mean[..m], &mut mn[..m], &mut mx[..m]);
        for j in 0..m {
            let (a, b, c, d) = (a[j].f64(), b[j].f64(), c[j].f64(), d[j].f64());
            mean[j] = mean[j] + a + b + c + d;
            mn[j] = mn[j].min(a).min(b).min(c).min(d);
            mx[j] = mx[j].max(a).max(b).max(c).max(d);
        }
    }
    for row in rest {
        for (((s, lo), hi), &v) in mean.iter_mut().zip(mn.iter_mut()).zip(mx.iter_mut()).zip(row) {
            let v = v.f64();
            *s += v;
            *lo = lo.min(v);
            *hi = hi.max(v);
        }
    }
    for row in x.chunks_exact(m) {
        if let Some((low, high)) = saturation {
            nsat += row
                .iter()
                .map(|&v| (v.f64() <= low || v.f64() >= high) as u64)
                .sum::<u64>();
        }
        if let Some(b) = binner {
            let nb = hist.len() / HIST_COPIES;
            let mut q = row.chunks_exact(HIST_COPIES);
            for c in &mut q {
                for (copy, &v) in c.iter().enumerate() {
                    let (k, w) = b.bin(v.f64());
                    hist[copy * nb + k] += w;
                }
            }
            for &v in q.remainder() {
                let (k, w) = b.bin(v.f64());
                hist[k] += w;
            }
        }
    }
    // A NaN sum means a NaN in the column, or +inf and −inf together: look for the NaN.
    for j in 0..m {
        if mean[j].is_nan() && x.iter().skip(j).step_by(m).any(|v| v.is_nan()) {
            mn[j] = f64::NAN;
            mx[j] = f64::NAN;
        }
    }
    let inv = 1.0 / rows as f64;
    for s in mean.iter_mut() {
        *s *= inv;
    }
    let sq = |v: T, mu: f64| {
        let d = v.f64() - mu;
        d * d
    };
    let (groups, rest) = quads(x, m);
    for q in groups {
        let (a, b, c, d) = split4(q, m);
        for (((((q, &mu), &a), &b), &c), &d) in m2.iter_mut().zip(mean.iter()).zip(a).zip(b).zip(c).zip(d) {
            *q = *q + sq(a, mu) + sq(b, mu) + sq(c, mu) + sq(d, mu);
        }
    }
    for row in rest {
        for ((q, &mu), &v) in m2.iter_mut().zip(mean.iter()).zip(row) {
            *q += sq(v, mu);
        }
    }
    sat[0] = nsat as f64;
}
}

/// Statistics of `x (n, m)` (row-major) into `out`; see the module docs. `edges` (checked with
/// [`check_edges`]) gives `out.hist.len() == edges.len() − 1` bins; `saturation = (low, high)`.
/// `work` must hold [`workspace_len`]`(n, m, bins)` values. Needs `n·m > 0`.
pub fn column_stats<T: Real>(
    x: &[T],
    n: usize,
    m: usize,
    edges: Option<&[f64]>,
    saturation: Option<(f64, f64)>,
    work: &mut [f64],
    out: ColumnStatsOut<'_>,
) -> Result<Fractions, ShapeError> {
    ensure!(
        n > 0 && m > 0,
        "argument 'x' is empty (shape ({n}, {m})); statistics need at least one entry"
    );
    ensure!(
        x.len() == n * m,
        "argument 'x' has {} elements, expected {n}x{m}",
        x.len()
    );
    for (name, len) in [
        ("mean", out.mean.len()),
        ("var", out.var.len()),
        ("min", out.min.len()),
        ("max", out.max.len()),
    ] {
        ensure!(len == m, "output '{name}' has {len} elements, expected {m}");
    }
    if let Some(e) = edges {
        check_edges(e)?;
    }
    if let Some((lo, hi)) = saturation {
        check_saturation(lo, hi)?;
    }
    let nbins = edges.map_or(0, |e| e.len() - 1);
    ensure!(
        out.hist.len() == nbins,
        "output 'hist' has {} elements, expected {nbins}",
        out.hist.len()
    );
    let bl = block_len(m, nbins);
    ensure!(
        work.len() >= workspace_len(n, m, nbins),
        "workspace has {} values, stats::column_stats needs {}",
        work.len(),
        workspace_len(n, m, nbins)
    );
    let parts = &mut work[..workspace_len(n, m, nbins)];
    let binner = edges.map(Binner::new);
    // Work per row in "elementwise op" units: the two reads from cache are cheap, a histogram
    // bin search per entry is not.
    let row_cost = m * if binner.is_some() { 2 } else { 1 };
    let blocks = RowBlocks::new(n, BLOCK_ROWS);
    blocks.for_each(parts, bl, row_cost, |r, p| {
        block_stats(&x[r.start * m..r.end * m], m, binner.as_ref(), saturation, p)
    });

    // Merge in block order.
    let ColumnStatsOut {
        mean,
        var,
        min,
        max,
        hist,
    } = out;
    let first = &parts[..bl];
    mean.copy_from_slice(&first[..m]);
    var.copy_from_slice(&first[m..2 * m]);
    min.copy_from_slice(&first[2 * m..3 * m]);
    max.copy_from_slice(&first[3 * m..4 * m]);
    let mut na = blocks.rows_of(0).len() as f64;
    for (b, p) in parts.chunks_exact(bl).enumerate().skip(1) {
        let nb = blocks.rows_of(b).len() as f64;
        let tot = na + nb;
        let (wb, wab) = (nb / tot, na * nb / tot);
        for j in 0..m {
            let delta = p[j] - mean[j];
            if delta.is_finite() {
                mean[j] += delta * wb;
            } else {
                // An infinite (or NaN) block mean: inf − inf in δ would turn +inf into NaN.
                mean[j] += p[j];
            }
            var[j] += p[m + j] + delta * delta * wab;
            min[j] = nan_min(min[j], p[2 * m + j]);
            max[j] = nan_max(max[j], p[3 * m + j]);
        }
        na = tot;
    }
    let inv_n = 1.0 / n as f64;
    for v in var.iter_mut() {
        *v *= inv_n;
    }
    hist.fill(0);
    let mut nsat = 0i64;
    for p in parts.chunks_exact(bl) {
        for copy in p[4 * m..4 * m + HIST_COPIES * nbins].chunks_exact(nbins.max(1)) {
            for (h, &c) in hist.iter_mut().zip(copy) {
                *h += c as i64;
            }
        }
        nsat += p[bl - 1] as i64;
    }
    let dead = min
        .iter()
        .zip(max.iter())
        .filter(|(&lo, &hi)| lo == 0.0 && hi == 0.0)
        .count();
    Ok(Fractions {
        saturated: nsat as f64 / (n * m) as f64,
        dead: dead as f64 / m as f64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::parallel::{self, PAR_THRESHOLD};

    use crate::kernels::test_data::uniform as data;

    struct Res {
        mean: Vec<f64>,
        var: Vec<f64>,
        min: Vec<f64>,
        max: Vec<f64>,
        hist: Vec<i64>,
        fr: Fractions,
    }

    fn run<T: Real>(x: &[T], n: usize, m: usize, edges: Option<&[f64]>, sat: Option<(f64, f64)>) -> Res {
        let nb = edges.map_or(0, |e| e.len() - 1);
        let mut r = Res {
            mean: vec![0.0; m],
            var: vec![0.0; m],
            min: vec![0.0; m],
            max: vec![0.0; m],
            hist: vec![0; nb],
            fr: Fractions {
                saturated: 0.0,
                dead: 0.0,
            },
        };
        let mut w = vec![0.0; workspace_len(n, m, nb)];
        let out = ColumnStatsOut {
            mean: &mut r.mean,
            var: &mut r.var,
            min: &mut r.min,
            max: &mut r.max,
            hist: &mut r.hist,
        };
        r.fr = column_stats(x, n, m, edges, sat, &mut w, out).unwrap();
        r
    }

    fn naive(x: &[f64], n: usize, m: usize, edges: &[f64], sat: (f64, f64)) -> Res {
        let mut r = Res {
            mean: vec![0.0; m],
            var: vec![0.0; m],
            min: vec![0.0; m],
            max: vec![0.0; m],
            hist: vec![0; edges.len() - 1],
            fr: Fractions {
                saturated: 0.0,
                dead: 0.0,
            },
        };
        let mut nsat = 0;
        let mut dead = 0;
        for j in 0..m {
            let col: Vec<f64> = (0..n).map(|i| x[i * m + j]).collect();
            r.mean[j] = col.iter().sum::<f64>() / n as f64;
            r.var[j] = col.iter().map(|v| (v - r.mean[j]).powi(2)).sum::<f64>() / n as f64;
            r.min[j] = col.iter().cloned().fold(f64::INFINITY, f64::min);
            r.max[j] = col.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            dead += col.iter().all(|&v| v == 0.0) as usize;
            for &v in &col {
                nsat += (v <= sat.0 || v >= sat.1) as usize;
                let last = edges.len() - 1;
                for k in 0..last {
                    if edges[k] <= v && (v < edges[k + 1] || (k + 1 == last && v == edges[last])) {
                        r.hist[k] += 1;
                    }
                }
            }
        }
        r.fr = Fractions {
            saturated: nsat as f64 / (n * m) as f64,
            dead: dead as f64 / m as f64,
        };
        r
    }

    fn close(a: &[f64], b: &[f64], tol: f64) -> bool {
        a.iter().zip(b).all(|(a, b)| (a - b).abs() <= tol * (1.0 + b.abs()))
    }

    fn check<T: Real>(n: usize, m: usize, tol: f64) {
        // Values on a grid of 1/8 so that some land exactly on the edges; every third column 0.
        let x: Vec<T> = data(n * m, (n * 13 + m) as u64)
            .iter()
            .enumerate()
            .map(|(k, &v)| {
                if (k % m) % 3 == 2 {
                    T::zero()
                } else {
                    T::of((v * 24.0).round() / 8.0)
                }
            })
            .collect();
        let x64: Vec<f64> = x.iter().map(|v| v.f64()).collect();
        let uniform: Vec<f64> = (0..=8).map(|i| -2.0 + 0.5 * i as f64).collect();
        let uneven = [-2.5, -1.0, -0.125, 0.0, 0.25, 2.0];
        for edges in [&uniform[..], &uneven[..]] {
            let got = run(&x, n, m, Some(edges), Some((-1.0, 1.5)));
            let want = naive(&x64, n, m, edges, (-1.0, 1.5));
            assert!(close(&got.mean, &want.mean, tol), "mean n={n} m={m}");
            assert!(close(&got.var, &want.var, tol), "var n={n} m={m}");
            assert_eq!(got.min, want.min);
            assert_eq!(got.max, want.max);
            assert_eq!(got.hist, want.hist, "hist n={n} m={m} edges={edges:?}");
            assert_eq!(got.fr, want.fr);
        }
        let plain = run(&x, n, m, None, None);
        assert!(plain.hist.is_empty() && plain.fr.saturated == 0.0);
    }

    #[test]
    fn matches_naive_loops_on_awkward_shapes() {
        for &n in &[1, 2, 7, 8, 9, 15, 16, 17, 63, 64, 65, 200] {
            for &m in &[1, 3, 7, 8, 9, 16, 17] {
                check::<f64>(n, m, 1e-13);
                check::<f32>(n, m, 1e-13);
            }
        }
    }

    #[test]
    fn nearly_uniform_edges_bin_exactly() {
        // Edges up to 0.08 of a bin off the even grid still take the fast path; values include
        // the edges themselves and their neighbours.
        let edges: Vec<f64> = (0..=12)
            .map(|i| -3.0 + 0.5 * i as f64 + 0.02 * if i % 2 == 0 { 1.0 } else { -1.0 })
            .collect();
        assert!(Binner::new(&edges).uniform);
        let mut x: Vec<f64> = data(3000, 17).iter().map(|v| 3.5 * v).collect();
        for &e in &edges {
            x.extend([e, e.next_up(), e.next_down()]);
        }
        x.extend([f64::NAN, f64::INFINITY, f64::NEG_INFINITY]);
        let n = x.len() / 3;
        x.truncate(n * 3);
        let got = run(&x, n, 3, Some(&edges), None);
        let want = naive(&x, n, 3, &edges, (0.0, 1.0));
        assert_eq!(got.hist, want.hist);
    }

    #[test]
    fn parallel_path_matches_and_is_thread_count_independent() {
        let (n, m) = (3 * PAR_THRESHOLD / 50 + 3, 50);
        check::<f32>(n, m, 1e-12);
        let x: Vec<f32> = data(n * m, 4).iter().map(|&v| v as f32).collect();
        let edges: Vec<f64> = (0..=20).map(|i| -1.0 + 0.1 * i as f64).collect();
        let prev = parallel::num_threads();
        parallel::set_num_threads(1).unwrap();
        let a = run(&x, n, m, Some(&edges), Some((-0.9, 0.9)));
        parallel::set_num_threads(3).unwrap();
        let b = run(&x, n, m, Some(&edges), Some((-0.9, 0.9)));
        parallel::set_num_threads(prev).unwrap();
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&a.mean), bits(&b.mean));
        assert_eq!(bits(&a.var), bits(&b.var));
        assert_eq!((a.hist, a.fr), (b.hist, b.fr));
    }

    #[test]
    fn stable_variance_and_nan_inf_handling() {
        // Large mean, small spread across many blocks: Chan's merge keeps the variance.
        let (n, m) = (1000, 2);
        let x: Vec<f32> = data(n * m, 9).iter().map(|&v| (1e4 + 1e-2 * v) as f32).collect();
        let x64: Vec<f64> = x.iter().map(|&v| v as f64).collect();
        let want = naive(&x64, n, m, &[0.0, 1.0], (0.0, 1.0));
        let got = run(&x, n, m, None, None);
        assert!(close(&got.var, &want.var, 1e-9), "{:?} vs {:?}", got.var, want.var);

        let nan = f64::NAN;
        let inf = f64::INFINITY;
        let mut x = vec![1.0f64; 130 * 4];
        x[100 * 4] = nan; // column 0, a later block
        x[4 + 1] = inf; // column 1
        x[2] = 0.0; // column 2 stays finite
        for i in 0..130 {
            x[i * 4 + 3] = 0.0; // column 3 dead
        }
        let r = run(&x, 130, 4, Some(&[0.0, 1.0, 2.0]), Some((0.0, 1.0)));
        assert!(r.mean[0].is_nan() && r.var[0].is_nan() && r.min[0].is_nan() && r.max[0].is_nan());
        assert!(r.mean[1] == inf && r.var[1].is_nan() && r.max[1] == inf && r.min[1] == 1.0);
        assert!(r.mean[2].is_finite() && r.min[2] == 0.0);
        assert_eq!(r.fr.dead, 0.25);
        // 520 entries: one NaN (no bin), one inf (outside), 1 + 130 zeros, the rest ones.
        assert_eq!(r.hist, vec![131, 387]);
        // Saturated: every 0 and 1, and the inf; not the NaN.
        assert_eq!(r.fr.saturated, 519.0 / 520.0);
    }

    #[test]
    fn bad_arguments_are_errors() {
        let x = [1.0f64; 4];
        let (mut a, mut b, mut c, mut d) = ([0.0; 2], [0.0; 2], [0.0; 2], [0.0; 2]);
        let mut h = [0i64; 1];
        let mut w = vec![0.0; 100];
        let mut go = |e: Option<&[f64]>, s: Option<(f64, f64)>| {
            let out = ColumnStatsOut {
                mean: &mut a,
                var: &mut b,
                min: &mut c,
                max: &mut d,
                hist: &mut h,
            };
            column_stats(&x, 2, 2, e, s, &mut w, out).map_err(|e| e.0)
        };
        assert!(go(Some(&[1.0, 1.0]), None).unwrap_err().contains("edges"));
        assert!(go(Some(&[1.0]), None).unwrap_err().contains("edges"));
        assert!(go(Some(&[0.0, f64::INFINITY]), None).unwrap_err().contains("edges"));
        assert!(go(None, Some((1.0, 0.0))).unwrap_err().contains("saturation"));
        assert!(go(None, Some((f64::NAN, 0.0))).unwrap_err().contains("saturation"));
        assert!(go(Some(&[0.0, 1.0]), Some((0.0, 1.0))).is_ok());
    }
}
