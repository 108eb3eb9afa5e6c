#!/usr/bin/env python3
"""Checks a soak run (benches/soak.sh) and writes its per-minute series.

  check.py WORK CSV_OUT [SAMPLES_OUT]

Reads the load generator's records (WORK/records.txt, examples/soak_load.rs), legate's decision log
(WORK/decisions.log) and the driver's logs (benches/soak/driver.py), and reports:

- answers of the fixed-rate load other than 200 (target 0: every token it sends is valid);
- decisions inconsistent with the snapshot that served them: each load request's decision log line
  (joined on x-request-id) names the snapshot by `policy_hash`; the line's and the response's
  answer (decision and determining policies) must be the one that set gives for that request kind,
  with or without the entity source's data (the answer's `errors` say which), and the two must agree;
- answers that say the entity source was unavailable while the double was up (it is asked on a
  cache miss, so "unavailable" must overlap a down period, with 0.5 s of slack);
- refresh races (exactly one winner per refresh token, the loser's reuse revoking the family);
- retired-key probes against what the JWKS fetch log says legate last read;
- RSS, fds and p50/p99 per minute (CSV_OUT), and the 5-s RSS/fd samples (SAMPLES_OUT).
"""

import bisect
import json
import sys
from array import array
from collections import Counter, defaultdict

KIND_NAMES = ["own-order", "entity-order", "foreign-order", "cancel-own", "archived-entity-order",
              "segment-product", "public-product"]


def expected(kind, which, unavailable):
    """The one answer `decision:policies` of a request kind under set A or B."""
    avail = not unavailable
    return {
        0: "allow:own-orders",
        1: "allow:entity-orders" if avail else "deny:",
        2: "deny:",
        3: "allow:soak-a-cancel" if which == "A" else "deny:soak-b-cancel",
        4: ("allow:entity-orders" if avail else "deny:") if which == "A" else "deny:soak-b-archived",
        5: "allow:segment-products" if avail else "deny:",
        6: "allow:public-products",
    }[kind]


def pct(sorted_values, p):
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * p))]


def rows(path):
    with open(path) as f:
        next(f)
        for line in f:
            yield line.split()


def main(work, csv_out, samples_out=None):
    go = json.load(open(f"{work}/go"))
    t0 = go["t0"]
    hashes = json.load(open(f"{work}/hashes.json"))
    set_of_hash = {hashes["A"]: "A", hashes["B"]: "B"}

    # --- the load's own records
    with open(f"{work}/records.txt") as f:
        start_epoch = int(f.readline().split()[2]) / 1e6
    answers = {}  # "decision:policies" -> code
    names = []

    def code_of(a):
        if a not in answers:
            answers[a] = len(names)
            names.append(a)
        return answers[a]

    total = sum(1 for _ in open(f"{work}/records.txt")) - 1
    kind = array("b", [-1]) * total
    unav = array("b", [0]) * total
    ans = array("i", [0]) * total
    status = array("h", [0]) * total
    sched = array("d", [0.0]) * total
    lat = array("d", [0.0]) * total
    by_minute = defaultdict(list)
    statuses = Counter()
    non200_by_minute = Counter()
    unav_by_minute = Counter()
    for r in rows(f"{work}/records.txt"):
        n = int(r[0])
        if n >= total:
            continue
        kind[n], status[n], unav[n] = int(r[4]), int(r[3]), int(r[7])
        ans[n] = code_of(r[8] if len(r) > 8 else "")
        sched[n] = start_epoch + int(r[1]) / 1e6
        lat[n] = int(r[2]) / 1e3
        minute = int((sched[n] - t0) // 60)
        by_minute[minute].append(lat[n])
        statuses[status[n]] += 1
        if status[n] != 200:
            non200_by_minute[minute] += 1
        if unav[n]:
            unav_by_minute[minute] += 1

    # --- the decision log
    seen = array("b", [0]) * total
    inconsistent = []
    served = Counter()
    served_by_minute = defaultdict(Counter)
    others = Counter()
    with open(f"{work}/decisions.log") as f:
        for line in f:
            try:
                d = json.loads(line)
            except ValueError:
                others["not-json"] += 1
                continue
            rid = d.get("request_id") or ""
            which = set_of_hash.get(d.get("policy_hash"))
            answer = f"{d['decision']}:{','.join(d['policies'])}"
            log_unav = any("entity source" in e for e in d.get("errors", []))
            if not rid.startswith("s-"):
                # probes (public product) and the races' selectLegalEntity checks
                want = "allow:public-products" if rid.startswith("p-") else "allow:select-assigned-entity"
                key = "probe" if rid.startswith("p-") else d.get("action", "?")
                others[key] += 1
                if which is None or answer != want:
                    inconsistent.append(("other", rid, d.get("policy_hash"), answer, want))
                continue
            n = int(rid[2:])
            if n >= total or kind[n] < 0:
                others["unknown-request"] += 1
                continue
            seen[n] = 1
            if which is None:
                inconsistent.append(("unknown-hash", n, d.get("policy_hash"), answer, ""))
                continue
            served[which] += 1
            served_by_minute[int((sched[n] - t0) // 60)][which] += 1
            want = expected(kind[n], which, log_unav)
            if answer != want or names[ans[n]] != answer or bool(unav[n]) != log_unav:
                inconsistent.append((KIND_NAMES[kind[n]], n, which, answer, want, names[ans[n]]))
    missing = sum(1 for n in range(total) if status[n] == 200 and not seen[n])
    # answers to load requests that no snapshot could have given (checked without the log)
    impossible = sum(
        1 for n in range(total)
        if status[n] == 200 and names[ans[n]] not in {expected(kind[n], s, unav[n]) for s in "AB"}
    )

    # --- entity source: "unavailable" only while it was down
    flaps = [(float(t), s) for t, s in rows(f"{work}/flaps.csv")]
    down = []
    for (t, s), nxt in zip(flaps, flaps[1:] + [(float("inf"), "up")]):
        if s != "up":
            down.append((t, nxt[0]))
    down_starts = [d[0] for d in down]
    unav_outside = 0
    for n in range(total):
        if unav[n]:
            t_sent, t_done = sched[n], sched[n] + lat[n] / 1e3
            i = bisect.bisect_right(down_starts, t_done + 0.05) - 1
            if i < 0 or down[i][1] + 0.5 < t_sent:
                unav_outside += 1

    # --- policy reloads, JWKS fetches, races, probes
    reloads = [float(r[0]) for r in rows(f"{work}/reloads.csv")]
    fetches = [(float(r[0]), set(r[1].split(","))) for r in rows(f"{work}/jwks_fetches.csv")]
    fetch_times = [f[0] for f in fetches]
    races = list(rows(f"{work}/races.csv"))
    final = {}
    for r in races:
        final[r[1]] = r  # the last attempt of each round decides it
    race_verdicts = Counter(r[-1] for r in final.values())
    attempts = Counter(r[-1] for r in races)
    exchange_status = Counter(r[4] for r in races if r[-1] == "exchange-failed")
    probe_results = Counter()
    probe_bad = []
    for t_send, t_recv, kid, st, code in rows(f"{work}/probes.csv"):
        t_send, t_recv = float(t_send), float(t_recv)
        i = bisect.bisect_left(fetch_times, t_send - 0.05) - 1
        before = fetches[i][1] if i >= 0 else set()
        during = [f[1] for f in fetches if t_send - 0.05 <= f[0] <= t_recv]
        known = kid in before
        if known:
            want = 200 if all(kid in d for d in during) else None
        else:
            want = 200 if during and all(kid in d for d in during) else (401 if all(kid not in d for d in during) else None)
        if want is None:
            probe_results["ambiguous"] += 1
        elif int(st) == want:
            probe_results[f"{'accepted' if want == 200 else 'refused'} as expected"] += 1
        else:
            probe_results["UNEXPECTED"] += 1
            probe_bad.append((t_send - t0, kid, st, code, want))

    samples = [(float(r[0]), int(r[1]), int(r[2]), int(r[3])) for r in rows(f"{work}/samples.csv")]
    if samples_out:
        with open(samples_out, "w") as out:
            out.write("# seconds_since_start rss_mib fds threads\n")
            for t, rss, fds, threads in samples:
                out.write(f"{t - t0:.1f} {rss / 1024:.1f} {fds} {threads}\n")

    # --- per minute
    # the last few requests are scheduled at exactly the end (plus the start skew): not a minute
    minutes = sorted(m for m in by_minute if 0 <= m < go["seconds"] // 60)
    with open(csv_out, "w") as out:
        out.write("# minute requests non2xx p50_ms p99_ms max_ms rss_mib fds set_a set_b reloads jwks_fetches "
                  "entity_unavailable races_one_winner race_violations\n")
        for m in minutes:
            lats = sorted(by_minute[m])
            lo, hi = t0 + 60 * m, t0 + 60 * (m + 1)
            in_min = [s for s in samples if lo < s[0] <= hi]
            rss = in_min[-1][1] / 1024 if in_min else float("nan")
            fds = in_min[-1][2] if in_min else -1
            rounds = [r for r in final.values() if lo <= float(r[0]) < hi]
            out.write(
                f"{m} {len(lats)} {non200_by_minute[m]} {pct(lats, 0.5):.3f} {pct(lats, 0.99):.3f} {lats[-1]:.3f} "
                f"{rss:.1f} {fds} {served_by_minute[m]['A']} {served_by_minute[m]['B']} "
                f"{sum(lo <= t < hi for t in reloads)} {sum(lo <= t < hi for t in fetch_times)} {unav_by_minute[m]} "
                f"{sum(r[-1].startswith('one-winner') for r in rounds)} "
                f"{sum(r[-1] in ('VIOLATION', 'family-not-revoked') for r in rounds)}\n"
            )

    report = [
        f"load: {total} requests at {go['rate']:.0f} req/s for {go['seconds']} s; statuses {dict(statuses)}",
        f"load answers other than 200: {total - statuses[200]}",
        f"decision log lines of load requests: {int(sum(seen))}; 200 answers with no log line: {missing}",
        f"served by set A: {served['A']}, set B: {served['B']}; other log lines: {dict(others)}",
        f"decisions inconsistent with the snapshot that served them: {len(inconsistent)}",
        f"answers no policy set gives (response alone): {impossible}",
        f"answers with the entity source unavailable: {int(sum(unav))}; of them outside a down period: {unav_outside}",
        f"entity source down periods: {len(down)}; policy reloads: {len(reloads)}; JWKS fetches: {len(fetches)}",
        f"refresh races: {len(final)} rounds; final verdicts {dict(race_verdicts)}; attempts {dict(attempts)}; "
        f"exchanges refused {dict(exchange_status)}",
        f"retired-key probes: {dict(probe_results)}",
        f"RSS MiB first/last/max sample: {samples[0][1] / 1024:.1f} / {samples[-1][1] / 1024:.1f} / "
        f"{max(s[1] for s in samples) / 1024:.1f}; fds first/last/max: {samples[0][2]} / {samples[-1][2]} / "
        f"{max(s[2] for s in samples)}" if samples else "no samples",
    ]
    for x in inconsistent[:10]:
        report.append(f"  inconsistent: {x}")
    for x in probe_bad[:10]:
        report.append(f"  unexpected probe (s after start, kid, status, code, expected): {x}")
    for r in [r for r in final.values() if r[-1] in ("VIOLATION", "family-not-revoked")][:10]:
        report.append(f"  race: {' '.join(r)}")
    text = "\n".join(report)
    print(text)
    with open(f"{work}/summary.txt", "w") as f:
        f.write(text + "\n")


if __name__ == "__main__":
    main(*sys.argv[1:4])
