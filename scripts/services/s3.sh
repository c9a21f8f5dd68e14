#!/usr/bin/env bash
# A throwaway S3 endpoint: Ceph's radosgw (Debian packages radosgw ceph-mon ceph-osd) on a
# single-node cluster of one monitor and one OSD keeping objects in memory (memstore), cephx off,
# everything on 127.0.0.1:
#   scripts/services/s3.sh start [--dir DIR] [--port PORT] [--env-file FILE]  -> prints the endpoint
#   scripts/services/s3.sh stop  [--dir DIR]
# The env file also holds the access keys of the one user created (AWS_ACCESS_KEY_ID, ...).
SERVICE_NAME=s3
. "$(dirname "$0")/lib.sh"
parse_args "$@"

CONF=$SERVICE_DIR/ceph.conf
ACCESS_KEY=${S3_ACCESS_KEY:-EASELTESTACCESSKEY01}
SECRET_KEY=${S3_SECRET_KEY:-easeltestsecretkey00000000000000000000001}

endpoint_up() { curl -sf -o /dev/null "http://127.0.0.1:$1/"; }

write_conf() { # write_conf FSID MON_PORT RGW_PORT
  local D=$SERVICE_DIR
  cat >"$CONF" <<CONF
[global]
fsid = $1
mon host = v2:127.0.0.1:$2
mon initial members = a
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind ipv6 = false
auth cluster required = none
auth service required = none
auth client required = none
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd crush chooseleaf type = 0
mon allow pool size one = true
mon warn on pool no redundancy = false
paxos propose interval = 0.05
paxos min wait = 0.01
mon max pg per osd = 1000
mon data avail warn = 1
mon data avail crit = 0
osd objectstore = memstore
memstore device bytes = 2147483648
run dir = $D/run
admin socket = $D/run/\$name.asok
pid file = $D/run/\$name.pid
log file = $D/log/\$name.log
mon data = $D/mon.\$id
osd data = $D/osd.\$id
keyring = /dev/null
[client.rgw.a]
# tcp_nodelay: without it a small object's body waits for the ACK of its headers (up to 40 ms; docs/scale-out.md).
rgw frontends = beast endpoint=127.0.0.1:$3 tcp_nodelay=1
rgw data = $D/rgw.a
rgw init timeout = 60
ms mon client mode = crc
CONF
}

start() {
  local b
  for b in radosgw ceph-mon ceph-osd monmaptool radosgw-admin ceph; do
    command -v "$b" >/dev/null || missing_package "$b" radosgw ceph-mon ceph-osd
  done
  command -v curl >/dev/null || missing_package curl curl
  if [ -f "$SERVICE_DIR/env" ] && alive "$SERVICE_DIR/run/client.rgw.a.pid"; then print_recorded S3_ENDPOINT; return; fi
  stop
  fresh_dir
  mkdir -p "$SERVICE_DIR"/{run,log,mon.a,osd.0,rgw.a}
  local port=${SERVICE_PORT:-$(free_port)} mon_port fsid osd_uuid osd_id
  check_port_free "$port"
  mon_port=$(free_port)
  fsid=$(cat /proc/sys/kernel/random/uuid)
  write_conf "$fsid" "$mon_port" "$port"
  local C=(-c "$CONF") L=$SERVICE_DIR/log/start.out
  monmaptool --create --clobber --fsid "$fsid" --addv a "[v2:127.0.0.1:$mon_port]" "$SERVICE_DIR/monmap" >>"$L" 2>&1 &&
    ceph-mon "${C[@]}" -i a --mkfs --monmap "$SERVICE_DIR/monmap" >>"$L" 2>&1 &&
    ceph-mon "${C[@]}" -i a >>"$L" 2>&1 || fail_with_log "the Ceph monitor did not start" "$L"
  osd_uuid=$(cat /proc/sys/kernel/random/uuid)
  osd_id=$(timeout 60 ceph "${C[@]}" osd new "$osd_uuid" 2>>"$L") || fail_with_log "the monitor did not answer" "$L"
  ceph-osd "${C[@]}" -i "$osd_id" --mkfs --osd-uuid "$osd_uuid" >>"$L" 2>&1 &&
    ceph-osd "${C[@]}" -i "$osd_id" >>"$L" 2>&1 || fail_with_log "the Ceph OSD did not start" "$L"
  radosgw "${C[@]}" -n client.rgw.a >>"$L" 2>&1 || fail_with_log "radosgw did not start" "$SERVICE_DIR/log/client.rgw.a.log"
  wait_for 90 endpoint_up "$port" || fail_with_log "radosgw does not answer on 127.0.0.1:$port" "$SERVICE_DIR/log/client.rgw.a.log"
  radosgw-admin "${C[@]}" user create --uid=easel --display-name=easel \
    --access-key="$ACCESS_KEY" --secret-key="$SECRET_KEY" >>"$L" 2>&1 || fail_with_log "the S3 user was not created" "$L"
  local url="http://127.0.0.1:$port"
  write_env "S3_ENDPOINT=$url" "AWS_ACCESS_KEY_ID=$ACCESS_KEY" "AWS_SECRET_ACCESS_KEY=$SECRET_KEY" "AWS_REGION=us-east-1"
  echo "$url"
}

# SIGKILL: the cluster is thrown away, and a clean stop takes seconds per daemon.
stop() {
  if [ -d "$SERVICE_DIR/run" ]; then kill_pidfiles "$SERVICE_DIR"/run/*.pid; fi
  remove_dir
}

case $COMMAND in
  start) start ;;
  stop) stop ;;
  status) if alive "$SERVICE_DIR/run/client.rgw.a.pid"; then print_recorded S3_ENDPOINT; else echo "$SERVICE_NAME: not running" >&2; exit 1; fi ;;
esac
