//! The load tool's command line.

use std::process::Command;

#[test]
fn help_never_shows_a_credential_from_the_environment() {
    let out = Command::new(env!("CARGO_BIN_EXE_kz-endpoint-load"))
        .arg("--help")
        .env("KZ_AMQP_URL", "amqp://u:topsecret@h/")
        .env("KZ_COUCH_URL", "http://admin:topsecret@couch:5984")
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(
        help.contains("KZ_COUCH_URL") && !help.contains("topsecret"),
        "{help}"
    );
}
