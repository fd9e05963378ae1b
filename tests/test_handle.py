"""The run handle: TrainingSession implements every member of the RunHandle Protocol, and the pages and
dlplay/ui talk to a run only through those members (an AST walk of their source)."""
from __future__ import annotations

import ast
import re
import time
from pathlib import Path

import pytest
import torch

from dlplay.classify.handle import RunHandle
from dlplay.classify.probe import Probe
from dlplay.classify.train import TrainingSession
from dlplay.gan.handle import GanHandle
from dlplay.nn.spec import TrainConfig, dense_spec
from dlplay.plane.handle import PlaneHandle
from dlplay.run.control import protocol_members
from dlplay.run.status import Status

REPO = Path(__file__).resolve().parents[1]


MEMBERS = set(protocol_members(RunHandle))
GAN_FILES = {"dlplay/ui/generate.py", "views/generate.py"}  # their runs are GAN runs: GanHandle's members
GAN_MEMBERS = set(protocol_members(GanHandle))
PLANE_FILES = {"dlplay/ui/plane.py", "dlplay/ui/plane_edit.py", "views/plane.py"}  # the 2-D playground's runs: PlaneHandle's members
PLANE_MEMBERS = set(protocol_members(PlaneHandle))


@pytest.fixture(scope="module")
def trained(mnist) -> TrainingSession:
    config = TrainConfig(epochs=1, batch_size=100, train_size=1000, seed=0)
    session = TrainingSession(dense_spec([16]), config, mnist, "cpu", callbacks=[Probe(every=5)])
    session.start()
    assert session.join(120)
    assert session.status == "done"
    return session


def test_the_protocol_is_what_the_pages_need():
    assert {"run_id", "snapshot", "probe_snapshot", "state_dict", "model_copy", "evaluate", "test_split",
            "set_pace", "seconds_since_heartbeat", "started_at", "finished_at"} <= MEMBERS


def test_a_training_session_is_a_run_handle_with_every_member(trained):
    assert isinstance(trained, RunHandle)
    missing = sorted(name for name in MEMBERS if not hasattr(trained, name))
    assert missing == []
    methods = {name for name, kind in protocol_members(RunHandle).items() if kind == "method"}
    assert all(callable(getattr(trained, name)) for name in methods)


def test_reads_are_plain_values(trained, mnist):
    assert re.fullmatch(r"[0-9a-f]{12}", trained.run_id)
    other = TrainingSession(dense_spec([16]), trained.config, mnist, "cpu")
    assert other.run_id != trained.run_id
    assert isinstance(trained.status, Status)
    assert trained.status is Status.DONE
    assert trained.status == "done"
    assert trained.device_name == "cpu"
    assert trained.dataset_info == mnist.info
    assert trained.started_at is not None
    assert trained.finished_at >= trained.started_at
    images, labels = trained.test_split()
    assert images.dtype == torch.uint8
    assert images.device.type == "cpu"
    assert torch.equal(labels, mnist.test_labels)
    assert trained.evaluate("test")[1] == trained.snapshot().epochs[-1].test_acc


def test_state_dict_is_a_cpu_copy(trained):
    state = trained.state_dict()
    assert set(state) == set(trained.model.state_dict())
    assert all(v.device.type == "cpu" for v in state.values())
    key = next(iter(state))
    before = trained.model.state_dict()[key].clone()
    state[key].add_(1.0)  # changing the copy leaves the run alone
    assert torch.equal(trained.model.state_dict()[key], before)


def test_model_copy_is_the_run_built_again_without_touching_the_global_rng(trained, mnist):
    rng = torch.get_rng_state()
    model = trained.model_copy()
    assert torch.equal(torch.get_rng_state(), rng)  # the training thread draws its dropout masks from it
    assert not model.training
    assert model.spec == trained.spec
    x = trained.normalize(mnist.test_images[:50])
    with torch.no_grad():
        assert torch.equal(model(x), trained.model.eval()(x))
    assert all(p.data_ptr() != q.data_ptr() for p, q in zip(model.parameters(), trained.model.parameters()))


def test_probe_reads_and_the_interval(trained, mnist):
    snap = trained.probe_snapshot()
    assert snap is not None
    assert snap.probes > 0
    assert snap is trained.snapshot().extras["probe"]
    assert trained.probe_every() == 5
    trained.set_probe_every(20)
    assert trained.probe_every() == 20
    bare = TrainingSession(dense_spec([8]), TrainConfig(epochs=1), mnist, "cpu")
    assert bare.probe_snapshot() is None
    assert bare.probe_every() is None
    bare.set_probe_every(10)  # a run without a probe ignores it
    assert bare.probe_every() is None


def test_pace_and_heartbeat(mnist):
    run = TrainingSession(dense_spec([8]), TrainConfig(epochs=1), mnist, "cpu")
    assert run.pace is None
    run.set_pace(5.0)
    assert run.pace == 5.0
    run.set_pace(None)
    assert run.pace is None
    time.sleep(0.05)
    assert run.seconds_since_heartbeat() >= 0.05
    run.heartbeat()
    assert run.seconds_since_heartbeat() < 0.05
    assert run.last_heartbeat <= time.monotonic()


# ------------------------------------------------------------------ pages and dlplay/ui use only the Protocol
UI_FILES = sorted([REPO / "app.py", *(REPO / "views").glob("*.py"), *(REPO / "dlplay" / "ui").glob("*.py")])
HANDLE_NAMES = {"session", "run", "handle", "fresh", "old"}  # what a run handle is called up there
HANDLE_FACTORIES = {"current_session", "new_session", "replace_run", "adopt_checkpoint", "_create_run"}
PRIVATE = {"model_lock", "_last_heartbeat", "callbacks", "_thread", "_cond", "_paused", "optimizer_state"}
# the run's internals: only dlplay/ui/state.py, which builds today's in-process backend, may import them
INTERNALS = {"TrainingSession", "Probe", "probe_of", "load_into_session", "RunRecorder", "make_optimizer",
             "MetricsHistory"}
TORCH_ALLOWED = {"dlplay/ui/data.py"}  # a dataset cache on a device


def _handle_names(tree: ast.AST) -> set[str]:
    names = set(HANDLE_NAMES)
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and _is_factory(node.value):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.arg) and node.annotation is not None and "RunHandle" in ast.unparse(node.annotation):
            names.add(node.arg)
    return names


def _is_factory(call: ast.Call) -> bool:
    func = call.func
    name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
    return name in HANDLE_FACTORIES


def _is_handle(node: ast.AST, names: set[str]) -> bool:
    if isinstance(node, ast.Name):
        return node.id in names
    if isinstance(node, ast.Call):
        return _is_factory(node)
    # a registry entry's run (dlplay/ui/server.py)
    return isinstance(node, ast.Attribute) and node.attr == "run" and isinstance(node.value, ast.Name) \
        and node.value.id == "entry"


def handle_violations(path: Path, root: Path = REPO) -> list[str]:
    """Attributes used on a run handle that the Protocol lacks, the run's internals, and imports of them."""
    rel = path.relative_to(root).as_posix()
    tree = ast.parse(path.read_text())
    names = _handle_names(tree)
    members = MEMBERS | GAN_MEMBERS if rel in GAN_FILES else MEMBERS  # (they also read the classifier run)
    if rel in PLANE_FILES:
        members = MEMBERS | PLANE_MEMBERS
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            if node.attr in PRIVATE:
                found.append(f"{rel}:{node.lineno} .{node.attr}")
            elif _is_handle(node.value, names) and node.attr not in members:
                found.append(f"{rel}:{node.lineno} {ast.unparse(node)}")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("dlplay") \
                and rel != "dlplay/ui/state.py":
            found += [f"{rel}:{node.lineno} imports {a.name}" for a in node.names if a.name in INTERNALS]
        if isinstance(node, (ast.Import, ast.ImportFrom)) and rel not in TORCH_ALLOWED:
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            found += [f"{rel}:{node.lineno} imports {m}" for m in modules if m == "torch" or m.startswith("torch.")]
    return found


def test_pages_and_ui_use_a_run_only_through_the_protocol():
    assert len(UI_FILES) > 10
    problems = [v for path in UI_FILES for v in handle_violations(path)]
    assert problems == []


def test_the_walk_finds_what_it_forbids(tmp_path):
    bad = tmp_path / "views" / "bad.py"
    bad.parent.mkdir()
    bad.write_text(
        "import torch\n"
        "from dlplay.classify.train import TrainingSession\n"
        "from dlplay.ui.state import current_session\n"
        "session = current_session()\n"
        "x = session.dataset.test_images\n"
        "with session.model_lock:\n    pass\n"
        "y = current_session().metrics.progress\n"
        "def f(h: 'RunHandle | None'):\n    return h.model\n"
        "ok = session.snapshot().progress, session.dataset_info, session.status, session.run_id\n"
    )
    found = sorted(v.split(" ", 1)[1] for v in handle_violations(bad, tmp_path))
    assert found == sorted(["imports torch", "imports TrainingSession", "session.dataset", ".model_lock",
                            "current_session().metrics", "h.model"])
