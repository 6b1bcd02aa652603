//! Sites on SQLite: a site's row, its names, its status and its database's name.
//! The `Store` impl forwards to these.

use super::*;

impl SqliteStore {
    pub(super) fn insert_site(
        &self,
        site: &NewSite,
        then: Option<NewTask>,
    ) -> Result<(Site, Option<Task>)> {
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            // The quota is checked in the transaction that adds the site, so that two adds at
            // once cannot both take the last place.
            if let Some(client) = site.client_id {
                let (name, quota, count): (String, Option<u32>, u32) = tx.query_row(
                    "SELECT name, site_quota, (SELECT count(*) FROM sites WHERE client_id = ?1)
                     FROM clients WHERE id = ?1",
                    [client],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )?;
                if let Some(quota) = quota.filter(|q| count >= *q) {
                    return Err(StoreError::Conflict(format!(
                        "client {name} has {count} sites and may have at most {quota} \
                         (its quota): delete one or raise the quota"
                    )));
                }
            }
            tx.execute(
                "INSERT INTO sites (name, platform_id, redirect_aliases, status, client_id, created_at, app_secret, upload_limit_mb, https, hsts)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    site.name.as_str(),
                    site.platform_id,
                    site.redirect_aliases,
                    site.status.as_str(),
                    site.client_id,
                    now_ms(),
                    site.app_secret,
                    site.upload_limit.map(|l| l.mb()),
                    site.https.mode.as_str(),
                    site.https.hsts
                ],
            )
            .map_err(|e| conflict_or(e, || format!("a site named {} already exists", site.name)))?;
            let id = tx.last_insert_rowid();
            tx.execute(
                "INSERT INTO host_names (name, site_id, is_main, position) VALUES (?1, ?2, 1, 0)",
                params![site.name.as_str(), id],
            )
            .map_err(|e| {
                conflict_or(e, || format!("host name {} is already an alias of another site", site.name))
            })?;
            insert_aliases(&tx, id, &site.aliases)?;
            if let Some(db) = &site.database {
                insert_site_database(&tx, id, db)?;
            }
            let task = maybe_enqueue(&tx, Target::Site(id), site.name.as_str(), then)?;
            let created = one(load_sites(&tx, "WHERE id = ?1", [id])?, || format!("site {id}"))?;
            tx.commit()?;
            Ok((created, task))
        })
    }

    pub(super) fn site(&self, id: i64) -> Result<Site> {
        self.with(|c| {
            one(load_sites(c, "WHERE id = ?1", [id])?, || {
                format!("site {id}")
            })
        })
    }

    pub(super) fn site_by_host(&self, host: &str) -> Result<Site> {
        self.with(|c| {
            one(
                load_sites(
                    c,
                    "WHERE id = (SELECT site_id FROM host_names WHERE name = ?1)",
                    [host],
                )?,
                || format!("site {host:?}"),
            )
        })
    }

    pub(super) fn sites(&self, platform_id: Option<i64>) -> Result<Vec<Site>> {
        self.with(|c| match platform_id {
            Some(p) => load_sites(c, "WHERE platform_id = ?1", [p]),
            None => load_sites(c, "", []),
        })
    }

    pub(super) fn update_site_names(
        &self,
        id: i64,
        aliases: &[Hostname],
        redirect_aliases: bool,
        upload_limit: Option<model::UploadLimit>,
        https: model::SiteHttps,
        then: Option<NewTask>,
    ) -> Result<(Site, Option<Task>)> {
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let n = tx.execute(
                "UPDATE sites SET redirect_aliases = ?2, upload_limit_mb = ?3, https = ?4, hsts = ?5 \
                 WHERE id = ?1",
                params![
                    id,
                    redirect_aliases,
                    upload_limit.map(|l| l.mb()),
                    https.mode.as_str(),
                    https.hsts
                ],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("site {id}")));
            }
            tx.execute(
                "DELETE FROM host_names WHERE site_id = ?1 AND is_main = 0",
                [id],
            )?;
            insert_aliases(&tx, id, aliases)?;
            let name: String =
                tx.query_row("SELECT name FROM sites WHERE id = ?1", [id], |r| r.get(0))?;
            let task = maybe_enqueue(&tx, Target::Site(id), &name, then)?;
            let site = one(load_sites(&tx, "WHERE id = ?1", [id])?, || {
                format!("site {id}")
            })?;
            tx.commit()?;
            Ok((site, task))
        })
    }

    pub(super) fn set_site_status(&self, id: i64, status: SiteStatus) -> Result<()> {
        self.with(|c| {
            c.execute(
                "UPDATE sites SET status = ?2 WHERE id = ?1",
                params![id, status.as_str()],
            )?;
            Ok(())
        })
    }

    pub(super) fn delete_site(&self, id: i64) -> Result<()> {
        self.with(|c| {
            c.execute("DELETE FROM site_databases WHERE site_id = ?1", [id])?;
            c.execute("DELETE FROM sites WHERE id = ?1", [id])?;
            Ok(())
        })
    }

    pub(super) fn database_name_taken(
        &self,
        server_id: i64,
        engine: DbEngine,
        name: &str,
    ) -> Result<bool> {
        self.with(|c| {
            let n: i64 = c.query_row(
                "SELECT count(*) FROM site_databases WHERE server_id = ?1 AND engine = ?2 AND (name = ?3 OR user = ?3)",
                params![server_id, engine.as_str(), name],
                |r| r.get(0),
            )?;
            Ok(n > 0)
        })
    }
}
