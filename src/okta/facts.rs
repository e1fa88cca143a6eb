//! What Okta's System Log API promises, in one place: page size, retention, the read scope.

use std::time::Duration;

/// Okta's largest page (`limit` of `GET /api/v1/logs`).
pub const MAX_PAGE_LIMIT: u32 = 1000;

/// How far back the System Log keeps events: older positions can no longer be read.
pub const RETENTION: Duration = Duration::from_secs(90 * 24 * 3600);

/// The OAuth scope reading the System Log needs; nothing broader.
pub const LOGS_READ_SCOPE: &str = "okta.logs.read";
