//! The ground truth: what a correct capture of a generated organization must produce
//! under the default policy of `docs/capture-contract.md`.

use serde::Serialize;

#[derive(Debug, Clone, Default, Serialize)]
pub struct GroundTruth {}
