#!/usr/bin/env python3
"""Serves this machine's NuGet global packages folder (~/.nuget/packages) as a read-only NuGet v3 feed on 127.0.0.1,
so that `dotnet restore` inside an image build (docker build --network host --build-arg NUGET_SOURCE=...) takes the
packages the host has already downloaded instead of fetching about 1.5 GB again. The folder's layout
(<id>/<version>/<id>.<version>.nupkg, lower case) is already the v3 flat container's; only the version lists
(<id>/index.json) are made on the fly. Restore needs no other resource (PackageBaseAddress/3.0.0).

Usage: nuget-feed.py PORT_FILE [FOLDER]; writes the port it listens on to PORT_FILE, then serves until killed.
"""
import http.server
import json
import os
import sys

root = os.path.realpath(sys.argv[2] if len(sys.argv) > 2 else os.path.expanduser("~/.nuget/packages"))


class Feed(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        parts = [p for p in self.path.split("?")[0].split("/") if p]
        if parts == ["index.json"]:
            base = f"http://127.0.0.1:{self.server.server_port}/flat/"
            return self.send_json({"version": "3.0.0", "resources": [{"@id": base, "@type": "PackageBaseAddress/3.0.0"}]})
        if len(parts) < 2 or parts[0] != "flat" or any(p in (".", "..") for p in parts):
            return self.send_error(404)
        package = os.path.join(root, parts[1].lower())
        if len(parts) == 3 and parts[2] == "index.json":
            versions = sorted(v for v in os.listdir(package)
                              if os.path.isfile(os.path.join(package, v, f"{parts[1].lower()}.{v}.nupkg"))) if os.path.isdir(package) else []
            return self.send_json({"versions": versions}) if versions else self.send_error(404)
        path = os.path.realpath(os.path.join(root, *[p.lower() for p in parts[1:]]))
        if len(parts) != 4 or not path.startswith(root + os.sep) or not os.path.isfile(path):
            return self.send_error(404)
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(os.path.getsize(path)))
        self.end_headers()
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                self.wfile.write(chunk)

    def send_json(self, value):
        body = json.dumps(value).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Feed)
with open(sys.argv[1], "w") as f:
    f.write(str(server.server_port))
server.serve_forever()
