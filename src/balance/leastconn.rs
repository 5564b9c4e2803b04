//! `balance leastconn`: the server with the fewest active connections per unit of effective
//! weight, counted across all workers on the shared atomics. Loads are compared as
//! `a_active * b_weight < b_active * a_weight` (no division); ties are broken round-robin by
//! starting each scan one server further. The chosen server is leased only if its count is
//! still the one the decision saw, so two workers never pile onto the same snapshot. The scan
//! reads a compact copy of the serving group made at rebuild, in four independent lanes, so
//! that 256 servers cost a few hundred cycles, not a chain of dependent comparisons.

use super::{Algorithm, Counters, Pick, PickCtx, Pool};
use crate::config::model::ServerId;

#[derive(Default)]
pub struct LeastConn {
    /// Where the next scan starts, for round-robin tie breaking.
    turn: usize,
    /// The serving group, compact for the scan.
    slots: Vec<Slot>,
}

/// A server as the scan needs it.
#[derive(Debug, Clone, Copy)]
struct Slot {
    id: ServerId,
    weight: u64,
    /// `maxconn`, or no limit.
    max: u32,
}

impl Slot {
    /// The serving group of `pool`.
    fn serving(pool: &Pool) -> Vec<Slot> {
        pool.serving()
            .iter()
            .map(|&i| {
                let m = &pool.members[i];
                Slot {
                    id: m.id,
                    weight: u64::from(m.eweight),
                    max: m.maxconn.unwrap_or(u32::MAX),
                }
            })
            .collect()
    }
}

/// A scan's best candidate: load `active / weight`, and its place in the scan order.
#[derive(Debug, Clone, Copy)]
struct Cand {
    active: u64,
    weight: u64,
    k: usize,
}

impl Cand {
    /// Worse than any server (counts are below 2^32).
    const NONE: Cand = Cand {
        active: 1 << 32,
        weight: 1,
        k: usize::MAX,
    };

    /// Takes `s` with `active` connections if it has room and is strictly less loaded.
    #[inline(always)]
    fn offer(&mut self, s: &Slot, active: u32, k: usize) {
        let a = u64::from(active);
        if active < s.max && a * self.weight < self.active * s.weight {
            *self = Cand {
                active: a,
                weight: s.weight,
                k,
            };
        }
    }

    /// Less loaded than `other`, or as loaded and earlier in the scan.
    fn beats(&self, other: &Cand) -> bool {
        let (l, r) = (self.active * other.weight, other.active * self.weight);
        self.k != usize::MAX && (other.k == usize::MAX || l < r || (l == r && self.k < other.k))
    }
}

impl LeastConn {
    /// The least loaded slot with room, first in scan order from `start` on a tie, and the
    /// count it had. Four lanes take every fourth server and are merged at the end.
    fn scan(&self, start: usize, c: &Counters) -> Option<(usize, u32)> {
        let mut lanes = [Cand::NONE; 4];
        let (tail, head) = self.slots.split_at(start);
        let mut k = 0;
        for seg in [head, tail] {
            let mut chunks = seg.chunks_exact(4);
            for ch in &mut chunks {
                for (j, s) in ch.iter().enumerate() {
                    lanes[j].offer(s, c.active(s.id), k + j);
                }
                k += 4;
            }
            for (j, s) in chunks.remainder().iter().enumerate() {
                lanes[j].offer(s, c.active(s.id), k + j);
            }
            k += chunks.remainder().len();
        }
        let best = lanes
            .iter()
            .fold(Cand::NONE, |b, l| if l.beats(&b) { *l } else { b });
        (best.k != usize::MAX).then(|| ((start + best.k) % self.slots.len(), best.active as u32))
    }

    /// `scan`, passing over `avoid` unless it is the only server with room.
    fn scan_avoiding(&self, start: usize, avoid: ServerId, c: &Counters) -> Option<(usize, u32)> {
        let n = self.slots.len();
        let (mut best, mut avoided) = (Cand::NONE, Cand::NONE);
        for k in 0..n {
            let s = &self.slots[(start + k) % n];
            let lane = if s.id == avoid {
                &mut avoided
            } else {
                &mut best
            };
            lane.offer(s, c.active(s.id), k);
        }
        let best = if best.k != usize::MAX { best } else { avoided };
        (best.k != usize::MAX).then(|| ((start + best.k) % n, best.active as u32))
    }
}

impl Algorithm for LeastConn {
    fn rebuild(&mut self, pool: &Pool) {
        self.slots = Slot::serving(pool);
    }

    fn pick(&mut self, _pool: &Pool, ctx: &PickCtx, counters: &'static Counters) -> Pick {
        let n = self.slots.len();
        if n == 0 {
            return Pick::NoServer;
        }
        self.turn = if self.turn + 1 >= n { 0 } else { self.turn + 1 };
        let turn = self.turn;
        let lease = counters.lease_scanned(|| {
            let best = match ctx.avoid {
                None => self.scan(turn, counters),
                Some(avoid) => self.scan_avoiding(turn, avoid, counters),
            };
            best.map(|(k, seen)| (self.slots[k].id, seen, self.slots[k].max))
        });
        match lease {
            Some(l) => Pick::Leased(l),
            None => Pick::Full,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::pool;
    use super::*;

    fn lease(alg: &mut LeastConn, p: &Pool, c: &'static Counters) -> super::super::ConnLease {
        match alg.pick(p, &PickCtx::default(), c) {
            Pick::Leased(l) => l,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn spreads_long_lived_connections_evenly() {
        let c = Counters::leak(3, 1);
        let p = pool(&[1, 1, 1], &[]);
        let mut lc = LeastConn::default();
        lc.rebuild(&p);
        let held: Vec<_> = (0..30).map(|_| lease(&mut lc, &p, c)).collect();
        for s in 0..3 {
            assert_eq!(c.active(ServerId(s)), 10);
        }
        drop(held);
    }

    #[test]
    fn weights_scale_the_share() {
        let c = Counters::leak(2, 1);
        let p = pool(&[3, 1], &[]);
        let mut lc = LeastConn::default();
        lc.rebuild(&p);
        let held: Vec<_> = (0..40).map(|_| lease(&mut lc, &p, c)).collect();
        assert_eq!((c.active(ServerId(0)), c.active(ServerId(1))), (30, 10));
        drop(held);
    }

    #[test]
    fn ties_rotate() {
        let c = Counters::leak(3, 1);
        let p = pool(&[1, 1, 1], &[]);
        let mut lc = LeastConn::default();
        lc.rebuild(&p);
        let picks: Vec<u32> = (0..6).map(|_| lease(&mut lc, &p, c).server().0).collect();
        // Each lease is released at once, so every pick is a tie: it must rotate.
        let mut seen = picks.clone();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen, [0, 1, 2], "{picks:?}");
    }

    #[test]
    fn full_servers_are_skipped_then_queue() {
        let c = Counters::leak(2, 1);
        let mut p = pool(&[1, 1], &[]);
        p.members[0].maxconn = Some(1);
        p.members[1].maxconn = Some(1);
        let mut lc = LeastConn::default();
        lc.rebuild(&p);
        let a = lease(&mut lc, &p, c);
        let b = lease(&mut lc, &p, c);
        assert_ne!(a.server(), b.server());
        assert!(matches!(lc.pick(&p, &PickCtx::default(), c), Pick::Full));
    }

    #[test]
    fn workers_racing_never_pile_up() {
        let c = Counters::leak(4, 1);
        let p = pool(&[1, 1, 1, 1], &[]);
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let p = p.clone();
                std::thread::spawn(move || {
                    let mut lc = LeastConn::default();
                    lc.rebuild(&p);
                    (0..250).map(|_| lease(&mut lc, &p, c)).collect::<Vec<_>>()
                })
            })
            .collect();
        let held: Vec<_> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        let counts: Vec<u32> = (0..4).map(|s| c.active(ServerId(s))).collect();
        let (min, max) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
        assert!(max - min <= 4, "uneven spread {counts:?}");
        drop(held);
    }
}
