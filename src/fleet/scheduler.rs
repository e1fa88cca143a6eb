//! The scheduler port: one schedule per connector in the deployment's schedule group. EventBridge
//! Scheduler in production ([`eventbridge`](super::eventbridge)), [`MemoryScheduler`] in tests.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;

/// What a schedule does: invoke `target_arn` as `role_arn` with `input`, on `expression`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    pub name: String,
    /// `rate(...)`, `cron(...)` or, for one-off schedules, `at(...)`.
    pub expression: String,
    pub input: String,
    pub target_arn: String,
    pub role_arn: String,
    /// Fired anywhere within this many minutes of its slot, so a fleet's schedules do not all fire in
    /// the same second. `None`: exactly on time.
    pub flexible_window_minutes: Option<u32>,
    pub enabled: bool,
    /// One-off schedules (a backfill request) delete themselves once they have fired.
    pub delete_after_completion: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    #[error("schedule group {group} does not exist: check SCHEDULE_GROUP (the stack output ExportScheduleGroup)")]
    GroupNotFound { group: String },
    #[error("the scheduler refused schedule {name}: {message}")]
    Invalid { name: String, message: String },
    #[error("EventBridge Scheduler call failed: {0}")]
    Service(String),
}

#[async_trait]
pub trait Scheduler: Send + Sync {
    /// The group the schedules live in.
    fn group(&self) -> &str;
    /// Creates the schedule, or replaces the one of that name.
    async fn put(&self, schedule: &Schedule) -> Result<(), SchedulerError>;
    async fn get(&self, name: &str) -> Result<Option<Schedule>, SchedulerError>;
    /// Names of every schedule in the group, sorted.
    async fn list(&self) -> Result<Vec<String>, SchedulerError>;
    /// Returns whether a schedule of that name existed.
    async fn delete(&self, name: &str) -> Result<bool, SchedulerError>;
    /// Checks that the group exists (before anything is created).
    async fn check(&self) -> Result<(), SchedulerError>;
}

/// An in-memory schedule group.
pub struct MemoryScheduler {
    group: String,
    schedules: Mutex<BTreeMap<String, Schedule>>,
}

impl MemoryScheduler {
    pub fn new(group: &str) -> Self {
        MemoryScheduler {
            group: group.to_string(),
            schedules: Mutex::new(BTreeMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Schedule>> {
        self.schedules.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl Scheduler for MemoryScheduler {
    fn group(&self) -> &str {
        &self.group
    }

    async fn put(&self, schedule: &Schedule) -> Result<(), SchedulerError> {
        if schedule.name.is_empty() || schedule.name.len() > 64 {
            return Err(SchedulerError::Invalid {
                name: schedule.name.clone(),
                message: "names are 1-64 characters".into(),
            });
        }
        self.lock().insert(schedule.name.clone(), schedule.clone());
        Ok(())
    }

    async fn get(&self, name: &str) -> Result<Option<Schedule>, SchedulerError> {
        Ok(self.lock().get(name).cloned())
    }

    async fn list(&self) -> Result<Vec<String>, SchedulerError> {
        Ok(self.lock().keys().cloned().collect())
    }

    async fn delete(&self, name: &str) -> Result<bool, SchedulerError> {
        Ok(self.lock().remove(name).is_some())
    }

    async fn check(&self) -> Result<(), SchedulerError> {
        Ok(())
    }
}

/// The spread window for a schedule expression: the whole interval of a `rate()` up to an hour (each
/// schedule fires once per interval, somewhere in it), one minute for `cron()`.
pub fn flexible_window_minutes(expression: &str) -> u32 {
    match parse_rate_minutes(expression) {
        Some(minutes) => minutes.clamp(1, 60),
        None => 1,
    }
}

/// Validates a poll schedule expression: `rate(N minute[s]|hour[s]|day[s])` or `cron(...)`.
pub fn validate_expression(expression: &str) -> Result<(), String> {
    let text = expression.trim();
    if text.starts_with("cron(") && text.ends_with(')') && text.len() > 6 {
        return Ok(());
    }
    if text.starts_with("rate(") {
        return parse_rate_minutes(text).map(|_| ()).ok_or_else(|| {
            format!("schedule {expression:?} is not a valid rate: use e.g. rate(1 minute), rate(5 minutes), rate(1 hour)")
        });
    }
    Err(format!(
        "schedule {expression:?} is neither rate(...) nor cron(...): use e.g. 'rate(1 minute)'"
    ))
}

fn parse_rate_minutes(expression: &str) -> Option<u32> {
    let inner = expression.trim().strip_prefix("rate(")?.strip_suffix(')')?;
    let (value, unit) = inner.trim().split_once(' ')?;
    let value: u32 = value.parse().ok().filter(|v| *v > 0)?;
    let per_unit = match (unit.trim(), value) {
        ("minute", 1) | ("minutes", 2..) => 1,
        ("hour", 1) | ("hours", 2..) => 60,
        ("day", 1) | ("days", 2..) => 1440,
        _ => return None,
    };
    value.checked_mul(per_unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_crons_are_accepted_and_anything_else_is_named() {
        for ok in [
            "rate(1 minute)",
            "rate(5 minutes)",
            "rate(1 hour)",
            "rate(2 days)",
            "cron(0/5 * * * ? *)",
        ] {
            assert!(validate_expression(ok).is_ok(), "{ok}");
        }
        for bad in [
            "rate(0 minutes)",
            "rate(1 minutes)",
            "rate(5 minute)",
            "rate(5 seconds)",
            "every minute",
            "at(2026-01-01T00:00:00)",
            "",
        ] {
            let err = validate_expression(bad).unwrap_err();
            assert!(err.contains(&format!("{bad:?}")), "{err}");
        }
    }

    #[test]
    fn the_window_spreads_a_rate_over_its_interval_up_to_an_hour() {
        assert_eq!(flexible_window_minutes("rate(1 minute)"), 1);
        assert_eq!(flexible_window_minutes("rate(5 minutes)"), 5);
        assert_eq!(flexible_window_minutes("rate(1 day)"), 60);
        assert_eq!(flexible_window_minutes("cron(0 * * * ? *)"), 1);
    }

    #[tokio::test]
    async fn memory_scheduler_replaces_lists_and_deletes() {
        let scheduler = MemoryScheduler::new("g");
        let mut schedule = Schedule {
            name: "acme".into(),
            expression: "rate(1 minute)".into(),
            input: "{}".into(),
            target_arn: "arn:f".into(),
            role_arn: "arn:r".into(),
            flexible_window_minutes: Some(1),
            enabled: true,
            delete_after_completion: false,
        };
        scheduler.put(&schedule).await.unwrap();
        schedule.enabled = false;
        scheduler.put(&schedule).await.unwrap();
        assert_eq!(scheduler.list().await.unwrap(), vec!["acme".to_string()]);
        assert!(!scheduler.get("acme").await.unwrap().unwrap().enabled);
        assert!(scheduler.delete("acme").await.unwrap());
        assert!(!scheduler.delete("acme").await.unwrap());
        assert_eq!(scheduler.get("acme").await.unwrap(), None);
    }
}
