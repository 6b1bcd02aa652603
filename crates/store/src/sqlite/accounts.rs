//! `Accounts` on SQLite: users, sessions, tokens, links, failed logins, clients, site pages.

use model::{EmailAddress, Role, User};

use super::*;
use crate::{
    Accounts, ApiToken, ClientSummary, LoginFailures, NewUser, SessionRecord, SitePage, SiteQuery,
    UserUpdate,
};

const USER_COLS: &str = "id, name, email, role, client_id, created_at, disabled";

fn user_from_row(r: &Row) -> rusqlite::Result<Result<User>> {
    let name: String = r.get(1)?;
    let email: Option<String> = r.get(2)?;
    let role: String = r.get(3)?;
    Ok((|| {
        Ok(User {
            id: r.get(0)?,
            name: Name::parse("user name", &name).map_err(|e| corrupt(e.to_string()))?,
            email: email
                .map(|e| EmailAddress::parse("email", &e).map_err(|e| corrupt(e.to_string())))
                .transpose()?,
            role: Role::parse(&role).map_err(|e| corrupt(e.to_string()))?,
            client_id: r.get(4)?,
            created_at: r.get(5)?,
            disabled: r.get(6)?,
        })
    })())
}

fn load_users(c: &Connection, where_sql: &str, p: impl rusqlite::Params) -> Result<Vec<User>> {
    let mut stmt = c.prepare_cached(&format!(
        "SELECT {USER_COLS} FROM users {where_sql} ORDER BY name"
    ))?;
    let rows = stmt.query_map(p, user_from_row)?;
    let mut out = Vec::new();
    for row in rows {
        out.push(row??);
    }
    Ok(out)
}

pub(super) fn load_clients(
    c: &Connection,
    where_sql: &str,
    p: impl rusqlite::Params,
) -> Result<Vec<Client>> {
    let mut stmt = c.prepare(&format!(
        "SELECT id, name, email, site_quota FROM clients {where_sql} ORDER BY name"
    ))?;
    let rows = stmt.query_map(p, |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, Option<String>>(2)?,
            r.get::<_, Option<u32>>(3)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (id, name, email, site_quota) = row?;
        out.push(Client {
            id,
            name: Name::parse("client name", &name).map_err(|e| corrupt(e.to_string()))?,
            email: email
                .map(|e| {
                    EmailAddress::parse("client email", &e).map_err(|e| corrupt(e.to_string()))
                })
                .transpose()?,
            site_quota,
        });
    }
    Ok(out)
}

fn summarize(c: &Connection, client: Client) -> Result<ClientSummary> {
    let (sites, users): (i64, i64) = c.query_row(
        "SELECT (SELECT count(*) FROM sites WHERE client_id = ?1),
                (SELECT count(*) FROM users WHERE client_id = ?1)",
        [client.id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let platforms = platforms_of(c, client.id)?;
    Ok(ClientSummary {
        client,
        sites,
        users,
        platforms,
    })
}

fn platforms_of(c: &Connection, client_id: i64) -> Result<Vec<i64>> {
    let mut stmt = c.prepare_cached(
        "SELECT platform_id FROM client_platforms WHERE client_id = ?1 ORDER BY platform_id",
    )?;
    let platforms = stmt
        .query_map([client_id], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<i64>>>()?;
    Ok(platforms)
}

/// Whether a search term can go through the trigram index: three or more characters, all of
/// them such as host names hold (so none is special to `LIKE`).
fn indexed_search(term: &str) -> bool {
    term.len() >= 3
        && term
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
}

/// `LIKE` with the user's `%`, `_` and `\` taken literally.
fn like_pattern(search: &str) -> String {
    let mut out = String::from("%");
    for ch in search.chars() {
        if matches!(ch, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(ch);
    }
    out.push('%');
    out
}

impl Accounts for SqliteStore {
    fn insert_user(&self, user: &NewUser) -> Result<User> {
        self.with(|c| {
            c.execute(
                "INSERT INTO users (name, email, role, client_id, password_hash, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    user.name.as_str(),
                    user.email.as_ref().map(|e| e.as_str()),
                    user.role.as_str(),
                    user.client_id,
                    user.password_hash,
                    now_ms()
                ],
            )
            .map_err(|e| conflict_or(e, || format!("a user named {} already exists", user.name)))?;
            let id = c.last_insert_rowid();
            one(load_users(c, "WHERE id = ?1", [id])?, || {
                format!("user {id}")
            })
        })
    }

    fn user(&self, id: i64) -> Result<User> {
        self.with(|c| {
            one(load_users(c, "WHERE id = ?1", [id])?, || {
                format!("user {id}")
            })
        })
    }

    fn user_by_name(&self, name: &str) -> Result<User> {
        self.with(|c| {
            one(load_users(c, "WHERE name = ?1", [name])?, || {
                format!("user {name}")
            })
        })
    }

    fn users(&self, client_id: Option<i64>) -> Result<Vec<User>> {
        self.with(|c| match client_id {
            Some(id) => load_users(c, "WHERE client_id = ?1", [id]),
            None => load_users(c, "", []),
        })
    }

    fn user_count(&self) -> Result<u64> {
        self.with(|c| Ok(c.query_row("SELECT count(*) FROM users", [], |r| r.get(0))?))
    }

    fn update_user(&self, id: i64, update: &UserUpdate) -> Result<User> {
        self.with(|c| {
            let n = c.execute(
                "UPDATE users SET email = ?2, role = ?3, client_id = ?4, disabled = ?5 WHERE id = ?1",
                params![
                    id,
                    update.email.as_ref().map(|e| e.as_str()),
                    update.role.as_str(),
                    update.client_id,
                    update.disabled
                ],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("user {id}")));
            }
            if update.disabled {
                c.execute("DELETE FROM sessions WHERE user_id = ?1", [id])?;
            }
            one(load_users(c, "WHERE id = ?1", [id])?, || format!("user {id}"))
        })
    }

    fn delete_user(&self, id: i64) -> Result<()> {
        self.with(|c| {
            if c.execute("DELETE FROM users WHERE id = ?1", [id])? == 0 {
                return Err(StoreError::NotFound(format!("user {id}")));
            }
            Ok(())
        })
    }

    fn password_hash(&self, user_id: i64) -> Result<Option<String>> {
        self.with(|c| {
            c.query_row(
                "SELECT password_hash FROM users WHERE id = ?1",
                [user_id],
                |r| r.get(0),
            )
            .optional()?
            .ok_or_else(|| StoreError::NotFound(format!("user {user_id}")))
        })
    }

    fn set_password_hash(&self, user_id: i64, hash: &str) -> Result<()> {
        self.with(|c| {
            if c.execute(
                "UPDATE users SET password_hash = ?2 WHERE id = ?1",
                params![user_id, hash],
            )? == 0
            {
                return Err(StoreError::NotFound(format!("user {user_id}")));
            }
            Ok(())
        })
    }

    fn insert_session(
        &self,
        token_sha256: &str,
        user_id: i64,
        csrf: &str,
        address: &str,
    ) -> Result<()> {
        self.with(|c| {
            let now = now_ms();
            c.execute(
                "INSERT INTO sessions (token_sha256, user_id, csrf, address, created_at, seen_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
                params![token_sha256, user_id, csrf, address, now],
            )?;
            Ok(())
        })
    }

    fn session(
        &self,
        token_sha256: &str,
        idle_ms: i64,
        max_ms: i64,
    ) -> Result<Option<SessionRecord>> {
        self.with(|c| {
            let now = now_ms();
            let row: Option<(i64, String, i64, i64)> = c
                .prepare_cached(
                    "SELECT user_id, csrf, created_at, seen_at FROM sessions WHERE token_sha256 = ?1",
                )?
                .query_row([token_sha256], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })
                .optional()?;
            let Some((user_id, csrf, created_at, seen_at)) = row else {
                return Ok(None);
            };
            if now - seen_at > idle_ms || now - created_at > max_ms {
                c.execute("DELETE FROM sessions WHERE token_sha256 = ?1", [token_sha256])?;
                return Ok(None);
            }
            let user = one(load_users(c, "WHERE id = ?1", [user_id])?, || {
                format!("user {user_id}")
            })?;
            if user.disabled {
                return Ok(None);
            }
            // Marking it seen is a write per request; once a minute is enough for the idle
            // limit and keeps page views from queueing behind the dispatchers' writes.
            if now - seen_at > 60_000 {
                c.execute(
                    "UPDATE sessions SET seen_at = ?2 WHERE token_sha256 = ?1",
                    params![token_sha256, now],
                )?;
            }
            Ok(Some(SessionRecord {
                user,
                csrf,
                created_at,
            }))
        })
    }

    fn delete_session(&self, token_sha256: &str) -> Result<()> {
        self.with(|c| {
            c.execute(
                "DELETE FROM sessions WHERE token_sha256 = ?1",
                [token_sha256],
            )?;
            Ok(())
        })
    }

    fn delete_sessions(&self, user_id: i64) -> Result<u64> {
        self.with(|c| Ok(c.execute("DELETE FROM sessions WHERE user_id = ?1", [user_id])? as u64))
    }

    fn insert_login_link(&self, token_sha256: &str, user_id: i64, expires_at: i64) -> Result<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO login_links (token_sha256, user_id, expires_at) VALUES (?1, ?2, ?3)",
                params![token_sha256, user_id, expires_at],
            )?;
            Ok(())
        })
    }

    fn take_login_link(&self, token_sha256: &str) -> Result<Option<User>> {
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let row: Option<(i64, i64)> = tx
                .query_row(
                    "SELECT user_id, expires_at FROM login_links WHERE token_sha256 = ?1",
                    [token_sha256],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            tx.execute(
                "DELETE FROM login_links WHERE token_sha256 = ?1 OR expires_at < ?2",
                params![token_sha256, now_ms()],
            )?;
            let user = match row {
                Some((user_id, expires_at)) if expires_at >= now_ms() => {
                    load_users(&tx, "WHERE id = ?1 AND disabled = 0", [user_id])?.pop()
                }
                _ => None,
            };
            tx.commit()?;
            Ok(user)
        })
    }

    fn insert_api_token(&self, user_id: i64, name: &str, token_sha256: &str) -> Result<ApiToken> {
        self.with(|c| {
            let now = now_ms();
            c.execute(
                "INSERT INTO api_tokens (user_id, name, token_sha256, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![user_id, name, token_sha256, now],
            )?;
            Ok(ApiToken {
                id: c.last_insert_rowid(),
                user_id,
                name: name.to_string(),
                created_at: now,
                last_used_at: None,
            })
        })
    }

    fn api_tokens(&self, user_id: i64) -> Result<Vec<ApiToken>> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT id, user_id, name, created_at, last_used_at FROM api_tokens
                 WHERE user_id = ?1 ORDER BY id",
            )?;
            let rows = stmt.query_map([user_id], |r| {
                Ok(ApiToken {
                    id: r.get(0)?,
                    user_id: r.get(1)?,
                    name: r.get(2)?,
                    created_at: r.get(3)?,
                    last_used_at: r.get(4)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    fn delete_api_token(&self, user_id: i64, id: i64) -> Result<()> {
        self.with(|c| {
            let n = c.execute(
                "DELETE FROM api_tokens WHERE id = ?1 AND user_id = ?2",
                params![id, user_id],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("token {id}")));
            }
            Ok(())
        })
    }

    fn api_token_user(&self, token_sha256: &str) -> Result<Option<User>> {
        self.with(|c| {
            let row: Option<(i64, i64, Option<i64>)> = c
                .prepare_cached(
                    "SELECT id, user_id, last_used_at FROM api_tokens WHERE token_sha256 = ?1",
                )?
                .query_row([token_sha256], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()?;
            let Some((id, user_id, last_used)) = row else {
                return Ok(None);
            };
            let now = now_ms();
            if last_used.is_none_or(|at| now - at > 60_000) {
                c.execute(
                    "UPDATE api_tokens SET last_used_at = ?2 WHERE id = ?1",
                    params![id, now],
                )?;
            }
            Ok(load_users(c, "WHERE id = ?1 AND disabled = 0", [user_id])?.pop())
        })
    }

    fn record_login_failure(&self, user_name: &str, address: &str) -> Result<()> {
        self.with(|c| {
            let now = now_ms();
            c.execute(
                "INSERT INTO login_failures (user_name, address, at) VALUES (?1, ?2, ?3)",
                params![user_name, address, now],
            )?;
            // Failures older than a day count for nothing; keep the table small.
            c.execute(
                "DELETE FROM login_failures WHERE at < ?1",
                [now - 86_400_000],
            )?;
            Ok(())
        })
    }

    fn login_failures(&self, user_name: &str, address: &str, since: i64) -> Result<LoginFailures> {
        self.with(|c| {
            Ok(c.query_row(
                "SELECT (SELECT count(*) FROM login_failures WHERE user_name = ?1 AND at >= ?3),
                        (SELECT count(*) FROM login_failures
                         WHERE user_name = ?1 AND address = ?2 AND at >= ?3),
                        (SELECT count(*) FROM login_failures WHERE address = ?2 AND at >= ?3)",
                params![user_name, address, since],
                |r| {
                    Ok(LoginFailures {
                        account: r.get(0)?,
                        account_from_address: r.get(1)?,
                        address: r.get(2)?,
                    })
                },
            )?)
        })
    }

    fn clear_login_failures(&self, user_name: &str, address: &str) -> Result<()> {
        self.with(|c| {
            c.execute(
                "DELETE FROM login_failures WHERE user_name = ?1 AND address = ?2",
                [user_name, address],
            )?;
            Ok(())
        })
    }

    fn clients(&self) -> Result<Vec<ClientSummary>> {
        self.with(|c| {
            load_clients(c, "", [])?
                .into_iter()
                .map(|client| summarize(c, client))
                .collect()
        })
    }

    fn client_summary(&self, id: i64) -> Result<ClientSummary> {
        self.with(|c| {
            let client = one(load_clients(c, "WHERE id = ?1", [id])?, || {
                format!("client {id}")
            })?;
            summarize(c, client)
        })
    }

    fn client_by_name(&self, name: &str) -> Result<Client> {
        self.with(|c| {
            one(load_clients(c, "WHERE name = ?1", [name])?, || {
                format!("client {name}")
            })
        })
    }

    fn client_names(&self, ids: &[i64]) -> Result<std::collections::HashMap<i64, String>> {
        if ids.is_empty() {
            return Ok(Default::default());
        }
        self.with(|c| {
            let list: Vec<String> = ids.iter().map(i64::to_string).collect();
            let mut stmt = c.prepare(&format!(
                "SELECT id, name FROM clients WHERE id IN ({})",
                list.join(",")
            ))?;
            let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    fn set_client_quota(&self, id: i64, quota: Option<u32>) -> Result<()> {
        self.with(|c| {
            if c.execute(
                "UPDATE clients SET site_quota = ?2 WHERE id = ?1",
                params![id, quota],
            )? == 0
            {
                return Err(StoreError::NotFound(format!("client {id}")));
            }
            Ok(())
        })
    }

    fn set_client_platforms(&self, id: i64, platform_ids: &[i64]) -> Result<()> {
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.execute("DELETE FROM client_platforms WHERE client_id = ?1", [id])?;
            for platform in platform_ids {
                tx.execute(
                    "INSERT OR IGNORE INTO client_platforms (client_id, platform_id) VALUES (?1, ?2)",
                    params![id, platform],
                )?;
            }
            tx.commit()?;
            Ok(())
        })
    }

    fn client_platforms(&self, id: i64) -> Result<Vec<i64>> {
        self.with(|c| platforms_of(c, id))
    }

    fn site_page(&self, query: &SiteQuery) -> Result<SitePage> {
        self.with(|c| {
            let mut clauses = Vec::new();
            let mut args: Vec<rusqlite::types::Value> = Vec::new();
            if let Some(search) = query.search.as_deref().filter(|s| !s.is_empty()) {
                let search = search.to_lowercase();
                args.push(like_pattern(&search).into());
                if indexed_search(&search) {
                    // The trigram index answers a LIKE of three or more characters without
                    // reading every name; a term of host name characters needs no escape.
                    clauses.push(format!(
                        "id IN (SELECT site_id FROM host_names WHERE rowid IN \
                         (SELECT rowid FROM host_names_search WHERE name LIKE ?{}))",
                        args.len()
                    ));
                } else {
                    clauses.push(format!(
                        "id IN (SELECT site_id FROM host_names WHERE name LIKE ?{} ESCAPE '\\')",
                        args.len()
                    ));
                }
            }
            if let Some(status) = query.status {
                args.push(status.as_str().to_string().into());
                clauses.push(format!("status = ?{}", args.len()));
            }
            if let Some(platform) = query.platform_id {
                args.push(platform.into());
                clauses.push(format!("platform_id = ?{}", args.len()));
            }
            if let Some(client) = query.client_id {
                args.push(client.into());
                clauses.push(format!("client_id = ?{}", args.len()));
            }
            let where_sql = if clauses.is_empty() {
                String::new()
            } else {
                format!("WHERE {}", clauses.join(" AND "))
            };
            // Without a search or a platform, the total is in the counts the triggers keep.
            let total: u64 = if query.search.is_none() && query.platform_id.is_none() {
                c.prepare_cached(
                    "SELECT coalesce(sum(n), 0) FROM site_counts
                     WHERE (?1 IS NULL OR status = ?1) AND (?2 IS NULL OR client_id = ?2)",
                )?
                .query_row(
                    params![query.status.map(|s| s.as_str()), query.client_id],
                    |r| r.get(0),
                )?
            } else {
                c.prepare_cached(&format!("SELECT count(*) FROM sites {where_sql}"))?
                    .query_row(rusqlite::params_from_iter(args.iter()), |r| r.get(0))?
            };
            // SQLite's integers are signed: an offset past them is past every row anyway.
            let offset = query.offset.min(i64::MAX as u64);
            // The page's ids first, from the name index alone (a far page steps over its
            // offset in the index, not through the table); then those sites whole.
            let mut stmt = c.prepare(&format!(
                "SELECT id FROM sites {where_sql} ORDER BY name LIMIT {} OFFSET {offset}",
                query.limit.min(1000)
            ))?;
            let ids = stmt
                .query_map(rusqlite::params_from_iter(args.iter()), |r| {
                    r.get::<_, i64>(0)
                })?
                .collect::<rusqlite::Result<Vec<i64>>>()?;
            let sites = if ids.is_empty() {
                Vec::new()
            } else {
                let list: Vec<String> = ids.iter().map(i64::to_string).collect();
                load_sites(c, &format!("WHERE id IN ({})", list.join(",")), [])?
            };
            Ok(SitePage { sites, total })
        })
    }

    fn backup_use(&self, client_id: Option<i64>, limit: u32) -> Result<Vec<(String, i64, i64)>> {
        self.with(|c| {
            // A client's view counts only the backups of its sites that still exist.
            let mut stmt = c.prepare_cached(
                "SELECT b.site_name, sum(b.size), count(*) FROM backups b
                 LEFT JOIN sites s ON s.id = b.site_id
                 WHERE ?1 IS NULL OR s.client_id = ?1
                 GROUP BY b.site_name ORDER BY 2 DESC, 1 LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![client_id, limit], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    fn site_counts(&self, client_id: Option<i64>) -> Result<Vec<(SiteStatus, u64)>> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT status, sum(n) FROM site_counts WHERE ?1 IS NULL OR client_id = ?1
                 GROUP BY status HAVING sum(n) > 0 ORDER BY status",
            )?;
            let rows = stmt.query_map([client_id], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, u64>(1)?))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (status, n) = row?;
                out.push((
                    SiteStatus::from_db(&status)
                        .ok_or_else(|| corrupt(format!("site status {status}")))?,
                    n,
                ));
            }
            Ok(out)
        })
    }
}
