//! Embedded word lists the generator draws from. Everything here is fictitious; the
//! free-mail domains are the real providers the capture contract's default list names.

/// The organization's primary domain and a second domain it owns (one alias lives there).
pub const PRIMARY_DOMAIN: &str = "larkspur-trading.com";
pub const SECOND_DOMAIN: &str = "larkspur.co.uk";
/// A subdomain of the primary domain: addresses there are `internal`, never members.
pub const INTERNAL_SUBDOMAIN: &str = "helpdesk.larkspur-trading.com";

/// The only free-mail domains the generator uses (all on the contract's default list).
pub const FREE_MAIL_DOMAINS: &[&str] = &[
    "gmail.com",
    "yahoo.co.uk",
    "outlook.com",
    "hotmail.com",
    "icloud.com",
    "gmx.de",
    "yahoo.co.jp",
    "bigpond.com",
];

/// A given or family name: how it is displayed and how it is spelt in an address.
#[derive(Debug, Clone, Copy)]
pub struct Name {
    pub display: &'static str,
    pub ascii: &'static str,
}

const fn n(display: &'static str, ascii: &'static str) -> Name {
    Name { display, ascii }
}

pub const GIVEN_NAMES: &[Name] = &[
    n("Ann", "ann"),
    n("Ben", "ben"),
    n("Chloé", "chloe"),
    n("Daniel", "daniel"),
    n("Emma", "emma"),
    n("Farid", "farid"),
    n("Grace", "grace"),
    n("Hiro", "hiro"),
    n("Isabel", "isabel"),
    n("Jonas", "jonas"),
    n("Kavya", "kavya"),
    n("Liam", "liam"),
    n("Maya", "maya"),
    n("Noah", "noah"),
    n("Olivia", "olivia"),
    n("Priya", "priya"),
    n("Quentin", "quentin"),
    n("Rosa", "rosa"),
    n("Sam", "sam"),
    n("Tomás", "tomas"),
    n("Uma", "uma"),
    n("Victor", "victor"),
    n("Wen", "wen"),
    n("Xavier", "xavier"),
    n("Yara", "yara"),
    n("Zoë", "zoe"),
    n("Aisha", "aisha"),
    n("Björn", "bjorn"),
    n("Carmen", "carmen"),
    n("Dmitri", "dmitri"),
    n("Elena", "elena"),
    n("Felix", "felix"),
    n("Gabriel", "gabriel"),
    n("Hannah", "hannah"),
    n("Ivan", "ivan"),
    n("Julia", "julia"),
    n("Kenji", "kenji"),
    n("Lucía", "lucia"),
    n("Marcus", "marcus"),
    n("Nadia", "nadia"),
    n("Oscar", "oscar"),
    n("Paula", "paula"),
    n("Rafael", "rafael"),
    n("Sofia", "sofia"),
    n("Theo", "theo"),
    n("Valentina", "valentina"),
    n("William", "william"),
    n("Yusuf", "yusuf"),
    n("Jürgen", "juergen"),
    n("Siobhan", "siobhan"),
];

pub const FAMILY_NAMES: &[Name] = &[
    n("Lee", "lee"),
    n("Patel", "patel"),
    n("Müller", "muller"),
    n("García", "garcia"),
    n("O'Connor", "oconnor"),
    n("Nguyen", "nguyen"),
    n("Kowalski", "kowalski"),
    n("Rossi", "rossi"),
    n("Dubois", "dubois"),
    n("Andersson", "andersson"),
    n("Okafor", "okafor"),
    n("Silva", "silva"),
    n("Kim", "kim"),
    n("Novak", "novak"),
    n("Schmidt", "schmidt"),
    n("Hughes", "hughes"),
    n("Fischer", "fischer"),
    n("Chen", "chen"),
    n("Martin", "martin"),
    n("Walsh", "walsh"),
    n("Bianchi", "bianchi"),
    n("Larsen", "larsen"),
    n("Moreau", "moreau"),
    n("Costa", "costa"),
    n("Ahmed", "ahmed"),
    n("Becker", "becker"),
    n("Brennan", "brennan"),
    n("Lindqvist", "lindqvist"),
    n("Haddad", "haddad"),
    n("Petrov", "petrov"),
    n("Ferreira", "ferreira"),
    n("Clarke", "clarke"),
    n("Jansen", "jansen"),
    n("Wójcik", "wojcik"),
    n("Duarte", "duarte"),
    n("Fitzgerald", "fitzgerald"),
    n("Weiß", "weiss"),
    n("Þórsdóttir", "thorsdottir"),
];

/// Japanese names: family name first when displayed, as they are written.
pub const JAPANESE_FAMILY_NAMES: &[Name] = &[
    n("山田", "yamada"),
    n("佐藤", "sato"),
    n("鈴木", "suzuki"),
    n("高橋", "takahashi"),
    n("田中", "tanaka"),
    n("伊藤", "ito"),
    n("渡辺", "watanabe"),
    n("中村", "nakamura"),
];

pub const JAPANESE_GIVEN_NAMES: &[Name] = &[
    n("太郎", "taro"),
    n("花子", "hanako"),
    n("一郎", "ichiro"),
    n("美咲", "misaki"),
    n("健太", "kenta"),
    n("愛", "ai"),
    n("翔", "sho"),
    n("由美", "yumi"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Country {
    Us,
    Uk,
    Au,
    Jp,
    De,
    Fr,
    Nl,
    Ca,
    Nz,
    Br,
    Ch,
    Se,
    In,
    Es,
    Ie,
    Sg,
    Za,
}

impl Country {
    /// UTC offsets (minutes) people there write their Date headers in.
    pub fn utc_offsets(self) -> &'static [i32] {
        match self {
            Country::Us => &[-300, -240, -480, -420, -360],
            Country::Uk | Country::Ie => &[0, 60],
            Country::Au => &[600, 660, 570],
            Country::Jp => &[540],
            Country::De | Country::Fr | Country::Nl | Country::Ch | Country::Se | Country::Es => {
                &[60, 120]
            }
            Country::Ca => &[-300, -240],
            Country::Nz => &[720, 780],
            Country::Br => &[-180],
            Country::In => &[330],
            Country::Sg => &[480],
            Country::Za => &[120],
        }
    }
}

/// An external company. `domain` is its registrable domain (the company the capture
/// must attribute its people to); some people send from `subdomain.domain`.
#[derive(Debug, Clone, Copy)]
pub struct CompanySeed {
    pub name: &'static str,
    pub domain: &'static str,
    pub country: Country,
    pub mail_subdomain: Option<&'static str>,
}

const fn c(
    name: &'static str,
    domain: &'static str,
    country: Country,
    mail_subdomain: Option<&'static str>,
) -> CompanySeed {
    CompanySeed {
        name,
        domain,
        country,
        mail_subdomain,
    }
}

pub const COMPANIES: &[CompanySeed] = &[
    c("Acme Logistics", "acmelogistics.com", Country::Us, None),
    c(
        "Bluefin Analytics",
        "bluefin-analytics.com",
        Country::Us,
        Some("eu"),
    ),
    c("Cobalt Ridge Capital", "cobaltridge.com", Country::Us, None),
    c("Driftwood Media", "driftwoodmedia.com", Country::Us, None),
    c(
        "Evergreen Supply Co.",
        "evergreensupply.com",
        Country::Ca,
        None,
    ),
    c(
        "Granite Peak Construction",
        "granitepeak.net",
        Country::Us,
        None,
    ),
    c(
        "Hartley & Sons",
        "hartleyandsons.co.uk",
        Country::Uk,
        Some("mail"),
    ),
    c(
        "Kingsbridge Partners",
        "kingsbridge-partners.co.uk",
        Country::Uk,
        None,
    ),
    c("Thames Valley Print", "tvprint.co.uk", Country::Uk, None),
    c(
        "Pemberton Legal",
        "pembertonlegal.co.uk",
        Country::Uk,
        Some("london"),
    ),
    c(
        "Wattle Creek Wines",
        "wattlecreek.com.au",
        Country::Au,
        None,
    ),
    c(
        "Southern Cross Freight",
        "southerncrossfreight.com.au",
        Country::Au,
        Some("syd"),
    ),
    c("Coral Bay Software", "coralbay.com.au", Country::Au, None),
    c(
        "Sakura Kogyo",
        "sakura-kogyo.co.jp",
        Country::Jp,
        Some("sales"),
    ),
    c(
        "Hoshino Trading",
        "hoshino-trading.co.jp",
        Country::Jp,
        None,
    ),
    c("Midori Denshi", "midori-denshi.co.jp", Country::Jp, None),
    c(
        "Brandt Maschinenbau",
        "brandt-maschinenbau.de",
        Country::De,
        None,
    ),
    c(
        "Lindenhof Beratung",
        "lindenhof-beratung.de",
        Country::De,
        Some("mail"),
    ),
    c("Rheinwerk Solar", "rheinwerk-solar.de", Country::De, None),
    c("Quillstack", "quillstack.io", Country::Us, None),
    c("Nimbus Forge", "nimbusforge.io", Country::Uk, None),
    c("Atelier Lumière", "atelier-lumiere.fr", Country::Fr, None),
    c(
        "Van Dijk Logistiek",
        "vandijk-logistiek.nl",
        Country::Nl,
        None,
    ),
    c(
        "Kiwi Orchard Exports",
        "kiwiorchard.co.nz",
        Country::Nz,
        None,
    ),
    c("Ipanema Têxtil", "ipanematextil.com.br", Country::Br, None),
    c(
        "Alpenblick Treuhand",
        "alpenblick-treuhand.ch",
        Country::Ch,
        None,
    ),
    c("Norrsken Design", "norrsken-design.se", Country::Se, None),
    c("Lotus Infotech", "lotusinfotech.co.in", Country::In, None),
    c("Olivar Alimentos", "olivar-alimentos.es", Country::Es, None),
    c("Liffey Analytics", "liffeyanalytics.ie", Country::Ie, None),
    c(
        "Merlion Ventures",
        "merlionventures.com.sg",
        Country::Sg,
        None,
    ),
    c(
        "Table Bay Traders",
        "tablebaytraders.co.za",
        Country::Za,
        None,
    ),
    c(
        "Open Rivers Foundation",
        "openrivers.org",
        Country::Us,
        None,
    ),
];

/// Senders of automated mail: their company, local part and subdomain, and what kind of
/// automation they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutomatedKind {
    /// List-Unsubscribe, List-Id, Precedence: bulk.
    Newsletter,
    /// A no-reply local part, no list headers.
    NoReply,
    /// Auto-Submitted: auto-generated (monitoring, CI).
    AutoGenerated,
    /// A discussion list: a human From, but List-Id and Precedence: list.
    DiscussionList,
    /// Precedence: junk and nothing else.
    Junk,
}

#[derive(Debug, Clone, Copy)]
pub struct AutomatedSeed {
    pub display: &'static str,
    pub local_part: &'static str,
    /// The registrable domain of one of [`COMPANIES`].
    pub company_domain: &'static str,
    pub subdomain: Option<&'static str>,
    pub kind: AutomatedKind,
}

const fn a(
    display: &'static str,
    local_part: &'static str,
    company_domain: &'static str,
    subdomain: Option<&'static str>,
    kind: AutomatedKind,
) -> AutomatedSeed {
    AutomatedSeed {
        display,
        local_part,
        company_domain,
        subdomain,
        kind,
    }
}

pub const AUTOMATED_SENDERS: &[AutomatedSeed] = &[
    a(
        "Quillstack",
        "news",
        "quillstack.io",
        Some("mail"),
        AutomatedKind::Newsletter,
    ),
    a(
        "Quillstack Billing",
        "noreply+billing",
        "quillstack.io",
        None,
        AutomatedKind::NoReply,
    ),
    a(
        "Nimbus Forge",
        "no-reply",
        "nimbusforge.io",
        None,
        AutomatedKind::NoReply,
    ),
    a(
        "Nimbus Forge CI",
        "builds",
        "nimbusforge.io",
        Some("ci"),
        AutomatedKind::AutoGenerated,
    ),
    a(
        "Bluefin Analytics",
        "no-reply-reports",
        "bluefin-analytics.com",
        None,
        AutomatedKind::NoReply,
    ),
    a(
        "Bluefin Insights",
        "insights",
        "bluefin-analytics.com",
        Some("news"),
        AutomatedKind::Newsletter,
    ),
    a(
        "Southern Cross Freight",
        "donotreply",
        "southerncrossfreight.com.au",
        None,
        AutomatedKind::NoReply,
    ),
    a(
        "Coral Bay Updates",
        "bounces+4471",
        "coralbay.com.au",
        Some("em"),
        AutomatedKind::NoReply,
    ),
    a(
        "Driftwood Media",
        "hello",
        "driftwoodmedia.com",
        Some("lists"),
        AutomatedKind::Newsletter,
    ),
    a(
        "Open Rivers Discuss",
        "discuss",
        "openrivers.org",
        Some("lists"),
        AutomatedKind::DiscussionList,
    ),
    a(
        "Thames Valley Print",
        "do_not_reply",
        "tvprint.co.uk",
        None,
        AutomatedKind::NoReply,
    ),
    a(
        "Hoshino Trading",
        "info",
        "hoshino-trading.co.jp",
        Some("news"),
        AutomatedKind::Newsletter,
    ),
    a(
        "Deals Desk",
        "offers",
        "granitepeak.net",
        None,
        AutomatedKind::Junk,
    ),
];

/// Human subjects; `{}` is replaced by a topic.
pub const SUBJECT_TEMPLATES: &[&str] = &[
    "Quote for {}",
    "Follow-up on our call about {}",
    "Question about {}",
    "Updated proposal: {}",
    "Samples for {}",
    "Meeting next week re {}",
    "Contract renewal — {}",
    "Shipment delay – {}",
    "Pricing for {}",
    "Intro: {}",
    "Site visit and {}",
    "Feedback on {}",
    "Angebot für {}",
    "Café catch-up about {}",
];

pub const TOPICS: &[&str] = &[
    "pallet racking",
    "the Atlas rollout",
    "200 units of model X-12",
    "the office fit-out",
    "translation services",
    "cloud backup",
    "solar panels",
    "Q3 forecast",
    "order 4471",
    "the distribution agreement",
    "spring catalogue",
    "invoice 20931",
    "warehouse lease",
    "the Sydney shipment",
    "packaging redesign",
];

/// Subjects that are not built from a template.
pub const FIXED_SUBJECTS: &[&str] = &[
    "お見積もりのご依頼",
    "納期のご確認",
    "Lunch on Friday?",
    "Propuesta de colaboración",
    "Draft agreement attached",
];

pub const INTERNAL_SUBJECTS: &[&str] = &[
    "Team offsite",
    "Q3 planning",
    "Expense policy update",
    "Hiring: senior analyst",
    "Standup notes",
    "Holiday rota",
    "Board deck review",
    "Customer escalation",
    "New starter next Monday",
    "Sales pipeline review",
];

pub const SENTENCES: &[&str] = &[
    "Thanks for the quick turnaround on this.",
    "Could you send over the latest figures when you have a moment?",
    "I have attached the revised numbers for your review.",
    "Let me know if Thursday afternoon works for a quick call.",
    "We are happy to proceed on the terms discussed.",
    "The shipment left the warehouse this morning.",
    "Please find the signed copy below.",
    "Can we push this to next week?",
    "I'll loop in my colleague who handles invoicing.",
    "Following up on my last note — any update?",
];

pub const USER_LABEL_NAMES: &[&str] = &[
    "Clients",
    "Receipts",
    "Projects/Atlas",
    "Newsletters",
    "Follow up",
    "Travel",
    "Hiring",
    "Vendors",
];

pub const ORG_UNITS: &[&str] = &["/Sales", "/Operations", "/Finance", "/Engineering"];

pub const NEWSLETTER_SUBJECTS: &[&str] = &[
    "Your weekly digest",
    "What's new this month",
    "Webinar: scaling your supply chain",
    "Last chance: 20% off annual plans",
    "Product update: the spring release",
];

/// `{}` is replaced by a number.
pub const NOTIFICATION_SUBJECTS: &[&str] = &[
    "Your invoice INV-{} is ready",
    "Password reset requested",
    "Your order {} has shipped",
    "Security alert: new sign-in",
    "Your report {} is ready",
];

pub const ALERT_SUBJECTS: &[&str] = &[
    "[ALERT] Disk usage above 90% on db-{}",
    "Build #{} failed on main",
    "Nightly export {} completed",
];

pub const JUNK_SUBJECTS: &[&str] = &["Exclusive offer for you", "Limited stock: clearance sale"];

pub const DISCUSSION_SUBJECTS: &[&str] = &[
    "[discuss] River clean-up volunteers",
    "[discuss] Notes from the spring meeting",
];

pub const GROUP_NAMES: &[&str] = &["Project team", "Launch team", "Steering group"];
