//! The dashboard, the task list, and a task's page whose log streams while it runs.

use std::convert::Infallible;
use std::time::Duration;

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use engine::TaskFilter;
use engine::model::{Target, TaskStatus};
use model::Action;
use serde::Deserialize;

use super::charts::{BarChart, Row, bars, rows, seconds};
use super::{Ctx, NoFields, PageError, PageResult, page, see};
use crate::session::{Posted, Viewer};
use crate::views::{LogLineView, TaskView, when, when_opt};
use crate::{AppState, WebError};

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    ctx: Ctx,
    counts: Vec<(String, u64)>,
    total: u64,
    running: Vec<TaskView>,
    queued: Vec<TaskView>,
    failed: Vec<TaskView>,
    durations: BarChart,
    backup_use: Vec<Row>,
    show_tasks: bool,
}

impl DashboardPage {
    fn when(&self, ms: &i64) -> String {
        when(*ms)
    }
}

async fn dashboard(State(state): State<AppState>, viewer: Viewer) -> PageResult {
    let actor = viewer.actor();
    let (d, notice) = state
        .run(move |f| {
            let a = f.acting(actor);
            Ok((a.dashboard()?, a.claim_pause_notice()?))
        })
        .await?;
    let view = |ts: &[engine::model::Task]| ts.iter().map(TaskView::new).collect::<Vec<_>>();
    let finished = view(&d.finished);
    let durations: Vec<(String, f64, bool)> = finished
        .iter()
        .filter_map(|t| {
            Some((
                format!("#{} {} {}", t.id, t.kind, t.target),
                t.duration_ms()? as f64 / 1000.0,
                t.status != "success",
            ))
        })
        .collect();
    page(DashboardPage {
        ctx: Ctx::new(&viewer, "dashboard").with_notice(notice),
        total: d.site_counts.iter().map(|(_, n)| n).sum(),
        counts: d
            .site_counts
            .iter()
            .map(|(s, n)| (s.as_str().to_string(), *n))
            .collect(),
        running: view(&d.running),
        queued: view(&d.queued),
        failed: view(&d.failed),
        durations: bars(&durations, seconds),
        backup_use: rows(
            &d.backup_use
                .iter()
                .map(|(site, bytes, n)| {
                    (
                        format!("{site} ({n} backup{})", if *n == 1 { "" } else { "s" }),
                        *bytes as f64,
                    )
                })
                .collect::<Vec<_>>(),
            |b| crate::views::size(b as i64),
        ),
        show_tasks: viewer.actor().may(Action::ViewTasks),
    })
}

#[derive(Deserialize, Default)]
struct TasksQuery {
    #[serde(default)]
    status: String,
}

#[derive(Template)]
#[template(path = "tasks.html")]
struct TasksPage {
    ctx: Ctx,
    status: String,
    statuses: Vec<&'static str>,
    tasks: Vec<TaskView>,
}

impl TasksPage {
    fn when(&self, ms: &i64) -> String {
        when(*ms)
    }
}

const TASK_STATUSES: [&str; 6] = [
    "queued",
    "processing",
    "success",
    "failed",
    "warning",
    "cancelled",
];

pub fn task_status(s: &str) -> Result<Option<TaskStatus>, WebError> {
    match s {
        "" => Ok(None),
        s => TaskStatus::from_db(s).map(Some).ok_or_else(|| {
            engine::Error::Invalid(model::Invalid::new(
                "status",
                s,
                format!("must be one of {}", TASK_STATUSES.join(", ")),
            ))
            .into()
        }),
    }
}

async fn list(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(q): Query<TasksQuery>,
) -> PageResult {
    let status = task_status(&q.status)?;
    let actor = viewer.actor();
    let (tasks, notice) = state
        .run(move |f| {
            let a = f.acting(actor);
            let tasks = a.tasks(&TaskFilter {
                status,
                limit: Some(200),
                ..TaskFilter::default()
            })?;
            Ok((tasks, a.claim_pause_notice()?))
        })
        .await?;
    page(TasksPage {
        ctx: Ctx::new(&viewer, "tasks").with_notice(notice),
        status: q.status,
        statuses: TASK_STATUSES.to_vec(),
        tasks: tasks.iter().map(TaskView::new).collect(),
    })
}

#[derive(Template)]
#[template(path = "task.html")]
struct TaskPage {
    ctx: Ctx,
    task: TaskView,
    log: Vec<LogLineView>,
    last_line: i64,
    running: bool,
    can_retry: bool,
    can_cancel: bool,
    /// Where the task's object is shown, if it still exists and the viewer may see it.
    target_link: Option<String>,
}

impl TaskPage {
    fn when(&self, ms: &i64) -> String {
        when(*ms)
    }

    fn when_opt(&self, ms: &Option<i64>) -> String {
        when_opt(ms)
    }

    fn clock(&self, ms: &i64) -> String {
        model::time::utc_display_ms(*ms)
    }

    /// `850 ms`, `12.3 s`, `4 min 05 s`.
    fn duration(&self, ms: &i64) -> String {
        match *ms {
            ..1_000 => format!("{ms} ms"),
            1_000..60_000 => format!("{:.1} s", *ms as f64 / 1000.0),
            ms => format!("{} min {:02} s", ms / 60_000, (ms % 60_000) / 1000),
        }
    }
}

async fn show(State(state): State<AppState>, viewer: Viewer, Path(id): Path<i64>) -> PageResult {
    let actor = viewer.actor();
    let (task, log, notice) = state
        .run(move |f| {
            let a = f.acting(actor);
            Ok((a.task(id)?, a.task_log(id, 0)?, a.claim_pause_notice()?))
        })
        .await?;
    let actor = viewer.actor();
    let running = matches!(task.status, TaskStatus::Queued | TaskStatus::Processing);
    let target_link = match task.target {
        Target::Site(_) => Some(format!("/sites/{}", task.target_name)),
        Target::Platform(_) if actor.may(Action::ViewPlatforms) => {
            Some(format!("/platforms/{}", task.target_name))
        }
        Target::Server(_) if actor.may(Action::ViewServers) => {
            Some(format!("/servers/{}", task.target_name))
        }
        _ => None,
    };
    page(TaskPage {
        ctx: Ctx::new(&viewer, "tasks").with_notice(notice),
        last_line: log.last().map(|l| l.id).unwrap_or(0),
        log: log.iter().map(LogLineView::new).collect(),
        running,
        can_retry: actor.may(Action::ControlTasks)
            && matches!(task.status, TaskStatus::Failed | TaskStatus::Cancelled),
        can_cancel: actor.may(Action::ControlTasks) && task.status == TaskStatus::Queued,
        task: TaskView::new(&task),
        target_link,
    })
}

#[derive(Deserialize, Default)]
struct EventsQuery {
    #[serde(default)]
    after: i64,
}

/// The task's log as server-sent events: a `line` event per log line after `after`, and a
/// `status` event when the task ends (then the stream closes).
///
/// The session is looked up again on every poll, not only when the stream opens: a user
/// disabled, signed out everywhere or whose session expired gets a `signed-out` event and the
/// stream closes, and a role or client changed meanwhile applies to what is read next.
async fn events(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<i64>,
    Query(q): Query<EventsQuery>,
) -> Result<Response, PageError> {
    let check = viewer.actor();
    state.run(move |f| f.acting(check).task(id)).await?;
    let stream = futures_util::stream::unfold(
        (state, viewer.token, q.after, false),
        move |(state, token, after, done)| async move {
            if done {
                return None;
            }
            let mut after = after;
            loop {
                let session_token = token.clone();
                let polled = state
                    .run(move |f| {
                        let Some(session) = f.session(&session_token)? else {
                            return Ok(None);
                        };
                        let acting = f.acting(session.actor());
                        Ok(Some((acting.task(id)?, acting.task_log(id, after)?)))
                    })
                    .await;
                let signed_out = match polled {
                    Ok(Some(polled)) => Ok(polled),
                    Ok(None) => Err(true),
                    // A user disabled between the session's read and the task's is refused
                    // by the second: the session, read again, tells a sign-out from a failure.
                    Err(_) => {
                        let session_token = token.clone();
                        let gone = state
                            .run(move |f| Ok(f.session(&session_token)?.is_none()))
                            .await;
                        Err(matches!(gone, Ok(true)))
                    }
                };
                let (task, lines) = match signed_out {
                    Ok(polled) => polled,
                    Err(true) => {
                        let ended = Event::default().event("signed-out").data("");
                        return Some((
                            futures_util::stream::iter(vec![Ok(ended)]),
                            (state, token, after, true),
                        ));
                    }
                    Err(false) => return None,
                };
                let finished = !matches!(task.status, TaskStatus::Queued | TaskStatus::Processing);
                if !lines.is_empty() || finished {
                    let mut events: Vec<Result<Event, Infallible>> = Vec::new();
                    for line in &lines {
                        after = line.id;
                        let view = LogLineView::new(line);
                        let data = serde_json::to_string(&view).unwrap_or_default();
                        events.push(Ok(Event::default()
                            .event("line")
                            .id(line.id.to_string())
                            .data(data)));
                    }
                    if finished {
                        let view = TaskView::new(&task);
                        let data = serde_json::to_string(&view).unwrap_or_default();
                        events.push(Ok(Event::default().event("status").data(data)));
                    }
                    return Some((
                        futures_util::stream::iter(events),
                        (state, token, after, finished),
                    ));
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        },
    );
    use futures_util::StreamExt;
    Ok(Sse::new(stream.flatten())
        .keep_alive(KeepAlive::default())
        .into_response())
}

async fn retry(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    posted: Posted<NoFields>,
) -> PageResult {
    let actor = posted.viewer.actor();
    let task = state.run(move |f| f.acting(actor).retry_task(id)).await?;
    see(&format!("/tasks/{}", task.id))
}

async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    posted: Posted<NoFields>,
) -> PageResult {
    let actor = posted.viewer.actor();
    let task = state.run(move |f| f.acting(actor).cancel_task(id)).await?;
    see(&format!("/tasks/{}", task.id))
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(dashboard))
        .route("/tasks", get(list))
        .route("/tasks/{id}", get(show))
        .route("/tasks/{id}/events", get(events))
        .route("/tasks/{id}/retry", post(retry))
        .route("/tasks/{id}/cancel", post(cancel))
}
