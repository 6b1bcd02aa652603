//! The server task: fjord's server-level nginx config, hooked into the server's nginx.

use super::*;

/// Where fjord's hook into the server's nginx is: a file of the include dir nginx's main
/// config reads.
pub fn nginx_hook(server: &Server) -> PathBuf {
    let HttpService::Nginx(nginx) = &server.http;
    nginx
        .include_dir
        .join(&format!("fjord-{}.conf", server.name))
}

/// Writes fjord's server-level nginx config and hooks it into the server's nginx.
pub(super) fn server_verify(
    env: &ScriptEnv,
    server: &Server,
    x: &mut dyn Steps,
) -> Result<TaskEffect> {
    let HttpService::Nginx(nginx) = &server.http;
    let dir = env.nginx_dir(server);
    let hook = nginx_hook(server);
    // A hook nginx never loads would pass `nginx -t` and then never be served: the commit
    // would wait for a generation that never comes. Checked before any step, so a refusal
    // leaves nothing behind.
    let missing = x.reads().missing_programs(&server_programs(env, server))?;
    if !missing.is_empty() {
        return Err(crate::Error::Refused(format!(
            "server {} lacks what its services need: {} (install them, or give the paths the \
             server has: --nginx-bin, --php VERSION:fpm=PATH)",
            server.name,
            missing
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    if x.reads()
        .nginx_would_include(&env.nginx_ctl(server), &hook)?
        == Some(false)
    {
        return Err(crate::Error::Refused(format!(
            "nginx's main config {config} does not include {dir}, so fjord's hook {hook} would \
             never be loaded: add `include {dir}/*.conf;` to the http block of {config}, or \
             give the server the include dir its config has (--nginx-include-dir)",
            config = nginx.config,
            dir = nginx.include_dir,
            hook = hook.display(),
        )));
    }
    x.make_dir(dir.parent().expect("nginx dir has a parent"))?;
    x.make_dir(&dir)?;
    x.make_dir(&dir.join("vhost.d"))?;
    x.make_dir(&dir.join("disabled"))?;
    // ACME's challenge answers: root's, served by every vhost, never a site's docroot.
    let acme = render::acme_root(&dir);
    x.make_dir(&acme)?;
    x.make_dir(&acme.join(".well-known"))?;
    x.make_dir(&render::acme_challenge_dir(&dir))?;
    x.write_file(
        &dir.join("disabled/fjord-disabled.html"),
        render::disabled_page().as_bytes(),
        0o644,
    )?;
    let server_conf = dir.join("server.conf");
    let mut changes = vec![
        (
            server_conf.clone(),
            Some(render::nginx_server_conf(nginx, &dir).into_bytes()),
        ),
        (hook, Some(render::nginx_hook(&server_conf).into_bytes())),
    ];
    // The generation file is rewritten by every reload; it only has to exist for the test.
    let generation = dir.join("generation.conf");
    if !x.reads().exists(&generation)? {
        changes.push((generation, Some(host_generation_placeholder())));
    }
    let nginx_ctl = env.nginx_ctl(server);
    x.nginx(&nginx_ctl, changes)?;
    if let Some(report) = x.reads().nginx_open_files(&nginx_ctl)? {
        x.log(&report);
    }
    for ctl in server.db.iter().filter_map(db_ctl) {
        x.check_db_admin(&ctl)?;
    }
    // Each php-fpm gets fjord's probe pool, through which a reload is seen to be live, and
    // fjord's global settings (a reload lets running requests finish); the sockets of the
    // sites' pools live beside the probe's.
    for service in &server.php {
        let ctl = env.php_ctl(server, service);
        x.make_dir(&ctl.config_dir)?;
        x.php_fpm(
            &ctl,
            vec![(
                ctl.probe_pool_file(),
                Some(ctl.probe_pool_as_it_is().into_bytes()),
            )],
        )?;
    }
    Ok(TaskEffect::None)
}

/// The programs a server's services are run with: nginx, each php-fpm and PHP's command
/// line, and each database engine's clients (fjord administers databases through them).
fn server_programs(env: &ScriptEnv, server: &Server) -> Vec<PathBuf> {
    let HttpService::Nginx(nginx) = &server.http;
    let mut programs = vec![nginx.binary.as_path().to_path_buf()];
    for service in &server.php {
        programs.push(env.php_ctl(server, service).binary);
    }
    for ctl in server.db.iter().filter_map(db_ctl) {
        programs.extend(ctl.clients().iter().map(PathBuf::from));
    }
    programs
}

pub(super) fn host_generation_placeholder() -> Vec<u8> {
    b"# written by fjord before each reload\n".to_vec()
}
