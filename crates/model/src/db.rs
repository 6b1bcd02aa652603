use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{AbsPath, Invalid};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DbEngine {
    Mysql,
    Postgresql,
    Sqlite,
}

impl DbEngine {
    pub fn parse(input: &str) -> Result<DbEngine, Invalid> {
        match input {
            "mysql" | "mariadb" => Ok(DbEngine::Mysql),
            "postgresql" | "postgres" => Ok(DbEngine::Postgresql),
            "sqlite" => Ok(DbEngine::Sqlite),
            _ => Err(Invalid::new(
                "database engine",
                input,
                "supported engines: mysql, postgresql, sqlite",
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DbEngine::Mysql => "mysql",
            DbEngine::Postgresql => "postgresql",
            DbEngine::Sqlite => "sqlite",
        }
    }

    /// The longest database and user name fjord gives on this engine: MySQL 5.7 users allow
    /// 32 characters, PostgreSQL identifiers 63.
    pub fn name_max(self) -> usize {
        match self {
            DbEngine::Mysql => 32,
            DbEngine::Postgresql => 63,
            DbEngine::Sqlite => 63,
        }
    }
}

impl fmt::Display for DbEngine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A database service a server offers, and how fjord reaches it as administrator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DbService {
    pub engine: DbEngine,
    /// Unix socket (mysql), or the directory of sockets (postgresql).
    pub socket: Option<AbsPath>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub admin_user: Option<String>,
    /// A file holding the admin password; never copied into logs or the state.
    pub password_file: Option<AbsPath>,
    /// Or an environment variable of the dispatcher holding it.
    #[serde(default)]
    pub password_env: Option<String>,
    /// How the monitor starts it again (none: systemd's `mariadb.service` or
    /// `postgresql.service` for the standard server when systemd runs; else it cannot).
    #[serde(default, skip_serializing_if = "crate::Restart::is_empty")]
    pub restart: crate::Restart,
}

impl DbService {
    /// What `ENGINE` alone stands for: Debian's MariaDB through its socket as root, PostgreSQL
    /// on 127.0.0.1:5432 as postgres. Anything else is an administrator's choice
    /// ([`crate::Server::beyond_standard_profile`]).
    pub fn standard(engine: DbEngine) -> DbService {
        match engine {
            DbEngine::Mysql => DbService {
                engine,
                socket: Some(
                    AbsPath::parse("socket", "/run/mysqld/mysqld.sock").expect("an absolute path"),
                ),
                host: None,
                port: None,
                admin_user: Some("root".into()),
                password_file: None,
                password_env: None,
                restart: crate::Restart::default(),
            },
            DbEngine::Postgresql => DbService {
                engine,
                socket: None,
                host: Some("127.0.0.1".into()),
                port: Some(5432),
                admin_user: Some("postgres".into()),
                password_file: None,
                password_env: None,
                restart: crate::Restart::default(),
            },
            DbEngine::Sqlite => DbService {
                engine,
                socket: None,
                host: None,
                port: None,
                admin_user: None,
                password_file: None,
                password_env: None,
                restart: crate::Restart::default(),
            },
        }
    }

    /// Parses `ENGINE[:key=value,...]` with keys socket, host, port, user, password-file,
    /// password-env, start (the command that starts the server, for the monitor), unit (its
    /// systemd unit).
    /// Defaults: mysql through /run/mysqld/mysqld.sock as root; postgresql on
    /// 127.0.0.1:5432 as postgres.
    pub fn parse(input: &str) -> Result<DbService, Invalid> {
        let (engine, rest) = input.split_once(':').unwrap_or((input, ""));
        let engine = DbEngine::parse(engine)?;
        let mut service = DbService::standard(engine);
        for pair in rest.split(',').filter(|p| !p.is_empty()) {
            let fail = |rule: &str| {
                Err(Invalid::new(
                    "database service",
                    input,
                    format!("{pair:?}: {rule}"),
                ))
            };
            let Some((key, value)) = pair.split_once('=') else {
                return fail("options are key=value");
            };
            if engine == DbEngine::Sqlite {
                return fail("sqlite takes no options");
            }
            match key {
                "socket" => {
                    service.socket = Some(AbsPath::parse("database socket", value)?);
                    service.host = None;
                }
                "host" => {
                    if value.is_empty()
                        || !value
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || ".-:".contains(c))
                    {
                        return fail("a host is a name or an IP address");
                    }
                    service.host = Some(value.to_string());
                    service.socket = None;
                }
                "port" => {
                    service.port =
                        Some(value.parse().ok().filter(|p| *p != 0).ok_or_else(|| {
                            Invalid::new("database port", value, "must be 1-65535")
                        })?)
                }
                "user" => {
                    if value.is_empty()
                        || value.len() > 32
                        || !value.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    {
                        return fail("a user is 1-32 letters, digits or _");
                    }
                    service.admin_user = Some(value.to_string());
                }
                "password-file" => {
                    service.password_file = Some(AbsPath::parse("password file", value)?)
                }
                "password-env" => {
                    let valid = !value.is_empty()
                        && value.len() <= 64
                        && value.starts_with(|c: char| c.is_ascii_uppercase() || c == '_')
                        && value
                            .chars()
                            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
                    if !valid {
                        return fail(
                            "password-env names an environment variable: A-Z, 0-9 and _, \
                             not starting with a digit, at most 64 characters",
                        );
                    }
                    service.password_env = Some(value.to_string());
                }
                "start" => {
                    service.restart.start = Some(crate::monitor::parse_start_command(
                        "database start command",
                        value,
                    )?)
                }
                "unit" => {
                    service.restart.unit = Some(crate::monitor::parse_unit("database unit", value)?)
                }
                _ => {
                    return fail(
                        "keys are socket, host, port, user, password-file, password-env, start, \
                         unit",
                    );
                }
            }
        }
        if service.password_file.is_some() && service.password_env.is_some() {
            return Err(Invalid::new(
                "database service",
                input,
                "give the admin password by password-file or by password-env, not both",
            ));
        }
        Ok(service)
    }
}

/// A site's own database. The password is generated by fjord and kept in the state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteDatabase {
    pub server_id: i64,
    pub engine: DbEngine,
    pub name: String,
    pub user: String,
    #[serde(skip_serializing)]
    pub password: String,
}

/// A database or user name derived from a site's host name, valid on every engine:
/// `[a-z0-9_]`, starting with a letter, at most `max` characters; a hash of the whole name
/// keeps truncated names distinct.
pub fn derive_db_name(host: &str, max: usize) -> String {
    let mut name: String = host
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        name.insert_str(0, "s_");
    }
    if name.len() > max {
        let hash = host.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        name.truncate(max - 7);
        name.push_str(&format!("_{:06x}", hash & 0xff_ffff));
    }
    name
}

/// True for names fjord may put into SQL unquoted-safe: the alphabet of [`derive_db_name`].
pub fn is_safe_db_identifier(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_names() {
        assert_eq!(derive_db_name("example.com", 32), "example_com");
        assert_eq!(derive_db_name("1st.example", 32), "s_1st_example");
        let long = derive_db_name("a-very-long-site-name.with.many.labels.example.com", 32);
        assert_eq!(long.len(), 32);
        assert!(is_safe_db_identifier(&long), "{long}");
        assert_ne!(
            long,
            derive_db_name("a-very-long-site-name.with.many.labels.example.org", 32)
        );
    }

    #[test]
    fn services() {
        let m = DbService::parse("mysql").unwrap();
        assert_eq!(m.socket.unwrap().as_str(), "/run/mysqld/mysqld.sock");
        let p = DbService::parse("postgresql:host=127.0.0.1,port=5433,user=admin").unwrap();
        assert_eq!(
            (p.port, p.admin_user.as_deref()),
            (Some(5433), Some("admin"))
        );
        for bad in [
            "oracle",
            "mysql:port=x",
            "mysql:user=a;b",
            "mysql:bogus=1",
            "mysql:host=a b",
            "sqlite:x=1",
            "mysql:port=0",
            "postgresql:password-env=lower",
            "postgresql:password-env=1ABC",
            "postgresql:password-env=",
            "postgresql:password-env=PG_PW,password-file=/etc/pw",
        ] {
            assert!(DbService::parse(bad).is_err(), "{bad}");
        }
        let e = DbService::parse("postgresql:password-env=FJORD_PG_PASSWORD").unwrap();
        assert_eq!(e.password_env.as_deref(), Some("FJORD_PG_PASSWORD"));
        let error = DbService::parse("postgresql:password-env=lower")
            .unwrap_err()
            .to_string();
        assert!(error.contains("A-Z, 0-9 and _"), "{error}");
    }
}
