#!/usr/bin/env bash
# The container tests: build docker/api.Dockerfile and docker/training.Dockerfile for real and run them through
# docker-compose.yml (with the host-network override docker-compose.test.yml) on a real Docker engine. Each check
# prints "ok - ..." or "FAIL - ..."; the last line is "N passed, N failed" (./test.sh adds it to the totals).
# Everything this run makes (containers, the images it built, their build layers, volumes, the temp folder) is
# removed on exit, failed or not; the local base images (tests/Containers/engine.sh) are kept for the next run.
# Needs root (to start the engine), docker.io, docker-compose, debootstrap, curl, python3, the .NET SDK, Debian's
# dataset-fashion-mnist and python3-sklearn (china.jpg); ./test.sh installs them.
set -uo pipefail
cd "$(dirname "$0")/../.."
# One run at a time per machine: runs share the engine, the test tags and the sweep of build layers below.
exec 9>/tmp/alexnet-containers.lock
flock 9
repo=$PWD
here=$repo/tests/Containers
t_start=$SECONDS
work=$(mktemp -d /tmp/alexnet-containers.XXXXXX)
chmod 755 "$work"
ENGINE_LOG=${ALEXNET_DOCKERD_LOG:-/var/log/alexnet-dockerd.log}
. "$here/engine.sh"
export DOCKER_BUILDKIT=0 COMPOSE_DOCKER_CLI_BUILD=0

passed=0 failed=0
ok()   { passed=$((passed + 1)); echo "ok - $1"; }
fail() { failed=$((failed + 1)); echo "FAIL - $1${2:+: $2}"; }
# check NAME COMMAND...: one test, passed when the command succeeds; its output follows, indented (the evidence).
check() {
  local name=$1; shift
  local out
  if out=$("$@" 2>&1); then ok "$name"; else fail "$name"; fi
  [ -n "$out" ] && printf '%s\n' "$out" | tail -15 | sed 's/^/    /'
  return 0
}
finish() { echo "containers: $((SECONDS - t_start)) s"; echo "$passed passed, $failed failed"; }

project=alexnet-ct$$
api_key=ct-$RANDOM$RANDOM
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port=$(free_port)
url=http://127.0.0.1:$port
compose=(docker-compose -p "$project" -f docker-compose.yml -f docker-compose.test.yml)   # until the merged file exists
feed_pid="" host_pid="" images_before=""

cleanup() {
  set +e
  [ -n "$host_pid" ] && kill "$host_pid" 2>/dev/null
  [ -n "$feed_pid" ] && kill "$feed_pid" 2>/dev/null
  if docker info >/dev/null 2>&1; then
    "${compose[@]}" --profile training down -v --remove-orphans >/dev/null 2>&1
    docker rm -f $(docker ps -aq --filter "label=com.docker.compose.project=$project") >/dev/null 2>&1
    docker volume rm "${project}_gallery" >/dev/null 2>&1
    docker rmi -f alexnet-api:containertest alexnet-training:containertest >/dev/null 2>&1
    # Build layers this run left behind (a failed build keeps the steps that worked): every image that was not
    # there after the base images were made.
    if [ -n "$images_before" ]; then
      for id in $(docker images -aq --no-trunc | sort -u); do
        grep -qx "$id" <<<"$images_before" || docker rmi -f "$id" >/dev/null 2>&1
      done
    fi
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- the engine, the base images, the package feed, the service outside a container ----
if ! ensure_engine; then fail "a Docker engine answers"; finish; exit 1; fi
if ! ensure_base_images; then fail "local base images"; finish; exit 1; fi
images_before=$(docker images -aq --no-trunc | sort -u)
export ALEXNET_TEST_SDK_IMAGE=$BASE_SDK ALEXNET_TEST_ASPNET_IMAGE=$BASE_ASPNET ALEXNET_TEST_RUNTIME_IMAGE=$BASE_RUNTIME
export ALEXNET_TEST_PORT=$port ALEXNET_API_KEY=$api_key

photo=$(dpkg -L python3-sklearn 2>/dev/null | grep '/china.jpg$' | head -1)
[ -f "$photo" ] || photo=$(dpkg -L python3-skimage-lib python3-skimage 2>/dev/null | grep '/chelsea.png$' | head -1)
fashion=/usr/share/datasets/fashion-mnist
[ -f "$photo" ] || { fail "a real photo (python3-sklearn's china.jpg or python3-skimage's chelsea.png)"; finish; exit 1; }
[ -f "$fashion/train-images-idx3-ubyte.gz" ] || { fail "Fashion-MNIST at $fashion (dataset-fashion-mnist)"; finish; exit 1; }

# The host restores once, so the feed holds every package the images restore (a no-op where the tests ran).
echo "== dotnet build src/Api (the service outside a container) and restore src/Training"
if ! dotnet build src/Api -v q -nologo >"$work/host-build.log" 2>&1 || ! dotnet restore src/Training -v q >>"$work/host-build.log" 2>&1; then
  fail "host build of src/Api" "$(tail -5 "$work/host-build.log")"; finish; exit 1
fi
python3 "$here/nuget-feed.py" "$work/feed.port" 9>&- & feed_pid=$!
for _ in $(seq 50); do [ -s "$work/feed.port" ] && break; sleep 0.1; done
export ALEXNET_TEST_NUGET_SOURCE=http://127.0.0.1:$(cat "$work/feed.port")/index.json

# Model folder of this run (a copy of ./models): owned by a user who is not root and not 1654, as a host user's
# checkout would be; api serves the file training writes, which starts as a copy of the demo model.
models=$work/models
cp -r models "$models"
cp models/fashion-mnist-compact.onnx "$models/fashion-mnist-retrained.onnx"
chown -R 4242:4242 "$models"
export ALEXNET_MODELS=$models ALEXNET_RUNS=$work/runs ALEXNET_FASHION_MNIST=$fashion
export ALEXNET_MODEL=/models/fashion-mnist-retrained.onnx

# The override over the user's file, as docker-compose merges it, less the `ports` of docker-compose.yml: compose
# 1.29 cannot reset a list from an override, and the engine refuses port bindings with host networking.
# (docker-compose config also puts in the ALEXNET_* values of the moment.)
merge() {
  docker-compose -f docker-compose.yml -f docker-compose.test.yml --profile gpu --profile training config >"$1.merged" 2>"$work/merged.err" \
  && python3 -c 'import sys, yaml
d = yaml.safe_load(open(sys.argv[1]))
for s in d["services"].values(): s.pop("ports", None)
yaml.safe_dump(d, open(sys.argv[2], "w"))' "$1.merged" "$1"
}
if merge "$work/compose.yml"; then
  compose=(docker-compose -p "$project" -f "$work/compose.yml")
else
  fail "docker-compose.yml with docker-compose.test.yml merges" "$(cat "$work/merged.err")"; finish; exit 1
fi

# ---- static: compose accepts every profile ----
check "docker-compose config passes for every profile (none, gpu, training, all; and with the test override)" bash -c '
  docker-compose config -q && docker-compose --profile gpu config -q && docker-compose --profile training config -q \
  && docker-compose --profile gpu --profile training config -q \
  && docker-compose -f docker-compose.yml -f docker-compose.test.yml --profile gpu --profile training config -q'

# ---- the images ----
t0=$SECONDS
if "${compose[@]}" build --force-rm api >"$work/build-api.log" 2>&1; then
  ok "docker/api.Dockerfile builds ($((SECONDS - t0)) s)"
else
  fail "docker/api.Dockerfile builds" "$(grep -v '^ ---> \|^Removing intermediate' "$work/build-api.log" | tail -15)"; finish; exit 1
fi
t0=$SECONDS
if "${compose[@]}" --profile training build --force-rm training >"$work/build-training.log" 2>&1; then
  ok "docker/training.Dockerfile builds ($((SECONDS - t0)) s)"; training_built=1
else
  fail "docker/training.Dockerfile builds" "$(grep -v '^ ---> \|^Removing intermediate' "$work/build-training.log" | tail -15)"; training_built=0
fi
echo "skip - docker/api-gpu.Dockerfile is not built: no CUDA base image (nvidia/cuda) can be pulled or made on this machine; its static checks are in tests/Api.Tests/ContainerTests.cs (not counted here)"

api_bytes=$(docker image inspect -f '{{.Size}}' alexnet-api:containertest)
api_mb=$(( api_bytes / 1000000 ))
check "the CPU api image carries no CUDA or TensorRT provider, but ONNX Runtime itself (image ${api_mb} MB)" \
  docker run --rm --network none --entrypoint sh alexnet-api:containertest -c \
  'du -sh /app; ls /app | grep onnxruntime; test -f /app/libonnxruntime.so && ! ls /app | grep -q "providers_cuda\|providers_tensorrt"'

# ---- the service outside a container, on the same model, as the reference ----
host_port=$(free_port)
( cd src/Api && ASPNETCORE_URLS=http://127.0.0.1:$host_port Inference__Provider=Cpu Cache__Enabled=false \
    Inference__ModelPath=$repo/models/fashion-mnist-compact.onnx Gallery__DatabasePath=$work/host-gallery.db \
    exec dotnet bin/Debug/net10.0/linux-x64/AlexNet.Api.dll ) >"$work/host-api.log" 2>&1 & host_pid=$!

# ---- api: healthy by its own health check, on a port other than 8080 ----
wait_healthy() {   # seconds until the api container's own health check says healthy; fails after $1 s
  local limit=$1 t0=$SECONDS id status
  while [ $((SECONDS - t0)) -lt "$limit" ]; do
    id=$("${compose[@]}" ps -q api 2>/dev/null)
    status=$([ -n "$id" ] && docker inspect -f '{{.State.Health.Status}}' "$id" 2>/dev/null)
    [ "$status" = healthy ] && { echo $((SECONDS - t0)); return 0; }
    sleep 0.5
  done
  return 1
}
t0=$SECONDS
if "${compose[@]}" up -d api >"$work/up.log" 2>&1 && wait_healthy 120 >/dev/null; then
  up_secs=$((SECONDS - t0))
  ok "api becomes healthy by its own health check on the configured port $port (not 8080), ${up_secs} s from up"
else
  fail "api becomes healthy by its own health check on port $port" "$(cat "$work/up.log"; "${compose[@]}" logs --tail 20 api)"
  finish; exit 1
fi
api_id=$("${compose[@]}" ps -q api)

check "the process in the container is not root (id -u and pid 1's uid)" bash -c '
  u=$('"${compose[*]}"' exec -T api id -u) && p=$('"${compose[*]}"' exec -T api awk "/^Uid:/ {print \$2}" /proc/1/status) \
  && echo "id -u: $u, pid 1: $p" && [ "$u" != 0 ] && [ "$p" != 0 ]'

check "the models mount is read-only (mount RW=false, writes refused)" bash -c '
  [ "$(docker inspect -f "{{range .Mounts}}{{if eq .Destination \"/models\"}}{{.RW}}{{end}}{{end}}" '"$api_id"')" = false ] \
  && ! '"${compose[*]}"' exec -T api sh -c "touch /models/x" 2>/dev/null'

check "the gallery lives on the named volume ${project}_gallery" bash -c '
  [ "$(docker inspect -f "{{range .Mounts}}{{if eq .Destination \"/data\"}}{{.Type}} {{.Name}}{{end}}{{end}}" '"$api_id"')" = "volume '"${project}"'_gallery" ]'

# ---- classify a real photo: the same top-5 in and outside the container ----
for _ in $(seq 120); do curl -fs "http://127.0.0.1:$host_port/health/ready" >/dev/null && break; sleep 0.5; done
curl -fsS -F "image=@$photo" "$url/api/classify?k=5" >"$work/in.json" 2>"$work/in.err"
curl -fsS -F "image=@$photo" "http://127.0.0.1:$host_port/api/classify?k=5" >"$work/out.json" 2>"$work/out.err"
check "classify $(basename "$photo"): same model, same top-5 in the container as outside, probabilities within 1e-5" python3 - "$work/in.json" "$work/out.json" <<'EOF'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
ta, tb = a["results"][0]["top"], b["results"][0]["top"]
for x, y in zip(ta, tb): print(f'{x["label"]:>12} {x["probability"]:.7f}   outside: {y["label"]:>12} {y["probability"]:.7f}')
assert a["model"] == b["model"], (a["model"], b["model"])
assert len(ta) == len(tb) == 5
assert [x["index"] for x in ta] == [y["index"] for y in tb], "top-5 differ"
d = max(abs(x["probability"] - y["probability"]) for x, y in zip(ta, tb))
print(f"largest difference {d:.2e}")
assert d <= 1e-5
EOF

check "Swagger UI and its OpenAPI document answer" bash -c "
  curl -fsS -o '$work/swagger.html' '$url/swagger/index.html' && grep -qi 'swagger-ui' '$work/swagger.html' \
  && curl -fsS -o '$work/swagger.json' '$url/swagger/v1/swagger.json' && grep -q '/api/classify' '$work/swagger.json'"
check "/metrics answers in Prometheus' format" bash -c "
  curl -fsS -o '$work/metrics.txt' '$url/metrics' && grep -c '^# TYPE ' '$work/metrics.txt' | sed 's/\$/ metric families/'"

# ---- the gallery survives down/up (without -v) ----
curl -fsS -H "X-Api-Key: $api_key" -F "image=@$photo" -F label=container-test "$url/api/gallery" >"$work/add.json" 2>&1
check "a gallery image is added with the API key" grep -q '"container-test"' "$work/add.json"
"${compose[@]}" down >"$work/down.log" 2>&1
check "down (without -v) keeps the volume ${project}_gallery" docker volume inspect -f '{{.Name}} {{.CreatedAt}}' "${project}_gallery"
t0=$SECONDS
"${compose[@]}" up -d api >"$work/up2.log" 2>&1
if wait_healthy 120 >/dev/null; then up2_secs=$((SECONDS - t0)); else up2_secs=""; fi
curl -fsS -F "image=@$photo" "$url/api/gallery/search?k=1" >"$work/search.json" 2>&1
check "after up again, search finds the gallery image added before down" python3 - "$work/search.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
hit = r["results"][0]["neighbours"][0]
print(hit)
assert hit["label"] == "container-test" and hit["distance"] < 1e-3
EOF

# ---- training writes a model into the mounted ./models; reload serves it ----
if [ "$training_built" = 1 ]; then
  mkdir -p "$work/no-data"
  ALEXNET_FASHION_MNIST=$work/no-data merge "$work/compose-no-data.yml"
  check "the training service, run as the README says without Fashion-MNIST, says where to put it" bash -c '
    out=$(docker-compose -p '"$project"' -f '"$work/compose-no-data.yml"' --profile training run --rm training 2>&1); rc=$?
    echo "$out" | grep -v "^Creating\|^Starting" | head -3; [ $rc -ne 0 ] && grep -q "ALEXNET_FASHION_MNIST" <<<"$out"'
  before=$(curl -fsS "$url/api/model" | python3 -c 'import json,sys; print(json.load(sys.stdin)["fingerprint"])')
  t0=$SECONDS
  # --force as compose's own recipe passes it: the served file is replaced by the new training, then reloaded.
  if "${compose[@]}" --profile training run --rm training train --preset compact --fashion-mnist /data/fashion-mnist \
      --limit 400 --epochs 1 --batch-size 50 --init Kaiming --normalize meanstd \
      --out /runs/fashion-compact --export /models/fashion-mnist-retrained.onnx --force >"$work/train.log" 2>&1; then
    ok "training runs one epoch on 400 Fashion-MNIST images in the training service ($((SECONDS - t0)) s)"
  else
    fail "training runs one epoch on 400 Fashion-MNIST images in the training service" "$(tail -15 "$work/train.log")"
  fi
  check "training wrote the ONNX model and its run into the mounted folders, owned by the folders' owner (uid 4242)" bash -c "
    ls -ln '$models/fashion-mnist-retrained.onnx' '$work/runs/fashion-compact' \
    && [ \$(stat -c %u '$models/fashion-mnist-retrained.onnx') = 4242 ] && [ \$(stat -c %u '$work/runs/fashion-compact/metrics.csv') = 4242 ] \
    && ! cmp -s '$models/fashion-mnist-retrained.onnx' models/fashion-mnist-compact.onnx"
  curl -fsS -X POST -H "X-Api-Key: $api_key" "$url/api/model/reload" >"$work/reload.json" 2>&1
  curl -fsS -F "image=@$photo" "$url/api/classify?k=5" >"$work/after.json" 2>&1
  check "POST /api/model/reload makes api serve the trained model" python3 - "$work/reload.json" "$work/after.json" "$before" <<'EOF'
import json, sys
reload, after = (json.load(open(p)) for p in sys.argv[1:3])
print(reload)
assert reload["changed"] is True and reload["previous"] == sys.argv[3] and reload["fingerprint"] != sys.argv[3]
assert after["model"] == reload["fingerprint"]
EOF
else
  fail "training service (its image did not build)"
fi

[ -n "$up_secs" ] && echo "api image: ${api_mb} MB ($api_bytes bytes); up -> healthy: ${up_secs} s (first), ${up2_secs:-?} s (again, gallery of 1)"
finish
[ "$failed" -eq 0 ]
