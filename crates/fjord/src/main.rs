//! `fjord`: the command line. Wiring only: every decision is made in `engine`.

mod cli;
mod output;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("fjord: error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
