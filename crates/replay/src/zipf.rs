//! An exact Zipf sampler over ranks 1..=n by rejection-inversion
//! (Hörmann and Derflinger, 1996): constant expected time per sample and no
//! table, so n = 10^7 costs nothing to set up. P(k) is proportional to k^-alpha.

use crate::rng::Rng;

/// A Zipf(alpha) distribution over 1..=n, ready to sample.
#[derive(Clone, Debug)]
pub struct Zipf {
    n: f64,
    alpha: f64,
    h_x1: f64,
    h_n: f64,
    s: f64,
}

/// (e^x - 1) / x, accurate near 0.
fn expm1_over_x(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.exp_m1() / x
    } else {
        1.0 + x * 0.5 * (1.0 + x / 3.0 * (1.0 + 0.25 * x))
    }
}

/// ln(1 + x) / x, accurate near 0.
fn ln1p_over_x(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.ln_1p() / x
    } else {
        1.0 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x))
    }
}

impl Zipf {
    /// A sampler for `n >= 1` ranks with exponent `alpha > 0` (alpha = 1 included).
    pub fn new(n: u64, alpha: f64) -> Zipf {
        assert!(n >= 1 && alpha > 0.0 && alpha.is_finite());
        let mut z = Zipf {
            n: n as f64,
            alpha,
            h_x1: 0.0,
            h_n: 0.0,
            s: 0.0,
        };
        z.h_x1 = z.big_h(1.5) - 1.0;
        z.h_n = z.big_h(n as f64 + 0.5);
        z.s = 2.0 - z.big_h_inv(z.big_h(2.5) - z.h(2.0));
        z
    }

    /// The density x^-alpha.
    fn h(&self, x: f64) -> f64 {
        (-self.alpha * x.ln()).exp()
    }

    /// An antiderivative of h: (x^(1-alpha) - 1) / (1 - alpha), or ln x at alpha = 1.
    fn big_h(&self, x: f64) -> f64 {
        let lx = x.ln();
        expm1_over_x((1.0 - self.alpha) * lx) * lx
    }

    /// The inverse of `big_h`.
    fn big_h_inv(&self, y: f64) -> f64 {
        let t = (y * (1.0 - self.alpha)).max(-1.0);
        (ln1p_over_x(t) * y).exp()
    }

    /// One rank in 1..=n.
    pub fn sample(&self, rng: &mut Rng) -> u64 {
        loop {
            let u = self.h_n + rng.next_f64() * (self.h_x1 - self.h_n);
            let x = self.big_h_inv(u);
            let k = x.round().clamp(1.0, self.n);
            // Accept at once inside the squeeze, else test against the hat.
            if k - x <= self.s || u >= self.big_h(k + 0.5) - self.h(k) {
                return k as u64;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Empirical frequencies against the exact probabilities, for several alphas.
    #[test]
    fn frequencies_match_the_exact_distribution() {
        for &alpha in &[0.7, 0.9, 1.0, 1.2] {
            let n = 50u64;
            let z = Zipf::new(n, alpha);
            let norm: f64 = (1..=n).map(|k| (k as f64).powf(-alpha)).sum();
            let mut rng = Rng::new(42);
            let draws = 400_000;
            let mut counts = vec![0u64; n as usize + 1];
            for _ in 0..draws {
                let k = z.sample(&mut rng);
                assert!((1..=n).contains(&k));
                counts[k as usize] += 1;
            }
            for k in 1..=n {
                let p = (k as f64).powf(-alpha) / norm;
                let expect = p * draws as f64;
                let sd = (expect * (1.0 - p)).sqrt();
                let got = counts[k as usize] as f64;
                assert!(
                    (got - expect).abs() < 5.0 * sd + 1.0,
                    "alpha {alpha} k {k}: {got} vs {expect}"
                );
            }
        }
    }

    #[test]
    fn one_rank_and_huge_n_work() {
        let mut rng = Rng::new(3);
        let z = Zipf::new(1, 0.9);
        assert!((0..100).all(|_| z.sample(&mut rng) == 1));
        let z = Zipf::new(10_000_000, 1.2);
        assert!((0..10_000).all(|_| (1..=10_000_000).contains(&z.sample(&mut rng))));
    }
}
