//! Shared helpers for the integration tests.

pub mod keys;
pub mod moto;
#[cfg(feature = "simulator")]
pub mod rig;
pub mod schema;
