//! Deterministic pseudo-random test data in [-1, 1): a 64-bit LCG (Knuth's MMIX constants), so
//! the kernel tests need no `rand` dev-dependency and every run sees the same values.

pub fn uniform(len: usize, seed: u64) -> Vec<f64> {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        })
        .collect()
}
