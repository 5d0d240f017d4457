//! Registration state: is a SIP device registered right now?
//!
//! Kazoo's builder never asks; ecallmgr finds out later, when it dials. kz-endpoint decides
//! itself (`product-rules.md` section 2), so the legs it returns are the legs to start. The
//! live worker asks the registrars over AMQP (`reg_query`); offline modes (the CLI, replay)
//! are given the state. Both sit behind [`Registrar`].

pub mod amqp;

use std::collections::HashMap;
use std::future::Future;

/// A registration is keyed by SIP username and realm, as ecallmgr's registrar keys it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RegKey {
    /// `sip.username`.
    pub username: String,
    /// `sip.realm`, else the account realm.
    pub realm: String,
}

impl RegKey {
    /// A key.
    pub fn new(username: impl Into<String>, realm: impl Into<String>) -> Self {
        Self {
            username: username.into(),
            realm: realm.into(),
        }
    }

    /// Parses `username@realm` (split at the last `@`).
    pub fn parse(s: &str) -> Option<Self> {
        let (u, r) = s.rsplit_once('@')?;
        (!u.is_empty() && !r.is_empty()).then(|| Self::new(u, r))
    }
}

impl std::fmt::Display for RegKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.username, self.realm)
    }
}

/// The three outcomes of a registration lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Registration {
    /// Some registrar holds a registration.
    Registered,
    /// Registrars answered, none holds one.
    Unregistered,
    /// No registrar answered in time, or none is configured.
    Unknown,
}

impl Registration {
    /// Lowercase name, for logs and explanations.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Registered => "registered",
            Self::Unregistered => "unregistered",
            Self::Unknown => "unknown",
        }
    }
}

/// Answers registration lookups for the devices of one build, all at once.
pub trait Registrar {
    /// The state of each key. A key missing from the answer counts as unknown.
    fn lookup(&self, keys: &[RegKey])
    -> impl Future<Output = HashMap<RegKey, Registration>> + Send;
}

/// A registrar with a fixed answer: the listed devices are in the listed state, every other
/// one in `others`. Used by the CLI (registered list, others unregistered or unknown) and by
/// replay (the captured answers).
#[derive(Debug, Clone, Default)]
pub struct GivenRegistrations {
    states: HashMap<RegKey, Registration>,
    others_unknown: bool,
}

impl GivenRegistrations {
    /// The given registered set; every other device is unregistered, or unknown.
    pub fn new(registered: impl IntoIterator<Item = RegKey>, others_unknown: bool) -> Self {
        Self {
            states: registered
                .into_iter()
                .map(|k| (k, Registration::Registered))
                .collect(),
            others_unknown,
        }
    }

    /// Explicit states; every other device is unregistered, or unknown.
    pub fn with_states(
        states: impl IntoIterator<Item = (RegKey, Registration)>,
        others_unknown: bool,
    ) -> Self {
        Self {
            states: states.into_iter().collect(),
            others_unknown,
        }
    }

    /// The state of one key.
    pub fn state(&self, key: &RegKey) -> Registration {
        match self.states.get(key) {
            Some(s) => *s,
            None if self.others_unknown => Registration::Unknown,
            None => Registration::Unregistered,
        }
    }
}

impl Registration {
    /// Parses the lowercase name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "registered" => Some(Self::Registered),
            "unregistered" => Some(Self::Unregistered),
            "unknown" => Some(Self::Unknown),
            _ => None,
        }
    }
}

impl Registrar for GivenRegistrations {
    async fn lookup(&self, keys: &[RegKey]) -> HashMap<RegKey, Registration> {
        keys.iter().map(|k| (k.clone(), self.state(k))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_user_at_realm() {
        assert_eq!(
            RegKey::parse("user_1002@acme.sip.example.com"),
            Some(RegKey::new("user_1002", "acme.sip.example.com"))
        );
        assert_eq!(RegKey::parse("nobody"), None);
        assert_eq!(RegKey::parse("@realm"), None);
    }

    #[test]
    fn given_state() {
        let g = GivenRegistrations::new([RegKey::new("a", "r")], false);
        assert_eq!(g.state(&RegKey::new("a", "r")), Registration::Registered);
        assert_eq!(g.state(&RegKey::new("b", "r")), Registration::Unregistered);
        let g = GivenRegistrations::new([], true);
        assert_eq!(g.state(&RegKey::new("b", "r")), Registration::Unknown);
    }
}
