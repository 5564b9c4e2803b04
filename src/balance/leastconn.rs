//! `balance leastconn`: the server with the fewest active connections per unit of effective
//! weight, counted across all workers on the shared atomics (`a_active * b_weight` against
//! `b_active * a_weight`, exactly); ties are broken round-robin, each pick starting one
//! server further. The decision is made on the backend's shared [`LoadTree`], so a pick
//! reads a few tree nodes instead of every server's count, and the chosen server is leased
//! only if its count is still the one the decision saw: two workers never pile onto the
//! same snapshot.
//!
//! [`LoadTree`]: super::loadtree::LoadTree

use super::loadtree::{Kind, Shared};
use super::{Algorithm, Counters, Pick, PickCtx, Pool};

#[derive(Default)]
pub struct LeastConn {
    tree: Shared,
}

impl Algorithm for LeastConn {
    fn rebuild(&mut self, _pool: &Pool) {
        self.tree.rebuilt();
    }

    fn pick(&mut self, pool: &Pool, ctx: &PickCtx, counters: &'static Counters) -> Pick {
        self.tree
            .pick(pool, ctx.avoid, counters, Kind::LeastConn, |_| {})
    }
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
