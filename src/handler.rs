//! The request handler every entry point shares: a message in, the reply body out.
//!
//! The size limit, JSON parsing, the content-type check, request validation, resolution, the
//! engine and the reply envelope are one code path, whether the message came from RabbitMQ,
//! the CLI or a replayed capture.

use serde_json::Value;

use crate::build_api::{
    BuildError, BuildResult, Envelope, ErrorCode, Identity, parse_request, reply_body,
};
use crate::documents::DocumentStore;
use crate::kz_json::Object;
use crate::registrar::Registrar;
use crate::resolver::{Resolution, resolve};

/// Requests larger than this are refused unread.
pub const MAX_BODY: usize = 1024 * 1024;

/// What handling one request produced.
#[derive(Debug, Clone)]
pub struct Handled {
    /// The request's reply-address fields (present even for a bad request).
    pub envelope: Envelope,
    /// The outcome.
    pub result: BuildResult,
    /// The reply body to publish.
    pub reply: Value,
    /// The resolution, when the request was valid enough to build.
    pub resolution: Option<Resolution>,
}

fn invalid(message: impl Into<String>) -> BuildError {
    BuildError::new(ErrorCode::InvalidRequest, message)
}

/// Parses a body: it must be one JSON object.
pub fn parse_body(bytes: &[u8]) -> Result<Object, BuildError> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(o)) => Ok(o),
        Ok(_) => Err(invalid("the body must be a JSON object")),
        Err(e) => Err(invalid(format!("the body is not JSON: {e}"))),
    }
}

/// Handles one `build_req` body.
pub async fn handle<S, R>(body: &Object, store: &S, registrar: &R, identity: &Identity) -> Handled
where
    S: DocumentStore + Sync,
    R: Registrar + Sync,
{
    let envelope = Envelope::of(body);
    let (result, resolution) = match parse_request(body) {
        Ok(req) => {
            let r = resolve(&req, store, registrar).await;
            (r.result.clone(), Some(r))
        }
        Err(e) => (Err(e), None),
    };
    let explain = resolution
        .as_ref()
        .map(|r| r.explain.as_slice())
        .unwrap_or_default();
    let reply = reply_body(identity, &envelope, &result, explain);
    Handled {
        envelope,
        result,
        reply,
        resolution,
    }
}

/// Handles one AMQP message: its body bytes and its `content_type` property. A body over
/// [`MAX_BODY`] is refused unread; a body that is not a JSON object, or a content type other
/// than `application/json`, is an `invalid_request` (the reply address is still read from a
/// JSON body when there is one).
pub async fn handle_message<S, R>(
    data: &[u8],
    content_type: Option<&str>,
    store: &S,
    registrar: &R,
    identity: &Identity,
) -> Handled
where
    S: DocumentStore + Sync,
    R: Registrar + Sync,
{
    let (body, mut refused) = if data.len() > MAX_BODY {
        let size = data.len();
        let e = invalid(format!(
            "the body is {size} bytes, over the {MAX_BODY}-byte limit"
        ));
        (None, Some(e))
    } else {
        match parse_body(data) {
            Ok(b) => (Some(b), None),
            Err(e) => (None, Some(e)),
        }
    };
    let json_type = content_type.is_some_and(|t| {
        t.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .eq_ignore_ascii_case("application/json")
    });
    if refused.is_none() && !json_type {
        let t = content_type.unwrap_or("none");
        refused = Some(invalid(format!("content type {t} is not application/json")));
    }
    match (body, refused) {
        (Some(body), None) => handle(&body, store, registrar, identity).await,
        (body, refused) => {
            let envelope = body.as_ref().map(Envelope::of).unwrap_or_default();
            let result = Err(refused.unwrap_or_else(|| invalid("unreadable request")));
            let reply = reply_body(identity, &envelope, &result, &[]);
            Handled {
                envelope,
                result,
                reply,
                resolution: None,
            }
        }
    }
}
