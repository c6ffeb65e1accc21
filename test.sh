#!/usr/bin/env bash
# The tests, as CI runs them (.ci/run calls this): install what they need on a Debian 12 machine, lint the
# container files, run every test project (dotnet test AlexNet.sln) and the container tests (tests/Containers/run.sh:
# both images built and run on a real Docker engine), and print the totals last as "N passed, N failed".
# Run as root, or as a user with sudo.
set -uo pipefail
cd "$(dirname "$0")"
export DEBIAN_FRONTEND=noninteractive DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo

# System packages the tests use: ONNX's checker, Fashion-MNIST, PyTorch/torchvision (compatibility fixtures),
# Chromium (browser test); for the container tests a Docker engine and docker-compose, debootstrap (local base
# images), curl and a real photo (python3-sklearn's china.jpg); for the replica tests PostgreSQL 15 (a server of
# their own in a temp folder) and HAProxy (the balancer; also checks docker/haproxy.cfg).
packages=(python3-onnx python3-numpy python3-pil python3-torch python3-torchvision dataset-fashion-mnist chromium
          docker.io docker-compose debootstrap curl python3-sklearn postgresql-15 haproxy)
missing=()
for p in "${packages[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p"); done
command -v npm >/dev/null || missing+=(npm)                          # the Dockerfile linter (.ci/static-checks)
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing: ${missing[*]}"
  $sudo apt-get update -qq && $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || { echo "apt-get failed"; echo "0 passed, 1 failed"; exit 1; }
fi

# Lint the container files (compose config for every profile, dockerfile-utils); a failure stops here.
bash .ci/static-checks || { echo "0 passed, 1 failed"; exit 1; }

echo "== dotnet test AlexNet.sln"
log=$(mktemp)
t0=$SECONDS
dotnet test AlexNet.sln 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
echo "dotnet test: $((SECONDS - t0)) s"

# dotnet test prints one summary per test project: "Passed!  - Failed: 0, Passed: 12, Skipped: 0, Total: 12 ..."
passed=$(grep -oE 'Passed: +[0-9]+' "$log" | awk '{s+=$2} END {print s+0}')
failed=$(grep -oE 'Failed: +[0-9]+' "$log" | awk '{s+=$2} END {print s+0}')
skipped=$(grep -oE 'Skipped: +[0-9]+' "$log" | awk '{s+=$2} END {print s+0}')
projects=$(grep -cE '^(Passed|Failed)! ' "$log")
expected=$(grep -cE 'tests[\\/][^"]*\.csproj' AlexNet.sln)
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi          # a build or runner failure counts
if [ "$projects" -lt "$expected" ] && [ "$failed" -eq 0 ]; then failed=1; fi   # a test project that never reported

# The container tests print one line per check and "N passed, N failed" last; a run that never got there counts
# as one failure.
echo "== tests/Containers/run.sh"
$sudo bash tests/Containers/run.sh 2>&1 | tee "$log"
cstatus=${PIPESTATUS[0]}
ctotals=$(tail -1 "$log")
rm -f "$log"
if [[ $ctotals =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
  passed=$((passed + BASH_REMATCH[1])); failed=$((failed + BASH_REMATCH[2]))
  if [ "$cstatus" -ne 0 ] && [ "${BASH_REMATCH[2]}" -eq 0 ]; then failed=$((failed + 1)); fi
else
  failed=$((failed + 1))
fi

if [ "$skipped" -gt 0 ]; then echo "$skipped skipped (not counted as passed)"; fi
echo "$passed passed, $failed failed"
[ "$status" -eq 0 ] && [ "$cstatus" -eq 0 ] && [ "$failed" -eq 0 ]
