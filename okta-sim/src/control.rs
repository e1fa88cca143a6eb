//! The control API under `/__sim/`: the library's scripting methods over HTTP, for the binary.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::config::ClientRegistration;
use super::faults::{Fault, FaultKind};
use super::ratelimit::RateLimitConfig;
use super::Shared;

#[derive(Deserialize)]
#[serde(untagged)]
enum AppendRequest {
    Late { late: usize, age_secs: f64 },
    Count { count: usize },
    Raw { raw: Vec<Value> },
}

#[derive(Deserialize)]
struct FaultRequest {
    fault: FaultKind,
    /// For `status` and `token_endpoint_status`.
    status: Option<u16>,
    /// For `delay` and `token_endpoint_delay`.
    millis: Option<u64>,
    #[serde(default = "once")]
    times: u32,
}

fn once() -> u32 {
    1
}

#[derive(Deserialize)]
struct RandomFaultRequest {
    seed: u64,
    probability: f64,
    kinds: Vec<FaultKind>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum FaultsRequest {
    Random { random: RandomFaultRequest },
    Scripted(FaultRequest),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ClientRequest {
    Register(ClientRegistration),
    Toggle { client_id: String, active: bool },
}

fn bad_request(message: String) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"error": message}))).into_response()
}

impl FaultRequest {
    fn into_fault(self) -> Result<Fault, String> {
        let status = || {
            self.status
                .ok_or_else(|| format!("fault {:?} needs \"status\"", self.fault))
        };
        Ok(match self.fault {
            FaultKind::Status => Fault::Status(status()?),
            FaultKind::TokenEndpointStatus => Fault::TokenEndpointStatus(status()?),
            FaultKind::Delay => Fault::Delay(Duration::from_millis(
                self.millis.ok_or("fault delay needs \"millis\"")?,
            )),
            FaultKind::TokenEndpointDelay => Fault::TokenEndpointDelay(Duration::from_millis(
                self.millis
                    .ok_or("fault token_endpoint_delay needs \"millis\"")?,
            )),
            FaultKind::RateLimited => Fault::RateLimited,
            FaultKind::DropConnection => Fault::DropConnection,
            FaultKind::TruncatedBody => Fault::TruncatedBody,
            FaultKind::MalformedBody => Fault::MalformedBody,
            FaultKind::ForeignNextLink => Fault::ForeignNextLink,
        })
    }
}

pub(crate) fn router(sim: Arc<Shared>) -> Router {
    Router::new()
        .route(
            "/__sim/events",
            get(|State(sim): State<Arc<Shared>>| async move { Json(sim.events()) }).post(
                |State(sim): State<Arc<Shared>>, Json(req): Json<AppendRequest>| async move {
                    match req {
                        AppendRequest::Count { count } => {
                            Json(json!({"uuids": sim.append_events(count)}))
                        }
                        AppendRequest::Late { late, age_secs } => Json(json!({
                            "uuids": sim.append_late_events(late, Duration::from_secs_f64(age_secs.max(0.0)))
                        })),
                        AppendRequest::Raw { raw } => {
                            let n = raw.len();
                            sim.append_raw(raw);
                            Json(json!({"appended": n}))
                        }
                    }
                },
            ),
        )
        .route(
            "/__sim/faults",
            post(
                |State(sim): State<Arc<Shared>>, Json(req): Json<FaultsRequest>| async move {
                    match req {
                        FaultsRequest::Random { random } => {
                            sim.set_random_faults(random.seed, random.probability, random.kinds);
                            StatusCode::NO_CONTENT.into_response()
                        }
                        FaultsRequest::Scripted(f) => {
                            let times = f.times;
                            match f.into_fault() {
                                Ok(fault) => {
                                    sim.inject(fault, times);
                                    StatusCode::NO_CONTENT.into_response()
                                }
                                Err(e) => bad_request(e),
                            }
                        }
                    }
                },
            )
            .delete(|State(sim): State<Arc<Shared>>| async move {
                sim.clear_faults();
                StatusCode::NO_CONTENT
            }),
        )
        .route(
            "/__sim/requests",
            get(|State(sim): State<Arc<Shared>>| async move { Json(sim.requests()) }),
        )
        .route(
            "/__sim/clients",
            post(
                |State(sim): State<Arc<Shared>>, Json(req): Json<ClientRequest>| async move {
                    match req {
                        ClientRequest::Register(c) => sim.register_client(c),
                        ClientRequest::Toggle { client_id, active } => {
                            sim.set_client_active(&client_id, active)
                        }
                    }
                    StatusCode::NO_CONTENT
                },
            ),
        )
        .route(
            "/__sim/rate-limit",
            post(
                |State(sim): State<Arc<Shared>>,
                 Json(cfg): Json<Option<RateLimitConfig>>| async move {
                    sim.set_rate_limit(cfg);
                    StatusCode::NO_CONTENT
                },
            ),
        )
        .route(
            "/__sim/revoke-tokens",
            post(|State(sim): State<Arc<Shared>>| async move {
                sim.revoke_tokens();
                StatusCode::NO_CONTENT
            }),
        )
        .with_state(sim)
}
