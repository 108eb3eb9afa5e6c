//! Graceful shutdown of the real binary: on SIGTERM legate stops accepting, lets in-flight requests
//! finish, and exits 0; a request that outlives `shutdown.grace_secs` does not keep it alive.
//!
//! The in-flight request is held open by sending its body slowly over a raw `TcpStream`.

use std::{
    io::Write,
    net::{SocketAddr, TcpStream},
    thread,
    time::{Duration, Instant},
};

use crate::common::{
    claims, order,
    process::{self, LegateProcess, ServeDir},
    sign,
};

/// Where tower-http's trace layer logs the start of each request.
const ON_REQUEST: &str = "tower_http::trace::on_request";

/// A `legate serve` process (killed if the test ends early) with its identity provider's keys.
struct Legate {
    process: LegateProcess,
    addr: SocketAddr,
    dir: ServeDir,
}

impl Legate {
    fn start(grace_secs: u64) -> Self {
        let dir = ServeDir::new();
        let config = dir.config(|t| {
            t["log"]
                .as_table_mut()
                .unwrap()
                .insert("level".into(), "info".into());
            let mut shutdown = toml::Table::new();
            shutdown.insert("grace_secs".into(), (grace_secs as i64).into());
            t.insert("shutdown".into(), shutdown.into());
        });
        let mut cmd = ServeDir::command(&config);
        // tower-http's "started processing request" (debug) tells when a request is in flight.
        cmd.env("LEGATE_LOG", format!("info,{ON_REQUEST}=debug"));
        let process = LegateProcess::start(cmd);
        Self {
            addr: process.addr,
            process,
            dir,
        }
    }

    /// Waits (bounded) until legate has begun `n` requests: their heads have arrived and they are
    /// in flight.
    fn wait_in_flight(&self, n: usize) {
        self.process
            .wait_for_messages("started processing request", n);
    }

    /// Starts `POST /v1/authorize` and sends all but the last `held` bytes of the body.
    fn start_request(&self, held: usize) -> (TcpStream, Vec<u8>) {
        let token = sign(&self.dir.idp.ed, &claims("C-1", Some("LE-1")));
        let body = order("O-1", "C-2", Some("LE-1")).to_string().into_bytes();
        let head = format!(
            "POST /v1/authorize HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            self.addr,
            body.len()
        );
        let mut s = TcpStream::connect(self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(head.as_bytes()).unwrap();
        let split = body.len() - held;
        s.write_all(&body[..split]).unwrap();
        s.flush().unwrap();
        (s, body[split..].to_vec())
    }
}

/// Reads one HTTP response from `s`: its head and JSON body.
fn read_response(s: &mut TcpStream) -> (String, serde_json::Value) {
    let (head, body) = process::read_response(s);
    (head, serde_json::from_slice(&body).unwrap())
}

#[test]
fn sigterm_stops_accepting_lets_in_flight_requests_finish_and_exits_0() {
    let mut legate = Legate::start(10);
    let (mut first, rest_1) = legate.start_request(10);
    let (mut second, rest_2) = legate.start_request(1);
    legate.wait_in_flight(2);

    legate.process.signal("TERM");
    legate
        .process
        .wait_for_message("SIGTERM received, shutting down");

    // New connections are refused once the listener is closed.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match TcpStream::connect_timeout(&legate.addr, Duration::from_millis(200)) {
            Err(_) => break,
            Ok(_) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
            Ok(_) => panic!("legate still accepts connections after SIGTERM"),
        }
    }
    // ...but the process waits for the two requests still being sent.
    thread::sleep(Duration::from_millis(300));
    assert!(
        legate.process.child.try_wait().unwrap().is_none(),
        "exited early"
    );

    for (s, rest) in [(&mut first, rest_1), (&mut second, rest_2)] {
        s.write_all(&rest).unwrap();
        let (head, body) = read_response(s);
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert_eq!(body["decision"], "allow", "{body}");
        assert_eq!(body["policies"], serde_json::json!(["entity-orders"]));
    }
    let status = legate.process.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0));
}

#[test]
fn a_request_that_outlives_the_grace_period_does_not_keep_legate_alive() {
    let mut legate = Legate::start(1);
    let (_held, _) = legate.start_request(5);
    legate.wait_in_flight(1);
    let sent = Instant::now();
    legate.process.signal("TERM");
    let status = legate.process.wait_exit(Duration::from_secs(8));
    let took = sent.elapsed();
    assert_eq!(status.code(), Some(0));
    assert!(
        took >= Duration::from_millis(900),
        "exited after {took:?}, before the grace period"
    );
    legate
        .process
        .wait_for_message("in-flight requests did not finish within the grace period");
}
