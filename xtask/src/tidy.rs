//! Checks of the architecture invariants (ARCHITECTURE.md), as an ordinary test.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Which workspace crates each crate may depend on (normal dependencies).
const ALLOWED_DEPS: &[(&str, &[&str])] = &[
    ("model", &[]),
    ("render", &["model"]),
    ("store", &["model"]),
    ("host", &[]),
    ("engine", &["model", "render", "store", "host"]),
    ("web", &["engine", "model"]),
    ("fjord", &["engine", "model", "web"]),
];

/// What the web crate may ask of a `Fjord` itself: acting as a user, signing in, and whether
/// it can work at all (`/healthz`, which names no object).
const WEB_MAY_CALL: &[&str] = &[
    "health",
    "acting",
    "login",
    "login_delay",
    "login_with_link",
    "logout",
    "logout_everywhere",
    "session",
    "token_user",
    "login_link_url",
];

/// Tokens that read the machine fjord runs on. Task scripts and application kinds read the
/// machine of the task's server through `host::Reads` (the fjord host's own files through
/// `LocalReads`, by name), so that a task on a remote server never decides from this one's.
const READS_HERE: &[&str] = &[
    ".exists()",
    ".is_dir()",
    ".is_file()",
    "fs::",
    "host::read_head",
    "host::list_subdirs",
    "host::list_files",
    "host::user_exists",
];

/// Tokens that mean "touches the machine"; only `host` may use them in its source.
const HOST_ONLY: &[&str] = &[
    "Command::new",
    "fs::write",
    "fs::remove",
    "fs::create_dir",
    "fs::rename",
    "set_permissions",
    "File::create",
    "OpenOptions",
    "UnixDatagram",
    "TcpStream",
    "chown",
    "process::exit",
];

pub fn run(root: &Path) -> Result<(), Vec<String>> {
    let mut problems = Vec::new();
    let workspace_crates: Vec<&str> = ALLOWED_DEPS.iter().map(|(c, _)| *c).collect();
    let mut found_crates = Vec::new();
    for entry in std::fs::read_dir(root.join("crates")).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        found_crates.push(name.clone());
        let Some((_, allowed)) = ALLOWED_DEPS.iter().find(|(c, _)| *c == name) else {
            problems.push(format!(
                "crates/{name} is not in tidy's dependency rules (ALLOWED_DEPS)"
            ));
            continue;
        };
        let manifest = std::fs::read_to_string(entry.path().join("Cargo.toml")).unwrap();
        for dep in dependencies(&manifest) {
            if workspace_crates.contains(&dep.as_str()) && !allowed.contains(&dep.as_str()) {
                problems.push(format!(
                    "crates/{name} depends on {dep}, which the layering forbids"
                ));
            }
        }
        if name != "host" {
            for (file, text) in sources(&entry.path().join("src")) {
                for token in HOST_ONLY {
                    if text.contains(token) && !(name == "fjord" && *token == "process::exit") {
                        problems.push(format!(
                            "{} uses {token}: only crates/host touches the machine",
                            file.display()
                        ));
                    }
                }
            }
        }
    }
    // Invariant 34: scripts and kinds read a machine only through the task's `Reads`.
    for dir in ["crates/engine/src/scripts", "crates/engine/src/kinds"] {
        for (file, text) in sources(&root.join(dir)) {
            let name = file.file_name().unwrap_or_default().to_string_lossy();
            if name.ends_with("tests.rs") {
                continue;
            }
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            for token in READS_HERE {
                if code.contains(token) {
                    problems.push(format!(
                        "{} uses {token}: a task reads its server's machine through Steps::reads \
                         (host::Reads), which may be a remote server",
                        file.display()
                    ));
                }
            }
        }
    }
    // Invariant 10: every child process is started by `child_command`, which ties its life
    // to the dispatcher's.
    for (file, text) in sources(&root.join("crates/host/src")) {
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        let name = file.file_name().unwrap_or_default().to_string_lossy();
        let test_file = name.ends_with("tests.rs");
        if !test_file && name != "process.rs" && code.contains("Command::new(") {
            problems.push(format!(
                "{} starts a process with Command::new: use process::child_command, so that \
                 it dies with its dispatcher",
                file.display()
            ));
        }
    }
    // Invariant 15: the panel and the API reach the use cases only through `engine::acting`
    // (and signing in through `engine::auth`): a handler's `Fjord` (always named `f`) is
    // asked for nothing else.
    for (file, text) in sources(&root.join("crates/web/src")) {
        for (at, _) in text.match_indices("f.") {
            let before = text[..at].chars().next_back();
            if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.') {
                continue;
            }
            let call = &text[at + 2..];
            let name: String = call
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            let is_call = call[name.len()..].starts_with('(');
            if is_call && !name.is_empty() && !WEB_MAY_CALL.contains(&name.as_str()) {
                problems.push(format!(
                    "{} calls Fjord::{name} directly: go through engine::acting, which checks \
                     the actor's permission",
                    file.display()
                ));
            }
        }
    }
    let architecture = std::fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap_or_default();
    for name in &found_crates {
        if !architecture.contains(&format!("crates/{name}")) {
            problems.push(format!(
                "ARCHITECTURE.md's code map does not describe crates/{name}"
            ));
        }
    }
    problems.extend(check_migrations(root));
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// Names under `[dependencies]` (not dev-dependencies).
fn dependencies(manifest: &str) -> Vec<String> {
    let mut in_deps = false;
    let mut out = Vec::new();
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_deps = line == "[dependencies]";
            continue;
        }
        if in_deps && let Some((name, _)) = line.split_once('=') {
            out.push(
                name.trim()
                    .split('.')
                    .next()
                    .unwrap_or_default()
                    .to_string(),
            );
        }
    }
    out
}

fn sources(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") && !path.ends_with("tests.rs") {
                // Test modules may write (snapshot updates); the invariant is about what runs.
                out.push((path.clone(), std::fs::read_to_string(&path).unwrap()));
            }
        }
    }
    out
}

/// Released migrations never change: `crates/store/migrations.lock` holds a hash of each,
/// and a new migration is added to it with `UPDATE_MIGRATIONS_LOCK=1 cargo test -p xtask`.
fn check_migrations(root: &Path) -> Vec<String> {
    let source =
        std::fs::read_to_string(root.join("crates/store/src/sqlite/migrations.rs")).unwrap();
    let migrations: Vec<&str> = source
        .split("r#\"")
        .skip(1)
        .map(|m| m.split("\"#").next().unwrap_or_default())
        .collect();
    let hashes: Vec<String> = migrations
        .iter()
        .map(|m| format!("{:016x}", fnv1a(m.as_bytes())))
        .collect();
    let lock_path = root.join("crates/store/migrations.lock");
    let lock = std::fs::read_to_string(&lock_path).unwrap_or_default();
    let locked: BTreeMap<usize, &str> = lock
        .lines()
        .filter_map(|l| l.split_once(' '))
        .filter_map(|(n, h)| Some((n.parse().ok()?, h)))
        .collect();
    let mut problems = Vec::new();
    for (n, hash) in &locked {
        match hashes.get(n - 1) {
            Some(h) if h == hash => {}
            Some(_) => problems.push(format!(
                "migration {n} was edited after release: add a new migration instead"
            )),
            None => problems.push(format!("migration {n} was removed")),
        }
    }
    if std::env::var_os("UPDATE_MIGRATIONS_LOCK").is_some() {
        let text: String = hashes
            .iter()
            .enumerate()
            .map(|(i, h)| format!("{} {h}\n", i + 1))
            .collect();
        std::fs::write(&lock_path, text).unwrap();
    } else if locked.len() < hashes.len() {
        problems.push("a new migration is not in crates/store/migrations.lock: run UPDATE_MIGRATIONS_LOCK=1 cargo test -p xtask".into());
    }
    problems
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn tidy() {
        if let Err(problems) = super::run(&super::workspace_root()) {
            panic!("tidy found problems:\n{}", problems.join("\n"));
        }
    }

    #[test]
    fn tidy_catches_a_forbidden_dependency() {
        let manifest = "[package]\nname = \"x\"\n[dependencies]\nstore.workspace = true\nserde = \"1\"\n[dev-dependencies]\nhost.workspace = true\n";
        assert_eq!(super::dependencies(manifest), vec!["store", "serde"]);
    }
}
