//! `jwt-auth user import FILE`: users brought in from another system, as JSON lines
//! `{"email", "password_hash", "roles"?}`. The whole file is checked before anything is
//! written, and written in one transaction: a bad line fails the import with its number, and
//! nothing is imported.

use std::collections::{BTreeMap, HashMap};

use jwt_auth_store::{NewUser, PasswordHash};
use serde::Deserialize;

use crate::accounts::{NotARole, Role};
use crate::legacy_hash;

/// The roles of an imported user whose line names none (those of `jwt-auth user add`).
pub const DEFAULT_ROLES: [&str; 1] = ["user"];

/// One line of the file. Unknown members are refused: a misspelt `roles` must not import
/// users without their roles.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    email: String,
    password_hash: String,
    roles: Option<Vec<String>>,
}

/// The users of a file, checked, in file order.
#[derive(Debug)]
pub struct Batch {
    /// The users, their hashes in the form they are stored in.
    pub users: Vec<NewUser>,
    /// The line (numbered from 1) of each user of `users`.
    pub lines: Vec<usize>,
    /// The hash family of each user of `users` (`bcrypt`, `django-pbkdf2_sha256`, …).
    pub families: Vec<&'static str>,
}

impl Batch {
    /// How many users each hash family has, leaving out those whose (normalized) email is in
    /// `skipped`: what an import created, not what the file held.
    pub fn families_created(&self, skipped: &[String]) -> BTreeMap<&'static str, u64> {
        let key = |email: &str| {
            jwt_auth_store::normalize_email(email)
                .unwrap_or_else(|_| email.to_owned())
                .to_lowercase()
        };
        let skipped: std::collections::HashSet<String> =
            skipped.iter().map(|email| key(email)).collect();
        let mut counts = BTreeMap::new();
        for (user, family) in self.users.iter().zip(&self.families) {
            if !skipped.contains(&key(&user.email)) {
                *counts.entry(*family).or_insert(0) += 1;
            }
        }
        counts
    }
}

/// Why a file cannot be imported: the first bad line (numbered from 1) and what is wrong
/// with it. The message never contains the password hash.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    /// A line that cannot be imported: the file fails as a whole.
    #[error("line {line}: {problem}")]
    Line {
        /// Its number, from 1.
        line: usize,
        /// What is wrong with it.
        problem: String,
    },
    /// Not one user in the file.
    #[error("the file holds no users")]
    Empty,
}

/// Checks every line of `text`: each non-blank line one JSON object with a valid `email`, a
/// `password_hash` of a form the server takes ([`legacy_hash::import_form`]) and optional
/// `roles` (1 to 64 characters each, no whitespace); no email twice (without regard to case).
pub fn parse(text: &[u8]) -> Result<Batch, ImportError> {
    let mut users = Vec::new();
    let mut lines = Vec::new();
    let mut families = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (index, raw) in text.split(|&b| b == b'\n').enumerate() {
        let line = index + 1;
        let bad = |problem: String| ImportError::Line { line, problem };
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let raw = std::str::from_utf8(raw).map_err(|_| bad("not UTF-8".into()))?;
        let parsed: Line = serde_json::from_str(raw).map_err(|e| {
            // serde's message can quote the input (a hash among it): keep its kind and column.
            bad(format!("not a JSON object of email, password_hash and roles ({})", describe(&e)))
        })?;
        let email = crate::email::checked(&parsed.email).map_err(|e| bad(format!("email: {e}")))?;
        if let Some(first) = seen.insert(email.to_lowercase(), line) {
            return Err(bad(format!("email `{email}` is also on line {first}")));
        }
        let (hash, family) = legacy_hash::import_form(&parsed.password_hash)
            .map_err(|e| bad(format!("password_hash: {e}")))?;
        let roles = match parsed.roles {
            None => DEFAULT_ROLES.map(str::to_owned).to_vec(),
            Some(roles) => Role::names(Role::parse_all(&roles).map_err(|NotARole(role)| {
                bad(format!("roles: `{role}` is not 1 to 64 characters without whitespace"))
            })?),
        };
        families.push(family);
        users.push(NewUser { email, password_hash: PasswordHash::new(hash), roles });
        lines.push(line);
    }
    if users.is_empty() {
        return Err(ImportError::Empty);
    }
    Ok(Batch { users, lines, families })
}

/// What went wrong in a line's JSON, without quoting it.
fn describe(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let what = match e.classify() {
        Category::Syntax | Category::Eof => "malformed JSON".to_owned(),
        Category::Data => {
            // Data errors name the member ("missing field `email`", "unknown field `role`"),
            // never a value, up to the position suffix.
            let message = e.to_string();
            message.split(" at line ").next().unwrap_or("invalid data").to_owned()
        }
        Category::Io => "unreadable".to_owned(),
    };
    format!("{what} at column {}", e.column())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BCRYPT: &str = "$2b$04$9QDUPpAk3.61ygHPnbnlaeo.BtX3tqfJuIZ0noKv0E8g6CbHkcxxi";
    const ARGON2: &str = "$argon2id$v=19$m=1024,t=1,p=1$x++9d51fe9R3TYnexXeIqQ$bLG6+XovBHXSkbdcmDjagPlwmal1nTKXgoQwefmmalU";
    const DJANGO: &str =
        "pbkdf2_sha256$1000$SmqvCwiiIuZEwi9peYPCFK$DMcDwdtsLSM4GZ6dHoZ1zDkeaPlhgvbjxPmy3sdoEEg=";

    fn line(email: &str, hash: &str, roles: Option<&[&str]>) -> String {
        let mut value = serde_json::json!({"email": email, "password_hash": hash});
        if let Some(roles) = roles {
            value["roles"] = serde_json::json!(roles);
        }
        value.to_string()
    }

    #[test]
    fn a_good_file_gives_every_user_in_order_with_default_roles() {
        let text = [
            line("ann@example.com", BCRYPT, None),
            String::new(),
            line("Bob@Example.com", DJANGO, Some(&["user", "admin"])),
            line("cy@example.com", &format!("argon2{ARGON2}"), None),
        ]
        .join("\r\n");
        let batch = parse(text.as_bytes()).unwrap();
        let emails: Vec<_> = batch.users.iter().map(|u| u.email.as_str()).collect();
        assert_eq!(emails, ["ann@example.com", "Bob@Example.com", "cy@example.com"]);
        assert_eq!(batch.lines, [1, 3, 4], "the blank line is counted, not kept");
        assert_eq!(batch.users[0].roles, ["user"]);
        assert_eq!(batch.users[1].roles, ["user", "admin"]);
        assert_eq!(batch.users[2].password_hash.expose(), ARGON2);
        let families: Vec<_> = batch.families_created(&[]).into_iter().collect();
        assert_eq!(families, [("bcrypt", 1), ("django-argon2", 1), ("django-pbkdf2_sha256", 1)]);
        // What an import skipped is not counted: compared as the store normalizes emails.
        let families: Vec<_> =
            batch.families_created(&["bob@example.com".into()]).into_iter().collect();
        assert_eq!(families, [("bcrypt", 1), ("django-argon2", 1)]);
    }

    #[test]
    fn the_first_bad_line_is_named_and_the_hash_never_quoted() {
        let good = line("ann@example.com", BCRYPT, None);
        let cases: Vec<(String, &str)> = vec![
            (line("not an email", BCRYPT, None), "line 2: email:"),
            (
                line("bob@example.com", "md5$abc$0123", None),
                "line 2: password_hash: not a password hash form",
            ),
            (
                line("ANN@example.com", DJANGO, None),
                "line 2: email `ANN@example.com` is also on line 1",
            ),
            (line("bob@example.com", BCRYPT, Some(&["has space"])), "line 2: roles: `has space`"),
            (line("bob@example.com", BCRYPT, Some(&[""])), "line 2: roles: ``"),
            (
                format!(
                    r#"{{"email":"bob@example.com","password_hash":"{DJANGO}","role":["admin"]}}"#
                ),
                "unknown field `role`",
            ),
            (r#"{"email":"bob@example.com"}"#.to_owned(), "missing field `password_hash`"),
            (
                format!(r#"{{"email":"bob@example.com","password_hash":"{DJANGO}""#),
                "line 2: not a JSON object",
            ),
            (format!(r#"["bob@example.com","{DJANGO}"]"#), "line 2: not a JSON object"),
        ];
        for (bad, expected) in cases {
            let text = format!("{good}\n{bad}\n{good}");
            let e = parse(text.as_bytes()).expect_err(&bad).to_string();
            assert!(e.contains(expected), "{bad}: {e}");
            assert!(!e.contains("DMcDwdts") && !e.contains("9QDUPpAk3"), "{e}");
        }
        // Positive control: the good line alone.
        assert_eq!(parse(good.as_bytes()).unwrap().users.len(), 1);
    }

    #[test]
    fn non_utf8_and_empty_files_are_refused() {
        let mut text = line("ann@example.com", BCRYPT, None).into_bytes();
        text.extend_from_slice(b"\n{\"email\": \"\xff\"}\n");
        assert_eq!(
            parse(&text).unwrap_err(),
            ImportError::Line { line: 2, problem: "not UTF-8".into() }
        );
        assert_eq!(parse(b"").unwrap_err(), ImportError::Empty);
        assert_eq!(parse(b"\n  \n\r\n").unwrap_err(), ImportError::Empty);
    }
}
