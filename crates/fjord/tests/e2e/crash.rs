//! A dispatcher killed with SIGKILL in the middle of a task: the next dispatcher rolls the
//! task back, marks it failed, and the queue runs on.

use std::time::Duration;

use crate::harness::{Env, assert_same_state, signal};

fn kill_when_paused(env: &mut Env, faults: &str, queue: &[&str]) -> i64 {
    let pid = env.start_dispatcher(&[faults]);
    let id = env.queue(queue);
    env.wait_for_log(id, "fault: paused");
    signal(pid, "KILL");
    // The task is mid-change and still marked processing: a dead process cannot say more.
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(env.task(id)["status"], "processing");
    id
}

#[test]
fn killed_dispatcher_tasks_roll_back_and_the_queue_runs_on() {
    let mut env = Env::new();
    env.ok(&["site", "add", "keep.example", "--platform", "p1"]);
    env.dispatch_until_idle(&[]);
    std::fs::write(
        env.docroot("p1", "keep.example").join("index.html"),
        "precious data\n",
    )
    .unwrap();
    env.ok(&["site", "disable", "keep.example"]);
    env.dispatch_until_idle(&[]);
    let hosts = ["keep.example", "crash.example"];

    // Killed in the middle of an install (after its directory and first file were made).
    let before = env.host_state(&hosts);
    let install = kill_when_paused(
        &mut env,
        "pause-after:site-install:3",
        &["site", "add", "crash.example", "--platform", "p1"],
    );
    env.start_dispatcher(&[]);
    let task = env.wait_task(install, Duration::from_secs(60));
    assert_eq!(task["status"], "failed");
    assert_eq!(task["error"], "interrupted; rolled back");
    assert_same_state(
        &before,
        &env.host_state(&hosts),
        "install killed after step 3",
    );
    env.kill_dispatchers();

    // Killed in the middle of a delete, after the site's files were set aside: they are
    // put back, with their content.
    let before = env.host_state(&hosts);
    let delete = kill_when_paused(
        &mut env,
        "pause-after:site-delete:3",
        &["site", "delete", "keep.example"],
    );
    assert!(
        !env.docroot("p1", "keep.example").exists(),
        "the files were set aside when it died"
    );
    env.start_dispatcher(&[]);
    let task = env.wait_task(delete, Duration::from_secs(60));
    assert_eq!(task["error"], "interrupted; rolled back");
    assert_same_state(
        &before,
        &env.host_state(&hosts),
        "delete killed after step 3",
    );
    assert_eq!(
        std::fs::read_to_string(env.docroot("p1", "keep.example").join("index.html")).unwrap(),
        "precious data\n"
    );

    // The queue runs on: the failed install can be retried, a new task runs.
    env.ok(&["task", "retry", &install.to_string()]);
    assert_eq!(
        env.wait_task(install, Duration::from_secs(60))["status"],
        "success"
    );
    let enable = env.queue(&["site", "enable", "keep.example"]);
    assert_eq!(
        env.wait_task(enable, Duration::from_secs(60))["status"],
        "success"
    );
    assert_eq!(env.nginx.get("keep.example", "/").2, "precious data\n");
}

#[test]
fn a_stopped_dispatcher_finishes_its_running_task_and_claims_no_more() {
    let mut env = Env::new();
    let pid = env.start_dispatcher(&["pause-after:site-install:3:1500"]);
    let running = env.queue(&["site", "add", "running.example", "--platform", "p1"]);
    env.wait_for_log(running, "fault: paused");
    // Asked to stop in the middle of the install; a task queued after that waits.
    signal(pid, "TERM");
    std::thread::sleep(Duration::from_millis(100));
    let waiting = env.queue(&["site", "add", "waiting.example", "--platform", "p1"]);
    let status = env.wait_dispatcher(pid);
    assert!(status.success(), "a stop is not a failure: {status}");
    let task = env.task(running);
    assert_eq!(
        task["status"], "success",
        "finished, not rolled back: {task}"
    );
    assert_eq!(env.nginx.get("running.example", "/").0, 200);
    assert_eq!(
        env.task(waiting)["status"],
        "queued",
        "claimed after the stop"
    );

    env.dispatch_until_idle(&[]);
    assert_eq!(env.task(waiting)["status"], "success");
}
