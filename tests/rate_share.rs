//! The client against the simulator's rate-limit bucket: each window it uses exactly its share,
//! alone or beside another client of the org, and meets no 429. Counts, not durations: which
//! window a request fell in is read from the simulator's own record.
#![cfg(feature = "testkit")]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use okta_ingest::okta::{
    ClientOptions, Credentials, LogSource, Loopback, OktaClient, OktaError, OrgUrl, PageRequest,
};
use okta_ingest::secrets::SecretString;
use okta_sim::{RateLimitConfig, SimConfig, Simulator};
use time::OffsetDateTime;
use tokio::time::Instant;

const TOKEN: &str = "00rate-share-token";
const WINDOW: Duration = Duration::from_secs(2);

async fn simulator(limit: u32) -> Simulator {
    Simulator::start(SimConfig {
        initial_events: 5000,
        backlog_span: Duration::from_secs(600),
        ssws_tokens: vec![TOKEN.into()],
        rate_limit: Some(RateLimitConfig {
            limit,
            window: WINDOW,
        }),
        ..SimConfig::default()
    })
    .await
    .unwrap()
}

fn client(sim: &Simulator) -> OktaClient {
    let org = OrgUrl::parse(&sim.base_url(), Loopback::AllowInsecure).unwrap();
    let credentials = Credentials::Ssws {
        token: SecretString::new(TOKEN.into()),
    };
    OktaClient::new(&org, &credentials, ClientOptions::default()).unwrap()
}

/// Reads small pages until the pacer would wait past `budget`; returns the 429s it met.
async fn drain(client: &OktaClient, budget: Duration) -> u64 {
    let deadline = Instant::now() + budget;
    let mut request = PageRequest::Start {
        since: OffsetDateTime::now_utc() - time::Duration::hours(1),
        until: None,
        limit: 1,
    };
    loop {
        match client.fetch_page(&request, deadline).await {
            Ok(page) => request = PageRequest::Next(page.next.expect("polling pages link on")),
            Err(OktaError::RateLimited | OktaError::DeadlineExceeded) => break,
            Err(other) => panic!("{other}"),
        }
    }
    client.stats().throttled_429
}

/// Requests with `scheme` per simulator window, and how many of them were refused.
fn per_window(sim: &Simulator, scheme: &str) -> BTreeMap<i128, (u32, u32)> {
    let window_ms = WINDOW.as_millis() as i128;
    let mut counts = BTreeMap::new();
    for request in sim.requests() {
        if request.path == "/api/v1/logs" && request.auth_scheme.as_deref() == Some(scheme) {
            let window = request.at.unix_timestamp_nanos() / 1_000_000 / window_ms;
            let entry = counts.entry(window).or_insert((0, 0));
            entry.0 += 1;
            entry.1 += u32::from(request.status == 429);
        }
    }
    counts
}

/// Every window but the first (the drain starts in its middle) and the last (cut by the
/// budget) holds exactly `share` requests of ours, none refused.
fn assert_full_share(counts: &BTreeMap<i128, (u32, u32)>, share: u32) {
    let windows: Vec<_> = counts.values().collect();
    assert!(windows.len() >= 3, "{counts:?}");
    for (requests, refused) in &windows[1..windows.len() - 1] {
        assert_eq!((*requests, *refused), (share, 0), "{counts:?}");
    }
    assert!(
        windows.iter().all(|(_, refused)| *refused == 0),
        "{counts:?}"
    );
}

#[tokio::test]
async fn alone_the_client_uses_its_whole_share_of_every_window() {
    let sim = simulator(20).await;
    let client = client(&sim);
    let throttled = drain(&client, WINDOW * 3 + Duration::from_millis(500)).await;
    assert_eq!(throttled, 0);
    assert_full_share(&per_window(&sim, "SSWS"), 10);
}

#[tokio::test]
async fn beside_another_client_the_share_is_still_used_without_429s() {
    let sim = simulator(40).await;
    // Another client of the org: a request every 200 ms (10 per window, a quarter of the bucket).
    let stop = Arc::new(AtomicBool::new(false));
    let other = tokio::spawn({
        let url = format!("{}/api/v1/logs?limit=1", sim.base_url());
        let stop = stop.clone();
        async move {
            let http = reqwest::Client::new();
            while !stop.load(Ordering::Relaxed) {
                let _ = http
                    .get(&url)
                    .header("Authorization", "Bearer someone-else")
                    .send()
                    .await;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    });
    let client = client(&sim);
    let throttled = drain(&client, WINDOW * 3 + Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    other.await.unwrap();
    assert_eq!(throttled, 0);
    assert_full_share(&per_window(&sim, "SSWS"), 20);
}
