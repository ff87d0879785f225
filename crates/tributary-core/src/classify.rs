//! Participants (one address in one role, classified against the tenant) and the
//! message's direction.

use crate::address::EmailAddress;
use crate::parse::NamedAddress;
#[cfg(doc)]
use crate::parse::ParsedHeaders;
use crate::tenant::{AddressClass, TenantDirectory};
use serde::Serialize;
use std::collections::HashSet;

/// The header a participant's address came from. Sender and Reply-To are not roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    From,
    To,
    Cc,
    Bcc,
}

impl Role {
    /// True for the recipient roles: to, cc and bcc.
    pub fn is_recipient(self) -> bool {
        self != Role::From
    }
}

/// One address in one role, with its classification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Participant {
    pub address: EmailAddress,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub role: Role,
    #[serde(flatten)]
    pub class: AddressClass,
}

/// Which way a message went, seen from the tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Sent by a member or another internal address to someone outside.
    Outbound,
    /// Sent from outside.
    Inbound,
    /// No external participant at all.
    Internal,
}

const LINEAR_DEDUPE_LIMIT: usize = 16;

/// The participants of a message, classified: From, then To, Cc and Bcc addresses in
/// header order, each (address, role) once. Takes the lists of
/// [`ParsedHeaders::take_address_lists`].
pub fn participants(
    lists: [(Role, Vec<NamedAddress>); 4],
    tenant: &TenantDirectory,
) -> Vec<Participant> {
    let capacity = lists.iter().map(|(_, list)| list.len()).sum();
    let mut participants: Vec<Participant> = Vec::with_capacity(capacity);
    // Most messages have a handful of participants: a linear scan beats hashing them.
    let mut seen: Option<HashSet<(EmailAddress, Role)>> =
        (capacity > LINEAR_DEDUPE_LIMIT).then(|| HashSet::with_capacity(capacity));
    for (role, list) in lists {
        for NamedAddress { address, name } in list {
            let first_time = match &mut seen {
                Some(seen) => seen.insert((address.clone(), role)),
                None => !participants
                    .iter()
                    .any(|p| p.role == role && p.address == address),
            };
            if first_time {
                let class = tenant.classify(&address);
                participants.push(Participant {
                    address,
                    name,
                    role,
                    class,
                });
            }
        }
    }
    participants
}

/// The direction of a message: internal without an external participant, outbound when
/// its (first) From address is a member or internal, inbound otherwise.
pub fn direction(participants: &[Participant]) -> Direction {
    if !participants
        .iter()
        .any(|p| p.class == AddressClass::External)
    {
        return Direction::Internal;
    }
    let sender = participants.iter().find(|p| p.role == Role::From);
    if sender.is_some_and(|sender| sender.class.is_tenant_side()) {
        Direction::Outbound
    } else {
        Direction::Inbound
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::MessageRecord;
    use crate::parse::ParsedHeaders;

    fn tenant() -> TenantDirectory {
        let mut tenant = TenantDirectory::new();
        tenant.add_domain("acme.com").unwrap();
        tenant
            .add_member("ann@acme.com", ["a.lee@acme.com"])
            .unwrap();
        tenant
    }

    fn classify(raw: &str) -> (Vec<Participant>, Direction) {
        let mut headers = ParsedHeaders::parse(&MessageRecord::from_rfc5322(raw.as_bytes()));
        let participants = participants(headers.take_address_lists(), &tenant());
        let direction = direction(&participants);
        (participants, direction)
    }

    #[test]
    fn roles_and_classes() {
        let (participants, _) = classify(
            "From: A.Lee@acme.com\nTo: bob@globex.com, sales@acme.com\nCc: bob@globex.com\n\
             Bcc: ann@acme.com\nReply-To: other@globex.com\nSender: s@acme.com\n",
        );
        let summary: Vec<_> = participants
            .iter()
            .map(|p| (p.address.as_str(), p.role, p.class.clone()))
            .collect();
        let ann = AddressClass::Member {
            member: EmailAddress::parse("ann@acme.com").unwrap(),
        };
        assert_eq!(
            summary,
            [
                ("a.lee@acme.com", Role::From, ann.clone()),
                ("bob@globex.com", Role::To, AddressClass::External),
                ("sales@acme.com", Role::To, AddressClass::Internal),
                ("bob@globex.com", Role::Cc, AddressClass::External),
                ("ann@acme.com", Role::Bcc, ann),
            ]
        );
    }

    #[test]
    fn an_address_repeated_in_one_role_is_one_participant() {
        let (participants, _) =
            classify("From: x@y.com\nTo: Bob <bob@y.com>, BOB@y.com\nTo: bob@Y.com\n");
        assert_eq!(participants.len(), 2);
    }

    #[test]
    fn direction_follows_the_contract() {
        assert_eq!(
            classify("From: ann@acme.com\nTo: bob@globex.com\n").1,
            Direction::Outbound
        );
        assert_eq!(
            classify("From: ops@acme.com\nTo: bob@globex.com\n").1,
            Direction::Outbound
        );
        assert_eq!(
            classify("From: bob@globex.com\nTo: ann@acme.com\n").1,
            Direction::Inbound
        );
        assert_eq!(
            classify("From: ann@acme.com\nTo: ops@acme.com\n").1,
            Direction::Internal
        );
        assert_eq!(classify("To: bob@globex.com\n").1, Direction::Inbound);
    }
}
