//! Rows of the state read into the model's types, and the task queue's row helpers.

use super::*;

pub(super) const TASK_COLS: &str = "id, kind, target_type, target_id, args, status, created_at, started_at, \
     finished_at, error, target_name, client_id, queued_by";

pub(super) fn task_from_row(r: &Row) -> rusqlite::Result<Result<Task>> {
    let kind: String = r.get(1)?;
    let target_type: String = r.get(2)?;
    let status: String = r.get(5)?;
    let args: String = r.get(4)?;
    Ok((|| {
        let kind = TaskKind::from_db(&kind).ok_or_else(|| corrupt(format!("task kind {kind}")))?;
        let args: serde_json::Value =
            serde_json::from_str(&args).map_err(|e| corrupt(format!("task args: {e}")))?;
        Ok(Task {
            id: r.get(0)?,
            kind,
            target: Target::from_db(&target_type, r.get(3)?)
                .ok_or_else(|| corrupt(format!("task target {target_type}")))?,
            args: model::TaskArgs::parse(kind, &args).map_err(|e| corrupt(e.to_string()))?,
            status: TaskStatus::from_db(&status)
                .ok_or_else(|| corrupt(format!("task status {status}")))?,
            created_at: r.get(6)?,
            started_at: r.get(7)?,
            finished_at: r.get(8)?,
            error: r.get(9)?,
            target_name: r.get(10)?,
            client_id: r.get(11)?,
            queued_by: r.get(12)?,
        })
    })())
}

pub(super) fn query_tasks(
    c: &Connection,
    sql: &str,
    p: impl rusqlite::Params,
) -> Result<Vec<Task>> {
    let mut stmt = c.prepare(sql)?;
    let rows = stmt.query_map(p, task_from_row)?;
    let mut out = Vec::new();
    for row in rows {
        out.push(row??);
    }
    Ok(out)
}

pub(super) fn get_task(c: &Connection, id: i64) -> Result<Task> {
    query_tasks(
        c,
        &format!("SELECT {TASK_COLS} FROM tasks WHERE id = ?1"),
        [id],
    )?
    .pop()
    .ok_or_else(|| StoreError::NotFound(format!("task {id}")))
}

pub(super) fn insert_task(
    c: &Connection,
    target: Target,
    target_name: &str,
    task: &NewTask,
) -> Result<Task> {
    c.execute(
        "INSERT INTO tasks (kind, target_type, target_id, target_name, args, status, created_at,
                            client_id)
         VALUES (?1, ?2, ?3, ?4, ?5, 'queued', ?6,
                 CASE WHEN ?2 = 'site' THEN (SELECT client_id FROM sites WHERE id = ?3) END)",
        params![
            task.kind.as_str(),
            target.type_str(),
            target.id(),
            target_name,
            task.args.to_json().to_string(),
            now_ms()
        ],
    )?;
    get_task(c, c.last_insert_rowid())
}

pub(super) fn maybe_enqueue(
    c: &Connection,
    target: Target,
    target_name: &str,
    then: Option<NewTask>,
) -> Result<Option<Task>> {
    then.map(|t| insert_task(c, target, target_name, &t))
        .transpose()
}

pub(super) fn to_json<T: serde::Serialize + ?Sized>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| corrupt(e.to_string()))
}

pub(super) fn server_from_row(r: &Row) -> rusqlite::Result<Result<Server>> {
    let name: String = r.get(1)?;
    let http: String = r.get(2)?;
    let db: String = r.get(3)?;
    let php: String = r.get(4)?;
    Ok((|| {
        Ok(Server {
            id: r.get(0)?,
            name: Name::parse("server name", &name).map_err(|e| corrupt(e.to_string()))?,
            http: serde_json::from_str(&http).map_err(|e| corrupt(format!("server http: {e}")))?,
            db: serde_json::from_str(&db).map_err(|e| corrupt(format!("server db: {e}")))?,
            php: serde_json::from_str(&php).map_err(|e| corrupt(format!("server php: {e}")))?,
            monitor: r.get(5)?,
            remote: r
                .get::<_, Option<String>>(6)?
                .map(|remote| serde_json::from_str(&remote))
                .transpose()
                .map_err(|e| corrupt(format!("server remote: {e}")))?,
        })
    })())
}

pub(super) fn platform_from_row(r: &Row) -> rusqlite::Result<Result<Platform>> {
    let name: String = r.get(1)?;
    let path: String = r.get(3)?;
    let kind: String = r.get(4)?;
    let php_version: Option<String> = r.get(6)?;
    let web_root: Option<String> = r.get(7)?;
    let drush: Option<String> = r.get(8)?;
    Ok((|| {
        Ok(Platform {
            id: r.get(0)?,
            name: Name::parse("platform name", &name).map_err(|e| corrupt(e.to_string()))?,
            server_id: r.get(2)?,
            path: AbsPath::parse("platform path", &path).map_err(|e| corrupt(e.to_string()))?,
            kind: PlatformKind::parse(&kind).map_err(|e| corrupt(e.to_string()))?,
            locked: r.get(5)?,
            php_version: php_version
                .map(|v| PhpVersion::parse(&v).map_err(|e| corrupt(e.to_string())))
                .transpose()?,
            web_root: web_root
                .map(|v| WebRoot::parse(&v).map_err(|e| corrupt(e.to_string())))
                .transpose()?,
            drush: drush
                .map(|v| AbsPath::parse("drush", &v).map_err(|e| corrupt(e.to_string())))
                .transpose()?,
            allow_exec: r.get(9)?,
            upload_limit: upload_limit(r.get(10)?)?,
            upstream: r
                .get::<_, Option<String>>(11)?
                .map(|u| {
                    u.parse::<std::net::SocketAddr>()
                        .map_err(|_| corrupt(format!("platform upstream {u:?}")))
                })
                .transpose()?,
        })
    })())
}

pub(super) const PLATFORM_COLS: &str = "id, name, server_id, path, kind, locked, php_version, web_root, drush, allow_exec, upload_limit_mb, upstream";

/// An upload limit as the state keeps it (MiB), checked against the model's bounds.
fn upload_limit(mb: Option<i64>) -> Result<Option<model::UploadLimit>> {
    mb.map(|mb| {
        u32::try_from(mb)
            .ok()
            .and_then(model::UploadLimit::from_mb)
            .ok_or_else(|| corrupt(format!("upload limit {mb} MiB")))
    })
    .transpose()
}

pub(super) fn collect<T>(
    c: &Connection,
    sql: &str,
    p: impl rusqlite::Params,
    f: fn(&Row) -> rusqlite::Result<Result<T>>,
) -> Result<Vec<T>> {
    let mut stmt = c.prepare(sql)?;
    let rows = stmt.query_map(p, f)?;
    let mut out = Vec::new();
    for row in rows {
        out.push(row??);
    }
    Ok(out)
}

pub(super) fn one<T>(mut v: Vec<T>, what: impl FnOnce() -> String) -> Result<T> {
    v.pop().ok_or_else(|| StoreError::NotFound(what()))
}

pub(super) fn load_sites(
    c: &Connection,
    where_sql: &str,
    p: impl rusqlite::Params,
) -> Result<Vec<Site>> {
    load_sites_paged(c, where_sql, "", p)
}

/// Sites in name order; `tail` (a `LIMIT … OFFSET …`) follows the order.
pub(super) fn load_sites_paged(
    c: &Connection,
    where_sql: &str,
    tail: &str,
    p: impl rusqlite::Params,
) -> Result<Vec<Site>> {
    let mut stmt = c.prepare(&format!(
        "SELECT id, name, platform_id, redirect_aliases, status, client_id, app_secret, upload_limit_mb, https, hsts FROM sites {where_sql} ORDER BY name {tail}"
    ))?;
    let rows = stmt.query_map(p, |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)?,
            r.get::<_, bool>(3)?,
            r.get::<_, String>(4)?,
            r.get::<_, Option<i64>>(5)?,
            r.get::<_, Option<String>>(6)?,
            r.get::<_, Option<i64>>(7)?,
            (r.get::<_, String>(8)?, r.get::<_, bool>(9)?),
        ))
    })?;
    let mut sites = Vec::new();
    for row in rows {
        let (id, name, platform_id, redirect_aliases, status, client_id, app_secret, upload, https) =
            row?;
        sites.push(Site {
            id,
            name: Hostname::parse("site name", &name).map_err(|e| corrupt(e.to_string()))?,
            platform_id,
            aliases: Vec::new(),
            redirect_aliases,
            status: SiteStatus::from_db(&status)
                .ok_or_else(|| corrupt(format!("site status {status}")))?,
            client_id,
            database: None,
            app_secret: app_secret.unwrap_or_default(),
            upload_limit: upload_limit(upload)?,
            https: model::SiteHttps {
                mode: model::HttpsMode::parse(&https.0)
                    .map_err(|_| corrupt(format!("https mode {}", https.0)))?,
                hsts: https.1,
            },
        });
    }
    if sites.is_empty() {
        return Ok(sites);
    }
    // Aliases and databases of all the sites at once: a page of the panel's list is two
    // queries, not a hundred. A long list reads the whole (small) tables instead of naming
    // thousands of ids.
    let at: HashMap<i64, usize> = sites.iter().enumerate().map(|(i, s)| (s.id, i)).collect();
    let only = if sites.len() <= 500 {
        let ids: Vec<String> = sites.iter().map(|s| s.id.to_string()).collect();
        format!("AND site_id IN ({})", ids.join(","))
    } else {
        String::new()
    };
    let mut db_stmt = c.prepare(&format!(
        "SELECT site_id, server_id, engine, name, user, password FROM site_databases
         WHERE 1 = 1 {only}"
    ))?;
    let rows = db_stmt.query_map([], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, String>(4)?,
            r.get::<_, String>(5)?,
        ))
    })?;
    for row in rows {
        let (site_id, server_id, engine, name, user, password) = row?;
        if let Some(&i) = at.get(&site_id) {
            sites[i].database = Some(SiteDatabase {
                server_id,
                engine: DbEngine::parse(&engine).map_err(|e| corrupt(e.to_string()))?,
                name,
                user,
                password,
            });
        }
    }
    let mut alias_stmt = c.prepare(&format!(
        "SELECT site_id, name FROM host_names WHERE is_main = 0 {only} ORDER BY site_id, position"
    ))?;
    let rows = alias_stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
    for row in rows {
        let (site_id, name) = row?;
        if let Some(&i) = at.get(&site_id) {
            sites[i]
                .aliases
                .push(Hostname::parse("alias", &name).map_err(|e| corrupt(e.to_string()))?);
        }
    }
    Ok(sites)
}

pub(super) fn backup_from_row(r: &Row) -> rusqlite::Result<Result<Backup>> {
    Ok(Ok(Backup {
        id: r.get(0)?,
        site_id: r.get(1)?,
        site_name: r.get(2)?,
        path: r.get(3)?,
        size: r.get(4)?,
        created_at: r.get(5)?,
    }))
}
