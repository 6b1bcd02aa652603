//! The ids a database hands out next: kept from before a restore, so that ids handed out after
//! it never collide with ones only the pre-restore backup holds.

use std::collections::BTreeMap;

use super::{DbCtl, DbKind, check_identifier, quotable_table};
use crate::Result;

impl DbCtl {
    /// The next id each table would hand out (MariaDB's AUTO_INCREMENT) or the last value of
    /// each sequence (PostgreSQL, `schema.sequence`), read as the site's own user.
    pub fn id_counters(
        &self,
        name: &str,
        user: &str,
        password: &str,
    ) -> Result<BTreeMap<String, u64>> {
        check_identifier(name)?;
        let sql = match self.kind {
            DbKind::Mysql => format!(
                "SELECT table_name, auto_increment FROM information_schema.tables \
                 WHERE table_schema = '{name}' AND table_type = 'BASE TABLE' \
                 AND auto_increment IS NOT NULL"
            ),
            DbKind::Postgresql => "SELECT schemaname || chr(1) || sequencename, last_value \
                 FROM pg_sequences WHERE last_value IS NOT NULL"
                .to_string(),
        };
        let out = self.sql_as(user, Some(password), Some(name), &[sql])?;
        Ok(out
            .lines()
            .filter_map(|line| {
                let (key, value) = line.rsplit_once(['\t', '|'])?;
                Some((key.to_string(), value.trim().parse().ok()?))
            })
            .collect())
    }

    /// Raises every counter of `name` that is below its value in `before` to that value, as
    /// the site's own user; returns one line per counter raised, for the task log. A counter
    /// whose name fjord cannot quote is left, and said so.
    pub fn raise_id_counters(
        &self,
        name: &str,
        user: &str,
        password: &str,
        before: &BTreeMap<String, u64>,
    ) -> Result<Vec<String>> {
        let now = self.id_counters(name, user, password)?;
        let mut statements = Vec::new();
        let mut notes = Vec::new();
        for (counter, old) in before {
            let shown = counter.replace('\u{1}', ".");
            let Some(new) = now.get(counter) else {
                continue;
            };
            if new >= old {
                continue;
            }
            let statement = match self.kind {
                DbKind::Mysql if quotable_table(counter) => {
                    format!(
                        "ALTER TABLE `{}` AUTO_INCREMENT = {old}",
                        counter.replace('`', "``")
                    )
                }
                DbKind::Postgresql => match counter.split_once('\u{1}') {
                    Some((schema, seq)) if quotable_table(schema) && quotable_table(seq) => {
                        let ident = |n: &str| format!("\"{}\"", n.replace('"', "\"\""));
                        let regclass = format!("{}.{}", ident(schema), ident(seq));
                        format!("SELECT setval('{}', {old})", regclass.replace('\'', "''"))
                    }
                    _ => String::new(),
                },
                DbKind::Mysql => String::new(),
            };
            if statement.is_empty() {
                notes.push(format!(
                    "ids of {shown} restart at {new}; ids up to {old} were handed out before the restore and are kept only in the pre-restore backup (its name cannot be quoted, so it was not raised)"
                ));
                continue;
            }
            statements.push(statement);
            if self.kind == DbKind::Mysql && *new == 0 {
                // InnoDB starts its counter at 1; a 0 is a counter not yet read back from
                // tables imported as files (seen under load), so where the backup's ids end
                // is not known here. The raise is still right: InnoDB never sets a counter
                // at or below an id its table holds.
                notes.push(format!(
                    "raised the next id of {shown} to {old}: ids handed out before the restore that the backup does not hold are kept only in the pre-restore backup"
                ));
                continue;
            }
            // MariaDB keeps the next id, PostgreSQL the last one handed out.
            let (first, last) = match self.kind {
                DbKind::Mysql => (*new, old.saturating_sub(1)),
                DbKind::Postgresql => (new + 1, *old),
            };
            notes.push(format!(
                "raised the next id of {shown} from {first} to {}: ids {first} to {last} are kept only in the pre-restore backup",
                last + 1
            ));
        }
        if !statements.is_empty() {
            if self.kind == DbKind::Postgresql {
                // The role's sessions are read-only while its writes are frozen.
                statements.insert(0, "SET default_transaction_read_only = off".to_string());
            }
            self.sql_as(user, Some(password), Some(name), &statements)?;
        }
        Ok(notes)
    }
}

/// Against the machine's own MariaDB and PostgreSQL, as the project's tests are.
#[cfg(test)]
mod tests {
    use std::path::PathBuf;

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

    #[test]
    fn ids_handed_out_before_a_restore_are_not_handed_out_again_on_both_servers() {
        for kind in [DbKind::Mysql, DbKind::Postgresql] {
            let ctl = server(kind);
            let name = format!("fjids_{}", crate::random_hex(4));
            let password = crate::random_hex(16);
            ctl.create(&name, &name, &password).unwrap();
            let sql = |statements: &[&str]| {
                let statements: Vec<String> = statements.iter().map(|s| s.to_string()).collect();
                ctl.sql_as(&name, Some(&password), Some(&name), &statements)
            };
            let (table, key) = match kind {
                DbKind::Mysql => (
                    "CREATE TABLE `we``ird` (id INT AUTO_INCREMENT PRIMARY KEY, x INT)",
                    "we`ird",
                ),
                DbKind::Postgresql => (
                    "CREATE TABLE \"we'ird\" (id SERIAL PRIMARY KEY, x INT)",
                    "public\u{1}we'ird_id_seq",
                ),
            };
            let insert = match kind {
                DbKind::Mysql => "INSERT INTO `we``ird` (x) VALUES (1)",
                DbKind::Postgresql => "INSERT INTO \"we'ird\" (x) VALUES (1)",
            };
            let drop = match kind {
                DbKind::Mysql => "DROP TABLE `we``ird`",
                DbKind::Postgresql => "DROP TABLE \"we'ird\"",
            };
            let result = (|| {
                sql(&[table])?;
                for _ in 0..5 {
                    sql(&[insert])?;
                }
                let before = ctl.id_counters(&name, &name, &password)?;
                assert!(before.contains_key(key), "{kind:?}: {before:?}");
                // The restored table starts again from its backup's counter.
                sql(&[drop, table, insert])?;
                let notes = ctl.raise_id_counters(&name, &name, &password, &before)?;
                assert_eq!(notes.len(), 1, "{kind:?}: {notes:?}");
                assert!(notes[0].starts_with("raised the next id of "), "{notes:?}");
                sql(&[insert])?;
                let max = sql(&[match kind {
                    DbKind::Mysql => "SELECT MAX(id) FROM `we``ird`",
                    DbKind::Postgresql => "SELECT MAX(id) FROM \"we'ird\"",
                }])?;
                assert_eq!(
                    max.trim(),
                    "6",
                    "{kind:?}: the next id follows those handed out"
                );
                // Raised once: nothing to raise the second time.
                assert!(
                    ctl.raise_id_counters(&name, &name, &password, &before)?
                        .is_empty()
                );
                Ok::<_, crate::HostError>(())
            })();
            ctl.drop(&name, &name).unwrap();
            result.unwrap();
        }
    }
}
