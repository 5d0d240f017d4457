//! JSON value conventions of Kazoo (`kz_term` / `kz_json`), which every rule of the builder
//! depends on.
//!
//! Kazoo's documents are loosely typed: a boolean may arrive as `true` or `"true"`, and the
//! code uses two different notions of "empty" in different places. Getting one of these wrong
//! silently changes which legs a build produces, so the rules live here once, with the name of
//! the Kazoo function they mirror.

use serde_json::{Map, Value};

/// A JSON object, as used for documents and legs.
pub type Object = Map<String, Value>;

/// Objects up to this size are searched by comparing keys rather than by hashing: cheaper
/// for the objects of a document (`sip`, `media`, `call_forward`, a user, …) and of a
/// request (its envelope, `Call`, `Properties`), whose map hashes every key with SipHash;
/// most keys differ in length, so most comparisons end at once.
const SCAN_UP_TO: usize = 24;

/// `o[key]`.
pub fn field<'a>(o: &'a Object, key: &str) -> Option<&'a Value> {
    if o.len() <= SCAN_UP_TO {
        o.iter().find(|(k, _)| k.as_str() == key).map(|(_, v)| v)
    } else {
        o.get(key)
    }
}

/// `v[key]` when `v` is an object.
pub fn get<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    field(v.as_object()?, key)
}

/// The value at a path of object keys, if every step exists.
pub fn path<'a>(v: &'a Value, keys: &[&str]) -> Option<&'a Value> {
    keys.iter().try_fold(v, |cur, k| get(cur, k))
}

/// `kz_term:is_true/1`: the boolean `true` or the string `"true"`.
pub fn is_true(v: Option<&Value>) -> bool {
    matches!(v, Some(Value::Bool(true))) || matches!(v, Some(Value::String(s)) if s == "true")
}

/// `kz_term:is_false/1`: the boolean `false` or the string `"false"`.
pub fn is_false(v: Option<&Value>) -> bool {
    matches!(v, Some(Value::Bool(false))) || matches!(v, Some(Value::String(s)) if s == "false")
}

/// A boolean read with a default for a missing (or non-boolean) value.
pub fn bool_or(v: Option<&Value>, default: bool) -> bool {
    if is_true(v) {
        true
    } else if is_false(v) {
        false
    } else {
        default
    }
}

/// `kz_term:is_empty/1`, the emptiness test behind `get_ne_value` (rules file, "non-empty (a)"):
/// `""`, `"0"`, `"NULL"`, `"undefined"`, `0`, `0.0`, `[]`, `{}` and `null` are all empty.
pub fn is_empty(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => matches!(s.as_str(), "" | "0" | "NULL" | "undefined"),
        Some(Value::Number(n)) => n.as_f64() == Some(0.0),
        Some(Value::Array(a)) => a.is_empty(),
        Some(Value::Object(o)) => o.is_empty(),
        Some(Value::Bool(_)) => false,
    }
}

/// `get_ne_binary_value` ("non-empty (b)"): a string other than `""`.
pub fn ne_str(v: Option<&Value>) -> Option<&str> {
    match v {
        Some(Value::String(s)) if !s.is_empty() => Some(s),
        _ => None,
    }
}

/// A string that is non-empty in the sense of [`is_empty`] ("non-empty (a)").
pub fn ne_value_str(v: Option<&Value>) -> Option<&str> {
    if is_empty(v) { None } else { v?.as_str() }
}

/// An integer as Kazoo's `get_integer_value` reads it: a JSON number or a numeric string.
pub fn as_integer(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Removes every `null` inside `v` (object members and array elements); false when `v` is
/// itself `null` (for `retain`).
pub fn strip_nulls(v: &mut Value) -> bool {
    match v {
        Value::Null => false,
        Value::Array(a) => {
            a.retain_mut(strip_nulls);
            true
        }
        Value::Object(o) => {
            o.retain(|_, v| strip_nulls(v));
            true
        }
        _ => true,
    }
}

/// `kz_json:merge/2`: a recursive object merge where `right` wins per leaf, and a `null` in
/// `right` deletes the key.
pub fn merge_right_wins(left: &Value, right: &Value) -> Value {
    match (left, right) {
        (Value::Object(l), Value::Object(r)) => {
            let mut out = l.clone();
            for (k, rv) in r {
                if rv.is_null() {
                    out.remove(k);
                    continue;
                }
                let merged = match out.get(k) {
                    Some(lv) if lv.is_object() && rv.is_object() => merge_right_wins(lv, rv),
                    _ => rv.clone(),
                };
                out.insert(k.clone(), merged);
            }
            Value::Object(out)
        }
        (_, r) => r.clone(),
    }
}

/// The "generic" attribute merge of `kz_attributes` (rules file 3.4): the sources are merged
/// in order, later ones winning per leaf, but a leaf is copied only when it is non-empty, so an
/// empty string, `0`, `[]` or `{}` never overrides.
pub fn merge_non_empty(sources: &[Option<&Value>]) -> Object {
    let mut out = Object::new();
    for src in sources.iter().flatten() {
        if let Value::Object(o) = src {
            merge_non_empty_into(&mut out, o);
        }
    }
    out
}

fn merge_non_empty_into(into: &mut Object, from: &Object) {
    for (k, v) in from {
        match v {
            Value::Object(inner) => {
                let slot = into
                    .entry(k.clone())
                    .or_insert_with(|| Value::Object(Object::new()));
                if !slot.is_object() {
                    *slot = Value::Object(Object::new());
                }
                if let Value::Object(slot) = slot {
                    merge_non_empty_into(slot, inner);
                }
                // An object left empty by the merge adds nothing.
                if into.get(k).is_some_and(|v| is_empty(Some(v))) {
                    into.remove(k);
                }
            }
            _ if !is_empty(Some(v)) => {
                into.insert(k.clone(), v.clone());
            }
            _ => {}
        }
    }
}

/// A builder for leg objects that leaves absent values out: Kazoo drops `undefined` when it
/// encodes a leg, and a `null` on the wire is never correct.
#[derive(Debug, Default)]
pub struct ObjectBuilder(Object);

impl ObjectBuilder {
    /// An empty object.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty object with room for `n` keys.
    pub fn with_capacity(n: usize) -> Self {
        Self(Object::with_capacity(n))
    }

    /// Sets `key` to `value`.
    pub fn set(&mut self, key: &str, value: impl Into<Value>) -> &mut Self {
        self.0.insert(key.to_owned(), value.into());
        self
    }

    /// Sets `key` when `value` is present.
    pub fn opt(&mut self, key: &str, value: Option<impl Into<Value>>) -> &mut Self {
        if let Some(v) = value {
            self.0.insert(key.to_owned(), v.into());
        }
        self
    }

    /// Sets `key` to the string `"true"` when `cond` holds (Kazoo's string booleans).
    pub fn flag_str(&mut self, key: &str, cond: bool) -> &mut Self {
        if cond {
            self.0.insert(key.to_owned(), Value::from("true"));
        }
        self
    }

    /// Reads back a value already set.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key)
    }

    /// The finished object.
    pub fn build(self) -> Object {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn truthiness_follows_kz_term() {
        assert!(is_true(Some(&json!(true))));
        assert!(is_true(Some(&json!("true"))));
        assert!(!is_true(Some(&json!("TRUE"))));
        assert!(!is_true(Some(&json!(1))));
        assert!(!is_true(None));
        assert!(is_false(Some(&json!("false"))));
        assert!(!is_false(None));
        assert!(bool_or(None, true));
        assert!(!bool_or(Some(&json!("false")), true));
    }

    #[test]
    fn emptiness_a_and_b() {
        for v in [
            json!(""),
            json!("0"),
            json!("NULL"),
            json!("undefined"),
            json!(0),
            json!(0.0),
            json!([]),
            json!({}),
            json!(null),
        ] {
            assert!(is_empty(Some(&v)), "{v} should be empty");
        }
        assert!(!is_empty(Some(&json!("00"))));
        assert!(!is_empty(Some(&json!(false))));
        assert_eq!(ne_str(Some(&json!("0"))), Some("0"));
        assert_eq!(ne_str(Some(&json!(""))), None);
        assert_eq!(ne_value_str(Some(&json!("0"))), None);
    }

    #[test]
    fn merge_right_wins_deletes_on_null() {
        let l = json!({"a": 1, "b": {"c": 2, "d": 3}});
        let r = json!({"b": {"c": null, "e": 4}, "f": 5});
        assert_eq!(
            merge_right_wins(&l, &r),
            json!({"a": 1, "b": {"d": 3, "e": 4}, "f": 5})
        );
    }

    #[test]
    fn merge_non_empty_skips_empty_leaves() {
        let a = json!({"x": "acct", "y": {"z": "acct"}});
        let e = json!({"x": "", "y": {"z": "dev", "w": 0}});
        let o = json!({"y": {}});
        let m = merge_non_empty(&[Some(&a), Some(&e), Some(&o)]);
        assert_eq!(Value::Object(m), json!({"x": "acct", "y": {"z": "dev"}}));
    }

    #[test]
    fn get_scans_small_objects_and_hashes_large_ones() {
        let small = json!({"a": 1, "b": {"c": 2}});
        assert_eq!(get(&small, "a"), Some(&json!(1)));
        assert_eq!(path(&small, &["b", "c"]), Some(&json!(2)));
        assert_eq!(get(&small, "z"), None);
        let large: Value = (0..40)
            .map(|i| (format!("k{i}"), json!(i)))
            .collect::<Object>()
            .into();
        assert_eq!(get(&large, "k33"), Some(&json!(33)));
        assert_eq!(get(&json!([1]), "a"), None);
    }

    #[test]
    fn integers_from_numbers_and_strings() {
        assert_eq!(as_integer(Some(&json!(20))), Some(20));
        assert_eq!(as_integer(Some(&json!("20"))), Some(20));
        assert_eq!(as_integer(Some(&json!("x"))), None);
    }
}
