//! [`Document`]: a suite as written, without building its whole tree. The
//! top-level keys are JSON values; the items of a `tests` list stay compact
//! JSON text until the parser reads them one at a time, so a suite of a
//! million tests never exists as a million-node tree: a 22 MB suite costs
//! about its own size, not gigabytes.
//!
//! Read from JSON (an object naming a key twice is refused) or YAML (the
//! budgets of [`crate::yaml`]) through one `Deserialize`; written back as
//! compact JSON with its keys in their order.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::common::json::Strict;

/// A suite document.
#[derive(Debug, Clone, Default)]
pub struct Document {
    /// Top-level keys in order; a `tests` list is `null` here, its items
    /// in `tests`.
    root: Map<String, Value>,
    /// The items of a `tests` list, each a compact JSON text.
    tests: Option<Vec<Box<RawValue>>>,
}

/// The `tests` key as the parser sees it.
pub(crate) enum Tests<'a> {
    /// A list: its items, read one at a time.
    Items(&'a [Box<RawValue>]),
    /// Anything else (a `file://` reference, a CSV block), or absent.
    Value(Option<&'a Value>),
}

impl Document {
    /// Reads JSON text, refusing duplicate keys.
    pub fn from_json(text: &str) -> Result<Self, String> {
        let mut de = serde_json::Deserializer::from_str(text);
        let doc = Seed.deserialize(&mut de).map_err(|e| e.to_string())?;
        de.end().map_err(|e| e.to_string())?;
        Ok(doc)
    }

    /// Reads YAML (or JSON) text as promptfoo's js-yaml does.
    pub fn from_yaml(text: &str) -> Result<Self, String> {
        crate::yaml::from_str_seed(text, Seed).map_err(|e| {
            // An empty document never reaches the visitor: say what it is.
            match crate::yaml::from_str(text) {
                Ok(v) if !v.is_object() => not_a_mapping(&v),
                _ => e,
            }
        })
    }

    /// A document from a value already built (`promptgauge run` after it
    /// inlined the suite's files): a mapping, or the reason it is not one.
    pub fn from_value(value: Value) -> Result<Self, String> {
        let Value::Object(mut root) = value else {
            return Err(not_a_mapping(&value));
        };
        let tests = match root.get_mut("tests") {
            Some(t @ Value::Array(_)) => {
                let Value::Array(items) = t.take() else {
                    unreachable!("matched an array")
                };
                let raw = items
                    .iter()
                    .map(serde_json::value::to_raw_value)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| e.to_string())?;
                Some(raw)
            }
            _ => None,
        };
        Ok(Self { root, tests })
    }

    /// The top-level keys (a `tests` list shows as `null`).
    pub fn root(&self) -> &Map<String, Value> {
        &self.root
    }

    /// The top-level keys, to change one (`providers`).
    pub fn root_mut(&mut self) -> &mut Map<String, Value> {
        &mut self.root
    }

    /// The `tests` key as the parser reads it.
    pub(crate) fn tests(&self) -> Tests<'_> {
        match &self.tests {
            Some(items) => Tests::Items(items),
            None => Tests::Value(self.root.get("tests")),
        }
    }

    /// How many items a `tests` list has (0 when it is not a list).
    pub fn test_items(&self) -> usize {
        self.tests.as_ref().map_or(0, Vec::len)
    }

    /// The whole document as one value (for callers that edit it freely).
    pub fn into_value(self) -> Value {
        let mut root = self.root;
        if let Some(items) = self.tests {
            let parsed = items
                .iter()
                .map(|t| serde_json::from_str(t.get()).unwrap_or(Value::Null))
                .collect();
            root.insert("tests".to_owned(), Value::Array(parsed));
        }
        Value::Object(root)
    }
}

fn not_a_mapping(v: &Value) -> String {
    format!(
        "a suite must be a mapping of keys, got {}",
        crate::common::json::kind(v)
    )
}

/// Compact JSON, keys in their order, `tests` items as they were read.
impl fmt::Display for Document {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, (key, value)) in self.root.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{}:", Value::String(key.clone()))?;
            match (&self.tests, key.as_str()) {
                (Some(items), "tests") => {
                    f.write_str("[")?;
                    for (j, item) in items.iter().enumerate() {
                        if j > 0 {
                            f.write_str(",")?;
                        }
                        f.write_str(item.get())?;
                    }
                    f.write_str("]")?;
                }
                _ => write!(f, "{value}")?,
            }
        }
        f.write_str("}")
    }
}

/// A request body that carries a suite under `suite` (`POST
/// /api/executions`): the suite read as a [`Document`] as the body
/// streams by, the other fields as values. A duplicate key anywhere is
/// refused.
#[derive(Debug, Default)]
pub struct Envelope {
    /// Every field but `suite`, in order.
    pub fields: Map<String, Value>,
    /// `suite`, when given.
    pub suite: Option<Embedded>,
}

/// What `suite` holds.
#[derive(Debug)]
pub enum Embedded {
    /// A suite written as JSON within the body.
    Document(Document),
    /// A suite as text (YAML or JSON).
    Text(String),
    /// Anything else, for the caller to refuse.
    Other(Value),
}

impl Envelope {
    /// Reads a JSON body.
    pub fn from_json(bytes: &[u8]) -> Result<Self, String> {
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let envelope = de
            .deserialize_map(EnvelopeVisitor)
            .map_err(|e| e.to_string())?;
        de.end().map_err(|e| e.to_string())?;
        Ok(envelope)
    }
}

struct EnvelopeVisitor;

impl<'de> Visitor<'de> for EnvelopeVisitor {
    type Value = Envelope;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Envelope, A::Error> {
        let mut out = Envelope::default();
        while let Some(key) = map.next_key::<String>()? {
            let taken = out.fields.contains_key(&key) || (key == "suite" && out.suite.is_some());
            if taken {
                let shown: String = key.chars().take(64).collect();
                return Err(de::Error::custom(format_args!(
                    "duplicate key {shown:?} in an object"
                )));
            }
            if key == "suite" {
                out.suite = Some(map.next_value_seed(EmbeddedSeed)?);
            } else {
                let value = map.next_value_seed(Strict)?;
                out.fields.insert(key, value);
            }
        }
        Ok(out)
    }
}

struct EmbeddedSeed;

impl<'de> DeserializeSeed<'de> for EmbeddedSeed {
    type Value = Embedded;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Embedded, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for EmbeddedSeed {
    type Value = Embedded;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a suite: an object or YAML/JSON text")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Embedded, A::Error> {
        Seed.visit_map(map).map(Embedded::Document)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Embedded, E> {
        Ok(Embedded::Text(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Embedded, E> {
        Ok(Embedded::Text(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Embedded, A::Error> {
        Strict.visit_seq(seq).map(Embedded::Other)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Embedded, E> {
        Ok(Embedded::Other(Value::Bool(v)))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Embedded, E> {
        Ok(Embedded::Other(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Embedded, E> {
        Ok(Embedded::Other(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Embedded, E> {
        Ok(Embedded::Other(v.into()))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Embedded, E> {
        Ok(Embedded::Other(Value::Null))
    }
}

/// Reads a document: a mapping whose `tests` list items become compact
/// text one at a time.
pub(crate) struct Seed;

impl<'de> DeserializeSeed<'de> for Seed {
    type Value = Document;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Document, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seed {
    type Value = Document;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a suite: a mapping of keys (prompts, providers, tests, ...)")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Document, A::Error> {
        Err(de::Error::custom(not_a_mapping(&Value::Array(Vec::new()))))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Document, E> {
        Err(E::custom(not_a_mapping(&Value::String(String::new()))))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Document, E> {
        Err(E::custom(not_a_mapping(&Value::Bool(v))))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Document, E> {
        Err(E::custom(not_a_mapping(&v.into())))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Document, E> {
        Err(E::custom(not_a_mapping(&v.into())))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Document, E> {
        Err(E::custom(not_a_mapping(&v.into())))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Document, E> {
        Err(E::custom(not_a_mapping(&Value::Null)))
    }

    fn visit_none<E: de::Error>(self) -> Result<Document, E> {
        Err(E::custom(not_a_mapping(&Value::Null)))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Document, A::Error> {
        let mut doc = Document::default();
        while let Some(key) = map.next_key::<String>()? {
            if doc.root.contains_key(&key) {
                let shown: String = key.chars().take(64).collect();
                return Err(de::Error::custom(format_args!(
                    "duplicate key {shown:?} in an object"
                )));
            }
            if key == "tests" {
                match map.next_value_seed(TestsSeed)? {
                    TestsRead::Items(items) => {
                        doc.tests = Some(items);
                        doc.root.insert(key, Value::Null);
                    }
                    TestsRead::Other(v) => {
                        doc.root.insert(key, v);
                    }
                }
                continue;
            }
            let value = map.next_value_seed(Strict)?;
            doc.root.insert(key, value);
        }
        Ok(doc)
    }
}

enum TestsRead {
    Items(Vec<Box<RawValue>>),
    Other(Value),
}

/// `tests`: a list becomes compact texts, item by item; anything else a
/// value.
struct TestsSeed;

impl<'de> DeserializeSeed<'de> for TestsSeed {
    type Value = TestsRead;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<TestsRead, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for TestsSeed {
    type Value = TestsRead;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of tests, a file reference or a CSV block")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<TestsRead, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 20));
        while let Some(item) = seq.next_element_seed(Strict)? {
            let raw = serde_json::value::to_raw_value(&item).map_err(de::Error::custom)?;
            items.push(raw);
        }
        Ok(TestsRead::Items(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<TestsRead, A::Error> {
        Strict.visit_map(map).map(TestsRead::Other)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<TestsRead, E> {
        Ok(TestsRead::Other(Value::String(v.to_owned())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<TestsRead, E> {
        Ok(TestsRead::Other(Value::String(v)))
    }

    fn visit_unit<E: de::Error>(self) -> Result<TestsRead, E> {
        Ok(TestsRead::Other(Value::Null))
    }

    fn visit_none<E: de::Error>(self) -> Result<TestsRead, E> {
        Ok(TestsRead::Other(Value::Null))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<TestsRead, E> {
        Ok(TestsRead::Other(Value::Bool(v)))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<TestsRead, E> {
        Ok(TestsRead::Other(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<TestsRead, E> {
        Ok(TestsRead::Other(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<TestsRead, E> {
        Ok(TestsRead::Other(
            serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number),
        ))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn json_and_yaml_read_alike_and_write_back_in_order() {
        let json_text = r#"{"description":"d","prompts":["p {{x}}"],"tests":[{"vars":{"x":1}},{"vars":{"x":"two"}}],"providers":["echo"]}"#;
        let yaml_text = "description: d\nprompts: ['p {{x}}']\ntests:\n  - vars: {x: 1}\n  - vars: {x: two}\nproviders: [echo]\n";
        for doc in [
            Document::from_json(json_text).unwrap(),
            Document::from_yaml(yaml_text).unwrap(),
        ] {
            assert_eq!(doc.to_string(), json_text);
            assert_eq!(doc.test_items(), 2);
            assert_eq!(
                doc.clone().into_value(),
                serde_json::from_str::<Value>(json_text).unwrap()
            );
            let back = Document::from_value(doc.into_value()).unwrap();
            assert_eq!(back.to_string(), json_text);
        }
    }

    #[test]
    fn tests_that_are_not_a_list_stay_values_and_bad_documents_are_refused() {
        let doc = Document::from_json(r#"{"tests":"file://t.csv"}"#).unwrap();
        assert!(matches!(doc.tests(), Tests::Value(Some(Value::String(_)))));
        let doc = Document::from_json(r#"{"tests":{"csv":"a\n1\n"}}"#).unwrap();
        assert!(matches!(doc.tests(), Tests::Value(Some(Value::Object(_)))));
        assert!(matches!(
            Document::from_json("{}").unwrap().tests(),
            Tests::Value(None)
        ));
        for bad in [
            r#"{"a":1,"a":2}"#,
            r#"{"tests":[{"vars":{"x":1,"x":2}}]}"#,
            "[1]",
            "{} x",
        ] {
            assert!(Document::from_json(bad).is_err(), "{bad}");
        }
        assert!(Document::from_yaml("tests:\n  - {a: 1, a: 2}\n").is_err());
        assert!(Document::from_value(json!([1])).is_err());
    }
}
