//! How a dispatcher is asked to stop: SIGTERM (what service managers send) or SIGINT
//! (Ctrl-C).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::{HostError, Result};

/// On the first SIGTERM or SIGINT, sets `stop` and wakes the dispatcher's socket at `wake`
/// (it then claims no more tasks and exits once its running ones are done); on the second,
/// exits at once (the next dispatcher rolls back what was running, as after a crash).
pub fn stop_on_signals(stop: Arc<AtomicBool>, wake: PathBuf) -> Result<()> {
    let mut signals = Signals::new([SIGTERM, SIGINT])
        .map_err(|e| HostError::Refused(format!("cannot handle SIGTERM and SIGINT: {e}")))?;
    std::thread::spawn(move || {
        for _ in signals.forever() {
            if stop.swap(true, Ordering::SeqCst) {
                tracing::warn!(
                    "stopping now; the next dispatcher rolls back the tasks that were running"
                );
                std::process::exit(1);
            }
            tracing::info!("stopping once the running tasks are done (signal again to stop now)");
            crate::service_manager::notify_stopping("stopping once the running tasks are done");
            crate::wake(&wake);
        }
    });
    Ok(())
}

/// Tells a service manager READY=1 with `status`, then blocks until SIGTERM or SIGINT
/// arrives (a panel serving with no dispatcher). The handlers are in place before READY is
/// told: a stop asked for the moment after READY must be a clean stop, not the default death.
pub fn wait_for_stop(status: &str) -> Result<()> {
    let mut signals = Signals::new([SIGTERM, SIGINT])
        .map_err(|e| HostError::Refused(format!("cannot handle SIGTERM and SIGINT: {e}")))?;
    crate::service_manager::notify_ready(status);
    signals.forever().next();
    crate::service_manager::notify_stopping("stopping");
    Ok(())
}
