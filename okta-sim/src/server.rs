//! The HTTP face of the simulator: `/api/v1/logs` and `/oauth2/v1/token`, as Okta serves them.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Form, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Request, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use serde_json::json;
use time::OffsetDateTime;

use super::auth::{Refusal, TokenForm, LOGS_SCOPE};
use super::clock::{now_ms, parse_timestamp};
use super::cursor::After;
use super::faults::{Endpoint, Fault};
use super::filter::EventFilter;
use super::ratelimit::Quota;
use super::store::Selection;
use super::{RequestRecord, Shared};

const DEFAULT_LIMIT: usize = 100;
/// Okta's default polling window when `since` is omitted.
const DEFAULT_LOOKBACK_MS: i64 = 7 * 24 * 3600 * 1000;
const FOREIGN_ORIGIN: &str = "https://evil.example.com";

fn okta_error(status: u16, code: &str, summary: &str) -> Response {
    let body = json!({
        "errorCode": code,
        "errorSummary": summary,
        "errorLink": code,
        "errorId": format!("oae{}", &uuid::Uuid::new_v4().simple().to_string()[..19]),
        "errorCauses": [],
    });
    json_response(status, body.to_string())
}

fn json_response(status: u16, body: String) -> Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn validation_error(param: &str) -> Response {
    okta_error(400, "E0000001", &format!("Api validation failed: {param}"))
}

fn rejected_param(param: &str) -> Box<Response> {
    Box::new(validation_error(param))
}

fn set_header(r: &mut Response, name: &'static str, value: String) {
    if let Ok(v) = HeaderValue::from_str(&value) {
        r.headers_mut().append(HeaderName::from_static(name), v);
    }
}

fn add_quota(r: &mut Response, q: &Quota) {
    set_header(r, "x-rate-limit-limit", q.limit.to_string());
    set_header(r, "x-rate-limit-remaining", q.remaining.to_string());
    set_header(r, "x-rate-limit-reset", q.reset_epoch_s.to_string());
}

fn rate_limited(q: &Quota) -> Response {
    let mut r = okta_error(
        429,
        "E0000047",
        "API call exceeded rate limit due to too many requests.",
    );
    let wait = (q.reset_epoch_s - OffsetDateTime::now_utc().unix_timestamp()).max(1);
    set_header(&mut r, "retry-after", wait.to_string());
    r
}

/// Request parameters of `/api/v1/logs` after validation.
struct LogsQuery {
    since: Option<i64>,
    until: Option<i64>,
    after: Option<After>,
    limit: usize,
    descending: bool,
    filter: EventFilter,
    keywords: Vec<String>,
    /// The parameters to repeat in links, without `after`.
    carried: Vec<(String, String)>,
}

fn parse_query(shared: &Shared, raw: &str) -> Result<LogsQuery, Box<Response>> {
    let mut q = LogsQuery {
        since: None,
        until: None,
        after: None,
        limit: DEFAULT_LIMIT,
        descending: false,
        filter: EventFilter::default(),
        keywords: Vec::new(),
        carried: Vec::new(),
    };
    for (key, value) in url::form_urlencoded::parse(raw.as_bytes()) {
        match key.as_ref() {
            "since" => {
                q.since = Some(parse_timestamp(&value).ok_or_else(|| rejected_param("since"))?)
            }
            "until" => {
                q.until = Some(parse_timestamp(&value).ok_or_else(|| rejected_param("until"))?)
            }
            "after" => {
                q.after = Some(
                    shared
                        .cursors
                        .decode(&value)
                        .ok_or_else(|| rejected_param("after"))?,
                );
                continue;
            }
            "limit" => {
                let limit: usize = value.parse().map_err(|_| rejected_param("limit"))?;
                if limit == 0 || limit > shared.max_page_size {
                    return Err(rejected_param("limit"));
                }
                q.limit = limit;
            }
            "sortOrder" => {
                q.descending = match value.as_ref() {
                    "ASCENDING" => false,
                    "DESCENDING" => true,
                    _ => return Err(rejected_param("sortOrder")),
                }
            }
            "filter" => {
                q.filter = EventFilter::parse(&value).ok_or_else(|| {
                    Box::new(okta_error(400, "E0000031", "Invalid search criteria."))
                })?
            }
            "q" => q.keywords = value.split_whitespace().map(str::to_lowercase).collect(),
            _ => {}
        }
        q.carried.push((key.into_owned(), value.into_owned()));
    }
    if let (Some(s), Some(u)) = (q.since, q.until) {
        if s > u {
            return Err(rejected_param("since"));
        }
    }
    if !q.carried.iter().any(|(k, _)| k == "limit") {
        q.carried.push(("limit".into(), q.limit.to_string()));
    }
    Ok(q)
}

fn link(origin: &str, params: &[(String, String)], after: Option<&str>) -> String {
    let mut ser = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        ser.append_pair(k, v);
    }
    if let Some(a) = after {
        ser.append_pair("after", a);
    }
    format!("{origin}/api/v1/logs?{}", ser.finish())
}

pub(crate) async fn logs(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let raw = raw.unwrap_or_default();
    let quota = shared.bucket.lock().unwrap().consume(now_ms());
    let mut response = serve_logs(&shared, &headers, &raw, &quota).await;
    if !response.headers().contains_key("x-rate-limit-limit") {
        add_quota(&mut response, &quota);
    }
    response
}

async fn serve_logs(shared: &Shared, headers: &HeaderMap, raw: &str, quota: &Quota) -> Response {
    if quota.exhausted {
        return rate_limited(quota);
    }
    let url = format!("{}/api/v1/logs", shared.base_url);
    let now_s = OffsetDateTime::now_utc().unix_timestamp();
    let authorized = shared.auth.lock().unwrap().authorize_logs(
        header_str(headers, header::AUTHORIZATION.as_str()),
        header_str(headers, "dpop"),
        &url,
        now_s,
    );
    if let Err(refusal) = authorized {
        return refused(refusal);
    }
    let query = match parse_query(shared, raw) {
        Ok(q) => q,
        Err(r) => return *r,
    };
    let fault = shared.faults.lock().unwrap().take(Endpoint::Logs);
    match fault {
        Some(Fault::Status(status)) => {
            return okta_error(
                status,
                "E0000009",
                &format!("Internal Server Error (HTTP {status})"),
            )
        }
        Some(Fault::RateLimited) => {
            // An injected 429 reports an empty bucket, as a real storm would.
            let empty = Quota {
                remaining: 0,
                ..shared.bucket.lock().unwrap().peek(now_ms())
            };
            let mut r = rate_limited(&empty);
            add_quota(&mut r, &empty);
            return r;
        }
        Some(Fault::Delay(d)) => tokio::time::sleep(d).await,
        _ => {}
    }
    let (body, next) = read_page(shared, &query);
    let origin = if fault == Some(Fault::ForeignNextLink) {
        FOREIGN_ORIGIN
    } else {
        shared.base_url.as_str()
    };
    let self_after = url::form_urlencoded::parse(raw.as_bytes())
        .find(|(k, _)| k == "after")
        .map(|(_, v)| v.into_owned());
    let mut response = match fault {
        Some(Fault::TruncatedBody) => json_response(200, body[..body.len() / 2].to_string()),
        Some(Fault::MalformedBody) => {
            json_response(200, "<html><body>upstream error</body></html>".into())
        }
        Some(Fault::DropConnection) => broken_stream(body),
        _ => json_response(200, body),
    };
    set_header(
        &mut response,
        "link",
        format!(
            "<{}>; rel=\"self\"",
            link(&shared.base_url, &query.carried, self_after.as_deref())
        ),
    );
    if let Some(after) = next {
        let token = shared.cursors.encode(after);
        set_header(
            &mut response,
            "link",
            format!(
                "<{}>; rel=\"next\"",
                link(origin, &query.carried, Some(&token))
            ),
        );
    }
    response
}

/// A 200 whose body breaks off after half of it was sent.
fn broken_stream(body: String) -> Response {
    let bytes = Bytes::from(body.into_bytes());
    let first = bytes.slice(..bytes.len() / 2);
    // States: Some(Some(half)) sends the half, Some(None) breaks the stream, None ends it.
    let chunks = futures_util::stream::unfold(Some(Some(first)), |state| async move {
        match state? {
            Some(chunk) => Some((Ok(chunk), Some(None))),
            None => {
                // Let the headers and the first half reach the client before the reset.
                tokio::time::sleep(Duration::from_millis(20)).await;
                let reset = std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "simulated connection drop",
                );
                Some((Err(reset), None))
            }
        }
    });
    let mut r = Response::new(Body::from_stream(chunks));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn read_page(shared: &Shared, q: &LogsQuery) -> (String, Option<After>) {
    let log = shared.log.read().unwrap();
    let sel = Selection {
        filter: &q.filter,
        keywords: &q.keywords,
    };
    let now = now_ms();
    let bounded = q.until.is_some() || q.descending;
    let slice = if bounded {
        let until = q.until.unwrap_or(now);
        let since = q.since.unwrap_or(until - DEFAULT_LOOKBACK_MS);
        log.bounded(since, until, q.descending, q.after, &sel, q.limit)
    } else {
        match q.after {
            Some(After::Poll { next_seq }) => log.poll(next_seq as usize, None, &sel, q.limit),
            _ => log.poll(
                0,
                Some(q.since.unwrap_or(now - DEFAULT_LOOKBACK_MS)),
                &sel,
                q.limit,
            ),
        }
    };
    (log.render_page(&slice.seqs), slice.next)
}

fn refused(refusal: Refusal) -> Response {
    match refusal {
        Refusal::InvalidToken {
            scheme,
            description,
        } => {
            let mut r = okta_error(401, "E0000011", "Invalid token provided");
            set_header(
                &mut r,
                "www-authenticate",
                format!("{scheme} error=\"invalid_token\", error_description=\"{description}\", resource=\"/api/v1/logs\""),
            );
            r
        }
        Refusal::InsufficientScope { scheme } => {
            let mut r = okta_error(
                403,
                "E0000006",
                "You do not have permission to perform the requested action",
            );
            set_header(
                &mut r,
                "www-authenticate",
                format!("{scheme} error=\"insufficient_scope\", error_description=\"The access token provided does not contain the required scopes.\", resource=\"/api/v1/logs\", scope=\"{LOGS_SCOPE}\""),
            );
            r
        }
    }
}

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

pub(crate) async fn token(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    form: Result<Form<TokenForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let fault = shared.faults.lock().unwrap().take(Endpoint::Token);
    match fault {
        Some(Fault::TokenEndpointStatus(status)) => {
            return okta_error(
                status,
                "E0000009",
                &format!("Internal Server Error (HTTP {status})"),
            )
        }
        Some(Fault::TokenEndpointDelay(delay)) => tokio::time::sleep(delay).await,
        _ => {}
    }
    let form = form.map(|Form(f)| f).unwrap_or_default();
    let token_url = format!("{}/oauth2/v1/token", shared.base_url);
    let now_s = OffsetDateTime::now_utc().unix_timestamp();
    let result =
        shared
            .auth
            .lock()
            .unwrap()
            .grant(&form, header_str(&headers, "dpop"), &token_url, now_s);
    match result {
        Ok(grant) => json_response(
            200,
            json!({
                "token_type": grant.token_type,
                "expires_in": grant.expires_in,
                "access_token": grant.access_token,
                "scope": grant.scope,
            })
            .to_string(),
        ),
        Err(e) => {
            let mut r = json_response(
                e.status,
                json!({"error": e.error, "error_description": e.description}).to_string(),
            );
            if let Some(nonce) = e.dpop_nonce {
                set_header(&mut r, "dpop-nonce", nonce);
            }
            r
        }
    }
}

/// Records every API request (not the control API) for tests to inspect.
pub(crate) async fn record(
    State(shared): State<Arc<Shared>>,
    request: Request<Body>,
    next: Next,
) -> Response {
    let method = request.method().to_string();
    let path = request.uri().path().to_string();
    let query = request.uri().query().map(str::to_string);
    let auth_scheme = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(' ').next())
        .map(|s| match s.to_ascii_lowercase().as_str() {
            "ssws" => "SSWS".to_string(),
            "bearer" => "Bearer".to_string(),
            "dpop" => "DPoP".to_string(),
            other => other.to_string(),
        });
    let response = next.run(request).await;
    shared.requests.lock().unwrap().push(RequestRecord {
        method,
        path,
        query,
        status: response.status().as_u16(),
        auth_scheme,
        at: OffsetDateTime::now_utc(),
    });
    response
}

/// How long shutdown waits for in-flight responses.
pub(crate) const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
