#!/bin/sh
# Starts, stops and inspects an MQTT node: the MQTT 3.1.1 / 5.0 gateway on the LMQ store.
#
#   bin/mqtt.sh start|stop|restart|status|run [-c CONF_DIR]
#
# The configuration folder is, in order: -c CONF_DIR, $MQTT_CONF_DIR, conf/ next to bin/. The node
# reads connect.conf (mqttPort, maxPacketSizeInByte), service.conf (authentication) and broker.conf
# (storePathRootDir, flushDiskType). The pid file is <storePathRootDir>/mqtt-node.pid and the log
# <storePathRootDir>/logs/mqtt-node.log, so several nodes can run from one checkout with different
# configuration folders.
#
# The binary is $MQTT_NODE_BIN if set, else .build/release/mqtt-node; in a source checkout start, restart
# and run first bring it up to date with `swift build -c release --product mqtt-node` (a no-op when
# nothing changed; the first build takes a few minutes). See bin/binary.sh.

set -eu

program=$(basename "$0")
home_dir=$(cd "$(dirname "$0")/.." && pwd)

usage() {
    cat <<EOF
Usage: $program start|stop|restart|status|run [-c CONF_DIR]

Commands:
  start     start the node in the background; returns once its MQTT port answers
  stop      stop the node started from this configuration folder (SIGTERM, then
            SIGKILL after \$MQTT_STOP_TIMEOUT seconds, default 30)
  restart   stop, then start
  status    say whether the node is running and answering (exit 0 if it is, 3 if it is not running)
  run       run the node in the foreground (for containers and service managers)

Options:
  -c, --conf CONF_DIR   configuration folder (default: \$MQTT_CONF_DIR, else $home_dir/conf)
  -h, --help            show this help

The folder holds service.conf, connect.conf, broker.conf and namesrv.conf; see README.md.
EOF
}

fail() {
    printf '%s: %s\n' "$program" "$1" >&2
    exit 1
}

fail_usage() {
    printf '%s: %s\n' "$program" "$1" >&2
    printf "Run '%s --help' for usage.\n" "$program" >&2
    exit 2
}

command_name=""
conf_dir="${MQTT_CONF_DIR:-$home_dir/conf}"

while [ "$#" -gt 0 ]; do
    case "$1" in
        -h | --help)
            usage
            exit 0
            ;;
        -c | --conf)
            [ "$#" -ge 2 ] || fail_usage "option $1 needs a folder"
            conf_dir=$2
            shift 2
            ;;
        --conf=*)
            conf_dir=${1#--conf=}
            shift
            ;;
        start | stop | restart | status | run)
            [ -z "$command_name" ] || fail_usage "more than one command: $command_name and $1"
            command_name=$1
            shift
            ;;
        -*)
            fail_usage "unknown option: $1"
            ;;
        *)
            fail_usage "unknown command: $1"
            ;;
    esac
done

[ -n "$command_name" ] || fail_usage "no command given"
[ -d "$conf_dir" ] || fail_usage "configuration folder not found: $conf_dir"
for file in service.conf connect.conf broker.conf namesrv.conf; do
    [ -f "$conf_dir/$file" ] || fail_usage "missing $conf_dir/$file"
done

. "$home_dir/bin/binary.sh"
case $command_name in
    start|restart|run) resolve_binary mqtt-node "${MQTT_NODE_BIN:-}" update ;;
    *) resolve_binary mqtt-node "${MQTT_NODE_BIN:-}" ;;
esac

# One resolved setting of the conf files, read by the binary itself so both agree on it.
setting() {
    "$bin" config -c "$conf_dir" "$1" || fail "cannot read the configuration in $conf_dir"
}

data_dir=$(setting storePathRootDir)
log_dir=$data_dir/logs
port=$(setting mqttPort)
# Standalone only (empty in cluster mode); an older binary without the setting prints nothing.
namesrv_addr=$("$bin" config -c "$conf_dir" namesrvAddress 2>/dev/null || true)
pid_file=$data_dir/mqtt-node.pid
log_file=$log_dir/mqtt-node.log

# Sleeps a fraction of a second where sleep(1) allows it, else a whole second.
nap() {
    sleep 0.2 2>/dev/null || sleep 1
}

# Whether process $1 exists and is not a zombie (a stopped node whose parent has not reaped it yet;
# started by `start`, its parent is init, which may take a while).
alive() {
    kill -0 "$1" 2>/dev/null || return 1
    case $(ps -p "$1" -o stat= 2>/dev/null) in
        Z*) return 1 ;;
        *) return 0 ;;
    esac
}

# Prints the pid of the running node of this configuration, or fails. A pid file left by a
# crash may name a pid since reused by another program: the process name must match too.
running_pid() {
    [ -f "$pid_file" ] || return 1
    pid=$(cat "$pid_file" 2>/dev/null) || return 1
    [ -n "$pid" ] || return 1
    alive "$pid" || return 1
    case $(ps -p "$pid" -o comm= 2>/dev/null) in
        *mqtt-node*) printf '%s\n' "$pid" ;;
        *) return 1 ;;
    esac
}

answers() {
    "$bin" probe -c "$conf_dir" --timeout-ms 1000 >/dev/null 2>&1
}

start() {
    if pid=$(running_pid); then
        printf '%s: already running (pid %s, port %s)\n' "$program" "$pid" "$port"
        return 0
    fi
    [ "$port" != 0 ] || fail "mqttPort=0 picks a random port; use run, or set a port in $conf_dir/connect.conf"
    mkdir -p "$data_dir" "$log_dir"
    nohup "$bin" -c "$conf_dir" >>"$log_file" 2>&1 </dev/null &
    pid=$!
    printf '%s\n' "$pid" >"$pid_file"
    timeout=${MQTT_START_TIMEOUT:-30}
    started=$(date +%s)
    while :; do
        if ! alive "$pid"; then
            rm -f "$pid_file"
            printf '%s: the node exited during start-up; last lines of %s:\n' "$program" "$log_file" >&2
            tail -n 20 "$log_file" >&2
            exit 1
        fi
        if answers; then
            printf '%s: started (pid %s); MQTT on port %s (mqtt://127.0.0.1:%s), store %s, log %s\n' \
                "$program" "$pid" "$port" "$port" "$data_dir" "$log_file"
            [ -z "$namesrv_addr" ] || printf '%s: standalone; name server on %s (bin/mqadmin COMMAND -n %s)\n' \
                "$program" "$namesrv_addr" "$namesrv_addr"
            [ -n "$namesrv_addr" ] || printf '%s: cluster mode (NAMESRV_ADDR): messages and sessions on a store node; the log names it\n' \
                "$program"
            return 0
        fi
        [ $(($(date +%s) - started)) -lt "$timeout" ] || fail "pid $pid does not answer on port $port after ${timeout}s; see $log_file"
        nap
    done
}

stop() {
    if ! pid=$(running_pid); then
        rm -f "$pid_file"
        printf '%s: not running\n' "$program"
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null || true
    timeout=${MQTT_STOP_TIMEOUT:-30}
    stopping=$(date +%s)
    while alive "$pid"; do
        if [ $(($(date +%s) - stopping)) -ge "$timeout" ]; then
            printf '%s: pid %s did not stop within %ss; sending SIGKILL\n' "$program" "$pid" "$timeout" >&2
            kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        nap
    done
    rm -f "$pid_file"
    printf '%s: stopped (pid %s)\n' "$program" "$pid"
}

case $command_name in
    start)
        start
        ;;
    stop)
        stop
        ;;
    restart)
        stop
        start
        ;;
    status)
        if ! pid=$(running_pid); then
            printf '%s: not running\n' "$program"
            exit 3
        fi
        if answers; then
            printf '%s: running (pid %s, port %s, log %s)\n' "$program" "$pid" "$port" "$log_file"
        else
            printf '%s: pid %s is running but does not answer on port %s\n' "$program" "$pid" "$port"
            exit 1
        fi
        ;;
    run)
        exec "$bin" -c "$conf_dir"
        ;;
esac
