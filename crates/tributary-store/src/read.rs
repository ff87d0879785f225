//! The read side: what the console, the API and the tests look at. Every query is
//! scoped to one tenant.
//!
//! The whole-tenant reads (`activities`, `contacts`, …) are for tests and maintenance;
//! the console's activity views read only what a page shows: companies ranked by
//! activity a page at a time, one company's, contact's or member's timeline newest
//! first with keyset paging, and searches with a limit and a count.

use crate::api_reads::{Bindings, activity_row, contains, split_page};
use crate::error::StoreError;
use crate::store::{Backend, MemberId, Store, TenantId};
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};
use std::collections::{BTreeMap, BTreeSet};

/// One participant of an activity.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ParticipantView {
    pub address: String,
    /// `from`, `to`, `cc` or `bcc`.
    pub role: String,
    /// `member`, `internal` or `external`.
    pub kind: String,
    /// The primary address of the member the participant resolves to (by primary
    /// address or alias), if any.
    pub member: Option<String>,
    /// The name to show beside the address (see [`name_of`]).
    pub display_name: Option<String>,
}

/// A mailbox that holds a copy of an activity, and the provider it was captured from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct CapturedBy {
    pub mailbox: String,
    /// `google`, `microsoft` or `imap` (the link's provider).
    pub provider: String,
}

/// Whose view a read is for: what an administrator or a member may see. Every scoped
/// read filters in SQL; nothing is loaded to be filtered afterwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadScope {
    /// Everything of the tenant: an administrator.
    Tenant,
    /// What the member took part in: activities one of whose participants is one of
    /// the member's addresses, the contacts met in those, their companies, and the
    /// member's own relationships.
    Own(MemberId),
    /// The organization's contact points as metadata: every activity, contact, company
    /// and relationship, but an activity the member did not take part in comes without
    /// its subject and mailboxes ([`ActivityView::withheld`]).
    Organization(MemberId),
    /// Nothing at all: a member-role account that is no member of the tenant.
    Nothing,
}

impl ReadScope {
    /// SQL true for the activities (id expression `activity`) this scope lists.
    pub(crate) fn activities(self, b: &mut Bindings, activity: &str) -> Option<String> {
        match self {
            ReadScope::Tenant | ReadScope::Organization(_) => None,
            ReadScope::Own(member) => Some(took_part(b, activity, member)),
            ReadScope::Nothing => Some("1 = 0".to_owned()),
        }
    }

    /// SQL true for the contacts (address expression `address`) this scope lists.
    pub(crate) fn contacts(self, b: &mut Bindings, address: &str) -> Option<String> {
        match self {
            ReadScope::Tenant | ReadScope::Organization(_) => None,
            // Met in mail, or at a captured meeting the member took part in.
            ReadScope::Own(member) => Some(format!(
                "(EXISTS (SELECT 1 FROM activity_participants vc
                          JOIN activity_participants vm
                            ON vm.tenant_id = vc.tenant_id AND vm.activity_id = vc.activity_id
                          WHERE vc.tenant_id = $1 AND vc.address = {address}
                            AND vm.address IN ({}))
                  OR EXISTS (SELECT 1 FROM contacts mcc
                          JOIN meeting_participants mc
                            ON mc.tenant_id = mcc.tenant_id AND mc.contact_id = mcc.id
                          JOIN meeting_participants mm
                            ON mm.tenant_id = mc.tenant_id AND mm.meeting_id = mc.meeting_id
                          WHERE mcc.tenant_id = $1 AND mcc.address = {address}
                            AND mm.took_part = 1 AND mm.member_id = {}))",
                addresses_of(b, member),
                b.int(member.0)
            )),
            ReadScope::Nothing => Some("1 = 0".to_owned()),
        }
    }

    /// SQL true for the companies (id expression `company`) this scope lists: those
    /// with a contact it lists.
    pub(crate) fn companies(self, b: &mut Bindings, company: &str) -> Option<String> {
        let contacts = self.contacts(b, "vco.address")?;
        Some(format!(
            "EXISTS (SELECT 1 FROM contacts vco
                     WHERE vco.tenant_id = $1 AND vco.company_id = {company} AND {contacts})"
        ))
    }

    /// SQL true for the relationships (member id expression `member`) this scope lists.
    pub(crate) fn relationships(self, b: &mut Bindings, member: &str) -> Option<String> {
        match self {
            ReadScope::Tenant | ReadScope::Organization(_) => None,
            ReadScope::Own(own) => Some(format!("{member} = {}", b.int(own.0))),
            ReadScope::Nothing => Some("1 = 0".to_owned()),
        }
    }

    /// SQL true for the members (id expression `member`) this scope lists: a member
    /// finds only themself.
    pub(crate) fn members(self, b: &mut Bindings, member: &str) -> Option<String> {
        match self {
            ReadScope::Tenant => None,
            ReadScope::Own(own) | ReadScope::Organization(own) => {
                Some(format!("{member} = {}", b.int(own.0)))
            }
            ReadScope::Nothing => Some("1 = 0".to_owned()),
        }
    }
}

/// A subquery of the member's addresses: primary and aliases. Participation is decided
/// by address, not by the participants' member column: mail captured before a member
/// was added names no member until it is claimed.
fn addresses_of(b: &mut Bindings, member: MemberId) -> String {
    let m = b.int(member.0);
    format!(
        "SELECT ma.address FROM member_addresses ma WHERE ma.tenant_id = $1 AND ma.member_id = {m}
         UNION SELECT me.email FROM members me WHERE me.tenant_id = $1 AND me.id = {m}"
    )
}

/// SQL true when one of `member`'s addresses is a participant of the activity with id
/// expression `activity`.
fn took_part(b: &mut Bindings, activity: &str, member: MemberId) -> String {
    format!(
        "EXISTS (SELECT 1 FROM activity_participants sp
                 WHERE sp.tenant_id = $1 AND sp.activity_id = {activity}
                   AND sp.address IN ({}))",
        addresses_of(b, member)
    )
}

/// The primary address of the member the participant row `p` resolves to: the member
/// whose primary address it is, else the (first by address) member it is an alias of,
/// as [`Store::member_by_address`] resolves an address.
pub(crate) const PARTICIPANT_MEMBER: &str = "COALESCE(
    (SELECT pm.email FROM members pm WHERE pm.tenant_id = p.tenant_id AND pm.email = p.address),
    (SELECT pm.email FROM member_addresses pa
     JOIN members pm ON pm.tenant_id = pa.tenant_id AND pm.id = pa.member_id
     WHERE pa.tenant_id = p.tenant_id AND pa.address = p.address
     ORDER BY pm.email LIMIT 1))";

/// SQL for the display name of the address expression `address` of tenant expression
/// `tenant`: the directory's name of the member the address resolves to (as
/// [`PARTICIPANT_MEMBER`] resolves it), else the most recent name captured headers gave
/// the address itself (`display_names`, chosen by core's `display_name` module).
pub(crate) fn name_of(tenant: &str, address: &str) -> String {
    // SQLite lets no ORDER BY of a subquery name an outer column: the member whose
    // primary address it is is looked up on its own, before the alias owners.
    format!(
        "COALESCE(
            (SELECT nm.display_name FROM members nm
             WHERE nm.tenant_id = {tenant} AND nm.email = {address}),
            CASE WHEN EXISTS (SELECT 1 FROM members nx
                              WHERE nx.tenant_id = {tenant} AND nx.email = {address})
            THEN NULL
            ELSE (SELECT nm.display_name FROM member_addresses na
                  JOIN members nm ON nm.tenant_id = na.tenant_id AND nm.id = na.member_id
                  WHERE na.tenant_id = {tenant} AND na.address = {address}
                  ORDER BY nm.email LIMIT 1) END,
            (SELECT dn.name FROM display_names dn
             WHERE dn.tenant_id = {tenant} AND dn.address = {address}))"
    )
}

/// The columns [`ContactView::from_row`] reads, from `contacts c` left-joined with its
/// `companies co`.
pub(crate) fn contact_columns() -> String {
    format!(
        "c.address, co.domain, {}",
        name_of("c.tenant_id", "c.address")
    )
}

/// ` AND condition` when there is one.
pub(crate) fn and(condition: Option<String>) -> String {
    condition.map(|c| format!(" AND {c}")).unwrap_or_default()
}

/// An activity with its participants and the mailboxes that hold it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityView {
    pub id: i64,
    pub dedupe_key: String,
    pub thread_key: Option<String>,
    pub time_ms: Option<i64>,
    pub direction: String,
    pub subject: Option<String>,
    /// Sorted by address, then role.
    pub participants: Vec<ParticipantView>,
    /// (mailbox, provider message id, labels), sorted.
    pub sightings: Vec<(String, String, Vec<String>)>,
    /// The mailboxes holding a copy and their provider, by mailbox.
    pub captured_by: Vec<CapturedBy>,
    /// Set when the viewer may see only this activity's metadata (see
    /// [`ReadScope::Organization`]): subject, sightings and mailboxes are left out.
    pub withheld: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactView {
    pub address: String,
    pub company: Option<String>,
    /// The most recent name captured headers gave the address.
    pub display_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompanyView {
    pub domain: String,
    pub contacts: i64,
}

impl ContactView {
    /// A row of [`contact_columns`]: address, company domain, display name.
    pub(crate) fn from_row(row: &AnyRow) -> Result<Self, StoreError> {
        Ok(ContactView {
            address: row.try_get(0)?,
            company: row.try_get(1)?,
            display_name: row.try_get(2)?,
        })
    }
}

impl CompanyView {
    /// The company's name as derived from its domain (core's `company_display_name`).
    pub fn display_name(&self) -> Option<String> {
        tributary_core::company_display_name(&self.domain)
    }

    /// A row of (domain, number of contacts).
    pub(crate) fn from_row(row: &AnyRow) -> Result<Self, StoreError> {
        Ok(CompanyView {
            domain: row.try_get(0)?,
            contacts: row.try_get(1)?,
        })
    }
}

/// A member–contact relationship.
#[derive(Debug, Clone, PartialEq)]
pub struct RelationshipView {
    pub member: String,
    pub contact: String,
    pub first_ms: i64,
    pub last_ms: i64,
    pub sent: i64,
    pub received: i64,
    pub total: i64,
    /// The decayed score as of `last_ms` (core's `RelationshipStats::score_at_last`).
    pub score_at_last: f64,
}

impl Store {
    pub async fn count_activities(&self, tenant: &TenantId) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) FROM activities WHERE tenant_id = $1")
            .bind(tenant.as_str())
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get(0)?)
    }

    /// Every activity of the tenant, by dedupe key.
    pub async fn activities(&self, tenant: &TenantId) -> Result<Vec<ActivityView>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, dedupe_key, thread_key, time_ms, direction, subject
             FROM activities WHERE tenant_id = $1 ORDER BY dedupe_key",
        )
        .bind(tenant.as_str())
        .fetch_all(&self.pool)
        .await?;
        let mut activities = Vec::with_capacity(rows.len());
        for row in rows {
            let id: i64 = row.try_get("id")?;
            activities.push(ActivityView {
                id,
                dedupe_key: row.try_get("dedupe_key")?,
                thread_key: row.try_get("thread_key")?,
                time_ms: row.try_get("time_ms")?,
                direction: row.try_get("direction")?,
                subject: row.try_get("subject")?,
                participants: self.participants_of(tenant, id).await?,
                sightings: Vec::new(),
                captured_by: Vec::new(),
                withheld: false,
            });
            let last = activities.last_mut().expect("just pushed");
            let (sightings, captured_by) = self.sightings_of(tenant, id).await?;
            last.sightings = sightings;
            last.captured_by = captured_by;
        }
        Ok(activities)
    }

    async fn participants_of(
        &self,
        tenant: &TenantId,
        activity: i64,
    ) -> Result<Vec<ParticipantView>, StoreError> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT p.address, p.role, p.kind, {PARTICIPANT_MEMBER}, {}
                 FROM activity_participants p
                 WHERE p.tenant_id = $1 AND p.activity_id = $2 ORDER BY p.address, p.role",
            name_of("p.tenant_id", "p.address")
        )))
        .bind(tenant.as_str())
        .bind(activity)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(ParticipantView {
                    address: row.try_get(0)?,
                    role: row.try_get(1)?,
                    kind: row.try_get(2)?,
                    member: row.try_get(3)?,
                    display_name: row.try_get(4)?,
                })
            })
            .collect()
    }

    async fn sightings_of(
        &self,
        tenant: &TenantId,
        activity: i64,
    ) -> Result<Sightings, StoreError> {
        let rows = sqlx::query(
            "SELECT l.mailbox, s.provider_message_id, s.labels, l.provider
             FROM activity_sightings s
             JOIN mailbox_links l ON l.tenant_id = s.tenant_id AND l.id = s.link_id
             WHERE s.tenant_id = $1 AND s.activity_id = $2
             ORDER BY l.mailbox, s.provider_message_id",
        )
        .bind(tenant.as_str())
        .bind(activity)
        .fetch_all(&self.pool)
        .await?;
        let mut sightings = Vec::with_capacity(rows.len());
        let mut captured_by = Vec::new();
        for row in &rows {
            sightings.push(sighting_view(row)?);
            push_captured_by(&mut captured_by, row.try_get(0)?, row.try_get(3)?);
        }
        Ok((sightings, captured_by))
    }

    /// Every contact of the tenant, by address.
    pub async fn contacts(&self, tenant: &TenantId) -> Result<Vec<ContactView>, StoreError> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {} FROM contacts c
             LEFT JOIN companies co ON co.tenant_id = c.tenant_id AND co.id = c.company_id
             WHERE c.tenant_id = $1 ORDER BY c.address",
            contact_columns()
        )))
        .bind(tenant.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(ContactView::from_row).collect()
    }

    /// Every company of the tenant with its number of contacts, by domain.
    pub async fn companies(&self, tenant: &TenantId) -> Result<Vec<CompanyView>, StoreError> {
        let rows = sqlx::query(
            "SELECT co.domain, COUNT(c.id) AS contacts FROM companies co
             LEFT JOIN contacts c ON c.tenant_id = co.tenant_id AND c.company_id = co.id
             WHERE co.tenant_id = $1 GROUP BY co.domain ORDER BY co.domain",
        )
        .bind(tenant.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(CompanyView::from_row).collect()
    }

    /// Every relationship of the tenant, by member then contact address.
    pub async fn relationships(
        &self,
        tenant: &TenantId,
    ) -> Result<Vec<RelationshipView>, StoreError> {
        let rows = sqlx::query(
            "SELECT m.email, c.address, r.first_ms, r.last_ms, r.sent, r.received, r.total,
                    r.score_at_last
             FROM relationships r
             JOIN members m ON m.tenant_id = r.tenant_id AND m.id = r.member_id
             JOIN contacts c ON c.tenant_id = r.tenant_id AND c.id = r.contact_id
             WHERE r.tenant_id = $1 ORDER BY m.email, c.address",
        )
        .bind(tenant.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(relationship_view).collect()
    }
}

/// A relationship row of `SELECT m.email, c.address, r.first_ms, r.last_ms, r.sent,
/// r.received, r.total, r.score_at_last`.
pub(crate) fn relationship_view(row: &AnyRow) -> Result<RelationshipView, StoreError> {
    Ok(RelationshipView {
        member: row.try_get(0)?,
        contact: row.try_get(1)?,
        first_ms: row.try_get(2)?,
        last_ms: row.try_get(3)?,
        sent: row.try_get(4)?,
        received: row.try_get(5)?,
        total: row.try_get(6)?,
        score_at_last: row.try_get(7)?,
    })
}

/// An activity's sightings and the mailboxes they are in.
type Sightings = (Vec<(String, String, Vec<String>)>, Vec<CapturedBy>);

/// Adds a sighting's mailbox to `captured_by` unless the last one is the same: sightings
/// come ordered by mailbox.
pub(crate) fn push_captured_by(
    captured_by: &mut Vec<CapturedBy>,
    mailbox: String,
    provider: String,
) {
    let seen = captured_by
        .last()
        .is_some_and(|last| last.mailbox == mailbox && last.provider == provider);
    if !seen {
        captured_by.push(CapturedBy { mailbox, provider });
    }
}

fn sighting_view(row: &AnyRow) -> Result<(String, String, Vec<String>), StoreError> {
    let labels: String = row.try_get(2)?;
    Ok((
        row.try_get(0)?,
        row.try_get(1)?,
        serde_json::from_str(&labels)?,
    ))
}

/// How well one member knows a contact, or the contacts of a company: their
/// relationships summed.
#[derive(Debug, Clone, PartialEq)]
pub struct MemberStrength {
    pub member: String,
    /// The sum of the relationships' `score_at_last`.
    pub score: f64,
    /// Messages in all.
    pub total: i64,
    /// The latest contact point.
    pub last_ms: i64,
}

/// A company's line in the ranking by activity.
#[derive(Debug, Clone, PartialEq)]
pub struct CompanyRank {
    pub domain: String,
    /// Activities any contact of the company takes part in.
    pub activities: i64,
    pub contacts: i64,
    /// The latest of those activities' times.
    pub last_ms: Option<i64>,
    /// Who knows the company's contacts best.
    pub best: Option<MemberStrength>,
}

/// One page of the company ranking.
#[derive(Debug, Clone, PartialEq)]
pub struct CompanyRanking {
    /// Most activities first, then by domain in byte order.
    pub companies: Vec<CompanyRank>,
    /// Whether more companies follow.
    pub more: bool,
}

/// Whose contact points a timeline lists: the activities any of whose participants is
/// one of these addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimelineOf {
    /// The contacts of the company with this domain.
    Company(String),
    /// One contact address.
    Contact(String),
    /// The member's primary address and aliases.
    Member(MemberId),
}

/// Where a timeline page ended; the next page starts after this activity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineCursor {
    pub time_ms: Option<i64>,
    pub dedupe_key: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelinePage {
    /// Newest first, activities without a time last; equal times by dedupe key (in the
    /// database's collation, as [`Store::activities`] orders them).
    pub activities: Vec<ActivityView>,
    /// The participants of these activities that are contacts.
    pub contacts: BTreeSet<String>,
    /// Set when more activities follow.
    pub next: Option<TimelineCursor>,
}

/// The first items of a search and how many matched in all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found<T> {
    pub items: Vec<T>,
    pub total: i64,
}

/// Relationships reached from their contacts: `CROSS JOIN` keeps SQLite to this order
/// (contacts, then each one's relationships by `relationships_by_contact`), where
/// without statistics it would scan every relationship of the tenant per contact;
/// PostgreSQL plans it as the inner join it is.
const CONTACT_FIRST: &str = "FROM contacts c
     CROSS JOIN relationships r
     CROSS JOIN members m
     WHERE r.tenant_id = c.tenant_id AND r.contact_id = c.id
       AND m.tenant_id = r.tenant_id AND m.id = r.member_id AND";

/// Which relationships a strength sums.
enum KnownBy<'a> {
    Company(&'a str),
    Contact(&'a str),
}

impl Store {
    /// One page of the tenant's companies that have contacts, most activities first
    /// (then by domain in byte order), each with who knows it best.
    pub async fn ranked_companies(
        &self,
        tenant: &TenantId,
        offset: usize,
        limit: usize,
    ) -> Result<CompanyRanking, StoreError> {
        self.ranked_companies_scoped(tenant, offset, limit, ReadScope::Tenant)
            .await
    }

    /// [`Store::ranked_companies`] as `scope` sees it: its companies and contacts, the
    /// activities it lists, the relationships it lists.
    pub async fn ranked_companies_scoped(
        &self,
        tenant: &TenantId,
        offset: usize,
        limit: usize,
        scope: ReadScope,
    ) -> Result<CompanyRanking, StoreError> {
        let limit = limit.max(1);
        let order = crate::api_reads::byte_order(self.backend());
        let mut b = Bindings::new(tenant);
        let visible_contacts = and(scope.contacts(&mut b, "nc.address"));
        let visible_activities = and(scope.activities(&mut b, "p.activity_id"));
        let sql = format!(
            "SELECT co.id, co.domain, n.contacts, COALESCE(s.activities, 0), s.last_ms
             FROM companies co
             JOIN (SELECT nc.company_id, COUNT(*) AS contacts FROM contacts nc
                   WHERE nc.tenant_id = $1 AND nc.company_id IS NOT NULL{visible_contacts}
                   GROUP BY nc.company_id) n ON n.company_id = co.id
             LEFT JOIN (
                 SELECT t.company_id, COUNT(*) AS activities, MAX(a.time_ms) AS last_ms
                 FROM (SELECT DISTINCT c.company_id, p.activity_id
                       FROM activity_participants p
                       JOIN contacts c ON c.tenant_id = p.tenant_id AND c.address = p.address
                       WHERE p.tenant_id = $1 AND c.company_id IS NOT NULL{visible_activities}) t
                 JOIN activities a ON a.tenant_id = $1 AND a.id = t.activity_id
                 GROUP BY t.company_id) s ON s.company_id = co.id
             WHERE co.tenant_id = $1
             ORDER BY COALESCE(s.activities, 0) DESC, co.domain{order}
             LIMIT {} OFFSET {}",
            b.count(limit + 1),
            b.count(offset)
        );
        let rows = b.query(sql).fetch_all(&self.pool).await?;
        let (rows, more) = split_page(rows, limit);
        let mut ids = Vec::with_capacity(rows.len());
        let mut companies = Vec::with_capacity(rows.len());
        for row in &rows {
            ids.push(row.try_get::<i64, _>(0)?);
            companies.push(CompanyRank {
                domain: row.try_get(1)?,
                contacts: row.try_get(2)?,
                activities: row.try_get(3)?,
                last_ms: row.try_get(4)?,
                best: None,
            });
        }
        let mut best = self.best_by_company(tenant, &ids, scope).await?;
        for (company, id) in companies.iter_mut().zip(&ids) {
            company.best = best.remove(id);
        }
        Ok(CompanyRanking { companies, more })
    }

    /// Who knows each of `companies` (ids) best.
    async fn best_by_company(
        &self,
        tenant: &TenantId,
        companies: &[i64],
        scope: ReadScope,
    ) -> Result<BTreeMap<i64, MemberStrength>, StoreError> {
        if companies.is_empty() {
            return Ok(BTreeMap::new());
        }
        let condition = |b: &mut Bindings| {
            let list: Vec<String> = companies.iter().map(|id| b.int(*id)).collect();
            format!("c.company_id IN ({})", list.join(", "))
        };
        let by_company = self
            .strengths_by_group(tenant, "c.company_id", &condition, scope)
            .await?;
        Ok(by_company
            .into_iter()
            .filter_map(|(id, rows)| Some((id, rank_strengths(rows).into_iter().next()?)))
            .collect())
    }

    /// Each relationship of a contact `condition` selects (SQL over `c`, a contact, with
    /// its values bound in the statement's bindings) that
    /// `scope` lists, grouped by `group` (an integer expression over `c`): mail
    /// relationships with the meetings the pair shared (`Store::meeting_ties`), and pairs
    /// who only met, which have no relationship row. Each group's rows are ordered as
    /// [`Store::relationships`], so that scores add up in the same order: (member,
    /// score as of the pair's last contact point, messages, last contact point).
    async fn strengths_by_group(
        &self,
        tenant: &TenantId,
        group: &str,
        condition: &(dyn Fn(&mut Bindings) -> String + Sync),
        scope: ReadScope,
    ) -> Result<BTreeMap<i64, Vec<(String, f64, i64, i64)>>, StoreError> {
        // Two statements, each with only the values it uses.
        let mut b = Bindings::new(tenant);
        let mail_condition = condition(&mut b);
        let visible = and(scope.relationships(&mut b, "r.member_id"));
        let mut met_b = Bindings::new(tenant);
        let met_condition = condition(&mut met_b);
        let met_visible = and(scope.relationships(&mut met_b, "m.id"));
        let mail_sql = format!(
            "SELECT m.email, c.address, r.first_ms, r.last_ms, r.sent, r.received, r.total,
                    r.score_at_last, {group}
             {CONTACT_FIRST} c.tenant_id = $1 AND {mail_condition}{visible}"
        );
        // Not-large captured meetings both attended (the contact did not decline, the
        // member took part): the pairs `Store::meeting_ties` scores.
        let met_sql = format!(
            "SELECT DISTINCT m.email, c.address, {group}
             FROM contacts c
             JOIN meeting_participants pc ON pc.tenant_id = c.tenant_id AND pc.contact_id = c.id
             JOIN meetings mt ON mt.tenant_id = pc.tenant_id AND mt.id = pc.meeting_id
             JOIN meeting_participants pm ON pm.tenant_id = mt.tenant_id
                  AND pm.meeting_id = mt.id AND pm.took_part = 1
             JOIN members m ON m.tenant_id = pm.tenant_id AND m.id = pm.member_id
             WHERE c.tenant_id = $1 AND {met_condition} AND mt.large = 0
               AND (pc.organizer = 1 OR pc.response <> 'declined'){met_visible}"
        );
        let mail_rows = b.query(mail_sql).fetch_all(&self.pool).await?;
        let met_rows = met_b.query(met_sql).fetch_all(&self.pool).await?;
        let mut pairs: BTreeMap<(String, String), (i64, Option<RelationshipView>)> =
            BTreeMap::new();
        for row in &met_rows {
            pairs.insert((row.try_get(0)?, row.try_get(1)?), (row.try_get(2)?, None));
        }
        for row in &mail_rows {
            let relationship = relationship_view(row)?;
            let key = (relationship.member.clone(), relationship.contact.clone());
            pairs.insert(key, (row.try_get(8)?, Some(relationship)));
        }
        let asked: Vec<(String, String)> = pairs.keys().cloned().collect();
        let ties = self.meeting_ties(tenant, &asked).await?;
        let mut by_group: BTreeMap<i64, Vec<(String, f64, i64, i64)>> = BTreeMap::new();
        // Keys in (member, contact) order: `Store::relationships`' order.
        for (key, (group, mail)) in pairs {
            let tie = ties.get(&key);
            let line = match (mail, tie) {
                (Some(r), Some(tie)) => {
                    let (_, last_ms, score) = tie.combined_with(&r);
                    (score, r.total, last_ms)
                }
                (Some(r), None) => (r.score_at_last, r.total, r.last_ms),
                (None, Some(tie)) => (tie.score_at_last, 0, tie.last_ms),
                (None, None) => continue,
            };
            by_group
                .entry(group)
                .or_default()
                .push((key.0, line.0, line.1, line.2));
        }
        Ok(by_group)
    }

    /// Who knows the contacts of the company with `domain` best, strongest first, at
    /// most `limit`.
    pub async fn company_strengths(
        &self,
        tenant: &TenantId,
        domain: &str,
        limit: usize,
    ) -> Result<Vec<MemberStrength>, StoreError> {
        self.strengths(tenant, KnownBy::Company(domain), limit, ReadScope::Tenant)
            .await
    }

    /// [`Store::company_strengths`] over the relationships `scope` lists.
    pub async fn company_strengths_scoped(
        &self,
        tenant: &TenantId,
        domain: &str,
        limit: usize,
        scope: ReadScope,
    ) -> Result<Vec<MemberStrength>, StoreError> {
        self.strengths(tenant, KnownBy::Company(domain), limit, scope)
            .await
    }

    /// [`Store::contact_strengths`] over the relationships `scope` lists.
    pub async fn contact_strengths_scoped(
        &self,
        tenant: &TenantId,
        address: &str,
        limit: usize,
        scope: ReadScope,
    ) -> Result<Vec<MemberStrength>, StoreError> {
        self.strengths(tenant, KnownBy::Contact(address), limit, scope)
            .await
    }

    /// Who knows the contact best, strongest first, at most `limit`.
    pub async fn contact_strengths(
        &self,
        tenant: &TenantId,
        address: &str,
        limit: usize,
    ) -> Result<Vec<MemberStrength>, StoreError> {
        self.strengths(tenant, KnownBy::Contact(address), limit, ReadScope::Tenant)
            .await
    }

    async fn strengths(
        &self,
        tenant: &TenantId,
        of: KnownBy<'_>,
        limit: usize,
        scope: ReadScope,
    ) -> Result<Vec<MemberStrength>, StoreError> {
        let condition = |b: &mut Bindings| match &of {
            KnownBy::Company(domain) => format!(
                "c.company_id = (SELECT id FROM companies WHERE tenant_id = $1 AND domain = {})",
                b.text(domain.to_lowercase())
            ),
            KnownBy::Contact(address) => {
                format!("c.address = {}", b.text(address.to_lowercase()))
            }
        };
        // One group: every row is the company's or the contact's.
        let rows = self
            .strengths_by_group(tenant, "CAST(0 AS BIGINT)", &condition, scope)
            .await?
            .into_values()
            .flatten()
            .collect();
        let mut ranked = rank_strengths(rows);
        ranked.truncate(limit);
        Ok(ranked)
    }

    /// The addresses of the contacts of the company with `domain`, the first `limit` by
    /// address, and how many it has.
    pub async fn company_contacts(
        &self,
        tenant: &TenantId,
        domain: &str,
        limit: usize,
    ) -> Result<Found<String>, StoreError> {
        self.company_contacts_scoped(tenant, domain, limit, ReadScope::Tenant)
            .await
    }

    /// [`Store::company_contacts`] among the contacts `scope` lists.
    pub async fn company_contacts_scoped(
        &self,
        tenant: &TenantId,
        domain: &str,
        limit: usize,
        scope: ReadScope,
    ) -> Result<Found<String>, StoreError> {
        let filter = |b: &mut Bindings| {
            let domain = b.text(domain.to_lowercase());
            let visible = and(scope.contacts(b, "c.address"));
            format!(
                "FROM contacts c JOIN companies co ON co.tenant_id = c.tenant_id AND co.id = c.company_id
                 WHERE c.tenant_id = $1 AND co.domain = {domain}{visible}"
            )
        };
        self.found_addresses(tenant, filter, "c.address", limit)
            .await
    }

    /// A contact of the tenant that `scope` lists, if there is one with this address.
    pub async fn contact_scoped(
        &self,
        tenant: &TenantId,
        address: &str,
        scope: ReadScope,
    ) -> Result<Option<ContactView>, StoreError> {
        let mut b = Bindings::new(tenant);
        let address = b.text(address.to_lowercase());
        let visible = and(scope.contacts(&mut b, "c.address"));
        let sql = format!(
            "SELECT {} FROM contacts c
             LEFT JOIN companies co ON co.tenant_id = c.tenant_id AND co.id = c.company_id
             WHERE c.tenant_id = $1 AND c.address = {address}{visible}",
            contact_columns()
        );
        let row = b.query(sql).fetch_optional(&self.pool).await?;
        row.as_ref().map(ContactView::from_row).transpose()
    }

    /// A contact of the tenant, if there is one with this address.
    pub async fn contact(
        &self,
        tenant: &TenantId,
        address: &str,
    ) -> Result<Option<ContactView>, StoreError> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {} FROM contacts c
             LEFT JOIN companies co ON co.tenant_id = c.tenant_id AND co.id = c.company_id
             WHERE c.tenant_id = $1 AND c.address = $2",
            contact_columns()
        )))
        .bind(tenant.as_str())
        .bind(address.to_lowercase())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(ContactView::from_row).transpose()
    }

    /// One page of a timeline: the activities any of whose participants is one of
    /// `of`'s addresses, newest first, after `after`.
    pub async fn timeline_page(
        &self,
        tenant: &TenantId,
        of: &TimelineOf,
        after: Option<&TimelineCursor>,
        limit: usize,
    ) -> Result<TimelinePage, StoreError> {
        self.timeline_page_scoped(tenant, of, after, limit, ReadScope::Tenant)
            .await
    }

    /// [`Store::timeline_page`] among the activities `scope` lists, withheld as it says.
    pub async fn timeline_page_scoped(
        &self,
        tenant: &TenantId,
        of: &TimelineOf,
        after: Option<&TimelineCursor>,
        limit: usize,
        scope: ReadScope,
    ) -> Result<TimelinePage, StoreError> {
        let limit = limit.max(1);
        let mut b = Bindings::new(tenant);
        let visible = and(scope.activities(&mut b, "a.id"));
        let addresses = match of {
            TimelineOf::Company(domain) => format!(
                "p.address IN (SELECT c.address FROM contacts c
                     JOIN companies co ON co.tenant_id = c.tenant_id AND co.id = c.company_id
                     WHERE c.tenant_id = $1 AND co.domain = {})",
                b.text(domain.to_lowercase())
            ),
            TimelineOf::Contact(address) => {
                format!("p.address = {}", b.text(address.to_lowercase()))
            }
            TimelineOf::Member(member) => {
                let m = b.int(member.0);
                format!(
                    "p.address IN (SELECT address FROM member_addresses
                                   WHERE tenant_id = $1 AND member_id = {m}
                                   UNION SELECT email FROM members WHERE tenant_id = $1 AND id = {m})"
                )
            }
        };
        let after = match after {
            None => String::new(),
            Some(TimelineCursor {
                time_ms: Some(time),
                dedupe_key,
            }) => {
                let t = b.int(*time);
                let k = b.text(dedupe_key.as_str());
                format!(
                    "AND (a.time_ms IS NULL OR a.time_ms < {t}
                          OR (a.time_ms = {t} AND a.dedupe_key > {k}))"
                )
            }
            Some(TimelineCursor {
                time_ms: None,
                dedupe_key,
            }) => format!(
                "AND a.time_ms IS NULL AND a.dedupe_key > {}",
                b.text(dedupe_key.as_str())
            ),
        };
        let sql = format!(
            "SELECT a.id, a.dedupe_key, a.thread_key, a.time_ms, a.direction, a.subject
             FROM activities a
             WHERE a.tenant_id = $1
               AND a.id IN (SELECT p.activity_id FROM activity_participants p
                            WHERE p.tenant_id = $1 AND {addresses})
               {after}{visible}
             ORDER BY CASE WHEN a.time_ms IS NULL THEN 1 ELSE 0 END, a.time_ms DESC, a.dedupe_key
             LIMIT {}",
            b.count(limit + 1)
        );
        let rows = b.query(sql).fetch_all(&self.pool).await?;
        let (rows, more) = split_page(rows, limit);
        let mut activities = rows
            .iter()
            .map(activity_row)
            .collect::<Result<Vec<_>, _>>()?;
        self.fill_details(tenant, &mut activities).await?;
        self.withhold(tenant, &mut activities, scope).await?;
        let contacts = self.contacts_among(tenant, &activities).await?;
        let next = more
            .then(|| activities.last())
            .flatten()
            .map(|last| TimelineCursor {
                time_ms: last.time_ms,
                dedupe_key: last.dedupe_key.clone(),
            });
        Ok(TimelinePage {
            activities,
            contacts,
            next,
        })
    }

    /// The participants of `activities` that are contacts.
    async fn contacts_among(
        &self,
        tenant: &TenantId,
        activities: &[ActivityView],
    ) -> Result<BTreeSet<String>, StoreError> {
        if activities.is_empty() {
            return Ok(BTreeSet::new());
        }
        let mut b = Bindings::new(tenant);
        let list: Vec<String> = activities.iter().map(|a| b.int(a.id)).collect();
        let sql = format!(
            "SELECT DISTINCT p.address FROM activity_participants p
             JOIN contacts c ON c.tenant_id = p.tenant_id AND c.address = p.address
             WHERE p.tenant_id = $1 AND p.activity_id IN ({})",
            list.join(", ")
        );
        let rows = b.query(sql).fetch_all(&self.pool).await?;
        rows.iter().map(|row| Ok(row.try_get(0)?)).collect()
    }

    /// Leaves out the subject, sightings and mailboxes of the activities a member
    /// viewing under [`ReadScope::Organization`] did not take part in.
    pub(crate) async fn withhold(
        &self,
        tenant: &TenantId,
        activities: &mut [ActivityView],
        scope: ReadScope,
    ) -> Result<(), StoreError> {
        let ReadScope::Organization(member) = scope else {
            return Ok(());
        };
        if activities.is_empty() {
            return Ok(());
        }
        let mut b = Bindings::new(tenant);
        let addresses = addresses_of(&mut b, member);
        let list: Vec<String> = activities.iter().map(|a| b.int(a.id)).collect();
        let sql = format!(
            "SELECT DISTINCT activity_id FROM activity_participants
             WHERE tenant_id = $1 AND address IN ({addresses}) AND activity_id IN ({})",
            list.join(", ")
        );
        let rows = b.query(sql).fetch_all(&self.pool).await?;
        let own: BTreeSet<i64> = rows
            .iter()
            .map(|row| row.try_get(0))
            .collect::<Result<_, _>>()?;
        for activity in activities.iter_mut().filter(|a| !own.contains(&a.id)) {
            activity.subject = None;
            activity.sightings.clear();
            activity.captured_by.clear();
            activity.withheld = true;
        }
        Ok(())
    }

    /// The member's strongest `limit` relationships: highest score first, equal scores
    /// by contact address (as [`Store::relationships`] orders them).
    pub async fn member_relationships(
        &self,
        tenant: &TenantId,
        member: MemberId,
        limit: usize,
    ) -> Result<Vec<RelationshipView>, StoreError> {
        let mut b = Bindings::new(tenant);
        let sql = format!(
            "SELECT m.email, c.address, r.first_ms, r.last_ms, r.sent, r.received, r.total,
                    r.score_at_last
             FROM relationships r
             JOIN members m ON m.tenant_id = r.tenant_id AND m.id = r.member_id
             JOIN contacts c ON c.tenant_id = r.tenant_id AND c.id = r.contact_id
             WHERE r.tenant_id = $1 AND r.member_id = {}
             ORDER BY r.score_at_last DESC, c.address LIMIT {}",
            b.int(member.0),
            b.count(limit)
        );
        let rows = b.query(sql).fetch_all(&self.pool).await?;
        rows.iter().map(relationship_view).collect()
    }

    /// Members whose primary address or an alias matches `needle` (see
    /// [`address_matches`]): the first `limit` primary addresses, and how many.
    pub async fn search_members(
        &self,
        tenant: &TenantId,
        needle: &str,
        limit: usize,
    ) -> Result<Found<String>, StoreError> {
        self.search_members_scoped(tenant, needle, limit, ReadScope::Tenant)
            .await
    }

    /// [`Store::search_members`] among the members `scope` lists.
    pub async fn search_members_scoped(
        &self,
        tenant: &TenantId,
        needle: &str,
        limit: usize,
        scope: ReadScope,
    ) -> Result<Found<String>, StoreError> {
        let backend = self.backend();
        let filter = |b: &mut Bindings| {
            let visible = and(scope.members(b, "m.id"));
            format!(
                "FROM members m WHERE m.tenant_id = $1{visible} AND ({} OR EXISTS (
                     SELECT 1 FROM member_addresses a
                     WHERE a.tenant_id = m.tenant_id AND a.member_id = m.id AND {}) OR {})",
                address_match(backend, b, "m.email", needle),
                address_match(backend, b, "a.address", needle),
                name_match(backend, b, &name_of("m.tenant_id", "m.email"), needle)
            )
        };
        self.found_addresses(tenant, filter, "m.email", limit).await
    }

    /// Contacts whose address matches `needle` (see [`address_matches`]): the first
    /// `limit` addresses, and how many.
    pub async fn search_contacts(
        &self,
        tenant: &TenantId,
        needle: &str,
        limit: usize,
    ) -> Result<Found<String>, StoreError> {
        self.search_contacts_scoped(tenant, needle, limit, ReadScope::Tenant)
            .await
    }

    /// [`Store::search_contacts`] among the contacts `scope` lists.
    pub async fn search_contacts_scoped(
        &self,
        tenant: &TenantId,
        needle: &str,
        limit: usize,
        scope: ReadScope,
    ) -> Result<Found<String>, StoreError> {
        let backend = self.backend();
        let filter = |b: &mut Bindings| {
            let visible = and(scope.contacts(b, "c.address"));
            format!(
                "FROM contacts c WHERE c.tenant_id = $1{visible} AND ({} OR {})",
                address_match(backend, b, "c.address", needle),
                name_match(backend, b, &name_of("c.tenant_id", "c.address"), needle)
            )
        };
        self.found_addresses(tenant, filter, "c.address", limit)
            .await
    }

    /// Companies whose domain holds `needle`: the first `limit` by domain with their
    /// number of contacts, and how many.
    pub async fn search_companies(
        &self,
        tenant: &TenantId,
        needle: &str,
        limit: usize,
    ) -> Result<Found<CompanyView>, StoreError> {
        self.search_companies_scoped(tenant, needle, limit, ReadScope::Tenant)
            .await
    }

    /// [`Store::search_companies`] among the companies `scope` lists (each still with
    /// its number of contacts in all).
    pub async fn search_companies_scoped(
        &self,
        tenant: &TenantId,
        needle: &str,
        limit: usize,
        scope: ReadScope,
    ) -> Result<Found<CompanyView>, StoreError> {
        let backend = self.backend();
        let filter = |b: &mut Bindings| {
            let n = b.text(needle);
            let visible = and(scope.companies(b, "co.id"));
            format!(
                "FROM companies co WHERE co.tenant_id = $1{visible} AND {}",
                contains(backend, "co.domain", &n)
            )
        };
        let total = self.count_of(tenant, &filter).await?;
        let mut b = Bindings::new(tenant);
        let from = filter(&mut b);
        let sql = format!(
            "SELECT co.domain, (SELECT COUNT(*) FROM contacts c
                                WHERE c.tenant_id = co.tenant_id AND c.company_id = co.id)
             {from} ORDER BY co.domain LIMIT {}",
            b.count(limit)
        );
        let rows = b.query(sql).fetch_all(&self.pool).await?;
        let items = rows
            .iter()
            .map(CompanyView::from_row)
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(Found { items, total })
    }

    /// The first `limit` values of `column` over the rows `filter` selects (a `FROM …
    /// WHERE …` clause, its values bound to the given bindings), and how many rows.
    async fn found_addresses(
        &self,
        tenant: &TenantId,
        filter: impl Fn(&mut Bindings) -> String,
        column: &str,
        limit: usize,
    ) -> Result<Found<String>, StoreError> {
        let total = self.count_of(tenant, &filter).await?;
        let mut b = Bindings::new(tenant);
        let from = filter(&mut b);
        let sql = format!(
            "SELECT {column} {from} ORDER BY {column} LIMIT {}",
            b.count(limit)
        );
        let rows = b.query(sql).fetch_all(&self.pool).await?;
        let items = rows
            .iter()
            .map(|row| Ok(row.try_get(0)?))
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(Found { items, total })
    }

    async fn count_of(
        &self,
        tenant: &TenantId,
        filter: impl Fn(&mut Bindings) -> String,
    ) -> Result<i64, StoreError> {
        let mut b = Bindings::new(tenant);
        let sql = format!("SELECT COUNT(*) {}", filter(&mut b));
        Ok(b.query(sql).fetch_one(&self.pool).await?.try_get(0)?)
    }
}

/// Relationship rows (member, score, total, last) summed per member, strongest first:
/// by score, then total, then member address in byte order.
fn rank_strengths(rows: Vec<(String, f64, i64, i64)>) -> Vec<MemberStrength> {
    let mut by_member: BTreeMap<String, MemberStrength> = BTreeMap::new();
    for (member, score, total, last_ms) in rows {
        let entry = by_member
            .entry(member.clone())
            .or_insert_with(|| MemberStrength {
                member,
                score: 0.0,
                total: 0,
                last_ms,
            });
        entry.score += score;
        entry.total += total;
        entry.last_ms = entry.last_ms.max(last_ms);
    }
    let mut ranked: Vec<MemberStrength> = by_member.into_values().collect();
    ranked.sort_by(|a, b| b.score.total_cmp(&a.score).then(b.total.cmp(&a.total)));
    ranked
}

/// SQL true when the display name expression `name` holds `needle`, ignoring ASCII
/// case (SQLite's `lower` folds ASCII only, so both backends fold the same).
fn name_match(backend: Backend, b: &mut Bindings, name: &str, needle: &str) -> String {
    let n = b.text(needle.to_ascii_lowercase());
    let folded = match backend {
        Backend::Sqlite => format!("lower({name})"),
        Backend::Postgres => {
            format!("translate({name}, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')")
        }
    };
    format!("COALESCE({}, 1 = 0)", contains(backend, &folded, &n))
}

/// True when `needle` is in the address, or when it is several words and each is in
/// the address's local part: local parts often carry names ("Jane Doe" finds
/// `jane.doe@…` even before any header named her). Searches also match display names.
pub fn address_matches(address: &str, needle: &str) -> bool {
    if address.contains(needle) {
        return true;
    }
    let local = address.split('@').next().unwrap_or_default();
    let words: Vec<&str> = needle.split_whitespace().collect();
    words.len() > 1 && words.iter().all(|w| local.contains(w))
}

/// [`address_matches`] in SQL, for the address expression `column`.
fn address_match(backend: Backend, b: &mut Bindings, column: &str, needle: &str) -> String {
    let whole = contains(backend, column, &b.text(needle));
    let words: Vec<&str> = needle.split_whitespace().collect();
    if words.len() < 2 {
        return whole;
    }
    let local = match backend {
        Backend::Sqlite => format!(
            "(CASE WHEN instr({column}, '@') > 0
                   THEN substr({column}, 1, instr({column}, '@') - 1) ELSE {column} END)"
        ),
        Backend::Postgres => format!("split_part({column}, '@', 1)"),
    };
    let each: Vec<String> = words
        .iter()
        .map(|word| contains(backend, &local, &b.text(*word)))
        .collect();
    format!("({whole} OR ({}))", each.join(" AND "))
}
