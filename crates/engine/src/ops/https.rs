//! HTTPS: the installation's ACME account and each site's certificate (issued by the account,
//! or the site's own). Talking to a CA and writing keys are tasks; what can be refused at once
//! (a bad address, an own certificate that does not fit the site) is refused here.

use model::{HttpsAccountArgs, OwnCertificate, Target, TaskArgs, TaskKind};

use super::*;
use crate::{Error, Fjord, Result};

impl Fjord {
    /// Queues the registration of the installation's ACME account on `server` (the machine
    /// that reaches the CA): Let's Encrypt unless `directory` names another CA (or `staging`,
    /// Let's Encrypt's staging CA).
    pub fn https_account(
        &self,
        server: &str,
        email: &str,
        directory: Option<&str>,
        staging: bool,
        ca_root: Option<&str>,
        dry_run: bool,
    ) -> Result<Queued> {
        let directory = match (directory, staging) {
            (Some(_), true) => {
                return Err(Error::Refused(
                    "give either --directory or --staging, not both".into(),
                ));
            }
            (Some(d), false) => d,
            (None, true) => host::acme::LETS_ENCRYPT_STAGING,
            (None, false) => host::acme::LETS_ENCRYPT,
        };
        let args = HttpsAccountArgs::parse(directory, email, ca_root)?;
        let server = self.server(server)?;
        self.queue(
            Target::Server(server.id),
            TaskKind::HttpsAccount,
            TaskArgs::HttpsAccount(args),
            dry_run,
        )
    }

    /// Queues a certificate for a site covering its name and every alias: issued by the ACME
    /// account, or `own` (files an administrator names), which must fit the site now: its key
    /// matches, every name is covered and it is valid today.
    pub fn site_https(
        &self,
        name: &str,
        own: Option<OwnCertificate>,
        dry_run: bool,
    ) -> Result<Queued> {
        let site = self.site(name)?;
        crate::scripts::check_site_status(TaskKind::SiteHttps, &site, false)?;
        match &own {
            Some(own) => {
                let cert = model::AbsPath::parse("cert", &own.cert)?;
                let key = model::AbsPath::parse("key", &own.key)?;
                let names: Vec<String> = site.all_names().map(|n| n.to_string()).collect();
                host::certs::check_files(
                    cert.as_path(),
                    key.as_path(),
                    &names,
                    store::now_ms() / 1000,
                )
                .map_err(|e| Error::Refused(e.to_string()))?;
            }
            None => {
                if self.store().acme_account()?.is_none() {
                    return Err(Error::Refused(format!(
                        "site {}: no ACME account yet: make one with `fjord https account --email ADDRESS`",
                        site.name
                    )));
                }
            }
        }
        self.queue(
            Target::Site(site.id),
            TaskKind::SiteHttps,
            TaskArgs::SiteHttps { own },
            dry_run,
        )
    }

    /// Queues a batch of certificates on `server`: one for every site there that wants one
    /// (`scripts::https::https_issue`). Refused at once without an account, or when the server
    /// listens on no HTTPS address (no certificate would be served).
    pub fn https_issue(&self, server: &str, dry_run: bool) -> Result<Queued> {
        let server = self.server(server)?;
        if self.store().acme_account()?.is_none() {
            return Err(Error::Refused(
                "no ACME account yet: make one with `fjord https account --email ADDRESS`".into(),
            ));
        }
        let model::HttpService::Nginx(nginx) = &server.http;
        if nginx.https_listen.is_empty() {
            return Err(Error::Refused(format!(
                "server {} listens on no HTTPS address: no certificate would be served \
                 (fjord server edit {} --https-listen ADDRESS)",
                server.name, server.name
            )));
        }
        self.queue(
            Target::Server(server.id),
            TaskKind::HttpsIssue,
            TaskArgs::None,
            dry_run,
        )
    }

    /// A site's certificate as the state records it.
    pub fn site_certificate(&self, name: &str) -> Result<Option<store::SiteCertificate>> {
        let site = self.site(name)?;
        Ok(self.store().site_certificate(site.id)?)
    }

    /// How many more orders the account may place now under the CA's limit
    /// ([`model::https::orders_limit`]); none when fjord knows of no limit.
    pub(crate) fn acme_orders_room(
        &self,
        account: &store::AcmeAccount,
        now_ms: i64,
    ) -> Result<Option<usize>> {
        let Some(limit) = model::https::orders_limit(account.ca_root.is_some()) else {
            return Ok(None);
        };
        let window_start = now_ms - model::https::ORDERS_WINDOW_S * 1000;
        let placed = self.store().acme_orders_since(window_start)?;
        Ok(Some(limit.saturating_sub(placed)))
    }

    /// Queues a renewal of every certificate the ACME account issued that is due
    /// ([`model::renewal_due_at`]: before two thirds of its life, spread by site, backing off
    /// after failures), no more than leaves room under the CA's orders per account
    /// ([`model::https::ORDERS_PER_WINDOW`]). Called by every dispatcher: only the one that
    /// counts the attempt first queues it. Returns the queued tasks.
    pub fn queue_due_renewals(&self, now_ms: i64) -> Result<Vec<Task>> {
        let store = self.store();
        let Some(account) = store.acme_account()? else {
            return Ok(Vec::new());
        };
        let now = now_ms / 1000;
        let due: Vec<_> = store
            .renewable_certificates(now)?
            .into_iter()
            .filter(|(c, _)| {
                now >= model::renewal_due_at(
                    c.not_before,
                    c.not_after,
                    c.site_id,
                    c.renewal_attempts,
                    c.last_attempt_at,
                )
            })
            .collect();
        if due.is_empty() {
            return Ok(Vec::new());
        }
        let room = self
            .acme_orders_room(&account, now_ms)?
            .unwrap_or(usize::MAX);
        let mut queued = Vec::new();
        for (cert, name) in due {
            if queued.len() >= room {
                break;
            }
            // A certificate task already queued or running for the site renews it.
            let busy = store
                .active_tasks(Target::Site(cert.site_id))?
                .iter()
                .any(|t| t.kind == TaskKind::SiteHttps);
            if busy {
                continue;
            }
            let task =
                store::NewTask::with_args(TaskKind::SiteHttps, TaskArgs::SiteHttps { own: None });
            queued.extend(store.take_due_renewal(
                cert.site_id,
                &name,
                cert.renewal_attempts,
                now,
                task,
            )?);
        }
        if !queued.is_empty() {
            self.notify_dispatchers();
        }
        Ok(queued)
    }
}
