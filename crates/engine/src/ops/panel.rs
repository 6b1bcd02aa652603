//! The panel's own site: `fjord serve --url https://panel.example` serves the panel through a
//! vhost of a server's nginx, as Aegir's front end is a site of itself. The vhost is a site
//! on the `proxy` platform `panel`, whose upstream is the address the panel listens on; its
//! certificate comes from the account as any site's does.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use model::{Hostname, HttpsMode, Platform, PlatformKind, Site, SiteStatus, Task, TaskKind};
use store::NewTask;

use super::*;
use crate::{Error, Fjord, Result};

/// The name of the panel's own platform.
pub const PANEL_PLATFORM: &str = "panel";

/// Where `--url` says the panel is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PanelUrl {
    pub https: bool,
    /// The host, when the URL names one (not an address): the panel's site is served under it.
    pub host: Option<Hostname>,
    pub port: u16,
}

impl PanelUrl {
    /// Reads `scheme://host[:port][/]`: the panel lives at the root of its host.
    pub fn parse(url: &str) -> Result<PanelUrl> {
        let invalid = |rule: &str| Error::Invalid(model::Invalid::new("panel url", url, rule));
        let url = url.trim_end_matches('/');
        let (https, rest) = if let Some(rest) = url.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("http://") {
            (false, rest)
        } else {
            return Err(invalid("must be an http:// or https:// address"));
        };
        if rest.contains(['/', '?', '#', '@']) {
            return Err(invalid(
                "must be scheme://host[:port]: the panel is served at the root of its host",
            ));
        }
        let (host, port) = match rest.strip_prefix('[') {
            Some(v6) => {
                let (address, after) = v6
                    .split_once(']')
                    .ok_or_else(|| invalid("an IPv6 address is written [ADDRESS]"))?;
                (address, after.strip_prefix(':'))
            }
            None => match rest.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (rest, None),
            },
        };
        let port = match port {
            None => {
                if https {
                    443
                } else {
                    80
                }
            }
            Some(port) => port
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| invalid("its port must be a number from 1 to 65535"))?,
        };
        let host = if host.parse::<IpAddr>().is_ok() || host.eq_ignore_ascii_case("localhost") {
            None
        } else {
            Some(Hostname::parse("panel url", host)?)
        };
        Ok(PanelUrl { https, host, port })
    }
}

/// The address the panel's vhost passes requests to: where the panel listens, or loopback
/// when it listens on every address.
pub fn panel_upstream(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

/// What `fjord serve --url` made of the panel's site.
#[derive(Debug)]
pub enum PanelSite {
    /// The URL names an address: no vhost serves the panel (another proxy may). A panel site
    /// there was is deleted by `removed` (its name, and the id of the delete task).
    Direct { removed: Option<(Hostname, i64)> },
    /// The panel's site serves it on `server`'s nginx.
    Vhost {
        site: Hostname,
        server: String,
        https: bool,
        /// What was queued now (none: it was already as wanted).
        queued: Vec<Task>,
        /// The site serves its certificate already.
        has_certificate: bool,
        /// The installation has an ACME account to order one from.
        has_account: bool,
    },
}

impl Fjord {
    /// The panel's own platform, once `fjord serve --url` made it.
    pub fn panel_platform(&self) -> Result<Option<Platform>> {
        Ok(self
            .store()
            .platforms()?
            .into_iter()
            .find(|p| p.kind == PlatformKind::Proxy))
    }

    /// Brings the panel's site in line with `url`: made (or kept) on `server` for the URL's
    /// host, passing requests to `listen`, with HTTPS required for an https:// URL; moved when
    /// the host changed; deleted when the URL names an address. Queues only what differs, so
    /// a second run with the same URL changes nothing; never waits for a task.
    pub fn panel_site(&self, url: &str, listen: SocketAddr, server: &str) -> Result<PanelSite> {
        let wanted = PanelUrl::parse(url)?;
        let upstream = panel_upstream(listen);
        let platform = self.panel_platform()?;
        let live_sites = |platform: &Option<Platform>| -> Result<Vec<Site>> {
            Ok(match platform {
                Some(p) => self
                    .store()
                    .sites(Some(p.id))?
                    .into_iter()
                    .filter(|s| s.status != SiteStatus::Deleted)
                    .collect(),
                None => Vec::new(),
            })
        };
        let Some(host) = wanted.host else {
            let mut removed = None;
            for site in live_sites(&platform)? {
                removed = self
                    .delete_panel_site(&site)?
                    .map(|t| (site.name.clone(), t.id));
            }
            return Ok(PanelSite::Direct { removed });
        };
        let server = self.server(server)?;
        let model::HttpService::Nginx(nginx) = &server.http;
        let (ports, scheme, option) = if wanted.https {
            (&nginx.https_listen, "HTTPS", "--https-listen")
        } else {
            (&nginx.listen, "HTTP", "--listen")
        };
        if !ports.iter().any(|a| a.port() == wanted.port) {
            let have: Vec<String> = ports.iter().map(|a| a.to_string()).collect();
            return Err(Error::Refused(format!(
                "the panel's URL {url} is served by server {name}'s nginx, which listens for \
                 {scheme} on no port {port} ({have}): give it one with `fjord server edit {name} \
                 {option} 0.0.0.0:{port}`, or give a URL with one of its ports",
                name = server.name,
                port = wanted.port,
                have = if have.is_empty() {
                    "none".to_string()
                } else {
                    have.join(", ")
                },
            )));
        }
        let mut queued = Vec::new();
        let platform = match platform {
            Some(p) if p.server_id != server.id => {
                return Err(Error::Refused(format!(
                    "the panel's platform {} is on another server than {}: serve the panel \
                     from the server it is on (--panel-server)",
                    p.name, server.name
                )));
            }
            Some(p) if p.upstream != Some(upstream) => {
                let verify = NewTask::with_args(
                    TaskKind::PlatformVerify,
                    model::TaskArgs::PlatformVerify {
                        from: None,
                        limit_before: None,
                    },
                );
                queued.extend(
                    self.store()
                        .set_platform_upstream(p.id, upstream, Some(verify))?,
                );
                Platform {
                    upstream: Some(upstream),
                    ..p
                }
            }
            Some(p) => p,
            None => {
                if self.store().platform_by_name(PANEL_PLATFORM).is_ok() {
                    return Err(Error::Conflict(format!(
                        "the panel's own platform is named {PANEL_PLATFORM}, and a platform \
                         of that name exists: rename or delete it to serve the panel through \
                         a vhost"
                    )));
                }
                let platform = Platform {
                    id: 0,
                    name: model::Name::parse("platform name", PANEL_PLATFORM)?,
                    server_id: server.id,
                    path: model::AbsPath::parse(
                        "platform path",
                        &self.data_dir().join(PANEL_PLATFORM).display().to_string(),
                    )?,
                    kind: PlatformKind::Proxy,
                    locked: false,
                    php_version: None,
                    web_root: None,
                    drush: None,
                    allow_exec: false,
                    upload_limit: None,
                    upstream: Some(upstream),
                };
                let verify = NewTask::with_args(
                    TaskKind::PlatformVerify,
                    model::TaskArgs::PlatformVerify {
                        from: None,
                        limit_before: None,
                    },
                );
                let (platform, task) = self.store().insert_platform(&platform, Some(verify))?;
                queued.extend(task);
                platform
            }
        };
        let mode = if wanted.https {
            HttpsMode::Required
        } else {
            HttpsMode::Off
        };
        let mut site = None;
        for other in live_sites(&Some(platform.clone()))? {
            if other.name == host {
                site = Some(other);
            } else {
                // The URL moved: the old name's vhost goes.
                queued.extend(self.delete_panel_site(&other)?);
            }
        }
        match site {
            None => {
                let input = SiteInput {
                    name: host.as_str().to_string(),
                    platform: platform.name.to_string(),
                    // The administrator chose the name; a private one is theirs to use.
                    allow_private_names: true,
                    // The panel's forms are small; nothing is uploaded through it.
                    upload_limit: Some("1".into()),
                    https: Some(mode.as_str().to_string()),
                    ..Default::default()
                };
                queued.extend(self.add_site_as(&input, false, true)?.task);
            }
            Some(site) if site.status == SiteStatus::Failed => {
                queued.extend(
                    self.queue(
                        model::Target::Site(site.id),
                        TaskKind::SiteInstall,
                        model::TaskArgs::none_for(TaskKind::SiteInstall),
                        false,
                    )?
                    .task,
                );
            }
            Some(site) if site.https.mode != mode => {
                let edit = SiteEdit {
                    https: Some(mode.as_str().to_string()),
                    ..Default::default()
                };
                queued.extend(self.edit_site(site.name.as_str(), &edit, false)?.task);
            }
            Some(_) => {}
        }
        let has_certificate = match self.store().site_by_host(host.as_str()) {
            Ok(site) => self.store().site_tls(site.id)?.is_some(),
            Err(_) => false,
        };
        self.notify_dispatchers();
        Ok(PanelSite::Vhost {
            site: host,
            server: server.name.to_string(),
            https: wanted.https,
            queued,
            has_certificate,
            has_account: self.store().acme_account()?.is_some(),
        })
    }

    /// Queues the delete of a panel site (its vhost, files and certificate), if none is
    /// queued yet.
    fn delete_panel_site(&self, site: &Site) -> Result<Option<Task>> {
        if self
            .store()
            .active_tasks(model::Target::Site(site.id))?
            .iter()
            .any(|t| t.kind == TaskKind::SiteDelete)
        {
            return Ok(None);
        }
        Ok(self
            .queue(
                model::Target::Site(site.id),
                TaskKind::SiteDelete,
                model::TaskArgs::Site { force: true },
                false,
            )?
            .task)
    }

    /// Refuses to clone or migrate the panel's site, or anything onto its platform: only
    /// `fjord serve --url` moves it.
    pub(super) fn refuse_panel_move(&self, site: &Site, target: &Platform) -> Result<()> {
        let source = self.store().platform(site.platform_id)?;
        if source.kind == PlatformKind::Proxy {
            return Err(Error::Refused(format!(
                "site {} is the panel's own site: `fjord serve --url` with another host moves it",
                site.name
            )));
        }
        if target.kind == PlatformKind::Proxy {
            return Err(Error::Refused(format!(
                "platform {} is the panel's own (made by `fjord serve --url`): it takes no other \
                 site",
                target.name
            )));
        }
        Ok(())
    }

    /// Refuses to take down the panel's own site by hand: `fjord serve --url` owns it.
    pub(super) fn refuse_panel_site(&self, site: &Site, kind: TaskKind) -> Result<()> {
        let platform = self.store().platform(site.platform_id)?;
        if platform.kind != PlatformKind::Proxy {
            return Ok(());
        }
        let what = if kind == TaskKind::SiteDelete {
            "deleted"
        } else {
            "disabled"
        };
        Err(Error::Refused(format!(
            "site {name} is the panel's own site (made by `fjord serve --url https://{name}`): \
             it is not {what} by hand. `fjord serve --url` with another host moves it there; \
             with the panel's own address (`--url http://127.0.0.1:8470`) it is deleted and the \
             panel is reached only where it listens",
            name = site.name
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panel_url_names_a_host_or_an_address() {
        let url = PanelUrl::parse("https://Panel.Example/").unwrap();
        assert!(url.https);
        assert_eq!(url.host.unwrap().as_str(), "panel.example");
        assert_eq!(url.port, 443);
        let url = PanelUrl::parse("http://panel.example:8443").unwrap();
        assert_eq!((url.https, url.port), (false, 8443));
        for address in [
            "http://127.0.0.1:8470",
            "https://[::1]:8443",
            "http://localhost:8470",
        ] {
            assert_eq!(PanelUrl::parse(address).unwrap().host, None, "{address}");
        }
        for bad in [
            "ftp://panel.example",
            "https://panel.example/panel",
            "https://panel.example:0",
            "https://panel.example:https",
            "https://user@panel.example",
            "https://bad_host!",
        ] {
            let e = PanelUrl::parse(bad).unwrap_err().to_string();
            assert!(e.contains("panel url"), "{bad}: {e}");
        }
    }

    #[test]
    fn the_upstream_is_loopback_when_the_panel_listens_everywhere() {
        let up = |s: &str| panel_upstream(s.parse().unwrap()).to_string();
        assert_eq!(up("0.0.0.0:8470"), "127.0.0.1:8470");
        assert_eq!(up("[::]:8470"), "[::1]:8470");
        assert_eq!(up("10.0.0.5:9000"), "10.0.0.5:9000");
    }
}
