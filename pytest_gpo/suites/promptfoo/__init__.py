"""promptfoo suites: ``promptfooconfig.yaml`` files read into pytest-gpo's own suite model.

Importing this package is cheap (only :mod:`.names`); the loader (:mod:`.load`) imports the
suite model, the scorers and PyYAML when a config is collected.
"""
