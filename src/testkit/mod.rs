//! Test support shared by `tests/` and `benches/` (cargo feature `testkit`; never in the Lambda
//! artifact).
//!
//! - [`rig`]: a connector wired to the in-process Okta simulator (`okta-sim`) and the in-memory
//!   twins, with the ground truth to prove nothing was lost or duplicated;
//! - [`cli`]: the `okta-ingest` binary run as a local connector against the simulator;
//! - [`moto`]: a local AWS emulator per test and the resources the connector uses;
//! - [`proxy`]: a fault-injecting HTTP proxy on 127.0.0.1 (answers lost after the service
//!   applied the request, requests that never get an answer);
//! - [`fixtures`]: the Okta event fixtures of `tests/fixtures/okta/`;
//! - [`keys`]: RSA and P-256 signing keys as JWKs and PEM;
//! - [`logs`]: everything a test binary logs, to assert on what was (not) written;
//! - [`schema`]: validation against the published TOTAL v1 JSON Schema;
//! - [`ocsf_schema`]: validation against the OCSF 1.8.0 schema, compiled per class.
//!
//! The twins and fault decorators sit beside the port they stand in for, behind the same
//! feature: `cursor::memory` (with scripted failures) and `cursor::conformance` (the contract
//! every store passes), `secrets::memory`, `sink::memory` (with scripted failures) and
//! `sink::kinesis::faults` (Kinesis answers no emulator produces).

#[cfg(feature = "testkit")]
pub mod cli;
#[cfg(feature = "testkit")]
pub mod fixtures;
pub mod keys;
pub mod logs;
#[cfg(feature = "testkit")]
pub mod moto;
#[cfg(feature = "testkit")]
pub mod ocsf_schema;
pub mod proxy;
#[cfg(feature = "testkit")]
pub mod rig;
#[cfg(feature = "testkit")]
pub mod schema;
