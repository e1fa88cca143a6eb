//! What the AWS SDK clients of the ports share: the bounds of every call, and how a service's
//! refusal is read.
//!
//! Each call is also bounded by the time its caller has left (`tokio::time::timeout_at` on the
//! work deadline), so these bounds only decide how soon a stalled attempt is cut and retried.

use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
// Every SDK crate re-exports the same smithy `SdkError` and `ProvideErrorMetadata`.
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};

/// Bounds of every DynamoDB and Secrets Manager call. A healthy call answers in milliseconds,
/// so an attempt still waiting after two seconds has stalled; the call with the SDK's retries
/// ends within five. The last checkpoint and the release (each one call and at most one
/// resolving read) then fit in the invocation's safety margin (20 s by default), and a stalled
/// service never holds an invocation until the runtime kills it.
pub fn call_timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(1))
        .operation_attempt_timeout(Duration::from_secs(2))
        .operation_timeout(Duration::from_secs(5))
        .build()
}

/// Bounds of a Kinesis PutRecords call. It carries up to 5 MiB, so an attempt may take longer
/// than a DynamoDB call, but not ten seconds: an attempt that has not answered by then has
/// stalled and is cut, and the SDK's retry sends the records again while the page's deadline
/// allows, instead of one stalled connection holding the page until the deadline.
pub fn stream_timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(1))
        .operation_attempt_timeout(Duration::from_secs(10))
        .operation_timeout(Duration::from_secs(30))
        .build()
}

/// The service's error code and message for a failed call; empty when the call never got a
/// service's answer (a timeout, a connection error).
pub fn service_code_and_message<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> (&str, &str) {
    let service = err.as_service_error();
    (
        service.and_then(|e| e.code()).unwrap_or_default(),
        service.and_then(|e| e.message()).unwrap_or_default(),
    )
}
