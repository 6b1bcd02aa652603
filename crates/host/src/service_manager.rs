//! Telling a service manager (systemd's `Type=notify`) how the process is doing: one datagram
//! of `KEY=value` lines to the socket named by `$NOTIFY_SOCKET` (`sd_notify(3)`). Without that
//! variable, as when fjord runs by hand, nothing is sent.

use std::os::unix::net::{SocketAddr, UnixDatagram};

/// The panel listens and the dispatcher claims tasks.
pub fn notify_ready(status: &str) {
    notify(&format!("READY=1\nSTATUS={}", one_line(status)));
}

/// A stop was asked for; `status` says what is waited for.
pub fn notify_stopping(status: &str) {
    notify(&format!("STOPPING=1\nSTATUS={}", one_line(status)));
}

/// A line for `systemctl status`.
pub fn notify_status(status: &str) {
    notify(&format!("STATUS={}", one_line(status)));
}

/// Sends `state` to `$NOTIFY_SOCKET`. A manager that cannot be reached is not fjord's failure
/// (it would be told again by the next status, and the unit's timeouts cover a lost READY): the
/// error is reported once on stderr and the work goes on.
pub fn notify(state: &str) {
    let Some(socket) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let Some(socket) = socket.to_str().map(str::to_owned) else {
        eprintln!("fjord: NOTIFY_SOCKET is not UTF-8; the service manager is not told");
        return;
    };
    if let Err(e) = send(&socket, state) {
        eprintln!("fjord: cannot tell the service manager at {socket} ({state:?}): {e}");
    }
}

fn send(socket: &str, state: &str) -> std::io::Result<()> {
    let addr = address(socket)?;
    UnixDatagram::unbound()?.send_to_addr(state.as_bytes(), &addr)?;
    Ok(())
}

/// A path, or an abstract address written with a leading `@` (the kernel's leading NUL).
fn address(socket: &str) -> std::io::Result<SocketAddr> {
    use std::os::linux::net::SocketAddrExt;
    match socket.strip_prefix('@') {
        Some(name) => SocketAddr::from_abstract_name(name.as_bytes()),
        None if socket.starts_with('/') => SocketAddr::from_pathname(socket),
        None => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "neither an absolute path nor an @abstract address",
        )),
    }
}

/// A status is one line: a newline would start a new `KEY=` assignment.
fn one_line(status: &str) -> String {
    status.replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::linux::net::SocketAddrExt;

    fn received(listener: &UnixDatagram) -> String {
        listener
            .set_read_timeout(Some(std::time::Duration::from_secs(30)))
            .unwrap();
        let mut buf = [0u8; 4096];
        let n = listener.recv(&mut buf).unwrap();
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    #[test]
    fn a_datagram_reaches_a_path_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let listener = UnixDatagram::bind(&path).unwrap();
        send(path.to_str().unwrap(), "READY=1\nSTATUS=up").unwrap();
        assert_eq!(received(&listener), "READY=1\nSTATUS=up");
    }

    #[test]
    fn an_at_sign_names_an_abstract_socket() {
        let name = format!("fjord-notify-test-{}", std::process::id());
        let listener =
            UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap())
                .unwrap();
        send(&format!("@{name}"), "STOPPING=1").unwrap();
        assert_eq!(received(&listener), "STOPPING=1");
    }

    #[test]
    fn a_relative_address_is_refused_and_a_status_stays_one_line() {
        assert!(send("notify", "READY=1").is_err());
        assert_eq!(one_line("a\nb\rc"), "a b c");
    }
}
