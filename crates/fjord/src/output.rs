//! How objects are shown: aligned tables for people, `--json` for scripts. JSON goes to
//! stdout only; messages and progress go to stderr.

use std::collections::HashMap;
use std::io::Write;

use engine::Fjord;
use engine::model::{HttpService, Platform, Server, Site, Task};
use serde_json::{Value, json};

/// Prints a line to stdout. A reader that went away (`fjord task list | head -1`) ends the
/// command quietly and successfully, as it would end `cat`; any other write error is
/// reported once.
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::output::print_line(format_args!($($arg)*))
    };
}

pub fn print_line(line: std::fmt::Arguments) {
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout
        .write_fmt(line)
        .and_then(|()| stdout.write_all(b"\n"))
    {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("fjord: cannot write to stdout: {e}");
        std::process::exit(1);
    }
}

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
            "listen": n.listen.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "https_listen": n.https_listen.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "reload": n.reload,
            "files_owner": n.files_owner,
            "web_group": n.web_group,
        },
        "db": s.db,
        "php": s.php,
        "monitor": s.monitor,
        "nginx_restart": n.restart,
        "remote": s.remote.as_ref().map(|r| json!({
            "ssh": {"user": r.ssh.user, "host": r.ssh.host, "port": r.ssh.port},
            "host_key": r.host_key.to_string(),
            "dir": r.dir,
        })),
    })
}

/// A daemon's event as `server show` lists it.
pub fn service_event_json(e: &engine::model::ServiceEvent) -> Value {
    json!({
        "service": e.service,
        "event": e.event.as_str(),
        "detail": e.detail,
        "at_ms": e.at,
    })
}

/// Platform and server names by id, loaded once per command so that listing a thousand
/// sites costs two queries, not two thousand.
pub struct Names {
    platforms: HashMap<i64, String>,
    servers: HashMap<i64, String>,
    /// Each platform's upload limit, from which its sites without one of their own take it.
    upload_limits: HashMap<i64, Option<engine::model::UploadLimit>>,
}

impl Names {
    pub fn load(fjord: &Fjord) -> Result<Names, engine::Error> {
        let platforms = fjord.platforms()?;
        Ok(Names {
            upload_limits: platforms.iter().map(|p| (p.id, p.upload_limit)).collect(),
            platforms: platforms
                .into_iter()
                .map(|p| (p.id, p.name.to_string()))
                .collect(),
            servers: fjord
                .servers()?
                .into_iter()
                .map(|s| (s.id, s.name.to_string()))
                .collect(),
        })
    }
}

pub fn platform_json(names: &Names, p: &Platform) -> Value {
    json!({
        "name": p.name,
        "server": names.servers.get(&p.server_id),
        "path": p.path,
        "kind": p.kind.as_str(),
        "php": p.php_version,
        "web_root": p.web_root.map(|r| r.as_str()),
        "drush": p.drush,
        "allow_exec": p.allow_exec,
        "upload_limit": engine::model::UploadLimit::of(None, p.upload_limit).to_string(),
        "locked": p.locked,
    })
}

pub fn site_json(names: &Names, s: &Site) -> Value {
    // The password stays in the state and the site's private db.env; it is never printed.
    let database = s.database.as_ref().map(|d| {
        json!({ "engine": d.engine.as_str(), "name": d.name, "user": d.user, "server": names.servers.get(&d.server_id) })
    });
    let platform_limit = names.upload_limits.get(&s.platform_id).copied().flatten();
    let upload_limit_of = match (s.upload_limit, platform_limit) {
        (Some(_), _) => "site",
        (None, Some(_)) => "platform",
        (None, None) => "default",
    };
    json!({
        "name": s.name,
        "name_unicode": s.name.to_unicode(),
        "platform": names.platforms.get(&s.platform_id),
        "aliases": s.aliases,
        "redirect_aliases": s.redirect_aliases,
        "status": s.status.as_str(),
        "database": database,
        // What it takes, and whether that is its own, its platform's or the default.
        "upload_limit": engine::model::UploadLimit::of(s.upload_limit, platform_limit).to_string(),
        "upload_limit_of": upload_limit_of,
        // Takes effect once the site has a certificate.
        "https": s.https.mode.as_str(),
        "hsts": s.https.hsts,
    })
}

pub fn task_json(t: &Task) -> Value {
    json!({
        "id": t.id,
        "kind": t.kind.as_str(),
        "target": { "type": t.target.type_str(), "name": t.target_name },
        "args": t.args.to_json(),
        "status": t.status.as_str(),
        "created_at_ms": t.created_at,
        "started_at_ms": t.started_at,
        "finished_at_ms": t.finished_at,
        "duration_ms": t.started_at.zip(t.finished_at).map(|(s, f)| f - s),
        "queued_by": t.queued_by,
        "error": t.error,
    })
}

/// The fields of a JSON object as `show` prints them: a label and a value for people each.
pub fn human_fields(v: &Value, now_ms: i64) -> Vec<(String, String)> {
    /// How a number is read, by the suffix of its key.
    #[derive(Clone, Copy)]
    enum Unit {
        None,
        Time,
        Duration,
        Bytes,
    }
    fn label(prefix: &str, key: &str) -> (String, Unit) {
        let (key, unit) = if let Some(k) = key.strip_suffix("_bytes") {
            (k, Unit::Bytes)
        } else if key.ends_with("duration_ms") {
            (key.trim_end_matches("_ms"), Unit::Duration)
        } else if let Some(k) = key.strip_suffix("_ms") {
            (k, Unit::Time)
        } else {
            (key, Unit::None)
        };
        let key = key.replace('_', " ");
        let label = if prefix.is_empty() {
            key
        } else {
            format!("{prefix} {key}")
        };
        (label, unit)
    }
    fn walk(prefix: &str, unit: Unit, v: &Value, now: i64, out: &mut Vec<(String, String)>) {
        let shown = match (v, unit) {
            (Value::Object(map), _) => {
                for (k, v) in map {
                    let (label, unit) = label(prefix, k);
                    walk(&label, unit, v, now, out);
                }
                return;
            }
            (Value::Array(items), _) => items
                .iter()
                .map(|i| {
                    i.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| i.to_string())
                })
                .collect::<Vec<_>>()
                .join(", "),
            (Value::String(s), _) if prefix == "status" || prefix.ends_with(" status") => {
                crate::style::status(s)
            }
            (Value::String(s), _) => s.clone(),
            (Value::Null, _) => "-".into(),
            (Value::Bool(b), _) => if *b { "yes" } else { "no" }.into(),
            (Value::Number(n), Unit::Time) if n.as_i64().is_some() => {
                time_for_people(n.as_i64().unwrap_or_default(), now)
            }
            (Value::Number(n), Unit::Duration) if n.as_i64().is_some() => {
                duration(n.as_i64().unwrap_or_default())
            }
            (Value::Number(n), Unit::Bytes) if n.as_i64().is_some() => {
                size(n.as_i64().unwrap_or_default())
            }
            (other, _) => other.to_string(),
        };
        out.push((prefix.to_string(), shown));
    }
    let mut out = Vec::new();
    walk("", Unit::None, v, now_ms, &mut out);
    out
}

/// `2026-12-07 22:39:28 UTC (5 min ago)`, `… (in 59 days)`.
pub fn time_for_people(ms: i64, now_ms: i64) -> String {
    let at = engine::model::time::utc_display(ms);
    let apart = (now_ms - ms).abs() / 1000;
    let span = match apart {
        ..60 => return format!("{at} UTC (just now)"),
        60..3600 => format!("{} min", apart / 60),
        3600..86_400 => format!("{} h", apart / 3600),
        _ => match apart / 86_400 {
            1 => "1 day".to_string(),
            days => format!("{days} days"),
        },
    };
    if ms <= now_ms {
        format!("{at} UTC ({span} ago)")
    } else {
        format!("{at} UTC (in {span})")
    }
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub fn print_json(v: &Value) {
    outln!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

pub fn table(header: &[&str], rows: Vec<Vec<String>>) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    // A status column is painted by what it says, after it is padded: colour codes take no
    // room on a terminal.
    let status = header.iter().position(|h| *h == "status");
    let line = |cells: Vec<String>, paint: bool| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (c, w))| {
                let cell = format!("{c:<w$}");
                if paint && Some(i) == status {
                    crate::style::status(&cell)
                } else {
                    cell
                }
            })
            .collect();
        outln!("{}", padded.join("  ").trim_end());
    };
    line(header.iter().map(|h| h.to_uppercase()).collect(), false);
    for row in rows {
        line(row, true);
    }
}

pub fn time(ms: Option<i64>) -> String {
    ms.map_or_else(|| "-".into(), engine::model::time::utc_display)
}

/// A task's time for people: `850 ms`, `12.3 s`, `4 min 05 s`.
pub fn duration(ms: i64) -> String {
    match ms {
        ..1_000 => format!("{ms} ms"),
        1_000..60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        _ => format!("{} min {:02} s", ms / 60_000, (ms % 60_000) / 1000),
    }
}

pub fn log_time(ms: i64) -> String {
    engine::model::time::utc_display_ms(ms)
}

/// A size for people: bytes up to 1 KiB, then KiB, MiB, GiB with one decimal.
pub fn size(bytes: i64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// An interval in seconds as people write it: 90s, 15m, 2h, 1d.
pub fn interval(seconds: i64) -> String {
    for (unit, size) in [("d", 86400), ("h", 3600), ("m", 60)] {
        if seconds % size == 0 {
            return format!("{}{unit}", seconds / size);
        }
    }
    format!("{seconds}s")
}

/// A site's cron: its interval, and how its last run went.
pub fn cron_json(cron: &engine::SiteCron, default_s: i64) -> Value {
    json!({
        "every": interval(cron.own_interval_s.unwrap_or(default_s)),
        "own_interval": cron.own_interval_s.is_some(),
        "last_run_ms": cron.last_at,
        "last_ok": cron.last_ok,
        "last_message": cron.last_message,
        "next_run_ms": cron.next_at,
    })
}

/// Packages (a platform's or a site's, as their last verify recorded them): JSON, or a
/// table.
pub fn print_packages(packages: &[engine::kinds::Package], json: bool) {
    if json {
        print_json(&serde_json::to_value(packages).unwrap_or_default());
    } else {
        packages_table(packages);
    }
}

/// The packages field of `platform show` and `site show`: the packages in JSON, their count
/// and the command that lists them otherwise.
pub fn packages_field(packages: Vec<engine::kinds::Package>, json: bool, command: &str) -> Value {
    if json {
        serde_json::to_value(packages).unwrap_or_default()
    } else {
        format!("{} ({command})", packages.len()).into()
    }
}

fn packages_table(packages: &[engine::kinds::Package]) {
    let or_dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    table(
        &["type", "name", "version", "project", "schema", "path"],
        packages
            .iter()
            .map(|p| {
                vec![
                    p.kind.clone(),
                    p.name.clone(),
                    or_dash(&p.version),
                    or_dash(&p.project),
                    p.schema.map_or("-".into(), |s| s.to_string()),
                    match (&p.path, p.site_local) {
                        (Some(path), true) => format!("{path} (the site's own)"),
                        (Some(path), false) => path.clone(),
                        (None, _) => "-".into(),
                    },
                ]
            })
            .collect(),
    );
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_read_as_people_write_them() {
        let cases = [
            (0, "0 B"),
            (1023, "1023 B"),
            (1024, "1.0 KiB"),
            (354_832_721, "338.4 MiB"),
            (3 << 30, "3.0 GiB"),
        ];
        for (bytes, want) in cases {
            assert_eq!(super::size(bytes), want);
        }
    }

    #[test]
    fn show_reads_times_durations_and_sizes_as_people_do_and_json_keeps_them_raw() {
        let now = 1_800_000_000_000;
        let v = serde_json::json!({
            "status": "failed",
            "created_at_ms": now - 5 * 60_000,
            "duration_ms": 12_345,
            "cron": { "next_run_ms": now + 3 * 86_400_000, "last_run_ms": null },
            "archive_bytes": 354_832_721,
            "aliases": ["www.a.example", "a.example.org"],
            "hsts": false,
        });
        let shown: Vec<(String, String)> = super::human_fields(&v, now);
        let get = |label: &str| {
            shown
                .iter()
                .find(|(l, _)| l == label)
                .map(|(_, v)| v.as_str())
                .unwrap_or_else(|| panic!("no {label} in {shown:?}"))
        };
        assert_eq!(get("created at"), "2027-01-15 07:55:00 UTC (5 min ago)");
        assert_eq!(get("duration"), "12.3 s");
        assert_eq!(get("cron next run"), "2027-01-18 08:00:00 UTC (in 3 days)");
        assert_eq!(get("cron last run"), "-");
        assert_eq!(get("archive"), "338.4 MiB");
        assert_eq!(get("aliases"), "www.a.example, a.example.org");
        assert_eq!(get("hsts"), "no");
        // Painted only on a terminal.
        assert!(get("status").contains("failed"));
    }

    #[test]
    fn a_time_says_how_long_ago_or_how_soon() {
        let now = 1_800_000_000_000;
        let at = |ms| super::time_for_people(ms, now);
        assert!(at(now - 10_000).ends_with("(just now)"));
        assert!(at(now - 2 * 3_600_000).ends_with("(2 h ago)"));
        assert!(at(now + 86_400_000).ends_with("(in 1 day)"));
    }
}
