//! `hash-type maglev` (a sluice extension): Google's Maglev lookup table (Eisenbud et al.,
//! NSDI 2016). A table of 65_537 slots (a prime) is filled by the servers in service taking
//! turns, each along its own permutation of the slots (an offset and a step derived from its
//! numeric id), the heavier servers taking proportionally more turns. A key's hash modulo the
//! table size names its slot: one array read per pick. Every server holds its share of the
//! slots to within one slot (far under 1% of ideal), and when a server leaves, its slots are
//! shared out while almost every other slot keeps its server.

use super::Pool;

/// Slots in the table: a prime, so that every step visits every slot.
pub const TABLE_SIZE: usize = 65_537;

#[derive(Default)]
pub struct Table {
    /// Member index per slot.
    slots: Vec<u32>,
}

impl Table {
    pub fn new(pool: &Pool) -> Table {
        let servers: Vec<(usize, u32, u32)> = pool
            .serving()
            .iter()
            .map(|&i| (i, pool.members[i].uid, pool.members[i].eweight))
            .collect();
        Table::build(&servers, TABLE_SIZE)
    }

    /// The table of `size` slots (a prime) for `(member, numeric id, weight)`.
    pub fn build(servers: &[(usize, u32, u32)], size: usize) -> Table {
        // Turns go by numeric id, so the table does not depend on declaration order.
        let mut servers: Vec<&(usize, u32, u32)> = servers.iter().filter(|s| s.2 > 0).collect();
        servers.sort_by_key(|s| s.1);
        let Some(max_weight) = servers.iter().map(|s| u64::from(s.2)).max() else {
            return Table::default();
        };
        let n = size as u64;
        // Per server: where its permutation starts, its step, and how far along it is.
        let mut walk: Vec<(u64, u64, u64)> = servers
            .iter()
            .map(|s| {
                let id = u64::from(s.1);
                let offset = mix(id) % n;
                let step = mix(id ^ 0x5851_f42d_4c95_7f2d) % (n - 1) + 1;
                (offset, step, 0)
            })
            .collect();
        let mut credit = vec![0u64; servers.len()];
        let mut slots = vec![u32::MAX; size];
        let mut filled = 0;
        while filled < size {
            for (k, s) in servers.iter().enumerate() {
                // Each round the heaviest server takes one slot, a lighter one its fraction.
                credit[k] += u64::from(s.2);
                if credit[k] < max_weight {
                    continue;
                }
                credit[k] -= max_weight;
                let (offset, step, next) = &mut walk[k];
                loop {
                    let slot = ((*offset + *next * *step) % n) as usize;
                    *next += 1;
                    if slots[slot] == u32::MAX {
                        slots[slot] = s.0 as u32;
                        filled += 1;
                        break;
                    }
                }
                if filled == size {
                    break;
                }
            }
        }
        Table { slots }
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn member_at(&self, slot: usize) -> usize {
        self.slots[slot] as usize
    }

    /// The member for `hash`, or the next different one along the table if it is `avoid`.
    pub fn server_for(&self, hash: u32, avoid: Option<usize>) -> usize {
        let start = hash as usize % self.slots.len();
        let first = self.member_at(start);
        if Some(first) != avoid {
            return first;
        }
        super::static_rr::walk(&self.slots, start)
            .find(|&m| m != first)
            .unwrap_or(first)
    }
}

/// splitmix64's finaliser: a server's id to well-spread 64 bits.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(t: &Table, members: usize) -> Vec<usize> {
        let mut c = vec![0; members];
        for s in 0..t.len() {
            c[t.member_at(s)] += 1;
        }
        c
    }

    #[test]
    fn spread_is_within_one_percent_of_ideal() {
        for weights in [
            vec![1u32; 100],
            (1..=10).collect(),
            vec![1, 256],
            vec![7; 3],
        ] {
            let servers: Vec<(usize, u32, u32)> = weights
                .iter()
                .enumerate()
                .map(|(i, &w)| (i, i as u32 + 1, w * 16))
                .collect();
            let t = Table::build(&servers, TABLE_SIZE);
            let total: u32 = weights.iter().sum();
            for (i, n) in counts(&t, weights.len()).into_iter().enumerate() {
                let ideal = TABLE_SIZE as f64 * f64::from(weights[i]) / f64::from(total);
                let off = (n as f64 - ideal).abs() / ideal;
                assert!(
                    off < 0.01,
                    "{weights:?}: server {i} has {n}, ideal {ideal:.1}"
                );
            }
        }
    }

    #[test]
    fn a_server_leaving_disturbs_little_else() {
        let n = 10;
        let servers: Vec<(usize, u32, u32)> = (0..n).map(|i| (i, i as u32 + 1, 16)).collect();
        let before = Table::build(&servers, TABLE_SIZE);
        let without: Vec<_> = servers.iter().copied().filter(|s| s.0 != 3).collect();
        let after = Table::build(&without, TABLE_SIZE);
        let mut moved = 0;
        let mut others_moved = 0;
        for s in 0..TABLE_SIZE {
            if before.member_at(s) != after.member_at(s) {
                moved += 1;
                if before.member_at(s) != 3 {
                    others_moved += 1;
                }
            }
        }
        let share = TABLE_SIZE / n;
        // The leaving server's slots (1/N), plus at most 5% of the table.
        assert!(moved <= share + TABLE_SIZE * 5 / 100, "{moved} moved");
        assert!(others_moved < TABLE_SIZE * 5 / 100, "{others_moved}");
        assert!(after.slots.iter().all(|&m| m != 3));
    }

    #[test]
    fn permutations_do_not_depend_on_declaration_order() {
        let a = Table::build(&[(0, 7, 16), (1, 9, 16)], 13);
        let b = Table::build(&[(0, 9, 16), (1, 7, 16)], 13);
        for s in 0..13 {
            assert_eq!(a.member_at(s), 1 - b.member_at(s));
        }
    }

    #[test]
    fn avoid_walks_to_another_server_and_empty_is_empty() {
        let t = Table::build(&[(0, 1, 16), (1, 2, 16)], 13);
        let m = t.server_for(5, None);
        assert_ne!(t.server_for(5, Some(m)), m);
        let one = Table::build(&[(4, 1, 16)], 13);
        assert_eq!(one.server_for(5, Some(4)), 4);
        assert!(Table::build(&[(0, 1, 0)], 13).is_empty());
    }
}
