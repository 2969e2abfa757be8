"""Prompt templates: the light front (:mod:`.template`) and the Jinja2 sandbox (:mod:`.sandbox`).

Shared by three layers (suites validate templates, evaluate renders them, optimize checks
candidates), so it sits below all of them and imports none of them.
"""
