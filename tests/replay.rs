//! Replay of the captured AMQP fixtures (`fixtures/amqp/`), through the binary.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_kz-endpoint");

fn replay(args: &[&str]) -> (i32, String) {
    let out = Command::new(BIN)
        .arg("replay")
        .args(args)
        .output()
        .expect("kz-endpoint replay");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
    )
}

fn fixtures() -> String {
    format!("{}/fixtures/amqp", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn every_bundled_capture_replays_to_its_reply() {
    let (code, out) = replay(&[&fixtures()]);
    let files = std::fs::read_dir(fixtures()).unwrap().count();
    assert!(files >= 30, "at least 30 captures, found {files}");
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        out.lines().last().unwrap(),
        format!("{files} passed, 0 failed")
    );
    assert_eq!(
        out.lines().filter(|l| l.starts_with("PASS ")).count(),
        files
    );
}

#[test]
fn the_bundled_captures_cover_the_rules() {
    // Every device-table row, users, groups, ring groups, gating errors and invalid requests.
    let names: Vec<String> = std::fs::read_dir(fixtures())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    for needle in [
        "row1",
        "row2",
        "row3",
        "row4",
        "row5",
        "row6",
        "row7",
        "row8",
        "row9",
        "user-",
        "group-",
        "ring-group-",
        "gating-",
        "invalid-",
        "not-found",
    ] {
        assert!(
            names.iter().any(|n| n.contains(needle)),
            "no capture for {needle}"
        );
    }
    // And every one is a capture of Kazoo's wire format.
    for n in &names {
        let c: Value =
            serde_json::from_str(&std::fs::read_to_string(Path::new(&fixtures()).join(n)).unwrap())
                .unwrap();
        assert_eq!(c["kz_capture"], 1, "{n}");
        assert_eq!(c["message"]["exchange"], "kapps", "{n}");
        if let Some(body) = c["message"].get("body") {
            assert_eq!(body["Event-Category"], "endpoint", "{n}");
            assert_eq!(body["Event-Name"], "build_req", "{n}");
        }
        if let Some(reply) = c["reply"].as_object() {
            assert_eq!(reply["Event-Category"], "endpoint", "{n}");
            assert!(
                reply["Event-Name"] == "build_resp" || reply["Event-Name"] == "build_error",
                "{n}"
            );
        }
    }
}

#[test]
fn an_altered_reply_fails_with_a_diff_of_the_legs() {
    let dir = tempdir();
    let src = Path::new(&fixtures()).join("02-row2-registered-forward-alongside.json");
    let mut c: Value = serde_json::from_str(&std::fs::read_to_string(&src).unwrap()).unwrap();
    // The capture points at the fixture database relative to itself: keep it pointing there.
    c["fixturedb"] = Value::String(format!("{}/fixtures/db", env!("CARGO_MANIFEST_DIR")));
    c["reply"]["Endpoints"][1]["Route"] = Value::String("+19995550000".into());
    c["reply"]["Endpoints"][0]["Endpoint-Timeout"] = Value::String("30".into());
    let file = dir.join("altered.json");
    std::fs::write(&file, serde_json::to_string_pretty(&c).unwrap()).unwrap();
    let (code, out) = replay(&[file.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], format!("FAIL {}", file.display()));
    assert_eq!(
        lines[1],
        "    leg 1: SIP leg to user_1007@acme.sip.example.com"
    );
    assert_eq!(
        lines[2],
        "      leg 1 Endpoint-Timeout: expected \"30\", got \"20\""
    );
    assert_eq!(
        lines[3],
        "    leg 2: expected forward leg to +19995550000, got forward leg to +14155550107"
    );
    assert_eq!(
        lines[4],
        "      leg 2 Route: expected \"+19995550000\", got \"+14155550107\""
    );
    assert_eq!(lines.last().unwrap(), &"0 passed, 1 failed");

    // --update takes the new reply; the capture then passes.
    let (code, out) = replay(&["--update", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = replay(&[file.to_str().unwrap()]);
    assert_eq!(
        (code, out.lines().last().unwrap()),
        (0, "1 passed, 0 failed")
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_broken_capture_file_fails_without_stopping_the_others() {
    let dir = tempdir();
    std::fs::write(dir.join("a-broken.json"), "{\"kz_capture\": 1}").unwrap();
    let src = Path::new(&fixtures()).join("03-row3-registered.json");
    let mut c: Value = serde_json::from_str(&std::fs::read_to_string(&src).unwrap()).unwrap();
    c["fixturedb"] = Value::String(format!("{}/fixtures/db", env!("CARGO_MANIFEST_DIR")));
    std::fs::write(dir.join("b-good.json"), c.to_string()).unwrap();
    let (code, out) = replay(&[dir.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        out.contains("FAIL") && out.contains("not a capture"),
        "{out}"
    );
    assert_eq!(out.lines().last().unwrap(), "1 passed, 1 failed");
    std::fs::remove_dir_all(dir).unwrap();
}

fn tempdir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!(
        "kz-replay-{}-{}",
        std::process::id(),
        fastrand::u64(..)
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The reply bytes of every bundled capture, as the worker would publish them, are what
/// `serde_json` writes for the same value: the reply writer (`json_writer`) changes how
/// fast a reply is written, not one byte of it.
#[tokio::test]
async fn every_bundled_reply_is_written_byte_for_byte_as_serde_json_writes_it() {
    let identity = kz_endpoint::build_api::Identity::new("kz-endpoint@test");
    let mut checked = 0;
    for entry in std::fs::read_dir(fixtures()).unwrap() {
        let path = entry.unwrap().path();
        let capture = kz_endpoint::capture::load(&path).unwrap();
        let answered = kz_endpoint::replay::run(&capture, Path::new(&fixtures()), &identity)
            .await
            .unwrap();
        let bytes = answered.reply.bytes();
        let value: Value = serde_json::from_slice(bytes).unwrap();
        assert_eq!(
            String::from_utf8(serde_json::to_vec(&value).unwrap()).unwrap(),
            String::from_utf8(bytes.to_vec()).unwrap(),
            "{}",
            path.display()
        );
        checked += 1;
    }
    assert_eq!(checked, 48);
}
