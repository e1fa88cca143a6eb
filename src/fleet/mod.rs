//! Fleet mode: many connectors in one deployment. The scheduler port (one schedule per connector),
//! per-connector scoped credentials, and the `connectors` command line that adds, lists, disables,
//! resumes and removes connectors.

pub mod cli;
pub mod commands;
pub mod eventbridge;
pub mod scheduler;
pub mod scoped;
pub mod secrets_admin;
pub mod view;
