#!/usr/bin/env bash
# Profile a running `streaming` process with py-spy: flame graphs, a live top view, thread dumps.
# `scripts/profile.sh --help` explains everything; tests/test_profile_script.py runs it against a real server.
set -euo pipefail

PROG=scripts/profile.sh
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(dirname "$SCRIPT_DIR")
# The service's own precedence: STREAMING_SERVER_PORT, then TIMESERIES_PORT, then conf/default.toml.
DEFAULT_PORT=${STREAMING_SERVER_PORT:-${TIMESERIES_PORT:-8080}}
ORIGINAL_ARGS=("$@")

usage() {
	cat <<EOF
Usage: $PROG COMMAND [OPTIONS] [TARGET]

Profile a running \`streaming serve\` or \`streaming demo\` process with py-spy, a sampling profiler
that attaches from outside: nothing to enable in the service, no agent, no port to open, no restart.
(This replaces the JVM service's JMX/JVisualVM-over-an-SSH-tunnel recipe: run it on the host.)

Commands:
  record [--seconds N] [--out DIR] [--rate HZ] [--native] [--idle] [--nonblocking]
         [--subprocesses] [--stdout] [TARGET] [-- PY_SPY_ARGS...]
      Sample the process for N seconds and write two views of that same window:
        DIR/streaming-<pid>-<UTC timestamp>.svg               flame graph, open in a browser
        DIR/streaming-<pid>-<UTC timestamp>.speedscope.json   open at https://www.speedscope.app/
      then print their paths. py-spy writes one format per run, so two py-spy runs sample the
      process side by side for the same N seconds (not N/2 each). Only one of them can pause the
      process to take a sample (a thread has one ptrace tracer), so the flame-graph run pauses it
      (py-spy's default: exact stacks) and the speedscope run reads without pausing (--nonblocking:
      a sample taken mid-change is dropped and counted in py-spy's "Errors"). Ctrl-C stops both
      early; each file keeps what was sampled until then.
      --seconds N      how long to sample, whole seconds (default 30)
      --out DIR        where to write (default ./profiles, created if missing)
      --rate HZ        samples per second (default 100)
      --native         include C/C++/Cython frames (numpy, isal, psycopg2, ...) in the flame graph;
                       native unwinding needs a paused process, so the speedscope file stays
                       Python-only
      --idle           include idle threads (the event loop waiting in epoll, idle workers)
      --nonblocking    never pause the process, in both runs: the least overhead on a busy
                       production process, at the price of some dropped samples; not with --native
      --subprocesses   also sample the target's child processes: give the parent's pid to profile
                       every worker at once
      --stdout         also write the SVG to standard output (for ssh, below); messages and the
                       paths go to standard error
      -- ARGS          further py-spy record options for both runs (e.g. -- --gil --threads)

  top [--rate HZ] [--native] [--idle] [--nonblocking] [--subprocesses] [TARGET]
      py-spy's live view of the functions taking the most time, like top(1). Needs a terminal;
      Ctrl-C quits.

  dump [--native] [--locals] [--subprocesses] [TARGET]
      Print the current stack of every thread, once. "MainThread" is the event loop: when it waits
      for work its stack ends in EpollSelector.select <- BaseEventLoop._run_once (base_events.py)
      <- run_forever; a stack stuck elsewhere means the loop is blocked. "streaming-cpu_N" threads
      run decode/resample/encode jobs; "asyncio_N" are the loop's default executor.
      --locals         also print each frame's local variables

TARGET (default: --port \${STREAMING_SERVER_PORT:-\${TIMESERIES_PORT:-8080}}, here $DEFAULT_PORT):
  --pid PID          that process
  --port PORT        the process listening on TCP port PORT (found with ss, else lsof, else by
                     reading /proc/net/tcp)
  --pidfile FILE     the pid written in FILE (a supervisor's or systemd's PIDFile=)
  When several processes listen on the port (workers sharing it), the first worker is profiled and
  the others are listed: pick another with --pid, or profile them all with
  --pid PARENT --subprocesses.

What it needs, checked before it starts (each failure says how to fix it):
  py-spy     \$PY_SPY when set, else this checkout's .venv/bin/py-spy, else py-spy on PATH.
             Install: .venv/bin/pip install py-spy (make install adds it: the [profile] extra),
             or pip install py-spy.
  ptrace     py-spy reads the interpreter's memory from outside, which Linux allows to root or a
             holder of CAP_SYS_PTRACE, and to the process's own user only while
             /proc/sys/kernel/yama/ptrace_scope is 0. Fixes: run as root (sudo $PROG ...);
             or echo 0 | sudo tee /proc/sys/kernel/yama/ptrace_scope (until reboot); in Docker,
             run the container with --cap-add SYS_PTRACE (compose: cap_add: [SYS_PTRACE]), or
             profile from the host as root with the host pid (docker top CONTAINER).
  the target a running process (for --port: one listening on that port).

Remote, on the host that runs the service (no tunnel: everything happens there):
  ssh HOST 'cd /srv/streaming && scripts/profile.sh record --seconds 30 --out /tmp/prof' && scp 'HOST:/tmp/prof/*' .
  ssh HOST 'cd /srv/streaming && scripts/profile.sh record --seconds 30 --stdout' > flame.svg
  ssh HOST 'cd /srv/streaming && sudo -n scripts/profile.sh dump --port 8080'
  (Do not use ssh -t with --stdout: a terminal would mix the messages into the SVG.)

Examples:
  $PROG record                                  30 s of the service on port $DEFAULT_PORT
  $PROG record --seconds 10 --native --port 8123
  $PROG record --pid 4242 --subprocesses        a parent and all its workers
  $PROG top --pidfile /run/streaming.pid
  $PROG dump --locals --pid 4242

Exit status: 0 done, 1 failed (the message says why), 2 bad usage.
EOF
}

say() { printf '%s: %s\n' "${PROG##*/}" "$*" >&2; }
die() {
	say "$@"
	exit 1
}
usage_error() {
	say "$*"
	say "see $PROG --help"
	exit 2
}

# ---------------------------------------------------------------------------------------------
# py-spy

PYSPY=""
find_pyspy() {
	if [[ -n ${PY_SPY:-} ]]; then
		[[ -x $PY_SPY ]] || die "PY_SPY=$PY_SPY is not an executable file; unset it or point it at py-spy"
		PYSPY=$PY_SPY
	elif [[ -x $REPO_DIR/.venv/bin/py-spy ]]; then
		PYSPY=$REPO_DIR/.venv/bin/py-spy
	elif command -v py-spy >/dev/null 2>&1; then
		PYSPY=$(command -v py-spy)
	else
		die "py-spy not found (looked for \$PY_SPY, $REPO_DIR/.venv/bin/py-spy and py-spy on PATH).
  Install it into the service's virtualenv: $REPO_DIR/.venv/bin/pip install py-spy
  (make install does it: py-spy is the [profile] extra), or anywhere: pip install py-spy,
  then run again (or set PY_SPY=/path/to/py-spy)."
	fi
}

# ---------------------------------------------------------------------------------------------
# The target process

TARGET_KIND=""
TARGET_VALUE=""
TARGET_PID=""

set_target() {
	[[ -z $TARGET_KIND ]] || usage_error "give one target: $TARGET_KIND $TARGET_VALUE, then $1 $2"
	TARGET_KIND=$1
	TARGET_VALUE=$2
}

is_number() { [[ $1 =~ ^[0-9]+$ ]]; }
is_positive() { [[ $1 =~ ^[0-9]+$ ]] && ((10#$1 > 0)); }
is_port() { is_positive "$1" && ((10#$1 < 65536)); }

process_exists() {
	if [[ -d /proc/self ]]; then
		[[ -d /proc/$1 ]]
	else
		ps -p "$1" >/dev/null 2>&1
	fi
}

parent_of() { awk '/^PPid:/ { print $2 }' "/proc/$1/status" 2>/dev/null || true; }

describe() { # describe PID: its command line, for messages
	local cmdline=""
	if [[ -r /proc/$1/cmdline ]]; then
		cmdline=$(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null || true)
	fi
	[[ -n $cmdline ]] || cmdline=$(ps -o args= -p "$1" 2>/dev/null || true)
	printf '%s' "${cmdline% }"
}

PORT_PIDS=()
LISTENERS_HIDDEN=0
find_port_pids() { # find_port_pids PORT: set PORT_PIDS to the pids listening on TCP PORT, ascending
	local port=$1 lines="" found="" hex inode path
	local -a inodes=()
	PORT_PIDS=()
	LISTENERS_HIDDEN=0
	if command -v ss >/dev/null 2>&1; then
		lines=$(ss -ltnp "sport = :$port" 2>/dev/null | grep LISTEN || true)
		if [[ -n $lines ]] && ! grep -q 'pid=' <<<"$lines"; then
			LISTENERS_HIDDEN=1
		fi
		found=$(grep -o 'pid=[0-9]*' <<<"$lines" | cut -d= -f2 || true)
	elif command -v lsof >/dev/null 2>&1; then
		found=$(lsof -nP -t -iTCP:"$port" -sTCP:LISTEN 2>/dev/null || true)
	elif [[ -r /proc/net/tcp ]]; then
		hex=$(printf '%04X' "$port")
		# sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ...; st 0A = LISTEN
		while read -r _ local_address _ st _ _ _ _ _ inode _; do
			if [[ $st == 0A && ${local_address##*:} == "$hex" ]]; then
				inodes+=("$inode")
			fi
		done < <(cat /proc/net/tcp /proc/net/tcp6 2>/dev/null || true)
		for inode in ${inodes[@]+"${inodes[@]}"}; do
			lines=$(find /proc/[0-9]*/fd -maxdepth 1 -lname "socket:\\[$inode\\]" 2>/dev/null || true)
			[[ -n $lines ]] || LISTENERS_HIDDEN=1
			for path in $lines; do
				path=${path#/proc/}
				found+="${path%%/*}"$'\n'
			done
		done
	else
		die "cannot find the process on port $port: none of ss, lsof or /proc/net/tcp is available; give --pid"
	fi
	if [[ -n ${found//[[:space:]]/} ]]; then
		mapfile -t PORT_PIDS < <(printf '%s\n' "$found" | grep -E '^[0-9]+$' | sort -nu)
	fi
}

resolve_target() {
	local pid first others=() workers=() parent="" p
	if [[ -z $TARGET_KIND ]]; then
		TARGET_KIND=--port
		TARGET_VALUE=$DEFAULT_PORT
	fi
	case $TARGET_KIND in
	--pid)
		is_number "$TARGET_VALUE" || usage_error "--pid needs a number, got '$TARGET_VALUE'"
		process_exists "$TARGET_VALUE" || die "no process with pid $TARGET_VALUE (has it exited? check with ps, or find it with --port PORT)"
		TARGET_PID=$TARGET_VALUE
		;;
	--pidfile)
		[[ -e $TARGET_VALUE ]] || die "pid file $TARGET_VALUE does not exist (is the service running? give --pid or --port instead)"
		[[ -r $TARGET_VALUE ]] || die "cannot read pid file $TARGET_VALUE (run as its owner or with sudo)"
		pid=$(head -n 1 "$TARGET_VALUE" | tr -d '[:space:]')
		is_number "$pid" || die "pid file $TARGET_VALUE does not start with a pid (found '$pid')"
		process_exists "$pid" || die "no process with pid $pid, read from $TARGET_VALUE (a stale pid file: the service is not running)"
		TARGET_PID=$pid
		;;
	--port)
		is_port "$TARGET_VALUE" || usage_error "--port needs a TCP port number, got '$TARGET_VALUE'"
		TARGET_VALUE=$((10#$TARGET_VALUE))
		find_port_pids "$TARGET_VALUE"
		local -a pids=(${PORT_PIDS[@]+"${PORT_PIDS[@]}"})
		if ((${#pids[@]} == 0)); then
			if ((LISTENERS_HIDDEN)); then
				die "something listens on TCP port $TARGET_VALUE but its process is not visible to user $(id -un): run as root (sudo $PROG ...) or give --pid"
			fi
			die "no process is listening on TCP port $TARGET_VALUE. Is the service running there? It listens on server.port (STREAMING_SERVER_PORT or TIMESERIES_PORT, default 8080); give --port PORT, --pid PID or --pidfile FILE"
		fi
		first=${pids[0]}
		if ((${#pids[@]} > 1)); then
			# Workers forked from one parent share its socket: profile a worker, not the idle parent.
			for p in "${pids[@]}"; do
				local pp
				pp=$(parent_of "$p")
				if [[ -n $pp ]] && printf '%s\n' "${pids[@]}" | grep -qx "$pp"; then
					workers+=("$p")
					parent=$pp
				fi
			done
			((${#workers[@]} == 0)) || first=${workers[0]}
			for p in "${pids[@]}"; do
				[[ $p == "$first" || $p == "$parent" ]] || others+=("$p")
			done
			say "port $TARGET_VALUE is served by ${#pids[@]} processes: ${pids[*]}"
			[[ -z $parent ]] || say "  $parent is the parent of the others (profile every worker at once: --pid $parent --subprocesses)"
			local listing=""
			for p in ${others[@]+"${others[@]}"}; do
				listing+="${listing:+, }--pid $p"
			done
			say "  profiling $first${listing:+; the others: $listing}"
		fi
		TARGET_PID=$first
		;;
	esac
	say "target: pid $TARGET_PID: $(describe "$TARGET_PID")"
}

# ---------------------------------------------------------------------------------------------
# ptrace permission

PTRACE_SCOPE="(no Yama: /proc/sys/kernel/yama/ptrace_scope is absent)"
PTRACE_CAP=no
PTRACE_MY_UID=""
PTRACE_TARGET_UID=""

ptrace_facts() {
	local capeff
	PTRACE_MY_UID=$(id -u)
	if [[ -r /proc/sys/kernel/yama/ptrace_scope ]]; then
		PTRACE_SCOPE=$(</proc/sys/kernel/yama/ptrace_scope)
	fi
	capeff=$(awk '/^CapEff:/ { print $2 }' "/proc/$$/status" 2>/dev/null || true)
	if [[ -n $capeff ]] && (((16#$capeff >> 19) & 1)); then # bit 19: CAP_SYS_PTRACE
		PTRACE_CAP=yes
	fi
	PTRACE_TARGET_UID=$(awk '/^Uid:/ { print $2, $3, $4 }' "/proc/$TARGET_PID/status" 2>/dev/null || true)
}

ptrace_help() {
	cat >&2 <<EOF
  py-spy reads process $TARGET_PID's memory from outside, which needs ptrace permission.
    you: uid $PTRACE_MY_UID, CAP_SYS_PTRACE: $PTRACE_CAP
    process $TARGET_PID: uid (real effective saved) ${PTRACE_TARGET_UID:-unknown}
    /proc/sys/kernel/yama/ptrace_scope: $PTRACE_SCOPE
      (0: a user may attach to its own processes; 1: only to its descendants; 2: only with
       CAP_SYS_PTRACE; 3: nobody, until reboot)
  Fix one of:
    - run as root: sudo $PROG$(printf ' %q' ${ORIGINAL_ARGS[@]+"${ORIGINAL_ARGS[@]}"})
    - let users attach to their own processes (until reboot; not to other users' processes):
        echo 0 | sudo tee /proc/sys/kernel/yama/ptrace_scope
    - in a container, profiling from inside it: start it with --cap-add SYS_PTRACE (docker run),
      cap_add: [SYS_PTRACE] (compose) or securityContext.capabilities.add: ["SYS_PTRACE"]
      (Kubernetes); or run this script on the host as root with the host pid (docker top CONTAINER)
EOF
}

check_ptrace() { # fail early when attaching cannot work; py-spy's own error is explained too
	[[ -d /proc/$TARGET_PID ]] || return 0
	ptrace_facts
	local problem=""
	if [[ $PTRACE_SCOPE == 3 ]]; then
		problem="ptrace is disabled on this machine (yama ptrace_scope=3): nobody can attach until reboot"
	elif [[ $PTRACE_CAP == no ]]; then
		if [[ -n $PTRACE_TARGET_UID && $PTRACE_TARGET_UID != "$PTRACE_MY_UID $PTRACE_MY_UID $PTRACE_MY_UID" ]]; then
			problem="process $TARGET_PID runs as another user (uid ${PTRACE_TARGET_UID%% *}) and you (uid $PTRACE_MY_UID) lack CAP_SYS_PTRACE"
		elif [[ $PTRACE_SCOPE == 1 ]]; then
			problem="yama ptrace_scope=1 lets only a parent process attach, and you lack CAP_SYS_PTRACE"
		elif [[ $PTRACE_SCOPE == 2 ]]; then
			problem="yama ptrace_scope=2 lets only CAP_SYS_PTRACE holders attach, and you lack it"
		fi
	fi
	if [[ -n $problem ]]; then
		say "cannot profile pid $TARGET_PID: $problem"
		ptrace_help
		exit 1
	fi
}

explain_failure() { # explain_failure LOGFILE WHAT: after py-spy failed
	local log=$1 what=$2
	if grep -q 'Broken pipe' "$log"; then
		exit 141 # the reader went away (| head): nothing to explain
	fi
	say "$what failed:"
	sed -e '/^Stack backtrace:/,$d' -e '/^[[:space:]]*$/d' -e 's/^/    /' "$log" >&2
	if grep -q 'No stack counts found' "$log"; then
		say "no samples: every thread of pid $TARGET_PID was idle for the whole recording (py-spy leaves idle threads out). Record while the service answers requests, or add --idle to see where it waits."
	elif grep -qiE 'permission denied|operation not permitted|EPERM|ptrace' "$log"; then
		ptrace_facts
		ptrace_help
	elif ! process_exists "$TARGET_PID"; then
		say "process $TARGET_PID has exited"
	elif grep -qiE 'python version|python interpreter|not a python' "$log"; then
		say "pid $TARGET_PID ($(describe "$TARGET_PID")) does not look like a Python process: check the target"
	fi
}

# ---------------------------------------------------------------------------------------------
# Commands

need_value() { # need_value OPTION ARGC
	(($2 >= 2)) || usage_error "$1 needs a value"
}

# Options every command accepts: the target. Sets CONSUMED (0 when the option is not a target).
parse_target_option() {
	CONSUMED=0
	case $1 in
	--pid | --port | --pidfile)
		need_value "$1" "$#"
		set_target "$1" "$2"
		CONSUMED=2
		;;
	--pid=* | --port=* | --pidfile=*)
		set_target "${1%%=*}" "${1#*=}"
		CONSUMED=1
		;;
	esac
}

cmd_record() {
	local seconds=30 out=./profiles rate=100 native=0 idle=0 nonblocking=0 subprocesses=0 to_stdout=0
	local -a extra=()
	while (($#)); do
		parse_target_option "$@"
		if ((CONSUMED)); then
			shift "$CONSUMED"
			continue
		fi
		case $1 in
		--seconds | --out | --rate)
			need_value "$1" "$#"
			case $1 in
			--seconds) seconds=$2 ;;
			--out) out=$2 ;;
			--rate) rate=$2 ;;
			esac
			shift 2
			;;
		--seconds=*) seconds=${1#*=} && shift ;;
		--out=*) out=${1#*=} && shift ;;
		--rate=*) rate=${1#*=} && shift ;;
		--native) native=1 && shift ;;
		--idle) idle=1 && shift ;;
		--nonblocking) nonblocking=1 && shift ;;
		--subprocesses) subprocesses=1 && shift ;;
		--stdout) to_stdout=1 && shift ;;
		--)
			shift
			extra=("$@")
			break
			;;
		*) usage_error "record: unknown option '$1'" ;;
		esac
	done
	is_positive "$seconds" || usage_error "--seconds needs a whole number of seconds > 0, got '$seconds'"
	is_positive "$rate" || usage_error "--rate needs a number of samples per second > 0, got '$rate'"
	((!(native && nonblocking))) || usage_error "--native needs to pause the process: it cannot be combined with --nonblocking"

	find_pyspy
	resolve_target
	check_ptrace
	mkdir -p "$out" || die "cannot create the output directory $out"

	local base svg json
	base=$out/streaming-$TARGET_PID-$(date -u +%Y%m%dT%H%M%SZ)
	svg=$base.svg
	json=$base.speedscope.json
	local -a common=(--pid "$TARGET_PID" --duration "$seconds" --rate "$rate")
	((!subprocesses)) || common+=(--subprocesses)
	((!idle)) || common+=(--idle)
	local -a svg_options=() json_options=(--nonblocking)
	((!native)) || svg_options+=(--native)
	((!nonblocking)) || svg_options+=(--nonblocking)

	LOGS=$(mktemp -d)
	trap 'rm -rf "$LOGS"' EXIT
	local how="flame graph and speedscope side by side"
	((!native)) || how+=", native frames in the flame graph"
	((!nonblocking)) || how+=", without pausing the process"
	say "recording pid $TARGET_PID for $seconds s at $rate Hz ($how)..."
	"$PYSPY" record "${common[@]}" ${svg_options[@]+"${svg_options[@]}"} ${extra[@]+"${extra[@]}"} \
		--format flamegraph --output "$svg" >"$LOGS/svg.log" 2>&1 &
	local svg_pid=$!
	"$PYSPY" record "${common[@]}" "${json_options[@]}" ${extra[@]+"${extra[@]}"} \
		--format speedscope --output "$json" >"$LOGS/speedscope.log" 2>&1 &
	local json_pid=$!
	# Ctrl-C or a TERM stops both samplers early; each still writes what it has.
	trap 'kill -INT "$svg_pid" "$json_pid" 2>/dev/null || true' INT TERM

	local svg_status=0 json_status=0
	wait_for "$svg_pid" || svg_status=$?
	wait_for "$json_pid" || json_status=$?
	trap - INT TERM

	local failed=0
	if ((svg_status != 0)) || [[ ! -s $svg ]]; then
		explain_failure "$LOGS/svg.log" "py-spy record (flame graph)"
		failed=1
		if grep -q 'No stack counts found' "$LOGS/svg.log"; then
			rm -f "$svg" # an SVG that only says "ERROR: No valid input"
		fi
	fi
	if ((json_status != 0)) || [[ ! -s $json ]]; then
		((failed)) || explain_failure "$LOGS/speedscope.log" "py-spy record (speedscope)"
		failed=1
	fi
	grep -h 'Samples:' "$LOGS/svg.log" "$LOGS/speedscope.log" 2>/dev/null | sed 's/^py-spy> /  py-spy: /' >&2 || true

	local -a written=()
	[[ ! -s $svg ]] || written+=("$svg")
	[[ ! -s $json ]] || written+=("$json")
	if ((${#written[@]})); then
		if ((to_stdout)); then
			printf '%s\n' "${written[@]}" >&2
		else
			printf '%s\n' "${written[@]}"
		fi
	fi
	((!failed)) || exit 1
	((!to_stdout)) || cat "$svg"
}

wait_for() { # wait_for PID: its exit status, waiting on through signals that interrupt `wait`
	local status
	while :; do
		status=0
		wait "$1" || status=$?
		if ((status > 128)) && kill -0 "$1" 2>/dev/null; then
			continue
		fi
		return "$status"
	done
}

cmd_top() {
	local -a options=()
	while (($#)); do
		parse_target_option "$@"
		if ((CONSUMED)); then
			shift "$CONSUMED"
			continue
		fi
		case $1 in
		--rate)
			need_value "$1" "$#"
			is_positive "$2" || usage_error "--rate needs a number of samples per second > 0, got '$2'"
			options+=(--rate "$2")
			shift 2
			;;
		--native | --idle | --nonblocking | --subprocesses) options+=("$1") && shift ;;
		*) usage_error "top: unknown option '$1'" ;;
		esac
	done
	find_pyspy
	resolve_target
	check_ptrace
	[[ -t 1 ]] || say "warning: standard output is not a terminal; py-spy top draws a full-screen view"
	exec "$PYSPY" top --pid "$TARGET_PID" ${options[@]+"${options[@]}"}
}

cmd_dump() {
	local -a options=()
	while (($#)); do
		parse_target_option "$@"
		if ((CONSUMED)); then
			shift "$CONSUMED"
			continue
		fi
		case $1 in
		--native | --locals | --subprocesses) options+=("$1") && shift ;;
		*) usage_error "dump: unknown option '$1'" ;;
		esac
	done
	find_pyspy
	resolve_target
	check_ptrace
	LOGS=$(mktemp -d)
	trap 'rm -rf "$LOGS"' EXIT
	local status=0
	"$PYSPY" dump --pid "$TARGET_PID" ${options[@]+"${options[@]}"} 2>"$LOGS/dump.log" || status=$?
	if ((status != 0)); then
		explain_failure "$LOGS/dump.log" "py-spy dump"
		exit 1
	fi
	cat "$LOGS/dump.log" >&2
}

main() {
	local arg
	for arg in "$@"; do
		[[ $arg != -- ]] || break
		if [[ $arg == -h || $arg == --help ]]; then
			usage
			exit 0
		fi
	done
	(($#)) || {
		usage >&2
		exit 2
	}
	local command=$1
	shift
	case $command in
	record) cmd_record "$@" ;;
	top) cmd_top "$@" ;;
	dump) cmd_dump "$@" ;;
	help) usage ;;
	*) usage_error "unknown command '$command' (record, top or dump)" ;;
	esac
}

main "$@"
