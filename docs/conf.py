"""Sphinx configuration of the skprune documentation.

Build with ``make docs`` (warnings are errors). The API reference is generated
from ``skprune.__all__`` (see ``sphinxext/skprune_docs.py``), the gallery from
``examples/``.
"""

import shutil
import sys
from importlib import metadata
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
# Document the checkout (not an installed copy) and find the local extension.
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(DOCS / "sphinxext"))

import skprune  # noqa: E402

# -- Project ------------------------------------------------------------------

project = "skprune"
author = "the skprune developers"
copyright = "2025, the skprune developers"
release = skprune.__version__
version = ".".join(release.split(".")[:2])

# -- General ------------------------------------------------------------------

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "skprune_docs",
]

templates_path = ["_templates"]
exclude_patterns = [
    "_build",
    "Thumbs.db",
    ".DS_Store",
    # Included by api.rst, not a page of its own (written by skprune_docs).
    "_api_sections.rst",
    # Gallery outputs sphinx-gallery writes but never links.
    "auto_examples/*.ipynb",
    "auto_examples/*.py",
    "auto_examples/*.zip",
    "auto_examples/*.md5",
    "auto_examples/*.codeobj.json",
    # Execution-time pages of older builds (see write_computation_times).
    "sg_execution_times.rst",
    "auto_examples/sg_execution_times.rst",
]
root_doc = "index"
default_role = "literal"
# Every cross-reference to skprune must resolve; references into libraries
# whose inventories are not available offline are ignored (no intersphinx:
# the build machine has no internet).
nitpicky = True
nitpick_ignore_regex = [
    (r"py:.*", r"(sklearn|imblearn|numpy|np|scipy|torch|skorch|pandas|joblib|dask|"
               r"distributed|matplotlib)(\..*)?"),
    # Relative names in imbalanced-learn's docstrings (e.g. Pipeline's
    # ``utils.metadata_routing.MetadataRouter``).
    (r"py:.*", r"utils\..*"),
]

# -- autodoc / autosummary / numpydoc -----------------------------------------

autosummary_generate = ["_api_sections.rst"]
autosummary_imported_members = True
autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "none"
# A method without a docstring stays undocumented instead of borrowing its
# parent's (e.g. a torch module's ``forward``).
autodoc_inherit_docstrings = False

numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
numpydoc_xref_param_type = False

# -- HTML ---------------------------------------------------------------------

html_theme = "pydata_sphinx_theme"
html_title = f"skprune {release}"
html_static_path = ["_static"]
html_css_files = ["skprune.css"]
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "header_links_before_dropdown": 6,
    "secondary_sidebar_items": ["page-toc", "sourcelink"],
}
# An explicit default: without one the theme logs a JavaScript error ("invalid
# theme mode") on a reader's first visit.
html_context = {"default_mode": "auto"}
html_sidebars = {"index": [], "install": []}
html_show_sourcelink = False

# -- Math: MathJax ships with the pages ----------------------------------------

# Sphinx loads MathJax from a CDN by default: without internet every formula
# would show as raw LaTeX. The pages load MathJax 3 from their own _static
# folder instead; its files come from the sphinx-mathjax-offline package (the
# ``docs`` extra), copied by ``_copy_mathjax`` below. ``make docs-check``
# verifies in headless Chromium that every formula renders offline.
MATHJAX_DISTRIBUTION = "sphinx-mathjax-offline"
# What the pages use of that MathJax copy: the TeX-to-HTML component, the TeX
# extensions it autoloads, its fonts, and the menu's accessibility parts
# (loaded on demand). Not the other combined components, nor ``latest.js``,
# which loads MathJax from a CDN.
MATHJAX_FILES = ["tex-chtml.js", "input", "output/chtml.js", "output/chtml", "ui", "a11y", "sre"]
mathjax_path = "mathjax/tex-chtml.js"  # relative to _static


def _mathjax_source():
    """The folder of MathJax's files in the installed sphinx-mathjax-offline."""
    try:
        dist = metadata.distribution(MATHJAX_DISTRIBUTION)
    except metadata.PackageNotFoundError:
        dist = None
    source = (None if dist is None
              else Path(dist.locate_file("sphinx-mathjax-offline/static/mathjax")))
    if source is None or not (source / "tex-chtml.js").is_file():
        raise RuntimeError(
            f"The docs ship MathJax from the {MATHJAX_DISTRIBUTION!r} package, which is not "
            "installed: pip install -e '.[docs]' (make docs does)."
        )
    return source


def _copy_mathjax(app):
    if app.builder.format != "html":
        return
    source = _mathjax_source()
    target = Path(app.outdir) / "_static" / "mathjax"
    for name in MATHJAX_FILES:
        if (source / name).is_dir():
            shutil.copytree(source / name, target / name, dirs_exist_ok=True)
        else:
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / name, target / name)


def setup(app):
    app.connect("builder-inited", _copy_mathjax)

# -- sphinx-gallery -----------------------------------------------------------

sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    # Overwritten by skprune_docs with the examples whose skprune imports
    # resolve; the others are shown without being run (and warned about).
    "filename_pattern": r"/plot_",
    "within_subsection_order": "skprune_docs.ExampleOrder",
    "backreferences_dir": "generated/backreferences",
    "doc_module": ("skprune",),
    "show_memory": False,
    "download_all_examples": False,
    "remove_config_comments": True,
    "min_reported_time": 1,
    # A class or function without examples has no mini-gallery; not a problem.
    "log_level": {"backreference_missing": "debug"},
    "matplotlib_animations": False,
    # No sg_execution_times pages: their table loads jQuery and DataTables
    # from CDNs, so offline it is broken (the build log has the times).
    "write_computation_times": False,
}

# -- API reference (generated from skprune.__all__ by skprune_docs) ------------

# (title, text under the title, names). Bare names must be exported by
# skprune (skprune.__all__); dotted names ("skprune.models.MLP") are
# documented where they live. A name that skprune exports but no section
# lists still gets documented, under "Other public names"; a listed name that
# skprune does not export (or that cannot be imported) is a build warning.
skprune_api_sections = [
    (
        "Pruners",
        "Samplers (``fit_resample``) that keep ``round(density * n_samples)`` "
        "rows. Each strategy only defines a per-sample score; the class quota "
        "is shared. See :ref:`strategies`.",
        # Every strategy, in the order its subpackage exports it: a new one
        # needs no entry here.
        ["DataPruner", *skprune.strategies.__all__],
    ),
    (
        "Quotas",
        "How the kept budget is split across classes, or groups (a pruner's "
        "``quota``). See :ref:`quotas`.",
        ["MetriQ", "StrategyQ", "ProportionalQuota", "BalancedQuota", "GivenWeights",
         "SUBG", "ValidationPredictions", "allocate_class_counts", "error_weights",
         "error_rate_spread", "equal_rates_pvalue", "make_quota", "QUOTAS"],
    ),
    (
        "Class- and group-wise fairness metrics",
        "Per-class recall, per-group accuracy and the scorers that select on "
        "them. See :ref:`model_selection` and :ref:`groups`.",
        ["ClassRecallScorer", "CLASS_RECALL_SCORING", "class_recall", "class_recall_report",
         "GroupRecallScorer", "group_recall_report", "worst_group_accuracy"],
    ),
    (
        "Pipelines",
        "imbalanced-learn's pipeline (samplers run at fit time only), which "
        "also hands step parameters such as ``groups`` to pruners. See "
        ":ref:`pipelines`.",
        ["Pipeline", "make_pipeline", "corrected_epochs"],
    ),
    (
        "Writing your own quota",
        "The interface of quota objects. See :ref:`custom_quotas`.",
        ["BaseQuota"],
    ),
    (
        "Per-sample gradients",
        "The exact per-sample gradient norms behind GraNd, the routes they "
        "take, and norm rules for one's own layers. See "
        ":ref:`per_sample_gradients`.",
        ["per_sample_grad_norms", "skprune.gradients.grad_norm_routes",
         "skprune.gradients.register_norm_rule", "skprune.gradients.NormRule"],
    ),
]

# (module, title, text). Documented with the names in the module's __all__;
# a module that fails to import is a build warning.
skprune_api_modules = [
    (
        "skprune.scores",
        "Score functions",
        "Every strategy's per-sample score as a function of recorded arrays, for "
        "a training loop of your own. See :ref:`own_loop`.",
    ),
    (
        "skprune.recording",
        "Recording training dynamics",
        "The recorder any training loop can feed, batch by batch. See "
        ":ref:`own_loop`.",
    ),
    (
        "skprune.callbacks",
        "skorch callbacks",
        "The skorch adapter of the recorder, which the training-dynamics "
        "strategies (Forgetting, Dynamic Uncertainty, AUM) add to their query "
        "network. See :ref:`strategies`.",
    ),
    (
        "skprune.datasets",
        "Datasets",
        "Loaders for the datasets of the examples and the fairness benchmark. "
        "See :ref:`benchmark`.",
    ),
    (
        "skprune.models",
        "Models",
        "Networks and training recipes of the fairness benchmark. See "
        ":ref:`benchmark`.",
    ),
    (
        "skprune.selection",
        "Selection rules",
        "Which rows a class keeps, given their scores and its count (a "
        "pruner's ``selection``); \"hardest first\" is only the default.",
    ),
    (
        "skprune.utils",
        "Writing and checking pruners",
        "The tags a strategy declares and checks of a pruner's settings. See "
        ":ref:`pipelines`.",
    ),
    (
        "skprune.utils.estimator_checks",
        "Pruner checks",
        "The guarantees every pruner keeps, as checks for your own. See "
        ":ref:`contributing`.",
    ),
    (
        "skprune.exceptions",
        "Exceptions and warnings",
        "What skprune raises and warns about.",
    ),
]
