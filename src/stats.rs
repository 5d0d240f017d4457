//! The worker's metrics, kept in `prometheus-client` types and served by `/metrics`
//! ([`crate::ops`]) in the OpenMetrics text format.
//!
//! Every series of a closed set (the outcomes and error codes of a request, the registration
//! states, the reasons a registration was not asked) exists from the start at zero, so that
//! `increase()` and `rate()` see its first occurrence. The counters tests read are also
//! reachable as atomics ([`Count`] dereferences to its `AtomicU64`).

use std::ops::Deref;
use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::build_api::{BuildResult, ErrorCode};
use crate::engine::endpoint_type::Unapplied;
use crate::registrar::Registration;

/// Label pairs of a series.
pub type Labels = Vec<(&'static str, &'static str)>;

/// A counter that is also readable as the atomic it counts in.
#[derive(Debug, Clone, Default)]
pub struct Count(pub Counter);

impl Deref for Count {
    type Target = AtomicU64;
    fn deref(&self) -> &AtomicU64 {
        self.0.inner()
    }
}

/// Bucket bounds for latencies, in seconds.
pub const LATENCY_BOUNDS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];
/// Bucket bounds for legs per successful build (which has one leg at least; the largest
/// bound is the default --max-legs).
pub const LEGS_BOUNDS: [f64; 11] = [
    1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 21.0, 50.0, 100.0, 250.0, 1000.0,
];

fn histogram(bounds: &[f64]) -> Histogram {
    Histogram::new(bounds.iter().copied())
}

/// Why a registration lookup was not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotAsked {
    /// No live registrar (ecallmgr) is known.
    NoEcallmgr,
    /// The key does not fit in an AMQP routing key.
    KeyTooLong,
    /// The broker refused the query.
    PublishFailed,
}

impl NotAsked {
    /// Every reason.
    pub const ALL: [NotAsked; 3] = [Self::NoEcallmgr, Self::KeyTooLong, Self::PublishFailed];

    /// The reason's label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoEcallmgr => "no_ecallmgr",
            Self::KeyTooLong => "key_too_long",
            Self::PublishFailed => "publish_failed",
        }
    }
}

/// The registration states.
const STATES: [Registration; 3] = [
    Registration::Registered,
    Registration::Unregistered,
    Registration::Unknown,
];

/// Where `value` is in `all`: the counter kept for it, of those kept in `all`'s order.
fn slot<T: PartialEq + Copy>(all: &[T], value: T) -> usize {
    all.iter()
        .position(|v| *v == value)
        .expect("every value has its counter")
}

/// What the registrar did, counted by the registrar itself: only the lookups it sent count
/// as registrations; the ones it could not send are counted apart, by reason.
#[derive(Debug, Clone)]
pub struct RegistrarMetrics {
    /// Lookups asked of the registrars, by the state they gave: `registered`, `unregistered`
    /// (every live registrar answered without it) and `unknown` (the deadline passed before
    /// any answer).
    pub states: Family<Labels, Counter>,
    /// Lookups that were not sent, by [`NotAsked`] reason.
    pub not_asked: Family<Labels, Counter>,
    /// Lookups whose deadline passed before every live registrar answered.
    pub timeouts: Counter,
    /// Time a build waited for the registrars, in seconds.
    pub seconds: Histogram,
    /// The series of `states` and `not_asked`, found once: counting is then an atomic add,
    /// where finding a series by its labels hashes them with SipHash under a lock (about
    /// 500 instructions a request that has no registrar to ask).
    by_state: [Counter; 3],
    by_reason: [Counter; 3],
}

impl Default for RegistrarMetrics {
    fn default() -> Self {
        let states = Family::<Labels, Counter>::default();
        let not_asked = Family::<Labels, Counter>::default();
        let by_state = STATES.map(|s| states.get_or_create(&vec![("state", s.as_str())]).clone());
        let by_reason = NotAsked::ALL.map(|r| {
            not_asked
                .get_or_create(&vec![("reason", r.as_str())])
                .clone()
        });
        Self {
            states,
            not_asked,
            timeouts: Counter::default(),
            seconds: histogram(&LATENCY_BOUNDS),
            by_state,
            by_reason,
        }
    }
}

impl RegistrarMetrics {
    /// Counts one lookup that was sent.
    pub fn asked(&self, state: Registration) {
        self.by_state[slot(&STATES, state)].inc();
    }

    /// Counts `n` lookups that were not sent, for `reason`.
    pub fn not_asked(&self, reason: NotAsked, n: u64) {
        self.by_reason[slot(&NotAsked::ALL, reason)].inc_by(n);
    }

    /// The counter of one state.
    fn state(&self, state: Registration) -> Count {
        Count(self.by_state[slot(&STATES, state)].clone())
    }
}

/// The worker's counters and histograms.
#[derive(Debug)]
pub struct Stats {
    /// Requests answered, by outcome and error code.
    requests: Family<Labels, Counter>,
    /// Requests answered with `build_resp`.
    pub built: Count,
    /// Messages that were not a valid request (answered ones are also in `requests` with
    /// code `invalid_request`; not exported on their own, which would count them twice).
    pub invalid_inputs: Count,
    /// Messages acknowledged without a reply, because they had no reply address or one AMQP
    /// cannot carry.
    pub unanswerable: Count,
    /// Request tasks that panicked (their deliveries were settled all the same).
    pub task_failures: Count,
    /// Broker connections re-established after a loss.
    pub reconnects: Count,
    /// Registrations asked, by state (the same counters as `registrar.states`).
    pub registered: Count,
    /// See `registered`.
    pub unregistered: Count,
    /// See `registered`.
    pub unknown: Count,
    /// What the registrar did.
    pub registrar: RegistrarMetrics,
    /// Time from a request's arrival to its reply's publish (and the delivery's settlement).
    pub build_seconds: Histogram,
    /// Legs per successful build.
    pub legs_per_build: Histogram,
    /// Builds that met a document feature the worker does not apply, by feature.
    unapplied: Family<Labels, Counter>,
}

impl Default for Stats {
    fn default() -> Self {
        let requests = Family::<Labels, Counter>::default();
        let built = Count(
            requests
                .get_or_create(&vec![("outcome", "build_resp")])
                .clone(),
        );
        for code in ErrorCode::ALL {
            let _ =
                requests.get_or_create(&vec![("outcome", "build_error"), ("code", code.as_str())]);
        }
        let registrar = RegistrarMetrics::default();
        let unapplied = Family::<Labels, Counter>::default();
        for f in Unapplied::ALL {
            let _ = unapplied.get_or_create(&vec![("feature", f.as_str())]);
        }
        Self {
            requests,
            built,
            invalid_inputs: Count::default(),
            unanswerable: Count::default(),
            task_failures: Count::default(),
            reconnects: Count::default(),
            registered: registrar.state(Registration::Registered),
            unregistered: registrar.state(Registration::Unregistered),
            unknown: registrar.state(Registration::Unknown),
            registrar,
            build_seconds: histogram(&LATENCY_BOUNDS),
            legs_per_build: histogram(&LEGS_BOUNDS),
            unapplied,
        }
    }
}

impl Stats {
    /// Counts one answered request.
    pub fn record(&self, result: &BuildResult) {
        match result {
            Ok(legs) => {
                self.built.0.inc();
                self.legs_per_build.observe(legs.len() as f64);
            }
            Err(e) => {
                self.requests
                    .get_or_create(&vec![("outcome", "build_error"), ("code", e.code.as_str())])
                    .inc();
            }
        }
    }

    /// Counts the features one build met and did not apply.
    pub fn record_unapplied(&self, features: &[Unapplied]) {
        for f in features {
            self.unapplied
                .get_or_create(&vec![("feature", f.as_str())])
                .inc();
        }
    }

    /// Builds that met `feature` and did not apply it.
    pub fn unapplied_count(&self, feature: Unapplied) -> u64 {
        self.unapplied
            .get_or_create(&vec![("feature", feature.as_str())])
            .get()
    }

    /// Errors answered with `code`.
    pub fn error_count(&self, code: &str) -> u64 {
        ErrorCode::ALL
            .iter()
            .find(|c| c.as_str() == code)
            .map(|c| {
                self.requests
                    .get_or_create(&vec![("outcome", "build_error"), ("code", c.as_str())])
                    .get()
            })
            .unwrap_or(0)
    }

    /// Registers every metric in `r` (names without the `kz_endpoint_` prefix).
    pub fn register(&self, r: &mut Registry) {
        r.register(
            "requests",
            "Build requests answered, by outcome and error code",
            self.requests.clone(),
        );
        r.register(
            "unanswerable",
            "Messages acknowledged without a reply (no reply address, or one AMQP cannot carry)",
            self.unanswerable.0.clone(),
        );
        r.register(
            "task_failures",
            "Request tasks that failed unexpectedly (a panic); their deliveries were settled",
            self.task_failures.0.clone(),
        );
        r.register(
            "amqp_reconnects",
            "Broker connections re-established after a loss",
            self.reconnects.0.clone(),
        );
        r.register(
            "build_duration_seconds",
            "Time from a request's arrival to its reply's publish",
            self.build_seconds.clone(),
        );
        r.register(
            "legs_per_build",
            "Legs returned per successful build",
            self.legs_per_build.clone(),
        );
        r.register(
            "unapplied_features",
            "Builds that met a document feature the worker does not apply (its leg is not built), by feature",
            self.unapplied.clone(),
        );
        r.register(
            "registrations",
            "Registration lookups asked of the registrars, by the state they gave",
            self.registrar.states.clone(),
        );
        r.register(
            "registrations_not_asked",
            "Registration lookups not sent, by reason (the state is unknown)",
            self.registrar.not_asked.clone(),
        );
        r.register(
            "registrar_timeouts",
            "Registration lookups whose deadline passed before every live registrar answered",
            self.registrar.timeouts.clone(),
        );
        r.register(
            "registrar_duration_seconds",
            "Time a build waited for the registrars",
            self.registrar.seconds.clone(),
        );
    }
}

/// Process metrics from `/proc/self` (Linux): CPU time, memory, file descriptors, threads and
/// the start time, under Prometheus's standard `process_*` names.
#[derive(Debug, Default)]
pub struct ProcessCollector;

impl ProcessCollector {
    fn stat() -> Option<(f64, f64, f64, f64, f64)> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // The command name is in parentheses and may hold spaces: fields after the last ')'.
        let rest = stat.rsplit_once(')')?.1;
        let f: Vec<&str> = rest.split_whitespace().collect();
        // man proc: utime 14, stime 15, num_threads 20, starttime 22, vsize 23, rss 24;
        // `f[0]` is field 3.
        let at = |n: usize| f.get(n - 3).and_then(|v| v.parse::<f64>().ok());
        let ticks = 100.0; // sysconf(_SC_CLK_TCK) on every Linux target
        let page = 4096.0;
        let boot = std::fs::read_to_string("/proc/stat")
            .ok()?
            .lines()
            .find_map(|l| l.strip_prefix("btime "))?
            .trim()
            .parse::<f64>()
            .ok()?;
        Some((
            (at(14)? + at(15)?) / ticks,
            at(24)? * page,
            at(23)?,
            at(20)?,
            boot + at(22)? / ticks,
        ))
    }
}

impl prometheus_client::collector::Collector for ProcessCollector {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::DescriptorEncoder,
    ) -> Result<(), std::fmt::Error> {
        use prometheus_client::encoding::EncodeMetric;
        use prometheus_client::metrics::counter::ConstCounter;
        use prometheus_client::metrics::gauge::ConstGauge;
        let Some((cpu, rss, vsize, threads, start)) = Self::stat() else {
            return Ok(());
        };
        let c = ConstCounter::new(cpu);
        c.encode(encoder.encode_descriptor(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds",
            None,
            c.metric_type(),
        )?)?;
        let fds = std::fs::read_dir("/proc/self/fd")
            .map(|d| d.count() as f64)
            .unwrap_or(0.0);
        let max_fds = std::fs::read_to_string("/proc/self/limits")
            .ok()
            .and_then(|l| {
                l.lines()
                    .find(|l| l.starts_with("Max open files"))
                    .and_then(|l| l.split_whitespace().nth(3))
                    .and_then(|v| v.parse::<f64>().ok())
            });
        let mut gauges = vec![
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes",
                rss,
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes",
                vsize,
            ),
            ("process_open_fds", "Number of open file descriptors", fds),
            (
                "process_threads",
                "Number of OS threads in the process",
                threads,
            ),
            (
                "process_start_time_seconds",
                "Start time of the process since the Unix epoch in seconds",
                start,
            ),
        ];
        if let Some(m) = max_fds {
            gauges.push((
                "process_max_fds",
                "Maximum number of open file descriptors",
                m,
            ));
        }
        for (name, help, v) in gauges {
            let g = ConstGauge::new(v);
            g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_sets_start_at_zero_and_counts_read_as_atomics() {
        let s = Stats::default();
        let mut r = Registry::with_prefix("kz_endpoint");
        s.register(&mut r);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &r).unwrap();
        for line in [
            "kz_endpoint_requests_total{outcome=\"build_resp\"} 0",
            "kz_endpoint_requests_total{outcome=\"build_error\",code=\"invalid_request\"} 0",
            "kz_endpoint_requests_total{outcome=\"build_error\",code=\"internal\"} 0",
            "kz_endpoint_registrations_total{state=\"unknown\"} 0",
            "kz_endpoint_registrations_not_asked_total{reason=\"no_ecallmgr\"} 0",
            "kz_endpoint_registrar_timeouts_total 0",
            "kz_endpoint_unapplied_features_total{feature=\"mobile\"} 0",
            "kz_endpoint_unapplied_features_total{feature=\"skype\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
        }
        s.record(&Ok(vec![crate::leg::Leg::Loopback(Default::default())]));
        s.registrar.asked(Registration::Unknown);
        assert_eq!(s.built.load(std::sync::atomic::Ordering::Relaxed), 1);
        assert_eq!(s.unknown.load(std::sync::atomic::Ordering::Relaxed), 1);
        assert_eq!(s.error_count("internal"), 0);
        s.record_unapplied(&[Unapplied::Skype]);
        assert_eq!(s.unapplied_count(Unapplied::Skype), 1);
        assert_eq!(s.unapplied_count(Unapplied::Mobile), 0);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &r).unwrap();
        assert!(
            text.lines()
                .any(|l| l == "kz_endpoint_unapplied_features_total{feature=\"skype\"} 1"),
            "{text}"
        );
    }
}
