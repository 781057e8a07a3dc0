"""``trove register`` of a bucket against a bare listing plus md5 of the same objects.

Measured in one run against an S3 endpoint on 127.0.0.1 (``moto_server``, started here
unless ``--endpoint`` names one already running), on ``--objects`` small objects laid out
as ALF sessions (``--per-session`` datasets each) and put without an md5 in their metadata,
so that both sides read every object:

1. **the anchor**: obstore lists the prefix, then gets every object and md5s it with
   hashlib, :data:`~neurotrove.remote.bucket.HASH_REQUESTS` objects at a time (the
   concurrency ``trove register`` uses), and nothing else: no parsing, no catalogue;
2. **neurotrove**: ``trove.register()`` of a new trove whose files are in the bucket
   (``nt.connect(root, create=True, files="s3://bucket/prefix")``): the listing, ALF
   parsing, the md5 of every new object by streaming it, and the catalogue rows, on SQLite;
3. **incremental**: ``trove.register()`` again, nothing new (every object unchanged by its
   ETag and size), against obstore's listing alone.

moto is a Python server: on loopback it, not either client, bounds the rate, so the ratio
is what register adds over a client at the same server. Building the bucket (putting the
objects) is timed too but is not a measurement. Scratch files (the trove, the moto log) go
to a new folder in ``--data`` (default ``~/.cache/neurotrove-bench/bucket-register``), removed
at the end; ``moto_server`` listens on ``--port`` (default: a free port).

Usage::

    python benchmarks/bench_bucket_register.py                       # 100,000 objects
    python benchmarks/bench_bucket_register.py --objects 20000       # ~1/5 of the time
    python benchmarks/bench_bucket_register.py --endpoint http://127.0.0.1:9000
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _options import add_common_options, free_port, scratch_dir, write_output
from tests.object_servers import ACCESS_KEY, REGION, SECRET_KEY, S3Server

BUCKET = "bench-register"
PREFIX = "raw"


def keys(objects: int, per_session: int) -> list[str]:
    """ALF keys: sessions of ``per_session`` datasets in a few collections."""
    out = []
    for k in range(objects):
        session, dataset = divmod(k, per_session)
        subject, day = divmod(session, 200)
        folder = (
            f"lab/Subjects/SUBJ_{subject:04d}/2020-{1 + day // 28 % 12:02d}-{1 + day % 28:02d}"
        )
        collection = ("alf", "alf/probe00", "raw_behavior_data")[dataset % 3]
        out.append(
            f"{PREFIX}/{folder}/{1 + day // 336:03d}/{collection}/obj{dataset:02d}.data.bin"
        )
    return out


def build(endpoint: str, names: list[str], size: int, workers: int) -> float:
    """Create the bucket and put every object (random bytes, no md5 metadata)."""
    import boto3
    from botocore.config import Config

    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name=REGION,
        config=Config(max_pool_connections=workers),
    )
    began = time.perf_counter()
    client.create_bucket(Bucket=BUCKET)

    def put(key: str) -> None:
        client.put_object(Bucket=BUCKET, Key=key, Body=os.urandom(size))

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(put, names))
    client.close()
    return time.perf_counter() - began


def anchor(endpoint: str, workers: int, *, read: bool) -> tuple[float, int]:
    """obstore: list the prefix, then (``read``) get and md5 every object; seconds, count."""
    import obstore
    from obstore.store import S3Store

    began = time.perf_counter()
    store = S3Store(
        BUCKET,
        endpoint=endpoint,
        access_key_id=ACCESS_KEY,
        secret_access_key=SECRET_KEY,
        region=REGION,
        client_options={"allow_http": True},
    )
    listed = [item["path"] for batch in obstore.list(store, prefix=PREFIX) for item in batch]

    def md5(key: str) -> str:
        digest = hashlib.md5()  # noqa: S324 - ONE's checksum
        for chunk in obstore.get(store, key).stream(min_chunk_size=1 << 20):
            digest.update(chunk)
        return digest.hexdigest()

    if read:
        with ThreadPoolExecutor(workers) as pool:
            hashes = list(pool.map(md5, listed))
        assert len(hashes) == len(listed)
    return time.perf_counter() - began, len(listed)


def register(root: Path) -> tuple[float, int, int]:
    """``trove.register()`` of the bucket; seconds, datasets added, datasets unchanged."""
    import neurotrove as nt

    began = time.perf_counter()
    with nt.connect(root, create=True, files=f"s3://{BUCKET}/{PREFIX}") as trove:
        report = trove.register(progress=False)
    return time.perf_counter() - began, report.datasets_added, report.datasets_unchanged


def main() -> None:
    """Build the bucket, run the anchor and register, print a markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=100_000)
    parser.add_argument("--per-session", type=int, default=40)
    parser.add_argument("--size", type=int, default=4096, help="bytes per object")
    parser.add_argument("--endpoint", help="an S3 endpoint already running (empty)")
    parser.add_argument("--put-workers", type=int, default=16)
    add_common_options(parser)
    options = parser.parse_args()
    from neurotrove.remote.bucket import HASH_REQUESTS

    with scratch_dir(options, "bucket-register") as scratch:
        names, first, bare, again, listing = _run(options, scratch, HASH_REQUESTS)
    lines = [
        f"{len(names):,} objects of {options.size} B in {len(names) // options.per_session:,} "
        f"sessions, moto_server on loopback, {HASH_REQUESTS} requests at a time",
        "",
        "| what | neurotrove (s) | anchor (s) | ratio | objects/s (neurotrove) |",
        "|---|---:|---:|---:|---:|",
        f"| first register (list + md5 + rows) vs obstore list + get + md5 | {first:.1f} | "
        f"{bare:.1f} | {first / bare:.2f} | {len(names) / first:,.0f} |",
        f"| register again, nothing new vs obstore list | {again:.1f} | {listing:.1f} | "
        f"{again / listing:.2f} | {len(names) / again:,.0f} |",
    ]
    text = "\n".join(lines) + "\n"
    print("\n" + text, end="")
    write_output(options, text)


def _run(
    options: argparse.Namespace, scratch: Path, requests: int
) -> tuple[list[str], float, float, float, float]:
    """Build the bucket and time the four runs; return the keys and the four times."""
    server = None
    try:
        endpoint = options.endpoint
        if endpoint is None:
            server = S3Server(scratch / "moto.log", free_port(options)).start()
            endpoint = server.url
        os.environ.update(
            {
                "AWS_ENDPOINT_URL": endpoint,
                "AWS_ACCESS_KEY_ID": ACCESS_KEY,
                "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
                "AWS_DEFAULT_REGION": REGION,
                "AWS_REGION": REGION,
                "AWS_CONFIG_FILE": str(scratch / "no-aws-config"),
                "AWS_SHARED_CREDENTIALS_FILE": str(scratch / "no-aws-credentials"),
            }
        )
        os.environ.pop("AWS_PROFILE", None)
        names = keys(options.objects, options.per_session)
        built = build(endpoint, names, options.size, options.put_workers)
        print(
            f"put {len(names):,} objects of {options.size} B in {built:.0f} s ({endpoint})",
            file=sys.stderr,
        )
        bare, listed = anchor(endpoint, requests, read=True)
        assert listed == len(names), f"listed {listed} of {len(names)}"
        first, added, _ = register(scratch / "trove")
        assert added == len(names), f"registered {added} of {len(names)}"
        listing, _ = anchor(endpoint, requests, read=False)
        again, _, unchanged = register(scratch / "trove")
        assert unchanged == len(names), f"{unchanged} of {len(names)} unchanged"
    finally:
        if server is not None:
            server.stop()
    return names, first, bare, again, listing


if __name__ == "__main__":
    main()
