"""Run ``aejax sweep ARGS`` with a SIGINT sent ``DELAY`` seconds into its first checkpoint save; the
tests launch this script as a subprocess. Usage: ``python ctrl_c_in_save.py DELAY ARGS...``"""

import os
import signal
import sys
import threading
import time

from aejax.checkpoint import ChunkCheckpoints
from aejax.cli import main

signal.signal(signal.SIGINT, signal.default_int_handler)
original = ChunkCheckpoints.save
calls = []


def save(self, next_block, state):
    calls.append(next_block)
    if len(calls) == 1:
        threading.Timer(float(sys.argv[1]), os.kill, (os.getpid(), signal.SIGINT)).start()
    original(self, next_block, state)
    if len(calls) == 1:
        time.sleep(2.0)


ChunkCheckpoints.save = save
sys.exit(main(sys.argv[2:]))
