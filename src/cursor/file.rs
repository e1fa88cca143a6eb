//! Cursor store in one local JSON file, for the local CLI. Same rules as DynamoDB (the lease and
//! the fence are kept, so two CLI runs on one file cannot both move the cursor); every write
//! replaces the file atomically (temporary file, fsync, rename), so a crash leaves the old or
//! the new state, never half of one.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::local::ItemSlots;
use super::{CursorError, CursorItem, CursorOp};

pub struct FileCursorStore {
    shared: Arc<StateFile>,
}

/// What the blocking file work needs, shared with the blocking thread.
struct StateFile {
    path: PathBuf,
    /// Serializes read-modify-write cycles within this process.
    lock: Mutex<()>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct StoredFile {
    items: BTreeMap<String, CursorItem>,
}

impl FileCursorStore {
    /// A store kept in `path`; the file is created on the first write.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        FileCursorStore {
            shared: Arc::new(StateFile {
                path: path.into(),
                lock: Mutex::new(()),
            }),
        }
    }
}

impl StateFile {
    fn io_error(&self, key: &str, action: &str, err: impl std::fmt::Display) -> CursorError {
        CursorError::Service {
            key: key.to_owned(),
            message: format!("{action} {}: {err}", self.path.display()),
        }
    }

    fn read(&self, key: &str) -> Result<StoredFile, CursorError> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| CursorError::Malformed {
                key: key.to_owned(),
                detail: format!(
                    "cursor file {} is not valid cursor JSON ({e}); fix or delete it",
                    self.path.display()
                ),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(StoredFile::default()),
            Err(e) => Err(self.io_error(key, "reading cursor file", e)),
        }
    }

    /// An exclusive lock on `<state>.lock`, released when the returned file is dropped.
    fn lock_file(&self, key: &str) -> Result<std::fs::File, CursorError> {
        let mut name = self.path.as_os_str().to_owned();
        name.push(".lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(PathBuf::from(name))
            .map_err(|e| self.io_error(key, "opening the cursor lock file", e))?;
        lock.lock()
            .map_err(|e| self.io_error(key, "locking the cursor file", e))?;
        Ok(lock)
    }

    fn write(&self, key: &str, file: &StoredFile) -> Result<(), CursorError> {
        let json = serde_json::to_vec_pretty(file).expect("cursor items serialize");
        write_atomically(&self.path, &json)
            .map_err(|e| self.io_error(key, "writing cursor file", e))
    }

    /// Read, apply one rule, write back when it changed anything. Blocking.
    fn apply<T>(
        &self,
        key: &str,
        rule: impl FnOnce(&mut Option<CursorItem>) -> Result<T, CursorError>,
    ) -> Result<T, CursorError> {
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        // Another CLI run on the same state file must not interleave its read-modify-write.
        let _across_processes = self.lock_file(key)?;
        let mut file = self.read(key)?;
        let mut slot = file.items.remove(key).map(|item| CursorItem {
            key: key.to_owned(),
            ..item
        });
        let before = slot.clone();
        let result = rule(&mut slot)?;
        if slot != before {
            if let Some(item) = slot {
                file.items.insert(key.to_owned(), item);
            }
            self.write(key, &file)?;
        }
        Ok(result)
    }
}

#[async_trait]
impl ItemSlots for FileCursorStore {
    async fn apply<T, F>(&self, key: &str, _op: CursorOp, rule: F) -> Result<T, CursorError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Option<CursorItem>) -> Result<T, CursorError> + Send + 'static,
    {
        // File locks and fsync block: keep them off the async worker threads.
        let shared = Arc::clone(&self.shared);
        let owned_key = key.to_owned();
        tokio::task::spawn_blocking(move || shared.apply(&owned_key, rule))
            .await
            .map_err(|e| CursorError::Service {
                key: key.to_owned(),
                message: format!("cursor file task failed: {e}"),
            })?
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut tmp = tempfile_in(dir, path)?;
    tmp.1.write_all(bytes)?;
    tmp.1.sync_all()?;
    std::fs::rename(&tmp.0, path)?;
    // The rename itself is durable only once the directory entry is.
    std::fs::File::open(dir)?.sync_all()
}

/// A new temporary file next to `path` (same filesystem, so the rename is atomic).
fn tempfile_in(dir: &Path, path: &Path) -> std::io::Result<(PathBuf, std::fs::File)> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "cursor".into());
    let tmp = dir.join(format!(".{name}.{}.tmp", uuid::Uuid::new_v4()));
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)?;
    Ok((tmp, file))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cursor::{conformance, Claim, CursorStore, RunOutcome};
    use time::{Duration, OffsetDateTime};

    #[tokio::test]
    async fn behaves_like_a_cursor_store() {
        let dir = tempfile::tempdir().unwrap();
        conformance::run_all(&FileCursorStore::new(dir.path().join("cursor.json"))).await;
    }

    #[tokio::test]
    async fn state_survives_reopening_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cursor.json");
        let now = conformance::t0();
        let first = FileCursorStore::new(&path);
        let Claim::Acquired { mut lease, .. } = first
            .claim("acme", "cli", now, now + Duration::minutes(5))
            .await
            .unwrap()
        else {
            panic!("fresh file must be claimable");
        };
        first
            .checkpoint(&mut lease, &conformance::page("next-7", 7), now)
            .await
            .unwrap();
        drop(first);

        let reopened = FileCursorStore::new(&path);
        let item = reopened.load("acme").await.unwrap().unwrap();
        assert_eq!(item.cursor.as_deref(), Some("next-7"));
        assert_eq!(item.delivered_total, 7);
        reopened
            .release(&lease, &RunOutcome::Success, 5, now)
            .await
            .expect("the lease is still valid after reopening");
        let mut leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        leftovers.sort();
        assert_eq!(
            leftovers,
            ["cursor.json", "cursor.json.lock"],
            "no temporary files left"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn two_stores_on_one_file_never_both_claim() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cursor.json");
        let now = OffsetDateTime::now_utc();
        let claims = (0..16).map(|n| {
            // Separate stores stand for separate CLI processes: only the file lock is shared.
            let store = FileCursorStore::new(&path);
            tokio::spawn(async move {
                let until = now + time::Duration::minutes(5);
                store
                    .claim("acme", &format!("run-{n}"), now, until)
                    .await
                    .unwrap()
            })
        });
        let mut acquired = 0;
        for claim in claims.collect::<Vec<_>>() {
            if matches!(claim.await.unwrap(), Claim::Acquired { .. }) {
                acquired += 1;
            }
        }
        assert_eq!(acquired, 1);
    }

    #[tokio::test]
    async fn corrupt_file_is_reported_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cursor.json");
        std::fs::write(&path, b"{not json").unwrap();
        let err = FileCursorStore::new(&path).load("acme").await.unwrap_err();
        assert!(matches!(err, CursorError::Malformed { .. }));
        assert!(err.to_string().contains("cursor.json"), "{err}");
    }
}
