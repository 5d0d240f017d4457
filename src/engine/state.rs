//! The state of one engine run ([`BuildState`]): the call it builds for, what it still needs
//! to read, what it has expanded already, and its explanation. Every input is read through
//! its lookups ([`BuildState::doc`], [`BuildState::owned`], [`BuildState::registration`]),
//! which record a missing input in [`Needs`] and stop that branch with
//! [`Halt::MissingInput`].

use std::collections::BTreeSet;

use serde_json::Value;

use super::attributes::{Endpoint, Kind, Owner};
use super::call::CallContext;
use super::config;
use super::endpoint_type::Unapplied;
use super::explain;
use super::inputs::{HashSet, Inputs, Needs};
use super::legs::{LegBuilder, SameOnEveryLeg};
use crate::build_api::{BuildError, BuildRequest, ErrorCode, Target};
use crate::document::Document;
use crate::ids::is_valid_id;
use crate::kz_json::{ne_str, path};
use crate::registrar::{RegKey, Registration};

/// Why a branch of the expansion stopped.
#[derive(Debug)]
pub(super) enum Halt {
    /// An input is missing; it has been recorded in [`Needs`].
    MissingInput,
    /// The branch failed with a Kazoo error.
    Fail(BuildError),
}

impl From<BuildError> for Halt {
    fn from(e: BuildError) -> Self {
        Halt::Fail(e)
    }
}

/// The result of one branch of the expansion.
pub(super) type Step<T> = Result<T, Halt>;

/// Stops a branch with a Kazoo error.
pub(super) fn fail<T>(code: ErrorCode, message: String) -> Step<T> {
    Err(Halt::Fail(BuildError::new(code, message)))
}

/// The state of one engine run.
pub(super) struct BuildState<'a> {
    call: CallContext<'a>,
    /// What every leg shares, computed once per build.
    same_on_every_leg: SameOnEveryLeg,
    needs: Needs,
    seen_devices: HashSet<&'a str>,
    seen_users: HashSet<&'a str>,
    seen_groups: HashSet<&'a str>,
    /// Explanation lines, when the request asked for them.
    explain: Option<Vec<String>>,
    /// Document features met that the worker does not apply (product rule 8).
    unapplied: BTreeSet<Unapplied>,
}

impl<'a> BuildState<'a> {
    #[inline]
    pub(super) fn new(req: &'a BuildRequest, inputs: &'a Inputs) -> Self {
        Self {
            call: CallContext::new(req, inputs),
            same_on_every_leg: SameOnEveryLeg::default(),
            needs: Needs::default(),
            seen_devices: HashSet::default(),
            seen_users: HashSet::default(),
            seen_groups: HashSet::default(),
            explain: req.explain.then(Vec::new),
            unapplied: BTreeSet::new(),
        }
    }

    /// The call this run builds for.
    pub(super) fn call(&self) -> &CallContext<'a> {
        &self.call
    }

    /// The leg builder of this run.
    pub(super) fn legs(&self) -> LegBuilder<'_, 'a> {
        LegBuilder::new(&self.call, &self.same_on_every_leg)
    }

    /// The run's end: what it still needs (none when it is decided), its explanation lines
    /// and the unapplied features it met.
    /// (Taken by reference: moving the state out would copy it whole.)
    pub(super) fn finish(&mut self) -> (Needs, Vec<String>, Vec<Unapplied>) {
        (
            std::mem::take(&mut self.needs),
            self.explain.take().unwrap_or_default(),
            std::mem::take(&mut self.unapplied).into_iter().collect(),
        )
    }

    /// Nothing is missing so far.
    pub(super) fn nothing_missing(&self) -> bool {
        self.needs.is_empty()
    }

    /// Explanations were asked for.
    pub(super) fn explaining(&self) -> bool {
        self.explain.is_some()
    }

    /// Adds an explanation line (built only when explanations are wanted).
    pub(super) fn note(&mut self, line: impl FnOnce() -> String) {
        if let Some(lines) = &mut self.explain {
            lines.push(line());
        }
    }

    /// Records a document feature the worker does not apply.
    pub(super) fn record_unapplied(&mut self, feature: Unapplied) {
        self.unapplied.insert(feature);
    }

    /// Marks a device as rung; false when it was rung already in this build.
    pub(super) fn first_ring_of(&mut self, device_id: &'a str) -> bool {
        self.seen_devices.insert(device_id)
    }

    /// The user was expanded already in this build.
    pub(super) fn user_expanded(&self, user_id: &str) -> bool {
        self.seen_users.contains(user_id)
    }

    /// Marks a user as expanded.
    pub(super) fn mark_user_expanded(&mut self, user_id: &'a str) {
        self.seen_users.insert(user_id);
    }

    /// Marks a group as expanded; false when it was expanded already in this build.
    pub(super) fn first_expansion_of_group(&mut self, group_id: &'a str) -> bool {
        self.seen_groups.insert(group_id)
    }

    /// `kind id "name"` of a document that was read, or the bare id.
    pub(super) fn label_of(&self, id: &str) -> String {
        match self.call.inputs().docs.get(id) {
            Some(Some(doc)) => match doc.view().kind {
                Some(kind) => explain::label(kind, id, doc),
                None => id.to_owned(),
            },
            _ => id.to_owned(),
        }
    }

    /// The id of a document as the inputs hold it, so it lives as long as the documents.
    pub(super) fn stored_id(&self, id: &str) -> Option<&'a str> {
        self.call
            .inputs()
            .docs
            .get_key_value(id)
            .map(|(k, _)| k.as_str())
    }

    /// Looks a document up; records it as needed when it has not been fetched.
    pub(super) fn doc(&mut self, id: &str) -> Step<Option<&'a Document>> {
        match self.call.inputs().docs.get(id) {
            Some(Some(d)) => Ok(Some(d.as_ref())),
            Some(None) => Ok(None),
            None => {
                self.needs.docs.insert(id.to_owned());
                Err(Halt::MissingInput)
            }
        }
    }

    pub(super) fn owned(&mut self, user_id: &str) -> Step<&'a [String]> {
        match self.call.inputs().owned.get(user_id) {
            Some(ids) => Ok(ids),
            None => {
                self.needs.owned.insert(user_id.to_owned());
                Err(Halt::MissingInput)
            }
        }
    }

    pub(super) fn registration(&mut self, key: RegKey) -> Step<Registration> {
        match self.call.inputs().registrations.get(&key) {
            Some(r) => Ok(*r),
            None => {
                self.needs.registrations.insert(key);
                Err(Halt::MissingInput)
            }
        }
    }

    /// Level 0: reads the account, the caller, the target and the configuration in one
    /// batch, and sets the call's account and caller. Returns the target's document when
    /// the target is one entity and it exists.
    pub(super) fn open_call(&mut self) -> Step<Option<&'a Document>> {
        let req = self.call.req();
        let account = self.doc(&req.account_id);
        let caller = match req.call.authorizing_id.as_deref() {
            Some(id) if is_valid_id(id) => Some((id, self.doc(id))),
            _ => None,
        };
        let target = match &req.target {
            Target::Endpoint(id) => self.doc(id).ok().flatten(),
            Target::Members(ms) => {
                for m in ms {
                    let _ = self.doc(&m.id);
                }
                None
            }
        };
        // The configuration the builder reads, in the same batch.
        for cat in config::ACCOUNT_CATEGORIES {
            let _ = self.doc(&config::account_doc_id(cat));
        }
        for cat in config::SYSTEM_CATEGORIES {
            if !self.call.inputs().system_config.contains_key(cat) {
                self.needs.system_config.insert(cat.to_owned());
            }
        }
        if !self.needs.is_empty() {
            return Err(Halt::MissingInput);
        }
        self.call.enter_account(account?);
        if let Some((id, Ok(Some(doc)))) = caller {
            // A caller whose owner is not loaded yet makes this run incomplete; the legs
            // built below are discarded, but their needs are collected in the same round.
            let caller = self.endpoint(id, doc).ok();
            self.call.set_caller(caller);
        }
        Ok(target)
    }

    /// The merged endpoint of a document, loading the device's owner (rules file 3.2).
    pub(super) fn endpoint(&mut self, id: &'a str, doc: &'a Document) -> Step<Endpoint<'a>> {
        let kind = doc.view().kind.unwrap_or(Kind::Device);
        let owner = match kind {
            Kind::User => Owner::Doc(doc),
            Kind::Group | Kind::Account => Owner::None,
            Kind::Device => self.device_owner(doc)?,
        };
        Ok(Endpoint::merge(id, kind, doc, self.call.account(), owner))
    }

    fn device_owner(&mut self, doc: &'a Document) -> Step<Owner<'a>> {
        let is_user = |d: &&Document| d.view().kind == Some(Kind::User);
        match device_owner_ids(doc).as_slice() {
            [] => Ok(Owner::None),
            [one] => Ok(self
                .doc(one)?
                .filter(is_user)
                .map_or(Owner::None, Owner::Doc)),
            many => {
                let looked: Vec<_> = many.iter().map(|u| self.doc(u)).collect();
                let mut users = Vec::new();
                for l in looked {
                    users.extend(l?.filter(is_user));
                }
                Ok(Owner::Hotdesk(users))
            }
        }
    }
}

/// The documents the builder reads next after `doc`, which the resolver reads in the next
/// batch without an engine pass in between: a live group's members, a device's owner or
/// hotdesked users (valid ids only; the engine asks for anything else itself).
pub fn read_after(doc: &Document) -> Vec<&str> {
    match doc.view().kind.unwrap_or(Kind::Device) {
        Kind::Group => super::group::nested_member_ids(doc).collect(),
        Kind::Device => device_owner_ids(doc)
            .as_slice()
            .iter()
            .copied()
            .filter(|id| is_valid_id(id))
            .collect(),
        Kind::User | Kind::Account => Vec::new(),
    }
}

/// The users whose attributes a device's are merged with (rules file 3.2): its hotdesked
/// users when it has any, else its `owner_id`. The resolver reads them in the batch after
/// the device's, so that no engine pass runs in between only to ask for them.
fn device_owner_ids(doc: &Document) -> OwnerIds<'_> {
    let top = &doc.view().top;
    let hotdesk: Vec<&str> = top
        .hotdesk
        .and_then(|h| path(h, &["users"]))
        .and_then(Value::as_object)
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    if hotdesk.is_empty() {
        OwnerIds::Owner(ne_str(top.owner_id))
    } else {
        OwnerIds::Hotdesk(hotdesk)
    }
}

/// A device's owner ids ([`device_owner_ids`]): its `owner_id` (no list to allocate on every
/// build), or its hotdesked users.
enum OwnerIds<'a> {
    /// The `owner_id`, if any.
    Owner(Option<&'a str>),
    /// The hotdesked users, at least one.
    Hotdesk(Vec<&'a str>),
}

impl<'a> OwnerIds<'a> {
    /// The ids, in order.
    fn as_slice(&self) -> &[&'a str] {
        match self {
            OwnerIds::Owner(Some(id)) => std::slice::from_ref(id),
            OwnerIds::Owner(None) => &[],
            OwnerIds::Hotdesk(ids) => ids,
        }
    }
}
