//! The conversation kinds: who writes to whom, in which order, with which headers.

use std::collections::BTreeSet;

use rand::Rng;

use super::{ContactPick, Conversation, Options, Outgoing, Planner};
use crate::org::mail::{Addressee, Automation, PersonId, Recipient};
use crate::org::names::{self, AutomatedKind};
use crate::org::people::PersonKind;

impl Planner<'_> {
    /// A reply to `previous` by `replier`: to the previous sender, and with `reply_all`
    /// to everyone else visible in it.
    pub(super) fn reply(
        &mut self,
        conversation: &Conversation,
        previous: &Outgoing,
        replier: PersonId,
        reply_all: bool,
    ) -> Outgoing {
        let from = self.spell(replier);
        let mut seen = BTreeSet::from([replier]);
        let mut to = Vec::new();
        if previous.from.person != replier {
            seen.insert(previous.from.person);
            to.push(Recipient::One(previous.from.clone()));
        }
        let mut cc = Vec::new();
        let visible: Vec<Addressee> = previous
            .to
            .iter()
            .chain(&previous.cc)
            .flat_map(Recipient::addressees)
            .cloned()
            .collect();
        for addressee in visible {
            if !seen.insert(addressee.person) {
                continue;
            }
            if to.is_empty() {
                to.push(Recipient::One(addressee));
            } else if reply_all {
                cc.push(Recipient::One(addressee));
            }
        }
        let subject = self.reply_subject(replier, &conversation.subject);
        let mut reply = Outgoing::new(from, to, subject);
        reply.cc = cc;
        reply
    }

    /// Replies alternating between `first` and `second`, starting with `first`.
    pub(super) fn back_and_forth(
        &mut self,
        conversation: &mut Conversation,
        mut previous: Outgoing,
        first: PersonId,
        second: PersonId,
        replies: usize,
    ) {
        for index in 0..replies {
            if !self.advance(conversation) {
                return;
            }
            let replier = if index % 2 == 0 { first } else { second };
            let reply_all = self.rng.gen_bool(0.6);
            let reply = self.reply(conversation, &previous, replier, reply_all);
            if !self.emit(conversation, &reply) {
                return;
            }
            previous = reply;
        }
    }

    pub(super) fn reply_count(&mut self) -> usize {
        match self.rng.gen_range(0..100) {
            0..35 => 0,
            35..65 => 1,
            65..83 => 2,
            83..93 => 3,
            _ => 4,
        }
    }

    pub(super) fn user_person(&self, user: usize) -> PersonId {
        self.population.profiles[user].person
    }

    pub(super) fn inbound(
        &mut self,
        mut conversation: Conversation,
        anchor: usize,
        options: Options,
    ) {
        let contact = self.pick_contact(anchor, options.contact);
        let start = conversation.time_ms;
        let mut to = vec![Recipient::One(self.spell_user(
            anchor,
            true,
            options.second_domain,
        ))];
        let mut cc = Vec::new();
        let mut internal = vec![anchor];
        let extra = options
            .extra_members
            .max(usize::from(self.rng.gen_bool(0.2)));
        for _ in 0..extra {
            if let Some(colleague) = self.pick_colleague(&internal, start, options.recent) {
                internal.push(colleague);
                let recipient = self.user_recipient(colleague, true);
                if self.rng.gen_bool(0.5) {
                    to.push(recipient);
                } else {
                    cc.push(recipient);
                }
            }
        }
        if self.rng.gen_bool(0.04) {
            let group = self.group();
            cc.push(self.one(group));
        }
        if self.rng.gen_bool(0.25)
            && let Some(colleague) = self.colleague_of(contact)
        {
            cc.push(self.one(colleague));
        }
        conversation.subject = self.human_subject(self.population.people[contact].japanese);
        if options.no_message_id && self.rng.gen_bool(0.5) {
            // Irregular white space: the hash key normalizes it.
            conversation.subject = conversation.subject.replacen(' ', "   ", 1);
        }
        let from = self.spell(contact);
        let mut first = Outgoing::new(from, to, conversation.subject.clone());
        first.cc = cc;
        first.no_message_id = options.no_message_id;
        first.no_date = options.no_date;
        if self.rng.gen_bool(0.03)
            && let Some(colleague) = self.colleague_of(contact)
        {
            first.reply_to = Some(self.spell(colleague));
        }
        if !self.emit(&mut conversation, &first) {
            return;
        }
        let replies = self.reply_count();
        let anchor_person = self.user_person(anchor);
        self.back_and_forth(&mut conversation, first, anchor_person, contact, replies);
    }

    pub(super) fn outbound(
        &mut self,
        mut conversation: Conversation,
        anchor: usize,
        options: Options,
    ) {
        let contact = self.pick_contact(anchor, options.contact);
        let start = conversation.time_ms;
        let mut to = vec![self.one(contact)];
        if self.rng.gen_bool(0.25) {
            let second = match self.colleague_of(contact) {
                Some(colleague) if self.rng.gen_bool(0.5) => colleague,
                _ => self.pick_contact(anchor, ContactPick::Any),
            };
            if second != contact {
                to.push(self.one(second));
            }
        }
        let mut cc = Vec::new();
        if self.rng.gen_bool(0.2)
            && let Some(colleague) = self.pick_colleague(&[anchor], start, false)
        {
            cc.push(self.user_recipient(colleague, false));
        }
        if self.rng.gen_bool(0.03) {
            let group = self.group();
            cc.push(self.one(group));
        }
        let mut bcc = Vec::new();
        if options.bcc || self.rng.gen_bool(0.08) {
            let colleague = self.pick_colleague(&[anchor], start, options.recent);
            match colleague {
                Some(user) if self.rng.gen_bool(0.6) => {
                    bcc.push(self.spell_user(user, false, false))
                }
                _ => {
                    let other = self.pick_contact(anchor, ContactPick::Company);
                    if other != contact {
                        bcc.push(self.spell(other));
                    }
                }
            }
        }
        if self.rng.gen_bool(0.01) {
            // Copying oneself: one copy in the sender's mailbox with INBOX and SENT.
            cc.push(self.user_recipient(anchor, false));
        }
        conversation.subject = self.human_subject(self.population.people[contact].japanese);
        let from = self.spell_user(anchor, false, false);
        let mut first = Outgoing::new(from, to, conversation.subject.clone());
        first.cc = cc;
        first.bcc = bcc;
        if !self.emit(&mut conversation, &first) {
            return;
        }
        let replies = self.reply_count();
        let anchor_person = self.user_person(anchor);
        self.back_and_forth(&mut conversation, first, contact, anchor_person, replies);
    }

    /// An internal conversation; returns the last message and the users in it.
    pub(super) fn internal(
        &mut self,
        mut conversation: Conversation,
        anchor: usize,
        options: Options,
    ) -> Option<(Conversation, Outgoing, Vec<usize>)> {
        let start = conversation.time_ms;
        let wanted = options.extra_members.max(self.rng.gen_range(1..=3));
        let mut users = vec![anchor];
        for _ in 0..wanted {
            if let Some(colleague) = self.pick_colleague(&users, start, options.recent) {
                users.push(colleague);
            }
        }
        if users.len() < 2 {
            return None;
        }
        let mut to = Vec::new();
        let mut cc = Vec::new();
        for (index, user) in users.iter().skip(1).enumerate() {
            let recipient = self.user_recipient(*user, false);
            if index < 2 {
                to.push(recipient);
            } else {
                cc.push(recipient);
            }
        }
        if self.rng.gen_bool(0.1) {
            let group = self.group();
            cc.push(self.one(group));
        }
        if self.rng.gen_bool(0.08) {
            let service = self.population.internal_service;
            cc.push(self.one(service));
        }
        let no_mailbox =
            (0..self.population.users.len()).find(|u| !self.population.profiles[*u].has_mailbox);
        if self.rng.gen_bool(0.05)
            && let Some(no_mailbox) = no_mailbox
        {
            cc.push(self.user_recipient(no_mailbox, false));
        }
        conversation.subject = self.pick(names::INTERNAL_SUBJECTS).to_string();
        let from = self.spell_user(anchor, false, false);
        let mut first = Outgoing::new(from, to, conversation.subject.clone());
        first.cc = cc;
        if !self.emit(&mut conversation, &first) {
            return None;
        }
        let mut previous = first;
        for _ in 0..self.rng.gen_range(0..=3) {
            if !self.advance(&mut conversation) {
                break;
            }
            let replier = users[self.rng.gen_range(0..users.len())];
            let person = self.user_person(replier);
            if person == previous.from.person {
                continue;
            }
            let reply = self.reply(&conversation, &previous, person, true);
            if !self.emit(&mut conversation, &reply) {
                break;
            }
            previous = reply;
        }
        Some((conversation, previous, users))
    }

    pub(super) fn internal_then_external(
        &mut self,
        conversation: Conversation,
        anchor: usize,
        options: Options,
    ) {
        let Some((mut conversation, previous, users)) =
            self.internal(conversation, anchor, options)
        else {
            return;
        };
        if !self.advance(&mut conversation) {
            return;
        }
        // Looping in someone outside: from here on the conversation is outbound.
        let contact = self.pick_contact(anchor, ContactPick::Company);
        let anchor_person = self.user_person(anchor);
        let mut looped = self.reply(&conversation, &previous, anchor_person, true);
        looped.to = vec![self.one(contact)];
        looped.cc = users
            .iter()
            .filter(|u| **u != anchor)
            .map(|u| Recipient::One(self.population_user_addressee(*u)))
            .collect();
        looped.body = Some(format!(
            "Hi {},\n\nLooping you in on this. Details below.\n\nBest,\n{}\n",
            self.population.people[contact].given_name,
            self.population.people[anchor_person].given_name
        ));
        if !self.emit(&mut conversation, &looped) {
            return;
        }
        if self.rng.gen_bool(0.5) {
            self.back_and_forth(&mut conversation, looped, contact, anchor_person, 1);
        }
    }

    pub(super) fn population_user_addressee(&self, user: usize) -> Addressee {
        Addressee {
            person: self.population.profiles[user].person,
            address: self.population.users[user].primary_email.clone(),
        }
    }

    pub(super) fn automated_sender(&mut self, kind: AutomatedKind) -> PersonId {
        let candidates: Vec<PersonId> = self
            .population
            .automated
            .iter()
            .copied()
            .filter(|p| self.population.people[*p].kind == PersonKind::Automated(kind))
            .collect();
        self.pick(&candidates)
    }

    pub(super) fn list_unsubscribe(&mut self, sender: PersonId) -> String {
        let address = &self.population.people[sender].address;
        let domain = address.rsplit_once('@').map_or("", |(_, d)| d).to_string();
        let token = self.random_chars(b"0123456789abcdef", 24);
        format!(
            "<https://{domain}/unsubscribe/{token}>, <mailto:unsubscribe@{domain}?subject=unsubscribe>"
        )
    }

    pub(super) fn list_id(&self, sender: PersonId) -> String {
        let person = &self.population.people[sender];
        let (local, domain) = person
            .address
            .split_once('@')
            .unwrap_or(("list", "invalid"));
        let local = local.split('+').next().unwrap_or(local);
        format!(
            "{} <{local}.{domain}>",
            crate::org::render::phrase(person.display_name.as_deref().unwrap_or(local))
        )
    }

    pub(super) fn newsletter(
        &mut self,
        mut conversation: Conversation,
        anchor: usize,
        options: Options,
    ) {
        let sender = self.automated_sender(AutomatedKind::Newsletter);
        let to = if options.to_group || self.rng.gen_bool(0.25) {
            let group = if options.to_group {
                self.population.groups[0].person
            } else {
                self.group()
            };
            self.one(group)
        } else {
            self.user_recipient(anchor, true)
        };
        conversation.subject = self.pick(names::NEWSLETTER_SUBJECTS).to_string();
        let automation = Automation {
            list_unsubscribe: Some(self.list_unsubscribe(sender)),
            list_id: Some(self.list_id(sender)),
            precedence: Some("bulk"),
            auto_submitted: None,
        };
        let from = self.spell(sender);
        let mut message = Outgoing::new(from, vec![to], conversation.subject.clone())
            .automated("CATEGORY_PROMOTIONS", automation);
        if self.rng.gen_bool(0.3) {
            // Replies go to a human at the company: Reply-To is never a participant.
            if let Some(human) = self.colleague_of(sender) {
                message.reply_to = Some(self.spell(human));
            }
        }
        message.body = Some(self.automated_body(&conversation.subject, sender));
        self.emit(&mut conversation, &message);
    }

    pub(super) fn notification(
        &mut self,
        mut conversation: Conversation,
        anchor: usize,
        kind: AutomatedKind,
    ) {
        let sender = self.automated_sender(kind);
        let (subject, automation, category) = match kind {
            AutomatedKind::AutoGenerated => (
                self.numbered(names::ALERT_SUBJECTS),
                Automation {
                    auto_submitted: Some("auto-generated"),
                    ..Automation::default()
                },
                "CATEGORY_UPDATES",
            ),
            AutomatedKind::Junk => (
                self.pick(names::JUNK_SUBJECTS).to_string(),
                Automation {
                    precedence: Some("junk"),
                    ..Automation::default()
                },
                "CATEGORY_PROMOTIONS",
            ),
            _ => (
                self.numbered(names::NOTIFICATION_SUBJECTS),
                Automation::default(),
                "CATEGORY_UPDATES",
            ),
        };
        let to = if kind == AutomatedKind::AutoGenerated && self.rng.gen_bool(0.3) {
            let group = self.group();
            self.one(group)
        } else {
            self.user_recipient(anchor, true)
        };
        conversation.subject = subject.clone();
        let from = self.spell(sender);
        let mut message =
            Outgoing::new(from, vec![to], subject.clone()).automated(category, automation);
        message.body = Some(self.automated_body(&subject, sender));
        self.emit(&mut conversation, &message);
    }

    pub(super) fn discussion_list(&mut self, mut conversation: Conversation, anchor: usize) {
        let list = self.automated_sender(AutomatedKind::DiscussionList);
        let author = self.pick_contact(anchor, ContactPick::Any);
        conversation.subject = self.pick(names::DISCUSSION_SUBJECTS).to_string();
        let automation = Automation {
            list_id: Some(self.list_id(list)),
            precedence: Some("list"),
            ..Automation::default()
        };
        let from = self.spell(author);
        let to = self.one(list);
        let mut message = Outgoing::new(from, vec![to], conversation.subject.clone())
            .automated("CATEGORY_FORUMS", automation);
        // Subscribers receive list mail without appearing in its headers.
        let primary = self.population.users[anchor].primary_email.clone();
        message.subscribers.push((anchor, primary));
        if let Some(other) = self.pick_colleague(&[anchor], conversation.time_ms, false)
            && self.rng.gen_bool(0.4)
        {
            let address = self.population.users[other].primary_email.clone();
            message.subscribers.push((other, address));
        }
        self.emit(&mut conversation, &message);
    }

    pub(super) fn internal_automated(&mut self, mut conversation: Conversation, anchor: usize) {
        let senders = self.population.internal_automated.clone();
        let sender = self.pick(&senders);
        let bounce = self.population.people[sender]
            .address
            .starts_with("mailer-daemon@");
        let (subject, automation) = if bounce {
            (
                "Delivery Status Notification (Failure)".to_string(),
                Automation {
                    auto_submitted: Some("auto-replied"),
                    ..Automation::default()
                },
            )
        } else {
            (
                format!("Expense report #{} approved", self.rng.gen_range(100..999)),
                Automation::default(),
            )
        };
        conversation.subject = subject.clone();
        let from = self.spell(sender);
        let to = self.user_recipient(anchor, false);
        let mut message = Outgoing::new(from, vec![to], subject.clone())
            .automated("CATEGORY_UPDATES", automation);
        message.body = Some(self.automated_body(&subject, sender));
        self.emit(&mut conversation, &message);
    }

    pub(super) fn contact_auto_reply(&mut self, mut conversation: Conversation, anchor: usize) {
        let contact = self.pick_contact(anchor, ContactPick::Company);
        conversation.subject = self.human_subject(false);
        let from = self.spell_user(anchor, false, false);
        let to = self.one(contact);
        let first = Outgoing::new(from, vec![to], conversation.subject.clone());
        if !self.emit(&mut conversation, &first) || !self.advance(&mut conversation) {
            return;
        }
        let subject = format!("Automatic reply: {}", conversation.subject);
        let mut auto = Outgoing::new(
            self.spell(contact),
            vec![Recipient::One(first.from.clone())],
            subject,
        )
        .automated(
            "CATEGORY_PERSONAL",
            Automation {
                auto_submitted: Some("auto-replied"),
                ..Automation::default()
            },
        );
        auto.body = Some(
            "I am out of the office with limited access to email and will reply when I return.\n"
                .into(),
        );
        if !self.emit(&mut conversation, &auto) {
            return;
        }
        if self.rng.gen_bool(0.5) {
            let anchor_person = self.user_person(anchor);
            self.back_and_forth(&mut conversation, first, contact, anchor_person, 1);
        }
    }

    pub(super) fn vacation_reply(&mut self, mut conversation: Conversation, anchor: usize) {
        let contact = self.pick_contact(anchor, ContactPick::Any);
        conversation.subject = self.human_subject(false);
        let to = self.user_recipient(anchor, true);
        let first = Outgoing::new(self.spell(contact), vec![to], conversation.subject.clone());
        if !self.emit(&mut conversation, &first) || !self.advance(&mut conversation) {
            return;
        }
        let subject = format!("Out of office: {}", conversation.subject);
        let from = self.spell_user(anchor, false, false);
        let mut auto = Outgoing::new(from, vec![Recipient::One(first.from.clone())], subject)
            .automated(
                "CATEGORY_PERSONAL",
                Automation {
                    auto_submitted: Some("auto-replied"),
                    ..Automation::default()
                },
            );
        auto.body = Some(
            "Thanks for your message. I am away this week and will reply on my return.\n".into(),
        );
        self.emit(&mut conversation, &auto);
    }

    pub(super) fn group_syntax(
        &mut self,
        mut conversation: Conversation,
        anchor: usize,
        options: Options,
    ) {
        let start = conversation.time_ms;
        let contact = self.pick_contact(anchor, ContactPick::Company);
        let colleague = self.pick_colleague(&[anchor], start, options.recent);
        let name = self.pick(names::GROUP_NAMES).to_string();
        conversation.subject = self.human_subject(false);
        let outbound = options.recent || self.rng.gen_bool(0.6);
        let mut members = Vec::new();
        let sender;
        if outbound {
            sender = self.spell_user(anchor, false, false);
            members.push(self.spell(contact));
            if let Some(other) = self.colleague_of(contact) {
                members.push(self.spell(other));
            }
        } else {
            sender = self.spell(contact);
            members.push(self.spell_user(anchor, true, false));
            if let Some(other) = self.colleague_of(contact) {
                members.push(self.spell(other));
            }
        }
        if let Some(user) = colleague {
            members.push(self.spell_user(user, !outbound, false));
        }
        let to = vec![Recipient::Group { name, members }];
        let first = Outgoing::new(sender, to, conversation.subject.clone());
        if !self.emit(&mut conversation, &first) {
            return;
        }
        let replier = if outbound {
            contact
        } else {
            self.user_person(anchor)
        };
        if self.rng.gen_bool(0.6) && self.advance(&mut conversation) {
            let reply = self.reply(&conversation, &first, replier, true);
            self.emit(&mut conversation, &reply);
        }
    }

    pub(super) fn undisclosed(&self) -> Recipient {
        Recipient::Group {
            name: "undisclosed-recipients".into(),
            members: Vec::new(),
        }
    }

    pub(super) fn undisclosed_outbound(&mut self, mut conversation: Conversation, anchor: usize) {
        let mut bcc = Vec::new();
        let mut chosen = BTreeSet::new();
        for _ in 0..self.rng.gen_range(2..=4) {
            let contact = self.pick_contact(anchor, ContactPick::Any);
            if chosen.insert(contact) {
                bcc.push(self.spell(contact));
            }
        }
        if let Some(user) = self.pick_colleague(&[anchor], conversation.time_ms, false)
            && self.rng.gen_bool(0.5)
        {
            bcc.push(self.spell_user(user, false, false));
        }
        let topic = self.pick(names::TOPICS);
        conversation.subject = format!("Invitation: briefing on {topic}");
        let from = self.spell_user(anchor, false, false);
        let mut message =
            Outgoing::new(from, vec![self.undisclosed()], conversation.subject.clone());
        message.bcc = bcc;
        self.emit(&mut conversation, &message);
    }

    pub(super) fn undisclosed_inbound(&mut self, mut conversation: Conversation, anchor: usize) {
        let contact = self.pick_contact(anchor, ContactPick::Company);
        let mut bcc = vec![self.spell_user(anchor, true, false)];
        if let Some(user) = self.pick_colleague(&[anchor], conversation.time_ms, false)
            && self.rng.gen_bool(0.5)
        {
            bcc.push(self.spell_user(user, true, false));
        }
        conversation.subject = self.human_subject(self.population.people[contact].japanese);
        let from = self.spell(contact);
        let mut message =
            Outgoing::new(from, vec![self.undisclosed()], conversation.subject.clone());
        message.bcc = bcc;
        self.emit(&mut conversation, &message);
    }

    pub(super) fn draft_only(&mut self, mut conversation: Conversation, anchor: usize) {
        let contact = self.pick_contact(anchor, ContactPick::Any);
        conversation.subject = self.human_subject(false);
        let from = self.spell_user(anchor, false, false);
        let to = self.one(contact);
        let mut draft = Outgoing::new(from, vec![to], conversation.subject.clone());
        draft.draft = true;
        self.emit(&mut conversation, &draft);
    }
}
