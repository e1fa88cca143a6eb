//! The cursor store on DynamoDB: one item per key, every lease-holder write a conditional
//! UpdateItem. The item layout is documented in docs/cursor-item.md.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};

use super::{
    ambiguous, rules, Checkpoint, Claim, CursorError, CursorItem, CursorStore, Lease, Pause,
    PausedBy, RunOutcome, Window,
};

type Attributes = HashMap<String, AttributeValue>;

/// The table's partition key (type S).
pub const PARTITION_KEY: &str = "connector_id";

/// Claims retried when the item changes between the failed conditional write and the read
/// that explains it (e.g. the holder released in between).
const CLAIM_ATTEMPTS: usize = 3;

pub struct DynamoCursorStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

/// Why a conditional UpdateItem did not apply.
enum WriteFailure {
    ConditionFailed,
    Service(CursorError),
}

impl DynamoCursorStore {
    pub fn new(client: aws_sdk_dynamodb::Client, table: String) -> Self {
        DynamoCursorStore { client, table }
    }

    /// A client for the store: the SDK configuration `aws` with [`crate::aws::call_timeouts`].
    pub fn client(aws: &SdkConfig) -> aws_sdk_dynamodb::Client {
        let config = aws_sdk_dynamodb::config::Builder::from(aws)
            .timeout_config(crate::aws::call_timeouts())
            .build();
        aws_sdk_dynamodb::Client::from_conf(config)
    }

    fn service_error(&self, key: &str, action: &str, err: impl std::error::Error) -> CursorError {
        CursorError::Service {
            key: key.to_owned(),
            message: format!(
                "{action} on table {}: {}",
                self.table,
                DisplayErrorContext(err)
            ),
        }
    }

    /// A consistent read, so a decision made on it sees every acknowledged write.
    async fn get(&self, key: &str) -> Result<Option<Attributes>, CursorError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PARTITION_KEY, AttributeValue::S(key.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.service_error(key, "GetItem", e))?;
        Ok(output.item)
    }

    /// One conditional UpdateItem returning the item as written. Attribute names are all
    /// written `#name` (several, like `cursor`, are reserved words) and only the names and
    /// values an expression mentions are sent, as DynamoDB rejects unused ones.
    async fn update(
        &self,
        key: &str,
        update: &str,
        condition: Option<&str>,
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<Attributes, WriteFailure> {
        let expressions: Vec<&str> = std::iter::once(update).chain(condition).collect();
        let names: HashMap<String, String> = placeholders(&expressions, '#')
            .into_iter()
            .map(|name| (format!("#{name}"), name))
            .collect();
        let used_values = placeholders(&expressions, ':');
        let values: HashMap<String, AttributeValue> = values
            .into_iter()
            .filter(|(name, _)| used_values.contains(&name[1..]))
            .map(|(name, value)| (name.to_owned(), value))
            .collect();
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PARTITION_KEY, AttributeValue::S(key.to_owned()))
            .update_expression(update)
            .set_condition_expression(condition.map(str::to_owned))
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values((!values.is_empty()).then_some(values))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(output) => Ok(output.attributes.unwrap_or_default()),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Err(WriteFailure::ConditionFailed)
            }
            Err(err) => Err(WriteFailure::Service(self.service_error(
                key,
                "UpdateItem",
                err,
            ))),
        }
    }

    /// A fenced write: a failed condition means the lease is no longer ours.
    async fn fenced_update(
        &self,
        lease: &Lease,
        update: &str,
        extra_condition: &str,
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<Attributes, WriteFailure> {
        let condition = format!("#lease_owner = :me AND #version = :v{extra_condition}");
        let mut values = values;
        values.push((":me", s(&lease.owner)));
        values.push((":v", n(lease.version)));
        self.update(&lease.key, update, Some(&condition), values)
            .await
    }
}

fn lease_lost(lease: &Lease) -> impl FnOnce(WriteFailure) -> CursorError + '_ {
    move |failure| match failure {
        WriteFailure::ConditionFailed => CursorError::LeaseLost {
            key: lease.key.clone(),
        },
        WriteFailure::Service(err) => err,
    }
}

/// The identifiers after `sigil` (`#name`, `:value`) in the expressions.
fn placeholders(expressions: &[&str], sigil: char) -> HashSet<String> {
    let mut found = HashSet::new();
    for expression in expressions {
        for (start, _) in expression.match_indices(sigil) {
            let name: String = expression[start + 1..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                found.insert(name);
            }
        }
    }
    found
}

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn epoch_ms(at: OffsetDateTime) -> i128 {
    at.unix_timestamp_nanos() / 1_000_000
}

/// Fixed-width UTC RFC 3339, so stored timestamps also compare correctly as strings
/// (the `newest_published` condition relies on that).
fn timestamp(at: OffsetDateTime) -> AttributeValue {
    let format =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:9]Z");
    let text = at
        .to_offset(UtcOffset::UTC)
        .format(format)
        .expect("every OffsetDateTime in years 0000-9999 formats");
    AttributeValue::S(text)
}

/// Reads typed attributes of one stored item, naming the attribute that is wrong.
struct Reader<'a> {
    key: &'a str,
    item: &'a Attributes,
}

impl Reader<'_> {
    fn malformed(&self, name: &str, expected: &str) -> CursorError {
        CursorError::Malformed {
            key: self.key.to_owned(),
            detail: format!(
                "attribute {name} should be {expected}; fix or delete the item in the cursor table"
            ),
        }
    }

    fn string(&self, name: &str) -> Result<Option<String>, CursorError> {
        match self.item.get(name) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(AttributeValue::S(text)) => Ok(Some(text.clone())),
            Some(_) => Err(self.malformed(name, "a string (S)")),
        }
    }

    fn number<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>, CursorError> {
        match self.item.get(name) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(AttributeValue::N(text)) => text
                .parse()
                .map(Some)
                .map_err(|_| self.malformed(name, "a non-negative integer (N)")),
            Some(_) => Err(self.malformed(name, "a number (N)")),
        }
    }

    fn time(&self, name: &str) -> Result<Option<OffsetDateTime>, CursorError> {
        self.string(name)?
            .map(|text| {
                OffsetDateTime::parse(&text, &Rfc3339)
                    .map_err(|_| self.malformed(name, "an RFC 3339 timestamp (S)"))
            })
            .transpose()
    }

    fn epoch_ms(&self, name: &str) -> Result<Option<OffsetDateTime>, CursorError> {
        self.number::<i64>(name)?
            .map(|ms| {
                OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
                    .map_err(|_| self.malformed(name, "epoch milliseconds (N)"))
            })
            .transpose()
    }

    fn pause(&self) -> Result<Option<Pause>, CursorError> {
        match self.item.get("paused") {
            None | Some(AttributeValue::Null(_)) | Some(AttributeValue::Bool(false)) => Ok(None),
            Some(AttributeValue::Bool(true)) => {
                let by = self
                    .string("paused_by")?
                    .as_deref()
                    .and_then(PausedBy::parse)
                    .ok_or_else(|| self.malformed("paused_by", &PausedBy::choices()))?;
                Ok(Some(Pause {
                    reason: self.string("pause_reason")?.unwrap_or_default(),
                    by,
                    at: self
                        .time("paused_at")?
                        .ok_or_else(|| self.malformed("paused_at", "set while paused"))?,
                }))
            }
            Some(_) => Err(self.malformed("paused", "a boolean (BOOL)")),
        }
    }

    fn window(&self) -> Result<Option<Window>, CursorError> {
        match (self.time("window_start")?, self.time("window_end")?) {
            (Some(start), Some(end)) => Ok(Some(Window { start, end })),
            (None, None) => Ok(None),
            _ => Err(self.malformed("window_start", "set together with window_end")),
        }
    }

    fn cursor_item(&self) -> Result<CursorItem, CursorError> {
        Ok(CursorItem {
            key: self.key.to_owned(),
            cursor: self.string("cursor")?,
            version: self.number("version")?.unwrap_or(0),
            lease_owner: self.string("lease_owner")?,
            lease_expires_at: self.epoch_ms("lease_expires_at")?,
            consecutive_failures: self.number("consecutive_failures")?.unwrap_or(0),
            paused: self.pause()?,
            last_error: self.string("last_error")?,
            last_success_at: self.time("last_success_at")?,
            newest_published: self.time("newest_published")?,
            delivered_total: self.number("delivered_total")?.unwrap_or(0),
            window: self.window()?,
            updated_at: self.time("updated_at")?,
        })
    }
}

fn parse(key: &str, item: &Attributes) -> Result<CursorItem, CursorError> {
    Reader { key, item }.cursor_item()
}

fn pause_values(pause: &Pause) -> Vec<(&'static str, AttributeValue)> {
    vec![
        (":true", AttributeValue::Bool(true)),
        (":reason", s(&pause.reason)),
        (":by", s(pause.by.as_str())),
        (":paused_at", timestamp(pause.at)),
    ]
}

const SET_PAUSE: &str =
    "#paused = :true, #pause_reason = :reason, #paused_by = :by, #paused_at = :paused_at";

#[async_trait]
impl CursorStore for DynamoCursorStore {
    async fn load(&self, key: &str) -> Result<Option<CursorItem>, CursorError> {
        self.get(key)
            .await?
            .map(|item| parse(key, &item))
            .transpose()
    }

    async fn claim(
        &self,
        key: &str,
        owner: &str,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
    ) -> Result<Claim, CursorError> {
        let update = "SET #lease_owner = :me, #lease_expires_at = :until_ms, #updated_at = :now, \
             #consecutive_failures = if_not_exists(#consecutive_failures, :zero), \
             #delivered_total = if_not_exists(#delivered_total, :zero) \
             ADD #version :one";
        // Hand-edited items may carry `paused = false` or an owner without an expiry; the
        // reader treats both as "not paused" / "free", so the condition must too.
        let condition =
            "(attribute_not_exists(#lease_owner) OR attribute_not_exists(#lease_expires_at) \
             OR #lease_expires_at <= :now_ms OR #lease_owner = :me) \
             AND (attribute_not_exists(#paused) OR #paused <> :true)";
        for _ in 0..CLAIM_ATTEMPTS {
            let values = vec![
                (":me", s(owner)),
                (":until_ms", n(epoch_ms(lease_until))),
                (":now_ms", n(epoch_ms(now))),
                (":now", timestamp(now)),
                (":zero", n(0)),
                (":one", n(1)),
                (":true", AttributeValue::Bool(true)),
            ];
            match self.update(key, update, Some(condition), values).await {
                Ok(written) => return Ok(rules::acquired(parse(key, &written)?, lease_until)),
                Err(WriteFailure::Service(error)) => {
                    let landed = |item: &CursorItem| rules::claim_landed(item, owner);
                    let item = ambiguous::resolve(self, key, error, landed).await?;
                    return Ok(rules::acquired(item, lease_until));
                }
                Err(WriteFailure::ConditionFailed) => {}
            }
            let Some(current) = self.get(key).await? else {
                continue;
            };
            let current = parse(key, &current)?;
            // A retry of a claim that had landed fails its condition only if the item changed
            // since; either way, an item we own is ours.
            if rules::claim_landed(&current, owner) {
                return Ok(rules::acquired(current, lease_until));
            }
            // The condition refused: say why, in the words of the rules. No refusal means
            // the item changed in between, so the claim is tried again.
            if let Some(refusal) = rules::claim_refusal(&current, owner, now) {
                return Ok(refusal);
            }
        }
        Err(CursorError::Service {
            key: key.to_owned(),
            message: format!(
                "the item kept changing during {CLAIM_ATTEMPTS} claim attempts; retry the invocation"
            ),
        })
    }

    async fn checkpoint(
        &self,
        lease: &mut Lease,
        update: &Checkpoint,
        now: OffsetDateTime,
    ) -> Result<(), CursorError> {
        let mut set = vec!["#cursor = :cursor", "#updated_at = :now"];
        let mut values = vec![
            (":cursor", s(&update.cursor)),
            (":now", timestamp(now)),
            (":one", n(1)),
            (":delivered", n(update.delivered)),
        ];
        if let Some(window) = update.window {
            set.push("#window_start = :window_start, #window_end = :window_end");
            values.push((":window_start", timestamp(window.start)));
            values.push((":window_end", timestamp(window.end)));
        }
        let add = "ADD #version :one, #delivered_total :delivered";
        let plain = format!("SET {} {add}", set.join(", "));
        let written = match update.newest_published {
            // DynamoDB has no max(): write the newer value under a condition, and when it is
            // not newer, write the rest without it.
            Some(published) => {
                set.push("#newest_published = :published");
                let mut with_newest = values.clone();
                with_newest.push((":published", timestamp(published)));
                let expression = format!("SET {} {add}", set.join(", "));
                let newer = " AND (attribute_not_exists(#newest_published) \
                     OR #newest_published < :published)";
                match self
                    .fenced_update(lease, &expression, newer, with_newest)
                    .await
                {
                    Err(WriteFailure::ConditionFailed) => {
                        self.fenced_update(lease, &plain, "", values).await
                    }
                    other => other,
                }
            }
            None => self.fenced_update(lease, &plain, "", values).await,
        }
        .map_err(lease_lost(lease));
        let item = match written {
            Ok(written) => parse(&lease.key, &written)?,
            Err(error) => {
                let landed = |item: &CursorItem| rules::checkpoint_landed(item, lease, update);
                ambiguous::resolve(self, &lease.key, error, landed).await?
            }
        };
        lease.version = item.version;
        Ok(())
    }

    async fn release(
        &self,
        lease: &Lease,
        outcome: &RunOutcome,
        pause_after: u32,
        now: OffsetDateTime,
    ) -> Result<CursorItem, CursorError> {
        let free = "REMOVE #lease_owner, #lease_expires_at";
        let written = match outcome {
            RunOutcome::Success => {
                let update = format!(
                    "SET #consecutive_failures = :zero, #last_success_at = :now, \
                     #updated_at = :now {free}, #last_error ADD #version :one"
                );
                let values = vec![(":zero", n(0)), (":now", timestamp(now)), (":one", n(1))];
                self.fenced_update(lease, &update, "", values).await
            }
            RunOutcome::Failure { error, pause_now } => {
                let error = rules::stored_error(error);
                let values = vec![
                    (":error", s(&error)),
                    (":now", timestamp(now)),
                    (":one", n(1)),
                ];
                let record = "#last_error = :error, #updated_at = :now";
                let count = "ADD #version :one, #consecutive_failures :one";
                // The count is the item's, never a local copy: the pausing write is conditioned
                // on the stored count reaching the threshold, and the fence guarantees the
                // plain write below sees the same count when it does not.
                let pause = Pause {
                    reason: rules::failure_pause_reason(&error, *pause_now, pause_after),
                    by: PausedBy::Connector,
                    at: now,
                };
                let mut pausing_values = values.clone();
                pausing_values.extend(pause_values(&pause));
                pausing_values.push((":threshold", n(pause_after.saturating_sub(1))));
                let threshold = if *pause_now {
                    " AND (attribute_not_exists(#paused) OR #paused <> :true)"
                } else {
                    " AND (attribute_not_exists(#paused) OR #paused <> :true) \
                     AND #consecutive_failures >= :threshold"
                };
                let pausing = format!("SET {record}, {SET_PAUSE} {free} {count}");
                match self
                    .fenced_update(lease, &pausing, threshold, pausing_values)
                    .await
                {
                    Err(WriteFailure::ConditionFailed) => {
                        let update = format!("SET {record} {free} {count}");
                        self.fenced_update(lease, &update, "", values).await
                    }
                    other => other,
                }
            }
        }
        .map_err(lease_lost(lease));
        match written {
            Ok(written) => parse(&lease.key, &written),
            Err(error) => {
                let landed = |item: &CursorItem| rules::release_landed(item, lease, outcome);
                ambiguous::resolve(self, &lease.key, error, landed).await
            }
        }
    }

    async fn set_pause(
        &self,
        key: &str,
        pause: Option<Pause>,
        now: OffsetDateTime,
    ) -> Result<CursorItem, CursorError> {
        // Leaves version and lease alone: see the trait and docs/cursor-item.md.
        let defaults = "#updated_at = :now, \
             #delivered_total = if_not_exists(#delivered_total, :zero), \
             #version = if_not_exists(#version, :zero)";
        let mut values = vec![(":now", timestamp(now)), (":zero", n(0))];
        let update = match &pause {
            Some(pause) => {
                values.extend(pause_values(pause));
                format!(
                    "SET {SET_PAUSE}, {defaults}, \
                     #consecutive_failures = if_not_exists(#consecutive_failures, :zero)"
                )
            }
            None => format!(
                "SET {defaults}, #consecutive_failures = :zero \
                 REMOVE #paused, #pause_reason, #paused_by, #paused_at"
            ),
        };
        let written =
            self.update(key, &update, None, values)
                .await
                .map_err(|failure| match failure {
                    WriteFailure::Service(err) => err,
                    WriteFailure::ConditionFailed => CursorError::Service {
                        key: key.to_owned(),
                        message: "unconditional write reported a failed condition".into(),
                    },
                })?;
        parse(key, &written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn timestamps_sort_as_strings_in_time_order() {
        let earlier = timestamp(datetime!(2026-01-01 09:00:00.5 +02:00));
        let later = timestamp(datetime!(2026-01-01 08:00:00.25 UTC));
        let (AttributeValue::S(earlier), AttributeValue::S(later)) = (earlier, later) else {
            panic!("timestamps are strings");
        };
        assert_eq!(earlier, "2026-01-01T07:00:00.500000000Z");
        assert!(earlier < later);
    }

    #[test]
    fn placeholders_are_whole_identifiers() {
        let found = placeholders(&["SET #a = :now_ms, #b = :now", "#a <= :now_ms"], ':');
        assert_eq!(
            found,
            HashSet::from(["now_ms".to_owned(), "now".to_owned()])
        );
    }

    #[test]
    fn malformed_attribute_is_named() {
        let item = Attributes::from([("version".to_owned(), AttributeValue::S("seven".into()))]);
        let err = parse("acme", &item).unwrap_err();
        assert!(err.to_string().contains("version"), "{err}");
    }

    #[test]
    fn timestamps_round_trip_through_the_reader() {
        let at = datetime!(2026-02-03 04:05:06.789 UTC);
        let item = Attributes::from([
            ("updated_at".to_owned(), timestamp(at)),
            ("lease_expires_at".to_owned(), n(epoch_ms(at))),
        ]);
        let parsed = parse("acme", &item).unwrap();
        assert_eq!(parsed.updated_at, Some(at));
        assert_eq!(parsed.lease_expires_at, Some(at));
    }
}
