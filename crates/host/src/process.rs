use std::os::unix::process::CommandExt;
use std::process::Command;

use crate::{HostError, Result};

#[derive(Debug, Clone)]
pub struct CommandOutput {
    pub success: bool,
    pub status: String,
    /// stdout and stderr, in that order.
    pub output: String,
}

/// Where util-linux's `setpriv` is: it sets the parent-death signal and then runs the
/// program in its place (same process), so the workspace needs no `unsafe` `pre_exec`.
const SETPRIV: &str = "/usr/bin/setpriv";

/// A command for a child process that cannot outlive fjord: it runs in its own process group
/// (a signal meant for the dispatcher's terminal does not reach it half-way) and receives
/// SIGKILL when the thread that started it ends — so a dispatcher killed mid-task takes
/// every `mariadb`, `psql` and `pg_dump` with it, and nothing races the next dispatcher's
/// rollback. Every process fjord runs is made here.
pub fn child_command(program: &str) -> Command {
    let mut cmd = if std::path::Path::new(SETPRIV).exists() {
        let mut cmd = Command::new(SETPRIV);
        cmd.args(["--pdeathsig", "KILL", "--", program]);
        cmd
    } else {
        Command::new(program)
    };
    cmd.process_group(0);
    cmd
}

/// A command for a daemon the monitor starts again (an nginx, a php-fpm master, a database
/// server found down): unlike [`child_command`]'s, it must outlive the dispatcher, so it has
/// no parent-death signal and runs in a session of its own (util-linux's `setsid`, which
/// runs the program in its place), away from the dispatcher's terminal and process group.
/// Its environment is a clean one: nothing of the dispatcher's (a database administrator's
/// password given by `password-env`, say) reaches a daemon, or the sites' code it runs.
pub fn daemon_command(program: &str) -> Command {
    let mut cmd = if std::path::Path::new(SETSID).exists() {
        let mut cmd = Command::new(SETSID);
        cmd.args(["--", program]);
        cmd
    } else {
        let mut cmd = Command::new(program);
        cmd.process_group(0);
        cmd
    };
    cmd.env_clear().env(
        "PATH",
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    );
    cmd
}

const SETSID: &str = "/usr/bin/setsid";

/// Runs a program without a shell and captures its output.
pub fn run_command(argv: &[String]) -> Result<CommandOutput> {
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| HostError::Refused("empty command".into()))?;
    let out = child_command(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| HostError::io(std::path::Path::new(program), e))?;
    let mut output = String::from_utf8_lossy(&out.stdout).into_owned();
    output.push_str(&String::from_utf8_lossy(&out.stderr));
    Ok(CommandOutput {
        success: out.status.success(),
        status: out.status.to_string(),
        output,
    })
}

/// A command run as another user (uid and gid, no supplementary groups) that cannot outlive
/// fjord either. Needs root; used to run a site's PHP as the site's own user.
pub fn child_command_as(program: &str, uid: u32, gid: u32) -> Command {
    let mut cmd = Command::new(SETPRIV);
    cmd.args([
        "--pdeathsig",
        "KILL",
        &format!("--reuid={uid}"),
        &format!("--regid={gid}"),
        "--clear-groups",
        "--",
        program,
    ]);
    cmd.process_group(0);
    cmd
}

/// Lowers the scheduling priority of the calling thread to `nice`; the threads it starts and
/// the processes they run from then on inherit it (Linux keeps a nice value per thread).
/// `fjord serve` runs its dispatcher so, so that tasks and the programs they run (nginx -t,
/// dumps, archives) yield the cores to the panel's requests.
pub fn lower_this_thread_priority(nice: i32) -> Result<()> {
    let link = std::fs::read_link("/proc/thread-self")
        .map_err(|e| HostError::io(std::path::Path::new("/proc/thread-self"), e))?;
    let tid = link
        .file_name()
        .map(|t| t.to_string_lossy().into_owned())
        .ok_or_else(|| HostError::Refused("no thread id in /proc/thread-self".into()))?;
    let out = run_command(&[
        "renice".into(),
        "-n".into(),
        nice.to_string(),
        "-p".into(),
        tid,
    ])?;
    if !out.success {
        return Err(HostError::Refused(format!(
            "renice failed: {}",
            out.output.trim()
        )));
    }
    Ok(())
}

/// Runs this program again, in place of this process (same pid, same arguments), with `var`
/// set to `value`, unless it is set already. For settings a library reads only when a process
/// starts: glibc's malloc takes its arena limit from the environment.
pub fn reexec_with(var: &str, value: &str) -> Result<()> {
    use std::os::unix::process::CommandExt;
    if std::env::var_os(var).is_some() {
        return Ok(());
    }
    let exe = std::env::current_exe()
        .map_err(|e| HostError::io(std::path::Path::new("/proc/self/exe"), e))?;
    let err = Command::new(&exe)
        .args(std::env::args_os().skip(1))
        .env(var, value)
        .exec();
    Err(HostError::io(&exe, err))
}
