//! In-process test backends and the client helpers that talk to them. Each backend listens on
//! 127.0.0.1 with an ephemeral port, runs an accept thread plus one std thread per connection,
//! counts what it accepted, what is still open and what it read, and stops when dropped (flag,
//! self-connect to wake the accept loop, shutdown of every open connection, join). The kinds:
//! tagged (name line, then echo), echo (with half-close), sink and source (FNV-1a checksummed
//! byte streams), slow reader (rate-limited, never writes), refusing (a bound but never
//! listening port) and a tiny keep-alive HTTP/1.1 server. Only std and socket2.

use std::collections::HashMap;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use socket2::{Domain, SockRef, Socket, Type};

/// Connect, read and write timeout of the client helpers.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// Longest line `read_line` accepts, and longest HTTP head the backends accept.
const MAX_LINE: usize = 64 * 1024;

/// Receive buffer of the slow reader's sockets, small so that back-pressure reaches the sender.
const SLOW_READER_RCVBUF: usize = 4 * 1024;

/// A test backend listening on 127.0.0.1. Dropping it stops it: the accept thread ends, every
/// open connection is shut down and every connection thread is joined.
pub struct Backend {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
    /// The listener, kept to shut it down on drop; None for `refusing`.
    listener: Option<TcpListener>,
    /// For `refusing`: the bound, never listening socket that holds the port.
    _reserved: Option<Socket>,
}

impl Backend {
    /// On each connection writes `name` and "\n", then echoes until EOF, then closes.
    pub fn tagged(name: &str) -> Backend {
        let line = format!("{name}\n").into_bytes();
        Backend::spawn("tagged", None, move |peer| {
            if peer.stream.write_all(&line).is_ok() {
                let _ = echo(peer);
            }
        })
    }

    /// Echoes until EOF, finishes writing, then shuts down its write side and closes.
    pub fn echo() -> Backend {
        Backend::spawn("echo", None, |peer| {
            if echo(peer).is_ok() {
                let _ = peer.stream.shutdown(Shutdown::Write);
            }
        })
    }

    /// Reads until EOF, then writes `"{bytes} {fnv1a:016x}\n"` and closes.
    pub fn sink() -> Backend {
        Backend::spawn("sink", None, |peer| {
            let mut buf = vec![0u8; 64 * 1024];
            let mut fnv = Fnv::new();
            loop {
                match peer.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => fnv.update(&buf[..n]),
                    Err(_) => return,
                }
            }
            let line = format!("{} {:016x}\n", fnv.len(), fnv.finish());
            let _ = peer.stream.write_all(line.as_bytes());
        })
    }

    /// On connect writes `len` bytes of the pseudo-random stream of `seed` (see `PseudoStream`),
    /// shuts down its write side, then reads and ignores input until EOF.
    pub fn source(len: u64, seed: u64) -> Backend {
        Backend::spawn("source", None, move |peer| {
            if send_stream(&peer.stream, len, seed).is_err() {
                return;
            }
            let _ = peer.stream.shutdown(Shutdown::Write);
            let mut buf = vec![0u8; 64 * 1024];
            while let Ok(n) = peer.read(&mut buf) {
                if n == 0 {
                    break;
                }
            }
        })
    }

    /// Reads at most `bytes_per_sec` (small reads, paced by sleeps), never writes, closes on EOF.
    /// Its sockets have a small receive buffer so that a fast sender meets back-pressure soon.
    pub fn slow_reader(bytes_per_sec: u64) -> Backend {
        let rate = bytes_per_sec.max(1);
        let chunk = (rate / 20).clamp(1, 16 * 1024) as usize;
        Backend::spawn("slow-reader", Some(SLOW_READER_RCVBUF), move |peer| {
            let mut buf = vec![0u8; chunk];
            let start = Instant::now();
            let mut total = 0u64;
            loop {
                // The next read may happen once every byte read so far is due at `rate`.
                let due = Duration::from_secs_f64(total as f64 / rate as f64);
                loop {
                    if peer.stopping() {
                        return;
                    }
                    let elapsed = start.elapsed();
                    if elapsed >= due {
                        break;
                    }
                    thread::sleep((due - elapsed).min(Duration::from_millis(20)));
                }
                match peer.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => total += n as u64,
                }
            }
        })
    }

    /// An address on 127.0.0.1 where nothing listens: a socket is bound to the port without
    /// `listen()` for the backend's lifetime, so connects get ECONNREFUSED and no other socket
    /// can take the port meanwhile.
    pub fn refusing() -> Backend {
        let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("create socket");
        socket
            .bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
            .expect("bind 127.0.0.1:0");
        let addr = socket
            .local_addr()
            .expect("local address")
            .as_socket()
            .expect("an inet address");
        Backend {
            addr,
            shared: Arc::default(),
            acceptor: None,
            listener: None,
            _reserved: Some(socket),
        }
    }

    /// A tiny HTTP/1.1 server answering every request with `200 OK` and the body `name\n`.
    /// Keep-alive (pipelining too); closes after `Connection: close`, after an HTTP/1.0
    /// request without keep-alive, or on EOF. A malformed request gets a 400 and a close.
    pub fn http(name: &str) -> Backend {
        let body = format!("{name}\n").into_bytes();
        Backend::spawn("http", None, move |peer| serve_http(peer, &body))
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// Connections currently open (accepted and not yet closed by the backend).
    pub fn active(&self) -> usize {
        self.shared.active.load(Ordering::SeqCst)
    }

    /// Bytes read from all connections so far.
    pub fn received(&self) -> u64 {
        self.shared.received.load(Ordering::SeqCst)
    }

    /// Stops the backend now (the same as dropping it).
    pub fn stop(self) {}

    fn spawn(
        kind: &str,
        rcvbuf: Option<usize>,
        handler: impl Fn(&mut Peer) + Send + Sync + 'static,
    ) -> Backend {
        let listener = listen(rcvbuf).unwrap_or_else(|e| panic!("{kind} backend: listen: {e}"));
        let addr = listener.local_addr().expect("listener address");
        let shared: Arc<Shared> = Arc::default();
        let handler: Handler = Arc::new(handler);
        let acceptor = {
            let listener = listener.try_clone().expect("clone listener");
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name(format!("{kind}-{}", addr.port()))
                .spawn(move || accept_loop(&listener, &shared, &handler))
                .expect("spawn accept thread")
        };
        Backend {
            addr,
            shared,
            acceptor: Some(acceptor),
            listener: Some(listener),
            _reserved: None,
        }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(acceptor) = self.acceptor.take() {
            // Wake the blocked accept: connect to ourselves, and shut the listener down
            // (Linux makes a blocked accept() on a shut-down listener fail) in case the
            // connect could not get through.
            let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
            if let Some(listener) = &self.listener {
                let _ = SockRef::from(listener).shutdown(Shutdown::Read);
            }
            let _ = acceptor.join();
        }
        self.listener = None;
        let threads = {
            let mut conns = self.shared.conns();
            for stream in conns.open.values() {
                let _ = stream.shutdown(Shutdown::Both);
            }
            std::mem::take(&mut conns.threads)
        };
        for t in threads {
            let _ = t.join();
        }
    }
}

/// 64-bit FNV-1a of `bytes`.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut f = Fnv::new();
    f.update(bytes);
    f.finish()
}

/// Incremental 64-bit FNV-1a; also counts the bytes it has seen.
#[derive(Clone, Debug)]
pub struct Fnv {
    hash: u64,
    len: u64,
}

impl Fnv {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;

    pub fn new() -> Fnv {
        Fnv {
            hash: Fnv::OFFSET,
            len: 0,
        }
    }

    pub fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.hash = (self.hash ^ u64::from(b)).wrapping_mul(Fnv::PRIME);
        }
        self.len += bytes.len() as u64;
    }

    pub fn finish(&self) -> u64 {
        self.hash
    }

    /// Bytes hashed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Default for Fnv {
    fn default() -> Fnv {
        Fnv::new()
    }
}

/// The deterministic pseudo-random byte stream of a seed: xorshift64 words, little-endian.
/// The bytes do not depend on how the stream is cut into `fill` calls.
#[derive(Clone, Debug)]
pub struct PseudoStream {
    state: u64,
    word: [u8; 8],
    used: usize,
}

impl PseudoStream {
    pub fn new(seed: u64) -> PseudoStream {
        // xorshift stays at zero forever from a zero state.
        let state = if seed == 0 {
            0x9e37_79b9_7f4a_7c15
        } else {
            seed
        };
        PseudoStream {
            state,
            word: [0; 8],
            used: 8,
        }
    }

    pub fn fill(&mut self, buf: &mut [u8]) {
        let mut at = 0;
        while at < buf.len() {
            if self.used == 8 {
                let mut x = self.state;
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                self.state = x;
                self.word = x.to_le_bytes();
                self.used = 0;
            }
            let n = (8 - self.used).min(buf.len() - at);
            buf[at..at + n].copy_from_slice(&self.word[self.used..self.used + n]);
            self.used += n;
            at += n;
        }
    }
}

/// The first `len` bytes of the stream of `seed`.
pub fn stream_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut v = vec![0u8; len];
    PseudoStream::new(seed).fill(&mut v);
    v
}

/// FNV-1a of the first `len` bytes of the stream of `seed`, computed without storing them.
pub fn stream_checksum(len: u64, seed: u64) -> u64 {
    let mut stream = PseudoStream::new(seed);
    let mut fnv = Fnv::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut left = len;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        stream.fill(&mut buf[..n]);
        fnv.update(&buf[..n]);
        left -= n as u64;
    }
    fnv.finish()
}

/// Writes the first `len` bytes of the stream of `seed` to `stream`.
pub fn send_stream(mut stream: &TcpStream, len: u64, seed: u64) -> io::Result<()> {
    let mut gen = PseudoStream::new(seed);
    let mut buf = vec![0u8; 64 * 1024];
    let mut left = len;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        gen.fill(&mut buf[..n]);
        stream.write_all(&buf[..n])?;
        left -= n as u64;
    }
    Ok(())
}

/// Connects with a 5 s timeout and sets 5 s read and write timeouts and TCP_NODELAY.
pub fn try_connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// `try_connect`, panicking with the address and the error on failure.
pub fn connect(addr: SocketAddr) -> TcpStream {
    try_connect(addr).unwrap_or_else(|e| panic!("connect to {addr}: {e}"))
}

/// `n` tagged backends s1..sn.
pub fn tagged(n: usize) -> Vec<Backend> {
    (1..=n).map(|i| Backend::tagged(&format!("s{i}"))).collect()
}

/// The tags of `n` connections to `addr` made one after the other, each closed once it has
/// its tag.
pub fn tags(addr: SocketAddr, n: usize) -> Vec<String> {
    (0..n).map(|_| read_line(&connect(addr))).collect()
}

/// `tags`, each connection from source address `src`.
pub fn tags_from(src: std::net::Ipv4Addr, addr: SocketAddr, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| read_line(&connect_from(src, addr)))
        .collect()
}

/// Reads one line (up to "\n", which is not returned) within `IO_TIMEOUT`. Reads byte by byte,
/// so nothing after the line is consumed. Panics on timeout, EOF or an overlong line.
pub fn read_line(stream: &TcpStream) -> String {
    let deadline = Instant::now() + IO_TIMEOUT;
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        match read_before(stream, &mut byte, deadline) {
            Ok(0) => panic!(
                "EOF before the end of the line (got {:?})",
                String::from_utf8_lossy(&line)
            ),
            Ok(_) if byte[0] == b'\n' => break,
            Ok(_) => line.push(byte[0]),
            Err(e) => panic!(
                "reading a line: {e} (got {:?})",
                String::from_utf8_lossy(&line)
            ),
        }
        assert!(line.len() <= MAX_LINE, "line longer than {MAX_LINE} bytes");
    }
    String::from_utf8_lossy(&line).into_owned()
}

/// Reads until EOF within `within`; panics on timeout or error.
pub fn read_to_eof(stream: &TcpStream, within: Duration) -> Vec<u8> {
    let deadline = Instant::now() + within;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match read_before(stream, &mut buf, deadline) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => panic!("reading to EOF: {e} after {} bytes", out.len()),
        }
    }
}

/// Reads until EOF within `within` without storing: returns (bytes, FNV-1a).
pub fn read_checksum(stream: &TcpStream, within: Duration) -> (u64, u64) {
    let deadline = Instant::now() + within;
    let mut fnv = Fnv::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match read_before(stream, &mut buf, deadline) {
            Ok(0) => return (fnv.len(), fnv.finish()),
            Ok(n) => fnv.update(&buf[..n]),
            Err(e) => panic!("reading to EOF: {e} after {} bytes", fnv.len()),
        }
    }
}

/// Polls `f` every 10 ms until it returns true; panics with `what` once `deadline` has passed.
pub fn wait_until(deadline: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + deadline;
    loop {
        if f() {
            return;
        }
        if Instant::now() >= end {
            panic!("timed out after {deadline:?} waiting for {what}");
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// One HTTP response as `http_get` read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpReply {
    pub status: u16,
    /// Header lines as (lower-cased name, value).
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpReply {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Sends `GET path HTTP/1.1` on `stream` (with `Connection: close` unless `keep_alive`) and
/// reads one response with a Content-Length body. Panics on a malformed response or timeout.
pub fn http_get(mut stream: &TcpStream, path: &str, keep_alive: bool) -> HttpReply {
    let connection = if keep_alive {
        ""
    } else {
        "Connection: close\r\n"
    };
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\n{connection}\r\n");
    stream
        .write_all(request.as_bytes())
        .unwrap_or_else(|e| panic!("sending the request: {e}"));
    let status_line = read_line(stream);
    let status = status_line
        .strip_suffix('\r')
        .and_then(|l| l.strip_prefix("HTTP/1.1 "))
        .and_then(|l| l.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let mut headers = Vec::new();
    loop {
        let line = read_line(stream);
        let line = line.strip_suffix('\r').unwrap_or(&line);
        if line.is_empty() {
            break;
        }
        let (name, value) = line
            .split_once(':')
            .unwrap_or_else(|| panic!("bad header line {line:?}"));
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    let mut reply = HttpReply {
        status,
        headers,
        body: String::new(),
    };
    let len: usize = reply
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .expect("a Content-Length header");
    let deadline = Instant::now() + IO_TIMEOUT;
    let mut body = vec![0u8; len];
    let mut at = 0;
    while at < len {
        match read_before(stream, &mut body[at..], deadline) {
            Ok(0) => panic!("EOF after {at} of {len} body bytes"),
            Ok(n) => at += n,
            Err(e) => panic!("reading the body: {e}"),
        }
    }
    reply.body = String::from_utf8_lossy(&body).into_owned();
    reply
}

// ---- internals ----

type Handler = Arc<dyn Fn(&mut Peer) + Send + Sync>;

#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    accepted: AtomicUsize,
    active: AtomicUsize,
    received: AtomicU64,
    conns: Mutex<Conns>,
}

impl Shared {
    fn conns(&self) -> MutexGuard<'_, Conns> {
        self.conns.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[derive(Default)]
struct Conns {
    next_id: u64,
    /// A clone of every open connection, to shut it down on stop.
    open: HashMap<u64, TcpStream>,
    threads: Vec<JoinHandle<()>>,
}

/// One accepted connection as a handler sees it.
struct Peer {
    stream: TcpStream,
    shared: Arc<Shared>,
}

impl Peer {
    /// Reads, retrying on EINTR and counting the bytes into `received`.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.stream.read(buf) {
                Ok(n) => {
                    self.shared.received.fetch_add(n as u64, Ordering::SeqCst);
                    return Ok(n);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    fn stopping(&self) -> bool {
        self.shared.stop.load(Ordering::SeqCst)
    }
}

/// Ends a connection's bookkeeping when its thread ends: drops the registry clone (the last
/// descriptor, so the socket closes), then decrements `active`.
struct ConnGuard {
    shared: Arc<Shared>,
    id: u64,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        let clone = self.shared.conns().open.remove(&self.id);
        drop(clone);
        self.shared.active.fetch_sub(1, Ordering::SeqCst);
    }
}

fn listen(rcvbuf: Option<usize>) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    if let Some(size) = rcvbuf {
        socket.set_recv_buffer_size(size)?;
    }
    socket.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())?;
    // As deep as the kernel allows (net.core.somaxconn caps it): one accept thread that
    // spawns a thread per connection falls behind bursts of thousands of connects, and a
    // full accept queue drops SYNs, which costs the client a 1 s retransmission.
    socket.listen(i32::MAX)?;
    Ok(socket.into())
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>, handler: &Handler) {
    loop {
        let accepted = listener.accept();
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(_) => {
                // EMFILE, ECONNABORTED...: back off briefly and retry.
                thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        shared.accepted.fetch_add(1, Ordering::SeqCst);
        shared.active.fetch_add(1, Ordering::SeqCst);
        let id = {
            let mut conns = shared.conns();
            conns.threads.retain(|t| !t.is_finished());
            let id = conns.next_id;
            conns.next_id += 1;
            if let Ok(clone) = stream.try_clone() {
                conns.open.insert(id, clone);
            }
            id
        };
        // Declared before the peer, so dropped after it: the guard closes the socket last.
        let guard = ConnGuard {
            shared: Arc::clone(shared),
            id,
        };
        let mut peer = Peer {
            stream,
            shared: Arc::clone(shared),
        };
        let handler = Arc::clone(handler);
        // If the spawn fails the closure is dropped here, outside the lock the guard takes.
        if let Ok(t) = thread::Builder::new().spawn(move || {
            let _guard = guard;
            handler(&mut peer);
            drop(peer);
        }) {
            shared.conns().threads.push(t);
        }
    }
}

/// Copies everything read back to the peer until EOF.
fn echo(peer: &mut Peer) -> io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = peer.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        peer.stream.write_all(&buf[..n])?;
    }
}

/// What the HTTP backend needs from a request head.
struct RequestHead {
    content_length: u64,
    close: bool,
}

/// Parses a request head (through the blank line). Errors are a reason for the 400.
fn parse_head(head: &[u8]) -> Result<RequestHead, &'static str> {
    let text = std::str::from_utf8(head).map_err(|_| "not UTF-8")?;
    let mut lines = text.split("\r\n");
    let request_line = lines.next().ok_or("no request line")?;
    let mut parts = request_line.split(' ');
    let (method, target, version) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(m), Some(t), Some(v), None) => (m, t, v),
        _ => return Err("bad request line"),
    };
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) || target.is_empty() {
        return Err("bad method or target");
    }
    let mut close = match version {
        "HTTP/1.1" => false,
        "HTTP/1.0" => true,
        _ => return Err("bad version"),
    };
    let mut content_length = 0u64;
    for line in lines.filter(|l| !l.is_empty()) {
        let (name, value) = line.split_once(':').ok_or("bad header line")?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            content_length = value.parse().map_err(|_| "bad Content-Length")?;
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err("Transfer-Encoding is not supported");
        } else if name.eq_ignore_ascii_case("connection") {
            for token in value.split(',').map(str::trim) {
                if token.eq_ignore_ascii_case("close") {
                    close = true;
                } else if token.eq_ignore_ascii_case("keep-alive") && version == "HTTP/1.0" {
                    close = false;
                }
            }
        }
    }
    Ok(RequestHead {
        content_length,
        close,
    })
}

fn serve_http(peer: &mut Peer, body: &[u8]) {
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        let head_len = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            if buf.len() > MAX_LINE {
                bad_request(peer);
                return;
            }
            match peer.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = match parse_head(&buf[..head_len]) {
            Ok(head) => head,
            Err(_) => {
                bad_request(peer);
                return;
            }
        };
        buf.drain(..head_len);
        // Skip the request body: first what is buffered, then the rest from the socket.
        let buffered = head.content_length.min(buf.len() as u64) as usize;
        buf.drain(..buffered);
        let mut left = head.content_length - buffered as u64;
        while left > 0 {
            let n = left.min(chunk.len() as u64) as usize;
            match peer.read(&mut chunk[..n]) {
                Ok(0) | Err(_) => return,
                Ok(n) => left -= n as u64,
            }
        }
        let connection = if head.close {
            "Connection: close\r\n"
        } else {
            ""
        };
        let mut reply = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n{connection}\r\n",
            body.len()
        )
        .into_bytes();
        reply.extend_from_slice(body);
        if peer.stream.write_all(&reply).is_err() {
            return;
        }
        if head.close {
            let _ = peer.stream.shutdown(Shutdown::Write);
            return;
        }
    }
}

/// Answers 400 and closes. Unread input is drained briefly first: closing with unread data
/// sends a reset that could overtake the answer.
fn bad_request(peer: &mut Peer) {
    let reply = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    let _ = peer.stream.write_all(reply);
    let _ = peer.stream.shutdown(Shutdown::Write);
    let _ = peer
        .stream
        .set_read_timeout(Some(Duration::from_millis(200)));
    let mut buf = [0u8; 4096];
    for _ in 0..256 {
        match peer.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// One read that gives up at `deadline` (TimedOut), retrying on EINTR.
fn read_before(mut stream: &TcpStream, buf: &mut [u8], deadline: Instant) -> io::Result<usize> {
    let previous = stream.read_timeout()?;
    let result = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break Err(io::Error::new(ErrorKind::TimedOut, "deadline passed"));
        }
        stream.set_read_timeout(Some(left))?;
        match stream.read(buf) {
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                break Err(io::Error::new(ErrorKind::TimedOut, "deadline passed"))
            }
            other => break other,
        }
    };
    stream.set_read_timeout(previous)?;
    result
}

// ---- tests of the backends themselves ----

/// Upper bound for every wait in these tests.
const DEADLINE: Duration = Duration::from_secs(5);

#[test]
fn tagged_names_itself_then_echoes() {
    let b = Backend::tagged("s1");
    let mut c = connect(b.addr());
    assert_eq!(read_line(&c), "s1");
    c.write_all(b"ping\n").unwrap();
    assert_eq!(read_line(&c), "ping");
    c.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_to_eof(&c, DEADLINE), b"");
    wait_until(DEADLINE, "the tagged connection to close", || {
        b.active() == 0
    });
    assert_eq!(b.accepted(), 1);
    assert_eq!(b.received(), 5);
}

#[test]
fn counters_follow_connections() {
    let b = Backend::tagged("s2");
    let clients: Vec<TcpStream> = (0..3).map(|_| connect(b.addr())).collect();
    for c in &clients {
        assert_eq!(read_line(c), "s2");
    }
    assert_eq!(b.accepted(), 3);
    assert_eq!(b.active(), 3);
    drop(clients);
    wait_until(DEADLINE, "all three connections to close", || {
        b.active() == 0
    });
    assert_eq!(b.accepted(), 3);
}

#[test]
fn echo_preserves_half_close() {
    let b = Backend::echo();
    let c = connect(b.addr());
    let data = stream_bytes(1024 * 1024 + 7, 42);
    let writer = {
        let mut c = c.try_clone().unwrap();
        let data = data.clone();
        thread::spawn(move || {
            c.write_all(&data).unwrap();
            c.shutdown(Shutdown::Write).unwrap();
        })
    };
    // Everything comes back and then EOF: the echo finished writing before its shutdown.
    assert!(read_to_eof(&c, DEADLINE) == data, "echoed bytes differ");
    writer.join().unwrap();
    wait_until(DEADLINE, "the echo connection to close", || b.active() == 0);
}

#[test]
fn sink_reports_length_and_checksum() {
    let b = Backend::sink();
    let len = 3 * 1024 * 1024 + 5;
    let c = connect(b.addr());
    send_stream(&c, len, 7).unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    let expected = format!("{len} {:016x}", stream_checksum(len, 7));
    assert_eq!(read_line(&c), expected);
    assert_eq!(read_to_eof(&c, DEADLINE), b"");
    assert_eq!(b.received(), len);

    let empty = connect(b.addr());
    empty.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_line(&empty), format!("0 {:016x}", fnv1a(b"")));
}

#[test]
fn source_sends_the_seeded_stream() {
    let len = 2 * 1024 * 1024 + 3;
    let b = Backend::source(len, 99);
    let c = connect(b.addr());
    assert_eq!(read_checksum(&c, DEADLINE), (len, stream_checksum(len, 99)));
    // The source waits for our EOF before closing.
    assert_eq!(b.active(), 1);
    c.shutdown(Shutdown::Write).unwrap();
    wait_until(DEADLINE, "the source connection to close", || {
        b.active() == 0
    });
}

#[test]
fn fnv_and_stream_are_well_defined() {
    assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    let mut f = Fnv::new();
    f.update(b"foo");
    f.update(b"bar");
    assert_eq!((f.finish(), f.len()), (fnv1a(b"foobar"), 6));

    // Cutting the stream differently gives the same bytes.
    let whole = stream_bytes(1000, 5);
    let mut pieces = vec![0u8; 1000];
    let mut gen = PseudoStream::new(5);
    for range in [0..3, 3..4, 4..17, 17..1000] {
        gen.fill(&mut pieces[range]);
    }
    assert_eq!(whole, pieces);
    assert_eq!(stream_checksum(1000, 5), fnv1a(&whole));
    assert_ne!(stream_bytes(64, 5), stream_bytes(64, 6));
    assert!(stream_bytes(64, 0).iter().any(|&b| b != 0));
}

#[test]
fn slow_reader_keeps_to_its_rate() {
    let rate = 20_000;
    let b = Backend::slow_reader(rate);
    let start = Instant::now();
    let c = connect(b.addr());
    // Offer far more than the rate allows; the writer blocks until the backend stops.
    let writer = {
        let mut c = c.try_clone().unwrap();
        thread::spawn(move || {
            let _ = c.write_all(&vec![0u8; 1024 * 1024]);
        })
    };
    wait_until(DEADLINE, "the slow reader to read something", || {
        b.received() >= 10_000
    });
    thread::sleep(Duration::from_millis(200));
    let elapsed = start.elapsed().as_secs_f64();
    let read = b.received() as f64;
    // One chunk (rate / 20) may be read ahead of the schedule.
    assert!(
        read <= rate as f64 * elapsed + 1_000.0,
        "read {read} bytes in {elapsed:.3}s at {rate} B/s"
    );
    drop(b);
    writer.join().unwrap();
}

#[test]
fn refusing_refuses() {
    let b = Backend::refusing();
    for _ in 0..3 {
        let err = try_connect(b.addr()).expect_err("nothing listens");
        assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
    }
    assert_eq!((b.accepted(), b.active()), (0, 0));
}

#[test]
fn http_keeps_alive_until_close() {
    let b = Backend::http("s3");
    let c = connect(b.addr());
    for _ in 0..3 {
        let reply = http_get(&c, "/", true);
        assert_eq!((reply.status, reply.body.as_str()), (200, "s3\n"));
        assert_eq!(reply.header("connection"), None);
    }
    // Pipelined, with a request body to skip.
    (&c).write_all(b"POST /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET /b HTTP/1.1\r\n\r\n")
        .unwrap();
    for _ in 0..2 {
        assert_eq!(read_line(&c), "HTTP/1.1 200 OK\r");
        while read_line(&c) != "\r" {}
        let mut body = [0u8; 3];
        (&c).read_exact(&mut body).unwrap();
        assert_eq!(&body, b"s3\n");
    }
    let reply = http_get(&c, "/", false);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("Connection"), Some("close"));
    assert_eq!(read_to_eof(&c, DEADLINE), b"");
    assert_eq!(b.accepted(), 1);
    wait_until(DEADLINE, "the http connection to close", || b.active() == 0);
}

#[test]
fn http_answers_garbage_with_400() {
    let b = Backend::http("s4");
    for garbage in [
        &b"hello\r\n\r\n"[..],
        b"GET / HTTP/9\r\n\r\n",
        b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nno colon\r\n\r\n",
        b"\xff\xfe / HTTP/1.1\r\n\r\n",
    ] {
        let mut c = connect(b.addr());
        c.write_all(garbage).unwrap();
        let reply = String::from_utf8(read_to_eof(&c, DEADLINE)).unwrap();
        assert!(
            reply.starts_with("HTTP/1.1 400 "),
            "{garbage:?} got {reply:?}"
        );
    }
    // An endless head is cut off too.
    let c = connect(b.addr());
    let line = vec![b'a'; MAX_LINE + 1];
    let _ = (&c).write_all(&line);
    let reply = read_to_eof(&c, DEADLINE);
    assert!(reply.starts_with(b"HTTP/1.1 400 "));
}

#[test]
fn drop_stops_promptly_even_with_open_connections() {
    let b = Backend::tagged("s1");
    let addr = b.addr();
    let idle = connect(addr);
    assert_eq!(read_line(&idle), "s1");
    let slow = Backend::slow_reader(1);
    let stuck = connect(slow.addr());
    (&stuck).write_all(b"more than one byte").unwrap();
    wait_until(DEADLINE, "the slow reader to accept", || slow.active() == 1);

    let start = Instant::now();
    drop(b);
    slow.stop();
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "stopping took {:?}",
        start.elapsed()
    );
    // The open connections were shut down; the port no longer accepts.
    let mut buf = [0u8; 16];
    assert!(matches!((&idle).read(&mut buf), Ok(0) | Err(_)));
    assert!(matches!((&stuck).read(&mut buf), Ok(0) | Err(_)));
    assert!(try_connect(addr).is_err());
}

#[test]
#[should_panic(expected = "timed out after 50ms waiting for the impossible")]
fn wait_until_panics_with_what() {
    wait_until(Duration::from_millis(50), "the impossible", || false);
}

/// A connection from source address `src` (another 127.0.0.x; port chosen by the kernel).
pub fn connect_from(src: std::net::Ipv4Addr, addr: SocketAddr) -> TcpStream {
    try_connect_from(src, addr).unwrap_or_else(|e| panic!("connect from {src} to {addr}: {e}"))
}

/// `connect_from` that returns the error: a connection rule's refusal is an RST that may
/// come before connect() returns (an error) or before the read timeout is set (then reads
/// fail at once).
pub fn try_connect_from(src: std::net::Ipv4Addr, addr: SocketAddr) -> io::Result<TcpStream> {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    s.bind(&SocketAddr::new(std::net::IpAddr::V4(src), 0).into())?;
    s.connect_timeout(&addr.into(), IO_TIMEOUT)?;
    let s: TcpStream = s.into();
    let _ = s.set_read_timeout(Some(IO_TIMEOUT));
    Ok(s)
}

/// Sends one command line to a UNIX stats socket and returns the whole answer.
pub fn cli(path: &std::path::Path, line: &str) -> String {
    use std::io::{Read as _, Write as _};
    let mut s = std::os::unix::net::UnixStream::connect(path).expect("stats socket");
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.write_all(format!("{line}\n").as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}
