//! Conformance with Kazoo's own builder: `kazoo-reference/v4-builds/` holds the
//! replies of `kz_endpoint_v4` (Kazoo master, OTP 25) for every device and user of Kazoo's
//! fixture documents, each asked as an internal and as an offnet call. Each request is built
//! here through the real request handler over the same fixture folder, every device's
//! registration unknown (Kazoo's builder does not look registrations up, and an unknown state
//! is where kz-endpoint's legs are closest to Kazoo's: the SIP leg with its nested `Failover`).
//!
//! Legs are matched by who they ring (authorizing id, and `Route` or SIP user), then compared
//! field by field. Every difference must be fixed or explained by a row of
//! `docs/compatibility.md`: [`LISTED`] ties each known difference to the row's topic, and the
//! test fails on a difference no entry explains, on an entry that explains nothing (so the
//! list cannot rot), and on a topic that is not in `compatibility.md`.
//!
//! Kazoo's random and clock values (inside `Endpoint-Actions`: `Media-Name`,
//! `Media-Recording-ID`, `Msg-ID`, the `Recording-Variables` `Name` and `ID`, and the command's
//! `Node`, `App-Name`, `App-Version`) differ on every Kazoo run and are not compared; the
//! month inside `Media-Recording-ID` is compared.
//!
//! The reference folder is not part of the project: it is found by
//! [`common::kazoo_reference`] (beside the checkout, or `KZ_KAZOO_REFERENCE`), and the test
//! fails when it is absent (as `tests/conformance.rs` does), rather than pass having checked
//! nothing.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use kz_endpoint::build_api::Identity;
use kz_endpoint::fixturedb::FixtureDb;
use kz_endpoint::handler::handle;
use kz_endpoint::registrar::GivenRegistrations;
use serde_json::{Map, Value};

/// A known difference: requests whose file name starts with `request`, legs whose key contains
/// `leg`, fields whose path starts with `path` (`""`: the whole leg is only on one side).
struct Listed {
    request: &'static str,
    leg: &'static str,
    path: &'static str,
    /// The first column of the `docs/compatibility.md` row that lists it.
    topic: &'static str,
}

const fn listed(
    request: &'static str,
    leg: &'static str,
    path: &'static str,
    topic: &'static str,
) -> Listed {
    Listed {
        request,
        leg,
        path,
        topic,
    }
}

const OWNER_FORWARD: &str = "Owner's `call_forward` / `call_failover`";
const NO_CREDENTIALS: &str =
    "Device with no SIP credentials (no `sip.username`, no `sip.ip`, no routed `sip.route`)";
const IS_FAILOVER: &str = "`Is-Failover` CCV";
const USER_FORWARD: &str = "User forward";
const RECORDING_RANDOM: &str = "Endpoint recording: random values";

/// Every difference between Kazoo's replies and kz-endpoint's on the reference requests.
const LISTED: &[Listed] = &[
    // Accounts 1 to 4 record their devices: the requests carry no `Timestamp`, so the month
    // of `Media-Recording-ID` is 197001 here and Kazoo's clock's month there.
    listed(
        "0000",
        "",
        "Endpoint-Actions/Execute-On-Answer/Record-Endpoint/Media-Recording-ID",
        RECORDING_RANDOM,
    ),
    // Account 10722: the owner (7145b996…) forwards to +18887776666 as a failover; Kazoo
    // merges it into each of the owner's devices as a nested `Failover`.
    listed("10722-14b279", "", "Failover", OWNER_FORWARD),
    listed("10722-239d07", "", "Failover", OWNER_FORWARD),
    listed("10722-2fee5a", "", "Failover", OWNER_FORWARD),
    listed("10722-e192d6", "", "Failover", OWNER_FORWARD),
    // Account 44944, device 5: no `sip` at all, a forward without substitute. Kazoo adds a SIP
    // leg that has nobody to call, beside the forward leg both start.
    listed(
        "44944-device00000000000000000000000005",
        "device00000000000000000000000005 sip:",
        "",
        NO_CREDENTIALS,
    ),
    listed(
        "44944-user0000000000000000000000000004",
        "device00000000000000000000000005 sip:",
        "",
        NO_CREDENTIALS,
    ),
    // Device 6's owner, user 5, forwards (+13334445555, failover): Kazoo merges the user's
    // forward into the device, as a forward leg and as the SIP leg's nested `Failover`.
    listed(
        "44944-device00000000000000000000000006",
        "sip:unregistered",
        "Failover",
        OWNER_FORWARD,
    ),
    listed(
        "44944-device00000000000000000000000006",
        "device00000000000000000000000006 loopback:",
        "",
        OWNER_FORWARD,
    ),
    // Dialling user 5: kz-endpoint starts the user's own forward leg (authorized as the user)
    // where Kazoo starts the copy merged into device 6; the nested failover built from the
    // user's target says `Is-Failover`.
    listed(
        "44944-user0000000000000000000000000005",
        "device00000000000000000000000006 loopback:",
        "",
        USER_FORWARD,
    ),
    listed(
        "44944-user0000000000000000000000000005",
        "user0000000000000000000000000005 loopback:",
        "",
        USER_FORWARD,
    ),
    listed(
        "44944-user0000000000000000000000000005",
        "sip:unregistered",
        "Failover/Custom-Channel-Vars/Is-Failover",
        IS_FAILOVER,
    ),
];

/// Paths inside `Endpoint-Actions` that Kazoo draws at random or from its node.
fn is_random(path: &str) -> bool {
    if !path.contains("Endpoint-Actions/") {
        return false;
    }
    let last = path.rsplit('/').next().unwrap_or("");
    matches!(
        last,
        "Media-Name" | "Msg-ID" | "Node" | "App-Name" | "App-Version"
    ) || path.ends_with("Recording-Variables/Name")
        || path.ends_with("Recording-Variables/ID")
}

fn flatten(v: &Value, path: String, out: &mut BTreeMap<String, Value>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}/{k}")
                };
                flatten(x, p, out);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                flatten(x, format!("{path}/{i}"), out);
            }
        }
        _ => {
            if !is_random(&path) {
                // The month of Kazoo's recording id is compared, its random part is not.
                let leaf = match (path.ends_with("Media-Recording-ID"), v.as_str()) {
                    (true, Some(s)) => Value::String(s.split('-').next().unwrap_or("").into()),
                    _ => v.clone(),
                };
                out.insert(path, leaf);
            }
        }
    }
}

/// Who a leg rings: `<authorizing id> loopback:<route>` or `<authorizing id> sip:<user>`.
fn leg_key(leg: &Map<String, Value>) -> String {
    let s = |k: &str| leg.get(k).and_then(Value::as_str).unwrap_or("");
    let auth = leg
        .get("Custom-Channel-Vars")
        .and_then(|c| c.get("Authorizing-ID"))
        .and_then(Value::as_str)
        .unwrap_or("-");
    if s("Invite-Format") == "loopback" {
        format!("{auth} loopback:{}", s("Route"))
    } else {
        let user = [s("To-Username"), s("To-User"), s("To-IP"), s("Route")]
            .into_iter()
            .find(|v| !v.is_empty())
            .unwrap_or("");
        format!("{auth} sip:{user}")
    }
}

/// One difference: the request, the leg's key, the field path (`""` for a leg on one side
/// only) and a description.
struct Difference {
    request: String,
    leg: String,
    path: String,
    text: String,
}

fn compare(request: &str, kazoo: &[Value], ours: &[Map<String, Value>]) -> Vec<Difference> {
    let mut out = Vec::new();
    let mut used = vec![false; ours.len()];
    for k in kazoo {
        let k = k.as_object().expect("a Kazoo leg is an object");
        let key = leg_key(k);
        let found = ours
            .iter()
            .enumerate()
            .find(|(i, o)| !used[*i] && leg_key(o) == key);
        let Some((i, o)) = found else {
            out.push(Difference {
                request: request.into(),
                leg: key.clone(),
                path: String::new(),
                text: "a leg only Kazoo starts".into(),
            });
            continue;
        };
        used[i] = true;
        let (mut a, mut b) = (BTreeMap::new(), BTreeMap::new());
        flatten(&Value::Object(k.clone()), String::new(), &mut a);
        flatten(&Value::Object(o.clone()), String::new(), &mut b);
        let paths: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
        for p in paths {
            let (x, y) = (a.get(p), b.get(p));
            if x != y {
                let show = |v: Option<&Value>| v.map_or("(none)".to_owned(), Value::to_string);
                out.push(Difference {
                    request: request.into(),
                    leg: key.clone(),
                    path: p.clone(),
                    text: format!("Kazoo {} kz-endpoint {}", show(x), show(y)),
                });
            }
        }
    }
    for (o, _) in ours.iter().zip(&used).filter(|(_, u)| !**u) {
        out.push(Difference {
            request: request.into(),
            leg: leg_key(o),
            path: String::new(),
            text: "a leg only kz-endpoint starts".into(),
        });
    }
    out
}

fn explains(l: &Listed, d: &Difference) -> bool {
    d.request.starts_with(l.request)
        && d.leg.contains(l.leg)
        && if l.path.is_empty() {
            d.path.is_empty()
        } else {
            d.path == l.path || d.path.starts_with(&format!("{}/", l.path))
        }
}

fn reference() -> PathBuf {
    common::kazoo_reference()
}

#[test]
fn kazoo_v4_replies_match_except_listed_differences() {
    let root = reference();
    let builds = root.join("v4-builds");
    let compat = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/compatibility.md"),
    )
    .expect("docs/compatibility.md");
    for l in LISTED {
        assert!(
            compat.contains(&format!("| {} |", l.topic)),
            "the listed topic {:?} is not a row of docs/compatibility.md",
            l.topic
        );
    }
    let replies: Map<String, Value> = serde_json::from_slice(
        &std::fs::read(builds.join("kazoo-v4-replies.json")).expect("kazoo-v4-replies.json"),
    )
    .expect("the replies are a JSON object");
    let store = FixtureDb::new(root.join("fixturedb"));
    let cached = kz_endpoint::cache::CachedStore {
        store: FixtureDb::new(root.join("fixturedb")),
        cache: std::sync::Arc::new(kz_endpoint::cache::DocCache::new(
            10_000,
            std::time::Duration::from_secs(3600),
        )),
    };
    let registrar = GivenRegistrations::new([], true);
    let identity = Identity::new("conformance@test");
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();

    let mut names: Vec<String> = std::fs::read_dir(builds.join("requests"))
        .expect("the requests folder")
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(str::to_owned))
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();

    let mut differences = Vec::new();
    let mut equal = 0;
    for name in &names {
        let text = std::fs::read(builds.join("requests").join(name)).unwrap();
        let req: Map<String, Value> = serde_json::from_slice(&text).expect("a request object");
        let kazoo = replies
            .get(name)
            .unwrap_or_else(|| panic!("no Kazoo reply for {name}"));
        let handled = rt.block_on(handle(&req, &store, &registrar, &identity));
        // Kazoo's own documents through the worker's cache (slimmed, compressed), cold and
        // warm: the same reply, byte for byte.
        for run in ["cold", "warm"] {
            let through = rt.block_on(handle(&req, &cached, &registrar, &identity));
            assert_eq!(
                through.reply.to_string(),
                handled.reply.to_string(),
                "{name}: the {run} cache changed the reply"
            );
        }
        let found = match (kazoo.get("Endpoints"), &handled.result) {
            (Some(Value::Array(k)), Ok(ours)) => {
                let ours: Vec<_> = ours.iter().map(kz_endpoint::leg::Leg::to_object).collect();
                compare(name, k, &ours)
            }
            (k, ours) => vec![Difference {
                request: name.clone(),
                leg: String::new(),
                path: "reply".into(),
                text: format!(
                    "Kazoo {} kz-endpoint {}",
                    k.map_or_else(|| kazoo["Error"].to_string(), Value::to_string),
                    match ours {
                        Ok(legs) => format!("{} leg(s)", legs.len()),
                        Err(e) => format!("{}: {}", e.code, e.message),
                    }
                ),
            }],
        };
        if found.is_empty() {
            equal += 1;
        }
        differences.extend(found);
    }

    let mut used = vec![0usize; LISTED.len()];
    let mut unexplained = Vec::new();
    for d in &differences {
        match LISTED.iter().position(|l| explains(l, d)) {
            Some(i) => used[i] += 1,
            None => unexplained.push(format!(
                "{} [{}] {}: {}",
                d.request,
                d.leg,
                if d.path.is_empty() { "(leg)" } else { &d.path },
                d.text
            )),
        }
    }
    let stale: Vec<String> = LISTED
        .iter()
        .zip(&used)
        .filter(|(_, n)| **n == 0)
        .map(|(l, _)| format!("{} [{}] {} ({})", l.request, l.leg, l.path, l.topic))
        .collect();
    let mut by_topic = BTreeMap::<&str, usize>::new();
    for (l, n) in LISTED.iter().zip(&used) {
        *by_topic.entry(l.topic).or_default() += n;
    }
    eprintln!(
        "kazoo v4: {} request(s), {equal} identical, {} listed difference(s) {by_topic:?}, {} unlisted",
        names.len(),
        differences.len() - unexplained.len(),
        unexplained.len()
    );
    assert_eq!(names.len(), replies.len(), "a reply without its request");
    assert!(
        unexplained.is_empty(),
        "differences from Kazoo's builder that docs/compatibility.md does not list:\n{}",
        unexplained.join("\n")
    );
    assert!(
        stale.is_empty(),
        "listed differences that no longer occur (remove them):\n{}",
        stale.join("\n")
    );
}
