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
        self.load_backup(name, user, dump)
    }

    /// Loads `dump` into the existing database `name` (on PostgreSQL, as role `user`).
    pub fn load(&self, name: &str, user: &str, dump: &Path) -> Result<()> {
        check_identifier(name)?;
        let admin_password = self.admin_password()?;
        let input = File::open(dump).map_err(|e| HostError::io(dump, e))?;
        let mut cmd = match self.kind {
            DbKind::Mysql => self.command(
                Self::mysql_client(),
                &self.admin_user,
                admin_password.as_deref(),
                Some(name),
            ),
            DbKind::Postgresql => {
                let mut c = self.command(
                    "pg_restore",
                    &self.admin_user,
                    admin_password.as_deref(),
                    None,
                );
                c.args([
                    "--no-owner",
                    &format!("--role={user}"),
                    "--exit-on-error",
                    "-d",
                    name,
                ]);
                c
            }
        };
        // A backup's MariaDB dump is zstd-compressed: it is decompressed into the client.
        let output = if is_zstd(dump)? {
            let mut child = cmd
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|e| HostError::io(dump, e))?;
            let fed = child
                .stdin
                .take()
                .ok_or_else(|| HostError::Refused("the database client has no stdin".into()))
                .and_then(|mut stdin| {
                    zstd::stream::copy_decode(input, &mut stdin).map_err(|e| HostError::io(dump, e))
                });
            let output = child
                .wait_with_output()
                .map_err(|e| HostError::io(dump, e))?;
            // The client's own error says more than the broken pipe it left us.
            if output.status.success() {
                fed?;
            }
            output
        } else {
            cmd.stdin(input)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .output()
                .map_err(|e| HostError::io(dump, e))?
        };
        if !output.status.success() {
            return Err(HostError::Command {
                program: "restore".into(),
                status: output.status.to_string(),
                output: String::from_utf8_lossy(&output.stderr).trim().to_string(),
            });
        }
        Ok(())
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
