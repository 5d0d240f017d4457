//! Conformance against Kazoo's own test documents (`fixturedb/` of Kazoo's reference
//! material, [`common::kazoo_reference`]: `../shared/kazoo-reference` beside the checkout, or
//! `KZ_KAZOO_REFERENCE`).
//!
//! Every device and user document of every account database that has an account document is
//! built through the real request handler, over the fixture folder as the document store,
//! with every credentialed device registered. A build must succeed, or fail only with a
//! gating outcome; every leg must pass the bridge-endpoint validator, and no SIP password of
//! the documents may appear in any reply.
//!
//! The reference folder is not part of the project: when it is absent the test says so and
//! passes without checking anything.

mod common;
use common::*;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use kz_endpoint::build_api::Identity;
use kz_endpoint::fixturedb::FixtureDb;
use kz_endpoint::handler::handle;
use kz_endpoint::ids::is_valid_id;
use kz_endpoint::leg::Leg;
use kz_endpoint::registrar::{GivenRegistrations, RegKey};
use kz_endpoint::validate::validate_leg;
use serde_json::{Value, json};

/// The error codes a fixture document may legitimately produce.
const GATING_CODES: [&str; 3] = ["do_not_disturb", "endpoint_disabled", "no_endpoints"];

fn fixture_root() -> PathBuf {
    kazoo_reference().join("fixturedb")
}

/// The account id of an account database folder (`account%2Fac%2Fco%2Funt…` → `account…`);
/// `None` for other databases and for MODBs (a `-YYYYMM` suffix).
fn account_id_of(folder: &str) -> Option<String> {
    let rest = folder.strip_prefix("account%2F")?;
    let id = rest.replace("%2F", "");
    if id.contains('-') {
        return None;
    }
    Some(id)
}

/// Every JSON document of a database folder, by `_id` (ascending).
fn read_docs(db: &Path) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(db.join("docs")) else {
        return out;
    };
    for entry in entries.flatten() {
        let p = entry.path();
        if p.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let text = std::fs::read_to_string(&p)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()));
        let doc: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not JSON: {e}", p.display()));
        if let Some(id) = doc.get("_id").and_then(Value::as_str) {
            out.insert(id.to_owned(), doc);
        }
    }
    out
}

fn str_at<'a>(v: &'a Value, keys: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for k in keys {
        cur = cur.get(*k)?;
    }
    cur.as_str().filter(|s| !s.is_empty())
}

fn pvt_type(doc: &Value) -> Option<&str> {
    doc.get("pvt_type").and_then(Value::as_str)
}

/// A `build_req` for `endpoint_id` in `account_id`, on an audio call with no calling device.
fn fixture_request(account_id: &str, realm: &str, endpoint_id: &str, source: &str) -> Value {
    json!({
        "Event-Category": "endpoint", "Event-Name": "build_req", "Msg-ID": "conformance-1",
        "App-Name": "callflow", "App-Version": "4.0.0", "Server-ID": "conformance-queue",
        "Account-ID": account_id, "Call-ID": "conformance-call-1", "Endpoint-ID": endpoint_id,
        "Properties": {"source": source},
        "Call": {
            "Account-ID": account_id, "Call-ID": "conformance-call-1",
            "Caller-ID-Name": "Conformance", "Caller-ID-Number": "+14155550100",
            "Request": format!("2000@{realm}"), "Request-User": "2000", "Request-Realm": realm,
            "Resource-Type": "audio", "Custom-Channel-Vars": {}, "Key-Value-Store": {}
        }
    })
}

#[test]
fn kazoo_fixture_devices_and_users_build() {
    let root = fixture_root();
    let store = FixtureDb::new(&root);
    let identity = Identity::new("conformance@test");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    let mut folders: Vec<String> = std::fs::read_dir(&root)
        .expect("readable fixture folder")
        .flatten()
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().to_str().map(str::to_owned))
        .collect();
    folders.sort();

    let mut failures: Vec<String> = Vec::new();
    let (mut built, mut ok, mut gated) = (0usize, 0usize, 0usize);
    let mut accounts = 0usize;

    for folder in &folders {
        let Some(account_id) = account_id_of(folder) else {
            if folder.starts_with("account%2F") {
                eprintln!("skip {folder}: an account MODB, not an account database");
            }
            continue;
        };
        let docs = read_docs(&root.join(folder));
        let Some(account) = docs
            .get(&account_id)
            .filter(|d| pvt_type(d) == Some("account"))
        else {
            eprintln!("skip {folder}: no account document {account_id}");
            continue;
        };
        accounts += 1;
        let account_realm = str_at(account, &["realm"]);
        let realm_for_request = account_realm.unwrap_or("example.invalid");

        // Everyone with credentials is registered.
        let mut registered = Vec::new();
        for doc in docs.values().filter(|d| pvt_type(d) == Some("device")) {
            if let Some(user) = str_at(doc, &["sip", "username"]) {
                match str_at(doc, &["sip", "realm"]).or(account_realm) {
                    Some(realm) => registered.push(RegKey::new(user, realm)),
                    None => eprintln!("  {folder}: device {user} has no realm to register in"),
                }
            }
        }
        let registrar = GivenRegistrations::new(registered.clone(), false);
        // Every SIP password of the database: none may reach a reply.
        let passwords: Vec<&str> = docs
            .values()
            .filter_map(|d| str_at(d, &["sip", "password"]))
            .collect();
        eprintln!(
            "account {account_id} (realm {}): {} registered, {} passwords",
            account_realm.unwrap_or("-"),
            registered.len(),
            passwords.len()
        );

        for (id, doc) in &docs {
            let kind = match pvt_type(doc) {
                Some(k @ ("device" | "user")) => k,
                _ => continue,
            };
            let what = format!("{account_id}/{id} ({kind})");
            if !is_valid_id(id) {
                eprintln!("  {what}: skipped, the id is not a valid Endpoint-ID");
                continue;
            }
            built += 1;
            let source = if kind == "user" {
                "cf_user"
            } else {
                "cf_device"
            };
            let req = fixture_request(&account_id, realm_for_request, id, source);
            let body = req.as_object().unwrap().clone();
            let handled = rt.block_on(handle(&body, &store, &registrar, &identity));
            let text = handled.reply.to_string();
            for pw in &passwords {
                if text.contains(pw) {
                    failures.push(format!("{what}: the reply contains a SIP password"));
                }
            }
            if handled.reply.json()["Msg-ID"] != req["Msg-ID"] {
                failures.push(format!("{what}: the reply does not echo Msg-ID"));
            }
            match &handled.result {
                Ok(legs) => {
                    let legs: Vec<_> = legs.iter().map(Leg::to_object).collect();
                    ok += 1;
                    eprintln!("  {what}: ok, {} leg(s) {:?}", legs.len(), summary(&legs));
                    if handled.reply.json()["Event-Name"] != "build_resp" {
                        failures.push(format!("{what}: legs but no build_resp"));
                    }
                    for (i, leg) in legs.iter().enumerate() {
                        if let Err(e) = validate_leg(leg) {
                            failures.push(format!(
                                "{what}: leg {i} is invalid ({e}): {}",
                                Value::Object(leg.clone())
                            ));
                        }
                    }
                }
                Err(e) if GATING_CODES.contains(&e.code.as_str()) => {
                    gated += 1;
                    eprintln!("  {what}: gated, {} ({})", e.code, e.message);
                    if handled.reply.json()["Error-Code"] != e.code.as_str() {
                        failures.push(format!("{what}: the reply's Error-Code is not {}", e.code));
                    }
                }
                Err(e) => {
                    eprintln!("  {what}: FAILED, {} ({})", e.code, e.message);
                    failures.push(format!(
                        "{what}: unexpected error {}: {}",
                        e.code, e.message
                    ));
                }
            }
        }
    }

    eprintln!(
        "conformance: {accounts} account database(s), {built} build(s): {ok} ok, {gated} gated, {} problem(s)",
        failures.len()
    );
    assert!(
        accounts > 0,
        "no account database found under {}",
        root.display()
    );
    assert!(built > 0, "no device or user document found");
    assert!(
        failures.is_empty(),
        "conformance problems:\n{}",
        failures.join("\n")
    );
}
