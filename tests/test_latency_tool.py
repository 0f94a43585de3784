"""The latency tool (``python -m hrtimer_cffi latency`` / ``hrtimer-latency``),
run for real with tiny loops: the table, --json, cyclictest's histogram
format, --plot, --priority, progress, Ctrl-C, and argument errors.

Every run measures real timers on real clocks; assertions check structure
and invariants (an hrtimer never fires before its expiry, percentiles are
ordered, counts add up), never speed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from hrtimer_cffi import latency

PY = sys.executable
ALL_NAMES = [m.name for m in latency.MECHANISMS]
# Short runs: 0.5 ms interval, a few dozen wake-ups per mechanism.
FAST = ["--interval", "500us", "--warmup", "2"]


def run_tool(*args: str, module: bool = True, timeout: float = 60,
             **kw: Any) -> subprocess.CompletedProcess[str]:
    cmd = [PY, "-m", "hrtimer_cffi", "latency", *args] if module else list(args)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)


def table_rows(out: str) -> dict[str, list[str]]:
    """mechanism name -> the fields after it, from the printed table."""
    rows: dict[str, list[str]] = {}
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("mechanism "))
    for line in lines[start + 1:]:
        if not line.strip():
            break
        for name in ALL_NAMES:
            if line.startswith(name + " "):
                rows[name] = line[len(name):].split()
    return rows


def test_table_has_every_mechanism_with_ordered_percentiles() -> None:
    r = run_tool(*FAST, "--loops", "40", "-q")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "interval 500 us, 40 wake-ups per mechanism" in out
    assert re.search(r"^policy: SCHED_\w+.*; timer slack: \d+ ns", out, re.M), out
    assert re.search(r"^machine: \d+ CPUs, .+, Linux .+, CPython", out, re.M), out
    rows = table_rows(out)
    assert list(rows) == ALL_NAMES  # every mechanism, in table order
    for name, fields in rows.items():
        if fields[0] == "unavailable:":
            # only the os.timerfd peer may be missing (Python < 3.13), saying why
            assert name == "os.timerfd loop" and sys.version_info < (3, 13), (name, fields)
            assert "needs Python 3.13" in " ".join(fields)
            continue
        assert fields[0] == "40", (name, fields)  # wake-ups counted, warm-up excluded
        # min avg p50 p90 p99 p99.9 max; p99.9 is '-' below 1000 wake-ups
        assert fields[7] == "-", (name, fields)
        mn, avg = float(fields[2]), float(fields[3])
        stats = [mn] + [float(x) for x in fields[4:7]] + [float(fields[8])]
        assert stats == sorted(stats), (name, stats)
        assert mn <= avg <= stats[-1]
        assert float(fields[9]) > 0 and float(fields[10]) > 0  # ratios to raw
    raw = rows["raw timerfd (floor)"]
    assert raw[1] == "-"  # overruns not visible to the raw loop
    assert raw[9] == "1.00" and raw[10] == "1.00"
    assert "p99.9 needs 1000 wake-ups" in out


def test_json_and_histogram_from_one_run(tmp_path: Path) -> None:
    hist = tmp_path / "hist.txt"
    r = run_tool(*FAST, "--loops", "60", "--mode", "c,sleep", "--mode", "python-hard",
                 "--json", "--histogram", str(hist), "--histogram-max", "300", "-q")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["config"]["interval_ns"] == 500_000
    assert doc["config"]["loops"] == 60
    assert doc["config"]["clock"] == "MONOTONIC"
    assert doc["version"] and doc["config"]["started"] <= doc["config"]["ended"]
    assert "--histogram-max" in doc["config"]["command"]
    keys = [row["key"] for row in doc["results"]]
    assert keys == ["raw-timerfd", "python-hard", "c-callback", "sleep-until"]
    for row in doc["results"]:
        assert row["available"], row
        assert row["wakeups"] == 60
        qs = [row[f"{k}_us"] for k in ("min", "p50", "p90", "p99", "max")]
        assert qs == sorted(qs)
        assert row["p99_9_us"] is None  # not meaningful from 60 wake-ups
        assert row["min_us"] <= row["avg_us"] <= row["max_us"]
        # the JSON histogram holds every wake-up, bucket by bucket
        assert sum(row["histogram_us"].values()) == 60
        # hrtimers never fire before their expiry: lateness is never negative
        assert row["min_us"] >= 0, row
    assert doc["results"][0]["p50_ratio_to_raw"] == 1.0
    for row in doc["results"][1:]:
        assert row["overruns"] >= 0
        assert row["p50_ratio_to_raw"] == pytest.approx(
            row["p50_us"] / doc["results"][0]["p50_us"], rel=1e-2)

    # cyclictest -h format: "# Histogram", one %06d line per 1 us bucket with
    # one tab-separated %06d column per mechanism, then the summary lines.
    lines = hist.read_text().splitlines()
    assert lines[0].startswith("# hrtimer-latency histogram:")
    assert lines[1] == "# Histogram"
    buckets = lines[2:302]
    cols = len(keys)
    bucket_re = re.compile(r"^\d{6} \d{6}" + r"\t\d{6}" * (cols - 1) + "$")
    for i, line in enumerate(buckets):
        assert bucket_re.match(line), line
        assert int(line[:6]) == i
    counts = [[int(x) for x in line[7:].split("\t")] for line in buckets]
    rest = lines[302:]

    def summary(label: str, width: int) -> list[int]:
        line = next(x for x in rest if x.startswith(f"# {label}:"))
        fields = line[len(f"# {label}:"):].split()
        assert len(fields) == cols and all(len(f) == width for f in fields), line
        return [int(f) for f in fields]

    total = summary("Total", 9)
    overflows = summary("Histogram Overflows", 5)
    for j in range(cols):
        assert total[j] == sum(c[j] for c in counts)
        assert total[j] + overflows[j] == 60
    for label, key in (("Min Latencies", "min_us"), ("Max Latencies", "max_us")):
        values = summary(label, 5)
        for j, row in enumerate(doc["results"]):
            assert values[j] == int(row[key]), (label, row)
    avg = summary("Avg Latencies", 5)
    assert all(mn <= a <= mx for mn, a, mx in
               zip(summary("Min Latencies", 5), avg, summary("Max Latencies", 5), strict=True))
    assert "# Histogram Overflow at cycle number:" in rest
    for j in range(cols):
        assert any(x.startswith(f"# Thread {j}:") for x in rest)


def test_console_script_and_other_clock() -> None:
    script = Path(PY).parent / "hrtimer-latency"
    if not script.exists():
        pytest.skip(f"{script} not installed (the package was not pip-installed in this env)")
    r = run_tool(str(script), *FAST, "--loops", "20", "--mode", "c", "--clock", "boottime",
                 "--json", module=False)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["config"]["clock"] == "BOOTTIME"
    assert [row["key"] for row in doc["results"]] == ["raw-timerfd", "c-callback"]
    assert all(row["available"] and row["min_us"] >= 0 for row in doc["results"])


def test_rounds_interleave_and_add_up() -> None:
    r = run_tool(*FAST, "--loops", "25", "--rounds", "4", "--mode", "c,python-soft", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["config"]["rounds"] == 4
    # 25 wake-ups split 7+6+6+6 over the rounds, every mechanism in every round
    assert [row["wakeups"] for row in doc["results"]] == [25, 25, 25]
    assert all(row["min_us"] >= 0 for row in doc["results"])


def test_progress_on_long_runs_and_quiet() -> None:
    # 2 mechanisms x 10,010 wake-ups x 0.1 ms: just over the 2 s threshold
    args = ["--interval", "100us", "--loops", "10000", "--mode", "c", "--json"]
    r = run_tool(*args)
    assert r.returncode == 0, r.stderr
    assert "[1/2] raw timerfd (floor): 10010 wake-ups" in r.stderr
    assert "[2/2] C callback: 10010 wake-ups" in r.stderr
    short = run_tool(*FAST, "--loops", "10", "--mode", "c", "--json")
    assert short.returncode == 0 and short.stderr == ""


def test_plot_writes_a_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="the plot extra (matplotlib) is not installed")
    png = tmp_path / "lat.png"
    r = run_tool(*FAST, "--loops", "30", "--mode", "c,peers", "--plot", str(png), "-q")
    assert r.returncode == 0, r.stderr
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 20_000  # a drawn figure, not an empty canvas


def test_plot_without_matplotlib_names_the_extra(tmp_path: Path) -> None:
    # An interpreter where importing matplotlib fails, as when it is not installed.
    code = ("import sys; sys.modules['matplotlib'] = None; "
            "from hrtimer_cffi.latency import main; "
            f"sys.exit(main(['--loops', '5', '--plot', {str(tmp_path / 'x.png')!r}]))")
    t0 = time.monotonic()
    r = subprocess.run([PY, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert "pip install hrtimer_cffi[plot]" in r.stderr
    assert r.stdout == ""  # refused before measuring anything
    assert time.monotonic() - t0 < 30
    assert not (tmp_path / "x.png").exists()


def test_priority_not_permitted_runs_at_normal_priority() -> None:
    prefix: list[str] = []
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("root, and no setpriv to drop CAP_SYS_NICE for the child")
        prefix = [setpriv, "--bounding-set", "-sys_nice"]

    def no_rtprio() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_RTPRIO, (0, 0))

    r = run_tool(*prefix, PY, "-m", "hrtimer_cffi", "latency", *FAST, "--loops", "10",
                 "--mode", "c", "--priority", "50", module=False, preexec_fn=no_rtprio)
    assert r.returncode == 0, r.stderr
    assert "SCHED_FIFO priority 50 not permitted" in r.stderr
    assert "running at normal priority" in r.stderr
    assert "policy: SCHED_OTHER (normal priority)" in r.stdout
    assert set(table_rows(r.stdout)) == {"raw timerfd (floor)", "C callback"}


def test_priority_fifo_when_permitted() -> None:
    probe = subprocess.run(
        [PY, "-c", "import os; os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))"],
        capture_output=True)
    if probe.returncode != 0:
        pytest.skip("SCHED_FIFO is not permitted here (needs root or CAP_SYS_NICE)")
    r = run_tool(*FAST, "--loops", "10", "--mode", "c", "--priority", "1", "-q")
    assert r.returncode == 0, r.stderr
    assert "policy: SCHED_FIFO priority 1;" in r.stdout
    assert "not permitted" not in r.stderr


def test_ctrl_c_stops_the_run_with_status_130() -> None:
    code = ("import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
            "from hrtimer_cffi.latency import main; "
            "sys.exit(main(['--loops', '20000', '--mode', 'c']))")
    p = subprocess.Popen([PY, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    assert p.stderr is not None
    first = p.stderr.readline()  # the progress line: measuring has begun
    assert "[1/2] raw timerfd (floor)" in first
    time.sleep(0.3)  # inside the raw loop (20 s if left alone)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 130, err
    assert "interrupted" in err
    rows = table_rows(out)
    assert rows["raw timerfd (floor)"][:2] == ["unavailable:", "interrupted"]
    assert rows["C callback"][:2] == ["unavailable:", "not"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--interval", "0"], "must be a positive time"),
        (["--interval", "fast"], "is not a time"),
        (["--interval", "5 parsecs"], "is not a time"),
        (["--loops", "0"], "must be >= 1"),
        (["--loops", "1.5"], "is not an integer"),
        (["--loops", "5", "--duration", "1"], "not allowed with argument"),
        (["--duration", "-3"], "is not a time"),
        (["--mode", "turbo"], "unknown mode turbo"),
        (["--load", "heavy"], "unknown load heavy"),
        (["--mode", "c,"], None),
        (["--clock", "sundial"], "unknown clock 'sundial'"),
        (["--priority", "100"], "out of range"),
        (["--priority", "high"], "is not an integer"),
        (["--warmup", "-1"], "must be >= 0"),
        (["--histogram-max", "0"], "must be >= 1"),
        (["--histogram", "/nonexistent-dir/h.txt"], "does not exist"),
        (["--plot", "/nonexistent-dir/p.png"], "does not exist"),
        (["--bogus"], "unrecognized arguments"),
    ],
)
def test_bad_arguments_exit_2_with_a_clear_message(
    args: list[str], message: str | None, capsys: pytest.CaptureFixture[str]
) -> None:
    if message is None:  # a valid spelling: "c," is just mode c
        p = latency.build_parser()
        ns = latency.finish_args(p, p.parse_args([*args, "--loops", "1"]))
        assert ns.mode == ["c"]
        return
    with pytest.raises(SystemExit) as exc:
        latency.main(args)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "usage: hrtimer-latency" in err
    assert message in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [([], "the following arguments are required: COMMAND"),
     (["cyclic"], "invalid choice: 'cyclic'"),
     (["latency", "--loops", "-4"], "must be >= 1")],
)
def test_module_entry_point_errors(argv: list[str], message: str) -> None:
    r = subprocess.run([PY, "-m", "hrtimer_cffi", *argv], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 2
    assert message in r.stderr
    assert "usage: python -m hrtimer_cffi" in r.stderr


def test_parse_time_units() -> None:
    assert latency.parse_time("1000", "us") == 1_000_000
    assert latency.parse_time("1ms", "us") == 1_000_000
    assert latency.parse_time("2.5s", "us") == 2_500_000_000
    assert latency.parse_time("10", "s") == 10_000_000_000
    assert latency.parse_time("250 ns", "s") == 250
    assert latency.parse_time("1m", "s") == 60_000_000_000


def test_percentile_nearest_rank() -> None:
    values = list(range(1, 1001))
    assert latency.percentile(values, 50) == 500
    assert latency.percentile(values, 99.9) == 999
    assert latency.percentile(values, 100) == 1000
    assert latency.percentile([7], 99.9) == 7


@pytest.mark.parametrize("load", ["python", "thread", "cpu"])
def test_load_runs_and_is_reported(load: str) -> None:
    """Each load runs for real while the mechanisms are measured; the report
    and the JSON say which, and the load is gone afterwards."""
    r = run_tool(*FAST, "--loops", "30", "--mode", "python-hard,sleep,peers", "--load", load,
                 "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["config"]["load"] == load
    assert doc["config"]["gil_handover"] in ("pending-call", "switch-interval")
    rows = {row["key"]: row for row in doc["results"]}
    if sys.version_info < (3, 13):
        assert not rows.pop("os-timerfd")["available"]
    assert all(row["available"] and row["wakeups"] == 30 for row in rows.values()), rows
    assert rows["python-hard"]["min_us"] >= 0


def test_several_loads_side_by_side(tmp_path: Path) -> None:
    hist = tmp_path / "h.txt"
    r = run_tool(*FAST, "--loops", "20", "--mode", "c,python-soft", "--load", "none,python",
                 "--histogram", str(hist), "-q")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    heads = [line for line in out.splitlines() if line.startswith("mechanism ")]
    assert len(heads) == 3 and sum("wakeups" in h for h in heads) == 2  # 2 tables + side by side
    assert "load: none (an idle interpreter)" in out and "load: python (the main" in out
    side = out[out.index("side by side:"):].splitlines()
    assert side[1].split() == ["mechanism", "none", "python"]
    assert any(line.startswith("Python SOFT") for line in side)
    assert (tmp_path / "h-none.txt").is_file() and (tmp_path / "h-python.txt").is_file()


def test_ctrl_c_under_python_load_reports_what_it_has() -> None:
    proc = subprocess.Popen([PY, "-m", "hrtimer_cffi", "latency", "--interval", "1ms",
                             "--loops", "100000", "--mode", "c", "--load", "python", "-q"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.5)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "interrupted during" in err
    assert "C callback" in out  # what it measured is reported
