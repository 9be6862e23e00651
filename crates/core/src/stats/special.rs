//! Special functions shared by the tests: normal tail probabilities and binomial
//! coefficients in the forms scipy evaluates them.

use statrs::function::erf::erfc;
use statrs::function::factorial::ln_factorial;
use statrs::function::gamma::ln_gamma;

/// P(Z > z) for a standard normal Z, accurate far into the tail.
pub fn norm_sf(z: f64) -> f64 {
    if z.is_nan() {
        return f64::NAN;
    }
    0.5 * erfc(z / std::f64::consts::SQRT_2)
}

/// P(Z <= z) for a standard normal Z.
pub fn norm_cdf(z: f64) -> f64 {
    norm_sf(-z)
}

/// The standard normal quantile Φ⁻¹(p) for 0 < p < 1.
pub fn norm_ppf(p: f64) -> f64 {
    -std::f64::consts::SQRT_2 * statrs::function::erf::erfc_inv(2.0 * p)
}

/// ln C(n, k) for integers 0 <= k <= n.
pub fn ln_binom(n: u64, k: u64) -> f64 {
    ln_factorial(n) - ln_factorial(k) - ln_factorial(n - k)
}

/// C(n, k) as a float the way `scipy.special.binom` evaluates integer arguments: an exact
/// product for small k (after using the symmetry), a Beta-function form otherwise; infinite
/// when the value exceeds the float range.
pub fn binom(n: f64, k: f64) -> f64 {
    let mut kx = k.floor();
    let nx = n.floor();
    if nx == n && kx > nx / 2.0 && nx > 0.0 {
        kx = nx - kx;
    }
    if (0.0..20.0).contains(&kx) {
        let mut num = 1.0;
        let mut den = 1.0;
        let mut i = 1.0;
        while i < 1.0 + kx {
            num *= i + n - kx;
            den *= i;
            if num.abs() > 1e50 {
                num /= den;
                den = 1.0;
            }
            i += 1.0;
        }
        return num / den;
    }
    let ln = ln_gamma(n + 1.0) - ln_gamma(k + 1.0) - ln_gamma(n - k + 1.0);
    ln.exp()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_tails_match_known_values() {
        // scipy.stats.norm.sf(1.959963984540054) = 0.025; norm.sf(10) = 7.619853024160526e-24
        assert!(
            (norm_sf(1.959963984540054) / 0.025 - 1.0).abs() < 1e-9,
            "{}",
            norm_sf(1.959963984540054)
        );
        assert!(
            (norm_sf(10.0) / 7.619853024160526e-24 - 1.0).abs() < 1e-9,
            "{}",
            norm_sf(10.0)
        );
        assert!((norm_ppf(0.975) - 1.959963984540054).abs() < 1e-12);
        assert_eq!(norm_cdf(0.0), 0.5);
    }

    #[test]
    fn binomials_are_exact_for_small_k_and_overflow_to_infinity() {
        assert_eq!(binom(10.0, 3.0), 120.0);
        assert_eq!(binom(10.0, 7.0), 120.0);
        assert!((binom(60.0, 30.0) / 1.1826458156486142e17 - 1.0).abs() < 1e-12);
        assert!(binom(3000.0, 1500.0).is_infinite());
        assert!((ln_binom(10, 3) - 120f64.ln()).abs() < 1e-12);
    }
}
