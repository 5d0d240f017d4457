//! The resolver: gathers what a build needs and runs the engine.
//!
//! The engine names what it is missing; the resolver fetches it, one batched read per
//! expansion level (level 0: the endpoint, the account and the calling device; level 1: the
//! owners, a user's owned devices, a group's members; …), then asks the registrar about every
//! credentialed device of the build at once, under one deadline. A cold device build is two
//! document reads; a user with N devices is two or three, whatever N.

use crate::build_api::{BuildError, BuildRequest, BuildResult, ErrorCode};
use crate::documents::{Docs, DocumentStore, Owned, StoreError};
use crate::engine::config::{SYSTEM_CONFIG_DB, Scope};
use crate::engine::endpoint_type::Unapplied;
use crate::engine::{self, Inputs, Outcome};
use crate::ids::account_db;
use crate::registrar::{RegKey, Registrar, Registration};

/// What one build may cost. Nesting depth is not limited as such (a chain of a hundred
/// nested groups builds); the work is: the documents a build reads (each level of nesting
/// is one more batched read, and one more engine pass over what was read), and the legs it
/// returns (each is a call the switch starts). A build over either bound is answered with
/// `internal`, naming the bound, instead of tying up the worker or the switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Documents one build may read (devices, users, groups, owners, the account).
    pub max_documents: usize,
    /// Legs one build may return.
    pub max_legs: usize,
}

impl Limits {
    /// The default for [`Limits::max_documents`]: a ring group of 300 users with 5 phones
    /// each, with room to spare.
    pub const DEFAULT_MAX_DOCUMENTS: usize = 2500;
    /// The default for [`Limits::max_legs`].
    pub const DEFAULT_MAX_LEGS: usize = 1000;
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_documents: Self::DEFAULT_MAX_DOCUMENTS,
            max_legs: Self::DEFAULT_MAX_LEGS,
        }
    }
}

/// A finished build and what it cost.
#[derive(Debug, Clone)]
pub struct Resolution {
    /// The legs, or the error. (The request handler moves them to
    /// [`crate::handler::Answered::result`]; what it keeps here is an empty list.)
    pub result: BuildResult,
    /// Reads sent to the document store (each one batched).
    pub store_reads: u32,
    /// Engine runs: one per round of reads, and the final one.
    pub engine_runs: u32,
    /// Registrar lookups (each one for all the devices that needed one at that point).
    pub registrar_lookups: u32,
    /// The inputs the final engine run used (the documents read, the registration states).
    pub inputs: Inputs,
    /// The explanation, when the request asked for one.
    pub explain: Vec<String>,
    /// Document features the build met and did not apply (product rule 8).
    pub unapplied: Vec<Unapplied>,
    /// Time spent waiting for the registrar.
    pub registrar_time: std::time::Duration,
}

fn too_many_documents(limits: &Limits, read: usize) -> BuildError {
    BuildError::new(
        ErrorCode::Internal,
        format!(
            "the build needs more than {} documents (--max-documents); not built after reading {read}",
            limits.max_documents
        ),
    )
}

impl From<StoreError> for BuildError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotReachable(_) | StoreError::Refused(_) => {
                BuildError::new(ErrorCode::DbNotReachable, e.to_string())
            }
            StoreError::Corrupt { .. } => BuildError::new(ErrorCode::Internal, e.to_string()),
            StoreError::NoDatabase(db) => BuildError::new(
                ErrorCode::NotFound,
                format!(
                    "no database {db} in the document store: the account is not in it \
                     (is the store the cluster's?)"
                ),
            ),
        }
    }
}

/// An account configuration document (`configs_<category>`): read by every build, not
/// counted against [`Limits::max_documents`].
fn is_config_doc(id: &str) -> bool {
    id.starts_with("configs_")
}

/// Records a batch's answer in `known`: the documents `answer` holds, and every other id of
/// `asked` as not existing (an id known already keeps what it had, unless answered). The
/// first batch's answer becomes the map itself, each id hashed once rather than twice.
///
/// Room for every id asked is made first: an answer without some of them (a `system_config`
/// database that does not exist answers none) would otherwise grow the map as they go in,
/// rehashing it each time.
fn record(known: &mut Docs, asked: impl ExactSizeIterator<Item = String>, mut answer: Docs) {
    if known.is_empty() {
        answer.reserve(asked.len().saturating_sub(answer.len()));
        for id in asked {
            answer.entry(id).or_insert(None);
        }
        *known = answer;
        return;
    }
    known.reserve(asked.len());
    for id in asked {
        known.entry(id).or_insert(None);
    }
    known.extend(answer);
}

/// The documents read that count against [`Limits::max_documents`].
fn counted_docs(inputs: &Inputs) -> usize {
    let config = crate::engine::config::ACCOUNT_DOC_IDS
        .iter()
        .filter(|id| inputs.docs.contains_key(**id))
        .count();
    inputs.docs.len() - config
}

/// Builds the legs for `req`, reading documents from `store` and registrations from
/// `registrar`, within `limits`, with system configuration looked up in the default scope
/// (no node section, zone `local`).
pub async fn resolve<S, R>(
    req: &BuildRequest,
    store: &S,
    registrar: &R,
    limits: &Limits,
) -> Resolution
where
    S: DocumentStore + Sync,
    R: Registrar + Sync,
{
    resolve_scoped(req, store, registrar, limits, &Scope::default()).await
}

/// [`resolve`], with system configuration values looked up for `scope`'s node and zone.
pub async fn resolve_scoped<S, R>(
    req: &BuildRequest,
    store: &S,
    registrar: &R,
    limits: &Limits,
    scope: &Scope,
) -> Resolution
where
    S: DocumentStore + Sync,
    R: Registrar + Sync,
{
    let db = account_db(&req.account_id);
    let mut res = Resolution {
        result: Ok(Vec::new()),
        store_reads: 0,
        engine_runs: 0,
        registrar_lookups: 0,
        inputs: Inputs {
            scope: scope.clone(),
            ..Inputs::default()
        },
        explain: Vec::new(),
        unapplied: Vec::new(),
        registrar_time: std::time::Duration::ZERO,
    };
    loop {
        res.engine_runs += 1;
        let needs = match engine::build(req, &res.inputs) {
            Outcome::Done {
                result,
                explain,
                unapplied,
            } => {
                res.result = match result {
                    Ok(legs) if legs.len() > limits.max_legs => Err(BuildError::new(
                        ErrorCode::Internal,
                        format!(
                            "the build produced {} legs, over the limit of {} (--max-legs)",
                            legs.len(),
                            limits.max_legs
                        ),
                    )),
                    other => other,
                };
                res.explain = explain;
                res.unapplied = unapplied;
                return res;
            }
            Outcome::Need(needs) => needs,
        };
        // Every round must learn something new; one that would not is a bug, not a loop.
        let known = (
            res.inputs.docs.len(),
            res.inputs.owned.len(),
            res.inputs.registrations.len(),
            res.inputs.system_config.len(),
        );
        if !needs.docs.is_empty() || !needs.owned.is_empty() || !needs.system_config.is_empty() {
            let mut ids: Vec<String> = needs.docs.into_vec();
            let mut owners: Vec<String> = needs.owned.into_vec();
            // The configuration categories are read beside the first batch of documents.
            let mut cats: Vec<String> = needs.system_config.into_vec();
            // A group's members, and a device's owner, are read as soon as the group or
            // device is, without an engine pass in between (`engine::read_after`): a chain of
            // N nested groups is N reads and a few passes, not N passes over an ever deeper
            // chain, and a device's build does not run the engine once only to learn that it
            // needs the owner.
            while !ids.is_empty() || !owners.is_empty() || !cats.is_empty() {
                let config_ids = ids.iter().filter(|i| is_config_doc(i)).count();
                let wanted = counted_docs(&res.inputs) + ids.len() - config_ids;
                if wanted > limits.max_documents {
                    res.result = Err(too_many_documents(limits, counted_docs(&res.inputs)));
                    return res;
                }
                res.store_reads += u32::from(!ids.is_empty())
                    + u32::from(!owners.is_empty())
                    + u32::from(!cats.is_empty());
                let docs = async {
                    if ids.is_empty() {
                        Ok(Docs::default())
                    } else {
                        store.open_docs(&db, &ids).await
                    }
                };
                let owned = async {
                    if owners.is_empty() {
                        Ok(Owned::default())
                    } else {
                        store.owned_devices(&db, &owners).await
                    }
                };
                let system = async {
                    if cats.is_empty() {
                        Ok(Docs::default())
                    } else {
                        // No `system_config` database: every key has Kazoo's default.
                        match store.open_docs(SYSTEM_CONFIG_DB, &cats).await {
                            Err(StoreError::NoDatabase(_)) => Ok(Docs::default()),
                            other => other,
                        }
                    }
                };
                let (docs, owned, system) = tokio::join!(docs, owned, system);
                let (docs, owned, system) = match (docs, owned, system) {
                    (Ok(d), Ok(o), Ok(c)) => (d, o, c),
                    (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
                        res.result = Err(e.into());
                        return res;
                    }
                };
                // Every id asked for is recorded, so the engine never asks twice: what the
                // store did not answer is known not to exist.
                record(&mut res.inputs.system_config, cats.drain(..), system);
                let mut members = engine::SortedSet::default();
                for d in docs.values().flatten() {
                    members.extend(engine::read_after(d).into_iter().map(str::to_owned));
                }
                record(&mut res.inputs.docs, ids.drain(..), docs);
                for owner in owners.drain(..) {
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
                if counted_docs(&res.inputs) > limits.max_documents {
                    res.result = Err(too_many_documents(limits, counted_docs(&res.inputs)));
                    return res;
                }
                ids = members
                    .into_iter()
                    .filter(|id| !res.inputs.docs.contains_key(id))
                    .collect();
            }
        } else if !needs.registrations.is_empty() {
            let keys: Vec<RegKey> = needs.registrations.into_vec();
            res.registrar_lookups += 1;
            let asked = std::time::Instant::now();
            let states = registrar.lookup(&keys).await;
            res.registrar_time += asked.elapsed();
            for k in keys {
                let state = states.get(&k).copied().unwrap_or(Registration::Unknown);
                res.inputs.registrations.insert(k, state);
            }
        }
        let now = (
            res.inputs.docs.len(),
            res.inputs.owned.len(),
            res.inputs.registrations.len(),
            res.inputs.system_config.len(),
        );
        if now == known {
            res.result = Err(BuildError::new(
                ErrorCode::Internal,
                "the build did not settle (it asked again for what it had); this is a bug",
            ));
            return res;
        }
    }
}
