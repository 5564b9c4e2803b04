//! The renderers against real HAProxy 2.6.12: `show stat` (CSV, typed, JSON), `show
//! servers state`, the Prometheus exporter and the stats page, from a snapshot equal to the
//! state a real HAProxy showed. The captures below come from HAProxy 2.6.12 running
//! [`HAPROXY_CFG`]; `live_haproxy_header_matches` also asks an installed HAProxy for its
//! header, and `exporter_passes_promtool` runs `promtool check metrics`.

use std::io::Write;
use std::process::{Command as Process, Stdio};
use std::time::Duration;

use sluice::admin::command::{parse_line, Command, OutputFormat, StatFilter};
use sluice::admin::render::{
    handle_http, prometheus, show_servers_state, show_stat, show_stat_csv, show_stat_json,
    show_stat_typed, stats_page, Site, CSV_HEADER,
};
use sluice::admin::snapshot::{
    BackendRow, CheckInfo, FrontendRow, Info, ServerRow, ServerStatus, Snapshot, Traffic,
};

use crate::common::backends::cli;
use crate::common::running::{reference_haproxy, Haproxy};
use crate::common::TempDir;

/// The configuration the captures come from (the servers at 127.0.0.1:18901 and 18903 and
/// the HTTP server at 18911 were up, the others refused connections; 18910 answered the
/// agent check with "up 75%").
#[allow(dead_code)]
const HAPROXY_CFG: &str = "\
global
    stats socket /tmp/adm_ref/admin.sock mode 600 level admin
    maxconn 1000
    nbthread 2
defaults
    mode tcp
    timeout connect 2s
    timeout client 30s
    timeout server 30s
frontend fe_main
    bind 127.0.0.1:18080
    default_backend be_app
backend be_app
    balance roundrobin
    server s1 127.0.0.1:18901 check inter 1s
    server s2 127.0.0.1:18902 check inter 1s
    server s3 127.0.0.1:18903
    server s4 127.0.0.1:18904 check backup
    server s5 127.0.0.1:18905 disabled
listen li_db
    bind 127.0.0.1:18081
    balance leastconn
    maxconn 50
    server db1 127.0.0.1:18901 check weight 10 maxconn 20 maxqueue 5
    server db2 127.0.0.1:18909 check slowstart 10s
frontend stats
    mode http
    bind 127.0.0.1:18404
    http-request use-service prometheus-exporter if { path /metrics }
    stats enable
    stats uri /stats
    stats refresh 10s
backend be_l7
    option httpchk GET /
    server web1 127.0.0.1:18911 check inter 1s
    server ag1 127.0.0.1:18903 check agent-check agent-port 18910 agent-inter 1s inter 1s
    server tr1 127.0.0.1:18903 track be_app/s1
";

/// `show stat` from HAProxy 2.6.12 (captured with socat) for the configuration in
/// [`HAPROXY_CFG`], with s3 drained, db2 in maintenance and s1 at weight 3.
const HAPROXY_CSV: &str = "\
# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code,check_duration,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,hanafail,req_rate,req_rate_max,req_tot,cli_abrt,srv_abrt,comp_in,comp_out,comp_byp,comp_rsp,lastsess,last_chk,last_agt,qtime,ctime,rtime,ttime,agent_status,agent_code,agent_duration,check_desc,agent_desc,check_rise,check_fall,check_health,agent_rise,agent_fall,agent_health,addr,cookie,mode,algo,conn_rate,conn_rate_max,conn_tot,intercepted,dcon,dses,wrew,connect,reuse,cache_lookups,cache_hits,srv_icur,src_ilim,qtime_max,ctime_max,rtime_max,ttime_max,eint,idle_conn_cur,safe_conn_cur,used_conn_cur,need_conn_est,uweight,agg_server_status,agg_server_check_status,agg_check_status,-,ssl_sess,ssl_reused_sess,ssl_failed_handshake,h2_headers_rcvd,h2_data_rcvd,h2_settings_rcvd,h2_rst_stream_rcvd,h2_goaway_rcvd,h2_detected_conn_protocol_errors,h2_detected_strm_protocol_errors,h2_rst_stream_resp,h2_goaway_resp,h2_open_connections,h2_backend_open_streams,h2_total_connections,h2_backend_total_streams,h1_open_connections,h1_open_streams,h1_total_connections,h1_total_streams,h1_bytes_in,h1_bytes_out,h1_spliced_bytes_in,h1_spliced_bytes_out,\n\
fe_main,FRONTEND,,,0,1,1000,4,24,24,0,0,0,,,,,OPEN,,,,,,,,,1,2,0,,,,0,0,0,4,,,,,,,,,,,0,0,0,,,0,0,0,0,,,,,,,,,,,,,,,,,,,,,tcp,,0,4,4,,0,0,0,,,,,,,,,,,0,,,,,,,,,-,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,\n\
be_app,s1,0,0,0,1,,3,18,18,,0,,0,0,0,0,UP,3,1,0,0,0,605,0,,1,3,1,,3,,2,0,,3,L4OK,,0,,,,,,,,,,,0,0,,,,,12,,,0,0,0,0,,,,Layer4 check passed,,2,3,4,,,,127.0.0.1:18901,,tcp,,,,,,,,0,3,0,,,0,,0,0,0,0,0,0,0,0,1,3,,,,-,0,0,0,,,,,,,,,,,,,,,,,,,,,,\n\
be_app,s2,0,0,0,0,,0,0,0,,0,,0,0,0,0,DOWN,1,1,0,1,1,616,616,,1,3,2,,0,,2,0,,0,L4CON,,0,,,,,,,,,,,0,0,,,,,-1,Connection refused,,0,0,0,0,,,,Layer4 connection problem,,2,3,0,,,,127.0.0.1:18902,,tcp,,,,,,,,0,0,0,,,0,,0,0,0,0,0,0,0,0,1,1,,,,-,0,0,0,,,,,,,,,,,,,,,,,,,,,,\n\
be_app,s3,0,0,0,1,,1,6,6,,0,,0,0,0,0,DRAIN,1,1,0,,,1,,,1,3,3,,1,,2,0,,1,,,,,,,,,,,,,,0,0,,,,,12,,,0,0,0,0,,,,,,,,,,,,127.0.0.1:18903,,tcp,,,,,,,,0,1,0,,,0,,0,0,0,0,0,0,0,0,1,1,,,,-,0,0,0,,,,,,,,,,,,,,,,,,,,,,\n\
be_app,s4,0,0,0,0,,0,0,0,,0,,0,0,0,0,DOWN,1,0,1,1,1,616,616,,1,3,4,,0,,2,0,,0,L4CON,,0,,,,,,,,,,,0,0,,,,,-1,Connection refused,,0,0,0,0,,,,Layer4 connection problem,,2,3,0,,,,127.0.0.1:18904,,tcp,,,,,,,,0,0,0,,,0,,0,0,0,0,0,0,0,0,1,1,,,,-,0,0,0,,,,,,,,,,,,,,,,,,,,,,\n\
be_app,s5,0,0,0,0,,0,0,0,,0,,0,0,0,0,MAINT,1,1,0,,,617,,,1,3,5,,0,,2,0,,0,,,,,,,,,,,,,,0,0,,,,,-1,,,0,0,0,0,,,,,,,,,,,,127.0.0.1:18905,,tcp,,,,,,,,0,0,0,,,0,,0,0,0,0,0,0,0,0,0,1,,,,-,0,0,0,,,,,,,,,,,,,,,,,,,,,,\n\
be_app,BACKEND,0,0,0,1,100,4,24,24,0,0,,0,0,0,0,UP,3,1,0,,0,617,0,,1,3,0,,4,,1,0,,4,,,,,,,,,,,,,,0,0,0,0,0,0,12,,,0,0,0,0,,,,,,,,,,,,,,tcp,roundrobin,,,,,,,0,4,0,,,,,0,0,0,0,0,,,,,3,0,0,0,-,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,\n\
li_db,FRONTEND,,,0,0,50,0,0,0,0,0,0,,,,,OPEN,,,,,,,,,1,4,0,,,,0,0,0,0,,,,,,,,,,,0,0,0,,,0,0,0,0,,,,,,,,,,,,,,,,,,,,,tcp,,0,0,0,,0,0,0,,,,,,,,,,,0,,,,,,,,,-,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,\n\
li_db,db1,0,0,0,0,20,0,0,0,,0,,0,0,0,0,UP,10,1,0,0,1,605,0,5,1,4,1,,0,,2,0,,0,L4OK,,0,,,,,,,,,,,0,0,,,,,-1,,,0,0,0,0,,,,Layer4 check passed,,2,3,4,,,,127.0.0.1:18901,,tcp,,,,,,,,0,0,0,,,0,,0,0,0,0,0,0,0,0,1,10,,,,-,0,0,0,,,,,,,,,,,,,,,,,,,,,,\n\
li_db,db2,0,0,0,0,,0,0,0,,0,,0,0,0,0,MAINT,1,1,0,1,3,1,7,,1,4,2,,0,,2,0,,0,,,,,,,,,,,,,,0,0,,,,,-1,,,0,0,0,0,,,,,,,,,,,,127.0.0.1:18909,,tcp,,,,,,,,0,0,0,,,0,,0,0,0,0,0,0,0,0,1,1,,,,-,0,0,0,,,,,,,,,,,,,,,,,,,,,,\n\
li_db,BACKEND,0,0,0,0,5,0,0,0,0,0,,0,0,0,0,UP,10,1,0,,1,605,0,,1,4,0,,0,,1,0,,0,,,,,,,,,,,,,,0,0,0,0,0,0,-1,,,0,0,0,0,,,,,,,,,,,,,,tcp,leastconn,,,,,,,0,0,0,,,,,0,0,0,0,0,,,,,10,0,0,0,-,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,\n\
stats,FRONTEND,,,0,1,1000,7,623,347729,0,0,0,,,,,OPEN,,,,,,,,,1,5,0,,,,0,0,0,4,,,,0,7,0,0,0,0,,0,4,7,,,0,0,0,0,,,,,,,,,,,,,,,,,,,,,http,,0,4,7,7,0,0,0,,,0,0,,,,,,,0,,,,,,,,,-,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,7,7,602,347967,0,0,\n\
be_l7,web1,0,0,0,0,,0,0,0,,0,,0,0,0,0,UP,1,1,0,0,0,617,0,,1,6,1,,0,,2,0,,0,L7OK,200,0,,,,,,,,,,,0,0,,,,,-1,,,0,0,0,0,,,,Layer7 check passed,,2,3,4,,,,127.0.0.1:18911,,tcp,,,,,,,,0,0,0,,,0,,0,0,0,0,0,0,0,0,1,1,,,,-,0,0,0,,,,,,,,,,,,,,,,,,,,,,\n\
be_l7,ag1,0,0,0,0,,0,0,0,,0,,0,0,0,0,DOWN,0,1,0,1,1,616,616,,1,6,2,,0,,2,0,,0,L7RSP,,2,,,,,,,,,,,0,0,,,,,-1,,via agent : up,0,0,0,0,L7OK,0,4,Layer7 invalid response,Layer7 check passed,2,3,0,1,1,1,127.0.0.1:18903,,tcp,,,,,,,,0,0,0,,,0,,0,0,0,0,0,0,0,0,1,0,,,,-,0,0,0,,,,,,,,,,,,,,,,,,,,,,\n\
be_l7,tr1,0,0,0,0,,0,0,0,,0,,0,0,0,0,UP,1,1,0,,,605,,,1,6,3,,0,be_app/s1,2,0,,0,,,,,,,,,,,,,,0,0,,,,,-1,,,0,0,0,0,,,,,,,,,,,,127.0.0.1:18903,,tcp,,,,,,,,0,0,0,,,0,,0,0,0,0,0,0,0,0,0,1,,,,-,0,0,0,,,,,,,,,,,,,,,,,,,,,,\n\
be_l7,BACKEND,0,0,0,0,1,0,0,0,0,0,,0,0,0,0,UP,2,2,0,,0,617,0,,1,6,0,,0,,1,0,,0,,,,,,,,,,,,,,0,0,0,0,0,0,-1,,,0,0,0,0,,,,,,,,,,,,,,tcp,roundrobin,,,,,,,0,0,0,,,,,0,0,0,0,0,,,,,2,0,0,0,-,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,1228,1228,68262,22104,0,0,\n\
";

/// `show stat typed` lines of fe_main, be_app/s1, li_db/db2, be_l7/ag1 and be_app's BACKEND, same
/// state.
const HAPROXY_TYPED: &str = "\
F.2.0.0.pxname.1:KNS:str:fe_main\n\
F.2.0.1.svname.1:KNS:str:FRONTEND\n\
F.2.0.4.scur.1:MGP:u32:0\n\
F.2.0.5.smax.1:MMP:u32:1\n\
F.2.0.6.slim.1:CLP:u32:1000\n\
F.2.0.7.stot.1:MCP:u64:4\n\
F.2.0.8.bin.1:MCP:u64:24\n\
F.2.0.9.bout.1:MCP:u64:24\n\
F.2.0.10.dreq.1:MCP:u64:0\n\
F.2.0.11.dresp.1:MCP:u64:0\n\
F.2.0.12.ereq.1:MCP:u64:0\n\
F.2.0.17.status.1:SGP:str:OPEN\n\
F.2.0.26.pid.1:KGP:u32:1\n\
F.2.0.27.iid.1:KGS:u32:2\n\
F.2.0.28.sid.1:KGS:u32:0\n\
F.2.0.32.type.1:CGS:u32:0\n\
F.2.0.33.rate.1:MRP:u32:0\n\
F.2.0.34.rate_lim.1:CLP:u32:0\n\
F.2.0.35.rate_max.1:MMP:u32:4\n\
F.2.0.46.req_rate.1:MRP:u32:0\n\
F.2.0.47.req_rate_max.1:MMP:u32:0\n\
F.2.0.48.req_tot.1:MCP:u64:0\n\
F.2.0.51.comp_in.1:MCP:u64:0\n\
F.2.0.52.comp_out.1:MCP:u64:0\n\
F.2.0.53.comp_byp.1:MCP:u64:0\n\
F.2.0.54.comp_rsp.1:MCP:u64:0\n\
F.2.0.75.mode.1:CGS:str:tcp\n\
F.2.0.77.conn_rate.1:MRP:u32:0\n\
F.2.0.78.conn_rate_max.1:MMP:u32:4\n\
F.2.0.79.conn_tot.1:MCP:u64:4\n\
F.2.0.81.dcon.1:MCP:u64:0\n\
F.2.0.82.dses.1:MCP:u64:0\n\
F.2.0.83.wrew.1:MCP:u64:0\n\
F.2.0.94.eint.1:MCP:u64:0\n\
F.2.0.103.ssl_sess.1:MCP:u64:0\n\
F.2.0.104.ssl_reused_sess.1:MCP:u64:0\n\
F.2.0.105.ssl_failed_handshake.1:MCP:u64:0\n\
F.2.0.106.h2_headers_rcvd.1:MCP:u64:0\n\
F.2.0.107.h2_data_rcvd.1:MCP:u64:0\n\
F.2.0.108.h2_settings_rcvd.1:MCP:u64:0\n\
F.2.0.109.h2_rst_stream_rcvd.1:MCP:u64:0\n\
F.2.0.110.h2_goaway_rcvd.1:MCP:u64:0\n\
F.2.0.111.h2_detected_conn_protocol_errors.1:MCP:u64:0\n\
F.2.0.112.h2_detected_strm_protocol_errors.1:MCP:u64:0\n\
F.2.0.113.h2_rst_stream_resp.1:MCP:u64:0\n\
F.2.0.114.h2_goaway_resp.1:MCP:u64:0\n\
F.2.0.115.h2_open_connections.1:MGP:u64:0\n\
F.2.0.116.h2_backend_open_streams.1:MGP:u64:0\n\
F.2.0.117.h2_total_connections.1:MCP:u64:0\n\
F.2.0.118.h2_backend_total_streams.1:MCP:u64:0\n\
F.2.0.119.h1_open_connections.1:MGP:u64:0\n\
F.2.0.120.h1_open_streams.1:MGP:u64:0\n\
F.2.0.121.h1_total_connections.1:MCP:u64:0\n\
F.2.0.122.h1_total_streams.1:MCP:u64:0\n\
F.2.0.123.h1_bytes_in.1:MCP:u64:0\n\
F.2.0.124.h1_bytes_out.1:MCP:u64:0\n\
F.2.0.125.h1_spliced_bytes_in.1:MCP:u64:0\n\
F.2.0.126.h1_spliced_bytes_out.1:MCP:u64:0\n\
S.3.1.0.pxname.1:KNS:str:be_app\n\
S.3.1.1.svname.1:KNS:str:s1\n\
S.3.1.2.qcur.1:MGP:u32:0\n\
S.3.1.3.qmax.1:MMP:u32:0\n\
S.3.1.4.scur.1:MGP:u32:0\n\
S.3.1.5.smax.1:MMP:u32:1\n\
S.3.1.7.stot.1:MCP:u64:3\n\
S.3.1.8.bin.1:MCP:u64:18\n\
S.3.1.9.bout.1:MCP:u64:18\n\
S.3.1.11.dresp.1:MCP:u64:0\n\
S.3.1.13.econ.1:MCP:u64:0\n\
S.3.1.14.eresp.1:MCP:u64:0\n\
S.3.1.15.wretr.1:MCP:u64:0\n\
S.3.1.16.wredis.1:MCP:u64:0\n\
S.3.1.17.status.1:SGP:str:UP\n\
S.3.1.18.weight.1:MaP:u32:3\n\
S.3.1.19.act.1:SGP:u32:1\n\
S.3.1.20.bck.1:SGP:u32:0\n\
S.3.1.21.chkfail.1:MCP:u64:0\n\
S.3.1.22.chkdown.1:MCP:u64:0\n\
S.3.1.23.lastchg.1:MAP:u32:605\n\
S.3.1.24.downtime.1:MCP:u32:0\n\
S.3.1.26.pid.1:KGP:u32:1\n\
S.3.1.27.iid.1:KGS:u32:3\n\
S.3.1.28.sid.1:KGS:u32:1\n\
S.3.1.30.lbtot.1:MCP:u64:3\n\
S.3.1.32.type.1:CGS:u32:2\n\
S.3.1.33.rate.1:MRP:u32:0\n\
S.3.1.35.rate_max.1:MMP:u32:3\n\
S.3.1.36.check_status.1:MOP:str:L4OK\n\
S.3.1.38.check_duration.1:MDP:u64:0\n\
S.3.1.49.cli_abrt.1:MCP:u64:0\n\
S.3.1.50.srv_abrt.1:MCP:u64:0\n\
S.3.1.55.lastsess.1:MAP:s32:12\n\
S.3.1.56.last_chk.1:MOP:str:\n\
S.3.1.58.qtime.1:MaP:u32:0\n\
S.3.1.59.ctime.1:MaP:u32:0\n\
S.3.1.60.rtime.1:MaP:u32:0\n\
S.3.1.61.ttime.1:MaP:u32:0\n\
S.3.1.65.check_desc.1:MOP:str:Layer4 check passed\n\
S.3.1.67.check_rise.1:CGS:u32:2\n\
S.3.1.68.check_fall.1:CGS:u32:3\n\
S.3.1.69.check_health.1:CGS:u32:4\n\
S.3.1.73.addr.1:CGS:str:127.0.0.1:18901\n\
S.3.1.75.mode.1:CGS:str:tcp\n\
S.3.1.83.wrew.1:MCP:u64:0\n\
S.3.1.84.connect.1:MCP:u64:3\n\
S.3.1.85.reuse.1:MCP:u64:0\n\
S.3.1.88.srv_icur.1:MGP:u32:0\n\
S.3.1.90.qtime_max.1:MMP:u32:0\n\
S.3.1.91.ctime_max.1:MMP:u32:0\n\
S.3.1.92.rtime_max.1:MMP:u32:0\n\
S.3.1.93.ttime_max.1:MMP:u32:0\n\
S.3.1.94.eint.1:MCP:u64:0\n\
S.3.1.95.idle_conn_cur.1:MGP:u32:0\n\
S.3.1.96.safe_conn_cur.1:MGP:u32:0\n\
S.3.1.97.used_conn_cur.1:MGP:u32:0\n\
S.3.1.98.need_conn_est.1:MGP:u32:1\n\
S.3.1.99.uweight.1:MaP:u32:3\n\
S.3.1.103.ssl_sess.1:MCP:u64:0\n\
S.3.1.104.ssl_reused_sess.1:MCP:u64:0\n\
S.3.1.105.ssl_failed_handshake.1:MCP:u64:0\n\
B.3.0.0.pxname.1:KNS:str:be_app\n\
B.3.0.1.svname.1:KNS:str:BACKEND\n\
B.3.0.2.qcur.1:MGP:u32:0\n\
B.3.0.3.qmax.1:MMP:u32:0\n\
B.3.0.4.scur.1:MGP:u32:0\n\
B.3.0.5.smax.1:MMP:u32:1\n\
B.3.0.6.slim.1:CLP:u32:100\n\
B.3.0.7.stot.1:MCP:u64:4\n\
B.3.0.8.bin.1:MCP:u64:24\n\
B.3.0.9.bout.1:MCP:u64:24\n\
B.3.0.10.dreq.1:MCP:u64:0\n\
B.3.0.11.dresp.1:MCP:u64:0\n\
B.3.0.13.econ.1:MCP:u64:0\n\
B.3.0.14.eresp.1:MCP:u64:0\n\
B.3.0.15.wretr.1:MCP:u64:0\n\
B.3.0.16.wredis.1:MCP:u64:0\n\
B.3.0.17.status.1:SGP:str:UP\n\
B.3.0.18.weight.1:MaP:u32:3\n\
B.3.0.19.act.1:MGP:u32:1\n\
B.3.0.20.bck.1:MGP:u32:0\n\
B.3.0.22.chkdown.1:MCP:u64:0\n\
B.3.0.23.lastchg.1:MAP:u32:617\n\
B.3.0.24.downtime.1:MCP:u32:0\n\
B.3.0.26.pid.1:KGP:u32:1\n\
B.3.0.27.iid.1:KGS:u32:3\n\
B.3.0.28.sid.1:KGS:u32:0\n\
B.3.0.30.lbtot.1:MCP:u64:4\n\
B.3.0.32.type.1:CGS:u32:1\n\
B.3.0.33.rate.1:MGP:u32:0\n\
B.3.0.35.rate_max.1:MGP:u32:4\n\
B.3.0.49.cli_abrt.1:MCP:u64:0\n\
B.3.0.50.srv_abrt.1:MCP:u64:0\n\
B.3.0.51.comp_in.1:MCP:u64:0\n\
B.3.0.52.comp_out.1:MCP:u64:0\n\
B.3.0.53.comp_byp.1:MCP:u64:0\n\
B.3.0.54.comp_rsp.1:MCP:u64:0\n\
B.3.0.55.lastsess.1:MAP:s32:12\n\
B.3.0.58.qtime.1:MaP:u32:0\n\
B.3.0.59.ctime.1:MaP:u32:0\n\
B.3.0.60.rtime.1:MaP:u32:0\n\
B.3.0.61.ttime.1:MaP:u32:0\n\
B.3.0.75.mode.1:CGS:str:tcp\n\
B.3.0.76.algo.1:CGS:str:roundrobin\n\
B.3.0.83.wrew.1:MCP:u64:0\n\
B.3.0.84.connect.1:MCP:u64:4\n\
B.3.0.85.reuse.1:MCP:u64:0\n\
B.3.0.90.qtime_max.1:MMP:u32:0\n\
B.3.0.91.ctime_max.1:MMP:u32:0\n\
B.3.0.92.rtime_max.1:MMP:u32:0\n\
B.3.0.93.ttime_max.1:MMP:u32:0\n\
B.3.0.94.eint.1:MCP:u64:0\n\
B.3.0.99.uweight.1:MaP:u32:3\n\
B.3.0.100.agg_server_status.1:MGP:u32:0\n\
B.3.0.101.agg_server_check_status.1:MGP:u32:0\n\
B.3.0.102.agg_check_status.1:MGP:u32:0\n\
B.3.0.103.ssl_sess.1:MCP:u64:0\n\
B.3.0.104.ssl_reused_sess.1:MCP:u64:0\n\
B.3.0.105.ssl_failed_handshake.1:MCP:u64:0\n\
B.3.0.106.h2_headers_rcvd.1:MCP:u64:0\n\
B.3.0.107.h2_data_rcvd.1:MCP:u64:0\n\
B.3.0.108.h2_settings_rcvd.1:MCP:u64:0\n\
B.3.0.109.h2_rst_stream_rcvd.1:MCP:u64:0\n\
B.3.0.110.h2_goaway_rcvd.1:MCP:u64:0\n\
B.3.0.111.h2_detected_conn_protocol_errors.1:MCP:u64:0\n\
B.3.0.112.h2_detected_strm_protocol_errors.1:MCP:u64:0\n\
B.3.0.113.h2_rst_stream_resp.1:MCP:u64:0\n\
B.3.0.114.h2_goaway_resp.1:MCP:u64:0\n\
B.3.0.115.h2_open_connections.1:MGP:u64:0\n\
B.3.0.116.h2_backend_open_streams.1:MGP:u64:0\n\
B.3.0.117.h2_total_connections.1:MCP:u64:0\n\
B.3.0.118.h2_backend_total_streams.1:MCP:u64:0\n\
B.3.0.119.h1_open_connections.1:MGP:u64:0\n\
B.3.0.120.h1_open_streams.1:MGP:u64:0\n\
B.3.0.121.h1_total_connections.1:MCP:u64:0\n\
B.3.0.122.h1_total_streams.1:MCP:u64:0\n\
B.3.0.123.h1_bytes_in.1:MCP:u64:0\n\
B.3.0.124.h1_bytes_out.1:MCP:u64:0\n\
B.3.0.125.h1_spliced_bytes_in.1:MCP:u64:0\n\
B.3.0.126.h1_spliced_bytes_out.1:MCP:u64:0\n\
S.4.2.0.pxname.1:KNS:str:li_db\n\
S.4.2.1.svname.1:KNS:str:db2\n\
S.4.2.2.qcur.1:MGP:u32:0\n\
S.4.2.3.qmax.1:MMP:u32:0\n\
S.4.2.4.scur.1:MGP:u32:0\n\
S.4.2.5.smax.1:MMP:u32:0\n\
S.4.2.7.stot.1:MCP:u64:0\n\
S.4.2.8.bin.1:MCP:u64:0\n\
S.4.2.9.bout.1:MCP:u64:0\n\
S.4.2.11.dresp.1:MCP:u64:0\n\
S.4.2.13.econ.1:MCP:u64:0\n\
S.4.2.14.eresp.1:MCP:u64:0\n\
S.4.2.15.wretr.1:MCP:u64:0\n\
S.4.2.16.wredis.1:MCP:u64:0\n\
S.4.2.17.status.1:SGP:str:MAINT\n\
S.4.2.18.weight.1:MaP:u32:1\n\
S.4.2.19.act.1:SGP:u32:1\n\
S.4.2.20.bck.1:SGP:u32:0\n\
S.4.2.21.chkfail.1:MCP:u64:1\n\
S.4.2.22.chkdown.1:MCP:u64:3\n\
S.4.2.23.lastchg.1:MAP:u32:1\n\
S.4.2.24.downtime.1:MCP:u32:7\n\
S.4.2.26.pid.1:KGP:u32:1\n\
S.4.2.27.iid.1:KGS:u32:4\n\
S.4.2.28.sid.1:KGS:u32:2\n\
S.4.2.30.lbtot.1:MCP:u64:0\n\
S.4.2.32.type.1:CGS:u32:2\n\
S.4.2.33.rate.1:MRP:u32:0\n\
S.4.2.35.rate_max.1:MMP:u32:0\n\
S.4.2.49.cli_abrt.1:MCP:u64:0\n\
S.4.2.50.srv_abrt.1:MCP:u64:0\n\
S.4.2.55.lastsess.1:MAP:s32:-1\n\
S.4.2.58.qtime.1:MaP:u32:0\n\
S.4.2.59.ctime.1:MaP:u32:0\n\
S.4.2.60.rtime.1:MaP:u32:0\n\
S.4.2.61.ttime.1:MaP:u32:0\n\
S.4.2.73.addr.1:CGS:str:127.0.0.1:18909\n\
S.4.2.75.mode.1:CGS:str:tcp\n\
S.4.2.83.wrew.1:MCP:u64:0\n\
S.4.2.84.connect.1:MCP:u64:0\n\
S.4.2.85.reuse.1:MCP:u64:0\n\
S.4.2.88.srv_icur.1:MGP:u32:0\n\
S.4.2.90.qtime_max.1:MMP:u32:0\n\
S.4.2.91.ctime_max.1:MMP:u32:0\n\
S.4.2.92.rtime_max.1:MMP:u32:0\n\
S.4.2.93.ttime_max.1:MMP:u32:0\n\
S.4.2.94.eint.1:MCP:u64:0\n\
S.4.2.95.idle_conn_cur.1:MGP:u32:0\n\
S.4.2.96.safe_conn_cur.1:MGP:u32:0\n\
S.4.2.97.used_conn_cur.1:MGP:u32:0\n\
S.4.2.98.need_conn_est.1:MGP:u32:1\n\
S.4.2.99.uweight.1:MaP:u32:1\n\
S.4.2.103.ssl_sess.1:MCP:u64:0\n\
S.4.2.104.ssl_reused_sess.1:MCP:u64:0\n\
S.4.2.105.ssl_failed_handshake.1:MCP:u64:0\n\
S.6.2.0.pxname.1:KNS:str:be_l7\n\
S.6.2.1.svname.1:KNS:str:ag1\n\
S.6.2.2.qcur.1:MGP:u32:0\n\
S.6.2.3.qmax.1:MMP:u32:0\n\
S.6.2.4.scur.1:MGP:u32:0\n\
S.6.2.5.smax.1:MMP:u32:0\n\
S.6.2.7.stot.1:MCP:u64:0\n\
S.6.2.8.bin.1:MCP:u64:0\n\
S.6.2.9.bout.1:MCP:u64:0\n\
S.6.2.11.dresp.1:MCP:u64:0\n\
S.6.2.13.econ.1:MCP:u64:0\n\
S.6.2.14.eresp.1:MCP:u64:0\n\
S.6.2.15.wretr.1:MCP:u64:0\n\
S.6.2.16.wredis.1:MCP:u64:0\n\
S.6.2.17.status.1:SGP:str:DOWN\n\
S.6.2.18.weight.1:MaP:u32:0\n\
S.6.2.19.act.1:SGP:u32:1\n\
S.6.2.20.bck.1:SGP:u32:0\n\
S.6.2.21.chkfail.1:MCP:u64:1\n\
S.6.2.22.chkdown.1:MCP:u64:1\n\
S.6.2.23.lastchg.1:MAP:u32:616\n\
S.6.2.24.downtime.1:MCP:u32:616\n\
S.6.2.26.pid.1:KGP:u32:1\n\
S.6.2.27.iid.1:KGS:u32:6\n\
S.6.2.28.sid.1:KGS:u32:2\n\
S.6.2.30.lbtot.1:MCP:u64:0\n\
S.6.2.32.type.1:CGS:u32:2\n\
S.6.2.33.rate.1:MRP:u32:0\n\
S.6.2.35.rate_max.1:MMP:u32:0\n\
S.6.2.36.check_status.1:MOP:str:L7RSP\n\
S.6.2.38.check_duration.1:MDP:u64:2\n\
S.6.2.49.cli_abrt.1:MCP:u64:0\n\
S.6.2.50.srv_abrt.1:MCP:u64:0\n\
S.6.2.55.lastsess.1:MAP:s32:-1\n\
S.6.2.56.last_chk.1:MOP:str:\n\
S.6.2.57.last_agt.1:MOP:str:via agent : up\n\
S.6.2.58.qtime.1:MaP:u32:0\n\
S.6.2.59.ctime.1:MaP:u32:0\n\
S.6.2.60.rtime.1:MaP:u32:0\n\
S.6.2.61.ttime.1:MaP:u32:0\n\
S.6.2.62.agent_status.1:MOP:str:L7OK\n\
S.6.2.63.agent_code.1:MOP:u32:0\n\
S.6.2.64.agent_duration.1:MDP:u64:4\n\
S.6.2.65.check_desc.1:MOP:str:Layer7 invalid response\n\
S.6.2.66.agent_desc.1:MOP:str:Layer7 check passed\n\
S.6.2.67.check_rise.1:CGS:u32:2\n\
S.6.2.68.check_fall.1:CGS:u32:3\n\
S.6.2.69.check_health.1:CGS:u32:0\n\
S.6.2.70.agent_rise.1:CGS:u32:1\n\
S.6.2.71.agent_fall.1:CGS:u32:1\n\
S.6.2.72.agent_health.1:CGS:u32:1\n\
S.6.2.73.addr.1:CGS:str:127.0.0.1:18903\n\
S.6.2.75.mode.1:CGS:str:tcp\n\
S.6.2.83.wrew.1:MCP:u64:0\n\
S.6.2.84.connect.1:MCP:u64:0\n\
S.6.2.85.reuse.1:MCP:u64:0\n\
S.6.2.88.srv_icur.1:MGP:u32:0\n\
S.6.2.90.qtime_max.1:MMP:u32:0\n\
S.6.2.91.ctime_max.1:MMP:u32:0\n\
S.6.2.92.rtime_max.1:MMP:u32:0\n\
S.6.2.93.ttime_max.1:MMP:u32:0\n\
S.6.2.94.eint.1:MCP:u64:0\n\
S.6.2.95.idle_conn_cur.1:MGP:u32:0\n\
S.6.2.96.safe_conn_cur.1:MGP:u32:0\n\
S.6.2.97.used_conn_cur.1:MGP:u32:0\n\
S.6.2.98.need_conn_est.1:MGP:u32:1\n\
S.6.2.99.uweight.1:MaP:u32:0\n\
S.6.2.103.ssl_sess.1:MCP:u64:0\n\
S.6.2.104.ssl_reused_sess.1:MCP:u64:0\n\
S.6.2.105.ssl_failed_handshake.1:MCP:u64:0\n";

/// `show servers state`, same state.
const HAPROXY_SERVERS_STATE: &str = "\
1\n\
# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port\n\
3 be_app 1 s1 127.0.0.1 2 0 3 1 605 6 3 4 6 0 0 0 - 18901 - 0 0 - - 0\n\
3 be_app 2 s2 127.0.0.1 0 0 1 1 616 8 2 0 6 0 0 0 - 18902 - 0 0 - - 0\n\
3 be_app 3 s3 127.0.0.1 2 8 1 1 1 1 0 2 0 0 0 0 - 18903 - 0 0 - - 0\n\
3 be_app 4 s4 127.0.0.1 0 0 1 1 616 8 2 0 6 0 0 0 - 18904 - 0 0 - - 0\n\
3 be_app 5 s5 127.0.0.1 0 5 1 1 617 1 0 0 8 0 0 0 - 18905 - 0 0 - - 0\n\
4 li_db 1 db1 127.0.0.1 2 0 10 10 605 6 3 4 6 0 0 0 - 18901 - 0 0 - - 0\n\
4 li_db 2 db2 127.0.0.1 0 1 1 1 1 6 3 0 14 0 0 0 - 18909 - 0 0 - - 0\n\
6 be_l7 1 web1 127.0.0.1 2 0 1 1 617 15 3 4 6 0 0 0 - 18911 - 0 0 - - 0\n\
6 be_l7 2 ag1 127.0.0.1 0 0 0 1 616 13 2 0 6 22 0 0 - 18903 - 0 0 - - 18910\n\
6 be_l7 3 tr1 127.0.0.1 2 0 1 1 605 1 0 2 0 0 0 0 - 18903 - 0 0 - - 0\n\
";

/// Every `# TYPE` line of HAProxy's exporter for that configuration (metric name, type).
const HAPROXY_METRIC_TYPES: &str = "\
haproxy_process_nbthread gauge\n\
haproxy_process_nbproc gauge\n\
haproxy_process_relative_process_id gauge\n\
haproxy_process_uptime_seconds gauge\n\
haproxy_process_pool_failures_total counter\n\
haproxy_process_max_fds gauge\n\
haproxy_process_max_sockets gauge\n\
haproxy_process_max_connections gauge\n\
haproxy_process_hard_max_connections gauge\n\
haproxy_process_current_connections gauge\n\
haproxy_process_connections_total counter\n\
haproxy_process_requests_total counter\n\
haproxy_process_max_ssl_connections gauge\n\
haproxy_process_current_ssl_connections gauge\n\
haproxy_process_ssl_connections_total counter\n\
haproxy_process_max_pipes gauge\n\
haproxy_process_pipes_used_total counter\n\
haproxy_process_pipes_free_total counter\n\
haproxy_process_current_connection_rate gauge\n\
haproxy_process_limit_connection_rate gauge\n\
haproxy_process_max_connection_rate gauge\n\
haproxy_process_current_session_rate gauge\n\
haproxy_process_limit_session_rate gauge\n\
haproxy_process_max_session_rate gauge\n\
haproxy_process_current_ssl_rate gauge\n\
haproxy_process_limit_ssl_rate gauge\n\
haproxy_process_max_ssl_rate gauge\n\
haproxy_process_current_frontend_ssl_key_rate gauge\n\
haproxy_process_max_frontend_ssl_key_rate gauge\n\
haproxy_process_frontend_ssl_reuse gauge\n\
haproxy_process_current_backend_ssl_key_rate gauge\n\
haproxy_process_max_backend_ssl_key_rate gauge\n\
haproxy_process_ssl_cache_lookups_total counter\n\
haproxy_process_ssl_cache_misses_total counter\n\
haproxy_process_http_comp_bytes_in_total counter\n\
haproxy_process_http_comp_bytes_out_total counter\n\
haproxy_process_limit_http_comp gauge\n\
haproxy_process_current_zlib_memory gauge\n\
haproxy_process_max_zlib_memory gauge\n\
haproxy_process_current_tasks gauge\n\
haproxy_process_current_run_queue gauge\n\
haproxy_process_idle_time_percent gauge\n\
haproxy_process_stopping gauge\n\
haproxy_process_jobs gauge\n\
haproxy_process_unstoppable_jobs gauge\n\
haproxy_process_listeners gauge\n\
haproxy_process_active_peers gauge\n\
haproxy_process_connected_peers gauge\n\
haproxy_process_dropped_logs_total counter\n\
haproxy_process_busy_polling_enabled gauge\n\
haproxy_process_failed_resolutions counter\n\
haproxy_process_bytes_out_total counter\n\
haproxy_process_spliced_bytes_out_total counter\n\
haproxy_process_bytes_out_rate gauge\n\
haproxy_process_recv_logs_total counter\n\
haproxy_process_build_info gauge\n\
haproxy_process_max_memory_bytes gauge\n\
haproxy_process_pool_allocated_bytes gauge\n\
haproxy_process_pool_used_bytes gauge\n\
haproxy_process_start_time_seconds gauge\n\
haproxy_frontend_current_sessions gauge\n\
haproxy_frontend_max_sessions gauge\n\
haproxy_frontend_limit_sessions gauge\n\
haproxy_frontend_sessions_total counter\n\
haproxy_frontend_bytes_in_total counter\n\
haproxy_frontend_bytes_out_total counter\n\
haproxy_frontend_requests_denied_total counter\n\
haproxy_frontend_responses_denied_total counter\n\
haproxy_frontend_request_errors_total counter\n\
haproxy_frontend_status gauge\n\
haproxy_frontend_limit_session_rate gauge\n\
haproxy_frontend_max_session_rate gauge\n\
haproxy_frontend_http_responses_total counter\n\
haproxy_frontend_http_requests_rate_max gauge\n\
haproxy_frontend_http_requests_total counter\n\
haproxy_frontend_http_comp_bytes_in_total counter\n\
haproxy_frontend_http_comp_bytes_out_total counter\n\
haproxy_frontend_http_comp_bytes_bypassed_total counter\n\
haproxy_frontend_http_comp_responses_total counter\n\
haproxy_frontend_connections_rate_max gauge\n\
haproxy_frontend_connections_total counter\n\
haproxy_frontend_intercepted_requests_total counter\n\
haproxy_frontend_denied_connections_total counter\n\
haproxy_frontend_denied_sessions_total counter\n\
haproxy_frontend_failed_header_rewriting_total counter\n\
haproxy_frontend_http_cache_lookups_total counter\n\
haproxy_frontend_http_cache_hits_total counter\n\
haproxy_frontend_internal_errors_total counter\n\
haproxy_backend_current_queue gauge\n\
haproxy_backend_max_queue gauge\n\
haproxy_backend_current_sessions gauge\n\
haproxy_backend_max_sessions gauge\n\
haproxy_backend_limit_sessions gauge\n\
haproxy_backend_sessions_total counter\n\
haproxy_backend_bytes_in_total counter\n\
haproxy_backend_bytes_out_total counter\n\
haproxy_backend_requests_denied_total counter\n\
haproxy_backend_responses_denied_total counter\n\
haproxy_backend_connection_errors_total counter\n\
haproxy_backend_response_errors_total counter\n\
haproxy_backend_retry_warnings_total counter\n\
haproxy_backend_redispatch_warnings_total counter\n\
haproxy_backend_status gauge\n\
haproxy_backend_weight gauge\n\
haproxy_backend_active_servers gauge\n\
haproxy_backend_backup_servers gauge\n\
haproxy_backend_check_up_down_total counter\n\
haproxy_backend_check_last_change_seconds gauge\n\
haproxy_backend_downtime_seconds_total counter\n\
haproxy_backend_loadbalanced_total counter\n\
haproxy_backend_max_session_rate gauge\n\
haproxy_backend_client_aborts_total counter\n\
haproxy_backend_server_aborts_total counter\n\
haproxy_backend_last_session_seconds gauge\n\
haproxy_backend_queue_time_average_seconds gauge\n\
haproxy_backend_connect_time_average_seconds gauge\n\
haproxy_backend_response_time_average_seconds gauge\n\
haproxy_backend_total_time_average_seconds gauge\n\
haproxy_backend_failed_header_rewriting_total counter\n\
haproxy_backend_connection_attempts_total counter\n\
haproxy_backend_connection_reuses_total counter\n\
haproxy_backend_max_queue_time_seconds gauge\n\
haproxy_backend_max_connect_time_seconds gauge\n\
haproxy_backend_max_response_time_seconds gauge\n\
haproxy_backend_max_total_time_seconds gauge\n\
haproxy_backend_internal_errors_total counter\n\
haproxy_backend_uweight gauge\n\
haproxy_backend_agg_server_status gauge\n\
haproxy_backend_agg_server_check_status gauge\n\
haproxy_backend_agg_check_status gauge\n\
haproxy_server_current_queue gauge\n\
haproxy_server_max_queue gauge\n\
haproxy_server_current_sessions gauge\n\
haproxy_server_max_sessions gauge\n\
haproxy_server_limit_sessions gauge\n\
haproxy_server_sessions_total counter\n\
haproxy_server_bytes_in_total counter\n\
haproxy_server_bytes_out_total counter\n\
haproxy_server_responses_denied_total counter\n\
haproxy_server_connection_errors_total counter\n\
haproxy_server_response_errors_total counter\n\
haproxy_server_retry_warnings_total counter\n\
haproxy_server_redispatch_warnings_total counter\n\
haproxy_server_status gauge\n\
haproxy_server_weight gauge\n\
haproxy_server_check_failures_total counter\n\
haproxy_server_check_up_down_total counter\n\
haproxy_server_check_last_change_seconds gauge\n\
haproxy_server_downtime_seconds_total counter\n\
haproxy_server_queue_limit gauge\n\
haproxy_server_current_throttle gauge\n\
haproxy_server_loadbalanced_total counter\n\
haproxy_server_max_session_rate gauge\n\
haproxy_server_check_status gauge\n\
haproxy_server_check_code gauge\n\
haproxy_server_check_duration_seconds gauge\n\
haproxy_server_client_aborts_total counter\n\
haproxy_server_server_aborts_total counter\n\
haproxy_server_last_session_seconds gauge\n\
haproxy_server_queue_time_average_seconds gauge\n\
haproxy_server_connect_time_average_seconds gauge\n\
haproxy_server_response_time_average_seconds gauge\n\
haproxy_server_total_time_average_seconds gauge\n\
haproxy_server_failed_header_rewriting_total counter\n\
haproxy_server_connection_attempts_total counter\n\
haproxy_server_connection_reuses_total counter\n\
haproxy_server_idle_connections_current gauge\n\
haproxy_server_idle_connections_limit gauge\n\
haproxy_server_max_queue_time_seconds gauge\n\
haproxy_server_max_connect_time_seconds gauge\n\
haproxy_server_max_response_time_seconds gauge\n\
haproxy_server_max_total_time_seconds gauge\n\
haproxy_server_internal_errors_total counter\n\
haproxy_server_unsafe_idle_connections_current gauge\n\
haproxy_server_safe_idle_connections_current gauge\n\
haproxy_server_used_connections_current gauge\n\
haproxy_server_need_connections_current gauge\n\
haproxy_server_uweight gauge\n\
";

/// HAProxy's exporter samples for fe_main, be_app and li_db (the metrics sluice exports; the
/// zeros of check_status are kept for s1 only), same state.
const HAPROXY_METRICS: &str = "\
haproxy_frontend_current_sessions{proxy=\"fe_main\"} 0\n\
haproxy_frontend_current_sessions{proxy=\"li_db\"} 0\n\
haproxy_frontend_max_sessions{proxy=\"fe_main\"} 1\n\
haproxy_frontend_max_sessions{proxy=\"li_db\"} 0\n\
haproxy_frontend_limit_sessions{proxy=\"fe_main\"} 1000\n\
haproxy_frontend_limit_sessions{proxy=\"li_db\"} 50\n\
haproxy_frontend_sessions_total{proxy=\"fe_main\"} 4\n\
haproxy_frontend_sessions_total{proxy=\"li_db\"} 0\n\
haproxy_frontend_bytes_in_total{proxy=\"fe_main\"} 24\n\
haproxy_frontend_bytes_in_total{proxy=\"li_db\"} 0\n\
haproxy_frontend_bytes_out_total{proxy=\"fe_main\"} 24\n\
haproxy_frontend_bytes_out_total{proxy=\"li_db\"} 0\n\
haproxy_frontend_requests_denied_total{proxy=\"fe_main\"} 0\n\
haproxy_frontend_requests_denied_total{proxy=\"li_db\"} 0\n\
haproxy_frontend_responses_denied_total{proxy=\"fe_main\"} 0\n\
haproxy_frontend_responses_denied_total{proxy=\"li_db\"} 0\n\
haproxy_frontend_request_errors_total{proxy=\"fe_main\"} 0\n\
haproxy_frontend_request_errors_total{proxy=\"li_db\"} 0\n\
haproxy_frontend_status{proxy=\"fe_main\",state=\"DOWN\"} 0\n\
haproxy_frontend_status{proxy=\"fe_main\",state=\"UP\"} 1\n\
haproxy_frontend_status{proxy=\"li_db\",state=\"DOWN\"} 0\n\
haproxy_frontend_status{proxy=\"li_db\",state=\"UP\"} 1\n\
haproxy_frontend_limit_session_rate{proxy=\"fe_main\"} 0\n\
haproxy_frontend_limit_session_rate{proxy=\"li_db\"} 0\n\
haproxy_frontend_max_session_rate{proxy=\"fe_main\"} 4\n\
haproxy_frontend_max_session_rate{proxy=\"li_db\"} 0\n\
haproxy_frontend_connections_rate_max{proxy=\"fe_main\"} 4\n\
haproxy_frontend_connections_rate_max{proxy=\"li_db\"} 0\n\
haproxy_frontend_connections_total{proxy=\"fe_main\"} 4\n\
haproxy_frontend_connections_total{proxy=\"li_db\"} 0\n\
haproxy_frontend_denied_connections_total{proxy=\"fe_main\"} 0\n\
haproxy_frontend_denied_connections_total{proxy=\"li_db\"} 0\n\
haproxy_frontend_denied_sessions_total{proxy=\"fe_main\"} 0\n\
haproxy_frontend_denied_sessions_total{proxy=\"li_db\"} 0\n\
haproxy_frontend_failed_header_rewriting_total{proxy=\"fe_main\"} 0\n\
haproxy_frontend_failed_header_rewriting_total{proxy=\"li_db\"} 0\n\
haproxy_frontend_internal_errors_total{proxy=\"fe_main\"} 0\n\
haproxy_frontend_internal_errors_total{proxy=\"li_db\"} 0\n\
haproxy_backend_current_queue{proxy=\"be_app\"} 0\n\
haproxy_backend_current_queue{proxy=\"li_db\"} 0\n\
haproxy_backend_max_queue{proxy=\"be_app\"} 0\n\
haproxy_backend_max_queue{proxy=\"li_db\"} 0\n\
haproxy_backend_current_sessions{proxy=\"be_app\"} 0\n\
haproxy_backend_current_sessions{proxy=\"li_db\"} 0\n\
haproxy_backend_max_sessions{proxy=\"be_app\"} 1\n\
haproxy_backend_max_sessions{proxy=\"li_db\"} 0\n\
haproxy_backend_limit_sessions{proxy=\"be_app\"} 100\n\
haproxy_backend_limit_sessions{proxy=\"li_db\"} 5\n\
haproxy_backend_sessions_total{proxy=\"be_app\"} 4\n\
haproxy_backend_sessions_total{proxy=\"li_db\"} 0\n\
haproxy_backend_bytes_in_total{proxy=\"be_app\"} 24\n\
haproxy_backend_bytes_in_total{proxy=\"li_db\"} 0\n\
haproxy_backend_bytes_out_total{proxy=\"be_app\"} 24\n\
haproxy_backend_bytes_out_total{proxy=\"li_db\"} 0\n\
haproxy_backend_requests_denied_total{proxy=\"be_app\"} 0\n\
haproxy_backend_requests_denied_total{proxy=\"li_db\"} 0\n\
haproxy_backend_responses_denied_total{proxy=\"be_app\"} 0\n\
haproxy_backend_responses_denied_total{proxy=\"li_db\"} 0\n\
haproxy_backend_connection_errors_total{proxy=\"be_app\"} 0\n\
haproxy_backend_connection_errors_total{proxy=\"li_db\"} 0\n\
haproxy_backend_response_errors_total{proxy=\"be_app\"} 0\n\
haproxy_backend_response_errors_total{proxy=\"li_db\"} 0\n\
haproxy_backend_retry_warnings_total{proxy=\"be_app\"} 0\n\
haproxy_backend_retry_warnings_total{proxy=\"li_db\"} 0\n\
haproxy_backend_redispatch_warnings_total{proxy=\"be_app\"} 0\n\
haproxy_backend_redispatch_warnings_total{proxy=\"li_db\"} 0\n\
haproxy_backend_status{proxy=\"be_app\",state=\"DOWN\"} 0\n\
haproxy_backend_status{proxy=\"be_app\",state=\"UP\"} 1\n\
haproxy_backend_status{proxy=\"li_db\",state=\"DOWN\"} 0\n\
haproxy_backend_status{proxy=\"li_db\",state=\"UP\"} 1\n\
haproxy_backend_weight{proxy=\"be_app\"} 3\n\
haproxy_backend_weight{proxy=\"li_db\"} 10\n\
haproxy_backend_active_servers{proxy=\"be_app\"} 1\n\
haproxy_backend_active_servers{proxy=\"li_db\"} 1\n\
haproxy_backend_backup_servers{proxy=\"be_app\"} 0\n\
haproxy_backend_backup_servers{proxy=\"li_db\"} 0\n\
haproxy_backend_check_up_down_total{proxy=\"be_app\"} 0\n\
haproxy_backend_check_up_down_total{proxy=\"li_db\"} 1\n\
haproxy_backend_check_last_change_seconds{proxy=\"be_app\"} 617\n\
haproxy_backend_check_last_change_seconds{proxy=\"li_db\"} 605\n\
haproxy_backend_downtime_seconds_total{proxy=\"be_app\"} 0\n\
haproxy_backend_downtime_seconds_total{proxy=\"li_db\"} 0\n\
haproxy_backend_loadbalanced_total{proxy=\"be_app\"} 4\n\
haproxy_backend_loadbalanced_total{proxy=\"li_db\"} 0\n\
haproxy_backend_max_session_rate{proxy=\"be_app\"} 4\n\
haproxy_backend_max_session_rate{proxy=\"li_db\"} 0\n\
haproxy_backend_client_aborts_total{proxy=\"be_app\"} 0\n\
haproxy_backend_client_aborts_total{proxy=\"li_db\"} 0\n\
haproxy_backend_server_aborts_total{proxy=\"be_app\"} 0\n\
haproxy_backend_server_aborts_total{proxy=\"li_db\"} 0\n\
haproxy_backend_last_session_seconds{proxy=\"be_app\"} 12\n\
haproxy_backend_last_session_seconds{proxy=\"li_db\"} -1\n\
haproxy_backend_connect_time_average_seconds{proxy=\"be_app\"} 0.000000\n\
haproxy_backend_connect_time_average_seconds{proxy=\"li_db\"} 0.000000\n\
haproxy_backend_response_time_average_seconds{proxy=\"be_app\"} 0.000000\n\
haproxy_backend_response_time_average_seconds{proxy=\"li_db\"} 0.000000\n\
haproxy_backend_total_time_average_seconds{proxy=\"be_app\"} 0.000000\n\
haproxy_backend_total_time_average_seconds{proxy=\"li_db\"} 0.000000\n\
haproxy_backend_failed_header_rewriting_total{proxy=\"be_app\"} 0\n\
haproxy_backend_failed_header_rewriting_total{proxy=\"li_db\"} 0\n\
haproxy_backend_connection_reuses_total{proxy=\"be_app\"} 0\n\
haproxy_backend_connection_reuses_total{proxy=\"li_db\"} 0\n\
haproxy_backend_internal_errors_total{proxy=\"be_app\"} 0\n\
haproxy_backend_internal_errors_total{proxy=\"li_db\"} 0\n\
haproxy_backend_uweight{proxy=\"be_app\"} 3\n\
haproxy_backend_uweight{proxy=\"li_db\"} 10\n\
haproxy_backend_agg_server_status{proxy=\"be_app\",state=\"DOWN\"} 2\n\
haproxy_backend_agg_server_status{proxy=\"be_app\",state=\"UP\"} 1\n\
haproxy_backend_agg_server_status{proxy=\"be_app\",state=\"MAINT\"} 1\n\
haproxy_backend_agg_server_status{proxy=\"be_app\",state=\"DRAIN\"} 1\n\
haproxy_backend_agg_server_status{proxy=\"be_app\",state=\"NOLB\"} 0\n\
haproxy_backend_agg_server_status{proxy=\"li_db\",state=\"DOWN\"} 0\n\
haproxy_backend_agg_server_status{proxy=\"li_db\",state=\"UP\"} 1\n\
haproxy_backend_agg_server_status{proxy=\"li_db\",state=\"MAINT\"} 1\n\
haproxy_backend_agg_server_status{proxy=\"li_db\",state=\"DRAIN\"} 0\n\
haproxy_backend_agg_server_status{proxy=\"li_db\",state=\"NOLB\"} 0\n\
haproxy_backend_agg_server_check_status{proxy=\"be_app\",state=\"DOWN\"} 2\n\
haproxy_backend_agg_server_check_status{proxy=\"be_app\",state=\"UP\"} 1\n\
haproxy_backend_agg_server_check_status{proxy=\"be_app\",state=\"MAINT\"} 1\n\
haproxy_backend_agg_server_check_status{proxy=\"be_app\",state=\"DRAIN\"} 1\n\
haproxy_backend_agg_server_check_status{proxy=\"li_db\",state=\"UP\"} 1\n\
haproxy_backend_agg_server_check_status{proxy=\"li_db\",state=\"MAINT\"} 1\n\
haproxy_backend_agg_check_status{proxy=\"be_app\",state=\"L4OK\"} 1\n\
haproxy_backend_agg_check_status{proxy=\"be_app\",state=\"L4CON\"} 2\n\
haproxy_backend_agg_check_status{proxy=\"li_db\",state=\"L4OK\"} 2\n\
haproxy_server_current_queue{proxy=\"be_app\",server=\"s1\"} 0\n\
haproxy_server_current_queue{proxy=\"be_app\",server=\"s2\"} 0\n\
haproxy_server_current_queue{proxy=\"be_app\",server=\"s3\"} 0\n\
haproxy_server_current_queue{proxy=\"be_app\",server=\"s4\"} 0\n\
haproxy_server_current_queue{proxy=\"be_app\",server=\"s5\"} 0\n\
haproxy_server_current_queue{proxy=\"li_db\",server=\"db1\"} 0\n\
haproxy_server_current_queue{proxy=\"li_db\",server=\"db2\"} 0\n\
haproxy_server_max_queue{proxy=\"be_app\",server=\"s1\"} 0\n\
haproxy_server_max_queue{proxy=\"be_app\",server=\"s2\"} 0\n\
haproxy_server_max_queue{proxy=\"be_app\",server=\"s3\"} 0\n\
haproxy_server_max_queue{proxy=\"be_app\",server=\"s4\"} 0\n\
haproxy_server_max_queue{proxy=\"be_app\",server=\"s5\"} 0\n\
haproxy_server_max_queue{proxy=\"li_db\",server=\"db1\"} 0\n\
haproxy_server_max_queue{proxy=\"li_db\",server=\"db2\"} 0\n\
haproxy_server_current_sessions{proxy=\"be_app\",server=\"s1\"} 0\n\
haproxy_server_current_sessions{proxy=\"be_app\",server=\"s2\"} 0\n\
haproxy_server_current_sessions{proxy=\"be_app\",server=\"s3\"} 0\n\
haproxy_server_current_sessions{proxy=\"be_app\",server=\"s4\"} 0\n\
haproxy_server_current_sessions{proxy=\"be_app\",server=\"s5\"} 0\n\
haproxy_server_current_sessions{proxy=\"li_db\",server=\"db1\"} 0\n\
haproxy_server_current_sessions{proxy=\"li_db\",server=\"db2\"} 0\n\
haproxy_server_max_sessions{proxy=\"be_app\",server=\"s1\"} 1\n\
haproxy_server_max_sessions{proxy=\"be_app\",server=\"s2\"} 0\n\
haproxy_server_max_sessions{proxy=\"be_app\",server=\"s3\"} 1\n\
haproxy_server_max_sessions{proxy=\"be_app\",server=\"s4\"} 0\n\
haproxy_server_max_sessions{proxy=\"be_app\",server=\"s5\"} 0\n\
haproxy_server_max_sessions{proxy=\"li_db\",server=\"db1\"} 0\n\
haproxy_server_max_sessions{proxy=\"li_db\",server=\"db2\"} 0\n\
haproxy_server_limit_sessions{proxy=\"be_app\",server=\"s1\"} NaN\n\
haproxy_server_limit_sessions{proxy=\"be_app\",server=\"s2\"} NaN\n\
haproxy_server_limit_sessions{proxy=\"be_app\",server=\"s3\"} NaN\n\
haproxy_server_limit_sessions{proxy=\"be_app\",server=\"s4\"} NaN\n\
haproxy_server_limit_sessions{proxy=\"be_app\",server=\"s5\"} NaN\n\
haproxy_server_limit_sessions{proxy=\"li_db\",server=\"db1\"} 20\n\
haproxy_server_limit_sessions{proxy=\"li_db\",server=\"db2\"} NaN\n\
haproxy_server_sessions_total{proxy=\"be_app\",server=\"s1\"} 3\n\
haproxy_server_sessions_total{proxy=\"be_app\",server=\"s2\"} 0\n\
haproxy_server_sessions_total{proxy=\"be_app\",server=\"s3\"} 1\n\
haproxy_server_sessions_total{proxy=\"be_app\",server=\"s4\"} 0\n\
haproxy_server_sessions_total{proxy=\"be_app\",server=\"s5\"} 0\n\
haproxy_server_sessions_total{proxy=\"li_db\",server=\"db1\"} 0\n\
haproxy_server_sessions_total{proxy=\"li_db\",server=\"db2\"} 0\n\
haproxy_server_bytes_in_total{proxy=\"be_app\",server=\"s1\"} 18\n\
haproxy_server_bytes_in_total{proxy=\"be_app\",server=\"s2\"} 0\n\
haproxy_server_bytes_in_total{proxy=\"be_app\",server=\"s3\"} 6\n\
haproxy_server_bytes_in_total{proxy=\"be_app\",server=\"s4\"} 0\n\
haproxy_server_bytes_in_total{proxy=\"be_app\",server=\"s5\"} 0\n\
haproxy_server_bytes_in_total{proxy=\"li_db\",server=\"db1\"} 0\n\
haproxy_server_bytes_in_total{proxy=\"li_db\",server=\"db2\"} 0\n\
haproxy_server_bytes_out_total{proxy=\"be_app\",server=\"s1\"} 18\n\
haproxy_server_bytes_out_total{proxy=\"be_app\",server=\"s2\"} 0\n\
haproxy_server_bytes_out_total{proxy=\"be_app\",server=\"s3\"} 6\n\
haproxy_server_bytes_out_total{proxy=\"be_app\",server=\"s4\"} 0\n\
haproxy_server_bytes_out_total{proxy=\"be_app\",server=\"s5\"} 0\n\
haproxy_server_bytes_out_total{proxy=\"li_db\",server=\"db1\"} 0\n\
haproxy_server_bytes_out_total{proxy=\"li_db\",server=\"db2\"} 0\n\
haproxy_server_responses_denied_total{proxy=\"be_app\",server=\"s1\"} 0\n\
haproxy_server_responses_denied_total{proxy=\"be_app\",server=\"s2\"} 0\n\
haproxy_server_responses_denied_total{proxy=\"be_app\",server=\"s3\"} 0\n\
haproxy_server_responses_denied_total{proxy=\"be_app\",server=\"s4\"} 0\n\
haproxy_server_responses_denied_total{proxy=\"be_app\",server=\"s5\"} 0\n\
haproxy_server_responses_denied_total{proxy=\"li_db\",server=\"db1\"} 0\n\
haproxy_server_responses_denied_total{proxy=\"li_db\",server=\"db2\"} 0\n\
haproxy_server_connection_errors_total{proxy=\"be_app\",server=\"s1\"} 0\n\
haproxy_server_connection_errors_total{proxy=\"be_app\",server=\"s2\"} 0\n\
haproxy_server_connection_errors_total{proxy=\"be_app\",server=\"s3\"} 0\n\
haproxy_server_connection_errors_total{proxy=\"be_app\",server=\"s4\"} 0\n\
haproxy_server_connection_errors_total{proxy=\"be_app\",server=\"s5\"} 0\n\
haproxy_server_connection_errors_total{proxy=\"li_db\",server=\"db1\"} 0\n\
haproxy_server_connection_errors_total{proxy=\"li_db\",server=\"db2\"} 0\n\
haproxy_server_response_errors_total{proxy=\"be_app\",server=\"s1\"} 0\n\
haproxy_server_response_errors_total{proxy=\"be_app\",server=\"s2\"} 0\n\
haproxy_server_response_errors_total{proxy=\"be_app\",server=\"s3\"} 0\n\
haproxy_server_response_errors_total{proxy=\"be_app\",server=\"s4\"} 0\n\
haproxy_server_response_errors_total{proxy=\"be_app\",server=\"s5\"} 0\n\
haproxy_server_response_errors_total{proxy=\"li_db\",server=\"db1\"} 0\n\
haproxy_server_response_errors_total{proxy=\"li_db\",server=\"db2\"} 0\n\
haproxy_server_retry_warnings_total{proxy=\"be_app\",server=\"s1\"} 0\n\
haproxy_server_retry_warnings_total{proxy=\"be_app\",server=\"s2\"} 0\n\
haproxy_server_retry_warnings_total{proxy=\"be_app\",server=\"s3\"} 0\n\
haproxy_server_retry_warnings_total{proxy=\"be_app\",server=\"s4\"} 0\n\
haproxy_server_retry_warnings_total{proxy=\"be_app\",server=\"s5\"} 0\n\
haproxy_server_retry_warnings_total{proxy=\"li_db\",server=\"db1\"} 0\n\
haproxy_server_retry_warnings_total{proxy=\"li_db\",server=\"db2\"} 0\n\
haproxy_server_redispatch_warnings_total{proxy=\"be_app\",server=\"s1\"} 0\n\
haproxy_server_redispatch_warnings_total{proxy=\"be_app\",server=\"s2\"} 0\n\
haproxy_server_redispatch_warnings_total{proxy=\"be_app\",server=\"s3\"} 0\n\
haproxy_server_redispatch_warnings_total{proxy=\"be_app\",server=\"s4\"} 0\n\
haproxy_server_redispatch_warnings_total{proxy=\"be_app\",server=\"s5\"} 0\n\
haproxy_server_redispatch_warnings_total{proxy=\"li_db\",server=\"db1\"} 0\n\
haproxy_server_redispatch_warnings_total{proxy=\"li_db\",server=\"db2\"} 0\n\
haproxy_server_status{proxy=\"be_app\",server=\"s1\",state=\"DOWN\"} 0\n\
haproxy_server_status{proxy=\"be_app\",server=\"s1\",state=\"UP\"} 1\n\
haproxy_server_status{proxy=\"be_app\",server=\"s1\",state=\"MAINT\"} 0\n\
haproxy_server_status{proxy=\"be_app\",server=\"s1\",state=\"DRAIN\"} 0\n\
haproxy_server_status{proxy=\"be_app\",server=\"s1\",state=\"NOLB\"} 0\n\
haproxy_server_status{proxy=\"be_app\",server=\"s2\",state=\"DOWN\"} 1\n\
haproxy_server_status{proxy=\"be_app\",server=\"s2\",state=\"UP\"} 0\n\
haproxy_server_status{proxy=\"be_app\",server=\"s2\",state=\"MAINT\"} 0\n\
haproxy_server_status{proxy=\"be_app\",server=\"s2\",state=\"DRAIN\"} 0\n\
haproxy_server_status{proxy=\"be_app\",server=\"s2\",state=\"NOLB\"} 0\n\
haproxy_server_status{proxy=\"be_app\",server=\"s3\",state=\"DOWN\"} 0\n\
haproxy_server_status{proxy=\"be_app\",server=\"s3\",state=\"UP\"} 0\n\
haproxy_server_status{proxy=\"be_app\",server=\"s3\",state=\"MAINT\"} 0\n\
haproxy_server_status{proxy=\"be_app\",server=\"s3\",state=\"DRAIN\"} 1\n\
haproxy_server_status{proxy=\"be_app\",server=\"s3\",state=\"NOLB\"} 0\n\
haproxy_server_status{proxy=\"be_app\",server=\"s4\",state=\"DOWN\"} 1\n\
haproxy_server_status{proxy=\"be_app\",server=\"s4\",state=\"UP\"} 0\n\
haproxy_server_status{proxy=\"be_app\",server=\"s4\",state=\"MAINT\"} 0\n\
haproxy_server_status{proxy=\"be_app\",server=\"s4\",state=\"DRAIN\"} 0\n\
haproxy_server_status{proxy=\"be_app\",server=\"s4\",state=\"NOLB\"} 0\n\
haproxy_server_status{proxy=\"be_app\",server=\"s5\",state=\"DOWN\"} 0\n\
haproxy_server_status{proxy=\"be_app\",server=\"s5\",state=\"UP\"} 0\n\
haproxy_server_status{proxy=\"be_app\",server=\"s5\",state=\"MAINT\"} 1\n\
haproxy_server_status{proxy=\"be_app\",server=\"s5\",state=\"DRAIN\"} 0\n\
haproxy_server_status{proxy=\"be_app\",server=\"s5\",state=\"NOLB\"} 0\n\
haproxy_server_status{proxy=\"li_db\",server=\"db1\",state=\"DOWN\"} 0\n\
haproxy_server_status{proxy=\"li_db\",server=\"db1\",state=\"UP\"} 1\n\
haproxy_server_status{proxy=\"li_db\",server=\"db1\",state=\"MAINT\"} 0\n\
haproxy_server_status{proxy=\"li_db\",server=\"db1\",state=\"DRAIN\"} 0\n\
haproxy_server_status{proxy=\"li_db\",server=\"db1\",state=\"NOLB\"} 0\n\
haproxy_server_status{proxy=\"li_db\",server=\"db2\",state=\"DOWN\"} 0\n\
haproxy_server_status{proxy=\"li_db\",server=\"db2\",state=\"UP\"} 0\n\
haproxy_server_status{proxy=\"li_db\",server=\"db2\",state=\"MAINT\"} 1\n\
haproxy_server_status{proxy=\"li_db\",server=\"db2\",state=\"DRAIN\"} 0\n\
haproxy_server_status{proxy=\"li_db\",server=\"db2\",state=\"NOLB\"} 0\n\
haproxy_server_weight{proxy=\"be_app\",server=\"s1\"} 3\n\
haproxy_server_weight{proxy=\"be_app\",server=\"s2\"} 1\n\
haproxy_server_weight{proxy=\"be_app\",server=\"s3\"} 1\n\
haproxy_server_weight{proxy=\"be_app\",server=\"s4\"} 1\n\
haproxy_server_weight{proxy=\"be_app\",server=\"s5\"} 1\n\
haproxy_server_weight{proxy=\"li_db\",server=\"db1\"} 10\n\
haproxy_server_weight{proxy=\"li_db\",server=\"db2\"} 1\n\
haproxy_server_check_failures_total{proxy=\"be_app\",server=\"s1\"} 0\n\
haproxy_server_check_failures_total{proxy=\"be_app\",server=\"s2\"} 1\n\
haproxy_server_check_failures_total{proxy=\"be_app\",server=\"s3\"} NaN\n\
haproxy_server_check_failures_total{proxy=\"be_app\",server=\"s4\"} 1\n\
haproxy_server_check_failures_total{proxy=\"be_app\",server=\"s5\"} NaN\n\
haproxy_server_check_failures_total{proxy=\"li_db\",server=\"db1\"} 0\n\
haproxy_server_check_failures_total{proxy=\"li_db\",server=\"db2\"} 1\n\
haproxy_server_check_up_down_total{proxy=\"be_app\",server=\"s1\"} 0\n\
haproxy_server_check_up_down_total{proxy=\"be_app\",server=\"s2\"} 1\n\
haproxy_server_check_up_down_total{proxy=\"be_app\",server=\"s3\"} NaN\n\
haproxy_server_check_up_down_total{proxy=\"be_app\",server=\"s4\"} 1\n\
haproxy_server_check_up_down_total{proxy=\"be_app\",server=\"s5\"} NaN\n\
haproxy_server_check_up_down_total{proxy=\"li_db\",server=\"db1\"} 1\n\
haproxy_server_check_up_down_total{proxy=\"li_db\",server=\"db2\"} 3\n\
haproxy_server_check_last_change_seconds{proxy=\"be_app\",server=\"s1\"} 605\n\
haproxy_server_check_last_change_seconds{proxy=\"be_app\",server=\"s2\"} 616\n\
haproxy_server_check_last_change_seconds{proxy=\"be_app\",server=\"s3\"} 1\n\
haproxy_server_check_last_change_seconds{proxy=\"be_app\",server=\"s4\"} 616\n\
haproxy_server_check_last_change_seconds{proxy=\"be_app\",server=\"s5\"} 617\n\
haproxy_server_check_last_change_seconds{proxy=\"li_db\",server=\"db1\"} 605\n\
haproxy_server_check_last_change_seconds{proxy=\"li_db\",server=\"db2\"} 1\n\
haproxy_server_downtime_seconds_total{proxy=\"be_app\",server=\"s1\"} 0\n\
haproxy_server_downtime_seconds_total{proxy=\"be_app\",server=\"s2\"} 616\n\
haproxy_server_downtime_seconds_total{proxy=\"be_app\",server=\"s3\"} NaN\n\
haproxy_server_downtime_seconds_total{proxy=\"be_app\",server=\"s4\"} 616\n\
haproxy_server_downtime_seconds_total{proxy=\"be_app\",server=\"s5\"} NaN\n\
haproxy_server_downtime_seconds_total{proxy=\"li_db\",server=\"db1\"} 0\n\
haproxy_server_downtime_seconds_total{proxy=\"li_db\",server=\"db2\"} 7\n\
haproxy_server_queue_limit{proxy=\"be_app\",server=\"s1\"} NaN\n\
haproxy_server_queue_limit{proxy=\"be_app\",server=\"s2\"} NaN\n\
haproxy_server_queue_limit{proxy=\"be_app\",server=\"s3\"} NaN\n\
haproxy_server_queue_limit{proxy=\"be_app\",server=\"s4\"} NaN\n\
haproxy_server_queue_limit{proxy=\"be_app\",server=\"s5\"} NaN\n\
haproxy_server_queue_limit{proxy=\"li_db\",server=\"db1\"} 5\n\
haproxy_server_queue_limit{proxy=\"li_db\",server=\"db2\"} NaN\n\
haproxy_server_current_throttle{proxy=\"be_app\",server=\"s1\"} NaN\n\
haproxy_server_current_throttle{proxy=\"be_app\",server=\"s2\"} NaN\n\
haproxy_server_current_throttle{proxy=\"be_app\",server=\"s3\"} NaN\n\
haproxy_server_current_throttle{proxy=\"be_app\",server=\"s4\"} NaN\n\
haproxy_server_current_throttle{proxy=\"be_app\",server=\"s5\"} NaN\n\
haproxy_server_current_throttle{proxy=\"li_db\",server=\"db1\"} NaN\n\
haproxy_server_current_throttle{proxy=\"li_db\",server=\"db2\"} NaN\n\
haproxy_server_loadbalanced_total{proxy=\"be_app\",server=\"s1\"} 3\n\
haproxy_server_loadbalanced_total{proxy=\"be_app\",server=\"s2\"} 0\n\
haproxy_server_loadbalanced_total{proxy=\"be_app\",server=\"s3\"} 1\n\
haproxy_server_loadbalanced_total{proxy=\"be_app\",server=\"s4\"} 0\n\
haproxy_server_loadbalanced_total{proxy=\"be_app\",server=\"s5\"} 0\n\
haproxy_server_loadbalanced_total{proxy=\"li_db\",server=\"db1\"} 0\n\
haproxy_server_loadbalanced_total{proxy=\"li_db\",server=\"db2\"} 0\n\
haproxy_server_max_session_rate{proxy=\"be_app\",server=\"s1\"} 3\n\
haproxy_server_max_session_rate{proxy=\"be_app\",server=\"s2\"} 0\n\
haproxy_server_max_session_rate{proxy=\"be_app\",server=\"s3\"} 1\n\
haproxy_server_max_session_rate{proxy=\"be_app\",server=\"s4\"} 0\n\
haproxy_server_max_session_rate{proxy=\"be_app\",server=\"s5\"} 0\n\
haproxy_server_max_session_rate{proxy=\"li_db\",server=\"db1\"} 0\n\
haproxy_server_max_session_rate{proxy=\"li_db\",server=\"db2\"} 0\n\
haproxy_server_check_status{proxy=\"be_app\",server=\"s1\",state=\"HANA\"} 0\n\
haproxy_server_check_status{proxy=\"be_app\",server=\"s1\",state=\"SOCKERR\"} 0\n\
haproxy_server_check_status{proxy=\"be_app\",server=\"s1\",state=\"L4OK\"} 1\n\
haproxy_server_check_status{proxy=\"be_app\",server=\"s1\",state=\"L4TOUT\"} 0\n\
haproxy_server_check_status{proxy=\"be_app\",server=\"s1\",state=\"L4CON\"} 0\n\
haproxy_server_check_status{proxy=\"be_app\",server=\"s1\",state=\"L6OK\"} 0\n\
haproxy_server_check_status{proxy=\"be_app\",server=\"s1\",state=\"L6TOUT\"} 0\n\
haproxy_server_check_status{proxy=\"be_app\",server=\"s1\",state=\"L6RSP\"} 0\n\
haproxy_server_check_status{proxy=\"be_app\",server=\"s1\",state=\"L7TOUT\"} 0\n\
haproxy_server_check_status{proxy=\"be_app\",server=\"s1\",state=\"L7RSP\"} 0\n\
haproxy_server_check_status{proxy=\"be_app\",server=\"s1\",state=\"L7OK\"} 0\n\
haproxy_server_check_status{proxy=\"be_app\",server=\"s1\",state=\"L7OKC\"} 0\n\
haproxy_server_check_status{proxy=\"be_app\",server=\"s1\",state=\"L7STS\"} 0\n\
haproxy_server_check_status{proxy=\"be_app\",server=\"s1\",state=\"PROCERR\"} 0\n\
haproxy_server_check_status{proxy=\"be_app\",server=\"s1\",state=\"PROCTOUT\"} 0\n\
haproxy_server_check_status{proxy=\"be_app\",server=\"s1\",state=\"PROCOK\"} 0\n\
haproxy_server_check_status{proxy=\"be_app\",server=\"s2\",state=\"L4CON\"} 1\n\
haproxy_server_check_status{proxy=\"be_app\",server=\"s4\",state=\"L4CON\"} 1\n\
haproxy_server_check_status{proxy=\"li_db\",server=\"db1\",state=\"L4OK\"} 1\n\
haproxy_server_check_code{proxy=\"be_app\",server=\"s1\"} 0\n\
haproxy_server_check_code{proxy=\"be_app\",server=\"s2\"} 0\n\
haproxy_server_check_code{proxy=\"be_app\",server=\"s4\"} 0\n\
haproxy_server_check_code{proxy=\"li_db\",server=\"db1\"} 0\n\
haproxy_server_check_duration_seconds{proxy=\"be_app\",server=\"s1\"} 0.000000\n\
haproxy_server_check_duration_seconds{proxy=\"be_app\",server=\"s2\"} 0.000000\n\
haproxy_server_check_duration_seconds{proxy=\"be_app\",server=\"s4\"} 0.000000\n\
haproxy_server_check_duration_seconds{proxy=\"li_db\",server=\"db1\"} 0.000000\n\
haproxy_server_check_duration_seconds{proxy=\"li_db\",server=\"db2\"} 0.000000\n\
haproxy_server_client_aborts_total{proxy=\"be_app\",server=\"s1\"} 0\n\
haproxy_server_client_aborts_total{proxy=\"be_app\",server=\"s2\"} 0\n\
haproxy_server_client_aborts_total{proxy=\"be_app\",server=\"s3\"} 0\n\
haproxy_server_client_aborts_total{proxy=\"be_app\",server=\"s4\"} 0\n\
haproxy_server_client_aborts_total{proxy=\"be_app\",server=\"s5\"} 0\n\
haproxy_server_client_aborts_total{proxy=\"li_db\",server=\"db1\"} 0\n\
haproxy_server_client_aborts_total{proxy=\"li_db\",server=\"db2\"} 0\n\
haproxy_server_server_aborts_total{proxy=\"be_app\",server=\"s1\"} 0\n\
haproxy_server_server_aborts_total{proxy=\"be_app\",server=\"s2\"} 0\n\
haproxy_server_server_aborts_total{proxy=\"be_app\",server=\"s3\"} 0\n\
haproxy_server_server_aborts_total{proxy=\"be_app\",server=\"s4\"} 0\n\
haproxy_server_server_aborts_total{proxy=\"be_app\",server=\"s5\"} 0\n\
haproxy_server_server_aborts_total{proxy=\"li_db\",server=\"db1\"} 0\n\
haproxy_server_server_aborts_total{proxy=\"li_db\",server=\"db2\"} 0\n\
haproxy_server_last_session_seconds{proxy=\"be_app\",server=\"s1\"} 12\n\
haproxy_server_last_session_seconds{proxy=\"be_app\",server=\"s2\"} -1\n\
haproxy_server_last_session_seconds{proxy=\"be_app\",server=\"s3\"} 12\n\
haproxy_server_last_session_seconds{proxy=\"be_app\",server=\"s4\"} -1\n\
haproxy_server_last_session_seconds{proxy=\"be_app\",server=\"s5\"} -1\n\
haproxy_server_last_session_seconds{proxy=\"li_db\",server=\"db1\"} -1\n\
haproxy_server_last_session_seconds{proxy=\"li_db\",server=\"db2\"} -1\n\
haproxy_server_connect_time_average_seconds{proxy=\"be_app\",server=\"s1\"} 0.000000\n\
haproxy_server_connect_time_average_seconds{proxy=\"be_app\",server=\"s2\"} 0.000000\n\
haproxy_server_connect_time_average_seconds{proxy=\"be_app\",server=\"s3\"} 0.000000\n\
haproxy_server_connect_time_average_seconds{proxy=\"be_app\",server=\"s4\"} 0.000000\n\
haproxy_server_connect_time_average_seconds{proxy=\"be_app\",server=\"s5\"} 0.000000\n\
haproxy_server_connect_time_average_seconds{proxy=\"li_db\",server=\"db1\"} 0.000000\n\
haproxy_server_connect_time_average_seconds{proxy=\"li_db\",server=\"db2\"} 0.000000\n\
haproxy_server_response_time_average_seconds{proxy=\"be_app\",server=\"s1\"} 0.000000\n\
haproxy_server_response_time_average_seconds{proxy=\"be_app\",server=\"s2\"} 0.000000\n\
haproxy_server_response_time_average_seconds{proxy=\"be_app\",server=\"s3\"} 0.000000\n\
haproxy_server_response_time_average_seconds{proxy=\"be_app\",server=\"s4\"} 0.000000\n\
haproxy_server_response_time_average_seconds{proxy=\"be_app\",server=\"s5\"} 0.000000\n\
haproxy_server_response_time_average_seconds{proxy=\"li_db\",server=\"db1\"} 0.000000\n\
haproxy_server_response_time_average_seconds{proxy=\"li_db\",server=\"db2\"} 0.000000\n\
haproxy_server_total_time_average_seconds{proxy=\"be_app\",server=\"s1\"} 0.000000\n\
haproxy_server_total_time_average_seconds{proxy=\"be_app\",server=\"s2\"} 0.000000\n\
haproxy_server_total_time_average_seconds{proxy=\"be_app\",server=\"s3\"} 0.000000\n\
haproxy_server_total_time_average_seconds{proxy=\"be_app\",server=\"s4\"} 0.000000\n\
haproxy_server_total_time_average_seconds{proxy=\"be_app\",server=\"s5\"} 0.000000\n\
haproxy_server_total_time_average_seconds{proxy=\"li_db\",server=\"db1\"} 0.000000\n\
haproxy_server_total_time_average_seconds{proxy=\"li_db\",server=\"db2\"} 0.000000\n\
haproxy_server_failed_header_rewriting_total{proxy=\"be_app\",server=\"s1\"} 0\n\
haproxy_server_failed_header_rewriting_total{proxy=\"be_app\",server=\"s2\"} 0\n\
haproxy_server_failed_header_rewriting_total{proxy=\"be_app\",server=\"s3\"} 0\n\
haproxy_server_failed_header_rewriting_total{proxy=\"be_app\",server=\"s4\"} 0\n\
haproxy_server_failed_header_rewriting_total{proxy=\"be_app\",server=\"s5\"} 0\n\
haproxy_server_failed_header_rewriting_total{proxy=\"li_db\",server=\"db1\"} 0\n\
haproxy_server_failed_header_rewriting_total{proxy=\"li_db\",server=\"db2\"} 0\n\
haproxy_server_connection_reuses_total{proxy=\"be_app\",server=\"s1\"} 0\n\
haproxy_server_connection_reuses_total{proxy=\"be_app\",server=\"s2\"} 0\n\
haproxy_server_connection_reuses_total{proxy=\"be_app\",server=\"s3\"} 0\n\
haproxy_server_connection_reuses_total{proxy=\"be_app\",server=\"s4\"} 0\n\
haproxy_server_connection_reuses_total{proxy=\"be_app\",server=\"s5\"} 0\n\
haproxy_server_connection_reuses_total{proxy=\"li_db\",server=\"db1\"} 0\n\
haproxy_server_connection_reuses_total{proxy=\"li_db\",server=\"db2\"} 0\n\
haproxy_server_idle_connections_current{proxy=\"be_app\",server=\"s1\"} 0\n\
haproxy_server_idle_connections_current{proxy=\"be_app\",server=\"s2\"} 0\n\
haproxy_server_idle_connections_current{proxy=\"be_app\",server=\"s3\"} 0\n\
haproxy_server_idle_connections_current{proxy=\"be_app\",server=\"s4\"} 0\n\
haproxy_server_idle_connections_current{proxy=\"be_app\",server=\"s5\"} 0\n\
haproxy_server_idle_connections_current{proxy=\"li_db\",server=\"db1\"} 0\n\
haproxy_server_idle_connections_current{proxy=\"li_db\",server=\"db2\"} 0\n\
haproxy_server_internal_errors_total{proxy=\"be_app\",server=\"s1\"} 0\n\
haproxy_server_internal_errors_total{proxy=\"be_app\",server=\"s2\"} 0\n\
haproxy_server_internal_errors_total{proxy=\"be_app\",server=\"s3\"} 0\n\
haproxy_server_internal_errors_total{proxy=\"be_app\",server=\"s4\"} 0\n\
haproxy_server_internal_errors_total{proxy=\"be_app\",server=\"s5\"} 0\n\
haproxy_server_internal_errors_total{proxy=\"li_db\",server=\"db1\"} 0\n\
haproxy_server_internal_errors_total{proxy=\"li_db\",server=\"db2\"} 0\n\
haproxy_server_unsafe_idle_connections_current{proxy=\"be_app\",server=\"s1\"} 0\n\
haproxy_server_unsafe_idle_connections_current{proxy=\"be_app\",server=\"s2\"} 0\n\
haproxy_server_unsafe_idle_connections_current{proxy=\"be_app\",server=\"s3\"} 0\n\
haproxy_server_unsafe_idle_connections_current{proxy=\"be_app\",server=\"s4\"} 0\n\
haproxy_server_unsafe_idle_connections_current{proxy=\"be_app\",server=\"s5\"} 0\n\
haproxy_server_unsafe_idle_connections_current{proxy=\"li_db\",server=\"db1\"} 0\n\
haproxy_server_unsafe_idle_connections_current{proxy=\"li_db\",server=\"db2\"} 0\n\
haproxy_server_safe_idle_connections_current{proxy=\"be_app\",server=\"s1\"} 0\n\
haproxy_server_safe_idle_connections_current{proxy=\"be_app\",server=\"s2\"} 0\n\
haproxy_server_safe_idle_connections_current{proxy=\"be_app\",server=\"s3\"} 0\n\
haproxy_server_safe_idle_connections_current{proxy=\"be_app\",server=\"s4\"} 0\n\
haproxy_server_safe_idle_connections_current{proxy=\"be_app\",server=\"s5\"} 0\n\
haproxy_server_safe_idle_connections_current{proxy=\"li_db\",server=\"db1\"} 0\n\
haproxy_server_safe_idle_connections_current{proxy=\"li_db\",server=\"db2\"} 0\n\
haproxy_server_used_connections_current{proxy=\"be_app\",server=\"s1\"} 0\n\
haproxy_server_used_connections_current{proxy=\"be_app\",server=\"s2\"} 0\n\
haproxy_server_used_connections_current{proxy=\"be_app\",server=\"s3\"} 0\n\
haproxy_server_used_connections_current{proxy=\"be_app\",server=\"s4\"} 0\n\
haproxy_server_used_connections_current{proxy=\"be_app\",server=\"s5\"} 0\n\
haproxy_server_used_connections_current{proxy=\"li_db\",server=\"db1\"} 0\n\
haproxy_server_used_connections_current{proxy=\"li_db\",server=\"db2\"} 0\n\
haproxy_server_uweight{proxy=\"be_app\",server=\"s1\"} 3\n\
haproxy_server_uweight{proxy=\"be_app\",server=\"s2\"} 1\n\
haproxy_server_uweight{proxy=\"be_app\",server=\"s3\"} 1\n\
haproxy_server_uweight{proxy=\"be_app\",server=\"s4\"} 1\n\
haproxy_server_uweight{proxy=\"be_app\",server=\"s5\"} 1\n\
haproxy_server_uweight{proxy=\"li_db\",server=\"db1\"} 10\n\
haproxy_server_uweight{proxy=\"li_db\",server=\"db2\"} 1\n\
";

// ---------------------------------------------------------------------------------------------
// a snapshot from HAProxy's CSV

/// Columns sluice leaves empty where HAProxy has a value: averages and maxima over the last
/// 1024 sessions it does not keep, connection attempts, idle-connection estimates, `track`.
const NOT_FILLED: &[&str] = &[
    "qtime",
    "qtime_max",
    "ctime_max",
    "rtime_max",
    "ttime_max",
    "connect",
    "need_conn_est",
    "tracked",
];
/// Columns of an HTTP frontend (the stats listener) that sluice does not count; the h1/h2
/// ones also for backends, where HAProxy counts its HTTP health checks.
const NOT_FILLED_HTTP: &[&str] = &[
    "hrsp_1xx",
    "hrsp_2xx",
    "hrsp_3xx",
    "hrsp_4xx",
    "hrsp_5xx",
    "hrsp_other",
    "req_rate",
    "req_rate_max",
    "req_tot",
    "intercepted",
    "cache_lookups",
    "cache_hits",
    "h2_headers_rcvd",
    "h2_data_rcvd",
    "h2_settings_rcvd",
    "h2_rst_stream_rcvd",
    "h2_goaway_rcvd",
    "h2_detected_conn_protocol_errors",
    "h2_detected_strm_protocol_errors",
    "h2_rst_stream_resp",
    "h2_goaway_resp",
    "h2_open_connections",
    "h2_backend_open_streams",
    "h2_total_connections",
    "h2_backend_total_streams",
    "h1_open_connections",
    "h1_open_streams",
    "h1_total_connections",
    "h1_total_streams",
    "h1_bytes_in",
    "h1_bytes_out",
    "h1_spliced_bytes_in",
    "h1_spliced_bytes_out",
];

struct Csv {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Csv {
    fn parse(text: &str) -> Csv {
        let mut lines = text.lines();
        let header = lines
            .next()
            .unwrap()
            .trim_start_matches("# ")
            .split(',')
            .map(str::to_string)
            .collect();
        let rows = lines
            .filter(|l| !l.is_empty())
            .map(|l| l.split(',').map(str::to_string).collect())
            .collect();
        Csv { header, rows }
    }

    fn col(&self, name: &str) -> usize {
        self.header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no column {name}"))
    }
}

struct Row<'a> {
    csv: &'a Csv,
    r: &'a [String],
}

impl Row<'_> {
    fn s(&self, name: &str) -> &str {
        &self.r[self.csv.col(name)]
    }
    fn n(&self, name: &str) -> u64 {
        self.s(name).parse().unwrap_or(0)
    }
    fn opt(&self, name: &str) -> Option<u64> {
        self.s(name).parse().ok()
    }
    fn secs(&self, name: &str) -> Duration {
        Duration::from_secs(self.n(name))
    }
    fn traffic(&self) -> Traffic {
        Traffic {
            scur: self.n("scur"),
            smax: self.n("smax"),
            stot: self.n("stot"),
            bin: self.n("bin"),
            bout: self.n("bout"),
            dreq: self.n("dreq"),
            econ: self.n("econ"),
            eresp: self.n("eresp"),
            wretr: self.n("wretr"),
            wredis: self.n("wredis"),
            lbtot: self.n("lbtot"),
            qcur: self.n("qcur"),
            qmax: self.n("qmax"),
            rate: self.n("rate"),
            rate_max: self.n("rate_max"),
            cli_abrt: self.n("cli_abrt"),
            srv_abrt: self.n("srv_abrt"),
            dcon: self.n("dcon"),
            dses: self.n("dses"),
            conn_tot: self.n("conn_tot"),
            ..Traffic::default()
        }
    }
    fn lastsess(&self) -> Option<Duration> {
        self.s("lastsess")
            .parse::<u64>()
            .ok()
            .map(Duration::from_secs)
    }
    fn check(&self, p: &str) -> Option<CheckInfo> {
        let status = self.s(&format!("{p}_status"));
        let configured = if p == "check" {
            !self.s("chkfail").is_empty()
        } else {
            !status.is_empty()
        };
        configured.then(|| CheckInfo {
            status: status.to_string(),
            code: self
                .s(&format!("{p}_code"))
                .parse()
                .ok()
                .filter(|_| p == "check"),
            duration_ms: self.opt(&format!("{p}_duration")),
            desc: self.s(&format!("{p}_desc")).to_string(),
            output: self
                .s(if p == "check" { "last_chk" } else { "last_agt" })
                .to_string(),
            rise: self.n(&format!("{p}_rise")) as u32,
            fall: self.n(&format!("{p}_fall")) as u32,
            health: self.n(&format!("{p}_health")) as u32,
        })
    }
}

fn status(s: &str) -> ServerStatus {
    let ratio = |r: &str| {
        let (a, b) = r.split_once('/').unwrap();
        (a.parse().unwrap(), b.parse().unwrap())
    };
    match s {
        "UP" => ServerStatus::Up,
        "DOWN" => ServerStatus::Down,
        "MAINT" => ServerStatus::Maint,
        "DRAIN" => ServerStatus::Drain,
        "no check" => ServerStatus::NoCheck,
        s if s.starts_with("UP ") => {
            let (step, of) = ratio(&s[3..]);
            ServerStatus::GoingDown { step, of }
        }
        s if s.starts_with("DOWN ") => {
            let (step, of) = ratio(&s[5..]);
            ServerStatus::GoingUp { step, of }
        }
        s => panic!("status {s}"),
    }
}

/// The snapshot sluice would build in the state HAProxy's CSV describes.
fn snapshot_from(csv: &Csv) -> Snapshot {
    let mut snap = Snapshot {
        info: info(),
        frontends: vec![],
        backends: vec![],
        servers: vec![],
    };
    for r in &csv.rows {
        let row = Row { csv, r };
        let iid = row.n("iid") as u32;
        match row.s("svname") {
            "FRONTEND" => snap.frontends.push(FrontendRow {
                name: row.s("pxname").to_string(),
                iid,
                traffic: row.traffic(),
                slim: row.opt("slim"),
                rate_lim: row.opt("rate_lim").filter(|&l| l > 0),
                enabled: row.s("status") == "OPEN",
                description: None,
                mode: if row.s("mode") == "http" {
                    "http"
                } else {
                    "tcp"
                },
            }),
            "BACKEND" => snap.backends.push(BackendRow {
                name: row.s("pxname").to_string(),
                iid,
                traffic: row.traffic(),
                slim: row.opt("slim"),
                up: row.s("status") == "UP",
                weight: row.n("weight"),
                act: row.n("act"),
                bck: row.n("bck"),
                chkdown: row.n("chkdown"),
                lastchg: row.secs("lastchg"),
                downtime: row.secs("downtime"),
                description: None,
                algo: if row.s("algo") == "leastconn" {
                    "leastconn"
                } else {
                    "roundrobin"
                },
                uweight: row.n("uweight"),
                lastsess: row.lastsess(),
                mode: if row.s("mode") == "http" {
                    "http"
                } else {
                    "tcp"
                },
            }),
            name => snap.servers.push(ServerRow {
                backend: row.s("pxname").to_string(),
                name: name.to_string(),
                iid,
                sid: row.n("sid") as u32,
                traffic: row.traffic(),
                slim: row.opt("slim"),
                qlimit: row.opt("qlimit"),
                status: status(row.s("status")),
                weight: row.n("weight") as u32,
                uweight: row.n("uweight") as u32,
                iweight: if name == "db1" { 10 } else { 1 },
                backup: row.s("bck") == "1",
                chkfail: row.n("chkfail"),
                chkdown: row.n("chkdown"),
                lastchg: row.secs("lastchg"),
                downtime: row.secs("downtime"),
                check: row.check("check"),
                agent: row.check("agent"),
                addr: row.s("addr").to_string(),
                throttle: row.opt("throttle").map(|t| t as u32),
                lastsess: row.lastsess(),
            }),
        }
    }
    snap
}

fn info() -> Info {
    Info {
        name: "sluice".into(),
        version: "0.1.0".into(),
        pid: 4242,
        uptime: Duration::from_secs(3_725),
        nbthread: 2,
        maxconn: 1_000,
        curr_conns: 3,
        cum_conns: 1_234_567,
        maxsock: 2_041,
        pipes_used: 2,
        pipes_free: 6,
        max_pipes: 250,
        node: "vm".into(),
        ulimit_n: 2_041,
        start_time_sec: 1_795_251_315,
        conn_rate: 4,
        max_conn_rate: 9,
        sess_rate: 4,
        max_sess_rate: 9,
        listeners: 3,
        jobs: 6,
        total_bytes_out: 123_456,
        ..Info::default()
    }
}

fn golden() -> (Csv, Snapshot) {
    let csv = Csv::parse(HAPROXY_CSV);
    let mut snap = snapshot_from(&csv);
    // HAProxy hides the result of a check paused by maintenance; its state dump shows that
    // db2's last check had passed (L4OK).
    for sv in snap.servers.iter_mut().filter(|sv| sv.name == "db2") {
        let c = sv.check.as_mut().unwrap();
        (c.status, c.duration_ms) = ("L4OK".into(), Some(0));
    }
    (csv, snap)
}

// ---------------------------------------------------------------------------------------------
// show stat

#[test]
fn csv_header_is_haproxys_byte_for_byte() {
    assert_eq!(
        CSV_HEADER,
        HAPROXY_CSV.lines().next().unwrap().to_string() + "\n"
    );
    let (_, snap) = golden();
    assert!(show_stat_csv(&snap).starts_with(CSV_HEADER));
}

#[test]
fn csv_rows_match_haproxy_field_by_field() {
    let (theirs, snap) = golden();
    let ours = Csv::parse(&show_stat_csv(&snap));
    assert_eq!(ours.header, theirs.header);
    assert_eq!(ours.rows.len(), theirs.rows.len());
    for (o, t) in ours.rows.iter().zip(&theirs.rows) {
        assert_eq!(o.len(), t.len(), "{t:?}");
        let http = t[theirs.col("mode")] == "http" || t[1] == "BACKEND";
        for (i, name) in theirs.header.iter().enumerate() {
            if NOT_FILLED.contains(&name.as_str())
                || (http && NOT_FILLED_HTTP.contains(&name.as_str()))
            {
                assert!(
                    o[i].is_empty() || o[i] == t[i],
                    "{}/{}: {name} = {:?}",
                    t[0],
                    t[1],
                    o[i]
                );
                continue;
            }
            assert_eq!(o[i], t[i], "{}/{}: column {name}", t[0], t[1]);
        }
    }
}

#[test]
fn typed_lines_match_haproxy() {
    let (_, snap) = golden();
    let ours = show_stat_typed(&snap);
    let ours: Vec<&str> = ours.lines().collect();
    let skipped = |line: &str| {
        let field = |f: &&str| line.contains(&format!(".{f}.1:"));
        NOT_FILLED.iter().any(field)
            || (line.starts_with("B.") && NOT_FILLED_HTTP.iter().any(field))
    };
    for want in HAPROXY_TYPED.lines().filter(|l| !skipped(l)) {
        assert!(ours.contains(&want), "missing typed line {want}");
    }
    // And nothing more for those objects.
    let objects = ["F.2.0.", "S.3.1.", "S.4.2.", "S.6.2.", "B.3.0."];
    let extra: Vec<&&str> = ours
        .iter()
        .filter(|l| objects.iter().any(|o| l.starts_with(o)) && !HAPROXY_TYPED.contains(*l))
        .collect();
    assert!(extra.is_empty(), "lines HAProxy does not print: {extra:?}");
}

#[test]
fn json_has_haproxys_shape() {
    let (_, snap) = golden();
    let json = show_stat_json(&snap);
    // The first field of HAProxy's output, byte for byte.
    assert!(json.starts_with(
        "[[{\"objType\":\"Frontend\",\"proxyId\":2,\"id\":0,\"field\":{\"pos\":0,\"name\":\"pxname\"},\"processNum\":1,\
         \"tags\":{\"origin\":\"Key\",\"nature\":\"Name\",\"scope\":\"Service\"},\"value\":{\"type\":\"str\",\"value\":\"fe_main\"}},"
    ));
    assert!(json.ends_with("}]]\n"));
    // One JSON object per typed line.
    assert_eq!(
        json.matches("{\"objType\"").count(),
        show_stat_typed(&snap).lines().count()
    );
    assert!(json.contains(
        "{\"objType\":\"Server\",\"proxyId\":6,\"id\":2,\"field\":{\"pos\":57,\"name\":\"last_agt\"},\"processNum\":1,\
         \"tags\":{\"origin\":\"Metric\",\"nature\":\"Output\",\"scope\":\"Process\"},\"value\":{\"type\":\"str\",\"value\":\"via agent : up\"}}"
    ));
}

#[test]
fn show_stat_selectors_and_filters() {
    let (_, snap) = golden();
    let run = |line: &str| -> String {
        let Ok(Command::ShowStat { format, filter }) = parse_line(line).remove(0) else {
            panic!("{line}")
        };
        show_stat(&snap, format, &filter)
    };
    let names = |out: &str| -> Vec<String> {
        out.lines()
            .skip(1)
            .map(|l| l.split(',').take(2).collect::<Vec<_>>().join("/"))
            .collect()
    };
    assert_eq!(names(&run("show stat -1 4 -1")).len(), 10);
    assert_eq!(names(&run("show stat be_app 2 -1")), ["be_app/BACKEND"]);
    assert_eq!(names(&run("show stat 3 4 2")), ["be_app/s2"]);
    assert_eq!(
        names(&run("show stat li_db 3 -1")),
        ["li_db/FRONTEND", "li_db/BACKEND"]
    );
    assert_eq!(run("show stat nope 1 -1"), "No such proxy.\n");
    let up = run("show stat up");
    assert!(!up.contains("be_app,s2,") && !up.contains("be_app,s5,") && !up.contains("li_db,db2,"));
    assert!(
        up.contains(",UP (2/5),"),
        "HAProxy adds up/total to backends when filtering"
    );
    let no_maint = run("show stat no-maint");
    assert!(no_maint.contains("be_app,s2,") && !no_maint.contains("be_app,s5,"));
    assert!(run("show stat -1 1 -1 typed")
        .lines()
        .all(|l| l.starts_with("F.")));
    assert_eq!(
        show_stat(&snap, OutputFormat::Plain, &StatFilter::default()),
        show_stat_csv(&snap)
    );
}

#[test]
fn servers_state_matches_haproxy() {
    let (_, snap) = golden();
    let ours = show_servers_state(&snap, None);
    let mut theirs = HAPROXY_SERVERS_STATE.lines();
    let mut mine = ours.lines();
    assert_eq!(mine.next(), theirs.next());
    assert_eq!(mine.next(), theirs.next(), "header");
    for (o, t) in mine.zip(theirs) {
        // Where sluice knows less: the health counter of unchecked servers (HAProxy keeps
        // `rise`), the agent's port, `track`.
        // Nor does it tell `disabled` in the configuration (admin state 0x04) from maintenance
        // asked at run time (0x01).
        if ["s3 ", "s5 ", "ag1 ", "tr1 "]
            .iter()
            .any(|s| t.contains(&format!(" {s}")))
        {
            let cols =
                |l: &str| -> Vec<String> { l.split(' ').take(12).map(str::to_string).collect() };
            let (mut o, mut t) = (cols(o), cols(t));
            if t[3] == "s5" {
                (o[6], t[6]) = (String::new(), String::new());
            }
            assert_eq!(o, t);
            continue;
        }
        assert_eq!(o, t);
    }
    assert!(show_servers_state(&snap, Some("li_db"))
        .lines()
        .skip(2)
        .all(|l| l.starts_with("4 li_db ")));
    assert_eq!(show_servers_state(&snap, Some("#6")).lines().count(), 2 + 3);
    assert_eq!(
        show_servers_state(&snap, Some("nope")),
        "Can't find backend.\n"
    );
}

// ---------------------------------------------------------------------------------------------
// Prometheus

fn metric_types() -> Vec<(&'static str, &'static str)> {
    HAPROXY_METRIC_TYPES
        .lines()
        .map(|l| l.split_once(' ').unwrap())
        .collect()
}

#[test]
fn exporter_names_and_types_are_haproxys() {
    let (_, snap) = golden();
    let out = prometheus(&snap);
    let theirs = metric_types();
    let mut seen = 0;
    for line in out.lines().filter(|l| l.starts_with("# TYPE ")) {
        let (name, kind) = line["# TYPE ".len()..].split_once(' ').unwrap();
        assert!(
            theirs.contains(&(name, kind)),
            "HAProxy has no {kind} named {name}"
        );
        seen += 1;
    }
    assert!(seen > 90, "{seen} metrics");
    // HELP precedes TYPE, and every sample belongs to the metric announced before it.
    let mut current = "";
    for line in out.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            current = rest.split(' ').next().unwrap();
        } else if !line.starts_with('#') {
            let name = line.split(['{', ' ']).next().unwrap();
            assert_eq!(name, current, "{line}");
        }
    }
}

#[test]
fn exporter_samples_equal_haproxys() {
    let (_, snap) = golden();
    let out = prometheus(&snap);
    let ours: std::collections::HashSet<&str> = out.lines().collect();
    for want in HAPROXY_METRICS.lines() {
        assert!(ours.contains(want), "missing or different: {want}");
    }
}

#[test]
fn exporter_values_follow_haproxys_conventions() {
    let (_, snap) = golden();
    let out = prometheus(&snap);
    for want in [
        "haproxy_frontend_limit_sessions{proxy=\"fe_main\"} 1000",
        "haproxy_frontend_status{proxy=\"fe_main\",state=\"UP\"} 1",
        "haproxy_frontend_connections_total{proxy=\"fe_main\"} 4",
        "haproxy_backend_status{proxy=\"be_app\",state=\"DOWN\"} 0",
        "haproxy_backend_weight{proxy=\"be_app\"} 3",
        "haproxy_backend_agg_server_status{proxy=\"be_app\",state=\"DOWN\"} 2",
        "haproxy_backend_agg_check_status{proxy=\"be_app\",state=\"L4CON\"} 2",
        "haproxy_backend_last_session_seconds{proxy=\"li_db\"} -1",
        "haproxy_server_status{proxy=\"be_app\",server=\"s3\",state=\"DRAIN\"} 1",
        "haproxy_server_status{proxy=\"be_app\",server=\"s5\",state=\"MAINT\"} 1",
        "haproxy_server_status{proxy=\"be_app\",server=\"s2\",state=\"DOWN\"} 1",
        "haproxy_server_limit_sessions{proxy=\"be_app\",server=\"s1\"} NaN",
        "haproxy_server_limit_sessions{proxy=\"li_db\",server=\"db1\"} 20",
        "haproxy_server_queue_limit{proxy=\"li_db\",server=\"db1\"} 5",
        "haproxy_server_current_throttle{proxy=\"be_app\",server=\"s1\"} NaN",
        "haproxy_server_check_failures_total{proxy=\"be_app\",server=\"s3\"} NaN",
        "haproxy_server_check_status{proxy=\"be_app\",server=\"s1\",state=\"L4OK\"} 1",
        "haproxy_server_check_status{proxy=\"be_app\",server=\"s1\",state=\"L4CON\"} 0",
        "haproxy_server_check_code{proxy=\"be_l7\",server=\"web1\"} 200",
        "haproxy_server_check_code{proxy=\"be_app\",server=\"s2\"} 0",
        "haproxy_server_check_duration_seconds{proxy=\"be_l7\",server=\"ag1\"} 0.002000",
        "haproxy_server_connect_time_average_seconds{proxy=\"be_app\",server=\"s1\"} 0.000000",
        "haproxy_server_weight{proxy=\"be_app\",server=\"s1\"} 3",
        "haproxy_server_uweight{proxy=\"be_l7\",server=\"ag1\"} 0",
        "haproxy_process_build_info{version=\"0.1.0\"} 1",
        "haproxy_process_start_time_seconds 1795251315",
    ] {
        assert!(out.lines().any(|l| l == want), "missing {want}");
    }
    // Checks paused by maintenance and unchecked servers have no check_status at all.
    assert!(!out.contains("haproxy_server_check_status{proxy=\"li_db\",server=\"db2\""));
    assert!(!out.contains("haproxy_server_check_status{proxy=\"be_app\",server=\"s3\""));
}

#[test]
fn exporter_escapes_label_values() {
    let (_, mut snap) = golden();
    snap.servers[0].name = "we\"ird\\na\nme".into();
    let out = prometheus(&snap);
    assert!(out.contains("server=\"we\\\"ird\\\\na\\nme\""));
}

/// promtool from Debian's `prometheus` package.
fn promtool() -> Option<std::path::PathBuf> {
    let found = ["/usr/bin/promtool", "/usr/local/bin/promtool"]
        .map(std::path::PathBuf::from)
        .into_iter()
        .find(|p| p.is_file());
    if found.is_none() {
        assert!(
            std::env::var_os("SLUICE_SKIP_PROMTOOL").is_some(),
            "promtool is not installed: apt-get install prometheus (or set SLUICE_SKIP_PROMTOOL=1 to skip this check)"
        );
    }
    found
}

#[test]
fn exporter_passes_promtool() {
    let Some(promtool) = promtool() else { return };
    let (_, snap) = golden();
    let mut child = Process::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(prometheus(&snap).as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---------------------------------------------------------------------------------------------
// stats page and HTTP

#[test]
fn stats_page_is_complete_and_escaped() {
    let (_, mut snap) = golden();
    snap.backends[0].description = Some("<script>alert(1)</script> & co".into());
    snap.servers[1].name = "s2<b>".into();
    let html = stats_page(&snap, "/stats", Some(Duration::from_secs(10)), false);
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("<meta http-equiv=\"refresh\" content=\"10\">"));
    assert!(html.contains("href=\"/stats;csv;norefresh\""));
    assert!(
        !html.contains("<script>")
            && html.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; co")
    );
    assert!(html.contains("s2&lt;b&gt;") && !html.contains("s2<b>"));
    assert!(
        !html.contains("http://") && !html.contains("https://") && !html.contains("<script"),
        "self-contained"
    );
    for class in [
        "active_up",
        "active_down",
        "active_draining",
        "maintain",
        "backup_down",
        "frontend",
        "backend",
    ] {
        assert!(
            html.contains(&format!("<tr class=\"{class}\"")),
            "no {class} row"
        );
    }
    // One table per proxy, five proxies.
    assert_eq!(html.matches("<table>").count(), 5);
    // Every row has the 30 columns of the header plus its name.
    for row in html.split("<tr class=\"").skip(1) {
        let row = &row[..row.find("</tr>").unwrap()];
        if row.starts_with("grp") {
            continue;
        }
        let tds = row.matches("<td").count();
        let spans: usize = row
            .split("colspan=\"")
            .skip(1)
            .map(|s| s[..s.find('"').unwrap()].parse::<usize>().unwrap() - 1)
            .sum();
        assert_eq!(tds + spans, 31, "{row}");
    }
    assert!(!stats_page(&snap, "/stats", None, false).contains("http-equiv=\"refresh\""));
}

#[test]
fn stats_page_admin_form() {
    let (_, snap) = golden();
    let html = stats_page(&snap, "/stats", None, true);
    assert!(html.contains("<form method=\"post\" action=\"/stats\">"));
    assert!(html.contains("<input type=\"checkbox\" name=\"s\" value=\"s1\">"));
    assert!(html.contains("<input type=\"hidden\" name=\"b\" value=\"#3\">"));
    assert!(!stats_page(&snap, "/stats", None, false).contains("<form"));
}

#[test]
fn http_routes() {
    let (_, snap) = golden();
    let site = Site {
        stats_uri: Some("/stats"),
        refresh: Some(Duration::from_secs(5)),
        admin: true,
        metrics_path: Some("/metrics"),
        ..Site::default()
    };
    let get = |target: &str| {
        handle_http(
            &format!("GET {target} HTTP/1.1\r\nHost: x\r\n"),
            b"",
            &site,
            || snap.clone(),
        )
    };
    let r = get("/stats");
    assert_eq!(
        (r.status, r.content_type),
        (200, "text/html; charset=utf-8")
    );
    assert!(r.body.contains("content=\"5\""));
    assert!(!get("/stats;norefresh")
        .body
        .contains("http-equiv=\"refresh\""));
    let r = get("/stats;csv");
    assert_eq!((r.status, r.content_type), (200, "text/plain"));
    assert!(r.body.starts_with(CSV_HEADER));
    let r = get("/metrics?x=1");
    assert_eq!(
        (r.status, r.content_type),
        (200, "text/plain; version=0.0.4")
    );
    assert!(r.body.contains("haproxy_process_nbthread 2\n"));
    assert_eq!(get("/other").status, 404);
    assert_eq!(
        handle_http(
            "GET /metrics HTTP/1.1\r\n",
            b"",
            &Site {
                metrics_path: None,
                ..site
            },
            || unreachable!()
        )
        .status,
        404
    );
    let up = get("/stats;up").body;
    assert!(!up.contains("id=\"be_app/s2\"") && up.contains("id=\"be_app/s1\""));
    assert_eq!(
        handle_http("DELETE /stats HTTP/1.1\r\n", b"", &site, || unreachable!()).status,
        405
    );
    let head = handle_http("HEAD /stats;csv HTTP/1.1\r\n", b"", &site, || snap.clone());
    let wire = String::from_utf8(head.to_bytes()).unwrap();
    assert!(wire.starts_with("HTTP/1.1 200 OK\r\n") && wire.ends_with("\r\n\r\n"));
    assert!(wire.contains(&format!("content-length: {}\r\n", head.body.len())));

    // The admin form: commands to run, then a redirect like HAProxy's.
    let post = handle_http(
        "POST /stats HTTP/1.1\r\nContent-Length: 30\r\n",
        b"s=s1&s=s%32&action=drain&b=%233",
        &site,
        || unreachable!(),
    );
    assert_eq!(post.status, 303);
    assert_eq!(post.location.as_deref(), Some("/stats;st=DONE"));
    assert_eq!(post.commands.len(), 2);
    assert_eq!(
        post.commands[1],
        Command::SetServerState {
            backend: "#3".into(),
            server: "s2".into(),
            state: sluice::admin::command::ServerState::Drain
        }
    );
    let denied = handle_http(
        "POST /stats HTTP/1.1\r\n",
        b"s=s1&action=maint&b=%233",
        &Site {
            admin: false,
            ..site
        },
        || unreachable!(),
    );
    assert_eq!(
        (denied.location.as_deref(), denied.commands.len()),
        (Some("/stats;st=DENY"), 0)
    );
    let none = handle_http(
        "POST /stats;up HTTP/1.1\r\n",
        b"action=maint&b=%233",
        &site,
        || unreachable!(),
    );
    assert_eq!(none.location.as_deref(), Some("/stats;up;st=NONE"));
    assert!(get("/stats;st=DONE")
        .body
        .contains("Action processed successfully."));
    assert_eq!(
        sluice::admin::render::content_length("POST / HTTP/1.1\r\ncontent-length:  12\r\n"),
        12
    );
}

#[test]
fn hostile_requests_never_panic() {
    let (_, snap) = golden();
    let site = Site {
        stats_uri: Some("/"),
        refresh: None,
        admin: true,
        metrics_path: Some("/metrics"),
        ..Site::default()
    };
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    for _ in 0..3_000 {
        let mut b = Vec::new();
        for _ in 0..(x % 60) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            const BYTES: &[u8] = b"GETPOS /;csvup%=&+stb\r\n\x00\xff";
            b.push(BYTES[(x >> 9) as usize % BYTES.len()]);
        }
        let text = String::from_utf8_lossy(&b);
        let r = handle_http(&text, &b, &site, || snap.clone());
        let _ = r.to_bytes();
    }
}

// ---------------------------------------------------------------------------------------------
// against a live HAProxy

/// Starts HAProxy with a stats socket and a backend (no listener: no port needed) and
/// returns its `show stat` header.
#[test]
fn live_haproxy_header_matches() {
    let Some(haproxy) = reference_haproxy() else {
        return;
    };
    let dir = TempDir::new("stat-header");
    let sock = dir.path().join("admin.sock");
    let cfg = dir.write(
        "h.cfg",
        &format!(
            "global\n    stats socket {} level admin\ndefaults\n    mode tcp\n    timeout connect 1s\n    timeout client 1s\n    timeout server 1s\n\
             backend be\n    server s1 127.0.0.1:9\n",
            sock.display()
        ),
    );
    let h = Haproxy::start_with_stats(haproxy, &cfg, &sock);
    let stat = cli(&sock, "show stat");
    drop(h);
    assert!(stat.starts_with("# pxname,"), "{stat}");
    let header = stat.lines().next().unwrap().to_string() + "\n";
    let version = Process::new(haproxy)
        .arg("-v")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    if version.contains("version 2.6.") {
        assert_eq!(header, CSV_HEADER, "HAProxy 2.6's header changed?");
    } else {
        // Another version: the fields before "-" are fixed; check those only.
        let fixed = |h: &str| h[..h.find(",-,").unwrap_or(h.len())].to_string();
        assert!(fixed(&header)
            .starts_with(&fixed(CSV_HEADER)[..fixed(CSV_HEADER).len().min(fixed(&header).len())]));
    }
}
