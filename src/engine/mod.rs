//! The leg engine: documents + request + registrations → legs, or a Kazoo error code.
//!
//! Pure and synchronous: no I/O, no clock. The engine reads everything through [`Inputs`];
//! when something it needs is not there yet (a document, an owned-devices list, a
//! registration) it says so in [`Needs`] instead of guessing, and it keeps going to collect
//! every other need of the same expansion level. The resolver ([`crate::resolver`]) fetches
//! those in one batched read and runs the engine again; a run is microseconds, a round trip
//! is not.
//!
//! The rules are `product-rules.md` (normative) over `kazoo-endpoint-rules.md`; deliberate
//! differences from Kazoo's Erlang builder are listed in `docs/compatibility.md`.

pub mod attributes;
pub mod caller_id;
pub mod config;
pub mod endpoint_type;
pub mod explain;
pub mod formatters;
mod inputs;
pub mod legs;
pub mod recording;

pub use inputs::{Inputs, Needs, Outcome};

use std::collections::{BTreeSet, HashSet};

use serde_json::Value;

use crate::build_api::{BuildError, BuildRequest, ErrorCode, Member, MemberType, Target};
use crate::ids::is_valid_id;
use crate::kz_json::{Object, as_integer, is_empty, is_false, is_true, ne_str, path};
use crate::registrar::{RegKey, Registration};
use attributes::{Endpoint, Kind, Owner};
use endpoint_type::{EndpointType, Unapplied};
use legs::{Forward, Props, forward_leg, sip_leg};

/// Why a branch of the expansion stopped.
#[derive(Debug)]
enum Halt {
    /// An input is missing; it has been recorded in [`Needs`].
    Pending,
    /// The branch failed with a Kazoo error.
    Fail(BuildError),
}

impl From<BuildError> for Halt {
    fn from(e: BuildError) -> Self {
        Halt::Fail(e)
    }
}

type Step<T> = Result<T, Halt>;

fn fail<T>(code: ErrorCode, message: String) -> Step<T> {
    Err(Halt::Fail(BuildError::new(code, message)))
}

static EMPTY: Value = Value::Null;

/// Stack left below which a nested entity is built on a new stack segment.
const STACK_RED_ZONE: usize = 128 * 1024;
/// The size of each new stack segment.
const STACK_SEGMENT: usize = 2 * 1024 * 1024;

/// The state of one engine run.
pub struct Ctx<'a> {
    pub(crate) req: &'a BuildRequest,
    inputs: &'a Inputs,
    needs: Needs,
    /// The call's account document (`null` when missing).
    pub(crate) account: &'a Value,
    /// The account's realm.
    pub(crate) account_realm: Option<&'a str>,
    /// The calling device, merged, when it is in the database.
    pub(crate) caller: Option<Endpoint<'a>>,
    seen_devices: HashSet<&'a str>,
    seen_users: HashSet<&'a str>,
    seen_groups: HashSet<&'a str>,
    /// Explanation lines, when the request asked for them.
    explain: Option<Vec<String>>,
    /// The caller's ID, internal and external attribute (the same on every leg).
    pub(crate) caller_clid: [std::cell::OnceCell<caller_id::Clid>; 2],
    /// The caller's outbound custom SIP headers (the same on every leg).
    pub(crate) caller_headers: std::cell::OnceCell<Object>,
    /// Document features met that the worker does not apply (product rule 8).
    unapplied: BTreeSet<Unapplied>,
}

/// Builds the legs for `req` from `inputs`, or says what is still needed.
pub fn build(req: &BuildRequest, inputs: &Inputs) -> Outcome {
    let mut ctx = Ctx {
        req,
        inputs,
        needs: Needs::default(),
        account: &EMPTY,
        account_realm: None,
        caller: None,
        seen_devices: HashSet::new(),
        seen_users: HashSet::new(),
        seen_groups: HashSet::new(),
        explain: req.explain.then(Vec::new),
        caller_clid: Default::default(),
        caller_headers: Default::default(),
        unapplied: BTreeSet::new(),
    };
    let result = ctx.run();
    if !ctx.needs.is_empty() {
        return Outcome::Need(ctx.needs);
    }
    let result = match result {
        Ok(legs) => Ok(ctx.dedupe_loopbacks(legs)),
        Err(Halt::Fail(e)) => Err(e),
        Err(Halt::Pending) => Err(BuildError::new(
            ErrorCode::Internal,
            "engine stopped on a missing input it did not name",
        )),
    };
    let mut lines = ctx.explain.take().unwrap_or_default();
    if req.explain {
        lines.push(match &result {
            Ok(legs) => format!("result: {} leg(s): {}", legs.len(), explain::legs(legs)),
            Err(e) => format!("result: {} ({})", e.code, e.message),
        });
    }
    Outcome::Done(result, lines, ctx.unapplied.into_iter().collect())
}

/// The legs of one device and what the user rules need to know about them.
struct DeviceLegs<'a, 'p> {
    legs: Vec<Object>,
    ep: Endpoint<'a>,
    props: Props<'p>,
    /// The registration state, for a device that needs a registration.
    registration: Option<Registration>,
    /// The `username@realm` that was looked up (none without a realm).
    reg_key: Option<RegKey>,
    /// Index of the SIP leg of an unknown-state device that has no failover of its own.
    bare_sip: Option<usize>,
    /// The device's active forward number.
    forward_number: Option<&'a str>,
}

impl<'a> Ctx<'a> {
    /// Adds an explanation line (built only when explanations are wanted).
    fn note(&mut self, line: impl FnOnce() -> String) {
        if let Some(lines) = &mut self.explain {
            lines.push(line());
        }
    }

    /// Within one build, loopback legs with the same `Route` keep their first occurrence.
    fn dedupe_loopbacks(&mut self, legs: Vec<Object>) -> Vec<Object> {
        let mut routes = HashSet::new();
        let mut out = Vec::with_capacity(legs.len());
        for leg in legs {
            let route = match leg.get("Invite-Format").and_then(Value::as_str) {
                Some("loopback") => leg.get("Route").and_then(Value::as_str),
                _ => None,
            };
            if let Some(route) = route
                && !routes.insert(route.to_owned())
            {
                self.note(|| {
                    format!(
                        "{} dropped: an earlier leg already goes to {route}",
                        explain::leg(&leg)
                    )
                });
                continue;
            }
            out.push(leg);
        }
        out
    }

    /// `kind id "name"` of a document that was read, or the bare id.
    fn label_of(&self, id: &str) -> String {
        match self.inputs.docs.get(id) {
            Some(Some(doc)) => match Kind::of(doc) {
                Some(kind) => explain::label(kind, id, doc),
                None => id.to_owned(),
            },
            _ => id.to_owned(),
        }
    }

    /// Looks a document up; records it as needed when it has not been fetched.
    fn doc(&mut self, id: &str) -> Step<Option<&'a Value>> {
        match self.inputs.docs.get(id) {
            Some(Some(d)) => Ok(Some(d.as_ref())),
            Some(None) => Ok(None),
            None => {
                self.needs.docs.insert(id.to_owned());
                Err(Halt::Pending)
            }
        }
    }

    fn owned(&mut self, user_id: &str) -> Step<&'a [String]> {
        match self.inputs.owned.get(user_id) {
            Some(ids) => Ok(ids),
            None => {
                self.needs.owned.insert(user_id.to_owned());
                Err(Halt::Pending)
            }
        }
    }

    fn registration(&mut self, key: RegKey) -> Step<Registration> {
        match self.inputs.registrations.get(&key) {
            Some(r) => Ok(*r),
            None => {
                self.needs.registrations.insert(key);
                Err(Halt::Pending)
            }
        }
    }

    fn run(&mut self) -> Step<Vec<Object>> {
        let req = self.req;
        // Level 0: the account, the caller and the target, in one batch.
        let account = self.doc(&req.account_id);
        let caller = match req.call.authorizing_id.as_deref() {
            Some(id) if is_valid_id(id) => Some((id, self.doc(id))),
            _ => None,
        };
        let targets: Vec<_> = match &req.target {
            Target::Endpoint(id) => vec![self.doc(id)],
            Target::Members(ms) => ms.iter().map(|m| self.doc(&m.id)).collect(),
        };
        // The configuration the builder reads, in the same batch.
        for cat in config::ACCOUNT_CATEGORIES {
            let _ = self.doc(&config::account_doc_id(cat));
        }
        for cat in config::SYSTEM_CATEGORIES {
            if !self.inputs.system_config.contains_key(cat) {
                self.needs.system_config.insert(cat.to_owned());
            }
        }
        if !self.needs.is_empty() {
            return Err(Halt::Pending);
        }
        self.account = account?.unwrap_or(&EMPTY);
        self.account_realm =
            ne_str(self.account.get("realm")).or(req.call.account_realm.as_deref());
        if let Some((id, Ok(Some(doc)))) = caller {
            // A caller whose owner is not loaded yet makes this run incomplete; the legs
            // built below are discarded, but their needs are collected in the same round.
            self.caller = self.endpoint(id, doc).ok();
        }
        let top = Props::from_object(&req.properties);
        match &req.target {
            Target::Endpoint(id) => {
                let is_group = matches!(targets.first(), Some(Ok(Some(d))) if Kind::of(d) == Some(Kind::Group));
                // A group's members carry their own timers; the action's are the bridge's.
                let props = if is_group { top.without_timers() } else { top };
                let legs = self.entity(id, &props)?;
                if legs.is_empty() {
                    return fail(
                        ErrorCode::NoEndpoints,
                        format!("endpoint {id} has nothing to ring"),
                    );
                }
                Ok(legs)
            }
            Target::Members(members) => {
                let props = Props {
                    source: Some("cf_ring_group"),
                    ..top.without_timers()
                };
                self.note(|| {
                    format!(
                        "ring group: members in list order: {}",
                        describe_members(members)
                    )
                });
                let legs = self.members(members, &props)?;
                if legs.is_empty() {
                    return fail(
                        ErrorCode::NoEndpoints,
                        "no ring-group member has anything to ring".into(),
                    );
                }
                Ok(legs)
            }
        }
    }

    /// Builds any entity by its document's type.
    fn entity(&mut self, id: &str, props: &Props<'_>) -> Step<Vec<Object>> {
        // Groups nest as deep as their documents say (the resolver bounds the documents, not
        // the depth), and each level is a few frames of this recursion: past the red zone,
        // it continues on a fresh stack segment instead of overflowing the worker's.
        let r = stacker::maybe_grow(STACK_RED_ZONE, STACK_SEGMENT, || {
            self.entity_inner(id, props)
        });
        if let Err(Halt::Fail(e)) = &r
            && self.explain.is_some()
        {
            let line = format!("{}: not built: {}", self.label_of(id), explain::why(e, id));
            self.note(|| line);
        }
        r
    }

    fn entity_inner(&mut self, id: &str, props: &Props<'_>) -> Step<Vec<Object>> {
        let Some(doc) = self.doc(id)? else {
            return fail(
                ErrorCode::NotFound,
                format!("no document {id} in account {}", self.req.account_id),
            );
        };
        // The id as the inputs hold it, so it lives as long as the documents.
        let id: &'a str = match self.inputs.docs.get_key_value(id) {
            Some((k, _)) => k,
            None => return Err(Halt::Pending),
        };
        let Some(kind) = Kind::of(doc) else {
            let t = doc
                .get("pvt_type")
                .and_then(Value::as_str)
                .unwrap_or("none");
            return fail(
                ErrorCode::NotDeviceNorUser,
                format!("{id} is a {t} document, not a device, user or group"),
            );
        };
        if is_true(doc.get("pvt_deleted")) || is_true(doc.get("_deleted")) {
            return fail(
                ErrorCode::EndpointDeleted,
                format!("{} {id} is deleted", kind.as_str()),
            );
        }
        let enabled_key = if kind == Kind::Account {
            "pvt_enabled"
        } else {
            "enabled"
        };
        if is_false(doc.get(enabled_key)) {
            return fail(
                ErrorCode::EndpointDisabled,
                format!("{} {id} is disabled", kind.as_str()),
            );
        }
        match kind {
            Kind::Device => {
                if !self.seen_devices.insert(id) {
                    self.note(|| format!("device {id}: already rung by an earlier member"));
                    return Ok(Vec::new());
                }
                let d = self.device(id, doc, props, false)?;
                if d.legs.is_empty() && d.registration == Some(Registration::Unregistered) {
                    return fail(
                        ErrorCode::NoEndpoints,
                        format!("device {id} is not registered and has no failover"),
                    );
                }
                Ok(d.legs)
            }
            Kind::User => self.user(id, doc, props),
            Kind::Group => self.group(id, doc, props),
            Kind::Account => fail(
                ErrorCode::NoEndpoints,
                format!("account {id} has no leg type"),
            ),
        }
    }

    /// The merged endpoint of a document, loading the device's owner (rules file 3.2).
    fn endpoint(&mut self, id: &'a str, doc: &'a Value) -> Step<Endpoint<'a>> {
        let kind = Kind::of(doc).unwrap_or(Kind::Device);
        let owner = match kind {
            Kind::User => Owner::Doc(doc),
            Kind::Group | Kind::Account => Owner::None,
            Kind::Device => self.device_owner(doc)?,
        };
        Ok(Endpoint::merge(id, kind, doc, self.account, owner))
    }

    fn device_owner(&mut self, doc: &'a Value) -> Step<Owner<'a>> {
        let is_user = |d: &&Value| Kind::of(d) == Some(Kind::User);
        let hotdesk: Vec<&str> = path(doc, &["hotdesk", "users"])
            .and_then(Value::as_object)
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        match hotdesk.as_slice() {
            [] => match ne_str(doc.get("owner_id")) {
                Some(owner) => Ok(self
                    .doc(owner)?
                    .filter(is_user)
                    .map_or(Owner::None, Owner::Doc)),
                None => Ok(Owner::None),
            },
            [one] => Ok(self
                .doc(one)?
                .filter(is_user)
                .map_or(Owner::None, Owner::Doc)),
            many => {
                let looked: Vec<_> = many.iter().map(|u| self.doc(u)).collect();
                let mut users = Vec::new();
                for l in looked {
                    users.extend(l?.filter(is_user));
                }
                Ok(Owner::Hotdesk(users))
            }
        }
    }

    /// The gating checks, in Kazoo's order (rules file 4).
    fn gate(&self, ep: &Endpoint<'_>, props: &Props<'_>) -> Result<(), BuildError> {
        let call = &self.req.call;
        let what = ep.kind.as_str();
        let id = ep.id;
        let Some(rt) = call.resource_type.as_deref() else {
            return Err(BuildError::new(
                ErrorCode::NoResourceType,
                "the call has no Resource-Type",
            ));
        };
        let can_self = match rt {
            "audio" => props.can_call_self,
            "sms" => props
                .can_text_self
                .unwrap_or_else(|| config::default_can_text_self(self)),
            other => {
                return Err(BuildError::new(
                    ErrorCode::Exception,
                    format!("resource type {other} is not buildable (Kazoo raises on it)"),
                ));
            }
        };
        if !can_self
            && let (Some(caller_owner), Some(owner)) = (call.owner_id.as_deref(), ep.owner_id)
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
        if is_false(ep.get("enabled")) {
            return Err(BuildError::new(
                ErrorCode::EndpointDisabled,
                format!("{what} {id} is disabled"),
            ));
        }
        if ep.dnd {
            let on = |d: &Value| is_true(path(d, &["do_not_disturb", "enabled"]));
            let mut set_on = Vec::new();
            if on(ep.doc) {
                set_on.push(format!("the {what}"));
            }
            if ep.kind != Kind::User
                && let Owner::Doc(owner) = ep.owner
                && on(owner)
            {
                let owner_id = owner.get("_id").and_then(Value::as_str).unwrap_or("?");
                set_on.push(format!(
                    "its owner {}",
                    explain::label(Kind::User, owner_id, owner)
                ));
            }
            if on(ep.account) {
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
            && is_true(ep.get("exclude_from_queues"))
        {
            return Err(BuildError::new(
                ErrorCode::ExcludeFromQueues,
                format!("{what} {id} is excluded from queue calls"),
            ));
        }
        Ok(())
    }

    /// A device's legs (`product-rules.md` section 3).
    /// `count_registration`: look the registration up even when the device's legs do not
    /// depend on it (a substituting forward), because its user's failover does.
    fn device<'p>(
        &mut self,
        id: &'a str,
        doc: &'a Value,
        props: &Props<'p>,
        count_registration: bool,
    ) -> Step<DeviceLegs<'a, 'p>> {
        let ep = self.endpoint(id, doc)?;
        self.gate(&ep, props)?;
        let fwd = Forward::active(&ep, props);
        let mut out = DeviceLegs {
            legs: Vec::new(),
            registration: None,
            reg_key: None,
            bare_sip: None,
            forward_number: fwd.as_ref().map(|f| f.number),
            props: props.clone(),
            ep,
        };
        let ep = &out.ep;
        let fwd_leg = |ctx: &Self| fwd.as_ref().map(|f| forward_leg(ctx, ep, props, f));
        let substitute = fwd.as_ref().is_some_and(|f| f.substitute);
        let username = ne_str(ep.sip_at(&["username"]));
        let raw_format = ne_str(ep.sip_at(&["invite_format"])).unwrap_or("username");
        let routed = raw_format == "route" && ne_str(ep.sip_at(&["route"])).is_some();
        let kind = endpoint_type::of(self, ep);
        let push = kind == EndpointType::Push;
        // Mobile, skype and (with `restrict_to_known_types`) unknown types start no device
        // leg of their own; a device with no `sip` at all is the device table's rows 8-9.
        let no_leg_type = matches!(
            kind,
            EndpointType::Mobile | EndpointType::Skype | EndpointType::Unknown
        ) && !is_empty(ep.get("sip"));
        // Product rule 2: a device needs a registration when it has a username, is not
        // dialled by route or loopback, and is not IP-authenticated.
        let needs_registration = username.is_some()
            && !push
            && !no_leg_type
            && !matches!(raw_format, "route" | "loopback")
            && ne_str(ep.sip_at(&["ip"])).is_none();
        if let Some(user) = username
            && needs_registration
            && (count_registration || !substitute)
        {
            let realm = ne_str(ep.sip_at(&["realm"])).or(self.account_realm);
            out.registration = Some(match realm {
                Some(realm) => {
                    let key = RegKey::new(user, realm);
                    let state = self.registration(key.clone())?;
                    out.reg_key = Some(key);
                    state
                }
                None => Registration::Unknown,
            });
        }
        let cf_active = fwd.is_some();
        if push && !substitute {
            // Product rules 8: a push device needs no registration; its failover target
            // travels as the push leg's nested Failover.
            let target = Forward::failover_target(ep);
            let nested = target
                .as_ref()
                .filter(|t| fwd.as_ref().is_none_or(|f| f.number != t.number));
            let leg = legs::push_leg(self, ep, props, nested);
            let fact = if leg.is_some() {
                "push device (no registration needed)"
            } else {
                "push device without a Token-Proxy, SIP username or realm: no push leg"
            };
            out.legs.extend(leg);
            out.legs.extend(fwd_leg(self));
            self.note_device(&out, fact, if cf_active { 2 } else { 3 });
            return Ok(out);
        }
        if !substitute && (no_leg_type || kind.unapplied().is_some()) {
            out.legs.extend(fwd_leg(self));
            let fact = match kind.unapplied() {
                Some(feature) => {
                    self.unapplied.insert(feature);
                    format!(
                        "a {} device: its {} leg is not built (not applied; counted in \
                         kz_endpoint_unapplied_features_total{{feature=\"{}\"}})",
                        feature.as_str(),
                        feature.as_str(),
                        feature.as_str()
                    )
                }
                None => "no known endpoint_type/device_type and \
                         kazoo_endpoint.restrict_to_known_types is on: no device leg"
                    .to_owned(),
            };
            self.note_device(&out, &fact, if cf_active { 8 } else { 9 });
            return Ok(out);
        }
        if substitute || (username.is_none() && !routed) {
            // Row 1: the forward replaces the device. Rows 8-9: no SIP destination at all.
            out.legs.extend(fwd_leg(self));
            let (row, reg) = match (substitute, out.registration) {
                (true, Some(r)) => (1, explain::registration_fact(r, out.reg_key.as_ref())),
                (true, None) => (
                    1,
                    "registration not needed (the forward substitutes)".into(),
                ),
                (false, _) => (if cf_active { 8 } else { 9 }, "no SIP credentials".into()),
            };
            self.note_device(&out, &reg, row);
            return Ok(out);
        }
        let registration = out.registration.unwrap_or(Registration::Registered);
        let reg_fact = match out.registration {
            Some(r) => explain::registration_fact(r, out.reg_key.as_ref()),
            None if ne_str(ep.sip_at(&["ip"])).is_some() => {
                "IP-authenticated (sip.ip): no registration needed".into()
            }
            None => "dialled by route: no registration needed".into(),
        };
        let row = match (registration, cf_active) {
            (Registration::Registered, true) => 2,
            (Registration::Registered, false) => 3,
            (Registration::Unregistered, false) => 4,
            (Registration::Unregistered, true) => 5,
            (Registration::Unknown, false) => 6,
            (Registration::Unknown, true) => 7,
        };
        let target = Forward::failover_target(ep);
        let same_as_forward = |t: &Forward<'_>| fwd.as_ref().is_some_and(|f| f.number == t.number);
        match registration {
            Registration::Registered => {
                out.legs.push(sip_leg(self, ep, props, None));
            }
            Registration::Unregistered => {
                if let Some(t) = target.as_ref().filter(|t| !same_as_forward(t)) {
                    out.legs.push(forward_leg(self, ep, props, t));
                }
            }
            Registration::Unknown => {
                let nested = target.as_ref().filter(|t| !same_as_forward(t));
                if target.is_none() {
                    out.bare_sip = Some(out.legs.len());
                }
                out.legs.push(sip_leg(self, ep, props, nested));
            }
        }
        out.legs.extend(fwd_leg(self));
        self.note_device(&out, &reg_fact, row);
        Ok(out)
    }

    fn note_device(&mut self, d: &DeviceLegs<'_, '_>, registration: &str, row: u8) {
        if self.explain.is_none() {
            return;
        }
        let line = format!(
            "{}: {registration}; {}; {} -> {} (docs/device-table.md row {row})",
            explain::label(Kind::Device, d.ep.id, d.ep.doc),
            explain::forward_fact(&d.ep, &d.props),
            explain::failover_fact(Forward::failover_target(&d.ep).as_ref()),
            explain::legs(&d.legs),
        );
        self.note(|| line);
    }

    /// A user's legs (`product-rules.md` section 4).
    fn user(&mut self, id: &'a str, doc: &'a Value, props: &Props<'_>) -> Step<Vec<Object>> {
        if self.seen_users.contains(id) {
            // Expanded already: its devices are rung and its forward leg would be the same
            // route, which the loopback de-duplication drops. Skipping it keeps a member list
            // that names one user thousands of times from costing thousands of expansions.
            self.note(|| {
                format!(
                    "{}: already expanded, skipped",
                    explain::label(Kind::User, id, doc)
                )
            });
            return Ok(Vec::new());
        }
        let ep = self.endpoint(id, doc)?;
        self.gate(&ep, props)?;
        self.seen_users.insert(id);
        let fwd = Forward::active(&ep, props);
        let user_target = Forward::failover_target(&ep);
        let label = explain::label(Kind::User, id, doc);
        if let Some(f) = fwd.as_ref().filter(|f| f.substitute) {
            let leg = forward_leg(self, &ep, props, f);
            self.note(|| {
                format!(
                    "{label}: {} -> {} only; the user's devices are not looked up",
                    explain::forward_fact(&ep, props),
                    explain::leg(&leg)
                )
            });
            return Ok(vec![leg]);
        }
        let device_ids = self.owned(id)?;
        self.note(|| {
            format!(
                "{label}: {}; {}; owned devices: {}",
                explain::forward_fact(&ep, props),
                explain::failover_fact(user_target.as_ref()),
                if device_ids.is_empty() {
                    "none".to_owned()
                } else {
                    device_ids.join(", ")
                }
            )
        });
        let mut builds = Vec::new();
        let mut pending = false;
        for did in device_ids {
            let doc = match self.doc(did) {
                Ok(Some(d)) => d,
                Ok(None) => continue,
                Err(_) => {
                    pending = true;
                    continue;
                }
            };
            let skip = if Kind::of(doc) != Some(Kind::Device) {
                Some("not a device")
            } else if is_true(doc.get("pvt_deleted")) {
                Some("deleted")
            } else if is_false(doc.get("enabled")) {
                Some("disabled")
            } else if !self.seen_devices.insert(did) {
                Some("already rung by an earlier member")
            } else {
                None
            };
            if let Some(why) = skip {
                self.note(|| format!("{}: skipped: {why}", explain::label(Kind::Device, did, doc)));
                continue;
            }
            match self.device(did, doc, props, user_target.is_some()) {
                Ok(b) => builds.push(b),
                Err(Halt::Pending) => pending = true,
                // A device that fails gating is skipped.
                Err(Halt::Fail(e)) => {
                    self.note(|| {
                        format!(
                            "{}: skipped: {}",
                            explain::label(Kind::Device, did, doc),
                            explain::why(&e, did)
                        )
                    });
                }
            }
        }
        if pending {
            return Err(Halt::Pending);
        }
        let mut failover_leg = None;
        if let Some(target) = user_target {
            let states: Vec<_> = builds.iter().filter_map(|b| b.registration).collect();
            let any = |r| states.contains(&r);
            let n = target.number;
            if any(Registration::Registered) {
                self.note(|| format!("{label}: a device is registered -> no user failover leg"));
            } else if !states.is_empty() && states.iter().all(|r| *r == Registration::Unregistered)
            {
                if fwd.as_ref().is_none_or(|f| f.number != n) {
                    failover_leg = Some(forward_leg(self, &ep, props, &target));
                    self.note(|| format!("{label}: every device needing a registration is unregistered -> user failover leg to {n}"));
                } else {
                    self.note(|| format!("{label}: every device needing a registration is unregistered, but the user's forward already goes to {n} -> no user failover leg"));
                }
            } else if any(Registration::Unknown) {
                let mut nested_on = Vec::new();
                for b in &mut builds {
                    let Some(i) = b.bare_sip else { continue };
                    if b.forward_number == Some(n) {
                        continue;
                    }
                    let nested = forward_leg(self, &b.ep, &b.props.without_timers(), &target);
                    b.legs[i].insert("Failover".into(), Value::Object(nested));
                    nested_on.push(b.ep.id);
                }
                self.note(|| format!(
                    "{label}: no device registered, some unknown -> user failover to {n} nested on the SIP legs of: {}",
                    if nested_on.is_empty() { "none (each has its own failover)".to_owned() } else { nested_on.join(", ") }
                ));
            } else {
                self.note(|| {
                    format!("{label}: no device needs a registration -> no user failover leg")
                });
            }
        }
        let mut legs: Vec<Object> = builds.into_iter().flat_map(|b| b.legs).collect();
        legs.extend(failover_leg);
        if let Some(f) = &fwd {
            legs.push(forward_leg(self, &ep, props, f));
        }
        if legs.is_empty() {
            return fail(
                ErrorCode::NoEndpoints,
                format!("user {id} has no device to ring and no active call forward"),
            );
        }
        Ok(legs)
    }

    /// A group's legs (`product-rules.md` section 5).
    fn group(&mut self, id: &'a str, doc: &'a Value, props: &Props<'_>) -> Step<Vec<Object>> {
        if !self.seen_groups.insert(id) {
            // Reached twice (a cycle, or a diamond): its members were expanded already.
            self.note(|| {
                format!(
                    "{}: already expanded, skipped",
                    explain::label(Kind::Group, id, doc)
                )
            });
            return Ok(Vec::new());
        }
        let ep = self.endpoint(id, doc)?;
        self.gate(&ep, props)?;
        let fwd = Forward::active(&ep, props);
        let label = explain::label(Kind::Group, id, doc);
        if let Some(f) = fwd.as_ref().filter(|f| f.substitute) {
            let leg = forward_leg(self, &ep, props, f);
            self.note(|| {
                format!(
                    "{label}: {} -> {} only; members not rung",
                    explain::forward_fact(&ep, props),
                    explain::leg(&leg)
                )
            });
            return Ok(vec![leg]);
        }
        let members = group_members(doc);
        self.note(|| {
            format!(
                "{label}: {}; members by weight: {}",
                explain::forward_fact(&ep, props),
                describe_members(&members)
            )
        });
        // Members of a group document are direct calls, however the group was reached.
        let member_props = Props {
            source: Some("cf_group"),
            ..props.clone()
        };
        let mut legs = self.members(&members, &member_props)?;
        if let Some(f) = &fwd {
            let leg = forward_leg(self, &ep, props, f);
            self.note(|| format!("{label}: -> {} after the members' legs", explain::leg(&leg)));
            legs.push(leg);
        }
        if legs.is_empty() {
            return fail(
                ErrorCode::NoEndpoints,
                format!("no member of group {id} has anything to ring"),
            );
        }
        Ok(legs)
    }

    /// Members in order: each member's legs, concatenated; members that fail are skipped.
    fn members(&mut self, members: &[Member], props: &Props<'_>) -> Step<Vec<Object>> {
        let mut legs = Vec::new();
        let mut pending = false;
        for m in members {
            let p = Props {
                timeout: m.timeout.or(props.timeout),
                delay: m.delay.or(props.delay),
                ..props.clone()
            };
            match self.entity(&m.id, &p) {
                Ok(l) => legs.extend(l),
                Err(Halt::Pending) => pending = true,
                Err(Halt::Fail(_)) => {}
            }
        }
        if pending {
            Err(Halt::Pending)
        } else {
            Ok(legs)
        }
    }
}

fn describe_members(members: &[Member]) -> String {
    if members.is_empty() {
        return "none".into();
    }
    members
        .iter()
        .map(|m| {
            let kind = match m.kind {
                MemberType::Device => "device",
                MemberType::User => "user",
                MemberType::Group => "group",
            };
            format!("{} ({kind})", m.id)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The ids a group document names as members (any that could be an id), for the resolver
/// to read ahead; nothing for a document that is not a live group.
pub fn nested_member_ids(doc: &Value) -> impl Iterator<Item = &str> {
    let live_group = Kind::of(doc) == Some(Kind::Group)
        && !is_true(doc.get("pvt_deleted"))
        && !is_true(doc.get("_deleted"))
        && !is_false(doc.get("enabled"));
    doc.get("endpoints")
        .and_then(Value::as_object)
        .filter(|_| live_group)
        .into_iter()
        .flat_map(|eps| eps.keys())
        .map(String::as_str)
        .filter(|id| is_valid_id(id))
}

/// A group document's `endpoints`, in ascending `weight` (missing: 20), ties in document order.
fn group_members(doc: &Value) -> Vec<Member> {
    let Some(Value::Object(eps)) = doc.get("endpoints") else {
        return Vec::new();
    };
    let mut members: Vec<(i64, Member)> = eps
        .iter()
        .filter_map(|(id, v)| {
            let kind = match ne_str(v.get("type")) {
                None => MemberType::Device,
                Some(t) => MemberType::parse(t)?,
            };
            let weight = as_integer(v.get("weight")).unwrap_or(20);
            Some((
                weight,
                Member {
                    id: id.clone(),
                    kind,
                    delay: as_integer(v.get("delay")),
                    timeout: as_integer(v.get("timeout")),
                },
            ))
        })
        .collect();
    members.sort_by_key(|(w, _)| *w);
    members.into_iter().map(|(_, m)| m).collect()
}
