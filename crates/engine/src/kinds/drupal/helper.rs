//! How fjord drives a Drupal site: through the platform's own drush when composer put one in
//! it, or else through PHP of fjord's own, handed to the PHP command line on standard input
//! and run as the site's user, that calls Drupal's install, update, cron, cache and
//! one-time-login functions. Secrets (the admin password) go through the environment; drush,
//! which prints the password it is not given, has its lines about passwords left out of the
//! log.

use super::*;

/// Where a site's armed login link waits (its `settings.php` honours it once).
pub(super) fn login_file(app: &SiteApp) -> PathBuf {
    app.private_dir.join("login-link.json")
}

/// A run of the platform's drush for the site.
fn drush(app: &SiteApp, layout: &Layout, describe: &str, command: &[&str]) -> Option<PhpRun> {
    let drush = layout.drush.as_ref()?;
    let docroot = layout.docroot(app.platform.path.as_path());
    let mut run = app.php_run(
        describe,
        String::new(),
        vec![("HOME".to_string(), app.private_dir.display().to_string())],
    )?;
    run.args = vec![
        drush.display().to_string(),
        format!("--root={}", docroot.display()),
        format!("--uri={}", app.url()),
        "--yes".to_string(),
        "--no-interaction".to_string(),
    ];
    run.args.extend(command.iter().map(|s| s.to_string()));
    // drush runs its own work in processes of its own (updatedb's batches, site:install's
    // steps): the platform's tool gets the functions that start them. It runs as the site's
    // user under the process limits of every run (`host::PhpRun`), and whatever it leaves
    // running ends with the site's user.
    // drush's preflight refuses to run under `open_basedir` ("restricted PHP modes"), as its
    // documentation says for the command line: drush runs without it, held to the site's
    // files by the site's Unix user (other sites' files and private dirs are closed to it),
    // with the rest of the pool's limits (memory, FFI off, mail's parameters). Web requests
    // keep `open_basedir` in the pool.
    run.ini
        .retain(|(key, _)| key != "disable_functions" && key != "open_basedir");
    Some(run)
}

/// PHP that sets up the request Drupal expects, in the docroot, for the site.
fn prelude(app: &SiteApp, layout: &Layout) -> String {
    let docroot = layout.docroot(app.platform.path.as_path());
    format!(
        "<?php
chdir({docroot});
$_SERVER['HTTP_HOST'] = {host};
$_SERVER['SERVER_NAME'] = {host};
$_SERVER['SERVER_PORT'] = 80;
$_SERVER['REMOTE_ADDR'] = '127.0.0.1';
$_SERVER['REQUEST_METHOD'] = 'GET';
$_SERVER['REQUEST_URI'] = '/';
$_SERVER['SCRIPT_NAME'] = '/index.php';
$_SERVER['SCRIPT_FILENAME'] = getcwd() . '/index.php';
$_SERVER['SERVER_SOFTWARE'] = 'fjord';
function fjord_fail($message) {{
  fwrite(STDERR, strip_tags((string) $message) . \"\\n\");
  exit(1);
}}
// Drupal's error handlers print a page and exit 0: a run counts only if it reached its end.
$GLOBALS['fjord_done'] = FALSE;
register_shutdown_function(function () {{
  if (!$GLOBALS['fjord_done']) {{
    fwrite(STDERR, \"fjord: the run stopped before its end\\n\");
    exit(1);
  }}
}});
",
        docroot = php_quote(&docroot.display().to_string()),
        host = php_quote(app.site.name.as_str()),
    )
}

/// PHP that boots the site's Drupal fully (7: `drupal_bootstrap`; 8+: the kernel).
fn booted(app: &SiteApp, layout: &Layout, maintenance: Option<&str>) -> String {
    let mut code = prelude(app, layout);
    if let Some(mode) = maintenance {
        code.push_str(&format!(
            "define('MAINTENANCE_MODE', {});\n",
            php_quote(mode)
        ));
    }
    if layout.major == 7 {
        code.push_str(
            "define('DRUPAL_ROOT', getcwd());
require_once DRUPAL_ROOT . '/includes/bootstrap.inc';
drupal_bootstrap(DRUPAL_BOOTSTRAP_FULL);
",
        );
    } else {
        code.push_str(&format!(
            "$autoloader = require 'autoload.php';
$request = \\Symfony\\Component\\HttpFoundation\\Request::create({url}, 'GET', [], [], [], ['SCRIPT_NAME' => '/index.php', 'SCRIPT_FILENAME' => getcwd() . '/index.php']);
$kernel = \\Drupal\\Core\\DrupalKernel::createFromRequest($request, $autoloader, 'prod');
$kernel->boot();
$kernel->preHandle($request);
",
            url = php_quote(&format!("{}/", app.url())),
        ));
    }
    code
}

/// The code, marked as having reached its end (see the prelude's shutdown check).
fn to_the_end(mut code: String) -> String {
    code.push_str("$GLOBALS['fjord_done'] = TRUE;\n");
    code
}

/// A run of fjord's helper code (marked to reach its end) for the site.
fn helper(
    app: &SiteApp,
    describe: &str,
    code: String,
    env: Vec<(String, String)>,
) -> Option<PhpRun> {
    app.php_run(describe, to_the_end(code), env)
}

/// Drupal's installer, non-interactive: the profile, English, the site's name and mail, its
/// administrator with a generated password (never logged; the login link is the way in).
pub(super) fn install(app: &SiteApp, layout: &Layout, input: &InstallInput) -> Result<PhpRun> {
    let title = input
        .title
        .clone()
        .unwrap_or_else(|| app.site.name.to_unicode());
    let user = input.admin_user.clone().unwrap_or_else(|| "admin".into());
    let email = input
        .admin_email
        .clone()
        .unwrap_or_else(|| format!("admin@{}", app.site.name.as_str()));
    let profile = input.profile.clone().unwrap_or_else(|| "standard".into());
    if layout.drush.is_some() {
        let args = [
            "site:install".to_string(),
            profile,
            format!("--site-name={title}"),
            format!("--site-mail={email}"),
            format!("--account-name={user}"),
            format!("--account-mail={email}"),
            "--locale=en".to_string(),
            format!("--sites-subdir={}", app.site.name.as_str()),
        ];
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut run = drush(app, layout, "drush site:install", &args)
            .ok_or_else(|| crate::Error::Refused("a Drupal site needs PHP".into()))?;
        run.hide_lines_with = Some("password".into());
        return Ok(run);
    }
    let env = vec![
        ("FJORD_TITLE".to_string(), title),
        ("FJORD_ADMIN_USER".to_string(), user),
        ("FJORD_ADMIN_EMAIL".to_string(), email),
        ("FJORD_PROFILE".to_string(), profile),
        ("FJORD_ADMIN_PASSWORD".to_string(), host::random_secret(12)?),
    ];
    let mut code = prelude(app, layout);
    if layout.major == 7 {
        code.push_str(
            "define('DRUPAL_ROOT', getcwd());
define('MAINTENANCE_MODE', 'install');
require_once DRUPAL_ROOT . '/includes/install.core.inc';
$pass = getenv('FJORD_ADMIN_PASSWORD');
install_drupal(array(
  'interactive' => FALSE,
  'parameters' => array('profile' => getenv('FJORD_PROFILE'), 'locale' => 'en'),
  'forms' => array(
    'install_configure_form' => array(
      'site_name' => getenv('FJORD_TITLE'),
      'site_mail' => getenv('FJORD_ADMIN_EMAIL'),
      'account' => array(
        'name' => getenv('FJORD_ADMIN_USER'),
        'mail' => getenv('FJORD_ADMIN_EMAIL'),
        'pass' => array('pass1' => $pass, 'pass2' => $pass),
      ),
      // Unchecked boxes are NULL in a programmatic submission.
      'update_status_module' => array(1 => NULL, 2 => NULL),
      'clean_url' => TRUE,
      'site_default_country' => '',
      'date_default_timezone' => 'UTC',
    ),
  ),
));
echo 'Drupal ', VERSION, ' installed with profile ', getenv('FJORD_PROFILE'), '; admin user ', getenv('FJORD_ADMIN_USER'), \"\\n\";
",
        );
    } else {
        code.push_str(
            "$class_loader = require 'autoload.php';
require_once 'core/includes/install.core.inc';
$pass = getenv('FJORD_ADMIN_PASSWORD');
install_drupal($class_loader, [
  'interactive' => FALSE,
  'parameters' => ['profile' => getenv('FJORD_PROFILE'), 'langcode' => 'en'],
  'forms' => [
    'install_configure_form' => [
      'site_name' => getenv('FJORD_TITLE'),
      'site_mail' => getenv('FJORD_ADMIN_EMAIL'),
      'account' => [
        'name' => getenv('FJORD_ADMIN_USER'),
        'mail' => getenv('FJORD_ADMIN_EMAIL'),
        'pass' => ['pass1' => $pass, 'pass2' => $pass],
      ],
      'enable_update_status_module' => NULL,
      'enable_update_status_emails' => NULL,
      'date_default_timezone' => 'UTC',
    ],
  ],
]);
echo 'Drupal ', \\Drupal::VERSION, ' installed with profile ', getenv('FJORD_PROFILE'), '; admin user ', getenv('FJORD_ADMIN_USER'), \"\\n\";
",
        );
    }
    helper(app, "Drupal's installer (install_drupal)", code, env)
        .ok_or_else(|| crate::Error::Refused("a Drupal site needs PHP".into()))
}

/// Drupal 7's pending database updates, in the order their dependencies ask, each run to its
/// end (multi-pass updates loop on `#finished`); the first that fails stops the run.
const SEVEN_UPDATES: &str = "require_once DRUPAL_ROOT . '/includes/install.inc';
require_once DRUPAL_ROOT . '/includes/update.inc';
drupal_load_updates();
$start = array();
foreach (update_get_update_list() as $module => $info) {
  if (isset($info['start'])) {
    $start[$module] = $info['start'];
  }
}
$ran = 0;
foreach (update_resolve_dependencies($start) as $function => $update) {
  if (empty($update['allowed'])) {
    fjord_fail(\"update $function cannot run: its module's code is missing or its dependencies are not met\");
  }
  $context = array('sandbox' => array(), 'results' => array());
  do {
    $context['finished'] = 1;
    update_do_one($update['module'], $update['number'], array(), $context);
    if (!empty($context['results']['#abort'])) {
      $result = $context['results'][$update['module']][$update['number']];
      fjord_fail(\"update $function failed: \" . (isset($result['#abort']['query']) ? $result['#abort']['query'] : 'aborted'));
    }
  } while ($context['finished'] < 1);
  echo \"ran $function\\n\";
  $ran++;
}
drupal_flush_all_caches();
echo \"$ran database update(s) run\\n\";
";

/// Drupal 8+'s: `hook_update_N`, then `hook_post_update_NAME`.
const MODERN_UPDATES: &str = "require_once 'core/includes/install.inc';
require_once 'core/includes/update.inc';
drupal_load_updates();
$start = [];
foreach (update_get_update_list() as $module => $info) {
  if (!empty($info['pending'])) {
    $start[$module] = $info['start'];
  }
}
$ran = 0;
foreach (update_resolve_dependencies($start) as $function => $update) {
  if (empty($update['allowed'])) {
    fjord_fail(\"update $function cannot run: its module's code is missing or its dependencies are not met\");
  }
  $context = ['sandbox' => [], 'results' => []];
  do {
    $context['finished'] = 1;
    update_do_one($update['module'], $update['number'], [], $context);
    if (!empty($context['results']['#abort'])) {
      fjord_fail(\"update $function failed\");
    }
  } while ($context['finished'] < 1);
  echo \"ran $function\\n\";
  $ran++;
}
foreach (\\Drupal::service('update.post_update_registry')->getPendingUpdateFunctions() as $function) {
  $context = ['sandbox' => [], 'results' => []];
  do {
    $context['finished'] = 1;
    update_invoke_post_update($function, $context);
    if (!empty($context['results']['#abort'])) {
      fjord_fail(\"post-update $function failed\");
    }
  } while ($context['finished'] < 1);
  echo \"ran $function\\n\";
  $ran++;
}
drupal_flush_all_caches();
echo \"$ran database update(s) run\\n\";
";

/// The site's pending database updates (after a move onto other code).
pub(super) fn update(app: &SiteApp, layout: &Layout) -> Option<PhpRun> {
    if layout.drush.is_some() {
        return drush(app, layout, "drush updatedb", &["updatedb"]);
    }
    let mut code = booted(app, layout, Some("update"));
    code.push_str(if layout.major == 7 {
        SEVEN_UPDATES
    } else {
        MODERN_UPDATES
    });
    helper(
        app,
        "Drupal's database updates (update_do_one)",
        code,
        Vec::new(),
    )
}

pub(super) fn cron(app: &SiteApp, layout: &Layout) -> Option<PhpRun> {
    if layout.drush.is_some() {
        return drush(app, layout, "drush cron", &["cron"]);
    }
    let mut code = booted(app, layout, None);
    code.push_str(if layout.major == 7 {
        "if (!drupal_cron_run()) {\n  fjord_fail('cron did not run (another run holds its lock)');\n}\necho \"cron ran\\n\";\n"
    } else {
        "if (!\\Drupal::service('cron')->run()) {\n  fjord_fail('cron did not run (another run holds its lock)');\n}\necho \"cron ran\\n\";\n"
    });
    helper(app, "Drupal's cron", code, Vec::new())
}

pub(super) fn cache_clear(app: &SiteApp, layout: &Layout) -> Option<PhpRun> {
    if layout.drush.is_some() {
        let command: &[&str] = if layout.major == 7 {
            &["cache-clear", "all"]
        } else {
            &["cache:rebuild"]
        };
        return drush(app, layout, "drush cache rebuild", command);
    }
    let mut code = booted(app, layout, None);
    code.push_str("drupal_flush_all_caches();\necho \"caches cleared\\n\";\n");
    helper(
        app,
        "Drupal's cache clear (drupal_flush_all_caches)",
        code,
        Vec::new(),
    )
}

/// PHP that arms a login link: Drupal's own one-time login URL for user 1 (used once, and
/// only by a request that holds the token whose hash is stored beside it, until it expires)
/// is written to the site's private dir, which only the site's user reads. It is never
/// printed: a task log never holds a working link.
pub(super) fn arm_login_link(app: &SiteApp, layout: &Layout, hash: &str, expires: i64) -> String {
    let mut code = booted(app, layout, None);
    let load = if layout.major == 7 {
        "user_load(1)"
    } else {
        "\\Drupal\\user\\Entity\\User::load(1)"
    };
    code.push_str(&format!(
        "$account = {load};
if (!$account) {{
  fjord_fail('the site has no administrator (user 1)');
}}
$url = user_pass_reset_url($account) . '/login';
$path = parse_url($url, PHP_URL_PATH);
$query = parse_url($url, PHP_URL_QUERY);
$armed = json_encode(array('hash' => {hash}, 'expires' => {expires}, 'path' => $path . ($query ? '?' . $query : '')));
$file = {file};
$tmp = $file . '.' . getmypid();
if (file_put_contents($tmp, $armed) === FALSE || !chmod($tmp, 0600) || !rename($tmp, $file)) {{
  fjord_fail(\"could not write $file\");
}}
echo \"login link armed for user 1\\n\";
",
        hash = php_quote(hash),
        file = php_quote(&login_file(app).display().to_string()),
    ));
    to_the_end(code)
}
