//! Who may reach a site's database: grants that name exactly one database, and the check for
//! a server whose administrator anyone may sign in as.

use super::*;

/// The target of a grant on exactly the database `name`. MariaDB reads `_` and `%` in a
/// grant's database name as wildcards: unescaped, the grant on `ad_b_example` (from
/// `ad-b.example`) would open `advb_example` too. Identifiers hold no `%` (see
/// [`check_identifier`]), so escaping `_` is enough.
pub(super) fn grant_on(name: &str) -> String {
    format!("`{}`.*", name.replace('_', "\\_"))
}

/// What a grant on the database pattern `pattern` (as the server keeps it) is written as.
fn grant_on_pattern(pattern: &str) -> String {
    format!("`{}`.*", pattern.replace('`', "``"))
}

/// Decodes a column read as `HEX(…)`.
fn unhex(hex: &str) -> Option<String> {
    let bytes: Option<Vec<u8>> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

impl DbCtl {
    /// The database-level grants `user` holds, as the server keeps their patterns
    /// (MariaDB; PostgreSQL keeps none: a site's role owns its database).
    pub(super) fn database_grants(&self, user: &str) -> Result<Vec<String>> {
        check_identifier(user)?;
        if self.kind != DbKind::Mysql {
            return Ok(Vec::new());
        }
        let host = self.client_host();
        let hex = self.admin(&[format!(
            "SELECT HEX(Db) FROM mysql.db WHERE User = '{user}' AND Host = '{host}'"
        )])?;
        Ok(hex.lines().filter_map(|l| unhex(l.trim())).collect())
    }

    /// Statements revoking every database-level grant `user` holds, whatever its pattern
    /// (grants made before fjord escaped `_` matched look-alike databases).
    pub(super) fn revoke_database_grants(&self, user: &str) -> Result<Vec<String>> {
        let host = self.client_host();
        Ok(self
            .database_grants(user)?
            .iter()
            .map(|pattern| {
                format!(
                    "REVOKE ALL PRIVILEGES ON {} FROM '{user}'@'{host}'",
                    grant_on_pattern(pattern)
                )
            })
            .collect())
    }

    /// Whether `user` is granted on exactly its database and nothing else (MariaDB), or
    /// whether the site's database lets in its owner alone (PostgreSQL gives every role
    /// `CONNECT` on a database it did not create with fjord, an imported one say).
    pub fn grants_are_exact(&self, name: &str, user: &str) -> Result<bool> {
        check_identifier(name)?;
        match self.kind {
            DbKind::Mysql => Ok(self.database_grants(user)? == [name.replace('_', "\\_")]),
            DbKind::Postgresql => Ok(self
                .admin(&[format!(
                    "SELECT count(*) FROM pg_database, \
                     aclexplode(coalesce(datacl, acldefault('d', datdba))) AS acl \
                     WHERE datname = '{name}' AND acl.grantee = 0"
                )])?
                .trim()
                == "0"),
        }
    }

    /// Lets the site's user into a staging database of its own site for as long as `load`
    /// runs, so that a backup is loaded with the site's rights and no more.
    pub(crate) fn with_grant_on<T>(
        &self,
        name: &str,
        user: &str,
        load: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        check_identifier(name)?;
        check_identifier(user)?;
        if self.kind != DbKind::Mysql {
            return load();
        }
        let (host, on) = (self.client_host(), grant_on(name));
        self.admin(&[format!("GRANT ALL PRIVILEGES ON {on} TO '{user}'@'{host}'")])?;
        let loaded = load();
        let revoked = self
            .admin(&[format!(
                "REVOKE ALL PRIVILEGES ON {on} FROM '{user}'@'{host}'"
            )])
            .map(|_| ());
        let loaded = loaded?;
        revoked.map(|_| loaded)
    }

    /// Whether any local user, so any site's code, can sign in as the administrator without a
    /// password (MariaDB's root with an empty password, PostgreSQL's `trust`): then no grant
    /// fjord makes separates one site's database from another's. Tried as `nobody`, with no
    /// password and no option files.
    pub fn open_to_every_local_user(&self) -> Result<bool> {
        let Some(nobody) = uzers::get_user_by_name("nobody") else {
            return Ok(false);
        };
        let program = self.program();
        let mut cmd =
            crate::process::child_command_as(program, nobody.uid(), nobody.primary_group_id());
        if self.kind == DbKind::Mysql {
            cmd.arg("--no-defaults");
        }
        let mut cmd = self.connecting(cmd, program, &self.admin_user, None, None);
        match self.kind {
            DbKind::Mysql => cmd.args(["--batch", "--skip-column-names"]),
            DbKind::Postgresql => cmd.args(["-X", "-q", "-t", "-A", "-w"]),
        };
        cmd.env("PGPASSFILE", "/dev/null")
            .env_remove("MYSQL_PWD")
            .env_remove("PGPASSWORD")
            .env("HOME", "/nonexistent")
            .current_dir("/");
        Ok(self
            .stdout_fed(cmd, b"SELECT 1;\n")
            .is_ok_and(|out| out.starts_with(b"1")))
    }

    /// Every way a local user, so any site's code, reaches the administrator without a
    /// password: the way fjord connects (see [`DbCtl::open_to_every_local_user`]), MariaDB's
    /// TCP port (Debian's root has socket authentication, but a root given an empty password
    /// answers anyone on 127.0.0.1), and PostgreSQL's `trust` rules, each with its
    /// `pg_hba.conf` line.
    pub fn passwordless_admin_doors(&self) -> Result<Vec<String>> {
        let mut doors = Vec::new();
        if self.open_to_every_local_user()? {
            doors.push(match (&self.socket, &self.host) {
                (Some(socket), _) => format!("its socket {}", socket.display()),
                (None, Some(host)) => format!("{host}:{}", self.port.unwrap_or(0)),
                (None, None) => "the client's default connection".into(),
            });
        }
        match self.kind {
            DbKind::Mysql => {
                let listening = self.admin(&["SELECT @@port, @@skip_networking".into()])?;
                let mut words = listening.split_whitespace();
                let port: Option<u16> = words.next().and_then(|p| p.parse().ok());
                let networking = words.next() == Some("0");
                if let (Some(port), true) = (port, networking) {
                    let over_tcp = DbCtl {
                        socket: None,
                        host: Some("127.0.0.1".into()),
                        port: Some(port),
                        ..self.clone()
                    };
                    if over_tcp != *self && over_tcp.open_to_every_local_user()? {
                        doors.push(format!("TCP on 127.0.0.1:{port}"));
                    }
                }
            }
            DbKind::Postgresql => {
                let rules = self.admin(&[
                    "SELECT current_setting('hba_file') || ' line ' || line_number || ': ' || type \
                     || ' ' || array_to_string(database, ',') || ' ' || array_to_string(user_name, ',') \
                     || coalesce(' ' || address, '') || ' trust' \
                     FROM pg_hba_file_rules WHERE auth_method = 'trust' AND error IS NULL \
                     ORDER BY line_number"
                        .into(),
                ])?;
                doors.extend(
                    rules
                        .lines()
                        .filter(|l| !l.trim().is_empty())
                        .map(String::from),
                );
            }
        }
        Ok(doors)
    }
}
