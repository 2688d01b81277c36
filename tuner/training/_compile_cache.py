"""XLA's persistent compilation cache for the JAX backend: compiled programs kept on disk.

Invariant: only a JAX process touches the cache, and it does so once, before its first
compilation (from :func:`tuner.training.configure_device`); choosing the folder imports
nothing, so a TensorFlow process, ``tuner status`` or ``--help`` never load JAX.

The folder is ``--compile-cache DIR`` (``$TUNER_COMPILE_CACHE``), else
``$XDG_CACHE_HOME/tuner/xla``, else ``~/.cache/tuner/xla``; ``off`` turns the cache off.
One folder serves every study, storage and worker on a machine: an entry's key is a hash
of the program, its compile options, the device kind and the jaxlib version, so a program
is only ever reused where it was compiled for the same thing.

Sharing between processes: tuner sets a size limit (:data:`MAX_CACHE_BYTES`), which makes
JAX's cache take a file lock (``.lockfile`` in the folder, the ``filelock`` package)
around every read, write and eviction, so a worker never reads an entry another is still
writing. (Without a limit, JAX 0.10 writes entries in place, unlocked; a torn read is
then only a warning and a recompile, never a wrong program.) Anyone who can write to the
folder can make tuner's workers run code, as with any compilation cache: it is created
readable by its owner only.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path

from tuner.errors import TunerError

log = logging.getLogger(__name__)

COMPILE_CACHE_OFF = "off"
"""The ``--compile-cache`` value that turns the persistent cache off."""

COMPILE_CACHE_ENV = "TUNER_COMPILE_CACHE"
"""The variable read when ``--compile-cache`` is not given."""

MAX_CACHE_BYTES = 4 * 1024**3
"""The cache's size limit; least recently used entries go first beyond it. Setting any
limit is also what makes JAX lock the folder between processes (see the module text)."""

_enabled: Path | None = None


def default_compile_cache(environ: Mapping[str, str] | None = None) -> Path:
    """The user cache's folder for compiled programs: ``$XDG_CACHE_HOME/tuner/xla``,
    else ``~/.cache/tuner/xla``."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_CACHE_HOME") or ""
    root = Path(base) if os.path.isabs(base) else Path.home() / ".cache"
    return root / "tuner" / "xla"


def compile_cache_folder(
    value: str | None, environ: Mapping[str, str] | None = None
) -> Path | None:
    """The folder ``--compile-cache value`` names, or None for ``off``.

    Args:
        value: The option (None: ``$TUNER_COMPILE_CACHE``, else the user cache).
        environ: The environment to read (default: this process's).

    Returns:
        The folder to cache in, or None when the cache is turned off.
    """
    env = os.environ if environ is None else environ
    chosen = value if value is not None else (env.get(COMPILE_CACHE_ENV) or None)
    if chosen is None:
        return default_compile_cache(env)
    if chosen.strip().lower() == COMPILE_CACHE_OFF:
        return None
    return Path(chosen).expanduser()


def prepare_compile_cache(value: str | None = None) -> Path | None:
    """The folder ``--compile-cache value`` names, created and checked writable (without
    importing JAX, so a launch can refuse a bad folder before any work); None for ``off``.

    Raises:
        TunerError: The folder cannot be created or written to.
    """
    folder = compile_cache_folder(value)
    if folder is None:
        return None
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise TunerError(
            f"--compile-cache {folder}: cannot create it ({exc.strerror or exc}); "
            f"give a writable folder, or '{COMPILE_CACHE_OFF}'"
        ) from None
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        raise TunerError(
            f"--compile-cache {folder}: not a writable folder; "
            f"give a writable folder, or '{COMPILE_CACHE_OFF}'"
        )
    return folder


def enable_compile_cache(value: str | None = None) -> Path | None:
    """Point this JAX process's compilation cache at the folder ``value`` names.

    Call it before the first compilation; later calls return the first call's folder.
    Every program tuner compiles is kept, however quick to compile or small: on a CPU
    most compile in under JAX's default threshold of one second.

    Args:
        value: ``--compile-cache``: a folder, ``off``, or None for the default.

    Returns:
        The folder in use, or None when the cache is off.

    Raises:
        TunerError: The folder cannot be created or written to.
    """
    global _enabled
    if _enabled is not None:
        return _enabled
    folder = prepare_compile_cache(value)
    if folder is None:
        return None
    import jax

    jax.config.update("jax_compilation_cache_dir", str(folder))  # type: ignore[no-untyped-call]
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)  # type: ignore[no-untyped-call]
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)  # type: ignore[no-untyped-call]
    jax.config.update("jax_compilation_cache_max_size", MAX_CACHE_BYTES)  # type: ignore[no-untyped-call]
    log.info("XLA compilation cache in %s", folder)
    _enabled = folder
    return folder
