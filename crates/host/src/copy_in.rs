//! A code base copied in from a directory or a release archive (a platform's `--from`).
//! What it links to is part of it: a link that stays inside the tree is kept as a link; a
//! link out of it (Debian's `wordpress` links 24 files to other packages' files) is copied
//! as what it points to, as `cp -L` would, when that is a regular file or a directory;
//! a link that cannot be resolved (dangling, a loop), a special file, a place on the kernel's
//! file systems and a directory that holds the code base (a link to `/`) refuse the whole
//! copy with the link named, so a platform never holds part of its code. What is made
//! belongs to fjord's user (root), not to whoever owned the source. An archive is unpacked
//! by the system's own `tar` or `unzip` into a scratch directory first (they refuse members
//! with `..` or an absolute path), then copied in by the same rules as a directory.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use crate::archive::link_stays_inside;
use crate::{HostError, Result};

/// What a copy made, and the links out of the tree it copied as what they point to.
#[derive(Debug, Default)]
pub struct Copied {
    pub files: u64,
    pub bytes: u64,
    pub followed: Vec<String>,
}

/// How much a copy may make, links followed included: a link to a huge tree (a mistake in
/// an administrator's `--from`) stops with an error instead of filling the disk.
pub const MAX_ENTRIES: u64 = 2_000_000;
pub const MAX_BYTES: u64 = 64 << 30;

/// Places a link never brings into a code base: the kernel's own file systems.
const KERNEL_PLACES: [&str; 4] = ["/proc", "/sys", "/dev", "/run"];

/// A directory being copied: where it is read, where it goes, and the subtree its links are
/// judged in (the code base, or a directory reached through a link out of it).
struct Pending {
    src: PathBuf,
    rel: PathBuf,
    /// The part of `rel` below the subtree's root: a link is kept only when it stays there.
    within: PathBuf,
    /// The resolved directories this one is reached through (the code base first): a link
    /// back to one of them would copy forever.
    chain: Vec<PathBuf>,
}

/// Where the links of a tree may lead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinksOut {
    /// A directory on this machine, given by its administrator: what a link out of it leads
    /// to is copied.
    Follow,
    /// An unpacked release archive: a link out of it was made by whoever made the archive
    /// and could name any file of this machine (`/etc/shadow`), so it refuses the copy.
    Refuse,
}

/// Copies the tree `from` to `to`, which must not exist, leaving out the paths in `owned`
/// (relative to `from`: files the platform's kind writes itself).
pub fn copy_tree(from: &Path, to: &Path, links_out: LinksOut, owned: &[&str]) -> Result<Copied> {
    copy_tree_bounded(from, to, links_out, owned, MAX_ENTRIES, MAX_BYTES)
}

pub(crate) fn copy_tree_bounded(
    from: &Path,
    to: &Path,
    links_out: LinksOut,
    owned: &[&str],
    max_entries: u64,
    max_bytes: u64,
) -> Result<Copied> {
    let meta = fs::symlink_metadata(from).map_err(|e| HostError::io(from, e))?;
    if !meta.is_dir() {
        return Err(HostError::Refused(format!(
            "{} is not a directory",
            from.display()
        )));
    }
    let root = fs::canonicalize(from).map_err(|e| HostError::io(from, e))?;
    let mut copied = Copied::default();
    let mut entries_made = 0u64;
    fs::create_dir(to).map_err(|e| HostError::io(to, e))?;
    let mut stack = vec![Pending {
        src: from.to_path_buf(),
        rel: PathBuf::new(),
        within: PathBuf::new(),
        chain: vec![root.clone()],
    }];
    while let Some(dir) = stack.pop() {
        let mut entries: Vec<_> = fs::read_dir(&dir.src)
            .map_err(|e| HostError::io(&dir.src, e))?
            .collect::<std::io::Result<_>>()
            .map_err(|e| HostError::io(&dir.src, e))?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            entries_made += 1;
            if entries_made > max_entries {
                return Err(HostError::Refused(format!(
                    "{} with what it links to holds more than {max_entries} files and \
                     directories: fjord copies no code base that large (does a link reach \
                     further than the code it means?)",
                    from.display()
                )));
            }
            let name = entry.file_name();
            let (src, rel, within) = (
                dir.src.join(&name),
                dir.rel.join(&name),
                dir.within.join(&name),
            );
            if owned.iter().any(|o| Path::new(o) == rel) {
                continue;
            }
            let dst = to.join(&rel);
            let meta = fs::symlink_metadata(&src).map_err(|e| HostError::io(&src, e))?;
            if meta.file_type().is_symlink() {
                let target = fs::read_link(&src).map_err(|e| HostError::io(&src, e))?;
                if links_out == LinksOut::Refuse && !link_stays_inside(&within, &target) {
                    return Err(refused_link(
                        from,
                        &rel,
                        &target,
                        "it leads out of the release archive",
                    ));
                }
                let resolved = resolve(from, &rel, &src, &target)?;
                if link_stays_inside(&within, &target) {
                    std::os::unix::fs::symlink(&target, &dst)
                        .map_err(|e| HostError::io(&dst, e))?;
                } else if let Ok(inside) = resolved.path.strip_prefix(&root) {
                    // An absolute link (or one through another link) to a place in the code
                    // base: kept as a link, made relative so it means the copy.
                    let link = relative_link(&rel, inside);
                    std::os::unix::fs::symlink(&link, &dst).map_err(|e| HostError::io(&dst, e))?;
                } else if resolved.meta.is_dir() {
                    if let Some(holder) = dir.chain.iter().find(|c| c.starts_with(&resolved.path)) {
                        return Err(refused_link(
                            from,
                            &rel,
                            &target,
                            &format!(
                                "it leads to {}, which holds {}: copying it would never end",
                                resolved.path.display(),
                                holder.display()
                            ),
                        ));
                    }
                    make_dir(&dst)?;
                    copied.followed.push(format!(
                        "{} (a link to {}: the directory copied)",
                        rel.display(),
                        resolved.path.display()
                    ));
                    let mut chain = dir.chain.clone();
                    chain.push(resolved.path.clone());
                    stack.push(Pending {
                        src: resolved.path,
                        rel,
                        within: PathBuf::new(),
                        chain,
                    });
                } else {
                    copy_file(&resolved.path, &dst, &resolved.meta, &mut copied)?;
                    copied.followed.push(format!(
                        "{} (a link to {}: the file copied)",
                        rel.display(),
                        resolved.path.display()
                    ));
                }
            } else if meta.is_dir() {
                make_dir(&dst)?;
                stack.push(Pending {
                    src,
                    rel,
                    within,
                    chain: dir.chain.clone(),
                });
            } else if meta.is_file() {
                copy_file(&src, &dst, &meta, &mut copied)?;
            } else {
                return Err(HostError::Refused(format!(
                    "{} in {} is not a file, directory or link: fjord copies no device, \
                     pipe or socket into a code base",
                    rel.display(),
                    from.display()
                )));
            }
            if copied.bytes > max_bytes {
                return Err(HostError::Refused(format!(
                    "{} with what it links to holds more than {} GiB: fjord copies no code \
                     base that large (does a link reach further than the code it means?)",
                    from.display(),
                    max_bytes
                )));
            }
        }
    }
    Ok(copied)
}

/// Where a link leads, resolved by the kernel, and what is there.
struct Resolved {
    path: PathBuf,
    meta: fs::Metadata,
}

/// Resolves the link at `src` (`rel` in the code base `from`): it must lead to a regular
/// file or directory this process can read, and not into the kernel's file systems.
fn resolve(from: &Path, rel: &Path, src: &Path, target: &Path) -> Result<Resolved> {
    let path = fs::canonicalize(src).map_err(|e| {
        let why = if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) {
            "it is a loop of links".to_string()
        } else if e.kind() == std::io::ErrorKind::NotFound {
            "it leads nowhere (dangling)".to_string()
        } else {
            format!("it cannot be resolved: {e}")
        };
        refused_link(from, rel, target, &why)
    })?;
    if KERNEL_PLACES.iter().any(|p| path.starts_with(p)) {
        return Err(refused_link(
            from,
            rel,
            target,
            &format!(
                "it leads to {}, on the kernel's file systems",
                path.display()
            ),
        ));
    }
    let meta = fs::metadata(&path).map_err(|e| refused_link(from, rel, target, &e.to_string()))?;
    if !meta.is_file() && !meta.is_dir() {
        return Err(refused_link(
            from,
            rel,
            target,
            &format!(
                "it leads to {}, which is not a file or directory",
                path.display()
            ),
        ));
    }
    Ok(Resolved { path, meta })
}

fn refused_link(from: &Path, rel: &Path, target: &Path, why: &str) -> HostError {
    HostError::Refused(format!(
        "{} in {} is a link to {}, and {why}: fjord copies a code base whole or not at all",
        rel.display(),
        from.display(),
        target.display()
    ))
}

/// A relative link at `rel` to `inside`, both paths in the copied tree.
fn relative_link(rel: &Path, inside: &Path) -> PathBuf {
    let depth = rel.components().count().saturating_sub(1);
    let mut link: PathBuf = std::iter::repeat_n(Component::ParentDir.as_os_str(), depth).collect();
    link.push(inside);
    if link.as_os_str().is_empty() {
        link.push(".");
    }
    link
}

fn make_dir(dst: &Path) -> Result<()> {
    fs::create_dir(dst).map_err(|e| HostError::io(dst, e))?;
    fs::set_permissions(dst, fs::Permissions::from_mode(0o755)).map_err(|e| HostError::io(dst, e))
}

fn copy_file(src: &Path, dst: &Path, meta: &fs::Metadata, copied: &mut Copied) -> Result<()> {
    copied.bytes += fs::copy(src, dst).map_err(|e| HostError::io(src, e))?;
    let mode = if meta.permissions().mode() & 0o100 != 0 {
        0o755
    } else {
        0o644
    };
    fs::set_permissions(dst, fs::Permissions::from_mode(mode))
        .map_err(|e| HostError::io(dst, e))?;
    copied.files += 1;
    Ok(())
}

/// The kinds of release archive `--from` takes, by name.
pub fn archive_kind(path: &Path) -> Option<&'static str> {
    let name = path.file_name()?.to_str()?;
    if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
        Some("tar.gz")
    } else if name.ends_with(".zip") {
        Some("zip")
    } else {
        None
    }
}

/// Unpacks a release archive into `into` (which must exist, empty) and returns the code
/// base's root in it: the archive's single top directory (`wordpress/`), or `into` itself.
pub fn unpack(archive: &Path, into: &Path) -> Result<std::path::PathBuf> {
    let (a, i) = (archive.display().to_string(), into.display().to_string());
    let argv: Vec<String> = match archive_kind(archive) {
        Some("tar.gz") => [
            "tar",
            "-xzf",
            &a,
            "-C",
            &i,
            "--no-same-owner",
            "--no-same-permissions",
        ]
        .map(String::from)
        .to_vec(),
        Some(_) => {
            // Info-ZIP would make a link and then write a later member through it: a zip
            // archive with a link in it is refused before anything is unpacked.
            let listing = crate::run_command(&["unzip".into(), "-Z".into(), a.clone()])?;
            if !listing.success {
                return Err(HostError::Refused(format!(
                    "{} is not a zip archive fjord can read: {}",
                    archive.display(),
                    listing.output.trim()
                )));
            }
            if listing.output.lines().any(|l| l.starts_with('l')) {
                return Err(HostError::Refused(format!(
                    "{} holds links: fjord unpacks no zip archive with links in it",
                    archive.display()
                )));
            }
            ["unzip", "-q", "-o", &a, "-d", &i]
                .map(String::from)
                .to_vec()
        }
        None => {
            return Err(HostError::Refused(format!(
                "{} is not a .tar.gz, .tgz or .zip release archive",
                archive.display()
            )));
        }
    };
    let out = crate::run_command(&argv)?;
    if !out.success {
        return Err(HostError::Refused(format!(
            "{} could not be unpacked: {}",
            archive.display(),
            out.output.trim()
        )));
    }
    let entries: Vec<_> = fs::read_dir(into)
        .map_err(|e| HostError::io(into, e))?
        .flatten()
        .collect();
    match entries.as_slice() {
        [only] if only.file_type().is_ok_and(|t| t.is_dir()) => Ok(only.path()),
        _ => Ok(into.to_path_buf()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn refusal(result: Result<Copied>) -> String {
        match result {
            Err(HostError::Refused(why)) => why,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn links_out_of_the_tree_are_copied_as_what_they_point_to_and_links_inside_stay_links() {
        let dir = tempfile::tempdir().unwrap();
        let (code, other, to) = (
            dir.path().join("code"),
            dir.path().join("other"),
            dir.path().join("copy"),
        );
        fs::create_dir_all(code.join("js")).unwrap();
        fs::create_dir_all(other.join("lib/sub")).unwrap();
        fs::write(other.join("underscore.js"), "var _ = 1;").unwrap();
        fs::write(other.join("lib/sub/plugin.php"), "<?php").unwrap();
        symlink("../../other/underscore.js", code.join("js/underscore.js")).unwrap();
        symlink(other.join("lib"), code.join("plugins")).unwrap();
        // Inside the directory reached through a link: a link back into it stays a link.
        symlink("sub/plugin.php", other.join("lib/main.php")).unwrap();
        fs::write(code.join("index.php"), "<?php").unwrap();
        symlink("index.php", code.join("alias.php")).unwrap();
        // An absolute link into the code base means the copy's file.
        symlink(code.join("index.php"), code.join("js/absolute.php")).unwrap();
        let copied = copy_tree(&code, &to, LinksOut::Follow, &[]).unwrap();
        assert_eq!(
            fs::read(to.join("js/underscore.js")).unwrap(),
            b"var _ = 1;"
        );
        assert!(!to.join("js/underscore.js").is_symlink());
        assert!(!to.join("plugins").is_symlink());
        assert_eq!(
            fs::read(to.join("plugins/sub/plugin.php")).unwrap(),
            b"<?php"
        );
        assert_eq!(
            fs::read_link(to.join("plugins/main.php")).unwrap(),
            Path::new("sub/plugin.php")
        );
        assert_eq!(
            fs::read_link(to.join("alias.php")).unwrap(),
            Path::new("index.php")
        );
        assert_eq!(
            fs::read_link(to.join("js/absolute.php")).unwrap(),
            Path::new("../index.php")
        );
        assert_eq!(copied.followed.len(), 2, "{:?}", copied.followed);
        assert_eq!(copied.files, 3);
    }

    #[test]
    fn a_file_its_kind_writes_itself_is_left_out_even_as_a_dangling_link() {
        let dir = tempfile::tempdir().unwrap();
        let code = dir.path().join("code");
        fs::create_dir_all(code.join("lib")).unwrap();
        fs::write(code.join("index.php"), "<?php").unwrap();
        symlink("/nowhere/LocalSettings.php", code.join("LocalSettings.php")).unwrap();
        symlink(
            "/nowhere/LocalSettings.php",
            code.join("lib/LocalSettings.php"),
        )
        .unwrap();
        let to = dir.path().join("a");
        // Only the path named is left out: the same name elsewhere is still refused.
        let why = refusal(copy_tree(
            &code,
            &to,
            LinksOut::Follow,
            &["LocalSettings.php"],
        ));
        assert!(why.contains("lib/LocalSettings.php"), "{why}");
        fs::remove_file(code.join("lib/LocalSettings.php")).unwrap();
        let to = dir.path().join("b");
        copy_tree(&code, &to, LinksOut::Follow, &["LocalSettings.php"]).unwrap();
        assert!(to.join("index.php").is_file());
        assert!(fs::symlink_metadata(to.join("LocalSettings.php")).is_err());
    }

    #[test]
    fn a_link_that_cannot_be_resolved_refuses_the_copy_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let code = dir.path().join("code");
        fs::create_dir_all(code.join("lib")).unwrap();
        symlink("../../nowhere/x.js", code.join("lib/gone.js")).unwrap();
        let why = refusal(copy_tree(
            &code,
            &dir.path().join("a"),
            LinksOut::Follow,
            &[],
        ));
        assert!(
            why.contains("lib/gone.js") && why.contains("dangling"),
            "{why}"
        );

        fs::remove_file(code.join("lib/gone.js")).unwrap();
        symlink(dir.path().join("loop-b"), dir.path().join("loop-a")).unwrap();
        symlink(dir.path().join("loop-a"), dir.path().join("loop-b")).unwrap();
        symlink(dir.path().join("loop-a"), code.join("lib/loop")).unwrap();
        let why = refusal(copy_tree(
            &code,
            &dir.path().join("b"),
            LinksOut::Follow,
            &[],
        ));
        assert!(
            why.contains("lib/loop") && why.contains("loop of links"),
            "{why}"
        );

        // A link inside the tree that leads nowhere is refused too.
        fs::remove_file(code.join("lib/loop")).unwrap();
        symlink("missing.php", code.join("lib/inside.php")).unwrap();
        let why = refusal(copy_tree(
            &code,
            &dir.path().join("c"),
            LinksOut::Follow,
            &[],
        ));
        assert!(why.contains("lib/inside.php"), "{why}");
    }

    #[test]
    fn a_link_to_a_directory_holding_the_code_base_or_to_the_kernels_files_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let code = dir.path().join("apps/code");
        fs::create_dir_all(code.join("lib")).unwrap();
        symlink("/", code.join("lib/root")).unwrap();
        let why = refusal(copy_tree(
            &code,
            &dir.path().join("a"),
            LinksOut::Follow,
            &[],
        ));
        assert!(
            why.contains("lib/root") && why.contains("never end"),
            "{why}"
        );

        fs::remove_file(code.join("lib/root")).unwrap();
        symlink(dir.path().join("apps"), code.join("lib/up")).unwrap();
        let why = refusal(copy_tree(
            &code,
            &dir.path().join("b"),
            LinksOut::Follow,
            &[],
        ));
        assert!(why.contains("lib/up") && why.contains("never end"), "{why}");

        // A loop reached only through a directory the copy followed.
        fs::remove_file(code.join("lib/up")).unwrap();
        let outside = dir.path().join("outside");
        fs::create_dir_all(outside.join("deeper")).unwrap();
        symlink(&outside, outside.join("deeper/back")).unwrap();
        symlink(&outside, code.join("lib/outside")).unwrap();
        let why = refusal(copy_tree(
            &code,
            &dir.path().join("c"),
            LinksOut::Follow,
            &[],
        ));
        assert!(why.contains("lib/outside/deeper/back"), "{why}");

        fs::remove_file(code.join("lib/outside")).unwrap();
        symlink("/dev/null", code.join("lib/null")).unwrap();
        let why = refusal(copy_tree(
            &code,
            &dir.path().join("d"),
            LinksOut::Follow,
            &[],
        ));
        assert!(why.contains("lib/null") && why.contains("kernel"), "{why}");

        fs::remove_file(code.join("lib/null")).unwrap();
        symlink("/proc/self/environ", code.join("lib/env")).unwrap();
        let why = refusal(copy_tree(
            &code,
            &dir.path().join("e"),
            LinksOut::Follow,
            &[],
        ));
        assert!(why.contains("lib/env"), "{why}");
    }

    #[test]
    fn special_files_refuse_the_copy_and_a_huge_tree_stops_at_its_bound() {
        let dir = tempfile::tempdir().unwrap();
        let code = dir.path().join("code");
        fs::create_dir_all(&code).unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            code.join("pipe"),
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        let why = refusal(copy_tree(
            &code,
            &dir.path().join("a"),
            LinksOut::Follow,
            &[],
        ));
        assert!(why.contains("pipe") && why.contains("not a file"), "{why}");

        fs::remove_file(code.join("pipe")).unwrap();
        let big = dir.path().join("big");
        fs::create_dir_all(&big).unwrap();
        for i in 0..20 {
            fs::write(big.join(format!("f{i}")), vec![b'x'; 1024]).unwrap();
        }
        symlink(&big, code.join("big")).unwrap();
        let why = refusal(copy_tree_bounded(
            &code,
            &dir.path().join("b"),
            LinksOut::Follow,
            &[],
            10,
            1 << 30,
        ));
        assert!(why.contains("more than 10 files"), "{why}");
        let why = refusal(copy_tree_bounded(
            &code,
            &dir.path().join("c"),
            LinksOut::Follow,
            &[],
            100,
            4096,
        ));
        assert!(why.contains("GiB") || why.contains("large"), "{why}");
        copy_tree_bounded(
            &code,
            &dir.path().join("d"),
            LinksOut::Follow,
            &[],
            100,
            1 << 30,
        )
        .unwrap();
    }

    #[test]
    fn a_link_out_of_an_unpacked_archive_refuses_the_copy() {
        let dir = tempfile::tempdir().unwrap();
        let code = dir.path().join("code");
        fs::create_dir_all(&code).unwrap();
        fs::write(dir.path().join("secret"), "s").unwrap();
        symlink(dir.path().join("secret"), code.join("secret.txt")).unwrap();
        let why = refusal(copy_tree(
            &code,
            &dir.path().join("a"),
            LinksOut::Refuse,
            &[],
        ));
        assert!(
            why.contains("secret.txt") && why.contains("archive"),
            "{why}"
        );
        fs::remove_file(code.join("secret.txt")).unwrap();
        fs::write(code.join("index.php"), "<?php").unwrap();
        symlink("index.php", code.join("alias.php")).unwrap();
        copy_tree(&code, &dir.path().join("b"), LinksOut::Refuse, &[]).unwrap();
        assert!(dir.path().join("b/alias.php").is_symlink());
    }
}
