//! Product rules section 8: what operators configure on their documents and in
//! `system_config`, field-exact with Kazoo's builder (`kz_endpoint_v4`, `kz_attributes`,
//! `kz_endpoint_recording`, `kz_formatters`).

mod common;
use common::*;

use serde_json::{Value, json};

fn leg0(w: &World, req: &Value) -> serde_json::Map<String, Value> {
    w.legs(req).remove(0)
}

fn s<'a>(leg: &'a serde_json::Map<String, Value>, k: &str) -> Option<&'a str> {
    leg.get(k).and_then(Value::as_str)
}

/// A caller with no internal caller ID: the callee sees the call's number, not the caller's
/// SIP username (`maybe_use_presence_number` with no explicit presence id).
#[test]
fn internal_call_without_internal_caller_id_shows_the_calls_number() {
    let caller = with(caller_device(), json!({"caller_id": null}));
    let mut w = World::new(vec![device(1, json!({}))]).registered(&["d1"]);
    w.docs[1] = caller;
    let req = with(
        request(&dev(1)),
        json!({"Call": {"Caller-ID-Number": "+14155551234", "Caller-ID-Name": "Call Name"}}),
    );
    let leg = leg0(&w, &req);
    assert_eq!(s(&leg, "Outbound-Caller-ID-Number"), Some("+14155551234"));
    assert_eq!(s(&leg, "Outbound-Caller-ID-Name"), Some("Call Name"));
}

/// An explicit presence id on the caller (device, or its owner) is the internal number.
#[test]
fn internal_call_uses_an_explicit_presence_id() {
    let caller = with(
        caller_device(),
        json!({"caller_id": null, "presence_id": "2222@elsewhere"}),
    );
    let mut w = World::new(vec![device(1, json!({}))]).registered(&["d1"]);
    w.docs[1] = caller;
    let leg = leg0(&w, &request(&dev(1)));
    assert_eq!(s(&leg, "Outbound-Caller-ID-Number"), Some("2222"));

    let caller = with(
        caller_device(),
        json!({"caller_id": null, "owner_id": usr(9), "presence_id": "2222"}),
    );
    let owner = user(9, json!({"presence_id": "3333"}));
    let mut w = World::new(vec![device(1, json!({})), owner]).registered(&["d1"]);
    w.docs[1] = caller;
    let leg = leg0(&w, &request(&dev(1)));
    assert_eq!(s(&leg, "Outbound-Caller-ID-Number"), Some("3333"));
}

/// A `dynamic_cid` given as a bare number keeps the call's `Caller-ID-Name`.
#[test]
fn bare_dynamic_cid_keeps_the_calls_name() {
    let w = World::new(vec![device(1, json!({}))]).registered(&["d1"]);
    let req = with(
        request(&dev(1)),
        json!({"Call": {"Caller-ID-Name": "Front Desk",
                        "Key-Value-Store": {"dynamic_cid": "+15550001111"}}}),
    );
    let leg = leg0(&w, &req);
    assert_eq!(s(&leg, "Outbound-Caller-ID-Number"), Some("+15550001111"));
    assert_eq!(s(&leg, "Outbound-Caller-ID-Name"), Some("Front Desk"));
}

fn system(id: &str, default: Value) -> Value {
    json!({"_id": id, "default": default})
}

/// `kazoo_endpoint` system settings: transport (validated), interface, the default of
/// `Ignore-Completed-Elsewhere`; the device's own values win.
#[test]
fn kazoo_endpoint_system_config_fills_sip_fields() {
    let cfg = system(
        "kazoo_endpoint",
        json!({"sip_transport": "tcp", "custom_sip_interface": "external",
               "default_ignore_completed_elsewhere": false}),
    );
    let w = World::new(vec![device(1, json!({})), cfg.clone()]).registered(&["d1"]);
    let leg = leg0(&w, &request(&dev(1)));
    assert_eq!(s(&leg, "SIP-Transport"), Some("tcp"));
    assert_eq!(s(&leg, "SIP-Interface"), Some("external"));
    assert_eq!(leg["Ignore-Completed-Elsewhere"], json!(false));

    let own = device(
        1,
        json!({"sip": {"transport": "tls", "custom_sip_interface": "mine"},
               "ignore_completed_elsewhere": true}),
    );
    let w = World::new(vec![own, cfg]).registered(&["d1"]);
    let leg = leg0(&w, &request(&dev(1)));
    assert_eq!(s(&leg, "SIP-Transport"), Some("tls"));
    assert_eq!(s(&leg, "SIP-Interface"), Some("mine"));
    assert_eq!(leg["Ignore-Completed-Elsewhere"], json!(true));

    // A transport Kazoo does not know is ignored, on the device and in the config.
    let bad = system("kazoo_endpoint", json!({"sip_transport": "ws"}));
    let dev_bad = device(1, json!({"sip": {"transport": "quic"}}));
    let w = World::new(vec![dev_bad, bad]).registered(&["d1"]);
    assert!(!leg0(&w, &request(&dev(1))).contains_key("SIP-Transport"));
}

/// Node, then zone, then `default` (`kapps_config:get/3`); the worker's node is `test@host`
/// and its zone `local`.
#[test]
fn system_config_resolves_node_then_zone_then_default() {
    let cfg = json!({"_id": "kazoo_endpoint",
        "default": {"sip_transport": "udp"},
        "local": {"sip_transport": "tcp"},
        "test@host": {"sip_transport": "tls"}});
    let w = World::new(vec![device(1, json!({})), cfg]).registered(&["d1"]);
    assert_eq!(
        s(&leg0(&w, &request(&dev(1))), "SIP-Transport"),
        Some("tls")
    );
    let cfg = json!({"_id": "kazoo_endpoint",
        "default": {"sip_transport": "udp"}, "local": {"sip_transport": "tcp"},
        "other@host": {"sip_transport": "tls"}});
    let w = World::new(vec![device(1, json!({})), cfg]).registered(&["d1"]);
    assert_eq!(
        s(&leg0(&w, &request(&dev(1))), "SIP-Transport"),
        Some("tcp")
    );
}

/// `privacy.method` is the default `Privacy-Method`; the anonymous number of a call without
/// one comes from the account's `configs_privacy`, then the system.
#[test]
fn privacy_config() {
    let cfg = system(
        "privacy",
        json!({"method": "sip", "default_privacy_number": "0000000000"}),
    );
    let w = World::new(vec![device(1, json!({})), cfg.clone()]).registered(&["d1"]);
    let req = with(
        request(&dev(1)),
        json!({"Call": {"Inception": "+15551112222@x", "Caller-ID-Number": null}}),
    );
    let leg = leg0(&w, &req);
    assert_eq!(s(&leg, "Privacy-Method"), Some("sip"));
    assert_eq!(s(&leg, "Outbound-Caller-ID-Number"), Some("0000000000"));

    let account_cfg = json!({"_id": "configs_privacy", "pvt_type": "account_config",
                             "default_privacy_number": "1111111111"});
    let w = World::new(vec![device(1, json!({})), cfg, account_cfg]).registered(&["d1"]);
    let leg = leg0(&w, &req);
    assert_eq!(s(&leg, "Outbound-Caller-ID-Number"), Some("1111111111"));
}
