//! A MariaDB dump loaded over several connections at once, one table's section to each in
//! turn. Loading a dump is bound by the server's syncs (every CREATE TABLE and every commit
//! waits for the disk), not by work: eight connections load Drupal 7's 73 small tables
//! about five times faster than one, the server grouping their syncs.
//!
//! mariadb-dump writes a dump as a preamble (session settings), then one section per table
//! (`-- Table structure for table …`, its rows, its triggers), then views, routines and
//! events. Every row is one line (newlines inside values are escaped), so a line that
//! starts with `-- ` is one of the dump's own comments. Each connection gets the preamble
//! and then whole sections; anything after the tables (views, routines, events, or a
//! comment fjord does not know) waits for every connection to finish, then runs on one,
//! in order, as a serial load would. A file that is not shaped so (no sections within its
//! first MiB) is loaded on one connection, as it comes.

use std::io::{BufWriter, Write};
use std::process::{Child, ChildStdin, Output};

/// Connections that load sections side by side.
pub(super) const CONNECTIONS: usize = 8;
/// A preamble longer than this is not mariadb-dump's: the file goes to one connection.
const PREAMBLE_LIMIT: usize = 1 << 20;

const TABLE_SECTION: &[u8] = b"-- Table structure for table `";
/// Comments that stay with the section they are in (the last one ends the dump).
const IN_SECTION: &[&[u8]] = &[
    b"-- Dumping data for table `",
    b"--\n",
    b"--\r\n",
    b"-- Dump completed",
];

struct Connection {
    child: Child,
    stdin: Option<BufWriter<ChildStdin>>,
}

/// Routes a dump's lines, written to it in any pieces, to connections it opens with
/// `spawn` (each a database client reading SQL on its stdin).
pub(super) struct SectionRouter<F: FnMut() -> std::io::Result<Child>> {
    spawn: F,
    preamble: Vec<u8>,
    line: Vec<u8>,
    connections: Vec<Connection>,
    finished: Vec<Output>,
    /// The connection the current line goes to; `None` while in the preamble.
    current: Option<usize>,
    sections: usize,
    /// Past the tables (or not a dump of sections): every line goes to `current`.
    serial: bool,
}

impl<F: FnMut() -> std::io::Result<Child>> SectionRouter<F> {
    pub(super) fn new(spawn: F) -> Self {
        SectionRouter {
            spawn,
            preamble: Vec::new(),
            line: Vec::new(),
            connections: Vec::new(),
            finished: Vec::new(),
            current: None,
            sections: 0,
            serial: false,
        }
    }

    /// A new connection, given the preamble; its index.
    fn open(&mut self) -> std::io::Result<usize> {
        let mut child = (self.spawn)()?;
        let stdin = child
            .stdin
            .take()
            .ok_or_else(|| std::io::Error::other("the database client has no stdin"))?;
        let mut stdin = BufWriter::with_capacity(64 << 10, stdin);
        stdin.write_all(&self.preamble)?;
        self.connections.push(Connection {
            child,
            stdin: Some(stdin),
        });
        Ok(self.connections.len() - 1)
    }

    fn send(&mut self, to: usize, bytes: &[u8]) -> std::io::Result<()> {
        match self.connections[to].stdin.as_mut() {
            Some(stdin) => stdin.write_all(bytes),
            None => Err(std::io::Error::other("the connection was closed")),
        }
    }

    /// Sends what `to` holds buffered, so its client starts on it while others are fed.
    fn flush_connection(&mut self, to: usize) -> std::io::Result<()> {
        match self.connections[to].stdin.as_mut() {
            Some(stdin) => stdin.flush(),
            None => Ok(()),
        }
    }

    /// Waits for every open connection to finish what it was given.
    fn barrier(&mut self) -> std::io::Result<()> {
        let mut first_error = None;
        for mut connection in self.connections.drain(..) {
            if let Some(mut stdin) = connection.stdin.take()
                && let Err(e) = stdin.flush()
            {
                first_error.get_or_insert(e);
            }
            self.finished.push(connection.child.wait_with_output()?);
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn route_line(&mut self) -> std::io::Result<()> {
        let line = std::mem::take(&mut self.line);
        let result = self.route(&line);
        self.line = line;
        self.line.clear();
        result
    }

    fn route(&mut self, line: &[u8]) -> std::io::Result<()> {
        if let Some(to) = self.current
            && (self.serial || !line.starts_with(b"-- ") && !line.starts_with(b"--\n"))
        {
            return self.send(to, line);
        }
        if line.starts_with(TABLE_SECTION) {
            // A table's section: the next connection in turn (opened when there are
            // fewer than CONNECTIONS).
            if let Some(previous) = self.current {
                self.flush_connection(previous)?;
            }
            let to = if self.connections.len() < CONNECTIONS {
                self.open()?
            } else {
                self.sections % CONNECTIONS
            };
            self.sections += 1;
            self.current = Some(to);
            return self.send(to, line);
        }
        match self.current {
            None => {
                self.preamble.extend_from_slice(line);
                if self.preamble.len() > PREAMBLE_LIMIT {
                    self.go_serial()?;
                }
                Ok(())
            }
            Some(to) if IN_SECTION.iter().any(|c| line.starts_with(c)) => self.send(to, line),
            Some(_) => {
                // After the tables: views, routines, events see every table loaded.
                self.barrier()?;
                self.go_serial()?;
                let to = self.current.unwrap_or_default();
                self.send(to, line)
            }
        }
    }

    /// One connection from here on, given the preamble (and what came before it, when the
    /// file never reached a section).
    fn go_serial(&mut self) -> std::io::Result<()> {
        let to = self.open()?;
        if self.current.is_none() {
            // All of it was sent by open(), and nothing else will be opened.
            self.preamble.clear();
        }
        self.current = Some(to);
        self.serial = true;
        Ok(())
    }

    /// Ends the load: every connection's input closed and its client waited for. Returns
    /// the clients' outputs (a failed one says why) and the first error feeding them met.
    pub(super) fn finish(mut self, fed: std::io::Result<()>) -> (Vec<Output>, std::io::Result<()>) {
        let mut fed = fed;
        if fed.is_ok() && !self.line.is_empty() {
            self.line.push(b'\n');
            fed = self.route_line();
        }
        if fed.is_ok() && self.current.is_none() {
            // A file with no section at all: its text went to the preamble.
            fed = self.go_serial();
        }
        let closed = self.barrier();
        (self.finished, fed.and(closed))
    }
}

impl<F: FnMut() -> std::io::Result<Child>> Write for SectionRouter<F> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut rest = buf;
        while let Some(end) = rest.iter().position(|&b| b == b'\n') {
            self.line.extend_from_slice(&rest[..=end]);
            self.route_line()?;
            rest = &rest[end + 1..];
        }
        self.line.extend_from_slice(rest);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};
    use std::process::{Command, Stdio};

    use super::*;
    use crate::db::{DbCtl, DbKind};

    /// Routes `dump` to clients that are `cat`s, each into a file of its own; returns what
    /// each connection was given, in the order they were opened.
    fn routed(dump: &str) -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        let mut opened = 0;
        let mut router = SectionRouter::new(|| {
            opened += 1;
            Command::new("sh")
                .args([
                    "-c",
                    &format!("cat > {}/c{opened:02}", dir.path().display()),
                ])
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
        });
        // Written in pieces that split lines.
        let fed = dump
            .as_bytes()
            .chunks(7)
            .try_for_each(|piece| router.write_all(piece));
        let (outputs, fed) = router.finish(fed);
        fed.unwrap();
        assert!(outputs.iter().all(|o| o.status.success()));
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        files
            .iter()
            .map(|f| std::fs::read_to_string(f).unwrap())
            .collect()
    }

    fn table(name: &str) -> String {
        format!(
            "--\n-- Table structure for table `{name}`\n--\n\nCREATE TABLE `{name}` (x int);\n\
             --\n-- Dumping data for table `{name}`\n--\n\nINSERT INTO `{name}` VALUES (1);\n"
        )
    }

    #[test]
    fn each_connection_gets_the_preamble_and_whole_tables_and_what_follows_the_tables_runs_last_on_one()
     {
        let preamble = "-- MariaDB dump\n/*!40101 SET NAMES utf8mb4 */;\n";
        let mut dump = preamble.to_string();
        for i in 0..10 {
            dump.push_str(&table(&format!("t{i}")));
        }
        dump.push_str(
            "--\n-- Final view structure for view `v`\n--\n\nCREATE VIEW v AS SELECT x FROM t9;\n\
             -- Dump completed on 2026-12-07\n",
        );
        let given = routed(&dump);
        assert_eq!(given.len(), CONNECTIONS + 1, "{given:#?}");
        for (i, text) in given.iter().enumerate() {
            assert!(text.starts_with(preamble), "{i}: {text}");
        }
        for i in 0..10 {
            let holders: Vec<_> = given
                .iter()
                .filter(|t| t.contains(&format!("CREATE TABLE `t{i}`")))
                .collect();
            assert_eq!(holders.len(), 1, "t{i}");
            assert!(holders[0].contains(&format!("INSERT INTO `t{i}` VALUES (1);")));
        }
        let last = given.last().unwrap();
        assert!(
            last.contains("CREATE VIEW v") && !last.contains("CREATE TABLE"),
            "{last}"
        );
    }

    #[test]
    fn a_file_without_table_sections_goes_whole_to_one_connection() {
        let text = "SELECT 1;\nSELECT 2;\n-- a comment\nSELECT 3;";
        assert_eq!(routed(text), vec![format!("{text}\n")]);
        let long = "SELECT 1;\n".repeat(PREAMBLE_LIMIT / 8);
        assert_eq!(routed(&long), vec![long.clone()]);
    }

    /// A real dump of many tables, with foreign keys between them, a trigger, a view and a
    /// routine, loaded side by side as a site's user: everything is there and works.
    #[test]
    fn a_dump_loaded_side_by_side_holds_every_table_row_trigger_view_and_routine() {
        let db = DbCtl {
            kind: DbKind::Mysql,
            socket: Some(PathBuf::from("/run/mysqld/mysqld.sock")),
            host: None,
            port: None,
            admin_user: "root".into(),
            password_file: None,
            password_env: None,
            client_host: None,
        };
        let tag = format!("fjp{}_{}", std::process::id(), crate::random_hex(3));
        let (source, target, user) = (format!("{tag}_s"), format!("{tag}_t"), format!("{tag}_u"));
        let password = crate::random_hex(16);
        struct Dropped<'a>(&'a DbCtl, Vec<String>, String);
        impl Drop for Dropped<'_> {
            fn drop(&mut self) {
                for name in &self.1 {
                    let _ = self.0.drop_database_only(name);
                }
                let _ = self
                    .0
                    .admin(&[format!("DROP USER IF EXISTS '{}'@'localhost'", self.2)]);
            }
        }
        let _dropped = Dropped(&db, vec![source.clone(), target.clone()], user.clone());
        db.create(&source, &user, &password).unwrap();
        let mut sql = vec![format!("USE `{source}`")];
        sql.push("CREATE TABLE a_parent (id INT PRIMARY KEY) ENGINE=InnoDB".into());
        for i in 0..30 {
            sql.push(format!(
                "CREATE TABLE t{i:02} (id INT AUTO_INCREMENT PRIMARY KEY, p INT, note TEXT, \
                 FOREIGN KEY (p) REFERENCES a_parent (id)) ENGINE=InnoDB"
            ));
        }
        sql.push("INSERT INTO a_parent VALUES (1), (2)".into());
        for i in 0..30 {
            sql.push(format!(
                "INSERT INTO t{i:02} (p, note) VALUES (1, 'line one\\n-- Table structure for table `x`'), (2, 'b')"
            ));
        }
        sql.push("CREATE TABLE counts (n INT)".into());
        sql.push("INSERT INTO counts VALUES (0)".into());
        sql.push(
            "CREATE TRIGGER t29_added AFTER INSERT ON t29 FOR EACH ROW UPDATE counts SET n = n + 1"
                .into(),
        );
        sql.push("CREATE VIEW both_rows AS SELECT t00.id FROM t00 JOIN t29 USING (id)".into());
        sql.push("CREATE FUNCTION twice (x INT) RETURNS INT DETERMINISTIC RETURN 2 * x".into());
        db.admin(&sql).unwrap();
        let scratch = tempfile::tempdir().unwrap();
        let dump: &Path = &scratch.path().join("database.sql");
        db.dump(&source, dump).unwrap();
        db.create_database_only(&target).unwrap();
        // The view runs with its definer's rights (the loading user): read within the grant.
        db.with_grant_on(&target, &user, || {
            db.load(&target, &user, &password, dump)?;
            check(&db, &target);
            Ok(())
        })
        .unwrap();
    }

    fn check(db: &DbCtl, target: &str) {
        let count = |sql: &str| db.admin(&[format!("USE `{target}`"), sql.into()]).unwrap();
        assert_eq!(count("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE'").trim(), "32");
        for i in 0..30 {
            assert_eq!(
                count(&format!("SELECT COUNT(*), MIN(note) FROM t{i:02}")).trim(),
                "2\tb"
            );
        }
        assert_eq!(count("SELECT COUNT(*) FROM both_rows").trim(), "2");
        assert_eq!(count("SELECT twice(21)").trim(), "42");
        count("INSERT INTO t29 (p) VALUES (1)");
        assert_eq!(count("SELECT n FROM counts").trim(), "1");
    }
}
