//! Counters the worker keeps: requests by outcome, bad input, reconnects, registrar outcomes.
//! They are plain atomics, read by the metrics endpoint and by tests.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::build_api::BuildResult;
use crate::registrar::Registration;

/// The worker's counters.
#[derive(Debug, Default)]
pub struct Stats {
    /// Requests answered with `build_resp`.
    pub built: AtomicU64,
    /// Requests answered with `build_error`, by `Error-Code`.
    errors: Mutex<BTreeMap<&'static str, u64>>,
    /// Messages that were not a valid request (subset of the `invalid_request` errors, plus
    /// bad messages that had no reply address).
    pub invalid_inputs: AtomicU64,
    /// Messages acknowledged without a reply because they had no reply address.
    pub unanswerable: AtomicU64,
    /// Broker connections re-established after a loss.
    pub reconnects: AtomicU64,
    /// Legs returned, in total.
    pub legs: AtomicU64,
    /// Registration outcomes.
    pub registered: AtomicU64,
    /// Registration outcomes.
    pub unregistered: AtomicU64,
    /// Registration outcomes.
    pub unknown: AtomicU64,
}

impl Stats {
    /// Counts one handled request.
    pub fn record(&self, result: &BuildResult) {
        match result {
            Ok(legs) => {
                self.built.fetch_add(1, Ordering::Relaxed);
                self.legs.fetch_add(legs.len() as u64, Ordering::Relaxed);
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
