//! A message's JSON as it was sent, read without building `serde_json`'s maps.
//!
//! Why: the crate's `serde_json` keeps object keys in document order (product rule 5 needs
//! it for documents), so every object it builds is an insertion-ordered map that allocates
//! each key and value and hashes each key with SipHash. A `build_req` is read once, field by
//! field, into [`crate::build_api::BuildRequest`], and parsing it into such maps cost a
//! quarter of a warm request's instructions (`docs/performance.md`). [`Json`] borrows the
//! message's strings wherever they hold no escape, and an object is a list of its entries.
//!
//! Nothing else changes: the same parser reads the bytes (the same errors, the same limits,
//! numbers as `serde_json::Number`), and an object with a key twice reads as `serde_json`
//! reads it, the last value winning ([`JsonObject::field`]).

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Number, Value};

use crate::kz_json::Object;

/// A JSON value whose strings borrow from the message where they can.
#[derive(Debug, Clone, PartialEq)]
pub enum Json<'a> {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A number, as `serde_json` holds it.
    Number(Number),
    /// A string.
    Str(Cow<'a, str>),
    /// A list.
    Array(Vec<Json<'a>>),
    /// An object.
    Object(JsonObject<'a>),
}

/// A JSON object: its entries in the message's order, duplicates included.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JsonObject<'a>(pub Vec<(Cow<'a, str>, Json<'a>)>);

impl<'a> Json<'a> {
    /// Reads one JSON value from `bytes`, as `serde_json::from_slice` would.
    ///
    /// A message that is valid UTF-8 as a whole (any message Kazoo sends) is read as text:
    /// `serde_json` then checks no string's UTF-8 on its own, which it does for bytes, one
    /// call a string (about 4 700 instructions a request; the one check of the whole body,
    /// a word at a time, is a fraction of that). Bytes that are not UTF-8 are read as bytes,
    /// so the error, and where it says the bad byte is, stay `from_slice`'s.
    pub fn parse(bytes: &'a [u8]) -> serde_json::Result<Self> {
        match std::str::from_utf8(bytes) {
            Ok(text) => serde_json::from_str(text),
            Err(_) => serde_json::from_slice(bytes),
        }
    }

    /// The same value, borrowing `v`'s strings (for a body that is parsed already).
    pub fn borrowed(v: &'a Value) -> Self {
        match v {
            Value::Null => Json::Null,
            Value::Bool(b) => Json::Bool(*b),
            Value::Number(n) => Json::Number(n.clone()),
            Value::String(s) => Json::Str(Cow::Borrowed(s)),
            Value::Array(a) => Json::Array(a.iter().map(Json::borrowed).collect()),
            Value::Object(o) => Json::Object(JsonObject::borrowed(o)),
        }
    }

    /// The value as `serde_json` would have parsed it.
    pub fn to_value(&self) -> Value {
        match self {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(*b),
            Json::Number(n) => Value::Number(n.clone()),
            Json::Str(s) => Value::String(s.as_ref().to_owned()),
            Json::Array(a) => Value::Array(a.iter().map(Json::to_value).collect()),
            Json::Object(o) => Value::Object(o.to_object()),
        }
    }
}

impl<'a> JsonObject<'a> {
    /// The same object, borrowing `o`'s keys and strings.
    pub fn borrowed(o: &'a Object) -> Self {
        JsonObject(
            o.iter()
                .map(|(k, v)| (Cow::Borrowed(k.as_str()), Json::borrowed(v)))
                .collect(),
        )
    }

    /// The value of `key`: the last one when the message has it twice, as `serde_json`'s map
    /// keeps it.
    pub fn field(&self, key: &str) -> Option<&Json<'a>> {
        self.0.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Whether the object has `key`.
    pub fn contains_key(&self, key: &str) -> bool {
        self.0.iter().any(|(k, _)| k == key)
    }

    /// Adds `key` (the caller checks it is not there yet).
    pub fn push(&mut self, key: &'static str, value: Json<'a>) {
        self.0.push((Cow::Borrowed(key), value));
    }

    /// The object as `serde_json` would have parsed it: in first-seen key order, the last
    /// value of a key twice.
    pub fn to_object(&self) -> Object {
        let mut o = Object::new();
        for (k, v) in &self.0 {
            o.insert(k.as_ref().to_owned(), v.to_value());
        }
        o
    }
}

/// A string or key, borrowed when the message's text is the string itself.
struct Text<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(s.to_owned())))
            }
            fn visit_string<E>(self, s: String) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(s)))
            }
        }
        d.deserialize_str(V)
    }
}

impl<'de> Deserialize<'de> for Json<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any valid JSON value")
    }
    fn visit_bool<E>(self, b: bool) -> Result<Self::Value, E> {
        Ok(Json::Bool(b))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Self::Value, E> {
        Ok(Json::Number(n.into()))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Self::Value, E> {
        Ok(Json::Number(n.into()))
    }
    fn visit_f64<E>(self, n: f64) -> Result<Self::Value, E> {
        // As `serde_json::Value` reads a float: a non-finite one cannot come from JSON text.
        Ok(Number::from_f64(n).map_or(Json::Null, Json::Number))
    }
    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
        Ok(Json::Str(Cow::Borrowed(s)))
    }
    fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
        Ok(Json::Str(Cow::Owned(s.to_owned())))
    }
    fn visit_string<E>(self, s: String) -> Result<Self::Value, E> {
        Ok(Json::Str(Cow::Owned(s)))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Json::Null)
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(Json::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        Deserialize::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(v) = seq.next_element()? {
            items.push(v);
        }
        Ok(Json::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut entries = Vec::new();
        while let Some((Text(k), v)) = map.next_entry()? {
            entries.push((k, v));
        }
        Ok(Json::Object(JsonObject(entries)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kind of value, escapes and a key twice: read back as `serde_json` reads it.
    #[test]
    fn a_message_reads_as_serde_json_reads_it() {
        let text =
            r#"{"a":1,"b":[true,null,-2,3.5,"x\u00e9\n","é😀"],"c":{"d":"e","d":"f"},"g\"":"",
                      "a":"again","big":18446744073709551615,"neg":-9223372036854775808}"#
                .as_bytes();
        let ours = Json::parse(text).unwrap();
        let theirs: Value = serde_json::from_slice(text).unwrap();
        assert_eq!(ours.to_value(), theirs);
        // The same key order and values, not only equal maps.
        assert_eq!(
            serde_json::to_string(&ours.to_value()).unwrap(),
            serde_json::to_string(&theirs).unwrap()
        );
        let Json::Object(o) = &ours else {
            panic!("an object")
        };
        assert_eq!(o.field("a"), Some(&Json::Str("again".into())));
        // Unescaped strings borrow the message; escaped ones cannot.
        assert!(matches!(o.0[0].0, Cow::Borrowed("a")));
        assert!(matches!(o.0[3].0, Cow::Owned(ref k) if k == "g\""));
        assert_eq!(
            Json::borrowed(&theirs),
            Json::parse(&serde_json::to_vec(&theirs).unwrap()).unwrap()
        );
    }

    #[test]
    fn what_serde_json_refuses_is_refused_with_its_words() {
        for bad in [
            &b"{"[..],
            b"{\"a\":}",
            b"{\"a\":\"\\ud800\"}",
            b"{\"a\":1}x",
            b"[1,]",
            b"\"\\q\"",
            b"{\"a\":\"\xff\"}",
            b"{\"\xc3\":1}",
            b"{\"a\":1,\"b\xe2\x82\":2}",
        ] {
            let ours = Json::parse(bad).unwrap_err().to_string();
            let theirs = serde_json::from_slice::<Value>(bad)
                .unwrap_err()
                .to_string();
            assert_eq!(ours, theirs, "{}", String::from_utf8_lossy(bad));
        }
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert_eq!(
            Json::parse(deep.as_bytes()).unwrap_err().to_string(),
            serde_json::from_slice::<Value>(deep.as_bytes())
                .unwrap_err()
                .to_string()
        );
    }
}
