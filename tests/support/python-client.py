"""A python-socketio client, as a third-party client of Noom would be: it connects to the URL
given, reconnects by itself as python-socketio does when its connection is lost, and prints one
JSON line per thing that happens to it ("connect", "disconnect", and every event received, with
its arguments), until its standard input closes.

    /usr/bin/python3 python-client.py URL [websocket|polling]
"""
import json
import sys
import threading

import socketio


# Handlers run on python-socketio's threads: one line at a time.
printing = threading.Lock()


def say(what, *args):
    with printing:
        print(json.dumps({"event": what, "args": list(args)}), flush=True)


def main():
    url = sys.argv[1]
    transport = sys.argv[2] if len(sys.argv) > 2 else "websocket"
    client = socketio.Client(reconnection=True, reconnection_delay=0.2, reconnection_delay_max=1)
    client.on("connect", lambda: say("connect"))
    client.on("disconnect", lambda: say("disconnect"))
    client.on("*", lambda event, *args: say(event, *args))
    client.connect(url, transports=[transport])
    # Runs until the test closes standard input.
    closed = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), closed.set()), daemon=True).start()
    closed.wait()
    client.disconnect()


if __name__ == "__main__":
    main()
