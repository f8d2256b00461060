/*
 * select.c: task ids, states and filters for the job-control commands
 * (see select.h). The id syntax is small and fixed (digits, '_', a
 * bracketed list of indices and ranges), so it is checked by hand here,
 * with hpq_parse_uint for every number and batchspec.h's reader for the
 * list; the daemon owns what an id means.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "batchspec.h"
#include "error.h"
#include "msg.h"
#include "parse.h"
#include "select.h"
#include "xalloc.h"

const char *const select_state_names[] = {
	"PENDING",   "RUNNING", "PREEMPTING",    "COMPLETED", "FAILED",
	"CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", NULL,
};

/* A number of the id syntax: [0-9]+ within [min, max], from s to end. */
static bool select_number(const char *s, size_t len, uint64_t min, uint64_t max, uint64_t *ret)
{
	char buf[24];

	if (len == 0 || len >= sizeof(buf) || strspn(s, "0123456789") < len)
		return false;
	memcpy(buf, s, len);
	buf[len] = '\0';
	return hpq_parse_uint(buf, min, max, ret) == 0;
}

/* "1-3,7,9-12,20-30:5" (len bytes at s): indices and ranges A-B with
 * A <= B, each range with an optional step (as hpq list writes an array's
 * pending rest). */
static bool select_index_list(const char *s, size_t len)
{
	const char *end = s + len;
	struct hpq_index_range r;

	for (const char *p = s;; p++) {
		if (hpq_index_range_read(&p, &r) < 0 || p > end || r.lo > r.hi || r.hi > UINT32_MAX ||
		    r.step == 0)
			return false;
		if (p == end)
			return true;
		if (*p != ',')
			return false;
	}
}

int select_check_id(const char *s, bool ranges, char *err, size_t errlen)
{
	const char *us = strchr(s, '_');
	size_t idlen = us ? (size_t)(us - s) : strlen(s);
	uint64_t v;
	bool ok;

	ok = select_number(s, idlen, 1, INT64_MAX, &v);
	if (ok && us) {
		const char *idx = us + 1;
		size_t n = strlen(idx);

		if (n > 0 && idx[0] == '[')
			ok = ranges && n >= 2 && idx[n - 1] == ']' &&
			     select_index_list(idx + 1, n - 2);
		else
			ok = select_number(idx, n, 0, UINT32_MAX, &v);
	}
	if (ok)
		return 0;
	/* As hpq list shows an array with a % limit: the limit is no index. */
	if (ranges && us && us[1] == '[' && strchr(us, '%')) {
		const char *pct = strchr(us, '%');

		return hpq_errf(err, errlen, HPQ_EINVAL,
				"'%.100s' is not a task id: leave out the %% limit, which is not "
				"an index (%.*s])", s, (int)(pct - s > 100 ? 100 : pct - s), s);
	}
	if (ranges)
		return hpq_errf(err, errlen, HPQ_EINVAL,
				"'%.100s' is not a task id: use ID, ID_INDEX or ID_[LIST] "
				"(e.g. 12, 12_5, 12_[1-3,7])", s);
	return hpq_errf(err, errlen, HPQ_EINVAL,
			"'%.100s' is not a task id: use ID or ID_INDEX (e.g. 12, 12_5)", s);
}

bool select_id_plain(const char *s)
{
	uint64_t v;

	return select_number(s, strlen(s), 1, INT64_MAX, &v);
}

static void select_push_state(const char *st, const char ***v, size_t *n)
{
	for (size_t i = 0; i < *n; i++)
		if (strcmp((*v)[i], st) == 0)
			return;
	*v = xreallocarray(*v, *n + 1, sizeof(**v));
	(*v)[(*n)++] = st;
}

int select_add_states(const char *arg, const char ***v, size_t *n, char *err, size_t errlen)
{
	char *copy = xstrdup(arg), *save = NULL;
	int r = 0;

	if (!arg[0] || arg[0] == ',' || arg[strlen(arg) - 1] == ',' || strstr(arg, ",,"))
		r = hpq_errf(err, errlen, HPQ_EINVAL, "--state: '%.100s' is not a list of states",
			     arg);
	for (char *w = strtok_r(copy, ",", &save); w && r == 0; w = strtok_r(NULL, ",", &save)) {
		const char *found = NULL;

		for (char *p = w; *p; p++)
			*p = *p == '-' ? '_' : *p;
		if (strcasecmp(w, "active") == 0) {
			select_push_state("PENDING", v, n);
			select_push_state("RUNNING", v, n);
			select_push_state("PREEMPTING", v, n);
			continue;
		}
		for (size_t i = 0; select_state_names[i] && !found; i++)
			if (strcasecmp(w, select_state_names[i]) == 0)
				found = select_state_names[i];
		if (!found)
			r = hpq_errf(err, errlen, HPQ_EINVAL,
				     "unknown state '%.64s'; use active, pending, running, "
				     "preempting, completed, failed, cancelled, timeout or "
				     "out_of_memory", w);
		else
			select_push_state(found, v, n);
	}
	free(copy);
	return r;
}

void select_init(struct select_args *s)
{
	memset(s, 0, sizeof(*s));
	hpq__task_selector__init(&s->sel);
}

void select_free(struct select_args *s)
{
	free(s->states);
	free(s->ids);
	memset(s, 0, sizeof(*s));
}

int select_option(struct cli *cli, struct select_args *s, int c, const char *arg)
{
	char err[256];
	uint64_t v;

	switch (c) {
	case SELECT_OPT_USER:
		if (cli_parse_user(cli, "--user", arg) != 0)
			return CLI_USAGE;
		s->sel.user = (char *)arg;
		break;
	case SELECT_OPT_TEAM:
		if (cli_parse_name(cli, "team", arg) != 0)
			return CLI_USAGE;
		s->sel.team = (char *)arg;
		break;
	case SELECT_OPT_NAME:
		if (cli_parse_name(cli, "task", arg) != 0)
			return CLI_USAGE;
		s->sel.name = (char *)arg;
		break;
	case SELECT_OPT_STATE:
		if (select_add_states(arg, &s->states, &s->n_states, err, sizeof(err)) != 0)
			return cli_usage_error(cli, "%s", err);
		s->sel.states = (char **)s->states;
		s->sel.n_states = s->n_states;
		break;
	case SELECT_OPT_ARRAY:
		if (hpq_parse_uint(arg, 1, INT64_MAX, &v) < 0)
			return cli_usage_error(cli, "--array takes an array's id (a positive whole "
					       "number), not '%s'", arg);
		s->sel.array_id = v;
		break;
	default:
		return 1;
	}
	s->filtered = true;
	return 0;
}

int select_operands(struct cli *cli, struct select_args *s, int argc, char **argv, int first)
{
	char err[256];

	for (int i = first; i < argc; i++) {
		if (select_check_id(argv[i], true, err, sizeof(err)) != 0)
			return cli_usage_error(cli, "%s", err);
		s->ids = xreallocarray(s->ids, s->n_ids + 1, sizeof(*s->ids));
		s->ids[s->n_ids++] = argv[i];
		if (!select_id_plain(argv[i]))
			s->ranges = true;
	}
	s->sel.ids = s->ids;
	s->sel.n_ids = s->n_ids;
	if (s->n_ids == 0 && !s->filtered)
		return cli_usage_error(cli, "which tasks? give their ids or a filter "
				       "(--user, --team, --name, --state, --array); to act on "
				       "all your tasks, use --user $USER");
	return 0;
}

/* The results of one frame of a job-control reply, and whether another follows. */
static bool frame_results(const Hpq__Envelope *env, Hpq__CancelResult ***r, size_t *n)
{
	if (env->body_case == HPQ__ENVELOPE__BODY_CANCEL_REPLY) {
		*r = env->cancel_reply->results;
		*n = env->cancel_reply->n_results;
		return env->cancel_reply->more;
	}
	*r = env->control_reply->results;
	*n = env->control_reply->n_results;
	return env->control_reply->more;
}

static void add_frame(struct select_reply *out, Hpq__Envelope *env)
{
	Hpq__CancelResult **r;
	size_t n;

	frame_results(env, &r, &n);
	out->frames = xreallocarray(out->frames, out->nframes + 1, sizeof(*out->frames));
	out->frames[out->nframes++] = env;
	out->results = xreallocarray(out->results, out->n + n + 1, sizeof(*out->results));
	memcpy(out->results + out->n, r, n * sizeof(*r));
	out->n += n;
}

int select_call(struct cli *cli, Hpq__Envelope *req, Hpq__Envelope__BodyCase expect,
		const char *what, struct select_reply *out)
{
	Hpq__Envelope *env;
	Hpq__CancelResult **r;
	size_t n;
	int rc;

	memset(out, 0, sizeof(*out));
	if (cli_call(cli, req, expect, what, &env) != 0)
		return CLI_ERR;
	add_frame(out, env);
	while (frame_results(env, &r, &n)) {
		rc = hpq_client_next(&cli->client, req->id, &env);
		if (rc != 0)
			return cli_error(cli, "cannot %s: %s (the change was made; hpq list shows "
					 "where it stands)", what,
					 cli->client.errbuf[0] ? cli->client.errbuf : hpq_strerror(rc));
		if (env->body_case != expect) {
			hpq_msg_free(env);
			return cli_error(cli, "cannot %s: hpqd answered with an unexpected message",
					 what);
		}
		add_frame(out, env);
	}
	return 0;
}

void select_reply_free(struct select_reply *r)
{
	for (size_t i = 0; i < r->nframes; i++)
		hpq_msg_free(r->frames[i]);
	free(r->frames);
	free(r->results);
	memset(r, 0, sizeof(*r));
}

/* How many tasks r stands for: a summary of refusals (id 0) counts them. */
static size_t result_tasks(const Hpq__CancelResult *r)
{
	return r->tasks ? r->tasks : 1;
}

int select_report(struct cli *cli, const char *verb, const char *done,
		  Hpq__CancelResult *const *r, size_t n)
{
	size_t failed = 0, total = 0;

	for (size_t i = 0; i < n; i++) {
		total += result_tasks(r[i]);
		if (r[i]->code != 0)
			failed += result_tasks(r[i]);
	}
	if (cli->json) {
		/* The same shape as hpq cancel --json: [{id, ok, error}]. */
		output_json.cancelled(&cli->out, r, n);
		return failed ? CLI_ERR : CLI_OK;
	}
	for (size_t i = 0; i < n;)
		i += r[i]->code != 0 ? output_result_error(cli->out.err, verb, r + i, n - i) : 1;
	if (n == 0)
		fprintf(cli->out.out, "no task matched\n");
	else
		fprintf(cli->out.out, "%s %zu task%s%s", done, total - failed,
			total - failed == 1 ? "" : "s", failed ? "" : "\n");
	if (failed)
		fprintf(cli->out.out, ", %zu failed\n", failed);
	return failed ? CLI_ERR : CLI_OK;
}
