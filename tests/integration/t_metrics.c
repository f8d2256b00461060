/*
 * t_metrics: hpqd --metrics ([hpqd] metrics = 127.0.0.1:0) serves the
 * Prometheus text format at /metrics; other paths get 404.
 *
 * Each scrape is read by the Prometheus client library's own parser
 * (check_metrics.py, Debian's python3-prometheus-client), which also holds
 * the page to Prometheus's naming rules: HELP and TYPE for every family,
 * once; hpq_ names in snake_case; one unit per family, in base units
 * (bytes, seconds), with no resource label; counters named _total; the
 * list of families and their labels; every label combination of the
 * cluster's teams, pools, nodes, classes and states written, at 0 where
 * nothing is there. It prints the samples, and the figures are checked
 * here:
 *   1. x runs two tasks (one borrowed) and one waits: per team guarantee,
 *      used, borrowed and lent equal `hpq status --json` at the same quiet
 *      moment, in every unit; the node's capacity, use, health, service
 *      state and heartbeat age; the submitted and started counters;
 *   2. y reclaims its guarantee: x's borrowed task is preempted and
 *      requeued, each counted once;
 *   3. x's tasks are cancelled, one completes and one fails: the finished
 *      counters by team and state;
 *   4. hpqd restarts: submitted, started and finished carry on from the
 *      store; preemptions and requeues start again at 0, as documented.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define NODES "node1:default"
#define MiB (1024.0 * 1024.0)

/* The samples check_metrics.py printed: "name{labels} value" each. */
struct samples {
	char **keys;        /* name{labels}, or name alone */
	double *values;
	size_t n;
};

/* GET path; returns the HTTP status and the body (malloc'd). */
static int http_get(int port, const char *path, char **ret_body)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	char req[256], *buf = NULL, *body;
	size_t len = 0, cap = 0;
	int fd, code = -1;
	ssize_t n;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n", path);
	assert_int_equal(write(fd, req, strlen(req)), (ssize_t)strlen(req));
	for (;;) {
		if (len + 4096 + 1 > cap) {
			cap = cap ? 2 * cap : 65536;
			buf = realloc(buf, cap);
			assert_non_null(buf);
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	assert_non_null(buf);
	buf[len] = '\0';
	sscanf(buf, "HTTP/1.%*d %d", &code);
	body = strstr(buf, "\r\n\r\n");
	*ret_body = strdup(body ? body + 4 : "");
	free(buf);
	return code;
}

static void samples_free(struct samples *e)
{
	for (size_t i = 0; i < e->n; i++)
		free(e->keys[i]);
	free(e->keys);
	free(e->values);
	memset(e, 0, sizeof(*e));
}

static double get(const struct samples *e, const char *key)
{
	for (size_t i = 0; i < e->n; i++)
		if (!strcmp(e->keys[i], key))
			return e->values[i];
	fail_msg("no sample %s", key);
	return -1;
}

static double getf(const struct samples *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static double getf(const struct samples *e, const char *fmt, ...)
{
	char key[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(key, sizeof(key), fmt, ap);
	va_end(ap);
	return get(e, key);
}

static int metrics_port(struct h_cluster *c)
{
	char *text = h_read_file(h_path(c, "hpqd.metrics.port"));
	int port;

	assert_non_null(text);
	port = atoi(text);
	free(text);
	assert_true(port > 0);
	return port;
}

/* The page now, as text (200 asserted). */
static char *page(struct h_cluster *c)
{
	char *body;

	assert_int_equal(http_get(metrics_port(c), "/metrics", &body), 200);
	return body;
}

/* Whether the page has this sample line, as written: for waiting. */
static bool page_has(struct h_cluster *c, const char *line)
{
	char *body = page(c), want[256];
	bool ok;

	snprintf(want, sizeof(want), "\n%s\n", line);
	ok = strstr(body, want) != NULL;
	free(body);
	return ok;
}

/* The classes of `hpq status --json`, comma separated. */
static void class_list(struct h_cluster *c, char *buf, size_t len)
{
	json_t *s = h_hpq_json(c, "status", NULL), *row;
	size_t i, at = 0;

	buf[0] = '\0';
	json_array_foreach(json_object_get(s, "classes"), i, row)
		at += (size_t)snprintf(buf + at, len - at, "%s%s", i ? "," : "", h_str(row, "name"));
	assert_true(at > 0 && at < len);
	json_decref(s);
}

/* Scrapes, has check_metrics.py parse and check the page for these teams
 * (and the one pool and node), and reads the samples it prints. */
static void scrape(struct h_cluster *c, const char *teams, struct samples *e)
{
	const char *file = h_path(c, "metrics.txt"), *err = h_path(c, "check_metrics.err");
	char classes[512], cmd[4096], line[1024];
	char *body = page(c), *text;
	FILE *p;
	int st;

	h_write_file(file, body);
	free(body);
	class_list(c, classes, sizeof(classes));
	snprintf(cmd, sizeof(cmd), "'%s' '%s' '%s' --teams=%s --pools=default --nodes=%s "
		 "--classes=%s 2>'%s'", HPQ_TEST_PYTHON3, HPQ_TEST_CHECK_METRICS, file, teams,
		 NODES, classes, err);
	p = popen(cmd, "r");
	assert_non_null(p);
	samples_free(e);
	while (fgets(line, sizeof(line), p)) {
		char *sp = strrchr(line, ' ');

		assert_non_null(sp);
		*sp = '\0';
		e->keys = realloc(e->keys, (e->n + 1) * sizeof(*e->keys));
		e->values = realloc(e->values, (e->n + 1) * sizeof(*e->values));
		assert_true(e->keys && e->values);
		e->keys[e->n] = strdup(line);
		e->values[e->n++] = strtod(sp + 1, NULL);
	}
	st = pclose(p);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		text = h_read_file(err);
		fail_msg("check_metrics.py (with %s) refused the page in %s:\n%s\n(is "
			 "python3-prometheus-client installed? make deps installs it)",
			 HPQ_TEST_PYTHON3, file, text ? text : "");
	}
	assert_true(e->n > 100);
}

static long long res_of(json_t *row, const char *what, const char *unit)
{
	return json_integer_value(json_object_get(json_object_get(row, what), unit));
}

static void check_against_status(const struct samples *e, json_t *s)
{
	static const char *const kinds[] = { "guarantee", "used", "borrowed", "lent" };
	json_t *row;
	size_t i;

	json_array_foreach(json_object_get(s, "teams"), i, row) {
		const char *t = h_str(row, "name"), *p = h_str(row, "pool");

		for (size_t k = 0; k < 4; k++) {
			assert_true(getf(e, "hpq_team_%s_gpus{team=\"%s\",pool=\"%s\"}", kinds[k], t,
					 p) == (double)res_of(row, kinds[k], "gpus"));
			assert_true(getf(e, "hpq_team_%s_cpus{team=\"%s\",pool=\"%s\"}", kinds[k], t,
					 p) == (double)res_of(row, kinds[k], "cpus"));
			assert_true(getf(e, "hpq_team_%s_memory_bytes{team=\"%s\",pool=\"%s\"}",
					 kinds[k], t, p) ==
				    (double)res_of(row, kinds[k], "mem") * MiB);
		}
		/* status counts a task being preempted as running. */
		assert_true(getf(e, "hpq_team_tasks{team=\"%s\",pool=\"%s\",state=\"running\"}",
				 t, p) +
			    getf(e, "hpq_team_tasks{team=\"%s\",pool=\"%s\",state=\"preempting\"}",
				 t, p) == (double)h_int(row, "running"));
		assert_true(getf(e, "hpq_team_tasks{team=\"%s\",pool=\"%s\",state=\"pending\"}",
				 t, p) == (double)h_int(row, "pending"));
	}
	assert_true(get(e, "hpq_tasks{state=\"running\"}") +
		    get(e, "hpq_tasks{state=\"preempting\"}") == (double)h_int(s, "running"));
	assert_true(get(e, "hpq_tasks{state=\"pending\"}") == (double)h_int(s, "pending"));
}

#define NODE "{node=\"node1\",pool=\"default\"}"
#define TEAM(t) "{team=\"" t "\"}"
#define FINISHED(t, st) "hpq_tasks_finished_total{team=\"" t "\",state=\"" st "\"}"

static void scrape_checked(void **state)
{
	struct h_cluster *c = *state;
	struct samples e = { 0 };
	uint64_t ids[3], y_id;
	char *body, idbuf[32];
	double age;
	json_t *s;

	h_daemon_config(c, "[hpqd]\nmetrics = 127.0.0.1:0\n");
	h_daemon_start(c);
	h_agent_start(c, "node1", 2, 4, "4G");
	assert_true(h_wait_nodes(c, 1, 30000));
	assert_int_equal(http_get(metrics_port(c), "/nothing", &body), 404);
	free(body);

	/* Before any task: every series is there, at 0. */
	scrape(c, "default", &e);
	assert_true(get(&e, "hpq_tasks_submitted_total" TEAM("default")) == 0);
	assert_true(get(&e, FINISHED("default", "completed")) == 0);

	/* 1. x: two run (one within its guarantee, one borrowed), one waits. */
	assert_int_equal(h_hpq(c, NULL, "team", "add", "x", "--gpus", "1", "--borrow-limit", "100",
			       NULL), 0);
	for (int i = 0; i < 3; i++)
		ids[i] = h_submit(c, "--team", "x", "--gpus", "1", "--mem", "256M", "--", "sleep",
				  "120", NULL);
	assert_true(H_WAIT_FOR(c, ({
		json_t *st = h_hpq_json(c, "status", NULL);
		bool ok = h_int(st, "running") == 2 && h_int(st, "pending") == 1;
		json_decref(st);
		ok;
	}), 30000));
	scrape(c, "default,x", &e);
	s = h_hpq_json(c, "status", NULL);
	check_against_status(&e, s);
	json_decref(s);
	assert_true(get(&e, "hpq_team_used_gpus{team=\"x\",pool=\"default\"}") == 2);
	assert_true(get(&e, "hpq_team_borrowed_gpus{team=\"x\",pool=\"default\"}") == 1);
	assert_true(get(&e, "hpq_team_used_memory_bytes{team=\"x\",pool=\"default\"}") ==
		    512 * MiB);
	assert_true(get(&e, "hpq_team_tasks{team=\"default\",pool=\"default\",state=\"pending\"}")
		    == 0);
	assert_true(get(&e, "hpq_node_capacity_gpus" NODE) == 2);
	assert_true(get(&e, "hpq_node_capacity_cpus" NODE) == 4);
	assert_true(get(&e, "hpq_node_capacity_memory_bytes" NODE) == 4096 * MiB);
	assert_true(get(&e, "hpq_node_used_gpus" NODE) == 2);
	assert_true(get(&e, "hpq_node_used_memory_bytes" NODE) == 512 * MiB);
	assert_true(get(&e, "hpq_node_health{node=\"node1\",pool=\"default\",health=\"healthy\"}")
		    == 1);
	assert_true(get(&e, "hpq_node_health{node=\"node1\",pool=\"default\",health=\"unhealthy\"}")
		    == 0);
	assert_true(get(&e, "hpq_node_service{node=\"node1\",pool=\"default\",service=\"active\"}")
		    == 1);
	assert_true(get(&e, "hpq_node_connected" NODE) == 1);
	/* The harness's agents beat once a second. */
	age = get(&e, "hpq_node_last_heartbeat_age_seconds" NODE);
	if (!(age >= 0 && age < 30))
		fail_msg("last heartbeat %g s ago", age);
	assert_true(get(&e, "hpq_pool_nodes{pool=\"default\",health=\"healthy\",service=\"active\"}")
		    == 1);
	assert_true(get(&e, "hpq_pool_nodes{pool=\"default\",health=\"unreachable\",service=\"active\"}")
		    == 0);
	assert_true(get(&e, "hpq_pool_capacity_gpus{pool=\"default\"}") == 2);
	assert_true(get(&e, "hpq_pool_capacity_memory_bytes{pool=\"default\"}") == 4096 * MiB);
	assert_true(get(&e, "hpq_tasks_submitted_total" TEAM("x")) == 3);
	assert_true(get(&e, "hpq_tasks_started_total" TEAM("x")) == 2);
	assert_true(get(&e, "hpq_tasks_preempted_total" TEAM("x")) == 0);
	assert_true(get(&e, FINISHED("x", "cancelled")) == 0);
	assert_true(get(&e, "hpq_dispatch_decisions_total") >= 2);
	assert_true(get(&e, "hpq_dispatch_cycle_seconds_count") >= 1);
	assert_true(get(&e, "hpq_store_commit_seconds_count") >= 1);
	assert_true(get(&e, "hpq_loop_turn_seconds_count") >= 1);
	assert_true(get(&e, "hpq_store_checkpoints_total{where=\"forced\"}") == 0);

	/* 2. y takes its guarantee back from x's borrowed task. */
	assert_int_equal(h_hpq(c, NULL, "team", "add", "y", "--gpus", "1", NULL), 0);
	y_id = h_submit(c, "--team", "y", "--gpus", "1", "--", "sleep", "120", NULL);
	assert_true(H_WAIT_FOR(c, page_has(c, "hpq_tasks_requeued_total" TEAM("x") " 1") &&
				  page_has(c, "hpq_team_tasks{team=\"y\",pool=\"default\","
					      "state=\"running\"} 1"), 30000));
	scrape(c, "default,x,y", &e);
	assert_true(get(&e, "hpq_tasks_preempted_total" TEAM("x")) == 1);
	assert_true(get(&e, "hpq_tasks_preempted_total" TEAM("y")) == 0);
	assert_true(get(&e, "hpq_tasks_requeued_total" TEAM("x")) == 1);
	assert_true(get(&e, "hpq_tasks_started_total" TEAM("x")) == 2);
	assert_true(get(&e, "hpq_tasks_started_total" TEAM("y")) == 1);
	assert_true(get(&e, "hpq_tasks_submitted_total" TEAM("y")) == 1);
	assert_true(get(&e, "hpq_team_tasks{team=\"x\",pool=\"default\",state=\"pending\"}")
		    == 2);

	/* 3. x's three end cancelled, then one completes and one fails; y's ends
	 * cancelled, so that nothing runs at the restart. */
	/* The pending ones first: the running one's exit would free its GPU. */
	for (int pass = 0; pass < 2; pass++)
		for (int i = 0; i < 3; i++) {
			json_t *t = h_task(c, ids[i]);
			bool now = t && !strcmp(h_str(t, "state"), pass ? "RUNNING" : "PENDING");

			json_decref(t);
			if (!now)
				continue;
			snprintf(idbuf, sizeof(idbuf), "%llu", (unsigned long long)ids[i]);
			assert_int_equal(h_hpq(c, NULL, "cancel", idbuf, NULL), 0);
		}
	assert_true(H_WAIT_FOR(c, page_has(c, FINISHED("x", "cancelled") " 3"), 30000));
	h_submit(c, "--team", "x", "--gpus", "1", "--", "true", NULL);
	h_submit(c, "--team", "x", "--gpus", "1", "--", "false", NULL);
	assert_true(H_WAIT_FOR(c, page_has(c, FINISHED("x", "completed") " 1") &&
				  page_has(c, FINISHED("x", "failed") " 1"), 30000));
	snprintf(idbuf, sizeof(idbuf), "%llu", (unsigned long long)y_id);
	assert_int_equal(h_hpq(c, NULL, "cancel", idbuf, NULL), 0);
	assert_true(H_WAIT_FOR(c, page_has(c, FINISHED("y", "cancelled") " 1"), 30000));
	scrape(c, "default,x,y", &e);
	assert_true(get(&e, FINISHED("x", "timeout")) == 0);
	assert_true(get(&e, "hpq_tasks_submitted_total" TEAM("x")) == 5);
	assert_true(get(&e, "hpq_tasks_started_total" TEAM("x")) == 4);
	assert_true(get(&e, "hpq_tasks{state=\"running\"}") == 0);
	assert_true(get(&e, "hpq_tasks{state=\"pending\"}") == 0);
	assert_true(get(&e, "hpq_node_used_gpus" NODE) == 0);

	/* 4. A restart: what the store holds carries on; the rest starts again. */
	assert_int_equal(h_daemon_stop(c, SIGTERM), 0);
	h_daemon_start(c);
	scrape(c, "default,x,y", &e);
	assert_true(get(&e, "hpq_tasks_submitted_total" TEAM("x")) == 5);
	assert_true(get(&e, "hpq_tasks_submitted_total" TEAM("y")) == 1);
	assert_true(get(&e, "hpq_tasks_started_total" TEAM("x")) == 4);
	assert_true(get(&e, FINISHED("x", "cancelled")) == 3);
	assert_true(get(&e, FINISHED("x", "completed")) == 1);
	assert_true(get(&e, FINISHED("x", "failed")) == 1);
	assert_true(get(&e, FINISHED("y", "cancelled")) == 1);
	assert_true(get(&e, "hpq_tasks_preempted_total" TEAM("x")) == 0);
	assert_true(get(&e, "hpq_tasks_requeued_total" TEAM("x")) == 0);
	assert_true(get(&e, "hpq_node_capacity_gpus" NODE) == 2);
	samples_free(&e);
	h_pass(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(scrape_checked, h_setup, h_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
