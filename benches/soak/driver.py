#!/usr/bin/env python3
"""The soak run's world around legate (benches/soak.sh): the identity provider's JWKS server whose
keys rotate every minute, the customer-management service (the HTTP entity source) that flaps, the
policy reloads every 2 s between two sets, refresh races against Redis, retired-key probes, and an
RSS / fd sampler. Everything it does is logged to CSV files in WORK for benches/soak/check.py.

  driver.py prepare WORK KEYS CUSTOMERS      keys, JWKs, tokens (WORK/tokens/K<j>.txt), policies
  driver.py serve WORK JWKS_PORT ENTITY_PORT  the two servers; chaos starts when WORK/go appears
  driver.py hashes WORK URL                   the /v1/policies hash of set A and of set B

Key rotation, per minute m of the run (T0 = start): legate's load signs with key K<m> from
T0+60m (WORK/current_key); the JWKS is {K<m-1>, K<m>} for the first 20 s of the minute and
{K<m>, K<m+1>} after, so a key is published 40 s before tokens signed by it are used and removed
20 s after they stop. legate reads the JWKS at start and again only on an unknown kid (at most
once per jwks_min_refresh_secs), so a removed key's tokens keep verifying until legate next reads
the document; the probes (tokens of retired keys, every 2 s and once a minute) check exactly that.
"""

import base64
import http.client
import http.server
import json
import os
import shutil
import socketserver
import sys
import threading
import time
import uuid

ISSUER = "https://idp.soak.test"
AUDIENCE = "storefront"
KID = "soak-K{}"

SET_A = """// Soak set A: customers may cancel their own orders.
@id("soak-a-cancel")
permit (principal, action == Shop::Action::"cancelOrder", resource is Shop::Order)
when { resource.owner == principal };
"""
SET_B = """// Soak set B: cancelling is forbidden, and archived orders are hidden.
@id("soak-b-cancel")
forbid (principal, action == Shop::Action::"cancelOrder", resource is Shop::Order)
when { resource.owner == principal };

@id("soak-b-archived")
forbid (principal, action == Shop::Action::"viewOrder", resource is Shop::Order)
when { resource has status && resource.status == "archived" };
"""

PUBLIC_PRODUCT = json.dumps(
    {"action": "viewProduct", "resource": {"type": "Product", "id": "P-probe", "attrs": {"segments": []}}}
)


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def now():
    return time.time()


# ---------------------------------------------------------------------------------------- prepare


def prepare(work, keys, customers):
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    os.makedirs(f"{work}/tokens", exist_ok=True)
    os.makedirs(f"{work}/keys", exist_ok=True)
    jwks = []
    issued = int(now())
    for j in range(keys):
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        with open(f"{work}/keys/K{j}.pem", "wb") as f:
            f.write(
                key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            )
        pub = key.public_key().public_numbers()
        n = pub.n.to_bytes((pub.n.bit_length() + 7) // 8, "big")
        e = pub.e.to_bytes((pub.e.bit_length() + 7) // 8, "big")
        jwks.append({"kty": "RSA", "kid": KID.format(j), "use": "sig", "alg": "RS256", "n": b64(n), "e": b64(e)})
        header = b64(json.dumps({"alg": "RS256", "typ": "JWT", "kid": KID.format(j)}).encode())
        lines = []
        for i in range(1, customers + 1):
            claims = {
                "iss": ISSUER,
                "sub": f"C-{i}",
                "aud": AUDIENCE,
                "iat": issued,
                "nbf": issued,
                "exp": issued + 4 * 3600,
                "legalEntityId": f"LE-{i}",
                "jti": str(uuid.uuid4()),
            }
            signing = f"{header}.{b64(json.dumps(claims).encode())}"
            sig = key.sign(signing.encode(), padding.PKCS1v15(), hashes.SHA256())
            lines.append(f"{signing}.{b64(sig)}")
        with open(f"{work}/tokens/K{j}.txt", "w") as f:
            f.write("\n".join(lines) + "\n")
    with open(f"{work}/jwks-all.json", "w") as f:
        json.dump(jwks, f)
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    pol = f"{work}/policies"
    os.makedirs(pol, exist_ok=True)
    for name in ("schema.cedarschema", "orders.cedar", "products.cedar", "legal_entities.cedar", "entities.json"):
        shutil.copy(f"{repo}/policies/{name}", pol)
    with open(f"{pol}/soak.cedar", "w") as f:
        f.write(SET_A)
    with open(f"{work}/current_key", "w") as f:
        f.write("0\n")


def write_set(work, which):
    tmp = f"{work}/policies/soak.cedar.tmp"
    with open(tmp, "w") as f:
        f.write(SET_A if which == "A" else SET_B)
    os.replace(tmp, f"{work}/policies/soak.cedar")


def policy_hash(url):
    host, port = url.removeprefix("http://").split(":")
    c = http.client.HTTPConnection(host, int(port), timeout=5)
    c.request("GET", "/v1/policies")
    body = json.loads(c.getresponse().read())
    c.close()
    return body["hash"]


def hashes(work, url):
    """Serves set B, then A again, and records the hash /v1/policies shows for each."""
    out = {"A": policy_hash(url)}
    for which in ("B", "A"):
        write_set(work, which)
        deadline = now() + 10
        while now() < deadline:
            h = policy_hash(url)
            if which == "B" and h != out["A"] or which == "A" and h == out["A"]:
                break
            time.sleep(0.05)
        else:
            sys.exit(f"set {which} was not served within 10 s")
        out[which] = h
    with open(f"{work}/hashes.json", "w") as f:
        json.dump(out, f)
    print(json.dumps(out))


# ------------------------------------------------------------------------------------------ serve


class Log:
    """An append-only CSV file, one line per event, flushed as written."""

    def __init__(self, path, header):
        self.f = open(path, "w")
        self.lock = threading.Lock()
        self.write(header)

    def write(self, *fields):
        with self.lock:
            self.f.write(" ".join(str(x) for x in fields) + "\n")
            self.f.flush()


class Quiet(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


class World:
    def __init__(self, work, jwks_port, entity_port):
        self.work = work
        self.jwks_all = json.load(open(f"{work}/jwks-all.json"))
        self.published = [0]
        self.entity_mode = "up"
        self.entity_port = entity_port
        self.stop = threading.Event()
        self.fetches = Log(f"{work}/jwks_fetches.csv", "t kids")
        self.flaps = Log(f"{work}/flaps.csv", "t state")
        world = self

        class Jwks(Quiet):
            def do_GET(self):
                kids = list(world.published)
                world.fetches.write(f"{now():.6f}", ",".join(KID.format(j) for j in kids))
                self.answer(200, {"keys": [world.jwks_all[j] for j in kids]})

        class Entities(Quiet):
            def do_GET(self):
                if world.entity_mode != "up":
                    return self.answer(503, {"error": "down for maintenance"})
                # /customers/C-<i>/legal-entities -> assigned to LE-<i> only
                parts = self.path.split("/")
                customer = parts[2] if len(parts) > 3 else ""
                if not customer.startswith("C-") or not customer[2:].isdigit():
                    return self.answer(200, [])
                i = customer[2:]
                self.answer(200, [{"id": f"LE-{i}", "name": f"Entity {i}", "segments": ["wholesale"], "default": True}])

        self.jwks_server = Server(("127.0.0.1", jwks_port), Jwks)
        threading.Thread(target=self.jwks_server.serve_forever, daemon=True).start()
        self.entity_handler = Entities
        self.entity_server = None
        self.entities_up()

    # --- the customer-management service
    def entities_up(self):
        if self.entity_server is None:
            for _ in range(100):
                try:
                    self.entity_server = Server(("127.0.0.1", self.entity_port), self.entity_handler)
                    break
                except OSError:
                    time.sleep(0.05)
            threading.Thread(target=self.entity_server.serve_forever, daemon=True).start()
        self.entity_mode = "up"
        self.flaps.write(f"{now():.6f}", "up")

    def entities_down(self, mode):
        # logged first: shutting the listener down takes up to half a second (serve_forever's
        # poll), during which legate's calls already fail
        self.flaps.write(f"{now():.6f}", mode)
        self.entity_mode = mode
        if mode == "refused" and self.entity_server is not None:
            self.entity_server.shutdown()
            self.entity_server.server_close()
            self.entity_server = None

    def flapper(self, t0, end, up_secs, down_secs):
        k = 0
        t = t0 + up_secs
        while not self.sleep_until(t, end):
            self.entities_down("refused" if k % 2 == 0 else "503")
            if self.sleep_until(t + down_secs, end):
                break
            self.entities_up()
            t += up_secs + down_secs
            k += 1
        if self.entity_mode != "up":
            self.entities_up()

    def sleep_until(self, t, end):
        """Sleeps until t; True when the run ends (end reached or stop set) first."""
        while True:
            left = min(t, end) - now()
            if left <= 0:
                return t > end or self.stop.is_set()
            if self.stop.wait(min(left, 0.5)):
                return True

    # --- policies
    def reloader(self, t0, end, every):
        log = Log(f"{self.work}/reloads.csv", "t set")
        k = 1
        while not self.sleep_until(t0 + every * k, end):
            which = "B" if k % 2 else "A"
            write_set(self.work, which)
            log.write(f"{now():.6f}", which)
            k += 1

    # --- keys
    def rotator(self, t0, end, url, keys):
        log = Log(f"{self.work}/rotations.csv", "t what key published")
        probes = Log(f"{self.work}/probes.csv", "t_send t_recv kid status code")
        tokens = [open(f"{self.work}/tokens/K{j}.txt").read().split() for j in range(keys)]
        host, port = url.removeprefix("http://").split(":")

        def probe(j):
            c = http.client.HTTPConnection(host, int(port), timeout=10)
            sent = now()
            try:
                c.request(
                    "POST",
                    "/v1/authorize",
                    PUBLIC_PRODUCT,
                    {"Authorization": f"Bearer {tokens[j][0]}", "Content-Type": "application/json",
                     "x-request-id": f"p-{uuid.uuid4()}"},
                )
                r = c.getresponse()
                body = r.read()
                status = r.status
                code = json.loads(body).get("error", {}).get("code", "-") if status != 200 else "-"
            except Exception as e:  # noqa: BLE001 - recorded, not hidden
                status, code = 0, type(e).__name__
            probes.write(f"{sent:.6f}", f"{now():.6f}", KID.format(j), status, code)
            c.close()

        minute = 0
        next_probe = t0 + 2
        while True:
            m = int((now() - t0) // 60)
            if now() >= end or self.stop.is_set():
                break
            if m >= keys - 1:
                break
            if m != minute:
                minute = m
                with open(f"{self.work}/current_key.tmp", "w") as f:
                    f.write(f"{m}\n")
                os.replace(f"{self.work}/current_key.tmp", f"{self.work}/current_key")
                log.write(f"{now():.6f}", "signing", KID.format(m), ",".join(KID.format(j) for j in self.published))
            into = now() - t0 - 60 * m
            want = [m, m + 1] if into >= 20 else ([m - 1, m] if m >= 1 else [0])
            if want != self.published:
                self.published = want
                log.write(f"{now():.6f}", "published", KID.format(m), ",".join(KID.format(j) for j in want))
            if now() >= next_probe:
                next_probe += 2
                if m >= 1:
                    probe(m - 1)
                if m >= 2 and 50 <= into < 52:
                    probe(m - 2)
            time.sleep(0.05)

    # --- refresh races
    def racer(self, t0, end, url, customers):
        log = Log(
            f"{self.work}/races.csv",
            "t round customer attempt a_status a_code b_status b_code after_access after_refresh verdict",
        )
        host, port = url.removeprefix("http://").split(":")

        def post(path, body, bearer=None):
            c = http.client.HTTPConnection(host, int(port), timeout=10)
            headers = {"Content-Type": "application/json"}
            if bearer:
                headers["Authorization"] = f"Bearer {bearer}"
            try:
                c.request("POST", path, json.dumps(body) if not isinstance(body, str) else body, headers)
                r = c.getresponse()
                data = r.read()
                try:
                    payload = json.loads(data)
                except ValueError:
                    payload = {}
                return r.status, payload
            except Exception as e:  # noqa: BLE001
                return 0, {"error": {"code": type(e).__name__}}
            finally:
                c.close()

        def code(payload):
            e = payload.get("error")
            return (e.get("code") if isinstance(e, dict) else e) or "-"

        rnd = 0
        while now() < end and not self.stop.is_set():
            rnd += 1
            i = rnd % customers + 1
            key = int(open(f"{self.work}/current_key").read())
            idp = open(f"{self.work}/tokens/K{key}.txt").read().split()[i - 1]
            status, pair = post("/v1/token/refresh", {"legal_entity_id": f"LE-{i}"}, idp)
            if status != 200:
                log.write(f"{now():.6f}", rnd, f"C-{i}", 0, status, code(pair), "-", "-", "-", "-", "exchange-failed")
                time.sleep(0.5)
                continue
            refresh = pair["refresh_token"]
            winners = 0
            for attempt in range(1, 31):
                barrier = threading.Barrier(2)
                results = [None, None]

                def race(slot):
                    barrier.wait()
                    results[slot] = post("/v1/token/refresh", {"refresh_token": refresh})

                threads = [threading.Thread(target=race, args=(s,)) for s in (0, 1)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                (sa, pa), (sb, pb) = results
                statuses = sorted([sa, sb])
                won = [p for s, p in results if s == 200]
                winners += len(won)
                after_access = after_refresh = "-"
                if statuses == [200, 400] and {code(pa), code(pb)} <= {"-", "invalid_grant"}:
                    # the loser was a reuse: the family is revoked, the winner's tokens with it
                    after_access, _ = post("/v1/authorize", PUBLIC_PRODUCT, won[0]["access_token"])
                    after_refresh, p = post("/v1/token/refresh", {"refresh_token": won[0]["refresh_token"]})
                    after_refresh = f"{after_refresh}/{code(p)}"
                    verdict = "one-winner" if after_access == 401 and after_refresh == "400/invalid_grant" else "family-not-revoked"
                elif statuses == [200, 503]:
                    verdict = "one-winner-other-503"
                elif statuses == [503, 503]:
                    verdict = "both-503-retry"
                else:
                    verdict = "VIOLATION"
                if winners > 1:
                    verdict = "VIOLATION"
                log.write(f"{now():.6f}", rnd, f"C-{i}", attempt, sa, code(pa), sb, code(pb), after_access, after_refresh, verdict)
                if verdict != "both-503-retry" or now() > end:
                    break
                time.sleep(1)
            time.sleep(0.2)

    # --- the process
    def sampler(self, t0, end, pid, every):
        log = Log(f"{self.work}/samples.csv", "t rss_kb fds threads")
        while not self.sleep_until(t0 + every * int((now() - t0) / every + 1), end + every):
            try:
                status = open(f"/proc/{pid}/status").read()
                rss = next(l.split()[1] for l in status.splitlines() if l.startswith("VmRSS:"))
                threads = next(l.split()[1] for l in status.splitlines() if l.startswith("Threads:"))
                fds = len(os.listdir(f"/proc/{pid}/fd"))
            except (OSError, StopIteration):
                break
            log.write(f"{now():.6f}", rss, fds, threads)


def serve(work, jwks_port, entity_port):
    world = World(work, jwks_port, entity_port)
    open(f"{work}/driver.ready", "w").close()
    while not os.path.exists(f"{work}/go"):
        time.sleep(0.05)
    go = json.load(open(f"{work}/go"))
    t0, end = go["t0"], go["t0"] + go["seconds"]
    while now() < t0:
        time.sleep(0.01)
    keys = len(world.jwks_all)
    jobs = [
        threading.Thread(target=world.reloader, args=(t0, end, go["reload_secs"])),
        threading.Thread(target=world.rotator, args=(t0, end, go["url"], keys)),
        threading.Thread(target=world.flapper, args=(t0, end, go["up_secs"], go["down_secs"])),
        threading.Thread(target=world.racer, args=(t0, end, go["url"], go["customers"])),
        threading.Thread(target=world.sampler, args=(t0, end, go["pid"], go["sample_secs"])),
    ]
    for j in jobs:
        j.start()
    for j in jobs:
        j.join()
    open(f"{work}/driver.done", "w").close()
    # keep the JWKS and entity servers up until soak.sh stops this process
    while True:
        time.sleep(1)


if __name__ == "__main__":
    cmd, work = sys.argv[1], sys.argv[2]
    if cmd == "prepare":
        prepare(work, int(sys.argv[3]), int(sys.argv[4]))
    elif cmd == "serve":
        serve(work, int(sys.argv[3]), int(sys.argv[4]))
    elif cmd == "hashes":
        hashes(work, sys.argv[3])
    else:
        sys.exit(__doc__)
