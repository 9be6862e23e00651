//! Test-only random draws for the simulations that check the sequential tests.

use rand::Rng;
use rand::rngs::StdRng;

/// Poisson draw by inversion (means here are small).
pub fn poisson(rng: &mut StdRng, mean: f64) -> u64 {
    let limit = (-mean).exp();
    let mut k = 0;
    let mut prod: f64 = rng.random();
    while prod > limit {
        k += 1;
        prod *= rng.random::<f64>();
    }
    k
}

/// Binomial draw as a sum of Bernoulli trials.
pub fn binomial(rng: &mut StdRng, n: u64, p: f64) -> u64 {
    (0..n).filter(|_| rng.random::<f64>() < p).count() as u64
}

/// Monte-Carlo slack: three standard errors of a proportion `alpha` estimated from `runs`.
pub fn slack(alpha: f64, runs: usize) -> f64 {
    3.0 * (alpha * (1.0 - alpha) / runs as f64).sqrt()
}
