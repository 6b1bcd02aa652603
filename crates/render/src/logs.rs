//! The names of a site's own logs, in its log dir, and what a logged secret becomes. nginx's
//! side (the access log format that keeps login tokens out, each server block's log lines) is
//! in `nginx/logs.rs`, PHP's in its pool (`php.rs`).

/// nginx's access log of a site, in its log dir.
pub const ACCESS_LOG: &str = "access.log";
/// nginx's error log of a site.
pub const ERROR_LOG: &str = "error.log";
/// What the site's PHP logs (`error_log`), written by the site's own user.
pub const PHP_ERROR_LOG: &str = "php-error.log";

/// What a logged secret is replaced by.
pub const REDACTED: &str = "[secret]";
