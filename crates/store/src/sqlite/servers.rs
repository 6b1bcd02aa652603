//! Servers on SQLite: a server's row and the database and web services it offers.
//! The `Store` impl forwards to these.

use super::*;

impl SqliteStore {
    pub(super) fn insert_server(
        &self,
        server: &Server,
        then: Option<NewTask>,
    ) -> Result<(Server, Option<Task>)> {
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let name = &server.name;
            tx.execute(
                "INSERT INTO servers (name, http, db, php, created_at, monitor, remote) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    name.as_str(),
                    to_json(&server.http)?,
                    to_json(&server.db)?,
                    to_json(&server.php)?,
                    now_ms(),
                    server.monitor,
                    server.remote.as_ref().map(to_json).transpose()?
                ],
            )
            .map_err(|e| conflict_or(e, || format!("a server named {name} already exists")))?;
            let id = tx.last_insert_rowid();
            let task = maybe_enqueue(&tx, Target::Server(id), name.as_str(), then)?;
            tx.commit()?;
            Ok((
                Server {
                    id,
                    ..server.clone()
                },
                task,
            ))
        })
    }

    pub(super) fn update_server_services(
        &self,
        server: &Server,
        then: Option<NewTask>,
    ) -> Result<(Server, Option<Task>)> {
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let in_use: Vec<(String, String)> = collect(
                &tx,
                "SELECT d.engine, s.name FROM site_databases d JOIN sites s ON s.id = d.site_id \
                 WHERE d.server_id = ?1 ORDER BY s.name",
                [server.id],
                |r: &Row| Ok(Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))),
            )?;
            let mut refused = Vec::new();
            for engine in in_use.iter().map(|(e, _)| e) {
                if server.db.iter().any(|d| d.engine.as_str() == engine)
                    || refused.iter().any(|(e, _): &(String, _)| e == engine)
                {
                    continue;
                }
                let sites: Vec<&str> = in_use
                    .iter()
                    .filter(|(e, _)| e == engine)
                    .map(|(_, s)| s.as_str())
                    .collect();
                refused.push((
                    engine.clone(),
                    format!(
                        "the {engine} service holds the databases of sites {}",
                        sites.join(", ")
                    ),
                ));
            }
            let platforms: Vec<(String, String)> = collect(
                &tx,
                "SELECT php_version, name FROM platforms WHERE server_id = ?1 \
                 AND php_version IS NOT NULL ORDER BY name",
                [server.id],
                |r: &Row| Ok(Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))),
            )?;
            for (version, platform) in &platforms {
                if !server.php.iter().any(|p| p.version.as_str() == version) {
                    refused.push((
                        version.clone(),
                        format!("platform {platform} runs on php-fpm {version}"),
                    ));
                }
            }
            if !refused.is_empty() {
                let why: Vec<String> = refused.into_iter().map(|(_, why)| why).collect();
                return Err(StoreError::Conflict(format!(
                    "server {} keeps the services in use: {}",
                    server.name,
                    why.join("; ")
                )));
            }
            let changed = tx.execute(
                "UPDATE servers SET db = ?2, php = ?3, http = ?4, monitor = ?5, remote = ?6 \
                 WHERE id = ?1",
                params![
                    server.id,
                    to_json(&server.db)?,
                    to_json(&server.php)?,
                    to_json(&server.http)?,
                    server.monitor,
                    server.remote.as_ref().map(to_json).transpose()?
                ],
            )?;
            if changed == 0 {
                return Err(StoreError::NotFound(format!("server {}", server.name)));
            }
            let task = maybe_enqueue(&tx, Target::Server(server.id), server.name.as_str(), then)?;
            tx.commit()?;
            Ok((server.clone(), task))
        })
    }

    pub(super) fn server(&self, id: i64) -> Result<Server> {
        self.with(|c| {
            one(
                collect(
                    c,
                    "SELECT id, name, http, db, php, monitor, remote FROM servers WHERE id = ?1",
                    [id],
                    server_from_row,
                )?,
                || format!("server {id}"),
            )
        })
    }

    pub(super) fn server_by_name(&self, name: &str) -> Result<Server> {
        self.with(|c| {
            one(
                collect(
                    c,
                    "SELECT id, name, http, db, php, monitor, remote FROM servers WHERE name = ?1",
                    [name],
                    server_from_row,
                )?,
                || format!("server {name:?}"),
            )
        })
    }

    pub(super) fn servers(&self) -> Result<Vec<Server>> {
        self.with(|c| {
            collect(
                c,
                "SELECT id, name, http, db, php, monitor, remote FROM servers ORDER BY name",
                [],
                server_from_row,
            )
        })
    }
}
