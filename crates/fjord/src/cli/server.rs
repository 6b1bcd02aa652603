//! `fjord server`: the servers fjord manages, and their nginx, database and PHP services.

use std::process::ExitCode;

use clap::Subcommand;
use engine::{Error, Fjord};

use super::{JsonOpt, NginxArgs, TaskOpts, queued, show};
use crate::outln;
use crate::output::{self, print_json, table};

/// How fjord reaches a remote server.
#[derive(clap::Args, Debug)]
pub struct RemoteArgs {
    /// A remote server, reached over SSH as USER (root, or a user that may do what root does)
    /// at HOST, on PORT (default 22).
    #[arg(long, value_name = "USER@HOST[:PORT]")]
    ssh: Option<String>,
    /// The host key to pin, TYPE BASE64 as in the server's /etc/ssh/ssh_host_ed25519_key.pub
    /// [default: the key the server offers now, shown for you to compare].
    #[arg(long, value_name = "KEY", requires = "ssh")]
    host_key: Option<String>,
    /// fjord's directory on the remote server: its agent, the config it writes for the
    /// server's nginx and php-fpm, the tasks' scratch dirs [default: /var/lib/fjord-remote].
    #[arg(long, value_name = "DIR", requires = "ssh")]
    remote_dir: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum ServerCmd {
    /// Register a server with an nginx service, and verify it. With --ssh, a remote server:
    /// fjord signs in over SSH with its own key (`fjord ssh-key` prints it) and checks the
    /// host key it pins now (shown) on every connection.
    Add {
        #[arg(allow_hyphen_values = true)]
        name: String,
        #[command(flatten)]
        nginx: Box<NginxArgs>,
        #[command(flatten)]
        remote: RemoteArgs,
        #[command(flatten)]
        opts: TaskOpts,
    },
    /// List the servers.
    List(JsonOpt),
    /// Show a server and its services.
    Show {
        #[arg(allow_hyphen_values = true)]
        name: String,
        #[command(flatten)]
        json: JsonOpt,
    },
    /// Add or remove a server's database and php-fpm services, change its listen addresses,
    /// then verify it. A service that
    /// a site's database or a platform uses is not removed (they are named).
    Edit {
        #[arg(allow_hyphen_values = true)]
        name: String,
        /// A database service to add (repeatable): mysql, postgresql or sqlite, with options
        /// as ENGINE:key=value,... as for `server add --db`.
        #[arg(long = "add-db", value_name = "SERVICE")]
        add_db: Vec<String>,
        /// A database engine whose service goes (repeatable); with --add-db of the same
        /// engine, its options are replaced.
        #[arg(long = "remove-db", value_name = "ENGINE")]
        remove_db: Vec<String>,
        /// A php-fpm service to add (repeatable): VERSION[:key=value,...] as for
        /// `server add --php`.
        #[arg(long = "add-php", value_name = "SERVICE")]
        add_php: Vec<String>,
        /// A PHP version whose php-fpm service goes (repeatable).
        #[arg(long = "remove-php", value_name = "VERSION")]
        remove_php: Vec<String>,
        /// New HTTP addresses for the vhosts, replacing the old ones (repeatable); every
        /// served site is verified after the server.
        #[arg(long, value_name = "IP:PORT")]
        listen: Vec<String>,
        /// New HTTPS addresses, replacing the old ones (repeatable), or `none`.
        #[arg(long, value_name = "IP:PORT")]
        https_listen: Vec<String>,
        /// Whether the dispatchers' monitor probes the server's daemons and restarts one
        /// found down: on or off.
        #[arg(long, value_name = "on|off")]
        monitor: Option<String>,
        /// A remote server's new host key, pinned in place of the old one (after the server
        /// was re-keyed on purpose): TYPE BASE64, as in its /etc/ssh/ssh_host_ed25519_key.pub.
        #[arg(long, value_name = "KEY")]
        host_key: Option<String>,
        #[command(flatten)]
        opts: TaskOpts,
    },
    /// Rewrite fjord's server-level config and hook it into nginx.
    Verify {
        #[arg(allow_hyphen_values = true)]
        name: String,
        #[command(flatten)]
        opts: TaskOpts,
    },
}

/// The monitor's events `server show` lists.
const SHOWN_EVENTS: u32 = 20;

pub(super) fn server(fjord: &Fjord, cmd: ServerCmd) -> Result<ExitCode, Error> {
    match cmd {
        ServerCmd::Add {
            name,
            nginx,
            remote,
            opts,
        } => {
            engine::ops::parse_on_off("monitor", nginx.monitor.as_deref().unwrap_or(""))?;
            let mut input = nginx.input(&name);
            input.remote = remote.ssh.map(|ssh| engine::ops::RemoteInput {
                ssh,
                host_key: remote.host_key,
                dir: remote.remote_dir,
            });
            let queued_task = fjord.add_server(&input, opts.dry_run)?;
            if let Some(remote) = fjord.server(&name).ok().and_then(|s| s.remote) {
                eprintln!(
                    "fjord: pinned the host key of {} ({}): {}",
                    name, remote.ssh, remote.host_key
                );
            }
            queued(fjord, queued_task, &opts)
        }
        ServerCmd::Edit {
            name,
            add_db,
            remove_db,
            add_php,
            remove_php,
            listen,
            https_listen,
            monitor,
            host_key,
            opts,
        } => {
            let edit = engine::ops::ServerEdit {
                name,
                add_db,
                remove_db,
                add_php,
                remove_php,
                listen,
                https_listen,
                monitor: engine::ops::parse_on_off("monitor", monitor.as_deref().unwrap_or(""))?,
                host_key,
            };
            queued(fjord, fjord.edit_server(&edit, opts.dry_run)?, &opts)
        }
        ServerCmd::Verify { name, opts } => {
            queued(fjord, fjord.verify_server(&name, opts.dry_run)?, &opts)
        }
        ServerCmd::List(o) => {
            let servers = fjord.servers()?;
            if o.json {
                print_json(&servers.iter().map(output::server_json).collect());
            } else {
                table(
                    &["name", "http", "listen"],
                    servers
                        .iter()
                        .map(|s| {
                            let engine::model::HttpService::Nginx(n) = &s.http;
                            let listen: Vec<String> = n
                                .listen
                                .iter()
                                .map(ToString::to_string)
                                .chain(n.https_listen.iter().map(|a| format!("{a} (https)")))
                                .collect();
                            vec![s.name.to_string(), "nginx".into(), listen.join(" ")]
                        })
                        .collect(),
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        ServerCmd::Show { name, json } => {
            let server = fjord.server(&name)?;
            let mut v = output::server_json(&server);
            let events = fjord.service_events(&server, SHOWN_EVENTS)?;
            if json.json {
                v["events"] = events.iter().map(output::service_event_json).collect();
                show(&v, true);
                return Ok(ExitCode::SUCCESS);
            }
            show(&v, false);
            if !events.is_empty() {
                outln!("");
                outln!("the monitor's last events, newest first:");
                let now = output::now_ms();
                table(
                    &["when", "service", "event", "detail"],
                    events
                        .iter()
                        .map(|e| {
                            vec![
                                output::time_for_people(e.at, now),
                                e.service.clone(),
                                e.event.to_string(),
                                e.detail.clone(),
                            ]
                        })
                        .collect(),
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
