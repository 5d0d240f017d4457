//! Caller ID, callee ID and privacy on a leg (`kazoo-endpoint-rules.md` section 9;
//! `kz_attributes:caller_id/2`, `callee_id/2`, `kz_privacy`).

use std::cell::OnceCell;

use serde_json::Value;

use super::attributes::Endpoint;
use super::call::CallContext;
use super::config;
use crate::document::Document;
use crate::kz_json::{Object, is_true, ne_str, path};

pub use crate::leg::Clid;

/// Which caller-ID attribute a call uses: `internal` for a call that started on-net (no
/// inception), `external` otherwise.
pub fn attribute(ctx: &CallContext<'_>) -> &'static str {
    if ctx.req().call.inception.is_some() {
        "external"
    } else {
        "internal"
    }
}

fn kvs<'c>(ctx: &'c CallContext<'_>, key: &str) -> Option<&'c Value> {
    ctx.req().call.kvs.get(key)
}

fn ccv<'c>(ctx: &'c CallContext<'_>, key: &str) -> Option<&'c Value> {
    ctx.req().call.ccvs.get(key)
}

fn cid_field(ep: &Endpoint<'_>, attr: &str, key: &str) -> Option<String> {
    ep.caller_id_leaf(attr, key)
        .map(str::to_owned)
        .or_else(|| ne_str(ep.at(&["default", key])).map(str::to_owned))
}

fn path_obj<'v>(o: &'v Object, keys: &[&str]) -> Option<&'v Value> {
    let (first, rest) = keys.split_first()?;
    let v = o.get(*first)?;
    if rest.is_empty() {
        Some(v)
    } else {
        path(v, rest)
    }
}

/// The caller's ID as shown to the callee (rules file 9.2), per caller-ID attribute. It is
/// the same for every leg of a build: computed once per attribute, on first use.
#[derive(Debug, Default)]
pub struct CallerIds {
    internal: OnceCell<Clid>,
    external: OnceCell<Clid>,
}

impl CallerIds {
    /// The caller's ID with `attr` the attribute to use.
    pub fn caller(&self, ctx: &CallContext<'_>, attr: &str) -> Clid {
        let cell = if attr == "internal" {
            &self.internal
        } else {
            &self.external
        };
        cell.get_or_init(|| compute_caller(ctx, attr)).clone()
    }
}

fn compute_caller(ctx: &CallContext<'_>, attr: &str) -> Clid {
    let call = &ctx.req().call;
    let pass_through = ((call.inception.is_some() && !is_true(ccv(ctx, "Call-Forward")))
        || is_true(ccv(ctx, "Retain-CID")))
        && !is_true(kvs(ctx, "force_dynamic_cid"));
    let mut clid = if pass_through {
        Clid {
            number: Some(
                call.caller_id_number
                    .clone()
                    .unwrap_or_else(|| config::anonymous_number(ctx)),
            ),
            name: Some(
                call.caller_id_name
                    .clone()
                    .unwrap_or_else(|| config::unknown_name(ctx)),
            ),
        }
    } else if let Some(dynamic) = dynamic_cid(kvs(ctx, "dynamic_cid")) {
        // `maybe_normalize_cid`: what the dynamic caller ID leaves out comes from the call.
        Clid {
            number: dynamic.number.or_else(|| call_number(ctx)),
            name: dynamic.name.or_else(|| call_name(ctx)),
        }
    } else {
        let mut c = Clid::default();
        if let Some(ep) = ctx.caller() {
            c.number = cid_field(ep, attr, "number");
            c.name = cid_field(ep, attr, "name");
            if attr == "internal" && c.number.is_none() {
                // `maybe_use_presence_number`: an explicit presence id only, never the SIP
                // username (product rules 8).
                c.number = explicit_presence_id(ctx, ep)
                    .map(|p| p.split('@').next().unwrap_or_default().to_owned());
            }
        }
        Clid {
            number: c.number.or_else(|| call_number(ctx)),
            name: c.name.or_else(|| call_name(ctx)),
        }
    };
    if let Some(prefix) = ne_str(kvs(ctx, "prepend_cid_number")) {
        clid.number = clid.number.map(|n| format!("{prefix}{n}"));
    }
    if let Some(prefix) = ne_str(kvs(ctx, "prepend_cid_name")) {
        clid.name = clid.name.map(|n| format!("{prefix}{n}"));
    }
    if let Some(n) = ne_str(kvs(ctx, "rewrite_cid_number")) {
        clid.number = Some(n.to_owned());
    }
    if let Some(n) = ne_str(kvs(ctx, "rewrite_cid_name")) {
        clid.name = Some(n.to_owned());
    }
    clid
}

/// `kapps_call:caller_id_number/1`: the call's number, else the anonymous number.
fn call_number(ctx: &CallContext<'_>) -> Option<String> {
    Some(
        ctx.req()
            .call
            .caller_id_number
            .clone()
            .unwrap_or_else(|| config::anonymous_number(ctx)),
    )
}

/// `kapps_call:caller_id_name/1`: the call's name, else the unknown name.
fn call_name(ctx: &CallContext<'_>) -> Option<String> {
    Some(
        ctx.req()
            .call
            .caller_id_name
            .clone()
            .unwrap_or_else(|| config::unknown_name(ctx)),
    )
}

/// The caller's explicit presence id (owner, hotdesk user, device, account), without the
/// SIP-username and dialled-user fallbacks of `Presence-ID`.
pub(super) fn explicit_presence_id<'e>(
    ctx: &'e CallContext<'_>,
    ep: &'e Endpoint<'_>,
) -> Option<&'e str> {
    let presence = |d: &'e Document| ne_str(d.view().top.presence_id);
    ep.owner_doc()
        .and_then(presence)
        .or_else(|| ep.hotdesk_users().iter().copied().find_map(presence))
        .or_else(|| ne_str(ep.top().presence_id))
        .or_else(|| presence(ctx.account()))
}

/// The KVS `dynamic_cid`: `{number, name}`, `[number, name]` or a bare number.
fn dynamic_cid(v: Option<&Value>) -> Option<Clid> {
    match v? {
        Value::String(s) if !s.is_empty() => Some(Clid {
            number: Some(s.clone()),
            name: None,
        }),
        Value::Object(o) => {
            let number = ne_str(o.get("number")).map(str::to_owned);
            let name = ne_str(o.get("name")).map(str::to_owned);
            (number.is_some() || name.is_some()).then_some(Clid { number, name })
        }
        Value::Array(a) if !a.is_empty() => Some(Clid {
            number: ne_str(a.first()).map(str::to_owned),
            name: ne_str(a.get(1)).map(str::to_owned),
        }),
        _ => None,
    }
}

/// The callee's ID (rules file 9.3), from the callee's merged endpoint.
pub fn callee(ctx: &CallContext<'_>, ep: &Endpoint<'_>, attr: &str) -> Clid {
    Clid {
        number: cid_field(ep, attr, "number").or_else(|| ctx.req().call.request_user.clone()),
        name: Some(
            cid_field(ep, attr, "name")
                .or_else(|| ep.name().map(str::to_owned))
                .unwrap_or_else(|| config::default_callee_name(ctx)),
        ),
    }
}

/// Values of a privacy key that hide the name (or the number, with `what` = `number`).
fn hides(v: &Value, what: &str) -> bool {
    match v {
        Value::String(s) => {
            matches!(s.as_str(), "yes" | "full" | "kazoo" | "true")
                || s == what
                || *s == format!("hide_{what}")
        }
        Value::Bool(b) => *b,
        _ => false,
    }
}

/// `kz_privacy:should_hide_name/number` evaluated on the call's channel variables: the first
/// key that is present decides.
fn should_hide(ccvs: &Object, what: &str) -> bool {
    const NAME: [&[&str]; 5] = [
        &["caller_id_options", "outbound_privacy"],
        &["privacy", "hide_name"],
        &["Privacy-Hide-Name"],
        &["Caller-Privacy-Hide-Name"],
        &["privacy_mode"],
    ];
    const NUMBER: [&[&str]; 5] = [
        &["caller_id_options", "outbound_privacy"],
        &["privacy", "hide_number"],
        &["Privacy-Hide-Number"],
        &["Caller-Privacy-Hide-Number"],
        &["privacy_mode"],
    ];
    if ccvs.is_empty() {
        return false;
    }
    let keys = if what == "name" { &NAME } else { &NUMBER };
    keys.iter()
        .find_map(|k| path_obj(ccvs, k).filter(|v| !v.is_null()))
        .is_some_and(|v| hides(v, what))
}

/// The privacy move (rules file 9.4): when the caller ID is retained, the call's privacy
/// flags go onto the leg. Returns (hide name, hide number).
pub fn privacy(ctx: &CallContext<'_>, keep_caller_id: bool) -> (bool, bool) {
    if !(keep_caller_id || is_true(ccv(ctx, "Retain-CID"))) {
        return (false, false);
    }
    let ccvs = &ctx.req().call.ccvs;
    (should_hide(ccvs, "name"), should_hide(ccvs, "number"))
}

/// `Privacy-Method`: the first defined of the endpoint's privacy-method keys when it is
/// `sip`, `none` or `kazoo`, else `kazoo`.
pub fn privacy_method<'c>(ctx: &'c CallContext<'_>, ep: &Endpoint<'_>) -> &'c str {
    let v = ep
        .generic_leaf(|t| t.caller_id_options, "privacy_method")
        .or_else(|| ep.at(&["privacy", "method"]))
        .or_else(|| ep.top().privacy_method)
        .or_else(|| ep.top().privacy_mode);
    match v.and_then(Value::as_str) {
        Some("sip") => "sip",
        Some("none") => "none",
        Some("kazoo") => "kazoo",
        _ => config::privacy_method(ctx),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn hide_values() {
        let o = json!({"Caller-Privacy-Hide-Number": true})
            .as_object()
            .unwrap()
            .clone();
        assert!(should_hide(&o, "number"));
        assert!(!should_hide(&o, "name"));
        let o = json!({"privacy_mode": "full"}).as_object().unwrap().clone();
        assert!(should_hide(&o, "number") && should_hide(&o, "name"));
        let o = json!({"Privacy-Hide-Name": "hide_name", "privacy_mode": "full"})
            .as_object()
            .unwrap()
            .clone();
        assert!(should_hide(&o, "name"));
        // The first present key decides, even when it does not hide.
        let o = json!({"Privacy-Hide-Name": false, "privacy_mode": "full"})
            .as_object()
            .unwrap()
            .clone();
        assert!(!should_hide(&o, "name"));
    }

    #[test]
    fn dynamic_cid_forms() {
        assert_eq!(
            dynamic_cid(Some(&json!("+1555"))),
            Some(Clid {
                number: Some("+1555".into()),
                name: None
            })
        );
        assert_eq!(
            dynamic_cid(Some(&json!({"number": "1", "name": "n"}))),
            Some(Clid {
                number: Some("1".into()),
                name: Some("n".into())
            })
        );
        assert_eq!(dynamic_cid(Some(&json!(""))), None);
    }
}
