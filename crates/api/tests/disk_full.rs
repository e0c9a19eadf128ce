//! SQLite on a full disk: writes are answered 503 `unavailable` with `Retry-After` (never a
//! 500, never a dropped connection), what was committed stays, reads keep working, and writes
//! work again by themselves once space returns; the file passes SQLite's integrity check.
//! The database lives on a small tmpfs mounted for the test (root only: elsewhere the test is
//! skipped with a loud line, except under `CI`, where it fails).

use crate::common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use reqwest::StatusCode;
use serde_json::json;

use common::{PASSWORD, TestApp, TestDb, send};

/// A size-limited tmpfs, unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().expect("a mount point");
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        if mounted {
            return Some(Tmpfs { dir });
        }
        assert!(std::env::var_os("CI").is_none(), "CI is set, but a tmpfs could not be mounted");
        eprintln!("SKIPPED: mounting a tmpfs needs root");
        None
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

/// Fills the file system with one file until it refuses another byte.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).expect("the filler");
    let chunk = vec![0u8; 64 * 1024];
    loop {
        if file.write_all(&chunk).and_then(|()| file.sync_all()).is_err() {
            // Then byte by byte, so not even a page is left.
            while file.write_all(&[0]).and_then(|()| file.sync_all()).is_ok() {}
            return path;
        }
    }
}

async fn register(app: &TestApp, email: &str) -> common::Reply {
    send(app.post("/auth/register").json(&json!({"email": email, "password": PASSWORD}))).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_is_503_loses_nothing_and_recovers() {
    let Some(fs) = Tmpfs::mount("8m") else { return };
    let url = format!("sqlite://{}", fs.path().join("jwt-auth.db").display());
    let app = TestApp::start(TestDb::sqlite_at(&url)).await;
    app.register("alice@example.com").await;
    let alice = app.login("alice@example.com").await;

    let filler = fill(fs.path());
    // SQLite may still have room in pages it holds; the writes that need more are refused.
    let mut refused = None;
    for n in 0..300 {
        let reply = register(&app, &format!("user{n}@example.com")).await;
        match reply.status {
            StatusCode::CREATED => continue,
            StatusCode::SERVICE_UNAVAILABLE => {
                refused = Some(reply);
                break;
            }
            other => panic!("a full disk answered {other}: {}", reply.text),
        }
    }
    let refused = refused.expect("a write on a full disk is refused");
    refused.assert_error(StatusCode::SERVICE_UNAVAILABLE, "unavailable");
    assert_eq!(refused.header("retry-after"), Some("1"));
    // What was committed is still there, and reads work.
    app.assert_accepted(&alice.access).await;
    let me = app.me(&alice.access).await;
    assert_eq!(me.body["email"], "alice@example.com", "{}", me.text);

    // Space returns: writes work again, with no restart.
    std::fs::remove_file(&filler).expect("the filler goes");
    let bob = register(&app, "bob@example.com").await;
    assert_eq!(bob.status, StatusCode::CREATED, "{}", bob.text);
    app.login("alice@example.com").await;
    drop(app);

    use diesel::{Connection, QueryableByName, RunQueryDsl, SqliteConnection};
    #[derive(QueryableByName)]
    struct Check {
        #[diesel(sql_type = diesel::sql_types::Text)]
        integrity_check: String,
    }
    let mut conn = SqliteConnection::establish(url.trim_start_matches("sqlite://")).expect("opens");
    let check: Vec<Check> =
        diesel::sql_query("PRAGMA integrity_check").load(&mut conn).expect("the check runs");
    assert_eq!(check.iter().map(|c| c.integrity_check.as_str()).collect::<Vec<_>>(), ["ok"]);
}
