//! `kz-endpoint serve` and `kz-endpoint request` as an operator runs them: the binary, its
//! stderr and its operations listener, against the real RabbitMQ (127.0.0.1:5672, or
//! KZ_TEST_AMQP_URL). Each worker consumes its own queue, bound to its own routing key only.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use kz_endpoint::amqp::random_hex;
use kz_endpoint::client::Client;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_kz-endpoint");
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/db");
const ACCOUNT: &str = "4a686300000000000000000000000001";

fn amqp_url() -> String {
    std::env::var("KZ_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// A `kz-endpoint serve` process and its stderr lines.
struct Served {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Served {
    fn start(args: &[&str]) -> Self {
        let mut cmd = Command::new(BIN);
        for (k, _) in std::env::vars() {
            if k.starts_with("KZ_") || k == "RUST_LOG" || k == "NO_COLOR" {
                cmd.env_remove(k);
            }
        }
        let mut child = cmd
            .arg("serve")
            .args(["--http-listen", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn serve");
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// The first line (from the start) that `pred` accepts, within 10 s.
    fn line(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        if let Some(l) = self.seen.iter().find(|l| pred(l)) {
            return l.clone();
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    self.seen.push(l.clone());
                    if pred(&l) {
                        return l;
                    }
                }
                Err(_) => panic!(
                    "no {what} on stderr within 10 s; saw:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// The first JSON line with this message.
    fn json_line(&mut self, message: &str) -> Value {
        let needle = format!("\"message\":\"{message}\"");
        let l = self.line(message, |l| l.contains(&needle));
        serde_json::from_str(&l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The bundled request for the user Bob of the example account.
fn bob() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/requests/04-user-bob.json"
    ))
    .unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Every string value in `v`, at any depth.
fn strings(v: &Value, out: &mut Vec<(String, String)>, at: &str) {
    match v {
        Value::Object(o) => o
            .iter()
            .for_each(|(k, v)| strings(v, out, &format!("{at}.{k}"))),
        Value::Array(a) => a.iter().for_each(|v| strings(v, out, at)),
        Value::String(s) => out.push((at.to_owned(), s.clone())),
        _ => {}
    }
}

#[test]
fn json_logs_carry_the_request_context_once_and_no_empty_field() {
    let queue = format!("kzt-serve-{}", random_hex(8));
    let key = format!("kzt.serve.{}", random_hex(8));
    let url = amqp_url();
    let mut w = Served::start(&[
        "--fixturedb",
        FIXTURES,
        "--amqp-url",
        &url,
        "--queue",
        &queue,
        "--binding",
        &key,
        "--log-format",
        "json",
    ]);
    let start = w.json_line("starting");
    let f = &start["fields"];
    assert_eq!(f["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(f["store"], format!("fixture folder {FIXTURES}"));
    assert_eq!(f["queue"], queue.as_str());
    assert_eq!(f["bindings"], key.as_str());
    assert_eq!(f["prefetch"], 10);
    assert_eq!(f["broker"], "amqp://guest:***@127.0.0.1:5672/%2f");
    let consuming = w.json_line("consuming build requests");
    assert_eq!(consuming["fields"]["bindings"], key.as_str());

    let rt = tokio::runtime::Runtime::new().unwrap();
    let request = |msg_id: &str, call_id: Option<&str>| {
        let mut req = bob();
        req["Msg-ID"] = json!(msg_id);
        match call_id {
            Some(c) => req["Call-ID"] = json!(c),
            None => {
                req.as_object_mut().unwrap().remove("Call-ID");
            }
        }
        rt.block_on(async {
            let c = Client::connect_checked(&url).await.unwrap();
            c.request_with_key(req, &key, Duration::from_secs(5)).await
        })
        .expect("a reply")
    };
    let msg_id = format!("m-{}", random_hex(8));
    request(&msg_id, Some("call-1"));
    let built = w.json_line("built");
    assert_eq!(
        built["span"],
        json!({"name": "build", "msg_id": msg_id, "account": ACCOUNT,
               "endpoint": bob()["Endpoint-ID"], "call_id": "call-1"})
    );
    assert!(
        built.get("spans").is_none(),
        "the context is not repeated: {built}"
    );

    // A request without a Call-ID: the field is absent from the span, not "".
    let msg_id = format!("m-{}", random_hex(8));
    request(&msg_id, None);
    let line = w.line("the second build", |l| l.contains(&msg_id));
    let v: Value = serde_json::from_str(&line).unwrap();
    assert!(v["span"].get("call_id").is_none(), "{v}");
    for l in &w.seen {
        let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
        let mut all = Vec::new();
        strings(&v, &mut all, "");
        for (at, s) in all {
            assert!(!s.is_empty(), "an empty field {at} in {l}");
        }
        assert!(
            !l.contains("guest:guest"),
            "a credential in a log line: {l}"
        );
    }
}

#[test]
fn text_logs_have_no_colour_off_a_terminal_and_the_broker_down_line_says_what_happened() {
    let mut w = Served::start(&[
        "--fixturedb",
        FIXTURES,
        "--amqp-url",
        "amqp://u:topsecret@127.0.0.1:1/%2f",
    ]);
    let start = w.line("the start-up line", |l| l.contains(" starting "));
    for field in [
        format!("version={}", env!("CARGO_PKG_VERSION")),
        "broker=amqp://u:***@127.0.0.1:1/%2f".into(),
        format!("store=fixture folder {FIXTURES}"),
        "queue=endpoint_builder".into(),
        "bindings=endpoint.build.*".into(),
        "prefetch=10".into(),
    ] {
        assert!(start.contains(&field), "{field} missing: {start}");
    }
    let warn = w.line("the broker warning", |l| l.contains("WARN"));
    let (_, rest) = warn.split_once("Z ").expect("a timestamp");
    assert_eq!(
        rest,
        " WARN kz_endpoint::worker: broker not reachable broker=127.0.0.1:1 error=Connection refused (os error 111) retry_in_ms=100"
    );
    for l in &w.seen {
        assert!(!l.contains('\u{1b}'), "a colour code off a terminal: {l:?}");
        assert!(!l.contains("topsecret"), "a password in a log line: {l}");
    }
}

#[test]
fn request_tells_nobody_bound_from_slow_and_survives_a_closed_pipe() {
    // An account no worker binds: the broker returns the request at once.
    let nobody = format!("{:0>32}", random_hex(12));
    let mut req = bob();
    req["Account-ID"] = json!(nobody);
    let req = req.to_string();
    let url = amqp_url();
    let run = |req: &str, close_stdout: bool| {
        let mut child = Command::new(BIN)
            .args(["request", "--amqp-url", &url, "--timeout-ms", "5000"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = child.stdout.take().unwrap();
        if close_stdout {
            drop(stdout);
            stdout = Command::new("true")
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
                .stdout
                .take()
                .unwrap();
        }
        child
            .stdin
            .take()
            .unwrap()
            .write_all(req.as_bytes())
            .unwrap();
        let started = std::time::Instant::now();
        let out = child.wait_with_output().unwrap();
        let mut text = String::new();
        if !close_stdout {
            std::io::Read::read_to_string(&mut stdout, &mut text).unwrap();
        }
        (
            out.status.code(),
            text,
            String::from_utf8(out.stderr).unwrap(),
            started.elapsed(),
        )
    };
    let (code, out, err, took) = run(&req, false);
    assert_eq!((code, out.as_str()), (Some(1), ""));
    assert_eq!(
        err,
        format!(
            "kz-endpoint: broker 127.0.0.1:5672: no worker is bound to routing key endpoint.build.{nobody} on the kapps exchange: the broker returned the request (is a worker running, and does one of its --binding keys match?)\n"
        )
    );
    assert!(
        took < Duration::from_secs(4),
        "said at once, not after the timeout: {took:?}"
    );

    // A worker bound to this account: the reply goes to a closed pipe, quietly.
    let queue = format!("kzt-pipe-{}", random_hex(8));
    let key = format!("endpoint.build.{nobody}");
    let mut w = Served::start(&[
        "--fixturedb",
        FIXTURES,
        "--amqp-url",
        &url,
        "--queue",
        &queue,
        "--binding",
        &key,
    ]);
    w.line("consuming", |l| l.contains("consuming build requests"));
    let (code, _, err, _) = run(&req, true);
    assert_eq!(
        (code, err.as_str()),
        (Some(0), ""),
        "no panic on a closed pipe"
    );
    let (code, out, _, _) = run(&req, false);
    assert_eq!(code, Some(0));
    let reply: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(reply["Error-Code"], "not_found");
}

#[test]
fn metrics_at_start_hold_every_closed_set_series_at_zero() {
    let queue = format!("kzt-metrics-{}", random_hex(8));
    let key = format!("kzt.metrics.{}", random_hex(8));
    let url = amqp_url();
    let mut w = Served::start(&[
        "--fixturedb",
        FIXTURES,
        "--amqp-url",
        &url,
        "--queue",
        &queue,
        "--binding",
        &key,
        "--log-format",
        "json",
    ]);
    let http = w.json_line("starting")["fields"]["http"]
        .as_str()
        .unwrap()
        .to_owned();
    w.json_line("consuming build requests");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (status, page) = rt
        .block_on(kz_endpoint::ops::http_get(&http, "/metrics"))
        .unwrap();
    assert_eq!(status, 200);
    let lines: Vec<&str> = page.lines().collect();
    let mut expected = vec![
        format!(
            "kz_endpoint_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        ),
        "kz_endpoint_requests_total{outcome=\"build_resp\"} 0".into(),
        "kz_endpoint_unanswerable_total 0".into(),
        "kz_endpoint_task_failures_total 0".into(),
        "kz_endpoint_amqp_reconnects_total 0".into(),
        "kz_endpoint_build_duration_seconds_count 0".into(),
        "kz_endpoint_legs_per_build_count 0".into(),
        "kz_endpoint_registrar_timeouts_total 0".into(),
        "kz_endpoint_registrar_duration_seconds_count 0".into(),
        "kz_endpoint_requests_in_flight 0".into(),
        "kz_endpoint_amqp_consuming 1".into(),
        "kz_endpoint_ecallmgr_nodes 0".into(),
    ];
    for code in kz_endpoint::build_api::ErrorCode::ALL {
        expected.push(format!(
            "kz_endpoint_requests_total{{outcome=\"build_error\",code=\"{}\"}} 0",
            code.as_str()
        ));
    }
    for s in ["registered", "unregistered", "unknown"] {
        expected.push(format!(
            "kz_endpoint_registrations_total{{state=\"{s}\"}} 0"
        ));
    }
    for r in ["no_ecallmgr", "key_too_long", "publish_failed"] {
        expected.push(format!(
            "kz_endpoint_registrations_not_asked_total{{reason=\"{r}\"}} 0"
        ));
    }
    for line in &expected {
        assert!(lines.contains(&line.as_str()), "{line} missing:\n{page}");
    }
    // The legs histogram has no bucket a successful build cannot reach.
    assert!(
        !page.contains("kz_endpoint_legs_per_build_bucket{le=\"0.0\"}"),
        "{page}"
    );
    for name in [
        "process_cpu_seconds_total ",
        "process_resident_memory_bytes ",
        "process_open_fds ",
        "process_start_time_seconds ",
    ] {
        assert!(
            lines.iter().any(|l| l.starts_with(name)),
            "{name}missing:\n{page}"
        );
    }
    assert!(!page.contains("invalid_inputs"), "{page}");
    assert_eq!(lines.last(), Some(&"# EOF"));
}
