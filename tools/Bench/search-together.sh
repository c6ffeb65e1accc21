#!/bin/sh
# Issue 19's search figures in one run: queries/s of concurrent searches at N = 100,000 x 4096, in process and over
# HTTP, for each storage, with every answer compared (docs/benchmarks.md "Concurrent searches share the scan").
# Usage: tools/Bench/search-together.sh [output folder]   (default /tmp/alexnet-search-together). Needs about 4 GB.
# HTTP=0 stops after the in-process parts (no service, no gallery database).
set -eu
out=${1:-/tmp/alexnet-search-together}
port=${PORT:-5197}
n=${N:-100000}
mkdir -p "$out"
cd "$(dirname "$0")/../.."
dotnet build src/Api -c Release -v q -nologo
dotnet build tools/Bench -c Release -v q -nologo
bench=tools/Bench/bin/Release/net10.0/linux-x64/alexnet-bench
load() { echo "== $1 ($(date -u +%H:%M:%S) UTC, load average $(cut -d' ' -f1-3 /proc/loadavg))"; }

load "in process: SearchCoalescer against each search alone"
$bench search-together --n "$n" --concurrency 1,4,16 --seconds 10
load "in process, a pass waits up to 1 ms for a full group (Gallery:SearchBatchDelayMs 1)"
$bench search-together --n "$n" --concurrency 1,16 --seconds 10 --delay-ms 1 --each-alone false
load "one pass for g queries on one thread, no coalescer: CPU per query"
$bench search-pass --n 30000 --groups 1,4,8,16 --seconds 5
load "kernels on cached rows, one core"
$bench kernels --rows 64
[ "${HTTP:-1}" = 1 ] || { load "done (HTTP=0: no service runs)"; exit 0; }

[ -f "$out/paper.onnx" ] || $bench model --out "$out/paper.onnx"
[ -f "$out/gallery-$n.db" ] || $bench gallery-db --model "$out/paper.onnx" --n "$n" --out "$out/gallery-$n.db"
for storage in Float32 Float16 Int8; do
  for max in 16 1; do
    load "HTTP: GET /api/gallery/{id}/similar?k=10, $storage, Gallery:SearchBatchMax $max"
    # No rate limit; env execs dotnet, so $! is the service's pid.
    env -C src/Api Inference__ModelPath="$out/paper.onnx" Inference__Provider=Cpu Gallery__DatabasePath="$out/gallery-$n.db" \
      Gallery__SearchStorage=$storage Gallery__SearchBatchMax=$max Gallery__MaxImages="$n" \
      RateLimit__PermitLimit=1000000 Server__MaxConnectionsPerClient=100000 Logging__LogLevel__Default=Warning \
      ASPNETCORE_URLS="http://127.0.0.1:$port" dotnet bin/Release/net10.0/linux-x64/AlexNet.Api.dll > "$out/api.log" 2>&1 &
    pid=$!
    for i in $(seq 1 300); do curl -sf "127.0.0.1:$port/health/ready" > /dev/null && break; sleep 1; done
    curl -sf "127.0.0.1:$port/health/ready" > /dev/null || { echo "the service did not start:"; tail -5 "$out/api.log"; exit 1; }
    if [ "$max" = 16 ]; then c=1,4,16; else c=16; fi
    $bench http-search --url "http://127.0.0.1:$port" --n "$n" --concurrency $c --seconds 10
    kill "$pid"; wait "$pid" 2>/dev/null || true
  done
done
load "done"
