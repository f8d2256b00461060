# bash completion for hpq(1): commands and sub-commands, each command's
# options and their values, task ids, and the team, class, pool and node
# names hpqd knows (asked quietly, with a short timeout: without a daemon
# there is simply nothing to offer).
#
# The option lists below are the usage lines of `hpq COMMAND --help`;
# tests/lint/completion.sh fails when they differ. Keep each entry on one
# line, as `key) opts='...' ;;`.

_hpq_opts()
{
	local opts=
	case $1 in
	# options: begin
	submit) opts='--name --team --class --pool --nodes --gpus --cpus --mem --time --checkpoint-dir --preempt-signal --grace --export --chdir --output --error --array --dependency --kill-on-invalid-dep --hold --plan --exclusive --test-only --recipe --set --recipe-path --wrap --json' ;;
	list) opts='--team --state --user --name --array --all --limit --expand-arrays --format --noheader --json' ;;
	show) opts='--script --json' ;;
	cancel) opts='--user --team --name --state --array --json' ;;
	hold) opts='--user --team --name --state --array --json' ;;
	release) opts='--user --team --name --state --array --json' ;;
	requeue) opts='--user --team --name --state --array --json' ;;
	update) opts='--time --gpus --cpus --mem --nodes --class --pool --name --dependency --json' ;;
	acct) opts='--since --until --user --team --state --name --limit --format --noheader --json --csv' ;;
	checkpoint) opts='--step --path --watch --task --attempt' ;;
	recipe-list) opts='--recipe-path --json' ;;
	recipe-show) opts='--set --recipe-path --json' ;;
	plan-search) opts='--pool --nodes --duration --after --before --max-segments --min-segment --team --json' ;;
	plan-create) opts='--team --name --json' ;;
	plan-list) opts='--team --all --json' ;;
	plan-show) opts='--json' ;;
	plan-cancel) opts='' ;;
	node-list) opts='--json' ;;
	node-show) opts='--json' ;;
	node-drain) opts='--reason --json' ;;
	node-resume) opts='--reason --json' ;;
	node-repair) opts='--reason --action --json' ;;
	node-revoke) opts='' ;;
	node-remove) opts='' ;;
	node-token-create) opts='--pool --ttl --uses --json' ;;
	node-token-list) opts='--json' ;;
	node-token-delete) opts='' ;;
	team-add) opts='--pool --gpus --cpus --mem --sharing --borrow-limit --borrow-limit-abs --lend-limit --weight --preempt-own --members --admins --default-class' ;;
	team-set) opts='--pool --gpus --cpus --mem --sharing --borrow-limit --borrow-limit-abs --lend-limit --weight --preempt-own --members --admins --default-class' ;;
	team-show) opts='--json' ;;
	team-list) opts='--json' ;;
	team-rm) opts='' ;;
	class-add) opts='--weight --preemptible --max-time' ;;
	class-set) opts='--weight --preemptible --max-time' ;;
	class-list) opts='--json' ;;
	class-rm) opts='' ;;
	policy-show) opts='--json' ;;
	policy-set) opts='' ;;
	status) opts='--pool --team --json' ;;
	events) opts='--follow --task --team --node --since --limit --json' ;;
	usage) opts='--since --by --json --csv' ;;
	top) opts='--interval --team' ;;
	logs) opts='--follow --attempt --node --json' ;;
	version) opts='--json' ;;
	versions) opts='--json' ;;
	upgrade-check) opts='--target --json' ;;
	# options: end
	esac
	printf '%s\n' "$opts --help"
}

_hpq_commands='submit list show cancel hold release requeue update acct checkpoint recipe plan node team class policy status events usage top logs version versions upgrade-check help'
_hpq_global_opts='--socket --server --ca-file --server-name --munge-socket --insecure --json --help --version'
_hpq_states='active pending running preempting completed failed cancelled timeout out_of_memory'
_hpq_columns='id name team user class pool state exit reason nodes gpus time elapsed nodelist submit start end limit attempts preemptions held dependency gpu_hours cpu_time peak_mem'
_hpq_update_keys='time= gpus= cpus= mem= nodes= class= pool= name= dependency='

# Options that take a value (the next word).
_hpq_takes_value()
{
	case $1 in
	--socket | --server | --ca-file | --server-name | --munge-socket | \
	--name | --team | --class | --pool | --nodes | --gpus | --cpus | --mem | --time | \
	--checkpoint-dir | --preempt-signal | --grace | --chdir | --export | --state | --user | \
	--array | --limit | --format | --dependency | --since | --until | --step | --path | \
	--task | --attempt | --reason | --action | --ttl | --uses | --sharing | \
	--borrow-limit | --borrow-limit-abs | --lend-limit | --weight | --preempt-own | \
	--members | --admins | --default-class | --preemptible | --node | --by | --interval | --output | --error | --kill-on-invalid-dep | --wrap | \
	--max-time | --recipe | --set | --recipe-path | --watch | --target | --duration | --after | \
	--before | --max-segments | --min-segment | --plan)
		return 0 ;;
	esac
	return 1
}

# Runs hpq with the connection options of the line being completed; quiet.
_hpq_ask()
{
	timeout 2 "${_hpq_prog:-hpq}" "${_hpq_conn[@]}" "$@" 2>/dev/null
}

# The first column of a table, without its header.
_hpq_names()
{
	_hpq_ask "$@" | awk 'NR > 1 && $1 != "-" { print $1 }' | sort -u
}

# Recipe names (hpq recipe list reads files, not the daemon).
_hpq_recipes()
{
	timeout 2 "${_hpq_prog:-hpq}" recipe list 2>/dev/null | awk 'NR > 1 { print $1 }'
}

_hpq_task_ids()
{
	_hpq_ask list --format id --noheader --state active
}

# Completes the last item of a comma-separated list.
_hpq_list_items()
{
	local cur=$1 items=$2 prefix=
	[[ $cur == *,* ]] && prefix=${cur%,*},
	COMPREPLY=($(compgen -W "$items" -P "$prefix" -- "${cur##*,}"))
}

_hpq_value()
{
	local opt=$1 cur=$2
	case $opt in
	--team) COMPREPLY=($(compgen -W "$(_hpq_names team list)" -- "$cur")) ;;
	--class | --default-class)
		COMPREPLY=($(compgen -W "$(_hpq_names class list)" -- "$cur")) ;;
	--pool)
		COMPREPLY=($(compgen -W "$(_hpq_ask node list | awk 'NR > 1 { print $2 }' |
			sort -u)" -- "$cur")) ;;
	--node) COMPREPLY=($(compgen -W "$(_hpq_names node list)" -- "$cur")) ;;
	--user) COMPREPLY=($(compgen -u -- "$cur")) ;;
	--state) _hpq_list_items "$cur" "$_hpq_states" ;;
	--format) _hpq_list_items "$cur" "$_hpq_columns" ;;
	--task | --array) COMPREPLY=($(compgen -W "$(_hpq_task_ids)" -- "$cur")) ;;
	--by) COMPREPLY=($(compgen -W 'team user class plan' -- "$cur")) ;;
	--sharing) COMPREPLY=($(compgen -W 'dont-lend lend lend-and-borrow' -- "$cur")) ;;
	--preempt-own) COMPREPLY=($(compgen -W 'lower-priority never' -- "$cur")) ;;
	--preemptible) COMPREPLY=($(compgen -W 'yes no' -- "$cur")) ;;
	--preempt-signal) COMPREPLY=($(compgen -W 'TERM INT HUP USR1 USR2 QUIT' -- "$cur")) ;;
	--socket | --ca-file | --path) COMPREPLY=($(compgen -f -- "$cur")) ;;
	--chdir | --checkpoint-dir | --recipe-path | --watch) COMPREPLY=($(compgen -d -- "$cur")) ;;
	--recipe) COMPREPLY=($(compgen -W "$(_hpq_recipes)" -- "$cur")) ;;
	--plan) COMPREPLY=($(compgen -W "$(_hpq_names plan list)" -- "$cur")) ;;
	*) COMPREPLY=() ;;
	esac
}

_hpq()
{
	local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
	local i w cmd= sub= key= family= nargs=0 dashdash=
	local -a _hpq_conn=()
	local _hpq_prog=${COMP_WORDS[0]}

	COMPREPLY=()
	for ((i = 1; i < COMP_CWORD; i++)); do
		w=${COMP_WORDS[i]}
		if [[ -n $dashdash ]]; then
			((nargs++))
			continue
		fi
		case $w in
		--) [[ -n $cmd ]] && dashdash=1; continue ;;
		--socket | --server | --ca-file | --server-name | --munge-socket)
			_hpq_conn+=("$w" "${COMP_WORDS[i + 1]}")
			((i++))
			continue ;;
		--insecure) _hpq_conn+=("$w"); continue ;;
		-*)
			# --opt=value comes as three words: --opt, =, value.
			if [[ ${COMP_WORDS[i + 1]} == = ]]; then
				((i += 2))
			elif _hpq_takes_value "$w"; then
				((i++))
			fi
			continue ;;
		esac
		if [[ -z $cmd ]]; then
			cmd=$w
			case $cmd in node | team | class | policy | recipe | plan) family=$cmd ;; esac
		elif [[ -n $family && -z $sub ]]; then
			sub=$w
		elif [[ $family == node && $sub == token && -z $key ]]; then
			key=node-token-$w
		else
			((nargs++))
		fi
	done
	if [[ -n $family && -n $sub && -z $key ]]; then
		[[ $family == node && $sub == token ]] || key=$family-$sub
	elif [[ -z $family ]]; then
		key=$cmd
	fi

	if [[ -z $dashdash && $prev == = ]] && ((COMP_CWORD > 2)); then
		_hpq_value "${COMP_WORDS[COMP_CWORD - 2]}" "$cur"
		return
	fi
	if [[ -z $dashdash && $cur == = ]]; then
		return # type the value's first letter: bash would replace the '='
	fi
	if [[ -z $dashdash ]] && _hpq_takes_value "$prev"; then
		_hpq_value "$prev" "$cur"
		return
	fi
	if [[ -z $dashdash && $cur == -* ]]; then
		if [[ -z $cmd ]]; then
			COMPREPLY=($(compgen -W "$_hpq_global_opts" -- "$cur"))
		elif [[ -n $key ]]; then
			COMPREPLY=($(compgen -W "$(_hpq_opts "$key")" -- "$cur"))
		fi
		return
	fi
	if [[ -z $cmd ]]; then
		COMPREPLY=($(compgen -W "$_hpq_commands" -- "$cur"))
		return
	fi
	if [[ -n $family && -z $sub ]]; then
		case $family in
		node) w='list show drain resume repair revoke remove token' ;;
		team) w='add set show list rm' ;;
		class) w='add set list rm' ;;
		policy) w='show set' ;;
		recipe) w='list show' ;;
		plan) w='search create list show cancel' ;;
		esac
		COMPREPLY=($(compgen -W "$w" -- "$cur"))
		return
	fi
	if [[ $family == node && $sub == token && -z $key ]]; then
		COMPREPLY=($(compgen -W 'create list delete' -- "$cur"))
		return
	fi
	case $key in
	show | logs)
		((nargs == 0)) && COMPREPLY=($(compgen -W "$(_hpq_task_ids)" -- "$cur")) ;;
	cancel | hold | release | requeue)
		COMPREPLY=($(compgen -W "$(_hpq_task_ids)" -- "$cur")) ;;
	update)
		if ((nargs == 0)); then
			COMPREPLY=($(compgen -W "$(_hpq_task_ids)" -- "$cur"))
		else
			COMPREPLY=($(compgen -W "$_hpq_update_keys" -- "$cur"))
			[[ ${COMPREPLY[0]} == *= ]] && compopt -o nospace 2>/dev/null
		fi ;;
	node-show | node-drain | node-resume | node-repair | node-revoke | node-remove)
		((nargs == 0)) && COMPREPLY=($(compgen -W "$(_hpq_names node list)" -- "$cur")) ;;
	team-show | team-set | team-rm)
		((nargs == 0)) && COMPREPLY=($(compgen -W "$(_hpq_names team list)" -- "$cur")) ;;
	class-set | class-rm)
		((nargs == 0)) && COMPREPLY=($(compgen -W "$(_hpq_names class list)" -- "$cur")) ;;
	help)
		((nargs == 0)) && COMPREPLY=($(compgen -W "$_hpq_commands" -- "$cur")) ;;
	recipe-show)
		((nargs == 0)) && COMPREPLY=($(compgen -W "$(_hpq_recipes)" -- "$cur")) ;;
	plan-show | plan-cancel)
		((nargs == 0)) && COMPREPLY=($(compgen -W "$(_hpq_names plan list)" -- "$cur")) ;;
	submit)
		# The command to run: a program, then files.
		if ((nargs == 0)); then
			COMPREPLY=($(compgen -c -- "$cur"))
		else
			COMPREPLY=($(compgen -f -- "$cur"))
		fi ;;
	esac
}

complete -F _hpq hpq
