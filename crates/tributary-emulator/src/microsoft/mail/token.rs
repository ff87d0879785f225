//! Delta states as opaque tokens: the state (mailbox, folder, sync generation, where the
//! round is, the original `$select` and page size) as JSON, tagged with a keyed digest so
//! a changed token is refused, then url-safe base64. Clients never see the fields.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Where a delta round is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase {
    /// The first round: every item in the folder, in creation order after `after`.
    /// Changes after `upto` come in the next round.
    Initial { upto: u64, after: u64 },
    /// A later round: items touched in (`from`, `upto`], after position `after`.
    Changes { from: u64, upto: u64, after: u64 },
    /// A finished round (a delta link): the next round starts after `at`.
    Delta { at: u64 },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeltaState {
    pub user_id: String,
    pub folder_id: String,
    pub generation: u64,
    pub phase: Phase,
    /// The first request's `$select`: next and delta links keep it.
    pub select: Option<Vec<String>>,
    /// The first request's `odata.maxpagesize`.
    pub page_size: Option<usize>,
    /// The first request's `$filter=receivedDateTime ge|gt …`: items received earlier are
    /// left out of every round (removals are still reported).
    #[serde(default)]
    pub received_filter: Option<ReceivedFilter>,
    /// The first request's `changeType`.
    #[serde(default)]
    pub change_type: Option<ChangeType>,
}

/// `receivedDateTime ge` (or `gt`, `strict`) an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceivedFilter {
    pub since_ms: i64,
    pub strict: bool,
}

impl ReceivedFilter {
    pub fn keeps(&self, received_ms: i64) -> bool {
        if self.strict {
            received_ms > self.since_ms
        } else {
            received_ms >= self.since_ms
        }
    }
}

/// `changeType=created|updated|deleted`: only that kind of change is reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChangeType {
    Created,
    Updated,
    Deleted,
}

const TAG_LEN: usize = 8;

fn tag(key: &str, payload: &[u8]) -> [u8; TAG_LEN] {
    let digest = Sha256::new()
        .chain_update(key.as_bytes())
        .chain_update(payload)
        .finalize();
    let mut tag = [0u8; TAG_LEN];
    tag.copy_from_slice(&digest[..TAG_LEN]);
    tag
}

/// XORs `bytes` with a keystream derived from `key` and `tag`, so the token shows no
/// field even to someone decoding its base64.
fn mask(key: &str, tag: &[u8], bytes: &mut [u8]) {
    for (block, chunk) in bytes.chunks_mut(32).enumerate() {
        let stream = Sha256::new()
            .chain_update(key.as_bytes())
            .chain_update(tag)
            .chain_update((block as u64).to_le_bytes())
            .finalize();
        for (byte, pad) in chunk.iter_mut().zip(stream.iter()) {
            *byte ^= pad;
        }
    }
}

impl DeltaState {
    pub fn encode(&self, key: &str) -> String {
        let mut payload = serde_json::to_vec(self).unwrap_or_default();
        let tag = tag(key, &payload);
        mask(key, &tag, &mut payload);
        let mut bytes = tag.to_vec();
        bytes.extend_from_slice(&payload);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// `None` for anything this emulator did not issue with `key`.
    pub fn decode(token: &str, key: &str) -> Option<DeltaState> {
        let bytes = URL_SAFE_NO_PAD.decode(token.trim_end_matches('=')).ok()?;
        if bytes.len() <= TAG_LEN {
            return None;
        }
        let (given, masked) = bytes.split_at(TAG_LEN);
        let mut payload = masked.to_vec();
        mask(key, given, &mut payload);
        if given != tag(key, &payload) {
            return None;
        }
        serde_json::from_slice(&payload).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> DeltaState {
        DeltaState {
            user_id: "user-guid".into(),
            folder_id: "AAMkAfolder".into(),
            generation: 1,
            phase: Phase::Delta { at: 42 },
            select: Some(vec!["subject".into()]),
            page_size: Some(5),
            received_filter: Some(ReceivedFilter {
                since_ms: 7,
                strict: false,
            }),
            change_type: None,
        }
    }

    #[test]
    fn tokens_round_trip_and_reveal_nothing() {
        let token = state().encode("k");
        assert_eq!(DeltaState::decode(&token, "k"), Some(state()));
        let decoded =
            String::from_utf8_lossy(&URL_SAFE_NO_PAD.decode(&token).unwrap()).into_owned();
        assert!(
            !decoded.contains("user-guid"),
            "the base64 hides nothing: {decoded}"
        );
        for clear in ["user-guid", "AAMkAfolder", "subject", "42", "Delta"] {
            assert!(!token.contains(clear), "{clear} shows in {token}");
        }
    }

    #[test]
    fn a_changed_or_foreign_token_is_refused() {
        let token = state().encode("k");
        assert_eq!(DeltaState::decode(&token, "other"), None);
        let mut bytes = URL_SAFE_NO_PAD.decode(&token).unwrap();
        let last = bytes.len() - 3;
        bytes[last] ^= 1;
        assert_eq!(
            DeltaState::decode(&URL_SAFE_NO_PAD.encode(bytes), "k"),
            None
        );
        assert_eq!(DeltaState::decode("not a token", "k"), None);
    }
}
