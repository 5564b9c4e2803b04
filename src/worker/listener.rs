//! A worker's listening socket for one address of one `bind` line. With SO_REUSEPORT every
//! worker owns its own socket for the address and the kernel spreads new connections
//! across them. A listener can be paused (deregistered: maxconn reached, no fd left) and
//! resumed, or closed for good (soft stop).

use std::io;
use std::net::SocketAddr;

use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Registry, Token};

use crate::config::model::FrontendId;

pub struct Listener {
    sock: Option<TcpListener>,
    pub frontend: FrontendId,
    pub addr: SocketAddr,
    paused: bool,
    /// Disabled by the runtime API (`disable frontend`): stays paused until enabled.
    pub disabled: bool,
    /// `bind ... accept-proxy`: every connection starts with a PROXY header.
    pub accept_proxy: bool,
}

impl Listener {
    pub fn new(
        sock: std::net::TcpListener,
        frontend: FrontendId,
        accept_proxy: bool,
    ) -> io::Result<Listener> {
        sock.set_nonblocking(true)?;
        let addr = sock.local_addr()?;
        Ok(Listener {
            sock: Some(TcpListener::from_std(sock)),
            frontend,
            addr,
            paused: false,
            disabled: false,
            accept_proxy,
        })
    }

    /// The socket's descriptor, until it is closed.
    pub fn fd(&self) -> Option<std::os::fd::RawFd> {
        use std::os::fd::AsRawFd;
        self.sock.as_ref().map(AsRawFd::as_raw_fd)
    }

    pub fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        match self.sock.as_mut() {
            Some(s) => registry.register(s, token, Interest::READABLE),
            None => Ok(()),
        }
    }

    pub fn accept(&mut self) -> io::Result<(TcpStream, SocketAddr)> {
        match self.sock.as_ref() {
            Some(s) => s.accept(),
            None => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    /// Stops polling the socket; connections wait in the kernel backlog.
    pub fn pause(&mut self, registry: &Registry) {
        if let (Some(s), false) = (self.sock.as_mut(), self.paused) {
            let _ = registry.deregister(s);
            self.paused = true;
        }
    }

    /// Paused for a reason that passes (maxconn, fds), not disabled by the operator.
    pub fn is_paused(&self) -> bool {
        self.paused && self.sock.is_some() && !self.disabled
    }

    pub fn resume(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        if let (Some(s), true) = (self.sock.as_mut(), self.paused) {
            registry.register(s, token, Interest::READABLE)?;
            self.paused = false;
        }
        Ok(())
    }

    /// Closes the socket for good: new connections go to the other processes or are refused.
    pub fn close(&mut self, registry: &Registry) {
        if let Some(mut s) = self.sock.take() {
            if !self.paused {
                let _ = registry.deregister(&mut s);
            }
        }
    }
}
