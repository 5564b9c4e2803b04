//! `balance first`: the server with the lowest numeric id that is below its `maxconn` takes
//! the connection, then the next one once it is full (HAProxy's lb_fas). Meant for servers
//! with a `maxconn`, to keep as few of them busy as possible; without one, the first server
//! takes everything. Weights only matter as 0 (out of service). The order is by `id` (the
//! position in the backend unless `id` is set), not by declaration.

use super::{lease_first, Algorithm, Counters, Pick, PickCtx, Pool};

#[derive(Default)]
pub struct First {
    /// The serving group's member indexes, by numeric id.
    order: Vec<usize>,
}

impl Algorithm for First {
    fn rebuild(&mut self, pool: &Pool) {
        self.order = pool.serving().to_vec();
        self.order.sort_by_key(|&i| pool.members[i].uid);
    }

    fn pick(&mut self, pool: &Pool, ctx: &PickCtx, counters: &'static Counters) -> Pick {
        if self.order.is_empty() {
            return Pick::NoServer;
        }
        lease_first(pool, self.order.iter().copied(), ctx.avoid, counters)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::pool;
    use super::super::ConnLease;
    use super::*;
    use crate::config::model::ServerId;

    fn lease(alg: &mut First, p: &Pool, c: &'static Counters) -> ConnLease {
        match alg.pick(p, &PickCtx::default(), c) {
            Pick::Leased(l) => l,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn fills_the_lowest_id_first_then_the_next() {
        let c = Counters::leak(3, 1);
        let mut p = pool(&[1, 1, 1], &[]);
        for m in &mut p.members {
            m.maxconn = Some(2);
        }
        let mut alg = First::default();
        alg.rebuild(&p);
        let held: Vec<u32> = (0..5).map(|_| lease(&mut alg, &p, c).server().0).collect();
        // Each lease is dropped at once: the first server always has room.
        assert_eq!(held, [0; 5]);
        let held: Vec<ConnLease> = (0..5).map(|_| lease(&mut alg, &p, c)).collect();
        let ids: Vec<u32> = held.iter().map(|l| l.server().0).collect();
        assert_eq!(ids, [0, 0, 1, 1, 2]);
        let one = lease(&mut alg, &p, c);
        assert_eq!(one.server(), ServerId(2));
        assert!(matches!(alg.pick(&p, &PickCtx::default(), c), Pick::Full));
        drop(held);
    }

    #[test]
    fn order_is_by_numeric_id_not_declaration() {
        let c = Counters::leak(3, 1);
        let mut p = pool(&[1, 1, 1], &[]);
        p.members[0].uid = 30;
        p.members[1].uid = 10;
        p.members[2].uid = 20;
        p.members[1].maxconn = Some(1);
        let mut alg = First::default();
        alg.rebuild(&p);
        let a = lease(&mut alg, &p, c);
        let b = lease(&mut alg, &p, c);
        assert_eq!((a.server(), b.server()), (ServerId(1), ServerId(2)));
    }

    #[test]
    fn weight_zero_avoid_and_backups() {
        let c = Counters::leak(4, 1);
        let mut p = pool(&[0, 1, 1, 1], &[3]);
        let mut alg = First::default();
        alg.rebuild(&p);
        assert_eq!(lease(&mut alg, &p, c).server(), ServerId(1));
        let ctx = PickCtx {
            avoid: Some(ServerId(1)),
            ..PickCtx::default()
        };
        let Pick::Leased(l) = alg.pick(&p, &ctx, c) else {
            panic!()
        };
        assert_eq!(l.server(), ServerId(2));
        p.members[1].usable = false;
        p.members[2].usable = false;
        p.refresh();
        alg.rebuild(&p);
        assert_eq!(lease(&mut alg, &p, c).server(), ServerId(3), "the backup");
        p.members[2].usable = true;
        p.refresh();
        alg.rebuild(&p);
        assert_eq!(
            lease(&mut alg, &p, c).server(),
            ServerId(2),
            "back to active"
        );
        p.members[2].usable = false;
        p.members[3].usable = false;
        p.refresh();
        alg.rebuild(&p);
        assert!(matches!(
            alg.pick(&p, &PickCtx::default(), c),
            Pick::NoServer
        ));
    }
}
