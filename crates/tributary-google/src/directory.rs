//! The Admin SDK Directory: the organization's users, read as an administrator.

use crate::api::{Api, join, required};
use crate::error::ApiCall;
use crate::scopes;
use serde::Deserialize;
use std::sync::Arc;
use tributary_core::{DirectoryAccount, ProviderError};

/// Largest page `users.list` serves.
const PAGE_SIZE: &str = "500";

/// Reads the Directory by impersonating an administrator (Google refuses anyone else).
#[derive(Debug, Clone)]
pub struct DirectoryClient {
    api: Arc<Api>,
    admin: String,
}

/// One page of `users.list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryPage {
    pub accounts: Vec<DirectoryAccount>,
    pub next_page_token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UsersAnswer {
    #[serde(default)]
    users: Vec<UserJson>,
    next_page_token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UserJson {
    id: String,
    primary_email: String,
    name: Option<NameJson>,
    #[serde(default)]
    aliases: Vec<String>,
    #[serde(default)]
    non_editable_aliases: Vec<String>,
    #[serde(default)]
    suspended: bool,
    #[serde(default)]
    archived: bool,
    #[serde(default)]
    is_admin: bool,
    is_mailbox_setup: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct NameJson {
    full_name: Option<String>,
}

impl From<UserJson> for DirectoryAccount {
    fn from(user: UserJson) -> Self {
        // Non-editable aliases (addresses on domain aliases) receive mail too.
        let mut aliases = user.aliases;
        for alias in user.non_editable_aliases {
            if !aliases.iter().any(|a| a.eq_ignore_ascii_case(&alias)) {
                aliases.push(alias);
            }
        }
        DirectoryAccount {
            id: user.id,
            primary_email: user.primary_email,
            aliases,
            suspended: user.suspended,
            archived: user.archived,
            is_admin: user.is_admin,
            // Absent means unknown: assume a mailbox, and let Gmail say otherwise,
            // rather than silently skip a user.
            has_mailbox: user.is_mailbox_setup.unwrap_or(true),
            full_name: user.name.and_then(|n| n.full_name),
        }
    }
}

impl DirectoryClient {
    pub(crate) fn new(api: Arc<Api>, admin: &str) -> Self {
        DirectoryClient {
            api,
            admin: admin.to_string(),
        }
    }

    /// The administrator impersonated.
    pub fn admin(&self) -> &str {
        &self.admin
    }

    /// Every user of the customer (deleted users are not listed), all pages.
    pub async fn list_users(&self) -> Result<Vec<DirectoryAccount>, ProviderError> {
        let mut accounts = Vec::new();
        let mut page_token = None;
        loop {
            let page = self.list_users_page(page_token.as_deref()).await?;
            accounts.extend(page.accounts);
            match page.next_page_token {
                Some(token) => page_token = Some(token),
                None => return Ok(accounts),
            }
        }
    }

    /// One page of up to 500 users.
    pub async fn list_users_page(
        &self,
        page_token: Option<&str>,
    ) -> Result<DirectoryPage, ProviderError> {
        let mut url = join(&self.api.endpoints.directory_base, &["users"]);
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("customer", "my_customer")
                .append_pair("maxResults", PAGE_SIZE);
            if let Some(token) = page_token {
                query.append_pair("pageToken", token);
            }
        }
        let answer: UsersAnswer = required(
            self.api
                .get_json(
                    &self.admin,
                    &[scopes::DIRECTORY_USER_READONLY],
                    url,
                    ApiCall::Other,
                    "users.list",
                )
                .await?,
            "users.list",
        )?;
        Ok(DirectoryPage {
            accounts: answer.users.into_iter().map(Into::into).collect(),
            next_page_token: answer.next_page_token.filter(|t| !t.is_empty()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_become_accounts_with_every_alias() {
        let answer: UsersAnswer = serde_json::from_str(
            r#"{"users": [
                {"id": "1", "primaryEmail": "ann@acme.example", "name": {"fullName": "Ann Lee"},
                 "aliases": ["a@acme.example"], "nonEditableAliases": ["ann@acme.test", "A@acme.example"],
                 "isAdmin": true, "isMailboxSetup": true},
                {"id": "2", "primaryEmail": "old@acme.example", "suspended": true,
                 "archived": true, "isMailboxSetup": false}],
               "nextPageToken": "p2"}"#,
        )
        .unwrap();
        let accounts: Vec<DirectoryAccount> = answer.users.into_iter().map(Into::into).collect();
        assert_eq!(accounts[0].aliases, ["a@acme.example", "ann@acme.test"]);
        assert_eq!(accounts[0].full_name.as_deref(), Some("Ann Lee"));
        assert!(accounts[0].is_admin && accounts[0].has_mailbox);
        assert!(accounts[1].suspended && accounts[1].archived && !accounts[1].has_mailbox);
        assert_eq!(accounts[1].full_name, None);
    }
}
