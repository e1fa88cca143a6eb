//! `okta-ingest connectors ...`: the command line of fleet mode.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use crate::fleet::commands::{Deployment, Fleet, FleetError};
use crate::fleet::eventbridge::EventBridgeScheduler;
use crate::fleet::view::table;
use crate::settings::RunSettings;

#[derive(Args)]
pub struct ConnectorsArgs {
    #[command(subcommand)]
    command: ConnectorsCommand,
    #[command(flatten)]
    deployment: DeploymentArgs,
}

#[derive(Subcommand)]
enum ConnectorsCommand {
    /// Test the credentials, then create or update the connector's secret and schedule.
    Add {
        id: String,
        /// The connector configuration document (JSON).
        #[arg(long)]
        config: PathBuf,
        /// EventBridge Scheduler expression of the poll.
        #[arg(long, default_value = "rate(1 minute)")]
        schedule: String,
        /// Also pull this many days of history (1-90), starting within two minutes.
        #[arg(long)]
        backfill_days: Option<u32>,
    },
    /// One row per connector: org, auth, state, last success, lag, failures, events delivered.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Everything about one connector.
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Stop polling the connector (its cursor is kept) until resumed.
    Disable {
        id: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Clear a pause or disable and poll again from the stored cursor.
    Resume { id: String },
    /// Re-publish the connector's dead-lettered events once their cause is fixed (the function
    /// runs it within two minutes).
    Redrive { id: String },
    /// Delete the schedule, schedule the secret's deletion, and delete the cursor items.
    Remove {
        id: String,
        /// Keep the cursor items, so adding the connector again continues where it stopped.
        #[arg(long)]
        keep_cursor: bool,
    },
}

/// The deployment, from the same variables the function uses (the stack prints them as `export`
/// lines); each is also a flag.
#[derive(Args)]
struct DeploymentArgs {
    #[arg(long, env = "CURSOR_TABLE", global = true, hide_env_values = true)]
    cursor_table: Option<String>,
    #[arg(long, env = "EVENT_STREAM", global = true, hide_env_values = true)]
    event_stream: Option<String>,
    /// Optional: the OCSF stream (stack parameter `OcsfStream=Enabled`); `add` needs it for a
    /// connector with "ocsf" in `outputs`.
    #[arg(long, env = "OCSF_STREAM", global = true, hide_env_values = true)]
    ocsf_stream: Option<String>,
    #[arg(
        long,
        env = "SECRET_ID_TEMPLATE",
        global = true,
        hide_env_values = true
    )]
    secret_id_template: Option<String>,
    #[arg(long, env = "SCHEDULE_GROUP", global = true, hide_env_values = true)]
    schedule_group: Option<String>,
    #[arg(long, env = "FUNCTION_ARN", global = true, hide_env_values = true)]
    function_arn: Option<String>,
    #[arg(
        long,
        env = "SCHEDULER_ROLE_ARN",
        global = true,
        hide_env_values = true
    )]
    scheduler_role_arn: Option<String>,
    /// Optional: the KMS key new secrets are encrypted with (the stack's data key).
    #[arg(long, env = "SECRET_KMS_KEY_ID", global = true, hide_env_values = true)]
    secret_kms_key_id: Option<String>,
}

impl DeploymentArgs {
    /// The deployment, or an error naming the first missing variable. `add` needs all of them; the
    /// other commands only the table, the secret names and the schedule group.
    fn resolve(self, for_add: bool) -> Result<Deployment, String> {
        fn need(value: Option<String>, var: &str, flag: &str) -> Result<String, String> {
            value.filter(|v| !v.trim().is_empty()).ok_or_else(|| {
                format!(
                    "{var} is not set: export it (the stack outputs print it as an `export` line) or pass {flag}"
                )
            })
        }
        let optional = |value: Option<String>, var: &str, flag: &str| {
            if for_add {
                need(value, var, flag)
            } else {
                Ok(value.unwrap_or_default())
            }
        };
        let deployment = Deployment {
            cursor_table: need(self.cursor_table, "CURSOR_TABLE", "--cursor-table")?,
            event_stream: optional(self.event_stream, "EVENT_STREAM", "--event-stream")?,
            ocsf_stream: self.ocsf_stream.filter(|v| !v.trim().is_empty()),
            secret_id_template: need(
                self.secret_id_template,
                "SECRET_ID_TEMPLATE",
                "--secret-id-template",
            )?,
            schedule_group: need(self.schedule_group, "SCHEDULE_GROUP", "--schedule-group")?,
            function_arn: optional(self.function_arn, "FUNCTION_ARN", "--function-arn")?,
            scheduler_role_arn: optional(
                self.scheduler_role_arn,
                "SCHEDULER_ROLE_ARN",
                "--scheduler-role-arn",
            )?,
            secret_kms_key_id: self.secret_kms_key_id.filter(|v| !v.trim().is_empty()),
        };
        if !deployment.secret_id_template.contains("{connector_id}") {
            return Err(format!(
                "SECRET_ID_TEMPLATE {:?} must contain {{connector_id}} so each connector has its own secret",
                deployment.secret_id_template
            ));
        }
        Ok(deployment)
    }
}

pub async fn run(args: ConnectorsArgs) -> ExitCode {
    match execute(args).await {
        Ok(output) => {
            println!("{output}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("okta-ingest connectors: {err}");
            ExitCode::from(err.exit_code())
        }
    }
}

async fn execute(args: ConnectorsArgs) -> Result<String, FleetError> {
    // Commands that create schedules need the function and the scheduler role.
    let for_add = matches!(
        args.command,
        ConnectorsCommand::Add { .. } | ConnectorsCommand::Redrive { .. }
    );
    let deployment = args
        .deployment
        .resolve(for_add)
        .map_err(FleetError::Deployment)?;
    // Every call of the command is bounded: a stalled service fails it instead of hanging it.
    let aws = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(crate::aws::https_client())
        .timeout_config(crate::aws::call_timeouts())
        .load()
        .await;
    let scheduler = EventBridgeScheduler::new(
        aws_sdk_scheduler::Client::new(&aws),
        deployment.schedule_group.clone(),
    );
    let run = RunSettings {
        allow_insecure_loopback: std::env::var("OKTA_ALLOW_INSECURE_LOOPBACK")
            .is_ok_and(|v| v == "true" || v == "1"),
        ..RunSettings::default()
    };
    let fleet = Fleet::new(deployment, scheduler, &aws, run);
    match args.command {
        ConnectorsCommand::Add {
            id,
            config,
            schedule,
            backfill_days,
        } => {
            let text = std::fs::read_to_string(&config).map_err(|e| {
                FleetError::Input(format!("cannot read --config {}: {e}", config.display()))
            })?;
            fleet.add(&id, &text, &schedule, backfill_days).await
        }
        ConnectorsCommand::List { json: as_json } => {
            let views = fleet.list().await?;
            Ok(if as_json {
                pretty(&views)
            } else {
                table(&views)
            })
        }
        ConnectorsCommand::Show { id, json: as_json } => {
            let view = fleet.show(&id).await?;
            Ok(if as_json {
                pretty(&view)
            } else {
                let mut text = table(std::slice::from_ref(&view));
                if let Some(error) = &view.last_error {
                    text.push_str(&format!("\nlast error: {error}"));
                }
                if let Some(schedule) = &view.schedule {
                    text.push_str(&format!("\nschedule: {schedule}"));
                }
                if let Some(backfill) = &view.backfill {
                    text.push_str(&format!(
                        "\nbackfill: {} events delivered{}",
                        backfill.events_delivered,
                        if backfill.paused { " (paused)" } else { "" }
                    ));
                }
                text
            })
        }
        ConnectorsCommand::Disable { id, reason } => fleet.disable(&id, reason.as_deref()).await,
        ConnectorsCommand::Resume { id } => fleet.resume(&id).await,
        ConnectorsCommand::Redrive { id } => fleet.redrive(&id).await,
        ConnectorsCommand::Remove { id, keep_cursor } => fleet.remove(&id, keep_cursor).await,
    }
}

fn pretty<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}
