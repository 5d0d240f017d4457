//! A device's legs: the device table (`product-rules.md` section 3, `docs/device-table.md`):
//! registration state and call-forward decide which of the SIP, push, forward and failover
//! legs it gets.

use super::attributes::{Endpoint, Kind};
use super::dialling::Dialling;
use super::endpoint_type::{self, EndpointType};
use super::explain;
use super::forward::Forward;
use super::gating;
use super::state::{BuildState, Step};
use crate::document::Document;
use crate::kz_json::{is_empty, ne_str};
use crate::leg::Leg;
use crate::registrar::{RegKey, Registration};

/// The legs of one device and what the user rules need to know about them.
pub(super) struct DeviceLegs<'a, 'p> {
    pub(super) legs: Vec<Leg>,
    pub(super) ep: Endpoint<'a>,
    pub(super) dialling: Dialling<'p>,
    /// The registration state, for a device that needs a registration.
    pub(super) registration: Option<Registration>,
    /// The `username@realm` that was looked up (none without a realm).
    pub(super) reg_key: Option<RegKey>,
    /// Index of the SIP leg of an unknown-state device that has no failover of its own.
    pub(super) bare_sip: Option<usize>,
    /// The device's active forward number.
    pub(super) forward_number: Option<&'a str>,
}

impl<'a> BuildState<'a> {
    /// A device's legs (`product-rules.md` section 3).
    /// `count_registration`: look the registration up even when the device's legs do not
    /// depend on it (a substituting forward), because its user's failover does.
    pub(super) fn device<'p>(
        &mut self,
        id: &'a str,
        doc: &'a Document,
        dialling: &Dialling<'p>,
        count_registration: bool,
    ) -> Step<DeviceLegs<'a, 'p>> {
        let ep = self.endpoint(id, doc)?;
        gating::gate(self.call(), &ep, dialling)?;
        let fwd = Forward::active(&ep, dialling);
        let mut out = DeviceLegs {
            legs: Vec::new(),
            registration: None,
            reg_key: None,
            bare_sip: None,
            forward_number: fwd.as_ref().map(|f| f.number),
            dialling: dialling.clone(),
            ep,
        };
        let ep = &out.ep;
        let fwd_leg = |ctx: &Self| fwd.as_ref().map(|f| ctx.legs().forward(ep, dialling, f));
        let substitute = fwd.as_ref().is_some_and(|f| f.substitute);
        let username = ne_str(ep.sip().username);
        let raw_format = ne_str(ep.sip().invite_format).unwrap_or("username");
        let routed = raw_format == "route" && ne_str(ep.sip().route).is_some();
        let kind = endpoint_type::of(self.call(), ep);
        let push = kind == EndpointType::Push;
        // Mobile and skype devices, and (with `restrict_to_known_types`) one of no known
        // type that has a `sip`, start no device leg of their own; a device with no `sip` at
        // all is the device table's rows 8-9.
        let no_device_leg = match kind {
            EndpointType::Mobile | EndpointType::Skype => true,
            EndpointType::Unknown => !is_empty(ep.top().sip),
            EndpointType::Sip | EndpointType::Push => false,
        };
        // Product rule 2: a device needs a registration when it has a username, is not
        // dialled by route or loopback, and is not IP-authenticated.
        let needs_registration = username.is_some()
            && !push
            && !no_device_leg
            && !matches!(raw_format, "route" | "loopback")
            && ne_str(ep.sip().ip).is_none();
        if let Some(user) = username
            && needs_registration
            && (count_registration || !substitute)
        {
            let realm = ne_str(ep.sip().realm).or(self.call().account_realm());
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
            let leg = self.legs().push(ep, dialling, nested);
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
        if !substitute && no_device_leg {
            out.legs.extend(fwd_leg(self));
            let fact = match kind.unapplied() {
                Some(feature) => {
                    self.record_unapplied(feature);
                    let f = feature.as_str();
                    format!(
                        "a {f} device: its {f} leg is not built (not applied; counted in \
                         kz_endpoint_unapplied_features_total{{feature=\"{f}\"}})"
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
            if !self.explaining() {
                return Ok(out);
            }
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
                out.legs.push(self.legs().sip(ep, dialling, None));
            }
            Registration::Unregistered => {
                if let Some(t) = target.as_ref().filter(|t| !same_as_forward(t)) {
                    out.legs.push(self.legs().forward(ep, dialling, t));
                }
            }
            Registration::Unknown => {
                let nested = target.as_ref().filter(|t| !same_as_forward(t));
                if target.is_none() {
                    out.bare_sip = Some(out.legs.len());
                }
                out.legs.push(self.legs().sip(ep, dialling, nested));
            }
        }
        out.legs.extend(fwd_leg(self));
        if self.explaining() {
            let reg_fact = match out.registration {
                Some(r) => explain::registration_fact(r, out.reg_key.as_ref()),
                None if ne_str(out.ep.sip().ip).is_some() => {
                    "IP-authenticated (sip.ip): no registration needed".into()
                }
                None => "dialled by route: no registration needed".into(),
            };
            self.note_device(&out, &reg_fact, row);
        }
        Ok(out)
    }

    fn note_device(&mut self, d: &DeviceLegs<'_, '_>, registration: &str, row: u8) {
        if !self.explaining() {
            return;
        }
        let line = format!(
            "{}: {registration}; {}; {} -> {} (docs/device-table.md row {row})",
            explain::label(Kind::Device, d.ep.id(), d.ep.doc()),
            explain::forward_fact(&d.ep, &d.dialling),
            explain::failover_fact(Forward::failover_target(&d.ep).as_ref()),
            explain::legs(&d.legs),
        );
        self.note(|| line);
    }
}
