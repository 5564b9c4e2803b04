//! Kernel pipes as the zero-copy buffer between a client socket and a server socket: [`Pipe`]
//! owns both ends of one pipe and moves bytes with splice(2) (socket -> pipe -> socket), keeping
//! count of the bytes it holds; [`PipePool`] is a worker's bounded set of pipes, reused only when
//! they come back empty. When no pipe can be had the caller falls back to read/write buffers.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::{fcntl, splice, FcntlArg, OFlag, SpliceFFlags};
use nix::unistd::pipe2;

/// Flags of every splice: move pages rather than copy where possible, never sleep.
const SPLICE_FLAGS: SpliceFFlags =
    SpliceFFlags::SPLICE_F_MOVE.union(SpliceFFlags::SPLICE_F_NONBLOCK);

/// One nonblocking, close-on-exec kernel pipe and the number of bytes it currently holds.
///
/// The count is kept by [`Pipe::splice_in`] and [`Pipe::splice_out`], so it is exact as long as
/// only they touch the pipe (nothing else can: both ends are private).
#[derive(Debug)]
pub struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
    capacity: usize,
    len: usize,
}

impl Pipe {
    /// Creates a pipe with pipe2(O_NONBLOCK | O_CLOEXEC).
    ///
    /// With `Some(size)` it asks for that capacity with F_SETPIPE_SZ; the kernel rounds it up to
    /// a power-of-two number of pages (so it may also shrink the pipe below the default 64 KiB,
    /// down to one page). EPERM (above /proc/sys/fs/pipe-max-size or the user's pipe quota
    /// without CAP_SYS_RESOURCE) keeps the default size. The real capacity is then read back with
    /// F_GETPIPE_SZ.
    pub fn new(size: Option<usize>) -> io::Result<Pipe> {
        let (read, write) = pipe2(OFlag::O_NONBLOCK | OFlag::O_CLOEXEC)?;
        if let Some(size) = size {
            let size = libc::c_int::try_from(size).map_err(|_| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("pipe size {size} is too large"),
                )
            })?;
            match fcntl(write.as_raw_fd(), FcntlArg::F_SETPIPE_SZ(size)) {
                Ok(_) | Err(Errno::EPERM) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let capacity = fcntl(write.as_raw_fd(), FcntlArg::F_GETPIPE_SZ)?;
        let capacity = usize::try_from(capacity)
            .map_err(|_| io::Error::other(format!("F_GETPIPE_SZ returned {capacity}")))?;
        Ok(Pipe {
            read,
            write,
            capacity,
            len: 0,
        })
    }

    /// The pipe's capacity in bytes, as read back from the kernel.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Bytes currently held in the pipe.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the pipe holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes that may still be spliced in: `capacity() - len()`.
    pub fn room(&self) -> usize {
        self.capacity - self.len
    }

    /// Moves up to `min(max, room())` bytes from the socket `from` into the pipe.
    ///
    /// Returns `Ok(0)` at end of stream (the peer shut down its write side). An error of kind
    /// [`io::ErrorKind::WouldBlock`] has two possible causes that the kernel does not tell
    /// apart: the socket has nothing to read, or the pipe is full (a pipe holds a fixed number
    /// of page slots, and socket data can fill them before the byte capacity is reached). So:
    /// with [`Pipe::is_empty`] true the socket is drained and the caller waits for readiness;
    /// otherwise the caller must flush with [`Pipe::splice_out`] and call again before relying
    /// on a readiness event. A call with no room left also returns `WouldBlock` without a
    /// system call. `max == 0` is a caller bug and returns [`io::ErrorKind::InvalidInput`].
    /// EINTR is retried.
    pub fn splice_in(&mut self, from: BorrowedFd<'_>, max: usize) -> io::Result<usize> {
        if max == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "splice_in with max 0",
            ));
        }
        let want = max.min(self.room());
        if want == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        loop {
            match splice(from, None, &self.write, None, want, SPLICE_FLAGS) {
                Ok(n) => {
                    debug_assert!(n <= want, "splice moved {n} bytes, asked for {want}");
                    self.len += n;
                    return Ok(n);
                }
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Moves up to `min(max, len())` bytes from the pipe to the socket `to`.
    ///
    /// Returns `Ok(0)` without a system call when the pipe is empty or `max == 0`. Since the pipe
    /// is known to hold data, [`io::ErrorKind::WouldBlock`] always means the socket's send buffer
    /// is full. EINTR is retried; EPIPE / ECONNRESET come back as errors (SIGPIPE must be
    /// ignored, see [`crate::sys::signal::ignore_sigpipe`]).
    pub fn splice_out(&mut self, to: BorrowedFd<'_>, max: usize) -> io::Result<usize> {
        let want = max.min(self.len);
        if want == 0 {
            return Ok(0);
        }
        loop {
            match splice(&self.read, None, to, None, want, SPLICE_FLAGS) {
                Ok(n) => {
                    debug_assert!(n <= want, "splice moved {n} bytes, asked for {want}");
                    self.len -= n;
                    return Ok(n);
                }
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// A worker's bounded pool of pipes (one pool per worker thread, so no locking).
///
/// At most `max` pipes exist at once through the pool (taken plus free). Every pipe taken must
/// come back through [`PipePool::give_back`], also on error paths: a pipe dropped elsewhere
/// stays counted as in use and lowers the pool's effective cap.
#[derive(Debug)]
pub struct PipePool {
    max: usize,
    size: Option<usize>,
    free: Vec<Pipe>,
    in_use: usize,
}

impl PipePool {
    /// An empty pool that will hold at most `max` pipes, each created with `Pipe::new(size)`.
    pub fn new(max: usize, size: Option<usize>) -> PipePool {
        PipePool {
            max,
            size,
            free: Vec::new(),
            in_use: 0,
        }
    }

    /// A pipe for a new connection: a free one if any, else a new one while fewer than `max`
    /// exist. `None` when the cap is reached or the pipe cannot be created (EMFILE, ENFILE,
    /// ENOMEM ...): the caller then forwards through read/write buffers instead.
    pub fn take(&mut self) -> Option<Pipe> {
        if let Some(pipe) = self.free.pop() {
            debug_assert!(pipe.is_empty());
            self.in_use += 1;
            return Some(pipe);
        }
        if self.in_use >= self.max {
            return None;
        }
        match Pipe::new(self.size) {
            Ok(pipe) => {
                self.in_use += 1;
                Some(pipe)
            }
            Err(e) => {
                log::debug!("cannot create a pipe, falling back to buffers: {e}");
                None
            }
        }
    }

    /// Returns a pipe taken from this pool. An empty pipe is kept for reuse while the pool is
    /// under its cap; a pipe still holding bytes (a connection closed mid-transfer) is closed,
    /// since those bytes belong to nobody.
    pub fn give_back(&mut self, pipe: Pipe) {
        debug_assert!(
            self.in_use > 0,
            "give_back of a pipe this pool did not hand out"
        );
        self.in_use = self.in_use.saturating_sub(1);
        if pipe.is_empty() && self.in_use + self.free.len() < self.max {
            self.free.push(pipe);
        }
    }

    /// Pipes handed out and not yet given back.
    pub fn in_use(&self) -> usize {
        self.in_use
    }

    /// Empty pipes waiting for reuse.
    pub fn free_len(&self) -> usize {
        self.free.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mio::{Events, Interest, Poll, Token};
    use std::io::{Read, Write};
    use std::net::{Shutdown, TcpListener, TcpStream};
    use std::os::fd::AsFd;
    use std::time::{Duration, Instant};

    const DEADLINE: Duration = Duration::from_secs(20);

    /// A connected pair on 127.0.0.1: (client side, accepted side).
    fn tcp_pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        (client, accepted)
    }

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 % 251) as u8).collect()
    }

    /// Splices everything from `src` to `dst` through `pipe` the way a worker does: edge
    /// triggered, readiness kept per side, WouldBlock handled per the splice_in contract.
    fn pump(pipe: &mut Pipe, src: &mut mio::net::TcpStream, dst: &mut mio::net::TcpStream) {
        const SRC: Token = Token(0);
        const DST: Token = Token(1);
        let mut poll = Poll::new().unwrap();
        let mut events = Events::with_capacity(8);
        poll.registry()
            .register(src, SRC, Interest::READABLE)
            .unwrap();
        poll.registry()
            .register(dst, DST, Interest::WRITABLE)
            .unwrap();
        let deadline = Instant::now() + DEADLINE;
        let (mut readable, mut writable, mut eof) = (true, true, false);
        loop {
            let mut progress = false;
            while readable && !eof {
                match pipe.splice_in(src.as_fd(), usize::MAX) {
                    Ok(0) => eof = true,
                    Ok(_) => progress = true,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        readable = !pipe.is_empty();
                        break;
                    }
                    Err(e) => panic!("splice_in: {e}"),
                }
                assert!(pipe.len() <= pipe.capacity());
            }
            while writable && !pipe.is_empty() {
                match pipe.splice_out(dst.as_fd(), usize::MAX) {
                    Ok(n) => progress |= n > 0,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => writable = false,
                    Err(e) => panic!("splice_out: {e}"),
                }
            }
            if eof && pipe.is_empty() {
                dst.shutdown(Shutdown::Write).unwrap();
                return;
            }
            if progress {
                continue;
            }
            let left = deadline
                .checked_duration_since(Instant::now())
                .expect("pump timed out");
            poll.poll(&mut events, Some(left)).unwrap();
            for event in events.iter() {
                readable |= event.token() == SRC && (event.is_readable() || event.is_read_closed());
                writable |= event.token() == DST && event.is_writable();
            }
        }
    }

    fn transfer(size: Option<usize>, total: usize) {
        let (mut src_writer, src) = tcp_pair();
        let (dst, mut dst_reader) = tcp_pair();
        src.set_nonblocking(true).unwrap();
        dst.set_nonblocking(true).unwrap();
        let mut src = mio::net::TcpStream::from_std(src);
        let mut dst = mio::net::TcpStream::from_std(dst);
        let data = pattern(total);
        let sent = data.clone();
        let writer = std::thread::spawn(move || {
            src_writer.write_all(&sent).unwrap();
            src_writer.shutdown(Shutdown::Write).unwrap();
        });
        let reader = std::thread::spawn(move || {
            let mut got = Vec::with_capacity(total);
            dst_reader.set_read_timeout(Some(DEADLINE)).unwrap();
            dst_reader.read_to_end(&mut got).unwrap();
            got
        });
        let mut pipe = Pipe::new(size).unwrap();
        pump(&mut pipe, &mut src, &mut dst);
        writer.join().unwrap();
        let got = reader.join().unwrap();
        assert_eq!(got.len(), data.len());
        assert!(got == data, "bytes differ");
        // EOF stays EOF.
        assert_eq!(pipe.splice_in(src.as_fd(), 1024).unwrap(), 0);
    }

    #[test]
    fn splices_mebibytes_byte_exact_through_a_default_pipe() {
        transfer(None, 4 * 1024 * 1024 + 123);
    }

    #[test]
    fn splices_mebibytes_byte_exact_through_a_small_and_a_large_pipe() {
        transfer(Some(4096), 1024 * 1024 + 7);
        transfer(Some(1024 * 1024), 8 * 1024 * 1024);
    }

    #[test]
    fn capacity_is_read_back_from_the_kernel() {
        let default = Pipe::new(None).unwrap();
        assert!(default.capacity() >= 4096, "{}", default.capacity());
        assert!(default.is_empty());
        assert_eq!(default.room(), default.capacity());
        // Rounded up to a power-of-two number of pages.
        let asked = 100_000;
        let big = Pipe::new(Some(asked)).unwrap();
        assert!(big.capacity() >= asked || big.capacity() == default.capacity());
        assert!(big.capacity().is_power_of_two());
        // Shrinking is allowed too, down to one page.
        let small = Pipe::new(Some(1)).unwrap();
        assert!(small.capacity() >= 1 && small.capacity() <= default.capacity());
        assert!(Pipe::new(Some(usize::MAX)).is_err());
    }

    #[test]
    fn splice_in_stops_at_capacity_and_reports_would_block_with_data() {
        let (mut writer, reader) = tcp_pair();
        reader.set_nonblocking(true).unwrap();
        let mut pipe = Pipe::new(Some(4096)).unwrap();
        let data = pattern(pipe.capacity() * 4);
        writer.write_all(&data).unwrap();
        let deadline = Instant::now() + DEADLINE;
        // Wait until the pipe has taken some data, then fill it until it refuses more.
        loop {
            match pipe.splice_in(reader.as_fd(), usize::MAX) {
                Ok(n) => assert!(n > 0),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && !pipe.is_empty() => break,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    assert!(Instant::now() < deadline, "no data arrived");
                    std::thread::yield_now();
                }
                Err(e) => panic!("{e}"),
            }
            assert!(pipe.len() <= pipe.capacity());
        }
        let err = pipe.splice_in(reader.as_fd(), 0).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        // Drain into a socket and check the first bytes.
        let (out, mut out_peer) = tcp_pair();
        let held = pipe.len();
        assert_eq!(pipe.splice_out(out.as_fd(), 0).unwrap(), 0);
        assert_eq!(pipe.splice_out(out.as_fd(), usize::MAX).unwrap(), held);
        assert!(pipe.is_empty());
        assert_eq!(pipe.splice_out(out.as_fd(), usize::MAX).unwrap(), 0);
        let mut got = vec![0; held];
        out_peer.read_exact(&mut got).unwrap();
        assert_eq!(got, data[..held]);
    }

    #[test]
    fn pool_respects_its_cap_and_reuses_clean_pipes() {
        let mut pool = PipePool::new(2, None);
        let a = pool.take().unwrap();
        let b = pool.take().unwrap();
        assert!(pool.take().is_none());
        assert_eq!((pool.in_use(), pool.free_len()), (2, 0));
        let a_fd = a.read.as_raw_fd();
        pool.give_back(a);
        assert_eq!((pool.in_use(), pool.free_len()), (1, 1));
        let again = pool.take().unwrap();
        assert_eq!(again.read.as_raw_fd(), a_fd, "free pipe not reused");
        assert!(pool.take().is_none());
        pool.give_back(again);
        pool.give_back(b);
        assert_eq!((pool.in_use(), pool.free_len()), (0, 2));
        let mut empty = PipePool::new(0, None);
        assert!(empty.take().is_none());
    }

    #[test]
    fn pool_drops_a_pipe_that_still_holds_bytes() {
        let (mut writer, reader) = tcp_pair();
        reader.set_nonblocking(true).unwrap();
        writer.write_all(b"leftover").unwrap();
        let mut pool = PipePool::new(4, None);
        let mut dirty = pool.take().unwrap();
        let deadline = Instant::now() + DEADLINE;
        while dirty.is_empty() {
            match dirty.splice_in(reader.as_fd(), usize::MAX) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    assert!(Instant::now() < deadline, "no data arrived");
                    std::thread::yield_now();
                }
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(dirty.len(), 8);
        pool.give_back(dirty);
        assert_eq!((pool.in_use(), pool.free_len()), (0, 0));
        assert!(pool.take().unwrap().is_empty());
    }
}
