"""TensorFlow process settings; each case runs in a fresh interpreter, because TensorFlow
accepts thread settings only before its first op."""

import subprocess
import sys

import pytest


def run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_cpu_machine_trains_on_cpu_with_capped_threads() -> None:
    result = run(
        "import tensorflow as tf\n"
        "from tuner.training import configure_device\n"
        "device = configure_device(threads=1)\n"
        "print(device, tf.config.threading.get_intra_op_parallelism_threads())\n"
    )
    assert result.returncode == 0, result.stderr
    gpus = run("import tensorflow as tf; print(len(tf.config.list_physical_devices('GPU')))")
    expected = "GPU:0" if gpus.stdout.strip() not in ("", "0") else "CPU:0"
    assert result.stdout.split()[-2:] == [expected, "1"]


@pytest.mark.parametrize(
    ("call", "message"),
    [("configure_device(gpu=7)", "--gpu 7"), ("configure_device(threads=0)", "--threads")],
)
def test_bad_settings_are_user_errors(call: str, message: str) -> None:
    result = run(
        "from tuner.errors import TunerError\n"
        "from tuner.training import configure_device\n"
        f"try:\n    {call}\nexcept TunerError as exc:\n    print('ERROR', exc)\n"
    )
    assert result.returncode == 0, result.stderr
    assert "ERROR" in result.stdout and message in result.stdout


def test_settings_apply_once_so_a_report_after_launch_does_not_fail() -> None:
    # Without the once-only rule, the second call would change thread settings after
    # TensorFlow started, which it refuses with a RuntimeError.
    result = run(
        "import tensorflow as tf\n"
        "from tuner.training import configure_device\n"
        "first = configure_device(threads=1)\n"
        "tf.constant(1.0) + 1.0\n"
        "print(first, configure_device(threads=2))\n"
    )
    assert result.returncode == 0, result.stderr
    first, again = result.stdout.split()[-2:]
    assert first == again


def test_threads_after_tensorflow_started_elsewhere_warn_and_train_on() -> None:
    # A notebook that ran TensorFlow before its first launch: the thread pools are fixed,
    # so the setting is skipped with a warning instead of failing the launch.
    result = run(
        "import logging, tensorflow as tf\n"
        "logging.basicConfig()\n"
        "from tuner.training import configure_device\n"
        "tf.constant(1.0) + 1.0\n"
        "device = configure_device(threads=3)\n"
        "print(device, tf.config.threading.get_intra_op_parallelism_threads())\n"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-1] != "3"
    assert "--threads 3 not applied: TensorFlow already started" in result.stderr
