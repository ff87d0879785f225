//! Throttling of failed sign-ins: console passwords and API tokens.
//!
//! Failures are counted per account (the email address typed, whether or not it has an
//! account, so the answer never tells which addresses exist) and per client address
//! (the TCP peer; `X-Forwarded-For` is never trusted). Each key has a leaky bucket
//! (governor's GCRA): a burst of failures is allowed, then one per interval. Once a
//! key's budget is spent, its attempts are refused *before* the credential is checked,
//! even a right one, until a failure would fit again.
//!
//! governor has no way to look at a bucket without taking from it, and only failures may
//! take from it (a right password or token must not), so the keys whose budget is spent
//! are remembered with the time they are free again. Both maps keep only recent keys:
//! every minute the buckets that are full again and the expired blocks are dropped, so
//! memory follows the keys that failed in the last minute or so.

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use std::collections::HashMap;
use std::convert::Infallible;
use std::hash::Hash;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// How often stale keys are dropped.
const PRUNE_EVERY: Duration = Duration::from_secs(60);
/// Longest account key kept (longer input is cut: it is a key, not an address).
const MAX_ACCOUNT_KEY_CHARS: usize = 320;

/// How many failures a key may have: `burst` at once, then `per_minute`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureLimit {
    pub per_minute: NonZeroU32,
    pub burst: NonZeroU32,
}

impl FailureLimit {
    /// `per_minute` failures a minute, `burst` of them at once.
    pub const fn new(per_minute: NonZeroU32, burst: NonZeroU32) -> Self {
        FailureLimit { per_minute, burst }
    }

    fn quota(self) -> Quota {
        Quota::per_minute(self.per_minute).allow_burst(self.burst)
    }
}

/// The failure limits of sign-in (console) and API token authentication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignInLimits {
    /// Per email address typed at the console's sign-in.
    pub per_account: FailureLimit,
    /// Per client address (IPv6 by /64), console and API together.
    pub per_address: FailureLimit,
}

impl Default for SignInLimits {
    /// 5 failures a minute per account, 20 per address, each allowed at once: enough for
    /// people mistyping, far too few to guess a password.
    fn default() -> Self {
        let five = NonZeroU32::new(5).expect("not zero");
        let twenty = NonZeroU32::new(20).expect("not zero");
        SignInLimits {
            per_account: FailureLimit::new(five, five),
            per_address: FailureLimit::new(twenty, twenty),
        }
    }
}

/// An attempt refused unchecked: how long until one would be checked again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    pub retry_after: Duration,
}

impl Throttled {
    /// Whole seconds to wait (rounded up, at least 1): `Retry-After` and the page.
    pub fn retry_after_secs(&self) -> u64 {
        let secs = self.retry_after.as_secs();
        let rounded = if self.retry_after.subsec_nanos() > 0 {
            secs + 1
        } else {
            secs
        };
        rounded.max(1)
    }
}

/// The server's sign-in throttle (one per [`crate::AppState`]).
#[derive(Debug)]
pub struct SignInThrottle {
    accounts: FailureLimiter<String>,
    addresses: FailureLimiter<IpAddr>,
}

impl SignInThrottle {
    pub fn new(limits: SignInLimits) -> Self {
        SignInThrottle {
            accounts: FailureLimiter::new(limits.per_account),
            addresses: FailureLimiter::new(limits.per_address),
        }
    }

    /// `Err` when this attempt must be refused without checking its credential: the
    /// account's or the address's failure budget is spent (the longer wait of the two).
    pub fn check(&self, account: Option<&str>, address: IpAddr) -> Result<(), Throttled> {
        let by_address = self.addresses.blocked_for(&address_key(address));
        let by_account =
            account.and_then(|account| self.accounts.blocked_for(&account_key(account)));
        match by_address.max(by_account) {
            Some(retry_after) => Err(Throttled { retry_after }),
            None => Ok(()),
        }
    }

    /// Counts a failed attempt against the account (when one was named) and the address.
    pub fn record_failure(&self, account: Option<&str>, address: IpAddr) {
        self.addresses.record_failure(address_key(address));
        if let Some(account) = account {
            self.accounts.record_failure(account_key(account));
        }
    }
}

/// The key of an account: the address as typed, trimmed, lowercased and cut short.
fn account_key(account: &str) -> String {
    account
        .trim()
        .to_lowercase()
        .chars()
        .take(MAX_ACCOUNT_KEY_CHARS)
        .collect()
}

/// The network half of an IPv6 address.
const NETWORK_64: u128 = !0 << 64;

/// The key of a client address: IPv4 as is (also when IPv4-mapped), IPv6 by its /64,
/// the block one machine or home usually holds, so rotating addresses within it gains
/// nothing.
fn address_key(address: IpAddr) -> IpAddr {
    match address.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from_bits(v6.to_bits() & NETWORK_64)),
    }
}

type Buckets<K> =
    RateLimiter<K, DefaultKeyedStateStore<K>, DefaultClock, StateInformationMiddleware>;

/// One keyed failure budget and the keys that have spent it.
struct FailureLimiter<K: Hash + Eq + Clone> {
    buckets: Buckets<K>,
    /// When each blocked key may be checked again; and when both maps were last pruned.
    blocked: Mutex<(HashMap<K, Instant>, Instant)>,
    /// The time one failure takes to be forgiven.
    interval: Duration,
    limit: FailureLimit,
}

impl<K: Hash + Eq + Clone> std::fmt::Debug for FailureLimiter<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FailureLimiter")
            .field("limit", &self.limit)
            .field("keys", &self.buckets.len())
            .finish()
    }
}

impl<K: Hash + Eq + Clone> FailureLimiter<K> {
    fn new(limit: FailureLimit) -> Self {
        let quota = limit.quota();
        FailureLimiter {
            buckets: RateLimiter::keyed(quota).with_middleware::<StateInformationMiddleware>(),
            blocked: Mutex::new((HashMap::new(), Instant::now())),
            interval: quota.replenish_interval(),
            limit,
        }
    }

    fn lock(&self) -> MutexGuard<'_, (HashMap<K, Instant>, Instant)> {
        // The map holds plain values: a panic elsewhere cannot leave it half-written.
        self.blocked.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How long `key` stays blocked, if it is.
    fn blocked_for(&self, key: &K) -> Option<Duration> {
        let now = Instant::now();
        let blocked = self.lock();
        let until = blocked.0.get(key)?;
        (*until > now).then(|| *until - now)
    }

    fn record_failure(&self, key: K) {
        let now = Instant::now();
        let until = match self.buckets.check_key(&key) {
            Ok(state) if state.remaining_burst_capacity() > 0 => None,
            // This failure took the last one allowed: the next fits within an interval.
            Ok(_) => Some(now + self.interval),
            // Failures checked side by side before the first was counted: wait for room.
            Err(not_until) => Some(now + not_until.wait_time_from(self.buckets.clock().now())),
        };
        let mut blocked = self.lock();
        if let Some(until) = until {
            let entry = blocked.0.entry(key).or_insert(until);
            *entry = (*entry).max(until);
        }
        if now.duration_since(blocked.1) >= PRUNE_EVERY {
            blocked.0.retain(|_, until| *until > now);
            blocked.1 = now;
            self.buckets.retain_recent();
            self.buckets.shrink_to_fit();
        }
    }
}

/// The client's address: the TCP peer as [`crate::serve`] records it. A router served
/// without connect info puts every client in one bucket (unspecified address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddress(pub IpAddr);

impl ClientAddress {
    pub fn of(parts: &Parts) -> Self {
        let address = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(peer)| peer.ip())
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        ClientAddress(address)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(ClientAddress::of(parts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(account: u32, address: u32) -> SignInLimits {
        let limit = |n| {
            let n = NonZeroU32::new(n).unwrap();
            FailureLimit::new(n, n)
        };
        SignInLimits {
            per_account: limit(account),
            per_address: limit(address),
        }
    }

    const HOME: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    const AWAY: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));

    #[test]
    fn an_account_is_blocked_after_its_burst_of_failures_only() {
        let throttle = SignInThrottle::new(limits(3, 100));
        for _ in 0..2 {
            throttle.record_failure(Some("ada@acme.test"), HOME);
            assert!(throttle.check(Some("ada@acme.test"), HOME).is_ok());
        }
        throttle.record_failure(Some(" ADA@acme.test"), HOME);
        let refused = throttle.check(Some("ada@acme.test"), AWAY).unwrap_err();
        assert!(refused.retry_after > Duration::ZERO);
        assert!(refused.retry_after <= Duration::from_secs(20));
        assert!(throttle.check(Some("bob@acme.test"), HOME).is_ok());
    }

    #[test]
    fn an_address_is_blocked_for_every_account_and_for_tokens() {
        let throttle = SignInThrottle::new(limits(100, 2));
        throttle.record_failure(Some("a@acme.test"), HOME);
        throttle.record_failure(None, HOME);
        assert!(throttle.check(Some("c@acme.test"), HOME).is_err());
        assert!(throttle.check(None, HOME).is_err());
        assert!(throttle.check(None, AWAY).is_ok());
    }

    #[test]
    fn ipv6_addresses_share_their_64_and_mapped_ipv4_is_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        assert_ne!(address_key(a), address_key(other));
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(address_key(mapped), HOME);
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        let wait = |ms| Throttled {
            retry_after: Duration::from_millis(ms),
        };
        assert_eq!(wait(1).retry_after_secs(), 1);
        assert_eq!(wait(12_000).retry_after_secs(), 12);
        assert_eq!(wait(12_001).retry_after_secs(), 13);
    }
}
