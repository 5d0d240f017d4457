//! One engine run, top down: open the call, build the target, then drop repeated loopback
//! legs. An entity is built by its document's type ([`BuildState::entity`]): a device
//! (`device.rs`), a user (`user.rs`) or a group (`group.rs`), each after the gates
//! (`gating.rs`).

use serde_json::Value;

use super::attributes::{Endpoint, Kind};
use super::dialling::Dialling;
use super::explain;
use super::forward::Forward;
use super::gating;
use super::group;
use super::inputs::{HashSet, Inputs, Outcome};
use super::state::{BuildState, Halt, Step, fail};
use crate::build_api::{BuildError, BuildRequest, ErrorCode, Target};
use crate::leg::Leg;
use crate::registrar::Registration;

/// Stack left below which a nested entity is built on a new stack segment.
const STACK_RED_ZONE: usize = 128 * 1024;
/// The size of each new stack segment.
const STACK_SEGMENT: usize = 2 * 1024 * 1024;

/// Builds the legs for `req` from `inputs`, or says what is still needed.
pub fn build(req: &BuildRequest, inputs: &Inputs) -> Outcome {
    let mut state = BuildState::new(req, inputs);
    let result = state.target();
    if !state.nothing_missing() {
        let (needs, _, _) = state.finish();
        return Outcome::Need(needs);
    }
    let result = match result {
        Ok(legs) => Ok(state.dedupe_loopbacks(legs)),
        Err(Halt::Fail(e)) => Err(e),
        Err(Halt::MissingInput) => Err(BuildError::new(
            ErrorCode::Internal,
            "engine stopped on a missing input it did not name",
        )),
    };
    let (_, mut lines, unapplied) = state.finish();
    if req.explain {
        lines.push(match &result {
            Ok(legs) => format!("result: {} leg(s): {}", legs.len(), explain::legs(legs)),
            Err(e) => format!("result: {} ({})", e.code, e.message),
        });
    }
    Outcome::Done {
        result,
        explain: lines,
        unapplied,
    }
}

impl<'a> BuildState<'a> {
    /// Builds the request's target: one entity, or a ring group's member list.
    fn target(&mut self) -> Step<Vec<Leg>> {
        let target_doc = self.open_call()?;
        let req = self.call().req();
        let top = Dialling::of(&req.properties);
        match &req.target {
            Target::Endpoint(id) => {
                let is_group = target_doc.is_some_and(|d| d.view().kind == Some(Kind::Group));
                // A group's members carry their own timers; the action's are the bridge's.
                let dialling = if is_group { top.without_timers() } else { top };
                let legs = self.entity(id, &dialling)?;
                if legs.is_empty() {
                    return fail(
                        ErrorCode::NoEndpoints,
                        format!("endpoint {id} has nothing to ring"),
                    );
                }
                Ok(legs)
            }
            Target::Members(members) => {
                let dialling = Dialling {
                    source: Some("cf_ring_group"),
                    ..top.without_timers()
                };
                self.note(|| {
                    format!(
                        "ring group: members in list order: {}",
                        group::describe_members(members)
                    )
                });
                let legs = self.members(members, &dialling)?;
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
    pub(super) fn entity(&mut self, id: &str, dialling: &Dialling<'_>) -> Step<Vec<Leg>> {
        // Groups nest as deep as their documents say (the resolver bounds the documents, not
        // the depth), and each level is a few frames of this recursion: past the red zone,
        // it continues on a fresh stack segment instead of overflowing the worker's.
        let r = stacker::maybe_grow(STACK_RED_ZONE, STACK_SEGMENT, || {
            self.entity_inner(id, dialling)
        });
        if let Err(Halt::Fail(e)) = &r
            && self.explaining()
        {
            let line = format!("{}: not built: {}", self.label_of(id), explain::why(e, id));
            self.note(|| line);
        }
        r
    }

    fn entity_inner(&mut self, id: &str, dialling: &Dialling<'_>) -> Step<Vec<Leg>> {
        let Some(doc) = self.doc(id)? else {
            return fail(
                ErrorCode::NotFound,
                format!(
                    "no document {id} in account {}",
                    self.call().req().account_id
                ),
            );
        };
        // The id as the inputs hold it, so it lives as long as the documents.
        let Some(id) = self.stored_id(id) else {
            return Err(Halt::MissingInput);
        };
        let Some(kind) = doc.view().kind else {
            let t = doc
                .view()
                .top
                .pvt_type
                .and_then(Value::as_str)
                .unwrap_or("none");
            return fail(
                ErrorCode::NotDeviceNorUser,
                format!("{id} is a {t} document, not a device, user or group"),
            );
        };
        gating::check_document(id, doc, kind)?;
        match kind {
            Kind::Device => {
                if !self.first_ring_of(id) {
                    self.note(|| format!("device {id}: already rung by an earlier member"));
                    return Ok(Vec::new());
                }
                let d = self.device(id, doc, dialling, false)?;
                if d.legs.is_empty() && d.registration == Some(Registration::Unregistered) {
                    return fail(
                        ErrorCode::NoEndpoints,
                        format!("device {id} is not registered and has no failover"),
                    );
                }
                Ok(d.legs)
            }
            Kind::User => self.user(id, doc, dialling),
            Kind::Group => self.group(id, doc, dialling),
            Kind::Account => fail(
                ErrorCode::NoEndpoints,
                format!("account {id} has no leg type"),
            ),
        }
    }

    /// A user or group whose forward substitutes it: the forward leg alone; `instead` says what
    /// is then not rung, for the explanation.
    pub(super) fn substituted_by_forward(
        &mut self,
        ep: &Endpoint<'_>,
        dialling: &Dialling<'_>,
        fwd: &Forward<'_>,
        instead: &str,
    ) -> Vec<Leg> {
        let leg = self.legs().forward(ep, dialling, fwd);
        self.note(|| {
            format!(
                "{}: {} -> {} only; {instead}",
                explain::label(ep.kind(), ep.id(), ep.doc()),
                explain::forward_fact(ep, dialling),
                leg.describe()
            )
        });
        vec![leg]
    }

    /// Within one build, loopback legs with the same `Route` keep their first occurrence.
    fn dedupe_loopbacks(&mut self, legs: Vec<Leg>) -> Vec<Leg> {
        let mut routes = HashSet::default();
        let mut out = Vec::with_capacity(legs.len());
        for leg in legs {
            if let Some(route) = leg.loopback_route()
                && !routes.insert(route.to_owned())
            {
                self.note(|| {
                    format!(
                        "{} dropped: an earlier leg already goes to {route}",
                        leg.describe()
                    )
                });
                continue;
            }
            out.push(leg);
        }
        out
    }
}
