//! The use cases as a signed-in person may call them: each checks the actor's role
//! (`model::access::may`) and holds a client user to its own client's objects, then calls the
//! use case in [`crate::ops`].
//!
//! The panel's HTML views and the JSON API call only these, so that a permission is decided in
//! one place whatever the door. An object an actor may not see is reported *not found*, the
//! same as one that does not exist: guessing names or ids tells nothing.

mod people;
mod sites;

use model::{Action, Actor, Platform, Server, SiteStatus, Target, Task, TaskArgs, TaskStatus};
use store::{LogLine, TaskFilter};

use crate::near::{Missing, NameKind};
use crate::ops::{PlatformInput, Queued};
use crate::{Error, Fjord, Result};

pub use people::{ClientInput, LinkDelivery, UserInput};
pub use sites::MAX_SITE_PAGE;

/// A use-case caller bound to who is acting.
pub struct Acting<'a> {
    fjord: &'a Fjord,
    actor: Actor,
}

impl Fjord {
    pub fn acting(&self, actor: Actor) -> Acting<'_> {
        Acting { fjord: self, actor }
    }
}

/// What the dashboard shows, as much as the actor may see.
#[derive(Debug, Clone)]
pub struct Dashboard {
    pub site_counts: Vec<(SiteStatus, u64)>,
    pub running: Vec<Task>,
    pub queued: Vec<Task>,
    pub failed: Vec<Task>,
    /// The last finished tasks, oldest first: their durations make the chart.
    pub finished: Vec<Task>,
    /// The sites whose backups take the most room: name, bytes, how many backups.
    pub backup_use: Vec<(String, i64, i64)>,
}

impl Acting<'_> {
    pub fn actor(&self) -> &Actor {
        &self.actor
    }

    pub fn fjord(&self) -> &Fjord {
        self.fjord
    }

    pub fn may(&self, action: Action) -> bool {
        self.actor.may(action)
    }

    pub(crate) fn require(&self, action: Action) -> Result<()> {
        if self.actor.may(action) {
            Ok(())
        } else {
            Err(Error::Forbidden(format!(
                "{} ({}) may not {}",
                self.actor.name,
                self.actor.role.title().to_lowercase(),
                describe(action)
            )))
        }
    }

    /// The client whose objects a client user is held to.
    /// This error with the closest names, if it is a name not found, chosen only from the
    /// names the actor may see: a client user's own client's sites, the platforms its client
    /// may use, and servers only for a role that sees them.
    fn with_near_names(&self, e: Error) -> Error {
        e.with_near_names(|kind| match kind {
            NameKind::Site if self.may(Action::ViewSites) => self
                .fjord
                .names_of(kind, |client| self.actor.sees_client(client)),
            NameKind::Platform if self.may(Action::ViewPlatforms) => Ok(self
                .platforms()?
                .into_iter()
                .map(|p| p.name.to_string())
                .collect()),
            NameKind::Server if self.may(Action::ViewServers) => {
                self.fjord.names_of(kind, |_| true)
            }
            _ => Ok(Vec::new()),
        })
    }

    fn own_client(&self) -> Option<i64> {
        match self.actor.role {
            model::Role::Client => Some(self.actor.client_id.unwrap_or(-1)),
            _ => None,
        }
    }

    /// Names of clients by id, to show beside objects the actor already sees.
    pub fn client_names(
        &self,
        ids: impl IntoIterator<Item = i64>,
    ) -> Result<std::collections::HashMap<i64, String>> {
        let mut wanted: Vec<i64> = ids
            .into_iter()
            .filter(|id| self.actor.sees_client(Some(*id)))
            .collect();
        wanted.sort_unstable();
        wanted.dedup();
        Ok(self.fjord.store().client_names(&wanted)?)
    }

    pub fn dashboard(&self) -> Result<Dashboard> {
        let client = self.own_client();
        let site_counts = self.fjord.store().site_counts(client)?;
        let backup_use = self.fjord.store().backup_use(client, 15)?;
        if !self.may(Action::ViewTasks) {
            return Ok(Dashboard {
                site_counts,
                running: vec![],
                queued: vec![],
                failed: vec![],
                finished: vec![],
                backup_use,
            });
        }
        let list = |status, limit| {
            self.fjord.store().tasks(&TaskFilter {
                status: Some(status),
                client_id: client,
                limit: Some(limit),
                ..TaskFilter::default()
            })
        };
        let mut finished = list(TaskStatus::Success, 60)?;
        finished.reverse();
        Ok(Dashboard {
            site_counts,
            running: list(TaskStatus::Processing, 50)?,
            queued: list(TaskStatus::Queued, 50)?,
            failed: list(TaskStatus::Failed, 10)?,
            finished,
            backup_use,
        })
    }

    pub fn servers(&self) -> Result<Vec<Server>> {
        self.require(Action::ViewServers)?;
        self.fjord.servers()
    }

    /// The backup targets: infrastructure, seen by those who see servers.
    pub fn backup_targets(&self) -> Result<Vec<store::BackupTargetRecord>> {
        self.require(Action::ViewServers)?;
        self.fjord.backup_targets()
    }

    pub fn server(&self, name: &str) -> Result<Server> {
        self.require(Action::ViewServers)?;
        self.fjord.server(name).map_err(|e| self.with_near_names(e))
    }

    /// The monitor's newest events of a server's daemons (at most `limit`), newest first.
    pub fn service_events(&self, name: &str, limit: u32) -> Result<Vec<model::ServiceEvent>> {
        let server = self.server(name)?;
        self.fjord.service_events(&server, limit)
    }

    /// Registers a server and queues its verify. Its programs and paths are root's to run
    /// and read, so beyond the standard profile only an administrator chooses them.
    pub fn add_server(&self, input: &crate::ops::ServerInput) -> Result<Queued> {
        self.require(Action::ManageServers)?;
        if !self.may(Action::ChooseHostPaths) {
            let odd = self.fjord.parse_server(input)?.beyond_standard_profile();
            if !odd.is_empty() {
                return Err(Error::Forbidden(format!(
                    "{} ({}) adds servers with the standard programs and paths only; {} \
                     {} an administrator's to choose",
                    self.actor.name,
                    self.actor.role.title().to_lowercase(),
                    odd.join(", "),
                    if odd.len() == 1 { "is" } else { "are" }
                )));
            }
        }
        self.stamp(self.fjord.add_server(input, false))
    }

    /// Adds and removes a server's services and queues its verify; beyond the standard
    /// profile, as for a new server, only an administrator chooses them.
    pub fn edit_server(&self, edit: &crate::ops::ServerEdit) -> Result<Queued> {
        self.require(Action::ManageServers)?;
        if !self.may(Action::ChooseHostPaths) {
            let before = self.fjord.server(&edit.name)?.beyond_standard_profile();
            let odd: Vec<String> = self
                .fjord
                .edited_server(edit)?
                .beyond_standard_profile()
                .into_iter()
                .filter(|o| !before.contains(o))
                .collect();
            if !odd.is_empty() {
                return Err(Error::Forbidden(format!(
                    "{} ({}) adds services with the standard programs and paths only; {} \
                     {} an administrator's to choose",
                    self.actor.name,
                    self.actor.role.title().to_lowercase(),
                    odd.join(", "),
                    if odd.len() == 1 { "is" } else { "are" }
                )));
            }
        }
        self.stamp(self.fjord.edit_server(edit, false))
    }

    pub fn verify_server(&self, name: &str) -> Result<Queued> {
        self.require(Action::ManageServers)?;
        self.stamp(self.fjord.verify_server(name, false))
    }

    /// Every platform, or for a client user those its client may put sites on.
    pub fn platforms(&self) -> Result<Vec<Platform>> {
        self.require(Action::ViewPlatforms)?;
        let all = self.fjord.platforms()?;
        match self.own_client() {
            None => Ok(all),
            Some(client) => {
                let allowed = self.allowed_platforms(client)?;
                Ok(all
                    .into_iter()
                    .filter(|p| allowed.contains(&p.id))
                    .collect())
            }
        }
    }

    /// The platforms the actor may add a site on (unlocked), as the add-site form offers
    /// them.
    pub fn new_site_platforms(&self) -> Result<Vec<crate::ops::PlatformChoice>> {
        let platforms: Vec<Platform> = self
            .platforms()?
            .into_iter()
            .filter(|p| !p.locked)
            .collect();
        self.fjord.platform_choices(&platforms)
    }

    fn allowed_platforms(&self, client: i64) -> Result<Vec<i64>> {
        Ok(self.fjord.store().client_platforms(client)?)
    }

    pub fn platform(&self, name: &str) -> Result<Platform> {
        self.require(Action::ViewPlatforms)?;
        let platform = self
            .fjord
            .platform(name)
            .map_err(|e| self.with_near_names(e))?;
        if let Some(client) = self.own_client()
            && !self.allowed_platforms(client)?.contains(&platform.id)
        {
            let missing = Error::NotFound(Missing::named(NameKind::Platform, name));
            return Err(self.with_near_names(missing));
        }
        Ok(platform)
    }

    pub fn add_platform(&self, input: &PlatformInput) -> Result<Queued> {
        self.require(Action::ManagePlatforms)?;
        self.stamp(self.fjord.add_platform(input, false))
    }

    pub fn verify_platform(&self, name: &str) -> Result<Queued> {
        self.require(Action::ManagePlatforms)?;
        self.stamp(self.fjord.verify_platform(name, false))
    }

    pub fn set_platform_upload_limit(&self, name: &str, limit: &str) -> Result<Vec<Task>> {
        self.require(Action::ManagePlatforms)?;
        self.fjord.set_platform_upload_limit(name, limit)
    }

    pub fn lock_platform(&self, name: &str, locked: bool) -> Result<Platform> {
        self.require(Action::ManagePlatforms)?;
        self.fjord.lock_platform(name, locked)
    }

    pub fn delete_platform(&self, name: &str) -> Result<()> {
        self.require(Action::ManagePlatforms)?;
        self.fjord.delete_platform(name)
    }

    /// Tasks the actor may see, newest first.
    pub fn tasks(&self, filter: &TaskFilter) -> Result<Vec<Task>> {
        self.require(Action::ViewTasks)?;
        let mut filter = filter.clone();
        if let Some(client) = self.own_client() {
            filter.client_id = Some(client);
        }
        self.fjord.tasks(&filter)
    }

    pub fn task(&self, id: i64) -> Result<Task> {
        self.require(Action::ViewTasks)?;
        let task = self.fjord.task(id)?;
        if let Some(client) = self.own_client()
            && task.client_id != Some(client)
        {
            return Err(Error::NotFound(format!("task {id}").into()));
        }
        Ok(task)
    }

    pub fn task_log(&self, id: i64, after_id: i64) -> Result<Vec<LogLine>> {
        self.task(id)?;
        self.fjord.task_log(id, after_id)
    }

    /// Re-queues a failed or cancelled task: only for whoever could queue it now, with its
    /// arguments, as the actor.
    pub fn retry_task(&self, id: i64) -> Result<Task> {
        self.require(Action::ControlTasks)?;
        let task = self.task(id)?;
        self.require_could_queue(&task)?;
        let task = self.fjord.retry_task(id)?;
        Ok(self
            .stamp(Ok(Queued {
                task: Some(task),
                plan: None,
            }))?
            .task
            .expect("a retried task"))
    }

    /// Records the actor as who queued the task `queued` holds (the state's default is
    /// `cli`).
    fn stamp(&self, queued: Result<Queued>) -> Result<Queued> {
        let mut queued = queued?;
        if let Some(task) = &mut queued.task {
            self.fjord
                .store()
                .set_task_queued_by(task.id, self.actor.name.as_str())?;
            task.queued_by = self.actor.name.to_string();
        }
        Ok(queued)
    }

    /// Cancels a queued task: held to the same rule as a retry, so that nobody undoes what
    /// they could not have asked for (a client user and the operator's delete of its site).
    pub fn cancel_task(&self, id: i64) -> Result<Task> {
        self.require(Action::ControlTasks)?;
        let task = self.task(id)?;
        self.require_could_queue(&task)?;
        self.fjord.cancel_task(id)
    }

    /// Whether the actor could queue `task` afresh, kind and arguments: the checks the doors
    /// make when a task is queued, over the arguments stored with it.
    fn require_could_queue(&self, task: &Task) -> Result<()> {
        match task.target {
            Target::Site(_) => self.require(Action::SiteTask(task.kind))?,
            Target::Platform(_) => self.require(Action::ManagePlatforms)?,
            Target::Server(_) => self.require(Action::ManageServers)?,
        }
        match &task.args {
            TaskArgs::None
            | TaskArgs::SiteVerify { .. }
            | TaskArgs::BackupDelete { .. }
            | TaskArgs::LoginLink { .. }
            | TaskArgs::MigrateAll { .. }
            | TaskArgs::PlatformVerify { from: None, .. }
            | TaskArgs::SiteHttps { own: None } => Ok(()),
            TaskArgs::Install(_) => self.require(Action::AddSite),
            // The installation's account, and a certificate read from files root names, are
            // an administrator's.
            TaskArgs::HttpsAccount(_) | TaskArgs::SiteHttps { own: Some(_) } => {
                self.require(Action::ChooseHostPaths)
            }
            TaskArgs::PlatformVerify { from: Some(_), .. } => self.require(Action::ChooseHostPaths),
            TaskArgs::Site { force } => self.require_unforced(*force),
            TaskArgs::Backup { scheduled } => {
                if *scheduled {
                    self.require_staff("re-run or cancel a scheduled backup")?;
                }
                Ok(())
            }
            TaskArgs::Restore { own, .. } => {
                if !own {
                    self.require(Action::ChooseHostPaths)?;
                }
                Ok(())
            }
            TaskArgs::Clone { source, force } => {
                self.require(Action::AddSite)?;
                self.require_unforced(*force)?;
                let source = self.fjord.store().site(*source)?;
                self.site(source.name.as_str())?;
                if let Target::Site(id) = task.target {
                    let platform = self.fjord.store().site(id)?.platform_id;
                    self.check_target_platform_id(platform)?;
                }
                Ok(())
            }
            TaskArgs::Migrate(m) => {
                self.require_unforced(m.force)?;
                self.check_target_platform_id(m.platform)?;
                let renames = match task.target {
                    Target::Site(id) => self.fjord.store().site(id)?.name != m.name,
                    _ => false,
                };
                if m.db_server.is_some() || renames {
                    self.require_staff("re-run or cancel a rename or a database move")?;
                }
                Ok(())
            }
        }
    }

    /// Forcing a task past a check (missing packages, a site that is not disabled) is for the
    /// operator's people, never a client user.
    fn require_unforced(&self, force: bool) -> Result<()> {
        if force {
            self.require_staff("force a task past its checks")?;
        }
        Ok(())
    }

    fn require_staff(&self, what: &str) -> Result<()> {
        if self.own_client().is_some() {
            return Err(Error::Forbidden(format!(
                "{} (client user) may not {what}",
                self.actor.name
            )));
        }
        Ok(())
    }
}

fn describe(action: Action) -> String {
    match action {
        Action::ViewServers => "see servers".into(),
        Action::ManageServers => "change servers".into(),
        Action::ViewPlatforms => "see platforms".into(),
        Action::ManagePlatforms => "add, verify or remove platforms".into(),
        Action::ViewSites => "see sites".into(),
        Action::AddSite => "add sites".into(),
        Action::EditSite => "change a site's names".into(),
        Action::SiteTask(kind) => format!("run {} on a site", kind.as_str()),
        Action::ViewClients => "see clients".into(),
        Action::ManageClients => "add or change clients".into(),
        Action::ViewUsers => "see users".into(),
        Action::ManageUsers => "add or change users".into(),
        Action::ViewTasks => "see tasks".into(),
        Action::ControlTasks => "re-queue or cancel tasks".into(),
        Action::ManageSettings => "change installation settings".into(),
        Action::ClaimPrivateName => "give a site a name that is not a public host name".into(),
        Action::ChooseHostPaths => {
            "choose programs and paths root runs or reads (server programs, archive files, \
             directories to copy in)"
                .into()
        }
        Action::ActAsUsers => {
            "hold another user's login link or password, or change where their links are mailed"
                .into()
        }
    }
}

#[cfg(test)]
mod tests;
