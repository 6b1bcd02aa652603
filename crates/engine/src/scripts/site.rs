//! A site's own life: install, verify, serving state (enable, disable), delete.

use super::*;

pub(super) fn site_install(
    env: &ScriptEnv,
    objects: &TaskObjects,
    args: &model::TaskArgs,
    x: &mut dyn Steps,
) -> Result<TaskEffect> {
    let app = env.site_app(objects)?;
    let kind = kinds::of(app.platform.kind);
    x.make_dir(&render::platform_sites_dir(app.platform))?;
    x.make_own_dir(&app.files_dir)?;
    for seed in kind.seed_files(&app) {
        if !x.reads().exists(&seed.path)? {
            make_parents(&app.files_dir, &seed.path, x)?;
            x.write_file(&seed.path, seed.contents.as_bytes(), 0o644)?;
        }
    }
    let input = match args {
        model::TaskArgs::Install(input) => input.clone(),
        _ => model::InstallInput::default(),
    };
    // The installer runs from the command line, so php-fpm takes the new pool meanwhile.
    site_runtime_beside(env, objects, DbMode::Install, x, &mut |x| {
        kind.install(&app, &input, x)
    })?;
    let served = TaskEffect::Many(vec![
        site_set_served(env, objects, SiteStatus::Installed, x)?,
        site_packages(&app, x),
        certificate_wanted(objects, x)?,
    ]);
    if let Some(to) = &env.mail_to
        && kind.has_login_link()
    {
        welcome_mail(env, &app, to, x)?;
    }
    Ok(served)
}

/// Arms a one-time login link and queues the mail that carries it to the site's client (sent
/// once the install is recorded; the link is nowhere else).
fn welcome_mail(
    env: &ScriptEnv,
    app: &kinds::SiteApp,
    to: &model::EmailAddress,
    x: &mut dyn Steps,
) -> Result<()> {
    let token = host::random_secret(24)?;
    let expires = store::now_ms() / 1000 + crate::ops::LOGIN_LINK_TTL_S;
    let hash = host::sha256_hex(token.as_bytes());
    let (Some(code), true) = (
        kinds::of(app.platform.kind).login_link(app, &hash, expires),
        app.php.is_some(),
    ) else {
        return Ok(());
    };
    if let Some(run) = app.php_run("arm the login link of the welcome mail", code, Vec::new()) {
        x.run_php(&run)?;
    }
    let (site, url) = (app.site.name.as_str(), app.url());
    env.outbox
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(crate::notify::Mail {
            to: to.clone(),
            subject: format!("Your new site {site} is ready"),
            body: format!(
                "Your site {site} is installed.\n\nLog in with this link, once, within 15 \
                 minutes:\n\n{url}/?fjord-login={token}\n\nThen set a password of \
                 your own in your profile.\n"
            ),
        });
    Ok(())
}

/// Makes the directories between `root` (which exists, and is the site's own) and `path`'s
/// parent.
pub(super) fn make_parents(root: &Path, path: &Path, x: &mut dyn Steps) -> Result<()> {
    let mut dirs = Vec::new();
    let mut dir = path.parent();
    while let Some(d) = dir.filter(|d| d.starts_with(root) && *d != root) {
        dirs.push(d.to_path_buf());
        dir = d.parent();
    }
    for d in dirs.iter().rev() {
        x.make_own_dir(d)?;
    }
    Ok(())
}

/// Everything a site runs with beside its own files: its user, its database and
/// credentials, its application's config, its files' owners and its php-fpm pool. Install,
/// verify and restore call it; running it twice changes nothing the second time.
pub(super) fn site_runtime(
    env: &ScriptEnv,
    objects: &TaskObjects,
    db_mode: DbMode,
    x: &mut dyn Steps,
) -> Result<()> {
    site_runtime_beside(env, objects, db_mode, x, &mut |_| Ok(()))
}

/// [`site_runtime`], with `beside` (steps that need no pool) run while php-fpm takes the
/// site's pool.
pub(super) fn site_runtime_beside(
    env: &ScriptEnv,
    objects: &TaskObjects,
    db_mode: DbMode,
    x: &mut dyn Steps,
    beside: &mut dyn FnMut(&mut dyn Steps) -> Result<()>,
) -> Result<()> {
    let app = env.site_app(objects)?;
    let kind = kinds::of(app.platform.kind);
    if let Some(php) = &app.php
        && !env.reads.user_exists(&php.user)?
    {
        x.create_user(&php.user, &app.private_dir)?;
    }
    site_logs(env, app.platform, app.site, x)?;
    x.make_dir(&app.platform.path.join("private"))?;
    x.make_own_dir(&app.private_dir)?;
    if let Some(php) = &app.php {
        x.make_own_dir(&php.tmp_dir)?;
    }
    if let Some(db) = &app.site.database {
        site_database(objects, db, db_mode, x)?;
    }
    for file in kind.site_config(&app) {
        for root in [&app.files_dir, &app.private_dir] {
            if !file.path.starts_with(root) {
                continue;
            }
            // The site's user owns these directories: fjord writes nothing through a link
            // it may have planted there.
            if let Some(link) = host::link_below(root, &file.path) {
                return Err(Error::Refused(format!(
                    "{} is a link in the site's own files: fjord writes nothing through it; \
                     remove it, then verify again",
                    link.display()
                )));
            }
            make_parents(root, &file.path, x)?;
        }
        x.write_file(&file.path, file.contents.as_bytes(), 0o640)?;
    }
    x.fix_permissions(&app.files_dir, &files_ownership(&objects.server, &app))?;
    x.fix_permissions(&app.private_dir, &private_ownership(&app))?;
    if let Some((ctl, path, conf)) = site_pool(env, objects)? {
        // `beside` fails with the engine's error, which is kept whole for the task.
        let mut beside_failed = None;
        let committed = x.php_fpm_beside(&ctl, vec![(path, Some(conf))], &mut |x| {
            beside(x).map_err(|e| {
                let message = e.to_string();
                beside_failed = Some(e);
                host::HostError::Refused(message)
            })
        });
        return match (committed, beside_failed) {
            (_, Some(failed)) => Err(failed),
            (committed, None) => Ok(committed?),
        };
    }
    beside(x)
}

/// A PHP site's pool: the php-fpm it runs under, its file and what the file holds.
pub(super) fn site_pool(
    env: &ScriptEnv,
    objects: &TaskObjects,
) -> Result<Option<(host::PhpFpmCtl, PathBuf, Vec<u8>)>> {
    let app = env.site_app(objects)?;
    let Some(php) = &app.php else {
        return Ok(None);
    };
    let service = php_service(&objects.server, app.platform)?;
    let pool = render::PhpPool {
        name: php.pool.clone(),
        user: php.user.clone(),
        site: app.site.name.to_string(),
        socket: php.socket.clone(),
        web_group: web_group(&objects.server),
        open_basedir: php.open_basedir.clone(),
        tmp_dir: php.tmp_dir.clone(),
        site_config: php.site_config.clone(),
        max_children: 5,
        allow_exec: app.platform.allow_exec,
        upload_limit: app.site.upload_limit_on(app.platform),
        putenv: kinds::of(app.platform.kind).needs_putenv(),
        error_log: Some(env.site_log_dir(app.site).join(render::PHP_ERROR_LOG)),
    };
    let mut conf = render::php_fpm_pool(&pool);
    if env.faults.corrupt_pool(app.site.name.as_str()) {
        conf.push_str("fjord_injected_fault_not_a_directive = 1\n");
    }
    Ok(Some((
        env.php_ctl(&objects.server, service),
        env.pool_path(service, &php.pool),
        conf.into_bytes(),
    )))
}

/// The site's log dir and files, before any vhost or pool names them (nginx's test would
/// make a missing one readable to everyone, or fail on a missing dir).
pub(super) fn site_logs(
    env: &ScriptEnv,
    platform: &Platform,
    site: &Site,
    x: &mut dyn Steps,
) -> Result<()> {
    let logs = env.site_logs(platform, site);
    if let Some(parent) = logs.dir.parent() {
        x.make_dir(parent)?;
    }
    x.site_logs(&logs)?;
    Ok(())
}

/// [`site_logs`] for a site that has no log dir yet: one made before fjord kept logs has
/// none until its next verify, and every vhost and pool of it names them from now on (nginx's
/// test fails on a missing dir). Whatever writes a site's vhost or pool without
/// [`site_runtime`] first calls this.
pub(super) fn site_logs_if_missing(
    env: &ScriptEnv,
    platform: &Platform,
    site: &Site,
    x: &mut dyn Steps,
) -> Result<()> {
    if x.reads().is_dir(&env.site_log_dir(site))? {
        return Ok(());
    }
    site_logs(env, platform, site, x)
}

/// Verify (and import) rewrite everything a site needs and repair what drifted; running it
/// twice changes nothing the second time.
pub(super) fn site_verify(
    env: &ScriptEnv,
    objects: &TaskObjects,
    x: &mut dyn Steps,
) -> Result<TaskEffect> {
    let (platform, site) = (objects.platform()?, objects.site()?);
    let files_dir = render::site_files_dir(platform, site);
    // Verify repairs; it never makes up a site whose files are gone (an empty docroot
    // would then be served as if it were the site).
    if !x.reads().is_dir(platform.path.as_path())? {
        return Err(Error::Refused(format!(
            "the code base of platform {} at {} is gone; restore it, then verify again",
            platform.name, platform.path
        )));
    }
    if !x.reads().exists(&files_dir)? {
        return Err(Error::Refused(format!(
            "the files of site {} at {} are gone; restore them from a backup \
             (fjord site restore {})",
            site.name,
            files_dir.display(),
            site.name
        )));
    }
    x.make_dir(&render::platform_sites_dir(platform))?;
    x.make_dir(&files_dir)?;
    site_runtime(env, objects, DbMode::Verify, x)?;
    let status = match site.status {
        SiteStatus::Disabled => SiteStatus::Disabled,
        _ => SiteStatus::Installed,
    };
    let app = env.site_app(objects)?;
    Ok(TaskEffect::Many(vec![
        site_set_served(env, objects, status, x)?,
        site_packages(&app, x),
        certificate_wanted(objects, x)?,
    ]))
}

/// The site's own packages, logged and recorded.
pub(super) fn site_packages(app: &kinds::SiteApp, x: &mut dyn Steps) -> TaskEffect {
    let packages = match kinds::of(app.platform.kind).site_packages(app) {
        Ok(packages) => packages,
        Err(why) => {
            // Reported, not fatal: a site serves whether or not fjord can read this.
            x.log(&format!("could not read the site's packages: {why}"));
            Vec::new()
        }
    };
    for p in &packages {
        x.log(&format!(
            "site {} {} {}",
            p.kind,
            p.name,
            p.version.as_deref().unwrap_or("(no version)")
        ));
    }
    TaskEffect::SetCodeFound {
        target: model::Target::Site(app.site.id),
        version: None,
        packages: serde_json::to_string(&packages).unwrap_or_default(),
        web_root: None,
    }
}

pub(super) fn site_set_served(
    env: &ScriptEnv,
    objects: &TaskObjects,
    status: SiteStatus,
    x: &mut dyn Steps,
) -> Result<TaskEffect> {
    let site = objects.site()?;
    site_logs_if_missing(env, objects.platform()?, site, x)?;
    let served = TaskObjects {
        site: Some(Site {
            status,
            ..site.clone()
        }),
        ..objects.clone()
    };
    let vhost = env.vhost(&served)?;
    x.nginx(
        &env.nginx_ctl(&objects.server),
        vec![(env.vhost_path(&objects.server, site), Some(vhost))],
    )?;
    Ok(TaskEffect::SetSiteStatus(site.id, status))
}

pub(super) fn site_delete(
    env: &ScriptEnv,
    objects: &TaskObjects,
    x: &mut dyn Steps,
) -> Result<TaskEffect> {
    let (platform, site) = (objects.platform()?, objects.site()?);
    x.nginx(
        &env.nginx_ctl(&objects.server),
        vec![(env.vhost_path(&objects.server, site), None)],
    )?;
    remove_pool(env, &objects.server, platform, site, x)?;
    x.remove_tree(&render::site_files_dir(platform, site))?;
    if let Some(db) = &site.database
        && let Some(ctl) = objects.db_ctl(db)?
    {
        x.drop_database(&ctl, &db.name, &db.user, &db.password)?;
    }
    x.remove_tree(&render::site_private_dir(platform, site))?;
    x.remove_tree(&env.site_log_dir(site))?;
    // Its certificate and key: no vhost names them now.
    x.remove_tree(&crate::paths::site_tls_dir(&env.data_dir, site.id))?;
    if platform.kind.runs_php() {
        // Last: its files, set aside until the task is done, still belong to it.
        x.remove_user(&env.site_user(site))?;
    }
    Ok(TaskEffect::DeleteSite(site.id))
}

/// Arms a one-time login link: the application stores the token's hash and its expiry, and
/// honours it once.
pub(super) fn site_login_link(
    env: &ScriptEnv,
    objects: &TaskObjects,
    args: &model::TaskArgs,
    x: &mut dyn Steps,
) -> Result<TaskEffect> {
    let app = env.site_app(objects)?;
    let model::TaskArgs::LoginLink {
        token_sha256: hash,
        expires_at_s: expires,
    } = args
    else {
        return Err(Error::Refused("a login link task without its token".into()));
    };
    let (hash, expires) = (hash.as_str(), *expires);
    if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::Refused(
            "the login link's token hash is malformed".into(),
        ));
    }
    let code = kinds::of(app.platform.kind)
        .login_link(&app, hash, expires)
        .ok_or_else(|| Error::Refused(format!("a {} site has no login link", app.platform.kind)))?;
    let run = app
        .php_run("arm a one-time login link", code, Vec::new())
        .ok_or_else(|| Error::Refused("a login link needs PHP".into()))?;
    x.run_php(&run)?;
    Ok(TaskEffect::None)
}

/// Clears the caches of the site's application (nothing to undo: a cache is rebuilt on use).
pub(super) fn site_cache_clear(
    env: &ScriptEnv,
    objects: &TaskObjects,
    x: &mut dyn Steps,
) -> Result<TaskEffect> {
    let app = env.site_app(objects)?;
    let run = kinds::of(app.platform.kind)
        .cache_clear(&app)
        .ok_or_else(|| {
            Error::Refused(format!(
                "a {} site has no cache to clear",
                app.platform.kind
            ))
        })?;
    x.run_php(&run)?;
    Ok(TaskEffect::None)
}

/// Takes a site's pool at one place away (nothing for a site without PHP).
pub(super) fn remove_pool(
    env: &ScriptEnv,
    server: &Server,
    platform: &Platform,
    site: &Site,
    x: &mut dyn Steps,
) -> Result<()> {
    if !platform.kind.runs_php() {
        return Ok(());
    }
    let service = php_service(server, platform)?;
    let pool = env.pool_path(service, &env.pool_name(platform, site));
    x.php_fpm(&env.php_ctl(server, service), vec![(pool, None)])?;
    Ok(())
}
