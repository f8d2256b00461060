/*
 * task-reply.c: a task as a reply carries it (task-reply.h).
 */
#include "task-reply.h"

#include "msg.h"

void task_table_row(const struct state *st, const struct task *t, Hpq__Task *pb,
		    Hpq__Resources *res)
{
	pb->id = t->st.id;
	pb->name = t->name;
	pb->team = t->team;
	pb->user = t->user;
	pb->class_ = t->cls;
	pb->state = (char *)state_task_state(t->state);
	pb->reason = (char *)state_task_reason(st, t);
	pb->queue_position = 0;
	pb->nodes = t->st.nnodes;
	res->gpus = t->st.per_node.gpus;
	pb->per_node = res;
	pb->n_node_names = t->n_node_names;
	pb->node_names = t->node_names;
	pb->start_time = t->start_ms;
	pb->end_time = t->end_ms;
	pb->exit_code = t->exit_code;
	pb->has_exit_code = t->has_exit_code;
	pb->has_array = t->array_id != 0;
	pb->array_id = t->array_id;
	pb->array_index = t->array_index;
	pb->array_spec = (char *)protobuf_c_empty_string;
	pb->held = t->held;
}

void task_format_row(const struct state *st, const struct task *t, Hpq__Task *pb,
		     Hpq__Resources *res)
{
	task_table_row(st, t, pb, res);
	pb->pool = t->pool;
	pb->submit_time = t->submit_ms;
	pb->time_limit_s = t->time_limit_s;
	pb->attempts = t->attempts;
	pb->preemptions = t->preemptions;
	pb->dependency = t->dependency ? t->dependency : (char *)"";
	pb->cpu_usec = t->cpu_usec;
	pb->peak_mem = t->peak_mem;
}

void task_to_pb(const struct state *st, const struct task *t, Hpq__Task *pb,
		Hpq__Resources *res)
{
	hpq__task__init(pb);
	hpq__resources__init(res);
	task_format_row(st, t, pb, res);
	hpq_res_to_pb(t->st.per_node, res);
	pb->uid = t->uid;
	pb->gid = t->gid;
	pb->checkpoint_dir = t->checkpoint_dir;
	pb->n_argv = t->argc;
	pb->argv = t->argv;
	pb->cwd = t->cwd;
	pb->preempt_signal = t->preempt_signal;
	pb->grace_s = state_task_grace(st, t);
	pb->kill_on_invalid_dep = t->kill_on_invalid_dep;
	pb->output = t->output;
	pb->error = t->error;
	pb->submit_dir = t->submit_dir;
	pb->has_script = t->has_script;
	pb->recipe = t->recipe ? t->recipe : (char *)"";
	pb->recipe_version = t->recipe_version ? t->recipe_version : (char *)"";
	pb->n_recipe_params = t->n_recipe_params;
	pb->recipe_params = t->recipe_params;
	pb->plan = t->plan ? t->plan : (char *)"";
}

void task_redact(const struct rights_view *v, const struct task *t, Hpq__Task *pb)
{
	if (rights_view_task(v, t))
		return;
	pb->n_argv = 0;
	pb->argv = NULL;
	pb->cwd = (char *)"";
	pb->output = (char *)"";
	pb->error = (char *)"";
	pb->submit_dir = (char *)"";
	pb->script.len = 0;
	pb->script.data = NULL;
	pb->redacted = true;
}
