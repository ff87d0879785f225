//! The push channel lifecycle (docs/push.md, "Lifecycle"), written once and run per
//! provider and backend through the runtime and its worker, as `serve` and `worker`
//! run it: a synced link gets a channel per stream the provider pushes and is on push
//! (its next sync is the slow safety poll); a channel marked due or about to lapse is
//! renewed; unlinking and disconnecting stop the channels at the provider and forget
//! them, as *Rebuild* does for a user it unlinks (suspended); a provider refusing the channel leaves the link syncing by polling with the
//! provider's words as the reason; without a public URL nothing is opened.
//!
//! A provider whose push is not built yet (`Connector::push_streams` empty) is
//! reported and skipped by the tests that need channels.

mod common;

use common::{AnyEmulated, Provider, test_pacing};
use std::collections::BTreeSet;
use std::time::Duration;
use tributary_emulator::testing::PushReceiver;
use tributary_google::GoogleEndpoints;
use tributary_store::{
    LinkId, LinkPush, LinkStatus, MasterKey, PushChannelRecord, PushMode, Store, TenantId,
};
use tributary_sync::push::PushSettings;
use tributary_sync::{
    EngineConfig, JobOutcome, MicrosoftCredential, MicrosoftSettings, Runtime, RuntimeConfig,
    Worker, WorkerConfig,
};

on_every_provider!(
    a_synced_link_gets_its_channels_and_is_on_push,
    a_channel_due_or_about_to_lapse_is_renewed,
    unlink_and_disconnect_stop_the_channels,
    a_suspended_users_channels_are_stopped_by_rebuild,
    a_refused_channel_leaves_the_link_polling_with_the_reason,
    without_a_public_url_no_channel_is_opened,
);

const ACTOR: &str = "admin@test";
const POLL: Duration = Duration::from_secs(300);
const PUSH_POLL: Duration = Duration::from_secs(3600);
const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

/// Where the runtime says providers deliver.
enum PublicUrl {
    /// A receiver on loopback that acknowledges everything and answers Graph's
    /// validation handshake, as Tributary's server does (it serves on once its
    /// handle is dropped).
    Receiver,
    /// An address the emulators refuse to deliver to (only loopback is allowed), as a
    /// provider refuses an endpoint it cannot use.
    Refused,
    /// Push off.
    None,
}

/// A tenant connected through the runtime to `provider`'s emulator, directory matched,
/// capture on, every link synced once by the worker.
struct Pushed {
    runtime: Runtime,
    tenant: TenantId,
    emulated: AnyEmulated,
    /// The outcomes of the first jobs, and the clock before they ran.
    first: Vec<JobOutcome>,
    started_ms: i64,
}

impl Pushed {
    fn store(&self) -> &Store {
        self.runtime.store()
    }

    async fn links(&self) -> Vec<LinkId> {
        self.store()
            .links(&self.tenant)
            .await
            .unwrap()
            .into_iter()
            .map(|link| link.id)
            .collect()
    }

    async fn channels(&self, link: LinkId) -> Vec<PushChannelRecord> {
        self.store()
            .push_channels(&self.tenant, link)
            .await
            .unwrap()
    }

    async fn modes(&self) -> Vec<LinkPush> {
        self.store().link_push_modes(&self.tenant).await.unwrap()
    }

    async fn mode(&self, link: LinkId) -> LinkPush {
        self.modes()
            .await
            .into_iter()
            .find(|mode| mode.link == link)
            .unwrap_or_else(|| panic!("no push mode recorded for link {}", link.0))
    }

    /// The streams the provider pushes (none: its push is not built yet).
    async fn push_streams(
        &self,
        provider: Provider,
    ) -> &'static [tributary_sync::push::PushStream] {
        self.runtime
            .engine_for(&self.tenant, provider.kind())
            .await
            .unwrap()
            .expect("an engine for the provider")
            .connector()
            .push_streams()
    }

    /// Runs the jobs due now.
    async fn drain(&self) -> Vec<JobOutcome> {
        drain(&self.runtime).await
    }

    /// Brings `links`' syncs forward and runs them.
    async fn sync_now(&self, links: &[LinkId]) -> Vec<JobOutcome> {
        for link in links {
            assert!(
                self.runtime
                    .sync_link_now(&self.tenant, *link)
                    .await
                    .unwrap()
            );
        }
        self.drain().await
    }

    /// The ids of the channels the emulator holds now: Gmail watches (named by their
    /// mailbox), Calendar channels, Graph subscriptions.
    fn live_channels(&self) -> BTreeSet<String> {
        match &self.emulated {
            AnyEmulated::Google(emulated) => {
                let push = &emulated.running.state.push;
                let watches: Vec<String> = push.watches().keys().cloned().collect();
                let channels: Vec<String> = push.channels().keys().cloned().collect();
                watches.into_iter().chain(channels).collect()
            }
            AnyEmulated::Microsoft(emulated) => emulated
                .running
                .state
                .subscriptions
                .lock()
                .keys()
                .cloned()
                .collect(),
        }
    }
}

/// Whether the provider holds the channel a link recorded as `channel_id`: the id the
/// emulator keys it by, or that id followed by more (a Calendar channel is recorded
/// with the resource id `channels.stop` needs).
fn held(live: &BTreeSet<String>, channel_id: &str) -> bool {
    live.contains(channel_id)
        || channel_id
            .split_whitespace()
            .next()
            .is_some_and(|id| live.contains(id))
}

/// Runs due jobs until none is due now.
async fn drain(runtime: &Runtime) -> Vec<JobOutcome> {
    let worker = Worker::for_runtime(runtime.clone());
    let mut outcomes = Vec::new();
    for _ in 0..1_000 {
        match worker.run_once().await.expect("the worker runs") {
            Some(outcome) => outcomes.push(outcome),
            None => return outcomes,
        }
    }
    panic!("jobs kept coming");
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

async fn pushed(provider: Provider, store: Store, url: PublicUrl) -> Pushed {
    let emulated = provider.emulator(6, 6).await;
    let push = match url {
        PublicUrl::Receiver => Some(PushReceiver::start().await.url().to_owned()),
        PublicUrl::Refused => Some("http://push.example.invalid".to_owned()),
        PublicUrl::None => None,
    }
    .map(|url| PushSettings::new(&url).expect("a usable public URL"));
    let (endpoints, microsoft) = match &emulated {
        AnyEmulated::Google(google) => (
            GoogleEndpoints::from_base_url(&google.running.base_url),
            MicrosoftSettings::default(),
        ),
        AnyEmulated::Microsoft(microsoft) => (GoogleEndpoints::default(), microsoft.settings()),
    };
    let config = RuntimeConfig {
        endpoints,
        engine: EngineConfig {
            pacing: test_pacing(),
            reference_now_ms: Some(emulated.now_ms()),
            ..EngineConfig::default()
        },
        worker: WorkerConfig {
            worker_id: "push-worker".into(),
            idle_sleep: Duration::from_millis(10),
            poll_interval: POLL,
            push_poll_interval: PUSH_POLL,
            ..WorkerConfig::default()
        },
        push,
        ..RuntimeConfig::default()
    };
    let runtime = Runtime::with_microsoft(store, MasterKey::generate(), config, microsoft);
    let tenant = TenantId::new("acme");
    runtime
        .store()
        .create_tenant(&tenant, "Acme")
        .await
        .unwrap();
    match &emulated {
        AnyEmulated::Google(google) => {
            runtime
                .connect_google(&tenant, &google.key_file_json(), &google.admin(), ACTOR)
                .await
                .expect("the key is accepted");
        }
        AnyEmulated::Microsoft(microsoft) => {
            let app = &microsoft.running.app;
            runtime
                .connect_microsoft(
                    &tenant,
                    &app.tenant_id,
                    &app.client_id,
                    MicrosoftCredential::Secret(microsoft.secret()),
                    ACTOR,
                )
                .await
                .expect("the app registration is accepted");
        }
    }
    runtime.rebuild(&tenant, ACTOR).await.unwrap();
    let started_ms = now_ms();
    runtime
        .set_capture_enabled(&tenant, true, ACTOR)
        .await
        .unwrap();
    // The directory's own job aside, each link's first sync.
    let first: Vec<JobOutcome> = drain(&runtime)
        .await
        .into_iter()
        .filter(|outcome| {
            !matches!(
                outcome,
                JobOutcome::DirectorySynced { .. } | JobOutcome::DirectoryFailed { .. }
            )
        })
        .collect();
    let setup = Pushed {
        runtime,
        tenant,
        emulated,
        first,
        started_ms,
    };
    let links = setup.links().await;
    assert!(!links.is_empty());
    assert_eq!(setup.first.len(), links.len(), "{:?}", setup.first);
    for outcome in &setup.first {
        assert!(
            matches!(outcome, JobOutcome::Synced { .. }),
            "a failed channel never fails a sync: {outcome:?}"
        );
    }
    setup
}

/// `None` (reported) when the provider does not push yet.
async fn pushed_if_built(provider: Provider, store: Store, url: PublicUrl) -> Option<Pushed> {
    let setup = pushed(provider, store, url).await;
    if setup.push_streams(provider).await.is_empty() {
        eprintln!("SKIPPED: {provider:?} push is not built yet (push_streams() is empty)");
        return None;
    }
    Some(setup)
}

/// The next syncs the first jobs scheduled, as delays from when they started.
fn next_sync_delays(setup: &Pushed) -> Vec<i64> {
    setup
        .first
        .iter()
        .map(|outcome| match outcome {
            JobOutcome::Synced { next_run_ms, .. } => next_run_ms - setup.started_ms,
            other => panic!("not synced: {other:?}"),
        })
        .collect()
}

async fn a_synced_link_gets_its_channels_and_is_on_push(provider: Provider, store: Store) {
    let Some(setup) = pushed_if_built(provider, store, PublicUrl::Receiver).await else {
        return;
    };
    let streams = setup.push_streams(provider).await;
    let live = setup.live_channels();
    let now = now_ms();
    let mut before = Vec::new();
    for link in setup.links().await {
        let channels = setup.channels(link).await;
        let names: BTreeSet<&str> = channels.iter().map(|c| c.stream.as_str()).collect();
        // Mail always; the calendar when the provider pushes it and meetings are captured.
        assert!(names.contains("mail"), "link {}: {channels:?}", link.0);
        for channel in &channels {
            assert!(
                streams.iter().any(|s| s.as_str() == channel.stream),
                "{channel:?} is not a stream the provider pushes"
            );
            assert!(channel.expires_ms > now + HOUR_MS, "{channel:?}");
            assert!(channel.renewed_ms >= setup.started_ms, "{channel:?}");
            assert!(
                held(&live, &channel.channel_id),
                "{channel:?} is not held by the provider: {live:?}"
            );
        }
        let mode = setup.mode(link).await;
        assert_eq!(mode.mode, PushMode::Push, "{mode:?}");
        assert_eq!(mode.reason, None, "{mode:?}");
        before.push((link, channels));
    }
    // On push, the next sync is the slow safety poll, not the ordinary poll.
    for delay in next_sync_delays(&setup) {
        let push_poll = i64::try_from(PUSH_POLL.as_millis()).unwrap();
        assert!(
            delay >= push_poll - 60_000 && delay <= push_poll + 60_000,
            "next sync in {delay} ms"
        );
    }
    // Another sync with nothing due renews nothing: the channels are as they were.
    let links: Vec<LinkId> = before.iter().map(|(link, _)| *link).collect();
    setup.sync_now(&links).await;
    for (link, channels) in before {
        assert_eq!(setup.channels(link).await, channels);
    }
}

async fn a_channel_due_or_about_to_lapse_is_renewed(provider: Provider, store: Store) {
    let Some(setup) = pushed_if_built(provider, store, PublicUrl::Receiver).await else {
        return;
    };
    let links = setup.links().await;
    assert!(links.len() >= 3, "{links:?}");
    let mail = |channels: Vec<PushChannelRecord>| {
        channels
            .into_iter()
            .find(|c| c.stream == "mail")
            .expect("a mail channel")
    };
    // The provider asked for the first to be renewed (Graph's reauthorizationRequired).
    let marked = mail(setup.channels(links[0]).await);
    assert!(
        setup
            .store()
            .mark_push_channel_due(&setup.tenant, &marked.channel_id)
            .await
            .unwrap()
    );
    // The second lapses in a minute: it was made six days and 23 hours ago.
    let now = now_ms();
    let lapsing = PushChannelRecord {
        expires_ms: now + 60_000,
        renewed_ms: now + 60_000 - 7 * DAY_MS,
        ..mail(setup.channels(links[1]).await)
    };
    setup
        .store()
        .save_push_channel(&setup.tenant, &lapsing)
        .await
        .unwrap();
    let untouched = setup.channels(links[2]).await;

    let renewed_at = now_ms();
    let outcomes = setup.sync_now(&links).await;
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, JobOutcome::Synced { .. })),
        "{outcomes:?}"
    );
    let live = setup.live_channels();
    for (link, before) in [(links[0], &marked), (links[1], &lapsing)] {
        let after = mail(setup.channels(link).await);
        assert!(
            after.expires_ms > before.expires_ms,
            "{before:?} → {after:?}"
        );
        assert!(after.expires_ms > now_ms() + HOUR_MS, "{after:?}");
        assert!(after.renewed_ms >= renewed_at, "{after:?}");
        assert!(
            held(&live, &after.channel_id),
            "{after:?} not live: {live:?}"
        );
        assert_eq!(setup.mode(link).await.mode, PushMode::Push);
        // A channel renewed in place keeps the secret its notifications carry; a new
        // channel has a new one (Gmail's watches carry none).
        if after.channel_id == before.channel_id {
            assert_eq!(
                after.secret_hash, before.secret_hash,
                "{before:?} → {after:?}"
            );
        } else if before.secret_hash.is_some() {
            assert!(after.secret_hash.is_some(), "{after:?}");
        }
    }
    // A channel far from its expiry is left alone.
    assert_eq!(setup.channels(links[2]).await, untouched);
}

async fn unlink_and_disconnect_stop_the_channels(provider: Provider, store: Store) {
    let Some(setup) = pushed_if_built(provider, store, PublicUrl::Receiver).await else {
        return;
    };
    let links = setup.links().await;
    let (gone, kept) = (links[0], links[1]);
    let gone_ids: Vec<String> = setup
        .channels(gone)
        .await
        .into_iter()
        .map(|c| c.channel_id)
        .collect();
    let kept_ids: Vec<String> = setup
        .channels(kept)
        .await
        .into_iter()
        .map(|c| c.channel_id)
        .collect();
    assert!(!gone_ids.is_empty() && !kept_ids.is_empty());

    let changed = setup
        .runtime
        .unlink_links(&setup.tenant, &[gone], ACTOR)
        .await
        .unwrap();
    assert_eq!(changed, 1);
    assert!(
        setup.channels(gone).await.is_empty(),
        "the records are gone"
    );
    let mode = setup.mode(gone).await;
    assert_eq!(mode.mode, PushMode::Polling);
    assert_eq!(mode.reason.as_deref(), Some("unlinked"));
    let live = setup.live_channels();
    for id in &gone_ids {
        assert!(
            !held(&live, id),
            "{id} still held by the provider: {live:?}"
        );
    }
    for id in &kept_ids {
        assert!(
            held(&live, id),
            "{id} of another link was stopped: {live:?}"
        );
    }

    // Disconnecting the provider stops every channel it holds for the tenant.
    setup
        .runtime
        .disconnect(&setup.tenant, provider.kind(), ACTOR)
        .await
        .unwrap();
    for link in &links {
        assert!(setup.channels(*link).await.is_empty(), "link {}", link.0);
        let mode = setup.mode(*link).await;
        assert_eq!(mode.mode, PushMode::Polling, "{mode:?}");
    }
    let live = setup.live_channels();
    for id in gone_ids.iter().chain(&kept_ids) {
        assert!(
            !held(&live, id),
            "{id} still held after disconnect: {live:?}"
        );
    }
    for link in setup.store().links(&setup.tenant).await.unwrap() {
        assert_eq!(link.status, LinkStatus::Unlinked, "{link:?}");
    }
}

async fn a_suspended_users_channels_are_stopped_by_rebuild(provider: Provider, store: Store) {
    let Some(setup) = pushed_if_built(provider, store, PublicUrl::Receiver).await else {
        return;
    };
    // Not the admin the directory is read as.
    let admin = match &setup.emulated {
        AnyEmulated::Google(google) => google.admin(),
        AnyEmulated::Microsoft(microsoft) => microsoft.running.info.admin_email.clone(),
    };
    let views: Vec<_> = setup
        .store()
        .links(&setup.tenant)
        .await
        .unwrap()
        .into_iter()
        .filter(|view| !view.mailbox.eq_ignore_ascii_case(&admin))
        .collect();
    let (leaving, staying) = (&views[0], &views[1]);
    assert!(!setup.channels(leaving.id).await.is_empty());
    match &setup.emulated {
        AnyEmulated::Google(google) => {
            google
                .control
                .post(
                    &format!("/users/{}/suspend", leaving.mailbox),
                    serde_json::json!({}),
                )
                .await;
        }
        AnyEmulated::Microsoft(microsoft) => {
            microsoft.set_account_enabled(&leaving.mailbox, false);
        }
    }
    // User Delegation Sync unlinks the suspended user's link, and stops its channels.
    setup.runtime.rebuild(&setup.tenant, ACTOR).await.unwrap();
    let status = |id: LinkId| {
        let store = setup.store().clone();
        let tenant = setup.tenant.clone();
        async move {
            store
                .link(&tenant, id)
                .await
                .unwrap()
                .expect("the link")
                .status
        }
    };
    assert_eq!(status(leaving.id).await, LinkStatus::Unlinked);
    assert!(setup.channels(leaving.id).await.is_empty());
    assert_eq!(
        setup.mode(leaving.id).await.reason.as_deref(),
        Some("unlinked")
    );
    // Whether the provider still lets a suspended user's channel be stopped is its own
    // affair (Google refuses the user's token; the channel then lapses): forgotten here
    // either way, so nothing renews it.
    assert_ne!(status(staying.id).await, LinkStatus::Unlinked);
    assert!(!setup.channels(staying.id).await.is_empty());
    assert_eq!(setup.mode(staying.id).await.mode, PushMode::Push);
}

async fn a_refused_channel_leaves_the_link_polling_with_the_reason(
    provider: Provider,
    store: Store,
) {
    let Some(setup) = pushed_if_built(provider, store, PublicUrl::Refused).await else {
        return;
    };
    for link in setup.store().links(&setup.tenant).await.unwrap() {
        // The sync succeeded; only push is off for the link.
        assert_eq!(link.status, LinkStatus::Idle, "{link:?}");
        assert!(setup.channels(link.id).await.is_empty());
        let mode = setup.mode(link.id).await;
        assert_eq!(mode.mode, PushMode::Polling, "{mode:?}");
        let reason = mode.reason.unwrap_or_default();
        assert!(
            reason.starts_with("mail: "),
            "the stream and the provider's words: {reason}"
        );
        assert!(reason.len() > "mail: ".len(), "{reason}");
    }
    assert!(setup.live_channels().is_empty());
    // A link on polling keeps the ordinary poll.
    let poll = i64::try_from(POLL.as_millis()).unwrap();
    for delay in next_sync_delays(&setup) {
        assert!(delay <= poll + 60_000, "next sync in {delay} ms");
    }
}

async fn without_a_public_url_no_channel_is_opened(provider: Provider, store: Store) {
    let setup = pushed(provider, store, PublicUrl::None).await;
    for link in setup.links().await {
        assert!(setup.channels(link).await.is_empty());
    }
    assert!(setup.modes().await.is_empty(), "no push rows are written");
    assert!(setup.live_channels().is_empty());
    let poll = i64::try_from(POLL.as_millis()).unwrap();
    for delay in next_sync_delays(&setup) {
        assert!(delay <= poll + 60_000, "next sync in {delay} ms");
    }
    // Unlinking without push writes nothing either.
    let links = setup.links().await;
    setup
        .runtime
        .unlink_links(&setup.tenant, &links[..1], ACTOR)
        .await
        .unwrap();
    assert!(setup.modes().await.is_empty());
}
