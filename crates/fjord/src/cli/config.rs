//! `fjord config`: the config file checked, and the settings in effect with where each
//! came from.

use std::process::ExitCode;

use clap::Subcommand;
use engine::config::{Config, ConfigError};

use crate::outln;
use crate::output::print_json;
use crate::style::{self, Style};

#[derive(Subcommand, Debug)]
pub enum ConfigCmd {
    /// Check the config file (--config, FJORD_CONFIG or /etc/fjord/fjord.toml) and the
    /// FJORD_* variables: exits 1 naming the line and the key or value at fault, else prints
    /// the settings in effect.
    Check,
    /// Print every setting in effect and where it came from: flag, env, file or default.
    Show {
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub fn config(cmd: &ConfigCmd, loaded: Result<Config, ConfigError>) -> ExitCode {
    let config = match loaded {
        Ok(config) => config,
        Err(e) => {
            eprintln!("fjord: {} {e}", style::err("error:", Style::Bad));
            return ExitCode::FAILURE;
        }
    };
    let settings = config.effective();
    if let ConfigCmd::Show { json: true } = cmd {
        let rows: Vec<serde_json::Value> = settings
            .iter()
            .map(|(key, value, source)| {
                serde_json::json!({
                    "key": key.name,
                    "value": value,
                    "source": source.to_string(),
                })
            })
            .collect();
        print_json(&serde_json::json!({
            "file": config.file.as_ref().map(|f| f.path.display().to_string()),
            "settings": rows,
        }));
        return ExitCode::SUCCESS;
    }
    match &config.file {
        Some(file) => outln!("{}: valid", file.path.display()),
        None => outln!(
            "no config file ({} does not exist): defaults and FJORD_* variables only",
            engine::config::DEFAULT_PATH
        ),
    }
    let width = settings
        .iter()
        .map(|(key, _, _)| key.name.len())
        .max()
        .unwrap_or(0);
    for (key, value, source) in settings {
        outln!(
            "{:<width$}  {value}  {}",
            key.name,
            style::out(&format!("({source})"), Style::Dim)
        );
    }
    ExitCode::SUCCESS
}
