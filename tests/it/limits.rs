//! The connection limits of `[limits]` against the real binary over raw sockets: a client that does
//! not send its request head within `header_timeout_secs` is dropped, an idle keep-alive connection
//! is closed after `idle_timeout_secs`, and beyond `max_connections` new connections wait (those
//! open keep being served) until one closes.

use std::{
    io::{ErrorKind, Read, Write},
    net::{SocketAddr, TcpStream},
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use crate::common::{
    self,
    process::{self, LegateProcess, ServeDir},
};

/// A `legate serve` with the given `[limits]` entries.
struct Legate {
    _process: LegateProcess,
    addr: SocketAddr,
    dir: ServeDir,
}

impl Legate {
    fn start(limits: &[(&str, i64)]) -> Self {
        let dir = ServeDir::new();
        let process = dir.start(|t| {
            let mut l = toml::Table::new();
            for (k, v) in limits {
                l.insert((*k).into(), (*v).into());
            }
            t.insert("limits".into(), l.into());
        });
        Self {
            addr: process.addr,
            _process: process,
            dir,
        }
    }

    fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        s
    }
}

const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: legate\r\n\r\n";

/// Reads one response (head and `Content-Length` body); its status line.
fn read_response(s: &mut TcpStream) -> String {
    read_full(s).0
}

/// Reads one response; its status line and body.
fn read_full(s: &mut TcpStream) -> (String, String) {
    let (head, body) = process::read_response(s);
    let status = head.lines().next().unwrap().to_string();
    (status, String::from_utf8(body).unwrap())
}

/// Blocks until the server closes `s` (EOF or reset); how long that took and what was read.
fn wait_closed(s: &mut TcpStream, since: Instant) -> (Duration, Vec<u8>) {
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return (since.elapsed(), got),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return (since.elapsed(), got),
            Err(e) => panic!("still open after {:?} ({e})", since.elapsed()),
        }
    }
}

#[test]
fn a_half_sent_request_line_is_dropped_after_the_header_timeout() {
    let legate = Legate::start(&[("header_timeout_secs", 1), ("idle_timeout_secs", 30)]);
    let mut s = legate.connect();
    let sent = Instant::now();
    s.write_all(b"GET /healthz HT").unwrap();
    let (took, got) = wait_closed(&mut s, sent);
    assert!(
        got.is_empty(),
        "answered: {}",
        String::from_utf8_lossy(&got)
    );
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(4),
        "dropped after {took:?}"
    );
    // A silent connection gets the same deadline from accept.
    let mut silent = legate.connect();
    let (took, _) = wait_closed(&mut silent, Instant::now());
    assert!(
        took < Duration::from_secs(4),
        "silent: dropped after {took:?}"
    );
    // Others are still served.
    let mut ok = legate.connect();
    ok.write_all(HEALTHZ).unwrap();
    assert!(read_response(&mut ok).starts_with("HTTP/1.1 200"));
}

#[test]
fn headers_trickled_slowly_are_dropped_after_the_header_timeout() {
    let legate = Legate::start(&[("header_timeout_secs", 2), ("idle_timeout_secs", 30)]);
    let mut s = legate.connect();
    let mut writer = s.try_clone().unwrap();
    let sent = Instant::now();
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let trickle = thread::spawn(move || {
        writer.write_all(b"GET /healthz HTTP/1.1\r\n").unwrap();
        // A header line every 200 ms: always some progress, never the whole head.
        for i in 0..60 {
            if stop_rx.recv_timeout(Duration::from_millis(200)).is_ok() {
                return;
            }
            if writer
                .write_all(format!("X-Slow-{i}: a\r\n").as_bytes())
                .is_err()
            {
                return;
            }
        }
    });
    let (took, got) = wait_closed(&mut s, sent);
    let _ = stop_tx.send(());
    trickle.join().unwrap();
    assert!(
        got.is_empty(),
        "answered: {}",
        String::from_utf8_lossy(&got)
    );
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(6),
        "dropped after {took:?}"
    );
}

#[test]
fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    // The header timeout (1 s) is shorter than the idle one (3 s): idle time is not head time.
    let legate = Legate::start(&[("header_timeout_secs", 1), ("idle_timeout_secs", 3)]);
    let mut busy = legate.connect();
    let mut idle = legate.connect();
    for s in [&mut busy, &mut idle] {
        s.write_all(HEALTHZ).unwrap();
        assert!(read_response(s).starts_with("HTTP/1.1 200"));
    }
    let answered = Instant::now();
    // Within the idle timeout the connection is kept and serves the next request.
    thread::sleep(Duration::from_secs(2));
    busy.write_all(HEALTHZ).unwrap();
    assert!(read_response(&mut busy).starts_with("HTTP/1.1 200"));
    let (took, got) = wait_closed(&mut idle, answered);
    assert!(got.is_empty());
    assert!(
        took >= Duration::from_millis(2900) && took < Duration::from_secs(6),
        "idle connection closed after {took:?}"
    );
}

#[test]
fn beyond_max_connections_new_connections_wait_and_are_served_when_one_closes() {
    let legate = Legate::start(&[
        ("max_connections", 2),
        ("header_timeout_secs", 30),
        ("idle_timeout_secs", 30),
    ]);
    let mut first = legate.connect();
    let mut second = legate.connect();
    for s in [&mut first, &mut second] {
        s.write_all(HEALTHZ).unwrap();
        assert!(read_response(s).starts_with("HTTP/1.1 200"));
    }
    // The third connects (the kernel's backlog) but is not served while two are open.
    let mut third = legate.connect();
    third.write_all(HEALTHZ).unwrap();
    third
        .set_read_timeout(Some(Duration::from_millis(1500)))
        .unwrap();
    let mut byte = [0u8; 1];
    match third.read(&mut byte) {
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
        other => panic!("the third connection was served or closed: {other:?}"),
    }
    // The open ones keep being served.
    for s in [&mut first, &mut second] {
        s.write_all(HEALTHZ).unwrap();
        assert!(read_response(s).starts_with("HTTP/1.1 200"));
    }
    // One closes: the waiting one is served.
    drop(first);
    third
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    assert!(read_response(&mut third).starts_with("HTTP/1.1 200"));
    second.write_all(HEALTHZ).unwrap();
    assert!(read_response(&mut second).starts_with("HTTP/1.1 200"));
}

#[test]
fn a_slow_body_is_answered_408_by_the_request_timeout_not_dropped_by_the_header_timeout() {
    let legate = Legate::start(&[
        ("header_timeout_secs", 1),
        ("idle_timeout_secs", 30),
        ("request_timeout_secs", 2),
    ]);
    let token = common::sign(&legate.dir.idp.ed, &common::claims("C-1", Some("LE-1")));
    let body = common::order("O-1", "C-2", Some("LE-1")).to_string();
    let mut s = legate.connect();
    let sent = Instant::now();
    write!(
        s,
        "POST /v1/authorize HTTP/1.1\r\nHost: legate\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{}",
        body.len(),
        &body[..body.len() / 2]
    )
    .unwrap();
    let (status, body) = read_full(&mut s);
    let took = sent.elapsed();
    assert!(status.starts_with("HTTP/1.1 408"), "{status}");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"]["code"], "request_timeout", "{body}");
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(5),
        "answered after {took:?}"
    );
}
