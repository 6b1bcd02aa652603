//! `cargo xtask deb`: the Debian package, assembled as a tree and built by `dpkg-deb`, with no
//! packaging tool to install. The files a package ships beside the binary (the unit, the
//! default config, the maintainer scripts, the control template) are plain files in
//! `packaging/debian/`; the man pages and completions come from the binary itself
//! (`fjord generate all`).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What to package and where to put it.
#[derive(Debug, Clone)]
pub struct Options {
    /// The fjord binary to ship; it is also run to make the man pages and completions, so it
    /// must run on this machine.
    pub binary: PathBuf,
    /// The package's version (Debian's rules: a digit first, then letters, digits and
    /// `.+~-`).
    pub version: String,
    /// The directory the `.deb` is written to (made if missing).
    pub out: PathBuf,
    /// The workspace root, where `packaging/debian/` and README.md are.
    pub root: PathBuf,
    /// gzip at its fastest instead of xz: for the packages of tests, whose debug binary xz
    /// takes a minute to compress.
    pub fast: bool,
}

/// The unit, as installed (a path shared with the tests that check an installation).
pub const UNIT_PATH: &str = "lib/systemd/system/fjord.service";
/// The default config, a conffile: an upgrade keeps the administrator's changes.
pub const CONFIG_PATH: &str = "etc/fjord/fjord.toml";

/// Every file the package installs besides the man pages, with its mode. The config is
/// 0644: it holds no secret (a mail relay's password lives in a password file of its own),
/// and any user may check it with `fjord config check`.
pub const FILES: &[(&str, u32)] = &[
    ("usr/bin/fjord", 0o755),
    (UNIT_PATH, 0o644),
    (CONFIG_PATH, 0o644),
    ("usr/share/bash-completion/completions/fjord", 0o644),
    ("usr/share/zsh/vendor-completions/_fjord", 0o644),
    ("usr/share/fish/vendor_completions.d/fjord.fish", 0o644),
    ("usr/share/doc/fjord/README.md", 0o644),
    ("usr/share/doc/fjord/copyright", 0o644),
];

/// The man pages' directory beneath the root; every page is gzipped (`fjord.1.gz`, …).
pub const MAN_DIR: &str = "usr/share/man/man1";

/// Builds the package and returns its path (`<out>/fjord_<version>_<arch>.deb`).
pub fn build(options: &Options) -> Result<PathBuf, String> {
    check_version(&options.version)?;
    if !options.binary.is_file() {
        return Err(format!(
            "--binary {}: no such file (build fjord first, or leave --binary out to build a \
             release)",
            options.binary.display()
        ));
    }
    let arch = output(Command::new("dpkg").arg("--print-architecture"))?;
    let packaging = options.root.join("packaging/debian");
    fs::create_dir_all(&options.out).map_err(|e| io(&options.out, e))?;
    let tree = options
        .out
        .join(format!(".fjord_{}_{arch}.tree", options.version));
    if tree.exists() {
        fs::remove_dir_all(&tree).map_err(|e| io(&tree, e))?;
    }
    let result = assemble(options, &packaging, &tree, &arch).and_then(|()| {
        let package = options
            .out
            .join(format!("fjord_{}_{arch}.deb", options.version));
        let compression: &[&str] = if options.fast {
            &["-Zgzip", "-z1"]
        } else {
            &["-Zxz"]
        };
        run(Command::new("dpkg-deb")
            .args(["--build", "--root-owner-group"])
            .args(compression)
            .arg(&tree)
            .arg(&package))?;
        Ok(package)
    });
    let _ = fs::remove_dir_all(&tree);
    result
}

fn assemble(options: &Options, packaging: &Path, tree: &Path, arch: &str) -> Result<(), String> {
    let share = tree.join("usr/share");
    fs::create_dir_all(&share).map_err(|e| io(&share, e))?;
    run(Command::new(&options.binary)
        .args(["generate", "all", "--out"])
        .arg(&share))?;
    let man = tree.join(MAN_DIR);
    for page in read_dir(&man)? {
        // -n: no name or time stamp inside, so the same pages make the same package.
        run(Command::new("gzip").args(["-9n"]).arg(&page))?;
    }
    copy(&options.binary, &tree.join("usr/bin/fjord"))?;
    copy(&packaging.join("fjord.service"), &tree.join(UNIT_PATH))?;
    copy(&packaging.join("fjord.toml"), &tree.join(CONFIG_PATH))?;
    copy(
        &options.root.join("README.md"),
        &tree.join("usr/share/doc/fjord/README.md"),
    )?;
    copy(
        &packaging.join("copyright"),
        &tree.join("usr/share/doc/fjord/copyright"),
    )?;
    // Every mode is set here, whatever the umask or the checkout made them.
    set_modes(tree)?;
    for (path, mode) in FILES {
        chmod(&tree.join(path), *mode)?;
    }
    let debian = tree.join("DEBIAN");
    fs::create_dir_all(&debian).map_err(|e| io(&debian, e))?;
    for script in ["postinst", "prerm", "postrm"] {
        copy(&packaging.join(script), &debian.join(script))?;
        chmod(&debian.join(script), 0o755)?;
    }
    write(&debian.join("conffiles"), &format!("/{CONFIG_PATH}\n"))?;
    let control = read(&packaging.join("control"))?
        .replace("@VERSION@", &options.version)
        .replace("@ARCH@", arch)
        .replace("@INSTALLED_SIZE@", &installed_kib(tree)?.to_string());
    write(&debian.join("control"), &control)?;
    chmod(&debian, 0o755)
}

/// Debian's version syntax, checked here so that a bad `--version` is named before
/// dpkg-deb's own message about a control file.
fn check_version(version: &str) -> Result<(), String> {
    let ok = version.starts_with(|c: char| c.is_ascii_digit())
        && version
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".+~-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "--version {version:?}: a Debian version starts with a digit and holds only \
             letters, digits and . + ~ -"
        ))
    }
}

/// The workspace's version (`[workspace.package] version` in Cargo.toml).
pub fn workspace_version(root: &Path) -> Result<String, String> {
    let manifest = read(&root.join("Cargo.toml"))?;
    let mut in_package = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_package = line == "[workspace.package]";
        } else if in_package
            && let Some(value) = line.strip_prefix("version").map(str::trim_start)
            && let Some(value) = value.strip_prefix('=')
        {
            return Ok(value.trim().trim_matches('"').to_string());
        }
    }
    Err("Cargo.toml has no [workspace.package] version".into())
}

/// `cargo build --release` of the binary; returns its path.
pub fn build_release(root: &Path) -> Result<PathBuf, String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    run(Command::new(cargo).current_dir(root).args([
        "build",
        "--release",
        "--locked",
        "--package",
        "fjord",
        "--bin",
        "fjord",
    ]))?;
    Ok(root.join("target/release/fjord"))
}

/// Directories 0755 and files 0644; the executables are set after.
fn set_modes(dir: &Path) -> Result<(), String> {
    chmod(dir, 0o755)?;
    for path in read_dir(dir)? {
        if path.is_dir() {
            set_modes(&path)?;
        } else {
            chmod(&path, 0o644)?;
        }
    }
    Ok(())
}

/// Installed-Size: the files' sizes in KiB, as dpkg-gencontrol counts them (each rounded up).
fn installed_kib(dir: &Path) -> Result<u64, String> {
    let mut kib = 0;
    for path in read_dir(dir)? {
        let meta = fs::symlink_metadata(&path).map_err(|e| io(&path, e))?;
        kib += if meta.is_dir() {
            installed_kib(&path)? + 1
        } else {
            meta.len().div_ceil(1024)
        };
    }
    Ok(kib)
}

fn read_dir(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut paths: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(|e| io(dir, e))?
        .map(|e| e.map(|e| e.path()).map_err(|e| io(dir, e)))
        .collect::<Result<_, _>>()?;
    paths.sort();
    Ok(paths)
}

fn copy(from: &Path, to: &Path) -> Result<(), String> {
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
    }
    fs::copy(from, to).map_err(|e| io(from, e))?;
    Ok(())
}

fn read(path: &Path) -> Result<String, String> {
    fs::read_to_string(path).map_err(|e| io(path, e))
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    fs::write(path, text).map_err(|e| io(path, e))
}

fn chmod(path: &Path, mode: u32) -> Result<(), String> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(|e| io(path, e))
}

fn io(path: &Path, e: std::io::Error) -> String {
    format!("{}: {e}", path.display())
}

fn run(command: &mut Command) -> Result<(), String> {
    output(command).map(drop)
}

/// Runs a command to its end; its stdout, trimmed, or its stderr in the error.
fn output(command: &mut Command) -> Result<String, String> {
    let shown = format!("{command:?}");
    let out = command
        .output()
        .map_err(|e| format!("cannot run {shown}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{shown} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_follow_debian_rules() {
        for good in ["0.1.0", "0.0.1~prev1", "1.2+deb12u1", "2-1"] {
            assert_eq!(check_version(good), Ok(()), "{good}");
        }
        for bad in ["", "v0.1", "0.1 beta", "0.1_2", "0.1/2"] {
            let e = check_version(bad).unwrap_err();
            assert!(e.contains("starts with a digit"), "{bad}: {e}");
        }
    }

    #[test]
    fn the_workspace_version_is_read_from_its_manifest() {
        let dir = tempfile_dir();
        fs::write(
            dir.join("Cargo.toml"),
            "[workspace]\nmembers = []\n\n[workspace.package]\nedition = \"2024\"\nversion = \"3.4.5\"\n",
        )
        .unwrap();
        assert_eq!(workspace_version(&dir).unwrap(), "3.4.5");
        fs::write(dir.join("Cargo.toml"), "[package]\nversion = \"1.0.0\"\n").unwrap();
        assert!(workspace_version(&dir).is_err());
        fs::remove_dir_all(&dir).unwrap();
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("xtask-deb-test-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        dir
    }
}
