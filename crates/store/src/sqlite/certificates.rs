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
                    &format!(
                        "SELECT {CERTIFICATE_COLUMNS} FROM site_certificates WHERE site_id = ?1"
                    ),
                    [site_id],
                    certificate_row,
                )
                .optional()?;
            row.map(certificate_from_row).transpose()
        })
    }

    pub(super) fn renewable_certificates(
        &self,
        now: i64,
    ) -> Result<Vec<(SiteCertificate, String)>> {
        self.with(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {CERTIFICATE_COLUMNS}, s.name FROM site_certificates
                 JOIN sites s ON s.id = site_certificates.site_id
                 WHERE source = 'acme' AND s.status IN ('installed', 'disabled')
                   AND s.https != 'off'
                   AND not_before + (not_after - not_before) * 7 / 12 - 1 <= ?1
                 ORDER BY not_after, site_id"
            ))?;
            let rows = stmt
                .query_map([now], |r| {
                    Ok((certificate_row(r)?, r.get::<_, String>(11)?))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            rows.into_iter()
                .map(|(row, name)| Ok((certificate_from_row(row)?, name)))
                .collect()
        })
    }

    pub(super) fn take_due_renewal(
        &self,
        site_id: i64,
        site_name: &str,
        attempts: u32,
        now: i64,
        task: NewTask,
    ) -> Result<Option<Task>> {
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let moved = tx.execute(
                "UPDATE site_certificates SET renewal_attempts = renewal_attempts + 1,
                     last_attempt_at = ?3
                 WHERE site_id = ?1 AND renewal_attempts = ?2",
                params![site_id, attempts, now],
            )?;
            let queued = if moved == 1 {
                let task = insert_task(&tx, Target::Site(site_id), site_name, &task)?;
                tx.execute(
                    "UPDATE tasks SET queued_by = 'renewal' WHERE id = ?1",
                    [task.id],
                )?;
                Some(Task {
                    queued_by: "renewal".into(),
                    ..task
                })
            } else {
                None
            };
            tx.commit()?;
            Ok(queued)
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

const CERTIFICATE_COLUMNS: &str = "site_id, names, not_before, not_after, issuer, source,
    cert_path, key_path, last_attempt_at, last_failure, renewal_attempts";

type CertificateRow = (
    i64,
    String,
    i64,
    i64,
    String,
    String,
    String,
    String,
    Option<i64>,
    Option<String>,
    u32,
);

fn certificate_row(r: &rusqlite::Row) -> rusqlite::Result<CertificateRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
        r.get(9)?,
        r.get(10)?,
    ))
}

fn certificate_from_row(row: CertificateRow) -> Result<SiteCertificate> {
    let (
        site_id,
        names,
        not_before,
        not_after,
        issuer,
        source,
        cert_path,
        key_path,
        last_attempt_at,
        last_failure,
        renewal_attempts,
    ) = row;
    let names: Vec<String> = serde_json::from_str(&names)
        .map_err(|e| corrupt(format!("site {site_id}'s certificate names: {e}")))?;
    let source = match source.as_str() {
        "acme" => CertSource::Acme,
        "own" => CertSource::Own,
        other => return Err(corrupt(format!("certificate source {other:?}"))),
    };
    Ok(SiteCertificate {
        site_id,
        names,
        not_before,
        not_after,
        issuer,
        source,
        cert_path,
        key_path,
        last_attempt_at,
        last_failure,
        renewal_attempts,
    })
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
             cert_path, key_path, last_attempt_at, last_failure, renewal_attempts)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
         ON CONFLICT (site_id) DO UPDATE SET names = ?2, not_before = ?3, not_after = ?4,
             issuer = ?5, source = ?6, cert_path = ?7, key_path = ?8, last_attempt_at = ?9,
             last_failure = ?10, renewal_attempts = ?11",
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
            cert.last_failure,
            cert.renewal_attempts
        ],
    )?;
    Ok(())
}
