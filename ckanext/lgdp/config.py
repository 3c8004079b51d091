"""Typed getters for the options declared in config_declaration.yaml."""
from __future__ import annotations

import ckan.plugins.toolkit as tk


def service_check_timeout() -> int:
    return tk.config["ckanext.lgdp.service_check_timeout"]


def service_check_ttl() -> int:
    return tk.config["ckanext.lgdp.service_check_ttl"]


def max_upload_bytes() -> int:
    return tk.config["ckanext.lgdp.max_upload_mb"] * 1024 * 1024


def limit_columns(fields: int) -> int:
    """The most columns a file for a standard of ``fields`` fields may have."""
    cap = tk.config["ckanext.lgdp.limits.max_columns"]
    return min(cap, max(fields, 1) * tk.config["ckanext.lgdp.limits.columns_per_field"])


def limit_cell_chars() -> int:
    return tk.config["ckanext.lgdp.limits.max_cell_chars"]


def limit_rows() -> int:
    return tk.config["ckanext.lgdp.limits.max_rows"]


def xlsx_max_uncompressed_bytes() -> int:
    return tk.config["ckanext.lgdp.limits.xlsx_max_uncompressed_mb"] * 1024 * 1024


def validation_memory_bytes() -> int:
    return tk.config["ckanext.lgdp.validation_memory_mb"] * 1024 * 1024


def upload_wait_seconds() -> int:
    return tk.config["ckanext.lgdp.upload_wait_seconds"]


def validation_timeout_seconds() -> int:
    return tk.config["ckanext.lgdp.validation_timeout_seconds"]


def job_retry_after_seconds() -> int:
    """How long after a job failed for an outage the sweep queues it again."""
    return tk.config["ckanext.lgdp.jobs.retry_after_seconds"]


def download_timeout_seconds() -> int:
    return tk.config["ckanext.lgdp.download_timeout_seconds"]


def query_change_ratio() -> float:
    return float(tk.config["ckanext.lgdp.query_change_ratio"])


# ---------------------------------------------------------------- server-side fetches (fetch.py)


def fetch_allow_http() -> bool:
    return tk.asbool(tk.config["ckanext.lgdp.fetch.allow_http"])


def fetch_test_loopback() -> bool:
    return tk.asbool(tk.config["ckanext.lgdp.fetch.test_loopback"])


def fetch_allow_list() -> list[str]:
    return tk.aslist(tk.config["ckanext.lgdp.fetch.allow_list"])


def fetch_deny_list() -> list[str]:
    return tk.aslist(tk.config["ckanext.lgdp.fetch.deny_list"])


def fetch_connect_timeout_seconds() -> float:
    return float(tk.config["ckanext.lgdp.fetch.connect_timeout_seconds"])


def fetch_max_redirects() -> int:
    return int(tk.config["ckanext.lgdp.fetch.max_redirects"])


# ---------------------------------------------------------------- scheduler and health (ops/)


def schedule_cron(job: str) -> str:
    """The cron string of a scheduled job ('' when it is disabled)."""
    return (tk.config.get(f"ckanext.lgdp.schedule.{job}") or "").strip()


def schedule_timezone() -> str:
    return tk.config["ckanext.lgdp.schedule.timezone"]


def schedule_job_timeout() -> int:
    return int(tk.config["ckanext.lgdp.schedule.job_timeout"])


def scheduler_heartbeat_seconds() -> int:
    return max(1, int(tk.config["ckanext.lgdp.scheduler.heartbeat_seconds"]))


def worker_heartbeat_seconds() -> int:
    return max(1, int(tk.config["ckanext.lgdp.worker.heartbeat_seconds"]))


def worker_reconnect_max_seconds() -> int:
    return max(1, int(tk.config["ckanext.lgdp.worker.reconnect_max_seconds"]))


def queue_stuck_seconds() -> int:
    return int(tk.config["ckanext.lgdp.health.queue_stuck_seconds"])
