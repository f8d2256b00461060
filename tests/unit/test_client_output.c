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
#include "error.h"
#include "output-columns.h"
#include "output.h"
#include "table.h"
#include "xalloc.h"

/* 2024-05-01T12:00:03.250Z */
#define T0 1714564803250LL


/* The printers read task_rows: ts as rows, one list at a time. */
static struct task_rows *rows_of(Hpq__Task *const *ts, size_t n)
{
	static struct task_array_rows rows;

	return task_rows_array(&rows, ts, n);
}
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
	output_json.tasks(&o, rows_of(ts, 2));
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

/*
 * The task list is written without jansson, for speed: it must print what
 * dumping output_json_task values as one array prints, byte for byte,
 * whatever the fields hold (escapes, bytes that are not UTF-8, nulls,
 * unlimited resources, nested arrays and objects, numbers at their ends).
 */
static void test_json_list_as_jansson(void **state)
{
	Hpq__Task t[6], *ts[6];
	Hpq__Resources per = HPQ__RESOURCES__INIT, unl = HPQ__RESOURCES__INIT;
	Hpq__Checkpoint ck = HPQ__CHECKPOINT__INIT, *cks[] = {&ck, &ck};
	Hpq__Event ev = HPQ__EVENT__INIT, ev2 = HPQ__EVENT__INIT, *evs[] = {&ev, &ev2};
	char *nodes[] = {"gpu-a", "gpu-\"b\""};
	char *argv[] = {"sh", "-c", "echo \"hi\\\"\t\n\x01/\x7f"};
	char *params[] = {"lr=0.1", "caf\xc3\xa9", "bad\xff\xfe"};
	struct output_ctx o = {0};
	char *buf = NULL, *want;
	size_t len = 0;
	json_t *a = json_array();

	for (size_t i = 0; i < 6; i++) {
		hpq__task__init(&t[i]);
		ts[i] = &t[i];
	}
	per.gpus = 8;
	per.cpus = 96;
	per.mem = 1048576;
	unl.gpus = 1000000000u;
	unl.cpus = 4000000000u;
	unl.mem = (uint64_t)1 << 50;
	ck.step = 500;
	ck.path = "/ck/\"500\"";
	ck.time = T0 / 1000 + 120;
	ck.attempt = 2;
	ev.time = T0;
	ev.kind = "submit";
	ev.actor = "alice";
	ev.node = "";
	ev.message = "queued \xe2\x9c\x93";
	ev2.time = T0 + 1999;
	ev2.kind = "end";
	ev2.message = "line\nbreak";

	/* Every field set. */
	t[0].id = 42;
	t[0].name = "llm";
	t[0].team = "team1";
	t[0].user = "alice";
	t[0].uid = 1000;
	t[0].gid = 4294967295u;
	t[0].class_ = "training";
	t[0].pool = "p5";
	t[0].state = "RUNNING";
	t[0].reason = "";
	t[0].queue_position = 7;
	t[0].nodes = 2;
	t[0].node_names = nodes;
	t[0].n_node_names = 2;
	t[0].per_node = &per;
	t[0].attempts = 3;
	t[0].submit_time = T0;
	t[0].start_time = T0 + 60000;
	t[0].end_time = T0 + 60001;
	t[0].has_exit_code = true;
	t[0].exit_code = -2147483647 - 1;
	t[0].time_limit_s = 7200;
	t[0].checkpoint_dir = "/ck";
	t[0].preempt_signal = 10;
	t[0].grace_s = 30;
	t[0].checkpoints = cks;
	t[0].n_checkpoints = 2;
	t[0].events = evs;
	t[0].n_events = 2;
	t[0].argv = argv;
	t[0].n_argv = 3;
	t[0].cwd = "/home/al\\ice";
	t[0].has_array = true;
	t[0].array_id = 40;
	t[0].array_index = 2;
	t[0].held = true;
	t[0].dependency = "afterok:41";
	t[0].output = "/out/%j.log";
	t[0].error = "\x1b[31m";
	t[0].has_script = true;
	t[0].peak_mem = UINT64_MAX;
	t[0].cpu_usec = 123456789012345ull;
	t[0].preemptions = 4294967295u;
	t[0].plan = "llm";
	t[0].recipe = "torch";
	t[0].recipe_version = "2";
	t[0].recipe_params = params;
	t[0].n_recipe_params = 3;
	/* Nothing set at all: NULL strings. */
	/* Withheld, unlimited, an array's pending rest, an id past INT64_MAX. */
	t[2].id = UINT64_MAX;
	t[2].name = "n\xc3";
	t[2].redacted = true;
	t[2].per_node = &unl;
	t[2].array_spec = "5-999%50";
	t[2].array_id = 7;
	t[2].preempt_signal = 999;
	t[2].submit_time = T0 + 1000;
	/* A recipe with nothing in it, empty lists. */
	t[3].recipe = "r";
	t[3].state = "PENDING";
	t[3].submit_time = -5;
	/* Times in other seconds than the one before. */
	t[4].submit_time = T0 + 86400000;
	t[4].start_time = T0;
	t[5].submit_time = T0 + 86400000;
	t[5].name = "plain ascii ~!@#$%^&*()_+`-={}|[]:;'<>?,./";

	for (size_t i = 0; i < 6; i++)
		json_array_append_new(a, output_json_task(&t[i]));
	want = json_dumps(a, JSON_INDENT(2));
	assert_non_null(want);
	json_decref(a);

	o.out = open_memstream(&buf, &len);
	output_json.tasks(&o, rows_of(ts, 6));
	fclose(o.out);
	assert_int_equal(len, strlen(want) + 1);
	assert_memory_equal(buf, want, strlen(want));
	assert_int_equal(buf[len - 1], '\n');
	free(buf);
	free(want);

	/* No tasks: an empty array. */
	buf = NULL;
	o.out = open_memstream(&buf, &len);
	output_json.tasks(&o, rows_of(ts, 0));
	fclose(o.out);
	assert_string_equal(buf, "[]\n");
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

/* Cells as the table keeps them: lengths of one, two and three bytes,
 * wide cells (fewer characters than bytes), columns added at run time, a
 * hidden header that no longer sets widths, a short last row, colours. */
static void test_table_kept_cells(void **state)
{
	struct table *t = table_new(1, "NAME");
	char *out, *want, *big = malloc(20001), *mid = malloc(301);

	memset(big, 'b', 20000);
	big[20000] = '\0';
	memset(mid, 'm', 300);
	mid[300] = '\0';
	table_add_column(t, "LONG-HEADER");
	table_add_column(t, "TEXT");
	table_align_right(t, 1);
	table_add(t, NULL, "%s", mid);
	table_add(t, "\033[31m", "%s", "1");
	table_add(t, NULL, "%s", "x");
	table_add(t, NULL, "%s", "\xe6\x97\xa5\xe6\x9c\xac"); /* 2 characters, 6 bytes */
	table_add(t, "\033[32m", "%s", "22");
	table_add(t, NULL, "%s", big);
	table_add(t, NULL, "%s", "z");
	assert_int_equal(table_rows(t), 3);

	out = print_table(t, false);
	xasprintf(&want, "NAME%*s  LONG-HEADER  TEXT\n%s            1  x\n"
		  "\xe6\x97\xa5\xe6\x9c\xac%*s           22  %s\nz\n", 296, "", mid, 298, "", big);
	assert_string_equal(out, want);
	free(want);
	free(out);
	out = print_table(t, true);
	assert_non_null(strstr(out, "\033[31m1\033[0m"));
	assert_non_null(strstr(out, "\033[32m22\033[0m"));
	assert_non_null(strstr(out, "\033[1mLONG-HEADER\033[0m"));
	free(out);

	/* Without its header, the second column is as wide as "22". */
	table_hide_header(t);
	out = print_table(t, false);
	xasprintf(&want, "%s   1  x\n\xe6\x97\xa5\xe6\x9c\xac%*s  22  %s\nz\n", mid, 298, "",
		  big);
	assert_string_equal(out, want);
	free(want);
	free(out);
	free(big);
	free(mid);
	table_free(t);
}

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
	output_text.tasks(&o, rows_of(ts, 2));
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

/* hpq list's table has a printer of its own, without the table module:
 * the same bytes as the table of the same columns (which hpq list
 * --format prints), for arrays, queue positions, node lists, finished
 * tasks, cells to escape, cells of UTF-8, and with colour; with a header
 * and without one (--noheader), whose widths then do not count. The
 * first is returned as fast, the second as table. */
static void print_both_colour(Hpq__Task *const *ts, size_t n, const char *spec, bool colour,
			      char **fast, char **table)
{
	struct output_ctx o = {0};
	size_t cols[TASK_COLUMNS_MAX], ncols = 0, len = 0;
	char err[128], *bare_fast = NULL, *bare_table = NULL;

	assert_int_equal(task_columns_parse(spec, cols, TASK_COLUMNS_MAX, &ncols, err,
					    sizeof(err)), 0);
	o.now_ms = T0 + 90 * 1000;
	o.colour = colour;
	*fast = NULL;
	o.out = open_memstream(fast, &len);
	output_text.tasks(&o, rows_of(ts, n));
	fclose(o.out);
	*table = NULL;
	o.out = open_memstream(table, &len);
	task_table(&o, rows_of(ts, n), cols, ncols, true);
	fclose(o.out);

	/* Without the header (--noheader), whose widths no longer count. */
	o.noheader = true;
	o.out = open_memstream(&bare_fast, &len);
	output_text.tasks(&o, rows_of(ts, n));
	fclose(o.out);
	o.out = open_memstream(&bare_table, &len);
	task_table(&o, rows_of(ts, n), cols, ncols, false);
	fclose(o.out);
	assert_string_equal(bare_fast, bare_table);
	free(bare_fast);
	free(bare_table);
}

static void print_both(Hpq__Task *const *ts, size_t n, const char *spec, char **fast,
		       char **table)
{
	print_both_colour(ts, n, spec, false, fast, table);
}

static void test_text_task_list_as_table(void **state)
{
	Hpq__Task t[5], *ts[5];
	Hpq__Resources per = HPQ__RESOURCES__INIT;
	char *nodes[] = {"gpu-a", "gpu-b"}, *fast, *table;
	const char *active = "id,name,team,user,class,state,reason,nodes,gpus,time,nodelist";

	for (size_t i = 0; i < 5; i++) {
		hpq__task__init(&t[i]);
		ts[i] = &t[i];
		t[i].state = "PENDING";
	}
	per.gpus = 8;
	t[0].id = 7;
	t[0].name = "a-long-task-name";
	t[0].team = "t";
	t[0].user = "alice";
	t[0].class_ = "batch";
	t[0].reason = "capacity";
	t[0].queue_position = 12;
	t[1].id = 40;
	t[1].has_array = true;
	t[1].array_id = 40;
	t[1].array_index = 3;
	t[1].queue_position = 1;
	t[2].id = 41;
	t[2].array_id = 40;
	t[2].array_spec = "5-999%50";
	t[2].reason = "held";
	t[3].id = 123456789;
	t[3].state = "RUNNING";
	t[3].nodes = 2;
	t[3].per_node = &per;
	t[3].node_names = nodes;
	t[3].n_node_names = 2;
	t[3].start_time = T0 + 1000;
	t[4].id = 8;
	t[4].state = "PREEMPTING";
	t[4].start_time = T0;
	print_both(ts, 5, active, &fast, &table);
	assert_string_equal(fast, table);
	free(fast);
	free(table);

	/* A finished task adds EXIT. */
	t[4].state = "FAILED";
	t[4].has_exit_code = true;
	t[4].exit_code = -9;
	t[4].end_time = T0 + 5000;
	print_both(ts, 5, "id,name,team,user,class,state,exit,reason,nodes,gpus,time,nodelist",
		   &fast, &table);
	assert_string_equal(fast, table);
	free(fast);
	free(table);

	/* A cell to escape, and cells shown in fewer characters than their
	 * bytes: escapes and UTF-8, in columns aligned both ways. */
	t[0].name = "tab\there";
	t[1].team = "\xc3\xa9quipe-\xe6\x97\xa5\xe6\x9c\xac";
	t[2].reason = "bad \xff byte";
	t[3].node_names[1] = "gpu-\xc3\xa9";
	print_both(ts, 5, "id,name,team,user,class,state,exit,reason,nodes,gpus,time,nodelist",
		   &fast, &table);
	assert_non_null(strstr(fast, "tab\\there"));
	assert_non_null(strstr(fast, "bad \\xff byte"));
	assert_string_equal(fast, table);
	free(fast);
	free(table);

	/* With colour: the header bold, each state in its colour. */
	print_both_colour(ts, 5, "id,name,team,user,class,state,exit,reason,nodes,gpus,time,"
			  "nodelist", true, &fast, &table);
	assert_non_null(strstr(fast, "\033[1mID\033[0m"));
	assert_non_null(strstr(fast, "\033[31mFAILED\033[0m"));
	assert_string_equal(fast, table);
	free(fast);
	free(table);
	t[4].state = "RUNNING";
	t[4].has_exit_code = false;
	print_both_colour(ts, 5, "id,name,team,user,class,state,reason,nodes,gpus,time,nodelist",
			  true, &fast, &table);
	assert_string_equal(fast, table);
	free(fast);
	free(table);
}

/*
 * Rows whose texts go away as they are read, as hpq list's frames do:
 * every row's name is the same buffer with another text, and the rows'
 * gen says so. The printer must not take a text for the one it saw at
 * that address before: a control character would reach the terminal.
 */
struct reused_rows {
	struct task_rows rows;
	Hpq__Task task;
	char name[16];
	size_t i, n;
};

static const Hpq__Task *reused_next(struct task_rows *r)
{
	struct reused_rows *u = (struct reused_rows *)r;

	if (u->i == u->n)
		return NULL;
	u->rows.gen++;
	snprintf(u->name, sizeof(u->name), u->i % 2 ? "a\033[2Jb" : "plain-%zu", u->i);
	u->task.id = ++u->i;
	return &u->task;
}

static void reused_rewind(struct task_rows *r)
{
	((struct reused_rows *)r)->i = 0;
}

static void test_text_task_list_reused_texts(void **state)
{
	struct reused_rows u = { .rows = { .next = reused_next, .rewind = reused_rewind },
				 .n = 4 };
	struct output_ctx o = {0};
	char *buf = NULL;
	size_t len = 0;

	hpq__task__init(&u.task);
	u.task.name = u.name;
	u.task.state = "PENDING";
	o.out = open_memstream(&buf, &len);
	output_text.tasks(&o, &u.rows);
	fclose(o.out);
	assert_null(strchr(buf, '\033'));
	assert_non_null(strstr(buf, "\n 2  a\\x1b[2Jb  -"));
	assert_non_null(strstr(buf, "\n 3  plain-2    -"));
	free(buf);
}

/*
 * The same over many varied rows, drawn from a fixed seed: the two-pass
 * printer's widths and cells agree with the table's whatever the ids,
 * positions, node and GPU counts, empty texts and states. Most rounds
 * have a few rows, so that each row is often the widest in some column.
 */
static void test_text_task_list_varied(void **state)
{
	static const char *const names[] = {"", "a", "train-llm", "a-much-longer-task-name"};
	static const char *const reasons[] = {"", "held", "capacity", "unhealthy-pool"};
	static const char *const states[] = {"PENDING", "PENDING", "PENDING", "RUNNING",
					     "FAILED"};
	static const uint64_t scale[] = {1, 10, 1000, 100000, 10000000000ull};
	/* The long rounds' lists pass the printer's 64 KiB chunks several
	 * times, at a different place in a row each time. */
	enum { N = 2000, CHUNK = 64 << 10 };
	Hpq__Task t[N], *ts[N];
	Hpq__Resources per[N];
	char *nodes[] = {"gpu-a", "gpu-b"}, *fast, *table;
	unsigned seed = 1;
	bool finished;

	for (int round = 0; round < 320; round++) {
		size_t n = round < 300 ? 1 + (size_t)rand_r(&seed) % 5 : N;

		for (size_t i = 0; i < n; i++) {
			hpq__task__init(&t[i]);
			hpq__resources__init(&per[i]);
			ts[i] = &t[i];
			t[i].id = 1 + (uint64_t)rand_r(&seed) % scale[rand_r(&seed) % 5];
			t[i].name = (char *)names[rand_r(&seed) % 4];
			t[i].team = (char *)names[rand_r(&seed) % 4];
			t[i].user = "alice";
			t[i].class_ = (char *)names[rand_r(&seed) % 2];
			t[i].state = (char *)states[rand_r(&seed) % 5];
			t[i].reason = (char *)reasons[rand_r(&seed) % 4];
			if (rand_r(&seed) % 2)
				t[i].queue_position = 1 + (uint32_t)rand_r(&seed) %
							       (uint32_t)scale[rand_r(&seed) % 4];
			t[i].nodes = (uint32_t)rand_r(&seed) % (uint32_t)scale[rand_r(&seed) % 4];
			if (rand_r(&seed) % 2) {
				per[i].gpus = (uint32_t)rand_r(&seed) % (uint32_t)scale[rand_r(&seed) % 4];
				t[i].per_node = &per[i];
			}
			if (rand_r(&seed) % 8 == 0) {
				t[i].has_array = true;
				t[i].array_id = t[i].id;
				t[i].array_index = (uint32_t)rand_r(&seed) % 1000;
			}
			if (strcmp(t[i].state, "PENDING")) {
				t[i].start_time = T0 - (int64_t)(rand_r(&seed) % 100000) * 1000;
				t[i].node_names = nodes;
				t[i].n_node_names = 1 + (size_t)rand_r(&seed) % 2;
			}
			if (!strcmp(t[i].state, "FAILED")) {
				t[i].has_exit_code = true;
				t[i].exit_code = 1;
				t[i].end_time = T0;
			}
		}
		/* With a finished task the list has EXIT (every third round has
		 * none). */
		finished = false;
		for (size_t i = 0; i < n; i++) {
			if (round % 3 == 0 && !strcmp(t[i].state, "FAILED"))
				t[i].state = "PENDING";
			finished = finished || !strcmp(t[i].state, "FAILED");
		}
		print_both(ts, n, finished ?
			   "id,name,team,user,class,state,exit,reason,nodes,gpus,time,nodelist" :
			   "id,name,team,user,class,state,reason,nodes,gpus,time,nodelist",
			   &fast, &table);
		assert_string_equal(fast, table);
		if (n == N)
			assert_true(strlen(fast) > 2 * CHUNK);
		free(fast);
		free(table);
	}
}

/*
 * Cells of every length, and more rows than one block of the printer's
 * kept rows holds: a cell's length takes one byte below 255 and five from
 * it, a row longer than a block has one of its own, and 20,000 rows of
 * names of many lengths cross the blocks' ends at a different place in a
 * row each time. Every row is as wide as the longest name, so the rows
 * with the longest are few.
 */
static void test_text_task_list_long_cells(void **state)
{
	enum { N = 20000, LONG = 70000, HUGE = 3 << 20 };
	const char *cols = "id,name,team,user,class,state,reason,nodes,gpus,time,nodelist";
	Hpq__Task *t = calloc(N, sizeof(*t)), **ts = calloc(N, sizeof(*ts));
	char *name = malloc(HUGE + 1), *fast, *table;

	assert_non_null(t);
	assert_non_null(ts);
	assert_non_null(name);
	memset(name, 'n', HUGE);
	for (size_t i = 0; i < N; i++) {
		hpq__task__init(&t[i]);
		ts[i] = &t[i];
		t[i].id = 1 + i;
		t[i].state = "PENDING";
		t[i].team = "t";
		t[i].user = "alice";
		t[i].reason = "held";
		t[i].queue_position = (uint32_t)(i % 3 ? i : 0);
		/* Each its own text, as in a reply: 0 to 256 bytes. */
		t[i].name = name + HUGE - i * 7 % 257;
	}
	name[HUGE] = '\0';
	print_both(ts, N, cols, &fast, &table);
	/* Every row holds the widest name: 256 bytes. */
	assert_true(strlen(fast) > (size_t)N * 256);
	assert_string_equal(fast, table);
	free(fast);
	free(table);

	/* A cell of 70,000 bytes, and one longer than a block. */
	t[0].name = name + HUGE - LONG;
	t[1].name = name;
	t[2].name = "short";
	print_both(ts, 3, cols, &fast, &table);
	assert_true(strlen(fast) > 3u * HUGE);
	assert_string_equal(fast, table);
	free(fast);
	free(table);
	free(name);
	free(ts);
	free(t);
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
	output_text.tasks(&o, rows_of(ts, 3));
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

/* Job-control failures: alike ones in a row are one line that counts them;
 * a different id or message, or a summary of refusals, is a line of its own. */
static void test_result_errors(void **state)
{
	Hpq__CancelResult v[6], *r[6];
	const char *msg[6] = { "array 12's pending indices are not running",
			       "array 12's pending indices are not running",
			       "array 12's pending indices are not running",
			       "12_9 is no longer pending", "not yours", "not yours" };
	const uint64_t ids[6] = { 12, 12, 12, 12, 0, 0 };
	size_t len, used;
	char *buf;
	FILE *f;

	(void)state;
	for (int i = 0; i < 6; i++) {
		hpq__cancel_result__init(&v[i]);
		v[i].id = ids[i];
		v[i].code = i < 4 ? HPQ_ESTATE : HPQ_EPERM;
		v[i].message = (char *)msg[i];
		v[i].tasks = i < 4 ? 0 : 40;
		r[i] = &v[i];
	}
	f = open_memstream(&buf, &len);
	for (size_t i = 0; i < 6; i += used)
		used = output_result_error(f, "requeue", r + i, 6 - i);
	fclose(f);
	assert_string_equal(buf,
		"hpq: cannot requeue task 12: array 12's pending indices are not running (the "
		"same for 2 more)\n"
		"hpq: cannot requeue task 12: 12_9 is no longer pending\n"
		"hpq: cannot requeue 40 more tasks: not yours; to act on your own, add --user $USER\n"
		"hpq: cannot requeue 40 more tasks: not yours; to act on your own, add --user $USER\n");
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
		cmocka_unit_test(test_json_list_as_jansson),
		cmocka_unit_test(test_table_alignment),
		cmocka_unit_test(test_table_cells),
		cmocka_unit_test(test_table_kept_cells),
		cmocka_unit_test(test_text_task_list),
		cmocka_unit_test(test_text_task_list_as_table),
		cmocka_unit_test(test_text_task_list_varied),
		cmocka_unit_test(test_text_task_list_long_cells),
		cmocka_unit_test(test_text_task_list_reused_texts),
		cmocka_unit_test(test_text_task_list_finished),
		cmocka_unit_test(test_text_events),
		cmocka_unit_test(test_formatting),
		cmocka_unit_test(test_result_errors),
	};

	/* Relative times are computed in UTC for repeatable output. */
	setenv("TZ", "UTC", 1);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
