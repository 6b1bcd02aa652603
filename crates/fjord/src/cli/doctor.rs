//! `fjord doctor`: what a careful operator would check on this machine, and what to fix.

use std::process::ExitCode;

use clap::Args;
use engine::doctor::Verdict;
use engine::{Error, Fjord};

use crate::outln;
use crate::output::print_json;

#[derive(Args, Debug)]
pub(super) struct DoctorArgs {
    /// Check only this server's services (the disk and clock checks run anyway).
    #[arg(long)]
    server: Option<String>,
    /// Print the findings as JSON.
    #[arg(long)]
    json: bool,
}

/// Exits 1 when anything is a problem, so that a script or a monitor can act on it.
pub(super) fn doctor(fjord: &Fjord, args: &DoctorArgs) -> Result<ExitCode, Error> {
    let findings = fjord.doctor(args.server.as_deref())?;
    let problems = findings
        .iter()
        .filter(|f| f.verdict == Verdict::Problem)
        .count();
    if args.json {
        print_json(&serde_json::to_value(&findings).expect("findings serialize"));
    } else {
        for f in &findings {
            let mark = match f.verdict {
                Verdict::Ok => "ok     ",
                Verdict::Problem => "PROBLEM",
            };
            outln!("{mark} {}: {}", f.subject, f.said);
            if let Some(fix) = &f.fix {
                outln!("        fix: {fix}");
            }
        }
        outln!(
            "{} checks, {problems} problem{}",
            findings.len(),
            if problems == 1 { "" } else { "s" }
        );
    }
    Ok(if problems == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
