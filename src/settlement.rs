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

use crate::amqp::PublishError;
use crate::broker_connection::Outbox;

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
///
/// A settlement is a frame queued on the broker connection's [`Outbox`], behind the
/// reply queued before it: queueing never waits, so settling (and the guard's `Drop`) is
/// synchronous. A delivery's tag cannot reach another connection: a lost connection is a new
/// session with a new outbox, and a closed outbox refuses the frame (the broker has requeued
/// the delivery already, as it does with every unsettled delivery of a closed connection).
#[derive(Debug)]
pub struct Settlement {
    delivery: Option<(Outbox, u64)>,
}

impl Settlement {
    /// A guard over the delivery `tag` received on `outbox`'s connection.
    pub fn new(outbox: Outbox, tag: u64) -> Self {
        Self {
            delivery: Some((outbox, tag)),
        }
    }

    /// Acknowledges the delivery.
    pub fn ack(mut self) -> Result<Settled, PublishError> {
        if let Some((outbox, tag)) = self.delivery.take() {
            outbox.ack(tag)?;
        }
        Ok(Settled::Acked)
    }

    /// Hands the delivery back to the queue when this was its first delivery (a broker
    /// hiccup while replying deserves one more try, by any worker), rejects it otherwise (a
    /// message that fails twice is not retried forever).
    pub fn retry_once(mut self, redelivered: bool) -> Result<Settled, PublishError> {
        let Some((outbox, tag)) = self.delivery.take() else {
            return Ok(Settled::Rejected);
        };
        if redelivered {
            outbox.reject(tag)?;
            Ok(Settled::Rejected)
        } else {
            outbox.requeue(tag)?;
            Ok(Settled::Requeued)
        }
    }

    /// Rejects the delivery without requeueing it.
    pub fn reject(mut self) -> Result<Settled, PublishError> {
        if let Some((outbox, tag)) = self.delivery.take() {
            outbox.reject(tag)?;
        }
        Ok(Settled::Rejected)
    }
}

impl Drop for Settlement {
    fn drop(&mut self) {
        // Dropped unsettled: the task panicked or was cancelled. When the connection is
        // gone there is nothing to send on, and the broker requeues the delivery as the
        // connection closes.
        if let Some((outbox, tag)) = self.delivery.take()
            && let Err(e) = outbox.reject(tag)
        {
            tracing::debug!(error = %e, "rejecting an abandoned delivery failed");
        }
    }
}
