//! `fjord`: the command line. Wiring only: every decision is made in `engine`.

mod cli;
mod logging;
mod output;
mod style;

use std::process::ExitCode;

use clap::Parser;

use crate::style::Style;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("fjord: {} {e}", style::err("error:", Style::Bad));
            ExitCode::from(e.exit_code())
        }
    }
}
