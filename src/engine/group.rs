//! Groups and ring groups (`product-rules.md` section 5): a group document's members in
//! weight order, a ring group's member list in list order, each member dialled with its own
//! delay and timeout.

use serde_json::Value;

use super::attributes::Kind;
use super::dialling::Dialling;
use super::explain;
use super::forward::Forward;
use super::gating;
use super::state::{BuildState, Halt, Step, fail};
use crate::build_api::{ErrorCode, Member, MemberType};
use crate::document::Document;
use crate::ids::is_valid_id;
use crate::kz_json::{as_integer, ne_str};
use crate::leg::Leg;

impl<'a> BuildState<'a> {
    /// A group's legs (`product-rules.md` section 5).
    pub(super) fn group(
        &mut self,
        id: &'a str,
        doc: &'a Document,
        dialling: &Dialling<'_>,
    ) -> Step<Vec<Leg>> {
        if !self.first_expansion_of_group(id) {
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
        gating::gate(self.call(), &ep, dialling)?;
        let fwd = Forward::active(&ep, dialling);
        if let Some(f) = fwd.as_ref().filter(|f| f.substitute) {
            return Ok(self.substituted_by_forward(&ep, dialling, f, "members not rung"));
        }
        // Read by the explanation lines only: not built for a build that explains nothing.
        let label = if self.explaining() {
            explain::label(Kind::Group, id, doc)
        } else {
            String::new()
        };
        let members = group_members(doc);
        self.note(|| {
            format!(
                "{label}: {}; members by weight: {}",
                explain::forward_fact(&ep, dialling),
                describe_members(&members)
            )
        });
        // Members of a group document are direct calls, however the group was reached.
        let member_props = Dialling {
            source: Some("cf_group"),
            ..dialling.clone()
        };
        let mut legs = self.members(&members, &member_props)?;
        if let Some(f) = &fwd {
            let leg = self.legs().forward(&ep, dialling, f);
            self.note(|| format!("{label}: -> {} after the members' legs", leg.describe()));
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
    pub(super) fn members(
        &mut self,
        members: &[Member],
        dialling: &Dialling<'_>,
    ) -> Step<Vec<Leg>> {
        let mut legs = Vec::new();
        let mut pending = false;
        for m in members {
            let p = Dialling {
                timeout: m.timeout.or(dialling.timeout),
                delay: m.delay.or(dialling.delay),
                ..dialling.clone()
            };
            match self.entity(&m.id, &p) {
                Ok(l) => legs.extend(l),
                Err(Halt::MissingInput) => pending = true,
                Err(Halt::Fail(_)) => {}
            }
        }
        if pending {
            Err(Halt::MissingInput)
        } else {
            Ok(legs)
        }
    }
}

/// `id (type)` of each member, for the explanation.
pub(super) fn describe_members(members: &[Member]) -> String {
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
/// to read ahead ([`super::read_after`]); nothing for a document that is not a live group.
pub(super) fn nested_member_ids(doc: &Document) -> impl Iterator<Item = &str> {
    let live_group =
        doc.view().kind == Some(Kind::Group) && gating::unusable(doc, Kind::Group).is_none();
    doc.view()
        .top
        .endpoints
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
