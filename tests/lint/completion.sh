#!/bin/bash
# The shell completion (dist/completion) against hpq itself:
#  - every leaf command of `hpq --help` has an entry in the option table of
#    hpq.bash, listing exactly the options of its usage line, and _hpq (zsh)
#    has the same table;
#  - the options that take a value are known as such, and the others not;
#  - completing in bash gives what a user expects (hpq ho<TAB> is hold,
#    hpq cancel --us<TAB> is --user, lists of states and columns), with no
#    daemon to ask.
#  - the same in zsh, where it is installed (completion-zsh.zsh).
# Usage: completion.sh HPQ DIST_COMPLETION_DIR
set -u
hpq=$1
dir=$2
fail=0

err()
{
	echo "completion: $*" >&2
	fail=1
}

# shellcheck source=/dev/null
. "$dir/hpq.bash" || { echo "completion: cannot source $dir/hpq.bash" >&2; exit 1; }

# The sub-commands of a family: the "commands:" list of its --help.
subcommands()
{
	"$hpq" "$@" --help | awk '/^commands:/ { p = 1; next } p && /^  [a-z]/ { print $1 } p && /^$/ { p = 0 }'
}

# Checks one leaf: its usage line's options against the table.
check_leaf()
{
	local key=$1 usage want got opt next words i
	shift
	usage=$("$hpq" "$@" --help | sed -n '1s/^usage: hpq //p')
	[[ -n $usage ]] || { err "hpq $* --help prints no usage line"; return; }
	want=$(grep -o -- '--[a-z][a-z-]*' <<<"$usage" | sort -u | tr '\n' ' ')
	got=$(_hpq_opts "$key" | tr ' ' '\n' | grep -v -e '^--help$' -e '^$' | sort -u | tr '\n' ' ')
	[[ $want == "$got" ]] ||
		err "'$key': hpq $* --help has options [$want], the completion [$got]"
	# An option followed by a placeholder (--team T) takes a value.
	read -r -a words <<<"$(tr '[]|' '   ' <<<"$usage")"
	for ((i = 0; i < ${#words[@]}; i++)); do
		opt=${words[i]}
		[[ $opt == --?* ]] || continue
		opt=${opt%%=*}
		next=${words[i + 1]:-}
		if [[ ${words[i]} == *=* || ($next != "" && $next != -* && $next != ... &&
			$(grep -o -- "${words[i]}[] |]*\\]" <<<"$usage" | head -1) == "") ]]; then
			_hpq_takes_value "$opt" || err "'$key': $opt takes a value, the completion does not know"
		else
			! _hpq_takes_value "$opt" || err "'$key': $opt takes no value, the completion says it does"
		fi
	done
}

seen=' '
for cmd in $(subcommands); do
	subs=$(subcommands "$cmd")
	if [[ -z $subs ]]; then
		check_leaf "$cmd" "$cmd"
		seen+="$cmd "
		continue
	fi
	for sub in $subs; do
		subsubs=$(subcommands "$cmd" "$sub")
		if [[ -z $subsubs ]]; then
			check_leaf "$cmd-$sub" "$cmd" "$sub"
			seen+="$cmd-$sub "
			continue
		fi
		for s3 in $subsubs; do
			check_leaf "$cmd-$sub-$s3" "$cmd" "$sub" "$s3"
			seen+="$cmd-$sub-$s3 "
		done
	done
done
[[ $seen != ' ' ]] || err "found no commands in hpq --help"

# No entry for a command hpq does not have.
for key in $(sed -n "s/^[[:space:]]*\([a-z-]*\)) opts=.*/\1/p" "$dir/hpq.bash"); do
	[[ $seen == *" $key "* ]] || err "the completion lists '$key', which hpq does not have"
done

# The command list.
want=$( (subcommands; echo help) | sort | tr '\n' ' ')
got=$(tr ' ' '\n' <<<"$_hpq_commands" | sort | tr '\n' ' ')
[[ $want == "$got" ]] || err "commands: hpq has [$want], the completion [$got]"

# zsh has the same table, line for line.
if ! diff <(sed -n '/# options: begin/,/# options: end/p' "$dir/hpq.bash") \
	<(sed -n '/# options: begin/,/# options: end/p' "$dir/_hpq") >/dev/null; then
	err "the option tables of hpq.bash and _hpq differ"
fi

# Completing, as bash does on TAB: the words, the cursor's word index.
complete_line()
{
	COMP_WORDS=("$@")
	COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
	COMP_LINE="$*"
	COMP_POINT=${#COMP_LINE}
	COMPREPLY=()
	_hpq
	((${#COMPREPLY[@]} == 0)) || printf '%s\n' "${COMPREPLY[@]}" | sort | tr '\n' ' '
}

expect()
{
	local want=$1 got
	shift
	got=$(complete_line "$@")
	[[ $got == "$want" ]] || err "'hpq ${*:2}<TAB>': got [$got], want [$want]"
}

export HPQ_SOCKET=/nonexistent/hpq-completion-test.sock
expect 'hold ' "$hpq" ho
expect 'recipe release requeue ' "$hpq" re
expect '--user ' "$hpq" cancel --us
expect '--user ' "$hpq" --json cancel 12 --us
expect '--time ' "$hpq" update 12 --t
expect 'time= ' "$hpq" update 12 ti
expect 'token ' "$hpq" node to
expect 'create ' "$hpq" node token cr
expect '--pool ' "$hpq" node token create --po
expect '--server --server-name --socket ' "$hpq" --json --s
expect 'pending,running ' "$hpq" list --state pending,ru
expect 'pending,pending pending,preempting ' "$hpq" list --state pending,p
expect 'id,name id,nodelist id,nodes ' "$hpq" list --format id,n
expect 'class plan team user ' "$hpq" usage --by ''
expect '' "$hpq" update 12 --dependency afterok:1
expect '--expand-arrays ' "$hpq" list --state pending --e
expect '--csv ' "$hpq" acct --since 2h --c
# No daemon: no ids, no names, and no error on the terminal.
expect '' "$hpq" cancel ''
expect '' "$hpq" node show ''

# zsh, where it is installed: the file parses, and completes the same.
if command -v zsh >/dev/null; then
	zsh -n "$dir/_hpq" || err "_hpq does not parse in zsh"
	zexpect()
	{
		local got
		got=$(zsh "$(dirname "$0")/completion-zsh.zsh" "$dir" "$(dirname "$hpq")" "$2" 2>&1 | tail -1)
		[[ $got == "$1" ]] || err "zsh: '$2<TAB>': got [$got], want [$1]"
	}
	zexpect 'hold' 'hpq ho'
	zexpect '--user' 'hpq cancel --us'
	zexpect 'running' 'hpq list --state pending,ru'
	zexpect 'time=' 'hpq update 12 ti'
	zexpect 'create' 'hpq node token cr'
else
	echo "completion: zsh is not installed; _hpq not checked"
fi

exit $fail
