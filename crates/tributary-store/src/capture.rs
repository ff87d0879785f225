//! Committing one page of captured messages: activities, participants, sightings,
//! contacts, companies, relationships and the cursor advance, in one transaction.

use crate::error::StoreError;
use crate::relationship::recompute_relationship;
use crate::store::{Backend, LinkId, Store, TenantId, now_ms};
use sha2::{Digest, Sha256};
use sqlx::{Any, Row, Transaction};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use tributary_core::{
    AddressClass, Decision, Direction, ExclusionReason, Extraction, Participant, Role,
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
    /// Captured activity is never changed: a message already known only gains the
    /// participants it lacked (a Bcc only the sender's copy carries), the sighting and
    /// its labels. Relationships of every (member, contact) pair the page touched are
    /// recomputed from SQL aggregates, so the order sightings arrive in does not matter.
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
        // keys, companies, contacts, then the relationships they recompute.
        let concurrent = self.backend() == Backend::Postgres;
        let mut writer = PageWriter {
            tx: &mut tx,
            tenant: tenant.as_str(),
            ids: HashMap::new(),
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
        writer.companies_and_contacts(page).await?;
        let mut summary = PageSummary::default();
        let mut touched = BTreeSet::new();
        for sighting in &page.sightings {
            if !sighting.extraction.is_captured() {
                if looks_internal_alone(&sighting.extraction)
                    && writer.attach_or_hold(link, sighting).await?
                {
                    summary.already_known += 1;
                } else {
                    summary.excluded += 1;
                }
                continue;
            }
            let (activity, added) = writer.activity(&sighting.extraction).await?;
            if added {
                summary.added += 1;
                writer
                    .attach_held(activity, sighting.extraction.dedupe_key.as_str())
                    .await?;
            } else {
                summary.already_known += 1;
            }
            writer.participants(activity, &sighting.extraction).await?;
            writer
                .sighting(
                    activity,
                    link,
                    &sighting.provider_message_id,
                    &sighting.labels,
                )
                .await?;
            touched.insert(activity);
        }
        let pairs = writer.touched_pairs(&touched).await?;
        if concurrent {
            // Without the lock two commits adding activities to one pair could each
            // recompute it without the other's (READ COMMITTED) and store a count short.
            let keys = pairs.iter().map(|(member, contact)| {
                lock_key(&[
                    tenant.as_str(),
                    "relationship",
                    &member.to_string(),
                    &contact.to_string(),
                ])
            });
            writer.advisory_locks(keys.collect()).await?;
        }
        for (member, contact) in pairs {
            recompute_relationship(writer.tx, writer.tenant, member, contact).await?;
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

/// A stable 64-bit PostgreSQL advisory lock key for `parts` (the same in every process
/// and release, unlike `std`'s hasher).
fn lock_key(parts: &[&str]) -> i64 {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    let digest = hasher.finalize();
    let mut first = [0; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(first)
}

async fn ensure_link(
    tx: &mut Transaction<'static, Any>,
    tenant: &TenantId,
    link: LinkId,
) -> Result<(), StoreError> {
    let found = sqlx::query("SELECT id FROM mailbox_links WHERE tenant_id = $1 AND id = $2")
        .bind(tenant.as_str())
        .bind(link.0)
        .fetch_optional(&mut **tx)
        .await?;
    match found {
        Some(_) => Ok(()),
        None => Err(StoreError::UnknownLink {
            tenant: tenant.0.clone(),
            link: link.0,
        }),
    }
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

/// Where an address resolves to, remembered for the rest of the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Lookup<'a> {
    Member(&'a str),
    Contact(&'a str),
    Company(&'a str),
}

struct PageWriter<'t, 'p> {
    tx: &'t mut Transaction<'static, Any>,
    tenant: &'t str,
    ids: HashMap<Lookup<'p>, Option<i64>>,
}

impl<'p> PageWriter<'_, 'p> {
    /// The activity's id, inserting it when new; `true` when it was inserted.
    async fn activity(&mut self, extraction: &Extraction) -> Result<(i64, bool), StoreError> {
        let inserted = sqlx::query(
            "INSERT INTO activities
                 (tenant_id, dedupe_key, thread_key, time_ms, direction, subject, is_reply, captured_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (tenant_id, dedupe_key) DO NOTHING
             RETURNING id",
        )
        .bind(self.tenant)
        .bind(extraction.dedupe_key.as_str())
        .bind(extraction.thread_key.as_ref().map(|k| k.as_str().to_owned()))
        .bind(extraction.time_ms)
        .bind(direction_name(extraction.direction))
        .bind(extraction.subject.clone())
        .bind(i64::from(extraction.is_reply))
        .bind(now_ms())
        .fetch_optional(&mut **self.tx)
        .await?;
        if let Some(row) = inserted {
            return Ok((row.try_get(0)?, true));
        }
        let id = sqlx::query("SELECT id FROM activities WHERE tenant_id = $1 AND dedupe_key = $2")
            .bind(self.tenant)
            .bind(extraction.dedupe_key.as_str())
            .fetch_one(&mut **self.tx)
            .await?
            .try_get(0)?;
        Ok((id, false))
    }

    /// Inserts the participants the activity does not have yet.
    async fn participants(
        &mut self,
        activity: i64,
        extraction: &'p Extraction,
    ) -> Result<(), StoreError> {
        for contact in &extraction.contacts {
            self.contact(contact.address.as_str(), contact.company.as_deref())
                .await?;
        }
        for participant in &extraction.participants {
            let (kind, member, contact) = self.resolve(participant).await?;
            sqlx::query(
                "INSERT INTO activity_participants
                     (tenant_id, activity_id, address, role, kind, member_id, contact_id)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (tenant_id, activity_id, address, role) DO NOTHING",
            )
            .bind(self.tenant)
            .bind(activity)
            .bind(participant.address.as_str())
            .bind(role_name(participant.role))
            .bind(kind)
            .bind(member)
            .bind(contact)
            .execute(&mut **self.tx)
            .await?;
        }
        Ok(())
    }

    async fn resolve(
        &mut self,
        participant: &'p Participant,
    ) -> Result<(&'static str, Option<i64>, Option<i64>), StoreError> {
        Ok(match &participant.class {
            AddressClass::Member { member } => {
                ("member", self.member(member.as_str()).await?, None)
            }
            AddressClass::Internal => ("internal", None, None),
            AddressClass::External => (
                "external",
                None,
                self.contact(participant.address.as_str(), None).await?,
            ),
        })
    }

    /// The member owning `address`; none when the store does not know that member.
    async fn member(&mut self, address: &'p str) -> Result<Option<i64>, StoreError> {
        if let Some(id) = self.ids.get(&Lookup::Member(address)) {
            return Ok(*id);
        }
        let id = sqlx::query(
            "SELECT member_id FROM member_addresses WHERE tenant_id = $1 AND address = $2",
        )
        .bind(self.tenant)
        .bind(address)
        .fetch_optional(&mut **self.tx)
        .await?
        .map(|row| row.try_get(0))
        .transpose()?;
        self.ids.insert(Lookup::Member(address), id);
        Ok(id)
    }

    /// The contact with `address`, created (with its company) when missing.
    async fn contact(
        &mut self,
        address: &'p str,
        company: Option<&'p str>,
    ) -> Result<Option<i64>, StoreError> {
        if let Some(id) = self.ids.get(&Lookup::Contact(address)) {
            return Ok(*id);
        }
        let company_id = match company {
            Some(domain) => Some(self.company(domain).await?),
            None => None,
        };
        sqlx::query(
            "INSERT INTO contacts (tenant_id, address, company_id) VALUES ($1, $2, $3)
             ON CONFLICT (tenant_id, address) DO NOTHING",
        )
        .bind(self.tenant)
        .bind(address)
        .bind(company_id)
        .execute(&mut **self.tx)
        .await?;
        let id: i64 = sqlx::query("SELECT id FROM contacts WHERE tenant_id = $1 AND address = $2")
            .bind(self.tenant)
            .bind(address)
            .fetch_one(&mut **self.tx)
            .await?
            .try_get(0)?;
        self.ids.insert(Lookup::Contact(address), Some(id));
        Ok(Some(id))
    }

    async fn company(&mut self, domain: &'p str) -> Result<i64, StoreError> {
        if let Some(Some(id)) = self.ids.get(&Lookup::Company(domain)) {
            return Ok(*id);
        }
        sqlx::query(
            "INSERT INTO companies (tenant_id, domain) VALUES ($1, $2)
             ON CONFLICT (tenant_id, domain) DO NOTHING",
        )
        .bind(self.tenant)
        .bind(domain)
        .execute(&mut **self.tx)
        .await?;
        let id: i64 = sqlx::query("SELECT id FROM companies WHERE tenant_id = $1 AND domain = $2")
            .bind(self.tenant)
            .bind(domain)
            .fetch_one(&mut **self.tx)
            .await?
            .try_get(0)?;
        self.ids.insert(Lookup::Company(domain), Some(id));
        Ok(id)
    }

    /// Takes PostgreSQL transaction-scoped advisory locks, in ascending key order so
    /// that concurrent commits never wait on each other in a cycle.
    async fn advisory_locks(&mut self, keys: BTreeSet<i64>) -> Result<(), StoreError> {
        for key in keys {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(key)
                .execute(&mut **self.tx)
                .await?;
        }
        Ok(())
    }

    /// Creates the companies and contacts the page's captured sightings name, each
    /// sorted, so that concurrent commits lock their rows in one order. An address
    /// keeps the company it is first named with.
    async fn companies_and_contacts(&mut self, page: &'p CapturePage) -> Result<(), StoreError> {
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
        let companies: BTreeSet<&'p str> = contacts.values().flatten().copied().collect();
        for domain in companies {
            self.company(domain).await?;
        }
        for (address, company) in contacts {
            self.contact(address, company).await?;
        }
        Ok(())
    }

    /// The id of the activity with `dedupe_key`, if captured.
    async fn existing_activity(&mut self, dedupe_key: &str) -> Result<Option<i64>, StoreError> {
        sqlx::query("SELECT id FROM activities WHERE tenant_id = $1 AND dedupe_key = $2")
            .bind(self.tenant)
            .bind(dedupe_key)
            .fetch_optional(&mut **self.tx)
            .await?
            .map(|row| row.try_get(0))
            .transpose()
            .map_err(StoreError::from)
    }

    /// Stores an internal-looking copy as a sighting of its activity when that is
    /// captured (`true`), else holds it until it is.
    async fn attach_or_hold(
        &mut self,
        link: LinkId,
        sighting: &CapturedSighting,
    ) -> Result<bool, StoreError> {
        let dedupe_key = sighting.extraction.dedupe_key.as_str();
        if let Some(activity) = self.existing_activity(dedupe_key).await? {
            self.sighting(
                activity,
                link,
                &sighting.provider_message_id,
                &sighting.labels,
            )
            .await?;
            return Ok(true);
        }
        let known = sqlx::query(
            "SELECT labels FROM held_sightings
             WHERE tenant_id = $1 AND dedupe_key = $2 AND link_id = $3 AND provider_message_id = $4",
        )
        .bind(self.tenant)
        .bind(dedupe_key)
        .bind(link.0)
        .bind(&sighting.provider_message_id)
        .fetch_optional(&mut **self.tx)
        .await?;
        let mut labels: BTreeSet<String> = sighting.labels.iter().cloned().collect();
        if let Some(row) = known {
            labels.extend(serde_json::from_str::<Vec<String>>(
                row.try_get::<&str, _>(0)?,
            )?);
        }
        sqlx::query(
            "INSERT INTO held_sightings
                 (tenant_id, dedupe_key, link_id, provider_message_id, labels, seen_ms)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (tenant_id, dedupe_key, link_id, provider_message_id)
             DO UPDATE SET labels = excluded.labels",
        )
        .bind(self.tenant)
        .bind(dedupe_key)
        .bind(link.0)
        .bind(&sighting.provider_message_id)
        .bind(serde_json::to_string(&labels)?)
        .bind(now_ms())
        .execute(&mut **self.tx)
        .await?;
        Ok(false)
    }

    /// Turns the copies held for `dedupe_key` into sightings of the just-captured
    /// `activity`.
    async fn attach_held(&mut self, activity: i64, dedupe_key: &str) -> Result<(), StoreError> {
        let held = sqlx::query(
            "SELECT link_id, provider_message_id, labels FROM held_sightings
             WHERE tenant_id = $1 AND dedupe_key = $2",
        )
        .bind(self.tenant)
        .bind(dedupe_key)
        .fetch_all(&mut **self.tx)
        .await?;
        if held.is_empty() {
            return Ok(());
        }
        for row in &held {
            let labels: Vec<String> = serde_json::from_str(row.try_get::<&str, _>(2)?)?;
            let provider_message_id: &str = row.try_get(1)?;
            self.sighting(
                activity,
                LinkId(row.try_get(0)?),
                provider_message_id,
                &labels,
            )
            .await?;
        }
        sqlx::query("DELETE FROM held_sightings WHERE tenant_id = $1 AND dedupe_key = $2")
            .bind(self.tenant)
            .bind(dedupe_key)
            .execute(&mut **self.tx)
            .await?;
        Ok(())
    }

    /// Records this copy; a copy seen again keeps the union of its labels.
    async fn sighting(
        &mut self,
        activity: i64,
        link: LinkId,
        provider_message_id: &str,
        labels: &[String],
    ) -> Result<(), StoreError> {
        let existing = sqlx::query(
            "SELECT labels FROM activity_sightings
             WHERE tenant_id = $1 AND activity_id = $2 AND link_id = $3 AND provider_message_id = $4",
        )
        .bind(self.tenant)
        .bind(activity)
        .bind(link.0)
        .bind(provider_message_id)
        .fetch_optional(&mut **self.tx)
        .await?;
        let mut labels: BTreeSet<String> = labels.iter().cloned().collect();
        let Some(row) = existing else {
            sqlx::query(
                "INSERT INTO activity_sightings
                     (tenant_id, activity_id, link_id, provider_message_id, labels, seen_ms)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(self.tenant)
            .bind(activity)
            .bind(link.0)
            .bind(provider_message_id)
            .bind(serde_json::to_string(&labels)?)
            .bind(now_ms())
            .execute(&mut **self.tx)
            .await?;
            return Ok(());
        };
        let known: BTreeSet<String> = serde_json::from_str(row.try_get::<&str, _>(0)?)?;
        if known.is_superset(&labels) {
            return Ok(());
        }
        labels.extend(known);
        sqlx::query(
            "UPDATE activity_sightings SET labels = $5
             WHERE tenant_id = $1 AND activity_id = $2 AND link_id = $3 AND provider_message_id = $4",
        )
        .bind(self.tenant)
        .bind(activity)
        .bind(link.0)
        .bind(provider_message_id)
        .bind(serde_json::to_string(&labels)?)
        .execute(&mut **self.tx)
        .await?;
        Ok(())
    }

    /// Every (member, contact) pair sharing one of `activities`.
    async fn touched_pairs(
        &mut self,
        activities: &BTreeSet<i64>,
    ) -> Result<BTreeSet<(i64, i64)>, StoreError> {
        let mut pairs = BTreeSet::new();
        for activity in activities {
            let rows = sqlx::query(
                "SELECT DISTINCT m.member_id, c.contact_id
                 FROM activity_participants m
                 JOIN activity_participants c
                   ON c.tenant_id = m.tenant_id AND c.activity_id = m.activity_id
                 WHERE m.tenant_id = $1 AND m.activity_id = $2
                   AND m.member_id IS NOT NULL AND c.contact_id IS NOT NULL",
            )
            .bind(self.tenant)
            .bind(*activity)
            .fetch_all(&mut **self.tx)
            .await?;
            for row in rows {
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
