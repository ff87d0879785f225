//! Bearer tokens and their cache, written once for every connector: a token per key
//! (Google: subject and scopes; Microsoft: scope) handed out until shortly before it
//! expires, one mint at a time per key, and forgotten when an API refuses it.

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Refresh this long before a token expires: msal refuses cache hits under 5 minutes,
/// google-auth refreshes 3 min 45 s ahead.
pub const DEFAULT_REFRESH_MARGIN: Duration = Duration::from_secs(300);

/// The longest a token is trusted to live, whatever the token endpoint says (Google
/// grants an hour, Microsoft up to a day): a bounded lifetime also keeps the expiry
/// instant from overflowing.
pub const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// A bearer token. Its value never appears in `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken {
    secret: Arc<str>,
    expires_at: Instant,
}

impl AccessToken {
    pub fn new(secret: impl Into<Arc<str>>, expires_at: Instant) -> Self {
        AccessToken {
            secret: secret.into(),
            expires_at,
        }
    }

    /// The value for `Authorization: Bearer …`.
    pub fn secret(&self) -> &str {
        &self.secret
    }

    pub fn expires_at(&self) -> Instant {
        self.expires_at
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("secret", &"[redacted]")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// What a token endpoint granted: the token and how long it lives, counted from the
/// request (at most [`MAX_TOKEN_LIFETIME`] is believed).
#[derive(Clone, PartialEq, Eq)]
pub struct MintedToken {
    pub secret: String,
    pub lifetime: Duration,
}

impl fmt::Debug for MintedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MintedToken")
            .field("secret", &"[redacted]")
            .field("lifetime", &self.lifetime)
            .finish()
    }
}

/// A cached token and when to stop handing it out.
#[derive(Clone)]
struct CachedToken {
    token: AccessToken,
    refresh_at: Instant,
}

/// One entry per key; its async mutex makes concurrent callers wait for a single mint
/// instead of each requesting their own token.
type Slot = Arc<tokio::sync::Mutex<Option<CachedToken>>>;

/// Tokens by key `K`, minted by the caller's closure when none is fresh.
pub struct TokenCache<K> {
    refresh_margin: Duration,
    slots: Mutex<HashMap<K, Slot>>,
}

impl<K> fmt::Debug for TokenCache<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCache")
            .field("refresh_margin", &self.refresh_margin)
            .finish_non_exhaustive()
    }
}

impl<K: Eq + Hash + Clone> Default for TokenCache<K> {
    fn default() -> Self {
        Self::new(DEFAULT_REFRESH_MARGIN)
    }
}

impl<K: Eq + Hash + Clone> TokenCache<K> {
    /// Tokens are refreshed `refresh_margin` before they expire; for tokens living less
    /// than twice the margin, half their lifetime is used instead, so a short-lived token
    /// is still reused.
    pub fn new(refresh_margin: Duration) -> Self {
        TokenCache {
            refresh_margin,
            slots: Mutex::new(HashMap::new()),
        }
    }

    pub fn refresh_margin(&self) -> Duration {
        self.refresh_margin
    }

    /// The token cached for `key` while it is fresh, else the one `mint` gets, which is
    /// then cached. Callers asking for the same key meanwhile wait for this mint; a
    /// failed mint caches nothing.
    ///
    /// `mint` is a closure returning a future rather than an async closure, so the
    /// callers' futures stay `Send` for any lifetime (see [`crate::send_authorized`]).
    pub async fn get_or_mint<E, MintFuture>(
        &self,
        key: &K,
        mint: impl FnOnce() -> MintFuture,
    ) -> Result<AccessToken, E>
    where
        MintFuture: Future<Output = Result<MintedToken, E>>,
    {
        let slot = self.slot(key);
        let mut cached = slot.lock().await;
        if let Some(entry) = cached.as_ref()
            && Instant::now() < entry.refresh_at
        {
            return Ok(entry.token.clone());
        }
        let requested_at = Instant::now();
        let minted = mint().await?;
        let lifetime = minted.lifetime.min(MAX_TOKEN_LIFETIME);
        let entry = CachedToken {
            token: AccessToken::new(minted.secret, requested_at + lifetime),
            refresh_at: refresh_at(requested_at, lifetime, self.refresh_margin),
        };
        let token = entry.token.clone();
        *cached = Some(entry);
        Ok(token)
    }

    /// Forgets `token` (an API refused it) so the next call for `key` mints a new one. A
    /// token that has already been replaced is left alone: another caller's refusal of
    /// the old token must not throw away the new one.
    pub async fn invalidate(&self, key: &K, token: &AccessToken) {
        let slot = self.slot(key);
        let mut cached = slot.lock().await;
        if cached.as_ref().is_some_and(|entry| &entry.token == token) {
            *cached = None;
        }
    }

    fn slot(&self, key: &K) -> Slot {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(slots.entry(key.clone()).or_default())
    }
}

/// When a token requested at `requested_at` and living `lifetime` stops being handed out.
fn refresh_at(requested_at: Instant, lifetime: Duration, margin: Duration) -> Instant {
    requested_at + lifetime - margin.min(lifetime / 2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A mint that counts its calls and grants `secret-N` living `lifetime`.
    struct Minter {
        calls: AtomicUsize,
        lifetime: Duration,
    }

    impl Minter {
        fn new(lifetime: Duration) -> Self {
            Minter {
                calls: AtomicUsize::new(0),
                lifetime,
            }
        }

        async fn mint(&self) -> Result<MintedToken, String> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
            Ok(MintedToken {
                secret: format!("secret-{n}"),
                lifetime: self.lifetime,
            })
        }

        fn calls(&self) -> usize {
            self.calls.load(Ordering::SeqCst)
        }
    }

    const HOUR: Duration = Duration::from_secs(3600);

    #[tokio::test]
    async fn a_fresh_token_is_reused_per_key() {
        let cache = TokenCache::default();
        let minter = Minter::new(HOUR);
        let first = cache.get_or_mint(&"a", || minter.mint());
        let first = first.await.unwrap();
        let again = cache.get_or_mint(&"a", || minter.mint());
        assert_eq!(again.await.unwrap(), first);
        assert_eq!(minter.calls(), 1);
        let other = cache.get_or_mint(&"b", || minter.mint());
        assert_ne!(other.await.unwrap(), first);
        assert_eq!(minter.calls(), 2);
    }

    #[tokio::test]
    async fn the_expiry_counts_from_the_request() {
        let cache = TokenCache::default();
        let minter = Minter::new(HOUR);
        let before = Instant::now();
        let token = cache.get_or_mint(&"a", || minter.mint());
        let token = token.await.unwrap();
        assert!(token.expires_at() >= before + HOUR);
        assert!(token.expires_at() <= Instant::now() + HOUR);
        assert_eq!(token.secret(), "secret-1");
    }

    #[tokio::test]
    async fn an_endless_lifetime_is_capped() {
        let cache = TokenCache::default();
        let minter = Minter::new(Duration::MAX);
        let token = cache.get_or_mint(&"a", || minter.mint());
        let token = token.await.unwrap();
        assert!(token.expires_at() <= Instant::now() + MAX_TOKEN_LIFETIME);
    }

    #[tokio::test]
    async fn a_token_inside_the_refresh_margin_is_replaced() {
        // A token that lives no time is past its refresh point at once.
        let cache = TokenCache::new(Duration::from_secs(300));
        let minter = Minter::new(Duration::ZERO);
        for expected in ["secret-1", "secret-2"] {
            let token = cache.get_or_mint(&"a", || minter.mint());
            assert_eq!(token.await.unwrap().secret(), expected);
        }
        assert_eq!(minter.calls(), 2);
    }

    #[test]
    fn short_lived_tokens_refresh_at_half_their_life() {
        let now = Instant::now();
        let margin = Duration::from_secs(300);
        assert_eq!(refresh_at(now, HOUR, margin), now + HOUR - margin);
        let short = Duration::from_secs(120);
        assert_eq!(
            refresh_at(now, short, margin),
            now + Duration::from_secs(60)
        );
        assert_eq!(refresh_at(now, Duration::ZERO, margin), now);
    }

    #[tokio::test]
    async fn only_the_refused_token_is_invalidated() {
        let cache = TokenCache::default();
        let minter = Minter::new(HOUR);
        let old = cache.get_or_mint(&"a", || minter.mint());
        let old = old.await.unwrap();
        let kept = cache.get_or_mint(&"b", || minter.mint());
        let kept = kept.await.unwrap();
        cache.invalidate(&"a", &old).await;
        let new = cache.get_or_mint(&"a", || minter.mint());
        let new = new.await.unwrap();
        assert_ne!(new, old);
        // A late refusal of the old token leaves the new one alone, and the other key's.
        cache.invalidate(&"a", &old).await;
        let again = cache.get_or_mint(&"a", || minter.mint());
        assert_eq!(again.await.unwrap(), new);
        let other = cache.get_or_mint(&"b", || minter.mint());
        assert_eq!(other.await.unwrap(), kept);
        assert_eq!(minter.calls(), 3);
    }

    #[tokio::test]
    async fn a_failed_mint_caches_nothing() {
        let cache = TokenCache::default();
        let refused = cache.get_or_mint(&"a", || async { Err::<MintedToken, _>("refused") });
        assert_eq!(refused.await.unwrap_err(), "refused");
        let minter = Minter::new(HOUR);
        let token = cache.get_or_mint(&"a", || minter.mint());
        assert_eq!(token.await.unwrap().secret(), "secret-1");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_callers_mint_once() {
        let cache = Arc::new(TokenCache::default());
        let minter = Arc::new(Minter::new(HOUR));
        let mut callers = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let (cache, minter) = (Arc::clone(&cache), Arc::clone(&minter));
            callers.spawn(async move {
                let token = cache.get_or_mint(&"a", || async {
                    // Hold the mint open so the other callers arrive while it runs.
                    tokio::task::yield_now().await;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    minter.mint().await
                });
                token.await.unwrap().secret().to_string()
            });
        }
        let secrets = callers.join_all().await;
        assert!(
            secrets.iter().all(|secret| secret == "secret-1"),
            "{secrets:?}"
        );
        assert_eq!(minter.calls(), 1);
    }

    #[test]
    fn debug_output_hides_the_secret() {
        let token = AccessToken::new("ya29.secret", Instant::now());
        let printed = format!("{token:?}");
        assert!(!printed.contains("ya29"), "{printed}");
        assert!(printed.contains("[redacted]"));
        let minted = MintedToken {
            secret: "ya29.secret".into(),
            lifetime: HOUR,
        };
        assert!(!format!("{minted:?}").contains("ya29"));
    }
}
