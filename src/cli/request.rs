//! `kz-endpoint request`: one build request through the broker to running workers.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use kz_endpoint::client::Client;

use super::{AmqpArgs, read_request, runtime};

/// How long `request` waits for the reply unless told otherwise, in milliseconds.
const DEFAULT_TIMEOUT_MS: u64 = 3000;

/// Send one build request to running workers and print the reply.
///
/// Reads a `build_req` JSON object on stdin, publishes it on the kapps exchange with
/// routing key endpoint.build.<Account-ID>, exactly as Kazoo's callflow does, with this
/// command's own reply queue as Server-ID, and prints the reply. The publish is
/// mandatory: when no queue is bound to that routing key (no worker running), the broker
/// returns it and the command says so at once.
///
/// Exit status: 0 with a reply; 1 when no worker is bound, no reply comes in time, or the
/// broker is not reachable; 2 when the input is not a JSON object.
#[derive(Debug, clap::Args)]
pub(super) struct Args {
    #[command(flatten)]
    amqp: AmqpArgs,
    /// How long to wait for the reply, in milliseconds.
    #[arg(long, env = "KZ_REQUEST_TIMEOUT_MS", hide_env_values = true,
        default_value_t = DEFAULT_TIMEOUT_MS)]
    timeout_ms: u64,
}

pub(super) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let body = match read_request()? {
        Ok(body) => body,
        Err(code) => return Ok(code),
    };
    let amqp_url = &args.amqp.amqp_url;
    let reply = runtime()?.block_on(async {
        let client = Client::connect_checked(amqp_url).await?;
        client
            .request(
                serde_json::Value::Object(body),
                Duration::from_millis(args.timeout_ms),
            )
            .await
    });
    match reply {
        Ok(r) => {
            let mut out = std::io::stdout().lock();
            writeln!(out, "{r}")?;
            out.flush()?;
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!(
                "kz-endpoint: broker {}: {}",
                kz_endpoint::report::url_host(amqp_url),
                kz_endpoint::report::error_chain(&e)
            );
            Ok(ExitCode::from(1))
        }
    }
}
