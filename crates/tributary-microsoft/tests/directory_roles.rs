//! Administrators from Graph's directory roles against the Microsoft 365 emulator: the
//! Global Administrator role's members are the accounts marked `is_admin`, every other
//! account is not, and an app without a role-reading permission still lists its users,
//! with nobody marked.

mod common;

use common::Emulator;
use std::collections::BTreeSet;

fn admins_in_truth(emulator: &Emulator) -> BTreeSet<String> {
    let tenant = emulator.running.state.tenant();
    tenant
        .users
        .iter()
        .filter(|u| u.global_admin && !u.deleted)
        .map(|u| u.id.clone())
        .collect()
}

#[tokio::test]
async fn global_administrators_are_marked_admin_and_nobody_else() {
    let emulator = Emulator::start().await;
    let expected = admins_in_truth(&emulator);
    assert!(!expected.is_empty(), "the organization has administrators");
    let users = emulator
        .connector()
        .directory()
        .with_page_size(2)
        .list_users()
        .await
        .unwrap();
    assert!(users.len() > expected.len(), "and users who are not");
    let marked: BTreeSet<String> = users
        .iter()
        .filter(|u| u.to_account().is_admin)
        .map(|u| u.id.clone())
        .collect();
    assert_eq!(marked, expected);
}

#[tokio::test]
async fn without_a_role_reading_permission_users_still_list_and_nobody_is_admin() {
    let emulator = Emulator::start().await;
    {
        let mut identity = emulator.running.state.identity_mut();
        let roles = identity
            .principals
            .get_mut(&emulator.running.app.client_id)
            .expect("the app has consent");
        assert!(roles.remove("RoleManagement.Read.Directory"));
        identity.expire_tokens();
    }
    let directory = emulator.connector().directory();
    let admins = directory.global_admin_ids().await.unwrap();
    assert!(admins.is_empty(), "{admins:?}");
    let users = directory.list_users().await.unwrap();
    assert!(!users.is_empty());
    assert!(users.iter().all(|u| !u.to_account().is_admin));
}
