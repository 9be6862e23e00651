//! Shared sample generation for the statistics benchmarks: seeded log-normal latencies, the
//! same for criterion and for the timing helper that runs beside scipy.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// `n` log-normal values (median `median`, shape 0.9) from `seed`.
pub fn lognormal(n: usize, median: f64, seed: u64) -> Vec<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let u1: f64 = 1.0 - rng.random::<f64>();
            let u2: f64 = rng.random();
            let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
            median * (0.9 * z).exp()
        })
        .collect()
}
