//! A site put in a new place: deploy from a backup, clone, migrate.

use super::*;

/// Puts a backup's files, private files and database in place as `site` on `platform`, whose
/// files dir and private dir must not exist yet: the deploy half of clone and migrate. What
/// the site runs with (its credentials, config, owners, pool) is [`site_runtime`]'s.
pub(super) fn deploy(objects: &TaskObjects, archive: &Path, x: &mut dyn Steps) -> Result<()> {
    let (platform, site) = (objects.platform()?, objects.site()?);
    let docroot = render::site_files_dir(platform, site);
    let private = render::site_private_dir(platform, site);
    if x.reads().exists(&docroot)? {
        return Err(Error::Refused(format!(
            "{} already exists: fjord will not overwrite it",
            docroot.display()
        )));
    }
    x.make_dir(&render::platform_sites_dir(platform))?;
    x.make_dir(&platform.path.join("private"))?;
    let tag = format!("deploy-{}", host::random_hex(4));
    let files_stage = host::trash_path(&docroot, &tag);
    let private_stage = host::trash_path(&private, &tag);
    let (dump, _) = x.extract_backup(archive, &files_stage, &private_stage)?;
    x.swap_tree(&docroot, &files_stage)?;
    x.swap_tree(&private, &private_stage)?;
    if let Some(db) = &site.database
        && let Some(ctl) = objects.db_ctl(db)?
    {
        x.create_database_from(&ctl, &db.name, &db.user, &db.password, &dump)?;
    }
    Ok(())
}

/// The migrate compatibility check, before anything changes: the packages the site has
/// enabled now (read from its database) against the target platform's code now. Its table
/// goes to the task log; a refusal fails the task with nothing done.
fn check_compatible(
    env: &ScriptEnv,
    site: &TaskObjects,
    target: &Platform,
    force: bool,
    x: &mut dyn Steps,
) -> Result<()> {
    let app = env.site_app(site)?;
    let kind = kinds::of(target.kind);
    let enabled = kind.site_packages(&app).map_err(|why| {
        Error::Refused(format!(
            "the compatibility check could not read the site's packages: {why}"
        ))
    })?;
    if enabled.is_empty() {
        return Ok(());
    }
    let code = kind.describe(&*x.reads(), target.path.as_path())?;
    let report = crate::compat::check(&enabled, &code.packages, force);
    x.log(&format!(
        "compatibility of site {} with platform {}:",
        app.site.name, target.name
    ));
    for line in report.table().lines() {
        x.log(&format!("  {line}"));
    }
    match report.refusal() {
        Some(why) => Err(Error::Refused(format!(
            "site {} cannot move to platform {}: {why}",
            app.site.name, target.name
        ))),
        None => Ok(()),
    }
}

/// Clone: back the source up, deploy that backup as the new site, serve it. The source site
/// is only read.
pub(super) fn site_clone(
    env: &ScriptEnv,
    objects: &TaskObjects,
    args: &model::TaskArgs,
    x: &mut dyn Steps,
) -> Result<TaskEffect> {
    let source = objects
        .extra
        .source
        .as_deref()
        .ok_or_else(|| Error::NotFound("the site to clone from".into()))?;
    let force = matches!(args, model::TaskArgs::Clone { force: true, .. });
    check_compatible(env, source, objects.platform()?, force, x)?;
    let backup = site_backup(env, source, x)?;
    deploy(objects, &backup_path(&backup), x)?;
    site_runtime(env, objects, DbMode::Verify, x)?;
    // The copy's own database, then its URL: a clone that links back to its source is
    // broken.
    let app = env.site_app(objects)?;
    let kind = kinds::of(app.platform.kind);
    kind.after_move(&app, x)?;
    kind.change_url(&app, &source.site()?.name, x)?;
    let served = site_set_served(env, objects, SiteStatus::Installed, x)?;
    Ok(TaskEffect::Many(vec![
        backup,
        served,
        site_packages(&app, x),
        // The copy's own names need a certificate of their own.
        certificate_wanted(objects, x)?,
    ]))
}

/// Migrate: copy the site to its new place while it serves, freeze its writes for the last
/// pass, switch, and remove it from its old place, so that nothing the site acknowledged is
/// lost and it answers reads throughout:
/// 1. back up, deploy the files at the new place (the database stays where it is, or is
///    copied below);
/// 2. if the database moves to another server: freeze writes (HTTP writes answered 503, the
///    database user held to reads) and copy it;
/// 3. copy what changed in the files since the backup began;
/// 4. switch the vhost to the new place, still read-only; set the old files aside (writes
///    to them fail from here) and copy what changed in them since step 3;
/// 5. serve the site read-write at its new place; drop the old database if it moved.
///
/// Until the switch the old site serves; any failure puts everything back.
pub(super) fn site_migrate(
    env: &ScriptEnv,
    objects: &TaskObjects,
    args: &model::TaskArgs,
    x: &mut dyn Steps,
) -> Result<TaskEffect> {
    let (old_platform, old_site) = (objects.platform()?, objects.site()?);
    let model::TaskArgs::Migrate(args) = args else {
        return Err(Error::Refused("a migrate task without its target".into()));
    };
    let new_platform = objects
        .extra
        .to_platform
        .clone()
        .ok_or_else(|| Error::NotFound("the target platform".into()))?;
    let new_server = objects
        .extra
        .to_server
        .clone()
        .ok_or_else(|| Error::NotFound("the target server".into()))?;
    if new_platform.id != old_platform.id {
        check_compatible(env, objects, &new_platform, args.force, x)?;
    }
    let new_name = args.name.clone();
    let new_db = match (
        &old_site.database,
        &objects.extra.to_db_server,
        args.db_name.as_deref(),
    ) {
        (Some(db), Some(server), Some(name)) => Some(SiteDatabase {
            server_id: server.id,
            engine: db.engine,
            name: name.to_string(),
            user: name.to_string(),
            password: host::random_secret(16)?,
        }),
        (db, _, _) => db.clone(),
    };
    let new_site = Site {
        name: new_name,
        platform_id: new_platform.id,
        database: new_db.clone(),
        ..old_site.clone()
    };
    let new_objects = TaskObjects {
        server: new_server.clone(),
        platform: Some(new_platform.clone()),
        site: Some(new_site.clone()),
        sites: Vec::new(),
        db_server: objects
            .extra
            .to_db_server
            .clone()
            .or_else(|| objects.db_server.clone()),
        // The certificate stays the site's (its files are on this machine).
        extra: Extra {
            tls: objects.extra.tls.clone(),
            ..Extra::default()
        },
    };
    let moves_files = new_platform.id != old_platform.id || new_site.name != old_site.name;
    let db_moves = new_db != old_site.database;
    let serving = old_site.status == SiteStatus::Installed;
    let (old_docroot, new_docroot) = (
        render::site_files_dir(old_platform, old_site),
        render::site_files_dir(&new_platform, &new_site),
    );
    let (old_private, new_private) = (
        render::site_private_dir(old_platform, old_site),
        render::site_private_dir(&new_platform, &new_site),
    );
    let old_vhost = env.vhost_path(&objects.server, old_site);
    let new_vhost = env.vhost_path(&new_server, &new_site);
    // A file changed from a second before the backup on is copied again by the last passes
    // (file times have a granularity; copying too much is only slower).
    let since_backup = store::now_ms() / 1000 - 1;

    // The read-only vhost below names the site's logs; the log dir keeps its place (it is
    // named by the site's user) wherever the site goes.
    if serving {
        site_logs_if_missing(env, old_platform, old_site, x)?;
    }

    // 1. Copy while the site serves.
    let backup = site_backup(env, objects, x)?;
    if moves_files {
        let files_only = TaskObjects {
            site: Some(Site {
                database: None,
                ..new_site.clone()
            }),
            ..new_objects.clone()
        };
        deploy(&files_only, &backup_path(&backup), x)?;
    }

    // 2. A database that moves is copied with the site's writes frozen. One that stays but
    // that the application changes in place at the new place (its upgrade, its new URL) is
    // snapshotted with the site's HTTP writes refused, so that a rollback loses nothing.
    let php_site = new_platform.kind.runs_php();
    let changes_db_in_place = php_site && moves_files && !db_moves;
    if changes_db_in_place && let Some(db) = &old_site.database {
        if serving {
            let nginx = env.nginx_ctl(&objects.server);
            x.nginx(
                &nginx,
                vec![(old_vhost.clone(), Some(env.vhost_read_only(objects)?))],
            )?;
            x.let_requests_in_flight_finish(&nginx)?;
        }
        if let Some(ctl) = objects.db_ctl(db)? {
            x.snapshot_database(&ctl, &db.name, &db.user, &db.password)?;
        }
    }
    if db_moves
        && let (Some(old_db), Some(db)) = (&old_site.database, &new_site.database)
        && let (Some(from), Some(to)) = (objects.db_ctl(old_db)?, new_objects.db_ctl(db)?)
    {
        if serving {
            let read_only = env.vhost_read_only(objects)?;
            let nginx = env.nginx_ctl(&objects.server);
            x.nginx(&nginx, vec![(old_vhost.clone(), Some(read_only))])?;
            x.let_requests_in_flight_finish(&nginx)?;
        }
        x.freeze_database_writes(&from, &old_db.name, &old_db.user)?;
        x.copy_database(&from, &old_db.name, &to, &db.name, &db.user, &db.password)?;
    }

    // 3. What changed in the files since the backup began.
    let since_first_pass = store::now_ms() / 1000 - 1;
    if moves_files {
        x.sync_tree(&old_docroot, &new_docroot, since_backup, true)?;
        if x.reads().exists(&old_private)? {
            x.sync_tree(&old_private, &new_private, since_backup, true)?;
        }
    }
    // The credentials and config at the new place name the database the site now uses; a
    // PHP site gets a pool there beside the old one (each place runs with its own paths).
    let db_mode = if db_moves {
        DbMode::Verify
    } else {
        DbMode::Keep
    };
    site_runtime(env, &new_objects, db_mode, x)?;
    if php_site && (moves_files || db_moves) {
        let app = env.site_app(&new_objects)?;
        let kind = kinds::of(new_platform.kind);
        kind.after_move(&app, x)?;
        if new_site.name != old_site.name {
            kind.change_url(&app, &old_site.name, x)?;
        }
    }

    // 4. Switch, still read-only; the new vhost and the removal of the old one are tested and
    // reloaded together when both are on one nginx.
    let switched = |read_only: bool| {
        if read_only && serving {
            env.vhost_read_only(&new_objects)
        } else {
            env.vhost(&new_objects)
        }
    };
    let last_pass = moves_files && serving;
    if new_server.id == objects.server.id {
        let mut changes = vec![(new_vhost.clone(), Some(switched(last_pass)?))];
        if old_vhost != new_vhost {
            changes.push((old_vhost, None));
        }
        x.nginx(&env.nginx_ctl(&new_server), changes)?;
    } else {
        x.nginx(
            &env.nginx_ctl(&new_server),
            vec![(new_vhost.clone(), Some(switched(last_pass)?))],
        )?;
        x.nginx(&env.nginx_ctl(&objects.server), vec![(old_vhost, None)])?;
    }
    if env.pool_name(old_platform, old_site) != env.pool_name(&new_platform, &new_site)
        || new_server.id != objects.server.id
    {
        remove_pool(env, &objects.server, old_platform, old_site, x)?;
    }
    if moves_files {
        // A request the old place took before the switch may still write to its files:
        // answered first, its write is in what the last pass copies.
        if serving {
            x.let_requests_in_flight_finish(&env.nginx_ctl(&objects.server))?;
        }
        // Set aside, the old files take no more writes; what they took since step 3 is
        // copied (nothing is removed: the new place may already hold newer files).
        if let Some(aside) = x.remove_tree(&old_docroot)? {
            x.sync_tree(&aside, &new_docroot, since_first_pass, false)?;
        }
        if let Some(aside) = x.remove_tree(&old_private)? {
            x.sync_tree(&aside, &new_private, since_first_pass, false)?;
        }
        let app = env.site_app(&new_objects)?;
        x.fix_permissions(&new_docroot, &files_ownership(&new_server, &app))?;
    }

    // 5. Read-write at the new place.
    if last_pass {
        x.nginx(
            &env.nginx_ctl(&new_server),
            vec![(new_vhost, Some(switched(false)?))],
        )?;
    }
    if db_moves
        && let Some(db) = &old_site.database
        && let Some(ctl) = objects.db_ctl(db)?
    {
        x.drop_database(&ctl, &db.name, &db.user, &db.password)?;
    }
    // What the site has now, at its new place (its database updated).
    let packages = site_packages(&env.site_app(&new_objects)?, x);
    // A new name is not in the certificate it keeps serving meanwhile: order one that is.
    let certificate = certificate_wanted(
        &TaskObjects {
            extra: Extra {
                acme_account: objects.extra.acme_account.clone(),
                certificate: objects.extra.certificate.clone(),
                ..Extra::default()
            },
            ..new_objects.clone()
        },
        x,
    )?;
    Ok(TaskEffect::Many(vec![
        certificate,
        backup,
        TaskEffect::MoveSite {
            site_id: old_site.id,
            platform_id: new_platform.id,
            name: new_site.name.clone(),
            database: new_db,
        },
        packages,
    ]))
}
