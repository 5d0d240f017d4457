//! The endpoint build API on the wire: `endpoint`/`build_req` in, `build_resp` or
//! `build_error` out (`kazoo-wire-format.md` 6.2; Kazoo would call this `kapi_endpoint`).
//!
//! Parsing is strict where a mistake would otherwise become a wrong leg: a missing or wrongly
//! typed field, or an id that is not 32 lowercase letters or digits, is an `invalid_request`
//! whose message names the field, and such a request never reaches a database.

use serde_json::Value;

use crate::ids::is_valid_id;
use crate::kz_json::{Object, as_integer};
use crate::message_json::{Json, JsonObject};

/// `Event-Category` of the whole API.
pub const EVENT_CATEGORY: &str = "endpoint";
/// `Event-Name` of a request.
pub const BUILD_REQ: &str = "build_req";
/// `Event-Name` of a successful reply.
pub const BUILD_RESP: &str = "build_resp";
/// `Event-Name` of an error reply.
pub const BUILD_ERROR: &str = "build_error";
/// Our `App-Name` on every reply.
pub const APP_NAME: &str = "kz-endpoint";
/// Our `App-Version` on every reply.
pub const APP_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The `Error-Code` values of `build_error`: kz_endpoint's own error atoms, plus
/// `invalid_request` for a request that fails validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The request itself is malformed (the message names the field).
    InvalidRequest,
    /// No document with the requested id.
    NotFound,
    /// The document is soft-deleted.
    EndpointDeleted,
    /// The endpoint (device or user) is disabled.
    EndpointDisabled,
    /// The document is neither a device, a user nor a group.
    NotDeviceNorUser,
    /// The caller dialled its own device.
    EndpointCalledSelf,
    /// The caller dialled a device of its own owner.
    OwnerCalledSelf,
    /// Do-not-disturb is on (account, owner or device).
    DoNotDisturb,
    /// A queue call to an endpoint excluded from queues.
    ExcludeFromQueues,
    /// The call has no resource type.
    NoResourceType,
    /// Nothing to ring.
    NoEndpoints,
    /// The document store could not be reached.
    DbNotReachable,
    /// The call's resource type has no gating rule (Kazoo raises).
    Exception,
    /// A fault of ours.
    Internal,
}

impl ErrorCode {
    /// Every code (a closed set: the metrics start each one at zero).
    pub const ALL: [ErrorCode; 14] = [
        Self::InvalidRequest,
        Self::NotFound,
        Self::EndpointDeleted,
        Self::EndpointDisabled,
        Self::NotDeviceNorUser,
        Self::EndpointCalledSelf,
        Self::OwnerCalledSelf,
        Self::DoNotDisturb,
        Self::ExcludeFromQueues,
        Self::NoResourceType,
        Self::NoEndpoints,
        Self::DbNotReachable,
        Self::Exception,
        Self::Internal,
    ];

    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::NotFound => "not_found",
            Self::EndpointDeleted => "endpoint_deleted",
            Self::EndpointDisabled => "endpoint_disabled",
            Self::NotDeviceNorUser => "not_device_nor_user",
            Self::EndpointCalledSelf => "endpoint_called_self",
            Self::OwnerCalledSelf => "owner_called_self",
            Self::DoNotDisturb => "do_not_disturb",
            Self::ExcludeFromQueues => "exclude_from_queues",
            Self::NoResourceType => "no_resource_type",
            Self::NoEndpoints => "no_endpoints",
            Self::DbNotReachable => "db_not_reachable",
            Self::Exception => "exception",
            Self::Internal => "internal",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A build that produced no legs: the code and a human-readable message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct BuildError {
    /// The machine-readable code.
    pub code: ErrorCode,
    /// What happened, for people.
    pub message: String,
}

impl BuildError {
    /// A new error.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, message)
    }
}

/// The kind of a ring-group member (`endpoint_type` in the callflow `ring_group` data).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberType {
    /// A device id.
    Device,
    /// A user id: all of the user's devices.
    User,
    /// A group id: all of its members.
    Group,
}

impl MemberType {
    /// Parses the wire spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "device" => Some(Self::Device),
            "user" => Some(Self::User),
            "group" => Some(Self::Group),
            _ => None,
        }
    }
}

/// One member of a ring-group list (`Properties.endpoints`) or of a group document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The document id.
    pub id: String,
    /// What the id names.
    pub kind: MemberType,
    /// Seconds before this member's legs start (`Endpoint-Delay`).
    pub delay: Option<i64>,
    /// Seconds this member's legs ring (`Endpoint-Timeout`).
    pub timeout: Option<i64>,
}

/// What a request asks to ring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A device, user or group id; the document's `pvt_type` says which.
    Endpoint(String),
    /// A ring-group member list.
    Members(Vec<Member>),
}

/// The call state the builder reads (Kazoo's `kapps_call:to_json/1` form, `Call` in the request).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Call {
    /// The calling device (`Authorizing-ID`).
    pub authorizing_id: Option<String>,
    /// The caller's owner (`Owner-ID`), used for the owner-called-self check.
    pub owner_id: Option<String>,
    /// The call's caller-ID name.
    pub caller_id_name: Option<String>,
    /// The call's caller-ID number.
    pub caller_id_number: Option<String>,
    /// `user@realm` of the request URI.
    pub request: Option<String>,
    /// The dialled user part.
    pub request_user: Option<String>,
    /// The dialled realm.
    pub request_realm: Option<String>,
    /// Where an off-net call came in; absent for a call that started on-net.
    pub inception: Option<String>,
    /// The other leg's call-id.
    pub other_leg_call_id: Option<String>,
    /// `audio`, `video` or `sms`.
    pub resource_type: Option<String>,
    /// The call's language (for prompts).
    pub language: Option<String>,
    /// The account realm as the call knows it.
    pub account_realm: Option<String>,
    /// The call's own call-id.
    pub call_id: Option<String>,
    /// The call's custom channel variables.
    pub ccvs: Object,
    /// The call's key-value store (dynamic caller ID, override ringtone, …).
    pub kvs: Object,
}

/// A validated `build_req`.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildRequest {
    /// `Msg-ID`, echoed on the reply.
    pub msg_id: String,
    /// `Server-ID`: where the reply goes on the `targeted` exchange.
    pub server_id: Option<String>,
    /// The requester's `App-Name`.
    pub app_name: String,
    /// The account whose documents are read.
    pub account_id: String,
    /// The call being built for.
    pub call_id: String,
    /// What to ring.
    pub target: Target,
    /// The callflow action's data (`can_call_self`, `delay`, `timeout`, `source`, …), parsed.
    pub properties: Properties,
    /// The call state.
    pub call: Call,
    /// `Explain: true`: the reply carries an `Explain` list saying why each leg was or was
    /// not produced.
    pub explain: bool,
    /// `Timestamp`: when the request was sent, Unix seconds (a value past 62167219200 is
    /// read as Kazoo's Gregorian seconds). It dates an endpoint recording.
    pub timestamp: Option<i64>,
}

impl BuildRequest {
    /// `Endpoint-ID`, when the request names one.
    pub fn endpoint_id(&self) -> Option<&str> {
        match &self.target {
            Target::Endpoint(id) => Some(id),
            Target::Members(_) => None,
        }
    }
}

/// The reply-address part of a request, which can be read even from a request that fails
/// validation, so the error can still be sent back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Envelope {
    /// `Msg-ID` as received (may be missing in a bad request).
    pub msg_id: Option<String>,
    /// `Server-ID` as received.
    pub server_id: Option<String>,
    /// `Account-ID`, echoed when it is a string.
    pub account_id: Option<String>,
    /// `Call-ID`, echoed when it is a string.
    pub call_id: Option<String>,
    /// `Endpoint-ID`, echoed when it is a string.
    pub endpoint_id: Option<String>,
}

impl Envelope {
    /// Reads whatever string envelope fields the body has. An empty string counts as
    /// absent: an empty `Server-ID` is no reply address, and an empty `Msg-ID` is never
    /// echoed (Kazoo's correlation would match nothing with it).
    pub fn of(body: &Object) -> Self {
        Self::read(|k| crate::kz_json::field(body, k).and_then(Value::as_str))
    }

    /// [`Envelope::of`] a body as it was read from the message.
    pub fn of_json(body: &JsonObject<'_>) -> Self {
        Self::read(|k| match body.field(k) {
            Some(Json::Str(v)) => Some(v.as_ref()),
            _ => None,
        })
    }

    /// The envelope from `string`, a body's string field by name.
    fn read<'b>(string: impl Fn(&str) -> Option<&'b str>) -> Self {
        let s = |k: &str| string(k).filter(|v| !v.is_empty()).map(str::to_owned);
        Self {
            msg_id: s("Msg-ID"),
            server_id: s("Server-ID"),
            account_id: s("Account-ID"),
            call_id: s("Call-ID"),
            endpoint_id: s("Endpoint-ID"),
        }
    }
}

fn req_str<'o>(o: &'o JsonObject<'_>, key: &str, what: &str) -> Result<&'o str, BuildError> {
    match o.field(key) {
        None | Some(Json::Null) => Err(BuildError::invalid(format!("{what} is required"))),
        Some(Json::Str(s)) if !s.is_empty() => Ok(s),
        Some(Json::Str(_)) => Err(BuildError::invalid(format!("{what} must not be empty"))),
        Some(_) => Err(BuildError::invalid(format!("{what} must be a string"))),
    }
}

fn opt_str(o: &JsonObject<'_>, key: &str, what: &str) -> Result<Option<String>, BuildError> {
    opt_str_named(o, key, || what.to_owned())
}

/// [`opt_str`] with the field's name for the error built only on an error: the request's
/// `Call` fields are read on every request.
fn opt_str_named(
    o: &JsonObject<'_>,
    key: &str,
    what: impl FnOnce() -> String,
) -> Result<Option<String>, BuildError> {
    match o.field(key) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::Str(s)) if s.is_empty() => Ok(None),
        Some(Json::Str(s)) => Ok(Some(s.as_ref().to_owned())),
        Some(_) => Err(BuildError::invalid(format!("{} must be a string", what()))),
    }
}

/// The object under `key` as the engine keeps it (empty when absent or null).
fn opt_obj(o: &JsonObject<'_>, key: &str, what: &str) -> Result<Object, BuildError> {
    Ok(opt_obj_ref(o, key, what)?
        .map(JsonObject::to_object)
        .unwrap_or_default())
}

/// The object under `key`, borrowed (`None` when absent or null).
fn opt_obj_ref<'o, 'a>(
    o: &'o JsonObject<'a>,
    key: &str,
    what: &str,
) -> Result<Option<&'o JsonObject<'a>>, BuildError> {
    match o.field(key) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::Object(m)) => Ok(Some(m)),
        Some(_) => Err(BuildError::invalid(format!("{what} must be a JSON object"))),
    }
}

fn valid_id(id: &str, what: &str) -> Result<(), BuildError> {
    if is_valid_id(id) {
        Ok(())
    } else {
        Err(BuildError::invalid(format!(
            "{what} must be 32 lowercase letters or digits"
        )))
    }
}

fn opt_seconds(o: &JsonObject<'_>, key: &str, what: &str) -> Result<Option<i64>, BuildError> {
    match o.field(key) {
        None | Some(Json::Null) => Ok(None),
        Some(v @ (Json::Number(_) | Json::Str(_))) => as_integer(Some(&v.to_value()))
            .map(Some)
            .ok_or_else(|| BuildError::invalid(format!("{what} must be an integer"))),
        Some(_) => Err(BuildError::invalid(format!("{what} must be an integer"))),
    }
}

/// `key`'s value as `serde_json` holds it, for the `kz_json` conventions (a scalar: cheap).
fn value(o: &JsonObject<'_>, key: &str) -> Option<Value> {
    o.field(key).map(Json::to_value)
}

/// The callflow action's data (`Properties`) that the builder reads, parsed once at the
/// edge. Booleans and strings are read as Kazoo reads them (`kz_term:is_true`, non-empty
/// strings); `timeout` and `delay` must be integers (or integer strings), as a ring-group
/// member's must: Kazoo's builder would crash on `"abc"`, so it is an `invalid_request`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Properties {
    /// `source`: the callflow module (`cf_device`, `cf_ring_group`, …).
    pub source: Option<String>,
    /// `can_call_self`.
    pub can_call_self: bool,
    /// `can_text_self` (`None`: not given; a non-boolean given reads as true).
    pub can_text_self: Option<bool>,
    /// `static_invite`: overrides the SIP `To-User`.
    pub static_invite: Option<String>,
    /// `suppress_clid`.
    pub suppress_clid: bool,
    /// `timeout`, seconds.
    pub timeout: Option<i64>,
    /// `delay`, seconds.
    pub delay: Option<i64>,
}

impl Properties {
    fn parse(o: &JsonObject<'_>) -> Result<Self, BuildError> {
        let text = |k: &str| crate::kz_json::ne_str(value(o, k).as_ref()).map(str::to_owned);
        Ok(Self {
            source: text("source"),
            can_call_self: crate::kz_json::is_true(value(o, "can_call_self").as_ref()),
            can_text_self: value(o, "can_text_self")
                .map(|v| crate::kz_json::bool_or(Some(&v), true)),
            static_invite: text("static_invite"),
            suppress_clid: crate::kz_json::is_true(value(o, "suppress_clid").as_ref()),
            timeout: opt_seconds(o, "timeout", "Properties.timeout")?,
            delay: opt_seconds(o, "delay", "Properties.delay")?,
        })
    }
}

/// Seconds from year 0 (Kazoo's Gregorian seconds) to 1970.
const GREGORIAN_UNIX_OFFSET: i64 = 62_167_219_200;

/// Validates and parses a `build_req` body that is parsed already.
pub fn parse_request(body: &Object) -> Result<BuildRequest, BuildError> {
    parse_request_json(&JsonObject::borrowed(body))
}

/// Validates and parses a `build_req` body as it was read from the message.
pub fn parse_request_json(body: &JsonObject<'_>) -> Result<BuildRequest, BuildError> {
    let category = req_str(body, "Event-Category", "Event-Category")?;
    if category != EVENT_CATEGORY {
        return Err(BuildError::invalid(format!(
            "Event-Category must be \"{EVENT_CATEGORY}\""
        )));
    }
    let name = req_str(body, "Event-Name", "Event-Name")?;
    if name != BUILD_REQ {
        return Err(BuildError::invalid(format!(
            "Event-Name must be \"{BUILD_REQ}\""
        )));
    }
    let msg_id = req_str(body, "Msg-ID", "Msg-ID")?.to_owned();
    let app_name = req_str(body, "App-Name", "App-Name")?.to_owned();
    req_str(body, "App-Version", "App-Version")?;
    let server_id = opt_str(body, "Server-ID", "Server-ID")?;

    let account_id = req_str(body, "Account-ID", "Account-ID")?.to_owned();
    valid_id(&account_id, "Account-ID")?;
    let call_id = req_str(body, "Call-ID", "Call-ID")?.to_owned();

    let no_properties = JsonObject::default();
    let properties = opt_obj_ref(body, "Properties", "Properties")?.unwrap_or(&no_properties);
    let endpoint_id = opt_str(body, "Endpoint-ID", "Endpoint-ID")?;
    if let Some(id) = &endpoint_id {
        valid_id(id, "Endpoint-ID")?;
    }
    // With an Endpoint-ID, a member list is ignored (not even validated).
    let members = match endpoint_id {
        Some(_) => None,
        None => parse_members(properties)?,
    };
    let properties = Properties::parse(properties)?;
    let target = match (endpoint_id, members) {
        (Some(id), _) => Target::Endpoint(id),
        (None, Some(m)) => Target::Members(m),
        (None, None) => {
            if body.contains_key("Endpoint") {
                return Err(BuildError::invalid(
                    "Endpoint (an inline endpoint document) is not supported; send Endpoint-ID",
                ));
            }
            return Err(BuildError::invalid(
                "Endpoint-ID is required (or a non-empty Properties.endpoints list)",
            ));
        }
    };
    let call = parse_call(body)?;
    let explain = match value(body, "Explain") {
        None | Some(Value::Null) => false,
        Some(v @ (Value::Bool(_) | Value::String(_)))
            if crate::kz_json::is_true(Some(&v)) || crate::kz_json::is_false(Some(&v)) =>
        {
            crate::kz_json::is_true(Some(&v))
        }
        Some(_) => return Err(BuildError::invalid("Explain must be a boolean")),
    };
    let timestamp = crate::kz_json::as_integer(value(body, "Timestamp").as_ref()).map(|t| {
        if t > GREGORIAN_UNIX_OFFSET {
            t - GREGORIAN_UNIX_OFFSET
        } else {
            t
        }
    });
    Ok(BuildRequest {
        explain,
        timestamp,
        msg_id,
        server_id,
        app_name,
        account_id,
        call_id,
        target,
        properties,
        call,
    })
}

fn parse_members(properties: &JsonObject<'_>) -> Result<Option<Vec<Member>>, BuildError> {
    let list = match properties.field("endpoints") {
        None | Some(Json::Null) => return Ok(None),
        Some(Json::Array(a)) if a.is_empty() => return Ok(None),
        Some(Json::Array(a)) => a,
        Some(_) => {
            return Err(BuildError::invalid(
                "Properties.endpoints must be a list of members",
            ));
        }
    };
    let mut members = Vec::with_capacity(list.len());
    for (i, m) in list.iter().enumerate() {
        let what = format!("Properties.endpoints[{i}]");
        let Json::Object(m) = m else {
            return Err(BuildError::invalid(format!("{what} must be a JSON object")));
        };
        let id = req_str(m, "id", &format!("{what}.id"))?.to_owned();
        valid_id(&id, &format!("{what}.id"))?;
        let kind = match opt_str(m, "endpoint_type", &format!("{what}.endpoint_type"))? {
            None => MemberType::Device,
            Some(t) => MemberType::parse(&t).ok_or_else(|| {
                BuildError::invalid(format!(
                    "{what}.endpoint_type must be one of device, user, group"
                ))
            })?,
        };
        members.push(Member {
            id,
            kind,
            delay: opt_seconds(m, "delay", &format!("{what}.delay"))?,
            timeout: opt_seconds(m, "timeout", &format!("{what}.timeout"))?,
        });
    }
    Ok(Some(members))
}

/// Reads the call state from `Call`, falling back to the flat copies at the top level
/// (`Call` wins when both are present).
fn parse_call(body: &JsonObject<'_>) -> Result<Call, BuildError> {
    let no_call = JsonObject::default();
    let call = opt_obj_ref(body, "Call", "Call")?.unwrap_or(&no_call);
    let field = |key: &str| -> Result<Option<String>, BuildError> {
        match opt_str_named(call, key, || format!("Call.{key}"))? {
            Some(v) => Ok(Some(v)),
            None => opt_str(body, key, key),
        }
    };
    let ccvs = if call.field("Custom-Channel-Vars").is_some() {
        opt_obj(call, "Custom-Channel-Vars", "Call.Custom-Channel-Vars")?
    } else {
        opt_obj(body, "Custom-Channel-Vars", "Custom-Channel-Vars")?
    };
    let kvs = opt_obj(call, "Key-Value-Store", "Call.Key-Value-Store")?;
    let authorizing_id = field("Authorizing-ID")?;
    let owner_id = field("Owner-ID")?;
    Ok(Call {
        authorizing_id,
        owner_id,
        caller_id_name: field("Caller-ID-Name")?,
        caller_id_number: field("Caller-ID-Number")?,
        request: field("Request")?,
        request_user: field("Request-User")?,
        request_realm: field("Request-Realm")?,
        inception: field("Inception")?,
        other_leg_call_id: field("Other-Leg-Call-ID")?,
        resource_type: field("Resource-Type")?,
        language: field("Language")?,
        account_realm: field("Account-Realm")?,
        call_id: opt_str(call, "Call-ID", "Call.Call-ID")?,
        ccvs,
        kvs,
    })
}

/// The reply a build produces: legs, or an error.
pub type BuildResult = Result<Vec<crate::leg::Leg>, BuildError>;

/// Who we are on the wire.
#[derive(Debug, Clone)]
pub struct Identity {
    /// Our `Node` (for example `kz-endpoint@host`).
    pub node: String,
    /// Our zone, for zone-level `system_config` values (Kazoo's default zone: `local`).
    pub zone: String,
}

impl Identity {
    /// An identity with the given node name, in zone `local`.
    pub fn new(node: impl Into<String>) -> Self {
        Self {
            node: node.into(),
            zone: "local".into(),
        }
    }

    /// The same identity in zone `zone`.
    pub fn with_zone(mut self, zone: impl Into<String>) -> Self {
        self.zone = zone.into();
        self
    }

    /// Where this worker's `system_config` values are looked up.
    pub fn config_scope(&self) -> crate::engine::config::Scope {
        crate::engine::config::Scope {
            node: self.node.clone(),
            zone: self.zone.clone(),
        }
    }
}

/// A reply body, serialised: the bytes that are published. Built straight from the typed
/// legs (no JSON tree in between); [`Reply::json`] parses it back for tools and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply(Vec<u8>);

impl Reply {
    /// The JSON text, as published.
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }

    /// The reply as a JSON value.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.0).unwrap_or(Value::Null)
    }
}

impl std::fmt::Display for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.0))
    }
}

/// Builds the reply body (`build_resp` or `build_error`) with the Kazoo envelope, and the
/// `Explain` lines when there are any.
pub fn reply_body(
    identity: &Identity,
    envelope: &Envelope,
    result: &BuildResult,
    explain: &[String],
) -> Reply {
    let body = ReplyBody {
        identity,
        envelope,
        result,
        explain,
    };
    // Serialising cannot fail: every key is a string and every number an integer.
    Reply(crate::json_writer::to_vec(&body).unwrap_or_default())
}

/// The reply's fields, in the order Kazoo's envelope puts them.
struct ReplyBody<'r> {
    identity: &'r Identity,
    envelope: &'r Envelope,
    result: &'r BuildResult,
    explain: &'r [String],
}

impl serde::Serialize for ReplyBody<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("App-Name", APP_NAME)?;
        m.serialize_entry("App-Version", APP_VERSION)?;
        m.serialize_entry("Event-Category", EVENT_CATEGORY)?;
        m.serialize_entry("Node", &self.identity.node)?;
        // Kazoo requires a non-empty Msg-ID; a request without one still gets a well-formed
        // error.
        m.serialize_entry(
            "Msg-ID",
            self.envelope.msg_id.as_deref().unwrap_or("undefined"),
        )?;
        for (k, v) in [
            ("Account-ID", &self.envelope.account_id),
            ("Call-ID", &self.envelope.call_id),
            ("Endpoint-ID", &self.envelope.endpoint_id),
        ] {
            if let Some(v) = v {
                m.serialize_entry(k, v)?;
            }
        }
        match self.result {
            Ok(legs) => {
                m.serialize_entry("Event-Name", BUILD_RESP)?;
                m.serialize_entry("Endpoints", legs)?;
            }
            Err(e) => {
                m.serialize_entry("Event-Name", BUILD_ERROR)?;
                m.serialize_entry("Error-Code", e.code.as_str())?;
                m.serialize_entry("Error-Message", &e.message)?;
            }
        }
        if !self.explain.is_empty() {
            m.serialize_entry("Explain", self.explain)?;
        }
        m.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn base() -> Object {
        json!({
            "Event-Category": "endpoint", "Event-Name": "build_req", "Msg-ID": "m1",
            "App-Name": "callflow", "App-Version": "4.0.0", "Server-ID": "q1",
            "Account-ID": "4a686300000000000000000000000001", "Call-ID": "c1",
            "Endpoint-ID": "5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b",
            "Call": {"Authorizing-ID": "9b1d7c2e5f4a4b0c8d3e2f1a0b9c8d7e", "Resource-Type": "audio"}
        })
        .as_object()
        .unwrap()
        .clone()
    }

    fn err_of(body: &Object) -> String {
        parse_request(body).unwrap_err().message
    }

    #[test]
    fn parses_a_device_request() {
        let r = parse_request(&base()).unwrap();
        assert_eq!(
            r.target,
            Target::Endpoint("5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b".into())
        );
        assert_eq!(r.call.resource_type.as_deref(), Some("audio"));
        assert_eq!(r.server_id.as_deref(), Some("q1"));
    }

    #[test]
    fn names_the_bad_field() {
        let mut b = base();
        b.remove("Account-ID");
        assert_eq!(err_of(&b), "Account-ID is required");
        let mut b = base();
        b.insert("Endpoint-ID".into(), json!("ABC"));
        assert_eq!(
            err_of(&b),
            "Endpoint-ID must be 32 lowercase letters or digits"
        );
        let mut b = base();
        b.insert("Call".into(), json!({"Owner-ID": 5}));
        assert_eq!(err_of(&b), "Call.Owner-ID must be a string");
        let mut b = base();
        b.remove("Endpoint-ID");
        assert!(err_of(&b).starts_with("Endpoint-ID is required"));
    }

    #[test]
    fn ring_group_members() {
        let mut b = base();
        b.remove("Endpoint-ID");
        b.insert(
            "Properties".into(),
            json!({"endpoints": [
                {"id": "5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b", "delay": 5, "timeout": "30"},
                {"id": "c0ffee00c0ffee00c0ffee00c0ffee01", "endpoint_type": "user"}
            ]}),
        );
        let r = parse_request(&b).unwrap();
        let Target::Members(m) = r.target else {
            panic!("members expected")
        };
        assert_eq!(m[0].delay, Some(5));
        assert_eq!(m[0].timeout, Some(30));
        assert_eq!(m[1].kind, MemberType::User);
        b.insert(
            "Properties".into(),
            json!({"endpoints": [{"id": "5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b", "endpoint_type": "trunk"}]}),
        );
        assert_eq!(
            err_of(&b),
            "Properties.endpoints[0].endpoint_type must be one of device, user, group"
        );
    }

    #[test]
    fn empty_envelope_fields_are_absent() {
        let mut b = base();
        b.insert("Msg-ID".into(), json!(""));
        b.insert("Server-ID".into(), json!(""));
        assert_eq!(err_of(&b), "Msg-ID must not be empty");
        let env = Envelope::of(&b);
        assert_eq!(env.msg_id, None);
        assert_eq!(env.server_id, None);
        let body = reply_body(
            &Identity::new("n@h"),
            &env,
            &Err(BuildError::invalid("Msg-ID must not be empty")),
            &[],
        )
        .json();
        assert_eq!(body["Msg-ID"], "undefined");
    }

    #[test]
    fn error_reply_echoes_msg_id() {
        let env = Envelope::of(&base());
        let body = reply_body(
            &Identity::new("n@h"),
            &env,
            &Err(BuildError::new(ErrorCode::NoEndpoints, "nothing")),
            &[],
        );
        // The envelope's fields in Kazoo's order, the error after them.
        assert_eq!(
            body.to_string(),
            r#"{"App-Name":"kz-endpoint","App-Version":"#.to_owned()
                + &serde_json::to_string(APP_VERSION).unwrap()
                + r#","Event-Category":"endpoint","Node":"n@h","Msg-ID":"m1","Account-ID":"4a686300000000000000000000000001","Call-ID":"c1","Endpoint-ID":"5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b","Event-Name":"build_error","Error-Code":"no_endpoints","Error-Message":"nothing"}"#
        );
        let body = body.json();
        assert_eq!(body["Msg-ID"], "m1");
        assert_eq!(body["Event-Name"], "build_error");
        assert_eq!(body["Error-Code"], "no_endpoints");
        assert!(body.get("Endpoints").is_none());
    }
}
