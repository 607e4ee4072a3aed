//! Quantiles of bootstrap draws (type 7, linear between order statistics), with
//! infinities (censored draws) propagated.

/// `quantile` of values in any order, by selection rather than a full sort (the two
/// order statistics it needs); reorders `values`.
pub fn quantile_unsorted(values: &mut [f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let position = q * (values.len() - 1) as f64;
    let (lo, hi) = (position.floor() as usize, position.ceil() as usize);
    let (_, &mut a, right) = values.select_nth_unstable_by(lo, f64::total_cmp);
    let b = if hi == lo {
        a
    } else {
        right.iter().copied().fold(f64::INFINITY, f64::min)
    };
    interpolate_order_statistics(a, b, position - lo as f64)
}

/// Quantile of sorted values by linear interpolation between order statistics (type 7,
/// the default of R and NumPy); infinities propagate as "not reached".
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let position = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (position.floor() as usize, position.ceil() as usize);
    interpolate_order_statistics(sorted[lo], sorted[hi], position - lo as f64)
}

/// Between order statistics a <= b at fraction t; infinities propagate.
fn interpolate_order_statistics(a: f64, b: f64, t: f64) -> f64 {
    if a == b || a.is_infinite() || b.is_infinite() {
        return if t >= 0.5 || a == b { b } else { a };
    }
    a + t * (b - a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    #[test]
    fn quantile_cases() {
        let values = [1.0, 2.0, 3.0, 4.0, f64::INFINITY];
        assert_eq!(quantile(&values, 0.5), 3.0);
        assert_eq!(quantile(&values, 0.25), 2.0);
        assert_eq!(quantile(&values, 0.1), 1.4);
        assert!(quantile(&values, 0.95).is_infinite());
        assert!(quantile(&[], 0.5).is_nan());
    }

    #[test]
    fn quantile_by_selection_equals_quantile_of_sorted() {
        let mut rng = Rng::new(3);
        for n in [1, 2, 3, 10, 101, 1000] {
            let mut values: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
            if n > 3 {
                values[1] = f64::INFINITY;
            }
            let mut sorted = values.clone();
            sorted.sort_by(f64::total_cmp);
            for q in [0.0, 0.05, 0.5, 0.95, 1.0] {
                let mut scratch = values.clone();
                assert_eq!(
                    quantile_unsorted(&mut scratch, q).to_bits(),
                    quantile(&sorted, q).to_bits(),
                    "n {n} q {q}"
                );
            }
        }
    }
}
