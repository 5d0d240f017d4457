//! The operations listener of a running worker (real RabbitMQ and CouchDB-API server):
//! counters move with the requests, readiness follows the broker connection.

mod live;
use live::*;

use std::time::Duration;

use kz_endpoint::ops;
use serde_json::json;

/// One metric's value in a Prometheus text page (`name{labels}` exactly as written).
fn metric(page: &str, series: &str) -> f64 {
    page.lines()
        .find_map(|l| {
            l.strip_prefix(series)
                .and_then(|rest| rest.strip_prefix(' '))
        })
        .unwrap_or_else(|| panic!("no series {series} in:\n{page}"))
        .parse()
        .unwrap()
}

async fn get(addr: &str, path: &str) -> (u16, String) {
    ops::http_get(addr, path)
        .await
        .expect("the operations listener answers")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_readiness_of_a_running_worker() {
    let acct = Account::create().await;
    acct.put(acct.device(
        1,
        json!({"call_failover": {"enabled": true, "number": "+15550001"}}),
    ))
    .await;
    acct.put(acct.device(2, json!({"do_not_disturb": {"enabled": true}})))
        .await;
    let _ecm = ecallmgr(&acct.realm, &[("d1", Answer::Registered)]).await;
    // A long backoff, so the time without a broker connection can be seen.
    let w = start_worker_with(&acct, couch_store(None), None, |c| {
        c.backoff = (Duration::from_millis(1500), Duration::from_millis(1500));
    })
    .await;
    wait_for("the ecallmgr heartbeat", || w.worker.ecallmgr_nodes() > 0).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let http = tokio::spawn(ops::serve(
        listener,
        w.worker.clone(),
        w.trigger.subscribe(),
    ));

    assert_eq!(get(&addr, "/healthz").await, (200, "ok\n".to_owned()));
    assert_eq!(get(&addr, "/readyz").await, (200, "ready\n".to_owned()));
    let (status, before) = get(&addr, "/metrics").await;
    assert_eq!(status, 200);
    assert_eq!(
        metric(
            &before,
            "kz_endpoint_requests_total{outcome=\"build_resp\"}"
        ),
        0.0
    );
    assert_eq!(metric(&before, "kz_endpoint_amqp_consuming"), 1.0);

    let mut cf = Callflow::new().await;
    for _ in 0..3 {
        let r = cf.request(&acct, acct.request(&tid("device", 1))).await;
        assert_eq!(summary(&r), ["SIP:d1"]);
    }
    let r = cf.request(&acct, acct.request(&tid("device", 2))).await;
    assert_eq!(r["Error-Code"], "do_not_disturb");
    let r = cf.request(&acct, acct.request("not-an-id")).await;
    assert_eq!(r["Error-Code"], "invalid_request");

    // A request's duration is observed once its delivery is settled, which is after its reply
    // is out: wait (bounded) until the last one is recorded, then read the page once.
    let mut page = String::new();
    for _ in 0..100 {
        page = get(&addr, "/metrics").await.1;
        if metric(&page, "kz_endpoint_build_duration_seconds_count") >= 5.0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        metric(&page, "kz_endpoint_requests_total{outcome=\"build_resp\"}"),
        3.0
    );
    assert_eq!(
        metric(
            &page,
            "kz_endpoint_requests_total{outcome=\"build_error\",code=\"do_not_disturb\"}"
        ),
        1.0
    );
    assert_eq!(
        metric(
            &page,
            "kz_endpoint_requests_total{outcome=\"build_error\",code=\"invalid_request\"}"
        ),
        1.0
    );
    // Answered invalid requests are counted once, as requests_total{code="invalid_request"}.
    assert!(!page.contains("invalid_inputs"), "{page}");
    for code in ["not_found", "db_not_reachable", "internal"] {
        assert_eq!(
            metric(
                &page,
                &format!("kz_endpoint_requests_total{{outcome=\"build_error\",code=\"{code}\"}}")
            ),
            0.0
        );
    }
    assert_eq!(
        metric(&page, "kz_endpoint_build_duration_seconds_count"),
        5.0
    );
    assert_eq!(metric(&page, "kz_endpoint_legs_per_build_count"), 3.0);
    assert_eq!(
        metric(&page, "kz_endpoint_legs_per_build_bucket{le=\"1.0\"}"),
        3.0
    );
    assert_eq!(
        metric(
            &page,
            "kz_endpoint_registrations_total{state=\"registered\"}"
        ),
        3.0
    );
    assert_eq!(
        metric(&page, "kz_endpoint_registrar_duration_seconds_count"),
        3.0
    );
    // The first build read the account, the device and the caller; the next two were cached.
    assert!(
        metric(&page, "kz_endpoint_cache_hits_total") >= 2.0,
        "{page}"
    );
    assert!(metric(&page, "kz_endpoint_cache_misses_total") >= 2.0);
    assert_eq!(metric(&page, "kz_endpoint_amqp_reconnects_total"), 0.0);
    assert_eq!(metric(&page, "kz_endpoint_requests_in_flight"), 0.0);
    assert!(
        metric(
            &page,
            "kz_endpoint_couchdb_request_duration_seconds_count{op=\"all_docs\"}"
        ) >= 1.0
    );
    assert_eq!(
        metric(
            &page,
            "kz_endpoint_couchdb_errors_total{kind=\"not_reachable\"}"
        ),
        0.0
    );
    assert_eq!(
        metric(&page, "kz_endpoint_registrations_total{state=\"unknown\"}"),
        0.0
    );

    // The broker connection drops: not ready, until the worker is back. Watched from before
    // the close, and read while it is down: the worker may be back before the `rabbitmqctl`
    // call that closed it returns.
    let watch = {
        let addr = addr.clone();
        tokio::spawn(async move {
            for _ in 0..2000 {
                let (status, body) = get(&addr, "/readyz").await;
                if status == 503 {
                    let (_, page) = get(&addr, "/metrics").await;
                    let alive = get(&addr, "/healthz").await.0;
                    return Some((body, metric(&page, "kz_endpoint_amqp_consuming"), alive));
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            None
        })
    };
    assert_eq!(close_connections_named(w.worker.node()), 1);
    let (unready, consuming, alive) = watch.await.unwrap().expect("readiness never dropped");
    assert!(unready.contains("broker"), "{unready}");
    assert_eq!(consuming, 0.0);
    assert_eq!(alive, 200, "alive while reconnecting");
    wait_for("the reconnection", || w.worker.is_consuming()).await;
    assert_eq!(get(&addr, "/readyz").await.0, 200);
    let (_, page) = get(&addr, "/metrics").await;
    assert_eq!(metric(&page, "kz_endpoint_amqp_reconnects_total"), 1.0);
    assert!(
        metric(&page, "kz_endpoint_cache_evictions_total{reason=\"reset\"}") >= 1.0,
        "the cache was dropped"
    );

    w.stop().await.unwrap();
    http.await.unwrap().unwrap();
    acct.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_needs_couchdb() {
    let acct = Account::create().await;
    let w = start_worker(&acct, couch_store(Some("http://127.0.0.1:9")), None).await;
    let why = w.worker.readiness().await.unwrap_err();
    assert!(
        why.starts_with("document store: CouchDB not reachable: "),
        "{why}"
    );
    w.stop().await.unwrap();
    acct.drop_db().await;
}
