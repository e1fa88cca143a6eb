//! AWS calls as they crossed the wire, told apart by service and operation from each request's
//! head: the SigV4 credential scope names the service, `X-Amz-Target` the operation of the JSON
//! protocols (DynamoDB, Secrets Manager, Kinesis); STS and S3 are counted by service.

use std::collections::BTreeMap;
use std::fmt;

/// Calls counted over some number of polls.
#[derive(Debug, Default, Clone)]
pub struct CallCounts {
    /// (service, operation) → calls.
    pub by_operation: BTreeMap<(String, String), u64>,
    /// Requests whose head names no SigV4 service (none are expected).
    pub unsigned: u64,
}

/// How the cost model groups calls: each group has its own price.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CallKind {
    DynamoRead,
    DynamoWrite,
    SecretsManager,
    Kinesis,
    Sts,
    S3,
    Other,
}

impl CallKind {
    pub const ALL: [CallKind; 7] = [
        CallKind::DynamoRead,
        CallKind::DynamoWrite,
        CallKind::SecretsManager,
        CallKind::Kinesis,
        CallKind::Sts,
        CallKind::S3,
        CallKind::Other,
    ];

    fn of(service: &str, operation: &str) -> CallKind {
        match service {
            "dynamodb" => match operation {
                "GetItem" | "BatchGetItem" | "Query" | "Scan" | "TransactGetItems" => {
                    CallKind::DynamoRead
                }
                _ => CallKind::DynamoWrite,
            },
            "secretsmanager" => CallKind::SecretsManager,
            "kinesis" => CallKind::Kinesis,
            "sts" => CallKind::Sts,
            "s3" => CallKind::S3,
            _ => CallKind::Other,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            CallKind::DynamoRead => "DynamoDB reads",
            CallKind::DynamoWrite => "DynamoDB writes",
            CallKind::SecretsManager => "Secrets Manager",
            CallKind::Kinesis => "Kinesis",
            CallKind::Sts => "STS",
            CallKind::S3 => "S3",
            CallKind::Other => "other",
        }
    }
}

impl CallCounts {
    pub fn from_heads(heads: &[String]) -> CallCounts {
        let mut counts = CallCounts::default();
        for head in heads {
            match classify(head) {
                Some(key) => *counts.by_operation.entry(key).or_insert(0) += 1,
                None => counts.unsigned += 1,
            }
        }
        counts
    }

    pub fn of_kind(&self, kind: CallKind) -> u64 {
        self.by_operation
            .iter()
            .filter(|((service, operation), _)| CallKind::of(service, operation) == kind)
            .map(|(_, n)| n)
            .sum()
    }

    /// Calls of `kind` per poll over `polls` polls.
    pub fn per_poll(&self, kind: CallKind, polls: usize) -> f64 {
        self.of_kind(kind) as f64 / polls.max(1) as f64
    }
}

/// `(service, operation)` of one request head; the operation is `*` where the head does not
/// name it (STS's query protocol carries it in the body, S3 in method and path).
fn classify(head: &str) -> Option<(String, String)> {
    let mut service = None;
    let mut target = None;
    for line in head.lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if name.eq_ignore_ascii_case("authorization") {
            // AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/dynamodb/aws4_request, ...
            service = value
                .split("Credential=")
                .nth(1)
                .and_then(|scope| scope.split(',').next())
                .and_then(|scope| scope.trim().split('/').nth(3))
                .map(str::to_owned);
        } else if name.eq_ignore_ascii_case("x-amz-target") {
            target = value.trim().rsplit('.').next().map(str::to_owned);
        }
    }
    let service = service?;
    let operation = target.unwrap_or_else(|| {
        if service == "s3" {
            head.split_whitespace().next().unwrap_or("*").to_owned()
        } else {
            "*".to_owned()
        }
    });
    Some((service, operation))
}

impl fmt::Display for CallCounts {
    /// `DynamoDB UpdateItem 2, Secrets Manager GetSecretValue 1, ...`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .by_operation
            .iter()
            .map(|((service, operation), n)| format!("{service} {operation} {n}"))
            .collect();
        write!(f, "{}", parts.join(", "))
    }
}
