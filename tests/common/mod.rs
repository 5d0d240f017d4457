//! Shared test helpers: a small Kazoo account built in code, request builders, and a build
//! that runs the real request handler and checks every leg with the bridge-endpoint validator.
#![allow(dead_code)]

use kz_endpoint::build_api::{BuildResult, Identity};
use kz_endpoint::documents::{DocumentStore, MemoryStore};
use kz_endpoint::handler::{Answered, handle};
use kz_endpoint::kz_json::{Object, merge_right_wins};
use kz_endpoint::leg::Leg;
use kz_endpoint::registrar::{GivenRegistrations, RegKey, Registrar};
use kz_endpoint::validate::validate_leg;
use serde_json::{Value, json};

/// A 32-character id: `prefix` then `n`, zero-padded.
pub fn id(prefix: &str, n: u32) -> String {
    format!("{prefix}{n:0>width$}", width = 32 - prefix.len())
}
pub fn dev(n: u32) -> String {
    id("device", n)
}
pub fn usr(n: u32) -> String {
    id("user", n)
}
pub fn grp(n: u32) -> String {
    id("group", n)
}
pub fn account_id() -> String {
    id("account", 1)
}
/// The calling device.
pub fn caller_id() -> String {
    id("caller", 1)
}

pub const REALM: &str = "a.example.com";

/// The account: realm, name and external caller ID.
pub fn account() -> Value {
    json!({
        "_id": account_id(), "pvt_type": "account", "name": "Acme", "realm": REALM,
        "caller_id": {"external": {"number": "+14155550000", "name": "Acme"}}
    })
}

/// The calling device `devC` (rules file section 15).
pub fn caller_device() -> Value {
    json!({
        "_id": caller_id(), "pvt_type": "device", "pvt_account_id": account_id(),
        "name": "Caller", "device_type": "sip_device",
        "sip": {"username": "carol", "password": "caller-secret"},
        "caller_id": {"internal": {"number": "1000", "name": "Carol"}}
    })
}

/// Device `n`: a plain SIP device with username `d<n>`, then `extra` merged over it.
pub fn device(n: u32, extra: Value) -> Value {
    let base = json!({
        "_id": dev(n), "pvt_type": "device", "pvt_account_id": account_id(),
        "name": format!("Desk {n}"), "device_type": "sip_device", "enabled": true,
        "sip": {"username": format!("d{n}"), "password": format!("secret-{n}")}
    });
    merge_right_wins(&base, &extra)
}

/// User `n`, then `extra` merged over it.
pub fn user(n: u32, extra: Value) -> Value {
    let base = json!({
        "_id": usr(n), "pvt_type": "user", "pvt_account_id": account_id(),
        "first_name": "User", "last_name": format!("{n}"), "enabled": true
    });
    merge_right_wins(&base, &extra)
}

/// Group `n` with members `endpoints`, then `extra` merged over it.
pub fn group(n: u32, endpoints: Value, extra: Value) -> Value {
    let base = json!({
        "_id": grp(n), "pvt_type": "group", "pvt_account_id": account_id(),
        "name": format!("Group {n}"), "endpoints": endpoints
    });
    merge_right_wins(&base, &extra)
}

/// A call-forward object with every flag stated (as Crossbar stores it), `extra` over it.
pub fn cf(number: &str, extra: Value) -> Value {
    let base = json!({
        "enabled": true, "number": number, "substitute": false, "failover": false,
        "require_keypress": false, "keep_caller_id": false, "direct_calls_only": false,
        "ignore_early_media": true
    });
    merge_right_wins(&base, &extra)
}

/// A `build_req` for `Endpoint-ID` `id` from the calling device, on an internal audio call.
pub fn request(endpoint_id: &str) -> Value {
    json!({
        "Event-Category": "endpoint", "Event-Name": "build_req", "Msg-ID": "msg-1",
        "App-Name": "callflow", "App-Version": "4.0.0", "Server-ID": "test-queue",
        "Account-ID": account_id(), "Call-ID": "call-1", "Endpoint-ID": endpoint_id,
        "Properties": {"source": "cf_device"},
        "Call": {
            "Account-ID": account_id(), "Call-ID": "call-1", "Authorizing-ID": caller_id(),
            "Caller-ID-Name": "Carol", "Caller-ID-Number": "1000",
            "Request": format!("1001@{REALM}"), "Request-User": "1001", "Request-Realm": REALM,
            "Resource-Type": "audio", "Custom-Channel-Vars": {}, "Key-Value-Store": {}
        }
    })
}

/// A ring-group `build_req` with the member list `members`.
pub fn ring_group_request(members: Value) -> Value {
    let mut r = request("x");
    let o = r.as_object_mut().unwrap();
    o.remove("Endpoint-ID");
    o.insert(
        "Properties".into(),
        json!({"source": "cf_ring_group", "endpoints": members}),
    );
    r
}

/// `base` with `patch` merged over it (a `null` in the patch removes a key).
pub fn with(base: Value, patch: Value) -> Value {
    merge_right_wins(&base, &patch)
}

/// An account and its registration state.
#[derive(Debug, Clone)]
pub struct World {
    pub docs: Vec<Value>,
    pub registered: Vec<RegKey>,
    pub unknown: bool,
}

impl World {
    /// The account, the calling device and `docs`; every device unregistered.
    pub fn new(docs: Vec<Value>) -> Self {
        let mut all = vec![account(), caller_device()];
        all.extend(docs);
        Self {
            docs: all,
            registered: Vec::new(),
            unknown: false,
        }
    }

    /// Marks SIP usernames (in the account realm) registered.
    pub fn registered(mut self, users: &[&str]) -> Self {
        self.registered
            .extend(users.iter().map(|u| RegKey::new(*u, REALM)));
        self
    }

    /// Devices not registered are in an unknown state.
    pub fn unknown(mut self) -> Self {
        self.unknown = true;
        self
    }

    /// Runs `req` through the request handler, checked as [`run`] checks it.
    pub fn build(&self, req: &Value) -> BuildResult {
        let store = MemoryStore::new(self.docs.clone());
        let registrar = GivenRegistrations::new(self.registered.clone(), self.unknown);
        run(&store, &registrar, req).result
    }

    /// The legs of a build that must succeed.
    pub fn legs(&self, req: &Value) -> Vec<Object> {
        match self.build(req) {
            Ok(legs) => legs.iter().map(Leg::to_object).collect(),
            Err(e) => panic!("expected legs, got {e}"),
        }
    }

    /// The error code of a build that must fail.
    pub fn error(&self, req: &Value) -> String {
        match self.build(req) {
            Ok(legs) => panic!("expected an error, got {} legs: {legs:?}", legs.len()),
            Err(e) => e.code.as_str().to_owned(),
        }
    }

    /// The legs, summarised (see [`summary`]).
    pub fn summary(&self, req: &Value) -> Vec<String> {
        summary(&self.legs(req))
    }
}

/// Runs `req` through the request handler with `store` and `registrar`; checks the reply
/// envelope, that every leg passes the bridge-endpoint validator, and that no password is
/// anywhere in the reply.
pub fn run<S, R>(store: &S, registrar: &R, req: &Value) -> Answered
where
    S: DocumentStore + Sync,
    R: Registrar + Sync,
{
    let body = req.as_object().expect("request object").clone();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let handled = rt.block_on(handle(&body, store, registrar, &Identity::new("test@host")));
    let text = handled.reply.to_string();
    assert!(
        !text.contains("secret"),
        "a password leaked into the reply: {text}"
    );
    assert_eq!(handled.reply.json()["Msg-ID"], req["Msg-ID"]);
    if let Ok(legs) = &handled.result {
        assert_eq!(handled.reply.json()["Event-Name"], "build_resp");
        for leg in legs.iter().map(Leg::to_object) {
            if let Err(e) = validate_leg(&leg) {
                panic!("invalid leg ({e}): {}", Value::Object(leg));
            }
        }
    } else {
        assert_eq!(handled.reply.json()["Event-Name"], "build_error");
    }
    handled
}

/// One word per leg: `SIP:<To-Username or Route>` (with `+F:<route>` for a nested failover),
/// `FWD:<route>`, `FAILOVER:<route>`.
pub fn summary<L: AsObject>(legs: &[L]) -> Vec<String> {
    legs.iter()
        .map(|leg| {
            let leg = leg.object();
            let leg = leg.as_ref();
            let route = leg.get("Route").and_then(Value::as_str).unwrap_or("");
            if leg["Invite-Format"] == "loopback" {
                let failover = leg["Custom-Channel-Vars"].get("Is-Failover") == Some(&json!(true));
                format!("{}:{route}", if failover { "FAILOVER" } else { "FWD" })
            } else {
                let who = leg
                    .get("To-Username")
                    .and_then(Value::as_str)
                    .unwrap_or(route);
                match leg.get("Failover") {
                    Some(f) => format!("SIP:{who}+F:{}", f["Route"].as_str().unwrap_or("")),
                    None => format!("SIP:{who}"),
                }
            }
        })
        .collect()
}

/// A leg as JSON: a typed leg serialised, or one that is JSON already.
pub trait AsObject {
    /// The leg's JSON object.
    fn object(&self) -> std::borrow::Cow<'_, Object>;
}

impl AsObject for Object {
    fn object(&self) -> std::borrow::Cow<'_, Object> {
        std::borrow::Cow::Borrowed(self)
    }
}

impl AsObject for Leg {
    fn object(&self) -> std::borrow::Cow<'_, Object> {
        std::borrow::Cow::Owned(self.to_object())
    }
}

/// Where Kazoo's reference material is (`kazoo-reference/`: Kazoo's fixture documents and the
/// replies of its own builder): `KZ_KAZOO_REFERENCE` when set, else the folder beside the
/// checkout (`../shared/kazoo-reference`). The material is not part of the project (it is
/// read, never copied in), so a test that needs it and cannot find it fails, saying where it
/// looked: passing without checking anything would hide that nothing was checked.
pub fn kazoo_reference() -> std::path::PathBuf {
    let root = match std::env::var_os("KZ_KAZOO_REFERENCE") {
        Some(dir) => std::path::PathBuf::from(dir),
        None => std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/kazoo-reference"),
    };
    assert!(
        root.join("fixturedb").is_dir() && root.join("v4-builds").is_dir(),
        "Kazoo's reference material is not at {} (no fixturedb/ and v4-builds/ there): set \
         KZ_KAZOO_REFERENCE to the kazoo-reference folder, or put it beside the checkout \
         (../shared/kazoo-reference)",
        root.display()
    );
    root
}
