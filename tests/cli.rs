//! The offline `build` CLI contract: stdin request, stdout reply, exit statuses.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_kz-endpoint");
const REGISTERED: &str = "user_1002@acme.sip.example.com";

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/fixtures/requests/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("request fixture")
}

fn run(args: &[&str], stdin: &str) -> (i32, String, String) {
    let mut child = Command::new(BIN)
        .args([
            "build",
            "--fixturedb",
            concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/db"),
        ])
        .args(args)
        .env_remove("KZ_FIXTUREDB")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn reply(args: &[&str], stdin: &str) -> Value {
    let (code, out, err) = run(args, stdin);
    assert_eq!(code, 0, "stderr: {err}");
    assert_eq!(out.lines().count(), 1, "one reply line: {out}");
    serde_json::from_str(&out).expect("reply is JSON")
}

fn routes(r: &Value) -> Vec<String> {
    r["Endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let who = l
                .get("To-Username")
                .or(l.get("Route"))
                .and_then(Value::as_str)
                .unwrap();
            match l.get("Failover") {
                Some(f) => format!(
                    "{}:{who}+F:{}",
                    l["Invite-Format"].as_str().unwrap(),
                    f["Route"].as_str().unwrap()
                ),
                None => format!("{}:{who}", l["Invite-Format"].as_str().unwrap()),
            }
        })
        .collect()
}

#[test]
fn registered_device_gets_its_sip_leg() {
    let r = reply(
        &["--registered", REGISTERED],
        &fixture("01-device-registered"),
    );
    assert_eq!(r["Event-Category"], "endpoint");
    assert_eq!(r["Event-Name"], "build_resp");
    assert_eq!(r["Msg-ID"], "msg-01-device-registered");
    assert_eq!(r["App-Name"], "kz-endpoint");
    assert_eq!(routes(&r), ["username:user_1002"]);
    assert_eq!(r["Endpoints"][0]["Endpoint-Timeout"], "20");
    assert!(!r.to_string().contains("fixture-password"));
}

#[test]
fn registration_state_comes_from_the_flags() {
    // Unregistered: the device's call_failover leg replaces it.
    let r = reply(&[], &fixture("01-device-registered"));
    assert_eq!(routes(&r), ["loopback:+14155550123"]);
    assert_eq!(
        r["Endpoints"][0]["Custom-Channel-Vars"]["Is-Failover"],
        true
    );
    // Unknown: the SIP leg, carrying the failover for ecallmgr to decide.
    let r = reply(
        &["--registration-unknown"],
        &fixture("01-device-registered"),
    );
    assert_eq!(routes(&r), ["username:user_1002+F:+14155550123"]);
}

#[test]
fn users_groups_and_ring_groups() {
    let r = reply(&["--registered", REGISTERED], &fixture("04-user-bob"));
    assert_eq!(routes(&r), ["username:user_1002", "loopback:+14155550199"]);
    let r = reply(
        &["--registered", REGISTERED],
        &fixture("06-group-sales-team"),
    );
    assert_eq!(
        routes(&r),
        [
            "username:user_1002",
            "loopback:+14155550199",
            "loopback:2000"
        ]
    );
    assert_eq!(r["Endpoints"][2]["Endpoint-Delay"], "5");
    assert_eq!(r["Endpoints"][2]["Endpoint-Timeout"], "25");
    assert!(r["Endpoints"][0].get("Endpoint-Timeout").is_none());
    let r = reply(
        &["--registered", REGISTERED],
        &fixture("07-ring-group-list"),
    );
    assert_eq!(
        routes(&r),
        [
            "loopback:2000",
            "username:user_1002",
            "loopback:+14155550199"
        ]
    );
    assert_eq!(r["Endpoints"][1]["Endpoint-Delay"], "5");
}

#[test]
fn errors_are_build_errors_with_status_zero() {
    for (name, code, message) in [
        ("08-do-not-disturb", "do_not_disturb", "do_not_disturb"),
        ("09-calling-self", "owner_called_self", "caller's owner"),
        (
            "10-unknown-id",
            "not_found",
            "00000000000000000000000000000404",
        ),
        ("11-invalid-id", "invalid_request", "Endpoint-ID"),
    ] {
        let r = reply(&[], &fixture(name));
        assert_eq!(r["Event-Name"], "build_error", "{name}");
        assert_eq!(r["Error-Code"], code, "{name}");
        assert!(
            r["Error-Message"].as_str().unwrap().contains(message),
            "{name}: {r}"
        );
        assert_eq!(r["Msg-ID"], format!("msg-{name}"));
        assert!(r.get("Endpoints").is_none());
    }
}

#[test]
fn missing_account_id_names_the_field() {
    let mut req: Value = serde_json::from_str(&fixture("01-device-registered")).unwrap();
    req.as_object_mut().unwrap().remove("Account-ID");
    let r = reply(&[], &req.to_string());
    assert_eq!(r["Error-Code"], "invalid_request");
    assert_eq!(r["Error-Message"], "Account-ID is required");
    let mut req: Value = serde_json::from_str(&fixture("01-device-registered")).unwrap();
    req.as_object_mut().unwrap().remove("Endpoint-ID");
    let r = reply(&[], &req.to_string());
    assert_eq!(r["Error-Code"], "invalid_request");
    assert!(
        r["Error-Message"]
            .as_str()
            .unwrap()
            .starts_with("Endpoint-ID is required")
    );
}

#[test]
fn input_that_is_not_a_json_object_exits_2() {
    for input in ["", "not json", "[1,2]", "\"text\"", "{\"a\":"] {
        let (code, out, err) = run(&[], input);
        assert_eq!(code, 2, "input {input:?}");
        assert!(out.is_empty());
        assert_eq!(err.trim().lines().count(), 1, "one line on stderr: {err}");
    }
}

#[test]
fn help_explains_the_contract() {
    let out = Command::new(BIN)
        .args(["build", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "--fixturedb",
        "--registered",
        "--registration-unknown",
        "invalid_request",
        "not_found",
        "exit 2",
    ] {
        assert!(
            help.contains(needle),
            "build --help lacks {needle}:\n{help}"
        );
    }
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(String::from_utf8(out.stdout).unwrap().contains("build"));
}
