//! Field-exact legs: the SIP leg, the call-forward (loopback) leg and the failover leg, as
//! `kz_endpoint_v4` builds them (`kazoo-endpoint-rules.md` section 6).
//!
//! This module decides each field's value from the documents and the call; the leg types in
//! [`crate::leg`] keep Kazoo's names, order and JSON types when they are serialised.

use std::cell::OnceCell;

use serde_json::{Value, json};

use super::attributes::Endpoint;
use super::call::CallContext;
use super::caller_id::{self, CallerIds, Clid};
use super::config;
use super::dialling::Dialling;
use super::forward::Forward;
use crate::kz_json::{Object, as_integer, is_true, ne_str};
use crate::leg::{
    CallerFields, ChannelVars, DeviceLeg, DeviceLegKind, ForwardVars, Headers, Leg, LoopbackLeg,
    Privacy, T38,
};

/// The `Invite-Format` values a Kazoo 4.3 ecallmgr accepts on a bridge endpoint. Any other
/// value makes Kazoo drop the leg silently.
pub const INVITE_FORMATS_4_3: [&str; 7] = [
    "username", "e164", "npan", "1npan", "route", "loopback", "contact",
];

/// What is the same on every leg of a build, computed the first time a leg needs it: the
/// caller's IDs and its outbound custom SIP headers.
#[derive(Default)]
pub struct SameOnEveryLeg {
    caller_ids: CallerIds,
    caller_headers: OnceCell<Headers>,
    /// The formatters' regexes, compiled once per build.
    regexes: super::formatters::Regexes,
}

/// Builds the legs of one build: the call's context and what its legs share.
#[derive(Clone, Copy)]
pub struct LegBuilder<'c, 'a> {
    ctx: &'c CallContext<'a>,
    shared: &'c SameOnEveryLeg,
}

impl<'c, 'a> LegBuilder<'c, 'a> {
    /// A builder for the legs of the call `ctx`.
    pub fn new(ctx: &'c CallContext<'a>, shared: &'c SameOnEveryLeg) -> Self {
        Self { ctx, shared }
    }

    /// The SIP leg of `ep`, with a nested `Failover` when `failover` is given.
    pub fn sip(
        self,
        ep: &Endpoint<'_>,
        dialling: &Dialling<'_>,
        failover: Option<&Forward<'_>>,
    ) -> Leg {
        Leg::Device(Box::new(sip_leg(self, ep, dialling, failover)))
    }

    /// A loopback leg of `ep` to `fwd.number`.
    pub fn forward(self, ep: &Endpoint<'_>, dialling: &Dialling<'_>, fwd: &Forward<'_>) -> Leg {
        Leg::Loopback(Box::new(forward_leg(self, ep, dialling, fwd)))
    }

    /// A failover leg of `ep` to `fwd.number`, to nest in a SIP leg (no timers of its own).
    pub fn nested(
        self,
        ep: &Endpoint<'_>,
        dialling: &Dialling<'_>,
        fwd: &Forward<'_>,
    ) -> LoopbackLeg {
        forward_leg(self, ep, &dialling.without_timers(), fwd)
    }

    /// The push leg of `ep`, when it can have one.
    pub fn push(
        self,
        ep: &Endpoint<'_>,
        dialling: &Dialling<'_>,
        failover: Option<&Forward<'_>>,
    ) -> Option<Leg> {
        push_leg(self, ep, dialling, failover).map(|l| Leg::Device(Box::new(l)))
    }

    /// The caller's ID for the caller-ID attribute `attr`.
    fn caller(self, attr: &str) -> Clid {
        self.shared.caller_ids.caller(self.ctx, attr)
    }
}

fn secs(v: Option<i64>) -> Option<String> {
    v.filter(|s| *s > 0).map(|s| s.to_string())
}

/// The realm of the call's account.
fn account_realm<'c>(ctx: &'c CallContext<'_>) -> Option<&'c str> {
    ctx.account_realm()
}

/// `Presence-ID` (rules file 11.6): the owner's `presence_id`, else the endpoint's, else the
/// account's, else the SIP username, else the dialled user; `@<account realm>` added when it
/// has no `@`.
pub fn presence_id(ctx: &CallContext<'_>, ep: &Endpoint<'_>) -> Option<String> {
    let p = caller_id::explicit_presence_id(ctx, ep)
        .or_else(|| ne_str(ep.sip().username))
        .or(ctx.req().call.request_user.as_deref())?;
    Some(match (p.contains('@'), account_realm(ctx)) {
        (false, Some(realm)) => [p, "@", realm].concat(),
        _ => p.to_owned(),
    })
}

/// `Hold-Media`: a plain media id becomes `/<account id>/<media id>`; paths and streams pass.
fn hold_media(ctx: &CallContext<'_>, ep: &Endpoint<'_>) -> Option<String> {
    let id = ne_str(ep.generic_leaf(|t| t.music_on_hold, "media_id"))?;
    let passes = id.contains('/')
        || id.starts_with("system_media")
        || id.starts_with("local_stream://")
        || id.starts_with("silence_stream://");
    Some(if passes {
        id.to_owned()
    } else {
        ["/", ctx.req().account_id.as_str(), "/", id].concat()
    })
}

/// `Codecs`: the audio codecs followed by the video codecs (empty: left out).
fn codecs(ep: &Endpoint<'_>) -> Vec<String> {
    let mut out = Vec::new();
    for kind in [ep.media().audio, ep.media().video] {
        if let Some(Value::Array(a)) = kind.and_then(|k| crate::kz_json::get(k, "codecs")) {
            out.extend(a.iter().filter_map(Value::as_str).map(str::to_owned));
        }
    }
    out
}

/// The custom SIP headers of a document (its `sip.custom_sip_headers`): the legacy flat keys
/// overlaid by `in` (inbound) or `out` (outbound).
fn custom_headers(headers: Option<&Value>, direction: &str, into: &mut Headers) {
    let Some(Value::Object(h)) = headers else {
        return;
    };
    // A null header (a key cleared in Crossbar) is no header, and a null inside a header's
    // list or object is no value: ecallmgr's validation would refuse the whole leg for it.
    for (k, v) in h {
        if k != "in"
            && k != "out"
            && !v.is_object()
            && let Some(v) = without_nulls(v)
        {
            into.insert(k.clone(), v);
        }
    }
    if let Some(Value::Object(dir)) = h.get(direction) {
        for (k, v) in dir {
            if let Some(v) = without_nulls(v) {
                into.insert(k.clone(), v);
            }
        }
    }
}

/// `v` with every `null` left out (`None` for a `null` itself).
fn without_nulls(v: &Value) -> Option<Value> {
    let mut v = v.clone();
    crate::kz_json::strip_nulls(&mut v).then_some(v)
}

/// Kazoo's `maybe_add_diversion`: with `kazoo_endpoint.should_add_diversion_header` on, an
/// endpoint whose `call_forward.keep_caller_id` is true, reached by a call that no device
/// authorized (it came from outside), tells the far end where the call was diverted from.
/// Kazoo reads `keep_caller_id` whether or not the forward is enabled, and on every leg of
/// the endpoint (SIP, push and forward).
fn diversion(ctx: &CallContext<'_>, ep: &Endpoint<'_>) -> Option<String> {
    let call = &ctx.req().call;
    if call.authorizing_id.is_some() || !is_true(ep.at(&["call_forward", "keep_caller_id"])) {
        return None;
    }
    let request = call.request.as_deref().filter(|r| !r.is_empty())?;
    config::should_add_diversion_header(ctx)
        .then(|| format!("<sip:{request}>;reason=unconditional"))
}

/// `Custom-SIP-Headers` (rules file 6.2).
fn sip_headers(lb: LegBuilder<'_, '_>, ep: &Endpoint<'_>, forward: bool) -> Headers {
    let ctx = lb.ctx;
    let mut h = Headers::new();
    let invite_format = ne_str(ep.sip().invite_format).unwrap_or("contact");
    h.insert("X-KAZOO-INVITE-FORMAT", json!(invite_format));
    if let Some(user) = ne_str(ep.sip().username) {
        let realm = ne_str(ep.sip().realm).or(account_realm(ctx));
        if let Some(realm) = realm {
            h.insert(
                "X-KAZOO-AOR",
                Value::String(["sip:", user, "@", realm].concat()),
            );
        }
    }
    if !forward {
        let ring = ne_str(ctx.req().call.kvs.get("Override-Ringtone")).or_else(|| {
            let which = if ctx.req().call.inception.is_none() {
                "internal"
            } else {
                "external"
            };
            ne_str(ep.generic_leaf(|t| t.ringtones, which))
        });
        if let Some(ring) = ring {
            h.insert("Alert-Info", json!(ring));
        }
    }
    if let Some(d) = diversion(ctx, ep) {
        h.insert("Diversions", json!([d]));
    }
    custom_headers(ep.sip().custom_sip_headers, "in", &mut h);
    let outbound = lb.shared.caller_headers.get_or_init(|| {
        let mut out = Headers::new();
        if let Some(caller) = ctx.caller() {
            custom_headers(caller.sip().custom_sip_headers, "out", &mut out);
        }
        out
    });
    for (k, v) in outbound.iter() {
        h.insert(k.to_owned(), v.clone());
    }
    h
}

/// `Custom-Channel-Vars` (rules file 6.3); `fwd` adds the call-forward block.
fn ccvs(ctx: &CallContext<'_>, ep: &Endpoint<'_>, fwd: Option<&Forward<'_>>) -> ChannelVars {
    let call = &ctx.req().call;
    let webrtc = is_true(ep.media().webrtc);
    let rtcp_mux = match ep.media().rtcp_mux {
        Some(Value::Bool(b)) => Some(*b),
        _ => webrtc.then_some(true),
    };
    let encryption = |k| {
        ep.media()
            .encryption
            .and_then(|e| crate::kz_json::get(e, k))
    };
    let enforce = encryption("enforce_security");
    let (srtp, zrtp) = match encryption("methods") {
        Some(Value::Array(methods)) => {
            let has = |m: &str| methods.iter().any(|v| v.as_str() == Some(m));
            (has("srtp"), has("zrtp"))
        }
        _ => (false, false),
    };
    let invite_domain = ne_str(ep.sip().realm)
        .or(account_realm(ctx))
        .or(call.request_realm.as_deref());
    let forward = fwd.map(|f| ForwardVars {
        retain_cid: f.keep_caller_id,
        is_failover: f.failover,
        from: if call.inception.is_none() {
            "onnet"
        } else {
            "offnet"
        },
        for_uuid: call.other_leg_call_id.clone(),
        request_uri: account_realm(ctx).map(|realm| format!("sip:{}@{realm}", f.number)),
        confirm_file: f.require_keypress.then(|| {
            let language = call.language.as_deref().unwrap_or("en-us");
            format!(
                "prompt://{}/ivr-group_confirm/{language}",
                ctx.req().account_id
            )
        }),
    });
    ChannelVars {
        authorizing_id: ep.id().to_owned(),
        authorizing_type: ep.kind().as_str(),
        owner_id: ep.owner_id().map(str::to_owned),
        account_id: ne_str(ep.top().pvt_account_id)
            .unwrap_or(&ctx.req().account_id)
            .to_owned(),
        media_webrtc: webrtc,
        rtcp_mux,
        fax_enabled: ep.media().fax_option.and_then(Value::as_str) == Some("auto"),
        enforce_security: enforce.is_none() || is_true(enforce),
        srtp,
        zrtp,
        sip_invite_domain: invite_domain.map(str::to_owned),
        call_waiting_disabled: crate::kz_json::is_false(ep.call_waiting_enabled()),
        auto_answer: call
            .ccvs
            .get("Auto-Answer-Loopback")
            .filter(|v| !v.is_null())
            .cloned(),
        forward,
    }
}

fn privacy(ctx: &CallContext<'_>, ep: &Endpoint<'_>, keep_caller_id: bool) -> Privacy {
    let (hide_name, hide_number) = caller_id::privacy(ctx, keep_caller_id);
    Privacy {
        hide_name,
        hide_number,
        method: caller_id::privacy_method(ctx, ep).to_owned(),
    }
}

fn ignore_completed_elsewhere(ctx: &CallContext<'_>, ep: &Endpoint<'_>) -> bool {
    ep.generic_leaf(|t| t.caller_id_options, "ignore_completed_elsewhere")
        .or_else(|| ep.sip().ignore_completed_elsewhere)
        .or_else(|| ep.top().ignore_completed_elsewhere)
        .filter(|v| !v.is_null())
        .map(|v| is_true(Some(v)))
        .unwrap_or_else(|| config::default_ignore_completed_elsewhere(ctx))
}

/// `SIP-Transport`: the device's `sip.transport`, else `kazoo_endpoint.sip_transport`, each
/// only when it is one of Kazoo's four transports.
fn sip_transport<'c>(ctx: &'c CallContext<'_>, ep: &Endpoint<'c>) -> Option<&'c str> {
    ne_str(ep.sip().transport)
        .filter(|t| config::valid_transport(t))
        .or_else(|| config::sip_transport(ctx))
}

/// The `Invite-Format` of a SIP leg: `sip.invite_format`, default `username`. A value a 4.3
/// ecallmgr would reject falls back to `username` (see `docs/compatibility.md`).
pub fn invite_format(ep: &Endpoint<'_>) -> &'static str {
    let raw = ne_str(ep.sip().invite_format);
    INVITE_FORMATS_4_3
        .iter()
        .find(|f| Some(**f) == raw)
        .copied()
        .unwrap_or("username")
}

/// The caller and callee IDs, the privacy and the media fields of a device's own legs (SIP
/// and push).
fn caller_fields(
    lb: LegBuilder<'_, '_>,
    ep: &Endpoint<'_>,
    dialling: &Dialling<'_>,
) -> CallerFields {
    let ctx = lb.ctx;
    let (caller, callee) = if dialling.suppress_clid {
        (None, None)
    } else {
        let attr = caller_id::attribute(ctx);
        (
            Some(lb.caller(attr)),
            Some(caller_id::callee(ctx, ep, attr)),
        )
    };
    CallerFields {
        caller,
        callee,
        privacy: privacy(ctx, ep, is_true(ep.at(&["call_forward", "keep_caller_id"]))),
        ignore_early_media: is_true(ep.media().ignore_early_media),
        bypass_media: is_true(ep.media().bypass_media),
        progress_timeout: secs(as_integer(ep.media().progress_timeout)),
    }
}

fn owned(v: Option<&str>) -> Option<String> {
    v.map(str::to_owned)
}

/// The SIP leg (rules file 6.1), with a nested `Failover` when `failover` is given.
fn sip_leg(
    lb: LegBuilder<'_, '_>,
    ep: &Endpoint<'_>,
    dialling: &Dialling<'_>,
    failover: Option<&Forward<'_>>,
) -> DeviceLeg {
    let ctx = lb.ctx;
    let call = &ctx.req().call;
    let sip = ep.sip();
    let mut leg = DeviceLeg {
        kind: DeviceLegKind::Sip,
        invite_format: invite_format(ep),
        to_user: owned(
            dialling
                .static_invite
                .or(ne_str(sip.static_invite))
                .or(ne_str(sip.username)),
        ),
        to_username: owned(ne_str(sip.username)),
        to_realm: owned(ne_str(sip.realm).or(account_realm(ctx))),
        to_did: owned(ne_str(sip.number).or(call.request_user.as_deref())),
        to_ip: owned(ne_str(sip.ip)),
        sip_transport: owned(sip_transport(ctx, ep)),
        sip_interface: owned(
            ne_str(sip.custom_sip_interface).or_else(|| config::custom_sip_interface(ctx)),
        ),
        route: owned(ne_str(sip.route)),
        proxy_ip: owned(ne_str(sip.proxy)),
        forward_ip: owned(ne_str(sip.forward)),
        caller: caller_fields(lb, ep, dialling),
        endpoint_timeout: secs(dialling.timeout),
        endpoint_delay: secs(dialling.delay),
        endpoint_id: ep.id().to_owned(),
        codecs: codecs(ep),
        hold_media: hold_media(ctx, ep),
        presence_id: presence_id(ctx, ep),
        headers: sip_headers(lb, ep, false),
        ccvs: ccvs(ctx, ep, None),
        flags: ep.outbound_flags().clone(),
        ignore_completed_elsewhere: ignore_completed_elsewhere(ctx, ep),
        failover: failover.map(|f| lb.nested(ep, dialling, f)),
        metaflows: ep.metaflows().clone(),
        endpoint_actions: super::recording::endpoint_actions(ctx, ep),
        t38: (ep.top().device_type.and_then(Value::as_str) == Some("fax")).then(|| t38(ctx, ep)),
        user_failover: None,
        formatted: None,
    };
    let formatters = ep.formatters();
    if !formatters.is_empty() {
        let regexes = &lb.shared.regexes;
        leg.format(|json| super::formatters::apply(json, formatters, regexes));
    }
    leg
}

/// T.38 fields of a fax device (rules file 6.11), from the caller's and callee's
/// `media.fax_option`.
fn t38(ctx: &CallContext<'_>, ep: &Endpoint<'_>) -> T38 {
    let callee = is_true(ep.media().fax_option);
    let caller = ctx.caller().map(|c| is_true(c.media().fax_option));
    match (caller, callee) {
        (Some(true), true) | (Some(false), false) => T38::Passthrough,
        (Some(true), false) => T38::Gateway("peer"),
        (Some(false), true) | (None, true) => T38::Gateway("self"),
        (None, false) => T38::Off,
    }
}

/// A loopback leg to `fwd.number` (rules file 6.4): the call-forward leg, or a failover leg
/// (the same with `Is-Failover`).
fn forward_leg(
    lb: LegBuilder<'_, '_>,
    ep: &Endpoint<'_>,
    dialling: &Dialling<'_>,
    fwd: &Forward<'_>,
) -> LoopbackLeg {
    let ctx = lb.ctx;
    let call = &ctx.req().call;
    let ignore_early_media = if fwd.require_keypress || !fwd.substitute {
        true
    } else {
        fwd.ignore_early_media.unwrap_or(true)
    };
    // An internal caller being forwarded shows its external caller ID to the far end.
    let (caller, callee) = if call.inception.is_none() && !dialling.suppress_clid {
        (
            Some(lb.caller("external")),
            Some(caller_id::callee(ctx, ep, caller_id::attribute(ctx))),
        )
    } else {
        (None, None)
    };
    LoopbackLeg {
        to_did: owned(ne_str(ep.top().number).or(call.request_user.as_deref())),
        route: fwd.number.to_owned(),
        ignore_early_media,
        progress_timeout: secs(as_integer(ep.media().progress_timeout)),
        endpoint_timeout: secs(dialling.timeout),
        endpoint_delay: secs(dialling.delay),
        presence_id: presence_id(ctx, ep),
        caller,
        callee,
        privacy: privacy(ctx, ep, fwd.keep_caller_id),
        headers: sip_headers(lb, ep, true),
        ccvs: ccvs(ctx, ep, Some(fwd)),
    }
}

/// The push object of a device (`push`), when it is a non-empty object.
pub fn push_object<'e>(ep: &Endpoint<'e>) -> Option<&'e Object> {
    ep.top()
        .push
        .and_then(Value::as_object)
        .filter(|o| !o.is_empty())
}

/// The push leg of a device (`create_push_endpoint`): a `route` leg to the device through
/// its `Token-Proxy`, with the `X-KAZOO-PUSHER-*` headers. `None` when the device has no
/// `Token-Proxy`, SIP username or realm (Kazoo's builder fails on it and skips the leg).
fn push_leg(
    lb: LegBuilder<'_, '_>,
    ep: &Endpoint<'_>,
    dialling: &Dialling<'_>,
    failover: Option<&Forward<'_>>,
) -> Option<DeviceLeg> {
    let ctx = lb.ctx;
    let push = push_object(ep)?;
    let proxy = push.get("Token-Proxy").and_then(Value::as_str)?;
    let username = ne_str(ep.sip().username)?;
    let realm = ne_str(ep.sip().realm).or(account_realm(ctx))?;
    let call = &ctx.req().call;
    let to_user = format!("{username}@{realm}");
    let mut headers = sip_headers(lb, ep, false);
    // A typed push (`Token-Type`) names the endpoint and account itself.
    let typed = ne_str(push.get("Token-Type")).is_some();
    let own = |k: &str| match k {
        "Endpoint-ID" if typed => Some(Value::String(ep.id().to_owned())),
        "Account-ID" if typed => Some(Value::String(ctx.req().account_id.clone())),
        _ => None,
    };
    for (k, v) in push {
        if k == "Invite-Format" {
            continue;
        }
        if let Some(v) = own(k).or_else(|| without_nulls(v)) {
            headers.insert(format!("X-KAZOO-PUSHER-{k}"), v);
        }
    }
    for k in ["Endpoint-ID", "Account-ID"] {
        if let Some(v) = own(k).filter(|_| !push.contains_key(k)) {
            headers.insert(format!("X-KAZOO-PUSHER-{k}"), v);
        }
    }
    Some(DeviceLeg {
        kind: DeviceLegKind::Push,
        invite_format: "route",
        route: Some(format!("sip:{to_user};fs_path='{proxy}'")),
        to_user: Some(to_user),
        to_username: Some(username.to_owned()),
        to_realm: Some(realm.to_owned()),
        to_did: owned(ne_str(ep.sip().number).or(call.request_user.as_deref())),
        to_ip: None,
        sip_transport: owned(sip_transport(ctx, ep)),
        sip_interface: None,
        proxy_ip: None,
        forward_ip: None,
        caller: caller_fields(lb, ep, dialling),
        endpoint_timeout: None,
        endpoint_delay: None,
        endpoint_id: ep.id().to_owned(),
        codecs: codecs(ep),
        hold_media: hold_media(ctx, ep),
        presence_id: presence_id(ctx, ep),
        headers,
        ccvs: ccvs(ctx, ep, None),
        flags: ep.outbound_flags().clone(),
        ignore_completed_elsewhere: ignore_completed_elsewhere(ctx, ep),
        // The merged metaflows (nulls left out); written only when there are some
        // (`dialling:filter_empty`), as are the recording actions.
        metaflows: ep.metaflows().clone(),
        endpoint_actions: super::recording::endpoint_actions(ctx, ep),
        failover: failover.map(|f| lb.nested(ep, dialling, f)),
        t38: None,
        user_failover: None,
        formatted: None,
    })
}
