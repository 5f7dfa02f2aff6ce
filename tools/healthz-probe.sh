#!/usr/bin/env bash
# Liveness under load: starts `managedclip serve` on the tiny test model, fires bursts of concurrent large /score
# requests, and polls /healthz every 50 ms from a separate client (curl) the whole time. Prints every burst's poll
# latencies (n, median, p95, p99, max), the burst's status codes, and RSS (steady, peak, 5 s after) from /proc.
#
#   tools/healthz-probe.sh [--bursts N] [--clients N] [--gap SECONDS] [--out DIR] [--cli PATH] [-- extra serve args]
#
# The first burst is sent as soon as /readyz says ready (the case a fresh pod meets); the later ones after --gap
# seconds of idle (past the queue's idle trim). Environment variables (DOTNET_*) are passed to the server, so GC
# or JIT settings can be compared without a rebuild. MANAGEDCLIP_PROBE_MODEL=DIR serves another model folder (e.g. the
# full-size synthetic one from `managedclip synth`) instead of the tiny test model. Needs bash, curl and python3 (to write the request body).
# Every poll is kept in DIR/polls.tsv (burst, seconds since the burst started, latency ms, HTTP code, unix time the
# poll was sent, TCP connect ms, request-to-first-byte ms, and the server's Server-Timing header: see docs/SERVER.md).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bursts=3 clients=16 gap=6 out="" cli="" label=""
while [[ $# -gt 0 ]]; do
    case $1 in
        --bursts) bursts=$2; shift 2 ;;
        --clients) clients=$2; shift 2 ;;
        --gap) gap=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        --cli) cli=$2; shift 2 ;;
        --label) label=$2; shift 2 ;;
        --) shift; break ;;
        *) echo "healthz-probe: unknown option '$1'" >&2; exit 2 ;;
    esac
done
cli=${cli:-$(ls "$root"/src/ManagedClip.Cli/bin/Release/net*/ManagedClip.Cli.dll 2>/dev/null | head -1)}
[[ -f $cli ]] || { echo "healthz-probe: build first (dotnet build -c Release), or give --cli PATH" >&2; exit 2; }
out=${out:-$(mktemp -d "${TMPDIR:-/tmp}/healthz-probe.XXXXXX")}
mkdir -p "$out"

# A 1024x1024 RGB noise PNG (incompressible: 3.1 MB), as base64 in the model card's /score JSON (4.2 MB).
body=$out/score.json
python3 - "$body" <<'EOF'
import base64, json, random, struct, sys, zlib
w = h = 1024
rng = random.Random(7)
raw = b"".join(b"\x00" + rng.randbytes(w * 3) for _ in range(h))
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) \
    + chunk(b"IDAT", zlib.compress(raw, 1)) + chunk(b"IEND", b"")
request = {"input_data": {"columns": ["image", "text"], "index": [0],
                          "data": [[base64.b64encode(png).decode(), "brain MRI, chest X-ray, bone X-ray"]]}}
open(sys.argv[1], "w").write(json.dumps(request))
EOF

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url=http://127.0.0.1:$port
dotnet "$cli" serve --model "${MANAGEDCLIP_PROBE_MODEL:-$root/testdata/reference/tiny}" --urls "$url" "$@" 2>"$out/serve.log" &
server=$!
poller=""
# Stopped early (Ctrl+C), the server and the poller go too.
trap 'kill $server $poller 2>/dev/null; wait $server 2>/dev/null || true' EXIT
for _ in $(seq 600); do
    curl -sf -o /dev/null "$url/readyz" && break
    kill -0 $server 2>/dev/null || { echo "healthz-probe: serve exited; see $out/serve.log" >&2; exit 1; }
    sleep 0.1
done
rss() { awk '/^VmRSS:/ { print int($2 / 1024) }' /proc/$server/status; }

printf 'burst\tt_s\tlatency_ms\tcode\tunix_s\tconnect_ms\tfirst_byte_ms\tserver_timing\n' >"$out/polls.tsv"
echo "# $(date -u +%FT%TZ) $(uname -n) nproc=$(nproc) load=$(cut -d' ' -f1-3 /proc/loadavg) ${label}"
echo "# serve $* ; $clients concurrent /score of $(stat -c %s "$body") bytes; /healthz every 50 ms"
# After the bursts, burst 0 is the control: the same polls for 5 s with no requests, so what the machine itself adds
# to a poll (other processes, curl's own start) is seen beside the bursts.
for b in $(seq 1 "$bursts") 0; do
    [[ $b -ne 1 ]] && sleep "$gap"
    steady=$(rss)
    start=$(date +%s.%N)
    pids=()
    [[ $b -eq 0 ]] && { sleep 5 & pids+=($!); }
    for c in $(seq "$clients"); do
        [[ $b -eq 0 ]] && break
        curl -s -o /dev/null -w '%{http_code}\n' -H 'Content-Type: application/json' --data-binary "@$body" \
            "$url/score" >"$out/code.$b.$c" &
        pids+=($!)
    done
    # The poller: a new connection per poll, as a kubelet or load balancer probes.
    ( while :; do
        r=$(curl -s -o /dev/null -m 10 -w '%{http_code} %{time_total} %{time_connect} %{time_pretransfer} %{time_starttransfer} %header{server-timing}' "$url/healthz" || echo "000 10 0 0 0")
        now=$(date +%s.%N)
        awk -v b="$b" -v s="$start" -v n="$now" -v r="$r" \
            'BEGIN { split(r, a, " "); t = r; for (i = 0; i < 5; i++) sub(/^[^ ]+ ?/, "", t)
                    printf "%d\t%.3f\t%.2f\t%s\t%.3f\t%.2f\t%.2f\t%s\n", b, n - s, a[2] * 1000, a[1], n - a[2], a[3] * 1000, (a[5] - a[4]) * 1000, t }' >>"$out/polls.tsv"
        sleep 0.05
      done ) &
    poller=$!
    peak=$steady
    while kill -0 "${pids[@]}" 2>/dev/null; do
        r=$(rss); (( r > peak )) && peak=$r
        sleep 0.05
    done
    wait "${pids[@]}" || true
    kill $poller; wait $poller 2>/dev/null || true
    seconds=$(awk -v s="$start" -v n="$(date +%s.%N)" 'BEGIN { printf "%.1f", n - s }')
    [[ $b -gt 0 ]] && sleep 5
    after=$(rss)
    codes=$( (cat "$out"/code.$b.* 2>/dev/null || true) | sort | uniq -c | awk '{ printf "%s%s x%s", sep, $2, $1; sep = ", " }')
    python3 - "$out/polls.tsv" "$b" "$seconds" "$codes" "$steady" "$peak" "$after" <<'EOF'
import sys
path, b, secs, codes, steady, peak, after = sys.argv[1:]
rows = [line.split("\t") for line in open(path).read().splitlines()[1:]]
v = sorted(float(r[2]) for r in rows if r[0] == b)
bad = sum(1 for r in rows if r[0] == b and r[3] != "200")
q = lambda p: v[min(len(v) - 1, int(p * len(v)))]  # nearest rank
print(f"{'control' if b == '0' else 'burst ' + b} ({secs} s, {codes or 'no requests'}): /healthz n={len(v)} median {q(0.5):.1f} ms, p95 {q(0.95):.1f}, "
      f"p99 {q(0.99):.1f}, max {v[-1]:.1f} ms, over 50 ms {sum(1 for x in v if x > 50)}, non-200 {bad}; RSS steady {steady} MB, peak {peak}, "
      f"5 s after {after} ({int(after) / int(steady):.2f}x)")
# The slowest poll, split: TCP connect and request-to-first-byte as curl saw them, and the server's own account
# (Server-Timing: wait = Kestrel started the connection -> handler ran, gc = GC pause meanwhile, pool = thread-pool
# items queued and threads when it ran). A slow poll with a small server wait was slow outside the handler's reach.
worst = max((r for r in rows if r[0] == b), key=lambda r: float(r[2]), default=None)
if worst is not None and len(worst) >= 8:
    print(f"  slowest: {float(worst[2]):.1f} ms at {worst[1]} s into it: connect {worst[5]} ms, request to first byte {worst[6]} ms; server: {worst[7] or '-'}")
EOF
done
echo "# polls: $out/polls.tsv"
