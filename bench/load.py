"""Load test: N real browser sessions train at once against one dlplay server.

    python bench/load.py --sessions 2 5 10

For each N it starts its own server (short heartbeat, admin token, short disconnected-session
TTL so that cleanup is measurable), opens N tabs in one headless Chromium (one context each,
i.e. N Streamlit sessions), presses Start on the Train page in each, and reports per session: time
to the first chart and to the first loss value, the wait in the queue, the training speed the page
shows ("Images per second"); in total: the server-side throughput read from the admin page
(sum over running runs, via the registry), the server's memory over time (VmRSS) and its thread
count. Then it starts longer runs in every tab, closes all tabs mid-run, and measures how long the
heartbeat takes to stop them and what the process holds afterwards. The browsers run on the same
machine here (in a classroom they are the students' own), so it also reports how many cores the
server used during the measured phase and how many the whole machine did.

``--backend ray --apps 2`` runs the same exercise on the Ray backend: this script starts a local Ray
instance (127.0.0.1), then two app processes pointed at it (DLPLAY_RAY_ADDRESS), which share its two
worker actors and one cluster-wide run limit; tabs are spread over the apps in turn (what a proxy
with sticky sessions does). Server figures then add up the app processes and the worker processes
(their pids from the workers themselves), and cleanup waits for the workers' training threads to go.
Compare with the same N on the in-process backend, and the same ``--max-runs``:

    python bench/load.py --sessions 2 4 --max-runs 2
    python bench/load.py --sessions 2 4 --max-runs 2 --backend ray --apps 2
"""
from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from e2e_util import CHROMIUM, CHROMIUM_ARGS, app_server  # noqa: E402  (the browser tests' server and browser)

QUEUED, TRAINING, FINISHED = "queued", "training", "finished"  # the Status metric (train.status_*)
ENDED = (FINISHED, "stopped", "diverged", "failed")
READ_PAGE_JS = """() => {
  const m = {};
  for (const el of document.querySelectorAll('[data-testid=stMetric]')) {
    const label = el.querySelector('[data-testid=stMetricLabel]');
    const value = el.querySelector('[data-testid=stMetricValue]');
    if (label && value) m[label.innerText.trim()] = value.innerText.trim();
  }
  return {metrics: m, chart: !!document.querySelector('.st-key-train_loss_chart .js-plotly-plot')};
}"""


# ----------------------------------------------------------------------------- the server
def proc_status(pid: int) -> dict[str, int]:
    """VmRSS (kB) and Threads of a process, from /proc/<pid>/status."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "Threads"):
            out[key] = int(value.split()[0])
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_seconds() -> tuple[float, float]:
    """(busy, steal): CPU seconds all cores of this machine spent busy, and those the hypervisor gave
    to other machines while this one wanted to run (/proc/stat)."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle, steal = values[3] + values[4], values[7]  # idle + iowait; steal
    tick = os.sysconf("SC_CLK_TCK")
    return (sum(values[:7]) - idle) / tick, steal / tick


class Sampler(threading.Thread):
    """Samples the server's VmRSS and thread count every ``interval`` seconds."""

    def __init__(self, pid: int, interval: float = 0.5):
        super().__init__(daemon=True, name="bench-sampler")
        self.pid, self.interval = pid, interval
        self.samples: list[tuple[float, int, int]] = []  # (t, rss MB, threads)
        self.stop_event = threading.Event()
        self.t0 = time.monotonic()

    def run(self) -> None:
        while not self.stop_event.is_set():
            with contextlib.suppress(OSError):
                s = proc_status(self.pid)
                self.samples.append((time.monotonic() - self.t0, s["VmRSS"] // 1024, s["Threads"]))
            self.stop_event.wait(self.interval)


# ----------------------------------------------------------------------------- the browser side
@dataclass
class Learner:
    page: object
    clicked: float = 0.0
    chart: float | None = None
    first_loss: float | None = None
    queued_seen: bool = False
    training: float | None = None  # first time the page showed "training"
    finished: float | None = None  # first time the page showed an end state
    end_status: str = ""
    speeds: list[float] = field(default_factory=list)
    last_status: str = ""


def wait_idle(page, timeout_ms: int = 120_000) -> None:
    page.wait_for_function("() => !document.querySelector('[data-testid=stStatusWidget]')", timeout=timeout_ms)


def open_page(context, url: str, path: str):
    page = context.new_page()
    page.goto(f"{url}/{path}?lang=en", timeout=120_000)
    page.wait_for_selector("[data-testid=stMainBlockContainer] h1", timeout=120_000)
    wait_idle(page)
    return page


def set_epochs(page, epochs: int) -> None:
    box = page.locator(".st-key-tw_epochs input").first
    box.fill(str(epochs))
    box.press("Enter")
    page.wait_for_timeout(300)
    wait_idle(page)


def number(text: str | None) -> float | None:
    try:
        return float((text or "").replace(",", ""))
    except ValueError:
        return None


def read_admin(admin) -> dict[str, str]:
    return admin.evaluate(READ_PAGE_JS)["metrics"]


def sign_in(admin, token: str) -> None:
    admin.locator(".st-key-admin_token_input input").first.fill(token)
    admin.locator(".st-key-admin_sign_in button").first.click()
    admin.wait_for_selector("[data-testid=stMetric]", timeout=60_000)


def fmt(values: list[float], digits: int = 1) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "–"
    return f"{statistics.median(values):.{digits}f} [{min(values):.{digits}f}–{max(values):.{digits}f}]"


def log(msg: str) -> None:
    print(f"    [{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ----------------------------------------------------------------------------- the Ray backend
def start_ray() -> str:
    """A local Ray instance in this process (stopped when the script ends); returns its address."""
    import ray

    os.environ.setdefault("DLPLAY_DATA_DIR", str(REPO.parent / "shared" / "datasets" / "mnist-sample"))
    context = ray.init(address="local", namespace="dlplay", include_dashboard=False, num_cpus=os.cpu_count() or 2,
                       log_to_driver=False)
    return context.address_info["gcs_address"]


def ray_workers() -> list:
    """The dlplay worker actors' info (pid, runs, training threads, memory), asked through Ray."""
    import ray

    from dlplay.cluster.settings import NAMESPACE, WORKER_PREFIX

    names = sorted(a["name"] for a in ray.util.list_named_actors(all_namespaces=True)
                   if a["namespace"] == NAMESPACE and a["name"].startswith(WORKER_PREFIX))
    infos = []
    for name in names:
        with contextlib.suppress(Exception):
            infos.append(ray.get(ray.get_actor(name, namespace=NAMESPACE).info.remote(), timeout=30))
    return infos


class Servers:
    """The app process(es) under test, and on the Ray backend the worker processes too."""

    def __init__(self, procs: list, ray_mode: bool):
        self.procs, self.ray_mode = procs, ray_mode

    def pids(self) -> list[int]:
        workers = [w.pid for w in ray_workers()] if self.ray_mode else []
        return [p.pid for p in self.procs] + workers

    def cpu(self) -> float:
        total = 0.0
        for pid in self.pids():
            with contextlib.suppress(OSError):
                total += cpu_seconds(pid)
        return total

    def status(self) -> dict[str, int]:
        """VmRSS and Threads summed over the app processes (and the workers: ``worker_*``)."""
        out = {"VmRSS": 0, "Threads": 0}
        for proc in self.procs:
            with contextlib.suppress(OSError):
                for key, value in proc_status(proc.pid).items():
                    out[key] += value
        if self.ray_mode:
            workers = ray_workers()
            out["worker_rss_mb"] = sum((w.rss_bytes or 0) for w in workers) // 2**20
            out["worker_threads"] = sum(w.train_threads for w in workers)
            out["worker_runs"] = sum(w.runs_total for w in workers)
        return out

    def training_stopped(self, admins) -> bool:
        ms = [read_admin(a) for a in admins]
        if any(m.get("Running") != "0" or m.get("Queued") != "0" or m.get("Training threads") != "0" for m in ms):
            return False
        return not self.ray_mode or not any(w.train_threads or w.runs_active for w in ray_workers())


def run_one(n: int, args) -> dict:
    from playwright.sync_api import sync_playwright

    token = secrets.token_urlsafe(16)
    env = {"DLPLAY_HEARTBEAT_S": str(args.heartbeat), "DLPLAY_ADMIN_TOKEN": token}
    if args.max_runs:
        env["DLPLAY_MAX_RUNS"] = str(args.max_runs)
    ray_mode = args.backend == "ray"
    if ray_mode:
        env.update(DLPLAY_RAY_ADDRESS=args.ray_address, DLPLAY_RAY_WORKERS=str(args.workers))
    result: dict = {"n": n, "backend": f"{args.backend} x{args.apps} app(s)"}
    with contextlib.ExitStack() as stack, sync_playwright() as p:
        started = [stack.enter_context(app_server(env=env, extra_args=("--server.disconnectedSessionTTL", str(args.ttl)),
                                                  startup_timeout_s=90)) for _ in range(args.apps)]
        urls, servers = [u for u, _ in started], Servers([proc for _, proc in started], ray_mode)
        _url, proc = started[0]
        sampler = Sampler(proc.pid)
        sampler.start()
        start = servers.status()
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        admin_ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
        admins = []
        for u in urls:
            admins.append(open_page(admin_ctx, u, "admin"))
            sign_in(admins[-1], token)
        admin = admins[0]
        result["slots"] = read_admin(admin).get("Run slots")
        log("admin page(s) open")
        rss_rounds = []
        for rnd in range(args.rounds):
            contexts, learners = [], []
            t_open = time.monotonic()
            for i in range(n):
                ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
                contexts.append(ctx)
                learners.append(Learner(open_page(ctx, urls[i % len(urls)], "train")))  # sticky: one app per tab
            result["open_s"] = time.monotonic() - t_open
            for learner in learners:
                set_epochs(learner.page, args.epochs)
            if rnd == 0:
                warm = servers.status()
            log(f"{n} train pages open, epochs set")

            # --- phase 1: everyone presses Start; watch until every run has finished
            cpu0, (busy0, steal0), wall0 = servers.cpu(), machine_seconds(), time.monotonic()
            for learner in learners:
                learner.page.locator(".st-key-train_start button").first.click()
                learner.clicked = time.monotonic()
            totals, t_first_train, deadline = [], None, time.monotonic() + args.timeout
            while time.monotonic() < deadline and not all(l.finished for l in learners):
                for learner in learners:
                    if learner.finished:
                        continue
                    now = time.monotonic()
                    try:
                        seen = learner.page.evaluate(READ_PAGE_JS)
                    except Exception:  # noqa: BLE001 - a page mid-rerender; read it next round
                        continue
                    status = seen["metrics"].get("Status", "")
                    learner.last_status = status
                    if seen["chart"] and learner.chart is None:
                        learner.chart = now - learner.clicked
                    loss = number(seen["metrics"].get("Loss (latest)"))
                    if loss is not None and learner.first_loss is None:
                        learner.first_loss = now - learner.clicked
                    if status == QUEUED:
                        learner.queued_seen = True
                    if status == TRAINING:
                        if learner.training is None:
                            learner.training = now
                            t_first_train = t_first_train or now
                        speed = number(seen["metrics"].get("Images per second"))
                        if speed:
                            learner.speeds.append(speed)
                    if status in ENDED:
                        learner.finished = now
                        learner.end_status = status
                        learner.training = learner.training or now
                with contextlib.suppress(Exception):
                    ms = [read_admin(a) for a in admins]  # each app sums its own sessions' runs
                    if int(ms[0].get("Running", "0")) > 0:  # cluster-wide on the Ray backend
                        totals.append(sum(number(m.get("Total images per second")) or 0.0 for m in ms))
                time.sleep(0.2)
            t_last = max((l.finished for l in learners if l.finished), default=time.monotonic())
            wall = max(time.monotonic() - wall0, 1e-9)
            result["cpu_server"] = (servers.cpu() - cpu0) / wall  # cores busy in the server (apps + workers)
            busy1, steal1 = machine_seconds()
            result["cpu_machine"] = (busy1 - busy0) / wall  # and on the whole machine
            result["cpu_steal"] = (steal1 - steal0) / wall  # cores' worth taken by other guests of the host
            done = [l for l in learners if l.end_status == FINISHED]
            images = len(done) * args.epochs * args.train_size
            result.update(
                finished=f"{len(done)}/{n}",
                end_states=",".join(l.end_status or l.last_status or "?" for l in learners),
                chart_s=fmt([l.chart for l in learners]),
                first_loss_s=fmt([l.first_loss for l in learners]),
                queue_wait_s=fmt([l.training - l.clicked for l in learners if l.training]),
                queued=sum(l.queued_seen for l in learners),
                speed_page=fmt([statistics.median(l.speeds) for l in learners if l.speeds], 0),
                total_admin=f"{statistics.median(totals):,.0f}" if totals else "–",
                # all images trained, over the time from the first Start press to the last run's end
                total_effective=f"{images / max(t_last - min(l.clicked for l in learners), 1e-9):,.0f}" if done else "–",
                phase1_s=t_last - min(l.clicked for l in learners),
            )

            log(f"phase 1 over: {result['finished']} finished")
            # --- phase 2: long runs everywhere, then every tab closes mid-run
            for learner in learners:
                set_epochs(learner.page, args.long_epochs)
                learner.page.locator(".st-key-train_start button").first.click()
            time.sleep(args.hold)
            m = read_admin(admin)
            result["before_close"] = f"{m.get('Running')} running, {m.get('Queued')} queued, {m.get('Training threads')} threads"
            peak = servers.status()
            for ctx in contexts:
                ctx.close()
            t_close = time.monotonic()
            threads_gone = None
            while time.monotonic() - t_close < args.heartbeat * 4 + 60:
                with contextlib.suppress(Exception):
                    if servers.training_stopped(admins):
                        threads_gone = time.monotonic() - t_close
                        break
                time.sleep(0.25)
            after_hb = servers.status()
            log(f"tabs closed; training stopped after {threads_gone}")
            # the web server forgets closed sessions after its TTL
            time.sleep(max(0.0, args.ttl + 2 - (time.monotonic() - t_close)))
            # (Streamlit's store of disconnected sessions expires entries when it next stores one)
            for u in urls:
                probe_ctx = browser.new_context()
                open_page(probe_ctx, u, "home")
                probe_ctx.close()
            gone_s, sessions_left, runs_left, end = None, None, None, time.monotonic() + 30
            while time.monotonic() < end:
                ms = [read_admin(a) for a in admins]
                sessions_left = sum(int(m.get("Browser sessions", "-1")) for m in ms)
                runs_left = str(sum(int(m.get("Runs in memory", "0")) for m in ms))
                if sessions_left <= 2 * len(admins) and gone_s is None:  # the admin's own and the probe's (within its TTL)
                    gone_s = time.monotonic() - t_close
                    end = min(end, time.monotonic() + 15)  # then give the runs' memory a moment to go
                if gone_s is not None and runs_left == "0":
                    break
                time.sleep(1.0)
            time.sleep(2.0)
            final = servers.status()
            rss_rounds.append(final["VmRSS"] // 1024)
            log(f"round {rnd + 1}: RSS {rss_rounds[-1]} MB, {runs_left} runs in memory after the sessions were forgotten")
        admin_ctx.close()
        browser.close()
        sampler.stop_event.set()
        sampler.join(2)
        rss = [s[1] for s in sampler.samples]
        if ray_mode:
            result.update(worker_rss_start=start["worker_rss_mb"], worker_rss_peak=peak["worker_rss_mb"],
                          worker_rss_final=final["worker_rss_mb"], worker_threads_final=final["worker_threads"],
                          worker_runs_final=final["worker_runs"])
        result.update(
            stop_after_close_s=f"{threads_gone:.1f}" if threads_gone is not None else "not within limit",
            rss_start=start["VmRSS"] // 1024, rss_warm=warm["VmRSS"] // 1024, rss_peak=max(rss) if rss else None,
            rss_after_heartbeat=after_hb["VmRSS"] // 1024, rss_final=final["VmRSS"] // 1024,
            threads_start=start["Threads"], threads_warm=warm["Threads"], threads_peak=peak["Threads"],
            threads_final=final["Threads"], sessions_left=sessions_left, runs_left=runs_left, rss_after_each_round=rss_rounds,
            sessions_forgotten_s=f"{gone_s:.0f}" if gone_s is not None else "not within limit",
            rss_timeline=" ".join(f"{t:.0f}s:{r}" for t, r, _ in sampler.samples[:: max(1, len(sampler.samples) // 12)]),
        )
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sessions", type=int, nargs="+", default=[2, 5, 10])
    ap.add_argument("--epochs", type=int, default=5, help="epochs per run in the measured phase")
    ap.add_argument("--long-epochs", type=int, default=50, help="epochs of the runs whose tabs get closed")
    ap.add_argument("--hold", type=float, default=4.0, help="seconds the long runs train before the tabs close")
    ap.add_argument("--heartbeat", type=float, default=20.0, help="DLPLAY_HEARTBEAT_S for the server")
    ap.add_argument("--ttl", type=int, default=20, help="server.disconnectedSessionTTL for the server")
    ap.add_argument("--max-runs", type=int, default=0, help="DLPLAY_MAX_RUNS (0: the server's default)")
    ap.add_argument("--train-size", type=int, default=10_000, help="training images per epoch (the sample's)")
    ap.add_argument("--rounds", type=int, default=1, help="repeat the whole exercise on the same server (memory plateau)")
    ap.add_argument("--timeout", type=float, default=900.0, help="limit on the measured phase, seconds")
    ap.add_argument("--backend", choices=("inprocess", "ray"), default="inprocess",
                    help="where runs train: threads in the app (default) or Ray worker actors")
    ap.add_argument("--apps", type=int, default=0, help="app processes (default: 1 in-process, 2 on Ray)")
    ap.add_argument("--workers", type=int, default=2, help="Ray worker actors (DLPLAY_RAY_WORKERS)")
    args = ap.parse_args()
    args.apps = args.apps or (2 if args.backend == "ray" else 1)
    if args.backend == "ray":
        args.ray_address = start_ray()
    rows = []
    for n in args.sessions:
        print(f"--- N={n} ...", flush=True)
        row = run_one(n, args)
        rows.append(row)
        for key, value in row.items():
            print(f"  {key}: {value}", flush=True)
    cols = [("backend", "backend"), ("n", "N"), ("slots", "slots"), ("finished", "done"), ("open_s", "open all tabs s"),
            ("chart_s", "first chart s"), ("first_loss_s", "first loss s"), ("queued", "queued"),
            ("queue_wait_s", "wait to train s"), ("speed_page", "img/s per run (page)"),
            ("total_admin", "img/s total (admin)"), ("total_effective", "img/s total (effective)"),
            ("cpu_server", "server cores busy"), ("cpu_machine", "machine cores busy"), ("cpu_steal", "cores stolen"),
            ("rss_start", "RSS start MB"), ("rss_peak", "RSS peak MB"), ("rss_final", "RSS end MB"),
            ("threads_start", "threads start"), ("threads_peak", "threads peak"), ("threads_final", "threads end"),
            ("stop_after_close_s", "runs stopped after close s"), ("sessions_forgotten_s", "sessions forgotten after close s"),
            ("worker_rss_peak", "worker RSS peak MB"), ("worker_rss_final", "worker RSS end MB"),
            ("worker_threads_final", "worker train threads end"), ("worker_runs_final", "runs held by workers end")]
    print("\n| " + " | ".join(c[1] for c in cols) + " |")
    print("|" + "---|" * len(cols))
    for row in rows:
        print("| " + " | ".join(f"{row.get(k):.1f}" if isinstance(row.get(k), float) else str(row.get(k)) for k, _ in cols) + " |")


if __name__ == "__main__":
    main()
