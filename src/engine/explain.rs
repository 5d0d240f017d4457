//! Explanations: why each endpoint rang or did not, in words a support engineer reads.
//!
//! The engine notes one line per endpoint it considered, with the facts that decided (gating,
//! registration, forward, failover) and the rule that produced or withheld each leg. Only the
//! final engine run's lines are kept, so they describe exactly the legs returned.

use serde_json::Value;

use super::attributes::{Endpoint, Kind, full_name};
use super::dialling::Dialling;
use super::forward::Forward;
use crate::build_api::BuildError;
use crate::kz_json::{is_true, ne_str, ne_value_str};
use crate::leg::Leg;
use crate::registrar::{RegKey, Registration};

/// `kind id "name"` of an endpoint.
pub fn label(kind: Kind, id: &str, doc: &Value) -> String {
    let name = match kind {
        Kind::User => full_name(doc),
        _ => None,
    }
    .or_else(|| ne_str(doc.get("name")).map(str::to_owned));
    match name {
        Some(n) => format!("{} {id} \"{n}\"", kind.as_str()),
        None => format!("{} {id}", kind.as_str()),
    }
}

/// The forward as it applies to this call.
pub fn forward_fact(ep: &Endpoint<'_>, dialling: &Dialling<'_>) -> String {
    let Some(cf) = ep.top().call_forward else {
        return "no forward".into();
    };
    let number = ne_value_str(cf.get("number"));
    match (is_true(cf.get("enabled")), number) {
        (false, Some(n)) => format!("forward to {n} disabled"),
        (false, None) => "no forward".into(),
        (true, None) => "forward enabled without a number".into(),
        (true, Some(n)) => match Forward::active(ep, dialling) {
            None => format!("forward to {n} for direct calls only (this call is not direct)"),
            Some(f) if f.substitute => format!("forward to {n} active, substituting"),
            Some(_) => format!("forward to {n} active, ringing alongside"),
        },
    }
}

/// The failover target, and where it comes from.
pub fn failover_fact(target: Option<&Forward<'_>>) -> String {
    match target {
        Some(t) if t.origin == "call_failover" => {
            format!("failover to {} (call_failover)", t.number)
        }
        Some(t) => format!("failover to {} (call_forward.failover)", t.number),
        None => "no failover".into(),
    }
}

/// A registration state in words, with the `username@realm` that was looked up (what
/// `--registered` takes offline).
pub fn registration_fact(r: Registration, key: Option<&RegKey>) -> String {
    match (r, key) {
        (Registration::Registered, Some(k)) => format!("registered as {k}"),
        (Registration::Registered, None) => "registered".into(),
        (Registration::Unregistered, Some(k)) => format!("not registered ({k} has no registration)"),
        (Registration::Unregistered, None) => "not registered".into(),
        (Registration::Unknown, Some(k)) => {
            format!("registration of {k} unknown (no registrar answered)")
        }
        (Registration::Unknown, None) => {
            "registration unknown (no realm to look it up: neither sip.realm nor the account's realm)".into()
        }
    }
}

/// Why an endpoint was not built, without repeating its id (the line starts with its label):
/// `device <id> has do_not_disturb enabled, set on the account` reads as `do_not_disturb (has
/// do_not_disturb enabled, set on the account)`.
pub fn why(e: &BuildError, id: &str) -> String {
    let message = e.message.as_str();
    let rest = message
        .split_once(' ')
        .and_then(|(_kind, rest)| rest.strip_prefix(id))
        .map(str::trim_start);
    match rest {
        Some(rest) if !rest.is_empty() => format!("{} ({rest})", e.code),
        _ => format!("{} ({message})", e.code),
    }
}

/// Legs in words, or `no leg`.
pub fn legs(legs: &[Leg]) -> String {
    if legs.is_empty() {
        "no leg".into()
    } else {
        legs.iter()
            .map(Leg::describe)
            .collect::<Vec<_>>()
            .join(" + ")
    }
}
