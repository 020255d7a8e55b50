#!/bin/sh
# Starts, stops and inspects an MQTT node (gateway + LMQ store + name server in standalone mode).
#
#   bin/mqtt.sh start|stop|restart|status|run [-c CONF_DIR]
#
# The configuration folder is, in order: -c CONF_DIR, $MQTT_CONF_DIR, conf/ next to bin/.
#
# The node itself arrives with the LMQ store and gateway milestones. Until then every command checks
# its arguments and the configuration folder, says that the node is not built yet, and exits 1.

set -eu

program=$(basename "$0")
home_dir=$(cd "$(dirname "$0")/.." && pwd)

usage() {
    cat <<EOF
Usage: $program start|stop|restart|status|run [-c CONF_DIR]

Commands:
  start     start the node in the background
  stop      stop the node started from this configuration folder
  restart   stop, then start
  status    say whether the node is running (exit 0 if it is)
  run       run the node in the foreground (for containers and service managers)

Options:
  -c, --conf CONF_DIR   configuration folder (default: \$MQTT_CONF_DIR, else $home_dir/conf)
  -h, --help            show this help

The folder holds service.conf, connect.conf, broker.conf and namesrv.conf; see README.md.
EOF
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

printf '%s %s: the MQTT node is not built yet.\n' "$program" "$command_name" >&2
printf 'It arrives with the LMQ store and gateway milestones; see README.md (configuration: %s).\n' "$conf_dir" >&2
exit 1
