//! The fault suite: many invocations against the Okta simulator and the in-memory AWS twins,
//! with faults drawn from a seeded RNG, proving the resilience contract end to end: every
//! human-attributable event is delivered at least once, duplicates come only from replays of
//! unacknowledged pages, a paused connector calls Okta no more, and resume continues without
//! loss. The same seed replays the same fault schedule.
#![cfg(feature = "testkit")]

// The shared helpers include schema checks this suite does not need.
#[allow(dead_code)]
use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use okta_ingest::actions::{Outcome, RunError, Summary};
use okta_ingest::cursor::memory::CursorOp;
use okta_ingest::cursor::PausedBy;
use okta_ingest::drain::StopReason;
use okta_ingest::invocation::Action;
use okta_ingest::settings::RunSettings;
use okta_ingest::testkit::keys::EcKey;
use okta_ingest::testkit::rig::{sim_config, test_settings, Rig, CONNECTOR};
use okta_sim::{ClientRegistration, Fault, FaultKind, RateLimitConfig};
use serde_json::{json, Value};

/// Small pages make drains long and bound the replay of one unacknowledged page tightly.
const PAGE_LIMIT: u32 = 100;
const CLIENT_ID: &str = "0oafaultsuite";
/// The lease owner the suite uses for "another invocation took over".
const INTRUDER: &str = "intruder-invocation";
const POLL_BUDGET: Duration = Duration::from_secs(20);

/// SplitMix64: a tiny generator whose sequence never changes, so seeds stay reproducible.
struct SplitMix(u64);

impl SplitMix {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// Uniform in `lo..=hi`.
    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    fn chance(&mut self, p: f64) -> bool {
        let unit = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        unit < p
    }
}

/// What a run injected and observed; printed as the summary table.
#[derive(Default)]
struct Tally {
    faults: BTreeMap<&'static str, u32>,
    /// The step chosen for each scheduled invocation: a function of the seed alone.
    schedule: Vec<u64>,
    outcomes: BTreeMap<&'static str, u32>,
    invocations: u32,
    /// Injections that can leave a published page without its checkpoint (a replay follows).
    replay_risks: u32,
    /// Pauses seen, by who paused.
    pauses: BTreeMap<&'static str, u32>,
    /// Leases left behind (lost claim answer, failed release, death, theft) that expired.
    expired_leases: u32,
}

impl Tally {
    fn fault(&mut self, name: &'static str) {
        *self.faults.entry(name).or_default() += 1;
    }
}

/// The result of one seeded run.
struct Report {
    seed: u64,
    tally: Tally,
    events_in_okta: usize,
    expected: usize,
    delivered_records: usize,
    missing: Vec<String>,
    unexpected: Vec<String>,
    duplicates: usize,
}

fn suite_settings() -> RunSettings {
    let mut settings = test_settings();
    settings.drain.page_limit = PAGE_LIMIT;
    // Short timeouts so injected hangs cost little wall time.
    settings.okta.request_timeout = Duration::from_millis(800);
    // Tokens live two seconds in the simulator: renewals and expiries happen mid-drain.
    settings.okta.token_renew_margin = Duration::from_millis(500);
    // Every invocation reads the secret, so Secrets Manager faults and rotations always bite.
    settings.secret_cache_ttl = Duration::ZERO;
    settings
}

struct Scenario {
    rig: Rig,
    rng: SplitMix,
    seed: u64,
    keys: Vec<EcKey>,
    key_serial: u32,
    tally: Tally,
    /// A deactivation happened since the last resume: an immediate pause is expected.
    app_deactivated: bool,
}

impl Scenario {
    async fn start(seed: u64) -> Scenario {
        let mut config = sim_config(400, seed);
        config.token_ttl = Duration::from_secs(2);
        let first = EcKey::generate("k0");
        config.clients = vec![registration(&[&first])];
        let rig = Rig::with_settings(config, suite_settings()).await;
        // A short rate-limit window: a 429 waits for a reset at most a second or two away.
        rig.sim.set_rate_limit(Some(RateLimitConfig {
            limit: 1_000_000,
            window: Duration::from_secs(1),
        }));
        let scenario = Scenario {
            rig,
            rng: SplitMix(seed ^ 0xFA17_5EED),
            seed,
            keys: vec![first],
            key_serial: 0,
            tally: Tally::default(),
            app_deactivated: false,
        };
        scenario.store_secret();
        scenario
    }

    fn store_secret(&self) {
        let keys: Vec<Value> = self.keys.iter().map(EcKey::private_jwk).collect();
        let secret = json!({"org_url": self.rig.sim.base_url(),
            "auth": {"type": "oauth2", "client_id": CLIENT_ID, "private_key": keys}});
        self.rig.secrets.set(CONNECTOR, &secret.to_string());
    }

    /// Runs `invocations` seeded steps and the recovery phase, then compares with Okta.
    async fn run(mut self, invocations: u32) -> Report {
        for _ in 0..invocations {
            self.step().await;
        }
        self.recover().await;
        self.verify()
    }

    /// One scheduled invocation: Okta gains events, a fault is chosen, the connector runs.
    async fn step(&mut self) {
        let fresh = self.rng.below(150) as usize;
        self.rig.sim.append_events(fresh);
        let has_cursor = self
            .rig
            .store
            .snapshot(CONNECTOR)
            .is_some_and(|item| item.cursor.is_some());
        // Drawn unconditionally so timing never shifts the seeded schedule.
        let late = self.rng.chance(0.2);
        let n = self.rng.between(1, 20) as usize;
        let age = Duration::from_secs(60 * self.rng.between(1, 180));
        // Late-persisted events are only reachable through the polling cursor, as in Okta.
        if has_cursor && late {
            self.rig.sim.append_late_events(n, age);
            self.tally.fault("late-persisted events");
        }
        let choice = self.rng.below(27);
        self.tally.schedule.push(choice);
        match choice {
            0..=3 => {
                self.poll().await;
            }
            4 => self.okta_fault("429 storm", Fault::RateLimited, 1, 3).await,
            5 => {
                let status = [500, 502, 503, 504][self.rng.below(4) as usize];
                self.okta_fault("5xx burst", Fault::Status(status), 1, 8)
                    .await
            }
            6 => {
                let delay = Duration::from_millis(1000);
                self.okta_fault("request timeout", Fault::Delay(delay), 1, 2)
                    .await
            }
            7 => {
                self.okta_fault("dropped connection", Fault::DropConnection, 1, 3)
                    .await
            }
            8 => {
                self.okta_fault("truncated page", Fault::TruncatedBody, 1, 2)
                    .await
            }
            9 => {
                self.okta_fault("malformed page", Fault::MalformedBody, 1, 1)
                    .await
            }
            10 => {
                self.okta_fault("foreign next link", Fault::ForeignNextLink, 1, 1)
                    .await
            }
            11 => self.random_okta_faults().await,
            12 => self.token_endpoint_outage().await,
            13 => self.token_revoked_mid_drain().await,
            14 => self.rotate_key().await,
            15 => self.deactivate_app().await,
            16 => self.sink_fault().await,
            17 | 18 => self.store_fault().await,
            19 => {
                let n = self.rng.between(1, 3) as u32;
                self.rig.secrets.fail_next(n);
                self.tally.fault("secrets manager error");
                self.poll().await;
            }
            20 | 21 => self.steal_lease_mid_drain().await,
            22 | 23 => self.process_death().await,
            24 => self.overlapping_invocations().await,
            25 => self.extended_outage().await,
            _ => self.operator_disable().await,
        }
        self.rig.sim.clear_faults();
        self.after_invocation().await;
    }

    /// A scheduled poll whose outcome the later checks judge (failures are expected here).
    async fn poll(&mut self) {
        self.poll_result().await.ok();
    }

    async fn poll_result(&mut self) -> Result<Summary, Summary> {
        let failures_before = self
            .rig
            .store
            .snapshot(CONNECTOR)
            .map_or(0, |item| item.consecutive_failures);
        let result = self.rig.invoke(Action::Poll, POLL_BUDGET).await;
        self.record(&result);
        self.check_failure_accounting(&result, failures_before);
        result
    }

    /// Progress resets the failure count even when the run then stopped on a transient
    /// failure; a run without progress that ends in failure adds exactly one.
    fn check_failure_accounting(&self, result: &Result<Summary, Summary>, before: u32) {
        let summary = result.as_ref().unwrap_or_else(|s| s);
        let (Some(drain), Some(state)) = (&summary.drain, &summary.state) else {
            return;
        };
        if state.paused || drain.stop_reason == Some(StopReason::LeaseLost) {
            return;
        }
        if drain.checkpoints > 0 {
            assert_eq!(
                state.consecutive_failures, 0,
                "seed {}: a run that made progress is a success: {summary:?}",
                self.seed
            );
        } else if result.is_err() && !matches!(summary.error, Some(RunError::Cursor(_))) {
            assert_eq!(
                state.consecutive_failures,
                before + 1,
                "seed {}: a failed run without progress counts once: {summary:?}",
                self.seed
            );
        }
    }

    fn record(&mut self, result: &Result<Summary, Summary>) {
        self.tally.invocations += 1;
        let summary = result.as_ref().unwrap_or_else(|s| s);
        *self
            .tally
            .outcomes
            .entry(summary.outcome.as_str())
            .or_default() += 1;
    }

    async fn okta_fault(&mut self, name: &'static str, fault: Fault, lo: u64, hi: u64) {
        let times = self.rng.between(lo, hi) as u32;
        self.rig.sim.inject(fault, times);
        self.tally.fault(name);
        self.poll().await;
    }

    async fn random_okta_faults(&mut self) {
        let probability = 0.05 + self.rng.below(25) as f64 / 100.0;
        let kinds = vec![
            FaultKind::Status,
            FaultKind::Delay,
            FaultKind::DropConnection,
            FaultKind::TruncatedBody,
            FaultKind::MalformedBody,
            FaultKind::ForeignNextLink,
            FaultKind::TokenEndpointStatus,
        ];
        self.rig
            .sim
            .set_random_faults(self.rng.next_u64(), probability, kinds);
        self.tally.fault("random okta faults");
        self.poll().await;
    }

    /// Revoked tokens force a token request, which meets the outage.
    async fn token_endpoint_outage(&mut self) {
        let times = self.rng.between(1, 6) as u32;
        self.rig.sim.revoke_tokens();
        self.rig.sim.inject(Fault::TokenEndpointStatus(503), times);
        self.tally.fault("token endpoint outage");
        self.poll().await;
    }

    async fn token_revoked_mid_drain(&mut self) {
        let after = Duration::from_millis(self.rng.below(200));
        self.rig
            .sim
            .inject(Fault::Delay(Duration::from_millis(150)), 2);
        self.tally.fault("token expiry mid-drain");
        let sim = &self.rig.sim;
        let revoke = async {
            tokio::time::sleep(after).await;
            sim.revoke_tokens();
        };
        let (result, ()) = tokio::join!(self.rig.invoke(Action::Poll, POLL_BUDGET), revoke);
        self.record(&result);
    }

    /// The secret gains a new key and the app forgets the old one: the client falls back to
    /// the new key.
    async fn rotate_key(&mut self) {
        self.key_serial += 1;
        let new = EcKey::generate(format!("k{}", self.key_serial));
        self.rig.sim.register_client(registration(&[&new]));
        let current = self.keys.pop().expect("the app always has a key");
        self.keys = vec![current, new];
        self.store_secret();
        self.tally.fault("key rotation");
        self.poll().await;
        // The retired key leaves the secret once the rotation is done.
        self.keys.remove(0);
        self.store_secret();
    }

    async fn deactivate_app(&mut self) {
        self.rig.sim.set_client_active(CLIENT_ID, false);
        self.app_deactivated = true;
        self.tally.fault("deactivated app");
        self.poll().await;
    }

    async fn sink_fault(&mut self) {
        match self.rng.below(3) {
            0 => {
                self.rig.sink.fail_after(self.rng.below(250) as usize);
                self.tally.fault("kinesis publish dies part-way");
                self.tally.replay_risks += 1;
            }
            1 => {
                self.rig.sink.reject_once(self.rng.between(1, 60) as usize);
                self.tally.fault("kinesis partial failure (retried)");
            }
            _ => {
                self.rig.sink.fail_next(self.rng.between(1, 2) as u32);
                self.tally.fault("kinesis throttled");
            }
        }
        self.poll().await;
    }

    async fn store_fault(&mut self) {
        let ops = [
            CursorOp::Claim,
            CursorOp::Checkpoint,
            CursorOp::Release,
            CursorOp::Load,
        ];
        let op = ops[self.rng.below(ops.len() as u64) as usize];
        if self.rng.chance(0.5) {
            self.rig.store.fail_next(op, 1);
            self.tally.fault(match op {
                CursorOp::Claim => "dynamodb throttled: claim",
                CursorOp::Checkpoint => "dynamodb throttled: checkpoint",
                CursorOp::Release => "dynamodb throttled: release",
                _ => "dynamodb throttled: load",
            });
            if op == CursorOp::Checkpoint {
                // The page was published; its checkpoint did not land.
                self.tally.replay_risks += 1;
            }
        } else {
            self.rig.store.lose_next_response(op, 1);
            self.tally.fault(match op {
                CursorOp::Claim => "dynamodb answer lost: claim",
                CursorOp::Checkpoint => "dynamodb answer lost: checkpoint",
                CursorOp::Release => "dynamodb answer lost: release",
                _ => "dynamodb answer lost: load",
            });
        }
        self.poll().await;
    }

    async fn steal_lease_mid_drain(&mut self) {
        let after = Duration::from_millis(self.rng.below(250));
        self.rig
            .sim
            .inject(Fault::Delay(Duration::from_millis(100)), 2);
        self.tally.fault("lease stolen mid-drain");
        self.tally.replay_risks += 1;
        let store = self.rig.store.clone();
        let thief = async {
            tokio::time::sleep(after).await;
            store.steal_lease(CONNECTOR, INTRUDER);
        };
        let (result, ()) = tokio::join!(self.rig.invoke(Action::Poll, POLL_BUDGET), thief);
        self.record(&result);
        let item = self.rig.store.snapshot(CONNECTOR).unwrap();
        assert_eq!(
            item.lease_owner.as_deref(),
            Some(INTRUDER),
            "seed {}: the fenced invocation must not release the thief's lease",
            self.seed
        );
    }

    /// The runtime kills the invocation at a random point, between publish and checkpoint
    /// included: its lease stays behind and blocks the next invocation until it expires.
    async fn process_death(&mut self) {
        if self.rng.chance(0.5) {
            self.rig
                .sim
                .inject(Fault::Delay(Duration::from_millis(60)), 3);
        }
        let dies_after = Duration::from_millis(self.rng.between(1, 200));
        let invocation = self.rig.invoke(Action::Poll, POLL_BUDGET);
        match tokio::time::timeout(dies_after, invocation).await {
            Ok(result) => self.record(&result),
            Err(_) => {
                self.tally.invocations += 1;
                *self.tally.outcomes.entry("killed").or_default() += 1;
                self.tally.fault("process death");
                self.tally.replay_risks += 1;
                let held_lease = self
                    .rig
                    .store
                    .snapshot(CONNECTOR)
                    .is_some_and(|item| item.lease_owner.is_some());
                if held_lease {
                    let before = self.okta_requests();
                    let blocked = self
                        .poll_result()
                        .await
                        .expect("a held lease is not a failure");
                    assert_eq!(blocked.outcome, Outcome::LeaseHeld, "seed {}", self.seed);
                    assert_eq!(self.okta_requests(), before, "seed {}", self.seed);
                }
            }
        }
    }

    async fn overlapping_invocations(&mut self) {
        self.rig
            .sim
            .inject(Fault::Delay(Duration::from_millis(150)), 1);
        self.tally.fault("overlapping invocations");
        let (a, b) = tokio::join!(
            self.rig.invoke(Action::Poll, POLL_BUDGET),
            self.rig.invoke(Action::Poll, POLL_BUDGET)
        );
        self.record(&a);
        self.record(&b);
        // The first to reach Okta holds its lease through the delayed response, so the other
        // one claims while it is held; one of them may still fail before reading a page.
        let drained = [&a, &b]
            .iter()
            .filter(|r| {
                let summary = r.as_ref().unwrap_or_else(|s| s);
                summary.drain.as_ref().is_some_and(|d| d.pages > 0)
            })
            .count();
        assert!(
            drained <= 1,
            "seed {}: two invocations drained at once: {a:?} {b:?}",
            self.seed
        );
    }

    /// Okta keeps failing: each scheduled poll fails without progress until the connector
    /// pauses itself at the threshold.
    async fn extended_outage(&mut self) {
        self.tally.fault("extended okta outage");
        let threshold = suite_settings().pause_after_failures;
        for _ in 0..threshold {
            self.rig.sim.inject(Fault::Status(503), 100);
            self.poll().await;
            self.rig.sim.clear_faults();
            let item = self.rig.store.snapshot(CONNECTOR).unwrap();
            if item.paused.is_some() {
                return;
            }
            if item.lease_owner.is_some() {
                self.expire_lease();
            }
        }
        panic!(
            "seed {}: {threshold} failed polls in a row did not pause the connector",
            self.seed
        );
    }

    async fn operator_disable(&mut self) {
        self.tally.fault("operator disable");
        let result = self.rig.disable("fault suite maintenance").await;
        self.record(&result);
        result.expect("disable succeeds");
    }

    fn okta_requests(&self) -> usize {
        self.rig.sim.requests().len()
    }

    /// Between scheduled invocations time passes: leases left behind expire, and a paused
    /// connector is checked for silence and resumed.
    async fn after_invocation(&mut self) {
        let Some(item) = self.rig.store.snapshot(CONNECTOR) else {
            return;
        };
        let acknowledged = self.rig.sink.records().len() as u64;
        assert!(
            item.delivered_total <= acknowledged,
            "seed {}: the cursor counts {} delivered events, the sink acknowledged {acknowledged}",
            self.seed,
            item.delivered_total
        );
        if item.consecutive_failures >= suite_settings().pause_after_failures {
            assert!(
                item.paused.is_some(),
                "seed {}: {} consecutive failures must pause",
                self.seed,
                item.consecutive_failures
            );
        }
        if item.lease_owner.is_some() {
            self.expire_lease();
        }
        if let Some(pause) = &item.paused {
            let by = match pause.by {
                PausedBy::Operator => "operator",
                PausedBy::Connector if pause.reason.contains("cannot heal") => {
                    assert!(
                        self.app_deactivated,
                        "seed {}: paused as unhealable without an unhealable fault: {}",
                        self.seed, pause.reason
                    );
                    "connector: unhealable"
                }
                PausedBy::Connector => "connector: consecutive failures",
            };
            *self.tally.pauses.entry(by).or_default() += 1;
            self.assert_paused_is_silent().await;
            self.resume().await;
        }
    }

    fn expire_lease(&mut self) {
        let mut item = self.rig.store.snapshot(CONNECTOR).unwrap();
        item.lease_expires_at = Some(time::OffsetDateTime::now_utc() - time::Duration::seconds(1));
        self.rig.store.seed(item);
        self.tally.expired_leases += 1;
    }

    async fn assert_paused_is_silent(&mut self) {
        let before = self.okta_requests();
        let result = self.poll_result().await;
        let summary = result.expect("a paused poll is not a failure");
        assert_eq!(summary.outcome, Outcome::Paused, "seed {}", self.seed);
        assert_eq!(
            self.okta_requests(),
            before,
            "seed {}: a paused connector calls Okta no more",
            self.seed
        );
    }

    async fn resume(&mut self) {
        if self.app_deactivated {
            self.rig.sim.set_client_active(CLIENT_ID, true);
            self.app_deactivated = false;
        }
        let result = self.rig.resume().await;
        self.record(&result);
        let summary = result.expect("resume succeeds");
        let state = summary.state.expect("resume reports the state");
        assert!(!state.paused && state.consecutive_failures == 0);
    }

    /// Faults stop; the connector is polled until it has caught up (leftover one-shot faults
    /// still fire and heal on the way).
    async fn recover(&mut self) {
        self.rig.sim.clear_faults();
        if self.app_deactivated {
            self.rig.sim.set_client_active(CLIENT_ID, true);
        }
        for _ in 0..40 {
            let result = self.poll_result().await;
            let caught_up = result
                .as_ref()
                .is_ok_and(|s| s.drain.as_ref().is_some_and(|d| d.caught_up));
            self.after_invocation().await;
            if caught_up {
                return;
            }
        }
        panic!("seed {}: not caught up after the faults stopped", self.seed);
    }

    /// Compares the sink with the simulator's ground truth; [`Report::assert_contract`] judges.
    fn verify(self) -> Report {
        let expected = self.rig.expected_ids();
        let delivered = self.rig.delivered();
        let missing: Vec<String> = expected
            .iter()
            .filter(|id| !delivered.contains_key(*id))
            .cloned()
            .collect();
        let unexpected: Vec<String> = delivered
            .keys()
            .filter(|id| !expected.contains(*id))
            .cloned()
            .collect();
        Report {
            seed: self.seed,
            events_in_okta: self.rig.sim.event_count(),
            expected: expected.len(),
            delivered_records: self.rig.sink.records().len(),
            missing,
            unexpected,
            duplicates: delivered.values().map(|n| n - 1).sum(),
            tally: self.tally,
        }
    }
}

impl Report {
    fn duplicate_bound(&self) -> usize {
        self.tally.replay_risks as usize * PAGE_LIMIT as usize
    }

    fn assert_contract(&self) {
        assert!(
            self.missing.is_empty(),
            "seed {}: {} of {} events never delivered, e.g. {:?}",
            self.seed,
            self.missing.len(),
            self.expected,
            &self.missing[..self.missing.len().min(3)]
        );
        assert!(
            self.unexpected.is_empty(),
            "seed {}: delivered events that should be excluded: {:?}",
            self.seed,
            &self.unexpected[..self.unexpected.len().min(3)]
        );
        assert!(
            self.duplicates <= self.duplicate_bound(),
            "seed {}: {} duplicates exceed the replay bound {} ({} replay-risking faults x {PAGE_LIMIT})",
            self.seed,
            self.duplicates,
            self.duplicate_bound(),
            self.tally.replay_risks
        );
    }
}

fn registration(keys: &[&EcKey]) -> ClientRegistration {
    ClientRegistration {
        client_id: CLIENT_ID.into(),
        public_jwks: keys.iter().map(|k| k.public_jwk()).collect(),
        scopes: vec!["okta.logs.read".into()],
        require_dpop: false,
        active: true,
    }
}

fn print_table(reports: &[Report]) {
    let mut faults: BTreeMap<&'static str, u32> = BTreeMap::new();
    let mut outcomes: BTreeMap<&'static str, u32> = BTreeMap::new();
    let mut pauses: BTreeMap<&'static str, u32> = BTreeMap::new();
    for report in reports {
        for (name, n) in &report.tally.faults {
            *faults.entry(name).or_default() += n;
        }
        for (name, n) in &report.tally.outcomes {
            *outcomes.entry(name).or_default() += n;
        }
        for (name, n) in &report.tally.pauses {
            *pauses.entry(name).or_default() += n;
        }
    }
    println!("\nfaults injected                          count");
    for (name, n) in &faults {
        println!("  {name:<38} {n:>6}");
    }
    println!("invocation outcomes");
    for (name, n) in &outcomes {
        println!("  {name:<38} {n:>6}");
    }
    println!("pauses (each checked silent, then resumed)");
    for (name, n) in &pauses {
        println!("  {name:<38} {n:>6}");
    }
    println!(
        "\n{:>6} {:>11} {:>9} {:>9} {:>10} {:>7} {:>10} {:>11} {:>8}",
        "seed",
        "invocations",
        "in okta",
        "expected",
        "delivered",
        "missing",
        "duplicates",
        "dup bound",
        "leases"
    );
    for r in reports {
        println!(
            "{:>6} {:>11} {:>9} {:>9} {:>10} {:>7} {:>10} {:>11} {:>8}",
            r.seed,
            r.tally.invocations,
            r.events_in_okta,
            r.expected,
            r.delivered_records,
            r.missing.len(),
            r.duplicates,
            r.duplicate_bound(),
            r.tally.expired_leases
        );
    }
}

/// Runs each seed to completion (one after the other), prints the table, then judges: the
/// table is there to read also when a seed breaks the contract.
async fn run_seeds(seeds: impl IntoIterator<Item = u64>, invocations: u32) {
    let mut reports = Vec::new();
    for seed in seeds {
        reports.push(Scenario::start(seed).await.run(invocations).await);
    }
    print_table(&reports);
    for report in &reports {
        report.assert_contract();
    }
}

fn env_number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(text) => text
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={text:?} is not a whole number")),
        Err(_) => default,
    }
}

/// Two workers: the simulator serves on the same runtime while the connector and the
/// suite's concurrent thieves and killers run.
fn block_on(run: impl Future<Output = ()>) {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(run);
}

#[test]
fn seeded_faults_lose_no_event_short_run() {
    block_on(run_seeds([1, 2, 3], 40));
}

#[test]
fn same_seed_draws_the_same_schedule() {
    block_on(async {
        let a = Scenario::start(7).await.run(12).await;
        let b = Scenario::start(7).await.run(12).await;
        a.assert_contract();
        assert_eq!(a.tally.schedule, b.tally.schedule);
        let other = Scenario::start(8).await.run(12).await;
        assert_ne!(a.tally.schedule, other.tally.schedule);
    });
}

/// `make soak`: SOAK_SEEDS seeds (default 5) × SOAK_INVOCATIONS invocations (default 1000).
#[test]
#[ignore = "long soak; run with `make soak`"]
fn soak() {
    let seeds = env_number("SOAK_SEEDS", 5);
    let invocations = env_number("SOAK_INVOCATIONS", 1000);
    let first = env_number("SOAK_FIRST_SEED", 100);
    block_on(run_seeds(
        first..first + seeds,
        u32::try_from(invocations).expect("SOAK_INVOCATIONS fits in 32 bits"),
    ));
}
