//! Loopback destinations: an entity's active call-forward and its failover target
//! (`product-rules.md` section 3, `cf_active`; `kazoo-endpoint-rules.md` section 6.4).

use serde_json::Value;

use super::attributes::Endpoint;
use super::dialling::Dialling;
use crate::kz_json::{bool_or, get as kz_get, is_true, ne_value_str};

/// A loopback destination: a call-forward or a failover target with its flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward<'a> {
    /// Where the loopback goes (`Route`).
    pub number: &'a str,
    /// `keep_caller_id`.
    pub keep_caller_id: bool,
    /// `require_keypress`.
    pub require_keypress: bool,
    /// `ignore_early_media` (`None`: missing, which means true).
    pub ignore_early_media: Option<bool>,
    /// `substitute` (a missing value means true: the schema default).
    pub substitute: bool,
    /// This is a failover target (`Is-Failover`).
    pub failover: bool,
    /// Which object it came from: `call_forward` or `call_failover`.
    pub origin: &'static str,
}

impl<'a> Forward<'a> {
    fn flags(obj: &'a Value, number: &'a str, failover: bool, origin: &'static str) -> Self {
        Self {
            number,
            keep_caller_id: is_true(kz_get(obj, "keep_caller_id")),
            require_keypress: is_true(kz_get(obj, "require_keypress")),
            ignore_early_media: kz_get(obj, "ignore_early_media").map(|v| is_true(Some(v))),
            substitute: bool_or(kz_get(obj, "substitute"), true),
            failover,
            origin,
        }
    }

    /// The active call-forward of an entity (`product-rules.md` section 3, `cf_active`):
    /// enabled, with a non-empty number, and the call is direct or the forward is not
    /// limited to direct calls.
    pub fn active(ep: &Endpoint<'a>, dialling: &Dialling<'_>) -> Option<Self> {
        let cf = ep.top().call_forward?;
        let number = ne_value_str(kz_get(cf, "number"))?;
        let ok = is_true(kz_get(cf, "enabled"))
            && (dialling.is_direct() || !is_true(kz_get(cf, "direct_calls_only")));
        ok.then(|| Self::flags(cf, number, false, "call_forward"))
    }

    /// The entity's failover target: `call_failover` when enabled with a number, else the
    /// legacy `call_forward.failover` with `call_forward.number`.
    pub fn failover_target(ep: &Endpoint<'a>) -> Option<Self> {
        if let Some(cfo) = ep.top().call_failover
            && is_true(kz_get(cfo, "enabled"))
            && let Some(number) = ne_value_str(kz_get(cfo, "number"))
        {
            // call_failover has no substitute: the failover replaces the device leg.
            let mut f = Self::flags(cfo, number, true, "call_failover");
            f.substitute = true;
            return Some(f);
        }
        let cf = ep.top().call_forward?;
        let number = ne_value_str(kz_get(cf, "number"))?;
        is_true(kz_get(cf, "failover")).then(|| Self::flags(cf, number, true, "call_forward"))
    }
}
