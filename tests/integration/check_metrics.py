#!/usr/bin/python3
"""check_metrics.py: hpqd's /metrics page, read by the Prometheus client
library's own parser (Debian's python3-prometheus-client), then held to
Prometheus's naming rules and to hpq's list of families.

usage: check_metrics.py PAGE --teams=T1,T2 --pools=P1 --nodes=N1:P1,N2:P1
                        --classes=C1,C2

(with `=`: a class may be called "-").

PAGE is the scraped text. The lists name every team, pool, node (with its
pool) and class the cluster has: each family must carry every label
combination they make, at 0 where nothing is there, and no other.

On success, prints every sample as `name{k="v",...} value` (labels in the
page's order, no braces without labels, values as Python floats), one a line, for t_metrics.c to
read figures from, and exits 0. Otherwise prints each failure to stderr
and exits 1.
"""
import argparse
import itertools
import math
import re
import sys

from prometheus_client.parser import text_string_to_metric_families

ACTIVE = ("pending", "running", "preempting")
FINAL = ("completed", "failed", "cancelled", "timeout", "out_of_memory")
HEALTH = ("healthy", "degraded", "unhealthy", "unreachable")
SERVICE = ("active", "draining", "drained", "repairing", "down", "launching")
UNITS = ("gpus", "cpus", "memory_bytes")
STORE_REASONS = ("full", "failing")
CHECKPOINT_WHERE = ("background", "finish", "forced")

# Every family: its type and its label names, in the page's order. A
# family added or removed must be added or removed here too.
FAMILIES = {
    "hpq_build_info": ("gauge", ("version", "protocol", "schema")),
    "hpq_tasks": ("gauge", ("state",)),
    "hpq_tasks_submitted_total": ("counter", ("team",)),
    "hpq_tasks_started_total": ("counter", ("team",)),
    "hpq_tasks_finished_total": ("counter", ("team", "state")),
    "hpq_tasks_preempted_total": ("counter", ("team",)),
    "hpq_tasks_requeued_total": ("counter", ("team",)),
    "hpq_team_tasks": ("gauge", ("team", "pool", "state")),
    "hpq_team_oldest_pending_seconds": ("gauge", ("team", "pool")),
    "hpq_class_tasks": ("gauge", ("class", "state")),
    "hpq_pool_nodes": ("gauge", ("pool", "health", "service")),
    "hpq_node_health": ("gauge", ("node", "pool", "health")),
    "hpq_node_service": ("gauge", ("node", "pool", "service")),
    "hpq_node_connected": ("gauge", ("node", "pool")),
    "hpq_node_last_heartbeat_age_seconds": ("gauge", ("node", "pool")),
    "hpq_dispatch_decisions_total": ("counter", ()),
    "hpq_dispatch_cycle_seconds": ("histogram", ()),
    "hpq_store_commit_seconds": ("histogram", ()),
    "hpq_loop_turn_seconds": ("histogram", ()),
    "hpq_store_degraded": ("gauge", ("reason",)),
    "hpq_store_free_bytes": ("gauge", ()),
    "hpq_store_waiting_rows": ("gauge", ()),
    "hpq_store_checkpoints_total": ("counter", ("where",)),
}
for _what in ("guarantee", "used", "borrowed", "lent"):
    for _u in UNITS:
        FAMILIES["hpq_team_%s_%s" % (_what, _u)] = ("gauge", ("team", "pool"))
for _what in ("capacity", "used", "idle"):
    for _u in UNITS:
        FAMILIES["hpq_pool_%s_%s" % (_what, _u)] = ("gauge", ("pool",))
for _what in ("capacity", "used"):
    for _u in UNITS:
        FAMILIES["hpq_node_%s_%s" % (_what, _u)] = ("gauge", ("node", "pool"))

# Words that name a unit other than a base one, or a window of time.
NOT_BASE = {"mib", "mb", "kib", "kb", "gib", "gb", "ms", "millis", "milliseconds",
            "minutes", "hours", "days", "percent", "1h", "24h", "1d"}
NAME = re.compile(r"^hpq_[a-z][a-z0-9]*(_[a-z0-9]+)*$")

failures = []


def fail(msg):
    failures.append(msg)


def expected_label_sets(name, labels, a):
    """Every label combination family name must carry, as tuples of values
    (None: the values are not from a list, as hpq_build_info's)."""
    domains = {
        "team": a.teams, "pool": a.pools, "class": a.classes,
        "health": HEALTH, "service": SERVICE, "reason": STORE_REASONS,
        "where": CHECKPOINT_WHERE,
        "state": FINAL if name == "hpq_tasks_finished_total" else ACTIVE,
    }
    if any(l not in domains and l != "node" for l in labels):
        return None
    if "node" in labels:
        # A node is in one pool: (node, pool) go together.
        rest = [l for l in labels if l not in ("node", "pool")]
        out = set()
        for node, pool in a.nodes:
            for combo in itertools.product(*(domains[l] for l in rest)):
                vals = dict(zip(rest, combo), node=node, pool=pool)
                out.add(tuple(vals[l] for l in labels))
        return out
    return set(itertools.product(*(domains[l] for l in labels)))


def check_raw(text):
    """What the lax parser lets through: HELP then TYPE, once per family."""
    helps, types = [], []
    for line in text.splitlines():
        if line.startswith("# HELP "):
            parts = line.split(" ", 3)
            helps.append(parts[2])
            if len(parts) < 4 or not parts[3].strip():
                fail("%s: empty HELP" % parts[2])
        elif line.startswith("# TYPE "):
            name = line.split(" ")[2]
            types.append(name)
            # The parser drops a counter's _total: see it here.
            if line.endswith(" counter") and not name.endswith("_total"):
                fail("%s: a counter's name must end in _total" % name)
            if not helps or helps[-1] != name:
                fail("%s: TYPE without a HELP line just before it" % name)
        elif line.startswith("#"):
            fail("stray comment line: %r" % line)
    for name in set(types):
        if types.count(name) > 1:
            fail("%s: declared %d times" % (name, types.count(name)))
    if len(helps) != len(types):
        fail("%d HELP lines for %d TYPE lines" % (len(helps), len(types)))
    if not text.endswith("\n"):
        fail("the page does not end with a newline")


def check_name(name, typ):
    if not NAME.match(name):
        fail("%s: not snake_case with the hpq_ prefix" % name)
    words = set(name.split("_"))
    if words & NOT_BASE:
        fail("%s: not in base units (%s)" % (name, ", ".join(sorted(words & NOT_BASE))))
    if "memory" in words and not (name.endswith("_memory_bytes")):
        fail("%s: memory must be in bytes (_memory_bytes)" % name)
    if typ == "counter" and not name.endswith("_total"):
        fail("%s: a counter's name must end in _total" % name)
    if typ != "counter" and name.endswith("_total"):
        fail("%s: only counters end in _total" % name)
    if typ == "histogram" and not name.endswith("_seconds"):
        fail("%s: a histogram of durations is in _seconds" % name)


def check_histogram(fam):
    buckets = [s for s in fam.samples if s.name == fam.name + "_bucket"]
    count = [s.value for s in fam.samples if s.name == fam.name + "_count"]
    total = [s.value for s in fam.samples if s.name == fam.name + "_sum"]
    if len(count) != 1 or len(total) != 1 or not buckets:
        fail("%s: a histogram needs buckets, one _sum and one _count" % fam.name)
        return
    last_le, last = -math.inf, 0
    for s in buckets:
        le = float(s.labels.get("le", "nan"))
        if not le > last_le or s.value < last:
            fail("%s: buckets are not ascending and cumulative at le=%s" %
                 (fam.name, s.labels.get("le")))
        last_le, last = le, s.value
    if last_le != math.inf or last != count[0]:
        fail("%s: the +Inf bucket (%s) is not last or differs from _count (%s)" %
             (fam.name, last, count[0]))
    if total[0] < 0:
        fail("%s: negative _sum" % fam.name)


def check_family(fam, a):
    # The parser names a counter family without its _total.
    name = fam.name + "_total" if fam.type == "counter" else fam.name
    if fam.type not in ("gauge", "counter", "histogram"):
        fail("%s: type %s (a sample without its family's TYPE?)" % (name, fam.type))
        return name
    check_name(name, fam.type)
    if name not in FAMILIES:
        fail("%s: not a known family (add it to FAMILIES and the man page)" % name)
        return name
    want_type, labels = FAMILIES[name]
    if fam.type != want_type:
        fail("%s: type %s, want %s" % (name, fam.type, want_type))
    if fam.type == "histogram":
        check_histogram(fam)
        return name
    seen = []
    for s in fam.samples:
        if s.name != name:
            fail("%s: sample named %s" % (name, s.name))
        if "resource" in s.labels:
            fail("%s: a resource label mixes units" % name)
        if tuple(s.labels) != labels:
            fail("%s: labels %s, want %s" % (name, tuple(s.labels), labels))
            continue
        if fam.type == "counter" and not s.value >= 0:
            fail("%s%s: counter at %s" % (name, s.labels, s.value))
        seen.append(tuple(s.labels[l] for l in labels))
    for combo in set(seen):
        if seen.count(combo) > 1:
            fail("%s%s: written %d times" % (name, combo, seen.count(combo)))
    want = expected_label_sets(name, labels, a)
    if want is None:
        return name
    for combo in sorted(want - set(seen)):
        fail("%s: no sample for %s" % (name, dict(zip(labels, combo))))
    for combo in sorted(set(seen) - want):
        fail("%s: unexpected sample for %s" % (name, dict(zip(labels, combo))))
    return name


def check_values(fams):
    """Figures whose values the rules fix, whatever the cluster does."""
    info = fams["hpq_build_info"].samples
    if len(info) != 1 or info[0].value != 1 or not info[0].labels.get("version"):
        fail("hpq_build_info: want one sample at 1 with a version")
    for name in ("hpq_node_health", "hpq_node_service"):
        ones = {}
        for s in fams[name].samples:
            if s.value not in (0, 1):
                fail("%s%s: a state set is 0 or 1, not %s" % (name, s.labels, s.value))
            ones[s.labels["node"]] = ones.get(s.labels["node"], 0) + s.value
        for node, n in ones.items():
            if n != 1:
                fail("%s: node %s is in %d states" % (name, node, n))
    for name, fam in fams.items():
        if fam.type == "gauge" and name != "hpq_node_last_heartbeat_age_seconds":
            for s in fam.samples:
                if not s.value >= 0:
                    fail("%s%s: %s" % (name, s.labels, s.value))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("page")
    ap.add_argument("--teams", required=True)
    ap.add_argument("--pools", required=True)
    ap.add_argument("--nodes", default="")
    ap.add_argument("--classes", required=True)
    a = ap.parse_args()
    a.teams = a.teams.split(",")
    a.pools = a.pools.split(",")
    a.classes = a.classes.split(",")
    a.nodes = [tuple(n.split(":", 1)) for n in a.nodes.split(",") if n]

    with open(a.page, encoding="utf-8") as f:
        text = f.read()
    check_raw(text)
    try:
        parsed = list(text_string_to_metric_families(text))
    except Exception as e:  # the parser's own complaint, whatever its class
        print("check_metrics: the parser refused the page: %r" % e, file=sys.stderr)
        return 1
    fams = {}
    for fam in parsed:
        name = check_family(fam, a)
        if name in fams:
            fail("%s: two families of that name" % name)
        fams[name] = fam
    for name in sorted(set(FAMILIES) - set(fams)):
        fail("%s: missing" % name)
    if not failures:
        check_values(fams)
    if failures:
        for msg in failures:
            print("check_metrics: " + msg, file=sys.stderr)
        return 1
    for fam in parsed:
        for s in fam.samples:
            labels = ",".join('%s="%s"' % (k, v) for k, v in s.labels.items())
            print("%s%s %r" % (s.name, "{%s}" % labels if labels else "", s.value))
    return 0


if __name__ == "__main__":
    sys.exit(main())
