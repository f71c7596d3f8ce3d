"""pytest configuration for the doctests in the documentation's .rst files.

``pytest --doctest-glob="*.rst" docs`` runs the ``>>>`` examples of the user
guide. Sphinx's own files here are not test modules.
"""

collect_ignore = ["conf.py", "sphinxext"]
collect_ignore_glob = ["_build/*", "auto_examples/*", "generated/*", "_api_sections.rst"]
