"""Run directories: generated names never collide; train.log holds what the driver printed."""
import sys
import threading

import pytest

from cluster.run_dir import prepare_run_dir
from cluster.run_log import DriverLog


def test_generated_run_names_get_a_suffix_instead_of_colliding(tmp_path):
    made = []
    threads = [threading.Thread(target=lambda: made.append(prepare_run_dir(str(tmp_path), "local-20261129-1200",
                                                                            fresh=True))) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(p.name for p in made) == sorted(["local-20261129-1200"] + [f"local-20261129-1200-{i}"
                                                                              for i in range(2, 7)])
    assert prepare_run_dir(str(tmp_path), "local-20261129-1200").name == "local-20261129-1200"  # named: reused


def test_driver_log_keeps_early_output_and_drops_progress_redraws(tmp_path, capsys):
    log_path = tmp_path / "train.log"
    with pytest.raises(RuntimeError):
        with DriverLog() as log:
            print("checked data")
            print("warning on stderr", file=sys.stderr)
            log.attach(log_path)
            sys.stderr.write("\rrl steps:  50%|#####     | 1/2")  # a terminal bar's in-place redraw
            print("\x1b[36m(RolloutEngine pid=1)\x1b[0m Loading: 0%\r", file=sys.stderr)
            print("run directory: x")
            print("\x1b[36m(LearnerWorker pid=2)\x1b[0m ready")
            log.note("rl steps 1/2: reward 0.500")
            raise RuntimeError("boom")
    out, err = capsys.readouterr()
    assert out.startswith("checked data\nrun directory: x\n\x1b[36m") and "\rrl steps" in err  # terminal: as before
    text = log_path.read_text()
    assert text.startswith("checked data\nwarning on stderr\nrun directory: x\n(LearnerWorker pid=2) ready\n"
                           "rl steps 1/2: reward 0.500\n")
    assert "\r" not in text and "RuntimeError: boom" in text
    assert sys.stdout is not None and not hasattr(sys.stdout, "log")  # streams restored


def test_prior_link_makes_the_step0_policy_a_model_path(tmp_path):
    from cluster.paths import resolve_model_path
    from cluster.runtime import link_prior

    model = tmp_path / "cache" / "3d7c8e447441a695"
    model.mkdir(parents=True)
    (model / "config.json").write_text("{}")
    run = prepare_run_dir(str(tmp_path / "runs"), "r")
    assert link_prior(run, str(model)) == run / "prior"
    assert link_prior(run, str(model)) == run / "prior"  # a resumed run links it again
    assert resolve_model_path(str(run / "prior")) == str(run / "prior")  # what `rlvr eval model.path=` takes
    assert (run / "prior" / "config.json").is_file()
    assert link_prior(run, "Qwen/Qwen2.5-0.5B") is None  # a hub id: nothing local to link
