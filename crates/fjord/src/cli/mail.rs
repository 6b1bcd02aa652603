//! `fjord mail` and `fjord client`: how fjord sends mail, and where it goes.

use std::process::ExitCode;

use clap::Subcommand;
use engine::model::{AbsPath, EmailAddress, MailSettings};
use engine::{Error, Fjord};

use crate::outln;

#[derive(Subcommand, Debug)]
pub enum MailCmd {
    /// Show how fjord sends mail.
    Show,
    /// Send through an SMTP relay.
    Smtp {
        /// HOST:PORT, for example mail.example.com:587.
        relay: String,
        /// The sender of fjord's mail.
        #[arg(long, value_name = "ADDRESS")]
        from: String,
        /// Upgrade the connection with STARTTLS (certificates checked against the web's roots).
        #[arg(long)]
        starttls: bool,
    },
    /// Send through the machine's sendmail.
    Sendmail {
        #[arg(long, value_name = "ADDRESS")]
        from: String,
        #[arg(long, default_value = "/usr/sbin/sendmail", value_name = "PATH")]
        path: String,
    },
    /// Send no mail.
    Off,
}

pub fn mail(fjord: &Fjord, cmd: MailCmd) -> Result<ExitCode, Error> {
    let from = |f: &str| EmailAddress::parse("--from", f);
    match cmd {
        MailCmd::Show => {}
        MailCmd::Smtp {
            relay,
            from: sender,
            starttls,
        } => fjord.set_mail(Some(&MailSettings::smtp(&relay, starttls, from(&sender)?)?))?,
        MailCmd::Sendmail { from: sender, path } => {
            fjord.set_mail(Some(&MailSettings::Sendmail {
                path: AbsPath::parse("sendmail path", &path)?,
                from: from(&sender)?,
            }))?
        }
        MailCmd::Off => fjord.set_mail(None)?,
    }
    match fjord.mail_settings()? {
        Some(settings) => outln!("mail goes through {}", settings.describe()),
        None => outln!(
            "fjord sends no mail (set it up with `fjord mail smtp` or `fjord mail sendmail`)"
        ),
    }
    Ok(ExitCode::SUCCESS)
}
