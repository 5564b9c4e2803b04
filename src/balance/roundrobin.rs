//! `balance roundrobin`: weighted and smooth. The servers in service are laid out in a cycle
//! of length sum(weights) by the smooth weighted round-robin rule (each step, every server
//! gains its weight and the richest is chosen and pays the total), so a server with weight w
//! appears w times per cycle and never in a burst. All workers walk the same cycle through a
//! shared atomic position, so connections follow one rotation whichever worker accepts them;
//! a weight or state change rebuilds the cycle and the position continues.

use super::{lease_first, Algorithm, Counters, Pick, PickCtx, Pool};

#[derive(Default)]
pub struct RoundRobin {
    /// Indexes into the pool's members, one per unit of weight.
    cycle: Vec<usize>,
}

impl Algorithm for RoundRobin {
    fn rebuild(&mut self, pool: &Pool) {
        self.cycle = smooth_cycle(pool.serving().iter().map(|&i| (i, pool.members[i].weight)));
    }

    fn pick(&mut self, pool: &Pool, ctx: &PickCtx, counters: &'static Counters) -> Pick {
        if self.cycle.is_empty() {
            return Pick::NoServer;
        }
        let n = self.cycle.len();
        let start = counters.next_turn(pool.backend) % n;
        let cycle = &self.cycle;
        let order = (0..n).map(move |k| cycle[(start + k) % n]);
        lease_first(pool, order, ctx.avoid, counters)
    }
}

/// The smooth weighted round-robin cycle of `(member, weight)`; ties go to the earlier member.
pub fn smooth_cycle(members: impl Iterator<Item = (usize, u32)>) -> Vec<usize> {
    let members: Vec<(usize, i64)> = members
        .filter(|&(_, w)| w > 0)
        .map(|(i, w)| (i, i64::from(w)))
        .collect();
    let total: i64 = members.iter().map(|&(_, w)| w).sum();
    let mut current = vec![0i64; members.len()];
    let mut cycle = Vec::with_capacity(total as usize);
    for _ in 0..total {
        let mut best = 0;
        for (k, &(_, w)) in members.iter().enumerate() {
            current[k] += w;
            if current[k] > current[best] {
                best = k;
            }
        }
        current[best] -= total;
        cycle.push(members[best].0);
    }
    cycle
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{pool, sequence};
    use super::*;

    #[test]
    fn equal_weights_rotate_in_order() {
        let c = Counters::leak(3, 1);
        let p = pool(&[1, 1, 1], &[]);
        let mut rr = RoundRobin::default();
        rr.rebuild(&p);
        assert_eq!(sequence(&mut rr, &p, c, 7), [0, 1, 2, 0, 1, 2, 0]);
    }

    #[test]
    fn weights_give_exact_shares_without_bursts() {
        let cycle = smooth_cycle([(0, 5), (1, 1), (2, 1)].into_iter());
        assert_eq!(cycle.len(), 7);
        assert_eq!(cycle.iter().filter(|&&i| i == 0).count(), 5);
        assert_eq!(cycle, [0, 0, 1, 0, 2, 0, 0]);
        let cycle = smooth_cycle([(0, 3), (1, 2), (2, 1)].into_iter());
        assert_eq!(cycle, [0, 1, 0, 2, 1, 0]);
    }

    #[test]
    fn weight_zero_and_backups_are_skipped() {
        let c = Counters::leak(3, 1);
        let p = pool(&[1, 0, 1], &[2]);
        let mut rr = RoundRobin::default();
        rr.rebuild(&p);
        assert_eq!(sequence(&mut rr, &p, c, 3), [0, 0, 0]);
    }
}
