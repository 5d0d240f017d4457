//! `kz-endpoint check`: an account's configuration checked for what loses calls.

use std::process::Command;

use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_kz-endpoint");

fn id(prefix: &str, n: u32) -> String {
    format!("{prefix}{n:0>width$}", width = 32 - prefix.len())
}

fn run(args: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new(BIN);
    for (k, _) in std::env::vars() {
        if k.starts_with("KZ_") {
            cmd.env_remove(k);
        }
    }
    let out = cmd.arg("check").args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// A fixture folder holding one account with `docs` (the account document has no realm).
fn folder(account: &str, docs: &[Value]) -> std::path::PathBuf {
    let root = std::env::temp_dir().join(format!(
        "kz-check-{}-{}",
        std::process::id(),
        fastrand::u64(..)
    ));
    let db = root
        .join(kz_endpoint::ids::account_db(account))
        .join("docs");
    std::fs::create_dir_all(&db).unwrap();
    let mut all = docs.to_vec();
    all.push(json!({"_id": account, "pvt_type": "account", "name": "Checked"}));
    for d in all {
        let file = db.join(format!("{}.json", d["_id"].as_str().unwrap()));
        std::fs::write(file, d.to_string()).unwrap();
    }
    root
}

#[test]
fn every_configuration_that_loses_calls_is_found() {
    let account = id("acc", 1);
    let (d1, d2, d3, d4, d5) = (
        id("dev", 1),
        id("dev", 2),
        id("dev", 3),
        id("dev", 4),
        id("dev", 5),
    );
    let (u1, g1) = (id("usr", 1), id("grp", 1));
    let docs = [
        json!({"_id": d1, "pvt_type": "device", "name": "Bad format",
               "sip": {"username": "u1", "realm": "r.example.com", "invite_format": "endpoint"}}),
        json!({"_id": d2, "pvt_type": "device", "name": "No realm", "sip": {"username": "u2"}}),
        json!({"_id": d3, "pvt_type": "device", "name": "Loop",
               "sip": {"username": "1003", "realm": "r.example.com"},
               "call_forward": {"enabled": true, "number": "1003"}}),
        json!({"_id": d4, "pvt_type": "device", "name": "Same",
               "sip": {"username": "u4", "realm": "r.example.com"},
               "call_forward": {"enabled": true, "number": "+1555"},
               "call_failover": {"enabled": true, "number": "+1555"}}),
        json!({"_id": d5, "pvt_type": "device", "name": "Mobile", "device_type": "mobile"}),
        json!({"_id": u1, "pvt_type": "user", "first_name": "No", "last_name": "Phones"}),
        json!({"_id": g1, "pvt_type": "group", "name": "Self",
               "endpoints": {g1.clone(): {"type": "group"}, d4.clone(): {"type": "device"}}}),
    ];
    let root = folder(&account, &docs);
    let (code, out, err) = run(&[
        "--fixturedb",
        root.to_str().unwrap(),
        "--account",
        &account,
        "--format",
        "json",
    ]);
    assert_eq!(code, 1, "{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    let findings = |id: &str| -> Vec<(String, String)> {
        report["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["id"] == id)
            .unwrap_or_else(|| panic!("{id} not in {report}"))["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["severity"].as_str().unwrap().to_owned(),
                    f["message"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let lose = |m: &str| ("loses_calls".to_owned(), m.to_owned());
    let surprise = |m: &str| ("surprise".to_owned(), m.to_owned());
    assert_eq!(
        findings(&d1),
        [lose(
            "sip.invite_format \"endpoint\" is not one ecallmgr accepts (username, e164, npan, 1npan, route, loopback, contact): its SIP leg is dropped"
        )]
    );
    assert_eq!(
        findings(&d2),
        [lose(
            "SIP credentials with no realm (neither sip.realm nor the account's realm): its registration cannot be looked up, and ecallmgr cannot route its SIP leg"
        )]
    );
    assert_eq!(
        findings(&d3),
        [lose(
            "call_forward.number 1003 is the device's own number: the forward calls itself"
        )]
    );
    assert_eq!(
        findings(&d4),
        [surprise(
            "the failover number +1555 is the forward number: no separate failover leg is ever added"
        )]
    );
    assert_eq!(
        findings(&d5),
        [lose(
            "device_type mobile is not applied by kz-endpoint: the device gets no leg"
        )]
    );
    assert_eq!(
        findings(&u1),
        [lose(
            "no devices and no forward: a call to this user rings nothing"
        )]
    );
    assert_eq!(
        findings(&g1),
        [surprise(
            "the group contains itself (directly or through its member groups): the loop is expanded once"
        )]
    );
    let d4_rings = report["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == d4)
        .unwrap()["rings"]
        .clone();
    assert_eq!(d4_rings, "forward leg to +1555");
    assert_eq!(report["loses_calls"], 5);
    assert_eq!(report["surprises"], 2);

    // The table says the same for people.
    let (code, table, _) = run(&["--fixturedb", root.to_str().unwrap(), "--account", &account]);
    assert_eq!(code, 1);
    assert!(table.contains(&format!("device  {d3}  Loop")), "{table}");
    assert!(
        table.contains("        LOSES CALLS: call_forward.number 1003 is the device's own number"),
        "{table}"
    );
    assert!(
        table.ends_with("7 endpoint(s): 5 finding(s) that lose calls, 2 surprise(s)\n"),
        "{table}"
    );
    std::fs::remove_dir_all(root).unwrap();
}

#[test]
fn a_clean_account_exits_0_and_bad_inputs_exit_2() {
    let account = id("acc", 2);
    let d1 = id("dev", 1);
    let root = folder(
        &account,
        &[json!({"_id": d1, "pvt_type": "device", "name": "Desk",
                 "sip": {"username": "u1", "realm": "r.example.com"}})],
    );
    let dir = root.to_str().unwrap();
    let (code, out, err) = run(&["--fixturedb", dir, "--account", &account]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        format!(
            "account {account}\nTYPE    ID                                NAME                  RINGS (registrations unknown)\ndevice  {d1}  Desk                  SIP leg to u1@r.example.com\n1 endpoint(s): 0 finding(s) that lose calls, 0 surprise(s)\n"
        )
    );
    let (code, _, err) = run(&["--fixturedb", "/nonexistent/kz", "--account", &account]);
    assert_eq!(
        (code, err.as_str()),
        (
            2,
            "kz-endpoint: fixture folder /nonexistent/kz does not exist\n"
        )
    );
    let (code, _, err) = run(&["--fixturedb", dir, "--account", "nope"]);
    assert_eq!(
        (code, err.as_str()),
        (
            2,
            "kz-endpoint: --account \"nope\" is not an account id (32 lowercase letters or digits)\n"
        )
    );
    let other = id("acc", 3);
    let (code, _, err) = run(&["--fixturedb", dir, "--account", &other]);
    assert_eq!(code, 2);
    assert_eq!(
        err,
        format!(
            "kz-endpoint: no database {} in the fixture folder {dir}\n",
            kz_endpoint::ids::account_db(&other)
        )
    );
    let (code, _, err) = run(&["--account", &account]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("<--couch-url <URL>|--fixturedb <DIR>>"),
        "{err}"
    );
    std::fs::remove_dir_all(root).unwrap();
}

#[test]
fn the_bundled_account_has_one_user_who_rings_nothing() {
    let (code, out, _) = run(&[
        "--fixturedb",
        concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/db"),
        "--account",
        "4a686300000000000000000000000001",
    ]);
    assert_eq!(code, 1);
    assert!(
        out.contains("user    da7e0000000000000000000000000019  Dave Dunn"),
        "{out}"
    );
}
