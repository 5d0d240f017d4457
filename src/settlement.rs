//! Settling a request delivery: every delivery the worker takes is acknowledged, rejected or
//! handed back, whatever happens to the task that handles it.
//!
//! The broker gives a consumer at most `prefetch` unsettled deliveries. A delivery that is
//! never settled holds its slot until the connection closes, so a handful of requests whose
//! task died (a panic, a cancellation) would stop a worker for good while it still looks
//! alive. [`Settlement`] is the guard against that: the request path settles explicitly,
//! and if it never gets there, dropping the guard (also during a panic's unwinding, or when
//! the task is aborted) rejects the delivery without requeueing it, so the slot is freed and
//! a message that killed one task does not come back to kill the next.

use lapin::Acker;
use lapin::options::{BasicAckOptions, BasicNackOptions, BasicRejectOptions};

/// How a delivery ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    /// Acknowledged: handled (answered, or nothing to answer).
    Acked,
    /// Handed back to the queue for another try (a transient failure, first delivery only).
    Requeued,
    /// Rejected for good.
    Rejected,
}

/// The settlement guard of one delivery.
#[derive(Debug)]
pub struct Settlement {
    acker: Option<Acker>,
}

impl Settlement {
    /// A guard over `acker` (a clone of the delivery's; lapin's ackers are single-use, so
    /// whichever settles first wins).
    pub fn new(acker: Acker) -> Self {
        Self { acker: Some(acker) }
    }

    /// Acknowledges the delivery.
    pub async fn ack(mut self) -> Result<Settled, lapin::Error> {
        let acker = self.acker.take();
        if let Some(a) = acker {
            a.ack(BasicAckOptions::default()).await?;
        }
        Ok(Settled::Acked)
    }

    /// Hands the delivery back to the queue when this was its first delivery (a broker
    /// hiccup while replying deserves one more try, by any worker), rejects it otherwise (a
    /// message that fails twice is not retried forever).
    pub async fn retry_once(mut self, redelivered: bool) -> Result<Settled, lapin::Error> {
        let Some(a) = self.acker.take() else {
            return Ok(Settled::Rejected);
        };
        if redelivered {
            a.reject(BasicRejectOptions { requeue: false }).await?;
            Ok(Settled::Rejected)
        } else {
            a.nack(BasicNackOptions {
                requeue: true,
                multiple: false,
            })
            .await?;
            Ok(Settled::Requeued)
        }
    }

    /// Rejects the delivery without requeueing it.
    pub async fn reject(mut self) -> Result<Settled, lapin::Error> {
        if let Some(a) = self.acker.take() {
            a.reject(BasicRejectOptions { requeue: false }).await?;
        }
        Ok(Settled::Rejected)
    }
}

impl Drop for Settlement {
    fn drop(&mut self) {
        let Some(acker) = self.acker.take() else {
            return;
        };
        // Dropped unsettled: the task panicked or was cancelled. Drop cannot wait, so the
        // rejection is sent from a task of its own; outside a runtime (a test), or when the
        // channel is gone, there is nothing to send it on and the broker requeues the
        // delivery when the channel closes.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                if let Err(e) = acker.reject(BasicRejectOptions { requeue: false }).await {
                    tracing::debug!(error = %e, "rejecting an abandoned delivery failed");
                }
            });
        }
    }
}
