#!/bin/sh
# Every number of docs/benchmarks.md "Serving and search speed", in one run, with the load average before each part.
# Usage: tools/Bench/run.sh [output folder]   (default /tmp/alexnet-bench). Needs python3 with Pillow for the decode
# comparison (Debian: apt-get install python3-pil python3-sklearn, which also brings the two 640x427 JPEGs).
set -eu
out=${1:-/tmp/alexnet-bench}
port=${PORT:-5080}
mkdir -p "$out"
cd "$(dirname "$0")/../.."
dotnet build src/Training -c Release -v q -nologo
dotnet build src/Api -c Release -v q -nologo
dotnet build tools/Bench -c Release -v q -nologo
bench=tools/Bench/bin/Release/net10.0/linux-x64/alexnet-bench
load() { echo "== $1 ($(date -u +%H:%M:%S) UTC, load average $(cut -d' ' -f1-3 /proc/loadavg))"; }

load "model: paper preset, seeded He-normal weights"
$bench model --out "$out/paper.onnx"

load "raw forward: TorchSharp against ONNX Runtime, same weights (alexnet-train bench --forward)"
dotnet src/Training/bin/Release/net10.0/linux-x64/alexnet-train.dll bench --forward --preset paper

load "raw forward: the service's OnnxClassifier against a plain session"
$bench forward --model "$out/paper.onnx"

load "decode and preprocessing, one core, against Pillow"
$bench decode

load "decode + preprocess + forward in process (the HTTP ceiling)"
$bench pipeline --model "$out/paper.onnx" --batch 16

load "HTTP: POST /api/classify, real JPEGs, 127.0.0.1"
rm -f "$out"/gallery.db*
# No answer cache (the two images repeat), no rate limit; env execs dotnet, so $! is the service's pid.
env -C src/Api Inference__ModelPath="$out/paper.onnx" Inference__Provider=Cpu Gallery__DatabasePath="$out/gallery.db" \
  Cache__Enabled=false RateLimit__PermitLimit=1000000 Uploads__MaxUploadsPerClient=100000 Server__MaxConnectionsPerClient=100000 Logging__LogLevel__Default=Warning ASPNETCORE_URLS="http://127.0.0.1:$port" \
  dotnet bin/Release/net10.0/linux-x64/AlexNet.Api.dll > "$out/api.log" 2>&1 &
pid=$!
for i in $(seq 1 60); do curl -sf "127.0.0.1:$port/health/ready" > /dev/null && break; sleep 1; done
$bench http --url "http://127.0.0.1:$port" --concurrency 1,4,16 --seconds 20 --pid "$pid"
kill "$pid"

load "exact search and compact scans"
$bench search --n 10000,100000 --queries 30
load "done"
