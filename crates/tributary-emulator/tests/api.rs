//! The emulator over real loopback HTTP: token endpoint, Directory, Gmail, batch,
//! quotas and faults, as Google's clients see them.

mod common;

use base64::Engine;
use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::Duration;
use tributary_emulator::server::auth::{TRIBUTARY_SCOPES, scopes};
use tributary_emulator::server::faults::FaultConfig;
use tributary_emulator::server::quota::QuotaConfig;

const SHORT_LIVED: &str = "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.";
const UNAUTHORIZED_CLIENT: &str = "Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested.";

fn assert_token_error(status: StatusCode, body: &Value, code: u16, error: &str, description: &str) {
    assert_eq!(status.as_u16(), code, "{body}");
    assert_eq!(body["error"], error, "{body}");
    assert_eq!(body["error_description"], description, "{body}");
    assert_eq!(body.as_object().unwrap().len(), 2, "flat body: {body}");
}

// ---------------------------------------------------------------------------------------
// Token endpoint

#[tokio::test]
async fn token_grant_answers_an_integer_lifetime_and_a_bearer_token() {
    let emu = emulator().await;
    let (status, body) = emu
        .token_response(&emu.assertion(&emu.claims(BOB, scopes::GMAIL_READONLY)))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["expires_in"], json!(3599));
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["access_token"].as_str().unwrap().starts_with("ya29."));
}

#[tokio::test]
async fn token_grant_accepts_own_audience_no_kid_padding_and_all_delegated_scopes() {
    let emu = emulator().await;
    let mut claims = emu.claims(ADMIN, &TRIBUTARY_SCOPES.join(" "));
    claims["aud"] = json!(emu.running.key_file.token_uri);
    // No kid (as yup-oauth2 sends) and a padding encoder in the standard alphabet.
    let header = json!({"alg": "RS256", "typ": "JWT"});
    let encode = |v: &Value| {
        base64::engine::general_purpose::STANDARD.encode(serde_json::to_vec(v).unwrap())
    };
    let padded = sign_segments(&emu.key, &encode(&header), &encode(&claims));
    let (status, body) = emu.token_response(&urlencode(&padded)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn token_grant_accepts_a_json_body() {
    let emu = emulator().await;
    let response = emu
        .http
        .post(&emu.running.key_file.token_uri)
        .json(&json!({
            "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
            "assertion": emu.assertion(&emu.claims(BOB, scopes::GMAIL_READONLY)),
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn unknown_issuer_has_no_verifier() {
    let emu = emulator().await;
    let mut claims = emu.claims(BOB, scopes::GMAIL_READONLY);
    claims["iss"] = json!("someone@else.iam.gserviceaccount.com");
    let (status, body) = emu.token_response(&emu.assertion(&claims)).await;
    assert_token_error(
        status,
        &body,
        400,
        "invalid_grant",
        "Invalid JWT: No valid verifier found for issuer.",
    );
}

#[tokio::test]
async fn deleted_key_fails_the_signature_check() {
    let emu = emulator().await;
    let kid = emu.running.key_file.private_key_id.clone();
    emu.running
        .state
        .auth
        .delete_key(emu.client_email(), &kid)
        .unwrap();
    let (status, body) = emu
        .token_response(&emu.assertion(&emu.claims(BOB, scopes::GMAIL_READONLY)))
        .await;
    assert_token_error(
        status,
        &body,
        400,
        "invalid_grant",
        "Invalid JWT Signature.",
    );
}

#[tokio::test]
async fn tampered_claims_fail_the_signature_check() {
    let emu = emulator().await;
    let jwt = emu.assertion(&emu.claims(BOB, scopes::GMAIL_READONLY));
    let mut parts: Vec<String> = jwt.split('.').map(str::to_string).collect();
    let forged = emu.claims(ADMIN, scopes::GMAIL_READONLY);
    parts[1] = base64_url(&serde_json::to_vec(&forged).unwrap());
    let (status, body) = emu.token_response(&parts.join(".")).await;
    assert_token_error(
        status,
        &body,
        400,
        "invalid_grant",
        "Invalid JWT Signature.",
    );
}

/// Percent-encodes a form value (standard base64 carries `+`, `/` and `=`).
fn urlencode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn base64_url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[tokio::test]
async fn lifetimes_too_long_expired_inverted_or_future_are_refused() {
    let emu = emulator().await;
    let now = unix_now();
    for (iat, exp) in [
        (now, now + 2 * 3600),
        (now - 7200, now - 3600),
        (now, now - 10),
        (now + 3600, now + 7000),
    ] {
        let mut claims = emu.claims(BOB, scopes::GMAIL_READONLY);
        claims["iat"] = json!(iat);
        claims["exp"] = json!(exp);
        let (status, body) = emu.token_response(&emu.assertion(&claims)).await;
        assert_token_error(status, &body, 400, "invalid_grant", SHORT_LIVED);
    }
}

#[tokio::test]
async fn wrong_audience_fails_the_audience_check() {
    let emu = emulator().await;
    let mut claims = emu.claims(BOB, scopes::GMAIL_READONLY);
    claims["aud"] = json!("https://example.com/token");
    let (status, body) = emu.token_response(&emu.assertion(&claims)).await;
    assert_token_error(
        status,
        &body,
        400,
        "invalid_grant",
        "Invalid JWT: Failed audience check.",
    );
}

#[tokio::test]
async fn unknown_suspended_and_alias_subjects_are_invalid_users() {
    let emu = emulator().await;
    for subject in ["nobody@acme.example", SUSPENDED, BOB_ALIAS] {
        let (status, body) = emu
            .token_response(&emu.assertion(&emu.claims(subject, scopes::GMAIL_READONLY)))
            .await;
        assert_token_error(
            status,
            &body,
            400,
            "invalid_grant",
            "Invalid email or User ID",
        );
    }
}

#[tokio::test]
async fn deleted_subject_is_reported_deleted() {
    let emu = emulator().await;
    let (status, body) = emu
        .token_response(&emu.assertion(&emu.claims(DELETED, scopes::GMAIL_READONLY)))
        .await;
    assert_token_error(
        status,
        &body,
        400,
        "invalid_grant",
        "The account has been deleted",
    );
}

#[tokio::test]
async fn scope_not_delegated_is_an_unauthorized_client() {
    let emu = emulator().await;
    let scope = format!("{} {}", scopes::GMAIL_READONLY, scopes::MAIL);
    let (status, body) = emu
        .token_response(&emu.assertion(&emu.claims(BOB, &scope)))
        .await;
    assert_token_error(
        status,
        &body,
        401,
        "unauthorized_client",
        UNAUTHORIZED_CLIENT,
    );
}

#[tokio::test]
async fn no_delegation_is_an_unauthorized_client() {
    let emu = emulator_with(tributary_emulator::server::EmulatorConfig {
        delegation: false,
        ..config()
    })
    .await;
    assert!(emu.running.info.delegated_scopes.is_empty());
    let (status, body) = emu
        .token_response(&emu.assertion(&emu.claims(BOB, scopes::GMAIL_READONLY)))
        .await;
    assert_token_error(
        status,
        &body,
        401,
        "unauthorized_client",
        UNAUTHORIZED_CLIENT,
    );
}

#[tokio::test]
async fn empty_or_unknown_scopes_are_invalid() {
    let emu = emulator().await;
    for scope in ["", "gmail.readonly", "https://example.com/auth/mail"] {
        let (status, body) = emu
            .token_response(&emu.assertion(&emu.claims(BOB, scope)))
            .await;
        assert_token_error(
            status,
            &body,
            400,
            "invalid_scope",
            "Invalid OAuth scope or ID token audience provided.",
        );
    }
}

#[tokio::test]
async fn restricted_api_access_is_admin_policy_enforced() {
    let emu = emulator().await;
    emu.running
        .state
        .auth
        .set_api_access_restricted(emu.client_id(), true);
    let (status, body) = emu
        .token_response(&emu.assertion(&emu.claims(BOB, scopes::GMAIL_READONLY)))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "admin_policy_enforced");
    assert!(
        body["error_description"]
            .as_str()
            .is_some_and(|d| !d.is_empty())
    );
}

#[tokio::test]
async fn disabled_service_account_is_a_disabled_robot() {
    let emu = emulator().await;
    emu.running
        .state
        .auth
        .set_disabled(emu.client_email(), true)
        .unwrap();
    let (status, body) = emu
        .token_response(&emu.assertion(&emu.claims(BOB, scopes::GMAIL_READONLY)))
        .await;
    assert_token_error(status, &body, 400, "invalid_grant", "Robot is disabled.");
}

#[tokio::test]
async fn other_grant_types_are_unsupported() {
    let emu = emulator().await;
    let response = emu
        .http
        .post(&emu.running.key_file.token_uri)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_token_error(
        status,
        &body,
        400,
        "unsupported_grant_type",
        "Invalid grant_type: client_credentials",
    );
}

#[tokio::test]
async fn malformed_token_requests_are_refused() {
    let emu = emulator().await;
    let cases = [
        (
            "",
            400,
            "invalid_request",
            "Required parameter is missing: grant_type",
        ),
        (
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer",
            400,
            "invalid_request",
            "Missing required parameter: assertion",
        ),
        (
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=not.a-jwt",
            400,
            "invalid_grant",
            "Invalid JWT: Bad Request",
        ),
    ];
    for (body, code, error, description) in cases {
        let response = emu
            .http
            .post(&emu.running.key_file.token_uri)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let answer: Value = response.json().await.unwrap();
        assert_token_error(status, &answer, code, error, description);
    }
}

#[tokio::test]
async fn a_key_added_at_run_time_signs_valid_assertions() {
    let emu = emulator().await;
    let key_file = emu
        .running
        .state
        .auth
        .create_key(emu.client_email())
        .unwrap();
    let key =
        <rsa::RsaPrivateKey as rsa::pkcs8::DecodePrivateKey>::from_pkcs8_pem(&key_file.private_key)
            .unwrap();
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": key_file.private_key_id});
    let jwt = sign_jwt(&key, &header, &emu.claims(BOB, scopes::GMAIL_READONLY));
    let (status, body) = emu.token_response(&jwt).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

// ---------------------------------------------------------------------------------------
// Bearer tokens and scopes on API calls

#[tokio::test]
async fn missing_or_unknown_tokens_are_unauthenticated() {
    let emu = emulator().await;
    let response = emu
        .http
        .get(emu.url("/gmail/v1/users/me/profile"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let (status, body) = emu
        .get("/gmail/v1/users/me/profile", "ya29.not-a-token")
        .await;
    assert_api_error(status, &body, 401, "authError", Some("Invalid Credentials"));
    assert_eq!(body["error"]["status"], "UNAUTHENTICATED");
}

#[tokio::test]
async fn tokens_expire_after_their_lifetime() {
    let emu = emulator_with(tributary_emulator::server::EmulatorConfig {
        token_lifetime: Duration::ZERO,
        ..config()
    })
    .await;
    let (status, body) = emu
        .token_response(&emu.assertion(&emu.claims(BOB, scopes::GMAIL_READONLY)))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["expires_in"], json!(0));
    let token = body["access_token"].as_str().unwrap();
    let (status, body) = emu.get("/gmail/v1/users/me/profile", token).await;
    assert_api_error(status, &body, 401, "authError", Some("Invalid Credentials"));
}

#[tokio::test]
async fn expiring_all_tokens_makes_calls_unauthenticated() {
    let emu = emulator().await;
    let token = emu.gmail_token(BOB).await;
    assert_eq!(
        emu.get("/gmail/v1/users/me/profile", &token).await.0,
        StatusCode::OK
    );
    emu.running.state.auth.expire_all_tokens();
    let (status, body) = emu.get("/gmail/v1/users/me/profile", &token).await;
    assert_api_error(status, &body, 401, "authError", Some("Invalid Credentials"));
}

#[tokio::test]
async fn a_token_without_the_needed_scope_has_insufficient_permissions() {
    let emu = emulator().await;
    let directory_only = emu.token(ADMIN, scopes::DIRECTORY_USER_READONLY).await;
    let (status, body) = emu.get("/gmail/v1/users/me/profile", &directory_only).await;
    assert_api_error(
        status,
        &body,
        403,
        "insufficientPermissions",
        Some("Request had insufficient authentication scopes."),
    );
    let gmail_only = emu.gmail_token(ADMIN).await;
    let (status, body) = emu
        .get(
            "/admin/directory/v1/users?customer=my_customer",
            &gmail_only,
        )
        .await;
    assert_api_error(status, &body, 403, "insufficientPermissions", None);
}

#[tokio::test]
async fn another_users_mailbox_is_delegation_denied_but_aliases_are_the_user() {
    let emu = emulator().await;
    let token = emu.gmail_token(BOB).await;
    let (status, body) = emu
        .get(&format!("/gmail/v1/users/{ADMIN}/profile"), &token)
        .await;
    assert_api_error(
        status,
        &body,
        403,
        "forbidden",
        Some(&format!("Delegation denied for {BOB}")),
    );
    for user_id in [BOB, BOB_ALIAS, "me"] {
        let (status, body) = emu
            .get(&format!("/gmail/v1/users/{user_id}/profile"), &token)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["emailAddress"], BOB);
    }
}

#[tokio::test]
async fn metadata_scope_refuses_q_and_full_formats() {
    let emu = emulator().await;
    let mut delegated: Vec<&str> = TRIBUTARY_SCOPES.to_vec();
    delegated.push(scopes::GMAIL_METADATA);
    emu.running
        .state
        .auth
        .set_delegation(emu.client_id(), delegated);
    let token = emu.token(BOB, scopes::GMAIL_METADATA).await;
    let (status, body) = emu
        .get("/gmail/v1/users/me/messages?q=in:inbox", &token)
        .await;
    assert_api_error(
        status,
        &body,
        403,
        "forbidden",
        Some("Metadata scope does not support 'q' parameter"),
    );
    let (status, body) = emu
        .get(
            "/gmail/v1/users/me/messages/00000000000000a1?format=full",
            &token,
        )
        .await;
    assert_api_error(
        status,
        &body,
        403,
        "forbidden",
        Some("Metadata scope doesn't allow format FULL"),
    );
    let (status, _) = emu
        .get(
            "/gmail/v1/users/me/messages/00000000000000a1?format=metadata",
            &token,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_token_for_the_service_account_itself_cannot_read_mail() {
    let emu = emulator().await;
    let mut claims = emu.claims(BOB, scopes::GMAIL_READONLY);
    claims.as_object_mut().unwrap().remove("sub");
    let (_, body) = emu.token_response(&emu.assertion(&claims)).await;
    let token = body["access_token"].as_str().unwrap();
    let (status, body) = emu.get("/gmail/v1/users/me/profile", token).await;
    assert_api_error(
        status,
        &body,
        400,
        "failedPrecondition",
        Some("Precondition check failed."),
    );
}

// ---------------------------------------------------------------------------------------
// Directory

async fn list_all_users(emu: &TestEmulator, token: &str, query: &str) -> (Vec<Value>, usize) {
    let mut users = Vec::new();
    let mut pages = 0;
    let mut page_token: Option<String> = None;
    loop {
        let mut path = format!("/admin/directory/v1/users?{query}");
        if let Some(t) = &page_token {
            path.push_str(&format!("&pageToken={t}"));
        }
        let (status, body) = emu.get(&path, token).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["kind"], "admin#directory#users");
        pages += 1;
        users.extend(body["users"].as_array().cloned().unwrap_or_default());
        match body.get("nextPageToken") {
            Some(t) => page_token = Some(t.as_str().unwrap().to_string()),
            None => return (users, pages),
        }
    }
}

#[tokio::test]
async fn directory_lists_every_live_user_in_pages() {
    let emu = emulator().await;
    let token = emu.token(ADMIN, scopes::DIRECTORY_USER_READONLY).await;
    let (users, pages) = list_all_users(&emu, &token, "customer=my_customer&maxResults=2").await;
    let emails: Vec<&str> = users
        .iter()
        .map(|u| u["primaryEmail"].as_str().unwrap())
        .collect();
    assert_eq!(
        emails,
        [ADMIN, BOB, SUSPENDED, MAIL_DISABLED, NO_MAILBOX, BIG]
    );
    assert_eq!(pages, 3);

    let bob = &users[1];
    assert_eq!(bob["kind"], "admin#directory#user");
    assert_eq!(bob["aliases"], json!([BOB_ALIAS]));
    assert_eq!(bob["name"]["fullName"], "Bob Baker");
    assert_eq!(bob["isMailboxSetup"], true);
    assert_eq!(bob["customerId"], "C01abc23d");
    assert!(
        users[0].get("aliases").is_none(),
        "empty aliases are omitted"
    );
    assert_eq!(users[0]["isAdmin"], true);
    assert_eq!(users[2]["suspended"], true);
    assert_eq!(users[4]["isMailboxSetup"], false);
}

#[tokio::test]
async fn directory_sorts_filters_and_shows_deleted_on_request() {
    let emu = emulator().await;
    let token = emu.token(ADMIN, scopes::DIRECTORY_USER_READONLY).await;
    let (users, _) = list_all_users(
        &emu,
        &token,
        &format!("domain={DOMAIN}&orderBy=givenName&sortOrder=DESCENDING&maxResults=4"),
    )
    .await;
    let names: Vec<&str> = users
        .iter()
        .map(|u| u["name"]["givenName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Gina", "Frank", "Erin", "Carol", "Bob", "Ann"]);
    let (deleted, _) = list_all_users(&emu, &token, "customer=my_customer&showDeleted=true").await;
    assert_eq!(deleted.len(), 1);
    assert_eq!(deleted[0]["primaryEmail"], DELETED);
    let (status, body) = emu
        .get(
            "/admin/directory/v1/users?domain=acme-alias.example",
            &token,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body.as_object().unwrap().get("users"),
        None,
        "no users: list omitted"
    );
}

#[tokio::test]
async fn directory_refuses_non_admins_and_bad_requests() {
    let emu = emulator().await;
    let bob = emu.token(BOB, scopes::DIRECTORY_USER_READONLY).await;
    let (status, body) = emu
        .get("/admin/directory/v1/users?customer=my_customer", &bob)
        .await;
    assert_api_error(
        status,
        &body,
        403,
        "forbidden",
        Some("Not Authorized to access this resource/api"),
    );

    let admin = emu.token(ADMIN, scopes::DIRECTORY_USER_READONLY).await;
    let (status, body) = emu.get("/admin/directory/v1/users", &admin).await;
    assert_api_error(status, &body, 400, "badRequest", Some("Bad Request"));
    let (status, body) = emu
        .get(
            "/admin/directory/v1/users?customer=my_customer&pageToken=%25",
            &admin,
        )
        .await;
    assert_api_error(status, &body, 400, "invalid", None);
    for max in ["0", "501", "x"] {
        let (status, body) = emu
            .get(
                &format!("/admin/directory/v1/users?customer=my_customer&maxResults={max}"),
                &admin,
            )
            .await;
        assert_api_error(status, &body, 400, "invalid", None);
    }
    let (status, body) = emu
        .get("/admin/directory/v1/users?domain=other.example", &admin)
        .await;
    assert_api_error(status, &body, 403, "forbidden", None);
}

// ---------------------------------------------------------------------------------------
// Gmail

#[tokio::test]
async fn profile_and_history_ids_are_strings() {
    let emu = emulator().await;
    let token = emu.gmail_token(BOB).await;
    let (status, body) = emu.get("/gmail/v1/users/me/profile", &token).await;
    assert_eq!(status, StatusCode::OK);
    let expected_history = emu.running.state.org().mailboxes[BOB].history_id;
    assert_eq!(body["historyId"], json!(expected_history.to_string()));
    assert_eq!(body["messagesTotal"], json!(8));
    assert_eq!(body["threadsTotal"], json!(7));
}

#[tokio::test]
async fn labels_list_and_get_with_counts() {
    let emu = emulator().await;
    let token = emu.gmail_token(BOB).await;
    let (_, body) = emu.get("/gmail/v1/users/me/labels", &token).await;
    let labels = body["labels"].as_array().unwrap();
    let customers = labels.iter().find(|l| l["id"] == "Label_1").unwrap();
    assert_eq!(customers["type"], "user");
    assert_eq!(customers["labelListVisibility"], "labelShow");
    let inbox = labels.iter().find(|l| l["id"] == "INBOX").unwrap();
    assert_eq!(inbox["type"], "system");

    let (status, body) = emu.get("/gmail/v1/users/me/labels/INBOX", &token).await;
    assert_eq!(status, StatusCode::OK);
    // a1, a2, a4, a7 and the live b1.
    assert_eq!(body["messagesTotal"], 5);
    assert_eq!(body["messagesUnread"], 2);
    assert_eq!(body["threadsTotal"], 4);
    assert_eq!(body["threadsUnread"], 2);
    let (status, body) = emu.get("/gmail/v1/users/me/labels/Label_404", &token).await;
    assert_api_error(
        status,
        &body,
        404,
        "notFound",
        Some("Requested entity was not found."),
    );
}

fn ids(body: &Value) -> Vec<String> {
    body["messages"]
        .as_array()
        .map(|m| {
            m.iter()
                .map(|m| m["id"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn messages_list_requires_every_label_and_lists_newest_first() {
    let emu = emulator().await;
    let token = emu.gmail_token(BOB).await;
    let (_, body) = emu
        .get("/gmail/v1/users/me/messages?labelIds=INBOX", &token)
        .await;
    assert_eq!(
        ids(&body),
        [
            "00000000000000b1",
            "00000000000000a7",
            "00000000000000a4",
            "00000000000000a2",
            "00000000000000a1"
        ]
    );
    assert_eq!(body["resultSizeEstimate"], 5);
    assert!(body["messages"][0]["threadId"].is_string());
    let (_, body) = emu
        .get(
            "/gmail/v1/users/me/messages?labelIds=INBOX&labelIds=UNREAD",
            &token,
        )
        .await;
    assert_eq!(ids(&body), ["00000000000000a4", "00000000000000a1"]);
    let (_, body) = emu
        .get(
            "/gmail/v1/users/me/messages?labelIds=INBOX&labelIds=UNREAD&labelIds=Label_1",
            &token,
        )
        .await;
    assert_eq!(ids(&body), ["00000000000000a4"]);
}

#[tokio::test]
async fn messages_list_with_no_result_is_only_the_estimate() {
    let emu = emulator().await;
    let token = emu.gmail_token(BOB).await;
    let (status, body) = emu
        .get("/gmail/v1/users/me/messages?labelIds=DRAFT", &token)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"resultSizeEstimate": 0}));
}

#[tokio::test]
async fn messages_list_pages_through_everything_once_and_clamps_to_500() {
    let emu = emulator().await;
    let token = emu.gmail_token(BIG).await;
    let (_, body) = emu
        .get("/gmail/v1/users/me/messages?maxResults=10000", &token)
        .await;
    assert_eq!(ids(&body).len(), 500);
    assert!(body["nextPageToken"].is_string());

    let mut seen = Vec::new();
    let mut page_token = String::new();
    loop {
        let (status, body) = emu
            .get(
                &format!("/gmail/v1/users/me/messages?maxResults=200&pageToken={page_token}"),
                &token,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        seen.extend(ids(&body));
        match body.get("nextPageToken") {
            Some(t) => page_token = t.as_str().unwrap().to_string(),
            None => break,
        }
    }
    assert_eq!(seen.len(), BIG_MAILBOX_SIZE);
    assert_eq!(seen.iter().collect::<BTreeSet<_>>().len(), BIG_MAILBOX_SIZE);
    let (status, body) = emu
        .get("/gmail/v1/users/me/messages?pageToken=%%%", &token)
        .await;
    assert_api_error(status, &body, 400, "invalidArgument", None);
}

#[tokio::test]
async fn messages_list_filters_by_after_and_before() {
    let emu = emulator().await;
    let token = emu.gmail_token(BOB).await;
    // Backlog days 0..=6 from 2024-03-01T00:00Z; dates are midnight PST (08:00Z).
    let (_, body) = emu
        .get(
            "/gmail/v1/users/me/messages?q=after:2024/03/02%20before:2024/03/05",
            &token,
        )
        .await;
    assert_eq!(ids(&body), ["00000000000000a4", "00000000000000a3"]);
    let after = (BASE_MS + 6 * DAY_MS) / 1000;
    let (_, body) = emu
        .get(
            &format!("/gmail/v1/users/me/messages?q=after:{after}"),
            &token,
        )
        .await;
    assert_eq!(ids(&body), ["00000000000000b1", "00000000000000a7"]);
    let (status, body) = emu
        .get("/gmail/v1/users/me/messages?q=from:pat", &token)
        .await;
    assert_api_error(status, &body, 400, "invalidArgument", None);
}

#[tokio::test]
async fn spam_and_trash_are_listed_only_on_request() {
    let emu = emulator().await;
    let token = emu.gmail_token(BOB).await;
    let (_, body) = emu.get("/gmail/v1/users/me/messages", &token).await;
    let all = ids(&body);
    assert!(
        !all.contains(&"00000000000000a5".to_string())
            && !all.contains(&"00000000000000a6".to_string())
    );
    let (_, body) = emu
        .get("/gmail/v1/users/me/messages?includeSpamTrash=true", &token)
        .await;
    assert_eq!(ids(&body).len(), all.len() + 2);
    let (_, body) = emu
        .get("/gmail/v1/users/me/messages?labelIds=SPAM", &token)
        .await;
    assert_eq!(ids(&body), ["00000000000000a5"]);
    let (_, body) = emu
        .get("/gmail/v1/users/me/messages?q=in:trash", &token)
        .await;
    assert_eq!(ids(&body), ["00000000000000a6"]);
}

#[tokio::test]
async fn messages_get_in_every_format() {
    let emu = emulator().await;
    let token = emu.gmail_token(BOB).await;
    let base = "/gmail/v1/users/me/messages/00000000000000a1";

    let (status, minimal) = emu.get(&format!("{base}?format=minimal"), &token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(minimal["id"], "00000000000000a1");
    assert_eq!(minimal["threadId"], "t1");
    assert_eq!(minimal["labelIds"], json!(["INBOX", "UNREAD"]));
    assert_eq!(minimal["internalDate"], json!(BASE_MS.to_string()));
    assert!(minimal["historyId"].is_string());
    assert!(minimal["sizeEstimate"].is_u64());
    assert!(minimal.get("payload").is_none() && minimal.get("raw").is_none());

    let (_, metadata) = emu
        .get(
            &format!("{base}?format=metadata&metadataHeaders=subject&metadataHeaders=From"),
            &token,
        )
        .await;
    let headers = metadata["payload"]["headers"].as_array().unwrap();
    let names: Vec<&str> = headers
        .iter()
        .map(|h| h["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["From", "Subject"]);
    assert_eq!(headers[1]["value"], "first");
    assert_eq!(metadata["payload"]["mimeType"], "text/plain");
    let (_, all_headers) = emu.get(&format!("{base}?format=metadata"), &token).await;
    assert_eq!(
        all_headers["payload"]["headers"].as_array().unwrap().len(),
        6
    );

    let (_, full) = emu.get(base, &token).await;
    let data = full["payload"]["body"]["data"].as_str().unwrap();
    let body = base64_url_decode(data);
    assert_eq!(body, b"Hello about first.\r\n");
    assert_eq!(full["payload"]["body"]["size"], body.len());

    let (_, raw) = emu.get(&format!("{base}?format=raw"), &token).await;
    let raw_bytes = base64_url_decode(raw["raw"].as_str().unwrap());
    assert!(raw_bytes.starts_with(b"From: Pat Partner"));
    assert_eq!(raw["sizeEstimate"], raw_bytes.len());

    let (status, body) = emu
        .get("/gmail/v1/users/me/messages/ffffffffffffffff", &token)
        .await;
    assert_api_error(
        status,
        &body,
        404,
        "notFound",
        Some("Requested entity was not found."),
    );
    let (status, body) = emu.get(&format!("{base}?format=bogus"), &token).await;
    assert_api_error(status, &body, 400, "invalidArgument", None);
}

fn base64_url_decode(data: &str) -> Vec<u8> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(data.trim_end_matches('='))
        .unwrap()
}

#[tokio::test]
async fn disabled_or_missing_mailboxes_are_a_failed_precondition() {
    let emu = emulator().await;
    for user in [MAIL_DISABLED, NO_MAILBOX] {
        let token = emu.gmail_token(user).await;
        let (status, body) = emu.get("/gmail/v1/users/me/messages", &token).await;
        assert_api_error(
            status,
            &body,
            400,
            "failedPrecondition",
            Some("Mail service not enabled"),
        );
        assert_eq!(body["error"]["status"], "FAILED_PRECONDITION");
    }
}

// ---------------------------------------------------------------------------------------
// History

fn history_ids(body: &Value) -> Vec<u64> {
    body["history"]
        .as_array()
        .map(|h| {
            h.iter()
                .map(|r| r["id"].as_str().unwrap().parse().unwrap())
                .collect()
        })
        .unwrap_or_default()
}

async fn oldest_history(emu: &TestEmulator) -> u64 {
    emu.running.state.org().mailboxes[BOB].oldest_history_id
}

#[tokio::test]
async fn history_lists_every_change_in_order_with_gaps() {
    let emu = emulator().await;
    let token = emu.gmail_token(BOB).await;
    let start = oldest_history(&emu).await;
    let (status, body) = emu
        .get(
            &format!("/gmail/v1/users/me/history?startHistoryId={start}"),
            &token,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let ids = history_ids(&body);
    assert_eq!(ids.len(), 5);
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
    assert!(ids[0] > start);
    let records = body["history"].as_array().unwrap();
    assert_eq!(
        records[0]["messagesAdded"][0]["message"]["id"],
        "00000000000000b1"
    );
    assert_eq!(
        records[0]["messagesAdded"][0]["message"]["labelIds"],
        json!(["INBOX", "UNREAD"])
    );
    assert_eq!(records[2]["labelsAdded"][0]["labelIds"], json!(["Label_1"]));
    assert_eq!(
        records[3]["labelsRemoved"][0]["labelIds"],
        json!(["UNREAD"])
    );
    assert_eq!(
        records[4]["messagesDeleted"][0]["message"]["id"],
        "00000000000000b2"
    );
    assert_eq!(records[4]["messages"][0]["threadId"], "t9");
    assert_eq!(body["historyId"], json!(ids[4].to_string()));
    assert!(body.get("nextPageToken").is_none());
}

#[tokio::test]
async fn history_pages_and_filters_by_type_and_label() {
    let emu = emulator().await;
    let token = emu.gmail_token(BOB).await;
    let start = oldest_history(&emu).await;
    let mut seen = Vec::new();
    let mut page_token = String::new();
    let mut pages = 0;
    loop {
        let (_, body) = emu
            .get(&format!("/gmail/v1/users/me/history?startHistoryId={start}&maxResults=2&pageToken={page_token}"), &token)
            .await;
        pages += 1;
        seen.extend(history_ids(&body));
        match body.get("nextPageToken") {
            Some(t) => page_token = t.as_str().unwrap().to_string(),
            None => break,
        }
    }
    assert_eq!((seen.len(), pages), (5, 3));

    let (_, body) = emu
        .get(&format!("/gmail/v1/users/me/history?startHistoryId={start}&historyTypes=messageAdded&historyTypes=messageDeleted"), &token)
        .await;
    let records = body["history"].as_array().unwrap();
    assert_eq!(records.len(), 3);
    assert!(
        records
            .iter()
            .all(|r| r.get("labelsAdded").is_none() && r.get("labelsRemoved").is_none())
    );

    let (_, body) = emu
        .get(
            &format!("/gmail/v1/users/me/history?startHistoryId={start}&labelId=SENT"),
            &token,
        )
        .await;
    assert_eq!(history_ids(&body).len(), 2, "b2 added and deleted: {body}");
    let (_, body) = emu
        .get(
            &format!("/gmail/v1/users/me/history?startHistoryId={start}&labelId=UNREAD"),
            &token,
        )
        .await;
    assert_eq!(
        history_ids(&body).len(),
        3,
        "b1 added, labelled while unread, unread removed: {body}"
    );
}

#[tokio::test]
async fn history_refuses_unknown_types_and_page_tokens() {
    let emu = emulator().await;
    let token = emu.gmail_token(BOB).await;
    let start = oldest_history(&emu).await;
    for bad in ["historyTypes=messageMoved", "pageToken=%25%25"] {
        let (status, body) = emu
            .get(
                &format!("/gmail/v1/users/me/history?startHistoryId={start}&{bad}"),
                &token,
            )
            .await;
        assert_api_error(status, &body, 400, "invalidArgument", None);
    }
}

#[tokio::test]
async fn history_with_nothing_new_is_only_the_history_id() {
    let emu = emulator().await;
    let token = emu.gmail_token(BOB).await;
    let current = emu.running.state.org().mailboxes[BOB].history_id;
    let (_, body) = emu
        .get(
            &format!("/gmail/v1/users/me/history?startHistoryId={current}"),
            &token,
        )
        .await;
    assert_eq!(body, json!({"historyId": current.to_string()}));
}

#[tokio::test]
async fn expired_history_is_not_found_and_malformed_ids_are_invalid() {
    let emu = emulator().await;
    let token = emu.gmail_token(BOB).await;
    let start = oldest_history(&emu).await;
    emu.running
        .state
        .org_mut()
        .mailboxes
        .get_mut(BOB)
        .unwrap()
        .expire_all_history();
    let (status, body) = emu
        .get(
            &format!("/gmail/v1/users/me/history?startHistoryId={start}"),
            &token,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        json!({"error": {"code": 404, "message": "Requested entity was not found.", "errors": [{"message": "Requested entity was not found.", "domain": "global", "reason": "notFound"}], "status": "NOT_FOUND"}})
    );
    for bad in ["startHistoryId=abc", "startHistoryId=-1", ""] {
        let (status, body) = emu
            .get(&format!("/gmail/v1/users/me/history?{bad}"), &token)
            .await;
        assert_api_error(
            status,
            &body,
            400,
            "invalidArgument",
            Some("Missing/invalid parameter: startHistoryId"),
        );
    }
}

// ---------------------------------------------------------------------------------------
// Batch

/// The inner responses of a batch answer: (Content-ID, status, JSON body), parsed
/// independently of the emulator's own multipart code.
fn parse_batch_response(content_type: &str, body: &str) -> Vec<(String, u16, Value)> {
    let boundary = content_type
        .split("boundary=")
        .nth(1)
        .unwrap()
        .trim_matches('"');
    assert!(boundary.starts_with("batch_"), "{content_type}");
    assert!(body.ends_with(&format!("--{boundary}--\r\n")));
    body.split(&format!("--{boundary}"))
        .skip(1)
        .filter(|part| !part.starts_with("--"))
        .map(|part| {
            let (part_headers, inner) = part
                .trim_start_matches("\r\n")
                .split_once("\r\n\r\n")
                .unwrap();
            assert!(
                part_headers.contains("Content-Type: application/http"),
                "{part_headers}"
            );
            let content_id = part_headers
                .lines()
                .find_map(|l| l.strip_prefix("Content-ID: "))
                .unwrap_or_default()
                .to_string();
            let (head, json_body) = inner.split_once("\r\n\r\n").unwrap();
            let status_line = head.lines().next().unwrap();
            let status: u16 = status_line.split(' ').nth(1).unwrap().parse().unwrap();
            assert!(status_line.starts_with("HTTP/1.1 "));
            (
                content_id,
                status,
                serde_json::from_str(json_body.trim_end()).unwrap(),
            )
        })
        .collect()
}

/// The boundary style of Python's email generator.
const BOUNDARY: &str = "===============7330845974216740156==";

/// A batch body as google-api-python-client writes it: bare LF line endings.
fn python_batch(boundary: &str, requests: &[(String, Option<&str>)]) -> String {
    let mut body = String::new();
    for (i, (path, token)) in requests.iter().enumerate() {
        body.push_str(&format!(
            "--{boundary}\nContent-Type: application/http\nMIME-Version: 1.0\nContent-Transfer-Encoding: binary\nContent-ID: <3f1c2b8a-uuid + {}>\n\nGET {path} HTTP/1.1\nContent-Type: application/json\nMIME-Version: 1.0\naccept: application/json\n",
            i + 1
        ));
        if let Some(token) = token {
            body.push_str(&format!("authorization: Bearer {token}\n"));
        }
        body.push_str("Host: 127.0.0.1\n\n\n");
    }
    body.push_str(&format!("--{boundary}--\n"));
    body
}

async fn post_batch(
    emu: &TestEmulator,
    path: &str,
    body: String,
    outer_token: Option<&str>,
) -> reqwest::Response {
    let mut request = emu
        .http
        .post(emu.url(path))
        .header(
            "content-type",
            format!("multipart/mixed; boundary=\"{BOUNDARY}\""),
        )
        .body(body);
    if let Some(token) = outer_token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn batch_answers_each_part_in_order_with_response_content_ids() {
    let emu = emulator().await;
    let token = emu.gmail_token(BOB).await;
    let requests = vec![
        (
            "/gmail/v1/users/me/messages/00000000000000a1?format=metadata&alt=json".to_string(),
            Some(token.as_str()),
        ),
        (
            "/gmail/v1/users/me/messages/ffffffffffffffff?format=minimal".to_string(),
            Some(token.as_str()),
        ),
        (
            "https://gmail.googleapis.com/gmail/v1/users/me/profile".to_string(),
            Some(token.as_str()),
        ),
        ("/gmail/v1/users/me/profile".to_string(), Some("ya29.bogus")),
    ];
    let body = python_batch(BOUNDARY, &requests);
    for path in ["/batch/gmail/v1", "/batch"] {
        let response = post_batch(&emu, path, body.clone(), None).await;
        assert_eq!(response.status(), StatusCode::OK);
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(content_type.starts_with("multipart/mixed; boundary="));
        let parts = parse_batch_response(&content_type, &response.text().await.unwrap());
        assert_eq!(parts.len(), 4);
        assert_eq!(parts[0].0, "<response-3f1c2b8a-uuid + 1>");
        assert_eq!(
            (parts[0].1, parts[0].2["id"].as_str()),
            (200, Some("00000000000000a1"))
        );
        assert_eq!(parts[1].1, 404);
        assert_eq!(parts[1].2["error"]["errors"][0]["reason"], "notFound");
        assert_eq!(
            (parts[2].1, parts[2].2["emailAddress"].as_str()),
            (200, Some(BOB))
        );
        assert_eq!(parts[3].0, "<response-3f1c2b8a-uuid + 4>");
        assert_eq!(parts[3].1, 401);
    }
}

#[tokio::test]
async fn batch_parts_without_authorization_use_the_outer_one() {
    let emu = emulator().await;
    let token = emu.gmail_token(BOB).await;
    let body = python_batch(
        BOUNDARY,
        &[("/gmail/v1/users/me/profile".to_string(), None)],
    );
    let response = post_batch(&emu, "/batch/gmail/v1", body, Some(&token)).await;
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    let parts = parse_batch_response(&content_type, &response.text().await.unwrap());
    assert_eq!(parts[0].1, 200, "{:?}", parts[0].2);
}

#[tokio::test]
async fn batch_of_more_than_100_parts_is_refused() {
    let emu = emulator().await;
    let token = emu.gmail_token(BOB).await;
    let requests: Vec<(String, Option<&str>)> = (0..101)
        .map(|_| {
            (
                "/gmail/v1/users/me/profile".to_string(),
                Some(token.as_str()),
            )
        })
        .collect();
    let response = post_batch(
        &emu,
        "/batch/gmail/v1",
        python_batch(BOUNDARY, &requests),
        None,
    )
    .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], 400);
}

#[tokio::test]
async fn every_batch_part_is_charged() {
    let emu = emulator().await;
    let token = emu.gmail_token(BOB).await;
    let requests: Vec<(String, Option<&str>)> = (0..100)
        .map(|_| {
            (
                "/gmail/v1/users/me/messages/00000000000000a1?format=metadata".to_string(),
                Some(token.as_str()),
            )
        })
        .collect();
    let response = post_batch(
        &emu,
        "/batch/gmail/v1",
        python_batch(BOUNDARY, &requests),
        None,
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let counters = emu.running.state.counters.snapshot();
    let bob = &counters.users[BOB].methods["users.messages.get"];
    assert_eq!((bob.requests, bob.units), (100, 500));
}

// ---------------------------------------------------------------------------------------
// Quotas and faults

#[tokio::test]
async fn a_spent_user_budget_answers_user_rate_limit_exceeded() {
    let emu = emulator_with(tributary_emulator::server::EmulatorConfig {
        quota: QuotaConfig {
            per_user_units_per_minute: 10,
            ..QuotaConfig::default()
        },
        ..config()
    })
    .await;
    let token = emu.gmail_token(BOB).await;
    let path = "/gmail/v1/users/me/messages/00000000000000a1?format=metadata";
    for _ in 0..2 {
        assert_eq!(emu.get(path, &token).await.0, StatusCode::OK);
    }
    let response = emu
        .http
        .get(emu.url(path))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert!(response.headers().contains_key("retry-after"));
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_api_error(status, &body, 403, "userRateLimitExceeded", None);
    assert_eq!(body["error"]["errors"][0]["domain"], "usageLimits");
    // Another user's budget is untouched.
    let admin = emu.gmail_token(ADMIN).await;
    assert_eq!(
        emu.get("/gmail/v1/users/me/profile", &admin).await.0,
        StatusCode::OK
    );
    let counters = emu.running.state.counters.snapshot();
    assert_eq!(
        counters.users[BOB].methods["users.messages.get"].rate_limited,
        1
    );
}

#[tokio::test]
async fn injected_backend_errors_use_googles_envelope() {
    let emu = emulator_with(tributary_emulator::server::EmulatorConfig {
        faults: FaultConfig {
            backend_error_probability: 1.0,
            ..FaultConfig::default()
        },
        ..config()
    })
    .await;
    let token = emu.gmail_token(BOB).await;
    let (status, body) = emu.get("/gmail/v1/users/me/profile", &token).await;
    assert_api_error(status, &body, 500, "backendError", Some("Backend Error"));
}

#[tokio::test]
async fn unknown_paths_are_not_found() {
    let emu = emulator().await;
    let token = emu.gmail_token(BOB).await;
    let (status, _) = emu.get("/gmail/v1/users/me/drafts", &token).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn requests_over_the_concurrency_cap_get_429() {
    let emu = emulator_with(tributary_emulator::server::EmulatorConfig {
        quota: QuotaConfig {
            concurrent_requests_per_user: 1,
            ..QuotaConfig::default()
        },
        // The first request holds its slot while it waits out the latency.
        faults: FaultConfig {
            latency_ms: 1500,
            ..FaultConfig::default()
        },
        ..config()
    })
    .await;
    let token = emu.gmail_token(BOB).await;
    let path = "/gmail/v1/users/me/profile";
    let (first, second) = tokio::join!(emu.get(path, &token), emu.get(path, &token));
    let mut statuses = [first.0.as_u16(), second.0.as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 429]);
    let refused = if first.0 == StatusCode::TOO_MANY_REQUESTS {
        &first.1
    } else {
        &second.1
    };
    assert_api_error(
        StatusCode::TOO_MANY_REQUESTS,
        refused,
        429,
        "rateLimitExceeded",
        Some("Too many concurrent requests for user"),
    );
}

// ---------------------------------------------------------------------------------------
// Start-up with a generated organization and written files

fn scratch_dir(name: &str) -> std::path::PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    std::env::temp_dir().join(format!(
        "tributary-emulator-{name}-{}-{nanos}",
        std::process::id()
    ))
}

#[tokio::test]
async fn a_generated_organization_is_served_and_its_files_written() {
    let dir = scratch_dir("files");
    let emu = emulator_with(tributary_emulator::server::EmulatorConfig {
        organization: tributary_emulator::server::OrgSource::Generate(
            tributary_emulator::org::OrgConfig {
                seed: 3,
                users: 4,
                messages_per_user: 20,
                now_ms: BASE_MS,
            },
        ),
        out_dir: Some(dir.clone()),
        ..config()
    })
    .await;

    let info: Value =
        serde_json::from_slice(&std::fs::read(dir.join("emulator.json")).unwrap()).unwrap();
    for key in [
        "base_url",
        "token_uri",
        "control_url",
        "admin_email",
        "domains",
        "customer_id",
    ] {
        assert!(info.get(key).is_some(), "emulator.json lacks {key}: {info}");
    }
    assert_eq!(info["base_url"], emu.running.base_url.as_str());
    assert_eq!(
        info["control_url"],
        format!("{}/control", emu.running.base_url)
    );
    assert!(dir.join("ground-truth.json").is_file());

    let key_path = dir.join("service-account.json");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let key_file: Value = serde_json::from_slice(&std::fs::read(&key_path).unwrap()).unwrap();
    assert_eq!(key_file["type"], "service_account");
    assert_eq!(key_file["token_uri"], info["token_uri"]);
    assert!(
        key_file["private_key"]
            .as_str()
            .unwrap()
            .starts_with("-----BEGIN PRIVATE KEY-----")
    );
    let client_id = key_file["client_id"].as_str().unwrap();
    assert!(client_id.len() == 21 && client_id.bytes().all(|b| b.is_ascii_digit()));
    assert_eq!(key_file["private_key_id"].as_str().unwrap().len(), 40);

    // The key file works: the admin reads the directory.
    let admin = info["admin_email"].as_str().unwrap();
    let token = emu.token(admin, scopes::DIRECTORY_USER_READONLY).await;
    let (status, body) = emu
        .get("/admin/directory/v1/users?customer=my_customer", &token)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(!body["users"].as_array().unwrap().is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}
