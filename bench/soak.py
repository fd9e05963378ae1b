"""Soak test: an hour with a class. N simulated learners use one dlplay server in real browser tabs.

    python bench/soak.py                       # 30 learners, 60 minutes, in-process runs
    python bench/soak.py --learners 10 --minutes 10
    python bench/soak.py --backend ray         # runs in Ray workers: a Ray head this script starts (127.0.0.1)
    python bench/soak.py --backend ray-local   # the app starts Ray itself (DLPLAY_RAY_ADDRESS=local)

Each learner, in its own browser context (one Streamlit session per tab), loops until the time is up:
opens Train (English or Chinese), sets a watchable pace, presses Start on the tutorial's model, watches
it for a while, pauses, forks the paused run (same settings) and starts the fork, moves to Draw through
the sidebar and draws a stroke, then closes the tab (the run keeps training until the heartbeat stops it).
Every minute the script prints the server's memory (VmRSS) and threads; at the end: the p50/p95 time
from each kind of click to its effect on the page, the runs lost (a Start that never led to training or
a queue, a run that failed, an exception box on a page), and whether memory and threads return to their
baseline once the learners have left and the heartbeat has stopped their runs.

Loopback only (127.0.0.1), bounded by --minutes and --learners; Chromium is Debian's (/usr/bin/chromium).
The browsers run on the same machine as the server here (in a class they are the students' own).
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import secrets
import statistics
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "bench"))
from e2e_util import CHROMIUM, CHROMIUM_ARGS, app_server  # noqa: E402  (the browser tests' server and browser)
from load import proc_status, start_ray  # noqa: E402  (the load bench's /proc reader and Ray starter)

STATUS_JS = """() => {
  for (const el of document.querySelectorAll('[data-testid=stMetric]')) {
    const label = el.querySelector('[data-testid=stMetricLabel]');
    const value = el.querySelector('[data-testid=stMetricValue]');
    if (label && value && /Status|状态/.test(label.innerText)) return value.innerText.trim();
  }
  return '';
}"""
EXCEPTION_JS = "() => !!document.querySelector('[data-testid=stException]')"
IDLE_JS = "() => !document.querySelector('[data-testid=stStatusWidget]')"
TRAINING = ("training", "训练中")
QUEUED = ("waiting", "等待")
PAUSED = ("paused", "已暂停")
FAILED = ("failed", "失败")
CANVAS = "canvas.dlc-canvas"
CLICK_TIMEOUT_S = 120.0


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    starts: int = 0
    lost: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    cycles: int = 0


def now() -> float:
    return time.monotonic()


async def status(page) -> str:
    try:
        return (await page.evaluate(STATUS_JS)).lower()
    except Exception:  # noqa: BLE001 - a page mid-navigation
        return ""


async def wait_status(page, words: tuple[str, ...], timeout_s: float = CLICK_TIMEOUT_S) -> str | None:
    """Poll the page's Status metric until it contains one of ``words``; the status, or None on timeout."""
    end = now() + timeout_s
    while now() < end:
        text = await status(page)
        if any(w in text for w in words) or any(w in text for w in FAILED):
            return text
        await asyncio.sleep(0.1)
    return None


async def idle(page, timeout_s: float = 120.0) -> None:
    await page.wait_for_function(IDLE_JS, timeout=timeout_s * 1000)


async def timed_click(page, key: str, words: tuple[str, ...], tally: Tally, kind: str, who: str) -> str | None:
    """Click the button with ``key`` and time until the Status metric shows one of ``words``."""
    button = page.locator(f".st-key-{key} button").first
    await button.wait_for(timeout=60_000)
    t0 = now()
    await button.click()
    text = await wait_status(page, words)
    if text is None:
        tally.lost.append(f"{who}: {kind} had no effect within {CLICK_TIMEOUT_S:.0f} s")
        return None
    if any(w in text for w in FAILED):
        tally.lost.append(f"{who}: {kind} -> {text}")
        return text
    tally.latencies[kind].append(now() - t0)
    return text


async def set_pace(page, steps_left: int) -> None:
    """Move the pace slider ``steps_left`` stops to the left of full speed (a watchable pace)."""
    slider = page.locator(".st-key-train_pace input[type=range]").first
    await slider.wait_for(state="attached", timeout=60_000)
    await slider.focus()
    await page.keyboard.press("End")  # full speed
    for _ in range(steps_left):
        await page.keyboard.press("ArrowLeft")
        await asyncio.sleep(0.3)
    await idle(page)


async def draw_stroke(page, tally: Tally, who: str) -> None:
    canvas = page.locator(CANVAS).first
    await canvas.wait_for(timeout=60_000)
    box = await canvas.bounding_box()
    if box is None:
        return
    before = await page.evaluate("() => (document.querySelector('.dl-guess') || {dataset: {}}).dataset.sig || ''")
    x, y, size = box["x"], box["y"], min(box["width"], box["height"])
    await page.mouse.move(x + 0.5 * size, y + 0.2 * size)
    await page.mouse.down()
    await page.mouse.move(x + 0.5 * size, y + 0.8 * size, steps=20)
    t0 = now()
    await page.mouse.up()
    try:
        await page.wait_for_function(
            "old => { const e = document.querySelector('.dl-guess'); return e && e.dataset.sig !== old; }",
            arg=before, timeout=CLICK_TIMEOUT_S * 1000)
        tally.latencies["draw → guess"].append(now() - t0)
    except Exception:  # noqa: BLE001
        tally.errors.append(f"{who}: a stroke got no guess within {CLICK_TIMEOUT_S:.0f} s")


async def learner(index: int, browser, url: str, stop_at: float, tally: Tally, rng: random.Random) -> None:
    who = f"learner {index}"
    lang = "zh" if index % 3 == 0 else "en"
    await asyncio.sleep(rng.uniform(0, 20))  # they do not all arrive in the same second
    while now() < stop_at:
        context = await browser.new_context(viewport={"width": 1280, "height": 900})
        try:
            page = await context.new_page()
            t0 = now()
            await page.goto(f"{url}/train?lang={lang}", timeout=120_000)
            await page.wait_for_selector("[data-testid=stMainBlockContainer] h1", timeout=120_000)
            await idle(page)
            tally.latencies["open Train"].append(now() - t0)
            await set_pace(page, rng.choice((3, 4, 5)))  # 50, 20 or 10 steps a second
            tally.starts += 1
            text = await timed_click(page, "train_start", TRAINING + QUEUED, tally, "Start", who)
            if text is not None and not any(w in text for w in FAILED):
                await asyncio.sleep(rng.uniform(20, 60))  # watch it learn
                watched = await status(page)
                if any(w in watched for w in TRAINING):
                    await timed_click(page, "train_pause", PAUSED, tally, "Pause", who)
                    if rng.random() < 0.5:  # fork the paused run with the same settings and start the fork
                        fork = page.locator(".st-key-fork_go button").first
                        if await fork.count():
                            await fork.click()
                            await idle(page)
                            tally.starts += 1
                            await timed_click(page, "train_start", TRAINING + QUEUED, tally, "Start a fork", who)
                            await asyncio.sleep(rng.uniform(5, 20))
                    else:
                        await timed_click(page, "train_resume", TRAINING + QUEUED, tally, "Resume", who)
                        await asyncio.sleep(rng.uniform(5, 20))
            if await page.evaluate(EXCEPTION_JS):
                tally.errors.append(f"{who}: an exception box on Train")
            link = page.locator("[data-testid=stSidebarNav] a[href$='/draw']").first
            if await link.count():
                t0 = now()
                await link.click()
                await page.wait_for_selector(CANVAS, timeout=120_000)
                await idle(page)
                tally.latencies["Train → Draw"].append(now() - t0)
                await draw_stroke(page, tally, who)
                if await page.evaluate(EXCEPTION_JS):
                    tally.errors.append(f"{who}: an exception box on Draw")
            tally.cycles += 1
        except Exception as exc:  # noqa: BLE001 - counted, the learner goes on with a new tab
            tally.errors.append(f"{who}: {type(exc).__name__}: {str(exc).splitlines()[0][:120]}")
        finally:
            await context.close()  # the tab closes; its run stops when the heartbeat goes stale
        await asyncio.sleep(rng.uniform(1, 10))


def sample(pids: list[int]) -> tuple[int, int]:
    """(VmRSS MB, threads) summed over ``pids``."""
    rss = threads = 0
    for pid in pids:
        try:
            s = proc_status(pid)
        except OSError:
            continue
        rss += s["VmRSS"] // 1024
        threads += s["Threads"]
    return rss, threads


def worker_pids() -> list[int]:
    from load import ray_workers

    return [w.pid for w in ray_workers()]


async def monitor(pids_of, stop: asyncio.Event, rows: list, every_s: float) -> None:
    t0 = now()
    while not stop.is_set():
        rss, threads = sample(pids_of())
        rows.append((now() - t0, rss, threads))
        print(f"  t={rows[-1][0] / 60:5.1f} min  RSS {rss:6d} MB  threads {threads:4d}", flush=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every_s)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def main_async(args) -> None:
    from playwright.async_api import async_playwright

    env = {"DLPLAY_HEARTBEAT_S": str(args.heartbeat), "DLPLAY_ADMIN_TOKEN": secrets.token_hex(8),
           "DLPLAY_RUNS_DIR": "off"}
    if args.backend == "ray":
        env["DLPLAY_RAY_ADDRESS"] = start_ray()
    elif args.backend == "ray-local":
        env["DLPLAY_RAY_ADDRESS"] = "local"
    with app_server(env=env, startup_timeout_s=180) as (url, proc):
        def pids() -> list[int]:
            return [proc.pid] + (worker_pids() if args.backend != "inprocess" else [])

        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            warm = await browser.new_page()  # the first script run imports torch: not part of the baseline
            await warm.goto(f"{url}/train?lang=en", timeout=180_000)
            await warm.wait_for_selector("[data-testid=stMainBlockContainer] h1", timeout=180_000)
            await warm.close()
            await asyncio.sleep(5)
            baseline = sample(pids())
            print(f"baseline: RSS {baseline[0]} MB, threads {baseline[1]} ({args.backend})", flush=True)
            tally, rows, stop = Tally(), [], asyncio.Event()
            mon = asyncio.create_task(monitor(pids, stop, rows, args.every))
            t_start = now()
            stop_at = t_start + args.minutes * 60
            rng = random.Random(args.seed)
            await asyncio.gather(*(learner(i, browser, url, stop_at, tally, random.Random(rng.random()))
                                   for i in range(args.learners)))
            print(f"learners gone after {(now() - t_start) / 60:.1f} min; waiting for the heartbeat "
                  f"({args.heartbeat} s) to stop their runs", flush=True)
            await asyncio.sleep(args.heartbeat + 60)
            stop.set()
            await mon
            after = sample(pids())
            await browser.close()
    print()
    print(f"== {args.learners} learners, {args.minutes} min, backend {args.backend}, {os.cpu_count()} cores ==")
    print(f"cycles (open → train → pause/fork → draw → close): {tally.cycles}; runs started: {tally.starts}")
    for kind, values in tally.latencies.items():
        print(f"  {kind:14s} n={len(values):4d}  p50 {statistics.median(values):6.2f} s  p95 {pct(values, 0.95):6.2f} s"
              f"  max {max(values):6.2f} s")
    print(f"runs lost: {len(tally.lost)}")
    for line in tally.lost[:20]:
        print(f"  - {line}")
    print(f"other problems: {len(tally.errors)}")
    for line in tally.errors[:20]:
        print(f"  - {line}")
    peak = max(rows, key=lambda r: r[1]) if rows else (0, 0, 0)
    print(f"memory: baseline {baseline[0]} MB, peak {peak[1]} MB at {peak[0] / 60:.1f} min, after the class "
          f"{after[0]} MB ({after[0] - baseline[0]:+d} MB); threads: baseline {baseline[1]}, after {after[1]} "
          f"({after[1] - baseline[1]:+d})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--learners", type=int, default=30)
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--backend", choices=("inprocess", "ray", "ray-local"), default="inprocess")
    parser.add_argument("--heartbeat", type=int, default=30, help="DLPLAY_HEARTBEAT_S of the server under test")
    parser.add_argument("--every", type=float, default=60.0, help="seconds between memory samples")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not 1 <= args.learners <= 60 or not 0 < args.minutes <= 120:
        parser.error("--learners 1..60 and --minutes up to 120: the bench is bounded")
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
