"""Sphinx configuration of the skprune documentation.

Build with ``make docs`` (warnings are errors). The API reference is generated
from ``skprune.__all__`` (see ``sphinxext/skprune_docs.py``), the gallery from
``examples/``.
"""

import sys
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
html_sidebars = {"index": [], "install": []}
html_show_sourcelink = False

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
}

# -- API reference (generated from skprune.__all__ by skprune_docs) ------------

# (title, text under the title, names). Bare names must be exported by
# skprune (skprune.__all__); dotted names ("skprune.quotas.BaseQuota") are
# documented where they live. A name that skprune exports but no section
# lists still gets documented, under "Other public names"; a listed name that
# skprune does not export (or that cannot be imported) is a build warning.
skprune_api_sections = [
    (
        "Pruners",
        "Samplers (``fit_resample``) that keep ``round(density * n_samples)`` "
        "rows. Each strategy only defines a per-sample score; the class quota "
        "is shared. See :ref:`strategies`.",
        [
            "DataPruner",
            "RandomPruner",
            "EL2NPruner",
            "GraNdPruner",
            "ForgettingPruner",
            "DynamicUncertaintyPruner",
        ],
    ),
    (
        "Class quotas",
        "How the kept budget is split across classes (a pruner's ``quota``). "
        "See :ref:`quotas`.",
        ["MetriQ", "StrategyQ", "allocate_class_counts"],
    ),
    (
        "Class-wise fairness metrics",
        "Per-class recall and the scorers that select on it. See "
        ":ref:`model_selection`.",
        ["ClassRecallScorer", "CLASS_RECALL_SCORING", "class_recall", "class_recall_report"],
    ),
    (
        "Pipelines",
        "imbalanced-learn's pipeline, re-exported: samplers run at fit time "
        "only. See :ref:`pipelines`.",
        ["Pipeline", "make_pipeline"],
    ),
    (
        "Writing your own quota",
        "The interface of quota objects. See :ref:`custom_quotas`.",
        ["skprune.quotas.BaseQuota"],
    ),
    (
        "Per-sample gradients",
        "The exact per-sample gradient norms behind GraNd. See :ref:`grand`.",
        ["per_sample_grad_norms"],
    ),
]

# (module, title, text). Documented with the names in the module's __all__;
# a module that fails to import is a build warning.
skprune_api_modules = [
    (
        "skprune.callbacks",
        "skorch callbacks",
        "The recorders the training-dynamics strategies (Forgetting, Dynamic "
        "Uncertainty) add to their query network. See :ref:`strategies`.",
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
]
