//! Signing in: passwords (Argon2id), server-side sessions with their CSRF token, one-time
//! login links, API tokens, and the throttling of failed logins.
//!
//! Every secret handed out (session id, link, token) is 32 random bytes; the state keeps only
//! its SHA-256, so a copy of the state database signs no one in.

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use model::{Actor, User};
use store::ApiToken;

use crate::{Error, Fjord, Result};

/// A session unused this long ends.
pub const SESSION_IDLE_MS: i64 = 12 * 3600 * 1000;
/// No session lives longer than this, used or not.
pub const SESSION_MAX_MS: i64 = 7 * 24 * 3600 * 1000;
/// How long a one-time login link works.
pub const LOGIN_LINK_TTL_MS: i64 = 24 * 3600 * 1000;
/// Failed logins are counted over this window...
pub const FAILURE_WINDOW_MS: i64 = 15 * 60 * 1000;
/// ...and this many for one account from one address hold that account for that address,
/// and only there: a stranger's failures never lock its owner out.
pub const MAX_ACCOUNT_ADDRESS_FAILURES: u64 = 5;
/// This many from one address, for any names, hold that address.
pub const MAX_ADDRESS_FAILURES: u64 = 20;
/// An account failed this many times from everywhere together answers later, not never:
/// each try waits `ACCOUNT_DELAY_BASE_MS`, doubled for each further failure, up to
/// `ACCOUNT_DELAY_MAX_MS`. Guessing one password from many addresses slows down, and its
/// owner, whose right password is never refused for it, waits a few seconds at most.
pub const ACCOUNT_DELAY_AFTER: u64 = 5;
pub const ACCOUNT_DELAY_BASE_MS: u64 = 250;
pub const ACCOUNT_DELAY_MAX_MS: u64 = 4_000;

/// How long a try on an account that failed `failures` times (from everywhere) waits before
/// its password is checked.
pub fn account_delay(failures: u64) -> std::time::Duration {
    let ms = match failures.checked_sub(ACCOUNT_DELAY_AFTER) {
        None => 0,
        Some(doublings) => ACCOUNT_DELAY_BASE_MS
            .saturating_mul(1u64 << doublings.min(16))
            .min(ACCOUNT_DELAY_MAX_MS),
    };
    std::time::Duration::from_millis(ms)
}

/// A session just opened: the secret goes into the cookie, and nowhere else.
#[derive(Debug)]
pub struct NewSession {
    pub token: String,
    pub csrf: String,
    pub user: User,
}

/// A live session, as a request presents it.
#[derive(Debug, Clone)]
pub struct Session {
    pub user: User,
    pub csrf: String,
}

impl Session {
    pub fn actor(&self) -> Actor {
        self.user.actor()
    }
}

/// Argon2id with OWASP's 7 MiB, 5 passes, 1 lane: as hard to guess against as its 19 MiB,
/// 2 passes, for a third of the memory a login holds.
fn argon2() -> argon2::Argon2<'static> {
    let params = argon2::Params::new(7 * 1024, 5, 1, None).expect("valid Argon2 parameters");
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
}

/// One hash at a time: a burst of logins costs one hash's memory and leaves the panel's other
/// requests their share of the cores.
static HASHING: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn hashing() -> std::sync::MutexGuard<'static, ()> {
    HASHING.lock().unwrap_or_else(|p| p.into_inner())
}

/// An Argon2id PHC string of `password`, with a random salt.
pub fn hash_password(password: &str) -> Result<String> {
    model::access::check_password(password)?;
    let salt = host::random_secret(16)?;
    let _one = hashing();
    argon2()
        .hash_password_with_salt(password.as_bytes(), salt.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| Error::Refused(format!("cannot hash the password: {e}")))
}

fn password_matches(password: &str, hash: &str) -> bool {
    let _one = hashing();
    argon2().verify_password(password.as_bytes(), hash).is_ok()
}

/// The hash every unknown name is checked against, so that a wrong name costs as long as a
/// wrong password and the time of an answer does not tell which names exist.
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| {
        hash_password("fjord decoy password, never anyone's")
            .unwrap_or_else(|_| "$argon2id$v=19$m=19456,t=2,p=1$AAAAAAAAAAA$".into())
    })
}

fn new_secret() -> Result<(String, String)> {
    let token = host::random_secret(32)?;
    let hash = host::sha256_hex(token.as_bytes());
    Ok((token, hash))
}

impl Fjord {
    /// How long a login for `name` waits before its password is checked (the caller waits,
    /// without holding a thread): see [`account_delay`].
    pub fn login_delay(&self, name: &str) -> Result<std::time::Duration> {
        let since = store::now_ms() - FAILURE_WINDOW_MS;
        let failures = self.store().login_failures(name, "", since)?;
        Ok(account_delay(failures.account))
    }

    /// Signs a user in with name and password, from `address` (the client's real IP, see
    /// `fjord serve --trusted-proxy`). Refused, the same way for a wrong name and a wrong
    /// password; throttled per account from that address and per address, so that failures
    /// from elsewhere never refuse the right password (they only delay it, `login_delay`).
    pub fn login(&self, name: &str, password: &str, address: &str) -> Result<NewSession> {
        let since = store::now_ms() - FAILURE_WINDOW_MS;
        let failures = self.store().login_failures(name, address, since)?;
        if failures.account_from_address >= MAX_ACCOUNT_ADDRESS_FAILURES
            || failures.address >= MAX_ADDRESS_FAILURES
        {
            return Err(Error::Throttled {
                retry_after_s: (FAILURE_WINDOW_MS / 1000) as u64,
            });
        }
        let user = match self.store().user_by_name(name) {
            Ok(user) => Some(user),
            Err(store::StoreError::NotFound(_)) => None,
            Err(e) => return Err(e.into()),
        };
        let hash = match &user {
            Some(u) => self.store().password_hash(u.id)?,
            None => None,
        };
        let ok = match &hash {
            Some(hash) => password_matches(password, hash),
            None => {
                password_matches(password, decoy_hash());
                false
            }
        };
        match user {
            Some(user) if ok && !user.disabled => {
                self.store().clear_login_failures(name, address)?;
                self.open_session(user, address)
            }
            _ => {
                self.store().record_login_failure(name, address)?;
                Err(Error::Unauthenticated("wrong user name or password".into()))
            }
        }
    }

    fn open_session(&self, user: User, address: &str) -> Result<NewSession> {
        let (token, hash) = new_secret()?;
        let csrf = host::random_secret(32)?;
        self.store()
            .insert_session(&hash, user.id, &csrf, address)?;
        Ok(NewSession { token, csrf, user })
    }

    /// The session a cookie names, if it is live.
    pub fn session(&self, token: &str) -> Result<Option<Session>> {
        let hash = host::sha256_hex(token.as_bytes());
        Ok(self
            .store()
            .session(&hash, SESSION_IDLE_MS, SESSION_MAX_MS)?
            .map(|s| Session {
                user: s.user,
                csrf: s.csrf,
            }))
    }

    pub fn logout(&self, token: &str) -> Result<()> {
        Ok(self
            .store()
            .delete_session(&host::sha256_hex(token.as_bytes()))?)
    }

    /// Ends every session of the acting user, on every device.
    pub fn logout_everywhere(&self, actor: &Actor) -> Result<u64> {
        let Some(id) = actor.user_id else {
            return Ok(0);
        };
        Ok(self.store().delete_sessions(id)?)
    }

    /// A one-time login link's secret for `user`: it opens a session once, within a day.
    pub(crate) fn make_login_link(&self, user: &User) -> Result<String> {
        let (token, hash) = new_secret()?;
        self.store()
            .insert_login_link(&hash, user.id, store::now_ms() + LOGIN_LINK_TTL_MS)?;
        Ok(token)
    }

    /// Makes a login link void before anyone used it.
    pub(crate) fn forget_login_link(&self, token: &str) -> Result<()> {
        self.store()
            .take_login_link(&host::sha256_hex(token.as_bytes()))?;
        Ok(())
    }

    /// Opens a session with a one-time login link; the link is used up, whatever happens.
    pub fn login_with_link(&self, token: &str, address: &str) -> Result<NewSession> {
        let hash = host::sha256_hex(token.as_bytes());
        match self.store().take_login_link(&hash)? {
            Some(user) => self.open_session(user, address),
            None => Err(Error::Unauthenticated(
                "this login link is not valid: it was used, it expired, or it never existed".into(),
            )),
        }
    }

    /// The user an API token (`Authorization: Bearer fjord_…`) belongs to, if it is valid.
    pub fn token_user(&self, presented: &str) -> Result<Option<User>> {
        let Some(secret) = presented.strip_prefix(TOKEN_PREFIX) else {
            return Ok(None);
        };
        Ok(self
            .store()
            .api_token_user(&host::sha256_hex(secret.as_bytes()))?)
    }

    /// Checks a password of the acting user (before it changes its own password).
    pub(crate) fn check_own_password(&self, user_id: i64, password: &str) -> Result<()> {
        let hash = self.store().password_hash(user_id)?;
        if hash.is_some_and(|h| password_matches(password, &h)) {
            Ok(())
        } else {
            Err(Error::Unauthenticated(
                "the current password is wrong".into(),
            ))
        }
    }

    /// A new API token of the actor's; its secret is shown this once.
    pub(crate) fn make_api_token(&self, user_id: i64, name: &str) -> Result<(ApiToken, String)> {
        let (token, hash) = new_secret()?;
        let record = self.store().insert_api_token(user_id, name, &hash)?;
        Ok((record, format!("{TOKEN_PREFIX}{token}")))
    }
}

/// What every API token starts with, so that a leaked one is easy to recognise and scan for.
pub const TOKEN_PREFIX: &str = "fjord_";

/// Where `fjord serve` listens unless told otherwise: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8470";
const PANEL_URL_KEY: &str = "panel.url";

/// The panel's address as its users reach it, without a trailing `/`, if it is one: the rule
/// for `--url` and the config file's `panel.url` alike.
pub fn check_panel_url(url: &str) -> Result<&str, model::Invalid> {
    let url = url.trim_end_matches('/');
    if !(url.starts_with("http://") || url.starts_with("https://"))
        || url.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(model::Invalid::new(
            "panel url",
            url,
            "must be an http:// or https:// address without spaces",
        ));
    }
    Ok(url)
}

impl Fjord {
    /// The panel's address as users reach it (in login links): what `fjord serve` last
    /// listened on, unless set.
    pub fn panel_url(&self) -> Result<String> {
        Ok(self
            .store()
            .setting(PANEL_URL_KEY)?
            .unwrap_or_else(|| format!("http://{DEFAULT_LISTEN}")))
    }

    pub fn set_panel_url(&self, url: &str) -> Result<()> {
        let url = check_panel_url(url)?;
        Ok(self.store().set_setting(PANEL_URL_KEY, Some(url))?)
    }

    /// The panel address of a one-time login link's secret.
    pub fn login_link_url(&self, token: &str) -> Result<String> {
        Ok(format!("{}/login/link/{token}", self.panel_url()?))
    }

    /// Makes the first administrator, `name`, if there is no user yet; it signs in with a
    /// login link and sets its password then. Returns the link, or None if users exist.
    pub fn first_administrator(&self, name: &str) -> Result<Option<String>> {
        if self.store().user_count()? > 0 {
            return Ok(None);
        }
        let user = self.store().insert_user(&store::NewUser {
            name: model::Name::parse("user name", name)?,
            email: None,
            role: model::Role::Administrator,
            client_id: None,
            password_hash: None,
        })?;
        let token = self.make_login_link(&user)?;
        Ok(Some(self.login_link_url(&token)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fjord_with_user(name: &str, password: &str) -> (tempfile::TempDir, Fjord) {
        let dir = tempfile::tempdir().unwrap();
        let fjord = Fjord::open(dir.path()).unwrap();
        fjord
            .store()
            .insert_user(&store::NewUser {
                name: model::Name::parse("user name", name).unwrap(),
                email: None,
                role: model::Role::Administrator,
                client_id: None,
                password_hash: Some(hash_password(password).unwrap()),
            })
            .unwrap();
        (dir, fjord)
    }

    fn fail(f: &Fjord, name: &str, address: &str) {
        assert!(matches!(
            f.login(name, "not the password at all", address),
            Err(Error::Unauthenticated(_))
        ));
    }

    #[test]
    fn strangers_failing_on_an_account_never_lock_its_owner_out() {
        let password = "the owner's long password";
        let (_dir, f) = fjord_with_user("owner", password);
        // Many strangers, each up to its own limit on the account.
        for stranger in 0..6 {
            let address = format!("203.0.113.{stranger}");
            for _ in 0..MAX_ACCOUNT_ADDRESS_FAILURES {
                fail(&f, "owner", &address);
            }
            assert!(
                matches!(
                    f.login("owner", password, &address),
                    Err(Error::Throttled { .. })
                ),
                "an address that failed {MAX_ACCOUNT_ADDRESS_FAILURES} times on the account is held for it"
            );
        }
        // The owner's right password from an address that did not fail goes through.
        f.login("owner", password, "198.51.100.7").unwrap();
        // The account answers later, not never.
        assert_eq!(
            f.login_delay("owner").unwrap(),
            std::time::Duration::from_millis(ACCOUNT_DELAY_MAX_MS)
        );
    }

    #[test]
    fn an_address_failing_on_many_names_is_held_for_every_name_and_no_other_address_is() {
        let password = "the owner's long password";
        let (_dir, f) = fjord_with_user("owner", password);
        for i in 0..MAX_ADDRESS_FAILURES {
            fail(&f, &format!("guess{i}"), "203.0.113.9");
        }
        assert!(matches!(
            f.login("owner", password, "203.0.113.9"),
            Err(Error::Throttled { .. })
        ));
        f.login("owner", password, "203.0.113.10").unwrap();
    }

    #[test]
    fn signing_in_forgets_the_failures_of_that_address_only() {
        let password = "the owner's long password";
        let (_dir, f) = fjord_with_user("owner", password);
        for _ in 0..MAX_ACCOUNT_ADDRESS_FAILURES - 1 {
            fail(&f, "owner", "198.51.100.7");
            fail(&f, "owner", "203.0.113.1");
        }
        f.login("owner", password, "198.51.100.7").unwrap();
        fail(&f, "owner", "198.51.100.7");
        f.login("owner", password, "198.51.100.7").unwrap();
        fail(&f, "owner", "203.0.113.1");
        assert!(matches!(
            f.login("owner", password, "203.0.113.1"),
            Err(Error::Throttled { .. })
        ));
    }

    #[test]
    fn the_account_delay_doubles_from_its_threshold_and_stays_small() {
        assert_eq!(account_delay(0), std::time::Duration::ZERO);
        assert_eq!(
            account_delay(ACCOUNT_DELAY_AFTER - 1),
            std::time::Duration::ZERO
        );
        assert_eq!(
            account_delay(ACCOUNT_DELAY_AFTER).as_millis() as u64,
            ACCOUNT_DELAY_BASE_MS
        );
        assert_eq!(
            account_delay(ACCOUNT_DELAY_AFTER + 1).as_millis() as u64,
            2 * ACCOUNT_DELAY_BASE_MS
        );
        assert_eq!(
            account_delay(u64::MAX).as_millis() as u64,
            ACCOUNT_DELAY_MAX_MS
        );
    }

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let hash = hash_password("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=7168,t=5,p=1$"), "{hash}");
        assert!(password_matches("correct horse battery", &hash));
        assert!(!password_matches("correct horse battery!", &hash));
        assert_ne!(hash, hash_password("correct horse battery").unwrap());
        assert!(hash_password("short").is_err());
    }
}
