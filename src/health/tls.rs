//! TLS for health checks, and nothing else: sluice forwards traffic as bytes (splice) and
//! never terminates or originates TLS on the data path. A check connection that asks for TLS
//! (`check-ssl`, `http-check connect ssl`, `tcp-check connect ssl`) runs its script through a
//! rustls client session; this file decides which connects speak TLS ([`params`]), builds
//! their client configurations ([`Factory`], [`Connector`]), and moves bytes between a
//! non-blocking socket and the session ([`Session`]) for the health thread's event loop
//! (`mod.rs`). Nothing here blocks, spawns or panics on what a server sends.
//!
//! HAProxy 2.6's rules, which sluice follows:
//! - `verify none` accepts any certificate. `verify required` (the default unless the global
//!   `ssl-server-verify none`) wants a chain to a CA of `ca-file`, then checks the
//!   certificate's names against the SNI sent if any, else against `verifyhost` if set, else
//!   not at all. The handshake signature is always checked.
//! - A check sends SNI only when `check-sni` (implicit connect, `connect default`) or
//!   `connect ... sni` names it; ALPN likewise with `check-alpn` and `connect ... alpn`.
//! - Any failure before the handshake completes is HAProxy's "SSL handshake failure"
//!   (layer 6), except a certificate whose names do not match: "... different from the
//!   expected one" when the name was the SNI, "... from the configured one" for
//!   `verifyhost`. The detail (rustls's reason) goes to the debug log.
//!
//! Every check makes a full handshake: sessions are not resumed, so every check verifies the
//! certificate the server presents now.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::IpAddr;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{verify_server_cert_signed_by_trust_anchor, verify_server_name, Resumption};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{
    CertificateError, ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore,
    SignatureScheme,
};

use super::protocol::Step;
use crate::config::model::{CaFile, CheckTls, Verify};

/// HAProxy's words for a handshake that failed (`CO_ER_SSL_HANDSHAKE`).
pub const HANDSHAKE_FAILURE: &str = "SSL handshake failure";
/// HAProxy's words for a certificate whose names do not match the SNI sent
/// (`CO_ER_SSL_MISMATCH_SNI`).
pub const SNI_MISMATCH: &str =
    "Server presented an SSL certificate different from the expected one";
/// HAProxy's words for a certificate whose names do not match `verifyhost`
/// (`CO_ER_SSL_MISMATCH`).
pub const HOST_MISMATCH: &str =
    "Server presented an SSL certificate different from the configured one";

/// What a TLS connect of a check uses, from the server's options and the connect step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params<'a> {
    pub sni: Option<&'a str>,
    pub alpn: &'a [String],
}

/// Whether a check connect of a server whose check options are `server` speaks TLS, and with
/// what: `step` is the script's connect step, None for the implicit connect (which behaves
/// as `connect default`). HAProxy: `ssl` on the step, or `default` and the server's
/// `check-ssl`; the step's `sni` and `alpn`, else (with `default`) the server's `check-sni`
/// and `check-alpn`.
pub fn params<'a>(server: &'a CheckTls, step: Option<&'a Step>) -> Option<Params<'a>> {
    let (ssl, default, sni, alpn) = match step {
        None => (false, true, None, &[][..]),
        Some(Step::Connect {
            ssl,
            default,
            sni,
            alpn,
            ..
        }) => (*ssl, *default, sni.as_deref(), alpn.as_slice()),
        Some(_) => return None,
    };
    if !(ssl || default && server.ssl) {
        return None;
    }
    Some(Params {
        sni: sni.or(if default { server.sni.as_deref() } else { None }),
        alpn: if alpn.is_empty() && default {
            &server.alpn
        } else {
            alpn
        },
    })
}

/// Builds [`Connector`]s: one crypto provider (ring) for all, and one root store per
/// `ca-file`, shared by every server naming it.
pub struct Factory {
    provider: Arc<CryptoProvider>,
    /// By the address of the model's `Arc<CaFile>` (the model outlives the factory).
    roots: HashMap<usize, Arc<RootCertStore>>,
}

impl Default for Factory {
    fn default() -> Factory {
        Factory {
            provider: Arc::new(rustls::crypto::ring::default_provider()),
            roots: HashMap::new(),
        }
    }
}

impl Factory {
    /// The connector for a server verified as `verify`, with `params`. Fails only on a name
    /// rustls cannot use (config validation refuses those).
    pub fn connector(&mut self, verify: &Verify, params: &Params<'_>) -> Result<Connector, String> {
        let sni = params
            .sni
            .map(|s| {
                ServerName::try_from(s.to_string())
                    .ok()
                    .filter(|n| matches!(n, ServerName::DnsName(_)))
                    .ok_or_else(|| format!("'{s}' is not a host name to send as SNI"))
            })
            .transpose()?;
        let (roots, name) = match verify {
            Verify::None => (None, None),
            Verify::Required { ca, host } => {
                let key = Arc::as_ptr(ca) as usize;
                let roots = Arc::clone(self.roots.entry(key).or_insert_with(|| {
                    let mut store = RootCertStore::empty();
                    store.add_parsable_certificates(
                        ca.certs.iter().map(|d| CertificateDer::from(d.clone())),
                    );
                    Arc::new(store)
                }));
                let name = match (&sni, host) {
                    (Some(sni), _) => Some((sni.clone(), SNI_MISMATCH)),
                    (None, Some(h)) => Some((
                        ServerName::try_from(h.clone())
                            .map_err(|_| format!("'{h}' is not a host name to verify"))?,
                        HOST_MISMATCH,
                    )),
                    (None, None) => None,
                };
                (Some((roots, Arc::clone(ca))), name)
            }
        };
        let mismatch = name.as_ref().map_or(HANDSHAKE_FAILURE, |(_, m)| *m);
        let verifier = Arc::new(CheckVerifier {
            roots,
            name: name.map(|(n, _)| n),
            algorithms: self.provider.signature_verification_algorithms,
        });
        let mut config = ClientConfig::builder_with_provider(Arc::clone(&self.provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        config.alpn_protocols = params.alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
        config.resumption = Resumption::disabled();
        Ok(Connector {
            config: Arc::new(config),
            sni,
            mismatch,
        })
    }
}

/// Everything a TLS check connection needs but the socket, built once per probe and connect.
pub struct Connector {
    config: Arc<ClientConfig>,
    sni: Option<ServerName<'static>>,
    /// HAProxy's words when the certificate's names do not match.
    mismatch: &'static str,
}

impl Connector {
    /// A session for a connection to `peer`. Without SNI the peer's address names the
    /// session, which rustls never sends.
    pub fn session(&self, peer: IpAddr) -> Result<Session, String> {
        let name = self
            .sni
            .clone()
            .unwrap_or(ServerName::IpAddress(peer.into()));
        let conn =
            ClientConnection::new(Arc::clone(&self.config), name).map_err(|e| e.to_string())?;
        Ok(Session {
            conn,
            preface: Vec::new(),
            mismatch: self.mismatch,
        })
    }
}

/// Where a handshake stands after the socket was drained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handshake {
    /// Finished: the script may run.
    Done,
    /// Waiting for the socket (readable or writable).
    Pending,
    /// Failed, with HAProxy's words for it.
    Failed(&'static str),
}

/// A TLS client session over a check's socket. Reads and writes drain until the socket
/// would block (mio is edge-triggered).
pub struct Session {
    conn: ClientConnection,
    preface: Vec<u8>,
    mismatch: &'static str,
}

impl Session {
    /// Bytes to write as they are before the handshake (a PROXY header precedes TLS).
    pub fn preface(&mut self, bytes: Vec<u8>) {
        self.preface = bytes;
    }

    /// Drives the handshake as far as `sock` allows.
    pub fn handshake<S: Read + Write>(&mut self, sock: &mut S) -> Handshake {
        while !self.preface.is_empty() {
            match sock.write(&self.preface) {
                Ok(0) => return self.failed("the socket took no bytes"),
                Ok(n) => {
                    self.preface.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Handshake::Pending,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return self.failed(&e.to_string()),
            }
        }
        loop {
            match self.flush(sock) {
                Ok(true) => {}
                Ok(false) => return Handshake::Pending,
                Err(e) => return self.failed(&e.to_string()),
            }
            if !self.conn.is_handshaking() {
                return Handshake::Done;
            }
            match self.conn.read_tls(sock) {
                Ok(0) => return self.failed("the server closed the connection"),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Handshake::Pending,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return self.failed(&e.to_string()),
            }
            if let Err(e) = self.conn.process_new_packets() {
                // Tell the server why (rustls queued an alert); the check fails either way.
                let _ = self.conn.write_tls(sock);
                log::debug!("TLS check handshake: {e}");
                return Handshake::Failed(match e {
                    rustls::Error::InvalidCertificate(
                        CertificateError::NotValidForName
                        | CertificateError::NotValidForNameContext { .. },
                    ) => self.mismatch,
                    _ => HANDSHAKE_FAILURE,
                });
            }
        }
    }

    fn failed(&self, why: &str) -> Handshake {
        log::debug!("TLS check handshake: {why}");
        Handshake::Failed(HANDSHAKE_FAILURE)
    }

    /// True while encrypted bytes wait for the socket.
    pub fn wants_write(&self) -> bool {
        self.conn.wants_write()
    }

    /// Encrypts what of `data` the session takes and sends what the socket takes; Ok(n):
    /// `n` bytes of `data` were taken (the rest waits for [`Session::flush`]).
    pub fn write<S: Write>(&mut self, sock: &mut S, data: &[u8]) -> io::Result<usize> {
        let n = self.conn.writer().write(data)?;
        self.flush(sock)?;
        if n == 0 && !data.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(n)
    }

    /// Sends the encrypted bytes waiting: Ok(true) when none is left, Ok(false) when the
    /// socket would block.
    pub fn flush<S: Write>(&mut self, sock: &mut S) -> io::Result<bool> {
        while self.conn.wants_write() {
            match self.conn.write_tls(sock) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Reads decrypted bytes: Ok(0) at the end of the data (a close_notify, or the server
    /// closed the connection), WouldBlock when nothing more is there yet, InvalidData when
    /// the server broke the protocol.
    pub fn read<S: Read + Write>(&mut self, sock: &mut S, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.conn.reader().read(buf) {
                Ok(n) => return Ok(n),
                // Closed without close_notify: for a check, the end of the data.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            // Nothing decrypted is waiting: read records (Ok(0) marks the end, which the
            // reader then reports).
            self.conn.read_tls(sock)?;
            if let Err(e) = self.conn.process_new_packets() {
                let _ = self.conn.write_tls(sock);
                return Err(io::Error::new(io::ErrorKind::InvalidData, e));
            }
            // A reply the session owes (a key update) goes out with what the script sends.
            let _ = self.flush(sock);
        }
    }
}

/// HAProxy's verification ([`Verify`]): rustls's own verifier always checks a name, and
/// HAProxy checks none when it has neither SNI nor `verifyhost`; and OpenSSL trusts a
/// certificate of `ca-file` that the server presents as is, which webpki refuses when it is
/// a CA (a self-signed certificate made with `openssl req -x509` is one).
#[derive(Debug)]
struct CheckVerifier {
    /// The root store and the `ca-file` it was made of; None: `verify none`.
    roots: Option<(Arc<RootCertStore>, Arc<CaFile>)>,
    /// The name the certificate must carry, if any.
    name: Option<ServerName<'static>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for CheckVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some((roots, ca)) = &self.roots else {
            return Ok(ServerCertVerified::assertion());
        };
        let cert = ParsedCertificate::try_from(end_entity)?;
        let chained = verify_server_cert_signed_by_trust_anchor(
            &cert,
            roots,
            intermediates,
            now,
            self.algorithms.all,
        );
        if let Err(e) = chained {
            // A certificate of ca-file itself is trusted as is, within its dates, as
            // OpenSSL trusts it.
            let pinned = ca.certs.iter().any(|c| c.as_slice() == end_entity.as_ref());
            let current = validity(end_entity)
                .is_some_and(|(from, until)| (from..=until).contains(&now.as_secs()));
            if !(pinned && current) {
                return Err(e);
            }
        }
        if let Some(name) = &self.name {
            verify_server_name(&cert, name)?;
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// A certificate's validity period (notBefore, notAfter) in Unix seconds, read from its DER
/// (RFC 5280: Certificate, TBSCertificate, then past version, serialNumber, signature and
/// issuer). None for anything malformed.
fn validity(der: &[u8]) -> Option<(u64, u64)> {
    let (cert, _) = der_item(der, 0x30)?;
    let (mut tbs, _) = der_item(cert, 0x30)?;
    if tbs.first() == Some(&0xa0) {
        tbs = der_item(tbs, 0xa0)?.1;
    }
    for tag in [0x02, 0x30, 0x30] {
        tbs = der_item(tbs, tag)?.1;
    }
    let (period, _) = der_item(tbs, 0x30)?;
    let (from, rest) = der_time(period)?;
    let (until, _) = der_time(rest)?;
    Some((from, until))
}

/// One DER item of type `tag` at the start of `input`: (its content, what follows).
fn der_item(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&t, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    if t != tag {
        return None;
    }
    let (len, rest) = match first {
        0..=0x7f => (usize::from(first), rest),
        0x81..=0x84 => {
            let n = usize::from(first & 0x7f);
            let bytes = rest.get(..n)?;
            let len = bytes.iter().fold(0usize, |l, &b| l << 8 | usize::from(b));
            (len, &rest[n..])
        }
        _ => return None,
    };
    (len <= rest.len()).then(|| rest.split_at(len))
}

/// A UTCTime (YYMMDDHHMMSSZ, years 1950-2049) or GeneralizedTime (YYYYMMDDHHMMSSZ) as Unix
/// seconds, and what follows it.
fn der_time(input: &[u8]) -> Option<(u64, &[u8])> {
    let tag = *input.first()?;
    let digits = match tag {
        0x17 => 12,
        0x18 => 14,
        _ => return None,
    };
    let (text, rest) = der_item(input, tag)?;
    if text.len() != digits + 1
        || text[digits] != b'Z'
        || !text[..digits].iter().all(u8::is_ascii_digit)
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| {
        text[r]
            .iter()
            .fold(0u64, |n, &d| n * 10 + u64::from(d - b'0'))
    };
    let (year, at) = if digits == 12 {
        let yy = num(0..2);
        (if yy < 50 { 2000 + yy } else { 1900 + yy }, 2)
    } else {
        (num(0..4), 4)
    };
    let (month, day) = (num(at..at + 2), num(at + 2..at + 4));
    let (h, m, s) = (
        num(at + 4..at + 6),
        num(at + 6..at + 8),
        num(at + 8..at + 10),
    );
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || h > 23 || m > 59 || s > 60 {
        return None;
    }
    // Days from 1970-01-01 to the date (Howard Hinnant's days_from_civil).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    // Before 1970 counts as 1970: only comparisons with the present are made.
    let days = (era * 146_097 + doe).saturating_sub(719_468);
    Some((days * 86_400 + h * 3_600 + m * 60 + s, rest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::PrivateKeyDer;
    use rustls::{ServerConfig, ServerConnection};
    use std::collections::VecDeque;
    use std::path::PathBuf;

    const CA: &[u8] = include_bytes!("testdata/ca.pem");
    const OTHER_CA: &[u8] = include_bytes!("testdata/other-ca.pem");
    const LEAF: &[u8] = include_bytes!("testdata/check.test.pem");
    const KEY: &[u8] = include_bytes!("testdata/check.test.key");
    const SELF_SIGNED: &[u8] = include_bytes!("testdata/self.test.pem");
    const SELF_EXPIRED: &[u8] = include_bytes!("testdata/self.test-expired.pem");
    const SELF_KEY: &[u8] = include_bytes!("testdata/self.test.key");

    /// A non-blocking socket in memory: reads what the test put in `rx` (WouldBlock when
    /// empty, end of data once `eof`), writes at most `room` bytes a call into `tx`.
    struct Wire {
        rx: VecDeque<u8>,
        tx: Vec<u8>,
        eof: bool,
        room: usize,
    }

    impl Wire {
        fn new() -> Wire {
            Wire {
                rx: VecDeque::new(),
                tx: Vec::new(),
                eof: false,
                room: usize::MAX,
            }
        }
    }

    impl Read for Wire {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.rx.is_empty() {
                return if self.eof {
                    Ok(0)
                } else {
                    Err(io::ErrorKind::WouldBlock.into())
                };
            }
            let n = buf.len().min(self.rx.len());
            for (b, v) in buf.iter_mut().zip(self.rx.drain(..n)) {
                *b = v;
            }
            Ok(n)
        }
    }

    impl Write for Wire {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.room == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = buf.len().min(self.room);
            self.tx.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn ca(pem: &[u8]) -> Arc<CaFile> {
        Arc::new(CaFile {
            path: PathBuf::from("ca.pem"),
            certs: CertificateDer::pem_slice_iter(pem)
                .map(|c| c.expect("test CA").to_vec())
                .collect(),
        })
    }

    fn required(pem: &[u8], host: Option<&str>) -> Verify {
        Verify::Required {
            ca: ca(pem),
            host: host.map(str::to_string),
        }
    }

    /// A rustls server presenting check.test's certificate, offering `alpn`.
    fn tls_server(alpn: &[&str]) -> ServerConnection {
        tls_server_with(LEAF, KEY, alpn)
    }

    fn tls_server_with(cert: &[u8], key: &[u8], alpn: &[&str]) -> ServerConnection {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from_pem_slice(cert).unwrap()],
                PrivateKeyDer::from_pem_slice(key).unwrap(),
            )
            .unwrap();
        config.alpn_protocols = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
        ServerConnection::new(Arc::new(config)).unwrap()
    }

    fn session(verify: &Verify, sni: Option<&str>, alpn: &[String]) -> Session {
        Factory::default()
            .connector(verify, &Params { sni, alpn })
            .unwrap()
            .session(IpAddr::from([127, 0, 0, 1]))
            .unwrap()
    }

    /// Moves what the client wrote to the server and the server's answer back.
    fn serve(wire: &mut Wire, server: &mut ServerConnection) {
        let sent = std::mem::take(&mut wire.tx);
        if !sent.is_empty() {
            let mut rd = &sent[..];
            while !rd.is_empty() {
                server.read_tls(&mut rd).unwrap();
                if server.process_new_packets().is_err() {
                    break;
                }
            }
        }
        let mut back = Vec::new();
        while server.wants_write() {
            server.write_tls(&mut back).unwrap();
        }
        wire.rx.extend(back);
    }

    /// Runs a handshake against `server` to its end.
    fn handshake(
        client: &mut Session,
        wire: &mut Wire,
        server: &mut ServerConnection,
    ) -> Handshake {
        for _ in 0..50 {
            match client.handshake(wire) {
                Handshake::Pending => serve(wire, server),
                done => return done,
            }
        }
        panic!("the handshake did not end");
    }

    #[test]
    fn verify_none_takes_any_certificate_and_carries_data_both_ways() {
        let mut server = tls_server(&[]);
        let mut client = session(&Verify::None, None, &[]);
        let mut wire = Wire::new();
        assert_eq!(
            handshake(&mut client, &mut wire, &mut server),
            Handshake::Done
        );
        // A request out...
        let req = b"GET /healthz HTTP/1.0\r\n\r\n";
        assert_eq!(client.write(&mut wire, req).unwrap(), req.len());
        assert!(client.flush(&mut wire).unwrap());
        serve(&mut wire, &mut server);
        let mut got = vec![0u8; 64];
        let n = server.reader().read(&mut got).unwrap();
        assert_eq!(&got[..n], req);
        // ...nothing back yet...
        let mut buf = [0u8; 64];
        let e = client.read(&mut wire, &mut buf).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        // ...then the response and a close_notify: the data, then its end.
        server
            .writer()
            .write_all(b"HTTP/1.0 200 OK\r\n\r\n")
            .unwrap();
        server.send_close_notify();
        serve(&mut wire, &mut server);
        let n = client.read(&mut wire, &mut buf).unwrap();
        assert_eq!(&buf[..n], b"HTTP/1.0 200 OK\r\n\r\n");
        assert_eq!(client.read(&mut wire, &mut buf).unwrap(), 0);
        // No SNI without check-sni / connect sni, even though the session knows the address.
        assert_eq!(server.server_name(), None);
    }

    #[test]
    fn a_close_without_close_notify_ends_the_data() {
        let mut server = tls_server(&[]);
        let mut client = session(&Verify::None, None, &[]);
        let mut wire = Wire::new();
        assert_eq!(
            handshake(&mut client, &mut wire, &mut server),
            Handshake::Done
        );
        server.writer().write_all(b"bye").unwrap();
        serve(&mut wire, &mut server);
        wire.eof = true;
        let mut buf = [0u8; 16];
        let n = client.read(&mut wire, &mut buf).unwrap();
        assert_eq!(&buf[..n], b"bye");
        assert_eq!(client.read(&mut wire, &mut buf).unwrap(), 0);
    }

    #[test]
    fn verify_required_chains_to_the_ca_file_and_checks_no_name_without_sni_or_verifyhost() {
        // The certificate names check.test, not 127.0.0.1: HAProxy checks no name here.
        let mut client = session(&required(CA, None), None, &[]);
        let (mut wire, mut server) = (Wire::new(), tls_server(&[]));
        assert_eq!(
            handshake(&mut client, &mut wire, &mut server),
            Handshake::Done
        );

        let mut client = session(&required(OTHER_CA, None), None, &[]);
        let (mut wire, mut server) = (Wire::new(), tls_server(&[]));
        assert_eq!(
            handshake(&mut client, &mut wire, &mut server),
            Handshake::Failed(HANDSHAKE_FAILURE)
        );
        // The server heard why: an alert, not a silent close.
        assert!(!wire.tx.is_empty());
    }

    #[test]
    fn names_are_checked_against_the_sni_else_verifyhost() {
        let cases: [(Option<&str>, Option<&str>, Handshake); 6] = [
            (Some("check.test"), None, Handshake::Done),
            (Some("wrong.test"), None, Handshake::Failed(SNI_MISMATCH)),
            (None, Some("check.test"), Handshake::Done),
            (None, Some("a.pool.test"), Handshake::Done),
            (None, Some("wrong.test"), Handshake::Failed(HOST_MISMATCH)),
            // The SNI wins over verifyhost.
            (
                Some("wrong.test"),
                Some("check.test"),
                Handshake::Failed(SNI_MISMATCH),
            ),
        ];
        for (sni, host, want) in cases {
            let mut client = session(&required(CA, host), sni, &[]);
            let (mut wire, mut server) = (Wire::new(), tls_server(&[]));
            assert_eq!(
                handshake(&mut client, &mut wire, &mut server),
                want,
                "sni {sni:?}, verifyhost {host:?}"
            );
            assert_eq!(server.server_name(), sni, "the SNI sent");
        }
        // verify none checks no name at all.
        let mut client = session(&Verify::None, Some("wrong.test"), &[]);
        let (mut wire, mut server) = (Wire::new(), tls_server(&[]));
        assert_eq!(
            handshake(&mut client, &mut wire, &mut server),
            Handshake::Done
        );
    }

    /// OpenSSL trusts a certificate of ca-file presented as is, even a CA (webpki alone
    /// refuses a CA as a server's certificate), within its dates; names are still checked.
    #[test]
    fn a_self_signed_certificate_in_ca_file_is_trusted_as_is() {
        // (certificate presented, ca-file, verifyhost, outcome)
        type Case<'a> = (&'a [u8], &'a [u8], Option<&'a str>, Handshake);
        let cases: [Case<'_>; 5] = [
            (SELF_SIGNED, SELF_SIGNED, None, Handshake::Done),
            (SELF_SIGNED, SELF_SIGNED, Some("self.test"), Handshake::Done),
            (
                SELF_SIGNED,
                SELF_SIGNED,
                Some("wrong.test"),
                Handshake::Failed(HOST_MISMATCH),
            ),
            (SELF_SIGNED, CA, None, Handshake::Failed(HANDSHAKE_FAILURE)),
            (
                SELF_EXPIRED,
                SELF_EXPIRED,
                None,
                Handshake::Failed(HANDSHAKE_FAILURE),
            ),
        ];
        for (presented, trusted, host, want) in cases {
            let mut client = session(&required(trusted, host), None, &[]);
            let mut wire = Wire::new();
            let mut server = tls_server_with(presented, SELF_KEY, &[]);
            assert_eq!(
                handshake(&mut client, &mut wire, &mut server),
                want,
                "verifyhost {host:?}"
            );
        }
    }

    #[test]
    fn validity_is_read_from_both_time_forms_and_never_panics() {
        let der = CertificateDer::from_pem_slice(CA).unwrap();
        // UTCTime 000101000000Z and GeneralizedTime 21000101000000Z.
        assert_eq!(validity(&der), Some((946_684_800, 4_102_444_800)));
        let der = CertificateDer::from_pem_slice(SELF_EXPIRED).unwrap();
        assert_eq!(validity(&der), Some((946_684_800, 978_307_200)));
        for cut in 0..der.len() {
            assert_eq!(validity(&der[..cut]), None, "cut at {cut}");
        }
        let mut seed = 0x2545_f491_u32;
        for _ in 0..20_000 {
            let mut bytes = der.to_vec();
            for _ in 0..3 {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                let i = seed as usize % bytes.len();
                bytes[i] = (seed >> 8) as u8;
            }
            let _ = validity(&bytes);
        }
        assert_eq!(
            der_time(b"\x17\x0d991231235959Z"),
            Some((946_684_799, &b""[..]))
        );
        assert_eq!(der_time(b"\x17\x0d001301000000Z"), None);
        assert_eq!(der_time(b"\x18\x0d001301000000Z"), None);
    }

    #[test]
    fn alpn_is_offered_when_asked() {
        let alpn = vec!["h2".to_string(), "http/1.1".to_string()];
        let mut client = session(&Verify::None, None, &alpn);
        let (mut wire, mut server) = (Wire::new(), tls_server(&["http/1.1"]));
        assert_eq!(
            handshake(&mut client, &mut wire, &mut server),
            Handshake::Done
        );
        assert_eq!(server.alpn_protocol(), Some(&b"http/1.1"[..]));
    }

    #[test]
    fn a_server_that_does_not_speak_tls_fails_the_handshake() {
        // A plain HTTP server answers the ClientHello with a 400 and closes.
        let mut client = session(&Verify::None, None, &[]);
        let mut wire = Wire::new();
        assert_eq!(client.handshake(&mut wire), Handshake::Pending);
        assert_eq!(wire.tx.first(), Some(&0x16), "a ClientHello went out");
        wire.rx
            .extend(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n");
        wire.eof = true;
        assert_eq!(
            client.handshake(&mut wire),
            Handshake::Failed(HANDSHAKE_FAILURE)
        );
        // Closed before a byte, or at once after the ClientHello.
        for rx in [&b""[..], b"\x16\x03\x01\x00\x05hel"] {
            let mut client = session(&Verify::None, None, &[]);
            let mut wire = Wire::new();
            assert_eq!(client.handshake(&mut wire), Handshake::Pending);
            wire.rx.extend(rx);
            wire.eof = true;
            assert_eq!(
                client.handshake(&mut wire),
                Handshake::Failed(HANDSHAKE_FAILURE)
            );
        }
    }

    #[test]
    fn the_preface_goes_out_raw_before_the_client_hello_one_byte_at_a_time() {
        let connector = Factory::default()
            .connector(
                &required(CA, Some("check.test")),
                &Params {
                    sni: None,
                    alpn: &[],
                },
            )
            .unwrap();
        let proxy = b"PROXY TCP4 127.0.0.1 127.0.0.1 40000 443\r\n".to_vec();
        let mut client = connector.session(IpAddr::from([127, 0, 0, 1])).unwrap();
        client.preface(proxy.clone());
        let mut server = tls_server(&[]);
        let mut wire = Wire::new();
        wire.room = 1;
        // One byte per write: every call makes progress, then waits for the socket.
        let mut out = Vec::new();
        for _ in 0..10_000 {
            assert_eq!(client.handshake(&mut wire), Handshake::Pending);
            out.append(&mut wire.tx);
            if out.len() > proxy.len() + 5 && !client.wants_write() {
                break;
            }
            wire.room = 1;
        }
        assert!(out.starts_with(&proxy), "{out:?}");
        assert_eq!(out[proxy.len()], 0x16, "then the ClientHello");
        wire.room = usize::MAX;
        wire.tx = out.split_off(proxy.len());
        assert_eq!(
            handshake(&mut client, &mut wire, &mut server),
            Handshake::Done
        );
    }

    #[test]
    fn which_connects_speak_tls() {
        let server = CheckTls {
            ssl: true,
            sni: Some("srv.test".into()),
            alpn: vec!["http/1.1".into()],
        };
        let connect = |ssl, default, sni: Option<&str>| Step::Connect {
            port: None,
            addr: None,
            send_proxy: false,
            default,
            linger: false,
            ssl,
            sni: sni.map(str::to_string),
            alpn: Vec::new(),
        };
        // The implicit connect is a `connect default`: the server's options.
        let p = params(&server, None).unwrap();
        assert_eq!((p.sni, p.alpn), (Some("srv.test"), &server.alpn[..]));
        assert_eq!(params(&CheckTls::default(), None), None);
        // `connect` alone is plain whatever the server says; `connect ssl` takes nothing of
        // the server's; `connect default` takes everything it does not set itself.
        let (plain, ssl, default) = (
            connect(false, false, None),
            connect(true, false, None),
            connect(false, true, Some("step.test")),
        );
        assert_eq!(params(&server, Some(&plain)), None);
        let p = params(&server, Some(&ssl)).unwrap();
        assert_eq!((p.sni, p.alpn.len()), (None, 0));
        let p = params(&server, Some(&default)).unwrap();
        assert_eq!((p.sni, p.alpn), (Some("step.test"), &server.alpn[..]));
        assert_eq!(params(&CheckTls::default(), Some(&default)), None);
        assert_eq!(params(&server, Some(&Step::Send(Vec::new()))), None);
    }

    #[test]
    fn names_rustls_cannot_use_are_refused() {
        let mut f = Factory::default();
        let none = &[][..];
        for sni in ["10.0.0.1", "bad name"] {
            assert!(f
                .connector(
                    &Verify::None,
                    &Params {
                        sni: Some(sni),
                        alpn: none
                    }
                )
                .is_err());
        }
        assert!(f
            .connector(
                &required(CA, Some("bad name")),
                &Params {
                    sni: None,
                    alpn: none
                }
            )
            .is_err());
    }
}
