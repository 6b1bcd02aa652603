//! How objects are shown: aligned tables for people, `--json` for scripts. JSON goes to
//! stdout only; messages and progress go to stderr.

use engine::Fjord;
use engine::model::{HttpService, Platform, Server, Site, Task};
use serde_json::{Value, json};

pub fn server_json(s: &Server) -> Value {
    let HttpService::Nginx(n) = &s.http;
    json!({
        "name": s.name,
        "http": {
            "type": "nginx",
            "binary": n.binary,
            "config": n.config,
            "prefix": n.prefix,
            "include_dir": n.include_dir,
            "listen": n.listen.to_string(),
            "reload": n.reload,
            "files_owner": n.files_owner,
        },
        "db": s.db,
    })
}

pub fn platform_json(fjord: &Fjord, p: &Platform) -> Value {
    let server = fjord
        .servers()
        .ok()
        .and_then(|all| all.into_iter().find(|s| s.id == p.server_id));
    json!({
        "name": p.name,
        "server": server.map(|s| s.name.to_string()),
        "path": p.path,
        "kind": p.kind.as_str(),
        "locked": p.locked,
    })
}

pub fn site_json(fjord: &Fjord, s: &Site) -> Value {
    let platform = fjord
        .platforms()
        .ok()
        .and_then(|all| all.into_iter().find(|p| p.id == s.platform_id));
    // The password stays in the state and the site's private db.env; it is never printed.
    let database = s.database.as_ref().map(|d| {
        let server = fjord.servers().ok().and_then(|all| all.into_iter().find(|v| v.id == d.server_id));
        json!({ "engine": d.engine.as_str(), "name": d.name, "user": d.user, "server": server.map(|v| v.name.to_string()) })
    });
    json!({
        "name": s.name,
        "name_unicode": s.name.to_unicode(),
        "platform": platform.map(|p| p.name.to_string()),
        "aliases": s.aliases,
        "redirect_aliases": s.redirect_aliases,
        "status": s.status.as_str(),
        "database": database,
    })
}

pub fn task_json(t: &Task) -> Value {
    json!({
        "id": t.id,
        "kind": t.kind.as_str(),
        "target": { "type": t.target.type_str(), "name": t.target_name },
        "args": t.args,
        "status": t.status.as_str(),
        "created_at_ms": t.created_at,
        "started_at_ms": t.started_at,
        "finished_at_ms": t.finished_at,
        "error": t.error,
    })
}

pub fn print_json(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

pub fn table(header: &[&str], rows: Vec<Vec<String>>) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(header.iter().map(|h| h.to_uppercase()).collect());
    for row in rows {
        line(row);
    }
}

pub fn time(ms: Option<i64>) -> String {
    let Some(ms) = ms else { return "-".into() };
    let secs = ms / 1000;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm), so that
/// times print in UTC without a date crate.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_times() {
        assert_eq!(super::time(Some(0)), "1970-01-01 00:00:00");
        assert_eq!(super::time(Some(1_795_000_000_000)), "2026-11-18 11:06:40");
    }
}
