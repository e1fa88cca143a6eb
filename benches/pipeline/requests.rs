//! Okta requests per scheduled poll: with nothing new, with a few new events, and for a backlog.

use std::time::Duration;

use okta_ingest::okta::MAX_PAGE_LIMIT;

use crate::rig::counting_rig;

/// Events in the backlog: more than two pages, not a whole number of them.
pub const BACKLOG: usize = 2_500;
const FEW: usize = 5;

pub struct RequestsPerPoll {
    pub backlog: u64,
    pub idle: u64,
    pub few: u64,
}

impl RequestsPerPoll {
    /// What a drain that stops at the first short page needs for `BACKLOG` events.
    pub fn backlog_target() -> u64 {
        (BACKLOG as u64 + 1).div_ceil(u64::from(MAX_PAGE_LIMIT))
    }
}

pub async fn run() -> RequestsPerPoll {
    let rig = counting_rig(BACKLOG).await;
    let budget = Duration::from_secs(60);
    let backlog = rig.poll_within(budget).await.okta_requests;
    let idle = rig.poll_within(budget).await.okta_requests;
    rig.sim.append_events(FEW);
    let few = rig.poll_within(budget).await.okta_requests;
    rig.shutdown().await;
    RequestsPerPoll { backlog, idle, few }
}
