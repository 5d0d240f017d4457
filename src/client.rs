//! A build client that talks to workers exactly as Kazoo's callflow would: `build_req` on the
//! `kapps` exchange (routing key `endpoint.build.{Account-ID}`), replies on its own queue bound
//! to `targeted`, matched by `Msg-ID`. Used by `kz-endpoint request` and the load tool.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use lapin::{Channel, Connection, ConnectionProperties};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use lapin::Confirmation;
use lapin::options::BasicPublishOptions;

use crate::amqp::{
    KAPPS, TARGETED, declare_exchanges, encode, json_properties, private_queue, publish_json,
    queue_args, random_hex, short_string,
};
use crate::correlator::Correlator;

/// A connected client.
pub struct Client {
    _conn: Connection,
    /// Requests are published mandatory, with publisher confirms: a request no queue is
    /// bound for comes back at once as [`ClientError::NoRoute`].
    checked: bool,
    channel: Channel,
    queue: String,
    waiters: Arc<Correlator<Value>>,
    reader: JoinHandle<()>,
}

/// A request that got no reply in time.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The broker failed.
    #[error("AMQP: {0}")]
    Amqp(#[from] lapin::Error),
    /// The request could not be published (a routing key AMQP cannot carry, or the broker).
    #[error("publishing the request: {0}")]
    Publish(#[from] crate::amqp::PublishError),
    /// No reply within the timeout (a worker took the request but did not answer in time).
    #[error("no reply within {} ms: a worker is bound for this request but did not answer in time", .0.as_millis())]
    Timeout(Duration),
    /// The broker returned the request: no queue is bound to its routing key on `kapps`.
    #[error(
        "no worker is bound to routing key {0} on the kapps exchange: the broker returned the request (is a worker running, and does one of its --binding keys match?)"
    )]
    NoRoute(String),
    /// The broker refused the request (a negative publisher confirm).
    #[error("the broker refused the request (nack) for routing key {0}")]
    Refused(String),
    /// The request is not usable.
    #[error("{0}")]
    Request(String),
}

impl Client {
    /// Connects to the broker and sets up the reply queue.
    pub async fn connect(amqp_url: &str) -> Result<Self, ClientError> {
        Self::connect_with(amqp_url, false).await
    }

    /// Like [`Client::connect`], and every request is published mandatory with publisher
    /// confirms, so that one no worker is bound for fails at once ([`ClientError::NoRoute`])
    /// instead of timing out (`kz-endpoint request`; one more round trip per request).
    pub async fn connect_checked(amqp_url: &str) -> Result<Self, ClientError> {
        Self::connect_with(amqp_url, true).await
    }

    async fn connect_with(amqp_url: &str, checked: bool) -> Result<Self, ClientError> {
        let conn = Connection::connect(amqp_url, ConnectionProperties::default()).await?;
        let channel = conn.create_channel().await?;
        if checked {
            channel
                .confirm_select(lapin::options::ConfirmSelectOptions::default())
                .await?;
        }
        declare_exchanges(&channel).await?;
        let queue = format!("kz-endpoint-client-{}", random_hex(12));
        let mut consumer = private_queue(
            &channel,
            &queue,
            queue_args(60_000, i16::MAX),
            &[(TARGETED, None)],
        )
        .await?;
        let waiters: Arc<Correlator<Value>> = Arc::default();
        let w = waiters.clone();
        let reader = tokio::spawn(async move {
            while let Some(Ok(d)) = consumer.next().await {
                let Ok(reply) = serde_json::from_slice::<Value>(&d.data) else {
                    continue;
                };
                let Some(id) = reply.get("Msg-ID").and_then(Value::as_str) else {
                    continue;
                };
                let id = id.to_owned();
                w.deliver(&id, reply);
            }
        });
        Ok(Self {
            _conn: conn,
            checked,
            channel,
            queue,
            waiters,
            reader,
        })
    }

    /// The client's reply queue (the `Server-ID` of its requests).
    pub fn queue(&self) -> &str {
        &self.queue
    }

    /// Sends one request and waits for its reply. Missing envelope fields are filled in
    /// (`Msg-ID`, `Event-Category`, `Event-Name`, `App-Name`, `App-Version`); `Server-ID` is
    /// always this client's queue. The routing key comes from `Account-ID`.
    pub async fn request(&self, mut req: Value, timeout: Duration) -> Result<Value, ClientError> {
        let Some(o) = req.as_object_mut() else {
            return Err(ClientError::Request(
                "the request must be a JSON object".into(),
            ));
        };
        for (k, v) in [
            ("Event-Category", "endpoint"),
            ("Event-Name", "build_req"),
            ("App-Name", "kz-endpoint-client"),
            ("App-Version", crate::build_api::APP_VERSION),
        ] {
            o.entry(k).or_insert_with(|| json!(v));
        }
        let msg_id = match o.get("Msg-ID").and_then(Value::as_str) {
            Some(id) => id.to_owned(),
            None => random_hex(16),
        };
        o.insert("Msg-ID".into(), json!(msg_id));
        o.insert("Server-ID".into(), json!(self.queue));
        let account = o.get("Account-ID").and_then(Value::as_str).unwrap_or("*");
        let routing_key = format!("endpoint.build.{}", encode(account));
        self.send(req, &routing_key, msg_id, timeout).await
    }

    /// Sends a request as is (its `Msg-ID` must be set) with `routing_key` on `kapps`, and
    /// waits for the reply with that `Msg-ID`.
    pub async fn request_with_key(
        &self,
        mut req: Value,
        routing_key: &str,
        timeout: Duration,
    ) -> Result<Value, ClientError> {
        let msg_id = req
            .get("Msg-ID")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| random_hex(16));
        req["Msg-ID"] = json!(msg_id);
        req["Server-ID"] = json!(self.queue);
        self.send(req, routing_key, msg_id, timeout).await
    }

    async fn send(
        &self,
        req: Value,
        routing_key: &str,
        msg_id: String,
        timeout: Duration,
    ) -> Result<Value, ClientError> {
        let (_waiting, mut replies) = self.waiters.register(&msg_id);
        if self.checked {
            self.publish_mandatory(routing_key, &req).await?;
        } else {
            publish_json(&self.channel, KAPPS, routing_key, &req, json_properties()).await?;
        }
        match tokio::time::timeout(timeout, replies.recv()).await {
            Ok(Some(reply)) => Ok(reply),
            _ => Err(ClientError::Timeout(timeout)),
        }
    }
}

impl Client {
    /// Publishes mandatory and waits for the broker's confirm; a returned message means no
    /// queue is bound to `routing_key`.
    async fn publish_mandatory(&self, routing_key: &str, req: &Value) -> Result<(), ClientError> {
        let key = short_string("the routing key", routing_key)?;
        let payload = serde_json::to_vec(req).unwrap_or_default();
        let confirm = self
            .channel
            .basic_publish(
                KAPPS.into(),
                key,
                BasicPublishOptions {
                    mandatory: true,
                    ..Default::default()
                },
                &payload,
                json_properties(),
            )
            .await?
            .await?;
        match confirm {
            Confirmation::Ack(Some(_)) | Confirmation::Nack(Some(_)) => {
                Err(ClientError::NoRoute(routing_key.to_owned()))
            }
            Confirmation::Nack(None) => Err(ClientError::Refused(routing_key.to_owned())),
            Confirmation::Ack(None) | Confirmation::NotRequested => Ok(()),
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.reader.abort();
    }
}
