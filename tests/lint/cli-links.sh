#!/bin/sh
# cli-links.sh: hpq starts without OpenSSL.
#
# Loading libssl and libcrypto costs a process about 4 ms of page faults,
# as much as the rest of an `hpq show`. hpq needs TLS only to dial hpqd
# over TCP, and loads it then from hpq-tls.so (client/tls-module.h). This
# fails when a change makes hpq link OpenSSL again, or when the module
# would load another copy of hpq_common's symbols into hpq (it must
# export its table and nothing else).
#
# usage: cli-links.sh HPQ HPQ_TLS_SO
set -eu
hpq=${1:?usage: cli-links.sh HPQ HPQ_TLS_SO}
module=${2:?usage: cli-links.sh HPQ HPQ_TLS_SO}

needed=$(readelf -d "$hpq" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
for lib in $needed; do
	case "$lib" in
	libssl.* | libcrypto.*)
		echo "cli-links: $hpq needs $lib; it must load TLS from hpq-tls.so" >&2
		exit 1 ;;
	esac
done

exported=$(readelf --dyn-syms -W "$module" |
	awk '$5 == "GLOBAL" && $7 != "UND" { print $8 }' | sort -u)
if [ "$exported" != "hpq_tls_module" ]; then
	echo "cli-links: $module must export hpq_tls_module alone, not:" $exported >&2
	exit 1
fi
if ! readelf -d "$module" | grep -q 'NEEDED.*libssl'; then
	echo "cli-links: $module does not link libssl" >&2
	exit 1
fi
echo "cli-links: hpq needs:" $needed
