//! Compact JSON, byte for byte as `serde_json::to_vec` writes it, with a faster string
//! escape: the writer of the replies the worker publishes.
//!
//! Why a writer of our own: a reply is mostly strings (about 45 keys and values a leg, the
//! channel variables, the headers), and `serde_json` looks at each byte of each string on
//! its own to decide whether it needs an escape. That loop was the larger part of writing a
//! reply (12 600 of 17 500 instructions a request, by callgrind, in the serve process). Here
//! eight bytes are checked at once, and a run of bytes that need no escape is copied whole.
//!
//! Everything else is written as `serde_json` writes it (the same escapes, lowercase `\u00XX`
//! hex, `null` for absent values and non-finite floats, map keys quoted), so a reply is the
//! same bytes either way; the tests compare the two on generated values.

use serde::Serialize;
use serde::ser::{self, Impossible};

/// Why a value could not be written: only a map key that is not a string, number or
/// boolean, or an error of the value's own `Serialize`.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Error(String);

impl ser::Error for Error {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        Error(msg.to_string())
    }
}

/// `value` as compact JSON.
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, Error> {
    let mut out = Vec::with_capacity(1024);
    value.serialize(&mut Writer { out: &mut out })?;
    Ok(out)
}

/// Writes a string, quoted and escaped, to `out`.
///
/// Most strings of a reply (its keys, ids, realms, numbers) need no escape and are copied
/// whole; the escaping loop is a function of its own, so that this common path saves and
/// restores none of the registers that loop needs (about 40 instructions a string, by
/// callgrind, with the loop inline).
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    if needs_no_escape(bytes) {
        out.reserve(bytes.len() + 2);
        out.push(b'"');
        out.extend_from_slice(bytes);
        out.push(b'"');
    } else {
        write_escaped(out, bytes);
    }
}

/// Writes `bytes`, quoted, escaping the bytes that need it: runs of bytes that need none,
/// found a word at a time, are copied whole.
#[cold]
#[inline(never)]
fn write_escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    // `run` is where the bytes not yet copied start.
    let (mut run, mut i) = (0, 0);
    while i < bytes.len() {
        if let Some(word) = bytes.get(i..i + 8) {
            let word = u64::from_le_bytes(word.try_into().unwrap_or([0; 8]));
            if !any_needs_escape(word) {
                i += 8;
                continue;
            }
        }
        let b = bytes[i];
        let escape = ESCAPE[b as usize];
        if escape == 0 {
            i += 1;
            continue;
        }
        out.extend_from_slice(&bytes[run..i]);
        match escape {
            b'u' => {
                out.extend_from_slice(b"\\u00");
                out.push(HEX[(b >> 4) as usize]);
                out.push(HEX[(b & 0xf) as usize]);
            }
            short => out.extend_from_slice(&[b'\\', short]),
        }
        i += 1;
        run = i;
    }
    out.extend_from_slice(&bytes[run..]);
    out.push(b'"');
}

/// Whether no byte of `bytes` needs an escape, read a word at a time: the last word
/// overlaps the one before it, and a string shorter than a word is read as a shorter word
/// (or, under four bytes, byte by byte), so no byte is looked at alone that a word could
/// cover.
pub(crate) fn needs_no_escape(bytes: &[u8]) -> bool {
    let n = bytes.len();
    let word = |at: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&bytes[at..at + 8]);
        u64::from_le_bytes(w)
    };
    if n >= 8 {
        let mut at = 0;
        while at + 8 < n {
            if any_needs_escape(word(at)) {
                return false;
            }
            at += 8;
        }
        return !any_needs_escape(word(n - 8));
    }
    if n >= 4 {
        let half = |at: usize| {
            let mut w = [0u8; 4];
            w.copy_from_slice(&bytes[at..at + 4]);
            u64::from(u32::from_le_bytes(w))
        };
        // The two halves, overlapping when under eight bytes, make one word.
        return !any_needs_escape(half(0) | (half(n - 4) << 32));
    }
    bytes.iter().all(|&b| ESCAPE[b as usize] == 0)
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Whether any of the eight bytes of `word` is below 0x20, a `"` or a `\`. Each test is the
/// classic "has a zero byte" bit trick, exact as a yes or no (a borrow can mark a byte above
/// a true match, never a word without one); bytes of 0x80 and above never match.
fn any_needs_escape(word: u64) -> bool {
    let has_zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGHS;
    let below_space = word.wrapping_sub(ONES * 0x20) & !word & HIGHS;
    (below_space
        | has_zero(word ^ (ONES * u64::from(b'"')))
        | has_zero(word ^ (ONES * u64::from(b'\\'))))
        != 0
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// For each byte: 0 when it is written as it is, else the letter of its escape (`u` for
/// `\u00XX`), as `serde_json` escapes.
static ESCAPE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 0x20 {
        t[b] = b'u';
        b += 1;
    }
    t[0x08] = b'b';
    t[0x09] = b't';
    t[0x0a] = b'n';
    t[0x0c] = b'f';
    t[0x0d] = b'r';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t
};

struct Writer<'o> {
    out: &'o mut Vec<u8>,
}

impl<'o> Writer<'o> {
    fn integer(&mut self, v: impl itoa::Integer) {
        self.out
            .extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
    }

    /// A float as `serde_json` writes one (shortest round trip; `null` when not finite).
    fn float<F: Serialize>(&mut self, v: F) -> Result<(), Error> {
        serde_json::to_writer(&mut *self.out, &v).map_err(|e| Error(e.to_string()))
    }

    fn open(&mut self, bracket: u8, variant: Option<&str>) -> Compound<'_, 'o> {
        if let Some(variant) = variant {
            self.out.push(b'{');
            write_str(self.out, variant);
            self.out.push(b':');
        }
        self.out.push(bracket);
        Compound {
            writer: self,
            first: true,
            in_variant: variant.is_some(),
        }
    }
}

macro_rules! integers {
    ($($method:ident: $t:ty),*) => {
        $(fn $method(self, v: $t) -> Result<(), Error> {
            self.integer(v);
            Ok(())
        })*
    };
}

impl<'a, 'o> ser::Serializer for &'a mut Writer<'o> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Compound<'a, 'o>;
    type SerializeTuple = Compound<'a, 'o>;
    type SerializeTupleStruct = Compound<'a, 'o>;
    type SerializeTupleVariant = Compound<'a, 'o>;
    type SerializeMap = Compound<'a, 'o>;
    type SerializeStruct = Compound<'a, 'o>;
    type SerializeStructVariant = Compound<'a, 'o>;

    fn serialize_bool(self, v: bool) -> Result<(), Error> {
        self.out
            .extend_from_slice(if v { b"true" } else { b"false" });
        Ok(())
    }

    integers!(serialize_i8: i8, serialize_i16: i16, serialize_i32: i32, serialize_i64: i64,
        serialize_i128: i128, serialize_u8: u8, serialize_u16: u16, serialize_u32: u32,
        serialize_u64: u64, serialize_u128: u128);

    fn serialize_f32(self, v: f32) -> Result<(), Error> {
        self.float(v)
    }

    fn serialize_f64(self, v: f64) -> Result<(), Error> {
        self.float(v)
    }

    fn serialize_char(self, v: char) -> Result<(), Error> {
        write_str(self.out, v.encode_utf8(&mut [0; 4]));
        Ok(())
    }

    fn serialize_str(self, v: &str) -> Result<(), Error> {
        write_str(self.out, v);
        Ok(())
    }

    fn serialize_bytes(self, v: &[u8]) -> Result<(), Error> {
        use ser::SerializeSeq;
        let mut seq = self.serialize_seq(Some(v.len()))?;
        for b in v {
            seq.serialize_element(b)?;
        }
        seq.end()
    }

    fn serialize_none(self) -> Result<(), Error> {
        self.serialize_unit()
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<(), Error> {
        self.out.extend_from_slice(b"null");
        Ok(())
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), Error> {
        self.serialize_unit()
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), Error> {
        self.serialize_str(variant)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.out.push(b'{');
        write_str(self.out, variant);
        self.out.push(b':');
        value.serialize(&mut *self)?;
        self.out.push(b'}');
        Ok(())
    }

    fn serialize_seq(self, _len: Option<usize>) -> Result<Compound<'a, 'o>, Error> {
        Ok(self.open(b'[', None))
    }

    fn serialize_tuple(self, len: usize) -> Result<Compound<'a, 'o>, Error> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<Compound<'a, 'o>, Error> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'a, 'o>, Error> {
        Ok(self.open(b'[', Some(variant)))
    }

    fn serialize_map(self, _len: Option<usize>) -> Result<Compound<'a, 'o>, Error> {
        Ok(self.open(b'{', None))
    }

    fn serialize_struct(self, _name: &'static str, len: usize) -> Result<Compound<'a, 'o>, Error> {
        self.serialize_map(Some(len))
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'a, 'o>, Error> {
        Ok(self.open(b'{', Some(variant)))
    }
}

/// An array or object being written: `first` until its first element, and whether it is an
/// enum variant's, whose own object closes after it.
struct Compound<'a, 'o> {
    writer: &'a mut Writer<'o>,
    first: bool,
    in_variant: bool,
}

impl Compound<'_, '_> {
    fn separator(&mut self) {
        if !std::mem::take(&mut self.first) {
            self.writer.out.push(b',');
        }
    }

    fn close(self, bracket: u8) -> Result<(), Error> {
        self.writer.out.push(bracket);
        if self.in_variant {
            self.writer.out.push(b'}');
        }
        Ok(())
    }

    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.separator();
        value.serialize(&mut *self.writer)
    }

    fn field<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) -> Result<(), Error> {
        self.separator();
        write_str(self.writer.out, key);
        self.writer.out.push(b':');
        value.serialize(&mut *self.writer)
    }
}

/// The four kinds of array serde has: elements after a comma, then the bracket.
macro_rules! arrays {
    ($($kind:ident: $method:ident),*) => {
        $(impl ser::$kind for Compound<'_, '_> {
            type Ok = ();
            type Error = Error;
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
                self.element(value)
            }
            fn end(self) -> Result<(), Error> {
                self.close(b']')
            }
        })*
    };
}

arrays!(SerializeSeq: serialize_element, SerializeTuple: serialize_element,
    SerializeTupleStruct: serialize_field, SerializeTupleVariant: serialize_field);

impl ser::SerializeMap for Compound<'_, '_> {
    type Ok = ();
    type Error = Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        self.separator();
        key.serialize(MapKey(self.writer.out))
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.writer.out.push(b':');
        value.serialize(&mut *self.writer)
    }
    fn end(self) -> Result<(), Error> {
        self.close(b'}')
    }
}

/// The two kinds of struct serde has: fields named by static keys, then the brace.
macro_rules! structs {
    ($($kind:ident),*) => {
        $(impl ser::$kind for Compound<'_, '_> {
            type Ok = ();
            type Error = Error;
            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                key: &'static str,
                value: &T,
            ) -> Result<(), Error> {
                self.field(key, value)
            }
            fn end(self) -> Result<(), Error> {
                self.close(b'}')
            }
        })*
    };
}

structs!(SerializeStruct, SerializeStructVariant);

/// A map key: JSON keys are strings, so numbers and booleans are written quoted, as
/// `serde_json` does; anything else (but an `Option`'s or newtype's content) is an error.
struct MapKey<'o>(&'o mut Vec<u8>);

impl MapKey<'_> {
    fn quoted(self, text: &str) -> Result<(), Error> {
        self.0.push(b'"');
        self.0.extend_from_slice(text.as_bytes());
        self.0.push(b'"');
        Ok(())
    }

    /// A float key, quoted as `serde_json` writes a float; one that is not finite is an error.
    fn float<F: Serialize>(self, finite: bool, v: F) -> Result<(), Error> {
        if !finite {
            return Err(Error("float key must be finite (got NaN or +/-inf)".into()));
        }
        let text = serde_json::to_string(&v).map_err(|e| Error(e.to_string()))?;
        self.quoted(&text)
    }
}

fn key_must_be_a_string() -> Error {
    Error("key must be a string".into())
}

macro_rules! integer_keys {
    ($($method:ident: $t:ty),*) => {
        $(fn $method(self, v: $t) -> Result<(), Error> {
            self.quoted(itoa::Buffer::new().format(v))
        })*
    };
}

impl ser::Serializer for MapKey<'_> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Impossible<(), Error>;
    type SerializeTuple = Impossible<(), Error>;
    type SerializeTupleStruct = Impossible<(), Error>;
    type SerializeTupleVariant = Impossible<(), Error>;
    type SerializeMap = Impossible<(), Error>;
    type SerializeStruct = Impossible<(), Error>;
    type SerializeStructVariant = Impossible<(), Error>;

    fn serialize_str(self, v: &str) -> Result<(), Error> {
        write_str(self.0, v);
        Ok(())
    }

    fn serialize_char(self, v: char) -> Result<(), Error> {
        write_str(self.0, v.encode_utf8(&mut [0; 4]));
        Ok(())
    }

    fn serialize_bool(self, v: bool) -> Result<(), Error> {
        self.quoted(if v { "true" } else { "false" })
    }

    integer_keys!(serialize_i8: i8, serialize_i16: i16, serialize_i32: i32, serialize_i64: i64,
        serialize_i128: i128, serialize_u8: u8, serialize_u16: u16, serialize_u32: u32,
        serialize_u64: u64, serialize_u128: u128);

    fn serialize_f32(self, v: f32) -> Result<(), Error> {
        self.float(v.is_finite(), v)
    }

    fn serialize_f64(self, v: f64) -> Result<(), Error> {
        self.float(v.is_finite(), v)
    }

    fn serialize_bytes(self, _v: &[u8]) -> Result<(), Error> {
        Err(key_must_be_a_string())
    }

    fn serialize_none(self) -> Result<(), Error> {
        Err(key_must_be_a_string())
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<(), Error> {
        Err(key_must_be_a_string())
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), Error> {
        Err(key_must_be_a_string())
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), Error> {
        self.serialize_str(variant)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<(), Error> {
        Err(key_must_be_a_string())
    }

    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq, Error> {
        Err(key_must_be_a_string())
    }

    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple, Error> {
        Err(key_must_be_a_string())
    }

    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleStruct, Error> {
        Err(key_must_be_a_string())
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, Error> {
        Err(key_must_be_a_string())
    }

    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, Error> {
        Err(key_must_be_a_string())
    }

    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStruct, Error> {
        Err(key_must_be_a_string())
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, Error> {
        Err(key_must_be_a_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::{Value, json};

    fn same_as_serde_json<T: Serialize + ?Sized>(value: &T) {
        let ours = to_vec(value).map(String::from_utf8);
        let theirs = serde_json::to_vec(value).map(String::from_utf8);
        match (ours, theirs) {
            (Ok(Ok(ours)), Ok(Ok(theirs))) => assert_eq!(ours, theirs),
            (ours, theirs) => panic!("ours {ours:?}, serde_json's {theirs:?}"),
        }
    }

    #[test]
    fn every_ascii_byte_at_every_place_of_strings_up_to_two_words_long() {
        for len in 0..=17 {
            same_as_serde_json(&"é".repeat(len));
            for at in 0..len {
                for b in 0u8..0x80 {
                    let mut s = "abcdefghijklmnopq"[..len].to_owned();
                    s.replace_range(at..at + 1, &char::from(b).to_string());
                    same_as_serde_json(&s);
                }
            }
        }
    }

    #[test]
    fn escapes_as_serde_json_does() {
        let written = to_vec("a\"b\\c\u{1}\u{1f}\n\t\r\u{8}\u{c}\u{7f}é😀").unwrap();
        assert_eq!(
            String::from_utf8(written).unwrap(),
            concat!(r#""a\"b\\c\u0001\u001f\n\t\r\b\f"#, "\u{7f}é😀\"")
        );
    }

    #[test]
    fn values_of_every_kind() {
        same_as_serde_json(&json!({
            "s": "x", "n": null, "t": true, "f": false, "i": -12, "u": 18446744073709551615u64,
            "x": 1.5, "e": 1e300, "a": [], "o": {}, "nested": [{"k": ["v", 1, [null]]}]
        }));
        same_as_serde_json(&(1u8, 'c', Some("s"), None::<u8>, ()));
        same_as_serde_json(&std::collections::BTreeMap::from([(1, "one"), (-2, "two")]));
        same_as_serde_json(&std::collections::BTreeMap::from([(true, 1)]));
        same_as_serde_json(&[f64::NAN, f64::INFINITY, 0.1, -0.0]);
        same_as_serde_json(&[0.25f32, f32::NAN]);
    }

    #[derive(Serialize)]
    enum Shape {
        Unit,
        New(u8),
        Tuple(u8, &'static str),
        Struct { a: u8, b: Vec<u8> },
    }

    #[derive(Serialize)]
    struct Named<'a> {
        name: &'a str,
        shapes: Vec<Shape>,
        bytes: &'a [u8],
    }

    #[test]
    fn structs_and_enums() {
        same_as_serde_json(&Named {
            name: "n\"",
            shapes: vec![
                Shape::Unit,
                Shape::New(1),
                Shape::Tuple(2, "t"),
                Shape::Struct { a: 3, b: vec![] },
            ],
            bytes: b"ab",
        });
    }

    #[test]
    fn a_key_that_is_not_a_string_is_an_error() {
        let map = std::collections::BTreeMap::from([((1, 2), 3)]);
        assert_eq!(
            to_vec(&map).unwrap_err().to_string(),
            "key must be a string"
        );
        let nan = NumberKeys(vec![(f64::NAN, 1)]);
        assert_eq!(
            to_vec(&nan).unwrap_err().to_string(),
            "float key must be finite (got NaN or +/-inf)"
        );
        assert_eq!(
            serde_json::to_vec(&nan).unwrap_err().to_string(),
            "float key must be finite (got NaN or +/-inf)"
        );
    }

    /// A map whose keys are any `Serialize`, in the given order.
    struct NumberKeys<K>(Vec<(K, u8)>);

    impl<K: Serialize> Serialize for NumberKeys<K> {
        fn serialize<S: ser::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            use ser::SerializeMap;
            let mut m = s.serialize_map(Some(self.0.len()))?;
            for (k, v) in &self.0 {
                m.serialize_entry(k, v)?;
            }
            m.end()
        }
    }

    #[test]
    fn float_and_optional_keys_are_written_as_serde_json_writes_them() {
        same_as_serde_json(&NumberKeys(vec![(0.5, 1), (-1e21, 2), (3.0, 3)]));
        same_as_serde_json(&NumberKeys(vec![(0.25f32, 1)]));
        same_as_serde_json(&NumberKeys(vec![(Some("k"), 1)]));
    }

    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            any::<String>().prop_map(Value::String),
            "[ -~\\x00-\\x1f\"\\\\é]{0,40}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
                prop::collection::vec(("[ -~\\x00-\\x1f]{0,12}", inner), 0..8)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn any_value_is_written_as_serde_json_writes_it(v in value()) {
            same_as_serde_json(&v);
        }
    }
}
