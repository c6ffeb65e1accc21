#!/usr/bin/env bash
# How long a replica takes to load its index from PostgreSQL at start (issue 17, items 4 and 7), against the same
# start with an empty gallery, in one run. Usage (from the repository root, after `dotnet build src/Api -c Release`):
#   bash tools/ReplicaBench/index-load.sh [N=100000] [runs=3]
# Starts its own PostgreSQL 15 in a temporary folder on a loopback port (as the postgres user), writes N gallery rows
# with a vector of the bundled model's fingerprint each (1024 floats near 1.0, one of 65,536 patterns: load time does
# not depend on the values, and the column is stored uncompressed; the pictures are 1-byte stand-ins: a start reads only ids, metadata and vectors), then times
# `dotnet AlexNet.Api.dll` from launch to /health/ready 200, with N rows and with none.
set -euo pipefail
n=${1:-100000}; runs=${2:-3}
repo=$(cd "$(dirname "$0")/../.." && pwd)
api=$repo/src/Api/bin/Release/net10.0/linux-x64/AlexNet.Api.dll
model=$repo/models/fashion-mnist-compact.onnx
bin=/usr/lib/postgresql/15/bin
[ -f "$api" ] || { echo "build first: dotnet build src/Api -c Release"; exit 1; }
dir=$(mktemp -d); chown postgres "$dir"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
apiport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cleanup() { runuser -u postgres -- "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$dir"; }
trap cleanup EXIT
runuser -u postgres -- "$bin/initdb" -D "$dir/data" -A trust -U postgres >/dev/null
runuser -u postgres -- "$bin/pg_ctl" -D "$dir/data" -o "-p $port -k $dir -c listen_addresses=127.0.0.1" -l "$dir/log" -w start >/dev/null
psql() { runuser -u postgres -- "$bin/../bin/psql" -X -q -At -h 127.0.0.1 -p "$port" -U postgres "$@"; }
psql -c "CREATE DATABASE bench" postgres
cs="Host=127.0.0.1;Port=$port;Database=bench;Username=postgres"

ready_ms() {   # launch the service, time until /health/ready answers 200, stop it
  local t0 t1 pid
  t0=$(date +%s%N)
  Grpc__Url= Gallery__Store=Postgres ConnectionStrings__Gallery="$cs" Inference__ModelPath="$model" Inference__Provider=Cpu \
    Security__ApiKey=bench ASPNETCORE_URLS="http://127.0.0.1:$apiport" Logging__LogLevel__Default=Warning \
    dotnet "$api" >"$dir/api.log" 2>&1 & pid=$!
  until curl -sf -o /dev/null "http://127.0.0.1:$apiport/health/ready"; do
    kill -0 $pid 2>/dev/null || { cat "$dir/api.log"; exit 1; }; sleep 0.02; done
  t1=$(date +%s%N)
  echo $(( (t1 - t0) / 1000000 ))
  kill -9 $pid; wait $pid 2>/dev/null || true
}

ready_ms >/dev/null   # creates the schema
fp="sha256:$(sha256sum "$model" | cut -d' ' -f1)"
empty=(); full=()
for r in $(seq "$runs"); do empty+=("$(ready_ms)"); done
psql bench <<SQL
INSERT INTO gallery_images (label, note, created_utc, sha256, width, height, prepared_png, prepared_size, thumbnail_png, added_seq)
  SELECT 'r' || g, NULL, now(), md5(g::text), 64, 64, '\x00'::bytea, 64, '\x00'::bytea, g FROM generate_series(1, $n) g;
INSERT INTO gallery_vectors (image_id, model, features, seq)
  SELECT id, '$fp', decode(repeat(lpad(to_hex(id % 65536), 4, '0') || '803f', 1024), 'hex'), added_seq FROM gallery_images;
INSERT INTO gallery_changes (seq, kind, image_id, model) SELECT added_seq, 'a', id, '$fp' FROM gallery_images;
UPDATE gallery_counter SET seq = $n;
VACUUM ANALYZE;
SQL
for r in $(seq "$runs"); do full+=("$(ready_ms)"); done
echo "N=$n rows of $(psql bench -c "SELECT pg_size_pretty(pg_total_relation_size('gallery_vectors'))") of vectors"
echo "start to ready, empty gallery (ms): ${empty[*]}"
echo "start to ready, $n vectors (ms):   ${full[*]}"
python3 - "${empty[*]}" "${full[*]}" <<'PY'
import sys, statistics as s
e = [int(x) for x in sys.argv[1].split()]; f = [int(x) for x in sys.argv[2].split()]
print(f"median: empty {s.median(e):.0f} ms, full {s.median(f):.0f} ms, index load = {s.median(f) - s.median(e):.0f} ms "
      f"(ratio full/empty {s.median(f) / s.median(e):.2f})")
PY
