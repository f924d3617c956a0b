//! Row helpers shared by the kernels that reduce along or across rows (softmax, the losses,
//! BatchNorm, column statistics). Each fixes its order of operations, so a kernel that uses it
//! gets the same bits for any thread count and any batch split:
//! - `row_max`, `row_sum`, `row_dot`: a reduction along one row in eight independent lanes
//!   combined pairwise (vectorizes without reassociating; NaN ignored by `row_max`, so a NaN row
//!   still propagates through the exponentials that follow);
//! - `quads`, `split4`: whole rows four at a time, for sums down the columns that add four rows
//!   per load/store of the accumulator, left to right (the same bits as one row at a time).

use super::Real;

/// Maximum of a row with NaN ignored (a NaN then propagates through the exponentials).
#[inline(always)]
pub(crate) fn row_max<T: Real>(x: &[T]) -> T {
    let mut acc = [T::neg_infinity(); 8];
    let chunks = x.chunks_exact(8);
    let tail = chunks.remainder();
    for c in chunks {
        for l in 0..8 {
            acc[l] = if c[l] > acc[l] { c[l] } else { acc[l] };
        }
    }
    let mut m = acc[0];
    for &v in acc[1..].iter().chain(tail) {
        m = if v > m { v } else { m };
    }
    m
}

/// Σ_j f(x_j) with eight accumulators, combined pairwise in a fixed order.
#[inline(always)]
pub(crate) fn row_sum<T: Real>(x: &[T]) -> T {
    let mut acc = [T::zero(); 8];
    let chunks = x.chunks_exact(8);
    let tail = chunks.remainder();
    for c in chunks {
        for l in 0..8 {
            acc[l] += c[l];
        }
    }
    for (l, &v) in tail.iter().enumerate() {
        acc[l] += v;
    }
    ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]))
}

/// Σ_j a_j b_j with eight accumulators.
#[inline(always)]
pub(crate) fn row_dot<T: Real>(a: &[T], b: &[T]) -> T {
    let mut acc = [T::zero(); 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ta, tb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    for (l, (&x, &y)) in ta.iter().zip(tb).enumerate() {
        acc[l] += x * y;
    }
    ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]))
}

/// Splits `rows` (whole rows of `m`) into groups of four rows and the leftover rows. The sums
/// below add four rows per load/store of the accumulator, left to right, which is the same
/// order (and the same bits) as adding them one row at a time.
#[inline(always)]
pub(crate) fn quads<T>(x: &[T], m: usize) -> (std::slice::ChunksExact<'_, T>, std::slice::ChunksExact<'_, T>) {
    let q = x.chunks_exact(4 * m);
    let rest = q.remainder().chunks_exact(m);
    (q, rest)
}

#[inline(always)]
pub(crate) fn split4<T>(q: &[T], m: usize) -> (&[T], &[T], &[T], &[T]) {
    let (a, r) = q.split_at(m);
    let (b, r) = r.split_at(m);
    let (c, d) = r.split_at(m);
    (a, b, c, d)
}
