//! JSON values named in error messages, as API clients see them.

use serde_json::Value;

/// What kind of JSON value `v` is, for "must be X, got Y" messages.
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `v` quoted for a message, cut at 64 characters.
pub fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 64 {
        format!("{}…", s.chars().take(64).collect::<String>())
    } else {
        s
    }
}

/// Parses JSON into a value, refusing an object that names a key twice
/// (serde_json keeps the last one silently; a request whose meaning
/// depends on which one wins is refused instead).
pub fn from_slice_strict(bytes: &[u8]) -> Result<Value, serde_json::Error> {
    use serde::de::DeserializeSeed;
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = strict::Strict.deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

pub(crate) use strict::Strict;

mod strict {
    use std::fmt;

    use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
    use serde_json::{Map, Value};

    /// A `Value` seed that errors on a duplicate key at any depth.
    pub(crate) struct Strict;

    impl<'de> DeserializeSeed<'de> for Strict {
        type Value = Value;

        fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
            d.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for Strict {
        type Value = Value;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON value")
        }

        fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
            Ok(Value::Bool(v))
        }

        fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
            Ok(v.into())
        }

        fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
            Ok(v.into())
        }

        fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
            Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
        }

        fn visit_str<E>(self, v: &str) -> Result<Value, E> {
            Ok(Value::String(v.to_owned()))
        }

        fn visit_string<E>(self, v: String) -> Result<Value, E> {
            Ok(Value::String(v))
        }

        fn visit_unit<E>(self) -> Result<Value, E> {
            Ok(Value::Null)
        }

        fn visit_none<E>(self) -> Result<Value, E> {
            Ok(Value::Null)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
            let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
            while let Some(v) = seq.next_element_seed(Strict)? {
                items.push(v);
            }
            Ok(Value::Array(items))
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
            let mut out = Map::new();
            while let Some(key) = map.next_key::<String>()? {
                if out.contains_key(&key) {
                    let shown: String = key.chars().take(64).collect();
                    return Err(de::Error::custom(format_args!(
                        "duplicate key {shown:?} in an object"
                    )));
                }
                let value = map.next_value_seed(Strict)?;
                out.insert(key, value);
            }
            Ok(Value::Object(out))
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn duplicate_keys_are_refused_at_any_depth_and_the_rest_parses_as_serde_json_does() {
        for doc in [
            r#"{"a": 1, "b": [1, 2.5, -3, null, true], "c": {"d": "é\n"}}"#,
            r#"[{"x": 18446744073709551615}, 1e300, "s"]"#,
        ] {
            let strict = super::from_slice_strict(doc.as_bytes()).unwrap();
            let loose: serde_json::Value = serde_json::from_str(doc).unwrap();
            assert_eq!(strict, loose);
        }
        for doc in [r#"{"a": 1, "a": 2}"#, r#"{"x": [{"k": 1, "k": 1}]}"#] {
            let e = super::from_slice_strict(doc.as_bytes()).unwrap_err();
            assert!(e.to_string().contains("duplicate key"), "{e}");
        }
        assert!(super::from_slice_strict(b"{} x").is_err());
        assert_eq!(
            super::from_slice_strict(b"{\"a\":{}}").unwrap(),
            json!({"a": {}})
        );
    }
}
