"""Run the whole comparison: every benchmark against its anchor, one markdown file.

Each benchmark in :data:`BENCHMARKS` runs in its own process, one after the other, at one
scale:

- ``small``: tiny sizes, a few minutes in all: checks the harness and the scripts, not the
  figures;
- ``full``: the sizes ``benchmarks/README.md`` documents (hours on a loaded 2-core machine).

Each gets ``--data <DIR>/<name>``, ``--port`` (0, a free port, unless ``--port`` is given:
then every benchmark gets its own block of ten ports) and ``--output``; its markdown is
collected into one file whose header names the machine (CPU, cores, memory, load average,
Python, SQLite and PostgreSQL versions, the git commit). A script not on this branch, or one
that needs something missing, is listed as skipped with the reason; an option a script does
not take (yet) is left out and named. Logs are kept in ``<DIR>/logs``.

Usage::

    python benchmarks/compare.py --scale small                 # a few minutes
    python benchmarks/compare.py --scale full --output RESULTS-full.md
    python benchmarks/compare.py --only core,gc --scale small
    python benchmarks/compare.py --list
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
import shlex
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _options import CACHE_VARIABLE, bench_home

HERE = Path(__file__).resolve().parent
CHECKOUT = HERE.parent
PORTS_PER_BENCHMARK = 10
"""With ``--port N``, benchmark k gets ports ``N + 10 k`` and up."""

Options = Sequence[tuple[str, str | None]]


@dataclass(frozen=True)
class Benchmark:
    """One benchmark script and its command lines at each scale.

    Attributes
    ----------
    name : str
        Its short name (``--only``), e.g. ``core``.
    script : str
        The file in ``benchmarks/``.
    what : str
        What it compares, for the summary table.
    small, full : sequence of (option, value or None)
        Its size options at each scale (``full`` is usually its defaults: nothing).
    needs : callable or None
        Given compare's options, the reason the benchmark cannot run, or ``None``.
    """

    name: str
    script: str
    what: str
    small: Options = ()
    full: Options = ()
    needs: Callable[[argparse.Namespace], str | None] | None = field(default=None)


def _parse(text: str) -> Options:
    """Split ``"--a 1 --flag --b x"`` into ``(option, value or None)`` pairs."""
    pairs: list[tuple[str, str | None]] = []
    for word in text.split():
        if word.startswith("--"):
            pairs.append((word, None))
        else:
            pairs[-1] = (pairs[-1][0], word)
    return pairs


def _needs_before(args: argparse.Namespace) -> str | None:
    if args.before is None:
        return "needs `--before SRC` (the src folder of the older checkout to compare with)"
    return None


def _needs_allensdk(args: argparse.Namespace) -> str | None:
    made = Path.home() / ".cache" / "neurotrove-tests" / "allensdk-2.16.2" / ".installed"
    if args.scale == "small" and not made.is_file():
        return (
            "AllenSDK's environment is not made yet (bench_ephys.py makes it once with pip, "
            "which is not for a quick check); run `python benchmarks/bench_ephys.py --sessions "
            "20 --units 20000` once, or use --scale full"
        )
    return None


BENCHMARKS: tuple[Benchmark, ...] = (
    Benchmark(
        "core",
        "bench_core.py",
        "register, open, warm calls on a small tree vs ONE-api, md5sum",
        small=_parse(
            "--sessions 20 --files-per-session 10 --repeat 1 --eids 5 --one-hash-files 1 --quiet"
        ),
        full=_parse("--quiet"),
    ),
    Benchmark(
        "register",
        "bench_register.py",
        "register scan and md5 of 100,000 files vs ONE make_parquet_db, md5sum",
        small=_parse("--sessions 20 --files-per-session 10 --one-hash-files 1 --quiet"),
        full=_parse("--quiet"),
    ),
    Benchmark(
        "load",
        "bench_load.py",
        "load_object vs bare np.load / pyarrow, ONE load_object",
        small=_parse("--sessions 20 --files-per-session 10 --eids 5 --repeat 1 --quiet"),
        full=_parse("--quiet"),
    ),
    Benchmark(
        "interrupt",
        "bench_interrupt.py",
        "trove register after Ctrl-C vs the full register",
        small=_parse("--sessions 10 --files-per-session 10 --file-mb 0.5 --at 0.5"),
    ),
    Benchmark(
        "catalog",
        "bench_catalog.py",
        "the catalogue at 50k sessions / 2M datasets, local and mirrored, vs ONE-api",
        small=_parse("--sessions 200 --repeat 1 --one-repeat 1 --eids 20 --remote"),
        full=_parse("--remote"),
    ),
    Benchmark(
        "import_one",
        "bench_import_one.py",
        "import_one / export_one of 2M datasets vs ONE load_tables",
        small=_parse("--sessions 200"),
    ),
    Benchmark(
        "public_cache",
        "bench_public_cache.py",
        "an imported public ONE cache's first search vs ONE-api, pandas",
        small=_parse("--sessions 200 --repeat 1 --one-timeout 120"),
        full=_parse("--sessions 50000"),
    ),
    Benchmark(
        "server",
        "bench_server.py",
        "trove serve files, client and REST vs nginx",
        small=_parse(
            "--small-files 100 --big-size 20e6 --repeat 1 --duration 2 --rest-sessions 50"
        ),
    ),
    Benchmark(
        "rest",
        "bench_rest.py",
        "REST throughput of the session and dataset routes",
        small=_parse("--sessions 200 --repeat 1 --duration 2"),
    ),
    Benchmark(
        "dataset_pages",
        "bench_dataset_pages.py",
        "GET /api/v1/datasets pages vs the server that listed every dataset",
        small=_parse("--sessions 200 --rounds 1"),
    ),
    Benchmark(
        "mirror",
        "bench_mirror.py",
        "a mirror's first download and refresh vs the snapshot alone",
        small=_parse("--sessions 200 --datasets-per-session 10 --repeat 1"),
    ),
    Benchmark(
        "first_search",
        "bench_first_search.py",
        "a fresh process's first search of a served trove vs local, ONE-api",
        small=_parse("--repeat 1 --no-one"),
    ),
    Benchmark(
        "growth",
        "bench_growth.py",
        "how each operation grows from 2M to 10M datasets on PostgreSQL",
        small=_parse("--sessions 200 --repeat 1"),
    ),
    Benchmark(
        "object_store",
        "bench_object_store.py",
        "S3 clients' bulk download, load_object from a bucket (moto)",
        small=_parse("--objects 4 --mib 1 --repeat 1"),
    ),
    Benchmark(
        "bucket_register",
        "bench_bucket_register.py",
        "trove register of a bucket vs obstore list + get + md5 (moto)",
        small=_parse("--objects 200"),
        full=_parse("--objects 10000"),
    ),
    Benchmark(
        "gc",
        "bench_gc.py",
        "large answers with the collector paused three ways vs gc.disable()",
        small=_parse("--sessions 2000 --files 500 --ballast 10000 --repeat 1"),
    ),
    Benchmark(
        "releases",
        "bench_releases.py",
        "reads through a release vs the whole trove",
        small=_parse("--sessions 200 --datasets-per-session 10 --repeat 1"),
    ),
    Benchmark(
        "webapp",
        "bench_webapp.py",
        "server time of each web app page at 50k sessions",
        small=_parse("--sessions 200 --datasets-per-session 10 --repeat 1"),
    ),
    Benchmark(
        "behaviour",
        "bench_behaviour.py",
        "split_trials, insert_nwb, recompute_masks vs brute force, pynwb + np.save",
        small=_parse("--events 20000 --trials 50 --sessions 2 --samples 20000"),
    ),
    Benchmark(
        "pipeline",
        "bench_pipeline.py",
        "pipeline.run per session vs a bare loop",
        small=_parse("--sessions 50"),
    ),
    Benchmark(
        "ephys",
        "bench_ephys.py",
        "get_units over 1M units vs AllenSDK's fixed cache",
        small=_parse("--sessions 20 --units 20000 --repeat 1"),
        needs=_needs_allensdk,
    ),
    Benchmark(
        "versions",
        "bench_versions.py",
        "the warm calls of this checkout vs an older one",
        small=_parse("--rounds 1"),
        needs=_needs_before,
    ),
)


@dataclass
class Outcome:
    """What one benchmark's run gave."""

    benchmark: Benchmark
    status: str
    seconds: float = 0.0
    command: str = ""
    markdown: str = ""
    notes: list[str] = field(default_factory=list)


# -- the machine -------------------------------------------------------------------------------


def _read(path: str, key: str) -> str | None:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(key):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _postgres_version(url: str) -> str:
    try:
        import sqlalchemy as sa

        engine = sa.create_engine(
            sa.make_url(url).set(drivername="postgresql+psycopg"),
            connect_args={"connect_timeout": 5},
        )
        try:
            with engine.connect() as conn:
                return str(conn.execute(sa.text("SHOW server_version")).scalar())
        finally:
            engine.dispose()
    except Exception as error:  # the header says why; the run goes on
        return f"not reached at {url} ({type(error).__name__})"


def _git(*command: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(CHECKOUT), *command], capture_output=True, text=True, check=False
    )
    return done.stdout.strip() if done.returncode == 0 else "unknown"


def machine(postgres: str) -> list[str]:
    """Return the header lines naming the machine, the versions and the commit.

    Parameters
    ----------
    postgres : str
        The PostgreSQL server to ask its version.

    Returns
    -------
    list of str
        Markdown list items.
    """
    import neurotrove

    memory = _read("/proc/meminfo", "MemTotal")
    gigabytes = f"{int(memory.split()[0]) / 1024**2:.1f} GB" if memory else "unknown"
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    dirty = " (with uncommitted changes)" if _git("status", "--porcelain", "--", ".") else ""
    return [
        f"- machine: {_read('/proc/cpuinfo', 'model name') or platform.processor()}, "
        f"{usable} cores usable ({os.cpu_count()} online), {gigabytes} memory, "
        f"{platform.system()} {platform.release()}",
        f"- Python {platform.python_version()}; SQLite {sqlite3.sqlite_version}; "
        f"PostgreSQL {_postgres_version(postgres)}; neurotrove {neurotrove.__version__} "
        f"from `{Path(neurotrove.__file__).parent}`",
        f"- git commit {_git('rev-parse', 'HEAD')}{dirty}, {_git('log', '-1', '--format=%cI')}",
    ]


# -- running ---------------------------------------------------------------------------------


def _accepted(script: Path, environment: dict[str, str]) -> set[str] | None:
    """Return the options the script's ``--help`` lists, or ``None`` if it fails."""
    done = subprocess.run(
        [sys.executable, str(script), "--help"],
        capture_output=True,
        text=True,
        env=environment,
        check=False,
        timeout=120,
    )
    if done.returncode != 0:
        return None
    return set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", done.stdout))


def _command(
    benchmark: Benchmark, args: argparse.Namespace, index: int, accepted: set[str], output: Path
) -> tuple[list[str], list[str]]:
    """Return the script's command line and the options left out because it lacks them."""
    wanted: list[tuple[str, str | None]] = list(
        benchmark.small if args.scale == "small" else benchmark.full
    )
    wanted += [
        ("--data", str(args.data / benchmark.name)),
        ("--port", str(args.port + PORTS_PER_BENCHMARK * index if args.port else 0)),
        ("--output", str(output)),
    ]
    if benchmark.name == "versions":
        wanted += [("--before", str(args.before)), ("--after", str(CHECKOUT / "src"))]
    command = [sys.executable, str(HERE / benchmark.script)]
    left_out = []
    for option, value in wanted:
        if option not in accepted:
            left_out.append(option)
            continue
        command += [option] if value is None else [option, value]
    return command, left_out


def run_one(
    benchmark: Benchmark, args: argparse.Namespace, index: int, environment: dict[str, str]
) -> Outcome:
    """Run one benchmark; return its outcome (never raises for the benchmark's failure)."""
    script = HERE / benchmark.script
    if not script.is_file():
        return Outcome(
            benchmark, f"skipped: `benchmarks/{benchmark.script}` is not on this branch"
        )
    reason = benchmark.needs(args) if benchmark.needs is not None else None
    if reason is not None:
        return Outcome(benchmark, f"skipped: {reason}")
    accepted = _accepted(script, environment)
    if accepted is None:
        return Outcome(benchmark, "failed: its `--help` failed")
    output = args.data / "outputs" / f"{benchmark.name}.md"
    output.unlink(missing_ok=True)
    command, left_out = _command(benchmark, args, index, accepted, output)
    shown = shlex.join(["python", f"benchmarks/{benchmark.script}", *command[2:]])
    outcome = Outcome(benchmark, "ok", command=shown)
    if left_out:
        outcome.notes.append(f"options it does not take, left out: {', '.join(left_out)}")
    logs = args.data / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    with (
        (logs / f"{benchmark.name}.out").open("w") as out,
        (logs / f"{benchmark.name}.err").open("w") as err,
    ):
        try:
            done = subprocess.run(
                command,
                stdout=out,
                stderr=err,
                env=environment,
                cwd=CHECKOUT,
                timeout=args.timeout,
                check=False,
            )
            code: int | None = done.returncode
        except subprocess.TimeoutExpired:
            code = None
    outcome.seconds = time.perf_counter() - began
    printed = (logs / f"{benchmark.name}.out").read_text(errors="replace")
    if "--output" in accepted and output.is_file():
        outcome.markdown = output.read_text(errors="replace")
    else:
        outcome.markdown = printed
    if code is None:
        outcome.status = f"failed: stopped after {args.timeout:.0f} s (`--timeout`)"
    elif code != 0:
        tail = (logs / f"{benchmark.name}.err").read_text(errors="replace").strip()
        outcome.status = f"failed: exit status {code}"
        outcome.notes.append("last lines of its stderr:\n\n```\n" + tail[-1500:] + "\n```")
    return outcome


def _demoted(markdown: str) -> str:
    """Put a benchmark's own headings one level below its section's (outside code blocks)."""
    lines, fenced = [], False
    for line in markdown.splitlines():
        fenced ^= line.startswith("```")
        lines.append("#" + line if not fenced and re.match(r"#{1,5} ", line) else line)
    return "\n".join(lines)


def render(outcomes: list[Outcome], args: argparse.Namespace, header: list[str]) -> str:
    """Return the combined markdown: the header, a summary table, then each benchmark's."""
    lines = [
        f"# neurotrove benchmarks against their anchors ({args.scale} scale)",
        "",
        *header,
        "",
        "| benchmark | compares | status | time |",
        "|---|---|---|---:|",
    ]
    for outcome in outcomes:
        status = outcome.status.split("\n")[0]
        seconds = f"{outcome.seconds:,.0f} s" if outcome.command else ""
        link = f"[`{outcome.benchmark.script}`](#{outcome.benchmark.script.replace('.', '')})"
        lines.append(f"| {link} | {outcome.benchmark.what} | {status} | {seconds} |")
    for outcome in outcomes:
        if not outcome.command:
            continue
        lines += ["", f"## {outcome.benchmark.script}", "", f"`{outcome.command}`", ""]
        lines += [f"- {note}" for note in outcome.notes]
        if outcome.status != "ok":
            lines.append(f"- **{outcome.status}**")
        lines += ["", _demoted(outcome.markdown.strip()) or "(no output)"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the chosen benchmarks and write the combined markdown."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--scale", choices=["small", "full"], default="small")
    parser.add_argument("--only", help="comma-separated names to run (see --list)")
    parser.add_argument("--skip", help="comma-separated names to leave out")
    parser.add_argument(
        "--data",
        type=Path,
        help=f"every benchmark's data goes to DIR/<name>, generated catalogues to DIR "
        f"(default: ${CACHE_VARIABLE} or ~/.cache/neurotrove-bench)",
    )
    parser.add_argument(
        "--port", type=int, default=0, help="first port (each benchmark gets a block of ten)"
    )
    parser.add_argument(
        "--output",
        type=Path,
        help="the combined markdown (default: DIR/compare-<scale>-<time>.md)",
    )
    parser.add_argument("--timeout", type=float, help="stop a benchmark after this many seconds")
    parser.add_argument("--before", type=Path, help="an older checkout's src, for bench_versions")
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "NEUROTROVE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
        help="the PostgreSQL server whose version the header gives",
    )
    parser.add_argument(
        "--list",
        action="store_true",
        help="list the benchmarks and their sizes at --scale, and stop",
    )
    args = parser.parse_args(argv)
    names = {b.name for b in BENCHMARKS}
    if args.list:
        for b in BENCHMARKS:
            present = "" if (HERE / b.script).is_file() else " (not on this branch)"
            sizes = b.small if args.scale == "small" else b.full
            words = [w for option, value in sizes for w in (option, value) if w is not None]
            print(f"{b.name:16} {b.what}{present}\n{'':16} {b.script} {shlex.join(words)}")
        return 0
    chosen = [b.name for b in BENCHMARKS]
    for option in ("only", "skip"):
        given = set(filter(None, (getattr(args, option) or "").split(",")))
        if given - names:
            parser.error(f"--{option}: unknown {sorted(given - names)}; known: {sorted(names)}")
        if given:
            chosen = [n for n in chosen if (n in given) == (option == "only")]
    args.data = (args.data or bench_home()).resolve()
    args.data.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M")
    output = args.output or args.data / f"compare-{args.scale}-{stamp}.md"
    environment = dict(os.environ)
    environment[CACHE_VARIABLE] = str(args.data)
    environment["PYTHONPATH"] = os.pathsep.join(
        [str(CHECKOUT / "src"), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    load_before = _load()
    began = time.perf_counter()
    outcomes = []
    for index, benchmark in enumerate(BENCHMARKS):
        if benchmark.name not in chosen:
            continue
        print(f"[{time.strftime('%H:%M:%S')}] {benchmark.script} ...", file=sys.stderr, flush=True)
        outcome = run_one(benchmark, args, index, environment)
        print(
            f"[{time.strftime('%H:%M:%S')}] {benchmark.script}: {outcome.status.splitlines()[0]}"
            + (f" ({outcome.seconds:,.0f} s)" if outcome.command else ""),
            file=sys.stderr,
            flush=True,
        )
        outcomes.append(outcome)
    header = [
        f"- `python benchmarks/compare.py {shlex.join(sys.argv[1:] if argv is None else argv)}`"
        f"; {dt.datetime.now().strftime('%Y-%m-%d %H:%M')}, {time.perf_counter() - began:,.0f} s "
        f"in all",
        *machine(args.postgres),
        f"- load average (1, 5, 15 min): {load_before} before, {_load()} after (other work on "
        "the machine slows both sides of a comparison, unevenly: read the ratios)",
        f"- data in `{args.data}`, each benchmark's log in `{args.data / 'logs'}`",
    ]
    text = render(outcomes, args, header)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
    print(text)
    print(f"written to {output}", file=sys.stderr)
    return 1 if any(o.status.startswith("failed") for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
