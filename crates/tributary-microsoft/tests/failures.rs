//! Every Microsoft failure an administrator can cause, made with the emulator's control
//! API, arrives as the taxonomy's kind with Microsoft's own code and message, and leaves
//! other mailboxes readable.

mod common;

use common::Emulator;
use serde_json::json;
use tributary_core::{LinkErrorStatus, ProviderError, ProviderErrorKind};
use tributary_microsoft::{
    AppCredentials, AssertionAlgorithm, CertificateCredential, ClientCredential, ClientSecret,
    DeltaOptions, MicrosoftConnector,
};

/// Asserts the error's kind, code, status and that Microsoft's message is kept.
fn assert_failure(
    error: &ProviderError,
    kind: ProviderErrorKind,
    reason: &str,
    status: u16,
    message_part: &str,
) {
    assert_eq!(error.kind(), kind, "{error}");
    assert_eq!(error.reason(), Some(reason), "{error}");
    assert_eq!(error.status(), Some(status), "{error}");
    assert!(error.message().contains(message_part), "{error}");
}

/// The hint the admin sees for `error`.
fn hint(error: &ProviderError) -> &'static str {
    error
        .link_status()
        .microsoft_fix_hint(error.reason(), error.message())
}

fn with_app(emulator: &Emulator, change: impl FnOnce(&mut AppCredentials)) -> MicrosoftConnector {
    let mut app = emulator.credentials(emulator.secret());
    change(&mut app);
    MicrosoftConnector::new(app, emulator.options()).unwrap()
}

#[tokio::test]
async fn credential_and_consent_failures_are_authentication_errors() {
    let emulator = Emulator::start().await;
    let wrong = with_app(&emulator, |app| {
        app.credential = ClientCredential::Secret(ClientSecret::new("not-the-secret"));
    });
    let error = wrong.check_credentials().await.unwrap_err();
    assert_failure(
        &error,
        ProviderErrorKind::AuthenticationError,
        "AADSTS7000215",
        401,
        "AADSTS7000215: ",
    );
    assert!(hint(&error).contains("secret is wrong"), "{}", hint(&error));
    assert_eq!(error.link_status(), LinkErrorStatus::AuthenticationError);

    let unknown_tenant = with_app(&emulator, |app| {
        app.tenant = "22222222-2222-2222-2222-222222222222".into();
    });
    let error = unknown_tenant.check_credentials().await.unwrap_err();
    assert_failure(
        &error,
        ProviderErrorKind::AuthenticationError,
        "AADSTS90002",
        400,
        "AADSTS90002",
    );

    let unknown_app = with_app(&emulator, |app| {
        app.client_id = "11111111-1111-1111-1111-111111111111".into();
    });
    let error = unknown_app.check_credentials().await.unwrap_err();
    assert_failure(
        &error,
        ProviderErrorKind::AuthenticationError,
        "AADSTS700016",
        400,
        "AADSTS700016",
    );

    let cases = [
        (
            "/app/disable",
            json!({"disabled": true}),
            "AADSTS7000112",
            400,
        ),
        ("/consent/revoke", json!({}), "AADSTS7000229", 401),
        ("/app/secrets/expire", json!({}), "AADSTS7000222", 401),
    ];
    let mut undo = vec![
        ("/app/disable", json!({"disabled": false})),
        ("/consent/grant", json!({})),
    ]
    .into_iter();
    for (path, body, code, status) in cases {
        emulator.control("POST", path, body).await;
        // A new connector: a cached token would outlive the change for its lifetime.
        let error = emulator.connector().check_credentials().await.unwrap_err();
        assert_failure(
            &error,
            ProviderErrorKind::AuthenticationError,
            code,
            status,
            code,
        );
        assert!(hint(&error).contains("Tributary"), "{}", hint(&error));
        if let Some((path, body)) = undo.next() {
            emulator.control("POST", path, body).await;
            emulator.connector().check_credentials().await.unwrap();
        }
    }
    // A new secret works again (rotation).
    let rotated = emulator
        .control("POST", "/app/secrets", json!({"replace": true}))
        .await;
    let secret = rotated["client_secret"].as_str().unwrap().to_string();
    let fresh = with_app(&emulator, |app| {
        app.credential = ClientCredential::Secret(ClientSecret::new(secret));
    });
    fresh.check_credentials().await.unwrap();
}

#[tokio::test]
async fn a_certificate_not_registered_is_an_authentication_error() {
    let emulator = Emulator::start().await;
    // The app's key with another certificate (the emulator's CA): its thumbprint is not
    // registered on the app.
    let other = CertificateCredential::from_pem(
        &emulator.running.ca_pem,
        &emulator.running.certificate.private_key_pem,
    )
    .unwrap();
    for algorithm in [AssertionAlgorithm::Ps256, AssertionAlgorithm::Rs256] {
        let connector = with_app(&emulator, |app| {
            app.credential = ClientCredential::Certificate(other.clone().with_algorithm(algorithm));
        });
        let error = connector.check_credentials().await.unwrap_err();
        assert_failure(
            &error,
            ProviderErrorKind::AuthenticationError,
            "AADSTS700027",
            401,
            "AADSTS700027",
        );
        assert!(hint(&error).contains("thumbprints"), "{}", hint(&error));
    }
}

#[tokio::test]
async fn missing_permissions_are_unauthorized() {
    let emulator = Emulator::start().await;
    let (user, _, _) = emulator.mailbox_user();
    emulator
        .control("PUT", "/permissions", json!({"roles": ["Mail.Read"]}))
        .await;
    let error = emulator
        .connector()
        .directory()
        .list_users()
        .await
        .unwrap_err();
    assert_failure(
        &error,
        ProviderErrorKind::Unauthorized,
        "Authorization_RequestDenied",
        403,
        "Insufficient privileges",
    );
    assert!(hint(&error).contains("User.Read.All"), "{}", hint(&error));
    assert_eq!(error.link_status(), LinkErrorStatus::Unauthorized);
    emulator
        .control("PUT", "/permissions", json!({"roles": ["User.Read.All"]}))
        .await;
    let error = emulator
        .connector()
        .mailbox(&user)
        .list_folders()
        .await
        .unwrap_err();
    assert_failure(
        &error,
        ProviderErrorKind::Unauthorized,
        "ErrorAccessDenied",
        403,
        "Access is denied",
    );
}

#[tokio::test]
async fn a_permission_removed_later_stops_mail_but_not_the_directory() {
    let emulator = Emulator::start().await;
    let (user, _, _) = emulator.mailbox_user();
    let state = emulator.control("GET", "/state", json!(null)).await;
    let roles: Vec<String> = serde_json::from_value(state["apps"][0]["roles"].clone())
        .unwrap_or_else(|_| panic!("roles in {state}"));
    for role in roles.iter().filter(|r| r.starts_with("Mail.")) {
        emulator
            .control("POST", "/permissions/remove", json!({"permission": role}))
            .await;
    }
    let connector = emulator.connector();
    connector.directory().list_users().await.unwrap();
    let error = connector
        .mailbox(&user)
        .delta_start("inbox", &DeltaOptions::default())
        .await
        .unwrap_err();
    assert_failure(
        &error,
        ProviderErrorKind::Unauthorized,
        "ErrorAccessDenied",
        403,
        "Access is denied",
    );
}

#[tokio::test]
async fn an_access_policy_refuses_only_the_mailboxes_it_excludes() {
    let emulator = Emulator::start().await;
    let users = emulator.mailbox_users();
    let (denied, allowed) = (&users[0].0, &users[1].0);
    emulator
        .control(
            "PUT",
            "/access-policy",
            json!({"members": [denied], "access_right": "DenyAccess"}),
        )
        .await;
    let connector = emulator.connector();
    let error = connector
        .mailbox(denied)
        .delta_start("inbox", &DeltaOptions::default())
        .await
        .unwrap_err();
    assert_failure(
        &error,
        ProviderErrorKind::Unauthorized,
        "ErrorAccessDenied",
        403,
        "Access to OData is disabled.",
    );
    assert!(hint(&error).contains("access policy"), "{}", hint(&error));
    connector
        .mailbox(allowed)
        .delta_start("inbox", &DeltaOptions::default())
        .await
        .expect("another mailbox keeps syncing");
}

#[tokio::test]
async fn a_disabled_mailbox_is_unauthorized_and_a_deleted_user_an_authentication_error() {
    let emulator = Emulator::start().await;
    let users = emulator.mailbox_users();
    let (disabled, deleted, other) = (&users[0].0, &users[1].0, &users[2].0);
    emulator
        .control(
            "POST",
            &format!("/users/{disabled}/mailbox"),
            json!({"enabled": false}),
        )
        .await;
    emulator
        .control("DELETE", &format!("/users/{deleted}"), json!({}))
        .await;
    let connector = emulator.connector();
    let error = connector
        .mailbox(disabled)
        .list_folders()
        .await
        .unwrap_err();
    assert_failure(
        &error,
        ProviderErrorKind::Unauthorized,
        "MailboxNotEnabledForRESTAPI",
        404,
        "The mailbox is either inactive",
    );
    assert!(
        hint(&error).contains("Exchange Online mailbox"),
        "{}",
        hint(&error)
    );
    let error = connector
        .mailbox(deleted)
        .delta_start("inbox", &DeltaOptions::default())
        .await
        .unwrap_err();
    assert_eq!(
        error.kind(),
        ProviderErrorKind::AuthenticationError,
        "{error}"
    );
    assert_eq!(error.status(), Some(404));
    assert_eq!(error.reason(), Some("ResourceNotFound"));
    connector
        .mailbox(other)
        .list_folders()
        .await
        .expect("other mailboxes keep syncing");
}

#[tokio::test]
async fn a_disabled_account_is_listed_as_suspended() {
    let emulator = Emulator::start().await;
    let (user, _, _) = emulator.mailbox_user();
    let directory = emulator.connector().directory();
    let before = directory.list_users().await.unwrap();
    let listed = |users: &[tributary_microsoft::DirectoryUser]| {
        users.iter().find(|u| u.id == user).unwrap().to_account()
    };
    assert!(!listed(&before).suspended);
    emulator
        .control(
            "POST",
            &format!("/users/{user}/account"),
            json!({"enabled": false}),
        )
        .await;
    let after = directory.list_users().await.unwrap();
    let account = listed(&after);
    assert!(
        account.suspended,
        "skipped at the next rebuild: {account:?}"
    );
    assert!(account.has_mailbox);
}
