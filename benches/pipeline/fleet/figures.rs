//! The fleet run's figures, each against its target.

use super::calls::CallKind;
use super::child::CommandResult;
use super::template::Deployment;
use super::{cost, FleetRun, Step, CONCURRENCY, CONNECTORS, MEMORY_CHECKPOINTS, SERIAL};
use super::{EMPTY_COLD, EMPTY_FLEET, EMPTY_WARM, FIRST, PAGE_FLEET, PAGE_WARM};
use crate::procfs::mib;
use crate::report::{thousands, Figure, Report};

const MAX_DYNAMO_WRITES_PER_EMPTY_POLL: f64 = 3.0;
const FIXED_COST_TARGET_USD: f64 = 0.70;
const COST_AT_CONNECTORS: f64 = 10_000.0;

pub fn add(report: &mut Report, run: &FleetRun) {
    attribution(report, run);
    calls(report, run);
    memory(report, run);
    costs(report, run);
    report.add(Figure::info(
        "fleet run",
        format!(
            "{:.0} s ({:.0} s to start moto, {} orgs and their secrets); {CONCURRENCY} concurrent invocations (the template reserves {})",
            run.total_secs,
            run.setup_secs,
            thousands(CONNECTORS as f64),
            run.deployment.reserved_concurrency
        ),
    ));
}

fn attribution(report: &mut Report, run: &FleetRun) {
    let a = &run.attribution;
    let mut value = format!(
        "{} records read back: {} of {} events under their own connector and org ({} of {} connectors complete); {} misattributed, {} missing, {} replayed",
        thousands(a.records as f64),
        thousands(a.delivered as f64),
        thousands(a.expected as f64),
        thousands(a.complete_connectors as f64),
        thousands(CONNECTORS as f64),
        a.misattributed,
        a.missing,
        a.duplicates
    );
    let published: u64 = run.steps.iter().map(|s| s.result.published).sum();
    value.push_str(&format!(
        "; the handler reported {} published",
        thousands(published as f64)
    ));
    if let Some(example) = &a.example {
        value.push_str(&format!(" (e.g. {example})"));
    }
    report.add(Figure::checked(
        &format!(
            "fleet: {} connectors polled through the Lambda handler, stream read back",
            thousands(CONNECTORS as f64)
        ),
        value,
        "every event under its own connector_id and org, none under another's",
        a.passed(CONNECTORS),
    ));
    let polls: usize = run.steps.iter().map(|s| s.result.polls).sum();
    let not_ok: usize = run.steps.iter().map(|s| s.result.not_ok).sum();
    let messages: Vec<&String> = run
        .steps
        .iter()
        .flat_map(|s| &s.result.not_ok_messages)
        .take(3)
        .collect();
    report.add(Figure::checked(
        "fleet: polls that did not end ok",
        if messages.is_empty() {
            format!("{not_ok} of {}", thousands(polls as f64))
        } else {
            format!(
                "{not_ok} of {} (e.g. {messages:?})",
                thousands(polls as f64)
            )
        },
        "0",
        not_ok == 0,
    ));
}

fn per_service(step: &Step) -> String {
    let parts: Vec<String> = CallKind::ALL
        .iter()
        .filter(|&&k| k != CallKind::Other || step.calls.of_kind(k) > 0)
        .map(|&k| format!("{} {:.2}", k.label(), step.per_poll(k)))
        .collect();
    format!(
        "{}; p50 {:.0} ms ({})",
        parts.join(", "),
        step.result
            .durations_ms
            .get(step.result.durations_ms.len() / 2)
            .copied()
            .unwrap_or(0.0),
        step.calls
    )
}

fn calls(report: &mut Report, run: &FleetRun) {
    for (name, polls) in [
        (FIRST, CONNECTORS),
        (EMPTY_FLEET, CONNECTORS),
        (PAGE_FLEET, CONNECTORS),
        (EMPTY_COLD, SERIAL),
        (EMPTY_WARM, SERIAL),
        (PAGE_WARM, SERIAL),
    ] {
        let step = run.step(name);
        report.add(Figure::info(
            &format!(
                "AWS calls per poll, {name} ({} polls, counted on the wire)",
                thousands(polls as f64)
            ),
            per_service(step),
        ));
    }
    let worst = [EMPTY_FLEET, EMPTY_COLD, EMPTY_WARM]
        .iter()
        .map(|n| run.step(n).per_poll(CallKind::DynamoWrite))
        .fold(0.0, f64::max);
    report.add(Figure::checked(
        "DynamoDB writes per empty poll (worst of fleet, cold and warm container)",
        format!("{worst:.2}"),
        "≤ 3",
        worst <= MAX_DYNAMO_WRITES_PER_EMPTY_POLL && worst > 0.0,
    ));
    let unattributed: u64 = run
        .steps
        .iter()
        .map(|s| s.calls.unsigned + s.calls.of_kind(CallKind::Other))
        .sum();
    report.add(Figure::checked(
        "AWS requests the counting proxy could not attribute to a known service",
        unattributed,
        "0",
        unattributed == 0,
    ));
}

fn memory(report: &mut Report, run: &FleetRun) {
    memory_figures(report, &run.deployment, &run.memory);
}

/// Handler memory at each checkpoint of distinct connectors, and the flatness verdict.
pub fn memory_figures(report: &mut Report, deployment: &Deployment, measured: &CommandResult) {
    let rss = &measured.rss_kib;
    let Some(&(_, base)) = rss.first() else {
        report.add(Figure::checked(
            "handler memory by distinct connectors",
            "not measured",
            "measured",
            false,
        ));
        return;
    };
    let growth = |n: usize| {
        rss.iter()
            .find(|(seen, _)| *seen == n)
            .map(|&(_, kib)| mib(kib.saturating_sub(base)))
    };
    for n in MEMORY_CHECKPOINTS {
        report.add(Figure::info(
            &format!(
                "handler memory, {} distinct connectors in one process (cache {})",
                thousands(n as f64),
                deployment.connector_cache_size
            ),
            growth(n).map_or("not measured".into(), |g| {
                format!("+{g:.1} MiB RSS over the first poll ({:.1} MiB)", mib(base))
            }),
        ));
    }
    let (small, large) = (MEMORY_CHECKPOINTS[1], MEMORY_CHECKPOINTS[2]);
    let verdict = match (growth(small), growth(large)) {
        (Some(s), Some(l)) => (
            format!("+{l:.1} MiB at {large} vs +{s:.1} MiB at {small}"),
            l <= s * 1.25 + 4.0,
        ),
        _ => ("not measured".into(), false),
    };
    report.add(Figure::checked(
        &format!("handler memory flat from {small} to {large} connectors"),
        verdict.0,
        "≤ 1.25× + 4 MiB",
        verdict.1 && measured.not_ok == 0,
    ));
}

fn costs(report: &mut Report, run: &FleetRun) {
    let series = run
        .steps
        .iter()
        .flat_map(|s| s.metric_series.iter())
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    let cold = run.step(EMPTY_COLD);
    let lines = cost::per_connector_month(&run.deployment, cold, series, COST_AT_CONNECTORS);
    for line in &lines {
        report.add(Figure::info(
            &format!("cost per connector-month at 10,000: {}", line.item),
            format!("${:.4} ({})", line.usd, line.basis),
        ));
    }
    let fixed = cost::total(&lines);
    report.add(Figure::checked(
        &format!(
            "fixed cost per connector-month at 10,000 connectors, {} schedule, every poll in a container that has not seen the connector",
            humantime(run.deployment.schedule_period.as_secs())
        ),
        format!("${fixed:.3}"),
        "≤ $0.70",
        fixed <= FIXED_COST_TARGET_USD,
    ));
    let warm = cost::per_connector_month(
        &run.deployment,
        run.step(EMPTY_WARM),
        series,
        COST_AT_CONNECTORS,
    );
    report.add(Figure::info(
        "fixed cost per connector-month at 10,000 connectors if every poll found its connector cached (lower bound)",
        format!("${:.3}", cost::total(&warm)),
    ));
}

fn humantime(secs: u64) -> String {
    match secs {
        s if s % 3600 == 0 => format!("{} h", s / 3600),
        s if s % 60 == 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}
