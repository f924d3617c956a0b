//! Deterministic pseudo-random test data: a 64-bit LCG (Knuth's MMIX constants), so the kernel
//! tests need no `rand` dev-dependency and every run sees the same values. The one generator of
//! the crate's tests.

/// `len` values in [0, 1): the top 53 bits of each LCG state.
pub fn unit(len: usize, seed: u64) -> Vec<f64> {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (s >> 11) as f64 / (1u64 << 53) as f64
        })
        .collect()
}

/// `len` values in [-1, 1).
pub fn uniform(len: usize, seed: u64) -> Vec<f64> {
    unit(len, seed).into_iter().map(|u| u * 2.0 - 1.0).collect()
}

/// `len` values in [lo, hi).
pub fn range(len: usize, seed: u64, lo: f64, hi: f64) -> Vec<f64> {
    unit(len, seed).into_iter().map(|u| lo + (hi - lo) * u).collect()
}
