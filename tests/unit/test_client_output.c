/*
 * test_client_output.c: the shapes scripts and people rely on. JSON built
 * from hand-made reply messages must carry the shared field names with
 * the agreed types (ISO-8601 UTC times, null when unset, memory in MiB,
 * null for "no limit"); tables must line up whatever the widths, colours
 * and UTF-8 in their cells, with no trailing blanks. A list with finished
 * tasks has their exit codes; events print under a header line.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dash.h"
#include "output.h"
#include "table.h"

/* 2024-05-01T12:00:03.250Z */
#define T0 1714564803250LL

static json_t *get(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	if (!v)
		fail_msg("JSON object has no '%s'", key);
	return v;
}

static void test_json_task(void **state)
{
	Hpq__Task t = HPQ__TASK__INIT;
	Hpq__Resources per = HPQ__RESOURCES__INIT;
	Hpq__Checkpoint ck = HPQ__CHECKPOINT__INIT, *cks[] = {&ck};
	Hpq__Event ev = HPQ__EVENT__INIT, *evs[] = {&ev};
	char *nodes[] = {"gpu-a", "gpu-b"}, *argv[] = {"python", "train.py"};
	json_t *o, *a;

	t.id = 42;
	t.name = "llm";
	t.team = "team1";
	t.user = "alice";
	t.uid = 1000;
	t.class_ = "training";
	t.pool = "p5";
	t.state = "RUNNING";
	t.nodes = 2;
	t.node_names = nodes;
	t.n_node_names = 2;
	per.gpus = 8;
	per.cpus = 96;
	per.mem = 1048576;
	t.per_node = &per;
	t.attempts = 3;
	t.submit_time = T0;
	t.start_time = T0 + 60000;
	t.time_limit_s = 7200;
	t.argv = argv;
	t.n_argv = 2;
	t.cwd = "/home/alice";
	ck.step = 500;
	ck.path = "/ck/500";
	ck.time = T0 / 1000 + 120; /* seconds on the wire */
	ck.attempt = 2;
	t.checkpoints = cks;
	t.n_checkpoints = 1;
	ev.time = T0;
	ev.kind = "submit";
	ev.actor = "alice";
	ev.message = "queued";
	t.events = evs;
	t.n_events = 1;

	o = output_json_task(&t);
	assert_int_equal(json_integer_value(get(o, "id")), 42);
	assert_string_equal(json_string_value(get(o, "name")), "llm");
	assert_string_equal(json_string_value(get(o, "team")), "team1");
	assert_string_equal(json_string_value(get(o, "user")), "alice");
	assert_string_equal(json_string_value(get(o, "class")), "training");
	assert_string_equal(json_string_value(get(o, "pool")), "p5");
	assert_string_equal(json_string_value(get(o, "state")), "RUNNING");
	assert_string_equal(json_string_value(get(o, "reason")), "");
	assert_int_equal(json_integer_value(get(o, "nodes")), 2);
	assert_int_equal(json_array_size(get(o, "node_names")), 2);
	assert_string_equal(json_string_value(json_array_get(get(o, "node_names"), 1)), "gpu-b");
	assert_int_equal(json_integer_value(get(get(o, "per_node"), "gpus")), 8);
	assert_int_equal(json_integer_value(get(get(o, "per_node"), "cpus")), 96);
	assert_int_equal(json_integer_value(get(get(o, "per_node"), "mem")), 1048576);
	assert_int_equal(json_integer_value(get(o, "attempts")), 3);
	assert_string_equal(json_string_value(get(o, "submit_time")), "2024-05-01T12:00:03.250Z");
	assert_string_equal(json_string_value(get(o, "start_time")), "2024-05-01T12:01:03.250Z");
	assert_true(json_is_null(get(o, "end_time")));
	assert_true(json_is_null(get(o, "exit_code")));
	assert_int_equal(json_integer_value(get(o, "time_limit")), 7200);
	assert_string_equal(json_string_value(get(o, "preempt_signal")), "TERM");
	assert_true(json_is_null(get(o, "grace")));
	assert_string_equal(json_string_value(get(o, "cwd")), "/home/alice");
	assert_string_equal(json_string_value(json_array_get(get(o, "argv"), 0)), "python");

	a = get(o, "checkpoints");
	assert_int_equal(json_array_size(a), 1);
	assert_int_equal(json_integer_value(get(json_array_get(a, 0), "step")), 500);
	assert_string_equal(json_string_value(get(json_array_get(a, 0), "path")), "/ck/500");
	assert_string_equal(json_string_value(get(json_array_get(a, 0), "time")),
			    "2024-05-01T12:02:03.000Z");
	assert_int_equal(json_integer_value(get(json_array_get(a, 0), "attempt")), 2);

	a = get(o, "events");
	assert_int_equal(json_array_size(a), 1);
	assert_string_equal(json_string_value(get(json_array_get(a, 0), "kind")), "submit");
	assert_string_equal(json_string_value(get(json_array_get(a, 0), "time")),
			    "2024-05-01T12:00:03.250Z");
	assert_string_equal(json_string_value(get(json_array_get(a, 0), "actor")), "alice");
	assert_string_equal(json_string_value(get(json_array_get(a, 0), "node")), "");
	assert_string_equal(json_string_value(get(json_array_get(a, 0), "message")), "queued");
	json_decref(o);

	/* Ended: exit code 0 is a number, not null; no limit is null. */
	t.end_time = T0 + 120000;
	t.has_exit_code = true;
	t.exit_code = 0;
	t.time_limit_s = 0;
	t.nodes = 0; /* proto default: one node */
	t.preempt_signal = SIGUSR1;
	t.grace_s = 30;
	o = output_json_task(&t);
	assert_true(json_is_integer(get(o, "exit_code")));
	assert_int_equal(json_integer_value(get(o, "exit_code")), 0);
	assert_string_equal(json_string_value(get(o, "end_time")), "2024-05-01T12:02:03.250Z");
	assert_true(json_is_null(get(o, "time_limit")));
	assert_int_equal(json_integer_value(get(o, "nodes")), 1);
	assert_string_equal(json_string_value(get(o, "preempt_signal")), "USR1");
	assert_int_equal(json_integer_value(get(o, "grace")), 30);
	json_decref(o);
}

/* Bytes that are not UTF-8 must not make the reply unprintable. */
static void test_json_bad_utf8(void **state)
{
	Hpq__Task t = HPQ__TASK__INIT;
	char *argv[] = {"echo", "caf\xc3\xa9", "bad\xff\xfe", "\xe2\x82"};
	json_t *o, *a;

	t.argv = argv;
	t.n_argv = 4;
	o = output_json_task(&t);
	a = get(o, "argv");
	assert_string_equal(json_string_value(json_array_get(a, 1)), "caf\xc3\xa9");
	assert_string_equal(json_string_value(json_array_get(a, 2)),
			    "bad\xef\xbf\xbd\xef\xbf\xbd");
	assert_string_equal(json_string_value(json_array_get(a, 3)), "\xef\xbf\xbd\xef\xbf\xbd");
	json_decref(o);
}

/* A task's output is bytes: NULs are kept, bad UTF-8 becomes U+FFFD. */
static void test_json_text_bytes(void **state)
{
	json_t *v = output_json_text("a\0b\xff", 4);
	char *dump;

	assert_int_equal(json_string_length(v), 6);
	assert_memory_equal(json_string_value(v), "a\0b\xef\xbf\xbd", 6);
	dump = json_dumps(v, JSON_ENCODE_ANY);
	assert_string_equal(dump, "\"a\\u0000b\xef\xbf\xbd\"");
	free(dump);
	json_decref(v);
}

static void test_json_node_team_class(void **state)
{
	Hpq__Node n = HPQ__NODE__INIT;
	Hpq__Resources cap = HPQ__RESOURCES__INIT, used = HPQ__RESOURCES__INIT;
	uint64_t tasks[] = {7, 9};
	Hpq__Team t = HPQ__TEAM__INIT;
	Hpq__PoolQuota q = HPQ__POOL_QUOTA__INIT, *qs[] = {&q};
	Hpq__Resources g = HPQ__RESOURCES__INIT, abs = HPQ__RESOURCES__INIT;
	Hpq__PriorityClass c = HPQ__PRIORITY_CLASS__INIT;
	json_t *o, *qo;

	n.name = "gpu-a";
	n.pool = "p5";
	cap.gpus = 8;
	cap.mem = 2048;
	n.capacity = &cap;
	n.used = &used;
	n.health = "healthy";
	n.service = "active";
	n.connected = true;
	n.last_heartbeat = T0;
	n.tasks = tasks;
	n.n_tasks = 2;
	o = output_json_node(&n);
	assert_string_equal(json_string_value(get(o, "name")), "gpu-a");
	assert_int_equal(json_integer_value(get(get(o, "capacity"), "gpus")), 8);
	assert_int_equal(json_integer_value(get(get(o, "capacity"), "mem")), 2048);
	assert_int_equal(json_integer_value(get(get(o, "used"), "gpus")), 0);
	assert_true(json_is_true(get(o, "connected")));
	assert_string_equal(json_string_value(get(o, "last_heartbeat")),
			    "2024-05-01T12:00:03.250Z");
	assert_int_equal(json_integer_value(json_array_get(get(o, "tasks"), 1)), 9);
	assert_int_equal(json_array_size(get(o, "findings")), 0);
	json_decref(o);

	t.name = "team1";
	t.weight = 2;
	t.preempt_own = "never";
	q.pool = "p5";
	g.gpus = 8;
	q.guarantee = &g;
	q.sharing = "lend-and-borrow";
	q.borrow_limit_pct = 100;
	q.has_borrow_limit_abs = true;
	abs.gpus = 4;
	abs.cpus = HPQ_UNLIMITED_COUNT;
	abs.mem = HPQ_UNLIMITED_MEM;
	q.borrow_limit_abs = &abs;
	t.quotas = qs;
	t.n_quotas = 1;
	o = output_json_team(&t);
	assert_string_equal(json_string_value(get(o, "name")), "team1");
	assert_int_equal(json_integer_value(get(o, "weight")), 2);
	assert_int_equal(json_array_size(get(o, "members")), 0);
	qo = json_array_get(get(o, "quotas"), 0);
	assert_string_equal(json_string_value(get(qo, "pool")), "p5");
	assert_int_equal(json_integer_value(get(get(qo, "guarantee"), "gpus")), 8);
	assert_int_equal(json_integer_value(get(qo, "borrow_limit_pct")), 100);
	assert_int_equal(json_integer_value(get(get(qo, "borrow_limit_abs"), "gpus")), 4);
	assert_true(json_is_null(get(get(qo, "borrow_limit_abs"), "cpus")));
	assert_true(json_is_null(get(get(qo, "borrow_limit_abs"), "mem")));
	assert_true(json_is_null(get(qo, "lend_limit")));
	json_decref(o);

	c.name = "inference";
	c.weight = 15;
	o = output_json_class(&c);
	assert_int_equal(json_integer_value(get(o, "weight")), 15);
	assert_true(json_is_false(get(o, "preemptible")));
	json_decref(o);
}

/* The printed document parses back and is an array for lists. */
static void test_json_document(void **state)
{
	Hpq__Task t1 = HPQ__TASK__INIT, t2 = HPQ__TASK__INIT, *ts[] = {&t1, &t2};
	struct output_ctx o = {0};
	char *buf = NULL;
	size_t len = 0;
	json_error_t err;
	json_t *v;

	t1.id = 1;
	t2.id = 2;
	o.out = open_memstream(&buf, &len);
	output_json.tasks(&o, ts, 2);
	output_json.submitted(&o, 77);
	fclose(o.out);
	v = json_loadb(buf, len, JSON_DISABLE_EOF_CHECK, &err);
	assert_non_null(v);
	assert_true(json_is_array(v));
	assert_int_equal(json_array_size(v), 2);
	assert_int_equal(json_integer_value(get(json_array_get(v, 1), "id")), 2);
	json_decref(v);
	v = json_loads(buf + err.position, 0, &err);
	assert_non_null(v);
	assert_int_equal(json_integer_value(get(v, "id")), 77);
	json_decref(v);
	free(buf);
}

/* ---------------------------------------------------------------- tables */

static char *print_table(struct table *t, bool colour)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	table_print(t, f, colour);
	fclose(f);
	return buf;
}

/* Removes ANSI SGR sequences in place. */
static void strip_sgr(char *s)
{
	char *w = s;

	for (char *r = s; *r;) {
		if (r[0] == '\033' && r[1] == '[') {
			r += 2;
			while (*r && *r != 'm')
				r++;
			if (*r)
				r++;
			continue;
		}
		*w++ = *r++;
	}
	*w = '\0';
}

static void test_table_alignment(void **state)
{
	struct table *t = table_new(3, "ID", "NAME", "STATE");
	char *out, *plain;

	table_align_right(t, 0);
	table_add(t, NULL, "%d", 7);
	table_add(t, NULL, "%s", "short");
	table_add(t, "\033[32m", "%s", "RUNNING");
	table_add(t, NULL, "%d", 12345);
	table_add(t, NULL, "%s", "caf\xc3\xa9-long-name"); /* 14 characters, 15 bytes */
	table_add(t, NULL, "%s", "");                      /* empty: "-" */
	assert_int_equal(table_rows(t), 2);

	plain = print_table(t, false);
	assert_string_equal(plain, "   ID  NAME            STATE\n"
				   "    7  short           RUNNING\n"
				   "12345  caf\xc3\xa9-long-name  -\n");

	/* Colour adds escapes but never moves a column. */
	out = print_table(t, true);
	assert_non_null(strstr(out, "\033[32mRUNNING\033[0m"));
	assert_non_null(strstr(out, "\033[1mNAME\033[0m"));
	strip_sgr(out);
	assert_string_equal(out, plain);
	free(out);
	free(plain);
	table_free(t);
}

static void test_table_cells(void **state)
{
	struct table *t = table_new(2, "A", "B");
	char *out;

	/* A header alone still prints; control characters cannot break rows:
	 * they print as visible escapes (escape.h), ESC included. */
	out = print_table(t, false);
	assert_string_equal(out, "A  B\n");
	free(out);
	table_add(t, NULL, "x\ny");
	table_add(t, NULL, "tab\there\x1b[2J");
	out = print_table(t, false);
	assert_string_equal(out, "A     B\nx\\ny  tab\\there\\x1b[2J\n");
	free(out);
	assert_int_equal(table_width("\xe6\x97\xa5\xe6\x9c\xac"), 2);
	table_free(t);
}

/* The task list prints one aligned row per task with the columns people scan. */
static void test_text_task_list(void **state)
{
	Hpq__Task a = HPQ__TASK__INIT, b = HPQ__TASK__INIT, *ts[] = {&a, &b};
	Hpq__Resources per = HPQ__RESOURCES__INIT;
	struct output_ctx o = {0};
	char *buf = NULL, *nodes[] = {"gpu-a"};
	size_t len = 0;

	per.gpus = 4;
	a.id = 5;
	a.name = "train";
	a.team = "team2";
	a.user = "bob";
	a.class_ = "training";
	a.state = "RUNNING";
	a.nodes = 2;
	a.per_node = &per;
	a.start_time = T0;
	b.id = 123;
	b.name = "eval";
	b.team = "team1";
	b.user = "alice";
	b.state = "PENDING";
	b.reason = "quota";
	/* Requeued: its last attempt's start and nodes are history. */
	b.start_time = T0;
	b.node_names = nodes;
	b.n_node_names = 1;
	o.out = open_memstream(&buf, &len);
	o.now_ms = T0 + 90 * 1000;
	output_text.tasks(&o, ts, 2);
	fclose(o.out);

	/* Columns: ID NAME TEAM USER CLASS STATE REASON NODES GPUS TIME NODELIST */
	assert_string_equal(buf, " ID  NAME   TEAM   USER   CLASS     STATE    REASON  NODES  "
				 "GPUS   TIME  NODELIST\n"
				 "  5  train  team2  bob    training  RUNNING  -           2  "
				 "   8  1m30s  -\n"
				 "123  eval   team1  alice  -         PENDING  quota       1  "
				 "   0      -  -\n");
	free(buf);
}

/* With finished tasks the list has their exit codes, after STATE. */
static void test_text_task_list_finished(void **state)
{
	Hpq__Task a = HPQ__TASK__INIT, b = HPQ__TASK__INIT, c = HPQ__TASK__INIT;
	Hpq__Task *ts[] = {&a, &b, &c};
	struct output_ctx o = {0};
	char *buf = NULL;
	size_t len = 0;

	a.id = 1;
	a.name = "ok";
	a.state = "COMPLETED";
	a.has_exit_code = true;
	a.start_time = T0;
	a.end_time = T0 + 2000;
	b.id = 2;
	b.name = "bad";
	b.state = "FAILED";
	b.reason = "exit";
	b.has_exit_code = true;
	b.exit_code = 137;
	b.start_time = T0;
	b.end_time = T0 + 61000;
	c.id = 3;
	c.name = "run";
	c.state = "RUNNING";
	c.start_time = T0;
	o.out = open_memstream(&buf, &len);
	o.now_ms = T0 + 90 * 1000;
	output_text.tasks(&o, ts, 3);
	fclose(o.out);

	assert_string_equal(buf, "ID  NAME  TEAM  USER  CLASS  STATE      EXIT  REASON  NODES  "
				 "GPUS   TIME  NODELIST\n"
				 " 1  ok    -     -     -      COMPLETED     0  -           1  "
				 "   0     2s  -\n"
				 " 2  bad   -     -     -      FAILED      137  exit        1  "
				 "   0   1m1s  -\n"
				 " 3  run   -     -     -      RUNNING       -  -           1  "
				 "   0  1m30s  -\n");
	free(buf);
}

/* hpq events: a header, then one line per event in the same columns. */
static void test_text_events(void **state)
{
	Hpq__Event e = HPQ__EVENT__INIT, f = HPQ__EVENT__INIT;
	char *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);

	e.time = T0;
	e.kind = "submit";
	e.task_id = 12;
	e.actor = "alice";
	e.message = "queued in team nlp";
	f.time = T0 + 1000;
	f.kind = "node";
	f.node = "gpu-01";
	f.actor = "hpqd";
	f.message = "line\nbreak";
	dash_event_header(out);
	dash_event_text(out, &e);
	dash_event_text(out, &f);
	fclose(out);
	assert_string_equal(buf,
		"TIME                 KIND       TASK       NODE         ACTOR      MESSAGE\n"
		"2024-05-01 12:00:03  submit     task 12    -            alice      queued in "
		"team nlp\n"
		"2024-05-01 12:00:04  node       -          gpu-01       hpqd       line\\nbreak\n");
	free(buf);
}

static void test_formatting(void **state)
{
	Hpq__Resources r = HPQ__RESOURCES__INIT;
	char buf[64], *s;
	char *argv[] = {"sh", "-c", "echo 'hi' $HOME", "", "a=b,c/d"};

	assert_string_equal(output_time_iso(T0, buf, sizeof(buf)), "2024-05-01T12:00:03.250Z");
	assert_string_equal(output_ago(T0, T0 - 45000, buf, sizeof(buf)), "45s ago");
	assert_string_equal(output_ago(T0, T0 - 3 * 3600000 - 120000, buf, sizeof(buf)),
			    "3h2m ago");
	assert_string_equal(output_ago(T0, T0 + 5000, buf, sizeof(buf)), "in 5s");
	assert_string_equal(output_ago(T0, T0 - 3600000, buf, sizeof(buf)), "1h ago");
	assert_string_equal(output_ago(T0, T0 - 2 * 86400000 - 59000, buf, sizeof(buf)),
			    "2d ago");
	assert_string_equal(output_ago(T0, T0 - 754000, buf, sizeof(buf)), "12m34s ago");
	assert_string_equal(output_ago(T0, 0, buf, sizeof(buf)), "-");
	assert_string_equal(output_count(HPQ_UNLIMITED_COUNT, buf, sizeof(buf)), "unlimited");
	assert_string_equal(output_mem(HPQ_UNLIMITED_MEM, buf, sizeof(buf)), "unlimited");
	r.gpus = 1;
	r.cpus = 2;
	r.mem = 1536;
	assert_string_equal(output_res(&r, buf, sizeof(buf)), "1 gpu, 2 cpus, 1536M mem");
	s = output_argv(argv, 5);
	assert_string_equal(s, "sh -c 'echo '\\''hi'\\'' $HOME' '' a=b,c/d");
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json_task),
		cmocka_unit_test(test_json_bad_utf8),
		cmocka_unit_test(test_json_text_bytes),
		cmocka_unit_test(test_json_node_team_class),
		cmocka_unit_test(test_json_document),
		cmocka_unit_test(test_table_alignment),
		cmocka_unit_test(test_table_cells),
		cmocka_unit_test(test_text_task_list),
		cmocka_unit_test(test_text_task_list_finished),
		cmocka_unit_test(test_text_events),
		cmocka_unit_test(test_formatting),
	};

	/* Relative times are computed in UTC for repeatable output. */
	setenv("TZ", "UTC", 1);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
