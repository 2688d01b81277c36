"""``tuner launch --gpus``: the devices found, the workers each gets, and bad requests refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from rich.console import Console

from tests.helpers import run_tuner
from tuner.api import WorkerOptions, _local_workers
from tuner.api._gpus import (
    GpuRequest,
    parse_gpus,
    select_gpus,
    visible_gpus,
    worker_assignment,
)
from tuner.errors import TunerError

H200S = "GPU 0: NVIDIA H200 (UUID: GPU-aaa)\nGPU 1: NVIDIA H200 (UUID: GPU-bbb)\n"


@pytest.mark.parametrize(
    ("value", "request_"),
    [
        ("all", GpuRequest()),
        (" ALL ", GpuRequest()),
        ("2", GpuRequest(count=2)),
        ("0,2", GpuRequest(indices=(0, 2))),
        ("3, 1", GpuRequest(indices=(3, 1))),
        ("2,", GpuRequest(indices=(2,))),
    ],
)
def test_gpus_values(value: str, request_: GpuRequest) -> None:
    assert parse_gpus(value) == request_


@pytest.mark.parametrize("value", ["", "0", "-1", "two", "0,,1", ",", "1,1", "0,x", "1.5", "99999"])
def test_bad_gpus_values_are_one_line(value: str) -> None:
    with pytest.raises(TunerError, match=r"^--gpus ") as err:
        parse_gpus(value)
    assert "\n" not in str(err.value)


def test_devices_come_from_cuda_visible_devices_first(tmp_path: Path) -> None:
    def never() -> str:
        raise AssertionError("nvidia-smi must not run when CUDA_VISIBLE_DEVICES is set")

    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "2,3"}, never, tmp_path) == (
        ["2", "3"],
        "CUDA_VISIBLE_DEVICES",
    )
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "GPU-aaa"}, never, tmp_path)[0] == ["GPU-aaa"]
    for hidden in ("", "-1", " "):
        assert visible_gpus({"CUDA_VISIBLE_DEVICES": hidden}, never, tmp_path)[0] == []
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "1,-1,2"}, never, tmp_path)[0] == ["1"]


def test_devices_from_nvidia_smi_then_the_driver(tmp_path: Path) -> None:
    assert visible_gpus({}, lambda: H200S, tmp_path) == (["0", "1"], "nvidia-smi -L")
    for bus in ("0000:18:00.0", "0000:2a:00.0", "0000:3b:00.0"):
        (tmp_path / bus).mkdir()
    assert visible_gpus({}, lambda: None, tmp_path) == (["0", "1", "2"], str(tmp_path))
    assert visible_gpus({}, lambda: None, tmp_path / "absent")[0] == []


def test_selection_among_the_visible() -> None:
    visible = ["4", "5", "6"]
    assert select_gpus(GpuRequest(), visible, "here") == ["4", "5", "6"]
    assert select_gpus(GpuRequest(count=2), visible, "here") == ["4", "5"]
    assert select_gpus(GpuRequest(indices=(2, 0)), visible, "here") == ["6", "4"]
    with pytest.raises(TunerError, match=r"^--gpus 4: only 3 GPU\(s\) visible \(here\)"):
        select_gpus(GpuRequest(count=4), visible, "here")
    with pytest.raises(TunerError, match=r"^--gpus: no device 3; 3 GPU\(s\) visible"):
        select_gpus(GpuRequest(indices=(0, 3)), visible, "here")
    with pytest.raises(TunerError, match=r"^--gpus: no GPU is visible on this machine \(x\)"):
        select_gpus(GpuRequest(), [], "x")


def test_assignment_pins_k_workers_to_each_device() -> None:
    assert worker_assignment(["0"], 1) == [{"CUDA_VISIBLE_DEVICES": "0"}]
    assert worker_assignment(["0", "2"], 3) == [
        {"CUDA_VISIBLE_DEVICES": device} for device in ["0", "2", "0", "2", "0", "2"]
    ]
    for devices, per in ((["0"], 4), (["1", "3", "5", "7"], 2), (["GPU-a", "GPU-b"], 1)):
        assigned = worker_assignment(devices, per)
        assert len(assigned) == len(devices) * per
        assert all(set(override) == {"CUDA_VISIBLE_DEVICES"} for override in assigned)
        for device in devices:
            assert sum(o["CUDA_VISIBLE_DEVICES"] == device for o in assigned) == per
    with pytest.raises(ValueError):
        worker_assignment(["0", "0"], 1)
    with pytest.raises(ValueError):
        worker_assignment(["0"], 0)


def test_each_worker_differs_only_in_its_device(monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[dict[str, str]] = []

    class Started:
        def __init__(self, command: list[str], env: dict[str, str]) -> None:
            started.append(env)

        def wait(self) -> int:
            return 0

        def poll(self) -> int:
            return 0

    monkeypatch.setattr(_local_workers.subprocess, "Popen", Started)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    options = WorkerOptions(storage="sqlite:///x.db")
    overrides = worker_assignment(["0", "1"], 2)
    _local_workers.run_local_workers(["s"], options, 4, Console(quiet=True), overrides)
    assert [env["CUDA_VISIBLE_DEVICES"] for env in started] == ["0", "1", "0", "1"]
    common = {**os.environ, "TUNER_STORAGE": "sqlite:///x.db"}
    for env in started:
        assert {k: v for k, v in env.items() if k != "CUDA_VISIBLE_DEVICES"} == {
            k: v for k, v in common.items() if k != "CUDA_VISIBLE_DEVICES"
        }


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (
            ["--gpus", "all"],
            {"CUDA_VISIBLE_DEVICES": ""},
            "error: --gpus: no GPU is visible on this machine (CUDA_VISIBLE_DEVICES); "
            "leave --gpus out to train on the CPU, or use --workers N\n",
        ),
        (
            ["--gpus", "3"],
            {"CUDA_VISIBLE_DEVICES": "0,1"},
            "error: --gpus 3: only 2 GPU(s) visible (CUDA_VISIBLE_DEVICES); give at most 2, "
            "or all\n",
        ),
        (
            ["--gpus", "zero"],
            {},
            "error: --gpus 'zero': give all, a count such as 2, or device indices such as 0,2 "
            "('2,' for device 2)\n",
        ),
        (
            ["--workers-per-gpu", "2"],
            {},
            "error: --workers-per-gpu needs --gpus (which devices to share)\n",
        ),
        (
            ["--gpus", "all", "--workers", "4"],
            {"CUDA_VISIBLE_DEVICES": "0"},
            "error: --gpus starts --workers-per-gpu workers on each device: leave --workers out\n",
        ),
        (
            ["--gpus", "all", "--gpu", "0"],
            {"CUDA_VISIBLE_DEVICES": "0"},
            "error: --gpu picks one device in this process; with --gpus leave it out\n",
        ),
    ],
)
def test_launch_refuses_gpus_it_cannot_have_before_any_work(
    tmp_path: Path, argv: list[str], env: dict[str, str], message: str
) -> None:
    result = run_tuner(
        "launch", "--variant", "2layer", "--dataset", "absent.npz", *argv, cwd=tmp_path, env=env
    )
    assert (result.returncode, result.stderr) == (2, message)
    # Refused before the data (absent here) was looked at, or a storage or report made.
    assert list(tmp_path.iterdir()) == []


def test_gpu_options_in_help(tmp_path: Path) -> None:
    result = run_tuner("launch", "--help", cwd=tmp_path, env={"COLUMNS": "200"})
    for flag in ("--gpus", "--workers-per-gpu", "--compile-cache"):
        assert flag in result.stdout


def test_compile_cache_is_forwarded_to_workers() -> None:
    argv = WorkerOptions(compile_cache="/shared/xla").worker_argv()
    assert argv[argv.index("--compile-cache") + 1] == "/shared/xla"
    assert "--compile-cache" not in WorkerOptions().worker_argv()


def test_api_refuses_bad_gpus_in_one_line() -> None:
    from tuner.api import LaunchOptions

    with pytest.raises(TunerError, match=r"^--gpus 'x'"):
        LaunchOptions(gpus="x")
    assert LaunchOptions(gpus="0,2").gpus == "0,2"
