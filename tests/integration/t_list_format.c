/*
 * t_list_format: what scripts and the shell completion read from
 * `hpq list`, against a real cluster, and the job-control commands'
 * refusals, which need no daemon support.
 *
 * - `list --format COLUMNS` prints exactly those columns, in that order,
 *   with the exit code of a finished task in `exit`; `--noheader` leaves
 *   the header out: `list --format id --noheader --state active` is one id
 *   a line, the running and pending tasks, as the completion asks it.
 * - Columns beyond the default table's (limit, dependency, ...) come as
 *   columns too (LIST_VIEW_FORMAT), each field as whole tasks carry it;
 *   the default table's frames leave them out, and a view hpqd does not
 *   know is refused.
 * - An unknown column, or --format with --json, is a usage error (2).
 * - `cancel`, `hold`, `release` and `requeue` with neither ids nor
 *   filters are refused (2) and cancel nothing; plain ids still cancel
 *   through the older request, so an older hpqd keeps working.
 * - `update` with an unknown key or a malformed value is refused (2).
 * - A list longer than one frame holds (33,000 pending array indices,
 *   one row each, between two plain tasks) comes whole, every row once,
 *   in the order of a list that fits in one frame: table, --format and
 *   --json alike, also past a small [limits] max_write_queue; a table's
 *   columns are as wide as their widest cell in any frame; --limit
 *   still keeps the newest. Asked in order (as --json asks, to print each
 *   frame as it comes), the frames themselves come oldest first.
 * - Such a list is built over several turns of hpqd's loop: requests sent
 *   right behind it on the same connection are answered before its last
 *   frame, a task they submit is not in it, and a client that hangs up
 *   halfway leaves hpqd serving (and, under ASan, leaking nothing).
 * - Such a list written where it does not fit (/dev/full), as a table or
 *   as --json, fails (1) and says so: its rows go to the file by write(2),
 *   around stdio, and a refused write must still count.
 * - Job control over a whole array or by filters leaves out the tasks
 *   that have ended: an array whose first index was cancelled is
 *   released, held and cancelled whole without a failure; one that has
 *   ended altogether is an error that says so; the plain id of one
 *   whose first task ended cancels the rest without a complaint that
 *   hpqd did not answer for that id. A task or index named
 *   twice (12_[1-2] 12_2, 12 12_3, or a plain id twice) is acted on
 *   once, without a failure for the second time. A
 *   cancel of a range from an array's head (12_[0-9]) cancels every index
 *   of it, the one made the new head by the head's cancel too, whether
 *   root or the owner asks (hpqd once crashed on the owner's); a hold of
 *   12_[0-2] holds each of them the same. Indices
 *   named past an array's end are one failure, not one each; more than
 *   a million indices in one request are refused, nothing done.
 * - A filter over others' tasks (hpq cancel --state pending as nobody,
 *   150 of root's pending): nobody's own task is cancelled, root's stay;
 *   100 refusals come one by one, the other 50 as one summary line (and
 *   one --json entry with "tasks": 50) counted in "150 failed", exit 1,
 *   and no more "denied" events than answers.
 * - An array whose first task ended and left memory still has its pending
 *   rest listed: one row, or every index once over several frames, with
 *   or without a limit.
 * - A reply sent while such a list lies unread (all of it built, far more
 *   than the socket takes plus the 64K limit) is not refused for the
 *   list's bytes: the client that reads both gets both.
 */
#include <fcntl.h>
#include <pwd.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client.h"
#include "harness.h"
#include "msg.h"

/* Whether text has a line of exactly these whitespace-separated words. */
static bool has_row(const char *text, const char *const *words, size_t n)
{
	char *copy = strdup(text), *save = NULL;
	bool found = false;

	for (char *line = strtok_r(copy, "\n", &save); line && !found;
	     line = strtok_r(NULL, "\n", &save)) {
		char *s2 = NULL, *w = strtok_r(line, " ", &s2);
		size_t i = 0;

		while (w && i < n && strcmp(w, words[i]) == 0) {
			w = strtok_r(NULL, " ", &s2);
			i++;
		}
		found = i == n && !w;
	}
	free(copy);
	return found;
}

/* The line of text whose first word is id, up to its newline (copied into
 * buf), or NULL. */
static const char *line_of(const char *text, uint64_t id, char *buf, size_t len)
{
	for (const char *l = text; *l; l += strcspn(l, "\n") + (l[strcspn(l, "\n")] != 0)) {
		char *end;

		if (strtoull(l, &end, 10) == id && (*end == ' ' || *end == '\n' || !*end)) {
			snprintf(buf, len, "%.*s", (int)strcspn(l, "\n"), l);
			return buf;
		}
	}
	return NULL;
}

static size_t count_lines(const char *text)
{
	size_t n = 0;

	for (; *text; text++)
		n += *text == '\n';
	return n;
}

/* One whole list on its own connection, as view asks for it. */
static Hpq__ListReply *list_view_call(struct h_cluster *c, uint32_t view, Hpq__Envelope **reply)
{
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__ListRequest list = HPQ__LIST_REQUEST__INIT;
	char *all[] = { (char *)"pending", (char *)"running", (char *)"failed" };
	struct hpq_client cl;

	if (hpq_client_connect(&cl, c->sock, 30000) < 0)
		fail_msg("cannot connect: %s", cl.errbuf);
	list.view = view;
	list.columns = true;
	list.states = all;
	list.n_states = 3;
	env.body_case = HPQ__ENVELOPE__BODY_LIST;
	env.list = &list;
	if (hpq_client_call(&cl, &env, reply) != 0) {
		hpq_client_close(&cl);
		return NULL;
	}
	hpq_client_close(&cl);
	assert_int_equal((*reply)->body_case, HPQ__ENVELOPE__BODY_LIST_REPLY);
	assert_false((*reply)->list_reply->more);
	return (*reply)->list_reply;
}

/*
 * LIST_VIEW_FORMAT's columns say what whole tasks do: the same rows, each
 * with the pool, times, counts, dependency and usage that a --format
 * column shows. LIST_VIEW_TABLE's frame has none of them; a view hpqd
 * does not know is refused.
 */
static void format_view_agrees(struct h_cluster *c, size_t want_rows)
{
	Hpq__Envelope *full_env = NULL, *fmt_env = NULL, *tab_env = NULL, *bad = NULL;
	const Hpq__ListReply *full = list_view_call(c, HPQ__LIST_VIEW__LIST_VIEW_FULL, &full_env);
	const Hpq__ListReply *fmt = list_view_call(c, HPQ__LIST_VIEW__LIST_VIEW_FORMAT, &fmt_env);
	const Hpq__ListReply *tab = list_view_call(c, HPQ__LIST_VIEW__LIST_VIEW_TABLE, &tab_env);
	const Hpq__TaskColumns *k;

	assert_non_null(full);
	assert_non_null(fmt);
	assert_non_null(tab);
	assert_int_equal(full->n_tasks, want_rows);
	assert_non_null(k = fmt->columns);
	assert_int_equal(fmt->n_tasks, 0);
	assert_int_equal(k->n_id, want_rows);
	assert_int_equal(k->n_pool, want_rows);
	assert_int_equal(k->n_peak_mem, want_rows);
	for (size_t i = 0; i < want_rows; i++) {
		const Hpq__Task *t = full->tasks[i];

		assert_int_equal(k->id[i], t->id);
		assert_string_equal(k->strings[k->name[i]], t->name);
		assert_string_equal(k->strings[k->state[i]], t->state);
		assert_string_equal(k->strings[k->pool[i]], t->pool);
		assert_string_equal(k->strings[k->dependency[i]], t->dependency);
		assert_int_equal(k->submit_time[i], t->submit_time);
		assert_true(k->submit_time[i] > 0);
		assert_int_equal(k->time_limit_s[i], t->time_limit_s);
		assert_int_equal(k->attempts[i], t->attempts);
		assert_int_equal(k->preemptions[i], t->preemptions);
		assert_int_equal(k->cpu_usec[i], t->cpu_usec);
		assert_int_equal(k->peak_mem[i], t->peak_mem);
	}
	assert_non_null(tab->columns);
	assert_int_equal(tab->columns->n_id, want_rows);
	assert_int_equal(tab->columns->n_pool, 0);
	assert_int_equal(tab->columns->n_submit_time, 0);
	hpq_msg_free(full_env);
	hpq_msg_free(fmt_env);
	hpq_msg_free(tab_env);
	assert_null(list_view_call(c, HPQ__LIST_VIEW__LIST_VIEW_FORMAT + 1, &bad));
}

static void list_format(void **state)
{
	struct h_cluster *c = *state;
	uint64_t done, run, pend, held, dep;
	char want[256], ids[32], line[256];
	struct h_out o;
	json_t *t;

	h_daemon_start(c);
	h_agent_start(c, "node1", 0, 1, "1G");
	assert_true(h_wait_nodes(c, 1, 30000));

	done = h_submit(c, "--name", "done", "--", "sh", "-c", "exit 4", NULL);
	assert_true(h_wait_state(c, done, "FAILED", 30000));
	run = h_submit(c, "--name", "run", "--cpus", "1", "--", "sleep", "120", NULL);
	assert_true(h_wait_state(c, run, "RUNNING", 30000));
	pend = h_submit(c, "--name", "pend", "--cpus", "1", "--", "true", NULL);

	/* Chosen columns, in order; the exit code of the finished task. */
	assert_int_equal(h_hpq(c, &o, "list", "--all", "--format", "ID,name,state,exit", NULL), 0);
	{
		const char *header[] = {"ID", "NAME", "STATE", "EXIT"};
		const char *row[] = {ids, "done", "FAILED", "4"};

		snprintf(ids, sizeof(ids), "%" PRIu64, done);
		if (!has_row(o.out, header, 4) || !has_row(o.out, row, 4))
			fail_msg("no header or no row '%s done FAILED 4' in:\n%s", ids, o.out);
		assert_int_equal(count_lines(o.out), 4);
	}
	h_out_free(&o);

	/* hpqd fills one Task for all of a table's rows: a held task listed
	 * right after a queued one has no queue position of its own. */
	/* Columns beyond the default table's come from LIST_VIEW_FORMAT. */
	snprintf(want, sizeof(want), "afterok:%" PRIu64, run);
	dep = h_submit(c, "--name", "dep", "--time", "90", "--dependency", want, "--cpus", "1",
		       "--", "true", NULL);
	format_view_agrees(c, 4);
	assert_int_equal(h_hpq(c, &o, "list", "--format", "id,limit,attempts,dependency",
			       "--noheader", NULL), 0);
	if (!line_of(o.out, dep, line, sizeof(line)) || !strstr(line, "1h30m") ||
	    !strstr(line, want))
		fail_msg("the dependent task's row has no 1h30m and %s in:\n%s", want, o.out);
	h_out_free(&o);
	assert_int_equal(h_hpq(c, NULL, "cancel", h_id(dep), NULL), 0);
	assert_true(h_wait_state(c, dep, "CANCELLED", 30000));

	held = h_submit(c, "--hold", "--name", "held", "--", "true", NULL);
	assert_int_equal(h_hpq(c, &o, "list", "--format", "id,reason", "--noheader", NULL), 0);
	if (!line_of(o.out, pend, line, sizeof(line)) || !strstr(line, "#1"))
		fail_msg("the queued task's row has no #1 in:\n%s", o.out);
	if (!line_of(o.out, held, line, sizeof(line)) || !strstr(line, "held") ||
	    strchr(line, '#'))
		fail_msg("the held task's row is not 'held' alone in:\n%s", o.out);
	h_out_free(&o);
	snprintf(ids, sizeof(ids), "%" PRIu64, held);
	assert_int_equal(h_hpq(c, NULL, "cancel", ids, NULL), 0);
	assert_true(h_wait_state(c, held, "CANCELLED", 30000));

	/* The completion's question: the active ids, one a line, no header. */
	assert_int_equal(h_hpq(c, &o, "list", "--format", "id", "--noheader", "--state", "active",
			       NULL),
			 0);
	assert_int_equal(count_lines(o.out), 2);
	snprintf(ids, sizeof(ids), "%" PRIu64, run);
	assert_true(has_row(o.out, (const char *[]){ids}, 1));
	snprintf(ids, sizeof(ids), "%" PRIu64, pend);
	assert_true(has_row(o.out, (const char *[]){ids}, 1));
	h_out_free(&o);

	assert_int_equal(h_hpq(c, &o, "list", "--format", "id,colour", NULL), 2);
	assert_non_null(strstr(o.err, "'colour'"));
	h_out_free(&o);
	assert_int_equal(h_hpq(c, &o, "list", "--format", "id", "--json", NULL), 2);
	h_out_free(&o);

	/* Nothing selected: refused, and nothing is cancelled or held. */
	assert_int_equal(h_hpq(c, &o, "cancel", NULL), 2);
	assert_non_null(strstr(o.err, "--user"));
	h_out_free(&o);
	assert_int_equal(h_hpq(c, NULL, "hold", NULL), 2);
	assert_int_equal(h_hpq(c, NULL, "release", NULL), 2);
	assert_int_equal(h_hpq(c, NULL, "requeue", NULL), 2);
	assert_int_equal(h_hpq(c, NULL, "cancel", "12_[3-1]", NULL), 2);
	snprintf(ids, sizeof(ids), "%" PRIu64, pend);
	assert_int_equal(h_hpq(c, NULL, "update", ids, "colour=red", NULL), 2);
	assert_int_equal(h_hpq(c, NULL, "update", ids, "time=soon", NULL), 2);
	t = h_task(c, run);
	assert_string_equal(h_str(t, "state"), "RUNNING");
	json_decref(t);
	t = h_task(c, pend);
	assert_string_equal(h_str(t, "state"), "PENDING");
	json_decref(t);

	/* Plain ids go the older way and still work. */
	assert_int_equal(h_hpq(c, &o, "cancel", ids, NULL), 0);
	snprintf(want, sizeof(want), "cancelled task %" PRIu64 "\n", pend);
	assert_string_equal(o.out, want);
	h_out_free(&o);
	t = h_task(c, pend);
	assert_string_equal(h_str(t, "state"), "CANCELLED");
	json_decref(t);
	snprintf(ids, sizeof(ids), "%" PRIu64, run);
	assert_int_equal(h_hpq(c, NULL, "cancel", ids, NULL), 0);
	assert_true(h_wait_state(c, run, "CANCELLED", 30000));
	h_pass(c);
}

/* `hpq list ARGS...` with its output to path and its errors to err.txt;
 * returns its exit status. */
static int list_to(struct h_cluster *c, const char *path, const char *arg, ...)
{
	const char *argv[8] = { "hpq", "list", "--expand-arrays" };
	size_t n = 3;
	va_list ap;
	pid_t pid;
	int st;

	va_start(ap, arg);
	for (; arg && n + 1 < sizeof(argv) / sizeof(argv[0]); arg = va_arg(ap, const char *))
		argv[n++] = arg;
	va_end(ap);
	argv[n] = NULL;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int out = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int err = open(h_path(c, "err.txt"), O_WRONLY | O_CREAT | O_TRUNC, 0600);

		if (out < 0 || err < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
			_exit(127);
		setenv("HPQ_SOCKET", c->sock, 1);
		execv(h_bin("hpq"), (char *const *)argv);
		_exit(127);
	}
	st = h_wait_child(c, pid, 60000);
	assert_true(st >= 0 && WIFEXITED(st));
	return WEXITSTATUS(st);
}

/* An array's pending rows: more than one frame of columns holds without
 * stream, whose budget (4 MiB less 64 KiB) hpqd counts at 128 bytes a row
 * at most: 32,256 rows. */
#define MANY 33000

/*
 * The frames of a streamed ListRequest with in_order, read raw: each says
 * in_order, all but the last say more, and the rows of frame after frame
 * are the list oldest first: first, then every pending index of array
 * from the highest, then last. Returns how many frames came. Without
 * stream, the rows come in one frame, which hpqd builds newest first and
 * sends oldest first: the newest that fit in it (MANY rows take more than
 * a frame's budget, as columns counted at their most or as whole tasks
 * packed one by one), and it says truncated.
 */
static size_t in_order_frames(struct h_cluster *c, uint64_t first, uint64_t array,
			      uint64_t last, bool columns, bool stream)
{
	Hpq__Envelope env = HPQ__ENVELOPE__INIT, *reply = NULL;
	Hpq__ListRequest req = HPQ__LIST_REQUEST__INIT;
	struct hpq_client cl;
	size_t frames = 0, row = 0, n;
	bool more = true;

	if (hpq_client_connect(&cl, c->sock, 30000) < 0)
		fail_msg("cannot connect: %s", cl.errbuf);
	req.stream = stream;
	req.in_order = stream;
	req.expand_arrays = true;
	req.view = columns ? HPQ__LIST_VIEW__LIST_VIEW_TABLE : HPQ__LIST_VIEW__LIST_VIEW_FULL;
	req.columns = columns;
	env.body_case = HPQ__ENVELOPE__BODY_LIST;
	env.list = &req;
	assert_int_equal(hpq_client_call(&cl, &env, &reply), 0);
	while (more) {
		const Hpq__ListReply *lr = reply->list_reply;

		n = columns ? lr->columns->n_id : lr->n_tasks;
		assert_int_equal(lr->in_order, stream);
		assert_int_equal(lr->truncated, !stream);
		if (!stream) {        /* the newest rows: where they start in the list */
			assert_true(n > 0 && n < MANY + 2);
			row = MANY + 2 - n;
		}
		for (size_t i = 0; i < n; i++, row++) {
			uint64_t id = columns ? lr->columns->id[i] : lr->tasks[i]->id;
			uint32_t idx = columns ? lr->columns->array_index[i]
					       : lr->tasks[i]->array_index;

			if (row == 0)
				assert_int_equal(id, first);
			else if (row == MANY + 1)
				assert_int_equal(id, last);
			else if (row == 1)
				assert_true(id == array && idx == 0);
			else if (id != array || idx != MANY + 1 - row)
				fail_msg("row %zu is %" PRIu64 "_%u, not %" PRIu64 "_%zu", row, id,
					 idx, array, (size_t)MANY + 1 - row);
		}
		frames++;
		more = lr->more;
		hpq_msg_free(reply);
		reply = NULL;
		if (more)
			assert_int_equal(hpq_client_next(&cl, env.id, &reply), 0);
	}
	assert_int_equal(row, MANY + 2);
	hpq_client_close(&cl);
	return frames;
}

/* env asks for every row, oldest first, as the table's columns, streamed. */
static void table_list_request(Hpq__Envelope *env, Hpq__ListRequest *list, uint64_t id)
{
	list->stream = list->in_order = list->expand_arrays = list->columns = true;
	list->view = HPQ__LIST_VIEW__LIST_VIEW_TABLE;
	env->id = id;
	env->body_case = HPQ__ENVELOPE__BODY_LIST;
	env->list = list;
}

/* Sends env on fd in one write. */
static void send_request(int fd, const Hpq__Envelope *env)
{
	uint8_t *buf = NULL;
	size_t len = 0;

	h_append_frame(&buf, &len, env);
	assert_int_equal(send(fd, buf, len, MSG_NOSIGNAL), (ssize_t)len);
	free(buf);
}

/*
 * One write: a list of every row in order (expanded: it pauses within
 * the array's rows), a submit and a status request. The submit and the
 * status are taken before the list's last frame (the status is answered
 * at once, so before it too), and the task submitted is not in the list,
 * which has every row once, oldest first.
 * Then lists asked for and left unread by a client that hangs up: one
 * sent as it is built, one held to be sent oldest first.
 */
static void list_over_turns(struct h_cluster *c, uint64_t first, uint64_t array,
			    uint64_t last)
{
	Hpq__Envelope list_env = HPQ__ENVELOPE__INIT, sub_env = HPQ__ENVELOPE__INIT;
	Hpq__Envelope st_env = HPQ__ENVELOPE__INIT, *rep;
	Hpq__ListRequest list = HPQ__LIST_REQUEST__INIT;
	Hpq__SubmitRequest sub = HPQ__SUBMIT_REQUEST__INIT;
	Hpq__TaskSpec spec = HPQ__TASK_SPEC__INIT;
	Hpq__Resources res = HPQ__RESOURCES__INIT;
	Hpq__StatusRequest status = HPQ__STATUS_REQUEST__INIT;
	char *argv[] = { (char *)"true" };
	struct hpq_client cl;
	uint8_t *buf = NULL;
	size_t len = 0, rows = 0, frames = 0, list_frames = 0;
	uint64_t late = 0;
	bool listed = false, status_seen = false;

	if (hpq_client_connect(&cl, c->sock, 30000) < 0)
		fail_msg("cannot connect: %s", cl.errbuf);
	table_list_request(&list_env, &list, 101);
	res.cpus = 1;
	spec.per_node = &res;
	spec.name = (char *)"late";
	spec.n_argv = 1;
	spec.argv = argv;
	spec.cwd = (char *)"/";
	spec.hold = true;
	sub.spec = &spec;
	sub_env.id = 102;
	sub_env.body_case = HPQ__ENVELOPE__BODY_SUBMIT;
	sub_env.submit = &sub;
	st_env.id = 103;
	st_env.body_case = HPQ__ENVELOPE__BODY_STATUS;
	st_env.status = &status;
	h_append_frame(&buf, &len, &list_env);
	h_append_frame(&buf, &len, &sub_env);
	h_append_frame(&buf, &len, &st_env);
	assert_int_equal(send(cl.fd, buf, len, MSG_NOSIGNAL), (ssize_t)len);
	free(buf);

	while (!listed || !late || !status_seen) {
		const Hpq__TaskColumns *col;

		rep = h_next_frame(cl.fd, &cl.framer, 30000);
		if (!rep)
			fail_msg("hpqd stopped answering after %zu frames", frames);
		frames++;
		if (rep->id == 102) {
			/* Answered after its commit: before or after the list's end. */
			assert_int_equal(rep->body_case, HPQ__ENVELOPE__BODY_SUBMIT_REPLY);
			late = rep->submit_reply->id;
		} else if (rep->id == 103) {
			assert_int_equal(rep->body_case, HPQ__ENVELOPE__BODY_STATUS_REPLY);
			assert_false(listed);
			status_seen = true;
		} else {
			assert_int_equal(rep->id, 101);
			assert_int_equal(rep->body_case, HPQ__ENVELOPE__BODY_LIST_REPLY);
			col = rep->list_reply->columns;
			assert_non_null(col);
			for (size_t i = 0; i < col->n_id; i++, rows++) {
				uint64_t id = col->id[i];
				uint32_t idx = col->array_index[i];

				if (rows == 0)
					assert_int_equal(id, first);
				else if (rows == MANY + 1)
					assert_int_equal(id, last);
				else if (rows > MANY + 1)
					fail_msg("row %zu (task %" PRIu64 ") after the last", rows,
						 id);
				else if (rows == 1)
					assert_true(id == array && idx == 0);
				else if (id != array || idx != MANY + 1 - rows)
					fail_msg("row %zu is %" PRIu64 "_%u, not %" PRIu64 "_%zu",
						 rows, id, idx, array, (size_t)MANY + 1 - rows);
			}
			list_frames++;
			listed = !rep->list_reply->more;
		}
		hpq_msg_free(rep);
	}
	assert_int_equal(rows, MANY + 2);
	assert_true(list_frames > 2);
	assert_true(late > last);
	hpq_client_close(&cl);
	assert_int_equal(h_hpq(c, NULL, "cancel", h_id(late), NULL), 0);

	/* Asked for and never read: hpqd drops the rest when the client goes. */
	if (hpq_client_connect(&cl, c->sock, 30000) < 0)
		fail_msg("cannot connect: %s", cl.errbuf);
	send_request(cl.fd, &list_env);
	rep = h_next_frame(cl.fd, &cl.framer, 30000);
	assert_non_null(rep);
	assert_int_equal(rep->body_case, HPQ__ENVELOPE__BODY_LIST_REPLY);
	assert_true(rep->list_reply->more);
	hpq_msg_free(rep);
	hpq_client_close(&cl);
	/* The same with a limit: its frames are held until the last is built. */
	if (hpq_client_connect(&cl, c->sock, 30000) < 0)
		fail_msg("cannot connect: %s", cl.errbuf);
	list.limit = 20000;
	send_request(cl.fd, &list_env);
	hpq_client_close(&cl);
	assert_int_equal(h_hpq(c, NULL, "status", NULL), 0);
}

/*
 * A reply queued behind a long one the client has not read yet: the
 * list's later frames are not held against max_write_queue (64K here),
 * so a client that asked for a list and then a status, and reads both,
 * gets both. The list, all of it built before the status is asked for,
 * is far more than the socket holds plus 64K: before the fix, the status
 * reply found that much queued and hpqd hung up.
 */
static void reply_behind_list(struct h_cluster *c)
{
	Hpq__Envelope list_env = HPQ__ENVELOPE__INIT, st_env = HPQ__ENVELOPE__INIT, *rep;
	Hpq__ListRequest list = HPQ__LIST_REQUEST__INIT;
	Hpq__StatusRequest status = HPQ__STATUS_REQUEST__INIT;
	struct hpq_client cl;
	size_t rows = 0, bytes = 0;
	bool listed = false, status_seen = false;
	char *sock_buf;

	if (hpq_client_connect(&cl, c->sock, 30000) < 0)
		fail_msg("cannot connect: %s", cl.errbuf);
	table_list_request(&list_env, &list, 4242);
	send_request(cl.fd, &list_env);
	if (!H_WAIT_FOR(c, h_file_has(c->log, "list (request 4242) built"), 30000))
		fail_msg("hpqd did not build the list");
	st_env.id = 4243;
	st_env.body_case = HPQ__ENVELOPE__BODY_STATUS;
	st_env.status = &status;
	send_request(cl.fd, &st_env);
	while (!listed || !status_seen) {
		rep = h_next_frame(cl.fd, &cl.framer, 30000);
		if (!rep)
			fail_msg("hpqd hung up after %zu rows", rows);
		bytes += hpq__envelope__get_packed_size(rep);
		if (rep->id == 4243) {
			assert_int_equal(rep->body_case, HPQ__ENVELOPE__BODY_STATUS_REPLY);
			assert_true(listed);
			status_seen = true;
		} else {
			assert_int_equal(rep->id, 4242);
			assert_int_equal(rep->body_case, HPQ__ENVELOPE__BODY_LIST_REPLY);
			rows += rep->list_reply->columns->n_id;
			listed = !rep->list_reply->more;
		}
		hpq_msg_free(rep);
	}
	assert_int_equal(rows, MANY + 2);
	/* What hpqd's socket buffer takes (wmem_default), and past it more
	 * than the limit: the test tests something. */
	sock_buf = h_read_file("/proc/sys/net/core/wmem_default");
	if (bytes < (sock_buf ? strtoull(sock_buf, NULL, 10) : 0) + 2 * (64u << 10))
		fail_msg("a list of %zu bytes is too short to fill the socket and the limit",
			 bytes);
	free(sock_buf);
	hpq_client_close(&cl);
}

static void list_many_frames(void **state)
{
	struct h_cluster *c = *state;
	uint64_t before, array, after;
	struct h_out o;
	json_t *all;
	char *save = NULL, *line, *text, spec[32], last[128];
	size_t n = 0;

	/* A write queue far smaller than the list: a long reply still comes
	 * whole (only a client that reads nothing is cut off). */
	h_daemon_config(c, "[limits]\nmax_write_queue = 64K\n");
	h_daemon_start(c);
	/* No agent: held tasks and indices stay pending. */
	/* The oldest row, in the last frame of a table's reply: its name is
	 * the widest, and the NAME column must be as wide as it on every row. */
	before = h_submit(c, "--hold", "--name", "before-and-the-widest-name", "--", "true", NULL);
	snprintf(spec, sizeof(spec), "0-%d", MANY - 1);
	array = h_submit(c, "--hold", "--array", spec, "--name", "many", "--", "true", NULL);
	after = h_submit(c, "--hold", "--name", "after", "--", "true", NULL);

	/* One id a line, oldest first: before, the array's rows, after. */
	assert_int_equal(h_hpq(c, &o, "list", "--expand-arrays", "--format", "id", "--noheader",
			       NULL),
			 0);
	assert_null(strstr(o.err, "more tasks matched"));
	text = strdup(o.out);
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save), n++) {
		char want[64];

		if (n == 0)
			snprintf(want, sizeof(want), "%" PRIu64, before);
		else if (n == MANY + 1)
			snprintf(want, sizeof(want), "%" PRIu64, after);
		else if (n == 1)
			snprintf(want, sizeof(want), "%" PRIu64 "_0", array); /* the head */
		else /* the rest, newest (highest) index first, as one frame has it */
			snprintf(want, sizeof(want), "%" PRIu64 "_%zu", array, (size_t)MANY + 1 - n);
		line += strspn(line, " "); /* ids align right */
		if (strcmp(line, want))
			fail_msg("row %zu is '%s', not '%s'", n, line, want);
	}
	free(text);
	assert_int_equal(n, MANY + 2);
	h_out_free(&o);

	/* Unexpanded, the array's pending rest is one row; the plain task
	 * listed after it carries no array's spec. */
	assert_int_equal(h_hpq(c, &o, "list", "--format", "id", "--noheader", NULL), 0);
	assert_int_equal(count_lines(o.out), 4);
	snprintf(spec, sizeof(spec), "%" PRIu64 "_[1-%d]", array, MANY - 1);
	assert_non_null(strstr(o.out, spec));
	snprintf(spec, sizeof(spec), "%" PRIu64, after);
	if (!line_of(o.out, after, last, sizeof(last)) || strcmp(last + strspn(last, " "), spec))
		fail_msg("the last task's row is not its plain id %s in:\n%s", spec, o.out);
	h_out_free(&o);

	/* The default table: a header and every row, its columns measured
	 * over every frame (each measured as it arrives): TEAM starts at the
	 * same place on every line. */
	assert_int_equal(h_hpq(c, &o, "list", "--expand-arrays", NULL), 0);
	assert_int_equal(count_lines(o.out), MANY + 3);
	assert_null(strstr(o.err, "more tasks matched"));
	{
		const char *team = strstr(o.out, "TEAM");
		size_t at, row = 0;

		assert_non_null(team);
		at = (size_t)(team - o.out);
		for (const char *l = strchr(o.out, '\n') + 1; *l; l = strchr(l, '\n') + 1, row++)
			if (strncmp(l + at - 2, "  ", 2) || l[at] == ' ')
				fail_msg("row %zu: its TEAM is not at column %zu: %.*s", row, at,
					 (int)strcspn(l, "\n"), l);
		assert_int_equal(row, MANY + 2);
	}
	/* Written to a file, the same bytes; to a full disk, an error. */
	{
		char *file;

		assert_int_equal(list_to(c, h_path(c, "list.txt"), NULL), 0);
		file = h_read_file(h_path(c, "list.txt"));
		assert_non_null(file);
		assert_string_equal(file, o.out);
		free(file);
	}
	assert_int_equal(list_to(c, "/dev/full", NULL), 1);
	assert_true(h_file_has(h_path(c, "err.txt"), "cannot write the output"));
	assert_int_equal(list_to(c, "/dev/full", "--json", NULL), 1);
	assert_true(h_file_has(h_path(c, "err.txt"), "cannot write the output"));
	h_out_free(&o);

	/* Every field of every row (larger rows: more frames). */
	all = h_hpq_json(c, "list", "--expand-arrays", NULL);
	assert_non_null(all);
	assert_int_equal(json_array_size(all), MANY + 2);
	assert_int_equal(h_int(json_array_get(all, 0), "id"), (long long)before);
	assert_int_equal(h_int(json_array_get(all, MANY + 1), "id"), (long long)after);
	json_decref(all);

	/* --limit keeps the newest, as in one frame. */
	assert_int_equal(h_hpq(c, &o, "list", "--expand-arrays", "--limit", "3", "--format", "id",
			       "--noheader", NULL),
			 0);
	{
		char want[128];

		/* Walking back from the newest: `after`, then the array's
		 * rows, its unstarted indices from the lowest. */
		snprintf(want, sizeof(want), "%" PRIu64 "_2\n%" PRIu64 "_1\n%" PRIu64 "\n", array,
			 array, after);
			char *got = strdup(o.out), *p = got, *q = got;

		/* the ids without their right-aligning blanks */
		for (; *p; p++)
			if (*p != ' ')
				*q++ = *p;
		*q = '\0';
		assert_string_equal(got, want);
		free(got);
	}
	h_out_free(&o);

	/* --json asks in order; with a limit, the newest, oldest first. */
	all = h_hpq_json(c, "list", "--expand-arrays", "--limit", "3", NULL);
	assert_non_null(all);
	assert_int_equal(json_array_size(all), 3);
	assert_int_equal(h_int(json_array_get(all, 0), "array_index"), 2);
	assert_int_equal(h_int(json_array_get(all, 1), "array_index"), 1);
	assert_int_equal(h_int(json_array_get(all, 2), "id"), (long long)after);
	json_decref(all);
	/* The same with a limit that takes several frames, built over several
	 * turns, held and sent oldest first. */
	all = h_hpq_json(c, "list", "--expand-arrays", "--limit", "20000", NULL);
	assert_non_null(all);
	assert_int_equal(json_array_size(all), 20000);
	for (size_t i = 0; i + 1 < 20000; i++)
		if (h_int(json_array_get(all, i), "array_index") != (long long)(19999 - i))
			fail_msg("row %zu is index %lld, not %zu", i,
				 h_int(json_array_get(all, i), "array_index"), 19999 - i);
	assert_int_equal(h_int(json_array_get(all, 19999), "id"), (long long)after);
	json_decref(all);

	/* Asked in order, the frames come oldest first, every row once. */
	assert_true(in_order_frames(c, before, array, after, false, true) > 1);
	assert_true(in_order_frames(c, before, array, after, true, true) > 1);
	assert_int_equal(in_order_frames(c, before, array, after, true, false), 1);
	assert_int_equal(in_order_frames(c, before, array, after, false, false), 1);
	reply_behind_list(c);
	list_over_turns(c, before, array, after);
	h_pass(c);
}

/* hpq's exit status and stdout of `hpq ARGS...`, stdout kept in buf. */
static int hpq_line(struct h_cluster *c, char *buf, size_t len, const char *const *argv)
{
	struct h_out o;
	int r = h_hpqv(c, &o, argv);

	snprintf(buf, len, "%s%s", o.out, o.err);
	h_out_free(&o);
	return r;
}

/*
 * Job control over a whole array or a filter: an index that has ended is
 * not something to act on (hpq cancel ARRAY after some of it finished, hpq
 * cancel --user $USER); an array that has ended altogether says so.
 */
static void control_selection(void **state)
{
	struct h_cluster *c = *state;
	char out[1024], arr[32], one[48], two[48];
	uint64_t a;

	h_daemon_start(c);
	/* No agent: the array's indices stay pending. */
	a = h_submit(c, "--hold", "--array", "0-3", "--name", "sel", "--", "true", NULL);
	snprintf(arr, sizeof(arr), "%" PRIu64, a);
	snprintf(one, sizeof(one), "%" PRIu64 "_0", a);
	assert_int_equal(h_hpq(c, NULL, "cancel", one, NULL), 0);
	assert_true(h_wait_state(c, a, "CANCELLED", 30000));

	/* Its first index has ended; the rest is held: released whole. */
	if (hpq_line(c, out, sizeof(out), (const char *[]){ "release", arr, NULL }) != 0)
		fail_msg("hpq release %s: %s", arr, out);
	if (hpq_line(c, out, sizeof(out), (const char *[]){ "hold", "--name", "sel", NULL }) != 0)
		fail_msg("hpq hold --name sel: %s", out);

	/* Index 2 named twice, 1 once: held once each. */
	assert_int_equal(h_hpq(c, NULL, "release", arr, NULL), 0);
	snprintf(one, sizeof(one), "%" PRIu64 "_[1-2]", a);
	snprintf(two, sizeof(two), "%" PRIu64 "_2", a);
	if (hpq_line(c, out, sizeof(out), (const char *[]){ "hold", one, two, NULL }) != 0 ||
	    !strstr(out, "held 2 tasks\n"))
		fail_msg("hpq hold %s %s: %s", one, two, out);
	/* The array and an index of its rest: released with the rest. */
	assert_int_equal(h_hpq(c, NULL, "hold", arr, NULL), 0);
	snprintf(two, sizeof(two), "%" PRIu64 "_3", a);
	if (hpq_line(c, out, sizeof(out), (const char *[]){ "release", arr, two, NULL }) != 0 ||
	    !strstr(out, "released 3 tasks\n"))
		fail_msg("hpq release %s %s: %s", arr, two, out);
	/* The last index of the rest, twice: once it is made a task, the
	 * array keeps nothing to make another from. */
	if (hpq_line(c, out, sizeof(out), (const char *[]){ "hold", two, two, NULL }) != 0 ||
	    !strstr(out, "held 1 task\n"))
		fail_msg("hpq hold %s %s: %s", two, two, out);

	/* Everything of user and array alike cancelled, what ended aside. */
	if (hpq_line(c, out, sizeof(out), (const char *[]){ "cancel", "--name", "sel", NULL }) != 0)
		fail_msg("hpq cancel --name sel: %s", out);
	if (hpq_line(c, out, sizeof(out), (const char *[]){ "cancel", arr, NULL }) != 1 ||
	    !strstr(out, "has already ended") || strchr(out, '\n') != strrchr(out, '\n'))
		fail_msg("hpq cancel %s, all of it ended: %s", arr, out);

	/* A plain id named twice: cancelled once, answered for each time. */
	a = h_submit(c, "--hold", "--", "true", NULL);
	snprintf(arr, sizeof(arr), "%" PRIu64, a);
	if (hpq_line(c, out, sizeof(out), (const char *[]){ "cancel", arr, arr, NULL }) != 0)
		fail_msg("hpq cancel %s %s: %s", arr, arr, out);

	/* An array whose first index ended and whose last is a task: its
	 * plain id cancels that task, which is all that hpqd answers for. */
	a = h_submit(c, "--hold", "--array", "0-1", "--name", "sel2", "--", "true", NULL);
	snprintf(arr, sizeof(arr), "%" PRIu64, a);
	snprintf(one, sizeof(one), "%" PRIu64 "_0", a);
	snprintf(two, sizeof(two), "%" PRIu64 "_1", a);
	assert_int_equal(h_hpq(c, NULL, "cancel", one, NULL), 0);
	assert_int_equal(h_hpq(c, NULL, "hold", two, NULL), 0);
	if (hpq_line(c, out, sizeof(out), (const char *[]){ "cancel", arr, NULL }) != 0)
		fail_msg("hpq cancel %s: %s", arr, out);
	h_pass(c);
}

/*
 * A cancel of an array's first indices by range: the cancel of the head
 * makes the next index a task before its own item comes, which must
 * still cancel it (as any index of the range), by root or by the owner.
 */
static void control_refilled_index(void **state)
{
	struct h_cluster *c = *state;
	const struct passwd *pw = getpwnam("nobody");
	char out[1024], ids[48];
	uint64_t a;
	json_t *all;

	h_daemon_start(c);
	/* No agent: the head waits in the dispatcher, the rest behind it. */
	a = h_submit(c, "--array", "0-9", "--", "true", NULL);
	snprintf(ids, sizeof(ids), "%" PRIu64 "_[0-9]", a);
	if (hpq_line(c, out, sizeof(out), (const char *[]){ "cancel", ids, NULL }) != 0 ||
	    !strstr(out, "cancelled 10 tasks\n"))
		fail_msg("hpq cancel %s: %s", ids, out);
	all = h_hpq_json(c, "list", NULL);
	if (json_array_size(all) != 0)
		fail_msg("%zu tasks still active after hpq cancel %s", json_array_size(all), ids);
	json_decref(all);
	/* A hold the same: the head's hold makes the next index the head. */
	a = h_submit(c, "--array", "0-9", "--", "true", NULL);
	snprintf(ids, sizeof(ids), "%" PRIu64 "_[0-2]", a);
	if (hpq_line(c, out, sizeof(out), (const char *[]){ "hold", ids, NULL }) != 0 ||
	    !strstr(out, "held 3 tasks\n"))
		fail_msg("hpq hold %s: %s", ids, out);
	snprintf(ids, sizeof(ids), "%" PRIu64 "_1", a);
	all = h_hpq_json(c, "show", ids, NULL);
	if (!json_is_true(json_object_get(all, "held")))
		fail_msg("%s is not held after hpq hold %" PRIu64 "_[0-2]", ids, a);
	json_decref(all);
	snprintf(ids, sizeof(ids), "%" PRIu64, a);
	assert_int_equal(h_hpq(c, NULL, "cancel", ids, NULL), 0);

	if (!pw)
		skip();
	h_cli_as(c, pw->pw_uid, pw->pw_gid);
	a = h_submit(c, "--array", "0-1", "--", "true", NULL);
	snprintf(ids, sizeof(ids), "%" PRIu64 "_[0-1]", a);
	if (hpq_line(c, out, sizeof(out), (const char *[]){ "cancel", ids, NULL }) != 0 ||
	    !strstr(out, "cancelled 2 tasks\n"))
		fail_msg("hpq cancel %s as nobody: %s", ids, out);
	h_cli_as(c, 0, 0);
	all = h_hpq_json(c, "list", NULL);
	if (json_array_size(all) != 0)
		fail_msg("%zu tasks still active after hpq cancel %s", json_array_size(all), ids);
	json_decref(all);
	h_pass(c);
}

/*
 * Indices named past an array's end: one answer for the run of them, not
 * one each (12_[0-999999] of 0-9 was a million, over the frame limit, and
 * hpq said only that the reply was too long); more indices in a request
 * than it may act on are refused before anything is done.
 */
static void control_many_indices(void **state)
{
	struct h_cluster *c = *state;
	char out[1024], ids[48];
	uint64_t a;
	json_t *all;

	h_daemon_start(c);
	a = h_submit(c, "--hold", "--array", "0-9", "--", "true", NULL);
	snprintf(ids, sizeof(ids), "%" PRIu64 "_[0-999999]", a);
	if (hpq_line(c, out, sizeof(out), (const char *[]){ "hold", ids, ids, NULL }) != 1 ||
	    !strstr(out, "at most 1000000 array indices"))
		fail_msg("hpq hold %s %s: %s", ids, ids, out);
	all = h_hpq_json(c, "list", "--expand-arrays", NULL);
	assert_int_equal(json_array_size(all), 10);
	json_decref(all);
	if (hpq_line(c, out, sizeof(out), (const char *[]){ "cancel", ids, NULL }) != 1 ||
	    !strstr(out, "has no indices 10-999999\n") || !strstr(out, "cancelled 10 tasks, 1 failed"))
		fail_msg("hpq cancel %s: %s", ids, out);
	all = h_hpq_json(c, "list", NULL);
	assert_int_equal(json_array_size(all), 0);
	json_decref(all);
	h_pass(c);
}

/* How many lines of text begin with prefix. */
static size_t count_prefix(const char *text, const char *prefix)
{
	size_t n = 0;

	for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
		n += strncmp(l, prefix, strlen(prefix)) == 0;
	return n;
}

/*
 * A filter over a shared queue by a user who may act on few of its tasks:
 * past CONTROL_DENIED_MAX (100) refusals, the rest are one summary that
 * counts them, answered and recorded once (each was a line of the reply,
 * which at 40,000 of them was over the frame limit, and a "denied" event).
 * Root's tasks stay pending; nobody's own is cancelled.
 */
static void control_many_refusals(void **state)
{
	struct h_cluster *c = *state;
	const struct passwd *pw = getpwnam("nobody");
	char ids[48];
	struct h_out o;
	json_t *all, *ev;
	uint64_t a, mine;
	size_t i, denied = 0, summaries = 0;

	if (!pw)
		skip();
	h_daemon_start(c);
	/* 150 held tasks of root's: an array's indices, each made a task. */
	a = h_submit(c, "--hold", "--array", "0-149", "--", "true", NULL);
	snprintf(ids, sizeof(ids), "%" PRIu64 "_[0-149]", a);
	assert_int_equal(h_hpq(c, NULL, "hold", ids, NULL), 0);

	h_cli_as(c, pw->pw_uid, pw->pw_gid);
	mine = h_submit(c, "--hold", "--", "true", NULL);
	if (h_hpq(c, &o, "cancel", "--state", "pending", NULL) != 1 ||
	    count_prefix(o.err, "hpq: cannot cancel task ") != 100 ||
	    count_prefix(o.err, "hpq: cannot cancel 50 more tasks: only their owners") != 1 ||
	    !strstr(o.err, "--user $USER") || strcmp(o.out, "cancelled 1 task, 150 failed\n"))
		fail_msg("hpq cancel --state pending as nobody: %s%s", o.out, o.err);
	h_out_free(&o);
	/* --json: valid, the summary's count in "tasks", exit 1. */
	assert_int_equal(h_hpq(c, &o, "hold", "--state", "pending", "--json", NULL), 1);
	all = json_loads(o.out, 0, NULL);
	if (json_array_size(all) != 101)
		fail_msg("hpq hold --state pending --json as nobody: %s%s", o.out, o.err);
	h_out_free(&o);
	json_array_foreach(all, i, ev) {
		if (json_object_get(ev, "tasks")) {
			assert_int_equal(h_int(ev, "tasks"), 50);
			assert_int_equal(h_int(ev, "id"), 0);
			assert_true(json_is_false(json_object_get(ev, "ok")));
			summaries++;
		}
	}
	assert_int_equal(summaries, 1);
	json_decref(all);

	h_cli_as(c, 0, 0);
	assert_true(h_wait_state(c, mine, "CANCELLED", 30000));
	all = h_hpq_json(c, "list", "--state", "pending", NULL);
	assert_int_equal(json_array_size(all), 150);
	json_decref(all);
	/* Two requests: at most 101 "denied" events each. */
	all = h_hpq_json(c, "events", "--limit", "10000", NULL);
	json_array_foreach(all, i, ev)
		denied += !strcmp(h_str(ev, "kind"), "denied") && !strcmp(h_str(ev, "actor"),
									  pw->pw_name);
	if (denied > 2 * 101)
		fail_msg("%zu denied events for two requests", denied);
	json_decref(all);
	h_pass(c);
}

/* Does `hpq list --format id --noheader [ARG [ARG2]]` print a row that is id? */
static bool list_has_id(struct h_cluster *c, const char *id, const char *arg, const char *arg2)
{
	const char *argv[] = { "list", "--format", "id", "--noheader", arg, arg2, NULL };
	struct h_out o;
	bool found = false;

	if (h_hpqv(c, &o, argv) != 0)
		fail_msg("hpq list: %s", o.err);
	for (char *save = NULL, *l = strtok_r(o.out, "\n", &save); l && !found;
	     l = strtok_r(NULL, "\n", &save))
		found = strcmp(l + strspn(l, " "), id) == 0;
	h_out_free(&o);
	return found;
}

/*
 * An array whose first index ended and left memory (keep_finished = 0)
 * still has its pending rest listed: the row hung on that first task.
 */
static void list_array_without_first(void **state)
{
	struct h_cluster *c = *state;
	char first[48], rest[48], arr[32];
	json_t *all;
	uint64_t a;

	h_daemon_config(c, "[tasks]\nkeep_finished = 0\n");
	h_daemon_start(c);
	/* More indices than a frame holds rows: expanded, the walk pauses
	 * within them. */
	a = h_submit(c, "--hold", "--array", "0-2999", "--", "true", NULL);
	snprintf(first, sizeof(first), "%" PRIu64 "_0", a);
	snprintf(rest, sizeof(rest), "%" PRIu64 "_[1-2999]", a);
	snprintf(arr, sizeof(arr), "%" PRIu64, a);
	assert_true(list_has_id(c, rest, NULL, NULL));
	assert_int_equal(h_hpq(c, NULL, "cancel", first, NULL), 0);
	if (!H_WAIT_FOR(c, !list_has_id(c, first, "--all", NULL), 30000))
		fail_msg("%s did not leave hpqd's memory", first);
	/* Walked forward, and back (a limit), and for one array. */
	if (!list_has_id(c, rest, NULL, NULL) || !list_has_id(c, rest, "--all", NULL))
		fail_msg("the pending rest %s is not listed", rest);
	if (!list_has_id(c, rest, "--limit", "5") || !list_has_id(c, rest, "--array", arr))
		fail_msg("the pending rest %s is not listed with --limit or --array", rest);
	all = h_hpq_json(c, "list", NULL);
	assert_int_equal(json_array_size(all), 1);
	assert_string_equal(h_str(json_array_get(all, 0), "array_spec"), "1-2999");
	json_decref(all);
	snprintf(rest, sizeof(rest), "%" PRIu64 "_2", a);
	if (!list_has_id(c, rest, "--expand-arrays", NULL))
		fail_msg("the pending index %s is not listed", rest);
	/* Every index once, from the highest down, forward and back. */
	for (int k = 0; k < 2; k++) {
		size_t n = 0;

		all = k ? h_hpq_json(c, "list", "--expand-arrays", "--limit", "2500", NULL)
			: h_hpq_json(c, "list", "--expand-arrays", NULL);
		n = json_array_size(all);
		assert_int_equal(n, k ? 2500 : 2999);
		for (size_t i = 0; i < n; i++)
			if (h_int(json_array_get(all, i), "array_index") != (long long)(n - i))
				fail_msg("row %zu of %zu is index %lld", i, n,
					 h_int(json_array_get(all, i), "array_index"));
		json_decref(all);
	}
	h_pass(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(list_format, h_setup, h_teardown),
		cmocka_unit_test_setup_teardown(list_many_frames, h_setup, h_teardown),
		cmocka_unit_test_setup_teardown(control_selection, h_setup, h_teardown),
		cmocka_unit_test_setup_teardown(control_refilled_index, h_setup, h_teardown),
		cmocka_unit_test_setup_teardown(control_many_indices, h_setup, h_teardown),
		cmocka_unit_test_setup_teardown(control_many_refusals, h_setup, h_teardown),
		cmocka_unit_test_setup_teardown(list_array_without_first, h_setup, h_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
