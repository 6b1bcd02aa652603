//! Platforms: code bases of a kind, on a server.

use model::{AbsPath, Name, PhpVersion, Platform, PlatformKind, Target, Task, TaskArgs, TaskKind};
use store::NewTask;

use super::*;
use crate::scripts::TaskObjects;
use crate::{Error, Fjord, Result};

impl Fjord {
    /// What the add-site form offers for each of `platforms`: whether it is ready for sites
    /// and which database engines its sites may ask for.
    pub fn platform_choices(&self, platforms: &[Platform]) -> Result<Vec<PlatformChoice>> {
        let servers = self.servers()?;
        platforms
            .iter()
            .map(|p| {
                let last_verify = self
                    .tasks(&store::TaskFilter {
                        target: Some(Target::Platform(p.id)),
                        limit: Some(20),
                        ..Default::default()
                    })?
                    .into_iter()
                    .find(|t| t.kind == TaskKind::PlatformVerify && t.status.is_finished());
                let ready = last_verify.is_some_and(|t| {
                    matches!(
                        t.status,
                        model::TaskStatus::Success | model::TaskStatus::Warning
                    )
                });
                let allowed = crate::kinds::of(p.kind).db_engines();
                let db_engines = servers
                    .iter()
                    .find(|s| s.id == p.server_id)
                    .map(|s| {
                        s.db.iter()
                            .map(|d| d.engine)
                            .filter(|e| allowed.is_none_or(|a| a.contains(e)))
                            .map(|e| e.as_str())
                            .collect()
                    })
                    .unwrap_or_default();
                Ok(PlatformChoice {
                    name: p.name.to_string(),
                    ready,
                    db_engines,
                })
            })
            .collect()
    }

    pub fn add_platform(&self, input: &PlatformInput, dry_run: bool) -> Result<Queued> {
        let name = Name::parse("platform name", &input.name)?;
        let path = AbsPath::parse("platform path", &input.path)?;
        let kind = PlatformKind::parse(&input.kind)?;
        if kind == PlatformKind::Proxy {
            return Err(Error::Invalid(model::Invalid::new(
                "platform kind",
                &input.kind,
                "a proxy platform is fjord's own, made by `fjord serve --url` for the panel's \
                 site",
            )));
        }
        let server = self.server(&input.server)?;
        self.check_platform_path(&path)?;
        let from = input
            .from
            .as_deref()
            .map(|f| AbsPath::parse("--from", f))
            .transpose()?;
        if let Some(from) = &from {
            self.check_code_source(from, &path)?;
        }
        let drush = match &input.drush {
            None => None,
            Some(d) if kind != model::PlatformKind::Drupal => {
                return Err(Error::Invalid(model::Invalid::new(
                    "drush",
                    d,
                    format!("only a drupal platform is driven with drush, not a {kind} one"),
                )));
            }
            Some(d) => {
                let drush = AbsPath::parse("drush", d)?;
                if !host::is_executable_file(drush.as_path()) {
                    return Err(Error::Invalid(model::Invalid::new(
                        "drush",
                        d,
                        "must be an executable file",
                    )));
                }
                Some(drush)
            }
        };
        if input.allow_exec && !kind.runs_php() {
            return Err(Error::Invalid(model::Invalid::new(
                "--allow-exec",
                "true",
                format!(
                    "only the PHP of a platform that runs PHP starts processes, not a {kind} one"
                ),
            )));
        }
        let php_version = match (kind.runs_php(), &input.php) {
            (false, None) => None,
            (false, Some(v)) => {
                return Err(Error::Invalid(model::Invalid::new(
                    "PHP version",
                    v,
                    format!("a {kind} platform runs no PHP"),
                )));
            }
            (true, Some(v)) => {
                let version = PhpVersion::parse(v)?;
                if server.php_service(&version).is_none() {
                    return Err(Error::Refused(format!(
                        "server {} offers no php-fpm {version} (it offers: {})",
                        server.name,
                        php_versions(&server)
                    )));
                }
                Some(version)
            }
            (true, None) => Some(
                server
                    .php
                    .iter()
                    .map(|p| p.version.clone())
                    .max_by_key(|v| {
                        let (major, minor) = v.as_str().split_once('.').unwrap_or(("0", "0"));
                        (
                            major.parse::<u32>().unwrap_or(0),
                            minor.parse::<u32>().unwrap_or(0),
                        )
                    })
                    .ok_or_else(|| {
                        Error::Refused(format!(
                            "a {kind} platform needs PHP, and server {} offers no php-fpm (add \
                             one with --php on `fjord server add`)",
                            server.name
                        ))
                    })?,
            ),
        };
        let upload_limit = input
            .upload_limit
            .as_deref()
            .map(model::UploadLimit::parse)
            .transpose()?;
        if self.store().platform_by_name(name.as_str()).is_ok() {
            return Err(Error::Conflict(format!(
                "a platform named {name} already exists"
            )));
        }
        let platform = Platform {
            id: 0,
            name,
            server_id: server.id,
            path,
            kind,
            locked: false,
            php_version,
            web_root: None,
            drush,
            allow_exec: input.allow_exec,
            upload_limit,
            upstream: None,
        };
        let args = TaskArgs::PlatformVerify {
            from: from.map(|f| f.as_str().to_string()),
            limit_before: None,
        };
        if dry_run {
            let objects = TaskObjects {
                server,
                platform: Some(platform),
                site: None,
                sites: Vec::new(),
                db_server: None,
                extra: Default::default(),
            };
            return self.plan(TaskKind::PlatformVerify, objects, &args);
        }
        let task = NewTask::with_args(TaskKind::PlatformVerify, args);
        let (_, task) = self.store().insert_platform(&platform, Some(task))?;
        self.notify_dispatchers();
        Ok(Queued::task(task))
    }

    /// `--from` must be a directory holding a code base, not the platform's own path.
    pub(super) fn check_code_source(&self, from: &AbsPath, path: &AbsPath) -> Result<()> {
        let refuse = |rule: String| {
            Err(Error::Invalid(model::Invalid::new(
                "--from",
                from.as_str(),
                rule,
            )))
        };
        let archive = host::archive_kind(from.as_path()).is_some();
        let is_file = from.as_path().is_file();
        if !(from.as_path().is_dir() || is_file && archive) {
            return refuse(
                "must be a directory holding a code base, or a release archive (.tar.gz, .tgz, \
                 .zip) that is a regular file"
                    .into(),
            );
        }
        if path.as_path().exists() {
            return Err(Error::Invalid(model::Invalid::new(
                "platform path",
                path.as_str(),
                "must not exist yet when --from is given: the code base is copied there",
            )));
        }
        let (from_resolved, path_resolved) = (
            resolve_existing(from.as_path()),
            resolve_existing(path.as_path()),
        );
        if path_resolved.starts_with(&from_resolved) || from_resolved.starts_with(&path_resolved) {
            return refuse(format!(
                "must not contain or lie inside the platform path {path}"
            ));
        }
        let data = resolve_existing(self.data_dir());
        if from_resolved.starts_with(&data) || data.starts_with(&from_resolved) {
            return refuse("must not be inside fjord's data dir or contain it".into());
        }
        // Another platform holds its sites' files and credentials: a copy of it would hand
        // them to every site of the new one.
        for other in self.store().platforms()? {
            let other_path = resolve_existing(other.path.as_path());
            if from_resolved.starts_with(&other_path) || other_path.starts_with(&from_resolved) {
                return refuse(format!(
                    "overlaps platform {} at {}: copy a code base from a release, not from a \
                     platform with sites",
                    other.name, other.path
                ));
            }
        }
        Ok(())
    }

    /// A platform's directory may not hold or lie inside fjord's data or another platform:
    /// a site's files would then belong to two owners.
    pub(super) fn check_platform_path(&self, path: &AbsPath) -> Result<()> {
        let refuse = |rule: String| {
            Err(Error::Invalid(model::Invalid::new(
                "platform path",
                path.as_str(),
                rule,
            )))
        };
        // Links are resolved as far as the path exists: a link to /etc, to the data dir or
        // into another platform is what it points to.
        let resolved = resolve_existing(path.as_path());
        let data = self.data_dir();
        let data_resolved = resolve_existing(data);
        let platforms = self.store().platforms()?;
        for candidate in [path.as_path(), resolved.as_path()] {
            if let Some(rule) = AbsPath::system_dir(candidate) {
                return refuse(if candidate == path.as_path() {
                    rule
                } else {
                    format!("resolves to {}, which {rule}", candidate.display())
                });
            }
            for data in [data, data_resolved.as_path()] {
                if candidate.starts_with(data) || data.starts_with(candidate) {
                    return refuse(format!(
                        "must not be inside fjord's data dir {} or contain it",
                        data.display()
                    ));
                }
            }
            for other in &platforms {
                let other_resolved = resolve_existing(other.path.as_path());
                for other_path in [other.path.as_path(), other_resolved.as_path()] {
                    if candidate.starts_with(other_path) || other_path.starts_with(candidate) {
                        return refuse(format!(
                            "overlaps platform {} at {}",
                            other.name, other.path
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    pub fn platform(&self, name: &str) -> Result<Platform> {
        self.store()
            .platform_by_name(name)
            .map_err(|e| missing(e, NameKind::Platform, name))
    }

    /// The version and packages the last verify of a platform or site found.
    pub fn code_found(
        &self,
        target: Target,
    ) -> Result<(Option<String>, Vec<crate::kinds::Package>)> {
        let (version, packages) = self.store().code_found(target)?;
        let packages = packages
            .and_then(|p| serde_json::from_str(&p).ok())
            .unwrap_or_default();
        Ok((version, packages))
    }

    /// The command-line tool its sites are driven with (a Drupal platform's drush: the code
    /// base's own `vendor/bin/drush` before the one the platform was given).
    pub fn platform_tool(&self, platform: &Platform) -> Option<String> {
        let server = self.store().server(platform.server_id).ok()?;
        let reads = self.reads_of(&server).ok()?;
        crate::kinds::of(platform.kind).site_tool(&*reads, platform)
    }

    pub fn platforms(&self) -> Result<Vec<Platform>> {
        Ok(self.store().platforms()?)
    }

    pub fn verify_platform(&self, name: &str, dry_run: bool) -> Result<Queued> {
        let platform = self.platform(name)?;
        self.queue(
            Target::Platform(platform.id),
            TaskKind::PlatformVerify,
            TaskArgs::none_for(TaskKind::PlatformVerify),
            dry_run,
        )
    }

    /// Sets the largest upload a platform's sites take (`default`: 64M) and queues, in the
    /// same transaction, one platform verify, which rewrites the vhost and pool of each of
    /// its served sites in one commit per daemon. Returns that task.
    pub fn set_platform_upload_limit(&self, name: &str, limit: &str) -> Result<Vec<Task>> {
        let platform = self.platform(name)?;
        let limit = match limit.trim() {
            "default" => None,
            limit => Some(model::UploadLimit::parse(limit)?),
        };
        let task = self.store().set_platform_upload_limit(
            platform.id,
            limit,
            Some(NewTask::with_args(
                TaskKind::PlatformVerify,
                TaskArgs::PlatformVerify {
                    from: None,
                    limit_before: Some(model::PlatformLimitBefore {
                        upload_limit: platform.upload_limit,
                    }),
                },
            )),
        )?;
        self.notify_dispatchers();
        Ok(task.into_iter().collect())
    }

    pub fn lock_platform(&self, name: &str, locked: bool) -> Result<Platform> {
        let platform = self.platform(name)?;
        self.store().set_platform_locked(platform.id, locked)?;
        self.platform(name)
    }

    /// Forgets a platform. Refused while sites live on it or a task on it is unfinished; its
    /// code base on disk is left alone (fjord does not own a platform's code).
    pub fn delete_platform(&self, name: &str) -> Result<()> {
        let platform = self.platform(name)?;
        let sites = self.store().sites(Some(platform.id))?;
        if !sites.is_empty() {
            let names: Vec<&str> = sites.iter().take(5).map(|s| s.name.as_str()).collect();
            return Err(Error::Refused(format!(
                "platform {name} still has {} site(s) ({}{}): delete or migrate them first",
                sites.len(),
                names.join(", "),
                if sites.len() > 5 { ", …" } else { "" }
            )));
        }
        if let Some(t) = self
            .store()
            .active_tasks(Target::Platform(platform.id))?
            .first()
        {
            return Err(Error::Refused(format!(
                "platform {name} has unfinished task {}",
                t.id
            )));
        }
        Ok(self.store().delete_platform(platform.id)?)
    }
}
