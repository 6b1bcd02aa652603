//! `fjord serve` and `fjord dispatch`: the panel and the dispatcher, run with the settings
//! of the flags, the environment and the config file (`engine::config`).

use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;
use engine::config::Config;
use engine::dispatch::{Dispatcher, DispatcherOptions};
use engine::ops::PanelSite;
use engine::{Error, Fjord};

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Where the panel listens: IP:PORT. Keep it on loopback and put a TLS proxy in front
    /// to reach it from elsewhere [env: FJORD_PANEL_LISTEN; config: panel.listen; default:
    /// 127.0.0.1:8470].
    #[arg(long, value_name = "IP:PORT")]
    pub listen: Option<String>,
    /// The panel's address as its users reach it (in login links) [default: http://LISTEN].
    /// An https:// address marks the session cookie Secure. A URL that names a host
    /// (`https://panel.example`) makes the panel a site of its own on the server's nginx:
    /// a vhost passing requests to LISTEN, with HTTPS required and its certificate from the
    /// ACME account (`fjord https account`), as any site's. Run again with another host, it
    /// moves; with an address (`http://127.0.0.1:8470`), the panel's site is deleted [env:
    /// FJORD_PANEL_URL; config: panel.url].
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// The server whose nginx serves the panel's own site (see --url); `none`: a proxy of
    /// your own serves the URL, and fjord makes no site for it [env: FJORD_PANEL_SERVER;
    /// config: panel.server; default: local].
    #[arg(long, value_name = "SERVER")]
    pub panel_server: Option<String>,
    /// A TLS proxy in front of the panel (repeatable): an address, or a network as ADDR/BITS.
    /// Only connections from these are believed when their `Forwarded` or `X-Forwarded-For`
    /// header names the client, whom the login throttle then counts and sessions record;
    /// from anyone else the header is ignored and the connection's own address counts [env:
    /// FJORD_TRUSTED_PROXIES, comma-separated; config: panel.trusted_proxies].
    #[arg(long = "trusted-proxy", value_name = "ADDR")]
    pub trusted_proxies: Vec<String>,
    /// Serve the panel only, with no dispatcher: queued tasks wait for `fjord dispatch`
    /// (elsewhere, or started later) [config: panel.dispatcher = false].
    #[arg(long)]
    pub no_dispatcher: bool,
    #[command(flatten)]
    pub dispatch: DispatchArgs,
}

#[derive(Args, Debug)]
pub struct DispatchArgs {
    /// Tasks run at once; tasks waiting for an nginx reload do not count [env:
    /// FJORD_CONCURRENCY; config: dispatcher.concurrency; default: number of cores].
    #[arg(long, value_name = "N")]
    pub concurrency: Option<String>,
    /// Exit once no task is queued or running.
    #[arg(long)]
    pub until_idle: bool,
    /// Rotated files kept of each site's log (`access.log.1` … `access.log.N`) [config:
    /// dispatcher.log_keep; default: 14].
    #[arg(long, value_name = "N")]
    pub log_keep: Option<String>,
    /// A site's logs are rotated once one of them reaches this many bytes [config:
    /// dispatcher.log_rotate_bytes; default: 10485760].
    #[arg(long, value_name = "BYTES")]
    pub log_rotate_bytes: Option<String>,
    /// Claim no task while the data dir's or a platform's file system is more than this full,
    /// in percent (running tasks go on; 100 turns the guard off) [config:
    /// dispatcher.disk_stop_percent; default: 90].
    #[arg(long, value_name = "PERCENT")]
    pub disk_stop_percent: Option<String>,
    /// Claim tasks again once every one of those file systems is below this, in percent
    /// [config: dispatcher.disk_resume_percent; default: 85].
    #[arg(long, value_name = "PERCENT")]
    pub disk_resume_percent: Option<String>,
    /// Seconds between the monitor's probes of every monitored server's nginx, php-fpm
    /// masters and database servers (one found down twice in a row is restarted); 0 turns the
    /// monitor off in this dispatcher. Never in --until-idle runs [config:
    /// dispatcher.monitor_interval; default: 5].
    #[arg(long, value_name = "SECONDS")]
    pub monitor_interval: Option<String>,
    /// How fjord logs on stderr: text, or json (one object a line) [env: FJORD_LOG_FORMAT;
    /// config: log.format; default: text]. FJORD_LOG (config: log.level) filters it: a level
    /// or a filter such as info,engine=debug.
    #[arg(long, value_name = "FORMAT")]
    pub log_format: Option<String>,
}

/// `fjord serve`: the panel, and a dispatcher unless told otherwise.
pub fn serve(fjord: &Arc<Fjord>, config: &Config, args: &ServeArgs) -> Result<ExitCode, Error> {
    let panel = &config.panel;
    let listen = panel.listen.value.to_string();
    let mut trusted = config.trusted_proxies();
    apply_config_mail(fjord, config)?;
    // The panel's own site first: a URL it cannot serve is refused before anything listens,
    // and the cookie is Secure from the first request.
    let panel_site = match &panel.url.value {
        Some(url) if panel.server.value == "none" => {
            fjord.set_panel_url(url)?;
            None
        }
        Some(url) => {
            let listen = panel.listen.value;
            let site = fjord.panel_site(url, listen, &panel.server.value)?;
            if matches!(site, PanelSite::Vhost { .. }) {
                // Its nginx reaches the panel from there, and says who asked.
                trusted.add(engine::ops::panel_upstream(listen).ip());
            }
            fjord.set_panel_url(url)?;
            Some(site)
        }
        None => None,
    };
    let server = web::Server::start(fjord.clone(), &listen, trusted).map_err(Error::Refused)?;
    let url = match &panel.url.value {
        Some(url) => url.clone(),
        None => {
            let url = format!("http://{}", server.addr);
            fjord.set_panel_url(&url)?;
            url
        }
    };
    tracing::info!(
        listen = %server.addr,
        url = %url,
        "the panel listens on http://{} ({url})",
        server.addr
    );
    match &panel_site {
        Some(site) => print_panel_site(site, &url),
        None => note_kept_panel_site(fjord)?,
    }
    let result = if panel.dispatcher.value {
        run_dispatcher(fjord, config, &args.dispatch, true)
    } else {
        engine::wait_for_stop_signal().map(|()| ExitCode::SUCCESS)
    };
    server.stop();
    result
}

/// The config file's `[mail]`, if it has one, put into the state: a dispatcher sends mail
/// as the file says.
pub fn apply_config_mail(fjord: &Fjord, config: &Config) -> Result<(), Error> {
    if fjord.apply_config_mail(config)? {
        let file = config.file.as_ref().map(|f| f.path.display().to_string());
        tracing::info!(file, "mail is sent as the config file's [mail] says");
    }
    Ok(())
}

pub fn run_dispatcher(
    fjord: &Arc<Fjord>,
    config: &Config,
    args: &DispatchArgs,
    background: bool,
) -> Result<ExitCode, Error> {
    let dispatcher = Dispatcher::new(fjord.clone())?;
    let d = &config.dispatcher;
    tracing::info!(
        dispatcher = dispatcher.owner(),
        data_dir = %fjord.data_dir().display(),
        concurrency = d.concurrency.value,
        "dispatcher {} on {}",
        dispatcher.owner(),
        fjord.data_dir().display()
    );
    let options = DispatcherOptions {
        concurrency: d.concurrency.value,
        until_idle: args.until_idle,
        background,
        log_rotation: engine::ops::LogRotation {
            keep: d.log_keep.value,
            max_bytes: d.log_rotate_bytes.value,
        },
        disk: d.disk.value,
        monitor_every: (d.monitor_interval.value > 0 && !args.until_idle)
            .then(|| std::time::Duration::from_secs(d.monitor_interval.value)),
    };
    dispatcher.run_until_signalled(&options)?;
    Ok(ExitCode::SUCCESS)
}

/// Says where the panel is reached, and what its site is waiting for.
fn print_panel_site(site: &PanelSite, url: &str) {
    match site {
        PanelSite::Direct { removed: None } => {}
        PanelSite::Direct {
            removed: Some((name, task)),
        } => tracing::info!(
            site = %name,
            task,
            "the panel's site {name} is deleted (task {task}): the panel is reached at {url} only"
        ),
        PanelSite::Vhost {
            site,
            server,
            https,
            queued,
            has_certificate,
            has_account,
        } => {
            let tasks: Vec<String> = queued
                .iter()
                .map(|t| format!("task {} ({})", t.id, t.kind.as_str()))
                .collect();
            tracing::info!(
                site = %site,
                server = %server,
                "the panel is reached at {url}, through its own site {site} on server \
                 {server}'s nginx{}",
                if tasks.is_empty() {
                    String::new()
                } else {
                    format!(" (queued: {})", tasks.join(", "))
                }
            );
            if *https && !has_certificate {
                if *has_account {
                    tracing::info!(
                        site = %site,
                        "its certificate is ordered once its site is served (`fjord site \
                         show {site}`); until then {url} does not answer over HTTPS"
                    );
                } else {
                    tracing::warn!(
                        site = %site,
                        "there is no ACME account to order its certificate from: run \
                         `fjord https account --email ADDRESS --wait`, then `fjord site https \
                         {site}`; until then {url} does not answer over HTTPS"
                    );
                }
            }
        }
    }
}

/// Without --url, a panel site made before stays as it was: say so.
fn note_kept_panel_site(fjord: &Fjord) -> Result<(), Error> {
    let Some(platform) = fjord.panel_platform()? else {
        return Ok(());
    };
    for site in fjord.sites(Some(platform.name.as_str()))? {
        if site.status != engine::model::SiteStatus::Deleted {
            tracing::warn!(
                site = %site.name,
                "the panel's site {} still passes requests to {}; give --url (or panel.url) to \
                 keep it in line with where the panel listens",
                site.name,
                platform
                    .upstream
                    .map_or_else(|| "nowhere".to_string(), |u| u.to_string())
            );
        }
    }
    Ok(())
}
