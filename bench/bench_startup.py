"""Start-up time of the command lines: `amcp --help` beside a bare `python -c pass` and beside
a previous version of amcp; also `amcp send --help`, `amcp call --help`, `amcp-agent --help`
and, alone, the entry-point scan through importlib.metadata that amcp's cached command table
(amcp.cli.plugins) saves.

    python bench/bench_startup.py [--runs 10] [--old /tmp/startup-old] [--json]

--old is a checkout of the version to compare with (e.g. `git worktree add --detach
/tmp/startup-old COMMIT`); it is run from this environment with PYTHONPATH pointing at it,
and with its own pyproject's entry points (written to a throw-away dist-info ahead of the
installed one), so its commands are the ones it registered. Each figure is the median wall
time over --runs runs of a fresh process; the programs take turns, so load that comes and
goes touches all of them alike; the CPU time (user + system) of each run is printed beside
its wall time, as it is less swayed by that load. Every program runs once first with
bytecode writing on, so what is timed is a warm start from .pyc files, as an installed
package starts (and with amcp's command table cached). The load average is printed before
and after: the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
TARGET_SECONDS = 0.15  # issue 19: amcp --help within 0.15 s ...
TARGET_OVER_BARE = 0.10  # ... and within 0.1 s of the bare interpreter


def _script(name: str) -> str:
    """This environment's console script (the editable install of this checkout)."""
    path = Path(sys.executable).parent / name
    return str(path) if path.exists() else name


def _old_entry_points(old: Path, into: Path) -> Path:
    """A dist-info named amcp holding `old`'s entry points, for PYTHONPATH ahead of the
    installed one (importlib.metadata takes the first distribution of a name it finds)."""
    project = tomllib.loads((old / "pyproject.toml").read_text())["project"]
    info = into / "amcp-0.0.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: amcp\nVersion: 0.0.0\n")
    groups = {**project.get("entry-points", {}), "console_scripts": project["scripts"]}
    text = "".join(
        f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in eps.items()) + "\n"
        for group, eps in groups.items()
    )
    (info / "entry_points.txt").write_text(text)
    return into


def _programs(old: Path | None, scratch: Path) -> dict[str, tuple[list[str], dict[str, str]]]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "EAGER_IMPORT")}
    py = sys.executable
    scan = "from importlib.metadata import entry_points; entry_points(group='amcp.commands')"
    programs = {
        "python -c pass": ([py, "-c", "pass"], env),
        "importlib.metadata scan": ([py, "-c", scan], env),
        "amcp --help": ([_script("amcp"), "--help"], env),
        "amcp send --help": ([_script("amcp"), "send", "--help"], env),
        "amcp call --help": ([_script("amcp"), "call", "--help"], env),
        "amcp-agent --help": ([_script("amcp-agent"), "--help"], env),
    }
    if old is not None:
        path = f"{old}{os.pathsep}{_old_entry_points(old, scratch)}"
        programs["amcp --help (previous)"] = (
            [_script("amcp"), "--help"],
            {**env, "PYTHONPATH": path},
        )
    return programs


def _time(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall time and CPU time (user + system) of one run of `argv`."""
    cpu = _children_cpu()
    start = time.perf_counter()
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start, _children_cpu() - cpu


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(runs: int, old: Path | None) -> dict[str, tuple[float, float]]:
    """Median (wall, CPU) seconds of each program."""
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        programs = _programs(old, Path(tmp))
        for argv, env in programs.values():  # warm-up: writes the .pyc files
            warm = {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}
            subprocess.run(argv, env=warm, stdout=subprocess.DEVNULL, check=True)
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in programs}
        for _ in range(runs):
            for name, (argv, env) in programs.items():
                times[name].append(_time(argv, env))
    return {
        name: (statistics.median(t[0] for t in ts), statistics.median(t[1] for t in ts))
        for name, ts in times.items()
    }


def _load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--old", type=Path, default=Path("/tmp/startup-old"))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    old = args.old if (args.old / "amcp" / "cli" / "main.py").exists() else None
    before = _load()
    result = run(args.runs, old)
    after = _load()
    bare, new = result["python -c pass"][0], result["amcp --help"][0]
    met = new <= TARGET_SECONDS and new - bare <= TARGET_OVER_BARE
    if args.json:
        doc = {name: {"wall": w, "cpu": c} for name, (w, c) in result.items()}
        print(json.dumps({"seconds": doc, "load_before": before, "load_after": after}))
        return 0
    print(f"load average before: {before}")
    print(f"{'(median of ' + str(args.runs) + ')':26} {'wall':>7}    {'CPU':>7}")
    for name, (wall, cpu) in result.items():
        print(f"{name:26} {wall * 1000:7.1f} ms {cpu * 1000:7.1f} ms")
    print(f"load average after:  {after}")
    print(f"amcp --help over the bare interpreter: {(new - bare) * 1000:.1f} ms")
    if "amcp --help (previous)" in result:
        print(f"previous / now: {result['amcp --help (previous)'][0] / new:.1f}x")
    elif args.old:
        print(f"(no previous version at {args.old}: git worktree add --detach {args.old} COMMIT)")
    print(
        f"target <= {TARGET_SECONDS * 1000:.0f} ms and <= {TARGET_OVER_BARE * 1000:.0f} ms over "
        f"bare: {'met' if met else 'not met'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
