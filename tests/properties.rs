//! Property test over request parsing and the engine: any request, any documents, any
//! registration state give a well-formed reply (a `build_resp` whose legs pass ecallmgr's
//! bridge-endpoint validation, or a `build_error` with a known code), never a panic.
//!
//! The generators build requests and documents from the fields Kazoo's documents and
//! callflow's requests really have, with values that are sometimes plausible and sometimes
//! arbitrary JSON, over a small pool of ids so that documents refer to each other (owners,
//! group members, cycles). The case count is bounded (`PROPTEST_CASES` raises it for a
//! longer run by hand).

mod common;

use kz_endpoint::build_api::Identity;
use kz_endpoint::documents::MemoryStore;
use kz_endpoint::handler::handle_message;
use kz_endpoint::registrar::{GivenRegistrations, RegKey, Registration};
use kz_endpoint::validate::validate_leg;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Map, Value, json};

const ACCOUNT: &str = "acc0000000000000000000000000000a";

/// The id pool: documents and references draw from it.
fn pool_id() -> impl Strategy<Value = String> {
    (0u8..12).prop_map(|n| format!("id{n:0>30}"))
}

/// Arbitrary JSON, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        (-1e6f64..1e6).prop_map(|f| json!(f)),
        "[a-z0-9+@._ -]{0,12}".prop_map(Value::String),
        Just(json!("x".repeat(300))),
        Just(json!("")),
        Just(json!("true")),
        Just(json!("20")),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A value for a field: plausible for it, or anything.
fn field(plausible: impl Strategy<Value = Value> + 'static) -> BoxedStrategy<Value> {
    prop_oneof![4 => plausible, 1 => any_json()].boxed()
}

/// A request field's value: nearly always plausible (a request is mostly well-formed; the
/// documents carry the variety).
fn rfield(plausible: impl Strategy<Value = Value> + 'static) -> BoxedStrategy<Value> {
    prop_oneof![150 => plausible, 1 => any_json()].boxed()
}

fn flag() -> BoxedStrategy<Value> {
    field(prop_oneof![
        Just(json!(true)),
        Just(json!(false)),
        Just(json!("true"))
    ])
}

fn number() -> BoxedStrategy<Value> {
    field(prop_oneof![
        Just(json!("+14155550100")),
        Just(json!("2000")),
        Just(json!("")),
        "[0-9+]{1,15}".prop_map(Value::String)
    ])
}

/// An object with some of the `keys`, each from its strategy.
fn some_of(keys: Vec<(&'static str, BoxedStrategy<Value>)>) -> BoxedStrategy<Value> {
    let n = keys.len();
    let (names, strategies): (Vec<_>, Vec<_>) = keys.into_iter().unzip();
    (prop::collection::vec(any::<bool>(), n), strategies)
        .prop_map(move |(present, values)| {
            let mut o = Map::new();
            for ((name, v), keep) in names.iter().zip(values).zip(present) {
                if keep {
                    o.insert((*name).to_owned(), v);
                }
            }
            Value::Object(o)
        })
        .boxed()
}

fn forward() -> BoxedStrategy<Value> {
    field(some_of(vec![
        ("enabled", flag()),
        ("number", number()),
        ("substitute", flag()),
        ("failover", flag()),
        ("require_keypress", flag()),
        ("keep_caller_id", flag()),
        ("direct_calls_only", flag()),
        ("ignore_early_media", flag()),
    ]))
}

fn caller_id() -> BoxedStrategy<Value> {
    let one = || {
        field(some_of(vec![
            ("number", number()),
            ("name", field("[A-Za-z ]{0,10}".prop_map(Value::String))),
        ]))
    };
    field(some_of(vec![
        ("internal", one()),
        ("external", one()),
        ("emergency", one()),
    ]))
}

fn sip() -> BoxedStrategy<Value> {
    field(some_of(vec![
        ("username", field("[a-z0-9_]{1,8}".prop_map(Value::String))),
        ("password", field(Just(json!("secret-pw")))),
        (
            "realm",
            field(prop_oneof![Just(json!("a.example.com")), Just(json!(""))]),
        ),
        ("ip", field(Just(json!("10.0.0.9")))),
        (
            "invite_format",
            field(
                prop_oneof![
                    Just("username"),
                    Just("npan"),
                    Just("e164"),
                    Just("1npan"),
                    Just("route"),
                    Just("contact"),
                    Just("strip_plus"),
                    Just("bogus")
                ]
                .prop_map(|s| json!(s)),
            ),
        ),
        ("route", field(Just(json!("sip:x@10.0.0.9")))),
        ("number", number()),
        (
            "custom_sip_headers",
            field(Just(
                json!({"X-A": "1", "in": {"X-B": "2"}, "out": {"X-C": null}}),
            )),
        ),
    ]))
}

fn media() -> BoxedStrategy<Value> {
    field(some_of(vec![
        ("audio", field(Just(json!({"codecs": ["PCMU", "OPUS"]})))),
        ("video", field(Just(json!({"codecs": []})))),
        (
            "encryption",
            field(Just(json!({"enforce_security": true, "methods": ["srtp"]}))),
        ),
        ("fax_option", flag()),
        ("bypass_media", field(Just(json!("auto")))),
        ("ignore_early_media", flag()),
        ("progress_timeout", field(Just(json!(10)))),
    ]))
}

/// A member map of a group: ids from the pool (so groups nest and loop).
fn members() -> BoxedStrategy<Value> {
    field(
        prop::collection::btree_map(
            pool_id(),
            some_of(vec![
                (
                    "type",
                    field(
                        prop_oneof![Just("device"), Just("user"), Just("group"), Just("x")]
                            .prop_map(|s| json!(s)),
                    ),
                ),
                ("weight", field(Just(json!(5)))),
                ("delay", field(Just(json!("3")))),
                ("timeout", field(Just(json!(30)))),
            ]),
            0..5,
        )
        .prop_map(|m| Value::Object(m.into_iter().collect())),
    )
}

/// A document of the pool: a device, user, group or something else.
fn document() -> impl Strategy<Value = Value> {
    let kind = prop_oneof![
        4 => Just("device"),
        2 => Just("user"),
        2 => Just("group"),
        1 => Just("account"),
        1 => Just("vmbox"),
    ];
    let body = some_of(vec![
        ("sip", sip()),
        ("call_forward", forward()),
        ("call_failover", forward()),
        ("caller_id", caller_id()),
        ("do_not_disturb", field(some_of(vec![("enabled", flag())]))),
        (
            "enabled",
            field(prop_oneof![6 => Just(json!(true)), 1 => Just(json!(false))]),
        ),
        (
            "pvt_deleted",
            field(prop_oneof![6 => Just(json!(false)), 1 => Just(json!(true))]),
        ),
        ("owner_id", field(pool_id().prop_map(Value::String))),
        (
            "hotdesk",
            field(pool_id().prop_map(|u| json!({"users": {u: {}}}))),
        ),
        ("media", media()),
        ("music_on_hold", field(Just(json!({"media_id": "m1"})))),
        (
            "ringtones",
            field(Just(json!({"internal": "r1", "external": "r2"}))),
        ),
        ("exclude_from_queues", flag()),
        (
            "device_type",
            field(
                prop_oneof![
                    Just("sip_device"),
                    Just("cellphone"),
                    Just("softphone"),
                    Just("fax"),
                    Just("smartphone"),
                    Just("landline")
                ]
                .prop_map(|s| json!(s)),
            ),
        ),
        ("endpoints", members()),
        ("outbound_flags", field(Just(json!(["a", "b"])))),
        ("metaflows", field(Just(json!({"numbers": {}})))),
        ("presence_id", field(Just(json!("2000")))),
        ("language", field(Just(json!("en-us")))),
        (
            "push",
            field(prop_oneof![
                Just(json!({"Token-App": "x"})),
                some_of(vec![
                    ("Token-Proxy", field(Just(json!("sip:10.0.0.7:5060")))),
                    ("Token-Type", field(Just(json!("apple")))),
                    ("Token-ID", field(Just(json!("tok")))),
                    ("Token-App", any_json().boxed()),
                ]),
            ]),
        ),
        ("realm", field(Just(json!("a.example.com")))),
    ]);
    (kind, body, prop::bool::weighted(0.6)).prop_map(|(k, mut b, credentialed)| {
        if let Value::Object(o) = &mut b {
            o.insert("pvt_type".into(), json!(k));
            // Most phones have credentials (and so a SIP leg to build).
            if credentialed {
                let sip = o.entry("sip").or_insert_with(|| json!({}));
                if let Value::Object(sip) = sip {
                    sip.entry("username").or_insert_with(|| json!("phone"));
                    sip.entry("password").or_insert_with(|| json!("secret-pw"));
                }
            }
        }
        b
    })
}

/// A request: a plausible `build_req` with some fields replaced.
fn request() -> impl Strategy<Value = Value> {
    let call = some_of(vec![
        ("Authorizing-ID", rfield(pool_id().prop_map(Value::String))),
        ("Owner-ID", rfield(pool_id().prop_map(Value::String))),
        ("Caller-ID-Name", rfield(Just(json!("Carol")))),
        ("Caller-ID-Number", rfield(Just(json!("1000")))),
        ("Request", rfield(Just(json!("2000@a.example.com")))),
        ("Inception", rfield(Just(json!("+14155550100@x")))),
        (
            "Resource-Type",
            rfield(
                prop_oneof![8 => Just("audio"), 1 => Just("video"), 1 => Just("sms"), 1 => Just("fax")]
                    .prop_map(|s| json!(s)),
            ),
        ),
        ("Account-Realm", rfield(Just(json!("a.example.com")))),
        ("Custom-Channel-Vars", rfield(Just(json!({"Queue-ID": "q"})))),
        (
            "Key-Value-Store",
            rfield(Just(json!({"Dynamic-CID": "+15550001", "Override-Ringtone": "r"}))),
        ),
    ]);
    let ring = prop::collection::vec(
        some_of(vec![
            ("id", rfield(pool_id().prop_map(Value::String))),
            (
                "endpoint_type",
                rfield(
                    prop_oneof![Just("device"), Just("user"), Just("group")].prop_map(|s| json!(s)),
                ),
            ),
            ("delay", rfield(Just(json!(2)))),
            ("timeout", rfield(Just(json!("25")))),
        ]),
        0..5,
    );
    let props = some_of(vec![
        (
            "source",
            rfield(
                prop_oneof![
                    Just("cf_device"),
                    Just("cf_user"),
                    Just("cf_ring_group"),
                    Just("acdc")
                ]
                .prop_map(|s| json!(s)),
            ),
        ),
        (
            "can_call_self",
            rfield(prop_oneof![Just(json!(true)), Just(json!(false))]),
        ),
        ("timeout", rfield(Just(json!(20)))),
        ("delay", rfield(Just(json!(0)))),
        (
            "suppress_clid",
            rfield(prop_oneof![Just(json!(true)), Just(json!(false))]),
        ),
        ("static_invite", rfield(Just(json!("sip:a@b")))),
        ("endpoints", rfield(ring.prop_map(Value::Array))),
    ]);
    (
        prop_oneof![4 => pool_id().prop_map(Some), 1 => Just(None)],
        props,
        call,
        any::<bool>(),
        prop::option::weighted(0.1, ("[A-Z][A-Za-z-]{1,12}", any_json())),
    )
        .prop_map(|(endpoint, mut props, mut call, explain, junk)| {
            // Mostly a call that has a resource type, and a member list when there is no id.
            if call.get("Resource-Type").is_none() && call.get("Caller-ID-Name").is_some() {
                call["Resource-Type"] = json!("audio");
            }
            if let Some(Value::Array(ms)) = props.get_mut("endpoints") {
                for (i, m) in ms.iter_mut().enumerate() {
                    if let Value::Object(o) = m {
                        o.entry("id").or_insert_with(|| json!(format!("id{i:0>30}")));
                    }
                }
            }
            if endpoint.is_none() && props.get("endpoints").is_none() {
                props["endpoints"] = json!([{"id": format!("id{:0>30}", 1)}, {"id": format!("id{:0>30}", 2), "endpoint_type": "user"}]);
            }
            let mut r = json!({
                "Event-Category": "endpoint", "Event-Name": "build_req", "Msg-ID": "prop-1",
                "App-Name": "callflow", "App-Version": "4.3.0", "Server-ID": "q",
                "Account-ID": ACCOUNT, "Call-ID": "c1",
                "Properties": props, "Call": call, "Explain": explain
            });
            if let Some(id) = endpoint {
                r["Endpoint-ID"] = json!(id);
            }
            if let Some((k, v)) = junk {
                r[k.as_str()] = v;
            }
            r
        })
}

#[test]
fn any_request_on_any_documents_gets_a_well_formed_reply() {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let identity = Identity::new("prop@test");
    let strategy = (
        request(),
        prop::collection::vec(prop::option::weighted(0.85, document()), 12),
        prop::collection::vec(
            (
                prop_oneof![Just("phone".to_owned()), "[a-z0-9_]{1,8}"],
                0u8..3,
            ),
            0..6,
        ),
        prop::bool::weighted(0.7),
    );
    let outcomes = std::cell::RefCell::new(std::collections::BTreeMap::<String, usize>::new());
    runner
        .run(&strategy, |(req, docs, regs, unknown)| {
            let mut all: Vec<Value> = docs
                .into_iter()
                .enumerate()
                .filter_map(|(n, d)| {
                    let mut d = d?;
                    d["_id"] = json!(format!("id{n:0>30}"));
                    Some(d)
                })
                .collect();
            all.push(json!({"_id": ACCOUNT, "pvt_type": "account", "realm": "a.example.com"}));
            let store = MemoryStore::new(all);
            let states = regs.into_iter().map(|(u, s)| {
                let state = [
                    Registration::Registered,
                    Registration::Unregistered,
                    Registration::Unknown,
                ][s as usize];
                (RegKey::new(u, "a.example.com"), state)
            });
            let registrar = GivenRegistrations::with_states(states, unknown);
            let bytes = serde_json::to_vec(&req).unwrap();
            let handled = rt.block_on(handle_message(
                &bytes,
                Some("application/json"),
                &store,
                &registrar,
                &identity,
            ));
            let reply = &handled.reply.json();
            let outcome = match &handled.result {
                Ok(_) => "build_resp".to_owned(),
                Err(e) => e.code.as_str().to_owned(),
            };
            if outcome == "invalid_request" && std::env::var("PROP_DEBUG").is_ok() {
                eprintln!("{}", reply["Error-Message"]);
            }
            *outcomes.borrow_mut().entry(outcome).or_default() += 1;
            prop_assert_eq!(&reply["Msg-ID"], &json!("prop-1"));
            match &handled.result {
                Ok(legs) => {
                    prop_assert_eq!(&reply["Event-Name"], "build_resp");
                    prop_assert!(!legs.is_empty());
                    for leg in legs.iter().map(kz_endpoint::leg::Leg::to_object) {
                        if let Err(e) = validate_leg(&leg) {
                            return Err(TestCaseError::fail(format!(
                                "invalid leg ({e}): {}",
                                Value::Object(leg)
                            )));
                        }
                    }
                }
                Err(e) => {
                    prop_assert_eq!(&reply["Event-Name"], "build_error");
                    prop_assert_eq!(&reply["Error-Code"], e.code.as_str());
                }
            }
            prop_assert!(
                !reply.to_string().contains("secret-pw"),
                "a password leaked"
            );
            Ok(())
        })
        .unwrap();
    let outcomes = outcomes.into_inner();
    println!("properties: {cases} cases: {outcomes:?}");
    // The generators reach the engine, not only the validation. About 6% of the cases
    // build (22 to 30 of 400 seen); the bound sits far below that, so the random cases do not
    // make the test flaky (a bound of 5% failed 1 run in 5).
    assert!(
        outcomes.get("build_resp").copied().unwrap_or(0) >= (cases as usize / 100).max(1),
        "{outcomes:?}"
    );
}
