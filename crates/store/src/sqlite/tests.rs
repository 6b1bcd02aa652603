use model::{AbsPath, HttpService, Name, NginxService, PlatformKind, ReloadMethod};

use super::*;

pub(super) fn store() -> SqliteStore {
    SqliteStore::open_in_memory().unwrap()
}

fn http() -> HttpService {
    HttpService::Nginx(NginxService {
        binary: AbsPath::parse("p", "/usr/sbin/nginx").unwrap(),
        config: AbsPath::parse("p", "/etc/nginx/nginx.conf").unwrap(),
        prefix: None,
        include_dir: AbsPath::parse("p", "/etc/nginx/conf.d").unwrap(),
        listen: vec!["127.0.0.1:80".parse().unwrap()],
        https_listen: Vec::new(),
        reload: ReloadMethod::Signal,
        files_owner: None,
        web_group: None,
        restart: Default::default(),
    })
}

fn h(s: &str) -> Hostname {
    Hostname::parse("h", s).unwrap()
}

pub(super) fn setup(s: &SqliteStore) -> (i64, i64) {
    let server = Server {
        id: 0,
        name: Name::parse("n", "local").unwrap(),
        http: http(),
        db: Vec::new(),
        php: Vec::new(),
        monitor: true,
        remote: None,
    };
    let (server, _) = s.insert_server(&server, None).unwrap();
    let platform = Platform {
        id: 0,
        name: Name::parse("n", "p1").unwrap(),
        server_id: server.id,
        path: AbsPath::parse("p", "/srv/p1").unwrap(),
        kind: PlatformKind::Static,
        locked: false,
        php_version: None,
        web_root: None,
        drush: None,
        allow_exec: false,
        upload_limit: model::UploadLimit::from_mb(16),
        upstream: None,
    };
    let (p, _) = s.insert_platform(&platform, None).unwrap();
    (server.id, p.id)
}

pub(super) fn new_site(name: &str, platform_id: i64, aliases: &[&str]) -> NewSite {
    NewSite {
        name: h(name),
        platform_id,
        aliases: aliases.iter().map(|a| h(a)).collect(),
        redirect_aliases: false,
        client_id: None,
        status: SiteStatus::Queued,
        database: None,
        app_secret: String::new(),
        upload_limit: None,
        https: Default::default(),
    }
}

#[test]
fn upload_limits_are_kept_for_platforms_and_sites() {
    let s = SqliteStore::open_in_memory().unwrap();
    let (_, platform_id) = setup(&s);
    let platform = s.platform(platform_id).unwrap();
    assert_eq!(platform.upload_limit.map(|l| l.mb()), Some(16));
    let (site, _) = s
        .insert_site(
            &NewSite {
                upload_limit: model::UploadLimit::from_mb(8),
                ..new_site("uploads.example", platform_id, &[])
            },
            None,
        )
        .unwrap();
    assert_eq!(
        s.site(site.id).unwrap().upload_limit.map(|l| l.mb()),
        Some(8)
    );
    s.update_site_names(site.id, &[], false, None, Default::default(), None)
        .unwrap();
    let site = s.site(site.id).unwrap();
    assert_eq!(site.upload_limit, None);
    assert_eq!(site.upload_limit_on(&platform).mb(), 16);
}

#[test]
fn https_settings_are_kept_and_an_old_servers_one_address_becomes_a_list() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    // A state as fjord left it before listen lists: schema 14, one address.
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        for sql in &MIGRATIONS[..14] {
            c.execute_batch(sql).unwrap();
        }
        c.pragma_update(None, "user_version", 14).unwrap();
        let mut http = serde_json::to_value(http()).unwrap();
        http["listen"] = serde_json::json!("127.0.0.1:8080");
        http.as_object_mut().unwrap().remove("https_listen");
        c.execute(
            "INSERT INTO servers (name, http, db, php, created_at) VALUES ('old', ?1, '[]', '[]', 0)",
            [http.to_string()],
        )
        .unwrap();
    }
    let s = SqliteStore::open(&path).unwrap();
    // The migration rewrote the column itself (the reader would also take the old shape).
    let kept: String = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row(
            "SELECT json_type(http, '$.listen') || ' ' || json_type(http, '$.https_listen') \
             FROM servers WHERE name = 'old'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(kept, "array array");
    let old = s.server_by_name("old").unwrap();
    let HttpService::Nginx(nginx) = &old.http;
    assert_eq!(nginx.listen, vec!["127.0.0.1:8080".parse().unwrap()]);
    assert!(nginx.https_listen.is_empty());
    let (_, platform_id) = setup(&s);
    let https = model::SiteHttps {
        mode: model::HttpsMode::Required,
        hsts: true,
    };
    let (site, _) = s
        .insert_site(
            &NewSite {
                https,
                ..new_site("tls.example", platform_id, &[])
            },
            None,
        )
        .unwrap();
    assert_eq!(s.site(site.id).unwrap().https, https);
    s.update_site_names(site.id, &[], false, None, Default::default(), None)
        .unwrap();
    assert_eq!(s.site(site.id).unwrap().https.mode, model::HttpsMode::On);
}

#[test]
fn migrations_run_on_an_empty_database_and_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let s = SqliteStore::open(&path).unwrap();
    assert_eq!(s.schema_version().unwrap(), MIGRATIONS.len() as i64);
    drop(s);
    let s = SqliteStore::open(&path).unwrap();
    assert_eq!(s.schema_version().unwrap(), MIGRATIONS.len() as i64);
}

#[test]
fn a_state_written_by_a_newer_fjord_is_refused_and_left_as_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    drop(SqliteStore::open(&path).unwrap());
    let newer = MIGRATIONS.len() as i64 + 6;
    Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", newer)
        .unwrap();
    let e = SqliteStore::open(&path)
        .err()
        .expect("a newer state is refused");
    match &e {
        StoreError::NewerSchema {
            dir: d,
            found,
            known,
        } => {
            assert_eq!(d, &dir.path().display().to_string());
            assert_eq!((*found, *known), (newer, MIGRATIONS.len() as i64));
        }
        e => panic!("not NewerSchema: {e}"),
    }
    let message = e.to_string();
    assert!(
        message.contains(&format!(
            "schema {newer}; this fjord knows {}",
            MIGRATIONS.len()
        )) && message.contains("never downgrades"),
        "{message}"
    );
    let version: i64 = Connection::open(&path)
        .unwrap()
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, newer, "the refusal changed the state");
}

/// Connections opening an old state at once (a dispatcher started beside a command, after an
/// upgrade): each migration runs once. A second run of one would fail (its tables exist), so
/// every open succeeding at the latest version is the proof.
#[test]
fn an_old_state_opened_by_many_at_once_is_migrated_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let old = MIGRATIONS.len() - 3;
    {
        let conn = Connection::open(&path).unwrap();
        for (i, sql) in MIGRATIONS.iter().take(old).enumerate() {
            conn.execute_batch(sql).unwrap();
            conn.pragma_update(None, "user_version", (i + 1) as i64)
                .unwrap();
        }
    }
    let start = std::sync::Barrier::new(8);
    std::thread::scope(|scope| {
        let opens: Vec<_> = (0..8)
            .map(|_| {
                scope.spawn(|| {
                    start.wait();
                    SqliteStore::open(&path).map(|s| s.schema_version().unwrap())
                })
            })
            .collect();
        for open in opens {
            assert_eq!(open.join().unwrap().unwrap(), MIGRATIONS.len() as i64);
        }
    });
}

#[test]
fn host_names_are_unique_across_sites() {
    let s = store();
    let (_, p) = setup(&s);
    s.insert_site(&new_site("a.com", p, &["www.a.com"]), None)
        .unwrap();
    let e = s
        .insert_site(&new_site("b.com", p, &["www.a.com"]), None)
        .unwrap_err();
    assert!(matches!(e, StoreError::Conflict(_)), "{e}");
    let e = s
        .insert_site(&new_site("www.a.com", p, &[]), None)
        .unwrap_err();
    assert!(matches!(e, StoreError::Conflict(_)), "{e}");
    // The failed inserts left nothing behind.
    assert_eq!(s.sites(None).unwrap().len(), 1);
    assert_eq!(s.site_by_host("www.a.com").unwrap().name.as_str(), "a.com");
}

#[test]
fn claim_respects_locks_and_order() {
    let s = store();
    let (_, p) = setup(&s);
    let (a, t1) = s
        .insert_site(
            &new_site("a.com", p, &[]),
            Some(NewTask::new(TaskKind::SiteInstall)),
        )
        .unwrap();
    let (_b, t2) = s
        .insert_site(
            &new_site("b.com", p, &[]),
            Some(NewTask::new(TaskKind::SiteInstall)),
        )
        .unwrap();
    let t3 = s
        .enqueue(
            Target::Site(a.id),
            "a.com",
            NewTask::new(TaskKind::SiteVerify),
        )
        .unwrap();
    let pv = s
        .enqueue(
            Target::Platform(p),
            "p1",
            NewTask::new(TaskKind::PlatformVerify),
        )
        .unwrap();

    let (t1, t2) = (t1.unwrap().id, t2.unwrap().id);
    let place = |id, ahead, waits_for| {
        assert_eq!(
            s.queue_place(id).unwrap(),
            crate::QueuePlace { ahead, waits_for }
        )
    };
    place(t2, 1, None);
    place(t3.id, 2, Some(t1));

    let c1 = s.claim_next("d").unwrap().unwrap();
    assert_eq!(c1.task.id, t1);
    // a.com is busy: its verify waits; b.com's install runs beside it.
    let c2 = s.claim_next("d").unwrap().unwrap();
    assert_eq!(c2.task.id, t2);
    place(t3.id, 0, Some(t1));
    place(pv.id, 1, Some(t1));
    assert!(
        s.claim_next("d").unwrap().is_none(),
        "platform verify waits for its sites"
    );
    assert!(finish(&s, &c1, TaskStatus::Success));
    let c3 = s.claim_next("d").unwrap().unwrap();
    assert_eq!(c3.task.id, t3.id);
    assert!(finish(&s, &c2, TaskStatus::Success));
    assert!(finish(&s, &c3, TaskStatus::Success));
    assert_eq!(s.claim_next("d").unwrap().unwrap().task.id, pv.id);
}

fn finish(s: &SqliteStore, running: &RunningTask, status: TaskStatus) -> bool {
    s.finish_task(
        running.task.id,
        &running.claim,
        status,
        None,
        &TaskEffect::None,
    )
    .unwrap()
}

/// A dispatcher that lost its task (recovered by another, then retried and claimed again)
/// records nothing with its late outcome: the task stays the new claim's.
#[test]
fn only_the_claim_that_holds_a_task_records_its_outcome() {
    let s = store();
    let (_, p) = setup(&s);
    let (site, _) = s.insert_site(&new_site("a.com", p, &[]), None).unwrap();
    let t = s
        .enqueue(
            Target::Site(site.id),
            "a.com",
            NewTask::new(TaskKind::SiteVerify),
        )
        .unwrap();
    let first = s.claim_next("dead").unwrap().unwrap();
    // Two dispatchers saw "dead" die; one takes the task over, the other finds it taken.
    let adopted = s.adopt_task(t.id, &first.claim, "b").unwrap().unwrap();
    assert_ne!(adopted, first.claim);
    assert_eq!(s.adopt_task(t.id, &first.claim, "c").unwrap(), None);
    assert!(
        !finish(&s, &first, TaskStatus::Failed),
        "the dead claim records nothing"
    );
    assert!(
        s.finish_task(
            t.id,
            &adopted,
            TaskStatus::Failed,
            Some("interrupted; rolled back"),
            &TaskEffect::None
        )
        .unwrap()
    );
    // Retried and claimed again, by the same dispatcher name even: a new claim.
    s.retry_task(t.id).unwrap();
    let again = s.claim_next("b").unwrap().unwrap();
    assert_eq!(again.task.id, t.id);
    for stale in [&first.claim, &adopted] {
        let late = s
            .finish_task(
                t.id,
                stale,
                TaskStatus::Failed,
                Some("late"),
                &TaskEffect::SetSiteStatus(site.id, SiteStatus::NeedsAttention),
            )
            .unwrap();
        assert!(!late, "a late finish of {stale:?} is refused");
        assert_eq!(s.adopt_task(t.id, stale, "c").unwrap(), None);
    }
    let task = s.task(t.id).unwrap();
    assert_eq!(task.status, TaskStatus::Processing, "{task:?}");
    assert_eq!(task.error, None);
    assert_eq!(
        s.site(site.id).unwrap().status,
        SiteStatus::Queued,
        "no effect applied"
    );
    let running = s.running_tasks().unwrap();
    assert_eq!(running.len(), 1);
    assert_eq!(running[0].claim, again.claim);
    assert!(finish(&s, &again, TaskStatus::Success));
    assert_eq!(s.task(t.id).unwrap().status, TaskStatus::Success);
    assert!(!finish(&s, &again, TaskStatus::Failed), "recorded once");
}

#[test]
fn cancel_and_retry_follow_the_state_rules() {
    let s = store();
    let (_, p) = setup(&s);
    let t = s
        .enqueue(
            Target::Platform(p),
            "p1",
            NewTask::new(TaskKind::PlatformVerify),
        )
        .unwrap();
    assert!(
        s.retry_task(t.id).is_err(),
        "a queued task cannot be retried"
    );
    assert_eq!(s.cancel_task(t.id).unwrap().status, TaskStatus::Cancelled);
    assert!(s.cancel_task(t.id).is_err());
    assert_eq!(s.retry_task(t.id).unwrap().status, TaskStatus::Queued);
}

#[test]
fn journal_round_trip() {
    let s = store();
    let e = JournalEntry {
        task_id: 7,
        seq: 1,
        step: "write".into(),
        undo: "{}".into(),
        saved: Some(vec![0, 1, 2]),
        machine: None,
    };
    s.journal_append(&e).unwrap();
    let remote = JournalEntry {
        seq: 2,
        machine: Some(3),
        ..e.clone()
    };
    s.journal_append_all(std::slice::from_ref(&remote)).unwrap();
    assert_eq!(s.journal(7).unwrap(), vec![e, remote]);
    s.journal_clear(7).unwrap();
    assert!(s.journal(7).unwrap().is_empty());
}

#[test]
fn a_due_backup_is_taken_by_one_dispatcher_only() {
    let s = store();
    let (_, p) = setup(&s);
    let (site, _) = s.insert_site(&new_site("a.com", p, &[]), None).unwrap();
    s.set_next_backup(site.id, Some(1_000)).unwrap();
    let backup = || Some(NewTask::new(TaskKind::SiteBackup));
    let first = s
        .take_due_backup(site.id, "a.com", 1_000, Some(2_000), backup())
        .unwrap();
    assert!(first.is_some(), "the first dispatcher queues it");
    let first = first.unwrap();
    assert_eq!(first.queued_by, "schedule");
    assert_eq!(s.task(first.id).unwrap().queued_by, "schedule");
    // A second dispatcher that read the same due time before the first moved it on.
    let second = s
        .take_due_backup(site.id, "a.com", 1_000, Some(2_000), backup())
        .unwrap();
    assert!(second.is_none(), "no second backup for one due time");
    let tasks = s
        .tasks(&TaskFilter {
            target: Some(Target::Site(site.id)),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(
        tasks
            .iter()
            .filter(|t| t.kind == TaskKind::SiteBackup)
            .count(),
        1
    );
    s.set_site_status(site.id, SiteStatus::Installed).unwrap();
    let schedules = s.backup_schedules().unwrap();
    let own = schedules.iter().find(|x| x.site_id == site.id).unwrap();
    assert_eq!(own.next_at, Some(2_000), "moved on once");
}

#[test]
fn a_state_file_truncated_to_nothing_is_refused_not_taken_for_a_new_install() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.sqlite");
    #[allow(clippy::disallowed_methods)]
    std::fs::write(&path, b"").unwrap();
    let error = SqliteStore::open(&path).err().unwrap().to_string();
    assert!(error.contains("0 bytes"), "{error}");
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 0, "left as it was");
    // A path with no file is a new installation.
    let fresh = dir.path().join("new.sqlite");
    SqliteStore::open(&fresh).unwrap();
}

/// A full disk, a busy or unreadable database: tried again by the dispatcher. A broken
/// constraint fails the same way each time: not tried again.
#[test]
fn full_disk_and_busy_are_transient_constraints_are_not() {
    let failure = |code| {
        StoreError::Db(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(code),
            None,
        ))
    };
    for code in [
        rusqlite::ffi::SQLITE_FULL,
        rusqlite::ffi::SQLITE_BUSY,
        rusqlite::ffi::SQLITE_IOERR,
        rusqlite::ffi::SQLITE_CANTOPEN,
    ] {
        assert!(failure(code).is_transient(), "{code}");
    }
    assert!(!failure(rusqlite::ffi::SQLITE_CONSTRAINT).is_transient());
    assert!(!StoreError::Conflict("x".into()).is_transient());
}

#[test]
fn the_site_search_finds_names_and_aliases_through_every_change() {
    use crate::{Accounts, SiteQuery};
    let s = store();
    let (_, p) = setup(&s);
    for (name, aliases) in [
        ("alpha.example", vec!["www.alpha.example"]),
        ("beta.example", vec!["shop.beta.example"]),
        ("gamma.test", vec![]),
    ] {
        s.insert_site(&new_site(name, p, &aliases), None).unwrap();
    }
    let find = |term: &str| -> Vec<String> {
        s.site_page(&SiteQuery {
            search: Some(term.into()),
            limit: 50,
            ..Default::default()
        })
        .unwrap()
        .sites
        .iter()
        .map(|x| x.name.to_string())
        .collect()
    };
    assert_eq!(find("example"), ["alpha.example", "beta.example"]);
    assert_eq!(find("shop"), ["beta.example"]);
    assert_eq!(find("ALP"), ["alpha.example"]);
    // Shorter than a trigram, and characters LIKE would take as wildcards: read literally.
    assert_eq!(find("ga"), ["gamma.test"]);
    assert!(find("%").is_empty());
    assert!(find("_").is_empty());
    // Renamed aliases are found by their new names only.
    let beta = s.site_by_host("beta.example").unwrap();
    s.update_site_names(
        beta.id,
        &[h("store.beta.example")],
        false,
        None,
        Default::default(),
        None,
    )
    .unwrap();
    assert!(find("shop").is_empty());
    assert_eq!(find("store"), ["beta.example"]);
    // A deleted site is gone from the index with its names.
    let gamma = s.site_by_host("gamma.test").unwrap();
    s.delete_site(gamma.id).unwrap();
    assert!(find("gamma").is_empty());
    let page = s
        .site_page(&SiteQuery {
            limit: 1,
            offset: 1,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(page.total, 2);
    assert_eq!(page.sites[0].name.as_str(), "beta.example");
}

#[test]
fn site_counts_follow_every_add_change_and_delete() {
    use crate::Accounts;
    let s = store();
    let (_, p) = setup(&s);
    let client = s
        .client_by_name_or_insert(&Name::parse("client", "acme").unwrap())
        .unwrap();
    let mut with_client = new_site("a.com", p, &[]);
    with_client.client_id = Some(client.id);
    let (a, _) = s.insert_site(&with_client, None).unwrap();
    let (b, _) = s.insert_site(&new_site("b.com", p, &[]), None).unwrap();
    s.insert_site(&new_site("c.com", p, &[]), None).unwrap();
    s.set_site_status(b.id, SiteStatus::Disabled).unwrap();
    let all = s.site_counts(None).unwrap();
    let status = a.status;
    assert_eq!(all, vec![(SiteStatus::Disabled, 1), (status, 2)]);
    assert_eq!(s.site_counts(Some(client.id)).unwrap(), vec![(status, 1)]);
    s.delete_site(a.id).unwrap();
    assert!(s.site_counts(Some(client.id)).unwrap().is_empty());
    assert_eq!(
        s.site_counts(None).unwrap(),
        vec![(SiteStatus::Disabled, 1), (status, 1)]
    );
}

/// A cron run holds its site's locks in the claim's transaction: no task on the site (or its
/// platform) is claimed while it runs, and no cron starts while a task holds or waits for
/// the site.
#[test]
fn a_cron_run_and_a_task_never_hold_one_site_at_once() {
    let s = store();
    let (_, p) = setup(&s);
    let (a, _) = s.insert_site(&new_site("a.com", p, &[]), None).unwrap();
    let (b, _) = s.insert_site(&new_site("b.com", p, &[]), None).unwrap();
    assert!(s.take_due_cron(a.id, None, 1, "d1").unwrap());
    assert!(
        !s.take_due_cron(a.id, Some(1), 2, "d2").unwrap(),
        "one run at a time"
    );
    let restore = s
        .enqueue(
            Target::Site(a.id),
            "a.com",
            NewTask::new(TaskKind::SiteBackup),
        )
        .unwrap();
    let verify_b = s
        .enqueue(
            Target::Site(b.id),
            "b.com",
            NewTask::new(TaskKind::SiteVerify),
        )
        .unwrap();
    let pv = s
        .enqueue(
            Target::Platform(p),
            "p1",
            NewTask::new(TaskKind::PlatformVerify),
        )
        .unwrap();
    let claimed = s.claim_next("d2").unwrap().unwrap();
    assert_eq!(
        claimed.task.id, verify_b.id,
        "only the other site's task runs"
    );
    assert!(
        s.claim_next("d2").unwrap().is_none(),
        "{:?}",
        s.cron_runs().unwrap()
    );
    s.record_cron(a.id, "d1", 0, true, "ok").unwrap();
    assert!(s.cron_runs().unwrap().is_empty());
    let restore_run = s.claim_next("d2").unwrap().unwrap();
    assert_eq!(restore_run.task.id, restore.id);
    // The restore holds the site; the queued platform verify waits for it: no cron on
    // either site starts meanwhile.
    s.set_site_cron(a.id, None, None).unwrap();
    assert!(!s.take_due_cron(a.id, None, 5, "d1").unwrap());
    assert!(finish(&s, &claimed, TaskStatus::Success));
    assert!(finish(&s, &restore_run, TaskStatus::Success));
    assert!(
        !s.take_due_cron(b.id, None, 5, "d1").unwrap(),
        "the queued platform verify goes first"
    );
    let pv_run = s.claim_next("d2").unwrap().unwrap();
    assert_eq!(pv_run.task.id, pv.id);
    assert!(finish(&s, &pv_run, TaskStatus::Success));
    assert!(s.take_due_cron(a.id, None, 5, "d1").unwrap());
    assert_eq!(s.site_cron(a.id).unwrap().next_at, Some(5));
    assert_eq!(s.cron_runs().unwrap()[0].owner, "d1");
    s.delete_site(b.id).unwrap();
}

/// A task's success records the ACME account and a site's certificate; a renewal attempt is
/// noted on the certificate; deleting the site forgets its certificate.
#[test]
fn https_account_and_certificates_are_recorded_by_their_tasks_outcome() {
    let s = store();
    let (_, p) = setup(&s);
    assert_eq!(s.acme_account().unwrap(), None);
    let (site, _) = s
        .insert_site(&new_site("tls.example", p, &["www.tls.example"]), None)
        .unwrap();
    assert_eq!(s.site_certificate(site.id).unwrap(), None);
    let account = crate::AcmeAccount {
        directory: "https://ca.example/dir".into(),
        email: "ops@tls.example".into(),
        ca_root: None,
        credentials_path: "/var/lib/fjord/acme/account.json".into(),
        account_url: "https://ca.example/acct/1".into(),
    };
    let cert = crate::SiteCertificate {
        site_id: site.id,
        names: vec!["tls.example".into(), "www.tls.example".into()],
        not_before: 1_800_000_000,
        not_after: 1_807_776_000,
        issuer: "CN=Pebble Intermediate CA".into(),
        source: crate::CertSource::Acme,
        cert_path: "/var/lib/fjord/certs/1/chain.pem".into(),
        key_path: "/var/lib/fjord/certs/1/key.pem".into(),
        last_attempt_at: None,
        last_failure: None,
        renewal_attempts: 0,
    };
    let t = s
        .enqueue(
            Target::Site(site.id),
            "tls.example",
            NewTask::new(TaskKind::SiteVerify),
        )
        .unwrap();
    let running = s.claim_next("d").unwrap().unwrap();
    assert_eq!(running.task.id, t.id);
    let effect = TaskEffect::Many(vec![
        TaskEffect::SetAcmeAccount(account.clone()),
        TaskEffect::SetSiteCertificate(cert.clone()),
    ]);
    assert!(
        s.finish_task(t.id, &running.claim, TaskStatus::Success, None, &effect)
            .unwrap()
    );
    assert_eq!(s.acme_account().unwrap(), Some(account));
    assert_eq!(s.site_certificate(site.id).unwrap(), Some(cert.clone()));

    s.record_certificate_attempt(site.id, 1_805_000_000, Some("the CA is down"))
        .unwrap();
    let noted = s.site_certificate(site.id).unwrap().unwrap();
    assert_eq!(noted.last_attempt_at, Some(1_805_000_000));
    assert_eq!(noted.last_failure.as_deref(), Some("the CA is down"));
    assert_eq!(noted.not_after, cert.not_after);

    s.delete_site(site.id).unwrap();
    assert_eq!(s.site_certificate(site.id).unwrap(), None);
}

/// `/metrics` reads tasks by kind and status, run times into buckets, the oldest queued task,
/// each site's newest backup, and the cron counters, which count each run once, by the
/// owner that ends it.
#[test]
fn metrics_count_tasks_run_times_backups_and_cron_runs() {
    let s = store();
    let (_, p) = setup(&s);
    let (a, _) = s.insert_site(&new_site("a.com", p, &[]), None).unwrap();
    let (b, _) = s.insert_site(&new_site("b.com", p, &[]), None).unwrap();
    s.set_site_status(a.id, SiteStatus::Installed).unwrap();
    s.set_site_status(b.id, SiteStatus::Installed).unwrap();
    let verify = s
        .enqueue(
            Target::Site(a.id),
            "a.com",
            NewTask::new(TaskKind::SiteVerify),
        )
        .unwrap();
    let queued = s
        .enqueue(
            Target::Site(b.id),
            "b.com",
            NewTask::new(TaskKind::SiteBackup),
        )
        .unwrap();
    let run = s.claim_next("d1").unwrap().unwrap();
    assert_eq!(run.task.id, verify.id);
    assert!(finish(&s, &run, TaskStatus::Success));
    s.with(|c| {
        c.execute(
            "UPDATE tasks SET started_at = 1000, finished_at = 3000 WHERE id = ?1",
            [verify.id],
        )?;
        c.execute(
            "INSERT INTO backups (site_id, site_name, path, size, created_at)
             VALUES (?1, 'a.com', '/b/1', 1, 5000), (?1, 'a.com', '/b/2', 1, 7000)",
            [a.id],
        )?;
        Ok(())
    })
    .unwrap();

    // (b's queued backup holds b: its cron waits.)
    assert!(s.take_due_cron(a.id, None, 1, "d1").unwrap());
    s.record_cron(a.id, "d1", 0, false, "exit 1").unwrap();
    // A second record by an owner whose run was already ended counts nothing.
    s.record_cron(a.id, "d1", 0, false, "exit 1").unwrap();

    let m = s.metrics().unwrap();
    assert_eq!(
        m.tasks,
        vec![
            ("site-backup".into(), "queued".into(), 1),
            ("site-verify".into(), "success".into(), 1)
        ]
    );
    let d = &m.durations[0];
    assert_eq!(
        (d.kind.as_str(), d.count, d.sum_seconds),
        ("site-verify", 1, 2.0)
    );
    // 2 s: above the 0.5 and 1 s bounds, within 2.5 s and every one after.
    assert_eq!(d.at_most, vec![0, 0, 1, 1, 1, 1, 1, 1, 1]);
    assert_eq!(m.oldest_queued_at, Some(queued.created_at));
    assert_eq!(
        m.newest_backups,
        vec![("a.com".into(), Some(7000)), ("b.com".into(), None)]
    );
    assert_eq!(
        m.counters,
        vec![("cron_failures".into(), 1), ("cron_runs".into(), 1)]
    );
    assert_eq!(m.sites, vec![(SiteStatus::Installed, 2)]);
}

#[test]
fn a_batchs_orders_count_with_single_certificate_tasks_against_the_cas_limit() {
    let s = store();
    let (server, p) = setup(&s);
    let (site, _) = s
        .insert_site(&new_site("orders.example", p, &[]), None)
        .unwrap();
    let start = now_ms() - 1;
    assert_eq!(s.acme_orders_since(start).unwrap(), 0);
    s.enqueue(
        Target::Site(site.id),
        "orders.example",
        NewTask::new(TaskKind::SiteHttps),
    )
    .unwrap();
    assert_eq!(s.acme_orders_since(start).unwrap(), 1);
    let batch = s
        .enqueue(
            Target::Server(server),
            "local",
            NewTask::new(TaskKind::HttpsIssue),
        )
        .unwrap();
    // A batch counts nothing when queued: its orders are counted with its outcome, and a
    // warning is recorded as the task's status and message.
    assert_eq!(s.acme_orders_since(start).unwrap(), 1);
    let running = loop {
        let claimed = s.claim_next("d").unwrap().unwrap();
        if claimed.task.id == batch.id {
            break claimed;
        }
        assert!(finish(&s, &claimed, TaskStatus::Success));
    };
    let effect = TaskEffect::Many(vec![
        TaskEffect::CountAcmeOrders(250),
        TaskEffect::Warn("1 of 250 orders failed".into()),
    ]);
    assert_eq!(effect.warning().as_deref(), Some("1 of 250 orders failed"));
    assert!(
        s.finish_task(
            batch.id,
            &running.claim,
            TaskStatus::Warning,
            effect.warning().as_deref(),
            &effect
        )
        .unwrap()
    );
    assert_eq!(s.acme_orders_since(start).unwrap(), 251);
    assert_eq!(s.acme_orders_since(now_ms() + 1).unwrap(), 0);
    let recorded = s.task(batch.id).unwrap();
    assert_eq!(recorded.status, TaskStatus::Warning);
    assert_eq!(recorded.error.as_deref(), Some("1 of 250 orders failed"));
}
