//! A local Okta System Log simulator for tests, the demo and benchmarks (never in the Lambda).
//!
//! It serves `GET /api/v1/logs` with Okta's paging semantics (polling by persistence order with an
//! opaque `after` cursor and an ever-present next link, bounded `until` windows), rate-limit
//! headers and 429s, SSWS and OAuth 2.0 (`private_key_jwt`, DPoP with nonces) credentials, and
//! scripted or seeded-random faults. A control API under `/__sim/` mirrors [`Simulator`]'s methods.
//! [`SimFleet`] runs many such orgs at once, one port each.

mod auth;
mod clock;
mod config;
mod control;
mod cursor;
mod dpop;
mod events;
mod faults;
mod filter;
mod fleet;
mod json;
mod kinds;
mod ratelimit;
mod rng;
mod server;
mod store;
mod world;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use axum::routing::{get, post};
use axum::Router;
use serde::Serialize;
use time::OffsetDateTime;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use config::{ClientRegistration, SimConfig};
pub use faults::{Fault, FaultKind};
pub use fleet::{FleetError, SimFleet};
pub use ratelimit::RateLimitConfig;

use auth::AuthState;
use clock::now_ms;
use cursor::CursorCodec;
use faults::FaultPlan;
use ratelimit::Bucket;
use store::EventLog;

/// One request the simulator answered (control API excluded).
#[derive(Debug, Clone, Serialize)]
pub struct RequestRecord {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub status: u16,
    /// "SSWS", "Bearer", "DPoP" (or whatever else was sent); `None` without credentials.
    pub auth_scheme: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// State shared by the HTTP handlers and the scripting methods.
pub(crate) struct Shared {
    base_url: String,
    max_page_size: usize,
    log: RwLock<EventLog>,
    auth: Mutex<AuthState>,
    faults: Mutex<FaultPlan>,
    bucket: Mutex<Bucket>,
    requests: Mutex<Vec<RequestRecord>>,
    cursors: CursorCodec,
}

impl Shared {
    fn append_events(&self, n: usize) -> Vec<String> {
        let now = now_ms();
        // Okta persists events a moment after they happen.
        self.log
            .write()
            .unwrap()
            .append_generated(n, |_, rng| now - rng.below(1000) as i64)
    }

    fn append_late_events(&self, n: usize, age: Duration) -> Vec<String> {
        let published = now_ms() - age.as_millis() as i64;
        self.log
            .write()
            .unwrap()
            .append_generated(n, |_, _| published)
    }

    fn append_raw(&self, events: Vec<serde_json::Value>) {
        self.log.write().unwrap().append_raw(events);
    }

    fn events(&self) -> Vec<serde_json::Value> {
        self.log.read().unwrap().all_events()
    }

    fn inject(&self, fault: Fault, times: u32) {
        self.faults.lock().unwrap().inject(fault, times);
    }

    fn set_random_faults(&self, seed: u64, probability: f64, kinds: Vec<FaultKind>) {
        self.faults
            .lock()
            .unwrap()
            .set_random(seed, probability, kinds);
    }

    fn clear_faults(&self) {
        self.faults.lock().unwrap().clear();
    }

    fn requests(&self) -> Vec<RequestRecord> {
        self.requests.lock().unwrap().clone()
    }

    fn register_client(&self, client: ClientRegistration) {
        self.auth.lock().unwrap().register_client(client);
    }

    fn set_client_active(&self, client_id: &str, active: bool) {
        self.auth
            .lock()
            .unwrap()
            .set_client_active(client_id, active);
    }

    fn revoke_tokens(&self) {
        self.auth.lock().unwrap().revoke_tokens();
    }

    fn set_rate_limit(&self, cfg: Option<RateLimitConfig>) {
        self.bucket.lock().unwrap().reconfigure(cfg);
    }
}

/// A running simulator bound to 127.0.0.1.
pub struct Simulator {
    shared: Arc<Shared>,
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Simulator {
    /// Starts on an ephemeral port.
    pub async fn start(config: SimConfig) -> std::io::Result<Simulator> {
        Simulator::start_on(config, 0).await
    }

    /// Starts on 127.0.0.1:`port` (0 picks a free port).
    pub async fn start_on(config: SimConfig, port: u16) -> std::io::Result<Simulator> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let mut log = EventLog::new(
            config.seed,
            config.system_event_ratio,
            config.non_catalog_ratio,
        );
        let n = config.initial_events;
        let span_ms = config.backlog_span.as_millis() as i64;
        let start_ms = now_ms() - span_ms;
        log.append_generated(n, |i, _| {
            start_ms + (span_ms as i128 * (i as i128 + 1) / n.max(1) as i128) as i64
        });
        let shared = Arc::new(Shared {
            base_url: format!("http://{addr}"),
            max_page_size: config.max_page_size,
            log: RwLock::new(log),
            auth: Mutex::new(AuthState::new(
                config.clients,
                config.ssws_tokens,
                config.token_ttl,
            )),
            faults: Mutex::new(FaultPlan::default()),
            bucket: Mutex::new(Bucket::new(config.rate_limit)),
            requests: Mutex::new(Vec::new()),
            cursors: CursorCodec::new(config.seed),
        });
        let api = Router::new()
            .route("/api/v1/logs", get(server::logs))
            .route("/oauth2/v1/token", post(server::token))
            .layer(axum::middleware::from_fn_with_state(
                shared.clone(),
                server::record,
            ))
            .with_state(shared.clone());
        let app = api.merge(control::router(shared.clone()));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = stopped.await;
            });
            if let Err(e) = serve.await {
                tracing::warn!(error = %e, "okta-sim server stopped with an error");
            }
        });
        tracing::info!(%addr, "okta-sim listening");
        Ok(Simulator {
            shared,
            addr,
            stop,
            task,
        })
    }

    /// "http://127.0.0.1:PORT": the org URL to point clients at.
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Appends `n` new events published about now; returns their uuids.
    pub fn append_events(&self, n: usize) -> Vec<String> {
        self.shared.append_events(n)
    }

    /// Appends `n` events persisted now but published `age` ago.
    pub fn append_late_events(&self, n: usize, age: Duration) -> Vec<String> {
        self.shared.append_late_events(n, age)
    }

    /// Appends scripted events as given (a missing `uuid` or `published` is filled in).
    pub fn append_raw(&self, events: Vec<serde_json::Value>) {
        self.shared.append_raw(events)
    }

    /// Every event, in persistence order: the ground truth to compare a drain against.
    pub fn events(&self) -> Vec<serde_json::Value> {
        self.shared.events()
    }

    pub fn event_count(&self) -> usize {
        self.shared.log.read().unwrap().len()
    }

    /// The next `times` requests the fault applies to get it. Faults hit requests whose
    /// credentials and parameters were accepted, and never move anything server-side.
    pub fn inject(&self, fault: Fault, times: u32) {
        self.shared.inject(fault, times)
    }

    /// From now on each request gets, with `probability`, a fault of one of `kinds`, drawn
    /// reproducibly from `seed`. Scripted faults still go first.
    pub fn set_random_faults(&self, seed: u64, probability: f64, kinds: Vec<FaultKind>) {
        self.shared.set_random_faults(seed, probability, kinds)
    }

    pub fn clear_faults(&self) {
        self.shared.clear_faults()
    }

    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared.requests()
    }

    /// Registers (or replaces) an OAuth service app.
    pub fn register_client(&self, client: ClientRegistration) {
        self.shared.register_client(client)
    }

    /// A deactivated app gets `invalid_client` and its tokens stop working.
    pub fn set_client_active(&self, client_id: &str, active: bool) {
        self.shared.set_client_active(client_id, active)
    }

    /// Every issued access token becomes invalid (401).
    pub fn revoke_tokens(&self) {
        self.shared.revoke_tokens()
    }

    pub fn set_rate_limit(&self, cfg: Option<RateLimitConfig>) {
        self.shared.set_rate_limit(cfg)
    }

    /// Stops serving; in-flight responses get a short grace period.
    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        let mut task = self.task;
        if tokio::time::timeout(server::SHUTDOWN_GRACE, &mut task)
            .await
            .is_err()
        {
            task.abort();
        }
    }
}
