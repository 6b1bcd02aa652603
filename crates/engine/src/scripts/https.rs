//! HTTPS tasks: registering the ACME account, and giving a site its certificate. The CA is
//! asked before anything is written, so a refused or failed order leaves the host as it was;
//! every file is written with its undo journaled, keys and credentials readable by root only,
//! and the site's vhost switched to the new certificate in the same task.

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

/// Gives a site its certificate and serves it: ordered from the ACME account (HTTP-01 answered
/// by the site's own vhost, from fjord's challenge dir) or read from the files an
/// administrator named; checked; its key and chain written root's alone, outside any docroot;
/// then the vhost re-rendered with TLS in one tested nginx commit. Any failure before that
/// commit is over leaves the site serving what it served before.
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
            let challenges = render::acme_challenge_dir(&env.nginx_dir(&objects.server));
            let issued = x.acme_order(
                &ca,
                Path::new(&account.credentials_path),
                &names,
                &challenges,
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
    // A new pair goes beside the one served now, in a directory named by its chain's digest:
    // nginx keeps the old pair until the vhost naming the new one is tested and reloaded, and
    // a reload of another task's change meanwhile never meets a half-written pair.
    let site_dir = paths::site_tls_dir(&env.data_dir, site.id);
    let dir = site_dir.join(&host::sha256_hex(&chain)[..16]);
    x.make_dir(&site_dir)?;
    x.make_dir(&dir)?;
    let (chain_path, key_path) = (dir.join("chain.pem"), dir.join("key.pem"));
    x.write_file(&key_path, &key, 0o600)?;
    x.write_file(&chain_path, &chain, 0o600)?;
    let tls = model::TlsFiles {
        cert: model::AbsPath::parse("certificate", &chain_path.display().to_string())?,
        key: model::AbsPath::parse("key", &key_path.display().to_string())?,
    };
    let served = TaskObjects {
        extra: Extra {
            tls: Some(tls),
            ..objects.extra.clone()
        },
        ..objects.clone()
    };
    x.nginx(
        &env.nginx_ctl(&objects.server),
        vec![(
            env.vhost_path(&objects.server, site),
            Some(env.vhost(&served)?),
        )],
    )?;
    // The pair served before is named by no vhost now.
    if let Some(old) = &objects.extra.tls
        && let Some(old_dir) = old.cert.as_path().parent()
        && old_dir != dir
        && old_dir.parent() == Some(site_dir.as_path())
    {
        x.remove_tree(old_dir)?;
    }
    x.log(&format!(
        "certificate for {} from {}, valid until {}",
        info.names.join(", "),
        info.issuer,
        model::time::utc_display(info.not_after * 1000)
    ));
    let HttpService::Nginx(nginx) = &objects.server.http;
    if nginx.https_listen.is_empty() {
        x.log(&format!(
            "server {} listens on no HTTPS address: the certificate is served once it does \
             (fjord server edit {} --https-listen ADDRESS)",
            objects.server.name, objects.server.name
        ));
    } else if site.https.mode == model::HttpsMode::Off {
        x.log(&format!(
            "site {} has HTTPS off: the certificate is served once it is on \
             (fjord site edit {} --https on)",
            site.name, site.name
        ));
    }
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
        renewal_attempts: 0,
    }))
}

/// After a site is installed or verified: its certificate order, queued with the task's
/// success, when the installation has an ACME account, the site's server listens for HTTPS,
/// the site does not turn HTTPS off, and no certificate of the account's names every name of
/// the site (a new site, an added alias). A certificate of the administrator's own is theirs
/// to replace.
pub(super) fn certificate_wanted(objects: &TaskObjects, x: &mut dyn Steps) -> Result<TaskEffect> {
    let site = objects.site()?;
    let HttpService::Nginx(nginx) = &objects.server.http;
    if objects.extra.acme_account.is_none()
        || nginx.https_listen.is_empty()
        || site.https.mode == model::HttpsMode::Off
    {
        return Ok(TaskEffect::None);
    }
    let covered = match &objects.extra.certificate {
        None => false,
        Some(c) if c.source == CertSource::Own => true,
        Some(c) => site
            .all_names()
            .all(|n| c.names.iter().any(|named| named == n.as_str())),
    };
    if covered {
        return Ok(TaskEffect::None);
    }
    // No public CA issues for a name the machine or its network decides; an order would be
    // refused at every verify.
    if let Some(name) = site.all_names().find(|n| n.private_use().is_some()) {
        x.log(&format!(
            "site {}: no certificate is ordered for it: no public CA names {name}",
            site.name
        ));
        return Ok(TaskEffect::None);
    }
    x.log(&format!(
        "site {}: a certificate for its names is ordered next",
        site.name
    ));
    Ok(TaskEffect::QueueTask {
        target: model::Target::Site(site.id),
        target_name: site.name.to_string(),
        task: store::NewTask::with_args(
            model::TaskKind::SiteHttps,
            model::TaskArgs::SiteHttps { own: None },
        ),
    })
}

fn ca(directory: &str, ca_root: Option<&str>) -> host::acme::AcmeCa {
    host::acme::AcmeCa {
        directory: directory.to_string(),
        ca_root: ca_root.map(PathBuf::from),
    }
}
