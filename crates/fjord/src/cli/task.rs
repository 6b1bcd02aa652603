//! `fjord task`: the task list, a task's log, and retrying or cancelling a task.

use std::process::ExitCode;

use clap::Subcommand;
use engine::model::TaskStatus;
use engine::ops::Queued;
use engine::{Error, Fjord, TaskFilter};

use super::{JsonOpt, TaskOpts, follow, queued, show};
use crate::outln;
use crate::output::{self, print_json, table, time};

#[derive(Subcommand, Debug)]
pub enum TaskCmd {
    /// List tasks, newest first.
    List {
        /// queued, processing, success, failed, warning or cancelled.
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[command(flatten)]
        json: JsonOpt,
    },
    /// Show a task: its target, status, times, who queued it and its error.
    Show {
        id: i64,
        #[command(flatten)]
        json: JsonOpt,
    },
    /// Print a task's log; --follow keeps printing until the task ends.
    Log {
        id: i64,
        #[arg(long, short)]
        follow: bool,
    },
    /// Queue a failed or cancelled task again.
    Retry {
        id: i64,
        #[command(flatten)]
        opts: TaskOpts,
    },
    /// Cancel a queued task.
    Cancel { id: i64 },
}

pub(super) fn task(fjord: &Fjord, cmd: TaskCmd) -> Result<ExitCode, Error> {
    match cmd {
        TaskCmd::List {
            status,
            limit,
            json,
        } => {
            let status = status
                .map(|s| {
                    TaskStatus::from_db(&s).ok_or_else(|| {
                        engine::model::Invalid::new("task status", &s, "must be one of queued, processing, success, failed, warning, cancelled")
                    })
                })
                .transpose()?;
            super::wait::warn_if_claims_paused(fjord);
            let tasks = fjord.tasks(&TaskFilter {
                status,
                limit: Some(limit),
                ..TaskFilter::default()
            })?;
            if json.json {
                print_json(&tasks.iter().map(output::task_json).collect());
            } else {
                table(
                    &["id", "task", "target", "status", "queued at"],
                    tasks
                        .iter()
                        .map(|t| {
                            vec![
                                t.id.to_string(),
                                t.kind.as_str().into(),
                                t.target_name.clone(),
                                t.status.as_str().into(),
                                time(Some(t.created_at)),
                            ]
                        })
                        .collect(),
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        TaskCmd::Show { id, json } => {
            super::wait::warn_if_claims_paused(fjord);
            show(&output::task_json(&fjord.task(id)?), json.json);
            Ok(ExitCode::SUCCESS)
        }
        TaskCmd::Log { id, follow: true } => {
            follow(fjord, id, false)?;
            Ok(ExitCode::SUCCESS)
        }
        TaskCmd::Log { id, follow: false } => {
            for line in fjord.task_log(id, 0)? {
                outln!("{}  {}", output::log_time(line.at), line.line);
            }
            Ok(ExitCode::SUCCESS)
        }
        TaskCmd::Retry { id, opts } if opts.dry_run => {
            let plan = fjord.plan_task(id)?;
            queued(
                fjord,
                Queued {
                    task: None,
                    plan: Some(plan),
                },
                &opts,
            )
        }
        TaskCmd::Retry { id, opts } => {
            let task = fjord.retry_task(id)?;
            queued(
                fjord,
                Queued {
                    task: Some(task),
                    plan: None,
                },
                &TaskOpts {
                    dry_run: false,
                    ..opts
                },
            )
        }
        TaskCmd::Cancel { id } => {
            let task = fjord.cancel_task(id)?;
            outln!("task {} is cancelled", task.id);
            Ok(ExitCode::SUCCESS)
        }
    }
}
