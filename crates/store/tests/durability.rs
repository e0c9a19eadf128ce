//! SQLite durability across a crash: a child process (this test binary, run again as a
//! writer) commits users and sessions and reports each on stdout, and is killed with SIGKILL
//! while it keeps writing. Every row it reported committed is there when the file is reopened.
//! (Reopening after a clean close is covered for both backends in `store.rs`.)
#![cfg(unix)]

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};

use chrono::TimeDelta;
use jwt_core::SessionStore;

use crate::common;

/// Set to the database URL when this binary runs as the writer.
const WRITER_ENV: &str = "JWT_STORE_DURABILITY_WRITER";
/// How many commits the parent waits for before it kills the writer.
const BEFORE_KILL: usize = 150;
/// SIGKILL's number on every Unix.
const SIGKILL: i32 = 9;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
}

/// The writer. Does nothing unless the parent test started this binary with `WRITER_ENV`.
#[test]
fn writer_child() {
    let Ok(url) = std::env::var(WRITER_ENV) else {
        return;
    };
    runtime().block_on(async {
        let store = common::connect(&url).await;
        // Bounded, so a child the parent failed to kill still stops by itself.
        for i in 0..20_000 {
            let user = common::user(&store, &format!("user{i}@example.com")).await;
            let session_id = format!("session-{i}");
            common::session(&store, &session_id, &user.id, common::t0(), TimeDelta::days(1)).await;
            println!("committed {} {session_id}", user.id);
        }
    });
}

#[test]
fn sqlite_rows_reported_committed_survive_sigkill() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = format!("sqlite://{}", dir.path().join("store.db").display());
    // Migrate here, so the child is never killed half-way through a migration.
    drop(runtime().block_on(common::connect(&url)));

    let mut child = Command::new(std::env::current_exe().expect("the test binary"))
        .args(["durability::writer_child", "--exact", "--nocapture", "--test-threads=1"])
        .env(WRITER_ENV, &url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the writer starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut committed = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("a line from the writer");
        if let Some(rest) = line.strip_prefix("committed ") {
            let (user_id, session_id) = rest.split_once(' ').expect("two ids");
            committed.push((user_id.to_owned(), session_id.to_owned()));
            if committed.len() == BEFORE_KILL {
                child.kill().expect("SIGKILL");
                break;
            }
        }
    }
    let status = child.wait().expect("the writer ends");
    assert_eq!(committed.len(), BEFORE_KILL, "the writer reported too few commits: {status}");
    assert_eq!(status.signal(), Some(SIGKILL), "killed mid-run, not finished: {status}");

    runtime().block_on(async {
        let store = common::connect(&url).await;
        for (user_id, session_id) in &committed {
            let user = store.user_by_id(user_id).await.expect("query");
            assert!(user.is_some(), "user {user_id} was reported committed");
            let session = store.session(session_id).await.expect("query");
            assert!(session.is_some(), "session {session_id} was reported committed");
        }
        let total = store.list_users(1, 0).await.expect("query").total;
        assert!(total as usize >= BEFORE_KILL, "{total} users");
    });
}
