# Sourced by the load scripts (run.sh, pgo.sh, h3.sh, fanout.sh, soak.sh,
# ...): installing missing tools, building imagegate as it ships, a
# temporary workspace cleaned up on exit with the processes started in it,
# and throwaway TLS material for 127.0.0.1.
#
# apt_install PKG...    Debian packages (root; `apt-get update` once first)
# need CMD [PKG]        installs Debian package PKG (default CMD) when CMD is missing
# need_oha, need_matplotlib   the load generator (cargo) and the plotting library (pip)
# workspace NAME        sets WORK to a new temporary directory and PIDS=();
#                       on exit every PID in PIDS is killed and waited for and
#                       WORK removed (kept when KEEP_WORK=1)
# port_free PORT        whether nothing listens on 127.0.0.1:PORT
# wrk_post_lua FILE     writes wrk's request script: POST of the file $BODY names
#                       with the headers an apiserver sends; the summary as one line,
#                       `WRK requests duration_us p50_ms p99_ms max_ms errors non2xx`
# wait_ready PID URL NAME LOG
#                       waits up to 10 s for URL to answer 2xx (TLS, trusting
#                       $TLS/ca.crt); stops the script (its `die`) with LOG shown
#                       when process PID exits first or the time runs out
# build_apart EXAMPLE [CARGO_ARG...]
#                       release builds of imagegate on its own, as the Containerfile
#                       builds it, then of the example EXAMPLE: built in one
#                       `cargo build` with an example, imagegate would get the
#                       features the dev-dependencies turn on (tokio's test-util,
#                       whose clock takes a lock at every read), a binary no user runs
#
# make_ca DIR CN        a P-256 CA: DIR/ca.crt, DIR/ca.key
# issue_server DIR      a server certificate for 127.0.0.1 / localhost signed by
#                       DIR's CA, written as DIR/chain.crt (leaf then CA) and
#                       DIR/server.key, each replaced by an atomic rename, the way
#                       cert-manager's Secret volume or a careful operator does it
#
# Keep DIR for TLS files only: the server watches the directory of its
# certificate, and a busy file beside it (a generator's log, say) wakes the
# watcher on every write.

make_ca() {
    local dir=$1 cn=$2
    mkdir -p "$dir"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj "/CN=$cn" -keyout "$dir/ca.key" -out "$dir/ca.crt" 2>/dev/null
}

issue_server() {
    local dir=$1 tmp
    tmp=$(mktemp -d "$dir/.issue.XXXXXX")
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -subj "/CN=localhost" -keyout "$tmp/server.key" -out "$tmp/server.csr" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >"$tmp/ext.cnf"
    openssl x509 -req -in "$tmp/server.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
        -CAcreateserial -CAserial "$tmp/ca.srl" -days 2 -extfile "$tmp/ext.cnf" \
        -out "$tmp/server.crt" 2>/dev/null
    cat "$tmp/server.crt" "$dir/ca.crt" >"$tmp/chain.crt"
    # Key first, then the chain: a reader that sees the new chain also finds
    # its key (the server retries a mismatched pair on the next change).
    mv -f "$tmp/server.key" "$dir/server.key"
    mv -f "$tmp/chain.crt" "$dir/chain.crt"
    rm -rf "$tmp"
}

apt_updated=0
apt_install() {
    [[ $(id -u) -eq 0 ]] || { echo "$(basename "$0"): need root to apt-get install $*" >&2; exit 1; }
    if ((apt_updated == 0)); then
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

need() { command -v "$1" >/dev/null || apt_install "${2:-$1}"; }

build_apart() {
    local example=$1
    shift
    cargo build --release --locked "$@" --bin imagegate
    cargo build --release --locked "$@" --example "$example"
}

need_oha() {
    command -v oha >/dev/null && return
    echo "==> installing oha (cargo install oha --locked)" >&2
    cargo install oha --locked
}

need_matplotlib() {
    python3 -c 'import matplotlib' 2>/dev/null && return
    echo "==> installing matplotlib (pip)" >&2
    python3 -m pip install -q matplotlib
}

workspace() {
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/imagegate-$1.XXXXXX")
    PIDS=()
    trap _workspace_cleanup EXIT
    trap 'exit 130' INT TERM
}

_workspace_cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    if ((${KEEP_WORK:-0})); then
        echo "$(basename "$0"): raw data kept in $WORK" >&2
    else
        rm -rf "$WORK"
    fi
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wrk_post_lua() {
    # `done` runs once, after every thread.
    cat >"$1" <<'LUA'
local f = assert(io.open(os.getenv("BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, */*"
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("WRK %d %d %.3f %.3f %.3f %d %d\n", summary.requests, summary.duration,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    e.connect + e.read + e.write + e.timeout, e.status))
end
LUA
}

wait_ready() {
    local pid=$1 url=$2 name=$3 logfile=$4 i
    for ((i = 0; i < 100; i++)); do
        curl -sf --cacert "$TLS/ca.crt" -o /dev/null "$url" && return 0
        kill -0 "$pid" 2>/dev/null || { cat "$logfile" >&2; die "$name exited at start-up"; }
        sleep 0.1
    done
    cat "$logfile" >&2
    die "$name not ready after 10 s"
}
