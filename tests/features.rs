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

fn record_endpoint(leg: &serde_json::Map<String, Value>) -> Option<&Value> {
    leg.get("Endpoint-Actions")?
        .get("Execute-On-Answer")?
        .get("Record-Endpoint")
}

/// `call_recording.endpoint.inbound.<network>` on the device (account < owner < device):
/// Kazoo's `record_call` command, every key with Kazoo's type, ids derived from the request.
#[test]
fn device_call_recording_becomes_a_record_endpoint_action() {
    let rec = json!({"inbound": {"onnet": {"enabled": true, "format": "wav",
        "time_limit": 600, "record_min_sec": 2, "record_sample_rate": 8000,
        "url": "https://rec.example.com/store"}}});
    let w = World::new(vec![device(1, json!({"call_recording": rec}))]).registered(&["d1"]);
    let req = with(request(&dev(1)), json!({"Timestamp": 1_767_225_600}));
    let leg = leg0(&w, &req);
    let cmd = record_endpoint(&leg).expect("a Record-Endpoint action");
    assert_eq!(cmd["Application-Name"], "record_call");
    assert_eq!(cmd["Record-Action"], "start");
    assert_eq!(cmd["Time-Limit"], json!(600));
    assert_eq!(cmd["Record-Min-Sec"], json!("2"));
    assert_eq!(cmd["Record-Sample-Rate"], json!(8000));
    assert_eq!(cmd["Follow-Transfer"], json!(false));
    assert_eq!(cmd["Media-Recorder"], "kz_media_recording");
    assert_eq!(cmd["Call-ID"], "call-1");
    let id = cmd["Media-Recording-ID"].as_str().unwrap();
    assert!(id.starts_with("202601-") && id.len() == 39, "{id}");
    assert!(cmd["Media-Name"].as_str().unwrap().ends_with(".wav"));
    assert_eq!(cmd["Recording-Variables"]["ID"], cmd["Media-Recording-ID"]);
    assert!(
        cmd["Recording-Variables"]["Data"]
            .as_str()
            .unwrap()
            .starts_with("g2gB")
    );
    // The same request gives the same reply.
    assert_eq!(record_endpoint(&leg0(&w, &req)), Some(cmd));
    // An offnet call does not record: only inbound.onnet is enabled.
    let ext = with(
        req.clone(),
        json!({"Call": {"Inception": "+15551112222@x"}}),
    );
    assert_eq!(leg0(&w, &ext)["Endpoint-Actions"], json!({}));
}

/// Without a storage `url` the command has no `Media-Recorder`; the time limit is capped by
/// `media.max_recording_time_limit`; the legacy `record_call` records every direction.
#[test]
fn legacy_record_call_and_limits() {
    let w = World::new(vec![
        device(1, json!({"record_call": true})),
        system("media", json!({"max_recording_time_limit": 300})),
    ])
    .registered(&["d1"]);
    let leg = leg0(&w, &request(&dev(1)));
    let cmd = record_endpoint(&leg).expect("a Record-Endpoint action");
    assert!(cmd.get("Media-Recorder").is_none());
    assert!(cmd["Recording-Variables"].get("Recorder").is_none());
    assert_eq!(cmd["Time-Limit"], json!(300));
    assert_eq!(cmd["Record-Min-Sec"], json!("0"));
    assert!(cmd["Media-Name"].as_str().unwrap().ends_with(".mp3"));
}

/// The owner's settings apply to the device; a forward leg gets none.
#[test]
fn owner_recording_applies_and_forward_legs_get_none() {
    let owner = user(
        1,
        json!({"call_recording": {"any": {"any": {"enabled": true}}}}),
    );
    let d = device(
        1,
        json!({"owner_id": usr(1), "call_forward": cf("+15550001111", json!({}))}),
    );
    let w = World::new(vec![owner, d]).registered(&["d1"]);
    let legs = w.legs(&request(&dev(1)));
    assert_eq!(legs.len(), 2);
    assert!(record_endpoint(&legs[0]).is_some());
    assert!(!legs[1].contains_key("Endpoint-Actions"));
}

/// A device with a `push` object is reached through its `Token-Proxy`, needs no
/// registration, and carries the pusher headers (`Endpoint-ID`/`Account-ID` only with a
/// `Token-Type`).
#[test]
fn push_device_gets_the_push_leg() {
    let push = json!({"Token-App": "com.example.app", "Token-ID": "tok",
                      "Token-Proxy": "sip:10.0.0.9:5070", "Token-Type": "apns"});
    let w = World::new(vec![device(1, json!({"push": push}))]);
    let leg = leg0(&w, &request(&dev(1)));
    assert_eq!(s(&leg, "Invite-Format"), Some("route"));
    assert_eq!(s(&leg, "To-User"), Some(&*format!("d1@{REALM}")));
    assert_eq!(
        s(&leg, "Route"),
        Some(&*format!("sip:d1@{REALM};fs_path='sip:10.0.0.9:5070'"))
    );
    assert_eq!(leg["Endpoint-Delay"], json!(5));
    let h = &leg["Custom-SIP-Headers"];
    assert_eq!(h["X-KAZOO-PUSHER-Token-ID"], "tok");
    assert_eq!(h["X-KAZOO-PUSHER-Endpoint-ID"], json!(dev(1)));
    assert_eq!(h["X-KAZOO-PUSHER-Account-ID"], json!(account_id()));
    assert!(
        !leg.contains_key("Endpoint-Actions"),
        "an empty action set is left out"
    );

    let no_type = json!({"Token-ID": "tok", "Token-Proxy": "sip:10.0.0.9:5070"});
    let w = World::new(vec![device(1, json!({"push": no_type}))]);
    let h = leg0(&w, &request(&dev(1)))["Custom-SIP-Headers"].clone();
    assert!(h.get("X-KAZOO-PUSHER-Endpoint-ID").is_none());

    let no_proxy = json!({"Token-ID": "tok"});
    let w = World::new(vec![device(1, json!({"push": no_proxy}))]);
    assert_eq!(w.error(&request(&dev(1))), "no_endpoints");
}

/// An offnet call (no authorizing device) to a device that forwards keeping the caller ID:
/// with `should_add_diversion_header` on, every leg of the device carries Kazoo's `Diversions`.
#[test]
fn diversion_header_on_offnet_calls_to_a_device_that_keeps_the_caller_id() {
    let d1 = device(
        1,
        json!({"call_forward": cf("+15557654321", json!({"substitute": false, "keep_caller_id": true}))}),
    );
    let on = system(
        "kazoo_endpoint",
        json!({"should_add_diversion_header": true}),
    );
    let offnet = with(
        request(&dev(1)),
        json!({"Call": {"Authorizing-ID": null, "Inception": "+14155550199@carrier"}}),
    );
    let w = World::new(vec![d1.clone(), on.clone()]).registered(&["d1"]);
    let legs = w.legs(&offnet);
    assert_eq!(summary(&legs), ["SIP:d1", "FWD:+15557654321"]);
    let want = json!([format!("<sip:1001@{REALM}>;reason=unconditional")]);
    for leg in &legs {
        assert_eq!(leg["Custom-SIP-Headers"]["Diversions"], want, "{leg:?}");
    }
    // Off by default; never on a call a device placed; never without keep_caller_id.
    let off = World::new(vec![d1.clone()]).registered(&["d1"]);
    let internal = World::new(vec![d1, on.clone()]).registered(&["d1"]);
    let plain = World::new(vec![device(1, json!({})), on]).registered(&["d1"]);
    for (w, req) in [
        (&off, &offnet),
        (&internal, &request(&dev(1))),
        (&plain, &offnet),
    ] {
        for leg in w.legs(req) {
            assert!(
                leg["Custom-SIP-Headers"].get("Diversions").is_none(),
                "{leg:?}"
            );
        }
    }
}

/// A device whose type is not one Kazoo knows gets a SIP leg (guessed from its `sip`) unless
/// `restrict_to_known_types` is on; its forward leg stays either way.
#[test]
fn restrict_to_known_types() {
    let d1 = device(
        1,
        json!({"device_type": "teammate",
               "call_forward": cf("+15557654321", json!({"substitute": false}))}),
    );
    let w = World::new(vec![d1.clone()]).registered(&["d1"]);
    assert_eq!(w.summary(&request(&dev(1))), ["SIP:d1", "FWD:+15557654321"]);
    let on = system("kazoo_endpoint", json!({"restrict_to_known_types": true}));
    let w = World::new(vec![d1, on.clone()]).registered(&["d1"]);
    assert_eq!(w.summary(&request(&dev(1))), ["FWD:+15557654321"]);
    // Known types are built as ever.
    for t in [
        "sip_device",
        "softphone",
        "fax",
        "landline",
        "cellphone",
        "smartphone",
        "sip_uri",
    ] {
        let w =
            World::new(vec![device(1, json!({"device_type": t})), on.clone()]).registered(&["d1"]);
        assert_eq!(w.summary(&request(&dev(1))), ["SIP:d1"], "{t}");
    }
    let w = World::new(vec![device(1, json!({"device_type": "teammate"})), on]).registered(&["d1"]);
    assert_eq!(w.error(&request(&dev(1))), "no_endpoints");
}

/// Mobile and skype devices are not built (product rule 8): no device leg, the feature named
/// in the explanation and reported in the resolution for the metric; a forward still rings.
#[test]
fn mobile_and_skype_devices_are_named_not_built() {
    use kz_endpoint::engine::endpoint_type::Unapplied;
    let cases = [
        (
            json!({"device_type": "mobile", "mobile": {"mdn": "4155550100"}}),
            Unapplied::Mobile,
        ),
        (
            json!({"device_type": null, "mobile": {"mdn": "4155550100"}}),
            Unapplied::Mobile,
        ),
        (
            json!({"device_type": "skype", "skype": {"username": "s"}}),
            Unapplied::Skype,
        ),
    ];
    for (extra, feature) in cases {
        let d1 = device(1, extra.clone());
        let w = World::new(vec![d1.clone()]).registered(&["d1"]);
        assert_eq!(w.error(&request(&dev(1))), "no_endpoints", "{extra}");
        let store = kz_endpoint::documents::MemoryStore::new(w.docs.clone());
        let registrar = kz_endpoint::registrar::GivenRegistrations::new([], false);
        let req = with(request(&dev(1)), json!({"Explain": true}));
        let handled = run(&store, &registrar, &req);
        let r = handled.resolution.expect("a resolution");
        assert_eq!(r.unapplied, [feature]);
        let line = r
            .explain
            .iter()
            .find(|l| l.contains("not applied"))
            .expect("named");
        assert!(
            line.contains(&format!("a {} device", feature.as_str())),
            "{line}"
        );

        let fwd = with(
            d1,
            json!({"call_forward": cf("+15557654321", json!({"substitute": false}))}),
        );
        let w = World::new(vec![fwd]).registered(&["d1"]);
        assert_eq!(w.summary(&request(&dev(1))), ["FWD:+15557654321"]);
    }
}

/// Outbound formatters on a device's SIP leg (`kz_formatters`): regex with prefix and suffix,
/// value (whatever the regex says: Kazoo tries `value` before `regex`), strip, the first formatter that applies of a list, keys matched by Kazoo's
/// normalised name, `inbound`/`both` left out, the owner winning per key, and the same
/// formatters inside `Custom-SIP-Headers`.
#[test]
fn outbound_formatters_rewrite_sip_legs() {
    let formatters = json!({
        "outbound_caller_id_number": [
            {"regex": "^\\+1(\\d{10})$", "direction": "inbound", "prefix": "IN"},
            {"regex": "^nomatch$", "prefix": "never"},
            {"regex": "^(\\d{4})$", "prefix": "+1415555", "suffix": ""}
        ],
        "Outbound_Caller_ID_Name": {"value": "Formatted"},
        "outbound-callee-id-name": {"value": "not a normalised key"},
        "presence_id": [{"strip": true, "direction": "both"}],
        "x_account": {"regex": "^(a)(c)", "prefix": "<", "suffix": ">"},
        "to_did": {"strip": true}
    });
    let d1 = device(
        1,
        json!({"formatters": formatters,
               "sip": {"custom_sip_headers": {"X-Account": "acme"}},
               "call_forward": cf("+15557654321", json!({"substitute": false}))}),
    );
    let w = World::new(vec![d1]).registered(&["d1"]);
    let legs = w.legs(&request(&dev(1)));
    let sip = &legs[0];
    assert_eq!(sip["Outbound-Caller-ID-Number"], "+14155551000");
    assert_eq!(sip["Outbound-Caller-ID-Name"], "Formatted");
    assert_eq!(sip["Outbound-Callee-ID-Name"], "Desk 1");
    assert_eq!(sip["Presence-ID"], format!("d1@{REALM}"));
    assert!(!sip.contains_key("To-DID"));
    assert_eq!(sip["Custom-SIP-Headers"]["X-Account"], "<a>");
    assert!(sip["Custom-SIP-Headers"].get("Invite-Format").is_none());
    // The forward leg is not a SIP leg: no formatters.
    assert_ne!(legs[1]["Outbound-Caller-ID-Name"], "Formatted");
    assert!(legs[1].contains_key("To-DID"));

    // The owner's formatter wins over the device's for the same key.
    let d2 = device(
        2,
        json!({"owner_id": usr(1),
               "formatters": {"outbound_caller_id_name": {"value": "device"}}}),
    );
    let u1 = user(
        1,
        json!({"formatters": {"outbound_caller_id_name": {"value": "owner"}}}),
    );
    let w = World::new(vec![d2, u1]).registered(&["d2"]);
    assert_eq!(
        leg0(&w, &request(&dev(2)))["Outbound-Caller-ID-Name"],
        "owner"
    );
}

/// `match_invite_format` rewrites a number the way an `e164`/`npan`/`1npan` leg is dialled.
#[test]
fn formatter_matching_the_invite_format() {
    for (format, want) in [
        ("e164", "+14155551001"),
        ("npan", "4155551001"),
        ("1npan", "14155551001"),
        ("username", "4155551001"),
    ] {
        let d1 = device(
            1,
            json!({"sip": {"invite_format": format},
                   "formatters": {"to_did": {"match_invite_format": true}}}),
        );
        let w = World::new(vec![d1]).registered(&["d1"]);
        let req = with(
            request(&dev(1)),
            json!({"Call": {"Request-User": "4155551001"}}),
        );
        let leg = leg0(&w, &req);
        assert_eq!(leg["To-DID"], want, "{format}");
    }
}

/// A build compiles at most `MAX_REGEXES` distinct formatter patterns: past them a `regex`
/// formatter does not apply, so a document listing thousands of patterns cannot make a build
/// slow. Within the bound, the first formatter that matches wins as before.
#[test]
fn formatter_regexes_are_bounded_per_build() {
    use kz_endpoint::engine::formatters::MAX_REGEXES;
    let with_misses = |misses: usize| {
        let mut list: Vec<Value> = (0..misses)
            .map(|i| json!({"regex": format!("^never{i}$")}))
            .collect();
        list.push(json!({"regex": "^(\\d+)$", "prefix": "+"}));
        let d1 = device(1, json!({"formatters": {"to_did": list}}));
        let w = World::new(vec![d1]).registered(&["d1"]);
        let req = with(
            request(&dev(1)),
            json!({"Call": {"Request-User": "4155551001"}}),
        );
        leg0(&w, &req)["To-DID"].clone()
    };
    assert_eq!(with_misses(MAX_REGEXES - 1), "+4155551001");
    assert_eq!(with_misses(MAX_REGEXES), "4155551001");
    assert_eq!(with_misses(5_000), "4155551001");
}
