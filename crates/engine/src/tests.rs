//! Use-case tests that need no host: the state only.

use std::sync::Arc;

use model::{SiteStatus, Target, TaskKind};

use crate::Fjord;
use crate::ops::{PlatformInput, ServerInput, SiteInput};

fn fjord_with_site() -> (tempfile::TempDir, Arc<Fjord>, i64) {
    let dir = tempfile::tempdir().unwrap();
    let fjord = Arc::new(Fjord::open(dir.path()).unwrap());
    let server = ServerInput {
        name: "t".into(),
        nginx_binary: "/usr/sbin/nginx".into(),
        nginx_config: "/etc/nginx/nginx.conf".into(),
        nginx_prefix: None,
        include_dir: "/etc/nginx/conf.d".into(),
        listen: vec!["127.0.0.1:8080".into()],
        https_listen: Vec::new(),
        reload: "signal".into(),
        files_owner: None,
        db: Vec::new(),
        php: Vec::new(),
        web_group: None,
        monitor: true,
        nginx_start: None,
        nginx_unit: None,
        remote: None,
    };
    fjord.add_server(&server, false).unwrap();
    let platform = PlatformInput {
        name: "p".into(),
        server: "t".into(),
        path: "/srv/fjord-unit-test-platform".into(),
        kind: "static".into(),
        ..Default::default()
    };
    fjord.add_platform(&platform, false).unwrap();
    let input = SiteInput {
        name: "a.example".into(),
        platform: "p".into(),
        ..Default::default()
    };
    fjord.add_site(&input, false).unwrap();
    let site = fjord.site("a.example").unwrap();
    fjord
        .store()
        .set_site_status(site.id, SiteStatus::Installed)
        .unwrap();
    (dir, fjord, site.id)
}

// 2026-11-18 11:06:40 UTC.
const NOW: i64 = 1_795_000_000_000;
const DAY: i64 = 86_400_000;

fn backups_queued(fjord: &Fjord, site: i64) -> usize {
    let filter = store::TaskFilter {
        target: Some(Target::Site(site)),
        ..Default::default()
    };
    fjord
        .tasks(&filter)
        .unwrap()
        .iter()
        .filter(|t| t.kind == TaskKind::SiteBackup)
        .count()
}

#[test]
fn scheduled_backups_come_due_once_per_fire_time() {
    let (_dir, fjord, site) = fjord_with_site();
    assert!(
        fjord.queue_due_backups(NOW).unwrap().is_empty(),
        "no schedule, no backups"
    );
    fjord
        .set_backup_policy(None, Some("0 3 * * *"), Some("last=3"))
        .unwrap();
    assert!(
        fjord.queue_due_backups(NOW).unwrap().is_empty(),
        "the first call sets the next time"
    );
    assert!(
        fjord.queue_due_backups(NOW + DAY / 2).unwrap().is_empty(),
        "not yet 03:00"
    );
    assert_eq!(
        fjord.queue_due_backups(NOW + DAY).unwrap().len(),
        1,
        "due at 03:00 the next day"
    );
    assert!(
        fjord.queue_due_backups(NOW + DAY).unwrap().is_empty(),
        "queued once"
    );
    // A dispatcher that was down for ten days queues one backup, not ten.
    let queued = fjord.queue_due_backups(NOW + 11 * DAY).unwrap();
    assert!(queued.len() <= 1);
    assert_eq!(
        backups_queued(&fjord, site),
        1,
        "the first is still queued, so no second one"
    );

    // A site's own schedule wins over the default; clearing it falls back.
    let (schedule, _) = fjord
        .set_backup_policy(Some("a.example"), Some("*/5 * * * *"), None)
        .unwrap();
    assert_eq!(schedule.as_deref(), Some("*/5 * * * *"));
    assert!(
        fjord
            .set_backup_policy(Some("a.example"), Some("61 * * * *"), None)
            .is_err()
    );
    assert!(
        fjord
            .set_backup_policy(None, None, Some("forever"))
            .is_err()
    );
    let (schedule, _) = fjord
        .set_backup_policy(Some("a.example"), Some(""), None)
        .unwrap();
    assert_eq!(schedule, None);
}

#[test]
fn secrets_are_readable_by_fjord_only() {
    use std::os::unix::fs::PermissionsExt;
    let (dir, _fjord, _) = fjord_with_site();
    let mode = |p: &str| {
        std::fs::metadata(dir.path().join(p))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("state.db"), 0o600);
    assert_eq!(mode("backups"), 0o700);
    assert_eq!(mode("journal"), 0o700);
}

/// A cron run holds its site until its outcome is recorded; the run of a dispatcher that
/// died is ended by the next recovery (its PHP died with it), so the site is not held for
/// good, while a live dispatcher's run is left alone.
#[test]
fn a_dead_dispatchers_cron_run_is_ended_by_recovery_and_frees_its_site() {
    let (_dir, fjord, site) = fjord_with_site();
    let store = fjord.store();
    while let Some(running) = store.claim_next("setup").unwrap() {
        assert!(
            store
                .finish_task(
                    running.task.id,
                    &running.claim,
                    model::TaskStatus::Success,
                    None,
                    &store::TaskEffect::None,
                )
                .unwrap()
        );
    }
    let live = crate::dispatch::Dispatcher::new(fjord.clone()).unwrap();
    assert!(
        store
            .take_due_cron(site, None, NOW, "1-deaddispatcher")
            .unwrap()
    );
    store
        .enqueue(
            Target::Site(site),
            "a.example",
            store::NewTask::new(TaskKind::SiteVerify),
        )
        .unwrap();
    assert!(
        store.claim_next("x").unwrap().is_none(),
        "the cron run holds the site"
    );
    let recovering = crate::dispatch::Dispatcher::new(fjord.clone()).unwrap();
    recovering.recover().unwrap();
    assert!(store.cron_runs().unwrap().is_empty());
    let cron = store.site_cron(site).unwrap();
    assert_eq!(cron.last_ok, Some(false));
    assert!(
        cron.last_message
            .as_deref()
            .unwrap_or_default()
            .contains("interrupted"),
        "{cron:?}"
    );
    let verify = store.claim_next("x").unwrap().expect("the site is free");
    assert!(
        store
            .finish_task(
                verify.task.id,
                &verify.claim,
                model::TaskStatus::Success,
                None,
                &store::TaskEffect::None,
            )
            .unwrap()
    );
    // A live dispatcher's run stays.
    store.set_site_cron(site, None, None).unwrap();
    assert!(store.take_due_cron(site, None, NOW, live.owner()).unwrap());
    recovering.recover().unwrap();
    assert_eq!(store.cron_runs().unwrap().len(), 1);
}

#[test]
fn names_that_are_not_public_are_claimed_only_when_an_administrator_allows_them() {
    use model::{Actor, Role};

    use crate::Error;
    use crate::ops::{Rename, SiteEdit};

    let (_dir, fjord, _) = fjord_with_site();
    let refused_as_private = |result: crate::Result<crate::ops::Queued>, name: &str| match result {
        Err(Error::Invalid(e)) => {
            let e = e.to_string();
            assert!(
                e.contains(name) && e.contains("is not a public host name"),
                "{e}"
            );
        }
        other => panic!("{name}: {other:?}"),
    };
    let new_site = |name: &str, aliases: &[&str], allow: bool| SiteInput {
        name: name.into(),
        platform: "p".into(),
        aliases: aliases.iter().map(|a| a.to_string()).collect(),
        allow_private_names: allow,
        ..Default::default()
    };
    let sites_before = fjord.sites(None).unwrap().len();
    refused_as_private(
        fjord.add_site(&new_site("localhost", &[], false), false),
        "localhost",
    );
    refused_as_private(
        fjord.add_site(&new_site("b.example", &["printer.local"], false), false),
        "printer.local",
    );
    let add_alias = |alias: &str, allow: bool| SiteEdit {
        add_aliases: vec![alias.into()],
        allow_private_names: allow,
        ..Default::default()
    };
    for alias in ["localhost", "dev.localhost", "intranet", "nas.home.arpa"] {
        refused_as_private(
            fjord.edit_site("a.example", &add_alias(alias, false), false),
            alias,
        );
    }
    let clone_to = |name| Rename {
        name,
        allow_private_name: false,
    };
    refused_as_private(
        fjord.clone_site("a.example", clone_to("copy.internal"), "p", false, false),
        "copy.internal",
    );
    refused_as_private(
        fjord.migrate_site("a.example", None, Some(clone_to("a")), None, false, false),
        "a",
    );
    assert_eq!(fjord.sites(None).unwrap().len(), sites_before);
    assert!(fjord.site("a.example").unwrap().aliases.is_empty());

    // Only an administrator may allow them; everyone else is refused before anything is read.
    for role in [Role::PlatformManager, Role::AccountManager, Role::Client] {
        let actor = Actor {
            user_id: Some(99),
            name: "someone".into(),
            role,
            client_id: (role == Role::Client).then_some(1),
        };
        let acting = fjord.acting(actor);
        assert!(
            matches!(
                acting.add_site(&new_site("localhost", &[], true)),
                Err(Error::Forbidden(_))
            ),
            "{role}"
        );
        assert!(
            matches!(
                acting.edit_site("a.example", &add_alias("localhost", true)),
                Err(Error::Forbidden(_) | Error::NotFound(_))
            ),
            "{role}"
        );
    }
    assert!(fjord.site("a.example").unwrap().aliases.is_empty());

    let admin = fjord.acting(Actor::operator());
    admin
        .edit_site("a.example", &add_alias("intranet", true))
        .unwrap();
    // A name allowed once stays: later edits of the site's other names need no allowance.
    fjord
        .edit_site("a.example", &add_alias("www.a.example", false), false)
        .unwrap();
    let aliases = fjord.site("a.example").unwrap().aliases;
    let aliases: Vec<&str> = aliases.iter().map(|a| a.as_str()).collect();
    assert_eq!(aliases, ["intranet", "www.a.example"]);
    admin.add_site(&new_site("localhost", &[], true)).unwrap();
}

#[test]
fn many_openers_of_one_fresh_data_dir_at_once_all_open_the_same_installation() {
    // Each round is a new data dir that 8 openers create and migrate at once, as processes do
    // when a dispatcher starts beside the first command (flock locks of separate opens
    // exclude each other between threads as between processes).
    for round in 0..10 {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("fjord");
        let start = Arc::new(std::sync::Barrier::new(8));
        let openers: Vec<_> = (0..8)
            .map(|_| {
                let (data_dir, start) = (data_dir.clone(), start.clone());
                std::thread::spawn(move || {
                    start.wait();
                    Fjord::open(&data_dir).map(|f| f.installation.clone())
                })
            })
            .collect();
        let ids: Vec<String> = openers
            .into_iter()
            .map(|o| {
                o.join()
                    .unwrap()
                    .unwrap_or_else(|e| panic!("round {round}: {e}"))
            })
            .collect();
        assert!(ids.iter().all(|id| *id == ids[0]), "round {round}: {ids:?}");
    }
}

#[test]
fn no_dispatcher_is_alive_until_one_holds_its_lock() {
    let dir = tempfile::tempdir().unwrap();
    let fjord = Arc::new(Fjord::open(dir.path()).unwrap());
    assert!(!fjord.dispatcher_alive().unwrap());
    let dispatcher = crate::dispatch::Dispatcher::new(fjord.clone()).unwrap();
    assert!(fjord.dispatcher_alive().unwrap());
    drop(dispatcher);
    assert!(!fjord.dispatcher_alive().unwrap());
}

/// Runs every queued task, recording `status` with `effect` for each.
fn finish_queued(fjord: &Fjord, status: model::TaskStatus, effect: &store::TaskEffect) {
    let store = fjord.store();
    while let Some(running) = store.claim_next("test").unwrap() {
        assert!(
            store
                .finish_task(running.task.id, &running.claim, status, None, effect)
                .unwrap()
        );
    }
}

fn renewals_queued(fjord: &Fjord, site: i64) -> Vec<model::Task> {
    let filter = store::TaskFilter {
        target: Some(Target::Site(site)),
        ..Default::default()
    };
    fjord
        .tasks(&filter)
        .unwrap()
        .into_iter()
        .filter(|t| t.kind == TaskKind::SiteHttps && t.queued_by == "renewal")
        .collect()
}

/// The dispatcher renews a certificate the account issued before two thirds of its life,
/// once however many dispatchers ask, again after a failure only once the backoff has passed,
/// and not at all once the renewal has succeeded (until the new one comes due); a site's own
/// certificate is never renewed.
#[test]
fn a_certificate_is_renewed_once_when_due_and_again_only_after_its_backoff() {
    let (_dir, fjord, site) = fjord_with_site();
    finish_queued(&fjord, model::TaskStatus::Success, &store::TaskEffect::None);
    let from = NOW / 1000;
    let cert = |not_before: i64, source: store::CertSource| store::SiteCertificate {
        site_id: site,
        names: vec!["a.example".into()],
        not_before,
        not_after: not_before + 90 * 86_400,
        issuer: "CN=test CA".into(),
        source,
        cert_path: "/var/lib/fjord/tls/site-1/a/chain.pem".into(),
        key_path: "/var/lib/fjord/tls/site-1/a/key.pem".into(),
        last_attempt_at: None,
        last_failure: None,
        renewal_attempts: 0,
    };
    let record = |effect: store::TaskEffect| {
        fjord
            .store()
            .enqueue(
                Target::Site(site),
                "a.example",
                store::NewTask::new(TaskKind::SiteVerify),
            )
            .unwrap();
        finish_queued(&fjord, model::TaskStatus::Success, &effect);
    };
    // No account: nothing is renewed, whatever is due.
    record(store::TaskEffect::SetSiteCertificate(cert(
        from,
        store::CertSource::Acme,
    )));
    let due_ms = model::renewal_due_at(from, from + 90 * 86_400, site, 0, None) * 1000;
    assert!(due_ms <= NOW + 60 * DAY);
    assert!(fjord.queue_due_renewals(due_ms).unwrap().is_empty());
    record(store::TaskEffect::SetAcmeAccount(store::AcmeAccount {
        directory: "https://ca.example/dir".into(),
        email: "ops@a.example".into(),
        ca_root: None,
        credentials_path: "/var/lib/fjord/tls/acme-account.json".into(),
        account_url: "https://ca.example/acct/1".into(),
    }));

    assert!(fjord.queue_due_renewals(due_ms - 1000).unwrap().is_empty());
    assert_eq!(fjord.queue_due_renewals(due_ms).unwrap().len(), 1);
    // Asked again (another dispatcher, the next pass): the queued renewal is the one.
    assert!(fjord.queue_due_renewals(due_ms).unwrap().is_empty());
    assert!(fjord.queue_due_renewals(due_ms + DAY).unwrap().is_empty());
    assert_eq!(renewals_queued(&fjord, site).len(), 1);

    // It fails: tried again after an hour, not before.
    finish_queued(&fjord, model::TaskStatus::Failed, &store::TaskEffect::None);
    assert!(
        fjord
            .queue_due_renewals(due_ms + 3_599_000)
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        fjord.queue_due_renewals(due_ms + 3_600_000).unwrap().len(),
        1
    );
    // Fails again: two hours.
    finish_queued(&fjord, model::TaskStatus::Failed, &store::TaskEffect::None);
    let second = due_ms + 3_600_000;
    assert!(
        fjord
            .queue_due_renewals(second + 7_199_000)
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        fjord.queue_due_renewals(second + 7_200_000).unwrap().len(),
        1
    );

    // It succeeds: the new certificate is renewed when it comes due, not before.
    let renewed_at = (second + 7_200_000) / 1000;
    finish_queued(
        &fjord,
        model::TaskStatus::Success,
        &store::TaskEffect::SetSiteCertificate(cert(renewed_at, store::CertSource::Acme)),
    );
    assert!(
        fjord
            .queue_due_renewals((renewed_at + 50 * 86_400) * 1000)
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        fjord
            .queue_due_renewals((renewed_at + 60 * 86_400) * 1000)
            .unwrap()
            .len(),
        1
    );
    assert_eq!(renewals_queued(&fjord, site).len(), 4);

    // A site's own certificate is the administrator's to replace.
    finish_queued(&fjord, model::TaskStatus::Failed, &store::TaskEffect::None);
    record(store::TaskEffect::SetSiteCertificate(cert(
        from,
        store::CertSource::Own,
    )));
    assert!(fjord.queue_due_renewals(NOW + 89 * DAY).unwrap().is_empty());
}
