//! "Which server?": the balancing algorithms behind one trait, one file each, chosen by a
//! backend's `balance` line through [`for_backend`] (the registry: one line per algorithm).
//!
//! A worker keeps one [`Pool`] per backend: its servers with their effective weight and
//! whether they may take new connections (health and admin state, updated over the control
//! channel). Backup servers form a separate group used only when no active server can be
//! used. Algorithms do no I/O: they choose among the pool and take a [`ConnLease`] on the
//! shared [`Counters`], honouring each server's `maxconn`.

pub mod chash;
pub mod counters;
pub mod first;
pub mod hash;
pub mod hashfn;
pub mod leastconn;
pub mod leasttime;
pub mod loadtree;
pub mod maglev;
pub mod random;
pub mod roundrobin;
pub mod static_rr;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

pub use counters::{ConnLease, Counters, QueueTicket};

use crate::config::model::{Backend, BackendId, Balance, Model, ServerId};

/// Effective weights are counted in 1/16ths of a configured weight, as HAProxy's
/// `BE_WEIGHT_SCALE`, so that a slow start can ramp even a weight of 1.
pub const WEIGHT_SCALE: u32 = 16;

/// One server as a worker's balancer sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub id: ServerId,
    /// The server's numeric id (`id`, else its position in the backend from 1).
    pub uid: u32,
    /// The weight set by the configuration or at runtime (0-256); 0 takes no new connections.
    pub weight: u32,
    /// The weight dynamic algorithms use, in 1/16ths of `weight` ([`WEIGHT_SCALE`]), as
    /// HAProxy's effective weight; set by [`Pool::refresh`].
    pub eweight: u32,
    pub backup: bool,
    /// Up (health) and ready (admin): may take new connections.
    pub usable: bool,
    pub maxconn: Option<u32>,
    /// Connections that may wait for this server (`maxqueue`; None: unlimited).
    pub maxqueue: Option<u32>,
    /// `slowstart`: how long the weight ramps up after the server comes back up.
    pub slowstart: Option<Duration>,
    /// When the server came back up, while it is still ramping (None: at full weight; a
    /// server is never ramping at start, as in HAProxy).
    pub up_since: Option<Instant>,
}

impl Member {
    /// The weight dynamic algorithms use at `now`: `weight` x [`WEIGHT_SCALE`], and while
    /// slow-starting `weight` x (1 + 16 x elapsed / slowstart), from 1/16 of it up to all
    /// of it by steps, as HAProxy ramps (at least 1 while usable).
    pub fn effective_weight(&self, now: Instant) -> u32 {
        let full = self.weight * WEIGHT_SCALE;
        match (self.slowstart, self.up_since) {
            (Some(ss), Some(since)) if !ss.is_zero() => {
                let elapsed = now.saturating_duration_since(since);
                let step = (u128::from(WEIGHT_SCALE) * elapsed.as_nanos() / ss.as_nanos()) + 1;
                self.weight * (step.min(u128::from(WEIGHT_SCALE)) as u32)
            }
            _ => full,
        }
    }

    /// When the effective weight set by the last refresh next steps up, while ramping.
    pub fn next_ramp(&self) -> Option<Instant> {
        let (ss, since) = (self.slowstart?, self.up_since?);
        if self.weight == 0 {
            return None;
        }
        let step = self.eweight / self.weight;
        if step >= WEIGHT_SCALE {
            return None;
        }
        // Step k holds while 16 x elapsed / slowstart < k.
        let ns = (ss.as_nanos() * u128::from(step)).div_ceil(u128::from(WEIGHT_SCALE));
        Some(since + Duration::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX)))
    }
}

/// The servers of one backend and the group currently in service.
#[derive(Debug, Clone)]
pub struct Pool {
    pub backend: BackendId,
    pub members: Vec<Member>,
    pub allbackups: bool,
    /// Indexes into `members` of the group in service: the usable active servers with a
    /// weight, else the first usable backup (or all of them with `option allbackups`).
    serving: Vec<usize>,
}

impl Pool {
    pub fn from_model(model: &Model, b: &Backend) -> Pool {
        let members = b
            .servers
            .iter()
            .map(|&id| {
                let s = model.server(id);
                Member {
                    id,
                    uid: s.uid,
                    weight: s.weight,
                    eweight: 0,
                    backup: s.backup,
                    usable: !s.disabled
                        && matches!(s.addr, crate::config::model::ServerAddr::Resolved(_)),
                    maxconn: s.maxconn,
                    maxqueue: s.maxqueue,
                    slowstart: s.slowstart,
                    up_since: None,
                }
            })
            .collect();
        Pool::new(b.id, members, b.allbackups)
    }

    /// A pool of `members` (in declaration order), its serving group computed.
    pub fn new(backend: BackendId, members: Vec<Member>, allbackups: bool) -> Pool {
        let mut p = Pool {
            backend,
            members,
            allbackups,
            serving: Vec::new(),
        };
        p.refresh();
        p
    }

    /// Recomputes the effective weights and the serving group after a member changed.
    pub fn refresh(&mut self) {
        self.refresh_at(Instant::now());
    }

    /// `refresh` with the time at `now`: slow-starting servers take their weight of that
    /// instant, and those at their full weight stop ramping.
    pub fn refresh_at(&mut self, now: Instant) {
        for m in &mut self.members {
            m.eweight = m.effective_weight(now);
            if m.eweight == m.weight * WEIGHT_SCALE {
                m.up_since = None;
            }
        }
        let live = |m: &Member| m.usable && m.eweight > 0;
        self.serving = self
            .members
            .iter()
            .enumerate()
            .filter(|(_, m)| !m.backup && live(m))
            .map(|(i, _)| i)
            .collect();
        if self.serving.is_empty() {
            let backups = self
                .members
                .iter()
                .enumerate()
                .filter(|(_, m)| m.backup && live(m))
                .map(|(i, _)| i);
            self.serving = if self.allbackups {
                backups.collect()
            } else {
                backups.take(1).collect()
            };
        }
    }

    pub fn serving(&self) -> &[usize] {
        &self.serving
    }

    /// True when some member could take a connection.
    pub fn has_usable(&self) -> bool {
        !self.serving.is_empty()
    }

    /// How many connections may wait for this backend: the sum of the `maxqueue` of the
    /// servers in service, or unlimited if one of them has none.
    pub fn queue_limit(&self) -> Option<u32> {
        self.serving
            .iter()
            .map(|&i| self.members[i].maxqueue)
            .try_fold(0u32, |acc, m| m.map(|m| acc.saturating_add(m)))
    }

    pub fn member_mut(&mut self, id: ServerId) -> Option<&mut Member> {
        self.members.iter_mut().find(|m| m.id == id)
    }

    /// Server `id` may take connections again (health and admin state both allow it); with
    /// a `slowstart` its weight ramps from `now`. Returns whether anything changed: then
    /// the algorithm must be rebuilt.
    pub fn server_up(&mut self, id: ServerId, now: Instant) -> bool {
        let Some(m) = self.member_mut(id) else {
            return false;
        };
        if m.usable {
            return false;
        }
        m.usable = true;
        m.up_since = m.slowstart.map(|_| now);
        self.refresh_at(now);
        true
    }

    /// Server `id` may no longer take connections. Returns whether anything changed.
    pub fn server_down(&mut self, id: ServerId, now: Instant) -> bool {
        let Some(m) = self.member_mut(id) else {
            return false;
        };
        if !m.usable {
            return false;
        }
        m.usable = false;
        m.up_since = None;
        self.refresh_at(now);
        true
    }

    /// Sets server `id`'s weight (0-256) at runtime. Returns whether anything changed.
    pub fn set_weight(&mut self, id: ServerId, weight: u32, now: Instant) -> bool {
        let Some(m) = self.member_mut(id) else {
            return false;
        };
        if m.weight == weight {
            return false;
        }
        m.weight = weight;
        self.refresh_at(now);
        true
    }

    /// When a slow-starting server's weight next steps up: the worker calls [`Pool::ramp`]
    /// then (a timer, or its tick).
    pub fn next_ramp(&self) -> Option<Instant> {
        self.members.iter().filter_map(Member::next_ramp).min()
    }

    /// Moves slow-starting servers to their weight at `now`. Returns whether a weight
    /// changed: then the algorithm must be rebuilt.
    pub fn ramp(&mut self, now: Instant) -> bool {
        let before: Vec<u32> = self.members.iter().map(|m| m.eweight).collect();
        self.refresh_at(now);
        self.members.iter().zip(before).any(|(m, e)| m.eweight != e)
    }
}

/// What a pick may depend on.
#[derive(Debug, Clone, Copy, Default)]
pub struct PickCtx {
    pub src: Option<IpAddr>,
    /// A server to avoid if another can be had (retries and redispatch).
    pub avoid: Option<ServerId>,
}

/// The facts of a connection a `balance hash` key may read beyond the client address of
/// [`PickCtx`]: what the worker knows when it picks ([`Algorithm::pick_keyed`]). A missing
/// fact makes the pick round-robin, as HAProxy does when a sample is missing.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConnKeys<'a> {
    /// The client's port (`hash src_port`).
    pub src_port: Option<u16>,
    /// The address and port the client connected to (`hash dst`, `hash dst_port`).
    pub dst: Option<SocketAddr>,
    /// The server name of the TLS ClientHello (`hash req.ssl_sni`).
    pub sni: Option<&'a str>,
}

/// The outcome of a pick.
#[derive(Debug)]
pub enum Pick {
    /// A server, already counted.
    Leased(ConnLease),
    /// Servers are in service but all at their `maxconn`: queue.
    Full,
    /// No server can take connections.
    NoServer,
}

/// A balancing algorithm: per worker and per backend, with its own state.
pub trait Algorithm: Send {
    /// Recomputes whatever the algorithm derives from the pool (called after every change).
    fn rebuild(&mut self, pool: &Pool);
    fn pick(&mut self, pool: &Pool, ctx: &PickCtx, counters: &'static Counters) -> Pick;

    /// `pick` with the connection's other facts, for `balance hash` on `dst`, the ports or
    /// the SNI; the other algorithms ignore them.
    fn pick_keyed(
        &mut self,
        pool: &Pool,
        ctx: &PickCtx,
        keys: &ConnKeys<'_>,
        counters: &'static Counters,
    ) -> Pick {
        let _ = keys;
        self.pick(pool, ctx, counters)
    }

    /// Feedback: a connection to `server` this algorithm picked completed its connect in
    /// `connect_time` (least response time learns from it).
    fn connected(&mut self, server: ServerId, connect_time: Duration) {
        let _ = (server, connect_time);
    }

    /// Feedback: a connect to `server` failed (refused, reset or timed out).
    fn failed(&mut self, server: ServerId) {
        let _ = server;
    }

    /// Whether picks read [`ConnKeys::sni`]: the worker must then wait for the ClientHello
    /// (within `tcp-request inspect-delay`) before picking.
    fn needs_sni(&self) -> bool {
        false
    }
}

/// The registry: the algorithm object for a backend's `balance` line. Every algorithm of the
/// model is available; the `Result` stays for algorithms a build may lack.
pub fn for_backend(b: &Backend, pool: &Pool) -> Result<Box<dyn Algorithm>, String> {
    let mut alg: Box<dyn Algorithm> = match b.balance {
        Balance::RoundRobin => Box::new(roundrobin::RoundRobin::default()),
        Balance::StaticRr => Box::new(static_rr::StaticRr::new(pool)),
        Balance::LeastConn => Box::new(leastconn::LeastConn::default()),
        Balance::First => Box::new(first::First::default()),
        Balance::LeastTime => Box::new(leasttime::LeastTime::default()),
        Balance::Random { draws } => Box::new(random::Random::new(draws)),
        Balance::Source | Balance::Hash(_) => Box::new(hash::Hash::new(
            b.balance,
            b.hash_type,
            b.hash_balance_factor,
            pool,
        )),
    };
    alg.rebuild(pool);
    Ok(alg)
}

pub fn balance_name(b: Balance) -> &'static str {
    match b {
        Balance::RoundRobin => "roundrobin",
        Balance::StaticRr => "static-rr",
        Balance::LeastConn => "leastconn",
        Balance::First => "first",
        Balance::Source => "source",
        Balance::Hash(_) => "hash",
        Balance::Random { .. } => "random",
        Balance::LeastTime => "leasttime",
    }
}

/// Tries `order` (indexes into the pool's members) and leases the first server with room,
/// skipping `avoid` unless it is the only choice.
pub fn lease_first(
    pool: &Pool,
    order: impl Iterator<Item = usize> + Clone,
    avoid: Option<ServerId>,
    counters: &'static Counters,
) -> Pick {
    let mut saw_any = false;
    for pass in 0..2 {
        for i in order.clone() {
            let m = &pool.members[i];
            if pass == 0 && Some(m.id) == avoid {
                continue;
            }
            saw_any = true;
            if let Some(lease) = counters.try_lease(m.id, m.maxconn) {
                return Pick::Leased(lease);
            }
        }
        if saw_any || avoid.is_none() {
            break;
        }
    }
    if saw_any {
        Pick::Full
    } else {
        Pick::NoServer
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::*;

    /// A pool of `weights.len()` servers; `backups` marks backup positions.
    pub fn pool(weights: &[u32], backups: &[usize]) -> Pool {
        let members = weights
            .iter()
            .enumerate()
            .map(|(i, &w)| Member {
                id: ServerId(i as u32),
                uid: i as u32 + 1,
                weight: w,
                eweight: 0,
                backup: backups.contains(&i),
                usable: true,
                maxconn: None,
                maxqueue: None,
                slowstart: None,
                up_since: None,
            })
            .collect();
        Pool::new(BackendId(0), members, false)
    }

    /// Picks `n` times, releasing each lease at once; returns the server indexes.
    pub fn sequence(
        alg: &mut dyn Algorithm,
        pool: &Pool,
        c: &'static Counters,
        n: usize,
    ) -> Vec<u32> {
        (0..n)
            .map(|_| match alg.pick(pool, &PickCtx::default(), c) {
                Pick::Leased(l) => l.server().0,
                other => panic!("no pick: {other:?}"),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::pool;
    use super::*;

    #[test]
    fn backups_serve_only_when_no_active_server_can() {
        let mut p = pool(&[1, 1, 1, 1], &[2, 3]);
        assert_eq!(p.serving(), &[0, 1]);
        p.members[0].usable = false;
        p.members[1].weight = 0;
        p.refresh();
        assert_eq!(p.serving(), &[2], "the first backup only");
        p.allbackups = true;
        p.refresh();
        assert_eq!(p.serving(), &[2, 3]);
        p.members[0].usable = true;
        p.refresh();
        assert_eq!(p.serving(), &[0], "back to the active group");
        for m in &mut p.members {
            m.usable = false;
        }
        p.refresh();
        assert!(!p.has_usable());
    }

    #[test]
    fn lease_first_honours_avoid_and_maxconn() {
        let c = Counters::leak(3, 1);
        let mut p = pool(&[1, 1, 1], &[]);
        p.members[1].maxconn = Some(1);
        let order = [0usize, 1, 2];
        let Pick::Leased(a) = lease_first(&p, order.iter().copied(), Some(ServerId(0)), c) else {
            panic!()
        };
        assert_eq!(a.server(), ServerId(1));
        assert!(matches!(
            lease_first(&p, [1usize].iter().copied(), None, c),
            Pick::Full
        ));
        drop(a);
    }

    #[test]
    fn slowstart_ramps_from_a_sixteenth_to_full() {
        let t0 = Instant::now();
        let mut p = pool(&[2, 2], &[]);
        p.members[1].slowstart = Some(Duration::from_secs(16));
        assert!(p.server_down(ServerId(1), t0));
        assert_eq!(p.serving(), &[0]);
        assert!(p.server_up(ServerId(1), t0));
        assert_eq!(p.serving(), &[0, 1], "in service at once");
        assert_eq!(p.members[1].eweight, 2, "2 x 1/16 of 16");
        assert_eq!(p.next_ramp(), Some(t0 + Duration::from_secs(1)));
        let at = |s: u64| t0 + Duration::from_millis(s);
        assert!(!p.ramp(at(999)));
        assert!(p.ramp(at(1_000)));
        assert_eq!(p.members[1].eweight, 4);
        assert!(p.ramp(at(8_000)));
        assert_eq!(p.members[1].eweight, 18);
        assert_eq!(p.next_ramp(), Some(at(9_000)));
        assert!(p.ramp(at(15_000)));
        assert_eq!(p.members[1].eweight, 32, "full at 15/16");
        assert_eq!(p.members[1].up_since, None, "done ramping");
        assert_eq!(p.next_ramp(), None);
        assert!(!p.ramp(at(40_000)));
        // Without slowstart, back at full weight at once; no change, no rebuild.
        assert!(p.server_down(ServerId(0), t0));
        assert!(p.server_up(ServerId(0), t0));
        assert_eq!(p.members[0].eweight, 32);
        assert!(!p.server_up(ServerId(0), t0));
        assert!(p.set_weight(ServerId(0), 1, t0));
        assert_eq!(p.members[0].eweight, 16);
    }

    #[test]
    fn a_ramping_server_takes_its_share_of_a_rotation() {
        let t0 = Instant::now();
        let c = Counters::leak(2, 1);
        let mut p = pool(&[1, 1], &[]);
        p.members[1].slowstart = Some(Duration::from_secs(60));
        p.server_down(ServerId(1), t0);
        p.server_up(ServerId(1), t0);
        let mut rr = roundrobin::RoundRobin::default();
        rr.rebuild(&p);
        // Weights 16 and 1: the newcomer gets 1 connection in 17.
        let s = test_support::sequence(&mut rr, &p, c, 17 * 4);
        assert_eq!(s.iter().filter(|&&m| m == 1).count(), 4);
        p.ramp(t0 + Duration::from_secs(30));
        rr.rebuild(&p);
        // Half way: 16 and 9.
        let s = test_support::sequence(&mut rr, &p, c, 25 * 4);
        assert_eq!(s.iter().filter(|&&m| m == 1).count(), 9 * 4);
    }

    #[test]
    fn avoid_is_only_a_preference() {
        let c = Counters::leak(1, 1);
        let p = pool(&[1], &[]);
        let Pick::Leased(a) = lease_first(&p, [0usize].iter().copied(), Some(ServerId(0)), c)
        else {
            panic!()
        };
        assert_eq!(a.server(), ServerId(0));
    }
}
