//! The org URL in the secret changes while the stored cursor still reads the old org: every
//! run fails naming the fix, and the procedure of docs/operations.md ("Org URL changed") makes
//! the connector read the new org without losing its events.
#![cfg(feature = "testkit")]

use std::collections::BTreeSet;
use std::time::Duration;

use okta_ingest::testkit::rig::{sim_config, ssws_secret, test_settings, Rig, CONNECTOR};

#[tokio::test]
async fn a_cursor_of_the_old_org_fails_naming_the_fix_and_the_procedure_reads_the_new_org() {
    // Re-reads the secret on every invocation, as a cold function would.
    let mut settings = test_settings();
    settings.secret_cache_ttl = Duration::ZERO;
    let rig = Rig::with_settings(sim_config(300, 41), settings).await;
    rig.poll_until_caught_up(2).await;
    let before = rig.store.snapshot(CONNECTOR).unwrap();
    let old_org_requests = rig.sim.requests().len();

    // Another org (its own rig, used only for its simulator and the events it expects).
    let new_org = Rig::start(sim_config(200, 42)).await;
    rig.secrets.set(CONNECTOR, &ssws_secret(&new_org.sim));
    let failed = rig.poll().await.expect_err("the cursor reads the old org");
    let message = failed.message.clone().unwrap();
    for part in [
        rig.sim.base_url().as_str(),
        new_org.sim.base_url().as_str(),
        "put its URL back in the secret",
        "remove the `cursor` attribute",
        "`resume`",
        "Org URL changed",
    ] {
        assert!(message.contains(part), "{part:?} missing in: {message}");
    }
    let item = rig.store.snapshot(CONNECTOR).unwrap();
    assert_eq!(item.cursor, before.cursor, "the cursor did not move");
    assert_eq!(
        item.consecutive_failures, 1,
        "an ordinary failure, no pause"
    );
    assert!(item.paused.is_none());
    assert_eq!(
        rig.sim.requests().len(),
        old_org_requests,
        "the new org's credentials never went to the old org"
    );
    assert!(new_org.sim.requests().is_empty());

    // The procedure: remove the live item's cursor, then resume.
    let mut edited = item;
    edited.cursor = None;
    rig.store.seed(edited);
    rig.resume().await.unwrap();
    let restarted = rig.poll().await.unwrap();
    assert!(restarted.drain.as_ref().unwrap().caught_up, "{restarted:?}");

    let delivered: BTreeSet<String> = rig.sink.records().into_iter().map(|r| r.event_id).collect();
    let missing: Vec<_> = new_org
        .expected_ids()
        .difference(&delivered)
        .cloned()
        .collect();
    assert!(missing.is_empty(), "new org events missing: {missing:?}");
    let item = rig.store.snapshot(CONNECTOR).unwrap();
    assert!(item
        .cursor
        .as_deref()
        .is_some_and(|c| c.starts_with(&new_org.sim.base_url())));
    assert_eq!(item.consecutive_failures, 0);
}
