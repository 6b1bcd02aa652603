//! `fjord mail` and `fjord client`: how fjord sends mail, and where it goes.

use std::process::ExitCode;

use clap::Subcommand;
use engine::config::Config;
use engine::model::{AbsPath, EmailAddress, MailSettings};
use engine::{Error, Fjord};

use crate::outln;

#[derive(Subcommand, Debug)]
pub enum MailCmd {
    /// Show how fjord sends mail (and whether the config file's [mail] decides it).
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

pub fn mail(fjord: &Fjord, config: &Config, cmd: MailCmd) -> Result<ExitCode, Error> {
    let from = |f: &str| EmailAddress::parse("--from", f);
    if !matches!(cmd, MailCmd::Show) {
        config.refuse_mail_change()?;
    }
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
    let current = fjord.mail_settings()?;
    match &current {
        Some(settings) => outln!("mail goes through {}", settings.describe()),
        None => outln!(
            "fjord sends no mail (set it up with `fjord mail smtp` or `fjord mail sendmail`)"
        ),
    }
    if let (Some(wanted), Some(file)) = (&config.mail, &config.file) {
        let file = file.path.display();
        if *wanted == current {
            outln!("(set by the [mail] table of {file})");
        } else {
            outln!(
                "the [mail] table of {file} says {}: applied when `fjord serve` or `fjord \
                 dispatch` starts",
                wanted
                    .as_ref()
                    .map_or_else(|| "no mail".to_string(), |s| s.describe())
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
