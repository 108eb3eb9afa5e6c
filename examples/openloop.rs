//! An open-loop HTTP/1.1 load generator for `benches/fast_path.sh`: sends requests at a fixed total
//! rate over keep-alive connections and reports latency percentiles measured from each request's
//! *scheduled* time (so a slow answer delays and counts against the requests behind it, instead of
//! hiding them: no coordinated omission). wrk has no rate control, and wrk2 is not packaged here.
//!
//! One thread per connection, sleeping to each send time (Linux oversleeps by ~0.05–0.1 ms; run it
//! against the hello-world baseline at the same rate to see the harness's own floor).
//!
//! `cargo run --release --example openloop -- ADDR PATH RATE SECONDS CONNECTIONS BODY_FILE [TOKEN]`

use std::{
    io::{Read, Write},
    net::TcpStream,
    time::{Duration, Instant},
};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 7 {
        eprintln!("usage: openloop ADDR PATH RATE SECONDS CONNECTIONS BODY_FILE [TOKEN]");
        std::process::exit(2);
    }
    let addr = args[1].clone();
    let path = &args[2];
    let rate: f64 = args[3].parse().expect("RATE");
    let secs: f64 = args[4].parse().expect("SECONDS");
    let conns: usize = args[5].parse().expect("CONNECTIONS");
    let body = std::fs::read(&args[6]).expect("BODY_FILE");
    let auth = args
        .get(7)
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(&body);

    let total = (rate * secs) as usize;
    let interval = Duration::from_secs_f64(conns as f64 / rate);
    let start = Instant::now() + Duration::from_millis(200);
    let threads: Vec<_> = (0..conns)
        .map(|c| {
            let addr = addr.clone();
            let request = request.clone();
            std::thread::spawn(move || {
                let mut stream = TcpStream::connect(&addr).expect("connect");
                stream.set_nodelay(true).unwrap();
                let offset = Duration::from_secs_f64(c as f64 / rate);
                let mut lat = Vec::with_capacity(total / conns + 1);
                let mut errors = 0usize;
                let mut buf = vec![0u8; 64 * 1024];
                let mut k = 0u32;
                loop {
                    let scheduled = start + offset + interval * k;
                    if scheduled.duration_since(start) > Duration::from_secs_f64(secs) {
                        break;
                    }
                    let now = Instant::now();
                    if scheduled > now {
                        std::thread::sleep(scheduled - now);
                    }
                    stream.write_all(&request).expect("write");
                    match read_response(&mut stream, &mut buf) {
                        Some(200) => lat.push(scheduled.elapsed().as_micros() as u64),
                        Some(_) => errors += 1,
                        None => panic!("connection closed"),
                    }
                    k += 1;
                }
                (lat, errors)
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut errors = 0;
    for t in threads {
        let (l, e) = t.join().unwrap();
        all.extend(l);
        errors += e;
    }
    all.sort_unstable();
    let pct = |p: f64| {
        if all.is_empty() {
            return 0.0;
        }
        all[((all.len() as f64 * p) as usize).min(all.len() - 1)] as f64 / 1000.0
    };
    println!(
        "rate {rate} req/s for {secs} s over {conns} connections: {} ok, {errors} not 200; latency ms p50 {:.3} p90 {:.3} p99 {:.3} max {:.3}",
        all.len(),
        pct(0.50),
        pct(0.90),
        pct(0.99),
        all.last().copied().unwrap_or(0) as f64 / 1000.0
    );
}

/// Reads one response (headers, then a `Content-Length` body); returns its status.
fn read_response(stream: &mut TcpStream, buf: &mut [u8]) -> Option<u16> {
    let mut filled = 0;
    loop {
        let n = stream.read(&mut buf[filled..]).ok()?;
        if n == 0 {
            return None;
        }
        filled += n;
        let head = &buf[..filled];
        if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            let text = std::str::from_utf8(&head[..end]).ok()?;
            let status: u16 = text.split_whitespace().nth(1)?.parse().ok()?;
            let len: usize = text
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            while filled < end + 4 + len {
                let n = stream.read(&mut buf[filled..]).ok()?;
                if n == 0 {
                    return None;
                }
                filled += n;
            }
            return Some(status);
        }
    }
}
