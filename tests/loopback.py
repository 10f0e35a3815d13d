"""Ports on the loopback interface for tests that need nothing to be listening, or a port to
hand a server on its command line."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on: the kernel picks a free one for a socket
    bound to port 0, and it is released again at once (for a moment another process could take
    it; the ephemeral range is large enough that tests do not meet that)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
