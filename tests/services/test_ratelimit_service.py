"""The sliding-log limiter against a real Redis: exact counts, peeks, retry times."""

from __future__ import annotations

import threading

import pytest
import redis

from secops.errors import Unavailable
from secops.services import ratelimit
from secops.services.ratelimit import Bucket


@pytest.fixture
def kv(redis_server) -> redis.Redis:
    client = redis.Redis.from_url(redis_server.url)
    client.flushdb()
    return client


def test_exactly_limit_requests_pass_under_concurrency(kv):
    bucket = Bucket("t", "one", 25, 60)
    results: list[bool] = []
    lock = threading.Lock()

    def hit() -> None:
        for _ in range(10):
            d = ratelimit.check(kv, [bucket])
            with lock:
                results.append(d.allowed)

    threads = [threading.Thread(target=hit) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == 25 and len(results) == 200


def test_refusal_by_one_bucket_spends_none(kv):
    ip, key = Bucket("read-ip", "1.2.3.4", 5, 60), Bucket("read-key", "k", 2, 60)
    assert ratelimit.check(kv, [ip, key]).allowed
    assert ratelimit.check(kv, [ip, key]).allowed
    denied = ratelimit.check(kv, [ip, key])
    assert not denied.allowed
    assert 1 <= denied.retry_after <= 60
    # the IP bucket still has 3 left for another key
    other = Bucket("read-key", "k2", 10, 60)
    states = ratelimit.check(kv, [ip, other]).states
    assert states[0].remaining == 2


def test_peek_does_not_spend_and_headers_follow_the_draft(kv):
    b = Bucket("auth-ip", "9.9.9.9", 2, 30)
    assert ratelimit.check(kv, [b], cost=0).allowed
    assert ratelimit.check(kv, [b], cost=0).states[0].used == 0
    ratelimit.check(kv, [b])
    d = ratelimit.check(kv, [b])
    headers = dict(d.headers())
    assert headers["RateLimit-Policy"] == '"auth-ip";q=2;w=30'
    assert headers["RateLimit"].startswith('"auth-ip";r=0;t=')
    peek = ratelimit.check(kv, [b], cost=0)
    assert not peek.allowed and 1 <= peek.retry_after <= 30


def test_unreachable_redis_is_unavailable():
    from secops.embedded import free_port

    dead = redis.Redis(port=free_port(), socket_connect_timeout=0.5, socket_timeout=0.5)
    with pytest.raises(Unavailable):
        ratelimit.check(dead, [Bucket("x", "y", 1, 1)])


def _calls(kv: redis.Redis, command: str) -> int:
    return int(kv.info("commandstats").get(f"cmdstat_{command}", {}).get("calls", 0))


def test_the_script_runs_by_digest_and_survives_an_emptied_script_cache(kv):
    """The script's text is sent once, not with every request; a Redis restarted (its
    script cache empty: it keeps nothing on disk) gets it again and counts stay exact."""
    b = Bucket("t", "flush", 3, 60)
    assert ratelimit.check(kv, [b]).allowed
    evals, evalshas = _calls(kv, "eval"), _calls(kv, "evalsha")
    assert ratelimit.check(kv, [b]).allowed
    assert (_calls(kv, "eval"), _calls(kv, "evalsha")) == (evals, evalshas + 1)
    kv.script_flush()
    assert ratelimit.check(kv, [b]).allowed  # NOSCRIPT, loaded again, counted once
    refused = ratelimit.check(kv, [b])
    assert not refused.allowed and refused.states[0].used == 3
    assert _calls(kv, "eval") == evals


def test_commands_sent_along_run_once_whatever_the_decision(kv):
    """The API counts a key's use in the rate-limit step's round trip: counted when the
    request is admitted, when it is refused, and exactly once when the script had to be
    loaded again (NOSCRIPT inside the pipeline)."""
    b = Bucket("t", "along", 1, 60)

    def count(pipe) -> None:
        pipe.incr("along-count")

    assert ratelimit.check(kv, [b], along=count).allowed
    kv.script_flush()
    assert not ratelimit.check(kv, [b], along=count).allowed
    assert int(kv.get("along-count")) == 2
    assert ratelimit.check(kv, [], along=count).allowed  # no buckets: the others still run
    assert int(kv.get("along-count")) == 3


def test_a_failing_command_sent_along_fails_closed(kv):
    kv.set("not-a-hash", "x")
    b = Bucket("t", "fails", 5, 60)
    with pytest.raises(Unavailable):
        ratelimit.check(kv, [b], along=lambda pipe: pipe.hincrby("not-a-hash", "f", 1))


def _general(kv: redis.Redis, peeked: list[Bucket], counted: list[Bucket], guard: bytes | None,
             key_id: str, when: float) -> ratelimit.KnownCheck:
    """What check_known stands for, in two steps: the peek with the guard's read, then
    (if the peek allows and the guard is unchanged) the count with the key's use."""
    peek = ratelimit.check(kv, peeked, cost=0, along=lambda pipe: pipe.get("guard"))
    seen = peek.others[0]
    if not peek.allowed or seen != guard:
        return ratelimit.KnownCheck(ratelimit.Decision(peek.allowed, peek.states), seen, None)

    def use(pipe) -> None:
        pipe.hincrby("uses", key_id, 1)
        pipe.zadd("last", {key_id: when}, gt=True)

    counted_decision = ratelimit.check(kv, counted, cost=1, along=use)
    return ratelimit.KnownCheck(ratelimit.Decision(peek.allowed, peek.states), seen,
                                ratelimit.Decision(counted_decision.allowed,
                                                   counted_decision.states))


def _state(kv: redis.Redis, result: ratelimit.KnownCheck) -> tuple:
    def decision(d: ratelimit.Decision | None) -> tuple | None:
        if d is None:
            return None
        return d.allowed, [(s.bucket, s.used, s.remaining, s.retry_seconds > 0)
                           for s in d.states], d.headers()[0] if d.states else None

    return (decision(result.peek), result.guard, decision(result.counted),
            {k: int(v) for k, v in kv.hgetall("uses").items()},
            kv.zrange("last", 0, -1, withscores=True),
            sorted((k, kv.zcard(k)) for k in kv.scan_iter("secops:rl:*")))


@pytest.mark.parametrize("case", ["allowed", "peek refuses", "guard moved", "guard absent",
                                  "guard appears", "count refuses by key", "count refuses by ip",
                                  "limits of one"])
def test_one_step_check_of_a_known_key_matches_the_two_steps(kv, case):
    """check_known (one script) leaves Redis and answers exactly as the two steps it
    replaces, whatever the peek, the guard and the count decide; a sequence of requests
    walks each bucket to its limit and past it."""
    limits = {"limits of one": (1, 1, 1)}.get(case, (3, 4, 2))
    auth_limit, ip_limit, key_limit = limits
    if case == "count refuses by ip":
        ip_limit, key_limit = 2, 5

    def run(one_step: bool) -> list[tuple]:
        kv.flushdb()
        peeked = [Bucket("auth-ip", "10.0.0.1", auth_limit, 60)]
        counted = [Bucket("read-ip", "10.0.0.1", ip_limit, 60),
                   Bucket("read-key", "key-1", key_limit, 60)]
        guard = None if case in ("guard absent", "guard appears") else b"7"
        if guard is not None:
            kv.set("guard", guard)
        if case == "peek refuses":  # failed authentications spent the budget
            for _ in range(auth_limit):
                ratelimit.check(kv, peeked, cost=1)
        seen = []
        for i in range(6):
            if case == "guard moved" and i == 2:
                kv.incr("guard")
            if case == "guard appears" and i == 3:
                kv.set("guard", b"1")
            when = 1_700_000_000.0 + i
            if one_step:
                result = ratelimit.check_known(kv, peeked, counted, guard_key="guard",
                                               guard=guard, use=("uses", "last", "key-1", when))
            else:
                result = _general(kv, peeked, counted, guard, "key-1", when)
            seen.append(_state(kv, result))
        return seen

    general, one_step = run(False), run(True)
    assert one_step == general
    outcomes = {(s[0][0], s[2] is not None and s[2][0]) for s in one_step}
    expected = {"peek refuses": {(False, False)}, "guard moved": {(True, True), (True, False)},
                "guard appears": {(True, True), (True, False)}}
    if case in expected:
        assert outcomes == expected[case]
    else:  # admitted until a counted bucket is full, refused after
        assert outcomes == {(True, True), (True, False)}


def test_one_step_check_fails_closed_when_redis_is_unreachable():
    from secops.embedded import free_port

    dead = redis.Redis(port=free_port(), socket_connect_timeout=0.5, socket_timeout=0.5)
    with pytest.raises(Unavailable):
        ratelimit.check_known(dead, [Bucket("a", "b", 1, 1)], [Bucket("c", "d", 1, 1)],
                              guard_key="g", guard=None, use=("u", "l", "k", 1.0))
