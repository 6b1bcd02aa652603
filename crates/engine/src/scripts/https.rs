//! HTTPS tasks: registering the ACME account, and giving a site its certificate. The CA is
//! asked before anything is written, so a refused or failed order leaves the host as it was;
//! every file is written with its undo journaled, keys and credentials readable by root only.

use store::{AcmeAccount, CertSource, SiteCertificate};

use super::*;
use crate::paths;

pub(super) fn https_account(
    env: &ScriptEnv,
    args: &model::TaskArgs,
    x: &mut dyn Steps,
) -> Result<TaskEffect> {
    let model::TaskArgs::HttpsAccount(a) = args else {
        return Err(Error::Refused(
            "an https-account task needs its arguments".into(),
        ));
    };
    let ca = ca(&a.directory, a.ca_root.as_deref());
    let Some(account) = x.acme_account(&ca, &a.email)? else {
        return Ok(TaskEffect::None);
    };
    let credentials = paths::acme_credentials(&env.data_dir);
    x.write_file(&credentials, &account.credentials, 0o600)?;
    x.log(&format!(
        "ACME account {} at {} for {}",
        account.url, a.directory, a.email
    ));
    Ok(TaskEffect::SetAcmeAccount(AcmeAccount {
        directory: a.directory.clone(),
        email: a.email.clone(),
        ca_root: a.ca_root.clone(),
        credentials_path: credentials.display().to_string(),
        account_url: account.url,
    }))
}

pub(super) fn site_https(
    env: &ScriptEnv,
    objects: &TaskObjects,
    args: &model::TaskArgs,
    x: &mut dyn Steps,
) -> Result<TaskEffect> {
    let site = objects.site()?;
    let names: Vec<String> = site.all_names().map(|n| n.to_string()).collect();
    let own = match args {
        model::TaskArgs::SiteHttps { own } => own.as_ref(),
        _ => None,
    };
    let (chain, key, source) = match own {
        Some(own) => {
            let (chain, key) = host::certs::read_pair(Path::new(&own.cert), Path::new(&own.key))?;
            (chain, key, CertSource::Own)
        }
        None => {
            let account = objects.extra.acme_account.as_ref().ok_or_else(|| {
                Error::Refused(
                    "no ACME account: make one with `fjord https account --email ADDRESS`".into(),
                )
            })?;
            let ca = ca(&account.directory, account.ca_root.as_deref());
            let issued = x.acme_order(
                &ca,
                Path::new(&account.credentials_path),
                &names,
                &paths::acme_challenge_dir(&env.data_dir),
            )?;
            let Some(issued) = issued else {
                return Ok(TaskEffect::None);
            };
            (
                issued.chain_pem.into_bytes(),
                issued.key_pem.into_bytes(),
                CertSource::Acme,
            )
        }
    };
    // Checked again here, whatever its source: what the vhost will load must fit the site now.
    let (chain_name, key_name) = match own {
        Some(own) => (own.cert.clone(), own.key.clone()),
        None => ("the issued certificate".into(), "its key".into()),
    };
    let info = host::certs::check_pem(
        &chain,
        &chain_name,
        &key,
        &key_name,
        &names,
        store::now_ms() / 1000,
    )?;
    let dir = paths::site_tls_dir(&env.data_dir, site.id);
    x.make_dir(&dir)?;
    let (chain_path, key_path) = (dir.join("chain.pem"), dir.join("key.pem"));
    x.write_file(&key_path, &key, 0o600)?;
    x.write_file(&chain_path, &chain, 0o600)?;
    x.log(&format!(
        "certificate for {} from {}, valid until {}",
        info.names.join(", "),
        info.issuer,
        model::time::utc_display(info.not_after * 1000)
    ));
    Ok(TaskEffect::SetSiteCertificate(SiteCertificate {
        site_id: site.id,
        names: info.names,
        not_before: info.not_before,
        not_after: info.not_after,
        issuer: info.issuer,
        source,
        cert_path: chain_path.display().to_string(),
        key_path: key_path.display().to_string(),
        last_attempt_at: None,
        last_failure: None,
    }))
}

fn ca(directory: &str, ca_root: Option<&str>) -> host::acme::AcmeCa {
    host::acme::AcmeCa {
        directory: directory.to_string(),
        ca_root: ca_root.map(PathBuf::from),
    }
}
