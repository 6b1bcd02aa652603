//! `fjord generate`: shell completions and man pages, made from the same clap definitions
//! as the commands themselves, for packagers (`fjord generate all --out usr/share` lays them
//! out as Debian installs them) and for people who build fjord themselves.
//!
//! Hidden from `fjord --help`: it is a build step, not a way of running fjord. It reads and
//! writes no state.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Command, CommandFactory, Subcommand};
use clap_complete::Shell;
use engine::Error;

use super::Cli;
use crate::outln;

/// The shells whose completions a package ships.
pub const PACKAGED_SHELLS: [Shell; 3] = [Shell::Bash, Shell::Zsh, Shell::Fish];

#[derive(Subcommand, Debug)]
pub enum GenerateCmd {
    /// Print a shell's completion script (bash, zsh, fish, elvish or powershell).
    Completion { shell: Shell },
    /// Write a man page for fjord and one for each command (fjord.1, fjord-site.1,
    /// fjord-site-add.1, …) into DIR.
    Man {
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Write the man pages and the bash, zsh and fish completions beneath DIR as a package
    /// installs them beneath /usr/share: man/man1/, bash-completion/completions/fjord,
    /// zsh/vendor-completions/_fjord, fish/vendor_completions.d/fjord.fish.
    All {
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

pub(super) fn generate(cmd: GenerateCmd) -> Result<ExitCode, Error> {
    match cmd {
        GenerateCmd::Completion { shell } => {
            let script = completion(shell);
            outln!("{}", String::from_utf8_lossy(&script).trim_end());
        }
        GenerateCmd::Man { out } => {
            let pages = man_pages()?;
            engine::write_generated_files(&out, &pages)?;
            eprintln!(
                "fjord: wrote {} man pages in {}",
                pages.len(),
                out.display()
            );
        }
        GenerateCmd::All { out } => {
            let mut files: Vec<(PathBuf, Vec<u8>)> = man_pages()?
                .into_iter()
                .map(|(name, page)| (Path::new("man/man1").join(name), page))
                .collect();
            let pages = files.len();
            for shell in PACKAGED_SHELLS {
                files.push((completion_path(shell).into(), completion(shell)));
            }
            engine::write_generated_files(&out, &files)?;
            eprintln!(
                "fjord: wrote {pages} man pages and the completions of {} beneath {}",
                PACKAGED_SHELLS.map(|s| s.to_string()).join(", "),
                out.display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Where a package installs a shell's completion, beneath /usr/share.
pub fn completion_path(shell: Shell) -> &'static str {
    match shell {
        Shell::Bash => "bash-completion/completions/fjord",
        Shell::Zsh => "zsh/vendor-completions/_fjord",
        Shell::Fish => "fish/vendor_completions.d/fjord.fish",
        Shell::Elvish => "elvish/lib/fjord.elv",
        Shell::PowerShell => "powershell/fjord.ps1",
        _ => "fjord.completion",
    }
}

pub fn completion(shell: Shell) -> Vec<u8> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "fjord", &mut script);
    script
}

/// One man page per visible command: its file name and its roff.
pub fn man_pages() -> Result<Vec<(PathBuf, Vec<u8>)>, Error> {
    let mut root = Cli::command().disable_help_subcommand(true);
    root.build();
    let mut pages = Vec::new();
    for cmd in visible_commands(&root) {
        let man = clap_mangen::Man::new(cmd.clone())
            .date(env!("FJORD_BUILD_DATE"))
            .manual("fjord manual");
        let mut page = Vec::new();
        man.render(&mut page)
            .map_err(|e| Error::Refused(format!("cannot render {}: {e}", man.get_filename())))?;
        pages.push((man.get_filename().into(), page));
    }
    Ok(pages)
}

/// The command and every command beneath it that `--help` shows, parents first (built, so
/// each is named as a man page is: `fjord-site-add`).
pub fn visible_commands(cmd: &Command) -> Vec<&Command> {
    let mut all = vec![cmd];
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        all.extend(visible_commands(sub));
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every command `--help` shows, as the words that run it: `["site", "add"]`.
    fn command_paths() -> Vec<Vec<String>> {
        fn walk(cmd: &Command, above: &[String], out: &mut Vec<Vec<String>>) {
            for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
                let mut path = above.to_vec();
                path.push(sub.get_name().to_string());
                out.push(path.clone());
                walk(sub, &path, out);
            }
        }
        let mut root = Cli::command().disable_help_subcommand(true);
        root.build();
        let mut out = Vec::new();
        walk(&root, &[], &mut out);
        out
    }

    fn find<'a>(root: &'a Command, path: &[String]) -> &'a Command {
        path.iter().fold(root, |cmd, name| {
            cmd.find_subcommand(name).expect("a listed command")
        })
    }

    #[test]
    fn every_command_has_a_one_line_description() {
        let root = Cli::command();
        let paths = command_paths();
        assert!(paths.len() > 60, "{}", paths.len());
        for path in &paths {
            let about = find(&root, path).get_about().map(|a| a.to_string());
            let about = about.unwrap_or_default();
            assert!(
                !about.trim().is_empty(),
                "fjord {} says nothing",
                path.join(" ")
            );
            assert!(!about.contains('\n'), "fjord {}: {about:?}", path.join(" "));
        }
    }

    #[test]
    fn completions_of_each_shell_cover_every_command_and_its_options() {
        let root = Cli::command();
        for shell in PACKAGED_SHELLS {
            let script = String::from_utf8(completion(shell)).unwrap();
            for path in command_paths() {
                let cmd = find(&root, &path);
                let leaf = path.last().unwrap();
                // How each shell's script names a command: bash by its path, zsh in its
                // parent's list of commands, fish as an argument offered under its parent.
                let named = match shell {
                    Shell::Bash => {
                        let parents: String = path[..path.len() - 1]
                            .iter()
                            .map(|p| format!("__subcmd__{}", p.replace('-', "__subcmd__")))
                            .collect();
                        format!("fjord{parents},{leaf})")
                    }
                    Shell::Zsh => format!("'{leaf}:"),
                    Shell::Fish => format!("-a \"{leaf}\""),
                    _ => unreachable!(),
                };
                assert!(
                    script.contains(&named),
                    "{shell}: fjord {} ({named})",
                    path.join(" ")
                );
                for arg in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
                    if let Some(long) = arg.get_long() {
                        let flag = match shell {
                            Shell::Fish => format!("-l {long}"),
                            _ => format!("--{long}"),
                        };
                        assert!(
                            script.contains(&flag),
                            "{shell}: fjord {} {flag}",
                            path.join(" ")
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn a_man_page_is_written_for_every_command() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("share");
        generate(GenerateCmd::All { out: out.clone() }).unwrap();
        let man = out.join("man/man1");
        let root = Cli::command();
        let mut pages = vec!["fjord.1".to_string()];
        for path in command_paths() {
            let page = format!("fjord-{}.1", path.join("-"));
            let text =
                std::fs::read_to_string(man.join(&page)).unwrap_or_else(|e| panic!("{page}: {e}"));
            let cmd = find(&root, &path);
            let about = cmd.get_about().unwrap().to_string();
            // roff escapes '-' and quotes; the first words of the description survive.
            let first_word = about.split_whitespace().next().unwrap();
            let roff_word = first_word.replace('-', "\\-");
            assert!(
                text.contains(first_word) || text.contains(&roff_word),
                "{page} lacks {about:?}"
            );
            for arg in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
                if let Some(long) = arg.get_long() {
                    let roff = long.replace('-', "\\-");
                    assert!(text.contains(&roff), "{page} lacks --{long}");
                }
            }
            pages.push(page);
        }
        let mut written: Vec<String> = std::fs::read_dir(&man)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        written.sort();
        pages.sort();
        assert_eq!(
            written, pages,
            "one page per command, no page for a hidden one"
        );
        for shell in PACKAGED_SHELLS {
            assert!(out.join(completion_path(shell)).is_file(), "{shell}");
        }
    }
}
