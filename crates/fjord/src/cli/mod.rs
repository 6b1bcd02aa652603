use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use engine::config::{Config, Flags};
use engine::model::TaskStatus;
use engine::ops::{Queued, ServerInput};
use engine::{Error, Fjord, TaskFilter};

use crate::outln;

mod backup_target;
mod config;
mod doctor;
mod generate;
mod mail;
mod people;
mod platform;
mod serve;
mod server;
mod site;
mod task;
mod wait;

use crate::output::{self, print_json};

use backup_target::BackupTargetCmd;
use platform::PlatformCmd;
use serve::{DispatchArgs, ServeArgs};
use server::ServerCmd;
use site::SiteCmd;
use task::TaskCmd;
use wait::follow;

/// fjord hosts fleets of sites: it keeps servers, platforms (code bases) and sites in one
/// state, and brings hosts in line with it through tasks that either complete or are rolled
/// back.
///
/// Commands that change a host only queue a task; a dispatcher (`fjord serve` or
/// `fjord dispatch`) runs it. Add --wait to wait for the result, --dry-run to see the plan.
/// `fjord --version`: the release, the commit it was built from and the day it was built.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("FJORD_BUILD_COMMIT"),
    ", built ",
    env!("FJORD_BUILD_DATE"),
    ")"
);

#[derive(Parser, Debug)]
#[command(name = "fjord", version = VERSION, max_term_width = 100)]
pub struct Cli {
    /// Where fjord keeps its state, config and journals [env: FJORD_DATA_DIR; config:
    /// data_dir; default: /var/lib/fjord as root, $XDG_DATA_HOME/fjord otherwise].
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,

    /// The config file [env: FJORD_CONFIG; default: /etc/fjord/fjord.toml if it exists].
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// First-run setup: create the state, register this machine as a server, verify it.
    Init(InitArgs),
    /// Run fjord: the web panel and JSON API, and a dispatcher, until stopped.
    ///
    /// SIGTERM or Ctrl-C stops the dispatcher claiming tasks; it exits once the running ones
    /// are done. A second signal exits at once: the next dispatcher rolls back what was
    /// running. Each request to the panel is logged on stderr (see --log-format).
    Serve(ServeArgs),
    /// Run a dispatcher alone: it runs queued tasks (stopped as `serve` is).
    Dispatch(DispatchArgs),
    /// Check this machine as a careful operator would (nginx's include, php-fpm's reloads,
    /// database administrators reachable without a password, free disk, clock, the panel's
    /// address) and say what to fix; exits 1 if anything is a problem. Changes nothing.
    Doctor(doctor::DoctorArgs),
    /// Machines and their services.
    #[command(subcommand)]
    Server(ServerCmd),
    /// Code bases that sites run on.
    #[command(subcommand)]
    Platform(PlatformCmd),
    /// Sites: a host name on a platform.
    #[command(subcommand)]
    Site(SiteCmd),
    /// The task queue and its logs.
    #[command(subcommand)]
    Task(TaskCmd),
    /// HTTPS: the installation's account at an ACME CA, and certificates for a server's sites
    /// (one site's with `fjord site https`).
    #[command(subcommand)]
    Https(HttpsCmd),
    /// Show or set the default backup schedule, retention and backup target of every site
    /// without its own.
    BackupPolicy(PolicyArgs),
    /// Machines that keep a copy of each backup (by policy), so that a site's backups
    /// outlive its web server.
    #[command(subcommand)]
    BackupTarget(BackupTargetCmd),
    /// How fjord sends mail (login links after an install, task-failure notices).
    #[command(subcommand)]
    Mail(mail::MailCmd),
    /// The people sites belong to: their quotas and the platforms they may use.
    #[command(subcommand)]
    Client(people::ClientCmd),
    /// Users of the panel and the API, and their roles.
    #[command(subcommand)]
    User(people::UserCmd),
    /// The config file (/etc/fjord/fjord.toml): check it, show the settings in effect.
    #[command(subcommand)]
    Config(config::ConfigCmd),
    /// Shell completions and man pages, for packagers.
    #[command(subcommand, hide = true)]
    Generate(generate::GenerateCmd),
    /// Print fjord's own SSH public key (made on first use): append it to the
    /// ~/.ssh/authorized_keys of the user fjord signs in as on each remote server.
    SshKey,
    /// Serve a dispatcher over standard input and output: what fjord runs on a remote server,
    /// over SSH. Not for people.
    #[command(hide = true)]
    Agent {
        /// fjord's dir on this machine.
        #[arg(long, value_name = "DIR")]
        dir: std::path::PathBuf,
    },
}

#[derive(Subcommand, Debug)]
enum HttpsCmd {
    /// Register the installation's account at an ACME CA (Let's Encrypt unless --directory or
    /// --staging says otherwise), agreeing to its terms. Its key is kept readable by root
    /// only, never shown. Queued as a task on SERVER, which reaches the CA.
    Account {
        /// The address the CA writes to about the account's certificates.
        #[arg(long, value_name = "ADDRESS")]
        email: String,
        /// Another CA's ACME directory URL.
        #[arg(long, value_name = "URL")]
        directory: Option<String>,
        /// Let's Encrypt's staging CA (for trying things out: its certificates are not trusted).
        #[arg(long)]
        staging: bool,
        /// The only root certificate (PEM) trusted to reach a private CA.
        #[arg(long, value_name = "FILE")]
        ca_root: Option<PathBuf>,
        /// The server whose dispatcher talks to the CA.
        #[arg(long, default_value = "local")]
        server: String,
        #[command(flatten)]
        opts: TaskOpts,
    },
    /// Give every site of SERVER that has no certificate of the account for all its names one
    /// (a fleet switched to HTTPS after `https account`): one task, its orders side by side,
    /// every vhost switched in as few nginx reloads as possible. A site whose order fails is
    /// named in the log and keeps serving as before (the task ends `warning`); orders beyond
    /// the CA's limit (Let's Encrypt: 300 an account in 3 hours) are deferred and said.
    Issue {
        /// The server whose sites get certificates.
        #[arg(long, default_value = "local")]
        server: String,
        #[command(flatten)]
        opts: TaskOpts,
    },
}

#[derive(Args, Debug)]
struct PolicyArgs {
    /// When to back up: a 5-field cron schedule in UTC, for example "0 3 * * *"; "" clears it.
    #[arg(long, value_name = "CRON")]
    schedule: Option<String>,
    /// Which backups to keep: last=N,daily=D,weekly=W (each optional); "" clears it.
    #[arg(long, value_name = "POLICY")]
    retention: Option<String>,
    /// The backup target (see `fjord backup-target`) each new backup is copied to, after it
    /// is written and checked; `none` for no copy, and for a site `default` to follow the
    /// installation's.
    #[arg(long, value_name = "TARGET|none|default")]
    copy_to: Option<String>,
}

#[derive(Args, Debug)]
struct InitArgs {
    /// The name to give this machine.
    #[arg(long, default_value = "local")]
    name: String,
    /// The name of the panel's first administrator (made only if there is no user yet).
    #[arg(long, default_value = "admin", value_name = "USER")]
    admin: String,
    /// The panel's address as its users reach it, for login links [default: what
    /// `fjord serve` last listened on, or http://127.0.0.1:8470].
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    #[command(flatten)]
    nginx: NginxArgs,
}

#[derive(Args, Debug, Clone)]
struct TaskOpts {
    /// Wait for the task to finish, showing its log; exit non-zero if it fails.
    #[arg(long)]
    wait: bool,
    /// Print the task (or with --dry-run, the plan) as JSON.
    #[arg(long)]
    json: bool,
    /// Print the steps the task would make, with file contents, and change nothing.
    #[arg(long)]
    dry_run: bool,
}

#[derive(Args, Debug, Clone)]
struct JsonOpt {
    /// Print as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug, Clone)]
struct NginxArgs {
    /// The nginx program.
    #[arg(long, default_value = "/usr/sbin/nginx", value_name = "PATH")]
    nginx_bin: String,
    /// nginx's main config file.
    #[arg(long, default_value = "/etc/nginx/nginx.conf", value_name = "PATH")]
    nginx_conf: String,
    /// nginx's prefix (-p), for an instance with its own prefix.
    #[arg(long, value_name = "DIR")]
    nginx_prefix: Option<String>,
    /// A directory nginx's main config includes at http level; fjord puts its hook file there.
    #[arg(long, default_value = "/etc/nginx/conf.d", value_name = "DIR")]
    nginx_include_dir: String,
    /// Where site vhosts answer HTTP (repeatable: IPv4 and IPv6, several ports); the first
    /// is the sites' canonical port.
    #[arg(long, default_value = "0.0.0.0:80", value_name = "IP:PORT")]
    listen: Vec<String>,
    /// Where site vhosts answer HTTPS, for sites with a certificate (repeatable, for example
    /// 0.0.0.0:443 and [::]:443) [default: none].
    #[arg(long, value_name = "IP:PORT")]
    https_listen: Vec<String>,
    /// How to reload nginx: `signal` (nginx -s reload) or an absolute command, run without a
    /// shell.
    #[arg(long, default_value = "signal", value_name = "HOW")]
    reload: String,
    /// The user that should own site files.
    #[arg(long, value_name = "USER")]
    files_owner: Option<String>,
    /// A database service on this server (repeatable): mysql, postgresql or sqlite, with
    /// options as ENGINE:key=value,... (socket, host, port, user, password-file, password-env,
    /// start: the command the monitor starts it with, unit: its systemd unit). Defaults:
    /// mysql through /run/mysqld/mysqld.sock as root; postgresql on 127.0.0.1:5432 as postgres.
    #[arg(long = "db", value_name = "SERVICE")]
    db: Vec<String>,
    /// A php-fpm service on this server (repeatable), one per PHP version: VERSION with
    /// options as VERSION:key=value,... (binary, config, pool-dir, pid, start, unit). Defaults
    /// are Debian's paths for that version (/usr/sbin/php-fpm8.2, /etc/php/8.2/fpm/...).
    /// `fjord init` registers every php-fpm installed when none is given.
    #[arg(long = "php", value_name = "SERVICE")]
    php: Vec<String>,
    /// The group nginx's workers run as; PHP sites' files and sockets are given to it
    /// [default: www-data].
    #[arg(long, value_name = "GROUP")]
    web_group: Option<String>,
    /// Whether the dispatchers' monitor probes this server's nginx, php-fpm masters and
    /// database servers and restarts one found down: on or off [default: on].
    #[arg(long, value_name = "on|off")]
    monitor: Option<String>,
    /// The command that starts nginx again when the monitor finds it down (an absolute
    /// program and its arguments, no shell) [default: NGINX_BIN -c NGINX_CONF, or systemd's
    /// nginx.service for the standard nginx when systemd runs].
    #[arg(long, value_name = "COMMAND")]
    nginx_start: Option<String>,
    /// nginx's systemd unit, which the monitor restarts [default: nginx.service, for the
    /// standard nginx].
    #[arg(long, value_name = "UNIT")]
    nginx_unit: Option<String>,
}

impl NginxArgs {
    fn input(&self, name: &str) -> ServerInput {
        ServerInput {
            name: name.to_string(),
            nginx_binary: self.nginx_bin.clone(),
            nginx_config: self.nginx_conf.clone(),
            nginx_prefix: self.nginx_prefix.clone(),
            include_dir: self.nginx_include_dir.clone(),
            listen: self.listen.clone(),
            https_listen: self.https_listen.clone(),
            reload: self.reload.clone(),
            files_owner: self.files_owner.clone(),
            db: self.db.clone(),
            php: self.php.clone(),
            web_group: self.web_group.clone(),
            monitor: self.monitor.as_deref() != Some("off"),
            nginx_start: self.nginx_start.clone(),
            nginx_unit: self.nginx_unit.clone(),
            remote: None,
        }
    }
}

fn is_root() -> bool {
    // The owner of /proc/self is the process's effective user.
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}

fn default_concurrency() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
}

/// The command line's share of the settings (the rest come from the environment, the config
/// file and the defaults).
fn flags(cli: &Cli) -> Flags {
    let mut flags = Flags {
        config: cli.config.clone(),
        data_dir: cli.data_dir.clone(),
        ..Flags::default()
    };
    let dispatch = match &cli.command {
        Command::Serve(args) => {
            flags.listen = args.listen.clone();
            flags.url = args.url.clone();
            flags.panel_server = args.panel_server.clone();
            flags.trusted_proxies = args.trusted_proxies.clone();
            flags.no_dispatcher = args.no_dispatcher;
            &args.dispatch
        }
        Command::Dispatch(args) => args,
        _ => return flags,
    };
    flags.concurrency = dispatch.concurrency.clone();
    flags.log_keep = dispatch.log_keep.clone();
    flags.log_rotate_bytes = dispatch.log_rotate_bytes.clone();
    flags.disk_stop_percent = dispatch.disk_stop_percent.clone();
    flags.disk_resume_percent = dispatch.disk_resume_percent.clone();
    flags.monitor_interval = dispatch.monitor_interval.clone();
    flags.log_format = dispatch.log_format.clone();
    flags
}

pub fn run(cli: Cli) -> Result<ExitCode, Error> {
    if let Command::Generate(cmd) = cli.command {
        // A build step: it must not make a data dir where a package is built.
        return generate::generate(cmd);
    }
    if let Command::Agent { dir } = &cli.command {
        // On a remote server: no state, no config, no log but the dispatcher's.
        engine::serve_agent(dir)?;
        return Ok(ExitCode::SUCCESS);
    }
    if matches!(cli.command, Command::Serve(_)) {
        engine::limit_malloc_arenas()?;
    }
    let loaded = Config::load(
        &flags(&cli),
        &|name| std::env::var_os(name).map(|v| v.to_string_lossy().into_owned()),
        is_root(),
    );
    if let Command::Config(cmd) = &cli.command {
        return Ok(config::config(cmd, loaded));
    }
    let config = loaded?;
    let daemon = matches!(cli.command, Command::Serve(_) | Command::Dispatch(_));
    crate::logging::init(&config.log, daemon)?;
    let fjord = Arc::new(Fjord::open(&config.data_dir.value)?);
    // A name not found is answered with the closest names: the command line runs as root and
    // may see them all.
    run_command(&fjord, &config, cli.command).map_err(|e| fjord.with_near_names(e))
}

fn run_command(fjord: &Arc<Fjord>, config: &Config, command: Command) -> Result<ExitCode, Error> {
    match command {
        Command::Init(args) => init(fjord, &args),
        Command::Serve(args) => serve::serve(fjord, config, &args),
        Command::Dispatch(args) => {
            serve::apply_config_mail(fjord, config)?;
            serve::run_dispatcher(fjord, config, &args, false)
        }
        Command::Doctor(args) => doctor::doctor(fjord, &args),
        Command::Server(cmd) => server::server(fjord, cmd),
        Command::Platform(cmd) => platform::platform(fjord, cmd),
        Command::Site(cmd) => site::site(fjord, cmd),
        Command::Task(cmd) => task::task(fjord, cmd),
        Command::Https(HttpsCmd::Account {
            email,
            directory,
            staging,
            ca_root,
            server,
            opts,
        }) => {
            let ca_root = ca_root
                .map(|p| std::path::absolute(&p).map(|p| p.display().to_string()))
                .transpose()
                .map_err(|e| Error::Refused(format!("--ca-root: {e}")))?;
            let q = fjord.https_account(
                &server,
                &email,
                directory.as_deref(),
                staging,
                ca_root.as_deref(),
                opts.dry_run,
            )?;
            queued(fjord, q, &opts)
        }
        Command::Https(HttpsCmd::Issue { server, opts }) => {
            let q = fjord.https_issue(&server, opts.dry_run)?;
            queued(fjord, q, &opts)
        }
        Command::BackupPolicy(p) => policy(fjord, None, &p),
        Command::BackupTarget(cmd) => backup_target::backup_target(fjord, cmd),
        Command::Mail(cmd) => mail::mail(fjord, config, cmd),
        Command::Client(cmd) => people::client(fjord, cmd),
        Command::User(cmd) => people::user(fjord, cmd),
        Command::Generate(cmd) => generate::generate(cmd),
        Command::SshKey => {
            outln!("{}", fjord.ssh_public_key()?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Agent { .. } => unreachable!("answered before the state is opened"),
        Command::Config(_) => unreachable!("answered before the state is opened"),
    }
}

fn init(fjord: &Arc<Fjord>, args: &InitArgs) -> Result<ExitCode, Error> {
    engine::ops::parse_on_off("monitor", args.nginx.monitor.as_deref().unwrap_or(""))?;
    let exists = fjord
        .servers()?
        .into_iter()
        .any(|s| s.name.as_str() == args.name);
    if exists {
        // init registers this machine once; it never changes a registered server, so options
        // that describe one are refused rather than ignored.
        let given = init_server_changes(fjord, args)?;
        if !given.is_empty() {
            return Err(Error::Refused(format!(
                "server {name} is already registered, and init does not change it ({given} \
                 would be ignored): add or remove its services with `fjord server edit {name} \
                 --add-db ENGINE` (or --remove-db, --add-php, --remove-php, --monitor)",
                name = args.name,
                given = given.join(" ")
            )));
        }
        eprintln!(
            "fjord: server {} is already registered; verifying it again",
            args.name
        );
        fjord.verify_server(&args.name, false)?;
    } else {
        if !std::path::Path::new(&args.nginx.nginx_bin).exists() {
            return Err(Error::Refused(format!(
                "nginx not found at {}: install it (apt-get install nginx, or scripts/setup-host) \
                 or give --nginx-bin",
                args.nginx.nginx_bin
            )));
        }
        let mut input = args.nginx.input(&args.name);
        if input.php.is_empty() {
            input.php = engine::ops::installed_php_fpm();
        }
        fjord.add_server(&input, false)?;
        eprintln!("fjord: registered this machine as server {}", args.name);
    }
    fjord.dispatch_until_idle(default_concurrency())?;
    let verify = fjord
        .tasks(&TaskFilter {
            limit: Some(1),
            ..Default::default()
        })?
        .into_iter()
        .next();
    if let Some(t) = verify.filter(|t| t.status != TaskStatus::Success) {
        eprintln!(
            "fjord: the server's verify (task {}) did not succeed: {}",
            t.id,
            t.error.unwrap_or_default()
        );
        eprintln!("       see `fjord task log {}`", t.id);
        return Ok(ExitCode::FAILURE);
    }
    outln!(
        "fjord is set up in {}; server {} is verified.",
        fjord.data_dir().display(),
        args.name
    );
    if let Some(url) = &args.url {
        fjord.set_panel_url(url)?;
    }
    if let Some(link) = fjord.first_administrator(&args.admin)? {
        outln!(
            "The panel's first administrator is {}. Once `fjord serve` runs, sign in with",
            args.admin
        );
        outln!("  {link}");
        outln!(
            "(it works once, for a day; `fjord user link {}` makes another).",
            args.admin
        );
    }
    outln!("Next:");
    if engine::systemd_runs() {
        outln!("  systemctl start fjord                          # the panel and the dispatcher");
    } else {
        outln!(
            "  fjord serve &                                  # run the panel and the dispatcher"
        );
    }
    outln!(
        "  fjord platform add web --server {} --path /srv/web",
        args.name
    );
    outln!("  fjord site add example.com --platform web --alias www.example.com --wait");
    Ok(ExitCode::SUCCESS)
}

/// The server options given to `init` that differ from the registered server's (`--db
/// mysql` on a server without it, …): init cannot make them.
fn init_server_changes(fjord: &Fjord, args: &InitArgs) -> Result<Vec<String>, Error> {
    let registered = fjord.server(&args.name)?;
    let wanted = fjord.parse_server(&args.nginx.input(&args.name))?;
    let mut changes = Vec::new();
    if !args.nginx.db.is_empty() && wanted.db != registered.db {
        changes.extend(args.nginx.db.iter().map(|d| format!("--db {d}")));
    }
    if !args.nginx.php.is_empty() && wanted.php != registered.php {
        changes.extend(args.nginx.php.iter().map(|p| format!("--php {p}")));
    }
    let http_given = nginx_options_given(&args.nginx);
    if !http_given.is_empty() && wanted.http != registered.http {
        changes.extend(http_given);
    }
    if let Some(monitor) = &args.nginx.monitor
        && wanted.monitor != registered.monitor
    {
        changes.push(format!("--monitor {monitor}"));
    }
    Ok(changes)
}

/// The nginx options given beyond their defaults.
fn nginx_options_given(n: &NginxArgs) -> Vec<String> {
    #[derive(Parser)]
    struct Defaults {
        #[command(flatten)]
        nginx: NginxArgs,
    }
    let defaults = Defaults::parse_from(["defaults"]).nginx;
    let mut given = Vec::new();
    for (flag, value, default) in [
        ("--nginx-bin", &n.nginx_bin, &defaults.nginx_bin),
        ("--nginx-conf", &n.nginx_conf, &defaults.nginx_conf),
        (
            "--nginx-include-dir",
            &n.nginx_include_dir,
            &defaults.nginx_include_dir,
        ),
        (
            "--listen",
            &n.listen.join(" --listen "),
            &defaults.listen.join(" "),
        ),
        (
            "--https-listen",
            &n.https_listen.join(" --https-listen "),
            &String::new(),
        ),
        ("--reload", &n.reload, &defaults.reload),
    ] {
        if value != default {
            given.push(format!("{flag} {value}"));
        }
    }
    for (flag, value) in [
        ("--nginx-prefix", &n.nginx_prefix),
        ("--files-owner", &n.files_owner),
        ("--web-group", &n.web_group),
        ("--nginx-start", &n.nginx_start),
        ("--nginx-unit", &n.nginx_unit),
    ] {
        if let Some(value) = value {
            given.push(format!("{flag} {value}"));
        }
    }
    given
}

/// Prints what a task command produced, waiting for the task with `--wait`.
fn queued(fjord: &Fjord, q: Queued, opts: &TaskOpts) -> Result<ExitCode, Error> {
    if let Some(plan) = q.plan {
        if opts.json {
            print_json(&serde_json::json!({ "plan": plan }));
        } else {
            outln!("dry run: nothing was changed. The task would:");
            for line in plan {
                outln!("{line}");
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let Some(task) = q.task else {
        if !opts.json {
            outln!("no task was needed");
        }
        return Ok(ExitCode::SUCCESS);
    };
    if !opts.wait {
        if opts.json {
            print_json(&output::task_json(&task));
        } else {
            outln!(
                "queued task {} ({} {})",
                task.id,
                task.kind.as_str(),
                task.target_name
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!(
        "task {} ({} {}) queued; waiting",
        task.id,
        task.kind.as_str(),
        task.target_name
    );
    let task = follow(fjord, task.id, true)?;
    if opts.json {
        print_json(&output::task_json(&task));
    } else {
        let took = task
            .started_at
            .zip(task.finished_at)
            .map(|(s, f)| format!(" in {}", output::duration(f - s)))
            .unwrap_or_default();
        outln!(
            "task {}: {}{took}",
            task.id,
            crate::style::status(task.status.as_str())
        );
    }
    Ok(match task.status {
        TaskStatus::Success | TaskStatus::Warning => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    })
}

/// `show`: with --json the raw values; otherwise the JSON's fields, one per line, for people:
/// labels (`cron last run`, not `cron.last_run_ms`), times in UTC with how long ago or how
/// soon (`*_ms`), durations (`*duration_ms`) and sizes (`*_bytes`) in units, statuses in
/// colour on a terminal.
fn show(v: &serde_json::Value, json: bool) {
    if json {
        return print_json(v);
    }
    let now = output::now_ms();
    for (label, value) in output::human_fields(v, now) {
        outln!("{label:<22} {value}");
    }
}

fn policy(fjord: &Fjord, site: Option<&str>, p: &PolicyArgs) -> Result<ExitCode, Error> {
    let copy_to = fjord.set_backup_copy_to(site, p.copy_to.as_deref())?;
    let (schedule, retention) =
        fjord.set_backup_policy(site, p.schedule.as_deref(), p.retention.as_deref())?;
    let whose = site
        .map(|s| format!("site {s}"))
        .unwrap_or_else(|| "default".into());
    let none = |what: &str| {
        if site.is_some() {
            format!("the default {what}")
        } else {
            "none".into()
        }
    };
    outln!(
        "{whose} backup schedule: {}",
        schedule.unwrap_or_else(|| none("schedule"))
    );
    outln!(
        "{whose} backup retention: {}",
        retention.unwrap_or_else(|| none("retention"))
    );
    outln!(
        "{whose} backup copy to: {}",
        copy_to.unwrap_or_else(|| none("target"))
    );
    Ok(ExitCode::SUCCESS)
}
