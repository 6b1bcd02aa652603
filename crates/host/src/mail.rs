//! Sending mail: through an SMTP relay (plain, or STARTTLS with rustls) or the machine's
//! sendmail. lettre builds the message; sendmail is run by fjord itself, so that it dies
//! with its dispatcher like every child.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::{Message, SmtpTransport, Transport};

use crate::{HostError, Result};

pub enum MailTransport<'a> {
    Smtp {
        host: &'a str,
        port: u16,
        starttls: bool,
    },
    Sendmail {
        path: &'a std::path::Path,
    },
}

/// Sends one plain-text message.
pub fn send_mail(
    transport: &MailTransport,
    from: &str,
    to: &str,
    subject: &str,
    body: &str,
) -> Result<()> {
    let failed = |e: &dyn std::fmt::Display| HostError::Mail(format!("to {to}: {e}"));
    let message = Message::builder()
        .from(from.parse().map_err(|e| failed(&e))?)
        .to(to.parse().map_err(|e| failed(&e))?)
        .subject(subject)
        .header(ContentType::TEXT_PLAIN)
        .body(body.to_string())
        .map_err(|e| failed(&e))?;
    match transport {
        MailTransport::Smtp {
            host,
            port,
            starttls,
        } => {
            let builder = if *starttls {
                SmtpTransport::starttls_relay(host).map_err(|e| failed(&e))?
            } else {
                SmtpTransport::builder_dangerous(*host)
            };
            let smtp = builder
                .port(*port)
                .timeout(Some(Duration::from_secs(20)))
                .build();
            smtp.send(&message).map_err(|e| failed(&e))?;
        }
        MailTransport::Sendmail { path } => {
            // Through fjord's own spawn point, like every process it starts.
            use std::io::Write;
            let mut child = crate::process::child_command(&path.display().to_string())
                .args(["-i", "-f", from, "--", to])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .map_err(|e| failed(&e))?;
            if let Some(mut stdin) = child.stdin.take() {
                stdin
                    .write_all(&message.formatted())
                    .map_err(|e| failed(&e))?;
            }
            let out = child.wait_with_output().map_err(|e| failed(&e))?;
            if !out.status.success() {
                return Err(failed(&format!(
                    "sendmail {}: {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                )));
            }
        }
    }
    Ok(())
}
