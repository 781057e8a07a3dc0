"""A trove whose store is a bucket: ``trove register`` lists it, writes put objects there.

Against moto's S3 server on loopback (the fixtures of ``test_object_store``): the objects are
read and written through the S3 protocol exactly as against a real endpoint.
"""

from __future__ import annotations

import base64
import hashlib
import io
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import neurotrove as nt
from neurotrove.cli import app
from neurotrove.config import Settings
from neurotrove.errors import CatalogError, ConflictError, HashMismatchError, ValidationError
from neurotrove.remote import bucket as bucket_module
from neurotrove.remote import bucket_writes
from tests.object_servers import ACCESS_KEY, REGION, SECRET_KEY, S3Server, put_objects
from tests.serving import PASSWORD, ServerProcess, add_user
from tests.test_object_store import SESSION, SPIKES, bucket, npy, s3, s3_server

__all__ = ["bucket", "s3", "s3_server"]  # the fixtures, shared with test_object_store

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


def md5(content: bytes) -> str:
    return hashlib.md5(content).hexdigest()  # noqa: S324 - ONE's checksum


def client(server: S3Server) -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=server.url,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name=REGION,
    )


def keys(server: S3Server, name: str) -> set[str]:
    answer = client(server).list_objects_v2(Bucket=name)
    return {item["Key"] for item in answer.get("Contents", [])}


def datasets(trove: nt.Trove) -> dict[str, dict[str, Any]]:
    table = trove.table("datasets").get()
    return {row["rel_path"]: row for row in table.to_dict("records")}


def test_register_lists_the_bucket_incrementally(
    s3: S3Server, bucket: str, db: str | None, tmp_path: Path
) -> None:
    objects = {f"raw/{SESSION}/{rel}": data for rel, data in SPIKES.items()}
    objects[f"raw/{SESSION}/alf/not-alf"] = b"x"
    objects["raw/README.txt"] = b"notes"
    objects[f"raw/{SESSION}/.hidden"] = b"x"
    put_objects(s3, bucket, objects)
    with nt.connect(tmp_path / "lab", db=db, create=True, files=f"s3://{bucket}/raw") as trove:
        report = trove.register()
        assert (report.sessions_added, report.datasets_added, report.hidden) == (1, 2, 1)
        skipped = {item.path: item.reason for item in report.skipped}
        assert set(skipped) == {f"{SESSION}/alf/not-alf", "README.txt"}
        assert "not inside a session folder" in skipped["README.txt"]
        rows = datasets(trove)
        assert {rel: row["hash"] for rel, row in rows.items()} == {
            rel: md5(data) for rel, data in SPIKES.items()
        }
        assert all(row["store"] is None and row["exists"] for row in rows.values())
        eid = rows["alf/spikes.times.npy"]["eid"]
        assert trove.load_object(eid, "spikes")["clusters"].tolist() == [1, 2, 1]

        again = trove.register()
        assert (again.datasets_unchanged, again.files_hashed, again.datasets_added) == (2, 0, 0)

        # The same size, other content: reported, kept as catalogued, unless accepted.
        changed = npy([0.1, 0.2, 0.4])
        put_objects(s3, bucket, {f"raw/{SESSION}/alf/spikes.times.npy": changed})
        report = trove.register()
        assert [(c.path, c.what) for c in report.changed] == [
            (f"{SESSION}/alf/spikes.times.npy", "md5")
        ]
        assert datasets(trove)["alf/spikes.times.npy"]["hash"] == md5(
            SPIKES["alf/spikes.times.npy"]
        )
        trove.register(accept_changes=True)
        assert datasets(trove)["alf/spikes.times.npy"]["hash"] == md5(changed)

        client(s3).delete_object(Bucket=bucket, Key=f"raw/{SESSION}/alf/spikes.clusters.npy")
        assert trove.register(f"{SESSION}/raw_ephys_data").datasets_missing == 0  # out of scope
        report = trove.register(f"{SESSION}/alf")
        assert report.datasets_missing == 1
        assert not datasets(trove)["alf/spikes.clusters.npy"]["exists"]
        # Every object of the session gone: the session is not listed at all, still missing.
        client(s3).delete_object(Bucket=bucket, Key=f"raw/{SESSION}/alf/spikes.times.npy")
        result = CliRunner().invoke(app, ["--root", str(trove.root), "register"])
        assert result.exit_code == 0, result.output
        assert "1 missing" in result.output
        assert not any(row["exists"] for row in datasets(trove).values())


def test_register_trusts_a_recorded_md5_and_hashes_multipart_objects(
    s3: S3Server, bucket: str, tmp_path: Path
) -> None:
    s3_client = client(s3)
    big = bytes(range(256)) * (24 * 1024 + 7)  # a little over 6 MB: two parts
    key = f"{SESSION}/raw_ephys_data/ephys.raw.bin"
    upload = s3_client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    parts = []
    for number, start in enumerate(range(0, len(big), 5 << 20), 1):
        answer = s3_client.upload_part(
            Bucket=bucket, Key=key, UploadId=upload, PartNumber=number, Body=big[start:][: 5 << 20]
        )
        parts.append({"PartNumber": number, "ETag": answer["ETag"]})
    s3_client.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload, MultipartUpload={"Parts": parts}
    )
    assert "-" in s3_client.head_object(Bucket=bucket, Key=key)["ETag"]  # no md5 there
    recorded = "0123456789abcdef0123456789abcdef"
    s3_client.put_object(
        Bucket=bucket, Key=f"{SESSION}/alf/spikes.times.npy", Body=b"x", Metadata={"md5": recorded}
    )
    with nt.connect(tmp_path / "lab", create=True, files=f"s3://{bucket}") as trove:
        trove.register()
        rows = datasets(trove)
    assert rows["raw_ephys_data/ephys.raw.bin"]["hash"] == md5(big)
    assert rows["alf/spikes.times.npy"]["hash"] == recorded


def test_register_files_puts_verified_objects(
    s3: S3Server, bucket: str, db: str | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bucket_module, "MULTIPART_FROM", 5 << 20)
    big = bytes(range(256)) * (44 * 1024)  # 11 MB: three parts
    (tmp_path / "spikes.times.npy").write_bytes(SPIKES["alf/spikes.times.npy"])
    (tmp_path / "ephys.raw.bin").write_bytes(big)
    with nt.connect(tmp_path / "lab", db=db, create=True, files=f"s3://{bucket}/raw") as trove:
        eid = trove.register_session("KS005", "2024-01-01", 1, lab="lab")
        trove.register_files(
            eid, [tmp_path / "spikes.times.npy", tmp_path / "ephys.raw.bin"], collection="alf"
        )
        assert keys(s3, bucket) == {
            f"raw/{SESSION}/alf/spikes.times.npy",
            f"raw/{SESSION}/alf/ephys.raw.bin",
        }
        head = client(s3).head_object(Bucket=bucket, Key=f"raw/{SESSION}/alf/ephys.raw.bin")
        assert head["ETag"].endswith('-3"')
        assert head["Metadata"] == {"md5": md5(big)}
        rows = datasets(trove)
        assert rows["alf/ephys.raw.bin"]["hash"] == md5(big)
        assert rows["alf/spikes.times.npy"]["file_size"] == len(SPIKES["alf/spikes.times.npy"])
        loaded = trove.load_dataset(eid, "ephys.raw.bin", download_only=True)
        assert loaded.read_bytes() == big
        # What register_files recorded, a listing finds unchanged.
        assert trove.register().datasets_unchanged == 2
        # The same file again is no new object; other content under the name is refused.
        trove.register_files(eid, [tmp_path / "spikes.times.npy"], collection="alf")
        (tmp_path / "spikes.times.npy").write_bytes(b"other content")
        with pytest.raises(ConflictError, match="already exists with different content"):
            trove.register_files(eid, [tmp_path / "spikes.times.npy"], collection="alf")
        assert datasets(trove)["alf/spikes.times.npy"]["hash"] == md5(
            SPIKES["alf/spikes.times.npy"]
        )


def test_a_failed_commit_leaves_no_object(
    s3: S3Server, bucket: str, db: str | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "spikes.times.npy").write_bytes(SPIKES["alf/spikes.times.npy"])

    def refused(*args: object, **kwargs: object) -> None:
        raise CatalogError("the database went away")

    with nt.connect(tmp_path / "lab", db=db, create=True, files=f"s3://{bucket}") as trove:
        eid = trove.register_session("KS005", "2024-01-01", 1, lab="lab")
        monkeypatch.setattr(bucket_writes, "insert_records", refused)
        with pytest.raises(CatalogError):
            trove.register_files(eid, [tmp_path / "spikes.times.npy"], collection="alf")
        assert keys(s3, bucket) == set()
        assert datasets(trove) == {}
        monkeypatch.undo()
        trove.register_files(eid, [tmp_path / "spikes.times.npy"], collection="alf")
        assert keys(s3, bucket) == {f"{SESSION}/alf/spikes.times.npy"}


def test_uploads_through_a_server_go_to_its_bucket(
    s3: S3Server, bucket: str, tmp_path: Path
) -> None:
    root = tmp_path / "lab"
    with nt.connect(root, create=True, files=f"s3://{bucket}/raw") as trove:
        eid = trove.register_session("KS005", "2024-01-01", 1, lab="lab")
    add_user(root, None, "alice")
    (tmp_path / "spikes.times.npy").write_bytes(SPIKES["alf/spikes.times.npy"])
    server = ServerProcess(root, None, tmp_path / "serve.log").start()
    try:
        with nt.connect(server.url, settings=Settings.load()) as remote:
            remote.login("alice", PASSWORD)
            remote.register_files(eid, [tmp_path / "spikes.times.npy"], collection="alf")
            assert remote.load_dataset(eid, "spikes.times.npy").tolist() == [0.1, 0.2, 0.3]
    finally:
        server.stop()
    assert keys(s3, bucket) == {f"raw/{SESSION}/alf/spikes.times.npy"}
    assert not (root / SESSION / "alf" / "spikes.times.npy").exists()
    with nt.connect(root) as trove:
        assert datasets(trove)["alf/spikes.times.npy"]["hash"] == md5(
            SPIKES["alf/spikes.times.npy"]
        )


KILLED_WRITER = """
import os, sys
from pathlib import Path
import neurotrove as nt
from neurotrove.remote import bucket_writes

def killed(*args, **kwargs):
    os._exit(9)  # killed after its objects were put, before its commit

bucket_writes.insert_records = killed
trove = nt.connect(sys.argv[1], db=sys.argv[2] or None)
trove.register_files(sys.argv[3], [Path(sys.argv[4])], collection="alf")
"""


def test_a_writer_killed_before_its_commit_leaves_no_object(
    s3: S3Server, bucket: str, db: str | None, tmp_path: Path
) -> None:
    source = tmp_path / "spikes.times.npy"
    source.write_bytes(SPIKES["alf/spikes.times.npy"])
    root = tmp_path / "lab"
    with nt.connect(root, db=db, create=True, files=f"s3://{bucket}") as trove:
        eid = trove.register_session("KS005", "2024-01-01", 1, lab="lab")
    command = [sys.executable, "-c", KILLED_WRITER, str(root), db or "", eid, str(source)]
    assert subprocess.run(command, check=False, timeout=120).returncode == 9
    assert keys(s3, bucket) == {f"{SESSION}/alf/spikes.times.npy"}  # whole, but unrecorded
    with nt.connect(root, db=db) as trove:  # opening the trove settles the killed write
        assert keys(s3, bucket) == set()
        assert datasets(trove) == {}
        assert not list((root / ".trove" / "staging").glob("*.bucket"))


def test_a_put_is_checked_by_the_bucket_and_never_replaces(
    s3: S3Server, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = bucket_module.Bucket(f"s3://{bucket}/raw")
    source = tmp_path / "spikes.times.npy"
    source.write_bytes(SPIKES["alf/spikes.times.npy"])
    with pytest.raises(HashMismatchError):
        store.put("a/spikes.times.npy", source, md5(b"other bytes"))
    monkeypatch.setattr(bucket_module, "MULTIPART_FROM", 5 << 20)
    big = tmp_path / "ephys.raw.bin"
    big.write_bytes(bytes(range(256)) * (24 * 1024))
    with pytest.raises(HashMismatchError):
        store.put("a/ephys.raw.bin", big, md5(b"other bytes"))
    assert keys(s3, bucket) == set()
    assert not client(s3).list_multipart_uploads(Bucket=bucket).get("Uploads")  # aborted
    store.put("a/spikes.times.npy", source, md5(source.read_bytes()))
    with pytest.raises(ConflictError, match="another writer"):
        store.put("a/spikes.times.npy", big, md5(big.read_bytes()))
    body = client(s3).get_object(Bucket=bucket, Key="raw/a/spikes.times.npy")["Body"].read()
    assert body == SPIKES["alf/spikes.times.npy"]
    store.close()


def test_a_trove_on_a_read_only_data_server_registers_nothing(tmp_path: Path) -> None:
    (tmp_path / "spikes.times.npy").write_bytes(SPIKES["alf/spikes.times.npy"])
    root = tmp_path / "lab"
    with nt.connect(root, create=True, files="https://data.example.org/public") as trove:
        eid = trove.register_session("KS005", "2024-01-01", 1, lab="lab")
        with pytest.raises(ValidationError, match="read-only HTTP data server"):
            trove.register_files(eid, [tmp_path / "spikes.times.npy"], collection="alf")
        with pytest.raises(ValidationError, match="read-only HTTP data server"):
            trove.register()
        assert datasets(trove) == {}


def corrupt_on_the_way(request: Any, **kwargs: Any) -> None:
    """A botocore hook: flip one byte of a request's body after it was hashed and signed."""
    body = request.body.read()
    request.body = io.BytesIO(body[:-1] + bytes([body[-1] ^ 1]))


def test_bytes_damaged_on_the_way_are_refused_and_leave_no_object(
    s3: S3Server, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # moto ignores Content-MD5 (S3 and MinIO refuse a mismatch with BadDigest), so this is
    # the client's own check: the ETag of a put, and of each part, is the md5 of the bytes
    # the server stored.
    moto = client(s3)
    moto.put_object(Bucket=bucket, Key="probe", Body=b"x", ContentMD5=md5_b64(b"y"))
    assert "probe" in keys(s3, bucket)  # accepted: moto does not enforce Content-MD5
    moto.delete_object(Bucket=bucket, Key="probe")
    store = bucket_module.Bucket(f"s3://{bucket}/raw")
    store.client.meta.events.register("before-send.s3.PutObject", corrupt_on_the_way)
    store.client.meta.events.register("before-send.s3.UploadPart", corrupt_on_the_way)
    source = tmp_path / "spikes.times.npy"
    source.write_bytes(SPIKES["alf/spikes.times.npy"])
    with pytest.raises(HashMismatchError, match="stored other bytes than those sent"):
        store.put("a/spikes.times.npy", source, md5(source.read_bytes()))
    assert keys(s3, bucket) == set()
    monkeypatch.setattr(bucket_module, "MULTIPART_FROM", 5 << 20)
    big = tmp_path / "ephys.raw.bin"
    big.write_bytes(bytes(range(256)) * (24 * 1024))
    with pytest.raises(HashMismatchError, match="part 1"):
        store.put("a/ephys.raw.bin", big, md5(big.read_bytes()))
    assert keys(s3, bucket) == set()
    assert not moto.list_multipart_uploads(Bucket=bucket).get("Uploads")  # aborted
    store.close()


def test_a_damaged_upload_through_register_files_records_nothing(
    s3: S3Server, bucket: str, db: str | None, tmp_path: Path
) -> None:
    (tmp_path / "spikes.times.npy").write_bytes(SPIKES["alf/spikes.times.npy"])
    with nt.connect(tmp_path / "lab", db=db, create=True, files=f"s3://{bucket}") as trove:
        eid = trove.register_session("KS005", "2024-01-01", 1, lab="lab")
        assert trove.writes.bucket is not None
        events = trove.writes.bucket.client.meta.events
        events.register("before-send.s3.PutObject", corrupt_on_the_way)
        with pytest.raises(HashMismatchError):
            trove.register_files(eid, [tmp_path / "spikes.times.npy"], collection="alf")
        assert keys(s3, bucket) == set()
        assert datasets(trove) == {}
        events.unregister("before-send.s3.PutObject", corrupt_on_the_way)
        trove.register_files(eid, [tmp_path / "spikes.times.npy"], collection="alf")
        assert keys(s3, bucket) == {f"{SESSION}/alf/spikes.times.npy"}


def md5_b64(content: bytes) -> str:
    return base64.b64encode(hashlib.md5(content).digest()).decode()  # noqa: S324
