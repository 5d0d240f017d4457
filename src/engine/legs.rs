//! Field-exact legs: the SIP leg, the call-forward (loopback) leg and the failover leg, as
//! `kz_endpoint_v4` builds them (`kazoo-endpoint-rules.md` section 6).
//!
//! Every field keeps Kazoo's name and JSON type: timeouts are decimal strings, some flags are
//! the string `"true"` and others booleans. Absent values are left out, never `null`.

use std::cell::OnceCell;

use serde_json::{Value, json};

use super::attributes::Endpoint;
use super::call::CallContext;
use super::caller_id::{self, CallerIds, Clid};
use super::config;
use super::dialling::Dialling;
use super::forward::Forward;
use crate::kz_json::{Object, ObjectBuilder, as_integer, is_true, ne_str};

/// The `Invite-Format` values a Kazoo 4.3 ecallmgr accepts on a bridge endpoint. Any other
/// value makes Kazoo drop the leg silently.
pub const INVITE_FORMATS_4_3: [&str; 7] = [
    "username", "e164", "npan", "1npan", "route", "loopback", "contact",
];

const REJECT_ON: &str = "USER_BUSY,CALL_REJECTED,NO_ANSWER,NORMAL_CLEARING,PROGRESS_TIMEOUT";

/// What is the same on every leg of a build, computed the first time a leg needs it: the
/// caller's IDs and its outbound custom SIP headers.
#[derive(Default)]
pub struct SameOnEveryLeg {
    caller_ids: CallerIds,
    caller_headers: OnceCell<Object>,
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
    ) -> Object {
        sip_leg(self, ep, dialling, failover)
    }

    /// A loopback leg of `ep` to `fwd.number`.
    pub fn forward(self, ep: &Endpoint<'_>, dialling: &Dialling<'_>, fwd: &Forward<'_>) -> Object {
        forward_leg(self, ep, dialling, fwd)
    }

    /// The push leg of `ep`, when it can have one.
    pub fn push(
        self,
        ep: &Endpoint<'_>,
        dialling: &Dialling<'_>,
        failover: Option<&Forward<'_>>,
    ) -> Option<Object> {
        push_leg(self, ep, dialling, failover)
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
    let owner = ep
        .owner_doc()
        .and_then(|o| ne_str(o.get("presence_id")))
        .or_else(|| {
            ep.hotdesk_users()
                .iter()
                .find_map(|u| ne_str(u.get("presence_id")))
        });
    let p = owner
        .or_else(|| ne_str(ep.get("presence_id")))
        .or_else(|| ne_str(ctx.account().get("presence_id")))
        .or_else(|| ne_str(ep.sip_at(&["username"])))
        .or(ctx.req().call.request_user.as_deref())?;
    Some(match (p.contains('@'), account_realm(ctx)) {
        (false, Some(realm)) => format!("{p}@{realm}"),
        _ => p.to_owned(),
    })
}

/// `Hold-Media`: a plain media id becomes `/<account id>/<media id>`; paths and streams pass.
fn hold_media(ctx: &CallContext<'_>, ep: &Endpoint<'_>) -> Option<String> {
    let id = ne_str(ep.generic_leaf("music_on_hold", "media_id"))?;
    let passes = id.contains('/')
        || id.starts_with("system_media")
        || id.starts_with("local_stream://")
        || id.starts_with("silence_stream://");
    Some(if passes {
        id.to_owned()
    } else {
        format!("/{}/{id}", ctx.req().account_id)
    })
}

/// `Codecs`: the audio codecs followed by the video codecs; absent when both are empty.
fn codecs(ep: &Endpoint<'_>) -> Option<Value> {
    let mut out = Vec::new();
    for kind in ["audio", "video"] {
        if let Some(Value::Array(a)) = ep.media_at(&[kind, "codecs"]) {
            out.extend(a.iter().filter(|c| c.is_string()).cloned());
        }
    }
    (!out.is_empty()).then_some(Value::Array(out))
}

/// The custom SIP headers of a document: the legacy flat keys overlaid by `in` (inbound) or
/// `out` (outbound).
fn custom_headers(doc: &Value, direction: &str, into: &mut Object) {
    let Some(Value::Object(h)) = crate::kz_json::path(doc, &["sip", "custom_sip_headers"]) else {
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
fn sip_headers(lb: LegBuilder<'_, '_>, ep: &Endpoint<'_>, forward: bool) -> Object {
    let ctx = lb.ctx;
    let mut h = Object::new();
    let invite_format = ne_str(ep.sip_at(&["invite_format"])).unwrap_or("contact");
    h.insert("X-KAZOO-INVITE-FORMAT".into(), json!(invite_format));
    if let Some(user) = ne_str(ep.sip_at(&["username"])) {
        let realm = ne_str(ep.sip_at(&["realm"])).or(account_realm(ctx));
        if let Some(realm) = realm {
            h.insert("X-KAZOO-AOR".into(), json!(format!("sip:{user}@{realm}")));
        }
    }
    if !forward {
        let ring = ne_str(ctx.req().call.kvs.get("Override-Ringtone")).or_else(|| {
            let which = if ctx.req().call.inception.is_none() {
                "internal"
            } else {
                "external"
            };
            ne_str(ep.generic_leaf("ringtones", which))
        });
        if let Some(ring) = ring {
            h.insert("Alert-Info".into(), json!(ring));
        }
    }
    if let Some(d) = diversion(ctx, ep) {
        h.insert("Diversions".into(), json!([d]));
    }
    custom_headers(ep.doc, "in", &mut h);
    let outbound = lb.shared.caller_headers.get_or_init(|| {
        let mut out = Object::new();
        if let Some(caller) = ctx.caller() {
            custom_headers(caller.doc, "out", &mut out);
        }
        out
    });
    for (k, v) in outbound {
        h.insert(k.clone(), v.clone());
    }
    h
}

/// `Custom-Channel-Vars` (rules file 6.3); `fwd` adds the call-forward block.
fn ccvs(ctx: &CallContext<'_>, ep: &Endpoint<'_>, fwd: Option<&Forward<'_>>) -> Object {
    let call = &ctx.req().call;
    let mut c = ObjectBuilder::with_capacity(if fwd.is_some() { 20 } else { 8 });
    c.set("Authorizing-ID", ep.id);
    c.set("Authorizing-Type", ep.kind.as_str());
    c.opt("Owner-ID", ep.owner_id);
    c.set(
        "Account-ID",
        ne_str(ep.get("pvt_account_id")).unwrap_or(&ctx.req().account_id),
    );
    if is_true(ep.media_at(&["webrtc"])) {
        c.set("Media-Webrtc", true);
        c.set("RTCP-MUX", true);
    }
    if let Some(Value::Bool(b)) = ep.media_at(&["rtcp_mux"]) {
        c.set("RTCP-MUX", *b);
    }
    if ep.media_at(&["fax_option"]).and_then(Value::as_str) == Some("auto") {
        c.set("Fax-Enabled", "true");
    }
    let enforce = ep.media_at(&["encryption", "enforce_security"]);
    c.set(
        "Media-Encryption-Enforce-Security",
        enforce.is_none() || is_true(enforce),
    );
    if let Some(Value::Array(methods)) = ep.media_at(&["encryption", "methods"]) {
        let has = |m: &str| methods.iter().any(|v| v.as_str() == Some(m));
        c.flag_str("RTP-Secure-Media", has("srtp"));
        c.flag_str("ZRTP-Secure-Media", has("zrtp"));
        c.flag_str("ZRTP-Enrollment", has("zrtp"));
    }
    let invite_domain = ne_str(ep.sip_at(&["realm"]))
        .or(account_realm(ctx))
        .or(call.request_realm.as_deref());
    c.opt("SIP-Invite-Domain", invite_domain);
    if crate::kz_json::is_false(ep.call_waiting_enabled()) {
        c.set("Call-Waiting-Disabled", true);
    }
    if let Some(v) = call
        .ccvs
        .get("Auto-Answer-Loopback")
        .filter(|v| !v.is_null())
    {
        c.set("Auto-Answer", v.clone());
    }
    if let Some(f) = fwd {
        c.flag_str("Retain-CID", f.keep_caller_id);
        c.set("Call-Forward", "true");
        if f.failover {
            c.set("Is-Failover", true);
        }
        c.set(
            "Call-Forward-From",
            if call.inception.is_none() {
                "onnet"
            } else {
                "offnet"
            },
        );
        c.opt("Call-Forward-For-UUID", call.other_leg_call_id.as_deref());
        c.set("Require-Ignore-Early-Media", "true");
        c.set("Ignore-Early-Media", "true");
        if let Some(realm) = account_realm(ctx) {
            c.set("Loopback-Request-URI", format!("sip:{}@{realm}", f.number));
        }
        c.set("Simplify-Loopback", "false");
        c.set("Loopback-Bowout", "true");
        if f.require_keypress {
            let language = call.language.as_deref().unwrap_or("en-us");
            c.set("Confirm-Key", "1");
            c.set("Confirm-Cancel-Timeout", true);
            c.set("Confirm-Read-Timeout", "7000");
            c.set(
                "Confirm-File",
                format!(
                    "prompt://{}/ivr-group_confirm/{language}",
                    ctx.req().account_id
                ),
            );
            c.set("Require-Fail-On-Single-Reject", REJECT_ON);
        }
    }
    c.build()
}

fn set_caller(b: &mut ObjectBuilder, clid: Clid) {
    b.opt("Outbound-Caller-ID-Number", clid.number);
    b.opt("Outbound-Caller-ID-Name", clid.name);
}

fn set_callee(b: &mut ObjectBuilder, clid: Clid) {
    b.opt("Outbound-Callee-ID-Number", clid.number);
    b.opt("Outbound-Callee-ID-Name", clid.name);
}

fn set_privacy(
    ctx: &CallContext<'_>,
    b: &mut ObjectBuilder,
    ep: &Endpoint<'_>,
    keep_caller_id: bool,
) {
    let (hide_name, hide_number) = caller_id::privacy(ctx, keep_caller_id);
    if hide_name {
        b.set("Privacy-Hide-Name", true);
    }
    if hide_number {
        b.set("Privacy-Hide-Number", true);
    }
    b.set("Privacy-Method", caller_id::privacy_method(ctx, ep));
}

fn ignore_completed_elsewhere(ctx: &CallContext<'_>, ep: &Endpoint<'_>) -> bool {
    ep.generic_leaf("caller_id_options", "ignore_completed_elsewhere")
        .or_else(|| ep.sip_at(&["ignore_completed_elsewhere"]))
        .or_else(|| ep.get("ignore_completed_elsewhere"))
        .filter(|v| !v.is_null())
        .map(|v| is_true(Some(v)))
        .unwrap_or_else(|| config::default_ignore_completed_elsewhere(ctx))
}

/// `SIP-Transport`: the device's `sip.transport`, else `kazoo_endpoint.sip_transport`, each
/// only when it is one of Kazoo's four transports.
fn sip_transport<'c>(ctx: &'c CallContext<'_>, ep: &Endpoint<'c>) -> Option<&'c str> {
    ne_str(ep.sip_at(&["transport"]))
        .filter(|t| config::valid_transport(t))
        .or_else(|| config::sip_transport(ctx))
}

/// The `Invite-Format` of a SIP leg: `sip.invite_format`, default `username`. A value a 4.3
/// ecallmgr would reject falls back to `username` (see `docs/compatibility.md`).
pub fn invite_format<'e>(ep: &Endpoint<'e>) -> &'e str {
    match ne_str(ep.sip_at(&["invite_format"])) {
        Some(f) if INVITE_FORMATS_4_3.contains(&f) => f,
        _ => "username",
    }
}

/// The caller and callee IDs, the privacy and the media fields of a device's own legs (SIP
/// and push), in Kazoo's order.
fn caller_privacy_media(
    lb: LegBuilder<'_, '_>,
    b: &mut ObjectBuilder,
    ep: &Endpoint<'_>,
    dialling: &Dialling<'_>,
) {
    let ctx = lb.ctx;
    if !dialling.suppress_clid {
        let attr = caller_id::attribute(ctx);
        set_caller(b, lb.caller(attr));
        set_callee(b, caller_id::callee(ctx, ep, attr));
    }
    set_privacy(
        ctx,
        b,
        ep,
        is_true(ep.at(&["call_forward", "keep_caller_id"])),
    );
    b.flag_str(
        "Ignore-Early-Media",
        is_true(ep.media_at(&["ignore_early_media"])),
    );
    b.flag_str("Bypass-Media", is_true(ep.media_at(&["bypass_media"])));
    b.opt(
        "Endpoint-Progress-Timeout",
        secs(as_integer(ep.media_at(&["progress_timeout"]))),
    );
}

/// The SIP leg (rules file 6.1), with a nested `Failover` when `failover` is given.
fn sip_leg(
    lb: LegBuilder<'_, '_>,
    ep: &Endpoint<'_>,
    dialling: &Dialling<'_>,
    failover: Option<&Forward<'_>>,
) -> Object {
    let ctx = lb.ctx;
    let call = &ctx.req().call;
    let sip = |k: &str| ne_str(ep.sip_at(&[k]));
    let mut b = ObjectBuilder::with_capacity(32);
    b.set("Invite-Format", invite_format(ep));
    b.opt(
        "To-User",
        dialling
            .static_invite
            .or(sip("static_invite"))
            .or(sip("username")),
    );
    b.opt("To-Username", sip("username"));
    b.opt("To-Realm", sip("realm").or(account_realm(ctx)));
    b.opt("To-DID", sip("number").or(call.request_user.as_deref()));
    b.opt("To-IP", sip("ip"));
    b.opt("SIP-Transport", sip_transport(ctx, ep));
    b.opt(
        "SIP-Interface",
        sip("custom_sip_interface").or_else(|| config::custom_sip_interface(ctx)),
    );
    b.opt("Route", sip("route"));
    b.opt("Proxy-IP", sip("proxy"));
    b.opt("Forward-IP", sip("forward"));
    caller_privacy_media(lb, &mut b, ep, dialling);
    b.opt("Endpoint-Timeout", secs(dialling.timeout));
    b.opt("Endpoint-Delay", secs(dialling.delay));
    b.set("Endpoint-ID", ep.id);
    b.opt("Codecs", codecs(ep));
    b.opt("Hold-Media", hold_media(ctx, ep));
    b.opt("Presence-ID", presence_id(ctx, ep));
    b.set("Custom-SIP-Headers", sip_headers(lb, ep, false));
    b.set("Custom-Channel-Vars", ccvs(ctx, ep, None));
    b.set("Flags", ep.outbound_flags().clone());
    b.set(
        "Ignore-Completed-Elsewhere",
        ignore_completed_elsewhere(ctx, ep),
    );
    if let Some(f) = failover {
        b.set(
            "Failover",
            forward_leg(lb, ep, &dialling.without_timers(), f),
        );
    }
    b.set("Metaflows", ep.metaflows().clone());
    b.set(
        "Endpoint-Actions",
        super::recording::endpoint_actions(ctx, ep),
    );
    if ep.get("device_type").and_then(Value::as_str) == Some("fax") {
        t38(ctx, ep, &mut b);
    }
    let mut leg = b.build();
    let formatters = ep.formatters();
    if !formatters.is_empty() {
        super::formatters::apply(&mut leg, &formatters);
    }
    leg
}

/// T.38 fields of a fax device (rules file 6.11), from the caller's and callee's
/// `media.fax_option`.
fn t38(ctx: &CallContext<'_>, ep: &Endpoint<'_>, b: &mut ObjectBuilder) {
    let callee = is_true(ep.media_at(&["fax_option"]));
    let caller = ctx.caller().map(|c| is_true(c.media_at(&["fax_option"])));
    let gateway = |b: &mut ObjectBuilder, g: &str| {
        b.set("Enable-T38-Fax", true);
        b.set("Enable-T38-Fax-Request", true);
        b.set("Enable-T38-Gateway", g);
    };
    match (caller, callee) {
        (Some(true), true) | (Some(false), false) => {
            b.set("Enable-T38-Fax", true);
            b.set("Enable-T38-Passthrough", true);
        }
        (Some(true), false) => gateway(b, "peer"),
        (Some(false), true) | (None, true) => gateway(b, "self"),
        (None, false) => {
            b.set("Enable-T38-Fax", false);
            b.set("Enable-T38-Fax-Request", false);
            b.set("Enable-T38-Passthrough", false);
        }
    }
}

/// A loopback leg to `fwd.number` (rules file 6.4): the call-forward leg, or a failover leg
/// (the same with `Is-Failover`).
fn forward_leg(
    lb: LegBuilder<'_, '_>,
    ep: &Endpoint<'_>,
    dialling: &Dialling<'_>,
    fwd: &Forward<'_>,
) -> Object {
    let ctx = lb.ctx;
    let call = &ctx.req().call;
    let mut b = ObjectBuilder::with_capacity(20);
    b.set("Invite-Format", "loopback");
    b.opt(
        "To-DID",
        ne_str(ep.get("number")).or(call.request_user.as_deref()),
    );
    b.set("Route", fwd.number);
    let iem = if fwd.require_keypress || !fwd.substitute {
        true
    } else {
        fwd.ignore_early_media.unwrap_or(true)
    };
    b.set("Ignore-Early-Media", iem);
    b.set("Bypass-Media", "false");
    b.opt(
        "Endpoint-Progress-Timeout",
        secs(as_integer(ep.media_at(&["progress_timeout"]))),
    );
    b.opt("Endpoint-Timeout", secs(dialling.timeout));
    b.opt("Endpoint-Delay", secs(dialling.delay));
    b.opt("Presence-ID", presence_id(ctx, ep));
    if call.inception.is_none() && !dialling.suppress_clid {
        // An internal caller being forwarded shows its external caller ID to the far end.
        set_caller(&mut b, lb.caller("external"));
        set_callee(
            &mut b,
            caller_id::callee(ctx, ep, caller_id::attribute(ctx)),
        );
    }
    set_privacy(ctx, &mut b, ep, fwd.keep_caller_id);
    b.set("Custom-SIP-Headers", sip_headers(lb, ep, true));
    b.set("Custom-Channel-Vars", ccvs(ctx, ep, Some(fwd)));
    b.build()
}

/// The push object of a device (`push`), when it is a non-empty object.
pub fn push_object<'e>(ep: &Endpoint<'e>) -> Option<&'e Object> {
    ep.doc
        .get("push")
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
) -> Option<Object> {
    let ctx = lb.ctx;
    let push = push_object(ep)?;
    let proxy = push.get("Token-Proxy").and_then(Value::as_str)?;
    let username = ne_str(ep.sip_at(&["username"]))?;
    let realm = ne_str(ep.sip_at(&["realm"])).or(account_realm(ctx))?;
    let call = &ctx.req().call;
    let to_user = format!("{username}@{realm}");
    let mut b = ObjectBuilder::with_capacity(32);
    b.set("Invite-Format", "route");
    b.set("To-User", to_user.as_str());
    b.set("To-Username", username);
    b.set("To-Realm", realm);
    b.opt(
        "To-DID",
        ne_str(ep.sip_at(&["number"])).or(call.request_user.as_deref()),
    );
    b.opt("SIP-Transport", sip_transport(ctx, ep));
    b.set("Route", format!("sip:{to_user};fs_path='{proxy}'"));
    caller_privacy_media(lb, &mut b, ep, dialling);
    b.set("Endpoint-ID", ep.id);
    b.set("Endpoint-Delay", 5);
    b.opt("Codecs", codecs(ep));
    b.opt("Hold-Media", hold_media(ctx, ep));
    b.opt("Presence-ID", presence_id(ctx, ep));
    let mut headers = sip_headers(lb, ep, false);
    let mut props_obj = push.clone();
    if ne_str(push.get("Token-Type")).is_some() {
        props_obj.insert("Endpoint-ID".into(), json!(ep.id));
        props_obj.insert("Account-ID".into(), json!(ctx.req().account_id));
    }
    props_obj.shift_remove("Invite-Format");
    for (k, v) in props_obj {
        if let Some(v) = without_nulls(&v) {
            headers.insert(format!("X-KAZOO-PUSHER-{k}"), v);
        }
    }
    b.set("Custom-SIP-Headers", headers);
    b.set("Custom-Channel-Vars", ccvs(ctx, ep, None));
    b.set("Flags", ep.outbound_flags().clone());
    b.set(
        "Ignore-Completed-Elsewhere",
        ignore_completed_elsewhere(ctx, ep),
    );
    // The merged metaflows (nulls left out), only when there are some (`dialling:filter_empty`).
    if !ep.metaflows().is_empty() {
        b.set("Metaflows", ep.metaflows().clone());
    }
    let actions = super::recording::endpoint_actions(ctx, ep);
    if actions.as_object().is_some_and(|a| !a.is_empty()) {
        b.set("Endpoint-Actions", actions);
    }
    if let Some(f) = failover {
        b.set(
            "Failover",
            forward_leg(lb, ep, &dialling.without_timers(), f),
        );
    }
    Some(b.build())
}
