//! `kz-endpoint build`: one request offline, against a fixture folder.

use std::io::Write;
use std::process::ExitCode;

use kz_endpoint::build_api::{self, BuildError, Envelope, ErrorCode, Identity};
use kz_endpoint::fixturedb::FixtureDb;
use kz_endpoint::handler::{Answered, handle};
use kz_endpoint::registrar::GivenRegistrations;

use super::{OfflineArgs, read_request, runtime, usage};

/// Build one request offline.
///
/// Reads one `build_req` JSON object on stdin and prints one reply object (`build_resp`
/// with the `Endpoints` list, or `build_error` with `Error-Code` and `Error-Message`) on
/// stdout, with exit status 0. Documents come from a folder in Kazoo's fixturedb layout
/// (`DIR/<database>/docs/<id>.json`, e.g. `DIR/account%2Fab%2Fcd%2Fef…/docs/…`).
///
/// Registration state: the credentialed devices named with --registered are registered;
/// every other one is unregistered, or unknown with --registration-unknown.
///
/// A request that is JSON but invalid (missing Account-ID, an id that is not 32 lowercase
/// letters or digits, neither Endpoint-ID nor Properties.endpoints, …) gets a
/// `build_error` with Error-Code `invalid_request` naming the field; an unknown id gets
/// `not_found` (an account that is not in the folder: `not_found` naming its database).
///
/// Exit status: 0 with a reply; 2 when the input is not a JSON object or the fixture
/// folder does not exist (a one-line message on stderr).
#[derive(Debug, clap::Args)]
pub(super) struct Args {
    #[command(flatten)]
    input: OfflineArgs,
}

pub(super) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let handled = match answer(&args.input, false)? {
        Ok(handled) => handled,
        Err(code) => return Ok(code),
    };
    let mut out = std::io::stdout().lock();
    out.write_all(handled.reply.bytes())?;
    writeln!(out)?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// Answers the request on stdin from the fixture folder (`build` and `explain`, which asks
/// for the `Explain` lines); `Err(code)`: stdin holds no request object (said on stderr).
pub(super) fn answer(
    args: &OfflineArgs,
    explain: bool,
) -> anyhow::Result<Result<Answered, ExitCode>> {
    let store = FixtureDb::open(&args.fixturedb).map_err(usage)?;
    let mut body = match read_request()? {
        Ok(body) => body,
        Err(code) => return Ok(Err(code)),
    };
    if explain {
        body.insert("Explain".into(), serde_json::Value::Bool(true));
    }
    let registrar = GivenRegistrations::new(
        args.registrations.registered.clone(),
        args.registrations.registration_unknown,
    );
    let identity = Identity::new(args.node.node.clone());
    Ok(Ok(match missing_account(&store, &body) {
        Some(db) => {
            let envelope = Envelope::of(&body);
            let result = Err(BuildError::new(
                ErrorCode::NotFound,
                format!(
                    "no database {db} in the fixture folder {} (the account is not in it)",
                    store.root().display()
                ),
            ));
            let reply = build_api::reply_body(&identity, &envelope, &result, &[]);
            Answered {
                envelope,
                result,
                reply,
                resolution: None,
            }
        }
        None => runtime()?.block_on(handle(&body, &store, &registrar, &identity)),
    }))
}

/// The account database a valid request names, when the fixture folder does not hold it.
fn missing_account(store: &FixtureDb, body: &kz_endpoint::kz_json::Object) -> Option<String> {
    let req = build_api::parse_request(body).ok()?;
    let db = kz_endpoint::ids::account_db(&req.account_id);
    (!store.has_database(&db)).then_some(db)
}
