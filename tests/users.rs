//! Users (`product-rules.md` section 4): gating on the user, the user's forward, the owned
//! devices in order, hotdesk, skipped devices and the user failover rules.

mod common;
use common::*;

use std::sync::Mutex;

use kz_endpoint::build_api::BuildResult;
use kz_endpoint::documents::{Docs, DocumentStore, MemoryStore, Owned, StoreError};
use kz_endpoint::kz_json::Object;
use kz_endpoint::leg::Leg;
use kz_endpoint::registrar::{GivenRegistrations, RegKey, Registration};
use serde_json::{Value, json};

const FWD: &str = "+15551234567";
const USER_FAILOVER: &str = "2000";
const DEVICE_FAILOVER: &str = "3000";

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// A [`MemoryStore`] that records every read.
struct RecordingStore {
    inner: MemoryStore,
    opened: Mutex<Vec<String>>,
    owned_reads: Mutex<Vec<String>>,
}

impl RecordingStore {
    fn new(docs: Vec<Value>) -> Self {
        Self {
            inner: MemoryStore::new(docs),
            opened: Mutex::new(Vec::new()),
            owned_reads: Mutex::new(Vec::new()),
        }
    }
}

impl DocumentStore for RecordingStore {
    async fn open_docs(&self, db: &str, ids: &[String]) -> Result<Docs, StoreError> {
        self.opened.lock().unwrap().extend(ids.iter().cloned());
        self.inner.open_docs(db, ids).await
    }

    async fn owned_devices(&self, db: &str, user_ids: &[String]) -> Result<Owned, StoreError> {
        self.owned_reads
            .lock()
            .unwrap()
            .extend(user_ids.iter().cloned());
        self.inner.owned_devices(db, user_ids).await
    }
}

/// Runs `req` with the account, the caller device and `docs`, a registration state per SIP
/// username (account realm; unlisted users unregistered), checked as [`run`] checks it.
fn build_with(
    docs: Vec<Value>,
    states: &[(&str, Registration)],
    req: &Value,
) -> (BuildResult, RecordingStore) {
    let mut all = vec![account(), caller_device()];
    all.extend(docs);
    let store = RecordingStore::new(all);
    let registrar = GivenRegistrations::with_states(
        states.iter().map(|(u, s)| (RegKey::new(*u, REALM), *s)),
        false,
    );
    let result = run(&store, &registrar, req).result;
    (result, store)
}

fn legs_with(docs: Vec<Value>, states: &[(&str, Registration)], req: &Value) -> Vec<Object> {
    match build_with(docs, states, req).0 {
        Ok(legs) => legs.iter().map(Leg::to_object).collect(),
        Err(e) => panic!("expected legs, got {e}"),
    }
}

fn ccv(leg: &Object) -> &Object {
    leg["Custom-Channel-Vars"].as_object().expect("CCV object")
}

/// A request for user `n` from the cf_user callflow module.
fn user_request(n: u32) -> Value {
    with(
        request(&usr(n)),
        json!({"Properties": {"source": "cf_user"}}),
    )
}

/// Device `n` owned by user `owner`.
fn owned(n: u32, owner: u32, extra: Value) -> Value {
    device(n, with(json!({"owner_id": usr(owner)}), extra))
}

fn call_failover(number: &str) -> Value {
    json!({"enabled": true, "number": number})
}

fn assert_loopback(leg: &Object, route: &str, failover: bool, authorizing: &str) {
    assert_eq!(leg["Invite-Format"], "loopback", "{leg:?}");
    assert_eq!(leg["Route"], route);
    assert_eq!(ccv(leg)["Call-Forward"], "true");
    assert_eq!(ccv(leg)["Authorizing-ID"], json!(authorizing));
    if failover {
        assert_eq!(ccv(leg)["Is-Failover"], json!(true), "{leg:?}");
    } else {
        assert!(ccv(leg).get("Is-Failover").is_none(), "{leg:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Gating on the user
// ---------------------------------------------------------------------------------------------

#[test]
fn disabled_user_is_endpoint_disabled() {
    let w = World::new(vec![
        user(1, json!({"enabled": false})),
        owned(1, 1, json!({})),
    ])
    .registered(&["d1"]);
    assert_eq!(w.error(&user_request(1)), "endpoint_disabled");
}

#[test]
fn user_dnd_is_do_not_disturb() {
    let w = World::new(vec![
        user(1, json!({"do_not_disturb": {"enabled": true}})),
        owned(1, 1, json!({})),
        owned(2, 1, json!({})),
    ])
    .registered(&["d1", "d2"]);
    assert_eq!(w.error(&user_request(1)), "do_not_disturb");
}

#[test]
fn user_gating_runs_before_the_user_forward() {
    let w = World::new(vec![user(
        1,
        json!({
            "do_not_disturb": {"enabled": true},
            "call_forward": cf(FWD, json!({"substitute": true}))
        }),
    )]);
    assert_eq!(w.error(&user_request(1)), "do_not_disturb");
}

#[test]
fn deleted_user_is_endpoint_deleted() {
    let w = World::new(vec![
        user(1, json!({"pvt_deleted": true})),
        owned(1, 1, json!({})),
    ])
    .registered(&["d1"]);
    assert_eq!(w.error(&user_request(1)), "endpoint_deleted");
}

/// Engine choice (the rules file, v5): the user endpoint is its own owner, so a call whose
/// `Owner-ID` is that user is an owner-called-self.
#[test]
fn calling_ones_own_user_is_owner_called_self() {
    let w = World::new(vec![user(1, json!({})), owned(1, 1, json!({}))]).registered(&["d1"]);
    let req = with(user_request(1), json!({"Call": {"Owner-ID": usr(1)}}));
    assert_eq!(w.error(&req), "owner_called_self");
    let allowed = with(req, json!({"Properties": {"can_call_self": true}}));
    assert_eq!(w.summary(&allowed), ["SIP:d1"]);
}

// ---------------------------------------------------------------------------------------------
// The user's forward
// ---------------------------------------------------------------------------------------------

/// `cf_active` and `S` on the user: only the user's forward leg, and the owned devices are not
/// looked up (no `attributes/owned` read, no device document opened).
#[test]
fn user_forward_with_substitute_gives_only_the_user_fwd_and_reads_no_devices() {
    let docs = vec![
        user(
            1,
            json!({"call_forward": cf(FWD, json!({"substitute": true}))}),
        ),
        owned(1, 1, json!({})),
        owned(
            2,
            1,
            json!({"call_forward": cf("+1777", json!({"substitute": true}))}),
        ),
    ];
    let reg = [
        ("d1", Registration::Registered),
        ("d2", Registration::Registered),
    ];
    let (result, store) = build_with(docs.clone(), &reg, &user_request(1));
    let legs: Vec<_> = result.expect("legs").iter().map(Leg::to_object).collect();
    assert_eq!(summary(&legs), [format!("FWD:{FWD}")]);
    assert_loopback(&legs[0], FWD, false, &usr(1));
    assert!(
        store.owned_reads.lock().unwrap().is_empty(),
        "the owned devices were looked up: {:?}",
        store.owned_reads.lock().unwrap()
    );
    let opened = store.opened.lock().unwrap();
    assert!(
        !opened.contains(&dev(1)) && !opened.contains(&dev(2)),
        "a device document was opened: {opened:?}"
    );
    drop(opened);
    // The same user without the forward: the devices ring (so the check above is meaningful).
    let mut docs = docs;
    docs[0] = user(1, json!({}));
    let (result, store) = build_with(docs, &reg, &user_request(1));
    assert_eq!(
        summary(&result.expect("legs")),
        ["SIP:d1".to_owned(), "FWD:+1777".to_owned()]
    );
    assert_eq!(*store.owned_reads.lock().unwrap(), [usr(1)]);
}

/// A missing `substitute` on the user's forward counts as true.
#[test]
fn user_forward_missing_substitute_counts_as_true() {
    let w = World::new(vec![
        user(1, json!({"call_forward": {"enabled": true, "number": FWD}})),
        owned(1, 1, json!({})),
    ])
    .registered(&["d1"]);
    assert_eq!(w.summary(&user_request(1)), [format!("FWD:{FWD}")]);
}

/// A user forward with substitute false: the device legs, then one user FWD leg.
#[test]
fn user_forward_without_substitute_gives_device_legs_then_one_fwd() {
    let w = World::new(vec![
        user(1, json!({"call_forward": cf(FWD, json!({}))})),
        owned(1, 1, json!({})),
        owned(2, 1, json!({})),
    ])
    .registered(&["d1", "d2"]);
    let legs = w.legs(&user_request(1));
    assert_eq!(
        summary(&legs),
        [
            "SIP:d1".to_owned(),
            "SIP:d2".to_owned(),
            format!("FWD:{FWD}")
        ]
    );
    assert_loopback(&legs[2], FWD, false, &usr(1));
    // The user's forward is not merged into the devices: no forward CCVs on the SIP legs.
    assert!(ccv(&legs[0]).get("Call-Forward").is_none());
}

/// A user with no devices but an active forward (either S): the user FWD leg.
#[test]
fn user_without_devices_with_forward_gives_fwd() {
    for substitute in [true, false] {
        let w = World::new(vec![user(
            1,
            json!({"call_forward": cf(FWD, json!({"substitute": substitute}))}),
        )]);
        assert_eq!(
            w.summary(&user_request(1)),
            [format!("FWD:{FWD}")],
            "substitute {substitute}"
        );
    }
}

#[test]
fn user_without_devices_and_without_forward_is_no_endpoints() {
    let w = World::new(vec![user(1, json!({}))]);
    assert_eq!(w.error(&user_request(1)), "no_endpoints");
    // A disabled forward is no forward.
    let w = World::new(vec![user(
        1,
        json!({"call_forward": cf(FWD, json!({"enabled": false}))}),
    )]);
    assert_eq!(w.error(&user_request(1)), "no_endpoints");
}

/// All devices produce nothing (unregistered, no failover anywhere), no forward: no_endpoints.
#[test]
fn user_whose_devices_give_nothing_is_no_endpoints() {
    let w = World::new(vec![
        user(1, json!({})),
        owned(1, 1, json!({})),
        owned(2, 1, json!({})),
    ]);
    assert_eq!(w.error(&user_request(1)), "no_endpoints");
}

/// The user's forward honours `direct_calls_only` like a device's.
#[test]
fn user_forward_direct_calls_only_in_a_ring_group() {
    let w = World::new(vec![
        user(
            1,
            json!({"call_forward": cf(FWD, json!({"substitute": true, "direct_calls_only": true}))}),
        ),
        owned(1, 1, json!({})),
    ])
    .registered(&["d1"]);
    assert_eq!(w.summary(&user_request(1)), [format!("FWD:{FWD}")]);
    let rg = ring_group_request(json!([{"id": usr(1), "endpoint_type": "user"}]));
    assert_eq!(w.summary(&rg), ["SIP:d1"]);
}

// ---------------------------------------------------------------------------------------------
// Owned devices: order, hotdesk, skipping
// ---------------------------------------------------------------------------------------------

/// Devices ring in ascending document id, whatever their order in the database, their names or
/// their usernames.
#[test]
fn devices_in_ascending_document_id_order() {
    let named = |prefix: &str, username: &str| {
        with(
            device(
                9,
                json!({"owner_id": usr(1), "sip": {"username": username}}),
            ),
            json!({"_id": id(prefix, 1), "name": format!("Desk {username}")}),
        )
    };
    let w = World::new(vec![
        named("c", "alpha"),
        user(1, json!({})),
        named("a", "zulu"),
        named("b", "mike"),
    ])
    .registered(&["alpha", "zulu", "mike"]);
    let legs = w.legs(&user_request(1));
    assert_eq!(summary(&legs), ["SIP:zulu", "SIP:mike", "SIP:alpha"]);
    let ids: Vec<_> = legs.iter().map(|l| l["Endpoint-ID"].clone()).collect();
    assert_eq!(
        ids,
        [json!(id("a", 1)), json!(id("b", 1)), json!(id("c", 1))]
    );
}

/// Each device is built with the device rules: `[primary, forward]` per device, devices in id
/// order.
#[test]
fn each_device_uses_the_device_table() {
    let w = World::new(vec![
        user(1, json!({})),
        owned(1, 1, json!({"call_forward": cf("+1111", json!({}))})),
        owned(
            2,
            1,
            json!({"call_forward": cf("+1222", json!({"substitute": true}))}),
        ),
        owned(
            3,
            1,
            json!({"call_failover": call_failover(DEVICE_FAILOVER)}),
        ),
        owned(4, 1, json!({})),
    ])
    .registered(&["d1", "d2", "d4"]);
    let legs = w.legs(&with(
        user_request(1),
        json!({"Properties": {"timeout": 25}}),
    ));
    assert_eq!(
        summary(&legs),
        [
            "SIP:d1".to_owned(),
            "FWD:+1111".to_owned(),
            "FWD:+1222".to_owned(),
            format!("FAILOVER:{DEVICE_FAILOVER}"),
            "SIP:d4".to_owned(),
        ]
    );
    assert_loopback(&legs[3], DEVICE_FAILOVER, true, &dev(3));
    for leg in &legs {
        assert_eq!(leg["Endpoint-Timeout"], "25");
    }
}

/// Hotdesk: a device with `hotdesk.users {U2}` is owned by U2, not by its `owner_id`.
#[test]
fn hotdesk_device_belongs_to_the_hotdesk_user() {
    let docs = vec![
        user(1, json!({})),
        user(2, json!({"first_name": "Hot", "last_name": null})),
        owned(1, 1, json!({"hotdesk": {"users": {usr(2): {}}}})),
        owned(2, 1, json!({})),
    ];
    let w = World::new(docs).registered(&["d1", "d2"]);
    let legs = w.legs(&user_request(2));
    assert_eq!(summary(&legs), ["SIP:d1"]);
    assert_eq!(ccv(&legs[0])["Owner-ID"], json!(usr(2)));
    assert_eq!(legs[0]["Outbound-Callee-ID-Name"], "Hot");
    // U1 (the owner_id) does not ring it.
    assert_eq!(w.summary(&user_request(1)), ["SIP:d2"]);
}

/// With a hotdesk user, the `owner_id` user's DND does not apply; the hotdesk user's does.
#[test]
fn hotdesk_owner_for_dnd_is_the_hotdesk_user() {
    let hot = |u2: Value| {
        World::new(vec![
            user(1, json!({"do_not_disturb": {"enabled": true}})),
            u2,
            owned(1, 1, json!({"hotdesk": {"users": {usr(2): {}}}})),
        ])
        .registered(&["d1"])
    };
    let w = hot(user(2, json!({})));
    assert_eq!(w.summary(&user_request(2)), ["SIP:d1"]);
    assert_eq!(w.summary(&request(&dev(1))), ["SIP:d1"]);
    let w = hot(user(2, json!({"do_not_disturb": {"enabled": true}})));
    assert_eq!(w.error(&request(&dev(1))), "do_not_disturb");
}

/// A hotdesk device whose only hotdesk user is someone else is not the owner's at all.
#[test]
fn hotdesked_away_device_leaves_owner_with_nothing() {
    let w = World::new(vec![
        user(1, json!({})),
        user(2, json!({})),
        owned(1, 1, json!({"hotdesk": {"users": {usr(2): {}}}})),
    ])
    .registered(&["d1"]);
    assert_eq!(w.error(&user_request(1)), "no_endpoints");
}

/// Devices that fail gating are skipped: DND, disabled, deleted, the calling device itself.
#[test]
fn devices_failing_gating_are_skipped() {
    let caller = with(caller_device(), json!({"owner_id": usr(1)}));
    let w = World::new(vec![
        caller,
        user(1, json!({})),
        owned(1, 1, json!({"do_not_disturb": {"enabled": true}})),
        owned(2, 1, json!({})),
        owned(3, 1, json!({"enabled": false})),
        owned(4, 1, json!({"pvt_deleted": true})),
        owned(
            5,
            1,
            json!({"call_forward": cf("+1555", json!({"substitute": true}))}),
        ),
    ])
    .registered(&["d1", "d2", "d3", "d4", "carol"]);
    assert_eq!(
        w.summary(&user_request(1)),
        ["SIP:d2".to_owned(), "FWD:+1555".to_owned()]
    );
}

/// Only DND devices: nothing rings.
#[test]
fn user_whose_devices_all_fail_gating_is_no_endpoints() {
    let w = World::new(vec![
        user(1, json!({})),
        owned(1, 1, json!({"do_not_disturb": {"enabled": true}})),
    ])
    .registered(&["d1"]);
    assert_eq!(w.error(&user_request(1)), "no_endpoints");
}

/// A device that is in DND with a forward: skipped, its forward is not used either.
#[test]
fn dnd_device_forward_is_skipped_too() {
    let w = World::new(vec![
        user(1, json!({})),
        owned(
            1,
            1,
            json!({
                "do_not_disturb": {"enabled": true},
                "call_forward": cf("+1555", json!({"substitute": true}))
            }),
        ),
        owned(2, 1, json!({})),
    ])
    .registered(&["d2"]);
    assert_eq!(w.summary(&user_request(1)), ["SIP:d2"]);
}

// ---------------------------------------------------------------------------------------------
// The user's failover target
// ---------------------------------------------------------------------------------------------

fn failover_user() -> Value {
    user(1, json!({"call_failover": call_failover(USER_FAILOVER)}))
}

/// Any registered device: no user FAILOVER leg.
#[test]
fn user_failover_not_used_when_any_device_is_registered() {
    let w = World::new(vec![
        failover_user(),
        owned(1, 1, json!({})),
        owned(2, 1, json!({})),
    ])
    .registered(&["d2"]);
    assert_eq!(w.summary(&user_request(1)), ["SIP:d2"]);
    // Registered and unknown mixed: still no user failover, and no nested one either.
    let legs = legs_with(
        vec![
            failover_user(),
            owned(1, 1, json!({})),
            owned(2, 1, json!({})),
        ],
        &[
            ("d1", Registration::Unknown),
            ("d2", Registration::Registered),
        ],
        &user_request(1),
    );
    assert_eq!(summary(&legs), ["SIP:d1", "SIP:d2"]);
    assert!(legs[0].get("Failover").is_none());
}

/// All devices unregistered: one user FAILOVER leg.
#[test]
fn user_failover_when_all_devices_are_unregistered() {
    let w = World::new(vec![
        failover_user(),
        owned(1, 1, json!({})),
        owned(2, 1, json!({})),
    ]);
    let legs = w.legs(&user_request(1));
    assert_eq!(summary(&legs), [format!("FAILOVER:{USER_FAILOVER}")]);
    assert_loopback(&legs[0], USER_FAILOVER, true, &usr(1));
}

/// The legacy source on the user works the same way.
#[test]
fn user_legacy_failover_when_all_devices_are_unregistered() {
    let w = World::new(vec![
        user(
            1,
            json!({"call_forward": cf(USER_FAILOVER, json!({"enabled": false, "failover": true}))}),
        ),
        owned(1, 1, json!({})),
    ]);
    let legs = w.legs(&user_request(1));
    assert_eq!(summary(&legs), [format!("FAILOVER:{USER_FAILOVER}")]);
    assert_loopback(&legs[0], USER_FAILOVER, true, &usr(1));
}

/// The user FAILOVER leg comes after the device legs and before the user FWD leg.
#[test]
fn user_failover_after_device_legs_before_user_fwd() {
    let w = World::new(vec![
        user(
            1,
            json!({
                "call_failover": call_failover(USER_FAILOVER),
                "call_forward": cf(FWD, json!({}))
            }),
        ),
        owned(
            1,
            1,
            json!({"call_failover": call_failover(DEVICE_FAILOVER)}),
        ),
        owned(2, 1, json!({})),
    ]);
    let legs = w.legs(&user_request(1));
    assert_eq!(
        summary(&legs),
        [
            format!("FAILOVER:{DEVICE_FAILOVER}"),
            format!("FAILOVER:{USER_FAILOVER}"),
            format!("FWD:{FWD}"),
        ]
    );
    assert_loopback(&legs[0], DEVICE_FAILOVER, true, &dev(1));
    assert_loopback(&legs[1], USER_FAILOVER, true, &usr(1));
    assert_loopback(&legs[2], FWD, false, &usr(1));
}

/// The user's FAILOVER and FWD share a number: only the FWD is kept.
#[test]
fn user_failover_same_number_as_user_forward_keeps_only_fwd() {
    let w = World::new(vec![
        user(
            1,
            json!({"call_failover": call_failover(FWD), "call_forward": cf(FWD, json!({}))}),
        ),
        owned(1, 1, json!({})),
    ]);
    let legs = w.legs(&user_request(1));
    assert_eq!(summary(&legs), [format!("FWD:{FWD}")]);
    assert_loopback(&legs[0], FWD, false, &usr(1));
}

/// Only devices that need a registration count: a forward-only device and an IP device do not,
/// so the single unregistered device decides.
#[test]
fn user_failover_counts_only_devices_that_need_a_registration() {
    let w = World::new(vec![
        failover_user(),
        owned(1, 1, json!({"sip": {"ip": "10.1.2.3"}})),
        owned(
            2,
            1,
            json!({"sip": null, "call_forward": cf("+1555", json!({}))}),
        ),
        owned(3, 1, json!({})),
    ]);
    let legs = w.legs(&user_request(1));
    assert_eq!(
        summary(&legs),
        [
            "SIP:d1".to_owned(),
            "FWD:+1555".to_owned(),
            format!("FAILOVER:{USER_FAILOVER}"),
        ]
    );
    assert_eq!(legs[0]["To-IP"], "10.1.2.3");
}

/// No device needs a registration: there is no "all unregistered", so no user failover.
#[test]
fn user_failover_not_used_without_any_device_needing_registration() {
    let w = World::new(vec![
        failover_user(),
        owned(1, 1, json!({"sip": {"ip": "10.1.2.3"}})),
    ]);
    assert_eq!(w.summary(&user_request(1)), ["SIP:d1"]);
    // No devices at all: no failover, no forward: no_endpoints.
    let w = World::new(vec![failover_user()]);
    assert_eq!(w.error(&user_request(1)), "no_endpoints");
}

/// A registered device that fails gating does not count: the rest are unregistered, so the
/// user FAILOVER leg is produced.
#[test]
fn user_failover_ignores_devices_that_failed_gating() {
    let w = World::new(vec![
        failover_user(),
        owned(1, 1, json!({"do_not_disturb": {"enabled": true}})),
        owned(2, 1, json!({})),
    ])
    .registered(&["d1"]);
    assert_eq!(
        w.summary(&user_request(1)),
        [format!("FAILOVER:{USER_FAILOVER}")]
    );
}

/// Some unknown, none registered: no user FAILOVER leg; the user's target is nested as the
/// `Failover` of each unknown device's SIP leg that has no failover of its own.
#[test]
fn user_failover_nested_on_unknown_devices_without_their_own() {
    let req = with(
        user_request(1),
        json!({"Properties": {"timeout": 25, "delay": 3}}),
    );
    let legs = legs_with(
        vec![
            failover_user(),
            owned(1, 1, json!({})),
            owned(
                2,
                1,
                json!({"call_failover": call_failover(DEVICE_FAILOVER)}),
            ),
            owned(3, 1, json!({})),
            owned(4, 1, json!({})),
        ],
        &[
            ("d1", Registration::Unknown),
            ("d2", Registration::Unknown),
            ("d3", Registration::Unregistered),
            ("d4", Registration::Unknown),
        ],
        &req,
    );
    assert_eq!(
        summary(&legs),
        [
            format!("SIP:d1+F:{USER_FAILOVER}"),
            format!("SIP:d2+F:{DEVICE_FAILOVER}"),
            format!("SIP:d4+F:{USER_FAILOVER}"),
        ]
    );
    for (leg, route) in [
        (&legs[0], USER_FAILOVER),
        (&legs[1], DEVICE_FAILOVER),
        (&legs[2], USER_FAILOVER),
    ] {
        assert_eq!(leg["Endpoint-Timeout"], "25");
        let f = leg["Failover"].as_object().expect("nested Failover");
        assert_eq!(f["Invite-Format"], "loopback");
        assert_eq!(f["Route"], route);
        assert_eq!(ccv(f)["Is-Failover"], json!(true));
        assert!(f.get("Endpoint-Timeout").is_none(), "{f:?}");
        assert!(f.get("Endpoint-Delay").is_none(), "{f:?}");
    }
}

/// The same with every device unknown (World::unknown), and a user forward: device legs with
/// the nested user target, then the user FWD; no FAILOVER leg.
#[test]
fn user_failover_nested_when_all_unknown_then_user_fwd() {
    let w = World::new(vec![
        user(
            1,
            json!({
                "call_failover": call_failover(USER_FAILOVER),
                "call_forward": cf(FWD, json!({}))
            }),
        ),
        owned(1, 1, json!({})),
        owned(2, 1, json!({})),
    ])
    .unknown();
    assert_eq!(
        w.summary(&user_request(1)),
        [
            format!("SIP:d1+F:{USER_FAILOVER}"),
            format!("SIP:d2+F:{USER_FAILOVER}"),
            format!("FWD:{FWD}"),
        ]
    );
}

/// Engine choice (rules silent; by analogy with row 7): the user's target is not nested on an
/// unknown device whose own active forward goes to the same number.
#[test]
fn user_failover_not_nested_when_it_is_the_devices_forward_number() {
    let w = World::new(vec![
        failover_user(),
        owned(1, 1, json!({"call_forward": cf(USER_FAILOVER, json!({}))})),
        owned(2, 1, json!({})),
    ])
    .unknown();
    let legs = w.legs(&user_request(1));
    assert_eq!(
        summary(&legs),
        [
            "SIP:d1".to_owned(),
            format!("FWD:{USER_FAILOVER}"),
            format!("SIP:d2+F:{USER_FAILOVER}"),
        ]
    );
    assert!(legs[0].get("Failover").is_none());
}

/// No user failover target: unknown devices keep bare SIP legs.
#[test]
fn unknown_devices_without_any_failover_stay_bare() {
    let w = World::new(vec![user(1, json!({})), owned(1, 1, json!({}))]).unknown();
    let legs = w.legs(&user_request(1));
    assert_eq!(summary(&legs), ["SIP:d1"]);
    assert!(legs[0].get("Failover").is_none());
}

// ---------------------------------------------------------------------------------------------
// De-duplication
// ---------------------------------------------------------------------------------------------

/// Loopback legs with the same `Route` keep their first occurrence.
#[test]
fn duplicate_loopback_routes_keep_the_first_occurrence() {
    // Two devices forwarding to the same number: one FWD, the first device's.
    let w = World::new(vec![
        user(1, json!({})),
        owned(
            1,
            1,
            json!({"call_forward": cf(FWD, json!({"substitute": true}))}),
        ),
        owned(
            2,
            1,
            json!({"call_forward": cf(FWD, json!({"substitute": true}))}),
        ),
        owned(3, 1, json!({})),
    ])
    .registered(&["d3"]);
    let legs = w.legs(&user_request(1));
    assert_eq!(summary(&legs), [format!("FWD:{FWD}"), "SIP:d3".to_owned()]);
    assert_loopback(&legs[0], FWD, false, &dev(1));

    // A device forward and the user forward to the same number: the device's (first) is kept.
    let w = World::new(vec![
        user(1, json!({"call_forward": cf(FWD, json!({}))})),
        owned(1, 1, json!({"call_forward": cf(FWD, json!({}))})),
    ])
    .registered(&["d1"]);
    let legs = w.legs(&user_request(1));
    assert_eq!(summary(&legs), ["SIP:d1".to_owned(), format!("FWD:{FWD}")]);
    assert_loopback(&legs[1], FWD, false, &dev(1));

    // A device FAILOVER leg and the user FAILOVER leg to the same number: the device's is kept.
    let w = World::new(vec![
        user(1, json!({"call_failover": call_failover(USER_FAILOVER)})),
        owned(1, 1, json!({"call_failover": call_failover(USER_FAILOVER)})),
    ]);
    let legs = w.legs(&user_request(1));
    assert_eq!(summary(&legs), [format!("FAILOVER:{USER_FAILOVER}")]);
    assert_loopback(&legs[0], USER_FAILOVER, true, &dev(1));
}

/// A device whose forward substitutes still needs a registration (section 2: it has
/// `sip.username`, no `sip.ip`, a `username` invite format), and it passed gating. When it is
/// registered, "any of them is registered" holds: no user FAILOVER leg.
#[test]
fn user_failover_counts_a_registered_device_that_substitutes() {
    let legs = legs_with(
        vec![
            failover_user(),
            owned(
                1,
                1,
                json!({"call_forward": cf("+1555", json!({"substitute": true}))}),
            ),
            owned(2, 1, json!({})),
        ],
        &[
            ("d1", Registration::Registered),
            ("d2", Registration::Unregistered),
        ],
        &user_request(1),
    );
    assert_eq!(summary(&legs), ["FWD:+1555"]);
}
