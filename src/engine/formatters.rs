//! Outbound formatters (Kazoo's `kz_formatters:apply(Leg, Formatters, outbound)`), applied to
//! a device's SIP legs after they are built.
//!
//! `formatters` is an object whose keys name leg fields: a key matches the leg's field whose
//! name, lower-cased with `-` read as `_`, is the key lower-cased (`outbound_caller_id_number`
//! or `Outbound_Caller_ID_Number` match `Outbound-Caller-ID-Number`; `outbound-caller-id-number`
//! does not, as in Kazoo). Its value is a formatter or a list of them; those with a
//! `direction` other than `outbound` are left out. The first formatter that applies wins, and
//! within one formatter the first of `strip` (remove the field), `value` (replace it),
//! `match_invite_format` (re-write a number the way the leg's `e164`/`npan`/`1npan` invite
//! format writes it) and `regex` (the first capture, or the whole match, between `prefix` and
//! `suffix`). The same formatters then run inside `Custom-SIP-Headers`, with the leg's
//! `Invite-Format` visible to them. The merged `formatters` (account, then device, then owner
//! winning per key) come from [`super::attributes::Endpoint::formatters`].
//!
//! Where Kazoo's code would crash (a regex on a value that is not a string, a regex PCRE
//! accepts and this engine does not), the formatter does not apply and the leg is kept; the
//! number conversions use Kazoo's default `e164_converters` (`docs/compatibility.md`).

use regex::{Regex, RegexBuilder};
use serde_json::Value;

use crate::kz_json::Object;

/// The largest compiled regex a document may ask for (bytes of program): a formatter must not
/// cost a build more than a moment.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// The most distinct regexes one build compiles. A document may list any number of
/// formatters; past this many patterns, a formatter's `regex` does not apply (as for a
/// pattern that does not compile), so a build's cost stays bounded (`docs/compatibility.md`).
pub const MAX_REGEXES: usize = 64;

/// The regexes of one build's formatters, compiled once each (a formatter inherited from the
/// account applies to every SIP leg of the build).
#[derive(Default)]
pub struct Regexes(std::cell::RefCell<std::collections::HashMap<String, Option<Regex>>>);

impl Regexes {
    /// Runs `f` on the compiled `pattern`: `None` when it does not compile, or when the build
    /// has compiled [`MAX_REGEXES`] others already.
    fn with<R>(&self, pattern: &str, f: impl FnOnce(Option<&Regex>) -> R) -> R {
        let mut map = self.0.borrow_mut();
        if !map.contains_key(pattern) {
            if map.len() >= MAX_REGEXES {
                return f(None);
            }
            let re = RegexBuilder::new(pattern)
                .size_limit(REGEX_SIZE_LIMIT)
                .build()
                .ok();
            map.insert(pattern.to_owned(), re);
        }
        f(map.get(pattern).and_then(Option::as_ref))
    }
}

/// Applies the outbound `formatters` to `leg`, compiling regexes through `regexes`.
pub fn apply(leg: &mut Object, formatters: &Object, regexes: &Regexes) {
    format_object(leg, formatters, regexes);
    let invite_format = leg.get("Invite-Format").cloned();
    if let Some(Value::Object(headers)) = leg.get_mut("Custom-SIP-Headers") {
        let added = match invite_format {
            Some(f @ Value::String(_)) if !headers.contains_key("Invite-Format") => {
                headers.insert("Invite-Format".into(), f);
                true
            }
            _ => false,
        };
        format_object(headers, formatters, regexes);
        if added {
            headers.shift_remove("Invite-Format");
        }
    }
}

/// Kazoo's `kz_json:normalize_key`: ASCII and Latin-1 capitals lowered, `-` read as `_`.
fn normalize(key: &str) -> String {
    key.chars()
        .map(|c| match c {
            '-' => '_',
            'A'..='Z' | '\u{C0}'..='\u{D6}' | '\u{D8}'..='\u{DE}' => {
                char::from_u32(c as u32 + 32).unwrap_or(c)
            }
            c => c,
        })
        .collect()
}

fn format_object(obj: &mut Object, formatters: &Object, regexes: &Regexes) {
    for (meta_key, list) in formatters {
        let applicable: Vec<&Object> = match list {
            Value::Array(a) => a.iter().filter_map(Value::as_object).collect(),
            Value::Object(o) => vec![o],
            _ => continue,
        }
        .into_iter()
        .filter(|f| match f.get("direction") {
            None | Some(Value::Null) => true,
            Some(Value::String(d)) => d == "outbound",
            Some(_) => false,
        })
        .collect();
        if applicable.is_empty() {
            continue;
        }
        // `to_lower_binary` on the formatter's key, against the leg's normalised keys.
        let wanted = meta_key.to_lowercase();
        let Some(key) = obj.keys().find(|k| normalize(k) == wanted).cloned() else {
            continue;
        };
        for f in applicable {
            if apply_one(obj, &key, f, regexes) {
                break;
            }
        }
    }
}

/// Tries one formatter on `obj[key]`; true when it changed something (or would have: Kazoo
/// stops at the first formatter that applies).
fn apply_one(obj: &mut Object, key: &str, f: &Object, regexes: &Regexes) -> bool {
    let Some(value) = obj.get(key).cloned() else {
        return false;
    };
    // `To`, `From` and `Request` are `user@realm`: the formatter works on the user.
    let split = matches!(key, "To" | "From" | "Request");
    let (user, realm) = match (&value, split) {
        (Value::String(s), true) => match s.split_once('@') {
            Some((u, r)) => (Value::String(u.into()), Some(r.to_owned())),
            None => return false,
        },
        _ => (value, None),
    };
    let with_realm = |v: Value| match (&realm, v) {
        (Some(r), Value::String(u)) => Value::String(format!("{u}@{r}")),
        (Some(r), other) => Value::String(format!("{}@{r}", binary(&other))),
        (None, v) => v,
    };
    if crate::kz_json::is_true(f.get("strip")) {
        obj.shift_remove(key);
        return true;
    }
    if let Some(v) = f.get("value").filter(|v| !v.is_null()) {
        obj.insert(key.into(), with_realm(v.clone()));
        return true;
    }
    if crate::kz_json::is_true(f.get("match_invite_format"))
        && let Some(convert) = obj
            .get("Invite-Format")
            .and_then(Value::as_str)
            .and_then(converter)
        && let Value::String(u) = &user
    {
        let formatted = Value::String(convert(u));
        obj.insert(key.into(), with_realm(formatted));
        return true;
    }
    let Some(pattern) = f.get("regex").and_then(Value::as_str) else {
        return false;
    };
    let Value::String(subject) = &user else {
        return false;
    };
    // Erlang's `re:run(.., [{capture, all, binary}])` drops the unmatched groups at the end of
    // the list: with no group matched, the whole match is what was captured; otherwise the
    // first group (empty when it did not take part).
    let captured = regexes.with(pattern, |re| {
        let caps = re?.captures(subject)?;
        let any_group = (1..caps.len()).any(|i| caps.get(i).is_some());
        let m = if any_group { caps.get(1) } else { caps.get(0) };
        Some(m.map_or("", |m| m.as_str()).to_owned())
    });
    let Some(captured) = captured else {
        return false;
    };
    let out = format!(
        "{}{captured}{}",
        f.get("prefix").map(binary).unwrap_or_default(),
        f.get("suffix").map(binary).unwrap_or_default()
    );
    obj.insert(key.into(), with_realm(Value::String(out)));
    true
}

/// `kz_json:get_binary_value`: a string as it is, a number or boolean as its text.
fn binary(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Kazoo's `invite_format_fun` for the formats `match_invite_format` applies to.
fn converter(format: &str) -> Option<fn(&str) -> String> {
    match format {
        "e164" => Some(to_e164),
        "npan" => Some(to_npan),
        "1npan" => Some(to_1npan),
        _ => None,
    }
}

fn nanp() -> &'static Regex {
    static NANP: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    NANP.get_or_init(|| Regex::new(r"^(\+?1)?([2-9][0-9]{2}[2-9][0-9]{6})$").expect("valid"))
}

/// `knm_converters:normalize/1` with Kazoo's default `e164_converters`.
pub fn to_e164(n: &str) -> String {
    static OTHERS: std::sync::OnceLock<[Regex; 2]> = std::sync::OnceLock::new();
    if n.starts_with('+') {
        return n.to_owned();
    }
    if let Some(c) = nanp().captures(n) {
        return format!("+1{}", &c[2]);
    }
    let [intl, long] = OTHERS.get_or_init(|| {
        [
            Regex::new(r"^011(\d{5,})$|^00(\d{5,})$").expect("valid"),
            Regex::new(r"^[2-9]\d{7,}$").expect("valid"),
        ]
    });
    if let Some(c) = intl.captures(n) {
        let root = c.get(2).or(c.get(1)).map_or("", |m| m.as_str());
        return format!("+{root}");
    }
    if long.is_match(n) {
        return format!("+{n}");
    }
    n.to_owned()
}

/// `knm_converters:to_npan/1`.
pub fn to_npan(n: &str) -> String {
    match nanp().captures(n) {
        Some(c) => c[2].to_owned(),
        None => n.to_owned(),
    }
}

/// `knm_converters:to_1npan/1`.
pub fn to_1npan(n: &str) -> String {
    match nanp().captures(n) {
        Some(c) => format!("1{}", &c[2]),
        None => n.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_conversions_follow_kazoos_default_converters() {
        assert_eq!(to_e164("4155550100"), "+14155550100");
        assert_eq!(to_e164("14155550100"), "+14155550100");
        assert_eq!(to_e164("011441234567"), "+441234567");
        assert_eq!(to_e164("00441234567"), "+441234567");
        assert_eq!(to_e164("44123456789"), "+44123456789");
        assert_eq!(to_e164("+4412"), "+4412");
        assert_eq!(to_e164("2000"), "2000");
        assert_eq!(to_npan("+14155550100"), "4155550100");
        assert_eq!(to_1npan("4155550100"), "14155550100");
        assert_eq!(to_npan("2000"), "2000");
    }

    #[test]
    fn keys_match_by_kazoos_normalised_name() {
        assert_eq!(
            normalize("Outbound-Caller-ID-Number"),
            "outbound_caller_id_number"
        );
        assert_eq!(normalize("X-Ä"), "x_ä");
    }
}
