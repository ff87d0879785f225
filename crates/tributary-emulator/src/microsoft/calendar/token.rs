//! The state a `calendarView/delta` link carries: the user, the window of the first
//! call (later calls take no parameters), and where the round stands. Opaque to
//! clients (base64url), readable by us.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Round {
    /// The first round: what the window held at `snapshot`, from `offset`.
    Initial { snapshot: u64, offset: usize },
    /// Changes stamped after `from`, up to `snapshot` (`None`: a delta link not yet
    /// followed, resolved to the store's sequence when it is).
    Changes {
        from: u64,
        snapshot: Option<u64>,
        offset: usize,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarToken {
    pub user_id: String,
    pub start_ms: i64,
    pub end_ms: i64,
    pub round: Round,
}

impl CalendarToken {
    /// The same round from a later position (a next link).
    pub fn advanced(&self, offset: usize) -> Self {
        let round = match self.round {
            Round::Initial { snapshot, .. } => Round::Initial { snapshot, offset },
            Round::Changes { from, snapshot, .. } => Round::Changes {
                from,
                snapshot,
                offset,
            },
        };
        CalendarToken {
            round,
            ..self.clone()
        }
    }

    /// The delta link ending this round: changes after what the round covered.
    pub fn delta(&self) -> Self {
        let from = match self.round {
            Round::Initial { snapshot, .. } => snapshot,
            Round::Changes { from, snapshot, .. } => snapshot.unwrap_or(from),
        };
        CalendarToken {
            round: Round::Changes {
                from,
                snapshot: None,
                offset: 0,
            },
            ..self.clone()
        }
    }

    pub fn encode(&self) -> String {
        let round = match self.round {
            Round::Initial { snapshot, offset } => format!("i|{snapshot}|{offset}|"),
            Round::Changes {
                from,
                snapshot,
                offset,
            } => format!(
                "c|{from}|{offset}|{}",
                snapshot.map(|s| s.to_string()).unwrap_or_default()
            ),
        };
        URL_SAFE_NO_PAD.encode(format!(
            "{round}|{}|{}|{}",
            self.start_ms, self.end_ms, self.user_id
        ))
    }

    pub fn decode(text: &str) -> Option<Self> {
        if text.len() > 2048 {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')).ok()?;
        let text = String::from_utf8(bytes).ok()?;
        let parts: Vec<&str> = text.splitn(7, '|').collect();
        let [kind, a, offset, snapshot, start, end, user] = parts.as_slice() else {
            return None;
        };
        let (a, offset): (u64, usize) = (a.parse().ok()?, offset.parse().ok()?);
        let round = match *kind {
            "i" => Round::Initial {
                snapshot: a,
                offset,
            },
            "c" => Round::Changes {
                from: a,
                snapshot: if snapshot.is_empty() {
                    None
                } else {
                    Some(snapshot.parse().ok()?)
                },
                offset,
            },
            _ => return None,
        };
        Some(CalendarToken {
            user_id: (*user).to_string(),
            start_ms: start.parse().ok()?,
            end_ms: end.parse().ok()?,
            round,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_refuse_garbage() {
        let token = CalendarToken {
            user_id: "6f1c-id".into(),
            start_ms: -5,
            end_ms: 99,
            round: Round::Initial {
                snapshot: 4,
                offset: 10,
            },
        };
        assert_eq!(CalendarToken::decode(&token.encode()), Some(token.clone()));
        let delta = token.delta();
        assert_eq!(
            delta.round,
            Round::Changes {
                from: 4,
                snapshot: None,
                offset: 0
            }
        );
        assert_eq!(CalendarToken::decode(&delta.encode()), Some(delta));
        assert_eq!(CalendarToken::decode("garbage!"), None);
    }
}
