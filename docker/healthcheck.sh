#!/bin/sh
# The container health check: GET /health/ready on the port the service was told to listen on, so a container
# started with ASPNETCORE_HTTP_PORTS=5000 (or ASPNETCORE_URLS=http://127.0.0.1:5000, which takes precedence, as it
# does for Kestrel) is checked where it serves. Only the first port of a list is checked.
set -eu
url=${ASPNETCORE_URLS:-}
url=${url%%;*}
if [ -n "$url" ]; then
  port=${url##*:}                # http://+:5000, http://127.0.0.1:5000/ -> 5000
  port=${port%%/*}
else
  port=${ASPNETCORE_HTTP_PORTS:-8080}
  port=${port%%[;,]*}
fi
exec curl -fsS --max-time 3 -o /dev/null "http://localhost:${port}/health/ready"
