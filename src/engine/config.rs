//! The configuration Kazoo's builder reads (`kapps_config`, `kapps_account_config`): the
//! `kazoo_endpoint`, `privacy`, `call_command` and `media` categories of the `system_config`
//! database, and, where Kazoo reads an account's own configuration, the account database's
//! `configs_<category>` document. Every key, its default and where it is read is listed in
//! `docs/configuration.md`.
//!
//! A system value is looked up as `kapps_config` does: under the node's name, then under the
//! zone's, then under `default`; a missing category or key gives Kazoo's default.

use serde_json::Value;

use super::call::CallContext;
use crate::kz_json::{as_integer, is_true, ne_str, path};

/// The `system_config` database.
pub const SYSTEM_CONFIG_DB: &str = "system_config";

/// The system categories a build reads (document ids in `system_config`).
pub const SYSTEM_CATEGORIES: [&str; 4] = ["kazoo_endpoint", "privacy", "call_command", "media"];

/// The categories Kazoo also reads from the account (`kapps_account_config:get_global`), as
/// the account database's `configs_<category>` documents.
pub const ACCOUNT_CATEGORIES: [&str; 3] = ["kazoo_endpoint", "privacy", "call_command"];

/// The account configuration documents of [`ACCOUNT_CATEGORIES`], spelled out: every build
/// reads them, and a lookup should not first build the id.
pub const ACCOUNT_DOC_IDS: [&str; 3] = [
    "configs_kazoo_endpoint",
    "configs_privacy",
    "configs_call_command",
];

/// The account configuration document of a category (`configs_<category>`).
pub fn account_doc_id(category: &str) -> std::borrow::Cow<'static, str> {
    match ACCOUNT_CATEGORIES.iter().position(|c| *c == category) {
        Some(i) => std::borrow::Cow::Borrowed(ACCOUNT_DOC_IDS[i]),
        None => std::borrow::Cow::Owned(format!("configs_{category}")),
    }
}

/// Where system values are looked up: the node's own section, then its zone's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// The node name (`kz-endpoint@host`); empty: no node section.
    pub node: String,
    /// The zone name (Kazoo's default zone is `local`).
    pub zone: String,
}

impl Default for Scope {
    fn default() -> Self {
        Self {
            node: String::new(),
            zone: "local".into(),
        }
    }
}

/// A system value (`kapps_config:get/3`): `[node | key]`, then `[zone | key]`, then
/// `[default | key]` of the category's document.
pub fn system<'c>(ctx: &'c CallContext<'_>, category: &str, key: &[&str]) -> Option<&'c Value> {
    let doc = ctx.inputs().system_config.get(category)?.as_deref()?;
    let scope = &ctx.inputs().scope;
    let sections = [scope.node.as_str(), scope.zone.as_str(), "default"];
    sections.iter().filter(|s| !s.is_empty()).find_map(|s| {
        doc.get(*s)
            .and_then(|sec| path(sec, key))
            .filter(|v| !v.is_null())
    })
}

/// An account-wide value (`kapps_account_config:get_global/4`): the account's
/// `configs_<category>` document, then the system value.
pub fn account_global<'c>(
    ctx: &'c CallContext<'_>,
    category: &str,
    key: &[&str],
) -> Option<&'c Value> {
    let id = account_doc_id(category);
    ctx.inputs()
        .docs
        .get(id.as_ref())
        .and_then(|d| d.as_deref())
        .and_then(|d| path(d, key))
        .filter(|v| !v.is_null())
        .or_else(|| system(ctx, category, key))
}

/// `kapps_config:get_is_true/3`.
pub fn system_is_true(ctx: &CallContext<'_>, category: &str, key: &str, default: bool) -> bool {
    match system(ctx, category, &[key]) {
        Some(v) => is_true(Some(v)),
        None => default,
    }
}

/// `kapps_config:get_ne_binary/2`.
pub fn system_ne_str<'c>(
    ctx: &'c CallContext<'_>,
    category: &str,
    key: &[&str],
) -> Option<&'c str> {
    ne_str(system(ctx, category, key))
}

/// `kapps_config:get_integer/3`.
pub fn system_integer(ctx: &CallContext<'_>, category: &str, key: &str, default: i64) -> i64 {
    as_integer(system(ctx, category, &[key])).unwrap_or(default)
}

/// `kazoo_endpoint.sip_transport`, when it is one of Kazoo's four transports.
pub fn sip_transport<'c>(ctx: &'c CallContext<'_>) -> Option<&'c str> {
    system_ne_str(ctx, "kazoo_endpoint", &["sip_transport"]).filter(|t| valid_transport(t))
}

/// Kazoo's `validate_sip_transport`.
pub fn valid_transport(t: &str) -> bool {
    matches!(t, "udp" | "tcp" | "tls" | "sctp")
}

/// `kazoo_endpoint.custom_sip_interface`.
pub fn custom_sip_interface<'c>(ctx: &'c CallContext<'_>) -> Option<&'c str> {
    system_ne_str(ctx, "kazoo_endpoint", &["custom_sip_interface"])
}

/// `kazoo_endpoint.should_add_diversion_header` (default false).
pub fn should_add_diversion_header(ctx: &CallContext<'_>) -> bool {
    system_is_true(ctx, "kazoo_endpoint", "should_add_diversion_header", false)
}

/// `kazoo_endpoint.restrict_to_known_types` (default false).
pub fn restrict_to_known_types(ctx: &CallContext<'_>) -> bool {
    system_is_true(ctx, "kazoo_endpoint", "restrict_to_known_types", false)
}

/// `kazoo_endpoint.default_ignore_completed_elsewhere` (default true).
pub fn default_ignore_completed_elsewhere(ctx: &CallContext<'_>) -> bool {
    system_is_true(
        ctx,
        "kazoo_endpoint",
        "default_ignore_completed_elsewhere",
        true,
    )
}

/// `kazoo_endpoint.default_can_text_self`, account first (default true).
pub fn default_can_text_self(ctx: &CallContext<'_>) -> bool {
    match account_global(ctx, "kazoo_endpoint", &["default_can_text_self"]) {
        Some(v) => is_true(Some(v)),
        None => true,
    }
}

/// `privacy.method` (default `kazoo`).
pub fn privacy_method<'c>(ctx: &'c CallContext<'_>) -> &'c str {
    system_ne_str(ctx, "privacy", &["method"]).unwrap_or("kazoo")
}

/// `privacy.default_privacy_number`, account first (default `anonymous`): the number of a
/// call that has none.
pub fn anonymous_number(ctx: &CallContext<'_>) -> String {
    account_global(ctx, "privacy", &["default_privacy_number"])
        .and_then(Value::as_str)
        .unwrap_or("anonymous")
        .to_owned()
}

/// `call_command.unknown_cid_name`, account first (default `unknown`): the name of a call
/// that has none.
pub fn unknown_name(ctx: &CallContext<'_>) -> String {
    ne_str(account_global(ctx, "call_command", &["unknown_cid_name"]))
        .unwrap_or("unknown")
        .to_owned()
}

/// `kazoo_endpoint.default_caller_id_name`, else [`unknown_name`]: a callee's name when the
/// callee has none.
pub fn default_callee_name(ctx: &CallContext<'_>) -> String {
    system_ne_str(ctx, "kazoo_endpoint", &["default_caller_id_name"])
        .map(str::to_owned)
        .unwrap_or_else(|| unknown_name(ctx))
}

/// `media.max_recording_time_limit` (default 10800 seconds).
pub fn max_recording_time_limit(ctx: &CallContext<'_>) -> i64 {
    system_integer(ctx, "media", "max_recording_time_limit", 3 * 3600)
}

/// `media.record_min_sec` (default 0).
pub fn record_min_sec(ctx: &CallContext<'_>) -> i64 {
    system_integer(ctx, "media", "record_min_sec", 0)
}

/// `media.call_recording.extension` (default `mp3`).
pub fn recording_extension<'c>(ctx: &'c CallContext<'_>) -> &'c str {
    system_ne_str(ctx, "media", &["call_recording", "extension"]).unwrap_or("mp3")
}
