//! Display names: what a person or a company is called on screen, beside the address or
//! domain that identifies it.
//!
//! A person's name comes from the headers of captured mail (`"Lee, Ann" <ann@acme.example>`):
//! every message may name an address differently (a typo fixed, a married name, a client
//! that sends none), so the name shown is the most recent non-empty one. "Most recent" is
//! by the message's activity time, not by when it was synced: a backfill reads old mail
//! after new mail, and an old name must not come back. A company's name is derived from
//! its registrable domain, since mail carries no company names.

use crate::address::EmailAddress;
use psl::Psl;

/// The longest display name kept, in characters: longer ones are cut (a header may hold
/// anything; a name is for a list row).
pub const MAX_DISPLAY_NAME_CHARS: usize = 120;

/// One name an address was given, and the activity time (Unix ms) of the message that
/// gave it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameCandidate<'a> {
    pub name: &'a str,
    pub seen_ms: i64,
}

/// The name chosen for an address, and when it was seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChosenName {
    pub name: String,
    pub seen_ms: i64,
}

impl ChosenName {
    /// Whether this name replaces `other`: it was seen later or, seen at the same time,
    /// it is the greater name (bytewise), so that the choice does not depend on the order
    /// in which copies are synced. The store's upsert compares `(seen_ms, name)` the same
    /// way.
    pub fn replaces(&self, other: &ChosenName) -> bool {
        (self.seen_ms, self.name.as_str()) > (other.seen_ms, other.name.as_str())
    }
}

/// The name to show for `address` among `candidates`: the most recent one that is still a
/// name once cleaned ([`clean_display_name`]); `None` when no candidate is.
pub fn choose_display_name<'a>(
    address: &EmailAddress,
    candidates: impl IntoIterator<Item = NameCandidate<'a>>,
) -> Option<ChosenName> {
    candidates
        .into_iter()
        .filter_map(|candidate| {
            Some(ChosenName {
                name: clean_display_name(candidate.name, address)?,
                seen_ms: candidate.seen_ms,
            })
        })
        .reduce(|best, next| if next.replaces(&best) { next } else { best })
}

/// A header's (already RFC 2047-decoded) display name for `address` made fit to show
/// ([`clean_name`]); `None` also when it is only that address, in any case.
pub fn clean_display_name(raw: &str, address: &EmailAddress) -> Option<String> {
    clean_name(raw).filter(|name| {
        let bare = name.trim_start_matches('<').trim_end_matches('>');
        !bare.eq_ignore_ascii_case(address.as_str())
    })
}

/// A name made fit to show: control characters and whitespace runs become one space,
/// surrounding quotes that survived decoding (`'Ann Lee'`, an encoded word holding
/// `"Ann"`) are dropped, and the result is cut to [`MAX_DISPLAY_NAME_CHARS`]. `None` when
/// nothing is left, or when the "name" is only an address
/// (`"ann@acme.example" <ann@acme.example>`, which many clients send): showing it beside
/// the address says nothing. Directory names go through it too.
pub fn clean_name(raw: &str) -> Option<String> {
    let collapsed = raw
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|word| !word.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let unquoted = strip_quotes(&collapsed);
    let bare = unquoted.trim_start_matches('<').trim_end_matches('>');
    if unquoted.is_empty() || EmailAddress::parse_mailbox(bare).is_ok() {
        return None;
    }
    Some(unquoted.chars().take(MAX_DISPLAY_NAME_CHARS).collect())
}

/// `text` without one pair of matching surrounding quotes, trimmed.
fn strip_quotes(text: &str) -> &str {
    for quote in ['"', '\''] {
        if let Some(inner) = text
            .strip_prefix(quote)
            .and_then(|rest| rest.strip_suffix(quote))
        {
            return inner.trim();
        }
    }
    text.trim()
}

/// A company's display name from its registrable domain: the label before the public
/// suffix, its internationalized form when it is punycode, each hyphen-separated word
/// capitalized (`acme.co.uk` → `Acme`, `north-wind.com` → `North Wind`,
/// `xn--bcher-kva.de` → `Bücher`). `None` for a domain that is a public suffix itself or
/// has no label before one. Brand spellings (`IBM`, `eBay`) cannot be derived from a
/// domain; the domain stays beside the name wherever it is shown.
pub fn company_display_name(domain: &str) -> Option<String> {
    let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    let suffix = psl::List.suffix(domain.as_bytes())?;
    let suffix_len = suffix.as_bytes().len();
    let rest = domain.get(..domain.len().checked_sub(suffix_len + 1)?)?;
    let label = rest.rsplit('.').next().filter(|label| !label.is_empty())?;
    let label = match label.strip_prefix("xn--") {
        Some(_) => idna::domain_to_unicode(label).0,
        None => label.to_owned(),
    };
    let words: Vec<String> = label
        .split(['-', '_'])
        .filter(|word| !word.is_empty())
        .map(capitalized)
        .collect();
    (!words.is_empty()).then(|| words.join(" "))
}

fn capitalized(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::MessageRecord;
    use crate::parse::ParsedHeaders;

    fn ann() -> EmailAddress {
        EmailAddress::parse("ann@acme.example").unwrap()
    }

    fn candidate(name: &str, seen_ms: i64) -> NameCandidate<'_> {
        NameCandidate { name, seen_ms }
    }

    /// The From name of a header block, decoded as capture decodes it.
    fn from_name(header: &str) -> String {
        let record = MessageRecord::from_header_pairs([("From", header)]);
        let parsed = ParsedHeaders::parse(&record);
        parsed.from[0].name.clone().unwrap_or_default()
    }

    #[test]
    fn the_most_recent_name_wins_whatever_the_order_given() {
        let newer = candidate("Ann Lee-Smith", 2_000);
        let older = candidate("Ann Lee", 1_000);
        for order in [[newer, older], [older, newer]] {
            let chosen = choose_display_name(&ann(), order).unwrap();
            assert_eq!(chosen.name, "Ann Lee-Smith");
            assert_eq!(chosen.seen_ms, 2_000);
        }
    }

    #[test]
    fn an_empty_name_never_overrides_an_older_real_one() {
        let chosen = choose_display_name(
            &ann(),
            [
                candidate("Ann Lee", 1_000),
                candidate("", 5_000),
                candidate("  \t ", 6_000),
                candidate("\"\"", 7_000),
                candidate("ann@acme.example", 8_000),
                candidate("<ANN@ACME.EXAMPLE>", 9_000),
            ],
        );
        assert_eq!(chosen.map(|c| c.name).as_deref(), Some("Ann Lee"));
        assert_eq!(choose_display_name(&ann(), [candidate(" ", 1)]), None);
        assert_eq!(choose_display_name(&ann(), []), None);
    }

    #[test]
    fn equal_times_pick_the_same_name_in_any_order() {
        let a = candidate("Ann A", 1_000);
        let b = candidate("Ann B", 1_000);
        let one = choose_display_name(&ann(), [a, b]).unwrap();
        let other = choose_display_name(&ann(), [b, a]).unwrap();
        assert_eq!(one, other);
        assert_eq!(one.name, "Ann B");
    }

    #[test]
    fn replaces_orders_by_time_then_name() {
        let name = |name: &str, seen_ms| ChosenName {
            name: name.into(),
            seen_ms,
        };
        assert!(name("A", 2).replaces(&name("Z", 1)));
        assert!(!name("Z", 1).replaces(&name("A", 2)));
        assert!(name("B", 1).replaces(&name("A", 1)));
        assert!(!name("A", 1).replaces(&name("A", 1)));
    }

    #[test]
    fn quoted_and_encoded_header_names_come_out_clean() {
        let cases = [
            ("\"Lee, Ann\" <ann@acme.example>", "Lee, Ann"),
            (
                "=?UTF-8?B?SsO2cmcgTcO8bGxlcg==?= <ann@acme.example>",
                "Jörg Müller",
            ),
            (
                "=?ISO-8859-1?Q?Andr=E9_Pirard?= <ann@acme.example>",
                "André Pirard",
            ),
            ("'Ann Lee' <ann@acme.example>", "Ann Lee"),
            ("\"Ann \r\n   Lee\" <ann@acme.example>", "Ann Lee"),
            ("=?UTF-8?Q?=22Ann_Lee=22?= <ann@acme.example>", "Ann Lee"),
        ];
        for (header, expected) in cases {
            let name = from_name(header);
            let chosen = choose_display_name(&ann(), [candidate(&name, 1)]);
            assert_eq!(
                chosen.map(|c| c.name).as_deref(),
                Some(expected),
                "{header}"
            );
        }
    }

    #[test]
    fn a_header_without_a_name_gives_none() {
        let name = from_name("ann@acme.example");
        assert_eq!(choose_display_name(&ann(), [candidate(&name, 1)]), None);
        let name = from_name("\"ann@acme.example\" <ann@acme.example>");
        assert_eq!(choose_display_name(&ann(), [candidate(&name, 1)]), None);
    }

    #[test]
    fn long_names_are_cut_on_a_character_boundary() {
        let long = "é".repeat(500);
        let cleaned = clean_display_name(&long, &ann()).unwrap();
        assert_eq!(cleaned.chars().count(), MAX_DISPLAY_NAME_CHARS);
    }

    #[test]
    fn company_names_come_from_the_registrable_label() {
        assert_eq!(company_display_name("acme.co.uk").as_deref(), Some("Acme"));
        assert_eq!(
            company_display_name("north-wind.com").as_deref(),
            Some("North Wind")
        );
        assert_eq!(
            company_display_name("xn--bcher-kva.de").as_deref(),
            Some("Bücher")
        );
        assert_eq!(company_display_name("b.github.io").as_deref(), Some("B"));
        assert_eq!(company_display_name("co.uk"), None);
        assert_eq!(company_display_name("com"), None);
    }
}
