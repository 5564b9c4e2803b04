//! systemd's notify protocol for `-Ws` (sd_notify(3)): one datagram per state change to the
//! Unix socket named by `$NOTIFY_SOCKET`, a path or, with a leading `@`, a name in the
//! abstract namespace. HAProxy 2.6 sends `READY=1\nMAINPID=<pid>` once its worker is ready
//! (again after each reload, failed or not), `RELOADING=1` when a reload begins and
//! `STOPPING=1` when it stops; so does sluice.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};

/// A connection to systemd's notify socket.
#[derive(Debug)]
pub struct Notify {
    sock: UnixDatagram,
    addr: SocketAddr,
}

impl Notify {
    /// From `$NOTIFY_SOCKET`: `None` when it is unset or empty (not started by systemd, or
    /// not as `Type=notify`), an error when it names no usable socket.
    pub fn from_env() -> Option<Result<Notify, String>> {
        let value = std::env::var_os("NOTIFY_SOCKET")?;
        if value.is_empty() {
            return None;
        }
        Some(Notify::to(&value.to_string_lossy()))
    }

    /// To the socket named `name`: an absolute path, or `@` and an abstract name.
    pub fn to(name: &str) -> Result<Notify, String> {
        let err = |e: std::io::Error| format!("NOTIFY_SOCKET {name}: {e}");
        let addr = if let Some(abstract_name) = name.strip_prefix('@') {
            SocketAddr::from_abstract_name(abstract_name.as_bytes()).map_err(err)?
        } else if name.starts_with('/') {
            SocketAddr::from_pathname(name).map_err(err)?
        } else {
            return Err(format!(
                "NOTIFY_SOCKET {name}: neither an absolute path nor an abstract name ('@...')"
            ));
        };
        let sock = UnixDatagram::unbound().map_err(err)?;
        Ok(Notify { sock, addr })
    }

    /// Sends `state` (lines `KEY=VALUE`); a failure is logged, never fatal.
    pub fn send(&self, state: &str) {
        if let Err(e) = self.sock.send_to_addr(state.as_bytes(), &self.addr) {
            log::warn!("systemd notify '{}': {e}", state.replace('\n', "\\n"));
        }
    }

    /// `READY=1` with the master's pid, as HAProxy sends it.
    pub fn ready(&self) {
        self.send(&format!("READY=1\nMAINPID={}", std::process::id()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn sends_to_a_path_and_to_an_abstract_name() {
        let dir = std::env::temp_dir().join(format!("sluice-notify-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify.sock");
        let by_path = UnixDatagram::bind(&path).unwrap();
        let name = format!("sluice-notify-test-{}", std::process::id());
        let by_name =
            UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap())
                .unwrap();
        for sock in [&by_path, &by_name] {
            sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        }
        Notify::to(path.to_str().unwrap()).unwrap().ready();
        Notify::to(&format!("@{name}")).unwrap().send("RELOADING=1");
        let mut buf = [0u8; 128];
        let n = by_path.recv(&mut buf).unwrap();
        assert_eq!(
            std::str::from_utf8(&buf[..n]).unwrap(),
            format!("READY=1\nMAINPID={}", std::process::id())
        );
        let n = by_name.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"RELOADING=1");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_relative_name_is_refused() {
        assert!(Notify::to("notify.sock")
            .unwrap_err()
            .contains("neither an absolute path"));
    }
}
