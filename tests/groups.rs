//! Groups and ring groups (`product-rules.md` section 5) and the de-duplication rules of
//! section 6 as they apply to them.
//!
//! Every build runs through the real request handler (`World::build`), which also checks each
//! leg against the bridge-endpoint validator and that no password leaks into the reply.

mod common;
use common::*;

use kz_endpoint::kz_json::Object;
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// Local helpers
// ---------------------------------------------------------------------------------------------

/// A request for group document `id`, as the callflow `group` module sends it: source
/// `cf_group`, with the action's own timers (which must not reach any member's leg), and
/// `extra` merged over the Properties.
fn group_request(id: &str, extra: Value) -> Value {
    let props = with(json!({"source": "cf_group", "timeout": 20}), extra);
    with(request(id), json!({ "Properties": props }))
}

/// A ring-group request for `members`, with `extra` merged over its Properties.
fn ring_request(members: Value, extra: Value) -> Value {
    let r = ring_group_request(members);
    with(r, json!({ "Properties": extra }))
}

/// A string field of a leg.
fn field<'a>(leg: &'a Object, key: &str) -> Option<&'a str> {
    leg.get(key).and_then(Value::as_str)
}

/// `Custom-Channel-Vars.<key>` of a leg, as a string.
fn ccv<'a>(leg: &'a Object, key: &str) -> Option<&'a str> {
    leg.get("Custom-Channel-Vars")
        .and_then(|c| c.get(key))
        .and_then(Value::as_str)
}

/// The legs built for entity `id` (by `Custom-Channel-Vars.Authorizing-ID`).
fn legs_of<'a>(legs: &'a [Object], id: &str) -> Vec<&'a Object> {
    legs.iter()
        .filter(|l| ccv(l, "Authorizing-ID") == Some(id))
        .collect()
}

/// `(Endpoint-Delay, Endpoint-Timeout)` of a leg.
fn timers(leg: &Object) -> (Option<&str>, Option<&str>) {
    (field(leg, "Endpoint-Delay"), field(leg, "Endpoint-Timeout"))
}

/// Asserts every leg of `id` carries exactly these timers (and that there is at least one).
fn assert_timers(legs: &[Object], id: &str, delay: Option<&str>, timeout: Option<&str>) {
    let mine = legs_of(legs, id);
    assert!(
        !mine.is_empty(),
        "no leg for {id}: {}",
        summary(legs).join(",")
    );
    for leg in mine {
        assert_eq!(
            timers(leg),
            (delay, timeout),
            "timers of a leg of {id}: {}",
            Value::Object(leg.clone())
        );
    }
}

/// A device that is owned by user `owner`.
fn owned_device(n: u32, owner: u32) -> Value {
    device(n, json!({"owner_id": usr(owner)}))
}

/// Do-not-disturb on.
fn dnd() -> Value {
    json!({"do_not_disturb": {"enabled": true}})
}

// ---------------------------------------------------------------------------------------------
// Group documents: expansion order and member types
// ---------------------------------------------------------------------------------------------

#[test]
fn group_members_expand_in_ascending_weight_then_document_order() {
    // Document order: d3(30), d1(-), u1(20), d2(10), g2(5), d4(20).
    // Expected: g2(5) → d7; d2(10); then the weight-20 ties in document order: d1 (missing
    // weight counts as 20), u1 → d6, d4; then d3(30).
    let w = World::new(vec![
        device(1, json!({})),
        device(2, json!({})),
        device(3, json!({})),
        device(4, json!({})),
        owned_device(6, 1),
        device(7, json!({})),
        user(1, json!({})),
        group(2, json!({ dev(7): {"type": "device"} }), json!({})),
        group(
            1,
            json!({
                dev(3): {"type": "device", "weight": 30},
                dev(1): {},
                usr(1): {"type": "user", "weight": 20},
                dev(2): {"type": "device", "weight": 10},
                grp(2): {"type": "group", "weight": 5},
                dev(4): {"type": "device", "weight": 20}
            }),
            json!({}),
        ),
    ])
    .registered(&["d1", "d2", "d3", "d4", "d6", "d7"]);
    let legs = w.legs(&group_request(&grp(1), json!({})));
    assert_eq!(
        summary(&legs),
        ["SIP:d7", "SIP:d2", "SIP:d1", "SIP:d6", "SIP:d4", "SIP:d3"]
    );
    let ids: Vec<_> = legs.iter().map(|l| field(l, "Endpoint-ID")).collect();
    assert_eq!(
        ids,
        [dev(7), dev(2), dev(1), dev(6), dev(4), dev(3)]
            .iter()
            .map(|s| Some(s.as_str()))
            .collect::<Vec<_>>()
    );
    for leg in &legs {
        assert_eq!(ccv(leg, "Authorizing-Type"), Some("device"));
        assert_eq!(field(leg, "Invite-Format"), Some("username"));
    }
    // The user member's device carries its owner.
    assert_eq!(ccv(&legs[3], "Owner-ID"), Some(usr(1).as_str()));
}

#[test]
fn group_member_without_type_is_a_device() {
    let w = World::new(vec![
        device(1, json!({})),
        group(1, json!({ dev(1): {} }), json!({})),
    ])
    .registered(&["d1"]);
    let legs = w.legs(&group_request(&grp(1), json!({})));
    assert_eq!(summary(&legs), ["SIP:d1"]);
    assert_eq!(field(&legs[0], "Endpoint-ID"), Some(dev(1).as_str()));
    assert_eq!(field(&legs[0], "To-Username"), Some("d1"));
    assert_eq!(field(&legs[0], "To-Realm"), Some(REALM));
}

#[test]
fn group_member_types_device_user_and_group() {
    let w = World::new(vec![
        device(1, json!({})),
        owned_device(2, 1),
        owned_device(3, 1),
        device(4, json!({})),
        user(1, json!({})),
        group(2, json!({ dev(4): {"type": "device"} }), json!({})),
        group(
            1,
            json!({
                dev(1): {"type": "device", "weight": 1},
                usr(1): {"type": "user", "weight": 2},
                grp(2): {"type": "group", "weight": 3}
            }),
            json!({}),
        ),
    ])
    .registered(&["d1", "d2", "d3", "d4"]);
    let legs = w.legs(&group_request(&grp(1), json!({})));
    // The user's devices in ascending document id.
    assert_eq!(summary(&legs), ["SIP:d1", "SIP:d2", "SIP:d3", "SIP:d4"]);
    assert_eq!(ccv(&legs[1], "Owner-ID"), Some(usr(1).as_str()));
    assert_eq!(ccv(&legs[2], "Owner-ID"), Some(usr(1).as_str()));
    assert_eq!(ccv(&legs[0], "Owner-ID"), None);
}

// ---------------------------------------------------------------------------------------------
// Per-member delay and timeout
// ---------------------------------------------------------------------------------------------

#[test]
fn group_member_delay_and_timeout_become_strings_on_that_members_legs() {
    let w = World::new(vec![
        // d1 rings and forwards (S false): both legs carry d1's member timers.
        device(1, json!({"call_forward": cf("5551001", json!({}))})),
        device(2, json!({})),
        owned_device(3, 1),
        user(1, json!({})),
        group(
            1,
            json!({
                dev(1): {"type": "device", "weight": 1, "delay": 5, "timeout": 30},
                dev(2): {"type": "device", "weight": 2},
                usr(1): {"type": "user", "weight": 3, "delay": 2, "timeout": 15}
            }),
            json!({}),
        ),
    ])
    .registered(&["d1", "d2", "d3"]);
    // The request's own Properties carry timeout 20 and delay 3: never a member default.
    let legs = w.legs(&group_request(&grp(1), json!({"delay": 3})));
    assert_eq!(
        summary(&legs),
        ["SIP:d1", "FWD:5551001", "SIP:d2", "SIP:d3"]
    );
    assert_timers(&legs, &dev(1), Some("5"), Some("30"));
    assert_eq!(legs_of(&legs, &dev(1)).len(), 2);
    assert_timers(&legs, &dev(2), None, None);
    assert_timers(&legs, &dev(3), Some("2"), Some("15"));
}

#[test]
fn ring_group_member_delay_and_timeout_only_where_given() {
    let w = World::new(vec![
        device(1, json!({})),
        device(2, json!({})),
        device(3, json!({})),
    ])
    .registered(&["d1", "d2", "d3"]);
    let req = ring_request(
        json!([
            {"id": dev(1), "endpoint_type": "device", "delay": 4, "timeout": 25},
            {"id": dev(2), "endpoint_type": "device"},
            {"id": dev(3), "endpoint_type": "device", "timeout": 12}
        ]),
        json!({"timeout": 20}),
    );
    let legs = w.legs(&req);
    assert_eq!(summary(&legs), ["SIP:d1", "SIP:d2", "SIP:d3"]);
    assert_timers(&legs, &dev(1), Some("4"), Some("25"));
    assert_timers(&legs, &dev(2), None, None);
    assert_timers(&legs, &dev(3), None, Some("12"));
}

// ---------------------------------------------------------------------------------------------
// Direct and non-direct calls (call_forward.direct_calls_only)
// ---------------------------------------------------------------------------------------------

/// d1 forwards (substitute) on direct calls only; d2 is a plain registered device; d3 forwards
/// (substitute) on every call.
fn direct_only_world() -> World {
    World::new(vec![
        device(
            1,
            json!({"call_forward": cf("5551001", json!({"direct_calls_only": true, "substitute": true}))}),
        ),
        device(2, json!({})),
        device(
            3,
            json!({"call_forward": cf("5551003", json!({"substitute": true}))}),
        ),
        group(
            1,
            json!({
                dev(1): {"type": "device"},
                dev(2): {"type": "device"},
                dev(3): {"type": "device"}
            }),
            json!({}),
        ),
    ])
    .registered(&["d1", "d2", "d3"])
}

#[test]
fn group_document_members_are_direct_calls() {
    let w = direct_only_world();
    let legs = w.legs(&group_request(&grp(1), json!({})));
    assert_eq!(summary(&legs), ["FWD:5551001", "SIP:d2", "FWD:5551003"]);
    assert_eq!(ccv(&legs[0], "Authorizing-ID"), Some(dev(1).as_str()));
    assert_eq!(ccv(&legs[0], "Call-Forward"), Some("true"));
}

/// Section 5: "members of a group document [are built] as direct calls (source cf_group)". A
/// request that names a group document and also carries a ring-group list (the list is
/// ignored, section 5) still builds a group document, so its members are direct calls even
/// though the request's `Properties.source` is `cf_ring_group`.
#[test]
fn group_document_members_are_direct_even_when_the_request_source_is_a_ring_group() {
    let w = direct_only_world();
    let mut req = ring_group_request(json!([{"id": dev(2), "endpoint_type": "device"}]));
    req["Endpoint-ID"] = json!(grp(1));
    let legs = w.legs(&req);
    assert_eq!(summary(&legs), ["FWD:5551001", "SIP:d2", "FWD:5551003"]);
}

#[test]
fn ring_group_list_members_are_not_direct_calls() {
    let w = direct_only_world();
    let legs = w.legs(&ring_group_request(json!([
        {"id": dev(1), "endpoint_type": "device"},
        {"id": dev(2), "endpoint_type": "device"},
        {"id": dev(3), "endpoint_type": "device"}
    ])));
    // d1's direct-calls-only forward is not used: its SIP leg rings instead.
    assert_eq!(summary(&legs), ["SIP:d1", "SIP:d2", "FWD:5551003"]);
    assert_eq!(field(&legs[0], "Endpoint-ID"), Some(dev(1).as_str()));
    assert!(
        legs_of(&legs, &dev(1))
            .iter()
            .all(|l| l["Invite-Format"] != "loopback")
    );
}

/// The rules do not say whether the members of a group that is itself a ring-group list member
/// are direct; the engine treats the whole ring-group expansion as non-direct (as Kazoo's
/// `cf_ring_group` does). This asserts the engine's behaviour.
#[test]
fn ring_group_list_group_member_expands_as_direct() {
    // Product rule 5: a group document's members are direct calls, even in a ring group.
    let w = direct_only_world();
    let legs = w.legs(&ring_group_request(json!([
        {"id": grp(1), "endpoint_type": "group"}
    ])));
    assert_eq!(summary(&legs), ["FWD:5551001", "SIP:d2", "FWD:5551003"]);
}

// ---------------------------------------------------------------------------------------------
// Nesting, cycles and devices reached twice
// ---------------------------------------------------------------------------------------------

#[test]
fn nested_groups_expand_recursively() {
    let w = World::new(vec![
        device(1, json!({})),
        device(2, json!({})),
        device(3, json!({})),
        device(4, json!({})),
        device(5, json!({})),
        group(3, json!({ dev(5): {} }), json!({})),
        group(
            2,
            json!({ dev(2): {"weight": 1}, grp(3): {"type": "group", "weight": 2}, dev(3): {"weight": 3} }),
            json!({}),
        ),
        group(
            1,
            json!({ dev(1): {"weight": 1}, grp(2): {"type": "group", "weight": 2}, dev(4): {"weight": 3} }),
            json!({}),
        ),
    ])
    .registered(&["d1", "d2", "d3", "d4", "d5"]);
    let legs = w.legs(&group_request(&grp(1), json!({})));
    assert_eq!(
        summary(&legs),
        ["SIP:d1", "SIP:d2", "SIP:d5", "SIP:d3", "SIP:d4"]
    );
}

#[test]
fn group_reached_twice_is_skipped() {
    // g1 → [g2, g3]; g3 → [g2, d3]; g2 → [d1, d2] with a non-substitute forward.
    let w = World::new(vec![
        device(1, json!({})),
        device(2, json!({})),
        device(3, json!({})),
        group(
            2,
            json!({ dev(1): {"weight": 1}, dev(2): {"weight": 2} }),
            json!({"call_forward": cf("5552000", json!({}))}),
        ),
        group(
            3,
            json!({ grp(2): {"type": "group", "weight": 1}, dev(3): {"weight": 2} }),
            json!({}),
        ),
        group(
            1,
            json!({ grp(2): {"type": "group", "weight": 1}, grp(3): {"type": "group", "weight": 2} }),
            json!({}),
        ),
    ])
    .registered(&["d1", "d2", "d3"]);
    let legs = w.legs(&group_request(&grp(1), json!({})));
    assert_eq!(
        summary(&legs),
        ["SIP:d1", "SIP:d2", "FWD:5552000", "SIP:d3"]
    );
    assert_eq!(legs_of(&legs, &grp(2)).len(), 1);
    assert_eq!(ccv(&legs[2], "Authorizing-Type"), Some("group"));
}

#[test]
fn group_cycle_terminates_and_gives_each_device_once() {
    // gA = g1 → [d1, g2]; gB = g2 → [d2, g1].
    let w = World::new(vec![
        device(1, json!({})),
        device(2, json!({})),
        group(
            1,
            json!({ dev(1): {"weight": 1}, grp(2): {"type": "group", "weight": 2} }),
            json!({}),
        ),
        group(
            2,
            json!({ dev(2): {"weight": 1}, grp(1): {"type": "group", "weight": 2} }),
            json!({}),
        ),
    ])
    .registered(&["d1", "d2"]);
    assert_eq!(
        w.summary(&group_request(&grp(1), json!({}))),
        ["SIP:d1", "SIP:d2"]
    );
    assert_eq!(
        w.summary(&group_request(&grp(2), json!({}))),
        ["SIP:d2", "SIP:d1"]
    );
    let ring = ring_group_request(json!([
        {"id": grp(1), "endpoint_type": "group"},
        {"id": grp(2), "endpoint_type": "group"}
    ]));
    assert_eq!(w.summary(&ring), ["SIP:d1", "SIP:d2"]);
}

#[test]
fn self_containing_group_terminates() {
    let w = World::new(vec![
        device(1, json!({})),
        group(
            1,
            json!({ grp(1): {"type": "group", "weight": 1}, dev(1): {"weight": 2} }),
            json!({}),
        ),
    ])
    .registered(&["d1"]);
    assert_eq!(w.summary(&group_request(&grp(1), json!({}))), ["SIP:d1"]);
}

#[test]
fn device_reached_twice_in_a_group_gives_legs_once_first_occurrence_wins() {
    // d1 directly (delay 5, timeout 30), again through u1 (delay 9, timeout 40), and again
    // through g2 (delay 7).
    let w = World::new(vec![
        owned_device(1, 1),
        owned_device(2, 1),
        device(3, json!({})),
        user(1, json!({})),
        group(
            2,
            json!({ dev(1): {"weight": 1, "delay": 7}, dev(3): {"weight": 2} }),
            json!({}),
        ),
        group(
            1,
            json!({
                dev(1): {"type": "device", "weight": 1, "delay": 5, "timeout": 30},
                usr(1): {"type": "user", "weight": 2, "delay": 9, "timeout": 40},
                grp(2): {"type": "group", "weight": 3}
            }),
            json!({}),
        ),
    ])
    .registered(&["d1", "d2", "d3"]);
    let legs = w.legs(&group_request(&grp(1), json!({})));
    assert_eq!(summary(&legs), ["SIP:d1", "SIP:d2", "SIP:d3"]);
    assert_eq!(legs_of(&legs, &dev(1)).len(), 1);
    assert_timers(&legs, &dev(1), Some("5"), Some("30"));
    assert_timers(&legs, &dev(2), Some("9"), Some("40"));
    assert_timers(&legs, &dev(3), None, None);
}

#[test]
fn device_reached_twice_in_a_ring_group_gives_legs_once_first_occurrence_wins() {
    let w = World::new(vec![
        owned_device(1, 1),
        device(2, json!({})),
        user(1, json!({})),
    ])
    .registered(&["d1", "d2"]);
    let legs = w.legs(&ring_group_request(json!([
        {"id": dev(2), "endpoint_type": "device", "delay": 10},
        {"id": usr(1), "endpoint_type": "user", "timeout": 15},
        {"id": dev(2), "endpoint_type": "device", "delay": 0, "timeout": 5},
        {"id": dev(1), "endpoint_type": "device", "delay": 3, "timeout": 9}
    ])));
    assert_eq!(summary(&legs), ["SIP:d2", "SIP:d1"]);
    assert_timers(&legs, &dev(2), Some("10"), None);
    assert_timers(&legs, &dev(1), None, Some("15"));
}

// ---------------------------------------------------------------------------------------------
// Ring-group lists
// ---------------------------------------------------------------------------------------------

#[test]
fn ring_group_keeps_list_order_without_sorting_by_delay() {
    let w = World::new(vec![
        device(1, json!({})),
        device(2, json!({})),
        device(3, json!({})),
    ])
    .registered(&["d1", "d2", "d3"]);
    let legs = w.legs(&ring_group_request(json!([
        {"id": dev(3), "endpoint_type": "device", "delay": 10, "timeout": 30},
        {"id": dev(1), "endpoint_type": "device"},
        {"id": dev(2), "endpoint_type": "device", "delay": 5}
    ])));
    assert_eq!(summary(&legs), ["SIP:d3", "SIP:d1", "SIP:d2"]);
    assert_timers(&legs, &dev(3), Some("10"), Some("30"));
    assert_timers(&legs, &dev(1), None, None);
    assert_timers(&legs, &dev(2), Some("5"), None);
}

#[test]
fn ring_group_users_and_groups_as_members() {
    let w = World::new(vec![
        owned_device(1, 1),
        owned_device(2, 1),
        device(3, json!({})),
        device(4, json!({})),
        device(5, json!({})),
        user(1, json!({})),
        group(
            1,
            json!({ dev(3): {"weight": 1}, dev(4): {"weight": 2} }),
            json!({}),
        ),
    ])
    .registered(&["d1", "d2", "d3", "d4", "d5"]);
    let legs = w.legs(&ring_group_request(json!([
        {"id": usr(1), "endpoint_type": "user", "delay": 2},
        {"id": grp(1), "endpoint_type": "group", "timeout": 25},
        {"id": dev(5)}
    ])));
    assert_eq!(
        summary(&legs),
        ["SIP:d1", "SIP:d2", "SIP:d3", "SIP:d4", "SIP:d5"]
    );
    assert_timers(&legs, &dev(1), Some("2"), None);
    assert_timers(&legs, &dev(2), Some("2"), None);
    // The group member's legs are its members' legs: they carry the group member's timeout.
    assert_timers(&legs, &dev(3), None, Some("25"));
    assert_timers(&legs, &dev(4), None, Some("25"));
    assert_timers(&legs, &dev(5), None, None);
}

/// The rules do not say how a nested member's own timers combine with the enclosing member's:
/// the engine lets the inner member's value win and inherits the outer value otherwise.
#[test]
fn nested_member_timers_override_the_enclosing_members() {
    let w = World::new(vec![
        device(1, json!({})),
        device(2, json!({})),
        group(
            1,
            json!({ dev(1): {"weight": 1, "delay": 1}, dev(2): {"weight": 2} }),
            json!({}),
        ),
    ])
    .registered(&["d1", "d2"]);
    let legs = w.legs(&ring_group_request(json!([
        {"id": grp(1), "endpoint_type": "group", "delay": 6, "timeout": 25}
    ])));
    assert_eq!(summary(&legs), ["SIP:d1", "SIP:d2"]);
    assert_timers(&legs, &dev(1), Some("1"), Some("25"));
    assert_timers(&legs, &dev(2), Some("6"), Some("25"));
}

#[test]
fn ring_group_member_with_unknown_id_is_skipped() {
    let w = World::new(vec![device(1, json!({})), device(2, json!({}))]).registered(&["d1", "d2"]);
    let legs = w.legs(&ring_group_request(json!([
        {"id": id("missing", 1), "endpoint_type": "device"},
        {"id": dev(1), "endpoint_type": "device"},
        {"id": id("missing", 2), "endpoint_type": "user"},
        {"id": id("missing", 3), "endpoint_type": "group"},
        {"id": dev(2), "endpoint_type": "device"}
    ])));
    assert_eq!(summary(&legs), ["SIP:d1", "SIP:d2"]);
}

#[test]
fn ring_group_with_every_member_failing_is_no_endpoints() {
    let w = World::new(vec![
        device(1, dnd()),
        device(2, json!({})), // unregistered, no failover
        device(3, json!({"enabled": false})),
        user(1, json!({})), // no devices, no forward
    ])
    .registered(&["carol"]);
    let req = ring_group_request(json!([
        {"id": id("missing", 1), "endpoint_type": "device"},
        {"id": dev(1), "endpoint_type": "device"},
        {"id": dev(2), "endpoint_type": "device"},
        {"id": dev(3), "endpoint_type": "device"},
        {"id": usr(1), "endpoint_type": "user"},
        {"id": caller_id(), "endpoint_type": "device"}
    ]));
    assert_eq!(w.error(&req), "no_endpoints");
}

#[test]
fn group_with_every_member_failing_is_no_endpoints() {
    let w = World::new(vec![
        device(1, dnd()),
        device(2, json!({})),
        group(
            1,
            json!({ dev(1): {}, dev(2): {}, caller_id(): {}, id("missing", 1): {} }),
            json!({}),
        ),
    ])
    .registered(&["carol"]);
    assert_eq!(w.error(&group_request(&grp(1), json!({}))), "no_endpoints");
}

// ---------------------------------------------------------------------------------------------
// The caller's own device
// ---------------------------------------------------------------------------------------------

fn caller_in_group_world() -> World {
    World::new(vec![
        device(1, json!({})),
        group(
            1,
            json!({ caller_id(): {"weight": 1}, dev(1): {"weight": 2} }),
            json!({}),
        ),
    ])
    .registered(&["carol", "d1"])
}

#[test]
fn caller_device_left_out_of_a_group_unless_can_call_self() {
    let w = caller_in_group_world();
    assert_eq!(w.summary(&group_request(&grp(1), json!({}))), ["SIP:d1"]);
    let legs = w.legs(&group_request(&grp(1), json!({"can_call_self": true})));
    assert_eq!(summary(&legs), ["SIP:carol", "SIP:d1"]);
    assert_eq!(field(&legs[0], "Endpoint-ID"), Some(caller_id().as_str()));
}

#[test]
fn caller_device_left_out_of_a_ring_group_unless_can_call_self() {
    let w = caller_in_group_world();
    let members = json!([
        {"id": caller_id(), "endpoint_type": "device"},
        {"id": dev(1), "endpoint_type": "device"}
    ]);
    assert_eq!(
        w.summary(&ring_request(members.clone(), json!({}))),
        ["SIP:d1"]
    );
    assert_eq!(
        w.summary(&ring_request(members, json!({"can_call_self": true}))),
        ["SIP:carol", "SIP:d1"]
    );
    // Through a group member of the list as well.
    let via_group = json!([{"id": grp(1), "endpoint_type": "group"}]);
    assert_eq!(
        w.summary(&ring_request(via_group.clone(), json!({}))),
        ["SIP:d1"]
    );
    assert_eq!(
        w.summary(&ring_request(via_group, json!({"can_call_self": true}))),
        ["SIP:carol", "SIP:d1"]
    );
}

// ---------------------------------------------------------------------------------------------
// Group call_forward
// ---------------------------------------------------------------------------------------------

fn forwarding_group_world(cf_extra: Value) -> World {
    World::new(vec![
        device(1, json!({})),
        device(2, json!({})),
        group(
            1,
            json!({ dev(1): {"weight": 1}, dev(2): {"weight": 2} }),
            json!({"call_forward": cf("5553000", cf_extra)}),
        ),
    ])
    .registered(&["d1", "d2"])
}

#[test]
fn group_call_forward_with_substitute_gives_only_the_forward_leg() {
    let w = forwarding_group_world(json!({"substitute": true}));
    let legs = w.legs(&group_request(&grp(1), json!({})));
    assert_eq!(summary(&legs), ["FWD:5553000"]);
    assert_eq!(ccv(&legs[0], "Authorizing-ID"), Some(grp(1).as_str()));
    assert_eq!(ccv(&legs[0], "Authorizing-Type"), Some("group"));
    assert_eq!(ccv(&legs[0], "Call-Forward"), Some("true"));
    assert_eq!(field(&legs[0], "Route"), Some("5553000"));
    assert_eq!(timers(&legs[0]), (None, None));

    // A missing substitute means true.
    let w = forwarding_group_world(json!({"substitute": null}));
    assert_eq!(
        w.summary(&group_request(&grp(1), json!({}))),
        ["FWD:5553000"]
    );
}

#[test]
fn group_call_forward_without_substitute_gives_members_then_the_forward_leg() {
    let w = forwarding_group_world(json!({"substitute": false}));
    let legs = w.legs(&group_request(&grp(1), json!({})));
    assert_eq!(summary(&legs), ["SIP:d1", "SIP:d2", "FWD:5553000"]);
    assert_eq!(ccv(&legs[2], "Authorizing-ID"), Some(grp(1).as_str()));
    assert_eq!(ccv(&legs[2], "Authorizing-Type"), Some("group"));
    // A disabled group forward is not used.
    let w = forwarding_group_world(json!({"enabled": false}));
    assert_eq!(
        w.summary(&group_request(&grp(1), json!({}))),
        ["SIP:d1", "SIP:d2"]
    );
}

#[test]
fn group_call_forward_applies_to_a_group_reached_from_a_ring_group() {
    let w = forwarding_group_world(json!({"substitute": true}));
    let legs = w.legs(&ring_group_request(json!([
        {"id": grp(1), "endpoint_type": "group", "delay": 4}
    ])));
    assert_eq!(summary(&legs), ["FWD:5553000"]);
    assert_eq!(timers(&legs[0]), (Some("4"), None));
}

// ---------------------------------------------------------------------------------------------
// Gating, de-duplication, and Endpoint-ID over the list
// ---------------------------------------------------------------------------------------------

#[test]
fn group_member_failing_gating_is_skipped_while_others_ring() {
    let w = World::new(vec![
        device(1, dnd()),
        device(2, json!({})),
        device(3, json!({"enabled": false})),
        owned_device(4, 2),
        owned_device(5, 3),
        user(2, dnd()),
        user(3, json!({})),
        group(
            1,
            json!({
                dev(1): {"weight": 1},
                dev(2): {"weight": 2},
                dev(3): {"weight": 3},
                usr(2): {"type": "user", "weight": 4},
                usr(3): {"type": "user", "weight": 5}
            }),
            json!({}),
        ),
    ])
    .registered(&["d1", "d2", "d3", "d4", "d5"]);
    assert_eq!(
        w.summary(&group_request(&grp(1), json!({}))),
        ["SIP:d2", "SIP:d5"]
    );
    let ring = ring_group_request(json!([
        {"id": dev(1), "endpoint_type": "device"},
        {"id": dev(2), "endpoint_type": "device"},
        {"id": dev(3), "endpoint_type": "device"},
        {"id": usr(2), "endpoint_type": "user"},
        {"id": usr(3), "endpoint_type": "user"}
    ]));
    assert_eq!(w.summary(&ring), ["SIP:d2", "SIP:d5"]);
}

#[test]
fn loopback_legs_with_the_same_route_keep_their_first_occurrence_across_members() {
    let w = World::new(vec![
        // d1: rings and forwards (S false); d2 and d3 forward (S true) to the same number.
        device(1, json!({"call_forward": cf("5554000", json!({}))})),
        device(
            2,
            json!({"call_forward": cf("5554000", json!({"substitute": true}))}),
        ),
        device(
            3,
            json!({"call_forward": cf("5554000", json!({"substitute": true}))}),
        ),
        device(
            4,
            json!({"call_forward": cf("5554444", json!({"substitute": true}))}),
        ),
        group(
            1,
            json!({ dev(1): {"weight": 1}, dev(2): {"weight": 2}, dev(4): {"weight": 3}, dev(3): {"weight": 4} }),
            json!({}),
        ),
    ])
    .registered(&["d1", "d2", "d3", "d4"]);
    let legs = w.legs(&group_request(&grp(1), json!({})));
    assert_eq!(summary(&legs), ["SIP:d1", "FWD:5554000", "FWD:5554444"]);
    assert_eq!(ccv(&legs[1], "Authorizing-ID"), Some(dev(1).as_str()));
    assert_eq!(ccv(&legs[2], "Authorizing-ID"), Some(dev(4).as_str()));

    let legs = w.legs(&ring_group_request(json!([
        {"id": dev(2), "endpoint_type": "device", "delay": 3},
        {"id": dev(1), "endpoint_type": "device"}
    ])));
    assert_eq!(summary(&legs), ["FWD:5554000", "SIP:d1"]);
    assert_eq!(ccv(&legs[0], "Authorizing-ID"), Some(dev(2).as_str()));
    assert_eq!(timers(&legs[0]), (Some("3"), None));
}

#[test]
fn failover_and_forward_legs_of_different_members_sharing_a_route_keep_the_first() {
    let w = World::new(vec![
        // d1 is unregistered with a failover to 5556000; d2 forwards (S true) there too.
        device(
            1,
            json!({"call_failover": {"enabled": true, "number": "5556000"}}),
        ),
        device(
            2,
            json!({"call_forward": cf("5556000", json!({"substitute": true}))}),
        ),
        device(3, json!({})),
    ])
    .registered(&["d2", "d3"]);
    let legs = w.legs(&ring_group_request(json!([
        {"id": dev(1), "endpoint_type": "device"},
        {"id": dev(2), "endpoint_type": "device"},
        {"id": dev(3), "endpoint_type": "device"}
    ])));
    assert_eq!(summary(&legs), ["FAILOVER:5556000", "SIP:d3"]);
    assert_eq!(ccv(&legs[0], "Authorizing-ID"), Some(dev(1).as_str()));

    let legs = w.legs(&ring_group_request(json!([
        {"id": dev(2), "endpoint_type": "device"},
        {"id": dev(1), "endpoint_type": "device"},
        {"id": dev(3), "endpoint_type": "device"}
    ])));
    assert_eq!(summary(&legs), ["FWD:5556000", "SIP:d3"]);
    assert_eq!(ccv(&legs[0], "Authorizing-ID"), Some(dev(2).as_str()));
}

#[test]
fn group_forward_sharing_a_route_with_a_member_forward_keeps_the_first() {
    let w = World::new(vec![
        device(
            1,
            json!({"call_forward": cf("5555000", json!({"substitute": true}))}),
        ),
        device(2, json!({})),
        group(
            1,
            json!({ dev(1): {"weight": 1}, dev(2): {"weight": 2} }),
            json!({"call_forward": cf("5555000", json!({"substitute": false}))}),
        ),
    ])
    .registered(&["d1", "d2"]);
    let legs = w.legs(&group_request(&grp(1), json!({})));
    assert_eq!(summary(&legs), ["FWD:5555000", "SIP:d2"]);
    assert_eq!(ccv(&legs[0], "Authorizing-ID"), Some(dev(1).as_str()));
}

#[test]
fn endpoint_id_is_built_and_properties_endpoints_ignored() {
    let w = World::new(vec![
        device(1, json!({})),
        device(2, json!({})),
        device(3, json!({})),
        group(1, json!({ dev(3): {} }), json!({})),
    ])
    .registered(&["d1", "d2", "d3"]);
    let list = json!([{"id": dev(2), "endpoint_type": "device", "delay": 5}]);

    let mut req = request(&dev(1));
    req["Properties"]["endpoints"] = list.clone();
    let legs = w.legs(&req);
    assert_eq!(summary(&legs), ["SIP:d1"]);
    assert_eq!(timers(&legs[0]), (None, None));

    let mut req = ring_group_request(list.clone());
    req["Endpoint-ID"] = json!(dev(1));
    assert_eq!(w.summary(&req), ["SIP:d1"]);

    let mut req = group_request(&grp(1), json!({}));
    req["Properties"]["endpoints"] = list;
    assert_eq!(w.summary(&req), ["SIP:d3"]);
}
