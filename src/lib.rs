//! okta-ingest: moves Okta System Log events into Kinesis without losing or silently duplicating any.
//!
//! Each outside system sits behind one small trait with a real implementation and an in-memory twin:
//! [`okta::LogSource`], [`cursor::CursorStore`], [`secrets::SecretSource`] and [`sink::EventSink`].
//! [`drain`] holds the logic and is generic over all four.

pub mod config;
pub mod cursor;
pub mod normalize;
pub mod okta;
pub mod secrets;
pub mod sink;

pub mod cli;
pub mod connector;
pub mod drain;
pub mod invocation;
pub mod lambda;
pub mod settings;
pub mod telemetry;
