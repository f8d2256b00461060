/*
 * dispatch.h: runs the dispatcher when something changed and carries out
 * its decisions (docs/design.md §5). The cycle runs from a uv_prepare handle, i.e.
 * at the end of a loop iteration, only when the state is dirty: every
 * submit, exit and node change of one iteration costs one cycle, and an
 * idle daemon runs none (no fixed poll). After the cycle the iteration's
 * batch goes to the store, so a START and the submits that caused it
 * commit together. The one exception to "only when something changed" is
 * time itself: a preemption may wait for a victim's min-runtime, and a
 * one-shot timer set from sched_next_wakeup marks the state dirty then.
 */
#ifndef HPQD_DISPATCH_H
#define HPQD_DISPATCH_H

struct hpqd;

int dispatch_init(struct hpqd *d);
void dispatch_close(struct hpqd *d);
/* fn(arg, ns, decisions) after every cycle: how long it took and what it
 * decided (metrics.c's histogram). One observer; NULL: nobody listens. */
void dispatch_on_cycle(struct hpqd *d, void (*fn)(void *arg, uint64_t ns, size_t decisions),
		       void *arg);
/* What the tick does: a cycle if dirty, then hand the batch to the store.
 * Tests and the fuzzer call it directly. */
void dispatch_run(struct hpqd *d);

#endif
