//! The request handler every entry point shares: a message in, the reply body out.
//!
//! The size limit, JSON parsing, the content-type check, request validation, resolution, the
//! engine and the reply envelope are one code path, whether the message came from RabbitMQ,
//! the CLI or a replayed capture.

use crate::build_api::{
    BuildError, BuildResult, Envelope, ErrorCode, Identity, Reply, parse_request_json, reply_body,
};
use crate::documents::DocumentStore;
use crate::kz_json::Object;
use crate::message_json::{Json, JsonObject};
use crate::registrar::Registrar;
use crate::resolver::{Limits, Resolution, resolve_scoped};

/// Requests larger than this are refused unread.
pub const MAX_BODY: usize = 1024 * 1024;

/// A request answered: where the answer goes, the build's result, and the reply body that
/// says it (published by the worker, printed by the CLI, compared by replay).
#[derive(Debug, Clone)]
pub struct Answered {
    /// The request's reply-address fields (present even for a bad request).
    pub envelope: Envelope,
    /// The legs, or the error.
    pub result: BuildResult,
    /// The reply body to publish.
    pub reply: Reply,
    /// The resolution, when the request was valid enough to build.
    pub resolution: Option<Resolution>,
}

fn invalid(message: impl Into<String>) -> BuildError {
    BuildError::new(ErrorCode::InvalidRequest, message)
}

/// Parses a body: it must be one JSON object.
pub fn parse_body(bytes: &[u8]) -> Result<Object, BuildError> {
    read_body(bytes).map(|o| o.to_object())
}

/// Reads a body as it is ([`crate::message_json`]): it must be one JSON object.
pub fn read_body(bytes: &[u8]) -> Result<JsonObject<'_>, BuildError> {
    match Json::parse(bytes) {
        Ok(Json::Object(o)) => Ok(o),
        Ok(_) => Err(invalid("the body must be a JSON object")),
        Err(e) => Err(invalid(format!("the body is not JSON: {e}"))),
    }
}

/// Handles one `build_req` body, within the default [`Limits`].
pub async fn handle<S, R>(body: &Object, store: &S, registrar: &R, identity: &Identity) -> Answered
where
    S: DocumentStore + Sync,
    R: Registrar + Sync,
{
    handle_with(body, store, registrar, identity, &Limits::default()).await
}

/// Handles one `build_req` body, within `limits`.
pub async fn handle_with<S, R>(
    body: &Object,
    store: &S,
    registrar: &R,
    identity: &Identity,
    limits: &Limits,
) -> Answered
where
    S: DocumentStore + Sync,
    R: Registrar + Sync,
{
    let body = JsonObject::borrowed(body);
    let envelope = Envelope::of_json(&body);
    handle_read(&body, envelope, store, registrar, identity, limits).await
}

/// Handles one `build_req` body as it was read from the message ([`read_request`]), within
/// `limits`: what [`handle_with`] does, without a `serde_json` map of the body. `envelope`
/// is the body's (`Envelope::of_json(body)`): the worker reads it first, for its log span and
/// the reply address, and it is not read twice.
pub async fn handle_read<S, R>(
    body: &JsonObject<'_>,
    envelope: Envelope,
    store: &S,
    registrar: &R,
    identity: &Identity,
    limits: &Limits,
) -> Answered
where
    S: DocumentStore + Sync,
    R: Registrar + Sync,
{
    let (result, resolution) = match parse_request_json(body) {
        Ok(req) => {
            let mut r =
                resolve_scoped(&req, store, registrar, limits, &identity.config_scope()).await;
            // The legs move to `Answered::result`; the resolution keeps the rest.
            let result = std::mem::replace(&mut r.result, Ok(Vec::new()));
            (result, Some(r))
        }
        Err(e) => (Err(e), None),
    };
    let explain = resolution
        .as_ref()
        .map(|r| r.explain.as_slice())
        .unwrap_or_default();
    let reply = reply_body(identity, &envelope, &result, explain);
    Answered {
        envelope,
        result,
        reply,
        resolution,
    }
}

/// A message that is not a request: the envelope that could still be read from it (for
/// the reply address) and the `invalid_request` error.
#[derive(Debug, Clone)]
pub struct Refused {
    /// Whatever envelope fields could be read.
    pub envelope: Envelope,
    /// Why the message was refused.
    pub error: BuildError,
}

impl Refused {
    /// What handling a refused message produced: the error reply, nothing built.
    pub fn handled(self, identity: &Identity) -> Answered {
        let Refused { envelope, error } = self;
        let result = Err(error);
        let reply = reply_body(identity, &envelope, &result, &[]);
        Answered {
            envelope,
            result,
            reply,
            resolution: None,
        }
    }
}

/// The refusal of a body of `size` bytes, over [`MAX_BODY`]: refused by its size alone, so
/// that a consumer need not even keep it (its envelope is not read either).
pub fn oversized(size: u64) -> Box<Refused> {
    Box::new(Refused {
        envelope: Envelope::default(),
        error: invalid(format!(
            "the body is {size} bytes, over the {MAX_BODY}-byte limit"
        )),
    })
}

/// Reads one AMQP message: its body bytes and its `content_type` property. A body over
/// [`MAX_BODY`] is refused unread; a body that is not a JSON object, or a content type other
/// than `application/json`, is refused (the reply address is still read from a JSON body
/// when there is one). The body is kept as it was read ([`crate::message_json`]), for
/// [`handle_read`].
pub fn read_request<'a>(
    data: &'a [u8],
    content_type: Option<&str>,
) -> Result<JsonObject<'a>, Box<Refused>> {
    if data.len() > MAX_BODY {
        return Err(oversized(data.len() as u64));
    }
    let body = read_body(data).map_err(|error| {
        Box::new(Refused {
            envelope: Envelope::default(),
            error,
        })
    })?;
    let json_type = content_type.is_some_and(|t| {
        t.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .eq_ignore_ascii_case("application/json")
    });
    if !json_type {
        let t = content_type.unwrap_or("none");
        return Err(Box::new(Refused {
            envelope: Envelope::of_json(&body),
            error: invalid(format!("content type {t} is not application/json")),
        }));
    }
    Ok(body)
}

/// Handles one AMQP message ([`read_request`], then [`handle_read`]).
pub async fn handle_message<S, R>(
    data: &[u8],
    content_type: Option<&str>,
    store: &S,
    registrar: &R,
    identity: &Identity,
) -> Answered
where
    S: DocumentStore + Sync,
    R: Registrar + Sync,
{
    match read_request(data, content_type) {
        Ok(body) => {
            let envelope = Envelope::of_json(&body);
            handle_read(
                &body,
                envelope,
                store,
                registrar,
                identity,
                &Limits::default(),
            )
            .await
        }
        Err(refused) => (*refused).handled(identity),
    }
}
