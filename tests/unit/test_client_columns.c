/*
 * test_client_columns.c: the task columns of hpq list --format and hpq
 * acct: the --format parser, cells for people and for programs, array
 * ids (ID_INDEX, ID_[spec]), GPU-hours, CSV quoting as RFC 4180 wants it,
 * the JSON of hpq acct (stable keys, numbers as numbers), tables without
 * their header, and the --since/--until times.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "cmd-acct.h"
#include "error.h"
#include "output-columns.h"
#include "output.h"

/* 2024-05-01T12:00:03.250Z */
#define T0 1714564803250LL


/* The printers read task_rows: ts as rows, one list at a time. */
static struct task_rows *rows_of(Hpq__Task *const *ts, size_t n)
{
	static struct task_array_rows rows;

	return task_rows_array(&rows, ts, n);
}
static void test_format_parse(void **state)
{
	size_t cols[TASK_COLUMNS_MAX], n = 99;
	char err[256];

	assert_int_equal(task_columns_parse("id,name,state,reason,exit,elapsed,nodes", cols,
					    TASK_COLUMNS_MAX, &n, err, sizeof(err)),
			 0);
	assert_int_equal(n, 7);
	assert_string_equal(task_columns[cols[0]].name, "id");
	assert_string_equal(task_columns[cols[4]].name, "exit");
	assert_string_equal(task_columns[cols[6]].name, "nodes");
	/* Any case; a column may repeat. */
	assert_int_equal(task_columns_parse("ID,Gpu_Hours,id", cols, TASK_COLUMNS_MAX, &n, err,
					    sizeof(err)),
			 0);
	assert_int_equal(n, 3);
	assert_string_equal(task_columns[cols[1]].name, "gpu_hours");
	assert_int_equal(cols[0], cols[2]);

	n = 99;
	assert_int_equal(task_columns_parse("id,colour", cols, TASK_COLUMNS_MAX, &n, err,
					    sizeof(err)),
			 HPQ_EINVAL);
	assert_non_null(strstr(err, "'colour'"));
	assert_int_equal(n, 99); /* untouched on failure */
	assert_int_equal(task_columns_parse("", cols, TASK_COLUMNS_MAX, &n, err, sizeof(err)),
			 HPQ_EINVAL);
	assert_int_equal(task_columns_parse("id,", cols, TASK_COLUMNS_MAX, &n, err, sizeof(err)),
			 HPQ_EINVAL);
	assert_int_equal(task_columns_parse(",id", cols, TASK_COLUMNS_MAX, &n, err, sizeof(err)),
			 HPQ_EINVAL);
	assert_int_equal(task_columns_parse("id,,name", cols, TASK_COLUMNS_MAX, &n, err,
					    sizeof(err)),
			 HPQ_EINVAL);
	assert_int_equal(task_columns_parse("id,id,id", cols, 2, &n, err, sizeof(err)),
			 HPQ_EINVAL);
	assert_non_null(strstr(err, "more than 2"));
}

/* --help lists every column a --format may name. */
static void test_help_names_every_column(void **state)
{
	for (size_t i = 0; task_columns[i].name; i++) {
		char want[64];
		const char *help = TASK_COLUMNS_HELP, *p = help;
		bool found = false;

		snprintf(want, sizeof(want), "%s", task_columns[i].name);
		while (!found && (p = strstr(p, want))) {
			char after = p[strlen(want)];

			found = (p == help || p[-1] == ' ') &&
				(after == ' ' || after == ',' || after == '\n');
			p++;
		}
		if (!found)
			fail_msg("TASK_COLUMNS_HELP does not name the column '%s'", want);
	}
}

static void test_ids_and_gpu_hours(void **state)
{
	Hpq__Task t = HPQ__TASK__INIT;
	Hpq__Resources per = HPQ__RESOURCES__INIT;
	char buf[64];

	t.id = 12;
	t.state = "COMPLETED";
	assert_string_equal(task_id_text(&t, buf, sizeof(buf)), "12");
	t.id = 17;
	t.array_id = 12;
	t.has_array = true;
	t.array_index = 5;
	assert_string_equal(task_id_text(&t, buf, sizeof(buf)), "12_5");
	t.array_spec = "6-999%50";
	assert_string_equal(task_id_text(&t, buf, sizeof(buf)), "12_[6-999%50]");

	/* 8 GPUs per node x 2 nodes x 90 minutes = 24 GPU-hours. */
	per.gpus = 8;
	t.per_node = &per;
	t.nodes = 2;
	t.start_time = T0;
	t.end_time = T0 + 90 * 60 * 1000;
	assert_int_equal(task_elapsed_s(&t, T0 + 999999999), 5400);
	assert_true(task_gpu_hours(&t, 0) > 23.9999 && task_gpu_hours(&t, 0) < 24.0001);
	/* Running: to now. Pending (also after a requeue): nothing. */
	t.end_time = 0;
	t.state = "RUNNING";
	assert_true(task_gpu_hours(&t, T0 + 1800 * 1000) > 7.9999 &&
		    task_gpu_hours(&t, T0 + 1800 * 1000) < 8.0001);
	t.state = "PENDING";
	assert_true(task_gpu_hours(&t, T0 + 1800 * 1000) == 0.0);
	/* No nodes on the wire means one; no per_node means no GPUs. */
	t.state = "COMPLETED";
	t.end_time = T0 + 3600 * 1000;
	t.nodes = 0;
	assert_true(task_gpu_hours(&t, 0) > 7.9999 && task_gpu_hours(&t, 0) < 8.0001);
	t.per_node = NULL;
	assert_true(task_gpu_hours(&t, 0) == 0.0);
	/* An end before the start (clock skew) is no time, not a huge one. */
	t.per_node = &per;
	t.end_time = T0 - 1000;
	assert_int_equal(task_elapsed_s(&t, 0), 0);

	assert_string_equal(task_bytes_text(512, buf, sizeof(buf)), "512B");
	assert_string_equal(task_bytes_text(2048, buf, sizeof(buf)), "2.0K");
	assert_string_equal(task_bytes_text(3ULL << 29, buf, sizeof(buf)), "1.5G");
}

static void test_csv_quoting(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{"plain", "plain"},
		{"", ""},
		{"a,b", "\"a,b\""},
		{"say \"hi\"", "\"say \"\"hi\"\"\""},
		{"two\nlines", "\"two\nlines\""},
		{"cr\rhere", "\"cr\rhere\""},
		{" lead", "\" lead\""},
		{"trail ", "\"trail \""},
		{"\"", "\"\"\"\""},
		{"caf\xc3\xa9", "caf\xc3\xa9"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n = strlen(cases[i].in);
		char *q = malloc(2 * n + 3);

		*task_csv_quote(q, cases[i].in, n) = '\0';
		assert_string_equal(q, cases[i].out);
		free(q);
	}
}

static char *csv_of(Hpq__Task *const *ts, size_t n, const char *format, bool header)
{
	size_t cols[TASK_COLUMNS_MAX], ncols;
	char err[256], *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	struct task_array_rows rows;

	assert_int_equal(task_columns_parse(format, cols, TASK_COLUMNS_MAX, &ncols, err,
					    sizeof(err)),
			 0);
	task_csv(f, task_rows_array(&rows, ts, n), cols, ncols, header, T0);
	fclose(f);
	return buf;
}

static void test_csv_rows(void **state)
{
	Hpq__Task a = HPQ__TASK__INIT, b = HPQ__TASK__INIT, *ts[] = {&a, &b};
	Hpq__Resources per = HPQ__RESOURCES__INIT;
	char *nodes[] = {"gpu-a", "gpu-b"}, *out;

	per.gpus = 4;
	a.id = 7;
	a.name = "say \"hi\", twice";
	a.state = "FAILED";
	a.has_exit_code = true;
	a.exit_code = 137;
	a.reason = "exit";
	a.nodes = 2;
	a.per_node = &per;
	a.node_names = nodes;
	a.n_node_names = 2;
	a.start_time = T0;
	a.end_time = T0 + 1800 * 1000;
	a.cpu_usec = 1500000;
	a.peak_mem = 1073741824;
	a.attempts = 2;
	a.preemptions = 1;
	b.id = 9;
	b.has_array = true;
	b.array_id = 8;
	b.array_index = 1;
	b.name = "ok";
	b.state = "OUT_OF_MEMORY";
	out = csv_of(ts, 2, "id,name,state,exit,reason,start,end,elapsed,nodes,nodelist,"
			    "gpu_hours,cpu_time,peak_mem,attempts,preemptions",
		     true);
	assert_string_equal(out,
			    "id,name,state,exit,reason,start,end,elapsed,nodes,nodelist,"
			    "gpu_hours,cpu_time,peak_mem,attempts,preemptions\n"
			    "7,\"say \"\"hi\"\", twice\",FAILED,137,exit,2024-05-01T12:00:03.250Z,"
			    "2024-05-01T12:30:03.250Z,1800,2,\"gpu-a,gpu-b\",4.000,1.500,"
			    "1073741824,2,1\n"
			    "8_1,ok,OUT_OF_MEMORY,,,,,0,1,,0.000,0.000,0,0,0\n");
	free(out);
	out = csv_of(ts, 1, "id", false);
	assert_string_equal(out, "7\n");
	free(out);
}

static char *table_of(Hpq__Task *const *ts, size_t n, const char *format, bool header)
{
	size_t cols[TASK_COLUMNS_MAX], ncols;
	struct output_ctx o = {0};
	char err[256], *buf = NULL;
	size_t len = 0;

	assert_int_equal(task_columns_parse(format, cols, TASK_COLUMNS_MAX, &ncols, err,
					    sizeof(err)),
			 0);
	o.out = open_memstream(&buf, &len);
	o.now_ms = T0 + 90 * 1000;
	task_table(&o, rows_of(ts, n), cols, ncols, header);
	fclose(o.out);
	return buf;
}

static void test_tables(void **state)
{
	Hpq__Task a = HPQ__TASK__INIT, b = HPQ__TASK__INIT, *ts[] = {&a, &b};
	char *out;

	a.id = 5;
	a.name = "train";
	a.state = "RUNNING";
	a.start_time = T0;
	b.id = 1234;
	b.has_array = true;
	b.array_id = 1200;
	b.array_spec = "3-99%5";
	b.name = "sweep";
	b.state = "PENDING";
	b.reason = "quota";
	b.queue_position = 2;
	b.held = true;
	out = table_of(ts, 2, "id,name,state,reason,exit,time,held", true);
	assert_string_equal(out, "           ID  NAME   STATE    REASON    EXIT   TIME  HELD\n"
				 "            5  train  RUNNING  -            -  1m30s  no\n"
				 "1200_[3-99%5]  sweep  PENDING  quota #2     -      -  yes\n");
	free(out);
	/* --noheader: the rows alone, their own widths. */
	out = table_of(ts, 2, "id,name", false);
	assert_string_equal(out, "            5  train\n"
				 "1200_[3-99%5]  sweep\n");
	free(out);
	out = table_of(ts, 0, "id,name", false);
	assert_string_equal(out, "");
	free(out);
}

static json_t *get(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	if (!v)
		fail_msg("JSON object has no '%s'", key);
	return v;
}

/*
 * The record hpq acct --json prints, built with jansson, key by key, as
 * hpq(1) lists them: output_json_acct writes the same bytes straight from
 * the reply (test_acct_json_bytes).
 */
static json_t *acct_str(const char *s)
{
	return output_json_text(s ? s : "", s ? strlen(s) : 0);
}

static json_t *acct_time(int64_t ms)
{
	char buf[OUTPUT_TIME_LEN];

	return ms > 0 ? json_string(output_time_iso(ms, buf, sizeof(buf))) : json_null();
}

static json_t *acct_reference(const Hpq__Task *t, int64_t now_ms)
{
	json_t *o = json_object(), *a = json_array();
	uint32_t nodes = t->nodes ? t->nodes : 1;
	uint32_t gpus = t->per_node ? t->per_node->gpus : 0;
	bool spec = t->array_spec && t->array_spec[0];
	/* An array's indices dropped before they were tasks: "12_[5-99]",
	 * of any length */
	size_t cols[TASK_COLUMNS_MAX], ncols;
	struct task_cell_buf b = { 0 };
	char err[64];

	assert_int_equal(task_columns_parse("id", cols, TASK_COLUMNS_MAX, &ncols, err,
					    sizeof(err)), 0);
	json_object_set_new(o, "id", json_integer((json_int_t)t->id));
	json_object_set_new(o, "task", json_string(task_cell_text(t, cols[0], true, now_ms, &b)));
	free(b.s);
	json_object_set_new(o, "array_id", t->has_array || spec
						   ? json_integer((json_int_t)t->array_id)
						   : json_null());
	json_object_set_new(o, "array_index", t->has_array && !spec
						      ? json_integer(t->array_index)
						      : json_null());
	json_object_set_new(o, "array_spec", spec ? acct_str(t->array_spec) : json_null());
	json_object_set_new(o, "name", acct_str(t->name));
	json_object_set_new(o, "user", acct_str(t->user));
	json_object_set_new(o, "team", acct_str(t->team));
	json_object_set_new(o, "class", acct_str(t->class_));
	json_object_set_new(o, "pool", acct_str(t->pool));
	json_object_set_new(o, "state", acct_str(t->state));
	json_object_set_new(o, "exit_code", t->has_exit_code ? json_integer(t->exit_code)
							     : json_null());
	json_object_set_new(o, "reason", acct_str(t->reason));
	json_object_set_new(o, "submit_time", acct_time(t->submit_time));
	json_object_set_new(o, "start_time", acct_time(t->start_time));
	json_object_set_new(o, "end_time", acct_time(t->end_time));
	json_object_set_new(o, "elapsed", json_integer((json_int_t)task_elapsed_s(t, now_ms)));
	json_object_set_new(o, "nodes", json_integer(nodes));
	for (size_t i = 0; i < t->n_node_names; i++)
		json_array_append_new(a, acct_str(t->node_names[i]));
	json_object_set_new(o, "node_names", a);
	json_object_set_new(o, "per_node", output_json_res(t->per_node));
	json_object_set_new(o, "gpus", json_integer(gpus >= HPQ_UNLIMITED_COUNT
							    ? 0
							    : (json_int_t)gpus * nodes));
	json_object_set_new(o, "gpu_hours", json_real(task_gpu_hours(t, now_ms)));
	json_object_set_new(o, "cpu_time", json_real((double)t->cpu_usec / 1e6));
	json_object_set_new(o, "peak_mem", json_integer((json_int_t)t->peak_mem));
	json_object_set_new(o, "attempts", json_integer(t->attempts));
	json_object_set_new(o, "preemptions", json_integer(t->preemptions));
	return o;
}

/* What output_json_acct prints of ts: malloc'd. */
static char *acct_printed(Hpq__Task *const *ts, size_t n, int64_t now_ms)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	output_json_acct(f, rows_of(ts, n), now_ms);
	fclose(f);
	return buf;
}

/* The record output_json_acct prints of t, parsed. */
static json_t *acct_record(const Hpq__Task *t, int64_t now_ms)
{
	Hpq__Task *ts[] = { (Hpq__Task *)t };
	char *s = acct_printed(ts, 1, now_ms);
	json_error_t je;
	json_t *a = json_loads(s, 0, &je), *o;

	if (!a)
		fail_msg("hpq acct --json printed what is not JSON (%s):\n%s", je.text, s);
	free(s);
	assert_int_equal(json_array_size(a), 1);
	o = json_incref(json_array_get(a, 0));
	json_decref(a);
	return o;
}

static void test_acct_json(void **state)
{
	Hpq__Task t = HPQ__TASK__INIT;
	Hpq__Resources per = HPQ__RESOURCES__INIT;
	json_t *o;

	per.gpus = 8;
	per.mem = 1024;
	t.id = 40;
	t.has_array = true;
	t.array_id = 33;
	t.array_index = 7;
	t.name = "sweep";
	t.user = "alice";
	t.team = "t1";
	t.state = "COMPLETED";
	t.has_exit_code = true;
	t.nodes = 1;
	t.per_node = &per;
	t.start_time = T0;
	t.end_time = T0 + 3600 * 1000;
	t.cpu_usec = 2500000;
	t.peak_mem = 4096;
	t.attempts = 1;
	o = acct_record(&t, T0);
	assert_int_equal(json_integer_value(get(o, "id")), 40);
	assert_string_equal(json_string_value(get(o, "task")), "33_7");
	assert_int_equal(json_integer_value(get(o, "array_id")), 33);
	assert_int_equal(json_integer_value(get(o, "array_index")), 7);
	assert_string_equal(json_string_value(get(o, "state")), "COMPLETED");
	assert_true(json_is_integer(get(o, "exit_code")));
	assert_int_equal(json_integer_value(get(o, "exit_code")), 0);
	assert_string_equal(json_string_value(get(o, "start_time")), "2024-05-01T12:00:03.250Z");
	assert_int_equal(json_integer_value(get(o, "elapsed")), 3600);
	assert_int_equal(json_integer_value(get(o, "gpus")), 8);
	assert_true(json_is_real(get(o, "gpu_hours")));
	assert_true(json_real_value(get(o, "gpu_hours")) > 7.9999);
	assert_true(json_real_value(get(o, "cpu_time")) == 2.5);
	assert_int_equal(json_integer_value(get(o, "peak_mem")), 4096);
	assert_int_equal(json_integer_value(get(o, "preemptions")), 0);
	assert_true(json_is_object(get(o, "per_node")));
	assert_true(json_is_array(get(o, "node_names")));
	assert_true(json_is_null(get(o, "submit_time")));
	json_decref(o);

	/* Outside an array, and before an exit code: nulls. */
	t.has_array = false;
	t.has_exit_code = false;
	o = acct_record(&t, T0);
	assert_string_equal(json_string_value(get(o, "task")), "40");
	assert_true(json_is_null(get(o, "array_id")));
	assert_true(json_is_null(get(o, "array_index")));
	assert_true(json_is_null(get(o, "exit_code")));
	assert_true(json_is_null(get(o, "array_spec")));
	json_decref(o);
}

/*
 * hpq acct --json is written straight from the reply: byte for byte what
 * jansson prints of the records (acct_reference) as one array, whatever
 * the fields hold: escapes, bytes that are not UTF-8, an array's dropped
 * ranges, node names, reals of every length, no record at all.
 */
static void test_acct_json_bytes(void **state)
{
	Hpq__Task t[4] = { HPQ__TASK__INIT, HPQ__TASK__INIT, HPQ__TASK__INIT, HPQ__TASK__INIT };
	Hpq__Task *ts[] = { &t[0], &t[1], &t[2], &t[3] };
	Hpq__Resources per = HPQ__RESOURCES__INIT;
	char *nodes[] = { "gpu-a", "gpu \"b\"" }, *got, *want;
	json_t *a;

	per.gpus = 8;
	per.cpus = 96;
	per.mem = 1 << 30;
	t[0].id = 7;
	t[0].name = "train";
	t[0].user = "alice";
	t[0].team = "t1";
	t[0].class_ = "training";
	t[0].pool = "p5";
	t[0].state = "COMPLETED";
	t[0].has_exit_code = true;
	t[0].nodes = 2;
	t[0].per_node = &per;
	t[0].node_names = nodes;
	t[0].n_node_names = 2;
	t[0].submit_time = T0 - 1000;
	t[0].start_time = T0;
	t[0].end_time = T0 + 3723457;
	t[0].cpu_usec = 123456789;
	t[0].peak_mem = 1ull << 33;
	t[0].attempts = 2;
	t[0].preemptions = 1;
	t[1] = t[0];
	t[1].id = 8;
	t[1].has_array = true;
	t[1].array_id = 7;
	t[1].array_index = 3;
	t[1].name = "caf\xc3\xa9 \\ \"q\"\ttab \xff";
	t[1].reason = "line\nbreak";
	t[1].state = "FAILED";
	t[1].exit_code = -9;
	t[1].cpu_usec = 1;
	t[1].end_time = T0 + 1;
	t[2].id = 9;
	t[2].has_array = true;
	t[2].array_id = 9;
	t[2].array_spec = "5-99,120";
	t[2].state = "CANCELLED";
	t[2].end_time = T0;
	t[3].id = 10;
	t[3].state = "TIMEOUT";
	t[3].start_time = T0;
	t[3].end_time = T0 + 1000ll * 86400 * 400;
	t[3].cpu_usec = 99999999999ull;

	a = json_array();
	for (size_t i = 0; i < 4; i++)
		json_array_append_new(a, acct_reference(ts[i], T0 + 5000));
	want = json_dumps(a, JSON_INDENT(2) | JSON_REAL_PRECISION(9));
	json_decref(a);
	got = acct_printed(ts, 4, T0 + 5000);
	assert_int_equal(strlen(got), strlen(want) + 1);
	assert_memory_equal(got, want, strlen(want));
	assert_int_equal(got[strlen(want)], '\n');
	free(got);
	free(want);
	/* No record: the empty array */
	got = acct_printed(ts, 0, T0);
	assert_string_equal(got, "[]\n");
	free(got);
}

/*
 * hpq acct's record of an array's indices that a cancel dropped before
 * they were tasks: its id is the array's, its task the array's ranges
 * whole (ID_[RANGES], of any length), no index, never started: no
 * elapsed time, no GPU-hours. The same id in a table and CSV.
 */
static void test_acct_dropped(void **state)
{
	Hpq__Task t = HPQ__TASK__INIT;
	Hpq__Resources per = HPQ__RESOURCES__INIT;
	char spec[600], want[640], err[128], *p = spec;
	struct task_cell_buf b = { 0 };
	size_t cols[TASK_COLUMNS_MAX], n;
	json_t *o;

	for (int i = 0; i < 100; i++)
		p += sprintf(p, "%s%d", i ? "," : "", 1000 + 3 * i);
	snprintf(want, sizeof(want), "33_[%s]", spec);
	per.gpus = 8;
	t.id = 33;
	t.has_array = true;
	t.array_id = 33;
	t.array_spec = spec;
	t.name = "sweep";
	t.state = "CANCELLED";
	t.reason = "cancelled while pending";
	t.nodes = 2;
	t.per_node = &per;
	t.submit_time = T0;
	t.end_time = T0 + 3600 * 1000;
	o = acct_record(&t, T0 + 7200 * 1000);
	assert_int_equal(json_integer_value(get(o, "id")), 33);
	assert_string_equal(json_string_value(get(o, "task")), want);
	assert_int_equal(json_integer_value(get(o, "array_id")), 33);
	assert_true(json_is_null(get(o, "array_index")));
	assert_string_equal(json_string_value(get(o, "array_spec")), spec);
	assert_true(json_is_null(get(o, "start_time")));
	assert_int_equal(json_integer_value(get(o, "elapsed")), 0);
	assert_true(json_real_value(get(o, "gpu_hours")) == 0);
	json_decref(o);
	assert_int_equal(task_columns_parse("id", cols, TASK_COLUMNS_MAX, &n, err, sizeof(err)), 0);
	assert_string_equal(task_cell_text(&t, cols[0], true, T0, &b), want);
	free(b.s);
}

static void test_acct_time(void **state)
{
	int64_t now = T0, ms = -1;
	char err[256];

	setenv("TZ", "UTC", 1);
	tzset();
	assert_int_equal(acct_parse_time("2024-05-01", now, &ms, err, sizeof(err)), 0);
	assert_int_equal(ms, 1714521600000LL);
	assert_int_equal(acct_parse_time("2024-05-01T10:30", now, &ms, err, sizeof(err)), 0);
	assert_int_equal(ms, 1714521600000LL + 37800000LL);
	assert_int_equal(acct_parse_time("2024-05-01 10:30:15", now, &ms, err, sizeof(err)), 0);
	assert_int_equal(ms, 1714521600000LL + 37815000LL);
	assert_int_equal(acct_parse_time("2h", now, &ms, err, sizeof(err)), 0);
	assert_int_equal(ms, now - 7200000LL);
	assert_int_equal(acct_parse_time("-1d", now, &ms, err, sizeof(err)), 0);
	assert_int_equal(ms, now - 86400000LL);
	assert_int_equal(acct_parse_time("now", now, &ms, err, sizeof(err)), 0);
	assert_int_equal(ms, now);

	ms = 42;
	assert_int_equal(acct_parse_time("yesterday", now, &ms, err, sizeof(err)), HPQ_EINVAL);
	assert_non_null(strstr(err, "'yesterday' is not a time"));
	assert_int_equal(acct_parse_time("2024-13-01", now, &ms, err, sizeof(err)), HPQ_EINVAL);
	assert_int_equal(acct_parse_time("2024-05-01T", now, &ms, err, sizeof(err)), HPQ_EINVAL);
	assert_int_equal(acct_parse_time("2024-05-01x", now, &ms, err, sizeof(err)), HPQ_EINVAL);
	assert_int_equal(acct_parse_time("", now, &ms, err, sizeof(err)), HPQ_EINVAL);
	assert_int_equal(acct_parse_time("--2h", now, &ms, err, sizeof(err)), HPQ_EINVAL);
	assert_int_equal(acct_parse_time("100000d", now, &ms, err, sizeof(err)), HPQ_EINVAL);
	assert_int_equal(ms, 42);
}

/*
 * A time cell reuses a recent second's text (task_cell_buf): the same
 * text as output_time_local / output_time_iso give for every time,
 * whether the second repeats or not (the first one asked of a new buffer
 * is second 0's), in either form, alternating, with its own
 * milliseconds when raw.
 */
static void test_time_cells(void **state)
{
	static const int64_t ms[] = {
		500LL, 1714521600000LL, 1714521600999LL, 1714521600007LL, 1714521601050LL,
		1714521601050LL, 1714521600500LL, 1714521604500LL, 1LL, 999LL, 1000LL,
		253402300799999LL,
	};
	Hpq__Task t = HPQ__TASK__INIT;
	struct task_cell_buf b = { 0 };
	size_t cols[TASK_COLUMNS_MAX], ncols;
	char err[64], want[OUTPUT_TIME_LEN];

	(void)state;
	setenv("TZ", "Europe/Berlin", 1);
	tzset();
	assert_int_equal(task_columns_parse("submit,end", cols, TASK_COLUMNS_MAX, &ncols, err,
					    sizeof(err)), 0);
	for (int pass = 0; pass < 3; pass++)
		for (size_t i = 0; i < sizeof(ms) / sizeof(ms[0]); i++) {
			bool raw = pass == 2 ? i % 2 == 1 : pass == 1;

			t.submit_time = ms[i];
			t.end_time = ms[i] + 1;
			if (raw)
				output_time_iso(ms[i], want, sizeof(want));
			else
				output_time_local(ms[i], want, sizeof(want));
			assert_string_equal(task_cell_text(&t, cols[0], raw, T0, &b), want);
			if (raw)
				output_time_iso(ms[i] + 1, want, sizeof(want));
			else
				output_time_local(ms[i] + 1, want, sizeof(want));
			assert_string_equal(task_cell_text(&t, cols[1], raw, T0, &b), want);
		}
	t.submit_time = 0;
	assert_string_equal(task_cell_text(&t, cols[0], true, T0, &b), "");
	free(b.s);
	setenv("TZ", "UTC", 1);
	tzset();
}

/* hpq list --json: array tasks carry their array's id and index, an
 * array's pending rest its spec; null outside an array. */
static void test_json_task_arrays(void **state)
{
	Hpq__Task t = HPQ__TASK__INIT;
	json_t *o;

	t.id = 5;
	t.state = "PENDING";
	o = output_json_task(&t);
	assert_true(json_is_null(get(o, "array_id")));
	assert_true(json_is_null(get(o, "array_index")));
	assert_true(json_is_null(get(o, "array_spec")));
	assert_true(json_is_false(get(o, "held")));
	json_decref(o);
	t.has_array = true;
	t.array_id = 4;
	t.array_index = 1;
	t.held = true;
	o = output_json_task(&t);
	assert_int_equal(json_integer_value(get(o, "array_id")), 4);
	assert_int_equal(json_integer_value(get(o, "array_index")), 1);
	assert_true(json_is_null(get(o, "array_spec")));
	assert_true(json_is_true(get(o, "held")));
	json_decref(o);
	t.array_spec = "2-9%3";
	o = output_json_task(&t);
	assert_int_equal(json_integer_value(get(o, "array_id")), 4);
	assert_true(json_is_null(get(o, "array_index")));
	assert_string_equal(json_string_value(get(o, "array_spec")), "2-9%3");
	json_decref(o);
}

/* hpq list's default table shows array tasks as ID_INDEX too. */
static void test_text_list_arrays(void **state)
{
	Hpq__Task a = HPQ__TASK__INIT, b = HPQ__TASK__INIT, *ts[] = {&a, &b};
	struct output_ctx o = {0};
	char *buf = NULL;
	size_t len = 0;

	a.id = 13;
	a.has_array = true;
	a.array_id = 12;
	a.array_index = 0;
	a.name = "sweep";
	a.state = "OUT_OF_MEMORY";
	a.has_exit_code = true;
	a.exit_code = 137;
	b.id = 12;
	b.array_id = 12;
	b.array_spec = "1-9";
	b.name = "sweep";
	b.state = "PENDING";
	o.out = open_memstream(&buf, &len);
	output_text.tasks(&o, rows_of(ts, 2));
	fclose(o.out);
	assert_non_null(strstr(buf, "\n    12_0  sweep  -     -     -      OUT_OF_MEMORY   137"));
	assert_non_null(strstr(buf, "\n12_[1-9]  sweep"));
	free(buf);
}

/* An array's pending rest of scattered indices (after holds and cancels
 * of single ones) is an id of any length: shown whole, bracket closed. */
static void test_long_array_spec(void **state)
{
	Hpq__Task b = HPQ__TASK__INIT, *ts[] = {&b};
	struct output_ctx o = {0};
	char spec[600], want[640], *buf = NULL, *out;
	size_t len = 0, at = 0;

	(void)state;
	for (unsigned i = 1; at + 8 < sizeof(spec); i += 3)
		at += (size_t)snprintf(spec + at, sizeof(spec) - at, "%s%u", at ? "," : "", i);
	b.id = 12;
	b.array_id = 12;
	b.array_spec = spec;
	b.name = "sweep";
	b.state = "PENDING";
	snprintf(want, sizeof(want), "12_[%s]  sweep", spec);
	o.out = open_memstream(&buf, &len);
	output_text.tasks(&o, rows_of(ts, 1));
	fclose(o.out);
	assert_non_null(strstr(buf, want));
	free(buf);
	snprintf(want, sizeof(want), "12_[%s]\n", spec);
	out = table_of(ts, 1, "id", false);
	assert_string_equal(out, want);
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format_parse),
		cmocka_unit_test(test_help_names_every_column),
		cmocka_unit_test(test_ids_and_gpu_hours),
		cmocka_unit_test(test_csv_quoting),
		cmocka_unit_test(test_csv_rows),
		cmocka_unit_test(test_tables),
		cmocka_unit_test(test_acct_json),
		cmocka_unit_test(test_acct_json_bytes),
		cmocka_unit_test(test_acct_dropped),
		cmocka_unit_test(test_acct_time),
		cmocka_unit_test(test_time_cells),
		cmocka_unit_test(test_json_task_arrays),
		cmocka_unit_test(test_text_list_arrays),
		cmocka_unit_test(test_long_array_spec),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
