//! Why reading the System Log failed, and which failures may heal by retrying.

/// Why reading the System Log failed. The variants decide what the drain does next.
#[derive(Debug, thiserror::Error)]
pub enum OktaError {
    /// The local HTTP client could not be built (TLS roots, resolver).
    #[error("creating the HTTP client failed: {0}")]
    HttpClient(String),
    /// Signing a client assertion or DPoP proof, or creating the DPoP key, failed locally.
    #[error("{0}")]
    Signing(String),
    /// The configured credentials cannot be sent as they are (e.g. a token with a line break).
    #[error("unusable credentials: {0}")]
    UnusableCredentials(&'static str),
    /// A time the System Log query cannot express (far outside Okta's range).
    #[error("timestamp {0} cannot be sent to Okta")]
    UnsendableTimestamp(String),
    /// Credentials that retrying will not fix (invalid_client, deactivated app, revoked token).
    #[error("Okta rejected the credentials ({code}): {summary}")]
    AuthRejected { code: String, summary: String },
    /// The credentials work but lack a permission (e.g. the okta.logs.read scope).
    #[error("Okta denied access ({code}): {summary}")]
    Forbidden { code: String, summary: String },
    #[error("Okta answered HTTP {status} ({code}): {summary}")]
    Http {
        status: u16,
        code: String,
        summary: String,
    },
    #[error("Okta kept answering 429 (rate limited) until the time budget ran out")]
    RateLimited,
    #[error("network error talking to Okta: {0}")]
    Transport(String),
    #[error("the time budget ran out before Okta answered")]
    DeadlineExceeded,
    #[error("malformed response from Okta: {0}")]
    MalformedResponse(String),
    #[error("refused next link {link}: its origin differs from the org URL {org}")]
    ForeignNextLink { link: String, org: String },
    /// The stored cursor was written while the secret named another org URL. Following it
    /// would send the credentials elsewhere, and nothing retried will change it.
    #[error(
        "the stored cursor reads {cursor_origin} but the secret names the org {org}: the org URL \
         was changed. To keep reading the old org, put its URL back in the secret. To read {org} \
         from now on, remove the `cursor` attribute of the live cursor item (and of the \
         `#backfill` item if it holds one), then `resume`: the next poll restarts 5 minutes \
         before the newest event delivered, and a `backfill` reads any earlier history of the \
         new org (docs/operations.md, \"Org URL changed\")"
    )]
    CursorOnOtherOrg { cursor_origin: String, org: String },
}

impl OktaError {
    /// Failures that will not heal by retrying: the connector pauses at once instead of
    /// burning its failure budget.
    pub fn pauses_connector(&self) -> bool {
        matches!(
            self,
            OktaError::AuthRejected { .. } | OktaError::Forbidden { .. }
        )
    }

    /// Whether repeating the same request may succeed: an outage, throttling, a request
    /// timeout, a broken connection, or a DPoP nonce that rotated again (a race with Okta, not bad credentials).
    /// The one rule for API pages and token requests alike.
    pub fn is_transient(&self) -> bool {
        match self {
            OktaError::Transport(_) => true,
            OktaError::Http { status, code, .. } => {
                *status >= 500 || *status == 429 || *status == 408 || code == USE_DPOP_NONCE
            }
            _ => false,
        }
    }
}

/// The error code (OAuth `error`, or WWW-Authenticate `error=`) asking for a fresh DPoP nonce.
pub(crate) const USE_DPOP_NONCE: &str = "use_dpop_nonce";
