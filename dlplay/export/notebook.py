"""The PyTorch script as a Jupyter notebook: a heading (markdown) and a code cell per section."""
from __future__ import annotations

import nbformat
from nbformat import v4

from dlplay.export.script import pytorch_sections
from dlplay.i18n import translate
from dlplay.nn.spec import ModelSpec, TrainConfig


def notebook(spec: ModelSpec, config: TrainConfig, lang: str = "en") -> str:
    """The notebook as .ipynb JSON text (nbformat 4), the same code as :func:`~dlplay.export.script.pytorch_script`."""
    sections = pytorch_sections(spec, config, lang)
    cells = [v4.new_markdown_cell(f"# {spec.describe(image_input=True)}\n\n{translate('export.nb_intro', lang)}")]
    for section in sections:
        cells.append(v4.new_markdown_cell(f"## {section.title}"))
        cells.append(v4.new_code_cell(section.code.rstrip("\n")))
    nb = v4.new_notebook(cells=cells, metadata={
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    })
    nbformat.validate(nb)
    return nbformat.writes(nb)
