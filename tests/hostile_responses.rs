//! A hostile or broken org: oversized, endless, slow, deeply nested and redirecting answers.
//! The client refuses or bounds each one instead of buffering, hanging or following it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use okta_ingest::config::{ConnectorConfig, ValidationOptions};
use okta_ingest::okta::{ClientOptions, LogSource, OktaClient, OktaError, PageRequest};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

/// Bytes an endless body is allowed to send before the server gives up on its own.
const ENDLESS_LIMIT: usize = 256 * 1024 * 1024;

#[derive(Clone)]
enum Body {
    Fixed(String),
    /// Chunks of `[` until the client hangs up (or `ENDLESS_LIMIT`).
    Endless,
    /// One byte every 100 ms (for at most 10 s).
    Drip,
}

#[derive(Clone)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Body,
}

impl Reply {
    fn new(status: u16, body: Body) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body,
        }
    }

    fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// A one-route-per-path HTTP/1.1 server on loopback that counts what it sends.
struct Org {
    base: String,
    written: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
}

impl Org {
    async fn start(route: impl Fn(&str) -> Reply + Send + Sync + 'static) -> Org {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let written = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(AtomicUsize::new(0));
        let route = Arc::new(route);
        let (w, r) = (written.clone(), requests.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                r.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve(stream, route.clone(), w.clone()));
            }
        });
        Org {
            base,
            written,
            requests,
        }
    }

    fn ssws_config(&self) -> ConnectorConfig {
        let doc = json!({"org_url": self.base, "auth": {"type": "ssws", "token": "00hostile-test-token"}});
        config(&doc.to_string())
    }

    fn oauth_config(&self) -> ConnectorConfig {
        let key = p256::SecretKey::random(&mut p256::elliptic_curve::rand_core::OsRng);
        let point = key.public_key().to_encoded_point(false);
        let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
        let jwk = json!({"kty": "EC", "crv": "P-256", "kid": "k1", "x": b64(point.x().unwrap()),
            "y": b64(point.y().unwrap()), "d": b64(&key.to_bytes())});
        let doc = json!({"org_url": self.base,
            "auth": {"type": "oauth2", "client_id": "0oa-hostile", "private_key": jwk}});
        config(&doc.to_string())
    }
}

fn config(doc: &str) -> ConnectorConfig {
    ConnectorConfig::from_json(
        doc,
        ValidationOptions {
            allow_insecure_loopback: true,
        },
    )
    .unwrap()
}

async fn serve(
    mut stream: TcpStream,
    route: Arc<impl Fn(&str) -> Reply + Send + Sync>,
    written: Arc<AtomicUsize>,
) {
    let mut request = Vec::new();
    let mut buf = [0u8; 4096];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&request);
    let path = text.split_whitespace().nth(1).unwrap_or("/").to_string();
    let reply = route(&path);
    let mut head = format!("HTTP/1.1 {} X\r\nConnection: close\r\n", reply.status);
    for (name, value) in &reply.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    let chunk = vec![b'['; 64 * 1024];
    let result = match reply.body {
        Body::Fixed(body) => {
            head.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
            stream.write_all(head.as_bytes()).await
        }
        Body::Endless => {
            head.push_str("Transfer-Encoding: chunked\r\n\r\n");
            let mut outcome = stream.write_all(head.as_bytes()).await;
            let frame = [format!("{:x}\r\n", chunk.len()).as_bytes(), &chunk, b"\r\n"].concat();
            while outcome.is_ok() && written.load(Ordering::SeqCst) < ENDLESS_LIMIT {
                outcome = stream.write_all(&frame).await;
                written.fetch_add(chunk.len(), Ordering::SeqCst);
            }
            outcome
        }
        Body::Drip => {
            head.push_str("Content-Length: 1000\r\n\r\n[");
            let mut outcome = stream.write_all(head.as_bytes()).await;
            for _ in 0..100 {
                if outcome.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                outcome = stream.write_all(b" ").await;
            }
            outcome
        }
    };
    drop(result);
}

fn options() -> ClientOptions {
    ClientOptions {
        request_timeout: Duration::from_millis(800),
        max_body_bytes: 1024 * 1024,
        backoff_base: Duration::from_millis(10),
        backoff_cap: Duration::from_millis(20),
        max_retries: 0,
        ..ClientOptions::default()
    }
}

fn start() -> PageRequest {
    PageRequest::Start {
        since: time::OffsetDateTime::now_utc() - Duration::from_secs(60),
        until: None,
        limit: 10,
    }
}

async fn fetch(config: &ConnectorConfig) -> Result<okta_ingest::okta::Page, OktaError> {
    fetch_with(config, options()).await
}

async fn fetch_with(
    config: &ConnectorConfig,
    options: ClientOptions,
) -> Result<okta_ingest::okta::Page, OktaError> {
    let client = new_client(config, options).unwrap();
    client
        .fetch_page(&start(), Instant::now() + Duration::from_secs(10))
        .await
}

/// Shortly after the client gave up, the org has sent far less than an endless body would.
async fn assert_client_stopped_reading(org: &Org) {
    tokio::time::sleep(Duration::from_millis(200)).await;
    let sent = org.written.load(Ordering::SeqCst);
    assert!(
        sent < 32 * 1024 * 1024,
        "the client kept reading: {sent} bytes"
    );
}

#[tokio::test]
async fn an_endless_page_is_refused_at_the_cap_without_reading_on() {
    let org = Org::start(|_| Reply::new(200, Body::Endless)).await;
    let err = fetch(&org.ssws_config()).await.unwrap_err();
    assert!(
        matches!(&err, OktaError::MalformedResponse(m) if m.contains("cap")),
        "{err}"
    );
    assert_client_stopped_reading(&org).await;
}

#[tokio::test]
async fn an_announced_oversized_page_is_refused_before_reading() {
    let org = Org::start(|_| Reply::new(200, Body::Fixed("[]".into()))).await;
    // A cap below the announced Content-Length: refused from the header alone.
    let capped = ClientOptions {
        max_body_bytes: 1,
        ..options()
    };
    let err = fetch_with(&org.ssws_config(), capped).await.unwrap_err();
    assert!(
        matches!(&err, OktaError::MalformedResponse(m) if m.contains("2 bytes or more")),
        "{err}"
    );
}

#[tokio::test]
async fn an_endless_error_body_is_cut_and_the_status_still_reported() {
    let org = Org::start(|_| Reply::new(400, Body::Endless)).await;
    let err = fetch(&org.ssws_config()).await.unwrap_err();
    assert!(matches!(err, OktaError::Http { status: 400, .. }), "{err}");
    assert_client_stopped_reading(&org).await;
}

#[tokio::test]
async fn an_endless_token_response_is_cut_and_refused() {
    let org = Org::start(|path| {
        if path.starts_with("/oauth2/") {
            Reply::new(200, Body::Endless)
        } else {
            Reply::new(200, Body::Fixed("[]".into()))
        }
    })
    .await;
    let err = fetch(&org.oauth_config()).await.unwrap_err();
    assert!(
        matches!(&err, OktaError::MalformedResponse(m) if m.contains("token")),
        "{err}"
    );
    assert_client_stopped_reading(&org).await;
}

#[tokio::test]
async fn a_dripping_body_is_cut_off_by_the_request_timeout() {
    let org = Org::start(|_| Reply::new(200, Body::Drip)).await;
    let started = std::time::Instant::now();
    let err = fetch(&org.ssws_config()).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        matches!(err, OktaError::Transport(_) | OktaError::DeadlineExceeded),
        "{err}"
    );
}

#[tokio::test]
async fn a_redirect_is_not_followed_with_the_credentials() {
    let elsewhere = Org::start(|_| Reply::new(200, Body::Fixed("[]".into()))).await;
    let target = format!("{}/api/v1/logs", elsewhere.base);
    let org = Org::start(move |_| {
        Reply::new(302, Body::Fixed(String::new())).header("Location", &target)
    })
    .await;
    let err = fetch(&org.ssws_config()).await.unwrap_err();
    assert!(matches!(err, OktaError::Http { status: 302, .. }), "{err}");
    assert_eq!(elsewhere.requests.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_foreign_next_link_is_refused() {
    let org = Org::start(|_| {
        Reply::new(200, Body::Fixed("[]".into())).header(
            "Link",
            "<https://attacker.example.com/api/v1/logs?after=1>; rel=\"next\"",
        )
    })
    .await;
    let err = fetch(&org.ssws_config()).await.unwrap_err();
    assert!(matches!(err, OktaError::ForeignNextLink { .. }), "{err}");
}

#[tokio::test]
async fn a_deeply_nested_page_is_read_without_recursion() {
    let depth = 50_000;
    let body = format!(
        "[{{\"uuid\":\"u1\",\"x\":{}{}}}]",
        "[".repeat(depth),
        "]".repeat(depth)
    );
    let org = Org::start(move |_| Reply::new(200, Body::Fixed(body.clone()))).await;
    let page = fetch(&org.ssws_config()).await.unwrap();
    assert_eq!(page.events.len(), 1);
}

fn new_client(config: &ConnectorConfig, options: ClientOptions) -> Result<OktaClient, OktaError> {
    OktaClient::new(&config.org_url, &config.auth, options)
}
