"""429 + Retry-After, service protection limits, transient faults, bounded parallelism."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable

import pytest

from sandbox.dataverse import DataverseSandbox
from shared.clients.dataverse import DataverseClient, build_verified_session
from shared.http import ApiError, Outcome, RetryPolicy, TransportError
from tests.fixtures.dataverse import VirtualSleep


def test_429_with_retry_after_is_honoured_and_the_read_recovers(
    dataverse_sandbox: DataverseSandbox, dataverse_client: DataverseClient, virtual_sleep: VirtualSleep
) -> None:
    dataverse_sandbox.seed_contacts(10)
    dataverse_sandbox.inject_fault("/api/data/v9.2/contacts", "429", count=2, retry_after=7)

    pages = list(dataverse_client.iter_changes("contacts", ["lastname"]))

    assert sum(len(p.rows) for p in pages) == 10
    assert virtual_sleep.waits == [7, 7]
    statuses = [r["status"] for r in dataverse_sandbox.requests() if r["path"].endswith("/contacts")]
    assert statuses == [429, 429, 200]


def test_request_budget_answers_the_documented_error_and_the_client_waits_it_out(
    dataverse_sandbox: DataverseSandbox, dataverse_client: DataverseClient, virtual_sleep: VirtualSleep
) -> None:
    dataverse_client.total_record_count(["contact"])  # token and metadata out of the way
    dataverse_sandbox.set_throttle("requests", limit=3, window_seconds=60)

    for _ in range(5):
        dataverse_client.total_record_count(["contact"])

    throttled = [r for r in dataverse_sandbox.requests() if r["status"] == 429]
    assert throttled and {r["error_code"] for r in throttled} == {"0x80072322"}
    assert virtual_sleep.waits and all(0 < w <= 60 for w in virtual_sleep.waits)


def test_sandbox_429_shape_follows_api_limits(dataverse_sandbox: DataverseSandbox) -> None:
    dataverse_sandbox.set_throttle("requests", limit=1, window_seconds=300)
    session = build_verified_session(str(dataverse_sandbox.ca_path))
    headers = {"Authorization": f"Bearer {dataverse_sandbox.issue_token()}"}
    assert session.get(f"{dataverse_sandbox.api_url}WhoAmI", headers=headers, timeout=10).status_code == 200

    response = session.get(f"{dataverse_sandbox.api_url}WhoAmI", headers=headers, timeout=10)

    assert response.status_code == 429
    assert 0 < int(response.headers["Retry-After"]) <= 300
    assert response.json()["error"] == {
        "code": "0x80072322",
        "message": "Number of requests exceeded the limit of 1 over time window of 300 seconds.",
    }
    dataverse_sandbox.advance_clock(301)
    assert session.get(f"{dataverse_sandbox.api_url}WhoAmI", headers=headers, timeout=10).status_code == 200


def test_execution_time_limit_uses_its_own_code(dataverse_sandbox: DataverseSandbox) -> None:
    dataverse_sandbox.set_throttle("execution_time", limit=0.001, window_seconds=300)
    session = build_verified_session(str(dataverse_sandbox.ca_path))
    headers = {"Authorization": f"Bearer {dataverse_sandbox.issue_token()}"}
    session.get(f"{dataverse_sandbox.api_url}WhoAmI", headers=headers, timeout=10)

    response = session.get(f"{dataverse_sandbox.api_url}WhoAmI", headers=headers, timeout=10)

    assert response.status_code == 429 and response.json()["error"]["code"] == "0x80072321"


def test_a_client_that_keeps_getting_429_gives_up_rate_limited(
    dataverse_sandbox: DataverseSandbox, make_dataverse_client: Callable[..., DataverseClient]
) -> None:
    # 429s are bounded by the wait cap, not the attempt count: 4 waits of 5 s fit in 20 s, a fifth does not.
    client = make_dataverse_client(policy=RetryPolicy(max_attempts=3, max_total_wait=20))
    dataverse_sandbox.inject_fault("RetrieveTotalRecordCount", "429", count=10, retry_after=5)

    with pytest.raises(ApiError) as caught:
        client.total_record_count(["contact"])

    assert caught.value.outcome is Outcome.RATE_LIMITED and caught.value.code == "0x80072322"
    assert [r["status"] for r in dataverse_sandbox.requests()].count(429) == 5


@pytest.mark.parametrize("kind", ["500", "503", "drop"])
def test_transient_faults_are_retried(
    dataverse_sandbox: DataverseSandbox, dataverse_client: DataverseClient, virtual_sleep: VirtualSleep, kind: str
) -> None:
    dataverse_client.total_record_count(["contact"])
    dataverse_sandbox.inject_fault("RetrieveTotalRecordCount", kind, count=2)

    assert dataverse_client.total_record_count(["contact"]) == {"contact": 0}
    assert len(virtual_sleep.waits) == 2


def test_a_stalled_answer_times_out_and_is_retried(
    dataverse_sandbox: DataverseSandbox,
    make_dataverse_client: Callable[..., DataverseClient],
    virtual_sleep: VirtualSleep,
) -> None:
    client = make_dataverse_client(timeout=(2.0, 0.5))
    client.total_record_count(["contact"])
    dataverse_sandbox.inject_fault("RetrieveTotalRecordCount", "stall", count=1, stall_seconds=3)

    assert client.total_record_count(["contact"]) == {"contact": 0}
    assert len(virtual_sleep.waits) == 1  # one read timeout, one retry
    assert not dataverse_sandbox.faults.take("GET", "RetrieveTotalRecordCount"), "the stall was used"


def test_drops_beyond_the_attempt_limit_surface_as_transport_error(
    dataverse_sandbox: DataverseSandbox, make_dataverse_client: Callable[..., DataverseClient]
) -> None:
    client = make_dataverse_client(policy=RetryPolicy(max_attempts=2))
    client.total_record_count(["contact"])
    dataverse_sandbox.inject_fault("RetrieveTotalRecordCount", "drop", count=5)

    with pytest.raises(TransportError):
        client.total_record_count(["contact"])


def test_parallelism_is_bounded_by_the_setting(
    dataverse_sandbox: DataverseSandbox, make_dataverse_client: Callable[..., DataverseClient]
) -> None:
    client = make_dataverse_client(max_parallel=3)
    client.total_record_count(["contact"])
    # Slow answers make requests overlap; the sandbox refuses a 4th concurrent request at once.
    dataverse_sandbox.inject_fault("/api/data/v9.2/contacts", "stall", count=12, method="PATCH", stall_seconds=0.2)
    dataverse_sandbox.set_throttle("concurrency", limit=3)
    ids = [str(uuid.uuid4()) for _ in range(12)]

    results = client.map_parallel(lambda i: client.upsert("contacts", i, {"lastname": "P"}), ids)

    assert results == [None] * 12
    assert dataverse_sandbox.stats()["max_in_flight"] == 3
    assert all(r["status"] != 429 for r in dataverse_sandbox.requests())


def test_concurrency_limit_is_enforced_at_once_by_the_sandbox(dataverse_sandbox: DataverseSandbox) -> None:
    dataverse_sandbox.set_throttle("concurrency", limit=1)
    dataverse_sandbox.inject_fault("WhoAmI", "stall", count=1, stall_seconds=1.0)
    token = dataverse_sandbox.issue_token()
    url = f"{dataverse_sandbox.api_url}WhoAmI"

    def call() -> int:
        session = build_verified_session(str(dataverse_sandbox.ca_path))
        return session.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10).status_code

    slow = threading.Thread(target=call)
    slow.start()
    while dataverse_sandbox.stats()["max_in_flight"] < 1:
        threading.Event().wait(0.01)
    assert call() == 429
    slow.join()
    assert [r.get("error_code") for r in dataverse_sandbox.requests() if r["status"] == 429] == ["0x80072326"]
