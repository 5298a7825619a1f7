"""The stack's listening ports stay out of the range the kernel gives outgoing connections."""

from __future__ import annotations

import socket

from agentloom_devkit.stack import Ports, ephemeral_ports, free_port


def test_free_ports_are_bindable_and_below_the_ephemeral_range() -> None:
    low, _high = ephemeral_ports()
    ports = [free_port() for _ in range(50)]
    assert all(port < low for port in ports)
    for port in ports[:5]:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))


def test_a_stack_gets_distinct_ports() -> None:
    ports = Ports.free()
    values = list(vars(ports).values())
    assert len(set(values)) == len(values) == 8
