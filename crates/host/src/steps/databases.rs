//! The database steps of [`LiveSteps`]: each journals its undo (a dump in the task's
//! scratch dir where the undo needs one) before it changes a database server.
//! The `Steps` impl forwards to these.

use std::path::{Path, PathBuf};

use super::LiveSteps;
use crate::db::DbCtl;
use crate::journal::Undo;
use crate::{HostError, Result};

impl LiveSteps<'_> {
    /// Dumps a database into the task's scratch dir, for an undo that may need it.
    fn dump_to_scratch(&self, db: &DbCtl, name: &str, suffix: &str) -> Result<PathBuf> {
        crate::ensure_dir(&self.scratch)?;
        let dump = self.scratch.join(format!("{name}.{suffix}"));
        db.dump(name, &dump)?;
        // The undo of a drop: it must outlive a power cut right after the drop.
        crate::fsops::sync_file_and_dir(&dump)?;
        Ok(dump)
    }

    /// Makes a database that must not exist yet: fjord never adopts one it did not create.
    fn new_database(
        &mut self,
        db: &DbCtl,
        name: &str,
        user: &str,
        what: &str,
        make: impl FnOnce() -> Result<()>,
    ) -> Result<()> {
        if db.database_exists(name)? || db.user_exists(user)? {
            return Err(HostError::Refused(format!(
                "database or user {name} already exists on the server and is not this site's: fjord will not touch it"
            )));
        }
        let undo = Undo::DropDatabase {
            db: db.clone(),
            name: name.into(),
            user: user.into(),
        };
        self.record(what, &undo, None)?;
        make()?;
        self.after_step(what)
    }

    pub(super) fn freeze_database_writes(
        &mut self,
        db: &DbCtl,
        name: &str,
        user: &str,
    ) -> Result<()> {
        let what = format!("hold database user {user} to reads of {name}");
        let undo = Undo::ThawDatabaseWrites {
            db: db.clone(),
            name: name.into(),
            user: user.into(),
        };
        self.record(&what, &undo, None)?;
        let started = std::time::Instant::now();
        db.freeze_writes(name, user)?;
        self.journal.log(&format!(
            "database writes of {user} frozen and its sessions ended in {} ms",
            started.elapsed().as_millis()
        ));
        self.after_step(&what)
    }

    pub(super) fn thaw_database_writes(
        &mut self,
        db: &DbCtl,
        name: &str,
        user: &str,
    ) -> Result<()> {
        let what = format!("give database user {user} its writes to {name} back");
        // Undone by nothing of its own: the undo of the freeze that came before thaws again,
        // and a rollback from here on puts back the state the freeze began with.
        self.record(&what, &Undo::Nothing, None)?;
        db.thaw_writes(name, user)?;
        self.after_step(&what)
    }

    pub(super) fn copy_database(
        &mut self,
        from: &DbCtl,
        from_name: &str,
        to: &DbCtl,
        name: &str,
        user: &str,
        password: &str,
    ) -> Result<()> {
        let dump = self.dump_to_scratch(from, from_name, "move")?;
        self.create_database_from(to, name, user, password, &dump)
    }

    pub(super) fn create_database_from(
        &mut self,
        db: &DbCtl,
        name: &str,
        user: &str,
        password: &str,
        dump: &Path,
    ) -> Result<()> {
        let what = format!("create database {name} from {}", dump.display());
        let journal = self.journal;
        self.new_database(db, name, user, &what, || {
            journal.log(&db.restore(name, user, password, dump)?);
            Ok(())
        })
    }

    pub(super) fn replace_database(
        &mut self,
        db: &DbCtl,
        name: &str,
        user: &str,
        password: &str,
        dump: &Path,
    ) -> Result<()> {
        if !db.database_exists(name)? {
            // Lost (a rollback that could not bring it back): the backup brings it back.
            let what = format!("recreate the missing database {name} from the backup");
            let undo = Undo::DropDatabase {
                db: db.clone(),
                name: name.into(),
                user: user.into(),
            };
            self.record(&what, &undo, None)?;
            // A user left without its database goes first.
            db.drop(name, user)?;
            db.restore(name, user, password, dump)?;
            return self.after_step(&what);
        }
        if db.kind == crate::DbKind::Postgresql {
            return self.replace_database_by_rename(db, name, user, password, dump);
        }
        if db.swappable_tables(name)?.is_some() {
            let (stage, hold, what) = self.record_staging_load(db, name, dump)?;
            db.create_database_only(&stage)?;
            // The site's writes are frozen: the ids it handed out so far are all in the
            // backup taken before the restore, and none handed out after it may collide.
            let before = db.id_counters(name, user, password)?;
            let (note, raised) = db.with_grant_on(&stage, user, || {
                let note = db.load_backup(&stage, user, password, dump)?;
                Ok((note, db.raise_id_counters(&stage, user, password, &before)?))
            })?;
            self.journal.log(&note);
            for line in raised {
                self.journal.log(&line);
            }
            self.after_step(&what)?;
            // An empty or unswappable restore goes the slow way; the staging database is
            // dropped with the task's trash.
            if db.swappable_tables(&stage)?.is_some_and(|t| !t.is_empty()) {
                let what = format!("swap the tables of {name} for those of {stage}");
                let undo = Undo::SwapTablesBack {
                    db: db.clone(),
                    live: name.into(),
                    hold: hold.clone(),
                    stage: stage.clone(),
                };
                self.record(&what, &undo, None)?;
                self.trash_databases.push((db.clone(), hold.clone()));
                db.swap_tables(name, &hold, &stage)?;
                return self.after_step(&what);
            }
        }
        let what = format!("replace the content of database {name}");
        let before = db.id_counters(name, user, password)?;
        let old = self.dump_to_scratch(db, name, "before-restore")?;
        let undo = Undo::ReplaceDatabaseBack {
            db: db.clone(),
            name: name.into(),
            user: user.into(),
            password: password.into(),
            dump: old,
        };
        self.record(&what, &undo, None)?;
        db.drop(name, user)?;
        db.restore(name, user, password, dump)?;
        for line in db.raise_id_counters(name, user, password, &before)? {
            self.journal.log(&line);
        }
        self.after_step(&what)
    }

    /// Names a staging and a holding database beside `name` and records the load of the
    /// staging one (undo: dropped; the task's trash purges it in any case). Returns the
    /// staging name, the holding name and the step's description.
    fn record_staging_load(
        &mut self,
        db: &DbCtl,
        name: &str,
        dump: &Path,
    ) -> Result<(String, String, String)> {
        let tag = crate::random_hex(4);
        let (stage, hold) = (format!("{name}_fjs{tag}"), format!("{name}_fjh{tag}"));
        let what = format!("load {} into staging database {stage}", dump.display());
        let undo = Undo::DropStagingDatabase {
            db: db.clone(),
            name: stage.clone(),
        };
        self.record(&what, &undo, None)?;
        self.trash_databases.push((db.clone(), stage.clone()));
        Ok((stage, hold, what))
    }

    /// PostgreSQL: the backup is loaded into a staging database the site's user owns while
    /// the site reads its live one, then the two are switched by renames (`db/rename.rs`).
    fn replace_database_by_rename(
        &mut self,
        db: &DbCtl,
        name: &str,
        user: &str,
        password: &str,
        dump: &Path,
    ) -> Result<()> {
        let (stage, hold, what) = self.record_staging_load(db, name, dump)?;
        db.create_staging_database_for(&stage, user)?;
        let before = db.id_counters(name, user, password)?;
        db.load(&stage, user, password, dump)?;
        for line in db.raise_id_counters(&stage, user, password, &before)? {
            self.journal.log(&line);
        }
        self.after_step(&what)?;
        let what = format!("switch database {name} for {stage} (the old one kept as {hold})");
        let undo = Undo::SwapDatabasesBack {
            db: db.clone(),
            live: name.into(),
            hold: hold.clone(),
            stage: stage.clone(),
        };
        self.record(&what, &undo, None)?;
        self.trash_databases.push((db.clone(), hold.clone()));
        let started = std::time::Instant::now();
        db.swap_databases(name, &hold, &stage)?;
        self.journal.log(&format!(
            "database {name} switched in {} ms (connections to it refused meanwhile)",
            started.elapsed().as_millis()
        ));
        self.after_step(&what)
    }

    pub(super) fn create_database(
        &mut self,
        db: &DbCtl,
        name: &str,
        user: &str,
        password: &str,
    ) -> Result<()> {
        let what = format!("create database {name} and user {user}");
        self.new_database(db, name, user, &what, || db.create(name, user, password))
    }

    pub(super) fn repair_database(
        &mut self,
        db: &DbCtl,
        name: &str,
        user: &str,
        password: &str,
    ) -> Result<()> {
        let what = format!("check database {name}");
        if !db.database_exists(name)? {
            return Err(HostError::Refused(format!(
                "database {name} is missing on the server: restore the site from a backup"
            )));
        }
        let opens = db.can_login(name, user, password);
        if !opens || !db.grants_are_exact(name, user)? {
            self.journal.log(&if opens {
                format!(
                    "user {user} is granted more than {name}: setting its grants to {name} alone"
                )
            } else {
                format!("user {user} cannot open {name}: repairing its password and grants")
            });
            self.record(&format!("repair user {user}"), &Undo::Nothing, None)?;
            db.repair(name, user, password)?;
        }
        self.after_step(&what)
    }

    pub(super) fn drop_database(
        &mut self,
        db: &DbCtl,
        name: &str,
        user: &str,
        password: &str,
    ) -> Result<()> {
        let what = format!("drop database {name} and user {user}");
        if db.database_exists(name)? {
            let dump = self.dump_to_scratch(db, name, "dump")?;
            let undo = Undo::RestoreDatabase {
                db: db.clone(),
                name: name.into(),
                user: user.into(),
                password: password.into(),
                dump,
            };
            self.record(&what, &undo, None)?;
        }
        db.drop(name, user)?;
        self.after_step(&what)
    }

    pub(super) fn check_db_admin(&mut self, db: &DbCtl) -> Result<()> {
        db.check_admin()?;
        self.journal.log(&format!(
            "{:?} administrator can create and drop databases",
            db.kind
        ));
        if db.open_to_every_local_user()? {
            self.journal.log(&format!(
                "warning: any local user can sign in to this {:?} server as {} without a password, \
                 so any site's code can read and change every site's database: give the \
                 administrator a password or socket-only authentication",
                db.kind, db.admin_user
            ));
        }
        Ok(())
    }

    pub(super) fn snapshot_database(
        &mut self,
        db: &DbCtl,
        name: &str,
        user: &str,
        password: &str,
    ) -> Result<()> {
        let what = format!("snapshot database {name} before it is changed in place");
        let dump = self.dump_to_scratch(db, name, "before-change.dump")?;
        let undo = Undo::ReplaceDatabaseBack {
            db: db.clone(),
            name: name.into(),
            user: user.into(),
            password: password.into(),
            dump,
        };
        self.record(&what, &undo, None)?;
        self.after_step(&what)
    }
}
