#!/usr/bin/env python3
"""Serves web/ on 127.0.0.1 only, with the MIME types browsers require for
WebAssembly (application/wasm, for streaming compilation) and ES modules.

    python3 web/serve.py [--port 8000]
"""

import argparse
import functools
import http.server
import pathlib
import threading

WEB = pathlib.Path(__file__).resolve().parent


class Handler(http.server.SimpleHTTPRequestHandler):
    """Static files, never cached (a rebuilt module is picked up on reload)."""

    extensions_map = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".wasm": "application/wasm",
        ".js": "text/javascript",
        ".mjs": "text/javascript",
        ".json": "application/json",
        ".css": "text/css",
        ".html": "text/html; charset=utf-8",
    }
    quiet = False

    def end_headers(self):
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, fmt, *args):
        if not self.quiet:
            super().log_message(fmt, *args)


def make_server(port=8000, quiet=False):
    """A threaded server for web/ bound to 127.0.0.1 (port 0: any free port)."""
    handler = functools.partial(type("H", (Handler,), {"quiet": quiet}), directory=str(WEB))
    return http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)


def serve_in_background(quiet=True):
    """Starts a server on a free port in a daemon thread; returns (server, base URL)."""
    server = make_server(0, quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    server = make_server(args.port)
    if not (WEB / "pkg" / "sfnap_bg.wasm").exists():
        print("warning: web/pkg/ is not built; run `make web`")
    print(f"serving {WEB} at http://127.0.0.1:{server.server_address[1]}/ (Ctrl-C stops)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
