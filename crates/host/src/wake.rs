//! Wake-ups between processes: whoever queues a task sends a datagram to every dispatcher's
//! socket in fjord's `run/` directory.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::{HostError, Result};

pub struct WakeSocket {
    socket: UnixDatagram,
    path: PathBuf,
}

impl WakeSocket {
    pub fn bind(path: &Path) -> Result<WakeSocket> {
        let socket = UnixDatagram::bind(path).map_err(|e| HostError::io(path, e))?;
        socket
            .set_read_timeout(Some(Duration::from_millis(500)))
            .map_err(|e| HostError::io(path, e))?;
        Ok(WakeSocket {
            socket,
            path: path.to_path_buf(),
        })
    }

    /// Waits up to half a second for a wake-up.
    pub fn wait(&self) -> bool {
        let mut buf = [0u8; 16];
        self.socket.recv(&mut buf).is_ok()
    }
}

impl Drop for WakeSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Sends a wake-up to the socket at `path` (its own, to a dispatcher that stops: the waiting
/// listener returns at once instead of at its next timeout).
pub fn wake(path: &Path) {
    if let Ok(sock) = UnixDatagram::unbound() {
        let _ = sock.send_to(b"wake", path);
    }
}

/// Sends a wake-up to every `*.sock` in `dir`. Best effort: a dispatcher that misses it finds
/// the task at its next poll.
pub fn wake_all(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let Ok(sock) = UnixDatagram::unbound() else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "sock") {
            let _ = sock.send_to(b"wake", &path);
        }
    }
}
