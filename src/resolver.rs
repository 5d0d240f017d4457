//! The resolver: gathers what a build needs and runs the engine.
//!
//! The engine names what it is missing; the resolver fetches it, one batched read per
//! expansion level (level 0: the endpoint, the account and the calling device; level 1: the
//! owners, a user's owned devices, a group's members; …), then asks the registrar about every
//! credentialed device of the build at once, under one deadline. A cold device build is two
//! document reads; a user with N devices is two or three, whatever N.

use crate::build_api::{BuildError, BuildRequest, BuildResult, ErrorCode};
use crate::documents::{Docs, DocumentStore, Owned, StoreError};
use crate::engine::{self, Inputs, Outcome};
use crate::ids::account_db;
use crate::registrar::{RegKey, Registrar, Registration};

/// More rounds than any real configuration needs (nesting is bounded by the visited sets);
/// a guard against a bug turning into a loop.
const MAX_ROUNDS: u32 = 64;

/// A finished build and what it cost.
#[derive(Debug, Clone)]
pub struct Resolution {
    /// The legs, or the error.
    pub result: BuildResult,
    /// Reads sent to the document store (each one batched).
    pub store_reads: u32,
    /// Registrar lookups (each one for all the devices that needed one at that point).
    pub registrar_lookups: u32,
    /// The inputs the final engine run used (the documents read, the registration states).
    pub inputs: Inputs,
    /// The explanation, when the request asked for one.
    pub explain: Vec<String>,
    /// Time spent waiting for the registrar.
    pub registrar_time: std::time::Duration,
}

impl From<StoreError> for BuildError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotReachable(_) => {
                BuildError::new(ErrorCode::DbNotReachable, e.to_string())
            }
            StoreError::Corrupt { .. } => BuildError::new(ErrorCode::Internal, e.to_string()),
        }
    }
}

/// Builds the legs for `req`, reading documents from `store` and registrations from
/// `registrar`.
pub async fn resolve<S, R>(req: &BuildRequest, store: &S, registrar: &R) -> Resolution
where
    S: DocumentStore + Sync,
    R: Registrar + Sync,
{
    let db = account_db(&req.account_id);
    let mut res = Resolution {
        result: Ok(Vec::new()),
        store_reads: 0,
        registrar_lookups: 0,
        inputs: Inputs::default(),
        explain: Vec::new(),
        registrar_time: std::time::Duration::ZERO,
    };
    for _ in 0..MAX_ROUNDS {
        let needs = match engine::build(req, &res.inputs) {
            Outcome::Done(result, explain) => {
                res.result = result;
                res.explain = explain;
                return res;
            }
            Outcome::Need(needs) => needs,
        };
        if !needs.docs.is_empty() || !needs.owned.is_empty() {
            let ids: Vec<String> = needs.docs.into_iter().collect();
            let owners: Vec<String> = needs.owned.into_iter().collect();
            res.store_reads += u32::from(!ids.is_empty()) + u32::from(!owners.is_empty());
            let docs = async {
                if ids.is_empty() {
                    Ok(Docs::new())
                } else {
                    store.open_docs(&db, &ids).await
                }
            };
            let owned = async {
                if owners.is_empty() {
                    Ok(Owned::new())
                } else {
                    store.owned_devices(&db, &owners).await
                }
            };
            let (docs, owned) = tokio::join!(docs, owned);
            let (docs, owned) = match (docs, owned) {
                (Ok(d), Ok(o)) => (d, o),
                (Err(e), _) | (_, Err(e)) => {
                    res.result = Err(e.into());
                    return res;
                }
            };
            // Every id asked for is recorded, so the engine never asks twice.
            for id in ids {
                res.inputs.docs.entry(id).or_insert(None);
            }
            for (id, doc) in docs {
                res.inputs.docs.insert(id, doc);
            }
            for owner in owners {
                let devices = owned.get(&owner).cloned().unwrap_or_default();
                let mut device_ids = Vec::with_capacity(devices.len());
                for doc in devices {
                    if let Some(id) = doc.get("_id").and_then(|v| v.as_str()) {
                        device_ids.push(id.to_owned());
                        res.inputs.docs.insert(id.to_owned(), Some(doc.clone()));
                    }
                }
                res.inputs.owned.insert(owner, device_ids);
            }
        } else {
            let keys: Vec<RegKey> = needs.registrations.into_iter().collect();
            res.registrar_lookups += 1;
            let asked = std::time::Instant::now();
            let states = registrar.lookup(&keys).await;
            res.registrar_time += asked.elapsed();
            for k in keys {
                let state = states.get(&k).copied().unwrap_or(Registration::Unknown);
                res.inputs.registrations.insert(k, state);
            }
        }
    }
    res.result = Err(BuildError::new(
        ErrorCode::Internal,
        "the build did not settle; this is a bug",
    ));
    res
}
