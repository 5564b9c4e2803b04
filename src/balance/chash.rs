//! `hash-type consistent`: HAProxy's hash ring (its lb_chash), point for point. Each server in
//! service owns one point per unit of effective weight (16 per unit of `weight`), at
//! `full_hash(id * 4096 + k)` for its numeric id, so a server leaving moves only the keys that
//! were its own (about 1/N of them) and the others stay put. A key goes to the point closest
//! to its hash on either side; a retry that avoids that server, or a server over its bounded
//! load (`hash-balance-factor`), moves on clockwise.

use super::hashfn::full_hash;
use super::Pool;

/// Points per server id: HAProxy's `SRV_EWGHT_RANGE` (256 x 16).
const POINTS_PER_ID: u32 = 4_096;

/// The ring of the serving group.
#[derive(Default)]
pub struct Ring {
    /// (position on the ring, index into `servers`), by position.
    points: Vec<(u32, u32)>,
    /// The serving group: (member index, effective weight, sum of the weights before it).
    servers: Vec<(usize, u32, u64)>,
    total_weight: u64,
}

impl Ring {
    pub fn new(pool: &Pool) -> Ring {
        let mut servers = Vec::with_capacity(pool.serving().len());
        let mut points = Vec::new();
        let mut total = 0u64;
        for &i in pool.serving() {
            let m = &pool.members[i];
            let k = servers.len() as u32;
            servers.push((i, m.eweight, total));
            total += u64::from(m.eweight);
            let base = m.uid.wrapping_mul(POINTS_PER_ID);
            points.extend((0..m.eweight).map(|p| (full_hash(base.wrapping_add(p)), k)));
        }
        // Stable: equal positions keep declaration order, as HAProxy's tree keeps insertion
        // order.
        points.sort_by_key(|&(pos, _)| pos);
        Ring {
            points,
            servers,
            total_weight: total,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// The number of points, for walking the ring.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// The member owning point `p`.
    pub fn member_at(&self, p: usize) -> usize {
        self.servers[self.points[p].1 as usize].0
    }

    /// The point closest to `hash`, either side (the earlier one on a tie).
    pub fn closest(&self, hash: u32) -> usize {
        let n = self.points.len();
        debug_assert!(n > 0);
        let mut next = self.points.partition_point(|&(pos, _)| pos < hash);
        if next == n {
            next = 0;
        }
        let prev = if next == 0 { n - 1 } else { next - 1 };
        let before = hash.wrapping_sub(self.points[prev].0);
        let after = self.points[next].0.wrapping_sub(hash);
        if before <= after {
            prev
        } else {
            next
        }
    }

    /// The member for `hash`: the closest point's server, or the first one clockwise that is
    /// not `avoid` and, with a balance factor, not over its bounded load. `active(member)`
    /// reads a server's connections. Falls back to the closest server not avoided when every
    /// server is over its bound.
    pub fn server_for(
        &self,
        hash: u32,
        avoid: Option<usize>,
        balance_factor: u32,
        active: impl Fn(usize) -> u32,
    ) -> usize {
        let start = self.closest(hash);
        let n = self.points.len();
        let served: u64 = if balance_factor > 0 {
            self.servers.iter().map(|s| u64::from(active(s.0))).sum()
        } else {
            0
        };
        let mut fallback = None;
        for step in 0..n {
            let p = (start + step) % n;
            let k = self.points[p].1 as usize;
            let member = self.servers[k].0;
            if Some(member) == avoid {
                continue;
            }
            if balance_factor == 0 || self.within_bound(k, served, balance_factor, &active) {
                return member;
            }
            fallback.get_or_insert(member);
        }
        fallback.unwrap_or_else(|| self.member_at(start))
    }

    /// HAProxy's bounded-load test (Mirrokni, Thorup and Zadimoghaddam, weighted): the
    /// backend's connections plus this one, times the factor, are shared out as slots in
    /// proportion to the weights; a server may take one more while below its share.
    fn within_bound(
        &self,
        k: usize,
        served: u64,
        factor: u32,
        active: impl Fn(usize) -> u32,
    ) -> bool {
        let (member, weight, before) = self.servers[k];
        let total = self.total_weight.max(1);
        let slots_total = ((served + 1) * u64::from(factor)).div_ceil(100);
        let (per_weight, rest) = (slots_total / total, slots_total % total);
        let weight = u64::from(weight);
        let mut slots =
            weight * per_weight + ((before + weight) * rest) / total - (before * rest) / total;
        if slots == 0 {
            slots = 1;
        }
        u64::from(active(member)) < slots
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::pool;
    use super::*;

    #[test]
    fn points_follow_the_effective_weights() {
        let p = pool(&[3, 1, 0], &[]);
        let r = Ring::new(&p);
        assert_eq!(r.len(), 4 * 16);
        let of_first = (0..r.len()).filter(|&i| r.member_at(i) == 0).count();
        assert_eq!(of_first, 3 * 16);
    }

    #[test]
    fn closest_point_on_either_side_with_wrap() {
        let r = Ring {
            points: vec![(100, 0), (200, 1), (u32::MAX - 10, 2)],
            servers: vec![(0, 1, 0), (1, 1, 1), (2, 1, 2)],
            total_weight: 3,
        };
        assert_eq!(r.closest(120), 0);
        assert_eq!(r.closest(150), 0, "a tie goes to the earlier point");
        assert_eq!(r.closest(151), 1);
        assert_eq!(r.closest(u32::MAX), 2);
        assert_eq!(r.closest(20), 2, "wraps below the first point");
        assert_eq!(r.closest(60), 0);
    }

    #[test]
    fn avoid_and_bounds_move_clockwise() {
        let r = Ring {
            points: vec![(100, 0), (200, 1), (300, 2)],
            servers: vec![(0, 1, 0), (1, 1, 1), (2, 1, 2)],
            total_weight: 3,
        };
        assert_eq!(r.server_for(110, None, 0, |_| 0), 0);
        assert_eq!(r.server_for(110, Some(0), 0, |_| 0), 1);
        // 6 connections and this one, factor 150%: 11 slots, 3, 4 and 4; server 0 holds 4.
        let load = |m: usize| [4, 1, 1][m];
        assert_eq!(r.server_for(110, None, 150, load), 1);
        assert_eq!(r.server_for(110, None, 0, load), 0, "no factor, no bound");
        // Only the avoided server is under its bound: the closest other one.
        assert_eq!(r.server_for(110, Some(0), 100, |m| [1, 50, 50][m]), 1);
    }
}
