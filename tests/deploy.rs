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
    // The image's default command is the self-test; the service runs the worker.
    assert_eq!(kz["command"][0].as_str(), Some("serve"));
    assert!(env_of(kz, "KZ_AMQP_URL").contains("@rabbitmq:5672/"));
    assert!(env_of(kz, "KZ_COUCH_URL").contains("@couchdb:5984"));
    assert_eq!(env_of(kz, "KZ_HTTP_LISTEN"), "0.0.0.0:9090");
    // No fixed node name: each replica of `--scale` is its own node.
    assert!(kz["environment"]["KZ_NODE"].is_null());
    assert_eq!(
        kz["depends_on"]["rabbitmq"]["condition"].as_str(),
        Some("service_healthy")
    );
    assert_eq!(
        kz["depends_on"]["couchdb-setup"]["condition"].as_str(),
        Some("service_completed_successfully")
    );
    // Healthy means ready (consuming, CouchDB answering).
    let health: Vec<&str> = kz["healthcheck"]["test"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        health,
        [
            "CMD",
            "/usr/local/bin/kz-endpoint",
            "healthcheck",
            "--ready"
        ]
    );
    // The RabbitMQ user and password the worker uses are the ones the broker is created with.
    let amqp = env_of(kz, "KZ_AMQP_URL");
    assert!(amqp.starts_with(&format!(
        "amqp://{}:",
        env_of(&s["rabbitmq"], "RABBITMQ_DEFAULT_USER")
    )));
    // The setup step reaches CouchDB with the same credentials and sees the fixtures, with
    // the CouchDB image's curl (no other image to pull).
    let setup = &s["couchdb-setup"];
    assert_eq!(setup["image"], s["couchdb"]["image"]);
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
fn compose_publishes_little_and_on_loopback_by_default() {
    let text = std::fs::read_to_string(root().join("deploy/docker-compose.yml")).unwrap();
    let c = compose();
    // Compose v1 refuses a top-level `name:`.
    for key in c.as_mapping().unwrap().keys() {
        let key = key.as_str().unwrap();
        assert!(
            key == "services" || key.starts_with("x-"),
            "top-level key {key}: compose v1 accepts only services and x- keys here"
        );
    }
    let mut published = Vec::new();
    for (name, service) in c["services"].as_mapping().unwrap() {
        for port in service["ports"].as_sequence().into_iter().flatten() {
            let port = port.as_str().expect("ports in the short string form");
            assert!(
                port.starts_with("${PUBLISH_ADDRESS:-127.0.0.1}:"),
                "{port}: bound to PUBLISH_ADDRESS, 127.0.0.1 by default"
            );
            published.push((
                name.as_str().unwrap().to_owned(),
                port.rsplit(':').next().unwrap().to_owned(),
            ));
        }
    }
    published.sort();
    let expected = [
        ("couchdb", "5984"),
        ("kz-endpoint", "9090"),
        ("rabbitmq", "15672"),
    ]
    .map(|(s, p)| (s.to_owned(), p.to_owned()));
    assert_eq!(published, expected, "AMQP (5672) is not published");
    // The worker gets a range, so that `--scale kz-endpoint=N` can publish every replica.
    assert!(text.contains("${PUBLISH_HTTP_PORTS:-9090-9099}:9090"));
}

#[test]
fn dockerfile_builds_in_two_stages_and_runs_unprivileged() {
    let d = std::fs::read_to_string(root().join("deploy/Dockerfile")).unwrap();
    let from: Vec<&str> = d.lines().filter(|l| l.starts_with("FROM ")).collect();
    assert_eq!(from.len(), 2, "a build stage and a runtime stage");
    assert_eq!(from[1], "FROM scratch", "a static binary, nothing else");
    assert!(d.contains("cargo build --release --locked"));
    assert!(d.contains("USER kz-endpoint"));
    assert!(
        d.contains("ENTRYPOINT [\"/usr/local/bin/kz-endpoint\"]")
            && d.contains("CMD [\"replay\", \"/usr/share/kz-endpoint/fixtures/amqp\"]")
    );
    assert!(d.contains("HEALTHCHECK") && d.contains("\"healthcheck\""));
    assert!(d.contains("KZ_FIXTUREDB=/usr/share/kz-endpoint/fixtures/db"));
    // Dependencies are built from the manifest and lockfile before the sources are copied.
    let line = |needle: &str| {
        d.lines()
            .position(|l| l.starts_with(needle))
            .unwrap_or_else(|| panic!("no line starting with {needle}"))
    };
    let manifests = line("COPY Cargo.toml Cargo.lock");
    let sources = line("COPY src src");
    let first_build = d.lines().position(|l| l.contains("cargo build")).unwrap();
    assert!(manifests < first_build && first_build < sources);
    assert!(!d.contains("COPY . ."));
    // What the stages copy from the build context exists and is not excluded from it.
    let ignore = std::fs::read_to_string(root().join(".dockerignore")).unwrap();
    for l in d
        .lines()
        .filter(|l| l.starts_with("COPY ") && !l.contains("--from"))
    {
        let parts: Vec<&str> = l.split_whitespace().collect();
        for src in &parts[1..parts.len() - 1] {
            assert!(root().join(src).exists(), "{src} exists");
            assert!(
                ignore.lines().any(|i| i == format!("!{src}")),
                "{src} is let into the build context by .dockerignore"
            );
        }
    }
    // The build command of the Dockerfile is the one `make deploy-check` runs.
    let make = std::fs::read_to_string(root().join("Makefile")).unwrap();
    assert!(
        make.contains("cargo build --release --locked --bin kz-endpoint")
            || make.contains("$(CARGO) build --release --locked --bin kz-endpoint")
    );
}

#[test]
fn the_deploy_test_script_parses_and_is_wired_to_make() {
    let script = root().join("deploy/deploy-test.sh");
    let status = std::process::Command::new("bash")
        .arg("-n")
        .arg(&script)
        .status()
        .unwrap();
    assert!(status.success(), "deploy-test.sh parses");
    let make = std::fs::read_to_string(root().join("Makefile")).unwrap();
    assert!(make.contains("deploy-test:") && make.contains("deploy/deploy-test.sh"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn couchdb_setup_loads_the_example_account() {
    let client = couch_rs::Client::new_with_timeout(&couch_url(), None, None, Some(5)).unwrap();
    // The script creates `system_config` when it is missing; this test removes it again then.
    let had_system_config = client
        .req(couch_rs::http::Method::GET, "/system_config", None)
        .send()
        .await
        .unwrap()
        .status()
        .is_success();
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
            let l = l.to_object();
            l.get("To-Username")
                .or(l.get("Route"))
                .and_then(Value::as_str)
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(routes, ["user_1002", "+14155550199", "2000"]);
    // Clean up what the script created.
    let mut created: Vec<String> = std::fs::read_dir(root().join("fixtures/db"))
        .unwrap()
        .map(|db| db.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    if !had_system_config {
        created.push("system_config".into());
    }
    for name in created {
        let _ = client
            .req(couch_rs::http::Method::DELETE, &format!("/{name}"), None)
            .send()
            .await;
    }
}
