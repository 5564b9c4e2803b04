//! `balance roundrobin`: weighted and dynamic, in exactly HAProxy's order (its lb_fwrr).
//! A rebuild plays HAProxy's fast weighted round-robin scheduler over the servers in service
//! for one window (sum of the effective weights, 16 per unit of `weight`) and keeps the
//! sequence, cut down to its shortest period (6 for weights 3,2,1: `1 2 1 3 1 2`). All workers
//! walk that cycle through the backend's shared rotation, so connections follow one order
//! whichever worker accepts them; a weight or state change rebuilds the cycle and the shared
//! position carries on. The cycle is HAProxy's sequence for the first window from a fresh start,
//! which is its whole sequence for every weight set whose windows repeat (the common case);
//! for the few where HAProxy's scheduler drifts by one connection per window, sluice repeats
//! the first window.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::{lease_first, Algorithm, Counters, Pick, PickCtx, Pool};

#[derive(Default)]
pub struct RoundRobin {
    /// Indexes into the pool's members: HAProxy's sequence over one period.
    cycle: Vec<u32>,
}

impl Algorithm for RoundRobin {
    fn rebuild(&mut self, pool: &Pool) {
        let members: Vec<(usize, u32)> = pool
            .serving()
            .iter()
            .map(|&i| (i, pool.members[i].eweight))
            .collect();
        self.cycle = shortest_period(fwrr_window(&members));
    }

    fn pick(&mut self, pool: &Pool, ctx: &PickCtx, counters: &'static Counters) -> Pick {
        if self.cycle.is_empty() {
            return Pick::NoServer;
        }
        let start = counters.next_turn(pool.backend) % self.cycle.len();
        lease_first(
            pool,
            super::static_rr::walk(&self.cycle, start),
            ctx.avoid,
            counters,
        )
    }
}

/// HAProxy's largest effective weight (`SRV_EWGHT_MAX`): 256 x 16.
const EWEIGHT_MAX: i64 = 4_096;
/// HAProxy's user weight range (`SRV_UWGHT_RANGE`), the unit of a position in the tree key.
const UWEIGHT_RANGE: i64 = 256;

/// One server in the scheduler: its next position and the remainder it carries.
struct Slot {
    member: u32,
    eweight: i64,
    npos: i64,
    rweight: i64,
}

/// A tree of HAProxy's scheduler: lowest key first, equal keys in insertion order.
type Tree = BinaryHeap<Reverse<(i64, u64, usize)>>;

/// The first window of HAProxy's fwrr scheduler over `(member, effective weight)` from a
/// fresh start: sum(weights) picks, each server `eweight` times.
pub fn fwrr_window(members: &[(usize, u32)]) -> Vec<u32> {
    let mut slots: Vec<Slot> = members
        .iter()
        .filter(|&&(_, w)| w > 0)
        .map(|&(i, w)| Slot {
            member: i as u32,
            eweight: i64::from(w),
            npos: 0,
            rweight: 0,
        })
        .collect();
    let total: i64 = slots.iter().map(|s| s.eweight).sum();
    // The window spans positions [total, 2 * total); a server whose next position falls
    // beyond waits in `next`, and `init` holds the servers not placed yet, heaviest first.
    let mut curr_pos = total;
    let mut seq = 0u64;
    let mut curr = Tree::new();
    let mut init = Tree::new();
    let mut next = Tree::new();
    for (k, s) in slots.iter().enumerate() {
        seq += 1;
        init.push(Reverse((EWEIGHT_MAX - s.eweight, seq, k)));
    }
    let mut out = Vec::with_capacity(total as usize);
    let mut switched = false;
    while (out.len() as i64) < total {
        let due = curr
            .peek()
            .is_some_and(|Reverse((_, _, k))| slots[*k].npos <= curr_pos);
        let k = if due {
            curr.pop()
        } else if let Some(Reverse((_, _, k))) = init.pop() {
            slots[k].npos = 0;
            slots[k].rweight = 0;
            Some(Reverse((0, 0, k)))
        } else {
            curr.pop()
        };
        let Some(Reverse((_, _, k))) = k else {
            // Everyone waits for the next window: it becomes the one to start from.
            debug_assert!(!switched, "the scheduler found no server twice");
            switched = true;
            std::mem::swap(&mut init, &mut next);
            curr_pos = total;
            continue;
        };
        switched = false;
        let s = &mut slots[k];
        if s.npos == 0 {
            s.npos = curr_pos;
        }
        s.npos += total / s.eweight;
        s.rweight += total % s.eweight;
        if s.rweight >= s.eweight {
            s.rweight -= s.eweight;
            s.npos += 1;
        }
        curr_pos += 1;
        seq += 1;
        if s.npos >= 2 * total {
            s.npos -= total;
            next.push(Reverse((EWEIGHT_MAX - s.eweight, seq, k)));
        } else {
            let key = UWEIGHT_RANGE * s.npos + (EWEIGHT_MAX + s.rweight - s.eweight) / 16;
            curr.push(Reverse((key, seq, k)));
        }
        out.push(s.member);
    }
    out
}

/// `seq` cut to its shortest period, when it is made of whole repetitions of one.
pub fn shortest_period(mut seq: Vec<u32>) -> Vec<u32> {
    // The prefix function: the longest proper border of every prefix.
    let n = seq.len();
    let mut border = vec![0usize; n];
    for i in 1..n {
        let mut b = border[i - 1];
        while b > 0 && seq[i] != seq[b] {
            b = border[b - 1];
        }
        if seq[i] == seq[b] {
            b += 1;
        }
        border[i] = b;
    }
    if n > 0 {
        let period = n - border[n - 1];
        if n % period == 0 {
            seq.truncate(period);
        }
    }
    seq
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{pool, sequence};
    use super::*;
    use crate::config::model::ServerId;

    fn order(weights: &[u32], n: usize) -> String {
        let c = Counters::leak(weights.len(), 1);
        let p = pool(weights, &[]);
        let mut rr = RoundRobin::default();
        rr.rebuild(&p);
        sequence(&mut rr, &p, c, n)
            .iter()
            .map(|s| char::from(b'1' + *s as u8))
            .collect()
    }

    #[test]
    fn follows_haproxy_order() {
        // Recorded from HAProxy 2.6 (nbthread 1, fresh start), 250 connections each.
        assert_eq!(order(&[3, 2, 1], 250), "121312".repeat(42)[..250]);
        assert_eq!(order(&[1, 1, 1], 9), "123123123");
        assert_eq!(order(&[5, 1, 1], 250), "1112113".repeat(36)[..250]);
        assert_eq!(order(&[1, 0, 2], 250), "331".repeat(84)[..250]);
        assert_eq!(order(&[2, 3], 250), "22121".repeat(50));
        assert_eq!(order(&[4, 3, 2, 1], 250), "1213214123".repeat(25));
        assert_eq!(order(&[7, 5, 3], 250), "121321123121123".repeat(17)[..250]);
        assert_eq!(
            order(&[1, 2, 3, 4, 5], 250),
            "543542534515342".repeat(17)[..250]
        );
        assert_eq!(order(&[10, 1], 22), "1111111111211111111112");
        assert_eq!(order(&[6, 4], 10), "1121211212");
        assert_eq!(order(&[9, 9, 1, 1], 20), "12121212123121212124");
        assert_eq!(order(&[256, 1, 128], 12), "113113113113");
    }

    #[test]
    fn exact_shares_over_a_cycle() {
        for weights in [&[3u32, 2, 1][..], &[256, 1, 128], &[7, 5, 3, 9], &[1, 1]] {
            let members: Vec<(usize, u32)> = weights.iter().map(|&w| w * 16).enumerate().collect();
            let window = fwrr_window(&members);
            for (i, &w) in weights.iter().enumerate() {
                let n = window.iter().filter(|&&m| m as usize == i).count() as u32;
                assert_eq!(n, w * 16, "{weights:?}");
            }
            let cycle = shortest_period(window.clone());
            assert_eq!(window.len() % cycle.len(), 0);
            assert!(window.chunks(cycle.len()).all(|c| c == cycle));
        }
    }

    #[test]
    fn equal_weights_never_repeat_a_server() {
        let p = pool(&[1; 7], &[]);
        let c = Counters::leak(7, 1);
        let mut rr = RoundRobin::default();
        rr.rebuild(&p);
        let s = sequence(&mut rr, &p, c, 100);
        assert!(s.windows(2).all(|w| w[0] != w[1]), "{s:?}");
    }

    #[test]
    fn shortest_period_only_cuts_whole_repetitions() {
        assert_eq!(shortest_period(vec![1, 2, 1, 2]), [1, 2]);
        assert_eq!(shortest_period(vec![1, 2, 1]), [1, 2, 1]);
        assert_eq!(shortest_period(vec![]), Vec::<u32>::new());
        assert_eq!(shortest_period(vec![3; 5]), [3]);
    }

    #[test]
    fn weight_zero_and_backups_are_skipped() {
        let c = Counters::leak(3, 1);
        let p = pool(&[1, 0, 1], &[2]);
        let mut rr = RoundRobin::default();
        rr.rebuild(&p);
        assert_eq!(sequence(&mut rr, &p, c, 3), [0, 0, 0]);
    }

    #[test]
    fn a_weight_change_applies_without_resetting_the_rotation() {
        let c = Counters::leak(2, 1);
        let mut p = pool(&[1, 1], &[]);
        let mut rr = RoundRobin::default();
        rr.rebuild(&p);
        assert_eq!(sequence(&mut rr, &p, c, 3), [0, 1, 0]);
        p.members[1].weight = 3;
        p.refresh();
        rr.rebuild(&p);
        // The cycle is now HAProxy's for 1,3: `2 2 2 1`; the shared position is 3.
        assert_eq!(sequence(&mut rr, &p, c, 5), [0, 1, 1, 1, 0]);
    }

    #[test]
    fn backups_take_over_and_give_back() {
        let c = Counters::leak(3, 1);
        let mut p = pool(&[1, 1, 1], &[1, 2]);
        let mut rr = RoundRobin::default();
        rr.rebuild(&p);
        assert_eq!(sequence(&mut rr, &p, c, 2), [0, 0]);
        p.members[0].usable = false;
        p.refresh();
        rr.rebuild(&p);
        assert_eq!(sequence(&mut rr, &p, c, 2), [1, 1], "the first backup");
        p.allbackups = true;
        p.refresh();
        rr.rebuild(&p);
        assert_eq!(sequence(&mut rr, &p, c, 2), [1, 2], "all backups");
        p.members[0].usable = true;
        p.refresh();
        rr.rebuild(&p);
        assert_eq!(sequence(&mut rr, &p, c, 2), [0, 0]);
    }

    #[test]
    fn avoid_takes_the_next_in_the_cycle() {
        let c = Counters::leak(3, 1);
        let p = pool(&[3, 2, 1], &[]);
        let mut rr = RoundRobin::default();
        rr.rebuild(&p);
        let ctx = PickCtx {
            avoid: Some(ServerId(0)),
            ..PickCtx::default()
        };
        let Pick::Leased(l) = rr.pick(&p, &ctx, c) else {
            panic!()
        };
        assert_eq!(l.server(), ServerId(1));
    }
}
