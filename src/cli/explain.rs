//! `kz-endpoint explain`: why each endpoint of one offline request rang or did not.

use std::io::Write;
use std::process::ExitCode;

use kz_endpoint::registrar::{RegKey, Registration};
use kz_endpoint::resolver::Resolution;

use super::OfflineArgs;

/// Explain one request offline: why each endpoint rang or did not.
///
/// The same inputs as `build`. Prints one line per endpoint considered (device, user,
/// group member) with the facts that decided (enabled, DND, registered / unregistered /
/// unknown, forward active or not and why, substitute, failover source) and the rule that
/// produced or withheld each leg, then a `result:` line and a `registrations:` line
/// naming every USERNAME@REALM the build looked up (what --registered takes). The live
/// worker adds the same lines as an `Explain` list to the reply of a request carrying
/// `"Explain": true`.
///
/// Exit status: 0; 2 when the input is not a JSON object or the fixture folder does not
/// exist.
#[derive(Debug, clap::Args)]
pub(super) struct Args {
    #[command(flatten)]
    input: OfflineArgs,
}

pub(super) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let handled = match super::build::answer(&args.input, true)? {
        Ok(handled) => handled,
        Err(code) => return Ok(code),
    };
    let mut out = std::io::stdout().lock();
    let reply = handled.reply.json();
    let lines = reply.get("Explain").and_then(|v| v.as_array());
    for line in lines.into_iter().flatten() {
        writeln!(out, "{}", line.as_str().unwrap_or_default())?;
    }
    if let Err(e) = &handled.result
        && handled.resolution.is_none()
    {
        writeln!(out, "result: {} ({})", e.code, e.message)?;
    }
    if let Some(r) = &handled.resolution {
        let given = &args.input.registrations;
        writeln!(
            out,
            "{}",
            registrations_line(r, &given.registered, given.registration_unknown)
        )?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// The offline explanation's last line: every registration the build looked up, and the
/// state it was given, so that the engineer knows what `--registered` takes.
fn registrations_line(r: &Resolution, registered: &[RegKey], unknown: bool) -> String {
    let others = if unknown {
        "unknown (--registration-unknown)"
    } else {
        "unregistered"
    };
    if r.inputs.registrations.is_empty() {
        return "registrations: none looked up".into();
    }
    let mut keys: Vec<_> = r.inputs.registrations.iter().collect();
    keys.sort_by_key(|(k, _)| k.to_string());
    let listed = keys
        .iter()
        .map(|(k, state)| {
            let why = match state {
                Registration::Registered => "registered (--registered)",
                _ if registered.contains(k) => "registered (--registered)",
                Registration::Unregistered => "unregistered (not named with --registered)",
                Registration::Unknown => "unknown (--registration-unknown)",
            };
            format!("{k} {why}")
        })
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "registrations: {listed}; every device not named with --registered USERNAME@REALM is {others}"
    )
}
