//! System users and groups for sites: one each per PHP site, created and removed through
//! the system's own tools (`useradd`, `userdel`, `groupadd`), looked up through NSS.

use serde::{Deserialize, Serialize};

use crate::{HostError, Result, run_command};

/// A user fjord made for a site, and the ids it had (so that a removal can be undone with
/// the same ids: the site's files keep their owner).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

/// The uid and primary gid of a user, if it exists.
pub fn lookup(name: &str) -> Option<(u32, u32)> {
    uzers::get_user_by_name(name).map(|u| (u.uid(), u.primary_group_id()))
}

/// The gid of a group, if it exists.
pub fn lookup_group(name: &str) -> Option<u32> {
    uzers::get_group_by_name(name).map(|g| g.gid())
}

fn run(argv: &[&str]) -> Result<()> {
    let argv: Vec<String> = argv.iter().map(|a| a.to_string()).collect();
    let out = run_command(&argv)?;
    if out.success {
        Ok(())
    } else {
        Err(HostError::Command {
            program: argv[0].clone(),
            status: out.status,
            output: out.output.trim().to_string(),
        })
    }
}

/// Creates a system user with a group of its own name, no login shell and no home of its
/// own (`home` is recorded only). With `ids`, the same uid and gid it had before.
pub fn create(name: &str, home: &std::path::Path, ids: Option<(u32, u32)>) -> Result<SystemUser> {
    if lookup(name).is_some() || lookup_group(name).is_some() {
        return Err(HostError::Refused(format!(
            "a user or group named {name} already exists on this host: fjord never adopts one \
             it did not make"
        )));
    }
    let home = home.display().to_string();
    match ids {
        Some((uid, gid)) => {
            run(&["groupadd", "--system", "--gid", &gid.to_string(), name])?;
            let made = run(&[
                "useradd",
                "--system",
                "--uid",
                &uid.to_string(),
                "--gid",
                &gid.to_string(),
                "--no-create-home",
                "--home-dir",
                &home,
                "--shell",
                "/usr/sbin/nologin",
                name,
            ]);
            if made.is_err() {
                let _ = run(&["groupdel", name]);
            }
            made?;
        }
        None => run(&[
            "useradd",
            "--system",
            "--user-group",
            "--no-create-home",
            "--home-dir",
            &home,
            "--shell",
            "/usr/sbin/nologin",
            name,
        ])?,
    }
    let (uid, gid) = lookup(name).ok_or_else(|| {
        HostError::Refused(format!("user {name} was created but cannot be looked up"))
    })?;
    Ok(SystemUser {
        name: name.to_string(),
        uid,
        gid,
    })
}

/// Removes a user and its group; nothing if they are gone already. Every process of the user
/// is ended first: a site's code may leave processes behind (`setsid` from its PHP, when its
/// platform allows processes), and `userdel` refuses a user that has any.
pub fn remove(name: &str) -> Result<()> {
    if let Some((uid, _)) = lookup(name) {
        end_processes_of(name, uid)?;
        run(&["userdel", name])?;
    }
    if lookup_group(name).is_some() {
        run(&["groupdel", name])?;
    }
    Ok(())
}

/// The processes that run with `uid` as their real, effective, saved or file-system user id
/// (zombies left out: they hold nothing, and their parent reaps them).
fn processes_of(uid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
                return false; // gone meanwhile
            };
            let field = |name: &str| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix(name))
                    .map(str::trim)
            };
            let zombie = field("State:").is_some_and(|s| s.starts_with('Z'));
            let ids = field("Uid:").unwrap_or_default();
            !zombie && ids.split_whitespace().any(|id| id.parse() == Ok(uid))
        })
        .collect()
}

/// Kills every process of the user, again until none is left (one may fork while the first
/// are killed); refused if some are still there after a few seconds.
fn end_processes_of(name: &str, uid: u32) -> Result<()> {
    if uid == 0 {
        return Err(HostError::Refused(format!(
            "user {name} is root: fjord ends the processes of its sites' users only"
        )));
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let pids = processes_of(uid);
        if pids.is_empty() {
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            return Err(HostError::Refused(format!(
                "processes of user {name} (uid {uid}) survive SIGKILL: {pids:?}"
            )));
        }
        let mut argv = vec!["kill".to_string(), "-KILL".to_string()];
        argv.extend(pids.iter().map(u32::to_string));
        // A process that ended meanwhile makes kill fail: the next pass looks again.
        let _ = run_command(&argv)?;
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
