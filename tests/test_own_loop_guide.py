"""The user guide's "Your own training loop": its example runs as written, and does what it says."""

import re
from pathlib import Path

PAGE = Path(__file__).resolve().parents[1] / "docs" / "user_guide" / "own_loop.rst"


def python_blocks(text):
    """The ``.. code-block:: python`` blocks of an rst page, dedented."""
    blocks = re.findall(r"\.\. code-block:: python\n\n((?:(?:    .*)?\n)+)", text)
    return [re.sub(r"^    ", "", block, flags=re.MULTILINE) for block in blocks]


def test_the_plain_pytorch_example_runs_and_prunes(capsys):
    blocks = python_blocks(PAGE.read_text())
    assert len(blocks) == 1, "the page has one complete example"
    namespace = {"__name__": "__own_loop__"}
    exec(compile(blocks[0], str(PAGE), "exec"), namespace)
    out = capsys.readouterr().out
    assert "kept 449 of 898 rows" in out
    pruner, report = namespace["pruner"], namespace["report"]
    assert sum(pruner.class_counts_.values()) == 449
    assert min(pruner.class_counts_.values()) >= 1
    # A network trained on half the data still learns the digits.
    assert report["accuracy"] > 0.85
    recorder = namespace["recorder"]
    assert recorder.correct_.shape == (10, 898)
