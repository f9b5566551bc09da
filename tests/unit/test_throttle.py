"""Failed authentication throttled per address: burst, backoff, leak, trusted keys."""

from __future__ import annotations

from interpreter.server.throttle import BURST, MAX_DELAY, Throttle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_then_doubling_locks_up_to_a_minute() -> None:
    clock = Clock()
    t = Throttle(clock)
    locks = [t.failed("10.0.0.1") for _ in range(BURST)]
    assert locks == [0.0] * BURST and t.wait("10.0.0.1", b"k") == 0
    assert t.failed("10.0.0.1") == 1.0 and t.wait("10.0.0.1", b"k") == 1.0
    assert t.wait("10.0.0.2", b"k") == 0  # another address is not affected
    delays = []
    for _ in range(40):
        clock.now += t.wait("10.0.0.1", b"k")  # a patient guesser: one try per lock
        delays.append(t.failed("10.0.0.1"))
    assert [round(d) for d in delays[:3]] == [2, 4, 7]  # doubling, less what leaked
    assert delays == sorted(delays) and 25 < delays[-1] <= 30  # one guess per 30 s at most
    for _ in range(10):
        t.failed("10.0.0.1")  # were the key checked regardless, the lock would cap
    assert t.wait("10.0.0.1", b"k") == MAX_DELAY
    clock.now += 3600  # an hour later the score has leaked away
    assert t.wait("10.0.0.1", b"k") == 0 and t.failed("10.0.0.1") == 0.0


def test_a_key_that_worked_from_the_address_is_let_through() -> None:
    clock = Clock()
    t = Throttle(clock)
    t.succeeded("10.0.0.1", b"alice")
    for _ in range(BURST + 3):
        t.failed("10.0.0.1")
    assert t.wait("10.0.0.1", b"alice") == 0  # alice keeps working
    assert t.wait("10.0.0.1", b"bob") > 0  # a key never seen from here waits
    t.succeeded("10.0.0.2", b"bob")
    assert t.wait("10.0.0.1", b"bob") > 0  # trust is per address


def test_ipv6_counts_by_its_64_and_the_table_is_bounded() -> None:
    t = Throttle(Clock())
    for n in range(BURST + 1):
        t.failed(f"2001:db8::{n:x}")  # one host rotating its interface ids
    assert t.wait("2001:db8::ffff", b"k") > 0 and t.wait("2001:db8:0:1::1", b"k") == 0
    assert t.wait("::ffff:10.0.0.9", b"k") == 0
    for _ in range(BURST + 1):
        t.failed("::ffff:10.0.0.9")
    assert t.wait("10.0.0.9", b"k") > 0  # IPv4-mapped is the IPv4 address
    for n in range(5000):
        t.failed(f"10.1.{n // 256}.{n % 256}")
    assert len(t._table) <= 4096
