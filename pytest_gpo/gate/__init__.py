"""The CI gate: a suite's verdict against its threshold and baseline, as data and in words."""
