//! `okta-ingest connectors ...` end to end: the binary against moto (Secrets Manager, DynamoDB,
//! Kinesis, EventBridge Scheduler) with simulated Okta orgs, and polls through the Lambda handler.
#![cfg(feature = "testkit")]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use lambda_runtime::{Context, LambdaEvent};
use okta_ingest::lambda::{connector, handle, LambdaConnector};
use okta_ingest::settings::Settings;
use okta_ingest::testkit::moto::{
    create_cursor_table, create_stream, read_all_records, MotoServer,
};
use okta_ingest::testkit::ocsf_schema::assert_valid_ocsf;
use okta_ingest::testkit::rig::{lambda_settings, org_sim_config, org_ssws_secret};
use okta_sim::Simulator;
use serde_json::{json, Value};

const TABLE: &str = "okta-ingest-cursors";
const STREAM: &str = "okta-ingest-events";
const GROUP: &str = "okta-ingest-fleet";
const FUNCTION: &str = "arn:aws:lambda:us-east-1:123456789012:function:okta-ingest";
const SCHEDULER_ROLE: &str = "arn:aws:iam::123456789012:role/okta-ingest-scheduler";

struct Fleet {
    moto: MotoServer,
    aws: aws_config::SdkConfig,
    dir: tempfile::TempDir,
    settings: Settings,
    lambda: LambdaConnector,
}

async fn org(token: &str, events: usize, seed: u64) -> Simulator {
    Simulator::start(org_sim_config(token, events, seed))
        .await
        .unwrap()
}

impl Fleet {
    async fn start() -> Fleet {
        let moto = MotoServer::start();
        let aws = moto.sdk_config().await;
        create_cursor_table(&aws, TABLE).await;
        create_stream(&aws, STREAM, 1).await;
        aws_sdk_scheduler::Client::new(&aws)
            .create_schedule_group()
            .name(GROUP)
            .send()
            .await
            .unwrap();
        let settings = lambda_settings(&[("CURSOR_TABLE", TABLE), ("EVENT_STREAM", STREAM)]);
        let lambda = connector(&settings, &aws);
        Fleet {
            moto,
            aws,
            dir: tempfile::tempdir().unwrap(),
            settings,
            lambda,
        }
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn deployment_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("CURSOR_TABLE", TABLE.into()),
            ("EVENT_STREAM", STREAM.into()),
            ("SECRET_ID_TEMPLATE", "okta-ingest/{connector_id}".into()),
            ("SCHEDULE_GROUP", GROUP.into()),
            ("FUNCTION_ARN", FUNCTION.into()),
            ("SCHEDULER_ROLE_ARN", SCHEDULER_ROLE.into()),
        ]
    }

    /// Runs `okta-ingest connectors <args>` with the deployment in the environment, minus `unset`.
    async fn cli(&self, args: &[&str], unset: &[&str]) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_okta-ingest"));
        command
            .arg("connectors")
            .args(args)
            .env_remove("AWS_LAMBDA_RUNTIME_API")
            .env("AWS_ENDPOINT_URL", self.moto.endpoint())
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("OKTA_ALLOW_INSECURE_LOOPBACK", "true")
            .env_remove("SECRET_KMS_KEY_ID")
            .env_remove("OCSF_STREAM");
        for (name, value) in self.deployment_env() {
            if unset.contains(&name) {
                command.env_remove(name);
            } else {
                command.env(name, value);
            }
        }
        // Off the runtime's threads, so the in-process simulators keep serving.
        tokio::task::spawn_blocking(move || command.output().expect("run okta-ingest"))
            .await
            .unwrap()
    }

    async fn ok(&self, args: &[&str]) -> String {
        let out = self.cli(args, &[]).await;
        assert!(
            out.status.success(),
            "{args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    async fn fails(&self, args: &[&str], unset: &[&str]) -> String {
        let out = self.cli(args, unset).await;
        // 2: something the operator must correct; nothing was changed.
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        String::from_utf8(out.stderr).unwrap()
    }

    async fn list(&self) -> Vec<Value> {
        serde_json::from_str::<Value>(&self.ok(&["list", "--json"]).await)
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    }

    async fn poll(&self, id: &str) -> Result<Value, lambda_runtime::Diagnostic> {
        let mut context = Context::default();
        context.request_id = uuid::Uuid::new_v4().to_string();
        context.deadline =
            (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as u64 + 60_000;
        let event = LambdaEvent::new(json!({"connector_id": id, "action": "poll"}), context);
        handle(&self.lambda, &self.settings, event).await
    }

    async fn schedule(
        &self,
        name: &str,
    ) -> Option<aws_sdk_scheduler::operation::get_schedule::GetScheduleOutput> {
        aws_sdk_scheduler::Client::new(&self.aws)
            .get_schedule()
            .group_name(GROUP)
            .name(name)
            .send()
            .await
            .ok()
    }

    async fn schedule_names(&self) -> Vec<String> {
        aws_sdk_scheduler::Client::new(&self.aws)
            .list_schedules()
            .group_name(GROUP)
            .send()
            .await
            .unwrap()
            .schedules()
            .iter()
            .filter_map(|s| s.name().map(str::to_string))
            .collect()
    }

    async fn live_secrets(&self) -> Vec<String> {
        aws_sdk_secretsmanager::Client::new(&self.aws)
            .list_secrets()
            .send()
            .await
            .unwrap()
            .secret_list()
            .iter()
            .filter(|s| s.deleted_date().is_none())
            .filter_map(|s| s.name().map(str::to_string))
            .collect()
    }

    async fn cursor_items(&self) -> Vec<String> {
        let mut keys: Vec<String> = aws_sdk_dynamodb::Client::new(&self.aws)
            .scan()
            .table_name(TABLE)
            .send()
            .await
            .unwrap()
            .items()
            .iter()
            .filter_map(|i| i.get("connector_id").and_then(|v| v.as_s().ok()).cloned())
            .collect();
        keys.sort();
        keys
    }
}

fn row<'a>(rows: &'a [Value], id: &str) -> &'a Value {
    rows.iter()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("{id} not listed: {rows:?}"))
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn add_list_show_disable_resume_remove_end_to_end() {
    let fleet = Fleet::start().await;
    let acme_sim = org("00acme-token-aaaaaaaaaaaaaaaaaaaa", 300, 11).await;
    let globex_sim = org("00globex-token-bbbbbbbbbbbbbbbbbb", 200, 12).await;
    let acme = fleet.write(
        "acme.json",
        &org_ssws_secret(&acme_sim, "00acme-token-aaaaaaaaaaaaaaaaaaaa"),
    );
    let globex = fleet.write(
        "globex.json",
        &org_ssws_secret(&globex_sim, "00globex-token-bbbbbbbbbbbbbbbbbb"),
    );

    let added = fleet.ok(&["add", "acme", "--config", path(&acme)]).await;
    assert!(added.contains("connector acme added"), "{added}");
    let added = fleet
        .ok(&[
            "add",
            "globex",
            "--config",
            path(&globex),
            "--schedule",
            "rate(5 minutes)",
            "--backfill-days",
            "7",
        ])
        .await;
    assert!(added.contains("backfill of the last 7 days"), "{added}");

    // The secret is tagged with its connector; the schedule polls it, spread over its interval.
    let secret = aws_sdk_secretsmanager::Client::new(&fleet.aws)
        .describe_secret()
        .secret_id("okta-ingest/acme")
        .send()
        .await
        .unwrap();
    let tags: HashMap<&str, &str> = secret
        .tags()
        .iter()
        .map(|t| (t.key().unwrap(), t.value().unwrap()))
        .collect();
    assert_eq!(tags["connector_id"], "acme");
    assert_eq!(tags["okta-ingest:org"], "127.0.0.1");
    assert_eq!(tags["okta-ingest:auth"], "ssws");
    let schedule = fleet.schedule("globex").await.unwrap();
    assert_eq!(schedule.schedule_expression(), Some("rate(5 minutes)"));
    let target = schedule.target().unwrap();
    assert_eq!(
        (target.arn(), target.role_arn()),
        (FUNCTION, SCHEDULER_ROLE)
    );
    assert_eq!(
        serde_json::from_str::<Value>(target.input().unwrap()).unwrap(),
        json!({"connector_id": "globex", "action": "poll"})
    );
    assert_eq!(
        schedule
            .flexible_time_window()
            .unwrap()
            .maximum_window_in_minutes(),
        Some(5)
    );
    let backfill = fleet.schedule("globex.backfill").await.unwrap();
    assert!(backfill.schedule_expression().unwrap().starts_with("at("));
    assert_eq!(
        serde_json::from_str::<Value>(backfill.target().unwrap().input().unwrap()).unwrap(),
        json!({"connector_id": "globex", "action": "backfill", "days": 7})
    );

    let rows = fleet.list().await;
    assert_eq!(
        rows.len(),
        2,
        "the backfill schedule is not a connector: {rows:?}"
    );
    assert_eq!(row(&rows, "acme")["state"], "active");
    assert_eq!(row(&rows, "acme")["auth"], "ssws");
    assert_eq!(row(&rows, "acme")["events_delivered"], 0);

    // Polls through the function; list then shows what each delivered.
    for id in ["acme", "globex"] {
        let summary = fleet.poll(id).await.unwrap();
        assert_eq!(summary["outcome"], "ok", "{summary}");
    }
    let rows = fleet.list().await;
    for id in ["acme", "globex"] {
        let r = row(&rows, id);
        assert!(r["events_delivered"].as_u64().unwrap() > 0, "{r}");
        assert!(r["last_success_at"].is_string(), "{r}");
        assert!(r["lag_seconds"].as_i64().unwrap() < 3600, "{r}");
        assert_eq!(r["consecutive_failures"], 0);
    }
    let table = fleet.ok(&["list"]).await;
    let header = table.lines().next().unwrap();
    for column in [
        "ID",
        "ORG",
        "AUTH",
        "STATE",
        "LAST SUCCESS",
        "LAG",
        "FAILURES",
        "DELIVERED",
    ] {
        assert!(header.contains(column), "{table}");
    }
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("acme ") && l.contains("active")),
        "{table}"
    );

    // Disable: the poll stops, list says who and why, the schedule is off.
    fleet
        .ok(&["disable", "acme", "--reason", "customer offboarding"])
        .await;
    let r = fleet.list().await;
    assert_eq!(row(&r, "acme")["state"], "disabled");
    assert_eq!(row(&r, "acme")["reason"], "customer offboarding");
    assert_eq!(
        fleet.schedule("acme").await.unwrap().state(),
        Some(&aws_sdk_scheduler::types::ScheduleState::Disabled)
    );
    assert_eq!(fleet.poll("acme").await.unwrap()["outcome"], "paused");
    fleet.ok(&["resume", "acme"]).await;
    assert_eq!(row(&fleet.list().await, "acme")["state"], "active");
    assert_eq!(
        fleet.schedule("acme").await.unwrap().state(),
        Some(&aws_sdk_scheduler::types::ScheduleState::Enabled)
    );
    let show: Value = serde_json::from_str(&fleet.ok(&["show", "acme", "--json"]).await).unwrap();
    assert_eq!(show["secret"], "okta-ingest/acme");
    assert_eq!(show["schedule"], "rate(1 minute)");

    // Redrive goes through the function, under the connector's own session.
    let requested = fleet.ok(&["redrive", "acme"]).await;
    assert!(
        requested.contains("redrive of connector acme requested"),
        "{requested}"
    );
    let redrive = fleet.schedule("acme.redrive").await.unwrap();
    assert!(redrive.schedule_expression().unwrap().starts_with("at("));
    assert_eq!(
        serde_json::from_str::<Value>(redrive.target().unwrap().input().unwrap()).unwrap(),
        json!({"connector_id": "acme", "action": "redrive"})
    );
    assert_eq!(fleet.list().await.len(), 2, "a redrive is not a connector");

    // Remove acme: schedules gone, secret scheduled for deletion, cursor gone; globex keeps polling.
    let removed = fleet.ok(&["remove", "acme"]).await;
    assert!(removed.contains("cursor items deleted"), "{removed}");
    assert!(fleet.schedule("acme").await.is_none());
    assert!(fleet.schedule("acme.redrive").await.is_none());
    assert_eq!(
        fleet.live_secrets().await,
        vec!["okta-ingest/globex".to_string()]
    );
    assert!(!fleet.cursor_items().await.contains(&"acme".to_string()));
    globex_sim.append_events(30);
    let summary = fleet.poll("globex").await.unwrap();
    assert_eq!(summary["outcome"], "ok", "{summary}");
    assert!(
        summary["drain"]["fetched"].as_u64().unwrap() >= 30,
        "{summary}"
    );
    let rows = fleet.list().await;
    assert_eq!(rows.len(), 1);
    assert_eq!(row(&rows, "globex")["state"], "active");
    assert!(!fleet.cursor_items().await.contains(&"acme".to_string()));

    // --keep-cursor keeps the cursor, so adding it again continues where it stopped.
    fleet.ok(&["remove", "globex", "--keep-cursor"]).await;
    assert!(fleet
        .schedule_names()
        .await
        .iter()
        .all(|n| !n.starts_with("globex") || n == "globex.backfill"));
    assert!(fleet.cursor_items().await.contains(&"globex".to_string()));
    let again = fleet
        .ok(&["add", "globex", "--config", path(&globex)])
        .await;
    assert!(again.contains("connector globex updated"), "{again}");
    assert_eq!(row(&fleet.list().await, "globex")["state"], "active");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_gets_a_clear_error_and_changes_nothing() {
    let fleet = Fleet::start().await;
    let sim = org("00acme-token-aaaaaaaaaaaaaaaaaaaa", 20, 13).await;
    let good = fleet.write(
        "good.json",
        &org_ssws_secret(&sim, "00acme-token-aaaaaaaaaaaaaaaaaaaa"),
    );
    let wrong_token = fleet.write(
        "wrong.json",
        &org_ssws_secret(&sim, "00not-the-token-cccccccccccccccccc"),
    );
    let malformed = fleet.write("malformed.json", "{\"org_url\": ");
    let cases: Vec<(Vec<&str>, &[&str], &str)> = vec![
        (
            vec!["add", "acme", "--config", path(&wrong_token)],
            &[],
            "test connection failed, nothing was created",
        ),
        (
            vec!["add", "acme/../globex", "--config", path(&good)],
            &[],
            "invalid connector_id",
        ),
        (
            vec!["add", "acme#backfill", "--config", path(&good)],
            &[],
            "invalid connector_id",
        ),
        (
            vec!["add", "acme", "--config", path(&malformed)],
            &[],
            "connector configuration is not valid",
        ),
        (
            vec!["add", "acme", "--config", "/nonexistent/connector.json"],
            &[],
            "cannot read --config",
        ),
        (
            vec![
                "add",
                "acme",
                "--config",
                path(&good),
                "--schedule",
                "every minute",
            ],
            &[],
            "neither rate(...) nor cron(...)",
        ),
        (
            vec![
                "add",
                "acme",
                "--config",
                path(&good),
                "--backfill-days",
                "91",
            ],
            &[],
            "between 1 and 90",
        ),
        (
            vec!["add", "acme", "--config", path(&good)],
            &["SCHEDULE_GROUP"],
            "SCHEDULE_GROUP is not set",
        ),
        (
            vec!["add", "acme", "--config", path(&good)],
            &["FUNCTION_ARN"],
            "FUNCTION_ARN is not set",
        ),
        (
            vec!["add", "acme", "--config", path(&good)],
            &["SCHEDULER_ROLE_ARN"],
            "SCHEDULER_ROLE_ARN is not set",
        ),
        (
            vec!["add", "acme", "--config", path(&good)],
            &["EVENT_STREAM"],
            "EVENT_STREAM is not set",
        ),
        (vec!["list"], &["CURSOR_TABLE"], "CURSOR_TABLE is not set"),
        (
            vec!["list"],
            &["SECRET_ID_TEMPLATE"],
            "SECRET_ID_TEMPLATE is not set",
        ),
        (vec!["show", "nobody"], &[], "unknown connector nobody"),
        (vec!["disable", "nobody"], &[], "unknown connector nobody"),
        (vec!["resume", "nobody"], &[], "unknown connector nobody"),
        (vec!["remove", "nobody"], &[], "unknown connector nobody"),
        (vec!["redrive", "nobody"], &[], "unknown connector nobody"),
        (
            vec!["redrive", "acme"],
            &["FUNCTION_ARN"],
            "FUNCTION_ARN is not set",
        ),
        (vec!["show", "a.b"], &[], "invalid connector_id"),
    ];
    for (args, unset, expected) in cases {
        let stderr = fleet.fails(&args, unset).await;
        assert!(
            stderr.contains(expected),
            "{args:?} without {unset:?}: {stderr}"
        );
    }
    // Resources that do not exist are named, and nothing is created.
    let missing_group = fleet
        .fails(
            &[
                "--schedule-group",
                "no-such-group",
                "add",
                "acme",
                "--config",
                path(&good),
            ],
            &[],
        )
        .await;
    assert!(
        missing_group.contains("schedule group no-such-group does not exist"),
        "{missing_group}"
    );
    let missing_table = fleet
        .fails(
            &[
                "add",
                "acme",
                "--config",
                path(&good),
                "--cursor-table",
                "no-such-table",
            ],
            &[],
        )
        .await;
    assert!(
        missing_table.contains("cursor table no-such-table"),
        "{missing_table}"
    );
    let missing_stream = fleet
        .fails(
            &[
                "add",
                "acme",
                "--config",
                path(&good),
                "--event-stream",
                "no-such-stream",
            ],
            &[],
        )
        .await;
    assert!(
        missing_stream.contains("event stream no-such-stream"),
        "{missing_stream}"
    );

    assert!(
        fleet.live_secrets().await.is_empty(),
        "no secret was created"
    );
    assert!(
        fleet.schedule_names().await.is_empty(),
        "no schedule was created"
    );
    assert!(
        fleet.cursor_items().await.is_empty(),
        "no cursor item was written"
    );
    // The refused test connection only ever reached Okta, never AWS; a good document then works.
    fleet.ok(&["add", "acme", "--config", path(&good)]).await;
    assert_eq!(
        fleet.live_secrets().await,
        vec!["okta-ingest/acme".to_string()]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_ocsf_connector_is_added_only_with_an_ocsf_stream_and_publishes_keyed_by_class() {
    const OCSF: &str = "okta-ingest-ocsf";
    let fleet = Fleet::start().await;
    create_stream(&fleet.aws, OCSF, 1).await;
    let sim = org("00acme-token-aaaaaaaaaaaaaaaaaaaa", 120, 14).await;
    let mut document: Value =
        serde_json::from_str(&org_ssws_secret(&sim, "00acme-token-aaaaaaaaaaaaaaaaaaaa")).unwrap();
    document["outputs"] = json!(["total", "ocsf"]);
    let both = fleet.write("both.json", &document.to_string());

    let unset = fleet
        .fails(&["add", "acme", "--config", path(&both)], &[])
        .await;
    assert!(
        unset.contains("asks for \"ocsf\"") && unset.contains("OCSF_STREAM is not set"),
        "{unset}"
    );
    let missing = fleet
        .fails(
            &[
                "add",
                "acme",
                "--config",
                path(&both),
                "--ocsf-stream",
                "no-such-stream",
            ],
            &[],
        )
        .await;
    assert!(
        missing.contains("OCSF stream no-such-stream is not usable"),
        "{missing}"
    );
    assert!(fleet.live_secrets().await.is_empty(), "nothing was created");
    assert!(
        fleet.schedule_names().await.is_empty(),
        "nothing was created"
    );
    // A TOTAL-only connector does not need the OCSF stream.
    let total_only = fleet.write(
        "total.json",
        &org_ssws_secret(&sim, "00acme-token-aaaaaaaaaaaaaaaaaaaa"),
    );
    fleet
        .ok(&["add", "globex", "--config", path(&total_only)])
        .await;
    let added = fleet
        .ok(&[
            "add",
            "acme",
            "--config",
            path(&both),
            "--ocsf-stream",
            OCSF,
        ])
        .await;
    assert!(added.contains("connector acme added"), "{added}");

    // A function with OCSF_STREAM publishes both; each OCSF record is keyed by its class first.
    let mut settings = fleet.settings.clone();
    settings.ocsf_stream = Some(OCSF.to_owned());
    let lambda = connector(&settings, &fleet.aws);
    let mut context = Context::default();
    context.request_id = uuid::Uuid::new_v4().to_string();
    context.deadline =
        (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as u64 + 60_000;
    let event = LambdaEvent::new(json!({"connector_id": "acme", "action": "poll"}), context);
    let summary = handle(&lambda, &settings, event).await.unwrap();
    assert_eq!(summary["outcome"], "ok", "{summary}");
    let total_keys: HashMap<String, String> = read_all_records(&fleet.aws, STREAM)
        .await
        .into_iter()
        .map(|r| {
            let event: Value = serde_json::from_slice(&r.data).unwrap();
            (
                event["event_id"].as_str().unwrap().to_owned(),
                r.partition_key,
            )
        })
        .collect();
    let ocsf = read_all_records(&fleet.aws, OCSF).await;
    assert_eq!(
        ocsf.len() as u64,
        summary["drain"]["published"].as_u64().unwrap()
    );
    assert_eq!(
        ocsf.len(),
        total_keys.len(),
        "the same events on both streams"
    );
    let mut classes = std::collections::BTreeSet::new();
    for record in &ocsf {
        let value: Value = serde_json::from_slice(&record.data).unwrap();
        assert_valid_ocsf(&value);
        let class = value["class_uid"].as_u64().unwrap();
        classes.insert(class);
        let total_key = &total_keys[value["metadata"]["uid"].as_str().unwrap()];
        assert_eq!(record.partition_key, format!("{class}:{total_key}"));
    }
    assert!(classes.len() >= 3, "several classes: {classes:?}");
}
