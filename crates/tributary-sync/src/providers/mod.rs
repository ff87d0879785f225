//! The providers behind the [`MailSource`](crate::source::MailSource) contract, one
//! folder each with the same file names where they apply (`mod.rs` the source,
//! `full.rs` the backfill, `history.rs`/`delta.rs` the incremental stream, `labels.rs`/
//! `folders.rs` the containers). Only [`Connector`](crate::connector::Connector) picks
//! one.

pub mod gmail;
pub mod graph;
