// fjord's panel works without this file; with it, a running task's log streams and
// destructive buttons ask first.
"use strict";

document.addEventListener("submit", (event) => {
  const form = event.target;
  const question = form.getAttribute("data-confirm");
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});

function followLog(log) {
  const url = log.getAttribute("data-stream");
  if (!url || !window.EventSource) return;
  const source = new EventSource(url);
  source.addEventListener("line", (e) => {
    const line = JSON.parse(e.data);
    const span = document.createElement("span");
    span.className = "line";
    const time = document.createElement("time");
    time.textContent = new Date(line.at).toISOString().replace("T", " ").replace("Z", "");
    span.appendChild(time);
    span.appendChild(document.createTextNode(" " + line.line + "\n"));
    const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 8;
    log.appendChild(span);
    if (atBottom) log.scrollTop = log.scrollHeight;
  });
  source.addEventListener("status", (e) => {
    const task = JSON.parse(e.data);
    source.close();
    const badge = document.getElementById("task-status");
    if (badge) {
      badge.textContent = task.status;
      badge.className = "badge status-" + task.status;
    }
    const live = document.getElementById("live");
    if (live) live.textContent = "The task has ended.";
    // The page's buttons (re-queue, cancel) depend on the end state: show them.
    window.setTimeout(() => window.location.reload(), 600);
  });
  // The session ended (signed out everywhere, disabled, expired): stop, and sign in again.
  source.addEventListener("signed-out", () => {
    source.close();
    window.location.assign("/login");
  });
  source.onerror = () => {
    if (source.readyState === EventSource.CLOSED) return;
  };
}

document.addEventListener("DOMContentLoaded", () => {
  const log = document.getElementById("log");
  if (log) followLog(log);
});
