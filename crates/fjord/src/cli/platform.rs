//! `fjord platform`: platforms (a code base on a server), their packages, locks and migrations.

use std::process::ExitCode;

use clap::Subcommand;
use engine::model::TaskStatus;
use engine::{Error, Fjord};

use super::{JsonOpt, TaskOpts, follow, queued, show};
use crate::outln;
use crate::output::{self, print_json, table};

#[derive(Subcommand, Debug)]
pub enum PlatformCmd {
    /// Register a platform (a directory on a server), and verify it.
    Add {
        #[arg(allow_hyphen_values = true)]
        name: String,
        #[arg(long)]
        server: String,
        /// The platform's directory: absolute, outside fjord's data dir and other platforms.
        #[arg(long, allow_hyphen_values = true)]
        path: String,
        /// What the code base is: static (files served as they are), php (any PHP
        /// application with an index.php: custom code), wordpress, drupal (7, or 8 and later,
        /// many sites on one code base), dokuwiki or mediawiki (Debian's packages).
        #[arg(long, default_value = "static")]
        kind: String,
        /// The PHP version its sites run on [default: the server's newest php-fpm].
        #[arg(long, value_name = "VERSION")]
        php: Option<String>,
        /// Copy the code base in from this directory (for example /usr/share/wordpress) or
        /// release archive (.tar.gz, .tgz or .zip: wordpress-6.8.3.tar.gz);
        /// --path must not exist yet. Without it, --path must already hold the code base.
        #[arg(long, value_name = "DIR|ARCHIVE", allow_hyphen_values = true)]
        from: Option<String>,
        /// The drush that drives the sites of a drupal platform whose code has none of its
        /// own (a composer build's vendor/bin/drush wins) [default: fjord's own PHP].
        #[arg(long, value_name = "PATH", allow_hyphen_values = true)]
        drush: Option<String>,
        /// Let the sites' PHP start processes (exec, shell_exec, system, proc_open, popen,
        /// putenv…), which are disabled otherwise: a process walks around open_basedir and
        /// can outlive its request.
        #[arg(long)]
        allow_exec: bool,
        /// The largest file its sites take in one upload, which nginx and PHP both allow
        /// (MiB, or with M or G: 64, 64M, 1G; 1M to 4G) [default: 64M].
        #[arg(long, value_name = "SIZE")]
        upload_limit: Option<String>,
        #[command(flatten)]
        opts: TaskOpts,
    },
    /// List the platforms.
    List(JsonOpt),
    /// Show a platform: its kind, path, version and what its last verify found.
    Show {
        #[arg(allow_hyphen_values = true)]
        name: String,
        #[command(flatten)]
        json: JsonOpt,
    },
    /// The modules, themes, profiles or plugins the platform's last verify found, with
    /// their versions and (Drupal) the schema version their code brings a database to.
    Packages {
        #[arg(allow_hyphen_values = true)]
        name: String,
        #[command(flatten)]
        json: JsonOpt,
    },
    /// Check the platform's directories; queue an import for each unknown site in sites/.
    Verify {
        #[arg(allow_hyphen_values = true)]
        name: String,
        #[command(flatten)]
        opts: TaskOpts,
    },
    /// Change the largest file its sites take in one upload (those without a limit of
    /// their own), and queue the platform's verify, which rewrites its sites' config.
    Edit {
        #[arg(allow_hyphen_values = true)]
        name: String,
        /// MiB, or with M or G (64, 64M, 1G; 1M to 4G), or "default" (64M).
        #[arg(long, value_name = "SIZE")]
        upload_limit: String,
        #[arg(long)]
        wait: bool,
    },
    /// Refuse new sites on this platform.
    Lock {
        #[arg(allow_hyphen_values = true)]
        name: String,
    },
    /// Take new sites on this platform again.
    Unlock {
        #[arg(allow_hyphen_values = true)]
        name: String,
    },
    /// Migrate every site of this platform to another: one task per site, side by side, and
    /// a summary task with each one's result.
    MigrateAll {
        name: String,
        /// The platform the sites go to.
        #[arg(long)]
        to: String,
        /// Wait for all of them; exit non-zero if any failed.
        #[arg(long)]
        wait: bool,
        #[arg(long)]
        json: bool,
        /// List the sites that would be migrated, and change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Forget a platform without sites (its files stay on disk).
    Delete {
        #[arg(allow_hyphen_values = true)]
        name: String,
    },
}

pub(super) fn platform(fjord: &Fjord, cmd: PlatformCmd) -> Result<ExitCode, Error> {
    match cmd {
        PlatformCmd::Add {
            name,
            server,
            path,
            kind,
            php,
            from,
            drush,
            allow_exec,
            upload_limit,
            opts,
        } => {
            let input = engine::ops::PlatformInput {
                name,
                server,
                path,
                kind,
                php,
                from,
                drush,
                allow_exec,
                upload_limit,
            };
            queued(fjord, fjord.add_platform(&input, opts.dry_run)?, &opts)
        }
        PlatformCmd::Verify { name, opts } => {
            queued(fjord, fjord.verify_platform(&name, opts.dry_run)?, &opts)
        }
        PlatformCmd::List(o) => {
            let platforms = fjord.platforms()?;
            if o.json {
                let names = output::Names::load(fjord)?;
                print_json(
                    &platforms
                        .iter()
                        .map(|p| output::platform_json(&names, p))
                        .collect(),
                );
            } else {
                table(
                    &["name", "kind", "path", "locked"],
                    platforms
                        .iter()
                        .map(|p| {
                            vec![
                                p.name.to_string(),
                                p.kind.as_str().into(),
                                p.path.to_string(),
                                if p.locked { "yes" } else { "no" }.into(),
                            ]
                        })
                        .collect(),
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        PlatformCmd::Show { name, json } => {
            let platform = fjord.platform(&name)?;
            let mut shown = output::platform_json(&output::Names::load(fjord)?, &platform);
            let (version, packages) =
                fjord.code_found(engine::model::Target::Platform(platform.id))?;
            shown["version"] = version.into();
            shown["drush"] = fjord.platform_tool(&platform).into();
            shown["packages"] = output::packages_field(
                packages,
                json.json,
                &format!("fjord platform packages {name}"),
            );
            show(&shown, json.json);
            Ok(ExitCode::SUCCESS)
        }
        PlatformCmd::Packages { name, json } => {
            let platform = fjord.platform(&name)?;
            let (_, packages) = fjord.code_found(engine::model::Target::Platform(platform.id))?;
            output::print_packages(&packages, json.json);
            Ok(ExitCode::SUCCESS)
        }
        PlatformCmd::MigrateAll {
            name,
            to,
            wait,
            json,
            dry_run,
        } => {
            let (queued_summary, sites) = fjord.migrate_platform(&name, &to, dry_run)?;
            if let (Some(summary), false) = (&queued_summary.task, json) {
                outln!(
                    "queued {sites} site migration(s) and summary task {}",
                    summary.id
                );
            }
            queued(
                fjord,
                queued_summary,
                &TaskOpts {
                    wait,
                    json,
                    dry_run,
                },
            )
        }
        PlatformCmd::Edit {
            name,
            upload_limit,
            wait,
        } => {
            let tasks = fjord.set_platform_upload_limit(&name, &upload_limit)?;
            let limit = fjord.platform(&name)?.upload_limit;
            outln!(
                "platform {name} takes uploads up to {}; its verify rewrites its sites' config",
                engine::model::UploadLimit::of(None, limit),
            );
            let mut code = ExitCode::SUCCESS;
            for task in &tasks {
                outln!("{}", task.id);
                if wait && follow(fjord, task.id, false)?.status != TaskStatus::Success {
                    code = ExitCode::FAILURE;
                }
            }
            Ok(code)
        }
        PlatformCmd::Lock { name } => {
            fjord.lock_platform(&name, true)?;
            outln!("platform {name} is locked: it takes no new sites");
            Ok(ExitCode::SUCCESS)
        }
        PlatformCmd::Unlock { name } => {
            fjord.lock_platform(&name, false)?;
            outln!("platform {name} is unlocked");
            Ok(ExitCode::SUCCESS)
        }
        PlatformCmd::Delete { name } => {
            fjord.delete_platform(&name)?;
            outln!("platform {name} is deleted (its files were left in place)");
            Ok(ExitCode::SUCCESS)
        }
    }
}
