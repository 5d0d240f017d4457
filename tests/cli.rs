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
    let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
    for needle in [
        "--fixturedb",
        "--registered",
        "--registration-unknown",
        "invalid_request",
        "not_found",
        "Exit status: 0 with a reply; 2 when the input is not a JSON object or the fixture folder does not exist",
    ] {
        assert!(
            help.contains(needle),
            "build --help lacks {needle}:\n{help}"
        );
    }
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(String::from_utf8(out.stdout).unwrap().contains("build"));
}

/// Runs the binary with `args` and `stdin`, no KZ_* variables from the caller's environment.
fn run_bin(args: &[&str], env: &[(&str, &str)], stdin: &str) -> (i32, String, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("KZ_") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(env.iter().copied());
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn a_missing_fixture_folder_is_an_error_not_an_unknown_id() {
    let req = fixture("04-user-bob");
    for cmd in ["build", "explain"] {
        let (code, out, err) = run_bin(&[cmd, "--fixturedb", "/nonexistent/kz"], &[], &req);
        assert_eq!(
            (code, out.as_str(), err.as_str()),
            (
                2,
                "",
                "kz-endpoint: fixture folder /nonexistent/kz does not exist\n"
            ),
            "{cmd}"
        );
    }
    // The same from the environment fallback.
    let (code, _, err) = run_bin(&["build"], &[("KZ_FIXTUREDB", "/nonexistent/kz")], &req);
    assert_eq!(
        (code, err.as_str()),
        (
            2,
            "kz-endpoint: fixture folder /nonexistent/kz does not exist\n"
        )
    );
    // A file is not a folder.
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    let (code, _, err) = run_bin(&["build", "--fixturedb", file], &[], &req);
    assert_eq!(
        (code, err),
        (
            2,
            format!("kz-endpoint: fixture folder {file} is not a folder\n")
        )
    );
}

#[test]
fn an_account_missing_from_the_folder_names_its_database() {
    let dir = std::env::temp_dir().join(format!("kz-cli-empty-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (code, out, err) = run_bin(
        &["build", "--fixturedb", dir.to_str().unwrap()],
        &[],
        &fixture("04-user-bob"),
    );
    assert_eq!(code, 0, "{err}");
    let r: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["Error-Code"], "not_found");
    assert_eq!(
        r["Error-Message"],
        format!(
            "no database account%2F4a%2F68%2F6300000000000000000000000001 in the fixture folder {} (the account is not in it)",
            dir.display()
        )
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn serve_refuses_a_missing_fixture_folder_before_connecting() {
    let (code, out, err) = run_bin(
        &[
            "serve",
            "--fixturedb",
            "/nonexistent/kz",
            "--amqp-url",
            "amqp://guest:guest@127.0.0.1:1/%2f",
            "--http-listen",
            "127.0.0.1:0",
        ],
        &[],
        "",
    );
    assert_eq!(
        (code, out.as_str(), err.as_str()),
        (
            2,
            "",
            "kz-endpoint: fixture folder /nonexistent/kz does not exist\n"
        )
    );
}

#[test]
fn serve_without_a_store_names_both_store_flags() {
    let (code, _, err) = run_bin(&["serve"], &[], "");
    assert_eq!(code, 2, "{err}");
    assert!(
        err.starts_with(
            "error: the following required arguments were not provided:\n  <--couch-url <URL>|--fixturedb <DIR>>\n"
        ),
        "{err}"
    );
}

#[test]
fn help_never_shows_a_credential_from_the_environment() {
    let env = [
        ("KZ_AMQP_URL", "amqp://u:topsecret@h/"),
        ("KZ_COUCH_URL", "http://admin:topsecret@couch:5984"),
    ];
    // (The load tool's help is checked in testkit/tests/load_tool.rs.)
    for cmd in ["serve", "request", "check"] {
        let (code, out, err) = run_bin(&[cmd, "--help"], &env, "");
        assert_eq!(code, 0, "{cmd}: {err}");
        assert!(
            !out.contains("topsecret"),
            "{cmd} --help shows a secret:\n{out}"
        );
        assert!(
            out.contains("KZ_AMQP_URL") || cmd == "check",
            "{cmd}:\n{out}"
        );
    }
}

#[test]
fn help_pages_are_wrapped_and_punctuated_alike() {
    for cmd in [
        "build",
        "explain",
        "replay",
        "serve",
        "request",
        "healthcheck",
        "check",
    ] {
        let (code, out, _) = run_bin(&[cmd, "--help"], &[], "");
        assert_eq!(code, 0, "{cmd}");
        for line in out.lines() {
            assert!(
                line.chars().count() <= 100,
                "{cmd} --help: a line over 100 columns: {line}"
            );
        }
        assert!(
            out.contains("Exit status: 0"),
            "{cmd} --help names its exit statuses:\n{out}"
        );
        // clap's style, kept by every flag: a description without a final period.
        let mut flag = None;
        let options = out
            .split_once("\nOptions:\n")
            .map(|(_, o)| o)
            .unwrap_or_else(|| panic!("{cmd} --help has an Options section:\n{out}"));
        for line in options.lines().chain(std::iter::once("")) {
            let t = line.trim_start();
            if t.starts_with("--") || (t.starts_with('-') && t.len() > 1 && !t.starts_with("- ")) {
                flag = Some(String::new());
            } else if t.is_empty() || t.starts_with('[') {
                if let Some(f) = flag.take()
                    && !f.is_empty()
                {
                    let f = f.trim_end();
                    assert!(
                        !f.ends_with('.'),
                        "{cmd} --help: a flag description ends with a period: {f:?}"
                    );
                }
            } else if let Some(f) = &mut flag {
                f.push_str(t);
                f.push(' ');
            }
        }
    }
}

#[test]
fn replay_of_a_capture_copied_away_from_its_folder_says_so() {
    let dir = std::env::temp_dir().join(format!("kz-cli-replay-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/amqp/03-row3-registered.json"
    );
    let file = dir.join("03.json");
    std::fs::copy(src, &file).unwrap();
    let before = std::fs::read_to_string(&file).unwrap();
    for args in [vec!["replay"], vec!["replay", "--update"]] {
        let mut args = args.clone();
        args.push(file.to_str().unwrap());
        let (code, out, _) = run_bin(&args, &[], "");
        assert_eq!(code, 1, "{out}");
        assert_eq!(
            out,
            format!(
                "FAIL {f}\n    fixture folder {d}/../db does not exist (the capture's \"fixturedb\": \"../db\", relative to the capture file)\n0 passed, 1 failed\n",
                f = file.display(),
                d = dir.display()
            )
        );
    }
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        before,
        "--update left it alone"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn explain_names_what_was_looked_up_and_what_to_pass() {
    let (code, out, err) = run_bin(
        &[
            "explain",
            "--fixturedb",
            concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/db"),
        ],
        &[],
        &fixture("04-user-bob"),
    );
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[1],
        "device 5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b \"Sales\": not registered (user_1002@acme.sip.example.com has no registration); no forward; failover to +14155550123 (call_failover) -> failover leg to +14155550123 (docs/device-table.md row 4)"
    );
    assert_eq!(
        lines.last().unwrap(),
        &"registrations: user_1002@acme.sip.example.com unregistered (not named with --registered); every device not named with --registered USERNAME@REALM is unregistered"
    );
    assert!(!out.contains("registrar error"), "{out}");
    let cited = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/device-table.md");
    assert!(
        std::path::Path::new(cited).is_file(),
        "the cited table is in the repository"
    );
}

#[test]
fn output_to_a_closed_pipe_ends_quietly() {
    // check keeps its verdict (1: something loses calls); replay ends with 0.
    let cases: [(i32, Vec<&str>); 2] = [
        (
            0,
            vec![
                "replay",
                concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/amqp"),
            ],
        ),
        (
            1,
            vec![
                "check",
                "--fixturedb",
                concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/db"),
                "--account",
                "4a686300000000000000000000000001",
            ],
        ),
    ];
    for (status, args) in cases {
        let mut child = Command::new(BIN)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            (
                out.status.code(),
                String::from_utf8_lossy(&out.stderr).as_ref()
            ),
            (Some(status), ""),
            "{args:?}"
        );
    }
}
