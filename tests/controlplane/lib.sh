# shellcheck shell=bash disable=SC2034 # variables are for the scripts that source this file
# Shared by tests/controlplane/{build,start,stop,restart-apiserver,gen-gomod}: locations and small helpers.
# Sourced, never run. Callers have `set -euo pipefail`.

CONTROLPLANE_SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$CONTROLPLANE_SRC/../.." && pwd)"
# Where the built binaries (bin/) and the test harness' control-plane folders (runs/) live.
CONTROLPLANE_CACHE="${KGITOPS_CONTROLPLANE_CACHE:-$REPO_ROOT/target/controlplane}"
CONTROLPLANE_BIN="$CONTROLPLANE_CACHE/bin"

# The Go toolchain: PATH first, then the usual install location (not on PATH on every machine).
find_go() {
  if command -v go >/dev/null 2>&1; then
    command -v go
  elif [[ -x /usr/local/go/bin/go ]]; then
    echo /usr/local/go/bin/go
  else
    return 1
  fi
}

# A one-line failure on stderr, then exit 1. Usage: die "reason"
die() {
  echo "controlplane: $*" >&2
  exit 1
}

# Prints the last lines of a log under a header, on stderr. Usage: log_tail FILE
log_tail() {
  [[ -f "$1" ]] || return 0
  echo "--- last 20 lines of $1 ---" >&2
  tail -n 20 "$1" >&2
}

# ClusterIP range of the apiserver: kubeadm's default, so that thousands of ordinary ClusterIP
# Services fit as in a real cluster (a /24 is full after 254). The first address is the
# `kubernetes` Service's, named in the apiserver certificate (start).
SERVICE_CLUSTER_IP_RANGE=10.96.0.0/12
KUBERNETES_SERVICE_IP=10.96.0.1

# Marker in the owner watchdog's command line, so `stop` can find it (see start --owner-pid).
WATCHDOG_MARKER=kgitops-controlplane-watchdog

# True when PID is a process of the control plane in DIR: etcd or kube-apiserver started by `start`
# with DIR in its flags, or its owner watchdog. Guards against killing a process that reused a pid
# from a stale pid file. Reads /proc with builtins only: `stop` sweeps every process with it.
# Usage: is_ours DIR PID
is_ours() {
  local dir="$1" pid="$2" args=()
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  mapfile -d '' args 2>/dev/null <"/proc/$pid/cmdline" || return 1
  ((${#args[@]} > 0)) || return 1
  case "${args[0]##*/}" in
  etcd) [[ " ${args[*]} " == *" --data-dir=$dir/etcd-data "* ]] ;;
  kube-apiserver) [[ " ${args[*]} " == *" --tls-cert-file=$dir/pki/apiserver.crt "* ]] ;;
  *) [[ " ${args[*]} " == *" $WATCHDOG_MARKER $dir "* ]] ;;
  esac
}

# True when PID exists and is not a zombie (a killed child of a still running `start` stays a zombie
# until reaped). Usage: is_running PID
is_running() {
  local stat
  read -r stat 2>/dev/null <"/proc/$1/stat" || return 1
  stat="${stat##*) }"
  [[ "${stat%% *}" != Z ]]
}

# Prints which part of a control plane PID is: etcd, kube-apiserver or watchdog. Usage: role_of PID
role_of() {
  local args=()
  mapfile -d '' args 2>/dev/null <"/proc/$1/cmdline" || return 1
  case "${args[0]##*/}" in
  etcd | kube-apiserver) echo "${args[0]##*/}" ;;
  *) echo watchdog ;;
  esac
}

# Sends SIGTERM to the process groups of PIDs, waits up to 5 s for them to exit, then SIGKILLs what is
# left. Usage: terminate PID...
terminate() {
  local pid waited alive
  for pid in "$@"; do
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  done
  for ((waited = 0; waited < 50; waited++)); do
    alive=0
    for pid in "$@"; do
      if is_running "$pid"; then
        alive=1
      fi
    done
    ((alive)) || return 0
    sleep 0.1
  done
  for pid in "$@"; do
    if is_running "$pid"; then
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    fi
  done
}

# Stops every process of the control plane in DIR, found by its pid files and by a sweep of /proc
# (so a crash, a killed `start` or lost pid files leave nothing behind). Each process was started in
# its own process group (setsid), so the whole group is signalled. The calling process is spared: the
# owner watchdog execs `stop`. The apiserver goes before etcd: without etcd it takes long to shut
# down. Sets STOPPED_COUNT. Usage: kill_dir_processes DIR
kill_dir_processes() {
  local dir="$1" pid f found=() role
  local -A by_role=()
  for f in watchdog etcd kube-apiserver; do
    if [[ -f "$dir/$f.pid" ]] && pid="$(<"$dir/$f.pid")" && is_ours "$dir" "$pid"; then
      found+=("$pid")
    fi
  done
  for f in /proc/[0-9]*; do
    pid="${f#/proc/}"
    if is_ours "$dir" "$pid"; then
      found+=("$pid")
    fi
  done
  if ((${#found[@]} > 0)); then
    mapfile -t found < <(printf '%s\n' "${found[@]}" | sort -un | grep -vx "$$")
  fi
  for pid in "${found[@]}"; do
    role="$(role_of "$pid")" || continue
    by_role[$role]+=" $pid"
  done
  for role in watchdog kube-apiserver etcd; do
    # shellcheck disable=SC2086 # a list of pids
    [[ -z "${by_role[$role]:-}" ]] || terminate ${by_role[$role]}
  done
  STOPPED_COUNT=${#found[@]}
}

# Stops the control plane in DIR (kill_dir_processes), then removes its state: etcd data,
# certificates, kubeconfig, pid files. Logs stay for post-mortems. Idempotent. Usage: stop_dir DIR
stop_dir() {
  kill_dir_processes "$1"
  rm -rf "$1/etcd-data" "$1/pki" "$1/kubeconfig" "$1/kubeconfig.tmp" "$1/state" \
    "$1/watchdog.pid" "$1/etcd.pid" "$1/kube-apiserver.pid"
}

# Prints what /readyz of DIR's apiserver on PORT says (asked with DIR's admin client certificate);
# fails unless it is "ok". Usage: readyz DIR PORT
readyz() {
  local pki="$1/pki" body
  body="$(curl -sS --max-time 2 --cacert "$pki/ca.crt" --cert "$pki/admin.crt" --key "$pki/admin.key" \
    "https://127.0.0.1:$2/readyz" 2>&1)" || {
    echo "$body"
    return 1
  }
  echo "$body"
  [[ "$body" == ok ]]
}

# Starts kube-apiserver for the control plane in DIR in the background, in its own process group:
# etcd on ETCD_PORT, serving on APISERVER_PORT with the certificates in DIR/pki, log DIR/kube-apiserver.log
# (replaced), pid in DIR/kube-apiserver.pid. Returns at once; callers wait for readyz. The one place
# its flags are, for start and restart-apiserver (is_ours knows it by --tls-cert-file). The child
# closes fd 8, the DIR lock of its caller. Usage: launch_apiserver DIR ETCD_PORT APISERVER_PORT
launch_apiserver() {
  local dir="$1" pki="$1/pki" audit=()
  # KGITOPS_CONTROLPLANE_AUDIT=1: an audit log of every request (metadata only: who, verb, resource,
  # user agent) in DIR/audit.log, for benchmarks that count one client's requests.
  if [[ "${KGITOPS_CONTROLPLANE_AUDIT:-}" == 1 ]]; then
    printf '%s\n' 'apiVersion: audit.k8s.io/v1' 'kind: Policy' 'omitStages: [RequestReceived]' \
      'rules:' '  - level: Metadata' >"$dir/audit-policy.yaml"
    audit=(--audit-policy-file="$dir/audit-policy.yaml" --audit-log-path="$dir/audit.log"
      --audit-log-format=json --audit-log-maxsize=500 --audit-log-mode=blocking)
  fi
  setsid "$CONTROLPLANE_BIN/kube-apiserver" \
    --etcd-servers="http://127.0.0.1:$2" \
    --bind-address=127.0.0.1 \
    --advertise-address=127.0.0.1 \
    --secure-port="$3" \
    --tls-cert-file="$pki/apiserver.crt" \
    --tls-private-key-file="$pki/apiserver.key" \
    --client-ca-file="$pki/ca.crt" \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$pki/sa.pub" \
    --service-account-signing-key-file="$pki/sa.key" \
    --service-cluster-ip-range="$SERVICE_CLUSTER_IP_RANGE" \
    --authorization-mode=RBAC \
    --endpoint-reconciler-type=none \
    --profiling=false \
    "${audit[@]}" \
    </dev/null >"$dir/kube-apiserver.log" 2>&1 8>&- &
  echo $! >"$dir/kube-apiserver.pid"
}
