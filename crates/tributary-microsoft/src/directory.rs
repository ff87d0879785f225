//! The organization's users from Graph (`User.Read.All`), with every address they
//! receive mail at, and which of them are administrators: the members of the Global
//! Administrator directory role (`RoleManagement.Read.Directory`), which the policy's
//! "Calendar sync: administrators only" reads.

use crate::api::{Api, required};
use crate::error::GraphCall;
use serde::Deserialize;
use std::collections::HashSet;
use std::sync::Arc;
use tributary_core::{DirectoryAccount, ProviderError, ProviderErrorKind};

/// What a user listing selects: only what matching members to mailboxes needs
/// (`accountEnabled` and `proxyAddresses` are not default properties).
const USER_SELECT: &str = "id,userPrincipalName,mail,proxyAddresses,accountEnabled,displayName";
/// Graph's largest user page.
const MAX_PAGE_SIZE: u16 = 999;
/// The Global Administrator role's template id, the same in every tenant (Entra ID's
/// built-in roles reference); the role object's own id differs per tenant.
pub const GLOBAL_ADMIN_ROLE_TEMPLATE: &str = "62e90394-69f5-4237-9190-012177145e10";

/// Reads the tenant's directory.
#[derive(Debug, Clone)]
pub struct DirectoryClient {
    api: Arc<Api>,
    page_size: u16,
}

/// A user as Graph lists it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryUser {
    pub id: String,
    #[serde(default)]
    pub user_principal_name: String,
    /// The primary SMTP address; `null` for an account without a mailbox.
    pub mail: Option<String>,
    /// `SMTP:primary`, `smtp:alias`, and other kinds (`x500:`, `sip:`) that are not mail.
    #[serde(default)]
    pub proxy_addresses: Vec<String>,
    /// Absent when not selected; assume enabled rather than skip someone silently.
    #[serde(default = "enabled")]
    pub account_enabled: bool,
    pub display_name: Option<String>,
    /// A Global Administrator: not a user property, filled in from the role's members by
    /// [`DirectoryClient::list_users`].
    #[serde(skip)]
    pub is_admin: bool,
}

fn enabled() -> bool {
    true
}

impl DirectoryUser {
    /// Whether Exchange gave the account a mailbox: Graph has no flag, but an account
    /// without one has no `mail` (a mailbox turned off later still has it, and Graph's
    /// `MailboxNotEnabledForRESTAPI` says so on the first mail call).
    pub fn has_mailbox(&self) -> bool {
        self.mail.as_deref().is_some_and(|m| !m.trim().is_empty())
    }

    /// The primary SMTP address: the `SMTP:` proxy address, else `mail`.
    pub fn primary_smtp(&self) -> Option<&str> {
        self.proxy_addresses
            .iter()
            .find_map(|p| p.strip_prefix("SMTP:"))
            .or(self.mail.as_deref())
            .map(str::trim)
            .filter(|a| !a.is_empty())
    }

    /// Every other SMTP address (`smtp:` proxy addresses), without the primary.
    pub fn aliases(&self) -> Vec<String> {
        let primary = self.primary_smtp().unwrap_or_default();
        let mut aliases: Vec<String> = Vec::new();
        for proxy in &self.proxy_addresses {
            let Some((kind, address)) = proxy.split_once(':') else {
                continue;
            };
            let address = address.trim();
            let is_smtp = kind.eq_ignore_ascii_case("smtp");
            if is_smtp
                && !address.is_empty()
                && !address.eq_ignore_ascii_case(primary)
                && !aliases.iter().any(|a| a.eq_ignore_ascii_case(address))
            {
                aliases.push(address.to_string());
            }
        }
        aliases
    }

    /// The provider-neutral account. Without a mailbox the UPN stands in as the primary
    /// address (the account is then skipped for having no mailbox).
    pub fn to_account(&self) -> DirectoryAccount {
        DirectoryAccount {
            id: self.id.clone(),
            primary_email: self
                .primary_smtp()
                .unwrap_or(&self.user_principal_name)
                .to_string(),
            aliases: self.aliases(),
            suspended: !self.account_enabled,
            archived: false,
            is_admin: self.is_admin,
            has_mailbox: self.has_mailbox(),
            full_name: self.display_name.clone().filter(|n| !n.trim().is_empty()),
        }
    }
}

/// One page of users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsersPage {
    pub users: Vec<DirectoryUser>,
    /// Graph's `@odata.nextLink`, opaque: pass it back to get the next page.
    pub next_link: Option<String>,
}

#[derive(Debug, Deserialize)]
struct UsersAnswer {
    #[serde(default)]
    value: Vec<DirectoryUser>,
    #[serde(rename = "@odata.nextLink")]
    next_link: Option<String>,
}

/// A directory object by id: a role, or a role's member.
#[derive(Debug, Deserialize)]
struct ObjectId {
    id: String,
}

#[derive(Debug, Deserialize)]
struct ObjectsAnswer {
    #[serde(default)]
    value: Vec<ObjectId>,
    #[serde(rename = "@odata.nextLink")]
    next_link: Option<String>,
}

impl DirectoryClient {
    pub(crate) fn new(api: Arc<Api>) -> Self {
        DirectoryClient {
            api,
            page_size: MAX_PAGE_SIZE,
        }
    }

    /// Users per page (`$top`, 1 to 999; the default is the largest).
    pub fn with_page_size(mut self, size: u16) -> Self {
        self.page_size = size.clamp(1, MAX_PAGE_SIZE);
        self
    }

    /// Every user, all pages, with the Global Administrators marked.
    pub async fn list_users(&self) -> Result<Vec<DirectoryUser>, ProviderError> {
        let mut users = Vec::new();
        let mut next = None;
        loop {
            let page = self.list_users_page(next.as_deref()).await?;
            users.extend(page.users);
            match page.next_link {
                Some(link) => next = Some(link),
                None => break,
            }
        }
        let admins = self.global_admin_ids().await?;
        for user in &mut users {
            user.is_admin = admins.contains(&user.id);
        }
        Ok(users)
    }

    /// The ids of the Global Administrator role's members. Empty when the role was
    /// never activated in the tenant (Graph lists only activated roles) or when the app
    /// lacks the permission to read roles: an app consented before the permission was
    /// asked for keeps reading users and mail, it only marks nobody an administrator.
    pub async fn global_admin_ids(&self) -> Result<HashSet<String>, ProviderError> {
        match self.read_global_admin_ids().await {
            Err(error) if error.kind() == ProviderErrorKind::Unauthorized => Ok(HashSet::new()),
            other => other,
        }
    }

    async fn read_global_admin_ids(&self) -> Result<HashSet<String>, ProviderError> {
        let mut url = self.api.endpoints.graph(&["directoryRoles"]);
        url.query_pairs_mut()
            .append_pair(
                "$filter",
                &format!("roleTemplateId eq '{GLOBAL_ADMIN_ROLE_TEMPLATE}'"),
            )
            .append_pair("$select", "id");
        let roles: ObjectsAnswer = required(
            self.api
                .get_json(url, &[], GraphCall::Other, "directoryRoles.list")
                .await?,
            "directoryRoles.list",
        )?;
        let Some(role) = roles.value.first() else {
            return Ok(HashSet::new());
        };
        let mut url = self
            .api
            .endpoints
            .graph(&["directoryRoles", &role.id, "members"]);
        url.query_pairs_mut().append_pair("$select", "id");
        let mut ids = HashSet::new();
        loop {
            let page: ObjectsAnswer = required(
                self.api
                    .get_json(url, &[], GraphCall::Other, "directoryRoles.members")
                    .await?,
                "directoryRoles.members",
            )?;
            ids.extend(page.value.into_iter().map(|member| member.id));
            match page.next_link.filter(|l| !l.is_empty()) {
                Some(link) => url = self.api.graph_link(&link, "role members next")?,
                None => return Ok(ids),
            }
        }
    }

    /// The first page (`next_link` `None`) or the one a previous page's link names.
    pub async fn list_users_page(
        &self,
        next_link: Option<&str>,
    ) -> Result<UsersPage, ProviderError> {
        let url = match next_link {
            Some(link) => self.api.graph_link(link, "users next")?,
            None => {
                let mut url = self.api.endpoints.graph(&["users"]);
                url.query_pairs_mut()
                    .append_pair("$select", USER_SELECT)
                    .append_pair("$top", &self.page_size.to_string());
                url
            }
        };
        let answer: UsersAnswer = required(
            self.api
                .get_json(url, &[], GraphCall::Other, "users.list")
                .await?,
            "users.list",
        )?;
        Ok(UsersPage {
            users: answer.value,
            next_link: answer.next_link.filter(|l| !l.is_empty()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_addresses_give_the_primary_and_every_smtp_alias() {
        let answer: UsersAnswer = serde_json::from_str(
            r#"{"value": [
                {"id": "1", "userPrincipalName": "ann@acme.example", "mail": "ann@acme.example",
                 "proxyAddresses": ["smtp:a@acme.example", "SMTP:Ann@acme.example", "x500:/o=x",
                                    "sip:ann@acme.example", "smtp:A@acme.example", "smtp:ann@acme.test"],
                 "accountEnabled": true, "displayName": "Ann Lee"},
                {"id": "2", "userPrincipalName": "room@acme.example", "mail": null,
                 "proxyAddresses": [], "accountEnabled": false, "displayName": ""}],
               "@odata.nextLink": "https://graph.microsoft.com/v1.0/users?$skiptoken=x"}"#,
        )
        .unwrap();
        let ann = answer.value[0].to_account();
        assert_eq!(ann.primary_email, "Ann@acme.example");
        assert_eq!(ann.aliases, ["a@acme.example", "ann@acme.test"]);
        assert!(ann.has_mailbox && !ann.suspended);
        assert_eq!(ann.full_name.as_deref(), Some("Ann Lee"));
        let room = answer.value[1].to_account();
        assert_eq!(room.primary_email, "room@acme.example");
        assert!(!room.has_mailbox && room.suspended && room.full_name.is_none());
        assert!(answer.next_link.is_some());
    }
}
