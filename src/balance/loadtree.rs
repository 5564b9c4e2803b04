//! The shared min-tree behind `leastconn` and `leasttime`: one per backend, in the process's
//! [`Counters`], read and written by every worker without a lock. A pick costs a walk of
//! about 2 log2(n) nodes instead of a read of every server's count, so it stays flat as a
//! backend grows (HAProxy keeps a tree too, under a lock).
//!
//! Layout: a binary heap of `AtomicU64` words, leaves at `size..size + n` (one per member of
//! the backend, in declaration order; each leaf's word sits on its server's count's cache
//! line in [`Counters`], since a lease writes both), padding leaves at [`KEY_NONE`]. A
//! word holds a key in its high 48 bits and a version in its low 16. A leaf's key is its
//! server's load: for leastconn `active x 2^25 / eweight` (exact: weights are at most 4096,
//! so different ratios never round together), for leasttime `max(cost, 1 us) x (active + 1)
//! / eweight` as an ordered float; [`KEY_NONE`] when the server is not in this worker's
//! serving group, has no weight or is at its `maxconn`. An inner node holds the smaller key
//! of its children.
//!
//! Updates: whoever changes a count (a lease taken or dropped), a server's parameters or a
//! cost recomputes that leaf, then each ancestor, and stops at the first node whose key
//! does not change. Each node is recomputed as "read the node, read the inputs, CAS the node
//! (bumping its version) if its key differs; on a failed CAS start over". Reading the node
//! before its inputs is what makes this converge: a concurrent update that CASed in between
//! makes our CAS fail, and one that CASed before we read the node also changed its inputs
//! before that, so we see them. When every writer is done, every node is right. The version
//! guards against a node changing and changing back during one recompute.
//!
//! A pick reads the root's key K, then finds the first leaf at or after the worker's turn
//! (wrapping) whose key is K, so ties rotate, and leases that server only if its count is
//! still the one behind K (a concurrent pick of the same server makes the CAS fail and the
//! pick walks again). A tree caught mid-update is helped along (the stale leaf is
//! recomputed); after a few lost races, or to avoid a server on a retry, a linear scan over
//! the same keys decides. Each worker's turn moves by a stride of about 0.62 of the servers
//! (prime to their count, so it still visits each once per cycle) from a phase of its own,
//! which keeps workers off the servers the others just took.

use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::counters::{ConnLease, Counters, RACE_RETRIES};
use super::{Pick, Pool};
use crate::config::model::ServerId;

/// What the keys measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Active connections per unit of weight.
    LeastConn,
    /// Peak-EWMA connect time x (active + 1) per unit of weight.
    LeastTime,
}

const VERSION_BITS: u32 = 16;
/// The key of a leaf that cannot take a connection, and of padding.
pub const KEY_NONE: u64 = (1 << 48) - 1;
/// Counts above this compare as equal (8 million connections to one server).
const LOAD_CAP: u32 = (1 << 23) - 1;
/// A parameter word's flag: the server is in this backend's serving group.
const SERVING: u64 = 1 << 63;

/// leasttime: the time constant of the decay and of the blending.
pub const TAU: Duration = Duration::from_secs(10);
/// leasttime: the smallest cost, so unmeasured servers still compare by their connections.
const FLOOR_NS: f64 = 1_000.0;
/// leasttime: how often every cost decays towards zero.
const TICK_MS: u32 = 100;

fn key(word: u64) -> u64 {
    word >> VERSION_BITS
}

fn word(key: u64, prev: u64) -> u64 {
    (key << VERSION_BITS) | (prev.wrapping_add(1) & ((1 << VERSION_BITS) - 1))
}

pub struct LoadTree {
    kind: Kind,
    counters: &'static Counters,
    /// The server of each leaf.
    ids: Box<[ServerId]>,
    /// `(server, leaf)`, sorted by server, to find a server's leaf.
    by_id: Box<[(ServerId, u32)]>,
    /// The first leaf's index: the smallest power of two at least the member count.
    size: usize,
    /// The inner nodes (index 0 unused); a leaf's word lives next to its server's count
    /// in [`Counters`], padding leaves are `pad`.
    nodes: Box<[AtomicU64]>,
    pad: AtomicU64,
    /// Per leaf: [`SERVING`] | eweight << 32 | maxconn.
    params: Box<[AtomicU64]>,
    /// leasttime, per leaf: the cost in ns (f32 bits) << 32 | when it was set (ms since
    /// `epoch`, wrapping).
    costs: Box<[AtomicU64]>,
    epoch: Instant,
    /// leasttime: when the costs last decayed (ms since `epoch`).
    decayed: AtomicU64,
}

impl LoadTree {
    pub fn new(kind: Kind, ids: &[ServerId], counters: &'static Counters) -> LoadTree {
        let size = ids.len().max(1).next_power_of_two();
        let mut by_id: Vec<(ServerId, u32)> = ids
            .iter()
            .enumerate()
            .map(|(i, &id)| (id, i as u32))
            .collect();
        by_id.sort_unstable();
        let none = word(KEY_NONE, u64::MAX);
        for &id in ids {
            counters.leaf_word(id).store(none, SeqCst);
        }
        LoadTree {
            kind,
            counters,
            ids: ids.into(),
            by_id: by_id.into(),
            size,
            nodes: (0..size).map(|_| AtomicU64::new(none)).collect(),
            pad: AtomicU64::new(none),
            params: ids.iter().map(|_| AtomicU64::new(0)).collect(),
            costs: ids.iter().map(|_| AtomicU64::new(0)).collect(),
            epoch: Instant::now(),
            decayed: AtomicU64::new(0),
        }
    }

    /// Node `i` of the heap: inner below `size`, leaves from it.
    #[inline]
    fn node(&self, i: usize) -> &AtomicU64 {
        if i < self.size {
            &self.nodes[i]
        } else if let Some(&id) = self.ids.get(i - self.size) {
            self.counters.leaf_word(id)
        } else {
            &self.pad
        }
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The leaf of server `id`.
    pub fn leaf_of(&self, id: ServerId) -> Option<usize> {
        self.by_id
            .binary_search_by_key(&id, |&(s, _)| s)
            .ok()
            .map(|i| self.by_id[i].1 as usize)
    }

    /// Publishes a worker's view of `pool` (its serving group, effective weights and
    /// maxconn) and recomputes the leaves that changed. Every worker publishes the same view
    /// once it has applied the same health and admin changes.
    pub fn publish(&self, pool: &Pool) {
        let mut serving = pool.serving().iter().peekable();
        for (leaf, m) in pool.members.iter().enumerate().take(self.ids.len()) {
            let in_group = serving.next_if(|&&i| i == leaf).is_some();
            let p = if in_group {
                SERVING
                    | (u64::from(m.eweight.min(0xffff)) << 32)
                    | u64::from(m.maxconn.unwrap_or(u32::MAX))
            } else {
                0
            };
            if self.params[leaf].swap(p, SeqCst) != p {
                self.refresh(leaf);
            }
        }
    }

    /// The key leaf `leaf` has with `active` connections.
    fn leaf_key(&self, leaf: usize, active: u32) -> u64 {
        let p = self.params[leaf].load(SeqCst);
        let weight = (p >> 32) & 0xffff;
        if p & SERVING == 0 || weight == 0 || active >= p as u32 {
            return KEY_NONE;
        }
        match self.kind {
            Kind::LeastConn => (u64::from(active.min(LOAD_CAP)) << 25) / weight,
            Kind::LeastTime => {
                let cost = f64::from(f32::from_bits((self.costs[leaf].load(SeqCst) >> 32) as u32));
                let score =
                    cost.max(FLOOR_NS) * f64::from(active.min(LOAD_CAP) + 1) / weight as f64;
                // Positive floats order as their bits; dropping low mantissa bits keeps order.
                (score.to_bits() >> 15).min(KEY_NONE - 1)
            }
        }
    }

    fn current_key(&self, leaf: usize) -> u64 {
        self.leaf_key(leaf, self.counters.active(self.ids[leaf]))
    }

    /// Recomputes `leaf` and the ancestors whose key changes as a result.
    pub fn refresh(&self, leaf: usize) {
        let mut i = self.size + leaf;
        if !self.settle(i, || self.current_key(leaf)) {
            return;
        }
        while i > 1 {
            i >>= 1;
            let (l, r) = (self.node(2 * i), self.node(2 * i + 1));
            if !self.settle(i, || key(l.load(SeqCst)).min(key(r.load(SeqCst)))) {
                return;
            }
        }
    }

    /// Sets node `i` to the key `compute` returns, read after the node. Returns whether the
    /// key changed.
    fn settle(&self, i: usize, compute: impl Fn() -> u64) -> bool {
        let node = self.node(i);
        loop {
            let old = node.load(SeqCst);
            let k = compute();
            if key(old) == k {
                return false;
            }
            if node
                .compare_exchange(old, word(k, old), SeqCst, SeqCst)
                .is_ok()
            {
                return true;
            }
        }
    }

    /// The first leaf at or after `start` whose key is at most `k` (None if the tree says
    /// there is none, or is caught mid-update).
    fn first_at_most(&self, start: usize, k: u64) -> Option<usize> {
        let at = |i: usize| key(self.node(i).load(SeqCst));
        let mut i = self.size + start;
        loop {
            if at(i) <= k {
                break;
            }
            // Up while a right child, then over to the right sibling.
            while i & 1 == 1 {
                if i == 1 {
                    return None;
                }
                i >>= 1;
            }
            i += 1;
        }
        while i < self.size {
            i = if at(2 * i) <= k { 2 * i } else { 2 * i + 1 };
        }
        let leaf = i - self.size;
        (leaf < self.ids.len() && at(i) <= k).then_some(leaf)
    }

    /// Leases the least loaded server, the first from leaf `start` on a tie; `avoid` only if
    /// no other server can take the connection. `Full` when none can.
    pub fn pick(&self, start: usize, avoid: Option<ServerId>) -> Pick {
        let start = start % self.ids.len().max(1);
        if avoid.is_none() {
            if let Some(lease) = self.lease_least(start) {
                return Pick::Leased(lease);
            }
        }
        let lease = self.counters.lease_scanned(|| {
            self.scan(start, avoid)
                .map(|(leaf, seen)| (self.ids[leaf], seen, self.params[leaf].load(SeqCst) as u32))
        });
        match lease {
            Some(l) => Pick::Leased(l),
            None => Pick::Full,
        }
    }

    /// The walk down the tree (None: every server is full, or races kept being lost).
    fn lease_least(&self, start: usize) -> Option<ConnLease> {
        for _ in 0..RACE_RETRIES {
            let k = key(self.node(1).load(SeqCst));
            if k == KEY_NONE {
                return None;
            }
            let leaf = self
                .first_at_most(start, k)
                .or_else(|| self.first_at_most(0, k))?;
            let id = self.ids[leaf];
            let seen = self.counters.active(id);
            if self.leaf_key(leaf, seen) > k {
                // The leaf's load grew and its recompute is under way: help it.
                self.refresh(leaf);
                continue;
            }
            if let Some(lease) = self.counters.lease_if(id, seen) {
                return Some(lease);
            }
        }
        None
    }

    /// The least loaded leaf with room in rotation order from `start` and the count behind
    /// its key, every leaf read: `avoid` only if it is the only one.
    fn scan(&self, start: usize, avoid: Option<ServerId>) -> Option<(usize, u32)> {
        let n = self.ids.len();
        let (mut best, mut avoided) = ((KEY_NONE, 0, 0), (KEY_NONE, 0, 0));
        for j in 0..n {
            let leaf = if start + j < n {
                start + j
            } else {
                start + j - n
            };
            let seen = self.counters.active(self.ids[leaf]);
            let k = self.leaf_key(leaf, seen);
            let slot = if Some(self.ids[leaf]) == avoid {
                &mut avoided
            } else {
                &mut best
            };
            if k < slot.0 {
                *slot = (k, leaf, seen);
            }
        }
        let (k, leaf, seen) = if best.0 != KEY_NONE { best } else { avoided };
        (k != KEY_NONE).then_some((leaf, seen))
    }

    /// Milliseconds since the epoch, wrapping (no 128-bit division on the pick path).
    fn ms(&self, now: Instant) -> u32 {
        let d = now.saturating_duration_since(self.epoch);
        (d.as_secs() as u32)
            .wrapping_mul(1000)
            .wrapping_add(d.subsec_millis())
    }

    /// leasttime: folds a sample of `ns` into the cost of `leaf` at `now`, peak-EWMA: a cost
    /// decays towards zero with time constant [`TAU`]; a sample above the decayed cost
    /// replaces it, one below blends in with weight 1 - e^(-dt/tau) (dt since the last
    /// update). A sample of 0 is pure decay.
    fn observe(&self, leaf: usize, ns: f64, now: Instant) {
        let now_ms = self.ms(now);
        let _ = self.costs[leaf].fetch_update(SeqCst, SeqCst, |w| {
            let (cost, at) = (f64::from(f32::from_bits((w >> 32) as u32)), w as u32);
            let dt = f64::from((now_ms.wrapping_sub(at) as i32).max(0));
            let keep = (-dt / TAU.as_millis() as f64).exp();
            let decayed = cost * keep;
            let next = if ns > decayed {
                ns
            } else {
                decayed + ns * (1.0 - keep)
            };
            Some((u64::from((next as f32).to_bits()) << 32) | u64::from(now_ms))
        });
        self.refresh(leaf);
    }

    /// leasttime: a connect to `server` took `ns` nanoseconds (or failed: pass a large one).
    pub fn sample(&self, server: ServerId, ns: f64, now: Instant) {
        if let Some(leaf) = self.leaf_of(server) {
            self.observe(leaf, ns, now);
        }
    }

    /// leasttime: lets every cost decay, at most every [`TICK_MS`] (one worker does it).
    pub fn decay(&self, now: Instant) {
        let now_ms = u64::from(self.ms(now));
        let last = self.decayed.load(SeqCst);
        if now_ms.wrapping_sub(last) < u64::from(TICK_MS)
            || self
                .decayed
                .compare_exchange(last, now_ms, SeqCst, SeqCst)
                .is_err()
        {
            return;
        }
        for leaf in 0..self.ids.len() {
            self.observe(leaf, 0.0, now);
        }
    }

    /// leasttime: the cost of `leaf` at `now`, in nanoseconds.
    pub fn estimate(&self, leaf: usize, now: Instant) -> f64 {
        let w = self.costs[leaf].load(SeqCst);
        let dt = f64::from((self.ms(now).wrapping_sub(w as u32) as i32).max(0));
        f64::from(f32::from_bits((w >> 32) as u32)) * (-dt / TAU.as_millis() as f64).exp()
    }
}

/// An algorithm's handle on its backend's tree: attached at the first pick, and told the
/// worker's view of the pool again after each rebuild. Also the worker's turn, where its
/// picks start looking on a tie.
#[derive(Default)]
pub struct Shared {
    tree: Option<&'static LoadTree>,
    stale: bool,
    turn: usize,
    /// How far the turn moves per pick: about 0.62 of the leaves and prime to their count,
    /// so a worker's turns visit every leaf once per cycle but consecutive picks land far
    /// apart, and workers rarely touch the same nodes at once.
    stride: usize,
}

impl Shared {
    /// The pool changed: publish it before the next pick.
    pub fn rebuilt(&mut self) {
        self.stale = true;
    }

    pub fn tree(&self) -> Option<&'static LoadTree> {
        self.tree
    }

    /// The backend's tree, with this worker's view of `pool` published.
    pub fn get(
        &mut self,
        pool: &Pool,
        counters: &'static Counters,
        kind: Kind,
    ) -> &'static LoadTree {
        let tree = match self.tree {
            Some(t) => t,
            None => {
                let ids: Vec<ServerId> = pool.members.iter().map(|m| m.id).collect();
                let t = counters.load_tree(pool.backend, &ids, kind);
                self.tree = Some(t);
                self.stale = true;
                // Workers start their turns at scattered places, so that they do not walk
                // to the same idle servers in step and race for them.
                static HANDLES: AtomicU64 = AtomicU64::new(0);
                let h = HANDLES
                    .fetch_add(1, SeqCst)
                    .wrapping_mul(0x9e37_79b9_7f4a_7c15);
                let n = ids.len().max(1);
                self.stride = (n * 5 / 8..=n).find(|&s| gcd(s, n) == 1).unwrap_or(1) % n;
                // Handle j starts j x 0.618 cycles ahead, so workers stay far apart in the
                // order the stride gives.
                let phase = (((h >> 32) * n as u64) >> 32) as usize;
                self.turn = phase * self.stride % n;
                t
            }
        };
        if std::mem::take(&mut self.stale) {
            tree.publish(pool);
        }
        tree
    }

    /// A pick on the backend's tree: `NoServer` when the pool has no usable server, else
    /// `before` on the tree (with this worker's view published), then the least loaded
    /// server from this worker's next turn.
    pub fn pick(
        &mut self,
        pool: &Pool,
        avoid: Option<ServerId>,
        counters: &'static Counters,
        kind: Kind,
        before: impl FnOnce(&LoadTree),
    ) -> Pick {
        if !pool.has_usable() {
            return Pick::NoServer;
        }
        let tree = self.get(pool, counters, kind);
        before(tree);
        let start = self.next_turn(pool.members.len());
        tree.pick(start, avoid)
    }

    /// Where the next pick starts looking on a tie: a stride further each time.
    fn next_turn(&mut self, leaves: usize) -> usize {
        let next = self.turn + self.stride.max(1);
        self.turn = if next >= leaves { next - leaves } else { next };
        self.turn
    }
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// One lazily made tree per backend, in [`Counters`].
pub type Slot = OnceLock<LoadTree>;

#[cfg(test)]
mod tests {
    use super::super::test_support::pool;
    use super::*;

    /// A deterministic xorshift sequence.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    /// Every node holds the right key: leaves their server's load, inner nodes the smaller
    /// key of their children.
    fn assert_consistent(t: &LoadTree) {
        for leaf in 0..t.size {
            let want = if leaf < t.ids.len() {
                t.current_key(leaf)
            } else {
                KEY_NONE
            };
            assert_eq!(key(t.node(t.size + leaf).load(SeqCst)), want, "leaf {leaf}");
        }
        for i in 1..t.size {
            let (l, r) = (t.node(2 * i).load(SeqCst), t.node(2 * i + 1).load(SeqCst));
            assert_eq!(key(t.node(i).load(SeqCst)), key(l).min(key(r)), "node {i}");
        }
    }

    fn tree(p: &Pool, c: &'static Counters, kind: Kind) -> &'static LoadTree {
        let ids: Vec<ServerId> = p.members.iter().map(|m| m.id).collect();
        let t = c.load_tree(p.backend, &ids, kind);
        t.publish(p);
        t
    }

    #[test]
    fn ties_rotate_round_robin_over_any_count() {
        for n in [1usize, 3, 5, 8] {
            let c = Counters::leak(n, 1);
            let p = pool(&vec![1; n], &[]);
            let t = tree(&p, c, Kind::LeastConn);
            let picks: Vec<usize> = (0..2 * n)
                .map(|turn| match t.pick(turn, None) {
                    Pick::Leased(l) => l.server().index(),
                    other => panic!("{other:?}"),
                })
                .collect();
            let want: Vec<usize> = (0..2 * n).map(|k| k % n).collect();
            assert_eq!(picks, want, "{n} servers");
        }
    }

    #[test]
    fn walk_agrees_with_a_full_scan_through_random_changes() {
        let n = 37;
        let c = Counters::leak(n, 1);
        let weights: Vec<u32> = (0..n as u32)
            .map(|i| [1, 2, 3, 7, 256][i as usize % 5])
            .collect();
        let mut p = pool(&weights, &[]);
        let t = tree(&p, c, Kind::LeastConn);
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        let mut held: Vec<ConnLease> = Vec::new();
        for step in 0..5_000 {
            match rng.next() % 10 {
                0..=4 => {
                    let start = rng.next() as usize % n;
                    let want = t.scan(start, None).map(|(leaf, _)| t.current_key(leaf));
                    match t.pick(start, None) {
                        Pick::Leased(l) => {
                            // Its key before this lease was the least of all.
                            let leaf = t.leaf_of(l.server()).unwrap();
                            let before = t.leaf_key(leaf, c.active(l.server()) - 1);
                            assert_eq!(Some(before), want, "step {step}");
                            held.push(l);
                        }
                        Pick::Full => assert_eq!(want, None, "step {step}"),
                        Pick::NoServer => unreachable!(),
                    }
                }
                5..=7 if !held.is_empty() => {
                    let i = rng.next() as usize % held.len();
                    held.swap_remove(i);
                }
                8 => {
                    let m = rng.next() as usize % n;
                    p.members[m].maxconn = (rng.next() % 3 != 0).then(|| rng.next() as u32 % 8);
                    p.refresh();
                    t.publish(&p);
                }
                _ => {
                    let m = rng.next() as usize % n;
                    p.members[m].usable = !p.members[m].usable;
                    p.refresh();
                    t.publish(&p);
                }
            }
            assert_consistent(t);
        }
        drop(held);
        assert_consistent(t);
    }

    #[test]
    fn stays_consistent_under_racing_workers() {
        let n = 64;
        let c = Counters::leak(n, 1);
        let p = pool(&vec![1; n], &[]);
        let t = tree(&p, c, Kind::LeastConn);
        std::thread::scope(|s| {
            for w in 0..4u64 {
                s.spawn(move || {
                    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (w + 1));
                    let mut held = std::collections::VecDeque::new();
                    for turn in 0..50_000 {
                        if let Pick::Leased(l) = t.pick(turn, None) {
                            held.push_back(l);
                        }
                        if held.len() > (rng.next() % 16) as usize {
                            held.pop_front();
                        }
                    }
                });
            }
        });
        // Every lease is back and every node agrees with its inputs.
        assert!((0..n).all(|i| c.active(ServerId(i as u32)) == 0));
        assert_consistent(t);
        assert_eq!(key(t.node(1).load(SeqCst)), 0);
    }

    #[test]
    fn leasttime_takes_the_least_cost_times_load() {
        let c = Counters::leak(3, 1);
        let p = pool(&[1, 1, 2], &[]);
        let t = tree(&p, c, Kind::LeastTime);
        let now = Instant::now();
        let costs = [4_000_000.0, 1_000_000.0, 4_000_000.0];
        for (i, &ns) in costs.iter().enumerate() {
            t.sample(ServerId(i as u32), ns, now);
        }
        let score =
            |i: usize| costs[i] * f64::from(c.active(ServerId(i as u32)) + 1) / [1.0, 1.0, 2.0][i];
        let mut held = Vec::new();
        for turn in 0..12 {
            let before: Vec<f64> = (0..3).map(score).collect();
            let least = before.iter().copied().fold(f64::MAX, f64::min);
            let Pick::Leased(l) = t.pick(turn, None) else {
                panic!()
            };
            assert_eq!(before[l.server().index()], least, "pick {turn}");
            held.push(l);
        }
        // 1 ms x (a + 1) against 4 ms x (b + 1) / 1 and / 2: 7, 1 and 4 connections.
        let counts: Vec<u32> = (0..3).map(|i| c.active(ServerId(i))).collect();
        assert_eq!(counts, [1, 7, 4]);
        drop(held);
        assert_consistent(t);
    }
}
