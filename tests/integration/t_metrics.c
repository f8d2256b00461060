/*
 * t_metrics: hpqd --metrics ([hpqd] metrics = 127.0.0.1:0) serves the
 * Prometheus text format at /metrics. The test scrapes it with a plain
 * HTTP/1.0 GET over a socket and checks that the exposition parses: every
 * sample belongs to a family declared by # TYPE (gauge, counter or
 * histogram) before it, names and label sets are well formed, team
 * gauges carry exactly team, pool and resource, histogram buckets are
 * cumulative and end in +Inf equal to _count. Then the figures must be
 * those of `hpq status --json` taken at the same quiet moment: per team
 * used, borrowed, lent and guarantee GPUs, running and pending, and the
 * cluster's task counts. Other paths get 404.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"

struct sample {
	char name[96];
	char labels[256];   /* inside the braces, as written */
	double value;
};

struct expo {
	struct sample *v;
	size_t n;
	char types[64][96]; /* declared families */
	char kinds[64][16];
	size_t ntypes;
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

static bool valid_name(const char *s)
{
	if (!isalpha((unsigned char)*s) && *s != '_' && *s != ':')
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '_' && *s != ':')
			return false;
	return true;
}

/* The family a sample belongs to: its name less a histogram suffix. */
static const char *family_kind(const struct expo *e, const char *name)
{
	for (size_t i = 0; i < e->ntypes; i++) {
		size_t l = strlen(e->types[i]);

		if (!strcmp(name, e->types[i]))
			return e->kinds[i];
		if (!strncmp(name, e->types[i], l) && !strcmp(e->kinds[i], "histogram") &&
		    (!strcmp(name + l, "_bucket") || !strcmp(name + l, "_sum") ||
		     !strcmp(name + l, "_count")))
			return e->kinds[i];
	}
	return NULL;
}

/* Checks label syntax: k="v" pairs, comma separated. */
static bool valid_labels(const char *s)
{
	while (*s) {
		const char *eq = strchr(s, '=');
		char key[64];

		if (!eq || eq - s >= (long)sizeof(key) || eq[1] != '"')
			return false;
		memcpy(key, s, (size_t)(eq - s));
		key[eq - s] = '\0';
		if (!valid_name(key))
			return false;
		s = strchr(eq + 2, '"');
		if (!s)
			return false;
		s++;
		if (*s == ',')
			s++;
		else if (*s)
			return false;
	}
	return true;
}

static void parse(struct expo *e, char *text)
{
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		struct sample *s;
		char *brace, *sp;

		if (!strncmp(line, "# TYPE ", 7)) {
			assert_true(e->ntypes < 64);
			assert_int_equal(sscanf(line + 7, "%95s %15s", e->types[e->ntypes],
						e->kinds[e->ntypes]), 2);
			assert_true(!strcmp(e->kinds[e->ntypes], "gauge") ||
				    !strcmp(e->kinds[e->ntypes], "counter") ||
				    !strcmp(e->kinds[e->ntypes], "histogram"));
			e->ntypes++;
			continue;
		}
		if (line[0] == '#')
			continue;
		e->v = realloc(e->v, (e->n + 1) * sizeof(*e->v));
		s = &e->v[e->n++];
		memset(s, 0, sizeof(*s));
		sp = strrchr(line, ' ');
		assert_non_null(sp);
		*sp = '\0';
		s->value = strtod(sp + 1, NULL);
		brace = strchr(line, '{');
		if (brace) {
			char *close = strrchr(brace, '}');

			assert_non_null(close);
			assert_true(close[1] == '\0');
			*close = '\0';
			snprintf(s->labels, sizeof(s->labels), "%s", brace + 1);
			assert_true(valid_labels(s->labels));
			*brace = '\0';
		}
		snprintf(s->name, sizeof(s->name), "%s", line);
		assert_true(valid_name(s->name));
		if (!family_kind(e, s->name))
			fail_msg("sample %s has no # TYPE before it", s->name);
	}
}

static double get(const struct expo *e, const char *name, const char *labels)
{
	for (size_t i = 0; i < e->n; i++)
		if (!strcmp(e->v[i].name, name) && !strcmp(e->v[i].labels, labels))
			return e->v[i].value;
	fail_msg("no sample %s{%s}", name, labels);
	return -1;
}

static void check_histogram(const struct expo *e, const char *name)
{
	char bucket[128], count[128];
	double last = -1, inf = -1;

	snprintf(bucket, sizeof(bucket), "%s_bucket", name);
	snprintf(count, sizeof(count), "%s_count", name);
	for (size_t i = 0; i < e->n; i++) {
		if (strcmp(e->v[i].name, bucket))
			continue;
		assert_true(!strncmp(e->v[i].labels, "le=\"", 4));
		assert_true(e->v[i].value >= last);
		last = e->v[i].value;
		if (!strcmp(e->v[i].labels, "le=\"+Inf\""))
			inf = e->v[i].value;
	}
	assert_true(inf >= 0);
	assert_true(inf == get(e, count, ""));
	snprintf(bucket, sizeof(bucket), "%s_sum", name);
	assert_true(get(e, bucket, "") >= 0);
}

static void scrape_matches_status(void **state)
{
	struct h_cluster *c = *state;
	struct expo e = { 0 };
	json_t *s, *row;
	char *body, *text, lab[256];
	size_t i;
	int port;

	h_daemon_config(c, "[hpqd]\nmetrics = 127.0.0.1:0\n");
	h_daemon_start(c);
	h_agent_start(c, "node1", 2, 4, "4G");
	assert_true(h_wait_nodes(c, 1, 30000));
	assert_int_equal(h_hpq(c, NULL, "team", "add", "x", "--gpus", "1", "--borrow-limit", "100",
			       NULL), 0);
	for (i = 0; i < 3; i++)
		h_submit(c, "--team", "x", "--gpus", "1", "--mem", "256M", "--", "sleep", "120",
			 NULL);
	/* Two run (one within the guarantee, one borrowed), one waits. */
	assert_true(H_WAIT_FOR(c, ({
		json_t *st = h_hpq_json(c, "status", NULL);
		bool ok = h_int(st, "running") == 2 && h_int(st, "pending") == 1;
		json_decref(st);
		ok;
	}), 30000));

	text = h_read_file(h_path(c, "hpqd.metrics.port"));
	assert_non_null(text);
	port = atoi(text);
	free(text);
	assert_true(port > 0);

	assert_int_equal(http_get(port, "/nothing", &body), 404);
	free(body);
	assert_int_equal(http_get(port, "/metrics", &body), 200);
	s = h_hpq_json(c, "status", NULL);
	parse(&e, body);
	assert_true(e.n > 20);

	/* Team gauges: exactly team, pool and resource labels. */
	for (i = 0; i < e.n; i++)
		if (!strncmp(e.v[i].name, "hpq_team_", 9) &&
		    strcmp(e.v[i].name, "hpq_team_tasks") &&
		    strcmp(e.v[i].name, "hpq_team_preempted_1h") &&
		    strcmp(e.v[i].name, "hpq_team_oldest_pending_seconds"))
			assert_true(!strncmp(e.v[i].labels, "team=\"", 6) &&
				    strstr(e.v[i].labels, "\",pool=\"") &&
				    strstr(e.v[i].labels, "\",resource=\""));

	json_array_foreach(json_object_get(s, "teams"), i, row) {
		static const char *const keys[] = { "guarantee", "used", "borrowed", "lent" };

		for (size_t k = 0; k < 4; k++) {
			char metric[64];

			snprintf(metric, sizeof(metric), "hpq_team_%s", keys[k]);
			snprintf(lab, sizeof(lab), "team=\"%s\",pool=\"%s\",resource=\"gpus\"",
				 h_str(row, "name"), h_str(row, "pool"));
			assert_true(get(&e, metric, lab) ==
				    (double)json_integer_value(json_object_get(
					    json_object_get(row, keys[k]), "gpus")));
		}
		snprintf(lab, sizeof(lab), "team=\"%s\",pool=\"%s\",state=\"running\"",
			 h_str(row, "name"), h_str(row, "pool"));
		assert_true(get(&e, "hpq_team_tasks", lab) == (double)h_int(row, "running"));
		snprintf(lab, sizeof(lab), "team=\"%s\",pool=\"%s\",state=\"pending\"",
			 h_str(row, "name"), h_str(row, "pool"));
		assert_true(get(&e, "hpq_team_tasks", lab) == (double)h_int(row, "pending"));
	}
	assert_true(get(&e, "hpq_team_used", "team=\"x\",pool=\"default\",resource=\"gpus\"") == 2);
	assert_true(get(&e, "hpq_team_borrowed", "team=\"x\",pool=\"default\",resource=\"gpus\"") ==
		    1);
	assert_true(get(&e, "hpq_tasks", "state=\"running\"") == (double)h_int(s, "running"));
	assert_true(get(&e, "hpq_tasks", "state=\"pending\"") == (double)h_int(s, "pending"));
	assert_true(get(&e, "hpq_nodes", "pool=\"default\",health=\"healthy\"") == 1);
	assert_true(get(&e, "hpq_nodes_service", "pool=\"default\",service=\"active\"") == 1);
	assert_true(get(&e, "hpq_pool_capacity", "pool=\"default\",resource=\"gpus\"") == 2);
	assert_true(get(&e, "hpq_preemptions_total", "") == 0);
	check_histogram(&e, "hpq_dispatch_cycle_seconds");
	check_histogram(&e, "hpq_store_commit_seconds");
	assert_true(get(&e, "hpq_dispatch_cycle_seconds_count", "") >= 1);
	assert_true(get(&e, "hpq_store_commit_seconds_count", "") >= 1);
	json_decref(s);
	free(body);
	free(e.v);
	h_pass(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(scrape_matches_status, h_setup, h_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
