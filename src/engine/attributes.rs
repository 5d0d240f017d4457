//! The merged endpoint: a device (or user, or group) document with its attributes merged from
//! the account and the owner, as `kz_attributes` / `kz_endpoint_v4:merge_attributes` do
//! (`kazoo-endpoint-rules.md` section 3).
//!
//! Only the keys that reach a leg are merged; everything else is read from the document
//! itself, which is borrowed, never copied.

use std::cell::OnceCell;

use serde_json::Value;
#[cfg(test)]
use serde_json::json;

use crate::document::{CallerId, Document, Media, Sip, TopLevel, View};
use crate::kz_json::{Object, is_true, merge_non_empty, ne_str, path};
use crate::leg::Flags;

pub use crate::document::Kind;

/// Whose attributes stand in as "the owner" of a device (rules file 3.2).
#[derive(Debug, Clone)]
pub enum Owner<'a> {
    /// No owner (none set, or it failed to load).
    None,
    /// A user document: the `owner_id` user, the single hotdesk user, or, for a user or group
    /// endpoint, the document itself.
    Doc(&'a Document),
    /// Two or more hotdesk users: a synthetic owner that contributes no attribute that reaches
    /// a leg; the users are kept for the presence-id fallback.
    Hotdesk(Vec<&'a Document>),
}

impl<'a> Owner<'a> {
    fn doc(&self) -> Option<&'a Document> {
        match self {
            Owner::Doc(d) => Some(d),
            _ => None,
        }
    }
}

/// A top-level field of a document, chosen from its typed view (`|t| t.ringtones`).
pub type Field = for<'x> fn(&TopLevel<'x>) -> Option<&'x Value>;

/// The view of a missing document (an endpoint without an owner).
static NO_VIEW: View<'static> = View {
    top: TopLevel::EMPTY,
    sip: Sip::EMPTY,
    media: Media::EMPTY,
    caller_id: CallerId::EMPTY,
    kind: None,
    full_name: None,
};

/// An endpoint after the attribute merge. Merged attributes are read leaf by leaf
/// ([`Endpoint::generic_leaf`], [`Endpoint::caller_id_leaf`], …); the few that go on a leg
/// whole are merged the first time they are read.
#[derive(Debug, Clone)]
pub struct Endpoint<'a> {
    id: &'a str,
    kind: Kind,
    doc: &'a Value,
    account: &'a Value,
    owner: Owner<'a>,
    owner_id: Option<&'a str>,
    dnd: bool,
    /// The typed views of the document, the account and the owner (empty without one): the
    /// fields the builder reads, found when each document was read.
    view: &'a View<'a>,
    account_view: &'a View<'a>,
    owner_view: &'a View<'a>,
    prefer_device_caller_id: bool,
    metaflows: OnceCell<Object>,
    formatters: OnceCell<Object>,
    name: OnceCell<Option<String>>,
    outbound_flags: OnceCell<Flags>,
}

impl<'a> Endpoint<'a> {
    /// Merges `doc` (of kind `kind`) with `account` and `owner`.
    pub fn merge(
        id: &'a str,
        kind: Kind,
        doc: &'a Document,
        account: &'a Document,
        owner: Owner<'a>,
    ) -> Self {
        let o = owner.doc();
        let top = &doc.view().top;
        let account_view = account.view();
        let owner_view = o.map_or(&NO_VIEW, |o| o.view());
        let owner_id = match (&owner, kind) {
            (_, Kind::User) => Some(id),
            (Owner::Doc(_), _) => owner_view
                .top
                .id
                .and_then(Value::as_str)
                .or_else(|| ne_str(top.owner_id)),
            _ => ne_str(top.owner_id),
        };
        let dnd = [&account_view.top, top, &owner_view.top]
            .into_iter()
            .any(|t| is_true(t.do_not_disturb.and_then(|d| path(d, &["enabled"]))));
        Self {
            id,
            kind,
            doc: doc.json(),
            account: account.json(),
            owner_id,
            owner,
            dnd,
            prefer_device_caller_id: is_true(account_view.top.prefer_device_caller_id)
                || is_true(
                    account_view
                        .top
                        .caller_id_options
                        .and_then(|c| path(c, &["prefer_device_caller_id"])),
                ),
            view: doc.view(),
            account_view,
            owner_view,
            metaflows: OnceCell::new(),
            formatters: OnceCell::new(),
            name: OnceCell::new(),
            outbound_flags: OnceCell::new(),
        }
    }

    /// The document id.
    pub fn id(&self) -> &'a str {
        self.id
    }

    /// The entity kind.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The document itself.
    pub fn doc(&self) -> &'a Value {
        self.doc
    }

    /// The account document (`null` when missing).
    pub fn account(&self) -> &'a Value {
        self.account
    }

    /// `owner_id` after hotdesk rewriting (a user endpoint is its own owner).
    pub fn owner_id(&self) -> Option<&'a str> {
        self.owner_id
    }

    /// Merged `do_not_disturb.enabled`: any of account, owner, device.
    pub fn dnd(&self) -> bool {
        self.dnd
    }

    /// The typed view of the endpoint's document.
    pub fn view(&self) -> &'a View<'a> {
        self.view
    }

    /// The document's `sip` fields.
    pub fn sip(&self) -> &'a Sip<'a> {
        &self.view.sip
    }

    /// The document's `media` fields.
    pub fn media(&self) -> &'a Media<'a> {
        &self.view.media
    }

    /// The "generic" merge of `key`: account, then endpoint, then owner, non-empty leaves.
    fn generic(&self, f: Field) -> Object {
        merge_non_empty(&[self.account_get(f), f(self.top()), self.owner_get(f)])
    }

    /// A top-level key of the account document.
    pub fn account_get(&self, f: Field) -> Option<&'a Value> {
        f(&self.account_view.top)
    }

    /// A top-level key of the owner document, when there is one.
    pub fn owner_get(&self, f: Field) -> Option<&'a Value> {
        f(&self.owner_view.top)
    }

    /// The endpoint document's top-level fields the builder reads.
    pub fn top(&self) -> &'a TopLevel<'a> {
        &self.view.top
    }

    /// Merged `metaflows` (generic; always written).
    pub fn metaflows(&self) -> &Object {
        self.metaflows.get_or_init(|| {
            let mut m = self.generic(|t| t.metaflows);
            // A null anywhere in it (a cleared key) is no setting; a leg carries none.
            m.retain(|_, v| crate::kz_json::strip_nulls(v));
            m
        })
    }

    /// Merged `name` (owner's full name, else the document's, else the account's).
    pub fn name(&self) -> Option<&str> {
        self.name
            .get_or_init(|| {
                self.owner_view
                    .full_name
                    .clone()
                    .or_else(|| ne_str(self.top().name).map(str::to_owned))
                    .or_else(|| ne_str(self.account_view.top.name).map(str::to_owned))
            })
            .as_deref()
    }

    /// Merged `outbound_flags` as `{static: [...], dynamic: [...]}`.
    pub fn outbound_flags(&self) -> &Flags {
        self.outbound_flags.get_or_init(|| {
            merge_flags([
                self.account_get(|t| t.outbound_flags),
                self.owner_get(|t| t.outbound_flags),
                self.top().outbound_flags,
            ])
        })
    }

    /// One leaf of a "generic" attribute (`caller_id_options`, `ringtones`,
    /// `music_on_hold`, …) as the merge would give it: the owner's non-empty value, else the
    /// endpoint's, else the account's. Reading the leaf directly spares building the merged
    /// object on every build.
    pub fn generic_leaf(&self, f: Field, leaf: &str) -> Option<&'a Value> {
        let non_empty = |o: &'a Value| {
            crate::kz_json::get(o, leaf).filter(|v| !crate::kz_json::is_empty(Some(v)))
        };
        self.owner_get(f)
            .and_then(non_empty)
            .or_else(|| f(self.top()).and_then(non_empty))
            .or_else(|| self.account_get(f).and_then(non_empty))
    }

    /// `caller_id.<attr>.<key>` as the merge of rules file 3.5 gives it, read directly: the
    /// owner wins (its internal name defaulting to its full name) unless the account prefers
    /// the device's caller ID; the account comes last; the device always wins for emergency.
    pub fn caller_id_leaf(&self, attr: &str, key: &str) -> Option<&'a str> {
        let leaf = |view: &'a View<'a>| match view.caller_id.leaf(attr, key) {
            Some(v) => v,
            None => ne_str(view.top.caller_id.and_then(|c| path(c, &[attr, key]))),
        };
        let device = || leaf(self.view);
        if attr == "emergency"
            && let Some(v) = device()
        {
            return Some(v);
        }
        // Without an owner its view is empty: no leaf, no full name.
        let owner = || {
            leaf(self.owner_view).or_else(|| {
                (attr == "internal" && key == "name")
                    .then_some(self.owner_view.full_name.as_deref())
                    .flatten()
            })
        };
        let first = if self.prefer_device_caller_id {
            device().or_else(owner)
        } else {
            owner().or_else(device)
        };
        first.or_else(|| leaf(self.account_view))
    }

    /// `call_waiting.enabled` as the deep merge (account, owner, device; the device wins, a
    /// `null` deletes) gives it.
    pub fn call_waiting_enabled(&self) -> Option<&'a Value> {
        for cw in [
            self.top().call_waiting,
            self.owner_view.top.call_waiting,
            self.account_view.top.call_waiting,
        ]
        .into_iter()
        .flatten()
        {
            if let Some(v) = path(cw, &["enabled"]) {
                return (!v.is_null()).then_some(v);
            }
        }
        None
    }

    /// The merged outbound `formatters` (the generic merge: account, then device, then owner
    /// winning per key; non-empty values only). Empty for nearly every endpoint.
    pub fn formatters(&self) -> &Object {
        self.formatters
            .get_or_init(|| self.generic(|t| t.formatters))
    }

    /// A key of the document itself.
    pub fn get(&self, key: &str) -> Option<&'a Value> {
        self.view.get(self.doc, key)
    }

    /// A path in the document itself.
    pub fn at(&self, keys: &[&str]) -> Option<&'a Value> {
        let (first, rest) = keys.split_first()?;
        path(self.get(first)?, rest)
    }

    /// The owner document, when there is a single one.
    pub fn owner_doc(&self) -> Option<&'a Document> {
        self.owner.doc()
    }

    /// The hotdesk users of a synthetic owner.
    pub fn hotdesk_users(&self) -> &[&'a Document] {
        match &self.owner {
            Owner::Hotdesk(users) => users,
            _ => &[],
        }
    }
}

/// The whole merged objects of rules file 3.4/3.5: the engine reads them leaf by leaf
/// instead; the tests check that both agree.
#[cfg(test)]
impl Endpoint<'_> {
    /// Merged `caller_id` (3.5).
    fn caller_id(&self) -> Object {
        merge_caller_id(self.doc, self.account, self.owner.doc().map(Document::json))
    }

    /// Merged `call_waiting` (account, owner, device; the device wins).
    fn call_waiting(&self) -> Object {
        merge_deep(&[
            self.account.get("call_waiting"),
            self.owner.doc().and_then(|o| o.get("call_waiting")),
            self.doc.get("call_waiting"),
        ])
    }

    /// Merged `ringtones` (generic).
    fn ringtones(&self) -> Object {
        self.generic(|t| t.ringtones)
    }
}

/// A deep merge of objects where later sources win per leaf (`kz_json:merge`), skipping
/// sources that are not objects.
#[cfg(test)]
fn merge_deep(sources: &[Option<&Value>]) -> Object {
    let mut acc = Value::Object(Object::new());
    for s in sources.iter().flatten() {
        if s.is_object() {
            acc = crate::kz_json::merge_right_wins(&acc, s);
        }
    }
    match acc {
        Value::Object(o) => o,
        _ => Object::new(),
    }
}

/// `"First Last"`, `"First"` or `"Last"` of a user document.
pub fn full_name(user: &Value) -> Option<String> {
    let get = |k| ne_str(crate::kz_json::get(user, k));
    crate::document::full_name(get("first_name"), get("last_name"))
}

#[cfg(test)]
/// Rules file 3.5: the owner's caller ID (its internal name filled with its full name), the
/// owner winning unless the account prefers the device's, and the device's emergency caller
/// ID always kept.
fn merge_caller_id(doc: &Value, account: &Value, owner: Option<&Value>) -> Object {
    let owner_cid = owner.map(|o| {
        let mut cid = o.get("caller_id").cloned().unwrap_or_else(|| json!({}));
        if !cid.is_object() {
            cid = json!({});
        }
        if ne_str(path(&cid, &["internal", "name"])).is_none()
            && let Some(name) = full_name(o)
        {
            let internal = cid
                .as_object_mut()
                .expect("object")
                .entry("internal")
                .or_insert_with(|| json!({}));
            if !internal.is_object() {
                *internal = json!({});
            }
            internal
                .as_object_mut()
                .expect("object")
                .insert("name".into(), json!(name));
        }
        cid
    });
    let prefer_device = is_true(account.get("prefer_device_caller_id"))
        || is_true(path(
            account,
            &["caller_id_options", "prefer_device_caller_id"],
        ));
    let (a, e, o) = (
        account.get("caller_id"),
        doc.get("caller_id"),
        owner_cid.as_ref(),
    );
    let mut merged = if prefer_device {
        merge_non_empty(&[a, o, e])
    } else {
        merge_non_empty(&[a, e, o])
    };
    for key in ["number", "name"] {
        if let Some(v) = ne_str(path(doc, &["caller_id", "emergency", key])) {
            let em = merged.entry("emergency").or_insert_with(|| json!({}));
            if let Some(em) = em.as_object_mut() {
                em.insert(key.into(), json!(v));
            }
        }
    }
    merged
}

/// `outbound_flags`: account, owner and device lists concatenated, per kind. A legacy list is
/// read as static flags.
/// `sources`: the `outbound_flags` of the account, the owner and the device.
fn merge_flags(sources: [Option<&Value>; 3]) -> Flags {
    let mut stat = Vec::new();
    let mut dynamic = Vec::new();
    // Flags are strings (flag names, or the names of the fields dynamic flags are read
    // from); anything else in the list (a null, a nested list) is no flag, and would make
    // the leg fail validation.
    let strings = |a: &Vec<Value>| {
        a.iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    for flags in sources.iter().flatten() {
        match flags {
            Value::Array(a) => stat.extend(strings(a)),
            Value::Object(o) => {
                if let Some(Value::Array(a)) = o.get("static") {
                    stat.extend(strings(a));
                }
                if let Some(Value::Array(a)) = o.get("dynamic") {
                    dynamic.extend(strings(a));
                }
            }
            _ => {}
        }
    }
    Flags {
        fixed: stat,
        dynamic,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A document that lives as long as the test (an endpoint borrows its documents).
    fn d(v: &Value) -> &'static Document {
        Box::leak(Box::new(Document::new(v.clone())))
    }

    /// Device `d` merged with `account` and its owner `owner`.
    fn device(doc: &Value, account: &Value, owner: &Value) -> Endpoint<'static> {
        Endpoint::merge("d", Kind::Device, d(doc), d(account), Owner::Doc(d(owner)))
    }

    #[test]
    fn owner_name_fills_internal_caller_id_name() {
        let doc = json!({"_id": "d", "caller_id": {"internal": {"number": "201", "name": "Desk"}}});
        let owner = json!({"_id": "u", "first_name": "Ann", "last_name": "Lee"});
        let account = json!({});
        let ep = device(&doc, &account, &owner);
        assert_eq!(
            ep.caller_id()["internal"],
            json!({"number": "201", "name": "Ann Lee"})
        );
        assert_eq!(ep.name(), Some("Ann Lee"));
        assert_eq!(ep.owner_id, Some("u"));
        let account = json!({"prefer_device_caller_id": true});
        let ep = device(&doc, &account, &owner);
        assert_eq!(ep.caller_id()["internal"]["name"], "Desk");
    }

    #[test]
    fn leaf_readers_agree_with_the_merged_objects() {
        let account = json!({"caller_id": {"external": {"number": "+1415", "name": "Acme"}},
                             "ringtones": {"internal": "acct"}, "call_waiting": {"enabled": false}});
        let doc = json!({"_id": "d", "caller_id": {"internal": {"number": "201", "name": "Desk"},
                         "emergency": {"number": "911x"}}, "ringtones": {"internal": ""},
                         "call_waiting": {"enabled": true}});
        let owner = json!({"_id": "u", "first_name": "Ann", "caller_id": {"emergency": {"number": "u911"}},
                           "ringtones": {"external": "own"}});
        for acct in [account.clone(), {
            let mut a = account.clone();
            a["prefer_device_caller_id"] = json!(true);
            a
        }] {
            let ep = device(&doc, &acct, &owner);
            for attr in ["internal", "external", "emergency"] {
                for key in ["number", "name"] {
                    let merged = ne_str(path(&Value::Object(ep.caller_id().clone()), &[attr, key]))
                        .map(str::to_owned);
                    assert_eq!(
                        ep.caller_id_leaf(attr, key).map(str::to_owned),
                        merged,
                        "{attr}.{key}"
                    );
                }
            }
            for leaf in ["internal", "external"] {
                assert_eq!(
                    ep.generic_leaf(|t| t.ringtones, leaf).cloned(),
                    ep.ringtones().get(leaf).cloned()
                );
            }
            assert_eq!(
                ep.call_waiting_enabled().cloned(),
                ep.call_waiting().get("enabled").cloned()
            );
        }
    }

    #[test]
    fn dnd_is_or_merged_and_call_waiting_device_wins() {
        let doc = json!({"call_waiting": {"enabled": true}});
        let owner =
            json!({"do_not_disturb": {"enabled": true}, "call_waiting": {"enabled": false}});
        let account = json!({});
        let ep = device(&doc, &account, &owner);
        assert!(ep.dnd);
        assert_eq!(ep.call_waiting()["enabled"], json!(true));
    }

    #[test]
    fn flags_concatenate_account_owner_device() {
        let doc = json!({"outbound_flags": ["d"]});
        let owner = json!({"outbound_flags": {"static": ["u"], "dynamic": ["x"]}});
        let account = json!({"outbound_flags": ["a"]});
        let ep = device(&doc, &account, &owner);
        assert_eq!(
            serde_json::to_value(ep.outbound_flags()).unwrap(),
            json!({"static": ["a", "u", "d"], "dynamic": ["x"]})
        );
    }
}
