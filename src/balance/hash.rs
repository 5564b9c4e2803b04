//! `balance source` and `balance hash <key>`: a key of the connection, hashed to 32 bits as
//! HAProxy hashes it, picks the server through the backend's `hash-type`: `map-based` (the
//! default: the hash modulo the static-rr map of weights, as HAProxy's lb_map), `consistent`
//! (HAProxy's ring, see chash.rs, with `hash-balance-factor`) or `maglev` (sluice's Maglev
//! table, see maglev.rs). The same key always reaches the same server while the servers in
//! service stay the same, in every worker.
//!
//! Keys, as HAProxy builds them: `source` XORs the client address's 32-bit words (no hash
//! function); `hash dst`/`hash src` hash the address bytes (4 or 16), `src_port`/`dst_port` the
//! port as an 8-byte big-endian integer, `req.ssl_sni` the server name. A connection without
//! its key (no SNI) is balanced round-robin over the same map, ring or table, as HAProxy
//! falls back. The chosen server at its `maxconn` queues the connection (the key sticks);
//! only a retry's `avoid` moves it to the next server.

use std::net::IpAddr;

use super::chash::Ring;
use super::maglev::Table;
use super::static_rr::{server_map, walk, weight_gcd};
use super::{hashfn, lease_first, Algorithm, ConnKeys, Counters, Pick, PickCtx, Pool};
use crate::config::model::{Balance, HashKey, HashMethod, HashType};

pub struct Hash {
    key: Key,
    hash_type: HashType,
    balance_factor: u32,
    /// The gcd of the configured weights, for the map (fixed at load, as HAProxy).
    gcd: u32,
    lookup: Lookup,
}

/// What is hashed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    /// `balance source`: the folded client address.
    Source,
    Fetch(HashKey),
}

enum Lookup {
    /// Slots of the static-rr map, member indexes.
    Map(Vec<u32>),
    Ring(Ring),
    Maglev(Table),
}

impl Hash {
    /// For `balance` (`source` or `hash <key>`), `hash-type` and `hash-balance-factor`.
    pub fn new(balance: Balance, hash_type: HashType, balance_factor: u32, pool: &Pool) -> Hash {
        let key = match balance {
            Balance::Hash(k) => Key::Fetch(k),
            _ => Key::Source,
        };
        Hash {
            key,
            hash_type,
            balance_factor,
            gcd: weight_gcd(pool),
            lookup: Lookup::Map(Vec::new()),
        }
    }

    /// The 32-bit hash of the connection's key, or None when it has none.
    fn key_hash(&self, ctx: &PickCtx, keys: &ConnKeys<'_>) -> Option<u32> {
        let HashType {
            function,
            avalanche,
            ..
        } = self.hash_type;
        let hash = |bytes: &[u8]| hashfn::hash(function, avalanche, bytes);
        let port = |p: u16| hash(&i64::from(p).to_be_bytes());
        match self.key {
            Key::Source => ctx.src.map(|ip| hashfn::fold_address(ip, avalanche)),
            Key::Fetch(HashKey::Src) => ctx.src.map(|ip| hash_ip(ip, hash)),
            Key::Fetch(HashKey::Dst) => keys.dst.map(|a| hash_ip(a.ip(), hash)),
            Key::Fetch(HashKey::SrcPort) => keys.src_port.map(port),
            Key::Fetch(HashKey::DstPort) => keys.dst.map(|a| port(a.port())),
            Key::Fetch(HashKey::ReqSslSni) => keys.sni.map(|s| hash(s.as_bytes())),
        }
    }

    /// The member for `hash`, moving off `avoid` (a member index) if another server can.
    fn member_for(&self, pool: &Pool, hash: u32, avoid: Option<usize>, c: &Counters) -> usize {
        match &self.lookup {
            Lookup::Map(map) => {
                let start = hash as usize % map.len();
                let mut slots = walk(map, start);
                let first = map[start] as usize;
                if Some(first) == avoid {
                    slots.find(|&m| m != first).unwrap_or(first)
                } else {
                    first
                }
            }
            Lookup::Ring(ring) => ring.server_for(hash, avoid, self.balance_factor, |m| {
                c.active(pool.members[m].id)
            }),
            Lookup::Maglev(table) => table.server_for(hash, avoid),
        }
    }

    /// No key: round-robin over the lookup, through the backend's shared rotation.
    fn round_robin(&self, pool: &Pool, ctx: &PickCtx, counters: &'static Counters) -> Pick {
        let n = self.lookup.len();
        let start = counters.next_turn(pool.backend) % n;
        let order = (0..n).map(|k| self.lookup.member_at((start + k) % n));
        lease_first(pool, order, ctx.avoid, counters)
    }
}

impl Lookup {
    /// The slots of the map, points of the ring or slots of the table.
    fn len(&self) -> usize {
        match self {
            Lookup::Map(map) => map.len(),
            Lookup::Ring(ring) => ring.len(),
            Lookup::Maglev(table) => table.len(),
        }
    }

    /// The member at slot (or point) `i`.
    fn member_at(&self, i: usize) -> usize {
        match self {
            Lookup::Map(map) => map[i] as usize,
            Lookup::Ring(ring) => ring.member_at(i),
            Lookup::Maglev(table) => table.member_at(i),
        }
    }
}

/// `hash` over the address bytes: 4 for IPv4, 16 for IPv6.
fn hash_ip(ip: IpAddr, hash: impl Fn(&[u8]) -> u32) -> u32 {
    match ip {
        IpAddr::V4(v4) => hash(&v4.octets()),
        IpAddr::V6(v6) => hash(&v6.octets()),
    }
}

impl Algorithm for Hash {
    fn rebuild(&mut self, pool: &Pool) {
        self.lookup = match self.hash_type.method {
            HashMethod::MapBased => Lookup::Map(server_map(pool, self.gcd)),
            HashMethod::Consistent => Lookup::Ring(Ring::new(pool)),
            HashMethod::Maglev => Lookup::Maglev(Table::new(pool)),
        };
    }

    fn pick(&mut self, pool: &Pool, ctx: &PickCtx, counters: &'static Counters) -> Pick {
        self.pick_keyed(pool, ctx, &ConnKeys::default(), counters)
    }

    fn pick_keyed(
        &mut self,
        pool: &Pool,
        ctx: &PickCtx,
        keys: &ConnKeys<'_>,
        counters: &'static Counters,
    ) -> Pick {
        if self.lookup.len() == 0 {
            return Pick::NoServer;
        }
        let Some(hash) = self.key_hash(ctx, keys) else {
            return self.round_robin(pool, ctx, counters);
        };
        let avoid = ctx
            .avoid
            .and_then(|id| pool.members.iter().position(|m| m.id == id));
        let m = &pool.members[self.member_for(pool, hash, avoid, counters)];
        match counters.try_lease(m.id, m.maxconn) {
            Some(lease) => Pick::Leased(lease),
            None => Pick::Full,
        }
    }

    fn needs_sni(&self) -> bool {
        self.key == Key::Fetch(HashKey::ReqSslSni)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::pool;
    use super::*;
    use crate::config::model::{HashFunction, ServerId};
    use std::net::SocketAddr;

    fn alg(balance: Balance, ht: HashType, p: &Pool) -> Hash {
        let mut h = Hash::new(balance, ht, 0, p);
        h.rebuild(p);
        h
    }

    fn ht(method: HashMethod, function: HashFunction, avalanche: bool) -> HashType {
        HashType {
            method,
            function,
            avalanche,
        }
    }

    fn src(i: u8) -> PickCtx {
        PickCtx {
            src: Some(IpAddr::from([127, 0, 0, i])),
            avoid: None,
        }
    }

    /// The servers (1-based) for clients 127.0.0.2 to 127.0.0.20, as a string.
    fn clients(h: &mut Hash, p: &Pool) -> String {
        let c = Counters::leak(p.members.len(), 1);
        (2..=20)
            .map(|i| match h.pick(p, &src(i), c) {
                Pick::Leased(l) => char::from(b'1' + l.server().0 as u8),
                other => panic!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn source_lands_where_haproxy_puts_it() {
        use HashFunction::*;
        use HashMethod::*;
        // Recorded from HAProxy 2.6 with clients bound to 127.0.0.2 .. 127.0.0.20.
        // `source` ignores the hash function; `hash-type consistent` alone means avalanche.
        let cases = [
            (ht(MapBased, Sdbm, false), [1, 1, 1], "1231231231231231231"),
            (ht(MapBased, Sdbm, false), [3, 2, 1], "1121231121231121231"),
            (ht(MapBased, Djb2, false), [3, 2, 1], "1121231121231121231"),
            (ht(MapBased, Sdbm, true), [1, 1, 1], "1112133121122131131"),
            (ht(MapBased, Sdbm, true), [3, 2, 1], "1111132111112121121"),
            (ht(Consistent, Sdbm, true), [1, 1, 1], "1312131132333111311"),
            (ht(Consistent, Sdbm, true), [3, 2, 1], "1211131122313211111"),
            (
                ht(Consistent, Crc32, false),
                [1, 1, 1],
                "2222222222222222222",
            ),
        ];
        for (t, weights, expected) in cases {
            let p = pool(&weights, &[]);
            let got = clients(&mut alg(Balance::Source, t, &p), &p);
            assert_eq!(got, expected, "{t:?} {weights:?}");
        }
    }

    #[test]
    fn hash_src_lands_where_haproxy_puts_it() {
        use HashFunction::*;
        use HashMethod::*;
        let cases = [
            (ht(MapBased, Sdbm, false), [3, 2, 1], "1231121231121231121"),
            (ht(MapBased, Sdbm, true), [1, 1, 1], "2333223211131321132"),
            (ht(MapBased, Djb2, false), [3, 2, 1], "2311212311212311212"),
            (ht(MapBased, Wt6, false), [1, 1, 1], "3133111212332231313"),
            (ht(MapBased, Crc32, false), [3, 2, 1], "2211312222113312223"),
            (ht(Consistent, Sdbm, true), [1, 1, 1], "2132311323131111321"),
            (ht(Consistent, Sdbm, true), [3, 2, 1], "2131311112131111221"),
            (
                ht(Consistent, Crc32, false),
                [3, 2, 1],
                "1211121223122112121",
            ),
        ];
        for (t, weights, expected) in cases {
            let p = pool(&weights, &[]);
            let got = clients(&mut alg(Balance::Hash(HashKey::Src), t, &p), &p);
            assert_eq!(got, expected, "{t:?} {weights:?}");
        }
    }

    #[test]
    fn ports_hash_as_eight_byte_integers() {
        use HashFunction::*;
        use HashMethod::*;
        // Recorded from HAProxy 2.6, `balance hash src_port`, weights 3,2,1, clients bound
        // to ports 61_200 .. 61_218.
        let cases = [
            (ht(MapBased, Sdbm, false), "1231121231121231121"),
            (ht(Consistent, Sdbm, true), "2112112132212123111"),
            (ht(MapBased, Crc32, false), "1222313121111311212"),
        ];
        let c = Counters::leak(3, 1);
        let p = pool(&[3, 2, 1], &[]);
        for (t, expected) in cases {
            let mut h = alg(Balance::Hash(HashKey::SrcPort), t, &p);
            let got: String = (61_200..61_219)
                .map(|port| {
                    let keys = ConnKeys {
                        src_port: Some(port),
                        ..ConnKeys::default()
                    };
                    match h.pick_keyed(&p, &PickCtx::default(), &keys, c) {
                        Pick::Leased(l) => char::from(b'1' + l.server().0 as u8),
                        other => panic!("{other:?}"),
                    }
                })
                .collect();
            assert_eq!(got, expected, "{t:?}");
        }
        let dst: SocketAddr = "10.0.0.1:443".parse().unwrap();
        let keys = ConnKeys {
            dst: Some(dst),
            sni: Some("example.com"),
            ..ConnKeys::default()
        };
        let mut h = alg(
            Balance::Hash(HashKey::DstPort),
            ht(HashMethod::MapBased, HashFunction::Crc32, false),
            &p,
        );
        assert_eq!(
            h.key_hash(&PickCtx::default(), &keys),
            Some(hashfn::crc32(&443i64.to_be_bytes()))
        );
        h.key = Key::Fetch(HashKey::Dst);
        assert_eq!(
            h.key_hash(&PickCtx::default(), &keys),
            Some(hashfn::crc32(&[10, 0, 0, 1]))
        );
        h.key = Key::Fetch(HashKey::ReqSslSni);
        assert!(h.needs_sni());
        assert_eq!(
            h.key_hash(&PickCtx::default(), &keys),
            Some(hashfn::crc32(b"example.com"))
        );
    }

    #[test]
    fn no_key_falls_back_to_round_robin() {
        let c = Counters::leak(3, 1);
        let p = pool(&[1, 1, 1], &[]);
        for method in [
            HashMethod::MapBased,
            HashMethod::Consistent,
            HashMethod::Maglev,
        ] {
            let mut h = alg(
                Balance::Hash(HashKey::ReqSslSni),
                ht(method, HashFunction::Sdbm, false),
                &p,
            );
            let mut seen = [0; 3];
            for _ in 0..300 {
                let Pick::Leased(l) = h.pick(&p, &PickCtx::default(), c) else {
                    panic!()
                };
                seen[l.server().index()] += 1;
            }
            assert!(seen.iter().all(|&n| n > 50), "{method:?} {seen:?}");
        }
    }

    #[test]
    fn full_server_queues_and_avoid_moves_on() {
        let c = Counters::leak(3, 1);
        for method in [
            HashMethod::MapBased,
            HashMethod::Consistent,
            HashMethod::Maglev,
        ] {
            let mut p = pool(&[1, 1, 1], &[]);
            let mut h = alg(Balance::Source, ht(method, HashFunction::Sdbm, true), &p);
            let Pick::Leased(first) = h.pick(&p, &src(7), c) else {
                panic!()
            };
            let sticky = first.server();
            p.members[sticky.index()].maxconn = Some(1);
            assert!(matches!(h.pick(&p, &src(7), c), Pick::Full), "{method:?}");
            let ctx = PickCtx {
                avoid: Some(sticky),
                ..src(7)
            };
            let Pick::Leased(other) = h.pick(&p, &ctx, c) else {
                panic!()
            };
            assert_ne!(other.server(), sticky, "{method:?}");
        }
    }

    #[test]
    fn consistent_moves_about_one_in_n_keys() {
        for method in [HashMethod::Consistent, HashMethod::Maglev] {
            let n = 10;
            let mut p = pool(&[1; 10], &[]);
            let t = ht(method, HashFunction::Sdbm, true);
            let mut h = alg(Balance::Hash(HashKey::SrcPort), t, &p);
            let keys: Vec<u32> = (0..20_000u32).map(hashfn::full_hash).collect();
            let before: Vec<usize> = keys
                .iter()
                .map(|&k| h.member_for(&p, k, None, Counters::leak(n, 1)))
                .collect();
            p.members[3].usable = false;
            p.refresh();
            h.rebuild(&p);
            let c = Counters::leak(n, 1);
            let after: Vec<usize> = keys.iter().map(|&k| h.member_for(&p, k, None, c)).collect();
            let moved = before.iter().zip(&after).filter(|(a, b)| a != b).count();
            let bound = keys.len() * (100 / n + 5) / 100;
            assert!(
                moved <= bound,
                "{method:?}: {moved} of {} moved",
                keys.len()
            );
            if method == HashMethod::Consistent {
                // Only the keys of the server that left moved.
                for (a, b) in before.iter().zip(&after) {
                    if a != b {
                        assert_eq!(*a, 3);
                    }
                }
            }
        }
        // Map-based, for contrast, moves most keys.
        let mut p = pool(&[1; 10], &[]);
        let t = ht(HashMethod::MapBased, HashFunction::Sdbm, true);
        let mut h = alg(Balance::Hash(HashKey::SrcPort), t, &p);
        let c = Counters::leak(10, 1);
        let before: Vec<usize> = (0..1_000)
            .map(|k| h.member_for(&p, hashfn::full_hash(k), None, c))
            .collect();
        p.members[3].usable = false;
        p.refresh();
        h.rebuild(&p);
        let moved = (0..1_000)
            .filter(|&k| h.member_for(&p, hashfn::full_hash(k), None, c) != before[k as usize])
            .count();
        assert!(moved > 500, "{moved}");
    }

    #[test]
    fn balance_factor_bounds_the_load() {
        let c = Counters::leak(4, 1);
        let p = pool(&[1, 1, 1, 1], &[]);
        let t = ht(HashMethod::Consistent, HashFunction::Sdbm, true);
        let mut h = Hash::new(Balance::Source, t, 125, &p);
        h.rebuild(&p);
        // One client, many connections: without a bound they would all go to one server.
        let held: Vec<_> = (0..40)
            .map(|_| match h.pick(&p, &src(9), c) {
                Pick::Leased(l) => l,
                other => panic!("{other:?}"),
            })
            .collect();
        for s in 0..4 {
            let n = c.active(ServerId(s));
            // 125% of the 10 average, rounded up, at the time of each pick.
            assert!(n <= 13, "server {s} holds {n}");
        }
        drop(held);
    }

    #[test]
    fn backups_take_over_and_give_back() {
        let c = Counters::leak(3, 1);
        let mut p = pool(&[1, 1, 1], &[2]);
        let mut h = alg(
            Balance::Source,
            ht(HashMethod::Consistent, HashFunction::Sdbm, true),
            &p,
        );
        let on = |h: &mut Hash, p: &Pool| match h.pick(p, &src(5), c) {
            Pick::Leased(l) => l.server().0,
            other => panic!("{other:?}"),
        };
        assert!(on(&mut h, &p) < 2);
        p.members[0].usable = false;
        p.members[1].usable = false;
        p.refresh();
        h.rebuild(&p);
        assert_eq!(on(&mut h, &p), 2);
        p.members[1].usable = true;
        p.refresh();
        h.rebuild(&p);
        assert_eq!(on(&mut h, &p), 1);
        p.members[1].usable = false;
        p.members[2].usable = false;
        p.refresh();
        h.rebuild(&p);
        assert!(matches!(h.pick(&p, &src(5), c), Pick::NoServer));
    }
}
