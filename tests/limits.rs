//! What a build may cost: nesting is not limited as such, the work is (documents read, legs
//! returned), and a build over a bound is a clear `internal` error naming the bound.

mod common;
use common::*;

use kz_endpoint::build_api::{ErrorCode, Identity};
use kz_endpoint::documents::MemoryStore;
use kz_endpoint::handler::handle_with;
use kz_endpoint::registrar::GivenRegistrations;
use kz_endpoint::resolver::Limits;
use serde_json::{Value, json};

/// Groups 1..=depth, each holding the next; the last holds device 1.
fn chain(depth: u32) -> Vec<Value> {
    let mut docs: Vec<Value> = (1..depth)
        .map(|n| group(n, json!({ grp(n + 1): {"type": "group"} }), json!({})))
        .collect();
    docs.push(group(
        depth,
        json!({ dev(1): {"type": "device"} }),
        json!({}),
    ));
    docs.push(device(1, json!({"sip": {"ip": "10.0.0.1"}})));
    docs
}

/// Builds `req` with `limits` on a thread with a tokio worker's stack (2 MiB), so a build
/// that would overflow the worker's stack overflows here too.
fn build_on_worker_stack(
    docs: Vec<Value>,
    req: Value,
    limits: Limits,
) -> kz_endpoint::build_api::BuildResult {
    std::thread::Builder::new()
        .stack_size(2 * 1024 * 1024)
        .spawn(move || {
            let mut all = vec![account(), caller_device()];
            all.extend(docs);
            let store = MemoryStore::new(all);
            let registrar = GivenRegistrations::new([], false);
            let body = req.as_object().unwrap().clone();
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            rt.block_on(handle_with(
                &body,
                &store,
                &registrar,
                &Identity::new("test@host"),
                &limits,
            ))
            .result
        })
        .unwrap()
        .join()
        .expect("the build thread did not crash")
}

#[test]
fn a_chain_of_a_hundred_nested_groups_builds() {
    let w = World::new(chain(100));
    assert_eq!(w.summary(&request(&grp(1))), ["SIP:d1"]);
}

#[test]
fn the_deepest_chain_the_default_limit_allows_fits_a_worker_stack() {
    // 2497 groups + the device + the account + the caller: at the limit of 2500 documents.
    let depth = Limits::DEFAULT_MAX_DOCUMENTS as u32 - 3;
    let legs =
        build_on_worker_stack(chain(depth), request(&grp(1)), Limits::default()).expect("legs");
    assert_eq!(summary(&legs), ["SIP:d1"]);
}

#[test]
fn a_build_over_the_document_limit_names_the_limit() {
    let limits = Limits {
        max_documents: 50,
        ..Limits::default()
    };
    let e = build_on_worker_stack(chain(100), request(&grp(1)), limits).unwrap_err();
    assert_eq!(e.code, ErrorCode::Internal);
    assert!(
        e.message
            .starts_with("the build needs more than 50 documents (--max-documents)"),
        "{}",
        e.message
    );
    // A user whose devices alone pass the limit.
    let mut docs: Vec<Value> = (1..=60)
        .map(|n| device(n, json!({"owner_id": usr(1), "sip": {"ip": "10.0.0.1"}})))
        .collect();
    docs.push(user(1, json!({})));
    let e = build_on_worker_stack(docs, request(&usr(1)), limits).unwrap_err();
    assert_eq!(e.code, ErrorCode::Internal);
    assert!(e.message.contains("(--max-documents)"), "{}", e.message);
}

#[test]
fn a_build_over_the_leg_limit_names_the_limit() {
    let members: serde_json::Map<String, Value> = (1..=20)
        .map(|n| (dev(n), json!({"type": "device"})))
        .collect();
    let mut docs: Vec<Value> = (1..=20)
        .map(|n| device(n, json!({"sip": {"ip": "10.0.0.1"}})))
        .collect();
    docs.push(group(1, Value::Object(members), json!({})));
    let limits = Limits {
        max_legs: 19,
        ..Limits::default()
    };
    let e = build_on_worker_stack(docs.clone(), request(&grp(1)), limits).unwrap_err();
    assert_eq!(e.code, ErrorCode::Internal);
    assert_eq!(
        e.message,
        "the build produced 20 legs, over the limit of 19 (--max-legs)"
    );
    let limits = Limits {
        max_legs: 20,
        ..Limits::default()
    };
    let legs = build_on_worker_stack(docs, request(&grp(1)), limits).expect("legs");
    assert_eq!(legs.len(), 20);
}

#[test]
fn a_cycle_of_groups_is_cut_not_followed() {
    let mut docs = chain(30);
    // The last group also holds the first: a cycle through 30 groups.
    docs[29] = group(
        30,
        json!({ dev(1): {"type": "device"}, grp(1): {"type": "group"} }),
        json!({}),
    );
    let w = World::new(docs);
    assert_eq!(w.summary(&request(&grp(1))), ["SIP:d1"]);
}
