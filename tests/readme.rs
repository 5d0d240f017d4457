//! The README's commands work verbatim on a fresh clone: every `cargo run -q -- …` line of
//! its shell blocks that needs no server is run (with this build's binary) and ends with the
//! exit status the README gives; the ones that need servers at least name real flags.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_kz-endpoint");

/// The commands of the README's `sh` blocks, continuation lines joined, comments dropped.
fn commands() -> Vec<String> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let mut out = Vec::new();
    let mut in_sh = false;
    let mut pending = String::new();
    for line in readme.lines() {
        let t = line.trim();
        if t.starts_with("```") {
            in_sh = t == "```sh";
            continue;
        }
        if !in_sh {
            continue;
        }
        let t = t.split(" #").next().unwrap().trim_end();
        match t.strip_suffix('\\') {
            Some(part) => pending.push_str(part),
            None => {
                pending.push_str(t);
                out.push(pending.split_whitespace().collect::<Vec<_>>().join(" "));
                pending.clear();
            }
        }
    }
    out
}

#[test]
fn the_readme_commands_run_as_written() {
    let cmds = commands();
    let mut ran = 0;
    for cmd in &cmds {
        let Some(rest) = cmd.strip_prefix("cargo run -q -- ") else {
            continue;
        };
        let sub = rest.split_whitespace().next().unwrap();
        let expected = match sub {
            "build" | "explain" | "replay" => 0,
            // The bundled account has a user who rings nothing (the README says so).
            "check" => 1,
            "serve" | "request" => {
                // Needs the servers: the flags must parse (checked through --help).
                let out = Command::new(BIN).args([sub, "--help"]).output().unwrap();
                let help = String::from_utf8(out.stdout).unwrap();
                for flag in rest.split_whitespace().filter(|w| w.starts_with("--")) {
                    assert!(help.contains(flag), "`{cmd}`: {sub} has no flag {flag}");
                }
                continue;
            }
            other => panic!("the README runs an unknown subcommand {other}: {cmd}"),
        };
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("\"{BIN}\" {rest}"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env_remove("KZ_FIXTUREDB")
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(expected),
            "`{cmd}`: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.stdout.is_empty(), "`{cmd}` printed nothing");
        ran += 1;
    }
    assert!(ran >= 4, "the README's offline commands: {cmds:?}");
    // A bare `kz-endpoint` command is not on PATH after `make run`: only placeholders
    // (a synopsis with DIR, a cluster's URLs) may be written that way.
    for cmd in &cmds {
        if cmd.starts_with("kz-endpoint ") {
            assert!(
                cmd.contains("DIR") || cmd.contains("_HOST"),
                "a bare command that would not run as written: {cmd}"
            );
        }
    }
}
