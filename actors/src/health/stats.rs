//! Exact running statistics: Neumaier-compensated sums, Welford variance with Chan's merge, and
//! the affine unit change of a whole accumulator (so readings are never stored).

use crate::health::time::Stamp;

/// A Neumaier (improved Kahan-Babuška) compensated sum.
#[derive(Debug, Clone, Copy, Default)]
pub struct Neumaier {
    sum: f64,
    comp: f64,
}

impl Neumaier {
    /// Adds one term.
    #[inline]
    pub fn add(&mut self, x: f64) {
        let t = self.sum + x;
        if self.sum.abs() >= x.abs() {
            self.comp += (self.sum - t) + x;
        } else {
            self.comp += (x - t) + self.sum;
        }
        self.sum = t;
    }

    /// The compensated total.
    pub fn value(&self) -> f64 {
        self.sum + self.comp
    }
}

/// Count, compensated sum, Welford mean/M2, min, max and first/last time of one series.
#[derive(Debug, Clone, Copy)]
pub struct Acc {
    /// Number of readings.
    pub count: u64,
    /// Compensated sum of the values.
    pub sum: Neumaier,
    mean: f64,
    m2: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// Earliest reading time.
    pub first: Option<Stamp>,
    /// Latest reading time.
    pub last: Option<Stamp>,
}

impl Default for Acc {
    fn default() -> Self {
        Acc {
            count: 0,
            sum: Neumaier::default(),
            mean: 0.0,
            m2: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            first: None,
            last: None,
        }
    }
}

impl Acc {
    /// Adds one reading taken at `at`.
    #[inline]
    pub fn add(&mut self, x: f64, at: Stamp) {
        self.count += 1;
        self.sum.add(x);
        let delta = x - self.mean;
        self.mean += delta / self.count as f64;
        self.m2 += delta * (x - self.mean);
        self.min = self.min.min(x);
        self.max = self.max.max(x);
        if self.first.is_none_or(|f| at.utc < f.utc) {
            self.first = Some(at);
        }
        if self.last.is_none_or(|l| at.utc > l.utc) {
            self.last = Some(at);
        }
    }

    /// Merges another accumulator of the same unit (Chan et al.).
    pub fn merge(&mut self, o: &Acc) {
        if o.count == 0 {
            return;
        }
        if self.count == 0 {
            *self = *o;
            return;
        }
        let n = (self.count + o.count) as f64;
        let delta = o.mean - self.mean;
        self.m2 += o.m2 + delta * delta * self.count as f64 * o.count as f64 / n;
        self.mean += delta * o.count as f64 / n;
        self.count += o.count;
        self.sum.add(o.sum.sum);
        self.sum.add(o.sum.comp);
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
        if let Some(f) = o.first {
            if self.first.is_none_or(|s| f.utc < s.utc) {
                self.first = Some(f);
            }
        }
        if let Some(l) = o.last {
            if self.last.is_none_or(|s| l.utc > s.utc) {
                self.last = Some(l);
            }
        }
    }

    /// The same series in another unit, `y = a * x + b` with `a > 0`.
    pub fn transformed(&self, a: f64, b: f64) -> Acc {
        let mut sum = Neumaier::default();
        sum.add(a * self.sum.sum);
        sum.add(a * self.sum.comp);
        sum.add(b * self.count as f64);
        Acc {
            sum,
            mean: a * self.mean + b,
            m2: a * a * self.m2,
            min: a * self.min + b,
            max: a * self.max + b,
            ..*self
        }
    }

    /// Mean from the compensated sum (more exact than the running Welford mean).
    pub fn mean(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum.value() / self.count as f64
        }
    }

    /// Sample standard deviation (n − 1); 0 for fewer than two readings.
    pub fn stddev(&self) -> f64 {
        if self.count < 2 {
            0.0
        } else {
            (self.m2.max(0.0) / (self.count - 1) as f64).sqrt()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(t: i64) -> Stamp {
        Stamp {
            utc: t,
            offset_min: 0,
        }
    }

    #[test]
    fn compensated_sum_survives_catastrophic_cancellation() {
        let mut s = Neumaier::default();
        for x in [1.0, 1e100, 1.0, -1e100] {
            s.add(x);
        }
        assert_eq!(s.value(), 2.0);
    }

    #[test]
    fn merged_and_transformed_accumulators_match_a_direct_one() {
        let xs: Vec<f64> = (0..1000).map(|i| 1e6 + f64::from(i % 37) * 0.1).collect();
        let mut whole = Acc::default();
        let (mut a, mut b) = (Acc::default(), Acc::default());
        for (i, &x) in xs.iter().enumerate() {
            whole.add(x, at(i as i64));
            if i % 3 == 0 {
                a.add(x, at(i as i64))
            } else {
                b.add(x, at(i as i64))
            }
        }
        a.merge(&b);
        assert_eq!(a.count, 1000);
        assert!((a.mean() - whole.mean()).abs() < 1e-9);
        assert!((a.stddev() - whole.stddev()).abs() < 1e-9);
        assert_eq!(a.first, Some(at(0)));
        assert_eq!(a.last, Some(at(999)));
        let t = whole.transformed(2.0, 3.0);
        assert!((t.mean() - (2.0 * whole.mean() + 3.0)).abs() < 1e-6);
        assert!((t.stddev() - 2.0 * whole.stddev()).abs() < 1e-9);
    }
}
