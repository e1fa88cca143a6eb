//! End-to-end performance of okta-ingest against the in-process Okta simulator: normalizer,
//! drain throughput and API efficiency, rate-limited drain, memory, Lambda start-up, delivery
//! latency and cost, and the fleet (1,000 connectors through the Lambda handler against moto).
//! Prints each figure with its target and PASS/FAIL.
//!
//! Run: `make bench` (release build), or `cargo bench --features simulator --bench pipeline`;
//! `-- latency share` after it runs only those sections (lambda, requests, normalizer, ordering,
//! backlog, share, latency, fleet); `-- fleet` runs the fleet figures alone, `-- fleet-memory`
//! only the handler's memory by distinct connectors.
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
use ratelimited::OtherClient;
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
/// Tail mode: p99 within one interval plus this; tail mode off: within the 60 s schedule plus 2 s.
const LATENCY_TAIL_SLACK: Duration = Duration::from_secs(3);
const LATENCY_OFF_TARGET: Duration = Duration::from_secs(62);
/// AWS Lambda prices, arm64 (first pricing tier): per GB-second and per request.
const ARM64_USD_PER_GB_SECOND: f64 = 0.000_013_333_4;
const LAMBDA_USD_PER_REQUEST: f64 = 0.20 / 1e6;
/// Lambda gives a function one vCPU at 1769 MB, and CPU in proportion below that.
const LAMBDA_MB_PER_VCPU: f64 = 1769.0;

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
    // `cargo bench --bench pipeline -- latency share` runs only the sections named.
    let only: Vec<&str> = args[1..]
        .iter()
        .map(String::as_str)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let wants = |section: &str| only.is_empty() || only.contains(&section);

    if wants("lambda") {
        eprintln!("lambda start-up");
        let cold = rt.block_on(lambda::cold_init());
        let warm = rt.block_on(lambda::warm_empty_polls());
        measure_lambda(&mut report, cold, warm);
        measure_cold_start(&mut report, &rt);
    }
    if wants("requests") {
        eprintln!("Okta requests per poll");
        measure_requests(&mut report, &rt.block_on(requests::run()));
    }
    if wants("normalizer") {
        eprintln!("normalizer (one core, mixed corpus)");
        let corpus = rt.block_on(normalizer::corpus());
        let normalized = normalizer::measure(&corpus);
        let parsed = normalizer::parse_baseline(&corpus);
        measure_normalizer(&mut report, &normalized, &parsed);
        drop(corpus);
    }
    if wants("ordering") {
        eprintln!("per-person order in the Kinesis sink");
        measure_ordering(&mut report, &rt.block_on(ordering::run()));
    }
    if wants("backlog") {
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
    }
    if wants("share") {
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
            (
                "10 s window, whole bucket",
                short,
                2,
                dedicated,
                OtherClient::None,
            ),
            (
                "10 s window, default share",
                short,
                2,
                ClientOptions::default(),
                OtherClient::None,
            ),
            (
                "10 s window, default share, other client 14/window spread",
                short,
                2,
                ClientOptions::default(),
                OtherClient::Spread(14),
            ),
            (
                "10 s window, default share, other client 16 as each later window opens",
                short,
                3,
                ClientOptions::default(),
                OtherClient::Burst(16),
            ),
            (
                "60 s window, default share",
                long,
                1,
                ClientOptions::default(),
                OtherClient::None,
            ),
            (
                "60 s window, default share, other client 40/window spread",
                long,
                1,
                ClientOptions::default(),
                OtherClient::Spread(40),
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
    }
    if wants("latency") {
        eprintln!("latency and cost on a 60 s schedule, tail mode off and every 5, 10 and 30 s, compressed 10× (about 2 min)");
        let schedule = latency::Schedule {
            period: Duration::from_secs(60),
            timeout: Duration::from_secs(300),
            safety_margin: Duration::from_secs(20),
        };
        let plans: Vec<latency::LatencyPlan> = [None, Some(5), Some(10), Some(30)]
            .into_iter()
            .map(|interval| latency::LatencyPlan {
                tail_interval: interval.map(Duration::from_secs),
                schedule,
                scale: 10,
                ticks: 15,
                events_per_sec: 20,
            })
            .collect();
        let runs = rt.block_on(async {
            let tasks: Vec<_> = plans
                .iter()
                .map(|plan| tokio::spawn(latency::run(*plan)))
                .collect();
            let mut runs = Vec::new();
            for task in tasks {
                runs.push(task.await.expect("a latency run completes"));
            }
            runs
        });
        for (plan, run) in plans.iter().zip(&runs) {
            measure_latency(&mut report, plan, run);
        }
        for (plan, run) in plans.iter().zip(&runs) {
            measure_schedule_cost(&mut report, plan, run);
        }
    }

    if wants("fleet") {
        measure_fleet(&mut report, &rt);
    } else if only.contains(&"fleet-memory") {
        eprintln!("fleet: handler memory by distinct connectors (about 2 minutes)");
        match rt.block_on(fleet::memory_only()) {
            Ok((deployment, memory)) => {
                fleet::figures::memory_figures(&mut report, &deployment, &memory)
            }
            Err(err) => report.add(Figure::checked("fleet memory", err, "completes", false)),
        }
    }

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

fn runtime() -> tokio::runtime::Runtime {
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
        "max < 2 s a page (one page per 2 s at the default rate share of 60 requests a minute)",
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
    let memory_mb = lambda::template_memory_mb();
    let memory_gb = memory_mb / 1024.0;
    let per_million = 1e6 / run.fetched.max(1) as f64;
    let wall_gbs = run.secs * per_million * memory_gb;
    report.add(Figure::info(
        &format!("Lambda GB-s per million events at {memory_mb} MB (measured drain wall time)"),
        format!(
            "{wall_gbs:.3} GB-s (${:.5} arm64)",
            wall_gbs * ARM64_USD_PER_GB_SECOND
        ),
    ));
    // The function gets a fraction of a vCPU at this memory; the whole process's CPU time
    // (simulator included) over that fraction bounds the duration from above.
    let cpu_bound_secs = run.cpu_secs * per_million / (memory_mb / LAMBDA_MB_PER_VCPU).min(1.0);
    report.add(Figure::info(
        &format!("Lambda GB-s per million events at {memory_mb} MB (CPU-bound upper bound)"),
        format!(
            "{:.2} GB-s (${:.4} arm64; {:.2} CPU-s per million incl. simulator)",
            cpu_bound_secs * memory_gb,
            cpu_bound_secs * memory_gb * ARM64_USD_PER_GB_SECOND,
            run.cpu_secs * per_million
        ),
    ));
}

fn measure_rate(report: &mut Report, label: &str, run: &ratelimited::RateRun) {
    let achieved = run.fetched as f64 / run.allowed_events().max(1) as f64;
    report.add(Figure::checked(
        &format!(
            "rate-limited drain, {label} (share {} requests/window × {})",
            run.share_per_window, run.windows
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
    let windows = f64::from(run.windows.max(1));
    let per_window = run.requests as f64 / windows;
    let allowed_per_window = run.allowed_requests as f64 / windows;
    report.add(Figure::info(
        &format!("requests per window, {label}"),
        format!(
            "{per_window:.1} of {allowed_per_window:.1} allowed ({:.0}%)",
            100.0 * per_window / allowed_per_window.max(1.0)
        ),
    ));
    report.add(Figure::checked(
        &format!("429 responses, {label}"),
        run.throttled,
        "0",
        run.throttled == 0,
    ));
    if run.other_answered + run.other_throttled > 0 {
        report.add(Figure::info(
            &format!("the other client, {label}"),
            format!(
                "{:.1} requests/window answered, {} refused with 429{}",
                run.other_answered as f64 / windows,
                run.other_throttled,
                if run.other_throttled > 0 {
                    " (it asked for more than the connector's share left it)"
                } else {
                    ""
                }
            ),
        ));
    }
}

fn mode(plan: &latency::LatencyPlan) -> String {
    match plan.tail_interval {
        Some(interval) => format!("tail interval {} s", interval.as_secs()),
        None => "tail mode off".to_owned(),
    }
}

fn measure_latency(report: &mut Report, plan: &latency::LatencyPlan, run: &latency::LatencyRun) {
    let p99 = run.percentile(99.0);
    let (target, limit) = match plan.tail_interval {
        Some(interval) => (
            format!("p99 ≤ {} s (interval + 3 s)", interval.as_secs() + 3),
            interval + LATENCY_TAIL_SLACK,
        ),
        None => ("p99 ≤ 62 s".to_owned(), LATENCY_OFF_TARGET),
    };
    report.add(Figure::checked(
        &format!(
            "persistence → sink latency, {}, {} s schedule ({} events, {} delivered)",
            mode(plan),
            plan.schedule.period.as_secs(),
            thousands(run.appended as f64),
            thousands(run.delivered as f64)
        ),
        format!(
            "p50 {:.1} s, p99 {:.1} s, max {:.1} s",
            run.percentile(50.0).as_secs_f64(),
            p99.as_secs_f64(),
            run.max().as_secs_f64()
        ),
        &target,
        run.delivered > 0 && run.delivered == run.appended && p99 <= limit,
    ));
}

/// Lambda cost per connector-month at the template's memory and the arm64 prices: duration
/// (GB-s) plus one request per scheduled invocation, whether it works or answers `lease_held`.
fn measure_schedule_cost(
    report: &mut Report,
    plan: &latency::LatencyPlan,
    run: &latency::LatencyRun,
) {
    const MONTH: Duration = Duration::from_secs(30 * 24 * 3600);
    let memory_gb = lambda::template_memory_mb() / 1024.0;
    let invocations = MONTH.as_secs_f64() / plan.schedule.period.as_secs_f64();
    let billed_secs = match plan.tail_interval {
        // Mostly the tail's own (compressed) waits: the run's billed share of its span holds
        // at any scale; the rounds' real work counts `scale` times, an over-estimate.
        Some(_) => run.billed_per_sec * MONTH.as_secs_f64(),
        // Short polls are all real work, which the compression does not shorten: each one's
        // own duration, once per scheduled invocation.
        None => run.mean_invocation.as_secs_f64() * invocations,
    };
    let gbs = billed_secs * memory_gb;
    let duration_usd = gbs * ARM64_USD_PER_GB_SECOND;
    let requests_usd = invocations * LAMBDA_USD_PER_REQUEST;
    report.add(Figure::info(
        &format!(
            "Lambda per connector-month, {}, {} MB arm64 (measured)",
            mode(plan),
            lambda::template_memory_mb()
        ),
        format!(
            "{} GB-s, ${:.2} (${:.4} duration + ${:.4} for {} requests); {:.1} Okta requests/min; {} of {} invocations lease_held",
            thousands(gbs),
            duration_usd + requests_usd,
            duration_usd,
            requests_usd,
            thousands(invocations),
            run.okta_requests_per_min,
            run.lease_held,
            run.invocations
        ),
    ));
}
