//! Endpoint call recording (`kz_endpoint_recording:maybe_record_inbound/3` with
//! `kapps_call_recording:record_call_command/2`): the `Endpoint-Actions` of a leg.
//!
//! The settings are the merged `call_recording` of account (`call_recording.endpoint`),
//! owner and device, each normalised as Kazoo normalises it (`any` direction and `any`
//! network spread over the named ones; the legacy `record_call` turned into settings for
//! every direction and network). Only `call_recording.endpoint.inbound.<network>` starts a
//! recording here: `onnet` for a call without `Inception`, `offnet` otherwise.
//!
//! Kazoo draws the recording id, the media name and the `Msg-ID` at random and dates the
//! recording with the clock; here they are hashes of the `Call-ID`, the endpoint id and a
//! label, and the month comes from the request's `Timestamp` (product rules 8), so a
//! replayed request gets the same reply.

use serde_json::{Map, Value, json};

use super::attributes::Endpoint;
use super::call::CallContext;
use super::config;
use crate::kz_json::{Object, as_integer, is_true, ne_str};

/// Kazoo's recorder (`?KZ_RECORDER`).
const RECORDER: &str = "kz_media_recording";

/// The `Endpoint-Actions` of a SIP or push leg of `ep`: `{}` when nothing records.
pub fn endpoint_actions(ctx: &CallContext<'_>, ep: &Endpoint<'_>) -> Value {
    match record_command(ctx, ep) {
        Some(cmd) => json!({"Execute-On-Answer": {"Record-Endpoint": cmd}}),
        None => json!({}),
    }
}

fn record_command(ctx: &CallContext<'_>, ep: &Endpoint<'_>) -> Option<Value> {
    if ctx.req().call.resource_type.as_deref() == Some("sms") {
        return None;
    }
    let network = if ctx.req().call.inception.is_none() {
        "onnet"
    } else {
        "offnet"
    };
    // Nearly every endpoint records nothing: with no recording setting anywhere, the merge
    // below would give `{}`.
    let set = |v: Option<&Value>| v.is_some_and(|v| !v.is_null());
    if !set(ep.account_get(|t| t.call_recording))
        && !set(ep.owner_get(|t| t.call_recording))
        && !set(ep.owner_get(|t| t.record_call))
        && !set(ep.top().call_recording)
        && !set(ep.top().record_call)
    {
        return None;
    }
    let merged = merged_call_recording(ep);
    let data = merged
        .get("endpoint")
        .and_then(|e| e.get("inbound"))
        .and_then(|i| i.get(network))
        .and_then(Value::as_object)?;
    if !is_true(data.get("enabled")) {
        return None;
    }
    let mut data = data.clone();
    // `kz_json:set_values/2` folds from the right: endpoint_id, then origin.
    set_value(&mut data, "endpoint_id", json!(ep.id()));
    set_value(
        &mut data,
        "origin",
        json!(format!("inbound from {network} to endpoint")),
    );
    Some(command(ctx, ep, &data))
}

/// `kz_json:set_value/3` on a top-level key: replaced in place, or appended.
fn set_value(o: &mut Object, key: &str, v: Value) {
    if let Some(slot) = o.get_mut(key) {
        *slot = v;
    } else {
        o.insert(key.to_owned(), v);
    }
}

fn command(ctx: &CallContext<'_>, ep: &Endpoint<'_>, data: &Object) -> Value {
    let format = match ne_str(data.get("format")) {
        Some(f @ ("mp3" | "mp4" | "wav")) => f.to_owned(),
        _ => config::recording_extension(ctx).to_owned(),
    };
    let max = config::max_recording_time_limit(ctx);
    let time_limit = match as_integer(data.get("time_limit")) {
        Some(tl) if max > tl => tl,
        _ => max,
    };
    let sample_rate = as_integer(data.get("record_sample_rate"));
    let min_sec =
        as_integer(data.get("record_min_sec")).unwrap_or_else(|| config::record_min_sec(ctx));
    let call_id = ctx
        .req()
        .call
        .call_id
        .as_deref()
        .unwrap_or(&ctx.req().call_id);
    let recording_id = hex_id(call_id, ep.id(), "recording");
    let (year, month) = year_month(ctx.req().timestamp.unwrap_or(0));
    let doc_id = format!("{year:04}{month:02}-{recording_id}");
    let media_name = match data.get("media_name").filter(|v| !v.is_null()) {
        Some(v) => v.clone(),
        None => json!(media_name(&hex_id(call_id, ep.id(), "media"), &format)),
    };
    let follow_transfer = ctx
        .req()
        .call
        .kvs
        .get("recording_follow_transfer")
        .cloned()
        .unwrap_or(Value::Bool(false));
    let recorder = ne_str(data.get("url"))
        .filter(|u| is_storage_url(u))
        .map(|_| RECORDER);
    let mut vars = Map::new();
    vars.insert("Name".into(), media_name.clone());
    if let Some(r) = recorder {
        vars.insert("Recorder".into(), json!(r));
    }
    vars.insert("ID".into(), json!(doc_id));
    vars.insert(
        "Data".into(),
        json!(base64(&term_to_binary(&Value::Object(data.clone())))),
    );
    let mut c = Map::new();
    c.insert("Application-Name".into(), json!("record_call"));
    c.insert("Record-Action".into(), json!("start"));
    c.insert("Follow-Transfer".into(), follow_transfer);
    c.insert("Time-Limit".into(), json!(time_limit));
    c.insert("Media-Name".into(), media_name);
    c.insert("Media-Recording-ID".into(), json!(doc_id));
    if let Some(rate) = sample_rate {
        c.insert("Record-Sample-Rate".into(), json!(rate));
    }
    c.insert("Record-Min-Sec".into(), json!(min_sec.to_string()));
    if let Some(r) = recorder {
        c.insert("Media-Recorder".into(), json!(r));
    }
    c.insert("Recording-Variables".into(), Value::Object(vars));
    c.insert("Call-ID".into(), json!(call_id));
    c.insert("Msg-ID".into(), json!(hex_id(call_id, ep.id(), "msg")));
    c.insert("Event-Category".into(), json!("call"));
    c.insert("Event-Name".into(), json!("command"));
    c.insert("App-Name".into(), json!("kapps_call_command"));
    c.insert("App-Version".into(), json!("4.0.0"));
    Value::Object(c)
}

/// `get_media_name/2`: the name with the format's extension.
fn media_name(name: &str, ext: &str) -> String {
    format!("{name}.{ext}")
}

/// A storage URL Kazoo's recorder accepts (`handler_from_url/1`): http(s) or ftp(s).
fn is_storage_url(url: &str) -> bool {
    let scheme = url.split(':').next().unwrap_or_default();
    matches!(scheme, "http" | "https" | "ftp" | "ftps") && url.contains("://")
}

/// 32 hex digits derived from the call, the endpoint and a label (where Kazoo draws
/// `kz_binary:rand_hex(16)`).
pub fn hex_id(call_id: &str, endpoint_id: &str, label: &str) -> String {
    let mut out = String::with_capacity(32);
    for seed in [0xcbf2_9ce4_8422_2325_u64, 0x6c62_272e_07bb_0142] {
        let mut h = seed;
        for b in label
            .bytes()
            .chain([0])
            .chain(call_id.bytes())
            .chain([0])
            .chain(endpoint_id.bytes())
        {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        // A final mix so that neighbouring inputs differ in every digit.
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        out.push_str(&format!("{h:016x}"));
    }
    out
}

/// The year and month of a Unix time (UTC).
pub fn year_month(unix: i64) -> (i64, u32) {
    let days = unix.div_euclid(86_400);
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month)
}

/// The merged `call_recording` Kazoo's `merge_attribute(<<"call_recording">>)` gives:
/// account < owner < device, each normalised.
pub fn merged_call_recording(ep: &Endpoint<'_>) -> Value {
    let account = match ep.account_get(|t| t.call_recording) {
        Some(Value::Object(types)) => {
            let mut o = Map::new();
            for (t, settings) in types {
                o.insert(t.clone(), normalise(settings));
            }
            Value::Object(o)
        }
        _ => json!({}),
    };
    let owner = match ep.owner_doc() {
        Some(_) => entity_recording(
            ep.owner_get(|t| t.call_recording),
            ep.owner_get(|t| t.record_call),
        ),
        None => json!({}),
    };
    let device = if ep.kind() == super::attributes::Kind::Device {
        entity_recording(ep.top().call_recording, ep.top().record_call)
    } else {
        json!({})
    };
    let merged = merge(&account, &owner);
    merge(&merged, &device)
}

/// A user's or device's recording settings: `call_recording` under `endpoint`, else the
/// legacy `record_call`.
fn entity_recording(call_recording: Option<&Value>, record_call: Option<&Value>) -> Value {
    match call_recording.filter(|v| !v.is_null()) {
        Some(cr) => endpoint_recording(cr),
        None => legacy(record_call),
    }
}

fn endpoint_recording(cr: &Value) -> Value {
    if is_empty_object(cr) {
        return cr.clone();
    }
    json!({"endpoint": normalise(cr)})
}

fn legacy(record_call: Option<&Value>) -> Value {
    let rc = match record_call {
        Some(Value::Object(o)) if !o.is_empty() => Value::Object(o.clone()),
        Some(v) if is_true(Some(v)) => json!({"action": "start", "record_call": true}),
        _ => return json!({}),
    };
    if !is_true(rc.get("record_call")) {
        return json!({});
    }
    let mut settings = rc;
    if let Value::Object(o) = &mut settings {
        set_value(o, "enabled", json!(true));
    }
    let nets = json!({"onnet": settings.clone(), "offnet": settings});
    endpoint_recording(&json!({"inbound": nets.clone(), "outbound": nets}))
}

fn is_empty_object(v: &Value) -> bool {
    v.as_object().is_some_and(Map::is_empty)
}

/// `merge_call_recording/1`: `any` spread over `inbound`/`outbound`, then each direction's
/// `any` network over `onnet`/`offnet` (a missing `any` network is `{"enabled": false}`).
fn normalise(rs: &Value) -> Value {
    let Value::Object(rs) = rs else {
        return rs.clone();
    };
    let any_dir = rs.get("any").cloned().unwrap_or_else(|| json!({}));
    let mut rs1 = rs.clone();
    rs1.shift_remove("any");
    for dir in ["inbound", "outbound"] {
        let v = match rs1.get(dir) {
            Some(Value::Object(_)) => merge(&any_dir, &rs1[dir]),
            _ => any_dir.clone(),
        };
        set_value(&mut rs1, dir, v);
    }
    let keys: Vec<String> = rs1.keys().cloned().collect();
    let mut out = rs1.clone();
    for dir in keys {
        let Some(Value::Object(nets)) = rs1.get(&dir) else {
            continue;
        };
        let any_net = nets
            .get("any")
            .cloned()
            .unwrap_or_else(|| json!({"enabled": false}));
        let mut nets1 = nets.clone();
        nets1.shift_remove("any");
        for net in ["onnet", "offnet"] {
            let v = match nets1.get(net) {
                Some(Value::Object(_)) => merge(&any_net, &nets1[net]),
                _ => any_net.clone(),
            };
            set_value(&mut nets1, net, v);
        }
        set_value(&mut out, &dir, Value::Object(nets1));
    }
    Value::Object(out)
}

/// `kz_json:merge/2` (recursive, right wins, `null` drops the key). Like Kazoo's, the
/// result's keys come in descending order, at every level it rebuilds.
pub fn merge(left: &Value, right: &Value) -> Value {
    let (Value::Object(l), Value::Object(r)) = (left, right) else {
        return right.clone();
    };
    let mut keys: Vec<&String> = l.keys().chain(r.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut out = Map::new();
    for k in keys.into_iter().rev() {
        let v = match (l.get(k), r.get(k)) {
            (_, Some(Value::Null)) | (Some(Value::Null), None) => continue,
            // Kazoo's default options are not recursive for an empty right object.
            (Some(Value::Object(_)), Some(Value::Object(bo))) if bo.is_empty() => json!({}),
            (Some(a @ Value::Object(_)), Some(b @ Value::Object(_))) => merge(a, b),
            // A right object over a non-object is kept as it is.
            (Some(_), Some(b @ Value::Object(_))) => b.clone(),
            (None, Some(b @ Value::Object(_))) | (Some(b @ Value::Object(_)), None) => {
                merge(&json!({}), b)
            }
            (_, Some(b)) => b.clone(),
            (Some(a), None) => a.clone(),
            (None, None) => continue,
        };
        out.insert(k.clone(), v);
    }
    Value::Object(out)
}

/// Erlang's `term_to_binary/1` (OTP 25) of a `kz_json` term: objects are `{Proplist}`,
/// strings binaries, `true`/`false`/`null` atoms.
pub fn term_to_binary(v: &Value) -> Vec<u8> {
    let mut out = vec![131];
    encode(v, &mut out);
    out
}

fn encode(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Null => atom("null", out),
        Value::Bool(b) => atom(if *b { "true" } else { "false" }, out),
        Value::String(s) => {
            out.push(109);
            out.extend_from_slice(&(s.len() as u32).to_be_bytes());
            out.extend_from_slice(s.as_bytes());
        }
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                integer(i, out);
            } else if let Some(u) = n.as_u64() {
                big(u128::from(u), false, out);
            } else {
                out.push(70);
                out.extend_from_slice(&n.as_f64().unwrap_or(0.0).to_be_bytes());
            }
        }
        Value::Array(a) => {
            let small: Option<Vec<u8>> = a
                .iter()
                .map(|x| x.as_u64().filter(|u| *u <= 255).map(|u| u as u8))
                .collect();
            match small {
                _ if a.is_empty() => out.push(106),
                Some(bytes) if bytes.len() < 65_536 => {
                    out.push(107);
                    out.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
                    out.extend_from_slice(&bytes);
                }
                _ => {
                    out.push(108);
                    out.extend_from_slice(&(a.len() as u32).to_be_bytes());
                    for x in a {
                        encode(x, out);
                    }
                    out.push(106);
                }
            }
        }
        Value::Object(o) => {
            out.extend_from_slice(&[104, 1]);
            if o.is_empty() {
                out.push(106);
                return;
            }
            out.push(108);
            out.extend_from_slice(&(o.len() as u32).to_be_bytes());
            for (k, x) in o {
                out.extend_from_slice(&[104, 2]);
                encode(&Value::String(k.clone()), out);
                encode(x, out);
            }
            out.push(106);
        }
    }
}

fn atom(name: &str, out: &mut Vec<u8>) {
    out.push(100);
    out.extend_from_slice(&(name.len() as u16).to_be_bytes());
    out.extend_from_slice(name.as_bytes());
}

fn integer(i: i64, out: &mut Vec<u8>) {
    if (0..=255).contains(&i) {
        out.extend_from_slice(&[97, i as u8]);
    } else if let Ok(small) = i32::try_from(i) {
        out.push(98);
        out.extend_from_slice(&small.to_be_bytes());
    } else {
        big(u128::from(i.unsigned_abs()), i < 0, out);
    }
}

fn big(mut magnitude: u128, negative: bool, out: &mut Vec<u8>) {
    let mut digits = Vec::new();
    while magnitude > 0 {
        digits.push((magnitude & 0xff) as u8);
        magnitude >>= 8;
    }
    out.push(110);
    out.push(digits.len() as u8);
    out.push(u8::from(negative));
    out.extend_from_slice(&digits);
}

/// Standard base64 with padding (Erlang's `base64:encode/1`).
pub fn base64(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                s.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_from_unix_time() {
        assert_eq!(year_month(0), (1970, 1));
        assert_eq!(year_month(1_767_225_600), (2026, 1)); // 2026-01-01
        assert_eq!(year_month(1_764_547_200), (2025, 12)); // 2025-12-01
        assert_eq!(year_month(951_782_400), (2000, 2)); // 2000-02-29
    }

    #[test]
    fn erlang_terms() {
        assert_eq!(term_to_binary(&json!({})), [131, 104, 1, 106]);
        assert_eq!(
            term_to_binary(&json!({"a": 1})),
            [
                131, 104, 1, 108, 0, 0, 0, 1, 104, 2, 109, 0, 0, 0, 1, b'a', 97, 1, 106
            ]
        );
        assert_eq!(term_to_binary(&json!(7200)), [131, 98, 0, 0, 0x1c, 0x20]);
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b"abc"), "YWJj");
        assert_eq!(base64(b"a"), "YQ==");
    }
}
