//! The `kz-endpoint` command.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use kz_endpoint::build_api::Identity;
use kz_endpoint::fixturedb::FixtureDb;
use kz_endpoint::handler::{handle, parse_body};
use kz_endpoint::registrar::{GivenRegistrations, RegKey};

/// Kazoo endpoint builder: decides which call legs to start when a device, user or group is
/// dialled, and answers in Kazoo's wire format.
#[derive(Debug, Parser)]
#[command(name = "kz-endpoint", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
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
    /// `not_found`. Input that is not a JSON object: a one-line message on stderr, exit 2.
    #[command(verbatim_doc_comment)]
    Build {
        /// The fixture database folder.
        #[arg(long, value_name = "DIR", env = "KZ_FIXTUREDB")]
        fixturedb: PathBuf,
        /// A registered device, as SIP USERNAME@REALM (repeatable).
        #[arg(long = "registered", value_name = "USERNAME@REALM", value_parser = parse_reg_key)]
        registered: Vec<RegKey>,
        /// Devices not named with --registered are in an unknown state (no registrar
        /// answered) instead of unregistered.
        #[arg(long)]
        registration_unknown: bool,
        /// The `Node` to put on replies.
        #[arg(long, env = "KZ_NODE", default_value_t = default_node())]
        node: String,
    },
}

fn parse_reg_key(s: &str) -> Result<RegKey, String> {
    RegKey::parse(s).ok_or_else(|| format!("`{s}` is not USERNAME@REALM"))
}

fn default_node() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    format!("kz-endpoint@{host}")
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("kz-endpoint: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Build {
            fixturedb,
            registered,
            registration_unknown,
            node,
        } => {
            let mut input = Vec::new();
            std::io::stdin()
                .read_to_end(&mut input)
                .context("reading stdin")?;
            let body = match parse_body(&input) {
                Ok(body) => body,
                Err(e) => {
                    eprintln!("kz-endpoint: {}", e.message);
                    return Ok(ExitCode::from(2));
                }
            };
            let store = FixtureDb::new(fixturedb);
            let registrar = GivenRegistrations::new(registered, registration_unknown);
            let identity = Identity::new(node);
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .context("starting the runtime")?;
            let handled = rt.block_on(handle(&body, &store, &registrar, &identity));
            let mut out = std::io::stdout().lock();
            serde_json::to_writer(&mut out, &handled.reply)?;
            writeln!(out)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
