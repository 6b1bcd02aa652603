use std::process::Command;

use crate::{HostError, Result};

#[derive(Debug, Clone)]
pub struct CommandOutput {
    pub success: bool,
    pub status: String,
    /// stdout and stderr, in that order.
    pub output: String,
}

/// Runs a program without a shell and captures its output.
pub fn run_command(argv: &[String]) -> Result<CommandOutput> {
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| HostError::Refused("empty command".into()))?;
    let out = Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| HostError::io(std::path::Path::new(program), e))?;
    let mut output = String::from_utf8_lossy(&out.stdout).into_owned();
    output.push_str(&String::from_utf8_lossy(&out.stderr));
    Ok(CommandOutput {
        success: out.status.success(),
        status: out.status.to_string(),
        output,
    })
}
