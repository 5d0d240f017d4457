//! The live worker against real RabbitMQ and a real CouchDB-API server: the tests play
//! Kazoo's callflow (build requests, replies on a targeted queue) and ecallmgr's registrar.

mod live;
use live::*;

use std::sync::atomic::Ordering;
use std::time::Duration;

use kz_endpoint::amqp::{CONFIGURATION, json_properties, publish_json, random_hex};
use kz_endpoint::fixturedb::FixtureDb;
use kz_endpoint::worker::Store;
use lapin::BasicProperties;
use serde_json::{Value, json};

fn failover(number: &str) -> Value {
    json!({"call_failover": {"enabled": true, "number": number}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registered_unregistered_and_unknown_devices() {
    let acct = Account::create().await;
    for n in 1..=3 {
        acct.put(acct.device(n, failover(&format!("+1555000000{n}"))))
            .await;
    }
    let _ecm = ecallmgr(
        &acct.realm,
        &[
            ("d1", Answer::Registered),
            ("d2", Answer::Error),
            ("d3", Answer::Silent),
        ],
    )
    .await;
    let w = start_worker(&acct, couch_store(None), None).await;
    wait_for("the ecallmgr heartbeat", || w.worker.ecallmgr_nodes() > 0).await;
    let mut cf = Callflow::new().await;

    let r = cf.request(&acct, acct.request(&tid("device", 1))).await;
    assert_eq!(r["Event-Name"], "build_resp", "{r}");
    assert_eq!(r["App-Name"], "kz-endpoint");
    assert_eq!(summary(&r), ["SIP:d1"]);
    assert_eq!(r["Endpoints"][0]["To-Realm"], acct.realm.as_str());
    assert!(!r.to_string().contains("secret-1"));

    let r = cf.request(&acct, acct.request(&tid("device", 2))).await;
    assert_eq!(summary(&r), ["FAILOVER:+15550000002"]);

    let r = cf.request(&acct, acct.request(&tid("device", 3))).await;
    assert_eq!(summary(&r), ["SIP:d3+F:+15550000003"]);

    assert!(w.worker.stats.registered.load(Ordering::Relaxed) >= 1);
    assert!(w.worker.stats.unregistered.load(Ordering::Relaxed) >= 1);
    w.stop().await.unwrap();
    acct.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_and_a_group() {
    let acct = Account::create().await;
    acct.put(acct.user(1, json!({}))).await;
    acct.put(acct.device(1, json!({"owner_id": tid("user", 1)})))
        .await;
    acct.put(acct.device(
        2,
        json!({"owner_id": tid("user", 1), "call_forward": {
        "enabled": true, "number": "+15557770002", "substitute": true}}),
    ))
    .await;
    acct.put(acct.device(3, json!({}))).await;
    acct.put(json!({
        "_id": tid("group", 1), "pvt_type": "group", "name": "Team",
        "endpoints": {tid("device", 3): {"type": "device", "weight": 1, "delay": 5},
                      tid("user", 1): {"type": "user", "weight": 2}}
    }))
    .await;
    let _ecm = ecallmgr(
        &acct.realm,
        &[("d1", Answer::Registered), ("d3", Answer::Registered)],
    )
    .await;
    let w = start_worker(&acct, couch_store(None), None).await;
    wait_for("the ecallmgr heartbeat", || w.worker.ecallmgr_nodes() > 0).await;
    let mut cf = Callflow::new().await;

    let mut req = acct.request(&tid("user", 1));
    req["Properties"] = json!({"source": "cf_user", "timeout": 20});
    let r = cf.request(&acct, req).await;
    assert_eq!(summary(&r), ["SIP:d1", "FWD:+15557770002"]);
    assert_eq!(r["Endpoints"][0]["Endpoint-Timeout"], "20");

    let mut req = acct.request(&tid("group", 1));
    req["Properties"] = json!({"source": "cf_group", "timeout": 20});
    let r = cf.request(&acct, req).await;
    assert_eq!(summary(&r), ["SIP:d3", "SIP:d1", "FWD:+15557770002"]);
    assert_eq!(r["Endpoints"][0]["Endpoint-Delay"], "5");
    assert!(r["Endpoints"][1].get("Endpoint-Timeout").is_none());
    w.stop().await.unwrap();
    acct.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_edit_event_reaches_the_next_build() {
    let acct = Account::create().await;
    acct.put(acct.device(1, json!({"sip": {"ip": "10.0.0.1"}})))
        .await;
    let w = start_worker(&acct, couch_store(None), None).await;
    let mut cf = Callflow::new().await;
    let r = cf.request(&acct, acct.request(&tid("device", 1))).await;
    assert_eq!(summary(&r), ["SIP:d1"]);

    // Edit the device: a forward with substitute. The cached copy still rings the phone…
    acct.put(acct.device(
        1,
        json!({"sip": {"ip": "10.0.0.1"}, "call_forward": {
        "enabled": true, "number": "+15558880001", "substitute": true}}),
    ))
    .await;
    let r = cf.request(&acct, acct.request(&tid("device", 1))).await;
    assert_eq!(
        summary(&r),
        ["SIP:d1"],
        "served from the cache until Kazoo says it changed"
    );

    // …until Kazoo's change event arrives.
    let evictions = || {
        w.worker
            .store()
            .cache()
            .unwrap()
            .stats
            .evictions
            .load(Ordering::Relaxed)
    };
    let before = evictions();
    let event = json!({
        "App-Name": "datamgr", "App-Version": "4.0.0", "Event-Category": "configuration",
        "Event-Name": "doc_edited", "Msg-ID": random_hex(32), "ID": tid("device", 1),
        "Type": "device", "Database": acct.db, "Rev": "2-x", "Account-ID": acct.id,
        "Is-Soft-Deleted": false, "Origin-Cache": "kazoo_data_cache"
    });
    let key = format!("doc_edited.{}.device.{}", acct.db, tid("device", 1));
    publish_json(&cf.ch, CONFIGURATION, &key, &event, json_properties())
        .await
        .unwrap();
    wait_for("the eviction", || evictions() > before).await;
    let r = cf.request(&acct, acct.request(&tid("device", 1))).await;
    assert_eq!(summary(&r), ["FWD:+15558880001"]);
    w.stop().await.unwrap();
    acct.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn couchdb_unreachable_is_db_not_reachable() {
    let acct = Account::create().await;
    // Nothing listens on port 9 of the loopback.
    let w = start_worker(&acct, couch_store(Some("http://127.0.0.1:9")), None).await;
    let mut cf = Callflow::new().await;
    let r = cf.request(&acct, acct.request(&tid("device", 1))).await;
    assert_eq!(r["Event-Name"], "build_error");
    assert_eq!(r["Error-Code"], "db_not_reachable", "{r}");
    // The worker survives and keeps answering.
    let r = cf.request(&acct, acct.request(&tid("device", 2))).await;
    assert_eq!(r["Error-Code"], "db_not_reachable");
    assert_eq!(w.worker.stats.error_count("db_not_reachable"), 2);
    w.stop().await.unwrap();
    acct.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_couchdb_that_never_answers_is_db_not_reachable_not_a_hang() {
    // A server that accepts connections and never says a word.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", silent.local_addr().unwrap());
    let held = std::thread::spawn(move || {
        let conns: Vec<_> = silent.incoming().take(4).collect();
        std::thread::sleep(Duration::from_secs(10));
        drop(conns);
    });
    let acct = Account::create().await;
    let w = start_worker(&acct, couch_store(Some(&url)), None).await;
    let mut cf = Callflow::new().await;
    // The reply comes (the helper waits at most 10 s): the CouchDB timeout, not a hang.
    let r = cf.request(&acct, acct.request(&tid("device", 1))).await;
    assert_eq!(r["Error-Code"], "db_not_reachable", "{r}");
    assert!(
        r["Error-Message"]
            .as_str()
            .unwrap()
            .contains("not reachable"),
        "{r}"
    );
    w.stop().await.unwrap();
    acct.drop_db().await;
    drop(held);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_invalid_request_and_is_acknowledged() {
    let acct = Account::create().await;
    let w = start_worker(&acct, couch_store(None), None).await;
    let mut cf = Callflow::new().await;
    let rk = acct.routing_key();
    let own = cf.queue.clone();
    let reply_props = || json_properties().with_reply_to(own.as_str().into());

    // Not JSON, with an AMQP reply_to: the error goes there, with the correlation id.
    cf.publish(
        &rk,
        b"this is not json".to_vec(),
        reply_props().with_correlation_id("c-1".into()),
    )
    .await;
    let (r, props) = cf.next(Duration::from_secs(10)).await.expect("a reply");
    assert_eq!(r["Error-Code"], "invalid_request");
    assert!(
        r["Error-Message"].as_str().unwrap().contains("not JSON"),
        "{r}"
    );
    assert_eq!(
        props.correlation_id().as_ref().map(|s| s.as_str()),
        Some("c-1")
    );

    // A wrong content type.
    let mut req = acct.request(&tid("device", 1));
    req["Msg-ID"] = json!("m-ct");
    req["Server-ID"] = json!(cf.queue);
    let body = serde_json::to_vec(&req).unwrap();
    cf.publish(
        &rk,
        body.clone(),
        BasicProperties::default().with_content_type("text/plain".into()),
    )
    .await;
    let r = cf.reply_to("m-ct").await;
    assert_eq!(r["Error-Code"], "invalid_request");
    assert!(
        r["Error-Message"]
            .as_str()
            .unwrap()
            .contains("content type text/plain")
    );

    // Missing and mistyped fields, bad ids.
    for (patch, field) in [
        (json!({"Account-ID": null}), "Account-ID"),
        (json!({"Endpoint-ID": "NOT-AN-ID"}), "Endpoint-ID"),
        (json!({"Call": {"Owner-ID": 42}}), "Call.Owner-ID"),
        (json!({"Properties": "text"}), "Properties"),
    ] {
        let req = kz_endpoint::kz_json::merge_right_wins(&acct.request(&tid("device", 1)), &patch);
        // A request without Account-ID still travels on the account's routing key.
        let r = cf.request(&acct, req).await;
        assert_eq!(r["Error-Code"], "invalid_request", "{patch}");
        assert!(
            r["Error-Message"].as_str().unwrap().starts_with(field),
            "{patch}: {r}"
        );
    }

    // Over 1 MiB: refused unread, answered through reply_to.
    let mut big = acct.request(&tid("device", 1));
    big["Padding"] = json!("x".repeat(1024 * 1024 + 10));
    cf.publish(&rk, serde_json::to_vec(&big).unwrap(), reply_props())
        .await;
    let (r, _) = cf.next(Duration::from_secs(10)).await.expect("a reply");
    assert!(
        r["Error-Message"].as_str().unwrap().contains("limit"),
        "{r}"
    );

    // No reply address at all: acknowledged and counted, nothing sent.
    cf.publish(&rk, b"[1,2,3]".to_vec(), json_properties())
        .await;
    wait_for("the unanswerable message", || {
        w.worker.stats.unanswerable.load(Ordering::Relaxed) == 1
    })
    .await;
    assert!(cf.next(Duration::from_millis(300)).await.is_none());

    // Still serving.
    acct.put(acct.device(1, json!({"sip": {"ip": "10.0.0.1"}})))
        .await;
    let r = cf.request(&acct, acct.request(&tid("device", 1))).await;
    assert_eq!(summary(&r), ["SIP:d1"]);
    assert_eq!(w.worker.stats.invalid_inputs.load(Ordering::Relaxed), 8);
    w.stop().await.unwrap();
    acct.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn targeted_replies_honour_pid_server_ids() {
    let acct = Account::create().await;
    acct.put(acct.device(1, json!({"sip": {"ip": "10.0.0.1"}})))
        .await;
    let w = start_worker(&acct, couch_store(None), None).await;
    let mut cf = Callflow::new().await;
    let mut req = acct.request(&tid("device", 1));
    req["Msg-ID"] = json!("m-pid");
    req["Server-ID"] = json!(format!("pid://<0.123.0>/{}", cf.queue));
    cf.publish(
        &acct.routing_key(),
        serde_json::to_vec(&req).unwrap(),
        json_properties(),
    )
    .await;
    let (r, props) = cf.next(Duration::from_secs(10)).await.expect("a reply");
    assert_eq!(r["Msg-ID"], "m-pid");
    let headers = props.headers().as_ref().expect("headers");
    match headers
        .inner()
        .get("Deliver-To-PID")
        .expect("Deliver-To-PID")
    {
        lapin::types::AMQPValue::LongString(pid) => assert_eq!(pid.as_bytes(), b"<0.123.0>"),
        other => panic!("Deliver-To-PID is {other:?}"),
    }
    w.stop().await.unwrap();
    acct.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_share_one_queue() {
    let acct = Account::create().await;
    acct.put(acct.device(1, json!({"sip": {"ip": "10.0.0.1"}})))
        .await;
    let a = start_worker(&acct, couch_store(None), None).await;
    let b = start_worker(&acct, couch_store(None), Some(&a.queue)).await;
    let mut cf = Callflow::new().await;
    let n = 30;
    for i in 0..n {
        let mut req = acct.request(&tid("device", 1));
        req["Msg-ID"] = json!(format!("m-{i}"));
        req["Server-ID"] = json!(cf.queue);
        cf.publish(
            &acct.routing_key(),
            serde_json::to_vec(&req).unwrap(),
            json_properties(),
        )
        .await;
    }
    let mut seen = std::collections::HashSet::new();
    for _ in 0..n {
        let (r, _) = cf.next(Duration::from_secs(10)).await.expect("a reply");
        assert_eq!(summary(&r), ["SIP:d1"]);
        assert!(
            seen.insert(r["Msg-ID"].as_str().unwrap().to_owned()),
            "answered twice: {r}"
        );
    }
    assert!(
        cf.next(Duration::from_millis(300)).await.is_none(),
        "no extra replies"
    );
    let (x, y) = (
        a.worker.stats.built.load(Ordering::Relaxed),
        b.worker.stats.built.load(Ordering::Relaxed),
    );
    assert_eq!(x + y, n);
    assert!(x > 0 && y > 0, "both workers served: {x} and {y}");
    a.stop().await.unwrap();
    b.stop().await.unwrap();
    acct.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_broker_connection_is_survived() {
    let acct = Account::create().await;
    acct.put(acct.device(1, json!({"sip": {"ip": "10.0.0.1"}})))
        .await;
    let w = start_worker(&acct, couch_store(None), None).await;
    let mut cf = Callflow::new().await;
    let r = cf.request(&acct, acct.request(&tid("device", 1))).await;
    assert_eq!(summary(&r), ["SIP:d1"]);
    let node = w.worker.node().to_owned();
    // The worker has one connection, named `<node>-<hex>`; closed twice, it comes back
    // twice, each time with a new name.
    let ours = |name: &str| name.starts_with(&format!("{node}-"));
    for n in 0..2u64 {
        assert_eq!(close_connections_where(ours), 1, "closing #{n}");
        wait_for("the reconnection", || {
            w.worker.stats.reconnects.load(Ordering::Relaxed) > n && w.worker.is_consuming()
        })
        .await;
        // Change events may have been missed while disconnected: the cache starts empty.
        assert!(w.worker.store().cache().unwrap().is_empty(), "closing #{n}");
        let r = cf.request(&acct, acct.request(&tid("device", 1))).await;
        assert_eq!(summary(&r), ["SIP:d1"], "after closing #{n}");
    }
    w.stop().await.unwrap();
    acct.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_the_request_in_flight() {
    let acct = Account::create().await;
    acct.put(acct.device(1, failover("+15550009999"))).await;
    // The registrar never answers: the build waits its full deadline.
    let _ecm = ecallmgr(&acct.realm, &[("d1", Answer::Silent)]).await;
    let w = start_worker(&acct, couch_store(None), None).await;
    wait_for("the ecallmgr heartbeat", || w.worker.ecallmgr_nodes() > 0).await;
    let mut cf = Callflow::new().await;
    let mut req = acct.request(&tid("device", 1));
    req["Msg-ID"] = json!("m-late");
    req["Server-ID"] = json!(cf.queue);
    cf.publish(
        &acct.routing_key(),
        serde_json::to_vec(&req).unwrap(),
        json_properties(),
    )
    .await;
    // Documents read: the build is in flight, waiting for the registrar.
    wait_for("the request to be taken", || {
        !w.worker.store().cache().unwrap().is_empty()
    })
    .await;
    let worker = w.worker.clone();
    w.stop().await.expect("a clean stop");
    let r = cf.reply_to("m-late").await;
    assert_eq!(summary(&r), ["SIP:d1+F:+15550009999"]);
    assert_eq!(worker.stats.built.load(Ordering::Relaxed), 1);
    acct.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_fixture_store_serves_the_worker() {
    // No CouchDB at all: the bundled example account, as `make run` uses it.
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/db");
    let acct_id = "4a686300000000000000000000000001";
    let routing = format!("endpoint.build.{acct_id}");
    let mut config = kz_endpoint::worker::WorkerConfig::new(
        amqp_url(),
        format!("kz-endpoint-test@{}", random_hex(6)),
    );
    config.queue = format!("kz-test-builder-{}", random_hex(8));
    // Only this test's requests: a Msg-ID-specific routing key cannot be used, so a unique
    // binding on a routing key with a test suffix is used instead.
    let key = format!("{routing}.{}", random_hex(6));
    config.bindings = vec![key.clone()];
    let worker = kz_endpoint::worker::Worker::new(config, Store::Fixture(FixtureDb::new(root)));
    let (trigger, shutdown) = kz_endpoint::shutdown::channel();
    let handle = tokio::spawn(worker.clone().run(shutdown));
    wait_for("the worker to consume", || worker.is_consuming()).await;
    let mut cf = Callflow::new().await;
    let mut req: Value = serde_json::from_str(include_str!(
        "../fixtures/requests/03-cellphone-forward.json"
    ))
    .unwrap();
    req["Msg-ID"] = json!("m-fixture");
    req["Server-ID"] = json!(cf.queue);
    cf.publish(&key, serde_json::to_vec(&req).unwrap(), json_properties())
        .await;
    let r = cf.reply_to("m-fixture").await;
    assert_eq!(summary(&r), ["FWD:+14155550199"]);
    trigger.fire();
    handle.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_request_healthcheck_and_sigterm() {
    // The bundled example account, served from the fixture folder by a real `serve` process;
    // the request goes through `kz-endpoint request`, as an operator would send one.
    let bin = env!("CARGO_BIN_EXE_kz-endpoint");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let http = format!("127.0.0.1:{port}");
    let node = format!("kz-endpoint-test@{}", random_hex(6));
    let child = std::process::Command::new(bin)
        .args([
            "serve",
            "--fixturedb",
            concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/db"),
        ])
        .args([
            "--amqp-url",
            &amqp_url(),
            "--node",
            &node,
            "--http-listen",
            &http,
        ])
        .args(["--queue", &format!("kz-test-builder-{}", random_hex(8))])
        // Only the example account's requests: other tests' requests are not ours to answer.
        .args([
            "--binding",
            "endpoint.build.4a686300000000000000000000000001",
        ])
        .env_remove("KZ_COUCH_URL")
        .env_remove("KZ_BINDINGS")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("kz-endpoint serve");
    let request = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/requests/05-user-forward-substitute.json"
    );
    let mut reply = None;
    for _ in 0..50 {
        let out = std::process::Command::new(bin)
            .args(["request", "--amqp-url", &amqp_url(), "--timeout-ms", "300"])
            .stdin(std::fs::File::open(request).unwrap())
            .output()
            .unwrap();
        if out.status.success() {
            reply = Some(serde_json::from_slice::<Value>(&out.stdout).unwrap());
            break;
        }
    }
    let r = reply.expect("the worker answered");
    assert_eq!(summary(&r), ["FWD:+14155550333"]);
    for args in [vec!["healthcheck"], vec!["healthcheck", "--ready"]] {
        let status = std::process::Command::new(bin)
            .args(&args)
            .args(["--http-listen", &http])
            .status()
            .unwrap();
        assert!(status.success(), "{args:?}");
    }
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        exit.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&exit.stderr)
    );
    let log = String::from_utf8_lossy(&exit.stderr);
    assert!(
        log.contains("shutdown requested") && log.contains("stopped"),
        "{log}"
    );
    assert!(!log.contains("fixture-password"));
    // Once stopped, the health check fails.
    let status = std::process::Command::new(bin)
        .args(["healthcheck", "--http-listen", &http])
        .status()
        .unwrap();
    assert!(!status.success());
}

/// A request without `Timestamp` is dated by its AMQP `timestamp`, else by its arrival: an
/// endpoint recording's `Media-Recording-ID` starts with that month (the MODB Kazoo files the
/// recording in), never 1970-01.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_without_a_timestamp_are_dated_for_recordings() {
    use kz_endpoint::engine::recording::year_month;
    let acct_id = format!("acc{}", random_hex(29));
    let dev_id = format!("dev{}", "0".repeat(29));
    let root = std::env::temp_dir().join(format!("kzt-dated-{}", random_hex(6)));
    let docs = root
        .join(kz_endpoint::ids::account_db(&acct_id))
        .join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    let write = |id: &str, v: Value| {
        std::fs::write(docs.join(format!("{id}.json")), v.to_string()).unwrap();
    };
    write(
        &acct_id,
        json!({"_id": acct_id, "pvt_type": "account", "realm": "dated.example.com"}),
    );
    write(
        &dev_id,
        json!({"_id": dev_id, "pvt_type": "device", "pvt_account_id": acct_id,
               "sip": {"username": "rec", "password": "x"},
               "call_recording": {"inbound": {"onnet": {"enabled": true}}}}),
    );
    let mut config = kz_endpoint::worker::WorkerConfig::new(
        amqp_url(),
        format!("kz-endpoint-test@{}", random_hex(6)),
    );
    config.queue = format!("kz-test-builder-{}", random_hex(8));
    let key = format!("endpoint.build.{acct_id}.{}", random_hex(6));
    config.bindings = vec![key.clone()];
    let worker = kz_endpoint::worker::Worker::new(config, Store::Fixture(FixtureDb::new(&root)));
    let (trigger, shutdown) = kz_endpoint::shutdown::channel();
    let handle = tokio::spawn(worker.clone().run(shutdown));
    wait_for("the worker to consume", || worker.is_consuming()).await;
    let mut cf = Callflow::new().await;
    let server_id = cf.queue.clone();
    let req = |msg: &str| {
        json!({
            "Event-Category": "endpoint", "Event-Name": "build_req", "Msg-ID": msg,
            "App-Name": "callflow", "App-Version": "4.0.0", "Server-ID": server_id,
            "Account-ID": acct_id, "Call-ID": "dated-call", "Endpoint-ID": dev_id,
            "Properties": {"source": "cf_device"},
            "Call": {"Account-ID": acct_id, "Call-ID": "dated-call", "Resource-Type": "audio"}
        })
    };
    let month = |r: &Value| {
        r["Endpoints"][0]["Endpoint-Actions"]["Execute-On-Answer"]["Record-Endpoint"]
            ["Media-Recording-ID"]
            .as_str()
            .unwrap_or_else(|| panic!("no recording: {r}"))[..6]
            .to_owned()
    };
    // 2023-11-14T22:13:20Z in the AMQP properties.
    let props = json_properties().with_timestamp(1_700_000_000);
    cf.publish(&key, serde_json::to_vec(&req("m-amqp")).unwrap(), props)
        .await;
    assert_eq!(month(&cf.reply_to("m-amqp").await), "202311");

    let before = year_month(unix_now());
    cf.publish(
        &key,
        serde_json::to_vec(&req("m-none")).unwrap(),
        json_properties(),
    )
    .await;
    let got = month(&cf.reply_to("m-none").await);
    let after = year_month(unix_now());
    let fmt = |(y, m): (i64, u32)| format!("{y:04}{m:02}");
    assert!(got == fmt(before) || got == fmt(after), "{got}");

    // A Timestamp in the body wins (Gregorian seconds, as Kazoo writes them).
    let mut r = req("m-body");
    r["Timestamp"] = json!(63_871_000_000_i64);
    cf.publish(
        &key,
        serde_json::to_vec(&r).unwrap(),
        json_properties().with_timestamp(1_700_000_000),
    )
    .await;
    let (y, m) = year_month(63_871_000_000 - 62_167_219_200);
    assert_eq!(month(&cf.reply_to("m-body").await), format!("{y:04}{m:02}"));
    trigger.fire();
    handle.await.unwrap().unwrap();
    std::fs::remove_dir_all(&root).unwrap();
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// An account whose database is not in CouchDB (a wrong `--couch-url`, or an account that
/// was deleted) is `not_found` naming the database, not "no document" for the id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_missing_from_couchdb_is_not_found_naming_its_database() {
    let acct = Account::create().await;
    let w = start_worker(&acct, couch_store(None), None).await;
    acct.drop_db().await;
    let mut cf = Callflow::new().await;
    let r = cf.request(&acct, acct.request(&tid("device", 1))).await;
    assert_eq!(r["Error-Code"], "not_found", "{r}");
    let msg = r["Error-Message"].as_str().unwrap();
    assert!(
        msg.starts_with(&format!("no database {} in the document store", acct.db)),
        "{msg}"
    );
    // Not a fault of CouchDB: readiness and the CouchDB error counter are untouched.
    assert_eq!(w.worker.stats.error_count("db_not_reachable"), 0);
    w.stop().await.unwrap();
}

/// An account whose `attributes` design document lacks the `owned` view: a user's build is
/// `db_not_reachable` naming the view (it used to ring none of the user's devices, silently).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_owned_view_is_db_not_reachable_naming_it() {
    let acct = Account::create().await;
    acct.put(json!({"_id": "_design/attributes", "language": "javascript", "views": {}}))
        .await;
    acct.put(acct.user(1, json!({}))).await;
    acct.put(acct.device(1, json!({"owner_id": tid("user", 1)})))
        .await;
    let w = start_worker(&acct, couch_store(None), None).await;
    let mut cf = Callflow::new().await;
    let r = cf.request(&acct, acct.request(&tid("user", 1))).await;
    assert_eq!(r["Error-Code"], "db_not_reachable", "{r}");
    let msg = r["Error-Message"].as_str().unwrap();
    assert!(
        msg.contains("_design/attributes/_view/owned") && msg.contains("couchdb-setup.sh"),
        "{msg}"
    );
    w.stop().await.unwrap();
    acct.drop_db().await;
}
