//! The opaque `after` values of next links. They carry a position in the log plus a keyed
//! checksum, so a forged or garbled cursor is refused (400) instead of silently skipping events.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

/// Where the next page starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum After {
    /// Polling: the next storage sequence to read.
    Poll { next_seq: u64 },
    /// Bounded ascending: the last event served, by (published, sequence).
    Ascending { published_ms: i64, seq: u64 },
    /// Bounded descending: the last event served, by (published, sequence).
    Descending { published_ms: i64, seq: u64 },
}

pub(crate) struct CursorCodec {
    key: [u8; 32],
}

const MAC_LEN: usize = 8;

impl CursorCodec {
    pub(crate) fn new(seed: u64) -> Self {
        let key: [u8; 32] = Sha256::digest(format!("okta-sim cursor key {seed}")).into();
        CursorCodec { key }
    }

    fn mac(&self, payload: &[u8]) -> [u8; MAC_LEN] {
        let digest = Sha256::new()
            .chain_update(self.key)
            .chain_update(payload)
            .finalize();
        let mut mac = [0u8; MAC_LEN];
        mac.copy_from_slice(&digest[..MAC_LEN]);
        mac
    }

    pub(crate) fn encode(&self, after: After) -> String {
        let (tag, published, seq) = match after {
            After::Poll { next_seq } => (b'P', 0, next_seq),
            After::Ascending { published_ms, seq } => (b'A', published_ms, seq),
            After::Descending { published_ms, seq } => (b'D', published_ms, seq),
        };
        let mut bytes = Vec::with_capacity(17 + MAC_LEN);
        bytes.push(tag);
        bytes.extend_from_slice(&published.to_be_bytes());
        bytes.extend_from_slice(&seq.to_be_bytes());
        let mac = self.mac(&bytes);
        bytes.extend_from_slice(&mac);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// `None` when the value was not issued by this simulator.
    pub(crate) fn decode(&self, value: &str) -> Option<After> {
        let bytes = URL_SAFE_NO_PAD.decode(value).ok()?;
        if bytes.len() != 17 + MAC_LEN {
            return None;
        }
        let (payload, mac) = bytes.split_at(17);
        if self.mac(payload) != mac {
            return None;
        }
        let published = i64::from_be_bytes(payload[1..9].try_into().ok()?);
        let seq = u64::from_be_bytes(payload[9..17].try_into().ok()?);
        match payload[0] {
            b'P' => Some(After::Poll { next_seq: seq }),
            b'A' => Some(After::Ascending {
                published_ms: published,
                seq,
            }),
            b'D' => Some(After::Descending {
                published_ms: published,
                seq,
            }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_cursors_round_trip() {
        let codec = CursorCodec::new(1);
        for after in [
            After::Poll { next_seq: 12345 },
            After::Ascending {
                published_ms: 1_700_000_000_000,
                seq: 7,
            },
            After::Descending {
                published_ms: -5,
                seq: 0,
            },
        ] {
            assert_eq!(codec.decode(&codec.encode(after)), Some(after));
        }
    }

    #[test]
    fn forged_or_garbled_cursors_are_refused() {
        let codec = CursorCodec::new(1);
        let good = codec.encode(After::Poll { next_seq: 10 });
        let mut garbled = good.clone().into_bytes();
        garbled[3] = if garbled[3] == b'A' { b'B' } else { b'A' };
        assert_eq!(codec.decode(std::str::from_utf8(&garbled).unwrap()), None);
        assert_eq!(codec.decode("1700000000000_1"), None);
        assert_eq!(codec.decode(""), None);
        assert_eq!(CursorCodec::new(2).decode(&good), None);
    }
}
