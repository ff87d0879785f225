//! Console accounts, sessions and API tokens, on SQLite and PostgreSQL: only hashes are
//! stored, sessions expire, revoked tokens stop working, and nothing crosses tenants.

mod common;

use sqlx::Row;
use tributary_store::{AccountError, ApiTokenId, MemberRole, Store, TenantId, token_hash};

const HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaA";

async fn tenants(store: &Store) -> (TenantId, TenantId) {
    let acme = TenantId::new("acme");
    let globex = TenantId::new("globex");
    store.create_tenant(&acme, "Acme").await.unwrap();
    store.create_tenant(&globex, "Globex").await.unwrap();
    (acme, globex)
}

async fn users_are_unique_and_keep_only_the_hash(store: Store) {
    let (acme, globex) = tenants(&store).await;
    assert_eq!(
        store.tenant_name(&acme).await.unwrap().as_deref(),
        Some("Acme")
    );
    assert_eq!(
        store.tenant_name(&TenantId::new("nope")).await.unwrap(),
        None
    );
    let ada = store
        .create_user(&acme, " Ada@Acme.test ", MemberRole::Admin, HASH, "cli")
        .await
        .unwrap();
    // An email signs in to one tenant: taken across tenants, whatever its case.
    let taken = store
        .create_user(&globex, "ADA@acme.test", MemberRole::Member, HASH, "cli")
        .await;
    assert!(matches!(taken, Err(AccountError::EmailTaken(e)) if e == "ada@acme.test"));
    assert!(matches!(
        store
            .create_user(&acme, "not an email", MemberRole::Member, HASH, "cli")
            .await,
        Err(AccountError::InvalidEmail(_))
    ));
    assert!(matches!(
        store
            .create_user(
                &TenantId::new("nope"),
                "x@y.test",
                MemberRole::Member,
                HASH,
                "cli"
            )
            .await,
        Err(AccountError::UnknownTenant(_))
    ));
    let credentials = store
        .user_credentials("ADA@ACME.TEST")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(credentials.user.id, ada);
    assert_eq!(credentials.user.tenant, acme);
    assert_eq!(credentials.user.role, MemberRole::Admin);
    assert_eq!(credentials.password_hash, HASH);
    assert!(
        store
            .user_credentials("bob@acme.test")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store
            .user_by_email(&acme, "ada@acme.test")
            .await
            .unwrap()
            .unwrap()
            .id,
        ada
    );
    assert!(
        store
            .user_by_email(&globex, "ada@acme.test")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(store.users(&acme).await.unwrap().len(), 1);
    assert!(store.users(&globex).await.unwrap().is_empty());
    store
        .set_user_password(&acme, ada, "$argon2id$new")
        .await
        .unwrap();
    assert_eq!(
        store
            .user_credentials("ada@acme.test")
            .await
            .unwrap()
            .unwrap()
            .password_hash,
        "$argon2id$new"
    );
    assert!(matches!(
        store.set_user_password(&globex, ada, HASH).await,
        Err(AccountError::UnknownUser { .. })
    ));
    let audit = store.audit_events(&acme, 10).await.unwrap();
    assert!(
        audit
            .iter()
            .any(|e| e.action == "account.created" && e.actor == "cli")
    );
}

async fn sessions_are_hashed_expire_and_end(store: Store) {
    let (acme, globex) = tenants(&store).await;
    let ada = store
        .create_user(&acme, "ada@acme.test", MemberRole::Member, HASH, "cli")
        .await
        .unwrap();
    let session = store.create_session(&acme, ada, 60_000).await.unwrap();
    assert_ne!(session.token, session.csrf_token);
    assert!(session.token.len() >= 43, "256 random bits");
    let found = store
        .session_by_token(&session.token)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.user.email, "ada@acme.test");
    assert_eq!(found.csrf_token, session.csrf_token);
    // The database holds the hash, never the token.
    let stored: Vec<String> = sqlx::query("SELECT token_hash FROM sessions")
        .fetch_all(store.pool())
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(stored, [token_hash(&session.token)]);
    assert!(store.session_by_token("forged").await.unwrap().is_none());
    store.delete_session(&session.token).await.unwrap();
    assert!(
        store
            .session_by_token(&session.token)
            .await
            .unwrap()
            .is_none()
    );
    let expired = store.create_session(&acme, ada, -1).await.unwrap();
    assert!(
        store
            .session_by_token(&expired.token)
            .await
            .unwrap()
            .is_none()
    );
    assert!(matches!(
        store.create_session(&globex, ada, 60_000).await,
        Err(AccountError::UnknownUser { .. })
    ));
    // A new password ends every session.
    let live = store.create_session(&acme, ada, 60_000).await.unwrap();
    store.set_user_password(&acme, ada, HASH).await.unwrap();
    assert!(store.session_by_token(&live.token).await.unwrap().is_none());
}

async fn api_tokens_are_shown_once_and_revocable(store: Store) {
    let (acme, globex) = tenants(&store).await;
    let ada = store
        .create_user(&acme, "ada@acme.test", MemberRole::Admin, HASH, "cli")
        .await
        .unwrap();
    let created = store
        .create_api_token(&acme, ada, " crm ", "ada@acme.test")
        .await
        .unwrap();
    assert!(created.secret.starts_with("trb_"));
    assert!(created.secret.starts_with(&created.token.prefix));
    assert!(created.token.prefix.len() < created.secret.len() / 2);
    assert_eq!(created.token.name, "crm");
    let auth = store
        .api_token_by_secret(&created.secret)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(auth.user.id, ada);
    assert_eq!(auth.user.role, MemberRole::Admin);
    assert_eq!(auth.token.tenant, acme);
    let listed = store.api_tokens(&acme).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].last_used_ms.is_some(), "use is recorded");
    assert!(store.api_tokens(&globex).await.unwrap().is_empty());
    let secrets: Vec<String> = sqlx::query("SELECT secret_hash FROM api_tokens")
        .fetch_all(store.pool())
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(secrets, [token_hash(&created.secret)]);
    assert!(
        store
            .api_token_by_secret("trb_guess")
            .await
            .unwrap()
            .is_none()
    );
    assert!(matches!(
        store.create_api_token(&acme, ada, "  ", "x").await,
        Err(AccountError::EmptyTokenName)
    ));
    assert!(matches!(
        store.create_api_token(&globex, ada, "x", "x").await,
        Err(AccountError::UnknownUser { .. })
    ));
    assert!(matches!(
        store.revoke_api_token(&globex, created.token.id, "x").await,
        Err(AccountError::UnknownToken { .. })
    ));
    assert!(
        store
            .api_token_by_secret(&created.secret)
            .await
            .unwrap()
            .is_some()
    );
    store
        .revoke_api_token(&acme, created.token.id, "ada@acme.test")
        .await
        .unwrap();
    store
        .revoke_api_token(&acme, created.token.id, "ada@acme.test")
        .await
        .unwrap();
    assert!(
        store
            .api_token_by_secret(&created.secret)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store.api_tokens(&acme).await.unwrap()[0]
            .revoked_ms
            .is_some()
    );
    assert!(matches!(
        store.revoke_api_token(&acme, ApiTokenId(9_999), "x").await,
        Err(AccountError::UnknownToken { .. })
    ));
    let actions: Vec<String> = store
        .audit_events(&acme, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert!(actions.contains(&"api_token.created".to_owned()));
    assert!(actions.contains(&"api_token.revoked".to_owned()));
}

async fn member_roles_change_and_users_map_to_members(store: Store) {
    let (acme, globex) = tenants(&store).await;
    let member = store
        .add_member(&acme, "ada@acme.test", &[], MemberRole::Member)
        .await
        .unwrap();
    store
        .set_member_role(&acme, member, MemberRole::Admin, "cli")
        .await
        .unwrap();
    assert_eq!(
        store.members(&acme).await.unwrap()[0].role,
        MemberRole::Admin
    );
    assert!(
        store
            .set_member_role(&globex, member, MemberRole::Member, "cli")
            .await
            .is_err()
    );
    let user = store
        .create_user(&acme, "ada@acme.test", MemberRole::Member, HASH, "cli")
        .await
        .unwrap();
    let view = store
        .user_by_email(&acme, "ada@acme.test")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(view.id, user);
    assert_eq!(store.member_of_user(&view).await.unwrap(), Some(member));
}

on_both_backends!(
    users_are_unique_and_keep_only_the_hash,
    sessions_are_hashed_expire_and_end,
    api_tokens_are_shown_once_and_revocable,
    member_roles_change_and_users_map_to_members,
);
