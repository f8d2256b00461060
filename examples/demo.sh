#!/bin/sh
# demo.sh: a five-minute tour of hpq on one machine, run by `make demo`.
#
#   ./examples/demo.sh [BUILD_DIR]      (default: build)
#
# It starts hpqd with its state in ./hpq-demo, three local agents with fake
# GPUs (node1..node3, 2 GPUs each), creates two teams, submits a handful
# of tasks from both (one of them the example trainer, which checkpoints),
# and shows them run and finish, then shows idle compute lent to a team
# without a guarantee and reclaimed, the borrowed tasks resuming from their
# checkpoints. Every hpq command is printed before it
# runs, so the output doubles as a CLI tutorial. Whatever it started is
# stopped when it ends or is interrupted; ./hpq-demo stays for a look
# around (`HPQ_SOCKET=$PWD/hpq-demo/hpqd.sock build/client/hpq list --all`
# while it runs) and is cleared by the next demo. The demo has a directory
# of its own, so that it never touches ./var of the README's tour.
set -eu

build=${1:-build}
here=$(pwd)
var=$here/hpq-demo

# Colour only on a terminal.
if [ -t 1 ]; then bold='\033[1m' cyan='\033[36m' off='\033[0m'; else bold='' cyan='' off=''; fi
say() { printf "\n${bold}== %s${off}\n" "$*"; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }

find_bin() {
	for p in "$build/$1" "$build"/*/"$1"; do
		[ -x "$p" ] && { (cd "$(dirname "$p")" && printf '%s/%s\n' "$(pwd)" "$(basename "$p")"); return; }
	done
	die "no '$1' under $build: build first (make demo does)"
}
HPQD=$(find_bin hpqd)
AGENT=$(find_bin hpq-agent)
HPQ_BIN=$(find_bin hpq)
TRAINER=$(find_bin hpq-example-trainer)

# The demo owns ./hpq-demo only if it made it.
if [ -e "$var" ] && [ ! -e "$var/.hpq-demo" ]; then
	die "$var exists and was not made by this demo; move it away or remove it (rm -rf hpq-demo) first"
fi
rm -rf "$var"
mkdir -p "$var"
: > "$var/.hpq-demo"
[ ${#var} -lt 90 ] ||
	die "'$var' is too long a path for a Unix socket; run from a shorter directory"

# Everything the demo starts carries this in its environment (tasks get it
# through `hpq submit`, which exports the environment), so cleanup finds
# task process groups too, wherever they run.
HPQ_DEMO=$var
export HPQ_DEMO
HPQ_SOCKET=$var/hpqd.sock
export HPQ_SOCKET
unset HPQ_SERVER || true
# The trainer reports checkpoints with this hpq (it inherits the variable).
HPQ_CLI=$HPQ_BIN
export HPQ_CLI

pids=""
cleanup() {
	trap - EXIT INT TERM
	if [ -n "$pids" ]; then
		say "stopping what the demo started"
		# shellcheck disable=SC2086
		kill $pids 2>/dev/null || true
		for i in 1 2 3 4 5 6 7 8 9 10; do
			alive=""
			for p in $pids; do kill -0 "$p" 2>/dev/null && alive="$alive $p"; done
			[ -z "$alive" ] && break
			sleep 0.5
		done
		# shellcheck disable=SC2086
		[ -z "$alive" ] || kill -9 $alive 2>/dev/null || true
	fi
	# Leftover task processes, found by the marker in their environment.
	for e in /proc/[0-9]*/environ; do
		p=${e#/proc/}; p=${p%/environ}
		[ "$p" = $$ ] && continue
		if { tr '\0' '\n' < "$e"; } 2>/dev/null | grep -qx "HPQ_DEMO=$var"; then
			kill -9 "$p" 2>/dev/null || true
		fi
	done
	echo "state, logs and task output are in $var (the next demo clears it; so does rm -rf hpq-demo)"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The arguments as a shell would need them quoted, paths under the
# current directory shortened.
quote() {
	out=""
	for a in "$@"; do
		case $a in
		"$here"/*) a=${a#"$here"/} ;;
		esac
		case $a in
		"" | *[!A-Za-z0-9_./:=,@%+-]*)
			a="'$(printf '%s' "$a" | sed "s/'/'\\\\''/g")'" ;;
		esac
		out="$out $a"
	done
	printf '%s' "${out# }"
}
# Prints a command as the reader would type it, then runs it.
hpq() {
	printf "\n${cyan}\$ hpq %s${off}\n" "$(quote "$@")"
	"$HPQ_BIN" "$@"
}
# Runs hpq quietly (for values the script needs).
hpq_q() { "$HPQ_BIN" "$@"; }
# hpq submit, shown like hpq(); the new task's id is left in $id.
submit() {
	printf "\n${cyan}\$ hpq submit %s${off}\n" "$(quote "$@")"
	id=$("$HPQ_BIN" submit "$@")
	echo "$id"
}

json_count() { grep -c "\"$1\": $2" || true; }

# ---------------------------------------------------------------- the cluster

say "starting hpqd: state in $var, local socket $HPQ_SOCKET, a free TCP port"
cat > "$var/hpqd.conf" <<EOF
# The demo's hpqd: agents heartbeat every second so the tour moves quickly;
# the fence (a node cut off for 5 s stops its tasks) and the time after which
# a silent node is lost (15 s, which the fence needs: 2 x 5 s + 5 s) scaled
# to match.
[agents]
heartbeat = 1s
fence_after = 5s
unreachable_after = 15
EOF
# Tasks run as whoever submits them. Run as root (a fresh machine), the
# demo must allow root tasks, in hpqd and in each agent; a real cluster
# never does.
root_agent=
if [ "$(id -u)" = 0 ]; then
	printf '[auth]\nallow_root_tasks = yes\n' >> "$var/hpqd.conf"
	root_agent=--allow-root-tasks
	echo "(running as root: this demo cluster allows root tasks; a real one must not)"
fi
printf '%s\n' '$ hpqd --foreground --state-dir hpq-demo --socket hpq-demo/hpqd.sock \' \
	'      --listen 127.0.0.1:0 --config hpq-demo/hpqd.conf'
"$HPQD" --foreground --state-dir "$var" --socket "$HPQ_SOCKET" --listen 127.0.0.1:0 \
	--config "$var/hpqd.conf" --log-level info 2> "$var/hpqd.log" &
pids="$!"
i=0
until [ -s "$var/hpqd.port" ] && [ -S "$HPQ_SOCKET" ]; do
	i=$((i + 1))
	[ $i -lt 100 ] || { tail -20 "$var/hpqd.log" >&2; die "hpqd did not start; its log is above"; }
	kill -0 "$pids" 2>/dev/null ||
		{ tail -20 "$var/hpqd.log" >&2; die "hpqd exited; its log is above"; }
	sleep 0.1
done
port=$(cat "$var/hpqd.port")
echo "hpqd listens on 127.0.0.1:$port (written to hpq-demo/hpqd.port)"

say "a bootstrap token with which three machines may join (TCP is TLS: nodes prove who they are with certificates)"
printf '%s\n' '$ hpq node token create --uses 3 --ttl 10m --json'
token_json=$(hpq_q node token create --uses 3 --ttl 10m --json)
printf '%s\n' "$token_json"
token=$(printf '%s\n' "$token_json" | sed -n 's/.*"token": "\([^"]*\)".*/\1/p')
ca_hash=$(printf '%s\n' "$token_json" | sed -n 's/.*"ca_hash": "\([^"]*\)".*/\1/p')
[ -n "$token" ] && [ -n "$ca_hash" ] || die "no join token: $token_json"

say "starting three agents, each with 2 (pretend) GPUs, 4 CPUs and 8G, joining with it"
for n in 1 2 3; do
	printf '$ hpq-agent --foreground --server 127.0.0.1:%s --name node%s --work-dir hpq-demo/node%s \\\n' \
		"$port" "$n" "$n"
	printf '      --gpus 2 --cpus 4 --mem 8G --join TOKEN --ca-hash %s\n' "$ca_hash"
	"$AGENT" --foreground --server "127.0.0.1:$port" --name "node$n" --work-dir "$var/node$n" \
		--gpus 2 --cpus 4 --mem 8G --heartbeat 1s --log-level info $root_agent \
		--join "$token" --ca-hash "$ca_hash" 2> "$var/node$n.log" &
	pids="$pids $!"
done
i=0
until [ "$(hpq_q node list --json | json_count connected true)" -ge 3 ]; do
	i=$((i + 1))
	[ $i -lt 100 ] || die "the agents did not register; see $var/node*.log"
	sleep 0.1
done
hpq node list
hpq version

# ---------------------------------------------------------------- teams

say "two teams with guaranteed shares of the default pool; idle compute is lent between them"
hpq team add vision --gpus 4 --cpus 6 --mem 16G --sharing lend-and-borrow
hpq team add nlp --gpus 2 --cpus 4 --mem 8G --sharing lend-and-borrow
hpq team list
hpq class list

# ---------------------------------------------------------------- work

say "submitting work: each submit prints the new task's id"
submit --team vision --name resnet --class training --gpus 2 --cpus 2 --mem 2G \
	--checkpoint-dir "$var/ckpt" -- "$TRAINER" --steps 24 --step-ms 400 --every 6
trainer_id=$id
submit --team vision --name augment --class data-processing --cpus 1 -- \
	sh -c 'for shard in 1 2 3 4; do echo "augmenting shard $shard"; sleep 1; done'
submit --team nlp --name bert --class training --nodes 2 --gpus 1 --cpus 1 -- \
	sh -c 'echo "rank $HPQ_NODE_RANK of $HPQ_NNODES, GPUs $CUDA_VISIBLE_DEVICES"; sleep 4'
gang_id=$id
submit --team nlp --name tokenize --class fine-tuning --cpus 2 -- \
	sh -c 'sleep 2; echo "tokenized"'
submit --team nlp --name broken --cpus 1 -- sh -c 'echo "bad input file" >&2; exit 3'
submit --name hello -- echo "hello from the default team"
submit --team nlp --name eval-server --cpus 1 -- sleep 600
server_id=$id

say "a task that is not wanted any more is cancelled (its whole process group is stopped)"
sleep 1
hpq cancel "$server_id"

say "watching the queue until everything has finished"
for round in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15; do
	sleep 2
	hpq list
	active=$(hpq_q list --json | grep -c '"id"' || true)
	[ "$active" -gt 0 ] || break
	[ $((round % 3)) -ne 1 ] || hpq node list
done

say "everything, finished tasks included"
hpq list --all

say "one task in detail: the trainer, with its checkpoints and events"
hpq show "$trainer_id"

say "its output, read through hpqd from the node that ran it (a file per attempt there)"
printf "\n${cyan}\$ hpq logs %s | tail -5${off}\n" "$trainer_id"
"$HPQ_BIN" logs "$trainer_id" | tail -5

say "the 2-node task started on two nodes at once, one rank on each"
printf "\n${cyan}\$ for n in node1 node2 node3; do hpq logs %s --node \$n; done | grep rank${off}\n" \
	"$gang_id"
for n in node1 node2 node3; do "$HPQ_BIN" logs "$gang_id" --node "$n" 2>/dev/null; done |
	grep '^rank' || true

say "scripts read the same data as JSON: hpq show $trainer_id --json"
"$HPQ_BIN" show "$trainer_id" --json | head -25
echo "..."

# ---------------------------------------------------------------- governance

say "lending and reclaiming: the default team has no guarantee, so it runs on idle compute"
for k in 1 2 3; do
	submit --name "sweep-$k" --class training --gpus 2 --cpus 1 --mem 1G \
		--checkpoint-dir "$var/ckpt-sweep-$k" -- \
		"$TRAINER" --steps 30 --step-ms 300 --every 5
	eval "sweep_$k=\$id"
done
sleep 2
hpq status

say "vision wants its guarantee back: borrowed tasks are preempted to their last checkpoint"
submit --team vision --name finetune-a --class fine-tuning --gpus 2 --cpus 1 -- sleep 3
submit --team vision --name finetune-b --class fine-tuning --gpus 2 --cpus 1 -- sleep 3
sleep 2
hpq list
hpq status

say "as vision's work finishes, the preempted sweeps resume where they checkpointed"
for round in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15; do
	sleep 2
	active=$(hpq_q list --json | grep -c '"id"' || true)
	[ "$active" -gt 0 ] || break
done
hpq list --all --team default
for k in 1 2 3; do
	eval "sid=\$sweep_$k"
	grep -h -e '^resumed at' -e '^starting at' "$var"/node*/logs/*/"$sid".*.log |
		sort -r | sed "s/^/task $sid: /"
done
say "the event log tells the story of one preempted sweep"
hpq events --task "$sweep_2"
