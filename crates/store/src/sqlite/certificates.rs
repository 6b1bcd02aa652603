//! HTTPS on SQLite: the installation's ACME account and each site's certificate. The `Store`
//! impl forwards to these; a task's effect records them through `set_*`.

use super::*;

impl SqliteStore {
    pub(super) fn acme_account(&self) -> Result<Option<AcmeAccount>> {
        self.with(|c| {
            Ok(c.query_row(
                "SELECT directory, email, ca_root, credentials_path, account_url
                 FROM acme_account WHERE id = 1",
                [],
                |r| {
                    Ok(AcmeAccount {
                        directory: r.get(0)?,
                        email: r.get(1)?,
                        ca_root: r.get(2)?,
                        credentials_path: r.get(3)?,
                        account_url: r.get(4)?,
                    })
                },
            )
            .optional()?)
        })
    }

    pub(super) fn site_certificate(&self, site_id: i64) -> Result<Option<SiteCertificate>> {
        self.with(|c| {
            let row = c
                .query_row(
                    "SELECT names, not_before, not_after, issuer, source, cert_path, key_path,
                            last_attempt_at, last_failure
                     FROM site_certificates WHERE site_id = ?1",
                    [site_id],
                    |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get(1)?,
                            r.get(2)?,
                            r.get(3)?,
                            r.get::<_, String>(4)?,
                            r.get(5)?,
                            r.get(6)?,
                            r.get(7)?,
                            r.get(8)?,
                        ))
                    },
                )
                .optional()?;
            let Some((
                names,
                not_before,
                not_after,
                issuer,
                source,
                cert_path,
                key_path,
                at,
                failure,
            )) = row
            else {
                return Ok(None);
            };
            let names: Vec<String> = serde_json::from_str(&names)
                .map_err(|e| corrupt(format!("site {site_id}'s certificate names: {e}")))?;
            let source = match source.as_str() {
                "acme" => CertSource::Acme,
                "own" => CertSource::Own,
                other => return Err(corrupt(format!("certificate source {other:?}"))),
            };
            Ok(Some(SiteCertificate {
                site_id,
                names,
                not_before,
                not_after,
                issuer,
                source,
                cert_path,
                key_path,
                last_attempt_at: at,
                last_failure: failure,
            }))
        })
    }

    pub(super) fn record_certificate_attempt(
        &self,
        site_id: i64,
        at: i64,
        failure: Option<&str>,
    ) -> Result<()> {
        self.with(|c| {
            c.execute(
                "UPDATE site_certificates SET last_attempt_at = ?2, last_failure = ?3
                 WHERE site_id = ?1",
                params![site_id, at, failure],
            )?;
            Ok(())
        })
    }
}

pub(super) fn set_acme_account(tx: &Connection, account: &AcmeAccount) -> Result<()> {
    tx.execute(
        "INSERT INTO acme_account (id, directory, email, ca_root, credentials_path, account_url, created_at)
         VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (id) DO UPDATE SET directory = ?1, email = ?2, ca_root = ?3,
             credentials_path = ?4, account_url = ?5, created_at = ?6",
        params![
            account.directory,
            account.email,
            account.ca_root,
            account.credentials_path,
            account.account_url,
            now_ms() / 1000
        ],
    )?;
    Ok(())
}

pub(super) fn set_site_certificate(tx: &Connection, cert: &SiteCertificate) -> Result<()> {
    let names = serde_json::to_string(&cert.names)
        .map_err(|e| corrupt(format!("certificate names: {e}")))?;
    tx.execute(
        "INSERT INTO site_certificates (site_id, names, not_before, not_after, issuer, source,
             cert_path, key_path, last_attempt_at, last_failure)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
         ON CONFLICT (site_id) DO UPDATE SET names = ?2, not_before = ?3, not_after = ?4,
             issuer = ?5, source = ?6, cert_path = ?7, key_path = ?8, last_attempt_at = ?9,
             last_failure = ?10",
        params![
            cert.site_id,
            names,
            cert.not_before,
            cert.not_after,
            cert.issuer,
            cert.source.as_str(),
            cert.cert_path,
            cert.key_path,
            cert.last_attempt_at,
            cert.last_failure
        ],
    )?;
    Ok(())
}
