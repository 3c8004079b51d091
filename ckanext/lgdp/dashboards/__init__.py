"""Benchmarking dashboards over the consolidated tables: a council against Scotland and its family group."""
