//! Explanations: one line per endpoint with the deciding facts and the rule, for every row of
//! the device table, users, groups and gating.

mod common;
use common::*;

use kz_endpoint::documents::MemoryStore;
use kz_endpoint::registrar::GivenRegistrations;
use serde_json::{Value, json};

/// The `Explain` lines of a build (the request asks for them).
fn explain(w: &World, req: Value) -> Vec<String> {
    let req = with(req, json!({"Explain": true}));
    let store = MemoryStore::new(w.docs.clone());
    let registrar = GivenRegistrations::new(w.registered.clone(), w.unknown);
    let handled = run(&store, &registrar, &req);
    handled.reply.json()["Explain"]
        .as_array()
        .expect("an Explain list")
        .iter()
        .map(|l| l.as_str().unwrap().to_owned())
        .collect()
}

fn fwd(number: &str, substitute: bool) -> Value {
    json!({"call_forward": cf(number, json!({"substitute": substitute}))})
}

fn failover(number: &str) -> Value {
    json!({"call_failover": {"enabled": true, "number": number}})
}

fn line(n: u32, facts: &str, legs: &str, row: u32) -> String {
    format!(
        "device {} \"Desk {n}\": {facts} -> {legs} (docs/device-table.md row {row})",
        dev(n)
    )
}

#[test]
fn every_row_of_the_device_table() {
    let r = format!("@{REALM}");
    let cases: Vec<(World, String, String)> = vec![
        (
            World::new(vec![device(1, fwd("+1551", true))]).registered(&["d1"]),
            line(1, "registration not needed (the forward substitutes); forward to +1551 active, substituting; no failover", "forward leg to +1551", 1),
            "result: 1 leg(s): forward leg to +1551".into(),
        ),
        (
            World::new(vec![device(1, fwd("+1552", false))]).registered(&["d1"]),
            line(1, &format!("registered as d1{r}; forward to +1552 active, ringing alongside; no failover"), &format!("SIP leg to d1{r} + forward leg to +1552"), 2),
            format!("result: 2 leg(s): SIP leg to d1{r} + forward leg to +1552"),
        ),
        (
            World::new(vec![device(1, failover("+1553"))]).registered(&["d1"]),
            line(1, &format!("registered as d1{r}; no forward; failover to +1553 (call_failover)"), &format!("SIP leg to d1{r}"), 3),
            format!("result: 1 leg(s): SIP leg to d1{r}"),
        ),
        (
            World::new(vec![device(1, failover("+1554"))]),
            line(1, &format!("not registered (d1{r} has no registration); no forward; failover to +1554 (call_failover)"), "failover leg to +1554", 4),
            "result: 1 leg(s): failover leg to +1554".into(),
        ),
        (
            World::new(vec![device(1, json!({"call_forward": cf("+1555", json!({"substitute": false})), "call_failover": {"enabled": true, "number": "+1565"}}))]),
            line(1, &format!("not registered (d1{r} has no registration); forward to +1555 active, ringing alongside; failover to +1565 (call_failover)"), "failover leg to +1565 + forward leg to +1555", 5),
            "result: 2 leg(s): failover leg to +1565 + forward leg to +1555".into(),
        ),
        (
            World::new(vec![device(1, json!({"call_forward": cf("2000", json!({"enabled": false, "failover": true}))}))]).unknown(),
            line(1, &format!("registration of d1{r} unknown (no registrar answered); forward to 2000 disabled; failover to 2000 (call_forward.failover)"), &format!("SIP leg to d1{r} with failover to 2000"), 6),
            format!("result: 1 leg(s): SIP leg to d1{r} with failover to 2000"),
        ),
        (
            World::new(vec![device(1, json!({"call_forward": cf("+1557", json!({"substitute": false})), "call_failover": {"enabled": true, "number": "+1567"}}))]).unknown(),
            line(1, &format!("registration of d1{r} unknown (no registrar answered); forward to +1557 active, ringing alongside; failover to +1567 (call_failover)"), &format!("SIP leg to d1{r} with failover to +1567 + forward leg to +1557"), 7),
            format!("result: 2 leg(s): SIP leg to d1{r} with failover to +1567 + forward leg to +1557"),
        ),
        (
            World::new(vec![device(1, json!({"sip": null, "call_forward": cf("+1558", json!({"substitute": false}))}))]),
            line(1, "no SIP credentials; forward to +1558 active, ringing alongside; no failover", "forward leg to +1558", 8),
            "result: 1 leg(s): forward leg to +1558".into(),
        ),
        (
            World::new(vec![device(1, json!({"sip": null}))]),
            line(1, "no SIP credentials; no forward; no failover", "no leg", 9),
            format!("result: no_endpoints (endpoint {} has nothing to ring)", dev(1)),
        ),
    ];
    for (i, (w, device_line, result)) in cases.iter().enumerate() {
        assert_eq!(
            explain(w, request(&dev(1))),
            [device_line.clone(), result.clone()],
            "row {}",
            i + 1
        );
    }
}

#[test]
fn forward_reasons_and_registration_free_devices() {
    let d = device(
        1,
        json!({"sip": {"ip": "10.0.0.9"}, "call_forward": cf("+1559", json!({"direct_calls_only": true}))}),
    );
    let w = World::new(vec![d]);
    let req = with(
        request(&dev(1)),
        json!({"Properties": {"source": "cf_ring_group"}}),
    );
    assert_eq!(
        explain(&w, req)[0],
        line(
            1,
            "IP-authenticated (sip.ip): no registration needed; forward to +1559 for direct calls only (this call is not direct); no failover",
            &format!("SIP leg to d1@{REALM}"),
            3
        )
    );
    let w =
        World::new(vec![device(1, json!({"call_forward": cf("", json!({}))}))]).registered(&["d1"]);
    assert!(explain(&w, request(&dev(1)))[0].contains("; forward enabled without a number;"));
}

#[test]
fn gating_says_why_nothing_was_built() {
    let w = World::new(vec![device(
        1,
        json!({"do_not_disturb": {"enabled": true}}),
    )]);
    assert_eq!(
        explain(&w, request(&dev(1))),
        [
            format!(
                "device {} \"Desk 1\": not built: do_not_disturb (has do_not_disturb enabled, set on the device)",
                dev(1)
            ),
            format!(
                "result: do_not_disturb (device {} has do_not_disturb enabled, set on the device)",
                dev(1)
            ),
        ]
    );
}

#[test]
fn users_say_how_their_failover_was_decided() {
    let u = user(
        1,
        json!({"call_failover": {"enabled": true, "number": "+1777"}}),
    );
    let docs = vec![
        u,
        device(1, json!({"owner_id": usr(1)})),
        device(
            2,
            json!({"owner_id": usr(1), "do_not_disturb": {"enabled": true}}),
        ),
    ];
    let lines = explain(&World::new(docs), request(&usr(1)));
    assert_eq!(
        lines,
        [
            format!(
                "user {} \"User 1\": no forward; failover to +1777 (call_failover); owned devices: {}, {}",
                usr(1),
                dev(1),
                dev(2)
            ),
            line(
                1,
                &format!(
                    "not registered (d1@{REALM} has no registration); no forward; no failover"
                ),
                "no leg",
                4
            ),
            format!(
                "device {} \"Desk 2\": skipped: do_not_disturb (has do_not_disturb enabled, set on the device)",
                dev(2)
            ),
            format!(
                "user {} \"User 1\": every device needing a registration is unregistered -> user failover leg to +1777",
                usr(1)
            ),
            "result: 1 leg(s): failover leg to +1777".into(),
        ]
    );
}

#[test]
fn groups_list_their_members_and_duplicates() {
    let g = group(
        1,
        json!({dev(1): {"weight": 2}, dev(2): {"weight": 1}, grp(1): {"type": "group"}}),
        json!({}),
    );
    let docs = vec![
        g,
        device(1, fwd("+1600", true)),
        device(2, fwd("+1600", true)),
    ];
    let lines = explain(&World::new(docs), request(&grp(1)));
    assert_eq!(
        lines[0],
        format!(
            "group {} \"Group 1\": no forward; members by weight: {} (device), {} (device), {} (group)",
            grp(1),
            dev(2),
            dev(1),
            grp(1)
        )
    );
    assert!(
        lines.contains(&format!(
            "group {} \"Group 1\": already expanded, skipped",
            grp(1)
        )),
        "{lines:?}"
    );
    assert!(
        lines.contains(
            &"forward leg to +1600 dropped: an earlier leg already goes to +1600".to_owned()
        ),
        "{lines:?}"
    );
    assert_eq!(
        lines.last().unwrap(),
        "result: 1 leg(s): forward leg to +1600"
    );
}

#[test]
fn no_explanation_unless_asked() {
    let w = World::new(vec![device(1, json!({}))]).registered(&["d1"]);
    let store = MemoryStore::new(w.docs.clone());
    let registrar = GivenRegistrations::new(w.registered.clone(), false);
    let handled = run(&store, &registrar, &request(&dev(1)));
    assert!(handled.reply.json().get("Explain").is_none());
}

#[test]
fn do_not_disturb_says_where_it_was_set() {
    let owner = user(1, json!({"do_not_disturb": {"enabled": true}}));
    let d = device(1, json!({"owner_id": usr(1)}));
    let lines = explain(&World::new(vec![owner, d]), request(&dev(1)));
    assert_eq!(
        lines[0],
        format!(
            "device {} \"Desk 1\": not built: do_not_disturb (has do_not_disturb enabled, set on its owner user {} \"User 1\")",
            dev(1),
            usr(1)
        )
    );
    let mut w = World::new(vec![device(
        1,
        json!({"do_not_disturb": {"enabled": true}}),
    )]);
    for d in &mut w.docs {
        if d["_id"] == account_id() {
            d["do_not_disturb"] = json!({"enabled": true});
        }
    }
    assert_eq!(
        explain(&w, request(&dev(1)))[0],
        format!(
            "device {} \"Desk 1\": not built: do_not_disturb (has do_not_disturb enabled, set on the device and the account)",
            dev(1)
        )
    );
}
