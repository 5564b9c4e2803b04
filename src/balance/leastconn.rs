//! `balance leastconn`: the server with the fewest active connections per unit of weight,
//! counted across all workers on the shared atomics. Loads are compared as
//! `a_active * b_weight < b_active * a_weight` (no division); ties are broken round-robin by
//! starting each scan one server further. The chosen server is leased only if its count is
//! still the one the decision saw, so two workers never pile onto the same snapshot.

use super::{Algorithm, Counters, Pick, PickCtx, Pool};

/// How many times a pick rescans after losing a race before taking the best it saw.
const RACE_RETRIES: usize = 8;

#[derive(Default)]
pub struct LeastConn {
    /// Where the next scan starts, for round-robin tie breaking.
    turn: usize,
}

impl Algorithm for LeastConn {
    fn rebuild(&mut self, _pool: &Pool) {}

    fn pick(&mut self, pool: &Pool, ctx: &PickCtx, counters: &'static Counters) -> Pick {
        let serving = pool.serving();
        if serving.is_empty() {
            return Pick::NoServer;
        }
        let n = serving.len();
        self.turn = self.turn.wrapping_add(1);
        for attempt in 0..=RACE_RETRIES {
            // (member index, active count seen, weight)
            let mut best: Option<(usize, u32, u64)> = None;
            let mut best_avoided: Option<(usize, u32, u64)> = None;
            for k in 0..n {
                let i = serving[(self.turn + k) % n];
                let m = &pool.members[i];
                let active = counters.active(m.id);
                if m.maxconn.is_some_and(|max| active >= max) {
                    continue;
                }
                let cand = (i, active, u64::from(m.weight));
                let slot = if Some(m.id) == ctx.avoid {
                    &mut best_avoided
                } else {
                    &mut best
                };
                if slot.map_or(true, |b| less_loaded(cand, b)) {
                    *slot = Some(cand);
                }
            }
            let Some((i, seen, _)) = best.or(best_avoided) else {
                return Pick::Full;
            };
            let id = pool.members[i].id;
            let lease = if attempt == RACE_RETRIES {
                counters.try_lease(id, pool.members[i].maxconn)
            } else {
                counters.lease_if(id, seen)
            };
            if let Some(l) = lease {
                return Pick::Leased(l);
            }
        }
        Pick::Full
    }
}

/// `a` carries less load per unit of weight than `b`.
fn less_loaded(a: (usize, u32, u64), b: (usize, u32, u64)) -> bool {
    u64::from(a.1) * b.2 < u64::from(b.1) * a.2
}

#[cfg(test)]
mod tests {
    use super::super::test_support::pool;
    use super::*;
    use crate::config::model::ServerId;

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
        let held: Vec<_> = (0..40).map(|_| lease(&mut lc, &p, c)).collect();
        assert_eq!((c.active(ServerId(0)), c.active(ServerId(1))), (30, 10));
        drop(held);
    }

    #[test]
    fn ties_rotate() {
        let c = Counters::leak(3, 1);
        let p = pool(&[1, 1, 1], &[]);
        let mut lc = LeastConn::default();
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
