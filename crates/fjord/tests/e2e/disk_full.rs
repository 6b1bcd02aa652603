//! Disk full, for real: the data dir and a platform on a small tmpfs, filled and emptied
//! while a dispatcher runs a stream of tasks. Afterwards no task is `queued` or
//! `processing` under the live dispatcher, every installed site serves, and nothing is left
//! behind (no scratch dir, no set-aside tree).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{FJORD, PrivateNginx, world_readable_tempdir};

/// A tmpfs mounted for a test (as root), unmounted when dropped.
pub(crate) struct Tmpfs(pub(crate) PathBuf);

impl Tmpfs {
    pub(crate) fn mount(at: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(at).unwrap();
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=755"),
                "tmpfs",
            ])
            .arg(at)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "this test mounts a tmpfs (as root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs(at.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

struct Fjord {
    data: PathBuf,
}

impl Fjord {
    fn run(&self, args: &[&str]) -> Output {
        Command::new(FJORD)
            .args(args)
            .env("FJORD_DATA_DIR", &self.data)
            .env_remove("FJORD_FAULTS")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    #[track_caller]
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut args = args.to_vec();
        args.push("--json");
        serde_json::from_str(&self.ok(&args)).unwrap()
    }
}

/// Fills the file system of `dir` until it is full; the filler file is returned.
fn fill(dir: &Path) -> PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).unwrap();
    let chunk = vec![0u8; 1 << 16];
    while file.write_all(&chunk).is_ok() {}
    let _ = file.sync_all();
    path
}

#[test]
fn a_disk_that_fills_and_empties_loses_no_task_and_no_site() {
    let scratch = world_readable_tempdir();
    let mount = Tmpfs::mount(&scratch.path().join("small"), "24m");
    let nginx = PrivateNginx::start();
    let fjord = Fjord {
        data: mount.0.join("data"),
    };
    let platform = mount.0.join("web");
    let args = nginx.server_add_args("t", &["--db", "sqlite"]);
    fjord.ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    fjord.ok(&[
        "platform",
        "add",
        "web",
        "--server",
        "t",
        "--path",
        platform.to_str().unwrap(),
    ]);
    let sites: Vec<String> = (0..4).map(|i| format!("full{i}.example")).collect();
    for site in &sites {
        fjord.ok(&["site", "add", site, "--platform", "web", "--db", "sqlite"]);
    }
    fjord.ok(&["dispatch", "--until-idle"]);
    for site in &sites {
        assert_eq!(fjord.json(&["site", "show", site])["status"], "installed");
    }
    // The disk guard off: this is what tasks meet when the disk does fill under them (the
    // guard only stops new claims; `disk_guard` tests it).
    let mut dispatcher = Command::new(FJORD)
        .args([
            "dispatch",
            "--disk-stop-percent",
            "100",
            "--disk-resume-percent",
            "99",
        ])
        .env("FJORD_DATA_DIR", &fjord.data)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    // A stream of tasks while the disk fills and empties, three times over.
    for round in 0..3 {
        for site in &sites {
            for task in [
                &["site", "backup", site.as_str()][..],
                &["site", "verify", site],
            ] {
                // Queueing itself may be refused while the disk is full: that is an answer.
                let _ = fjord.run(task);
            }
        }
        let _ = fjord.run(&[
            "site",
            "add",
            &format!("extra{round}.example"),
            "--platform",
            "web",
        ]);
        // The disk fills while those tasks run.
        let filler = fill(&mount.0);
        std::thread::sleep(Duration::from_millis(1500));
        for site in &sites {
            let _ = fjord.run(&["site", "backup", site]);
        }
        std::fs::remove_file(&filler).unwrap();
        std::thread::sleep(Duration::from_millis(500));
    }

    // The dispatcher settles everything once there is room again.
    let deadline = Instant::now() + Duration::from_secs(120);
    let pending = |fjord: &Fjord| -> Vec<serde_json::Value> {
        fjord
            .json(&["task", "list", "--limit", "1000"])
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| ["queued", "processing"].contains(&t["status"].as_str().unwrap()))
            .cloned()
            .collect()
    };
    loop {
        let left = pending(&fjord);
        if left.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "tasks never finished: {left:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        dispatcher.try_wait().unwrap().is_none(),
        "the dispatcher died"
    );
    let _ = dispatcher.kill();
    let _ = dispatcher.wait();

    let tasks = fjord.json(&["task", "list", "--limit", "1000"]);
    let failed = tasks
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["status"] == "failed")
        .count();
    let no_space = tasks
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| {
            t["error"]
                .as_str()
                .is_some_and(|e| e.contains("no space left on"))
        })
        .count();
    eprintln!(
        "disk full: {} tasks, {failed} failed, {no_space} of them saying \"no space left on\"",
        tasks.as_array().unwrap().len()
    );
    assert!(no_space > 0, "no task ever met the full disk: {tasks}");
    for site in fjord.json(&["site", "list"]).as_array().unwrap() {
        let name = site["name"].as_str().unwrap();
        if site["status"] == "installed" {
            assert_eq!(nginx.get(name, "/").0, 200, "{name} does not serve: {site}");
        }
    }
    for site in &sites {
        assert_eq!(
            nginx.get(site, "/").0,
            200,
            "{site} was installed before the disk filled"
        );
    }
    let journal: Vec<_> = std::fs::read_dir(fjord.data.join("journal"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(journal.is_empty(), "scratch dirs left: {journal:?}");
    for dir in [platform.join("sites"), platform.join("private")] {
        let trash: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains("fjord-trash"))
            .collect();
        assert!(
            trash.is_empty(),
            "set-aside trees left in {}: {trash:?}",
            dir.display()
        );
    }
}
