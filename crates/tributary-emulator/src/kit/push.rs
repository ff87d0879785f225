//! Push delivery, the same for every provider: an outbox that POSTs JSON notifications
//! to loopback endpoints, retries them with exponential backoff until they are
//! acknowledged (any 2xx within the ack deadline), and injects the faults push has in
//! the wild (dropped, delayed, duplicated and reordered notifications). Each provider
//! builds its own payloads (Pub/Sub's envelope, Graph's change notifications) and
//! decides when to publish; a [`spawn_ticker`] task lets it notice changes to the
//! emulated mailboxes without every code path that changes one having to call it.
//! Reference: `docs/emulator-push.md`.

use super::settings::{LiveSettings, Settings};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use reqwest::Url;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

/// Pub/Sub's largest retry backoff (600 s), and so the largest the emulator takes.
pub const MAX_BACKOFF_MS: u64 = 600_000;
/// Attempts per notification at most (real providers retry for hours; a test needs few).
pub const MAX_ATTEMPTS: u32 = 50;
/// The longest injectable delay.
pub const MAX_DELAY_MS: u64 = 600_000;
/// How long a notification held back to be reordered waits for one to overtake it.
pub const REORDER_WINDOW: Duration = Duration::from_secs(1);
/// Attempts the control API remembers.
const RECENT_ATTEMPTS: usize = 200;
/// The most of an endpoint's answer the emulator reads (a validation token is short).
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Push faults and the retry policy, settable at start and through the control API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PushConfig {
    /// Chance (0 to 1) that a notification is never sent.
    pub drop_probability: f64,
    /// Chance (0 to 1) that a notification is sent twice.
    pub duplicate_probability: f64,
    /// Chance (0 to 1) that a notification is held back until the next one has been
    /// sent (or [`REORDER_WINDOW`] has passed).
    pub reorder_probability: f64,
    /// Added before a notification's first attempt.
    pub delay_ms: u64,
    /// A uniformly drawn extra 0..=jitter milliseconds on top of `delay_ms`.
    pub delay_jitter_ms: u64,
    /// The wait after the first failed attempt; it doubles after each further failure.
    pub retry_min_backoff_ms: u64,
    pub retry_max_backoff_ms: u64,
    /// Attempts before a notification is abandoned.
    pub max_attempts: u32,
    /// Makes the sequence of fault decisions reproducible.
    pub seed: Option<u64>,
}

impl Default for PushConfig {
    fn default() -> Self {
        PushConfig {
            drop_probability: 0.0,
            duplicate_probability: 0.0,
            reorder_probability: 0.0,
            delay_ms: 0,
            delay_jitter_ms: 0,
            retry_min_backoff_ms: 100,
            retry_max_backoff_ms: 10_000,
            max_attempts: 8,
            seed: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PushConfigError {
    #[error("{0} must be between 0 and 1, got {1}")]
    Probability(&'static str, f64),
    #[error(
        "retry_min_backoff_ms ({min}) must be at least 1 and at most retry_max_backoff_ms ({max}), itself at most {MAX_BACKOFF_MS}"
    )]
    Backoff { min: u64, max: u64 },
    #[error("max_attempts must be between 1 and {MAX_ATTEMPTS}, got {0}")]
    Attempts(u32),
    #[error("delay_ms plus delay_jitter_ms must be at most {MAX_DELAY_MS}, got {0}")]
    Delay(u64),
}

impl PushConfig {
    pub fn validate(&self) -> Result<(), PushConfigError> {
        for (name, p) in [
            ("drop_probability", self.drop_probability),
            ("duplicate_probability", self.duplicate_probability),
            ("reorder_probability", self.reorder_probability),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return Err(PushConfigError::Probability(name, p));
            }
        }
        let (min, max) = (self.retry_min_backoff_ms, self.retry_max_backoff_ms);
        if min == 0 || min > max || max > MAX_BACKOFF_MS {
            return Err(PushConfigError::Backoff { min, max });
        }
        if !(1..=MAX_ATTEMPTS).contains(&self.max_attempts) {
            return Err(PushConfigError::Attempts(self.max_attempts));
        }
        let delay = self.delay_ms.saturating_add(self.delay_jitter_ms);
        if delay > MAX_DELAY_MS {
            return Err(PushConfigError::Delay(delay));
        }
        Ok(())
    }

    /// The wait after `failures` failed attempts (1 or more).
    fn backoff(&self, failures: u32) -> Duration {
        let factor = 1u64 << failures.saturating_sub(1).min(32);
        let ms = self
            .retry_min_backoff_ms
            .saturating_mul(factor)
            .min(self.retry_max_backoff_ms);
        Duration::from_millis(ms)
    }
}

/// Why a push endpoint was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    #[error("{0:?} is not an absolute http or https URL")]
    NotAUrl(String),
    #[error("{0:?} carries credentials; put secrets in the notification, not the URL")]
    Credentials(String),
    #[error(
        "the emulator delivers only to loopback addresses (127.0.0.0/8, [::1], localhost), not {0:?}"
    )]
    NotLoopback(String),
}

/// `raw` as a push endpoint: an http(s) URL on a loopback address. Deliveries never
/// leave the machine, whoever asks for them.
pub fn loopback_endpoint(raw: &str) -> Result<Url, EndpointError> {
    let url = Url::parse(raw.trim()).map_err(|_| EndpointError::NotAUrl(raw.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(EndpointError::NotAUrl(raw.to_string()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(EndpointError::Credentials(raw.to_string()));
    }
    let host = url.host_str().unwrap_or("");
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = host.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if !loopback {
        return Err(EndpointError::NotLoopback(host.to_string()));
    }
    Ok(url)
}

/// One notification to POST (as JSON, or without a body).
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub url: Url,
    /// Extra headers, e.g. `Authorization`.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// An answer later than this is a failed attempt (Pub/Sub's ack deadline, Graph's 3 s).
    pub ack_deadline: Duration,
    /// What the control API shows for it (a subscription name or id).
    pub label: String,
}

/// What happened to notifications since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PushTotals {
    /// Handed to the outbox.
    pub published: u64,
    /// Acknowledged by their endpoint.
    pub delivered: u64,
    pub attempts: u64,
    pub failed_attempts: u64,
    /// Given up after `max_attempts`.
    pub abandoned: u64,
    pub dropped: u64,
    pub delayed: u64,
    pub duplicated: u64,
    pub reordered: u64,
}

/// One attempt, as the control API reports it (never the body, the headers or the
/// endpoint's query: they carry tokens and client states).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttemptRecord {
    pub label: String,
    pub endpoint: String,
    pub attempt: u32,
    /// The endpoint's status, if it answered in time.
    pub status: Option<u16>,
    pub acknowledged: bool,
    pub error: Option<String>,
}

#[derive(Debug)]
struct Inner {
    config: PushConfig,
    rng: ChaCha8Rng,
    /// A notification held back to be overtaken, with its hold number and the copies
    /// to send when it goes (2 when it was also duplicated).
    held: Option<(u64, Outgoing, u32)>,
    holds: u64,
    totals: PushTotals,
    recent: VecDeque<AttemptRecord>,
}

/// What to do with one published notification.
struct Plan {
    copies: u32,
    delay: Option<Duration>,
    /// A held notification to send right after this one, and its copies.
    release: Option<(Outgoing, u32)>,
}

/// An endpoint's answer to [`Outbox::exchange`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointAnswer {
    pub status: u16,
    pub content_type: String,
    pub body: String,
}

/// Sends notifications; shared as `Arc<Outbox>` by a provider's push state.
#[derive(Debug)]
pub struct Outbox {
    /// Built on first use: most emulators never push.
    client: OnceLock<reqwest::Client>,
    inner: Mutex<Inner>,
}

impl Default for Outbox {
    fn default() -> Self {
        Outbox::new(PushConfig::default())
    }
}

impl Outbox {
    /// An outbox with `config`; an invalid one injects nothing (validate it first).
    pub fn new(config: PushConfig) -> Self {
        let config = if config.validate().is_ok() {
            config
        } else {
            PushConfig::default()
        };
        Outbox {
            client: OnceLock::new(),
            inner: Mutex::new(Inner {
                rng: rng(&config),
                config,
                held: None,
                holds: 0,
                totals: PushTotals::default(),
                recent: VecDeque::new(),
            }),
        }
    }

    fn client(&self) -> &reqwest::Client {
        self.client.get_or_init(|| {
            // Endpoints are loopback only and never redirect anywhere else.
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .build()
                .unwrap_or_default()
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn config(&self) -> PushConfig {
        self.lock().config.clone()
    }

    pub fn set_config(&self, config: PushConfig) -> Result<(), PushConfigError> {
        config.validate()?;
        let mut inner = self.lock();
        inner.rng = rng(&config);
        inner.config = config;
        Ok(())
    }

    pub fn totals(&self) -> PushTotals {
        self.lock().totals
    }

    /// The latest attempts, oldest first.
    pub fn recent(&self) -> Vec<AttemptRecord> {
        self.lock().recent.iter().cloned().collect()
    }

    /// Publishes `outgoing`: the faults decide whether, when, how often and in which
    /// order it goes; then it is retried until acknowledged or abandoned.
    pub fn send(self: &Arc<Self>, outgoing: Outgoing) {
        let Some(plan) = self.plan(&outgoing) else {
            return;
        };
        // An overtaken notification leaves once this one's first attempt is over.
        let overtaken = plan.release.map(|(held, copies)| {
            let (first_attempt_done, done) = tokio::sync::oneshot::channel();
            let outbox = Arc::clone(self);
            tokio::spawn(async move {
                let _ = done.await;
                outbox.deliver_copies(held, copies).await;
            });
            first_attempt_done
        });
        let outbox = Arc::clone(self);
        tokio::spawn(async move {
            if let Some(delay) = plan.delay {
                tokio::time::sleep(delay).await;
            }
            for _ in 1..plan.copies {
                tokio::spawn(Arc::clone(&outbox).deliver(outgoing.clone(), None));
            }
            outbox.deliver(outgoing, overtaken).await;
        });
    }

    /// Draws the faults for one notification. `None`: dropped, or held back.
    fn plan(self: &Arc<Self>, outgoing: &Outgoing) -> Option<Plan> {
        let mut inner = self.lock();
        let Inner {
            config,
            rng,
            totals,
            ..
        } = &mut *inner;
        totals.published += 1;
        if draw(rng, config.drop_probability) {
            totals.dropped += 1;
            return None;
        }
        let copies = if draw(rng, config.duplicate_probability) {
            totals.duplicated += 1;
            2
        } else {
            1
        };
        let delay = (config.delay_ms > 0 || config.delay_jitter_ms > 0).then(|| {
            totals.delayed += 1;
            let jitter = match config.delay_jitter_ms {
                0 => 0,
                max => rng.gen_range(0..=max),
            };
            Duration::from_millis(config.delay_ms + jitter)
        });
        let reorder = draw(rng, config.reorder_probability);
        if reorder && inner.held.is_none() {
            inner.totals.reordered += 1;
            inner.holds += 1;
            let hold = inner.holds;
            inner.held = Some((hold, outgoing.clone(), copies));
            drop(inner);
            self.release_later(hold);
            return None;
        }
        let release = inner.held.take().map(|(_, held, copies)| (held, copies));
        Some(Plan {
            copies,
            delay,
            release,
        })
    }

    /// Sends the held notification `hold` if nothing overtook it within the window.
    fn release_later(self: &Arc<Self>, hold: u64) {
        let outbox = Arc::clone(self);
        tokio::spawn(async move {
            tokio::time::sleep(REORDER_WINDOW).await;
            let held = {
                let mut inner = outbox.lock();
                match inner.held.take() {
                    Some((number, held, copies)) if number == hold => Some((held, copies)),
                    other => {
                        inner.held = other;
                        None
                    }
                }
            };
            if let Some((held, copies)) = held {
                outbox.deliver_copies(held, copies).await;
            }
        });
    }

    /// Sends `copies` copies of `outgoing`, each attempted on its own.
    async fn deliver_copies(self: Arc<Self>, outgoing: Outgoing, copies: u32) {
        for _ in 1..copies {
            tokio::spawn(Arc::clone(&self).deliver(outgoing.clone(), None));
        }
        self.deliver(outgoing, None).await;
    }

    /// Attempts `outgoing` until acknowledged or abandoned; `first_attempt_done` is
    /// signalled after the first attempt (a reordered notification waits for it).
    async fn deliver(
        self: Arc<Self>,
        outgoing: Outgoing,
        mut first_attempt_done: Option<tokio::sync::oneshot::Sender<()>>,
    ) {
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let result = self.attempt(&outgoing).await;
            if let Some(done) = first_attempt_done.take() {
                let _ = done.send(());
            }
            let acknowledged = matches!(result, Ok(status) if (200..300).contains(&status));
            match self.record(&outgoing, attempt, result, acknowledged) {
                Some(wait) => tokio::time::sleep(wait).await,
                None => return,
            }
        }
    }

    /// Counts an attempt; answers how long to wait before the next one, if any.
    fn record(
        &self,
        outgoing: &Outgoing,
        attempt: u32,
        result: Result<u16, String>,
        acknowledged: bool,
    ) -> Option<Duration> {
        let mut inner = self.lock();
        inner.totals.attempts += 1;
        let (status, error) = match result {
            Ok(status) => (Some(status), None),
            Err(error) => (None, Some(error)),
        };
        if inner.recent.len() == RECENT_ATTEMPTS {
            inner.recent.pop_front();
        }
        inner.recent.push_back(AttemptRecord {
            label: outgoing.label.clone(),
            endpoint: without_query(&outgoing.url),
            attempt,
            status,
            acknowledged,
            error,
        });
        if acknowledged {
            inner.totals.delivered += 1;
            return None;
        }
        inner.totals.failed_attempts += 1;
        if attempt >= inner.config.max_attempts {
            inner.totals.abandoned += 1;
            tracing::warn!(label = %outgoing.label, attempt, "push notification abandoned");
            return None;
        }
        Some(inner.config.backoff(attempt))
    }

    /// One POST; the status, or why there was none in time.
    async fn attempt(&self, outgoing: &Outgoing) -> Result<u16, String> {
        let mut request = self
            .client()
            .post(outgoing.url.clone())
            .timeout(outgoing.ack_deadline)
            .body(outgoing.body.clone());
        // Calendar's web-hook notifications have no body, and so no content type.
        if !outgoing.body.is_empty() {
            request = request.header(reqwest::header::CONTENT_TYPE, "application/json");
        }
        for (name, value) in &outgoing.headers {
            request = request.header(name.as_str(), value.as_str());
        }
        let response = request.send().await.map_err(|e| transport_error(&e))?;
        Ok(response.status().as_u16())
    }

    /// POSTs `body` to `url` and reads the answer within `deadline`: what a validation
    /// handshake needs. At most 64 KiB of the answer is read.
    pub async fn exchange(
        &self,
        url: Url,
        body: Vec<u8>,
        content_type: &str,
        deadline: Duration,
    ) -> Result<EndpointAnswer, String> {
        let request = self
            .client()
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body);
        let read = async {
            let mut response = request.send().await.map_err(|e| transport_error(&e))?;
            let status = response.status().as_u16();
            let content_type = response
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            let mut bytes = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(|e| transport_error(&e))? {
                if bytes.len() + chunk.len() > MAX_ANSWER_BYTES {
                    return Err(format!("answer longer than {MAX_ANSWER_BYTES} bytes"));
                }
                bytes.extend_from_slice(&chunk);
            }
            Ok(EndpointAnswer {
                status,
                content_type,
                body: String::from_utf8_lossy(&bytes).into_owned(),
            })
        };
        tokio::time::timeout(deadline, read)
            .await
            .map_err(|_| format!("no answer within {} ms", deadline.as_millis()))?
    }
}

/// The endpoint as the control API shows it: a query may carry a secret.
fn without_query(url: &Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    shown.to_string()
}

fn rng(config: &PushConfig) -> ChaCha8Rng {
    match config.seed {
        Some(seed) => ChaCha8Rng::seed_from_u64(seed),
        None => ChaCha8Rng::from_entropy(),
    }
}

/// No draw for a probability of 0, so adding a fault kind keeps a seed's other decisions.
fn draw(rng: &mut ChaCha8Rng, probability: f64) -> bool {
    probability > 0.0 && rng.gen_bool(probability)
}

fn transport_error(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        return "no answer within the ack deadline".to_string();
    }
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl Settings for PushConfig {
    type Error = PushConfigError;

    fn validate(&self) -> Result<(), Self::Error> {
        PushConfig::validate(self)
    }
}

impl LiveSettings for Outbox {
    type Config = PushConfig;

    fn current(&self) -> Self::Config {
        self.config()
    }

    fn replace(&self, config: Self::Config) -> Result<(), PushConfigError> {
        self.set_config(config)
    }
}

/// Runs `tick` on the state every `period` for as long as the state lives (the task
/// holds it weakly, so a stopped emulator ends it).
pub fn spawn_ticker<S: Send + Sync + 'static>(state: &Arc<S>, period: Duration, tick: fn(&Arc<S>)) {
    let weak = Arc::downgrade(state);
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(period);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            interval.tick().await;
            let Some(state) = weak.upgrade() else {
                break;
            };
            tick(&state);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_http_endpoints_are_accepted() {
        for good in [
            "http://127.0.0.1:8080/push",
            "https://localhost/push?x=1",
            "http://[::1]:9/p",
            "http://127.5.6.7/",
        ] {
            assert!(loopback_endpoint(good).is_ok(), "{good}");
        }
        assert!(matches!(
            loopback_endpoint("https://crm.example/push"),
            Err(EndpointError::NotLoopback(_))
        ));
        assert!(matches!(
            loopback_endpoint("http://10.0.0.1/push"),
            Err(EndpointError::NotLoopback(_))
        ));
        assert!(matches!(
            loopback_endpoint("ftp://127.0.0.1/"),
            Err(EndpointError::NotAUrl(_))
        ));
        assert!(matches!(
            loopback_endpoint("http://user:pw@127.0.0.1/"),
            Err(EndpointError::Credentials(_))
        ));
    }

    #[test]
    fn backoff_doubles_up_to_the_maximum() {
        let config = PushConfig {
            retry_min_backoff_ms: 100,
            retry_max_backoff_ms: 500,
            ..PushConfig::default()
        };
        let waits: Vec<u128> = (1..=5).map(|n| config.backoff(n).as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 500, 500]);
    }

    #[test]
    fn invalid_settings_name_the_field() {
        let bad = PushConfig {
            duplicate_probability: 1.5,
            ..PushConfig::default()
        };
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("duplicate_probability")
        );
        let bad = PushConfig {
            max_attempts: 0,
            ..PushConfig::default()
        };
        assert_eq!(bad.validate(), Err(PushConfigError::Attempts(0)));
        let bad = PushConfig {
            retry_min_backoff_ms: 10,
            retry_max_backoff_ms: 5,
            ..PushConfig::default()
        };
        assert!(matches!(
            bad.validate(),
            Err(PushConfigError::Backoff { .. })
        ));
    }
}
