//! Many simulated orgs in one process, for fleet tests and benchmarks. Each org is a whole
//! [`Simulator`] on its own 127.0.0.1 port, so its events, clients, tokens, faults and
//! rate-limit bucket are its own, and a connector tells the orgs apart by org URL, as it would
//! tell `acme.okta.com` from `globex.okta.com`.

use std::collections::HashMap;

use crate::{SimConfig, Simulator};

/// Why a fleet could not start.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("orgs {first} and {second} share seed {seed}: give each org its own seed, so that their events (and uuids) differ")]
    SharedSeed {
        first: usize,
        second: usize,
        seed: u64,
    },
    #[error("{count} orgs from port {first_port} run past port 65535: pick a lower first port, or 0 for free ports")]
    PortRange { first_port: u16, count: usize },
    #[error("org {org} could not listen on 127.0.0.1:{port}: {source}")]
    Listen {
        org: usize,
        port: u16,
        source: std::io::Error,
    },
}

/// A running set of simulated orgs, numbered from 0.
pub struct SimFleet {
    orgs: Vec<Simulator>,
    by_port: HashMap<u16, usize>,
}

impl SimFleet {
    /// Starts one org per configuration, each on a free port.
    pub async fn start(configs: Vec<SimConfig>) -> Result<SimFleet, FleetError> {
        SimFleet::start_on(configs, 0).await
    }

    /// Starts one org per configuration on ports `first_port`, `first_port + 1`, ... (0: each
    /// on a free port).
    pub async fn start_on(
        configs: Vec<SimConfig>,
        first_port: u16,
    ) -> Result<SimFleet, FleetError> {
        let mut seeds: HashMap<u64, usize> = HashMap::new();
        for (org, config) in configs.iter().enumerate() {
            if let Some(&first) = seeds.get(&config.seed) {
                return Err(FleetError::SharedSeed {
                    first,
                    second: org,
                    seed: config.seed,
                });
            }
            seeds.insert(config.seed, org);
        }
        if first_port != 0 && usize::from(first_port) + configs.len() > 65536 {
            return Err(FleetError::PortRange {
                first_port,
                count: configs.len(),
            });
        }
        let mut orgs = Vec::with_capacity(configs.len());
        for (org, config) in configs.into_iter().enumerate() {
            // In range: checked above.
            let port = if first_port == 0 {
                0
            } else {
                first_port + org as u16
            };
            match Simulator::start_on(config, port).await {
                Ok(sim) => orgs.push(sim),
                Err(source) => {
                    shutdown_all(orgs).await;
                    return Err(FleetError::Listen { org, port, source });
                }
            }
        }
        let by_port = orgs
            .iter()
            .enumerate()
            .map(|(i, sim)| (sim.local_addr().port(), i))
            .collect();
        Ok(SimFleet { orgs, by_port })
    }

    /// `count` orgs made from `config`, org `i` with seed `config.seed + i`.
    pub async fn uniform(count: usize, config: SimConfig) -> Result<SimFleet, FleetError> {
        let configs = (0..count as u64)
            .map(|i| SimConfig {
                seed: config.seed.wrapping_add(i),
                ..config.clone()
            })
            .collect();
        SimFleet::start(configs).await
    }

    pub fn len(&self) -> usize {
        self.orgs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.orgs.is_empty()
    }

    /// Org `index` (panics past the end, like indexing).
    pub fn org(&self, index: usize) -> &Simulator {
        &self.orgs[index]
    }

    pub fn orgs(&self) -> &[Simulator] {
        &self.orgs
    }

    /// Which org serves `url` (an org URL or any URL on its port), if any.
    pub fn org_index(&self, url: &str) -> Option<usize> {
        let url = url::Url::parse(url).ok()?;
        self.by_port.get(&url.port_or_known_default()?).copied()
    }

    /// Stops every org.
    pub async fn shutdown(self) {
        shutdown_all(self.orgs).await;
    }
}

async fn shutdown_all(orgs: Vec<Simulator>) {
    let mut stopping = tokio::task::JoinSet::new();
    for sim in orgs {
        stopping.spawn(sim.shutdown());
    }
    while stopping.join_next().await.is_some() {}
}
