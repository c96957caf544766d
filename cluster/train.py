"""The RL training loop: prompts -> rollouts -> rewards -> learner update -> weight sync, step after step.

    rlvr train configs/local.yaml [overrides] [--address ADDR] [--resume]

Schedules:
  sync   generate(t) with policy v_t, train on it -> v_{t+1}, push v_{t+1}.
  async  (one-step off-policy) generate(t+1) with v_t *while* the learner trains on batch t; the learner's
         truncated-IS correction (algo.tis_cap, on by default here) accounts for the one version of staleness.
         A batch more versions behind than its schedule allows (0 sync, 1 async) stops the run.
Each phase gets one timing metric. Everything that can fail without Ray (config, data, output dir) fails
before any actor starts.
"""
from __future__ import annotations

import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from cluster import checkpoint as ckpt
from cluster.config import RunConfig, to_yaml
from cluster.config_error import ConfigError
from cluster.data.loaders import load_specs
from cluster.data.prompt_stream import PromptStream
from cluster.eval.heldout import answer_of, by_difficulty, evaluate_policy, quick_summary
from cluster.rollout_metrics import sample_metrics, tool_metrics
from cluster.run_dir import (MetricsLog, abort_message, append_jsonl, check_output_dir, default_run_name,
                             find_run_dir, prepare_run_dir, truncate_jsonl)
from cluster.scoring import encode_problems, failure_summary, generate_and_score
from cluster.signal_guard import NoLearningSignal, ZeroSignalGuard, constant_reward, no_answer_share
from cluster.throughput import ENGINE_DTYPE, PhaseFlops
from record.rollout import RolloutBatch
from rewards.verdict import status_counts

MAX_REFILL_ROUNDS = 4  # dynamic sampling: extra generation rounds before training on what was kept
# Run-wide event counts, saved in checkpoints and logged every step as count/<name>.
COUNTERS = {"dropped_prompts": 0, "dynamic_sampling_groups_dropped": 0, "recovered_engines": 0,
            "retried_prompts": 0, "reward_errors": 0, "reward_timeouts": 0}


class TrainingAborted(RuntimeError):
    """A run stopped on a fault it cannot recover from; the message says where it stopped and how to resume."""


class Trainer:
    """Owns the run's actors and state; `run()` executes the remaining steps."""

    def __init__(self, cfg: RunConfig, run_dir: Path, model_path: str, train_problems: list, eval_problems: list):
        from actors.pool import RolloutPool
        from actors.prompts import PromptEncoder
        from cluster.placement import build_layout
        from cluster.weight_sync import WeightSync
        from learner.group import LearnerGroup
        from tools.registry import build_tools

        self.cfg, self.run_dir, self.model_path = cfg, run_dir, model_path
        self.eval_problems = eval_problems
        self.layout = build_layout(cfg)
        t0 = time.perf_counter()
        with ThreadPoolExecutor(1) as ex:  # engines and learner ranks start at once (each waits on its actors)
            group = ex.submit(LearnerGroup, cfg.learner, cfg.algo, model_path,
                              actor_options=self.layout.learner_options)
            self.pool = RolloutPool(model_path, cfg.rollout, actor_options=self.layout.engine_options,
                                    tools=build_tools(cfg.rollout.tools) or None)
            t1 = time.perf_counter()
            self.group = group.result()
        self.perf = PhaseFlops(model_path, cfg, self.group.peak_flops(
            tuple({cfg.learner.dtype, ENGINE_DTYPE[cfg.rollout.dtype]})))  # MFU's denominator, measured now
        self.start_seconds = {"engine_start": t1 - t0, "actors_start": time.perf_counter() - t0}
        self.encoder = PromptEncoder.from_pretrained(model_path, cfg.rollout.prompt, cfg.rollout.max_model_len)
        self.sync = WeightSync(self.group, self.pool, cfg.train.weight_sync)
        self.stream = PromptStream(train_problems, cfg.train.prompts_per_step, cfg.train.seed, cfg.data.shuffle)
        self.metrics = MetricsLog(run_dir, cfg.output.tensorboard, cfg.output.wandb_project,
                                  cfg.model_dump(mode="json"))
        self.step, self.version = 0, 0
        self.evals: dict[str, dict] = {}
        self.counters = dict(COUNTERS)
        self._pool_seen = dict(self.pool.stats)  # engine recoveries already counted
        self._saved_step = -1
        self.guard = ZeroSignalGuard(cfg.train.zero_signal_warn_steps, cfg.train.zero_signal_stop_steps)
        self.pending: dict | None = None  # async: the next step's rollout, generated during this step's update
        self.note = None  # writes a line to train.log only (set by run_training)

    # ----- one rollout batch -------------------------------------------------------------------------------
    def _sampling_for(self, step: int, round_: int = 0):
        # Seeds derive from (run seed, step, round), so a resumed run draws the same samples as an unbroken one.
        return self.cfg.sampling.model_copy(update={"seed": self.cfg.train.seed * 7919 + step * 101 + round_ * 17})

    def rollout(self, step: int) -> dict:
        """Generate and score one step's batch (with DAPO refill rounds); returns the rollout record + metrics."""
        t0 = time.perf_counter()
        batch, metrics = None, {}
        all_rewards, no_answer = [], None
        for round_ in range(1 + (MAX_REFILL_ROUNDS if self.cfg.train.dynamic_sampling else 0)):
            prompts = encode_problems(self.encoder, self.stream.next_batch(), self.cfg.sampling.max_tokens)
            self.counters["dropped_prompts"] += prompts.dropped
            scored = generate_and_score(self.pool, prompts, self._sampling_for(step, round_),
                                        self.cfg.train.reward_timeout_s, self.cfg.train.reward_workers)
            problems, groups, rewards = scored.problems, scored.groups, scored.flat_rewards()
            flat_problems, texts = scored.flat_problems(), [s.text for g in groups for s in g]
            metrics["time/generate"] = metrics.get("time/generate", 0.0) + scored.seconds["generate"]
            for key, count in status_counts(rewards).items():  # scored 0.0 but not decided: counted, not hidden
                metrics[key] = metrics.get(key, 0) + count
            metrics["time/reward"] = metrics.get("time/reward", 0.0) + scored.seconds["reward"]
            self._count_reward_failures(step, flat_problems, rewards)
            all_rewards += rewards
            if round_ == 0:
                no_answer = no_answer_share(flat_problems, texts) if constant_reward(rewards) is not None else None
                metrics.update(sample_metrics(problems, groups, rewards))
                metrics.update(tool_metrics(groups))
                self._log_samples(step, problems, groups, rewards)
            part = RolloutBatch(groups)
            part.set_rewards([float(r) for r in rewards])
            for g, p in zip(part.groups, problems):
                g.problem = p.id
            if not self.cfg.train.dynamic_sampling:
                batch = part
                break
            from learner.dynamic_sampling import filter_groups

            gids = part.group_ids()
            keep, kept_groups = filter_groups(part.rewards(), gids)
            self.counters["dynamic_sampling_groups_dropped"] += len(problems) - kept_groups
            kept = part.keep_groups({gids[i] for i in keep})
            batch = kept if batch is None else batch.extend(kept)
            if len(batch.groups) >= self.cfg.train.prompts_per_step:
                batch = batch.first_groups(self.cfg.train.prompts_per_step)  # a constant batch size (DAPO)
                break
        metrics["time/rollout"] = time.perf_counter() - t0
        metrics["rollout/groups_trained"] = len(batch.groups) if batch else 0
        signal = {"constant": constant_reward(all_rewards), "no_answer": no_answer}
        return {"batch": batch, "metrics": metrics, "signal": signal}

    def _count_reward_failures(self, step: int, problems: list, rewards: list) -> None:
        """Verifier errors and timeouts score 0.0; count them and say so, so a broken reward is seen."""
        counts = status_counts(rewards)
        self.counters["reward_errors"] += counts["reward/errors"]
        self.counters["reward_timeouts"] += counts["reward/timeouts"]
        if line := failure_summary(problems, rewards):
            print(f"step {step}: {line}", flush=True)

    def _check_signal(self, step: int, rollout: dict) -> None:
        signal = rollout.get("signal")  # absent in a prefetched batch saved by an older version
        if signal is None:
            return
        if warning := self.guard.observe(step, signal["constant"], signal["no_answer"]):
            print(warning, flush=True)

    def _log_samples(self, step: int, problems, groups, rewards) -> None:
        n = self.cfg.train.samples_per_step_logged
        rows, k = [], 0
        for p, g in zip(problems, groups):
            for s in g:
                if len(rows) < n:
                    rows.append({"step": step, "id": p.id, "prompt": p.prompt, "completion": s.text,
                                 "extracted": answer_of(p, s.text), "reward": rewards[k],
                                 "tokens": len(s.response_ids), "version": s.version})
                k += 1
        append_jsonl(self.run_dir / "samples.jsonl", rows)

    # ----- evaluation, checkpoints -------------------------------------------------------------------------
    def evaluate(self, tag: str) -> dict | None:
        if not self.eval_problems:
            return None
        t0 = time.perf_counter()
        sampling = self.cfg.eval.sampling or self.cfg.sampling.model_copy(update={"n": 1, "temperature": 0.0,
                                                                                   "seed": None})
        results, rows = evaluate_policy(self.pool, self.encoder, self.eval_problems, sampling,
                                        self.cfg.train.reward_timeout_s, self.cfg.train.reward_workers)
        summary = {**quick_summary(results), "seconds": time.perf_counter() - t0, "step": self.step}
        if buckets := by_difficulty(rows):
            summary["by_difficulty"] = buckets
        (self.run_dir / f"eval_{tag}.jsonl").unlink(missing_ok=True)  # an evaluation redone after a resume
        append_jsonl(self.run_dir / f"eval_{tag}.jsonl", rows)
        self.evals[tag] = summary
        support = self.cfg.eval.support
        if support.n and tag in ("before", "after"):
            from cluster.eval.support import support_eval

            self.evals[f"support_{tag}"] = support_eval(
                self.pool, self.encoder, self.eval_problems, support, self.cfg.sampling,
                seed=self.cfg.train.seed * 7919 + 1_000_000,  # apart from every RL step's seeds (_sampling_for)
                timeout_s=self.cfg.train.reward_timeout_s, workers=self.cfg.train.reward_workers)
        return summary

    def save(self) -> Path:
        # The stream position is after any prefetched batch, which is saved whole: in async mode it was
        # generated by the previous policy, so regenerating it after a resume would not reproduce it.
        state = {"step": self.step, "version": self.version, "stream": self.stream.state(),
                 "pending": self.pending and {**self.pending, "batch": self.pending["batch"].to_plain()},
                 "counters": self.counters, "evals": self.evals}

        def write(tmp: Path) -> None:
            self.group.save_checkpoint(str(tmp / "learner"))
            self.group.export_hf(str(tmp / "hf"))
            (tmp / "controller.json").write_text(json.dumps(state))
            (tmp / "config.yaml").write_text(to_yaml(self.cfg))

        path = ckpt.save_atomic(self.run_dir, self.step, write, {"version": self.version},
                                self.cfg.train.keep_checkpoints)
        self._saved_step = self.step
        return path

    def restore(self, path: Path) -> None:
        state = json.loads((path / "controller.json").read_text())
        self.group.load_checkpoint(str(path / "learner"))
        self.step, self.version = state["step"], state["version"]
        self.stream.load_state(state["stream"])
        self.counters, self.evals = {**COUNTERS, **state["counters"]}, state["evals"]
        self.pending = state["pending"]
        if self.pending is not None:
            self.pending["batch"] = RolloutBatch.from_plain(self.pending["batch"])
        self.sync.push(self.version)  # engines start from the base model; bring them to the restored policy
        self.drop_unsaved_logs()

    def drop_unsaved_logs(self) -> None:
        """Rows logged by steps that no checkpoint holds (an interrupted attempt) are redone: drop them."""
        self.metrics.truncate_after(self.step)
        generated = self.step + (self.pending is not None)  # async: the saved prefetched batch was logged
        truncate_jsonl(self.run_dir / "samples.jsonl", lambda row: row.get("step", 0) < generated)

    # ----- the loop ----------------------------------------------------------------------------------------
    def run(self, progress: bool = True) -> dict:
        from tqdm import tqdm

        cfg = self.cfg
        if self.step == 0 and "before" not in self.evals:
            self.evaluate("before")
        # A bar redrawn in place is unreadable in a file or a job's log: there, one plain line per step.
        plain = progress and not sys.stdout.isatty()
        bar = tqdm(total=cfg.train.steps, initial=self.step, desc="rl steps", disable=not progress or plain,
                   dynamic_ncols=True)
        executor = ThreadPoolExecutor(1) if cfg.train.schedule == "async" else None
        try:
            while self.step < cfg.train.steps:
                t_step = time.perf_counter()
                current = self.pending if self.pending is not None else self.rollout(self.step)
                self._check_signal(self.step + 1, current)
                self.pending, nxt = None, None
                if executor is not None and self.step + 1 < cfg.train.steps:
                    nxt = executor.submit(self.rollout, self.step + 1)  # overlaps with training below
                t_train = time.perf_counter()
                sleeping = cfg.rollout.enable_sleep_mode and nxt is None  # colocated: the learner takes the GPU
                if sleeping:
                    self.pool.sleep()
                staleness = self._staleness(current["batch"])
                train_metrics = self.group.train_step(current["batch"])
                if sleeping:
                    self.pool.wake_up()
                train_s = time.perf_counter() - t_train
                if nxt is not None:
                    self.pending = nxt.result()  # generated by the previous policy: one version stale
                self.version += 1
                sync_metrics = self.sync.push(self.version)
                self.step += 1
                self._count_engine_recoveries()
                row = {**current["metrics"], **{f"learner/{k}": v for k, v in train_metrics.items()},
                       **sync_metrics, "time/train": train_s, "time/step": time.perf_counter() - t_step,
                       **self.perf.metrics(current["batch"], current["metrics"].get("time/generate", 0.0), train_s),
                       "policy_version": self.version, "rollout/staleness": staleness,
                       **{f"count/{k}": v for k, v in self.counters.items()}}
                if cfg.train.eval_every and self.step % cfg.train.eval_every == 0 and self.step < cfg.train.steps:
                    ev = self.evaluate(f"step{self.step}") or {}
                    row.update({f"eval/{k}": ev[k] for k in ("accuracy", "mean_response_length") if k in ev})
                self.metrics.log(self.step, row)
                bar.set_postfix(reward=f"{row.get('reward/mean', 0):.2f}",
                                len=f"{row.get('response_length/mean', 0):.0f}")
                bar.update(1)
                line = (f"rl steps {self.step}/{cfg.train.steps}: reward {row.get('reward/mean', 0):.3f}, response "
                        f"length {row.get('response_length/mean', 0):.1f}, {row['time/step']:.1f} s")
                if plain:
                    print(line, flush=True)
                elif self.note is not None:  # a terminal shows the bar; train.log gets the line
                    self.note(line)
                if cfg.train.checkpoint_every and self.step % cfg.train.checkpoint_every == 0:
                    self.save()
        finally:
            bar.close()
            if executor is not None:
                executor.shutdown(wait=True)
        self.evaluate("after")
        if self._saved_step != self.step:
            self.save()
        return self.evals

    def _staleness(self, batch: RolloutBatch | None) -> int:
        """Versions between the policy about to train and the oldest sample; more than the schedule allows is a
        bug in the loop, not something to train through."""
        versions = batch.versions() if batch else []
        if not versions:
            return 0
        lag = self.version - min(versions)
        allowed = 1 if self.cfg.train.schedule == "async" else 0
        if lag > allowed or min(versions) < 0:
            raise RuntimeError(f"step {self.step}: training policy v{self.version} on samples of versions "
                               f"{sorted(set(versions))}; train.schedule={self.cfg.train.schedule!r} "
                               f"allows {allowed} version(s) of lag")
        return lag

    def _count_engine_recoveries(self) -> None:
        """Fold the pool's restart/retry counts into the run's counters and say so in the log."""
        new = {k: self.pool.stats[k] - self._pool_seen.get(k, 0) for k in ("recovered_engines", "retried_prompts")}
        self._pool_seen = dict(self.pool.stats)
        if any(new.values()):
            for k, v in new.items():
                self.counters[k] += v
            print(f"step {self.step}: recovered {new['recovered_engines']} rollout engine(s) after a failure, "
                  f"retried {new['retried_prompts']} prompt(s)", flush=True)

    def dead_learner_ranks(self, timeout_s: float = 5.0) -> list[int]:
        """Ranks whose actor is gone (a live rank answers, or is busy and times out)."""
        import ray
        from ray.exceptions import GetTimeoutError, RayActorError

        dead = []
        for r, w in enumerate(self.group.workers):
            try:
                ray.get(w.ready.remote(), timeout=timeout_s)
            except RayActorError:
                dead.append(r)
            except GetTimeoutError:
                pass
        return dead

    def close(self) -> None:
        self.metrics.close()
        self.pool.shutdown()
        self.group.close()
        self.layout.release()


def run_training(cfg: RunConfig, config_path: str | None = None, address: str | None = None,
                 resume: bool = False) -> int:
    """Pre-flight checks, then the run directory (with train.log from the first printed line), then Ray."""
    from cluster.run_log import DriverLog

    with DriverLog() as log:
        return _run_training(cfg, config_path, address, resume, log)


def _run_training(cfg: RunConfig, config_path: str | None, address: str | None, resume: bool, log) -> int:
    from cluster.preflight import check_integrations, check_prompts
    from cluster.run_report import write_report
    from cluster.runtime import init_ray, link_prior, ray_running, resolve_model, stop_ray

    t0 = time.time()
    check_integrations(cfg)
    train_problems = load_specs(cfg.data.train)
    eval_problems = load_specs(cfg.data.eval)
    run_dir = find_run_dir(cfg, config_path, resume)
    latest = ckpt.latest(run_dir) if run_dir is not None else None
    if latest is not None and not resume:
        raise ConfigError(f"output.name={cfg.output.name!r}: {run_dir} already holds checkpoints (newest "
                          f"{latest.name}); pass --resume to continue it, or choose another output.name")
    check_output_dir(cfg.output.dir)
    t_prep = time.time()
    model_path = resolve_model(cfg)
    prepare_s = time.time() - t_prep
    train_problems, eval_problems = check_prompts(cfg, model_path, train_problems, eval_problems)
    # Every check passed: only now does the run get a directory (a failed start leaves none behind).
    if run_dir is None:
        run_dir = prepare_run_dir(cfg.output.dir, default_run_name(config_path), fresh=True)
    else:
        run_dir = prepare_run_dir(cfg.output.dir, run_dir.name)
    log.attach(run_dir / "train.log")
    (run_dir / "config.yaml").write_text(to_yaml(cfg))
    link_prior(run_dir, model_path)
    print(f"run directory: {run_dir}", flush=True)
    t_ray, own_ray = time.time(), not ray_running()
    init_ray(cfg, address)
    seconds = {"prepare_model": prepare_s, "ray_start": time.time() - t_ray}  # fixed costs, in report.json
    trainer = Trainer(cfg, run_dir, model_path, train_problems, eval_problems)
    seconds.update(trainer.start_seconds)
    trainer.note = log.note
    try:
        if latest is not None:
            print(f"resuming from {latest}", flush=True)
            trainer.restore(latest)
        else:  # nothing to resume from: whatever an interrupted earlier attempt logged is redone
            trainer.drop_unsaved_logs()
        t_rl = time.time()
        try:
            evals = trainer.run()
        except NoLearningSignal as e:
            raise TrainingAborted(f"{e} Run directory: {run_dir}") from None
        except Exception as e:
            raise TrainingAborted(abort_message(trainer, e, config_path)) from e
        rl_s = time.time() - t_rl
    finally:
        t_close = time.time()
        trainer.close()
        seconds["actors_shutdown"] = time.time() - t_close
    if own_ray:  # started here: stop it now (timed) rather than in the interpreter's exit hooks
        seconds["ray_shutdown"] = stop_ray()
    seconds.update(evaluations=sum(e.get("seconds", 0.0) for e in evals.values() if isinstance(e, dict)),
                   rl_and_eval=rl_s, wall=time.time() - t0)
    write_report(run_dir, cfg, evals, seconds, perf=trainer.perf.peak_metrics())
    return 0
