//! Whose events reached the stream: every record read back must be an event of the org behind
//! its own `connector_id`, carry that org, and every event the normalizer accepts from each org
//! must be there under its connector.

use std::collections::{HashMap, HashSet};

use okta_ingest::normalize::{CatalogPolicy, Normalizer, NormalizerConfig};
use okta_ingest::testkit::moto::StreamRecord;
use okta_sim::SimFleet;
use serde_json::Value;

use super::{connector_id, connector_index};

#[derive(Debug, Default)]
pub struct Attribution {
    pub records: usize,
    /// Events the orgs hold that the connector must publish.
    pub expected: usize,
    /// Expected events delivered under their own connector (each counted once).
    pub delivered: usize,
    pub missing: usize,
    /// Records under a connector that is not their org's, naming another org, or unreadable.
    pub misattributed: usize,
    /// Records of an event already delivered under the same connector (at-least-once replays).
    pub duplicates: usize,
    /// Connectors with every expected event and nothing foreign.
    pub complete_connectors: usize,
    pub example: Option<String>,
}

impl Attribution {
    pub fn passed(&self, connectors: usize) -> bool {
        self.misattributed == 0
            && self.missing == 0
            && self.expected > 0
            && self.complete_connectors == connectors
    }
}

pub fn check(fleet: &SimFleet, records: &[StreamRecord]) -> Attribution {
    let now = time::OffsetDateTime::now_utc();
    let mut owner: HashMap<String, usize> = HashMap::new();
    let mut expected: Vec<HashSet<String>> = Vec::with_capacity(fleet.len());
    let mut hosts = Vec::with_capacity(fleet.len());
    for (index, sim) in fleet.orgs().iter().enumerate() {
        let host = url::Url::parse(&sim.base_url())
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_default();
        let normalizer = Normalizer::new(NormalizerConfig {
            org: host.clone(),
            connector_id: connector_id(index),
            policy: CatalogPolicy::Catalog,
            include_raw: false,
        });
        let mut ids = HashSet::new();
        for event in sim.events() {
            if let Some(uuid) = event["uuid"].as_str() {
                owner.insert(uuid.to_owned(), index);
            }
            if let Ok(record) = normalizer.normalize(&event.to_string(), now) {
                ids.insert(record.event_id);
            }
        }
        expected.push(ids);
        hosts.push(host);
    }

    let mut run = Attribution {
        records: records.len(),
        expected: expected.iter().map(HashSet::len).sum(),
        ..Attribution::default()
    };
    let mut delivered: Vec<HashSet<String>> = vec![HashSet::new(); fleet.len()];
    let mut foreign = vec![false; fleet.len()];
    for record in records {
        let event: Value = serde_json::from_slice(&record.data).unwrap_or(Value::Null);
        let connector = event["connector_id"].as_str().unwrap_or("");
        let event_id = event["event_id"].as_str().unwrap_or("");
        let org = event["org"].as_str().unwrap_or("");
        let index = connector_index(connector).filter(|&i| i < fleet.len());
        let own = index.filter(|&i| {
            owner.get(event_id) == Some(&i) && hosts[i] == org && expected[i].contains(event_id)
        });
        match own {
            Some(i) => {
                if !delivered[i].insert(event_id.to_owned()) {
                    run.duplicates += 1;
                }
            }
            None => {
                run.misattributed += 1;
                if let Some(i) = index {
                    foreign[i] = true;
                }
                run.example.get_or_insert_with(|| {
                    format!(
                        "event {event_id} of org {:?} under connector {connector:?} (org {org:?})",
                        owner.get(event_id).map(|&i| connector_id(i))
                    )
                });
            }
        }
    }
    for (i, ids) in expected.iter().enumerate() {
        let got = ids.iter().filter(|id| delivered[i].contains(*id)).count();
        run.delivered += got;
        run.missing += ids.len() - got;
        if got == ids.len() && !foreign[i] && !ids.is_empty() {
            run.complete_connectors += 1;
        } else if got < ids.len() {
            run.example.get_or_insert_with(|| {
                format!(
                    "{} of {} events of {} missing",
                    ids.len() - got,
                    ids.len(),
                    connector_id(i)
                )
            });
        }
    }
    run
}
