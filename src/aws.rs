//! What the AWS SDK clients of the ports share: one HTTPS client, the bounds of every call, and
//! how a service's refusal is read.
//!
//! Each call is also bounded by the time its caller has left (`tokio::time::timeout_at` on the
//! work deadline), so these bounds only decide how soon a stalled attempt is cut and retried.

use std::sync::OnceLock;
use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::SdkConfig;
use aws_sdk_dynamodb::config::SharedHttpClient;
// Every SDK crate re-exports the same smithy `SdkError` and `ProvideErrorMetadata`.
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};

/// The process's HTTPS client for AWS. Without it every SDK client builds its own (a TLS
/// configuration with its own copy of the root store, and a connection pool), and a container
/// serving many connectors, with a few clients per connector session, would hold hundreds of them.
pub fn https_client() -> SharedHttpClient {
    static CLIENT: OnceLock<SharedHttpClient> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            aws_smithy_http_client::Builder::new()
                .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
                .build_https()
        })
        .clone()
}

/// `config` with the process's HTTPS client, unless it already has one (a test's own).
pub fn with_shared_https(config: SdkConfig) -> SdkConfig {
    if config.http_client().is_some() {
        return config;
    }
    config.into_builder().http_client(https_client()).build()
}

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
