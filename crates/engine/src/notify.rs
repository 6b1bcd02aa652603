//! Mail to a site's client: the login link of a site just installed, and the failure of a
//! task on one of its sites; to the administrators, a certificate renewal that keeps failing
//! and a dispatcher that stopped claiming tasks for a full disk; a server's daemon the
//! monitor restarted or could not restart.
//! Sent after the task's outcome is recorded, never as a step (a
//! mail cannot be rolled back); a mail that cannot be sent is logged on the task and changes
//! nothing else.

use model::{EmailAddress, MailSettings, Target, Task};

use crate::{Error, Fjord, Result};

const SETTING: &str = "mail";

/// Renewals failed in a row after which the administrators are told too: with the backoff
/// between them (1, 2, 4 h), about seven hours of failing, still weeks before it expires.
const RENEWAL_FAILURES_TO_TELL_ADMINISTRATORS: u32 = 3;

/// A message waiting for its task's outcome.
#[derive(Debug, Clone)]
pub struct Mail {
    pub to: EmailAddress,
    pub subject: String,
    pub body: String,
}

impl Fjord {
    pub fn mail_settings(&self) -> Result<Option<MailSettings>> {
        match self.store().setting(SETTING)? {
            Some(json) => Ok(Some(serde_json::from_str(&json).map_err(|e| {
                Error::Refused(format!(
                    "the mail settings in the state are unreadable: {e}"
                ))
            })?)),
            None => Ok(None),
        }
    }

    /// Sets (or with `None`, turns off) how fjord sends mail.
    pub fn set_mail(&self, settings: Option<&MailSettings>) -> Result<()> {
        let json = settings
            .map(|s| serde_json::to_string(s).expect("mail settings serialize"))
            .map(|s| s.to_string());
        Ok(self.store().set_setting(SETTING, json.as_deref())?)
    }

    /// Sets the email address of a client (created if new); `None` removes it.
    pub fn set_client_email(&self, client: &str, email: Option<&str>) -> Result<model::Client> {
        let name = model::Name::parse("client name", client)?;
        let email = email
            .map(|e| EmailAddress::parse("client email", e))
            .transpose()?;
        let client = self.store().client_by_name_or_insert(&name)?;
        self.store().set_client_email(client.id, email.as_ref())?;
        Ok(self.store().client(client.id)?)
    }

    /// Where mail about a site goes: its client's address, when mail is set up.
    pub(crate) fn site_recipient(
        &self,
        site: &model::Site,
    ) -> Option<(MailSettings, EmailAddress)> {
        let settings = self.mail_settings().ok()??;
        let client = self.store().client(site.client_id?).ok()?;
        Some((settings, client.email?))
    }

    /// Sends `mail`; logs on the task what happened.
    pub(crate) fn send(&self, settings: &MailSettings, mail: &Mail, log: &dyn Fn(&str)) {
        match self.deliver(settings, mail) {
            Ok(()) => log(&format!("mailed \"{}\" to {}", mail.subject, mail.to)),
            Err(e) => log(&format!("{e}")),
        }
    }

    /// Sends `mail` now.
    pub(crate) fn deliver(&self, settings: &MailSettings, mail: &Mail) -> host::Result<()> {
        match settings {
            MailSettings::Smtp {
                host,
                port,
                starttls,
                ..
            } => host::send_mail(
                &host::MailTransport::Smtp {
                    host,
                    port: *port,
                    starttls: *starttls,
                },
                settings.from().as_str(),
                mail.to.as_str(),
                &mail.subject,
                &mail.body,
            ),
            MailSettings::Sendmail { path, .. } => host::send_mail(
                &host::MailTransport::Sendmail {
                    path: path.as_path(),
                },
                settings.from().as_str(),
                mail.to.as_str(),
                &mail.subject,
                &mail.body,
            ),
        }
    }

    /// Tells a site's client that a task on the site failed.
    pub(crate) fn notify_failure(&self, task: &Task, error: &str, log: &dyn Fn(&str)) {
        let Target::Site(id) = task.target else {
            return;
        };
        let Ok(site) = self.store().site(id) else {
            return;
        };
        let Some((settings, to)) = self.site_recipient(&site) else {
            return;
        };
        let mail = Mail {
            to,
            subject: format!("fjord: {} of {} failed", task.kind.as_str(), site.name),
            body: format!(
                "The task {} ({}) on your site {} failed and was rolled back:\n\n{error}\n\n\
                 The site serves what it served before the task.\n",
                task.id,
                task.kind.as_str(),
                site.name
            ),
        };
        self.send(&settings, &mail, log);
    }

    /// Tells every administrator with an address that a site's certificate renewal has
    /// failed again, once it has failed several times in a row.
    pub(crate) fn notify_renewal_failure(&self, task: &Task, error: &str, log: &dyn Fn(&str)) {
        let Target::Site(id) = task.target else {
            return;
        };
        if task.kind != model::TaskKind::SiteHttps || task.queued_by != "renewal" {
            return;
        }
        let Ok(Some(cert)) = self.store().site_certificate(id) else {
            return;
        };
        if cert.renewal_attempts < RENEWAL_FAILURES_TO_TELL_ADMINISTRATORS {
            return;
        }
        let expires = model::time::utc_display(cert.not_after * 1000);
        self.mail_administrators(
            &format!(
                "fjord: the certificate of {} is not renewed ({} failures)",
                task.target_name, cert.renewal_attempts
            ),
            &format!(
                "Renewing the certificate of site {} has failed {} times in a row; the \
                 last time (task {}):\n\n{error}\n\nThe site serves its current \
                 certificate, which expires {expires} UTC; fjord tries again later.\n",
                task.target_name, cert.renewal_attempts, task.id
            ),
            log,
        );
    }

    /// Tells every administrator with an address that a dispatcher stopped claiming tasks for
    /// a full disk (once per pause: the disk guard calls it when the pause begins).
    pub(crate) fn notify_claims_paused(&self, notice: &str) {
        self.mail_administrators(
            "fjord: tasks are not being claimed (disk nearly full)",
            &format!(
                "A dispatcher stopped claiming tasks:\n\n{notice}.\n\nTasks already running \
                 go on; queued tasks wait and none is lost. Free space there (old backups: \
                 `fjord site backups`) or grow the file system; claims resume by themselves.\n"
            ),
            &|line| eprintln!("fjord: disk guard: {line}"),
        );
    }

    /// Mails every enabled administrator who has an address (when mail is set up).
    pub(crate) fn mail_administrators(&self, subject: &str, body: &str, log: &dyn Fn(&str)) {
        let Ok(Some(settings)) = self.mail_settings() else {
            return;
        };
        let Ok(users) = self.store().users(None) else {
            return;
        };
        for user in users {
            let Some(to) = user
                .email
                .filter(|_| user.role == model::access::Role::Administrator && !user.disabled)
            else {
                continue;
            };
            let mail = Mail {
                to,
                subject: subject.to_string(),
                body: body.to_string(),
            };
            self.send(&settings, &mail, log);
        }
    }
}
