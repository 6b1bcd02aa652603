//! A site turning a rollback against another: its own code, run by fjord in the middle of a
//! task (WordPress's upgrade after a migrate, as the site's user, under its `open_basedir`),
//! swaps a directory of its files for a link to another site's private dir and makes the task
//! fail. The rollback must leave the other site's files as they were (owner, mode, content),
//! and both sites serve their old state.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::databases::{Cleanup, token};
use crate::harness::Env;
use crate::php_fpm::PrivatePhpFpm;
use crate::php_sites::{php_server, wordpress_platform};

/// Owner, group, mode and content of a file.
fn fingerprint(path: &Path) -> (u32, u32, u32, Vec<u8>) {
    let meta = std::fs::symlink_metadata(path).unwrap();
    (
        meta.uid(),
        meta.gid(),
        meta.mode() & 0o7777,
        std::fs::read(path).unwrap(),
    )
}

/// Writes `path` as the owner of `files` (the site's user) would.
fn write_as_site(files: &Path, path: &Path, content: &str) {
    let owner = std::fs::metadata(files).unwrap();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    for dir in path
        .ancestors()
        .skip(1)
        .take_while(|d| d.starts_with(files))
    {
        std::os::unix::fs::chown(dir, Some(owner.uid()), Some(owner.gid())).unwrap();
    }
    std::fs::write(path, content).unwrap();
    std::os::unix::fs::chown(path, Some(owner.uid()), Some(owner.gid())).unwrap();
}

#[test]
fn a_link_planted_by_a_sites_upgrade_turns_no_rollback_against_another_site() {
    let t = token();
    let _cleanup = Cleanup(t.clone());
    let fpm = PrivatePhpFpm::start();
    let env = Env::bare();
    php_server(&env, &fpm);
    wordpress_platform(&env, "wp1");
    wordpress_platform(&env, "wp2");
    let (victim, attacker) = (
        format!("{t}-victim.wp.test"),
        format!("{t}-attacker.wp.test"),
    );
    for (site, title) in [(&victim, "Victim"), (&attacker, "Attacker")] {
        env.ok(&["site", "add", site, "--platform", "wp1", "--title", title]);
    }
    env.dispatch_until_idle(&[]);

    let victim_config = PathBuf::from(env.platform_path("wp1"))
        .join("private")
        .join(&victim)
        .join("settings.php");
    let before = fingerprint(&victim_config);
    let files = env.docroot("wp1", &attacker);
    // A file named like the victim's config: after the migrate's deploy it is root's, with
    // the archive's mode, and the permission fix at the new place records it so.
    write_as_site(&files, &files.join("evil/settings.php"), "decoy");
    // The must-use plugin acts only in the upgrade at the new place. PHP's own `symlink`
    // refuses a target outside `open_basedir`, but not a relative one made deep in the tree
    // and then renamed higher, where it climbs out.
    let target = format!("../../../wp1/private/{victim}");
    write_as_site(
        &files,
        &files.join("mu-plugins/plant.php"),
        &format!(
            "<?php
if (PHP_SAPI === 'cli' && strpos(WP_CONTENT_DIR, '/wp2/') !== false) {{
    rename(WP_CONTENT_DIR . '/evil', WP_CONTENT_DIR . '/evil.old');
    @mkdir(WP_CONTENT_DIR . '/x/y/z', 0755, true);
    symlink('{target}', WP_CONTENT_DIR . '/x/y/z/l');
    echo rename(WP_CONTENT_DIR . '/x/y/z/l', WP_CONTENT_DIR . '/evil')
        ? \"planted the link\\n\" : \"no link\\n\";
    exit(1);
}}
"
        ),
    );

    let id = env.queue(&["site", "migrate", &attacker, "--platform", "wp2"]);
    env.dispatch_until_idle(&[]);
    let task = env.task(id);
    let log = env.log(id);
    assert_eq!(task["status"], "failed", "{task}\n{log}");
    assert!(
        log.contains("planted the link"),
        "the site planted no link:\n{log}"
    );

    assert_eq!(
        fingerprint(&victim_config),
        before,
        "the rollback changed the victim's config through the attacker's link:\n{log}"
    );
    for (site, title) in [(&victim, "Victim"), (&attacker, "Attacker")] {
        let (status, _, body) = env.nginx.get(site, "/");
        assert_eq!(status, 200, "{site}: {body}");
        assert!(body.contains(&format!("<title>{title}")), "{site}: {body}");
    }
}
