//! Fault injection: scripted (the next N matching requests) or seeded-random.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::rng::SplitMix;

/// A failure the simulator plays instead of (or on top of) a normal response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// `/api/v1/logs` answers this status (500/502/503/504) with an Okta error body.
    Status(u16),
    /// `/api/v1/logs` answers 429 (E0000047) with rate-limit headers and `Retry-After`.
    RateLimited,
    /// The response is held back this long before being sent.
    Delay(Duration),
    /// The connection breaks after part of the body was sent.
    DropConnection,
    /// 200 with the page's JSON cut in half.
    TruncatedBody,
    /// 200 with a body that is not JSON.
    MalformedBody,
    /// A normal page whose next link points at another host.
    ForeignNextLink,
    /// `/oauth2/v1/token` answers this status.
    TokenEndpointStatus(u16),
    /// `/oauth2/v1/token` holds its answer back this long (a long one is a stalled endpoint).
    TokenEndpointDelay(Duration),
}

/// The kinds of [`Fault`], for seeded random fault suites.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    Status,
    RateLimited,
    Delay,
    DropConnection,
    TruncatedBody,
    MalformedBody,
    ForeignNextLink,
    TokenEndpointStatus,
    TokenEndpointDelay,
}

/// Which endpoint a request went to, for matching faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    Logs,
    Token,
}

impl Fault {
    fn endpoint(&self) -> Endpoint {
        match self {
            Fault::TokenEndpointStatus(_) | Fault::TokenEndpointDelay(_) => Endpoint::Token,
            _ => Endpoint::Logs,
        }
    }
}

impl FaultKind {
    fn endpoint(self) -> Endpoint {
        match self {
            FaultKind::TokenEndpointStatus | FaultKind::TokenEndpointDelay => Endpoint::Token,
            _ => Endpoint::Logs,
        }
    }

    fn instantiate(self, rng: &mut SplitMix) -> Fault {
        match self {
            FaultKind::Status => Fault::Status(*rng.pick(&[500, 502, 503, 504])),
            FaultKind::RateLimited => Fault::RateLimited,
            FaultKind::Delay => Fault::Delay(Duration::from_millis(50 + rng.below(200) as u64)),
            FaultKind::DropConnection => Fault::DropConnection,
            FaultKind::TruncatedBody => Fault::TruncatedBody,
            FaultKind::MalformedBody => Fault::MalformedBody,
            FaultKind::ForeignNextLink => Fault::ForeignNextLink,
            FaultKind::TokenEndpointStatus => Fault::TokenEndpointStatus(503),
            FaultKind::TokenEndpointDelay => {
                Fault::TokenEndpointDelay(Duration::from_millis(50 + rng.below(200) as u64))
            }
        }
    }
}

struct RandomFaults {
    rng: SplitMix,
    probability: f64,
    kinds: Vec<FaultKind>,
}

#[derive(Default)]
pub(crate) struct FaultPlan {
    scripted: Vec<(Fault, u32)>,
    random: Option<RandomFaults>,
}

impl FaultPlan {
    pub(crate) fn inject(&mut self, fault: Fault, times: u32) {
        if times > 0 {
            self.scripted.push((fault, times));
        }
    }

    pub(crate) fn set_random(&mut self, seed: u64, probability: f64, kinds: Vec<FaultKind>) {
        self.random = Some(RandomFaults {
            rng: SplitMix::new(seed),
            probability,
            kinds,
        });
    }

    pub(crate) fn clear(&mut self) {
        self.scripted.clear();
        self.random = None;
    }

    /// The fault the current request to `endpoint` gets, if any. Scripted faults go first, in
    /// the order they were injected.
    pub(crate) fn take(&mut self, endpoint: Endpoint) -> Option<Fault> {
        if let Some(i) = self
            .scripted
            .iter()
            .position(|(f, _)| f.endpoint() == endpoint)
        {
            let fault = self.scripted[i].0.clone();
            self.scripted[i].1 -= 1;
            if self.scripted[i].1 == 0 {
                self.scripted.remove(i);
            }
            return Some(fault);
        }
        let random = self.random.as_mut()?;
        let eligible: Vec<FaultKind> = random
            .kinds
            .iter()
            .copied()
            .filter(|k| k.endpoint() == endpoint)
            .collect();
        if eligible.is_empty() || !random.rng.chance(random.probability) {
            return None;
        }
        let kind = *random.rng.pick(&eligible);
        Some(kind.instantiate(&mut random.rng))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripted_fault_applies_exactly_n_times_to_its_endpoint() {
        let mut plan = FaultPlan::default();
        plan.inject(Fault::Status(503), 2);
        plan.inject(Fault::TokenEndpointStatus(500), 1);
        assert_eq!(
            plan.take(Endpoint::Token),
            Some(Fault::TokenEndpointStatus(500))
        );
        assert_eq!(plan.take(Endpoint::Token), None);
        assert_eq!(plan.take(Endpoint::Logs), Some(Fault::Status(503)));
        assert_eq!(plan.take(Endpoint::Logs), Some(Fault::Status(503)));
        assert_eq!(plan.take(Endpoint::Logs), None);
    }

    #[test]
    fn a_token_endpoint_delay_holds_back_only_the_token_endpoint() {
        let mut plan = FaultPlan::default();
        plan.inject(Fault::TokenEndpointDelay(Duration::from_secs(1)), 1);
        assert_eq!(plan.take(Endpoint::Logs), None);
        assert_eq!(
            plan.take(Endpoint::Token),
            Some(Fault::TokenEndpointDelay(Duration::from_secs(1)))
        );
    }

    #[test]
    fn random_faults_are_reproducible_from_the_seed() {
        let run = || {
            let mut plan = FaultPlan::default();
            plan.set_random(3, 0.5, vec![FaultKind::Status, FaultKind::MalformedBody]);
            (0..50)
                .map(|_| plan.take(Endpoint::Logs))
                .collect::<Vec<_>>()
        };
        let a = run();
        assert_eq!(a, run());
        let hits = a.iter().filter(|f| f.is_some()).count();
        assert!((10..40).contains(&hits), "hits: {hits}");
    }

    #[test]
    fn cleared_plan_injects_nothing() {
        let mut plan = FaultPlan::default();
        plan.inject(Fault::MalformedBody, 5);
        plan.set_random(1, 1.0, vec![FaultKind::DropConnection]);
        plan.clear();
        assert_eq!(plan.take(Endpoint::Logs), None);
    }
}
