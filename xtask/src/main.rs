//! Project automation. `cargo xtask tidy` (also run by `cargo test`) checks the architecture
//! invariants that a test can check; see ARCHITECTURE.md.
#![allow(clippy::disallowed_methods)]

mod tidy;

fn main() {
    match std::env::args().nth(1).as_deref() {
        Some("tidy") => match tidy::run(&tidy::workspace_root()) {
            Ok(()) => println!("tidy: ok"),
            Err(problems) => {
                for p in problems {
                    eprintln!("tidy: {p}");
                }
                std::process::exit(1);
            }
        },
        _ => {
            eprintln!("usage: cargo xtask tidy");
            std::process::exit(2);
        }
    }
}
