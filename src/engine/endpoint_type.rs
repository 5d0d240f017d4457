//! What kind of endpoint a device is (Kazoo's `get_endpoint_type`), and the kinds the worker
//! does not build.
//!
//! Kazoo decides a device's leg by its type: a non-empty `push` object makes it a push
//! endpoint; otherwise the first of `endpoint_type` and `device_type` that is set, mapped
//! (`sip_*`, `smartphone`, `softphone`, `cellphone`, `landline`, `fax` are SIP; `mobile`,
//! `skype`, `push` are themselves); a type outside that list (or none) is guessed from the
//! document (a non-empty `mobile`, then `sip`, then `skype`), unless
//! `kazoo_endpoint.restrict_to_known_types` is on, which makes it unknown: no leg. The
//! forward leg does not depend on the type.
//!
//! Mobile (`mdn`) and skype legs are not built (`docs/compatibility.md`); per product rule 8 a
//! build that meets one names it in its explanation and counts it
//! (`kz_endpoint_unapplied_features_total{feature}`), so it is never silent.

use serde_json::Value;

use super::attributes::Endpoint;
use super::call::CallContext;
use super::config;
use crate::kz_json::is_empty;

/// A device's endpoint type, as Kazoo's builder resolves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointType {
    /// A SIP leg (the device table decides which).
    Sip,
    /// A push leg through the device's `Token-Proxy`.
    Push,
    /// Kazoo's mobile (`mdn`) leg: not built.
    Mobile,
    /// Kazoo's skype leg: not built.
    Skype,
    /// No known type while `restrict_to_known_types` is on (Kazoo: no leg), or nothing to
    /// guess from.
    Unknown,
}

/// A document feature the worker does not apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Unapplied {
    /// A mobile device's `mdn` leg.
    Mobile,
    /// A skype device's leg.
    Skype,
}

impl Unapplied {
    /// Every feature, in label order (the metric starts each at zero).
    pub const ALL: [Unapplied; 2] = [Unapplied::Mobile, Unapplied::Skype];

    /// The `feature` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Unapplied::Mobile => "mobile",
            Unapplied::Skype => "skype",
        }
    }
}

/// Kazoo's `convert_endpoint_type`: `None` for a type it does not know.
fn known(t: &str) -> Option<EndpointType> {
    Some(match t {
        "smartphone" | "softphone" | "cellphone" | "landline" | "fax" => EndpointType::Sip,
        s if s.starts_with("sip_") => EndpointType::Sip,
        "skype" => EndpointType::Skype,
        "mobile" => EndpointType::Mobile,
        "push" => EndpointType::Push,
        _ => return None,
    })
}

/// The device's endpoint type.
pub fn of(ctx: &CallContext<'_>, ep: &Endpoint<'_>) -> EndpointType {
    if super::legs::push_object(ep).is_some() {
        return EndpointType::Push;
    }
    // `kz_json:get_first_defined`: the first key present, whatever its value.
    let declared = [ep.top().endpoint_type, ep.top().device_type]
        .into_iter()
        .flatten()
        .find(|v| !v.is_null());
    if let Some(t) = declared.and_then(Value::as_str).and_then(known) {
        return t;
    }
    if config::restrict_to_known_types(ctx) {
        return EndpointType::Unknown;
    }
    // `mobile` is merged like the other generic attributes (owner, device, account).
    let mobile = [
        ep.owner_get(|t| t.mobile),
        ep.top().mobile,
        ep.account_get(|t| t.mobile),
    ]
    .into_iter()
    .any(|m| !is_empty(m));
    if mobile {
        EndpointType::Mobile
    } else if !is_empty(ep.top().sip) {
        EndpointType::Sip
    } else if !is_empty(ep.top().skype) {
        EndpointType::Skype
    } else {
        EndpointType::Unknown
    }
}

impl EndpointType {
    /// The feature a device of this type would need, when the worker does not build it.
    pub fn unapplied(self) -> Option<Unapplied> {
        match self {
            EndpointType::Mobile => Some(Unapplied::Mobile),
            EndpointType::Skype => Some(Unapplied::Skype),
            _ => None,
        }
    }
}
