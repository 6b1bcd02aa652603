//! Hostile input that reaches the host: archives given to `site restore --file`, links
//! planted in or as a docroot, names that are not UTF-8, FIFOs, system paths.

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::hardening::{done, site};
use crate::harness::{Env, assert_same_state, world_readable_tempdir};

/// The attack seen: a link member to a directory outside, then members written "inside"
/// it. Nothing lands outside, the task fails, and the site serves what it served.
#[test]
fn an_archive_writing_through_its_own_link_writes_nothing_outside_the_site() {
    let env = Env::new();
    site(&env, "victim.example");
    let outside = world_readable_tempdir();
    let scratch = world_readable_tempdir();
    let archive = scratch.path().join("evil.tar.zst");
    let mut tar = tar::Builder::new(Vec::new());
    let mut dir = tar::Header::new_gnu();
    dir.set_entry_type(tar::EntryType::Directory);
    dir.set_mode(0o755);
    dir.set_size(0);
    tar.append_data(&mut dir.clone(), "files", std::io::empty())
        .unwrap();
    for (link, target) in [
        ("files/abs", outside.path().to_path_buf()),
        (
            "files/rel",
            Path::new("../../../../../../..").join(outside.path()),
        ),
    ] {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Symlink);
        header.set_mode(0o777);
        header.set_size(0);
        tar.append_link(&mut header, link, &target).unwrap();
    }
    for member in ["files/abs/planted", "files/rel/planted"] {
        let mut header = tar::Header::new_gnu();
        header.set_mode(0o644);
        header.set_size(6);
        tar.append_data(&mut header, member, &b"pwned\n"[..])
            .unwrap();
    }
    tar.append_data(&mut dir, "files/abs/dir", std::io::empty())
        .unwrap();
    let bytes = zstd::encode_all(tar.into_inner().unwrap().as_slice(), 1).unwrap();
    std::fs::write(&archive, bytes).unwrap();

    let before = env.host_state(&["victim.example"]);
    let id = env.queue(&[
        "site",
        "restore",
        "victim.example",
        "--file",
        &archive.display().to_string(),
    ]);
    env.dispatch_until_idle(&[]);
    let task = env.task(id);
    assert_eq!(task["status"], "failed");
    let error = task["error"].as_str().unwrap();
    assert!(error.contains("outside the site"), "{error}");
    assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
    assert_same_state(
        &before,
        &env.host_state(&["victim.example"]),
        "evil restore",
    );
}

/// File names are bytes: backup, restore, clone and migrate give back every name exactly.
#[test]
fn names_that_are_not_utf8_survive_restore_clone_and_migrate() {
    let env = Env::new();
    env.add_platform("p2");
    site(&env, "bytes.example");
    let odd = std::ffi::OsStr::from_bytes(b"caf\xe9.html");
    let docroot = env.docroot("p1", "bytes.example");
    std::fs::write(docroot.join(odd), "latin-1 name").unwrap();
    done(&env, &["site", "backup", "bytes.example"]);
    std::fs::remove_file(docroot.join(odd)).unwrap();
    done(&env, &["site", "restore", "bytes.example"]);
    assert_eq!(std::fs::read(docroot.join(odd)).unwrap(), b"latin-1 name");

    done(
        &env,
        &[
            "site",
            "clone",
            "bytes.example",
            "copy.example",
            "--platform",
            "p2",
        ],
    );
    let copy = env.docroot("p2", "copy.example");
    assert_eq!(std::fs::read(copy.join(odd)).unwrap(), b"latin-1 name");

    done(
        &env,
        &["site", "migrate", "bytes.example", "--platform", "p2"],
    );
    let moved = env.docroot("p2", "bytes.example");
    assert_eq!(std::fs::read(moved.join(odd)).unwrap(), b"latin-1 name");
}

/// Restore normalizes what the archive says of modes: no setuid file, no world-writable
/// directory comes back.
#[test]
fn restore_drops_setuid_and_world_write_bits() {
    let env = Env::new();
    site(&env, "modes.example");
    let docroot = env.docroot("p1", "modes.example");
    std::fs::create_dir(docroot.join("open")).unwrap();
    std::fs::write(docroot.join("tool"), "#!/bin/sh\n").unwrap();
    done(&env, &["site", "backup", "modes.example"]);
    // Modes a hostile archive could carry: set after the backup, archived by a second one.
    std::fs::set_permissions(
        docroot.join("open"),
        std::fs::Permissions::from_mode(0o7777),
    )
    .unwrap();
    std::fs::set_permissions(
        docroot.join("tool"),
        std::fs::Permissions::from_mode(0o4777),
    )
    .unwrap();
    done(&env, &["site", "backup", "modes.example"]);
    done(&env, &["site", "restore", "modes.example"]);
    let mode = |p: &str| {
        std::fs::symlink_metadata(docroot.join(p))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    };
    assert_eq!(mode("open"), 0o755);
    assert_eq!(mode("tool"), 0o755);
}

/// Only regular files are read as archives: a FIFO fails its task at once, and the
/// dispatcher goes on.
#[test]
fn a_fifo_given_to_restore_fails_at_once_and_the_dispatcher_goes_on() {
    let env = Env::new();
    site(&env, "fifo.example");
    let scratch = world_readable_tempdir();
    let fifo = scratch.path().join("backup.tar.zst");
    let mkfifo = || {
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        )
    };
    mkfifo();
    let restore = [
        "site",
        "restore",
        "fifo.example",
        "--file",
        fifo.to_str().unwrap(),
    ];
    let refused = env.fails(&restore);
    assert!(refused.contains("not a regular file"), "{refused}");
    // A file swapped for a FIFO after the task was queued is refused by the task.
    std::fs::remove_file(&fifo).unwrap();
    std::fs::write(&fifo, "").unwrap();
    let id = env.queue(&restore);
    std::fs::remove_file(&fifo).unwrap();
    mkfifo();
    let verify = env.queue(&["site", "verify", "fifo.example"]);
    env.dispatch_until_idle(&[]);
    let task = env.task(id);
    assert_eq!(task["status"], "failed");
    assert!(
        task["error"]
            .as_str()
            .unwrap()
            .contains("not a regular file"),
        "{task}"
    );
    assert_eq!(env.task(verify)["status"], "success");
}

/// Links planted in or as a docroot publish nothing: nginx refuses a link whose owner does
/// not own what it points to, permissions are never fixed through a link, and a docroot
/// that is a link is refused by verify, backup and clone.
#[test]
fn a_link_planted_as_or_in_a_docroot_publishes_nothing() {
    let env = Env::new();
    env.add_platform("p2");
    site(&env, "planted.example");
    let outside = world_readable_tempdir();
    let secret = outside.path().join("secret.txt");
    std::fs::write(&secret, "root only").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o640)).unwrap();
    let docroot = env.docroot("p1", "planted.example");
    let leak = docroot.join("leak.txt");
    std::os::unix::fs::symlink(&secret, &leak).unwrap();
    // Made by the site's owner (here: nobody), pointing at root's file.
    std::os::unix::fs::lchown(&leak, Some(65534), Some(65534)).unwrap();
    done(&env, &["site", "verify", "planted.example"]);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    assert_eq!(
        mode(&secret),
        0o640,
        "verify fixed permissions through a link"
    );
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (status, _, body) = env.nginx.get("planted.example", "/leak.txt");
    assert!(
        status != 200 && !body.contains("root only"),
        "{status} {body}"
    );

    std::fs::remove_file(&leak).unwrap();
    std::fs::rename(&docroot, docroot.with_extension("real")).unwrap();
    std::os::unix::fs::symlink(outside.path(), &docroot).unwrap();
    for args in [
        &["site", "verify", "planted.example"][..],
        &["site", "backup", "planted.example"],
        &[
            "site",
            "clone",
            "planted.example",
            "copy.example",
            "--platform",
            "p2",
        ],
    ] {
        let id = env.queue(args);
        env.dispatch_until_idle(&[]);
        let task = env.task(id);
        assert_eq!(task["status"], "failed", "{args:?}");
        let error = task["error"].as_str().unwrap();
        assert!(
            error.contains("symbolic link") || error.contains("link is never followed"),
            "{args:?}: {error}"
        );
    }
    assert!(!env.docroot("p2", "copy.example").exists());
    assert_eq!(mode(&secret), 0o644);
}

/// Platform paths in system directories, fjord's data dir, or reaching another platform
/// through a link are refused, naming the value and the rule, and change nothing.
#[test]
fn platform_paths_in_system_dirs_or_through_links_are_refused() {
    let env = Env::new();
    let scratch = world_readable_tempdir();
    let to_etc = scratch.path().join("to-etc");
    std::os::unix::fs::symlink("/etc", &to_etc).unwrap();
    let to_p1 = scratch.path().join("to-p1");
    std::os::unix::fs::symlink(env.platform_path("p1"), &to_p1).unwrap();
    let to_data = scratch.path().join("to-data");
    std::os::unix::fs::symlink(env.data.path(), &to_data).unwrap();
    let cases = [
        ("/etc/web".to_string(), "system directory /etc"),
        ("/usr/share/wordpress".to_string(), "system directory /usr"),
        ("/proc/1".to_string(), "system directory /proc"),
        ("/srv".to_string(), "not /srv itself"),
        (
            to_etc.join("web").display().to_string(),
            "resolves to /etc/web",
        ),
        (
            to_p1.join("inner").display().to_string(),
            "overlaps platform p1",
        ),
        (to_data.join("web").display().to_string(), "data dir"),
        (
            env.data.path().join("web").display().to_string(),
            "data dir",
        ),
    ];
    let before = env.json(&["platform", "list"]);
    for (path, rule) in cases {
        let error = env.fails(&["platform", "add", "bad", "--server", "t", "--path", &path]);
        assert!(
            error.contains(&path) && error.contains(rule),
            "{path}: {error}"
        );
    }
    assert_eq!(env.json(&["platform", "list"]), before);
}

/// A link to a place outside the site is left out of a backup (a restore would refuse to
/// make it), and the backup says so; links inside the site travel.
#[test]
fn links_out_of_a_site_are_left_out_of_its_backups() {
    let env = Env::new();
    site(&env, "linked.example");
    let docroot = env.docroot("p1", "linked.example");
    std::os::unix::fs::symlink("/etc/hostname", docroot.join("out")).unwrap();
    std::os::unix::fs::symlink("index.html", docroot.join("home.html")).unwrap();
    let id = env.queue(&["site", "backup", "linked.example"]);
    env.dispatch_until_idle(&[]);
    assert_eq!(env.task(id)["status"], "success");
    let log = env.log(id);
    assert!(
        log.contains("left out 1 link(s)") && log.contains("/etc/hostname"),
        "{log}"
    );
    std::fs::remove_file(docroot.join("home.html")).unwrap();
    done(&env, &["site", "restore", "linked.example"]);
    assert_eq!(
        std::fs::read_link(docroot.join("home.html")).unwrap(),
        Path::new("index.html")
    );
    assert!(std::fs::symlink_metadata(docroot.join("out")).is_err());
}
