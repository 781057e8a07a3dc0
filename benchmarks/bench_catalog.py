"""Catalogue benchmark at consortium scale: neurotrove against ONE-api on the same catalogue.

``generate.py`` writes one catalogue twice (a trove, and ONE's cache tables). Every
contender then runs in processes of its own (so that peak RSS is its own):

- **open**: a fresh ``python`` imports the library, opens the catalogue and runs a first
  ``search(subject=...)``; import, open and search times and the peak RSS (``VmHWM``) are
  reported, median of ``--repeat`` processes; as many more only import SQLAlchemy and
  pandas, the floor under any open + first search of a trove;
- **warm**: one more process runs each query several times on the open catalogue:
  ``search(subject=)``, ``search(datasets=[two names])``, ``search(dataset=partial)``,
  ``search(date_range=, lab=)``, then ``list_datasets(eid)`` and ``get_details(eid)`` over
  ``--eids`` random sessions.

Contenders: neurotrove on the local SQLite catalogue (``nt.connect(root)``), ONE-api
(``One(cache_dir, tables_dir, mode="local")``), with ``--remote`` a served trove
(``nt.connect(url)``):
``trove serve`` is started once on the catalogue, a client mirrors it, the server is
stopped, and the same queries run offline on the mirror (``nt.connect(url, mode="local")``),
and with ``--db postgresql://.../NAME`` the same catalogue in PostgreSQL
(``nt.connect(root, db=url)``): copied there once with ``COPY`` (:func:`copy_to_postgresql`;
the database NAME is dropped and made again unless it already holds this catalogue's
version), then a column ``postgresql / SQLite`` gives the ratio of the two.

Common options: ``--data DIR`` (the generated catalogue, scratch and mirror go there; by
default the ``generate.py`` cache), ``--port N`` (``trove serve`` for ``--remote``; 0 = a
free port), ``--output FILE`` (also write the table there).

Usage::

    python benchmarks/bench_catalog.py --sessions 50000 --datasets-per-session 40
    python benchmarks/bench_catalog.py --sessions 2000 --repeat 3 --remote
    python benchmarks/bench_catalog.py --sessions 50000 --no-one \\
        --db postgresql://postgres@127.0.0.1:5432/bench_catalog_50000
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _timing import median_call, median_per_item, peak_mb

HERE = Path(__file__).resolve().parent
TWO_NAMES = ["_ibl_trials.table.pqt", "spikes.times.npy"]
PARTIAL = "_ibl_leftCamera.dlc"

# -- the child processes -------------------------------------------------------------------


def _open(side: str, where: dict[str, str]) -> tuple[Any, Callable[..., Any]]:
    """Import the contender's library and open the catalogue; return it and its search."""
    if side == "one":
        import warnings

        warnings.simplefilter("ignore")
        import logging

        logging.getLogger("one").setLevel(logging.ERROR)
        from one.api import One

        one = One(cache_dir=where["root"], tables_dir=where["tables"], mode="local")
        return one, one.search
    import neurotrove as nt

    if side == "remote":
        trove = nt.connect(where["url"], mode="local")
    elif side == "postgresql":
        trove = nt.connect(where["root"], db=where["db"], create=False)
    else:
        trove = nt.connect(where["root"], create=False)
    return trove, trove.search


def _queries(side: str, q: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    lab_key = "laboratory" if side == "one" else "lab"
    partial = {"datasets": f".*{q['partial']}.*"} if side == "one" else {"dataset": q["partial"]}
    return [
        ("subject", {"subject": q["subject"]}),
        ("datasets", {"datasets": q["two"]}),
        ("dataset", partial),
        ("date_lab", {"date_range": q["window"], lab_key: q["lab"]}),
    ]


def child(side: str, phase: str, where: dict[str, str], q: dict[str, Any]) -> dict[str, Any]:
    """Run one contender in this (fresh) process and return its figures."""
    began = time.perf_counter()
    out: dict[str, Any] = {}
    if phase == "floor":
        # What any open + first search of a trove costs before its own work: the libraries
        # it cannot answer without (SQLAlchemy, and pandas for the DataFrame, which imports
        # NumPy and, in pandas 3, pyarrow).
        import pandas  # noqa: F401
        import sqlalchemy  # noqa: F401

        return {"total": time.perf_counter() - began, "rss_mb": peak_mb()}
    if phase == "open":
        if side == "one":
            import one.api  # noqa: F401
        else:
            import neurotrove  # noqa: F401
        imported = time.perf_counter()
        handle, search = _open(side, where)
        opened = time.perf_counter()
        found = search(subject=q["subject"])
        done = time.perf_counter()
        if side != "one":  # again, with the modules imported: the catalogue's own cost
            again = time.perf_counter()
            _open(side, where)[1](subject=q["subject"])
            out["reopen"] = time.perf_counter() - again
        out.update(
            imports=imported - began,
            open=opened - imported,
            search=done - opened,
            total=done - began,
            found=len(found),
            rss_mb=peak_mb(),
        )
        return out
    handle, search = _open(side, where)
    out["rss_open_mb"] = peak_mb()
    for name, kwargs in _queries(side, q):

        def call(k: dict[str, Any] = kwargs) -> Any:
            return search(**k)

        out[name] = median_call(call)[0]
        out[f"{name}_found"] = len(search(**kwargs))
    # The filter's own cost, without building a DataFrame of thousands of sessions: what
    # the server's GET /sessions answers from (ONE's search returns eids, so it is the same).
    if side == "one":
        out["datasets_page"] = out["datasets"]
    else:
        out["datasets_page"] = median_call(
            lambda: handle.search_page(limit=50, datasets=q["two"])
        )[0]
    eids: list[Any] = q["eids"]
    if side == "one":
        import uuid

        eids = [uuid.UUID(e) for e in eids]
    out["list_datasets"] = median_per_item(handle.list_datasets, eids)
    out["list_datasets_found"] = sorted({len(handle.list_datasets(e)) for e in eids[:20]})
    out["get_details"] = median_per_item(handle.get_details, eids[: q["details_eids"]])
    out["rss_mb"] = peak_mb()
    return out


def _run_child(side: str, phase: str, where: dict[str, str], q: dict[str, Any]) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as spec:
        json.dump({"side": side, "phase": phase, "where": where, "q": q}, spec)
    try:
        began = time.perf_counter()
        done = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--child", spec.name],
            capture_output=True,
            text=True,
            check=False,
        )
        wall = time.perf_counter() - began
    finally:
        os.unlink(spec.name)
    if done.returncode != 0:
        raise RuntimeError(f"{side} {phase} child failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["wall"] = wall
    return result


# -- the parent ----------------------------------------------------------------------------


def _load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def _machine() -> str:
    import platform
    import sqlite3

    cpu = "unknown"
    memory = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            memory = f"{int(line.split()[1]) / 1024**2:.1f} GB"
    import one

    import neurotrove as nt

    return (
        f"{cpu}, {os.cpu_count()} cores, {memory} memory; Python {platform.python_version()}, "
        f"neurotrove {nt.__version__}, ONE-api {one.__version__}, SQLite {sqlite3.sqlite_version}"
    )


def _query_plan(info: dict[str, Any], tables: Path, eids: int, seed: int) -> dict[str, Any]:
    import datetime as dt
    import random

    import pyarrow.parquet as pq

    ids = sorted(pq.read_table(tables / "sessions.pqt", columns=["id"]).column("id").to_pylist())
    rng = random.Random(seed)
    subjects = info["subjects"]
    first = dt.date.fromisoformat(info["first_date"])
    last = dt.date.fromisoformat(info["last_date"])
    middle = first + (last - first) / 2
    return {
        "subject": subjects[len(subjects) // 2],
        "two": TWO_NAMES,
        "partial": PARTIAL,
        "window": [middle.isoformat(), (middle + dt.timedelta(days=90)).isoformat()],
        "lab": "cortexlab",
        "eids": rng.sample(ids, min(eids, len(ids))),
        "details_eids": min(eids, 200),
    }


def _mirror(root: Path, work: Path, port: int) -> str:
    """Serve the trove once, let a client mirror it, stop the server; return its URL."""
    from bench_server import PASSWORD, Service, _free_port

    import neurotrove as nt

    trove_cli = str(Path(sys.executable).with_name("trove"))
    subprocess.run(
        [trove_cli, "--root", str(root), "user", "add", "bench", "--password-stdin"],
        input=f"{PASSWORD}\n{PASSWORD}\n",
        text=True,
        check=False,
        capture_output=True,
    )
    os.environ.update(NEUROTROVE_USER="bench", NEUROTROVE_PASSWORD=PASSWORD)
    port = port or _free_port()
    server = Service(
        "trove serve",
        [
            *(trove_cli, "serve", str(root), "--host", "127.0.0.1", "--port", str(port)),
            *("--log-level", "warning"),
        ],
        port,
        work / "server.log",
        "/api/v1/health",
    )
    url = f"http://127.0.0.1:{server.port}"
    try:
        began = time.perf_counter()
        with nt.connect(url) as remote:
            remote.search(subject="^$")  # logs in and mirrors the catalogue
        print(f"  mirrored in {time.perf_counter() - began:.1f} s", file=sys.stderr)
    finally:
        server.stop()
    return url


def copy_to_postgresql(sqlite_file: Path, url: str, *, log: Callable[[str], None] = print) -> None:
    """Copy a SQLite catalogue into a new PostgreSQL database ``url`` (dropped if it exists).

    The schema is neurotrove's own (its migrations, run by opening the catalogue); the rows go
    table by table with ``COPY``, read through the schema's types (so UUIDs, JSON, dates and
    booleans arrive as each database stores them). Triggers are off during the copy
    (``session_replication_role = replica``): the change log is copied as it is, not written
    again per row. Then sequences follow the copied ids, and ``ANALYZE`` gives the planner
    its statistics.
    """
    import sqlalchemy as sa
    from psycopg import sql

    import neurotrove.catalog.registry  # noqa: F401  (every table on the one metadata)
    from neurotrove.catalog import schema
    from neurotrove.catalog.store import Catalog

    target = sa.make_url(url).set(drivername="postgresql+psycopg")
    server = sa.create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with server.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)')
        conn.exec_driver_sql(f'CREATE DATABASE "{target.database}"')
    server.dispose()
    began = time.perf_counter()
    Catalog(target.render_as_string(hide_password=False)).close()  # the schema, migrated
    source = sa.create_engine(f"sqlite:///{sqlite_file}")
    destination = sa.create_engine(target)
    tables = list(schema.metadata.sorted_tables)
    with source.connect() as reading, destination.connect() as writing:
        raw = writing.connection.dbapi_connection
        assert raw is not None
        with raw.cursor() as cursor:
            cursor.execute("SET session_replication_role = replica")
            for table in tables:
                name = sql.Identifier(table.name)
                cursor.execute(sql.SQL("DELETE FROM {}").format(name))  # the migrations' rows
                columns = sql.SQL(", ").join(sql.Identifier(c.name) for c in table.columns)
                result = reading.execution_options(yield_per=50_000).execute(sa.select(table))
                count = 0
                copying = sql.SQL("COPY {} ({}) FROM STDIN").format(name, columns)
                with cursor.copy(copying) as copy:
                    for row in result:
                        copy.write_row(
                            [json.dumps(v) if isinstance(v, dict | list) else v for v in row]
                        )
                        count += 1
                if count:
                    log(f"  {table.name}: {count:,} rows ({time.perf_counter() - began:.0f} s)")
                for key in table.primary_key.columns:
                    if isinstance(key.type, sa.Integer):  # its sequence continues after the ids
                        cursor.execute(
                            sql.SQL(
                                "SELECT setval(s, m) FROM (SELECT pg_get_serial_sequence(%s, %s) "
                                "AS s, (SELECT max({}) FROM {}) AS m) AS q "
                                "WHERE s IS NOT NULL AND m IS NOT NULL"
                            ).format(sql.Identifier(key.name), name),
                            (table.name, key.name),
                        )
            cursor.execute("SET session_replication_role = DEFAULT")
        raw.commit()
    with destination.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE")
    source.dispose()
    destination.dispose()
    log(f"  copied into {target.database} in {time.perf_counter() - began:.0f} s")


def _fmt(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s"


def _ratio(ours: float | None, theirs: float | None) -> str:
    if not ours or not theirs:
        return "-"
    factor = theirs / ours
    return f"**{factor:,.0f}x faster**" if factor >= 1 else f"{1 / factor:.1f}x slower"


def _pg_ratio(postgresql: float | None, sqlite: float | None) -> str:
    """PostgreSQL's figure over SQLite's (issue 21's target: at most 2)."""
    if not postgresql or not sqlite:
        return "-"
    factor = postgresql / sqlite
    return f"{factor:.2f}" if factor <= 2 else f"**{factor:.2f}**"


def _same_state(sqlite_file: Path, url: str) -> bool:
    """Whether database ``url`` holds the catalogue's version (a copy made before)."""
    import sqlite3

    import sqlalchemy as sa

    with sqlite3.connect(f"file:{sqlite_file}?mode=ro", uri=True) as source:
        state = source.execute("SELECT generation, version FROM catalog_state").fetchone()
    engine = sa.create_engine(sa.make_url(url).set(drivername="postgresql+psycopg"))
    try:
        with engine.connect() as conn:
            copied = conn.exec_driver_sql(
                "SELECT generation, version FROM catalog_state"
            ).fetchone()
    except sa.exc.SQLAlchemyError:
        return False
    finally:
        engine.dispose()
    return copied is not None and tuple(copied) == tuple(state)


def _budget(value: float | None, limit: float) -> str:
    if value is None:
        return "-"
    return "met" if value <= limit else "**missed**"


def _read_once(folders: list[Path]) -> None:
    """Read every file under ``folders`` (into the page cache)."""
    buffer = bytearray(1 << 20)
    for folder in folders:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            with path.open("rb", buffering=0) as handle:
                while handle.readinto(buffer):
                    pass


def run(args: argparse.Namespace) -> str:
    sys.path.insert(0, str(HERE))
    from generate import ensure_catalogue

    load_before = _load()
    catalogue = ensure_catalogue(
        args.sessions, args.datasets_per_session, args.seed, home=args.data
    )
    info = catalogue.info
    q = _query_plan(info, catalogue.one_tables, args.eids, args.seed)
    if args.data is not None:
        args.data.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="neurotrove-bench-catalog-", dir=args.data))
    if args.db:
        if _same_state(catalogue.root / ".trove" / "catalog.db", args.db):
            print(f"postgresql: {args.db} holds this catalogue already", file=sys.stderr)
        else:
            print(f"postgresql: copying the catalogue into {args.db}", file=sys.stderr)
            copy_to_postgresql(
                catalogue.root / ".trove" / "catalog.db",
                args.db,
                log=lambda line: print(line, file=sys.stderr, flush=True),
            )
    for key in [k for k in os.environ if k.startswith("NEUROTROVE_")]:
        del os.environ[key]
    os.environ.update(
        NEUROTROVE_CONFIG_DIR=str(work / "config"), NEUROTROVE_CACHE_DIR=str(work / "cache")
    )
    # The catalogue was written long before, perhaps by an earlier run, and the kernel may have
    # dropped its pages since: read every file of both contenders once, so that each is timed
    # from memory (a cold 1 GB catalogue made list_datasets 3 ms instead of 0.8 ms).
    _read_once([catalogue.root / ".trove", Path(catalogue.one_tables)])
    try:
        where = {"root": str(catalogue.root), "tables": str(catalogue.one_tables)}
        if args.db:
            where["db"] = args.db
        sides = (
            ["neurotrove"]
            + (["postgresql"] if args.db else [])
            + (["remote"] if args.remote else [])
            + ([] if args.no_one else ["one"])
        )
        if args.remote:
            print("mirroring through trove serve", file=sys.stderr)
            where["url"] = _mirror(catalogue.root, work, args.port)
        opens: dict[str, list[dict[str, Any]]] = {}
        warm: dict[str, dict[str, Any]] = {}
        print(f"floor: {args.repeat} fresh imports", file=sys.stderr, flush=True)
        floor = [_run_child("neurotrove", "floor", where, q) for _ in range(args.repeat)]
        for side in sides:
            repeat = args.one_repeat if side == "one" else args.repeat
            print(f"{side}: {repeat} fresh opens", file=sys.stderr, flush=True)
            opens[side] = [_run_child(side, "open", where, q) for _ in range(repeat)]
            print(f"{side}: warm queries", file=sys.stderr, flush=True)
            warm[side] = _run_child(side, "warm", where, q)
        load_after = _load()
    finally:
        # The mirror is a copy of the catalogue (1 GB at 50k sessions): not left behind.
        shutil.rmtree(work, ignore_errors=True)

    def med(side: str, key: str) -> float:
        return float(statistics.median(r[key] for r in opens[side]))

    counts = {
        side: [warm[side][f"{n}_found"] for n in ("subject", "datasets", "dataset", "date_lab")]
        for side in sides
    }
    if len({json.dumps(c) for c in counts.values()}) > 1:
        print(f"WARNING: result counts differ: {counts}", file=sys.stderr)
    lines = [
        f"## Catalogue benchmark: {catalogue.sessions:,} sessions, "
        f"{catalogue.datasets:,} datasets",
        "",
        f"- {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {_machine()}",
        f"- load average (1, 5, 15 min): {load_before} before, {load_after} after",
        f"- `python benchmarks/bench_catalog.py --sessions {args.sessions} "
        f"--datasets-per-session {args.datasets_per_session} --repeat {args.repeat} "
        f"--one-repeat {args.one_repeat} --eids {args.eids}"
        + (" --remote" if args.remote else "")
        + (" --no-one" if args.no_one else "")
        + (f" --db {args.db}" if args.db else "")
        + "`",
        f"- result counts (subject, datasets, dataset, date+lab): {counts}",
        "",
    ]
    against_one = [s for s in sides if s != "one"] if "one" in sides else []
    pg_ratio = "postgresql" in sides
    header = (
        "| operation | "
        + " | ".join(sides)
        + " | "
        + "".join(f"{s} vs ONE | " for s in against_one)
        + ("postgresql / SQLite | " if pg_ratio else "")
        + "budget |"
    )
    lines += [header, "|" + "---|" * (header.count("|") - 1)]

    def row(label: str, values: dict[str, float | None], limit: float | None, fmt: Any) -> None:
        cells = [fmt(values.get(s)) for s in sides]
        ratios = [_ratio(values.get(s), values.get("one")) for s in against_one]
        if pg_ratio:
            ratios.append(_pg_ratio(values.get("postgresql"), values.get("neurotrove")))
        verdict = ""
        if limit is not None:
            verdict = ", ".join(
                f"{s}: {_budget(values.get(s), limit)}" for s in sides if s != "one"
            )
        lines.append(f"| {label} | " + " | ".join(cells + ratios) + f" | {verdict} |")

    row(
        "open + first search (import, open, search)",
        {s: med(s, "total") for s in sides},
        0.3,
        _fmt,
    )
    row(
        "… process wall time (interpreter start to exit)",
        {s: med(s, "wall") for s in sides},
        None,
        _fmt,
    )
    row("… of which import", {s: med(s, "imports") for s in sides}, None, _fmt)
    row("… of which open", {s: med(s, "open") for s in sides}, None, _fmt)
    row("… of which first search", {s: med(s, "search") for s in sides}, None, _fmt)
    floor_time = float(statistics.median(r["total"] for r in floor))
    floor_rss = float(statistics.median(r["rss_mb"] for r in floor))
    row(
        "… floor: `import sqlalchemy, pandas` alone, in a fresh process",
        {s: floor_time for s in sides if s != "one"},
        None,
        _fmt,
    )
    row(
        "… open + search again in the same process (modules imported)",
        {s: med(s, "reopen") for s in sides if s != "one"},
        None,
        _fmt,
    )

    def mb(value: float | None) -> str:
        return "-" if value is None else f"{value:,.0f} MB"

    rss = {s: med(s, "rss_mb") for s in sides}
    cells = [mb(rss[s]) for s in sides]
    cells += [f"{rss['one'] / rss[s]:.1f}x less" for s in against_one]
    if pg_ratio:
        cells.append(_pg_ratio(rss["postgresql"], rss["neurotrove"]))
    verdict = ", ".join(
        f"{s}: {'met' if rss[s] <= 150 else '**missed**'}" for s in sides if s != "one"
    )
    lines.append("| peak RSS after open + first search | " + " | ".join(cells) + f" | {verdict} |")
    blank = " |" * (len(against_one) + pg_ratio + 1)
    lines.append(
        "| … floor: peak RSS of `import sqlalchemy, pandas` alone | "
        + " | ".join(mb(floor_rss) if s != "one" else "-" for s in sides)
        + " |"
        + blank
    )
    labels = {
        "subject": f"`search(subject={q['subject']!r})`",
        "datasets": f"`search(datasets={q['two']})`",
        "datasets_page": "… `search_page(limit=50, datasets=…)`: the filter, the count and "
        "a page, no DataFrame (ONE: the same `search`, which returns eids)",
        "dataset": f"`search(dataset={q['partial']!r})` (ONE: `datasets='.*…*'`)",
        "date_lab": f"`search(date_range={q['window']}, lab={q['lab']!r})`",
        "list_datasets": f"`list_datasets(eid)`, median over {len(q['eids'])} eids",
        "get_details": f"`get_details(eid)`, median over {q['details_eids']} eids",
    }
    limits = {"datasets": 0.03, "datasets_page": 0.03, "list_datasets": 0.001}
    for key, label in labels.items():
        row(label, {s: warm[s][key] for s in sides}, limits.get(key), _fmt)
    lines.append(
        "| peak RSS after the warm queries | "
        + " | ".join(mb(warm[s]["rss_mb"]) for s in sides)
        + " |"
        + blank
    )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--sessions", type=int, default=50_000)
    parser.add_argument("--datasets-per-session", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=5, help="fresh opens of neurotrove")
    parser.add_argument("--one-repeat", type=int, default=3, help="fresh opens of ONE")
    parser.add_argument("--eids", type=int, default=1000, help="random sessions to list")
    parser.add_argument("--remote", action="store_true", help="also a served trove's mirror")
    parser.add_argument("--no-one", action="store_true", help="leave ONE-api out")
    parser.add_argument(
        "--db",
        help="also a PostgreSQL copy of the catalogue, in this database (made if missing)",
    )
    parser.add_argument(
        "--data", type=Path, help="folder for the catalogue and scratch (default: the cache)"
    )
    parser.add_argument("--port", type=int, default=0, help="trove serve's port (0: free)")
    parser.add_argument("--output", type=Path, help="also write the markdown here")
    args = parser.parse_args(argv)
    if args.child:
        spec = json.loads(Path(args.child).read_text())
        print(json.dumps(child(spec["side"], spec["phase"], spec["where"], spec["q"])))
        return 0
    text = run(args)
    print(text)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
