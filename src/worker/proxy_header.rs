//! The PROXY protocol (HAProxy's proxy-protocol.txt): the header a connection sends first to
//! a server with `send-proxy` (version 1, text) or `send-proxy-v2` (version 2, binary), and
//! the parser for the header a client sends on a `bind ... accept-proxy`. The parser takes
//! whatever bytes have arrived and never panics on them.

use std::net::{IpAddr, SocketAddr};

/// `PROXY TCP4 <src> <dst> <sport> <dport>\r\n` (TCP6 for IPv6, UNKNOWN when the families
/// differ).
pub fn v1(src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
    let family = match (src, dst) {
        (SocketAddr::V4(_), SocketAddr::V4(_)) => "TCP4",
        (SocketAddr::V6(_), SocketAddr::V6(_)) => "TCP6",
        _ => return b"PROXY UNKNOWN\r\n".to_vec(),
    };
    format!(
        "PROXY {family} {} {} {} {}\r\n",
        src.ip(),
        dst.ip(),
        src.port(),
        dst.port()
    )
    .into_bytes()
}

/// The 12-byte signature that starts every version 2 header.
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";

/// The version 2 header: signature, PROXY command, TCP over IPv4 (or IPv6 when either
/// address is IPv6, IPv4 ones then mapped), addresses and ports.
pub fn v2(src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
    let mut h = Vec::with_capacity(52);
    h.extend_from_slice(&V2_SIGNATURE);
    h.push(0x21);
    match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            h.push(0x11);
            h.extend_from_slice(&12u16.to_be_bytes());
            h.extend_from_slice(&s.octets());
            h.extend_from_slice(&d.octets());
        }
        (s, d) => {
            let six = |ip: IpAddr| match ip {
                IpAddr::V4(v4) => v4.to_ipv6_mapped(),
                IpAddr::V6(v6) => v6,
            };
            h.push(0x21);
            h.extend_from_slice(&36u16.to_be_bytes());
            h.extend_from_slice(&six(s).octets());
            h.extend_from_slice(&six(d).octets());
        }
    }
    h.extend_from_slice(&src.port().to_be_bytes());
    h.extend_from_slice(&dst.port().to_be_bytes());
    h
}

/// The longest header accepted: a v1 line is at most 107 bytes; v2 carries TLVs, capped
/// here as HAProxy caps them.
pub const MAX_HEADER: usize = 536;

/// What the bytes received so far say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// Not a complete header yet.
    Incomplete,
    /// Not a PROXY header, or a broken one.
    Invalid(&'static str),
    /// A complete header of `len` bytes. `addrs` is None for LOCAL (v2) or UNKNOWN (v1)
    /// connections: the real addresses stay.
    Done {
        len: usize,
        addrs: Option<(SocketAddr, SocketAddr)>,
    },
}

/// Parses the start of a connection (v1 or v2).
pub fn parse(b: &[u8]) -> Received {
    let sig_len = b.len().min(V2_SIGNATURE.len());
    if b[..sig_len] == V2_SIGNATURE[..sig_len] {
        return parse_v2(b);
    }
    let prefix = b"PROXY ";
    let n = b.len().min(prefix.len());
    if b[..n] != prefix[..n] {
        return Received::Invalid("not a PROXY protocol header");
    }
    parse_v1(b)
}

fn parse_v1(b: &[u8]) -> Received {
    let Some(end) = b.windows(2).take(107).position(|w| w == b"\r\n") else {
        return if b.len() >= 107 {
            Received::Invalid("PROXY v1 line longer than 107 bytes")
        } else {
            Received::Incomplete
        };
    };
    let Ok(line) = std::str::from_utf8(&b[..end]) else {
        return Received::Invalid("PROXY v1 line is not text");
    };
    let f: Vec<&str> = line.split(' ').collect();
    let len = end + 2;
    match f.as_slice() {
        ["PROXY", "UNKNOWN", ..] => Received::Done { len, addrs: None },
        ["PROXY", fam @ ("TCP4" | "TCP6"), s, d, sp, dp] => {
            let (Ok(s), Ok(d)) = (s.parse::<IpAddr>(), d.parse::<IpAddr>()) else {
                return Received::Invalid("PROXY v1 address");
            };
            if (*fam == "TCP4") != (s.is_ipv4() && d.is_ipv4()) || s.is_ipv4() != d.is_ipv4() {
                return Received::Invalid("PROXY v1 address family");
            }
            let port = |p: &str| {
                (!p.is_empty() && p.len() <= 5 && p.bytes().all(|c| c.is_ascii_digit()))
                    .then(|| p.parse::<u16>().ok())
                    .flatten()
            };
            let (Some(sp), Some(dp)) = (port(sp), port(dp)) else {
                return Received::Invalid("PROXY v1 port");
            };
            Received::Done {
                len,
                addrs: Some((SocketAddr::new(s, sp), SocketAddr::new(d, dp))),
            }
        }
        _ => Received::Invalid("PROXY v1 line"),
    }
}

fn parse_v2(b: &[u8]) -> Received {
    if b.len() < 16 {
        return Received::Incomplete;
    }
    let (ver_cmd, fam) = (b[12], b[13]);
    if ver_cmd >> 4 != 2 {
        return Received::Invalid("PROXY v2 version");
    }
    let body = usize::from(u16::from_be_bytes([b[14], b[15]]));
    let len = 16 + body;
    if len > MAX_HEADER {
        return Received::Invalid("PROXY v2 header too long");
    }
    if b.len() < len {
        return Received::Incomplete;
    }
    let a = &b[16..len];
    match ver_cmd & 0x0f {
        // LOCAL: health checks of the proxy in front; keep the real addresses.
        0 => return Received::Done { len, addrs: None },
        1 => {}
        _ => return Received::Invalid("PROXY v2 command"),
    }
    let addrs = match fam {
        0x11 if a.len() >= 12 => {
            let ip = |o: usize| IpAddr::from([a[o], a[o + 1], a[o + 2], a[o + 3]]);
            let port = |o: usize| u16::from_be_bytes([a[o], a[o + 1]]);
            Some((
                SocketAddr::new(ip(0), port(8)),
                SocketAddr::new(ip(4), port(10)),
            ))
        }
        0x21 if a.len() >= 36 => {
            let ip = |o: usize| {
                let mut x = [0u8; 16];
                x.copy_from_slice(&a[o..o + 16]);
                IpAddr::from(x)
            };
            let port = |o: usize| u16::from_be_bytes([a[o], a[o + 1]]);
            Some((
                SocketAddr::new(ip(0), port(32)),
                SocketAddr::new(ip(16), port(34)),
            ))
        }
        0x11 | 0x21 => return Received::Invalid("PROXY v2 address block too short"),
        // UNSPEC or UNIX: no usable TCP addresses.
        _ => None,
    };
    Received::Done { len, addrs }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_1() {
        let h = v1(
            "10.0.0.1:40000".parse().unwrap(),
            "10.0.0.2:443".parse().unwrap(),
        );
        assert_eq!(h, b"PROXY TCP4 10.0.0.1 10.0.0.2 40000 443\r\n");
        let h = v1("[::1]:1".parse().unwrap(), "[::2]:2".parse().unwrap());
        assert_eq!(h, b"PROXY TCP6 ::1 ::2 1 2\r\n");
        let h = v1("10.0.0.1:1".parse().unwrap(), "[::2]:2".parse().unwrap());
        assert_eq!(h, b"PROXY UNKNOWN\r\n");
    }

    #[test]
    fn version_2() {
        let h = v2(
            "10.0.0.1:40000".parse().unwrap(),
            "10.0.0.2:443".parse().unwrap(),
        );
        assert_eq!(h.len(), 16 + 12);
        assert_eq!(&h[..12], &V2_SIGNATURE);
        assert_eq!(&h[12..16], &[0x21, 0x11, 0, 12]);
        assert_eq!(&h[16..20], &[10, 0, 0, 1]);
        assert_eq!(&h[24..26], &40_000u16.to_be_bytes());
        assert_eq!(&h[26..28], &443u16.to_be_bytes());
        let h = v2("[::1]:1".parse().unwrap(), "10.0.0.2:2".parse().unwrap());
        assert_eq!(h.len(), 16 + 36);
        assert_eq!(&h[12..16], &[0x21, 0x21, 0, 36]);
    }

    #[test]
    fn parses_what_it_builds() {
        let (s, d): (SocketAddr, SocketAddr) = (
            "1.2.3.4:5555".parse().unwrap(),
            "10.0.0.1:80".parse().unwrap(),
        );
        let mut h = v1(s, d);
        h.extend_from_slice(b"hello");
        assert_eq!(
            parse(&h),
            Received::Done {
                len: h.len() - 5,
                addrs: Some((s, d))
            }
        );
        let h = v2(s, d);
        assert_eq!(
            parse(&h),
            Received::Done {
                len: h.len(),
                addrs: Some((s, d))
            }
        );
        let (s6, d6): (SocketAddr, SocketAddr) = (
            "[2001:db8::1]:1".parse().unwrap(),
            "[::1]:2".parse().unwrap(),
        );
        assert_eq!(
            parse(&v2(s6, d6)),
            Received::Done {
                len: 52,
                addrs: Some((s6, d6))
            }
        );
        assert_eq!(
            parse(&v1(s6, d6)).clone(),
            Received::Done {
                len: v1(s6, d6).len(),
                addrs: Some((s6, d6))
            }
        );
    }

    #[test]
    fn partial_local_unknown_and_broken() {
        let h = v1("1.2.3.4:5".parse().unwrap(), "5.6.7.8:9".parse().unwrap());
        for cut in 0..h.len() {
            assert_eq!(parse(&h[..cut]), Received::Incomplete, "cut {cut}");
        }
        let h = v2("1.2.3.4:5".parse().unwrap(), "5.6.7.8:9".parse().unwrap());
        for cut in 0..h.len() {
            assert_eq!(parse(&h[..cut]), Received::Incomplete, "cut {cut}");
        }
        assert_eq!(
            parse(b"PROXY UNKNOWN\r\n"),
            Received::Done {
                len: 15,
                addrs: None
            }
        );
        let mut local = V2_SIGNATURE.to_vec();
        local.extend_from_slice(&[0x20, 0x00, 0, 0]);
        assert_eq!(
            parse(&local),
            Received::Done {
                len: 16,
                addrs: None
            }
        );
        assert!(matches!(parse(b"GET / HTTP/1.1\r\n"), Received::Invalid(_)));
        assert!(matches!(
            parse(b"PROXY TCP4 1.2.3.4 ::1 1 2\r\n"),
            Received::Invalid(_)
        ));
        assert!(matches!(
            parse(b"PROXY TCP4 1.2.3.4 5.6.7.8 99999 2\r\n"),
            Received::Invalid(_)
        ));
        assert!(matches!(
            parse(b"PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n"),
            Received::Invalid(_)
        ));
        assert!(matches!(parse(&[b'P'; 200][..]), Received::Invalid(_)));
        let mut long = b"PROXY ".to_vec();
        long.extend_from_slice(&[b'x'; 200]);
        assert!(matches!(parse(&long), Received::Invalid(_)));
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        for round in 0..20_000 {
            let n = (round % 80) as usize;
            let mut b: Vec<u8> = (0..n)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            if round % 3 == 0 && b.len() >= 12 {
                b[..12].copy_from_slice(&V2_SIGNATURE);
            } else if round % 3 == 1 && b.len() >= 6 {
                b[..6].copy_from_slice(b"PROXY ");
            }
            let _ = parse(&b);
        }
    }
}
