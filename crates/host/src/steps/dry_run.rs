//! The dry run: every step printed, with full file contents, and nothing changed.

use std::path::{Path, PathBuf};

use super::*;

/// Prints each step, with full file contents, and changes nothing.
pub struct DryRun {
    pub out: Vec<String>,
    steps: u32,
    /// The machine the plan is for: what the script reads there decides the plan.
    reads: std::sync::Arc<dyn crate::Reads>,
}

impl Default for DryRun {
    fn default() -> Self {
        Self::new()
    }
}

impl DryRun {
    pub fn new() -> DryRun {
        DryRun::reading(std::sync::Arc::new(crate::LocalReads))
    }

    /// A dry run of steps on the machine `reads` reads.
    pub fn reading(reads: std::sync::Arc<dyn crate::Reads>) -> DryRun {
        DryRun {
            out: Vec::new(),
            steps: 0,
            reads,
        }
    }

    fn step(&mut self, what: String) {
        self.steps += 1;
        self.out.push(format!("step {}: {what}", self.steps));
    }

    /// Each file a daemon's config change writes (with its content) or removes.
    fn config_changes(&mut self, what: &str, changes: &[(PathBuf, Option<Vec<u8>>)]) {
        for (path, contents) in changes {
            match contents {
                Some(c) => {
                    self.step(format!("write {what} {}", path.display()));
                    self.contents(c);
                }
                None => self.step(format!("remove {what} {}", path.display())),
            }
        }
    }

    fn contents(&mut self, contents: &[u8]) {
        let text = String::from_utf8_lossy(contents);
        for line in text.lines() {
            self.out.push(format!("    | {line}"));
        }
    }
}

impl Steps for DryRun {
    fn reads(&self) -> std::sync::Arc<dyn crate::Reads> {
        self.reads.clone()
    }

    fn copy_to_backup_target(
        &mut self,
        copy: &super::TargetCopy,
    ) -> Result<Option<crate::remote::targets::Copied>> {
        self.step(format!(
            "copy backup {} to backup target {} as {}",
            copy.archive.display(),
            copy.target.name,
            copy.path
        ));
        Ok(None)
    }

    fn remove_from_backup_target(
        &mut self,
        target: &crate::remote::targets::TargetAddress,
        _keys: &Path,
        path: &str,
    ) {
        self.step(format!("remove {path} from backup target {}", target.name));
    }

    fn fetch_from_backup_target(&mut self, fetch: &super::TargetFetch) -> Result<PathBuf> {
        let to = fetch
            .keep_at
            .clone()
            .unwrap_or_else(|| PathBuf::from("(the task's scratch dir)"));
        self.step(format!(
            "fetch {} from backup target {} to {}, checked by its SHA-256",
            fetch.path,
            fetch.target.name,
            to.display()
        ));
        Ok(to)
    }

    fn create_backup(&mut self, request: &BackupRequest) -> Result<Option<Manifest>> {
        let db = request
            .db
            .as_ref()
            .map(|d| format!(" and {}", d.member()))
            .unwrap_or_default();
        self.step(format!(
            "write backup {} of {}{db}",
            request.out.display(),
            request.docroot.display()
        ));
        Ok(None)
    }

    fn extract_backup(
        &mut self,
        archive: &Path,
        files: &Path,
        private: &Path,
    ) -> Result<(PathBuf, Option<Manifest>)> {
        self.step(format!(
            "check {} and extract it to {} and {}",
            archive.display(),
            files.display(),
            private.display()
        ));
        Ok((PathBuf::from("(the database dump of the backup)"), None))
    }

    fn extract_and_back_up(
        &mut self,
        archive: &Path,
        files: &Path,
        private: &Path,
        backup: &BackupRequest,
    ) -> Result<ExtractedAndBackedUp> {
        let (dump, manifest) = self.extract_backup(archive, files, private)?;
        let backup = self.create_backup(backup)?;
        Ok(ExtractedAndBackedUp {
            dump,
            manifest,
            backup,
        })
    }

    fn swap_tree(&mut self, target: &Path, replacement: &Path) -> Result<()> {
        self.step(format!(
            "replace {} with {}",
            target.display(),
            replacement.display()
        ));
        Ok(())
    }

    fn freeze_database_writes(&mut self, db: &DbCtl, name: &str, user: &str) -> Result<()> {
        self.step(format!(
            "hold {:?} database user {user} to reads of {name} and end its sessions",
            db.kind
        ));
        Ok(())
    }

    fn thaw_database_writes(&mut self, db: &DbCtl, name: &str, user: &str) -> Result<()> {
        self.step(format!(
            "give {:?} database user {user} its writes to {name} back",
            db.kind
        ));
        Ok(())
    }

    fn copy_database(
        &mut self,
        from: &DbCtl,
        from_name: &str,
        to: &DbCtl,
        name: &str,
        user: &str,
        _password: &str,
    ) -> Result<()> {
        self.step(format!(
            "dump {:?} database {from_name}, create {:?} database {name} and user {user} from it",
            from.kind, to.kind
        ));
        Ok(())
    }

    fn sync_tree(
        &mut self,
        from: &Path,
        to: &Path,
        _since_s: i64,
        remove_gone: bool,
    ) -> Result<()> {
        self.step(format!(
            "copy what changed in {} into {}{}",
            from.display(),
            to.display(),
            if remove_gone {
                ", remove what is gone"
            } else {
                ""
            }
        ));
        Ok(())
    }

    fn create_database_from(
        &mut self,
        db: &DbCtl,
        name: &str,
        user: &str,
        _password: &str,
        dump: &Path,
    ) -> Result<()> {
        self.step(format!(
            "create {:?} database {name} and user {user} from {}",
            db.kind,
            dump.display()
        ));
        Ok(())
    }

    fn replace_database(
        &mut self,
        db: &DbCtl,
        name: &str,
        _user: &str,
        _password: &str,
        dump: &Path,
    ) -> Result<()> {
        self.step(format!(
            "dump {:?} database {name}, then replace its content with {}",
            db.kind,
            dump.display()
        ));
        Ok(())
    }

    fn create_database(
        &mut self,
        db: &DbCtl,
        name: &str,
        user: &str,
        _password: &str,
    ) -> Result<()> {
        self.step(format!(
            "create {:?} database {name} and user {user}, granted only on it",
            db.kind
        ));
        Ok(())
    }

    fn repair_database(
        &mut self,
        db: &DbCtl,
        name: &str,
        user: &str,
        _password: &str,
    ) -> Result<()> {
        self.step(format!(
            "check that user {user} opens {:?} database {name}; repair if not",
            db.kind
        ));
        Ok(())
    }

    fn drop_database(&mut self, db: &DbCtl, name: &str, user: &str, _password: &str) -> Result<()> {
        self.step(format!(
            "dump {:?} database {name}, then drop it and user {user}",
            db.kind
        ));
        Ok(())
    }

    fn check_db_admin(&mut self, db: &DbCtl) -> Result<()> {
        self.out.push(format!(
            "# check that the {:?} administrator can create and drop a database",
            db.kind
        ));
        Ok(())
    }

    fn log(&mut self, line: &str) {
        self.out.push(format!("# {line}"));
    }

    fn acme_account(&mut self, ca: &AcmeCa, email: &str) -> Result<Option<NewAccount>> {
        self.step(format!(
            "register an account for {email} at the ACME CA {}",
            ca.directory
        ));
        Ok(None)
    }

    fn acme_order(
        &mut self,
        ca: &AcmeCa,
        _credentials: &Path,
        names: &[String],
        challenges: &Path,
    ) -> Result<Option<Issued>> {
        self.step(format!(
            "order a certificate for {} from the ACME CA {} (HTTP-01 answers in {})",
            names.join(", "),
            ca.directory,
            challenges.display()
        ));
        Ok(None)
    }

    fn acme_orders(
        &mut self,
        ca: &AcmeCa,
        _credentials: &Path,
        orders: &[Vec<String>],
        challenges: &Path,
        in_flight: usize,
    ) -> Result<Option<Vec<Result<Issued>>>> {
        for names in orders {
            self.step(format!(
                "order a certificate for {} from the ACME CA {} ({in_flight} orders in flight, HTTP-01 answers in {})",
                names.join(", "),
                ca.directory,
                challenges.display()
            ));
        }
        Ok(None)
    }

    fn make_dir(&mut self, path: &Path) -> Result<()> {
        let note = if path.is_dir() { " (exists)" } else { "" };
        self.step(format!("make directory {}{note}", path.display()));
        Ok(())
    }

    fn make_own_dir(&mut self, path: &Path) -> Result<()> {
        self.make_dir(path)
    }

    fn site_logs(&mut self, logs: &crate::LogDir) -> Result<()> {
        self.step(format!(
            "make the log dir {} ({})",
            logs.dir.display(),
            logs.files
                .iter()
                .map(|f| f.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
        Ok(())
    }

    fn write_file(&mut self, path: &Path, contents: &[u8], mode: u32) -> Result<()> {
        let same = fsops::read_existing(path)
            .ok()
            .flatten()
            .is_some_and(|(c, m)| c == contents && m == mode);
        let note = if same { " (unchanged)" } else { "" };
        self.step(format!("write {} (mode {mode:o}){note}", path.display()));
        // A file only its owner may read holds a secret (a key, credentials): not printed.
        if mode & 0o077 == 0 {
            self.out
                .push(format!("    | ({} bytes, not shown)", contents.len()));
        } else {
            self.contents(contents);
        }
        Ok(())
    }

    fn remove_tree(&mut self, path: &Path) -> Result<Option<PathBuf>> {
        self.step(format!(
            "remove {} (set aside, purged on success)",
            path.display()
        ));
        Ok(None)
    }

    fn fix_permissions(&mut self, root: &Path, ownership: &Ownership) -> Result<()> {
        self.step(format!(
            "fix permissions under {} ({})",
            root.display(),
            ownership.describe()
        ));
        Ok(())
    }

    fn snapshot_database(
        &mut self,
        db: &DbCtl,
        name: &str,
        _user: &str,
        _password: &str,
    ) -> Result<()> {
        self.step(format!(
            "dump {:?} database {name} to the task's scratch dir, to be put back on failure",
            db.kind
        ));
        Ok(())
    }

    fn create_user(&mut self, name: &str, home: &Path) -> Result<()> {
        self.step(format!(
            "create system user and group {name} (home {}, no login shell)",
            home.display()
        ));
        Ok(())
    }

    fn remove_user(&mut self, name: &str) -> Result<()> {
        self.step(format!("remove user and group {name}"));
        Ok(())
    }

    fn copy_in(&mut self, from: &Path, to: &Path, _owned: &[&str]) -> Result<()> {
        self.step(format!(
            "copy the code base {} to {} (what its links out of it lead to copied, as cp -L would)",
            from.display(),
            to.display()
        ));
        Ok(())
    }

    fn run_php(&mut self, run: &PhpRun) -> Result<String> {
        self.step(format!("run {} as {}", run.describe, run.user));
        Ok(String::new())
    }

    fn php_fpm(&mut self, ctl: &PhpFpmCtl, changes: Vec<(PathBuf, Option<Vec<u8>>)>) -> Result<()> {
        self.config_changes("php-fpm pool", &changes);
        self.step(format!(
            "test with `{} -t -y {}`, then reload with SIGUSR2 and confirm",
            ctl.binary.display(),
            ctl.config.display()
        ));
        Ok(())
    }

    fn php_fpm_beside(
        &mut self,
        ctl: &PhpFpmCtl,
        changes: Vec<(PathBuf, Option<Vec<u8>>)>,
        beside: &mut dyn FnMut(&mut dyn Steps) -> Result<()>,
    ) -> Result<()> {
        self.php_fpm(ctl, changes)?;
        beside(self)
    }

    fn let_requests_in_flight_finish(&mut self, _ctl: &NginxCtl) -> Result<()> {
        self.step(format!(
            "wait (at most {} s) until nginx has answered the requests it took before the reload",
            DRAIN_BOUND.as_secs()
        ));
        Ok(())
    }

    fn nginx(&mut self, ctl: &NginxCtl, changes: Vec<(PathBuf, Option<Vec<u8>>)>) -> Result<()> {
        self.config_changes("nginx config", &changes);
        self.step(format!(
            "test with `{}`, then reload with `{}` and confirm",
            ctl.test_argv().join(" "),
            ctl.reload_argv().join(" ")
        ));
        Ok(())
    }
}
