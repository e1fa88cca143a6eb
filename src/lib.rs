//! okta-ingest: moves Okta System Log events into Kinesis without losing or silently duplicating any.
//!
//! # Layout
//!
//! Imports point one way: entry points → actions → drain → ports.
//!
//! - Entry points: [`lambda`] (the Lambda handler, its EMF metrics and error diagnostics) and
//!   [`cli`] (the local command, and `connectors` for a deployed fleet); `main.rs` picks one. [`settings`]
//!   reads the environment, [`invocation`] parses what an invocation asks for, [`telemetry`]
//!   sets up logging.
//! - Actions: [`actions`] — [`actions::Connector::handle`] dispatches to one file per action
//!   (`poll`, `backfill`, `test_connection`, `disable`, `resume`, `redrive`), with lease claim/release
//!   (`lease.rs`), the per-connector Okta source cache (`sources.rs`) and the summary types.
//! - Core: [`drain`] — the loop that fetches, formats, publishes and checkpoints pages; and
//!   [`normalize`] — raw Okta events into TOTAL v1 events (subject choice, one builder per
//!   section) and, in `normalize::ocsf`, into OCSF 1.8.0 records.
//! - Fleet mode: [`fleet`] — per-connector AWS credentials (`fleet::scoped`, an assumed role
//!   tagged with the connector id, serving the secret, cursor and dead-letter ports), the
//!   scheduler port (EventBridge Scheduler; memory) and the `connectors` commands.
//! - Ports, each a small trait with a real implementation and an in-memory twin:
//!   [`okta::LogSource`] (HTTP client; `okta::memory`, built per connector by an
//!   [`okta::SourceFactory`]), [`cursor::CursorStore`] (DynamoDB, file; memory),
//!   [`secrets::SecretSource`] (Secrets Manager, file; memory), [`sink::EventSink`] (Kinesis,
//!   NDJSON file; memory) and [`deadletter::DeadLetterStore`] (S3; memory) for events the
//!   stream refuses for good. [`config`] parses a connector's secret document; [`aws`] bounds the
//!   AWS SDK calls.
//! - The local Okta simulator is the workspace crate `okta-sim/`, a dev-dependency only.

pub mod aws;
pub mod config;
pub mod cursor;
pub mod deadletter;
pub mod fleet;
pub mod normalize;
pub mod okta;
pub mod secrets;
pub mod sink;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;

pub mod actions;
pub mod cli;
pub mod drain;
pub mod invocation;
pub mod lambda;
pub mod settings;
pub mod telemetry;
