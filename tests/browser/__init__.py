"""Tests that drive a real browser (headless Chromium) against a live CKAN server."""
