//! Logs: JSON lines through `tracing` in the Lambda, readable text for the CLI.

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

/// JSON logs for the Lambda (one object per line); readable text for the CLI. `RUST_LOG`
/// overrides the level (default info).
pub fn init_tracing(json: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let result = if json {
        tracing::subscriber::set_global_default(json_subscriber(filter, std::io::stderr))
            .map_err(|e| e.to_string())
    } else {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_target(false)
            .try_init()
            .map_err(|e| e.to_string())
    };
    // A second init (tests) keeps the first subscriber.
    drop(result);
}

/// The Lambda's log format: one JSON object per line, with the fields of the current span
/// (the invocation's request id and connector id) on every line.
pub fn json_subscriber<W>(filter: EnvFilter, writer: W) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .without_time()
        .finish()
}

/// Log output collected in memory, for tests of what gets logged.
#[cfg(test)]
pub(crate) mod test_capture {
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    pub(crate) struct Captured(pub(crate) Arc<Mutex<Vec<u8>>>);

    impl Captured {
        pub(crate) fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
        type Writer = Captured;
        fn make_writer(&'a self) -> Captured {
            self.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    #[test]
    fn hostile_field_values_cannot_forge_log_lines() {
        let logs = test_capture::Captured::default();
        let subscriber = json_subscriber(EnvFilter::new("debug"), logs.clone());
        let forged = "x\n{\"level\":\"ERROR\",\"message\":\"forged\"}\r\u{1b}[2J";
        tracing::subscriber::with_default(subscriber, || {
            tracing::debug!(event_type = forged, "event excluded");
        });
        let text = logs.text();
        assert_eq!(text.matches('\n').count(), 1, "{text}");
        let line: Value = serde_json::from_str(text.trim_end()).unwrap();
        assert_eq!(line["event_type"], forged);
        assert_eq!(line["message"], "event excluded");
    }
}
