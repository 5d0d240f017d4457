//! Graceful shutdown as a value: a trigger that any task can wait on.

use tokio::sync::watch;

/// Fires the shutdown.
#[derive(Debug, Clone)]
pub struct Trigger(watch::Sender<bool>);

/// Waits for the shutdown; cheap to clone into every task.
#[derive(Debug, Clone)]
pub struct Shutdown(watch::Receiver<bool>);

/// A new trigger and its listener.
pub fn channel() -> (Trigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (Trigger(tx), Shutdown(rx))
}

impl Trigger {
    /// Asks every listener to stop.
    pub fn fire(&self) {
        self.0.send_replace(true);
    }

    /// A listener for this trigger.
    pub fn subscribe(&self) -> Shutdown {
        Shutdown(self.0.subscribe())
    }
}

impl Shutdown {
    /// True once the shutdown has been asked for.
    pub fn is_fired(&self) -> bool {
        *self.0.borrow()
    }

    /// Completes when the shutdown is asked for (at once if it already was).
    pub async fn wait(&mut self) {
        // An error means the trigger is gone, which also means: stop.
        let _ = self.0.wait_for(|fired| *fired).await;
    }
}

/// Fires `trigger` on SIGTERM or SIGINT.
pub async fn on_signals(trigger: Trigger) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing the SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
    tracing::info!("shutdown requested");
    trigger.fire();
}
