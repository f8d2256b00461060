/*
 * metrics.h: the optional Prometheus endpoint (`--metrics HOST:PORT`,
 * `[hpqd] metrics`; off by default), served by libmicrohttpd on its own
 * thread. GET /metrics answers in the text exposition format 0.0.4.
 *
 * The state belongs to the loop thread, so a scrape does not read it:
 * the HTTP thread asks the loop (a uv_async) to render the page and waits
 * for it (at most 2 s), so every scrape sees one consistent instant, the
 * same figures `hpq status` gives (metrics.c renders status_build's reply
 * and the dispatcher's counters behind it), plus per node series. The
 * families and their labels are listed in hpqd(8).
 *
 * Task counters (submitted, started, finished, preempted, requeued) and
 * the histograms (dispatch cycle, storage commit) are observed on the loop
 * thread while the endpoint runs, i.e. from the daemon's start when the
 * option is given; the counters the task rows can answer are seeded from
 * them at start, so they carry on across restarts.
 */
#ifndef HPQD_METRICS_H
#define HPQD_METRICS_H

#include <stddef.h>
#include <stdint.h>

struct hpqd;

/* Starts the listener on listen (HOST:PORT; port 0 picks one) and writes
 * the port to <state_dir>/hpqd.metrics.port. Returns 0 or a negative code
 * with a message in err. */
int metrics_start(struct hpqd *d, const char *listen, char *err, size_t errlen);
/* Stops the listener (joins its thread); safe if never started. */
void metrics_stop(struct hpqd *d);

#endif
