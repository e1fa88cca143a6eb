//! Where an event goes that the stream refuses for good (a record over Kinesis's size limit, a
//! permanent rejection): kept whole, one object per event, so one poison event does not stop
//! its connector, and re-published by the `redrive` action once the cause is fixed.
//! S3 in production, memory in tests.

#[cfg(any(test, feature = "testkit"))]
pub mod memory;
pub mod s3;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use time::OffsetDateTime;
use tokio::time::Instant;

use crate::sink::Record;

/// The stream a refused record was written for; `redrive` sends it back there. A connector
/// publishing both TOTAL and OCSF keeps a refused event once per stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetStream {
    /// The event stream (TOTAL events, or the CLI's chosen format).
    #[default]
    Events,
    /// The OCSF stream.
    Ocsf,
}

impl TargetStream {
    pub const ALL: [TargetStream; 2] = [TargetStream::Events, TargetStream::Ocsf];

    /// The folder under the connector's prefix; event letters sit at the top.
    fn folder(self) -> &'static str {
        match self {
            TargetStream::Events => "",
            TargetStream::Ocsf => "ocsf/",
        }
    }
}

/// One refused event, whole: the record exactly as it was refused, and why.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeadLetter {
    pub connector_id: String,
    pub event_id: String,
    /// Letters written before there was an OCSF stream have none: they are events letters.
    #[serde(default)]
    pub stream: TargetStream,
    pub partition_key: String,
    /// Why the stream refused the record.
    pub reason: String,
    #[serde(with = "time::serde::rfc3339")]
    pub refused_at: OffsetDateTime,
    /// The record's data: one JSON event (normalized, or Okta's raw event).
    pub record: Box<RawValue>,
}

impl DeadLetter {
    /// A letter for `record`, whose data must be one JSON document (as every record is).
    pub fn new(
        connector_id: &str,
        stream: TargetStream,
        record: &Record,
        reason: String,
        refused_at: OffsetDateTime,
    ) -> Result<DeadLetter, DeadLetterError> {
        let text = std::str::from_utf8(&record.data)
            .ok()
            .map(str::trim_end)
            .and_then(|text| RawValue::from_string(text.to_owned()).ok())
            .ok_or_else(|| DeadLetterError::NotJson {
                event_id: record.event_id.clone(),
            })?;
        Ok(DeadLetter {
            connector_id: connector_id.to_owned(),
            event_id: record.event_id.clone(),
            stream,
            partition_key: record.partition_key.clone(),
            reason,
            refused_at,
            record: text,
        })
    }

    /// The record to publish again, as it was refused.
    pub fn to_record(&self) -> Record {
        let mut data = Vec::with_capacity(self.record.get().len() + 1);
        data.extend_from_slice(self.record.get().as_bytes());
        data.push(b'\n');
        Record {
            event_id: self.event_id.clone(),
            partition_key: self.partition_key.clone(),
            data,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DeadLetterError {
    #[error(
        "event {event_id} cannot be kept as a dead letter: its record is not one JSON document"
    )]
    NotJson { event_id: String },
    #[error("dead letter {key} is unreadable ({detail}); inspect the object and delete it once its event is re-published by hand")]
    Unreadable { key: String, detail: String },
    #[error("the dead-letter store did not answer before the deadline ({operation})")]
    Timeout { operation: &'static str },
    #[error("dead-letter store: {0}")]
    Service(String),
}

/// Keeps refused events until they are re-published.
#[async_trait]
pub trait DeadLetterStore: Send + Sync {
    /// Keeps `letter` under its connector, stream and event id; the same event again replaces it.
    async fn put(&self, letter: &DeadLetter, deadline: Instant) -> Result<(), DeadLetterError>;

    /// Event ids of the connector's letters for `stream`, in name order.
    async fn list(
        &self,
        connector_id: &str,
        stream: TargetStream,
        deadline: Instant,
    ) -> Result<Vec<String>, DeadLetterError>;

    async fn get(
        &self,
        connector_id: &str,
        stream: TargetStream,
        event_id: &str,
        deadline: Instant,
    ) -> Result<Option<DeadLetter>, DeadLetterError>;

    /// Forgets a letter whose event is in the stream again; deleting a missing one is fine.
    async fn delete(
        &self,
        connector_id: &str,
        stream: TargetStream,
        event_id: &str,
        deadline: Instant,
    ) -> Result<(), DeadLetterError>;
}

/// Object names: `<connector id>/<event id>.json` for the event stream and
/// `<connector id>/ocsf/<event id>.json` for the OCSF stream. Okta event ids are uuids; anything
/// outside `[A-Za-z0-9._-]` is percent-encoded so a name can never reach another connector's
/// prefix or another stream's folder.
pub fn object_key(connector_id: &str, stream: TargetStream, event_id: &str) -> String {
    format!(
        "{}{}.json",
        stream_prefix(connector_id, stream),
        encode(event_id)
    )
}

/// The prefix of every object name of one connector (what IAM scopes a connector session to).
pub fn connector_prefix(connector_id: &str) -> String {
    format!("{}/", encode(connector_id))
}

/// The prefix of one connector's letters for `stream`.
pub fn stream_prefix(connector_id: &str, stream: TargetStream) -> String {
    format!("{}{}", connector_prefix(connector_id), stream.folder())
}

/// The event id of an object name among `connector_id`'s letters for `stream`.
pub fn event_id_of(connector_id: &str, stream: TargetStream, key: &str) -> Option<String> {
    let name = key
        .strip_prefix(&stream_prefix(connector_id, stream))?
        .strip_suffix(".json")?;
    // An encoded event id holds no '/': a name with one belongs to another stream's folder.
    if name.contains('/') {
        return None;
    }
    decode(name)
}

fn encode(part: &str) -> String {
    let mut out = String::with_capacity(part.len());
    for byte in part.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn decode(part: &str) -> Option<String> {
    let bytes = part.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_per_connector_stream_and_event_and_read_back() {
        use TargetStream::{Events, Ocsf};
        assert_eq!(object_key("acme", Events, "a1b2-c3"), "acme/a1b2-c3.json");
        assert_eq!(
            object_key("acme", Ocsf, "a1b2-c3"),
            "acme/ocsf/a1b2-c3.json"
        );
        let odd = object_key("acme", Events, "../other/x y");
        assert!(!odd[5..].contains('/'), "{odd}");
        assert_eq!(
            event_id_of("acme", Events, &odd).as_deref(),
            Some("../other/x y")
        );
        assert_eq!(event_id_of("other", Events, &odd), None);
        assert_eq!(event_id_of("acme", Ocsf, &odd), None);
        let ocsf = object_key("acme", Ocsf, "e1");
        assert_eq!(
            event_id_of("acme", Events, &ocsf),
            None,
            "not an events letter"
        );
        assert_eq!(event_id_of("acme", Ocsf, &ocsf).as_deref(), Some("e1"));
    }

    #[test]
    fn a_letter_keeps_the_record_whole_and_gives_it_back() {
        let record = Record {
            event_id: "e1".into(),
            partition_key: "00u1".into(),
            data: b"{\"event_id\":\"e1\",\"big\":\"xxxx\"}\n".to_vec(),
        };
        let letter = DeadLetter::new(
            "acme",
            TargetStream::Ocsf,
            &record,
            "too big".into(),
            OffsetDateTime::UNIX_EPOCH,
        )
        .unwrap();
        let text = serde_json::to_string(&letter).unwrap();
        let back: DeadLetter = serde_json::from_str(&text).unwrap();
        assert_eq!(back.to_record(), record);
        assert_eq!(back.stream, TargetStream::Ocsf);
    }
}
