//! `kz-endpoint replay`: captured requests through the request handler, replies compared.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use kz_endpoint::build_api::Identity;
use kz_endpoint::capture;

use super::{default_node, runtime, usage};

/// Replay captured requests and compare the replies with the captured ones.
///
/// Each PATH is a capture file or a folder of them (searched recursively). Every capture
/// runs through the same request handler the live worker uses, with its documents and
/// registrar answers served in place of CouchDB and RabbitMQ. Prints one line per capture
/// (PASS or FAIL, with a readable diff of the legs) and a summary `N passed, M failed`.
/// Node, App-Name, App-Version, Error-Message and Explain are not compared. The format is
/// in docs/fixtures.md.
///
/// Exit status: 0 when every capture matches; 1 when one does not, or cannot be read
/// (its FAIL line says why: not a capture, its fixture folder missing, …).
#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// Capture files or folders.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Rewrite each capture's reply with the new one (after a deliberate change).
    #[arg(long)]
    update: bool,
}

pub(super) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut files = Vec::new();
    for p in &args.paths {
        files.extend(capture::files(p).map_err(usage)?);
    }
    let identity = Identity::new(default_node());
    let rt = runtime()?;
    let (mut passed, mut failed) = (0, 0);
    let mut out = std::io::stdout().lock();
    for file in &files {
        let r = rt.block_on(kz_endpoint::replay::replay_file(file, &identity));
        if r.differences.is_empty() {
            passed += 1;
            writeln!(out, "PASS {}", file.display())?;
            continue;
        }
        if args.update
            && let Some((mut c, reply)) = r.capture
        {
            c.reply = reply;
            capture::save(file, &c)?;
            passed += 1;
            writeln!(out, "UPDATED {}", file.display())?;
            continue;
        }
        failed += 1;
        writeln!(out, "FAIL {}", file.display())?;
        for d in &r.differences {
            writeln!(out, "    {d}")?;
        }
    }
    writeln!(out, "{passed} passed, {failed} failed")?;
    out.flush()?;
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
