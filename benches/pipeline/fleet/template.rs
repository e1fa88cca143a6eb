//! The deployment the fleet figures are for: parameter defaults read from infra/template.yaml,
//! so the benchmark follows the template rather than numbers of its own.

use std::time::Duration;

const TEMPLATE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/infra/template.yaml");

#[derive(Debug, Clone)]
pub struct Deployment {
    pub memory_mb: u64,
    pub timeout: Duration,
    pub reserved_concurrency: u64,
    pub connector_cache_size: u64,
    /// The schedule `connectors add` and the first connector get unless told otherwise.
    pub schedule_period: Duration,
    /// Alarms the stack creates (a fixed monthly cost shared by the fleet).
    pub alarms: u64,
}

impl Deployment {
    pub fn from_template() -> Result<Deployment, String> {
        let text = std::fs::read_to_string(TEMPLATE)
            .map_err(|e| format!("cannot read {TEMPLATE}: {e}"))?;
        let number = |name: &str| -> Result<u64, String> {
            let value = parameter_default(&text, name)?;
            value
                .parse()
                .map_err(|_| format!("{TEMPLATE}: the default of {name} ({value}) is not a number"))
        };
        Ok(Deployment {
            memory_mb: number("FunctionMemorySize")?,
            timeout: Duration::from_secs(number("FunctionTimeout")?),
            reserved_concurrency: number("ReservedConcurrency")?,
            connector_cache_size: number("ConnectorCacheSize")?,
            schedule_period: rate(&parameter_default(&text, "ScheduleExpression")?)?,
            alarms: text.matches("Type: AWS::CloudWatch::Alarm").count() as u64,
        })
    }

    pub fn memory_gb(&self) -> f64 {
        self.memory_mb as f64 / 1024.0
    }
}

/// `Default:` of the parameter `name` (the first `Default:` line inside its block).
fn parameter_default(text: &str, name: &str) -> Result<String, String> {
    let header = format!("  {name}:");
    let mut lines = text
        .lines()
        .skip_while(|line| *line != header)
        .skip(1)
        .take_while(|line| line.starts_with("    "));
    lines
        .find_map(|line| line.trim().strip_prefix("Default:"))
        .map(|value| value.trim().trim_matches('"').to_owned())
        .ok_or_else(|| format!("{TEMPLATE}: parameter {name} has no Default"))
}

/// The period of `rate(N unit)`.
fn rate(expression: &str) -> Result<Duration, String> {
    let bad = || format!("{TEMPLATE}: cannot read the schedule {expression:?} as rate(N unit)");
    let inner = expression
        .strip_prefix("rate(")
        .and_then(|e| e.strip_suffix(')'))
        .ok_or_else(bad)?;
    let (n, unit) = inner.split_once(' ').ok_or_else(bad)?;
    let n: u64 = n.parse().map_err(|_| bad())?;
    let unit_secs = match unit.trim_end_matches('s') {
        "minute" => 60,
        "hour" => 3600,
        "day" => 86_400,
        _ => return Err(bad()),
    };
    Ok(Duration::from_secs(n * unit_secs))
}
