//! The byte pump: moves one direction of a connection from its source socket to its
//! destination socket, through a kernel pipe with splice(2) when it can (zero copy) and
//! through a user-space buffer otherwise. It reads only into an empty buffer and drains it
//! fully before reading again, so a connection never holds more than one pipe or buffer per
//! direction, whatever the speed of its peers (backpressure). Bytes left in a pipe are always
//! delivered before the FIN is forwarded. Buffers go back to the worker's pools as soon as
//! they are empty, so idle connections hold none.

use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::time::Instant;

use mio::net::TcpStream;

use crate::sys::pipe::{Pipe, PipePool};

/// One end of a connection as the pump sees it. Readiness is edge-triggered: a flag is set
/// by an event and cleared only when an operation reports WouldBlock.
#[derive(Debug)]
pub struct Side {
    pub sock: TcpStream,
    pub readable: bool,
    pub writable: bool,
    /// The peer sent its FIN (read returned 0).
    pub eof: bool,
    /// The poller saw the peer's FIN (EPOLLRDHUP): a read will reach it even after a short
    /// read, so a short read cannot end the reading.
    pub rdhup: bool,
    /// We shut down our write side towards this peer.
    pub shut: bool,
    /// Last time bytes moved on this socket, for inactivity timeouts.
    pub last: Instant,
}

impl Side {
    pub fn new(sock: TcpStream, now: Instant) -> Side {
        Side {
            sock,
            readable: false,
            writable: false,
            eof: false,
            rdhup: false,
            shut: false,
            last: now,
        }
    }
}

/// Where the bytes of one direction wait between read and write.
enum Buffer {
    Pipe(Pipe),
    Heap {
        buf: Box<[u8]>,
        start: usize,
        end: usize,
    },
}

impl Buffer {
    fn pending(&self) -> usize {
        match self {
            Buffer::Pipe(p) => p.len(),
            Buffer::Heap { start, end, .. } => end - start,
        }
    }
}

/// Per-worker sources of buffers: the pipe pool and a free list of heap buffers.
pub struct Buffers {
    pub pipes: PipePool,
    heap: Vec<Box<[u8]>>,
    bufsize: usize,
}

impl Buffers {
    pub fn new(pipes: PipePool, bufsize: usize) -> Buffers {
        Buffers {
            pipes,
            heap: Vec::new(),
            bufsize,
        }
    }

    /// Heap buffers kept for reuse at most.
    const FREE_HEAP: usize = 256;

    fn take(&mut self, splice: bool) -> Buffer {
        if splice {
            if let Some(p) = self.pipes.take() {
                return Buffer::Pipe(p);
            }
        }
        let buf = self
            .heap
            .pop()
            .unwrap_or_else(|| vec![0u8; self.bufsize].into_boxed_slice());
        Buffer::Heap {
            buf,
            start: 0,
            end: 0,
        }
    }

    fn give_back(&mut self, b: Buffer) {
        match b {
            Buffer::Pipe(p) => self.pipes.give_back(p),
            Buffer::Heap { buf, .. } => {
                if self.heap.len() < Self::FREE_HEAP {
                    self.heap.push(buf);
                }
            }
        }
    }
}

/// One direction of a connection.
#[derive(Default)]
pub struct Flow {
    buf: Option<Buffer>,
    /// splice(2) is allowed for this direction (configuration).
    pub splice: bool,
    /// A read filled a whole buffer: this direction carries bulk data, so it splices from
    /// now on. Small exchanges stay on read/write, which costs fewer syscalls than a pipe
    /// (HAProxy's splice-auto makes the same call).
    bulk: bool,
    /// Bytes delivered to the destination.
    pub bytes: u64,
}

impl std::fmt::Debug for Flow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Flow")
            .field("pending", &self.pending())
            .field("splice", &self.splice)
            .field("bulk", &self.bulk)
            .field("bytes", &self.bytes)
            .finish()
    }
}

/// Why a direction stopped for now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pumped {
    /// Waiting for readiness (or finished): nothing more to do until the next event.
    Blocked,
    /// The budget ran out while there was more to move: call again soon.
    Yielded,
}

/// A failed socket operation, by side.
#[derive(Debug)]
pub enum PumpError {
    Read(io::Error),
    Write(io::Error),
}

impl std::fmt::Display for PumpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PumpError::Read(e) => write!(f, "read: {e}"),
            PumpError::Write(e) => write!(f, "write: {e}"),
        }
    }
}

impl Flow {
    pub fn new(splice: bool) -> Flow {
        Flow {
            buf: None,
            splice,
            bulk: false,
            bytes: 0,
        }
    }

    /// Bytes read but not yet written.
    pub fn pending(&self) -> usize {
        self.buf.as_ref().map_or(0, Buffer::pending)
    }

    /// True once the source's FIN has been forwarded (nothing more will move).
    pub fn finished(&self, src: &Side, dst: &Side) -> bool {
        src.eof && self.pending() == 0 && dst.shut
    }

    /// Queues `bytes` to be written before anything read from the source (a PROXY
    /// header). The flow must be empty, as it is before forwarding starts.
    pub fn preload(&mut self, bytes: &[u8], bufs: &mut Buffers) {
        debug_assert_eq!(self.pending(), 0);
        let mut b = bufs.take(false);
        if let Buffer::Heap { buf, start, end } = &mut b {
            let n = bytes.len().min(buf.len());
            buf[..n].copy_from_slice(&bytes[..n]);
            *start = 0;
            *end = n;
        }
        if let Some(old) = self.buf.replace(b) {
            bufs.give_back(old);
        }
    }

    /// Returns this direction's buffer to the pools (on close).
    pub fn release(&mut self, bufs: &mut Buffers) {
        if let Some(b) = self.buf.take() {
            bufs.give_back(b);
        }
    }

    /// Moves bytes from `src` to `dst` until both would block, the source is finished, or
    /// `budget` bytes have been read.
    pub fn pump(
        &mut self,
        src: &mut Side,
        dst: &mut Side,
        bufs: &mut Buffers,
        budget: &mut usize,
        now: Instant,
    ) -> Result<Pumped, PumpError> {
        loop {
            if self.pending() > 0 {
                if !dst.writable {
                    return Ok(Pumped::Blocked);
                }
                let want = self.pending();
                match self.write_some(dst) {
                    Ok(n) => {
                        self.bytes += n as u64;
                        dst.last = now;
                        if n < want && !self.is_pipe() {
                            // A short write() means the socket buffer is full: wait for the
                            // next writable edge instead of trying again for EAGAIN.
                            dst.writable = false;
                            return Ok(Pumped::Blocked);
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        dst.writable = false;
                        return Ok(Pumped::Blocked);
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(PumpError::Write(e)),
                }
                continue;
            }
            // Empty: give the buffer back so idle connections hold none.
            self.release(bufs);
            if src.eof {
                if !dst.shut {
                    dst.shut = true;
                    // When the other direction is already over (its source sent a FIN that
                    // was forwarded), the connection closes now and close() sends this FIN:
                    // spare the shutdown syscall.
                    let other_done = dst.eof && src.shut;
                    if !other_done {
                        if let Err(e) = crate::sys::socket::shutdown_write(dst.sock.as_fd()) {
                            return Err(PumpError::Write(e));
                        }
                    }
                }
                return Ok(Pumped::Blocked);
            }
            if !src.readable {
                return Ok(Pumped::Blocked);
            }
            if *budget == 0 {
                return Ok(Pumped::Yielded);
            }
            let mut buf = bufs.take(self.splice && self.bulk);
            let r = read_into(&mut buf, src, *budget);
            self.buf = Some(buf);
            match r {
                Ok((0, _)) => src.eof = true,
                Ok((n, room)) => {
                    *budget = budget.saturating_sub(n);
                    src.last = now;
                    if n == room {
                        self.bulk = true;
                    }
                    if n < room && !self.is_pipe() && !src.rdhup {
                        // A short read() drained the socket; the next arrival raises a new
                        // edge, so skip the read that would only return EAGAIN. Not for
                        // splice: a pipe can run out of page slots before bytes, so a short
                        // splice says nothing about the socket.
                        src.readable = false;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => src.readable = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(PumpError::Read(e)),
            }
        }
    }

    fn is_pipe(&self) -> bool {
        matches!(self.buf, Some(Buffer::Pipe(_)))
    }

    fn write_some(&mut self, dst: &mut Side) -> io::Result<usize> {
        match self.buf.as_mut() {
            Some(Buffer::Pipe(p)) => p.splice_out(dst.sock.as_fd(), p.len()),
            Some(Buffer::Heap { buf, start, end }) => {
                let n = dst.sock.write(&buf[*start..*end])?;
                *start += n;
                if start == end {
                    *start = 0;
                    *end = 0;
                }
                Ok(n)
            }
            None => Ok(0),
        }
    }
}

/// Reads once from `src` into an empty buffer, at most `max` bytes (at least one page).
/// Returns the bytes read and how many were asked for.
fn read_into(buf: &mut Buffer, src: &mut Side, max: usize) -> io::Result<(usize, usize)> {
    match buf {
        Buffer::Pipe(p) => {
            let room = p.capacity().min(max.max(4_096));
            p.splice_in(src.sock.as_fd(), room).map(|n| (n, room))
        }
        Buffer::Heap { buf, start, end } => {
            debug_assert_eq!(start, end);
            let room = buf.len().min(max.max(4_096));
            let n = src.sock.read(&mut buf[..room])?;
            *start = 0;
            *end = n;
            Ok((n, room))
        }
    }
}
