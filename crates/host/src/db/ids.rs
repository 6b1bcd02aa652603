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
            notes.push(format!(
                "raised the next id of {shown} from {new} to {old}: ids {new} to {} are kept only in the pre-restore backup",
                old.saturating_sub(match self.kind {
                    DbKind::Mysql => 1,
                    DbKind::Postgresql => 0,
                })
            ));
        }
        if !statements.is_empty() {
            self.sql_as(user, Some(password), Some(name), &statements)?;
        }
        Ok(notes)
    }
}
