use super::*;

fn local_mariadb() -> DbCtl {
    DbCtl {
        kind: DbKind::Mysql,
        socket: Some(PathBuf::from("/run/mysqld/mysqld.sock")),
        host: None,
        port: None,
        admin_user: "root".into(),
        password_file: None,
        password_env: None,
        client_host: None,
    }
}

/// Drops the test's databases, however the test ends.
struct Dropped<'a>(&'a DbCtl, Vec<String>);

impl Drop for Dropped<'_> {
    fn drop(&mut self) {
        for name in &self.1 {
            let _ = self.0.drop_database_only(name);
        }
    }
}

/// A site's database user, with no grant yet, as loads run; dropped with the guard.
struct SiteUser<'a>(&'a DbCtl, String, String);

impl<'a> SiteUser<'a> {
    fn new(db: &'a DbCtl, tag: &str) -> Self {
        let (user, password) = (format!("{tag}_u"), crate::random_hex(16));
        db.admin(&[format!(
            "CREATE USER '{user}'@'localhost' IDENTIFIED BY '{password}'"
        )])
        .unwrap();
        SiteUser(db, user, password)
    }

    fn load_backup(&self, name: &str, dump: &Path) -> Result<String> {
        self.0.with_grant_on(name, &self.1, || {
            self.0
                .load_backup_by(name, &self.1, &self.2, dump, LoadWay::Tablespaces)
        })
    }
}

impl Drop for SiteUser<'_> {
    fn drop(&mut self) {
        let _ = self
            .0
            .admin(&[format!("DROP USER IF EXISTS '{}'@'localhost'", self.1)]);
    }
}

fn rows(db: &DbCtl, name: &str) -> String {
    db.admin(&[format!(
        "SELECT COUNT(*), SUM(id), MAX(note) FROM `{name}`.notes"
    )])
    .unwrap()
}

#[test]
fn tablespaces_import_and_fall_back_to_the_dump_when_they_cannot() {
    let db = local_mariadb();
    let tag = format!("fjt{}_{}", std::process::id(), crate::random_hex(3));
    let [source, fast, fallback] = ["src", "fast", "slow"].map(|n| format!("{tag}_{n}"));
    let _dropped = Dropped(&db, vec![source.clone(), fast.clone(), fallback.clone()]);
    db.create_database_only(&source).unwrap();
    db.admin(&[
        format!("CREATE TABLE `{source}`.notes (id INT PRIMARY KEY, note VARCHAR(40))"),
        format!("INSERT INTO `{source}`.notes SELECT seq, CONCAT('note ', seq) FROM `{source}`.seq_1_to_5000"),
    ])
    .unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let dump = scratch.path().join("database.sql");
    let snapshot = db
        .snapshot_tablespaces(&source, &tablespace_dir(&dump), None)
        .unwrap();
    assert!(
        matches!(snapshot, Snapshot::Taken { tables: 1, .. }),
        "{snapshot:?}"
    );
    db.dump(&source, &dump).unwrap();
    let want = rows(&db, &source);
    // The source's tables are unlocked again: a write goes through.
    db.admin(&[format!(
        "UPDATE `{source}`.notes SET note = 'later' WHERE id = 1"
    )])
    .unwrap();

    // A copy of the tablespaces for the second load, whose schema no longer matches.
    let spare = scratch.path().join("spare.sql");
    std::fs::copy(&dump, &spare).unwrap();
    std::fs::create_dir(tablespace_dir(&spare)).unwrap();
    for entry in std::fs::read_dir(tablespace_dir(&dump)).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), tablespace_dir(&spare).join(entry.file_name())).unwrap();
    }
    let schema = tablespace_dir(&spare).join(SCHEMA);
    let text = std::fs::read_to_string(&schema).unwrap();
    std::fs::write(
        &schema,
        text.replace("`note` varchar(40)", "`note` varchar(40), `extra` int"),
    )
    .unwrap();

    db.create_database_only(&fast).unwrap();
    let site = SiteUser::new(&db, &tag);
    let note = site.load_backup(&fast, &dump).unwrap();
    assert!(
        note.starts_with("imported the InnoDB tablespaces"),
        "{note}"
    );
    assert_eq!(rows(&db, &fast), want);

    db.create_database_only(&fallback).unwrap();
    let note = site.load_backup(&fallback, &spare).unwrap();
    assert!(note.contains("loading its SQL dump instead"), "{note}");
    assert_eq!(rows(&db, &fallback), want);
}

#[test]
fn a_small_databases_backup_loads_from_its_dump_and_a_large_ones_from_its_tablespaces() {
    let db = local_mariadb();
    let tag = format!("fjt{}_{}", std::process::id(), crate::random_hex(3));
    let [source, target] = ["src", "dst"].map(|n| format!("{tag}_{n}"));
    let _dropped = Dropped(&db, vec![source.clone(), target.clone()]);
    db.create_database_only(&source).unwrap();
    db.admin(&[
        format!("CREATE TABLE `{source}`.notes (id INT PRIMARY KEY, note VARCHAR(40))"),
        format!("INSERT INTO `{source}`.notes SELECT seq, CONCAT('note ', seq) FROM `{source}`.seq_1_to_500"),
    ])
    .unwrap();
    let scratch = tempfile::tempdir().unwrap();
    // A backup copies no tablespaces of so small a database.
    let skipped = db
        .snapshot_tablespaces_that_pay_off(&source, &scratch.path().join("skipped"), None)
        .unwrap();
    assert!(
        matches!(&skipped, Snapshot::Skipped(why) if why.contains("its SQL dump loads faster")),
        "{skipped:?}"
    );
    assert!(!scratch.path().join("skipped").exists());
    // Had it copied them, a restore would still load the dump.
    let dump = scratch.path().join("database.sql");
    db.snapshot_tablespaces(&source, &tablespace_dir(&dump), None)
        .unwrap();
    db.dump(&source, &dump).unwrap();
    db.create_database_only(&target).unwrap();
    let site = SiteUser::new(&db, &tag);
    let note = site
        .0
        .with_grant_on(&target, &site.1, || {
            db.load_backup(&target, &site.1, &site.2, &dump)
        })
        .unwrap();
    assert!(
        note.contains("load faster from its SQL dump") && note.contains("loaded the SQL dump"),
        "{note}"
    );
    assert_eq!(rows(&db, &target), rows(&db, &source));

    // Drupal 7's 73 tables of a standard install; a site with a few large tables.
    assert!(matches!(
        LoadWay::by_shape(73, 6 << 20),
        LoadWay::Dump {
            tables: Some((73, _))
        }
    ));
    assert_eq!(LoadWay::by_shape(0, 0), LoadWay::Dump { tables: None });
    assert_eq!(LoadWay::by_shape(20, 400 << 20), LoadWay::Tablespaces);
    assert!(matches!(
        LoadWay::by_shape(500, 100 << 20),
        LoadWay::Dump { .. }
    ));
}

#[test]
fn a_dump_started_under_the_snapshot_lock_holds_what_the_tablespaces_hold() {
    let db = local_mariadb();
    let tag = format!("fjt{}_{}", std::process::id(), crate::random_hex(3));
    let [source, from_files, from_dump] = ["src", "ibd", "sql"].map(|n| format!("{tag}_{n}"));
    let _dropped = Dropped(
        &db,
        vec![source.clone(), from_files.clone(), from_dump.clone()],
    );
    db.create_database_only(&source).unwrap();
    db.admin(&[
        format!("CREATE TABLE `{source}`.notes (id INT PRIMARY KEY, note VARCHAR(40))"),
        format!("INSERT INTO `{source}`.notes SELECT seq, 'note' FROM `{source}`.seq_1_to_20000"),
    ])
    .unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let dump = scratch.path().join("database.sql.zst");
    let stop = std::sync::atomic::AtomicBool::new(false);
    let finished = std::sync::atomic::AtomicBool::new(false);
    let (snapshot, writes) = std::thread::scope(|scope| {
        // A site writing all along: any write between the copy and the dump's start
        // would make the two differ.
        let writer = scope.spawn(|| {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                n += 1;
                db.admin(&[format!(
                    "INSERT INTO `{source}`.notes VALUES ({}, 'write')",
                    100_000 + n
                )])
                .unwrap();
            }
            n
        });
        std::thread::sleep(Duration::from_millis(200));
        let mut dumping = None;
        let snapshot = db
            .snapshot_tablespaces(
                &source,
                &tablespace_dir(&dump),
                Some(DumpUnderLock {
                    start: &mut || {
                        dumping = Some(scope.spawn(|| {
                            let dumped = db.dump_compressed(&source, &dump);
                            finished.store(true, std::sync::atomic::Ordering::Release);
                            dumped
                        }))
                    },
                    finished: &|| finished.load(std::sync::atomic::Ordering::Acquire),
                }),
            )
            .unwrap();
        dumping
            .expect("the dump was started")
            .join()
            .unwrap()
            .unwrap();
        std::thread::sleep(Duration::from_millis(200));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        (snapshot, writer.join().unwrap())
    });
    assert!(
        matches!(
            snapshot,
            Snapshot::Taken {
                dump_in_snapshot: true,
                ..
            }
        ),
        "{snapshot:?}"
    );
    assert!(crate::db::is_zstd(&dump).unwrap());
    db.create_database_only(&from_dump).unwrap();
    let site = SiteUser::new(&db, &tag);
    db.with_grant_on(&from_dump, &site.1, || {
        db.load(&from_dump, &site.1, &site.2, &dump)
    })
    .unwrap();
    db.create_database_only(&from_files).unwrap();
    db.with_grant_on(&from_files, &site.1, || {
        db.import_tablespaces(&from_files, &site.1, &site.2, &tablespace_dir(&dump))
    })
    .unwrap();
    let (files, sql, live) = (
        rows(&db, &from_files),
        rows(&db, &from_dump),
        rows(&db, &source),
    );
    assert_eq!(files, sql, "the dump and the tablespaces differ");
    assert_ne!(
        files, live,
        "the site wrote after the snapshot ({writes} writes)"
    );
}

#[test]
fn databases_that_cannot_travel_as_tablespaces_are_skipped_with_the_reason() {
    let db = local_mariadb();
    let name = format!("fjt{}_{}_odd", std::process::id(), crate::random_hex(3));
    let _dropped = Dropped(&db, vec![name.clone()]);
    db.create_database_only(&name).unwrap();
    let out = tempfile::tempdir().unwrap();
    let snapshot = |why: &str| {
        let dir = out.path().join(crate::random_hex(4));
        let got = db.snapshot_tablespaces(&name, &dir, None).unwrap();
        assert!(
            matches!(&got, Snapshot::Skipped(w) if w.contains(why)),
            "{why}: {got:?}"
        );
        assert!(!dir.exists(), "nothing left behind");
    };
    snapshot("no tables");
    db.admin(&[format!(
        "CREATE TABLE `{name}`.pages (id INT PRIMARY KEY, body TEXT, FULLTEXT (body))"
    )])
    .unwrap();
    snapshot("full-text");
    db.admin(&[
        format!("DROP TABLE `{name}`.pages"),
        format!("CREATE TABLE `{name}`.cache (id INT PRIMARY KEY) ENGINE=Aria"),
    ])
    .unwrap();
    snapshot("not InnoDB");
}
