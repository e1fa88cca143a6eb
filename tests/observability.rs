//! The metrics of real runs: duplicates replayed after partial deliveries bound the duplicates
//! that actually reach the sink, and a paused connector reports Paused=1 for the alarm.
#![cfg(feature = "testkit")]

use okta_ingest::actions::Outcome;
use okta_ingest::cursor::memory::CursorOp;
use okta_ingest::lambda::metrics::metrics_document;
use okta_ingest::testkit::rig::{sim_config, Rig};

fn replayed(result: &Result<okta_ingest::actions::Summary, okta_ingest::actions::Summary>) -> u64 {
    let summary = match result {
        Ok(summary) | Err(summary) => summary,
    };
    summary.drain.as_ref().map_or(0, |d| d.duplicates_replayed)
}

#[tokio::test]
async fn a_publish_failing_mid_page_reports_an_upper_bound_of_the_duplicates() {
    let rig = Rig::start(sim_config(2500, 71)).await;
    // The second page fails after 300 of its records reached the sink.
    rig.sink.fail_after(1000 + 300);
    let failed = rig.poll().await;
    // Earlier pages were checkpointed, so the run counts as progress, but it stopped failed.
    let stop = failed
        .as_ref()
        .unwrap_or_else(|s| s)
        .drain
        .as_ref()
        .and_then(|d| d.stop_reason);
    assert_eq!(stop, Some(okta_ingest::drain::StopReason::Failed));
    let reported = replayed(&failed);
    rig.poll_until_caught_up(3).await;
    let duplicates = rig.assert_nothing_missing() as u64;
    assert!(
        duplicates >= 300,
        "the delivered part was replayed: {duplicates}"
    );
    assert!(
        reported >= duplicates,
        "reported {reported} < actual {duplicates}"
    );
    assert!(reported <= 1000, "at most one page: {reported}");
}

#[tokio::test]
async fn a_lost_checkpoint_reports_its_whole_page_as_replayed() {
    let rig = Rig::start(sim_config(1500, 72)).await;
    rig.store.fail_next(CursorOp::Checkpoint, 1);
    let failed = rig.poll().await;
    let first_page = failed
        .as_ref()
        .unwrap_err()
        .drain
        .as_ref()
        .map(|d| d.published)
        .unwrap();
    assert_eq!(replayed(&failed), first_page);
    rig.poll_until_caught_up(3).await;
    assert_eq!(rig.assert_nothing_missing() as u64, first_page);
}

#[tokio::test]
async fn runs_without_failures_report_no_duplicates() {
    let rig = Rig::start(sim_config(1500, 73)).await;
    let summary = rig.poll().await;
    assert_eq!(replayed(&summary), 0);
    let doc = metrics_document(&summary.unwrap(), time::OffsetDateTime::now_utc());
    assert_eq!(doc["DuplicatesReplayed"].as_f64(), Some(0.0));
    assert_eq!(doc["Paused"].as_f64(), Some(0.0));
}

#[tokio::test]
async fn a_paused_connector_emits_paused_one_on_every_poll() {
    let rig = Rig::start(sim_config(100, 74)).await;
    let disabled = rig.disable("maintenance").await.unwrap();
    let now = time::OffsetDateTime::now_utc();
    assert_eq!(
        metrics_document(&disabled, now)["Paused"].as_f64(),
        Some(1.0)
    );
    for _ in 0..2 {
        let polled = rig.poll().await.unwrap();
        assert_eq!(polled.outcome, Outcome::Paused);
        let doc = metrics_document(&polled, now);
        assert_eq!(doc["Paused"].as_f64(), Some(1.0), "{doc}");
    }
    let resumed = rig.resume().await.unwrap();
    assert_eq!(
        metrics_document(&resumed, now)["Paused"].as_f64(),
        Some(0.0)
    );
}
