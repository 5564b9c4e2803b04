//! A standalone demo backend to put behind sluice: an HTTP/1.1 server (the default) answering
//! every request with `200 OK` and `hello from NAME`, or a tagged TCP server (`--mode tagged`)
//! that writes `NAME` on a line and then echoes. It owns its command line, its listener and one
//! thread per connection; std only. It prints `backend NAME listening on ADDR` once ready (the
//! real port when asked for port 0), stops on SIGTERM/SIGINT (default disposition) and answers
//! malformed requests with a 400 and a close instead of panicking.
//!
//! ```text
//! cargo run --release --example backend -- --name s1 --listen 127.0.0.1:9001 [--mode http|tagged]
//! ```

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::ExitCode;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

const USAGE: &str = "usage: backend [--name NAME] [--listen ADDR:PORT] [--mode http|tagged]\n\
                     \n  --name NAME      name in answers (default: backend)\
                     \n  --listen ADDR    address to listen on (default: 127.0.0.1:9001; port 0 picks one)\
                     \n  --mode MODE      http (default): 200 OK with \"hello from NAME\", keep-alive\
                     \n                   tagged: writes \"NAME\\n\", then echoes until EOF";

/// Longest request head accepted before answering 400.
const MAX_HEAD: usize = 16 * 1024;

/// How long an idle keep-alive HTTP connection is kept.
const HTTP_IDLE: Duration = Duration::from_secs(60);

fn main() -> ExitCode {
    let opts = match Opts::parse(std::env::args().skip(1)) {
        Ok(Some(opts)) => opts,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(msg) => {
            eprintln!("backend: {msg}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let listener = match TcpListener::bind(opts.listen) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("backend: cannot listen on {}: {e}", opts.listen);
            return ExitCode::FAILURE;
        }
    };
    let addr = listener.local_addr().unwrap_or(opts.listen);
    {
        let mut out = io::stdout().lock();
        let _ = writeln!(out, "backend {} listening on {addr}", opts.name);
        let _ = out.flush();
    }
    let server = Arc::new(Server::new(&opts));
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                let server = Arc::clone(&server);
                // If no thread can be spawned the connection is dropped (closed).
                let _ = thread::Builder::new().spawn(move || server.serve(stream));
            }
            // EMFILE, ECONNABORTED...: back off briefly and keep serving.
            Err(_) => thread::sleep(Duration::from_millis(10)),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Http,
    Tagged,
}

struct Opts {
    name: String,
    listen: SocketAddr,
    mode: Mode,
}

impl Opts {
    /// The options, or None when help was asked for.
    fn parse(mut args: impl Iterator<Item = String>) -> Result<Option<Opts>, String> {
        let mut opts = Opts {
            name: "backend".to_owned(),
            listen: SocketAddr::from(([127, 0, 0, 1], 9001)),
            mode: Mode::Http,
        };
        while let Some(arg) = args.next() {
            let (flag, mut inline) = match arg.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
                _ => (arg, None),
            };
            let mut value = || {
                inline
                    .take()
                    .or_else(|| args.next())
                    .ok_or_else(|| format!("'{flag}' needs a value"))
            };
            match flag.as_str() {
                "-h" | "--help" => return Ok(None),
                "--name" => {
                    let name = value()?;
                    if name.is_empty() || name.contains(['\r', '\n']) {
                        return Err(format!("invalid name {name:?}"));
                    }
                    opts.name = name;
                }
                "--listen" => {
                    let v = value()?;
                    opts.listen = v
                        .parse()
                        .map_err(|_| format!("invalid listen address '{v}' (ADDR:PORT)"))?;
                }
                "--mode" => {
                    opts.mode = match value()?.as_str() {
                        "http" => Mode::Http,
                        "tagged" => Mode::Tagged,
                        other => return Err(format!("unknown mode '{other}' (http, tagged)")),
                    };
                }
                _ => return Err(format!("unknown option '{flag}'")),
            }
        }
        Ok(Some(opts))
    }
}

struct Server {
    mode: Mode,
    /// The complete 200 response (HTTP) or the name line (tagged).
    greeting: Vec<u8>,
    /// The 200 response with `Connection: close`.
    greeting_close: Vec<u8>,
}

impl Server {
    fn new(opts: &Opts) -> Server {
        let body = format!("hello from {}\n", opts.name);
        let reply = |extra: &str| {
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n{extra}\r\n{body}",
                body.len()
            )
            .into_bytes()
        };
        match opts.mode {
            Mode::Http => Server {
                mode: Mode::Http,
                greeting: reply(""),
                greeting_close: reply("Connection: close\r\n"),
            },
            Mode::Tagged => Server {
                mode: Mode::Tagged,
                greeting: format!("{}\n", opts.name).into_bytes(),
                greeting_close: Vec::new(),
            },
        }
    }

    /// Serves one connection; every error just ends it.
    fn serve(&self, stream: TcpStream) {
        let _ = stream.set_nodelay(true);
        let _ = match self.mode {
            Mode::Http => self.serve_http(stream),
            Mode::Tagged => self.serve_tagged(stream),
        };
    }

    fn serve_tagged(&self, mut stream: TcpStream) -> io::Result<()> {
        stream.write_all(&self.greeting)?;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = read(&mut stream, &mut buf)?;
            if n == 0 {
                return stream.shutdown(Shutdown::Write);
            }
            stream.write_all(&buf[..n])?;
        }
    }

    fn serve_http(&self, mut stream: TcpStream) -> io::Result<()> {
        stream.set_read_timeout(Some(HTTP_IDLE))?;
        stream.set_write_timeout(Some(HTTP_IDLE))?;
        let mut buf: Vec<u8> = Vec::new();
        let mut chunk = vec![0u8; 16 * 1024];
        loop {
            let head_len = loop {
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break i + 4;
                }
                if buf.len() > MAX_HEAD {
                    return bad_request(&mut stream);
                }
                match read(&mut stream, &mut chunk)? {
                    0 => return Ok(()),
                    n => buf.extend_from_slice(&chunk[..n]),
                }
            };
            let Ok(head) = parse_head(&buf[..head_len]) else {
                return bad_request(&mut stream);
            };
            buf.drain(..head_len);
            // Skip the request body: first what is buffered, then the rest from the socket.
            let buffered = head.content_length.min(buf.len() as u64) as usize;
            buf.drain(..buffered);
            let mut left = head.content_length - buffered as u64;
            while left > 0 {
                let n = left.min(chunk.len() as u64) as usize;
                match read(&mut stream, &mut chunk[..n])? {
                    0 => return Ok(()),
                    n => left -= n as u64,
                }
            }
            if head.close {
                stream.write_all(&self.greeting_close)?;
                return stream.shutdown(Shutdown::Write);
            }
            stream.write_all(&self.greeting)?;
        }
    }
}

/// What the server needs from a request head.
struct RequestHead {
    content_length: u64,
    close: bool,
}

/// Parses a request head (through the blank line); an error means 400.
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

/// Answers 400 and closes. Unread input is drained briefly first: closing with unread data
/// sends a reset that could overtake the answer.
fn bad_request(stream: &mut TcpStream) -> io::Result<()> {
    stream
        .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?;
    stream.shutdown(Shutdown::Write)?;
    stream.set_read_timeout(Some(Duration::from_millis(200)))?;
    let mut buf = [0u8; 4096];
    for _ in 0..256 {
        if read(stream, &mut buf)? == 0 {
            break;
        }
    }
    Ok(())
}

/// One read, retrying on EINTR.
fn read(stream: &mut TcpStream, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match stream.read(buf) {
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}
