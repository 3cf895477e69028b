//! Outbound messages: built once, shared by every client that gets them.
//!
//! A message is one JSON object, `{"type","seq","ts",["execution"],["id"],
//! "data"}`, written once into a [`Bytes`] buffer that each client's frame
//! reuses without copying. Clients that negotiated compression get large
//! messages as raw DEFLATE in a binary frame; the compressed form is made
//! once, by the first client that needs it.

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::OnceLock;

use bytes::Bytes;
use flate2::Compression;
use flate2::write::DeflateEncoder;

/// Messages at least this long go compressed to clients that asked for it.
pub const COMPRESSION_THRESHOLD: usize = 1024;

/// One message, as it goes on the wire. Its `seq` is in the text: the hub
/// numbers every message it makes, so a client sees them in increasing
/// order (with gaps: other clients' messages).
#[derive(Debug)]
pub(crate) struct Message {
    /// Its `type`.
    pub(crate) kind: &'static str,
    /// The execution it is about, if any (progress is coalesced per execution).
    pub(crate) execution: Option<i64>,
    /// When the oldest event it carries happened, unix microseconds.
    pub(crate) at_us: i64,
    /// How many events it carries (a `result` message carries a batch).
    pub(crate) events: u32,
    /// The JSON text.
    pub(crate) text: Bytes,
    deflated: OnceLock<Bytes>,
}

/// A frame to write: the JSON as text, or compressed as binary.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// A text frame with the JSON.
    Text(Bytes),
    /// A binary frame with the JSON in raw DEFLATE (RFC 1951).
    Deflated(Bytes),
}

impl Frame {
    /// Payload bytes.
    pub fn len(&self) -> usize {
        match self {
            Frame::Text(b) | Frame::Deflated(b) => b.len(),
        }
    }

    /// Whether the payload is empty (never, for a built message).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What a message says, before it is numbered.
pub(crate) struct Draft<'a> {
    pub(crate) kind: &'static str,
    pub(crate) execution: Option<i64>,
    pub(crate) at_us: i64,
    pub(crate) events: u32,
    /// The request id a reply echoes, as JSON.
    pub(crate) id: Option<&'a str>,
    /// `data` as JSON text.
    pub(crate) data: &'a str,
}

impl Message {
    /// Writes the message with sequence number `seq`.
    pub(crate) fn build(seq: u64, d: Draft<'_>) -> Self {
        let mut s = String::with_capacity(d.data.len() + 96);
        let _ = write!(
            s,
            r#"{{"type":"{}","seq":{seq},"ts":{}.{:03}"#,
            d.kind,
            d.at_us.div_euclid(1000),
            d.at_us.rem_euclid(1000)
        );
        if let Some(e) = d.execution {
            let _ = write!(s, r#","execution":{e}"#);
        }
        if let Some(id) = d.id {
            s.push_str(r#","id":"#);
            s.push_str(id);
        }
        s.push_str(r#","data":"#);
        s.push_str(d.data);
        s.push('}');
        Self {
            kind: d.kind,
            execution: d.execution,
            at_us: d.at_us,
            events: d.events,
            text: Bytes::from(s),
            deflated: OnceLock::new(),
        }
    }

    /// The frame for a client: compressed when it asked for compression
    /// and the message is large enough to gain from it.
    pub(crate) fn frame(&self, compress: bool) -> Frame {
        if compress && self.text.len() >= COMPRESSION_THRESHOLD {
            Frame::Deflated(self.deflated.get_or_init(|| deflate(&self.text)).clone())
        } else {
            Frame::Text(self.text.clone())
        }
    }
}

/// Raw DEFLATE at the fast level: JSON shrinks 4-10x, and speed matters
/// more than the last percent for a stream of small messages.
fn deflate(text: &[u8]) -> Bytes {
    let mut enc = DeflateEncoder::new(Vec::with_capacity(text.len() / 4), Compression::fast());
    // Writing to a Vec cannot fail.
    let _ = enc.write_all(text);
    Bytes::from(enc.finish().unwrap_or_default())
}

/// Inflates a frame a compressing client received.
pub fn inflate(data: &[u8], limit: usize) -> std::io::Result<String> {
    use std::io::Read as _;
    let mut out = String::new();
    flate2::read::DeflateDecoder::new(data)
        .take(limit as u64 + 1)
        .read_to_string(&mut out)?;
    if out.len() > limit {
        return Err(std::io::Error::other(format!(
            "inflated message exceeds {limit} bytes"
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft<'a>(data: &'a str, id: Option<&'a str>) -> Draft<'a> {
        Draft {
            kind: "execution.progress",
            execution: Some(7),
            at_us: 1_764_672_000_123_456,
            events: 1,
            id,
            data,
        }
    }

    #[test]
    fn a_message_is_one_json_object_with_type_seq_and_server_time() {
        let m = Message::build(42, draft(r#"{"completed":3}"#, Some(r#""req-1""#)));
        let v: serde_json::Value = serde_json::from_slice(&m.text).unwrap();
        assert_eq!(v["type"], "execution.progress");
        assert_eq!(v["seq"], 42);
        assert_eq!(v["ts"].as_f64().unwrap(), 1_764_672_000_123.456);
        assert_eq!(v["execution"], 7);
        assert_eq!(v["id"], "req-1");
        assert_eq!(v["data"]["completed"], 3);
    }

    #[test]
    fn small_messages_stay_text_and_large_ones_deflate_once_for_every_client() {
        let small = Message::build(1, draft("{}", None));
        assert!(matches!(small.frame(true), Frame::Text(_)));
        let big_data = format!(
            "[{}]",
            vec![r#"{"status":"passed","score":1}"#; 200].join(",")
        );
        let big = Message::build(2, draft(&big_data, None));
        assert!(matches!(big.frame(false), Frame::Text(_)));
        let (Frame::Deflated(a), Frame::Deflated(b)) = (big.frame(true), big.frame(true)) else {
            panic!("large messages deflate");
        };
        assert_eq!(a.as_ptr(), b.as_ptr(), "compressed once, shared");
        assert!(
            a.len() * 4 < big.text.len(),
            "{} -> {}",
            big.text.len(),
            a.len()
        );
        assert_eq!(inflate(&a, 1 << 20).unwrap().as_bytes(), &big.text[..]);
        assert!(inflate(&a, 100).is_err(), "the inflate limit holds");
    }
}
