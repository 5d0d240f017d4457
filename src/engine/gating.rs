//! The gates an entity passes before it rings (`kazoo-endpoint-rules.md` section 4), in
//! Kazoo's order: resource type, owner or device calling itself, disabled, do not disturb,
//! excluded from queue calls; and before those, a deleted or disabled document.

use serde_json::Value;

use super::attributes::{Endpoint, Kind};
use super::call::CallContext;
use super::config;
use super::dialling::Dialling;
use super::explain;
use crate::build_api::{BuildError, ErrorCode};
use crate::document::Document;
use crate::kz_json::{is_false, is_true, path};

/// The document checks made before an entity is built by its type: deleted, disabled (an
/// account's `pvt_enabled`, any other's `enabled`).
pub(super) fn check_document(id: &str, doc: &Document, kind: Kind) -> Result<(), BuildError> {
    match unusable(doc, kind) {
        None => Ok(()),
        Some(code) => {
            let what = if code == ErrorCode::EndpointDeleted {
                "deleted"
            } else {
                "disabled"
            };
            Err(BuildError::new(
                code,
                format!("{} {id} is {what}", kind.as_str()),
            ))
        }
    }
}

/// Why [`check_document`] refuses `doc` read as a `kind`: `endpoint_deleted` or
/// `endpoint_disabled`; `None` when it passes.
pub(super) fn unusable(doc: &Document, kind: Kind) -> Option<ErrorCode> {
    let top = &doc.view().top;
    if is_true(top.pvt_deleted) || is_true(top.deleted) {
        return Some(ErrorCode::EndpointDeleted);
    }
    let enabled = if kind == Kind::Account {
        top.pvt_enabled
    } else {
        top.enabled
    };
    is_false(enabled).then_some(ErrorCode::EndpointDisabled)
}

/// The gating checks, in Kazoo's order (rules file 4).
pub(super) fn gate(
    ctx: &CallContext<'_>,
    ep: &Endpoint<'_>,
    dialling: &Dialling<'_>,
) -> Result<(), BuildError> {
    let call = &ctx.req().call;
    let what = ep.kind().as_str();
    let id = ep.id();
    let Some(rt) = call.resource_type.as_deref() else {
        return Err(BuildError::new(
            ErrorCode::NoResourceType,
            "the call has no Resource-Type",
        ));
    };
    let can_self = match rt {
        "audio" => dialling.can_call_self,
        "sms" => dialling
            .can_text_self
            .unwrap_or_else(|| config::default_can_text_self(ctx)),
        other => {
            return Err(BuildError::new(
                ErrorCode::Exception,
                format!("resource type {other} is not buildable (Kazoo raises on it)"),
            ));
        }
    };
    if !can_self
        && let (Some(caller_owner), Some(owner)) = (call.owner_id.as_deref(), ep.owner_id())
        && caller_owner == owner
    {
        return Err(BuildError::new(
            ErrorCode::OwnerCalledSelf,
            format!("{what} {id} belongs to the caller's owner {owner}"),
        ));
    }
    if !can_self && call.authorizing_id.as_deref() == Some(id) {
        return Err(BuildError::new(
            ErrorCode::EndpointCalledSelf,
            format!("{what} {id} is the calling device"),
        ));
    }
    if is_false(ep.top().enabled) {
        return Err(BuildError::new(
            ErrorCode::EndpointDisabled,
            format!("{what} {id} is disabled"),
        ));
    }
    if ep.dnd() {
        let on = |d: &Value| is_true(path(d, &["do_not_disturb", "enabled"]));
        let mut set_on = Vec::new();
        if on(ep.doc()) {
            set_on.push(format!("the {what}"));
        }
        if ep.kind() != Kind::User
            && let Some(owner) = ep.owner_doc()
            && on(owner)
        {
            let owner_id = owner.get("_id").and_then(Value::as_str).unwrap_or("?");
            set_on.push(format!(
                "its owner {}",
                explain::label(Kind::User, owner_id, owner)
            ));
        }
        if on(ep.account()) {
            set_on.push("the account".into());
        }
        return Err(BuildError::new(
            ErrorCode::DoNotDisturb,
            format!(
                "{what} {id} has do_not_disturb enabled, set on {}",
                set_on.join(" and ")
            ),
        ));
    }
    if call.ccvs.get("Queue-ID").is_some_and(Value::is_string)
        && is_true(ep.top().exclude_from_queues)
    {
        return Err(BuildError::new(
            ErrorCode::ExcludeFromQueues,
            format!("{what} {id} is excluded from queue calls"),
        ));
    }
    Ok(())
}
