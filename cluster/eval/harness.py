"""`rlvr eval`: how does accuracy scale with samples and with tokens, per model or checkpoint.

    rlvr eval configs/eval_local.yaml model.path=runs/local-20261129-103000/checkpoints/step-000040
    rlvr eval my_eval.yaml --address auto          # on an existing Ray cluster

For every model: start a vLLM RolloutPool, then for every dataset generate n samples per problem once, at the
largest budget, and cut them at every smaller budget B (what max_tokens=B would have produced: the first B
tokens; `budget_sweep: separate` generates each budget on its own instead), and verify them with rewards/
(through cluster/scoring.py). With budget forcing on, every sample cut at its budget gets a second, greedy
generation from `prompt + first B tokens + forcing string` (s1, cluster/eval/budget_forcing.py) and is scored on
`thinking + forcing + answer`. Metrics of the largest budget (= sampling.max_tokens) give pass@k, maj@k and
mean@k; every budget gives one point of accuracy vs tokens.

Writes to output.dir/output.name: config.yaml, results.json, samples.jsonl (one row per sample: model,
dataset, budget, mode, prompt, completion, extracted answer, verdict, tokens) and PNG plots.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from actors.config import SamplingConfig
from cluster.config import to_yaml
from cluster.config_error import ConfigError
from cluster.eval.budget_forcing import cut_at_budget, forced_completion, forced_prompt_ids, needs_forcing
from cluster.eval.config import RESERVED_LABELS, EvalRunConfig
from cluster.eval.heldout import results_and_rows
from cluster.eval.summary import budget_block, for_voting, metrics_block, print_table, write_plots
from cluster.run_dir import prepare_run_dir
from cluster.scoring import Prompts, encode_problems, generate_and_score, score_groups
from record.rollout import Group, Sample, ids_array

# ---- data and models -------------------------------------------------------------------------------------


def dataset_label(spec) -> str:
    if spec.name == "jsonl":
        return Path(spec.path).stem
    if spec.name == "hf":
        return f"{spec.path}/{spec.split}"
    return spec.name if spec.split == "test" else f"{spec.name}/{spec.split}"


def load_datasets(cfg: EvalRunConfig) -> dict[str, list]:
    """label -> problems, read before any actor starts so that bad data fails fast."""
    from cluster.data.loaders import load_problems
    from cluster.data.problem import DatasetError

    out: dict[str, list] = {}
    for i, spec in enumerate(cfg.datasets):
        label = dataset_label(spec)
        if label in out or label in RESERVED_LABELS:
            label = f"{label}#{i}"
        try:
            loaded = load_problems(spec)
        except DatasetError as e:
            raise ConfigError(f"datasets[{i}]: {e}") from None
        if loaded.skipped:
            print(f"dataset {label}: skipped {len(loaded.skipped)} bad records (first: {loaded.skipped[0]})")
        out[label] = loaded.problems
    return out


def resolve_path(path: str) -> str:
    """An HF directory, the hf/ export of an rlvr checkpoint directory, or a hub id (cluster.runtime rules)."""
    from cluster.runtime import resolve_model_path

    return resolve_model_path(path)


# ---- generation ------------------------------------------------------------------------------------------


def force_answers(pool, tokenizer, groups: list[Group], budget: int, forcing: str,
                  answer_tokens: int) -> tuple[list[list[Sample]], list[list[bool]]]:
    """Budget forcing: samples cut at `budget` get a greedy forced answer; those that stopped are kept.

    Returns the samples to score (forced ones carry thinking + forcing + answer as text, and every token id
    they consist of; the forcing tokens, which the model did not write, have loss_mask False) and, per sample,
    whether it was forced.
    """
    forcing_ids = ids_array(tokenizer(forcing, add_special_tokens=False)["input_ids"])
    todo = [(i, j) for i, g in enumerate(groups) for j, s in enumerate(g)
            if needs_forcing(s.finish_reason, len(s.response_ids), budget)]
    prompts = [forced_prompt_ids(groups[i].prompt_ids.tolist(), groups[i][j].response_ids.tolist(), budget,
                                 forcing_ids.tolist()) for i, j in todo]
    greedy = SamplingConfig(n=1, temperature=0.0, max_tokens=answer_tokens)
    answers = pool.generate(prompts, greedy) if prompts else []
    out = [list(g) for g in groups]
    forced = [[False] * len(g) for g in groups]
    for (i, j), ans in zip(todo, answers):
        s, a = groups[i][j], ans[0]
        # s.text is the decoded thinking: it stopped at max_tokens=budget, so it has exactly `budget` tokens
        out[i][j] = Sample(response_ids=np.concatenate([s.response_ids[:budget], forcing_ids, a.response_ids]),
                           logprobs=np.concatenate([s.logprobs[:budget], np.zeros(len(forcing_ids), np.float32),
                                                    a.logprobs]),
                           loss_mask=np.concatenate([s.loss_mask[:budget], np.zeros(len(forcing_ids), bool),
                                                     a.loss_mask]),
                           finish_reason=a.finish_reason, version=s.version,
                           text=forced_completion(s.text, forcing, a.text))
        forced[i][j] = True
    return out, forced


class ModelEval:
    """One model's pool and prompt encoder; `run()` evaluates every dataset at every budget.

    `ModelEval(cfg, path)` starts and owns a pool; `ModelEval.on_pool(cfg, pool, encoder)` evaluates the policy an
    existing pool serves (e.g. a training run's, at eval points) and leaves that pool running on close().
    """

    def __init__(self, cfg: EvalRunConfig, model_path: str):
        from actors.pool import RolloutPool
        from actors.prompts import PromptEncoder
        from cluster.placement import build_layout

        self.cfg = cfg
        self.encoder = PromptEncoder.from_pretrained(model_path, cfg.rollout.prompt, cfg.rollout.max_model_len)
        self.encoded: dict = {}  # dataset -> cluster.scoring.Prompts; filled by encode()
        # Engines only: the training layout with no learner ranks.
        self.layout = build_layout(SimpleNamespace(rollout=cfg.rollout, ray=cfg.ray,
                                                   learner=SimpleNamespace(num_ranks=0)))
        try:
            from tools.registry import build_tools

            self.pool = RolloutPool(model_path, cfg.rollout, actor_options=self.layout.engine_options,
                                    tools=build_tools(cfg.rollout.tools) or None)
        except BaseException:
            self.layout.release()
            raise

    @classmethod
    def on_pool(cls, cfg: EvalRunConfig, pool, encoder) -> "ModelEval":
        ev = cls.__new__(cls)
        ev.cfg, ev.pool, ev.encoder, ev.layout, ev.encoded = cfg, pool, encoder, None, {}
        return ev

    @staticmethod
    def check_prompts(cfg: EvalRunConfig, model_path: str, datasets: dict[str, list]) -> None:
        """Tokenize every prompt with the model's tokenizer before any engine starts: overlong ones fail here."""
        from actors.prompts import PromptEncoder

        probe = ModelEval.on_pool(cfg, None, PromptEncoder.from_pretrained(model_path, cfg.rollout.prompt,
                                                                           cfg.rollout.max_model_len))
        if cfg.budget_forcing.enabled:  # a forcing string the vocabulary cannot spell forces nonsense
            from actors.prompts import check_round_trip

            try:
                warning = check_round_trip(probe.encoder.tokenizer, cfg.budget_forcing.forcing,
                                           "budget_forcing.forcing")
            except ValueError as e:
                raise ConfigError(str(e)) from None
            if warning:
                print(f"warning: {warning}", flush=True)
        for name, problems in datasets.items():
            probe.encode(name, problems)

    def _reserve(self) -> int:
        """Response room every prompt must leave: the largest budget, plus the forced answer when forcing."""
        bf = self.cfg.budget_forcing
        extra = 0
        if bf.enabled:
            extra = len(self.encoder.tokenizer(bf.forcing, add_special_tokens=False)["input_ids"]) + bf.answer_tokens
        return self.cfg.sampling.max_tokens + extra

    def encode(self, name: str, problems: list) -> Prompts:
        """The problems whose prompts fit, with their token ids; overlong prompts follow rollout.prompt.overlong."""
        if name not in self.encoded:
            reserve = self._reserve()
            try:
                prompts = encode_problems(self.encoder, problems, reserve)
            except ValueError as e:
                raise ConfigError(f"dataset {name}: {e} (responses reserve {reserve} tokens: sampling.max_tokens="
                                  f"{self.cfg.sampling.max_tokens} plus the forcing string and "
                                  "budget_forcing.answer_tokens when forcing)") from None
            if not prompts.problems:
                raise ConfigError(f"dataset {name}: every prompt is longer than rollout.max_model_len="
                                  f"{self.cfg.rollout.max_model_len} minus {reserve} response tokens")
            self.encoded[name] = prompts
        return self.encoded[name]

    def run(self, datasets: dict[str, list], on_step=None):
        """-> ({mode: {budget: {dataset: [ProblemResult]}}}, per-sample rows, dropped prompts per dataset)."""
        cfg, bf = self.cfg, self.cfg.budget_forcing
        modes = ["max_tokens"] + (["forced"] if bf.enabled else [])
        by_mode: dict = {m: {b: {} for b in cfg.budgets} for m in modes}
        rows, dropped = [], {}
        for name, problems in datasets.items():
            prompts = self.encode(name, problems)
            kept, dropped[name], score = prompts.problems, prompts.dropped, (cfg.reward_timeout_s, cfg.reward_workers)
            full = self.pool.generate(prompts.token_ids, cfg.sampling) if cfg.budget_sweep == "prefix" else None
            for budget in cfg.budgets:
                scored = (score_groups(kept, self._cut(full, budget), *score) if full is not None else
                          generate_and_score(self.pool, prompts, cfg.sampling.model_copy(update={"max_tokens": budget}),
                                             *score))
                variants = [("max_tokens", scored, None)]
                if bf.enabled:
                    forced_groups, forced = force_answers(self.pool, self.encoder.tokenizer, scored.groups, budget,
                                                          bf.forcing, bf.answer_tokens)
                    variants.append(("forced", score_groups(kept, forced_groups, *score),
                                     [f for fs in forced for f in fs]))
                for mode, mode_scored, flags in variants:
                    results, mode_rows = results_and_rows(mode_scored)
                    by_mode[mode][budget][name] = for_voting(kept, results)
                    for k, row in enumerate(mode_rows):
                        row.update(dataset=name, budget=budget, mode=mode, verdict=row["reward"] > 0.5,
                                   forced=bool(flags[k]) if flags is not None else False)
                    rows.extend(mode_rows)
                if on_step is not None:
                    on_step()
        return by_mode, rows, dropped

    def _cut(self, groups: list[Group], budget: int) -> list[Group]:
        """Every sample as max_tokens=budget would have ended it (cluster.eval.budget_forcing.cut_at_budget)."""
        decode = lambda ids: self.encoder.tokenizer.decode(ids, skip_special_tokens=True)  # as the engine decodes
        return [Group(g.prompt_ids, [cut_at_budget(s, budget, decode) for s in g], g.group_id, g.problem)
                for g in groups]

    def close(self) -> None:
        if self.layout is not None:  # only a pool this object started
            self.pool.shutdown()
            self.layout.release()


# ---- the command ------------------------------------------------------------------------------------------


def build_model_report(cfg: EvalRunConfig, by_mode: dict, dropped: dict, given: str, resolved: str,
                       seconds: float, eval_seconds: float) -> dict:
    main = by_mode["max_tokens"][cfg.sampling.max_tokens]
    return {"path": given, "resolved_path": resolved, "seconds": seconds, "eval_seconds": eval_seconds,
            "datasets": {name: {"problems": len(rs), "dropped_prompts": dropped[name]} for name, rs in main.items()},
            "metrics": metrics_block(main, cfg.k_values, cfg.bootstrap),
            "token_budget": {mode: budget_block(by_budget, cfg.bootstrap) for mode, by_budget in by_mode.items()}}


def run_eval(cfg: EvalRunConfig, address: str | None = None, progress: bool = True) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from cluster.runtime import init_ray

    t0 = time.time()
    datasets = load_datasets(cfg)
    models = [(m.label, m.path, resolve_path(m.path)) for m in cfg.all_models]
    for _, _, resolved in models:
        ModelEval.check_prompts(cfg, resolved, datasets)
    run_dir = prepare_run_dir(cfg.output.dir, cfg.output.name or time.strftime("eval-%Y%m%d-%H%M%S"),
                              min_free_bytes=64 * 1024**2, fresh=cfg.output.name is None)
    (run_dir / "config.yaml").write_text(to_yaml(cfg))
    samples_path = run_dir / "samples.jsonl"
    samples_path.write_text("")
    print(f"run directory: {run_dir}", flush=True)
    ray = init_ray(cfg, address)
    report = {"n": cfg.sampling.n, "ks": cfg.k_values, "budgets": cfg.budgets,
              "budget_forcing": cfg.budget_forcing.model_dump(), "sampling": cfg.sampling.model_dump(),
              "models": {}}
    steps = len(models) * len(datasets) * len(cfg.budgets)
    try:
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      disable=not progress) as bar:
            task = bar.add_task("eval", total=steps)
            for label, given, resolved in models:
                bar.update(task, description=f"eval {label}: starting engines")
                t_model = time.time()
                ev = ModelEval(cfg, resolved)
                bar.update(task, description=f"eval {label}")
                t_eval = time.time()  # generation and scoring, without the engines' start
                try:
                    by_mode, rows, dropped = ev.run(datasets, on_step=lambda: bar.advance(task))
                    eval_s = time.time() - t_eval
                finally:
                    ev.close()
                with open(samples_path, "a") as f:
                    for row in rows:
                        f.write(json.dumps({"model": label, **row}) + "\n")
                report["models"][label] = build_model_report(cfg, by_mode, dropped, given, resolved,
                                                              time.time() - t_model, eval_s)
    finally:
        ray.shutdown()
    report["plots"] = [p.name for p in write_plots(run_dir, report)]
    report["seconds"] = time.time() - t0
    (run_dir / "results.json").write_text(json.dumps(report, indent=1))
    print_table(report)
    print(f"results: {run_dir / 'results.json'}", flush=True)
    return 0
