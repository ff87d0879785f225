//! Extraction throughput on generated messages, one thread: header parsing plus
//! classification (participants, direction, automated rules, companies, keys, policy).
//!
//! Run: `cargo bench -p tributary-core --bench extraction`. Goal: ≥ 200,000 messages per
//! second per core for the `header pairs` path, which is what the sync engine feeds.
//! Rates are per CPU-second of the measuring thread (Linux `schedstat`), so a busy
//! shared machine does not distort them; the best and the median of 9 rounds are shown.

use std::hint::black_box;
use std::time::Instant;
use tributary_core::{CapturePolicy, Extractor, FreeMailList, MessageRecord, TenantDirectory};

const DISTINCT_MESSAGES: usize = 20_000;
const ROUNDS: usize = 9;
const PASSES_PER_ROUND: usize = 5;

/// A small deterministic generator (xorshift64*), so runs are comparable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const FIRST: &[&str] = &[
    "Ann", "Bob", "Carla", "Dmitri", "Eve", "Fatima", "Giulia", "Hiro", "Ines", "Jörg", "Kwame",
    "Lena", "Mateo", "Nora", "Olu", "Priya",
];
const LAST: &[&str] = &[
    "Lee", "Smith", "Okafor", "Müller", "Rossi", "Tanaka", "García", "Novak", "Dubois", "Kim",
];
const EXTERNAL_DOMAINS: &[&str] = &[
    "globex.com",
    "mail.initech.co.uk",
    "sales.kogyo.co.jp",
    "umbrella.de",
    "hooli.io",
    "gmail.com",
    "outlook.com",
    "yahoo.co.uk",
    "icloud.com",
    "gmx.de",
    "bigpond.com",
    "stark-industries.com.au",
];
const SUBJECTS: &[&str] = &[
    "Quarterly review",
    "Re: Contract renewal",
    "=?UTF-8?Q?Caf=C3=A9_meeting_tomorrow?=",
    "Invoice 2291 for March",
    "=?UTF-8?B?UHJvcG9zYWwgZsO8ciBkYXMgUHJvamVrdA==?=",
    "Fwd: Pricing",
    "Lunch next week?",
];

struct Tenant {
    domain: &'static str,
    members: Vec<String>,
}

fn tenant() -> (Extractor, Tenant) {
    let mut directory = TenantDirectory::new();
    directory.add_domain("acme.com").unwrap();
    directory.add_domain("acme-labs.io").unwrap();
    let mut members = Vec::new();
    for i in 0..500 {
        let primary = format!("user{i}@acme.com");
        let alias = format!("u{i}@acme-labs.io");
        directory.add_member(&primary, [alias.as_str()]).unwrap();
        members.push(primary);
    }
    let extractor = Extractor::new(directory, FreeMailList::default(), CapturePolicy::default());
    (
        extractor,
        Tenant {
            domain: "acme.com",
            members,
        },
    )
}

fn person(rng: &mut Rng, tenant: &Tenant, internal: bool) -> String {
    let first = rng.pick(FIRST);
    let last = rng.pick(LAST);
    let address = if internal {
        if rng.chance(85) {
            tenant.members[rng.below(tenant.members.len())].clone()
        } else {
            format!("sales@{}", tenant.domain)
        }
    } else {
        format!(
            "{}.{}@{}",
            first.to_lowercase(),
            last.to_lowercase(),
            rng.pick(EXTERNAL_DOMAINS)
        )
    };
    match rng.below(4) {
        0 => address,
        1 => format!("\"{last}, {first}\" <{address}>"),
        2 if !first.is_ascii() => format!("=?UTF-8?Q?J=C3=B6rg?= {last} <{address}>"),
        _ => format!("{first} {last} <{address}>"),
    }
}

fn people(rng: &mut Rng, tenant: &Tenant, count: usize) -> String {
    (0..count)
        .map(|_| {
            let internal = rng.chance(40);
            person(rng, tenant, internal)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// One message's headers as Gmail's `format=metadata` returns them.
fn header_pairs(rng: &mut Rng, tenant: &Tenant, index: usize) -> Vec<(String, String)> {
    let outbound = rng.chance(50);
    let from = person(rng, tenant, outbound);
    let to_count = 1 + rng.below(3);
    let mut headers = vec![
        ("From".to_owned(), from),
        ("To".to_owned(), people(rng, tenant, to_count)),
    ];
    if rng.chance(40) {
        let cc_count = 1 + rng.below(3);
        headers.push(("Cc".to_owned(), people(rng, tenant, cc_count)));
    }
    headers.push((
        "Date".to_owned(),
        format!(
            "Tue, {} Jun 2025 {:02}:{:02}:{:02} +0200",
            1 + rng.below(28),
            rng.below(24),
            rng.below(60),
            rng.below(60)
        ),
    ));
    headers.push(("Subject".to_owned(), rng.pick(SUBJECTS).to_owned()));
    if rng.chance(95) {
        headers.push((
            "Message-ID".to_owned(),
            format!("<CAF{index}x{:x}@mail.gmail.com>", rng.next()),
        ));
    }
    if rng.chance(40) {
        let parent = format!("<{:x}@mail.example.com>", rng.next());
        headers.push(("In-Reply-To".to_owned(), parent.clone()));
        headers.push((
            "References".to_owned(),
            format!("<{:x}@mail.example.com> {parent}", rng.next()),
        ));
    }
    if rng.chance(15) {
        headers.push((
            "List-Unsubscribe".to_owned(),
            "<mailto:unsubscribe@news.example.com>".to_owned(),
        ));
    }
    headers
}

fn raw_message(pairs: &[(String, String)]) -> Vec<u8> {
    let mut raw = String::from(
        "Received: from mail-sor-f41.google.com (mail-sor-f41.google.com [209.85.220.41])\r\n\
         \tby mx.google.com with SMTPS id a1sor123;\r\n\tTue, 10 Jun 2025 10:00:00 -0700 (PDT)\r\n",
    );
    for (name, value) in pairs {
        raw.push_str(name);
        raw.push_str(": ");
        raw.push_str(value);
        raw.push_str("\r\n");
    }
    raw.push_str("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\nHello\r\n");
    raw.into_bytes()
}

/// Nanoseconds this thread has spent on a CPU (Linux `schedstat`), so that time the
/// shared machine gives to other processes does not count against us; falls back to
/// wall time elsewhere.
fn thread_cpu_ns(wall: Instant) -> u128 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|stat| stat.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| wall.elapsed().as_nanos())
}

/// Runs `work` over all inputs, `ROUNDS` times; returns the best and the median
/// messages per CPU-second of this thread.
fn measure<T>(inputs: &[T], mut work: impl FnMut(&T) -> usize) -> (f64, f64) {
    let origin = Instant::now();
    // Warm caches and the lazily built parser once.
    for input in inputs {
        black_box(work(input));
    }
    let mut rates: Vec<f64> = (0..ROUNDS)
        .map(|_| {
            let started = thread_cpu_ns(origin);
            let mut checksum = 0usize;
            for _ in 0..PASSES_PER_ROUND {
                for input in inputs {
                    checksum = checksum.wrapping_add(work(input));
                }
            }
            black_box(checksum);
            let spent_ns = thread_cpu_ns(origin).saturating_sub(started).max(1);
            (inputs.len() * PASSES_PER_ROUND) as f64 * 1e9 / spent_ns as f64
        })
        .collect();
    rates.sort_by(f64::total_cmp);
    (rates[rates.len() - 1], rates[rates.len() / 2])
}

fn main() {
    let (extractor, tenant) = tenant();
    let mut rng = Rng(0x5eed_1234_abcd_9876);
    let pairs: Vec<Vec<(String, String)>> = (0..DISTINCT_MESSAGES)
        .map(|index| header_pairs(&mut rng, &tenant, index))
        .collect();
    let raws: Vec<Vec<u8>> = pairs.iter().map(|p| raw_message(p)).collect();
    let captured = pairs
        .iter()
        .filter(|p| {
            extractor
                .extract(&MessageRecord::from_header_pairs(
                    p.iter().map(|(n, v)| (n, v)),
                ))
                .is_captured()
        })
        .count();
    println!(
        "{DISTINCT_MESSAGES} generated messages ({captured} captured under the default policy), \
         500 members, single thread"
    );

    let (best, median) = measure(&pairs, |pairs| {
        let record = MessageRecord::from_header_pairs(pairs.iter().map(|(n, v)| (n, v)));
        extractor.extract(&record).participants.len()
    });
    println!(
        "header pairs (Gmail metadata) → Extraction: best {best:>8.0}, median {median:>8.0} messages per CPU-second"
    );

    let (best, median) = measure(&raws, |raw| {
        let record = MessageRecord::from_rfc5322(raw);
        extractor.extract(&record).participants.len()
    });
    println!(
        "raw RFC 5322 message          → Extraction: best {best:>8.0}, median {median:>8.0} messages per CPU-second"
    );
}
