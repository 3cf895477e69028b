//! Client commands: `{"op":"subscribe"|"unsubscribe"|"ping", ...}`, parsed
//! and validated into [`Command`], or a [`Rejection`] that names the
//! problem. Pure: no IO.

use serde_json::{Map, Value};

/// Longest request `id` echoed back, in characters.
const MAX_ID_CHARS: usize = 128;
/// Longest piece of client input quoted in an error message.
const QUOTE_CHARS: usize = 64;

/// A stream of events a client can subscribe to as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TopicName {
    /// Lifecycle and progress of every execution (not their results).
    Executions,
    /// Every result of every execution.
    Results,
    /// The monitor's alerts firing and resolving.
    Alerts,
    /// Benchmark runs.
    Benchmarks,
}

impl TopicName {
    /// Every topic, in index order.
    pub const ALL: [TopicName; 4] = [
        TopicName::Executions,
        TopicName::Results,
        TopicName::Alerts,
        TopicName::Benchmarks,
    ];

    /// Its name in commands.
    pub fn as_str(self) -> &'static str {
        match self {
            TopicName::Executions => "executions",
            TopicName::Results => "results",
            TopicName::Alerts => "alerts",
            TopicName::Benchmarks => "benchmarks",
        }
    }

    /// Its index in per-topic tables.
    pub(crate) fn index(self) -> usize {
        self as usize
    }

    fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// What a command asks.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Op {
    Subscribe {
        executions: Vec<i64>,
        topics: Vec<TopicName>,
    },
    Unsubscribe {
        executions: Vec<i64>,
        topics: Vec<TopicName>,
    },
    Ping,
}

/// A valid command.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Command {
    /// The client's request id as JSON, echoed in the reply.
    pub(crate) id: Option<String>,
    pub(crate) op: Op,
}

/// Why a command was refused: an `error` message's code and text.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Rejection {
    pub(crate) code: &'static str,
    pub(crate) message: String,
    /// The request id, when it could be read.
    pub(crate) id: Option<String>,
}

impl Rejection {
    pub(crate) fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            id: None,
        }
    }

    fn invalid(message: impl Into<String>) -> Self {
        Self::new("invalid_command", message)
    }
}

/// Parses one text message; `max_ids` bounds the executions it may name.
pub(crate) fn parse(text: &str, max_ids: usize) -> Result<Command, Rejection> {
    let value: Value = serde_json::from_str(text).map_err(|e| {
        Rejection::new(
            "bad_json",
            format!("message is not valid JSON: {e} (send an object such as {{\"op\":\"ping\"}})"),
        )
    })?;
    let Value::Object(obj) = value else {
        return Err(Rejection::invalid(format!(
            "expected a JSON object with \"op\", got {}",
            type_name(&value)
        )));
    };
    let id = request_id(&obj)?;
    parse_op(&obj, max_ids)
        .map_err(|mut r| {
            r.id = id.clone();
            r
        })
        .map(|op| Command { id, op })
}

fn parse_op(obj: &Map<String, Value>, max_ids: usize) -> Result<Op, Rejection> {
    let op = match obj.get("op") {
        Some(Value::String(op)) => op.as_str(),
        Some(other) => {
            return Err(Rejection::invalid(format!(
                "\"op\" must be a string, got {}",
                type_name(other)
            )));
        }
        None => {
            return Err(Rejection::invalid(
                "missing \"op\": one of subscribe, unsubscribe, ping",
            ));
        }
    };
    let allowed: &[&str] = match op {
        "ping" => &["op", "id"],
        "subscribe" | "unsubscribe" => &["op", "id", "executions", "topics"],
        other => {
            return Err(Rejection::new(
                "unknown_op",
                format!(
                    "unknown op {}: expected subscribe, unsubscribe or ping",
                    quote(other)
                ),
            ));
        }
    };
    if let Some(key) = obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(Rejection::invalid(format!(
            "unknown field {} for op {op} (allowed: {})",
            quote(key),
            allowed.join(", ")
        )));
    }
    if op == "ping" {
        return Ok(Op::Ping);
    }
    // Only subscribing is bounded by the limit: anything may be dropped.
    let max = if op == "subscribe" {
        max_ids
    } else {
        usize::MAX
    };
    let executions = match obj.get("executions") {
        None => Vec::new(),
        Some(v) => execution_ids(v, max)?,
    };
    let topics = match obj.get("topics") {
        None => Vec::new(),
        Some(v) => topics(v)?,
    };
    if executions.is_empty() && topics.is_empty() {
        return Err(Rejection::invalid(format!(
            "{op} needs \"executions\" (ids) or \"topics\" (executions, results, alerts, benchmarks)"
        )));
    }
    Ok(if op == "subscribe" {
        Op::Subscribe { executions, topics }
    } else {
        Op::Unsubscribe { executions, topics }
    })
}

/// The `id` to echo: a string or a number.
fn request_id(obj: &Map<String, Value>) -> Result<Option<String>, Rejection> {
    match obj.get("id") {
        None | Some(Value::Null) => Ok(None),
        Some(v @ Value::Number(_)) => Ok(Some(v.to_string())),
        Some(Value::String(s)) if s.chars().count() <= MAX_ID_CHARS => {
            Ok(Some(Value::String(s.clone()).to_string()))
        }
        Some(Value::String(_)) => Err(Rejection::invalid(format!(
            "\"id\" is longer than {MAX_ID_CHARS} characters"
        ))),
        Some(other) => Err(Rejection::invalid(format!(
            "\"id\" must be a string or a number, got {}",
            type_name(other)
        ))),
    }
}

/// Execution ids: positive integers, or strings of one.
fn execution_ids(v: &Value, max: usize) -> Result<Vec<i64>, Rejection> {
    let Value::Array(items) = v else {
        return Err(Rejection::invalid(format!(
            "\"executions\" must be an array of execution ids, got {}",
            type_name(v)
        )));
    };
    if items.len() > max {
        return Err(Rejection::new(
            "too_many_subscriptions",
            format!(
                "\"executions\" names {} ids; at most {max} per connection",
                items.len()
            ),
        ));
    }
    let mut ids = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let id = match item {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.trim().parse::<i64>().ok(),
            _ => None,
        }
        .filter(|id| *id > 0)
        .ok_or_else(|| {
            Rejection::invalid(format!(
                "executions[{i}] must be a positive integer id, got {}",
                quote_value(item)
            ))
        })?;
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    Ok(ids)
}

fn topics(v: &Value) -> Result<Vec<TopicName>, Rejection> {
    let Value::Array(items) = v else {
        return Err(Rejection::invalid(format!(
            "\"topics\" must be an array of topic names, got {}",
            type_name(v)
        )));
    };
    let mut topics = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let t = item.as_str().and_then(TopicName::parse).ok_or_else(|| {
            Rejection::invalid(format!(
                "topics[{i}] must be one of executions, results, alerts, benchmarks; got {}",
                quote_value(item)
            ))
        })?;
        if !topics.contains(&t) {
            topics.push(t);
        }
    }
    Ok(topics)
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A piece of client input, quoted and cut short for an error message
/// (the message is JSON-escaped when it is sent).
fn quote(s: &str) -> String {
    let mut q: String = s.chars().take(QUOTE_CHARS).collect();
    if q.len() < s.len() {
        q.push('…');
    }
    format!("{q:?}")
}

fn quote_value(v: &Value) -> String {
    match v {
        Value::String(s) => quote(s),
        other => quote(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> Command {
        parse(text, 100).unwrap_or_else(|e| panic!("{text}: {e:?}"))
    }

    fn err(text: &str) -> Rejection {
        parse(text, 100).expect_err(text)
    }

    #[test]
    fn subscribe_takes_ids_as_numbers_or_strings_and_topics() {
        let c = ok(
            r#"{"op":"subscribe","executions":[3,"4"," 3 "],"topics":["alerts","executions"],"id":"r1"}"#,
        );
        assert_eq!(c.id.as_deref(), Some(r#""r1""#));
        assert_eq!(
            c.op,
            Op::Subscribe {
                executions: vec![3, 4],
                topics: vec![TopicName::Alerts, TopicName::Executions]
            }
        );
        assert_eq!(ok(r#"{"op":"ping","id":7}"#).op, Op::Ping);
        assert_eq!(ok(r#"{"op":"ping","id":7}"#).id.as_deref(), Some("7"));
        assert!(matches!(
            ok(r#"{"op":"unsubscribe","topics":["results"]}"#).op,
            Op::Unsubscribe { .. }
        ));
    }

    #[test]
    fn bad_commands_are_refused_with_a_code_and_the_reason() {
        for (text, code, needle) in [
            ("{not json", "bad_json", "not valid JSON"),
            ("[1,2]", "invalid_command", "got an array"),
            (r#"{"op":"dance"}"#, "unknown_op", "\"dance\""),
            (r#"{"op":3}"#, "invalid_command", "must be a string"),
            (r#"{}"#, "invalid_command", "missing \"op\""),
            (
                r#"{"op":"subscribe"}"#,
                "invalid_command",
                "needs \"executions\"",
            ),
            (
                r#"{"op":"subscribe","executions":"7"}"#,
                "invalid_command",
                "must be an array",
            ),
            (
                r#"{"op":"subscribe","executions":[0]}"#,
                "invalid_command",
                "executions[0]",
            ),
            (
                r#"{"op":"subscribe","executions":[1.5]}"#,
                "invalid_command",
                "positive integer",
            ),
            (
                r#"{"op":"subscribe","executions":[true]}"#,
                "invalid_command",
                "executions[0]",
            ),
            (
                r#"{"op":"subscribe","topics":["everything"]}"#,
                "invalid_command",
                "\"everything\"",
            ),
            (
                r#"{"op":"subscribe","executions":[1],"exectuions":[2]}"#,
                "invalid_command",
                "unknown field \"exectuions\"",
            ),
            (
                r#"{"op":"ping","id":{"a":1}}"#,
                "invalid_command",
                "\"id\" must be",
            ),
        ] {
            let r = err(text);
            assert_eq!(r.code, code, "{text}: {r:?}");
            assert!(r.message.contains(needle), "{text}: {}", r.message);
        }
    }

    #[test]
    fn the_id_survives_a_refusal_and_hostile_input_is_cut_and_quoted() {
        let r = err(r#"{"op":"subscribe","id":"abc","topics":[1]}"#);
        assert_eq!(r.id.as_deref(), Some(r#""abc""#));
        let hostile = format!(
            r#"{{"op":"{}<script>\u0000\"; DROP TABLE executions;--"}}"#,
            "x".repeat(500)
        );
        let r = err(&hostile);
        assert_eq!(r.code, "unknown_op");
        assert!(r.message.len() < 200, "{}", r.message);
        let too_many: Vec<i64> = (1..=101).collect();
        let r = parse(
            &serde_json::json!({"op":"subscribe","executions":too_many}).to_string(),
            100,
        )
        .unwrap_err();
        assert_eq!(r.code, "too_many_subscriptions");
    }
}
