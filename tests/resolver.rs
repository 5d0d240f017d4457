//! The resolver reads each expansion level in one batched request and asks the registrar once.

mod common;
use common::*;

use std::sync::Mutex;

use kz_endpoint::build_api::parse_request;
use kz_endpoint::documents::{Docs, DocumentStore, MemoryStore, Owned, StoreError};
use kz_endpoint::registrar::{GivenRegistrations, RegKey, Registrar, Registration};
use kz_endpoint::resolver::resolve;
use serde_json::{Value, json};
use std::collections::HashMap;

/// A store that records every read it serves.
struct Counting {
    inner: MemoryStore,
    reads: Mutex<Vec<String>>,
}

impl DocumentStore for Counting {
    async fn open_docs(&self, db: &str, ids: &[String]) -> Result<Docs, StoreError> {
        // The configuration every build reads is listed apart: `config` for the
        // `system_config` categories; the account's `configs_*` ride along with its documents.
        let line = if db == "system_config" {
            format!("config {}", ids.join(","))
        } else {
            let docs: Vec<&str> = ids
                .iter()
                .map(String::as_str)
                .filter(|i| !i.starts_with("configs_"))
                .collect();
            format!("docs {}", docs.join(","))
        };
        self.reads.lock().unwrap().push(line);
        self.inner.open_docs(db, ids).await
    }
    async fn owned_devices(&self, db: &str, users: &[String]) -> Result<Owned, StoreError> {
        self.reads
            .lock()
            .unwrap()
            .push(format!("owned {}", users.join(",")));
        self.inner.owned_devices(db, users).await
    }
}

struct CountingRegistrar {
    inner: GivenRegistrations,
    calls: Mutex<Vec<Vec<RegKey>>>,
}

impl Registrar for CountingRegistrar {
    async fn lookup(&self, keys: &[RegKey]) -> HashMap<RegKey, Registration> {
        self.calls.lock().unwrap().push(keys.to_vec());
        self.inner.lookup(keys).await
    }
}

fn run(docs: Vec<Value>, req: Value) -> (Vec<String>, Vec<Vec<RegKey>>, usize) {
    let (reads, regs, legs, _) = run_counted(docs, req);
    (reads, regs, legs)
}

/// [`run`], with the number of engine runs.
fn run_counted(docs: Vec<Value>, req: Value) -> (Vec<String>, Vec<Vec<RegKey>>, usize, u32) {
    let world = World::new(docs).registered(&["d1"]);
    let store = Counting {
        inner: MemoryStore::new(world.docs.clone()),
        reads: Mutex::new(Vec::new()),
    };
    let registrar = CountingRegistrar {
        inner: GivenRegistrations::new(world.registered.clone(), false),
        calls: Mutex::new(Vec::new()),
    };
    let req = parse_request(req.as_object().unwrap()).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let res = rt.block_on(resolve(&req, &store, &registrar, &Default::default()));
    let legs = res.result.expect("legs").len();
    assert_eq!(res.store_reads as usize, store.reads.lock().unwrap().len());
    (
        store.reads.into_inner().unwrap(),
        registrar.calls.into_inner().unwrap(),
        legs,
        res.engine_runs,
    )
}

#[test]
fn a_cold_device_build_is_two_reads_one_config_read_and_one_registrar_lookup() {
    let d1 = device(1, json!({"owner_id": usr(1)}));
    let (reads, regs, legs, runs) = run_counted(vec![d1, user(1, json!({}))], request(&dev(1)));
    assert_eq!(legs, 1);
    // The documents and configuration with the owner read right after them, the
    // registrar, then the build itself.
    assert_eq!(runs, 3);
    assert_eq!(
        reads,
        [
            format!("docs {},{},{}", account_id(), caller_id(), dev(1)),
            "config call_command,kazoo_endpoint,media,privacy".to_owned(),
            format!("docs {}", usr(1)),
        ]
    );
    assert_eq!(regs, [vec![RegKey::new("d1", REALM)]]);
}

#[test]
fn a_user_with_many_devices_is_one_owned_read_and_one_registrar_lookup() {
    let mut docs = vec![user(1, json!({}))];
    for n in 1..=10 {
        docs.push(device(n, json!({"owner_id": usr(1)})));
    }
    let (reads, regs, legs) = run(docs, request(&usr(1)));
    assert_eq!(
        legs, 1,
        "only d1 is registered; the others have no failover"
    );
    assert_eq!(reads.len(), 3, "{reads:?}");
    assert_eq!(reads[1], "config call_command,kazoo_endpoint,media,privacy");
    assert_eq!(reads[2], format!("owned {}", usr(1)));
    assert_eq!(regs.len(), 1);
    assert_eq!(regs[0].len(), 10);
}

#[test]
fn a_user_forward_with_substitute_does_not_read_the_devices() {
    let u1 = user(
        1,
        json!({"call_forward": cf("+15550001111", json!({"substitute": true}))}),
    );
    let docs = vec![u1, device(1, json!({"owner_id": usr(1)}))];
    let (reads, regs, legs) = run(docs, request(&usr(1)));
    assert_eq!(legs, 1);
    assert!(reads.iter().all(|r| !r.starts_with("owned")), "{reads:?}");
    assert!(regs.is_empty());
}
