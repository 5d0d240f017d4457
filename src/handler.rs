//! The request handler every entry point shares: body bytes in, reply body out.
//!
//! Parsing, validation, resolution, the engine and the reply envelope are one code path,
//! whether the request came from RabbitMQ, the CLI or a replayed capture.

use serde_json::Value;

use crate::build_api::{
    BuildError, BuildResult, Envelope, ErrorCode, Identity, parse_request, reply_body,
};
use crate::documents::DocumentStore;
use crate::kz_json::Object;
use crate::registrar::Registrar;
use crate::resolver::{Resolution, resolve};

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

/// Parses a body: it must be one JSON object.
pub fn parse_body(bytes: &[u8]) -> Result<Object, BuildError> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(o)) => Ok(o),
        Ok(_) => Err(BuildError::new(
            ErrorCode::InvalidRequest,
            "the body must be a JSON object",
        )),
        Err(e) => Err(BuildError::new(
            ErrorCode::InvalidRequest,
            format!("the body is not JSON: {e}"),
        )),
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
    let reply = reply_body(identity, &envelope, &result);
    Handled {
        envelope,
        result,
        reply,
        resolution,
    }
}
