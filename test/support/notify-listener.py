"""A stand-in for systemd's notify socket: an AF_UNIX datagram socket that prints each message
it receives as a JSON line, with the sender's PID from SCM_CREDENTIALS (systemd attributes
messages the same way). With --stop-on-ready it SIGSTOPs the sender as soon as READY=1 arrives,
before printing it, so the test can look at what was already listening at that instant."""
import json
import os
import signal
import socket
import struct
import sys

path, stop_on_ready = sys.argv[1], '--stop-on-ready' in sys.argv[2:]
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.bind(path)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
print(json.dumps({'listening': path}), flush=True)
while True:
    data, ancillary, _flags, _addr = sock.recvmsg(65536, socket.CMSG_SPACE(struct.calcsize('iII')))
    pid = None
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            pid = struct.unpack('iII', payload[:struct.calcsize('iII')])[0]
    text = data.decode('utf-8', 'replace')
    stopped = False
    if stop_on_ready and pid and 'READY=1' in text.split('\n'):
        os.kill(pid, signal.SIGSTOP)
        stopped = True
    print(json.dumps({'pid': pid, 'message': text, 'stopped': stopped}), flush=True)
