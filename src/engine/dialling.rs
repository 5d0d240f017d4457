//! How a member is dialled: the callflow action's properties, narrowed per member.

use crate::build_api::Properties;

/// How one member is dialled: the callflow action's data (`Properties`) as it applies to it,
/// with a ring group member's or group member's own delay and timeout.
#[derive(Debug, Clone, Default)]
pub struct Dialling<'a> {
    /// The callflow module (`cf_device`, `cf_user`, `cf_group`, `cf_ring_group`, …).
    pub source: Option<&'a str>,
    /// Dialling oneself is allowed.
    pub can_call_self: bool,
    /// Texting oneself is allowed (`None`: Kazoo's default, true).
    pub can_text_self: Option<bool>,
    /// Overrides the SIP `To-User`.
    pub static_invite: Option<&'a str>,
    /// Leave every caller/callee ID field out.
    pub suppress_clid: bool,
    /// `Endpoint-Timeout`, seconds.
    pub timeout: Option<i64>,
    /// `Endpoint-Delay`, seconds.
    pub delay: Option<i64>,
}

impl<'a> Dialling<'a> {
    /// How the callflow action itself dials (before any member's own timers).
    pub fn of(p: &'a Properties) -> Self {
        Self {
            source: p.source.as_deref(),
            can_call_self: p.can_call_self,
            can_text_self: p.can_text_self,
            static_invite: p.static_invite.as_deref(),
            suppress_clid: p.suppress_clid,
            timeout: p.timeout,
            delay: p.delay,
        }
    }

    /// A direct call: not placed by a ring group or a queue (v4 `NON_DIRECT_MODULES`).
    pub fn is_direct(&self) -> bool {
        !matches!(self.source, Some("cf_ring_group" | "acdc_util"))
    }

    /// The same properties without timeout and delay (a nested `Failover` has none).
    pub fn without_timers(&self) -> Self {
        Self {
            timeout: None,
            delay: None,
            ..self.clone()
        }
    }
}
