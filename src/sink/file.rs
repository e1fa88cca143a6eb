//! NDJSON event sink for the local CLI: one record per line, to a file or stdout.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::{EventSink, PublishStats, Record, SinkError};

enum Output {
    File {
        file: tokio::fs::File,
        path: PathBuf,
    },
    Stdout(tokio::io::Stdout),
}

pub struct FileSink {
    output: Mutex<Output>,
}

impl FileSink {
    /// Appends to `path`, creating it when absent. A run that died mid-write left a partial
    /// last line (its page was not checkpointed and will be written again): it is closed with
    /// a newline so the replayed records start on lines of their own.
    pub async fn append(path: impl AsRef<Path>) -> Result<Self, SinkError> {
        let path = path.as_ref().to_path_buf();
        let cannot = |e: std::io::Error| {
            SinkError::Service(format!(
                "cannot open output file {}: {e}; check the path and its permissions",
                path.display()
            ))
        };
        let ends_mid_line = match last_byte(&path).await {
            Ok(last) => last.is_some_and(|b| b != b'\n'),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(e) => return Err(cannot(e)),
        };
        let mut file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .await
            .map_err(cannot)?;
        if ends_mid_line {
            file.write_all(b"\n").await.map_err(cannot)?;
        }
        Ok(FileSink {
            output: Mutex::new(Output::File { file, path }),
        })
    }

    pub fn stdout() -> Self {
        FileSink {
            output: Mutex::new(Output::Stdout(tokio::io::stdout())),
        }
    }
}

async fn write_lines(
    out: &mut (impl AsyncWrite + Unpin),
    records: &[Record],
) -> std::io::Result<()> {
    for record in records {
        out.write_all(&record.data).await?;
        if !record.data.ends_with(b"\n") {
            out.write_all(b"\n").await?;
        }
    }
    out.flush().await
}

#[async_trait]
impl EventSink for FileSink {
    /// Returns once every line is flushed (and, for files, on disk).
    async fn publish(
        &self,
        records: &[Record],
        _deadline: Instant,
    ) -> Result<PublishStats, SinkError> {
        let mut output = self.output.lock().await;
        let result = match &mut *output {
            Output::File { file, path } => {
                let written = match write_lines(file, records).await {
                    Ok(()) => file.sync_data().await,
                    Err(e) => Err(e),
                };
                written.map_err(|e| format!("writing {}: {e}", path.display()))
            }
            Output::Stdout(stdout) => write_lines(stdout, records)
                .await
                .map_err(|e| format!("writing to stdout: {e}")),
        };
        result.map_err(SinkError::Service)?;
        Ok(PublishStats {
            calls: 1,
            retried_records: 0,
            dead_lettered: 0,
        })
    }
}

async fn last_byte(path: &Path) -> std::io::Result<Option<u8>> {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let mut file = tokio::fs::File::open(path).await?;
    if file.metadata().await?.len() == 0 {
        return Ok(None);
    }
    file.seek(std::io::SeekFrom::End(-1)).await?;
    let mut byte = [0u8; 1];
    file.read_exact(&mut byte).await?;
    Ok(Some(byte[0]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn record(id: &str, data: &str) -> Record {
        Record {
            event_id: id.into(),
            partition_key: "00u1".into(),
            data: data.as_bytes().to_vec(),
        }
    }

    #[tokio::test]
    async fn writes_one_line_per_record_and_appends_across_publishes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.ndjson");
        let deadline = Instant::now() + Duration::from_secs(5);
        let sink = FileSink::append(&path).await.unwrap();
        sink.publish(
            &[record("a", "{\"a\":1}\n"), record("b", "{\"b\":2}")],
            deadline,
        )
        .await
        .unwrap();
        drop(sink);
        let sink = FileSink::append(&path).await.unwrap();
        sink.publish(&[record("c", "{\"c\":3}\n")], deadline)
            .await
            .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, "{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n");
    }

    #[tokio::test]
    async fn a_partial_last_line_from_a_crash_is_closed_before_appending() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.ndjson");
        std::fs::write(&path, "{\"a\":1}\n{\"b\":").unwrap();
        let sink = FileSink::append(&path).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        sink.publish(&[record("b", "{\"b\":2}\n")], deadline)
            .await
            .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, "{\"a\":1}\n{\"b\":\n{\"b\":2}\n");
    }

    #[tokio::test]
    async fn unopenable_path_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing-dir").join("events.ndjson");
        let err = FileSink::append(&path).await.err().expect("must fail");
        assert!(err.to_string().contains("missing-dir"), "{err}");
    }
}
