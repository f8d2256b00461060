# Completes one line in an interactive zsh on a pseudo-terminal, with the
# completion of dist/completion, and prints the matches it offered (as
# compadd got them, after any prefix the completion set aside), or
# NOTHING. For tests/lint/completion.sh.
# Usage: zsh completion-zsh.zsh COMPLETION_DIR HPQ_DIR 'hpq ho'
zmodload zsh/zpty || exit 1
zpty z zsh -f -i
zpty -w z "PROMPT='>' ; fpath=($1 \$fpath); autoload -Uz compinit; compinit -u -D"
zpty -w z "PATH=$2:\$PATH; export HPQ_SOCKET=/nonexistent/hpq-completion-test.sock"
# Report what the completion adds, then add it as usual.
zpty -w z 'compadd () { local -a h_; builtin compadd -O h_ "$@"; (( $#h_ )) && print -r -- "HITS:${(j: :)h_}:END"; builtin compadd "$@" }'
zpty -w z "zstyle ':completion:*' menu no; print READY\$((1+1))"
zpty -r z out '*READY2*'
zpty -w -n z "$3"$'\t'
all= chunk=
integer i
# Up to 30 s for the matches (a loaded machine); done as soon as they come.
for (( i = 0; i < 300; i++ )); do
	while zpty -r -t z chunk; do all+=$chunk; done
	[[ $all == *HITS:*:END* ]] && break
	sleep 0.1
done
all=${all//$'\r'/}
if [[ $all == *HITS:*:END* ]]; then
	print -r -- ${${all#*HITS:}%%:END*}
else
	print -r -- NOTHING
fi
zpty -d z
