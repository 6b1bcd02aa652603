//! Who may do what: the roles of the panel's users and the one table of their permissions.
//!
//! The table is pure and total, so that the authorization matrix can be checked here cell by
//! cell; *which* objects an actor may touch (a client user: only its client's) is the engine's
//! scoping, on top of this table.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{Invalid, Name, TaskKind};

/// Aegir's roles, from all-powerful to a client's own people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Everything, including users and settings.
    Administrator,
    /// Servers, platforms and every site; not users or clients.
    PlatformManager,
    /// Clients, their users and quotas; sees sites but runs no technical task.
    AccountManager,
    /// Only the sites of their own client.
    Client,
}

impl Role {
    pub const ALL: [Role; 4] = [
        Role::Administrator,
        Role::PlatformManager,
        Role::AccountManager,
        Role::Client,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Administrator => "administrator",
            Role::PlatformManager => "platform-manager",
            Role::AccountManager => "account-manager",
            Role::Client => "client",
        }
    }

    pub fn parse(input: &str) -> Result<Role, Invalid> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == input)
            .ok_or_else(|| {
                Invalid::new(
                    "role",
                    input,
                    "must be administrator, platform-manager, account-manager or client",
                )
            })
    }

    /// What the role is called in the panel.
    pub fn title(self) -> &'static str {
        match self {
            Role::Administrator => "Administrator",
            Role::PlatformManager => "Platform manager",
            Role::AccountManager => "Account manager",
            Role::Client => "Client user",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an actor asks to do, before any object is looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    ViewServers,
    ManageServers,
    ViewPlatforms,
    ManagePlatforms,
    ViewSites,
    AddSite,
    /// Change a site's names (aliases, redirect).
    EditSite,
    /// Queue a task of this kind on a site (or, for migrate-check, ask for its table).
    SiteTask(TaskKind),
    ViewClients,
    ManageClients,
    ViewUsers,
    ManageUsers,
    ViewTasks,
    /// Re-queue or cancel a task.
    ControlTasks,
    /// Mail, backup policy: installation-wide settings.
    ManageSettings,
    /// Give a site a name that is not a public host name (`localhost`, a single label,
    /// `*.local`: `Hostname::private_use`), which catches requests meant for the machine or
    /// its network.
    ClaimPrivateName,
    /// Choose what root runs or reads on the host: a server's programs and paths beyond the
    /// standard profile ([`crate::Server::beyond_standard_profile`]), an archive file to
    /// restore, a directory to copy into a platform.
    ChooseHostPaths,
    /// Hold what signs in as another user: see their login link, set their password, change
    /// the address their links are mailed to. Whoever manages a user without this right
    /// only has its links mailed to the user's own address.
    ActAsUsers,
}

/// The one table of permissions. A client user's rights are further held to its own client's
/// sites by the engine.
pub fn may(role: Role, action: Action) -> bool {
    use Action::*;
    match role {
        Role::Administrator => true,
        Role::PlatformManager => !matches!(
            action,
            ManageClients
                | ViewUsers
                | ManageUsers
                | ManageSettings
                | ClaimPrivateName
                | ChooseHostPaths
                | ActAsUsers
        ),
        Role::AccountManager => matches!(
            action,
            ViewSites | ViewPlatforms | ViewClients | ManageClients | ViewUsers | ManageUsers
        ),
        Role::Client => match action {
            ViewSites | AddSite | EditSite | ViewTasks | ControlTasks | ViewPlatforms => true,
            SiteTask(kind) => CLIENT_SITE_TASKS.contains(&kind),
            _ => false,
        },
    }
}

/// The tasks a client user may run on its own sites: the everyday ones, none that takes a
/// site down.
pub const CLIENT_SITE_TASKS: [TaskKind; 7] = [
    TaskKind::SiteVerify,
    TaskKind::SiteBackup,
    TaskKind::SiteRestore,
    TaskKind::SiteClone,
    TaskKind::SiteMigrate,
    TaskKind::SiteLoginLink,
    TaskKind::SiteCacheClear,
];

/// Who is acting: a signed-in user (or an API token's owner), or the operator at the command
/// line, who holds the machine and so every right.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub user_id: Option<i64>,
    pub name: String,
    pub role: Role,
    /// The client a client user belongs to.
    pub client_id: Option<i64>,
}

impl Actor {
    /// The operator at fjord's command line on the machine itself.
    pub fn operator() -> Actor {
        Actor {
            user_id: None,
            name: "operator".into(),
            role: Role::Administrator,
            client_id: None,
        }
    }

    pub fn may(&self, action: Action) -> bool {
        may(self.role, action)
    }

    /// Whether this actor may see objects of `client` (a site's client, a user's client):
    /// anyone but a client user sees all; a client user sees only its own.
    pub fn sees_client(&self, client: Option<i64>) -> bool {
        match self.role {
            Role::Client => client.is_some() && client == self.client_id,
            _ => true,
        }
    }
}

/// A user of the panel and the API. The password hash never leaves the store's layer above
/// the engine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: i64,
    pub name: Name,
    pub email: Option<crate::EmailAddress>,
    pub role: Role,
    pub client_id: Option<i64>,
    /// Unix milliseconds.
    pub created_at: i64,
    pub disabled: bool,
}

impl User {
    pub fn actor(&self) -> Actor {
        Actor {
            user_id: Some(self.id),
            name: self.name.to_string(),
            role: self.role,
            client_id: self.client_id,
        }
    }
}

pub const PASSWORD_MIN: usize = 12;
pub const PASSWORD_MAX: usize = 256;

/// Checks a new password: long enough to resist guessing, short enough not to be a way to
/// make the server hash megabytes. Its value is never echoed in the error.
pub fn check_password(password: &str) -> Result<(), Invalid> {
    let chars = password.chars().count();
    if chars < PASSWORD_MIN {
        return Err(Invalid::new(
            "password",
            "(hidden)",
            format!("must be at least {PASSWORD_MIN} characters"),
        ));
    }
    if password.len() > PASSWORD_MAX {
        return Err(Invalid::new(
            "password",
            "(hidden)",
            format!("must be at most {PASSWORD_MAX} bytes"),
        ));
    }
    if password.chars().any(char::is_control) {
        return Err(Invalid::new(
            "password",
            "(hidden)",
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// A client user must belong to a client, and only a client user may.
pub fn check_role_client(role: Role, client: Option<i64>) -> Result<(), Invalid> {
    match (role, client) {
        (Role::Client, None) => Err(Invalid::new(
            "client",
            "",
            "a client user must belong to a client",
        )),
        (Role::Client, Some(_)) | (_, None) => Ok(()),
        (other, Some(_)) => Err(Invalid::new(
            "client",
            other.as_str(),
            "only a client user belongs to a client",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_parse_back() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()).unwrap(), role);
        }
        let e = Role::parse("root").unwrap_err().to_string();
        assert!(e.contains("root") && e.contains("administrator"), "{e}");
    }

    #[test]
    fn the_table_matches_aegirs_roles() {
        use Action::*;
        let every = [
            ViewServers,
            ManageServers,
            ViewPlatforms,
            ManagePlatforms,
            ViewSites,
            AddSite,
            EditSite,
            ViewClients,
            ManageClients,
            ViewUsers,
            ManageUsers,
            ViewTasks,
            ControlTasks,
            ManageSettings,
            ClaimPrivateName,
            ChooseHostPaths,
            ActAsUsers,
            SiteTask(TaskKind::SiteDelete),
            SiteTask(TaskKind::SiteBackup),
        ];
        assert!(every.iter().all(|a| may(Role::Administrator, *a)));
        assert!(may(Role::PlatformManager, ManageServers));
        assert!(may(Role::PlatformManager, SiteTask(TaskKind::SiteDelete)));
        assert!(!may(Role::PlatformManager, ManageUsers));
        assert!(!may(Role::PlatformManager, ManageClients));
        for role in [Role::PlatformManager, Role::AccountManager, Role::Client] {
            assert!(!may(role, ClaimPrivateName), "{role}");
        }
        assert!(may(Role::AccountManager, ManageClients));
        assert!(may(Role::AccountManager, ManageUsers));
        assert!(!may(Role::AccountManager, SiteTask(TaskKind::SiteBackup)));
        assert!(!may(Role::AccountManager, ManageServers));
        assert!(!may(Role::AccountManager, ViewTasks));
        assert!(may(Role::Client, SiteTask(TaskKind::SiteBackup)));
        assert!(may(Role::Client, SiteTask(TaskKind::SiteMigrate)));
        assert!(!may(Role::Client, SiteTask(TaskKind::SiteDelete)));
        assert!(!may(Role::Client, SiteTask(TaskKind::SiteDisable)));
        assert!(!may(Role::Client, ViewServers));
        assert!(!may(Role::Client, ManageUsers));
        // Only an administrator runs programs of its choosing as root or signs in as others.
        for role in [Role::PlatformManager, Role::AccountManager, Role::Client] {
            assert!(!may(role, ChooseHostPaths), "{role}");
            assert!(!may(role, ActAsUsers), "{role}");
        }
    }

    #[test]
    fn client_users_see_only_their_client() {
        let mut a = Actor::operator();
        assert!(a.sees_client(None) && a.sees_client(Some(7)));
        a.role = Role::Client;
        a.client_id = Some(7);
        assert!(a.sees_client(Some(7)));
        assert!(!a.sees_client(Some(8)));
        assert!(!a.sees_client(None));
    }

    #[test]
    fn passwords_are_checked_without_echo() {
        let e = check_password("short").unwrap_err().to_string();
        assert!(!e.contains("short") && e.contains("12"), "{e}");
        assert!(check_password(&"x".repeat(300)).is_err());
        assert!(check_password("a long enough passphrase").is_ok());
        assert!(check_password("with\u{0}nul in it ok?").is_err());
    }

    #[test]
    fn only_client_users_belong_to_clients() {
        assert!(check_role_client(Role::Client, None).is_err());
        assert!(check_role_client(Role::Client, Some(1)).is_ok());
        assert!(check_role_client(Role::Administrator, Some(1)).is_err());
        assert!(check_role_client(Role::AccountManager, None).is_ok());
    }
}
