#![allow(clippy::disallowed_methods)]
//! fjord's end-to-end tests: the real binary against private nginx instances. One test
//! binary for the crate, so it links once; add modules here rather than new test targets.

mod browser;
mod harness;
mod pebble;
mod php_fpm;
mod readers;
mod test_hosts;

mod acme;
mod backup_targets;
mod backups;
mod bad_input;
mod cli;
mod concurrency;
mod config;
mod crash;
mod cron_locks;
mod databases;
mod disk_full;
mod disk_guard;
mod doctor;
mod drupal;
mod edge;
mod fleet_https;
mod hardening;
mod hostile;
mod https_steps;
mod isolation;
mod kill_every_step;
mod kill_random;
mod lifecycle;
mod migrate;
mod monitor;
mod moves;
mod newuser;
mod package;
mod panel;
mod php_rollback;
mod php_sites;
mod private_db;
mod readme;
mod real_apps;
mod reloads;
mod remote;
mod renewal;
mod rollback;
mod served_restore;
mod site_limits;
mod site_logs;
mod smtp;
mod undo_links;
mod uploads;
mod wikis;
