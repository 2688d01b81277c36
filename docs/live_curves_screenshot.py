"""Make docs/live-curves.png: optuna-dashboard showing a running batch's live curves.

A real ``tuner launch`` (2layer grid, Fashion-MNIST slice) trains while ``tuner dashboard``
serves its storage; Debian's headless Chromium takes the picture once every running
trial has a curve of some epochs. Needs dataset-fashion-mnist and chromium (.ci/run
installs both). README's picture comes from this script:

    python docs/live_curves_screenshot.py docs/live-curves.png
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def fetch(url: str) -> object:
    with urllib.request.urlopen(url, timeout=10) as reply:
        return json.loads(reply.read())


def main(out: Path) -> None:
    tuner = [sys.executable, "-m", "tuner"]
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        storage = f"sqlite:///{folder / 'live.db'}"
        launch = subprocess.Popen(
            [
                *tuner,
                "launch",
                "--variant",
                "2layer",
                "--dataset",
                "fashion-mnist",
                "--subset",
                "3000",
                "--epochs",
                "400",
                "--curve-interval",
                "1",
                "--no-report",
                "--storage",
                storage,
            ],
            cwd=folder,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        # The dashboard opens an existing storage only: start it once the launch made one.
        for _ in range(300):
            if (folder / "live.db").exists() or launch.poll() is not None:
                break
            time.sleep(1)
        time.sleep(5)
        port = free_port()
        dashboard = subprocess.Popen(
            [*tuner, "dashboard", "--port", str(port), "--storage", storage],
            cwd=folder,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            study_id = None
            for _ in range(900):
                time.sleep(1)
                if launch.poll() is not None or dashboard.poll() is not None:
                    raise SystemExit("the launch or the dashboard ended before the picture")
                try:
                    studies = fetch(f"{base}/api/studies")["study_summaries"]  # type: ignore[index]
                    study_id = studies[0]["study_id"]
                    trials = fetch(f"{base}/api/studies/{study_id}")["trials"]  # type: ignore[index]
                except Exception:
                    continue
                running = [t for t in trials if t["state"] == "Running"]
                if running and min(len(t["intermediate_values"]) for t in running) >= 60:
                    break
            subprocess.run(
                [
                    "chromium",
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    f"--user-data-dir={folder / 'chromium'}",
                    "--hide-scrollbars",
                    "--window-size=1400,2600",
                    "--virtual-time-budget=20000",
                    f"--screenshot={folder / 'page.png'}",
                    f"{base}/dashboard/studies/{study_id}",
                ],
                check=True,
                capture_output=True,
                timeout=180,
            )
            # The study page's "Intermediate values" card, where this window size puts it.
            from PIL import Image

            Image.open(folder / "page.png").crop((75, 1725, 735, 2300)).save(out)
        finally:
            for process in (dashboard, launch):
                process.terminate()
                process.wait()
    print(f"wrote {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/live-curves.png"))
