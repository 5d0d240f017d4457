//! Complete legs, field by field, against `kazoo-endpoint-rules.md` section 6, and the
//! caller-ID, media and realm rules of sections 9 to 11.

mod common;
use common::*;
use serde_json::{Value, json};

fn leg_json(leg: &kz_endpoint::kz_json::Object) -> Value {
    Value::Object(leg.clone())
}

/// The base CCVs of a device in the test account.
fn device_ccvs(n: u32) -> Value {
    json!({
        "Authorizing-ID": dev(n), "Authorizing-Type": "device", "Account-ID": account_id(),
        "Media-Encryption-Enforce-Security": true, "SIP-Invite-Domain": REALM
    })
}

#[test]
fn complete_sip_leg() {
    let d1 = device(
        1,
        json!({
            "owner_id": usr(1),
            "media": {"audio": {"codecs": ["PCMU", "PCMA"]}, "video": {"codecs": ["H264"]},
                      "progress_timeout": 8, "encryption": {"methods": ["srtp"]}},
            "music_on_hold": {"media_id": "moh0000000000000000000000000001"},
            "ringtones": {"internal": "<http://r/int>"},
            "outbound_flags": ["device_flag"],
            "sip": {"custom_sip_headers": {"X-Legacy": "1", "in": {"X-In": "2"}, "out": {"X-Out": "3"}}}
        }),
    );
    let u1 = user(
        1,
        json!({"first_name": "Ann", "last_name": "Lee", "presence_id": "2001"}),
    );
    let w = World::new(vec![d1, u1]).registered(&["d1"]);
    let req = with(
        request(&dev(1)),
        json!({"Properties": {"timeout": 30, "delay": 5}}),
    );
    let legs = w.legs(&req);
    assert_eq!(legs.len(), 1);
    let mut ccvs = device_ccvs(1);
    ccvs["Owner-ID"] = json!(usr(1));
    ccvs["RTP-Secure-Media"] = json!("true");
    assert_eq!(
        leg_json(&legs[0]),
        json!({
            "Invite-Format": "username",
            "To-User": "d1", "To-Username": "d1", "To-Realm": REALM, "To-DID": "1001",
            "Outbound-Caller-ID-Number": "1000", "Outbound-Caller-ID-Name": "Carol",
            "Outbound-Callee-ID-Number": "1001", "Outbound-Callee-ID-Name": "Ann Lee",
            "Privacy-Method": "kazoo",
            "Endpoint-Progress-Timeout": "8", "Endpoint-Timeout": "30", "Endpoint-Delay": "5",
            "Endpoint-ID": dev(1),
            "Codecs": ["PCMU", "PCMA", "H264"],
            "Hold-Media": format!("/{}/moh0000000000000000000000000001", account_id()),
            "Presence-ID": format!("2001@{REALM}"),
            "Custom-SIP-Headers": {
                "X-KAZOO-INVITE-FORMAT": "contact", "X-KAZOO-AOR": format!("sip:d1@{REALM}"),
                "Alert-Info": "<http://r/int>", "X-Legacy": "1", "X-In": "2"
            },
            "Custom-Channel-Vars": ccvs,
            "Flags": {"static": ["device_flag"], "dynamic": []},
            "Ignore-Completed-Elsewhere": true,
            "Metaflows": {},
            "Endpoint-Actions": {}
        })
    );
}

#[test]
fn complete_forward_leg_with_keypress_and_kept_caller_id() {
    let d1 = device(
        1,
        json!({"call_forward": cf("+15551234567", json!({
            "substitute": true, "require_keypress": true, "keep_caller_id": true
        }))}),
    );
    let w = World::new(vec![d1]);
    let req = with(
        request(&dev(1)),
        json!({"Properties": {"timeout": 20}, "Call": {"Other-Leg-Call-ID": "other-1", "Language": "fr-ca"}}),
    );
    let legs = w.legs(&req);
    let mut ccvs = device_ccvs(1);
    for (k, v) in [
        ("Retain-CID", json!("true")),
        ("Call-Forward", json!("true")),
        ("Call-Forward-From", json!("onnet")),
        ("Call-Forward-For-UUID", json!("other-1")),
        ("Require-Ignore-Early-Media", json!("true")),
        ("Ignore-Early-Media", json!("true")),
        (
            "Loopback-Request-URI",
            json!(format!("sip:+15551234567@{REALM}")),
        ),
        ("Simplify-Loopback", json!("false")),
        ("Loopback-Bowout", json!("true")),
        ("Confirm-Key", json!("1")),
        ("Confirm-Cancel-Timeout", json!(true)),
        ("Confirm-Read-Timeout", json!("7000")),
        (
            "Confirm-File",
            json!(format!("prompt://{}/ivr-group_confirm/fr-ca", account_id())),
        ),
        (
            "Require-Fail-On-Single-Reject",
            json!("USER_BUSY,CALL_REJECTED,NO_ANSWER,NORMAL_CLEARING,PROGRESS_TIMEOUT"),
        ),
    ] {
        ccvs[k] = v;
    }
    assert_eq!(
        legs.iter().map(leg_json).collect::<Vec<_>>(),
        vec![json!({
            "Invite-Format": "loopback",
            "To-DID": "1001",
            "Route": "+15551234567",
            "Ignore-Early-Media": true,
            "Bypass-Media": "false",
            "Endpoint-Timeout": "20",
            "Presence-ID": format!("d1@{REALM}"),
            "Outbound-Caller-ID-Number": "+14155550000", "Outbound-Caller-ID-Name": "Acme",
            "Outbound-Callee-ID-Number": "1001", "Outbound-Callee-ID-Name": "Desk 1",
            "Privacy-Method": "kazoo",
            "Custom-SIP-Headers": {"X-KAZOO-INVITE-FORMAT": "contact", "X-KAZOO-AOR": format!("sip:d1@{REALM}")},
            "Custom-Channel-Vars": ccvs
        })]
    );
}

#[test]
fn complete_failover_leg_from_call_failover() {
    let d1 = device(
        1,
        json!({"call_failover": {"enabled": true, "number": "+15556667777", "keep_caller_id": false}}),
    );
    let w = World::new(vec![d1]);
    let req = with(request(&dev(1)), json!({"Properties": {"timeout": 25}}));
    let legs = w.legs(&req);
    let mut ccvs = device_ccvs(1);
    for (k, v) in [
        ("Call-Forward", json!("true")),
        ("Is-Failover", json!(true)),
        ("Call-Forward-From", json!("onnet")),
        ("Require-Ignore-Early-Media", json!("true")),
        ("Ignore-Early-Media", json!("true")),
        (
            "Loopback-Request-URI",
            json!(format!("sip:+15556667777@{REALM}")),
        ),
        ("Simplify-Loopback", json!("false")),
        ("Loopback-Bowout", json!("true")),
    ] {
        ccvs[k] = v;
    }
    assert_eq!(
        legs.iter().map(leg_json).collect::<Vec<_>>(),
        vec![json!({
            "Invite-Format": "loopback",
            "To-DID": "1001",
            "Route": "+15556667777",
            "Ignore-Early-Media": true,
            "Bypass-Media": "false",
            "Endpoint-Timeout": "25",
            "Presence-ID": format!("d1@{REALM}"),
            "Outbound-Caller-ID-Number": "+14155550000", "Outbound-Caller-ID-Name": "Acme",
            "Outbound-Callee-ID-Number": "1001", "Outbound-Callee-ID-Name": "Desk 1",
            "Privacy-Method": "kazoo",
            "Custom-SIP-Headers": {"X-KAZOO-INVITE-FORMAT": "contact", "X-KAZOO-AOR": format!("sip:d1@{REALM}")},
            "Custom-Channel-Vars": ccvs
        })]
    );
}

#[test]
fn nested_failover_has_no_timers_and_is_marked() {
    let d1 = device(
        1,
        json!({"call_forward": cf("2000", json!({"enabled": false, "failover": true}))}),
    );
    let w = World::new(vec![d1]).unknown();
    let req = with(request(&dev(1)), json!({"Properties": {"timeout": 30}}));
    let legs = w.legs(&req);
    assert_eq!(summary(&legs), ["SIP:d1+F:2000"]);
    let f = &legs[0]["Failover"];
    assert_eq!(f["Invite-Format"], "loopback");
    assert_eq!(f["Route"], "2000");
    assert_eq!(f["Custom-Channel-Vars"]["Is-Failover"], true);
    assert_eq!(f["Custom-Channel-Vars"]["Call-Forward"], "true");
    assert_eq!(
        f["Custom-Channel-Vars"]["Loopback-Request-URI"],
        format!("sip:2000@{REALM}")
    );
    assert!(f.get("Endpoint-Timeout").is_none() && f.get("Endpoint-Delay").is_none());
    assert_eq!(legs[0]["Endpoint-Timeout"], "30");
}

#[test]
fn timers_are_strings_and_zero_is_absent() {
    let w = World::new(vec![device(1, json!({}))]).registered(&["d1"]);
    let legs = w.legs(&with(
        request(&dev(1)),
        json!({"Properties": {"delay": 0, "timeout": 0}}),
    ));
    assert!(legs[0].get("Endpoint-Timeout").is_none());
    assert!(legs[0].get("Endpoint-Delay").is_none());
}

#[test]
fn external_call_passes_caller_id_through_and_moves_privacy() {
    let d1 = device(
        1,
        json!({"call_forward": cf("+15551234567", json!({"keep_caller_id": true}))}),
    );
    let w = World::new(vec![d1]).registered(&["d1"]);
    let req = with(
        request(&dev(1)),
        json!({"Call": {
            "Inception": "+14085550123@carrier", "Caller-ID-Number": "+14085550123",
            "Caller-ID-Name": "Bob", "Authorizing-ID": null,
            "Custom-Channel-Vars": {"Caller-Privacy-Hide-Number": true}
        }}),
    );
    let legs = w.legs(&req);
    assert_eq!(summary(&legs), ["SIP:d1", "FWD:+15551234567"]);
    let (sip, fwd) = (&legs[0], &legs[1]);
    assert_eq!(sip["Outbound-Caller-ID-Number"], "+14085550123");
    assert_eq!(sip["Outbound-Caller-ID-Name"], "Bob");
    assert_eq!(sip["Outbound-Callee-ID-Number"], "+14155550000");
    assert_eq!(sip["Outbound-Callee-ID-Name"], "Acme");
    assert_eq!(sip["Privacy-Hide-Number"], true);
    assert!(sip.get("Privacy-Hide-Name").is_none());
    for k in [
        "Outbound-Caller-ID-Number",
        "Outbound-Caller-ID-Name",
        "Outbound-Callee-ID-Number",
        "Outbound-Callee-ID-Name",
    ] {
        assert!(fwd.get(k).is_none(), "{k} on an external forward leg");
    }
    assert_eq!(fwd["Privacy-Hide-Number"], true);
    assert_eq!(fwd["Custom-Channel-Vars"]["Retain-CID"], "true");
    assert_eq!(fwd["Custom-Channel-Vars"]["Call-Forward-From"], "offnet");
}

#[test]
fn suppress_clid_and_static_invite() {
    let w = World::new(vec![device(1, json!({}))]).registered(&["d1"]);
    let req = with(
        request(&dev(1)),
        json!({"Properties": {"suppress_clid": true, "static_invite": "front-desk"}}),
    );
    let leg = &w.legs(&req)[0];
    assert!(leg.keys().all(|k| !k.starts_with("Outbound-Call")));
    assert_eq!(leg["Privacy-Method"], "kazoo");
    assert_eq!(leg["To-User"], "front-desk");
    assert_eq!(leg["To-Username"], "d1");
    let w = World::new(vec![device(1, json!({"sip": {"static_invite": "x"}}))]).registered(&["d1"]);
    assert_eq!(w.legs(&request(&dev(1)))[0]["To-User"], "x");
}

#[test]
fn invite_formats() {
    let d1 = device(
        1,
        json!({"sip": {"invite_format": "npan", "number": "+14155550100"}}),
    );
    let leg = &World::new(vec![d1])
        .registered(&["d1"])
        .legs(&request(&dev(1)))[0];
    assert_eq!(leg["Invite-Format"], "npan");
    assert_eq!(leg["To-DID"], "+14155550100");
    assert_eq!(leg["Custom-SIP-Headers"]["X-KAZOO-INVITE-FORMAT"], "npan");

    // A sip_uri device: no username, dialled by route, needs no registration.
    let d2 = json!({
        "_id": dev(2), "pvt_type": "device", "pvt_account_id": account_id(), "name": "PBX",
        "device_type": "sip_uri",
        "sip": {"invite_format": "route", "route": "sip:1234@pbx.example.com"}
    });
    let leg = &World::new(vec![d2]).legs(&request(&dev(2)))[0];
    assert_eq!(leg["Invite-Format"], "route");
    assert_eq!(leg["Route"], "sip:1234@pbx.example.com");
    assert!(leg.get("To-User").is_none());
    assert!(leg["Custom-SIP-Headers"].get("X-KAZOO-AOR").is_none());

    // A master-only format would be dropped by a 4.3 ecallmgr: it falls back to username.
    let d3 = device(3, json!({"sip": {"invite_format": "strip_plus"}}));
    let leg = &World::new(vec![d3])
        .registered(&["d3"])
        .legs(&request(&dev(3)))[0];
    assert_eq!(leg["Invite-Format"], "username");
    assert_eq!(
        leg["Custom-SIP-Headers"]["X-KAZOO-INVITE-FORMAT"],
        "strip_plus"
    );
}

#[test]
fn media_fields() {
    let d1 = device(
        1,
        json!({"media": {
            "bypass_media": true, "ignore_early_media": true, "webrtc": true, "rtcp_mux": false,
            "encryption": {"methods": ["zrtp"], "enforce_security": false}, "fax_option": "auto"
        }}),
    );
    let leg = &World::new(vec![d1])
        .registered(&["d1"])
        .legs(&request(&dev(1)))[0];
    assert_eq!(leg["Bypass-Media"], "true");
    assert_eq!(leg["Ignore-Early-Media"], "true");
    let c = &leg["Custom-Channel-Vars"];
    assert_eq!(c["Media-Webrtc"], true);
    assert_eq!(c["RTCP-MUX"], false);
    assert_eq!(c["ZRTP-Secure-Media"], "true");
    assert_eq!(c["ZRTP-Enrollment"], "true");
    assert_eq!(c["Media-Encryption-Enforce-Security"], false);
    assert_eq!(c["Fax-Enabled"], "true");
    assert!(c.get("RTP-Secure-Media").is_none());

    let d2 = device(2, json!({"media": {"bypass_media": "auto"}}));
    let leg = &World::new(vec![d2])
        .registered(&["d2"])
        .legs(&request(&dev(2)))[0];
    assert!(leg.get("Bypass-Media").is_none());
}

#[test]
fn ringtones_follow_inception_and_override() {
    let d1 = device(1, json!({"ringtones": {"internal": "<http://r/int>"}}));
    let w = World::new(vec![d1]).registered(&["d1"]);
    let external = with(
        request(&dev(1)),
        json!({"Call": {"Inception": "+1@carrier"}}),
    );
    assert!(
        w.legs(&external)[0]["Custom-SIP-Headers"]
            .get("Alert-Info")
            .is_none()
    );
    let overridden = with(
        request(&dev(1)),
        json!({"Call": {"Key-Value-Store": {"Override-Ringtone": "ring-grp"}}}),
    );
    assert_eq!(
        w.legs(&overridden)[0]["Custom-SIP-Headers"]["Alert-Info"],
        "ring-grp"
    );
}

#[test]
fn call_waiting_device_wins_over_owner() {
    let u1 = user(1, json!({"call_waiting": {"enabled": false}}));
    let d1 = device(1, json!({"owner_id": usr(1)}));
    let w = World::new(vec![u1.clone(), d1]).registered(&["d1"]);
    assert_eq!(
        w.legs(&request(&dev(1)))[0]["Custom-Channel-Vars"]["Call-Waiting-Disabled"],
        true
    );
    let d1 = device(
        1,
        json!({"owner_id": usr(1), "call_waiting": {"enabled": true}}),
    );
    let w = World::new(vec![u1, d1]).registered(&["d1"]);
    assert!(
        w.legs(&request(&dev(1)))[0]["Custom-Channel-Vars"]
            .get("Call-Waiting-Disabled")
            .is_none()
    );
}

#[test]
fn callee_caller_id_precedence() {
    let d1 = device(
        1,
        json!({"owner_id": usr(1), "caller_id": {"internal": {"number": "201", "name": "Desk"}}}),
    );
    let u1 = user(1, json!({"first_name": "Ann", "last_name": "Lee"}));
    let w = World::new(vec![d1.clone(), u1.clone()]).registered(&["d1"]);
    let leg = &w.legs(&request(&dev(1)))[0];
    assert_eq!(leg["Outbound-Callee-ID-Name"], "Ann Lee");
    assert_eq!(leg["Outbound-Callee-ID-Number"], "201");

    let mut w = World::new(vec![d1, u1]).registered(&["d1"]);
    w.docs[0]["prefer_device_caller_id"] = json!(true);
    assert_eq!(
        w.legs(&request(&dev(1)))[0]["Outbound-Callee-ID-Name"],
        "Desk"
    );
}

#[test]
fn dynamic_and_rewritten_caller_id() {
    let w = World::new(vec![device(1, json!({}))]).registered(&["d1"]);
    let req = with(
        request(&dev(1)),
        json!({"Call": {"Key-Value-Store": {
            "dynamic_cid": {"number": "+15550001111", "name": "Dyn"}, "prepend_cid_name": "VIP "
        }}}),
    );
    let leg = &w.legs(&req)[0];
    assert_eq!(leg["Outbound-Caller-ID-Number"], "+15550001111");
    assert_eq!(leg["Outbound-Caller-ID-Name"], "VIP Dyn");
}

#[test]
fn unknown_caller_device_uses_the_call() {
    let w = World::new(vec![device(1, json!({}))]).registered(&["d1"]);
    let req = with(
        request(&dev(1)),
        json!({"Call": {"Authorizing-ID": id("ghost", 1), "Caller-ID-Number": "777", "Caller-ID-Name": "Ghost"}}),
    );
    let leg = &w.legs(&req)[0];
    assert_eq!(leg["Outbound-Caller-ID-Number"], "777");
    assert_eq!(leg["Outbound-Caller-ID-Name"], "Ghost");
}

#[test]
fn hotdesk_user_becomes_the_owner() {
    let d1 = device(
        1,
        json!({"owner_id": usr(0), "hotdesk": {"users": {usr(2): {}}}}),
    );
    let u0 = user(0, json!({"first_name": "Owner"}));
    let u2 = user(2, json!({"first_name": "Hot", "last_name": null}));
    let w = World::new(vec![d1, u0, u2]).registered(&["d1"]);
    let leg = &w.legs(&request(&dev(1)))[0];
    assert_eq!(leg["Custom-Channel-Vars"]["Owner-ID"], usr(2));
    assert_eq!(leg["Outbound-Callee-ID-Name"], "Hot");
}

#[test]
fn fax_device_t38() {
    let d1 = device(
        1,
        json!({"device_type": "fax", "media": {"fax_option": true}}),
    );
    let leg = &World::new(vec![d1])
        .registered(&["d1"])
        .legs(&request(&dev(1)))[0];
    assert_eq!(leg["Enable-T38-Fax"], true);
    assert_eq!(leg["Enable-T38-Fax-Request"], true);
    assert_eq!(leg["Enable-T38-Gateway"], "self");
    assert!(leg.get("Enable-T38-Passthrough").is_none());
}

#[test]
fn device_types_are_sip_devices() {
    for t in ["softphone", "smartphone", "cellphone", "landline", "fax"] {
        let d1 = device(1, json!({"device_type": t}));
        let w = World::new(vec![d1]).registered(&["d1"]);
        assert_eq!(w.summary(&request(&dev(1))), ["SIP:d1"], "{t}");
    }
    let d1 = device(
        1,
        json!({"device_type": "cellphone", "sip": null,
               "call_forward": cf("+15557654321", json!({"substitute": true}))}),
    );
    assert_eq!(
        World::new(vec![d1]).summary(&request(&dev(1))),
        ["FWD:+15557654321"]
    );
}

#[test]
fn realm_of_the_device_wins() {
    let d1 = device(1, json!({"sip": {"realm": "other.example.com"}}));
    let w = World::new(vec![d1]);
    let mut w = w;
    w.registered.push(kz_endpoint::registrar::RegKey::new(
        "d1",
        "other.example.com",
    ));
    let leg = &w.legs(&request(&dev(1)))[0];
    assert_eq!(leg["To-Realm"], "other.example.com");
    assert_eq!(
        leg["Custom-SIP-Headers"]["X-KAZOO-AOR"],
        "sip:d1@other.example.com"
    );
    assert_eq!(
        leg["Custom-Channel-Vars"]["SIP-Invite-Domain"],
        "other.example.com"
    );
}

/// A header whose list or object holds a `null` keeps its other values: ecallmgr's validation
/// would refuse the whole leg for the `null` (found by the property test).
#[test]
fn nulls_inside_custom_headers_are_left_out() {
    let d1 = device(
        1,
        json!({"sip": {"custom_sip_headers": {
            "X-List": ["a", null], "X-Null": null,
            "in": {"X-Obj": {"k": null, "j": "1"}, "X-Deep": [["b", null]]}
        }}}),
    );
    let w = World::new(vec![d1]).registered(&["d1"]);
    let legs = w.legs(&request(&dev(1)));
    assert_eq!(
        legs[0]["Custom-SIP-Headers"],
        json!({
            "X-KAZOO-INVITE-FORMAT": "contact", "X-KAZOO-AOR": format!("sip:d1@{REALM}"),
            "X-List": ["a"], "X-Obj": {"j": "1"}, "X-Deep": [["b"]]
        })
    );
}
