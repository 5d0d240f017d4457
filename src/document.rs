//! A Kazoo document as the builder reads it: its JSON, and a typed view of the fields the
//! builder uses ([`View`]), found once when the document is read.
//!
//! Why a view: a device build reads about fifty fields of four documents (the device, its
//! owner, the account, the caller). Read by key from `serde_json` maps, each read is a linear
//! search of a small object or a SipHash lookup in a large one; three quarters of those reads
//! are the same on every build of a warm document. The view finds each of them in one pass
//! over the document, when it is parsed (by a store, or the cache's parsed tier), and the
//! engine then reads struct fields. The values stay Kazoo's loosely typed JSON (a boolean
//! may be `"true"`): the view says *where* a field is, the engine's rules (`kz_json`) still
//! say what it means.
//!
//! The JSON itself stays whole and reachable ([`Document::json`], and `Deref`): formatters,
//! dynamic flags and explain read fields by name, and captures record documents as they are.

use std::fmt;
use std::ops::Deref;

use serde_json::Value;

use crate::kz_json::{get, ne_str};

/// What kind of entity a document is (its `pvt_type`, with Kazoo's aliases).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `device`, and the `click2call` / `conference` aliases.
    Device,
    /// `user`.
    User,
    /// `group`.
    Group,
    /// `account`: accepted by Kazoo, but it has no leg type.
    Account,
}

impl Kind {
    /// Maps `pvt_type` (`check_endpoint_type`): `None` for a type that is not an endpoint.
    pub fn of(doc: &Value) -> Option<Self> {
        Self::of_type(get(doc, "pvt_type"))
    }

    fn of_type(pvt_type: Option<&Value>) -> Option<Self> {
        match pvt_type?.as_str()? {
            "device" | "click2call" | "conference" => Some(Self::Device),
            "user" => Some(Self::User),
            "group" => Some(Self::Group),
            "account" => Some(Self::Account),
            _ => None,
        }
    }

    /// The `Authorizing-Type` spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Device => "device",
            Self::User => "user",
            Self::Group => "group",
            Self::Account => "account",
        }
    }
}

/// Declares a view struct: one field per key of an object that the builder reads, each
/// `None` when absent, found in one pass over the object; and the match that finds a key's
/// field, so the struct and the key list cannot drift apart.
macro_rules! object_view {
    ($(#[$doc:meta])* $name:ident { $($field:ident => $key:literal,)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, Default)]
        pub struct $name<'a> {
            $(#[doc = concat!("`", $key, "`")] pub $field: Option<&'a Value>,)*
        }

        impl<'a> $name<'a> {
            /// The view of an absent object: every key absent.
            pub const EMPTY: Self = Self { $($field: None,)* };

            /// The keys of `v` (none when it is not an object), found in one pass over it.
            pub fn of(v: Option<&'a Value>) -> Self {
                let mut t = Self::default();
                if let Some(obj) = v.and_then(Value::as_object) {
                    for (k, v) in obj {
                        match k.as_str() {
                            $($key => t.$field = Some(v),)*
                            _ => {}
                        }
                    }
                }
                t
            }

            /// `Some(value)` for a key this view holds (the value `None` when absent),
            /// `None` for any other key.
            pub fn lookup(&self, key: &str) -> Option<Option<&'a Value>> {
                Some(match key {
                    $($key => self.$field,)*
                    _ => return None,
                })
            }
        }
    };
}

object_view! {
    /// The document's top-level keys the builder reads.
    TopLevel {
        sip => "sip",
        media => "media",
        call_forward => "call_forward",
        call_failover => "call_failover",
        caller_id => "caller_id",
        name => "name",
        enabled => "enabled",
        pvt_enabled => "pvt_enabled",
        owner_id => "owner_id",
        presence_id => "presence_id",
        number => "number",
        pvt_type => "pvt_type",
        pvt_account_id => "pvt_account_id",
        device_type => "device_type",
        exclude_from_queues => "exclude_from_queues",
        default => "default",
        privacy => "privacy",
        privacy_mode => "privacy_mode",
        privacy_method => "Privacy-Method",
        ignore_completed_elsewhere => "ignore_completed_elsewhere",
        call_waiting => "call_waiting",
        hotdesk => "hotdesk",
        do_not_disturb => "do_not_disturb",
        caller_id_options => "caller_id_options",
        music_on_hold => "music_on_hold",
        ringtones => "ringtones",
        metaflows => "metaflows",
        outbound_flags => "outbound_flags",
        pvt_deleted => "pvt_deleted",
        deleted => "_deleted",
        id => "_id",
        prefer_device_caller_id => "prefer_device_caller_id",
        formatters => "formatters",
        first_name => "first_name",
        last_name => "last_name",
        call_recording => "call_recording",
        record_call => "record_call",
        push => "push",
        mobile => "mobile",
        skype => "skype",
        endpoint_type => "endpoint_type",
        realm => "realm",
        endpoints => "endpoints",
    }
}

object_view! {
    /// The keys of a document's `sip` object the builder reads.
    Sip {
        username => "username",
        realm => "realm",
        invite_format => "invite_format",
        route => "route",
        ip => "ip",
        number => "number",
        static_invite => "static_invite",
        transport => "transport",
        custom_sip_interface => "custom_sip_interface",
        proxy => "proxy",
        forward => "forward",
        ignore_completed_elsewhere => "ignore_completed_elsewhere",
        custom_sip_headers => "custom_sip_headers",
    }
}

object_view! {
    /// The keys of a document's `media` object the builder reads.
    Media {
        audio => "audio",
        video => "video",
        webrtc => "webrtc",
        rtcp_mux => "rtcp_mux",
        encryption => "encryption",
        fax_option => "fax_option",
        ignore_early_media => "ignore_early_media",
        bypass_media => "bypass_media",
        progress_timeout => "progress_timeout",
    }
}

/// A caller-ID attribute's number and name (`caller_id.<attr>`), each only when it is a
/// non-empty string.
#[derive(Debug, Clone, Copy, Default)]
pub struct CallerIdLeaves<'a> {
    /// `number`.
    pub number: Option<&'a str>,
    /// `name`.
    pub name: Option<&'a str>,
}

/// The caller-ID attributes of a document's `caller_id` the builder reads.
#[derive(Debug, Clone, Copy, Default)]
pub struct CallerId<'a> {
    /// `internal`.
    pub internal: CallerIdLeaves<'a>,
    /// `external`.
    pub external: CallerIdLeaves<'a>,
    /// `emergency`.
    pub emergency: CallerIdLeaves<'a>,
}

impl<'a> CallerId<'a> {
    /// No caller-ID attributes.
    pub const EMPTY: Self = Self {
        internal: CallerIdLeaves {
            number: None,
            name: None,
        },
        external: CallerIdLeaves {
            number: None,
            name: None,
        },
        emergency: CallerIdLeaves {
            number: None,
            name: None,
        },
    };

    /// The caller-ID attributes of `caller_id` (none when it is not an object).
    pub fn of(caller_id: Option<&'a Value>) -> Self {
        let attr = |name| {
            let a = caller_id.and_then(|c| get(c, name));
            CallerIdLeaves {
                number: ne_str(a.and_then(|a| get(a, "number"))),
                name: ne_str(a.and_then(|a| get(a, "name"))),
            }
        };
        Self {
            internal: attr("internal"),
            external: attr("external"),
            emergency: attr("emergency"),
        }
    }

    /// `caller_id.<attr>.<key>` as a non-empty string; `None` for an attribute or key this
    /// view does not hold (read from the JSON instead).
    pub fn leaf(&self, attr: &str, key: &str) -> Option<Option<&'a str>> {
        let leaves = match attr {
            "internal" => &self.internal,
            "external" => &self.external,
            "emergency" => &self.emergency,
            _ => return None,
        };
        match key {
            "number" => Some(leaves.number),
            "name" => Some(leaves.name),
            _ => None,
        }
    }
}

/// The typed view of a document: where each field the builder reads is, and what it derives
/// from them on every build.
#[derive(Debug, Clone, Default)]
pub struct View<'a> {
    /// The top-level keys.
    pub top: TopLevel<'a>,
    /// The keys of `sip`.
    pub sip: Sip<'a>,
    /// The keys of `media`.
    pub media: Media<'a>,
    /// The caller-ID attributes of `caller_id`.
    pub caller_id: CallerId<'a>,
    /// The entity kind (`pvt_type` with Kazoo's aliases), when it is one.
    pub kind: Option<Kind>,
    /// `"First Last"`, `"First"` or `"Last"` (a user's; any document's, read as a user's).
    pub full_name: Option<String>,
}

impl<'a> View<'a> {
    /// The view of `doc`.
    pub fn of(doc: &'a Value) -> Self {
        let top = TopLevel::of(Some(doc));
        Self {
            sip: Sip::of(top.sip),
            media: Media::of(top.media),
            caller_id: CallerId::of(top.caller_id),
            kind: Kind::of_type(top.pvt_type),
            full_name: full_name(ne_str(top.first_name), ne_str(top.last_name)),
            top,
        }
    }

    /// A top-level key of the document, through the view when it holds the key.
    pub fn get(&self, doc: &'a Value, key: &str) -> Option<&'a Value> {
        match self.top.lookup(key) {
            Some(v) => v,
            None => doc.get(key),
        }
    }
}

/// `"First Last"`, `"First"` or `"Last"` from a user's non-empty `first_name` and
/// `last_name`.
pub fn full_name(first: Option<&str>, last: Option<&str>) -> Option<String> {
    match (first, last) {
        (Some(f), Some(l)) => Some(format!("{f} {l}")),
        (Some(f), None) => Some(f.to_owned()),
        (None, Some(l)) => Some(l.to_owned()),
        (None, None) => None,
    }
}

self_cell::self_cell!(
    /// The JSON and the view that borrows from it, kept together.
    struct Cell {
        owner: Value,
        #[covariant]
        dependent: View,
    }
);

/// A document: its JSON and its typed view ([`View`]).
pub struct Document(Cell);

impl Document {
    /// The document of `json`, with its view.
    pub fn new(json: Value) -> Self {
        Self(Cell::new(json, |v| View::of(v)))
    }

    /// The document's JSON.
    pub fn json(&self) -> &Value {
        self.0.borrow_owner()
    }

    /// The typed view of the fields the builder reads.
    pub fn view(&self) -> &View<'_> {
        self.0.borrow_dependent()
    }

    /// The JSON, taken back.
    pub fn into_json(self) -> Value {
        self.0.into_owner()
    }
}

impl From<Value> for Document {
    fn from(json: Value) -> Self {
        Self::new(json)
    }
}

impl Deref for Document {
    type Target = Value;

    fn deref(&self) -> &Value {
        self.json()
    }
}

impl Clone for Document {
    fn clone(&self) -> Self {
        Self::new(self.json().clone())
    }
}

impl PartialEq for Document {
    fn eq(&self, other: &Self) -> bool {
        self.json() == other.json()
    }
}

impl fmt::Debug for Document {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.json(), f)
    }
}

impl serde::Serialize for Document {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.json().serialize(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_view_finds_the_fields_the_builder_reads() {
        let d = Document::new(json!({
            "_id": "d1", "pvt_type": "conference", "first_name": "Ann", "last_name": "",
            "sip": {"username": "u", "realm": "r", "other": 1},
            "media": {"audio": {"codecs": ["PCMU"]}},
            "unread": true,
        }));
        let v = d.view();
        assert_eq!(v.kind, Some(Kind::Device));
        assert_eq!(v.full_name.as_deref(), Some("Ann"));
        assert_eq!(v.sip.username, Some(&json!("u")));
        assert_eq!(v.sip.realm, Some(&json!("r")));
        assert_eq!(v.sip.ip, None);
        assert_eq!(v.media.audio, Some(&json!({"codecs": ["PCMU"]})));
        assert_eq!(v.top.id, Some(&json!("d1")));
        assert_eq!(v.get(&d, "unread"), Some(&json!(true)));
        assert_eq!(v.get(&d, "sip"), d.get("sip"));
        assert_eq!(d.clone(), d);
    }

    #[test]
    fn a_document_that_is_not_an_object_has_an_empty_view() {
        for j in [Value::Null, json!([1]), json!("x")] {
            let d = Document::new(j);
            assert!(d.view().top.sip.is_none());
            assert_eq!(d.view().kind, None);
            assert_eq!(d.view().full_name, None);
        }
    }

    #[test]
    fn documents_are_shared_across_threads() {
        fn is_send_sync<T: Send + Sync>() {}
        is_send_sync::<Document>();
    }
}
