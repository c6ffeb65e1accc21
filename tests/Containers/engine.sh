# Sourced by tests/Containers/run.sh: a Docker engine, and stand-ins for Microsoft's base images where no registry
# can be reached (../shared/notes/docker-here.md). Nothing here is needed where mcr.microsoft.com answers.

# Starts Debian's engine (as root, host networking only) unless one answers; its log stays in $ENGINE_LOG.
ensure_engine() {
  docker info >/dev/null 2>&1 && return 0
  [ "$(id -u)" -eq 0 ] || { echo "no Docker engine answers and only root can start one"; return 1; }
  command -v dockerd >/dev/null || { echo "dockerd is missing (apt-get install docker.io)"; return 1; }
  echo "== starting dockerd (log: $ENGINE_LOG)"
  # 9>&-: the engine outlives this run and must not keep run.sh's lock (fd 9), or the next run waits for ever.
  setsid dockerd --iptables=false --bridge=none >>"$ENGINE_LOG" 2>&1 < /dev/null 9>&- &
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && return 0; sleep 1; done
  echo "dockerd did not answer within 60 s; its log:"; tail -20 "$ENGINE_LOG"; return 1
}

# Local images with the contract of mcr.microsoft.com/dotnet/{runtime,aspnet,sdk}:10.0: Debian 12, the machine's
# .NET in /usr/share/dotnet (+ /usr/bin/dotnet), APP_UID=1654 with a user `app`, ASPNETCORE_HTTP_PORTS=8080. The SDK
# stand-in also trusts this machine's extra TLS roots and checks no certificate revocation, as the machine itself
# does, for restores that reach NuGet. Made only when missing, so they are kept between runs on one machine.
BASE_DEBIAN=local/debian:bookworm
BASE_RUNTIME=local/dotnet-runtime:10.0
BASE_ASPNET=local/dotnet-aspnet:10.0
BASE_SDK=local/dotnet-sdk:10.0

STANDIN_VERSION=2   # raise when the recipe below changes, so that machines that keep older stand-ins make them again

ensure_base_images() {
  local have=1 img
  for img in $BASE_DEBIAN $BASE_RUNTIME $BASE_ASPNET $BASE_SDK; do docker image inspect "$img" >/dev/null 2>&1 || have=0; done
  for img in $BASE_RUNTIME $BASE_ASPNET $BASE_SDK; do
    [ "$(docker image inspect -f '{{index .Config.Labels "alexnet.standin"}}' "$img" 2>/dev/null)" = "$STANDIN_VERSION" ] || have=0
  done
  [ $have -eq 1 ] && { echo "== base images: present ($BASE_RUNTIME, $BASE_ASPNET, $BASE_SDK)"; return 0; }
  local t0=$SECONDS ctx
  ctx=$(mktemp -d)
  if ! docker image inspect $BASE_DEBIAN >/dev/null 2>&1; then
    command -v debootstrap >/dev/null || { echo "debootstrap is missing"; rm -rf "$ctx"; return 1; }
    echo "== debootstrap bookworm (minbase)"
    debootstrap --variant=minbase bookworm "$ctx/rootfs" http://deb.debian.org/debian >"$ctx/debootstrap.log" 2>&1 \
      || { tail -20 "$ctx/debootstrap.log"; rm -rf "$ctx"; return 1; }
    rm -rf "$ctx"/rootfs/var/cache/apt/archives/*.deb
    tar -C "$ctx/rootfs" -c . | docker import -c 'CMD ["bash"]' - $BASE_DEBIAN >/dev/null || { rm -rf "$ctx"; return 1; }
    rm -rf "$ctx/rootfs"
  fi
  local dotnet=/usr/share/dotnet version
  version=$(ls $dotnet/shared/Microsoft.NETCore.App | sort -V | tail -1)
  mkdir -p "$ctx/runtime/dotnet/shared" "$ctx/aspnet" "$ctx/sdk/certs" "$ctx/sdk/dotnet"
  cp -a $dotnet/dotnet $dotnet/host $dotnet/LICENSE.txt $dotnet/ThirdPartyNotices.txt "$ctx/runtime/dotnet/"
  cp -a $dotnet/shared/Microsoft.NETCore.App "$ctx/runtime/dotnet/shared/"
  cp -a $dotnet/shared/Microsoft.AspNetCore.App "$ctx/aspnet/"
  cp -a $dotnet/sdk $dotnet/packs $dotnet/sdk-manifests $dotnet/templates "$ctx/sdk/dotnet/"
  cp /usr/local/share/ca-certificates/*.crt "$ctx/sdk/certs/" 2>/dev/null || true
  # apt's docker-clean, as Debian's own images have it (no package caches left in a layer), then Microsoft's libraries.
  printf '%s\n' 'DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };' \
    'APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };' \
    'Dir::Cache::pkgcache ""; Dir::Cache::srcpkgcache "";' >"$ctx/runtime/docker-clean"
  cat >"$ctx/runtime/Dockerfile" <<EOF
FROM $BASE_DEBIAN
LABEL alexnet.standin=$STANDIN_VERSION
COPY docker-clean /etc/apt/apt.conf.d/docker-clean
RUN rm -f /var/cache/apt/*.bin && apt-get update && apt-get install -y --no-install-recommends ca-certificates libicu72 libssl3 tzdata \\
    && rm -rf /var/lib/apt/lists/* \\
    && groupadd --gid 1654 app && useradd --uid 1654 --gid 1654 --no-create-home --shell /bin/false app
ENV APP_UID=1654 ASPNETCORE_HTTP_PORTS=8080 DOTNET_RUNNING_IN_CONTAINER=true DOTNET_VERSION=$version
COPY dotnet/ /usr/share/dotnet/
RUN ln -s /usr/share/dotnet/dotnet /usr/bin/dotnet && dotnet --list-runtimes
EOF
  cat >"$ctx/aspnet/Dockerfile" <<EOF
FROM $BASE_RUNTIME
ENV ASPNET_VERSION=$version
COPY Microsoft.AspNetCore.App/ /usr/share/dotnet/shared/Microsoft.AspNetCore.App/
EOF
  cat >"$ctx/sdk/Dockerfile" <<EOF
FROM $BASE_ASPNET
COPY certs/ /usr/local/share/ca-certificates/
RUN update-ca-certificates
ENV NUGET_CERT_REVOCATION_MODE=offline DOTNET_GENERATE_ASPNET_CERTIFICATE=false DOTNET_NOLOGO=true \\
    DOTNET_CLI_TELEMETRY_OPTOUT=true NUGET_XMLDOC_MODE=skip DOTNET_USE_POLLING_FILE_WATCHER=true
COPY dotnet/ /usr/share/dotnet/
RUN dotnet --version
EOF
  docker rmi $BASE_SDK $BASE_ASPNET $BASE_RUNTIME >/dev/null 2>&1   # older stand-ins, if any
  echo "== base images: building stand-ins for mcr.microsoft.com/dotnet/{runtime,aspnet,sdk}:10.0 (.NET $version)"
  DOCKER_BUILDKIT=0 docker build -q --network host -t $BASE_RUNTIME "$ctx/runtime" >"$ctx/build.log" 2>&1 \
    && DOCKER_BUILDKIT=0 docker build -q --network host -t $BASE_ASPNET "$ctx/aspnet" >>"$ctx/build.log" 2>&1 \
    && DOCKER_BUILDKIT=0 docker build -q --network host -t $BASE_SDK "$ctx/sdk" >>"$ctx/build.log" 2>&1
  local rc=$?
  [ $rc -eq 0 ] || grep -v DEPRECATED -A0 "$ctx/build.log" | grep -v 'BuildKit\|environment-variable' | tail -15
  rm -rf "$ctx"
  [ $rc -eq 0 ] && echo "   made in $((SECONDS - t0)) s"
  return $rc
}
