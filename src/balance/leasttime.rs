//! `balance leasttime` (a sluice extension): least response time. Each worker keeps, per
//! server, a peak-EWMA of the time its connections take to connect (a slower sample replaces
//! the estimate at once, a faster one blends in with weight 1 - e^(-dt/tau)), and the estimate
//! decays towards zero while no sample comes, with time constant `tau` (10 s): a server that
//! was slow and is therefore avoided looks cheap again after a while, is tried, and is kept if
//! it has recovered. A pick takes the server with the least `max(estimate, 1 us) x (active +
//! 1) / weight`, active counted by every worker; ties go round-robin. A failed connect counts
//! as a 1 s sample. The worker reports through `connected` and `failed`.
//!
//! Decay is applied lazily: estimates are stored scaled by e^((t - epoch)/tau) at their
//! sample time t, so at any instant every estimate carries the same factor e^(-(now -
//! epoch)/tau), which cannot change an ordering: a pick costs one `exp`, not one per server.

use std::time::{Duration, Instant};

use super::{Algorithm, Counters, Pick, PickCtx, Pool};
use crate::config::model::ServerId;

/// Time constant of the decay and of the blending.
pub const TAU: Duration = Duration::from_secs(10);
/// The smallest estimate, so unmeasured servers still compare by their connections.
const FLOOR_NS: f64 = 1_000.0;
/// What a failed connect counts as.
const FAILURE_NS: f64 = 1_000_000_000.0;
/// Rebase the stored estimates before their scale factor grows past e^40.
const REBASE_AFTER_TAUS: f64 = 40.0;

pub struct LeastTime {
    epoch: Instant,
    /// Per member index: the estimate, scaled to the epoch, and when it was last sampled.
    estimates: Vec<(f64, Option<Instant>)>,
    /// The serving group, compact for the scan.
    slots: Vec<Slot>,
    turn: usize,
}

/// A server as the scan needs it.
#[derive(Debug, Clone, Copy)]
struct Slot {
    member: usize,
    id: ServerId,
    inv_weight: f64,
    /// `maxconn`, or no limit.
    max: u32,
    /// The member's stored estimate, copied here for the scan.
    cost: f64,
}

/// A scan's best candidate: score, count seen, place in the scan order.
#[derive(Debug, Clone, Copy)]
struct Cand {
    score: f64,
    active: u32,
    k: usize,
}

impl Cand {
    const NONE: Cand = Cand {
        score: f64::INFINITY,
        active: 0,
        k: usize::MAX,
    };

    #[inline(always)]
    fn offer(&mut self, s: &Slot, floor: f64, c: &Counters, k: usize) {
        let active = c.active(s.id);
        if active < s.max {
            let score = s.cost.max(floor) * f64::from(active + 1) * s.inv_weight;
            if score < self.score {
                *self = Cand { score, active, k };
            }
        }
    }
}

impl Default for LeastTime {
    fn default() -> LeastTime {
        LeastTime::new(Instant::now())
    }
}

impl LeastTime {
    pub fn new(epoch: Instant) -> LeastTime {
        LeastTime {
            epoch,
            estimates: Vec::new(),
            slots: Vec::new(),
            turn: 0,
        }
    }

    /// e^((now - epoch) / tau): what an estimate sampled now is stored multiplied by.
    fn scale(&self, now: Instant) -> f64 {
        (now.saturating_duration_since(self.epoch).as_secs_f64() / TAU.as_secs_f64()).exp()
    }

    /// The estimate of member `i` at `now`, in nanoseconds (0 if never sampled).
    pub fn estimate_at(&self, i: usize, now: Instant) -> f64 {
        self.estimates.get(i).map_or(0.0, |e| e.0 / self.scale(now))
    }

    /// Folds a connect time of `ns` nanoseconds for `server` into its estimate.
    pub fn sample_at(&mut self, server: ServerId, ns: f64, now: Instant) {
        let Some(j) = self.slots.iter().position(|s| s.id == server) else {
            return;
        };
        let i = self.slots[j].member;
        if now.saturating_duration_since(self.epoch).as_secs_f64()
            > REBASE_AFTER_TAUS * TAU.as_secs_f64()
        {
            self.rebase(now);
        }
        let scale = self.scale(now);
        let (stored, last) = self.estimates[i];
        let current = stored / scale;
        let next = match last {
            Some(t) if ns <= current => {
                let w = (-now.saturating_duration_since(t).as_secs_f64() / TAU.as_secs_f64()).exp();
                current + ns * (1.0 - w)
            }
            _ => ns,
        };
        self.estimates[i] = (next * scale, Some(now));
        self.slots[j].cost = next * scale;
    }

    /// Moves the epoch to `now`, rescaling every stored estimate.
    fn rebase(&mut self, now: Instant) {
        let scale = self.scale(now);
        for e in &mut self.estimates {
            e.0 /= scale;
        }
        for s in &mut self.slots {
            s.cost = self.estimates[s.member].0;
        }
        self.epoch = now;
    }

    pub fn pick_at(&mut self, ctx: &PickCtx, counters: &'static Counters, now: Instant) -> Pick {
        let n = self.slots.len();
        if n == 0 {
            return Pick::NoServer;
        }
        self.turn = if self.turn + 1 >= n { 0 } else { self.turn + 1 };
        let floor = FLOOR_NS * self.scale(now);
        let turn = self.turn;
        let lease = counters.lease_scanned(|| {
            let best = match ctx.avoid {
                None => self.scan(turn, floor, counters),
                Some(avoid) => self.scan_avoiding(turn, avoid, floor, counters),
            };
            best.map(|(j, seen)| (self.slots[j].id, seen, self.slots[j].max))
        });
        match lease {
            Some(l) => Pick::Leased(l),
            None => Pick::Full,
        }
    }

    /// The slot with the least score and room, the first in scan order from `start` on a
    /// tie, and the count it had: four lanes take every fourth server, merged at the end.
    fn scan(&self, start: usize, floor: f64, c: &Counters) -> Option<(usize, u32)> {
        let mut lanes = [Cand::NONE; 4];
        let (tail, head) = self.slots.split_at(start);
        let mut k = 0;
        for seg in [head, tail] {
            let mut chunks = seg.chunks_exact(4);
            for ch in &mut chunks {
                for (j, s) in ch.iter().enumerate() {
                    lanes[j].offer(s, floor, c, k + j);
                }
                k += 4;
            }
            for (j, s) in chunks.remainder().iter().enumerate() {
                lanes[j].offer(s, floor, c, k + j);
            }
            k += chunks.remainder().len();
        }
        let best = lanes.iter().fold(Cand::NONE, |b, l| {
            if l.score < b.score || (l.score == b.score && l.k < b.k) {
                *l
            } else {
                b
            }
        });
        (best.k != usize::MAX).then(|| ((start + best.k) % self.slots.len(), best.active))
    }

    /// `scan`, passing over `avoid` unless it is the only server with room.
    fn scan_avoiding(
        &self,
        start: usize,
        avoid: ServerId,
        floor: f64,
        c: &Counters,
    ) -> Option<(usize, u32)> {
        let n = self.slots.len();
        let (mut best, mut avoided) = (Cand::NONE, Cand::NONE);
        for k in 0..n {
            let s = &self.slots[(start + k) % n];
            let lane = if s.id == avoid {
                &mut avoided
            } else {
                &mut best
            };
            lane.offer(s, floor, c, k);
        }
        let best = if best.k != usize::MAX { best } else { avoided };
        (best.k != usize::MAX).then(|| ((start + best.k) % n, best.active))
    }
}

impl Algorithm for LeastTime {
    fn rebuild(&mut self, pool: &Pool) {
        // Estimates are kept across rebuilds: a server going down and up keeps its history.
        self.estimates.resize(pool.members.len(), (0.0, None));
        self.slots = pool
            .serving()
            .iter()
            .filter(|&&i| pool.members[i].eweight > 0)
            .map(|&i| {
                let m = &pool.members[i];
                Slot {
                    member: i,
                    id: m.id,
                    inv_weight: 1.0 / f64::from(m.eweight),
                    max: m.maxconn.unwrap_or(u32::MAX),
                    cost: self.estimates[i].0,
                }
            })
            .collect();
    }

    fn pick(&mut self, _pool: &Pool, ctx: &PickCtx, counters: &'static Counters) -> Pick {
        self.pick_at(ctx, counters, Instant::now())
    }

    fn connected(&mut self, server: ServerId, connect_time: Duration) {
        self.sample_at(server, connect_time.as_nanos() as f64, Instant::now());
    }

    fn failed(&mut self, server: ServerId) {
        self.sample_at(server, FAILURE_NS, Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::pool;
    use super::*;

    const MS: f64 = 1_000_000.0;

    fn pick(lt: &mut LeastTime, c: &'static Counters, now: Instant) -> super::super::ConnLease {
        match lt.pick_at(&PickCtx::default(), c, now) {
            Pick::Leased(l) => l,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn prefers_the_fast_server_then_returns_to_a_recovered_one() {
        let c = Counters::leak(2, 1);
        let p = pool(&[1, 1], &[]);
        let t0 = Instant::now();
        let mut lt = LeastTime::new(t0);
        lt.rebuild(&p);
        lt.sample_at(ServerId(0), 1.0 * MS, t0);
        lt.sample_at(ServerId(1), 50.0 * MS, t0);
        // Second by second, every pick goes to the fast server, which keeps answering in 1 ms.
        let mut back_at = None;
        for s in 1..120 {
            let now = t0 + Duration::from_secs(s);
            let l = pick(&mut lt, c, now);
            if l.server() == ServerId(1) {
                back_at = Some(s);
                break;
            }
            lt.sample_at(ServerId(0), 1.0 * MS, now);
        }
        // 50 ms decays under 1 ms after tau x ln(50), about 39 s.
        let back_at = back_at.expect("the slow server is tried again");
        assert!(
            (35..=45).contains(&back_at),
            "tried again after {back_at} s"
        );
        // It has recovered: it answers in 1 ms and keeps its share from then on.
        let mut now = t0 + Duration::from_secs(back_at);
        lt.sample_at(ServerId(1), 1.0 * MS, now);
        let mut to_slow = 0;
        for _ in 0..100 {
            now += Duration::from_millis(100);
            let l = pick(&mut lt, c, now);
            lt.sample_at(l.server(), 1.0 * MS, now);
            to_slow += usize::from(l.server() == ServerId(1));
        }
        assert!((30..=70).contains(&to_slow), "{to_slow} of 100");
    }

    #[test]
    fn held_connections_share_by_speed() {
        let c = Counters::leak(2, 1);
        let p = pool(&[1, 1], &[]);
        let t0 = Instant::now();
        let mut lt = LeastTime::new(t0);
        lt.rebuild(&p);
        lt.sample_at(ServerId(0), 1.0 * MS, t0);
        lt.sample_at(ServerId(1), 4.0 * MS, t0);
        let held: Vec<_> = (0..50).map(|_| pick(&mut lt, c, t0)).collect();
        // 1 x (a + 1) against 4 x (b + 1): about 40 and 10 (ties go either way).
        let (a, b) = (c.active(ServerId(0)), c.active(ServerId(1)));
        assert!(a + b == 50 && (9..=10).contains(&b), "{a} {b}");
        drop(held);
    }

    #[test]
    fn peaks_replace_and_faster_samples_blend() {
        let p = pool(&[1], &[]);
        let t0 = Instant::now();
        let mut lt = LeastTime::new(t0);
        lt.rebuild(&p);
        lt.sample_at(ServerId(0), 10.0 * MS, t0);
        assert!((lt.estimate_at(0, t0) - 10.0 * MS).abs() < 1.0);
        let t1 = t0 + Duration::from_secs(1);
        lt.sample_at(ServerId(0), 1.0 * MS, t1);
        // 10 ms decayed by e^-0.1, plus 1 ms x (1 - e^-0.1).
        let expected = 10.0 * MS * (-0.1f64).exp() + 1.0 * MS * (1.0 - (-0.1f64).exp());
        assert!((lt.estimate_at(0, t1) - expected).abs() < 10.0);
        lt.sample_at(ServerId(0), 30.0 * MS, t1);
        assert!(
            (lt.estimate_at(0, t1) - 30.0 * MS).abs() < 1.0,
            "a peak replaces"
        );
        lt.failed(ServerId(0));
        assert!(lt.estimate_at(0, Instant::now()) > 900.0 * MS);
    }

    #[test]
    fn estimates_survive_rebuilds_and_rebasing() {
        let mut p = pool(&[1, 1], &[]);
        let t0 = Instant::now();
        let mut lt = LeastTime::new(t0);
        lt.rebuild(&p);
        lt.sample_at(ServerId(1), 5.0 * MS, t0);
        p.members[1].usable = false;
        p.refresh();
        lt.rebuild(&p);
        p.members[1].usable = true;
        p.refresh();
        lt.rebuild(&p);
        assert!((lt.estimate_at(1, t0) - 5.0 * MS).abs() < 1.0);
        // Far in the future the epoch moves and the arithmetic stays finite.
        let late = t0 + Duration::from_secs(100_000);
        lt.sample_at(ServerId(0), 2.0 * MS, late);
        assert!((lt.estimate_at(0, late) - 2.0 * MS).abs() < 1.0);
        assert!(lt.estimate_at(1, late) < 1.0);
        let c = Counters::leak(2, 1);
        assert!(matches!(
            lt.pick_at(&PickCtx::default(), c, late),
            Pick::Leased(_)
        ));
    }

    #[test]
    fn ties_rotate_and_avoid_backups_full() {
        let c = Counters::leak(3, 1);
        let mut p = pool(&[1, 1, 1], &[2]);
        let t0 = Instant::now();
        let mut lt = LeastTime::new(t0);
        lt.rebuild(&p);
        let firsts: Vec<u32> = (0..4).map(|_| pick(&mut lt, c, t0).server().0).collect();
        assert!(firsts.contains(&0) && firsts.contains(&1), "{firsts:?}");
        let ctx = PickCtx {
            avoid: Some(ServerId(0)),
            ..PickCtx::default()
        };
        for _ in 0..4 {
            let Pick::Leased(l) = lt.pick_at(&ctx, c, t0) else {
                panic!()
            };
            assert_eq!(l.server(), ServerId(1));
        }
        p.members[0].usable = false;
        p.members[1].usable = false;
        p.refresh();
        lt.rebuild(&p);
        assert_eq!(pick(&mut lt, c, t0).server(), ServerId(2), "the backup");
        p.members[2].maxconn = Some(0);
        p.refresh();
        lt.rebuild(&p);
        assert!(matches!(lt.pick_at(&PickCtx::default(), c, t0), Pick::Full));
    }
}
