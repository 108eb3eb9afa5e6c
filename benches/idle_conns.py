#!/usr/bin/env python3
"""Idle keep-alive connections against a running legate (benches/idle_conns.sh).

  idle_conns.py PORT PID TOKEN CONNS MODE [CAP]

MODE
  close  open CONNS keep-alive connections, one /v1/authorize request each, then idle; measure;
         close them from the client; measure; do it all a second time (is memory reused?).
  idle   the same, but leave them open until legate's idle timeout closes them.
  cap    legate runs with max_connections = CAP < CONNS: open CONNS at once; count how many are
         answered (the rest wait in the listen backlog); close the answered ones; count again.

RSS is VmRSS of /proc/PID/status, fds the entries of /proc/PID/fd, both read by this script.
"""

import asyncio
import json
import os
import sys
import time

BODY = json.dumps(
    {"action": "viewOrder",
     "resource": {"type": "Order", "id": "O-1",
                  "attrs": {"owner": {"type": "Customer", "id": "C-1"},
                            "legalEntity": {"type": "LegalEntity", "id": "LE-1"}}}}
).encode()


def measure(pid):
    status = open(f"/proc/{pid}/status").read()
    rss = next(int(l.split()[1]) for l in status.splitlines() if l.startswith("VmRSS:"))
    return rss / 1024, len(os.listdir(f"/proc/{pid}/fd"))


def show(label, pid):
    rss, fds = measure(pid)
    print(f"{label:<48} RSS {rss:7.1f} MiB   fds {fds:5d}", flush=True)
    return rss, fds


class Conn:
    def __init__(self):
        self.reader = self.writer = None
        self.answered = False
        self.closed_by_server = False


async def request(conn, port, req, connect_timeout):
    try:
        conn.reader, conn.writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", port), connect_timeout)
        conn.writer.write(req)
        await conn.writer.drain()
        head = await conn.reader.readuntil(b"\r\n\r\n")
        length = next(int(l.split(b":")[1]) for l in head.split(b"\r\n")
                      if l.lower().startswith(b"content-length"))
        await conn.reader.readexactly(length)
        conn.answered = head.startswith(b"HTTP/1.1 200")
    except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, StopIteration):
        pass


async def open_all(n, port, req, connect_timeout=30.0, batch=500):
    """Opens n connections (connects in batches so the listen backlog never overflows) and
    sends each its request; returns the connections and the tasks still waiting."""
    conns = [Conn() for _ in range(n)]
    tasks = []
    for i in range(0, n, batch):
        chunk = [asyncio.create_task(request(c, port, req, connect_timeout)) for c in conns[i:i + batch]]
        tasks += chunk
        await asyncio.wait(chunk, timeout=2.0)
    return conns, tasks


async def watch_eof(conn):
    try:
        data = await conn.reader.read(1)
        conn.closed_by_server = data == b""
    except OSError:
        conn.closed_by_server = True


def close_all(conns):
    for c in conns:
        if c.writer is not None:
            c.writer.close()


async def main():
    port, pid, token, n, mode = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5]
    req = (f"POST /v1/authorize HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
           f"Content-Type: application/json\r\nContent-Length: {len(BODY)}\r\n\r\n").encode() + BODY
    # warm up on one connection: lazy statics, the token cache, the policy snapshot's caches
    warm = Conn()
    await request(warm, port, req, 5)
    for _ in range(20):
        warm.writer.write(req)
        await warm.writer.drain()
        head = await warm.reader.readuntil(b"\r\n\r\n")
        length = next(int(l.split(b":")[1]) for l in head.split(b"\r\n") if l.lower().startswith(b"content-length"))
        await warm.reader.readexactly(length)
    warm.writer.close()
    await asyncio.sleep(1)
    show("before (started, 21 requests served)", pid)

    if mode in ("close", "idle"):
        rounds = 2 if mode == "close" else 1
        for r in range(1, rounds + 1):
            conns, tasks = await open_all(n, port, req)
            await asyncio.gather(*tasks)
            answered = sum(c.answered for c in conns)
            await asyncio.sleep(2)
            show(f"round {r}: {answered}/{n} answered, all open, idle", pid)
            if mode == "close":
                close_all(conns)
                await asyncio.sleep(3)
                show(f"round {r}: 3 s after the client closed them", pid)
            else:
                watchers = [asyncio.create_task(watch_eof(c)) for c in conns if c.reader]
                idle = float(sys.argv[6])
                # the last connection went idle when opening finished: wait the timeout from then
                await asyncio.sleep(idle + 3 - 2)
                closed = sum(c.closed_by_server for c in conns)
                show(f"idle_timeout_secs {idle:g} + 3 s: {closed}/{n} closed by legate", pid)
                for w in watchers:
                    w.cancel()
                close_all(conns)
                await asyncio.sleep(2)
                show("2 s after the client closed the rest", pid)
    elif mode == "cap":
        cap = int(sys.argv[6])
        conns, tasks = await open_all(n, port, req, connect_timeout=60.0)
        await asyncio.sleep(3)
        answered = [c for c in conns if c.answered]
        show(f"cap {cap}: {len(answered)}/{n} answered, the rest waiting", pid)
        connected = sum(c.writer is not None for c in conns)
        print(f"    connections established by the client (kernel backlog included): {connected}")
        close_all(answered)
        await asyncio.sleep(3)
        first = {id(c) for c in answered}
        later = [c for c in conns if c.answered and id(c) not in first]
        show(f"3 s after closing those {len(answered)}: {len(later)} more answered", pid)
        close_all(conns)
        for t in tasks:
            t.cancel()
        await asyncio.sleep(3)
        show("3 s after closing all", pid)


if __name__ == "__main__":
    asyncio.run(main())
