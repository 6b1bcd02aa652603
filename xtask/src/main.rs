//! Project automation. `cargo xtask tidy` (also run by `cargo test`) checks the architecture
//! invariants that a test can check; see ARCHITECTURE.md. `cargo xtask deb` builds the Debian
//! package.
#![allow(clippy::disallowed_methods)]

use std::path::PathBuf;

use xtask::{deb, tidy};

const USAGE: &str =
    "usage: cargo xtask tidy\n       cargo xtask deb [--binary PATH] [--version V] [--out DIR]";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("tidy") if args.len() == 1 => match tidy::run(&tidy::workspace_root()) {
            Ok(()) => println!("tidy: ok"),
            Err(problems) => {
                for p in problems {
                    eprintln!("tidy: {p}");
                }
                std::process::exit(1);
            }
        },
        Some("deb") => match deb_options(&args[1..]).and_then(|o| deb::build(&o)) {
            Ok(package) => println!("{}", package.display()),
            Err(e) => {
                eprintln!("xtask deb: {e}");
                std::process::exit(1);
            }
        },
        _ => {
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    }
}

fn deb_options(args: &[String]) -> Result<deb::Options, String> {
    let root = tidy::workspace_root();
    let (mut binary, mut version, mut out) = (None, None, None);
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        match flag.as_str() {
            "--binary" => binary = Some(PathBuf::from(value)),
            "--version" => version = Some(value.clone()),
            "--out" => out = Some(PathBuf::from(value)),
            _ => return Err(format!("unknown option {flag}\n{USAGE}")),
        }
    }
    let binary = match binary {
        Some(binary) => binary,
        None => deb::build_release(&root)?,
    };
    Ok(deb::Options {
        version: match version {
            Some(v) => v,
            None => deb::workspace_version(&root)?,
        },
        out: out.unwrap_or_else(|| root.join("target/debian")),
        binary,
        root,
        fast: false,
    })
}
