/*
 * seeds.c: writes the seed corpus for the stream fuzz targets into the
 * directory named on the command line: valid frames of the messages each
 * side really sends, behind a chunk plan (fuzz.h). Generated at test time
 * from the current hpq.proto, so the seeds never go stale and no binary
 * files live in the repository. Also a valid certificate request, as PEM
 * and as DER, for the target that takes one whole (fuzz_csr); to the
 * stream targets they are more garbage inputs.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>

#include "frame.h"
#include "fuzz.h"
#include "hpq.h"
#include "msg.h"
#include "pki.h"

struct seed {
	uint8_t *buf;
	size_t len;
};

static void seed_bytes(struct seed *s, const void *p, size_t n)
{
	s->buf = realloc(s->buf, s->len + n);
	if (!s->buf) {
		perror("hpq-fuzz-seeds");
		exit(1);
	}
	memcpy(s->buf + s->len, p, n);
	s->len += n;
}

static void seed_env(struct seed *s, Hpq__Envelope *env)
{
	size_t n;
	uint8_t *frame = hpq_msg_encode(env, &n);

	seed_bytes(s, frame, n);
	free(frame);
}

static void seed_write(const char *dir, const char *name, struct seed *s)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f || fwrite(s->buf, 1, s->len, f) != s->len || fclose(f) != 0) {
		fprintf(stderr, "hpq-fuzz-seeds: cannot write '%s': %s\n", path, strerror(errno));
		exit(1);
	}
	free(s->buf);
	s->buf = NULL;
	s->len = 0;
}

static void seed_plan(struct seed *s, uint64_t plan)
{
	seed_bytes(s, &plan, FUZZ_PLAN_BYTES);
}

static int mkdir_p(const char *path)
{
	char tmp[4096];

	snprintf(tmp, sizeof(tmp), "%s", path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p == '/') {
			*p = '\0';
			if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
				return -1;
			*p = '/';
		}
	}
	return mkdir(tmp, 0755) < 0 && errno != EEXIST ? -1 : 0;
}

int main(int argc, char **argv)
{
	static char *argv_task[] = {"python", "train.py", "--steps", "1000"};
	static char *env_task[] = {"PATH=/usr/bin:/bin", "HOME=/home/alice"};
	static char *names[] = {"gpu-01", "gpu-02"};
	static uint8_t nonce[32] = {1, 2, 3, 4, 5, 6, 7, 8};
	Hpq__Resources res = HPQ__RESOURCES__INIT;
	Hpq__Hello hello = HPQ__HELLO__INIT;
	Hpq__HelloReply hr = HPQ__HELLO_REPLY__INIT;
	Hpq__Auth auth = HPQ__AUTH__INIT;
	Hpq__Error err = HPQ__ERROR__INIT;
	Hpq__Ok ok = HPQ__OK__INIT;
	Hpq__TaskSpec spec = HPQ__TASK_SPEC__INIT;
	Hpq__SubmitRequest sub = HPQ__SUBMIT_REQUEST__INIT;
	Hpq__Checkpoint ck = HPQ__CHECKPOINT__INIT, *cks[] = {&ck};
	Hpq__Event ev = HPQ__EVENT__INIT, *evs[] = {&ev};
	Hpq__Task task = HPQ__TASK__INIT, *tasks[] = {&task, &task};
	Hpq__ListReply lr = HPQ__LIST_REPLY__INIT;
	Hpq__CancelRequest cr = HPQ__CANCEL_REQUEST__INIT;
	uint64_t ids[] = {1, 2, 18446744073709551615ull};
	Hpq__CheckpointRequest ckr = HPQ__CHECKPOINT_REQUEST__INIT;
	Hpq__AgentTask at = HPQ__AGENT_TASK__INIT, *ats[] = {&at};
	Hpq__Finding fi = HPQ__FINDING__INIT, *fis[] = {&fi};
	Hpq__Register reg = HPQ__REGISTER__INIT;
	Hpq__RunTask run = HPQ__RUN_TASK__INIT;
	uint32_t gpu_ids[] = {0, 1, 2, 3};
	Hpq__PoolQuota pq = HPQ__POOL_QUOTA__INIT, *pqs[] = {&pq};
	Hpq__Team team = HPQ__TEAM__INIT;
	Hpq__TeamSetRequest ts = HPQ__TEAM_SET_REQUEST__INIT;
	static char *fields[] = {"weight", "quota.guarantee"};
	Hpq__Envelope e[16];
	struct seed s = {NULL, 0};
	int n = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: hpq-fuzz-seeds DIR\n");
		return 2;
	}
	if (mkdir_p(argv[1]) < 0) {
		fprintf(stderr, "hpq-fuzz-seeds: cannot create '%s': %s\n", argv[1],
			strerror(errno));
		return 1;
	}
	for (int i = 0; i < 16; i++)
		e[i] = (Hpq__Envelope)HPQ__ENVELOPE__INIT;

	hello.role = HPQ__ROLE__ROLE_AGENT;
	hello.protocol_version = HPQ_PROTOCOL_VERSION;
	hello.software_version = HPQ_VERSION;
	hello.name = "gpu-01";
	e[n].id = 1, e[n].body_case = HPQ__ENVELOPE__BODY_HELLO, e[n++].hello = &hello;

	hr.protocol_version = HPQ_PROTOCOL_VERSION;
	hr.user = "alice";
	hr.nonce.data = nonce;
	hr.nonce.len = sizeof(nonce);
	e[n].id = 1, e[n].body_case = HPQ__ENVELOPE__BODY_HELLO_REPLY, e[n++].hello_reply = &hr;

	auth.munge_credential = (char *)"MUNGE:AwQFAAAA:not-a-credential:";
	e[n].id = 2, e[n].body_case = HPQ__ENVELOPE__BODY_AUTH, e[n++].auth = &auth;

	res.gpus = 8, res.cpus = 64, res.mem = 524288;
	spec.name = "llm";
	spec.team = "ml";
	spec.class_ = "training";
	spec.nodes = 2;
	spec.per_node = &res;
	spec.time_limit_s = 86400;
	spec.checkpoint_dir = "/ckpt/llm";
	spec.n_argv = 4, spec.argv = argv_task;
	spec.n_env = 2, spec.env = env_task;
	spec.cwd = "/home/alice";
	spec.preempt_signal = 10;
	sub.spec = &spec;
	e[n].id = 3, e[n].body_case = HPQ__ENVELOPE__BODY_SUBMIT, e[n++].submit = &sub;

	ck.step = 500, ck.path = "/ckpt/llm/ckpt-500", ck.time = 1700000000, ck.attempt = 1;
	ev.id = 9, ev.time = 1700000000000, ev.kind = "start", ev.task_id = 5, ev.node = "gpu-01";
	task.id = 5, task.name = "llm", task.team = "ml", task.user = "alice", task.state = "RUNNING";
	task.nodes = 2, task.per_node = &res, task.n_node_names = 2, task.node_names = names;
	task.n_checkpoints = 1, task.checkpoints = cks, task.n_events = 1, task.events = evs;
	task.n_argv = 4, task.argv = argv_task, task.has_exit_code = 1, task.exit_code = 143;
	lr.n_tasks = 2, lr.tasks = tasks;
	e[n].id = 4, e[n].body_case = HPQ__ENVELOPE__BODY_LIST_REPLY, e[n++].list_reply = &lr;

	cr.n_ids = 3, cr.ids = ids;
	e[n].id = 5, e[n].body_case = HPQ__ENVELOPE__BODY_CANCEL, e[n++].cancel = &cr;

	ckr.task_id = 5, ckr.attempt = 1, ckr.step = 500, ckr.path = "/ckpt/llm/ckpt-500";
	e[n].id = 6, e[n].body_case = HPQ__ENVELOPE__BODY_CHECKPOINT, e[n++].checkpoint = &ckr;

	at.task_id = 5, at.attempt = 1, at.running = 1, at.pid = 4242, at.start_time = 1;
	fi.category = "accelerator", fi.reason = "xid", fi.severity = "fatal";
	reg.name = "gpu-01", reg.pool = "default", reg.capacity = &res;
	reg.n_tasks = 1, reg.tasks = ats, reg.n_findings = 1, reg.findings = fis;
	e[n].id = 7, e[n].body_case = HPQ__ENVELOPE__BODY_REGISTER, e[n++].register_ = &reg;

	run.task_id = 5, run.attempt = 2, run.n_argv = 4, run.argv = argv_task;
	run.has_resume = 1, run.resume_from = "/ckpt/llm/ckpt-500", run.resume_step = 500;
	run.n_gpu_ids = 4, run.gpu_ids = gpu_ids, run.resources = &res;
	e[n].id = 0, e[n].body_case = HPQ__ENVELOPE__BODY_RUN_TASK, e[n++].run_task = &run;

	pq.pool = "default", pq.guarantee = &res, pq.sharing = "lend-and-borrow";
	team.name = "ml", team.weight = 2, team.n_quotas = 1, team.quotas = pqs;
	ts.team = &team, ts.n_fields = 2, ts.fields = fields;
	e[n].id = 8, e[n].body_case = HPQ__ENVELOPE__BODY_TEAM_SET, e[n++].team_set = &ts;

	err.code = -1006, err.message = "no task 5";
	e[n].id = 9, e[n].body_case = HPQ__ENVELOPE__BODY_ERROR, e[n++].error = &err;
	e[n].id = 10, e[n].body_case = HPQ__ENVELOPE__BODY_OK, e[n++].ok = &ok;

	/* One file per message, each with its own cut plan. */
	for (int i = 0; i < n; i++) {
		char name[32];

		seed_plan(&s, 0x0123456789abcdefull * (uint64_t)(i + 1));
		seed_env(&s, &e[i]);
		snprintf(name, sizeof(name), "msg-%02d-%s", i, hpq_msg_name(&e[i]));
		seed_write(argv[1], name, &s);
	}
	/* A whole conversation, a zero-length frame in the middle of it. */
	seed_plan(&s, 42);
	for (int i = 0; i < n; i++) {
		static const uint8_t empty[HPQ_FRAME_HEADER];

		seed_env(&s, &e[i]);
		if (i == n / 2)
			seed_bytes(&s, empty, sizeof(empty));
	}
	seed_write(argv[1], "conversation", &s);

	/* A node's certificate request, as hpq-agent makes it, and its DER. */
	{
		char *key, *csr, msg[256], *name = NULL, *header = NULL;
		unsigned char *der = NULL;
		long derlen = 0;
		BIO *b;

		if (hpq_pki_make_request("gpu-01", &key, &csr, msg, sizeof(msg)) < 0) {
			fprintf(stderr, "hpq-fuzz-seeds: %s\n", msg);
			return 1;
		}
		seed_bytes(&s, csr, strlen(csr));
		seed_write(argv[1], "csr-p256", &s);
		b = BIO_new_mem_buf(csr, -1);
		if (!b || !PEM_read_bio(b, &name, &header, &der, &derlen)) {
			fprintf(stderr, "hpq-fuzz-seeds: cannot decode the request\n");
			return 1;
		}
		seed_bytes(&s, der, (size_t)derlen);
		seed_write(argv[1], "csr-p256.der", &s);
		OPENSSL_free(name);
		OPENSSL_free(header);
		OPENSSL_free(der);
		BIO_free(b);
		free(key);
		free(csr);
	}
	return 0;
}
