//! The dashboard and the alert rules in deploy/ use only series the worker exports, and
//! docs/operations.md shows every alert's PromQL.

use std::collections::BTreeSet;
use std::time::Duration;

use kz_endpoint::cache::{CachedStore, DocCache};
use kz_endpoint::couchdb::CouchStore;
use kz_endpoint::worker::{Store, Worker, WorkerConfig};
use serde_json::Value;

fn read(path: &str) -> String {
    std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// The metric names an expression uses.
fn names(expr: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let b = expr.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let rest = &expr[i..];
        if (rest.starts_with("kz_endpoint_") || rest.starts_with("process_"))
            && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_'))
        {
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            out.insert(rest[..end].to_owned());
            i += end;
        } else {
            i += 1;
        }
    }
    out
}

/// Every series name on the metrics page of a CouchDB-backed worker that never started.
fn exported() -> BTreeSet<String> {
    let store = Store::Couch(CachedStore {
        store: CouchStore::new("http://127.0.0.1:9", Duration::from_secs(1)).unwrap(),
        cache: std::sync::Arc::new(DocCache::new(10, Duration::from_secs(1))),
    });
    let w = Worker::new(
        WorkerConfig::new("amqp://127.0.0.1:9", "kz-endpoint@test"),
        store,
    );
    let page = kz_endpoint::ops::render(&w);
    page.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_owned)
        .collect()
}

fn check_names(what: &str, expr: &str, exported: &BTreeSet<String>) {
    for n in names(expr) {
        assert!(
            exported.contains(&n),
            "{what} uses {n}, which the worker does not export: {expr}"
        );
    }
}

#[test]
fn the_dashboard_uses_only_exported_series() {
    let exported = exported();
    let d: Value = serde_json::from_str(&read("deploy/kz-endpoint-dashboard.json")).unwrap();
    let panels = d["panels"].as_array().unwrap();
    assert!(panels.len() >= 10);
    let mut used = BTreeSet::new();
    for p in panels {
        for t in p["targets"].as_array().unwrap() {
            let expr = t["expr"].as_str().unwrap();
            check_names(&format!("panel {:?}", p["title"]), expr, &exported);
            used.extend(names(expr));
        }
    }
    for needed in [
        "kz_endpoint_requests_total",
        "kz_endpoint_build_duration_seconds_bucket",
        "kz_endpoint_couchdb_errors_total",
        "kz_endpoint_registrar_timeouts_total",
        "kz_endpoint_amqp_consuming",
        "process_cpu_seconds_total",
    ] {
        assert!(used.contains(needed), "the dashboard shows {needed}");
    }
}

#[test]
fn alert_rules_use_exported_series_and_are_documented() {
    let exported = exported();
    let rules: serde_yaml::Value =
        serde_yaml::from_str(&read("deploy/kz-endpoint-alerts.yml")).unwrap();
    let docs = read("docs/operations.md");
    let squash = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let docs = squash(&docs);
    let mut alerts = Vec::new();
    for rule in rules["groups"][0]["rules"].as_sequence().unwrap() {
        let name = rule["alert"].as_str().unwrap();
        let expr = rule["expr"].as_str().unwrap();
        check_names(name, expr, &exported);
        assert!(
            docs.contains(&squash(expr)),
            "docs/operations.md lacks the PromQL of {name}: {expr}"
        );
        assert!(
            rule["labels"]["severity"].as_str().is_some(),
            "{name} has a severity"
        );
        alerts.push(name.to_owned());
    }
    assert_eq!(
        alerts,
        [
            "KzEndpointNoConsumer",
            "KzEndpointErrorRate",
            "KzEndpointSlowBuilds",
            "KzEndpointRegistrarTimeouts",
            "KzEndpointNoRegistrar",
            "KzEndpointCouchDBErrors",
            "KzEndpointTaskFailures",
        ]
    );
    // The documented series table names every exported kz_endpoint series.
    for n in exported.iter().filter(|n| n.starts_with("kz_endpoint_")) {
        let base = n
            .trim_end_matches("_bucket")
            .trim_end_matches("_count")
            .trim_end_matches("_sum");
        assert!(
            docs.contains(&format!("`{base}")),
            "docs/operations.md does not list {base}"
        );
    }
}
