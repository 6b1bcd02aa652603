//! `fjord backup-target`: machines that keep a copy of each backup, so that a site's backups
//! outlive its web server.

use std::process::ExitCode;

use clap::Subcommand;
use engine::{Error, Fjord};

use super::JsonOpt;
use crate::outln;
use crate::output::{print_json, table};

#[derive(Subcommand, Debug)]
pub enum BackupTargetCmd {
    /// Add a backup target: a machine fjord reaches over SSH, as it reaches a remote server
    /// (its own key, which `fjord ssh-key` prints, and a host key pinned now), that keeps a
    /// copy of the backups of each site whose policy names it (`fjord backup-policy
    /// --copy-to`). It runs nothing of fjord's: a POSIX shell with mkdir, cat, mv, rm and
    /// sha256sum is all it needs. Each copy is checked by its SHA-256 on the target before it
    /// takes its name; `fjord site restore --from-target` restores from one.
    Add {
        /// The target's name in fjord: lowercase letters, digits, - and _.
        #[arg(allow_hyphen_values = true)]
        name: String,
        /// Where the copies go: the user fjord signs in as, the machine (and its SSH port,
        /// default 22), and an absolute directory there, of letters, digits, /, ., _ and -
        /// (each site's copies go in a directory of its own below it).
        #[arg(long, value_name = "USER@HOST[:PORT]:/path", required = true)]
        ssh: String,
        /// The host key to pin, TYPE BASE64 as in the target's
        /// /etc/ssh/ssh_host_ed25519_key.pub [default: the key the target offers now, shown
        /// for you to compare].
        #[arg(long, value_name = "KEY")]
        host_key: Option<String>,
    },
    /// List the backup targets.
    List(JsonOpt),
    /// Remove a backup target. fjord forgets the copies it holds (they stay on it). Refused
    /// while a backup policy names it.
    Remove {
        #[arg(allow_hyphen_values = true)]
        name: String,
    },
}

pub(super) fn backup_target(fjord: &Fjord, cmd: BackupTargetCmd) -> Result<ExitCode, Error> {
    match cmd {
        BackupTargetCmd::Add {
            name,
            ssh,
            host_key,
        } => {
            let target = fjord.add_backup_target(&name, &ssh, host_key.as_deref())?;
            eprintln!(
                "fjord: pinned the host key of backup target {} ({}): {}",
                target.name, target.target.ssh, target.host_key
            );
            outln!("backup target {} added: {}", target.name, target.target);
        }
        BackupTargetCmd::List(o) => {
            let targets = fjord.backup_targets()?;
            if o.json {
                print_json(
                    &targets
                        .iter()
                        .map(|t| {
                            serde_json::json!({
                                "name": t.name.as_str(),
                                "ssh": t.target.ssh.to_string(),
                                "path": t.target.path,
                                "host_key": t.host_key.to_string(),
                            })
                        })
                        .collect(),
                );
            } else {
                table(
                    &["name", "ssh", "path", "host key"],
                    targets
                        .iter()
                        .map(|t| {
                            vec![
                                t.name.to_string(),
                                t.target.ssh.to_string(),
                                t.target.path.clone(),
                                t.host_key.key_type.clone(),
                            ]
                        })
                        .collect(),
                );
            }
        }
        BackupTargetCmd::Remove { name } => {
            fjord.remove_backup_target(&name)?;
            outln!("backup target {name} removed; the copies on it stay there");
        }
    }
    Ok(ExitCode::SUCCESS)
}
