"""Reliability: real faults injected into the real stack (Ray, vLLM, DeepSpeed, a tiny Qwen2), and what the run
does about them. docs/reliability.md lists each guarantee with the test that shows it.

Fast (no Ray): bad data and bad output directories fail through `rlvr train` with exit code 2 before any actor
starts; a checkpoint write that hits a full disk leaves the earlier checkpoints intact.
Slow (real training, `-m slow`): a rollout engine killed during generation is replaced and its prompts retried;
a learner rank killed mid-run stops the run within a bounded time with a clear error, and --resume continues;
kill -9 of the trainer at seeded points (including mid-checkpoint) never leaves a half-written checkpoint that
`cluster.checkpoint.latest` picks, and resume completes the run.

    .venv/bin/python -m pytest tests/test_reliability.py -m "slow or not slow"
"""
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml
from tiny_recipe import write_recipe as recipe

from cluster import checkpoint as ckpt

REPO = Path(__file__).resolve().parent.parent
QA = [{"question": f"{a}+{a}=", "answer": str(2 * a)} for a in range(1, 9)]


# ----- helpers ---------------------------------------------------------------------------------------------
def write_jsonl(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines))
    return path


def cli_env(tmpdir: Path) -> dict:
    tmpdir.mkdir(parents=True, exist_ok=True)  # a private TMPDIR shows whether Ray created its temp dir
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "TMPDIR": str(tmpdir)}


def rlvr_quick(root: Path, *args) -> tuple[subprocess.CompletedProcess, float]:
    """`rlvr ARGS` that must fail on bad input: returns the result and its wall time; asserts Ray never started."""
    tmpdir = root / "tmp"
    t0 = time.monotonic()
    res = subprocess.run([sys.executable, "-m", "cluster.cli", *map(str, args)], cwd=REPO, env=cli_env(tmpdir),
                         capture_output=True, text=True, timeout=120)
    took = time.monotonic() - t0
    assert not list(tmpdir.glob("rlvr-ray-*")), "a Ray runtime was started before the input was checked"
    assert "Traceback" not in res.stderr, res.stderr[-3000:]
    return res, took


# ----- data: bad records and unreadable files fail before any actor starts ----------------------------------
GOOD = json.dumps(QA[0])
BAD_LINES = {
    "malformed JSON": '{"question": "2+2=", "answer": ',
    "missing field 'answer'": json.dumps({"question": "2+2="}),
    "empty gold answer": json.dumps({"question": "2+2=", "answer": "  "}),
}


@pytest.mark.parametrize("reason", list(BAD_LINES))
def test_bad_record_fails_train_with_file_and_line_before_ray(tmp_path, reason):
    data = write_jsonl(tmp_path / "bad.jsonl", [GOOD, BAD_LINES[reason], GOOD])
    res, took = rlvr_quick(tmp_path, "train", recipe(tmp_path, "r", data))
    assert res.returncode == 2, res.stderr
    assert f"{data}:2: {reason}" in res.stderr
    assert "on_bad_record='skip'" in res.stderr  # says how to proceed
    assert took < 60
    assert not (tmp_path / "runs").exists()  # nothing written either


def test_bad_records_skipped_and_counted_when_configured(tmp_path):
    data = write_jsonl(tmp_path / "bad.jsonl", [GOOD, *BAD_LINES.values(), GOOD])
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the output directory should be")  # stops the run before Ray, see below
    cfg = recipe(tmp_path, "r", data, out_dir=blocker)
    spec = yaml.safe_load(cfg.read_text())
    spec["data"]["train"][0]["on_bad_record"] = "skip"
    cfg.write_text(yaml.safe_dump(spec))
    res, _ = rlvr_quick(tmp_path, "train", cfg)
    assert f"skipped 3 bad records (first: {data}:2: malformed JSON" in res.stdout
    assert res.returncode == 2 and "not writable" in res.stderr  # the data passed; the output dir did not


@pytest.mark.parametrize("kind", ["missing", "directory", "corrupt gzip"])
def test_unreadable_dataset_fails_train_before_ray(tmp_path, kind):
    data = tmp_path / ("data.jsonl.gz" if kind == "corrupt gzip" else "data.jsonl")
    if kind == "directory":
        data.mkdir()
    elif kind == "corrupt gzip":
        data.write_bytes(b"\x1f\x8b\x08\x00 this is not gzip data")
    res, took = rlvr_quick(tmp_path, "train", recipe(tmp_path, "r", data))
    assert res.returncode == 2, res.stderr
    assert f"cannot read dataset file {data}" in res.stderr
    assert took < 60


def test_missing_model_path_fails_train_before_ray(tmp_path):
    data = write_jsonl(tmp_path / "ok.jsonl", [json.dumps(r) for r in QA])
    res, _ = rlvr_quick(tmp_path, "train", recipe(tmp_path, "r", data, model=str(tmp_path / "no-such-model")))
    assert res.returncode == 2 and "does not exist" in res.stderr, res.stderr
    assert not (tmp_path / "runs" / "r").exists()  # a failed pre-flight check leaves no run directory
    unnamed = recipe(tmp_path, "unnamed", data, model=str(tmp_path / "no-such-model"), output__name=None)
    res, _ = rlvr_quick(tmp_path, "train", unnamed)
    assert res.returncode == 2 and list((tmp_path / "runs").iterdir()) == [], res.stderr


def test_fresh_run_into_a_run_dir_with_checkpoints_is_refused_before_ray(tmp_path):
    data = write_jsonl(tmp_path / "ok.jsonl", [json.dumps(r) for r in QA])
    ckpt.save_atomic(tmp_path / "runs" / "r", 2, lambda d: None, {"version": 2}, keep=2)
    res, _ = rlvr_quick(tmp_path, "train", recipe(tmp_path, "r", data))
    assert res.returncode == 2 and "already holds checkpoints (newest step-000002)" in res.stderr, res.stderr
    assert "--resume" in res.stderr


# ----- outputs: unwritable or nearly full output directories fail before any actor starts --------------------
def mount_tmpfs(where: Path, options: str) -> None:
    where.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({res.stderr.decode().strip()}); needs root")


@pytest.fixture
def mounts():
    mounted: list[Path] = []
    yield mounted
    for m in mounted:
        subprocess.run(["umount", str(m)], check=False)


@pytest.mark.parametrize("kind", ["file in place of a directory", "under /proc", "read-only filesystem"])
def test_unwritable_output_dir_fails_train_before_ray(tmp_path, kind, mounts):
    data = write_jsonl(tmp_path / "ok.jsonl", [json.dumps(r) for r in QA])
    if kind == "file in place of a directory":
        out = tmp_path / "out"
        out.write_text("x")
    elif kind == "under /proc":
        out = Path("/proc/rlvr-runs")
    else:  # root ignores permission bits, not a read-only mount
        out = tmp_path / "ro"
        mount_tmpfs(out, "ro,size=1m")
        mounts.append(out)
    res, took = rlvr_quick(tmp_path, "train", recipe(tmp_path, "r", data, out_dir=out))
    assert res.returncode == 2, res.stderr
    assert f"output.dir={str(out)!r}" in res.stderr and "not writable" in res.stderr
    assert took < 60


def test_nearly_full_output_dir_fails_train_before_ray(tmp_path, mounts):
    data = write_jsonl(tmp_path / "ok.jsonl", [json.dumps(r) for r in QA])
    out = tmp_path / "small"
    mount_tmpfs(out, "size=1m")
    mounts.append(out)
    res, _ = rlvr_quick(tmp_path, "train", recipe(tmp_path, "r", data, out_dir=out))
    assert res.returncode == 2, res.stderr
    assert "MiB free, need at least 512 MiB" in res.stderr and "output.dir" in res.stderr


def test_prepare_run_dir_rejects_less_free_space_than_required(tmp_path):
    from cluster.config_error import ConfigError
    from cluster.run_dir import prepare_run_dir

    free = shutil.disk_usage(tmp_path).free
    assert prepare_run_dir(str(tmp_path), "fits", min_free_bytes=free // 2).is_dir()
    with pytest.raises(ConfigError, match="MiB free"):
        prepare_run_dir(str(tmp_path), "too-big", min_free_bytes=free * 2)


def test_checkpoint_write_hitting_full_disk_keeps_earlier_checkpoints(tmp_path, mounts):
    run = tmp_path / "run"
    mount_tmpfs(run, "size=2m")
    mounts.append(run)

    def write(n_bytes):
        return lambda d: (d / "weights.bin").write_bytes(os.urandom(n_bytes))

    first = ckpt.save_atomic(run, 1, write(256 * 1024), {"version": 1}, keep=2)
    with pytest.raises(OSError) as err:
        ckpt.save_atomic(run, 2, write(4 * 1024**2), {"version": 2}, keep=2)  # larger than the filesystem
    assert err.value.errno == 28  # ENOSPC, from the real filesystem
    assert ckpt.latest(run) == first and ckpt.read_meta(first)["step"] == 1
    assert [d.name for d in ckpt.checkpoint_dir(run).iterdir()] == [first.name]  # the partial one was removed
    assert ckpt.save_atomic(run, 2, write(256 * 1024), {"version": 2}, keep=2).name == "step-000002"


# ----- slow: faults during real training runs ----------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from tiny_models import make_tiny_qwen2

    root = tmp_path_factory.mktemp("reliability")
    model = make_tiny_qwen2(str(root / "model"), seed=0, hidden=64, layers=2)
    data = write_jsonl(root / "sums.jsonl", [json.dumps(r) for r in QA])
    # Ray's socket paths must stay under 107 bytes: its temp dirs go under a short TMPDIR, not pytest's.
    short = Path(tempfile.mkdtemp(prefix="rel-", dir="/tmp"))
    yield root, model, data, short
    shutil.rmtree(short, ignore_errors=True)


STARTED: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def _no_leftover_runs():
    yield
    while STARTED:  # a failed assertion must not leave a run (or a straggler of its Ray runtime) behind
        kill_session(STARTED.pop())


def launch(tmpdir: Path, *args) -> subprocess.Popen:
    """`rlvr ARGS` in its own session, so a kill reaches the trainer and every process it started."""
    STARTED.append(subprocess.Popen([sys.executable, "-m", "cluster.cli", *map(str, args)], cwd=REPO,
                            env=cli_env(tmpdir), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True))
    return STARTED[-1]


def finish(proc: subprocess.Popen, timeout: float = 600) -> str:
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out[-4000:]
    return out


def kill_session(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:  # the run and everything in its session already exited
        pass
    if proc.stdout is not None and not proc.stdout.closed:
        proc.communicate()
    proc.wait()


def wait_until(proc: subprocess.Popen, cond, what: str, timeout: float = 600, poll: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if proc.poll() is not None:
            pytest.fail(f"the run exited (rc={proc.returncode}) before {what}:\n{proc.stdout.read()[-4000:]}")
        assert time.monotonic() < deadline, f"no {what} within {timeout}s"
        time.sleep(poll)


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def title(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
    except OSError:
        return ""


def actor_pids(root_pid: int, class_name: str) -> list[int]:
    """Processes of Ray actors of `class_name` (the class, not its ray.remote name) started by the run rooted at
    root_pid: Ray titles them `ray::<class>[.<method>]`."""
    return sorted(p for p in descendants(root_pid) if title(p).startswith(f"ray::{class_name}"))


def step_rows(run: Path) -> list[int]:
    path = run / "metrics.jsonl"
    return [json.loads(line)["step"] for line in path.read_text().splitlines() if line] if path.exists() else []


def tmp_checkpoints(run: Path) -> list[Path]:
    root = ckpt.checkpoint_dir(run)
    return [d for d in root.iterdir() if ".tmp-" in d.name] if root.is_dir() else []


def ckpt_step(path: Path | None) -> int:
    return 0 if path is None else int(path.name.split("-")[1].split(".")[0])  # step-000005[.tmp-PID]


def being_written(run: Path) -> list[int]:
    """Steps whose checkpoint is in its .tmp- directory (not yet renamed); retired ones being deleted excluded."""
    return [ckpt_step(d) for d in tmp_checkpoints(run) if ".tmp-discard-" not in d.name]


def assert_loadable(path: Path) -> None:
    """A complete checkpoint: its marker matches its name, the HF export loads, DeepSpeed's tag file is there."""
    from transformers import AutoModelForCausalLM

    assert ".tmp-" not in path.name and (path / ckpt.MARKER).is_file()
    assert ckpt.read_meta(path)["step"] == int(path.name.split("-")[1])
    AutoModelForCausalLM.from_pretrained(str(path / "hf"))
    assert (path / "learner" / "latest").is_file() or any((path / "learner").iterdir())
    json.loads((path / "controller.json").read_text())


@pytest.mark.slow
def test_learner_rank_killed_stops_run_with_clear_error_then_resume_continues(tiny):
    root, model, data, short = tiny
    cfg = recipe(root, "learner-kill", data, model=model, steps=4, learner__num_ranks=2)
    run = root / "runs" / "learner-kill"
    proc = launch(short, "train", cfg)
    wait_until(proc, lambda: ckpt.latest(run) is not None, "a first checkpoint")
    ranks = actor_pids(proc.pid, "LearnerWorker")
    assert len(ranks) == 2, ranks
    # Kill while the ranks are inside a DeepSpeed update (the survivor is then in, or heading into, a gloo
    # collective with the dead one); Ray titles a process by the method it is running.
    wait_until(proc, lambda: any(title(p).endswith(".train_step") for p in ranks), "a learner update", poll=0.005)
    os.kill(ranks[-1], signal.SIGKILL)
    t_kill = time.monotonic()
    try:
        out, _ = proc.communicate(timeout=180)  # a hang in a collective would run into this
    finally:
        if proc.poll() is None:
            kill_session(proc)
    stopped_s = time.monotonic() - t_kill
    assert proc.returncode == 1, out[-4000:]
    summary = [line for line in out.splitlines() if line.startswith("rlvr: training stopped after")]
    assert len(summary) == 1, out[-4000:]
    last = summary[0]
    print(f"stopped {stopped_s:.1f}s after the kill: {last}")
    assert "learner rank(s) [" in last and "died" in last, last
    assert f"rlvr train {cfg} --resume" in last
    assert stopped_s < 120
    assert not [p for p in ranks if title(p).startswith("ray::LearnerWorker")]  # the survivor was stopped too
    latest = ckpt.latest(run)
    assert f"Last complete checkpoint: {latest}." in last
    assert_loadable(latest)
    done_before = int(latest.name.split("-")[1])

    out = finish(launch(short, "train", cfg, "--resume"))
    assert f"resuming from {latest}" in out
    assert step_rows(run) == [1, 2, 3, 4]
    assert done_before < 4


@pytest.mark.slow
def test_trainer_kill9_at_seeded_points_never_leaves_a_picked_partial_checkpoint(tiny):
    """Kill -9 the whole run (trainer and its Ray processes) at seeded points, two of them while a checkpoint is
    being written; after each kill the newest complete checkpoint loads, and the last resume finishes the run."""
    root, model, data, short = tiny
    rng = random.Random(11)
    steps = 12  # enough that a kill at a random early step still leaves checkpoints to be written afterwards
    cfg = recipe(root, "trainer-kill", data, model=model, steps=steps)
    run = root / "runs" / "trainer-kill"
    caught_mid_write = 0
    for attempt, point in enumerate(["first checkpoint write", "random", "checkpoint write"]):
        base = ckpt_step(ckpt.latest(run))
        proc = launch(short, "train", cfg, *(["--resume"] if attempt else []))
        if point == "random":  # after a seeded number of new steps, plus a seeded delay
            target = rng.randint(2, 3)  # a fresh start: the first attempt left no checkpoint
            wait_until(proc, lambda: len(step_rows(run)) >= target, f"step row {target}")
            time.sleep(rng.uniform(0.0, 0.2))  # a tiny model's step takes well under a second
        else:  # the moment a new checkpoint's .tmp- directory appears (the driver creates it, actors fill it)
            wait_until(proc, lambda: max(being_written(run), default=0) > base, "a checkpoint being written",
                       poll=0.002)
        kill_session(proc)
        assert ckpt_step(ckpt.latest(run)) < steps, f"kill {attempt} landed after the run finished: lengthen it"
        partial = tmp_checkpoints(run)
        latest = ckpt.latest(run)
        if being_written(run):  # killed before the rename: the half-written one is ignored, the previous one stands
            caught_mid_write += point != "random"
            assert ckpt_step(latest) == max(being_written(run)) - 1, (latest, partial)
        if latest is not None:
            assert_loadable(latest)
            assert all((d / ckpt.MARKER).is_file() for d in ckpt.list_complete(run))
        rows = step_rows(run)
        assert rows == sorted(set(rows)), rows  # no step logged twice, even across resumes
        print(f"kill {attempt} ({point}): latest={latest and latest.name} partial={[d.name for d in partial]}")
    assert caught_mid_write >= 1, "no kill landed inside a checkpoint write"

    out = finish(launch(short, "train", cfg, "--resume"))
    assert step_rows(run) == list(range(1, steps + 1))
    logged = [json.loads(line)["step"] for line in (run / "samples.jsonl").read_text().splitlines()]
    assert logged == sorted(logged) and {s: logged.count(s) for s in set(logged)} == {s: 4 for s in range(steps)}
    assert not tmp_checkpoints(run)  # swept by the next save
    assert [d.name for d in ckpt.list_complete(run)] == [f"step-{steps - 1:06d}", f"step-{steps:06d}"]  # keep 2
    assert_loadable(ckpt.latest(run))
    assert json.loads((run / "report.json").read_text())["wall_seconds"] > 0
    assert "resuming from" in out


@pytest.mark.slow
def test_engine_killed_during_generation_is_replaced_and_step_retried(tiny, tmp_path, monkeypatch, capsys):
    """In-process Trainer on a private Ray runtime; the engine actor is killed (Ray restarts it) right after the
    step-2 generate call was submitted to it."""
    import ray

    from cluster.config import load_config
    from cluster.data.loaders import load_specs
    from cluster.run_dir import prepare_run_dir
    from cluster.runtime import init_ray
    from cluster.train import Trainer

    root, model, data, short = tiny
    cfg = load_config(recipe(tmp_path, "engine-kill", data, model=model, steps=3))
    run = prepare_run_dir(cfg.output.dir, cfg.output.name)
    monkeypatch.setattr(tempfile, "tempdir", str(short))
    assert not ray.is_initialized()
    init_ray(cfg, None)
    try:
        trainer = Trainer(cfg, run, model, load_specs(cfg.data.train), [])
        try:
            pool, killed = trainer.pool, []
            first_pid = ray.get(pool.engines[0].health.remote())["pid"]
            submit = pool._submit

            def submit_then_kill(i, *args):
                ref = submit(i, *args)
                if trainer.step == 1 and not killed:  # the generate call is in flight: kill its engine
                    ray.kill(pool.engines[i], no_restart=False)
                    killed.append(i)
                return ref

            monkeypatch.setattr(pool, "_submit", submit_then_kill)
            trainer.run(progress=False)
            assert killed == [0]
            assert ray.get(pool.engines[0].health.remote())["pid"] != first_pid  # a new process
            assert ray.get(pool.engines[0].version.remote()) == trainer.version == 3  # and it serves the policy
        finally:
            trainer.close()
    finally:
        ray.shutdown()
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3]
    assert [r["count/recovered_engines"] for r in rows] == [0, 1, 1]
    assert [r["count/retried_prompts"] for r in rows] == [0, 2, 2]  # both prompts of step 2, on the new engine
    assert all(r["policy_version"] == s for r, s in zip(rows, (1, 2, 3)))
    assert "step 2: recovered 1 rollout engine(s) after a failure, retried 2 prompt(s)" in capsys.readouterr().out
