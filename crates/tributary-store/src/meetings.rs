//! Meetings from calendars (migration 0020, docs/store.md "Meetings"): captured meetings
//! (immutable, one per `MeetingKey` across every calendar and provider), the calendars
//! that saw each, upcoming meetings per calendar (replaced on every sync), and each
//! link's calendar cursor and status, apart from its mail status.
//!
//! The engine judges every occurrence with core's `Extractor::meeting` and hands the
//! results to [`Store::commit_calendar_page`]; a meeting that was upcoming when last
//! synced and has ended since is captured by [`Store::promote_ended_meetings`] from what
//! was stored, since a provider reports no change when time merely passes.

use crate::api_reads::{Bindings, byte_order, split_page};
use crate::capture::{PageWriter, advisory_locks, direction_name};
use crate::error::StoreError;
use crate::links::LinkStatus;
use crate::store::{Backend, LinkId, MemberId, Store, TenantId, WriteTransaction, now_ms};
use crate::tx::{ensure_link, kind_name, lock_key};
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::query::Query;
use sqlx::{Any, AssertSqlSafe, Row, Transaction};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use tributary_core::{AddressClass, Meeting, MeetingStatus, Response};

/// Most meetings one read returns.
pub const MAX_MEETINGS_READ: u32 = 500;

/// One occurrence as one calendar (link) gives it, judged by core.
#[derive(Debug, Clone)]
pub struct CalendarSighting {
    pub meeting: Meeting,
    /// The provider's id of this copy (Google event id, Graph event id).
    pub provider_event_id: String,
}

/// What one committed calendar page changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CalendarSummary {
    /// Meetings captured for the first time.
    pub captured: u64,
    /// Ended meetings captured before (from another calendar or an earlier run).
    pub already_known: u64,
    /// Upcoming meetings written or replaced.
    pub upcoming: u64,
    /// Occurrences excluded (an upcoming copy of them, if any, removed).
    pub excluded: u64,
}

/// Whose meetings to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MeetingsOf {
    /// A contact, by normalized address.
    Contact(String),
    /// A company, by domain: every meeting with one of its people, large ones too.
    Company(String),
    /// A member: the meetings it took part in.
    Member(MemberId),
}

/// One person at a stored meeting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeetingParticipantView {
    pub address: String,
    pub name: Option<String>,
    pub organizer: bool,
    pub response: Response,
    /// `member`, `internal` or `external`.
    pub kind: String,
    pub took_part: bool,
}

/// A stored meeting, captured or upcoming.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeetingView {
    pub key: String,
    pub start_ms: i64,
    pub end_ms: i64,
    pub all_day: bool,
    /// `inbound`, `outbound` or `internal`.
    pub direction: String,
    pub title: Option<String>,
    pub private: bool,
    pub large: bool,
    pub participants: Vec<MeetingParticipantView>,
    /// The calendars (mailbox addresses) that saw it, sorted.
    pub calendars: Vec<String>,
}

/// A link's calendar stream: its status apart from mail's, and its cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarState {
    pub status: LinkStatus,
    pub provider_message: Option<String>,
    pub status_reason: Option<String>,
    /// Google sync token or Graph delta link; opaque.
    pub cursor: Option<String>,
    pub last_success_ms: Option<i64>,
}

/// A meeting's row, from core's judgement or from a stored upcoming meeting.
struct MeetingRow {
    key: String,
    ical_uid: String,
    original_start_ms: i64,
    start_ms: i64,
    end_ms: i64,
    all_day: bool,
    direction: String,
    title: Option<String>,
    private: bool,
    large: bool,
    provider_event_id: String,
    participants: Vec<ParticipantRow>,
}

struct ParticipantRow {
    address: String,
    name: Option<String>,
    organizer: bool,
    response: Response,
    kind: &'static str,
    /// The member's primary address, for a member.
    member_email: Option<String>,
    company: Option<String>,
    took_part: bool,
}

impl MeetingRow {
    fn from_meeting(meeting: &Meeting, provider_event_id: &str) -> Self {
        let participants = meeting
            .participants
            .iter()
            .map(|p| {
                let member = match &p.class {
                    AddressClass::Member { member } => Some(member.as_str().to_owned()),
                    _ => None,
                };
                let took_part = member
                    .as_deref()
                    .is_some_and(|m| meeting.took_part.iter().any(|t| t.as_str() == m))
                    && (p.organizer || p.attends());
                ParticipantRow {
                    address: p.address.as_str().to_owned(),
                    name: p.name.clone(),
                    organizer: p.organizer,
                    response: p.response,
                    kind: kind_name(&p.class),
                    company: meeting
                        .contacts
                        .iter()
                        .find(|c| c.address == p.address)
                        .and_then(|c| c.company.clone()),
                    member_email: member,
                    took_part,
                }
            })
            .collect();
        Self {
            key: meeting.key.as_str().to_owned(),
            ical_uid: meeting.ical_uid.clone(),
            original_start_ms: meeting.original_start_ms,
            start_ms: meeting.start_ms,
            end_ms: meeting.end_ms,
            all_day: meeting.all_day,
            direction: direction_name(meeting.direction).to_owned(),
            title: meeting.title.clone(),
            private: meeting.private,
            large: meeting.large,
            provider_event_id: provider_event_id.to_owned(),
            participants,
        }
    }
}

fn flag(value: bool) -> i64 {
    i64::from(value)
}

impl Store {
    /// Commits one page of a link's calendar: every ended meeting captured once (a known
    /// one only gains this calendar's sighting and the participants it lacked), every
    /// upcoming one written for this calendar in place of what it listed before, every
    /// excluded one (cancelled, declined…) removed from this calendar's upcoming
    /// meetings; then the calendar cursor, if given. One transaction.
    pub async fn commit_calendar_page(
        &self,
        tenant: &TenantId,
        link: LinkId,
        sightings: &[CalendarSighting],
        cursor: Option<&str>,
    ) -> Result<CalendarSummary, StoreError> {
        let mut tx = self.begin_calendar_write(tenant).await?;
        ensure_link(&mut tx, tenant, link).await?;
        let rows: Vec<MeetingRow> = sightings
            .iter()
            .map(|s| MeetingRow::from_meeting(&s.meeting, &s.provider_event_id))
            .collect();
        let captured = sightings
            .iter()
            .zip(&rows)
            .filter(|(s, _)| s.meeting.is_captured())
            .map(|(_, row)| row);
        let contacts = ensure_contacts(&mut tx, self.backend(), tenant, captured).await?;
        let mut summary = CalendarSummary::default();
        for (sighting, row) in sightings.iter().zip(&rows) {
            match sighting.meeting.status {
                MeetingStatus::Captured => {
                    remove_upcoming(&mut tx, tenant, link, &row.key, &row.provider_event_id)
                        .await?;
                    if capture(&mut tx, tenant, link, row, &contacts).await? {
                        summary.captured += 1;
                    } else {
                        summary.already_known += 1;
                    }
                }
                MeetingStatus::Upcoming => {
                    remove_upcoming(&mut tx, tenant, link, &row.key, &row.provider_event_id)
                        .await?;
                    insert_upcoming(&mut tx, tenant, link, row).await?;
                    summary.upcoming += 1;
                }
                MeetingStatus::Excluded { .. } => {
                    remove_upcoming(&mut tx, tenant, link, &row.key, &row.provider_event_id)
                        .await?;
                    summary.excluded += 1;
                }
            }
        }
        if let Some(cursor) = cursor {
            save_cursor(&mut tx, tenant, link, Some(cursor)).await?;
        }
        tx.commit().await?;
        Ok(summary)
    }

    /// Removes the upcoming meeting a provider event was in a link's calendar (the
    /// provider reported the event deleted, e.g. Graph `@removed`). True when there was
    /// one.
    pub async fn remove_upcoming_meeting(
        &self,
        tenant: &TenantId,
        link: LinkId,
        provider_event_id: &str,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        // No key: the event id alone names it.
        let removed = remove_upcoming(&mut tx, tenant, link, "", provider_event_id).await?;
        tx.commit().await?;
        Ok(removed)
    }

    /// Removes every upcoming meeting a link's calendar listed, before that calendar is
    /// listed again in full: what a listing no longer holds (deleted while no cursor
    /// followed the calendar) must not stay upcoming, nor be captured once it "ends".
    /// Returns how many were removed.
    pub async fn clear_upcoming_meetings(
        &self,
        tenant: &TenantId,
        link: LinkId,
    ) -> Result<u64, StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM upcoming_participants WHERE tenant_id = $1 AND link_id = $2")
            .bind(tenant.as_str())
            .bind(link.0)
            .execute(&mut **tx)
            .await?;
        let removed =
            sqlx::query("DELETE FROM upcoming_meetings WHERE tenant_id = $1 AND link_id = $2")
                .bind(tenant.as_str())
                .bind(link.0)
                .execute(&mut **tx)
                .await?
                .rows_affected();
        tx.commit().await?;
        Ok(removed)
    }

    /// Captures every upcoming meeting of the tenant that has ended by `now_ms`, from
    /// what its calendars last listed, and removes it from the upcoming ones. Returns the
    /// number of meetings newly captured.
    pub async fn promote_ended_meetings(
        &self,
        tenant: &TenantId,
        now_ms: i64,
    ) -> Result<u64, StoreError> {
        let mut tx = self.begin_calendar_write(tenant).await?;
        let ended = sqlx::query(
            "SELECT link_id, meeting_key, ical_uid, original_start_ms, start_ms, end_ms,
                    all_day, direction, title, private, large, provider_event_id
             FROM upcoming_meetings WHERE tenant_id = $1 AND end_ms <= $2
             ORDER BY meeting_key, link_id",
        )
        .bind(tenant.as_str())
        .bind(now_ms)
        .fetch_all(&mut **tx)
        .await?;
        let mut meetings = Vec::with_capacity(ended.len());
        for row in ended {
            let link = LinkId(row.try_get(0)?);
            let mut meeting = MeetingRow {
                key: row.try_get(1)?,
                ical_uid: row.try_get(2)?,
                original_start_ms: row.try_get(3)?,
                start_ms: row.try_get(4)?,
                end_ms: row.try_get(5)?,
                all_day: row.try_get::<i64, _>(6)? != 0,
                direction: row.try_get(7)?,
                title: row.try_get(8)?,
                private: row.try_get::<i64, _>(9)? != 0,
                large: row.try_get::<i64, _>(10)? != 0,
                provider_event_id: row.try_get(11)?,
                participants: Vec::new(),
            };
            meeting.participants =
                upcoming_participants(&mut tx, tenant, link, &meeting.key).await?;
            meetings.push((link, meeting));
        }
        let contacts = ensure_contacts(
            &mut tx,
            self.backend(),
            tenant,
            meetings.iter().map(|(_, m)| m),
        )
        .await?;
        let mut captured = 0;
        for (link, meeting) in &meetings {
            captured += u64::from(capture(&mut tx, tenant, *link, meeting, &contacts).await?);
            remove_upcoming(
                &mut tx,
                tenant,
                *link,
                &meeting.key,
                &meeting.provider_event_id,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(captured)
    }

    /// Captured meetings of a contact, company or member, latest first, at most `limit`
    /// (bounded by [`MAX_MEETINGS_READ`]).
    pub async fn meetings_of(
        &self,
        tenant: &TenantId,
        of: &MeetingsOf,
        limit: u32,
    ) -> Result<Vec<MeetingView>, StoreError> {
        let (condition, value) = captured_condition(of);
        let sql = format!(
            "SELECT m.id, m.meeting_key, m.start_ms, m.end_ms, m.all_day, m.direction,
                    m.title, m.private, m.large
             FROM meetings m WHERE m.tenant_id = $1 AND m.id IN ({condition})
             ORDER BY m.start_ms DESC, m.meeting_key LIMIT $3"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(tenant.as_str())
            .bind(value)
            .bind(i64::from(limit.min(MAX_MEETINGS_READ)))
            .fetch_all(&self.pool)
            .await?;
        let mut meetings = Vec::with_capacity(rows.len());
        for row in rows {
            let id: i64 = row.try_get(0)?;
            let mut view = meeting_view(&row, 1)?;
            view.participants = self.captured_participants(tenant, id).await?;
            view.calendars = self.calendars_of(tenant, id).await?;
            meetings.push(view);
        }
        Ok(meetings)
    }

    /// Upcoming meetings of a contact, company or member that have not ended by
    /// `now_ms`, soonest first, each meeting once (as its first calendar, by link id,
    /// lists it, with every calendar that does), at most `limit`.
    pub async fn upcoming_meetings_of(
        &self,
        tenant: &TenantId,
        of: &MeetingsOf,
        now_ms: i64,
        limit: u32,
    ) -> Result<Vec<MeetingView>, StoreError> {
        let (condition, value) = upcoming_condition(of);
        let sql = format!(
            "SELECT u.link_id, u.meeting_key, u.start_ms, u.end_ms, u.all_day, u.direction,
                    u.title, u.private, u.large
             FROM upcoming_meetings u
             WHERE u.tenant_id = $1 AND u.end_ms > $3 AND u.meeting_key IN ({condition})
             ORDER BY u.start_ms, u.meeting_key, u.link_id"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(tenant.as_str())
            .bind(value)
            .bind(now_ms)
            .fetch_all(&self.pool)
            .await?;
        let mut seen: BTreeSet<String> = BTreeSet::new();
        let mut meetings: Vec<MeetingView> = Vec::new();
        let limit = limit.min(MAX_MEETINGS_READ) as usize;
        for row in rows {
            let key: String = row.try_get(1)?;
            if !seen.insert(key.clone()) {
                continue;
            }
            if meetings.len() == limit {
                break;
            }
            let link = LinkId(row.try_get(0)?);
            let mut view = meeting_view(&row, 1)?;
            view.participants = self.upcoming_participant_views(tenant, link, &key).await?;
            view.calendars = self.upcoming_calendars(tenant, &key).await?;
            meetings.push(view);
        }
        Ok(meetings)
    }

    /// The latest captured meeting of a contact, company or member.
    pub async fn last_meeting(
        &self,
        tenant: &TenantId,
        of: &MeetingsOf,
    ) -> Result<Option<MeetingView>, StoreError> {
        Ok(self.meetings_of(tenant, of, 1).await?.into_iter().next())
    }

    /// The soonest upcoming meeting of a contact, company or member not ended by `now_ms`.
    pub async fn next_meeting(
        &self,
        tenant: &TenantId,
        of: &MeetingsOf,
        now_ms: i64,
    ) -> Result<Option<MeetingView>, StoreError> {
        Ok(self
            .upcoming_meetings_of(tenant, of, now_ms, 1)
            .await?
            .into_iter()
            .next())
    }

    /// Number of captured meetings of the tenant.
    pub async fn count_meetings(&self, tenant: &TenantId) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) FROM meetings WHERE tenant_id = $1")
            .bind(tenant.as_str())
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get(0)?)
    }

    /// A link's calendar state; `pending` without a cursor before its first sync.
    pub async fn calendar_state(
        &self,
        tenant: &TenantId,
        link: LinkId,
    ) -> Result<CalendarState, StoreError> {
        let row = sqlx::query(
            "SELECT status, provider_message, status_reason, cursor, last_success_ms
             FROM calendar_links WHERE tenant_id = $1 AND link_id = $2",
        )
        .bind(tenant.as_str())
        .bind(link.0)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(CalendarState {
                status: LinkStatus::Pending,
                provider_message: None,
                status_reason: None,
                cursor: None,
                last_success_ms: None,
            });
        };
        let status: String = row.try_get(0)?;
        Ok(CalendarState {
            status: LinkStatus::from_name(&status).unwrap_or(LinkStatus::LinkageError),
            provider_message: row.try_get(1)?,
            status_reason: row.try_get(2)?,
            cursor: row.try_get(3)?,
            last_success_ms: row.try_get(4)?,
        })
    }

    /// Sets a link's calendar status (its mail status is untouched), with the
    /// provider's message and cause code for an error; `idle` records a success.
    pub async fn set_calendar_status(
        &self,
        tenant: &TenantId,
        link: LinkId,
        status: LinkStatus,
        provider_message: Option<&str>,
        status_reason: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        ensure_link(&mut tx, tenant, link).await?;
        let now = now_ms();
        let success = (status == LinkStatus::Idle).then_some(now);
        sqlx::query(
            "INSERT INTO calendar_links
                 (tenant_id, link_id, status, provider_message, status_reason, last_success_ms, updated_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (tenant_id, link_id) DO UPDATE SET
                 status = excluded.status, provider_message = excluded.provider_message,
                 status_reason = excluded.status_reason,
                 last_success_ms = COALESCE(excluded.last_success_ms, calendar_links.last_success_ms),
                 updated_ms = excluded.updated_ms",
        )
        .bind(tenant.as_str())
        .bind(link.0)
        .bind(status.as_str())
        .bind(provider_message)
        .bind(status_reason)
        .bind(success)
        .bind(now)
        .execute(&mut **tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Forgets a link's calendar cursor (the provider said it is gone): the next run is
    /// a full listing, which captures nothing twice.
    pub async fn clear_calendar_cursor(
        &self,
        tenant: &TenantId,
        link: LinkId,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        ensure_link(&mut tx, tenant, link).await?;
        save_cursor(&mut tx, tenant, link, None).await?;
        tx.commit().await?;
        Ok(())
    }

    /// A write transaction for the tenant's meetings. SQLite has one writer; on
    /// PostgreSQL the tenant's calendar commits take turns (an advisory lock), since two
    /// pages inserting the same meetings in different orders would wait on each other.
    async fn begin_calendar_write(
        &self,
        tenant: &TenantId,
    ) -> Result<WriteTransaction, StoreError> {
        let mut tx = self.begin_write().await?;
        if self.backend() == Backend::Postgres {
            advisory_locks(
                &mut tx,
                BTreeSet::from([lock_key(&[tenant.as_str(), "meetings"])]),
            )
            .await?;
        }
        Ok(tx)
    }

    async fn captured_participants(
        &self,
        tenant: &TenantId,
        meeting: i64,
    ) -> Result<Vec<MeetingParticipantView>, StoreError> {
        let query = sqlx::query(
            "SELECT address, name, organizer, response, kind, took_part
             FROM meeting_participants WHERE tenant_id = $1 AND meeting_id = $2
             ORDER BY organizer DESC, address",
        )
        .bind(tenant.as_str())
        .bind(meeting);
        self.participant_views(query).await
    }

    async fn calendars_of(
        &self,
        tenant: &TenantId,
        meeting: i64,
    ) -> Result<Vec<String>, StoreError> {
        let query = sqlx::query(
            "SELECT l.mailbox FROM meeting_sightings s
             JOIN mailbox_links l ON l.tenant_id = s.tenant_id AND l.id = s.link_id
             WHERE s.tenant_id = $1 AND s.meeting_id = $2 ORDER BY l.mailbox",
        )
        .bind(tenant.as_str())
        .bind(meeting);
        self.mailboxes(query).await
    }

    async fn upcoming_participant_views(
        &self,
        tenant: &TenantId,
        link: LinkId,
        key: &str,
    ) -> Result<Vec<MeetingParticipantView>, StoreError> {
        let query = sqlx::query(
            "SELECT address, name, organizer, response, kind, took_part
             FROM upcoming_participants
             WHERE tenant_id = $1 AND link_id = $2 AND meeting_key = $3
             ORDER BY organizer DESC, address",
        )
        .bind(tenant.as_str())
        .bind(link.0)
        .bind(key);
        self.participant_views(query).await
    }

    async fn upcoming_calendars(
        &self,
        tenant: &TenantId,
        key: &str,
    ) -> Result<Vec<String>, StoreError> {
        let query = sqlx::query(
            "SELECT l.mailbox FROM upcoming_meetings u
             JOIN mailbox_links l ON l.tenant_id = u.tenant_id AND l.id = u.link_id
             WHERE u.tenant_id = $1 AND u.meeting_key = $2 ORDER BY l.mailbox",
        )
        .bind(tenant.as_str())
        .bind(key);
        self.mailboxes(query).await
    }

    /// The participant views a bound query of (address, name, organizer, response,
    /// kind, took part) rows selects.
    async fn participant_views(
        &self,
        query: Query<'_, Any, AnyArguments>,
    ) -> Result<Vec<MeetingParticipantView>, StoreError> {
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter().map(participant_view).collect()
    }

    /// The calendars (mailboxes) a bound query of one text column selects.
    async fn mailboxes(
        &self,
        query: Query<'_, Any, AnyArguments>,
    ) -> Result<Vec<String>, StoreError> {
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }
}

/// The subquery of captured meeting ids for `of` (placeholder `$2`).
fn captured_condition(of: &MeetingsOf) -> (&'static str, String) {
    match of {
        MeetingsOf::Contact(address) => (
            "SELECT p.meeting_id FROM meeting_participants p
             WHERE p.tenant_id = $1 AND p.address = $2",
            address.clone(),
        ),
        MeetingsOf::Company(domain) => (
            "SELECT p.meeting_id FROM meeting_participants p
             JOIN contacts c ON c.tenant_id = p.tenant_id AND c.id = p.contact_id
             JOIN companies co ON co.tenant_id = c.tenant_id AND co.id = c.company_id
             WHERE p.tenant_id = $1 AND co.domain = $2",
            domain.clone(),
        ),
        // The member id is bound as text: both backends compare it with the column.
        MeetingsOf::Member(member) => (
            "SELECT p.meeting_id FROM meeting_participants p
             WHERE p.tenant_id = $1 AND p.took_part = 1
               AND p.member_id = CAST($2 AS BIGINT)",
            member.0.to_string(),
        ),
    }
}

/// The subquery of upcoming meeting keys for `of` (placeholder `$2`).
fn upcoming_condition(of: &MeetingsOf) -> (&'static str, String) {
    match of {
        MeetingsOf::Contact(address) => (
            "SELECT p.meeting_key FROM upcoming_participants p
             WHERE p.tenant_id = $1 AND p.address = $2",
            address.clone(),
        ),
        MeetingsOf::Company(domain) => (
            "SELECT p.meeting_key FROM upcoming_participants p
             WHERE p.tenant_id = $1 AND p.company = $2",
            domain.clone(),
        ),
        MeetingsOf::Member(member) => (
            "SELECT p.meeting_key FROM upcoming_participants p
             JOIN members m ON m.tenant_id = p.tenant_id AND m.email = p.member_email
             WHERE p.tenant_id = $1 AND p.took_part = 1 AND m.id = CAST($2 AS BIGINT)",
            member.0.to_string(),
        ),
    }
}

/// A view of columns `from..` (key, start, end, all-day, direction, title, private,
/// large), without participants and calendars.
fn meeting_view(row: &AnyRow, from: usize) -> Result<MeetingView, StoreError> {
    Ok(MeetingView {
        key: row.try_get(from)?,
        start_ms: row.try_get(from + 1)?,
        end_ms: row.try_get(from + 2)?,
        all_day: row.try_get::<i64, _>(from + 3)? != 0,
        direction: row.try_get(from + 4)?,
        title: row.try_get(from + 5)?,
        private: row.try_get::<i64, _>(from + 6)? != 0,
        large: row.try_get::<i64, _>(from + 7)? != 0,
        participants: Vec::new(),
        calendars: Vec::new(),
    })
}

fn participant_view(row: &AnyRow) -> Result<MeetingParticipantView, StoreError> {
    let response: String = row.try_get(3)?;
    Ok(MeetingParticipantView {
        address: row.try_get(0)?,
        name: row.try_get(1)?,
        organizer: row.try_get::<i64, _>(2)? != 0,
        response: Response::parse(&response).unwrap_or_default(),
        kind: row.try_get(4)?,
        took_part: row.try_get::<i64, _>(5)? != 0,
    })
}

/// Creates the contacts (and companies) of the external participants of `meetings`
/// before anything else, as a mail page does (the same writer): commits that share
/// contacts then never wait on each other in a cycle. Returns their ids by address.
async fn ensure_contacts<'m>(
    tx: &mut Transaction<'static, Any>,
    backend: Backend,
    tenant: &TenantId,
    meetings: impl Iterator<Item = &'m MeetingRow>,
) -> Result<HashMap<&'m str, i64>, StoreError> {
    let mut contacts: BTreeMap<&'m str, Option<&'m str>> = BTreeMap::new();
    for participant in meetings.flat_map(|m| &m.participants) {
        if participant.kind == "external" {
            contacts
                .entry(&participant.address)
                .or_insert(participant.company.as_deref());
        }
    }
    PageWriter::new(tx, tenant.as_str(), backend)
        .contacts(contacts)
        .await
}

async fn save_cursor(
    tx: &mut Transaction<'static, Any>,
    tenant: &TenantId,
    link: LinkId,
    cursor: Option<&str>,
) -> Result<(), StoreError> {
    let now = now_ms();
    sqlx::query(
        "INSERT INTO calendar_links (tenant_id, link_id, cursor, cursor_updated_ms, updated_ms)
         VALUES ($1, $2, $3, $4, $4)
         ON CONFLICT (tenant_id, link_id) DO UPDATE SET
             cursor = excluded.cursor, cursor_updated_ms = excluded.cursor_updated_ms",
    )
    .bind(tenant.as_str())
    .bind(link.0)
    .bind(cursor)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Binds a meeting's own columns in the order both `meetings` and `upcoming_meetings`
/// list them after its key: iCalendar UID, original start, start, end, all-day,
/// direction, title, private, large.
fn bind_meeting<'q>(
    query: Query<'q, Any, AnyArguments>,
    meeting: &'q MeetingRow,
) -> Query<'q, Any, AnyArguments> {
    query
        .bind(&meeting.ical_uid)
        .bind(meeting.original_start_ms)
        .bind(meeting.start_ms)
        .bind(meeting.end_ms)
        .bind(flag(meeting.all_day))
        .bind(&meeting.direction)
        .bind(&meeting.title)
        .bind(flag(meeting.private))
        .bind(flag(meeting.large))
}

/// Captures a meeting seen by `link`: inserts it unless known, adds the participants it
/// lacks and this calendar's sighting. True when the meeting is new.
async fn capture(
    tx: &mut Transaction<'static, Any>,
    tenant: &TenantId,
    link: LinkId,
    meeting: &MeetingRow,
    contacts: &HashMap<&str, i64>,
) -> Result<bool, StoreError> {
    let query = sqlx::query(
        "INSERT INTO meetings (tenant_id, meeting_key, ical_uid, original_start_ms, start_ms,
             end_ms, all_day, direction, title, private, large, captured_ms)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
         ON CONFLICT (tenant_id, meeting_key) DO NOTHING",
    )
    .bind(tenant.as_str())
    .bind(&meeting.key);
    let inserted = bind_meeting(query, meeting)
        .bind(now_ms())
        .execute(&mut **tx)
        .await?
        .rows_affected()
        > 0;
    let id: i64 = sqlx::query("SELECT id FROM meetings WHERE tenant_id = $1 AND meeting_key = $2")
        .bind(tenant.as_str())
        .bind(&meeting.key)
        .fetch_one(&mut **tx)
        .await?
        .try_get(0)?;
    for participant in &meeting.participants {
        insert_participant(tx, tenant, id, participant, contacts).await?;
    }
    sqlx::query(
        "INSERT INTO meeting_sightings (tenant_id, meeting_id, link_id, provider_event_id, seen_ms)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (tenant_id, meeting_id, link_id) DO NOTHING",
    )
    .bind(tenant.as_str())
    .bind(id)
    .bind(link.0)
    .bind(&meeting.provider_event_id)
    .bind(now_ms())
    .execute(&mut **tx)
    .await?;
    Ok(inserted)
}

/// One participant of a captured meeting, unless it has it already; an external one
/// refers to its contact (created beforehand, in `contacts`), a member's address finds
/// its member row.
async fn insert_participant(
    tx: &mut Transaction<'static, Any>,
    tenant: &TenantId,
    meeting: i64,
    participant: &ParticipantRow,
    contacts: &HashMap<&str, i64>,
) -> Result<(), StoreError> {
    let contact = match participant.kind {
        "external" => contacts.get(participant.address.as_str()).copied(),
        _ => None,
    };
    let member: Option<i64> = match participant.kind {
        "member" => sqlx::query(
            "SELECT member_id FROM member_addresses WHERE tenant_id = $1 AND address = $2",
        )
        .bind(tenant.as_str())
        .bind(&participant.address)
        .fetch_optional(&mut **tx)
        .await?
        .map(|row| row.try_get(0))
        .transpose()?,
        _ => None,
    };
    // A member the store does not know (yet) is kept as the tenant's side, unattributed.
    let kind = if participant.kind == "member" && member.is_none() {
        "internal"
    } else {
        participant.kind
    };
    sqlx::query(
        "INSERT INTO meeting_participants (tenant_id, meeting_id, address, name, organizer,
             response, kind, member_id, contact_id, took_part)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (tenant_id, meeting_id, address) DO NOTHING",
    )
    .bind(tenant.as_str())
    .bind(meeting)
    .bind(&participant.address)
    .bind(&participant.name)
    .bind(flag(participant.organizer))
    .bind(participant.response.as_str())
    .bind(kind)
    .bind(member)
    .bind(contact)
    .bind(flag(participant.took_part && member.is_some()))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Removes a link's upcoming copy of a meeting: the one with this key, and the one this
/// provider event was before (a single event that moved has a new key, its start).
async fn remove_upcoming(
    tx: &mut Transaction<'static, Any>,
    tenant: &TenantId,
    link: LinkId,
    key: &str,
    provider_event_id: &str,
) -> Result<bool, StoreError> {
    // Participants first, so neither backend depends on the foreign key's cascade.
    let statements = [
        "DELETE FROM upcoming_participants
         WHERE tenant_id = $1 AND link_id = $2 AND meeting_key IN (
             SELECT meeting_key FROM upcoming_meetings
             WHERE tenant_id = $1 AND link_id = $2
               AND (meeting_key = $3 OR provider_event_id = $4))",
        "DELETE FROM upcoming_meetings WHERE tenant_id = $1 AND link_id = $2
             AND (meeting_key = $3 OR provider_event_id = $4)",
    ];
    let mut removed = 0;
    for sql in statements {
        removed = sqlx::query(sql)
            .bind(tenant.as_str())
            .bind(link.0)
            .bind(key)
            .bind(provider_event_id)
            .execute(&mut **tx)
            .await?
            .rows_affected();
    }
    // The last statement's count: the meetings removed, not their participants.
    Ok(removed > 0)
}

async fn insert_upcoming(
    tx: &mut Transaction<'static, Any>,
    tenant: &TenantId,
    link: LinkId,
    meeting: &MeetingRow,
) -> Result<(), StoreError> {
    let query = sqlx::query(
        "INSERT INTO upcoming_meetings (tenant_id, link_id, meeting_key, ical_uid,
             original_start_ms, start_ms, end_ms, all_day, direction, title, private, large,
             provider_event_id, updated_ms)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(tenant.as_str())
    .bind(link.0)
    .bind(&meeting.key);
    bind_meeting(query, meeting)
        .bind(&meeting.provider_event_id)
        .bind(now_ms())
        .execute(&mut **tx)
        .await?;
    for p in &meeting.participants {
        sqlx::query(
            "INSERT INTO upcoming_participants (tenant_id, link_id, meeting_key, address, name,
                 organizer, response, kind, member_email, company, took_part)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(tenant.as_str())
        .bind(link.0)
        .bind(&meeting.key)
        .bind(&p.address)
        .bind(&p.name)
        .bind(flag(p.organizer))
        .bind(p.response.as_str())
        .bind(p.kind)
        .bind(&p.member_email)
        .bind(&p.company)
        .bind(flag(p.took_part))
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// The stored participants of one link's upcoming meeting, as rows to capture.
async fn upcoming_participants(
    tx: &mut Transaction<'static, Any>,
    tenant: &TenantId,
    link: LinkId,
    key: &str,
) -> Result<Vec<ParticipantRow>, StoreError> {
    let rows = sqlx::query(
        "SELECT address, name, organizer, response, kind, member_email, company, took_part
         FROM upcoming_participants
         WHERE tenant_id = $1 AND link_id = $2 AND meeting_key = $3",
    )
    .bind(tenant.as_str())
    .bind(link.0)
    .bind(key)
    .fetch_all(&mut **tx)
    .await?;
    rows.iter()
        .map(|row| {
            let response: String = row.try_get(3)?;
            let kind: String = row.try_get(4)?;
            Ok(ParticipantRow {
                address: row.try_get(0)?,
                name: row.try_get(1)?,
                organizer: row.try_get::<i64, _>(2)? != 0,
                response: Response::parse(&response).unwrap_or_default(),
                kind: match kind.as_str() {
                    "member" => "member",
                    "external" => "external",
                    _ => "internal",
                },
                member_email: row.try_get(5)?,
                company: row.try_get(6)?,
                took_part: row.try_get::<i64, _>(7)? != 0,
            })
        })
        .collect()
}

/// Which meetings a page lists; every filter given must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MeetingFilter {
    /// A contact, by normalized address.
    pub contact: Option<String>,
    /// A company, by domain.
    pub company: Option<String>,
    /// A member who took part.
    pub member: Option<MemberId>,
    /// Whose view it is: `Some` lists only the meetings that member took part in (a
    /// member never sees another's meetings); `None` is an administrator's view.
    pub viewer: Option<MemberId>,
}

/// Where a page of meetings ended: the next starts after this one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeetingCursor {
    pub start_ms: i64,
    pub key: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeetingPage {
    pub meetings: Vec<MeetingView>,
    /// Set when more meetings follow.
    pub next: Option<MeetingCursor>,
}

impl MeetingFilter {
    /// The conditions on captured meeting id `m.id`, each an `IN` over participants.
    fn captured(&self, b: &mut Bindings) -> Vec<String> {
        let mut conditions = Vec::new();
        if let Some(address) = &self.contact {
            // Through the contact row: participants are indexed by contact, not address.
            conditions.push(format!(
                "m.id IN (SELECT p.meeting_id FROM meeting_participants p
                          JOIN contacts c ON c.tenant_id = p.tenant_id AND c.id = p.contact_id
                          WHERE p.tenant_id = $1 AND c.address = {})",
                b.text(address.to_lowercase())
            ));
        }
        if let Some(domain) = &self.company {
            conditions.push(format!(
                "m.id IN (SELECT p.meeting_id FROM meeting_participants p
                          JOIN contacts c ON c.tenant_id = p.tenant_id AND c.id = p.contact_id
                          JOIN companies co ON co.tenant_id = c.tenant_id AND co.id = c.company_id
                          WHERE p.tenant_id = $1 AND co.domain = {})",
                b.text(domain.to_lowercase())
            ));
        }
        for member in [self.member, self.viewer].into_iter().flatten() {
            conditions.push(format!(
                "m.id IN (SELECT p.meeting_id FROM meeting_participants p
                          WHERE p.tenant_id = $1 AND p.took_part = 1 AND p.member_id = {})",
                b.int(member.0)
            ));
        }
        conditions
    }

    /// The conditions on upcoming meeting key `u.meeting_key`.
    fn upcoming(&self, b: &mut Bindings) -> Vec<String> {
        let mut conditions = Vec::new();
        if let Some(address) = &self.contact {
            conditions.push(format!(
                "u.meeting_key IN (SELECT p.meeting_key FROM upcoming_participants p
                                   WHERE p.tenant_id = $1 AND p.address = {})",
                b.text(address.to_lowercase())
            ));
        }
        if let Some(domain) = &self.company {
            conditions.push(format!(
                "u.meeting_key IN (SELECT p.meeting_key FROM upcoming_participants p
                                   WHERE p.tenant_id = $1 AND p.company = {})",
                b.text(domain.to_lowercase())
            ));
        }
        for member in [self.member, self.viewer].into_iter().flatten() {
            conditions.push(format!(
                "u.meeting_key IN (SELECT p.meeting_key FROM upcoming_participants p
                                   JOIN members me ON me.tenant_id = p.tenant_id
                                        AND me.email = p.member_email
                                   WHERE p.tenant_id = $1 AND p.took_part = 1
                                     AND me.id = {})",
                b.int(member.0)
            ));
        }
        conditions
    }
}

fn and_all(conditions: Vec<String>) -> String {
    conditions
        .into_iter()
        .map(|c| format!(" AND {c}"))
        .collect()
}

impl Store {
    /// One page of captured meetings matching `filter`, latest first (then by key in
    /// byte order), after `after`, at most `limit` (bounded by [`MAX_MEETINGS_READ`]).
    pub async fn meetings_page(
        &self,
        tenant: &TenantId,
        filter: &MeetingFilter,
        after: Option<&MeetingCursor>,
        limit: u32,
    ) -> Result<MeetingPage, StoreError> {
        let limit = limit.clamp(1, MAX_MEETINGS_READ) as usize;
        let order = byte_order(self.backend());
        let mut b = Bindings::new(tenant);
        let mut conditions = filter.captured(&mut b);
        if let Some(after) = after {
            let start = b.int(after.start_ms);
            let key = b.text(after.key.clone());
            conditions.push(format!(
                "(m.start_ms < {start} OR (m.start_ms = {start} AND m.meeting_key{order} > {key}))"
            ));
        }
        let sql = format!(
            "SELECT m.id, m.meeting_key, m.start_ms, m.end_ms, m.all_day, m.direction,
                    m.title, m.private, m.large
             FROM meetings m WHERE m.tenant_id = $1{}
             ORDER BY m.start_ms DESC, m.meeting_key{order} LIMIT {}",
            and_all(conditions),
            b.count(limit + 1)
        );
        let rows = b.query(sql).fetch_all(&self.pool).await?;
        let (rows, more) = split_page(rows, limit);
        let mut meetings = Vec::with_capacity(rows.len());
        for row in rows {
            let id: i64 = row.try_get(0)?;
            let mut view = meeting_view(&row, 1)?;
            view.participants = self.captured_participants(tenant, id).await?;
            view.calendars = self.calendars_of(tenant, id).await?;
            meetings.push(view);
        }
        Ok(MeetingPage {
            next: page_end(&meetings, more),
            meetings,
        })
    }

    /// One page of upcoming meetings matching `filter` not ended by `now_ms`, soonest
    /// first (then by key), each meeting once (as its first calendar by link id lists
    /// it, with every calendar that does), after `after`, at most `limit`.
    pub async fn upcoming_page(
        &self,
        tenant: &TenantId,
        filter: &MeetingFilter,
        now_ms: i64,
        after: Option<&MeetingCursor>,
        limit: u32,
    ) -> Result<MeetingPage, StoreError> {
        let limit = limit.clamp(1, MAX_MEETINGS_READ) as usize;
        let order = byte_order(self.backend());
        let mut b = Bindings::new(tenant);
        let mut conditions = filter.upcoming(&mut b);
        conditions.push(format!("u.end_ms > {}", b.int(now_ms)));
        if let Some(after) = after {
            let start = b.int(after.start_ms);
            let key = b.text(after.key.clone());
            conditions.push(format!(
                "(u.start_ms > {start} OR (u.start_ms = {start} AND u.meeting_key{order} > {key}))"
            ));
        }
        // The first calendar's copy of each meeting: the one with the smallest link id.
        let sql = format!(
            "SELECT u.link_id, u.meeting_key, u.start_ms, u.end_ms, u.all_day, u.direction,
                    u.title, u.private, u.large
             FROM upcoming_meetings u WHERE u.tenant_id = $1{}
               AND u.link_id = (SELECT MIN(f.link_id) FROM upcoming_meetings f
                                WHERE f.tenant_id = u.tenant_id AND f.meeting_key = u.meeting_key)
             ORDER BY u.start_ms, u.meeting_key{order} LIMIT {}",
            and_all(conditions),
            b.count(limit + 1)
        );
        let rows = b.query(sql).fetch_all(&self.pool).await?;
        let (rows, more) = split_page(rows, limit);
        let mut meetings = Vec::with_capacity(rows.len());
        for row in rows {
            let link = LinkId(row.try_get(0)?);
            let mut view = meeting_view(&row, 1)?;
            view.participants = self
                .upcoming_participant_views(tenant, link, &view.key)
                .await?;
            view.calendars = self.upcoming_calendars(tenant, &view.key).await?;
            meetings.push(view);
        }
        Ok(MeetingPage {
            next: page_end(&meetings, more),
            meetings,
        })
    }
}

fn page_end(meetings: &[MeetingView], more: bool) -> Option<MeetingCursor> {
    let last = meetings.last().filter(|_| more)?;
    Some(MeetingCursor {
        start_ms: last.start_ms,
        key: last.key.clone(),
    })
}

/// What a link's calendar has brought in so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CalendarCounts {
    /// Captured meetings this calendar lists (some also seen in other calendars).
    pub captured: i64,
    /// When this calendar last added a captured meeting.
    pub last_added_ms: Option<i64>,
    /// Upcoming meetings this calendar lists now.
    pub upcoming: i64,
}

impl Store {
    /// What the calendar of `link` has brought in: captured meetings it saw, when it last
    /// added one, and its upcoming meetings.
    pub async fn calendar_counts(
        &self,
        tenant: &TenantId,
        link: LinkId,
    ) -> Result<CalendarCounts, StoreError> {
        let captured = sqlx::query(
            "SELECT COUNT(*), MAX(seen_ms) FROM meeting_sightings
             WHERE tenant_id = $1 AND link_id = $2",
        )
        .bind(tenant.as_str())
        .bind(link.0)
        .fetch_one(&self.pool)
        .await?;
        let upcoming = sqlx::query(
            "SELECT COUNT(*) FROM upcoming_meetings WHERE tenant_id = $1 AND link_id = $2",
        )
        .bind(tenant.as_str())
        .bind(link.0)
        .fetch_one(&self.pool)
        .await?;
        Ok(CalendarCounts {
            captured: captured.try_get(0)?,
            last_added_ms: captured.try_get(1)?,
            upcoming: upcoming.try_get(0)?,
        })
    }
}
