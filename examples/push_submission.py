#!/usr/bin/env python3
"""Push a council's file for one data return and period to the platform, as a
council's own system would (one API call), and print the validation result.

    CKAN_URL=https://data.example.scot CKAN_TOKEN=<API token of a council editor> \
        python examples/push_submission.py council-tax-collection aberdeen-city 2024-25 ctas.csv

The token is created on the user's page (API tokens) of an editor of the
council. Exit status: 0 valid, 1 invalid (the errors are printed), 2 other
problems (network, rights, a file refused outright).

The push is safe to retry: it sends an Idempotency-Key (one per push), so
when the platform is unavailable (HTTP 502/503/504) or the connection fails,
it tries again with backoff (PUSH_ATTEMPTS times, waiting PUSH_BACKOFF
seconds, then twice as long each time), and a retry of a push the platform
did receive returns that upload instead of making a second one.
"""
from __future__ import annotations

import os
import sys
import time
import uuid

import ckanapi
import requests

RETRY_STATUSES = (502, 503, 504)


def push(url: str, token: str, data_return: str, council: str, period: str, path: str,
         attempts: int = 6, backoff: float = 2.0) -> dict:
    session = requests.Session()
    session.headers["Idempotency-Key"] = str(uuid.uuid4())  # the same for every attempt of this push
    statuses: list[int] = []
    session.hooks["response"].append(lambda response, *args, **kwargs: statuses.append(response.status_code))
    site = ckanapi.RemoteCKAN(url, apikey=token, user_agent="lgdp-push-example/1.1", session=session)
    attempt = 0
    while True:
        attempt += 1
        statuses.clear()
        try:
            with open(path, "rb") as f:
                return site.action.lgdp_submission_upload(
                    data_return=data_return, council=council, period=period,
                    upload=f, wait="true",
                )
        except (requests.ConnectionError, requests.Timeout) as e:
            problem = f"no answer ({type(e).__name__})"
        except ckanapi.CKANAPIError:
            if not statuses or statuses[-1] not in RETRY_STATUSES:
                raise
            problem = f"HTTP {statuses[-1]}"
        if attempt >= attempts:
            raise ckanapi.CKANAPIError(f"gave up after {attempts} attempts: {problem}")
        delay = backoff * 2 ** (attempt - 1)
        print(f"attempt {attempt}: {problem}; trying again in {delay:g} s", file=sys.stderr)
        time.sleep(delay)


def main(argv: list[str]) -> int:
    if len(argv) != 5:
        print(__doc__, file=sys.stderr)
        return 2
    _, data_return, council, period, path = argv
    try:
        result = push(os.environ["CKAN_URL"], os.environ["CKAN_TOKEN"], data_return, council, period, path,
                      attempts=int(os.environ.get("PUSH_ATTEMPTS", "6")),
                      backoff=float(os.environ.get("PUSH_BACKOFF", "2")))
    except ckanapi.ValidationError as e:
        error = e.error_dict
        print("NOT ACCEPTED:", "; ".join(error.get("upload") or []))
        for row in error.get("errors") or []:
            print(f"  {row.get('summary') or row.get('message')}")
        if error.get("upload_id"):
            print(f"  (the file is kept as upload {error['upload_id']})")
        return 1
    except (ckanapi.NotAuthorized, ckanapi.NotFound, ckanapi.CKANAPIError, KeyError, OSError) as e:
        print(f"could not push the file: {e}", file=sys.stderr)
        return 2
    upload = result["upload"]
    print(f"{result['message']} (submission {result['submission']['name']}, upload {upload['version']}, "
          f"{upload['rows']} rows)")
    for query in upload.get("queries") or []:
        print(f"  query to explain before sign-off: {query['message']}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
