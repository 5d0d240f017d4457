//! Is the worker making progress? The request window and its stall detector.
//!
//! A worker whose prefetch window is full and that completes nothing is, to the cluster, a
//! dead worker: the broker sends it nothing more, and the requests it holds are not
//! answered. It still has a broker connection and a consumer, so "consuming" alone would
//! call it ready. [`Progress`] counts the requests in flight and remembers since when the
//! window has been full with no completion; readiness fails once that lasts longer than
//! the stall limit (a few registrar deadlines: no healthy build takes that long).

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The request window of one worker.
#[derive(Debug, Default)]
pub struct Progress {
    in_flight: AtomicUsize,
    /// Set when the window filled up; cleared by any completion.
    full_since: Mutex<Option<Instant>>,
}

impl Progress {
    /// A request was taken. `window` is the prefetch count.
    pub fn started(&self, window: usize, now: Instant) {
        let n = self.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        if n >= window {
            let mut full = self.full_since.lock().unwrap_or_else(|e| e.into_inner());
            full.get_or_insert(now);
        }
    }

    /// A request was settled.
    pub fn finished(&self) {
        // Never below zero, even if a caller miscounts.
        let _ = self
            .in_flight
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
        *self.full_since.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// Requests in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// How long the window has been full with no completion, when longer than `limit`.
    pub fn stalled(&self, limit: Duration, now: Instant) -> Option<Duration> {
        let full = *self.full_since.lock().unwrap_or_else(|e| e.into_inner());
        full.map(|t| now.saturating_duration_since(t))
            .filter(|d| *d > limit)
    }

    /// Forgets the window (a new broker session starts with nothing in flight).
    pub fn reset(&self) {
        self.in_flight.store(0, Ordering::Relaxed);
        *self.full_since.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

/// Marks one request finished when dropped, however its task ends.
#[derive(Debug)]
pub struct InFlight<'a>(&'a Progress);

impl<'a> InFlight<'a> {
    /// Counts a request as started until the guard is dropped.
    pub fn start(progress: &'a Progress, window: usize) -> Self {
        progress.started(window, Instant::now());
        Self(progress)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.finished();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_window_without_completions_is_a_stall() {
        let p = Progress::default();
        let t0 = Instant::now();
        let limit = Duration::from_secs(2);
        p.started(2, t0);
        assert_eq!(p.stalled(limit, t0 + Duration::from_secs(10)), None);
        p.started(2, t0 + Duration::from_secs(1));
        assert_eq!(p.stalled(limit, t0 + Duration::from_secs(2)), None);
        assert_eq!(
            p.stalled(limit, t0 + Duration::from_secs(4)),
            Some(Duration::from_secs(3))
        );
        // A completion clears it; refilling starts a new clock.
        p.finished();
        assert_eq!(p.stalled(limit, t0 + Duration::from_secs(9)), None);
        p.started(2, t0 + Duration::from_secs(9));
        assert_eq!(p.stalled(limit, t0 + Duration::from_secs(10)), None);
        assert_eq!(p.in_flight(), 2);
        p.reset();
        assert_eq!(p.in_flight(), 0);
        p.finished();
        assert_eq!(p.in_flight(), 0);
    }
}
