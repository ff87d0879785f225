//! The OpenAPI 3.1 document of `/api/v1`, written by hand from [`OPERATIONS`]. A test
//! checks that its paths are exactly the router's (`api::routes`).

use axum::Json;
use serde_json::{Map, Value, json};

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
        summary: "Upload the service-account key file and the Workspace admin address; a bad file is refused with 422 naming the field, and nothing is stored",
        member_allowed: false,
        query: &[],
        body: Body::Json("ConnectRequest"),
        success: (200, Some("GoogleSetup")),
        errors: &[400, 413, 415, 422],
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
        summary: "Every member with aliases, role and whether active",
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
        summary: "Add a member",
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
        summary: "Change a member's role or active flag",
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
        summary: "Import members from CSV with the header `email,role,aliases` (aliases separated by `;` or spaces); one bad row changes nothing",
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
        summary: "Unlink links (captured mail stays)",
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
        summary: "Captured activities, newest first, cursor-paged",
        member_allowed: false,
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
        summary: "Contacts by address (byte order), cursor-paged",
        member_allowed: false,
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
        summary: "Companies by domain (byte order) with their number of contacts, cursor-paged",
        member_allowed: false,
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
        summary: "Member–contact relationships with counts and score, by member then contact (byte order), cursor-paged",
        member_allowed: false,
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
        path: "/audit",
        id: "listAudit",
        tag: "audit",
        summary: "The latest audit events, newest first",
        member_allowed: false,
        query: &[("limit", "integer", "how many (default 100, at most 1000)")],
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
];

fn error_description(status: u16) -> &'static str {
    match status {
        400 => "Malformed request (`malformed_json`, `invalid_query`, `invalid_cursor`, …)",
        401 => "Missing, unknown or revoked API token (`unauthorized`)",
        403 => "A member's token on an admin operation (`forbidden`)",
        404 => "Not found in the token's tenant",
        409 => "Conflicts with the tenant's state (`not_connected`, `address_taken`, …)",
        413 => "Body larger than the server's limit (`payload_too_large`)",
        415 => "Wrong Content-Type (`unsupported_media_type`)",
        422 => "Well-formed but invalid (`invalid_key_file` with `field`, `invalid_policy`, …)",
        502 => "Google refused or failed (`provider_error`)",
        _ => "Error",
    }
}

fn operation(op: &Operation) -> Value {
    let mut parameters: Vec<Value> = op
        .query
        .iter()
        .map(|(name, kind, description)| {
            json!({ "name": name, "in": "query", "required": false,
                    "description": description, "schema": { "type": kind } })
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
        if !op.member_allowed || op.path.contains("{id}") {
            errors.push(403);
        }
        errors.push(500);
    }
    errors.sort_unstable();
    errors.dedup();
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
                "example": "email,role,aliases\nada@acme.test,admin,ada.l@acme.test;al@acme.test\n" } } });
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
    for status in [400u16, 401, 403, 404, 409, 413, 415, 422, 500, 502] {
        let description = if status == 500 {
            "Server failure (`internal`); details are in the server log only"
        } else {
            error_description(status)
        };
        error_responses.insert(
            format!("E{status}"),
            json!({ "description": description, "content": { "application/json": {
                "schema": { "$ref": "#/components/schemas/Error" } } } }),
        );
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Tributary API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Manage a tenant's Google Workspace capture and read what it captured. \
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
                "hint": { "type": "string", "description": "with `status`: what to do about it" } } } } }),
    );
    schemas.insert("ConnectRequest".to_owned(), json!({ "type": "object", "required": ["key_file", "admin_email"], "additionalProperties": false, "properties": {
            "key_file": { "description": "the service-account key file: its JSON text or its JSON object", "type": ["string", "object"] },
            "admin_email": { "type": "string", "format": "email", "description": "the Workspace admin the directory is read as" } } }));
    schemas.insert(
        "GoogleSetup".to_owned(),
        json!({ "type": "object", "properties": {
            "client_id": { "type": "string" }, "client_email": { "type": "string" },
            "project_id": nullable("string"), "private_key_id": { "type": "string" },
            "admin_email": { "type": "string" }, "scopes": string_list,
            "scopes_csv": { "type": "string" }, "delegation_url": { "type": "string" },
            "capture_enabled": { "type": "boolean" } } }),
    );
    schemas.insert("ConnectionCheck".to_owned(), json!({ "type": "object", "properties": {
            "ok": { "type": "boolean" }, "status": nullable("string"), "message": { "type": "string" },
            "hint": nullable("string"), "accounts_seen": nullable("integer") } }));
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
            "privacy": { "type": "string" }, "blocklist": string_list,
            "extra_free_mail_domains": string_list, "removed_free_mail_domains": string_list } }));
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
    schemas.insert(
        "Member".to_owned(),
        json!({ "type": "object", "properties": {
            "id": { "type": "integer" }, "email": { "type": "string" }, "aliases": string_list,
            "role": { "enum": ["admin", "member"] }, "active": { "type": "boolean" } } }),
    );
    schemas.insert(
        "MemberList".to_owned(),
        json!({ "type": "object", "properties": { "members": list_of("Member") } }),
    );
    schemas.insert("CreateMember".to_owned(), json!({ "type": "object", "required": ["email"], "additionalProperties": false, "properties": {
            "email": { "type": "string" }, "aliases": string_list, "role": { "enum": ["admin", "member"] } } }));
    schemas.insert(
        "UpdateMember".to_owned(),
        json!({ "type": "object", "additionalProperties": false, "properties": {
            "role": { "enum": ["admin", "member"] }, "active": { "type": "boolean" } } }),
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
            "properties": { "labels": string_list } }),
    );
    schemas.insert("LabelCounts".to_owned(), json!({ "type": "object", "properties": {
            "label": { "type": "string" }, "provider_total": nullable("integer"),
            "listed": { "type": "integer" }, "captured": { "type": "integer" },
            "excluded": { "type": "integer" }, "not_seen": { "type": "integer" },
            "gone": { "type": "integer" }, "unaccounted": { "type": "integer" }, "at_ms": { "type": "integer" } } }));
    schemas.insert("Link".to_owned(), json!({ "type": "object", "properties": {
            "id": { "type": "integer" }, "member": { "type": "string" }, "mailbox": { "type": "string" },
            "status": { "enum": ["pending", "syncing", "idle", "authentication_error", "unauthorized", "linkage_error", "unlinked"] },
            "provider_message": nullable("string"), "fix_hint": nullable("string"),
            "last_success_ms": nullable("integer"), "last_summary": {}, "next_attempt_ms": nullable("integer"),
            "attempts": { "type": "integer" },
            "counts": { "type": "object", "properties": {
                "listed": { "type": "integer" }, "captured": { "type": "integer" }, "labels": list_of("LabelCounts") } } } }));
    schemas.insert(
        "LinkList".to_owned(),
        json!({ "type": "object", "properties": { "links": list_of("Link") } }),
    );
    schemas.insert("LinkIds".to_owned(), json!({ "type": "object", "required": ["links"], "additionalProperties": false, "properties": {
            "links": { "type": "array", "minItems": 1, "items": { "type": "integer" } } } }));
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
                "address": { "type": "string" }, "role": { "type": "string" }, "kind": { "type": "string" } } } },
            "sightings": { "type": "array", "items": { "type": "object", "properties": {
                "mailbox": { "type": "string" }, "provider_message_id": { "type": "string" }, "labels": string_list } } } } }));
    schemas.insert(
        "ActivityPage".to_owned(),
        json!(page_of("activities", "Activity")),
    );
    schemas.insert("Contact".to_owned(), json!({ "type": "object", "properties": { "address": { "type": "string" }, "company": nullable("string") } }));
    schemas.insert(
        "ContactPage".to_owned(),
        json!(page_of("contacts", "Contact")),
    );
    schemas.insert("Company".to_owned(), json!({ "type": "object", "properties": { "domain": { "type": "string" }, "contacts": { "type": "integer" } } }));
    schemas.insert(
        "CompanyPage".to_owned(),
        json!(page_of("companies", "Company")),
    );
    schemas.insert("Relationship".to_owned(), json!({ "type": "object", "properties": {
            "member": { "type": "string" }, "contact": { "type": "string" },
            "first_ms": { "type": "integer" }, "last_ms": { "type": "integer" },
            "sent": { "type": "integer" }, "received": { "type": "integer" }, "total": { "type": "integer" },
            "score_at_last": { "type": "number" } } }));
    schemas.insert(
        "RelationshipPage".to_owned(),
        json!(page_of("relationships", "Relationship")),
    );
    schemas.insert("AuditEvent".to_owned(), json!({ "type": "object", "properties": {
            "at_ms": { "type": "integer" }, "actor": { "type": "string" }, "action": { "type": "string" },
            "subject": nullable("string"), "detail": {} } }));
    schemas.insert(
        "AuditLog".to_owned(),
        json!({ "type": "object", "properties": { "events": list_of("AuditEvent") } }),
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
            "name": { "type": "string" }, "user": { "type": "string", "description": "the account's email; the caller's by default" } } }));
    schemas.insert("NewToken".to_owned(), json!({ "allOf": [ { "$ref": "#/components/schemas/Token" }, { "type": "object", "properties": {
            "role": { "enum": ["admin", "member"] },
            "secret": { "type": "string", "description": "shown here once; store it now" } } } ] }));
    Value::Object(schemas)
}

pub async fn serve() -> Json<Value> {
    Json(document())
}
