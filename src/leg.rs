//! A call leg as a type: Kazoo's bridge endpoint (`kapi_dialplan` `Endpoints` item), the
//! unit a build answers with.
//!
//! The engine decides each field once and fills one of these; nothing downstream reads a leg
//! back by string key. Each type serialises itself straight to the JSON ecallmgr expects,
//! with Kazoo's field names, order and value types: timeouts are decimal strings, some flags
//! the string `"true"` (present only when set) and others booleans; absent values are left
//! out, never `null` (`kazoo-endpoint-rules.md` section 6).
//!
//! - [`DeviceLeg`]: a device's own leg, SIP (`Invite-Format` from the device) or push (a
//!   `route` leg through the device's `Token-Proxy`), with an optional nested `Failover`.
//! - [`LoopbackLeg`]: a call-forward or failover leg, to a number through the loopback.
//! - [`Headers`] (`Custom-SIP-Headers`), [`ChannelVars`] (`Custom-Channel-Vars`).
//!
//! One exception to "typed": outbound formatters (`kz_formatters`) may rewrite any field of a
//! SIP leg, to any JSON value. A leg that has formatters is therefore serialised once when it
//! is built, the formatters run on that JSON ([`DeviceLeg::format`]), and the leg answers
//! with that JSON from then on. Only formatted legs pay for it.

use std::borrow::Cow;

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;

use crate::kz_json::Object;

/// A caller or callee ID: number and name, each possibly absent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Clid {
    /// The number.
    pub number: Option<String>,
    /// The name.
    pub name: Option<String>,
}

/// One leg of a build.
#[derive(Debug, Clone, PartialEq)]
pub enum Leg {
    /// A device's SIP or push leg.
    Device(Box<DeviceLeg>),
    /// A call-forward or failover leg through the loopback.
    Loopback(Box<LoopbackLeg>),
}

impl Leg {
    /// The leg as a JSON object (what is sent; for tests, formatters and tools).
    pub fn to_object(&self) -> Object {
        match serde_json::to_value(self) {
            Ok(Value::Object(o)) => o,
            // Serialising into a `Value` cannot fail for these types, and a leg is an object.
            _ => Object::new(),
        }
    }

    /// Nests the user's failover in a device's SIP leg that has none of its own.
    pub fn nest_user_failover(&mut self, failover: LoopbackLeg) {
        if let Leg::Device(d) = self {
            d.user_failover = Some(failover);
        }
    }

    /// The loopback leg's `Route`, for a loopback leg.
    pub fn loopback_route(&self) -> Option<&str> {
        match self {
            Leg::Loopback(l) => Some(&l.route),
            Leg::Device(_) => None,
        }
    }

    /// The leg in words: `SIP leg to d1@realm with failover to 2000`, `forward leg to +1555`.
    pub fn describe(&self) -> String {
        match self {
            Leg::Loopback(l) => l.describe(),
            Leg::Device(d) => d.describe(),
        }
    }
}

impl Serialize for Leg {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Leg::Device(d) => d.serialize(s),
            Leg::Loopback(l) => l.serialize(s),
        }
    }
}

/// Which of a device's own legs this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceLegKind {
    /// The SIP leg (rules file 6.1).
    Sip,
    /// The push leg (`create_push_endpoint`): `route` through the `Token-Proxy`, a fixed
    /// `Endpoint-Delay` of 5 (an integer), `Metaflows` and `Endpoint-Actions` only when set.
    Push,
}

/// The caller and callee IDs, privacy and media fields that a device's legs share.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallerFields {
    /// `Outbound-Caller-ID-*`; none when the action suppresses caller IDs.
    pub caller: Option<Clid>,
    /// `Outbound-Callee-ID-*`; none when the action suppresses caller IDs.
    pub callee: Option<Clid>,
    /// `Privacy-Hide-Name`, `Privacy-Hide-Number` (written only when true) and
    /// `Privacy-Method`.
    pub privacy: Privacy,
    /// `Ignore-Early-Media: "true"`.
    pub ignore_early_media: bool,
    /// `Bypass-Media: "true"`.
    pub bypass_media: bool,
    /// `Endpoint-Progress-Timeout`, seconds.
    pub progress_timeout: Option<String>,
}

/// The privacy fields of a leg.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Privacy {
    /// `Privacy-Hide-Name: true`.
    pub hide_name: bool,
    /// `Privacy-Hide-Number: true`.
    pub hide_number: bool,
    /// `Privacy-Method`.
    pub method: String,
}

/// The T.38 fields of a fax device's SIP leg (rules file 6.11).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum T38 {
    /// Both sides fax (or neither, with a known caller): passthrough.
    Passthrough,
    /// One side faxes: the gateway on `peer` or `self`.
    Gateway(&'static str),
    /// No fax on either side, caller unknown: everything off.
    Off,
}

/// A device's own leg: SIP or push.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceLeg {
    /// SIP or push.
    pub kind: DeviceLegKind,
    /// `Invite-Format`.
    pub invite_format: &'static str,
    /// `To-User`.
    pub to_user: Option<String>,
    /// `To-Username`.
    pub to_username: Option<String>,
    /// `To-Realm`.
    pub to_realm: Option<String>,
    /// `To-DID`.
    pub to_did: Option<String>,
    /// `To-IP`.
    pub to_ip: Option<String>,
    /// `SIP-Transport`.
    pub sip_transport: Option<String>,
    /// `SIP-Interface`.
    pub sip_interface: Option<String>,
    /// `Route`.
    pub route: Option<String>,
    /// `Proxy-IP`.
    pub proxy_ip: Option<String>,
    /// `Forward-IP`.
    pub forward_ip: Option<String>,
    /// Caller and callee IDs, privacy, media.
    pub caller: CallerFields,
    /// `Endpoint-Timeout`, seconds (SIP legs).
    pub endpoint_timeout: Option<String>,
    /// `Endpoint-Delay`, seconds (SIP legs; a push leg's is always 5).
    pub endpoint_delay: Option<String>,
    /// `Endpoint-ID`.
    pub endpoint_id: String,
    /// `Codecs`: audio then video; absent when empty.
    pub codecs: Vec<String>,
    /// `Hold-Media`.
    pub hold_media: Option<String>,
    /// `Presence-ID`.
    pub presence_id: Option<String>,
    /// `Custom-SIP-Headers`.
    pub headers: Headers,
    /// `Custom-Channel-Vars`.
    pub ccvs: ChannelVars,
    /// `Flags`: the merged `outbound_flags`.
    pub flags: Flags,
    /// `Ignore-Completed-Elsewhere`.
    pub ignore_completed_elsewhere: bool,
    /// The nested `Failover` of the device's own failover target.
    pub failover: Option<LoopbackLeg>,
    /// `Metaflows` (merged, nulls left out).
    pub metaflows: Object,
    /// `Endpoint-Actions` (`{}` when nothing records).
    pub endpoint_actions: Value,
    /// The T.38 fields, for a fax device.
    pub t38: Option<T38>,
    /// The user's failover, nested afterwards on a device that had none of its own: Kazoo's
    /// builder adds it to the finished leg, so it comes last.
    pub user_failover: Option<LoopbackLeg>,
    /// The leg as its outbound formatters left it, when it has formatters.
    pub formatted: Option<Object>,
}

/// A leg's `Flags`: the merged `outbound_flags`, `{"static": [...], "dynamic": [...]}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flags {
    /// The static flags (flag names).
    pub fixed: Vec<String>,
    /// The dynamic flags (the names of the fields they are read from).
    pub dynamic: Vec<String>,
}

impl Serialize for Flags {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(2))?;
        m.serialize_entry("static", &self.fixed)?;
        m.serialize_entry("dynamic", &self.dynamic)?;
        m.end()
    }
}

impl DeviceLeg {
    /// Runs `apply` (the outbound formatters) on the leg's JSON; the leg answers with the
    /// result from then on.
    pub fn format(&mut self, apply: impl FnOnce(&mut Object)) {
        let mut json = match serde_json::to_value(&*self) {
            Ok(Value::Object(o)) => o,
            _ => return,
        };
        apply(&mut json);
        self.formatted = Some(json);
    }

    /// A text field as sent (after formatters), for the explanation.
    fn text<'s>(&'s self, key: &str, typed: Option<&'s str>) -> Option<&'s str> {
        match &self.formatted {
            Some(json) => json.get(key).and_then(Value::as_str),
            None => typed,
        }
    }

    fn describe(&self) -> String {
        let failover = match (&self.user_failover, &self.formatted) {
            (Some(f), _) => Some(f.route.as_str()),
            (None, Some(json)) => json
                .get("Failover")
                .and_then(|f| f.get("Route"))
                .and_then(Value::as_str),
            (None, None) => self.failover.as_ref().map(|f| f.route.as_str()),
        };
        sip_words(
            self.text("To-Username", self.to_username.as_deref()),
            self.text("To-Realm", self.to_realm.as_deref()),
            self.text("Route", self.route.as_deref()),
            self.text("To-User", self.to_user.as_deref()),
            failover,
        )
    }
}

/// A leg given as JSON (a captured reply's) in words, as [`Leg::describe`] says it.
pub fn describe_json(leg: &Object) -> String {
    let s = |k: &str| leg.get(k).and_then(Value::as_str);
    if s("Invite-Format") == Some("loopback") {
        let failover = leg
            .get("Custom-Channel-Vars")
            .and_then(|c| c.get("Is-Failover"))
            .is_some_and(|v| crate::kz_json::is_true(Some(v)));
        return loopback_words(failover, s("Route").unwrap_or("?"));
    }
    let failover = leg
        .get("Failover")
        .and_then(|f| f.get("Route"))
        .and_then(Value::as_str);
    sip_words(
        s("To-Username"),
        s("To-Realm"),
        s("Route"),
        s("To-User"),
        failover,
    )
}

fn loopback_words(failover: bool, route: &str) -> String {
    let what = if failover { "failover" } else { "forward" };
    format!("{what} leg to {route}")
}

fn sip_words(
    username: Option<&str>,
    realm: Option<&str>,
    route: Option<&str>,
    to_user: Option<&str>,
    failover: Option<&str>,
) -> String {
    let to = match (username, route) {
        (Some(u), _) => format!("{u}@{}", realm.unwrap_or("?")),
        (None, Some(r)) => r.to_owned(),
        (None, None) => to_user.unwrap_or("?").to_owned(),
    };
    match failover {
        Some(f) => format!("SIP leg to {to} with failover to {f}"),
        None => format!("SIP leg to {to}"),
    }
}

/// Writes a leg's fields in order, leaving absent ones out.
struct Fields<M>(M);

impl<M: SerializeMap> Fields<M> {
    fn put<V: Serialize + ?Sized>(&mut self, key: &str, v: &V) -> Result<(), M::Error> {
        self.0.serialize_entry(key, v)
    }

    fn opt(&mut self, key: &str, v: &Option<String>) -> Result<(), M::Error> {
        match v {
            Some(v) => self.put(key, v),
            None => Ok(()),
        }
    }

    /// Kazoo's string booleans: `"true"` when set, absent otherwise.
    fn flag(&mut self, key: &str, set: bool) -> Result<(), M::Error> {
        if set { self.put(key, "true") } else { Ok(()) }
    }

    /// A boolean `true` when set, absent otherwise.
    fn yes(&mut self, key: &str, set: bool) -> Result<(), M::Error> {
        if set { self.put(key, &true) } else { Ok(()) }
    }

    fn caller_ids(&mut self, caller: &Option<Clid>, callee: &Option<Clid>) -> Result<(), M::Error> {
        if let Some(c) = caller {
            self.opt("Outbound-Caller-ID-Number", &c.number)?;
            self.opt("Outbound-Caller-ID-Name", &c.name)?;
        }
        if let Some(c) = callee {
            self.opt("Outbound-Callee-ID-Number", &c.number)?;
            self.opt("Outbound-Callee-ID-Name", &c.name)?;
        }
        Ok(())
    }

    fn privacy(&mut self, p: &Privacy) -> Result<(), M::Error> {
        self.yes("Privacy-Hide-Name", p.hide_name)?;
        self.yes("Privacy-Hide-Number", p.hide_number)?;
        self.put("Privacy-Method", &p.method)
    }

    fn caller_fields(&mut self, c: &CallerFields) -> Result<(), M::Error> {
        self.caller_ids(&c.caller, &c.callee)?;
        self.privacy(&c.privacy)?;
        self.flag("Ignore-Early-Media", c.ignore_early_media)?;
        self.flag("Bypass-Media", c.bypass_media)?;
        self.opt("Endpoint-Progress-Timeout", &c.progress_timeout)
    }

    fn codecs(&mut self, codecs: &[String]) -> Result<(), M::Error> {
        if codecs.is_empty() {
            Ok(())
        } else {
            self.put("Codecs", codecs)
        }
    }

    fn t38(&mut self, t: T38) -> Result<(), M::Error> {
        match t {
            T38::Passthrough => {
                self.put("Enable-T38-Fax", &true)?;
                self.put("Enable-T38-Passthrough", &true)
            }
            T38::Gateway(side) => {
                self.put("Enable-T38-Fax", &true)?;
                self.put("Enable-T38-Fax-Request", &true)?;
                self.put("Enable-T38-Gateway", side)
            }
            T38::Off => {
                self.put("Enable-T38-Fax", &false)?;
                self.put("Enable-T38-Fax-Request", &false)?;
                self.put("Enable-T38-Passthrough", &false)
            }
        }
    }

    fn end(self) -> Result<M::Ok, M::Error> {
        self.0.end()
    }
}

impl Serialize for DeviceLeg {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut f = Fields(s.serialize_map(None)?);
        if let Some(json) = &self.formatted {
            for (k, v) in json {
                f.put(k, v)?;
            }
            if let Some(uf) = &self.user_failover {
                f.put("Failover", uf)?;
            }
            return f.end();
        }
        f.put("Invite-Format", self.invite_format)?;
        f.opt("To-User", &self.to_user)?;
        f.opt("To-Username", &self.to_username)?;
        f.opt("To-Realm", &self.to_realm)?;
        f.opt("To-DID", &self.to_did)?;
        match self.kind {
            DeviceLegKind::Sip => {
                f.opt("To-IP", &self.to_ip)?;
                f.opt("SIP-Transport", &self.sip_transport)?;
                f.opt("SIP-Interface", &self.sip_interface)?;
                f.opt("Route", &self.route)?;
                f.opt("Proxy-IP", &self.proxy_ip)?;
                f.opt("Forward-IP", &self.forward_ip)?;
                f.caller_fields(&self.caller)?;
                f.opt("Endpoint-Timeout", &self.endpoint_timeout)?;
                f.opt("Endpoint-Delay", &self.endpoint_delay)?;
                f.put("Endpoint-ID", &self.endpoint_id)?;
            }
            DeviceLegKind::Push => {
                f.opt("SIP-Transport", &self.sip_transport)?;
                f.opt("Route", &self.route)?;
                f.caller_fields(&self.caller)?;
                f.put("Endpoint-ID", &self.endpoint_id)?;
                f.put("Endpoint-Delay", &5)?;
            }
        }
        f.codecs(&self.codecs)?;
        f.opt("Hold-Media", &self.hold_media)?;
        f.opt("Presence-ID", &self.presence_id)?;
        f.put("Custom-SIP-Headers", &self.headers)?;
        f.put("Custom-Channel-Vars", &self.ccvs)?;
        f.put("Flags", &self.flags)?;
        f.put(
            "Ignore-Completed-Elsewhere",
            &self.ignore_completed_elsewhere,
        )?;
        match self.kind {
            DeviceLegKind::Sip => {
                if let Some(fo) = &self.failover {
                    f.put("Failover", fo)?;
                }
                f.put("Metaflows", &self.metaflows)?;
                f.put("Endpoint-Actions", &self.endpoint_actions)?;
                if let Some(t) = self.t38 {
                    f.t38(t)?;
                }
            }
            DeviceLegKind::Push => {
                if !self.metaflows.is_empty() {
                    f.put("Metaflows", &self.metaflows)?;
                }
                if self
                    .endpoint_actions
                    .as_object()
                    .is_some_and(|a| !a.is_empty())
                {
                    f.put("Endpoint-Actions", &self.endpoint_actions)?;
                }
                if let Some(fo) = &self.failover {
                    f.put("Failover", fo)?;
                }
            }
        }
        if let Some(uf) = &self.user_failover {
            f.put("Failover", uf)?;
        }
        f.end()
    }
}

/// A loopback leg to a number (rules file 6.4): the call-forward leg, or a failover leg
/// (the same with `Is-Failover`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoopbackLeg {
    /// `To-DID`.
    pub to_did: Option<String>,
    /// `Route`: the number.
    pub route: String,
    /// `Ignore-Early-Media` (a boolean here).
    pub ignore_early_media: bool,
    /// `Endpoint-Progress-Timeout`, seconds.
    pub progress_timeout: Option<String>,
    /// `Endpoint-Timeout`, seconds.
    pub endpoint_timeout: Option<String>,
    /// `Endpoint-Delay`, seconds.
    pub endpoint_delay: Option<String>,
    /// `Presence-ID`.
    pub presence_id: Option<String>,
    /// `Outbound-Caller-ID-*` (an internal caller's external ID).
    pub caller: Option<Clid>,
    /// `Outbound-Callee-ID-*`.
    pub callee: Option<Clid>,
    /// The privacy fields.
    pub privacy: Privacy,
    /// `Custom-SIP-Headers`.
    pub headers: Headers,
    /// `Custom-Channel-Vars`, with the call-forward block.
    pub ccvs: ChannelVars,
}

impl LoopbackLeg {
    /// A failover leg (rather than a call-forward leg).
    pub fn is_failover(&self) -> bool {
        self.ccvs.forward.as_ref().is_some_and(|f| f.is_failover)
    }

    fn describe(&self) -> String {
        loopback_words(self.is_failover(), &self.route)
    }
}

impl Serialize for LoopbackLeg {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut f = Fields(s.serialize_map(None)?);
        f.put("Invite-Format", "loopback")?;
        f.opt("To-DID", &self.to_did)?;
        f.put("Route", &self.route)?;
        f.put("Ignore-Early-Media", &self.ignore_early_media)?;
        f.put("Bypass-Media", "false")?;
        f.opt("Endpoint-Progress-Timeout", &self.progress_timeout)?;
        f.opt("Endpoint-Timeout", &self.endpoint_timeout)?;
        f.opt("Endpoint-Delay", &self.endpoint_delay)?;
        f.opt("Presence-ID", &self.presence_id)?;
        f.caller_ids(&self.caller, &self.callee)?;
        f.privacy(&self.privacy)?;
        f.put("Custom-SIP-Headers", &self.headers)?;
        f.put("Custom-Channel-Vars", &self.ccvs)?;
        f.end()
    }
}

/// `Custom-SIP-Headers`: names chosen by documents, in the order first set; setting a name
/// again replaces its value in place. The builder's own names (`X-KAZOO-AOR`, …) are
/// static, so a leg's headers allocate only for the names documents choose.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Headers(Vec<(Cow<'static, str>, Value)>);

impl Headers {
    /// No headers.
    pub fn new() -> Self {
        Self(Vec::new())
    }

    /// Sets `name` to `value`, in place when it is set already.
    pub fn insert(&mut self, name: impl Into<Cow<'static, str>>, value: Value) {
        let name = name.into();
        match self.0.iter_mut().find(|(k, _)| *k == name) {
            Some((_, v)) => *v = value,
            None => self.0.push((name, value)),
        }
    }

    /// The headers, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.0.iter().map(|(k, v)| (k.as_ref(), v))
    }
}

impl Serialize for Headers {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

/// `Custom-Channel-Vars` (rules file 6.3).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChannelVars {
    /// `Authorizing-ID`: the endpoint.
    pub authorizing_id: String,
    /// `Authorizing-Type`: `device`, `user`, `group`.
    pub authorizing_type: &'static str,
    /// `Owner-ID`.
    pub owner_id: Option<String>,
    /// `Account-ID`.
    pub account_id: String,
    /// `Media-Webrtc: true`.
    pub media_webrtc: bool,
    /// `RTCP-MUX`.
    pub rtcp_mux: Option<bool>,
    /// `Fax-Enabled: "true"`.
    pub fax_enabled: bool,
    /// `Media-Encryption-Enforce-Security`.
    pub enforce_security: bool,
    /// `RTP-Secure-Media: "true"`.
    pub srtp: bool,
    /// `ZRTP-Secure-Media` and `ZRTP-Enrollment: "true"`.
    pub zrtp: bool,
    /// `SIP-Invite-Domain`.
    pub sip_invite_domain: Option<String>,
    /// `Call-Waiting-Disabled: true`.
    pub call_waiting_disabled: bool,
    /// `Auto-Answer`, from the request's `Auto-Answer-Loopback`.
    pub auto_answer: Option<Value>,
    /// The call-forward block of a loopback leg.
    pub forward: Option<ForwardVars>,
}

/// The channel variables of a loopback leg.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ForwardVars {
    /// `Retain-CID: "true"`.
    pub retain_cid: bool,
    /// `Is-Failover: true`.
    pub is_failover: bool,
    /// `Call-Forward-From`: `onnet` or `offnet`.
    pub from: &'static str,
    /// `Call-Forward-For-UUID`.
    pub for_uuid: Option<String>,
    /// `Loopback-Request-URI`.
    pub request_uri: Option<String>,
    /// `Confirm-File`, when the forward asks for a key press.
    pub confirm_file: Option<String>,
}

/// The hangup causes after which a keypress-confirmed forward fails on one rejection.
const REJECT_ON: &str = "USER_BUSY,CALL_REJECTED,NO_ANSWER,NORMAL_CLEARING,PROGRESS_TIMEOUT";

impl Serialize for ChannelVars {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut f = Fields(s.serialize_map(None)?);
        f.put("Authorizing-ID", &self.authorizing_id)?;
        f.put("Authorizing-Type", self.authorizing_type)?;
        f.opt("Owner-ID", &self.owner_id)?;
        f.put("Account-ID", &self.account_id)?;
        f.yes("Media-Webrtc", self.media_webrtc)?;
        if let Some(mux) = self.rtcp_mux {
            f.put("RTCP-MUX", &mux)?;
        }
        f.flag("Fax-Enabled", self.fax_enabled)?;
        f.put("Media-Encryption-Enforce-Security", &self.enforce_security)?;
        f.flag("RTP-Secure-Media", self.srtp)?;
        f.flag("ZRTP-Secure-Media", self.zrtp)?;
        f.flag("ZRTP-Enrollment", self.zrtp)?;
        f.opt("SIP-Invite-Domain", &self.sip_invite_domain)?;
        f.yes("Call-Waiting-Disabled", self.call_waiting_disabled)?;
        if let Some(v) = &self.auto_answer {
            f.put("Auto-Answer", v)?;
        }
        if let Some(fw) = &self.forward {
            f.flag("Retain-CID", fw.retain_cid)?;
            f.put("Call-Forward", "true")?;
            f.yes("Is-Failover", fw.is_failover)?;
            f.put("Call-Forward-From", fw.from)?;
            f.opt("Call-Forward-For-UUID", &fw.for_uuid)?;
            f.put("Require-Ignore-Early-Media", "true")?;
            f.put("Ignore-Early-Media", "true")?;
            f.opt("Loopback-Request-URI", &fw.request_uri)?;
            f.put("Simplify-Loopback", "false")?;
            f.put("Loopback-Bowout", "true")?;
            if let Some(file) = &fw.confirm_file {
                f.put("Confirm-Key", "1")?;
                f.put("Confirm-Cancel-Timeout", &true)?;
                f.put("Confirm-Read-Timeout", "7000")?;
                f.put("Confirm-File", file)?;
                f.put("Require-Fail-On-Single-Reject", REJECT_ON)?;
            }
        }
        f.end()
    }
}
