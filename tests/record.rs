//! `serve --record`: captures written by the live worker (real RabbitMQ and CouchDB-API
//! server) replay to the same replies, with no secret in them.

mod live;
use live::*;

use std::time::Duration;

use kz_endpoint::amqp::json_properties;
use kz_endpoint::build_api::Identity;
use kz_endpoint::recorder::Recorder;
use kz_endpoint::replay::replay_file;
use kz_endpoint::shutdown;
use kz_endpoint::worker::{Worker, WorkerConfig};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_captures_replay_to_the_same_replies() {
    let acct = Account::create().await;
    for n in 1..=3 {
        acct.put(acct.device(
            n,
            json!({"call_failover": {"enabled": true, "number": format!("+1555000100{n}")}}),
        ))
        .await;
    }
    acct.put(acct.user(1, json!({}))).await;
    acct.put(acct.device(4, json!({"owner_id": tid("user", 1)})))
        .await;
    let _ecm = ecallmgr(
        &acct.realm,
        &[
            ("d1", Answer::Registered),
            ("d2", Answer::Error),
            ("d3", Answer::Silent),
            ("d4", Answer::Registered),
        ],
    )
    .await;

    let dir = std::env::temp_dir().join(format!("kz-record-{}", kz_endpoint::amqp::random_hex(8)));
    let mut config = WorkerConfig::new(
        amqp_url(),
        format!("kz-endpoint-test@{}", kz_endpoint::amqp::random_hex(6)),
    );
    config.queue = format!("kz-test-builder-{}", kz_endpoint::amqp::random_hex(8));
    config.bindings = vec![acct.routing_key()];
    config.registrar_deadline = Duration::from_millis(300);
    let worker = Worker::with_recorder(config, couch_store(None), Recorder::new(&dir).unwrap());
    let (trigger, shutdown) = shutdown::channel();
    let handle = tokio::spawn(worker.clone().run(shutdown));
    wait_for("the worker to consume", || worker.is_consuming()).await;
    wait_for("the ecallmgr heartbeat", || worker.ecallmgr_nodes() > 0).await;

    let mut cf = Callflow::new().await;
    let mut expected = Vec::new();
    for id in [
        tid("device", 1),
        tid("device", 2),
        tid("device", 3),
        tid("user", 1),
        "BAD".to_owned(),
    ] {
        let r = cf.request(&acct, acct.request(&id)).await;
        expected.push(summary(&r));
    }
    assert_eq!(expected[0], ["SIP:d1"]);
    assert_eq!(expected[1], ["FAILOVER:+15550001002"]);
    assert_eq!(expected[2], ["SIP:d3+F:+15550001003"]);
    assert_eq!(expected[3], ["SIP:d4"]);
    // A message that is not JSON, answered through reply_to.
    cf.publish(
        &acct.routing_key(),
        b"nope".to_vec(),
        json_properties().with_reply_to(cf.queue.as_str().into()),
    )
    .await;
    cf.next(Duration::from_secs(10)).await.expect("a reply");

    let count = || std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0);
    wait_for("six captures", || count() == 6).await;
    trigger.fire();
    handle.await.unwrap().unwrap();

    let identity = Identity::new("replayer@host");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        assert!(
            !text.contains("secret-"),
            "a password was recorded in {}",
            file.display()
        );
        let r = replay_file(file, &identity).await;
        assert!(
            r.differences.is_empty(),
            "{}: {:?}",
            file.display(),
            r.differences
        );
        let (c, _) = r.capture.unwrap();
        assert!(c.reply.is_some());
    }
    // The unknown state was recorded as such.
    let d3 = files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .find(|t| t.contains("\"d3@"))
        .expect("the d3 capture");
    assert!(
        d3.contains(&format!("\"d3@{}\": \"unknown\"", acct.realm)),
        "{d3}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
    acct.drop_db().await;
}
