//! fjord's own log on stderr (never stdout): text lines, or one JSON object a line for a
//! log collector, filtered by `log.level`. A command's answers to its user (`outln!`, the
//! error `main` prints) are not log events and stay as they are.

use engine::Error;
use engine::config::{LogConfig, LogFormat, Source};
use tracing_subscriber::EnvFilter;

/// Installs the subscriber. `daemon`: `serve` or `dispatch`, which log at `log.level`; any
/// other command (`init` dispatches too) says only what went wrong unless a level was set.
pub fn init(log: &LogConfig, daemon: bool) -> Result<(), Error> {
    let level = if daemon || log.level.source != Source::Default {
        log.level.value.as_str()
    } else {
        "warn"
    };
    let filter = EnvFilter::try_new(level)
        .map_err(|e| Error::Refused(format!("log.level {level:?}: {e}")))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second call (there is none in fjord) would find a subscriber set: nothing to do.
    let _ = match log.format.value {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    Ok(())
}
