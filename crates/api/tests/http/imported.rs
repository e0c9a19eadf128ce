//! Users imported from another system (`jwt-auth user import`, contract v2): a user of every
//! hash family, the hash made by that family's own library (Django, passlib, Werkzeug, the
//! `bcrypt` package, argon2-cffi: `scripts/legacy-hash-vectors.py`), logs in with the old
//! password and with no other, and the first successful login replaces the hash with today's
//! argon2id hash, which the next logins use. The CLI that reads the file is tested in
//! `processes.rs`.

use jwt_auth_service::passwords::is_current;
use reqwest::StatusCode;
use serde::Deserialize;

use crate::common::{Pair, TestApp, TestDb};
use crate::http_tests;

http_tests!(
    every_imported_hash_family_logs_in_with_its_old_password_and_is_upgraded_at_the_first_login,
    a_refused_login_leaves_an_imported_hash_as_it_is,
);

#[derive(Deserialize)]
struct Vector {
    family: String,
    made_by: String,
    password: String,
    hash: String,
}

/// The fixture's users: an email each, and the import file of them all.
fn vectors() -> (Vec<(String, Vector)>, String) {
    let vectors: Vec<(String, Vector)> = include_str!("../fixtures/legacy-hashes.jsonl")
        .lines()
        .enumerate()
        .map(|(i, line)| {
            let v: Vector = serde_json::from_str(line).expect("a vector");
            (format!("{i}-{}@example.com", v.family.replace('_', "-")), v)
        })
        .collect();
    let file: Vec<String> = vectors
        .iter()
        .map(|(email, v)| serde_json::json!({"email": email, "password_hash": v.hash}).to_string())
        .collect();
    (vectors, file.join("\n"))
}

async fn stored_hash(app: &TestApp, email: &str) -> String {
    let user = app.state.store.user_by_email(email).await.expect("a query").expect("the user");
    user.password_hash.expose().to_owned()
}

async fn import(app: &TestApp, file: &str) {
    let batch = jwt_auth_service::import::parse(file.as_bytes()).expect("the fixture imports");
    let done = app
        .state
        .store
        .import_users(&batch.users, app.now(), jwt_auth_store::ExistingEmails::Refuse)
        .await
        .expect("imported");
    assert_eq!(done.created as usize, batch.users.len());
}

async fn every_imported_hash_family_logs_in_with_its_old_password_and_is_upgraded_at_the_first_login(
    db: TestDb,
) {
    let app = TestApp::start(db).await;
    let (vectors, file) = vectors();
    import(&app, &file).await;
    for (email, v) in &vectors {
        let what = format!("{} made by {}", v.family, v.made_by);
        let imported = stored_hash(&app, email).await;
        assert!(!is_current(&imported), "{what}: stored as imported");

        let pair = Pair::from_reply(&app.try_login(email, &v.password).await);
        app.assert_accepted(&pair.access).await;
        let upgraded = stored_hash(&app, email).await;
        assert!(is_current(&upgraded), "{what}: upgraded at the first login");
        assert_ne!(upgraded, imported);

        // The new hash is the password's: the same password logs in, another does not.
        let again = app.try_login(email, &v.password).await;
        assert_eq!(again.status, StatusCode::OK, "{what}: second login: {}", again.text);
        let wrong = app.try_login(email, &format!("{}x", v.password)).await;
        wrong.assert_error(StatusCode::UNAUTHORIZED, "invalid_credentials");
        assert_eq!(stored_hash(&app, email).await, upgraded, "{what}: upgraded once");
    }
}

async fn a_refused_login_leaves_an_imported_hash_as_it_is(db: TestDb) {
    let app = TestApp::start(db).await;
    let (vectors, file) = vectors();
    import(&app, &file).await;
    // One user per family is enough here.
    let mut seen = std::collections::HashSet::new();
    for (email, v) in vectors.iter().filter(|(_, v)| seen.insert(v.family.clone())) {
        let imported = stored_hash(&app, email).await;
        for wrong in [&v.password[1..], &v.password.to_uppercase()] {
            let reply = app.try_login(email, wrong).await;
            reply.assert_error(StatusCode::UNAUTHORIZED, "invalid_credentials");
        }
        assert_eq!(stored_hash(&app, email).await, imported, "{}: unchanged", v.family);
        // Positive control: the right password still logs in.
        let reply = app.try_login(email, &v.password).await;
        assert_eq!(reply.status, StatusCode::OK, "{}: {}", v.family, reply.text);
    }
}
