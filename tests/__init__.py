"""The tests: a package, so a scenario can name a test's scripted engine by import path (``tests.fakes``)."""
