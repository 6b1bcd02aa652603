//! PHP run from the command line as a site's own user: an application's installer, its
//! upgrade routine, its cron. The code is handed over on standard input (no file for another
//! user to read or swap), values the code needs (passwords) through the environment, never
//! argv, and nothing of the environment is logged.

use std::io::Write;
use std::path::PathBuf;
use std::process::Stdio;

use crate::{HostError, Result};

/// util-linux's `prlimit`: sets the limits of the process it then becomes.
const PRLIMIT: &str = "/usr/bin/prlimit";

/// Processes a site's user may have while fjord runs its PHP from the command line (its
/// pool's workers count too: at most a handful).
const NPROC: u32 = 64;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PhpRun {
    /// The PHP command-line interpreter.
    pub cli: PathBuf,
    pub user: String,
    /// What the run does, for the task log ("the WordPress installer").
    pub describe: String,
    pub code: String,
    pub env: Vec<(String, String)>,
    /// php.ini settings (`-d key=value`): the same limits as the site's pool.
    pub ini: Vec<(String, String)>,
    pub cwd: PathBuf,
    /// The interpreter's arguments after the ini settings (a script and its arguments, such
    /// as a platform's drush); none: the code on standard input is run.
    pub args: Vec<String>,
    /// Output lines holding this word (any case) are left out of what is returned: a tool
    /// that prints a secret it made (drush's generated admin password) never reaches a log.
    pub hide_lines_with: Option<String>,
}

impl PhpRun {
    /// Runs the code; its output (stdout, then stderr) on success, an error carrying it on
    /// failure.
    pub fn run(&self) -> Result<String> {
        let (uid, gid) = crate::users::lookup(&self.user).ok_or_else(|| {
            HostError::Refused(format!("user {} does not exist on this host", self.user))
        })?;
        let cli = self.cli.display().to_string();
        // The kernel's limits php-fpm cannot set per pool, for this run and every process it
        // starts: no core dump of a site's memory, a bounded number of open files, and of
        // processes of the site's user (a fork bomb stops there).
        let mut cmd = crate::process::child_command_as(PRLIMIT, uid, gid);
        cmd.args([
            &format!("--nproc={NPROC}"),
            "--nofile=1024",
            "--core=0",
            "--",
            &cli,
        ]);
        for (key, value) in &self.ini {
            cmd.arg("-d").arg(format!("{key}={value}"));
        }
        cmd.args(&self.args);
        cmd.env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&self.cwd)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| HostError::io(&self.cli, e))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(self.code.as_bytes())
                .map_err(|e| HostError::io(&self.cli, e))?;
        }
        let out = child
            .wait_with_output()
            .map_err(|e| HostError::io(&self.cli, e))?;
        let mut output = String::from_utf8_lossy(&out.stdout).into_owned();
        output.push_str(&String::from_utf8_lossy(&out.stderr));
        if let Some(word) = self.hide_lines_with.as_deref() {
            output = output
                .lines()
                .filter(|l| !l.to_lowercase().contains(word))
                .map(|l| format!("{l}\n"))
                .collect();
        }
        if out.status.success() {
            Ok(output)
        } else {
            Err(HostError::Command {
                program: format!("{} ({})", self.describe, cli),
                status: out.status.to_string(),
                output: output.trim().to_string(),
            })
        }
    }
}
