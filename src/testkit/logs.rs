//! Everything a test binary logs, in one buffer, to assert on what was (not) written.

use std::sync::{Arc, Mutex, OnceLock};

use tracing_subscriber::fmt::MakeWriter;

/// A log destination that keeps every byte written to it; clones share the buffer.
#[derive(Clone, Default)]
pub struct LogCapture(Arc<Mutex<Vec<u8>>>);

impl LogCapture {
    /// Installs, once per test binary, the process-wide subscriber that `subscriber` builds
    /// around the capture, and returns the capture (the same one on every call). Process-wide,
    /// because per-thread subscribers miss the simulator's tasks and callsites that other tests
    /// registered first.
    pub fn global<S>(subscriber: impl FnOnce(LogCapture) -> S) -> LogCapture
    where
        S: tracing::Subscriber + Send + Sync + 'static,
    {
        static CAPTURE: OnceLock<LogCapture> = OnceLock::new();
        CAPTURE
            .get_or_init(|| {
                let capture = LogCapture::default();
                tracing::subscriber::set_global_default(subscriber(capture.clone()))
                    .expect("no other global subscriber in this test binary");
                capture
            })
            .clone()
    }

    /// What was written so far, as text.
    pub fn contents(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LogCapture {
    type Writer = LogCapture;

    fn make_writer(&'a self) -> LogCapture {
        self.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_one_buffer() {
        let capture = LogCapture::default();
        let mut writer = capture.make_writer();
        std::io::Write::write_all(&mut writer, b"line one\n").unwrap();
        assert_eq!(capture.contents(), "line one\n");
    }
}
