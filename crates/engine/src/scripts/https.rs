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
        "ACME account {} at {} for {}; sites made before it get their certificates with \
         `fjord https issue --server SERVER`",
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
    let tls = write_pair(env, site, &chain, &key, x)?;
    let served = with_tls(objects, &tls);
    x.nginx(
        &env.nginx_ctl(&objects.server),
        vec![(
            env.vhost_path(&objects.server, site),
            Some(env.vhost(&served)?),
        )],
    )?;
    set_old_pair_aside(env, objects, &tls, x)?;
    log_certificate(&info, x);
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
    Ok(TaskEffect::SetSiteCertificate(certificate_record(
        site.id, info, source, &tls,
    )))
}

/// Writes a site's new key and chain, root's alone (0600). A new pair goes beside the one
/// served now, in a directory named by its chain's digest: nginx keeps the old pair until the
/// vhost naming the new one is tested and reloaded, and a reload of another task's change
/// meanwhile never meets a half-written pair.
fn write_pair(
    env: &ScriptEnv,
    site: &Site,
    chain: &[u8],
    key: &[u8],
    x: &mut dyn Steps,
) -> Result<model::TlsFiles> {
    let site_dir = paths::site_tls_dir(&env.data_dir, site.id);
    let dir = site_dir.join(&host::sha256_hex(chain)[..16]);
    x.make_dir(&site_dir)?;
    x.make_dir(&dir)?;
    let (chain_path, key_path) = (dir.join("chain.pem"), dir.join("key.pem"));
    x.write_file(&key_path, key, 0o600)?;
    x.write_file(&chain_path, chain, 0o600)?;
    Ok(model::TlsFiles {
        cert: model::AbsPath::parse("certificate", &chain_path.display().to_string())?,
        key: model::AbsPath::parse("key", &key_path.display().to_string())?,
    })
}

/// A site's task objects as they are once `tls` is served.
fn with_tls(objects: &TaskObjects, tls: &model::TlsFiles) -> TaskObjects {
    TaskObjects {
        extra: Extra {
            tls: Some(tls.clone()),
            ..objects.extra.clone()
        },
        ..objects.clone()
    }
}

/// Sets aside the pair a site served before `tls`: once the vhost naming `tls` is live, no
/// vhost names it.
fn set_old_pair_aside(
    env: &ScriptEnv,
    objects: &TaskObjects,
    tls: &model::TlsFiles,
    x: &mut dyn Steps,
) -> Result<()> {
    let site_dir = paths::site_tls_dir(&env.data_dir, objects.site()?.id);
    if let Some(old) = &objects.extra.tls
        && let Some(old_dir) = old.cert.as_path().parent()
        && Some(old_dir) != tls.cert.as_path().parent()
        && old_dir.parent() == Some(site_dir.as_path())
    {
        x.remove_tree(old_dir)?;
    }
    Ok(())
}

fn log_certificate(info: &host::certs::CertInfo, x: &mut dyn Steps) {
    x.log(&format!(
        "certificate for {} from {}, valid until {}",
        info.names.join(", "),
        info.issuer,
        model::time::utc_display(info.not_after * 1000)
    ));
}

fn certificate_record(
    site_id: i64,
    info: host::certs::CertInfo,
    source: CertSource,
    tls: &model::TlsFiles,
) -> SiteCertificate {
    SiteCertificate {
        site_id,
        names: info.names,
        not_before: info.not_before,
        not_after: info.not_after,
        issuer: info.issuer,
        source,
        cert_path: tls.cert.as_path().display().to_string(),
        key_path: tls.key.as_path().display().to_string(),
        last_attempt_at: None,
        last_failure: None,
        renewal_attempts: 0,
    }
}

/// Orders a batch keeps in flight at once: an order is mostly waiting (for the CA to validate
/// and sign), so 16 keep a CA busy without this side doing more than making keys; more would
/// only queue at the CA, whose limits count orders, not how many are open at once.
pub const ORDERS_IN_FLIGHT: usize = 16;

/// The most vhosts one nginx commit of a batch names: 1,000 sites switch in one reload; a
/// larger fleet in one reload per thousand, so no one commit holds an unbounded config in
/// memory.
const VHOSTS_PER_COMMIT: usize = 1_000;

/// Gives every site of a server that wants a certificate ([`wants_certificate`]) one from the
/// ACME account, in one batch: the orders side by side ([`ORDERS_IN_FLIGHT`]), no more than
/// the CA's limit leaves room for (the rest deferred, and said), each issued pair checked and
/// written as [`site_https`] writes one, then every vhost switched in as few nginx commits as
/// [`VHOSTS_PER_COMMIT`] allows. A site whose order fails is named in the log and serves what
/// it served before; the task is then `warning`, and `failed` (having written nothing) when no
/// order succeeded. A failure after the orders (a vhost nginx rejects, a kill) rolls the whole
/// batch back: every site serves what it served before.
pub(super) fn https_issue(
    env: &ScriptEnv,
    objects: &TaskObjects,
    x: &mut dyn Steps,
) -> Result<TaskEffect> {
    let server = &objects.server;
    let account = objects.extra.acme_account.as_ref().ok_or_else(|| {
        Error::Refused(
            "no ACME account: make one with `fjord https account --email ADDRESS`".into(),
        )
    })?;
    let HttpService::Nginx(nginx) = &server.http;
    if nginx.https_listen.is_empty() {
        return Err(Error::Refused(format!(
            "server {} listens on no HTTPS address: no certificate would be served \
             (fjord server edit {} --https-listen ADDRESS)",
            server.name, server.name
        )));
    }
    let mut wanted: Vec<&TaskObjects> = Vec::new();
    for site_objects in &objects.extra.fleet {
        match wants_certificate(site_objects)? {
            Wanted::Yes => wanted.push(site_objects),
            Wanted::No => {}
            Wanted::PrivateName(name) => x.log(&format!(
                "site {}: no certificate is ordered for it: no public CA names {name}",
                site_objects.site()?.name
            )),
        }
    }
    x.log(&format!(
        "{} of the {} sites of server {} want a certificate",
        wanted.len(),
        objects.extra.fleet.len(),
        server.name
    ));
    if wanted.is_empty() {
        return Ok(TaskEffect::None);
    }
    let mut warnings = Vec::new();
    if let Some(room) = objects.extra.orders_room
        && room < wanted.len()
    {
        let deferred = wanted.split_off(room);
        let names: Vec<String> = deferred
            .iter()
            .map(|o| o.site().map(|s| s.name.to_string()))
            .collect::<Result<_>>()?;
        let said = format!(
            "{} sites deferred: the CA takes {} orders an account in {} h and leaves room for \
             {room} now; run `fjord https issue --server {}` again later for {}",
            deferred.len(),
            model::https::ORDERS_PER_WINDOW,
            model::https::ORDERS_WINDOW_S / 3_600,
            server.name,
            names.join(", ")
        );
        x.log(&said);
        warnings.push(format!(
            "{} sites deferred by the CA's limit",
            deferred.len()
        ));
    }
    if wanted.is_empty() {
        return Ok(TaskEffect::Warn(warnings.join("; ")));
    }
    let orders: Vec<Vec<String>> = wanted
        .iter()
        .map(|o| Ok(o.site()?.all_names().map(|n| n.to_string()).collect()))
        .collect::<Result<_>>()?;
    let ca = ca(&account.directory, account.ca_root.as_deref());
    let challenges = render::acme_challenge_dir(&env.nginx_dir(server));
    let Some(results) = x.acme_orders(
        &ca,
        Path::new(&account.credentials_path),
        &orders,
        &challenges,
        ORDERS_IN_FLIGHT,
    )?
    else {
        return Ok(TaskEffect::None);
    };

    let now = store::now_ms() / 1000;
    let mut issued = Vec::new();
    let mut failed = Vec::new();
    for ((site_objects, names), result) in wanted.iter().zip(&orders).zip(results) {
        let site = site_objects.site()?;
        let checked = result.map_err(Error::from).and_then(|pair| {
            let info = host::certs::check_pem(
                pair.chain_pem.as_bytes(),
                "the issued certificate",
                pair.key_pem.as_bytes(),
                "its key",
                names,
                now,
            )?;
            Ok((pair, info))
        });
        match checked {
            Ok((pair, info)) => issued.push((*site_objects, pair, info)),
            Err(e) => {
                x.log(&format!(
                    "site {}: no certificate ({e}); it serves what it served before",
                    site.name
                ));
                failed.push(site.name.to_string());
            }
        }
    }
    if issued.is_empty() {
        return Err(Error::Refused(format!(
            "no certificate was issued for the {} sites of server {} that want one (the log \
             says why for each): {}",
            failed.len(),
            server.name,
            failed.join(", ")
        )));
    }

    let mut served = Vec::new();
    for (site_objects, pair, info) in issued {
        let site = site_objects.site()?;
        let tls = write_pair(
            env,
            site,
            pair.chain_pem.as_bytes(),
            pair.key_pem.as_bytes(),
            x,
        )?;
        served.push((site_objects, tls, info));
    }
    let ctl = env.nginx_ctl(server);
    for chunk in served.chunks(VHOSTS_PER_COMMIT) {
        let changes = chunk
            .iter()
            .map(|(site_objects, tls, _)| {
                Ok((
                    env.vhost_path(server, site_objects.site()?),
                    Some(env.vhost(&with_tls(site_objects, tls))?),
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        x.nginx(&ctl, changes)?;
    }
    let mut effects = vec![TaskEffect::CountAcmeOrders(orders.len())];
    for (site_objects, tls, info) in served {
        set_old_pair_aside(env, site_objects, &tls, x)?;
        log_certificate(&info, x);
        effects.push(TaskEffect::SetSiteCertificate(certificate_record(
            site_objects.site()?.id,
            info,
            CertSource::Acme,
            &tls,
        )));
    }
    x.log(&format!(
        "{} certificates issued and served, {} nginx commits; {} orders failed",
        effects.len() - 1,
        effects.len().saturating_sub(1).div_ceil(VHOSTS_PER_COMMIT),
        failed.len()
    ));
    if !failed.is_empty() {
        warnings.push(format!(
            "{} of {} orders failed, those sites serve what they served before: {}",
            failed.len(),
            orders.len(),
            failed.join(", ")
        ));
    }
    if !warnings.is_empty() {
        effects.push(TaskEffect::Warn(warnings.join("; ")));
    }
    Ok(TaskEffect::Many(effects))
}

/// Whether a site wants a certificate from the ACME account.
enum Wanted {
    Yes,
    No,
    /// No public CA names it: an order would be refused.
    PrivateName(String),
}

/// A site wants a certificate from the ACME account when the installation has one, the site's
/// server listens for HTTPS, the site does not turn HTTPS off, and no certificate of the
/// account's names every name of the site (a new site, an added alias). A certificate of the
/// administrator's own is theirs to replace.
fn wants_certificate(objects: &TaskObjects) -> Result<Wanted> {
    let site = objects.site()?;
    let HttpService::Nginx(nginx) = &objects.server.http;
    if objects.extra.acme_account.is_none()
        || nginx.https_listen.is_empty()
        || site.https.mode == model::HttpsMode::Off
    {
        return Ok(Wanted::No);
    }
    let covered = match &objects.extra.certificate {
        None => false,
        Some(c) if c.source == CertSource::Own => true,
        Some(c) => site
            .all_names()
            .all(|n| c.names.iter().any(|named| named == n.as_str())),
    };
    if covered {
        return Ok(Wanted::No);
    }
    // No public CA issues for a name the machine or its network decides; an order would be
    // refused at every verify.
    if let Some(name) = site.all_names().find(|n| n.private_use().is_some()) {
        return Ok(Wanted::PrivateName(name.to_string()));
    }
    Ok(Wanted::Yes)
}

/// After a site is installed or verified: its certificate order, queued with the task's
/// success, when the site wants one ([`wants_certificate`]).
pub(super) fn certificate_wanted(objects: &TaskObjects, x: &mut dyn Steps) -> Result<TaskEffect> {
    let site = objects.site()?;
    match wants_certificate(objects)? {
        Wanted::No => return Ok(TaskEffect::None),
        Wanted::PrivateName(name) => {
            x.log(&format!(
                "site {}: no certificate is ordered for it: no public CA names {name}",
                site.name
            ));
            return Ok(TaskEffect::None);
        }
        Wanted::Yes => {}
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
