//! A site's own life: install, verify, serving state (enable, disable), delete.

use super::*;

pub(super) fn site_install(
    env: &ScriptEnv,
    objects: &TaskObjects,
    x: &mut dyn Steps,
) -> Result<TaskEffect> {
    let (platform, site) = (objects.platform()?, objects.site()?);
    let docroot = render::site_docroot(platform, site);
    x.make_dir(&platform.path.join("sites"))?;
    x.make_dir(&docroot)?;
    if !docroot.join("index.html").exists() && !docroot.join("index.htm").exists() {
        x.write_file(
            &docroot.join("index.html"),
            render::placeholder_index(site).as_bytes(),
            0o644,
        )?;
    }
    x.fix_permissions(&docroot, files_owner(&objects.server))?;
    if let Some(db) = &site.database {
        site_database(objects, db, DbMode::Install, x)?;
    }
    site_set_served(env, objects, SiteStatus::Installed, x)
}

/// Verify (and import) rewrite everything a site needs and repair what drifted; running it
/// twice changes nothing the second time.
pub(super) fn site_verify(
    env: &ScriptEnv,
    objects: &TaskObjects,
    x: &mut dyn Steps,
) -> Result<TaskEffect> {
    let (platform, site) = (objects.platform()?, objects.site()?);
    let docroot = render::site_docroot(platform, site);
    // Verify repairs; it never makes up a site whose files are gone (an empty docroot
    // would then be served as if it were the site).
    if !platform.path.as_path().is_dir() {
        return Err(Error::Refused(format!(
            "the code base of platform {} at {} is gone; restore it, then verify again",
            platform.name, platform.path
        )));
    }
    if !docroot.exists() {
        return Err(Error::Refused(format!(
            "the files of site {} at {} are gone; restore them from a backup \
             (fjord site restore {})",
            site.name,
            docroot.display(),
            site.name
        )));
    }
    x.make_dir(&platform.path.join("sites"))?;
    x.make_dir(&docroot)?;
    x.fix_permissions(&docroot, files_owner(&objects.server))?;
    if let Some(db) = &site.database {
        site_database(objects, db, DbMode::Verify, x)?;
    }
    let status = match site.status {
        SiteStatus::Disabled => SiteStatus::Disabled,
        _ => SiteStatus::Installed,
    };
    site_set_served(env, objects, status, x)
}

pub(super) fn site_set_served(
    env: &ScriptEnv,
    objects: &TaskObjects,
    status: SiteStatus,
    x: &mut dyn Steps,
) -> Result<TaskEffect> {
    let (platform, site) = (objects.platform()?, objects.site()?);
    let served = Site {
        status,
        ..site.clone()
    };
    let vhost = env.vhost(&objects.server, platform, &served);
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
    x.remove_tree(&render::site_docroot(platform, site))?;
    if let Some(db) = &site.database
        && let Some(ctl) = db_ctl(objects.db_service(db)?)
    {
        x.drop_database(&ctl, &db.name, &db.user, &db.password)?;
    }
    x.remove_tree(&render::site_private_dir(platform, site))?;
    Ok(TaskEffect::DeleteSite(site.id))
}
