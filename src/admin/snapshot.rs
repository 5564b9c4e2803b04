//! A point-in-time view of every counter and state, merged from the workers (their plain
//! per-worker counters), the shared atomics (current connections) and the health thread
//! (server states and checks). Field names follow HAProxy's stats fields (management.txt
//! §9.1), so renderers (`show stat` CSV, Prometheus, the stats page) map them one to one.

use std::time::Duration;

/// Traffic counters of a frontend, backend or server. Workers keep one per object and
/// the admin thread sums them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Current sessions.
    pub scur: u64,
    /// Maximum concurrent sessions seen.
    pub smax: u64,
    /// Total sessions.
    pub stot: u64,
    /// Frontends: every connection accepted, refused by a rule or not (HAProxy's
    /// `conn_tot`; `stot` counts those that became sessions).
    pub conn_tot: u64,
    /// Bytes in (from clients) and out (to clients).
    pub bin: u64,
    pub bout: u64,
    /// Requests (connections) denied by rules.
    pub dreq: u64,
    /// Connection errors (failed connects to servers).
    pub econ: u64,
    /// Response errors (server resets and aborts).
    pub eresp: u64,
    /// Retries and redispatches.
    pub wretr: u64,
    pub wredis: u64,
    /// Times a server was chosen (servers and backends).
    pub lbtot: u64,
    /// Queued connections now, and at most.
    pub qcur: u64,
    pub qmax: u64,
    /// Sessions per second over the last second, and the highest seen.
    pub rate: u64,
    pub rate_max: u64,
    /// Client and server aborts.
    pub cli_abrt: u64,
    pub srv_abrt: u64,
    /// Time spent: sum of connect times (ms) and of session durations (ms), for averages.
    pub ctime_sum_ms: u64,
    pub ttime_sum_ms: u64,
    /// Connections refused by `tcp-request connection` rules, before a session exists
    /// (frontends; HAProxy's `dcon`). Rejections by content rules count in `dreq`.
    pub dcon: u64,
    /// Sessions refused by `tcp-request session` rules (HAProxy's `dses`).
    pub dses: u64,
}

impl Traffic {
    /// Adds another worker's counters (maxima add too: each worker's peak is an upper bound
    /// of its share of the global peak).
    pub fn merge(&mut self, o: &Traffic) {
        self.scur += o.scur;
        self.smax += o.smax;
        self.stot += o.stot;
        self.conn_tot += o.conn_tot;
        self.bin += o.bin;
        self.bout += o.bout;
        self.dreq += o.dreq;
        self.econ += o.econ;
        self.eresp += o.eresp;
        self.wretr += o.wretr;
        self.wredis += o.wredis;
        self.lbtot += o.lbtot;
        self.qcur += o.qcur;
        self.qmax += o.qmax;
        self.rate += o.rate;
        self.rate_max += o.rate_max;
        self.cli_abrt += o.cli_abrt;
        self.srv_abrt += o.srv_abrt;
        self.ctime_sum_ms += o.ctime_sum_ms;
        self.ttime_sum_ms += o.ttime_sum_ms;
        self.dcon += o.dcon;
        self.dses += o.dses;
    }
}

/// Process-wide information (`show info`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Info {
    pub name: String,
    pub version: String,
    pub pid: u32,
    pub uptime: Duration,
    pub nbthread: u32,
    pub maxconn: u64,
    pub curr_conns: u64,
    pub cum_conns: u64,
    pub maxsock: u64,
    pub pipes_used: u64,
    pub pipes_free: u64,
    pub max_pipes: u64,
    pub stopping: bool,
    pub dropped_logs: u64,
    pub node: String,
    pub description: Option<String>,
    /// HAProxy's `Release_date` line ("2026/10/17"); empty leaves the line out.
    pub release_date: String,
    /// The file-descriptor limit (`Ulimit-n`, Prometheus `max_fds`).
    pub ulimit_n: u64,
    /// When the process started, in seconds since the Unix epoch (`Start_time_sec`).
    pub start_time_sec: u64,
    /// New connections over the last second and the highest seen; same for sessions.
    pub conn_rate: u64,
    pub max_conn_rate: u64,
    pub sess_rate: u64,
    pub max_sess_rate: u64,
    /// Listening sockets, and jobs (listeners + client connections), as HAProxy counts them.
    pub listeners: u64,
    pub jobs: u64,
    /// Bytes sent to clients and servers, and the part of them that went through splice(2).
    pub total_bytes_out: u64,
    pub spliced_bytes_out: u64,
}

/// Server state as the stats show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerStatus {
    Up,
    Down,
    /// Checks in progress towards up or down: "UP 1/3", "DOWN 1/2".
    GoingDown {
        step: u32,
        of: u32,
    },
    GoingUp {
        step: u32,
        of: u32,
    },
    Maint,
    Drain,
    /// Not checked: always "no check".
    NoCheck,
}

/// Outcome of the last check, with HAProxy's codes (L4OK, L4TOUT, L4CON, L7OK, L7STS...).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CheckInfo {
    pub status: String,
    /// Layer 7 code (HTTP status) when there is one.
    pub code: Option<u32>,
    pub duration_ms: Option<u64>,
    /// HAProxy's human description ("Layer4 connection problem").
    pub desc: String,
    /// What the check saw, HAProxy's `last_chk`/`last_agt` ("Connection refused",
    /// "via agent : up"); empty when there is nothing to add.
    pub output: String,
    /// `rise`, `fall`, and the health counter between 0 and rise+fall-1 (HAProxy's
    /// `check_health`): at or above `rise` the server is up.
    pub rise: u32,
    pub fall: u32,
    pub health: u32,
}

impl CheckInfo {
    /// What HAProxy shows before the first result: `INI`, "Initializing" (a check shows no
    /// duration, an agent 0 ms).
    pub fn initializing(duration_ms: Option<u64>) -> CheckInfo {
        CheckInfo {
            status: "INI".to_string(),
            code: None,
            duration_ms,
            desc: "Initializing".to_string(),
            output: String::new(),
            rise: 0,
            fall: 0,
            health: 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrontendRow {
    pub name: String,
    pub iid: u32,
    pub traffic: Traffic,
    pub slim: Option<u64>,
    pub rate_lim: Option<u64>,
    pub enabled: bool,
    pub description: Option<String>,
    /// "tcp", or "http" for a stats/metrics listener.
    pub mode: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendRow {
    pub name: String,
    pub iid: u32,
    pub traffic: Traffic,
    pub slim: Option<u64>,
    /// "UP" while some server is usable, else "DOWN".
    pub up: bool,
    /// Sum of the weights of the usable active servers (HAProxy's backend weight).
    pub weight: u64,
    pub act: u64,
    pub bck: u64,
    pub chkdown: u64,
    pub lastchg: Duration,
    pub downtime: Duration,
    pub description: Option<String>,
    pub algo: &'static str,
    /// Sum of the user weights (`set weight`) of the usable active servers.
    pub uweight: u64,
    /// How long ago a session was last assigned, None if never.
    pub lastsess: Option<Duration>,
    /// "tcp", or "http" for a stats backend (or the backend side of a stats listener).
    pub mode: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerRow {
    pub backend: String,
    pub name: String,
    pub iid: u32,
    pub sid: u32,
    pub traffic: Traffic,
    pub slim: Option<u64>,
    pub qlimit: Option<u64>,
    pub status: ServerStatus,
    /// Effective weight (after slowstart and agent), user weight (`set weight`, initially
    /// the configured one) and the initial configured weight (`get weight` prints
    /// `"<uweight> (initial <iweight>)"`).
    pub weight: u32,
    pub uweight: u32,
    pub iweight: u32,
    pub backup: bool,
    pub chkfail: u64,
    pub chkdown: u64,
    pub lastchg: Duration,
    pub downtime: Duration,
    pub check: Option<CheckInfo>,
    pub agent: Option<CheckInfo>,
    pub addr: String,
    /// Slowstart throttle in percent, when ramping.
    pub throttle: Option<u32>,
    /// How long ago a session was last assigned, None if never.
    pub lastsess: Option<Duration>,
}

/// Everything at one instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub info: Info,
    pub frontends: Vec<FrontendRow>,
    pub backends: Vec<BackendRow>,
    /// In backend order, then declaration order.
    pub servers: Vec<ServerRow>,
}
