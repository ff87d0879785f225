//! The population: the directory (users, groups), external companies and their people,
//! free-mail correspondents and automated senders. Everyone who can appear in a header is
//! a [`Person`] with a stable id.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, SecondsFormat, Utc};
use rand::Rng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::mail::{Mailer, PersonId};
use super::names::{
    self, AutomatedKind, COMPANIES, Country, FAMILY_NAMES, FREE_MAIL_DOMAINS, GIVEN_NAMES,
    JAPANESE_FAMILY_NAMES, JAPANESE_GIVEN_NAMES, Name,
};
use crate::model::DirectoryUser;

pub(crate) const DAY_MS: i64 = 86_400_000;

/// How a person's display name is written in address headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameStyle {
    /// `Ann Lee <ann@x>`, or quoted when the name needs it (`"Lee, Ann" <ann@x>`).
    Phrase,
    /// `=?UTF-8?B?...?= <ann@x>`
    EncodedB,
    /// `=?UTF-8?Q?...?= <ann@x>`
    EncodedQ,
    /// `ann@x`
    Bare,
    /// `<ann@x>`
    AngleOnly,
    /// `ann@x (Ann Lee)`: the old comment form.
    Comment,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PersonKind {
    /// A directory user: index into [`Population::users`].
    User(usize),
    /// An internal group address (not a user): index into [`Population::groups`].
    Group(usize),
    /// A human-looking address on a subdomain of the primary domain.
    InternalService,
    /// An automated address on the primary domain.
    InternalAutomated,
    /// A person at an external company.
    Contact,
    /// A person writing from a free-mail provider.
    FreeMail,
    /// An external automated sender (or a mailing list address).
    Automated(AutomatedKind),
}

#[derive(Debug, Clone)]
pub struct Person {
    /// The name as a reader sees it (decoded); `None` for addresses without a name.
    pub display_name: Option<String>,
    /// What a greeting calls them.
    pub given_name: String,
    /// The canonical (lowercase) address; users also have aliases.
    pub address: String,
    pub kind: PersonKind,
    /// Index into [`Population::companies`] for people at external companies.
    pub company: Option<usize>,
    pub name_style: NameStyle,
    pub utc_offset_minutes: i32,
    pub mailer: Mailer,
    /// Correspondents sometimes type this address with capitals.
    pub mixed_case: bool,
    pub japanese: bool,
}

#[derive(Debug, Clone)]
pub struct Company {
    pub name: String,
    /// Registrable domain: the company a capture must attribute its people to.
    pub domain: String,
    pub country: Country,
    /// Human contacts only.
    pub people: Vec<PersonId>,
}

#[derive(Debug, Clone)]
pub struct Group {
    pub person: PersonId,
    /// Users (indices) whose mailboxes receive the group's mail.
    pub members: Vec<usize>,
}

/// Generator-side facts about a directory user.
#[derive(Debug, Clone)]
pub struct UserProfile {
    pub person: PersonId,
    /// Has a Gmail mailbox holding mail (not the `isMailboxSetup: false` user).
    pub has_mailbox: bool,
    /// Synced under the default policy: a member.
    pub synced: bool,
    /// Suspended and archived users stopped receiving mail at this instant.
    pub active_until_ms: Option<i64>,
    /// (label id, name) of the mailbox's user labels.
    pub user_labels: Vec<(String, String)>,
    /// Companies this user mostly deals with.
    pub favorite_companies: Vec<usize>,
}

#[derive(Debug, Clone)]
pub struct Population {
    pub customer_id: String,
    /// The primary domain first.
    pub domains: Vec<String>,
    pub users: Vec<DirectoryUser>,
    /// Parallel to `users`.
    pub profiles: Vec<UserProfile>,
    pub people: Vec<Person>,
    pub companies: Vec<Company>,
    pub groups: Vec<Group>,
    pub free_mail: Vec<PersonId>,
    pub automated: Vec<PersonId>,
    pub internal_service: PersonId,
    pub internal_automated: Vec<PersonId>,
    by_address: BTreeMap<String, PersonId>,
}

impl Population {
    /// The person an address (any case, aliases included) belongs to.
    pub fn person_by_address(&self, address: &str) -> Option<&Person> {
        self.by_address
            .get(&address.trim().to_ascii_lowercase())
            .map(|id| &self.people[*id])
    }

    pub fn synced_users(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.users.len()).filter(|u| self.profiles[*u].synced)
    }

    pub fn user_person(&self, user: usize) -> &Person {
        &self.people[self.profiles[user].person]
    }

    /// The users whose mailboxes receive mail sent to `person` (a user or a group).
    pub fn mailbox_users_of(&self, person: PersonId) -> &[usize] {
        match &self.people[person].kind {
            PersonKind::User(u) => std::slice::from_ref(u),
            PersonKind::Group(g) => &self.groups[*g].members,
            _ => &[],
        }
    }

    pub fn build(rng: &mut ChaCha8Rng, user_count: usize, now_ms: i64) -> Population {
        let mut builder = Builder {
            rng,
            now_ms,
            people: Vec::new(),
            by_address: BTreeMap::new(),
        };
        let (users, mut profiles) = builder.users(user_count);
        let groups = builder.groups(&profiles);
        let internal_service = builder.add(Person {
            display_name: Some("IT Helpdesk".into()),
            given_name: "IT".into(),
            address: format!("it@{}", names::INTERNAL_SUBDOMAIN),
            kind: PersonKind::InternalService,
            company: None,
            name_style: NameStyle::Phrase,
            utc_offset_minutes: 0,
            mailer: Mailer::Script,
            mixed_case: false,
            japanese: false,
        });
        let internal_automated = builder.internal_automated();
        let companies = builder.companies(user_count);
        let free_mail = builder.free_mail();
        let automated = builder.automated(&companies);
        for profile in &mut profiles {
            profile.favorite_companies = builder.favorites(companies.len());
        }
        let customer_id = builder.customer_id();
        Population {
            customer_id,
            domains: vec![
                names::PRIMARY_DOMAIN.to_string(),
                names::SECOND_DOMAIN.to_string(),
            ],
            users,
            profiles,
            people: builder.people,
            companies,
            groups,
            free_mail,
            automated,
            internal_service,
            internal_automated,
            by_address: builder.by_address,
        }
    }
}

/// Which users are special: counted within `--users`, from the end of the list.
fn special_role(index: usize, count: usize) -> Option<SpecialRole> {
    if count >= 3 && index == count - 1 {
        Some(SpecialRole::Suspended)
    } else if count >= 4 && index == count - 2 {
        Some(SpecialRole::NoMailbox)
    } else if count >= 6 && index == count - 3 {
        Some(SpecialRole::Archived)
    } else {
        None
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SpecialRole {
    Suspended,
    Archived,
    NoMailbox,
}

fn is_admin(index: usize, count: usize) -> bool {
    index == 0 || (index == 1 && count >= 4) || (count >= 10 && index == count / 2)
}

struct Builder<'r> {
    rng: &'r mut ChaCha8Rng,
    now_ms: i64,
    people: Vec<Person>,
    by_address: BTreeMap<String, PersonId>,
}

impl Builder<'_> {
    fn add(&mut self, person: Person) -> PersonId {
        let id = self.people.len();
        let previous = self.by_address.insert(person.address.clone(), id);
        assert!(previous.is_none(), "duplicate address {}", person.address);
        self.people.push(person);
        id
    }

    fn taken(&self, address: &str) -> bool {
        self.by_address.contains_key(address)
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        *items.choose(self.rng).expect("non-empty list")
    }

    fn digits(&mut self, count: usize) -> String {
        (0..count)
            .map(|_| char::from(b'0' + self.rng.gen_range(0..10u8)))
            .collect()
    }

    fn customer_id(&mut self) -> String {
        const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        let tail: String = (0..7)
            .map(|_| char::from(ALPHABET[self.rng.gen_range(0..ALPHABET.len())]))
            .collect();
        format!("C0{tail}")
    }

    fn rfc3339(ms: i64) -> String {
        DateTime::<Utc>::from_timestamp_millis(ms)
            .unwrap_or_default()
            .to_rfc3339_opts(SecondsFormat::Millis, true)
    }

    fn users(&mut self, count: usize) -> (Vec<DirectoryUser>, Vec<UserProfile>) {
        let primary = names::PRIMARY_DOMAIN;
        let mut users = Vec::with_capacity(count);
        let mut profiles = Vec::with_capacity(count);
        let mut used_ids = BTreeSet::new();
        for index in 0..count {
            let (given, family, local) = self.unique_user_name(primary);
            let email = format!("{local}@{primary}");
            let role = special_role(index, count);
            let mut aliases = Vec::new();
            let nickname = format!("{}@{primary}", given.ascii);
            if self.rng.gen_bool(0.3) && !self.taken(&nickname) {
                aliases.push(nickname);
            }
            if index == 1 {
                aliases.push(format!("{local}@{}", names::SECOND_DOMAIN));
            }
            let display = format!("{} {}", given.display, family.display);
            let mut id = format!("1{}", self.digits(20));
            while !used_ids.insert(id.clone()) {
                id = format!("1{}", self.digits(20));
            }
            let created_ms = self.now_ms - self.rng.gen_range(900..2200) * DAY_MS;
            let admin = is_admin(index, count) && role.is_none();
            users.push(DirectoryUser {
                id,
                primary_email: email.clone(),
                given_name: given.display.to_string(),
                family_name: family.display.to_string(),
                aliases: aliases.clone(),
                non_editable_aliases: Vec::new(),
                suspended: role == Some(SpecialRole::Suspended),
                archived: role == Some(SpecialRole::Archived),
                is_admin: admin,
                is_mailbox_setup: role != Some(SpecialRole::NoMailbox),
                org_unit_path: if admin {
                    "/".to_string()
                } else {
                    self.pick(names::ORG_UNITS).to_string()
                },
                creation_time: Self::rfc3339(created_ms),
                deleted: false,
            });
            let name_style = encoded_or_phrase(&display, self.rng.gen_bool(0.7));
            let utc_offset_minutes = self.pick(&[-300, -300, -480, 0, 0, 60]);
            let mailer = if self.rng.gen_bool(0.9) {
                Mailer::Gmail
            } else {
                Mailer::AppleMail
            };
            let mixed_case = self.rng.gen_bool(0.1);
            let person = self.add(Person {
                display_name: Some(display),
                given_name: given.display.to_string(),
                address: email,
                kind: PersonKind::User(index),
                company: None,
                name_style,
                utc_offset_minutes,
                mailer,
                mixed_case,
                japanese: false,
            });
            for alias in &aliases {
                self.by_address.insert(alias.clone(), person);
            }
            profiles.push(UserProfile {
                person,
                has_mailbox: role != Some(SpecialRole::NoMailbox),
                synced: role.is_none(),
                active_until_ms: match role {
                    Some(SpecialRole::Suspended) => Some(self.now_ms - 120 * DAY_MS),
                    Some(SpecialRole::Archived) => Some(self.now_ms - 500 * DAY_MS),
                    _ => None,
                },
                user_labels: self.user_labels(),
                favorite_companies: Vec::new(),
            });
        }
        (users, profiles)
    }

    fn unique_user_name(&mut self, domain: &str) -> (Name, Name, String) {
        for attempt in 0.. {
            let given = self.pick(GIVEN_NAMES);
            let family = self.pick(FAMILY_NAMES);
            let local = if attempt < 20 {
                format!("{}.{}", given.ascii, family.ascii)
            } else {
                format!("{}.{}{}", given.ascii, family.ascii, attempt)
            };
            if !self.taken(&format!("{local}@{domain}")) {
                return (given, family, local);
            }
        }
        unreachable!("the attempt counter is unbounded")
    }

    fn user_labels(&mut self) -> Vec<(String, String)> {
        let count = self.rng.gen_range(3..=5);
        let mut chosen: Vec<&str> = names::USER_LABEL_NAMES
            .choose_multiple(self.rng, count)
            .copied()
            .collect();
        // Most mailboxes file newsletters and receipts; keep those names common.
        if !chosen.contains(&"Newsletters") && self.rng.gen_bool(0.6) {
            chosen[0] = "Newsletters";
        }
        chosen
            .into_iter()
            .enumerate()
            .map(|(i, name)| (format!("Label_{}", i + 1), name.to_string()))
            .collect()
    }

    fn groups(&mut self, profiles: &[UserProfile]) -> Vec<Group> {
        let synced: Vec<usize> = (0..profiles.len())
            .filter(|u| profiles[*u].synced)
            .collect();
        let specs = [
            ("sales", "Sales Team", 3),
            ("support", "Customer Support", 2),
        ];
        specs
            .iter()
            .enumerate()
            .map(|(index, (local, display, size))| {
                let members: BTreeSet<usize> = synced
                    .choose_multiple(self.rng, (*size).min(synced.len()))
                    .copied()
                    .collect();
                let person = self.add(Person {
                    display_name: Some((*display).to_string()),
                    given_name: (*display).to_string(),
                    address: format!("{local}@{}", names::PRIMARY_DOMAIN),
                    kind: PersonKind::Group(index),
                    company: None,
                    name_style: NameStyle::Phrase,
                    utc_offset_minutes: 0,
                    mailer: Mailer::Gmail,
                    mixed_case: false,
                    japanese: false,
                });
                Group {
                    person,
                    members: members.into_iter().collect(),
                }
            })
            .collect()
    }

    fn internal_automated(&mut self) -> Vec<PersonId> {
        let specs = [
            ("Larkspur Expenses", "noreply"),
            ("Mail Delivery Subsystem", "mailer-daemon"),
        ];
        specs
            .iter()
            .map(|(display, local)| {
                self.add(Person {
                    display_name: Some((*display).to_string()),
                    given_name: (*display).to_string(),
                    address: format!("{local}@{}", names::PRIMARY_DOMAIN),
                    kind: PersonKind::InternalAutomated,
                    company: None,
                    name_style: NameStyle::Phrase,
                    utc_offset_minutes: 0,
                    mailer: Mailer::Script,
                    mixed_case: false,
                    japanese: false,
                })
            })
            .collect()
    }

    /// Every company with 2–5 people, more when the organization is larger than the
    /// default, so that larger organizations have proportionally more contacts.
    fn companies(&mut self, user_count: usize) -> Vec<Company> {
        let scale = (user_count / 25).max(1);
        let mut companies = Vec::with_capacity(COMPANIES.len());
        for (index, seed) in COMPANIES.iter().enumerate() {
            let pattern = self.rng.gen_range(0..4);
            let size = self.rng.gen_range(2..=5) * scale;
            let mut people = Vec::with_capacity(size);
            for position in 0..size {
                // The first person of a company with a mail subdomain always uses it, so
                // every such company exercises the roll-up to its registrable domain.
                let domain = match seed.mail_subdomain {
                    Some(sub) if position == 0 || self.rng.gen_bool(0.3) => {
                        format!("{sub}.{}", seed.domain)
                    }
                    _ => seed.domain.to_string(),
                };
                let japanese = seed.country == Country::Jp;
                let person = self.human(&domain, pattern, japanese, seed.country);
                let mailer = self.pick(&[
                    Mailer::Outlook,
                    Mailer::Outlook,
                    Mailer::Outlook,
                    Mailer::Gmail,
                    Mailer::Gmail,
                    Mailer::AppleMail,
                    Mailer::Thunderbird,
                ]);
                let id = self.add(Person {
                    kind: PersonKind::Contact,
                    company: Some(index),
                    mailer,
                    ..person
                });
                people.push(id);
            }
            companies.push(Company {
                name: seed.name.to_string(),
                domain: seed.domain.to_string(),
                country: seed.country,
                people,
            });
        }
        companies
    }

    fn free_mail(&mut self) -> Vec<PersonId> {
        let mut ids = Vec::new();
        for domain in FREE_MAIL_DOMAINS {
            let (count, country, mailer) = match *domain {
                "gmail.com" => (3, Country::Us, Mailer::Gmail),
                "outlook.com" | "hotmail.com" => (2, Country::Uk, Mailer::Outlook),
                "icloud.com" => (1, Country::Us, Mailer::AppleMail),
                "yahoo.co.jp" => (1, Country::Jp, Mailer::Webmail),
                "gmx.de" => (1, Country::De, Mailer::Webmail),
                "bigpond.com" => (1, Country::Au, Mailer::Webmail),
                _ => (1, Country::Uk, Mailer::Webmail),
            };
            for _ in 0..count {
                let pattern = self.rng.gen_range(4..7);
                let person = self.human(domain, pattern, country == Country::Jp, country);
                ids.push(self.add(Person {
                    kind: PersonKind::FreeMail,
                    company: None,
                    mailer,
                    ..person
                }));
            }
        }
        ids
    }

    fn automated(&mut self, companies: &[Company]) -> Vec<PersonId> {
        names::AUTOMATED_SENDERS
            .iter()
            .map(|seed| {
                let company = companies
                    .iter()
                    .position(|c| c.domain == seed.company_domain)
                    .expect("automated sender of a known company");
                let domain = match seed.subdomain {
                    Some(sub) => format!("{sub}.{}", seed.company_domain),
                    None => seed.company_domain.to_string(),
                };
                let mailer = match seed.kind {
                    AutomatedKind::Newsletter | AutomatedKind::DiscussionList => Mailer::Campaign,
                    _ => Mailer::Script,
                };
                self.add(Person {
                    display_name: Some(seed.display.to_string()),
                    given_name: seed.display.to_string(),
                    address: format!("{}@{domain}", seed.local_part),
                    kind: PersonKind::Automated(seed.kind),
                    company: Some(company),
                    name_style: NameStyle::Phrase,
                    utc_offset_minutes: 0,
                    mailer,
                    mixed_case: false,
                    japanese: false,
                })
            })
            .collect()
    }

    fn favorites(&mut self, company_count: usize) -> Vec<usize> {
        let count = self.rng.gen_range(4..=8).min(company_count);
        let all: Vec<usize> = (0..company_count).collect();
        all.choose_multiple(self.rng, count).copied().collect()
    }

    /// A human correspondent at `domain`. Patterns 0–3 are corporate local parts,
    /// 4–6 free-mail ones.
    fn human(&mut self, domain: &str, pattern: u32, japanese: bool, country: Country) -> Person {
        for attempt in 0.. {
            let (given, family) = if japanese {
                (
                    self.pick(JAPANESE_GIVEN_NAMES),
                    self.pick(JAPANESE_FAMILY_NAMES),
                )
            } else {
                (self.pick(GIVEN_NAMES), self.pick(FAMILY_NAMES))
            };
            let (g, f) = (given.ascii, family.ascii);
            let initial = &g[..1];
            let mut local = match pattern {
                0 => format!("{g}.{f}"),
                1 => format!("{initial}{f}"),
                2 => g.to_string(),
                3 => format!("{g}_{f}"),
                4 => format!("{g}.{f}{}", self.rng.gen_range(70..99)),
                5 => format!("{initial}{f}"),
                _ => format!("{g}_{f}"),
            };
            if attempt > 5 {
                local.push_str(&attempt.to_string());
            }
            let address = format!("{local}@{domain}");
            if self.taken(&address) {
                continue;
            }
            let display = if japanese {
                format!("{} {}", family.display, given.display)
            } else {
                format!("{} {}", given.display, family.display)
            };
            let (display_name, name_style) = self.display_style(display, given, family, japanese);
            return Person {
                display_name,
                given_name: given.display.to_string(),
                address,
                kind: PersonKind::Contact,
                company: None,
                name_style,
                utc_offset_minutes: self.pick(country.utc_offsets()),
                mailer: Mailer::Outlook,
                mixed_case: self.rng.gen_bool(0.08),
                japanese,
            };
        }
        unreachable!("the attempt counter is unbounded")
    }

    fn display_style(
        &mut self,
        display: String,
        given: Name,
        family: Name,
        japanese: bool,
    ) -> (Option<String>, NameStyle) {
        if japanese {
            return if self.rng.gen_bool(0.85) {
                (Some(display), NameStyle::EncodedB)
            } else {
                let romaji = format!("{} {}", capitalized(given.ascii), capitalized(family.ascii));
                (Some(romaji), NameStyle::Phrase)
            };
        }
        if !display.is_ascii() {
            return (
                Some(display.clone()),
                encoded_or_phrase(&display, self.rng.gen_bool(0.6)),
            );
        }
        match self.rng.gen_range(0..100) {
            0..55 => (Some(display), NameStyle::Phrase),
            55..68 => (
                Some(format!("{}, {}", family.display, given.display)),
                NameStyle::Phrase,
            ),
            68..75 => (
                Some(format!("{}. {}", &given.display[..1], family.display)),
                NameStyle::Phrase,
            ),
            75..85 => (None, NameStyle::Bare),
            85..90 => (None, NameStyle::AngleOnly),
            _ => (Some(display), NameStyle::Comment),
        }
    }
}

/// Non-ASCII names must be encoded; `prefer_q` picks the Q encoding.
fn encoded_or_phrase(display: &str, prefer_q: bool) -> NameStyle {
    match (display.is_ascii(), prefer_q) {
        (true, _) => NameStyle::Phrase,
        (false, true) => NameStyle::EncodedQ,
        (false, false) => NameStyle::EncodedB,
    }
}

fn capitalized(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}
