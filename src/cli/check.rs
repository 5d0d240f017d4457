//! `kz-endpoint check`: what one account's calls ring, and the settings that lose calls.

use std::io::Write;
use std::process::ExitCode;

use kz_endpoint::couchdb::CouchStore;
use kz_endpoint::fixturedb::FixtureDb;

use super::{CouchTimeoutArgs, StoreArgs, StoreChoice, runtime, usage};

/// Check an account's configuration: what a call to each device, user and group rings
/// today, and every setting that loses calls or surprises people.
///
/// Reads every document of the account (from CouchDB or a fixture folder), builds each
/// device, user and group as a call to it would (with every registration unknown, as
/// when no registrar answers), and lists per endpoint what it rings and what is wrong:
/// an invite format ecallmgr drops, SIP credentials with no realm, a forward to the
/// device's own number, a group that contains itself, a user with no devices and no
/// forward, a failover equal to the forward, features kz-endpoint does not apply.
///
/// Exit status: 0 when nothing loses calls; 1 when a finding loses calls; 2 when the
/// store or the account cannot be read.
#[derive(Debug, clap::Args)]
pub(super) struct Args {
    #[command(flatten)]
    store: StoreArgs,
    /// The account to check (its 32-character id)
    #[arg(long, value_name = "ID")]
    account: String,
    /// The report's format
    #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
    format: ReportFormat,
    #[command(flatten)]
    couch_timeout: CouchTimeoutArgs,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum ReportFormat {
    /// A table for people.
    Table,
    /// One JSON object.
    Json,
}

pub(super) fn run(args: Args) -> anyhow::Result<ExitCode> {
    if !kz_endpoint::ids::is_valid_id(&args.account) {
        return Err(usage(format!(
            "--account {:?} is not an account id (32 lowercase letters or digits)",
            args.account
        )));
    }
    let db = kz_endpoint::ids::account_db(&args.account);
    let rt = runtime()?;
    let report = match args.store.choice()? {
        StoreChoice::Couch(url) => {
            let store = CouchStore::new(url, args.couch_timeout.timeout()).map_err(usage)?;
            let docs = rt
                .block_on(store.all_docs(&db))
                .map_err(|e| usage(format!("reading {db}: {e}")))?;
            rt.block_on(kz_endpoint::check::check(&args.account, &docs, &store))
        }
        StoreChoice::Fixture(dir) => {
            let store = FixtureDb::open(dir).map_err(usage)?;
            if !store.has_database(&db) {
                return Err(usage(format!(
                    "no database {db} in the fixture folder {}",
                    dir.display()
                )));
            }
            let docs = store.all_docs(&db).map_err(usage)?;
            rt.block_on(kz_endpoint::check::check(&args.account, &docs, &store))
        }
    };
    if report.endpoints.is_empty() {
        return Err(usage(format!(
            "no device, user or group in {db}: is --account right?"
        )));
    }
    let written = (|| -> std::io::Result<()> {
        let mut out = std::io::stdout().lock();
        match args.format {
            ReportFormat::Table => write!(out, "{}", report.table())?,
            ReportFormat::Json => {
                serde_json::to_writer_pretty(&mut out, &report)?;
                writeln!(out)?;
            }
        }
        out.flush()
    })();
    // A reader that stopped early (`| head`) still gets the verdict as the exit status.
    match written {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        other => other?,
    }
    Ok(if report.loses_calls > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
