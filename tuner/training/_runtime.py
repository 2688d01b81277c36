"""Process settings of the training backend: which device a worker trains on, and threads.

They must be applied before the backend runs its first op, so workers call
:func:`configure_device` before loading any model.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator

from tuner.errors import TunerError
from tuner.training._backend import active_backend

log = logging.getLogger(__name__)


@contextlib.contextmanager
def native_stderr_hidden() -> Iterator[None]:
    """Hide what TensorFlow's C++ core writes straight to file descriptor 2.

    At import and device discovery it logs INFO lines (and, on CPU-only machines with a
    CUDA build, a cuInit "error") before any logging setting applies; users read them
    as failures in front of the progress display.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def import_backend_quietly() -> None:
    """Import TensorFlow now, its start-up chatter hidden, when it is the backend."""
    if active_backend() == "tensorflow" and "tensorflow" not in sys.modules:
        with native_stderr_hidden(), contextlib.suppress(ImportError):
            import tensorflow  # noqa: F401


_configured_device: str | None = None


def configure_device(
    threads: int | None = None, gpu: int | None = None, compile_cache: str | None = None
) -> str:
    """Pin this process to one GPU (memory taken as needed, so workers can share it) or the CPU.

    Returns the logical device name training will use, e.g. ``GPU:0`` or ``CPU:0``.
    Applied once per process: backends refuse these settings after their first op, so a
    later call (the report after a launch) gets the device chosen the first time. With
    the JAX backend it also sets XLA's persistent compilation cache (``compile_cache``: a
    folder, ``off``, or None for ``$TUNER_COMPILE_CACHE``, else the user cache; see
    :mod:`tuner.training._compile_cache`); TensorFlow has none, and ignores it.
    """
    global _configured_device
    if _configured_device is not None:
        return _configured_device
    if threads is not None and threads <= 0:
        raise TunerError(f"--threads must be positive, got {threads}")
    if active_backend() == "jax":
        _configured_device = _configure_jax(threads, gpu, compile_cache)
        return _configured_device
    import tensorflow as tf

    # Each grid point has its own model and so its own traced graph; TensorFlow's
    # "excessive retracing" warning misreads that as a bug.
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    if threads is not None:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(max(1, min(2, threads)))
        except RuntimeError:
            # TensorFlow already ran an op in this process (a notebook that trained
            # something first): its thread pools are fixed now, and training still works.
            log.warning(
                "--threads %d not applied: TensorFlow already started in this process", threads
            )
    with native_stderr_hidden():
        gpus = tf.config.list_physical_devices("GPU")
    if gpu is not None:
        if gpu < 0 or gpu >= len(gpus):
            raise TunerError(
                f"--gpu {gpu}: this machine has {len(gpus)} visible GPU(s); "
                "pick an index below that, or leave --gpu out to use the CPU/default"
            )
        gpus = [gpus[gpu]]
        tf.config.set_visible_devices(gpus, "GPU")
    for device in gpus:
        # Without growth, the first worker would reserve the whole card for itself.
        tf.config.experimental.set_memory_growth(device, True)
    _configured_device = "GPU:0" if gpus else "CPU:0"
    log.info("training on %s (%s)", _configured_device, gpus[0].name if gpus else "CPU")
    return _configured_device


def _configure_jax(threads: int | None, gpu: int | None, compile_cache: str | None) -> str:
    if "jax" not in sys.modules:
        # Like TensorFlow's memory growth: without it the first worker takes 75% of the card.
        os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
        if threads is not None:
            flags = os.environ.get("XLA_FLAGS", "")
            os.environ["XLA_FLAGS"] = (
                f"{flags} --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads={threads}"
            ).strip()
    import jax

    from tuner.training._compile_cache import enable_compile_cache

    enable_compile_cache(compile_cache)
    gpus = [device for device in jax.devices() if device.platform == "gpu"]
    if gpu is not None:
        if gpu < 0 or gpu >= len(gpus):
            raise TunerError(
                f"--gpu {gpu}: this machine has {len(gpus)} visible GPU(s); "
                "pick an index below that, or leave --gpu out to use the CPU/default"
            )
        jax.config.update("jax_default_device", gpus[gpu])  # type: ignore[no-untyped-call]
    device = "GPU:0" if gpus else "CPU:0"
    log.info("training on %s with JAX (%s)", device, gpus[gpu or 0] if gpus else "CPU")
    return device
