"""Exercise deploy/nginx.conf on one machine: a local Ray instance, two app replicas pointed at it,
nginx in front; then check the cookie affinity, the health route and a training run through the
proxy's websocket in headless Chromium. Needs nginx (Debian: apt-get install nginx-light); not part
of the test suite.

    python deploy/check_proxy.py [--tabs 4]
"""
from __future__ import annotations

import argparse
import collections
import contextlib
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from e2e_util import CHROMIUM, CHROMIUM_ARGS, app_server, free_port  # noqa: E402
from test_e2e_train import LOSS_POINTS_JS  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tabs", type=int, default=4)
    args = ap.parse_args()
    import ray
    from playwright.sync_api import sync_playwright

    os.environ.setdefault("DLPLAY_DATA_DIR", str(REPO.parent / "shared" / "datasets" / "mnist-sample"))
    address = ray.init(address="local", namespace="dlplay", include_dashboard=False, num_cpus=2,
                       log_to_driver=False).address_info["gcs_address"]
    env = {"DLPLAY_RAY_ADDRESS": address, "DLPLAY_RAY_WORKERS": "2", "DLPLAY_HEARTBEAT_S": "10"}
    with contextlib.ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        apps = [stack.enter_context(app_server(env=env)) for _ in range(2)]
        ports = [int(url.rsplit(":", 1)[1]) for url, _ in apps]
        proxy_port = free_port()
        conf = (REPO / "deploy" / "nginx.conf").read_text()
        conf = conf.replace("127.0.0.1:8501", f"127.0.0.1:{ports[0]}").replace("127.0.0.1:8502", f"127.0.0.1:{ports[1]}")
        conf = conf.replace("listen 8080;", f"listen 127.0.0.1:{proxy_port};").replace("/tmp/dlplay-nginx", f"{tmp}/nginx")
        (Path(tmp) / "nginx.conf").write_text(conf)
        nginx = subprocess.Popen(["nginx", "-c", f"{tmp}/nginx.conf", "-g", "daemon off;"])
        stack.callback(lambda: (nginx.terminate(), nginx.wait(10)))
        proxy = f"http://127.0.0.1:{proxy_port}"
        for _ in range(50):
            with contextlib.suppress(OSError), urllib.request.urlopen(f"{proxy}/_stcore/health", timeout=2) as r:
                print("health through the proxy:", r.status, r.read().decode())
                break
            time.sleep(0.2)
        upstream_of = {f"127.0.0.1:{p}": f"replica {i + 1}" for i, p in enumerate(ports)}
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            seen: dict[int, collections.Counter] = {}
            pages = []
            for tab in range(args.tabs):
                context = browser.new_context(viewport={"width": 1400, "height": 1000})
                seen[tab] = collections.Counter()
                # responses without the header (the websocket's 101 upgrade as Chromium reports it) count as "?"
                context.on("response", lambda r, tab=tab: seen[tab].update(
                    [upstream_of.get(r.headers.get("x-dlplay-upstream", ""), "?")]))
                page = context.new_page()
                page.goto(f"{proxy}/train?lang=en")
                page.wait_for_selector("[data-testid=stMainBlockContainer] h1", timeout=120_000)
                cookie = [c["value"] for c in context.cookies() if c["name"] == "dlplay_route"]
                pages.append(page)
                print(f"tab {tab + 1}: cookie dlplay_route={cookie[0][:8] if cookie else None}, "
                      f"responses by replica: {dict(seen[tab])}")
            page = pages[0]
            page.locator(".st-key-train_start button").first.click()
            page.wait_for_function(f"() => ({LOSS_POINTS_JS})() > 0", timeout=180_000)
            first = page.evaluate(LOSS_POINTS_JS)
            page.wait_for_function(f"() => ({LOSS_POINTS_JS})() > {first}", timeout=180_000)
            print(f"tab 1 trained through the proxy's websocket: loss points {first} -> {page.evaluate(LOSS_POINTS_JS)}; "
                  f"responses by replica after training: {dict(seen[0])}")
            replicas = [{k for k in c if k != "?"} for c in seen.values()]
            sticky = all(len(r) == 1 for r in replicas)
            both = len(set().union(*replicas)) == 2  # by chance: each new browser's cookie hashes to a replica
            print(f"every tab stayed on one replica: {sticky}; tabs spread over both replicas: {both}")
            browser.close()
    ray.shutdown()


if __name__ == "__main__":
    main()
