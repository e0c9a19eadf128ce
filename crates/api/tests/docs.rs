//! The documentation's claims that name a test: every `` `file.rs: test_name` `` in the
//! pages of [`PAGES`] names a test function that exists in a file of that name in the
//! workspace, so a page cannot point at a test that was renamed or removed.

use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every `.rs` file under `dir`, recursively.
fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("a readable directory").flatten() {
        let path = entry.path();
        if path.is_dir() {
            if !path.ends_with("target") && !path.ends_with(".git") {
                rust_files(&path, found);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

/// The `file.rs: name` references of a page.
fn references(page: &str) -> Vec<(String, String)> {
    page.split('`')
        .skip(1)
        .step_by(2)
        .filter_map(|span| {
            let (file, name) = span.split_once(": ")?;
            let plausible = file.ends_with(".rs")
                && !name.is_empty()
                && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            plausible.then(|| (file.to_owned(), name.to_owned()))
        })
        .collect()
}

/// The pages that name tests, and how many each names at least.
const PAGES: &[(&str, usize)] = &[
    ("docs/security.md", 30),
    ("docs/security-practices.md", 8),
    ("docs/getting-started.md", 1),
    ("docs/api.md", 1),
    ("docs/admin-guide.md", 1),
    ("docs/sign-in-for-apps.md", 1),
    ("docs/configuration.md", 1),
    ("docs/migrating-users.md", 1),
];

#[test]
fn every_test_named_in_the_security_pages_exists() {
    let root = workspace();
    let mut named = Vec::new();
    for (page, least) in PAGES {
        let text = std::fs::read_to_string(root.join(page)).expect(page);
        let found = references(&text);
        assert!(found.len() >= *least, "{page} names tests as `file.rs: test`: {found:?}");
        named.extend(found.into_iter().map(|(file, name)| (page, file, name)));
    }
    let mut files = Vec::new();
    for dir in ["crates", "examples"] {
        rust_files(&root.join(dir), &mut files);
    }
    let mut missing = Vec::new();
    for (page, file, name) in &named {
        let found = files.iter().filter(|p| p.ends_with(file)).any(|p| {
            let text = std::fs::read_to_string(p).unwrap_or_default();
            text.contains(&format!("fn {name}("))
        });
        if !found {
            missing.push(format!("{page}: {file}: {name}"));
        }
    }
    assert!(missing.is_empty(), "pages name tests that do not exist: {missing:?}");
}

#[test]
fn a_misnamed_test_is_caught() {
    // The control: a reference to nothing is reported, so the check above can fail.
    let refs = references("see `tokens.rs: no_such_test_anywhere` and `not a reference`");
    assert_eq!(refs, [("tokens.rs".to_owned(), "no_such_test_anywhere".to_owned())]);
    let root = workspace();
    let mut files = Vec::new();
    rust_files(&root.join("crates"), &mut files);
    let exists = files.iter().filter(|p| p.ends_with("tokens.rs")).any(|p| {
        std::fs::read_to_string(p).unwrap_or_default().contains("fn no_such_test_anywhere(")
    });
    assert!(!exists);
}
