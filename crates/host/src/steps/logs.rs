//! A site's log dir: made, or put right, with every change's undo journaled first.

use super::LiveSteps;
use crate::Result;
use crate::anchor;
use crate::fsops;
use crate::journal::Undo;
use crate::logs::{LOG_DIR_MODE, LOG_FILE_MODE, LogDir, repairs};

impl LiveSteps<'_> {
    pub(super) fn make_site_logs(&mut self, logs: &LogDir) -> Result<()> {
        let what = format!("make the log dir {}", logs.dir.display());
        fsops::refuse_link(&logs.dir)?;
        let (root, rel, anchor) = anchor::open_now(&logs.dir)?;
        let gid = logs.gid()?;
        if !root.is_dir(&rel)? {
            self.record(
                &what,
                &Undo::RemoveTree {
                    path: logs.dir.clone(),
                    beneath: Some(anchor.clone()),
                },
                None,
            )?;
            root.create_dir(&rel, 0o700)?;
            root.set_mode_owner(&rel, LOG_DIR_MODE, Some((0, gid)))?;
        }
        let changes = repairs(&root, &rel, logs)?;
        if !changes.is_empty() {
            self.record(
                &what,
                &Undo::RestoreModes {
                    entries: changes.iter().map(|(e, _, _)| e.clone()).collect(),
                    beneath: Some(anchor.clone()),
                },
                None,
            )?;
            for (entry, mode, owner) in &changes {
                let rel = entry
                    .path
                    .strip_prefix(root.path())
                    .unwrap_or(std::path::Path::new(""));
                root.set_mode_owner_of(rel, *mode, Some(*owner), entry.inode)?;
            }
        }
        for file in &logs.files {
            let path = rel.join(&file.name);
            if root.stat(&path)?.is_some() {
                continue;
            }
            let (uid, gid) = logs.ids_of(file)?;
            self.record(
                &what,
                &Undo::RestoreFile {
                    path: logs.dir.join(&file.name),
                    existed: false,
                    mode: 0,
                    beneath: Some(anchor.clone()),
                },
                None,
            )?;
            // Made with its final owner and mode before anyone may open it: nginx would
            // make it 0644, for every user to read.
            root.replace_file_as(
                &path,
                LOG_FILE_MODE,
                Some((uid.unwrap_or(0), gid)),
                &mut std::io::empty(),
            )?;
        }
        self.after_step(&what)
    }
}
