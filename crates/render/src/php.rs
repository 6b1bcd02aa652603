//! php-fpm pools and the settings file a PHP application reads its database from.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use model::{DbEngine, DbService, SiteDatabase, UploadLimit};

/// One site's php-fpm pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhpPool {
    /// The pool's name (unique on the host): the site's user, its platform and name, so
    /// that a site being moved runs in two pools, the old place's and the new one's.
    pub name: String,
    pub user: String,
    /// The site it runs, for the reader of the file.
    pub site: String,
    pub socket: PathBuf,
    /// The group nginx runs as: the only one, beside the site's user, that may connect.
    pub web_group: String,
    /// The only directories the site's PHP may open files in.
    pub open_basedir: Vec<PathBuf>,
    pub tmp_dir: PathBuf,
    /// The site's own settings file (`FJORD_SITE_CONFIG`): the pool, not the request, says
    /// which site runs, so no request header can pick another site's config.
    pub site_config: PathBuf,
    pub max_children: u32,
    /// The platform lets its sites' PHP start processes ([`DISABLED_FUNCTIONS`] stay
    /// enabled).
    pub allow_exec: bool,
    /// The largest file one upload may carry; nginx's vhost allows the same.
    pub upload_limit: UploadLimit,
    /// The application cannot run without `putenv` (MediaWiki calls it on every request):
    /// it stays, and what would run a process with the environment it sets (`mail()` and
    /// its kin, which start sendmail through a shell) goes instead.
    pub putenv: bool,
    /// The site's PHP error log, in its log dir: written by the pool's workers, as the
    /// site's user, so its messages reach neither nginx's log nor php-fpm's.
    pub error_log: Option<PathBuf>,
}

/// The functions a site's PHP may not call unless its platform allows processes: those
/// that start a process (which runs outside `open_basedir` and may outlive the request:
/// `exec`, `shell_exec`, `system`, `passthru`, `popen`, `proc_open` and its companions,
/// `pcntl_exec`, `pcntl_fork`), that detach or signal processes (`pcntl_*` signals,
/// `posix_kill`, `posix_setsid`, `posix_setpgid`), that change ids (`posix_set*id`), that load
/// native code (`dl`), and `putenv`, which turns `mail()` into code execution (`LD_PRELOAD`
/// for the sendmail it starts). `mail()` itself stays: its fifth parameter (extra sendmail
/// options) is replaced by [`MAIL_EXTRA_PARAMETERS`].
pub const DISABLED_FUNCTIONS: &[&str] = &[
    "exec",
    "shell_exec",
    "system",
    "passthru",
    "popen",
    "proc_open",
    "proc_close",
    "proc_get_status",
    "proc_nice",
    "proc_terminate",
    "pcntl_exec",
    "pcntl_fork",
    "pcntl_rfork",
    "pcntl_signal",
    "pcntl_signal_dispatch",
    "pcntl_alarm",
    "pcntl_async_signals",
    "posix_kill",
    "posix_setsid",
    "posix_setpgid",
    "posix_setuid",
    "posix_seteuid",
    "posix_setgid",
    "posix_setegid",
    "dl",
    "putenv",
];

/// What starts sendmail (through a shell) with the process's environment: off where a site
/// may call `putenv` (`LD_PRELOAD` would run a library of its own in that shell). `error_log`
/// mails with its message type 1.
pub const MAIL_FUNCTIONS: [&str; 4] = ["mail", "mb_send_mail", "error_log", "imap_mail"];

/// What replaces `mail()`'s fifth parameter: sendmail's `-i`, which PHP passes anyway, so a
/// site cannot hand sendmail options of its own (`-X` writes a log file anywhere its user
/// may, outside `open_basedir`; `-C` reads a config).
pub const MAIL_EXTRA_PARAMETERS: &str = "-i";

/// Memory one PHP process of a site may use.
pub const PHP_MEMORY_LIMIT: &str = "256M";

/// The php.ini settings that hold a site's PHP, in its pool and on the command line alike.
pub fn php_limits(allow_exec: bool, putenv: bool) -> Vec<(String, String)> {
    let mut ini = vec![
        ("memory_limit".to_string(), PHP_MEMORY_LIMIT.to_string()),
        // FFI calls any C function (`system`): never for a site's code.
        ("ffi.enable".to_string(), "0".to_string()),
        ("allow_url_include".to_string(), "0".to_string()),
        (
            "mail.force_extra_parameters".to_string(),
            MAIL_EXTRA_PARAMETERS.to_string(),
        ),
    ];
    if !allow_exec && putenv {
        let disabled: Vec<&str> = DISABLED_FUNCTIONS
            .iter()
            .copied()
            .filter(|f| *f != "putenv")
            .chain(MAIL_FUNCTIONS)
            .collect();
        ini.push(("disable_functions".to_string(), disabled.join(",")));
    } else if !allow_exec {
        ini.push((
            "disable_functions".to_string(),
            DISABLED_FUNCTIONS.join(","),
        ));
    }
    ini
}

/// A pool runs its site's PHP as the site's own user, on demand (an idle site costs no
/// process), confined to its own directories by `open_basedir`, with at most `max_children`
/// workers of its own (one site's load never takes another's workers), each bounded in
/// memory, open files and time, and without the functions that start processes unless its
/// platform allows them.
pub fn php_fpm_pool(pool: &PhpPool) -> String {
    let limits: String = php_limits(pool.allow_exec, pool.putenv)
        .iter()
        .map(|(key, value)| format!("php_admin_value[{key}] = {value}\n"))
        .collect();
    let basedir: Vec<String> = pool
        .open_basedir
        .iter()
        .map(|p| format!("{}/", p.display()))
        .collect();
    let tmp = pool.tmp_dir.display();
    let error_log = match &pool.error_log {
        Some(file) => format!(
            "php_admin_flag[log_errors] = on\nphp_admin_value[error_log] = {}\n",
            file.display()
        ),
        None => String::new(),
    };
    format!(
        "; Managed by fjord: edits here are overwritten by the next verify.
; site {site}
[{name}]
user = {user}
group = {user}
listen = {socket}
listen.owner = {user}
listen.group = {web_group}
listen.mode = 0660
pm = ondemand
pm.max_children = {max_children}
pm.process_idle_timeout = 10s
pm.max_requests = 500
clear_env = yes
env[FJORD_SITE_CONFIG] = {site_config}
env[FJORD_SITE_DIR] = {site}
env[TMPDIR] = {tmp}
request_terminate_timeout = 300s
rlimit_files = 1024
rlimit_core = 0
security.limit_extensions = .php
php_admin_value[open_basedir] = {basedir}
php_admin_value[sys_temp_dir] = {tmp}
php_admin_value[upload_tmp_dir] = {tmp}
php_admin_value[session.save_path] = {tmp}
php_admin_value[upload_max_filesize] = {upload}M
php_admin_value[post_max_size] = {body}M
{error_log}{limits}",
        site = pool.site,
        name = pool.name,
        user = pool.user,
        socket = pool.socket.display(),
        web_group = pool.web_group,
        max_children = pool.max_children,
        site_config = pool.site_config.display(),
        basedir = basedir.join(":"),
        upload = pool.upload_limit.mb(),
        body = pool.upload_limit.body_mb(),
    )
}

/// A PHP string literal: single-quoted, with `\` and `'` escaped (values here come from
/// closed alphabets already; this keeps the renderer safe on its own).
pub(crate) fn php_str(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// The settings file of a site of the `php` kind: `<?php return [...]`, which the
/// application reads through `require getenv('FJORD_SITE_CONFIG')`.
pub fn php_settings(
    site_url: &str,
    files_dir: &Path,
    db: Option<(&SiteDatabase, &DbService, &Path)>,
) -> String {
    let mut out = String::from(
        "<?php\n// Managed by fjord: edits here are overwritten by the next verify.\nreturn [\n",
    );
    let _ = writeln!(out, "    'url' => {},", php_str(site_url));
    let _ = writeln!(
        out,
        "    'files_dir' => {},",
        php_str(&files_dir.display().to_string())
    );
    if let Some((db, service, sqlite)) = db {
        out.push_str("    'database' => [\n");
        let _ = writeln!(out, "        'engine' => {},", php_str(db.engine.as_str()));
        if db.engine == DbEngine::Sqlite {
            let _ = writeln!(
                out,
                "        'path' => {},",
                php_str(&sqlite.display().to_string())
            );
        } else {
            for (key, value) in [
                ("name", &db.name),
                ("user", &db.user),
                ("password", &db.password),
            ] {
                let _ = writeln!(out, "        '{key}' => {},", php_str(value));
            }
            let (host, socket, port) = db_address(service);
            let _ = writeln!(out, "        'host' => {},", php_str(&host));
            if let Some(socket) = socket {
                let _ = writeln!(out, "        'socket' => {},", php_str(&socket));
            }
            if let Some(port) = port {
                let _ = writeln!(out, "        'port' => {port},");
            }
        }
        out.push_str("    ],\n");
    }
    out.push_str("];\n");
    out
}

/// Host, socket and port of a database service as an application connects to it.
/// Where a site reaches its database server: (host, socket, port).
pub fn db_address_of(service: &DbService) -> (String, Option<String>, Option<u16>) {
    db_address(service)
}

pub(crate) fn db_address(service: &DbService) -> (String, Option<String>, Option<u16>) {
    match (&service.socket, &service.host) {
        (Some(socket), _) => ("localhost".into(), Some(socket.to_string()), service.port),
        (None, Some(host)) => (host.clone(), None, service.port),
        (None, None) => ("localhost".into(), None, service.port),
    }
}
