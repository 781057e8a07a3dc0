"""Object store benchmark: which S3 client, and the trove's downloads against its own bulk get.

Measured in one run, against moto's S3-compatible server (``moto_server``) on 127.0.0.1,
on N objects of S MiB written here:

1. **The client choice.** Every candidate downloads the same N objects into a fresh folder
   with its own bulk download and 8 at a time: fsspec's ``s3fs`` (``fs.get(keys, paths)``),
   ``obstore`` (``obstore.get(...).stream()`` on 8 threads), boto3's transfer manager
   (``s3transfer``: ``TransferManager.download`` per object, ``max_concurrency=8``), and
   presigned URLs streamed with httpx (botocore signs; 8 threads).
2. **The trove against the chosen library.** ``load_object(..., download_only=True)`` of a
   session whose N datasets are in the bucket (``trove init --files s3://...``): parallel,
   resumable, md5-verified and renamed under a lock, into a cold file cache; against the
   chosen library's own bulk download of the same objects (no verification).

The server is Python (moto): on loopback it, not the client, bounds the throughput, so the
figures compare clients at the same server, not the clients' ceilings.

Usage::

    python benchmarks/bench_object_store.py [--objects 16] [--mib 4] [--repeat 3]
        [--data DIR] [--port N] [--output FILE]

Downloads, the trove and moto's log go to a new folder in ``--data`` (default
``~/.cache/neurotrove-bench/object-store``), removed at the end; ``moto_server`` listens on
``--port`` (default: a free port).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _options import add_common_options, free_port, scratch_dir, write_output
from tests.object_servers import ACCESS_KEY, REGION, SECRET_KEY, S3Server, put_objects

BUCKET = "bench"
WORKERS = 8


def with_s3fs(url: str, keys: list[str], out: Path) -> None:
    """s3fs: one bulk ``get`` of every key."""
    import s3fs

    fs = s3fs.S3FileSystem(
        key=ACCESS_KEY,
        secret=SECRET_KEY,
        endpoint_url=url,
        client_kwargs={"region_name": REGION},
        max_concurrency=WORKERS,
        skip_instance_cache=True,
    )
    fs.get([f"{BUCKET}/{key}" for key in keys], [str(out / key) for key in keys])


def with_obstore(url: str, keys: list[str], out: Path) -> None:
    """obstore: ``get`` and stream each object to its file, 8 threads."""
    import obstore
    from obstore.store import S3Store

    store = S3Store(
        BUCKET,
        endpoint=url,
        access_key_id=ACCESS_KEY,
        secret_access_key=SECRET_KEY,
        region=REGION,
        client_options={"allow_http": True},
    )

    def one(key: str) -> None:
        target = out / key
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("wb") as sink:
            for chunk in obstore.get(store, key).stream(min_chunk_size=1 << 20):
                sink.write(chunk)

    with ThreadPoolExecutor(WORKERS) as pool:
        list(pool.map(one, keys))


def _boto3_client(url: str):  # type: ignore[no-untyped-def]
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=url,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name=REGION,
    )


def with_transfer_manager(url: str, keys: list[str], out: Path) -> None:
    """boto3's transfer manager (s3transfer): every download queued, 8 at a time."""
    from s3transfer.manager import TransferConfig, TransferManager

    client = _boto3_client(url)
    for key in keys:
        (out / key).parent.mkdir(parents=True, exist_ok=True)
    with TransferManager(client, TransferConfig(max_request_concurrency=WORKERS)) as manager:
        futures = [manager.download(BUCKET, key, str(out / key)) for key in keys]
        for future in futures:
            future.result()


def with_presigned_httpx(url: str, keys: list[str], out: Path) -> None:
    """Presigned URLs (botocore signs) streamed with httpx, 8 threads."""
    import httpx

    client = _boto3_client(url)
    addresses = {
        key: client.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": key})
        for key in keys
    }
    with httpx.Client(trust_env=False) as http:

        def one(key: str) -> None:
            target = out / key
            target.parent.mkdir(parents=True, exist_ok=True)
            with http.stream("GET", addresses[key]) as response, target.open("wb") as sink:
                response.raise_for_status()
                for chunk in response.iter_raw(1 << 20):
                    sink.write(chunk)

        with ThreadPoolExecutor(WORKERS) as pool:
            list(pool.map(one, keys))


LIBRARIES = {
    "s3fs (fsspec)": "s3fs",
    "obstore": "obstore",
    "boto3 transfer manager": "boto3",
    "presigned URL + httpx": "boto3",
}
"""The module each candidate needs; a candidate whose module is missing is left out."""

CANDIDATES: dict[str, Callable[[str, list[str], Path], None]] = {
    "s3fs (fsspec)": with_s3fs,
    "obstore": with_obstore,
    "boto3 transfer manager": with_transfer_manager,
    "presigned URL + httpx": with_presigned_httpx,
}


def timed(
    run: Callable[[Path], None],
    repeat: int,
    sizes: int,
    base: Path,
    setup: Callable[[Path], Callable[[Path], None]] | None = None,
) -> float:
    """Return the median seconds of ``run`` into a fresh folder, checking the bytes arrived.

    The folders are made in ``base``. With ``setup``, each repeat first calls it (untimed)
    and times what it returns instead.
    """
    times = []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory(dir=base) as scratch:
            out = Path(scratch)
            step = setup(out) if setup is not None else run
            start = time.perf_counter()
            step(out)
            times.append(time.perf_counter() - start)
            got = sum(p.stat().st_size for p in out.rglob("*.bin") if p.is_file())
            assert got >= sizes, f"only {got} of {sizes} bytes arrived"
    return statistics.median(times)


def trove_setup(contents: dict[str, bytes]) -> Callable[[Path], Callable[[Path], None]]:
    """Return a setup making a trove whose datasets are the bucket's objects (untimed).

    What it returns is timed: ``load_object(download_only=True)`` into a cold file cache,
    the bucket's client already made (as after a trove's first load).
    """
    import neurotrove as nt

    def setup(out: Path) -> Callable[[Path], None]:
        os.environ["NEUROTROVE_CACHE_DIR"] = str(out / "cache")  # a cold cache each run
        trove = nt.connect(
            out / "trove", create=True, files=f"s3://{BUCKET}", download_workers=WORKERS
        )
        eid = trove.register_session("bench", "2024-01-01", 1, lab="lab")
        trove.table("datasets").insert(
            [
                {
                    "eid": eid,
                    "rel_path": key.split("/", 5)[5],
                    "file_size": len(content),
                    "hash": hashlib.md5(content).hexdigest(),  # noqa: S324 - ONE's checksum
                    "exists": True,
                }
                for key, content in contents.items()
            ]
        )
        trove.files.store(None)  # type: ignore[attr-defined]  # the client, made once

        def run(_: Path) -> None:
            with trove:
                trove.load_object(eid, "raw", collection="raw_data", download_only=True)

        return run

    return setup


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=int, default=16)
    parser.add_argument("--mib", type=float, default=4.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--part", choices=["clients", "trove", "all"], default="all")
    add_common_options(parser)
    args = parser.parse_args()
    size = int(args.mib * (1 << 20))
    rng = os.urandom
    contents = {
        f"lab/Subjects/bench/2024-01-01/001/raw_data/_bench_raw.part{i:03d}.bin": rng(size)
        for i in range(args.objects)
    }
    keys = list(contents)
    total = size * len(keys)
    missing: list[str] = []
    with scratch_dir(args, "object-store") as scratch:
        server = S3Server(scratch / "moto.log", free_port(args)).start()
        try:
            os.environ.update(server.environment())
            put_objects(server, BUCKET, contents)
            results: dict[str, float] = {}
            if args.part in ("clients", "all"):
                for name, candidate in CANDIDATES.items():
                    if importlib.util.find_spec(LIBRARIES[name]) is None:
                        missing.append(f"{name} (`pip install {LIBRARIES[name]}`)")
                        continue
                    results[name] = timed(
                        lambda out, c=candidate: c(server.url, keys, out),
                        args.repeat,
                        total,
                        scratch,
                    )
            if args.part in ("trove", "all"):
                results["neurotrove load_object (verified)"] = timed(
                    print, args.repeat, total, scratch, setup=trove_setup(contents)
                )
        finally:
            server.stop()
    mb = total / 1e6
    best = min(results.values())
    lines = [
        f"{len(keys)} objects x {args.mib:g} MiB = {mb:.0f} MB, median of {args.repeat}; "
        f"moto_server on 127.0.0.1, {WORKERS} downloads at a time",
        "",
        "| client | seconds | MB/s | vs. fastest |",
        "|---|---:|---:|---:|",
        *(
            f"| {name} | {seconds:.2f} | {mb / seconds:.0f} | {seconds / best:.2f} |"
            for name, seconds in results.items()
        ),
    ]
    if missing:
        lines += ["", f"Not installed, left out: {', '.join(missing)}."]
    text = "\n".join(lines) + "\n"
    print("\n" + text, end="")
    write_output(args, text)


if __name__ == "__main__":
    main()
