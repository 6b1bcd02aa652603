//! Permissions and scoping on the state alone: who may see and do what.

use std::sync::Arc;

use model::{Actor, MigrateArgs, Role, SiteStatus, Target, TaskArgs, TaskKind, TaskStatus};
use store::SiteQuery;

use super::{ClientInput, LinkDelivery, UserInput};
use crate::ops::{PlatformInput, ServerInput, SiteEdit, SiteInput};
use crate::{Error, Fjord};

struct World {
    _dir: tempfile::TempDir,
    fjord: Arc<Fjord>,
}

fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let fjord = Arc::new(Fjord::open(dir.path()).unwrap());
    fjord
        .add_server(
            &ServerInput {
                name: "t".into(),
                nginx_binary: "/usr/sbin/nginx".into(),
                nginx_config: "/etc/nginx/nginx.conf".into(),
                nginx_prefix: None,
                include_dir: "/etc/nginx/conf.d".into(),
                listen: vec!["127.0.0.1:8080".into()],
                https_listen: Vec::new(),
                reload: "signal".into(),
                files_owner: None,
                db: Vec::new(),
                php: Vec::new(),
                web_group: None,
                monitor: true,
                nginx_start: None,
                nginx_unit: None,
                remote: None,
            },
            false,
        )
        .unwrap();
    for name in ["p", "q"] {
        fjord
            .add_platform(
                &PlatformInput {
                    name: name.into(),
                    server: "t".into(),
                    path: format!("/srv/fjord-unit-test-{name}"),
                    kind: "static".into(),
                    ..Default::default()
                },
                false,
            )
            .unwrap();
    }
    let op = fjord.acting(Actor::operator());
    for client in ["alpha", "beta"] {
        op.save_client(
            &ClientInput {
                name: client.into(),
                site_quota: Some(2),
                platforms: vec!["p".into()],
                ..Default::default()
            },
            false,
        )
        .unwrap();
    }
    for (site, client) in [("a.example", "alpha"), ("b.example", "beta")] {
        fjord
            .add_site(
                &SiteInput {
                    name: site.into(),
                    platform: "p".into(),
                    client: Some(client.into()),
                    ..Default::default()
                },
                false,
            )
            .unwrap();
        let id = fjord.site(site).unwrap().id;
        fjord
            .store()
            .set_site_status(id, SiteStatus::Installed)
            .unwrap();
    }
    for (user, role, client) in [
        ("ann", "client", Some("alpha")),
        ("bob", "client", Some("beta")),
        ("pam", "platform-manager", None),
        ("acc", "account-manager", None),
    ] {
        op.add_user(&UserInput {
            name: user.into(),
            email: None,
            role: role.into(),
            client: client.map(Into::into),
            password: Some(format!("{user}'s long password")),
        })
        .unwrap();
    }
    World { _dir: dir, fjord }
}

fn actor(w: &World, name: &str) -> Actor {
    w.fjord.store().user_by_name(name).unwrap().actor()
}

/// The secret of a login link shown to its asker.
fn shown_token(delivery: LinkDelivery) -> String {
    match delivery {
        LinkDelivery::Shown(url) => url.rsplit('/').next().unwrap().to_string(),
        other => panic!("the link was not shown: {other:?}"),
    }
}

fn queued_count(w: &World) -> usize {
    w.fjord.tasks(&store::TaskFilter::default()).unwrap().len()
}

#[test]
fn a_client_user_sees_and_touches_only_its_clients_sites() {
    let w = world();
    let ann = w.fjord.acting(actor(&w, "ann"));
    let page = ann
        .sites(&SiteQuery {
            limit: 50,
            ..Default::default()
        })
        .unwrap();
    let names: Vec<_> = page.sites.iter().map(|s| s.name.to_string()).collect();
    assert_eq!(names, ["a.example"]);
    assert_eq!(page.total, 1);

    let before = queued_count(&w);
    for result in [
        ann.site("b.example").map(|_| ()),
        ann.site_task("b.example", TaskKind::SiteVerify).map(|_| ()),
        ann.site_task("b.example", TaskKind::SiteBackup).map(|_| ()),
        ann.backups("b.example").map(|_| ()),
        ann.login_link("b.example").map(|_| ()),
        ann.restore_site("b.example", None).map(|_| ()),
        ann.migrate_site("b.example", "p", false).map(|_| ()),
    ] {
        match result {
            Err(Error::NotFound(what)) => assert!(what.what.contains("b.example"), "{what}"),
            other => panic!("client alpha reached beta's site: {other:?}"),
        }
    }
    assert_eq!(queued_count(&w), before, "nothing may be queued");

    // Its own site: the everyday tasks, none that takes it down. A task records who queued
    // it.
    let verify = ann.site_task("a.example", TaskKind::SiteVerify).unwrap();
    let verify = verify.task.unwrap();
    assert_eq!(verify.queued_by, "ann");
    assert_eq!(w.fjord.store().task(verify.id).unwrap().queued_by, "ann");
    assert!(matches!(
        ann.site_task("a.example", TaskKind::SiteDelete),
        Err(Error::Forbidden(_))
    ));

    // Another client's task, by guessing its id.
    let bobs = w
        .fjord
        .acting(actor(&w, "bob"))
        .site_task("b.example", TaskKind::SiteVerify)
        .unwrap()
        .task
        .unwrap();
    assert!(matches!(ann.task(bobs.id), Err(Error::NotFound(_))));
    assert!(matches!(ann.task_log(bobs.id, 0), Err(Error::NotFound(_))));
    assert!(matches!(ann.cancel_task(bobs.id), Err(Error::NotFound(_))));
    assert!(
        ann.tasks(&Default::default())
            .unwrap()
            .iter()
            .all(|t| t.client_id == actor(&w, "ann").client_id)
    );
}

#[test]
fn a_client_user_adds_sites_on_its_platforms_within_its_quota() {
    let w = world();
    let ann = w.fjord.acting(actor(&w, "ann"));
    let add = |name: &str, platform: &str, client: Option<&str>| {
        ann.add_site(&SiteInput {
            name: name.into(),
            platform: platform.into(),
            client: client.map(Into::into),
            ..Default::default()
        })
    };
    assert!(matches!(
        add("c.example", "q", None),
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        add("c.example", "p", Some("beta")),
        Err(Error::Forbidden(_))
    ));
    add("c.example", "p", None).unwrap();
    assert_eq!(
        w.fjord.site("c.example").unwrap().client_id,
        actor(&w, "ann").client_id
    );
    match add("d.example", "p", None) {
        Err(Error::Conflict(msg)) => {
            assert!(msg.contains("alpha") && msg.contains("quota"), "{msg}")
        }
        other => panic!("quota not enforced: {other:?}"),
    }
    let names: Vec<_> = ann
        .platforms()
        .unwrap()
        .iter()
        .map(|p| p.name.to_string())
        .collect();
    assert_eq!(names, ["p"]);
}

#[test]
fn roles_are_held_to_their_table() {
    let w = world();
    let acc = w.fjord.acting(actor(&w, "acc"));
    assert!(matches!(
        acc.site_task("a.example", TaskKind::SiteBackup),
        Err(Error::Forbidden(_))
    ));
    assert!(matches!(acc.servers(), Err(Error::Forbidden(_))));
    // An account manager makes client users, never a manager or administrator.
    let mut input = UserInput {
        name: "newbie".into(),
        email: None,
        role: "client".into(),
        client: Some("alpha".into()),
        password: None,
    };
    acc.add_user(&input).unwrap();
    input.name = "boss".into();
    input.role = "administrator".into();
    input.client = None;
    assert!(matches!(acc.add_user(&input), Err(Error::Forbidden(_))));
    assert!(matches!(
        acc.update_user("pam", &input, false),
        Err(Error::Forbidden(_))
    ));

    let pam = w.fjord.acting(actor(&w, "pam"));
    pam.site_task("b.example", TaskKind::SiteBackup).unwrap();
    assert!(matches!(pam.users(), Err(Error::Forbidden(_))));
    assert!(matches!(pam.add_user(&input), Err(Error::Forbidden(_))));
    let e = pam.clients().map(|_| ());
    assert!(e.is_ok(), "a platform manager sees clients: {e:?}");
    assert_eq!(
        Role::parse("platform-manager").unwrap(),
        Role::PlatformManager
    );
}

#[test]
fn logins_are_throttled_per_account_and_links_work_once() {
    let w = world();
    let f = &w.fjord;
    let session = f.login("ann", "ann's long password", "10.0.0.1").unwrap();
    assert_eq!(
        f.session(&session.token)
            .unwrap()
            .unwrap()
            .user
            .name
            .as_str(),
        "ann"
    );
    f.logout(&session.token).unwrap();
    assert!(f.session(&session.token).unwrap().is_none());

    for _ in 0..crate::auth::MAX_ACCOUNT_ADDRESS_FAILURES {
        assert!(matches!(
            f.login("ann", "not the password", "10.0.0.2"),
            Err(Error::Unauthenticated(_))
        ));
    }
    assert!(matches!(
        f.login("ann", "ann's long password", "10.0.0.2"),
        Err(Error::Throttled { .. })
    ));
    // Held from the address that failed only: its owner elsewhere signs in.
    f.login("ann", "ann's long password", "10.0.0.3").unwrap();
    // Another account from another address is not held up.
    f.login("bob", "bob's long password", "10.0.0.4").unwrap();
    // An unknown name fails like a wrong password.
    match f.login("nobody", "whatever it is", "10.0.0.4") {
        Err(Error::Unauthenticated(m)) => assert_eq!(m, "wrong user name or password"),
        other => panic!("{other:?}"),
    }

    let op = f.acting(Actor::operator());
    let link = shown_token(op.send_login_link("bob").unwrap());
    f.login_with_link(&link, "10.0.0.5").unwrap();
    assert!(matches!(
        f.login_with_link(&link, "10.0.0.5"),
        Err(Error::Unauthenticated(_))
    ));
}

#[test]
fn tokens_belong_to_their_owner_and_a_new_password_ends_sessions() {
    let w = world();
    let f = &w.fjord;
    let ann = f.acting(actor(&w, "ann"));
    let (token, secret) = ann.create_api_token("deploy script").unwrap();
    assert!(secret.starts_with("fjord_"));
    assert_eq!(f.token_user(&secret).unwrap().unwrap().name.as_str(), "ann");
    assert!(f.token_user("fjord_wrong").unwrap().is_none());
    let bob = f.acting(actor(&w, "bob"));
    assert!(matches!(
        bob.revoke_api_token(token.id),
        Err(Error::NotFound(_))
    ));
    ann.revoke_api_token(token.id).unwrap();
    assert!(f.token_user(&secret).unwrap().is_none());

    let session = f.login("ann", "ann's long password", "10.0.0.1").unwrap();
    assert!(matches!(
        ann.set_password("ann", Some("wrong current"), "a brand new password"),
        Err(Error::Unauthenticated(_))
    ));
    f.acting(Actor::operator())
        .set_password("ann", None, "a brand new password")
        .unwrap();
    assert!(f.session(&session.token).unwrap().is_none());
    f.login("ann", "a brand new password", "10.0.0.1").unwrap();
}

fn standard_server(name: &str) -> ServerInput {
    ServerInput {
        name: name.into(),
        nginx_binary: model::STANDARD_NGINX_BINARY.into(),
        nginx_config: model::STANDARD_NGINX_CONFIG.into(),
        nginx_prefix: None,
        include_dir: model::STANDARD_NGINX_INCLUDE_DIR.into(),
        listen: vec!["127.0.0.1:8081".into()],
        https_listen: Vec::new(),
        reload: "signal".into(),
        files_owner: None,
        db: vec!["mysql".into(), "postgresql".into()],
        php: vec!["8.2".into()],
        web_group: None,
        monitor: true,
        nginx_start: None,
        nginx_unit: None,
        remote: None,
    }
}

#[test]
fn nobody_but_an_administrator_holds_another_users_login_link_or_password() {
    let w = world();
    let acc = w.fjord.acting(actor(&w, "acc"));
    let ann_before = w.fjord.store().user_by_name("ann").unwrap();

    // A client user the account manager makes signs in with a link it never sees.
    let user = acc
        .add_user(&UserInput {
            name: "newbie".into(),
            email: Some("newbie@example.org".into()),
            role: "client".into(),
            client: Some("alpha".into()),
            password: None,
        })
        .unwrap();
    for name in ["newbie", "ann"] {
        match acc.send_login_link(name).unwrap() {
            // No mail is set up here: no link is made at all.
            LinkDelivery::Withheld(why) => {
                assert!(why.contains(name) && why.contains("administrator"), "{why}")
            }
            other => panic!("an account manager got {name}'s link: {other:?}"),
        }
    }
    assert!(matches!(
        acc.set_password("ann", None, "the account manager's choice"),
        Err(Error::Forbidden(_))
    ));
    assert!(
        w.fjord
            .login("ann", "the account manager's choice", "10.0.0.1")
            .is_err()
    );
    // Nor may it send ann's future links to an address of its choosing.
    match acc.update_user(
        "ann",
        &UserInput {
            name: "ann".into(),
            email: Some("acc@example.org".into()),
            role: "client".into(),
            client: Some("alpha".into()),
            password: None,
        },
        false,
    ) {
        Err(Error::Forbidden(msg)) => {
            assert!(msg.contains("email") && msg.contains("ann"), "{msg}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(w.fjord.store().user_by_name("ann").unwrap(), ann_before);
    // The rest of a client user is still the account manager's to change.
    acc.update_user(
        "newbie",
        &UserInput {
            name: "newbie".into(),
            email: Some("newbie@example.org".into()),
            role: "client".into(),
            client: Some("beta".into()),
            password: None,
        },
        false,
    )
    .unwrap();

    // An administrator is shown the link; a user its own.
    let op = w.fjord.acting(Actor::operator());
    let token = shown_token(op.send_login_link(user.name.as_str()).unwrap());
    w.fjord.login_with_link(&token, "10.0.0.1").unwrap();
    let ann = w.fjord.acting(actor(&w, "ann"));
    shown_token(ann.send_login_link("ann").unwrap());
    assert!(matches!(
        ann.send_login_link("bob"),
        Err(Error::NotFound(_))
    ));
    let pam = w.fjord.acting(actor(&w, "pam"));
    assert!(matches!(
        pam.send_login_link("ann"),
        Err(Error::Forbidden(_) | Error::NotFound(_))
    ));
}

/// A change to a server's input.
type Change = fn(&mut ServerInput);

#[test]
fn a_platform_manager_adds_servers_only_with_the_standard_programs() {
    let w = world();
    let pam = w.fjord.acting(actor(&w, "pam"));
    let servers = w.fjord.servers().unwrap().len();
    let odd: [(&str, Change); 9] = [
        ("/tmp/evil-nginx", |s| {
            s.nginx_binary = "/tmp/evil-nginx".into()
        }),
        ("/tmp/evil.conf", |s| {
            s.nginx_config = "/tmp/evil.conf".into()
        }),
        ("/tmp/prefix", |s| {
            s.nginx_prefix = Some("/tmp/prefix".into())
        }),
        ("/etc/cron.d", |s| s.include_dir = "/etc/cron.d".into()),
        ("/bin/sh", |s| s.reload = "/bin/sh /tmp/x".into()),
        ("root", |s| s.files_owner = Some("root".into())),
        ("shadow", |s| s.web_group = Some("shadow".into())),
        ("mysql", |s| {
            s.db = vec!["mysql:socket=/tmp/fake.sock".into()]
        }),
        ("8.2", |s| s.php = vec!["8.2:binary=/tmp/evil-fpm".into()]),
    ];
    for (value, change) in odd {
        let mut input = standard_server("pm-server");
        change(&mut input);
        match pam.add_server(&input) {
            Err(Error::Forbidden(msg)) => {
                assert!(
                    msg.contains(value) && msg.contains("administrator"),
                    "{msg}"
                )
            }
            other => panic!("a platform manager chose {value}: {other:?}"),
        }
    }
    assert_eq!(w.fjord.servers().unwrap().len(), servers, "no server added");
    pam.add_server(&standard_server("pm-server")).unwrap();
    let mut input = standard_server("admin-server");
    input.reload = "/usr/bin/systemctl reload nginx".into();
    w.fjord
        .acting(Actor::operator())
        .add_server(&input)
        .unwrap();
}

#[test]
fn only_those_who_manage_clients_make_one_by_naming_it() {
    let w = world();
    let pam = w.fjord.acting(actor(&w, "pam"));
    let clients = w.fjord.store().clients().unwrap().len();
    let input = |client: &str| SiteInput {
        name: format!("{client}-site.example"),
        platform: "p".into(),
        client: Some(client.into()),
        ..Default::default()
    };
    match pam.add_site(&input("gamma")) {
        Err(Error::Forbidden(msg)) => assert!(msg.contains("\"gamma\""), "{msg}"),
        other => panic!("a platform manager made client gamma: {other:?}"),
    }
    assert_eq!(w.fjord.store().clients().unwrap().len(), clients);
    assert!(w.fjord.site("gamma-site.example").is_err());
    pam.add_site(&input("alpha")).unwrap();
    w.fjord
        .acting(Actor::operator())
        .add_site(&input("delta"))
        .unwrap();
    assert_eq!(w.fjord.store().clients().unwrap().len(), clients + 1);
}

/// Queues a task as the operator would have, with its arguments.
fn operator_task(w: &World, site: &str, kind: TaskKind, args: TaskArgs) -> i64 {
    let id = w.fjord.site(site).unwrap().id;
    w.fjord
        .store()
        .enqueue(
            Target::Site(id),
            site,
            store::NewTask::with_args(kind, args),
        )
        .unwrap()
        .id
}

#[test]
fn cancel_and_retry_are_for_whoever_could_queue_the_task_afresh() {
    let w = world();
    let ann = w.fjord.acting(actor(&w, "ann"));
    let pam = w.fjord.acting(actor(&w, "pam"));
    let op = w.fjord.acting(Actor::operator());
    let status = |id| w.fjord.task(id).unwrap().status;

    // The operator's delete of ann's site: she may not cancel it.
    let delete = operator_task(
        &w,
        "a.example",
        TaskKind::SiteDelete,
        TaskArgs::Site { force: true },
    );
    assert!(matches!(ann.cancel_task(delete), Err(Error::Forbidden(_))));
    assert_eq!(status(delete), TaskStatus::Queued);

    let p = w.fjord.platform("p").unwrap();
    let migrate = MigrateArgs {
        platform: p.id,
        name: w.fjord.site("a.example").unwrap().name,
        db_server: None,
        db_name: None,
        force: true,
    };
    let forced = operator_task(
        &w,
        "a.example",
        TaskKind::SiteMigrate,
        TaskArgs::Migrate(migrate),
    );
    let from_file = operator_task(
        &w,
        "a.example",
        TaskKind::SiteRestore,
        TaskArgs::Restore {
            backup: "/root/anything.tar.zst".into(),
            own: false,
            from_target: None,
        },
    );
    let scheduled = operator_task(
        &w,
        "a.example",
        TaskKind::SiteBackup,
        TaskArgs::Backup { scheduled: true },
    );
    for id in [forced, from_file, scheduled] {
        assert!(
            matches!(ann.cancel_task(id), Err(Error::Forbidden(_))),
            "cancel {id}"
        );
        op.cancel_task(id).unwrap();
        match ann.retry_task(id) {
            Err(Error::Forbidden(msg)) => assert!(msg.contains("ann"), "{msg}"),
            other => panic!("ann re-ran the operator's task {id}: {other:?}"),
        }
        assert_eq!(status(id), TaskStatus::Cancelled);
    }
    // A file restored by root is the administrator's to name, even on a retry.
    assert!(matches!(
        pam.retry_task(from_file),
        Err(Error::Forbidden(_))
    ));
    pam.retry_task(forced).unwrap();
    op.retry_task(from_file).unwrap();

    // What she could have queued herself, she may cancel and retry.
    let backup = operator_task(
        &w,
        "a.example",
        TaskKind::SiteBackup,
        TaskArgs::Backup { scheduled: false },
    );
    ann.cancel_task(backup).unwrap();
    ann.retry_task(backup).unwrap();
    assert_eq!(status(backup), TaskStatus::Queued);
}

#[test]
fn another_clients_backups_and_names_answer_as_if_they_did_not_exist() {
    let w = world();
    let f = &w.fjord;
    // A backup of beta's site, recorded as its task would.
    let task = operator_task(
        &w,
        "b.example",
        TaskKind::SiteBackup,
        TaskArgs::Backup { scheduled: false },
    );
    while let Some(claimed) = f.store().claim_next("unit").unwrap() {
        let effect = if claimed.task.id == task {
            store::TaskEffect::AddBackup(store::NewBackup {
                site_id: f.site("b.example").unwrap().id,
                site_name: "b.example".into(),
                path: "/nonexistent/b.example.tar.zst".into(),
                size: 1,
                copies: Vec::new(),
            })
        } else {
            store::TaskEffect::None
        };
        f.store()
            .finish_task(
                claimed.task.id,
                &claimed.claim,
                TaskStatus::Success,
                None,
                &effect,
            )
            .unwrap();
    }
    let theirs = f
        .store()
        .site_backups(f.site("b.example").unwrap().id)
        .unwrap()[0]
        .id;
    let ann = f.acting(actor(&w, "ann"));
    let answer = |id| match ann.restore_site("a.example", Some(id)) {
        Err(e @ Error::NotFound(_)) => e.to_string().replace(&id.to_string(), "ID"),
        other => panic!("backup {id}: {other:?}"),
    };
    assert_eq!(answer(theirs), answer(theirs + 1000));

    // beta's name and alias: taken, without saying by whom.
    let op = f.acting(Actor::operator());
    op.edit_site(
        "b.example",
        &SiteEdit {
            add_aliases: vec!["shop.example".into()],
            ..Default::default()
        },
    )
    .unwrap();
    let refusals = [
        ann.add_site(&SiteInput {
            name: "shop.example".into(),
            platform: "p".into(),
            ..Default::default()
        }),
        ann.edit_site(
            "a.example",
            &SiteEdit {
                add_aliases: vec!["shop.example".into()],
                ..Default::default()
            },
        ),
        ann.clone_site("a.example", "shop.example", "p"),
        ann.edit_site(
            "a.example",
            &SiteEdit {
                add_aliases: vec!["b.example".into()],
                ..Default::default()
            },
        ),
    ];
    for refusal in refusals {
        match refusal {
            Err(Error::Conflict(msg)) => {
                assert!(msg.contains("taken"), "{msg}");
                assert!(
                    !msg.contains("b.example") || msg.contains("host name b.example"),
                    "{msg}"
                );
                assert!(!msg.contains("site b.example"), "{msg}");
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn a_mistyped_name_is_answered_with_the_closest_names_the_asker_may_see_only() {
    let w = world();
    let ann = w.fjord.acting(actor(&w, "ann"));
    let message = |result: crate::Result<()>| match result {
        Err(e @ Error::NotFound(_)) => e.to_string(),
        other => panic!("not a not-found: {other:?}"),
    };
    let site = |who: &super::Acting, name: &str| message(who.site(name).map(|_| ()));
    assert_eq!(
        site(&ann, "a.exmaple"),
        r#"site "a.exmaple" not found; did you mean a.example?"#
    );
    // beta's site is never offered to alpha's user, however close the typo, and beta's name
    // itself answers as a name nobody has.
    assert!(!site(&ann, "b.exmaple").contains("b.example"));
    assert_eq!(
        site(&ann, "b.example").replace("b.example", "NAME"),
        site(&ann, "c.example").replace("c.example", "NAME")
    );
    // Through a task's door too.
    let verify = ann.site_task("b.exampel", TaskKind::SiteVerify).map(|_| ());
    assert!(!message(verify).contains("b.example"));
    // Platforms: only those alpha may use.
    let platform = |who: &super::Acting, name: &str| message(who.platform(name).map(|_| ()));
    assert_eq!(platform(&ann, "qq"), r#"platform "qq" not found"#);
    assert_eq!(
        platform(&ann, "q").replace(r#""q""#, "NAME"),
        platform(&ann, "r").replace(r#""r""#, "NAME")
    );

    // An operator sees everything.
    let op = w.fjord.acting(Actor::operator());
    assert!(site(&op, "b.exmaple").contains("did you mean b.example"));
    assert_eq!(
        platform(&op, "qq"),
        r#"platform "qq" not found; did you mean q?"#
    );
    assert_eq!(
        message(op.server("tt").map(|_| ())),
        r#"server "tt" not found; did you mean t?"#
    );
    // The command line, as root, sees everything as well.
    let cli = w
        .fjord
        .with_near_names(w.fjord.site("b.exmaple").unwrap_err());
    assert_eq!(
        cli.to_string(),
        r#"site "b.exmaple" not found; did you mean b.example or a.example?"#
    );
}
