//! A site's user turns a rollback against the host: after a step, it swaps a directory it
//! owns for a link (to another site's private dir, to a file it may not touch) and the task
//! fails. Every undo must then leave the link's target as it was. Each test plays one undo
//! kind through the real [`LiveSteps`] and [`rollback`], with the link planted as the site's
//! user would (owned by its uid), and checks a victim file outside the site (another user's,
//! known owner and mode) and that the site's own tree is back as it was where it could be.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::anchor::trusted_tempdir;
use crate::{Committers, Journal, LiveSteps, Ownership, Steps, Undo, rollback};

const SITE_UID: u32 = 47_101;
const VICTIM_UID: u32 = 47_102;

#[derive(Default)]
struct Recorded(Mutex<Vec<Entry>>);

/// A journal entry as the state keeps it: step, undo (JSON), saved content.
type Entry = (String, String, Option<Vec<u8>>);

impl Journal for Recorded {
    fn record(
        &self,
        _seq: i64,
        step: &str,
        undo: &Undo,
        saved: Option<&[u8]>,
    ) -> crate::Result<()> {
        self.0.lock().unwrap().push((
            step.to_string(),
            serde_json::to_string(undo).unwrap(),
            saved.map(<[u8]>::to_vec),
        ));
        Ok(())
    }
    fn log(&self, _line: &str) {}
}

/// A platform's sites dir (root's), a site's files dir (its user's) and, outside it,
/// another site's private dir holding `settings.php` (the victim's, 0600).
struct Host {
    _dir: tempfile::TempDir,
    base: PathBuf,
    files: PathBuf,
    victim_dir: PathBuf,
}

impl Host {
    fn new() -> Host {
        let dir = trusted_tempdir();
        let base = dir.path().canonicalize().unwrap();
        let files = base.join("platform/sites/attacker.example");
        std::fs::create_dir_all(&files).unwrap();
        let victim_dir = base.join("platform/private/victim.example");
        std::fs::create_dir_all(&victim_dir).unwrap();
        let host = Host {
            _dir: dir,
            base,
            files,
            victim_dir,
        };
        host.victim_file("settings.php");
        host
    }

    /// A file of the victim's, 0600, with known content.
    fn victim_file(&self, name: &str) -> PathBuf {
        let path = self.victim_dir.join(name);
        std::fs::write(&path, "victim's secret").unwrap();
        std::os::unix::fs::chown(&path, Some(VICTIM_UID), Some(VICTIM_UID)).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        path
    }

    fn victim_unchanged(&self, path: &Path) {
        let meta = std::fs::symlink_metadata(path)
            .unwrap_or_else(|e| panic!("{} is gone after the rollback: {e}", path.display()));
        assert_eq!(
            (meta.uid(), meta.gid(), meta.mode() & 0o7777),
            (VICTIM_UID, VICTIM_UID, 0o600),
            "{} changed by the rollback",
            path.display()
        );
        assert_eq!(std::fs::read_to_string(path).unwrap(), "victim's secret");
    }

    /// Gives the site's files to its user, as a site's files are while its code runs.
    fn give_to_site(&self) {
        chown_tree(&self.files, SITE_UID);
    }

    /// What the site's user does: `sub` of its files is set aside and becomes a link to the
    /// victim's dir (the link is the site user's own).
    fn swap_for_link(&self, sub: &str) {
        let at = self.files.join(sub);
        if at.exists() {
            std::fs::rename(&at, self.files.join(format!("{sub}.moved"))).unwrap();
        }
        std::os::unix::fs::symlink(&self.victim_dir, &at).unwrap();
        std::os::unix::fs::lchown(&at, Some(SITE_UID), Some(SITE_UID)).unwrap();
    }
}

fn chown_tree(path: &Path, uid: u32) {
    std::os::unix::fs::lchown(path, Some(uid), Some(uid)).unwrap();
    if std::fs::symlink_metadata(path).unwrap().is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            chown_tree(&entry.unwrap().path(), uid);
        }
    }
}

/// Runs `forward` as a task's steps, lets the site's user act, then rolls the task back.
fn task(host: &Host, forward: impl FnOnce(&mut LiveSteps), site_acts: impl FnOnce()) {
    let journal = Recorded::default();
    let committers = Committers::default();
    {
        let mut steps = LiveSteps::new(&journal, &committers, None, host.base.join("scratch"));
        forward(&mut steps);
    }
    site_acts();
    let entries = journal.0.lock().unwrap().clone();
    assert!(!entries.is_empty(), "the forward steps journaled nothing");
    // The rollback may report what it refused; it must not change what the link names.
    let _ = rollback(&entries, &committers, &|_| {});
}

#[test]
fn restored_modes_never_reach_through_a_link_planted_after_the_fix() {
    let host = Host::new();
    // What an archive or the application left: a file named like the victim's, mode 0644,
    // owned by root, in a directory of the site's.
    std::fs::create_dir(host.files.join("sub")).unwrap();
    std::fs::write(host.files.join("sub/settings.php"), "site's").unwrap();
    std::fs::set_permissions(
        host.files.join("sub/settings.php"),
        std::fs::Permissions::from_mode(0o666),
    )
    .unwrap();
    task(
        &host,
        |x| {
            x.fix_permissions(&host.files, &Ownership::default())
                .unwrap();
        },
        || {
            host.give_to_site();
            host.swap_for_link("sub");
        },
    );
    host.victim_unchanged(&host.victim_dir.join("settings.php"));
}

#[test]
fn restored_modes_never_reach_another_name_of_a_file_put_in_its_place() {
    let host = Host::new();
    std::fs::create_dir(host.files.join("sub")).unwrap();
    std::fs::write(host.files.join("sub/settings.php"), "site's").unwrap();
    std::fs::set_permissions(
        host.files.join("sub/settings.php"),
        std::fs::Permissions::from_mode(0o666),
    )
    .unwrap();
    task(
        &host,
        |x| {
            x.fix_permissions(&host.files, &Ownership::default())
                .unwrap();
        },
        || {
            host.give_to_site();
            // A real directory this time, holding another name of the victim's file.
            std::fs::rename(host.files.join("sub"), host.files.join("sub.moved")).unwrap();
            std::fs::create_dir(host.files.join("sub")).unwrap();
            std::fs::hard_link(
                host.victim_dir.join("settings.php"),
                host.files.join("sub/settings.php"),
            )
            .unwrap();
        },
    );
    host.victim_unchanged(&host.victim_dir.join("settings.php"));
}

#[test]
fn a_mode_undo_never_gives_a_file_setuid_or_setgid_back() {
    let host = Host::new();
    // A root's setuid program in the site's files (put there by hand): the fix takes the
    // bits away; the site's user then gets the file and writes its own code into it.
    let program = host.files.join("tool");
    std::fs::write(&program, "root's tool").unwrap();
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o6755)).unwrap();
    task(
        &host,
        |x| {
            x.fix_permissions(&host.files, &Ownership::default())
                .unwrap();
        },
        || {
            host.give_to_site();
            std::fs::write(&program, "the site's code").unwrap();
        },
    );
    let meta = std::fs::metadata(&program).unwrap();
    assert_eq!(
        meta.mode() & 0o7777,
        0o755,
        "the undo gave back a set-id bit to a file the site wrote"
    );
    assert_eq!((meta.uid(), meta.gid()), (0, 0), "its owner is given back");
}

#[test]
fn only_directories_take_the_set_group_id_bit() {
    let host = Host::new();
    std::fs::create_dir(host.files.join("uploads")).unwrap();
    std::fs::write(host.files.join("uploads/a.jpg"), "jpeg").unwrap();
    std::fs::write(host.files.join("run.sh"), "#!/bin/sh").unwrap();
    std::fs::set_permissions(
        host.files.join("run.sh"),
        std::fs::Permissions::from_mode(0o2755),
    )
    .unwrap();
    let ownership = Ownership {
        private: true,
        inherit_group: true,
        ..Ownership::default()
    };
    let mode = |rel: &str| {
        std::fs::symlink_metadata(host.files.join(rel))
            .unwrap()
            .mode()
            & 0o7777
    };
    let journal = Recorded::default();
    let committers = Committers::default();
    let mut x = LiveSteps::new(&journal, &committers, None, host.base.join("scratch"));
    x.fix_permissions(&host.files, &ownership).unwrap();
    assert_eq!(
        (
            mode(""),
            mode("uploads"),
            mode("uploads/a.jpg"),
            mode("run.sh")
        ),
        (0o2750, 0o2750, 0o640, 0o750)
    );
}

#[test]
fn a_restored_file_is_never_written_through_a_link() {
    let host = Host::new();
    std::fs::create_dir(host.files.join("sub")).unwrap();
    std::fs::write(host.files.join("sub/settings.php"), "old config").unwrap();
    task(
        &host,
        |x| {
            x.write_file(&host.files.join("sub/settings.php"), b"new config", 0o640)
                .unwrap();
        },
        || {
            host.give_to_site();
            host.swap_for_link("sub");
        },
    );
    host.victim_unchanged(&host.victim_dir.join("settings.php"));
    assert_eq!(
        std::fs::read_dir(&host.victim_dir).unwrap().count(),
        1,
        "nothing is added to the victim's dir"
    );
}

#[test]
fn a_file_the_step_made_is_never_removed_through_a_link() {
    let host = Host::new();
    std::fs::create_dir(host.files.join("sub")).unwrap();
    task(
        &host,
        |x| {
            x.write_file(&host.files.join("sub/settings.php"), b"new config", 0o640)
                .unwrap();
        },
        || {
            host.give_to_site();
            host.swap_for_link("sub");
        },
    );
    host.victim_unchanged(&host.victim_dir.join("settings.php"));
}

#[test]
fn a_tree_the_step_made_is_never_removed_through_a_link() {
    let host = Host::new();
    std::fs::create_dir(host.files.join("sub")).unwrap();
    std::fs::create_dir(host.victim_dir.join("uploads")).unwrap();
    let victim = host.victim_file("uploads/keep.php");
    task(
        &host,
        |x| {
            x.make_own_dir(&host.files.join("sub/uploads")).unwrap();
        },
        || {
            host.give_to_site();
            host.swap_for_link("sub");
        },
    );
    host.victim_unchanged(&victim);
}

#[test]
fn a_directory_the_step_made_is_never_removed_through_a_link() {
    let host = Host::new();
    std::fs::create_dir(host.files.join("sub")).unwrap();
    std::fs::create_dir(host.victim_dir.join("empty")).unwrap();
    task(
        &host,
        |x| {
            x.make_dir(&host.files.join("sub/empty")).unwrap();
        },
        || {
            host.give_to_site();
            host.swap_for_link("sub");
        },
    );
    assert!(host.victim_dir.join("empty").is_dir());
}

#[test]
fn a_swapped_tree_is_never_put_back_through_a_link() {
    let host = Host::new();
    std::fs::create_dir_all(host.files.join("sub/target")).unwrap();
    std::fs::create_dir_all(host.files.join("sub/stage")).unwrap();
    std::fs::write(host.files.join("sub/stage/staged.txt"), "staged").unwrap();
    let elsewhere = host.files.join("elsewhere");
    let mut before = None;
    task(
        &host,
        |x| {
            x.swap_tree(
                &host.files.join("sub/target"),
                &host.files.join("sub/stage"),
            )
            .unwrap();
        },
        || {
            host.give_to_site();
            // The site moves its dir, with the swapped trees, and links to it.
            std::fs::rename(host.files.join("sub"), &elsewhere).unwrap();
            std::os::unix::fs::symlink(&elsewhere, host.files.join("sub")).unwrap();
            before = Some(names(&elsewhere));
        },
    );
    assert_eq!(
        Some(names(&elsewhere)),
        before,
        "the rollback renamed or removed through the site's link"
    );
}

#[test]
fn a_tree_exchanged_in_place_comes_back_however_often_its_undo_runs() {
    let host = Host::new();
    let (target, stage) = (host.files.join("target"), host.files.join("stage"));
    std::fs::create_dir_all(&target).unwrap();
    std::fs::write(target.join("old.txt"), "old").unwrap();
    std::fs::create_dir_all(&stage).unwrap();
    std::fs::write(stage.join("new.txt"), "new").unwrap();
    let journal = Recorded::default();
    let committers = Committers::default();
    let mut steps = LiveSteps::new(&journal, &committers, None, host.base.join("scratch"));
    steps.swap_tree(&target, &stage).unwrap();
    // Exchanged: the target never went missing, and the old tree is where the stage was.
    assert!(target.join("new.txt").is_file() && stage.join("old.txt").is_file());
    let entries = journal.0.lock().unwrap().clone();
    assert!(entries[0].1.contains("exchange-back"), "{entries:?}");
    // After a crash nobody knows whether an undo ran: running it twice changes nothing more.
    for _ in 0..2 {
        rollback(&entries, &committers, &|_| {}).unwrap();
        assert!(target.join("old.txt").is_file() && stage.join("new.txt").is_file());
    }
}

/// Every path under `dir`, sorted.
fn names(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(at) = stack.pop() {
        for entry in std::fs::read_dir(&at).unwrap().flatten() {
            out.push(entry.path());
            if entry.file_type().unwrap().is_dir() {
                stack.push(entry.path());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn a_tree_set_aside_is_never_moved_back_through_a_link() {
    let host = Host::new();
    std::fs::create_dir_all(host.files.join("sub/old")).unwrap();
    let elsewhere = host.files.join("elsewhere");
    task(
        &host,
        |x| {
            x.remove_tree(&host.files.join("sub/old")).unwrap();
        },
        || {
            host.give_to_site();
            // The site moves its dir, with what was set aside in it, and links to it.
            std::fs::rename(host.files.join("sub"), &elsewhere).unwrap();
            std::os::unix::fs::symlink(&elsewhere, host.files.join("sub")).unwrap();
        },
    );
    assert!(
        !elsewhere.join("old").exists(),
        "the rollback moved a tree through the site's link"
    );
}

#[test]
fn an_undo_an_older_fjord_recorded_without_its_anchor_follows_no_link() {
    let host = Host::new();
    let entry = |path: &Path| {
        serde_json::json!({
            "undo": "restore-modes",
            "entries": [{"path": path, "mode": 0o644, "uid": 0, "gid": 0}],
        })
        .to_string()
    };
    std::fs::create_dir(host.files.join("sub")).unwrap();
    host.give_to_site();
    host.swap_for_link("sub");
    let entries = vec![(
        "fix permissions".to_string(),
        entry(&host.files.join("sub/settings.php")),
        None,
    )];
    let _ = rollback(&entries, &Committers::default(), &|_| {});
    host.victim_unchanged(&host.victim_dir.join("settings.php"));
    // Where no link is on the way, it is undone.
    let own = host.base.join("platform/own.txt");
    std::fs::write(&own, "x").unwrap();
    let entries = vec![("fix permissions".to_string(), entry(&own), None)];
    rollback(&entries, &Committers::default(), &|_| {}).unwrap();
    assert_eq!(std::fs::metadata(&own).unwrap().mode() & 0o7777, 0o644);
}

#[test]
fn a_file_with_a_secret_never_has_a_broader_mode_than_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let seen = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let record = seen.clone();
    crate::beneath::ON_CREATE.with(|hook| {
        *hook.borrow_mut() = Some(Box::new(move |fd| {
            let stat = rustix::fs::fstat(fd).unwrap();
            record
                .borrow_mut()
                .push((stat.st_mode & 0o7777, stat.st_size));
        }))
    });
    for mode in [0o600, 0o640] {
        let path = dir.path().join(format!("secret-{mode:o}"));
        crate::fsops::write_atomic(&path, b"password", mode).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().mode() & 0o7777,
            mode,
            "{mode:o}"
        );
    }
    crate::beneath::ON_CREATE.with(|hook| *hook.borrow_mut() = None);
    let seen = seen.borrow();
    assert_eq!(seen.len(), 2);
    for ((created, size), mode) in seen.iter().zip([0o600, 0o640]) {
        assert_eq!(*size, 0, "created empty");
        assert_eq!(
            created & !mode,
            0,
            "created {created:o} for a {mode:o} file"
        );
    }
}

#[test]
fn a_planted_link_is_never_read_as_a_theme_header() {
    let host = Host::new();
    let theme = host.files.join("themes/t");
    std::fs::create_dir_all(&theme).unwrap();
    std::fs::write(
        host.victim_dir.join("style.css"),
        "Theme Name: x\nVersion: root-only-secret\n",
    )
    .unwrap();
    std::fs::set_permissions(
        host.victim_dir.join("style.css"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    std::os::unix::fs::symlink(host.victim_dir.join("style.css"), theme.join("style.css")).unwrap();
    host.give_to_site();
    assert_eq!(crate::read_head(&theme.join("style.css"), 8192), None);
    // Nor through a linked directory on the way.
    std::fs::remove_file(theme.join("style.css")).unwrap();
    std::fs::remove_dir(&theme).unwrap();
    std::os::unix::fs::symlink(&host.victim_dir, &theme).unwrap();
    assert_eq!(crate::read_head(&theme.join("style.css"), 8192), None);
    assert!(crate::list_files(&theme).is_empty());
    std::fs::write(host.files.join("themes/own.css"), "Version: 1").unwrap();
    assert_eq!(
        crate::read_head(&host.files.join("themes/own.css"), 8192).as_deref(),
        Some("Version: 1")
    );
}
