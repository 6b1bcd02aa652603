//! The disk guard's pauses: which file systems hold which dispatcher's claims back.

use rusqlite::{Connection, params};

use crate::{ClaimPause, Result};

/// Replaces `owner`'s rows with `pauses`, in one transaction (a reader never sees half).
pub(super) fn set(c: &mut Connection, owner: &str, pauses: &[ClaimPause]) -> Result<()> {
    let tx = c.transaction()?;
    tx.execute("DELETE FROM claim_pauses WHERE owner = ?1", [owner])?;
    for p in pauses {
        tx.execute(
            "INSERT INTO claim_pauses
               (owner, path, used_percent, stop_percent, resume_percent, since)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                owner,
                p.path,
                p.used_percent,
                p.stop_percent,
                p.resume_percent,
                p.since_ms
            ],
        )?;
    }
    tx.commit()?;
    Ok(())
}

pub(super) fn read(c: &mut Connection) -> Result<Vec<ClaimPause>> {
    let mut stmt = c.prepare(
        "SELECT owner, path, used_percent, stop_percent, resume_percent, since
         FROM claim_pauses ORDER BY since, owner, path",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(ClaimPause {
            owner: r.get(0)?,
            path: r.get(1)?,
            used_percent: r.get(2)?,
            stop_percent: r.get(3)?,
            resume_percent: r.get(4)?,
            since_ms: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

#[cfg(test)]
mod tests {
    use crate::{ClaimPause, SqliteStore, Store};

    fn pause(owner: &str, path: &str, used_percent: f64) -> ClaimPause {
        ClaimPause {
            owner: owner.into(),
            path: path.into(),
            used_percent,
            stop_percent: 90,
            resume_percent: 85,
            since_ms: 1_000,
        }
    }

    #[test]
    fn a_dispatchers_pause_is_replaced_whole_and_cleared_without_touching_anothers() {
        let s = SqliteStore::open_in_memory().unwrap();
        s.set_claim_pause("a", &[pause("a", "/srv", 93.0), pause("a", "/var", 91.5)])
            .unwrap();
        s.set_claim_pause("b", &[pause("b", "/srv", 92.0)]).unwrap();
        assert_eq!(s.claim_pauses().unwrap().len(), 3);
        s.set_claim_pause("a", &[pause("a", "/var", 95.0)]).unwrap();
        let left = s.claim_pauses().unwrap();
        assert_eq!(
            left,
            vec![pause("a", "/var", 95.0), pause("b", "/srv", 92.0)]
        );
        s.set_claim_pause("a", &[]).unwrap();
        assert_eq!(s.claim_pauses().unwrap(), vec![pause("b", "/srv", 92.0)]);
    }
}
