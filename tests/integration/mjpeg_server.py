"""A tiny HTTP MJPEG camera (multipart/x-mixed-replace) for live-source tests.

Run as a process: ``python mjpeg_server.py PORT VIDEO`` serves the frames of
VIDEO in a loop at ~25 frames/s on 127.0.0.1:PORT until killed.
"""

from __future__ import annotations

import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2

BOUNDARY = "frame"


def frames(video: str) -> list[bytes]:
    cap = cv2.VideoCapture(video)
    out = []
    while True:
        ok, img = cap.read()
        if not ok:
            break
        out.append(cv2.imencode(".jpg", img)[1].tobytes())
    return out


def main() -> None:
    port, video = int(sys.argv[1]), sys.argv[2]
    jpegs = frames(video)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
            self.end_headers()
            i = 0
            try:
                while True:
                    data = jpegs[i % len(jpegs)]
                    self.wfile.write(
                        f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                        f"Content-Length: {len(data)}\r\n\r\n".encode()
                    )
                    self.wfile.write(data + b"\r\n")
                    i += 1
                    time.sleep(0.04)
            except (BrokenPipeError, ConnectionResetError):
                return

        def log_message(self, format: str, *args: object) -> None:
            pass

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    main()
