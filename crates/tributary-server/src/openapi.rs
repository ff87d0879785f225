//! The OpenAPI 3.1 document of `/api/v1`, written by hand from [`OPERATIONS`]. A test
//! checks that its paths are exactly the router's (`api::routes`).

use axum::Json;
use serde_json::{Map, Value, json};
use tributary_sync::runtime::{MAX_LABEL_LEN, MAX_LINKS_PER_ACTION, MAX_MEMBER_LABELS};

/// How an operation's request body is sent.
#[derive(Debug, Clone, Copy)]
pub enum Body {
    None,
    /// `application/json` with the named schema.
    Json(&'static str),
    /// `text/csv`.
    Csv,
}

/// One documented operation.
#[derive(Debug, Clone, Copy)]
pub struct Operation {
    pub method: &'static str,
    /// In OpenAPI syntax, relative to `/api/v1` (same as axum's: `/links/{id}`).
    pub path: &'static str,
    pub id: &'static str,
    pub tag: &'static str,
    pub summary: &'static str,
    /// Callable with a member's token (otherwise admin only).
    pub member_allowed: bool,
    /// (name, JSON type, description) of query parameters.
    pub query: &'static [(&'static str, &'static str, &'static str)],
    pub body: Body,
    /// Success status and the schema of its body (`None`: no body).
    pub success: (u16, Option<&'static str>),
    /// Error statuses beyond 401/403 that this operation answers.
    pub errors: &'static [u16],
}

const PAGE: [(&str, &str, &str); 2] = [
    (
        "cursor",
        "string",
        "`next_cursor` of the previous page, unchanged",
    ),
    ("limit", "integer", "page size (default 100, at most 1000)"),
];

/// The filters of both meeting lists.
const MEETING_QUERY: &[(&str, &str, &str)] = &[
    (
        "member",
        "string",
        "a member's address (primary or alias): meetings that member took part in",
    ),
    ("contact", "string", "a participant's address"),
    ("company", "string", "a participant's company domain"),
    PAGE[0],
    (
        "limit",
        "integer",
        "page size (default 100, at most 1000; a page holds at most 500 meetings)",
    ),
];

pub const OPERATIONS: &[Operation] = &[
    Operation {
        method: "get",
        path: "/openapi.json",
        id: "openapi",
        tag: "meta",
        summary: "This document (no token needed)",
        member_allowed: true,
        query: &[],
        body: Body::None,
        success: (200, None),
        errors: &[],
    },
    Operation {
        method: "get",
        path: "/connection",
        id: "getConnection",
        tag: "connection",
        summary: "The Google setup: client ID, scopes to delegate, admin address (never the key)",
        member_allowed: false,
        query: &[],
        body: Body::None,
        success: (200, Some("GoogleSetup")),
        errors: &[404],
    },
    Operation {
        method: "post",
        path: "/connection",
        id: "connect",
        tag: "connection",
        summary: "Upload the service-account key file and the Workspace admin address; a bad file (a `token_uri` other than the server's Google token endpoint included) or admin address is refused with 422 naming the field, and nothing is stored. When a key is already stored, the new one is tested first (a token for the admin and a directory read): if that fails the stored key is kept and the answer is 409 `key_test_failed` with Google's parsed message, unless `replace_anyway` is true",
        member_allowed: false,
        query: &[],
        body: Body::Json("ConnectRequest"),
        success: (200, Some("GoogleSetup")),
        errors: &[400, 409, 413, 415, 422],
    },
    Operation {
        method: "delete",
        path: "/connection",
        id: "disconnect",
        tag: "connection",
        summary: "Disconnect Google Workspace: capture of its mailboxes stops (their links are unlinked and their push channels stopped), the stored key is deleted, and everything captured so far is kept; audited. 404 when no key is stored",
        member_allowed: false,
        query: &[],
        body: Body::None,
        success: (200, Some("Disconnected")),
        errors: &[404],
    },
    Operation {
        method: "post",
        path: "/connection/test",
        id: "testConnection",
        tag: "connection",
        summary: "Mint a token and read the directory: the result in the link-status taxonomy, Google's message and what to do",
        member_allowed: false,
        query: &[],
        body: Body::None,
        success: (200, Some("ConnectionCheck")),
        errors: &[409],
    },
    Operation {
        method: "get",
        path: "/microsoft/connection",
        id: "getMicrosoftConnection",
        tag: "connection",
        summary: "The Microsoft 365 setup: directory and client IDs, the credential's kind (a secret only by its last characters, a certificate by its thumbprint), the application permissions to grant, the last admin-consent outcome",
        member_allowed: false,
        query: &[],
        body: Body::None,
        success: (200, Some("MicrosoftSetup")),
        errors: &[404],
    },
    Operation {
        method: "post",
        path: "/microsoft/connection",
        id: "connectMicrosoft",
        tag: "connection",
        summary: "Store the app registration (directory ID, client ID, and a client secret or a certificate with its private key, PEM), sealed; a wrong field is refused with 422 naming it (`invalid_tenant_id`, `invalid_client_id`, `invalid_client_secret`, `invalid_certificate`, `invalid_credential`) and nothing is stored. From then on the tenant's provider is Microsoft 365",
        member_allowed: false,
        query: &[],
        body: Body::Json("MicrosoftConnectRequest"),
        success: (200, Some("MicrosoftSetup")),
        errors: &[400, 404, 409, 413, 415, 422],
    },
    Operation {
        method: "delete",
        path: "/microsoft/connection",
        id: "disconnectMicrosoft",
        tag: "connection",
        summary: "Disconnect Microsoft 365: capture of its mailboxes stops (their links are unlinked and their push channels stopped), the app registration and its secret or certificate are deleted, and everything captured so far is kept; audited. 404 when none is stored",
        member_allowed: false,
        query: &[],
        body: Body::None,
        success: (200, Some("Disconnected")),
        errors: &[404],
    },
    Operation {
        method: "post",
        path: "/microsoft/connection/test",
        id: "testMicrosoftConnection",
        tag: "connection",
        summary: "Ask Microsoft for a Graph token and read one page of users: the result in the link-status taxonomy, Microsoft's message (AADSTS code included) and what to do",
        member_allowed: false,
        query: &[],
        body: Body::None,
        success: (200, Some("ConnectionCheck")),
        errors: &[409],
    },
    Operation {
        method: "post",
        path: "/microsoft/consent-link",
        id: "microsoftConsentLink",
        tag: "connection",
        summary: "Microsoft's admin-consent URL for the stored app (on the server's configured identity platform), sending the admin back to `redirect_uri` with `state`",
        member_allowed: false,
        query: &[],
        body: Body::Json("ConsentLinkRequest"),
        success: (200, Some("ConsentLink")),
        errors: &[400, 404, 413, 415, 422],
    },
    Operation {
        method: "post",
        path: "/microsoft/consent",
        id: "recordMicrosoftConsent",
        tag: "connection",
        summary: "Record what Microsoft's consent redirect carried (`admin_consent` and `tenant`, or `error` and `error_description`); a grant in another directory than the connected one is refused (422 `consent_other_directory`), and a grant is tested at once",
        member_allowed: false,
        query: &[],
        body: Body::Json("ConsentRequest"),
        success: (200, Some("ConsentResult")),
        errors: &[400, 409, 413, 415, 422, 502],
    },
    Operation {
        method: "get",
        path: "/capture",
        id: "getCapture",
        tag: "connection",
        summary: "Whether capture is on",
        member_allowed: false,
        query: &[],
        body: Body::None,
        success: (200, Some("Capture")),
        errors: &[],
    },
    Operation {
        method: "put",
        path: "/capture",
        id: "setCapture",
        tag: "connection",
        summary: "Turn capture on (runnable links sync now; the tenant's admins are mailed) or off",
        member_allowed: false,
        query: &[],
        body: Body::Json("Capture"),
        success: (200, Some("CaptureState")),
        errors: &[400, 409, 413, 415, 422],
    },
    Operation {
        method: "get",
        path: "/policy",
        id: "getPolicy",
        tag: "policy",
        summary: "The capture policy",
        member_allowed: false,
        query: &[],
        body: Body::None,
        success: (200, Some("PolicySettings")),
        errors: &[],
    },
    Operation {
        method: "put",
        path: "/policy",
        id: "setPolicy",
        tag: "policy",
        summary: "Validate and save the capture policy",
        member_allowed: false,
        query: &[],
        body: Body::Json("PolicySettings"),
        success: (200, Some("PolicySettings")),
        errors: &[400, 409, 413, 415, 422],
    },
    Operation {
        method: "get",
        path: "/settings",
        id: "getSettings",
        tag: "policy",
        summary: "The tenant's settings: whether Rebuild connects new users automatically",
        member_allowed: false,
        query: &[],
        body: Body::None,
        success: (200, Some("TenantSettings")),
        errors: &[],
    },
    Operation {
        method: "put",
        path: "/settings",
        id: "setSettings",
        tag: "policy",
        summary: "Save the tenant's settings (audited; no connection needed): with `connect_new_users` false, Rebuild links new users without starting them",
        member_allowed: false,
        query: &[],
        body: Body::Json("TenantSettings"),
        success: (200, Some("TenantSettings")),
        errors: &[400, 413, 415, 422],
    },
    Operation {
        method: "get",
        path: "/delegation",
        id: "getDelegation",
        tag: "delegation",
        summary: "The last User Delegation Sync result (matched, unmatched and why, unlinked)",
        member_allowed: false,
        query: &[],
        body: Body::None,
        success: (200, Some("DelegationResult")),
        errors: &[],
    },
    Operation {
        method: "post",
        path: "/delegation/rebuild",
        id: "rebuildDelegation",
        tag: "delegation",
        summary: "Rebuild user matching from the directory now",
        member_allowed: false,
        query: &[],
        body: Body::None,
        success: (200, Some("DelegationReport")),
        errors: &[409, 502],
    },
    Operation {
        method: "get",
        path: "/members",
        id: "listMembers",
        tag: "members",
        summary: "Every member (a captured mailbox's owner) with aliases and whether active; members have no role: roles belong to accounts (`/accounts`)",
        member_allowed: false,
        query: &[],
        body: Body::None,
        success: (200, Some("MemberList")),
        errors: &[],
    },
    Operation {
        method: "post",
        path: "/members",
        id: "createMember",
        tag: "members",
        summary: "Add a member; a `role` is refused with 400 `role_is_per_account` (roles belong to accounts)",
        member_allowed: false,
        query: &[],
        body: Body::Json("CreateMember"),
        success: (201, Some("Member")),
        errors: &[400, 409, 413, 415, 422],
    },
    Operation {
        method: "patch",
        path: "/members/{id}",
        id: "updateMember",
        tag: "members",
        summary: "Change a member's active flag; a `role` is refused with 400 `role_is_per_account` (roles belong to accounts: PATCH `/accounts/{id}`)",
        member_allowed: false,
        query: &[],
        body: Body::Json("UpdateMember"),
        success: (200, Some("Member")),
        errors: &[400, 404, 413, 415, 422],
    },
    Operation {
        method: "post",
        path: "/members/import",
        id: "importMembers",
        tag: "members",
        summary: "Import members from CSV with the header `email,aliases` (aliases separated by `;` or spaces; the older `email,role,aliases` is accepted with the role column empty); one bad row changes nothing",
        member_allowed: false,
        query: &[],
        body: Body::Csv,
        success: (200, Some("ImportResult")),
        errors: &[400, 413, 415, 422],
    },
    Operation {
        method: "get",
        path: "/members/{id}/labels",
        id: "getMemberLabels",
        tag: "members",
        summary: "The labels a member syncs on top of the policy's (a member's token: its own only)",
        member_allowed: true,
        query: &[],
        body: Body::None,
        success: (200, Some("MemberLabels")),
        errors: &[404],
    },
    Operation {
        method: "put",
        path: "/members/{id}/labels",
        id: "setMemberLabels",
        tag: "members",
        summary: "Replace a member's extra labels (a member's token: its own only)",
        member_allowed: true,
        query: &[],
        body: Body::Json("SetLabels"),
        success: (200, Some("MemberLabels")),
        errors: &[400, 404, 413, 415, 422],
    },
    Operation {
        method: "get",
        path: "/members/{id}/mailbox-labels",
        id: "getMemberMailboxLabels",
        tag: "members",
        summary: "The labels a member may choose from, read live from its mailbox (Gmail labels.list): label names with ids, whether each is chosen, minus those the policy syncs for everyone (and drafts, chats, spam, trash, unread), then chosen ids the mailbox no longer has (a member's token: its own only). Google's refusal is a 502 `provider_error` with the link-status `status`, Google's `provider_message` and a `hint`",
        member_allowed: true,
        query: &[],
        body: Body::None,
        success: (200, Some("MailboxLabels")),
        errors: &[404, 409, 502],
    },
    Operation {
        method: "get",
        path: "/links",
        id: "listLinks",
        tag: "links",
        summary: "Mailbox links with status, the provider's message, a fix hint, the last summary and counts (a member's token: its own only)",
        member_allowed: true,
        query: &[(
            "status",
            "string",
            "only links in this status (pending, syncing, idle, authentication_error, unauthorized, linkage_error, unlinked)",
        )],
        body: Body::None,
        success: (200, Some("LinkList")),
        errors: &[400],
    },
    Operation {
        method: "get",
        path: "/links/{id}",
        id: "getLink",
        tag: "links",
        summary: "One link with its progress (messages captured; a backfill's listed and captured counts against the provider's total and the time left at the quota; the worker running it, or that it stopped and when its job is taken over) and its recent runs (a member's token: its own only)",
        member_allowed: true,
        query: &[],
        body: Body::None,
        success: (200, Some("LinkDetail")),
        errors: &[404],
    },
    Operation {
        method: "get",
        path: "/progress",
        id: "getProgress",
        tag: "links",
        summary: "The whole organization's backfill: linked mailboxes by state (backfilled, backfilling, not started, error; and how many wait for a stopped worker's job to be taken over), the messages listed and captured over every backfill begun against the provider's counts, and the time left at the quota: the longest of each backfilling mailbox's time at the per-user budget and all their units left at the project budget",
        member_allowed: false,
        query: &[],
        body: Body::None,
        success: (200, Some("OrgProgress")),
        errors: &[],
    },
    Operation {
        method: "post",
        path: "/links/start",
        id: "startLinks",
        tag: "links",
        summary: "Start links",
        member_allowed: false,
        query: &[],
        body: Body::Json("LinkIds"),
        success: (200, Some("LinkActionResult")),
        errors: &[400, 404, 413, 415, 422],
    },
    Operation {
        method: "post",
        path: "/links/unlink",
        id: "unlinkLinks",
        tag: "links",
        summary: "Unlink links (captured mail stays; their push channels are stopped)",
        member_allowed: false,
        query: &[],
        body: Body::Json("LinkIds"),
        success: (200, Some("LinkActionResult")),
        errors: &[400, 404, 413, 415, 422],
    },
    Operation {
        method: "post",
        path: "/links/retry",
        id: "retryLinks",
        tag: "links",
        summary: "Retry links in an error status now",
        member_allowed: false,
        query: &[],
        body: Body::Json("LinkIds"),
        success: (200, Some("LinkActionResult")),
        errors: &[400, 404, 413, 415, 422],
    },
    Operation {
        method: "post",
        path: "/links/{id}/start",
        id: "startLink",
        tag: "links",
        summary: "Start one link",
        member_allowed: false,
        query: &[],
        body: Body::None,
        success: (200, Some("LinkActionResult")),
        errors: &[404],
    },
    Operation {
        method: "post",
        path: "/links/{id}/unlink",
        id: "unlinkLink",
        tag: "links",
        summary: "Unlink one link",
        member_allowed: false,
        query: &[],
        body: Body::None,
        success: (200, Some("LinkActionResult")),
        errors: &[404],
    },
    Operation {
        method: "post",
        path: "/links/{id}/retry",
        id: "retryLink",
        tag: "links",
        summary: "Retry one link",
        member_allowed: false,
        query: &[],
        body: Body::None,
        success: (200, Some("LinkActionResult")),
        errors: &[404],
    },
    Operation {
        method: "get",
        path: "/activities",
        id: "listActivities",
        tag: "activity",
        summary: "Captured activities, newest first, cursor-paged (a member's token: what the policy's `member_visibility` lets members see, by default what they took part in)",
        member_allowed: true,
        query: &[
            ("member", "string", "a member's address (primary or alias)"),
            ("contact", "string", "a participant's address"),
            ("company", "string", "a participant's company domain"),
            (
                "since",
                "integer",
                "at or after this time, Unix milliseconds",
            ),
            ("until", "integer", "before this time, Unix milliseconds"),
            PAGE[0],
            PAGE[1],
        ],
        body: Body::None,
        success: (200, Some("ActivityPage")),
        errors: &[400],
    },
    Operation {
        method: "get",
        path: "/contacts",
        id: "listContacts",
        tag: "activity",
        summary: "Contacts by address (byte order), cursor-paged (a member's token: what the policy's `member_visibility` lets members see, by default what they took part in)",
        member_allowed: true,
        query: &[
            ("q", "string", "part of the address or company domain"),
            ("company", "string", "the company domain"),
            PAGE[0],
            PAGE[1],
        ],
        body: Body::None,
        success: (200, Some("ContactPage")),
        errors: &[400],
    },
    Operation {
        method: "get",
        path: "/companies",
        id: "listCompanies",
        tag: "activity",
        summary: "Companies by domain (byte order) with their number of contacts, cursor-paged (a member's token: what the policy's `member_visibility` lets members see, by default what they took part in)",
        member_allowed: true,
        query: &[("q", "string", "part of the domain"), PAGE[0], PAGE[1]],
        body: Body::None,
        success: (200, Some("CompanyPage")),
        errors: &[400],
    },
    Operation {
        method: "get",
        path: "/relationships",
        id: "listRelationships",
        tag: "activity",
        summary: "Member–contact relationships with counts and score, by member then contact (byte order), cursor-paged (a member's token: what the policy's `member_visibility` lets members see, by default what they took part in)",
        member_allowed: true,
        query: &[
            ("member", "string", "the member's address"),
            ("contact", "string", "the contact's address"),
            PAGE[0],
            PAGE[1],
        ],
        body: Body::None,
        success: (200, Some("RelationshipPage")),
        errors: &[400],
    },
    Operation {
        method: "get",
        path: "/meetings",
        id: "listMeetings",
        tag: "activity",
        summary: "Captured meetings (contact points: meetings that have ended), latest first, cursor-paged; a member's token: only meetings that member took part in. A private event has no title",
        member_allowed: true,
        query: MEETING_QUERY,
        body: Body::None,
        success: (200, Some("MeetingPage")),
        errors: &[400],
    },
    Operation {
        method: "get",
        path: "/meetings/upcoming",
        id: "listUpcomingMeetings",
        tag: "activity",
        summary: "Upcoming meetings (not ended yet, within the policy's horizon; they may still move or be cancelled), soonest first, cursor-paged; a member's token: only meetings that member takes part in",
        member_allowed: true,
        query: MEETING_QUERY,
        body: Body::None,
        success: (200, Some("MeetingPage")),
        errors: &[400],
    },
    Operation {
        method: "get",
        path: "/audit",
        id: "listAudit",
        tag: "audit",
        summary: "The audit log, newest first, cursor-paged through all of its history: people's actions by default, the sync engine's status changes with `who=system` or `all`; each event has a readable `text`",
        member_allowed: false,
        query: &[
            (
                "who",
                "string",
                "`people` (default: every actor but the sync engine, `system`), `system` or `all`",
            ),
            ("actor", "string", "the actor's address, exactly"),
            (
                "action",
                "string",
                "an action code (`account.disabled`), or a family ending in a dot (`account.`)",
            ),
            (
                "target",
                "string",
                "part of the event's subject (a mailbox, account or member)",
            ),
            PAGE[0],
            PAGE[1],
        ],
        body: Body::None,
        success: (200, Some("AuditLog")),
        errors: &[400],
    },
    Operation {
        method: "get",
        path: "/tokens",
        id: "listTokens",
        tag: "tokens",
        summary: "The tenant's API tokens (never their secrets)",
        member_allowed: false,
        query: &[],
        body: Body::None,
        success: (200, Some("TokenList")),
        errors: &[],
    },
    Operation {
        method: "post",
        path: "/tokens",
        id: "createToken",
        tag: "tokens",
        summary: "Create an API token acting as an account (the caller's by default); its secret is in this answer only",
        member_allowed: false,
        query: &[],
        body: Body::Json("CreateToken"),
        success: (201, Some("NewToken")),
        errors: &[400, 404, 413, 415, 422],
    },
    Operation {
        method: "delete",
        path: "/tokens/{id}",
        id: "revokeToken",
        tag: "tokens",
        summary: "Revoke an API token",
        member_allowed: false,
        query: &[],
        body: Body::None,
        success: (204, None),
        errors: &[404],
    },
    Operation {
        method: "get",
        path: "/accounts",
        id: "listAccounts",
        tag: "accounts",
        summary: "The tenant's console accounts (sign-ins) with role, whether active, created and last sign-in; an account's role is what decides its access",
        member_allowed: false,
        query: &[],
        body: Body::None,
        success: (200, Some("AccountList")),
        errors: &[],
    },
    Operation {
        method: "post",
        path: "/accounts",
        id: "createAccount",
        tag: "accounts",
        summary: "Create a console account with the given password, or a generated one returned in this answer only",
        member_allowed: false,
        query: &[],
        body: Body::Json("CreateAccount"),
        success: (201, Some("NewAccount")),
        errors: &[400, 409, 413, 415, 422],
    },
    Operation {
        method: "patch",
        path: "/accounts/{id}",
        id: "updateAccount",
        tag: "accounts",
        summary: "Change an account's role (from its next request) or disable it (its sessions end and its API tokens are revoked at once) or enable it; the tenant's last active admin cannot be demoted or disabled (409 `last_admin`)",
        member_allowed: false,
        query: &[],
        body: Body::Json("UpdateAccount"),
        success: (200, Some("Account")),
        errors: &[400, 404, 409, 413, 415, 422],
    },
    Operation {
        method: "delete",
        path: "/accounts/{id}",
        id: "removeAccount",
        tag: "accounts",
        summary: "Remove an account: its sessions end and its API tokens are revoked and deleted; the audit trail is kept and the email may be used again. The tenant's last active admin cannot be removed (409 `last_admin`)",
        member_allowed: false,
        query: &[],
        body: Body::None,
        success: (204, None),
        errors: &[404, 409],
    },
    Operation {
        method: "post",
        path: "/accounts/{id}/password-reset",
        id: "resetAccountPassword",
        tag: "accounts",
        summary: "Give an account a new generated password, returned in this answer only; its sessions end",
        member_allowed: false,
        query: &[],
        body: Body::None,
        success: (200, Some("NewAccount")),
        errors: &[404],
    },
];

fn error_description(status: u16) -> &'static str {
    match status {
        400 => "Malformed request (`malformed_json`, `invalid_query`, `invalid_cursor`, …)",
        401 => "Missing, unknown or revoked API token (`unauthorized`)",
        403 => "A member's token on an admin operation (`forbidden`)",
        404 => "Not found in the token's tenant",
        409 => {
            "Conflicts with the tenant's state (`not_connected`, `address_taken`, `last_admin`, …)"
        }
        413 => "Body larger than the server's limit (`payload_too_large`)",
        415 => "Wrong Content-Type (`unsupported_media_type`)",
        422 => "Well-formed but invalid (`invalid_key_file` with `field`, `invalid_policy`, …)",
        429 => {
            "Too many failed authentications from this address (`too_many_attempts`): the token is not checked; `Retry-After` says when to try again"
        }
        502 => "Google refused or failed (`provider_error`)",
        _ => "Error",
    }
}

/// A query parameter's schema with the bounds the server holds it to.
fn query_schema(name: &str, kind: &str) -> Value {
    match (name, kind) {
        ("limit", _) => json!({ "type": "integer", "minimum": 1, "maximum": crate::api::MAX_PAGE }),
        ("status", _) => {
            let names: Vec<&str> = tributary_store::LinkStatus::ALL
                .iter()
                .map(|s| s.as_str())
                .collect();
            json!({ "type": "string", "enum": names })
        }
        ("since" | "until", _) => json!({ "type": "integer", "format": "int64" }),
        ("who", _) => json!({ "type": "string", "enum": ["people", "system", "all"] }),
        ("cursor", _) => json!({ "type": "string", "maxLength": MAX_CURSOR_LEN }),
        (_, "string") => json!({ "type": "string", "maxLength": ADDRESS_LEN }),
        (_, kind) => json!({ "type": kind }),
    }
}

/// Longest address or domain a request holds (`tributary_core::address::MAX_ADDRESS_LEN`).
const ADDRESS_LEN: usize = tributary_core::address::MAX_ADDRESS_LEN;

/// Longest cursor the server takes (`api::reads`).
const MAX_CURSOR_LEN: usize = crate::api::reads::MAX_CURSOR_LEN;

/// A string list the server bounds: at most `items` entries of at most `length` characters.
fn bounded_list(items: usize, length: usize) -> Value {
    json!({ "type": "array", "maxItems": items,
        "items": { "type": "string", "maxLength": length } })
}

/// An address typed by a person (checked by `EmailAddress::parse_mailbox`).
fn email() -> Value {
    json!({ "type": "string", "format": "email", "maxLength": ADDRESS_LEN })
}

fn operation(op: &Operation) -> Value {
    let mut parameters: Vec<Value> = op
        .query
        .iter()
        .map(|(name, kind, description)| {
            json!({ "name": name, "in": "query", "required": false,
                    "description": description, "schema": query_schema(name, kind) })
        })
        .collect();
    if op.path.contains("{id}") {
        parameters.push(json!({ "name": "id", "in": "path", "required": true,
                                "schema": { "type": "integer", "format": "int64" } }));
    }
    let mut responses = Map::new();
    let (status, schema) = op.success;
    let success = match schema {
        Some(name) => json!({ "description": "Success", "content": { "application/json": {
            "schema": { "$ref": format!("#/components/schemas/{name}") } } } }),
        None if op.id == "openapi" => json!({ "description": "This OpenAPI document",
            "content": { "application/json": { "schema": { "type": "object" } } } }),
        None => json!({ "description": "Done" }),
    };
    responses.insert(status.to_string(), success);
    let mut errors: Vec<u16> = op.errors.to_vec();
    if op.id != "openapi" {
        errors.push(401);
        errors.push(429);
        if !op.member_allowed || op.path.contains("{id}") {
            errors.push(403);
        }
        errors.push(500);
    }
    errors.sort_unstable();
    errors.dedup();
    // Answered by the HTTP layer before any handler, without a body.
    responses.insert(
        "414".to_owned(),
        json!({ "description": "The request line is longer than the server reads (about 64 KiB)" }),
    );
    for status in errors {
        responses.insert(
            status.to_string(),
            json!({ "$ref": format!("#/components/responses/E{status}") }),
        );
    }
    let mut value = json!({
        "operationId": op.id,
        "tags": [op.tag],
        "summary": op.summary,
        "parameters": parameters,
        "responses": responses,
    });
    if op.id == "openapi" {
        value["security"] = json!([]);
    }
    match op.body {
        Body::None => {}
        Body::Json(name) => {
            value["requestBody"] = json!({ "required": true, "content": { "application/json": {
                "schema": { "$ref": format!("#/components/schemas/{name}") } } } });
        }
        Body::Csv => {
            value["requestBody"] = json!({ "required": true, "content": { "text/csv": {
                "schema": { "type": "string" },
                "example": "email,aliases\nada@acme.test,ada.l@acme.test;al@acme.test\n" } } });
        }
    }
    value
}

/// The document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for op in OPERATIONS {
        let item = paths
            .entry(op.path.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        item[op.method] = operation(op);
    }
    let mut error_responses = Map::new();
    for status in [400u16, 401, 403, 404, 409, 413, 415, 422, 429, 500, 502] {
        let description = if status == 500 {
            "Server failure (`internal`); details are in the server log only"
        } else {
            error_description(status)
        };
        let mut response = json!({ "description": description, "content": { "application/json": {
                "schema": { "$ref": "#/components/schemas/Error" } } } });
        if status == 429 {
            response["headers"] = json!({ "Retry-After": { "description": "Seconds to wait",
                "schema": { "type": "integer", "minimum": 1 } } });
        }
        error_responses.insert(format!("E{status}"), response);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Tributary API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Manage a tenant's Google Workspace or Microsoft 365 capture and read what it captured. \
                Authenticate with `Authorization: Bearer <API token>`; a token acts with its \
                account's role (admin: everything; member: its own links and labels). \
                Errors are `{\"error\": {\"code\", \"message\", \"field\"?}}` with a stable code.",
        },
        "servers": [{ "url": "/api/v1" }],
        "security": [{ "bearer": [] }],
        "paths": paths,
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
            "responses": error_responses,
            "schemas": schemas(),
        },
    })
}

fn nullable(kind: &str) -> Value {
    json!({ "type": [kind, "null"] })
}

fn list_of(name: &str) -> Value {
    json!({ "type": "array", "items": { "$ref": format!("#/components/schemas/{name}") } })
}

fn page_of(field: &str, item: &str) -> Value {
    json!({ "type": "object", "required": [field, "next_cursor"], "properties": {
        field: list_of(item), "next_cursor": nullable("string") } })
}

fn schemas() -> Value {
    let string_list = json!({ "type": "array", "items": { "type": "string" } });
    let policy_list = bounded_list(
        tributary_core::settings::MAX_POLICY_LIST_ENTRIES,
        tributary_core::settings::MAX_POLICY_ENTRY_LEN,
    );
    let mut schemas = Map::new();
    schemas.insert(
        "Error".to_owned(),
        json!({ "type": "object", "required": ["error"], "properties": { "error": {
            "type": "object", "required": ["code", "message"], "properties": {
                "code": { "type": "string", "description": "stable snake_case code" },
                "message": { "type": "string" },
                "field": { "type": "string", "description": "the request field at fault" },
                "status": { "enum": ["authentication_error", "unauthorized", "linkage_error"],
                    "description": "with `provider_error` from a mailbox read: the link-status taxonomy of Google's refusal" },
                "provider_message": { "type": "string", "description": "with `status`: Google's own words" },
                "cause": { "type": "string", "description": "with `status`: the cause of Google's or Microsoft's refusal (`key_rejected`, `scope_not_delegated` …)" },
                "hint": { "type": "string", "description": "with `status`: what to do about that cause" } } } } }),
    );
    schemas.insert(
        "TenantSettings".to_owned(),
        json!({ "type": "object", "required": ["connect_new_users"], "additionalProperties": false, "properties": {
            "connect_new_users": { "type": "boolean", "description": "Rebuild starts the users it newly matches (default true); false: their links are created unlinked, to be started on the Users page or with POST /links/start" } } }),
    );
    schemas.insert("ConnectRequest".to_owned(), json!({ "type": "object", "required": ["key_file", "admin_email"], "additionalProperties": false, "properties": {
            "key_file": { "description": "the service-account key file: its JSON text or its JSON object", "type": ["string", "object"] },
            "admin_email": { "type": "string", "format": "email", "description": "the Workspace admin the directory is read as; on one of the organization's domains once they are known" },
            "replace_anyway": { "type": "boolean", "default": false, "description": "replace the stored key even when the new one fails the connection test (the stored key no longer works either)" } } }));
    schemas.insert(
        "GoogleSetup".to_owned(),
        json!({ "type": "object", "properties": {
            "client_id": { "type": "string" }, "client_email": { "type": "string" },
            "project_id": nullable("string"), "private_key_id": { "type": "string" },
            "admin_email": { "type": "string" }, "scopes": string_list,
            "scopes_csv": { "type": "string" }, "delegation_url": { "type": "string" },
            "capture_enabled": { "type": "boolean" } } }),
    );
    schemas.insert(
        "ConnectionCheck".to_owned(),
        json!({ "type": "object", "properties": {
            "ok": { "type": "boolean" },
            "status": { "enum": ["authentication_error", "unauthorized", "linkage_error", null] },
            "message": { "type": "string" },
            "hint": nullable("string"), "accounts_seen": nullable("integer") } }),
    );
    schemas.insert("MicrosoftConnectRequest".to_owned(), json!({ "type": "object", "required": ["tenant_id", "client_id"], "additionalProperties": false, "properties": {
            "tenant_id": { "type": "string", "maxLength": 253, "description": "the Directory (tenant) ID: a GUID, or the tenant's domain" },
            "client_id": { "type": "string", "description": "the Application (client) ID, a GUID" },
            "client_secret": { "type": "string", "maxLength": 1024, "description": "the client secret's Value (not its ID); or give certificate_pem" },
            "certificate_pem": { "type": "string", "description": "the certificate registered on the app, PEM" },
            "private_key_pem": { "type": "string", "description": "its RSA private key, PEM (PKCS #8 or #1); may be left out when certificate_pem holds it" } } }));
    schemas.insert("MicrosoftSetup".to_owned(), json!({ "type": "object", "required": ["tenant_id", "client_id", "credential", "permissions", "capture_enabled"], "properties": {
            "tenant_id": { "type": "string" }, "client_id": { "type": "string" },
            "credential": { "type": "object", "required": ["kind"], "properties": {
                "kind": { "enum": ["secret", "certificate"] },
                "ending": { "type": "string", "description": "a secret's last characters, to tell which one is stored" },
                "thumbprint_sha1": { "type": "string" } } },
            "permissions": { "type": "array", "description": "the Microsoft Graph application permissions to grant",
                "items": { "type": "object", "properties": { "name": { "type": "string" }, "purpose": { "type": "string" } } } },
            "consent": { "oneOf": [{ "type": "null" }, { "$ref": "#/components/schemas/ConsentRecord" }] },
            "connected_by": { "type": "string" },
            "capture_enabled": { "type": "boolean" } } }));
    schemas.insert("ConsentRecord".to_owned(), json!({ "type": "object", "required": ["granted", "at_ms", "by"], "properties": {
            "granted": { "type": "boolean" }, "at_ms": { "type": "integer" }, "by": { "type": "string" },
            "directory": nullable("string"), "error": nullable("string"),
            "error_description": nullable("string") } }));
    schemas.insert("ConsentLinkRequest".to_owned(), json!({ "type": "object", "required": ["redirect_uri", "state"], "additionalProperties": false, "properties": {
            "redirect_uri": { "type": "string", "maxLength": 2048, "description": "an http(s) URL registered on the app" },
            "state": { "type": "string", "maxLength": 512 } } }));
    schemas.insert(
        "ConsentLink".to_owned(),
        json!({ "type": "object", "required": ["consent_url"], "properties": {
            "consent_url": { "type": "string" } } }),
    );
    schemas.insert(
        "ConsentRequest".to_owned(),
        json!({ "type": "object", "additionalProperties": false, "properties": {
            "admin_consent": { "type": "string" }, "tenant": { "type": "string" },
            "error": { "type": "string" }, "error_description": { "type": "string" } } }),
    );
    schemas.insert("ConsentResult".to_owned(), json!({ "type": "object", "required": ["consent", "check"], "properties": {
            "consent": { "$ref": "#/components/schemas/ConsentRecord" },
            "check": { "oneOf": [{ "type": "null" }, { "$ref": "#/components/schemas/ConnectionCheck" }] } } }));
    schemas.insert(
        "Capture".to_owned(),
        json!({ "type": "object", "required": ["enabled"], "additionalProperties": false,
            "properties": { "enabled": { "type": "boolean" } } }),
    );
    schemas.insert("CaptureState".to_owned(), json!({ "type": "object", "required": ["enabled"], "properties": {
            "enabled": { "type": "boolean" },
            "notification": { "description": "set when this request turned capture on: how the notice to the tenant's admins went",
                "type": "object", "properties": {
                    "delivery": { "enum": ["sent", "not_configured", "no_recipients", "failed"] },
                    "recipients": { "type": "array", "items": { "type": "string" } },
                    "message": { "type": "string" } } } } }));
    schemas.insert("PolicySettings".to_owned(), json!({ "type": "object", "additionalProperties": false, "properties": {
            "sync_inbox": { "type": "boolean" }, "sync_sent": { "type": "boolean" },
            "backfill_days": { "type": "integer", "minimum": 1, "maximum": tributary_core::MAX_BACKFILL_DAYS },
            "exclude_internal": { "type": "boolean" }, "exclude_automated": { "type": "boolean" },
            "privacy": { "type": "string", "enum": ["metadata", "subject", "snippet"] },
            "blocklist": policy_list.clone(), "extra_free_mail_domains": policy_list.clone(),
            "removed_free_mail_domains": policy_list,
            "member_visibility": { "type": "string", "enum": ["own", "organization"], "default": "own",
                "description": "what members see: `own` the activities they took part in, the contacts and companies met there and their own relationships; `organization` also every contact, company, relationship and activity as metadata (no subject, no mailboxes)" },
            "meetings": { "type": "object", "additionalProperties": false, "description": "meeting capture from calendars", "properties": {
                "capture": { "type": "boolean", "default": true },
                "backfill_days": { "type": "integer", "minimum": 1, "maximum": tributary_core::MAX_BACKFILL_DAYS, "default": 180 },
                "horizon_days": { "type": "integer", "minimum": 0, "maximum": tributary_core::settings::MAX_MEETING_HORIZON_DAYS, "default": 30 },
                "large_meeting_attendees": { "type": "integer", "minimum": 1, "maximum": tributary_core::settings::MAX_LARGE_MEETING_ATTENDEES, "default": 25 },
                "calendar_sync": { "type": "string", "enum": ["everyone", "admins", "nobody"], "default": "everyone",
                    "description": "the \"Calendar sync\" permission, whose calendars are captured: every member's, only those of members the directory marks as administrators, or nobody's" } } } } }));
    schemas.insert(
        "DelegationReport".to_owned(),
        json!({ "type": "object", "properties": {
            "at_ms": { "type": "integer" }, "admin_email": { "type": "string" },
            "directory_accounts": { "type": "integer" }, "domains": string_list,
            "matched": { "type": "array", "items": { "type": "object" } },
            "unmatched": { "type": "array", "items": { "type": "object" } },
            "unlinked": { "type": "array", "items": { "type": "object" } } } }),
    );
    schemas.insert("DelegationResult".to_owned(), json!({ "type": "object", "required": ["last_result"], "properties": {
            "last_result": { "oneOf": [ { "$ref": "#/components/schemas/DelegationReport" }, { "type": "null" } ] } } }));
    schemas.insert("Disconnected".to_owned(), json!({ "type": "object", "required": ["provider", "unlinked"], "properties": {
            "provider": { "type": "string", "enum": ["google", "microsoft"] },
            "unlinked": { "type": "integer", "minimum": 0, "description": "links of the provider that were unlinked" } } }));
    schemas.insert(
        "Member".to_owned(),
        json!({ "type": "object", "properties": {
            "id": { "type": "integer" }, "email": { "type": "string" },
            "display_name": { "type": ["string", "null"], "description": "the directory's name for the member, else the latest one captured headers gave its address; null when none is known" },
            "aliases": string_list, "active": { "type": "boolean" } } }),
    );
    schemas.insert(
        "MemberList".to_owned(),
        json!({ "type": "object", "properties": { "members": list_of("Member") } }),
    );
    schemas.insert("CreateMember".to_owned(), json!({ "type": "object", "required": ["email"], "additionalProperties": false, "properties": {
            "email": email(),
            "aliases": { "type": "array", "maxItems": crate::api::members::MAX_ALIASES, "items": email() } } }));
    schemas.insert(
        "UpdateMember".to_owned(),
        json!({ "type": "object", "additionalProperties": false, "properties": {
            "active": { "type": "boolean" } } }),
    );
    schemas.insert("ImportResult".to_owned(), json!({ "type": "object", "properties": {
            "created": { "type": "integer" }, "updated": { "type": "integer" }, "unchanged": { "type": "integer" } } }));
    schemas.insert(
        "MemberLabels".to_owned(),
        json!({ "type": "object", "properties": {
            "member_id": { "type": "integer" }, "email": { "type": "string" },
            "labels": string_list, "policy_labels": string_list } }),
    );
    schemas.insert("LabelChoice".to_owned(), json!({ "type": "object", "required": ["id", "name", "type", "chosen", "in_mailbox"], "properties": {
            "id": { "type": "string", "description": "the Gmail label id: what `labels` of MemberLabels holds" },
            "name": { "type": "string", "description": "the mailbox's name for it (the id when the mailbox no longer has it)" },
            "type": { "enum": ["user", "system", null], "description": "null when the mailbox no longer has the label" },
            "chosen": { "type": "boolean" },
            "in_mailbox": { "type": "boolean", "description": "false for a chosen label the mailbox no longer has" } } }));
    schemas.insert(
        "MailboxLabels".to_owned(),
        json!({ "type": "object", "properties": {
            "member_id": { "type": "integer" }, "email": { "type": "string" },
            "labels": list_of("LabelChoice"), "policy_labels": string_list } }),
    );
    schemas.insert(
        "SetLabels".to_owned(),
        json!({ "type": "object", "required": ["labels"], "additionalProperties": false,
            "properties": { "labels": { "type": "array", "maxItems": MAX_MEMBER_LABELS,
                "description": "label ids or names of the member's mailbox; a new one the mailbox does not have is refused (422 `invalid_label`, naming the labels it has)",
                "items": { "type": "string", "minLength": 1, "maxLength": MAX_LABEL_LEN } } } }),
    );
    schemas.insert("LabelCounts".to_owned(), json!({ "type": "object", "properties": {
            "label": { "type": "string" }, "provider_total": nullable("integer"),
            "listed": { "type": "integer" }, "captured": { "type": "integer" },
            "excluded": { "type": "integer" }, "not_seen": { "type": "integer" },
            "gone": { "type": "integer" }, "unaccounted": { "type": "integer" }, "at_ms": { "type": "integer" } } }));
    schemas.insert("Link".to_owned(), json!({ "type": "object", "properties": {
            "id": { "type": "integer" }, "member": { "type": "string" }, "mailbox": { "type": "string" },
            "status": { "enum": ["pending", "syncing", "idle", "authentication_error", "unauthorized", "linkage_error", "unlinked"] },
            "provider_message": nullable("string"),
            "cause": { "type": ["string", "null"], "description": "the distinct cause of the failure (`key_rejected`, `scope_not_delegated`, `user_suspended` …), from the provider's cause code; null when the link is not in an error status" },
            "fix_hint": { "type": ["string", "null"], "description": "what the caller can do about the cause: an admin's fix for an admin token, a member's part for a member token" },
            "last_success_ms": { "type": ["integer", "null"], "description": "when the latest successful run ended (the mailbox was last checked)" },
            "last_summary": { "description": "what the last successful run that changed something did (fetched, added or removed a message): a later run that found nothing leaves it and moves only last_success_ms" }, "next_attempt_ms": nullable("integer"),
            "attempts": { "type": "integer" },
            "push": { "$ref": "#/components/schemas/LinkPush" },
            "counts": { "type": "object", "properties": {
                "listed": { "type": "integer" }, "captured": { "type": "integer" }, "labels": list_of("LabelCounts") } } } }));
    schemas.insert("LinkPush".to_owned(), json!({ "type": "object", "required": ["mode", "reason", "channels"],
            "description": "whether the provider pushes the mailbox's changes (docs/push.md): `push`, its channels open and renewed after each sync, synced when notified and by a slow safety poll (--push-poll-seconds); or `polling`, synced every --poll-seconds, with the reason (push not configured on the server, not yet opened, unlinked, or the provider's own words when it refused a channel)",
            "properties": {
            "mode": { "enum": ["push", "polling"] },
            "reason": { "type": ["string", "null"], "description": "why the mailbox is polled; null on push" },
            "channels": { "type": "array", "description": "the open channels (a Gmail watch, a Calendar channel, a Graph subscription), one per stream; their secrets are never shown", "items": { "type": "object", "properties": {
                "stream": { "enum": ["mail", "calendar"] },
                "expires_at": { "type": ["string", "null"], "format": "date-time", "description": "when it lapses unless renewed (renewed a day before, or half way through a shorter life); null when the provider asked for it to be renewed at the next sync" } } } } } }));
    schemas.insert("LinkDetail".to_owned(), json!({ "allOf": [{ "$ref": "#/components/schemas/Link" }, { "type": "object", "properties": {
            "progress": { "type": "object", "properties": {
                "captured": { "type": "integer", "description": "the link's copies of messages the store holds" },
                "state": { "enum": ["running", "worker_stopped", "waiting", "not_running"], "description": "`worker_stopped`: the worker holding the job stopped renewing its heartbeat; the job is taken over when its lease expires (`worker.taken_over_after_ms`). `waiting`: `syncing`, but no live lease (about to be taken over)" },
                "started_ms": { "type": ["integer", "null"], "description": "when the run in progress began" },
                "backfill": { "type": ["object", "null"], "description": "the last backfill's counts so far; null before any", "properties": {
                    "listed": { "type": "integer" }, "captured": { "type": "integer" },
                    "provider_total": { "type": ["integer", "null"], "description": "what the provider counts in the link's containers, when it says" },
                    "done": { "type": "boolean" }, "updated_ms": { "type": "integer" },
                    "estimated_seconds_left": { "type": ["integer", "null"], "description": "the messages not yet listed at the per-user budget the engine paces at (the quota's floor); null when done or unknown" } } },
                "worker": { "type": ["object", "null"], "description": "the worker holding the link's job, if any", "properties": {
                    "id": { "type": "string" }, "lease_expires_ms": { "type": "integer" }, "stopped": { "type": "boolean" },
                    "last_heartbeat_ms": { "type": ["integer", "null"], "description": "set when the worker stopped" },
                    "taken_over_after_ms": { "type": ["integer", "null"] } } } } },
            "runs": { "type": "array", "description": "the latest runs (at most 20, within 7 days), newest first", "items": { "type": "object", "properties": {
                "started_ms": { "type": "integer" }, "ended_ms": { "type": ["integer", "null"] },
                "status": { "type": "string", "description": "the status the run ended in; `syncing` while it runs" },
                "provider_message": { "type": ["string", "null"] } } } } } }] }));
    schemas.insert("OrgProgress".to_owned(), json!({ "type": "object", "required": ["mailboxes", "messages", "estimated_seconds_left", "estimated_mailboxes", "budget"], "properties": {
            "mailboxes": { "type": "object", "description": "linked mailboxes (unlinked ones left out)", "properties": {
                "total": { "type": "integer" },
                "backfilled": { "type": "integer", "description": "backfill done (a later failure is on the link, not here)" },
                "backfilling": { "type": "integer" },
                "not_started": { "type": "integer", "description": "no backfill page committed yet" },
                "error": { "type": "integer", "description": "backfill unfinished and the link in an error status" },
                "worker_stopped": { "type": "integer", "description": "held by a worker that stopped; taken over when its lease expires" } } },
            "messages": { "type": "object", "description": "summed over every backfill begun", "properties": {
                "listed": { "type": "integer" }, "captured": { "type": "integer" },
                "provider_total": { "type": ["integer", "null"], "description": "the provider's counts of the synced containers (Gmail: all time); null when one is unknown" },
                "expected_total": { "type": ["integer", "null"], "description": "what the backfills will have listed: a done one what it listed, an unfinished one the provider's count; null when one is unknown" } } },
            "estimated_seconds_left": { "type": ["integer", "null"], "description": "the time left at the quota for the backfilling mailboxes whose total is known; null when none" },
            "estimated_mailboxes": { "type": "integer", "description": "the backfilling mailboxes the estimate covers" },
            "budget": { "type": "object", "description": "the budgets the engine paces at", "properties": {
                "user_units_per_minute": { "type": "integer" }, "project_units_per_minute": { "type": "integer" } } } } }));
    schemas.insert(
        "LinkList".to_owned(),
        json!({ "type": "object", "properties": { "links": list_of("Link") } }),
    );
    schemas.insert("LinkIds".to_owned(), json!({ "type": "object", "required": ["links"], "additionalProperties": false, "properties": {
            "links": { "type": "array", "minItems": 1, "maxItems": MAX_LINKS_PER_ACTION,
                "description": "link ids; one named twice is acted on and counted once; a longer list is a 400 `too_many_links`",
                "items": { "type": "integer", "format": "int64" } } } }));
    schemas.insert(
        "LinkActionResult".to_owned(),
        json!({ "type": "object", "properties": {
            "requested": { "type": "integer" }, "changed": { "type": "integer" } } }),
    );
    schemas.insert("Activity".to_owned(), json!({ "type": "object", "properties": {
            "id": { "type": "integer" }, "dedupe_key": { "type": "string" }, "thread_key": nullable("string"),
            "time_ms": nullable("integer"), "direction": { "enum": ["inbound", "outbound", "internal"] },
            "subject": nullable("string"),
            "participants": { "type": "array", "items": { "type": "object", "properties": {
                "address": { "type": "string" },
                "display_name": { "type": ["string", "null"], "description": "the name to show: the directory's name of the member the address resolves to, else the most recent non-empty name captured headers gave the address" },
                "role": { "type": "string" }, "kind": { "type": "string" },
                "member": { "type": ["string", "null"], "description": "the primary address of the member this address resolves to (primary or alias)" } } } },
            "sightings": { "type": "array", "items": { "type": "object", "properties": {
                "mailbox": { "type": "string" }, "provider": { "type": ["string", "null"], "enum": ["google", "microsoft", "imap", null] },
                "provider_message_id": { "type": "string" }, "labels": string_list } } },
            "captured_by": { "type": "array", "description": "the mailboxes holding a copy, with the provider each was captured from",
                "items": { "type": "object", "properties": {
                    "mailbox": { "type": "string" }, "provider": { "enum": ["google", "microsoft", "imap"] } } } },
            "withheld": { "type": "boolean", "description": "true when the caller (a member under `member_visibility: organization`) did not take part: subject, sightings and captured_by are left out" } } }));
    schemas.insert(
        "ActivityPage".to_owned(),
        json!(page_of("activities", "Activity")),
    );
    schemas.insert("Contact".to_owned(), json!({ "type": "object", "properties": { "address": { "type": "string" },
            "display_name": { "type": ["string", "null"], "description": "the most recent non-empty name captured headers gave the address" },
            "company": nullable("string") } }));
    schemas.insert(
        "ContactPage".to_owned(),
        json!(page_of("contacts", "Contact")),
    );
    schemas.insert("Company".to_owned(), json!({ "type": "object", "properties": { "domain": { "type": "string" },
            "display_name": { "type": ["string", "null"], "description": "derived from the domain: its label before the public suffix, capitalized (`acme.co.uk` → `Acme`)" },
            "contacts": { "type": "integer" } } }));
    schemas.insert(
        "CompanyPage".to_owned(),
        json!(page_of("companies", "Company")),
    );
    schemas.insert("Relationship".to_owned(), json!({ "type": "object", "properties": {
            "member": { "type": "string" }, "member_display_name": nullable("string"),
            "contact": { "type": "string" }, "contact_display_name": nullable("string"),
            "first_ms": { "type": "integer" }, "last_ms": { "type": "integer" },
            "sent": { "type": "integer" }, "received": { "type": "integer" }, "total": { "type": "integer" },
            "meetings": { "type": "integer", "description": "captured meetings both attended (large meetings and declined invitations excluded); not part of `total`, which counts mail" },
            "score_at_last": { "type": "number", "description": "the decayed score of mail and meetings together as of `last_ms` (the later contact point of either)" } } }));
    let participant = json!({ "type": "object", "properties": {
        "address": { "type": "string" }, "display_name": nullable("string"),
        "organizer": { "type": "boolean" },
        "response": { "enum": ["accepted", "tentative", "declined", "needs_action"] },
        "kind": { "enum": ["member", "internal", "external"] },
        "took_part": { "type": "boolean", "description": "a member who organized or did not decline" } } });
    schemas.insert("Meeting".to_owned(), json!({ "type": "object", "properties": {
            "key": { "type": "string", "description": "the meeting's identity across calendars and providers: `ical:` + original start (Unix ms) + `:` + iCalUID" },
            "start_ms": { "type": "integer" }, "end_ms": { "type": "integer" }, "all_day": { "type": "boolean" },
            "direction": { "enum": ["inbound", "outbound", "internal"] },
            "title": { "type": ["string", "null"], "description": "null for a private event and under privacy mode `metadata`" },
            "private": { "type": "boolean" },
            "large": { "type": "boolean", "description": "more participants than the policy's `large_meeting_attendees`: counts for the company, not for relationships" },
            "participants": { "type": "array", "items": participant },
            "calendars": { "type": "array", "description": "the mailboxes whose calendars list it", "items": { "type": "string" } } } }));
    schemas.insert(
        "MeetingPage".to_owned(),
        json!(page_of("meetings", "Meeting")),
    );
    schemas.insert(
        "RelationshipPage".to_owned(),
        json!(page_of("relationships", "Relationship")),
    );
    schemas.insert("AuditEvent".to_owned(), json!({ "type": "object", "properties": {
            "id": { "type": "integer" }, "at_ms": { "type": "integer" }, "actor": { "type": "string" },
            "action": { "type": "string" }, "subject": nullable("string"),
            "text": { "type": "string", "description": "the event as a sentence" }, "detail": {} } }));
    schemas.insert(
        "AuditLog".to_owned(),
        json!(page_of("events", "AuditEvent")),
    );
    schemas.insert(
        "Token".to_owned(),
        json!({ "type": "object", "properties": {
            "id": { "type": "integer" }, "name": { "type": "string" }, "user": { "type": "string" },
            "prefix": { "type": "string" }, "created_ms": { "type": "integer" },
            "last_used_ms": nullable("integer"), "revoked_ms": nullable("integer") } }),
    );
    schemas.insert(
        "TokenList".to_owned(),
        json!({ "type": "object", "properties": { "tokens": list_of("Token") } }),
    );
    schemas.insert("CreateToken".to_owned(), json!({ "type": "object", "required": ["name"], "additionalProperties": false, "properties": {
            "name": { "type": "string", "minLength": 1, "maxLength": crate::api::tokens::MAX_TOKEN_NAME_LEN },
            "user": { "type": ["string", "null"], "format": "email", "maxLength": ADDRESS_LEN, "description": "the account's email; the caller's when absent or null" } } }));
    schemas.insert("NewToken".to_owned(), json!({ "allOf": [ { "$ref": "#/components/schemas/Token" }, { "type": "object", "properties": {
            "role": { "enum": ["admin", "member"] },
            "secret": { "type": "string", "description": "shown here once; store it now" } } } ] }));
    let role = json!({ "enum": ["admin", "member"], "description": "what the account may do: an admin manages the tenant, a member sees its own mailbox settings" });
    schemas.insert(
        "Account".to_owned(),
        json!({ "type": "object", "required": ["id", "email", "role", "active", "created_ms"], "properties": {
            "id": { "type": "integer" }, "email": { "type": "string", "format": "email" },
            "role": role, "active": { "type": "boolean", "description": "false once disabled: it cannot sign in" },
            "created_ms": { "type": "integer" }, "last_signin_ms": nullable("integer") } }),
    );
    schemas.insert(
        "AccountList".to_owned(),
        json!({ "type": "object", "properties": { "accounts": list_of("Account") } }),
    );
    schemas.insert("CreateAccount".to_owned(), json!({ "type": "object", "required": ["email"], "additionalProperties": false, "properties": {
            "email": { "type": "string", "format": "email", "maxLength": crate::api::accounts::MAX_EMAIL_CHARS },
            "role": { "enum": ["admin", "member"], "default": "member" },
            "password": { "type": "string", "minLength": crate::auth::MIN_PASSWORD_CHARS, "maxLength": crate::api::accounts::MAX_PASSWORD_CHARS,
                "description": "refused with 422 `weak_password` when easy to guess; absent: a generated one is returned once" } } }));
    schemas.insert(
        "UpdateAccount".to_owned(),
        json!({ "type": "object", "additionalProperties": false, "properties": {
            "role": { "enum": ["admin", "member"] }, "active": { "type": "boolean" } } }),
    );
    schemas.insert("NewAccount".to_owned(), json!({ "allOf": [ { "$ref": "#/components/schemas/Account" }, { "type": "object", "properties": {
            "password": { "type": "string", "description": "a generated password, shown here once; absent when the request gave one" } } } ] }));
    Value::Object(schemas)
}

pub async fn serve() -> Json<Value> {
    Json(document())
}
