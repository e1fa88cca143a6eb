//! End-to-end performance of okta-ingest against the in-process Okta simulator: normalizer,
//! drain throughput and API efficiency, rate-limited drain, memory, Lambda start-up, delivery
//! latency and cost, and the fleet (1,000 connectors through the Lambda handler against moto).
//! Prints each figure with its target and PASS/FAIL.
//!
//! Run: `make bench` (release build), or `cargo bench --features testkit --bench pipeline`;
//! `cargo bench --features testkit --bench pipeline -- fleet` runs the fleet figures alone.
//! The simulator shares the process and its 2 cores with the connector: its rendering of event
//! JSON counts against every drain figure, so they are lower bounds for the connector alone.

mod backlog;
mod coldstart;
mod fleet;
mod lambda;
mod latency;
mod normalizer;
mod ordering;
mod procfs;
mod ratelimited;
mod report;
mod requests;
mod rig;
mod sinks;

use std::time::Duration;

use okta_ingest::okta::ClientOptions;
use okta_sim::RateLimitConfig;

use backlog::BacklogRun;
use procfs::mib;
use report::{per_sec, thousands, Figure, Report};

/// Speed targets are ratios to a baseline measured in the same run on the same bytes, so they
/// hold on any machine: the normalizer against a plain `serde_json` parse of the corpus, the
/// drain against the simulator serving the same pages to a client that drops them.
const NORMALIZER_VS_PARSE_TARGET: f64 = 0.35;
const DRAIN_VS_FETCH_TARGET: f64 = 0.5;
const COLD_START_TARGET: Duration = Duration::from_millis(50);
const RATE_SHARE_TARGET: f64 = 0.95;
const DRAIN_MEMORY_TARGET_MIB: f64 = 64.0;
/// Publishing a page must not take longer than the default rate share leaves between pages.
const ORDERED_PAGE_TARGET: Duration = Duration::from_secs(2);
const LAMBDA_MS_TARGET: f64 = 100.0;
const LATENCY_P99_TARGET: Duration = Duration::from_secs(75);
/// The Lambda's default memory size (infra template) and the arm64 price per GB-second.
const LAMBDA_GB: f64 = 0.25;
const ARM64_USD_PER_GB_SECOND: f64 = 0.000_013_333_4;
/// Lambda gives a function one vCPU at 1769 MB, and CPU in proportion below that.
const LAMBDA_VCPU_AT_DEFAULT: f64 = 256.0 / 1769.0;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == backlog::CHILD_FLAG) {
        let events = args
            .get(at + 1)
            .and_then(|n| n.parse().ok())
            .expect("--backlog-child takes an event count");
        let run = runtime().block_on(backlog::drain_backlog(events));
        backlog::print_for_parent(&run);
        return;
    }
    // Before any thread starts: the AWS SDK must find everything it needs in the environment.
    lambda::isolate_aws_environment();
    if args.iter().any(|a| a == fleet::child::CHILD_FLAG) {
        fleet::child::main();
        return;
    }
    let mut report = Report::default();
    let rt = runtime();
    // `cargo bench --bench pipeline -- fleet`: the fleet figures alone.
    if args.iter().any(|a| a == "fleet") {
        measure_fleet(&mut report, &rt);
        report.add(Figure::info("machine", machine()));
        println!();
        report.print();
        return;
    }

    eprintln!("lambda start-up");
    let cold = rt.block_on(lambda::cold_init());
    let warm = rt.block_on(lambda::warm_empty_polls());
    let warm_p50 = warm.get(warm.len() / 2).copied().unwrap_or_default();
    measure_lambda(&mut report, cold, warm);
    measure_cold_start(&mut report, &rt);

    eprintln!("Okta requests per poll");
    measure_requests(&mut report, &rt.block_on(requests::run()));

    eprintln!("normalizer (one core, mixed corpus)");
    let corpus = rt.block_on(normalizer::corpus());
    let normalized = normalizer::measure(&corpus);
    let parsed = normalizer::parse_baseline(&corpus);
    measure_normalizer(&mut report, &normalized, &parsed);
    drop(corpus);

    eprintln!("per-person order in the Kinesis sink");
    measure_ordering(&mut report, &rt.block_on(ordering::run()));

    eprintln!("backlog drains (child processes)");
    let mut runs = Vec::new();
    for events in [250_000, 1_000_000] {
        match backlog::run_in_child(events) {
            Ok(run) => runs.push(run),
            Err(err) => report.add(Figure::checked(
                &format!("drain {events} events"),
                err,
                "completes",
                false,
            )),
        }
    }
    measure_backlogs(&mut report, &runs);

    eprintln!("share utilisation: 10 s and 60 s windows, alone and beside another client (concurrent, about 2 min)");
    let dedicated = ClientOptions {
        rate_share: 1.0,
        rate_reserve: 0,
        ..ClientOptions::default()
    };
    let short = RateLimitConfig {
        limit: 20,
        window: Duration::from_secs(10),
    };
    let long = RateLimitConfig {
        limit: 60,
        window: Duration::from_secs(60),
    };
    let scenarios = [
        ("10 s window, whole bucket", short, 2, dedicated, 0),
        (
            "10 s window, default share",
            short,
            2,
            ClientOptions::default(),
            0,
        ),
        (
            "10 s window, default share, other client 14/window",
            short,
            2,
            ClientOptions::default(),
            14,
        ),
        (
            "60 s window, default share",
            long,
            1,
            ClientOptions::default(),
            0,
        ),
        (
            "60 s window, default share, other client 40/window",
            long,
            1,
            ClientOptions::default(),
            40,
        ),
    ];
    let runs = rt.block_on(async {
        let tasks: Vec<_> = scenarios
            .iter()
            .map(|(_, bucket, windows, options, other)| {
                tokio::spawn(ratelimited::drain(
                    *bucket,
                    *windows,
                    options.clone(),
                    *other,
                ))
            })
            .collect();
        let mut runs = Vec::new();
        for task in tasks {
            runs.push(task.await.expect("a share scenario completes"));
        }
        runs
    });
    for ((label, ..), run) in scenarios.iter().zip(&runs) {
        measure_rate(&mut report, label, run);
    }

    measure_tail_cost(&mut report, warm_p50);

    eprintln!("latency on a 60 s schedule, compressed 60×");
    let plan = latency::LatencyPlan {
        scale: 60,
        period: Duration::from_secs(1),
        polls: 15,
        events_per_sec: 3_000,
    };
    measure_latency(&mut report, &plan, &rt.block_on(latency::run(&plan)));

    measure_fleet(&mut report, &rt);

    report.add(Figure::info("machine", machine()));
    println!();
    report.print();
}

fn measure_fleet(report: &mut Report, rt: &tokio::runtime::Runtime) {
    eprintln!(
        "fleet: {} connectors through the Lambda handler against moto (a few minutes)",
        fleet::CONNECTORS
    );
    match rt.block_on(fleet::run()) {
        Ok(run) => fleet::figures::add(report, &run),
        Err(err) => report.add(Figure::checked("fleet benchmark", err, "completes", false)),
    }
}

/// The CPU model and core count, to read the absolute figures by.
fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .and_then(|r| r.split(':').nth(1))
        })
        .map_or("unknown CPU", str::trim)
        .to_owned();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{model}, {cores} cores")
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn measure_lambda(report: &mut Report, cold: Duration, warm: Vec<Duration>) {
    report.add(Figure::checked(
        "Lambda init (settings + AWS SDK clients + connector)",
        format!("{:.1} ms", ms(cold)),
        "< 100 ms",
        ms(cold) < LAMBDA_MS_TARGET,
    ));
    let p50 = warm.get(warm.len() / 2).copied().unwrap_or_default();
    let max = warm.last().copied().unwrap_or_default();
    report.add(Figure::checked(
        &format!(
            "warm empty poll, {} polls (in-memory cursor store)",
            warm.len()
        ),
        format!("p50 {:.2} ms, max {:.2} ms", ms(p50), ms(max)),
        "max < 100 ms",
        !warm.is_empty() && ms(max) < LAMBDA_MS_TARGET,
    ));
    match lambda::release_binary() {
        Some((path, size)) => report.add(Figure::info(
            "release binary size",
            format!("{:.1} MiB ({})", size as f64 / 1048576.0, path.display()),
        )),
        None => report.add(Figure::info(
            "release binary size",
            "not built: run `cargo build --release --bin okta-ingest`",
        )),
    }
}

fn measure_normalizer(
    report: &mut Report,
    run: &normalizer::NormalizerRun,
    baseline: &normalizer::NormalizerRun,
) {
    let rate = per_sec(run.events as f64, run.secs);
    let parse_rate = per_sec(baseline.events as f64, baseline.secs);
    let ratio = rate / parse_rate.max(1.0);
    report.add(Figure::checked(
        "normalizer vs a plain serde_json parse of the same corpus, one core",
        format!("{ratio:.2}× the parse rate"),
        &format!("≥ {NORMALIZER_VS_PARSE_TARGET}×"),
        ratio >= NORMALIZER_VS_PARSE_TARGET,
    ));
    report.add(Figure::info(
        "normalizer, one core (parse + classify + normalize + serialize)",
        format!(
            "{} events/s, {:.0} MB/s in ({:.0}% of events published); serde_json parse alone {} events/s",
            thousands(rate),
            per_sec(run.bytes as f64, run.secs) / 1e6,
            100.0 * run.normalized as f64 / run.events.max(1) as f64,
            thousands(parse_rate)
        ),
    ));
}

fn measure_cold_start(report: &mut Report, rt: &tokio::runtime::Runtime) {
    let Some((binary, _)) = lambda::release_binary() else {
        report.add(Figure::info(
            "cold start to first /invocation/next (release binary, Runtime API emulator)",
            "not measured: run `cargo build --release --bin okta-ingest`",
        ));
        return;
    };
    match rt.block_on(coldstart::run(&binary)) {
        Ok(times) => {
            let p50 = times[times.len() / 2];
            let max = *times.last().expect("at least one run");
            report.add(Figure::checked(
                &format!(
                    "cold start to first /invocation/next, {} starts (release binary, Runtime API emulator)",
                    times.len()
                ),
                format!("p50 {:.1} ms, max {:.1} ms", ms(p50), ms(max)),
                "p50 ≤ 50 ms",
                p50 <= COLD_START_TARGET,
            ));
        }
        Err(err) => report.add(Figure::checked(
            "cold start to first /invocation/next",
            err,
            "ready",
            false,
        )),
    }
}

fn measure_requests(report: &mut Report, run: &requests::RequestsPerPoll) {
    report.add(Figure::checked(
        "Okta requests, idle poll",
        run.idle,
        "1",
        run.idle == 1,
    ));
    report.add(Figure::checked(
        "Okta requests, poll with 5 new events",
        run.few,
        "1",
        run.few == 1,
    ));
    let target = requests::RequestsPerPoll::backlog_target();
    report.add(Figure::checked(
        &format!(
            "Okta requests, poll of a {} event backlog",
            thousands(requests::BACKLOG as f64)
        ),
        run.backlog,
        &format!("{target} = ceil((N + 1) / 1000)"),
        run.backlog <= target,
    ));
}

/// Tail mode keeps an invocation running for the whole schedule period; without it each
/// scheduled poll costs one warm poll. A model at the template's memory, not a measurement of
/// tail mode itself.
fn measure_tail_cost(report: &mut Report, warm_poll: Duration) {
    const POLLS_PER_MONTH: f64 = 60.0 * 24.0 * 30.0;
    let schedule = Duration::from_secs(60);
    let off_gbs = warm_poll.as_secs_f64().max(0.001) * LAMBDA_GB * POLLS_PER_MONTH;
    report.add(Figure::info(
        "Lambda per connector-month, tail mode off (60 s schedule, idle polls, model)",
        format!(
            "{off_gbs:.1} GB-s, ${:.4}; 1 Okta request/min",
            off_gbs * ARM64_USD_PER_GB_SECOND
        ),
    ));
    for interval in [5u64, 10, 30] {
        let gbs = schedule.as_secs_f64() * LAMBDA_GB * POLLS_PER_MONTH;
        report.add(Figure::info(
            &format!("Lambda per connector-month, tail interval {interval} s (model)"),
            format!(
                "{gbs:.0} GB-s, ${:.2}; {} Okta requests/min",
                gbs * ARM64_USD_PER_GB_SECOND,
                60 / interval
            ),
        ));
    }
}

fn measure_ordering(report: &mut Report, run: &ordering::OrderingRun) {
    let per_page = run.calls as f64 / run.pages.max(1) as f64;
    let worst = ordering::CALL_LATENCY * run.max_calls_per_page;
    report.add(Figure::checked(
        "PutRecords calls per 1,000-event page, one record per person per call",
        format!(
            "{per_page:.1} (max {}; {:.1} without the order rule); at {} ms a call: max {} ms a page",
            run.max_calls_per_page,
            run.calls_unordered as f64 / run.pages.max(1) as f64,
            ordering::CALL_LATENCY.as_millis(),
            worst.as_millis()
        ),
        "max < 2 s a page (one page per 2.1 s at the default rate share)",
        worst < ORDERED_PAGE_TARGET,
    ));
}

fn measure_backlogs(report: &mut Report, runs: &[BacklogRun]) {
    for run in runs {
        let n = run.events;
        let rate = per_sec(run.fetched as f64, run.secs);
        let fetch_rate = per_sec(run.baseline_events as f64, run.baseline_secs);
        let ratio = rate / fetch_rate.max(1.0);
        report.add(Figure::checked(
            &format!(
                "drain {} events vs the simulator serving the same pages to a no-op client",
                thousands(n as f64)
            ),
            format!(
                "{ratio:.2}× the no-op client's rate (caught up: {})",
                run.caught_up
            ),
            &format!("≥ {DRAIN_VS_FETCH_TARGET}×"),
            run.caught_up && run.fetched == n as u64 && ratio >= DRAIN_VS_FETCH_TARGET,
        ));
        report.add(Figure::info(
            &format!("drain {} events, no rate limit", thousands(n as f64)),
            format!(
                "{} events/s ({:.2} s, {} published, {:.0} MB out); no-op client {} events/s",
                thousands(rate),
                run.secs,
                thousands(run.published as f64),
                run.published_bytes as f64 / 1e6,
                thousands(fetch_rate)
            ),
        ));
        let allowed = n.div_ceil(1000) as u64 + 1;
        report.add(Figure::checked(
            &format!("Okta requests for {} events", thousands(n as f64)),
            format!("{} ({} throttled)", run.okta_requests, run.okta_throttled),
            &format!("≤ {allowed}"),
            run.okta_requests <= allowed,
        ));
        report.add(Figure::info(
            &format!("simulator footprint, {} events", thousands(n as f64)),
            format!("{:.1} MiB RSS before draining", mib(run.rss_before_kib)),
        ));
        report.add(Figure::checked(
            &format!("drain memory, {} events", thousands(n as f64)),
            format!(
                "+{:.1} MiB over the simulator (process peak {:.1} MiB)",
                mib(run.growth_kib()),
                mib(run.hwm_after_kib)
            ),
            "< 64 MiB",
            mib(run.growth_kib()) < DRAIN_MEMORY_TARGET_MIB,
        ));
    }
    if let [small, large] = runs {
        // Flat: quadrupling the backlog may not grow the drain's peak by more than a page's
        // worth of slack (4 MiB) plus 25%.
        let flat = mib(large.growth_kib()) <= mib(small.growth_kib()) * 1.25 + 4.0;
        report.add(Figure::checked(
            "drain memory flat as the backlog grows",
            format!(
                "+{:.1} MiB at {} vs +{:.1} MiB at {}",
                mib(large.growth_kib()),
                thousands(large.events as f64),
                mib(small.growth_kib()),
                thousands(small.events as f64)
            ),
            "≤ 1.25× + 4 MiB",
            flat,
        ));
    }
    if let Some(run) = runs.iter().max_by_key(|r| r.events) {
        measure_cost(report, run);
    }
}

fn measure_cost(report: &mut Report, run: &BacklogRun) {
    let per_million = 1e6 / run.fetched.max(1) as f64;
    let wall_gbs = run.secs * per_million * LAMBDA_GB;
    report.add(Figure::info(
        "Lambda GB-s per million events at 256 MB (measured drain wall time)",
        format!(
            "{wall_gbs:.3} GB-s (${:.5} arm64)",
            wall_gbs * ARM64_USD_PER_GB_SECOND
        ),
    ));
    // At 256 MB the function gets a fraction of a vCPU; the whole process's CPU time (simulator
    // included) over that fraction bounds the duration from above.
    let cpu_bound_secs = run.cpu_secs * per_million / LAMBDA_VCPU_AT_DEFAULT;
    report.add(Figure::info(
        "Lambda GB-s per million events at 256 MB (CPU-bound upper bound)",
        format!(
            "{:.2} GB-s (${:.4} arm64; {:.2} CPU-s per million incl. simulator)",
            cpu_bound_secs * LAMBDA_GB,
            cpu_bound_secs * LAMBDA_GB * ARM64_USD_PER_GB_SECOND,
            run.cpu_secs * per_million
        ),
    ));
}

fn measure_rate(report: &mut Report, label: &str, run: &ratelimited::RateRun) {
    let achieved = run.fetched as f64 / run.allowed_events().max(1) as f64;
    report.add(Figure::checked(
        &format!(
            "rate-limited drain, {label} ({} requests/window × {})",
            run.allowed_per_window, run.windows
        ),
        format!(
            "{} of {} allowed events ({:.1}%), {} requests",
            thousands(run.fetched as f64),
            thousands(run.allowed_events() as f64),
            achieved * 100.0,
            run.requests
        ),
        "≥ 95%",
        achieved >= RATE_SHARE_TARGET,
    ));
    let per_window = run.requests as f64 / f64::from(run.windows.max(1));
    report.add(Figure::info(
        &format!("requests per window, {label}"),
        format!(
            "{per_window:.1} of {} allowed ({:.0}%)",
            run.allowed_per_window,
            100.0 * per_window / f64::from(run.allowed_per_window.max(1))
        ),
    ));
    report.add(Figure::checked(
        &format!("429 responses, {label}"),
        run.throttled,
        "0",
        run.throttled == 0,
    ));
}

fn measure_latency(report: &mut Report, plan: &latency::LatencyPlan, run: &latency::LatencyRun) {
    let p99 = run.percentile(99.0);
    report.add(Figure::checked(
        &format!(
            "persistence → sink latency, {} s schedule ({} events, {} delivered)",
            plan.period.as_secs_f64() * f64::from(plan.scale),
            thousands(run.appended as f64),
            thousands(run.delivered as f64)
        ),
        format!(
            "p50 {:.1} s, p99 {:.1} s, max {:.1} s",
            run.percentile(50.0).as_secs_f64(),
            p99.as_secs_f64(),
            run.latencies
                .last()
                .copied()
                .unwrap_or_default()
                .as_secs_f64()
        ),
        "p99 < 75 s",
        run.delivered > 0 && p99 < LATENCY_P99_TARGET,
    ));
}
