#!/bin/sh
# Issue 19, item 3 in one run (docs/benchmarks.md "int8 models"): the multiply-accumulate peaks of this CPU, the
# service's forward pass of fp32 and int8 of the same model interleaved in rounds (the paper preset and the bundled
# demo model), and HTTP classify at concurrency 16 for fp32, int8, fp32 again; the load average before each part.
# Usage: tools/Bench/int8.sh [output folder]   (default /tmp/alexnet-int8). Needs python3-sklearn and python3-skimage
# (Debian) for the calibration photos and dataset-fashion-mnist for the demo model's calibration.
set -eu
out=${1:-/tmp/alexnet-int8}
port=${PORT:-5181}
seconds=${SECONDS_PER_RUN:-5}
mkdir -p "$out"
cd "$(dirname "$0")/../.."
dotnet build src/Training -c Release -v q -nologo
dotnet build src/Api -c Release -v q -nologo
dotnet build tools/Bench -c Release -v q -nologo
bench=tools/Bench/bin/Release/net10.0/linux-x64/alexnet-bench
train="dotnet src/Training/bin/Release/net10.0/linux-x64/alexnet-train.dll"
load() { echo "== $1 ($(date -u +%H:%M:%S) UTC, load average $(cut -d' ' -f1-3 /proc/loadavg))"; }
echo "code $(git rev-parse --short HEAD); $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), family $(grep -m1 'cpu family' /proc/cpuinfo | cut -d: -f2 | xargs) model $(grep -m1 '^model[[:space:]]*:' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) CPUs; avx512f $(grep -qw avx512f /proc/cpuinfo && echo yes || echo no), avx512_vnni $(grep -qw avx512_vnni /proc/cpuinfo && echo yes || echo no), avx_vnni $(grep -qw avx_vnni /proc/cpuinfo && echo yes || echo no)"

# Calibration photos: the colour photographs Debian ships with scikit-image and scikit-learn (11 images).
photos="$out/photos"
mkdir -p "$photos"
for f in astronaut.png chelsea.png coffee.png hubble_deep_field.jpg ihc.png motorcycle_left.png motorcycle_right.png retina.jpg rocket.jpg; do
  if [ -f "/usr/lib/python3/dist-packages/skimage/data/$f" ]; then cp "/usr/lib/python3/dist-packages/skimage/data/$f" "$photos/"; fi
done
cp /usr/lib/python3/dist-packages/sklearn/datasets/images/china.jpg /usr/lib/python3/dist-packages/sklearn/datasets/images/flower.jpg "$photos/"
echo "calibration photos: $(ls "$photos" | wc -l) in $photos"

load "paper preset, seeded He-normal weights, and its int8 version"
$bench model --out "$out/paper.onnx"
$train quantize --model "$out/paper.onnx" --calibration "$photos" --out "$out/paper.int8.onnx" --force

demo=models/fashion-mnist-compact.onnx
if [ -f models/fashion-mnist-compact.int8.onnx ]; then
  demo8=models/fashion-mnist-compact.int8.onnx
  echo "demo model: the shipped int8 sibling $demo8"
else
  load "demo model's int8 version, calibrated on Fashion-MNIST"
  demo8="$out/fashion-mnist-compact.int8.onnx"
  $train quantize --model "$demo" --fashion-mnist /usr/share/datasets/fashion-mnist --out "$demo8" --force
fi

load "multiply-accumulate peaks, all cores"
$bench peaks --seconds 2

load "raw forward, paper preset: fp32 (A) against int8 (B), rounds interleaved"
$bench forward-compare --models "$out/paper.onnx,$out/paper.int8.onnx" --batches 1,8,32 --seconds "$seconds" --rounds 3 --profile

load "raw forward, demo model: fp32 (A) against int8 (B), rounds interleaved"
$bench forward-compare --models "$demo,$demo8" --batches 1,8,32 --seconds "$seconds" --rounds 3 --profile

# HTTP: the service as run.sh starts it (no answer cache, no rate limit, and no gRPC port to clash with another
# service on the machine); env execs dotnet, so $! is its pid.
for model in paper.onnx paper.int8.onnx paper.onnx; do
  load "HTTP: POST /api/classify, real JPEGs, concurrency 16, $model"
  rm -f "$out"/gallery.db*
  env -C src/Api Inference__ModelPath="$out/$model" Inference__Provider=Cpu Gallery__DatabasePath="$out/gallery.db" \
    Cache__Enabled=false RateLimit__PermitLimit=1000000 Uploads__MaxUploadsPerClient=100000 Server__MaxConnectionsPerClient=100000 \
    Grpc__Url= Logging__LogLevel__Default=Warning ASPNETCORE_URLS="http://127.0.0.1:$port" \
    dotnet bin/Release/net10.0/linux-x64/AlexNet.Api.dll >> "$out/api.log" 2>&1 &
  pid=$!
  for i in $(seq 1 120); do curl -sf "127.0.0.1:$port/health/ready" > /dev/null && break; sleep 1; done
  curl -sf "127.0.0.1:$port/health/ready" > /dev/null || { echo "the service did not start:"; tail -5 "$out/api.log"; kill "$pid"; exit 1; }
  $bench http --url "http://127.0.0.1:$port" --concurrency 16 --seconds 20 --open-loop false --pid "$pid"
  kill "$pid"; wait "$pid" 2>/dev/null || true
done
load "done"
