/*
 * autoscale.h: the autoscaler service ([autoscale.POOL], docs/autoscale.md).
 *
 * For each configured pool it gathers, after a dispatcher cycle, the
 * pool's nodes and the pending work the dispatcher could not place, asks
 * the pure plan (autoscale-plan.h) what to do, and carries it out: new
 * nodes are recorded (service `launching`, a row in autoscale_nodes) and
 * the provision command runs once that is committed, through uv_spawn;
 * nodes that leave are drained (their preemptible work preempted to its
 * checkpoints when they are emptied on purpose), deprovisioned with the
 * deprovision command, and removed as `hpq node remove` would. A launch
 * whose agent does not register within launch_timeout is undone, and the
 * pool's launches back off exponentially (its pending work says
 * `launch-failed`). Nothing blocks the loop.
 */
#ifndef HPQD_AUTOSCALE_H
#define HPQD_AUTOSCALE_H

#include <stddef.h>
#include <stdint.h>

struct hpqd;

/*
 * Before store_start: reads the autoscaler's nodes from the store and
 * makes sure each configured pool exists. Returns 0 or a negative code
 * with err set. A daemon without [autoscale.POOL] sections gets no
 * autoscaler (d->autoscale stays NULL) and pays nothing.
 */
int autoscale_load(struct hpqd *d, char *err, size_t errlen);
/* After the loop's other services: the timer and the state observer. */
int autoscale_init(struct hpqd *d);
/* At stop: commands still running are left to finish on their own. */
void autoscale_close(struct hpqd *d);

/*
 * dispatch.c, right after a dispatcher cycle at now_ms (wall clock):
 * plans the pools that changed since their last plan, or whose time came
 * (an idle node's timeout, a node's lifetime), and nothing else.
 */
void autoscale_cycle(struct hpqd *d, int64_t now_ms);

#endif
