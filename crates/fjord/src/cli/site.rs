//! `fjord site`: the commands on sites.

use std::process::ExitCode;
use std::time::Duration;

use clap::Subcommand;
use engine::model::{TaskKind, TaskStatus};
use engine::ops::{Rename, SiteEdit, SiteInput};
use engine::{Error, Fjord};

use super::*;
use crate::outln;
use crate::output::{self, print_json, table, time};

#[derive(Subcommand, Debug)]
pub enum SiteCmd {
    /// Record a site and queue its install.
    Add {
        /// The site's main host name (internationalized names are stored as punycode).
        #[arg(allow_hyphen_values = true)]
        name: String,
        #[arg(long)]
        platform: String,
        /// Another host name the site answers to (repeatable).
        #[arg(long = "alias", value_name = "HOST", allow_hyphen_values = true)]
        aliases: Vec<String>,
        /// Send aliases to the main name with a 301.
        #[arg(long)]
        redirect: bool,
        /// The client the site belongs to (created if new).
        #[arg(long, allow_hyphen_values = true)]
        client: Option<String>,
        /// Give the site its own database: mysql, postgresql or sqlite.
        #[arg(long, value_name = "ENGINE")]
        db: Option<String>,
        /// The server whose database service to use [default: the platform's server].
        #[arg(long, value_name = "SERVER")]
        db_server: Option<String>,
        /// The site's title, for applications with an installer [default: its name].
        #[arg(long, allow_hyphen_values = true)]
        title: Option<String>,
        /// The application's first administrator [default: admin].
        #[arg(long, value_name = "NAME", allow_hyphen_values = true)]
        admin_user: Option<String>,
        /// The administrator's email address [default: admin@<site>].
        #[arg(long, value_name = "ADDRESS", allow_hyphen_values = true)]
        admin_email: Option<String>,
        /// The installation profile, for Drupal [default: standard].
        #[arg(long, value_name = "PROFILE", allow_hyphen_values = true)]
        profile: Option<String>,
        /// Accept a name that is not a public host name (localhost, *.localhost, *.local,
        /// *.internal, *.home.arpa, *.arpa, *.onion, *.alt, a single label): it catches
        /// requests meant for this machine or its network.
        #[arg(long)]
        allow_private_name: bool,
        /// The largest file the site takes in one upload, which nginx and PHP both allow
        /// (MiB, or with M or G: 64, 64M, 1G; 1M to 4G) [default: its platform's].
        #[arg(long, value_name = "SIZE")]
        upload_limit: Option<String>,
        /// HTTPS once the site has a certificate: off, on (HTTP and HTTPS) or required (HTTP
        /// answers 301 to HTTPS, ACME's challenges excepted) [default: on].
        #[arg(long, value_name = "MODE")]
        https: Option<String>,
        /// Send Strict-Transport-Security on HTTPS (browsers then refuse HTTP for a year).
        #[arg(long)]
        hsts: bool,
        #[command(flatten)]
        opts: TaskOpts,
    },
    /// List the sites (of one platform with --platform).
    List {
        #[arg(long)]
        platform: Option<String>,
        #[command(flatten)]
        json: JsonOpt,
    },
    /// Show a site: its names, platform, status, database, cron and backup policy.
    Show {
        #[arg(allow_hyphen_values = true)]
        name: String,
        #[command(flatten)]
        json: JsonOpt,
    },
    /// Change a site's aliases, redirect, upload limit or HTTPS settings, and queue its verify.
    Edit {
        #[arg(allow_hyphen_values = true)]
        name: String,
        /// Replace all aliases with these (repeatable; give --alias '' for none).
        #[arg(long = "alias", value_name = "HOST", allow_hyphen_values = true)]
        set_aliases: Vec<String>,
        #[arg(long = "add-alias", value_name = "HOST", allow_hyphen_values = true)]
        add_aliases: Vec<String>,
        #[arg(long = "remove-alias", value_name = "HOST", allow_hyphen_values = true)]
        remove_aliases: Vec<String>,
        /// Send aliases to the main name with a 301 (true or false).
        #[arg(long, value_name = "BOOL")]
        redirect: Option<bool>,
        /// Accept a name that is not a public host name (localhost, *.localhost, *.local,
        /// *.internal, *.home.arpa, *.arpa, *.onion, *.alt, a single label): it catches
        /// requests meant for this machine or its network.
        #[arg(long)]
        allow_private_name: bool,
        /// The largest file the site takes in one upload (MiB, or with M or G: 64, 64M,
        /// 1G; 1M to 4G), or "platform" for its platform's.
        #[arg(long, value_name = "SIZE")]
        upload_limit: Option<String>,
        /// HTTPS once the site has a certificate: off, on (HTTP and HTTPS) or required (HTTP
        /// answers 301 to HTTPS, ACME's challenges excepted).
        #[arg(long, value_name = "MODE")]
        https: Option<String>,
        /// Send Strict-Transport-Security on HTTPS.
        #[arg(long, conflicts_with = "no_hsts")]
        hsts: bool,
        /// Stop sending Strict-Transport-Security.
        #[arg(long)]
        no_hsts: bool,
        #[command(flatten)]
        opts: TaskOpts,
    },
    /// Rewrite the site's vhost, directories and permissions.
    Verify {
        #[arg(allow_hyphen_values = true)]
        name: String,
        #[command(flatten)]
        opts: TaskOpts,
    },
    /// Serve a "site disabled" page instead of the site.
    Disable {
        #[arg(allow_hyphen_values = true)]
        name: String,
        #[command(flatten)]
        opts: TaskOpts,
    },
    /// Serve a disabled site again.
    Enable {
        #[arg(allow_hyphen_values = true)]
        name: String,
        #[command(flatten)]
        opts: TaskOpts,
    },
    /// Run the site's cron now and show how it went; or with --every, set how often it
    /// runs (sites whose kind has a cron: WordPress, Drupal). The dispatcher runs every
    /// site's cron on its interval.
    Cron {
        #[arg(allow_hyphen_values = true)]
        name: String,
        /// How often: 15m, 2h, 1d… (from 1m to 7d), or `default` for the installation's.
        #[arg(long, value_name = "INTERVAL")]
        every: Option<String>,
        /// Do not wait for the run (a dispatcher runs it within a second or so).
        #[arg(long)]
        no_wait: bool,
    },
    /// Show or set how often sites' crons run unless a site says otherwise [1h].
    CronDefault {
        /// 15m, 2h, 1d… (from 1m to 7d).
        interval: Option<String>,
    },
    /// Print a link that logs the site's administrator in, once, within 15 minutes
    /// (WordPress, Drupal). Waits until the link is armed, unless --no-wait.
    LoginLink {
        #[arg(allow_hyphen_values = true)]
        name: String,
        /// Print the link at once; it works once its task (shown) has run.
        #[arg(long)]
        no_wait: bool,
    },
    /// Show the last lines of the site's access log (or its error log, or its PHP's), with
    /// any login token taken out.
    Logs {
        #[arg(allow_hyphen_values = true)]
        name: String,
        /// nginx's error log of the site.
        #[arg(long, conflicts_with = "php")]
        error: bool,
        /// What the site's PHP logged (warnings, errors, `error_log()`).
        #[arg(long)]
        php: bool,
        /// How many lines (at most 10000).
        #[arg(long, value_name = "N", default_value_t = 20)]
        lines: usize,
        /// Keep printing lines as they are written (across rotations), until interrupted.
        #[arg(long)]
        follow: bool,
    },
    /// Clear the caches of the site's application (Drupal).
    CacheClear {
        #[arg(allow_hyphen_values = true)]
        name: String,
        #[command(flatten)]
        opts: TaskOpts,
    },
    /// Give the site a certificate for its name and every alias: issued by the ACME account
    /// (`fjord https account`), or its own with --cert and --key (checked now: the key must be
    /// the certificate's, every name covered, and the certificate valid today). Its key and
    /// chain are kept readable by root only, outside any docroot.
    Https {
        #[arg(allow_hyphen_values = true)]
        name: String,
        /// Ask the ACME CA for a certificate (what happens without --cert).
        #[arg(long, conflicts_with_all = ["cert", "key"])]
        issue: bool,
        /// The site's own certificate chain (PEM, the site's certificate first).
        #[arg(long, value_name = "FILE", requires = "key")]
        cert: Option<PathBuf>,
        /// The private key of --cert (PEM, PKCS#8).
        #[arg(long, value_name = "FILE", requires = "cert")]
        key: Option<PathBuf>,
        #[command(flatten)]
        opts: TaskOpts,
    },
    /// Back the site up: its files, private files and database, in one .tar.zst.
    Backup {
        #[arg(allow_hyphen_values = true)]
        name: String,
        #[command(flatten)]
        opts: TaskOpts,
    },
    /// List a site's backups (also those of a deleted site), newest first.
    Backups {
        #[arg(allow_hyphen_values = true)]
        name: String,
        #[command(flatten)]
        json: JsonOpt,
    },
    /// Restore a site from a backup (the newest unless --backup or --file says otherwise).
    /// The current state is backed up first.
    Restore {
        #[arg(allow_hyphen_values = true)]
        name: String,
        /// The id of one of the site's backups (see `fjord site backups`).
        #[arg(long, value_name = "ID")]
        backup: Option<i64>,
        /// A backup archive file, for example one copied back from off-site storage.
        #[arg(long, value_name = "PATH", allow_hyphen_values = true)]
        file: Option<String>,
        /// Restore from the copy on this backup target (of --backup, or of the newest backup
        /// copied there): it is fetched and checked by its SHA-256 first, so the site comes
        /// back even when its local backups are lost.
        #[arg(long, value_name = "TARGET", conflicts_with = "file")]
        from_target: Option<String>,
        #[command(flatten)]
        opts: TaskOpts,
    },
    /// Show or set the site's own backup schedule and retention.
    BackupPolicy {
        #[arg(allow_hyphen_values = true)]
        name: String,
        #[command(flatten)]
        policy: PolicyArgs,
    },
    /// Delete some of a site's backups (ids from `fjord site backups`).
    BackupDelete {
        #[arg(allow_hyphen_values = true)]
        name: String,
        #[arg(required = true)]
        ids: Vec<i64>,
        #[command(flatten)]
        opts: TaskOpts,
    },
    /// Copy a site to a new host name on any platform: files and a database of its own.
    /// The source site is only read.
    Clone {
        #[arg(allow_hyphen_values = true)]
        name: String,
        /// The new site's host name.
        #[arg(allow_hyphen_values = true)]
        new_name: String,
        /// The platform for the copy [default: the source's].
        #[arg(long)]
        platform: Option<String>,
        /// Clone even if the platform lacks packages the site has enabled (never when it
        /// holds older code than the site's database is at).
        #[arg(long)]
        force: bool,
        /// Accept a name that is not a public host name (localhost, *.localhost, *.local,
        /// *.internal, *.home.arpa, *.arpa, *.onion, *.alt, a single label): it catches
        /// requests meant for this machine or its network.
        #[arg(long)]
        allow_private_name: bool,
        #[command(flatten)]
        opts: TaskOpts,
    },
    /// Move a site to another platform, and/or rename it, and/or move its database to
    /// another server. On any failure it is back where it was, serving, database intact.
    Migrate {
        #[arg(allow_hyphen_values = true)]
        name: String,
        #[arg(long)]
        platform: Option<String>,
        /// A new main host name.
        #[arg(long, value_name = "HOST", allow_hyphen_values = true)]
        rename: Option<String>,
        /// Move the database to this server's service of the same engine.
        #[arg(long, value_name = "SERVER")]
        db_server: Option<String>,
        /// Move even if the platform lacks packages the site has enabled (never when it
        /// holds older code than the site's database is at).
        #[arg(long)]
        force: bool,
        /// Accept a name that is not a public host name (localhost, *.localhost, *.local,
        /// *.internal, *.home.arpa, *.arpa, *.onion, *.alt, a single label): it catches
        /// requests meant for this machine or its network.
        #[arg(long)]
        allow_private_name: bool,
        #[command(flatten)]
        opts: TaskOpts,
    },
    /// Compare each package the site has enabled with what a platform holds (same, upgrade,
    /// downgrade, missing), as a migrate or clone to it would; changes nothing. Exits 1 when
    /// the move would be refused.
    MigrateCheck {
        #[arg(allow_hyphen_values = true)]
        name: String,
        /// The platform the site would move to.
        #[arg(long)]
        platform: String,
        /// Allow missing packages, as `migrate --force` does.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        json: JsonOpt,
    },
    /// The packages the site has enabled (Drupal: with the schema version its database is
    /// at) or of its own, as its last verify found them.
    Packages {
        #[arg(allow_hyphen_values = true)]
        name: String,
        #[command(flatten)]
        json: JsonOpt,
    },
    /// Remove the site's vhost, files and record. The site must be disabled first.
    Delete {
        #[arg(allow_hyphen_values = true)]
        name: String,
        /// Delete a site that is not disabled.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        opts: TaskOpts,
    },
}

pub(super) fn site(fjord: &Fjord, cmd: SiteCmd) -> Result<ExitCode, Error> {
    let simple = |name: String, kind: TaskKind, force: bool, opts: TaskOpts| {
        queued(
            fjord,
            fjord.site_task(&name, kind, force, opts.dry_run)?,
            &opts,
        )
    };
    match cmd {
        SiteCmd::Add {
            name,
            platform,
            aliases,
            redirect,
            client,
            db,
            db_server,
            title,
            admin_user,
            admin_email,
            profile,
            allow_private_name,
            upload_limit,
            https,
            hsts,
            opts,
        } => {
            let input = SiteInput {
                name,
                platform,
                aliases,
                redirect_aliases: redirect,
                client,
                db,
                db_server,
                install: engine::kinds::InstallInput {
                    title,
                    admin_user,
                    admin_email,
                    profile,
                },
                allow_private_names: allow_private_name,
                upload_limit,
                https,
                hsts,
            };
            queued(fjord, fjord.add_site(&input, opts.dry_run)?, &opts)
        }
        SiteCmd::List { platform, json } => {
            let sites = fjord.sites(platform.as_deref())?;
            if json.json {
                let names = output::Names::load(fjord)?;
                print_json(&sites.iter().map(|s| output::site_json(&names, s)).collect());
            } else {
                let platforms = fjord.platforms()?;
                table(
                    &["name", "status", "platform", "aliases"],
                    sites
                        .iter()
                        .map(|s| {
                            let p = platforms
                                .iter()
                                .find(|p| p.id == s.platform_id)
                                .map(|p| p.name.to_string())
                                .unwrap_or_default();
                            let aliases: Vec<&str> = s.aliases.iter().map(|a| a.as_str()).collect();
                            vec![
                                s.name.to_string(),
                                s.status.as_str().into(),
                                p,
                                aliases.join(" "),
                            ]
                        })
                        .collect(),
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        SiteCmd::Show { name, json } => {
            let found = fjord.site(&name)?;
            let mut site = output::site_json(&output::Names::load(fjord)?, &found);
            site["cron"] =
                output::cron_json(&fjord.site_cron(&name)?, fjord.cron_default_interval()?);
            let packages = fjord.code_found(engine::model::Target::Site(found.id))?.1;
            site["packages"] =
                output::packages_field(packages, json.json, &format!("fjord site packages {name}"));
            if let Some(cert) = fjord.site_certificate(&name)? {
                site["certificate"] = serde_json::json!({
                    "names": cert.names,
                    "issuer": cert.issuer,
                    "source": cert.source.as_str(),
                    "not_before_ms": cert.not_before * 1000,
                    "not_after_ms": cert.not_after * 1000,
                    "last_failure": cert.last_failure,
                    // When the dispatcher renews it (one issued by the ACME account).
                    "renews_at_ms": (cert.source == engine::CertSource::Acme).then(|| {
                        engine::model::renewal_due_at(
                            cert.not_before,
                            cert.not_after,
                            cert.site_id,
                            cert.renewal_attempts,
                            cert.last_attempt_at,
                        ) * 1000
                    }),
                    "renewal_attempts": cert.renewal_attempts,
                    "chain_file": cert.cert_path,
                    "key_file": cert.key_path,
                });
            }
            show(&site, json.json);
            Ok(ExitCode::SUCCESS)
        }
        SiteCmd::Edit {
            name,
            set_aliases,
            add_aliases,
            remove_aliases,
            redirect,
            allow_private_name,
            upload_limit,
            https,
            hsts,
            no_hsts,
            opts,
        } => {
            let set_aliases = (!set_aliases.is_empty())
                .then(|| set_aliases.into_iter().filter(|a| !a.is_empty()).collect());
            let edit = SiteEdit {
                set_aliases,
                add_aliases,
                remove_aliases,
                redirect_aliases: redirect,
                allow_private_names: allow_private_name,
                upload_limit,
                https,
                hsts: (hsts || no_hsts).then_some(hsts),
            };
            queued(fjord, fjord.edit_site(&name, &edit, opts.dry_run)?, &opts)
        }
        SiteCmd::Verify { name, opts } => simple(name, TaskKind::SiteVerify, false, opts),
        SiteCmd::Backup { name, opts } => simple(name, TaskKind::SiteBackup, false, opts),
        SiteCmd::CacheClear { name, opts } => simple(name, TaskKind::SiteCacheClear, false, opts),
        SiteCmd::Https {
            name,
            issue: _,
            cert,
            key,
            opts,
        } => {
            let own = match (cert, key) {
                (Some(cert), Some(key)) => Some(engine::model::OwnCertificate {
                    cert: absolute(&cert)?,
                    key: absolute(&key)?,
                }),
                _ => None,
            };
            queued(fjord, fjord.site_https(&name, own, opts.dry_run)?, &opts)
        }
        SiteCmd::Cron {
            name,
            every,
            no_wait,
        } => site_cron(fjord, &name, every.as_deref(), no_wait),
        SiteCmd::CronDefault { interval } => {
            if let Some(interval) = interval {
                fjord.set_cron_default_interval(&interval)?;
            }
            outln!(
                "sites' crons run every {} unless a site has its own interval",
                output::interval(fjord.cron_default_interval()?)
            );
            Ok(ExitCode::SUCCESS)
        }
        SiteCmd::LoginLink { name, no_wait } => {
            let (queued, link) = fjord.login_link(&name)?;
            let task = queued.task.expect("a login link queues a task");
            if no_wait {
                eprintln!("the link works once task {} has run", task.id);
            } else {
                let task = follow(fjord, task.id, true)?;
                if !matches!(task.status, TaskStatus::Success | TaskStatus::Warning) {
                    eprintln!(
                        "fjord: the login link was not armed (task {}: {})",
                        task.id,
                        task.error.unwrap_or_default()
                    );
                    return Ok(ExitCode::FAILURE);
                }
            }
            outln!("{link}");
            Ok(ExitCode::SUCCESS)
        }
        SiteCmd::Logs {
            name,
            error,
            php,
            lines,
            follow,
        } => {
            let kind = match (error, php) {
                (true, _) => engine::ops::LogKind::Error,
                (_, true) => engine::ops::LogKind::Php,
                _ => engine::ops::LogKind::Access,
            };
            // The cursor is taken before the last lines are read: a line written between the
            // two is shown twice rather than never.
            let mut cursor = if follow {
                Some(fjord.site_log_since(&name, kind, Default::default())?.1)
            } else {
                None
            };
            for line in fjord.site_log(&name, kind, lines)? {
                outln!("{line}");
            }
            while let Some(at) = cursor {
                std::thread::sleep(Duration::from_millis(500));
                let (new, next) = fjord.site_log_since(&name, kind, at)?;
                for line in new {
                    outln!("{line}");
                }
                cursor = Some(next);
            }
            Ok(ExitCode::SUCCESS)
        }
        SiteCmd::BackupPolicy { name, policy: p } => policy(fjord, Some(&name), &p),
        SiteCmd::BackupDelete { name, ids, opts } => queued(
            fjord,
            fjord.delete_backups(&name, &ids, opts.dry_run)?,
            &opts,
        ),
        SiteCmd::Clone {
            name,
            new_name,
            platform,
            force,
            allow_private_name,
            opts,
        } => {
            let platform = match platform {
                Some(p) => p,
                None => {
                    let site = fjord.site(&name)?;
                    fjord
                        .platforms()?
                        .into_iter()
                        .find(|p| p.id == site.platform_id)
                        .map(|p| p.name.to_string())
                        .unwrap_or_default()
                }
            };
            queued(
                fjord,
                fjord.clone_site(
                    &name,
                    Rename {
                        name: &new_name,
                        allow_private_name,
                    },
                    &platform,
                    force,
                    opts.dry_run,
                )?,
                &opts,
            )
        }
        SiteCmd::Migrate {
            name,
            platform,
            rename,
            db_server,
            force,
            allow_private_name,
            opts,
        } => queued(
            fjord,
            fjord.migrate_site(
                &name,
                platform.as_deref(),
                rename.as_deref().map(|name| Rename {
                    name,
                    allow_private_name,
                }),
                db_server.as_deref(),
                force,
                opts.dry_run,
            )?,
            &opts,
        ),
        SiteCmd::MigrateCheck {
            name,
            platform,
            force,
            json,
        } => {
            let report = fjord.migrate_check(&name, &platform, force)?;
            let refusal = report.refusal();
            if json.json {
                let mut shown = serde_json::to_value(&report).unwrap_or_default();
                shown["refused"] = refusal.clone().into();
                print_json(&shown);
            } else {
                outln!("{}", report.table().trim_end());
                match &refusal {
                    Some(why) => outln!("refused: {why}"),
                    None => outln!("site {name} can move to platform {platform}"),
                }
            }
            Ok(if refusal.is_some() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        SiteCmd::Packages { name, json } => {
            let found = fjord.site(&name)?;
            let (_, packages) = fjord.code_found(engine::model::Target::Site(found.id))?;
            output::print_packages(&packages, json.json);
            Ok(ExitCode::SUCCESS)
        }
        SiteCmd::Backups { name, json } => {
            let backups = fjord.backups(&name)?;
            let copies = fjord.backup_copies(&name)?;
            let copies_of = |id: i64| copies.iter().filter(move |c| c.backup_id == id);
            if json.json {
                print_json(&backups.iter().map(|b| serde_json::json!({
                    "id": b.id, "site": b.site_name, "path": b.path, "size": b.size, "created_at_ms": b.created_at,
                    "copies": copies_of(b.id).map(|c| serde_json::json!({
                        "target": c.target_name, "path": c.path, "size": c.size, "sha256": c.sha256, "copied_at_ms": c.copied_at,
                    })).collect::<Vec<_>>(),
                })).collect());
            } else {
                table(
                    &["id", "created", "size", "path", "copies on"],
                    backups
                        .iter()
                        .map(|b| {
                            let on: Vec<&str> =
                                copies_of(b.id).map(|c| c.target_name.as_str()).collect();
                            vec![
                                b.id.to_string(),
                                time(Some(b.created_at)),
                                output::size(b.size),
                                b.path.clone(),
                                if on.is_empty() {
                                    "-".into()
                                } else {
                                    on.join(", ")
                                },
                            ]
                        })
                        .collect(),
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        SiteCmd::Restore {
            name,
            backup,
            file,
            from_target,
            opts,
        } => {
            let q = match from_target {
                Some(target) => {
                    fjord.restore_site_from_target(&name, backup, &target, opts.dry_run)?
                }
                None => fjord.restore_site(&name, backup, file.as_deref(), opts.dry_run)?,
            };
            queued(fjord, q, &opts)
        }
        SiteCmd::Disable { name, opts } => simple(name, TaskKind::SiteDisable, false, opts),
        SiteCmd::Enable { name, opts } => simple(name, TaskKind::SiteEnable, false, opts),
        SiteCmd::Delete { name, force, opts } => simple(name, TaskKind::SiteDelete, force, opts),
    }
}

/// `fjord site cron`: sets the interval, or runs the cron now and shows how it went.
fn site_cron(
    fjord: &Fjord,
    name: &str,
    every: Option<&str>,
    no_wait: bool,
) -> Result<ExitCode, Error> {
    if let Some(every) = every {
        let cron = fjord.set_site_cron_interval(name, every)?;
        let default = fjord.cron_default_interval()?;
        outln!(
            "the cron of {name} runs every {}",
            output::interval(cron.own_interval_s.unwrap_or(default))
        );
        return Ok(ExitCode::SUCCESS);
    }
    let before = fjord.run_cron_now(name)?;
    if no_wait {
        eprintln!("the cron of {name} is due now: a dispatcher runs it");
        return Ok(ExitCode::SUCCESS);
    }
    let mut waited = Duration::ZERO;
    loop {
        let cron = fjord.site_cron(name)?;
        if cron.last_at != before.last_at {
            let ok = cron.last_ok == Some(true);
            outln!(
                "cron of {name}: {}{}",
                if ok { "ok" } else { "failed" },
                cron.last_message
                    .filter(|m| !m.is_empty())
                    .map(|m| format!("\n{m}"))
                    .unwrap_or_default()
            );
            return Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            });
        }
        if waited == Duration::from_secs(5) {
            eprintln!(
                "waiting for a dispatcher to run it (is `fjord serve` or `fjord dispatch` running?)"
            );
        }
        std::thread::sleep(Duration::from_millis(100));
        waited += Duration::from_millis(100);
    }
}

/// A file named on the command line, as an absolute path (the task reads it later).
fn absolute(path: &std::path::Path) -> Result<String, Error> {
    std::path::absolute(path)
        .map(|p| p.display().to_string())
        .map_err(|e| Error::Refused(format!("{}: {e}", path.display())))
}
