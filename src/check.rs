//! `kz-endpoint check`: an account's configuration read as an operator reads it. For every
//! device, user and group: what a call to it rings today (the real build, with every
//! registration unknown, as when no registrar answers), and each setting that loses calls or
//! surprises people.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;
use serde_json::{Value, json};

use crate::build_api::Identity;
use crate::documents::DocumentStore;
use crate::engine::attributes::{Kind, full_name};
use crate::engine::explain;
use crate::engine::legs::INVITE_FORMATS_4_3;
use crate::handler::handle;
use crate::kz_json::{is_true, ne_str, ne_value_str, path};
use crate::registrar::GivenRegistrations;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// A call to it is lost, or rings nothing.
    LosesCalls,
    /// It rings, but not as whoever set it up expects.
    Surprise,
}

/// One finding.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// How bad.
    pub severity: Severity,
    /// What, in words.
    pub message: String,
}

/// One device, user or group, checked.
#[derive(Debug, Clone, Serialize)]
pub struct Checked {
    /// `device`, `user` or `group`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The document id.
    pub id: String,
    /// Its name, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// What a call to it rings today: the legs in words, or the error code and message.
    pub rings: String,
    /// What loses calls or surprises.
    pub findings: Vec<Finding>,
}

/// The check of one account.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The account id.
    pub account: String,
    /// Every device, user and group, in that order, by id.
    pub endpoints: Vec<Checked>,
    /// Findings that lose calls.
    pub loses_calls: usize,
    /// Findings that surprise.
    pub surprises: usize,
}

fn lose(out: &mut Vec<Finding>, message: String) {
    out.push(Finding {
        severity: Severity::LosesCalls,
        message,
    });
}

fn surprise(out: &mut Vec<Finding>, message: String) {
    out.push(Finding {
        severity: Severity::Surprise,
        message,
    });
}

/// The active forward number and the failover number of a document.
fn numbers(doc: &Value) -> (Option<&str>, Option<&str>) {
    let cf = doc.get("call_forward");
    let forward = cf
        .filter(|cf| is_true(cf.get("enabled")))
        .and_then(|cf| ne_value_str(cf.get("number")));
    let failover = match doc.get("call_failover") {
        Some(f) if is_true(f.get("enabled")) => ne_value_str(f.get("number")),
        _ => cf
            .filter(|cf| is_true(cf.get("failover")))
            .and_then(|cf| ne_value_str(cf.get("number"))),
    };
    (forward, failover)
}

fn device_findings(doc: &Value, account: &Value, out: &mut Vec<Finding>) {
    let sip = |k: &str| path(doc, &["sip", k]);
    let username = ne_str(sip("username"));
    if let Some(format) = ne_str(sip("invite_format"))
        && !INVITE_FORMATS_4_3.contains(&format)
    {
        lose(
            out,
            format!(
                "sip.invite_format {format:?} is not one ecallmgr accepts ({}): its SIP leg is dropped",
                INVITE_FORMATS_4_3.join(", ")
            ),
        );
    }
    if username.is_some()
        && ne_str(sip("realm")).is_none()
        && ne_str(account.get("realm")).is_none()
        && ne_str(sip("ip")).is_none()
    {
        lose(
            out,
            "SIP credentials with no realm (neither sip.realm nor the account's realm): its registration cannot be looked up, and ecallmgr cannot route its SIP leg".into(),
        );
    }
    if let (Some(f), _) = numbers(doc) {
        let own = [
            ne_str(sip("username")),
            ne_str(sip("number")),
            ne_str(path(doc, &["caller_id", "internal", "number"])),
        ];
        if own.contains(&Some(f)) {
            lose(
                out,
                format!(
                    "call_forward.number {f} is the device's own number: the forward calls itself"
                ),
            );
        }
    }
    match doc.get("device_type").and_then(Value::as_str) {
        Some(t @ ("mobile" | "push")) => lose(
            out,
            format!("device_type {t} is not applied by kz-endpoint: the device gets no leg"),
        ),
        _ if doc.get("push").is_some() => lose(
            out,
            "push notifications (push) are not applied by kz-endpoint: the device gets no leg"
                .into(),
        ),
        _ => {}
    }
}

fn common_findings(doc: &Value, out: &mut Vec<Finding>) {
    let (forward, failover) = numbers(doc);
    if let (Some(f), Some(o)) = (forward, failover)
        && f == o
        && doc
            .get("call_failover")
            .is_some_and(|c| is_true(c.get("enabled")))
    {
        surprise(
            out,
            format!(
                "the failover number {o} is the forward number: no separate failover leg is ever added"
            ),
        );
    }
    if let Some(cf) = doc.get("call_forward")
        && is_true(cf.get("enabled"))
        && ne_value_str(cf.get("number")).is_none()
    {
        surprise(
            out,
            "call_forward is enabled without a number: nothing is forwarded".into(),
        );
    }
    for (key, what) in [(
        "do_not_disturb",
        "do not disturb is on: every call to it is refused",
    )] {
        if is_true(path(doc, &[key, "enabled"])) {
            surprise(out, what.into());
        }
    }
    if doc.get("enabled").is_some_and(|v| v == &Value::Bool(false)) {
        surprise(
            out,
            "disabled (enabled: false): calls to it ring nothing".into(),
        );
    }
}

/// The groups a group reaches through its members, for the loop check.
fn group_members(doc: &Value) -> Vec<String> {
    doc.get("endpoints")
        .and_then(Value::as_object)
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

fn reaches_itself(id: &str, groups: &HashMap<&str, &Value>) -> bool {
    let mut seen = HashSet::new();
    let mut stack: Vec<String> = groups.get(id).map(|g| group_members(g)).unwrap_or_default();
    while let Some(m) = stack.pop() {
        if m == id {
            return true;
        }
        if seen.insert(m.clone())
            && let Some(g) = groups.get(m.as_str())
        {
            stack.extend(group_members(g));
        }
    }
    false
}

/// Checks the account `account_id` whose documents are `docs` (every document of its
/// database), building each endpoint through `store`.
pub async fn check<S: DocumentStore + Sync>(account_id: &str, docs: &[Value], store: &S) -> Report {
    let by_type = |t: &str| -> Vec<&Value> {
        let mut v: Vec<&Value> = docs
            .iter()
            .filter(|d| d.get("pvt_type").and_then(Value::as_str) == Some(t))
            .filter(|d| !is_true(d.get("pvt_deleted")))
            .collect();
        v.sort_by_key(|d| {
            d.get("_id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        });
        v
    };
    let empty = Value::Null;
    let account = docs
        .iter()
        .find(|d| d.get("_id").and_then(Value::as_str) == Some(account_id))
        .unwrap_or(&empty);
    let devices = by_type("device");
    let groups: HashMap<&str, &Value> = by_type("group")
        .into_iter()
        .filter_map(|g| Some((g.get("_id")?.as_str()?, g)))
        .collect();
    let mut owned: BTreeMap<&str, usize> = BTreeMap::new();
    for d in &devices {
        for o in crate::documents::owned_view_owners(d) {
            *owned.entry(o).or_default() += 1;
        }
    }
    let registrar = GivenRegistrations::new(Vec::new(), true);
    let identity = Identity::new("kz-endpoint-check");
    let mut endpoints = Vec::new();
    for (kind, list) in [
        (Kind::Device, devices.clone()),
        (Kind::User, by_type("user")),
        (Kind::Group, by_type("group")),
    ] {
        for doc in list {
            let Some(id) = doc.get("_id").and_then(Value::as_str) else {
                continue;
            };
            let mut findings = Vec::new();
            common_findings(doc, &mut findings);
            match kind {
                Kind::Device => device_findings(doc, account, &mut findings),
                Kind::User => {
                    if owned.get(id).copied().unwrap_or(0) == 0 && numbers(doc).0.is_none() {
                        lose(
                            &mut findings,
                            "no devices and no forward: a call to this user rings nothing".into(),
                        );
                    }
                }
                Kind::Group => {
                    if reaches_itself(id, &groups) {
                        surprise(
                            &mut findings,
                            "the group contains itself (directly or through its member groups): the loop is expanded once".into(),
                        );
                    }
                    if group_members(doc).is_empty() {
                        lose(
                            &mut findings,
                            "the group has no members: it rings nothing".into(),
                        );
                    }
                }
                Kind::Account => {}
            }
            let req = json!({
                "Event-Category": "endpoint", "Event-Name": "build_req",
                "Msg-ID": "kz-endpoint-check", "App-Name": "kz-endpoint", "App-Version": crate::build_api::APP_VERSION,
                "Account-ID": account_id, "Call-ID": "kz-endpoint-check", "Endpoint-ID": id,
                "Properties": {}, "Call": {"Account-ID": account_id, "Call-ID": "kz-endpoint-check",
                    "Resource-Type": "audio", "Caller-ID-Number": "0000", "Caller-ID-Name": "kz-endpoint check"}
            });
            let body = req.as_object().cloned().unwrap_or_default();
            let handled = handle(&body, store, &registrar, &identity).await;
            let rings = match &handled.result {
                Ok(legs) => explain::legs(legs),
                Err(e) => {
                    let explained = findings.iter().any(|f| f.severity == Severity::LosesCalls);
                    if !explained
                        && !matches!(
                            e.code,
                            crate::build_api::ErrorCode::DoNotDisturb
                                | crate::build_api::ErrorCode::EndpointDisabled
                        )
                    {
                        lose(
                            &mut findings,
                            format!("a call to it is not built: {} ({})", e.code, e.message),
                        );
                    }
                    format!("nothing: {} ({})", e.code, e.message)
                }
            };
            let name = match kind {
                Kind::User => full_name(doc),
                _ => None,
            }
            .or_else(|| ne_str(doc.get("name")).map(str::to_owned));
            endpoints.push(Checked {
                kind: kind.as_str(),
                id: id.to_owned(),
                name,
                rings,
                findings,
            });
        }
    }
    let count = |s| {
        endpoints
            .iter()
            .flat_map(|e| &e.findings)
            .filter(|f| f.severity == s)
            .count()
    };
    Report {
        account: account_id.to_owned(),
        loses_calls: count(Severity::LosesCalls),
        surprises: count(Severity::Surprise),
        endpoints,
    }
}

impl Report {
    /// The report as a table a person reads.
    pub fn table(&self) -> String {
        use std::fmt::Write;
        let mut out = format!("account {}\n", self.account);
        let _ = writeln!(
            out,
            "{:<6}  {:<32}  {:<20}  RINGS (registrations unknown)",
            "TYPE", "ID", "NAME"
        );
        for e in &self.endpoints {
            let _ = writeln!(
                out,
                "{:<6}  {:<32}  {:<20}  {}",
                e.kind,
                e.id,
                e.name.as_deref().unwrap_or("-"),
                e.rings
            );
            for f in &e.findings {
                let tag = match f.severity {
                    Severity::LosesCalls => "LOSES CALLS",
                    Severity::Surprise => "surprise",
                };
                let _ = writeln!(out, "        {tag}: {}", f.message);
            }
        }
        let _ = writeln!(
            out,
            "{} endpoint(s): {} finding(s) that lose calls, {} surprise(s)",
            self.endpoints.len(),
            self.loses_calls,
            self.surprises
        );
        out
    }
}
