"""Adapters that build scored-QA suites from public graded datasets."""
