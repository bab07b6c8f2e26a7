#!/usr/bin/env bash
# Docker Engine for building and running the apt-uss images: images/engine.sh start|stop|status
#
# start   does nothing when an engine already answers `docker info`. Otherwise (as root) it
#         installs Debian's docker.io when dockerd is missing, writing a bridge-less daemon
#         config first (/etc/docker/daemon.json, only when absent: no docker0 bridge, no iptables;
#         containers use --network host or none), then runs dockerd in the background with its
#         PID and log in ENGINE_DIR and waits until `docker info` answers.
# stop    stops the dockerd that `start` launched (by the PID in ENGINE_DIR); leaves others alone.
# status  prints whether an engine answers (exit 0) or not (exit 3).
#
# Environment: ENGINE_DIR (default /run/apt-uss-engine; pid file and log),
#              ENGINE_WAIT_S (default 30), DOCKER_DAEMON_JSON (default /etc/docker/daemon.json).
set -euo pipefail

ENGINE_DIR=${ENGINE_DIR:-/run/apt-uss-engine}
ENGINE_WAIT_S=${ENGINE_WAIT_S:-30}
DAEMON_JSON=${DOCKER_DAEMON_JSON:-/etc/docker/daemon.json}
PID_FILE=$ENGINE_DIR/dockerd.pid
LOG_FILE=$ENGINE_DIR/dockerd.log

say() { echo "engine: $*"; }
die() { echo "engine: error: $*" >&2; exit 1; }

# Any docker client can answer; Debian's (/usr/bin/docker) is there once docker.io is installed.
client() {
  if command -v docker >/dev/null 2>&1; then echo docker
  elif [ -x /usr/bin/docker ]; then echo /usr/bin/docker
  fi
}

answers() {
  local c; c=$(client)
  [ -n "$c" ] && timeout 10 "$c" info >/dev/null 2>&1
}

server_version() {
  timeout 10 "$(client)" version --format '{{.Server.Version}}' 2>/dev/null || echo "?"
}

our_pid() {
  [ -f "$PID_FILE" ] || return 1
  local pid; pid=$(cat "$PID_FILE")
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

write_daemon_json() {
  if [ -e "$DAEMON_JSON" ]; then
    grep -q '"bridge"' "$DAEMON_JSON" \
      || say "warning: $DAEMON_JSON exists without \"bridge\": \"none\"; left as it is"
    return
  fi
  mkdir -p "$(dirname "$DAEMON_JSON")"
  cat >"$DAEMON_JSON" <<'EOF'
{
  "bridge": "none",
  "iptables": false,
  "ip6tables": false,
  "ip-forward": false,
  "ip-masq": false
}
EOF
  say "wrote $DAEMON_JSON (no bridge network, no iptables: use --network host or none)"
}

install_engine() {
  command -v apt-get >/dev/null || die "dockerd is missing and there is no apt-get: install Docker Engine yourself"
  # The config must exist before the package's first start (no default bridge on 172.17.0.0/16).
  write_daemon_json
  say "installing docker.io (apt-get install --no-install-recommends docker.io)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends docker.io >/dev/null 2>&1 || {
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends docker.io >/dev/null
  }
  command -v dockerd >/dev/null || die "docker.io installed but dockerd is not on PATH"
}

start() {
  if answers; then
    say "already running (server $(server_version)); nothing to do"
    return
  fi
  [ "$(id -u)" = 0 ] || die "no engine answers 'docker info' and starting one needs root (or start Docker yourself)"
  local t0=$SECONDS pid
  if pid=$(our_pid); then
    die "dockerd (pid $pid, started by this script) runs but does not answer; see $LOG_FILE or run '$0 stop'"
  fi
  command -v dockerd >/dev/null || install_engine
  write_daemon_json
  mkdir -p "$ENGINE_DIR"
  nohup dockerd --config-file "$DAEMON_JSON" >"$LOG_FILE" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$PID_FILE"
  say "started dockerd (pid $pid, log $LOG_FILE)"
  local deadline=$((SECONDS + ENGINE_WAIT_S))
  until answers; do
    if ! kill -0 "$pid" 2>/dev/null; then
      rm -f "$PID_FILE"
      echo "engine: error: dockerd exited; last lines of $LOG_FILE:" >&2
      tail -n 20 "$LOG_FILE" >&2
      exit 1
    fi
    if [ $SECONDS -ge $deadline ]; then
      echo "engine: error: dockerd (pid $pid) did not answer 'docker info' within ${ENGINE_WAIT_S}s; last lines of $LOG_FILE:" >&2
      tail -n 20 "$LOG_FILE" >&2
      kill "$pid" 2>/dev/null || true
      rm -f "$PID_FILE"
      exit 1
    fi
    sleep 0.5
  done
  say "ready in $((SECONDS - t0))s (server $(server_version))"
}

stop() {
  local pid
  if ! pid=$(our_pid); then
    rm -f "$PID_FILE"
    if answers; then say "an engine answers but was not started by this script; left running"
    else say "not running; nothing to do"; fi
    return
  fi
  kill "$pid"
  local deadline=$((SECONDS + 20))
  while kill -0 "$pid" 2>/dev/null; do
    [ $SECONDS -lt $deadline ] || die "dockerd (pid $pid) did not exit within 20s"
    sleep 0.5
  done
  rm -f "$PID_FILE"
  say "stopped dockerd (pid $pid)"
}

status() {
  local pid
  if answers; then
    if pid=$(our_pid); then say "running (server $(server_version), pid $pid, log $LOG_FILE)"
    else say "running (server $(server_version), not started by this script)"; fi
  else
    if pid=$(our_pid); then say "dockerd (pid $pid) runs but does not answer; see $LOG_FILE"
    else say "not running"; fi
    exit 3
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
