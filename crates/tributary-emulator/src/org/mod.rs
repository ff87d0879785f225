//! The synthetic organization generator: deterministic from a seed and a reference
//! instant. See `docs/emulator-organization.md`.
//!
//! Generation runs in three steps: the population ([`people`]), the structured plan of
//! every message and the mailboxes holding it ([`plan`], [`mail`]), then the rendering of
//! each copy to RFC 5322 bytes ([`mailboxes`], [`render`]). The ground truth is computed
//! from the structured plan, never from the rendered bytes.

pub mod hosting;
pub mod live;
pub mod mail;
pub mod mailboxes;
pub mod meetings;
pub mod meetings_control;
pub mod meetings_truth;
pub mod names;
pub mod people;
pub mod plan;
pub mod render;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

pub use hosting::{Host, MailboxSplit, SplitError};
pub use live::{LiveDelivery, deliver_live};
pub use mailboxes::{gmail_message_id, stored_message};
pub use render::{LiveMessage, NamedAddress, render_message};

use crate::model::Organization;
use crate::truth::GroundTruth;
use mail::MailPlan;
use people::Population;

/// 2026-01-01T00:00:00Z: the reference instant when none is given. Callers that serve
/// the organization (the CLI) should pass the current time.
pub const DEFAULT_NOW_MS: i64 = 1_767_225_600_000;
/// Smaller `users` values are raised to this: one admin, one more member, one suspended.
pub const MIN_USERS: usize = 3;

/// What to generate.
#[derive(Debug, Clone)]
pub struct OrgConfig {
    pub seed: u64,
    /// Directory users on the primary domain (default 25), the suspended, archived and
    /// mailbox-less users included; at least [`MIN_USERS`].
    pub users: usize,
    /// About this many messages per user mailbox (default 400); a fixed set of coverage
    /// conversations may exceed it for small values.
    pub messages_per_user: usize,
    /// The reference instant (epoch ms) the two years of mail lead up to. Generation never
    /// reads the clock.
    pub now_ms: i64,
}

impl Default for OrgConfig {
    fn default() -> Self {
        OrgConfig {
            seed: 1,
            users: 25,
            messages_per_user: 400,
            now_ms: DEFAULT_NOW_MS,
        }
    }
}

/// A generated organization and what a correct capture of it must produce.
#[derive(Debug, Clone)]
pub struct Generated {
    pub org: Organization,
    pub truth: GroundTruth,
}

/// The structured model behind an organization: who exists and every planned message.
#[derive(Debug, Clone)]
pub struct Blueprint {
    pub population: Population,
    pub plan: MailPlan,
}

/// Plans the organization without rendering it.
pub fn blueprint(config: &OrgConfig) -> Blueprint {
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let users = config.users.max(MIN_USERS);
    let population = Population::build(&mut rng, users, config.now_ms);
    let plan = plan::plan(
        &population,
        &mut rng,
        config.now_ms,
        config.messages_per_user,
    );
    Blueprint { population, plan }
}

/// Renders a blueprint into mailboxes and computes its ground truth.
pub fn realize(config: &OrgConfig, blueprint: &Blueprint) -> Generated {
    let Blueprint { population, plan } = blueprint;
    // A separate stream, so that rendering choices never shift the plan's.
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    rng.set_stream(1);
    let mailboxes = mailboxes::build_mailboxes(population, plan, &mut rng);
    let truth = GroundTruth::compute(population, plan, config.now_ms);
    let org = Organization {
        customer_id: population.customer_id.clone(),
        domains: population.domains.clone(),
        users: population.users.clone(),
        mailboxes,
        now_ms: config.now_ms,
    };
    Generated { org, truth }
}

pub fn generate(config: &OrgConfig) -> Generated {
    realize(config, &blueprint(config))
}
