//! Platform tasks: verify (and the import of the sites found), the summary of a batch
//! migrate.

use super::*;

/// Makes sure the platform's directories exist and records the sites found in `sites/` that
/// fjord does not know, each with an import task.
pub(super) fn platform_verify(
    env: &ScriptEnv,
    objects: &TaskObjects,
    args: &model::TaskArgs,
    x: &mut dyn Steps,
) -> Result<TaskEffect> {
    let (platform, all) = (objects.platform()?, &objects.extra.all_sites);
    let r = x.reads();
    // Sites recorded but not installed yet (queued with the platform) have nothing there.
    let own = all
        .iter()
        .filter(|s| s.platform_id == platform.id)
        .filter(|s| matches!(s.status, SiteStatus::Installed | SiteStatus::Disabled))
        .count();
    if own > 0 && !r.is_dir(platform.path.as_path())? {
        return Err(Error::Refused(format!(
            "the code base of platform {} at {} is gone, and {own} site(s) live on it; \
             restore it (or each site from its backups), then verify again",
            platform.name, platform.path
        )));
    }
    let kind = kinds::of(platform.kind);
    let from = match args {
        model::TaskArgs::PlatformVerify {
            from: Some(from), ..
        } => Some(Path::new(from.as_str())),
        _ => None,
    };
    let code = match from {
        // A directory is checked before it is copied; an archive once it is unpacked.
        Some(from) if !r.exists(platform.path.as_path())? && r.is_dir(from)? => {
            let code = kind.describe(&*r, from)?;
            x.copy_in(from, platform.path.as_path(), kind.owned_files())?;
            code
        }
        Some(from) if !r.exists(platform.path.as_path())? => {
            x.copy_in(from, platform.path.as_path(), kind.owned_files())?;
            match kind.describe(&*r, platform.path.as_path()) {
                Ok(code) => code,
                // A dry run unpacked nothing: there is nothing to describe yet.
                Err(_) if !r.exists(platform.path.as_path())? => Default::default(),
                Err(e) => return Err(e),
            }
        }
        _ if r.exists(platform.path.as_path())? => kind.describe(&*r, platform.path.as_path())?,
        _ => kind
            .describe(&*r, platform.path.as_path())
            .unwrap_or_default(),
    };
    if let Some(version) = &code.version {
        x.log(&format!("{} {version}", platform.kind));
    }
    for package in &code.packages {
        x.log(&format!(
            "{} {} {}",
            package.kind,
            package.name,
            package.version.as_deref().unwrap_or("(no version)")
        ));
    }
    // Where the code serves from is what it is now (the state learns it from this verify).
    let platform = &Platform {
        web_root: code.web_root,
        ..platform.clone()
    };
    x.make_dir(platform.path.as_path())?;
    for (source, to) in kind.brought_in(&*r, platform.path.as_path()) {
        let contents = r.read_head(&source, 1 << 20).ok_or_else(|| {
            Error::Refused(format!(
                "{} (which the code base needs) could not be read",
                source.display()
            ))
        })?;
        let to = platform.path.as_path().join(to);
        if let Some(dir) = to.parent() {
            x.make_dir(dir)?;
        }
        x.write_file(&to, contents.as_bytes(), 0o644)?;
    }
    for file in kind.platform_files(&*r, platform) {
        x.write_file(&file.path, file.contents.as_bytes(), 0o644)?;
    }
    let sites_dir = render::platform_sites_dir(platform);
    x.make_dir(&sites_dir)?;
    x.make_dir(&platform.path.join("private"))?;
    served_sites_config(env, objects, platform, x)?;
    let mut found = Vec::new();
    // Every name and alias of every site, once: a search of all sites for each directory
    // cost 10,000 × 10,000 comparisons at 10,000 sites.
    let by_name: std::collections::HashMap<&str, &Site> = all
        .iter()
        .flat_map(|s| s.all_names().map(move |n| (n.as_str(), s)))
        .collect();
    for dir in r.list_subdirs(&sites_dir)? {
        if dir.starts_with('.') || kind.not_sites().contains(&dir.as_str()) {
            continue;
        }
        match model::Hostname::parse("site directory", &dir) {
            Ok(name) if name.as_str() == dir => match by_name.get(name.as_str()).copied() {
                None => match found_site(&*r, platform, all, &name) {
                    Ok(site) => {
                        x.log(&format!("found site {name}: queueing its import"));
                        found.push(site);
                    }
                    Err(why) => x.log(&format!("skipped sites/{dir}: {why}")),
                },
                Some(site) if site.platform_id == platform.id && site.name == name => {}
                Some(site) => x.log(&format!(
                    "skipped sites/{dir}: {name} is already taken by site {} (as its {}); \
                         rename the directory, or remove it if it is left over",
                    site.name,
                    if site.name == name {
                        "name, on another platform"
                    } else {
                        "alias"
                    }
                )),
            },
            Ok(_) => x.log(&format!(
                "skipped sites/{dir}: not in canonical (lowercase, punycode) form"
            )),
            Err(e) => x.log(&format!("skipped sites/{dir}: {e}")),
        }
    }
    let code_found = TaskEffect::SetCodeFound {
        target: model::Target::Platform(platform.id),
        version: code.version.clone(),
        packages: serde_json::to_string(&code.packages).unwrap_or_default(),
        web_root: code.web_root,
    };
    Ok(if found.is_empty() {
        code_found
    } else {
        TaskEffect::Many(vec![
            code_found,
            TaskEffect::ImportSites {
                platform_id: platform.id,
                sites: found,
            },
        ])
    })
}

/// Files a daemon's config commit writes (or, with `None`, removes).
type ConfigChanges = Vec<(PathBuf, Option<Vec<u8>>)>;

/// Rewrites the vhost and pool of each site the platform serves (what they take from the
/// platform, such as its upload limit, may have changed): one commit per daemon, and none
/// when nothing changed.
fn served_sites_config(
    env: &ScriptEnv,
    objects: &TaskObjects,
    platform: &Platform,
    x: &mut dyn Steps,
) -> Result<()> {
    let mut vhosts = Vec::new();
    let mut pools: Vec<(host::PhpFpmCtl, ConfigChanges)> = Vec::new();
    let served = objects
        .sites
        .iter()
        .filter(|s| matches!(s.status, SiteStatus::Installed | SiteStatus::Disabled));
    for site in served {
        let db_server = site.database.as_ref().and_then(|db| {
            objects
                .extra
                .db_servers
                .iter()
                .find(|s| s.id == db.server_id)
                .cloned()
        });
        let one = TaskObjects {
            platform: Some(platform.clone()),
            site: Some(site.clone()),
            sites: Vec::new(),
            db_server,
            extra: Extra {
                tls: objects.extra.tls_of_sites.get(&site.id).cloned(),
                ..Default::default()
            },
            server: objects.server.clone(),
        };
        site_logs_if_missing(env, platform, site, x)?;
        vhosts.push((env.vhost_path(&one.server, site), Some(env.vhost(&one)?)));
        if let Some((ctl, path, conf)) = site_pool(env, &one)? {
            match pools.iter_mut().find(|(c, _)| c.config == ctl.config) {
                Some((_, changes)) => changes.push((path, Some(conf))),
                None => pools.push((ctl, vec![(path, Some(conf))])),
            }
        }
    }
    if !vhosts.is_empty() {
        x.nginx(&env.nginx_ctl(&objects.server), vhosts)?;
    }
    for (ctl, changes) in pools {
        x.php_fpm(&ctl, changes)?;
    }
    Ok(())
}

/// A site found in the platform's `sites/`: for a kind with a config of its own, what its
/// config says (its database, on the platform's server; its password is replaced on import,
/// so fjord never puts one it did not make into SQL).
fn found_site(
    r: &dyn host::Reads,
    platform: &Platform,
    all: &[Site],
    name: &model::Hostname,
) -> std::result::Result<store::ImportedSite, String> {
    let kind = kinds::of(platform.kind);
    let generated = |bytes| host::random_secret(bytes).map_err(|e| e.to_string());
    if !platform.kind.runs_php() {
        return Ok(store::ImportedSite {
            name: name.clone(),
            database: None,
            app_secret: generated(256)?,
        });
    }
    let private = render::site_private_dir(platform, &placeholder_site(name));
    let files = render::site_files_dir(platform, &placeholder_site(name));
    let found = kind.found_config(r, &files, &private).ok_or_else(|| {
        format!(
            "no site config of a {} site found in {} or {}",
            platform.kind,
            files.display(),
            private.display()
        )
    })?;
    let database = match found.database {
        Some((db, user)) => {
            for id in [&db, &user] {
                if !model::is_safe_db_identifier(id) {
                    return Err(format!(
                        "its database name or user {id:?} is not one fjord uses ([a-z][a-z0-9_]*)"
                    ));
                }
            }
            let taken = all
                .iter()
                .filter_map(|s| s.database.as_ref())
                .any(|d| d.server_id == platform.server_id && (d.name == db || d.user == user));
            if taken {
                return Err(format!("its database {db} is already another site's"));
            }
            Some(SiteDatabase {
                server_id: platform.server_id,
                engine: found.engine.unwrap_or(DbEngine::Mysql),
                name: db,
                user,
                password: generated(16)?,
            })
        }
        None => None,
    };
    Ok(store::ImportedSite {
        name: name.clone(),
        database,
        app_secret: match found.app_secret {
            Some(secret) => secret,
            None => generated(256)?,
        },
    })
}

/// A site known only by its name, for the paths derived from it.
fn placeholder_site(name: &model::Hostname) -> Site {
    Site {
        id: 0,
        name: name.clone(),
        platform_id: 0,
        aliases: Vec::new(),
        redirect_aliases: false,
        status: SiteStatus::Queued,
        client_id: None,
        database: None,
        app_secret: String::new(),
        upload_limit: None,
        https: Default::default(),
    }
}

/// The summary of a batch migrate: each child's result; fails if any child failed.
pub(super) fn migrate_summary(objects: &TaskObjects, x: &mut dyn Steps) -> Result<TaskEffect> {
    let children = &objects.extra.children;
    let mut failed = Vec::new();
    for child in children {
        x.log(&format!(
            "task {} {} {}: {}{}",
            child.id,
            child.kind.as_str(),
            child.target_name,
            child.status.as_str(),
            child
                .error
                .as_deref()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default()
        ));
        if child.status != model::TaskStatus::Success {
            failed.push(child.target_name.clone());
        }
    }
    if failed.is_empty() {
        x.log(&format!("all {} sites migrated", children.len()));
        Ok(TaskEffect::None)
    } else {
        Err(Error::Refused(format!(
            "{} of {} migrations failed: {}",
            failed.len(),
            children.len(),
            failed.join(", ")
        )))
    }
}
