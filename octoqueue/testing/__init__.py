"""Test helpers shipped with octoqueue (e.g. :mod:`octoqueue.testing.fake_github`)."""
