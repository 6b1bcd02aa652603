use model::{BackupTarget, HostKey, Name};

use super::tests::{new_site, setup, store};
use super::*;
use crate::NewBackupCopy;

fn target(s: &SqliteStore, name: &str) -> crate::BackupTargetRecord {
    s.add_backup_target(
        &Name::parse("n", name).unwrap(),
        &BackupTarget::parse("ssh", "backup@store1:2222:/srv/copies").unwrap(),
        &HostKey::parse(
            "k",
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBn2a0d6wpWkoKU1X9bU9a",
        )
        .unwrap(),
    )
    .unwrap()
}

fn add_backup(s: &SqliteStore, site_id: i64, copies: Vec<NewBackupCopy>) {
    s.with(|c| {
        let tx = c.transaction()?;
        apply_effect(
            &tx,
            &TaskEffect::AddBackup(NewBackup {
                site_id,
                site_name: "a.example".into(),
                path: "/var/lib/fjord/backups/a.example/a.tar.zst".into(),
                size: 10,
                copies,
            }),
        )?;
        tx.commit()?;
        Ok(())
    })
    .unwrap();
}

#[test]
fn a_backups_copies_are_kept_with_it_and_a_target_a_policy_names_stays() {
    let s = store();
    let (_, platform) = setup(&s);
    let (site, _) = s
        .insert_site(&new_site("a.example", platform, &[]), None)
        .unwrap();
    let off = target(&s, "off1");
    assert_eq!(s.backup_target("off1").unwrap(), off);
    assert_eq!(off.target.ssh.port, 2222);
    assert!(matches!(
        s.add_backup_target(&off.name, &off.target, &off.host_key),
        Err(StoreError::Conflict(_))
    ));

    add_backup(
        &s,
        site.id,
        vec![NewBackupCopy {
            target_id: off.id,
            path: "/srv/copies/a.example/a.tar.zst".into(),
            size: 10,
            sha256: "ab".repeat(32),
        }],
    );
    let copies = s.site_backup_copies(site.id).unwrap();
    assert_eq!(copies.len(), 1);
    assert_eq!(copies[0].target_name, "off1");
    assert_eq!(s.backup_copies_by_site_name("a.example").unwrap(), copies);

    // Named by a site's policy, then by the installation's: refused, and kept.
    s.set_site_backup_copy_to(site.id, Some("off1")).unwrap();
    let refused = s.remove_backup_target("off1", "backup.copy_to");
    assert!(
        matches!(&refused, Err(StoreError::Conflict(m)) if m.contains("a.example")),
        "{refused:?}"
    );
    s.set_site_backup_copy_to(site.id, None).unwrap();
    s.set_setting("backup.copy_to", Some("off1")).unwrap();
    assert!(s.remove_backup_target("off1", "backup.copy_to").is_err());
    assert_eq!(s.site_backup_copies(site.id).unwrap().len(), 1);
    s.set_setting("backup.copy_to", None).unwrap();

    // A backup removed takes its copies' rows with it; a target removed, those it held.
    let id = copies[0].backup_id;
    s.with(|c| {
        let tx = c.transaction()?;
        apply_effect(&tx, &TaskEffect::RemoveBackups(vec![id]))?;
        tx.commit()?;
        Ok(())
    })
    .unwrap();
    assert!(s.site_backup_copies(site.id).unwrap().is_empty());
    add_backup(
        &s,
        site.id,
        vec![NewBackupCopy {
            target_id: off.id,
            path: "/srv/copies/a.example/b.tar.zst".into(),
            size: 10,
            sha256: "cd".repeat(32),
        }],
    );
    s.remove_backup_target("off1", "backup.copy_to").unwrap();
    assert!(s.site_backup_copies(site.id).unwrap().is_empty());
    assert!(matches!(
        s.backup_target("off1"),
        Err(StoreError::NotFound(_))
    ));
}
