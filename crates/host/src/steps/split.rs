//! A task's steps split between two machines: the web server's, where the site's files,
//! config and processes are, and the database server's, where its database is, when the two
//! are different machines. Each step goes to the machine it changes, and is journaled there.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::*;
use crate::acme::{AcmeCa, Issued, NewAccount};
use crate::remote::targets::{Copied, TargetAddress};

pub struct SplitSteps<'a> {
    pub web: &'a mut dyn Steps,
    pub db: &'a mut dyn Steps,
}

/// What is not made yet across two machines: a database's dump carried between them.
fn across(what: &str) -> HostError {
    HostError::Refused(format!(
        "{what} of a site whose database is on another server than its files is not made \
         yet: fjord does not yet carry a dump between two servers"
    ))
}

impl Steps for SplitSteps<'_> {
    fn reads(&self) -> Arc<dyn crate::Reads> {
        self.web.reads()
    }

    fn log(&mut self, line: &str) {
        self.web.log(line);
    }

    fn acme_account(&mut self, ca: &AcmeCa, email: &str) -> Result<Option<NewAccount>> {
        self.web.acme_account(ca, email)
    }

    fn acme_order(
        &mut self,
        ca: &AcmeCa,
        credentials: &Path,
        names: &[String],
        challenges: &Path,
    ) -> Result<Option<Issued>> {
        self.web.acme_order(ca, credentials, names, challenges)
    }

    fn acme_orders(
        &mut self,
        ca: &AcmeCa,
        credentials: &Path,
        orders: &[Vec<String>],
        challenges: &Path,
        in_flight: usize,
    ) -> Result<Option<Vec<Result<Issued>>>> {
        self.web
            .acme_orders(ca, credentials, orders, challenges, in_flight)
    }

    fn make_dir(&mut self, path: &Path) -> Result<()> {
        self.web.make_dir(path)
    }

    fn make_own_dir(&mut self, path: &Path) -> Result<()> {
        self.web.make_own_dir(path)
    }

    fn write_file(&mut self, path: &Path, contents: &[u8], mode: u32) -> Result<()> {
        self.web.write_file(path, contents, mode)
    }

    fn remove_tree(&mut self, path: &Path) -> Result<Option<PathBuf>> {
        self.web.remove_tree(path)
    }

    fn fix_permissions(&mut self, root: &Path, ownership: &Ownership) -> Result<()> {
        self.web.fix_permissions(root, ownership)
    }

    fn site_logs(&mut self, logs: &LogDir) -> Result<()> {
        self.web.site_logs(logs)
    }

    fn create_user(&mut self, name: &str, home: &Path) -> Result<()> {
        self.web.create_user(name, home)
    }

    fn remove_user(&mut self, name: &str) -> Result<()> {
        self.web.remove_user(name)
    }

    fn run_php(&mut self, run: &PhpRun) -> Result<String> {
        self.web.run_php(run)
    }

    fn copy_in(&mut self, from: &Path, to: &Path, owned: &[&str]) -> Result<()> {
        self.web.copy_in(from, to, owned)
    }

    fn nginx(&mut self, ctl: &NginxCtl, changes: Vec<(PathBuf, Option<Vec<u8>>)>) -> Result<()> {
        self.web.nginx(ctl, changes)
    }

    fn let_requests_in_flight_finish(&mut self, ctl: &NginxCtl) -> Result<()> {
        self.web.let_requests_in_flight_finish(ctl)
    }

    fn php_fpm(&mut self, ctl: &PhpFpmCtl, changes: Vec<(PathBuf, Option<Vec<u8>>)>) -> Result<()> {
        self.web.php_fpm(ctl, changes)
    }

    fn php_fpm_beside(
        &mut self,
        ctl: &PhpFpmCtl,
        changes: Vec<(PathBuf, Option<Vec<u8>>)>,
        beside: &mut dyn FnMut(&mut dyn Steps) -> Result<()>,
    ) -> Result<()> {
        // What runs beside may step on either machine: one after the other.
        self.web.php_fpm(ctl, changes)?;
        beside(self)
    }

    fn create_database(
        &mut self,
        db: &DbCtl,
        name: &str,
        user: &str,
        password: &str,
    ) -> Result<()> {
        self.db.create_database(db, name, user, password)
    }

    fn repair_database(
        &mut self,
        db: &DbCtl,
        name: &str,
        user: &str,
        password: &str,
    ) -> Result<()> {
        self.db.repair_database(db, name, user, password)
    }

    fn drop_database(&mut self, db: &DbCtl, name: &str, user: &str, password: &str) -> Result<()> {
        self.db.drop_database(db, name, user, password)
    }

    fn check_db_admin(&mut self, db: &DbCtl) -> Result<()> {
        self.db.check_db_admin(db)
    }

    fn create_backup(&mut self, request: &BackupRequest) -> Result<Option<Manifest>> {
        match &request.db {
            Some(BackupDb::Server { .. }) => Err(across("a backup")),
            _ => self.web.create_backup(request),
        }
    }

    fn extract_backup(
        &mut self,
        archive: &Path,
        files: &Path,
        private: &Path,
    ) -> Result<(PathBuf, Option<Manifest>)> {
        self.web.extract_backup(archive, files, private)
    }

    fn extract_and_back_up(
        &mut self,
        _archive: &Path,
        _files: &Path,
        _private: &Path,
        _backup: &BackupRequest,
    ) -> Result<ExtractedAndBackedUp> {
        Err(across("a restore"))
    }

    fn swap_tree(&mut self, target: &Path, replacement: &Path) -> Result<()> {
        self.web.swap_tree(target, replacement)
    }

    fn create_database_from(
        &mut self,
        _db: &DbCtl,
        _name: &str,
        _user: &str,
        _password: &str,
        _dump: &Path,
    ) -> Result<()> {
        Err(across("a database made from a backup"))
    }

    fn freeze_database_writes(&mut self, db: &DbCtl, name: &str, user: &str) -> Result<()> {
        self.db.freeze_database_writes(db, name, user)
    }

    fn thaw_database_writes(&mut self, db: &DbCtl, name: &str, user: &str) -> Result<()> {
        self.db.thaw_database_writes(db, name, user)
    }

    fn copy_database(
        &mut self,
        _from: &DbCtl,
        _from_name: &str,
        _to: &DbCtl,
        _name: &str,
        _user: &str,
        _password: &str,
    ) -> Result<()> {
        Err(across("a database's copy"))
    }

    fn sync_tree(&mut self, from: &Path, to: &Path, since_s: i64, remove_gone: bool) -> Result<()> {
        self.web.sync_tree(from, to, since_s, remove_gone)
    }

    fn replace_database(
        &mut self,
        _db: &DbCtl,
        _name: &str,
        _user: &str,
        _password: &str,
        _dump: &Path,
    ) -> Result<()> {
        Err(across("a database replaced from a backup"))
    }

    fn snapshot_database(
        &mut self,
        db: &DbCtl,
        name: &str,
        user: &str,
        password: &str,
    ) -> Result<()> {
        self.db.snapshot_database(db, name, user, password)
    }

    fn copy_to_backup_target(&mut self, copy: &TargetCopy) -> Result<Option<Copied>> {
        self.web.copy_to_backup_target(copy)
    }

    fn fetch_from_backup_target(&mut self, fetch: &TargetFetch) -> Result<PathBuf> {
        self.web.fetch_from_backup_target(fetch)
    }

    fn remove_from_backup_target(&mut self, target: &TargetAddress, keys: &Path, path: &str) {
        self.web.remove_from_backup_target(target, keys, path)
    }
}
