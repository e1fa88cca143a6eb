//! Dead letters as S3 objects, `<connector id>/<event id>.json`, each encrypted with the
//! stack's KMS key.

use std::future::Future;

use async_trait::async_trait;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ServerSideEncryption;
use tokio::time::Instant;

use super::{
    event_id_of, object_key, stream_prefix, DeadLetter, DeadLetterError, DeadLetterStore,
    TargetStream,
};

pub struct S3DeadLetterStore {
    client: aws_sdk_s3::Client,
    bucket: String,
    /// The KMS key each object is encrypted with; `None` uses the bucket's default key.
    kms_key: Option<String>,
}

/// An S3 client whose calls are bounded like every port's; a local emulator (an endpoint URL is
/// set) is addressed by path, since it serves no per-bucket host names.
pub fn client(aws: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::config::Builder::from(aws)
        .force_path_style(aws.endpoint_url().is_some())
        .timeout_config(crate::aws::call_timeouts())
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

impl S3DeadLetterStore {
    pub fn new(client: aws_sdk_s3::Client, bucket: String, kms_key: Option<String>) -> Self {
        S3DeadLetterStore {
            client,
            bucket,
            kms_key,
        }
    }
}

/// Runs one S3 call, bounded by the deadline.
async fn bounded<T, E: std::error::Error + 'static>(
    operation: &'static str,
    deadline: Instant,
    call: impl Future<Output = Result<T, E>>,
) -> Result<Result<T, E>, DeadLetterError> {
    tokio::time::timeout_at(deadline, call)
        .await
        .map_err(|_| DeadLetterError::Timeout { operation })
}

fn service(
    operation: &str,
    bucket: &str,
    err: &(dyn std::error::Error + 'static),
) -> DeadLetterError {
    DeadLetterError::Service(format!(
        "{operation} on bucket {bucket}: {}",
        DisplayErrorContext(err)
    ))
}

#[async_trait]
impl DeadLetterStore for S3DeadLetterStore {
    async fn put(&self, letter: &DeadLetter, deadline: Instant) -> Result<(), DeadLetterError> {
        let body =
            serde_json::to_vec(letter).map_err(|e| DeadLetterError::Service(e.to_string()))?;
        let request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(object_key(
                &letter.connector_id,
                letter.stream,
                &letter.event_id,
            ))
            .content_type("application/json")
            .server_side_encryption(ServerSideEncryption::AwsKms)
            .set_ssekms_key_id(self.kms_key.clone())
            .body(ByteStream::from(body));
        bounded("PutObject", deadline, request.send())
            .await?
            .map_err(|e| service("PutObject", &self.bucket, &e))?;
        Ok(())
    }

    async fn list(
        &self,
        connector_id: &str,
        stream: TargetStream,
        deadline: Instant,
    ) -> Result<Vec<String>, DeadLetterError> {
        let prefix = stream_prefix(connector_id, stream);
        let mut ids = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let request = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(&prefix)
                .set_continuation_token(token.take());
            let page = bounded("ListObjectsV2", deadline, request.send())
                .await?
                .map_err(|e| service("ListObjectsV2", &self.bucket, &e))?;
            ids.extend(
                page.contents()
                    .iter()
                    .filter_map(|object| event_id_of(connector_id, stream, object.key()?)),
            );
            match page.next_continuation_token() {
                Some(next) if page.is_truncated() == Some(true) => token = Some(next.to_owned()),
                _ => return Ok(ids),
            }
        }
    }

    async fn get(
        &self,
        connector_id: &str,
        stream: TargetStream,
        event_id: &str,
        deadline: Instant,
    ) -> Result<Option<DeadLetter>, DeadLetterError> {
        let key = object_key(connector_id, stream, event_id);
        let request = self.client.get_object().bucket(&self.bucket).key(&key);
        let object = match bounded("GetObject", deadline, request.send()).await? {
            Ok(object) => object,
            Err(err) if err.code() == Some("NoSuchKey") => return Ok(None),
            Err(err) => return Err(service("GetObject", &self.bucket, &err)),
        };
        let body = tokio::time::timeout_at(deadline, object.body.collect())
            .await
            .map_err(|_| DeadLetterError::Timeout {
                operation: "GetObject",
            })?
            .map_err(|e| service("GetObject", &self.bucket, &e))?
            .into_bytes();
        serde_json::from_slice(&body)
            .map(Some)
            .map_err(|e| DeadLetterError::Unreadable {
                key,
                detail: e.to_string(),
            })
    }

    async fn delete(
        &self,
        connector_id: &str,
        stream: TargetStream,
        event_id: &str,
        deadline: Instant,
    ) -> Result<(), DeadLetterError> {
        let request = self
            .client
            .delete_object()
            .bucket(&self.bucket)
            .key(object_key(connector_id, stream, event_id));
        bounded("DeleteObject", deadline, request.send())
            .await?
            .map_err(|e| service("DeleteObject", &self.bucket, &e))?;
        Ok(())
    }
}
