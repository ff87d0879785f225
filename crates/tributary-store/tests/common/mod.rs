//! Test support: run one async body against a fresh SQLite file and a fresh PostgreSQL
//! database, and build extractions from literal headers with core's extractor.

#![allow(dead_code)] // each test binary uses a different part of this module

use std::future::Future;
use tributary_core::{
    CapturePolicy, Extraction, Extractor, FreeMailList, MessageRecord, TenantDirectory,
};
use tributary_store::testing::TestDatabase;
use tributary_store::{
    CapturePage, CapturedSighting, LinkId, MemberId, MemberRole, Store, TenantId,
};

/// Defines, for each named `async fn(Store)`, a module with a `sqlite` and a `postgres`
/// test running it.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                $crate::common::run_on_sqlite(super::$name).await;
            }

            #[tokio::test]
            async fn postgres() {
                $crate::common::run_on_postgres(super::$name).await;
            }
        }
    )*};
}

pub async fn run_on_sqlite<F, Fut>(body: F)
where
    F: FnOnce(Store) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let database = TestDatabase::sqlite().await;
    body(database.store.clone()).await;
    database.close().await;
}

/// Runs `body` on a uniquely named database, dropped afterwards even when `body` panics.
pub async fn run_on_postgres<F, Fut>(body: F)
where
    F: FnOnce(Store) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(database) = TestDatabase::postgres().await else {
        return;
    };
    let outcome = tokio::spawn(body(database.store.clone())).await;
    database.close().await;
    if let Err(error) = outcome {
        std::panic::resume_unwind(error.into_panic());
    }
}

/// A tenant `acme.com` with members ann (alias ann.lee@) and carl, each with a linked
/// mailbox, and the extractor matching it.
pub struct Acme {
    pub tenant: TenantId,
    pub ann: MemberId,
    pub carl: MemberId,
    pub ann_link: LinkId,
    pub carl_link: LinkId,
    pub extractor: Extractor,
}

impl Acme {
    pub async fn create(store: &Store, tenant: &str) -> Self {
        let tenant = TenantId::new(tenant);
        store.create_tenant(&tenant, "Acme").await.unwrap();
        let ann = store
            .add_member(
                &tenant,
                "ann@acme.com",
                &["ann.lee@acme.com"],
                MemberRole::Admin,
            )
            .await
            .unwrap();
        let carl = store
            .add_member(&tenant, "carl@acme.com", &[], MemberRole::Member)
            .await
            .unwrap();
        let ann_link = store
            .link_mailbox(
                &tenant,
                ann,
                "ann@acme.com",
                tributary_store::ConnectionKind::Google,
            )
            .await
            .unwrap();
        let carl_link = store
            .link_mailbox(
                &tenant,
                carl,
                "carl@acme.com",
                tributary_store::ConnectionKind::Google,
            )
            .await
            .unwrap();
        let mut directory = TenantDirectory::new();
        directory.add_domain("acme.com").unwrap();
        directory
            .add_member("ann@acme.com", ["ann.lee@acme.com"])
            .unwrap();
        directory.add_member("carl@acme.com", []).unwrap();
        let extractor =
            Extractor::new(directory, FreeMailList::default(), CapturePolicy::default());
        Self {
            tenant,
            ann,
            carl,
            ann_link,
            carl_link,
            extractor,
        }
    }

    pub fn extract(&self, headers: &str) -> Extraction {
        self.extractor
            .extract(&MessageRecord::from_rfc5322(headers.as_bytes()))
    }

    /// A sighting of `headers` with the given provider id and labels.
    pub fn sighting(&self, headers: &str, provider_id: &str, labels: &[&str]) -> CapturedSighting {
        CapturedSighting {
            extraction: self.extract(headers),
            provider_message_id: provider_id.to_owned(),
            labels: labels.iter().map(|l| (*l).to_owned()).collect(),
        }
    }

    /// A sighting of `headers` as a copy received (Gmail's `internalDate`) at
    /// `internal_date_ms`, which times a message without a Date header.
    pub fn received(
        &self,
        headers: &str,
        provider_id: &str,
        labels: &[&str],
        internal_date_ms: i64,
    ) -> CapturedSighting {
        CapturedSighting {
            extraction: self.extractor.extract(&received(headers, internal_date_ms)),
            provider_message_id: provider_id.to_owned(),
            labels: labels.iter().map(|l| (*l).to_owned()).collect(),
        }
    }

    pub fn page(&self, sightings: Vec<CapturedSighting>) -> CapturePage {
        CapturePage { sightings }
    }
}

/// The record of `headers` received at `internal_date_ms`.
pub fn received(headers: &str, internal_date_ms: i64) -> MessageRecord {
    let mut record = MessageRecord::from_rfc5322(headers.as_bytes());
    record.internal_date_ms = Some(internal_date_ms);
    record
}

/// Ann writes to Bob (Globex) and Dana (free mail), copying Carl.
pub const OUTBOUND: &str = "From: Ann Lee <ann.lee@acme.com>\n\
    To: bob@mail.globex.co.uk, dana@gmail.com\nCc: carl@acme.com\n\
    Subject: Renewal\nMessage-ID: <1@acme.com>\nDate: Tue, 01 Jul 2025 10:00:00 +0000\n";

/// Bob answers Ann.
pub const REPLY: &str = "From: bob@mail.globex.co.uk\nTo: ann@acme.com\n\
    Subject: Re: Renewal\nMessage-ID: <2@globex.co.uk>\nIn-Reply-To: <1@acme.com>\n\
    Date: Wed, 02 Jul 2025 09:00:00 +0000\n";

/// A newsletter: automated, so excluded.
pub const NEWSLETTER: &str = "From: news@globex.co.uk\nTo: ann@acme.com\n\
    List-Unsubscribe: <mailto:unsub@globex.co.uk>\nSubject: News\n\
    Message-ID: <3@globex.co.uk>\nDate: Thu, 03 Jul 2025 09:00:00 +0000\n";

/// Carl writes to Erin at Initech, blind-copying Ann: Ann's copy has no Bcc header.
pub const TO_ERIN: &str = "From: carl@acme.com\nTo: erin@initech.com\n\
    Subject: Intro\nMessage-ID: <4@acme.com>\nDate: Fri, 04 Jul 2025 09:00:00 +0000\n";

/// The same message as Carl's sent copy carries it: with Ann on Bcc.
pub const TO_ERIN_SENDER_COPY: &str = "From: carl@acme.com\nTo: erin@initech.com\n\
    Bcc: ann@acme.com\n\
    Subject: Intro\nMessage-ID: <4@acme.com>\nDate: Fri, 04 Jul 2025 09:00:00 +0000\n";

/// Carl writes to Ann, blind-copying Erin at Initech: Ann's copy, without the Bcc
/// header, looks internal on its own.
pub const TO_ANN_BCC_ERIN: &str = "From: carl@acme.com\nTo: ann@acme.com\n\
    Subject: Pricing\nMessage-ID: <5@acme.com>\nDate: Sat, 05 Jul 2025 09:00:00 +0000\n";

/// The same message as Carl's sent copy carries it: with Erin on Bcc.
pub const TO_ANN_BCC_ERIN_SENDER_COPY: &str = "From: carl@acme.com\nTo: ann@acme.com\n\
    Bcc: erin@initech.com\n\
    Subject: Pricing\nMessage-ID: <5@acme.com>\nDate: Sat, 05 Jul 2025 09:00:00 +0000\n";

/// Bob writes to Ann and Carl without a Date header: each copy's `internalDate` is a
/// candidate for the time, the earliest wins.
pub const DATELESS: &str = "From: bob@mail.globex.co.uk\nTo: ann@acme.com, carl@acme.com\n\
    Subject: Undated\nMessage-ID: <6@globex.co.uk>\n";

/// Carl writes to Ann, blind-copying Erin, without a Date header: Ann's copy looks
/// internal on its own (see [`TO_ANN_BCC_ERIN`]).
pub const UNDATED_TO_ANN_BCC_ERIN: &str = "From: carl@acme.com\nTo: ann@acme.com\n\
    Subject: Undated pricing\nMessage-ID: <7@acme.com>\n";

/// Carl's sent copy of [`UNDATED_TO_ANN_BCC_ERIN`], with Erin on Bcc.
pub const UNDATED_TO_ANN_BCC_ERIN_SENDER_COPY: &str = "From: carl@acme.com\nTo: ann@acme.com\n\
    Bcc: erin@initech.com\nSubject: Undated pricing\nMessage-ID: <7@acme.com>\n";

/// Calendar fixtures shared by the meeting tests.
pub mod calendar {
    use tributary_core::{Attendee, EmailAddress, EventType, Occurrence, Response};

    pub const HOUR_MS: i64 = 3_600_000;
    pub const DAY_MS: i64 = 24 * HOUR_MS;
    /// A fixed "now": 2025-06-15T00:00Z.
    pub const NOW: i64 = 1_749_945_600_000;

    pub fn address(raw: &str) -> EmailAddress {
        EmailAddress::parse(raw).unwrap()
    }

    pub fn person(raw: &str, response: Response) -> Attendee {
        Attendee {
            address: address(raw),
            name: None,
            response,
            resource: false,
        }
    }

    /// A one-hour "Review" that Ann organizes (and accepts) `days` from now with
    /// `attendees`, as the calendar of `owner` lists it.
    pub fn ann_meets(uid: &str, days: i64, attendees: Vec<Attendee>, owner: &str) -> Occurrence {
        let start = NOW + days * DAY_MS;
        Occurrence {
            ical_uid: uid.into(),
            original_start_ms: None,
            start_ms: start,
            end_ms: start + HOUR_MS,
            all_day: false,
            cancelled: false,
            event_type: EventType::Default,
            shows_as_out_of_office: false,
            organizer: Some(person("ann@acme.com", Response::Accepted)),
            attendees,
            private: false,
            title: Some("Review".into()),
            calendar_owner: address(owner),
        }
    }
}
