//! Certificates from an ACME (RFC 8555) CA: an account, and orders answered by HTTP-01.
//!
//! The protocol is instant-acme's; this module keeps fjord's side of it: the account's
//! credentials in a file only root reads, challenge answers written beneath the challenge
//! directory and removed afterwards, a key fjord makes (ECDSA P-256), bounded polling, and a
//! failed order told in the CA's own words. The CA is reached over HTTPS through rustls (ring),
//! trusting the system's roots or, for a private CA, only the root given.

use std::path::{Path, PathBuf};
use std::time::Duration;

use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, ChallengeType, Identifier, NewOrder,
    OrderStatus, RetryPolicy,
};

use crate::beneath::Root;
use crate::{HostError, Result};

/// Let's Encrypt's production directory: fjord's default CA.
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";
/// Let's Encrypt's staging directory: for trying things out, its certificates are not trusted.
pub const LETS_ENCRYPT_STAGING: &str = "https://acme-staging-v02.api.letsencrypt.org/directory";

/// How long an order may take from its challenges being ready to its certificate being issued.
/// Let's Encrypt issues in seconds; a CA slower than this is treated as failing.
const ORDER_BOUND: Duration = Duration::from_secs(90);

/// How long any one exchange with the CA (an account, a whole order) may take: a CA that
/// accepts connections and never answers fails the task rather than holding it.
const EXCHANGE_BOUND: Duration = Duration::from_secs(180);

/// Where an account lives: its CA and, for a private CA, the only root trusted to reach it.
#[derive(Debug, Clone)]
pub struct AcmeCa {
    pub directory: String,
    pub ca_root: Option<PathBuf>,
}

/// A certificate chain and its private key, both PEM.
pub struct Issued {
    pub chain_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued")
            .field("chain_pem", &self.chain_pem.len())
            .field("key_pem", &"(secret)")
            .finish()
    }
}

/// A new account at a CA: its URL, and its credentials (its private key: a secret, for a file
/// only root reads).
pub struct NewAccount {
    pub url: String,
    pub credentials: Vec<u8>,
}

/// Registers a new account at `ca` for `email`, agreeing to the CA's terms.
pub fn create_account(ca: &AcmeCa, email: &str) -> Result<NewAccount> {
    let contact = format!("mailto:{email}");
    let (account, creds) = block_on(
        async {
            builder(ca)?
                .create(
                    &instant_acme::NewAccount {
                        contact: &[&contact],
                        terms_of_service_agreed: true,
                        only_return_existing: false,
                    },
                    ca.directory.clone(),
                    None,
                )
                .await
                .map_err(|e| acme_error(&ca.directory, "creating the account", e))
        },
        EXCHANGE_BOUND,
    )?;
    let credentials = serde_json::to_vec(&creds)
        .map_err(|e| HostError::Refused(format!("account credentials: {e}")))?;
    Ok(NewAccount {
        url: account.id().to_string(),
        credentials,
    })
}

/// The directory beneath which nginx serves `/.well-known/acme-challenge/`: answers are
/// written there as `<token>` files, strictly beneath it, never through a link.
pub struct ChallengeDir {
    root: Root,
}

impl ChallengeDir {
    pub fn open(dir: &Path) -> Result<ChallengeDir> {
        Ok(ChallengeDir {
            root: Root::open(dir)?,
        })
    }

    fn write(&self, token: &str, key_authorization: &str) -> Result<()> {
        self.root
            .replace_file(Path::new(token), 0o644, &mut key_authorization.as_bytes())?;
        Ok(())
    }

    fn remove(&self, token: &str) {
        let _ = self.root.remove_file(Path::new(token));
    }
}

/// Orders a certificate for `names` (the first is its subject) with the account whose
/// credentials are in `credentials`, answering each name's HTTP-01 challenge from `challenges`.
/// The key is made here (ECDSA P-256) and never leaves this process but in the result.
pub fn order(
    ca: &AcmeCa,
    credentials: &Path,
    names: &[String],
    challenges: &ChallengeDir,
) -> Result<Issued> {
    let creds = read_credentials(credentials)?;
    block_on(
        async {
            let account = load_account(ca, creds).await?;
            order_async(&account, &ca.directory, names, challenges).await
        },
        EXCHANGE_BOUND,
    )
}

/// Orders a certificate for each list of names in `orders`, at most `in_flight` at once, with
/// one account (loaded once). Each order succeeds or fails on its own, in the CA's words, and
/// is bounded in time as [`order`] is; the results are in the order of `orders`. Fails as a
/// whole only when the account cannot be loaded.
pub fn order_many(
    ca: &AcmeCa,
    credentials: &Path,
    orders: &[Vec<String>],
    challenges: &ChallengeDir,
    in_flight: usize,
) -> Result<Vec<Result<Issued>>> {
    use futures_util::StreamExt;
    let creds = read_credentials(credentials)?;
    // Every order is bounded on its own: the whole is bounded by how many rounds of
    // `in_flight` orders there are.
    let rounds = orders.len().div_ceil(in_flight.max(1)) as u32 + 1;
    block_on(
        async {
            let account = load_account(ca, creds).await?;
            let dir = ca.directory.as_str();
            let account = &account;
            Ok(
                futures_util::stream::iter(orders.iter().map(|names| async move {
                    tokio::time::timeout(
                        EXCHANGE_BOUND,
                        order_async(account, dir, names, challenges),
                    )
                    .await
                    .unwrap_or_else(|_| {
                        Err(HostError::Refused(format!(
                            "the CA at {dir} did not issue within {} s",
                            EXCHANGE_BOUND.as_secs()
                        )))
                    })
                }))
                .buffered(in_flight.max(1))
                .collect()
                .await,
            )
        },
        EXCHANGE_BOUND * rounds,
    )
}

async fn load_account(ca: &AcmeCa, creds: AccountCredentials) -> Result<Account> {
    builder(ca)?
        .from_credentials(creds)
        .await
        .map_err(|e| acme_error(&ca.directory, "loading the account", e))
}

/// One order; the challenge answers it wrote are removed whatever its outcome.
async fn order_async(
    account: &Account,
    dir: &str,
    names: &[String],
    challenges: &ChallengeDir,
) -> Result<Issued> {
    let mut written: Vec<String> = Vec::new();
    let result = answer_and_issue(account, dir, names, challenges, &mut written).await;
    for token in &written {
        challenges.remove(token);
    }
    result
}

async fn answer_and_issue(
    account: &Account,
    dir: &str,
    names: &[String],
    challenges: &ChallengeDir,
    written: &mut Vec<String>,
) -> Result<Issued> {
    let identifiers: Vec<Identifier> = names.iter().map(|n| Identifier::Dns(n.clone())).collect();
    let mut order = account
        .new_order(&NewOrder::new(&identifiers))
        .await
        .map_err(|e| acme_error(dir, "placing the order", e))?;

    let mut authorizations = order.authorizations();
    while let Some(authz) = authorizations.next().await {
        let mut authz = authz.map_err(|e| acme_error(dir, "reading an authorization", e))?;
        match authz.status {
            AuthorizationStatus::Pending => {}
            AuthorizationStatus::Valid => continue,
            other => {
                return Err(HostError::Refused(format!(
                    "the CA at {dir} holds the authorization for {} as {other:?}",
                    authz.identifier()
                )));
            }
        }
        let mut challenge = authz.challenge(ChallengeType::Http01).ok_or_else(|| {
            HostError::Refused(format!("the CA at {dir} offers no HTTP-01 challenge"))
        })?;
        let token = challenge.token.clone();
        if token.is_empty()
            || !token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(HostError::Refused(format!(
                "the CA at {dir} sent a challenge token that is not base64url: {token:?}"
            )));
        }
        challenges.write(&token, challenge.key_authorization().as_str())?;
        written.push(token);
        challenge
            .set_ready()
            .await
            .map_err(|e| acme_error(dir, "answering a challenge", e))?;
    }

    let retry = RetryPolicy::new()
        .initial_delay(Duration::from_millis(100))
        .backoff(1.5)
        .timeout(ORDER_BOUND);
    let status = order
        .poll_ready(&retry)
        .await
        .map_err(|e| acme_error(dir, "the order while validating its names", e))?;
    if status != OrderStatus::Ready {
        return Err(HostError::Refused(format!(
            "the CA at {dir} refused the order: {}",
            failed_challenges(&mut order).await
        )));
    }

    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .map_err(|e| HostError::Refused(format!("making the certificate's key: {e}")))?;
    let mut params = rcgen::CertificateParams::new(names.to_vec())
        .map_err(|e| HostError::Refused(format!("certificate names {names:?}: {e}")))?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    let csr = params
        .serialize_request(&key)
        .map_err(|e| HostError::Refused(format!("making the signing request: {e}")))?;
    order
        .finalize_csr(csr.der())
        .await
        .map_err(|e| acme_error(dir, "finalizing the order", e))?;
    let chain_pem = order
        .poll_certificate(&retry)
        .await
        .map_err(|e| acme_error(dir, "waiting for the certificate", e))?;
    Ok(Issued {
        chain_pem,
        key_pem: key.serialize_pem(),
    })
}

/// What the CA said about each challenge it found invalid (its problem documents' words).
async fn failed_challenges(order: &mut instant_acme::Order) -> String {
    let mut said = Vec::new();
    let mut authorizations = order.authorizations();
    while let Some(authz) = authorizations.next().await {
        let Ok(mut authz) = authz else { continue };
        let _ = authz.refresh().await;
        for challenge in &authz.challenges {
            if let Some(problem) = &challenge.error {
                said.push(format!(
                    "{}: {}",
                    authz.identifier(),
                    problem.detail.as_deref().unwrap_or("(no detail)")
                ));
            }
        }
    }
    if said.is_empty() {
        "the order became invalid (the CA gave no reason)".to_string()
    } else {
        said.join("; ")
    }
}

fn builder(ca: &AcmeCa) -> Result<instant_acme::AccountBuilder> {
    match &ca.ca_root {
        Some(root) => Account::builder_with_root(root).map_err(|e| {
            HostError::Refused(format!(
                "{}: not a CA root certificate in PEM: {e}",
                root.display()
            ))
        }),
        None => Account::builder().map_err(|e| {
            HostError::Refused(format!("the system's trusted roots cannot be loaded: {e}"))
        }),
    }
}

/// The CA's own words when it answered with a problem document; otherwise what failed.
fn acme_error(directory: &str, doing: &str, e: instant_acme::Error) -> HostError {
    match e {
        instant_acme::Error::Api(problem) => {
            let mut words = problem
                .detail
                .clone()
                .unwrap_or_else(|| "(no detail)".into());
            for sub in &problem.subproblems {
                words.push_str(&format!("; {sub}"));
            }
            HostError::Refused(format!(
                "the CA at {directory} refused {doing}: {words} ({})",
                problem.r#type.as_deref().unwrap_or("no problem type")
            ))
        }
        other => HostError::Refused(format!(
            "the CA at {directory} could not be reached {doing}: {}",
            error_chain(&other)
        )),
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}

fn read_credentials(path: &Path) -> Result<AccountCredentials> {
    let bytes = std::fs::read(path).map_err(|e| HostError::io(path, e))?;
    serde_json::from_slice(&bytes).map_err(|e| {
        HostError::Refused(format!(
            "{}: not ACME account credentials: {e}",
            path.display()
        ))
    })
}

fn block_on<T>(future: impl std::future::Future<Output = Result<T>>, bound: Duration) -> Result<T> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| HostError::Refused(format!("starting the ACME client: {e}")))?
        .block_on(async {
            tokio::time::timeout(bound, future)
                .await
                .unwrap_or_else(|_| {
                    Err(HostError::Refused(format!(
                        "the CA did not answer within {} s",
                        bound.as_secs()
                    )))
                })
        })
}
