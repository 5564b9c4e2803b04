//! `balance random` / `random(<draws>)`: power of N choices. Each pick draws `draws` servers
//! (2 by default) at random, each with a probability proportional to its effective weight,
//! and takes the one with the fewest live connections per unit of weight (counted by every
//! worker on the shared atomics), the later draw on a tie, as HAProxy's get_server_rnd.
//! Servers at their `maxconn` are not drawn into the comparison; if all draws are full the
//! pick falls back to the first server with room from a random place. Each worker has its
//! own small generator (wyrand), seeded from the clock and the thread.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

use super::{lease_first, Algorithm, Counters, Pick, PickCtx, Pool};

pub struct Random {
    draws: u32,
    rng: Rng,
    /// (end of the server's range of weight, member index), by range.
    ranges: Vec<(u64, u32)>,
}

impl Random {
    pub fn new(draws: u32) -> Random {
        Random::with_rng(draws, Rng::seeded())
    }

    /// With a fixed seed, for reproducible tests and benchmarks.
    pub fn with_seed(draws: u32, seed: u64) -> Random {
        Random::with_rng(draws, Rng(seed))
    }

    fn with_rng(draws: u32, rng: Rng) -> Random {
        Random {
            draws: draws.max(1),
            rng,
            ranges: Vec::new(),
        }
    }

    /// A server drawn with a probability proportional to its weight; on `avoid`, the next one.
    fn draw(&mut self, avoid: Option<usize>) -> usize {
        let total = self.ranges.last().map_or(0, |r| r.0);
        let at = self.rng.below(total);
        let mut k = self.ranges.partition_point(|&(end, _)| end <= at);
        if Some(self.ranges[k].1 as usize) == avoid && self.ranges.len() > 1 {
            k = (k + 1) % self.ranges.len();
        }
        self.ranges[k].1 as usize
    }
}

impl Algorithm for Random {
    fn rebuild(&mut self, pool: &Pool) {
        let mut end = 0u64;
        self.ranges = pool
            .serving()
            .iter()
            .filter(|&&i| pool.members[i].eweight > 0)
            .map(|&i| {
                end += u64::from(pool.members[i].eweight);
                (end, i as u32)
            })
            .collect();
    }

    fn pick(&mut self, pool: &Pool, ctx: &PickCtx, counters: &'static Counters) -> Pick {
        if self.ranges.is_empty() {
            return Pick::NoServer;
        }
        let avoid = ctx
            .avoid
            .and_then(|id| pool.members.iter().position(|m| m.id == id));
        // (member, active, weight) of the best draw so far.
        let mut best: Option<(usize, u32, u64)> = None;
        for _ in 0..self.draws {
            let i = self.draw(avoid);
            let m = &pool.members[i];
            let active = counters.active(m.id);
            if m.maxconn.is_some_and(|max| active >= max) {
                continue;
            }
            let weight = u64::from(m.eweight);
            let keep_best =
                best.is_some_and(|b| b.0 != i && u64::from(active) * b.2 > u64::from(b.1) * weight);
            if !keep_best {
                best = Some((i, active, weight));
            }
        }
        if let Some((i, _, _)) = best {
            let m = &pool.members[i];
            if let Some(lease) = counters.try_lease(m.id, m.maxconn) {
                return Pick::Leased(lease);
            }
        }
        // Every draw was full (or lost a race): the first server with room from a random place.
        let n = self.ranges.len();
        let start = self.rng.below(n as u64) as usize;
        let ranges = &self.ranges;
        let order = (0..n).map(move |k| ranges[(start + k) % n].1 as usize);
        lease_first(pool, order, ctx.avoid, counters)
    }
}

/// wyrand: a 64-bit generator of one add and one 128-bit multiply per number.
struct Rng(u64);

impl Rng {
    /// Seeded from the clock, the thread, and a process-wide counter (two generators made
    /// in the same nanosecond by the same thread still differ).
    fn seeded() -> Rng {
        static INSTANCES: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(nanos);
        std::hash::Hash::hash(&std::thread::current().id(), &mut h);
        h.write_u64(INSTANCES.fetch_add(1, Ordering::Relaxed));
        Rng(h.finish())
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0xa076_1d64_78bd_642f);
        let t = u128::from(self.0) * u128::from(self.0 ^ 0xe703_7ed1_a0b4_28db);
        (t >> 64) as u64 ^ t as u64
    }

    /// A number in [0, n) (n > 0), by multiply-shift; the bias is below 2^-32 for our ranges.
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::pool;
    use super::super::ConnLease;
    use super::*;
    use crate::config::model::ServerId;

    fn lease(alg: &mut Random, p: &Pool, c: &'static Counters) -> ConnLease {
        match alg.pick(p, &PickCtx::default(), c) {
            Pick::Leased(l) => l,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn single_draws_follow_the_weights() {
        let c = Counters::leak(3, 1);
        let p = pool(&[1, 2, 5], &[]);
        let mut r = Random::with_seed(1, 42);
        r.rebuild(&p);
        let mut seen = [0u32; 3];
        for _ in 0..80_000 {
            seen[lease(&mut r, &p, c).server().index()] += 1;
        }
        for (i, w) in [1.0, 2.0, 5.0].into_iter().enumerate() {
            let share = f64::from(seen[i]) / 80_000.0;
            assert!((share - w / 8.0).abs() < 0.01, "{seen:?}");
        }
    }

    #[test]
    fn two_choices_keep_held_connections_even() {
        let c = Counters::leak(8, 1);
        let p = pool(&[1; 8], &[]);
        let mut r = Random::with_seed(2, 7);
        r.rebuild(&p);
        let held: Vec<ConnLease> = (0..800).map(|_| lease(&mut r, &p, c)).collect();
        let counts: Vec<u32> = (0..8).map(|s| c.active(ServerId(s))).collect();
        let (min, max) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
        // One draw would leave a spread of tens; two keep it within a few.
        assert!(max - min <= 6, "{counts:?}");
        drop(held);
    }

    #[test]
    fn weights_are_honoured_under_load() {
        let c = Counters::leak(2, 1);
        let p = pool(&[3, 1], &[]);
        let mut r = Random::with_seed(2, 9);
        r.rebuild(&p);
        let held: Vec<ConnLease> = (0..400).map(|_| lease(&mut r, &p, c)).collect();
        let (a, b) = (c.active(ServerId(0)), c.active(ServerId(1)));
        assert!((280..=320).contains(&a), "{a} {b}");
        drop(held);
    }

    #[test]
    fn full_servers_and_avoid_are_passed_over() {
        let c = Counters::leak(3, 1);
        let mut p = pool(&[1, 1, 1], &[]);
        p.members[0].maxconn = Some(1);
        p.members[1].maxconn = Some(1);
        p.members[2].maxconn = Some(1);
        let mut r = Random::with_seed(3, 1);
        r.rebuild(&p);
        let held: Vec<ConnLease> = (0..3).map(|_| lease(&mut r, &p, c)).collect();
        let mut ids: Vec<u32> = held.iter().map(|l| l.server().0).collect();
        ids.sort_unstable();
        assert_eq!(ids, [0, 1, 2]);
        assert!(matches!(r.pick(&p, &PickCtx::default(), c), Pick::Full));
        drop(held);
        let ctx = PickCtx {
            avoid: Some(ServerId(1)),
            ..PickCtx::default()
        };
        for _ in 0..50 {
            let Pick::Leased(l) = r.pick(&p, &ctx, c) else {
                panic!()
            };
            assert_ne!(l.server(), ServerId(1));
        }
    }

    #[test]
    fn backups_take_over_and_give_back() {
        let c = Counters::leak(3, 1);
        let mut p = pool(&[1, 1, 1], &[2]);
        let mut r = Random::new(2);
        r.rebuild(&p);
        assert!((0..20).all(|_| lease(&mut r, &p, c).server().0 < 2));
        p.members[0].usable = false;
        p.members[1].usable = false;
        p.refresh();
        r.rebuild(&p);
        assert!((0..20).all(|_| lease(&mut r, &p, c).server().0 == 2));
        p.members[0].usable = true;
        p.refresh();
        r.rebuild(&p);
        assert!((0..20).all(|_| lease(&mut r, &p, c).server().0 == 0));
        p.members[0].usable = false;
        p.members[2].usable = false;
        p.refresh();
        r.rebuild(&p);
        assert!(matches!(r.pick(&p, &PickCtx::default(), c), Pick::NoServer));
    }

    #[test]
    fn seeds_differ() {
        let (mut a, mut b) = (Rng::seeded(), Rng::seeded());
        assert_ne!(a.next(), b.next());
        let mut r = Rng(0);
        assert!((0..1_000).all(|_| r.below(3) < 3));
    }
}
