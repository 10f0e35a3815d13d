"""infphys._closing.end_process: a child asked to stop keeps its own exit code; one that does
not stop is killed (the docstring's example); one already gone is only reaped."""

from __future__ import annotations

import subprocess
import sys

from infphys._closing import end_process

# Exits with code 3 when Ctrl-C (SIGINT) reaches it, after saying it is ready to be asked. It
# installs Python's SIGINT handler itself: a test run started in the background of a script
# hands its children SIGINT ignored, which Python keeps.
_STOPS_ON_SIGINT = """
import signal, sys, time
signal.signal(signal.SIGINT, signal.default_int_handler)
try:
    print("ready", flush=True)
    time.sleep(60)
except KeyboardInterrupt:
    sys.exit(3)
"""


def test_a_process_that_stops_on_sigint_keeps_its_exit_code() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", _STOPS_ON_SIGINT], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    # SIGINT, then up to 60 s of grace: it exits by itself with 3, it is not killed (-9).
    assert end_process(proc, 60.0) == 3
    proc.stdout.close()


def test_a_process_already_gone_is_only_reaped() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "raise SystemExit(5)"])
    proc.wait()
    assert end_process(proc, 0.0) == 5
