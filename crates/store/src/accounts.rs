//! The panel's side of the state: users, sessions, API tokens, one-time login links, failed
//! logins, clients' quotas and platforms, and the paged site list.
//!
//! Secrets are stored only as SHA-256 hashes (session ids, tokens, links) or argon2id PHC
//! strings (passwords); the engine makes and checks them.

use model::{Client, EmailAddress, Name, Role, Site, SiteStatus, User};

use crate::Result;

#[derive(Debug, Clone)]
pub struct NewUser {
    pub name: Name,
    pub email: Option<EmailAddress>,
    pub role: Role,
    pub client_id: Option<i64>,
    pub password_hash: Option<String>,
}

/// What may change on a user (its name and id stay).
#[derive(Debug, Clone)]
pub struct UserUpdate {
    pub email: Option<EmailAddress>,
    pub role: Role,
    pub client_id: Option<i64>,
    pub disabled: bool,
}

/// A live session: whose it is and the CSRF token its forms must carry.
#[derive(Debug, Clone)]
pub struct SessionRecord {
    pub user: User,
    pub csrf: String,
    pub created_at: i64,
}

/// An API token as its owner sees it listed: never its secret.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ApiToken {
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    /// Unix milliseconds.
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

/// A client with what the panel shows beside it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ClientSummary {
    pub client: Client,
    pub sites: i64,
    pub users: i64,
    /// The platforms its users may put sites on.
    pub platforms: Vec<i64>,
}

/// A page of the site list.
#[derive(Debug, Clone, Default)]
pub struct SiteQuery {
    /// A part of the site's name or of one of its aliases.
    pub search: Option<String>,
    pub status: Option<SiteStatus>,
    pub platform_id: Option<i64>,
    /// Only this client's sites (a client user's view).
    pub client_id: Option<i64>,
    pub offset: u64,
    pub limit: u64,
}

#[derive(Debug, Clone)]
pub struct SitePage {
    pub sites: Vec<Site>,
    /// How many sites match, over all pages.
    pub total: u64,
}

/// Failed logins counted over a window, as the throttle reads them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoginFailures {
    /// For the user name, from every address.
    pub account: u64,
    /// For the user name, from the address asking.
    pub account_from_address: u64,
    /// From the address asking, for any name.
    pub address: u64,
}

pub trait Accounts: Send + Sync {
    /// Records a user; `Conflict` if the name is taken.
    fn insert_user(&self, user: &NewUser) -> Result<User>;
    fn user(&self, id: i64) -> Result<User>;
    fn user_by_name(&self, name: &str) -> Result<User>;
    /// Every user, or a client's.
    fn users(&self, client_id: Option<i64>) -> Result<Vec<User>>;
    fn user_count(&self) -> Result<u64>;
    fn update_user(&self, id: i64, update: &UserUpdate) -> Result<User>;
    fn delete_user(&self, id: i64) -> Result<()>;
    fn password_hash(&self, user_id: i64) -> Result<Option<String>>;
    fn set_password_hash(&self, user_id: i64, hash: &str) -> Result<()>;

    fn insert_session(
        &self,
        token_sha256: &str,
        user_id: i64,
        csrf: &str,
        address: &str,
    ) -> Result<()>;
    /// The session, if it exists, its user is enabled and it is neither idle longer than
    /// `idle_ms` nor older than `max_ms`; marks it seen. Expired sessions are removed.
    fn session(
        &self,
        token_sha256: &str,
        idle_ms: i64,
        max_ms: i64,
    ) -> Result<Option<SessionRecord>>;
    fn delete_session(&self, token_sha256: &str) -> Result<()>;
    /// Ends every session of a user; returns how many there were.
    fn delete_sessions(&self, user_id: i64) -> Result<u64>;

    fn insert_login_link(&self, token_sha256: &str, user_id: i64, expires_at: i64) -> Result<()>;
    /// Takes a link: it works once, before it expires, for an enabled user.
    fn take_login_link(&self, token_sha256: &str) -> Result<Option<User>>;

    fn insert_api_token(&self, user_id: i64, name: &str, token_sha256: &str) -> Result<ApiToken>;
    fn api_tokens(&self, user_id: i64) -> Result<Vec<ApiToken>>;
    /// Revokes one of a user's tokens; `NotFound` if it is not theirs.
    fn delete_api_token(&self, user_id: i64, id: i64) -> Result<()>;
    /// The enabled user a token belongs to; marks the token used.
    fn api_token_user(&self, token_sha256: &str) -> Result<Option<User>>;

    fn record_login_failure(&self, user_name: &str, address: &str) -> Result<()>;
    /// Failures since `since` (Unix ms) for this user name: from anywhere, from this address;
    /// and from this address for any name.
    fn login_failures(&self, user_name: &str, address: &str, since: i64) -> Result<LoginFailures>;
    /// Forgets the failures of this user name from this address (it signed in from there).
    fn clear_login_failures(&self, user_name: &str, address: &str) -> Result<()>;

    fn clients(&self) -> Result<Vec<ClientSummary>>;
    fn client_summary(&self, id: i64) -> Result<ClientSummary>;
    fn client_by_name(&self, name: &str) -> Result<Client>;
    /// The names of these clients (those that exist), in one query.
    fn client_names(&self, ids: &[i64]) -> Result<std::collections::HashMap<i64, String>>;
    fn set_client_quota(&self, id: i64, quota: Option<u32>) -> Result<()>;
    fn set_client_platforms(&self, id: i64, platform_ids: &[i64]) -> Result<()>;
    /// The platforms a client's users may put sites on (none for a client that is gone).
    fn client_platforms(&self, id: i64) -> Result<Vec<i64>>;

    fn site_page(&self, query: &SiteQuery) -> Result<SitePage>;
    /// The sites whose backups take the most room (a client's, or all): name, bytes, count.
    fn backup_use(&self, client_id: Option<i64>, limit: u32) -> Result<Vec<(String, i64, i64)>>;
    /// How many sites are in each status (a client's, or all).
    fn site_counts(&self, client_id: Option<i64>) -> Result<Vec<(SiteStatus, u64)>>;
}
