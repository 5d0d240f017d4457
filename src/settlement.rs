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

use std::sync::Arc;

use lapin::Channel;
use lapin::options::{BasicAckOptions, BasicNackOptions, BasicRejectOptions};
use lapin::types::DeliveryTag;

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
/// It settles on the delivery's channel itself rather than through lapin's `Acker`: an
/// `Acker` hands each acknowledgement to lapin's internal task, which starts a task of its
/// own to send it, two extra task wake-ups and a spurious wake of the I/O thread per request
/// for the same frame. What the `Acker` adds, a guard against settling twice, is this type's
/// job already (it settles once, by value); and a delivery's tag cannot reach another
/// channel: the worker never lets lapin reopen a channel, a lost connection is a new session
/// with new channels, and a channel that closed refuses the frame.
#[derive(Debug)]
pub struct Settlement {
    delivery: Option<(Arc<Channel>, DeliveryTag)>,
}

impl Settlement {
    /// A guard over the delivery `tag` received on `channel`.
    pub fn new(channel: Arc<Channel>, tag: DeliveryTag) -> Self {
        Self {
            delivery: Some((channel, tag)),
        }
    }

    /// Acknowledges the delivery.
    pub async fn ack(mut self) -> Result<Settled, lapin::Error> {
        if let Some((channel, tag)) = self.delivery.take() {
            channel.basic_ack(tag, BasicAckOptions::default()).await?;
        }
        Ok(Settled::Acked)
    }

    /// Hands the delivery back to the queue when this was its first delivery (a broker
    /// hiccup while replying deserves one more try, by any worker), rejects it otherwise (a
    /// message that fails twice is not retried forever).
    pub async fn retry_once(mut self, redelivered: bool) -> Result<Settled, lapin::Error> {
        let Some((channel, tag)) = self.delivery.take() else {
            return Ok(Settled::Rejected);
        };
        if redelivered {
            discard(&channel, tag).await?;
            Ok(Settled::Rejected)
        } else {
            let requeue = BasicNackOptions {
                requeue: true,
                multiple: false,
            };
            channel.basic_nack(tag, requeue).await?;
            Ok(Settled::Requeued)
        }
    }

    /// Rejects the delivery without requeueing it.
    pub async fn reject(mut self) -> Result<Settled, lapin::Error> {
        if let Some((channel, tag)) = self.delivery.take() {
            discard(&channel, tag).await?;
        }
        Ok(Settled::Rejected)
    }
}

/// Rejects delivery `tag` for good (not requeued): how a delivery that cannot succeed ends,
/// whichever path gives it up.
async fn discard(channel: &Channel, tag: DeliveryTag) -> Result<(), lapin::Error> {
    channel
        .basic_reject(tag, BasicRejectOptions { requeue: false })
        .await
}

impl Drop for Settlement {
    fn drop(&mut self) {
        let Some((channel, tag)) = self.delivery.take() else {
            return;
        };
        // Dropped unsettled: the task panicked or was cancelled. Drop cannot wait, so the
        // rejection is sent from a task of its own; outside a runtime (a test), or when the
        // channel is gone, there is nothing to send it on and the broker requeues the
        // delivery when the channel closes.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                if let Err(e) = discard(&channel, tag).await {
                    tracing::debug!(error = %e, "rejecting an abandoned delivery failed");
                }
            });
        }
    }
}
