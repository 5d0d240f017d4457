//! A bridge-endpoint validator equivalent to Kazoo's `kapi_dialplan:bridge_endpoint_v/1`
//! (`kazoo-wire-format.md` 3.2/3.3), for a Kazoo 4.3 cluster.
//!
//! Kazoo drops an invalid endpoint silently: for us that is a lost call. Every leg the engine
//! produces is run through this in the tests. It also checks what Kazoo does not, but what we
//! promise: no `null` anywhere, and no SIP password.

use serde_json::Value;

use crate::engine::legs::INVITE_FORMATS_4_3;
use crate::kz_json::Object;

const OBJECT_KEYS: [&str; 4] = [
    "Custom-SIP-Headers",
    "Custom-Application-Vars",
    "Custom-Channel-Vars",
    "Endpoint-Options",
];

fn is_boolean(v: &Value) -> bool {
    matches!(v, Value::Bool(_)) || matches!(v, Value::String(s) if s == "true" || s == "false")
}

fn enum_check(leg: &Object, key: &str, allowed: &[&str]) -> Result<(), String> {
    match leg.get(key) {
        None => Ok(()),
        Some(Value::String(s)) if allowed.contains(&s.as_str()) => Ok(()),
        Some(v) => Err(format!("{key} {v} is not one of {allowed:?}")),
    }
}

fn no_nulls(v: &Value, at: &str) -> Result<(), String> {
    match v {
        Value::Null => Err(format!("{at} is null")),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .try_for_each(|(i, v)| no_nulls(v, &format!("{at}[{i}]"))),
        Value::Object(o) => o
            .iter()
            .try_for_each(|(k, v)| no_nulls(v, &format!("{at}.{k}"))),
        _ => Ok(()),
    }
}

/// Validates one bridge endpoint (and its nested `Failover`); the error names the field.
pub fn validate_leg(leg: &Object) -> Result<(), String> {
    match leg.get("Invite-Format") {
        None => return Err("Invite-Format is required".into()),
        Some(_) => enum_check(leg, "Invite-Format", &INVITE_FORMATS_4_3)?,
    }
    enum_check(leg, "Endpoint-Type", &["sip", "freetdm", "skype"])?;
    enum_check(leg, "Enable-T38-Gateway", &["self", "peer"])?;
    enum_check(leg, "SIP-Transport", &["udp", "tcp", "tls", "sctp"])?;
    for key in OBJECT_KEYS {
        if leg.get(key).is_some_and(|v| !v.is_object()) {
            return Err(format!("{key} must be an object"));
        }
    }
    for key in ["Ignore-Early-Media", "Bypass-Media"] {
        if leg.get(key).is_some_and(|v| !is_boolean(v)) {
            return Err(format!("{key} must be a boolean or \"true\"/\"false\""));
        }
    }
    if leg
        .get("SIP-Invite-Parameters")
        .is_some_and(|v| !v.is_array())
    {
        return Err("SIP-Invite-Parameters must be a list".into());
    }
    for key in [
        "Endpoint-Timeout",
        "Endpoint-Delay",
        "Endpoint-Progress-Timeout",
    ] {
        // Kazoo's push leg carries the integer `Endpoint-Delay` 5; ecallmgr's validator
        // checks no type for it (kazoo-wire-format.md 3.2).
        let push_delay = key == "Endpoint-Delay"
            && leg.get("Invite-Format").and_then(Value::as_str) == Some("route")
            && leg.get(key).is_some_and(Value::is_u64);
        if !push_delay && leg.get(key).is_some_and(|v| !v.is_string()) {
            return Err(format!("{key} must be a string of seconds"));
        }
    }
    no_nulls(&Value::Object(leg.clone()), "leg")?;
    if leg
        .keys()
        .any(|k| k.to_ascii_lowercase().contains("password"))
    {
        return Err("a leg must never carry a password".into());
    }
    match leg.get("Failover") {
        None => Ok(()),
        Some(Value::Object(f)) => validate_leg(f).map_err(|e| format!("Failover: {e}")),
        Some(_) => Err("Failover must be an object".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Object {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn rejects_what_kazoo_drops() {
        assert!(validate_leg(&obj(json!({"Invite-Format": "username"}))).is_ok());
        assert!(validate_leg(&obj(json!({}))).is_err());
        assert!(validate_leg(&obj(json!({"Invite-Format": "endpoint"}))).is_err());
        assert!(
            validate_leg(&obj(
                json!({"Invite-Format": "route", "Endpoint-Type": "device"})
            ))
            .is_err()
        );
        assert!(
            validate_leg(&obj(
                json!({"Invite-Format": "route", "Custom-Channel-Vars": []})
            ))
            .is_err()
        );
        assert!(
            validate_leg(&obj(
                json!({"Invite-Format": "route", "Ignore-Early-Media": "yes"})
            ))
            .is_err()
        );
        assert!(validate_leg(&obj(json!({"Invite-Format": "route", "To-User": null}))).is_err());
        assert!(
            validate_leg(&obj(
                json!({"Invite-Format": "route", "Failover": {"Route": "1"}})
            ))
            .is_err()
        );
    }
}
