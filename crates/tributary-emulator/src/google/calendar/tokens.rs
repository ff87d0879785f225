//! Page and sync tokens: opaque to clients, readable by us. A sync token names the
//! calendar and the change sequence it was handed out at; a page token carries the
//! listing's position and the sequence its first page saw, so the `nextSyncToken` of
//! the last page covers every change made while the client was paging.

use super::super::error::ApiError;
use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Where a paged listing stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageToken {
    pub offset: usize,
    /// The store's sequence when the first page was served.
    pub snapshot: u64,
}

impl PageToken {
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("page|{}|{}", self.offset, self.snapshot))
    }

    pub fn decode(token: &str) -> Result<Self, ApiError> {
        let invalid = || {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid",
                "Invalid page token value.",
            )
        };
        let text = decoded(token).ok_or_else(invalid)?;
        let mut parts = text.split('|');
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some("page"), Some(offset), Some(snapshot), None) => Ok(PageToken {
                offset: offset.parse().map_err(|_| invalid())?,
                snapshot: snapshot.parse().map_err(|_| invalid())?,
            }),
            _ => Err(invalid()),
        }
    }
}

/// The start of an incremental sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncToken {
    pub calendar: String,
    pub seq: u64,
}

impl SyncToken {
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("sync|{}|{}", self.seq, self.calendar))
    }

    pub fn decode(token: &str) -> Result<Self, ApiError> {
        let invalid = || {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid",
                "Invalid sync token value.",
            )
        };
        let text = decoded(token).ok_or_else(invalid)?;
        let mut parts = text.splitn(3, '|');
        match (parts.next(), parts.next(), parts.next()) {
            (Some("sync"), Some(seq), Some(calendar)) => Ok(SyncToken {
                seq: seq.parse().map_err(|_| invalid())?,
                calendar: calendar.to_string(),
            }),
            _ => Err(invalid()),
        }
    }
}

/// 410 `fullSyncRequired`: the token expired; the client must wipe and list again.
pub fn full_sync_required() -> ApiError {
    ApiError::new(
        StatusCode::GONE,
        "fullSyncRequired",
        "Sync token is no longer valid, a full sync is required.",
    )
}

fn decoded(token: &str) -> Option<String> {
    if token.len() > 2048 {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(token.trim_end_matches('=')).ok()?;
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_refuse_garbage() {
        let page = PageToken {
            offset: 250,
            snapshot: 17,
        };
        assert_eq!(PageToken::decode(&page.encode()).unwrap(), page);
        let sync = SyncToken {
            calendar: "ann@x.example".into(),
            seq: 9,
        };
        assert_eq!(SyncToken::decode(&sync.encode()).unwrap(), sync);
        assert!(SyncToken::decode(&page.encode()).is_err());
        assert!(PageToken::decode("not a token").is_err());
    }
}
