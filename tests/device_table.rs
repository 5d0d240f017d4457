//! The device table (`product-rules.md` section 3), the failover sources, and the gating
//! checks and error codes (`product-rules.md` section 6, `kazoo-endpoint-rules.md` section 4).

mod common;
use common::*;

use kz_endpoint::build_api::Identity;
use kz_endpoint::documents::{Docs, DocumentStore, Owned, StoreError};
use kz_endpoint::handler::handle;
use kz_endpoint::kz_json::Object;
use kz_endpoint::registrar::GivenRegistrations;
use serde_json::{Value, json};

const FWD: &str = "+15551234567";
const FAILOVER: &str = "2000";
const OTHER_FAILOVER: &str = "3000";

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn ccv(leg: &Object) -> &Object {
    leg["Custom-Channel-Vars"]
        .as_object()
        .expect("Custom-Channel-Vars is an object")
}

/// A plain SIP leg to `username` in the account realm, for device `n`, with no nested failover.
fn assert_sip(leg: &Object, n: u32, username: &str) {
    assert_eq!(leg["Invite-Format"], "username", "{leg:?}");
    assert_eq!(leg["To-Username"], username);
    assert_eq!(leg["To-User"], username);
    assert_eq!(leg["To-Realm"], REALM);
    assert_eq!(leg["Endpoint-ID"], json!(dev(n)));
    assert!(
        leg.get("Route").is_none(),
        "a SIP leg has no Route: {leg:?}"
    );
    assert_eq!(ccv(leg)["Authorizing-ID"], json!(dev(n)));
    assert!(ccv(leg).get("Call-Forward").is_none());
    assert!(ccv(leg).get("Is-Failover").is_none());
}

fn assert_no_nested(leg: &Object) {
    assert!(
        leg.get("Failover").is_none(),
        "unexpected nested Failover: {leg:?}"
    );
}

/// A loopback leg to `route` (forward or failover).
fn assert_loopback(leg: &Object, route: &str) {
    assert_eq!(leg["Invite-Format"], "loopback", "{leg:?}");
    assert_eq!(leg["Route"], route);
    assert_eq!(leg["Bypass-Media"], "false");
    assert_eq!(leg["To-DID"], "1001");
    assert!(leg.get("To-Username").is_none());
    assert!(leg.get("Failover").is_none());
    assert!(leg.get("Codecs").is_none());
    let c = ccv(leg);
    assert_eq!(c["Call-Forward"], "true");
    assert_eq!(
        c["Loopback-Request-URI"],
        json!(format!("sip:{route}@{REALM}"))
    );
}

/// A call-forward leg: a loopback without `Is-Failover`.
fn assert_fwd(leg: &Object, route: &str) {
    assert_loopback(leg, route);
    assert!(
        ccv(leg).get("Is-Failover").is_none(),
        "a forward leg has no Is-Failover: {leg:?}"
    );
}

/// A FAILOVER leg: a loopback with CCV `Is-Failover: true`.
fn assert_failover_leg(leg: &Object, route: &str) {
    assert_loopback(leg, route);
    assert_eq!(ccv(leg)["Is-Failover"], json!(true), "{leg:?}");
}

/// The nested `Failover` object of a SIP leg: a loopback to `route` with `Is-Failover: true`
/// and no `Endpoint-Timeout` / `Endpoint-Delay`.
fn assert_nested(leg: &Object, route: &str) {
    let f = leg
        .get("Failover")
        .and_then(Value::as_object)
        .unwrap_or_else(|| panic!("no nested Failover object: {leg:?}"));
    assert_failover_leg(f, route);
    assert!(
        f.get("Endpoint-Timeout").is_none(),
        "nested Failover carries Endpoint-Timeout: {f:?}"
    );
    assert!(
        f.get("Endpoint-Delay").is_none(),
        "nested Failover carries Endpoint-Delay: {f:?}"
    );
}

/// A request for device `n` with a timeout and a delay in the Properties.
fn timed_request(n: u32) -> Value {
    with(
        request(&dev(n)),
        json!({"Properties": {"timeout": 30, "delay": 5}}),
    )
}

fn legacy_failover(number: &str) -> Value {
    cf(number, json!({"enabled": false, "failover": true}))
}

fn call_failover(number: &str) -> Value {
    json!({"enabled": true, "number": number})
}

fn registered(docs: Vec<Value>) -> World {
    World::new(docs).registered(&["d1"])
}

// ---------------------------------------------------------------------------------------------
// The device table, row by row
// ---------------------------------------------------------------------------------------------

/// Row 1: any creds, any registration, cf active, S true: `[FWD]` only.
#[test]
fn row1_forward_with_substitute_gives_only_fwd_in_every_state() {
    let dev1 = device(
        1,
        json!({"call_forward": cf(FWD, json!({"substitute": true}))}),
    );
    let worlds = [
        (
            "registered",
            World::new(vec![dev1.clone()]).registered(&["d1"]),
        ),
        ("unregistered", World::new(vec![dev1.clone()])),
        ("unknown", World::new(vec![dev1.clone()]).unknown()),
    ];
    for (state, world) in worlds {
        let legs = world.legs(&request(&dev(1)));
        assert_eq!(summary(&legs), [format!("FWD:{FWD}")], "state {state}");
        assert_fwd(&legs[0], FWD);
    }
    // No credentials at all: the same.
    let no_creds = device(
        1,
        json!({"sip": null, "call_forward": cf(FWD, json!({"substitute": true}))}),
    );
    let legs = World::new(vec![no_creds]).legs(&request(&dev(1)));
    assert_eq!(summary(&legs), [format!("FWD:{FWD}")]);
    assert_fwd(&legs[0], FWD);
}

/// Row 1 also holds when the device has a failover target: the forward replaces everything.
#[test]
fn row1_substitute_ignores_the_failover_target() {
    let dev1 = device(
        1,
        json!({
            "call_forward": cf(FWD, json!({"substitute": true})),
            "call_failover": call_failover(OTHER_FAILOVER)
        }),
    );
    assert_eq!(
        World::new(vec![dev1.clone()]).summary(&request(&dev(1))),
        [format!("FWD:{FWD}")]
    );
    assert_eq!(
        World::new(vec![dev1]).unknown().summary(&request(&dev(1))),
        [format!("FWD:{FWD}")]
    );
}

/// Row 2: creds, registered, cf active, S false: `[SIP, FWD]`.
#[test]
fn row2_registered_forward_without_substitute_gives_sip_then_fwd() {
    let w = registered(vec![device(1, json!({"call_forward": cf(FWD, json!({}))}))]);
    let legs = w.legs(&request(&dev(1)));
    assert_eq!(summary(&legs), ["SIP:d1".to_owned(), format!("FWD:{FWD}")]);
    assert_sip(&legs[0], 1, "d1");
    assert_no_nested(&legs[0]);
    assert_fwd(&legs[1], FWD);
    // A forward that is not a substitute rings alongside the device: early media ignored.
    assert_eq!(legs[1]["Ignore-Early-Media"], json!(true));
}

/// Row 2 with a failover target: a registered device never gets a failover.
#[test]
fn row2_registered_device_ignores_its_failover_target() {
    let w = registered(vec![device(
        1,
        json!({"call_forward": cf(FWD, json!({})), "call_failover": call_failover(OTHER_FAILOVER)}),
    )]);
    let legs = w.legs(&request(&dev(1)));
    assert_eq!(summary(&legs), ["SIP:d1".to_owned(), format!("FWD:{FWD}")]);
    assert_no_nested(&legs[0]);
}

/// Row 3: creds, registered, no cf: `[SIP]`.
#[test]
fn row3_registered_without_forward_gives_sip() {
    let w = registered(vec![device(1, json!({}))]);
    let legs = w.legs(&timed_request(1));
    assert_eq!(summary(&legs), ["SIP:d1"]);
    assert_sip(&legs[0], 1, "d1");
    assert_no_nested(&legs[0]);
    assert_eq!(legs[0]["Endpoint-Timeout"], "30");
    assert_eq!(legs[0]["Endpoint-Delay"], "5");
    assert_eq!(legs[0]["To-DID"], "1001");
    assert!(legs[0].get("To-IP").is_none());
}

/// Row 3 with a failover target: registered, so no failover at all.
#[test]
fn row3_registered_with_failover_target_gives_plain_sip() {
    for failover in [
        json!({"call_failover": call_failover(FAILOVER)}),
        json!({"call_forward": legacy_failover(FAILOVER)}),
    ] {
        let legs = registered(vec![device(1, failover)]).legs(&request(&dev(1)));
        assert_eq!(summary(&legs), ["SIP:d1"]);
        assert_no_nested(&legs[0]);
    }
}

/// Row 4: creds, unregistered, no cf, failover target (`call_failover`): `[FAILOVER]`.
#[test]
fn row4_unregistered_with_call_failover_gives_failover_leg() {
    let w = World::new(vec![device(
        1,
        json!({"call_failover": call_failover(FAILOVER)}),
    )]);
    let legs = w.legs(&timed_request(1));
    assert_eq!(summary(&legs), [format!("FAILOVER:{FAILOVER}")]);
    assert_failover_leg(&legs[0], FAILOVER);
    // A FAILOVER leg is built like a forward leg: it carries the Properties' timers.
    assert_eq!(legs[0]["Endpoint-Timeout"], "30");
    assert_eq!(legs[0]["Endpoint-Delay"], "5");
    assert_eq!(ccv(&legs[0])["Authorizing-ID"], json!(dev(1)));
}

/// Row 4 with the legacy source (`call_forward.failover` + `call_forward.number`).
#[test]
fn row4_unregistered_with_legacy_failover_gives_failover_leg() {
    let w = World::new(vec![device(
        1,
        json!({"call_forward": legacy_failover(FAILOVER)}),
    )]);
    let legs = w.legs(&request(&dev(1)));
    assert_eq!(summary(&legs), [format!("FAILOVER:{FAILOVER}")]);
    assert_failover_leg(&legs[0], FAILOVER);
}

/// Row 4 without a failover target: `[]`, which for a device build is `no_endpoints`.
#[test]
fn row4_unregistered_without_failover_is_no_endpoints() {
    let w = World::new(vec![device(1, json!({}))]);
    assert_eq!(w.error(&request(&dev(1))), "no_endpoints");
    // A disabled forward with no failover flag is not a failover target either.
    let w = World::new(vec![device(
        1,
        json!({"call_forward": cf(FWD, json!({"enabled": false}))}),
    )]);
    assert_eq!(w.error(&request(&dev(1))), "no_endpoints");
}

/// Row 5: creds, unregistered, cf active, S false: `[FAILOVER, FWD]`.
#[test]
fn row5_unregistered_forward_without_substitute_gives_failover_then_fwd() {
    let w = World::new(vec![device(
        1,
        json!({"call_forward": cf(FWD, json!({})), "call_failover": call_failover(OTHER_FAILOVER)}),
    )]);
    let legs = w.legs(&request(&dev(1)));
    assert_eq!(
        summary(&legs),
        [format!("FAILOVER:{OTHER_FAILOVER}"), format!("FWD:{FWD}")]
    );
    assert_failover_leg(&legs[0], OTHER_FAILOVER);
    assert_fwd(&legs[1], FWD);
}

/// Row 5 without a failover target: only the forward.
#[test]
fn row5_unregistered_forward_without_failover_target_gives_fwd() {
    let w = World::new(vec![device(1, json!({"call_forward": cf(FWD, json!({}))}))]);
    let legs = w.legs(&request(&dev(1)));
    assert_eq!(summary(&legs), [format!("FWD:{FWD}")]);
    assert_fwd(&legs[0], FWD);
}

/// Row 5, same number: the legacy form always shares the forward number, so only `[FWD]`.
#[test]
fn row5_same_number_legacy_failover_gives_only_fwd() {
    let w = World::new(vec![device(
        1,
        json!({"call_forward": cf(FWD, json!({"failover": true}))}),
    )]);
    let legs = w.legs(&request(&dev(1)));
    assert_eq!(summary(&legs), [format!("FWD:{FWD}")]);
    assert_fwd(&legs[0], FWD);
}

/// Row 5, same number through `call_failover`: only `[FWD]`.
#[test]
fn row5_same_number_call_failover_gives_only_fwd() {
    let w = World::new(vec![device(
        1,
        json!({"call_forward": cf(FWD, json!({})), "call_failover": call_failover(FWD)}),
    )]);
    let legs = w.legs(&request(&dev(1)));
    assert_eq!(summary(&legs), [format!("FWD:{FWD}")]);
    assert_fwd(&legs[0], FWD);
}

/// Row 6: creds, unknown, no cf, failover target: `[SIP]` with a nested `Failover`.
#[test]
fn row6_unknown_with_failover_target_gives_sip_with_nested_failover() {
    for (source, doc) in [
        (
            "call_failover",
            device(1, json!({"call_failover": call_failover(FAILOVER)})),
        ),
        (
            "call_forward.failover",
            device(1, json!({"call_forward": legacy_failover(FAILOVER)})),
        ),
    ] {
        let legs = World::new(vec![doc]).unknown().legs(&timed_request(1));
        assert_eq!(
            summary(&legs),
            [format!("SIP:d1+F:{FAILOVER}")],
            "source {source}"
        );
        assert_eq!(legs[0]["Invite-Format"], "username");
        assert_eq!(legs[0]["To-Username"], "d1");
        assert_eq!(legs[0]["Endpoint-ID"], json!(dev(1)));
        // The SIP leg keeps the timers; the nested Failover has none.
        assert_eq!(legs[0]["Endpoint-Timeout"], "30");
        assert_eq!(legs[0]["Endpoint-Delay"], "5");
        assert_nested(&legs[0], FAILOVER);
    }
}

/// Row 6 without a failover target: a bare `[SIP]`.
#[test]
fn row6_unknown_without_failover_target_gives_bare_sip() {
    let legs = World::new(vec![device(1, json!({}))])
        .unknown()
        .legs(&request(&dev(1)));
    assert_eq!(summary(&legs), ["SIP:d1"]);
    assert_sip(&legs[0], 1, "d1");
    assert_no_nested(&legs[0]);
}

/// Row 7: creds, unknown, cf active, S false: as row 6, then `FWD`.
#[test]
fn row7_unknown_forward_without_substitute_gives_sip_with_failover_then_fwd() {
    let w = World::new(vec![device(
        1,
        json!({"call_forward": cf(FWD, json!({})), "call_failover": call_failover(OTHER_FAILOVER)}),
    )])
    .unknown();
    let legs = w.legs(&timed_request(1));
    assert_eq!(
        summary(&legs),
        [format!("SIP:d1+F:{OTHER_FAILOVER}"), format!("FWD:{FWD}")]
    );
    assert_nested(&legs[0], OTHER_FAILOVER);
    assert_fwd(&legs[1], FWD);
    assert_eq!(legs[1]["Endpoint-Timeout"], "30");
}

/// Row 7 without a failover target: `[SIP, FWD]`.
#[test]
fn row7_unknown_forward_without_failover_target_gives_sip_then_fwd() {
    let w = World::new(vec![device(1, json!({"call_forward": cf(FWD, json!({}))}))]).unknown();
    let legs = w.legs(&request(&dev(1)));
    assert_eq!(summary(&legs), ["SIP:d1".to_owned(), format!("FWD:{FWD}")]);
    assert_no_nested(&legs[0]);
    assert_fwd(&legs[1], FWD);
}

/// Row 7: the nested `Failover` is omitted when its number is the forward number.
#[test]
fn row7_nested_failover_omitted_when_it_is_the_forward_number() {
    for (source, doc) in [
        (
            "call_forward.failover",
            device(
                1,
                json!({"call_forward": cf(FWD, json!({"failover": true}))}),
            ),
        ),
        (
            "call_failover",
            device(
                1,
                json!({"call_forward": cf(FWD, json!({})), "call_failover": call_failover(FWD)}),
            ),
        ),
    ] {
        let legs = World::new(vec![doc]).unknown().legs(&request(&dev(1)));
        assert_eq!(
            summary(&legs),
            ["SIP:d1".to_owned(), format!("FWD:{FWD}")],
            "source {source}"
        );
        assert_no_nested(&legs[0]);
        assert_fwd(&legs[1], FWD);
    }
}

/// Row 8: no creds, cf active (either S): `[FWD]`, whatever the registration state.
#[test]
fn row8_no_creds_forward_gives_fwd() {
    for substitute in [false, true] {
        let doc = device(
            1,
            json!({"sip": null, "call_forward": cf(FWD, json!({"substitute": substitute}))}),
        );
        for world in [
            World::new(vec![doc.clone()]),
            World::new(vec![doc.clone()]).unknown(),
        ] {
            let legs = world.legs(&request(&dev(1)));
            assert_eq!(
                summary(&legs),
                [format!("FWD:{FWD}")],
                "substitute {substitute}"
            );
            assert_fwd(&legs[0], FWD);
        }
    }
    // An empty username is no credential either.
    let doc = device(
        1,
        json!({"sip": {"username": ""}, "call_forward": cf(FWD, json!({}))}),
    );
    assert_eq!(
        World::new(vec![doc]).summary(&request(&dev(1))),
        [format!("FWD:{FWD}")]
    );
}

/// Row 9: no creds, no cf: `[]`, a `no_endpoints` error.
#[test]
fn row9_no_creds_no_forward_is_no_endpoints() {
    let doc = device(1, json!({"sip": null}));
    assert_eq!(
        World::new(vec![doc.clone()]).error(&request(&dev(1))),
        "no_endpoints"
    );
    assert_eq!(
        World::new(vec![doc]).unknown().error(&request(&dev(1))),
        "no_endpoints"
    );
    // No credentials and only a failover target: still nothing to ring.
    let doc = device(
        1,
        json!({"sip": null, "call_failover": call_failover(FAILOVER)}),
    );
    assert_eq!(
        World::new(vec![doc]).error(&request(&dev(1))),
        "no_endpoints"
    );
}

// ---------------------------------------------------------------------------------------------
// Definitions: failover sources, sip.ip, substitute, number, direct_calls_only
// ---------------------------------------------------------------------------------------------

/// `call_failover` wins over the legacy `call_forward.failover` when both exist.
#[test]
fn call_failover_wins_over_legacy_failover() {
    let doc = device(
        1,
        json!({
            "call_forward": legacy_failover(FAILOVER),
            "call_failover": call_failover(OTHER_FAILOVER)
        }),
    );
    let legs = World::new(vec![doc.clone()]).legs(&request(&dev(1)));
    assert_eq!(summary(&legs), [format!("FAILOVER:{OTHER_FAILOVER}")]);
    assert_failover_leg(&legs[0], OTHER_FAILOVER);
    let legs = World::new(vec![doc]).unknown().legs(&request(&dev(1)));
    assert_eq!(summary(&legs), [format!("SIP:d1+F:{OTHER_FAILOVER}")]);
    assert_nested(&legs[0], OTHER_FAILOVER);
}

/// A `call_failover` that is disabled or has no number is no target: the legacy form applies.
#[test]
fn inactive_call_failover_falls_back_to_legacy() {
    for cfo in [
        json!({"enabled": false, "number": OTHER_FAILOVER}),
        json!({"enabled": true, "number": ""}),
        json!({"enabled": true}),
    ] {
        let doc = device(
            1,
            json!({"call_forward": legacy_failover(FAILOVER), "call_failover": cfo}),
        );
        assert_eq!(
            World::new(vec![doc]).summary(&request(&dev(1))),
            [format!("FAILOVER:{FAILOVER}")],
            "call_failover {cfo}"
        );
    }
    // ...and with no legacy target, a disabled call_failover gives nothing.
    let doc = device(
        1,
        json!({"call_failover": {"enabled": false, "number": OTHER_FAILOVER}}),
    );
    assert_eq!(
        World::new(vec![doc]).error(&request(&dev(1))),
        "no_endpoints"
    );
}

/// The legacy form needs `call_forward.failover` true and a non-empty `call_forward.number`.
#[test]
fn legacy_failover_needs_flag_and_number() {
    for cfw in [
        cf("", json!({"enabled": false, "failover": true})),
        cf("0", json!({"enabled": false, "failover": true})),
        cf(FAILOVER, json!({"enabled": false, "failover": false})),
    ] {
        let doc = device(1, json!({"call_forward": cfw}));
        assert_eq!(
            World::new(vec![doc.clone()]).error(&request(&dev(1))),
            "no_endpoints",
            "call_forward {cfw}"
        );
        let legs = World::new(vec![doc]).unknown().legs(&request(&dev(1)));
        assert_eq!(summary(&legs), ["SIP:d1"]);
        assert_no_nested(&legs[0]);
    }
}

/// `call_failover` takes the forward flags: `keep_caller_id` and `require_keypress`.
#[test]
fn call_failover_flags_reach_the_failover_leg() {
    let doc = device(
        1,
        json!({"call_failover": {
            "enabled": true, "number": FAILOVER, "keep_caller_id": true, "require_keypress": true
        }}),
    );
    let legs = World::new(vec![doc]).legs(&request(&dev(1)));
    assert_eq!(summary(&legs), [format!("FAILOVER:{FAILOVER}")]);
    let c = ccv(&legs[0]);
    assert_eq!(c["Retain-CID"], "true");
    assert_eq!(c["Confirm-Key"], "1");
    assert_eq!(c["Confirm-Read-Timeout"], "7000");
    assert_eq!(legs[0]["Ignore-Early-Media"], json!(true));
    // Without the flags, neither CCV.
    let doc = device(1, json!({"call_failover": call_failover(FAILOVER)}));
    let legs = World::new(vec![doc]).legs(&request(&dev(1)));
    assert!(ccv(&legs[0]).get("Retain-CID").is_none());
    assert!(ccv(&legs[0]).get("Confirm-Key").is_none());
}

/// A device with `sip.ip` counts as registered: a SIP leg with `To-IP`, even though the
/// registrar does not list it, and never a failover.
#[test]
fn sip_ip_counts_as_registered() {
    let doc = device(
        1,
        json!({"sip": {"ip": "10.1.2.3"}, "call_failover": call_failover(FAILOVER)}),
    );
    for world in [
        World::new(vec![doc.clone()]),
        World::new(vec![doc.clone()]).unknown(),
    ] {
        let legs = world.legs(&request(&dev(1)));
        assert_eq!(summary(&legs), ["SIP:d1"]);
        assert_eq!(legs[0]["To-IP"], "10.1.2.3");
        assert_eq!(legs[0]["To-Username"], "d1");
        assert_no_nested(&legs[0]);
    }
    // Row 2 with sip.ip: [SIP, FWD].
    let doc = device(
        1,
        json!({"sip": {"ip": "10.1.2.3"}, "call_forward": cf(FWD, json!({}))}),
    );
    let legs = World::new(vec![doc]).legs(&request(&dev(1)));
    assert_eq!(summary(&legs), ["SIP:d1".to_owned(), format!("FWD:{FWD}")]);
    assert_eq!(legs[0]["To-IP"], "10.1.2.3");
}

/// A missing `substitute` counts as true (the schema default): `[FWD]` only.
#[test]
fn missing_substitute_counts_as_true() {
    let doc = device(1, json!({"call_forward": {"enabled": true, "number": FWD}}));
    for world in [
        World::new(vec![doc.clone()]).registered(&["d1"]),
        World::new(vec![doc.clone()]),
        World::new(vec![doc]).unknown(),
    ] {
        let legs = world.legs(&request(&dev(1)));
        assert_eq!(summary(&legs), [format!("FWD:{FWD}")]);
        assert_fwd(&legs[0], FWD);
    }
}

/// A forward number of `"0"` or `""` means the forward is not active.
#[test]
fn empty_or_zero_forward_number_is_not_active() {
    for number in ["0", ""] {
        let doc = device(
            1,
            json!({"call_forward": cf(number, json!({"substitute": true}))}),
        );
        let legs = registered(vec![doc.clone()]).legs(&request(&dev(1)));
        assert_eq!(summary(&legs), ["SIP:d1"], "number {number:?}");
        assert_eq!(
            World::new(vec![doc]).error(&request(&dev(1))),
            "no_endpoints",
            "number {number:?}"
        );
    }
    // A missing number too.
    let doc = device(
        1,
        json!({"call_forward": {"enabled": true, "substitute": true}}),
    );
    assert_eq!(registered(vec![doc]).summary(&request(&dev(1))), ["SIP:d1"]);
}

/// `call_forward.enabled` false: no forward leg, whatever the number.
#[test]
fn disabled_forward_is_not_active() {
    let doc = device(
        1,
        json!({"call_forward": cf(FWD, json!({"enabled": false, "substitute": true}))}),
    );
    assert_eq!(registered(vec![doc]).summary(&request(&dev(1))), ["SIP:d1"]);
}

/// `direct_calls_only`: a direct call (`cf_device`) forwards; a ring-group call does not.
#[test]
fn direct_calls_only_depends_on_the_source() {
    let doc = device(
        1,
        json!({"call_forward": cf(FWD, json!({"substitute": true, "direct_calls_only": true}))}),
    );
    let w = registered(vec![doc]);
    // Direct: the forward applies.
    let legs = w.legs(&request(&dev(1)));
    assert_eq!(summary(&legs), [format!("FWD:{FWD}")]);
    // Properties.source cf_ring_group: not a direct call, the forward is ignored.
    let rg = with(
        request(&dev(1)),
        json!({"Properties": {"source": "cf_ring_group"}}),
    );
    let legs = w.legs(&rg);
    assert_eq!(summary(&legs), ["SIP:d1"]);
    assert_sip(&legs[0], 1, "d1");
    // The same through a ring-group member list.
    let legs = w.legs(&ring_group_request(json!([{"id": dev(1)}])));
    assert_eq!(summary(&legs), ["SIP:d1"]);
    // Without direct_calls_only the ring group forwards too.
    let doc = device(
        1,
        json!({"call_forward": cf(FWD, json!({"substitute": true}))}),
    );
    assert_eq!(registered(vec![doc]).summary(&rg), [format!("FWD:{FWD}")]);
}

/// The owner's `call_forward` and `call_failover` are never merged into the device.
#[test]
fn owner_forward_and_failover_are_not_inherited() {
    let owner = user(
        1,
        json!({
            "call_forward": cf("+1999", json!({"substitute": true})),
            "call_failover": call_failover(FAILOVER)
        }),
    );
    let doc = device(1, json!({"owner_id": usr(1)}));
    let legs = registered(vec![owner.clone(), doc.clone()]).legs(&request(&dev(1)));
    assert_eq!(summary(&legs), ["SIP:d1"]);
    assert_eq!(ccv(&legs[0])["Owner-ID"], json!(usr(1)));
    assert_eq!(
        World::new(vec![owner.clone(), doc.clone()]).error(&request(&dev(1))),
        "no_endpoints"
    );
    let legs = World::new(vec![owner, doc])
        .unknown()
        .legs(&request(&dev(1)));
    assert_eq!(summary(&legs), ["SIP:d1"]);
    assert_no_nested(&legs[0]);
}

/// An unregistered device without a failover target is `no_endpoints`, also with a plain
/// unregistered SIP device that has other, unrelated settings.
#[test]
fn unregistered_without_failover_is_no_endpoints() {
    let w = World::new(vec![device(
        1,
        json!({"media": {"audio": {"codecs": ["PCMU"]}}}),
    )]);
    assert_eq!(w.error(&request(&dev(1))), "no_endpoints");
    // The same device, registered, rings.
    let w = w.registered(&["d1"]);
    assert_eq!(w.summary(&request(&dev(1))), ["SIP:d1"]);
}

// ---------------------------------------------------------------------------------------------
// Gating and errors
// ---------------------------------------------------------------------------------------------

#[test]
fn gating_no_resource_type() {
    let w = registered(vec![device(1, json!({}))]);
    let req = with(request(&dev(1)), json!({"Call": {"Resource-Type": null}}));
    assert_eq!(w.error(&req), "no_resource_type");
}

#[test]
fn gating_video_resource_type_is_exception() {
    let w = registered(vec![device(1, json!({}))]);
    let req = with(
        request(&dev(1)),
        json!({"Call": {"Resource-Type": "video"}}),
    );
    assert_eq!(w.error(&req), "exception");
}

#[test]
fn gating_owner_called_self() {
    let w = registered(vec![
        user(1, json!({})),
        device(1, json!({"owner_id": usr(1)})),
    ]);
    let req = with(request(&dev(1)), json!({"Call": {"Owner-ID": usr(1)}}));
    assert_eq!(w.error(&req), "owner_called_self");
    // can_call_self allows it.
    let allowed = with(req, json!({"Properties": {"can_call_self": true}}));
    assert_eq!(w.summary(&allowed), ["SIP:d1"]);
    // Another owner on the call: allowed.
    let other = with(request(&dev(1)), json!({"Call": {"Owner-ID": usr(2)}}));
    assert_eq!(w.summary(&other), ["SIP:d1"]);
}

#[test]
fn gating_owner_called_self_uses_call_owner_id_not_the_caller_device() {
    // The calling device is owned by U1, but the call has no Owner-ID: not a self call
    // (the caller's owner id is Call.Owner-ID, never looked up from the calling device).
    let caller = with(caller_device(), json!({"owner_id": usr(1)}));
    let w = registered(vec![
        caller,
        user(1, json!({})),
        device(1, json!({"owner_id": usr(1)})),
    ]);
    assert_eq!(w.summary(&request(&dev(1))), ["SIP:d1"]);
}

#[test]
fn gating_endpoint_called_self() {
    let w = World::new(vec![]).registered(&["carol"]);
    assert_eq!(w.error(&request(&caller_id())), "endpoint_called_self");
    let allowed = with(
        request(&caller_id()),
        json!({"Properties": {"can_call_self": true}}),
    );
    let legs = w.legs(&allowed);
    assert_eq!(summary(&legs), ["SIP:carol"]);
    assert_eq!(legs[0]["Endpoint-ID"], json!(caller_id()));
}

#[test]
fn gating_endpoint_disabled() {
    let w = registered(vec![device(1, json!({"enabled": false}))]);
    assert_eq!(w.error(&request(&dev(1))), "endpoint_disabled");
    let w = registered(vec![device(1, json!({"enabled": "false"}))]);
    assert_eq!(w.error(&request(&dev(1))), "endpoint_disabled");
}

#[test]
fn gating_endpoint_deleted() {
    let w = registered(vec![device(1, json!({"pvt_deleted": true}))]);
    assert_eq!(w.error(&request(&dev(1))), "endpoint_deleted");
}

#[test]
fn gating_do_not_disturb_from_device() {
    let w = registered(vec![device(
        1,
        json!({"do_not_disturb": {"enabled": true}}),
    )]);
    assert_eq!(w.error(&request(&dev(1))), "do_not_disturb");
    // DND disabled: rings.
    let w = registered(vec![device(
        1,
        json!({"do_not_disturb": {"enabled": false}}),
    )]);
    assert_eq!(w.summary(&request(&dev(1))), ["SIP:d1"]);
}

#[test]
fn gating_do_not_disturb_from_owner() {
    let w = registered(vec![
        user(1, json!({"do_not_disturb": {"enabled": true}})),
        device(1, json!({"owner_id": usr(1)})),
    ]);
    assert_eq!(w.error(&request(&dev(1))), "do_not_disturb");
}

#[test]
fn gating_do_not_disturb_from_account() {
    // A later document with the same id replaces the default account.
    let w = registered(vec![
        with(account(), json!({"do_not_disturb": {"enabled": true}})),
        device(1, json!({})),
    ]);
    assert_eq!(w.error(&request(&dev(1))), "do_not_disturb");
}

#[test]
fn gating_do_not_disturb_applies_before_a_forward() {
    let w = registered(vec![device(
        1,
        json!({
            "do_not_disturb": {"enabled": true},
            "call_forward": cf(FWD, json!({"substitute": true}))
        }),
    )]);
    assert_eq!(w.error(&request(&dev(1))), "do_not_disturb");
}

#[test]
fn gating_exclude_from_queues() {
    let w = registered(vec![device(1, json!({"exclude_from_queues": true}))]);
    let queued = with(
        request(&dev(1)),
        json!({"Call": {"Custom-Channel-Vars": {"Queue-ID": "q1"}}}),
    );
    assert_eq!(w.error(&queued), "exclude_from_queues");
    // Without Queue-ID: rings.
    assert_eq!(w.summary(&request(&dev(1))), ["SIP:d1"]);
    // A queue call to a device that is not excluded: rings.
    let w = registered(vec![device(1, json!({}))]);
    assert_eq!(w.summary(&queued), ["SIP:d1"]);
}

#[test]
fn gating_not_found() {
    let w = registered(vec![device(1, json!({}))]);
    assert_eq!(w.error(&request(&dev(99))), "not_found");
}

#[test]
fn gating_not_device_nor_user() {
    let vmbox = json!({
        "_id": id("vmbox", 1), "pvt_type": "vmbox", "pvt_account_id": account_id(),
        "mailbox": "1001"
    });
    let w = World::new(vec![vmbox]);
    assert_eq!(w.error(&request(&id("vmbox", 1))), "not_device_nor_user");
}

#[test]
fn invalid_request_bad_endpoint_id() {
    let w = registered(vec![device(1, json!({}))]);
    for bad in [
        "DEVICE00000000000000000000000001",
        "device1",
        "device000000000000000000000000001",
        "../../../etc/passwd0000000000000",
    ] {
        match w.build(&request(bad)) {
            Ok(legs) => panic!("{bad}: expected invalid_request, got {legs:?}"),
            Err(e) => {
                assert_eq!(e.code.as_str(), "invalid_request", "{bad}");
                assert!(e.message.contains("Endpoint-ID"), "{bad}: {}", e.message);
            }
        }
    }
}

#[test]
fn invalid_request_missing_account_id() {
    let w = registered(vec![device(1, json!({}))]);
    let req = with(request(&dev(1)), json!({"Account-ID": null}));
    let e = w.build(&req).expect_err("a request without Account-ID");
    assert_eq!(e.code.as_str(), "invalid_request");
    assert!(e.message.contains("Account-ID"), "{}", e.message);
    // A malformed Account-ID too.
    let req = with(request(&dev(1)), json!({"Account-ID": "acct1"}));
    assert_eq!(w.error(&req), "invalid_request");
}

#[test]
fn invalid_request_bad_ring_group_member_id() {
    let w = registered(vec![device(1, json!({}))]);
    let req = ring_group_request(json!([{"id": dev(1)}, {"id": "not-a-valid-id"}]));
    let e = w.build(&req).expect_err("a member with a bad id");
    assert_eq!(e.code.as_str(), "invalid_request");
    assert!(
        e.message.contains("Properties.endpoints[1].id"),
        "{}",
        e.message
    );
}

#[test]
fn sms_owner_match_is_allowed_by_default() {
    let w = registered(vec![
        user(1, json!({})),
        device(1, json!({"owner_id": usr(1)})),
    ]);
    let sms = with(
        request(&dev(1)),
        json!({"Call": {"Resource-Type": "sms", "Owner-ID": usr(1)}}),
    );
    assert_eq!(w.summary(&sms), ["SIP:d1"]);
    // can_text_self false: the owner check applies.
    let no_self = with(sms, json!({"Properties": {"can_text_self": false}}));
    assert_eq!(w.error(&no_self), "owner_called_self");
    // The same owner match on an audio call is refused (can_call_self defaults to false).
    let audio = with(request(&dev(1)), json!({"Call": {"Owner-ID": usr(1)}}));
    assert_eq!(w.error(&audio), "owner_called_self");
}

#[test]
fn sms_to_the_calling_device_is_allowed_by_default() {
    let w = World::new(vec![]).registered(&["carol"]);
    let sms = with(
        request(&caller_id()),
        json!({"Call": {"Resource-Type": "sms"}}),
    );
    assert_eq!(w.summary(&sms), ["SIP:carol"]);
    let no_self = with(sms, json!({"Properties": {"can_text_self": false}}));
    assert_eq!(w.error(&no_self), "endpoint_called_self");
}

/// The checks run in Kazoo's order; the first failure is the error.
#[test]
fn gating_order() {
    // Deleted beats disabled (both step 0, deleted first).
    let w = registered(vec![device(
        1,
        json!({"pvt_deleted": true, "enabled": false}),
    )]);
    assert_eq!(w.error(&request(&dev(1))), "endpoint_deleted");
    // Disabled (step 0) beats a missing resource type (step 1).
    let w = registered(vec![device(1, json!({"enabled": false}))]);
    let no_rt = with(request(&dev(1)), json!({"Call": {"Resource-Type": null}}));
    assert_eq!(w.error(&no_rt), "endpoint_disabled");
    // Missing resource type (1) beats owner-called-self (2).
    let w = registered(vec![
        user(1, json!({})),
        device(
            1,
            json!({
                "owner_id": usr(1), "do_not_disturb": {"enabled": true},
                "exclude_from_queues": true
            }),
        ),
    ]);
    let base = with(
        request(&dev(1)),
        json!({"Call": {"Owner-ID": usr(1), "Custom-Channel-Vars": {"Queue-ID": "q1"}}}),
    );
    assert_eq!(
        w.error(&with(
            base.clone(),
            json!({"Call": {"Resource-Type": null}})
        )),
        "no_resource_type"
    );
    // Owner-called-self (2) beats DND (5) and queues (6).
    assert_eq!(w.error(&base), "owner_called_self");
    // With the self check allowed: DND (5) beats queues (6).
    let allowed = with(base, json!({"Properties": {"can_call_self": true}}));
    assert_eq!(w.error(&allowed), "do_not_disturb");
    // Endpoint-called-self (3) beats DND (5).
    let caller = with(
        caller_device(),
        json!({"do_not_disturb": {"enabled": true}}),
    );
    let w = World::new(vec![caller]).registered(&["carol"]);
    assert_eq!(w.error(&request(&caller_id())), "endpoint_called_self");
}

/// A store that must never be read.
struct NoStore;

impl DocumentStore for NoStore {
    async fn open_docs(&self, _db: &str, ids: &[String]) -> Result<Docs, StoreError> {
        panic!("an invalid request reached the database: open_docs {ids:?}")
    }

    async fn owned_devices(&self, _db: &str, ids: &[String]) -> Result<Owned, StoreError> {
        panic!("an invalid request reached the database: owned_devices {ids:?}")
    }
}

/// An invalid request never reaches the database, and its error names the field.
#[test]
fn invalid_requests_never_reach_the_database() {
    let cases = [
        (request("DEVICE00000000000000000000000001"), "Endpoint-ID"),
        (
            with(request(&dev(1)), json!({"Account-ID": null})),
            "Account-ID",
        ),
        (
            with(
                request(&dev(1)),
                json!({"Account-ID": "../../_users00000000000000000000"}),
            ),
            "Account-ID",
        ),
        (
            ring_group_request(json!([{"id": "BAD"}])),
            "Properties.endpoints[0].id",
        ),
        // The action's own timers are integers, as a member's are (docs/compatibility.md).
        (
            with(request(&dev(1)), json!({"Properties": {"timeout": "abc"}})),
            "Properties.timeout",
        ),
        (
            with(request(&dev(1)), json!({"Properties": {"delay": true}})),
            "Properties.delay",
        ),
    ];
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    for (req, field) in cases {
        let body = req.as_object().unwrap().clone();
        let handled = rt.block_on(handle(
            &body,
            &NoStore,
            &GivenRegistrations::new([], false),
            &Identity::new("test@host"),
        ));
        let e = handled.result.expect_err("an invalid request");
        assert_eq!(e.code.as_str(), "invalid_request", "{field}");
        assert!(e.message.contains(field), "{field}: {}", e.message);
        assert_eq!(handled.reply.json()["Event-Name"], "build_error");
        assert_eq!(handled.reply.json()["Error-Code"], "invalid_request");
        assert!(handled.resolution.is_none());
    }
}

/// The action's `timeout` and `delay`, as integers or integer strings, become the SIP leg's
/// `Endpoint-Timeout` and `Endpoint-Delay` (decimal strings); zero writes neither.
#[test]
fn action_timers_as_integers_or_integer_strings() {
    let w = registered(vec![device(1, json!({}))]);
    for (props, timeout, delay) in [
        (json!({"timeout": 30, "delay": "5"}), Some("30"), Some("5")),
        (json!({"timeout": " 45 ", "delay": null}), Some("45"), None),
        (json!({"timeout": 0, "delay": 0}), None, None),
    ] {
        let legs = w.legs(&with(request(&dev(1)), json!({"Properties": props})));
        assert_eq!(legs.len(), 1);
        let field = |k: &str| legs[0].get(k).and_then(Value::as_str);
        assert_eq!(field("Endpoint-Timeout"), timeout, "{props}");
        assert_eq!(field("Endpoint-Delay"), delay, "{props}");
    }
}

/// A calling device that is not in the database is accepted; the self check compares ids.
#[test]
fn caller_device_missing_from_the_database_is_accepted() {
    let w = registered(vec![device(1, json!({}))]);
    let req = with(
        request(&dev(1)),
        json!({"Call": {"Authorizing-ID": dev(50)}}),
    );
    assert_eq!(w.summary(&req), ["SIP:d1"]);
    // Dialling that missing device: the fetch fails first.
    let req = with(
        request(&dev(50)),
        json!({"Call": {"Authorizing-ID": dev(50)}}),
    );
    assert_eq!(w.error(&req), "not_found");
}
