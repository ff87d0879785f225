//! Console accounts, sessions and API tokens, on SQLite and PostgreSQL: only hashes are
//! stored, sessions expire, revoked tokens stop working, and nothing crosses tenants.
//! An account's role and active flag decide access at every lookup; disabling ends its
//! sessions and tokens at once; a tenant always keeps an active admin.

mod common;

use sqlx::Row;
use tributary_store::{
    AccountError, ApiTokenId, MemberRole, NewApiToken, NewSession, Store, TenantId, UserId,
    token_hash,
};

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

async fn users_map_to_members(store: Store) {
    let (acme, _globex) = tenants(&store).await;
    let member = store
        .add_member(&acme, "ada@acme.test", &[], MemberRole::Member)
        .await
        .unwrap();
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

/// An account of `tenant` with a live session and API token.
struct Signed {
    id: UserId,
    session: NewSession,
    token: NewApiToken,
}

async fn signed(store: &Store, tenant: &TenantId, email: &str, role: MemberRole) -> Signed {
    let id = store
        .create_user(tenant, email, role, HASH, "cli")
        .await
        .unwrap();
    let session = store.create_session(tenant, id, 60_000).await.unwrap();
    let token = store
        .create_api_token(tenant, id, "crm", "cli")
        .await
        .unwrap();
    Signed { id, session, token }
}

async fn session_role(store: &Store, signed: &Signed) -> Option<MemberRole> {
    store
        .session_by_token(&signed.session.token)
        .await
        .unwrap()
        .map(|s| s.user.role)
}

async fn token_role(store: &Store, signed: &Signed) -> Option<MemberRole> {
    store
        .api_token_by_secret(&signed.token.secret)
        .await
        .unwrap()
        .map(|a| a.user.role)
}

async fn disabling_ends_sessions_and_tokens_at_once(store: Store) {
    let (acme, _) = tenants(&store).await;
    let _ada = signed(&store, &acme, "ada@acme.test", MemberRole::Admin).await;
    let bob = signed(&store, &acme, "bob@acme.test", MemberRole::Admin).await;
    assert_eq!(session_role(&store, &bob).await, Some(MemberRole::Admin));
    let disabled = store
        .set_user_active(&acme, bob.id, false, "ada@acme.test")
        .await
        .unwrap();
    assert!(!disabled.active);
    assert_eq!(session_role(&store, &bob).await, None, "the session ended");
    assert_eq!(token_role(&store, &bob).await, None, "the token stopped");
    let sessions: i64 = sqlx::query("SELECT COUNT(*) FROM sessions WHERE user_id = $1")
        .bind(bob.id.0)
        .fetch_one(store.pool())
        .await
        .unwrap()
        .get(0);
    assert_eq!(sessions, 0, "sessions are deleted, not just hidden");
    let tokens = store.api_tokens(&acme).await.unwrap();
    let bobs = tokens.iter().find(|t| t.id == bob.token.token.id).unwrap();
    assert!(bobs.revoked_ms.is_some(), "the token is revoked");
    // A disabled account cannot sign in or get a session or token.
    assert!(
        store
            .user_credentials("bob@acme.test")
            .await
            .unwrap()
            .is_none()
    );
    assert!(matches!(
        store.create_session(&acme, bob.id, 60_000).await,
        Err(AccountError::Disabled { .. })
    ));
    assert!(matches!(
        store.create_api_token(&acme, bob.id, "x", "cli").await,
        Err(AccountError::Disabled { .. })
    ));
    let listed = store.users(&acme).await.unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|u| (u.email.as_str(), u.active))
            .collect::<Vec<_>>(),
        [("ada@acme.test", true), ("bob@acme.test", false)]
    );
    // Enabled again, it signs in; its old token stays revoked.
    store
        .set_user_active(&acme, bob.id, true, "ada@acme.test")
        .await
        .unwrap();
    assert!(
        store
            .user_credentials("bob@acme.test")
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(token_role(&store, &bob).await, None);
    let audit = store.audit_events(&acme, 20).await.unwrap();
    let disabled = audit
        .iter()
        .find(|e| e.action == "account.disabled")
        .unwrap();
    assert_eq!(disabled.actor, "ada@acme.test");
    assert_eq!(disabled.subject.as_deref(), Some("bob@acme.test"));
    assert_eq!(disabled.detail["tokens_revoked"], 1);
    assert!(audit.iter().any(|e| e.action == "account.enabled"));
}

async fn a_demotion_holds_from_the_next_request(store: Store) {
    let (acme, _) = tenants(&store).await;
    let _ada = signed(&store, &acme, "ada@acme.test", MemberRole::Admin).await;
    let bob = signed(&store, &acme, "bob@acme.test", MemberRole::Admin).await;
    assert_eq!(token_role(&store, &bob).await, Some(MemberRole::Admin));
    let demoted = store
        .set_user_role(&acme, bob.id, MemberRole::Member, "ada@acme.test")
        .await
        .unwrap();
    assert_eq!(demoted.role, MemberRole::Member);
    // The same session and token, read again: a member's.
    assert_eq!(session_role(&store, &bob).await, Some(MemberRole::Member));
    assert_eq!(token_role(&store, &bob).await, Some(MemberRole::Member));
    store
        .set_user_role(&acme, bob.id, MemberRole::Admin, "ada@acme.test")
        .await
        .unwrap();
    assert_eq!(session_role(&store, &bob).await, Some(MemberRole::Admin));
    let audit = store.audit_events(&acme, 20).await.unwrap();
    let role = audit.iter().find(|e| e.action == "account.role").unwrap();
    assert_eq!(role.subject.as_deref(), Some("bob@acme.test"));
    assert_eq!(role.detail["to"], "admin");
}

async fn the_last_active_admin_cannot_be_taken_away(store: Store) {
    let (acme, globex) = tenants(&store).await;
    let ada = signed(&store, &acme, "ada@acme.test", MemberRole::Admin).await;
    let last = |result: Result<_, AccountError>| matches!(result, Err(AccountError::LastAdmin { email, .. }) if email == "ada@acme.test");
    assert!(last(
        store
            .set_user_role(&acme, ada.id, MemberRole::Member, "cli")
            .await
    ));
    assert!(last(
        store.set_user_active(&acme, ada.id, false, "cli").await
    ));
    assert!(last(store.remove_user(&acme, ada.id, "cli").await));
    // Nothing changed.
    assert_eq!(session_role(&store, &ada).await, Some(MemberRole::Admin));
    assert_eq!(token_role(&store, &ada).await, Some(MemberRole::Admin));
    // A disabled admin does not count; another tenant's admins do not either.
    let bob = store
        .create_user(&acme, "bob@acme.test", MemberRole::Admin, HASH, "cli")
        .await
        .unwrap();
    store
        .set_user_active(&acme, bob, false, "cli")
        .await
        .unwrap();
    store
        .create_user(&globex, "gil@globex.test", MemberRole::Admin, HASH, "cli")
        .await
        .unwrap();
    assert!(last(
        store
            .set_user_role(&acme, ada.id, MemberRole::Member, "cli")
            .await
    ));
    // With a second active admin, the first may go.
    store
        .set_user_active(&acme, bob, true, "cli")
        .await
        .unwrap();
    store
        .set_user_role(&acme, ada.id, MemberRole::Member, "cli")
        .await
        .unwrap();
    assert!(matches!(
        store.remove_user(&acme, bob, "cli").await,
        Err(AccountError::LastAdmin { .. })
    ));
}

async fn concurrent_demotions_leave_an_admin(store: Store) {
    for round in 0..8 {
        let tenant = TenantId::new(format!("race{round}"));
        store.create_tenant(&tenant, "Race").await.unwrap();
        let mut ids = Vec::new();
        for name in ["a", "b"] {
            let email = format!("{name}@race{round}.test");
            let id = store
                .create_user(&tenant, &email, MemberRole::Admin, HASH, "cli")
                .await
                .unwrap();
            ids.push(id);
        }
        // Each demotion alone would pass; together one must see the other's.
        let (first, second) = tokio::join!(
            store.set_user_role(&tenant, ids[0], MemberRole::Member, "cli"),
            store.set_user_role(&tenant, ids[1], MemberRole::Member, "cli"),
        );
        let refused = [&first, &second]
            .iter()
            .filter(|r| matches!(r, Err(AccountError::LastAdmin { .. })))
            .count();
        assert_eq!(refused, 1, "{first:?} {second:?}");
        let admins = store
            .users(&tenant)
            .await
            .unwrap()
            .into_iter()
            .filter(|u| u.role == MemberRole::Admin && u.active)
            .count();
        assert_eq!(admins, 1);
    }
}

async fn another_tenants_account_is_unknown(store: Store) {
    let (acme, globex) = tenants(&store).await;
    let _ada = signed(&store, &acme, "ada@acme.test", MemberRole::Admin).await;
    let gil = signed(&store, &globex, "gil@globex.test", MemberRole::Admin).await;
    let _hal = signed(&store, &globex, "hal@globex.test", MemberRole::Admin).await;
    let unknown = |result: Result<_, AccountError>| matches!(result, Err(AccountError::UnknownUser { tenant, .. }) if tenant == "acme");
    assert!(store.user(&acme, gil.id).await.unwrap().is_none());
    assert!(store.user(&globex, gil.id).await.unwrap().is_some());
    assert!(unknown(
        store
            .set_user_role(&acme, gil.id, MemberRole::Member, "ada")
            .await
    ));
    assert!(unknown(
        store.set_user_active(&acme, gil.id, false, "ada").await
    ));
    assert!(unknown(
        store
            .reset_user_password(&acme, gil.id, HASH, true, "ada")
            .await
    ));
    assert!(unknown(store.remove_user(&acme, gil.id, "ada").await));
    assert!(unknown(
        store.remove_user(&acme, UserId(987_654), "ada").await
    ));
    assert_eq!(session_role(&store, &gil).await, Some(MemberRole::Admin));
    assert_eq!(token_role(&store, &gil).await, Some(MemberRole::Admin));
    assert!(
        store
            .audit_events(&globex, 50)
            .await
            .unwrap()
            .iter()
            .all(|e| !e.action.starts_with("account.") || e.action == "account.created")
    );
}

async fn a_reset_password_ends_sessions_and_is_audited_without_it(store: Store) {
    let (acme, _) = tenants(&store).await;
    let _ada = signed(&store, &acme, "ada@acme.test", MemberRole::Admin).await;
    let bob = signed(&store, &acme, "bob@acme.test", MemberRole::Member).await;
    let new_hash =
        "$argon2id$v=19$m=19456,t=2,p=1$bmV3c2FsdG5ld3NhbHQ$bmV3aGFzaG5ld2hhc2huZXdoYXNobmV3aGFzaA";
    store
        .reset_user_password(&acme, bob.id, new_hash, true, "ada@acme.test")
        .await
        .unwrap();
    assert_eq!(session_role(&store, &bob).await, None);
    assert_eq!(
        store
            .user_credentials("bob@acme.test")
            .await
            .unwrap()
            .unwrap()
            .password_hash,
        new_hash
    );
    let audit = store.audit_events(&acme, 20).await.unwrap();
    let reset = audit
        .iter()
        .find(|e| e.action == "account.password_reset")
        .unwrap();
    assert_eq!(reset.subject.as_deref(), Some("bob@acme.test"));
    assert_eq!(reset.detail["generated"], true);
    assert!(
        !reset.detail.to_string().contains("argon2"),
        "{}",
        reset.detail
    );
}

async fn a_removed_account_leaves_its_audit_and_frees_its_email(store: Store) {
    let (acme, _) = tenants(&store).await;
    let _ada = signed(&store, &acme, "ada@acme.test", MemberRole::Admin).await;
    let bob = signed(&store, &acme, "bob@acme.test", MemberRole::Admin).await;
    let removed = store
        .remove_user(&acme, bob.id, "ada@acme.test")
        .await
        .unwrap();
    assert_eq!(removed.email, "bob@acme.test");
    assert_eq!(session_role(&store, &bob).await, None);
    assert_eq!(token_role(&store, &bob).await, None);
    assert!(store.user(&acme, bob.id).await.unwrap().is_none());
    assert!(
        store
            .api_tokens(&acme)
            .await
            .unwrap()
            .iter()
            .all(|t| t.user_email != "bob@acme.test")
    );
    let audit = store.audit_events(&acme, 20).await.unwrap();
    let event = audit
        .iter()
        .find(|e| e.action == "account.removed")
        .unwrap();
    assert_eq!(event.subject.as_deref(), Some("bob@acme.test"));
    assert_eq!(event.detail["tokens_revoked"], 1);
    assert!(
        audit
            .iter()
            .any(|e| e.action == "api_token.created"
                && e.subject.as_deref() == Some("bob@acme.test")),
        "what the account did stays"
    );
    let again = store
        .create_user(
            &acme,
            "bob@acme.test",
            MemberRole::Member,
            HASH,
            "ada@acme.test",
        )
        .await
        .unwrap();
    // (SQLite may give the new account the removed one's id: rowids of the last row
    // are reused. Forms and tools name the account by email too.)
    assert!(store.user(&acme, again).await.unwrap().unwrap().active);
    assert_eq!(
        store
            .account_by_email("BOB@acme.test")
            .await
            .unwrap()
            .unwrap()
            .role,
        MemberRole::Member
    );
}

async fn only_active_admins_are_told_of_capture(store: Store) {
    let (acme, globex) = tenants(&store).await;
    let _ada = signed(&store, &acme, "ada@acme.test", MemberRole::Admin).await;
    let bob = signed(&store, &acme, "bob@acme.test", MemberRole::Admin).await;
    let _cy = signed(&store, &acme, "cy@acme.test", MemberRole::Member).await;
    let _gil = signed(&store, &globex, "gil@globex.test", MemberRole::Admin).await;
    store
        .set_user_active(&acme, bob.id, false, "ada@acme.test")
        .await
        .unwrap();
    assert_eq!(
        store.active_admin_emails(&acme).await.unwrap(),
        vec!["ada@acme.test".to_owned()]
    );
}

on_both_backends!(
    users_are_unique_and_keep_only_the_hash,
    sessions_are_hashed_expire_and_end,
    api_tokens_are_shown_once_and_revocable,
    users_map_to_members,
    disabling_ends_sessions_and_tokens_at_once,
    a_demotion_holds_from_the_next_request,
    the_last_active_admin_cannot_be_taken_away,
    concurrent_demotions_leave_an_admin,
    another_tenants_account_is_unknown,
    a_reset_password_ends_sessions_and_is_audited_without_it,
    a_removed_account_leaves_its_audit_and_frees_its_email,
    only_active_admins_are_told_of_capture,
);
