//! The PROXY protocol header a connection sends first to a server with `send-proxy`
//! (version 1, text) or `send-proxy-v2` (version 2, binary), as specified by HAProxy's
//! proxy-protocol.txt: the client's address and the address it connected to.

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
}
