//! Counters the worker keeps: requests by outcome, bad input, reconnects, registrar outcomes.
//! They are plain atomics, read by the metrics endpoint and by tests.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::build_api::BuildResult;
use crate::registrar::Registration;

/// A Prometheus-style histogram with fixed bucket bounds.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    /// Per bucket (the last one is +Inf), not cumulative.
    counts: Vec<AtomicU64>,
    /// The sum of observations, in millionths.
    sum_micro: AtomicU64,
}

impl Histogram {
    /// A histogram with these upper bounds.
    pub fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_micro: AtomicU64::new(0),
        }
    }

    /// Records one observation.
    pub fn observe(&self, v: f64) {
        let i = self
            .bounds
            .iter()
            .position(|b| v <= *b)
            .unwrap_or(self.bounds.len());
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        self.sum_micro
            .fetch_add((v.max(0.0) * 1e6) as u64, Ordering::Relaxed);
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// Appends the histogram in the Prometheus text format.
    pub fn render(&self, name: &str, help: &str, out: &mut String) {
        use std::fmt::Write;
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (i, bound) in self.bounds.iter().enumerate() {
            cumulative += self.counts[i].load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        cumulative += self.counts[self.bounds.len()].load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
        let sum = self.sum_micro.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {cumulative}");
    }
}

/// Bucket bounds for latencies, in seconds.
pub const LATENCY_BOUNDS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];
/// Bucket bounds for legs per build.
pub const LEGS_BOUNDS: &[f64] = &[0.0, 1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 21.0, 50.0];

/// The worker's counters.
#[derive(Debug)]
pub struct Stats {
    /// Requests answered with `build_resp`.
    pub built: AtomicU64,
    /// Requests answered with `build_error`, by `Error-Code`.
    errors: Mutex<BTreeMap<&'static str, u64>>,
    /// Messages that were not a valid request (subset of the `invalid_request` errors, plus
    /// bad messages that had no reply address).
    pub invalid_inputs: AtomicU64,
    /// Messages acknowledged without a reply because they had no reply address, or one AMQP
    /// cannot carry.
    pub unanswerable: AtomicU64,
    /// Request tasks that panicked (their deliveries were settled all the same).
    pub task_failures: AtomicU64,
    /// Broker connections re-established after a loss.
    pub reconnects: AtomicU64,
    /// Registration outcomes.
    pub registered: AtomicU64,
    /// Registration outcomes.
    pub unregistered: AtomicU64,
    /// Registration outcomes.
    pub unknown: AtomicU64,
    /// Time from a request's arrival to its reply, in seconds.
    pub build_seconds: Histogram,
    /// Legs per successful build.
    pub legs_per_build: Histogram,
    /// Time builds spent waiting for the registrars, in seconds.
    pub registrar_seconds: Histogram,
}

impl Default for Stats {
    fn default() -> Self {
        Self {
            built: AtomicU64::new(0),
            errors: Mutex::new(BTreeMap::new()),
            invalid_inputs: AtomicU64::new(0),
            unanswerable: AtomicU64::new(0),
            task_failures: AtomicU64::new(0),
            reconnects: AtomicU64::new(0),
            registered: AtomicU64::new(0),
            unregistered: AtomicU64::new(0),
            unknown: AtomicU64::new(0),
            build_seconds: Histogram::new(LATENCY_BOUNDS),
            legs_per_build: Histogram::new(LEGS_BOUNDS),
            registrar_seconds: Histogram::new(LATENCY_BOUNDS),
        }
    }
}

impl Stats {
    /// Counts one handled request.
    pub fn record(&self, result: &BuildResult) {
        match result {
            Ok(legs) => {
                self.built.fetch_add(1, Ordering::Relaxed);
                self.legs_per_build.observe(legs.len() as f64);
            }
            Err(e) => {
                *self
                    .errors
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .entry(e.code.as_str())
                    .or_default() += 1;
            }
        }
    }

    /// Counts registration outcomes.
    pub fn record_registrations<'a>(&self, states: impl IntoIterator<Item = &'a Registration>) {
        for s in states {
            let c = match s {
                Registration::Registered => &self.registered,
                Registration::Unregistered => &self.unregistered,
                Registration::Unknown => &self.unknown,
            };
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Errors answered, by code.
    pub fn errors(&self) -> BTreeMap<&'static str, u64> {
        self.errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Errors answered with `code`.
    pub fn error_count(&self, code: &str) -> u64 {
        self.errors().get(code).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_renders_cumulative_buckets() {
        let h = Histogram::new(&[1.0, 2.0]);
        h.observe(0.5);
        h.observe(1.5);
        h.observe(9.0);
        let mut out = String::new();
        h.render("x", "An x.", &mut out);
        assert_eq!(
            out,
            "# HELP x An x.\n# TYPE x histogram\nx_bucket{le=\"1\"} 1\nx_bucket{le=\"2\"} 2\nx_bucket{le=\"+Inf\"} 3\nx_sum 11\nx_count 3\n"
        );
        assert_eq!(h.count(), 3);
    }
}
