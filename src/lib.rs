//! kz-endpoint: Kazoo's endpoint builder as a standalone worker.
//!
//! A Kazoo callflow asks "which call legs do I start to ring this device, user or group?";
//! kz-endpoint answers with the bridge endpoints, in Kazoo's own wire format.
//!
//! The crate's parts, in the order a request meets them:
//!
//! - [`build_api`]: the `endpoint`/`build_req` request, its validation, and the
//!   `build_resp`/`build_error` reply envelope (Kazoo's `kapi_endpoint`, proposed), read
//!   from the message's JSON as it came ([`message_json`], no `serde_json` maps).
//! - [`handler`]: the one request path every entry point shares (CLI, worker, replay).
//! - [`resolver`]: gathers the documents and registrations a build needs, one batched read
//!   per expansion level, and runs the engine.
//! - [`document`]: a Kazoo document, its JSON and the typed view of the fields the builder
//!   reads, found once when it is read.
//! - [`documents`]: the [`documents::DocumentStore`] trait and the `attributes/owned` view;
//!   [`fixturedb`]: the embedded store over a Kazoo fixturedb folder.
//! - [`registrar`]: registration state ([`registrar::Registrar`]): given offline, asked of
//!   the ecallmgr registrars over AMQP by the worker ([`registrar::amqp`]).
//! - [`engine`]: the pure leg engine (attribute merge, gating, device/user/group rules,
//!   field-exact SIP, forward and failover legs).
//! - [`leg`]: a leg as a type ([`leg::Leg`]: a device's SIP or push leg, a loopback leg),
//!   serialised straight to Kazoo's JSON; what a build answers with.
//! - [`validate`]: the bridge-endpoint validation ecallmgr applies, used on every leg in tests.
//! - [`worker`]: the live worker: the request consumer, replies, reconnection and shutdown
//!   ([`shutdown`]), counters ([`stats`]), the settlement of every delivery
//!   ([`settlement`]) and the request window's stall detector ([`progress`]); over
//!   [`broker_connection`] (the worker's one AMQP connection, on the requests' thread:
//!   requests, replies, settlements, registrar queries and answers, events; the frames of
//!   every request read and written by [`frames`]), [`amqp`] (Kazoo's AMQP conventions),
//!   [`nodes`] (live ecallmgr nodes), [`couchdb`] (the CouchDB store), [`cache`] (the
//!   document cache), [`conf_events`] (Kazoo's document-change events) and [`correlator`]
//!   (replies matched to their requests by `Msg-ID`, for the registrar and the client).
//! - [`ops`]: the operations listener (`/healthz`, `/readyz`, `/metrics`).
//! - [`capture`]: the capture file format; [`recorder`]: captures of what the live worker
//!   answers; [`replay`]: a capture run again and compared; [`check`]: an
//!   account's configuration checked for what loses calls.
//! - [`client`]: a client that sends build requests as Kazoo's callflow does (the test
//!   support, synthetic accounts and a stand-in ecallmgr, is the `kz-endpoint-testkit` crate
//!   in `testkit/`, which the library does not ship).
//! - [`kz_json`], [`ids`]: Kazoo's value conventions, ids and database names;
//!   [`json_writer`]: compact JSON as `serde_json` writes it, with a faster string escape;
//!   [`report`]: error chains and URLs as operators read them (never a password);
//!   [`log_format`]: the fields of a text log line, written for less.

pub mod amqp;
pub mod broker_connection;
pub mod build_api;
pub mod cache;
pub mod capture;
pub mod check;
pub mod client;
pub mod conf_events;
pub mod correlator;
pub mod couchdb;
pub mod document;
pub mod documents;
pub mod engine;
pub mod fixturedb;
pub mod frames;
pub mod handler;
pub mod ids;
pub mod json_writer;
pub mod kz_json;
pub mod leg;
pub mod log_format;
pub mod message_json;
pub mod nodes;
pub mod ops;
pub mod progress;
pub mod recorder;
pub mod registrar;
pub mod replay;
pub mod report;
pub mod resolver;
pub mod settlement;
pub mod shutdown;
pub mod stats;
pub mod validate;
pub mod worker;
