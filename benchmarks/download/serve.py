"""A threaded static HTTP server for the download benchmark (one thread per connection;
Python's default http.server is single-threaded). Usage: serve.py DIR PORT"""
import http.server
import os
import sys


class Handler(http.server.SimpleHTTPRequestHandler):
    def copyfile(self, source, outputfile):
        # 1 MiB blocks instead of shutil's 64 KiB default: less Python overhead per byte.
        while True:
            block = source.read(1 << 20)
            if not block:
                break
            outputfile.write(block)

    def log_message(self, *args):
        pass


os.chdir(sys.argv[1])
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[2])), Handler).serve_forever()
