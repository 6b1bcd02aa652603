//! `fjord user` and `fjord client`: the people of the panel, from the machine's own shell (the
//! operator, who holds every right).

use std::io::BufRead;
use std::process::ExitCode;

use clap::Subcommand;
use engine::acting::{ClientInput, LinkDelivery, UserInput};
use engine::model::Actor;
use engine::{Error, Fjord};
use serde_json::json;

use super::JsonOpt;
use crate::outln;
use crate::output::{print_json, table, time};

#[derive(Subcommand, Debug)]
pub enum UserCmd {
    /// Add a user of the panel. Without --password-stdin it signs in first with the login
    /// link printed here and sets its password then.
    Add {
        name: String,
        /// administrator, platform-manager, account-manager or client.
        #[arg(long, default_value = "client")]
        role: String,
        /// The client a client user belongs to.
        #[arg(long)]
        client: Option<String>,
        #[arg(long)]
        email: Option<String>,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users.
    List(JsonOpt),
    /// Change a user's role, client, email, or whether it may sign in (disabling ends its
    /// sessions).
    Edit {
        name: String,
        #[arg(long)]
        role: Option<String>,
        /// The client ("" for none).
        #[arg(long)]
        client: Option<String>,
        /// The email address ("" for none).
        #[arg(long)]
        email: Option<String>,
        #[arg(long, conflicts_with = "enable")]
        disable: bool,
        #[arg(long)]
        enable: bool,
    },
    /// Set a user's password, read from the first line of standard input. Ends its sessions.
    Passwd { name: String },
    /// Print a one-time login link for a user (it works once, for a day).
    Link { name: String },
    /// Remove a user; its sessions and API tokens end with it.
    Remove { name: String },
}

#[derive(Subcommand, Debug)]
pub enum ClientCmd {
    /// Add a client: the people sites belong to.
    Add {
        name: String,
        #[command(flatten)]
        opts: ClientOpts,
    },
    /// List clients with their sites, users and quota.
    List(JsonOpt),
    /// Change a client's email, quota and platforms (each given replaces the old value).
    Edit {
        name: String,
        #[command(flatten)]
        opts: ClientOpts,
    },
    /// Set where mail about a client's sites goes (login links after an install, task
    /// failures); `none` removes it. The client is created if new.
    Email {
        #[arg(allow_hyphen_values = true)]
        name: String,
        #[arg(allow_hyphen_values = true)]
        address: String,
    },
}

#[derive(clap::Args, Debug)]
pub struct ClientOpts {
    /// Where mail about its sites goes.
    #[arg(long)]
    email: Option<String>,
    /// How many sites it may have (0 or "none": no limit).
    #[arg(long, value_name = "N")]
    quota: Option<String>,
    /// A platform its users may put sites on (repeat for several).
    #[arg(long = "platform", value_name = "PLATFORM")]
    platforms: Vec<String>,
}

fn parse_quota(quota: &str) -> Result<Option<u32>, Error> {
    match quota {
        "none" | "0" | "" => Ok(None),
        n => n.parse::<u32>().map(Some).map_err(|_| {
            engine::Invalid::new("quota", n, "must be a whole number of sites, or none").into()
        }),
    }
}

fn read_password() -> Result<String, Error> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| Error::Refused(format!("cannot read the password from stdin: {e}")))?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

fn print_delivery(delivery: LinkDelivery, before_link: &str) {
    match delivery {
        LinkDelivery::Shown(link) => outln!("{before_link}{link}"),
        LinkDelivery::Mailed(to) => outln!("the login link was mailed to {to}"),
        LinkDelivery::Withheld(why) => outln!("{why}"),
    }
}

pub fn user(fjord: &Fjord, cmd: UserCmd) -> Result<ExitCode, Error> {
    let acting = fjord.acting(Actor::operator());
    match cmd {
        UserCmd::Add {
            name,
            role,
            client,
            email,
            password_stdin,
        } => {
            let password = password_stdin.then(read_password).transpose()?;
            let has_password = password.is_some();
            let user = acting.add_user(&UserInput {
                name,
                email,
                role,
                client,
                password,
            })?;
            outln!("added user {} ({})", user.name, user.role);
            if !has_password {
                print_delivery(
                    acting.send_login_link(user.name.as_str())?,
                    "sign in once with ",
                );
            }
        }
        UserCmd::List(o) => {
            let users = acting.users()?;
            let clients = acting.clients()?;
            let client_name = |id: Option<i64>| {
                id.and_then(|id| clients.iter().find(|c| c.client.id == id))
                    .map(|c| c.client.name.to_string())
                    .unwrap_or_default()
            };
            if o.json {
                print_json(&json!(
                    users
                        .iter()
                        .map(|u| json!({
                            "name": u.name, "role": u.role, "client": client_name(u.client_id),
                            "email": u.email, "disabled": u.disabled, "created_at": u.created_at,
                        }))
                        .collect::<Vec<_>>()
                ));
            } else {
                table(
                    &["name", "role", "client", "email", "state", "since"],
                    users
                        .iter()
                        .map(|u| {
                            vec![
                                u.name.to_string(),
                                u.role.to_string(),
                                client_name(u.client_id),
                                u.email.as_ref().map(|e| e.to_string()).unwrap_or_default(),
                                if u.disabled { "disabled" } else { "active" }.into(),
                                time(Some(u.created_at)),
                            ]
                        })
                        .collect(),
                );
            }
        }
        UserCmd::Edit {
            name,
            role,
            client,
            email,
            disable,
            enable,
        } => {
            let user = acting.user(&name)?;
            let clients = acting.clients()?;
            let old_client = user
                .client_id
                .and_then(|id| clients.into_iter().find(|c| c.client.id == id))
                .map(|c| c.client.name.to_string());
            let input = UserInput {
                name: name.clone(),
                email: email.or(user.email.as_ref().map(|e| e.to_string())),
                role: role.unwrap_or_else(|| user.role.to_string()),
                client: client.or(old_client),
                password: None,
            };
            let disabled = if disable {
                true
            } else if enable {
                false
            } else {
                user.disabled
            };
            let user = acting.update_user(&name, &input, disabled)?;
            outln!(
                "user {} is {} ({})",
                user.name,
                user.role,
                if user.disabled { "disabled" } else { "active" }
            );
        }
        UserCmd::Passwd { name } => {
            let password = read_password()?;
            acting.set_password(&name, None, &password)?;
            outln!("the password of {name} is set; its sessions have ended");
        }
        UserCmd::Link { name } => {
            print_delivery(acting.send_login_link(&name)?, "");
        }
        UserCmd::Remove { name } => {
            acting.delete_user(&name)?;
            outln!("removed user {name}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn client(fjord: &Fjord, cmd: ClientCmd) -> Result<ExitCode, Error> {
    let acting = fjord.acting(Actor::operator());
    let platform_names = || -> Result<Vec<(i64, String)>, Error> {
        Ok(fjord
            .platforms()?
            .into_iter()
            .map(|p| (p.id, p.name.to_string()))
            .collect())
    };
    match cmd {
        ClientCmd::Add { name, opts } => {
            let input = ClientInput {
                name,
                email: opts.email,
                site_quota: opts
                    .quota
                    .as_deref()
                    .map(parse_quota)
                    .transpose()?
                    .flatten(),
                platforms: opts.platforms,
            };
            let c = acting.save_client(&input, false)?;
            outln!("added client {}", c.client.name);
        }
        ClientCmd::Edit { name, opts } => {
            let old = acting.client(&name)?;
            let names = platform_names()?;
            let input = ClientInput {
                name,
                email: opts
                    .email
                    .or(old.client.email.as_ref().map(|e| e.to_string())),
                site_quota: match opts.quota.as_deref() {
                    Some(q) => parse_quota(q)?,
                    None => old.client.site_quota,
                },
                platforms: if opts.platforms.is_empty() {
                    names
                        .iter()
                        .filter(|(id, _)| old.platforms.contains(id))
                        .map(|(_, n)| n.clone())
                        .collect()
                } else {
                    opts.platforms
                },
            };
            let c = acting.save_client(&input, true)?;
            outln!("changed client {}", c.client.name);
        }
        ClientCmd::List(o) => {
            let names = platform_names()?;
            let clients = acting.clients()?;
            let platforms = |ids: &[i64]| -> Vec<String> {
                names
                    .iter()
                    .filter(|(id, _)| ids.contains(id))
                    .map(|(_, n)| n.clone())
                    .collect()
            };
            if o.json {
                print_json(&json!(
                    clients
                        .iter()
                        .map(|c| json!({
                            "name": c.client.name, "email": c.client.email,
                            "site_quota": c.client.site_quota, "sites": c.sites,
                            "users": c.users, "platforms": platforms(&c.platforms),
                        }))
                        .collect::<Vec<_>>()
                ));
            } else {
                table(
                    &["name", "sites", "quota", "users", "platforms", "email"],
                    clients
                        .iter()
                        .map(|c| {
                            vec![
                                c.client.name.to_string(),
                                c.sites.to_string(),
                                c.client
                                    .site_quota
                                    .map(|q| q.to_string())
                                    .unwrap_or_else(|| "-".into()),
                                c.users.to_string(),
                                platforms(&c.platforms).join(","),
                                c.client
                                    .email
                                    .as_ref()
                                    .map(|e| e.to_string())
                                    .unwrap_or_default(),
                            ]
                        })
                        .collect(),
                );
            }
        }
        ClientCmd::Email { name, address } => {
            let address = (address != "none").then_some(address);
            let client = fjord.set_client_email(&name, address.as_deref())?;
            match client.email {
                Some(email) => outln!("mail about the sites of {} goes to {email}", client.name),
                None => outln!("{} gets no mail", client.name),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
