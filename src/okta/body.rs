//! Bounded reads of the small bodies (error answers, token responses), so a hostile or broken
//! server cannot make the connector buffer an unbounded answer.

/// Okta's error and token answers are well under a kilobyte.
pub(crate) const MAX_SMALL_BODY_BYTES: usize = 64 * 1024;

/// Reads at most [`MAX_SMALL_BODY_BYTES`]; the rest is dropped unread, so an oversized answer
/// simply fails to parse as what it should have been.
pub(crate) async fn read_small_body(
    mut response: reqwest::Response,
) -> Result<Vec<u8>, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = MAX_SMALL_BODY_BYTES - body.len();
        if chunk.len() >= room {
            body.extend_from_slice(&chunk[..room]);
            break;
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
