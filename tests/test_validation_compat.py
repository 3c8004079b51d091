"""ckanext-validation 2.2.0 on CKAN 2.11: each known defect, shown fixed by the
lgdp_validation plugin, and a canary per defect that shows upstream still has
it. When a canary fails, upstream has fixed that defect: remove the matching
piece of ckanext/lgdp/validation_compat/ and this canary."""
from __future__ import annotations

import io

import pytest
import sqlalchemy as sa

from ckan import model
from ckan.tests import factories

from tests.conftest import CTAS_HEADER, CTAS_VALID_ROW, api, ckan_cli, csv_bytes, upload_return_file

FULL = "activity datastore scheming_datasets scheming_organizations lgdp lgdp_validation validation dcat"
# Upstream's sync mode calls pre-2.10 hook names on every resource plugin, and
# core's datastore plugin has none, so sync-mode tests leave datastore out.
SYNC_OURS = "activity scheming_datasets scheming_organizations lgdp lgdp_validation validation"
SYNC_UPSTREAM = "activity scheming_datasets scheming_organizations validation lgdp"
UPSTREAM_ONLY = "activity validation"

INVALID_ROWS = [CTAS_HEADER, ["S12000049", "2023-24", "lots", "463880000", "435120000", "93.8"]]

pytestmark = [pytest.mark.usefixtures("with_plugins", "clean_db", "clean_index")]


def _validation(resource_id):
    return model.Session.execute(
        sa.text("SELECT status FROM validation WHERE resource_id = :id"), {"id": resource_id}
    ).scalar_one_or_none()


# Defect 1: start-up crash, "Table object 'validation' is not bound to an Engine"


def test_db_init_succeeds_with_the_validation_plugin_enabled():
    result = ckan_cli("db", "upgrade")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Upgrading DB: SUCCESS" in result.stdout
    assert sa.inspect(model.meta.engine).has_table("validation")
    version = model.Session.execute(sa.text("SELECT version_num FROM lgdp_validation_alembic_version")).scalar_one()
    assert version == "5f1c2a9d7b10"


def test_canary_upstream_still_needs_bound_metadata():
    from ckanext.validation.model import Validation, tables_exist

    bound = Validation.metadata.bind
    Validation.metadata.bind = None
    try:
        with pytest.raises(sa.exc.UnboundExecutionError):
            tables_exist()
    finally:
        Validation.metadata.bind = bound


# Defect 2: automatic validation never runs on creation


@pytest.mark.ckan_config("ckan.plugins", FULL)
def test_resource_create_queues_validation_and_update_requeues(app, agency_admin, run_worker):
    headers, org = agency_admin["headers"], agency_admin["org"]["id"]
    _, created = upload_return_file(app, headers, org, [CTAS_HEADER, CTAS_VALID_ROW])
    resource = created["result"]
    assert _validation(resource["id"]) == "created"
    run_worker()
    assert _validation(resource["id"]) == "success"

    # a description-only change does not validate again ...
    api(app, "resource_patch", headers=headers, id=resource["id"], description="Annual figures")
    assert _validation(resource["id"]) == "success"

    # ... a new file does
    app.post(
        "/api/3/action/resource_patch",
        data={"id": resource["id"], "upload": (io.BytesIO(csv_bytes(INVALID_ROWS)), "ctas.csv")},
        headers=headers,
    )
    assert _validation(resource["id"]) == "created"
    run_worker()
    assert _validation(resource["id"]) == "failure"


@pytest.mark.ckan_config("ckan.plugins", UPSTREAM_ONLY)
@pytest.mark.ckan_config("ckanext.validation.run_on_create_async", True)
def test_canary_upstream_alone_does_not_validate_on_create(app, agency_admin):
    _, created = upload_return_file(
        app, agency_admin["headers"], agency_admin["org"]["id"], [CTAS_HEADER, CTAS_VALID_ROW], dataset_type="dataset"
    )
    assert created["result"]["schema"], "the resource carries a schema to validate against"
    assert _validation(created["result"]["id"]) is None


# Defect 3: sync mode with activity answers HTTP 500 for an invalid upload


@pytest.mark.ckan_config("ckan.plugins", SYNC_OURS)
@pytest.mark.ckan_config("ckanext.validation.run_on_create_sync", True)
def test_sync_mode_rejects_an_invalid_upload_with_a_409_and_the_report(app, agency_admin):
    _, answer = upload_return_file(
        app, agency_admin["headers"], agency_admin["org"]["id"], INVALID_ROWS, status=409
    )
    assert answer["success"] is False
    report = answer["error"]["validation"][0]
    errors = report["tasks"][0]["errors"]
    assert [(e["type"], e["rowNumber"], e["fieldName"]) for e in errors] == [
        ("type-error", 2, "chargeable_dwellings")
    ]


@pytest.mark.ckan_config("ckan.plugins", SYNC_UPSTREAM)
@pytest.mark.ckan_config("ckanext.validation.run_on_create_sync", True)
def test_canary_upstream_sync_mode_still_answers_500(app, agency_admin):
    upload_return_file(app, agency_admin["headers"], agency_admin["org"]["id"], INVALID_ROWS, status=500)


# Defect 4: the report page 404s for a dataset name


def _report_page(app, agency_admin, run_worker):
    dataset, created = upload_return_file(
        app, agency_admin["headers"], agency_admin["org"]["id"], INVALID_ROWS
    )
    run_worker()
    url = f"/dataset/{dataset['name']}/resource/{created['result']['id']}/validation"
    return url


@pytest.mark.ckan_config("ckan.plugins", FULL)
def test_report_page_answers_for_the_dataset_name(app, agency_admin, run_worker):
    url = _report_page(app, agency_admin, run_worker)
    page = app.get(url, headers=agency_admin["headers"])
    assert "chargeable_dwellings" in page.body
    assert "type-error" in page.body or "Type Error" in page.body


@pytest.mark.ckan_config("ckan.plugins", "activity scheming_datasets scheming_organizations validation lgdp")
def test_canary_upstream_report_page_404s_for_the_dataset_name(app, agency_admin):
    dataset, created = upload_return_file(
        app, agency_admin["headers"], agency_admin["org"]["id"], INVALID_ROWS
    )
    api(app, "resource_validation_run", headers=agency_admin["headers"], resource_id=created["result"]["id"], **{"async": False})
    url = f"/dataset/{dataset['name']}/resource/{created['result']['id']}/validation"
    app.get(url, headers=agency_admin["headers"], status=404)
    app.get(url.replace(dataset["name"], dataset["id"]), headers=agency_admin["headers"], status=200)
