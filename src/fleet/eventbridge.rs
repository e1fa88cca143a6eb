//! The scheduler port on EventBridge Scheduler: one schedule per connector in the stack's group.

use async_trait::async_trait;
use aws_sdk_scheduler::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_scheduler::types::{
    ActionAfterCompletion, FlexibleTimeWindow, FlexibleTimeWindowMode, RetryPolicy, ScheduleState,
    Target,
};

use super::scheduler::{Schedule, Scheduler, SchedulerError};

/// A scheduled poll that could not be delivered within this long is superseded by the next one.
const MAX_EVENT_AGE_SECONDS: i32 = 60;

pub struct EventBridgeScheduler {
    client: aws_sdk_scheduler::Client,
    group: String,
}

impl EventBridgeScheduler {
    pub fn new(client: aws_sdk_scheduler::Client, group: String) -> Self {
        EventBridgeScheduler { client, group }
    }

    fn target(schedule: &Schedule) -> Result<Target, SchedulerError> {
        Target::builder()
            .arn(&schedule.target_arn)
            .role_arn(&schedule.role_arn)
            .input(&schedule.input)
            // No retries: the cursor lease makes an overlapping poll a no-op, and the next tick follows.
            .retry_policy(
                RetryPolicy::builder()
                    .maximum_retry_attempts(0)
                    .maximum_event_age_in_seconds(MAX_EVENT_AGE_SECONDS)
                    .build(),
            )
            .build()
            .map_err(|e| invalid(schedule, e.to_string()))
    }

    fn window(schedule: &Schedule) -> Result<FlexibleTimeWindow, SchedulerError> {
        let builder = match schedule.flexible_window_minutes {
            Some(minutes) => FlexibleTimeWindow::builder()
                .mode(FlexibleTimeWindowMode::Flexible)
                .maximum_window_in_minutes(minutes as i32),
            None => FlexibleTimeWindow::builder().mode(FlexibleTimeWindowMode::Off),
        };
        builder
            .build()
            .map_err(|e| invalid(schedule, e.to_string()))
    }

    fn service_error<E>(
        &self,
        name: &str,
        err: aws_sdk_scheduler::error::SdkError<E>,
    ) -> SchedulerError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let (code, message) = crate::aws::service_code_and_message(&err);
        let message = message.to_string();
        match code {
            "ResourceNotFoundException" if message.to_lowercase().contains("group") => {
                SchedulerError::GroupNotFound {
                    group: self.group.clone(),
                }
            }
            "ValidationException" => SchedulerError::Invalid {
                name: name.to_string(),
                message,
            },
            _ => SchedulerError::Service(DisplayErrorContext(&err).to_string()),
        }
    }
}

/// Not found, and not because the group is missing.
fn missing_schedule<E: ProvideErrorMetadata>(err: &aws_sdk_scheduler::error::SdkError<E>) -> bool {
    err.as_service_error().is_some_and(|e| {
        e.code() == Some("ResourceNotFoundException")
            && !e
                .message()
                .unwrap_or_default()
                .to_lowercase()
                .contains("group")
    })
}

fn invalid(schedule: &Schedule, message: String) -> SchedulerError {
    SchedulerError::Invalid {
        name: schedule.name.clone(),
        message,
    }
}

fn state(enabled: bool) -> ScheduleState {
    if enabled {
        ScheduleState::Enabled
    } else {
        ScheduleState::Disabled
    }
}

fn after_completion(delete: bool) -> ActionAfterCompletion {
    if delete {
        ActionAfterCompletion::Delete
    } else {
        ActionAfterCompletion::None
    }
}

/// Sets every field of a schedule on a CreateSchedule or UpdateSchedule builder: the two take the
/// same fields through builders of different types, and UpdateSchedule replaces them all.
macro_rules! schedule_fields {
    ($builder:expr, $scheduler:expr, $schedule:expr) => {
        $builder
            .group_name(&$scheduler.group)
            .name(&$schedule.name)
            .schedule_expression(&$schedule.expression)
            .flexible_time_window(Self::window($schedule)?)
            .target(Self::target($schedule)?)
            .state(state($schedule.enabled))
            .action_after_completion(after_completion($schedule.delete_after_completion))
    };
}

#[async_trait]
impl Scheduler for EventBridgeScheduler {
    fn group(&self) -> &str {
        &self.group
    }

    async fn put(&self, schedule: &Schedule) -> Result<(), SchedulerError> {
        let created = schedule_fields!(self.client.create_schedule(), self, schedule)
            .send()
            .await;
        match created {
            Ok(_) => Ok(()),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conflict_exception()) =>
            {
                // It exists: UpdateSchedule replaces every field.
                schedule_fields!(self.client.update_schedule(), self, schedule)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| self.service_error(&schedule.name, e))
            }
            Err(err) => Err(self.service_error(&schedule.name, err)),
        }
    }

    async fn get(&self, name: &str) -> Result<Option<Schedule>, SchedulerError> {
        let output = match self
            .client
            .get_schedule()
            .group_name(&self.group)
            .name(name)
            .send()
            .await
        {
            Ok(output) => output,
            // A missing schedule (in an existing group) is an answer, not a failure.
            Err(err) if missing_schedule(&err) => return Ok(None),
            Err(err) => return Err(self.service_error(name, err)),
        };
        let target = output.target();
        let window = output.flexible_time_window();
        Ok(Some(Schedule {
            name: output.name().unwrap_or(name).to_string(),
            expression: output.schedule_expression().unwrap_or_default().to_string(),
            input: target
                .and_then(|t| t.input())
                .unwrap_or_default()
                .to_string(),
            target_arn: target.map(|t| t.arn().to_string()).unwrap_or_default(),
            role_arn: target.map(|t| t.role_arn().to_string()).unwrap_or_default(),
            flexible_window_minutes: window
                .filter(|w| w.mode() == &FlexibleTimeWindowMode::Flexible)
                .and_then(|w| w.maximum_window_in_minutes())
                .map(|m| m as u32),
            enabled: output.state() != Some(&ScheduleState::Disabled),
            delete_after_completion: output.action_after_completion()
                == Some(&ActionAfterCompletion::Delete),
        }))
    }

    async fn list(&self) -> Result<Vec<String>, SchedulerError> {
        let mut names = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let output = self
                .client
                .list_schedules()
                .group_name(&self.group)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| self.service_error("", e))?;
            names.extend(
                output
                    .schedules()
                    .iter()
                    .filter_map(|s| s.name().map(str::to_string)),
            );
            match output.next_token() {
                Some(next) if !next.is_empty() => token = Some(next.to_string()),
                _ => break,
            }
        }
        names.sort();
        Ok(names)
    }

    async fn delete(&self, name: &str) -> Result<bool, SchedulerError> {
        match self
            .client
            .delete_schedule()
            .group_name(&self.group)
            .name(name)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(err) if missing_schedule(&err) => Ok(false),
            Err(err) => Err(self.service_error(name, err)),
        }
    }

    async fn check(&self) -> Result<(), SchedulerError> {
        self.client
            .get_schedule_group()
            .name(&self.group)
            .send()
            .await
            .map(|_| ())
            .map_err(|err| {
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception())
                {
                    SchedulerError::GroupNotFound {
                        group: self.group.clone(),
                    }
                } else {
                    SchedulerError::Service(DisplayErrorContext(&err).to_string())
                }
            })
    }
}
