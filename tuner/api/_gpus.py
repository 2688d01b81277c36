"""``tuner launch --gpus``: which GPUs this machine has, and which local worker gets which.

Invariant: each worker ``--gpus`` starts differs from the launching process in one
environment variable only, ``CUDA_VISIBLE_DEVICES``, which names exactly one device; every
chosen device gets ``--workers-per-gpu`` workers and no device more. Discovering the
devices imports no framework (CUDA_VISIBLE_DEVICES if set, else ``nvidia-smi -L``, else
``/proc/driver/nvidia/gpus``), so the launching process never takes a GPU of its own.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tuner.errors import TunerError
from tuner.study import shown

ALL_GPUS = "all"
"""The ``--gpus`` value that takes every visible device."""

NVIDIA_PROC = Path("/proc/driver/nvidia/gpus")
"""One folder per GPU the NVIDIA driver found (named by PCI bus id)."""

_LISTED = re.compile(r"^GPU (\d+):", re.MULTILINE)


@dataclass(frozen=True)
class GpuRequest:
    """What ``--gpus`` asked for: every device, the first ``count``, or these positions.

    Attributes:
        count: The first N visible devices (None: not asked so).
        indices: Positions among the visible devices, as nvidia-smi numbers them when
            CUDA_VISIBLE_DEVICES is unset (None: not asked so).
    """

    count: int | None = None
    indices: tuple[int, ...] | None = None

    @property
    def everything(self) -> bool:
        """Whether every visible device is asked for."""
        return self.count is None and self.indices is None


def parse_gpus(value: str) -> GpuRequest:
    """Read ``--gpus``: ``all``, a count ``N`` or a list of indices ``0,2`` (``2,``: one).

    Raises:
        TunerError: Anything else, in one line.
    """
    text = value.strip()
    if text.lower() == ALL_GPUS:
        return GpuRequest()
    hint = "give all, a count such as 2, or device indices such as 0,2 ('2,' for device 2)"
    if "," in text:
        parts = [part.strip() for part in text.split(",")]
        if parts[-1] == "":
            parts.pop()
        if not parts or not all(part.isdecimal() and len(part) <= 4 for part in parts):
            raise TunerError(f"--gpus {shown(value)}: not a list of device indices; {hint}")
        indices = tuple(int(part) for part in parts)
        if len(set(indices)) != len(indices):
            raise TunerError(f"--gpus {shown(value)}: a device is named twice; {hint}")
        return GpuRequest(indices=indices)
    if text.isdecimal() and len(text) <= 4 and int(text) > 0:
        return GpuRequest(count=int(text))
    raise TunerError(f"--gpus {shown(value)}: {hint}")


def visible_gpus(
    environ: Mapping[str, str] | None = None,
    run: Callable[[], str | None] | None = None,
    proc: Path = NVIDIA_PROC,
) -> tuple[list[str], str]:
    """The devices this machine's workers may use, as CUDA_VISIBLE_DEVICES names them.

    Args:
        environ: The environment (default: this process's); its CUDA_VISIBLE_DEVICES,
            when set, is the answer (an empty value or ``-1``: no device).
        run: Returns ``nvidia-smi -L``'s output, or None when it cannot run (default:
            runs it).
        proc: The driver's folder of GPUs, read when nvidia-smi gives no answer.

    Returns:
        The device names (indices, or the UUIDs CUDA_VISIBLE_DEVICES gave) and where
        they were read from, for messages.
    """
    env = os.environ if environ is None else environ
    given = env.get("CUDA_VISIBLE_DEVICES")
    if given is not None:
        names = [name.strip() for name in given.split(",") if name.strip()]
        # CUDA stops at the first invalid entry; -1 is the usual way to hide every GPU.
        if "-1" in names:
            names = names[: names.index("-1")]
        return names, "CUDA_VISIBLE_DEVICES"
    listing = (run or _nvidia_smi)()
    if listing is not None:
        return _LISTED.findall(listing), "nvidia-smi -L"
    try:
        count = sum(1 for entry in proc.iterdir() if entry.is_dir())
    except OSError:
        count = 0
    return [str(index) for index in range(count)], str(proc)


def _nvidia_smi() -> str | None:
    try:
        result = subprocess.run(
            ["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout if result.returncode == 0 else None


def select_gpus(request: GpuRequest, visible: Sequence[str], source: str) -> list[str]:
    """The visible devices ``request`` names, in its order.

    Raises:
        TunerError: No device is visible, or the request names more or other devices
            than are visible; one line naming what is visible and where that was read.
    """
    where = f"({source})"
    if not visible:
        raise TunerError(
            f"--gpus: no GPU is visible on this machine {where}; "
            "leave --gpus out to train on the CPU, or use --workers N"
        )
    if request.count is not None:
        if request.count > len(visible):
            raise TunerError(
                f"--gpus {request.count}: only {len(visible)} GPU(s) visible {where}; "
                f"give at most {len(visible)}, or all"
            )
        return list(visible[: request.count])
    if request.indices is not None:
        missing = [index for index in request.indices if index >= len(visible)]
        if missing:
            raise TunerError(
                f"--gpus: no device {missing[0]}; {len(visible)} GPU(s) visible {where}, "
                f"indices 0 to {len(visible) - 1}"
            )
        return [visible[index] for index in request.indices]
    return list(visible)


def worker_assignment(devices: Sequence[str], per_device: int) -> list[dict[str, str]]:
    """The environment overrides of the local workers: ``per_device`` per device.

    Workers alternate between devices (0, 1, 0, 1, ...), so every device has its share
    even of the first workers started.

    Args:
        devices: Device names as CUDA_VISIBLE_DEVICES takes them, each once.
        per_device: Workers sharing each device (at least 1).

    Returns:
        One ``{"CUDA_VISIBLE_DEVICES": device}`` per worker, ``len(devices) *
        per_device`` in all.
    """
    if per_device < 1:
        raise ValueError(f"per_device must be at least 1, got {per_device}")
    if len(set(devices)) != len(devices):
        raise ValueError(f"a device is named twice in {list(devices)}")
    return [{"CUDA_VISIBLE_DEVICES": device} for _ in range(per_device) for device in devices]


def gpu_workers(gpus: str, per_device: int) -> list[dict[str, str]]:
    """``--gpus`` and ``--workers-per-gpu`` as the overrides of the workers to start.

    Raises:
        TunerError: The value is malformed, or names devices this machine does not have.
    """
    devices, source = visible_gpus()
    return worker_assignment(select_gpus(parse_gpus(gpus), devices, source), per_device)
