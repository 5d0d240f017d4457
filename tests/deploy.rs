//! The container files, checked without a Docker engine: the compose wiring, the Dockerfile's
//! stages, and the CouchDB setup step run against the test CouchDB-API server.

mod live;
use live::*;

use std::path::Path;

use kz_endpoint::build_api::Identity;
use kz_endpoint::handler::handle;
use kz_endpoint::registrar::GivenRegistrations;
use serde_json::Value;
use serde_yaml::Value as Yaml;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn compose() -> Yaml {
    serde_yaml::from_str(
        &std::fs::read_to_string(root().join("deploy/docker-compose.yml")).unwrap(),
    )
    .unwrap()
}

fn env_of<'a>(service: &'a Yaml, key: &str) -> &'a str {
    service["environment"][key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} is not set"))
}

#[test]
fn compose_wires_the_worker_to_rabbitmq_and_couchdb() {
    let c = compose();
    let s = &c["services"];
    assert!(
        s["rabbitmq"]["image"]
            .as_str()
            .unwrap()
            .contains("management")
    );
    assert!(
        s["couchdb"]["image"]
            .as_str()
            .unwrap()
            .starts_with("couchdb:3")
    );
    let kz = &s["kz-endpoint"];
    assert_eq!(
        kz["build"]["dockerfile"].as_str(),
        Some("deploy/Dockerfile")
    );
    assert_eq!(kz["build"]["context"].as_str(), Some(".."));
    assert!(env_of(kz, "KZ_AMQP_URL").contains("@rabbitmq:5672/"));
    assert!(env_of(kz, "KZ_COUCH_URL").contains("@couchdb:5984"));
    assert_eq!(env_of(kz, "KZ_HTTP_LISTEN"), "0.0.0.0:9090");
    assert_eq!(
        kz["depends_on"]["rabbitmq"]["condition"].as_str(),
        Some("service_healthy")
    );
    assert_eq!(
        kz["depends_on"]["couchdb-setup"]["condition"].as_str(),
        Some("service_completed_successfully")
    );
    // The RabbitMQ user and password the worker uses are the ones the broker is created with.
    let amqp = env_of(kz, "KZ_AMQP_URL");
    assert!(amqp.starts_with(&format!(
        "amqp://{}:",
        env_of(&s["rabbitmq"], "RABBITMQ_DEFAULT_USER")
    )));
    // The setup step reaches CouchDB with the same credentials and sees the fixtures.
    let setup = &s["couchdb-setup"];
    assert_eq!(env_of(setup, "COUCH_URL"), env_of(kz, "KZ_COUCH_URL"));
    let volumes: Vec<&str> = setup["volumes"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for v in &volumes {
        let host = v.split(':').next().unwrap();
        assert!(
            root().join("deploy").join(host).exists(),
            "{host} (from {v}) exists"
        );
    }
}

#[test]
fn dockerfile_builds_in_two_stages_and_runs_unprivileged() {
    let d = std::fs::read_to_string(root().join("deploy/Dockerfile")).unwrap();
    let from: Vec<&str> = d.lines().filter(|l| l.starts_with("FROM ")).collect();
    assert_eq!(from.len(), 2, "a build stage and a runtime stage");
    assert!(d.contains("cargo build --release --locked"));
    assert!(d.contains("USER kz-endpoint"));
    assert!(d.contains("ENTRYPOINT [\"kz-endpoint\"]") && d.contains("CMD [\"serve\"]"));
    assert!(d.contains("HEALTHCHECK") && d.contains("\"healthcheck\""));
    // What the runtime stage copies out of the build exists in the repository.
    assert!(root().join("fixtures/db").is_dir());
    // The build command of the Dockerfile is the one `make deploy-check` runs.
    let make = std::fs::read_to_string(root().join("Makefile")).unwrap();
    assert!(
        make.contains("cargo build --release --locked --bin kz-endpoint")
            || make.contains("$(CARGO) build --release --locked --bin kz-endpoint")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn couchdb_setup_loads_the_example_account() {
    let script = root().join("deploy/couchdb-setup.sh");
    let status = std::process::Command::new("sh")
        .arg("-n")
        .arg(&script)
        .status()
        .unwrap();
    assert!(status.success(), "the setup script parses");
    // Run it twice: it must be idempotent.
    for _ in 0..2 {
        let out = std::process::Command::new("sh")
            .arg(&script)
            .env("COUCH_URL", couch_url())
            .env("FIXTURES", root().join("fixtures"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // What it loaded builds as the fixture folder does.
    let store = couch_store(None);
    let registrar = GivenRegistrations::new(
        [kz_endpoint::registrar::RegKey::new(
            "user_1002",
            "acme.sip.example.com",
        )],
        false,
    );
    let req: Value = serde_json::from_str(include_str!(
        "../fixtures/requests/06-group-sales-team.json"
    ))
    .unwrap();
    let handled = handle(
        req.as_object().unwrap(),
        &store,
        &registrar,
        &Identity::new("t@h"),
    )
    .await;
    let routes: Vec<String> = handled
        .result
        .expect("legs")
        .iter()
        .map(|l| {
            l.get("To-Username")
                .or(l.get("Route"))
                .and_then(Value::as_str)
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(routes, ["user_1002", "+14155550199", "2000"]);
    // Clean up what the script created.
    let client = couch_rs::Client::new_with_timeout(&couch_url(), None, None, Some(5)).unwrap();
    for db in std::fs::read_dir(root().join("fixtures/db")).unwrap() {
        let name = db.unwrap().file_name().to_string_lossy().into_owned();
        let _ = client
            .req(couch_rs::http::Method::DELETE, &format!("/{name}"), None)
            .send()
            .await;
    }
}
