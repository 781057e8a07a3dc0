"""Files in object stores: an S3 bucket (moto's server on loopback) and an HTTP data server.

One ``moto_server`` runs for the whole session; every test makes its own bucket. The S3
client reaches it over HTTP with the standard AWS variables, as it would a real endpoint:
nothing is mocked in-process. The HTTP data server is Python's static file server.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import neurotrove as nt
from neurotrove.cli import app
from neurotrove.errors import HashMismatchError, NotFoundError
from neurotrove.remote.object_store import open_store
from tests.object_servers import S3Server, put_objects, static_files
from tests.serving import ServerProcess

SESSION = "lab/Subjects/KS005/2024-01-01/001"


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """moto's S3-compatible server on a free port, for the whole test session."""
    server = S3Server(tmp_path_factory.mktemp("moto") / "moto.log").start()
    yield server
    server.stop()


@pytest.fixture
def s3(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> S3Server:
    """The server, reachable through the standard AWS variables (and no user's AWS files)."""
    for key, value in s3_server.environment().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return s3_server


@pytest.fixture
def bucket(s3: S3Server) -> str:
    """A new empty bucket's name."""
    name = f"lab-{uuid.uuid4().hex[:12]}"
    put_objects(s3, name, {})
    return name


def npy(values: object) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(values))
    return buffer.getvalue()


def md5(content: bytes) -> str:
    return hashlib.md5(content).hexdigest()  # noqa: S324 - ONE's checksum


def catalogue(trove: nt.Trove, files: dict[str, bytes], **extra: object) -> str:
    """Register session KS005/2024-01-01/001 with datasets of ``files`` (rel_path: content)."""
    eid = trove.register_session("KS005", "2024-01-01", 1, lab="lab")
    trove.table("datasets").insert(
        [
            {"eid": eid, "rel_path": rel, "file_size": len(data), "hash": md5(data), **extra}
            for rel, data in files.items()
        ]
    )
    return eid


SPIKES = {"alf/spikes.times.npy": npy([0.1, 0.2, 0.3]), "alf/spikes.clusters.npy": npy([1, 2, 1])}


def test_a_trove_whose_files_are_in_a_bucket_loads_them(
    s3: S3Server, bucket: str, tmp_path: Path
) -> None:
    put_objects(s3, bucket, {f"raw/{SESSION}/{rel}": data for rel, data in SPIKES.items()})
    root = tmp_path / "lab"
    result = CliRunner().invoke(app, ["init", str(root), "--files", f"s3://{bucket}/raw/"])
    assert result.exit_code == 0, result.output
    assert f'files = "s3://{bucket}/raw"' in (root / ".trove" / "config.toml").read_text()
    with nt.connect(root) as trove:
        eid = catalogue(trove, SPIKES)
        spikes = trove.load_object(eid, "spikes")
        assert spikes["times"].tolist() == [0.1, 0.2, 0.3]
        assert spikes["clusters"].tolist() == [1, 2, 1]
        path = trove.load_dataset(eid, "spikes.times.npy", download_only=True)
        assert path.read_bytes() == SPIKES["alf/spikes.times.npy"]
        assert not path.is_relative_to(root)  # the file cache, not the data root
    # Cached and verified: the bucket is not needed again.
    put_objects(s3, bucket, {f"raw/{SESSION}/alf/spikes.times.npy": b"changed"})
    with nt.connect(root) as trove:
        assert trove.load_dataset(eid, "spikes.times.npy").tolist() == [0.1, 0.2, 0.3]


def test_a_wrong_object_is_never_cached(s3: S3Server, bucket: str, tmp_path: Path) -> None:
    put_objects(s3, bucket, {f"{SESSION}/alf/spikes.times.npy": npy([9.0, 9.0, 9.0])})
    with nt.connect(tmp_path / "lab", create=True, files=f"s3://{bucket}") as trove:
        eid = catalogue(trove, {"alf/spikes.times.npy": SPIKES["alf/spikes.times.npy"]})
        with pytest.raises(HashMismatchError, match="never matched the catalogue"):
            trove.load_dataset(eid, "spikes.times.npy")
        cache = trove.files.store(None).root  # type: ignore[attr-defined]
        assert not [p for p in cache.rglob("*spikes*") if p.is_file()]


def test_an_object_missing_from_the_bucket_is_not_found(
    s3: S3Server, bucket: str, tmp_path: Path
) -> None:
    with nt.connect(tmp_path / "lab", create=True, files=f"s3://{bucket}") as trove:
        eid = catalogue(trove, SPIKES)
        with pytest.raises(NotFoundError, match="is not in the bucket"):
            trove.load_object(eid, "spikes")


def test_a_partial_download_resumes(
    s3: S3Server, bucket: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = np.arange(200_000, dtype=np.float64)
    content = npy(data)
    put_objects(s3, bucket, {f"{SESSION}/alf/spikes.times.npy": content})
    with nt.connect(tmp_path / "lab", create=True, files=f"s3://{bucket}") as trove:
        eid = catalogue(trove, {"alf/spikes.times.npy": content})
        folder = trove.files.store(None).root / SESSION / "alf"  # type: ignore[attr-defined]
        folder.mkdir(parents=True)
        # What a killed download leaves: a hidden partial file, never the dataset's name.
        (folder / f".spikes.times.npy.{md5(content)}.download").write_bytes(content[:500_000])
        with caplog.at_level(logging.INFO, logger="neurotrove.download"):
            loaded = trove.load_dataset(eid, "spikes.times.npy")
        assert np.array_equal(loaded, data)
        assert "resuming alf/spikes.times.npy at byte 500000" in caplog.text
        assert sorted(p.name for p in folder.iterdir()) == ["spikes.times.npy"]


def test_raw_data_in_a_bucket_and_processed_data_on_disk(
    s3: S3Server, bucket: str, root: Path
) -> None:
    raw = {"raw_ephys_data/_spikeglx_sync.times.npy": npy([1.0, 2.0])}
    put_objects(s3, bucket, {f"{SESSION}/{rel}": data for rel, data in raw.items()})
    with nt.connect(root, create=True) as trove:
        eid = catalogue(trove, raw, store=f"s3://{bucket}")
        processed = trove.eid2path(eid) / "alf" / "spikes.times.npy"
        processed.parent.mkdir(parents=True)
        processed.write_bytes(SPIKES["alf/spikes.times.npy"])
        trove.register()
        data, records = trove.load_datasets(eid, ["_spikeglx_sync.times.npy", "spikes.times.npy"])
        assert [d.tolist() for d in data] == [[1.0, 2.0], [0.1, 0.2, 0.3]]
        assert all(record["exists"] and "store" not in record for record in records)
        stores = trove.table("datasets").get().set_index("name")["store"]
        assert stores["_spikeglx_sync.times.npy"] == f"s3://{bucket}"
        assert stores["spikes.times.npy"] is None


def test_trove_serve_redirects_to_a_presigned_url(
    s3: S3Server, bucket: str, tmp_path: Path
) -> None:
    put_objects(s3, bucket, {f"{SESSION}/{rel}": data for rel, data in SPIKES.items()})
    root = tmp_path / "lab"
    with nt.connect(root, create=True, files=f"s3://{bucket}") as trove:
        eid = catalogue(trove, SPIKES)
        dataset = trove.list_datasets(eid, details=True).reset_index().iloc[0]
    server = ServerProcess(root, None, tmp_path / "serve.log", "--public-read").start()
    try:
        answer = httpx.get(f"{server.url}/api/v1/datasets/{dataset['id']}/file")
        assert answer.status_code == 307
        assert answer.headers["location"].startswith(f"{s3.url}/{bucket}/{SESSION}/")
        assert "X-Amz-Signature=" in answer.headers["location"]
        with nt.connect(server.url) as remote:
            assert remote.load_object(eid, "spikes")["clusters"].tolist() == [1, 2, 1]
        # The Alyx data route (ONE-api's downloads) redirects the same way.
        name = Path(str(dataset["rel_path"]))
        alyx = f"{server.url}/data/{SESSION}/{name.parent}/{name.stem}.{dataset['id']}.npy"
        followed = httpx.get(alyx, follow_redirects=True)
        assert followed.status_code == 200
        assert followed.content == SPIKES[str(dataset["rel_path"])]
    finally:
        server.stop()


def test_trove_serve_proxies_when_told(s3: S3Server, bucket: str, tmp_path: Path) -> None:
    put_objects(s3, bucket, {f"{SESSION}/{rel}": data for rel, data in SPIKES.items()})
    root = tmp_path / "lab"
    with nt.connect(root, create=True, files=f"s3://{bucket}") as trove:
        eid = catalogue(trove, SPIKES)
        dataset = trove.list_datasets(eid, details=True).reset_index().iloc[0]
    server = ServerProcess(
        root, None, tmp_path / "serve.log", "--public-read", "--object-files", "proxy"
    ).start()
    try:
        answer = httpx.get(f"{server.url}/api/v1/datasets/{dataset['id']}/file")
        assert answer.status_code == 200
        assert answer.content == SPIKES[str(dataset["rel_path"])]
    finally:
        server.stop()


def _one_cache_without_files(source: Path, tables: Path, served: Path) -> pd.DataFrame:
    """ONE's tables of the example tree in ``tables``; its files, ONE-named, in ``served``."""
    from one.alf.cache import make_parquet_db
    from one.api import One

    from neurotrove import alf
    from neurotrove.demo import write_example_tree

    write_example_tree(source, oddities=False)
    make_parquet_db(source)
    datasets = pd.read_parquet(source / "datasets.pqt").reset_index()
    datasets["id"] = [str(uuid.uuid4()) for _ in range(len(datasets))]  # as Alyx's: unique
    tables.mkdir()
    shutil.copy(source / "sessions.pqt", tables / "sessions.pqt")
    table = pa.Table.from_pandas(datasets.set_index(["eid", "id"]))
    meta = pq.read_schema(source / "datasets.pqt").metadata[b"one_metadata"]
    schema_meta = {**(table.schema.metadata or {}), b"one_metadata": meta}
    pq.write_table(table.replace_schema_metadata(schema_meta), tables / "datasets.pqt")
    one = One(cache_dir=source, mode="local")  # ONE's own session paths are the oracle
    for row in datasets.itertuples():
        folder = Path(one.eid2path(row.eid)).relative_to(source)
        rel = Path(row.rel_path)
        target = served / folder / rel.parent / alf.add_uuid(rel.name, row.id)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source / folder / rel, target)
    json.loads(meta)  # the tables are ONE's own
    return datasets


def test_a_one_cache_imported_without_its_files_loads_from_the_data_server(
    tmp_path: Path, db: str | None
) -> None:
    served = tmp_path / "served"
    datasets = _one_cache_without_files(tmp_path / "source", tmp_path / "tables", served)
    tables = datasets[datasets["rel_path"].str.endswith("_ibl_trials.table.pqt")]
    revised = set(tables[tables["rel_path"].str.contains("#")]["eid"])  # loads pick a revision
    trials = tables[~tables["eid"].isin(revised)].iloc[0]  # a session with one trials table
    with static_files(served) as url, nt.connect(tmp_path / "lab", db=db, create=True) as trove:
        report = trove.import_one(tmp_path / "tables", progress=False, files_at=url)
        assert report.datasets_missing == 0
        found = trove.search(datasets="_ibl_trials.table.pqt")
        assert trials["eid"] in set(found.index.astype(str))
        table = trove.load_dataset(trials["eid"], "_ibl_trials.table.pqt")
        expected = pd.read_parquet(
            tmp_path
            / "source"
            / trove.eid2path(trials["eid"]).relative_to(trove.root)
            / "alf"
            / "_ibl_trials.table.pqt"
        )
        pd.testing.assert_frame_equal(
            table.reset_index(drop=True), expected.reset_index(drop=True)
        )


def test_without_files_at_an_import_marks_absent_files_missing(tmp_path: Path) -> None:
    datasets = _one_cache_without_files(tmp_path / "source", tmp_path / "tables", tmp_path / "s")
    with nt.connect(tmp_path / "lab", create=True) as trove:
        report = trove.import_one(tmp_path / "tables", progress=False)
        assert report.datasets_missing == len(datasets)
        assert trove.search(datasets="_ibl_trials.table.pqt").empty


def test_a_store_url_that_is_not_one_is_refused(tmp_path: Path) -> None:
    from neurotrove.config import Settings
    from neurotrove.errors import ValidationError

    with pytest.raises(ValidationError, match="give s3://bucket/prefix"):
        open_store("ftp://host/data", Settings(cache_dir=tmp_path))
    with pytest.raises(ValidationError, match="is not a bucket name"):
        open_store("s3://Bad_Bucket/x", Settings(cache_dir=tmp_path))
