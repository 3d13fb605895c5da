"""``[streams.cpus]``: the config refuses what cannot be a CPU set, the runner refuses a
CPU this process may not use (naming the field), and each pinned thread really runs
where it was put (``os.sched_getaffinity`` read from inside the thread)."""

from __future__ import annotations

import os
import threading

import pytest
from pydantic import ValidationError

from edge.config.streams import StreamConfig, StreamCpus
from edge.errors import ConfigError
from edge.pipeline import affinity

linux = pytest.mark.skipif(
    affinity.allowed_cpus() is None, reason="this OS cannot pin threads (no sched_setaffinity)"
)


@pytest.mark.parametrize(
    ("cpus", "says"),
    [
        ({"infer": [0, 0]}, "CPU listed twice"),
        ({"infer": [-1]}, "greater than or equal to 0"),
        ({"infer": []}, "at least 1 item"),
        ({"infer": ["zero"]}, "valid integer"),
        ({"infer": [99999]}, "less than or equal to 4095"),
        ({"decode": [0]}, "Extra inputs are not permitted"),
        ({"infer": 0}, "valid list"),
    ],
    ids=["repeated", "negative", "empty", "not a number", "too large", "unknown part", "scalar"],
)
def test_the_config_refuses_what_is_not_a_cpu_set(cpus: dict[str, object], says: str) -> None:
    with pytest.raises(ValidationError, match=says):
        StreamConfig(name="cam", source="0", detectors=["face"], cpus=cpus)  # type: ignore[arg-type]


def test_parts_leave_out_what_is_unset() -> None:
    assert StreamCpus(infer=[0], post=[1, 0]).parts() == {"infer": {0}, "post": {0, 1}}
    assert affinity.check("cam", StreamCpus()) == {}
    assert affinity.check("cam", None) == {}


@linux
def test_a_cpu_this_process_may_not_use_is_a_config_error() -> None:
    allowed = affinity.allowed_cpus()
    assert allowed is not None
    missing = max(allowed) + 1
    with pytest.raises(ConfigError, match=rf"streams\.cam\.cpus\.post: CPU {missing} is not one"):
        affinity.check("cam", StreamCpus(infer=[min(allowed)], post=[missing]))


def test_without_sched_setaffinity_pinning_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(affinity, "allowed_cpus", lambda: None)
    with pytest.raises(ConfigError, match=r"streams\.cam\.cpus: pinning threads .* needs Linux"):
        affinity.check("cam", StreamCpus(infer=[0]))
    assert affinity.check("cam", None) == {}  # nothing asked: nothing refused


@linux
def test_pin_sets_the_calling_threads_cpus_only() -> None:
    allowed = affinity.allowed_cpus()
    assert allowed is not None
    one = {min(allowed)}
    seen: dict[str, set[int]] = {}

    def worker() -> None:
        affinity.pin(one)
        seen["worker"] = set(os.sched_getaffinity(0))

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert seen["worker"] == one
    assert set(os.sched_getaffinity(0)) == allowed  # this thread was left alone
