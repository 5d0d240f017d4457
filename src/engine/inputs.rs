//! What the engine reads ([`Inputs`]) and what it answers: the build ([`Outcome::Done`]) or
//! what it still needs to read ([`Needs`]). The resolver fills the one and fetches the other.

use super::config;
use super::endpoint_type::Unapplied;
use super::sorted_set::SortedSet;
use crate::build_api::BuildResult;
use crate::documents::Doc;
use crate::registrar::{RegKey, Registration};

/// The engine's hash maps: foldhash, seeded per process, instead of SipHash. Every build
/// looks documents up by id dozens of times; SipHash was a quarter of a device build's
/// instructions. The maps hold what one build read (bounded by the resolver's limits), so a
/// weaker hash costs at worst a slower build, never a worse one.
pub type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// A set with the engine's hasher (see [`HashMap`]).
pub type HashSet<T> = std::collections::HashSet<T, foldhash::fast::RandomState>;

/// Everything the engine may read, gathered by the resolver.
#[derive(Debug, Default, Clone)]
pub struct Inputs {
    /// Documents by id (of the request's account database); `None`: known not to exist.
    pub docs: HashMap<String, Option<Doc>>,
    /// Device ids owned by each user (`attributes/owned`), ascending.
    pub owned: HashMap<String, Vec<String>>,
    /// Registration state by username and realm.
    pub registrations: HashMap<RegKey, Registration>,
    /// `system_config` documents by category; `None`: known not to exist.
    pub system_config: HashMap<String, Option<Doc>>,
    /// Where system configuration values are looked up (node, zone).
    pub scope: config::Scope,
}

impl Inputs {
    /// Records that no configuration document exists (neither the `system_config`
    /// categories nor the account's `configs_*`): every setting takes Kazoo's default.
    pub fn without_config(mut self) -> Self {
        for cat in config::ACCOUNT_CATEGORIES {
            self.docs
                .entry(config::account_doc_id(cat).into_owned())
                .or_insert(None);
        }
        for cat in config::SYSTEM_CATEGORIES {
            self.system_config.entry(cat.to_owned()).or_insert(None);
        }
        self
    }
}

/// What the engine still needs before it can answer.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Needs {
    /// Document ids to open.
    pub docs: SortedSet<String>,
    /// Users whose owned devices to list.
    pub owned: SortedSet<String>,
    /// Registrations to look up.
    pub registrations: SortedSet<RegKey>,
    /// `system_config` categories to open.
    pub system_config: SortedSet<String>,
}

impl Needs {
    /// Nothing is needed.
    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
            && self.owned.is_empty()
            && self.registrations.is_empty()
            && self.system_config.is_empty()
    }
}

/// The result of one engine run.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// The build is decided.
    Done {
        /// The legs, or the Kazoo error.
        result: BuildResult,
        /// The explanation lines, when the request asked for them.
        explain: Vec<String>,
        /// The document features met that the worker does not apply.
        unapplied: Vec<Unapplied>,
    },
    /// More inputs are needed.
    Need(Needs),
}
