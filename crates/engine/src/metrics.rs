//! What `/metrics` tells a Prometheus server: tasks by kind and state and how long they ran,
//! the queue, sites by status, how old each site's newest backup is, free space where fjord
//! writes and how full it is, whether a dispatcher is alive and whether its disk guard holds
//! claims back, site cron runs. Read from the state and the file systems at each scrape
//! (nothing is kept in a process: a panel and a dispatcher may be two),
//! rendered in Prometheus' text exposition format 0.0.4.

use std::fmt::Write;

use model::Action;
use store::{StateMetrics, TASK_DURATION_BUCKETS_S};

use crate::acting::Acting;
use crate::{Fjord, Result};

/// One scrape's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct Metrics {
    pub state: StateMetrics,
    pub dispatcher_up: bool,
    /// Free and total bytes of the data dir's file system, if it could be read.
    pub data_dir_space: Option<(u64, u64)>,
    /// Each platform's name with the free and total bytes of its file system.
    pub platform_space: Vec<(String, u64, u64)>,
    /// How full each of those file systems is (0 to 1, as `df` and the disk guard count it),
    /// by the `of` label of the families above: `data-dir`, `platform:<name>`.
    pub used_ratio: Vec<(String, f64)>,
    /// Whether a live dispatcher's disk guard holds claims back.
    pub claims_paused: bool,
    pub now_ms: i64,
}

impl Fjord {
    pub fn metrics(&self) -> Result<Metrics> {
        let state = self.store().metrics()?;
        let platforms = self.store().platforms()?;
        let used_ratio = std::iter::once(("data-dir".to_string(), self.data_dir()))
            .chain(
                platforms
                    .iter()
                    .map(|p| (format!("platform:{}", p.name), p.path.as_path())),
            )
            .filter_map(|(of, path)| Some((of, host::disk_used_share(path).ok()??)))
            .collect();
        let platform_space = platforms
            .into_iter()
            .filter_map(|p| {
                // A platform whose directory is gone (being deleted, say) has no space to tell.
                let (free, total) = host::disk_space(p.path.as_path()).ok()?;
                Some((p.name.to_string(), free, total))
            })
            .collect();
        Ok(Metrics {
            state,
            dispatcher_up: self.dispatcher_alive()?,
            data_dir_space: host::disk_space(self.data_dir()).ok(),
            platform_space,
            used_ratio,
            claims_paused: !self.claim_pauses()?.is_empty(),
            now_ms: store::now_ms(),
        })
    }
}

/// Whether this installation can do its work: its state answers and a dispatcher is alive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Health {
    pub dispatcher_up: bool,
}

impl Fjord {
    /// Fails when the state does not answer.
    pub fn health(&self) -> Result<Health> {
        self.store().setting("panel_url")?;
        Ok(Health {
            dispatcher_up: self.dispatcher_alive()?,
        })
    }
}

impl Acting<'_> {
    /// The metrics in Prometheus' text format. They name every site and platform, so they are
    /// for those who may see the servers.
    pub fn metrics(&self) -> Result<String> {
        self.require(Action::ViewServers)?;
        Ok(render(&self.fjord().metrics()?))
    }
}

/// The text exposition of `m`: each family with its `HELP` and `TYPE`, label values escaped.
pub fn render(m: &Metrics) -> String {
    let mut out = Family::new();
    let s = &m.state;

    out.head("fjord_tasks", "gauge", "Task records by kind and status.");
    for (kind, status, n) in &s.tasks {
        out.sample("fjord_tasks", &[("kind", kind), ("status", status)], *n);
    }

    out.head(
        "fjord_task_duration_seconds",
        "histogram",
        "How long finished tasks ran, from their start to their end.",
    );
    for d in &s.durations {
        for (bound, n) in TASK_DURATION_BUCKETS_S.iter().zip(&d.at_most) {
            let le = bound.to_string();
            out.sample(
                "fjord_task_duration_seconds_bucket",
                &[("kind", &d.kind), ("le", &le)],
                *n,
            );
        }
        out.sample(
            "fjord_task_duration_seconds_bucket",
            &[("kind", &d.kind), ("le", "+Inf")],
            d.count,
        );
        out.sample(
            "fjord_task_duration_seconds_sum",
            &[("kind", &d.kind)],
            d.sum_seconds,
        );
        out.sample(
            "fjord_task_duration_seconds_count",
            &[("kind", &d.kind)],
            d.count,
        );
    }

    let queued: u64 = s
        .tasks
        .iter()
        .filter(|(_, status, _)| status == "queued")
        .map(|(_, _, n)| n)
        .sum();
    out.head(
        "fjord_queue_depth",
        "gauge",
        "Tasks waiting for a dispatcher.",
    );
    out.sample("fjord_queue_depth", &[], queued);
    out.head(
        "fjord_queue_oldest_age_seconds",
        "gauge",
        "How long the oldest queued task has waited (0 when none waits).",
    );
    let oldest = s
        .oldest_queued_at
        .map_or(0.0, |at| (m.now_ms - at).max(0) as f64 / 1000.0);
    out.sample("fjord_queue_oldest_age_seconds", &[], oldest);

    out.head("fjord_sites", "gauge", "Sites by status.");
    for (status, n) in &s.sites {
        out.sample("fjord_sites", &[("status", status.as_str())], *n);
    }

    out.head(
        "fjord_site_backup_age_seconds",
        "gauge",
        "How old each installed or disabled site's newest backup is.",
    );
    let mut without = 0u64;
    for (site, newest) in &s.newest_backups {
        match newest {
            Some(at) => out.sample(
                "fjord_site_backup_age_seconds",
                &[("site", site)],
                (m.now_ms - at).max(0) as f64 / 1000.0,
            ),
            None => without += 1,
        }
    }
    out.head(
        "fjord_sites_without_backup",
        "gauge",
        "Installed or disabled sites that have no backup.",
    );
    out.sample("fjord_sites_without_backup", &[], without);

    out.head(
        "fjord_filesystem_free_bytes",
        "gauge",
        "Bytes free (to users other than root) on the file system of fjord's data dir and of each platform.",
    );
    if let Some((free, _)) = m.data_dir_space {
        out.sample("fjord_filesystem_free_bytes", &[("of", "data-dir")], free);
    }
    for (platform, free, _) in &m.platform_space {
        let of = format!("platform:{platform}");
        out.sample("fjord_filesystem_free_bytes", &[("of", &of)], *free);
    }
    out.head(
        "fjord_filesystem_size_bytes",
        "gauge",
        "Size of the file system of fjord's data dir and of each platform.",
    );
    if let Some((_, total)) = m.data_dir_space {
        out.sample("fjord_filesystem_size_bytes", &[("of", "data-dir")], total);
    }
    for (platform, _, total) in &m.platform_space {
        let of = format!("platform:{platform}");
        out.sample("fjord_filesystem_size_bytes", &[("of", &of)], *total);
    }

    out.head(
        "fjord_filesystem_used_ratio",
        "gauge",
        "How full the file system of fjord's data dir and of each platform is, as df and the disk guard count it (used, of used and free to users other than root).",
    );
    for (of, ratio) in &m.used_ratio {
        out.sample("fjord_filesystem_used_ratio", &[("of", of)], *ratio);
    }
    out.head(
        "fjord_claims_paused",
        "gauge",
        "1 while a dispatcher's disk guard holds task claims back (a file system over its stop line).",
    );
    out.sample("fjord_claims_paused", &[], u64::from(m.claims_paused));

    out.head(
        "fjord_dispatcher_up",
        "gauge",
        "1 while a dispatcher holds its lock on this data dir.",
    );
    out.sample("fjord_dispatcher_up", &[], u64::from(m.dispatcher_up));

    let counter = |name: &str| {
        s.counters
            .iter()
            .find(|(n, _)| n == name)
            .map_or(0, |(_, v)| (*v).max(0) as u64)
    };
    out.head(
        "fjord_cron_runs_total",
        "counter",
        "Site cron runs finished since the state was made.",
    );
    out.sample("fjord_cron_runs_total", &[], counter("cron_runs"));
    out.head(
        "fjord_cron_failures_total",
        "counter",
        "Site cron runs that failed since the state was made.",
    );
    out.sample("fjord_cron_failures_total", &[], counter("cron_failures"));
    services(&mut out, &s.services);
    out.text
}

/// The monitor's view of the daemons of the servers it watches.
fn services(out: &mut Family, services: &[store::ServiceState]) {
    out.head(
        "fjord_service_up",
        "gauge",
        "1 when the monitor's last probe of a monitored server's daemon passed, 0 while it is down.",
    );
    for d in services {
        let labels = [
            ("server", d.server.as_str()),
            ("service", d.service.as_str()),
        ];
        out.sample("fjord_service_up", &labels, u64::from(d.up));
    }
    out.head(
        "fjord_service_restarts_total",
        "counter",
        "Restarts the monitor made of a server's daemon found down.",
    );
    for d in services {
        let labels = [
            ("server", d.server.as_str()),
            ("service", d.service.as_str()),
        ];
        out.sample("fjord_service_restarts_total", &labels, d.restarts);
    }
}

struct Family {
    text: String,
}

impl Family {
    fn new() -> Family {
        Family {
            text: String::new(),
        }
    }

    fn head(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.text, "# HELP {name} {help}");
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl Value) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (label, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                let _ = write!(self.text, "{label}=\"{}\"", escape(v));
            }
            self.text.push('}');
        }
        self.text.push(' ');
        value.write(&mut self.text);
        self.text.push('\n');
    }
}

trait Value {
    fn write(&self, out: &mut String);
}

impl Value for u64 {
    fn write(&self, out: &mut String) {
        let _ = write!(out, "{self}");
    }
}

impl Value for f64 {
    fn write(&self, out: &mut String) {
        let _ = write!(out, "{self}");
    }
}

/// A label value as the format wants it: backslash, double quote and line feed escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::SiteStatus;
    use store::TaskDurations;

    #[test]
    fn the_figures_render_in_prometheus_text_format() {
        let m = Metrics {
            state: StateMetrics {
                tasks: vec![
                    ("site-verify".into(), "queued".into(), 2),
                    ("site-verify".into(), "success".into(), 3),
                ],
                durations: vec![TaskDurations {
                    kind: "site-verify".into(),
                    at_most: vec![1, 2, 3, 3, 3, 3, 3, 3, 3],
                    sum_seconds: 2.25,
                    count: 3,
                }],
                oldest_queued_at: Some(1_000),
                sites: vec![(SiteStatus::Installed, 4)],
                newest_backups: vec![("a.example".into(), Some(4_000)), ("b\"x".into(), None)],
                counters: vec![("cron_runs".into(), 7)],
                services: vec![store::ServiceState {
                    server: "local".into(),
                    service: "php-fpm-8.2".into(),
                    up: false,
                    restarts: 2,
                }],
            },
            dispatcher_up: true,
            data_dir_space: Some((10, 20)),
            platform_space: vec![("web".into(), 5, 9)],
            used_ratio: vec![("data-dir".into(), 0.5), ("platform:web".into(), 0.75)],
            claims_paused: true,
            now_ms: 11_500,
        };
        let text = render(&m);
        for line in [
            "fjord_tasks{kind=\"site-verify\",status=\"success\"} 3",
            "fjord_task_duration_seconds_bucket{kind=\"site-verify\",le=\"0.5\"} 1",
            "fjord_task_duration_seconds_bucket{kind=\"site-verify\",le=\"+Inf\"} 3",
            "fjord_task_duration_seconds_sum{kind=\"site-verify\"} 2.25",
            "fjord_queue_depth 2",
            "fjord_queue_oldest_age_seconds 10.5",
            "fjord_sites{status=\"installed\"} 4",
            "fjord_site_backup_age_seconds{site=\"a.example\"} 7.5",
            "fjord_sites_without_backup 1",
            "fjord_filesystem_free_bytes{of=\"platform:web\"} 5",
            "fjord_filesystem_size_bytes{of=\"data-dir\"} 20",
            "fjord_dispatcher_up 1",
            "fjord_filesystem_used_ratio{of=\"data-dir\"} 0.5",
            "fjord_filesystem_used_ratio{of=\"platform:web\"} 0.75",
            "fjord_claims_paused 1",
            "fjord_cron_runs_total 7",
            "fjord_cron_failures_total 0",
            "fjord_service_up{server=\"local\",service=\"php-fpm-8.2\"} 0",
            "fjord_service_restarts_total{server=\"local\",service=\"php-fpm-8.2\"} 2",
            "# TYPE fjord_task_duration_seconds histogram",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
        }
        // Every family is told once, and every sample belongs to the family told before it.
        let mut family = "";
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                family = rest.split(' ').next().unwrap();
            } else if !line.starts_with('#') {
                assert!(line.starts_with(family), "{line} outside {family}");
            }
        }
        assert_eq!(escape("b\"x\\\n"), "b\\\"x\\\\\\n");
    }
}
