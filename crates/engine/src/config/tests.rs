use std::collections::HashMap;

use super::keys::sections;
use super::rules::level_rule;
use super::*;

fn resolve_with(text: &str, flags: &Flags, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let lookup = move |name: &str| env.get(name).cloned();
    Config::resolve(
        &Text {
            path: Path::new("/etc/fjord/fjord.toml"),
            text,
        },
        flags,
        &lookup,
        true,
    )
}

fn resolve(text: &str) -> Result<Config, ConfigError> {
    resolve_with(text, &Flags::default(), &[])
}

fn refusal(text: &str) -> String {
    resolve(text).expect_err(text).to_string()
}

/// A valid value for every key, as the file would hold it.
fn sample(key: &str) -> &'static str {
    match key {
        "data_dir" => "\"/srv/fjord\"",
        "panel.listen" => "\"127.0.0.1:9000\"",
        "panel.url" => "\"https://panel.example.com\"",
        "panel.server" => "\"web1\"",
        "panel.trusted_proxies" => "[\"127.0.0.1\", \"10.0.0.0/8\"]",
        "panel.dispatcher" => "false",
        "dispatcher.concurrency" => "3",
        "dispatcher.log_keep" => "5",
        "dispatcher.log_rotate_bytes" => "1000",
        "dispatcher.disk_stop_percent" => "95",
        "dispatcher.disk_resume_percent" => "80",
        "dispatcher.monitor_interval" => "2",
        "mail.transport" => "\"smtp\"",
        "mail.relay" => "\"mail.example.com:587\"",
        "mail.from" => "\"fjord@example.com\"",
        "mail.starttls" => "true",
        // Not for smtp: left out of the full file.
        "mail.sendmail" => "",
        "log.format" => "\"json\"",
        "log.level" => "\"info,engine=debug\"",
        other => panic!("no sample value for {other}: add one"),
    }
}

/// A file setting every key of [`KEYS`] (but those its mail transport refuses).
fn full_file() -> String {
    let mut out = String::new();
    let mut section = "";
    for k in KEYS {
        let value = sample(k.name);
        if value.is_empty() {
            continue;
        }
        let (s, name) = k.name.split_once('.').unwrap_or(("", k.name));
        if s != section {
            out.push_str(&format!("[{s}]\n"));
            section = s;
        }
        out.push_str(&format!("{name} = {value}\n"));
    }
    out
}

#[test]
fn an_empty_file_gives_every_default() {
    let c = resolve("").unwrap();
    assert_eq!(c.panel.listen.value.to_string(), DEFAULT_LISTEN);
    assert_eq!(c.panel.server.value, "local");
    assert_eq!(c.panel.url.value, None);
    assert!(c.panel.dispatcher.value);
    assert_eq!(c.dispatcher.log_keep.value, 14);
    assert_eq!(c.dispatcher.log_rotate_bytes.value, 10 << 20);
    assert!(c.dispatcher.concurrency.value >= 1);
    assert_eq!(c.log.format.value, LogFormat::Text);
    assert_eq!(c.log.level.value, "info");
    assert_eq!(c.data_dir.value, crate::default_data_dir(true));
    assert_eq!(c.mail, None);
    for (key, _, source) in c.effective() {
        assert_eq!(source, Source::Default, "{}", key.name);
    }
}

/// The file the Debian package installs: every key commented out, its tables kept.
#[test]
fn the_packaged_file_names_every_key_and_gives_every_default() {
    let packaged = include_str!("../../../../packaging/debian/fjord.toml");
    let c = resolve(packaged).unwrap();
    assert_eq!(c.mail, None, "an empty [mail] says nothing");
    assert_eq!(
        c.dispatcher.disk.value,
        crate::dispatch::DiskThresholds::default()
    );
    for (key, _, source) in c.effective() {
        assert_eq!(source, Source::Default, "{}", key.name);
    }
    let uncommented: String = packaged
        .lines()
        .map(|l| l.strip_prefix("# ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n");
    for key in KEYS {
        let leaf = key.name.rsplit('.').next().unwrap();
        assert!(
            uncommented.contains(&format!("\n{leaf} = ")),
            "the packaged file shows {}",
            key.name
        );
    }
}

#[test]
fn every_key_of_the_file_is_read_and_shown_as_from_the_file() {
    let c = resolve(&full_file()).unwrap();
    assert_eq!(c.data_dir.value, PathBuf::from("/srv/fjord"));
    assert_eq!(c.panel.listen.value.to_string(), "127.0.0.1:9000");
    assert_eq!(
        c.panel.url.value.as_deref(),
        Some("https://panel.example.com")
    );
    assert_eq!(c.panel.server.value, "web1");
    assert_eq!(c.panel.trusted_proxies.value, ["127.0.0.1", "10.0.0.0/8"]);
    assert!(c.trusted_proxies().contains("10.1.2.3".parse().unwrap()));
    assert!(!c.panel.dispatcher.value);
    assert_eq!(c.dispatcher.concurrency.value, 3);
    assert_eq!(c.dispatcher.log_keep.value, 5);
    assert_eq!(c.dispatcher.log_rotate_bytes.value, 1000);
    assert_eq!(c.log.format.value, LogFormat::Json);
    assert_eq!(c.log.level.value, "info,engine=debug");
    let Some(Some(MailSettings::Smtp {
        host,
        port,
        starttls,
        from,
    })) = &c.mail
    else {
        panic!("{:?}", c.mail)
    };
    assert_eq!(
        (host.as_str(), *port, *starttls),
        ("mail.example.com", 587, true)
    );
    assert_eq!(from.to_string(), "fjord@example.com");
    let shown = c.effective();
    for k in KEYS.iter().filter(|k| !sample(k.name).is_empty()) {
        let (_, _, source) = shown
            .iter()
            .find(|(key, _, _)| key.name == k.name)
            .unwrap_or_else(|| panic!("{} is not shown", k.name));
        assert_eq!(*source, Source::File, "{}", k.name);
    }
}

#[test]
fn an_unknown_key_is_named_in_full_with_its_line_and_the_closest_key() {
    let text = "data_dir = \"/srv/fjord\"\n[panel]\nlisen = \"127.0.0.1:1\"\n";
    assert_eq!(
        refusal(text),
        "/etc/fjord/fjord.toml: unknown key `panel.lisen` at line 3, column 1 (did you mean \
         `listen`?)"
    );
    assert!(refusal("[panle]\n").contains("unknown key `panle` at line 1"));
    assert!(refusal("[panle]\n").contains("did you mean `panel`?"));
    // Every section's keys are those KEYS lists: an unknown one is named with its section.
    for (section, _) in sections() {
        let text = if section.is_empty() {
            "zzz_unknown = 1\n".to_string()
        } else {
            format!("[{section}]\nzzz_unknown = 1\n")
        };
        let expected = if section.is_empty() {
            "unknown key `zzz_unknown`".to_string()
        } else {
            format!("unknown key `{section}.zzz_unknown`")
        };
        assert!(refusal(&text).contains(&expected), "{}", refusal(&text));
    }
}

#[test]
fn a_bad_value_is_refused_with_its_key_line_and_rule() {
    let e = refusal("[dispatcher]\n\nconcurrency = -1\n");
    assert_eq!(
        e,
        "/etc/fjord/fjord.toml: `dispatcher.concurrency` = -1 at line 3, column 15: must be a \
         whole number, at least 1"
    );
    let e = refusal("[panel]\nlisten = \"nowhere\"\n");
    assert!(e.contains("`panel.listen` = \"nowhere\" at line 2"), "{e}");
    assert!(e.contains("must be IP:PORT"), "{e}");
    let e = refusal("[panel]\ntrusted_proxies = [\"10.0.0.0/40\"]\n");
    assert!(e.contains("prefix length"), "{e}");
    let e = refusal("[panel]\nurl = \"ftp://x\"\n");
    assert!(e.contains("http:// or https://"), "{e}");
    let e = refusal("[panel]\nserver = \"no such/name\"\n");
    assert!(e.contains("`panel.server`"), "{e}");
    let e = refusal("[log]\nformat = \"xml\"\n");
    assert!(e.contains("must be text or json"), "{e}");
    let e = refusal("[log]\nlevel = \"infx\"\n");
    assert!(e.contains("must be a level"), "{e}");
    let e = refusal("data_dir = \"relative/dir\"\n");
    assert!(e.contains("`data_dir`"), "{e}");
    // A value of the wrong type: the key and the line, in serde's words.
    let e = refusal("[panel]\nlisten = 8470\n");
    assert!(e.contains("`panel.listen` at line 2"), "{e}");
    assert!(e.contains("invalid type"), "{e}");
}

#[test]
fn bad_toml_is_refused_with_its_line() {
    let e = refusal("[panel]\nlisten = \"127.0.0.1:1\"\nurl = \n");
    assert!(
        e.starts_with("/etc/fjord/fjord.toml: line 3, column"),
        "{e}"
    );
    assert!(e.contains("not valid TOML"), "{e}");
}

#[test]
fn a_flag_wins_over_the_environment_which_wins_over_the_file() {
    let file = "[panel]\nlisten = \"127.0.0.1:1001\"\n[dispatcher]\nconcurrency = 2\n";
    let env = [
        ("FJORD_PANEL_LISTEN", "127.0.0.1:1002"),
        ("FJORD_CONCURRENCY", "5"),
    ];
    let c = resolve_with(file, &Flags::default(), &[]).unwrap();
    assert_eq!(c.panel.listen.source, Source::File);
    let c = resolve_with(file, &Flags::default(), &env).unwrap();
    assert_eq!(c.panel.listen.value.to_string(), "127.0.0.1:1002");
    assert_eq!(c.panel.listen.source, Source::Env("FJORD_PANEL_LISTEN"));
    assert_eq!(c.dispatcher.concurrency.value, 5);
    let flags = Flags {
        listen: Some("127.0.0.1:1003".into()),
        ..Flags::default()
    };
    let c = resolve_with(file, &flags, &env).unwrap();
    assert_eq!(c.panel.listen.value.to_string(), "127.0.0.1:1003");
    assert_eq!(c.panel.listen.source, Source::Flag("--listen"));
    assert_eq!(
        c.dispatcher.concurrency.source,
        Source::Env("FJORD_CONCURRENCY")
    );
    // Lists: comma-separated in the environment, repeated on the command line.
    let c = resolve_with(
        "",
        &Flags::default(),
        &[("FJORD_TRUSTED_PROXIES", "10.0.0.1, ::1")],
    )
    .unwrap();
    assert_eq!(c.panel.trusted_proxies.value, ["10.0.0.1", "::1"]);
    let flags = Flags {
        no_dispatcher: true,
        ..Flags::default()
    };
    let c = resolve_with("[panel]\ndispatcher = true\n", &flags, &[]).unwrap();
    assert!(!c.panel.dispatcher.value);
    assert_eq!(c.panel.dispatcher.source, Source::Flag("--no-dispatcher"));
}

#[test]
fn a_bad_value_in_the_environment_or_a_flag_names_where_it_was_given() {
    let e = resolve_with("", &Flags::default(), &[("FJORD_CONCURRENCY", "-3")]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "environment variable FJORD_CONCURRENCY: \"-3\": must be a whole number, at least 1"
    );
    let flags = Flags {
        log_format: Some("yaml".into()),
        ..Flags::default()
    };
    let e = resolve_with("", &flags, &[]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "--log-format: \"yaml\": must be text or json"
    );
    // A bad file is refused even where the environment would win.
    let e = resolve_with(
        "[panel]\nlisten = \"x\"\n",
        &Flags::default(),
        &[("FJORD_PANEL_LISTEN", "127.0.0.1:1")],
    )
    .unwrap_err();
    assert!(e.to_string().contains("`panel.listen`"), "{e}");
}

#[test]
fn the_mail_table_follows_the_rules_of_fjord_mail() {
    let c = resolve("[mail]\ntransport = \"off\"\n").unwrap();
    assert_eq!(c.mail, Some(None));
    let c = resolve("[mail]\ntransport = \"sendmail\"\nfrom = \"a@example.com\"\n").unwrap();
    assert!(matches!(
        &c.mail,
        Some(Some(MailSettings::Sendmail { path, .. })) if path.as_str() == "/usr/sbin/sendmail"
    ));
    let e = refusal("[mail]\ntransport = \"smtp\"\nfrom = \"a@example.com\"\n");
    assert!(e.contains("needs `mail.relay`"), "{e}");
    let e =
        refusal("[mail]\ntransport = \"sendmail\"\nfrom = \"a@example.com\"\nrelay = \"m:25\"\n");
    assert!(
        e.contains("`mail.relay` is for mail.transport = smtp"),
        "{e}"
    );
    let e = refusal("[mail]\ntransport = \"pigeon\"\n");
    assert!(e.contains("must be smtp, sendmail or off"), "{e}");
    let e = refusal("[mail]\nfrom = \"a@example.com\"\n");
    assert!(e.contains("needs `mail.transport`"), "{e}");
    let e = refusal(
        "[mail]\ntransport = \"smtp\"\nrelay = \"mail.example.com:0\"\nfrom = \"a@example.com\"\n",
    );
    assert!(e.contains("`mail.relay`") && e.contains("HOST:PORT"), "{e}");
    let e = refusal("[mail]\ntransport = \"smtp\"\nrelay = \"m.example:25\"\nfrom = \"nobody\"\n");
    assert!(e.contains("`mail.from`"), "{e}");
}

#[test]
fn a_mail_change_is_refused_while_the_file_decides() {
    let mut c = resolve("[mail]\ntransport = \"off\"\n").unwrap();
    c.file = Some(ConfigFile {
        path: PathBuf::from("/etc/fjord/fjord.toml"),
        source: Source::Default,
    });
    let e = c.refuse_mail_change().unwrap_err().to_string();
    assert!(e.contains("[mail] table of /etc/fjord/fjord.toml"), "{e}");
    let mut c = resolve("").unwrap();
    c.file = Some(ConfigFile {
        path: PathBuf::from("/etc/fjord/fjord.toml"),
        source: Source::Default,
    });
    c.refuse_mail_change().unwrap();
}

#[test]
fn a_log_filter_names_levels_only() {
    for good in [
        "info",
        "DEBUG",
        "warn,engine=debug",
        "off",
        "web=trace,info",
    ] {
        assert!(level_rule(good).is_ok(), "{good}");
    }
    for bad in ["", "infx", "engine=loud", "=debug", "info,,"] {
        assert!(level_rule(bad).is_err(), "{bad}");
    }
}
