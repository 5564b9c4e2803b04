//! `balance leasttime` (a sluice extension): least response time. Each server has a
//! peak-EWMA of the time its connections take to connect, shared by every worker (each
//! worker's samples feed the same estimate): a slower sample replaces the estimate at once,
//! a faster one blends in with weight 1 - e^(-dt/tau), and the estimate decays towards zero
//! while no sample comes, with time constant `tau` (10 s), so a server that was slow and is
//! therefore avoided looks cheap again after a while, is tried, and is kept if it has
//! recovered. A pick takes the server with the least `max(estimate, 1 us) x (active + 1) /
//! weight`, active counted by every worker; ties go round-robin. A failed connect counts as
//! a 1 s sample. The worker reports through `connected` and `failed`.
//!
//! Estimates and loads live in the backend's shared [`LoadTree`]; the decay is applied to
//! every estimate every 100 ms by whichever worker picks first after that.
//!
//! [`LoadTree`]: super::loadtree::LoadTree

use std::time::{Duration, Instant};

use super::loadtree::{Kind, Shared};
use super::{Algorithm, Counters, Pick, PickCtx, Pool};
use crate::config::model::ServerId;

pub use super::loadtree::TAU;

/// What a failed connect counts as.
const FAILURE_NS: f64 = 1_000_000_000.0;

#[derive(Default)]
pub struct LeastTime {
    tree: Shared,
}

impl LeastTime {
    /// The estimate of member `i` at `now`, in nanoseconds (0 if never sampled or before
    /// the first pick).
    pub fn estimate_at(&self, i: usize, now: Instant) -> f64 {
        self.tree.tree().map_or(0.0, |t| t.estimate(i, now))
    }

    /// Folds a connect time of `ns` nanoseconds for `server` into its estimate (nothing
    /// before the first pick: no connection can have been made).
    pub fn sample_at(&mut self, server: ServerId, ns: f64, now: Instant) {
        if let Some(t) = self.tree.tree() {
            t.sample(server, ns, now);
        }
    }

    /// Joins the backend's shared tree with this worker's view of `pool` (the first pick
    /// does it too).
    pub fn attach(&mut self, pool: &Pool, counters: &'static Counters) {
        self.tree.get(pool, counters, Kind::LeastTime);
    }

    pub fn pick_at(
        &mut self,
        pool: &Pool,
        ctx: &PickCtx,
        counters: &'static Counters,
        now: Instant,
    ) -> Pick {
        self.tree
            .pick(pool, ctx.avoid, counters, Kind::LeastTime, |t| t.decay(now))
    }
}

impl Algorithm for LeastTime {
    fn rebuild(&mut self, _pool: &Pool) {
        self.tree.rebuilt();
    }

    fn pick(&mut self, pool: &Pool, ctx: &PickCtx, counters: &'static Counters) -> Pick {
        self.pick_at(pool, ctx, counters, Instant::now())
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

    fn pick(
        lt: &mut LeastTime,
        p: &Pool,
        c: &'static Counters,
        now: Instant,
    ) -> super::super::ConnLease {
        match lt.pick_at(p, &PickCtx::default(), c, now) {
            Pick::Leased(l) => l,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn prefers_the_fast_server_then_returns_to_a_recovered_one() {
        let c = Counters::leak(2, 1);
        let p = pool(&[1, 1], &[]);
        let mut lt = LeastTime::default();
        lt.rebuild(&p);
        lt.attach(&p, c);
        let t0 = Instant::now();
        lt.sample_at(ServerId(0), 1.0 * MS, t0);
        lt.sample_at(ServerId(1), 50.0 * MS, t0);
        // Second by second, every pick goes to the fast server, which keeps answering in 1 ms.
        let mut back_at = None;
        for s in 1..120 {
            let now = t0 + Duration::from_secs(s);
            let l = pick(&mut lt, &p, c, now);
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
            let l = pick(&mut lt, &p, c, now);
            lt.sample_at(l.server(), 1.0 * MS, now);
            to_slow += usize::from(l.server() == ServerId(1));
        }
        assert!((30..=70).contains(&to_slow), "{to_slow} of 100");
    }

    #[test]
    fn held_connections_share_by_speed() {
        let c = Counters::leak(2, 1);
        let p = pool(&[1, 1], &[]);
        let mut lt = LeastTime::default();
        lt.rebuild(&p);
        lt.attach(&p, c);
        let t0 = Instant::now();
        lt.sample_at(ServerId(0), 1.0 * MS, t0);
        lt.sample_at(ServerId(1), 4.0 * MS, t0);
        let held: Vec<_> = (0..50).map(|_| pick(&mut lt, &p, c, t0)).collect();
        // 1 x (a + 1) against 4 x (b + 1): about 40 and 10 (ties go either way).
        let (a, b) = (c.active(ServerId(0)), c.active(ServerId(1)));
        assert!(a + b == 50 && (9..=10).contains(&b), "{a} {b}");
        drop(held);
    }

    #[test]
    fn peaks_replace_and_faster_samples_blend() {
        let c = Counters::leak(1, 1);
        let p = pool(&[1], &[]);
        let mut lt = LeastTime::default();
        lt.rebuild(&p);
        lt.attach(&p, c);
        let t0 = Instant::now();
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
    fn estimates_survive_rebuilds_and_far_futures() {
        let c = Counters::leak(2, 1);
        let mut p = pool(&[1, 1], &[]);
        let mut lt = LeastTime::default();
        lt.rebuild(&p);
        lt.attach(&p, c);
        let t0 = Instant::now();
        lt.sample_at(ServerId(1), 5.0 * MS, t0);
        p.members[1].usable = false;
        p.refresh();
        lt.rebuild(&p);
        p.members[1].usable = true;
        p.refresh();
        lt.rebuild(&p);
        assert!((lt.estimate_at(1, t0) - 5.0 * MS).abs() < 1.0);
        // Far in the future the arithmetic stays finite.
        let late = t0 + Duration::from_secs(100_000);
        lt.sample_at(ServerId(0), 2.0 * MS, late);
        assert!((lt.estimate_at(0, late) - 2.0 * MS).abs() < 1.0);
        assert!(lt.estimate_at(1, late) < 1.0);
        assert!(matches!(
            lt.pick_at(&p, &PickCtx::default(), c, late),
            Pick::Leased(_)
        ));
    }

    #[test]
    fn ties_rotate_and_avoid_backups_full() {
        let c = Counters::leak(3, 1);
        let mut p = pool(&[1, 1, 1], &[2]);
        let mut lt = LeastTime::default();
        lt.rebuild(&p);
        lt.attach(&p, c);
        let t0 = Instant::now();
        let firsts: Vec<u32> = (0..4)
            .map(|_| pick(&mut lt, &p, c, t0).server().0)
            .collect();
        assert!(firsts.contains(&0) && firsts.contains(&1), "{firsts:?}");
        let ctx = PickCtx {
            avoid: Some(ServerId(0)),
            ..PickCtx::default()
        };
        for _ in 0..4 {
            let Pick::Leased(l) = lt.pick_at(&p, &ctx, c, t0) else {
                panic!()
            };
            assert_eq!(l.server(), ServerId(1));
        }
        p.members[0].usable = false;
        p.members[1].usable = false;
        p.refresh();
        lt.rebuild(&p);
        assert_eq!(pick(&mut lt, &p, c, t0).server(), ServerId(2), "the backup");
        p.members[2].maxconn = Some(0);
        p.refresh();
        lt.rebuild(&p);
        assert!(matches!(
            lt.pick_at(&p, &PickCtx::default(), c, t0),
            Pick::Full
        ));
    }
}
