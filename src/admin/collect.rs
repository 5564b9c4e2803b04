//! Building a [`Snapshot`]: the workers' counter copies (asked over their control channels,
//! waited for with a deadline), the shared atomics for what is current (sessions, queues),
//! the health thread's published server views, and the model for names and limits.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::snapshot::{
    BackendRow, CheckInfo, FrontendRow, Info, ServerRow, ServerStatus, Snapshot,
};
use crate::balance::Counters;
use crate::config::model::{Mode, Model, ServerAddr};
use crate::health::state::Admin;
use crate::health::{ServerView, Views};
use crate::worker::conn::Shared;
use crate::worker::stats::StatsCopy;
use crate::worker::Control;

/// What the admin thread reads from.
pub struct Sources {
    pub model: Arc<Model>,
    pub counters: &'static Counters,
    pub shared: &'static Shared,
    pub views: Views,
    pub workers: Vec<crate::health::WorkerLink>,
    pub started: Instant,
    pub started_wall: std::time::SystemTime,
    pub nbthread: u32,
    pub maxsock: u64,
    pub max_pipes: u64,
}

impl Sources {
    /// Asks every worker for its counters and adds them up (100 ms at most per worker).
    pub fn worker_counters(&self) -> StatsCopy {
        let (tx, rx) = crossbeam_channel::unbounded();
        for w in &self.workers {
            let _ = w.tx.send(Control::Snapshot(tx.clone()));
            let _ = w.waker.wake();
        }
        drop(tx);
        let mut total = StatsCopy::default();
        let deadline =
            Instant::now() + Duration::from_millis(100 * self.workers.len().max(1) as u64);
        for _ in 0..self.workers.len() {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(c) => total.merge(&c),
                Err(_) => break,
            }
        }
        total
    }

    pub fn snapshot(&self) -> Snapshot {
        let m = &self.model;
        let mut c = self.worker_counters();
        let (views, backend_down): (Vec<ServerView>, Vec<u64>) = self
            .views
            .lock()
            .map(|v| (v.servers.clone(), v.backend_down.clone()))
            .unwrap_or_default();
        let now = Instant::now();
        c.fe.resize(m.frontends.len(), Default::default());
        c.be.resize(m.backends.len(), Default::default());
        c.srv.resize(m.servers.len(), Default::default());

        let frontends = m
            .frontends
            .iter()
            .map(|f| {
                let mut t = c.fe[f.id.index()];
                t.scur = u64::from(self.shared.feconn[f.id.index()].load(Ordering::Relaxed));
                FrontendRow {
                    name: f.name.clone(),
                    iid: f.uid,
                    traffic: t,
                    slim: Some(f.maxconn.map_or(self.shared.maxconn as u64, u64::from)),
                    rate_lim: f.rate_limit_sessions.map(u64::from),
                    enabled: f.enabled,
                    description: f.description.clone(),
                    mode: mode_name(f.mode),
                }
            })
            .collect();

        let mut servers = Vec::new();
        let mut backends = Vec::new();
        for b in &m.backends {
            let mut bt = c.be[b.id.index()];
            bt.scur = 0;
            bt.qcur = u64::from(self.counters.queued(b.id));
            let (mut weight, mut act, mut bck) = (0u64, 0u64, 0u64);
            // The backend's own UP -> DOWN transitions, not the sum of its servers'.
            let chkdown = backend_down.get(b.id.index()).copied().unwrap_or(0);
            let mut uweight = 0u64;
            let mut lastchg = None::<Instant>;
            let mut down_since = None;
            for &sid in &b.servers {
                let s = m.server(sid);
                let v = views.get(sid.index());
                let mut t = c.srv[sid.index()];
                t.scur = u64::from(self.counters.active(sid));
                bt.scur += t.scur;
                // Drained servers take no new connections: HAProxy leaves them out of act and weight.
                let usable = v.map_or(!s.disabled, |v| v.up && v.admin == Admin::Ready);
                let eff_weight = v.map_or(s.weight, |v| v.weight);
                if usable {
                    if s.backup {
                        bck += 1;
                    } else {
                        act += 1;
                        weight += u64::from(eff_weight);
                        uweight += u64::from(s.weight);
                    }
                }
                if let Some(v) = v {
                    lastchg =
                        Some(lastchg.map_or(v.last_change, |l: Instant| l.max(v.last_change)));
                    if down_since.is_none() {
                        down_since = v.down_since;
                    }
                }
                servers.push(ServerRow {
                    backend: b.name.clone(),
                    name: s.name.clone(),
                    iid: b.uid,
                    sid: s.uid,
                    traffic: t,
                    slim: v.and_then(|v| v.maxconn).or(s.maxconn).map(u64::from),
                    qlimit: s.maxqueue.map(u64::from),
                    status: status(s.check, s.disabled, v),
                    weight: eff_weight,
                    uweight: s.weight,
                    iweight: s.weight,
                    backup: s.backup,
                    chkfail: v.map_or(0, |v| v.chkfail),
                    chkdown: v.map_or(0, |v| v.chkdown),
                    lastchg: v.map_or(now.saturating_duration_since(self.started), |v| {
                        now.saturating_duration_since(v.last_change)
                    }),
                    downtime: v.map_or(Duration::ZERO, |v| {
                        v.downtime
                            + v.down_since
                                .map_or(Duration::ZERO, |d| now.saturating_duration_since(d))
                    }),
                    check: if s.check {
                        v.map(|v| {
                            let mut c = v
                                .last_check
                                .clone()
                                .unwrap_or_else(|| CheckInfo::initializing(None));
                            (c.rise, c.fall, c.health) =
                                (v.health.rise, v.health.fall, v.health.health);
                            c
                        })
                    } else {
                        None
                    },
                    agent: if s.agent.is_some() {
                        v.map(|v| {
                            let mut a = v
                                .last_agent
                                .clone()
                                .unwrap_or_else(|| CheckInfo::initializing(Some(0)));
                            // HAProxy's agent counters read 1/1/1: an agent's reply, not a
                            // count of results, decides (checked against 2.6.12).
                            (a.rise, a.fall, a.health) = (1, 1, 1);
                            a
                        })
                    } else {
                        None
                    },
                    addr: match &s.addr {
                        ServerAddr::Resolved(a) => a.to_string(),
                        ServerAddr::Unresolved { host, port } => format!("{host}:{port}"),
                    },
                    throttle: None,
                    lastsess: None,
                });
            }
            backends.push(BackendRow {
                name: b.name.clone(),
                iid: b.uid,
                traffic: bt,
                slim: b.fullconn.map(u64::from),
                // A stats/metrics listener has no servers: its backend is served by sluice.
                up: act + bck > 0 || b.mode == Mode::Http,
                weight,
                act,
                bck,
                chkdown,
                lastchg: now.saturating_duration_since(lastchg.unwrap_or(self.started)),
                downtime: if act + bck == 0 {
                    down_since.map_or(Duration::ZERO, |d| now.saturating_duration_since(d))
                } else {
                    Duration::ZERO
                },
                description: b.description.clone(),
                algo: crate::balance::balance_name(b.balance),
                uweight,
                lastsess: None,
                mode: mode_name(b.mode),
            });
        }

        let info = Info {
            name: "sluice".to_string(),
            version: crate::VERSION.to_string(),
            pid: std::process::id(),
            uptime: now.saturating_duration_since(self.started),
            nbthread: self.nbthread,
            maxconn: self.shared.maxconn as u64,
            curr_conns: self.shared.actconn.load(Ordering::Relaxed) as u64,
            cum_conns: c.fe.iter().map(|t| t.stot).sum(),
            maxsock: self.maxsock,
            pipes_used: c.pipes_used,
            pipes_free: c.pipes_free,
            max_pipes: self.max_pipes,
            stopping: false,
            dropped_logs: c.dropped_logs,
            node: std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_default(),
            description: None,
            start_time_sec: self
                .started_wall
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            ..Default::default()
        };
        Snapshot {
            info,
            frontends,
            backends,
            servers,
        }
    }
}

fn status(checked: bool, disabled: bool, v: Option<&ServerView>) -> ServerStatus {
    let Some(v) = v else {
        return if disabled {
            ServerStatus::Maint
        } else {
            ServerStatus::NoCheck
        };
    };
    match v.admin {
        Admin::Maint => return ServerStatus::Maint,
        Admin::Drain => return ServerStatus::Drain,
        Admin::Ready => {}
    }
    if !checked {
        return if v.up {
            ServerStatus::NoCheck
        } else {
            ServerStatus::Down
        };
    }
    let h = v.health;
    let top = h.rise + h.fall - 1;
    if v.up {
        if h.health == top {
            ServerStatus::Up
        } else {
            // HAProxy shows the health left above rise: the first failed check of a
            // server at the top reads "UP 2/3" with fall 3.
            ServerStatus::GoingDown {
                step: h.health - h.rise + 1,
                of: h.fall,
            }
        }
    } else if h.health == 0 {
        ServerStatus::Down
    } else {
        ServerStatus::GoingUp {
            step: h.health,
            of: h.rise,
        }
    }
}

/// A proxy's mode as `show stat` prints it.
fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Http => "http",
        Mode::Tcp => "tcp",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::state::Health;

    fn view(health: Health) -> ServerView {
        ServerView {
            up: health.is_up(),
            admin: Admin::Ready,
            health,
            checked: true,
            weight: 1,
            maxconn: None,
            last_check: None,
            last_agent: None,
            chkfail: 0,
            chkdown: 0,
            last_change: Instant::now(),
            down_since: None,
            downtime: Duration::ZERO,
        }
    }

    #[test]
    fn statuses_read_like_haproxys() {
        let mut h = Health::new(2, 3);
        h.force_up();
        assert_eq!(status(true, false, Some(&view(h))), ServerStatus::Up);
        h.failure();
        assert_eq!(
            status(true, false, Some(&view(h))),
            ServerStatus::GoingDown { step: 2, of: 3 }
        );
        h.force_down();
        assert_eq!(status(true, false, Some(&view(h))), ServerStatus::Down);
        h.success();
        assert_eq!(
            status(true, false, Some(&view(h))),
            ServerStatus::GoingUp { step: 1, of: 2 }
        );
        assert_eq!(status(false, false, Some(&view(h))), ServerStatus::Down);
        assert_eq!(status(false, true, None), ServerStatus::Maint);
    }
}
