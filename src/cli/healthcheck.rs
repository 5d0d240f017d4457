//! `kz-endpoint healthcheck`: a running worker's /healthz (or /readyz), for containers.

use std::process::ExitCode;
use std::time::Duration;

use kz_endpoint::ops;

use super::{DEFAULT_HTTP_LISTEN, runtime};

/// How long the worker has to answer.
const ANSWER_WITHIN: Duration = Duration::from_secs(3);

/// Check a running worker's /healthz, for container health checks.
///
/// Exit status: 0 when the worker answers 200; 1 otherwise (the reason on stderr).
#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// The worker's operations listener.
    #[arg(long, env = "KZ_HTTP_LISTEN", hide_env_values = true,
        default_value = DEFAULT_HTTP_LISTEN)]
    http_listen: String,
    /// Check /readyz instead of /healthz.
    #[arg(long)]
    ready: bool,
}

pub(super) fn run(args: Args) -> anyhow::Result<ExitCode> {
    // A wildcard listen address is reached on the loopback.
    let addr = args
        .http_listen
        .replace("0.0.0.0", "127.0.0.1")
        .replace("[::]", "[::1]");
    let path = if args.ready { "/readyz" } else { "/healthz" };
    let rt = runtime()?;
    let result = rt
        .block_on(async { tokio::time::timeout(ANSWER_WITHIN, ops::http_get(&addr, path)).await });
    match result {
        Ok(Ok((200, _))) => Ok(ExitCode::SUCCESS),
        Ok(Ok((status, body))) => {
            eprintln!("kz-endpoint: {path} answered {status}: {}", body.trim());
            Ok(ExitCode::from(1))
        }
        Ok(Err(e)) => {
            eprintln!("kz-endpoint: {addr}{path}: {e}");
            Ok(ExitCode::from(1))
        }
        Err(_) => {
            eprintln!(
                "kz-endpoint: {addr}{path}: no answer in {} s",
                ANSWER_WITHIN.as_secs()
            );
            Ok(ExitCode::from(1))
        }
    }
}
