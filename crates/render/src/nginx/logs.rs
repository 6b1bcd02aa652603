//! A site's nginx logs: fjord's access log format, which keeps one-time login tokens out of
//! every line, and the lines that send each server block of a site's vhost to its own files.

use std::fmt::Write;
use std::path::Path;

use crate::logs::{ACCESS_LOG, ERROR_LOG, REDACTED};

/// The name of fjord's access log format in the server-level config of `config_dir`: one per
/// fjord server config, since two of them may be included by one nginx (a `log_format` name
/// defined twice fails `nginx -t`; the `map`s may be, and are the same).
pub(super) fn log_format_name(config_dir: &Path) -> String {
    // FNV-1a: stable across builds and machines, unlike std's hasher.
    let hash = config_dir
        .as_os_str()
        .as_encoded_bytes()
        .iter()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
        });
    format!("fjord_{:08x}", hash as u32)
}

/// The `map`s and `log_format` of fjord's access log, at the server level (http context).
///
/// A request line is logged with what follows a login token replaced: fjord's own links
/// (`?fjord-login=`), Drupal's one-time login path (`/user/reset/<uid>/<ts>/<hash>`, also as
/// Drupal 7's `?q=user/reset/…`) and the token Drupal hands on after it
/// (`?pass-reset-token=`). The whole query string goes when it holds a token (a second token
/// parameter would otherwise survive), and the rest of the path from `user/reset/` on. The
/// referer is logged the same way: the page after a login link names it.
pub(super) fn log_format(config_dir: &Path) -> String {
    let mut out = String::new();
    for (from, to) in [
        ("$request_uri", "$fjord_request_uri"),
        ("$http_referer", "$fjord_referer"),
    ] {
        let _ = write!(
            out,
            "\
map {from} {to} {{
    \"~*^(?<fjord_path>[^?]*?user(?:/|%2f)reset)(?:/|%2f)\" \"${{fjord_path}}/{REDACTED}\";
    \"~*^(?<fjord_path>[^?]*)[?].*(?:fjord(?:-|%2d)login|pass(?:-|%2d)reset(?:-|%2d)token)\" \"${{fjord_path}}?{REDACTED}\";
    \"~*^(?<fjord_path>[^?]*[?].*?user(?:/|%2f)reset)(?:/|%2f)\" \"${{fjord_path}}/{REDACTED}\";
    default {from};
}}
"
        );
    }
    let _ = writeln!(
        out,
        "log_format {} '$remote_addr - $remote_user [$time_local] \
         \"$request_method $fjord_request_uri $server_protocol\" $status $body_bytes_sent \
         \"$fjord_referer\" \"$http_user_agent\"';",
        log_format_name(config_dir)
    );
    out
}

/// The log lines of a server block of a site's vhost: its access log in fjord's format and
/// its error log at level `error`, where a request for a missing file is not logged (nginx's
/// error lines carry the request line as it came, tokens included: a 404 on a login link
/// would hold its token).
pub(super) fn site_log_lines(out: &mut String, dir: &Path, config_dir: &Path) {
    let _ = write!(
        out,
        "    access_log {access} {format};\n    error_log {error} error;\n    \
         log_not_found off;\n",
        access = dir.join(ACCESS_LOG).display(),
        format = log_format_name(config_dir),
        error = dir.join(ERROR_LOG).display(),
    );
}
