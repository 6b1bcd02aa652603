//! What a task's success or failure changes in the state ([`TaskEffect`]), applied in the
//! transaction that records its outcome.

use super::*;

pub(super) fn insert_aliases(c: &Connection, site_id: i64, aliases: &[Hostname]) -> Result<()> {
    for (i, alias) in aliases.iter().enumerate() {
        c.execute(
            "INSERT INTO host_names (name, site_id, is_main, position) VALUES (?1, ?2, 0, ?3)",
            params![alias.as_str(), site_id, i as i64 + 1],
        )
        .map_err(|e| conflict_or(e, || format!("host name {alias} already belongs to a site")))?;
    }
    Ok(())
}

pub(super) fn apply_effect(tx: &Connection, effect: &TaskEffect) -> Result<()> {
    match effect {
        TaskEffect::None => {}
        TaskEffect::SetCodeFound {
            target,
            version,
            packages,
            web_root,
        } => match target {
            Target::Platform(id) => {
                tx.execute(
                    "UPDATE platforms SET code_version = ?2, packages = ?3, web_root = ?4 \
                     WHERE id = ?1",
                    params![id, version, packages, web_root.map(|r| r.as_str())],
                )?;
            }
            Target::Site(id) => {
                tx.execute(
                    "UPDATE sites SET packages = ?2 WHERE id = ?1",
                    params![id, packages],
                )?;
            }
            Target::Server(_) => {}
        },
        TaskEffect::SetSiteStatus(site, status) => {
            tx.execute(
                "UPDATE sites SET status = ?2 WHERE id = ?1",
                params![site, status.as_str()],
            )?;
        }
        TaskEffect::SetSiteNames {
            site_id,
            aliases,
            redirect_aliases,
            upload_limit,
            https,
        } => {
            tx.execute(
                "UPDATE sites SET redirect_aliases = ?2, upload_limit_mb = ?3, https = ?4, hsts = ?5 \
                 WHERE id = ?1",
                params![
                    site_id,
                    redirect_aliases,
                    upload_limit.map(|l| l.mb()),
                    https.mode.as_str(),
                    https.hsts
                ],
            )?;
            tx.execute(
                "DELETE FROM host_names WHERE site_id = ?1 AND is_main = 0",
                [site_id],
            )?;
            insert_aliases(tx, *site_id, aliases)?;
        }
        TaskEffect::SetPlatformUploadLimit {
            platform_id,
            upload_limit,
        } => {
            tx.execute(
                "UPDATE platforms SET upload_limit_mb = ?2 WHERE id = ?1",
                params![platform_id, upload_limit.map(|l| l.mb())],
            )?;
        }
        TaskEffect::SetAcmeAccount(account) => certificates::set_acme_account(tx, account)?,
        TaskEffect::SetSiteCertificate(cert) => certificates::set_site_certificate(tx, cert)?,
        TaskEffect::CountAcmeOrders(count) => {
            tx.execute(
                "INSERT INTO acme_orders (placed_at, count) VALUES (?1, ?2)",
                params![now_ms(), *count as i64],
            )?;
        }
        TaskEffect::Warn(_) => {}
        TaskEffect::QueueTask {
            target,
            target_name,
            task,
        } => {
            insert_task(tx, *target, target_name, task)?;
        }
        TaskEffect::DeleteSite(site) => {
            tx.execute("DELETE FROM site_databases WHERE site_id = ?1", [site])?;
            tx.execute("DELETE FROM sites WHERE id = ?1", [site])?;
        }
        TaskEffect::AddBackup(NewBackup {
            site_id,
            site_name,
            path,
            size,
            copies,
        }) => {
            tx.execute(
                "INSERT INTO backups (site_id, site_name, path, size, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![site_id, site_name, path, size, now_ms()],
            )?;
            let backup_id = tx.last_insert_rowid();
            for copy in copies {
                tx.execute(
                    "INSERT INTO backup_copies (backup_id, target_id, path, size, sha256, copied_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![backup_id, copy.target_id, copy.path, copy.size, copy.sha256, now_ms()],
                )?;
            }
        }
        TaskEffect::MoveSite {
            site_id,
            platform_id,
            name,
            database,
        } => {
            // The new main name may have been one of the site's aliases.
            tx.execute(
                "DELETE FROM host_names WHERE site_id = ?1 AND name = ?2 AND is_main = 0",
                params![site_id, name.as_str()],
            )?;
            tx.execute(
                "UPDATE host_names SET name = ?2 WHERE site_id = ?1 AND is_main = 1",
                params![site_id, name.as_str()],
            )
            .map_err(|e| conflict_or(e, || format!("host name {name} was taken meanwhile")))?;
            tx.execute(
                "UPDATE sites SET platform_id = ?2, name = ?3 WHERE id = ?1",
                params![site_id, platform_id, name.as_str()],
            )?;
            tx.execute("DELETE FROM site_databases WHERE site_id = ?1", [site_id])?;
            if let Some(db) = database {
                tx.execute(
                    "INSERT INTO site_databases (site_id, server_id, engine, name, user, password)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![
                        site_id,
                        db.server_id,
                        db.engine.as_str(),
                        db.name,
                        db.user,
                        db.password
                    ],
                )?;
            }
        }
        TaskEffect::RemoveBackups(ids) => {
            for id in ids {
                tx.execute("DELETE FROM backups WHERE id = ?1", [id])?;
            }
        }
        TaskEffect::Many(effects) => {
            for e in effects {
                apply_effect(tx, e)?;
            }
        }
        TaskEffect::ImportSites { platform_id, sites } => {
            for imported in sites {
                let name = &imported.name;
                tx.execute(
                    "INSERT INTO sites (name, platform_id, status, created_at, app_secret) VALUES (?1, ?2, 'queued', ?3, ?4)",
                    params![name.as_str(), platform_id, now_ms(), imported.app_secret],
                )?;
                let site = tx.last_insert_rowid();
                if let Some(db) = &imported.database {
                    insert_site_database(tx, site, db)?;
                }
                tx.execute(
                    "INSERT INTO host_names (name, site_id, is_main, position) VALUES (?1, ?2, 1, 0)",
                    params![name.as_str(), site],
                )?;
                insert_task(
                    tx,
                    Target::Site(site),
                    name.as_str(),
                    &NewTask::new(TaskKind::SiteImport),
                )?;
            }
        }
    }
    Ok(())
}

pub(super) fn insert_site_database(tx: &Connection, site_id: i64, db: &SiteDatabase) -> Result<()> {
    tx.execute(
        "INSERT INTO site_databases (site_id, server_id, engine, name, user, password)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            site_id,
            db.server_id,
            db.engine.as_str(),
            db.name,
            db.user,
            db.password
        ],
    )
    .map_err(|e| conflict_or(e, || format!("database {} is already a site's", db.name)))?;
    Ok(())
}
