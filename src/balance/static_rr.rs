//! `balance static-rr`: weighted round-robin over a static map, in exactly HAProxy's order
//! (its lb_map). The servers in service are laid out in a map of sum(weight / gcd) slots,
//! where gcd is the greatest common divisor of the configured weights: at each slot every
//! server gains its weight, the first one whose score, in whole multiples of the map length,
//! is strictly highest takes the slot and pays the map length. Weights 3,2,1 give
//! `1 1 2 1 2 3`. All workers walk the map through the backend's shared rotation, so
//! connections follow one order whichever worker accepts them, and a rebuild (a server going
//! down or up) keeps the position. The same map serves `hash-type map-based`.

use super::{lease_first, Algorithm, Counters, Pick, PickCtx, Pool};

pub struct StaticRr {
    /// The gcd of the configured weights, fixed at load as HAProxy does.
    gcd: u32,
    /// Indexes into the pool's members, one per map slot.
    map: Vec<u32>,
}

impl StaticRr {
    pub fn new(pool: &Pool) -> StaticRr {
        StaticRr {
            gcd: weight_gcd(pool),
            map: Vec::new(),
        }
    }
}

impl Algorithm for StaticRr {
    fn rebuild(&mut self, pool: &Pool) {
        self.map = server_map(pool, self.gcd);
    }

    fn pick(&mut self, pool: &Pool, ctx: &PickCtx, counters: &'static Counters) -> Pick {
        if self.map.is_empty() {
            return Pick::NoServer;
        }
        let start = counters.next_turn(pool.backend) % self.map.len();
        lease_first(pool, walk(&self.map, start), ctx.avoid, counters)
    }
}

/// The members of `map` from slot `start` on, once around.
pub fn walk(map: &[u32], start: usize) -> impl Iterator<Item = usize> + Clone + '_ {
    let n = map.len();
    (0..n).map(move |k| map[(start + k) % n] as usize)
}

/// The greatest common divisor of the members' non-zero weights (1 if there are none).
pub fn weight_gcd(pool: &Pool) -> u32 {
    let mut g = 0;
    for m in &pool.members {
        let (mut a, mut b) = (g, m.weight);
        while b != 0 {
            (a, b) = (b, a % b);
        }
        g = a;
    }
    g.max(1)
}

/// HAProxy's map of the serving group, weights divided by `gcd` (rounded up).
pub fn server_map(pool: &Pool, gcd: u32) -> Vec<u32> {
    weighted_map(
        pool.serving()
            .iter()
            .map(|&i| (i, pool.members[i].weight.div_ceil(gcd))),
    )
}

/// The map of `(member, weight)`: one slot per unit of weight, in HAProxy's order.
pub fn weighted_map(members: impl Iterator<Item = (usize, u32)>) -> Vec<u32> {
    let members: Vec<(u32, i64)> = members
        .filter(|&(_, w)| w > 0)
        .map(|(i, w)| (i as u32, i64::from(w)))
        .collect();
    let total: i64 = members.iter().map(|&(_, w)| w).sum();
    let mut score = vec![0i64; members.len()];
    let mut map = Vec::with_capacity(total as usize);
    for _ in 0..total {
        let mut best = 0;
        let mut max = i64::MIN;
        for (k, &(_, w)) in members.iter().enumerate() {
            score[k] += w;
            // Scores live in [-total, 2 * total]: this is 0, 1 or 2.
            let v = (score[k] + total) / total;
            if v > max {
                (best, max) = (k, v);
            }
        }
        score[best] -= total;
        map.push(members[best].0);
    }
    map
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{pool, sequence};
    use super::*;
    use crate::config::model::ServerId;

    /// `weights` as a 1-based sequence string over `n` picks, the way the tests against
    /// HAProxy record it.
    fn order(weights: &[u32], n: usize) -> String {
        let c = Counters::leak(weights.len(), 1);
        let p = pool(weights, &[]);
        let mut alg = StaticRr::new(&p);
        alg.rebuild(&p);
        sequence(&mut alg, &p, c, n)
            .iter()
            .map(|s| char::from(b'1' + *s as u8))
            .collect()
    }

    #[test]
    fn follows_haproxy_order() {
        // Recorded from HAProxy 2.6 (nbthread 1, fresh start).
        assert_eq!(order(&[3, 2, 1], 24), "112123".repeat(4));
        assert_eq!(order(&[1, 1, 1], 9), "123123123");
        assert_eq!(order(&[5, 1, 1], 14), "11121131112113");
        assert_eq!(order(&[1, 0, 2], 9), "133133133");
        assert_eq!(order(&[2, 3], 10), "1212212122");
        assert_eq!(order(&[4, 3, 2, 1], 20), "12123121341212312134");
        assert_eq!(order(&[7, 5, 3], 15), "121231121312123");
        assert_eq!(order(&[1, 2, 3, 4, 5], 15), "125435345234545");
        assert_eq!(order(&[2, 4, 6], 12), "132323132323");
        assert_eq!(order(&[6, 4], 10), "1121211212");
        assert_eq!(order(&[9, 9, 1, 1], 20), "12121212123121212124");
    }

    #[test]
    fn exact_shares_over_a_cycle() {
        for weights in [&[3u32, 2, 1][..], &[256, 1, 128], &[7, 5, 3, 9], &[10, 10]] {
            let map = weighted_map(weights.iter().copied().enumerate());
            for (i, &w) in weights.iter().enumerate() {
                let n = map.iter().filter(|&&m| m as usize == i).count() as u32;
                assert_eq!(n, w, "{weights:?}");
            }
        }
    }

    #[test]
    fn the_map_is_reduced_by_the_gcd() {
        let p = pool(&[4, 6, 0], &[]);
        assert_eq!(weight_gcd(&p), 2);
        assert_eq!(server_map(&p, 2).len(), 5);
        assert_eq!(weight_gcd(&pool(&[0, 0], &[])), 1);
    }

    #[test]
    fn a_server_going_down_keeps_the_rotation_going() {
        let c = Counters::leak(3, 1);
        let mut p = pool(&[1, 1, 1], &[]);
        let mut alg = StaticRr::new(&p);
        alg.rebuild(&p);
        assert_eq!(sequence(&mut alg, &p, c, 2), [0, 1]);
        p.members[2].usable = false;
        p.refresh();
        alg.rebuild(&p);
        // The shared position is 2: 2 % 2 = slot 0.
        assert_eq!(sequence(&mut alg, &p, c, 3), [0, 1, 0]);
    }

    #[test]
    fn avoid_and_maxconn_move_to_the_next_slot() {
        let c = Counters::leak(3, 1);
        let mut p = pool(&[1, 1, 1], &[]);
        p.members[1].maxconn = Some(1);
        let mut alg = StaticRr::new(&p);
        alg.rebuild(&p);
        let ctx = PickCtx {
            avoid: Some(ServerId(0)),
            ..PickCtx::default()
        };
        let Pick::Leased(a) = alg.pick(&p, &ctx, c) else {
            panic!()
        };
        assert_eq!(a.server(), ServerId(1), "slot 0 is avoided");
        let Pick::Leased(b) = alg.pick(&p, &PickCtx::default(), c) else {
            panic!()
        };
        assert_eq!(b.server(), ServerId(2), "slot 1 is full");
    }

    #[test]
    fn backups_take_over_and_give_back() {
        let c = Counters::leak(4, 1);
        let mut p = pool(&[2, 1, 1, 1], &[2, 3]);
        let mut alg = StaticRr::new(&p);
        alg.rebuild(&p);
        assert_eq!(sequence(&mut alg, &p, c, 3), [0, 0, 1]);
        p.members[0].usable = false;
        p.members[1].usable = false;
        p.refresh();
        alg.rebuild(&p);
        assert_eq!(
            sequence(&mut alg, &p, c, 3),
            [2, 2, 2],
            "the first backup only"
        );
        p.members[1].usable = true;
        p.refresh();
        alg.rebuild(&p);
        assert_eq!(sequence(&mut alg, &p, c, 2), [1, 1]);
        assert!(matches!(
            StaticRr::new(&pool(&[0], &[])).pick(&pool(&[0], &[]), &PickCtx::default(), c),
            Pick::NoServer
        ));
    }
}
