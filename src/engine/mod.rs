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
//!
//! # Map
//!
//! - `inputs`: what the engine reads ([`Inputs`]) and answers ([`Outcome`], [`Needs`]).
//! - `dispatch`: one run, top down ([`build`]): the target, each entity by its type, and the
//!   loopback de-duplication.
//! - [`SortedSet`]: the sets of ids a run needs.
//! - `state`: the run's state (`BuildState`): lookups that record what is missing, what was
//!   expanded already, the explanation lines.
//! - `call`: the call being built for (`CallContext`): request, account, caller; read by
//!   every leg.
//! - `gating`: the checks an entity passes before it rings (disabled, DND, calling itself,
//!   queue exclusion, …).
//! - `device`: the device table (product rules section 3).
//! - `user`: a user's devices and failover (section 4).
//! - `group`: groups, ring groups and their members (section 5).
//! - `dialling`: how a member is dialled (delay, timeout, can_call_self, …).
//! - `forward`: call-forward and failover targets.
//! - [`attributes`]: the merged endpoint (account, owner, device).
//! - [`caller_id`]: caller ID, callee ID and privacy.
//! - [`legs`]: builds the field-exact SIP, push and loopback legs (the types are
//!   [`crate::leg`]).
//! - [`config`], [`recording`], [`formatters`], [`endpoint_type`]: the configuration read,
//!   call recording, outbound formatters, endpoint types.
//! - [`explain`]: the explanation lines.

pub mod attributes;
mod call;
pub mod caller_id;
pub mod config;
mod device;
mod dialling;
mod dispatch;
pub mod endpoint_type;
pub mod explain;
pub mod formatters;
mod forward;
mod gating;
mod group;
mod inputs;
pub mod legs;
pub mod recording;
mod sorted_set;
mod state;
mod user;

pub use call::CallContext;
pub use dialling::Dialling;
pub use dispatch::build;
pub use forward::Forward;
pub use inputs::{HashMap, HashSet, Inputs, Needs, Outcome};
pub use sorted_set::SortedSet;
pub use state::read_after;
