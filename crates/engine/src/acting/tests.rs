//! Permissions and scoping on the state alone: who may see and do what.

use std::sync::Arc;

use model::{Actor, Role, SiteStatus, TaskKind};
use store::SiteQuery;

use super::{ClientInput, UserInput};
use crate::ops::{PlatformInput, ServerInput, SiteInput};
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
                listen: "127.0.0.1:8080".into(),
                reload: "signal".into(),
                files_owner: None,
                db: Vec::new(),
                php: Vec::new(),
                web_group: None,
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
            Err(Error::NotFound(what)) => assert!(what.contains("b.example"), "{what}"),
            other => panic!("client alpha reached beta's site: {other:?}"),
        }
    }
    assert_eq!(queued_count(&w), before, "nothing may be queued");

    // Its own site: the everyday tasks, none that takes it down.
    ann.site_task("a.example", TaskKind::SiteVerify).unwrap();
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
    let link = op.user_login_link("bob").unwrap();
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
