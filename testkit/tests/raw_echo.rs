//! The load tool's echo consumer without a client library (`raw_echo`), against the real
//! RabbitMQ (KZ_TEST_AMQP_URL, else the local one): it answers every request, one that fits a
//! frame and one that spans several, and acknowledges each (more requests than its prefetch
//! are answered one after another, which the broker allows only once earlier ones are
//! acknowledged).

use std::time::Duration;

use kz_endpoint::amqp::random_hex;
use kz_endpoint::client::Client;
use kz_endpoint_testkit::{echo, raw_echo};
use serde_json::json;

fn amqp_url() -> String {
    std::env::var("KZ_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

#[tokio::test]
async fn answers_every_request_and_acknowledges_it() {
    let url = amqp_url();
    let conn = lapin::Connection::connect(&url, Default::default())
        .await
        .expect("RabbitMQ at KZ_TEST_AMQP_URL (or 127.0.0.1:5672)");
    let ch = conn.create_channel().await.unwrap();
    let key = format!("endpoint.raw-echo.{}", random_hex(8));
    // The load tool's echo queue (auto-delete: it goes when the echo consumer's connection
    // does).
    let queue = echo::declare_queue(&ch, &key).await.unwrap();

    let (ready, consuming) = tokio::sync::oneshot::channel();
    let prefetch = 2;
    let server = {
        let (url, queue) = (url.clone(), queue.clone());
        tokio::spawn(async move {
            raw_echo::serve(&url, &queue, prefetch, move || {
                let _ = ready.send(());
            })
            .await
        })
    };
    tokio::time::timeout(Duration::from_secs(10), consuming)
        .await
        .expect("the echo consumer consumes within 10 s")
        .expect("the echo consumer started");

    let client = Client::connect(&url).await.unwrap();
    // 200 000 bytes: more than RabbitMQ's default frame size (131 072), so several frames.
    let sizes = [0, 200_000, 10, 0, 300_000];
    assert!(sizes.len() > usize::from(prefetch));
    for (i, size) in sizes.into_iter().enumerate() {
        let msg_id = format!("raw-echo-{i}-{}", random_hex(6));
        let req = json!({"Msg-ID": msg_id, "Padding": "x".repeat(size)});
        let reply = client
            .request_with_key(req, &key, Duration::from_secs(5))
            .await
            .unwrap_or_else(|e| panic!("request {i} ({size} bytes of padding): {e}"));
        assert_eq!(
            reply,
            json!({"Event-Category": "endpoint", "Event-Name": "build_resp", "Msg-ID": msg_id, "Endpoints": []})
        );
    }
    assert!(!server.is_finished(), "the echo consumer ended: {server:?}");
    server.abort();
    let _ = conn.close(200, "done".into()).await;
}
