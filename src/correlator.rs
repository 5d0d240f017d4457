//! Matching AMQP replies to the requests that wait for them, by `Msg-ID`, as Kazoo's
//! `kz_amqp_worker` does.
//!
//! Both of the worker's own requesters use it: the registrar (`reg_query`, one answer per
//! ecallmgr, so a wait takes several replies) and the build client (`kz-endpoint request`
//! and the load tool, one reply). A wait is registered before its request is published (a
//! fast reply must not find nobody waiting) and removed however it ends, by dropping its
//! [`Waiting`] guard: a timed-out or cancelled request leaves nothing behind, and a late
//! reply is simply not delivered.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

/// Requests waiting for replies, by `Msg-ID`.
#[derive(Debug)]
pub struct Correlator<T> {
    waiting: Mutex<HashMap<String, mpsc::UnboundedSender<T>>>,
}

impl<T> Default for Correlator<T> {
    fn default() -> Self {
        Self {
            waiting: Mutex::new(HashMap::new()),
        }
    }
}

impl<T> Correlator<T> {
    /// Waits for replies to `msg_id`: they arrive on the receiver until the guard is dropped.
    pub fn register(self: &Arc<Self>, msg_id: &str) -> (Waiting<T>, mpsc::UnboundedReceiver<T>) {
        let (tx, rx) = mpsc::unbounded_channel();
        self.lock().insert(msg_id.to_owned(), tx);
        (
            Waiting {
                correlator: self.clone(),
                msg_id: msg_id.to_owned(),
            },
            rx,
        )
    }

    /// Hands `reply` to whoever waits for `msg_id`; false when nobody does (late, or not
    /// ours).
    pub fn deliver(&self, msg_id: &str, reply: T) -> bool {
        match self.lock().get(msg_id) {
            Some(tx) => tx.send(reply).is_ok(),
            None => false,
        }
    }

    /// Whether no request waits.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, mpsc::UnboundedSender<T>>> {
        // A panic elsewhere while holding the lock leaves the map usable.
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One registered wait; dropping it stops the wait.
#[derive(Debug)]
pub struct Waiting<T> {
    correlator: Arc<Correlator<T>>,
    msg_id: String,
}

impl<T> Drop for Waiting<T> {
    fn drop(&mut self) {
        self.correlator.lock().remove(&self.msg_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_reach_their_wait_until_it_ends() {
        let c = Arc::new(Correlator::<u32>::default());
        let (guard, mut rx) = c.register("m1");
        assert!(c.deliver("m1", 1));
        assert!(c.deliver("m1", 2));
        assert!(!c.deliver("m2", 3));
        assert_eq!(rx.try_recv().unwrap(), 1);
        assert_eq!(rx.try_recv().unwrap(), 2);
        drop(guard);
        assert!(!c.deliver("m1", 4));
        assert!(c.is_empty());
    }
}
