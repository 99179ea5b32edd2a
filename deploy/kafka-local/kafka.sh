#!/usr/bin/env bash
# Fetch, start, stop and check a single-node Apache Kafka broker (KRaft,
# combined broker and controller) bound to 127.0.0.1, for the demo and tests.
#
# Usage: deploy/kafka-local/kafka.sh fetch|start|stop|status|wait
#
# Environment:
#   KAFKA_PORT        client port (default 9092); the controller uses KAFKA_PORT+1
#   STREAMREC_CACHE   cache folder (default ~/.cache/streamrec); jars go to
#                     $STREAMREC_CACHE/kafka-jars, broker data and logs to
#                     $STREAMREC_CACHE/kafka-<port>
#   JAVA_HOME         Java 17 or newer (default: java on the PATH)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
port="${KAFKA_PORT:-9092}"
controller_port="$((port + 1))"
cache="${STREAMREC_CACHE:-$HOME/.cache/streamrec}"
jars="$cache/kafka-jars"
home="$cache/kafka-$port"
pidfile="$home/broker.pid"
java="${JAVA_HOME:+$JAVA_HOME/bin/}java"

log() { echo "kafka-local: $*" >&2; }

fetch() {
  if [[ -f "$jars/.complete" && "$jars/.complete" -nt "$here/pom.xml" ]]; then
    return
  fi
  log "fetching the Kafka broker jars with Maven into $jars"
  rm -rf "$jars"
  mkdir -p "$jars"
  mvn -q -B -f "$here/pom.xml" dependency:copy-dependencies \
    -DoutputDirectory="$jars" -DincludeScope=runtime
  touch "$jars/.complete"
}

running() {
  [[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

answers() {
  # A TCP connect to the client port; bash's /dev/tcp avoids needing nc.
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null
}

write_config() {
  cat >"$home/server.properties" <<CONF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller_port
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller_port
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$home/data
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=8
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
log.cleaner.dedupe.buffer.size=16777216
CONF
}

run_java() {
  "$java" -Xms256m -Xmx1g -XX:+UseG1GC \
    -Dlog4j2.configurationFile="$here/log4j2.xml" \
    -Dkafka.logs.dir="$home/logs" \
    -cp "$jars/*" "$@"
}

start() {
  if running; then
    log "already running on 127.0.0.1:$port (pid $(cat "$pidfile"))"
    return
  fi
  if answers; then
    log "port $port is taken by another process; set KAFKA_PORT to a free port"
    exit 1
  fi
  fetch
  mkdir -p "$home/logs"
  write_config
  if [[ ! -f "$home/data/meta.properties" ]]; then
    log "formatting KRaft storage in $home/data"
    run_java kafka.tools.StorageTool format \
      -t "$(run_java kafka.tools.StorageTool random-uuid)" \
      -c "$home/server.properties" >"$home/logs/format.log" 2>&1 || {
        cat "$home/logs/format.log" >&2
        exit 1
      }
  fi
  log "starting the broker on 127.0.0.1:$port (logs in $home/logs)"
  nohup "$java" -Xms256m -Xmx1g -XX:+UseG1GC \
    -Dlog4j2.configurationFile="$here/log4j2.xml" \
    -Dkafka.logs.dir="$home/logs" \
    -cp "$jars/*" kafka.Kafka "$home/server.properties" \
    >"$home/logs/stdout.log" 2>&1 </dev/null &
  echo $! >"$pidfile"
  wait_ready
}

wait_ready() {
  local deadline=$((SECONDS + ${KAFKA_START_TIMEOUT:-90}))
  until answers; do
    if ! running; then
      log "the broker exited during start-up; last lines of its log:"
      tail -n 30 "$home/logs/stdout.log" "$home/logs/server.log" >&2 || true
      exit 1
    fi
    if ((SECONDS > deadline)); then
      log "timed out waiting for 127.0.0.1:$port"
      exit 1
    fi
    sleep 0.5
  done
  log "ready on 127.0.0.1:$port"
}

stop() {
  if ! running; then
    log "not running on port $port"
    rm -f "$pidfile"
    return
  fi
  local pid
  pid="$(cat "$pidfile")"
  log "stopping the broker (pid $pid)"
  kill -TERM "$pid"
  local deadline=$((SECONDS + 60))
  while kill -0 "$pid" 2>/dev/null; do
    if ((SECONDS > deadline)); then
      log "no exit after 60 s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.5
  done
  rm -f "$pidfile"
}

status() {
  if running; then
    echo "running on 127.0.0.1:$port (pid $(cat "$pidfile"))"
  else
    echo "stopped"
    exit 3
  fi
}

case "${1:-}" in
  fetch) fetch ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  wait) wait_ready ;;
  *)
    echo "usage: $0 fetch|start|stop|status|wait" >&2
    exit 2
    ;;
esac
