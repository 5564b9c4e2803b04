//! The listening sockets the master keeps from one worker process to the next. Every start
//! binds through [`Sockets::bind`]: a socket the previous worker already has for the same
//! address, options and rank is handed over again (a duplicate of the same socket), the
//! others are bound. So a reload closes no socket that the configuration still uses: the
//! connections waiting in its queue when the old worker stops accepting are accepted by the
//! new one, and none is refused (a socket of its own per worker, as SO_REUSEPORT alone gives,
//! resets them).

use std::net::{SocketAddr, TcpListener};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use crate::config::Model;
use crate::supervisor::{self, Binder, Bound};
use crate::sys::socket::{self, ListenOpts};

/// The sockets of one start (duplicates of the worker's): TCP ones by address, options and
/// rank, stats sockets by path.
#[derive(Debug, Default)]
pub struct Sockets {
    tcp: Vec<Kept>,
    unix: Vec<(PathBuf, UnixListener)>,
}

#[derive(Debug)]
struct Kept {
    addr: SocketAddr,
    opts: ListenOpts,
    /// Which of the sockets of this address (one per worker thread with SO_REUSEPORT).
    nth: usize,
    sock: TcpListener,
}

impl Sockets {
    /// Binds what `model` needs, reusing this set's sockets where they match; returns the
    /// start and its own set. `self` is left as it was, so a start that fails changes nothing
    /// (a stats socket kept by path is not even unlinked).
    pub fn bind(&self, model: &Model) -> Result<(Bound, Sockets), String> {
        let mut reuse = Reuse {
            from: self,
            next: Sockets::default(),
        };
        let bound = supervisor::bind(model, &mut reuse)?;
        Ok((bound, reuse.next))
    }

    /// How many sockets the set holds.
    pub fn len(&self) -> usize {
        self.tcp.len() + self.unix.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A kept socket for the same address, rank and options; the backlog may differ (it
    /// follows maxconn and the number of listeners, and is set again on reuse).
    fn find(&self, addr: SocketAddr, opts: &ListenOpts, nth: usize) -> Option<&TcpListener> {
        let same = |kept: &ListenOpts| {
            ListenOpts {
                backlog: opts.backlog,
                ..kept.clone()
            } == *opts
        };
        self.tcp
            .iter()
            .find(|k| k.addr == addr && k.nth == nth && same(&k.opts))
            .map(|k| &k.sock)
    }
}

/// The [`Binder`] of a start in master-worker mode: `from`'s sockets where they match, new
/// ones otherwise; a duplicate of each goes to `next`.
struct Reuse<'a> {
    from: &'a Sockets,
    next: Sockets,
}

impl Binder for Reuse<'_> {
    fn tcp(
        &mut self,
        addr: SocketAddr,
        opts: &ListenOpts,
        nth: usize,
    ) -> std::io::Result<TcpListener> {
        let sock = match self.from.find(addr, opts, nth) {
            Some(kept) => {
                let sock = kept.try_clone()?;
                socket::set_backlog(&sock, opts.backlog)?;
                sock
            }
            None => socket::listen(addr, opts)?,
        };
        self.next.tcp.push(Kept {
            addr,
            opts: opts.clone(),
            nth,
            sock: sock.try_clone()?,
        });
        Ok(sock)
    }

    fn unix(&mut self, path: &Path) -> std::io::Result<UnixListener> {
        let sock = match self.from.unix.iter().find(|(p, _)| p == path) {
            Some((_, kept)) => kept.try_clone()?,
            None => socket::listen_unix(path)?,
        };
        self.next.unix.push((path.to_path_buf(), sock.try_clone()?));
        Ok(sock)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    fn model(text: &str) -> std::sync::Arc<Model> {
        let mut ast = crate::config::ast::Ast::default();
        let mut diags = crate::config::Diags::default();
        crate::config::parse_text(
            "t.cfg",
            text,
            &crate::config::lexer::ProcessEnv,
            &mut ast,
            &mut diags,
        );
        let (m, more) = crate::config::validate::build(&ast, &Default::default());
        assert!(
            !diags.has_errors() && !more.has_errors(),
            "{diags:?} {more:?}"
        );
        std::sync::Arc::new(m.unwrap())
    }

    fn inode(fd: i32) -> String {
        std::fs::read_link(format!("/proc/self/fd/{fd}"))
            .unwrap()
            .display()
            .to_string()
    }

    #[test]
    fn a_second_start_reuses_the_same_sockets_and_binds_only_new_ones() {
        let free = || {
            std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        };
        let (port, port2) = (free(), free());
        let cfg = |extra: &str| {
            format!(
                "global\n    nbthread 2\ndefaults\n    mode tcp\n    timeout client 1s\n    \
                 timeout server 1s\n    timeout connect 1s\nfrontend fe\n    bind 127.0.0.1:{port}\n    \
                 default_backend be\n{extra}backend be\n    server s 127.0.0.1:9\n"
            )
        };
        let none = Sockets::default();
        let (first, kept) = none.bind(&model(&cfg(""))).unwrap();
        assert_eq!(kept.len(), 2, "one socket per thread");
        let first_fds: Vec<String> = first.fds().into_iter().map(inode).collect();
        // The same configuration plus a frontend: the two sockets come back, two are new.
        let more = format!("frontend fe2\n    bind 127.0.0.1:{port2}\n    default_backend be\n");
        let (second, next) = kept.bind(&model(&cfg(&more))).unwrap();
        assert_eq!(next.len(), 4);
        let second_fds: Vec<String> = second.fds().into_iter().map(inode).collect();
        assert_eq!(second_fds.len(), 4);
        for s in &first_fds {
            assert!(second_fds.contains(s), "{s} not reused: {second_fds:?}");
        }
        // The set that was bound from is untouched.
        assert_eq!(kept.len(), 2);
        let kept_fds: Vec<String> = kept.tcp.iter().map(|k| inode(k.sock.as_raw_fd())).collect();
        assert_eq!(kept_fds.len(), 2);
    }
}
