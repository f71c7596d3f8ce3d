"""The package installs into an environment of its own, from its wheel.

The wheel is built offline from a copy of the checkout (with the running
interpreter's setuptools, no build isolation), then installed into a fresh
virtualenv with ``--no-deps --no-index``: the test proves that the wheel
holds everything skprune needs, without downloading anything.

The new virtualenv reaches the dependencies (numpy, torch, ...) already
installed for the running interpreter through a ``.pth`` file naming their
site-packages. A ``.pth`` line only *appends* that folder to ``sys.path``: the
``.pth`` files inside it, such as the editable install's hook that points
back at the checkout, are not run, so ``import skprune`` in the new
virtualenv can only find the installed wheel. (``--system-site-packages``
would not do: it exposes the base interpreter's packages, not those of the
virtualenv that runs the tests.) The interpreter runs isolated (``-I``) from
a temporary directory, so neither the checkout nor ``PYTHONPATH`` is on its
path either.
"""

import os
import shutil
import site
import subprocess
import sys
import sysconfig
import textwrap
import tomllib
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Needed by the benchmark only (the ``benchmark`` extra); ``import skprune``
#: must work without them. (tabulate and tqdm come with skorch anyway.)
BENCHMARK_ONLY = ("matplotlib", "jinja2")

#: Not copied from the checkout to build the wheel from: build outputs and
#: caches (hidden entries, such as the virtualenv and local data, neither).
IGNORED = shutil.ignore_patterns(
    "build", "dist", "*.egg-info", "__pycache__", "*.pyc", "results", "_build",
    "auto_examples", "generated", "dask-worker-space",
)


def _run(command, **kwargs):
    completed = subprocess.run(command, capture_output=True, text=True, timeout=300, **kwargs)
    assert completed.returncode == 0, (
        f"{' '.join(map(str, command))} failed:\n{completed.stdout}\n{completed.stderr}"
    )
    return completed


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """A wheel built from a copy of the checkout (the checkout gets no build/)."""
    pytest.importorskip("setuptools", reason="building the wheel needs setuptools")
    source = tmp_path_factory.mktemp("source")
    # Everything a build could pick up, benchmarks/ and tests/ included, so
    # that the wheel leaving them out is a result of the package's settings.
    for entry in ROOT.iterdir():
        if entry.name.startswith(".") or IGNORED(ROOT, [entry.name]):
            continue
        if entry.is_dir():
            shutil.copytree(entry, source / entry.name, ignore=IGNORED)
        else:
            shutil.copy2(entry, source / entry.name)
    out = tmp_path_factory.mktemp("wheel")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
          "--no-index", "--quiet", "--wheel-dir", str(out), str(source)],
         env={**os.environ, "PIP_NO_INPUT": "1"})
    (path,) = out.glob("skprune-*.whl")
    return path


def test_the_metadata_states_lower_bounds_only():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = project["dependencies"] + [
        req for extra in project["optional-dependencies"].values() for req in extra
    ]
    for requirement in requirements:
        assert "==" not in requirement and "<" not in requirement, requirement
    assert project["requires-python"] == ">=3.11"
    names = {req.split("[")[0].split(">")[0].split("=")[0].strip()
             for req in project["dependencies"]}
    assert not names & set(BENCHMARK_ONLY + ("tabulate",))
    assert {"torch", "torchvision", "scikit-learn", "imbalanced-learn"} <= names
    constraints = (ROOT / "constraints.txt").read_text()
    assert "torch==" in constraints and "torchvision==" in constraints


@pytest.mark.slow
def test_the_wheel_installs_fits_and_needs_no_benchmark_dependency(wheel, tmp_path):
    names = zipfile.ZipFile(wheel).namelist()
    assert "skprune/__init__.py" in names
    assert not [name for name in names if name.startswith("benchmarks/")]
    assert not [name for name in names if name.split("/")[0] in ("tests", "docs", "tools",
                                                                  "examples")]
    metadata = next(name for name in names if name.endswith(".dist-info/METADATA"))
    metadata = zipfile.ZipFile(wheel).read(metadata).decode()
    assert "Requires-Python: >=3.11" in metadata
    assert "Provides-Extra: benchmark" in metadata

    env_dir = tmp_path / "env"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    env_site = Path(_run([python, "-I", "-c",
                          "import sysconfig; print(sysconfig.get_path('purelib'))"]
                         ).stdout.strip())
    # The running interpreter's site-packages, appended after the new one's.
    dependencies = dict.fromkeys(
        [sysconfig.get_path("purelib"), sysconfig.get_path("platlib"), *site.getsitepackages()]
    )
    (env_site / "dependencies.pth").write_text("".join(f"{path}\n" for path in dependencies))
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
          "--no-index", "--quiet", str(wheel)])

    # One interpreter (imports cost seconds) checks the installed wheel and
    # that no module of skprune imports matplotlib or jinja2 (the
    # ``benchmark`` extra).
    code = textwrap.dedent(f"""
        import importlib, importlib.metadata, importlib.util, pkgutil, sys
        from pathlib import Path
        from packaging.requirements import Requirement

        blocked = {BENCHMARK_ONLY!r}
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in blocked:
                    raise ImportError("blocked " + name)
        sys.meta_path.insert(0, Block())

        import skprune
        from sklearn.datasets import load_digits
        from skprune import RandomPruner

        assert Path(skprune.__file__).is_relative_to({str(env_dir)!r}), skprune.__file__
        for module in pkgutil.walk_packages(skprune.__path__, "skprune."):
            importlib.import_module(module.name)
        assert importlib.util.find_spec("benchmarks") is None
        # The installed versions meet the wheel's own requirements.
        for text in importlib.metadata.requires("skprune"):
            requirement = Requirement(text)
            if requirement.marker and not requirement.marker.evaluate({{"extra": ""}}):
                continue
            version = importlib.metadata.version(requirement.name)
            assert requirement.specifier.contains(version, prereleases=True), (text, version)

        X, y = load_digits(return_X_y=True)
        X_kept, y_kept = RandomPruner(density=0.5, random_state=0).fit_resample(X / 16, y)
        assert len(X_kept) == len(y_kept) == round(0.5 * len(X)), len(X_kept)
        print(skprune.__file__, importlib.metadata.version("skprune"))
    """)
    completed = _run([python, "-I", "-c", code], cwd=tmp_path)
    assert str(env_dir) in completed.stdout
