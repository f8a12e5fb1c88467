"""The status bodies at scale: one encoding of the session's shared status per tick, the same text as before."""

from __future__ import annotations

import json
from typing import Any

import pytest

from horde.runners.status import WorkerStatus
from horde.session import RunStatus
from horde.web import payloads
from horde.web.app import _dumps
from tests.web.conftest import WebCtx


def cluster_status(n: int, version: int = 1, cpu: float = 20.0) -> RunStatus:
    rows = tuple(
        WorkerStatus(f"host_{i:04d}", i, "running", 10, {"Shop": 10}, cpu, 50 << 20, 0.001, 1700000000.0 + i)
        for i in range(n)
    )
    return RunStatus(
        state="running",
        user_count=10 * n,
        user_classes_count={"Shop": 10 * n},
        target_user_count=10 * n,
        spawn_rate=100.0,
        host="http://target",
        start_time=1700000000.0,
        run_time=None,
        stop_reason=None,
        workers=rows,
        warnings=(),
        load=f"{10 * n} users at 100/s",
        distributed=True,
        version=version,
    )


def count_to_dict(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = RunStatus.to_dict

    def to_dict(self: RunStatus) -> dict[str, Any]:
        calls.append(1)
        return real(self)

    monkeypatch.setattr(RunStatus, "to_dict", to_dict)
    return calls


async def test_api_status_is_the_status_dict_encoded_as_before(web: WebCtx) -> None:
    ui = web.server.ui
    r = await web.client.get("/api/status")
    assert r.status == 200 and r.content_type == "application/json"
    text = await r.text()
    assert text == _dumps(json.loads(text))  # sorted keys, the usual separators
    body = json.loads(text)
    expected = ui.status_dict()
    assert body.keys() == expected.keys()
    assert body["workers"] == expected["workers"] and body["version"] == expected["version"]
    assert ui.status_text() == _dumps(ui.status_dict())


def test_a_shared_status_is_encoded_once_and_a_new_one_again(
    web: WebCtx, monkeypatch: pytest.MonkeyPatch
) -> None:
    ui = web.server.ui
    current = [cluster_status(50)]
    monkeypatch.setattr(web.run, "status", lambda: current[0])
    calls = count_to_dict(monkeypatch)
    first = ui.status_text()
    assert ui.status_text() == first and ui.tick_payload() and len(calls) == 1  # one encoding, three bodies
    web.env.stats.log_request("GET", "/x", 5.0, 10)
    assert json.loads(ui.status_text())["totals"]["num_requests"] == 1  # the totals are read live
    current[0] = cluster_status(50, version=2, cpu=80.0)  # the session built the next tick's status
    body = json.loads(ui.status_text())
    assert len(calls) == 2 and body["version"] == 2 and body["workers"][0]["cpu_percent"] == 80.0
    assert body["health"]["cpu_percent"] == 80.0 and body["worker_count"] == 50


def test_the_push_and_stats_requests_splice_the_same_texts_they_used_to_re_encode(
    web: WebCtx, monkeypatch: pytest.MonkeyPatch
) -> None:
    ui = web.server.ui
    status = cluster_status(30)
    monkeypatch.setattr(web.run, "status", lambda: status)
    stats_text = ui.stats_requests_text()
    before = payloads.stats_requests(
        web.env.stats, state="running", user_count=status.user_count, workers=list(status.workers)
    )
    assert stats_text == _dumps(before)  # the Locust worker rows spliced in: byte for byte
    text = ui.tick_payload()
    assert text == _dumps(json.loads(text))
    push = json.loads(text)
    assert push["status"] == ui.status_dict() and push["stats"] == json.loads(stats_text)
    assert set(push) == {"history_id", "status", "stats", "points", "markers"}


def test_while_someone_reads_the_status_each_tick_encodes_it_ahead_of_the_next_request(
    web: WebCtx, monkeypatch: pytest.MonkeyPatch
) -> None:
    ui = web.server.ui
    calls = count_to_dict(monkeypatch)
    web.run.tick()  # nobody has read the status yet: the tick encodes nothing
    assert calls == []
    ui.status_text()
    assert len(calls) == 1
    web.run.tick()  # a reader now: the tick's new status is encoded at once...
    assert len(calls) == 2
    body = json.loads(ui.status_text())  # ...and the request after it only splices
    assert len(calls) == 2 and body["version"] == web.run.status().version
