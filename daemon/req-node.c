/*
 * req-node.c: the node requests: list, and the administrators' drain,
 * resume, repair and remove (request.h; the router admits administrators
 * only to the last four). What a drain or a repair does to a node is repair.c's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agentlink.h"
#include "context.h"
#include "error.h"
#include "msg.h"
#include "repair.h"
#include "request.h"
#include "server.h"
#include "xalloc.h"

int req_node_list(struct req *q)
{
	struct state *st = &q->d->state;
	uint32_t nn = st->nnodes;
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__NodeListReply rep = HPQ__NODE_LIST_REPLY__INIT;
	Hpq__Node *nodes = nn ? xcalloc(nn, sizeof(*nodes)) : NULL;
	Hpq__Node **ptrs = nn ? xcalloc(nn, sizeof(*ptrs)) : NULL;
	Hpq__Resources *res = nn ? xcalloc(2 * (size_t)nn, sizeof(*res)) : NULL;
	struct hpq_res *used = nn ? xcalloc(nn, sizeof(*used)) : NULL;
	size_t nfind = 0, k = 0, nout = 0;
	Hpq__Finding *finds, **fptrs;

	/* What runs where, from the running tasks (bounded by the cluster's size). */
	for (struct dlist *l = st->running.next; l != &st->running; l = l->next) {
		struct task *t = container_of(l, struct task, run_link);

		for (uint32_t r = 0; r < t->n_node_names; r++) {
			struct node *n = state_node_find(st, t->node_names[r]);

			if (!n)
				continue;
			used[n->id] = hpq_res_add(used[n->id], t->st.per_node);
			nodes[n->id].tasks = xreallocarray(nodes[n->id].tasks,
							   nodes[n->id].n_tasks + 1,
							   sizeof(uint64_t));
			nodes[n->id].tasks[nodes[n->id].n_tasks++] = t->st.id;
		}
	}
	for (uint32_t i = 0; i < nn; i++)
		nfind += st->nodes[i] ? st->nodes[i]->nfindings : 0;
	finds = nfind ? xcalloc(nfind, sizeof(*finds)) : NULL;
	fptrs = nfind ? xcalloc(nfind, sizeof(*fptrs)) : NULL;
	for (uint32_t i = 0; i < nn; i++) {
		const struct node *n = st->nodes[i];
		Hpq__Node *pb = &nodes[i];
		const struct conn *ac;
		uint64_t *tasks = pb->tasks;
		size_t ntasks = pb->n_tasks;

		if (!n)                      /* removed: its slot stays empty */
			continue;
		hpq__node__init(pb);
		pb->tasks = tasks;
		pb->n_tasks = ntasks;
		pb->name = n->name;
		pb->pool = st->pools[n->pool]->name;
		hpq__resources__init(&res[2 * i]);
		hpq__resources__init(&res[2 * i + 1]);
		hpq_res_to_pb(n->capacity, &res[2 * i]);
		hpq_res_to_pb(used[i], &res[2 * i + 1]);
		pb->capacity = &res[2 * i];
		pb->used = &res[2 * i + 1];
		pb->health = n->health;
		pb->service = n->service;
		pb->reason = n->reason;
		pb->last_heartbeat = n->last_heartbeat_ms;
		pb->heartbeats = n->heartbeats;
		pb->connected = n->connected;
		pb->address = n->address;
		pb->software_version = n->software_version;
		pb->service_by = n->service_by;
		pb->service_since = n->service_since_ms;
		pb->repair_action = n->repair_action;
		pb->cgroup = n->cgroup;
		pb->cgroup_problem = n->cgroup_problem;
		/* How its agent proved the node, while it is connected. */
		if ((ac = agentlink_conn(q->d, n)) != NULL) {
			pb->identity = ac->has_cert ? "tls" : ac->local ? "local" : "insecure";
			pb->cert_not_after_ms = ac->has_cert ? ac->cert.not_after * 1000 : 0;
		}
		pb->findings = fptrs ? &fptrs[k] : NULL;
		pb->n_findings = n->nfindings;
		for (size_t f = 0; f < n->nfindings; f++, k++) {
			hpq__finding__init(&finds[k]);
			finds[k].category = n->findings[f].category;
			finds[k].reason = n->findings[f].reason;
			finds[k].message = n->findings[f].message;
			finds[k].severity = n->findings[f].severity;
			finds[k].action = n->findings[f].action;
			finds[k].since = n->findings[f].since;
			fptrs[k] = &finds[k];
		}
		ptrs[nout++] = pb;
	}
	rep.n_nodes = nout;
	rep.nodes = ptrs;
	env.id = q->id;
	env.body_case = HPQ__ENVELOPE__BODY_NODE_LIST_REPLY;
	env.node_list_reply = &rep;
	server_send(q->c, &env);
	for (uint32_t i = 0; i < nn; i++)
		free(nodes[i].tasks);
	free(nodes);
	free(ptrs);
	free(res);
	free(used);
	free(finds);
	free(fptrs);
	return 0;
}

/* ---------------------------------------------------------------- administration */

static int find_node(struct req *q, const char *name, const char *reason, struct node **ret_node)
{
	struct node *n;

	if (!name || !*name)
		return state_errf(q->e, HPQ_EINVAL, "which node? give its name");
	if (strlen(reason) > 256)
		return state_errf(q->e, HPQ_EINVAL, "the reason is longer than 256 characters");
	for (const char *s = reason; *s; s++)
		if ((unsigned char)*s < 0x20)
			return state_errf(q->e, HPQ_EINVAL, "the reason has control characters");
	n = state_node_find(&q->d->state, name);
	if (!n)
		return state_errf(q->e, HPQ_ENOTFOUND, "no node '%.64s'; see 'hpq node list'",
				  name);
	*ret_node = n;
	return 0;
}

int req_node_drain(struct req *q)
{
	const Hpq__NodeDrainRequest *m = q->env->node_drain;
	struct node *n = NULL;
	int r = find_node(q, m->name, m->reason, &n);

	if (r < 0)
		return r;
	repair_drain(q->d, n, q->c->actor.user, m->reason);
	return req_ok_after_commit(q, 0);
}

int req_node_resume(struct req *q)
{
	const Hpq__NodeResumeRequest *m = q->env->node_resume;
	struct node *n = NULL;
	int r = find_node(q, m->name, m->reason, &n);

	if (r < 0)
		return r;
	repair_resume(q->d, n, q->c->actor.user, m->reason);
	return req_ok_after_commit(q, 0);
}

int req_node_repair(struct req *q)
{
	const Hpq__NodeRepairRequest *m = q->env->node_repair;
	struct node *n = NULL;
	int r = find_node(q, m->name, m->reason, &n);

	if (r < 0)
		return r;
	return req_ok_after_commit(q, repair_now(q->d, n, q->c->actor.user, m->action, m->reason,
						 q->e));
}

int req_node_remove(struct req *q)
{
	const Hpq__NodeRemoveRequest *m = q->env->node_remove;
	struct node *n = state_node_find(&q->d->state, m->name);

	if (!n)
		return state_errf(q->e, HPQ_ENOTFOUND, "no node '%.64s'", m->name);
	return req_ok_after_commit(q, state_node_remove(&q->d->state, n, &q->c->actor, q->e));
}
