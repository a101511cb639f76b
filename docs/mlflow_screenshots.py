"""Screenshots of the MLflow UI for docs/mlflow.md, taken the way a user sees it: a real MLflow server on
loopback and headless Chromium (Debian's ``chromium``). Not part of CI.

    python docs/mlflow_screenshots.py --tracking-uri sqlite:///mlruns/mlflow.db --experiment compare-tiny_reasoning \
        --out docs/images
"""
from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(uri: str, port: int) -> subprocess.Popen:
    server = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--backend-store-uri", uri, "--host",
                               "127.0.0.1", "--port", str(port), "--workers", "1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
            return server
        except OSError:
            time.sleep(0.5)
    server.kill()
    raise RuntimeError("the MLflow server did not come up within 60 s")


def screenshot(url: str, path: Path, *, width: int = 1920, height: int = 1080, wait_ms: int = 20000) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        raise SystemExit("needs Debian's chromium (apt-get install chromium)")
    subprocess.run([chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--window-size={width},{height}", f"--virtual-time-budget={wait_ms}",
                    f"--screenshot={path}", url], check=True, capture_output=True, timeout=120)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tracking-uri", default="sqlite:///mlruns/mlflow.db")
    parser.add_argument("--experiment", required=True)
    parser.add_argument("--out", default="docs/images")
    args = parser.parse_args(argv)
    from mlflow import MlflowClient

    client = MlflowClient(args.tracking_uri)
    experiment = client.get_experiment_by_name(args.experiment)
    if experiment is None:
        raise SystemExit(f"no experiment {args.experiment!r} at {args.tracking_uri}")
    runs = client.search_runs([experiment.experiment_id], filter_string="attributes.status = 'FINISHED'",
                              order_by=["attributes.start_time DESC"], max_results=1)  # the run page: the newest
    if not runs:
        raise SystemExit(f"experiment {args.experiment!r} has no runs")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    port = free_port()
    server = serve(args.tracking_uri, port)
    base = f"http://127.0.0.1:{port}/#/experiments/{experiment.experiment_id}"
    try:
        view = "workflowType=machine_learning"  # MLflow 3's "Model training" view (runs, not traces)
        shots = {"runs_table.png": f"{base}/runs?{view}", "chart_comparison.png": f"{base}/runs?{view}&compareRunsMode=CHART",
                 "run_page.png": f"{base}/runs/{runs[0].info.run_id}?{view}"}
        for name, url in shots.items():
            screenshot(url, out / name)
            print(f"{out / name}  <- {url.replace(str(port), 'PORT')}")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
