#!/usr/bin/env python3
"""A small HTTP server for the uri lab test: serves files from a directory,
echoes POST/PUT requests as JSON, and guards /secure with basic auth.

Usage: server.py ADDRESS DIRECTORY PORTFILE USER:PASSWORD
It binds ADDRESS on a free port, writes the port to PORTFILE and serves
until it is killed (the test stops it by PID).
"""
import base64
import functools
import http.server
import json
import sys


class Handler(http.server.SimpleHTTPRequestHandler):
    creds = ""

    def log_message(self, *args):
        pass

    def _json(self, status, obj):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Echo-Count", "1")
        self.end_headers()
        self.wfile.write(data)

    def _authorized(self):
        want = "Basic " + base64.b64encode(self.creds.encode()).decode()
        if self.headers.get("Authorization") == want:
            return True
        self.send_response(401)
        self.send_header("WWW-Authenticate", 'Basic realm="lab"')
        self.send_header("Content-Length", "0")
        self.end_headers()
        return False

    def do_GET(self):
        if self.path == "/secure":
            if self._authorized():
                self._json(200, {"secret": "granted"})
            return
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/hello.txt")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        super().do_GET()

    def _echo(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n).decode()
        self._json(201, {
            "method": self.command,
            "path": self.path,
            "body": body,
            "content_type": self.headers.get("Content-Type"),
        })

    do_POST = _echo
    do_PUT = _echo


def main():
    address, directory, portfile, creds = sys.argv[1:5]
    Handler.creds = creds
    handler = functools.partial(Handler, directory=directory)
    server = http.server.ThreadingHTTPServer((address, 0), handler)
    with open(portfile + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    import os
    os.rename(portfile + ".tmp", portfile)
    server.serve_forever()


if __name__ == "__main__":
    main()
