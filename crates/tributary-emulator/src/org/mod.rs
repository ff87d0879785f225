//! The synthetic organization generator: deterministic from a seed.

use crate::model::Organization;
use crate::truth::GroundTruth;

/// What to generate.
#[derive(Debug, Clone)]
pub struct OrgConfig {
    pub seed: u64,
    /// Internal users on the primary domain (default 25).
    pub users: usize,
    /// Messages per user mailbox (default 400).
    pub messages_per_user: usize,
    /// The reference instant (epoch ms) the two years of mail lead up to.
    pub now_ms: i64,
}

impl Default for OrgConfig {
    fn default() -> Self {
        OrgConfig {
            seed: 1,
            users: 25,
            messages_per_user: 400,
            now_ms: 0,
        }
    }
}

/// A generated organization and what a correct capture of it must produce.
#[derive(Debug, Clone)]
pub struct Generated {
    pub org: Organization,
    pub truth: GroundTruth,
}

pub fn generate(_config: &OrgConfig) -> Generated {
    todo!("organization generator")
}
