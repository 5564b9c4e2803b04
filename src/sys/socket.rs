//! TCP socket setup: listening sockets with their bind options ([`listen`]), nonblocking
//! connections to servers ([`connect`]), per-connection options (TCP_NODELAY, keepalive, linger,
//! SO_ERROR, half-close) and the process's open-file limit (RLIMIT_NOFILE). Every error from a
//! setup step says which step failed and on what, e.g. "bind 127.0.0.1:80: Address already in
//! use (os error 98)", and keeps the [`io::ErrorKind`] of the system error.

use std::io;

use super::context;
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::resource::{getrlimit, setrlimit, Resource};
use socket2::{Domain, Protocol, SockAddr, SockRef, Socket, Type};

/// Seconds a listener waits for the first data before waking accept (TCP_DEFER_ACCEPT).
const DEFER_ACCEPT_SECS: libc::c_int = 1;
/// Pending TCP Fast Open requests a listener keeps (TCP_FASTOPEN).
const FASTOPEN_QUEUE: libc::c_int = 256;

/// How to set up a listening socket (HAProxy's `bind` line options).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListenOpts {
    /// SO_REUSEPORT, so that each worker can bind its own socket to the same address.
    pub reuseport: bool,
    /// The accept queue length passed to listen(2); 0 means SOMAXCONN. The kernel caps it at
    /// net.core.somaxconn.
    pub backlog: u32,
    /// IPV6_V6ONLY when `Some` (`v6only` / `v4v6`); only applied to IPv6 addresses.
    pub v6only: Option<bool>,
    /// SO_BINDTODEVICE: accept only connections arriving on this interface.
    pub interface: Option<String>,
    /// TCP_DEFER_ACCEPT: wake accept only once the client has sent data (or after 1 s).
    pub defer_accept: bool,
    /// TCP_FASTOPEN with a queue of 256.
    pub tfo: bool,
    /// TCP_MAXSEG: the MSS advertised to clients. Linux accepts 0 (reset) or a value within
    /// [88, 32767]; HAProxy's negative "reduce by" form is rejected by the kernel with EINVAL.
    pub mss: Option<i32>,
    /// IP_TRANSPARENT / IPV6_TRANSPARENT: bind to a non-local address (needs CAP_NET_ADMIN).
    pub transparent: bool,
}

/// Creates a nonblocking, close-on-exec listening Unix socket at `path`, removing a stale
/// socket file left there first (a previous run's: bind would fail on it). Anything else at
/// `path` is left alone and bind reports it.
pub fn listen_unix(path: &std::path::Path) -> io::Result<std::os::unix::net::UnixListener> {
    use std::os::unix::fs::FileTypeExt;
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket()) {
        let _ = std::fs::remove_file(path);
    }
    let l = std::os::unix::net::UnixListener::bind(path)?;
    l.set_nonblocking(true)?;
    Ok(l)
}

/// Sets the accept queue length of a socket that already listens (listen(2) again, which
/// Linux allows): a socket kept across a reload takes the new configuration's backlog.
pub fn set_backlog(sock: &std::net::TcpListener, backlog: u32) -> io::Result<()> {
    SockRef::from(sock)
        .listen(backlog_arg(backlog))
        .map_err(|e| context(e, "listen"))
}

/// listen(2)'s argument for a [`ListenOpts::backlog`]: 0 means SOMAXCONN.
fn backlog_arg(backlog: u32) -> libc::c_int {
    match backlog {
        0 => libc::SOMAXCONN,
        n => libc::c_int::try_from(n).unwrap_or(libc::c_int::MAX),
    }
}

/// How to set up a connection to a server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectOpts {
    /// Leave Nagle's algorithm on (no TCP_NODELAY): health checks, which send little and
    /// spare a syscall per connection.
    pub nagle: bool,
    /// SO_KEEPALIVE (`option srvtcpka`).
    pub keepalive: bool,
    /// SO_LINGER with a zero timeout: closing sends an RST (`option nolinger`).
    pub nolinger: bool,
    /// Bind to this local address before connecting (`source`); port 0 picks the port at
    /// connect time (IP_BIND_ADDRESS_NO_PORT), so one source address serves many servers.
    pub source: Option<SocketAddr>,
}

/// Creates a nonblocking, close-on-exec listening TCP socket on `addr` with the options `o`.
///
/// SO_REUSEADDR is always set. The steps run in this order, each one's failure named in the
/// error: socket, SO_REUSEADDR, SO_REUSEPORT, IPV6_V6ONLY, SO_BINDTODEVICE, IP(V6)_TRANSPARENT,
/// TCP_MAXSEG, bind, listen, TCP_DEFER_ACCEPT, TCP_FASTOPEN.
pub fn listen(addr: SocketAddr, o: &ListenOpts) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(
        Domain::for_address(addr),
        Type::STREAM.nonblocking(),
        Some(Protocol::TCP),
    )
    .map_err(|e| context(e, format_args!("socket for {addr}")))?;
    socket
        .set_reuse_address(true)
        .map_err(|e| context(e, "SO_REUSEADDR"))?;
    if o.reuseport {
        socket
            .set_reuse_port(true)
            .map_err(|e| context(e, "SO_REUSEPORT"))?;
    }
    if let (Some(only), true) = (o.v6only, addr.is_ipv6()) {
        socket
            .set_only_v6(only)
            .map_err(|e| context(e, "IPV6_V6ONLY"))?;
    }
    if let Some(interface) = &o.interface {
        socket
            .bind_device(Some(interface.as_bytes()))
            .map_err(|e| context(e, format_args!("SO_BINDTODEVICE {interface}")))?;
    }
    if o.transparent {
        let (level, name, label) = match addr {
            SocketAddr::V4(_) => (libc::SOL_IP, libc::IP_TRANSPARENT, "IP_TRANSPARENT"),
            SocketAddr::V6(_) => (libc::SOL_IPV6, libc::IPV6_TRANSPARENT, "IPV6_TRANSPARENT"),
        };
        set_int_opt(socket.as_fd(), level, name, 1).map_err(|e| context(e, label))?;
    }
    if let Some(mss) = o.mss {
        set_int_opt(socket.as_fd(), libc::IPPROTO_TCP, libc::TCP_MAXSEG, mss)
            .map_err(|e| context(e, format_args!("TCP_MAXSEG {mss}")))?;
    }
    socket
        .bind(&SockAddr::from(addr))
        .map_err(|e| context(e, format_args!("bind {addr}")))?;
    socket
        .listen(backlog_arg(o.backlog))
        .map_err(|e| context(e, format_args!("listen {addr}")))?;
    if o.defer_accept {
        set_int_opt(
            socket.as_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_DEFER_ACCEPT,
            DEFER_ACCEPT_SECS,
        )
        .map_err(|e| context(e, "TCP_DEFER_ACCEPT"))?;
    }
    if o.tfo {
        set_int_opt(
            socket.as_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_FASTOPEN,
            FASTOPEN_QUEUE,
        )
        .map_err(|e| context(e, "TCP_FASTOPEN"))?;
    }
    Ok(socket.into())
}

/// Starts a nonblocking, close-on-exec connection to `addr` with TCP_NODELAY on.
///
/// EINPROGRESS counts as success: the connection is established (or failed) once the stream
/// becomes writable, then [`take_error`] tells which. Other errors are returned at once, with
/// the failing step named.
pub fn connect(addr: SocketAddr, o: &ConnectOpts) -> io::Result<mio::net::TcpStream> {
    let socket = Socket::new(
        Domain::for_address(addr),
        Type::STREAM.nonblocking(),
        Some(Protocol::TCP),
    )
    .map_err(|e| context(e, format_args!("socket for {addr}")))?;
    if !o.nagle {
        socket
            .set_nodelay(true)
            .map_err(|e| context(e, "TCP_NODELAY"))?;
    }
    if o.keepalive {
        socket
            .set_keepalive(true)
            .map_err(|e| context(e, "SO_KEEPALIVE"))?;
    }
    if o.nolinger {
        socket
            .set_linger(Some(Duration::ZERO))
            .map_err(|e| context(e, "SO_LINGER"))?;
    }
    if let Some(source) = o.source {
        if source.port() == 0 {
            // Best effort: without it the port is reserved at bind time, which still works.
            let _ = set_int_opt(
                socket.as_fd(),
                libc::SOL_IP,
                libc::IP_BIND_ADDRESS_NO_PORT,
                1,
            );
        }
        socket
            .bind(&SockAddr::from(source))
            .map_err(|e| context(e, format_args!("bind source {source}")))?;
    }
    match socket.connect(&SockAddr::from(addr)) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(context(e, format_args!("connect {addr}"))),
    }
    Ok(mio::net::TcpStream::from_std(socket.into()))
}

/// Options for an accepted client connection: TCP_NODELAY, and SO_KEEPALIVE when asked
/// (`option clitcpka`).
pub fn tune_accepted(s: &mio::net::TcpStream, keepalive: bool) -> io::Result<()> {
    s.set_nodelay(true).map_err(|e| context(e, "TCP_NODELAY"))?;
    if keepalive {
        SockRef::from(s)
            .set_keepalive(true)
            .map_err(|e| context(e, "SO_KEEPALIVE"))?;
    }
    Ok(())
}

/// SO_LINGER with a zero timeout: closing the socket sends an RST instead of a FIN and frees
/// it at once (no TIME_WAIT).
pub fn set_linger_zero(fd: BorrowedFd<'_>) -> io::Result<()> {
    SockRef::from(&fd)
        .set_linger(Some(Duration::ZERO))
        .map_err(|e| context(e, "SO_LINGER"))
}

/// Reads and discards what the peer has sent, at most `limit` bytes, without blocking: a
/// socket closed with unread bytes sends an RST, and this makes it a FIN.
pub fn drain(fd: BorrowedFd<'_>, limit: usize) {
    use nix::sys::socket::{recv, MsgFlags};
    let mut buf = [0u8; 4096];
    let mut left = limit;
    while left > 0 {
        let want = left.min(buf.len());
        match recv(fd.as_raw_fd(), &mut buf[..want], MsgFlags::MSG_DONTWAIT) {
            Ok(0) | Err(_) => break,
            Ok(n) => left = left.saturating_sub(n),
        }
    }
}

/// `silent-drop`: makes closing the socket send nothing the client will see, as HAProxy
/// does. First TCP_REPAIR (needs CAP_NET_ADMIN): the kernel then drops the connection
/// without a FIN or RST. Otherwise an RST whose TTL (hop limit) of 1 dies at the first
/// router: the client's state stays open until its own timeout.
pub fn silent_drop(fd: BorrowedFd<'_>) -> io::Result<()> {
    if set_int_opt(fd, libc::IPPROTO_TCP, libc::TCP_REPAIR, 1).is_ok() {
        return Ok(());
    }
    let sock = SockRef::from(&fd);
    let hops = match sock.local_addr().ok().and_then(|a| a.as_socket()) {
        Some(SocketAddr::V6(_)) => sock.set_unicast_hops_v6(1),
        _ => sock.set_ttl(1),
    };
    hops.map_err(|e| context(e, "IP_TTL"))?;
    set_linger_zero(fd)
}

/// Takes the socket's pending error (SO_ERROR), clearing it. For a nonblocking connect that
/// became writable: `None` means connected, `Some(e)` is why it failed (ECONNREFUSED ...).
pub fn take_error(fd: BorrowedFd<'_>) -> io::Result<Option<io::Error>> {
    SockRef::from(&fd)
        .take_error()
        .map_err(|e| context(e, "SO_ERROR"))
}

/// Half-closes the socket's write side (SHUT_WR, sends a FIN once the send buffer drains).
/// ENOTCONN (the peer already reset the connection) is not an error.
pub fn shutdown_write(fd: BorrowedFd<'_>) -> io::Result<()> {
    match SockRef::from(&fd).shutdown(Shutdown::Write) {
        Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => Ok(()),
        r => r.map_err(|e| context(e, "shutdown(SHUT_WR)")),
    }
}

/// Raises the soft RLIMIT_NOFILE to `min(wanted, hard)`, first trying to raise the hard limit
/// to `wanted` too (which works only with CAP_SYS_RESOURCE and up to fs.nr_open). Never lowers
/// the limit. Returns the soft limit in force afterwards.
pub fn raise_nofile(wanted: u64) -> io::Result<u64> {
    let (soft, hard) =
        getrlimit(Resource::RLIMIT_NOFILE).map_err(|e| context(e, "getrlimit(NOFILE)"))?;
    if wanted <= soft {
        return Ok(soft);
    }
    if wanted > hard && setrlimit(Resource::RLIMIT_NOFILE, wanted, wanted).is_ok() {
        return Ok(wanted);
    }
    setrlimit(Resource::RLIMIT_NOFILE, wanted.min(hard), hard)
        .map_err(|e| context(e, format_args!("setrlimit(NOFILE, {})", wanted.min(hard))))?;
    let (soft, _) =
        getrlimit(Resource::RLIMIT_NOFILE).map_err(|e| context(e, "getrlimit(NOFILE)"))?;
    Ok(soft)
}

/// The soft RLIMIT_NOFILE in force (0 if it cannot be read, which Linux never does).
pub fn nofile_limit() -> u64 {
    getrlimit(Resource::RLIMIT_NOFILE).map_or(0, |(soft, _)| soft)
}

/// setsockopt(2) for an `int` option that neither socket2 nor nix wraps.
fn set_int_opt(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    let len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `fd` is a live descriptor for the borrow's lifetime, and the option value points
    // to a local c_int whose exact size is passed as the length; the kernel only reads it.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            std::ptr::addr_of!(value).cast(),
            len,
        )
    };
    Errno::result(rc).map(drop).map_err(io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mio::{Events, Interest, Poll, Token};
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::time::Instant;

    const DEADLINE: Duration = Duration::from_secs(10);

    fn loopback() -> SocketAddr {
        "127.0.0.1:0".parse().unwrap()
    }

    /// Waits until `stream` is writable (a nonblocking connect finished), within the deadline.
    fn wait_writable(stream: &mut mio::net::TcpStream) {
        let mut poll = Poll::new().unwrap();
        let mut events = Events::with_capacity(4);
        poll.registry()
            .register(stream, Token(0), Interest::WRITABLE)
            .unwrap();
        let deadline = Instant::now() + DEADLINE;
        loop {
            let left = deadline
                .checked_duration_since(Instant::now())
                .expect("connect timed out");
            poll.poll(&mut events, Some(left)).unwrap();
            if events
                .iter()
                .any(|e| e.is_writable() || e.is_write_closed() || e.is_error())
            {
                return;
            }
        }
    }

    /// Accepts one connection from a nonblocking listener, within the deadline.
    fn accept(listener: &std::net::TcpListener) -> TcpStream {
        let mut poll = Poll::new().unwrap();
        let mut events = Events::with_capacity(4);
        let fd = listener.as_raw_fd();
        poll.registry()
            .register(&mut mio::unix::SourceFd(&fd), Token(0), Interest::READABLE)
            .unwrap();
        let deadline = Instant::now() + DEADLINE;
        loop {
            match listener.accept() {
                Ok((s, _)) => return s,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("accept: {e}"),
            }
            let left = deadline
                .checked_duration_since(Instant::now())
                .expect("accept timed out");
            poll.poll(&mut events, Some(left)).unwrap();
        }
    }

    #[test]
    fn reuseport_listeners_share_a_port() {
        let o = ListenOpts {
            reuseport: true,
            ..ListenOpts::default()
        };
        let first = listen(loopback(), &o).unwrap();
        let addr = first.local_addr().unwrap();
        let second = listen(addr, &o).unwrap();
        assert_eq!(second.local_addr().unwrap(), addr);
        assert!(SockRef::from(&first).nonblocking().unwrap());
        assert!(SockRef::from(&first).reuse_port().unwrap());
    }

    #[test]
    fn second_listener_without_reuseport_names_the_failed_bind() {
        let first = listen(loopback(), &ListenOpts::default()).unwrap();
        let addr = first.local_addr().unwrap();
        let err = listen(addr, &ListenOpts::default()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
        let msg = err.to_string();
        assert!(msg.starts_with(&format!("bind {addr}: ")), "{msg}");
        assert!(msg.contains("in use"), "{msg}");
    }

    #[test]
    fn listener_options_are_applied() {
        let o = ListenOpts {
            reuseport: true,
            backlog: 16,
            interface: Some("lo".to_string()),
            defer_accept: true,
            tfo: true,
            mss: Some(1200),
            ..ListenOpts::default()
        };
        let listener = listen(loopback(), &o).unwrap();
        let sock = SockRef::from(&listener);
        assert_eq!(sock.mss().unwrap(), 1200);
        assert_eq!(sock.device().unwrap().as_deref(), Some(&b"lo"[..]));
        // Deferred accept: a connection that sent data is accepted with the data waiting.
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        client.write_all(b"hi").unwrap();
        let mut server = accept(&listener);
        server.set_nonblocking(false).unwrap();
        let mut buf = [0; 2];
        server.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"hi");
    }

    #[test]
    fn listener_errors_name_their_step() {
        let o = ListenOpts {
            interface: Some("nosuchdev0".to_string()),
            ..ListenOpts::default()
        };
        let msg = listen(loopback(), &o).unwrap_err().to_string();
        assert!(msg.starts_with("SO_BINDTODEVICE nosuchdev0: "), "{msg}");
        let o = ListenOpts {
            mss: Some(-40),
            ..ListenOpts::default()
        };
        let err = listen(loopback(), &o).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(err.to_string().starts_with("TCP_MAXSEG -40: "), "{err}");
    }

    #[test]
    fn ipv6_only_listener_when_ipv6_is_available() {
        let any6: SocketAddr = "[::1]:0".parse().unwrap();
        if std::net::TcpListener::bind(any6).is_err() {
            eprintln!("skipped: no IPv6 loopback on this host");
            return;
        }
        let o = ListenOpts {
            v6only: Some(true),
            ..ListenOpts::default()
        };
        let listener = listen(any6, &o).unwrap();
        assert!(SockRef::from(&listener).only_v6().unwrap());
        // v6only on an IPv4 address is ignored, not an error.
        listen(loopback(), &o).unwrap();
    }

    #[test]
    fn connect_completes_and_reports_no_error() {
        let listener = listen(loopback(), &ListenOpts::default()).unwrap();
        let addr = listener.local_addr().unwrap();
        let o = ConnectOpts {
            keepalive: true,
            nolinger: false,
            source: Some(loopback()),
            nagle: false,
        };
        let mut stream = connect(addr, &o).unwrap();
        wait_writable(&mut stream);
        assert!(take_error(stream.as_fd()).unwrap().is_none());
        assert!(stream.nodelay().unwrap());
        assert!(SockRef::from(&stream).keepalive().unwrap());
        assert_eq!(stream.peer_addr().unwrap(), addr);
        let accepted = accept(&listener);
        accepted.set_nonblocking(true).unwrap();
        let accepted = mio::net::TcpStream::from_std(accepted);
        tune_accepted(&accepted, true).unwrap();
        assert!(accepted.nodelay().unwrap());
        assert!(SockRef::from(&accepted).keepalive().unwrap());
    }

    #[test]
    fn connect_to_a_closed_port_is_refused_after_writability() {
        // A bound socket that does not listen answers SYNs with RST, and holds the port.
        let closed = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        closed.bind(&SockAddr::from(loopback())).unwrap();
        let addr = closed.local_addr().unwrap().as_socket().unwrap();
        let mut stream = match connect(addr, &ConnectOpts::default()) {
            Ok(stream) => stream,
            Err(e) => {
                // Linux may also refuse synchronously on loopback.
                assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused, "{e}");
                return;
            }
        };
        wait_writable(&mut stream);
        let err = take_error(stream.as_fd()).unwrap().expect("an SO_ERROR");
        assert_eq!(err.raw_os_error(), Some(libc::ECONNREFUSED));
        assert!(
            take_error(stream.as_fd()).unwrap().is_none(),
            "SO_ERROR is cleared by reading it"
        );
    }

    #[test]
    fn linger_zero_resets_the_peer() {
        let listener = listen(loopback(), &ListenOpts::default()).unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let server = accept(&listener);
        set_linger_zero(server.as_fd()).unwrap();
        drop(server);
        client.set_read_timeout(Some(DEADLINE)).unwrap();
        let err = client.read(&mut [0; 16]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
    }

    #[test]
    fn nolinger_connection_resets_the_peer_on_close() {
        let listener = listen(loopback(), &ListenOpts::default()).unwrap();
        let o = ConnectOpts {
            nolinger: true,
            ..ConnectOpts::default()
        };
        let mut stream = connect(listener.local_addr().unwrap(), &o).unwrap();
        wait_writable(&mut stream);
        let mut server = accept(&listener);
        server.set_nonblocking(false).unwrap();
        drop(stream);
        server.set_read_timeout(Some(DEADLINE)).unwrap();
        let err = server.read(&mut [0; 16]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
    }

    #[test]
    fn shutdown_write_sends_eof_and_ignores_enotconn() {
        let listener = listen(loopback(), &ListenOpts::default()).unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let mut server = accept(&listener);
        server.set_nonblocking(false).unwrap();
        shutdown_write(client.as_fd()).unwrap();
        server.set_read_timeout(Some(DEADLINE)).unwrap();
        assert_eq!(server.read(&mut [0; 16]).unwrap(), 0);
        // A socket that never connected: ENOTCONN is swallowed.
        let unconnected = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        shutdown_write(unconnected.as_fd()).unwrap();
    }

    #[test]
    fn raise_nofile_never_lowers_the_limit() {
        let before = nofile_limit();
        assert!(before > 0);
        assert_eq!(raise_nofile(1).unwrap(), before);
        let after = raise_nofile(before.saturating_add(1_000)).unwrap();
        assert!(after >= before);
        assert_eq!(nofile_limit(), after);
    }
}
