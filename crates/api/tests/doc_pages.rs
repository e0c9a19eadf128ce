//! The documentation, held to what the code does:
//!
//! - The examples run. Every ```` ```sh ```` block of the pages in [`RUNNABLE`] runs (but one
//!   marked `<!-- not run: REASON -->` on the line before its fence), page by
//!   page, in one `bash` session against a fresh `jwt-auth serve` (this build, in a temporary
//!   directory, with `jwt-auth` on the `PATH` for the CLI examples). A comment line right
//!   after a command (`# {"id":"…"}`) is output that command must print: each such line must
//!   match a line of the output, in order, `…` standing for any text. A comment after a blank
//!   line is only a comment. `http://127.0.0.1:8080` in a page is the server's address.
//! - No shell or Rust block anywhere in the docs and READMEs is left untested by accident: each
//!   runs here, compiles as a doctest ([`DOCTESTED`]), or says why not with that marker.
//! - The getting-started page starts with the README's two commands, to the letter.
//! - The configuration reference's table is clap's own definitions, rendered
//!   (`UPDATE_DOCS=1` rewrites it when a setting changes).

use crate::common::process;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use clap::CommandFactory;
use process::Server;

/// The pages whose `sh` blocks run, each against its own server.
const RUNNABLE: &[&str] =
    &["docs/getting-started.md", "docs/api.md", "docs/admin-guide.md", "docs/sign-in-for-apps.md"];

/// The pages whose Rust blocks compile as doctests (`cargo test --doc`), and the crate that
/// includes each: a block marked `ignore` there is not compiled, so it needs a reason too.
const DOCTESTED: &[(&str, &str)] = &[("README.md", "crates/jwt-core/src/lib.rs")];

/// The languages of shell and Rust blocks, the ones that must run or say why not.
fn is_code(lang: &str) -> bool {
    let first = lang.split([',', ' ']).next().unwrap_or_default();
    ["sh", "bash", "shell", "console", "zsh", "rust"].contains(&first)
}

/// The blocks of `text` (page `page`) that neither run nor say why not, as `page:line`.
fn unaccounted(page: &str, text: &str) -> Vec<String> {
    fenced(text)
        .into_iter()
        .filter(|b| is_code(&b.lang))
        .filter(|b| match &b.not_run {
            Some(reason) => reason.is_empty(),
            None => {
                let runs = b.lang == "sh" && RUNNABLE.contains(&page);
                let compiles = b.lang == "rust" && DOCTESTED.iter().any(|(p, _)| *p == page);
                !(runs || compiles)
            }
        })
        .map(|b| format!("{page}:{} ```{}", b.line, b.lang))
        .collect()
}

/// The Markdown pages a reader copies commands from: the README, docs/, and the crates' and
/// examples' READMEs.
fn pages() -> Vec<String> {
    let mut pages = vec!["README.md".to_owned()];
    for dir in ["docs", "crates", "examples"] {
        let Ok(entries) = std::fs::read_dir(workspace().join(dir)) else { continue };
        for entry in entries.map_while(Result::ok) {
            let name = entry.file_name().to_string_lossy().into_owned();
            if dir == "docs" && name.ends_with(".md") {
                pages.push(format!("docs/{name}"));
            } else if dir != "docs" && entry.path().join("README.md").is_file() {
                pages.push(format!("{dir}/{name}/README.md"));
            }
        }
    }
    pages.sort();
    pages
}

#[test]
fn every_shell_and_rust_block_runs_or_says_why_not() {
    let missing: Vec<String> =
        pages().iter().flat_map(|page| unaccounted(page, &read(page))).collect();
    assert!(
        missing.is_empty(),
        "these blocks neither run nor carry `<!-- not run: REASON -->` on the line before:\n{}",
        missing.join("\n")
    );
    // Each crate that compiles a page's Rust blocks does include that page.
    for (page, krate) in DOCTESTED {
        let source = read(krate);
        assert!(source.contains(&format!("include_str!(\"../../../{page}\")")), "{krate} {page}");
    }
}

/// The pages whose JavaScript and Python blocks are each quoted from a program the tests run.
const QUOTING: &[&str] = &["docs/sign-in-for-apps.md"];

/// The blocks of `text` (page `page`) that misquote: a block marked `<!-- from: PATH -->` whose
/// text is not in that file (`source` reads it), or, on a page of [`QUOTING`], a JavaScript or
/// Python block without the marker.
fn misquoted(page: &str, text: &str, source: impl Fn(&str) -> Option<String>) -> Vec<String> {
    let mut wrong = Vec::new();
    for block in fenced(text) {
        let at = format!("{page}:{} ```{}", block.line, block.lang);
        match &block.from {
            Some(path) => match source(path) {
                Some(file) if file.contains(&block.text) => {}
                Some(_) => wrong.push(format!("{at}: not the text of {path}")),
                None => wrong.push(format!("{at}: {path} does not exist")),
            },
            None if QUOTING.contains(&page)
                && ["js", "javascript", "python", "py"].contains(&block.lang.as_str()) =>
            {
                wrong.push(format!("{at}: no `<!-- from: PATH -->` on the line before"))
            }
            None => {}
        }
    }
    wrong
}

#[test]
fn quoted_snippets_are_the_text_of_the_tested_programs() {
    let source = |path: &str| std::fs::read_to_string(workspace().join(path)).ok();
    let wrong: Vec<String> =
        pages().iter().flat_map(|page| misquoted(page, &read(page), source)).collect();
    assert!(wrong.is_empty(), "quotes that are not the programs' text:\n{}", wrong.join("\n"));
    let quoted = QUOTING.iter().flat_map(|page| fenced(&read(page))).filter(|b| b.from.is_some());
    assert!(quoted.count() >= 4, "the sign-in page quotes its four kinds of applications");
}

#[test]
fn a_misquoted_snippet_is_caught() {
    let program = |path: &str| (path == "app.js").then(|| "let a = 1;\nlet b = 2;\n".to_owned());
    let page = "docs/sign-in-for-apps.md";
    assert!(misquoted(page, "<!-- from: app.js -->\n```js\nlet b = 2;\n```\n", program).is_empty());
    let changed = "<!-- from: app.js -->\n```js\nlet b = 3;\n```\n";
    assert_eq!(
        misquoted(page, changed, program),
        [format!("{page}:2 ```js: not the text of app.js")]
    );
    let missing = "<!-- from: gone.js -->\n```js\nlet b = 2;\n```\n";
    assert_eq!(misquoted(page, missing, program).len(), 1);
    let unmarked = "```python\nx = 1\n```\n";
    assert_eq!(misquoted(page, unmarked, program).len(), 1);
    assert!(misquoted("docs/other.md", unmarked, program).is_empty(), "other pages may sketch");
}

#[test]
fn a_block_that_neither_runs_nor_says_why_is_caught() {
    let page = "docs/elsewhere.md";
    let unmarked = "Text.\n\n```sh\ncurl x\n```\n\n```rust,ignore\nlet x = 1;\n```\n";
    assert_eq!(
        unaccounted(page, unmarked),
        ["docs/elsewhere.md:3 ```sh", "docs/elsewhere.md:7 ```rust,ignore"]
    );
    let empty_reason = "<!-- not run: -->\n```sh\ncurl x\n```\n";
    assert_eq!(unaccounted(page, empty_reason).len(), 1);
    // The controls: a reason, a block of another language, a runnable page's sh block.
    let marked = "<!-- not run: needs a file of your own -->\n```sh\ncurl x\n```\n";
    assert!(unaccounted(page, marked).is_empty());
    assert!(unaccounted(page, "```toml\nx = 1\n```\n").is_empty());
    assert!(unaccounted("docs/api.md", "```sh\ncurl x\n```\n").is_empty());
    assert!(unaccounted("README.md", "```rust\nlet x = 1;\n```\n").is_empty());
    assert_eq!(unaccounted("README.md", "```rust,ignore\nlet x = 1;\n```\n").len(), 1);
}

/// The settings of the server the examples run against, and of the commands they run: an
/// administrator, keys in the database under the key-encryption key of the file `kek`
/// ([`KEK`]), and a login quota that the examples of one page, run within a minute, stay
/// under, as the pages say.
const EXAMPLE_ENV: &[(&str, &str)] = &[
    ("KEY_ENCRYPTION_KEY_FILE", "kek"),
    ("LOGIN_RATE_LIMIT", "30"),
    ("ADMIN_EMAIL", "admin@example.com"),
    ("ADMIN_PASSWORD", "correct horse battery staple"),
];

/// The key-encryption key the pages keep in the file `kek` of the server's directory.
const KEK: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(page: &str) -> String {
    std::fs::read_to_string(workspace().join(page)).unwrap_or_else(|e| panic!("{page}: {e}"))
}

/// A fenced block of a page: its info string, its text, the line of its opening fence, and the
/// reason given in a `<!-- not run: REASON -->` comment on the line before it, if any.
#[derive(Debug)]
struct Fenced {
    lang: String,
    text: String,
    line: usize,
    not_run: Option<String>,
    /// The file quoted, named in a `<!-- from: PATH -->` comment on the line before.
    from: Option<String>,
}

/// Every fenced block of `page`, in order.
fn fenced(page: &str) -> Vec<Fenced> {
    let mut found = Vec::new();
    let mut current: Option<Fenced> = None;
    let mut previous = "";
    for (index, line) in page.lines().enumerate() {
        let fence = line.trim_start().starts_with("```");
        match (&mut current, fence) {
            (None, true) => {
                let not_run = previous
                    .trim()
                    .strip_prefix("<!-- not run:")
                    .and_then(|rest| rest.strip_suffix("-->"))
                    .map(|reason| reason.trim().to_owned());
                let from = previous
                    .trim()
                    .strip_prefix("<!-- from:")
                    .and_then(|rest| rest.strip_suffix("-->"))
                    .map(|path| path.trim().to_owned());
                current = Some(Fenced {
                    from,
                    lang: line.trim_start().trim_start_matches('`').trim().to_owned(),
                    text: String::new(),
                    line: index + 1,
                    not_run,
                });
            }
            (None, false) => {}
            (Some(_), true) => found.extend(current.take()),
            (Some(block), false) => {
                block.text.push_str(line);
                block.text.push('\n');
            }
        }
        previous = line;
    }
    found
}

/// The fenced blocks of `page` whose info string is `lang`, in order.
fn blocks(page: &str, lang: &str) -> Vec<String> {
    fenced(page).into_iter().filter(|b| b.lang == lang).map(|b| b.text).collect()
}

/// One command (or several lines of commands) and the output lines it must print.
#[derive(Debug, Default)]
struct Step {
    commands: Vec<String>,
    expected: Vec<String>,
}

/// The steps of a block: commands, each followed by its expected output.
fn steps(block: &str) -> Vec<Step> {
    let mut steps = vec![Step::default()];
    // Whether the line before was a command or expected output (then a comment is output).
    let mut after_command = false;
    for line in block.lines() {
        let trimmed = line.trim_start();
        if let Some(output) = trimmed.strip_prefix('#') {
            if after_command {
                let output = output.strip_prefix(' ').unwrap_or(output);
                steps.last_mut().expect("a step").expected.push(output.to_owned());
            }
            continue;
        }
        if trimmed.is_empty() {
            after_command = false;
            continue;
        }
        let last = steps.last_mut().expect("a step");
        if !last.expected.is_empty() {
            steps.push(Step::default());
        }
        steps.last_mut().expect("a step").commands.push(line.to_owned());
        after_command = !line.ends_with('\\');
    }
    steps.retain(|s| !s.commands.is_empty());
    steps
}

/// Whether `line` matches `pattern`, where `…` stands for any text.
fn matches(pattern: &str, line: &str) -> bool {
    let parts: Vec<&str> = pattern.split('…').collect();
    let mut rest = line.trim_end();
    let last = parts.len() - 1;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            let Some(after) = rest.strip_prefix(part) else { return false };
            rest = after;
        } else if i == last {
            return rest.ends_with(part);
        } else {
            let Some(at) = rest.find(part) else { return false };
            rest = &rest[at + part.len()..];
        }
    }
    rest.is_empty()
}

/// The expected lines missing from `output` (each must match a line after the previous).
fn unmatched(expected: &[String], output: &str) -> Vec<String> {
    let mut lines = output.lines();
    let mut missing = Vec::new();
    for pattern in expected {
        if !lines.by_ref().any(|line| matches(pattern, line)) {
            missing.push(pattern.clone());
            lines = "".lines();
        }
    }
    missing
}

/// Runs every `sh` block of `page` against a fresh server; returns the failures.
async fn run_page(page: &str) -> Vec<String> {
    let text = read(page);
    let steps: Vec<Step> = fenced(&text)
        .iter()
        .filter(|b| b.lang == "sh" && b.not_run.is_none())
        .flat_map(|b| steps(&b.text))
        .collect();
    assert!(!steps.is_empty(), "{page} has no sh block");
    let dir = tempfile::tempdir().expect("a directory");
    std::fs::write(dir.path().join("kek"), format!("{KEK}\n")).expect("the KEK file");
    let server = Server::start(dir.path(), EXAMPLE_ENV).await;
    let base = format!("http://{}", server.addr);
    let outputs = dir.path().join("outputs");
    std::fs::create_dir(&outputs).expect("a directory");
    let mut script = String::from("set -uo pipefail\n");
    for (i, step) in steps.iter().enumerate() {
        let commands = step.commands.join("\n").replace("http://127.0.0.1:8080", &base);
        script.push_str(&format!("{{\n{commands}\n}} > {}/{i} 2>&1\n", outputs.display()));
    }
    let bin_dir = Path::new(process::BIN).parent().expect("the binary's directory");
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let mut env: Vec<(&str, &str)> = vec![("PATH", &path), ("HOME", "/nonexistent")];
    env.extend_from_slice(EXAMPLE_ENV);
    let ran = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(dir.path())
        .env_clear()
        .envs(env)
        .output()
        .expect("bash runs");
    let mut failures = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        let output = std::fs::read_to_string(outputs.join(i.to_string())).unwrap_or_default();
        let expected: Vec<String> =
            step.expected.iter().map(|e| e.replace("http://127.0.0.1:8080", &base)).collect();
        let missing = unmatched(&expected, &output);
        if !missing.is_empty() {
            failures.push(format!(
                "{page}: step {i}:\n  $ {}\n  expected {missing:?}\n  got:\n{}",
                step.commands.join("\n    "),
                output.lines().map(|l| format!("    | {l}")).collect::<Vec<_>>().join("\n")
            ));
        }
    }
    if !ran.status.success() && failures.is_empty() {
        failures.push(format!("{page}: bash failed: {}", String::from_utf8_lossy(&ran.stderr)));
    }
    drop(server);
    failures
}

#[tokio::test]
async fn the_documented_examples_print_what_the_pages_say() {
    let mut failures = Vec::new();
    for page in RUNNABLE {
        failures.extend(run_page(page).await);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn the_example_checker_tells_a_wrong_output_apart() {
    // The controls: a step's expectations, and what does and does not satisfy them.
    let parsed =
        steps("# a comment\ncurl -s x \\\n  -d y\n# {\"id\":\"…\",\"ok\":true}\n\necho 2\n# 2\n");
    assert_eq!(parsed.len(), 2, "{parsed:?}");
    assert_eq!(parsed[0].commands, ["curl -s x \\", "  -d y"]);
    assert_eq!(parsed[0].expected, ["{\"id\":\"…\",\"ok\":true}"]);
    assert!(unmatched(&parsed[0].expected, "{\"id\":\"42\",\"ok\":true}\n").is_empty());
    assert!(!unmatched(&parsed[0].expected, "{\"id\":\"42\",\"ok\":false}\n").is_empty());
    assert!(!unmatched(&parsed[1].expected, "20\n").is_empty());
    assert!(matches("HTTP/1.1 401 …", "HTTP/1.1 401 Unauthorized"));
    assert!(!matches("HTTP/1.1 401 …", "HTTP/1.1 200 OK"));
    // Out of order is a miss.
    let expected = ["b".to_owned(), "a".to_owned()];
    assert!(!unmatched(&expected, "a\nb\n").is_empty());
}

#[test]
fn getting_started_begins_with_the_readmes_two_commands() {
    let readme = blocks(&read("README.md"), "sh");
    let page = blocks(&read("docs/getting-started.md"), "sh");
    let first = readme.first().expect("the README's first block");
    assert_eq!(first.lines().filter(|l| !l.trim().is_empty()).count(), 2, "{first}");
    assert_eq!(page.first(), Some(first), "docs/getting-started.md starts elsewhere");
}

/// A table row for every environment variable the command line reads: the variable, its
/// flag, its default and the commands that read it, with clap's help as its meaning.
fn settings_table() -> String {
    struct Setting {
        flag: String,
        default: String,
        help: String,
        commands: Vec<String>,
    }
    fn walk(command: &clap::Command, path: &str, found: &mut BTreeMap<String, Setting>) {
        for arg in command.get_arguments() {
            let Some(env) = arg.get_env() else { continue };
            let env = env.to_string_lossy().into_owned();
            let setting = found.entry(env).or_insert_with(|| Setting {
                flag: format!("`--{}`", arg.get_long().unwrap_or_default()),
                default: match arg.get_default_values() {
                    [] => "unset".into(),
                    [one] if one.is_empty() => "empty".into(),
                    values => values
                        .iter()
                        .map(|v| format!("`{}`", v.to_string_lossy()))
                        .collect::<Vec<_>>()
                        .join(", "),
                },
                help: arg
                    .get_long_help()
                    .or(arg.get_help())
                    .map(|h| h.to_string().split_whitespace().collect::<Vec<_>>().join(" "))
                    .unwrap_or_default()
                    .replace('|', "\\|"),
                commands: Vec::new(),
            });
            setting.commands.push(format!("`{path}`"));
        }
        for sub in command.get_subcommands() {
            let sub_path = if path.is_empty() {
                sub.get_name().to_owned()
            } else {
                format!("{path} {}", sub.get_name())
            };
            walk(sub, &sub_path, found);
        }
    }
    let mut found = BTreeMap::new();
    walk(&jwt_auth_api::Cli::command(), "", &mut found);
    let mut table =
        String::from("| variable | flag | default | read by | meaning |\n|---|---|---|---|---|\n");
    for (env, s) in found {
        table.push_str(&format!(
            "| `{env}` | {} | {} | {} | {} |\n",
            s.flag,
            s.default,
            s.commands.join(", "),
            s.help
        ));
    }
    table
}

const BEGIN: &str = "<!-- settings: generated from the command line's definitions -->\n";
const END: &str = "<!-- settings: end -->";

#[test]
fn the_configuration_reference_is_the_command_lines_own_definitions() {
    let path = workspace().join("docs/configuration.md");
    let page = std::fs::read_to_string(&path).expect("docs/configuration.md");
    let start = page.find(BEGIN).expect("the generated section's start") + BEGIN.len();
    let end = page[start..].find(END).expect("the generated section's end") + start;
    let table = settings_table();
    if std::env::var_os("UPDATE_DOCS").is_some() {
        let updated = format!("{}{table}{}", &page[..start], &page[end..]);
        std::fs::write(&path, updated).expect("docs/configuration.md is written");
        return;
    }
    assert!(
        page[start..end] == table,
        "docs/configuration.md is not the command line's definitions; regenerate it with \
         `UPDATE_DOCS=1 cargo nextest run -p jwt-auth-api --test main \
         doc_pages::the_configuration`"
    );
    // Every setting of the serve command is there (the contract's table among them).
    for env in ["BIND_ADDRESS", "DATABASE_URL", "JWT_ALGORITHM", "TOKEN_EXPIRY", "LOG_FORMAT"] {
        assert!(table.contains(&format!("| `{env}` |")), "{env}");
    }
}

#[tokio::test]
async fn the_api_reference_has_a_section_for_every_operation() {
    let dir = tempfile::tempdir().expect("a directory");
    let server = Server::start(dir.path(), &[]).await;
    let document: serde_json::Value = reqwest::get(server.url("/openapi.json"))
        .await
        .expect("the document")
        .json()
        .await
        .expect("JSON");
    let page = read("docs/api.md");
    let headings: Vec<&str> = page.lines().filter(|l| l.starts_with("### ")).collect();
    let mut missing = Vec::new();
    let paths = document["paths"].as_object().expect("paths");
    for (path, item) in paths {
        for method in item.as_object().expect("a path item").keys() {
            let operation = format!("`{} {path}`", method.to_uppercase());
            if !headings.iter().any(|h| h.contains(&operation)) {
                missing.push(operation);
            }
        }
    }
    assert!(paths.len() >= 25, "{}", paths.len());
    assert!(missing.is_empty(), "docs/api.md has no section for {missing:?}");
}

/// Every command and every flag says what it is for in `--help` (and so in the manual pages
/// and the configuration reference, which come from the same definitions).
#[test]
fn every_command_and_flag_has_help() {
    fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
        let path = format!("{path} {}", command.get_name());
        if command.get_about().is_none_or(|about| about.to_string().trim().is_empty()) {
            missing.push(format!("{path}: no description"));
        }
        for arg in command.get_arguments() {
            let id = arg.get_id().as_str();
            if ["help", "version"].contains(&id) {
                continue;
            }
            if arg.get_help().is_none_or(|help| help.to_string().trim().is_empty()) {
                missing.push(format!("{path} --{}: no help", arg.get_long().unwrap_or(id)));
            }
        }
        for sub in command.get_subcommands() {
            walk(sub, &path, missing);
        }
    }
    let mut missing = Vec::new();
    let command = jwt_auth_api::Cli::command();
    for sub in command.get_subcommands() {
        walk(sub, "jwt-auth", &mut missing);
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}
