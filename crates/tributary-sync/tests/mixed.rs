//! A tenant mid-migration (issue #14): one generated organization whose mailboxes are
//! split between the Google and the Microsoft emulator, both connected through the
//! runtime. *Rebuild* links each member at the provider hosting its mailbox (a mailbox
//! at both: the provider connected first, and the link says why), the workers run each
//! link with its own provider's engine, and the capture equals the whole organization's
//! truth: a message crossing between a Gmail and an Exchange mailbox is one activity
//! seen by both. Disconnecting one provider unlinks only its links; the other's keep
//! syncing. Calendars follow the mailboxes: an invitation seen in a Google member's and
//! a Microsoft member's calendar (one iCalUID, one original start) is one meeting with a
//! sighting per calendar.

mod common;

use common::{
    Control, Emulated, MeetingsTruth, MicrosoftEmulated, TestStore, assert_meetings_match,
    assert_store_matches,
};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use tributary_emulator::microsoft::{MicrosoftConfig, TenantSource};
use tributary_emulator::org::meetings_truth::MeetingPolicy;
use tributary_emulator::org::{Generated, Host, MailboxSplit, OrgConfig, generate};
use tributary_emulator::server::{EmulatorConfig, OrgSource, start};
use tributary_google::GoogleEndpoints;
use tributary_store::{
    ConnectionKind, LinkStatus, LinkView, MasterKey, MeetingCursor, MeetingFilter, MeetingView,
    Store, TenantId,
};
use tributary_sync::{
    EngineConfig, MicrosoftCredential, Runtime, RuntimeConfig, Worker, WorkerConfig,
};

/// Graph gives receipt times in whole seconds (see `common::assert_store_matches`).
const GRAPH_PRECISION_MS: i64 = 1000;

/// Both emulators serving their part of one organization.
struct Mixed {
    generated: Generated,
    split: MailboxSplit,
    google: Emulated,
    microsoft: MicrosoftEmulated,
}

impl Mixed {
    /// Every other member moved to Microsoft 365, and `both` (a member still at
    /// Google) copied there too without leaving Google yet.
    async fn start() -> Mixed {
        let generated = generate(&OrgConfig {
            users: 8,
            messages_per_user: 40,
            ..OrgConfig::default()
        });
        let mut split = MailboxSplit::alternate(&generated.org);
        let at_both = members(&generated)
            .into_iter()
            .find(|m| !split.microsoft.contains(m))
            .expect("a member at Google");
        split.both.insert(at_both);
        split.validate(&generated.org).unwrap();
        let running = start(EmulatorConfig {
            organization: OrgSource::Generated(Box::new(
                split.generated_part(&generated, Host::Google),
            )),
            ..EmulatorConfig::default()
        })
        .await
        .expect("the Google emulator starts");
        let control = Control::new(&running.info.control_url);
        let microsoft = tributary_emulator::microsoft::start(MicrosoftConfig {
            organization: TenantSource::Generated(Box::new(
                split.generated_part(&generated, Host::Microsoft),
            )),
            ..MicrosoftConfig::default()
        })
        .await
        .expect("the Microsoft emulator starts");
        Mixed {
            generated,
            split,
            google: Emulated { running, control },
            microsoft: MicrosoftEmulated { running: microsoft },
        }
    }

    /// The provider whose link a member's mailbox must have: Google for a mailbox at
    /// both, as Google is connected first.
    fn expected_provider(&self, mailbox: &str) -> ConnectionKind {
        if self.split.hosts(Host::Google, mailbox) {
            ConnectionKind::Google
        } else {
            ConnectionKind::Microsoft
        }
    }

    /// The whole organization's meetings at its reference instant. Each emulator
    /// generates all of them (it serves only its own members' calendars), so both
    /// compute the same truth.
    fn meetings_truth(&self) -> MeetingsTruth {
        let policy = MeetingPolicy::default_at(self.generated.org.now_ms);
        let google = MeetingsTruth::compute(&self.google.running.state.calendars.read(), policy);
        let microsoft =
            MeetingsTruth::compute(&self.microsoft.running.state.calendars.read(), policy);
        assert_eq!(google, microsoft, "both emulators hold the same meetings");
        google
    }

    fn runtime(&self, store: &Store) -> Runtime {
        let config = RuntimeConfig {
            endpoints: GoogleEndpoints::from_base_url(&self.google.running.base_url),
            engine: EngineConfig {
                pacing: common::test_pacing(),
                reference_now_ms: Some(self.generated.org.now_ms),
                ..EngineConfig::default()
            },
            worker: WorkerConfig {
                worker_id: "mixed-worker".into(),
                idle_sleep: Duration::from_millis(10),
                ..WorkerConfig::default()
            },
            ..RuntimeConfig::default()
        };
        Runtime::with_microsoft(
            store.clone(),
            MasterKey::generate(),
            config,
            self.microsoft.settings(),
        )
    }

    /// A tenant connected to Google, then to Microsoft 365, its directories matched
    /// and capture on.
    async fn connect(&self, store: &Store) -> (Runtime, TenantId) {
        let runtime = self.runtime(store);
        let tenant = TenantId::new("acme");
        store.create_tenant(&tenant, "Acme").await.unwrap();
        runtime
            .connect_google(
                &tenant,
                &self.google.key_file_json(),
                &self.google.admin(),
                "admin@test",
            )
            .await
            .expect("the Google key is accepted");
        let app = &self.microsoft.running.app;
        runtime
            .connect_microsoft(
                &tenant,
                &app.tenant_id,
                &app.client_id,
                MicrosoftCredential::Secret(self.microsoft.secret()),
                "admin@test",
            )
            .await
            .expect("the app registration is accepted");
        runtime.rebuild(&tenant, "admin@test").await.unwrap();
        runtime
            .set_capture_enabled(&tenant, true, "admin@test")
            .await
            .unwrap();
        (runtime, tenant)
    }
}

/// The organization's members (the truth's mailboxes), lowercase primaries.
fn members(generated: &Generated) -> BTreeSet<String> {
    generated.truth.mailbox_counts.keys().cloned().collect()
}

/// Runs due jobs until none is due now.
async fn drain(runtime: &Runtime) {
    let worker = Worker::for_runtime(runtime.clone());
    for _ in 0..10_000 {
        if worker.run_once().await.expect("the worker runs").is_none() {
            return;
        }
    }
    panic!("jobs kept coming");
}

async fn links(store: &Store, tenant: &TenantId) -> BTreeMap<String, LinkView> {
    store
        .links(tenant)
        .await
        .unwrap()
        .into_iter()
        .map(|l| (l.mailbox.clone(), l))
        .collect()
}

async fn a_mixed_tenant_captures_the_combined_truth_once(store: Store) {
    let mixed = Mixed::start().await;
    let (runtime, tenant) = mixed.connect(&store).await;

    // One link per member, at the provider hosting its mailbox.
    let linked = links(&store, &tenant).await;
    assert_eq!(
        linked.keys().cloned().collect::<BTreeSet<_>>(),
        members(&mixed.generated),
        "every member is linked once"
    );
    for (mailbox, link) in &linked {
        assert_eq!(link.provider, mixed.expected_provider(mailbox), "{link:?}");
        let at_both = mixed.split.both.contains(mailbox);
        assert_eq!(link.provider_reason.is_some(), at_both, "{link:?}");
        if at_both {
            let reason = link.provider_reason.as_deref().unwrap();
            assert!(
                reason.contains("Microsoft 365") && reason.contains("connected first"),
                "{reason}"
            );
        }
    }
    let providers: BTreeSet<&str> = linked.values().map(|l| l.provider.as_str()).collect();
    assert_eq!(providers.len(), 2, "both providers host members");
    let report = runtime.delegation_report(&tenant).await.unwrap().unwrap();
    assert_eq!(report.directories.len(), 2, "{report:?}");
    assert_eq!(report.directories[0].provider, "google");

    // The workers run each link with its own provider's engine.
    drain(&runtime).await;
    for link in links(&store, &tenant).await.values() {
        assert_eq!(link.status, LinkStatus::Idle, "{link:?}");
    }
    assert_store_matches(&store, &tenant, &mixed.generated.truth, GRAPH_PRECISION_MS).await;
    let activities = store.activities(&tenant).await.unwrap();
    assert_eq!(activities.len(), mixed.generated.truth.activities.len());

    // Messages crossing between the providers are one activity seen on both sides.
    let provider_of: BTreeMap<String, ConnectionKind> = linked
        .iter()
        .map(|(mailbox, link)| (mailbox.clone(), link.provider))
        .collect();
    let crossing = activities
        .iter()
        .filter(|activity| {
            let sides: BTreeSet<&str> = activity
                .sightings
                .iter()
                .filter_map(|(mailbox, _, _)| provider_of.get(mailbox).map(|p| p.as_str()))
                .collect();
            sides.len() == 2
        })
        .count();
    assert!(crossing > 0, "no captured message crosses the providers");

    // Another round of incremental syncs on both providers adds nothing.
    for engine in runtime.engines(&tenant).await.unwrap() {
        engine.sync_all().await.unwrap();
    }
    assert_eq!(
        store.count_activities(&tenant).await.unwrap(),
        i64::try_from(activities.len()).unwrap()
    );
}

async fn disconnecting_one_provider_leaves_the_others_links_syncing(store: Store) {
    let mixed = Mixed::start().await;
    let (runtime, tenant) = mixed.connect(&store).await;
    drain(&runtime).await;
    let captured = store.count_activities(&tenant).await.unwrap();
    assert_eq!(runtime.engines(&tenant).await.unwrap().len(), 2);

    let unlinked = runtime
        .disconnect(&tenant, ConnectionKind::Microsoft, "admin@test")
        .await
        .unwrap();
    let after = links(&store, &tenant).await;
    let at_microsoft = after
        .values()
        .filter(|l| l.provider == ConnectionKind::Microsoft)
        .count();
    assert!(at_microsoft > 0);
    assert_eq!(unlinked, at_microsoft);
    for link in after.values() {
        let expected = match link.provider {
            ConnectionKind::Microsoft => LinkStatus::Unlinked,
            _ => LinkStatus::Idle,
        };
        assert_eq!(link.status, expected, "{link:?}");
    }
    assert!(
        store
            .connection(&tenant, ConnectionKind::Microsoft)
            .await
            .unwrap()
            .is_none(),
        "the Microsoft credentials are gone"
    );
    let engines = runtime.engines(&tenant).await.unwrap();
    assert_eq!(engines.len(), 1);
    assert_eq!(engines[0].connector().kind(), ConnectionKind::Google);

    // New mail at a Google mailbox is still captured; nothing runs at Microsoft.
    let google_mailbox = after
        .values()
        .find(|l| l.provider == ConnectionKind::Google)
        .map(|l| l.mailbox.clone())
        .unwrap();
    let date = chrono::DateTime::from_timestamp_millis(mixed.generated.org.now_ms - 86_400_000)
        .unwrap()
        .to_rfc3339();
    mixed
        .google
        .control
        .post(
            "/messages/deliver",
            json!({
                "from": "Paula Partner <paula@northwind-trading.example>",
                "to": [google_mailbox],
                "subject": "After the move",
                "body": "Still there?",
                "message_id": "<after-disconnect@northwind-trading.example>",
                "date": date,
            }),
        )
        .await;
    runtime.schedule_runnable_links(&tenant).await.unwrap();
    drain(&runtime).await;
    assert_eq!(store.count_activities(&tenant).await.unwrap(), captured + 1);
    for link in links(&store, &tenant).await.values() {
        let expected = match link.provider {
            ConnectionKind::Microsoft => LinkStatus::Unlinked,
            _ => LinkStatus::Idle,
        };
        assert_eq!(link.status, expected, "{link:?}");
    }
}

/// The member whose mailbox was at both providers leaves Google (its Gmail turned
/// off): *Rebuild* moves its link to Microsoft 365, which syncs it in full, and the
/// mail both sides saw stays one activity each.
async fn a_mailbox_leaving_google_moves_its_link_without_duplicates(store: Store) {
    let mixed = Mixed::start().await;
    let (runtime, tenant) = mixed.connect(&store).await;
    drain(&runtime).await;
    let captured = store.count_activities(&tenant).await.unwrap();
    let moving = mixed.split.both.iter().next().unwrap().clone();
    let before = links(&store, &tenant).await[&moving].clone();
    assert_eq!(before.provider, ConnectionKind::Google);
    let seen_before = sightings_of(&store, &tenant, &moving).await;
    assert!(seen_before > 0);

    {
        let mut org = mixed.google.running.state.org_mut();
        let user = org
            .users
            .iter_mut()
            .find(|u| u.primary_email.eq_ignore_ascii_case(&moving))
            .unwrap();
        user.is_mailbox_setup = false;
    }
    let report = runtime.rebuild(&tenant, "admin@test").await.unwrap();
    let matched = report
        .matched
        .iter()
        .find(|m| m.mailbox == moving)
        .expect("the member stays matched");
    assert_eq!(matched.provider, "microsoft");
    assert!(report.unlinked.is_empty(), "{report:?}");
    let moved = links(&store, &tenant).await[&moving].clone();
    assert_eq!(moved.id, before.id, "the same link moved");
    assert_eq!(moved.provider, ConnectionKind::Microsoft);
    assert_eq!(moved.provider_reason, None);
    let events = store.audit_events(&tenant, 1000).await.unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.action == "link.provider" && e.subject.as_deref() == Some(moving.as_str())),
        "the move is audited"
    );

    drain(&runtime).await;
    let after = links(&store, &tenant).await[&moving].clone();
    assert_eq!(after.status, LinkStatus::Idle, "{after:?}");
    assert_eq!(store.count_activities(&tenant).await.unwrap(), captured);
    // Each message is now sighted once more, under its Graph id.
    assert_eq!(
        sightings_of(&store, &tenant, &moving).await,
        2 * seen_before
    );
    assert_store_matches(&store, &tenant, &mixed.generated.truth, GRAPH_PRECISION_MS).await;
}

async fn a_mixed_tenant_shares_meetings_across_providers_without_duplicates(store: Store) {
    let mixed = Mixed::start().await;
    let (runtime, tenant) = mixed.connect(&store).await;
    drain(&runtime).await;
    let linked = links(&store, &tenant).await;
    for link in linked.values() {
        let calendar = store.calendar_state(&tenant, link.id).await.unwrap();
        assert_eq!(calendar.status, LinkStatus::Idle, "{link:?}: {calendar:?}");
    }
    let truth = mixed.meetings_truth();
    assert!(!truth.meetings.is_empty() && !truth.upcoming.is_empty());
    assert_meetings_match(&store, &tenant, &truth).await;

    // Each meeting once, and some seen by calendars at both providers.
    let captured = all_meetings(&store, &tenant).await;
    let keys: BTreeSet<&str> = captured.iter().map(|m| m.key.as_str()).collect();
    assert_eq!(keys.len(), captured.len(), "a meeting captured twice");
    assert_eq!(captured.len(), truth.meetings.len());
    let crossing = captured
        .iter()
        .filter(|meeting| {
            let sides: BTreeSet<&str> = meeting
                .calendars
                .iter()
                .map(|calendar| linked[calendar].provider.as_str())
                .collect();
            sides.len() == 2
        })
        .count();
    assert!(crossing > 0, "no meeting is seen from both providers");

    // Another round on both providers changes nothing.
    for engine in runtime.engines(&tenant).await.unwrap() {
        engine.sync_all().await.unwrap();
    }
    assert_meetings_match(&store, &tenant, &truth).await;
}

/// Every captured meeting of the tenant, an administrator's view, page by page.
async fn all_meetings(store: &Store, tenant: &TenantId) -> Vec<MeetingView> {
    let mut meetings = Vec::new();
    let mut after: Option<MeetingCursor> = None;
    loop {
        let page = store
            .meetings_page(tenant, &MeetingFilter::default(), after.as_ref(), 500)
            .await
            .unwrap();
        meetings.extend(page.meetings);
        match page.next {
            Some(next) => after = Some(next),
            None => return meetings,
        }
    }
}

/// How many sightings `mailbox`'s link has.
async fn sightings_of(store: &Store, tenant: &TenantId, mailbox: &str) -> usize {
    store
        .activities(tenant)
        .await
        .unwrap()
        .iter()
        .flat_map(|a| &a.sightings)
        .filter(|(m, _, _)| m == mailbox)
        .count()
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                let test_store = super::TestStore::sqlite().await;
                super::$name(test_store.store.clone()).await;
                test_store.close().await;
            }

            #[tokio::test]
            async fn postgres() {
                let Some(test_store) = super::TestStore::postgres().await else {
                    return;
                };
                super::$name(test_store.store.clone()).await;
                test_store.close().await;
            }
        }
    )*};
}

on_both_backends!(
    a_mixed_tenant_captures_the_combined_truth_once,
    disconnecting_one_provider_leaves_the_others_links_syncing,
    a_mailbox_leaving_google_moves_its_link_without_duplicates,
    a_mixed_tenant_shares_meetings_across_providers_without_duplicates,
);
