//! What separates one site's database from another's and from the server, tried against the
//! machine's own MariaDB (root on its socket) and PostgreSQL (postgres on 127.0.0.1).

use super::*;

fn server(kind: DbKind) -> DbCtl {
    let mysql = kind == DbKind::Mysql;
    DbCtl {
        kind,
        socket: mysql.then(|| PathBuf::from("/run/mysqld/mysqld.sock")),
        host: (!mysql).then(|| "127.0.0.1".to_string()),
        port: (!mysql).then_some(5432),
        admin_user: if mysql { "root" } else { "postgres" }.into(),
        password_file: None,
        password_env: None,
        client_host: None,
    }
}

/// A site's database and user as fjord makes them; dropped however the test ends.
struct Site<'a> {
    ctl: &'a DbCtl,
    name: String,
    user: String,
    password: String,
}

impl<'a> Site<'a> {
    fn new(ctl: &'a DbCtl, name: String, user: String) -> Self {
        let site = Site {
            ctl,
            name,
            user,
            password: crate::random_hex(16),
        };
        ctl.create(&site.name, &site.user, &site.password).unwrap();
        site
    }

    /// Runs SQL as the site's own user, in `database`.
    fn sql(&self, database: &str, sql: &str) -> Result<String> {
        self.ctl.sql_as(
            &self.user,
            Some(&self.password),
            Some(database),
            &[sql.into()],
        )
    }
}

impl Drop for Site<'_> {
    fn drop(&mut self) {
        let _ = self.ctl.drop(&self.name, &self.user);
    }
}

/// `ad-b.example` and `advb.example` give the databases `…ad_b…` and `…advb…`: MariaDB reads
/// an unescaped `_` in a grant as "any character", so the first site's grant used to open the
/// second's database.
#[test]
fn sites_whose_database_names_differ_only_where_a_wildcard_could_stand_reach_only_their_own() {
    for kind in [DbKind::Mysql, DbKind::Postgresql] {
        let ctl = server(kind);
        let tag = format!("t{}", crate::random_hex(3));
        let a = Site::new(&ctl, format!("{tag}_ad_b_example"), format!("{tag}_ua"));
        let b = Site::new(&ctl, format!("{tag}_advb_example"), format!("{tag}_ub"));
        b.sql(&b.name, "CREATE TABLE secrets (v VARCHAR(20))")
            .unwrap();
        b.sql(&b.name, "INSERT INTO secrets VALUES ('b-only')")
            .unwrap();
        assert!(ctl.grants_are_exact(&a.name, &a.user).unwrap());

        let attempts_of_a = [
            (b.name.as_str(), "SELECT v FROM secrets".to_string()),
            (b.name.as_str(), "CREATE TABLE planted (x INT)".to_string()),
            (
                a.name.as_str(),
                format!("SELECT v FROM `{}`.secrets", b.name),
            ),
            (
                a.name.as_str(),
                format!("CREATE TABLE `{}`.planted (x INT)", b.name),
            ),
        ];
        for (database, sql) in &attempts_of_a {
            let sql = if kind == DbKind::Postgresql {
                sql.replace('`', "\"")
            } else {
                sql.clone()
            };
            let got = a.sql(database, &sql);
            assert!(got.is_err(), "{kind:?}: {sql} in {database}: {got:?}");
        }
        if kind == DbKind::Mysql {
            let seen = a.sql(&a.name, "SHOW DATABASES").unwrap();
            assert!(!seen.contains(&b.name), "{seen}");

            // A grant made the old way (unescaped) is found and put right by a repair.
            ctl.admin(&[format!(
                "GRANT ALL PRIVILEGES ON `{}`.* TO '{}'@'localhost'",
                a.name, a.user
            )])
            .unwrap();
            assert!(!ctl.grants_are_exact(&a.name, &a.user).unwrap());
            assert!(
                a.sql(&b.name, "SELECT v FROM secrets").is_ok(),
                "the old way"
            );
            ctl.repair(&a.name, &a.user, &a.password).unwrap();
            assert!(ctl.grants_are_exact(&a.name, &a.user).unwrap());
            assert!(a.sql(&b.name, "SELECT v FROM secrets").is_err());
            // Freezing and thawing keep the grant exact too.
            ctl.freeze_writes(&a.name, &a.user).unwrap();
            assert!(a.sql(&b.name, "SELECT v FROM secrets").is_err());
            ctl.thaw_writes(&a.name, &a.user).unwrap();
            assert!(ctl.grants_are_exact(&a.name, &a.user).unwrap());
            assert!(a.sql(&b.name, "SELECT v FROM secrets").is_err());
        }
        if kind == DbKind::Postgresql {
            // A database made elsewhere (imported) lets every role connect, until a repair.
            ctl.admin(&[format!(
                "GRANT CONNECT ON DATABASE \"{}\" TO PUBLIC",
                b.name
            )])
            .unwrap();
            assert!(!ctl.grants_are_exact(&b.name, &b.user).unwrap());
            assert!(a.sql(&b.name, "SELECT 1").is_ok(), "PUBLIC may connect");
            ctl.repair(&b.name, &b.user, &b.password).unwrap();
            assert!(ctl.grants_are_exact(&b.name, &b.user).unwrap());
            assert!(a.sql(&b.name, "SELECT 1").is_err());
        }
        assert_eq!(
            b.sql(&b.name, "SELECT v FROM secrets").unwrap().trim(),
            "b-only"
        );
    }
}

/// A dump is the site's (or whoever made the archive given to `restore --file`): loaded as the
/// site's user in the client's sandbox, it reaches neither the server's own tables, nor
/// other databases, nor the machine.
#[test]
fn a_hostile_dump_is_loaded_with_the_sites_rights_and_reaches_nothing_else() {
    let ctl = server(DbKind::Mysql);
    let tag = format!("t{}", crate::random_hex(3));
    let site = Site::new(&ctl, format!("{tag}_site"), format!("{tag}_u"));
    let other = Site::new(&ctl, format!("{tag}_other"), format!("{tag}_o"));
    other.sql(&other.name, "CREATE TABLE kept (v INT)").unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let marker = scratch.path().join("ran");
    let attacks = [
        format!("\\! touch {}\n", marker.display()),
        format!("system touch {}\n", marker.display()),
        "USE mysql;\nCREATE TABLE planted (x INT);\n".to_string(),
        format!("DROP TABLE `{}`.kept;\n", other.name),
        format!("CREATE DATABASE `{tag}_planted`;\n"),
        format!(
            "GRANT ALL PRIVILEGES ON *.* TO '{}'@'localhost';\n",
            site.user
        ),
        "LOAD DATA LOCAL INFILE '/etc/passwd' INTO TABLE t;\n".to_string(),
        "CREATE DEFINER=`root`@`localhost` PROCEDURE p() SELECT 1;\n".to_string(),
    ];
    for attack in &attacks {
        let dump = scratch.path().join("dump.sql");
        std::fs::write(&dump, format!("CREATE TABLE t (x TEXT);\n{attack}")).unwrap();
        let _ = ctl.load(&site.name, &site.user, &site.password, &dump);
        assert!(!marker.exists(), "{attack}");
        let _ = site.sql(&site.name, "DROP TABLE IF EXISTS t");
    }
    assert!(
        !ctl.database_exists(&format!("{tag}_planted")).unwrap(),
        "no database made"
    );
    let planted = ctl
        .admin(&["SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'mysql' AND table_name = 'planted'".into()])
        .unwrap();
    assert_eq!(planted.trim(), "0");
    assert_eq!(
        other
            .sql(&other.name, "SELECT COUNT(*) FROM kept")
            .unwrap()
            .trim(),
        "0",
        "the other site's table is still there"
    );
    assert!(ctl.grants_are_exact(&site.name, &site.user).unwrap());
    // The loaded definer is the site's own user, not the one the dump named.
    let dump = scratch.path().join("dump.sql");
    std::fs::write(
        &dump,
        "/*!50003 CREATE*/ /*!50020 DEFINER=`root`@`localhost`*/ /*!50003 PROCEDURE q() SELECT 1 */;\n",
    )
    .unwrap();
    ctl.load(&site.name, &site.user, &site.password, &dump)
        .unwrap();
    let definer = ctl
        .admin(&[format!(
            "SELECT definer FROM information_schema.routines WHERE routine_schema = '{}' AND routine_name = 'q'",
            site.name
        )])
        .unwrap();
    assert_eq!(definer.trim(), format!("{}@localhost", site.user));
}

/// PostgreSQL dumps are custom archives read by pg_restore: a plain SQL file, which psql
/// would run with its meta-commands (`\!`), is refused, and what an archive holds runs as the
/// site's own role.
#[test]
fn a_plain_sql_file_given_as_a_postgresql_dump_is_refused_and_runs_nothing() {
    let ctl = server(DbKind::Postgresql);
    let tag = format!("t{}", crate::random_hex(3));
    let site = Site::new(&ctl, format!("{tag}_site"), format!("{tag}_u"));
    let scratch = tempfile::tempdir().unwrap();
    let marker = scratch.path().join("ran");
    let dump = scratch.path().join("dump.sql");
    std::fs::write(
        &dump,
        format!(
            "\\! touch {}\nRESET ROLE;\nCREATE ROLE {tag}_evil SUPERUSER;\n",
            marker.display()
        ),
    )
    .unwrap();
    assert!(
        ctl.load(&site.name, &site.user, &site.password, &dump)
            .is_err()
    );
    assert!(!marker.exists());
    assert!(!ctl.user_exists(&format!("{tag}_evil")).unwrap());
}

/// The machine's servers as they are set up here (MariaDB's root with an empty password,
/// PostgreSQL trusting 127.0.0.1) let any local user in as their administrator, and fjord
/// says so; a check with a password that is wrong is not mistaken for an open door.
#[test]
fn an_administrator_any_local_user_can_sign_in_as_is_found() {
    for kind in [DbKind::Mysql, DbKind::Postgresql] {
        let ctl = server(kind);
        let open = {
            let program = ctl.program();
            let mut cmd = crate::process::child_command_as(program, 65534, 65534);
            if kind == DbKind::Mysql {
                cmd.arg("--no-defaults");
            }
            let cmd = ctl.connecting(cmd, program, &ctl.admin_user, None, None);
            ctl.stdout_fed(cmd, b"SELECT 1;\n").is_ok()
        };
        assert_eq!(ctl.open_to_every_local_user().unwrap(), open, "{kind:?}");
        let nobody_as_a_site = DbCtl {
            admin_user: format!("t{}_nobody", crate::random_hex(3)),
            ..server(kind)
        };
        assert!(
            !nobody_as_a_site.open_to_every_local_user().unwrap(),
            "{kind:?}"
        );
    }
}
