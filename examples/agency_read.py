#!/usr/bin/env python3
"""What an agency analyst reads through the API: the submissions of the
returns the agency owns or requests (submitted or later, every council), each
one's accepted file, and the return's consolidated table.

    CKAN_URL=https://data.example.scot CKAN_TOKEN=<API token of an agency member> \
        python examples/agency_read.py council-tax-collection

Only what the access policy lets the token's user read comes back: a return
the agency did not request lists nothing.
"""
from __future__ import annotations

import os
import sys

import ckanapi
import requests


def submissions(site: ckanapi.RemoteCKAN, data_return: str) -> list[dict]:
    found = site.action.package_search(
        fq=f'dataset_type:submission AND return_name:"{data_return}"',
        include_private=True, rows=1000, sort="name asc",
    )
    return found["results"]


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    url, token = os.environ["CKAN_URL"], os.environ["CKAN_TOKEN"]
    site = ckanapi.RemoteCKAN(url, apikey=token, user_agent="lgdp-agency-example/1.0")
    rows = submissions(site, argv[1])
    print(f"{len(rows)} submissions of {argv[1]}")
    for sub in rows:
        line = f"  {sub['organization']['title']:<28} {sub['period']:<10} {sub['submission_status']}"
        accepted = sub.get("accepted_upload") or sub.get("submitted_upload")
        res = next((r for r in sub.get("resources", []) if r["id"] == accepted), None)
        if res is not None:
            # the file, from the server we talk to (the resource URL names the site's public address)
            download = f"{url.rstrip('/')}/dataset/{sub['id']}/resource/{res['id']}/download"
            body = requests.get(download, headers={"Authorization": token}, timeout=30)
            body.raise_for_status()
            line += f"  file: {len(body.content.splitlines()) - 1} data rows"
        print(line)
    tables = site.action.package_search(
        fq=f'dataset_type:return-table AND data_return:"{site.action.package_show(id=argv[1])["id"]}"',
        include_private=True,
    )["results"]
    for table in tables:
        for res in table.get("resources", []):
            if res.get("datastore_active"):
                data = site.action.datastore_search(resource_id=res["id"], limit=5)
                print(f"table {table['name']}: {data['total']} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
