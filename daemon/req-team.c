/*
 * req-team.c: the governance requests: teams, priority classes and the
 * cluster policy (request.h).
 *
 * Changes go through the state (state_team_set, state_class_set,
 * policy_set), which checks the sender's rights and the whole change
 * before applying any of it, and answer once committed. Lists answer at
 * once from memory, with what the dispatcher counts for each team now.
 */
#include <stdlib.h>
#include <string.h>

#include "context.h"
#include "error.h"
#include "msg.h"
#include "policy.h"
#include "request.h"
#include "server.h"
#include "xalloc.h"

int req_team_set(struct req *q)
{
	return req_ok_after_commit(q, state_team_set(&q->d->state, q->env->team_set, &q->c->actor,
						     q->e));
}

int req_team_remove(struct req *q)
{
	const Hpq__TeamRemoveRequest *m = q->env->team_remove;

	return req_ok_after_commit(q, state_team_remove(&q->d->state, m->name, &q->c->actor, q->e));
}

int req_team_list(struct req *q)
{
	const Hpq__TeamListRequest *m = q->env->team_list;
	struct state *st = &q->d->state;
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__TeamListReply rep = HPQ__TEAM_LIST_REPLY__INIT;
	Hpq__Team *teams = st->nteams ? xcalloc(st->nteams, sizeof(*teams)) : NULL;
	Hpq__Team **ptrs = st->nteams ? xcalloc(st->nteams, sizeof(*ptrs)) : NULL;
	Hpq__PoolQuota **qptrs = NULL;
	Hpq__PoolQuota *qs = NULL;
	Hpq__PoolUsage **uptrs = NULL;
	Hpq__PoolUsage *us = NULL;
	Hpq__Resources *res = NULL;
	size_t nq = 0, k = 0, n = 0;

	if (*m->name && !state_team_find(st, m->name)) {
		free(teams);
		free(ptrs);
		return state_errf(q->e, HPQ_ENOTFOUND, "unknown team '%.64s'", m->name);
	}
	for (uint32_t i = 0; i < st->nteams; i++)
		if (st->teams[i])
			nq += st->teams[i]->nquotas;
	if (nq) {
		qs = xcalloc(nq, sizeof(*qs));
		qptrs = xcalloc(nq, sizeof(*qptrs));
		us = xcalloc(nq, sizeof(*us));
		uptrs = xcalloc(nq, sizeof(*uptrs));
		res = xcalloc(6 * nq, sizeof(*res));
	}
	for (uint32_t i = 0; i < st->nteams; i++) {
		const struct team *t = st->teams[i];
		Hpq__Team *pb = &teams[n];

		if (!t || (*m->name && strcmp(m->name, t->name)))
			continue;
		hpq__team__init(pb);
		pb->name = t->name;
		pb->weight = t->weight;
		pb->preempt_own = (char *)(t->preempt_own_lower ? "lower-priority" : "never");
		pb->n_members = t->nmembers;
		pb->members = t->members;
		pb->n_admins = t->nadmins;
		pb->admins = t->admins;
		pb->default_class = t->default_class;
		pb->n_quotas = t->nquotas;
		pb->quotas = t->nquotas ? &qptrs[k] : NULL;
		pb->n_usage = t->nquotas;
		pb->usage = t->nquotas ? &uptrs[k] : NULL;
		for (size_t j = 0; j < t->nquotas; j++, k++) {
			const struct sched_quota *sq = &t->quotas[j].q;
			Hpq__PoolQuota *pq = &qs[k];
			Hpq__PoolUsage *pu = &us[k];
			struct sched_usage u;

			/* What the dispatcher counts for it there now. */
			hpq__pool_usage__init(pu);
			pu->pool = st->pools[t->quotas[j].pool]->name;
			if (sched_team_usage(st->sched, t->id, t->quotas[j].pool, &u) < 0)
				memset(&u, 0, sizeof(u));
			for (int r = 3; r < 6; r++)
				hpq__resources__init(&res[6 * k + r]);
			hpq_res_to_pb(u.used, &res[6 * k + 3]);
			hpq_res_to_pb(u.borrowed, &res[6 * k + 4]);
			hpq_res_to_pb(u.lent, &res[6 * k + 5]);
			pu->used = &res[6 * k + 3];
			pu->borrowed = &res[6 * k + 4];
			pu->lent = &res[6 * k + 5];
			pu->running = u.running;
			pu->pending = u.pending;
			uptrs[k] = pu;

			hpq__pool_quota__init(pq);
			pq->pool = st->pools[t->quotas[j].pool]->name;
			for (int r = 0; r < 3; r++)
				hpq__resources__init(&res[6 * k + r]);
			hpq_res_to_pb(sq->guarantee, &res[6 * k]);
			pq->guarantee = &res[6 * k];
			pq->sharing = (char *)state_sharing_name(sq->sharing);
			pq->borrow_limit_pct = sq->borrow_limit_pct;
			pq->has_borrow_limit_abs = sq->has_borrow_abs;
			if (sq->has_borrow_abs) {
				hpq_res_to_pb(sq->borrow_abs, &res[6 * k + 1]);
				pq->borrow_limit_abs = &res[6 * k + 1];
			}
			pq->has_lend_limit = sq->has_lend_limit;
			if (sq->has_lend_limit) {
				hpq_res_to_pb(sq->lend_limit, &res[6 * k + 2]);
				pq->lend_limit = &res[6 * k + 2];
			}
			qptrs[k] = pq;
		}
		ptrs[n++] = pb;
	}
	rep.n_teams = n;
	rep.teams = ptrs;
	env.id = q->id;
	env.body_case = HPQ__ENVELOPE__BODY_TEAM_LIST_REPLY;
	env.team_list_reply = &rep;
	server_send(q->c, &env);
	free(teams);
	free(ptrs);
	free(qs);
	free(qptrs);
	free(us);
	free(uptrs);
	free(res);
	return 0;
}

int req_class_set(struct req *q)
{
	return req_ok_after_commit(q, state_class_set(&q->d->state, q->env->class_set, &q->c->actor,
						      q->e));
}

int req_class_remove(struct req *q)
{
	const Hpq__ClassRemoveRequest *m = q->env->class_remove;

	return req_ok_after_commit(q, state_class_remove(&q->d->state, m->name, &q->c->actor, q->e));
}

int req_class_list(struct req *q)
{
	struct state *st = &q->d->state;
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__ClassListReply rep = HPQ__CLASS_LIST_REPLY__INIT;
	Hpq__PriorityClass *cls = st->nclasses ? xcalloc(st->nclasses, sizeof(*cls)) : NULL;
	Hpq__PriorityClass **ptrs = st->nclasses ? xcalloc(st->nclasses, sizeof(*ptrs)) : NULL;
	size_t n = 0;

	for (uint32_t i = 0; i < st->nclasses; i++) {
		const struct prio_class *pc = st->classes[i];

		if (!pc)
			continue;
		hpq__priority_class__init(&cls[n]);
		cls[n].name = pc->name;
		cls[n].weight = pc->weight;
		cls[n].preemptible = pc->preemptible;
		cls[n].max_time_s = pc->max_time_s;
		ptrs[n] = &cls[n];
		n++;
	}
	rep.n_classes = n;
	rep.classes = ptrs;
	env.id = q->id;
	env.body_case = HPQ__ENVELOPE__BODY_CLASS_LIST_REPLY;
	env.class_list_reply = &rep;
	server_send(q->c, &env);
	free(cls);
	free(ptrs);
	return 0;
}

/* ---------------------------------------------------------------- policy */

int req_policy_show(struct req *q)
{
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__PolicyReply rep;

	policy_to_pb(&q->d->state, &rep);
	env.id = q->id;
	env.body_case = HPQ__ENVELOPE__BODY_POLICY_REPLY;
	env.policy_reply = &rep;
	server_send(q->c, &env);
	return 0;
}

int req_policy_set(struct req *q)
{
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__PolicyReply rep;
	int r;

	r = policy_set(&q->d->state, q->env->policy_set, &q->c->actor, q->e);
	if (r < 0)
		return r;
	/* What is in force now, once it is stored. */
	policy_to_pb(&q->d->state, &rep);
	env.id = q->id;
	env.body_case = HPQ__ENVELOPE__BODY_POLICY_REPLY;
	env.policy_reply = &rep;
	server_reply_after_commit(q->c, &env);
	return 0;
}
