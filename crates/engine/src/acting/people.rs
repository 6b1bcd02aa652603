//! Clients, users and API tokens. An account manager manages clients and their users; only an
//! administrator makes or changes administrators, platform and account managers. Everyone may
//! change their own password and manage their own tokens.
//!
//! Whoever holds a user's login link or password signs in as that user, so only an
//! administrator ever sees another user's link or sets their password
//! (`Action::ActAsUsers`). An account manager's users get their links by mail, at the address
//! they were created with, which only an administrator changes afterwards.

use model::{Action, EmailAddress, Name, Role, User};
use store::{ApiToken, ClientSummary, NewUser, UserUpdate};

use super::Acting;
use crate::{Error, Result};

#[derive(Debug, Clone, Default)]
pub struct ClientInput {
    pub name: String,
    pub email: Option<String>,
    /// How many sites it may have; none: no limit.
    pub site_quota: Option<u32>,
    /// Names of the platforms its users may put sites on.
    pub platforms: Vec<String>,
}

/// How a login link reached its user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkDelivery {
    /// The link's address, for the asker to pass on: an administrator, or the user itself.
    Shown(String),
    /// Mailed to the user's own address; the asker never sees it.
    Mailed(EmailAddress),
    /// No link was made, and why.
    Withheld(String),
}

#[derive(Debug, Clone)]
pub struct UserInput {
    pub name: String,
    pub email: Option<String>,
    pub role: String,
    /// The client's name, for a client user.
    pub client: Option<String>,
    /// None: the user signs in first with a login link and sets one.
    pub password: Option<String>,
}

fn parse_email(email: Option<&str>) -> Result<Option<EmailAddress>> {
    Ok(email
        .filter(|e| !e.is_empty())
        .map(|e| EmailAddress::parse("email", e))
        .transpose()?)
}

impl Acting<'_> {
    pub fn clients(&self) -> Result<Vec<ClientSummary>> {
        self.require(Action::ViewClients)?;
        Ok(self.fjord.store().clients()?)
    }

    pub fn client(&self, name: &str) -> Result<ClientSummary> {
        self.require(Action::ViewClients)?;
        let client = self.fjord.store().client_by_name(name)?;
        Ok(self.fjord.store().client_summary(client.id)?)
    }

    /// Adds a client, or with `update` changes one: email, quota and platforms, all at once.
    pub fn save_client(&self, input: &ClientInput, update: bool) -> Result<ClientSummary> {
        self.require(Action::ManageClients)?;
        let name = Name::parse("client name", &input.name)?;
        let email = parse_email(input.email.as_deref())?;
        let mut platform_ids = Vec::new();
        for platform in &input.platforms {
            platform_ids.push(self.fjord.platform(platform)?.id);
        }
        let store = self.fjord.store();
        let client = match store.client_by_name(name.as_str()) {
            Ok(_) if !update => {
                return Err(Error::Conflict(format!(
                    "a client named {name} already exists"
                )));
            }
            Ok(client) => client,
            Err(store::StoreError::NotFound(_)) if !update => {
                store.client_by_name_or_insert(&name)?
            }
            Err(e) => return Err(e.into()),
        };
        store.set_client_email(client.id, email.as_ref())?;
        store.set_client_quota(client.id, input.site_quota)?;
        store.set_client_platforms(client.id, &platform_ids)?;
        Ok(store.client_summary(client.id)?)
    }

    /// Users the actor may see: all for those who manage users, else only itself.
    pub fn users(&self) -> Result<Vec<User>> {
        self.require(Action::ViewUsers)?;
        Ok(self.fjord.store().users(None)?)
    }

    pub fn user(&self, name: &str) -> Result<User> {
        let user = self.fjord.store().user_by_name(name)?;
        if self.actor.user_id != Some(user.id) && !self.may(Action::ViewUsers) {
            return Err(Error::NotFound(format!("user {name}").into()));
        }
        Ok(user)
    }

    /// Whether the actor may give or take `role` (and change users who hold it).
    fn require_role_power(&self, role: Role) -> Result<()> {
        self.require(Action::ManageUsers)?;
        if self.actor.role != Role::Administrator && role != Role::Client {
            return Err(Error::Forbidden(format!(
                "only an administrator may make or change a user whose role is {}",
                role.as_str()
            )));
        }
        Ok(())
    }

    fn client_id(&self, role: Role, client: Option<&str>) -> Result<Option<i64>> {
        let id = match client.filter(|c| !c.is_empty()) {
            Some(name) => Some(self.fjord.store().client_by_name(name)?.id),
            None => None,
        };
        model::access::check_role_client(role, id)?;
        Ok(id)
    }

    pub fn add_user(&self, input: &UserInput) -> Result<User> {
        let role = Role::parse(&input.role)?;
        self.require_role_power(role)?;
        let name = Name::parse("user name", &input.name)?;
        let email = parse_email(input.email.as_deref())?;
        let client_id = self.client_id(role, input.client.as_deref())?;
        let password_hash = match &input.password {
            Some(p) => Some(crate::auth::hash_password(p)?),
            None => None,
        };
        Ok(self.fjord.store().insert_user(&NewUser {
            name,
            email,
            role,
            client_id,
            password_hash,
        })?)
    }

    /// Changes a user's email, role, client and whether it may sign in. Disabling a user
    /// ends its sessions.
    pub fn update_user(&self, name: &str, input: &UserInput, disabled: bool) -> Result<User> {
        let user = self.user(name)?;
        let role = Role::parse(&input.role)?;
        self.require_role_power(user.role)?;
        self.require_role_power(role)?;
        if self.actor.user_id == Some(user.id) && (role != user.role || disabled) {
            return Err(Error::Refused(
                "you may not change your own role or disable yourself: ask another \
                 administrator"
                    .into(),
            ));
        }
        let email = parse_email(input.email.as_deref())?;
        if email != user.email && !self.may(Action::ActAsUsers) {
            return Err(Error::Forbidden(format!(
                "{} ({}) may not change the email address of user {}: their login links are \
                 mailed there; an administrator changes it",
                self.actor.name,
                self.actor.role.title().to_lowercase(),
                user.name
            )));
        }
        let update = UserUpdate {
            email,
            role,
            client_id: self.client_id(role, input.client.as_deref())?,
            disabled,
        };
        Ok(self.fjord.store().update_user(user.id, &update)?)
    }

    pub fn delete_user(&self, name: &str) -> Result<()> {
        let user = self.user(name)?;
        self.require_role_power(user.role)?;
        if self.actor.user_id == Some(user.id) {
            return Err(Error::Refused("you may not delete yourself".into()));
        }
        Ok(self.fjord.store().delete_user(user.id)?)
    }

    /// Sets a user's password. One's own needs the current one (unless one has none yet,
    /// after a login link); another's needs the right to manage that user. Every session of
    /// the user but the caller's ends.
    pub fn set_password(
        &self,
        name: &str,
        current: Option<&str>,
        new_password: &str,
    ) -> Result<()> {
        let user = self.user(name)?;
        let own = self.actor.user_id == Some(user.id);
        if own {
            if self.fjord.store().password_hash(user.id)?.is_some() {
                self.fjord
                    .check_own_password(user.id, current.unwrap_or_default())?;
            }
        } else {
            self.require_role_power(user.role)?;
            self.require(Action::ActAsUsers)?;
        }
        let hash = crate::auth::hash_password(new_password)?;
        self.fjord.store().set_password_hash(user.id, &hash)?;
        if !own {
            self.fjord.store().delete_sessions(user.id)?;
        }
        Ok(())
    }

    /// Makes a one-time login link for a user and gets it to them: shown to the user itself
    /// or an administrator; for anyone else who manages the user, mailed to the user's own
    /// address and never shown (without an address or mail set up, no link is made).
    pub fn send_login_link(&self, name: &str) -> Result<LinkDelivery> {
        let user = self.user(name)?;
        let own = self.actor.user_id == Some(user.id);
        if !own {
            self.require_role_power(user.role)?;
        }
        if own || self.may(Action::ActAsUsers) {
            let token = self.fjord.make_login_link(&user)?;
            return Ok(LinkDelivery::Shown(self.fjord.login_link_url(&token)?));
        }
        let withheld = |why: String| {
            Ok(LinkDelivery::Withheld(format!(
                "no login link was made for {}: {why}; an administrator can make one",
                user.name
            )))
        };
        let Some(to) = user.email.clone() else {
            return withheld("they have no email address to mail it to".into());
        };
        let Some(settings) = self.fjord.mail_settings()? else {
            return withheld("fjord has no mail set up".into());
        };
        let token = self.fjord.make_login_link(&user)?;
        let mail = crate::notify::Mail {
            to: to.clone(),
            subject: "fjord: your login link".into(),
            body: format!(
                "{} made you a login link for fjord, the hosting panel. It signs you in once, \
                 within a day; then set your password:\n\n{}\n",
                self.actor.name,
                self.fjord.login_link_url(&token)?
            ),
        };
        match self.fjord.deliver(&settings, &mail) {
            Ok(()) => Ok(LinkDelivery::Mailed(to)),
            Err(e) => {
                // The link reached nobody: it must not stay valid.
                self.fjord.forget_login_link(&token)?;
                withheld(format!("mailing it failed ({e})"))
            }
        }
    }

    /// Whether the acting user has a password yet (one who signed in with a login link may
    /// not).
    pub fn has_password(&self) -> Result<bool> {
        let id = self.own_user_id()?;
        Ok(self.fjord.store().password_hash(id)?.is_some())
    }

    pub fn api_tokens(&self) -> Result<Vec<ApiToken>> {
        let id = self.own_user_id()?;
        Ok(self.fjord.store().api_tokens(id)?)
    }

    /// A new API token of the actor's; its secret is in the answer, and only there.
    pub fn create_api_token(&self, name: &str) -> Result<(ApiToken, String)> {
        let id = self.own_user_id()?;
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
            return Err(model::Invalid::new(
                "token name",
                name,
                "must be 1 to 100 characters without control characters",
            )
            .into());
        }
        self.fjord.make_api_token(id, name)
    }

    pub fn revoke_api_token(&self, token_id: i64) -> Result<()> {
        let id = self.own_user_id()?;
        Ok(self.fjord.store().delete_api_token(id, token_id)?)
    }

    fn own_user_id(&self) -> Result<i64> {
        self.actor
            .user_id
            .ok_or_else(|| Error::Refused("API tokens belong to users: sign in as one".into()))
    }
}
