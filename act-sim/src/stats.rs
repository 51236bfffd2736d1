//! Honest success rates: a rate over n rollouts with its Wilson score interval, which stays
//! inside 0..1 and keeps its coverage at the 0/n and n/n ends, where the normal approximation
//! collapses to a zero-width interval.

/// The standard normal quantile for a two-sided 95 % interval.
pub const Z95: f64 = 1.959_963_984_540_054;

/// The Wilson score interval of `k` successes in `n` trials at normal quantile `z`, as fractions
/// (lo, hi); (0, 1) when n is 0.
pub fn wilson_interval(k: usize, n: usize, z: f64) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let (k, n) = (k.min(n) as f64, n as f64);
    let p = k / n;
    let z2 = z * z;
    let denom = 1.0 + z2 / n;
    let center = (p + z2 / (2.0 * n)) / denom;
    let half = z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / denom;
    ((center - half).max(0.0), (center + half).min(1.0))
}

/// "42/50 = 84 % (Wilson 95 % CI 71-92 %)".
pub fn rate_with_interval(k: usize, n: usize) -> String {
    let (lo, hi) = wilson_interval(k, n, Z95);
    format!("{k}/{n} = {:.0} % (Wilson 95 % CI {:.0}-{:.0} %)", 100.0 * k as f64 / n.max(1) as f64, 100.0 * lo, 100.0 * hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Hand computation (z = 1.96): 42/50: p = 0.84, centre (0.84 + 0.038415) / 1.076829 = 0.815744,
    // half-width 1.96 * sqrt(0.002688 + 0.000384) / 1.076829 = 0.100882.
    #[test]
    fn matches_a_hand_computation() {
        let (lo, hi) = wilson_interval(42, 50, Z95);
        assert!((lo - 0.714856).abs() < 1e-4, "{lo}");
        assert!((hi - 0.916626).abs() < 1e-4, "{hi}");
    }

    // At 0/n the interval is (0, z^2 / (n + z^2)): 3.841459 / 23.841459 = 0.161122 for n = 20.
    #[test]
    fn the_ends_keep_a_width() {
        let (lo, hi) = wilson_interval(0, 20, Z95);
        assert_eq!(lo, 0.0);
        assert!((hi - 0.161122).abs() < 1e-5, "{hi}");
        let (lo, hi) = wilson_interval(20, 20, Z95);
        assert!((lo - (1.0 - 0.161122)).abs() < 1e-5, "{lo}");
        assert_eq!(hi, 1.0);
        assert_eq!(wilson_interval(3, 0, Z95), (0.0, 1.0));
    }

    #[test]
    fn formats_rate_and_interval() {
        assert_eq!(rate_with_interval(42, 50), "42/50 = 84 % (Wilson 95 % CI 71-92 %)");
    }
}
