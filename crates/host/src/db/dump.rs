//! Dumps and loads: streamed, compressed as they stream, and refused when empty or cut short.

use super::*;

/// mariadb-dump ends every complete dump with a `-- Dump completed` comment.
fn dump_is_complete(path: &Path) -> Result<bool> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = File::open(path).map_err(|e| HostError::io(path, e))?;
    let len = file.metadata().map_err(|e| HostError::io(path, e))?.len();
    file.seek(SeekFrom::Start(len.saturating_sub(256)))
        .map_err(|e| HostError::io(path, e))?;
    let mut tail = String::new();
    file.read_to_string(&mut tail)
        .map_err(|e| HostError::io(path, e))?;
    Ok(tail.contains("-- Dump completed"))
}

fn dump_succeeded(status: &std::process::ExitStatus, stderr: &[u8]) -> Result<()> {
    if status.success() {
        return Ok(());
    }
    Err(HostError::Command {
        program: "dump".into(),
        status: status.to_string(),
        output: String::from_utf8_lossy(stderr).trim().to_string(),
    })
}

/// Refuses an empty dump, and one without mariadb-dump's closing line (cut short).
fn check_dump(name: &str, len: u64, complete: bool) -> Result<()> {
    if len == 0 {
        return Err(HostError::Refused(format!("the dump of {name} is empty")));
    }
    if !complete {
        return Err(HostError::Refused(format!(
            "the dump of {name} is truncated (no \"Dump completed\" line)"
        )));
    }
    Ok(())
}

/// The last bytes of a dump streamed past, and how many there were.
#[derive(Default)]
struct DumpTail {
    last: Vec<u8>,
    len: u64,
}

impl DumpTail {
    const KEEP: usize = 256;

    fn saw(&mut self, bytes: &[u8]) {
        self.len += bytes.len() as u64;
        self.last
            .extend_from_slice(&bytes[bytes.len().saturating_sub(Self::KEEP)..]);
        let excess = self.last.len().saturating_sub(Self::KEEP);
        self.last.drain(..excess);
    }

    fn complete(&self) -> bool {
        String::from_utf8_lossy(&self.last).contains("-- Dump completed")
    }
}

/// A zstd frame starts with these bytes; a SQL dump cannot.
pub(crate) fn is_zstd(path: &Path) -> Result<bool> {
    let mut magic = [0u8; 4];
    let mut file = File::open(path).map_err(|e| HostError::io(path, e))?;
    Ok(file.read_exact(&mut magic).is_ok() && magic == [0x28, 0xb5, 0x2f, 0xfd])
}

impl DbCtl {
    /// Streams a dump of the database to `out` (never held in memory). Fails on an empty dump.
    pub fn dump(&self, name: &str, out: &Path) -> Result<()> {
        let file = File::create(out).map_err(|e| HostError::io(out, e))?;
        let output = self
            .dump_command(name)?
            .stdout(file)
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| HostError::io(out, e))?;
        dump_succeeded(&output.status, &output.stderr)?;
        let size = std::fs::metadata(out)
            .map_err(|e| HostError::io(out, e))?
            .len();
        let complete = size == 0 || self.kind != DbKind::Mysql || dump_is_complete(out)?;
        check_dump(name, size, complete)
    }

    /// [`DbCtl::dump`] of a MariaDB database, zstd-compressed as it streams from
    /// mariadb-dump: a backup archives a tenth of the bytes, and the compression runs on the
    /// dumping thread, beside the archiving of the files. Checked as `dump` checks.
    pub fn dump_compressed(&self, name: &str, out: &Path) -> Result<()> {
        let mut child = self
            .dump_command(name)?
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| HostError::io(Path::new(Self::mysql_dump()), e))?;
        let (Some(mut stdout), Some(mut stderr)) = (child.stdout.take(), child.stderr.take())
        else {
            return Err(HostError::Refused("mariadb-dump has no pipes".into()));
        };
        // Drained on its own thread, so that a chatty stderr cannot stall the dump.
        let errors = std::thread::spawn(move || {
            let mut text = Vec::new();
            let _ = stderr.read_to_end(&mut text);
            text
        });
        let file = File::create(out).map_err(|e| HostError::io(out, e))?;
        let mut encoder = zstd::Encoder::new(file, crate::archive::DB_ZSTD_LEVEL)
            .map_err(|e| HostError::io(out, e))?;
        let mut tail = DumpTail::default();
        let mut buf = vec![0u8; 256 << 10];
        let copied: std::io::Result<()> = loop {
            match stdout.read(&mut buf) {
                Ok(0) => break Ok(()),
                Ok(n) => {
                    tail.saw(&buf[..n]);
                    if let Err(e) = encoder.write_all(&buf[..n]) {
                        break Err(e);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        drop(stdout);
        let status = child
            .wait()
            .map_err(|e| HostError::io(Path::new(Self::mysql_dump()), e))?;
        let stderr = errors.join().unwrap_or_default();
        // A write error (a full disk) is the cause; the dump's broken pipe only follows it.
        copied
            .and_then(|_| encoder.finish())
            .map_err(|e| HostError::io(out, e))?;
        dump_succeeded(&status, &stderr)?;
        check_dump(name, tail.len, tail.complete())
    }

    fn dump_command(&self, name: &str) -> Result<Command> {
        check_identifier(name)?;
        let password = self.admin_password()?;
        Ok(match self.kind {
            DbKind::Mysql => {
                let mut c = self.command(
                    Self::mysql_dump(),
                    &self.admin_user,
                    password.as_deref(),
                    None,
                );
                c.args([
                    "--single-transaction",
                    "--quick",
                    "--routines",
                    "--events",
                    "--triggers",
                    name,
                ]);
                c
            }
            DbKind::Postgresql => {
                let mut c = self.command("pg_dump", &self.admin_user, password.as_deref(), None);
                c.args(["--format=custom", "--no-owner", name]);
                c
            }
        })
    }

    /// Creates the database and user and loads a dump or backup into it; returns a line for
    /// the task's log.
    pub fn restore(&self, name: &str, user: &str, password: &str, dump: &Path) -> Result<String> {
        self.create(name, user, password)?;
        self.load_backup(name, user, password, dump)
    }

    /// Loads `dump` into the existing database `name` as the site's own user `user`, never
    /// as the administrator: a dump is the site's data (or an archive given to
    /// `restore --file`) and may hold anything, so it runs with the rights the site has and
    /// can touch no other database. MariaDB's client runs in its sandbox (no `\!`, no
    /// `source`, no local files read), and definers name the loading user; PostgreSQL's
    /// custom archives are read by pg_restore, which has no meta-commands.
    pub fn load(&self, name: &str, user: &str, password: &str, dump: &Path) -> Result<()> {
        check_identifier(name)?;
        check_identifier(user)?;
        let input = File::open(dump).map_err(|e| HostError::io(dump, e))?;
        if self.kind == DbKind::Mysql {
            return self.load_mysql(name, user, password, dump, input);
        }
        let mut c = self.command("pg_restore", user, Some(password), None);
        // A restore loads while the site's writes are frozen, which makes its role's
        // sessions read-only by default: fjord's own load is the one writer let through.
        c.env("PGOPTIONS", "-c default_transaction_read_only=off");
        c.args([
            "--no-owner",
            "--no-privileges",
            "--exit-on-error",
            "-d",
            name,
        ]);
        let mut child = c
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| HostError::io(dump, e))?;
        let Some(stdin) = child.stdin.take() else {
            return Err(HostError::Refused(
                "the database client has no stdin".into(),
            ));
        };
        let fed = (|| -> std::io::Result<()> {
            let mut stdin = std::io::BufWriter::with_capacity(1 << 20, stdin);
            std::io::copy(&mut std::io::BufReader::new(input), &mut stdin)?;
            stdin.flush()
        })();
        let output = child
            .wait_with_output()
            .map_err(|e| HostError::io(dump, e))?;
        client_succeeded(&output)?;
        fed.map_err(|e| HostError::io(dump, e))
    }

    /// A MariaDB dump, decompressed when it is a backup's, its definers rewritten, its
    /// tables' sections loaded side by side (`parallel_load`).
    fn load_mysql(
        &self,
        name: &str,
        user: &str,
        password: &str,
        dump: &Path,
        input: File,
    ) -> Result<()> {
        let mut router = super::parallel_load::SectionRouter::new(|| {
            let mut c = self.command(Self::mysql_client(), user, Some(password), Some(name));
            c.args(["--sandbox", "--local-infile=0", "--batch"])
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
        });
        let fed = (|| -> std::io::Result<()> {
            // A backup's MariaDB dump is zstd-compressed: it is decompressed into the clients.
            let reader: Box<dyn Read> = if is_zstd(dump).unwrap_or(false) {
                Box::new(zstd::stream::read::Decoder::new(input)?)
            } else {
                Box::new(input)
            };
            definers_to_current_user(
                std::io::BufReader::with_capacity(1 << 20, reader),
                &mut router,
            )
        })();
        let (outputs, fed) = router.finish(fed);
        // A client's own error says more than the broken pipe it left us.
        for output in &outputs {
            client_succeeded(output)?;
        }
        fed.map_err(|e| HostError::io(dump, e))
    }
}

fn client_succeeded(output: &std::process::Output) -> Result<()> {
    if output.status.success() {
        return Ok(());
    }
    Err(HostError::Command {
        program: "restore".into(),
        status: output.status.to_string(),
        output: String::from_utf8_lossy(&output.stderr).trim().to_string(),
    })
}

/// Copies a MariaDB dump, naming the loading user (`CURRENT_USER`) as the definer of every
/// view, trigger, routine and event: the dump may name any account (root, or the user of
/// the site it came from), which the site's own user may not, and should not, act as.
/// Only statement lines are rewritten (mariadb-dump starts those with `/*!` or `CREATE`);
/// rows (`INSERT …`) are copied untouched, whatever text they hold.
pub(crate) fn definers_to_current_user(
    mut input: impl std::io::BufRead,
    out: &mut impl Write,
) -> std::io::Result<()> {
    let mut line = Vec::new();
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        if line.starts_with(b"/*!") || line.starts_with(b"CREATE") {
            out.write_all(&without_definers(&line))?;
        } else {
            out.write_all(&line)?;
        }
    }
}

/// `DEFINER=`a`@`b`` (names quoted with backticks, doubled inside) → `DEFINER=CURRENT_USER`.
fn without_definers(line: &[u8]) -> Vec<u8> {
    const KEY: &[u8] = b"DEFINER=";
    let mut out = Vec::with_capacity(line.len());
    let mut i = 0;
    while i < line.len() {
        if line[i..].starts_with(KEY) {
            let mut j = i + KEY.len();
            let mut names = 0;
            while names < 2 {
                let Some(end) = quoted_end(line, j) else {
                    break;
                };
                names += 1;
                j = end;
                if names == 1 && line.get(j) == Some(&b'@') {
                    j += 1;
                } else {
                    break;
                }
            }
            if names == 2 {
                out.extend_from_slice(b"DEFINER=CURRENT_USER");
                i = j;
                continue;
            }
        }
        out.push(line[i]);
        i += 1;
    }
    out
}

/// The index after a backtick-quoted name starting at `start`.
fn quoted_end(line: &[u8], start: usize) -> Option<usize> {
    if line.get(start) != Some(&b'`') {
        return None;
    }
    let mut k = start + 1;
    while k < line.len() {
        if line[k] == b'`' {
            if line.get(k + 1) == Some(&b'`') {
                k += 2;
                continue;
            }
            return Some(k + 1);
        }
        k += 1;
    }
    None
}

#[cfg(test)]
mod definer_tests {
    use super::*;

    fn rewritten(dump: &str) -> String {
        let mut out = Vec::new();
        definers_to_current_user(dump.as_bytes(), &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn definers_of_statements_become_the_loading_user_and_rows_stay_as_they_are() {
        let dump = "/*!50013 DEFINER=`root`@`localhost` SQL SECURITY DEFINER */\n\
                    /*!50003 CREATE*/ /*!50017 DEFINER=`fj1-2`@`%` */ /*!50003 TRIGGER t */;\n\
                    CREATE DEFINER=`we``ird`@`localhost` PROCEDURE p() SELECT 1;\n\
                    INSERT INTO posts VALUES (1,'DEFINER=`root`@`localhost`');\n";
        assert_eq!(
            rewritten(dump),
            "/*!50013 DEFINER=CURRENT_USER SQL SECURITY DEFINER */\n\
             /*!50003 CREATE*/ /*!50017 DEFINER=CURRENT_USER */ /*!50003 TRIGGER t */;\n\
             CREATE DEFINER=CURRENT_USER PROCEDURE p() SELECT 1;\n\
             INSERT INTO posts VALUES (1,'DEFINER=`root`@`localhost`');\n"
        );
    }

    #[test]
    fn a_definer_that_is_not_two_quoted_names_is_left_for_the_server_to_refuse() {
        let line = "CREATE DEFINER=root@localhost VIEW v AS SELECT 1;\n";
        assert_eq!(rewritten(line), line);
    }
}

#[cfg(test)]
mod dump_check_tests {
    use super::*;

    fn streamed(chunks: &[&[u8]]) -> DumpTail {
        let mut tail = DumpTail::default();
        for chunk in chunks {
            tail.saw(chunk);
        }
        tail
    }

    #[test]
    fn a_dump_is_complete_only_with_its_closing_line_wherever_the_reads_split_it() {
        let body = vec![b'x'; 10_000];
        let whole = streamed(&[&body, b"\n-- Dump completed on 2026-11-26\n"]);
        assert!(check_dump("db", whole.len, whole.complete()).is_ok());
        let split = streamed(&[&body, b"\n-- Dump comp", b"leted on 2026-11-26\n"]);
        assert!(check_dump("db", split.len, split.complete()).is_ok());

        let cut = streamed(&[&body, b"\nINSERT INTO t VALUES (1"]);
        let error = check_dump("db", cut.len, cut.complete())
            .unwrap_err()
            .to_string();
        assert!(error.contains("the dump of db is truncated"), "{error}");
        // The closing line long before the end is not the end.
        let early = streamed(&[b"-- Dump completed\n", &body]);
        assert!(!early.complete());

        let empty = streamed(&[]);
        let error = check_dump("db", empty.len, empty.complete())
            .unwrap_err()
            .to_string();
        assert!(error.contains("the dump of db is empty"), "{error}");
    }
}
