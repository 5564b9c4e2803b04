//! The TLS sample fetches on the first bytes a client sent, before anything is forwarded:
//! `req.ssl_hello_type`, `req.ssl_ver`, `req.ssl_sni` (and their `req_ssl_*` spellings) and
//! `req.len`. They answer as HAProxy 2.6 does (src/payload.c), quirks included, so that a
//! `tcp-request content` rule or a `use_backend` condition decides the same way with the same
//! bytes. Each fetch takes whatever has arrived and says whether the answer is there, can never
//! come, or may still come with more bytes; none of them panics or reads past the bytes given.
//!
//! The wire formats walked here (all integers big-endian):
//!
//! ```text
//! TLS record (SSLv3 and later)       SSLv2 ClientHello (ssl_ver only)
//!   u8   content type (0x16 = hs)      u16  0x8000 | length      (2-byte header)
//!   u16  version (major, minor)          or u16 length + u8 pad  (3-byte header)
//!   u16  length                        u8   message type = 1 (ClientHello)
//!   handshake message:                 u16  version
//!     u8   type (1 = ClientHello)      u16  cipher specs length (multiple of 3)
//!     u24  length                      u16  session id length (0 or 16)
//!     ClientHello body:                u16  challenge length (16 to 32)
//!       u16  client version            ...  cipher specs, session id, challenge
//!       [32] random
//!       u8   session id length, session id
//!       u16  cipher suites length, cipher suites
//!       u8   compression methods length, methods
//!       u16  extensions length, then each extension:
//!         u16 type (0 = server_name), u16 length, data:
//!           u16 server name list length, then the first entry:
//!             u8 name type (0 = host_name), u16 name length, name
//! ```
//!
//! Like HAProxy, the walks follow lengths as declared and do not stop at record boundaries: a
//! ClientHello split over two records is read as if the second record header were hello bytes.

/// The outcome of a fetch on the bytes received so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fetched<T> {
    /// The value.
    Value(T),
    /// Not there, and more bytes would not change that (or the data is final).
    Absent,
    /// Not decided yet: more bytes may bring it (only when `complete` is false).
    NeedMore,
}

/// `req.ssl_hello_type` / `req_ssl_hello_type`: the handshake message type of the first record
/// (1 = ClientHello).
///
/// The first byte must be a TLS record content type (0x14 to 0x17, or 0xFF, which HAProxy
/// also lets through), the record major version at least 3 and the record length at least 4.
/// The type is given only once the whole handshake message (9 header bytes plus its declared
/// length) has arrived. Any record type passes, so on an application data record this returns
/// whatever byte sits where a handshake type would be, as HAProxy does.
pub fn hello_type(data: &[u8], complete: bool) -> Fetched<i64> {
    settle(hello_type_walk(Bytes(data)), complete)
}

/// `req.ssl_ver` / `req_ssl_ver`: the SSL/TLS version as HAProxy encodes it:
/// `(major << 16) | minor`, so TLS 1.2 is 0x0003_0003 (`3.3` in a pattern, which the config
/// layer turns into `3 * 65_536 + 3`), SSLv3 0x0003_0000, TLS 1.0 0x0003_0001.
///
/// For a TLS record this is the ClientHello's `client_version` (bytes 9 and 10), not the record
/// version; TLS 1.3 hellos say 3.3 there. The record version must be at least 3.0, its length
/// between 6 and 2^14 + 2048, and the whole record must have arrived. Any first byte that is
/// not a record content type is tried as an SSLv2 ClientHello, whose lengths must agree; its
/// version is returned once the hello is complete.
pub fn ssl_ver(data: &[u8], complete: bool) -> Fetched<i64> {
    settle(ssl_ver_walk(Bytes(data)), complete)
}

/// `req.ssl_sni` / `req_ssl_sni`: the server name of the ClientHello's SNI extension
/// (host_name type). The raw name is returned as `&str` only if it is valid UTF-8 (else
/// [`Fetched::Absent`]); an empty name is a value.
///
/// Only the first entry of the server name list is looked at; if it is not a host name the
/// walk goes on to the next extension. A malformed length anywhere makes the name absent.
///
/// HAProxy checks the handshake length against the bytes after the record header, which
/// includes the 4-byte handshake header: the name can be found while the last 4 bytes of the
/// hello are still missing. That is kept. Where HAProxy would then read bytes that have not
/// arrived, this returns [`Fetched::NeedMore`] (or Absent when `complete`) instead.
pub fn sni(data: &[u8], complete: bool) -> Fetched<&str> {
    match settle(sni_walk(Bytes(data)), complete) {
        Fetched::Value(name) => match std::str::from_utf8(name) {
            Ok(name) => Fetched::Value(name),
            Err(_) => Fetched::Absent,
        },
        Fetched::Absent => Fetched::Absent,
        Fetched::NeedMore => Fetched::NeedMore,
    }
}

/// `req.len` / `req_len`: the number of bytes received so far. It is always a value, but one
/// that may still grow: as in HAProxy, a condition on it that does not match yet should wait
/// for more bytes unless the data is complete.
pub fn req_len(data: &[u8]) -> i64 {
    i64::try_from(data.len()).unwrap_or(i64::MAX)
}

/// How far `req.ssl_ver` waits for a long message: HAProxy stops at what fits in its request
/// buffer during inspection, `tune.bufsize` (16384) less `tune.maxrewrite` (1024) by default.
/// It compares this with the bytes after the record header, so with its default buffer a
/// record longer than this limit less 5 is never judged complete; here it is once the
/// caller's buffer holds `RECV_LIMIT + 5` bytes (a caller with a buffer no larger than
/// HAProxy's should say `complete` when it is full, as HAProxy then does).
pub const RECV_LIMIT: usize = 16_384 - 1_024;

/// The largest record length `req.ssl_ver` accepts: 2^14 plus 2048 bytes of expansion.
const MAX_RECORD: usize = (1 << 14) + 2_048;

/// The smallest record length `req.ssl_sni` accepts: the record must be able to hold a
/// handshake header, a ClientHello with one cipher and one compression method, and an
/// extension list with one empty extension (1 + 3 + 2 + 32 + 1 + 2 + 2 + 1 + 1 + 2 + 2).
const MIN_SNI_RECORD: usize = 49;

/// The smallest ClientHello length `req.ssl_sni` accepts (the above less the 4 handshake
/// header bytes).
const MIN_SNI_HELLO: usize = 45;

/// Why a walk stopped without a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// The bytes so far are a prefix of something that may still hold the value.
    Short,
    /// The bytes rule the value out.
    Missing,
}

/// Turns a walk's result into the public answer: waiting is only possible while more bytes
/// may come.
fn settle<T>(walk: Result<T, Stop>, complete: bool) -> Fetched<T> {
    match walk {
        Ok(v) => Fetched::Value(v),
        Err(Stop::Short) if !complete => Fetched::NeedMore,
        Err(_) => Fetched::Absent,
    }
}

/// Bytes read at fixed offsets, big-endian; reading past the end is [`Stop::Short`], since
/// the missing bytes may still arrive.
#[derive(Clone, Copy)]
struct Bytes<'a>(&'a [u8]);

impl<'a> Bytes<'a> {
    /// At least `n` bytes have arrived.
    fn need(self, n: usize) -> Result<(), Stop> {
        if self.0.len() < n {
            return Err(Stop::Short);
        }
        Ok(())
    }

    fn u8(self, at: usize) -> Result<u8, Stop> {
        self.0.get(at).copied().ok_or(Stop::Short)
    }

    fn u16(self, at: usize) -> Result<usize, Stop> {
        Ok(usize::from(self.u8(at)?) << 8 | usize::from(self.u8(at + 1)?))
    }

    fn u24(self, at: usize) -> Result<usize, Stop> {
        Ok(usize::from(self.u8(at)?) << 16 | self.u16(at + 1)?)
    }

    /// A version encoded as HAProxy does: major in bits 16 and up, minor below.
    fn version(self, at: usize) -> Result<i64, Stop> {
        Ok(i64::from(self.u8(at)?) << 16 | i64::from(self.u8(at + 1)?))
    }

    fn slice(self, at: usize, len: usize) -> Result<&'a [u8], Stop> {
        let end = at.checked_add(len).ok_or(Stop::Missing)?;
        self.0.get(at..end).ok_or(Stop::Short)
    }

    /// The bytes from `at` on (none if `at` is past the end).
    fn from(self, at: usize) -> Bytes<'a> {
        Bytes(self.0.get(at..).unwrap_or_default())
    }
}

/// A fails-fast check: `Missing` unless `ok`.
fn ensure(ok: bool) -> Result<(), Stop> {
    if ok {
        Ok(())
    } else {
        Err(Stop::Missing)
    }
}

/// The content types of a TLS record header as HAProxy recognises them: change_cipher_spec,
/// alert, handshake and application_data (0x14 to 0x17), and 0xFF.
fn is_record_type(first: u8) -> bool {
    matches!(first, 0x14..=0x17 | 0xFF)
}

fn hello_type_walk(d: Bytes) -> Result<i64, Stop> {
    ensure(is_record_type(d.u8(0)?))?;
    // The record header (5) and the handshake header (4) before any check.
    d.need(9)?;
    ensure(d.u8(1)? >= 3)?;
    ensure(d.u16(3)? >= 4)?;
    let kind = d.u8(5)?;
    let message = d.u24(6)?;
    d.need(9 + message)?;
    Ok(i64::from(kind))
}

fn ssl_ver_walk(d: Bytes) -> Result<i64, Stop> {
    let (version, header, message) = if is_record_type(d.u8(0)?) {
        record_version(d)?
    } else {
        sslv2_version(d)?
    };
    let received = d.0.len().saturating_sub(header);
    if received < message.min(RECV_LIMIT) {
        return Err(Stop::Short);
    }
    Ok(version)
}

/// A TLS record: (client_version of the hello, record header length, record length). The
/// client version is read without checking that the record is a handshake or a ClientHello.
fn record_version(d: Bytes) -> Result<(i64, usize, usize), Stop> {
    // The record header and the ClientHello version behind the 4-byte handshake header.
    d.need(11)?;
    ensure(d.u8(1)? >= 3)?;
    let message = d.u16(3)?;
    ensure((6..=MAX_RECORD).contains(&message))?;
    Ok((d.version(9)?, 5, message))
}

/// An SSLv2 ClientHello: (version, bytes before the cipher specs, bytes from there to the end
/// of the message including padding). A set top bit means the 2-byte header with a 15-bit
/// length; otherwise the 3-byte header: a 14-bit length and a padding length.
fn sslv2_version(d: Bytes) -> Result<(i64, usize, usize), Stop> {
    let first = usize::from(d.u8(0)?);
    let (length, padding, header) = if first & 0x80 != 0 {
        d.need(3)?;
        ((first & 0x7F) << 8 | usize::from(d.u8(1)?), 0, 2)
    } else {
        d.need(4)?;
        ((first & 0x3F) << 8 | usize::from(d.u8(1)?), d.u8(2)?, 3)
    };
    ensure(d.u8(header)? == 1)?;
    let hello = d.from(header + 1);
    hello.need(8)?;
    let version = hello.version(0)?;
    let ciphers = hello.u16(2)?;
    let session_id = hello.u16(4)?;
    let challenge = hello.u16(6)?;
    ensure(ciphers % 3 == 0)?;
    ensure(session_id == 0 || session_id == 16)?;
    ensure((16..=32).contains(&challenge))?;
    ensure(length == 9 + ciphers + session_id + challenge)?;
    let rest = ciphers + session_id + challenge + usize::from(padding);
    Ok((version, header + 9, rest))
}

fn sni_walk<'a>(d: Bytes<'a>) -> Result<&'a [u8], Stop> {
    ensure(d.u8(0)? == 0x16)?;
    d.need(3)?;
    ensure(d.u8(1)? >= 3)?;
    d.need(5)?;
    ensure(d.u16(3)? >= MIN_SNI_RECORD)?;
    let handshake = d.from(5);
    ensure(handshake.u8(0)? == 1)?;
    handshake.need(4)?;
    let length = handshake.u24(1)?;
    ensure(length >= MIN_SNI_HELLO)?;
    // HAProxy's completeness check: it counts the handshake header too, so the last 4 bytes
    // of the hello may still be missing here.
    handshake.need(length)?;
    first_host_name(handshake.from(4), length)
}

/// Walks a ClientHello body of declared `length` (of which possibly not all has arrived) to
/// the first host_name entry of a server_name extension. `left` counts the declared bytes
/// not walked yet and goes negative the way HAProxy's signed counter does, which the next
/// check then rejects.
fn first_host_name<'a>(hello: Bytes<'a>, length: usize) -> Result<&'a [u8], Stop> {
    ensure(hello.u8(0)? >= 3 && hello.u8(1)? >= 1)?;
    let session_id = usize::from(hello.u8(34)?);
    ensure(session_id <= 32 && session_id <= length.saturating_sub(35))?;
    let mut at = 35 + session_id;
    let mut left = signed(length) - signed(at);

    ensure(left >= 4)?;
    let ciphers = hello.u16(at)?;
    ensure(ciphers >= 2 && signed(ciphers) <= left)?;
    at += 2 + ciphers;
    left -= signed(2 + ciphers);

    ensure(left >= 2)?;
    let compressions = usize::from(hello.u8(at)?);
    ensure(compressions >= 1 && signed(compressions) <= left)?;
    at += 1 + compressions;
    left -= signed(1 + compressions);

    ensure(left >= 2)?;
    let extensions = hello.u16(at)?;
    ensure(signed(extensions) <= left - 2)?;
    at += 2;
    left = signed(extensions);

    while left >= 4 {
        let kind = hello.u16(at)?;
        let size = hello.u16(at + 2)?;
        ensure(signed(size) <= left - 4)?;
        if kind == 0 {
            if let Some(name) = host_name(hello.from(at), size, left)? {
                return Ok(name);
            }
        }
        at += 4 + size;
        left -= signed(4 + size);
    }
    Err(Stop::Missing)
}

/// The server_name extension starting at the extension header in `ext`, of data length
/// `size`, with `left` bytes of the extension list from its header on: the name of the first
/// list entry if its type is host_name (0), `None` if it is another type. As in HAProxy, the
/// list length is checked against the rest of the extension list, not this extension, and
/// the name length against nothing but the bytes received.
fn host_name<'a>(ext: Bytes<'a>, size: usize, left: i64) -> Result<Option<&'a [u8]>, Stop> {
    ensure(size >= 2)?;
    let list = ext.u16(4)?;
    ensure(list >= 4 && signed(list) <= left - 6)?;
    if ext.u8(6)? != 0 {
        return Ok(None);
    }
    let name = ext.u16(7)?;
    ext.slice(9, name).map(Some)
}

/// Lengths here are at most 2^24 plus a few 16-bit fields, far below `i64::MAX`.
fn signed(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `openssl s_client -tls1_2 -servername api.example.com` (OpenSSL 3.0.19).
    const TLS12_SNI: &str = concat!(
        "16030100cf010000cb030326f0b3d9dcfc70443a0546f52de1a8227851a5035718beb03c01f83e06e400dc",
        "000038c02cc030009fcca9cca8ccaac02bc02f009ec024c028006bc023c0270067c00ac0140039c009c013",
        "0033009d009c003d003c0035002f00ff0100006a00000014001200000f6170692e6578616d706c652e636f",
        "6d000b000403000102000a000c000a001d0017001e00190018002300000016000000170000000d002a0028",
        "040305030603080708080809080a080b080408050806040105010601030303010302040205020602",
    );

    /// `openssl s_client -tls1_3 -servername api.example.com`.
    const TLS13_SNI: &str = concat!(
        "16030100f4010000f00303c961b78c4414ff28f44bc23008528e96e29acfa339098ddabde87405e2df6cd8",
        "207e00332e0206e6cdbb372e3c2905b76a3ccff41355a146911020711198eecd76000813021303130100ff",
        "0100009f00000014001200000f6170692e6578616d706c652e636f6d000b000403000102000a0016001400",
        "1d0017001e0019001801000101010201030104002300000016000000170000000d001e001c040305030603",
        "080708080809080a080b080408050806040105010601002b0003020304002d00020101003300260024001d",
        "0020ad44d45df38d44b4b89d35fa2670f55e35ddb468e442334db83cfebcb7f24a7d",
    );

    /// `openssl s_client -tls1_2 -noservername`.
    const TLS12_NO_SNI: &str = concat!(
        "16030100b7010000b30303f535898131e4f5444757ca58161691ec63c44fd0cc1f59ab9a8d96e4a56437d4",
        "000038c02cc030009fcca9cca8ccaac02bc02f009ec024c028006bc023c0270067c00ac0140039c009c013",
        "0033009d009c003d003c0035002f00ff01000052000b000403000102000a000c000a001d0017001e001900",
        "18002300000016000000170000000d002a0028040305030603080708080809080a080b0804080508060401",
        "05010601030303010302040205020602",
    );

    /// `curl -k --resolve www.example.org:PORT:127.0.0.1 https://www.example.org:PORT/`
    /// (curl 7.88.1, OpenSSL 3.0.19): ALPN, and a padding extension up to 512 bytes.
    const CURL: &str = concat!(
        "1603010200010001fc0303f68aec6ab2230ed8ce509188d6880964a4fc8ad8635ee3949cc099cfdd7ce683",
        "20ff8a58a605c928e4bc6a6e66fd419f86baa4271aec8dfbf4022ce0db521fe6a5003e130213031301c02c",
        "c030009fcca9cca8ccaac02bc02f009ec024c028006bc023c0270067c00ac0140039c009c0130033009d00",
        "9c003d003c0035002f00ff0100017500000014001200000f7777772e6578616d706c652e6f7267000b0004",
        "03000102000a00160014001d0017001e00190018010001010102010301040010000e000c02683208687474",
        "702f312e31001600000017000000310000000d002a0028040305030603080708080809080a080b08040805",
        "0806040105010601030303010302040205020602002b0009080304030303020301002d0002010100330026",
        "0024001d00208b2d4c9779318656ec5412f4698935f8eec2c5724a035aee7065a6e179f99177001500ae00",
        "00000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "00000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "00000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "00000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "00",
    );

    /// An SSLv2-compatible ClientHello (2-byte header) offering TLS 1.0: three cipher specs,
    /// no session id, a 16-byte challenge.
    const SSLV2: &str = concat!(
        "8022",
        "01",
        "0301",
        "0009",
        "0000",
        "0010",
        "0100800700c0000035",
        "000102030405060708090a0b0c0d0e0f",
    );

    const TLS_1_0: i64 = 3 * 65_536 + 1;
    const TLS_1_2: i64 = 3 * 65_536 + 3;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// All fetches at once, for one state of the data.
    fn all(data: &[u8], complete: bool) -> (Fetched<i64>, Fetched<i64>, Fetched<&str>) {
        (
            hello_type(data, complete),
            ssl_ver(data, complete),
            sni(data, complete),
        )
    }

    #[test]
    fn captured_hellos() {
        let cases = [
            (TLS12_SNI, Some("api.example.com")),
            (TLS13_SNI, Some("api.example.com")),
            (TLS12_NO_SNI, None),
            (CURL, Some("www.example.org")),
        ];
        for (text, name) in cases {
            let data = hex(text);
            for complete in [false, true] {
                assert_eq!(hello_type(&data, complete), Fetched::Value(1));
                // TLS 1.3 hellos carry 3.3 in client_version too (the real list is in
                // supported_versions, which HAProxy does not read).
                assert_eq!(ssl_ver(&data, complete), Fetched::Value(TLS_1_2));
                let want = name.map_or(Fetched::Absent, Fetched::Value);
                assert_eq!(sni(&data, complete), want);
            }
        }
    }

    #[test]
    fn version_encoding_matches_the_config_layer() {
        let Fetched::Value(v) = ssl_ver(&hex(TLS12_SNI), false) else {
            panic!("no version");
        };
        assert_eq!(v, 0x0003_0003);
        // The ranges src/config/acl.rs builds for `req.ssl_ver ge 3.1` and `lt 3.3`.
        let ge_3_1 = 3 * 65_536 + 1..=i64::MAX;
        let lt_3_3 = i64::MIN..=3 * 65_536 + 3 - 1;
        assert!(ge_3_1.contains(&v));
        assert!(!lt_3_3.contains(&v));
        assert!(lt_3_3.contains(&TLS_1_0));
    }

    #[test]
    fn strict_prefixes_wait_then_give_up() {
        for text in [TLS12_SNI, TLS13_SNI, TLS12_NO_SNI, CURL] {
            let data = hex(text);
            let name = sni(&data, true);
            for cut in 0..data.len() {
                let part = &data[..cut];
                assert_eq!(hello_type(part, false), Fetched::NeedMore, "{cut}");
                assert_eq!(hello_type(part, true), Fetched::Absent, "{cut}");
                assert_eq!(ssl_ver(part, false), Fetched::NeedMore, "{cut}");
                assert_eq!(ssl_ver(part, true), Fetched::Absent, "{cut}");
                // HAProxy's SNI check counts the 4-byte handshake header against the hello
                // length: with at most 4 bytes missing, the walk already answers as on the
                // whole hello (the last bytes here are in an extension it never reads).
                if cut + 4 >= data.len() {
                    assert_eq!(sni(part, false), name, "{cut}");
                    assert_eq!(sni(part, true), name, "{cut}");
                } else {
                    assert_eq!(sni(part, false), Fetched::NeedMore, "{cut}");
                    assert_eq!(sni(part, true), Fetched::Absent, "{cut}");
                }
            }
        }
    }

    #[test]
    fn other_protocols_are_absent_at_once() {
        for text in [
            &b"GET / HTTP/1.1\r\n"[..],
            b"SSH-2.0-OpenSSH_9.2\r\n",
            b"SSH-2.0-",
        ] {
            assert_eq!(
                all(text, false),
                (Fetched::Absent, Fetched::Absent, Fetched::Absent)
            );
        }
        // req.ssl_ver reads anything else as a possible SSLv2 hello, so it waits for the
        // fourth byte (HAProxy 2.6 waits too).
        assert_eq!(ssl_ver(b"GE", false), Fetched::NeedMore);
        assert_eq!(ssl_ver(b"GE", true), Fetched::Absent);
        assert_eq!(hello_type(b"GE", false), Fetched::Absent);
        assert_eq!(sni(b"GE", false), Fetched::Absent);
        assert_eq!(
            all(b"", false),
            (Fetched::NeedMore, Fetched::NeedMore, Fetched::NeedMore)
        );
        assert_eq!(
            all(b"", true),
            (Fetched::Absent, Fetched::Absent, Fetched::Absent)
        );
    }

    #[test]
    fn sslv2_hello_has_a_version_only() {
        let data = hex(SSLV2);
        assert_eq!(ssl_ver(&data, false), Fetched::Value(TLS_1_0));
        assert_eq!(hello_type(&data, false), Fetched::Absent);
        assert_eq!(sni(&data, false), Fetched::Absent);
        for cut in 0..data.len() {
            assert_eq!(ssl_ver(&data[..cut], false), Fetched::NeedMore, "{cut}");
            assert_eq!(ssl_ver(&data[..cut], true), Fetched::Absent, "{cut}");
        }
        // The 3-byte header: a 14-bit length and a padding length, padding then awaited.
        let mut long = vec![0x00, 0x22, 0x02];
        long.extend_from_slice(&data[2..]);
        assert_eq!(ssl_ver(&long, false), Fetched::NeedMore);
        long.extend_from_slice(&[0, 0]);
        assert_eq!(ssl_ver(&long, false), Fetched::Value(TLS_1_0));
        // Lengths that disagree, a bad challenge length, a cipher list not in threes.
        for (at, byte) in [(1, 0x23), (10, 0x0f), (6, 0x08)] {
            let mut bad = data.clone();
            bad[at] = byte;
            assert_eq!(ssl_ver(&bad, false), Fetched::Absent, "{at}");
        }
    }

    #[test]
    fn record_header_quirks() {
        let data = hex(TLS12_SNI);
        // 0xFF passes as a record type for hello_type and ssl_ver, not for sni.
        let mut ff = data.clone();
        ff[0] = 0xFF;
        assert_eq!(
            all(&ff, false),
            (Fetched::Value(1), Fetched::Value(TLS_1_2), Fetched::Absent)
        );
        // A record major version below 3 rules everything out.
        let mut old = data.clone();
        old[1] = 2;
        assert_eq!(
            all(&old, false),
            (Fetched::Absent, Fetched::Absent, Fetched::Absent)
        );
        // A client_version of 3.0 (SSLv3): version given, SNI refused (TLS 1.0 minimum).
        let mut ssl3 = data.clone();
        ssl3[10] = 0;
        assert_eq!(
            all(&ssl3, false),
            (
                Fetched::Value(1),
                Fetched::Value(3 * 65_536),
                Fetched::Absent
            )
        );
        // ssl_ver's record length bounds.
        let mut huge = data.clone();
        huge[3..5].copy_from_slice(&0x4801u16.to_be_bytes());
        assert_eq!(ssl_ver(&huge, false), Fetched::Absent);
        // A record longer than HAProxy's inspection buffer: only that much is awaited, after
        // the record header.
        let mut long = data.clone();
        long[3..5].copy_from_slice(&0x4000u16.to_be_bytes());
        long.resize(5 + RECV_LIMIT - 1, 0);
        assert_eq!(ssl_ver(&long, false), Fetched::NeedMore);
        long.push(0);
        assert_eq!(ssl_ver(&long, false), Fetched::Value(TLS_1_2));
    }

    #[test]
    fn sni_entry_of_another_type_is_skipped() {
        let mut data = hex(TLS12_SNI);
        // The first extension is server_name: type, length, list length, then the entry.
        let name_type = data
            .windows(3)
            .position(|w| w == [0x00, 0x00, 0x0f])
            .unwrap();
        data[name_type] = 1;
        assert_eq!(sni(&data, false), Fetched::Absent);
        // A name that is not UTF-8 is absent too.
        let mut data = hex(TLS12_SNI);
        data[name_type + 3] = 0xFF;
        assert_eq!(sni(&data, false), Fetched::Absent);
        // An empty name is a value (HAProxy 2.6 agrees).
        let mut data = hex(TLS12_SNI);
        data[name_type + 2] = 0;
        assert_eq!(sni(&data, false), Fetched::Value(""));
        // A name running past the bytes received: HAProxy would read stale buffer bytes;
        // here it waits, then gives up.
        let mut data = hex(TLS12_SNI);
        data[name_type + 2] = 0xFF;
        assert_eq!(sni(&data, false), Fetched::NeedMore);
        assert_eq!(sni(&data, true), Fetched::Absent);
    }

    #[test]
    fn request_length() {
        assert_eq!(req_len(b""), 0);
        assert_eq!(req_len(&hex(CURL)), 517);
    }

    /// A small deterministic generator (xorshift64*).
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    /// Runs every fetch both ways and checks the answers hang together.
    fn exercise(data: &[u8]) {
        for complete in [false, true] {
            let (t, v, s) = all(data, complete);
            if complete {
                assert!(![t, v].contains(&Fetched::NeedMore));
                assert_ne!(s, Fetched::NeedMore);
            }
            if let Fetched::Value(name) = s {
                assert!(name.len() <= data.len());
            }
        }
    }

    #[test]
    fn random_and_mutated_input_never_panics() {
        let seeds: Vec<Vec<u8>> = [TLS12_SNI, TLS13_SNI, TLS12_NO_SNI, CURL, SSLV2]
            .iter()
            .map(|t| hex(t))
            .collect();
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for round in 0..20_000 {
            let mut data = if round % 5 == 0 {
                let len = rng.below(600);
                (0..len).map(|_| rng.next() as u8).collect()
            } else {
                seeds[rng.below(seeds.len())].clone()
            };
            for _ in 0..rng.below(4) {
                if data.is_empty() {
                    break;
                }
                let at = rng.below(data.len());
                match rng.below(4) {
                    0 => data[at] ^= 1 << rng.below(8),
                    1 => data[at] = rng.next() as u8,
                    // A length field at its largest.
                    2 => {
                        data[at] = 0xFF;
                        if let Some(b) = data.get_mut(at + 1) {
                            *b = 0xFF;
                        }
                    }
                    _ => data.truncate(at),
                }
            }
            exercise(&data);
        }
    }
}
