//! Backups of a site: take, prune, remove, and restore one.

use super::*;
use host::{LocalReads, Reads};

impl ScriptEnv {
    pub(super) fn backup_dir(&self, site: &Site) -> PathBuf {
        self.data_dir.join("backups").join(site.name.as_str())
    }
}

/// How a backup target is reached.
fn target_address(target: &store::BackupTargetRecord) -> host::remote::targets::TargetAddress {
    host::remote::targets::TargetAddress {
        name: target.name.to_string(),
        user: target.target.ssh.user.clone(),
        host: target.target.ssh.host.clone(),
        port: target.target.ssh.port,
        host_key: target.host_key.to_string(),
    }
}

/// Backs the site up: docroot, private files and a consistent dump of its database; then,
/// when the site's policy names a backup target (loaded for backup tasks only), copies the
/// archive there.
pub(super) fn site_backup(
    env: &ScriptEnv,
    objects: &TaskObjects,
    x: &mut dyn Steps,
) -> Result<TaskEffect> {
    let request = backup_request(env, objects)?;
    let written = x.create_backup(&request)?;
    let mut effect = backup_effect(objects, &request, written)?;
    if let Some(target) = &objects.extra.copies.copy_to {
        let file = request
            .out
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let copy = host::TargetCopy {
            target: target_address(target),
            keys: objects.extra.copies.keys.clone(),
            archive: request.out.clone(),
            path: format!("{}/{}/{file}", target.target.path, objects.site()?.name),
        };
        if let Some(copied) = x.copy_to_backup_target(&copy)?
            && let TaskEffect::AddBackup(backup) = &mut effect
        {
            backup.copies.push(store::NewBackupCopy {
                target_id: target.id,
                path: copied.path,
                size: copied.size as i64,
                sha256: copied.sha256,
            });
        }
    }
    Ok(effect)
}

/// What a backup of the site holds and where it goes.
pub(super) fn backup_request(
    env: &ScriptEnv,
    objects: &TaskObjects,
) -> Result<host::BackupRequest> {
    let (platform, site) = (objects.platform()?, objects.site()?);
    let dir = env.backup_dir(site);
    let stamp = model::time::utc_stamp(store::now_ms());
    let mut out = dir.join(format!("{}-{stamp}.tar.zst", site.name));
    let mut n = 2;
    // Backups are kept on the machine fjord runs on, whichever server the site is on.
    while LocalReads.exists(&out)? {
        out = dir.join(format!("{}-{stamp}_{n}.tar.zst", site.name));
        n += 1;
    }
    let db = match &site.database {
        Some(db) => match objects.db_ctl(db)? {
            // A database that is gone (a site needing attention) is not in the backup; the
            // files are.
            Some(ctl)
                if site.status == SiteStatus::NeedsAttention
                    && !env.reads.database_exists(&ctl, &db.name)? =>
            {
                None
            }
            Some(ctl) => Some(host::BackupDb::Server {
                ctl,
                name: db.name.clone(),
            }),
            None => Some(host::BackupDb::Sqlite {
                path: render::site_sqlite_path(platform, site),
            }),
        },
        None => None,
    };
    let private = render::site_private_dir(platform, site);
    Ok(host::BackupRequest {
        out,
        manifest: host::Manifest {
            format: host::BACKUP_FORMAT,
            fjord_version: env!("CARGO_PKG_VERSION").to_string(),
            site: site.name.to_string(),
            platform: platform.name.to_string(),
            platform_kind: platform.kind.as_str().to_string(),
            db_engine: db.as_ref().and(
                site.database
                    .as_ref()
                    .map(|d| d.engine.as_str().to_string()),
            ),
            db_member: None,
            created_at: model::time::utc_display(store::now_ms()),
            members: Vec::new(),
        },
        docroot: render::site_files_dir(platform, site),
        private: env.reads.exists(&private)?.then_some(private),
        db,
    })
}

/// The new backup's row, once it is written (none in a dry run).
pub(super) fn backup_effect(
    objects: &TaskObjects,
    request: &host::BackupRequest,
    written: Option<host::Manifest>,
) -> Result<TaskEffect> {
    let site = objects.site()?;
    if written.is_none() {
        return Ok(TaskEffect::None);
    }
    let size = LocalReads.file_size(&request.out).unwrap_or(0) as i64;
    Ok(TaskEffect::AddBackup(store::NewBackup {
        site_id: site.id,
        site_name: site.name.to_string(),
        path: request.out.display().to_string(),
        size,
        copies: Vec::new(),
    }))
}

/// Restores a site from one of its backups. The archive is checked whole before anything
/// changes; the current state is backed up first; files, private files and database are
/// then swapped in, each step undoable.
pub(super) fn site_restore(
    env: &ScriptEnv,
    objects: &TaskObjects,
    args: &model::TaskArgs,
    x: &mut dyn Steps,
) -> Result<TaskEffect> {
    let (platform, site) = (objects.platform()?, objects.site()?);
    let model::TaskArgs::Restore {
        backup,
        own,
        from_target,
    } = args
    else {
        return Err(Error::Refused("a restore task without its backup".into()));
    };
    let (archive, own) = match (from_target, &objects.extra.copies.fetch) {
        (None, _) => (PathBuf::from(backup), *own),
        (Some(_), None) => {
            return Err(Error::Refused(
                "a restore from a backup target without its copy".into(),
            ));
        }
        // Fetched before anything is frozen: the site serves as before while it arrives.
        (Some(_), Some((target, copy))) => {
            let local = PathBuf::from(backup);
            // The local archive is gone (its machine or data dir was lost): the fetched copy
            // takes its place and stays, and the backup is whole here again.
            let keep_at = (!env.reads.exists(&local)?).then_some(local);
            let fetch = host::TargetFetch {
                target: target_address(target),
                keys: objects.extra.copies.keys.clone(),
                path: copy.path.clone(),
                sha256: copy.sha256.clone(),
                keep_at,
            };
            (x.fetch_from_backup_target(&fetch)?, true)
        }
    };
    // Writes are frozen from before the pre-restore backup begins until the restored state
    // is served: everything the site acknowledged is then in that backup, and nothing it
    // acknowledges is lost by the swap. Reads are served (the old state) throughout.
    let serving = site.status == SiteStatus::Installed;
    let vhost = env.vhost_path(&objects.server, site);
    if serving {
        site_logs_if_missing(env, platform, site, x)?;
        let nginx = env.nginx_ctl(&objects.server);
        x.nginx(
            &nginx,
            vec![(vhost.clone(), Some(env.vhost_read_only(objects)?))],
        )?;
        x.let_requests_in_flight_finish(&nginx)?;
    }
    let db = match &site.database {
        Some(db) => objects.db_ctl(db)?.map(|ctl| (db, ctl)),
        None => None,
    };
    let frozen = match &db {
        Some((db, ctl)) if env.reads.database_exists(ctl, &db.name)? => {
            x.freeze_database_writes(ctl, &db.name, &db.user)?;
            true
        }
        _ => false,
    };
    // Extracting into staging checks every member on the way: a corrupt, truncated or
    // foreign archive fails here, and the journal removes the staging directories, before
    // anything the site serves has changed.
    let docroot = render::site_files_dir(platform, site);
    let private = render::site_private_dir(platform, site);
    x.make_dir(&platform.path.join("private"))?;
    let tag = format!("restore-{}", host::random_hex(4));
    let files_stage = host::trash_path(&docroot, &tag);
    let private_stage = host::trash_path(&private, &tag);
    // The current state is backed up while the archive is extracted: both must be done
    // before anything changes, and neither touches what the other does.
    let request = backup_request(env, objects)?;
    let done = x.extract_and_back_up(&archive, &files_stage, &private_stage, &request)?;
    let dump = done.dump;
    if let Some(manifest) = &done.manifest {
        check_backup_fits(&archive, manifest, site, own)?;
    }
    let before = backup_effect(objects, &request, done.backup)?;
    // The staged trees get the site's own config and owners before they are served: the
    // site never runs on a config it cannot read, or on another site's.
    prepare_stage(env, objects, &files_stage, &private_stage, x)?;
    // Each tree in one atomic exchange, then the database (one RENAME TABLE on MariaDB).
    x.swap_tree(&docroot, &files_stage)?;
    x.swap_tree(&private, &private_stage)?;
    if let Some((db, ctl)) = &db {
        x.replace_database(ctl, &db.name, &db.user, &db.password, &dump)?;
    }
    // Credentials, config and owners are the site's own, whatever the backup held; then
    // the database user gets its writes back, and the vhost last.
    site_runtime(env, objects, DbMode::Verify, x)?;
    if frozen && let Some((db, ctl)) = &db {
        x.thaw_database_writes(ctl, &db.name, &db.user)?;
    }
    // What the site has now: its database is the backup's.
    let packages = site_packages(&env.site_app(objects)?, x);
    if site.status == SiteStatus::NeedsAttention {
        // Restored whole from a backup: the site is served again.
        let served = site_set_served(env, objects, SiteStatus::Installed, x)?;
        return Ok(TaskEffect::Many(vec![before, served, packages]));
    }
    if serving {
        x.nginx(
            &env.nginx_ctl(&objects.server),
            vec![(vhost, Some(env.vhost(objects)?))],
        )?;
    }
    Ok(TaskEffect::Many(vec![before, packages]))
}

/// Writes the site's own config files into the staged trees and gives them the site's
/// owners and modes, as [`site_runtime`] does to the live ones. A site whose Unix user is
/// gone (a site needing attention) gets both from `site_runtime` after the swap.
fn prepare_stage(
    env: &ScriptEnv,
    objects: &TaskObjects,
    files_stage: &Path,
    private_stage: &Path,
    x: &mut dyn Steps,
) -> Result<()> {
    let app = env.site_app(objects)?;
    if let Some(php) = &app.php
        && !env.reads.user_exists(&php.user)?
    {
        return Ok(());
    }
    let kind = kinds::of(app.platform.kind);
    for file in kind.site_config(&app) {
        for (root, stage) in [
            (&app.files_dir, files_stage),
            (&app.private_dir, private_stage),
        ] {
            let Ok(rel) = file.path.strip_prefix(root) else {
                continue;
            };
            let staged = stage.join(rel);
            if let Some(link) = host::link_below(stage, &staged) {
                return Err(Error::Refused(format!(
                    "{} is a link in the backup's files: fjord writes nothing through it",
                    link.display()
                )));
            }
            make_parents(stage, &staged, x)?;
            x.write_file(&staged, file.contents.as_bytes(), 0o640)?;
        }
    }
    x.fix_permissions(files_stage, &files_ownership(&objects.server, &app))?;
    x.fix_permissions(private_stage, &private_ownership(&app))?;
    Ok(())
}

/// Refuses a backup of another site, or one whose database engine is not the site's. One of
/// the site's `own` backups may name the site as it was called when it was taken.
pub(super) fn check_backup_fits(
    archive: &Path,
    manifest: &host::Manifest,
    site: &Site,
    own: bool,
) -> Result<()> {
    if !own && manifest.site != site.name.as_str() {
        return Err(Error::Refused(format!(
            "{} is a backup of site {}, not of {}",
            archive.display(),
            manifest.site,
            site.name
        )));
    }
    let wanted_engine = site
        .database
        .as_ref()
        .map(|d| d.engine.as_str().to_string());
    if manifest.db_engine != wanted_engine {
        return Err(Error::Refused(format!(
            "{} holds a {} database; the site has {}",
            archive.display(),
            manifest.db_engine.as_deref().unwrap_or("no"),
            wanted_engine.as_deref().unwrap_or("none")
        )));
    }
    Ok(())
}

/// The archive a backup step wrote (or, in a dry run, a stand-in name).
pub(super) fn backup_path(effect: &TaskEffect) -> PathBuf {
    match effect {
        TaskEffect::AddBackup(b) => PathBuf::from(&b.path),
        _ => PathBuf::from("(the new backup)"),
    }
}

/// Removes the backups the retention policy no longer keeps (never the one just written,
/// which is not in the list yet).
pub(super) fn prune_backups(objects: &TaskObjects, x: &mut dyn Steps) -> Result<TaskEffect> {
    let Some(retention) = objects.extra.retention else {
        return Ok(TaskEffect::None);
    };
    // The new backup counts as the newest.
    let mut list: Vec<(i64, i64)> = objects
        .extra
        .backups
        .iter()
        .map(|b| (b.id, b.created_at))
        .collect();
    list.push((i64::MAX, store::now_ms()));
    let prunable: Vec<i64> = retention
        .prunable(&list, store::now_ms())
        .into_iter()
        .filter(|id| *id != i64::MAX)
        .collect();
    if !prunable.is_empty() {
        x.log(&format!(
            "retention {retention:?}: removing {} old backup(s)",
            prunable.len()
        ));
    }
    remove_backups(objects, &prunable, x)
}

pub(super) fn remove_backups(
    objects: &TaskObjects,
    ids: &[i64],
    x: &mut dyn Steps,
) -> Result<TaskEffect> {
    for id in ids {
        let backup = objects
            .extra
            .backups
            .iter()
            .find(|b| b.id == *id)
            .ok_or_else(|| Error::NotFound(format!("backup {id} of this site").into()))?;
        x.remove_tree(Path::new(&backup.path))?;
    }
    // Last, since a copy removed from a target cannot be put back: best effort, each failure
    // logged (the copy is then left on the target, and forgotten with its backup).
    let plan = &objects.extra.copies;
    for copy in plan.copies.iter().filter(|c| ids.contains(&c.backup_id)) {
        let Some(target) = plan.targets.iter().find(|t| t.id == copy.target_id) else {
            continue;
        };
        x.remove_from_backup_target(&target_address(target), &plan.keys, &copy.path);
    }
    Ok(TaskEffect::RemoveBackups(ids.to_vec()))
}
