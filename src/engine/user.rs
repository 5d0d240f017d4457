//! A user's legs (`product-rules.md` section 4): its forward, its owned devices through the
//! device table, and the user's failover when none of them is registered.

use super::attributes::Kind;
use super::dialling::Dialling;
use super::explain;
use super::forward::Forward;
use super::gating;
use super::state::{BuildState, Halt, Step, fail};
use crate::build_api::ErrorCode;
use crate::document::Document;
use crate::kz_json::{is_false, is_true};
use crate::leg::Leg;
use crate::registrar::Registration;

impl<'a> BuildState<'a> {
    /// A user's legs (`product-rules.md` section 4).
    pub(super) fn user(
        &mut self,
        id: &'a str,
        doc: &'a Document,
        dialling: &Dialling<'_>,
    ) -> Step<Vec<Leg>> {
        if self.user_expanded(id) {
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
        gating::gate(self.call(), &ep, dialling)?;
        self.mark_user_expanded(id);
        let fwd = Forward::active(&ep, dialling);
        let user_target = Forward::failover_target(&ep);
        if let Some(f) = fwd.as_ref().filter(|f| f.substitute) {
            let instead = "the user's devices are not looked up";
            return Ok(self.substituted_by_forward(&ep, dialling, f, instead));
        }
        // Read by the explanation lines only: not built for a build that explains nothing.
        let label = if self.explaining() {
            explain::label(Kind::User, id, doc)
        } else {
            String::new()
        };
        let device_ids = self.owned(id)?;
        self.note(|| {
            format!(
                "{label}: {}; {}; owned devices: {}",
                explain::forward_fact(&ep, dialling),
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
            let top = &doc.view().top;
            let skip = if doc.view().kind != Some(Kind::Device) {
                Some("not a device")
            } else if is_true(top.pvt_deleted) {
                Some("deleted")
            } else if is_false(top.enabled) {
                Some("disabled")
            } else if !self.first_ring_of(did) {
                Some("already rung by an earlier member")
            } else {
                None
            };
            if let Some(why) = skip {
                self.note(|| format!("{}: skipped: {why}", explain::label(Kind::Device, did, doc)));
                continue;
            }
            match self.device(did, doc, dialling, user_target.is_some()) {
                Ok(b) => builds.push(b),
                Err(Halt::MissingInput) => pending = true,
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
            return Err(Halt::MissingInput);
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
                    failover_leg = Some(self.legs().forward(&ep, dialling, &target));
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
                    let nested = self.legs().nested(&b.ep, &b.dialling, &target);
                    b.legs[i].nest_user_failover(nested);
                    nested_on.push(b.ep.id());
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
        let mut legs: Vec<Leg> = builds.into_iter().flat_map(|b| b.legs).collect();
        legs.extend(failover_leg);
        if let Some(f) = &fwd {
            legs.push(self.legs().forward(&ep, dialling, f));
        }
        if legs.is_empty() {
            return fail(
                ErrorCode::NoEndpoints,
                format!("user {id} has no device to ring and no active call forward"),
            );
        }
        Ok(legs)
    }
}
