//! Committing one page of captured messages: activities, participants, sightings,
//! contacts, companies, relationships and the cursor advance, in one transaction.
//!
//! A page costs a bounded number of statements whatever its size: every table is
//! written with multi-row `VALUES` lists (split into batches of power-of-two sizes, so
//! each statement shape is prepared once per connection and reused), instead of a round
//! trip per row, and read with one lookup per table ([`lookups`]: `IN` lists on SQLite,
//! one statement with the keys as a JSON array on PostgreSQL, which also takes all of a
//! step's advisory locks in one statement).

use crate::error::StoreError;
use crate::relationship::{self, Change, StoredParticipant};
use crate::store::{Backend, LinkId, Store, TenantId, now_ms};
use crate::tx::{ensure_link, kind_name, lock_key};
use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::{Any, AssertSqlSafe, Row, Transaction};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use tributary_core::display_name::NameCandidate;
use tributary_core::{
    AddressClass, ChosenName, Decision, Direction, EmailAddress, ExclusionReason, Extraction,
    Participant, Role, choose_display_name,
};

/// One message as one mailbox sees it.
#[derive(Debug, Clone)]
pub struct CapturedSighting {
    pub extraction: Extraction,
    /// The provider's id of this copy (Gmail message id, Graph id, IMAP UID).
    pub provider_message_id: String,
    /// The labels or folders holding this copy.
    pub labels: Vec<String>,
}

/// What one page of a mailbox sync produced.
#[derive(Debug, Clone, Default)]
pub struct CapturePage {
    pub sightings: Vec<CapturedSighting>,
}

/// The cursor to store once the page is committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CursorAdvance {
    pub stream: String,
    pub value: String,
}

/// What a committed page changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PageSummary {
    /// Sightings of messages that were new to the tenant.
    pub added: u64,
    /// Sightings of messages already captured (from another mailbox or an earlier run).
    pub already_known: u64,
    /// Sightings the extraction excluded (automated, internal, blocklisted).
    pub excluded: u64,
}

impl Store {
    /// Commits a page for `link` of `tenant` and then advances `cursor`, all in one
    /// transaction: either everything is stored or nothing is.
    ///
    /// Captured activity is never changed but for one thing: a message already known
    /// only gains the participants it lacked (a Bcc only the sender's copy carries), the
    /// sighting and its labels, and, when it has no Date header, an earlier time if this
    /// copy was received before every copy seen so far (the contract's time is the
    /// earliest `internalDate`). Relationships take each newly captured activity's
    /// contribution, an activity that gained participants revises what it contributed
    /// (its audience grew), and the pairs of an activity whose time moved are recomputed.
    /// A copy excluded only as internal joins its activity as a sighting, now or, held by
    /// dedupe key, when a later commit captures that activity.
    pub async fn commit_page(
        &self,
        tenant: &TenantId,
        link: LinkId,
        page: &CapturePage,
        cursor: Option<&CursorAdvance>,
    ) -> Result<PageSummary, StoreError> {
        let mut tx = self.begin_write().await?;
        ensure_link(&mut tx, tenant, link).await?;
        // SQLite's `BEGIN IMMEDIATE` already serializes writers; PostgreSQL commits run
        // concurrently, so they take their locks in one global order: the page's dedupe
        // keys, companies, contacts, then the relationships they update.
        let concurrent = self.backend() == Backend::Postgres;
        let mut writer = PageWriter {
            tx: &mut tx,
            tenant: tenant.as_str(),
            backend: self.backend(),
        };
        if concurrent {
            let keys = page.sightings.iter().map(|s| {
                lock_key(&[
                    tenant.as_str(),
                    "activity",
                    s.extraction.dedupe_key.as_str(),
                ])
            });
            writer.advisory_locks(keys.collect()).await?;
        }
        let contacts = writer.companies_and_contacts(page).await?;
        let members = writer.members(page).await?;
        let receipts = page_receipts(page);
        let activities = writer.activities(page, &receipts).await?;
        let mut ids = PageIds {
            contacts,
            members,
            activities,
        };
        let (summary, placement) = place_sightings(page, link, &ids.activities);
        let mut known = writer.known_participants(page, &ids.activities).await?;
        let rows = participant_rows(page, &ids, &mut known.keys);
        writer.insert_participants(&rows.rows).await?;
        writer.display_names(page).await?;
        let taken = writer.take_held(&ids.activities.inserted).await?;
        let retimed = writer
            .lower_receipt_times(&mut ids.activities, &receipts, &taken.receipts)
            .await?;
        writer
            .write_sightings(placement.sightings, taken.sightings)
            .await?;
        writer.hold(link, placement.held).await?;

        let mut changes = relationship_changes(&rows, &ids, &known);
        // A known activity that moved in time changes first, last and every decayed
        // score of its pairs: rare enough to recompute them (and lock them, below).
        changes.recompute_activities.extend(retimed);
        let mut recompute = changes.recompute_pairs;
        recompute.extend(writer.touched_pairs(&changes.recompute_activities).await?);
        // A pair recomputed from all its activities already counts this page's.
        changes.pairs.retain(|pair, _| !recompute.contains(pair));
        if concurrent {
            // Without the lock two commits adding activities to one pair could each read
            // it without the other's (READ COMMITTED) and store a count short.
            let keys = changes
                .pairs
                .keys()
                .chain(&recompute)
                .map(|(member, contact)| relationship_lock_key(tenant.as_str(), *member, *contact));
            writer.advisory_locks(keys.collect()).await?;
        }
        let unrevisable =
            relationship::apply_changes(writer.tx, writer.tenant, writer.backend, changes.pairs)
                .await?;
        recompute.extend(unrevisable);
        for (member, contact) in recompute {
            relationship::recompute_relationship(writer.tx, writer.tenant, member, contact).await?;
        }
        if let Some(cursor) = cursor {
            advance_cursor(&mut tx, tenant, link, cursor).await?;
        }
        tx.commit().await?;
        Ok(summary)
    }
}

/// Whether the extraction excluded this copy only because, on its own, it has no
/// external participant: a recipient's copy whose only external participant is a Bcc
/// that only the sender's copy carries. The capture contract still counts its mailbox.
fn looks_internal_alone(extraction: &Extraction) -> bool {
    extraction.decision
        == (Decision::Excluded {
            reason: ExclusionReason::Internal,
        })
}

/// Whether a copy joins its activity (as a sighting now, or held until the activity is
/// captured): it is captured, or excluded only as internal on its own.
fn joins_activity(extraction: &Extraction) -> bool {
    extraction.is_captured() || looks_internal_alone(extraction)
}

/// The receipt time a copy contributes to its activity's time: its own `internalDate`
/// when the message has no Date header (each copy is extracted on its own).
fn receipt_ms(extraction: &Extraction) -> Option<i64> {
    extraction
        .time_from_receipt()
        .then_some(extraction.time_ms)
        .flatten()
}

/// By dedupe key, the earliest receipt time of the page's copies of messages without a
/// Date header, over every copy that joins its activity.
fn page_receipts(page: &CapturePage) -> HashMap<&str, i64> {
    let mut earliest: HashMap<&str, i64> = HashMap::new();
    for extraction in page.sightings.iter().map(|s| &s.extraction) {
        let Some(ms) = receipt_ms(extraction).filter(|_| joins_activity(extraction)) else {
            continue;
        };
        earliest
            .entry(extraction.dedupe_key.as_str())
            .and_modify(|t| *t = (*t).min(ms))
            .or_insert(ms);
    }
    earliest
}

/// The time an activity is inserted with: its extraction's, or for a message without a
/// Date header the earliest receipt among the page's copies.
fn insert_time(extraction: &Extraction, receipts: &HashMap<&str, i64>) -> Option<i64> {
    match receipt_ms(extraction) {
        Some(ms) => Some(
            receipts
                .get(extraction.dedupe_key.as_str())
                .map_or(ms, |earliest| ms.min(*earliest)),
        ),
        None => extraction.time_ms,
    }
}

/// The advisory lock key of one (member, contact) relationship.
pub(crate) fn relationship_lock_key(tenant: &str, member: i64, contact: i64) -> i64 {
    lock_key(&[
        tenant,
        "relationship",
        &member.to_string(),
        &contact.to_string(),
    ])
}

/// Takes PostgreSQL transaction-scoped advisory locks, in ascending key order so that
/// concurrent commits never wait on each other in a cycle: one statement for all of
/// them, the keys a JSON array sorted in a subquery that `OFFSET 0` keeps apart, so
/// each lock is taken as its sorted row reaches the outer select list.
pub(crate) async fn advisory_locks(
    tx: &mut Transaction<'static, Any>,
    keys: BTreeSet<i64>,
) -> Result<(), StoreError> {
    if keys.is_empty() {
        return Ok(());
    }
    let keys: Vec<i64> = keys.into_iter().collect();
    sqlx::query(
        "SELECT pg_advisory_xact_lock(sorted.k) FROM (
             SELECT CAST(value AS BIGINT) AS k FROM json_array_elements_text(CAST($1 AS JSON))
             ORDER BY k OFFSET 0
         ) AS sorted",
    )
    .bind(serde_json::to_string(&keys)?)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn advance_cursor(
    tx: &mut Transaction<'static, Any>,
    tenant: &TenantId,
    link: LinkId,
    cursor: &CursorAdvance,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO cursors (tenant_id, link_id, stream, value, updated_ms)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (tenant_id, link_id, stream) DO UPDATE SET
             value = excluded.value, updated_ms = excluded.updated_ms",
    )
    .bind(tenant.as_str())
    .bind(link.0)
    .bind(&cursor.stream)
    .bind(&cursor.value)
    .bind(now_ms())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The most rows one statement writes or names. A power of two, and every batch is one
/// too, so a statement has at most 9 shapes. Far below SQLite's 32,766 and PostgreSQL's
/// 65,535 bind parameters, and PostgreSQL's 1,664 result columns.
const MAX_BATCH: usize = 256;

/// `items` in batches of [`MAX_BATCH`], then of the largest power of two that fits.
pub(crate) fn batches<T>(mut items: &[T]) -> Vec<&[T]> {
    let mut batches = Vec::new();
    while !items.is_empty() {
        let size = if items.len() >= MAX_BATCH {
            MAX_BATCH
        } else {
            1 << items.len().ilog2()
        };
        let (batch, rest) = items.split_at(size);
        batches.push(batch);
        items = rest;
    }
    batches
}

/// Placeholders in the order values are bound: `$1, $2, …` on PostgreSQL, `?` on
/// SQLite. SQLite finds a numbered placeholder's name by a linear search, so binding a
/// statement of thousands of `$N` takes quadratic time there; plain `?` binds in order.
pub(crate) struct Params {
    positional: bool,
    next: usize,
}

impl Params {
    pub(crate) fn new(backend: Backend) -> Self {
        Self {
            positional: backend == Backend::Sqlite,
            next: 1,
        }
    }

    /// The next placeholder.
    pub(crate) fn one(&mut self) -> String {
        let n = self.next;
        self.next += 1;
        if self.positional {
            "?".to_owned()
        } else {
            format!("${n}")
        }
    }

    /// `count` placeholders separated by commas, for an `IN` list.
    pub(crate) fn list(&mut self, count: usize) -> String {
        (0..count)
            .map(|_| self.one())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// `rows` parenthesized tuples of `columns` placeholders, for a `VALUES` list.
    pub(crate) fn rows(&mut self, rows: usize, columns: usize) -> String {
        (0..rows)
            .map(|_| format!("({})", self.list(columns)))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

pub(crate) type AnyQuery = Query<'static, Any, AnyArguments>;

/// A query of SQL built here from fixed text and numbered placeholders only.
pub(crate) fn built_query(sql: String) -> AnyQuery {
    sqlx::query(AssertSqlSafe(sql))
}

/// A value a lookup is keyed by: how PostgreSQL reads it back from a JSON array.
pub(crate) trait LookupKey: serde::Serialize + Copy {
    /// `keys.k` (JSON text) as the column's type.
    const COLUMN: &'static str;

    fn bind_to(self, query: AnyQuery) -> AnyQuery;
}

impl LookupKey for &str {
    const COLUMN: &'static str = "keys.k";

    fn bind_to(self, query: AnyQuery) -> AnyQuery {
        query.bind(self)
    }
}

impl LookupKey for i64 {
    const COLUMN: &'static str = "CAST(keys.k AS BIGINT)";

    fn bind_to(self, query: AnyQuery) -> AnyQuery {
        query.bind(self)
    }
}

/// The statements that look `keys` up in tenant `tenant`: `sql(tenant, key)` is a
/// `SELECT` given the tenant's placeholder and the condition on the key column (`key`
/// follows the column's name).
///
/// SQLite: `IN` lists in batches, which its planner serves from the index. PostgreSQL:
/// one statement whatever the number of keys, the keys a JSON array (the `Any` driver
/// binds no arrays), each key looked up on its own through a `LATERAL` subquery that
/// `OFFSET 0` keeps from being flattened. Given a plain `IN` list PostgreSQL chose, for
/// want of statistics on a fresh tenant (every `tenant_id = $1` guessed at 0.5% of the
/// table, a 256-key list at all of it), to read the tenant's whole index range and
/// filter: work growing with the tenant, measured as most of a page's commit on a
/// 37,000-message tenant. Per key, the index matching the tenant and the key is the
/// only cheap plan with or without statistics.
pub(crate) fn lookups<K: LookupKey>(
    backend: Backend,
    tenant: &str,
    keys: &[K],
    sql: impl Fn(&str, &str) -> String,
) -> Result<Vec<AnyQuery>, StoreError> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    if backend == Backend::Postgres {
        let inner = sql("$1", &format!("= {}", K::COLUMN));
        let query = built_query(postgres_lookup(&inner))
            .bind(tenant.to_owned())
            .bind(serde_json::to_string(keys)?);
        return Ok(vec![query]);
    }
    Ok(batches(keys)
        .into_iter()
        .map(|batch| {
            let mut p = Params::new(backend);
            let tenant_placeholder = p.one();
            let key = format!("IN ({})", p.list(batch.len()));
            let mut query = built_query(sql(&tenant_placeholder, &key)).bind(tenant.to_owned());
            for item in batch {
                query = item.bind_to(query);
            }
            query
        })
        .collect())
}

/// PostgreSQL's form of a lookup: `inner` (referring to `keys.k`) once per key of the
/// JSON array `$2`.
fn postgres_lookup(inner: &str) -> String {
    format!(
        "SELECT found.* FROM json_array_elements_text(CAST($2 AS JSON)) AS keys(k)
         CROSS JOIN LATERAL ({inner} OFFSET 0) AS found"
    )
}

/// The ids a page's rows refer to.
struct PageIds<'p> {
    /// By contact address.
    contacts: HashMap<&'p str, i64>,
    /// By a member's primary address (the extraction's `AddressClass::Member`).
    members: HashMap<&'p str, StoredMember>,
    activities: ActivityIds<'p>,
}

/// A member as the store knows it.
struct StoredMember {
    id: i64,
    /// Its stored primary address, which relationship scores identify it by; `None`
    /// when that does not parse.
    email: Option<EmailAddress>,
}

/// The page's activities by dedupe key.
#[derive(Default)]
struct ActivityIds<'p> {
    /// Captured before this page.
    known: HashMap<&'p str, i64>,
    /// Captured by this page.
    inserted: HashMap<&'p str, InsertedActivity<'p>>,
}

/// An activity this page captured.
struct InsertedActivity<'p> {
    id: i64,
    /// The extraction its row was made from.
    extraction: &'p Extraction,
    /// Its stored time: the extraction's, or for a message without a Date header the
    /// earliest receipt of the copies known to this commit.
    time_ms: Option<i64>,
}

impl ActivityIds<'_> {
    fn get(&self, dedupe_key: &str) -> Option<i64> {
        self.known
            .get(dedupe_key)
            .copied()
            .or_else(|| self.inserted.get(dedupe_key).map(|a| a.id))
    }
}

/// (activity, link, provider message id) → labels.
type Sightings = BTreeMap<(i64, i64, String), BTreeSet<String>>;

/// Where each sighting of the page goes.
#[derive(Default)]
struct Placement {
    sightings: Sightings,
    /// (dedupe key, provider message id) → internal-looking copies of this link whose
    /// activity is not captured.
    held: BTreeMap<(String, String), HeldCopy>,
}

/// A copy kept until its activity is captured.
#[derive(Default)]
struct HeldCopy {
    labels: BTreeSet<String>,
    /// Its receipt time when the message has no Date header.
    receipt_ms: Option<i64>,
}

/// Held copies a commit turned into sightings of the activities it captured.
struct TakenHeld {
    sightings: Sightings,
    /// By activity, the earliest receipt time of its held copies.
    receipts: HashMap<i64, i64>,
}

/// Counts the page's sightings and places each: as a sighting of its activity, held
/// until its activity is captured, or nowhere (excluded). A sighting counts as
/// `already_known` when its activity was captured before it, by an earlier page or an
/// earlier sighting of this one.
fn place_sightings(
    page: &CapturePage,
    link: LinkId,
    activities: &ActivityIds<'_>,
) -> (PageSummary, Placement) {
    let mut summary = PageSummary::default();
    let mut placement = Placement::default();
    let mut captured_here: HashSet<&str> = HashSet::new();
    for sighting in &page.sightings {
        let key = sighting.extraction.dedupe_key.as_str();
        let labels = sighting.labels.iter().cloned();
        let captured_before = activities.known.contains_key(key) || captured_here.contains(key);
        if sighting.extraction.is_captured() {
            if captured_before {
                summary.already_known += 1;
            } else {
                summary.added += 1;
                captured_here.insert(key);
            }
        } else if !looks_internal_alone(&sighting.extraction) {
            summary.excluded += 1;
            continue;
        } else if captured_before {
            summary.already_known += 1;
        } else {
            summary.excluded += 1;
        }
        match activities.get(key) {
            Some(activity) => placement
                .sightings
                .entry((activity, link.0, sighting.provider_message_id.clone()))
                .or_default()
                .extend(labels),
            None => {
                let held = placement
                    .held
                    .entry((key.to_owned(), sighting.provider_message_id.clone()))
                    .or_default();
                held.labels.extend(labels);
                held.receipt_ms = earliest(held.receipt_ms, receipt_ms(&sighting.extraction));
            }
        }
    }
    (summary, placement)
}

/// The earlier of two optional times.
fn earliest(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// A participant row to insert.
struct ParticipantRow<'p> {
    activity: i64,
    participant: &'p Participant,
    member: Option<i64>,
    contact: Option<i64>,
}

/// The participant rows a page adds, and the activities whose relationships must be
/// recomputed from all their activities.
struct ParticipantRows<'p> {
    rows: Vec<ParticipantRow<'p>>,
    /// Activities captured before that gained participants.
    grown: BTreeSet<i64>,
    /// Activities whose member identity (a stored primary address that does not parse)
    /// the incremental update cannot rebuild.
    recompute: BTreeSet<i64>,
}

/// The participants the page's captured sightings add, each (activity, address, role)
/// once: the first sighting naming it wins, as `ON CONFLICT DO NOTHING` would.
fn participant_rows<'p>(
    page: &'p CapturePage,
    ids: &PageIds<'p>,
    known: &mut HashSet<(i64, String, &'static str)>,
) -> ParticipantRows<'p> {
    let mut rows = Vec::new();
    let mut grown = BTreeSet::new();
    let mut recompute = BTreeSet::new();
    for extraction in page.sightings.iter().map(|s| &s.extraction) {
        if !extraction.is_captured() {
            continue;
        }
        let Some(activity) = ids.activities.get(extraction.dedupe_key.as_str()) else {
            continue;
        };
        let existing = ids
            .activities
            .known
            .contains_key(extraction.dedupe_key.as_str());
        for participant in &extraction.participants {
            let key = (
                activity,
                participant.address.as_str().to_owned(),
                role_name(participant.role),
            );
            if !known.insert(key) {
                continue;
            }
            let (member, contact) = match &participant.class {
                AddressClass::Member { member } => {
                    let stored = ids.members.get(member.as_str());
                    if stored.is_some_and(|m| m.email.is_none()) {
                        recompute.insert(activity);
                    }
                    (stored.map(|m| m.id), None)
                }
                AddressClass::Internal => (None, None),
                AddressClass::External => (
                    None,
                    ids.contacts.get(participant.address.as_str()).copied(),
                ),
            };
            if existing {
                grown.insert(activity);
            }
            rows.push(ParticipantRow {
                activity,
                participant,
                member,
                contact,
            });
        }
    }
    ParticipantRows {
        rows,
        grown,
        recompute,
    }
}

/// What the page changes in relationships.
struct RelationshipChanges {
    /// (member, contact) → the changes to apply to its row.
    pairs: BTreeMap<(i64, i64), Vec<Change>>,
    /// Pairs to recompute from all their activities.
    recompute_pairs: BTreeSet<(i64, i64)>,
    /// Activities whose pairs are all recomputed.
    recompute_activities: BTreeSet<i64>,
}

/// Each newly captured activity adds its contribution to its pairs, in (time, dedupe
/// key) order; each activity that gained participants revises its contribution to the
/// pairs it was on and adds one to the pairs it is new on.
fn relationship_changes(
    rows: &ParticipantRows<'_>,
    ids: &PageIds<'_>,
    known: &KnownParticipants,
) -> RelationshipChanges {
    let emails: HashMap<i64, &EmailAddress> = ids
        .members
        .values()
        .filter_map(|m| Some((m.id, m.email.as_ref()?)))
        .collect();
    let mut added: HashMap<i64, Vec<StoredParticipant<'_>>> = HashMap::new();
    for row in &rows.rows {
        added
            .entry(row.activity)
            .or_default()
            .push(StoredParticipant {
                address: &row.participant.address,
                role: row.participant.role,
                member: row
                    .member
                    .and_then(|id| emails.get(&id).map(|email| (id, *email))),
                contact: row.contact,
            });
    }
    let mut changes = RelationshipChanges {
        pairs: BTreeMap::new(),
        recompute_pairs: BTreeSet::new(),
        recompute_activities: rows.recompute.clone(),
    };
    for &activity in &rows.grown {
        let Some(touch) = known.touches.get(&activity) else {
            changes.recompute_activities.insert(activity);
            continue;
        };
        if touch.unparsed_member {
            changes.recompute_activities.insert(activity);
            continue;
        }
        let Some(time_ms) = touch.time_ms else {
            continue;
        };
        let before: Vec<StoredParticipant<'_>> = touch
            .participants
            .iter()
            .map(KnownParticipant::stored)
            .collect();
        let mut after: Vec<StoredParticipant<'_>> = touch
            .participants
            .iter()
            .map(KnownParticipant::stored)
            .collect();
        after.extend(added.remove(&activity).unwrap_or_default());
        let old: HashMap<(i64, i64), relationship::Contribution> =
            relationship::contributions(time_ms, touch.is_reply, &before)
                .into_iter()
                .collect();
        let new = relationship::contributions(time_ms, touch.is_reply, &after);
        if old.keys().any(|pair| !new.iter().any(|(p, _)| p == pair)) {
            // Adding participants never takes a pair off an activity; should it, only a
            // recompute knows the pair's rows without it.
            changes.recompute_pairs.extend(old.keys().copied());
        }
        for (pair, contribution) in new {
            let change = match old.get(&pair) {
                Some(before) => Change::Revise {
                    old: *before,
                    new: contribution,
                },
                None => Change::Add(contribution),
            };
            changes.pairs.entry(pair).or_default().push(change);
        }
    }
    let mut inserted: Vec<(&str, &InsertedActivity<'_>)> = ids
        .activities
        .inserted
        .iter()
        .map(|(key, inserted)| (*key, inserted))
        .filter(|(_, inserted)| !rows.recompute.contains(&inserted.id))
        .collect();
    inserted.sort_by_key(|(key, inserted)| (inserted.time_ms, *key));
    for (_, inserted) in inserted {
        let (activity, extraction) = (inserted.id, inserted.extraction);
        let Some(time_ms) = inserted.time_ms else {
            continue;
        };
        let participants = added.remove(&activity).unwrap_or_default();
        for (pair, contribution) in
            relationship::contributions(time_ms, extraction.is_reply, &participants)
        {
            changes
                .pairs
                .entry(pair)
                .or_default()
                .push(Change::Add(contribution));
        }
    }
    changes
}

/// The participant rows already stored for the page's activities captured before.
#[derive(Default)]
struct KnownParticipants {
    /// (activity, address, role) of every row.
    keys: HashSet<(i64, String, &'static str)>,
    /// By activity, as relationships see it.
    touches: HashMap<i64, KnownTouch>,
}

/// A stored activity with its stored participants.
struct KnownTouch {
    time_ms: Option<i64>,
    is_reply: bool,
    participants: Vec<KnownParticipant>,
    /// A member's stored primary address does not parse.
    unparsed_member: bool,
}

struct KnownParticipant {
    address: EmailAddress,
    role: Role,
    member: Option<(i64, EmailAddress)>,
    contact: Option<i64>,
}

impl KnownParticipant {
    fn stored(&self) -> StoredParticipant<'_> {
        StoredParticipant {
            address: &self.address,
            role: self.role,
            member: self.member.as_ref().map(|(id, email)| (*id, email)),
            contact: self.contact,
        }
    }
}

/// Writes a page's rows within one transaction (also used by a calendar page for the
/// contacts its meetings name).
pub(crate) struct PageWriter<'t> {
    tx: &'t mut Transaction<'static, Any>,
    tenant: &'t str,
    backend: Backend,
}

impl<'t> PageWriter<'t> {
    pub(crate) fn new(
        tx: &'t mut Transaction<'static, Any>,
        tenant: &'t str,
        backend: Backend,
    ) -> Self {
        PageWriter {
            tx,
            tenant,
            backend,
        }
    }
}

impl<'p> PageWriter<'_> {
    fn params(&self) -> Params {
        Params::new(self.backend)
    }

    /// See [`lookups`].
    fn lookup<K: LookupKey>(
        &self,
        keys: &[K],
        sql: impl Fn(&str, &str) -> String,
    ) -> Result<Vec<AnyQuery>, StoreError> {
        lookups(self.backend, self.tenant, keys, sql)
    }

    async fn advisory_locks(&mut self, keys: BTreeSet<i64>) -> Result<(), StoreError> {
        advisory_locks(self.tx, keys).await
    }

    /// Creates the companies and contacts the page's captured sightings name, each
    /// sorted, so that concurrent commits lock their rows in one order, and returns the
    /// contacts' ids. An address keeps the company it is first named with.
    async fn companies_and_contacts(
        &mut self,
        page: &'p CapturePage,
    ) -> Result<HashMap<&'p str, i64>, StoreError> {
        let mut contacts: BTreeMap<&'p str, Option<&'p str>> = BTreeMap::new();
        for extraction in page.sightings.iter().map(|s| &s.extraction) {
            if !extraction.is_captured() {
                continue;
            }
            for contact in &extraction.contacts {
                contacts
                    .entry(contact.address.as_str())
                    .or_insert(contact.company.as_deref());
            }
            for participant in &extraction.participants {
                if participant.class == AddressClass::External {
                    contacts.entry(participant.address.as_str()).or_insert(None);
                }
            }
        }
        self.contacts(contacts).await
    }

    /// Creates the companies, then the contacts, of `contacts` (address → the domain of
    /// its company, if any), each in byte order, so that concurrent commits lock their
    /// rows in one order; returns the contacts' ids by address.
    pub(crate) async fn contacts(
        &mut self,
        contacts: BTreeMap<&'p str, Option<&'p str>>,
    ) -> Result<HashMap<&'p str, i64>, StoreError> {
        let companies: BTreeSet<&'p str> = contacts.values().flatten().copied().collect();
        let companies: Vec<&'p str> = companies.into_iter().collect();
        for batch in batches(&companies) {
            let mut p = self.params();
            let mut query = built_query(format!(
                "INSERT INTO companies (tenant_id, domain) VALUES {}
                 ON CONFLICT (tenant_id, domain) DO NOTHING",
                p.rows(batch.len(), 2)
            ));
            for domain in batch {
                query = query.bind(self.tenant).bind(*domain);
            }
            query.execute(&mut **self.tx).await?;
        }
        let company_ids = self
            .ids_by_text("SELECT domain, id FROM companies", "domain", &companies)
            .await?;
        let rows: Vec<(&'p str, Option<i64>)> = contacts
            .iter()
            .map(|(address, company)| (*address, company.and_then(|d| company_ids.get(d).copied())))
            .collect();
        for batch in batches(&rows) {
            let mut p = self.params();
            let mut query = built_query(format!(
                "INSERT INTO contacts (tenant_id, address, company_id) VALUES {}
                 ON CONFLICT (tenant_id, address) DO NOTHING",
                p.rows(batch.len(), 3)
            ));
            for (address, company) in batch {
                query = query.bind(self.tenant).bind(*address).bind(*company);
            }
            query.execute(&mut **self.tx).await?;
        }
        let addresses: Vec<&'p str> = contacts.into_keys().collect();
        self.ids_by_text("SELECT address, id FROM contacts", "address", &addresses)
            .await
    }

    /// `select` (text, id) rows of this tenant whose `column` is one of `values`.
    async fn ids_by_text(
        &mut self,
        select: &str,
        column: &str,
        values: &[&'p str],
    ) -> Result<HashMap<&'p str, i64>, StoreError> {
        let mut ids = HashMap::with_capacity(values.len());
        let wanted: HashSet<&'p str> = values.iter().copied().collect();
        for query in self.lookup(values, |tenant, key| {
            format!("{select} WHERE tenant_id = {tenant} AND {column} {key}")
        })? {
            for row in query.fetch_all(&mut **self.tx).await? {
                let text: String = row.try_get(0)?;
                if let Some(value) = wanted.get(text.as_str()) {
                    ids.insert(*value, row.try_get(1)?);
                }
            }
        }
        Ok(ids)
    }

    /// The stored members the page's captured sightings name, by primary address.
    async fn members(
        &mut self,
        page: &'p CapturePage,
    ) -> Result<HashMap<&'p str, StoredMember>, StoreError> {
        let addresses: BTreeSet<&'p str> = page
            .sightings
            .iter()
            .filter(|s| s.extraction.is_captured())
            .flat_map(|s| &s.extraction.participants)
            .filter_map(|p| match &p.class {
                AddressClass::Member { member } => Some(member.as_str()),
                _ => None,
            })
            .collect();
        let addresses: Vec<&'p str> = addresses.into_iter().collect();
        let mut members = HashMap::with_capacity(addresses.len());
        for query in self.lookup(&addresses, |tenant, key| {
            format!(
                "SELECT a.address, a.member_id, m.email FROM member_addresses a
                     JOIN members m ON m.tenant_id = a.tenant_id AND m.id = a.member_id
                     WHERE a.tenant_id = {tenant} AND a.address {key}"
            )
        })? {
            for row in query.fetch_all(&mut **self.tx).await? {
                let address: String = row.try_get(0)?;
                let Some(address) = addresses.iter().find(|a| **a == address) else {
                    continue;
                };
                let email: String = row.try_get(2)?;
                members.insert(
                    *address,
                    StoredMember {
                        id: row.try_get(1)?,
                        email: EmailAddress::parse(&email).ok(),
                    },
                );
            }
        }
        Ok(members)
    }

    /// The ids of the page's activities: those captured before, and those its captured
    /// sightings insert now (each from its first captured sighting; a message without a
    /// Date header timed by the earliest of the page's `receipts`).
    async fn activities(
        &mut self,
        page: &'p CapturePage,
        receipts: &HashMap<&str, i64>,
    ) -> Result<ActivityIds<'p>, StoreError> {
        let keys: BTreeSet<&'p str> = page
            .sightings
            .iter()
            .map(|s| s.extraction.dedupe_key.as_str())
            .collect();
        let keys: Vec<&'p str> = keys.into_iter().collect();
        let mut activities = ActivityIds {
            known: self
                .ids_by_text("SELECT dedupe_key, id FROM activities", "dedupe_key", &keys)
                .await?,
            inserted: HashMap::new(),
        };
        let mut new: Vec<&'p Extraction> = Vec::new();
        let mut seen: HashSet<&str> = HashSet::new();
        for extraction in page.sightings.iter().map(|s| &s.extraction) {
            let key = extraction.dedupe_key.as_str();
            if extraction.is_captured() && !activities.known.contains_key(key) && seen.insert(key) {
                new.push(extraction);
            }
        }
        let captured_ms = now_ms();
        for batch in batches(&new) {
            let mut p = self.params();
            let mut query = built_query(format!(
                "INSERT INTO activities
                     (tenant_id, dedupe_key, thread_key, time_ms, direction, subject, is_reply,
                      captured_ms, time_from_receipt)
                 VALUES {}
                 ON CONFLICT (tenant_id, dedupe_key) DO NOTHING
                 RETURNING dedupe_key, id",
                p.rows(batch.len(), 9)
            ));
            let times: HashMap<&str, Option<i64>> = batch
                .iter()
                .map(|e| (e.dedupe_key.as_str(), insert_time(e, receipts)))
                .collect();
            for extraction in batch {
                query = query
                    .bind(self.tenant)
                    .bind(extraction.dedupe_key.as_str())
                    .bind(
                        extraction
                            .thread_key
                            .as_ref()
                            .map(|k| k.as_str().to_owned()),
                    )
                    .bind(times[extraction.dedupe_key.as_str()])
                    .bind(direction_name(extraction.direction))
                    .bind(extraction.subject.clone())
                    .bind(i64::from(extraction.is_reply))
                    .bind(captured_ms)
                    .bind(i64::from(extraction.time_from_receipt()));
            }
            let by_key: HashMap<&str, &'p Extraction> =
                batch.iter().map(|e| (e.dedupe_key.as_str(), *e)).collect();
            for row in query.fetch_all(&mut **self.tx).await? {
                let key: String = row.try_get(0)?;
                if let Some(extraction) = by_key.get(key.as_str()) {
                    let key = extraction.dedupe_key.as_str();
                    activities.inserted.insert(
                        key,
                        InsertedActivity {
                            id: row.try_get(1)?,
                            extraction,
                            time_ms: times[key],
                        },
                    );
                }
            }
        }
        // The locks (PostgreSQL) and the write turn (SQLite) leave no one else to insert
        // these keys; should anything have, its row is simply known.
        let missing: Vec<&'p str> = new
            .iter()
            .map(|e| e.dedupe_key.as_str())
            .filter(|key| !activities.inserted.contains_key(key))
            .collect();
        if !missing.is_empty() {
            let found = self
                .ids_by_text(
                    "SELECT dedupe_key, id FROM activities",
                    "dedupe_key",
                    &missing,
                )
                .await?;
            activities.known.extend(found);
        }
        Ok(activities)
    }

    /// The participant rows already stored for the activities the page's captured
    /// sightings name that were captured before, with those activities' time.
    async fn known_participants(
        &mut self,
        page: &CapturePage,
        activities: &ActivityIds<'_>,
    ) -> Result<KnownParticipants, StoreError> {
        let ids: BTreeSet<i64> = page
            .sightings
            .iter()
            .filter(|s| s.extraction.is_captured())
            .filter_map(|s| activities.known.get(s.extraction.dedupe_key.as_str()))
            .copied()
            .collect();
        let ids: Vec<i64> = ids.into_iter().collect();
        let mut known = KnownParticipants::default();
        for query in self.lookup(&ids, |tenant, key| {
            format!(
                // The member's address by a subquery, so that each row is one index
                // lookup whatever the planner guesses of the members' number.
                "SELECT p.activity_id, p.address, p.role, p.member_id, p.contact_id,
                        (SELECT m.email FROM members m
                         WHERE m.tenant_id = p.tenant_id AND m.id = p.member_id) AS email,
                        a.time_ms, a.is_reply
                     FROM activity_participants p
                     JOIN activities a ON a.tenant_id = p.tenant_id AND a.id = p.activity_id
                     WHERE p.tenant_id = {tenant} AND p.activity_id {key}"
            )
        })? {
            for row in query.fetch_all(&mut **self.tx).await? {
                let activity: i64 = row.try_get(0)?;
                let address: String = row.try_get(1)?;
                let role: String = row.try_get(2)?;
                let Some(role) = role_from_name(&role) else {
                    continue;
                };
                known
                    .keys
                    .insert((activity, address.clone(), role_name(role)));
                let touch = known.touches.entry(activity).or_insert(KnownTouch {
                    time_ms: row.try_get(6)?,
                    is_reply: row.try_get::<i64, _>(7)? != 0,
                    participants: Vec::new(),
                    unparsed_member: false,
                });
                // A recompute leaves out an address that does not parse; so does this.
                let Ok(address) = EmailAddress::parse(&address) else {
                    continue;
                };
                let member = match (
                    row.try_get::<Option<i64>, _>(3)?,
                    row.try_get::<Option<String>, _>(5)?,
                ) {
                    (Some(id), Some(email)) => match EmailAddress::parse(&email) {
                        Ok(email) => Some((id, email)),
                        Err(_) => {
                            touch.unparsed_member = true;
                            None
                        }
                    },
                    _ => None,
                };
                touch.participants.push(KnownParticipant {
                    address,
                    role,
                    member,
                    contact: row.try_get(4)?,
                });
            }
        }
        Ok(known)
    }

    async fn insert_participants(&mut self, rows: &[ParticipantRow<'_>]) -> Result<(), StoreError> {
        for batch in batches(rows) {
            let mut p = self.params();
            let mut query = built_query(format!(
                "INSERT INTO activity_participants
                     (tenant_id, activity_id, address, role, kind, member_id, contact_id)
                 VALUES {}
                 ON CONFLICT (tenant_id, activity_id, address, role) DO NOTHING",
                p.rows(batch.len(), 7)
            ));
            for row in batch {
                query = query
                    .bind(self.tenant)
                    .bind(row.activity)
                    .bind(row.participant.address.as_str())
                    .bind(role_name(row.participant.role))
                    .bind(kind_name(&row.participant.class))
                    .bind(row.member)
                    .bind(row.contact);
            }
            query.execute(&mut **self.tx).await?;
        }
        Ok(())
    }

    /// Keeps, per address, the display name the page's captured sightings give it when it
    /// is more recent than the stored one (core's `choose_display_name` within the page,
    /// `ChosenName::replaces`' order against the store, in the upsert's `WHERE`).
    async fn display_names(&mut self, page: &CapturePage) -> Result<(), StoreError> {
        let mut candidates: BTreeMap<&EmailAddress, Vec<NameCandidate<'_>>> = BTreeMap::new();
        for extraction in page.sightings.iter().map(|s| &s.extraction) {
            if !extraction.is_captured() {
                continue;
            }
            for (address, candidate) in extraction.name_candidates() {
                candidates.entry(address).or_default().push(candidate);
            }
        }
        let chosen: Vec<(&EmailAddress, ChosenName)> = candidates
            .into_iter()
            .filter_map(|(address, names)| Some((address, choose_display_name(address, names)?)))
            .collect();
        for batch in batches(&chosen) {
            let mut p = self.params();
            let mut query = built_query(format!(
                "INSERT INTO display_names (tenant_id, address, name, seen_ms) VALUES {}
                 ON CONFLICT (tenant_id, address) DO UPDATE
                     SET name = excluded.name, seen_ms = excluded.seen_ms
                     WHERE excluded.seen_ms > display_names.seen_ms
                        OR (excluded.seen_ms = display_names.seen_ms
                            AND excluded.name{order} > display_names.name{order})",
                p.rows(batch.len(), 4),
                order = crate::api_reads::byte_order(self.backend),
            ));
            for (address, name) in batch {
                query = query
                    .bind(self.tenant)
                    .bind(address.as_str())
                    .bind(name.name.clone())
                    .bind(name.seen_ms);
            }
            query.execute(&mut **self.tx).await?;
        }
        Ok(())
    }

    /// Removes the copies held for the dedupe keys of `inserted` activities and returns
    /// them as sightings of those activities, with their receipt times.
    async fn take_held(
        &mut self,
        inserted: &HashMap<&'p str, InsertedActivity<'p>>,
    ) -> Result<TakenHeld, StoreError> {
        let mut keys: Vec<&'p str> = inserted.keys().copied().collect();
        keys.sort_unstable();
        let mut taken = TakenHeld {
            sightings: Sightings::new(),
            receipts: HashMap::new(),
        };
        let mut found: Vec<&'p str> = Vec::new();
        for query in self.lookup(&keys, |tenant, key| {
            format!(
                "SELECT dedupe_key, link_id, provider_message_id, labels, receipt_ms
                     FROM held_sightings
                     WHERE tenant_id = {tenant} AND dedupe_key {key}"
            )
        })? {
            for row in query.fetch_all(&mut **self.tx).await? {
                let key: String = row.try_get(0)?;
                let Some((key, activity)) = inserted.get_key_value(key.as_str()) else {
                    continue;
                };
                let labels: Vec<String> = serde_json::from_str(row.try_get::<&str, _>(3)?)?;
                taken
                    .sightings
                    .entry((activity.id, row.try_get(1)?, row.try_get(2)?))
                    .or_default()
                    .extend(labels);
                if let Some(ms) = row.try_get::<Option<i64>, _>(4)? {
                    let earliest = taken.receipts.entry(activity.id).or_insert(ms);
                    *earliest = (*earliest).min(ms);
                }
                found.push(key);
            }
        }
        found.sort_unstable();
        found.dedup();
        let deletes = if self.backend == Backend::Postgres {
            // The rows found per key as every lookup here, deleted by tuple id.
            let rows = postgres_lookup(
                "SELECT ctid FROM held_sightings WHERE tenant_id = $1 AND dedupe_key = keys.k",
            );
            let sql = format!("DELETE FROM held_sightings WHERE ctid = ANY(ARRAY({rows}))");
            let query = built_query(sql)
                .bind(self.tenant)
                .bind(serde_json::to_string(&found)?);
            vec![query]
        } else {
            self.lookup(&found, |tenant, key| {
                format!(
                    "DELETE FROM held_sightings WHERE tenant_id = {tenant} AND dedupe_key {key}"
                )
            })?
        };
        for query in deletes {
            query.execute(&mut **self.tx).await?;
        }
        Ok(taken)
    }

    /// Records the copies; a copy seen again keeps the union of its labels.
    async fn write_sightings(
        &mut self,
        mut sightings: Sightings,
        more: Sightings,
    ) -> Result<(), StoreError> {
        for (key, labels) in more {
            sightings.entry(key).or_default().extend(labels);
        }
        let activities: BTreeSet<i64> =
            sightings.keys().map(|(activity, _, _)| *activity).collect();
        let activities: Vec<i64> = activities.into_iter().collect();
        let mut stored: HashMap<(i64, i64, String), BTreeSet<String>> = HashMap::new();
        for query in self.lookup(&activities, |tenant, key| {
            format!(
                "SELECT activity_id, link_id, provider_message_id, labels FROM activity_sightings
                     WHERE tenant_id = {tenant} AND activity_id {key}"
            )
        })? {
            for row in query.fetch_all(&mut **self.tx).await? {
                let labels: BTreeSet<String> = serde_json::from_str(row.try_get::<&str, _>(3)?)?;
                stored.insert((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?), labels);
            }
        }
        let mut new: Vec<((i64, i64, String), String)> = Vec::new();
        for (key, labels) in sightings {
            let Some(known) = stored.get(&key) else {
                new.push((key, serde_json::to_string(&labels)?));
                continue;
            };
            if known.is_superset(&labels) {
                continue;
            }
            let union: BTreeSet<&String> = known.iter().chain(&labels).collect();
            let (activity, link, provider_message_id) = key;
            sqlx::query(
                "UPDATE activity_sightings SET labels = $5
                 WHERE tenant_id = $1 AND activity_id = $2 AND link_id = $3
                   AND provider_message_id = $4",
            )
            .bind(self.tenant)
            .bind(activity)
            .bind(link)
            .bind(provider_message_id)
            .bind(serde_json::to_string(&union)?)
            .execute(&mut **self.tx)
            .await?;
        }
        let seen_ms = now_ms();
        for batch in batches(&new) {
            let mut p = self.params();
            let mut query = built_query(format!(
                "INSERT INTO activity_sightings
                     (tenant_id, activity_id, link_id, provider_message_id, labels, seen_ms)
                 VALUES {}",
                p.rows(batch.len(), 6)
            ));
            for ((activity, link, provider_message_id), labels) in batch {
                query = query
                    .bind(self.tenant)
                    .bind(*activity)
                    .bind(*link)
                    .bind(provider_message_id.as_str())
                    .bind(labels.as_str())
                    .bind(seen_ms);
            }
            query.execute(&mut **self.tx).await?;
        }
        Ok(())
    }

    /// Holds this link's internal-looking copies whose activity is not captured, with
    /// the union of the labels held for them before.
    async fn hold(
        &mut self,
        link: LinkId,
        mut held: BTreeMap<(String, String), HeldCopy>,
    ) -> Result<(), StoreError> {
        let keys: BTreeSet<&str> = held.keys().map(|(key, _)| key.as_str()).collect();
        let keys: Vec<&str> = keys.into_iter().collect();
        let mut before: Vec<((String, String), Vec<String>)> = Vec::new();
        // This link's rows; a key's rows of other links are few.
        let queries = self.lookup(&keys, |tenant, key| {
            format!(
                "SELECT dedupe_key, provider_message_id, labels, link_id FROM held_sightings
                 WHERE tenant_id = {tenant} AND dedupe_key {key}"
            )
        })?;
        for query in queries {
            for row in query.fetch_all(&mut **self.tx).await? {
                if row.try_get::<i64, _>(3)? != link.0 {
                    continue;
                }
                let labels: Vec<String> = serde_json::from_str(row.try_get::<&str, _>(2)?)?;
                before.push(((row.try_get(0)?, row.try_get(1)?), labels));
            }
        }
        for (key, labels) in before {
            if let Some(copy) = held.get_mut(&key) {
                copy.labels.extend(labels);
            }
        }
        let rows: Vec<((String, String), String, Option<i64>)> = held
            .into_iter()
            .map(|(key, copy)| Ok((key, serde_json::to_string(&copy.labels)?, copy.receipt_ms)))
            .collect::<Result<_, serde_json::Error>>()?;
        let seen_ms = now_ms();
        for batch in batches(&rows) {
            let mut p = self.params();
            // A row held before receipt times were kept gains this copy's.
            let mut query = built_query(format!(
                "INSERT INTO held_sightings
                     (tenant_id, link_id, dedupe_key, provider_message_id, labels, seen_ms,
                      receipt_ms)
                 VALUES {}
                 ON CONFLICT (tenant_id, dedupe_key, link_id, provider_message_id)
                 DO UPDATE SET labels = excluded.labels,
                     receipt_ms = COALESCE(excluded.receipt_ms, held_sightings.receipt_ms)",
                p.rows(batch.len(), 7)
            ));
            for ((dedupe_key, provider_message_id), labels, receipt_ms) in batch {
                query = query
                    .bind(self.tenant)
                    .bind(link.0)
                    .bind(dedupe_key.as_str())
                    .bind(provider_message_id.as_str())
                    .bind(labels.as_str())
                    .bind(seen_ms)
                    .bind(*receipt_ms);
            }
            query.execute(&mut **self.tx).await?;
        }
        Ok(())
    }

    /// Lowers the time of each receipt-timed activity of the page to the earliest receipt
    /// of its copies in this commit (`page` by dedupe key, `held` by activity) when that
    /// is earlier than the stored time; never raises one, never touches a time from a
    /// Date header (the triggers would refuse either). Returns the activities captured
    /// before this page whose time moved: their pairs need a recompute. The times of
    /// activities this page inserted are corrected in `activities`, so their first
    /// contribution to relationships is already at the right time.
    async fn lower_receipt_times(
        &mut self,
        activities: &mut ActivityIds<'p>,
        page: &HashMap<&str, i64>,
        held: &HashMap<i64, i64>,
    ) -> Result<BTreeSet<i64>, StoreError> {
        let mut earliest: BTreeMap<i64, i64> = BTreeMap::new();
        let by_key = page
            .iter()
            .filter_map(|(key, ms)| Some((activities.get(key)?, *ms)));
        for (activity, ms) in by_key.chain(held.iter().map(|(a, ms)| (*a, *ms))) {
            let time = earliest.entry(activity).or_insert(ms);
            *time = (*time).min(ms);
        }
        let mut lower: Vec<(i64, i64)> = Vec::new();
        for inserted in activities.inserted.values_mut() {
            let Some(&ms) = earliest.get(&inserted.id) else {
                continue;
            };
            if inserted.extraction.time_from_receipt() && inserted.time_ms.is_some_and(|t| ms < t) {
                inserted.time_ms = Some(ms);
                lower.push((inserted.id, ms));
            }
        }
        let known: BTreeSet<i64> = activities.known.values().copied().collect();
        let candidates: Vec<i64> = earliest
            .keys()
            .copied()
            .filter(|id| known.contains(id))
            .collect();
        let mut retimed = BTreeSet::new();
        for query in self.lookup(&candidates, |tenant, key| {
            format!(
                "SELECT id, time_ms FROM activities
                     WHERE tenant_id = {tenant} AND time_from_receipt = 1 AND id {key}"
            )
        })? {
            for row in query.fetch_all(&mut **self.tx).await? {
                let id: i64 = row.try_get(0)?;
                let Some(stored) = row.try_get::<Option<i64>, _>(1)? else {
                    continue;
                };
                if let Some(&ms) = earliest.get(&id).filter(|ms| **ms < stored) {
                    lower.push((id, ms));
                    retimed.insert(id);
                }
            }
        }
        // Rare (a Date-less message whose earlier copy arrives later): one statement each.
        for (id, ms) in lower {
            sqlx::query("UPDATE activities SET time_ms = $3 WHERE tenant_id = $1 AND id = $2")
                .bind(self.tenant)
                .bind(id)
                .bind(ms)
                .execute(&mut **self.tx)
                .await?;
        }
        Ok(retimed)
    }

    /// Every (member, contact) pair sharing one of `activities`.
    async fn touched_pairs(
        &mut self,
        activities: &BTreeSet<i64>,
    ) -> Result<BTreeSet<(i64, i64)>, StoreError> {
        let activities: Vec<i64> = activities.iter().copied().collect();
        let mut pairs = BTreeSet::new();
        for query in self.lookup(&activities, |tenant, key| {
            // The unary `+` (and no DISTINCT: the set dedupes) keep SQLite on the
            // activities' rows; it otherwise read the tenant's every member participant
            // through the member index, taking `IS NOT NULL` for a range on it.
            format!(
                "SELECT m.member_id, c.contact_id
                     FROM activity_participants m
                     JOIN activity_participants c
                       ON c.tenant_id = m.tenant_id AND c.activity_id = m.activity_id
                     WHERE m.tenant_id = {tenant} AND m.activity_id {key}
                       AND +m.member_id IS NOT NULL AND +c.contact_id IS NOT NULL"
            )
        })? {
            for row in query.fetch_all(&mut **self.tx).await? {
                pairs.insert((row.try_get(0)?, row.try_get(1)?));
            }
        }
        Ok(pairs)
    }
}

pub(crate) fn direction_name(direction: Direction) -> &'static str {
    match direction {
        Direction::Inbound => "inbound",
        Direction::Outbound => "outbound",
        Direction::Internal => "internal",
    }
}

pub(crate) fn role_name(role: Role) -> &'static str {
    match role {
        Role::From => "from",
        Role::To => "to",
        Role::Cc => "cc",
        Role::Bcc => "bcc",
    }
}

pub(crate) fn role_from_name(name: &str) -> Option<Role> {
    Some(match name {
        "from" => Role::From,
        "to" => Role::To,
        "cc" => Role::Cc,
        "bcc" => Role::Bcc,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_are_powers_of_two_up_to_the_maximum() {
        let items: Vec<usize> = (0..MAX_BATCH * 2 + 13).collect();
        let sizes: Vec<usize> = batches(&items).iter().map(|b| b.len()).collect();
        assert_eq!(sizes, vec![MAX_BATCH, MAX_BATCH, 8, 4, 1]);
        let rejoined: Vec<usize> = batches(&items).concat();
        assert_eq!(rejoined, items);
        assert!(batches::<usize>(&[]).is_empty());
    }

    #[test]
    fn placeholders_are_numbered_on_postgres_and_positional_on_sqlite() {
        let mut postgres = Params::new(Backend::Postgres);
        assert_eq!(postgres.one(), "$1");
        assert_eq!(postgres.rows(2, 2), "($2, $3), ($4, $5)");
        assert_eq!(postgres.list(2), "$6, $7");
        let mut sqlite = Params::new(Backend::Sqlite);
        assert_eq!(sqlite.rows(2, 2), "(?, ?), (?, ?)");
        assert_eq!(sqlite.list(3), "?, ?, ?");
    }
}
