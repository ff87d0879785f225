//! Under a tight, time-scaled quota the engine paces itself and still captures
//! everything; refusals it meets anyway are retried when Google says.

mod common;

use common::{TestStore, assert_store_matches_truth, connect_tenant, emulator, test_pacing};
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tributary_emulator::server::EmulatorConfig;
use tributary_emulator::server::quota::{GmailMethod, QuotaConfig};
use tributary_sync::{LinkOutcome, Pacer, PacingConfig};

/// 100 units per quota minute, a quota minute lasting one real second.
const UNITS_PER_MINUTE: u32 = 100;
const TIME_SCALE: f64 = 60.0;

fn tight_quota() -> EmulatorConfig {
    EmulatorConfig {
        quota: QuotaConfig {
            per_user_units_per_minute: UNITS_PER_MINUTE,
            time_scale: TIME_SCALE,
            ..QuotaConfig::default()
        },
        ..EmulatorConfig::default()
    }
}

/// Syncs a 10-user organization under the tight quota with `pacing`, a share
/// `backend_errors` of the requests failing with a 5xx; answers the emulator's
/// rate-limit answers by kind and the number of Gmail requests.
async fn sync_under_tight_quota(
    pacing: PacingConfig,
    backend_errors: f64,
    what: &str,
) -> (Value, u64) {
    sync_under(tight_quota(), (10, 100), pacing, backend_errors, what).await
}

/// [`sync_under_tight_quota`] with the emulator's `config` and an organization of
/// `(users, messages per user)`.
async fn sync_under(
    config: EmulatorConfig,
    (users, messages): (usize, usize),
    pacing: PacingConfig,
    backend_errors: f64,
    what: &str,
) -> (Value, u64) {
    let emulated = emulator(users, messages, config).await;
    if backend_errors > 0.0 {
        emulated
            .control
            .patch(
                "/faults",
                serde_json::json!({"backend_error_probability": backend_errors, "seed": 5}),
            )
            .await;
    }
    let store = TestStore::sqlite().await;
    let tenant = connect_tenant(&emulated, &store.store, pacing).await;
    let started = Instant::now();
    for outcome in tenant.engine.sync_all().await.unwrap() {
        assert!(matches!(outcome, LinkOutcome::Synced { .. }), "{outcome:?}");
    }
    let elapsed = started.elapsed();
    assert_store_matches_truth(&store.store, &tenant.id, &emulated).await;
    let counters = emulated.control.get("/counters").await;
    eprintln!(
        "{what}: {:.2} s, {} units, rate-limit answers {}, pacing {:?}",
        elapsed.as_secs_f64(),
        counters["total"]["units"],
        counters["rate_limited_by_kind"],
        tenant.engine.pacing_stats()
    );
    store.close().await;
    let requests = counters["total"]["requests"].as_u64().unwrap();
    let injected = counters["faults_injected"]["backend_errors"]
        .as_u64()
        .unwrap();
    assert_eq!(
        injected > 0,
        backend_errors > 0.0,
        "{injected} backend errors"
    );
    (counters["rate_limited_by_kind"].clone(), requests)
}

#[tokio::test]
async fn paced_at_the_budget_the_engine_is_not_refused() {
    let pacing = PacingConfig {
        user_units_per_minute: UNITS_PER_MINUTE,
        minute: Duration::from_secs_f64(60.0 / TIME_SCALE),
        ..test_pacing()
    };
    let (refused, requests) = sync_under_tight_quota(pacing, 0.0, "paced").await;
    // Pacing matches the budget, including the refill a call loses in transit while
    // Google's bucket is full; only a call slower than the transit allowance (a
    // quarter of a second, on a loaded machine) could still be refused.
    assert!(requests > 300, "{requests} requests");
    assert!(refused["user_rate"].as_u64().unwrap() <= 1, "{refused}");
}

#[tokio::test]
async fn unpaced_refusals_are_retried_after_the_time_google_gives() {
    // The engine believes in Google's default budget, 150 times the real one.
    let (refused, _) = sync_under_tight_quota(test_pacing(), 0.0, "unpaced").await;
    assert!(refused["user_rate"].as_u64().unwrap() > 0, "{refused}");
}

#[tokio::test]
async fn a_tenth_of_requests_failing_under_a_tight_quota_still_gives_the_truth() {
    let pacing = PacingConfig {
        user_units_per_minute: UNITS_PER_MINUTE,
        minute: Duration::from_secs_f64(60.0 / TIME_SCALE),
        ..test_pacing()
    };
    // The store equals the ground truth (checked inside). A failed call was charged by
    // Google and is paced again before its retry, so failures cost time, not refusals.
    let (refused, requests) = sync_under_tight_quota(pacing, 0.1, "paced, 10% 5xx").await;
    assert!(requests > 300, "{requests} requests");
    assert!(refused["user_rate"].as_u64().unwrap() <= 1, "{refused}");
}

/// The real per-user budget is a quarter of what the engine assumes (an admin lowered
/// the quota, and nobody told the engine): 1,000 units per quota minute of a second,
/// enough for two batches of 100 gets.
const REAL_UNITS_PER_MINUTE: u32 = 1_000;

#[tokio::test]
async fn pacing_learns_a_real_budget_a_quarter_of_the_assumed_one() {
    let quota = EmulatorConfig {
        quota: QuotaConfig {
            per_user_units_per_minute: REAL_UNITS_PER_MINUTE,
            time_scale: TIME_SCALE,
            ..QuotaConfig::default()
        },
        ..EmulatorConfig::default()
    };
    let pacing = PacingConfig {
        user_units_per_minute: 4 * REAL_UNITS_PER_MINUTE,
        minute: Duration::from_secs_f64(60.0 / TIME_SCALE),
        ..test_pacing()
    };
    // The store equals the ground truth (checked inside).
    let (refused, requests) = sync_under(quota, (6, 3_000), pacing, 0.0, "assumed 4x").await;
    let refusals: u64 = ["user_rate", "project_rate", "concurrency"]
        .iter()
        .map(|kind| refused[kind].as_u64().unwrap())
        .sum();
    assert!(requests > 2_000, "{requests} requests");
    // Unlearned, the engine met several refusals per accepted call.
    assert!(
        refusals * 20 < requests,
        "{refusals} refusals in {requests} requests: {refused}"
    );
}

/// Another app reads one mailbox, spending its whole budget before the engine starts
/// and half of it meanwhile, while the engine syncs the organization paced at the full
/// budget: that mailbox is refused and paced lower, and the others are neither refused
/// nor slowed. Google's per-user budget is per mailbox, so what one mailbox's refusals
/// teach stays with it.
#[tokio::test]
async fn one_mailboxs_refusals_do_not_slow_the_others() {
    // A budget of ten gets a batch: 1,000 units per quota minute of a second.
    let quota = EmulatorConfig {
        quota: QuotaConfig {
            per_user_units_per_minute: REAL_UNITS_PER_MINUTE,
            time_scale: TIME_SCALE,
            ..QuotaConfig::default()
        },
        ..EmulatorConfig::default()
    };
    let emulated = emulator(8, 200, quota).await;
    let store = TestStore::sqlite().await;
    let pacing = PacingConfig {
        user_units_per_minute: REAL_UNITS_PER_MINUTE,
        minute: Duration::from_secs_f64(60.0 / TIME_SCALE),
        ..test_pacing()
    };
    let tenant = connect_tenant(&emulated, &store.store, pacing.clone()).await;
    let pacer = Arc::new(Pacer::new(pacing));
    let engine = tenant.engine.clone().sharing_pacer(Arc::clone(&pacer));
    let mailboxes: Vec<String> = store
        .store
        .links(&tenant.id)
        .await
        .unwrap()
        .into_iter()
        .map(|link| link.mailbox.to_ascii_lowercase())
        .collect();
    assert!(mailboxes.len() >= 3, "{mailboxes:?}");
    let shared = mailboxes[0].clone();
    let state = Arc::clone(&emulated.running.state);
    while state
        .quotas
        .admit(&shared, GmailMethod::MessagesGet)
        .is_ok()
    {}
    let other_app = {
        let shared = shared.clone();
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            // Half the budget: one metadata get (5 units) every 1/100 of a minute.
            let every = Duration::from_secs_f64(60.0 / TIME_SCALE / 100.0);
            loop {
                // Refused when the engine got there first: the other app just waits.
                drop(state.quotas.admit(&shared, GmailMethod::MessagesGet));
                tokio::time::sleep(every).await;
            }
        })
    };
    let outcomes = engine.sync_all().await.unwrap();
    other_app.abort();
    for outcome in outcomes {
        assert!(matches!(outcome, LinkOutcome::Synced { .. }), "{outcome:?}");
    }
    assert_store_matches_truth(&store.store, &tenant.id, &emulated).await;
    let counters = state.counters.snapshot();
    let refused = |mailbox: &str| {
        counters
            .users
            .get(mailbox)
            .map_or(0, |user| user.total.rate_limited)
    };
    eprintln!(
        "shared mailbox: {} refusals, paced at {} units/minute; pacing {:?}",
        refused(&shared),
        pacer.user_units_per_minute(&shared),
        pacer.stats()
    );
    assert!(refused(&shared) > 0, "the other app never got in the way");
    assert!(pacer.user_units_per_minute(&shared) < REAL_UNITS_PER_MINUTE);
    for mailbox in &mailboxes[1..] {
        assert_eq!(refused(mailbox), 0, "{mailbox} was refused");
        assert_eq!(
            pacer.user_units_per_minute(mailbox),
            REAL_UNITS_PER_MINUTE,
            "{mailbox} is paced lower"
        );
    }
    store.close().await;
}
