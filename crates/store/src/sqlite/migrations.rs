//! Append-only: a released migration is never edited, only followed by a new one. The index in
//! this list is the schema version, kept in `PRAGMA user_version`.

pub const MIGRATIONS: &[&str] = &[
    // 1: the core objects, tasks, logs and journals.
    r#"
CREATE TABLE servers (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    http TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE clients (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);
CREATE TABLE platforms (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    server_id INTEGER NOT NULL REFERENCES servers(id),
    path TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    locked INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);
CREATE TABLE sites (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    platform_id INTEGER NOT NULL REFERENCES platforms(id),
    redirect_aliases INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL,
    client_id INTEGER REFERENCES clients(id),
    created_at INTEGER NOT NULL
);
CREATE INDEX sites_platform ON sites(platform_id);
-- Every name a site answers to, main name included: the primary key makes a host name
-- belong to one site at most.
CREATE TABLE host_names (
    name TEXT PRIMARY KEY,
    site_id INTEGER NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
    is_main INTEGER NOT NULL,
    position INTEGER NOT NULL
);
CREATE INDEX host_names_site ON host_names(site_id);
CREATE TABLE tasks (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    target_type TEXT NOT NULL,
    target_id INTEGER NOT NULL,
    target_name TEXT NOT NULL,
    args TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    started_at INTEGER,
    finished_at INTEGER,
    owner TEXT,
    error TEXT
);
CREATE INDEX tasks_status ON tasks(status, id);
CREATE INDEX tasks_target ON tasks(target_type, target_id, id);
CREATE TABLE task_log (
    id INTEGER PRIMARY KEY,
    task_id INTEGER NOT NULL,
    at INTEGER NOT NULL,
    line TEXT NOT NULL
);
CREATE INDEX task_log_task ON task_log(task_id, id);
CREATE TABLE journal (
    task_id INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    step TEXT NOT NULL,
    undo TEXT NOT NULL,
    saved BLOB,
    PRIMARY KEY (task_id, seq)
);
"#,
    // 2: database services on servers, and each site's own database.
    r#"
ALTER TABLE servers ADD COLUMN db TEXT NOT NULL DEFAULT '[]';
CREATE TABLE site_databases (
    site_id INTEGER PRIMARY KEY REFERENCES sites(id) ON DELETE CASCADE,
    server_id INTEGER NOT NULL REFERENCES servers(id),
    engine TEXT NOT NULL,
    name TEXT NOT NULL,
    user TEXT NOT NULL,
    password TEXT NOT NULL,
    UNIQUE (server_id, engine, name)
);
"#,
    // 3: backups. They outlive their site (a deleted site's last backup stays listed).
    r#"
CREATE TABLE backups (
    id INTEGER PRIMARY KEY,
    site_id INTEGER NOT NULL,
    site_name TEXT NOT NULL,
    path TEXT NOT NULL UNIQUE,
    size INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    task_id INTEGER
);
CREATE INDEX backups_site ON backups(site_name, id);
"#,
    // 4: backup schedules and retention, per site and as installation-wide defaults.
    r#"
ALTER TABLE sites ADD COLUMN backup_schedule TEXT;
ALTER TABLE sites ADD COLUMN backup_retention TEXT;
ALTER TABLE sites ADD COLUMN next_backup_at INTEGER;
CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"#,
    // 5: PHP: php-fpm services on servers, the PHP version of a platform, a secret per site
    // (its application's salts are derived from it), each site's cron state; clients' email;
    // what the last verify found in a platform's and a site's code (version, packages).
    r#"
ALTER TABLE servers ADD COLUMN php TEXT NOT NULL DEFAULT '[]';
ALTER TABLE platforms ADD COLUMN php_version TEXT;
ALTER TABLE sites ADD COLUMN app_secret TEXT;
ALTER TABLE sites ADD COLUMN cron_interval_s INTEGER;
ALTER TABLE sites ADD COLUMN cron_last_at INTEGER;
ALTER TABLE sites ADD COLUMN cron_last_ok INTEGER;
ALTER TABLE sites ADD COLUMN cron_last_message TEXT;
ALTER TABLE sites ADD COLUMN cron_next_at INTEGER;
ALTER TABLE clients ADD COLUMN email TEXT;
ALTER TABLE platforms ADD COLUMN code_version TEXT;
ALTER TABLE platforms ADD COLUMN packages TEXT;
ALTER TABLE sites ADD COLUMN packages TEXT;
"#,
    // 6: where a platform's code serves from when not its root (a composer-built Drupal's
    // `web/`), as its verify found it.
    r#"
ALTER TABLE platforms ADD COLUMN web_root TEXT;
"#,
    // 7: the drush a platform's sites are driven with, when its code has none of its own.
    r#"
ALTER TABLE platforms ADD COLUMN drush TEXT;
"#,
    // 8: the panel's users, their sessions, API tokens and one-time login links, failed logins
    // (for throttling), clients' site quotas and the platforms each client may use, the client
    // a task was queued for (so its client's users still see it after the site is gone).
    r#"
ALTER TABLE clients ADD COLUMN site_quota INTEGER;
ALTER TABLE tasks ADD COLUMN client_id INTEGER;
UPDATE tasks SET client_id = (SELECT client_id FROM sites WHERE sites.id = tasks.target_id)
    WHERE target_type = 'site';
CREATE INDEX tasks_client ON tasks(client_id, id);
CREATE TABLE client_platforms (
    client_id INTEGER NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    platform_id INTEGER NOT NULL REFERENCES platforms(id) ON DELETE CASCADE,
    PRIMARY KEY (client_id, platform_id)
);
CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    email TEXT,
    role TEXT NOT NULL,
    client_id INTEGER REFERENCES clients(id),
    password_hash TEXT,
    disabled INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);
CREATE TABLE sessions (
    token_sha256 TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    csrf TEXT NOT NULL,
    address TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    seen_at INTEGER NOT NULL
);
CREATE INDEX sessions_user ON sessions(user_id);
CREATE TABLE api_tokens (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    token_sha256 TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    last_used_at INTEGER
);
CREATE TABLE login_links (
    token_sha256 TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    expires_at INTEGER NOT NULL
);
CREATE TABLE login_failures (
    id INTEGER PRIMARY KEY,
    user_name TEXT NOT NULL,
    address TEXT NOT NULL,
    at INTEGER NOT NULL
);
CREATE INDEX login_failures_user ON login_failures(user_name, at);
CREATE INDEX login_failures_address ON login_failures(address, at);
CREATE INDEX sites_client ON sites(client_id, name);
"#,
    // 9: the panel's site search and counts at ten thousand sites: a trigram index of every
    // host name (substring search through the index, kept by triggers), indexes that page
    // through sites in name order from the index alone, and the number of sites per client
    // and status, kept by triggers, for the dashboard.
    r#"
CREATE VIRTUAL TABLE host_names_search USING fts5(name, content='host_names', tokenize='trigram');
CREATE TRIGGER host_names_search_insert AFTER INSERT ON host_names BEGIN
    INSERT INTO host_names_search(rowid, name) VALUES (new.rowid, new.name);
END;
CREATE TRIGGER host_names_search_delete AFTER DELETE ON host_names BEGIN
    INSERT INTO host_names_search(host_names_search, rowid, name) VALUES ('delete', old.rowid, old.name);
END;
CREATE TRIGGER host_names_search_update AFTER UPDATE ON host_names BEGIN
    INSERT INTO host_names_search(host_names_search, rowid, name) VALUES ('delete', old.rowid, old.name);
    INSERT INTO host_names_search(rowid, name) VALUES (new.rowid, new.name);
END;
INSERT INTO host_names_search(host_names_search) VALUES ('rebuild');
CREATE INDEX sites_status ON sites(status, name);
CREATE INDEX sites_client_status ON sites(client_id, status, name);
CREATE INDEX sites_platform_name ON sites(platform_id, name);
CREATE TABLE site_counts (
    client_id INTEGER NOT NULL,
    status TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (client_id, status)
);
INSERT INTO site_counts (client_id, status, n)
    SELECT coalesce(client_id, 0), status, count(*) FROM sites GROUP BY 1, 2;
CREATE TRIGGER site_counts_insert AFTER INSERT ON sites BEGIN
    INSERT INTO site_counts (client_id, status, n) VALUES (coalesce(new.client_id, 0), new.status, 1)
        ON CONFLICT (client_id, status) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER site_counts_delete AFTER DELETE ON sites BEGIN
    UPDATE site_counts SET n = n - 1
        WHERE client_id = coalesce(old.client_id, 0) AND status = old.status;
END;
CREATE TRIGGER site_counts_update AFTER UPDATE OF status, client_id ON sites BEGIN
    UPDATE site_counts SET n = n - 1
        WHERE client_id = coalesce(old.client_id, 0) AND status = old.status;
    INSERT INTO site_counts (client_id, status, n) VALUES (coalesce(new.client_id, 0), new.status, 1)
        ON CONFLICT (client_id, status) DO UPDATE SET n = n + 1;
END;
"#,
    // 10: each claim of a task is numbered, so that only the claim running a task records its
    // outcome (a late recovery of an older claim changes nothing).
    r#"
ALTER TABLE tasks ADD COLUMN claim INTEGER NOT NULL DEFAULT 0;
"#,
    // 11: a site's cron run holds the site's locks, as a task does, until it is recorded.
    r#"
CREATE TABLE cron_runs (
    site_id INTEGER PRIMARY KEY REFERENCES sites(id) ON DELETE CASCADE,
    owner TEXT NOT NULL,
    started_at INTEGER NOT NULL
);
"#,
    // 12: a platform whose sites' PHP may start processes (off by default).
    r#"
ALTER TABLE platforms ADD COLUMN allow_exec INTEGER NOT NULL DEFAULT 0;
"#,
    // 13: who queued a task: a panel or API user's name, `cli` or `schedule`.
    r#"
ALTER TABLE tasks ADD COLUMN queued_by TEXT NOT NULL DEFAULT 'cli';
"#,
    // 14: the largest upload a platform's sites take, and a site's own (MiB; none: the
    // platform's, else the default).
    r#"
ALTER TABLE platforms ADD COLUMN upload_limit_mb INTEGER;
ALTER TABLE sites ADD COLUMN upload_limit_mb INTEGER;
"#,
    // 15: a site's HTTPS mode and HSTS; a server's nginx listens on several HTTP addresses
    // and on HTTPS addresses (its one `listen` address becomes a list of one).
    r#"
ALTER TABLE sites ADD COLUMN https TEXT NOT NULL DEFAULT 'on';
ALTER TABLE sites ADD COLUMN hsts INTEGER NOT NULL DEFAULT 0;
UPDATE servers SET http = json_set(http, '$.listen', json_array(json_extract(http, '$.listen')))
    WHERE json_type(http, '$.listen') = 'text';
UPDATE servers SET http = json_set(http, '$.https_listen', json_array())
    WHERE json_type(http, '$.https_listen') IS NULL;
"#,
    // 16: HTTPS: the installation's ACME account (one; its credentials are in a root-only
    // file, never here) and each site's certificate (its files and when it expires).
    r#"
CREATE TABLE acme_account (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    directory TEXT NOT NULL,
    email TEXT NOT NULL,
    ca_root TEXT,
    credentials_path TEXT NOT NULL,
    account_url TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE site_certificates (
    site_id INTEGER PRIMARY KEY REFERENCES sites(id) ON DELETE CASCADE,
    names TEXT NOT NULL,
    not_before INTEGER NOT NULL,
    not_after INTEGER NOT NULL,
    issuer TEXT NOT NULL,
    source TEXT NOT NULL CHECK (source IN ('acme', 'own')),
    cert_path TEXT NOT NULL,
    key_path TEXT NOT NULL,
    last_attempt_at INTEGER,
    last_failure TEXT,
    renewal_attempts INTEGER NOT NULL DEFAULT 0
);
"#,
    // 17: for `/metrics`: counters that outlive the processes counting them (a dispatcher and
    // a panel may be separate processes, and a restart must not set a count back), and an
    // index to find each site's newest backup.
    r#"
CREATE TABLE counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
-- Each site's newest backup, for every site at each scrape.
CREATE INDEX backups_site_time ON backups(site_id, created_at);
"#,
    // 18: where a `proxy` platform's sites pass their requests (the panel's own vhost).
    r#"
ALTER TABLE platforms ADD COLUMN upstream TEXT;
"#,
    // 19: the orders a batch certificate task (`https-issue`) placed with the ACME account,
    // counted with the single certificate tasks against the CA's orders per account.
    r#"
CREATE TABLE acme_orders (
    placed_at INTEGER NOT NULL,
    count INTEGER NOT NULL
);
"#,
    // 20: the disk guard: each file system holding a dispatcher's claims back, while it
    // does (so that the CLI and the panel, other processes, can say why tasks wait).
    r#"
CREATE TABLE claim_pauses (
    owner TEXT NOT NULL,
    path TEXT NOT NULL,
    used_percent REAL NOT NULL,
    stop_percent INTEGER NOT NULL,
    resume_percent INTEGER NOT NULL,
    since INTEGER NOT NULL,
    PRIMARY KEY (owner, path)
);
"#,
    // 21: the self-healing monitor: whether it watches a server's daemons, what it saw happen
    // to each (down, restarted, restart failed, back), and each daemon's state and restarts
    // as `/metrics` reports them (kept apart from the events, which are trimmed).
    r#"
ALTER TABLE servers ADD COLUMN monitor INTEGER NOT NULL DEFAULT 1;
CREATE TABLE service_events (
    id INTEGER PRIMARY KEY,
    server_id INTEGER NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
    service TEXT NOT NULL,
    event TEXT NOT NULL CHECK (event IN ('down', 'restarted', 'restart failed', 'back')),
    detail TEXT NOT NULL,
    at INTEGER NOT NULL
);
CREATE INDEX service_events_server ON service_events(server_id, id);
CREATE TABLE service_states (
    server_id INTEGER NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
    service TEXT NOT NULL,
    up INTEGER NOT NULL,
    restarts INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (server_id, service)
);
"#,
    // 22: remote servers: how fjord reaches one over OpenSSH (its target and pinned host key,
    // JSON; NULL for the machine fjord runs on), and the machine each journal entry's undo
    // belongs to (a server's id; NULL for the machine fjord runs on).
    r#"
ALTER TABLE servers ADD COLUMN remote TEXT;
ALTER TABLE journal ADD COLUMN machine INTEGER;
"#,
    // 23: backup targets: machines reached over SSH that keep a copy of a site's backups
    // (`ssh` is the JSON of its `USER@HOST[:PORT]`, `path` its directory), which backups were
    // copied where (a row goes with its backup), and where each site's backups are copied
    // (`backup_copy_to`: a target's name, `none`, or NULL for the installation's default).
    r#"
CREATE TABLE backup_targets (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    ssh TEXT NOT NULL,
    host_key TEXT NOT NULL,
    path TEXT NOT NULL
);
CREATE TABLE backup_copies (
    backup_id INTEGER NOT NULL REFERENCES backups(id) ON DELETE CASCADE,
    target_id INTEGER NOT NULL REFERENCES backup_targets(id) ON DELETE CASCADE,
    path TEXT NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    copied_at INTEGER NOT NULL,
    PRIMARY KEY (backup_id, target_id)
);
CREATE INDEX backup_copies_target ON backup_copies(target_id);
ALTER TABLE sites ADD COLUMN backup_copy_to TEXT;
"#,
];
