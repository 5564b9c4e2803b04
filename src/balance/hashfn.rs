//! The hash functions of `hash-type`, bit for bit HAProxy's, so a key lands on the same
//! server behind sluice as behind HAProxy: sdbm (the default), djb2, wt6, crc32 (IEEE, as
//! `cksum`), `none` (the key read as a decimal integer) and the `avalanche` modifier (Bob
//! Jenkins' full-avalanche integer mix). Also `balance source`'s own key, which HAProxy
//! does not hash with these functions: the address's 32-bit words XORed together.

use std::net::IpAddr;

use crate::config::model::HashFunction;

/// `key` hashed by `function`, then mixed if `avalanche`.
pub fn hash(function: HashFunction, avalanche: bool, key: &[u8]) -> u32 {
    let h = match function {
        HashFunction::Sdbm => sdbm(key),
        HashFunction::Djb2 => djb2(key),
        HashFunction::Wt6 => wt6(key),
        HashFunction::Crc32 => crc32(key),
        HashFunction::None => decimal(key),
    };
    if avalanche {
        full_hash(h)
    } else {
        h
    }
}

/// `balance source`'s key: the big-endian 32-bit words of the address XORed, then mixed if
/// `avalanche` (HAProxy ignores the hash function here).
pub fn fold_address(ip: IpAddr, avalanche: bool) -> u32 {
    let h = match ip {
        IpAddr::V4(v4) => u32::from(v4),
        IpAddr::V6(v6) => v6
            .octets()
            .chunks_exact(4)
            .fold(0, |h, w| h ^ u32::from_be_bytes([w[0], w[1], w[2], w[3]])),
    };
    if avalanche {
        full_hash(h)
    } else {
        h
    }
}

pub fn sdbm(key: &[u8]) -> u32 {
    key.iter().fold(0u32, |h, &c| {
        u32::from(c)
            .wrapping_add(h << 6)
            .wrapping_add(h << 16)
            .wrapping_sub(h)
    })
}

pub fn djb2(key: &[u8]) -> u32 {
    key.iter().fold(5_381u32, |h, &c| {
        (h << 5).wrapping_add(h).wrapping_add(u32::from(c))
    })
}

/// Willy Tarreau's wt6: two rotating accumulators whose rotation amounts depend on the data.
pub fn wt6(key: &[u8]) -> u32 {
    let (mut h0, mut h1) = (0xa53c_965a_u32, 0x5ca6_953a_u32);
    let (mut step0, mut step1) = (6u32, 18u32);
    for &c in key {
        let t = u32::from(c);
        h0 = !(h0 ^ t);
        h1 = !(h1.wrapping_add(t));
        let t = h1.rotate_left(step0);
        h1 = h0.rotate_left(step1);
        h0 = t;
        let t = ((h0 >> 16) ^ h1) & 0xffff;
        step0 = t & 0x1f;
        step1 = t >> 11;
    }
    h0 ^ h1
}

/// CRC-32 (IEEE 802.3, reflected polynomial 0xedb88320).
pub fn crc32(key: &[u8]) -> u32 {
    !key.iter().fold(!0u32, |mut h, &c| {
        h ^= u32::from(c);
        for _ in 0..8 {
            h = (h >> 1) ^ (0xedb8_8320 & (h & 1).wrapping_neg());
        }
        h
    })
}

/// `none`: the key is a decimal integer (optional sign, digits up to the first other byte),
/// saturated to 64 bits and truncated to 32 as HAProxy's `read_int64` into an unsigned int.
pub fn decimal(key: &[u8]) -> u32 {
    let (neg, digits) = match key.first() {
        Some(b'-') => (true, &key[1..]),
        Some(b'+') => (false, &key[1..]),
        _ => (false, key),
    };
    let mut n: u64 = 0;
    for &c in digits.iter().take_while(|c| c.is_ascii_digit()) {
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(c - b'0')))
            .unwrap_or(u64::MAX);
    }
    let v: i64 = if neg {
        if n > 1 << 63 {
            i64::MIN
        } else {
            (n as i64).wrapping_neg()
        }
    } else {
        i64::try_from(n).unwrap_or(i64::MAX)
    };
    v as u32
}

/// HAProxy's `full_hash`: one of Bob Jenkins' full-avalanche 32-bit mixes, then a multiply by
/// a prime near 3/4 of the range to spread the result over the whole ring.
pub fn full_hash(a: u32) -> u32 {
    let mut a = a;
    a = a.wrapping_add(0x7ed5_5d16).wrapping_add(a << 12);
    a = (a ^ 0xc761_c23c) ^ (a >> 19);
    a = a.wrapping_add(0x1656_67b1).wrapping_add(a << 5);
    a = a.wrapping_add(0xd3a2_646c) ^ (a << 9);
    a = a.wrapping_add(0xfd70_46c5).wrapping_add(a << 3);
    a = (a ^ 0xb55a_4f09) ^ (a >> 16);
    a.wrapping_mul(3_221_225_473)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        // CRC-32 check value of the standard.
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        assert_eq!(crc32(b""), 0);
        assert_eq!(djb2(b""), 5_381);
        assert_eq!(djb2(b"a"), 177_670);
        assert_eq!(sdbm(b""), 0);
        assert_eq!(sdbm(b"a"), 97);
        assert_eq!(sdbm(b"ab"), 97u32.wrapping_mul(65_599) + 98);
        assert_eq!(wt6(b""), 0xa53c_965a ^ 0x5ca6_953a);
    }

    #[test]
    fn decimal_reads_like_haproxy() {
        assert_eq!(decimal(b"1234"), 1_234);
        assert_eq!(decimal(b"12ab"), 12);
        assert_eq!(decimal(b"-1"), u32::MAX);
        assert_eq!(decimal(b"+7"), 7);
        assert_eq!(decimal(b""), 0);
        assert_eq!(decimal(&[127, 0, 0, 1]), 0);
        assert_eq!(decimal(b"99999999999999999999999"), i64::MAX as u32);
        assert_eq!(decimal(b"4294967297"), 1);
    }

    #[test]
    fn source_folds_the_address_words() {
        assert_eq!(
            fold_address("127.0.0.2".parse().unwrap(), false),
            0x7f00_0002
        );
        assert_eq!(fold_address("::1".parse().unwrap(), false), 1);
        assert_eq!(
            fold_address("1:2:3:4:5:6:7:8".parse().unwrap(), false),
            0x0001_0002 ^ 0x0003_0004 ^ 0x0005_0006 ^ 0x0007_0008
        );
        assert_eq!(
            fold_address("10.0.0.1".parse().unwrap(), true),
            full_hash(0x0a00_0001)
        );
    }

    #[test]
    fn avalanche_spreads_neighbours() {
        let a = full_hash(1);
        let b = full_hash(2);
        assert!((a ^ b).count_ones() > 8, "{a:08x} {b:08x}");
        assert_eq!(hash(HashFunction::Sdbm, true, b"a"), full_hash(97));
    }
}
