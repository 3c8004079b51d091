"""One normalised file per upload: the header matched to the standard by its
documented rules, what is validated is what is stored and consolidated, and
the limits a file must keep to are checked before any heavy work."""
from __future__ import annotations

import hashlib
import io
import time
import tracemalloc

import pytest

from ckan import model

from ckanext.lgdp.model import Upload
from ckanext.lgdp.submissions import jobs, normalised
from tests.conftest import CTAS_HEADER, api, csv_bytes, ctas_rows, make_world, push, transition

pytestmark = [pytest.mark.usefixtures("with_plugins", "clean_db", "clean_index")]

TABLE = "council-tax-collection--all-councils"


def _row(upload_id: str) -> Upload:
    model.Session.expire_all()
    return model.Session.get(Upload, upload_id)


def _stored(upload_id: str) -> bytes:
    with open(normalised.path_of(upload_id), "rb") as f:
        return f.read()


# ---------------------------------------------------------------- the header rules (no services)


STANDARD = {"fields": [{"name": "gss_code", "title": "GSS code"},
                       {"name": "chargeable_dwellings", "title": "Chargeable dwellings"},
                       {"name": "net_collectable_gbp", "title": "Net collectable (GBP)"}]}


@pytest.mark.parametrize(("labels", "expected", "notes"), [
    (["gss_code", "chargeable_dwellings", "net_collectable_gbp"],
     ["gss_code", "chargeable_dwellings", "net_collectable_gbp"], 0),
    ([" gss_code", "chargeable_dwellings\u00a0", "\tnet_collectable_gbp "],
     ["gss_code", "chargeable_dwellings", "net_collectable_gbp"], 3),
    (["GSS Code", "Chargeable Dwellings", "NET-COLLECTABLE-GBP"],
     ["gss_code", "chargeable_dwellings", "net_collectable_gbp"], 3),
    (["GSS code", "chargeable  dwellings", "Net collectable (GBP)"],
     ["gss_code", "chargeable_dwellings", "net_collectable_gbp"], 3),
    # two columns that would be the same field keep their names (validation reports them)
    (["gss_code", "Chargeable Dwellings", "chargeable-dwellings"],
     ["gss_code", "Chargeable Dwellings", "chargeable-dwellings"], 0),
    # a name already exact is never taken by another column
    (["gss_code", "chargeable_dwellings", "Chargeable Dwellings "],
     ["gss_code", "chargeable_dwellings", "Chargeable Dwellings"], 1),
    # what matches nothing is left alone (but trimmed)
    (["gss_code", "dwellings ", ""], ["gss_code", "dwellings", ""], 1),
])
def test_the_header_is_matched_to_the_standard_by_its_rules(labels, expected, notes):
    header, said = normalised.match_header(labels, STANDARD)
    assert header == expected
    assert len(said) == notes, said


def test_the_header_record_ends_where_csv_says(tmp_path):
    for body, labels, rest in [
        (b"a,b\n1,2\n", ["a", "b"], b"1,2\n"),
        (b"a,b\r\n1,2\r\n", ["a", "b"], b"1,2\r\n"),
        (b"a,b\r1,2\r", ["a", "b"], b"1,2\r"),
        (b'"a\nx",b\n1,2\n', ["a\nx", "b"], b"1,2\n"),
        (b'"a"",b",c\n1,2,3\n', ['a",b', "c"], b"1,2,3\n"),
        (b"a,b", ["a", "b"], b""),
    ]:
        path = tmp_path / "f.csv"
        path.write_bytes(body)
        found, at = normalised.header_labels(str(path))
        assert (found, body[at:]) == (labels, rest), body


# ---------------------------------------------------------------- through the platform


@pytest.fixture
def world():
    return make_world()


def _accept(app, people, name):
    transition(app, people["a_admin"], name, "sign_off")
    transition(app, people["a_editor"], name, "submit")
    transition(app, people["x_editor"], name, "accept")


def _table_rows(app, who):
    res = api(app, "package_show", headers=who["headers"], id=TABLE)["result"]["resources"][0]
    return api(app, "datastore_search", headers=who["headers"], resource_id=res["id"],
               sort="council_gss, period")["result"]["records"]


def test_spaced_and_titled_column_names_are_validated_queried_and_consolidated_as_the_standard(
        app, world, live_worker, run_worker):
    people = world["people"]
    header = [" gss_code", "Financial Year", "chargeable_dwellings ", "net_collectable_gbp",
              "Collected By Year End GBP", "in_year_collection_rate_pct\u00a0"]
    rows = ctas_rows(dwellings=117000)
    original = csv_bytes([header, rows[1]])
    answer = push(app, people["a_editor"], original, filename="spaced.csv", wait="true")["result"]
    upload = answer["upload"]
    assert upload["status"] == "valid", upload
    notes = " ".join(upload["notes"])
    assert "'Financial Year' was read as the standard's column financial_year" in notes
    assert "the spaces around its name 'chargeable_dwellings ' were removed" in notes

    # one normalised file: the standard's names, the rows byte for byte, its facts stored
    stored = _stored(upload["id"])
    assert stored == csv_bytes([CTAS_HEADER, rows[1]])
    assert upload["normalised"]["sha256"] == hashlib.sha256(stored).hexdigest()
    assert upload["normalised"]["header"] == CTAS_HEADER and _row(upload["id"]).normal_rows == 1
    # the original is kept as it came; the file as validated is downloadable too
    sub = answer["submission"]["name"]
    got = app.get(f"/dataset/{sub}/resource/{upload['id']}/download", headers=people["a_editor"]["headers"])
    assert got.data == original
    link = f"/submission/{sub}/uploads/{upload['id']}/validated.csv"
    validated = app.get(link, headers=people["a_member"]["headers"])
    assert validated.status_code == 200 and validated.data == stored
    assert "spaced-as-validated.csv" in validated.headers["Content-Disposition"]
    # ... only to those who may read the upload: a draft is the council's own
    for who in ("b_editor", "x_editor", "anonymous"):
        assert app.get(link, headers=people[who]["headers"]).status_code == 404, who

    # accepted: the agency reads it, and the figures reach the table (they used to arrive as NULL)
    _accept(app, people, sub)
    assert app.get(link, headers=people["x_editor"]["headers"]).data == stored
    run_worker("default")
    record = _table_rows(app, people["x_editor"])[0]
    assert record["chargeable_dwellings"] == 117000 and float(record["collected_by_year_end_gbp"]) == 120000000


def _counting(monkeypatch, module, name):
    """Wrap ``module.name`` (a real function, still run) to count its calls."""
    calls = []
    real = getattr(module, name)

    def counting(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, counting)
    return calls


class _HashCount:
    """hashlib for the modules an upload passes through (intake, the
    normalised file, the idempotency keys, the jobs): the real SHA-256, with
    the bytes each digest is given counted."""

    def __init__(self, monkeypatch):
        from ckanext.lgdp.submissions import intake, upload_keys

        self.hashed = 0
        for module in (intake.normalising, normalised, upload_keys, jobs):
            monkeypatch.setattr(module, "hashlib", self, raising=False)

    def sha256(self):
        counter, digest = self, hashlib.sha256()

        class Counted:
            def update(self, data):
                counter.hashed += len(data)
                digest.update(data)

            def hexdigest(self):
                return digest.hexdigest()

        return Counted()


def _workbook(rows) -> bytes:
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    for r in rows:
        ws.append(r)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _validate_in_process(upload_id: str) -> None:
    row = _row(upload_id)
    row.status = "pending"
    model.Session.commit()
    assert jobs.validate_upload(upload_id) == "valid", (_row(upload_id).problem_code, _row(upload_id).problem)


def test_the_original_is_read_once(app, world, monkeypatch):
    """Intake at the upload makes the normalised file in its one pass over a
    CSV, hashing the original as it reads it; the job reads that file and
    never inspects or hashes the original again."""
    from ckanext.lgdp.submissions import intake

    calls = _counting(monkeypatch, intake, "normalise")
    hashes = _HashCount(monkeypatch)
    content = csv_bytes(ctas_rows())
    answer = push(app, world["people"]["a_editor"], content)["result"]
    upload_id = answer["upload"]["id"]
    assert len(calls) == 1 and normalised.exists(upload_id)
    row = _row(upload_id)
    assert row.sha256 == hashlib.sha256(content).hexdigest() and row.bytes == len(content)
    assert row.normal_sha256 == hashlib.sha256(_stored(upload_id)).hexdigest()
    # each byte of the original and of the normalised file hashed once
    assert hashes.hashed == len(content) + len(_stored(upload_id))
    # the job, here in-process: it reads the normalised file only
    _validate_in_process(upload_id)
    assert len(calls) == 1 and hashes.hashed == len(content) + len(_stored(upload_id))


def test_a_workbook_is_converted_once_and_only_its_normalised_file_read_after(app, world, monkeypatch):
    """An XLSX is converted once, at the upload, straight into its normalised
    file (the header matched on the way); validation and consolidation read
    that file, and the original is hashed once."""
    from ckanext.lgdp.repository import consolidate
    from ckanext.lgdp.submissions.intake import workbooks

    conversions = _counting(monkeypatch, workbooks, "convert_xlsx")
    hashes = _HashCount(monkeypatch)
    people = world["people"]
    content = _workbook([[" GSS code", *CTAS_HEADER[1:]], ctas_rows()[1]])
    answer = push(app, people["a_editor"], content, filename="ctas.xlsx")["result"]
    upload_id = answer["upload"]["id"]
    assert len(conversions) == 1
    row = _row(upload_id)
    stored = _stored(upload_id)
    assert stored.splitlines()[0].decode() == ",".join(CTAS_HEADER)
    assert row.header == CTAS_HEADER and any("GSS code" in note for note in row.notes)
    assert row.sha256 == hashlib.sha256(content).hexdigest() and row.normal_sha256 == hashlib.sha256(stored).hexdigest()
    assert hashes.hashed == len(content) + len(stored)
    _validate_in_process(upload_id)
    _accept(app, people, answer["submission"]["name"])
    # consolidation's read, here in-process: the normalised file's rows
    ready = consolidate.prepared(answer["submission"]["id"])
    rows = ready["source"].rows()
    assert ready["upload_id"] == upload_id and ready["source"].path.endswith(f"{upload_id}.csv") and len(rows) == 1
    assert int(rows[0]["chargeable_dwellings"]) == 110000
    assert len(conversions) == 1 and hashes.hashed == len(content) + len(stored)


def test_a_file_sent_with_a_key_is_hashed_once(app, world, monkeypatch):
    """The request's own hash of the file (for its idempotency key) is the
    original's: intake does not hash the original again."""
    hashes = _HashCount(monkeypatch)
    content = csv_bytes(ctas_rows())
    answer = push(app, world["people"]["a_editor"], content, client_ref="intake-once-1")["result"]
    row = _row(answer["upload"]["id"])
    assert row.sha256 == hashlib.sha256(content).hexdigest() and row.bytes == len(content)
    assert hashes.hashed == len(content) + len(_stored(row.id))


# ---------------------------------------------------------------- limits


def _wide(columns: int) -> bytes:
    header = CTAS_HEADER + [f"extra_{i}" for i in range(columns - len(CTAS_HEADER))]
    row = ctas_rows()[1] + ["1"] * (columns - len(CTAS_HEADER))
    return (",".join(header) + "\n" + ",".join(row) + "\n").encode()


@pytest.mark.parametrize("columns", [20_000, 1_000_000])
def test_a_very_wide_file_is_refused_at_once_in_bounded_memory(app, world, columns):
    people = world["people"]
    content = _wide(columns)
    tracemalloc.start()
    started = time.perf_counter()
    answer = push(app, people["a_editor"], content, filename="wide.csv", status=409)["error"]
    seconds = time.perf_counter() - started
    _size, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"\n{columns:,} columns ({len(content) / 1e6:.1f} MB): refused in {seconds:.2f} s, "
          f"peak Python memory {peak / 1e6:.1f} MB")
    assert answer["code"] == "too-many-columns"
    message = " ".join(answer["upload"])
    assert "may have at most 12" in message and "columns of the return go across the first row" in message
    upload = api(app, "lgdp_upload_show", headers=people["a_editor"]["headers"], id=answer["upload_id"])["result"]
    assert upload["status"] == "rejected" and upload["normalised"] is None
    # the upload (a few MB) is held once at most, never a cell list per column
    assert peak < 4 * len(content) + 30e6


def test_a_very_wide_file_fetched_by_the_worker_is_refused_in_bounded_memory(app, world, file_server):
    people = world["people"]
    file_server["files"]["/wide.csv"] = _wide(1_000_000)
    answer = app.post("/api/3/action/lgdp_submission_upload", headers=people["a_editor"]["headers"],
                      data={"data_return": "council-tax-collection", "council": "aberdeen-city",
                            "period": "2023-24", "url": file_server["url"] + "/wide.csv"}).json["result"]
    upload_id = answer["upload"]["id"]
    tracemalloc.start()
    started = time.perf_counter()
    assert jobs.validate_upload(upload_id) == "rejected"  # the job, in this process, measured
    seconds = time.perf_counter() - started
    _size, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"\n1,000,000 columns by URL: refused by the job in {seconds:.2f} s, peak Python memory {peak / 1e6:.1f} MB")
    row = _row(upload_id)
    assert row.problem_code == "too-many-columns" and row.attempts == 1
    assert peak < 60e6
    # a refusal is the file's: the sweep does not try it again
    swept = api(app, "lgdp_validation_sweep", headers=people["coordinator"]["headers"])["result"]
    assert swept["retried"] == 0 and _row(upload_id).status == "rejected"


def test_a_cell_too_long_is_refused_with_its_row_and_column(app, world):
    people = world["people"]
    rows = ctas_rows()
    rows.append(["S12000033", "2023-24", "1", "1", "1", "x" * 40_000])
    answer = push(app, people["a_editor"], csv_bytes(rows), status=409)["error"]
    assert answer["code"] == "cell-too-long"
    assert "Row 3, column 6 holds 40,000 characters; a cell may hold at most 32,768" in answer["upload"][0]
    # at the limit it is read (and validated as any other cell)
    rows[2][5] = "x" * 32_768
    assert push(app, people["a_editor"], csv_bytes(rows))["result"]["upload"]["status"] == "pending"


def test_too_many_rows_are_refused_before_they_are_validated(app, world, ckan_config, monkeypatch):
    monkeypatch.setitem(ckan_config, "ckanext.lgdp.limits.max_rows", 5)
    people = world["people"]
    body = csv_bytes(ctas_rows()) + b"S12000033,2023-24,1,1,1,1\n" * 5
    answer = push(app, people["a_editor"], body, status=409)["error"]
    assert answer["code"] == "too-many-rows" and "more than 5 rows of data" in answer["upload"][0]
    fine = csv_bytes(ctas_rows()) + b"S12000033,2023-24,1,1,1,1\n" * 4
    assert push(app, people["a_editor"], fine)["result"]["upload"]["status"] == "pending"


def test_a_workbook_too_wide_or_with_a_long_cell_is_refused(app, world, ckan_config, monkeypatch):
    people = world["people"]
    workbook = _workbook

    wide = workbook([CTAS_HEADER + [f"x{i}" for i in range(20)], ctas_rows()[1]])
    answer = push(app, people["a_editor"], wide, filename="wide.xlsx", status=409)["error"]
    assert answer["code"] == "too-many-columns" and "26 columns" in answer["upload"][0]
    # (a workbook cell holds at most 32,767 characters: the limit is lowered to test it)
    monkeypatch.setitem(ckan_config, "ckanext.lgdp.limits.max_cell_chars", 1000)
    long = workbook([CTAS_HEADER, ctas_rows()[1][:5] + ["y" * 4_000]])
    answer = push(app, people["a_editor"], long, filename="long.xlsx", status=409)["error"]
    assert answer["code"] == "cell-too-long" and "Cell F2 of sheet 'Sheet' holds 4,000 characters" in answer["upload"][0]


def test_the_memory_cap_holds_and_is_lifted():
    with jobs._MemoryCap(16 * 2**20):
        with pytest.raises(MemoryError):
            _hog = [str(i) for i in range(5_000_000)]  # some 300 MB
    held = [str(i) for i in range(5_000_000)]
    assert len(held) == 5_000_000


def test_a_job_over_its_memory_is_refused_and_not_retried(app, world, ckan_config, monkeypatch):
    """The validation job runs under a memory cap: a file that needs more is
    the file's problem, said in words, and the sweep leaves it alone."""
    from ckanext.lgdp.submissions import fastcsv

    people = world["people"]
    upload_id = push(app, people["a_editor"], csv_bytes(ctas_rows()))["result"]["upload"]["id"]
    # (no file of this return can need much memory: its errors stop at 1,000.
    # A validation that builds 300 MB of cells stands for a file that would.)
    real = fastcsv.validate_csv

    def hungry(*args, **kwargs):
        _cells = [str(i) for i in range(5_000_000)]
        return real(*args, **kwargs)

    monkeypatch.setattr(fastcsv, "validate_csv", hungry)
    monkeypatch.setitem(ckan_config, "ckanext.lgdp.validation_memory_mb", 64)
    assert jobs.validate_upload(upload_id) == "rejected"
    row = _row(upload_id)
    assert row.problem_code == "too-large-to-validate" and "more memory to validate" in row.problem
    swept = api(app, "lgdp_validation_sweep", headers=people["coordinator"]["headers"])["result"]
    assert swept["retried"] == 0 and _row(upload_id).status == "rejected" and _row(upload_id).attempts == 1
    # with its memory back, the same file validates: the cap was lifted after the job
    monkeypatch.setitem(ckan_config, "ckanext.lgdp.validation_memory_mb", 1024)
    row = _row(upload_id)
    row.status = "pending"
    model.Session.commit()
    assert jobs.validate_upload(upload_id) == "valid", (_row(upload_id).problem_code, _row(upload_id).problem)
