//! A stand-in for one ecallmgr node's registrar: it answers `reg_query` for one realm as
//! ecallmgr does (`reg_query_resp` with the contact, `reg_query_error`, or silence) and
//! advertises itself on `nodes`, so a worker counts it as a live registrar. The live tests
//! and the load tool both use it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use kz_endpoint::amqp::{
    NODES, REGISTRAR, declare_exchanges, encode, json_properties, private_queue, publish_json,
    publish_targeted, queue_args, random_hex,
};
use lapin::{Connection, ConnectionProperties};
use serde_json::{Value, json};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

/// How the stand-in answers a username.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// `reg_query_resp` with one contact.
    Registered,
    /// `reg_query_error` (ecallmgr's "not registered here").
    Error,
    /// No answer at all (a node that is slow or gone).
    Silent,
}

/// One ecallmgr node's registrar for one realm, answering until dropped.
pub struct Ecallmgr {
    /// The node name it answers and advertises as.
    pub node: String,
    /// Every query received, in order.
    pub queries: Arc<Mutex<Vec<Value>>>,
    _conn: Connection,
    task: JoinHandle<()>,
    beats: JoinHandle<()>,
}

impl Ecallmgr {
    /// A registrar for `realm` on the broker at `amqp_url`: the usernames in `answers` get
    /// their answer, every other one `otherwise`; a heartbeat goes out every `beat_every`.
    pub async fn start(
        amqp_url: &str,
        realm: &str,
        answers: &[(&str, Answer)],
        otherwise: Answer,
        beat_every: Duration,
    ) -> Result<Self, lapin::Error> {
        let conn = Connection::connect(amqp_url, ConnectionProperties::default()).await?;
        let ch = conn.create_channel().await?;
        declare_exchanges(&ch).await?;
        let queue = format!("kz-test-ecallmgr-{}", random_hex(12));
        let key = format!("registration.query.{}.*", encode(realm));
        let mut consumer = private_queue(
            &ch,
            &queue,
            queue_args(60_000, i16::MAX),
            &[(REGISTRAR, Some(&key))],
        )
        .await?;
        let node = format!("ecallmgr@fs-{}.test", random_hex(6));
        let answers: HashMap<String, Answer> =
            answers.iter().map(|(u, a)| ((*u).to_owned(), *a)).collect();
        let queries = Arc::new(Mutex::new(Vec::new()));
        let (pub_ch, n, qs) = (ch.clone(), node.clone(), queries.clone());
        let task = tokio::spawn(async move {
            while let Some(Ok(d)) = consumer.next().await {
                let Ok(q) = serde_json::from_slice::<Value>(&d.data) else {
                    continue;
                };
                qs.lock().await.push(q.clone());
                let user = q["Username"].as_str().unwrap_or_default().to_owned();
                let mut reply = json!({
                    "App-Name": "ecallmgr", "App-Version": "4.0.0", "Event-Category": "directory",
                    "Msg-ID": q["Msg-ID"], "Node": n, "Registrar-Age": 100
                });
                match answers.get(&user).copied().unwrap_or(otherwise) {
                    Answer::Silent => continue,
                    Answer::Error => reply["Event-Name"] = json!("reg_query_error"),
                    Answer::Registered => {
                        reply["Event-Name"] = json!("reg_query_resp");
                        reply["Fields"] = json!([{"Contact": format!("<sip:{user}@198.51.100.40:5060>"), "Expires": 480}]);
                    }
                }
                let server_id = q["Server-ID"].as_str().unwrap_or_default().to_owned();
                // Not awaited here: a publish waits for lapin's I/O thread to send it, and
                // answering one query after the other would make this stand-in, not the
                // worker, what limits the load tool's "registrar answering" figures.
                let ch = pub_ch.clone();
                tokio::spawn(async move {
                    let _ = publish_targeted(&ch, &server_id, &reply).await;
                });
            }
        });
        let (hb_ch, hb_node) = (ch, node.clone());
        let beats = tokio::spawn(async move {
            loop {
                let _ =
                    publish_json(&hb_ch, NODES, "", &heartbeat(&hb_node), json_properties()).await;
                tokio::time::sleep(beat_every).await;
            }
        });
        Ok(Self {
            node,
            queries,
            _conn: conn,
            task,
            beats,
        })
    }
}

/// An ecallmgr `advertise` heartbeat.
fn heartbeat(node: &str) -> Value {
    json!({
        "App-Name": "ecallmgr", "App-Version": "4.0.0", "Event-Category": "nodes",
        "Event-Name": "advertise", "Msg-ID": random_hex(16), "Node": node,
        "Expires": 10000, "WhApps": {"ecallmgr": {"Roles": []}}, "Zone": "local"
    })
}

impl Drop for Ecallmgr {
    fn drop(&mut self) {
        self.task.abort();
        self.beats.abort();
    }
}
