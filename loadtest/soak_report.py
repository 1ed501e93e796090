#!/usr/bin/env python3
"""Turns the raw output of loadtest/soak.sh into the soak section of
loadtest/RESULTS.md and the PNG of RSS and p99 over time.

Usage: soak_report.py WORK_DIR OUT_MD OUT_PNG

WORK_DIR holds meta.json, samples.tsv (RSS once a second), events.tsv
(certificate rotations, policy reloads), metrics.after and segments/NNN/
with one oha JSON summary and one oha SQLite file per generator (ir, ar).
The section between the soak markers of OUT_MD is replaced (appended when
absent); the rest of the file is left as it is.
"""

import glob
import json
import math
import os
import re
import sqlite3
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

BEGIN = "<!-- soak:begin -->"
END = "<!-- soak:end -->"
WINDOW = 10.0  # seconds per p99 point in the plot
# "Flat", stated up front: the last third of the soak against the first
# third after its first minute (connection set-up, allocator warm-up).
RSS_GROWTH_LIMIT = 1.20  # max RSS, last third / first third
P99_GROWTH_LIMIT = 1.5  # median one-minute p99, last third / first third
P99_CEILING_MS = 100.0  # worst one-minute p99: 1% of the apiserver's webhook timeout
APISERVER_BUDGET_MS = 10_000.0  # the ValidatingWebhookConfiguration default timeout


def percentile(sorted_vals, p):
    if not sorted_vals:
        return float("nan")
    i = max(0, min(len(sorted_vals) - 1, math.ceil(p * len(sorted_vals)) - 1))
    return sorted_vals[i]


def read_tsv(path):
    with open(path) as f:
        header = f.readline().rstrip("\n").split("\t")
        return [dict(zip(header, line.rstrip("\n").split("\t"))) for line in f if line.strip()]


def errors_of(summary):
    transport = sum(summary.get("errorDistribution", {}).values())
    non200 = sum(v for k, v in summary.get("statusCodeDistribution", {}).items() if k != "200")
    return transport + non200


def main():
    work, out_md, out_png = sys.argv[1:4]
    meta = json.load(open(os.path.join(work, "meta.json")))
    t0 = float(meta["t0"])
    t1 = float(meta["t1"])

    minutes = []  # (minute, ok, errors, p50, p99, max, rps)
    points = []  # (t, latency_ms) of every answered request
    total_ok = 0
    total_errors = 0
    for seg in sorted(glob.glob(os.path.join(work, "segments", "*"))):
        minute = int(os.path.basename(seg))
        lat = []
        ok = errors = 0
        rps = 0.0
        for gen in ("ir", "ar"):
            summary = json.load(open(os.path.join(seg, f"{gen}.json")))
            ok += sum(v for k, v in summary["statusCodeDistribution"].items() if k == "200")
            errors += errors_of(summary)
            rps += summary["summary"]["requestsPerSec"]
            con = sqlite3.connect(os.path.join(seg, f"{gen}.db"))
            for run, start, corrected, duration in con.execute(
                "select run, start, start_latency_correction, duration from oha"
            ):
                # With a rate, oha's corrected start is when the request was
                # due: latency counted from then includes any queueing.
                began = corrected if corrected is not None else start
                ms = (duration + (start - began)) * 1000.0
                lat.append(ms)
                points.append((run + start - t0, ms))
            con.close()
        lat.sort()
        total_ok += ok
        total_errors += errors
        minutes.append(
            (minute, ok, errors, percentile(lat, 0.5), percentile(lat, 0.99), lat[-1] if lat else float("nan"), rps)
        )

    samples = read_tsv(os.path.join(work, "samples.tsv"))
    rss = [(float(s["time"]) - t0, int(s["rss_kib"]) / 1024.0) for s in samples if s["rss_kib"]]
    threads = [int(s["threads"]) for s in samples if s["threads"]]
    hz = float(meta["hz"])
    ticks = [(float(s["time"]) - t0, int(s["cpu_ticks"])) for s in samples if s.get("cpu_ticks")]

    gen = [
        (float(s["time"]) - t0, int(s["gen_busy"]), int(s["gen_all"]), int(s["steal"]))
        for s in samples
        if s.get("gen_all")
    ]

    def gen_between(a, b):
        inside = [g for g in gen if a <= g[0] <= b]
        if len(inside) < 2 or inside[-1][2] == inside[0][2]:
            return float("nan"), float("nan")
        first, last = inside[0], inside[-1]
        busy = 100.0 * (last[1] - first[1]) / (last[2] - first[2])
        steal = 100.0 * (last[3] - first[3]) / hz / (last[0] - first[0])
        return busy, steal

    def cpu_between(a, b):
        inside = [(t, c) for t, c in ticks if a <= t <= b]
        if len(inside) < 2:
            return float("nan")
        (ta, ca), (tb, cb) = inside[0], inside[-1]
        return 100.0 * (cb - ca) / hz / (tb - ta) if tb > ta else float("nan")

    fds = [int(s["fds"]) for s in samples if s["fds"]]
    events = read_tsv(os.path.join(work, "events.tsv"))
    rotations = [float(e["time"]) - t0 for e in events if e["event"] == "cert-served"]
    reloads = [float(e["time"]) - t0 for e in events if e["event"] == "policy-reloaded"]
    refused = [float(e["time"]) - t0 for e in events if e["event"] == "policy-refused"]

    metrics = open(os.path.join(work, "metrics.after")).read()

    def metric(series):
        m = re.search(r"^" + re.escape(series) + r" (\S+)$", metrics, re.M)
        return float(m.group(1)) if m else 0.0

    tls_ok = metric('imagegate_tls_reloads_total{result="success"}')
    tls_err = metric('imagegate_tls_reloads_total{result="error"}')
    pol_ok = metric('imagegate_policy_reloads_total{result="success"}')
    pol_err = metric('imagegate_policy_reloads_total{result="error"}')

    # Flatness.
    duration = t1 - t0
    third = (duration - 60.0) / 3.0
    first = [v for t, v in rss if 60.0 <= t < 60.0 + third]
    last = [v for t, v in rss if t >= duration - third]
    rss_ratio = (max(last) / max(first)) if first and last else float("nan")
    # p99 is judged by trend (growth from the first third to the last) and
    # by a ceiling; single minutes vary with what else the machine runs.
    third_n = max(1, (len(minutes) - 1) // 3)
    p99_first = percentile(sorted(m[4] for m in minutes[1 : 1 + third_n]), 0.5)
    p99_last = percentile(sorted(m[4] for m in minutes[-third_n:]), 0.5)
    p99_ratio = p99_last / p99_first if p99_first > 0 else float("nan")
    p99_worst = max(m[4] for m in minutes)
    worst_max = max(m[5] for m in minutes)
    verdicts = {
        "errors": total_errors == 0,
        "rss": rss_ratio <= RSS_GROWTH_LIMIT,
        # A trend needs a first and a last third after minute 1.
        "p99": len(minutes) < 4 or p99_ratio <= P99_GROWTH_LIMIT,
        "p99_ceiling": p99_worst <= P99_CEILING_MS,
        "budget": worst_max < APISERVER_BUDGET_MS,
        "rotations": len(rotations) == int(meta["minutes"]),
        "reloads": len(reloads) == int(meta["minutes"]),
    }

    # Plot: RSS and 10-second p99 over time, reload and rotation marks.
    windows = {}
    for t, ms in points:
        windows.setdefault(int(t // WINDOW), []).append(ms)
    wx, wy = [], []
    for k in sorted(windows):
        vals = sorted(windows[k])
        if len(vals) >= 100:  # a window cut by a segment boundary says little
            wx.append((k + 0.5) * WINDOW / 60.0)
            wy.append(percentile(vals, 0.99))
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(10, 6.5), sharex=True)
    ax1.plot([t / 60.0 for t, _ in rss], [v for _, v in rss], color="tab:blue", lw=1.2)
    ax1.set_ylabel("RSS (MiB)")
    ax1.set_ylim(bottom=0, top=max(v for _, v in rss) * 1.3)
    ax1.set_title(
        f"imagegate soak: {meta['minutes']} min at {float(meta['fraction']):.0%} of saturation "
        f"({int(meta['rate_ir']) + int(meta['rate_ar'])} req/s), cert rotation + policy reload each minute"
    )
    ax2.plot(wx, wy, color="tab:red", lw=1.2, marker=".", ms=3)
    ax2.set_ylabel(f"p99 latency per {WINDOW:.0f} s (ms)")
    ax2.set_ylim(bottom=0, top=max(wy) * 1.3 if wy else 1)
    ax2.set_xlabel("minutes since the soak started")
    for ax in (ax1, ax2):
        for i, t in enumerate(rotations):
            ax.axvline(t / 60.0, color="tab:green", lw=0.6, ls="--", label="certificate rotated" if i == 0 else None)
        for i, t in enumerate(reloads):
            ax.axvline(t / 60.0, color="tab:purple", lw=0.6, ls=":", label="policy reloaded" if i == 0 else None)
        for i, t in enumerate(refused):
            ax.axvline(t / 60.0, color="black", lw=0.8, label="broken policy refused" if i == 0 else None)
        ax.grid(alpha=0.3)
    ax1.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)

    mark = lambda ok: "PASS" if ok else "FAIL"  # noqa: E731
    rel_png = os.path.relpath(out_png, os.path.dirname(os.path.abspath(out_md)))
    lines = [
        BEGIN,
        "## Soak",
        "",
        f"Written by `loadtest/soak.sh` on {meta['started']}–{meta['ended']}; do not edit by hand, re-run the script.",
        "",
        f"![RSS and p99 over the soak]({rel_png})",
        "",
        f"- Commit {meta['commit']}{' (with uncommitted changes)' if meta['dirty'] == 'yes' else ''}, "
        f"{meta['cpu']}, {meta['nproc']} CPUs, {meta['oha']}, {meta['rustc']}; load average at the end {meta['loadavg']}.",
        f"- Saturation, measured first with the same two generators closed-loop: ImageReview {float(meta['sat_ir']):.0f} req/s "
        f"+ AdmissionReview {float(meta['sat_ar']):.0f} req/s, the server using {meta['sat_cpu']}% of its core "
        "(below 100%: the two generators on their one core were the limit, so this is the saturation of the "
        f"load this machine can generate). The soak offers {float(meta['fraction']):.0%} of each: "
        f"{meta['rate_ir']} + {meta['rate_ar']} req/s, fixed-rate with oha's latency correction (a late request's wait counts).",
        "- Generators, as two apiservers: HTTP/2 with 3 connections × 21 streams sending 7 ImageReviews in turn "
        "(containers, init containers, the ephemeral-containers call, exempt namespace; allowed and denied), and "
        "HTTP/1.1 with 21 keep-alive connections sending 7 AdmissionReviews in turn (Pod with ephemeral containers, "
        "Deployment, CronJob, StatefulSet, DaemonSet; allowed and denied). One oha segment per minute; "
        + ("server pinned to CPU 1, generators to CPU 0, " if meta["pin"] == "1" else "no CPU pinning, ")
        + f"niceness {meta['nice']}.",
        "- Every minute: at +20 s a new server certificate (new key) is renamed into place and the script waits until "
        "a fresh TLS handshake is served it; at +40 s the policy is rewritten (two variants that decide these bodies "
        "alike) and the script waits for the next `imagegate_policy_generation`. In minute 8 a broken policy is written "
        "first: it must be counted as a reload error while the generation, and the answers, stay.",
        "- Latency is what the generators measured, counted from when each request was due (latency "
        "correction), so it includes their own delays on their shared core; single minutes vary with what "
        "else the machine runs, hence a trend and a ceiling rather than minute-to-minute checks.",
        f"- After every minute each of the 14 bodies is sent once more and its decision checked against what it "
        f"must get: {meta['checks']} checks, all as expected (the script stops at the first that is not).",
        "",
        "| check | criterion | measured | verdict |",
        "| --- | --- | --- | --- |",
        f"| failed requests | 0 (transport errors and non-200 answers) | {total_errors} of {total_ok + total_errors} | {mark(verdicts['errors'])} |",
        f"| RSS flat | max RSS of the last third ≤ {RSS_GROWTH_LIMIT:.2f}× that of the first third (after minute 1) | "
        f"{max(first) if first else float('nan'):.1f} → {max(last) if last else float('nan'):.1f} MiB ({rss_ratio:.3f}×) | {mark(verdicts['rss'])} |",
        f"| p99 flat | median one-minute p99 of the last {third_n} minutes ≤ {P99_GROWTH_LIMIT:.1f}× that of minutes 2–{1 + third_n} | "
        + (f"{p99_first:.2f} → {p99_last:.2f} ms ({p99_ratio:.2f}×) | {mark(verdicts['p99'])} |"
         if len(minutes) >= 4 else "not judged: shorter than 4 minutes | n/a |"),
        f"| p99 ceiling | every one-minute p99 ≤ {P99_CEILING_MS:.0f} ms (1% of the apiserver's 10 s timeout) | "
        f"worst {p99_worst:.2f} ms | {mark(verdicts['p99_ceiling'])} |",
        f"| slowest request | below the apiserver's 10 s webhook timeout | {worst_max:.1f} ms | {mark(verdicts['budget'])} |",
        f"| certificate rotations served | one per minute | {len(rotations)} | {mark(verdicts['rotations'])} |",
        f"| policy reloads applied | one per minute | {len(reloads)} (+ {len(refused)} broken policy refused) | {mark(verdicts['reloads'])} |",
        "",
        f"Server counters at the end: `imagegate_tls_reloads_total` success {tls_ok:.0f}, error {tls_err:.0f}; "
        f"`imagegate_policy_reloads_total` success {pol_ok:.0f}, error {pol_err:.0f}; threads {min(threads)}–{max(threads)}, "
        f"open file descriptors {min(fds)}–{max(fds)} over the soak.",
        "",
        "| minute | answered | failed | req/s | p50 ms | p99 ms | max ms | server CPU | generators' core busy | steal |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for minute, ok, errors, p50, p99, mx, rps in minutes:
        window = ((minute - 1) * 60.0, minute * 60.0)
        cpu = cpu_between(*window)
        busy, steal = gen_between(*window)
        lines.append(
            f"| {minute} | {ok} | {errors} | {rps:.0f} | {p50:.3f} | {p99:.3f} | {mx:.1f} | {cpu:.0f}% "
            f"| {busy:.0f}% | {steal:.1f}% |"
        )
    lines += [
        "",
        "Re-run: `loadtest/soak.sh` (see its header for MINUTES, FRACTION, PIN).",
        END,
    ]
    section = "\n".join(lines) + "\n"

    text = open(out_md).read() if os.path.exists(out_md) else "# Load test results\n"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        text = head + section.rstrip("\n") + tail
    else:
        text = text.rstrip("\n") + "\n\n" + section
    with open(out_md, "w") as f:
        f.write(text)
    failed = [k for k, v in verdicts.items() if not v]
    if failed:
        print(f"soak_report.py: failed checks: {', '.join(failed)}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
