"""Process faults against real gunicorn under load: stopping, a killed worker, a stall."""

import os
import signal
import time
from collections.abc import Callable

import httpx
import pytest

from tests.reliability.test_database_faults import an_account_to_read, server_env
from tests.support.gunicorn import TEST_APP, GunicornServer
from tests.support.load import SteadyLoad

Report = Callable[[str], None]


def test_sigterm_under_load_completes_every_accepted_request_and_exits_zero(
    database_url: str, report: Report
) -> None:
    env = server_env(
        database_url,
        SHUTDOWN_DRAIN_SECONDS="1",
        REQUEST_TIMEOUT_SECONDS="5",
        GUNICORN_GRACEFUL_TIMEOUT="10",
    )
    with GunicornServer(env) as server:
        path, headers = an_account_to_read(server.base_url)
        # A connection per request: a refused connect then means "not accepted", and any
        # other failure is an accepted request that was dropped.
        with SteadyLoad(
            server.base_url, path, clients=16, headers=headers, keep_alive=False
        ) as load:
            time.sleep(2)
            stopping = time.monotonic()
            server.process.send_signal(signal.SIGTERM)
            code = server.process.wait(timeout=15)
            stopped = time.monotonic() - stopping
            time.sleep(0.3)

    after = load.between(stopping, time.monotonic())
    served = [o for o in load.outcomes if o.status is not None]
    refused = [o for o in after if o.error == "ConnectError"]
    unanswered = [o for o in load.outcomes if o.status is None and o.error != "ConnectError"]
    # What the app began, it finished: one access line per request it started.
    started_by_app = [
        line for line in server.lines if '"event":"request"' in line and f'"path":"{path}"' in line
    ]
    report(
        f"SIGTERM under 16 clients: exit {code} after {stopped:.2f} s (graceful timeout 10 s); "
        f"{len(served)} requests served, {sum(o.status == 200 for o in after)} of them after the "
        f"signal, all {sorted({o.status for o in served if o.status})}; the app logged "
        f"{len(started_by_app)} and answered every one; {len(refused)} refused at connect "
        f"once the listener closed; {len(unanswered)} connections closed before their "
        f"request was read"
    )
    assert code == 0
    assert stopped < 10
    assert {o.status for o in served} == {200}
    assert len(started_by_app) == len(served)  # no request the app began was lost


def test_a_killed_worker_is_replaced_while_the_service_keeps_answering(
    database_url: str, report: Report
) -> None:
    with GunicornServer(server_env(database_url)) as server:
        path, headers = an_account_to_read(server.base_url)
        before = server.worker_pids()
        with SteadyLoad(server.base_url, path, clients=8, headers=headers) as load:
            time.sleep(1)
            killed_at = time.monotonic()
            os.kill(before[0], signal.SIGKILL)
            replaced = None
            while time.monotonic() - killed_at < 15:
                workers = server.worker_pids()
                if len(workers) == 2 and before[0] not in workers:
                    replaced = time.monotonic() - killed_at
                    break
                time.sleep(0.05)
            time.sleep(1)

    after = load.between(killed_at, time.monotonic())
    errors = [o for o in after if o.status != 200]
    report(
        f"SIGKILL to one of 2 workers under 8 clients: replaced after {replaced:.2f} s; "
        f"{len(after)} requests after the kill, {sum(o.status == 200 for o in after)} x 200, "
        f"{len(errors)} lost with the killed worker ({sorted({str(o.error) for o in errors})})"
    )
    assert replaced is not None
    assert {o.status for o in errors} <= {None}  # lost in flight, never a 5xx
    assert len(errors) <= 8  # at most what was in flight on the killed worker
    assert sum(o.status == 200 for o in load.between(killed_at + replaced, time.monotonic())) > 0


def test_a_streaming_response_that_stalls_past_the_deadline_is_cut(
    database_url: str, report: Report
) -> None:
    env = server_env(database_url, WEB_CONCURRENCY="1", REQUEST_TIMEOUT_SECONDS="1")
    with GunicornServer(env, app=TEST_APP) as server:
        steady = httpx.get(f"{server.base_url}/test/stream?chunks=5&interval=0.5", timeout=10)
        started = time.monotonic()
        received: list[str] = []
        with (
            pytest.raises(httpx.RemoteProtocolError),
            httpx.stream("GET", f"{server.base_url}/test/stream?chunks=2&interval=5") as stalled,
        ):
            received += stalled.iter_lines()
        cut_after = time.monotonic() - started

    report(
        f"1 s deadline: a stream of 5 chunks over 2 s arrived whole ({steady.status_code}); "
        f"one that stalled 5 s after its first chunk was cut after {cut_after:.2f} s"
    )
    assert steady.text == "".join(f"chunk {n}\n" for n in range(5))
    assert received == ["chunk 0"]
    assert cut_after < 1 + 1
