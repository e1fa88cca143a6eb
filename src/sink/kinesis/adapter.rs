//! The one Kinesis call the sink makes, as a narrow port, and its implementation for the SDK
//! client. The adapter only translates: what to retry is decided in [`super::retry`].

use async_trait::async_trait;
use aws_sdk_kinesis::config::http::HttpResponse;
use aws_sdk_kinesis::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_kinesis::operation::put_records::PutRecordsError;
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;

use super::retry::is_retryable_code;
use crate::sink::Record;

/// A Kinesis client whose calls are bounded by [`crate::aws::stream_timeouts`].
pub fn client(aws: &aws_config::SdkConfig) -> aws_sdk_kinesis::Client {
    let config = aws_sdk_kinesis::config::Builder::from(aws)
        .timeout_config(crate::aws::stream_timeouts())
        .build();
    aws_sdk_kinesis::Client::from_conf(config)
}

/// Why Kinesis rejected one entry of a PutRecords call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryRejection {
    pub code: String,
    pub message: String,
}

/// Why a whole PutRecords call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallFailure {
    /// Throttling, a 5xx or a transport failure: sending again may succeed.
    pub retryable: bool,
    pub message: String,
}

/// The one Kinesis call the sink makes. Implemented for the SDK client, and by fakes in tests,
/// since no local emulator returns partial failures.
#[async_trait]
pub trait PutRecordsApi: Send + Sync {
    /// Sends `records` in one call. The answer should have one entry per record, in order:
    /// `None` when the record was acknowledged (the sink checks the count).
    async fn put_records(
        &self,
        stream: &str,
        records: &[&Record],
    ) -> Result<Vec<Option<EntryRejection>>, CallFailure>;
}

#[async_trait]
impl PutRecordsApi for aws_sdk_kinesis::Client {
    async fn put_records(
        &self,
        stream: &str,
        records: &[&Record],
    ) -> Result<Vec<Option<EntryRejection>>, CallFailure> {
        let entries = records
            .iter()
            .map(|record| {
                PutRecordsRequestEntry::builder()
                    .data(Blob::new(record.data.clone()))
                    .partition_key(&record.partition_key)
                    .build()
                    .expect("data and partition key are always set")
            })
            .collect();
        let output = self
            .put_records()
            .stream_name(stream)
            .set_records(Some(entries))
            .send()
            .await
            .map_err(call_failure)?;
        Ok(output
            .records()
            .iter()
            .map(|entry| {
                entry.error_code().map(|code| EntryRejection {
                    code: code.to_owned(),
                    message: entry.error_message().unwrap_or_default().to_owned(),
                })
            })
            .collect())
    }
}

fn call_failure(err: SdkError<PutRecordsError, HttpResponse>) -> CallFailure {
    let retryable = match &err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(service) => {
            service.raw().status().is_server_error()
                || service.err().code().is_some_and(is_retryable_code)
        }
        _ => false,
    };
    CallFailure {
        retryable,
        message: DisplayErrorContext(&err).to_string(),
    }
}
