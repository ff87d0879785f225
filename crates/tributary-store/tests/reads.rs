//! The paged reads (the API's lists, the console's ranking, timelines, strengths and
//! searches, member and link lookups) on both backends, against a straightforward
//! in-memory computation over the whole-tenant reads (`Store::activities` and friends)
//! of a generated organization: walking every page yields every item exactly once, in
//! the right order. A second tenant holding part of the same mail shows that every
//! query stays within its tenant.

mod common;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};
use tributary_core::{HeaderField, MessageRecord};
use tributary_emulator::org::{self, OrgConfig};
use tributary_store::{
    ActivityCursor, ActivityFilter, ActivityView, CapturePage, CapturedSighting, CompanyRank,
    CompanyView, ContactFilter, ContactView, CursorAdvance, Found, LinkView, MemberRole,
    MemberStrength, MemberView, ReadScope, RelationshipFilter, RelationshipView, Store, TenantId,
    TimelineOf, address_matches,
};
use tributary_testkit::{extractor_for, is_synced, records};

on_both_backends!(
    paged_reads_match_the_in_memory_computation,
    an_address_belongs_to_the_member_whose_primary_it_is,
);

/// One synced mailbox of the generated organization.
struct Source {
    mailbox: String,
    aliases: Vec<String>,
    records: Vec<MessageRecord>,
}

/// Captures `sources` into a new tenant, in pages of 100.
async fn capture(store: &Store, tenant: &TenantId, org: &org::Generated, sources: &[&Source]) {
    store.create_tenant(tenant, tenant.as_str()).await.unwrap();
    let extractor = extractor_for(&org.org);
    for source in sources {
        let aliases: Vec<&str> = source.aliases.iter().map(String::as_str).collect();
        let member = store
            .add_member(tenant, &source.mailbox, &aliases, MemberRole::Member)
            .await
            .unwrap();
        let link = store
            .link_mailbox(
                tenant,
                member,
                &source.mailbox,
                tributary_store::ConnectionKind::Google,
            )
            .await
            .unwrap();
        for (index, chunk) in source.records.chunks(100).enumerate() {
            let page = CapturePage {
                sightings: chunk
                    .iter()
                    .filter(|record| extractor.policy.sees(record, org.org.now_ms))
                    .map(|record| CapturedSighting {
                        extraction: extractor.extract(record),
                        provider_message_id: record.provider_message_id.clone().unwrap(),
                        labels: record.labels.clone(),
                    })
                    .collect(),
            };
            let cursor = CursorAdvance {
                stream: "full".into(),
                value: index.to_string(),
            };
            store
                .commit_page(tenant, link, &page, Some(&cursor))
                .await
                .unwrap();
        }
    }
}

fn sources(generated: &org::Generated) -> Vec<Source> {
    generated
        .org
        .users
        .iter()
        .filter(|u| is_synced(u))
        .map(|user| {
            let mailbox = user.primary_email.to_ascii_lowercase();
            Source {
                records: records(&generated.org.mailboxes[&mailbox])
                    .into_iter()
                    .map(undated_now_and_then)
                    .collect(),
                aliases: user
                    .aliases
                    .iter()
                    .chain(&user.non_editable_aliases)
                    .map(|a| a.to_ascii_lowercase())
                    .collect(),
                mailbox,
            }
        })
        .collect()
}

/// About one message in six (the same in every mailbox: chosen by its Message-ID) loses
/// its Date header and receipt time, so that timelines meet activities without a time.
fn undated_now_and_then(mut record: MessageRecord) -> MessageRecord {
    let message_id = record
        .headers
        .iter()
        .find(|h| h.field == HeaderField::MessageId)
        .map(|h| h.value().iter().map(|b| u32::from(*b)).sum::<u32>());
    if message_id.is_some_and(|sum| sum % 6 == 0) {
        record.headers.retain(|h| h.field != HeaderField::Date);
        record.internal_date_ms = None;
    }
    record
}

/// Everything the whole-tenant reads say: what the paged reads must agree with.
struct Reference {
    tenant: TenantId,
    activities: Vec<ActivityView>,
    contacts: Vec<ContactView>,
    companies: Vec<CompanyView>,
    relationships: Vec<RelationshipView>,
    members: Vec<MemberView>,
    links: Vec<LinkView>,
}

impl Reference {
    async fn load(store: &Store, tenant: &TenantId) -> Self {
        Reference {
            tenant: tenant.clone(),
            activities: store.activities(tenant).await.unwrap(),
            contacts: store.contacts(tenant).await.unwrap(),
            companies: store.companies(tenant).await.unwrap(),
            relationships: store.relationships(tenant).await.unwrap(),
            members: store.members(tenant).await.unwrap(),
            links: store.links(tenant).await.unwrap(),
        }
    }

    fn company_of(&self, address: &str) -> Option<&str> {
        self.contacts
            .iter()
            .find(|c| c.address == address)
            .and_then(|c| c.company.as_deref())
    }

    fn is_contact(&self, address: &str) -> bool {
        self.contacts.iter().any(|c| c.address == address)
    }

    /// Activities any of whose participants passes `involves`, newest first (no time
    /// last), equal times in the order `Store::activities` gives (by dedupe key).
    fn timeline(&self, involves: impl Fn(&str) -> bool) -> Vec<ActivityView> {
        let mut found: Vec<ActivityView> = self
            .activities
            .iter()
            .filter(|a| a.participants.iter().any(|p| involves(&p.address)))
            .cloned()
            .collect();
        found.sort_by_key(|a| Reverse(a.time_ms));
        found
    }

    /// Relationships with contacts passing `of`, summed per member, strongest first.
    fn strengths(&self, of: impl Fn(&str) -> bool) -> Vec<MemberStrength> {
        let mut by_member: BTreeMap<&str, MemberStrength> = BTreeMap::new();
        for r in self.relationships.iter().filter(|r| of(&r.contact)) {
            let entry = by_member
                .entry(&r.member)
                .or_insert_with(|| MemberStrength {
                    member: r.member.clone(),
                    score: 0.0,
                    total: 0,
                    last_ms: r.last_ms,
                });
            entry.score += r.score_at_last;
            entry.total += r.total;
            entry.last_ms = entry.last_ms.max(r.last_ms);
        }
        let mut ranked: Vec<MemberStrength> = by_member.into_values().collect();
        ranked.sort_by(|a, b| b.score.total_cmp(&a.score).then(b.total.cmp(&a.total)));
        ranked
    }

    /// Companies with contacts, most activities first, then by domain.
    fn ranking(&self) -> Vec<CompanyRank> {
        let mut ranked: Vec<CompanyRank> = self
            .companies
            .iter()
            .filter(|c| c.contacts > 0)
            .map(|company| {
                let domain = company.domain.as_str();
                let of_company: Vec<&ActivityView> = self
                    .activities
                    .iter()
                    .filter(|a| {
                        a.participants
                            .iter()
                            .any(|p| self.company_of(&p.address) == Some(domain))
                    })
                    .collect();
                CompanyRank {
                    domain: domain.to_owned(),
                    activities: of_company.len() as i64,
                    contacts: company.contacts,
                    last_ms: of_company.iter().filter_map(|a| a.time_ms).max(),
                    best: self
                        .strengths(|c| self.company_of(c) == Some(domain))
                        .into_iter()
                        .next(),
                }
            })
            .collect();
        ranked.sort_by(|a, b| {
            b.activities
                .cmp(&a.activities)
                .then_with(|| a.domain.cmp(&b.domain))
        });
        ranked
    }

    fn member_addresses(&self, member: &MemberView) -> Vec<String> {
        let mut addresses = vec![member.email.clone()];
        addresses.extend(member.aliases.iter().cloned());
        addresses
    }
}

async fn paged_reads_match_the_in_memory_computation(store: Store) {
    let generated = org::generate(&OrgConfig {
        seed: 7,
        users: 10,
        messages_per_user: 200,
        ..OrgConfig::default()
    });
    let sources = sources(&generated);
    let all: Vec<&Source> = sources.iter().collect();
    let acme = TenantId::new("acme");
    let part = TenantId::new("part");
    capture(&store, &acme, &generated, &all).await;
    // The second tenant holds the same mail as seen by one mailbox: shared addresses,
    // other ids and counts.
    capture(&store, &part, &generated, &all[..1]).await;

    let acme_ref = Reference::load(&store, &acme).await;
    let part_ref = Reference::load(&store, &part).await;
    eprintln!(
        "activities {}, undated {}, companies {}, relationships {}, members {}",
        acme_ref.activities.len(),
        acme_ref
            .activities
            .iter()
            .filter(|a| a.time_ms.is_none())
            .count(),
        acme_ref.companies.len(),
        acme_ref.relationships.len(),
        acme_ref.members.len()
    );
    assert!(acme_ref.activities.len() > 100, "a sizeable organization");
    assert!(acme_ref.activities.iter().any(|a| a.time_ms.is_none()));
    assert!(acme_ref.companies.len() > 3 && acme_ref.relationships.len() > 10);
    assert!(part_ref.activities.len() < acme_ref.activities.len());

    for reference in [&acme_ref, &part_ref] {
        api_lists_match(&store, reference).await;
        ranking_matches(&store, reference).await;
        timelines_match(&store, reference).await;
        strengths_and_member_pages_match(&store, reference).await;
        searches_match(&store, reference).await;
        member_lookups_match(&store, reference).await;
        scoped_reads_show_a_member_what_they_took_part_in(&store, reference).await;
    }
    tenants_do_not_see_each_other(&store, &acme_ref, &part_ref).await;
}

/// Every page of the contacts matching `filter`.
async fn all_contacts(
    store: &Store,
    tenant: &TenantId,
    filter: &ContactFilter,
    limit: usize,
) -> Vec<ContactView> {
    let mut all = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store
            .contacts_page(tenant, filter, after.as_deref(), limit)
            .await
            .unwrap();
        assert!(page.contacts.len() <= limit);
        all.extend(page.contacts);
        match page.next {
            Some(next) => after = Some(next),
            None => return all,
        }
    }
}

async fn all_companies(
    store: &Store,
    tenant: &TenantId,
    q: Option<&str>,
    limit: usize,
) -> Vec<CompanyView> {
    let mut all = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store
            .companies_page(tenant, q, after.as_deref(), limit)
            .await
            .unwrap();
        assert!(page.companies.len() <= limit);
        all.extend(page.companies);
        match page.next {
            Some(next) => after = Some(next),
            None => return all,
        }
    }
}

async fn all_relationships(
    store: &Store,
    tenant: &TenantId,
    filter: &RelationshipFilter,
    limit: usize,
) -> Vec<RelationshipView> {
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .relationships_page(tenant, filter, after.as_ref(), limit)
            .await
            .unwrap();
        assert!(page.relationships.len() <= limit);
        all.extend(page.relationships);
        match page.next {
            Some(next) => after = Some(next),
            None => return all,
        }
    }
}

/// The API's contacts, companies and relationships: byte order, filters, every page.
async fn api_lists_match(store: &Store, r: &Reference) {
    let tenant = &r.tenant;
    let mut contacts = r.contacts.clone();
    contacts.sort_by(|a, b| a.address.cmp(&b.address));
    for limit in [1, 7, 1000] {
        let paged = all_contacts(store, tenant, &ContactFilter::default(), limit).await;
        assert_eq!(paged, contacts, "contacts, pages of {limit}");
    }
    let company = r.companies[r.companies.len() / 2].domain.clone();
    let fragment: String = company.chars().take(3).collect();
    for filter in [
        ContactFilter {
            q: Some(fragment.to_uppercase()),
            company: None,
        },
        ContactFilter {
            q: None,
            company: Some(company.clone()),
        },
        ContactFilter {
            q: Some("_".into()),
            company: None,
        },
    ] {
        let q = filter.q.as_deref().map(str::to_lowercase);
        let expected: Vec<ContactView> = contacts
            .iter()
            .filter(|c| filter.company.is_none() || c.company == filter.company)
            .filter(|c| {
                q.as_deref().is_none_or(|n| {
                    c.address.contains(n) || c.company.as_deref().is_some_and(|d| d.contains(n))
                })
            })
            .cloned()
            .collect();
        assert_eq!(
            all_contacts(store, tenant, &filter, 3).await,
            expected,
            "{filter:?}"
        );
    }

    let mut companies = r.companies.clone();
    companies.sort_by(|a, b| a.domain.cmp(&b.domain));
    for limit in [1, 4, 1000] {
        assert_eq!(all_companies(store, tenant, None, limit).await, companies);
    }
    let dotted: Vec<CompanyView> = companies
        .iter()
        .filter(|c| c.domain.contains(".co"))
        .cloned()
        .collect();
    assert_eq!(all_companies(store, tenant, Some(".CO"), 2).await, dotted);

    let mut relationships = r.relationships.clone();
    relationships.sort_by(|a, b| (&a.member, &a.contact).cmp(&(&b.member, &b.contact)));
    for limit in [1, 6, 1000] {
        let paged = all_relationships(store, tenant, &RelationshipFilter::default(), limit).await;
        assert_eq!(paged, relationships, "relationships, pages of {limit}");
    }
    let member = relationships[relationships.len() / 2].member.clone();
    let contact = relationships[relationships.len() / 3].contact.clone();
    let by_member = RelationshipFilter {
        member: Some(member.to_uppercase()),
        contact: None,
    };
    let expected: Vec<_> = relationships
        .iter()
        .filter(|x| x.member == member)
        .cloned()
        .collect();
    assert_eq!(
        all_relationships(store, tenant, &by_member, 2).await,
        expected
    );
    let by_contact = RelationshipFilter {
        member: None,
        contact: Some(contact.clone()),
    };
    let expected: Vec<_> = relationships
        .iter()
        .filter(|x| x.contact == contact)
        .cloned()
        .collect();
    assert_eq!(
        all_relationships(store, tenant, &by_contact, 2).await,
        expected
    );
}

async fn ranking_matches(store: &Store, r: &Reference) {
    let expected = r.ranking();
    assert!(!expected.is_empty());
    for limit in [1, 3, 500] {
        let mut ranked = Vec::new();
        let mut offset = 0;
        loop {
            let page = store
                .ranked_companies(&r.tenant, offset, limit)
                .await
                .unwrap();
            assert!(page.companies.len() <= limit);
            offset += page.companies.len();
            ranked.extend(page.companies);
            if !page.more {
                break;
            }
        }
        assert_eq!(ranked, expected, "ranking, pages of {limit}");
    }
}

/// Walks a timeline in pages of `limit`, checking each page's contacts.
async fn walk_timeline(
    store: &Store,
    r: &Reference,
    of: &TimelineOf,
    limit: usize,
) -> Vec<ActivityView> {
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .timeline_page(&r.tenant, of, after.as_ref(), limit)
            .await
            .unwrap();
        assert!(page.activities.len() <= limit);
        let contacts: BTreeSet<String> = page
            .activities
            .iter()
            .flat_map(|a| &a.participants)
            .filter(|p| r.is_contact(&p.address))
            .map(|p| p.address.clone())
            .collect();
        assert_eq!(page.contacts, contacts, "{of:?}");
        all.extend(page.activities);
        match page.next {
            Some(next) => after = Some(next),
            None => return all,
        }
    }
}

async fn timelines_match(store: &Store, r: &Reference) {
    let mut checked = 0;
    for company in r.companies.iter().step_by(3).take(4) {
        let domain = company.domain.as_str();
        let expected = r.timeline(|a| r.company_of(a) == Some(domain));
        let of = TimelineOf::Company(domain.to_uppercase());
        for limit in [3, 1000] {
            assert_eq!(
                walk_timeline(store, r, &of, limit).await,
                expected,
                "{domain}"
            );
        }
        checked += expected.len();
    }
    for contact in r.contacts.iter().step_by(7).take(5) {
        let expected = r.timeline(|a| a == contact.address);
        let of = TimelineOf::Contact(contact.address.clone());
        assert_eq!(walk_timeline(store, r, &of, 2).await, expected);
        checked += expected.len();
    }
    for member in &r.members {
        let addresses = r.member_addresses(member);
        let expected = r.timeline(|a| addresses.iter().any(|m| m == a));
        let of = TimelineOf::Member(member.id);
        assert_eq!(
            walk_timeline(store, r, &of, 5).await,
            expected,
            "{}",
            member.email
        );
        checked += expected.len();
    }
    assert!(checked > 0, "the timelines compared hold activities");
    let unknown = TimelineOf::Contact("nobody@nowhere.invalid".into());
    assert!(walk_timeline(store, r, &unknown, 5).await.is_empty());
}

async fn strengths_and_member_pages_match(store: &Store, r: &Reference) {
    for company in r.companies.iter().take(5) {
        let domain = company.domain.as_str();
        let mut expected = r.strengths(|c| r.company_of(c) == Some(domain));
        expected.truncate(2);
        let found = store.company_strengths(&r.tenant, domain, 2).await.unwrap();
        assert_eq!(found, expected, "{domain}");
    }
    for contact in r.contacts.iter().step_by(5).take(6) {
        let expected = r.strengths(|c| c == contact.address);
        let found = store
            .contact_strengths(&r.tenant, &contact.address, 100)
            .await
            .unwrap();
        assert_eq!(found, expected, "{}", contact.address);
        let stored = store.contact(&r.tenant, &contact.address).await.unwrap();
        assert_eq!(stored.as_ref(), Some(contact));
    }
    for company in r.companies.iter().take(5) {
        let mut contacts: Vec<String> = r
            .contacts
            .iter()
            .filter(|c| c.company.as_deref() == Some(company.domain.as_str()))
            .map(|c| c.address.clone())
            .collect();
        let total = contacts.len() as i64;
        contacts.truncate(2);
        let found = store
            .company_contacts(&r.tenant, &company.domain, 2)
            .await
            .unwrap();
        assert_eq!(
            found,
            Found {
                items: contacts,
                total
            }
        );
    }
    for member in &r.members {
        let mut expected: Vec<RelationshipView> = r
            .relationships
            .iter()
            .filter(|x| x.member == member.email)
            .cloned()
            .collect();
        expected.sort_by(|a, b| b.score_at_last.total_cmp(&a.score_at_last));
        expected.truncate(4);
        let found = store
            .member_relationships(&r.tenant, member.id, 4)
            .await
            .unwrap();
        assert_eq!(found, expected, "{}", member.email);
    }
}

/// The first `limit` of `items` passing `matches`, and how many pass.
fn found<T: Clone>(items: &[T], matches: impl Fn(&T) -> bool, limit: usize) -> Found<T> {
    let all: Vec<T> = items.iter().filter(|i| matches(i)).cloned().collect();
    Found {
        total: all.len() as i64,
        items: all.into_iter().take(limit).collect(),
    }
}

async fn searches_match(store: &Store, r: &Reference) {
    let contact = &r.contacts[r.contacts.len() / 2].address;
    let local = contact.split('@').next().unwrap();
    // Several words, each in a local part but not together in an address.
    let words = match local.split_once('.') {
        Some((first, last)) => format!("{last} {first}"),
        None => format!("{} {}", &local[..1], &local[1..]),
    };
    let member = &r.members[0].email;
    let needles = [
        local[..local.len().min(3)].to_owned(),
        words,
        member.split('@').next().unwrap().to_owned(),
        ".".to_owned(),
        "_".to_owned(),
        "%".to_owned(),
        "zzz-matches-nothing".to_owned(),
    ];
    for needle in &needles {
        for limit in [2, 100] {
            let members: Vec<String> = r.members.iter().map(|m| m.email.clone()).collect();
            let expected = found(
                &members,
                |email| {
                    let m = r.members.iter().find(|m| &m.email == email).unwrap();
                    address_matches(&m.email, needle)
                        || m.aliases.iter().any(|a| address_matches(a, needle))
                },
                limit,
            );
            let got = store
                .search_members(&r.tenant, needle, limit)
                .await
                .unwrap();
            assert_eq!(got, expected, "members matching {needle:?}");

            let contacts: Vec<String> = r.contacts.iter().map(|c| c.address.clone()).collect();
            let expected = found(&contacts, |a| address_matches(a, needle), limit);
            let got = store
                .search_contacts(&r.tenant, needle, limit)
                .await
                .unwrap();
            assert_eq!(got, expected, "contacts matching {needle:?}");

            let expected = found(&r.companies, |c| c.domain.contains(needle.as_str()), limit);
            let got = store
                .search_companies(&r.tenant, needle, limit)
                .await
                .unwrap();
            assert_eq!(got, expected, "companies matching {needle:?}");
        }
    }
}

async fn member_lookups_match(store: &Store, r: &Reference) {
    let tenant = &r.tenant;
    for member in &r.members {
        assert_eq!(
            store.member(tenant, member.id).await.unwrap().as_ref(),
            Some(member)
        );
        for address in r.member_addresses(member) {
            let shouted = format!("  {}  ", address.to_uppercase());
            let found = store.member_by_address(tenant, &shouted).await.unwrap();
            assert_eq!(found.as_ref(), Some(member), "{address}");
        }
        let links: Vec<LinkView> = r
            .links
            .iter()
            .filter(|l| l.member == member.email)
            .cloned()
            .collect();
        assert!(!links.is_empty());
        assert_eq!(
            store.links_of_member(tenant, member.id).await.unwrap(),
            links
        );
    }
    let outsider = store
        .member_by_address(tenant, "nobody@nowhere.invalid")
        .await
        .unwrap();
    assert_eq!(outsider, None);
}

async fn tenants_do_not_see_each_other(store: &Store, acme: &Reference, part: &Reference) {
    for (own, other) in [(acme, part), (part, acme)] {
        for member in &other.members {
            assert_eq!(store.member(&own.tenant, member.id).await.unwrap(), None);
            assert!(
                store
                    .links_of_member(&own.tenant, member.id)
                    .await
                    .unwrap()
                    .is_empty()
            );
            let timeline = store
                .timeline_page(&own.tenant, &TimelineOf::Member(member.id), None, 10)
                .await
                .unwrap();
            assert!(timeline.activities.is_empty());
            assert!(
                store
                    .member_relationships(&own.tenant, member.id, 10)
                    .await
                    .unwrap()
                    .is_empty()
            );
        }
    }
    // The addresses `part` has are `acme`'s too, with fewer activities: its answers
    // are its own (checked above against its own reference), and a tenant that does
    // not exist sees nothing at all.
    let nobody = TenantId::new("nobody");
    let nothing = store
        .contacts_page(&nobody, &ContactFilter::default(), None, 10)
        .await
        .unwrap();
    assert!(nothing.contacts.is_empty() && nothing.next.is_none());
    assert!(
        store
            .ranked_companies(&nobody, 0, 10)
            .await
            .unwrap()
            .companies
            .is_empty()
    );
    let member = &acme.members[0];
    assert_eq!(
        store
            .member_by_address(&nobody, &member.email)
            .await
            .unwrap(),
        None
    );
    let shared = part.contacts[0].address.clone();
    let in_part = store
        .timeline_page(
            &part.tenant,
            &TimelineOf::Contact(shared.clone()),
            None,
            1000,
        )
        .await
        .unwrap();
    let in_acme = store
        .timeline_page(&acme.tenant, &TimelineOf::Contact(shared), None, 1000)
        .await
        .unwrap();
    let acme_ids: BTreeSet<i64> = acme.activities.iter().map(|a| a.id).collect();
    assert!(in_part.activities.iter().all(|a| !acme_ids.contains(&a.id)));
    assert!(in_acme.activities.iter().all(|a| acme_ids.contains(&a.id)));
}

/// An alias claimed first by one member and later the primary address of another: the
/// lookup answers the member who signs in with it.
async fn an_address_belongs_to_the_member_whose_primary_it_is(store: Store) {
    let tenant = TenantId::new("acme");
    store.create_tenant(&tenant, "Acme").await.unwrap();
    let first = store
        .add_member(
            &tenant,
            "ann@acme.example",
            &["sales@acme.example"],
            MemberRole::Member,
        )
        .await
        .unwrap();
    let owner = store
        .add_member(&tenant, "sales@acme.example", &[], MemberRole::Member)
        .await
        .unwrap();
    let found = store
        .member_by_address(&tenant, "Sales@acme.example")
        .await
        .unwrap();
    assert_eq!(found.map(|m| m.id), Some(owner));
    let found = store
        .member_by_address(&tenant, "ann@acme.example")
        .await
        .unwrap();
    assert_eq!(found.map(|m| m.id), Some(first));
}

/// Every page of the activities `scope` lists, newest first.
async fn all_activities_scoped(
    store: &Store,
    tenant: &TenantId,
    scope: ReadScope,
) -> Vec<ActivityView> {
    let mut all = Vec::new();
    let mut after: Option<ActivityCursor> = None;
    loop {
        let page = store
            .activities_page_scoped(tenant, &ActivityFilter::default(), after, 37, scope)
            .await
            .unwrap();
        all.extend(page.activities);
        match page.next {
            Some(next) => after = Some(next),
            None => return all,
        }
    }
}

/// A member's scopes against the in-memory computation: under `Own` exactly the
/// activities one of the member's addresses took part in, the contacts met there, their
/// companies and the member's own relationships; under `Organization` everything, the
/// others' activities without subject and mailboxes; `Nothing` nothing. Every activity
/// names the mailboxes (and provider) holding it, every participant its member.
async fn scoped_reads_show_a_member_what_they_took_part_in(store: &Store, r: &Reference) {
    let tenant = &r.tenant;
    let is_member_address = |address: &str| {
        r.members
            .iter()
            .find(|m| r.member_addresses(m).iter().any(|a| a == address))
    };
    for activity in &r.activities {
        let mut mailboxes: Vec<&str> = activity.sightings.iter().map(|s| s.0.as_str()).collect();
        mailboxes.dedup();
        let captured: Vec<&str> = activity
            .captured_by
            .iter()
            .map(|c| c.mailbox.as_str())
            .collect();
        assert_eq!(captured, mailboxes, "{}", activity.dedupe_key);
        assert!(activity.captured_by.iter().all(|c| c.provider == "google"));
        for p in &activity.participants {
            let expected = is_member_address(&p.address).map(|m| m.email.clone());
            assert_eq!(
                p.member, expected,
                "{} in {}",
                p.address, activity.dedupe_key
            );
        }
    }
    let all_ids: Vec<i64> = all_activities_scoped(store, tenant, ReadScope::Tenant)
        .await
        .iter()
        .map(|a| a.id)
        .collect();
    for member in &r.members {
        let addresses = r.member_addresses(member);
        let took_part = |a: &ActivityView| {
            a.participants
                .iter()
                .any(|p| addresses.contains(&p.address))
        };
        let own = ReadScope::Own(member.id);

        let listed = all_activities_scoped(store, tenant, own).await;
        let expected: Vec<i64> = all_ids
            .iter()
            .copied()
            .filter(|id| took_part(r.activities.iter().find(|a| a.id == *id).unwrap()))
            .collect();
        assert_eq!(
            listed.iter().map(|a| a.id).collect::<Vec<_>>(),
            expected,
            "{}",
            member.email
        );
        assert!(listed.iter().all(|a| !a.withheld));

        let met: BTreeSet<&str> = r
            .activities
            .iter()
            .filter(|a| took_part(a))
            .flat_map(|a| a.participants.iter().map(|p| p.address.as_str()))
            .filter(|address| r.is_contact(address))
            .collect();
        let contacts: Vec<String> = {
            let mut all = Vec::new();
            let mut after: Option<String> = None;
            loop {
                let page = store
                    .contacts_page_scoped(
                        tenant,
                        &ContactFilter::default(),
                        after.as_deref(),
                        50,
                        own,
                    )
                    .await
                    .unwrap();
                all.extend(page.contacts.into_iter().map(|c| c.address));
                match page.next {
                    Some(next) => after = Some(next),
                    None => break all,
                }
            }
        };
        assert_eq!(
            contacts,
            met.iter().map(|a| a.to_string()).collect::<Vec<_>>()
        );
        for contact in r.contacts.iter().take(40) {
            let visible = store
                .contact_scoped(tenant, &contact.address, own)
                .await
                .unwrap();
            assert_eq!(
                visible.is_some(),
                met.contains(contact.address.as_str()),
                "{}",
                contact.address
            );
            let timeline = store
                .timeline_page_scoped(
                    tenant,
                    &TimelineOf::Contact(contact.address.clone()),
                    None,
                    1000,
                    own,
                )
                .await
                .unwrap();
            assert!(timeline.activities.iter().all(&took_part));
        }
        let companies: BTreeSet<String> = store
            .companies_page_scoped(tenant, None, None, 1000, own)
            .await
            .unwrap()
            .companies
            .into_iter()
            .map(|c| c.domain)
            .collect();
        let expected: BTreeSet<String> = met
            .iter()
            .filter_map(|a| r.company_of(a))
            .map(str::to_owned)
            .collect();
        assert_eq!(companies, expected);
        let relationships = store
            .relationships_page_scoped(tenant, &RelationshipFilter::default(), None, 1000, own)
            .await
            .unwrap()
            .relationships;
        let mine: Vec<&RelationshipView> = r
            .relationships
            .iter()
            .filter(|rel| rel.member == member.email)
            .collect();
        assert_eq!(relationships.iter().collect::<Vec<_>>(), mine);
        let ranking = store
            .ranked_companies_scoped(tenant, 0, 1000, own)
            .await
            .unwrap();
        assert!(
            ranking
                .companies
                .iter()
                .all(|c| expected.contains(&c.domain))
        );
        assert!(
            ranking
                .companies
                .iter()
                .filter_map(|c| c.best.as_ref())
                .all(|best| best.member == member.email)
        );
        let found = store
            .search_members_scoped(tenant, "", 100, own)
            .await
            .unwrap();
        assert_eq!(found.items, std::slice::from_ref(&member.email));

        let organization =
            all_activities_scoped(store, tenant, ReadScope::Organization(member.id)).await;
        assert_eq!(
            organization.iter().map(|a| a.id).collect::<Vec<_>>(),
            all_ids
        );
        for activity in &organization {
            let theirs = took_part(activity);
            assert_eq!(activity.withheld, !theirs, "{}", activity.dedupe_key);
            if !theirs {
                assert_eq!(activity.subject, None);
                assert!(activity.sightings.is_empty() && activity.captured_by.is_empty());
                assert!(!activity.participants.is_empty(), "metadata is kept");
            }
        }
    }
    assert!(
        all_activities_scoped(store, tenant, ReadScope::Nothing)
            .await
            .is_empty()
    );
    assert!(
        store
            .relationships_page_scoped(
                tenant,
                &RelationshipFilter::default(),
                None,
                10,
                ReadScope::Nothing
            )
            .await
            .unwrap()
            .relationships
            .is_empty()
    );
}
