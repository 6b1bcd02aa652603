//! Sites as a signed-in person sees them: a client user only its client's, on the platforms
//! its client may use.

use model::{Action, Site, Target, Task, TaskKind};
use store::{Backup, SitePage, SiteQuery, TaskFilter};

use super::Acting;
use crate::compat;
use crate::near::{Missing, NameKind};
use crate::ops::{Queued, Rename, SiteEdit, SiteInput};
use crate::{Error, Result};

/// The most sites one page of the list may hold.
pub const MAX_SITE_PAGE: u64 = 500;

impl Acting<'_> {
    /// A page of the sites the actor may see.
    pub fn sites(&self, query: &SiteQuery) -> Result<SitePage> {
        self.require(Action::ViewSites)?;
        let mut query = query.clone();
        if let Some(client) = self.own_client() {
            query.client_id = Some(client);
        }
        query.limit = query.limit.clamp(1, MAX_SITE_PAGE);
        Ok(self.fjord.store().site_page(&query)?)
    }

    /// A site the actor may see; any other is "not found", as if it did not exist.
    pub fn site(&self, name: &str) -> Result<Site> {
        self.require(Action::ViewSites)?;
        let site = self.fjord.site(name).map_err(|e| self.with_near_names(e))?;
        if !self.actor.sees_client(site.client_id) {
            // Answered exactly as a name nobody has.
            let missing = Error::NotFound(Missing::named(NameKind::Site, name));
            return Err(self.with_near_names(missing));
        }
        Ok(site)
    }

    /// The certificate of a site the actor may see.
    pub fn site_certificate(&self, name: &str) -> Result<Option<store::SiteCertificate>> {
        let site = self.site(name)?;
        Ok(self.fjord.store().site_certificate(site.id)?)
    }

    /// The last lines of one of a site's logs, for whoever may see the site (a client user:
    /// its own client's sites only; any other answers as a missing site).
    pub fn site_log(
        &self,
        name: &str,
        kind: crate::ops::LogKind,
        lines: usize,
    ) -> Result<Vec<String>> {
        self.site(name)?;
        self.fjord.site_log(name, kind, lines)
    }

    /// The lines added to a site's log since `cursor`, asked again on every read: a follower
    /// that loses the site (or its session) reads no more.
    pub fn site_log_since(
        &self,
        name: &str,
        kind: crate::ops::LogKind,
        cursor: crate::ops::LogCursor,
    ) -> Result<(Vec<String>, crate::ops::LogCursor)> {
        self.site(name)?;
        self.fjord.site_log_since(name, kind, cursor)
    }

    /// A site the actor may see and run `action` on.
    fn site_for(&self, name: &str, action: Action) -> Result<Site> {
        let site = self.site(name)?;
        self.require(action)?;
        Ok(site)
    }

    /// A platform a client user may put a site on (for others, any).
    fn check_target_platform(&self, platform: &str) -> Result<()> {
        if self.own_client().is_some() {
            // `platform` answers "not found" for a platform the client may not use.
            self.platform(platform)?;
        }
        Ok(())
    }

    /// A platform, by id, a client user may put a site on (for others, any).
    pub(super) fn check_target_platform_id(&self, platform: i64) -> Result<()> {
        if self.own_client().is_some() {
            let platform = self.fjord.store().platform(platform)?;
            self.platform(platform.name.as_str())?;
        }
        Ok(())
    }

    pub fn add_site(&self, input: &SiteInput) -> Result<Queued> {
        self.require(Action::AddSite)?;
        if input.allow_private_names {
            self.require(Action::ClaimPrivateName)?;
        }
        let mut input = input.clone();
        if let Some(client) = self.own_client() {
            self.check_target_platform(&input.platform)?;
            let own = self.fjord.store().client(client)?;
            if input
                .client
                .as_deref()
                .is_some_and(|c| c != own.name.as_str())
            {
                return Err(Error::Forbidden(format!(
                    "{} may add sites only for client {}",
                    self.actor.name, own.name
                )));
            }
            input.client = Some(own.name.to_string());
        } else {
            // A client user's sites are its client's whatever it names (above), so only
            // other roles can make a client by naming it.
            self.require_client_exists(input.client.as_deref())?;
        }
        self.fjord.add_site(&input, false)
    }

    /// Naming a client that does not exist would add it: only those who manage clients may.
    fn require_client_exists(&self, client: Option<&str>) -> Result<()> {
        let Some(client) = client.filter(|c| !c.is_empty()) else {
            return Ok(());
        };
        if self.may(Action::ManageClients) {
            return Ok(());
        }
        match self.fjord.store().client_by_name(client) {
            Err(store::StoreError::NotFound(_)) => Err(Error::Forbidden(format!(
                "there is no client named {client:?}, and {} ({}) may not add clients: an \
                 administrator or account manager adds it first",
                self.actor.name,
                self.actor.role.title().to_lowercase()
            ))),
            Err(e) => Err(e.into()),
            Ok(_) => Ok(()),
        }
    }

    pub fn edit_site(&self, name: &str, edit: &SiteEdit) -> Result<Queued> {
        self.site_for(name, Action::EditSite)?;
        if edit.allow_private_names {
            self.require(Action::ClaimPrivateName)?;
        }
        self.stamp(self.fjord.edit_site(name, edit, false))
    }

    /// Queues a task that takes nothing but the site: install, verify, disable, enable,
    /// delete, backup, cache clear.
    pub fn site_task(&self, name: &str, kind: TaskKind) -> Result<Queued> {
        self.site_for(name, Action::SiteTask(kind))?;
        if kind == TaskKind::SiteHttps {
            // A certificate from the installation's ACME account (one's own is read from
            // files, which is the command line's).
            return self.stamp(self.fjord.site_https(name, None, false));
        }
        self.stamp(self.fjord.site_task(name, kind, false, false))
    }

    pub fn backups(&self, name: &str) -> Result<Vec<Backup>> {
        let site = self.site(name)?;
        Ok(self.fjord.store().site_backups(site.id)?)
    }

    pub fn restore_site(&self, name: &str, backup_id: Option<i64>) -> Result<Queued> {
        self.site_for(name, Action::SiteTask(TaskKind::SiteRestore))?;
        self.stamp(self.fjord.restore_site(name, backup_id, None, false))
    }

    pub fn clone_site(&self, source: &str, new_name: &str, platform: &str) -> Result<Queued> {
        self.site_for(source, Action::SiteTask(TaskKind::SiteClone))?;
        self.require(Action::AddSite)?;
        self.check_target_platform(platform)?;
        let new_name = Rename {
            name: new_name,
            allow_private_name: false,
        };
        self.stamp(
            self.fjord
                .clone_site(source, new_name, platform, false, false),
        )
    }

    pub fn migrate_site(&self, name: &str, platform: &str, force: bool) -> Result<Queued> {
        self.site_for(name, Action::SiteTask(TaskKind::SiteMigrate))?;
        self.check_target_platform(platform)?;
        self.require_unforced(force)?;
        self.stamp(
            self.fjord
                .migrate_site(name, Some(platform), None, None, force, false),
        )
    }

    pub fn migrate_check(&self, name: &str, platform: &str) -> Result<compat::Report> {
        self.site_for(name, Action::SiteTask(TaskKind::SiteMigrate))?;
        self.check_target_platform(platform)?;
        self.fjord.migrate_check(name, platform, false)
    }

    /// Queues a one-time login link to the site's application; returns it.
    pub fn login_link(&self, name: &str) -> Result<(Queued, String)> {
        self.site_for(name, Action::SiteTask(TaskKind::SiteLoginLink))?;
        let (queued, link) = self.fjord.login_link(name)?;
        Ok((self.stamp(Ok(queued))?, link))
    }

    /// The site's tasks, newest first.
    pub fn site_tasks(&self, name: &str, limit: u32) -> Result<Vec<Task>> {
        let site = self.site(name)?;
        if !self.may(Action::ViewTasks) {
            return Ok(vec![]);
        }
        self.fjord.tasks(&TaskFilter {
            target: Some(Target::Site(site.id)),
            limit: Some(limit),
            ..TaskFilter::default()
        })
    }

    /// The tasks the actor may queue on the site in its present state, in the order a panel
    /// shows their buttons.
    pub fn site_actions(&self, site: &Site) -> Result<Vec<TaskKind>> {
        use TaskKind::*;
        let platform = self.fjord.store().platform(site.platform_id)?;
        let kind = crate::kinds::of(platform.kind);
        let has_account = self.fjord.store().acme_account()?.is_some();
        let candidates = [
            SiteInstall,
            SiteVerify,
            SiteHttps,
            SiteLoginLink,
            SiteBackup,
            SiteRestore,
            SiteCacheClear,
            SiteMigrate,
            SiteClone,
            SiteDisable,
            SiteEnable,
            SiteDelete,
        ];
        Ok(candidates
            .into_iter()
            .filter(|k| self.may(Action::SiteTask(*k)))
            .filter(|k| match k {
                // A clone is queued on the new site; what matters here is that the source
                // can be read, as for a backup, and that the actor may add a site.
                SiteClone => {
                    self.may(Action::AddSite)
                        && crate::scripts::check_site_status(SiteBackup, site, false).is_ok()
                }
                SiteLoginLink => {
                    kind.has_login_link()
                        && crate::scripts::check_site_status(*k, site, false).is_ok()
                }
                SiteCacheClear => {
                    kind.has_cache() && crate::scripts::check_site_status(*k, site, false).is_ok()
                }
                SiteHttps => {
                    has_account
                        && site.https.mode != model::HttpsMode::Off
                        && crate::scripts::check_site_status(*k, site, false).is_ok()
                }
                _ => crate::scripts::check_site_status(*k, site, false).is_ok(),
            })
            .collect())
    }

    /// The version and packages the last verify found in the site's code and database.
    pub fn site_code(&self, name: &str) -> Result<(Option<String>, Vec<crate::kinds::Package>)> {
        let site = self.site(name)?;
        self.fjord.code_found(Target::Site(site.id))
    }

    /// The version and packages the last verify found in a platform's code.
    pub fn platform_code(
        &self,
        name: &str,
    ) -> Result<(Option<String>, Vec<crate::kinds::Package>)> {
        let platform = self.platform(name)?;
        self.fjord.code_found(Target::Platform(platform.id))
    }

    pub fn site_cron(&self, name: &str) -> Result<store::SiteCron> {
        let site = self.site(name)?;
        Ok(self.fjord.store().site_cron(site.id)?)
    }
}
