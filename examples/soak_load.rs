//! The fixed-rate load of `benches/soak.sh`: `POST /v1/authorize` at a constant total rate over
//! keep-alive connections (open loop, as `examples/openloop.rs`: latency counts from each
//! request's *scheduled* time), cycling through seven request kinds whose answers are known for
//! each of the soak's two policy sets, for a pool of customers, with identity-provider tokens of
//! the key the soak's driver says is signing now (`DIR/current_key`, re-read every 50 ms; tokens in
//! `DIR/tokens/K<j>.txt`, one line per customer `C-1`, `C-2`, …).
//!
//! Every request carries `x-request-id: s-<n>` so `benches/soak/check.py` can find its decision
//! log line. At the end one line per request is written to OUT:
//! `n sched_us latency_us status kind key customer unavailable decision:policies`, where
//! `unavailable` is 1 when the answer's `errors` say the entity source could not be asked; the
//! first line is `# start_epoch_us <wall-clock time of scheduled offset 0>`.
//!
//! `cargo run --release --example soak_load -- ADDR RATE SECONDS CONNECTIONS DIR OUT`, or
//! `soak_load bodies CUSTOMERS` to print the request bodies, kind by kind, one per line (for the
//! wrk script that measures the maximum rate on the same mix).

use std::{
    fmt::Write as _,
    io::{BufWriter, Read, Write},
    net::TcpStream,
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

/// Request kinds; customer `C-<i>` acts for `LE-<i>`, the one entity the soak's
/// customer-management double assigns it to. `benches/soak/check.py` holds the expected answers.
const KINDS: usize = 7;

fn body(kind: usize, i: usize) -> String {
    let order = |id: &str, owner: &str, le: Option<&str>, status: Option<&str>| {
        let mut attrs = format!(r#""owner":{{"type":"Customer","id":"{owner}"}}"#);
        if let Some(le) = le {
            write!(
                attrs,
                r#","legalEntity":{{"type":"LegalEntity","id":"{le}"}}"#
            )
            .unwrap();
        }
        if let Some(s) = status {
            write!(attrs, r#","status":"{s}""#).unwrap();
        }
        format!(r#"{{"type":"Order","id":"{id}","attrs":{{{attrs}}}}}"#)
    };
    let product = |id: &str, segments: &str| {
        format!(r#"{{"type":"Product","id":"{id}","attrs":{{"segments":[{segments}]}}}}"#)
    };
    let (me, my_le, other, other_le) = (
        format!("C-{i}"),
        format!("LE-{i}"),
        format!("C-X{i}"),
        format!("LE-X{i}"),
    );
    let (action, resource) = match kind {
        // own order of another entity: own-orders, whatever the set or the entity source
        0 => ("viewOrder", order("O-own", &me, Some(&other_le), None)),
        // another customer's order of the selected entity: entity-orders, needs the assignment
        1 => ("viewOrder", order("O-le", &other, Some(&my_le), None)),
        // another customer's order of another entity: denied
        2 => ("viewOrder", order("O-x", &other, Some(&other_le), None)),
        // cancel an own order: set A permits (soak-a-cancel), set B forbids (soak-b-cancel)
        3 => ("cancelOrder", order("O-c", &me, None, None)),
        // an archived order of the selected entity: A as kind 1, B forbids (soak-b-archived)
        4 => (
            "viewOrder",
            order("O-a", &other, Some(&my_le), Some("archived")),
        ),
        // a wholesale product: segment-products, needs the entity's segments
        5 => (
            "viewProduct",
            product("P-w", r#"{"type":"Segment","id":"wholesale"}"#),
        ),
        // a public product: public-products
        _ => ("viewProduct", product("P-p", "")),
    };
    format!(r#"{{"action":"{action}","resource":{resource}}}"#)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() == 3 && args[1] == "bodies" {
        let customers: usize = args[2].parse().expect("CUSTOMERS");
        for k in 0..KINDS {
            for i in 1..=customers {
                println!("{}", body(k, i));
            }
        }
        return;
    }
    if args.len() < 7 {
        eprintln!("usage: soak_load ADDR RATE SECONDS CONNECTIONS DIR OUT");
        std::process::exit(2);
    }
    let addr = args[1].clone();
    let rate: f64 = args[2].parse().expect("RATE");
    let secs: f64 = args[3].parse().expect("SECONDS");
    let conns: usize = args[4].parse().expect("CONNECTIONS");
    let dir = args[5].clone();
    let out = args[6].clone();

    let read_tokens = |j: usize| -> Vec<String> {
        std::fs::read_to_string(format!("{dir}/tokens/K{j}.txt"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    };
    let mut keys: Vec<Vec<String>> = Vec::new();
    loop {
        let tokens = read_tokens(keys.len());
        if tokens.is_empty() {
            break;
        }
        keys.push(tokens);
    }
    assert!(!keys.is_empty(), "no tokens in {dir}/tokens/K0.txt");
    let customers = keys[0].len();
    let keys = Arc::new(keys);

    let current = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));
    {
        let (current, done, dir) = (current.clone(), done.clone(), dir.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                if let Some(j) = std::fs::read_to_string(format!("{dir}/current_key"))
                    .ok()
                    .and_then(|s| s.trim().parse().ok())
                {
                    current.store(j, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
    }

    let interval = Duration::from_secs_f64(conns as f64 / rate);
    let lead = Duration::from_millis(300);
    let start = Instant::now() + lead;
    let start_epoch_us =
        (SystemTime::now().duration_since(UNIX_EPOCH).unwrap() + lead).as_micros() as u64;
    let bodies: Arc<Vec<Vec<String>>> = Arc::new(
        (0..KINDS)
            .map(|k| (1..=customers).map(|i| body(k, i)).collect())
            .collect(),
    );
    let threads: Vec<_> = (0..conns)
        .map(|c| {
            let (addr, keys, current, bodies) =
                (addr.clone(), keys.clone(), current.clone(), bodies.clone());
            std::thread::spawn(move || {
                let mut stream: Option<TcpStream> = None;
                let offset = Duration::from_secs_f64(c as f64 / rate);
                let mut records = String::new();
                let mut buf = vec![0u8; 64 * 1024];
                let mut request = String::with_capacity(4096);
                for k in 0u32.. {
                    let due = offset + interval * k;
                    if due > Duration::from_secs_f64(secs) {
                        break;
                    }
                    let scheduled = start + due;
                    let now = Instant::now();
                    if scheduled > now {
                        std::thread::sleep(scheduled - now);
                    }
                    let n = k as usize * conns + c;
                    let kind = n % KINDS;
                    let cust = (n / KINDS) % customers;
                    let key = current.load(Ordering::Relaxed).min(keys.len() - 1);
                    let body = &bodies[kind][cust];
                    request.clear();
                    write!(
                        request,
                        "POST /v1/authorize HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\
                         x-request-id: s-{n}\r\nContent-Type: application/json\r\n\
                         Content-Length: {}\r\n\r\n{body}",
                        keys[key][cust],
                        body.len()
                    )
                    .unwrap();
                    let answer = exchange(&mut stream, &addr, request.as_bytes(), &mut buf);
                    let latency = scheduled.elapsed().as_micros();
                    let (status, unavailable, verdict) = match answer {
                        Some((status, body)) => {
                            let (u, v) = verdict(&body);
                            (status, u, v)
                        }
                        None => (0, 0, "io-error".to_string()),
                    };
                    writeln!(
                        records,
                        "{n} {} {latency} {status} {kind} {key} {} {unavailable} {verdict}",
                        due.as_micros(),
                        cust + 1
                    )
                    .unwrap();
                }
                records
            })
        })
        .collect();
    let mut file = BufWriter::new(std::fs::File::create(&out).expect("OUT"));
    writeln!(file, "# start_epoch_us {start_epoch_us}").unwrap();
    let mut total = 0;
    for t in threads {
        let r = t.join().unwrap();
        total += r.lines().count();
        file.write_all(r.as_bytes()).unwrap();
    }
    file.flush().unwrap();
    done.store(true, Ordering::Relaxed);
    println!("{total} requests written to {out}");
}

/// `(unavailable, "decision:policy,policy")` of an authorize answer (`"other"` forms when the
/// body is not one).
fn verdict(body: &[u8]) -> (u8, String) {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return (0, "not-json".into());
    };
    let Some(decision) = v["decision"].as_str() else {
        let code = v["error"]["code"].as_str().unwrap_or("no-decision");
        return (0, format!("error:{code}"));
    };
    let policies: Vec<&str> = v["policies"]
        .as_array()
        .map(|a| a.iter().filter_map(|p| p.as_str()).collect())
        .unwrap_or_default();
    let unavailable = v["errors"].as_array().is_some_and(|e| {
        e.iter()
            .any(|m| m.as_str().is_some_and(|m| m.contains("entity source")))
    });
    (
        u8::from(unavailable),
        format!("{decision}:{}", policies.join(",")),
    )
}

/// Sends `request` on the connection (opening it if needed) and reads one response: its status
/// and body. `None` (and the connection dropped) on any I/O failure; the next request reconnects.
fn exchange(
    stream: &mut Option<TcpStream>,
    addr: &str,
    request: &[u8],
    buf: &mut [u8],
) -> Option<(u16, Vec<u8>)> {
    if stream.is_none() {
        let s = TcpStream::connect(addr).ok()?;
        s.set_nodelay(true).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
        *stream = Some(s);
    }
    let s = stream.as_mut()?;
    let result = s
        .write_all(request)
        .ok()
        .and_then(|()| read_response(s, buf));
    if result.is_none() {
        *stream = None;
    }
    result
}

/// Reads one response (headers, then a `Content-Length` body).
fn read_response(stream: &mut TcpStream, buf: &mut [u8]) -> Option<(u16, Vec<u8>)> {
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
            return Some((status, buf[end + 4..end + 4 + len].to_vec()));
        }
    }
}
