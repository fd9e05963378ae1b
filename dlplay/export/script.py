"""A run as a standalone PyTorch script (torch and numpy only) that reproduces it.

The script is built by plain string building from the run's :class:`~dlplay.nn.spec.ModelSpec` and
:class:`~dlplay.nn.spec.TrainConfig`, in sections (:func:`pytorch_sections`; the notebook makes one cell
of each). It does what :class:`dlplay.classify.train.TrainingSession` does, in the same order, so that on the
CPU a run of dense layers is reproduced bit for bit:

- the weights are created with ``torch.manual_seed(seed)`` in the network's layer order (then the
  chosen initialisation), the batch order is ``torch.randperm`` from ``torch.Generator().manual_seed(seed)``
  and dropout draws from the global generator seeded again with the seed before the first step;
- the validation split is the same seeded draw (``seed + 0x5A11D``, dlplay/classify/split.py), label edits
  and ``train_size`` are applied the same way;
- pixels are normalised with the same single operation (``−mean/std + pixel · 1/(255·std)``);
- the update is the optimiser's fused kernel (``fused=True``), as dlplay's ``make_update`` calls it;
- the test set is evaluated in eval mode in batches of 256 after every epoch.

- a dense network's backward pass is written out as dlplay's dense engine computes it (the tutorial's
  δ_L = softmax − onehot, δ_l = (Wᵀδ) ⊙ f′(z), ∂J/∂W = δ aᵀ, with the engine's kernels); any other
  network uses autograd, as dlplay does; a convolutional network on the CPU trains in channels-last
  memory layout, as dlplay's does (oneDNN sums in another order in the other layout).

Measured (tests/test_export.py): on the CPU with the same thread count the script's final weights
equal the app's bit for bit, for dense, convolutional (batch norm, pooling, dropout, cosine
schedule) and recurrent networks. Augmentation is not written out (a note in the script says so).
"""
from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass

from dlplay.classify.split import SPLIT_STREAM
from dlplay.data.datasets import DATASETS, get_info
from dlplay.i18n import translate
from dlplay.nn.activations import IDENTITY
from dlplay.nn.layers import DENSE, LAYER_KINDS, sequence_shape
from dlplay.nn.spec import ModelSpec, TrainConfig

EVAL_BATCH = 256  # as dlplay.classify.train.EVAL_BATCH

# the activation f as one call on z (the same kernels as the activation registry's modules)
ACTIVATION_CALLS = {
    "relu": "torch.relu(z)",
    "leaky_relu": "F.leaky_relu(z, 0.01)",
    "elu": "F.elu(z)",
    "gelu": "F.gelu(z)",
    "tanh": "torch.tanh(z)",
    "sigmoid": "torch.sigmoid(z)",
    "softplus": "F.softplus(z)",
    IDENTITY: "z",
}

# the optimiser as dlplay makes it (dlplay/nn/optimizers.py), with PyTorch's fused kernel where it has one
OPTIMIZER_CODE = {
    "sgd": "torch.optim.SGD(model.parameters(), lr=LEARNING_RATE, weight_decay=WEIGHT_DECAY, {impl})",
    "momentum": "torch.optim.SGD(model.parameters(), lr=LEARNING_RATE, momentum=0.9, weight_decay=WEIGHT_DECAY, {impl})",
    "adam": "torch.optim.Adam(model.parameters(), lr=LEARNING_RATE, weight_decay=WEIGHT_DECAY, {impl})",
    "adamw": "torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE, weight_decay=WEIGHT_DECAY, {impl})",
    "rmsprop": "torch.optim.RMSprop(model.parameters(), lr=LEARNING_RATE, weight_decay=WEIGHT_DECAY, {impl})",
}
FUSED = ("sgd", "momentum", "adam", "adamw")

# the update each optimiser makes, as the tutorial writes it (a comment above optimizer.step())
UPDATE_RULES = {
    "sgd": ["W ← W − η · ∂J/∂W"],
    "momentum": ["v ← 0.9 · v + ∂J/∂W", "W ← W − η · v"],
    "adam": ["m ← β1·m + (1 − β1)·g,   v ← β2·v + (1 − β2)·g²   (g = ∂J/∂W, β1 = 0.9, β2 = 0.999)",
             "W ← W − η · m̂ / (√v̂ + ε)   (m̂, v̂: m and v corrected for their start at 0)"],
    "adamw": ["m ← β1·m + (1 − β1)·g,   v ← β2·v + (1 − β2)·g²   (g = ∂J/∂W)",
              "W ← W − η·λ·W − η · m̂ / (√v̂ + ε)   (λ: weight decay, applied to W directly)"],
    "rmsprop": ["s ← 0.99·s + 0.01·g²   (g = ∂J/∂W)", "W ← W − η · g / (√s + ε)"],
}

SCHEDULE_CODE = {
    "constant": "return 1.0",
    "cosine": "return 0.5 * (1.0 + math.cos(math.pi * progress))",
    "step": "return 1.0 if progress < 0.5 else 0.1 if progress < 0.75 else 0.01",
}


@dataclass(frozen=True)
class Section:
    """One part of the script: a heading (markdown in the notebook) and its code."""

    title: str
    code: str


def _c(key: str, lang: str, **params: object) -> str:
    """A comment's text in the chosen language (locales/*/export.json, keys ``export.c_*``)."""
    return translate(f"export.c_{key}", lang, **params)


def block_names(spec: ModelSpec) -> list[str]:
    """The hidden blocks' names as dlplay.nn.model.Net names them (dense1, conv2d1, ...), then ``output``."""
    counters: dict[str, int] = {}
    names = []
    for layer in spec.layers:
        counters[layer.kind] = counters.get(layer.kind, 0) + 1
        names.append(f"{layer.kind}{counters[layer.kind]}")
    return [*names, "output"]


def _shape_text(shape: tuple[int, ...]) -> str:
    return "×".join(str(s) for s in shape)


def _module(layer_kind: str, layer, in_shape: tuple[int, ...], order: str) -> str:  # layer: a LayerSpec
    """The PyTorch module dlplay's layer registry builds for this layer (same arguments, same init)."""
    kind = LAYER_KINDS[layer_kind]
    view = kind.input_view(in_shape, order)
    if layer_kind == DENSE:
        return f"nn.Linear({math.prod(view)}, {layer.units})"
    if layer_kind == "conv2d":
        return f"nn.Conv2d({view[0]}, {layer.units}, kernel_size={layer.kernel}, stride={layer.stride}, padding={layer.padding})"
    if layer_kind == "maxpool":
        return f"nn.MaxPool2d({layer.kernel}, {layer.stride})"
    if layer_kind == "avgpool":
        return f"nn.AvgPool2d({layer.kernel}, {layer.stride})"
    if layer_kind == "batchnorm":
        return f"nn.BatchNorm2d({view[0]})" if len(view) == 3 else f"nn.BatchNorm1d({view[0]})"
    cls = {"rnn": "nn.RNN", "lstm": "nn.LSTM", "gru": "nn.GRU"}[layer_kind]
    extra = f", nonlinearity=\"{layer.activation}\"" if layer_kind == "rnn" else ""
    return f"{cls}({view[1]}, {layer.units}, num_layers={layer.stack}{extra}, batch_first=True)"


def _sequence_lines(order: str, shape: tuple[int, ...], lang: str) -> list[str]:
    steps, features = sequence_shape(shape, order)
    comment = _c(f"seq_{order}", lang, steps=steps, features=features)
    code = {
        "rows": "a = a.permute(0, 2, 1, 3).reshape(a.shape[0], {steps}, {features})",
        "columns": "a = a.permute(0, 3, 1, 2).reshape(a.shape[0], {steps}, {features})",
        "pixels": "a = a.permute(0, 2, 3, 1).reshape(a.shape[0], {steps}, {features})",
    }[order].format(steps=steps, features=features)
    return [f"# {comment}", code]


def model_code(spec: ModelSpec, lang: str = "en") -> str:
    """The network as a small nn.Module: one attribute per layer, the forward pass as z = W a + b, a = f(z)."""
    names = block_names(spec)
    init_lines: list[str] = []
    forward: list[str] = ["a = x  # " + _c("input", lang, shape=_shape_text(spec.input_shape))]
    shape: tuple[int, ...] = spec.input_shape
    weight_modules: list[str] = []
    for layer, name, out_shape in zip(spec.layers, names, spec.shapes()):
        kind = LAYER_KINDS[layer.kind]
        init_lines.append(f"self.{name} = {_module(layer.kind, layer, shape, spec.order)}")
        if kind.weights:
            weight_modules.append(name)
        forward.append("")
        forward.append(f"# {name}: {layer.describe()} → {_shape_text(out_shape)}")
        if kind.flattens(shape):
            if has_conv(spec):
                forward.append(f"a = keep_layout(a)  # {_c('keep_layout', lang)}")
            forward.append(f"a = a.flatten(1)  # {_c('flatten', lang, n=math.prod(shape))}")
        elif kind.reads_image(shape):
            forward += _sequence_lines(spec.order, shape, lang)
        if layer.kind == DENSE:
            forward.append(f"z = self.{name}(a)  # z = W a + b")
        elif layer.kind == "conv2d":
            forward.append(f"z = self.{name}(a)  # z = W ∗ a + b  ({_c('conv', lang)})")
        elif layer.kind in ("maxpool", "avgpool"):
            forward.append(f"z = self.{name}(a)  # {_c('pool', lang, k=layer.kernel)}")
        elif layer.kind == "batchnorm":
            forward.append(f"z = self.{name}(a)  # {_c('batchnorm', lang)}")
        else:  # recurrent
            forward.append(f"h, _ = self.{name}(a)  # {_c('recurrent', lang)}")
            if layer.read == "all":
                forward.append(f"z = h  # {_c('read_all', lang)}")
            else:
                forward.append(f"z = h[:, -1]  # {_c('read_last', lang)}")
        act = kind.block_activation(layer)
        if act == IDENTITY:
            forward.append("a = z")
        else:
            forward.append(f"a = {ACTIVATION_CALLS[act]}  # a = f(z), f = {act}")
        if layer.dropout > 0:
            forward.append(f"a = F.dropout(a, p={layer.dropout}, training=self.training)  # {_c('dropout', lang)}")
        shape = out_shape
    n_in = math.prod(shape)
    init_lines.append(f"self.output = nn.Linear({n_in}, {spec.num_classes})")
    weight_modules.append("output")
    forward.append("")
    forward.append(f"# output: {_c('output', lang, n=spec.num_classes)}")
    if len(shape) > 1:
        if has_conv(spec) and len(shape) == 3:
            forward.append(f"a = keep_layout(a)  # {_c('keep_layout', lang)}")
        forward.append(f"a = a.flatten(1)  # {_c('flatten', lang, n=n_in)}")
    forward.append("z = self.output(a)  # z = W a + b")
    forward.append(f"return z  # {_c('logits', lang)}")

    layout = [
        "def keep_layout(a):",
        f"    \"\"\"{_c('keep_layout_doc', lang)}\"\"\"",
        "    if a.requires_grad and a.dim() == 4 and a.is_contiguous(memory_format=torch.channels_last) "
        "and not a.is_contiguous():",
        "        a.register_hook(lambda g: g.contiguous(memory_format=torch.channels_last))",
        "    return a",
        "",
        "",
    ] if has_conv(spec) else []
    lines = [
        *layout,
        "class Net(nn.Module):",
        f"    \"\"\"{spec.describe(image_input=True)}\"\"\"",
        "",
        "    def __init__(self):",
        "        super().__init__()",
        f"        # {_c('init_order', lang)}",
        *(f"        {line}" for line in init_lines),
        "",
        "    def forward(self, x):",
        *(f"        {line}" if line else "" for line in forward),
        "",
        "    def weight_layers(self):",
        f"        return [{', '.join(f'self.{n}' for n in weight_modules)}]",
    ]
    return "\n".join(lines) + "\n"


def has_conv(spec: ModelSpec) -> bool:
    return any(layer.kind == "conv2d" for layer in spec.layers)


def _init_code(scheme: str, lang: str) -> str:
    if scheme == "default":
        return f"# {_c('init_default', lang)}\n"
    call = {
        "he": "nn.init.kaiming_normal_(w, nonlinearity=\"relu\")",
        "xavier": "nn.init.xavier_uniform_(w)",
        "normal": "nn.init.normal_(w, 0.0, 0.01)",
        "zeros": "nn.init.zeros_(w)",
    }[scheme]
    return (
        f"# {_c('init_scheme', lang, scheme=scheme)}\n"
        "with torch.no_grad():\n"
        "    for layer in model.weight_layers():\n"
        "        for name, w in layer.named_parameters():\n"
        f"            if name.startswith(\"weight\"):\n                {call}\n"
        "            else:\n"
        "                nn.init.zeros_(w)  # b = 0\n"
    )


def _settings(spec: ModelSpec, config: TrainConfig, lang: str) -> str:
    info = get_info(config.dataset)
    device = {"auto": "\"cuda\" if torch.cuda.is_available() else \"cpu\"", "cpu": "\"cpu\"", "cuda": "\"cuda\""}[config.device]
    rows = [
        f"# {_c('settings', lang)}",
        f"DATASET = \"{config.dataset}\"",
        f"SEED = {config.seed}",
        f"EPOCHS = {config.epochs}",
        f"BATCH_SIZE = {config.batch_size}",
        f"LEARNING_RATE = {config.lr!r}  # η",
        f"OPTIMIZER = \"{config.optimizer}\"",
        f"WEIGHT_DECAY = {config.weight_decay!r}",
        f"SCHEDULE = \"{config.schedule}\"  # {_c('schedule', lang)}",
        f"VAL_SHARE = {config.val_share!r}  # {_c('val_share', lang)}",
        f"TRAIN_SIZE = {config.train_size!r}  # {_c('train_size', lang)}",
        f"PATIENCE = {config.patience}  # {_c('patience', lang)}",
        f"LABEL_EDITS = {[list(e) for e in config.label_edits]!r}  # {_c('label_edits', lang)}",
        f"MEAN, STD = {info.mean}, {info.std}  # {_c('mean_std', lang)}",
        f"DEVICE = {device}",
    ]
    if not config.augment.is_off:
        rows.append(f"# {_c('augment_note', lang)}")
    return "\n".join(rows) + "\n"


def _data_code(config: TrainConfig, lang: str) -> str:
    return data_loader_code(config, lang) + f'''

train_images, train_labels, test_images, test_labels = (torch.from_numpy(np.array(a)) for a in load_data())
# {_c('one_channel', lang)}
train_images = train_images.reshape(-1, 1, 28, 28)
test_images = test_images.reshape(-1, 1, 28, 28)
print(f"{{len(train_labels)}} training images, {{len(test_labels)}} test images")

NEG_SHIFT = torch.tensor(-MEAN / STD, dtype=torch.float32)
SCALE = 1.0 / (255.0 * STD)


def normalize(images):
    """{_c('normalize_doc', lang)}"""
    return torch.add(NEG_SHIFT, images, alpha=SCALE)
'''


def is_own(dataset: str) -> bool:
    """A learner's own dataset (dlplay/owndata.py): not a built-in one; its files travel with the code."""
    return dataset not in DATASETS


OWN_DATA_DIR = "data"  # the own dataset's folder beside the exported script (dlplay/export/owncode.py)


def own_loader_code(lang: str) -> str:
    """numpy only: load_data() for a learner's own dataset, read from ``data/`` beside the script (plain
    arrays in .npz files, read without pickles) and the class names from ``data/classes.json``."""
    o = lambda key: translate(f"ownexport.c_{key}", lang)  # noqa: E731
    return f'''# {o('data_where')}
HERE = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()
DATA_DIR = HERE / "{OWN_DATA_DIR}"


def load_data():
    """{o('load_doc')}"""
    arrays = []
    for part in ("train", "test"):
        path = DATA_DIR / f"{{part}}.npz"
        if not path.is_file():
            sys.exit(f"{{path}}: {o('not_found')}")
        with np.load(path, allow_pickle=False) as npz:  # {o('no_pickle')}
            arrays += [npz["images"], npz["labels"].astype(np.int64)]
    return tuple(arrays)


CLASSES = json.loads((DATA_DIR / "classes.json").read_text(encoding="utf-8"))  # {o('classes')}
print("classes:", CLASSES)
'''


def data_loader_code(config: TrainConfig, lang: str) -> str:
    """numpy only: where the dataset is looked for, the IDX reader, load_data()."""
    if is_own(config.dataset):
        return own_loader_code(lang)
    info = get_info(config.dataset)
    files = ", ".join(f"\"{f}\"" for f in info.file_names)
    return f'''# {_c('data_where', lang)}
FILES = ({files})
TORCHVISION_FOLDER = {info.torchvision_folder!r}
KERAS_NPZ = {info.keras_npz!r}
KERAS_FOLDER = {info.keras_folder!r}
SYSTEM_DIRS = {list(info.system_dirs)!r}


def places():
    """{_c('places_doc', lang)}"""
    env = os.environ.get
    if env("DLPLAY_DATA_DIR"):
        yield Path(env("DLPLAY_DATA_DIR")).expanduser() / DATASET
        if DATASET == "mnist":
            yield Path(env("DLPLAY_DATA_DIR")).expanduser()
    cache = env("DLPLAY_CACHE_DIR") or Path(env("XDG_CACHE_HOME") or Path.home() / ".cache") / "dlplay"
    yield Path(cache).expanduser() / DATASET
    roots = [p for p in env("DLPLAY_TORCHVISION_ROOT", "").split(os.pathsep) if p]
    for root in [*roots, Path.home() / "data", "data"]:
        if TORCHVISION_FOLDER:
            yield Path(root).expanduser() / TORCHVISION_FOLDER / "raw"
    keras = Path(env("KERAS_HOME") or Path.home() / ".keras") / "datasets"
    if KERAS_NPZ:
        yield keras / KERAS_NPZ
    if KERAS_FOLDER:
        yield keras / KERAS_FOLDER
    for folder in SYSTEM_DIRS:
        yield Path(folder)


def spellings(name):
    """{_c('spellings_doc', lang)}"""
    stem = name[:-3]
    return [name, stem, stem.replace("-idx", ".idx")]


def read_idx(path):
    """{_c('idx_doc', lang)}"""
    raw = Path(path).read_bytes()
    if raw[:2] == b"\\x1f\\x8b":
        raw = gzip.decompress(raw)
    if raw[:2] != b"\\x00\\x00" or raw[2] != 0x08:
        sys.exit(f"{{path}}: not an IDX file of unsigned bytes")
    ndim = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != math.prod(shape):
        sys.exit(f"{{path}}: {{data.size}} bytes of data, the header says {{shape}}")
    return data.reshape(shape)


def load_data():
    """(train images, train labels, test images, test labels) as numpy arrays of uint8 / int64."""
    for place in places():
        if place.suffix == ".npz" and place.is_file():
            with np.load(place) as npz:
                return npz["x_train"], npz["y_train"].astype(np.int64), npz["x_test"], npz["y_test"].astype(np.int64)
        if place.is_dir():
            found = [next((place / s for s in spellings(n) if (place / s).is_file()), None) for n in FILES]
            if all(found):
                arrays = [read_idx(p) for p in found]
                return arrays[0], arrays[1].astype(np.int64), arrays[2], arrays[3].astype(np.int64)
    sys.exit("{_c('not_found', lang)}")
'''


def _split_code(lang: str) -> str:
    return f'''# {_c('split_doc', lang)}
n = len(train_labels)
if VAL_SHARE > 0 and n >= 2:
    k = min(n - 1, max(1, round(VAL_SHARE * n)))
    split_gen = torch.Generator().manual_seed(SEED + {SPLIT_STREAM:#x})
    val_idx = torch.randperm(n, generator=split_gen)[:k].sort().values
else:
    val_idx = torch.zeros(0, dtype=torch.int64)
keep = torch.ones(n, dtype=torch.bool)
keep[val_idx] = False
train_idx = keep.nonzero().flatten()
train_idx = train_idx[: min(len(train_idx), TRAIN_SIZE or len(train_idx))]
# {_c('edits_doc', lang)}
dropped = torch.tensor([i for i, label in LABEL_EDITS if label == -1], dtype=torch.int64)
if len(dropped):
    train_idx = train_idx[~torch.isin(train_idx, dropped)]
    val_idx = val_idx[~torch.isin(val_idx, dropped)]
for i, label in LABEL_EDITS:
    if label != -1:
        train_labels[i] = label

x_train, y_train = train_images[train_idx], train_labels[train_idx]
x_val, y_val = train_images[val_idx], train_labels[val_idx]
print(f"training on {{len(y_train)}} images, validating on {{len(y_val)}}")
'''


def _optimizer_code(config: TrainConfig, lang: str) -> str:
    impl = "fused=True" if config.optimizer in FUSED else "foreach=True"
    rules = "\n".join(f"#   {rule}" for rule in UPDATE_RULES[config.optimizer])
    return f'''# {_c('optimizer_doc', lang, name=config.optimizer)}
{rules}
# {_c('fused_doc', lang)}
optimizer = {OPTIMIZER_CODE[config.optimizer].format(impl=impl)}


def lr_factor(step, total_steps):
    """{_c('schedule_doc', lang)}"""
    if total_steps <= 1:
        return 1.0
    progress = min(max(step - 1, 0), total_steps) / total_steps
    {SCHEDULE_CODE[config.schedule]}
'''


def _evaluate_code(lang: str) -> str:
    return f'''@torch.no_grad()
def evaluate(images, labels):
    """{_c('evaluate_doc', lang)}"""
    if len(labels) == 0:
        return math.nan, math.nan
    model.eval()  # {_c('eval_mode', lang)}
    loss_sum, correct = 0.0, 0
    for i in range(0, len(labels), {EVAL_BATCH}):
        x = normalize(images[i : i + {EVAL_BATCH}].to(DEVICE))
        y = labels[i : i + {EVAL_BATCH}].to(DEVICE)
        z = model(x)
        loss_sum += F.cross_entropy(z, y, reduction="sum").item()
        correct += (z.argmax(1) == y).sum().item()
    model.train()
    return loss_sum / len(labels), correct / len(labels)
'''


# f′ times the error g, given z and a = f(z): the same kernels as dlplay's dense engine (and autograd)
FPRIME_CODE = {
    "relu": "torch.where(z > 0, g, 0.0)",
    "leaky_relu": "torch.where(z > 0, g, g * 0.01)",
    "elu": "g * torch.where(z > 0, 1.0, torch.exp(torch.clamp(z, max=0.0)))",
    "gelu": "torch.ops.aten.gelu_backward(g, z)",
    "tanh": "torch.ops.aten.tanh_backward(g, a)",
    "sigmoid": "torch.ops.aten.sigmoid_backward(g, a)",
    "softplus": "g * torch.where(z > 20, 1.0, 1.0 / (1.0 + torch.exp(-torch.clamp(z, max=20.0))))",
    IDENTITY: "g",
}
FPRIME_TEXT = {
    "relu": "f′(z) = 1 if z > 0 else 0",
    "leaky_relu": "f′(z) = 1 if z > 0 else 0.01",
    "elu": "f′(z) = 1 if z > 0 else exp(z)",
    "gelu": "f′(z) = Φ(z) + z·φ(z)",
    "tanh": "f′(z) = 1 − a²",
    "sigmoid": "f′(z) = a·(1 − a)",
    "softplus": "f′(z) = sigmoid(z)",
    IDENTITY: "f′(z) = 1",
}


def is_dense(spec: ModelSpec) -> bool:
    """Only dense layers: dlplay trains it with its dense engine, and so does the script (backward written out)."""
    return all(layer.kind == DENSE for layer in spec.layers)


def dense_step_code(spec: ModelSpec, lang: str) -> str:
    """forward_backward(x, y) for a dense network: the tutorial's equations, the dense engine's kernels."""
    names = block_names(spec)[:-1]
    hidden = ", ".join(f"(model.{n}, \"{layer.activation}\", {layer.dropout})" for n, layer in zip(names, spec.layers))
    used = sorted({layer.activation for layer in spec.layers})
    f_lines = "\n".join(f"    \"{a}\": lambda z: {ACTIVATION_CALLS[a]}," for a in used)
    fp_lines = "\n".join(f"    \"{a}\": lambda g, z, a: {FPRIME_CODE[a]},  # {FPRIME_TEXT[a]}" for a in used)
    return f'''# {_c('dense_step', lang)}
HIDDEN = [{hidden}]  # (layer, f, dropout p)
ACTIVATION = {{  # f
{f_lines}
}}
F_PRIME_TIMES = {{  # g ⊙ f′(z)
{fp_lines}
}}


@torch.no_grad()
def forward_backward(x, y):
    """{_c('fb_doc', lang)}"""
    batch = x.shape[0]
    a = x.reshape(batch, -1)
    inputs, zs, acts, masks = [a], [], [], []
    for layer, f, p in HIDDEN:
        z = layer(a)  # z = W a + b
        a = ACTIVATION[f](z)  # a = f(z)
        zs.append(z)
        acts.append(a)
        mask = None
        if p > 0:  # {_c('dropout', lang)}
            mask = torch.empty_like(a).bernoulli_(1.0 - p).div_(1.0 - p)
            a = a * mask
        masks.append(mask)
        inputs.append(a)
    z = model.output(a)  # z_L = W a + b: the logits
    log_p = torch.log_softmax(z, 1)
    loss = torch.nn.functional.nll_loss(log_p, y)  # J = −mean log softmax(z_L)[y]

    # δ_L = (softmax(z_L) − onehot(y)) / batch
    delta = torch.exp(log_p)
    delta.scatter_add_(1, y.view(-1, 1), torch.full((batch, 1), -1.0, device=x.device)).mul_(1.0 / batch)
    layers = [layer for layer, _, _ in HIDDEN] + [model.output]
    for i in range(len(layers) - 1, -1, -1):
        W = layers[i].weight
        W.grad = torch.mm(delta.t(), inputs[i])  # ∂J/∂W_l = δ_l a_(l−1)ᵀ
        layers[i].bias.grad = torch.sum(delta, 0)  # ∂J/∂b_l = δ_l
        if i == 0:
            break
        g = torch.mm(delta, W)  # Wᵀ δ: {_c('back_project', lang)}
        if masks[i - 1] is not None:
            g = g.mul_(masks[i - 1])
        z, a = zs[i - 1], acts[i - 1]
        delta = F_PRIME_TIMES[HIDDEN[i - 1][1]](g, z, a)  # δ_(l−1) = (Wᵀ δ_l) ⊙ f′(z_(l−1))
    return loss, z
'''


def _train_code(spec: ModelSpec, lang: str) -> str:
    if is_dense(spec):
        step = f"""        loss, _ = forward_backward(x, y)  # {_c('forward', lang)} {_c('then_backward', lang)}
        optimizer.step()  # {_c('step', lang)}"""
    else:
        step = f"""        z = model(x)  # {_c('forward', lang)}
        loss = F.cross_entropy(z, y)  # J = −mean log softmax(z)[y]

        optimizer.zero_grad()
        # {_c('backward', lang)}
        #   δ_L = softmax(z_L) − onehot(y)
        #   δ_l = (W_(l+1)ᵀ δ_(l+1)) ⊙ f′(z_l)
        #   ∂J/∂W_l = δ_l a_(l−1)ᵀ,   ∂J/∂b_l = δ_l
        loss.backward()
        optimizer.step()  # {_c('step', lang)}"""
    return f'''steps_per_epoch = math.ceil(len(y_train) / BATCH_SIZE)
total_steps = steps_per_epoch * EPOCHS
batch_gen = torch.Generator().manual_seed(SEED)  # {_c('batch_order', lang)}
torch.manual_seed(SEED)  # {_c('dropout_seed', lang)}
x_train, y_train = x_train.to(DEVICE), y_train.to(DEVICE)
best_loss, best_epoch, best_state = math.inf, 0, None
step = 0
model.train()
for epoch in range(EPOCHS):
    perm = torch.randperm(len(y_train), generator=batch_gen).to(DEVICE)
    loss_sum = 0.0
    for i in range(steps_per_epoch):
        idx = perm[i * BATCH_SIZE : (i + 1) * BATCH_SIZE]
        x = normalize(torch.index_select(x_train, 0, idx))
        y = torch.index_select(y_train, 0, idx)
        step += 1
        if SCHEDULE != "constant":
            for group in optimizer.param_groups:
                group["lr"] = LEARNING_RATE * lr_factor(step, total_steps)

{step}
        loss_sum += loss.item()
        if not math.isfinite(loss.item()):
            sys.exit(f"the loss is {{loss.item()}} at step {{step}}: the training diverged (try a smaller learning rate)")

    test_loss, test_acc = evaluate(test_images, test_labels)
    val_loss, val_acc = evaluate(x_val, y_val)
    print(f"epoch {{epoch + 1}}/{{EPOCHS}}: train loss {{loss_sum / steps_per_epoch:.4f}}, "
          f"test loss {{test_loss:.4f}}, test accuracy {{test_acc:.4f}}, val loss {{val_loss:.4f}}")
    if PATIENCE:  # {_c('early_stop', lang)}
        if math.isfinite(val_loss) and val_loss < best_loss:
            best_loss, best_epoch = val_loss, epoch + 1
            best_state = {{k: v.detach().clone() for k, v in model.state_dict().items()}}
        stop = epoch + 1 - best_epoch >= PATIENCE
        if (stop or epoch + 1 == EPOCHS) and best_state is not None and best_epoch != epoch + 1:
            model.load_state_dict(best_state)
            print(f"early stopping: the weights of epoch {{best_epoch}} are back")
        if stop:
            break
'''


def _result_code(lang: str) -> str:
    return f'''test_loss, test_acc = evaluate(test_images, test_labels)
print(f"TEST ACCURACY {{test_acc:.6f}}")
# {_c('save', lang)}
torch.save(model.state_dict(), "model.pt")
'''


def wrap(text: str, width: int = 88) -> str:
    """A paragraph of the docstring in lines of at most ``width`` characters (Chinese breaks anywhere)."""
    return "\n".join(textwrap.wrap(text, width, break_on_hyphens=False))


def _header(spec: ModelSpec, config: TrainConfig, lang: str) -> str:
    info = get_info(config.dataset)
    own = is_own(config.dataset)
    how = translate("ownexport.c_how_to_run", lang) if own else _c("how_to_run", lang)
    json_import = "import json\n" if own else ""
    return f'''"""{wrap(_c('title', lang, model=spec.describe(image_input=True), dataset=info.title))}

{wrap(how)}
    python dlplay_run.py

{wrap(_c('reproduces', lang))}
"""
import gzip
{json_import}import math
import os
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
'''


def pytorch_sections(spec: ModelSpec, config: TrainConfig, lang: str = "en") -> list[Section]:
    """The script's parts in order, each with its heading in ``lang``."""
    h = lambda key: translate(f"export.h_{key}", lang)  # noqa: E731
    layout = (f"if DEVICE == \"cpu\":  # {_c('channels_last', lang)}\n"
              "    model = model.to(memory_format=torch.channels_last)\n") if has_conv(spec) else ""
    model = (model_code(spec, lang) + "\n\n" + "torch.manual_seed(SEED)  # " + _c("init_seed", lang) + "\n"
             + "model = Net()\n" + _init_code(spec.init, lang) + "model = model.to(DEVICE)\n" + layout + "print(model)\n")
    return [
        Section(h("imports"), _header(spec, config, lang)),
        Section(h("settings"), _settings(spec, config, lang)),
        Section(h("data"), _data_code(config, lang)),
        Section(h("split"), _split_code(lang)),
        Section(h("model"), model),
        Section(h("optimizer"), _optimizer_code(config, lang)),
        Section(h("evaluate"), _evaluate_code(lang)),
        *([Section(h("dense_step"), dense_step_code(spec, lang))] if is_dense(spec) else []),
        Section(h("train"), _train_code(spec, lang)),
        Section(h("result"), _result_code(lang)),
    ]


def pytorch_script(spec: ModelSpec, config: TrainConfig, lang: str = "en") -> str:
    """The whole script: the sections one after another, each under a comment with its heading."""
    parts = []
    for i, section in enumerate(pytorch_sections(spec, config, lang)):
        if i:
            parts.append(f"\n# {'-' * 70}\n# {section.title}\n# {'-' * 70}\n")
        parts.append(section.code)
    return "\n".join(parts)
