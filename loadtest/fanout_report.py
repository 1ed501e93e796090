#!/usr/bin/env python3
"""Turns the raw output of loadtest/fanout.sh into FANOUT.md and the PNG.

Usage: fanout_report.py WORK_DIR OUT_MD OUT_PNG

WORK_DIR holds meta.json, phases.tsv, samples.tsv, bodies/mix.tsv,
policy.used.yaml, sample-answers.tsv, vmhwm and phase/<name>/ with one oha
JSON summary and one oha SQLite file per apiserver and body kind, plus
metrics.before/after (imagegate's /metrics around the phase).
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

# Sizing assumptions for a 5,000-node cluster (stated in the report).
NODES = 5000
PODS_PER_NODE = 30
PEAK_POD_CREATES = 500  # pods/s at a rollout peak: all 150,000 pods re-created in 5 minutes
PODS_PER_WORKLOAD_OBJECT = 10  # a rollout of ~10 pods touches 1 Deployment + 1 ReplicaSet
BURST = 2.0  # within-second burstiness on top of the per-second peak
UTILIZATION = 0.5  # plan replicas at half of the highest rate one replica held
P99_BUDGET_MS = 100.0  # a held rate: p99 at most this, >= 97% of offered, no errors
CONTROL_PLANES = 3
TRIM_START = 3.0  # seconds at a phase's start left out of the steady-state figures (connection set-up)
TRIM_END = 2.0  # and at its end (generators stop and write their files at slightly different times)


def percentile(sorted_vals, p):
    if not sorted_vals:
        return float("nan")
    i = max(0, min(len(sorted_vals) - 1, math.ceil(p / 100 * len(sorted_vals)) - 1))
    return sorted_vals[i]


def parse_metrics(path):
    out = {}
    if not os.path.exists(path):
        return out
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})?)\s+(\S+)", line)
            if m:
                try:
                    out[m.group(1)] = float(m.group(3))
                except ValueError:
                    pass
    return out


def metric_delta(before, after, prefix):
    """Deltas of every series whose name starts with prefix, non-zero only."""
    res = {}
    for k, v in after.items():
        if k.startswith(prefix) and not k.startswith(prefix + "_bucket"):
            d = v - before.get(k, 0.0)
            if d:
                res[k] = d
    return res


def fmt(v, nd=1):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    return f"{v:,.{nd}f}"


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    work, out_md, out_png = sys.argv[1:4]
    meta = json.load(open(os.path.join(work, "meta.json"), encoding="utf-8"))
    clk = float(meta["clk"])
    mix = []
    with open(os.path.join(work, "bodies", "mix.tsv"), encoding="utf-8") as f:
        for line in f:
            kind, path, weight, expected, n, desc = line.rstrip("\n").split("\t")
            mix.append({"kind": kind, "path": path, "weight": int(weight), "expected": expected,
                        "containers": int(n), "desc": desc})
    apiservers = int(meta["apiservers"])
    h2 = int(meta["h2"])

    samples = []
    with open(os.path.join(work, "samples.tsv"), encoding="utf-8") as f:
        for line in f:
            p = line.split()
            if len(p) == 7:
                samples.append([float(x) for x in p])

    phases = []
    with open(os.path.join(work, "phases.tsv"), encoding="utf-8") as f:
        for line in f:
            name, rate, secs, t0, t1, ticks = line.split()
            phases.append({"name": name, "rate": int(rate), "secs": int(secs), "t0": float(t0),
                           "t1": float(t1), "ticks": int(ticks)})

    per_second = {}  # absolute second -> list of latencies (ms)
    for ph in phases:
        d = os.path.join(work, "phase", ph["name"])
        lat, all_lat = [], []
        per_sec_ph = {}
        w0, w1 = ph["t0"] + TRIM_START, ph["t0"] + ph["secs"] - TRIM_END
        by_kind = {m["kind"]: [] for m in mix}
        by_proto = {"HTTP/2": [], "HTTP/1.1": []}
        ok = errors = non2xx = aborted = 0
        err_kinds = {}
        for js in sorted(glob.glob(os.path.join(d, "as*-*.json"))):
            base = os.path.basename(js)[:-5]
            a = int(base[2:base.index("-")])
            kind = base[base.index("-") + 1:]
            o = json.load(open(js, encoding="utf-8"))
            for code, n in o.get("statusCodeDistribution", {}).items():
                if code.startswith("2"):
                    ok += n
                else:
                    non2xx += n
                    err_kinds[f"HTTP {code}"] = err_kinds.get(f"HTTP {code}", 0) + n
            for e, n in o.get("errorDistribution", {}).items():
                if "aborted due to deadline" in e:
                    aborted += n  # not sent or not finished by the generator's end
                    continue
                errors += n
                err_kinds[e] = err_kinds.get(e, 0) + n
            db = os.path.join(d, base + ".db")
            if os.path.exists(db):
                con = sqlite3.connect(db)
                # `end` is relative to the process start; every process of a
                # phase starts within a fraction of a second of the phase start.
                rows = con.execute("select end, duration, status from oha").fetchall()
                con.close()
                for end, dur, status in rows:
                    if not 200 <= status < 300:
                        continue
                    ms = dur * 1000.0
                    t = ph["t0"] + end
                    per_second.setdefault(int(t), []).append(ms)
                    all_lat.append(ms)
                    if not w0 <= t <= w1:
                        continue
                    lat.append(ms)
                    per_sec_ph.setdefault(int(t), []).append(ms)
                    by_kind[kind].append(ms)
                    by_proto["HTTP/2" if a <= h2 else "HTTP/1.1"].append(ms)
        lat.sort()
        all_lat.sort()
        sec_p99 = sorted(percentile(sorted(v), 99) for v in per_sec_ph.values() if v)
        ph["sec_p99_median"] = percentile(sec_p99, 50)
        ph["sec_over_budget"] = sum(1 for v in sec_p99 if v > P99_BUDGET_MS)
        ph["sec_count"] = len(sec_p99)
        steady = w1 - w0
        ph.update({
            "ok": ok, "errors": errors, "non2xx": non2xx, "aborted": aborted, "err_kinds": err_kinds,
            "tput": len(lat) / steady if steady > 0 else float("nan"),
            "p50": percentile(lat, 50), "p90": percentile(lat, 90), "p99": percentile(lat, 99),
            "max": lat[-1] if lat else float("nan"), "rows": len(lat),
            "all_p99": percentile(all_lat, 99), "all_max": all_lat[-1] if all_lat else float("nan"),
            # the server is busy only while the generators send: over -z seconds
            "cpu": 100.0 * ph["ticks"] / clk / ph["secs"],
        })
        ph["us_per_review"] = ph["ticks"] / clk * 1e6 / ok if ok > 0 else float("nan")
        ph["kind_p"] = {k: (len(v), percentile(sorted(v), 50), percentile(sorted(v), 99)) for k, v in by_kind.items()}
        ph["proto_p"] = {k: (len(v), percentile(sorted(v), 50), percentile(sorted(v), 99)) for k, v in by_proto.items()}
        win = [s for s in samples if w0 <= s[0] <= w1]
        ph["rss_max"] = max((s[2] for s in win), default=float("nan")) / 1024
        ph["rss_mean"] = (sum(s[2] for s in win) / len(win) / 1024) if win else float("nan")

        def busy(i0, i1):
            if len(win) < 2:
                return float("nan")
            db, dt = win[-1][i0] - win[0][i0], win[-1][i1] - win[0][i1]
            return 100.0 * db / dt if dt else float("nan")
        ph["cpu0"] = busy(3, 4)
        ph["cpu1"] = busy(5, 6)
        mb = parse_metrics(os.path.join(d, "metrics.before"))
        ma = parse_metrics(os.path.join(d, "metrics.after"))
        ph["reviews"] = metric_delta(mb, ma, "imagegate_reviews_total")
        ph["decisions"] = metric_delta(mb, ma, "imagegate_image_decisions_total")
        ph["verify_cache"] = metric_delta(mb, ma, "imagegate_verify_cache_total")
        ph["verifications"] = metric_delta(mb, ma, "imagegate_verifications_total")
        ph["registry"] = metric_delta(mb, ma, "imagegate_registry_requests_total")

    # ------------------------------------------------------------ plot
    t_base = min(ph["t0"] for ph in phases)
    secs = sorted(per_second)
    # drop the partial first/last second of each phase to keep the lines honest
    xs, p50s, p99s, rps = [], [], [], []
    for s in secs:
        v = sorted(per_second[s])
        xs.append(s - t_base)
        p50s.append(percentile(v, 50))
        p99s.append(percentile(v, 99))
        rps.append(len(v))
    fig, axes = plt.subplots(3, 1, figsize=(12, 10), sharex=True, constrained_layout=True)
    ax = axes[0]
    ax.plot(xs, p50s, label="p50", color="tab:blue", lw=1.5)
    ax.plot(xs, p99s, label="p99", color="tab:red", lw=1.5)
    ax.set_yscale("log")
    ax.set_ylabel("latency (ms, log)")
    ax.set_title(f"imagegate apiserver fan-out: {apiservers} apiservers ({h2} HTTP/2, {apiservers - h2} HTTP/1.1), "
                 "review mix, per-second percentiles of answered reviews")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right")
    axes[1].plot(xs, rps, color="tab:green", lw=1.5)
    axes[1].set_ylabel("answered reviews/s")
    axes[1].grid(True, alpha=0.3)
    sx = [s[0] - t_base for s in samples]
    ax2 = axes[2]
    ax2.plot(sx, [s[2] / 1024 for s in samples], color="tab:purple", lw=1.5, label="imagegate RSS (MiB)")
    ax2.set_ylabel("RSS (MiB)")
    ax2.set_ylim(0, max(s[2] for s in samples) / 1024 * 2)
    ax2.grid(True, alpha=0.3)
    ax3 = ax2.twinx()
    cpu_x, cpu_y = [], []
    for a, b in zip(samples, samples[1:]):
        dt = b[0] - a[0]
        if dt > 0:
            cpu_x.append(b[0] - t_base)
            cpu_y.append(100.0 * (b[1] - a[1]) / clk / dt)
    ax3.plot(cpu_x, cpu_y, color="tab:orange", lw=1, alpha=0.8, label="imagegate CPU (% of one core)")
    ax3.set_ylabel("CPU (% of one core)")
    ax3.set_ylim(0, 160)
    ax3.set_yticks(range(0, 101, 20))
    lines = ax2.get_legend_handles_labels()[0] + ax3.get_legend_handles_labels()[0]
    ax2.legend(lines, [ln.get_label() for ln in lines], loc="upper left")
    ax2.set_xlabel("seconds since the first measured phase")
    for i, ph in enumerate(phases):
        for a in axes:
            a.axvspan(ph["t0"] - t_base, ph["t1"] - t_base, color="grey" if i % 2 else "lightblue", alpha=0.15)
        label = "saturation" if ph["rate"] == 0 else f"{ph['rate']:,}/s offered"
        axes[0].text((ph["t0"] + ph["t1"]) / 2 - t_base, 0.97, label, transform=axes[0].get_xaxis_transform(),
                     ha="center", va="top", fontsize=9)
    ax2.set_xlim(-2, max(ph["t1"] for ph in phases) - t_base + 2)
    fig.savefig(out_png, dpi=100)

    # ------------------------------------------------------------ sizing
    mean_containers = sum(m["weight"] * m["containers"] for m in mix) / 100
    held = [ph for ph in phases if ph["rate"] > 0 and ph["errors"] == 0 and ph["non2xx"] == 0
            and ph["tput"] >= 0.97 * ph["rate"] and ph["sec_count"] > 0
            and ph["sec_over_budget"] <= 0.1 * ph["sec_count"]]
    sat = [ph for ph in phases if ph["rate"] == 0]
    cap = max((ph["rate"] for ph in held), default=0)
    plan = cap * UTILIZATION
    pods = NODES * PODS_PER_NODE
    ir_rate = PEAK_POD_CREATES  # one ImageReview per pod create
    ar_rate = PEAK_POD_CREATES * (1 + 2 / PODS_PER_WORKLOAD_OBJECT)  # pod + Deployment + ReplicaSet
    ar_design = ar_rate * BURST
    # sidecar mode: each apiserver has its own imagegate; with one control-plane
    # node down the other two carry all ImageReviews.
    ir_per_sidecar = ir_rate / (CONTROL_PLANES - 1) * BURST
    needed = math.ceil(ar_design / plan) if plan > 0 else None
    if needed is not None:
        n_plus_1 = max(3, needed + 1)
        zone = max(3, math.ceil(needed * 3 / 2 / 3) * 3)
    else:
        n_plus_1 = zone = None

    # ------------------------------------------------------------ markdown
    L = []
    w = L.append
    w("# Apiserver fan-out load test")
    w("")
    w(f"Written by `loadtest/fanout.sh` (with `loadtest/fanout_report.py`) on {meta['started']}; "
      "do not edit by hand, re-run the script.")
    w("")
    w("![latency, throughput, RSS and CPU over time](fanout-latency.png)")
    w("")
    w("Shaded bands are the phases. The latency spike at the start of each band is the "
      f"{apiservers * len(mix)} generator processes opening their TLS connections at once on one core while "
      "their open-loop clocks already run (latency correction counts that wait); the steady figures below "
      "leave those seconds out and say so.")
    w("")
    w("## Machine and tools")
    w("")
    w("| | |")
    w("| --- | --- |")
    w(f"| CPU | {meta['cpu']}, {meta['nproc']} CPUs |")
    w(f"| kernel | {meta['kernel']} |")
    w(f"| memory | {meta['mem']} |")
    w(f"| commit | {meta['commit']} |")
    w(f"| load average (1, 5, 15 min) | before {meta['load_before']}, after {meta['load_after']} (the {apiservers * len(mix)} generator processes raise it themselves; other work on the machine too) |")
    w(f"| rustc | {meta['rustc']} |")
    w(f"| load generator | {meta['oha']} |")
    w(f"| registry | Debian `docker-registry` ({meta['registry']}) on {meta['reg']} |")
    w(f"| report | Python {meta['python']} |")
    w("| build | `cargo build --release` |")
    w("")
    overlap_file = os.path.join(work, "overlap")
    if os.path.exists(overlap_file):
        names = sorted(set(open(overlap_file, encoding="utf-8").read().split()))
        w(f"**Warning**: `loadtest/run.sh` (another load test on the same cores) was running during "
          f"{', '.join(names)}; those figures are disturbed.")
        w("")
    w("## Setup")
    w("")
    w(f"- **Apiservers**: {apiservers} simulated apiservers; apiservers 1..{h2} speak HTTP/2 (one TLS connection "
      f"per body kind, concurrent streams on it, as Go's transport multiplexes), the other {apiservers - h2} "
      "HTTP/1.1 (a pool of keep-alive TLS connections per body kind). Every apiserver sends the whole mix, "
      f"one `oha` process per apiserver and body kind ({apiservers * len(mix)} processes at once), TLS 1.3 to a "
      "throwaway P-256 certificate.")
    w("- **In flight** per apiserver and body kind: max(4, 0.6 × weight) connections (HTTP/1.1) or streams "
      f"(HTTP/2), {apiservers * sum(max(4, (m['weight'] * 6 + 9) // 10) for m in mix)} in all.")
    w(f"- **Fixed-rate phases** (open loop): `oha -q` with `--latency-correction`, so a review that had to wait "
      "for its send slot counts the wait (no coordinated omission); each process gets its kind's share of the "
      f"total rate. **Saturation** (closed loop): no rate limit. {meta['duration']} s per phase, after an "
      f"unrecorded {meta['warmup']} s warm-up at the first rate (TLS sessions, verify cache).")
    if meta["pin"] == "1":
        w("- **CPU**: imagegate pinned to CPU 1 (`taskset`, so tokio runs one worker), every generator to CPU 0, "
          f"niceness {meta['nice']}. `CPU 0` below is the generators' core (plus anything else running), "
          "`server CPU` imagegate's own /proc time.")
    w("- **Policy** (`--policy`, printed below): registries allow-list, tags required, `latest` forbidden, "
      "and a `verify` rule requiring a cosign signature for the local registry's images. The signed image "
      f"`{meta['reg']}/fixtures/app:v1` ({meta['digest']}) and its cosign signature were pushed from "
      "tests/fixtures/verify (as tests/it/support/registry does) by `loadtest/fanout_registry.py`. "
      "`allowTtl: 10m`, `tagTtl: 30s`: after the first verification the digest is served from the "
      "cache, and the tag is re-resolved at the registry at most every 30 s (warm cache, as in steady state). "
      "The one cold verification (tag resolution, signature fetch and check) happened in the pre-load check.")
    w("- Latency: per request, from oha's SQLite output (`--db-url`, answered requests), merged over all "
      "processes of a phase; with `--latency-correction` it runs from the review's scheduled send time. "
      "Throughput counts 2xx answers per second of the steady window (below). Errors: "
      "transport errors plus non-2xx answers. RSS: VmRSS sampled every second.")
    w("")
    w("### Review mix")
    w("")
    w("| body kind | endpoint | share | containers | expected | what |")
    w("| --- | --- | ---: | ---: | --- | --- |")
    for m in mix:
        w(f"| `{m['kind']}` | `POST {m['path']}` | {m['weight']}% | {m['containers']} | {m['expected']} | {m['desc']} |")
    deny_share = sum(m["weight"] for m in mix if m["expected"] == "deny")
    verify_share = sum(m["weight"] for m in mix if "verify" in m["kind"])
    w("")
    w(f"Denied: {deny_share}% of reviews. Reviews with an image under the `verify` rule: {verify_share}%. "
      f"Mean images per review: {mean_containers:.2f}. Bodies: `loadtest/fanout_bodies.py` "
      "(committed copies with a registry placeholder in `loadtest/bodies/fanout/`). Every kind was checked "
      "for its expected decision over both protocols before the load.")
    w("")
    answers = {}
    with open(os.path.join(work, "sample-answers.tsv"), encoding="utf-8") as f:
        for line in f:
            k, _, body = line.rstrip("\n").partition("\t")
            answers[k] = body
    for k in ("ir-deny", "ar-deny", "ar-verify"):
        if k in answers:
            w(f"Sample answer to `{k}` (before the load):")
            w("")
            w("```json")
            w(answers[k])
            w("```")
            w("")
    w("## Results")
    w("")
    w(f"Steady state = the phase without its first {TRIM_START:g} s (every generator opening its TLS "
      f"connections at once on one core) and its last {TRIM_END:g} s (generators stopping and writing their "
      "files); the whole-phase p99 and max, which include those edges, are given too. Counts (2xx, errors) "
      "are whole-phase.")
    w("")
    w(f"| phase | offered reviews/s | answered reviews/s | p50 ms | p90 ms | p99 ms | max ms | whole-phase p99 / max ms | median of per-second p99 ms | seconds with p99 > {P99_BUDGET_MS:g} ms | 2xx | errors | non-2xx | unsent at the end | server CPU | µs CPU/review | CPU 0 (generators) | RSS mean / max MiB |")
    w("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for ph in phases:
        offered = "closed loop" if ph["rate"] == 0 else f"{ph['rate']:,}"
        w(f"| {ph['name']} | {offered} | {fmt(ph['tput'])} | {fmt(ph['p50'], 2)} | {fmt(ph['p90'], 2)} | "
          f"{fmt(ph['p99'], 2)} | {fmt(ph['max'], 2)} | {fmt(ph['all_p99'], 2)} / {fmt(ph['all_max'], 2)} | "
          f"{fmt(ph['sec_p99_median'], 2)} | {ph['sec_over_budget']} of {ph['sec_count']} | "
          f"{ph['ok']:,} | {ph['errors']:,} | {ph['non2xx']:,} | {ph['aborted']:,} | "
          f"{fmt(ph['cpu'], 0)}% | {fmt(ph['us_per_review'])} | {fmt(ph['cpu0'], 0)}% | "
          f"{fmt(ph['rss_mean'])} / {fmt(ph['rss_max'])} |")
    w("")
    busy_gen = [ph["name"] for ph in phases if ph["cpu0"] >= 90]
    if busy_gen:
        w("**Generator limit**: in " + ", ".join(busy_gen) + " the generators' core (CPU 0) was at least 90% "
          "busy. There the generators themselves queue: open-loop latency (with latency correction) then "
          "includes time a review waited for its generator, so those latencies are an upper bound for "
          "imagegate, and the saturation throughput is a lower bound of its capacity (look at `server CPU`).")
        w("")
    w("`median of per-second p99`: the p99 of each second of the steady window, then their median: a "
      "short stall (another process taking the core, the VM paused) moves the phase p99 but not this; "
      "the seconds over the budget show how often that happened.")
    w("")
    w("`unsent at the end`: requests oha had scheduled (open loop) or started but not finished when its "
      "duration ran out (`aborted due to deadline`); they are a generator artefact, not server errors, "
      "and are not counted as errors. `server CPU`: imagegate's CPU time over the phase's duration "
      "(100% = one core); `µs CPU/review`: that time per answered review. `CPU 0`: how busy the "
      "generators' core was (all processes on it) in the steady window.")
    w("")
    w(f"Peak RSS of the whole run (VmHWM): {int(open(os.path.join(work, 'vmhwm')).read().strip()) / 1024:.1f} MiB. "
      f"imagegate wrote {meta['log_lines']} log lines during the whole run.")
    errs = {k: v for ph in phases for k, v in ph["err_kinds"].items()}
    if errs:
        w("")
        w("Errors by kind: " + "; ".join(f"{k}: {v}" for k, v in sorted(errs.items())))
    w("")
    w("### Per body kind and protocol (p50 / p99 ms)")
    w("")
    head = "| body kind | " + " | ".join(ph["name"] for ph in phases) + " |"
    w(head)
    w("| --- |" + " ---: |" * len(phases))
    for m in mix:
        cells = [f"{fmt(ph['kind_p'][m['kind']][1], 2)} / {fmt(ph['kind_p'][m['kind']][2], 2)}" for ph in phases]
        w(f"| `{m['kind']}` | " + " | ".join(cells) + " |")
    for proto in ("HTTP/2", "HTTP/1.1"):
        cells = [f"{fmt(ph['proto_p'][proto][1], 2)} / {fmt(ph['proto_p'][proto][2], 2)}" for ph in phases]
        w(f"| all, {proto} | " + " | ".join(cells) + " |")
    w("")
    w("### What imagegate counted (its /metrics, difference over each phase)")
    w("")
    w("| phase | reviews allowed | reviews denied | deny share | verify cache | verifications | registry requests |")
    w("| --- | ---: | ---: | ---: | --- | --- | --- |")
    for ph in phases:
        allow = sum(v for k, v in ph["reviews"].items() if 'decision="allow"' in k)
        deny = sum(v for k, v in ph["reviews"].items() if 'decision="deny"' in k)
        share = 100 * deny / (allow + deny) if allow + deny else float("nan")

        def short(dd):
            if not dd:
                return "none"
            return "; ".join(f"{re.sub(r'^[a-z_]+', '', k) or 'total'} {v:,.0f}" for k, v in sorted(dd.items()))
        w(f"| {ph['name']} | {allow:,.0f} | {deny:,.0f} | {fmt(share)}% | {short(ph['verify_cache'])} | "
          f"{short(ph['verifications'])} | {short(ph['registry'])} |")
    w("")
    w("## What a 5,000-node cluster needs")
    w("")
    w("Assumptions (stated, not measured):")
    w("")
    w(f"- {NODES:,} nodes × {PODS_PER_NODE} pods = {pods:,} pods. Rollout peak: **{PEAK_POD_CREATES} pod creates/s** "
      f"(every pod of the cluster re-created within {pods / PEAK_POD_CREATES / 60:.0f} minutes), 1–5 containers "
      f"per pod (the mix above averages {mean_containers:.2f} images per review).")
    w("- ImagePolicyWebhook (control-plane sidecar): one ImageReview per pod create (the apiserver's own "
      "allow/deny cache is ignored: conservative).")
    w(f"- Validating webhook (in-cluster Deployment): one AdmissionReview per pod create plus one per workload "
      f"object; a rollout of ~{PODS_PER_WORKLOAD_OBJECT} pods writes a Deployment and a ReplicaSet, so "
      f"{1 + 2 / PODS_PER_WORKLOAD_OBJECT:.1f} AdmissionReviews per pod.")
    w(f"- Burst factor {BURST:g} on the per-second peak (creates arrive in bursts within a second).")
    w(f"- A replica's capacity is the highest fixed rate it **held** above (≥ 97% of the offered rate answered, no errors, "
      f"p99 ≤ {P99_BUDGET_MS:g} ms in at least 90% of the steady seconds, on one core); replicas are planned at {UTILIZATION:.0%} of it, which keeps latency on "
      "the flat part of the curve and leaves room for cold verifications, reloads and a noisy neighbour.")
    w("")
    if cap > 0:
        top = next(ph for ph in held if ph["rate"] == cap)
        w(f"Measured: one imagegate on one core held **{cap:,} reviews/s** of this mix "
          f"(p99 {fmt(next(ph['p99'] for ph in held if ph['rate'] == cap), 2)} ms over the steady window, median "
          f"per-second p99 {fmt(next(ph['sec_p99_median'] for ph in held if ph['rate'] == cap), 2)} ms); planning figure "
          f"{plan:,.0f} reviews/s per replica." + (
              f" At saturation it answered {fmt(sat[0]['tput'], 0)} reviews/s with the server core at "
              f"{fmt(sat[0]['cpu'], 0)}% and the generators' core at {fmt(sat[0]['cpu0'], 0)}%"
              + ((" (the generators, not imagegate, were the limit: the true capacity is higher)."
                  if sat[0]["cpu"] < 80 else
                  " (both cores nearly full: close to what one core can answer with generators on the other)."
                  ) if sat[0]["cpu0"] > 85 else ".") if sat else "")
          + (f" CPU per review falls as load rises (more reviews share each wake-up and system call): "
             f"{fmt(top['us_per_review'])} µs at {cap:,}/s, {fmt(sat[0]['us_per_review'])} µs at saturation, "
             f"so one fully busy core answers roughly {1e6 / sat[0]['us_per_review']:,.0f} reviews/s of this "
             "mix. The planning figure uses the held open-loop rate, not this ceiling." if sat else ""))
        w("")
        w("| mode | demand at the peak | replicas needed | with N+1 | surviving one of 3 zones |")
        w("| --- | ---: | ---: | ---: | ---: |")
        w(f"| validating webhook (Deployment) | {ar_rate:,.0f}/s × {BURST:g} = {ar_design:,.0f} AdmissionReviews/s | "
          f"{needed} | **{n_plus_1}** | **{zone}** (spread 3 zones, each zone's share able to fail) |")
        w(f"| ImagePolicyWebhook sidecar | {ir_rate:,}/s over {CONTROL_PLANES} apiservers, with one down "
          f"{ir_rate / (CONTROL_PLANES - 1):,.0f}/s × {BURST:g} = {ir_per_sidecar:,.0f}/s per sidecar | 1 per apiserver "
          f"({ir_per_sidecar / plan:.0%} of the planning figure) | — | — |")
        w("")
        replicas = max(n_plus_1, zone)
        low = min((ph for ph in phases if ph["rate"] > 0), key=lambda ph: ph["rate"])
        survivors = replicas - replicas // 3  # one of three zones lost
        per_replica = ar_design / survivors
        cores = per_replica * low["us_per_review"] / 1e6
        request_m = max(250, math.ceil(2 * cores * 1000 / 50) * 50)
        rss = max(ph["rss_max"] for ph in phases)
        w(f"So the in-cluster Deployment needs {needed} replica(s) for the peak; run **{replicas}** "
          "(at least 3, spread over 3 zones), which still has room when a zone is lost. With a zone lost "
          f"each of the {survivors} survivors takes {per_replica:,.0f} reviews/s; at the CPU cost measured "
          f"at the lowest rate ({fmt(low['us_per_review'])} µs/review, the most expensive per review) that "
          f"is {cores:.2f} of a core, so a CPU request of **{request_m}m** (2× that, at least 250m) with a "
          f"limit of one core covers the peak. Memory: at most {rss:.0f} MiB RSS at every load here "
          "(one verified image in the cache; a cache of `maxEntries` digests needs more), so a request of "
          "64Mi and a limit of 256Mi leave room.")
    else:
        w("No fixed-rate phase was held within the budget on this run; no replica count is derived.")
    w("")
    w("## Policy used")
    w("")
    w("```yaml")
    w(open(os.path.join(work, "policy.used.yaml"), encoding="utf-8").read().rstrip())
    w("```")
    w("")
    w("Re-run: `loadtest/fanout.sh` (see its header for RATES, DURATION, WARMUP, APISERVERS, "
      "H2_APISERVERS, PIN).")
    with open(out_md, "w", encoding="utf-8") as f:
        f.write("\n".join(L) + "\n")


if __name__ == "__main__":
    main()
