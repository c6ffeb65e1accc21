#!/bin/sh
# The worker runs as the owner of /models, so that what it writes into a bind-mounted ./models and ./runs belongs to
# the host user who owns ./models (not to root, nor to uid 1654, which the host does not know and which cannot write
# into a folder the host user owns). Unmounted, /models belongs to the image's user `app` (uid 1654).
# A ./runs that Docker made as root because it was missing is handed to the same owner while it is still empty.
# Where ./models belongs to root (a host user who is root), the worker runs as root.
set -eu
# Compose mounts Fashion-MNIST at /data/fashion-mnist; say where it comes from before the worker fails on a missing file.
case " $* " in
  *" --fashion-mnist /data/fashion-mnist "*)
    if [ ! -f /data/fashion-mnist/train-images-idx3-ubyte.gz ]; then
      echo "Fashion-MNIST is not in /data/fashion-mnist: put its four gzipped IDX files (train-images-idx3-ubyte.gz," >&2
      echo "train-labels-idx1-ubyte.gz, t10k-...) into ./data/fashion-mnist, or on Debian install dataset-fashion-mnist" >&2
      echo "and set ALEXNET_FASHION_MNIST=/usr/share/datasets/fashion-mnist (README, Containers)." >&2
      exit 2
    fi ;;
esac
if [ "$(id -u)" = 0 ]; then
  uid=$(stat -c %u /models)
  gid=$(stat -c %g /models)
  if [ "$uid" != 0 ]; then
    if [ -d /runs ] && [ "$(stat -c %u /runs)" = 0 ] && [ -z "$(ls -A /runs)" ]; then chown "$uid:$gid" /runs; fi
    exec env HOME=/tmp setpriv --reuid="$uid" --regid="$gid" --clear-groups dotnet /app/alexnet-train.dll "$@"
  fi
fi
exec dotnet /app/alexnet-train.dll "$@"
