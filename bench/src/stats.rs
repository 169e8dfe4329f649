//! Order statistics of a sample of durations.

use std::time::Duration;

/// Median and p99 of a sample (nearest-rank: each is one of the observed values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// How many observations.
    pub count: usize,
    /// The 50th percentile.
    pub median: Duration,
    /// The 99th percentile.
    pub p99: Duration,
}

impl Summary {
    /// Summarises `samples` (sorted in place); `None` when empty.
    pub fn of(samples: &mut [Duration]) -> Option<Self> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_unstable();
        Some(Self {
            count: samples.len(),
            median: percentile(samples, 50),
            p99: percentile(samples, 99),
        })
    }
}

/// Nearest-rank percentile `p` (1..=100) of a sorted, non-empty sample.
fn percentile(sorted: &[Duration], p: usize) -> Duration {
    let rank = (sorted.len() * p).div_ceil(100).max(1);
    sorted[rank.min(sorted.len()) - 1]
}

/// `a − b − c` in signed microseconds: the cost left when two floors are taken away, which
/// noise can make negative.
pub fn residual_us(a: Duration, b: Duration, c: Duration) -> f64 {
    (a.as_secs_f64() - b.as_secs_f64() - c.as_secs_f64()) * 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us(v: u64) -> Duration {
        Duration::from_micros(v)
    }

    #[test]
    fn nearest_rank() {
        let mut s: Vec<_> = (1..=100).rev().map(us).collect();
        let sum = Summary::of(&mut s).unwrap();
        assert_eq!(sum.median, us(50));
        assert_eq!(sum.p99, us(99));
        assert_eq!(sum.count, 100);
        let mut one = vec![us(7)];
        let sum = Summary::of(&mut one).unwrap();
        assert_eq!((sum.median, sum.p99), (us(7), us(7)));
        assert!(Summary::of(&mut []).is_none());
    }

    #[test]
    fn residual_can_be_negative() {
        assert!((residual_us(us(100), us(60), us(30)) - 10.0).abs() < 1e-6);
        assert!(residual_us(us(10), us(60), us(30)) < 0.0);
    }
}
