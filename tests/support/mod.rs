//! Shared helpers for the integration tests.

pub mod moto;
#[cfg(feature = "simulator")]
pub mod rig;
pub mod schema;
