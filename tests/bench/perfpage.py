#!/usr/bin/env python3
"""perfpage.py: regenerates docs/performance.md from a `make bench` run.

    perfpage.py RESULTS PAGE PLOTDIR

RESULTS holds what tests/bench/run_all.sh left: NAME.txt (a benchmark's
output) and NAME.meta (command=, rc=, seconds=, or skipped=). The page
keeps everything above its GENERATED marker (the hand-written part) and
replaces what follows: the machine, the date, then per benchmark its
command and tables of the figures picked from its output by the rules
below (one figure per line, with a label), and the replay's PNG plots,
copied into PLOTDIR. A benchmark without rules gets the lines of the form
"label: value with a number"; one whose output matches nothing gets its
last lines verbatim. Only the Python standard library is used.
"""
import datetime
import glob
import os
import platform
import re
import shutil
import sys

MARKER = "<!-- GENERATED: everything below is written by tests/bench/perfpage.py -->"

GENERIC = r"^\s*([A-Za-z][^:]{2,80}?):\s+(\S.*\d.*)$"

# hpq-replay's lines, in its three runs (RULES below).
REPLAY_RULES = [
    (r"^(replay wall time), (median of \d+): (.*)$", ["what", "runs", "value"]),
    (r"^(arrays|chains): (.*)$", ["what", "value"]),
    (r"^(\S+)\s+(\d+s)\s+(\d+s)\s+(\d+s)\s+(\d+s)\s+([\d.]+)\s+([\d.]+)\s+(\d+)"
     r"\s+([\d.]+)\s+(\d+)\s*$",
     ["policy", "queue mean", "queue median", "queue p95", "JCT mean", "util %",
      "Jain", "preemptions", "GPU-h lost", "peak queued"]),
]

# name: (title, [(regex, [column headers])], verbatim block start regex or None)
# The columns are the regex's groups, whitespace collapsed. A rule may
# have a third element, a section regex: the first group of the last line
# that matched it becomes the row's first column (a queue size, say).
RULES = {
    "sched_bench": ("The dispatcher alone (sched_bench)", [
        (r"^\s{2,}(\S[^:]*?(?::\s\S+)?):?\s{2,}(\S.*)$", ["figure", "median"]),
        (r"^  (reclaim over [\d,]+ borrowed): (.*)$", ["figure", "median"]),
    ], None),
    "bench_submit": ("Durable submit throughput (bench_submit)", [
        (r"^\s*(\d+ clients?)\s+median:\s+(.*)$", ["clients", "tasks/s, medians"]),
        (r"^\s*(\d+ clients?)\s+ratio:\s+(.*)$", ["clients", "ratio of medians"]),
        (r"^\s*(\d+ clients?)\s+cpu:\s+(.*?)\s*\(.*$", ["clients", "CPU us per task, hpqd+clients"]),
    ], None),
    "bench_rtt": ("CLI round trips (bench_rtt)", [
        (r"^(\S.*?)\s{2,}(unix|tls|plain)\s+n=\d+\s+median\s+(\S+ \S+)\s+p99\s+(\S+ \S+)",
         ["call", "transport", "median", "p99"]),
        (r"^(\S.*?)\s{2,}((?:tls|plain) - (?:plain|unix))\s+median\s+(\S+ \S+)\s+p99\s+(\S+ \S+)",
         ["call", "difference", "median", "p99"]),
        (r"^(MUNGE \+ Auth \(tls, derived\))\s+median\s+(\S+ \S+)", ["figure", "median"]),
    ], None),
    "bench_status": ("`hpq status` on a big cluster (bench_status)", [
        (r"^(cluster): (.*)$", ["what", "value"]),
        (r"^(build|rpc|client)\s+median\s+(\S+ \S+)\s+p95\s+(\S+ \S+)\s+max\s+(\S+ \S+)",
         ["part", "median", "p95", "max"]),
        (r"^(status reply): (.*)$", ["what", "value"]),
    ], None),
    "bench_autoscale": ("The autoscaler's decision (bench_autoscale)", [
        (r"^(plan|cycle): (.*)$", ["what", "value"]),
        (r"^(plan|cycle|noop)\s+median\s+(\S+ \S+)\s+p95\s+(\S+ \S+)\s+max\s+(\S+ \S+)",
         ["part", "median", "p95", "max"]),
    ], None),
    "bench_e2e": ("End to end on one agent (bench_e2e)", [
        (r"^e2e: (.+?): (.*)$", ["figure", "median of the runs"]),
    ], r"^histogram of"),
    "bench_array": ("Task arrays (bench_array)", [
        (r"^(memory): (.*)$", ["figure", "value"]),
        (r"^(submit of a [\d,]+-index array), request to committed reply: (.*)$",
         ["figure", "value"]),
    ], None),
    "sim": ("Many simulated nodes (hpq-sim scenario)", [
        (r"^(submitted) (.*)$", ["what", "value"]),
        (GENERIC, ["figure", "value"]),
        (r"^(hpqd CPU) (.*)$", ["figure", "value"]),
    ], None),
    "replay": ("Trace replay (hpq-replay)", REPLAY_RULES, None),
    "replay-arrays": ("Trace replay, sweeps as arrays (hpq-replay --arrays)", REPLAY_RULES,
                      None),
    "replay-workflow": ("Trace replay with arrays under a % limit and chains of parts "
                        "(hpq-replay --arrays --array-limit --chain)", REPLAY_RULES, None),
    "bench_cli": ("The CLI at real queue sizes (bench_cli)", [
        (r"^(\d+ pending): (.*)$", ["queue", "filled"]),
        (r"^  (hpq .*?)\s+median\s+(\S+ ms)\s+CPU: hpq\s+(\S+ ms), hpqd\s+(\S+ ms)"
         r"\s+runs:[\d. ]*(?:\(target < (\S+ ms): (\w+)\))?",
         ["queue", "command", "median", "hpq CPU", "hpqd CPU", "target", "met"],
         r"^(\d+ pending):"),
        (r"^  (longest status wait during --json)\s+median\s+(\S+ ms)\s+"
         r"\(a status alone: (\S+ ms)\)",
         ["queue", "figure", "median", "a status alone"], r"^(\d+ pending):"),
    ], None),
    "bench_slurm": ("hpq and Slurm side by side (bench_slurm.sh)", [
        (r"^(filled|memory): (.*)$", ["what", "value"]),
        (r"^side: (.+?): Slurm `(.+?)` (\S+ ms), hpq `(.+?)` (\S+ ms), Slurm/hpq (\S+)$",
         ["question", "Slurm", "median", "hpq", "median", "Slurm / hpq"]),
    ], None),
    "bench_memory": ("Memory per pending task (bench_memory)", [
        (r"^(pending \d+) \((.*?)\): VmRSS up (\d+ KiB), after (\d+ KiB) = (\d+ bytes/task); "
         r"after a restart \(([\d.]+ s)\) (\d+ KiB) = (\d+ bytes/task)$",
         ["tasks", "each", "VmRSS up", "VmRSS filled", "per task",
          "restart", "VmRSS after it", "per task after it"]),
    ], None),
    "bench_restart": ("Restart on a large database (bench_memory --restart)", [
        (r"^(wrote) (.*)$", ["what", "value"]),
        (r"^(restart \d+): first answer ([\d.]+ s) after start; VmRSS then (\d+ KiB), "
         r"2 s later (\d+ KiB)$",
         ["restart", "first answer after start", "VmRSS then", "2 s later"]),
        (r"^(acct \d+): (\d+ records) as CSV in ([\d.]+ s); hpq peak RSS (\d+ KiB); "
         r"hpqd VmRSS (\d+ KiB), after (\d+ KiB)$",
         ["hpq acct --limit 0 --csv", "records", "to the last line", "hpq peak RSS",
          "hpqd VmRSS before", "after"]),
    ], None),
    "bench_plan_search": ("Training-plan search (bench_plan_search)", [
        (r"^(calendar): (.*)$", ["what", "value"]),
        (r"^(\d+ nodes, .*?)\s{2,}([\d.]+)\s+([\d.]+)\s+(\d+)\s+(\d+)\s+(-?[\d.]+)\s*$",
         ["search", "median ms", "CPU ms", "offers", "segments", "finish (days)"]),
    ], None),
}
ORDER = ["sched_bench", "bench_submit", "bench_rtt", "bench_status", "bench_autoscale", "bench_e2e",
         "bench_array", "sim", "replay", "replay-arrays", "replay-workflow", "bench_cli",
         "bench_slurm", "bench_memory", "bench_restart", "bench_plan_search"]


def read(path, default=""):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return default


def meta(results, name):
    m = {}
    for line in read(os.path.join(results, name + ".meta")).splitlines():
        k, _, v = line.partition("=")
        m[k] = v
    return m


def cell(s):
    return " ".join(s.split()).replace("|", "\\|")


def machine():
    cpu = "unknown"
    for line in read("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem = "unknown"
    m = re.search(r"^MemTotal:\s+(\d+) kB", read("/proc/meminfo"), re.M)
    if m:
        mem = "%.1f GiB" % (int(m.group(1)) / 1048576)
    osname = re.search(r'^PRETTY_NAME="?([^"\n]*)', read("/etc/os-release"), re.M)
    return [
        ("CPU", cpu),
        ("cores (online)", str(os.cpu_count())),
        ("memory", mem),
        ("kernel", read("/proc/sys/kernel/osrelease").strip() or platform.release()),
        ("system", osname.group(1) if osname else "unknown"),
    ]


def tables(name, text):
    rules = RULES.get(name, ("", [], None))[1] or [(GENERIC, ["figure", "value"])]
    out = []
    lines = text.splitlines()
    for rule in rules:
        regex, headers = rule[0], rule[1]
        section = rule[2] if len(rule) > 2 else None
        rows = []
        where = ""
        for line in lines:
            if section:
                sm = re.match(section, line)
                if sm:
                    where = sm.group(1)
            m = re.match(regex, line)
            if m:
                rows.append(([where] if section else []) + [cell(g or "") for g in m.groups()])
        if rows:
            out.append("| " + " | ".join(headers) + " |")
            out.append("|" + "---|" * len(headers))
            out += ["| " + " | ".join(r) + " |" for r in rows[:60]]
            out.append("")
    block = RULES.get(name, ("", [], None))[2]
    if block:
        for i, line in enumerate(lines):
            if re.match(block, line):
                out += ["```"] + lines[i:] + ["```", ""]
                break
    if not out:
        out += ["Its last lines:", "", "```"] + lines[-20:] + ["```", ""]
    return out


def plots(results, plotdir, page):
    pngs = sorted(glob.glob(os.path.join(results, "replay", "**", "*.png"), recursive=True))
    out = []
    if pngs:
        os.makedirs(plotdir, exist_ok=True)
        rel = os.path.relpath(plotdir, os.path.dirname(os.path.abspath(page)))
        for p in pngs:
            base = os.path.basename(p)
            shutil.copyfile(p, os.path.join(plotdir, base))
            out += ["![%s](%s/%s)" % (base[:-4], rel, base), ""]
    return out


def main():
    if len(sys.argv) != 4:
        sys.stderr.write("usage: perfpage.py RESULTS PAGE PLOTDIR\n")
        return 2
    results, page, plotdir = sys.argv[1:]
    old = read(page)
    head = old.split(MARKER)[0].rstrip("\n") if MARKER in old else old.rstrip("\n")
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    total = 0
    body = []
    for name in ORDER:
        m = meta(results, name)
        title = RULES[name][0]
        body += ["### " + title, ""]
        if not m:
            body += ["Not run.", ""]
            continue
        if "skipped" in m:
            body += ["Skipped: %s." % m["skipped"], ""]
            continue
        total += int(m.get("seconds", "0") or 0)
        body += ["`%s` (%s s%s)" % (m.get("command", "?"), m.get("seconds", "?"),
                                    "" if m.get("rc") == "0" else
                                    ", FAILED with exit status %s" % m.get("rc")), ""]
        body += tables(name, read(os.path.join(results, name + ".txt")))
        if name == "replay":
            body += plots(results, plotdir, page)
    gen = [MARKER, "", "## Latest run", "", "Run on %s by `make bench`; the benchmarks "
           "took %d s in all." % (now, total), "", "| machine | |", "|---|---|"]
    gen += ["| %s | %s |" % (k, cell(v)) for k, v in machine()]
    gen += [""] + body
    with open(page + ".tmp", "w", encoding="utf-8") as f:
        f.write(head + "\n\n" + "\n".join(gen).rstrip("\n") + "\n")
    os.replace(page + ".tmp", page)
    print("perfpage: wrote %s" % page)
    return 0


if __name__ == "__main__":
    sys.exit(main())
