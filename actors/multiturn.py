"""Multi-turn generation with tools on one vLLM engine: model turns and tool observations, token in, token out.

Each sample is a sequence of segments: model tokens (sampled, with the engine's log-probs, loss mask 1) and
observation tokens (written by a tool, log-prob 0, loss mask 0). A model turn stops at a tool's close tag (a
stop string, kept in the output); the call is parsed from that turn's text and run in a thread pool; the
observation's token ids are appended and the sample continues as a new request whose prompt is the exact token
ids so far (prompt + every segment), never the re-tokenised text, so the learner trains on the tokens the engine
produced and prefix caching reuses their KV. The loop keeps stepping the engine while calls run, so one slow
call holds only its own sample; a call that outlives its tool's `timeout_s` is answered "timeout" (the thread
is left to finish on its own).

A sample ends at EOS or a stop that is no tool call ('stop'), at the token budget `sampling.max_tokens` over all
segments ('length'), or when a turn ending in a call is its `max_turns`-th turn ('stop', the call is not run).
Tools are duck-typed (`tools.base.Tool`: name, open_tag, close_tag, timeout_s, parse, run, observation): the
cluster builds them, this module never imports the tools package.
"""

from __future__ import annotations

import concurrent.futures as cf
import time
from dataclasses import dataclass, field

import numpy as np

from record.rollout import Group, Sample, ids_array

SEED_STRIDE = 1_000_003  # turn t of a sample is seeded with its seed + t * SEED_STRIDE: distinct streams


@dataclass
class _Rollout:
    """One sample in flight."""

    prompt_index: int
    prompt_ids: list[int]
    seed: int | None
    response_ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    loss_mask: list[int] = field(default_factory=list)
    turns: int = 0
    texts: list[str] = field(default_factory=list)
    stats: dict = field(default_factory=lambda: {"calls": 0, "errors": 0, "timeouts": 0, "seconds": 0.0})
    finish_reason: str = "stop"

    def add(self, ids: list[int], logprobs: list[float] | None, text: str) -> None:
        self.response_ids += ids
        self.logprobs += logprobs if logprobs is not None else [0.0] * len(ids)
        self.loss_mask += [1 if logprobs is not None else 0] * len(ids)
        self.texts.append(text)


def _find_call(tools, text: str, stop_reason):
    """(tool, argument) of the call that ends a model turn (vLLM's stop_reason is the stop string it matched),
    or None."""
    for tool in tools:
        if stop_reason == tool.close_tag:
            arg = tool.parse(text)
            if arg is not None:
                return tool, arg
    return None


def _timed_run(tool, arg: str) -> tuple[str, str, float]:
    start = time.monotonic()
    result, status = tool.run(arg)
    return result, status, time.monotonic() - start


class MultiTurnGenerator:
    """Runs multi-turn rollouts with `tools` on an in-process `vllm.LLM`."""

    def __init__(self, llm, tools: list, max_turns: int, max_obs_tokens: int, max_workers: int = 8):
        self.llm, self.tools = llm, list(tools)
        self.max_turns, self.max_obs_tokens = max_turns, max_obs_tokens
        self.pool = cf.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="tool")
        self.tokenizer = llm.get_tokenizer()

    def _params(self, sampling, seed: int | None, remaining: int):
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind

        stops = list(dict.fromkeys(list(sampling.stop) + [t.close_tag for t in self.tools]))
        return SamplingParams(
            n=1, temperature=sampling.temperature, top_p=sampling.top_p, top_k=sampling.top_k, max_tokens=remaining,
            min_tokens=min(sampling.min_tokens, remaining), ignore_eos=sampling.ignore_eos, stop=stops,
            include_stop_str_in_output=True, stop_token_ids=list(sampling.stop_token_ids) or None, seed=seed,
            logprobs=0, output_kind=RequestOutputKind.FINAL_ONLY)

    def _submit(self, engine, key: int, r: _Rollout, sampling) -> None:
        remaining = sampling.max_tokens - len(r.response_ids)
        seed = None if r.seed is None else r.seed + r.turns * SEED_STRIDE
        engine.add_request(f"mt-{key}-{r.turns}", {"prompt_token_ids": r.prompt_ids + r.response_ids},
                           self._params(sampling, seed, remaining))

    def _observation_ids(self, tool, result: str, remaining: int) -> list[int]:
        ids = self.tokenizer.encode(tool.observation(result), add_special_tokens=False)
        if len(ids) > self.max_obs_tokens:  # keep the close of the observation so the model sees it ended
            close = self.tokenizer.encode(tool.obs_close, add_special_tokens=False) if tool.obs_close else []
            keep = max(0, self.max_obs_tokens - len(close))
            ids = ids[:keep] + close[:self.max_obs_tokens - keep]
        return ids[:remaining]

    def generate(self, prompt_token_ids: list[list[int]], indices: list[int], sampling, version: int,
                 seeds: list[int | None]) -> list[Group]:
        """n samples per prompt, as RolloutEngine.generate; seeds[i] seeds prompt i's samples (seed + j)."""
        engine = self.llm.llm_engine
        rollouts: dict[int, _Rollout] = {}
        for i, (idx, ids) in enumerate(zip(indices, prompt_token_ids)):
            for j in range(sampling.n):
                key = len(rollouts)
                rollouts[key] = _Rollout(idx, list(ids), None if seeds[i] is None else seeds[i] + j)
                self._submit(engine, key, rollouts[key], sampling)
        pending: dict[cf.Future, tuple[int, object, float]] = {}  # future -> (key, tool, deadline)
        while engine.has_unfinished_requests() or pending:
            if engine.has_unfinished_requests():
                for out in engine.step():
                    if out.finished:
                        self._turn_done(rollouts, int(out.request_id.split("-")[1]), out, sampling, pending)
            elif pending:  # only tools are running: wait for the first to finish or reach its deadline
                cf.wait(list(pending), timeout=max(0.0, min(d for _, _, d in pending.values()) - time.monotonic()),
                        return_when=cf.FIRST_COMPLETED)
            self._collect(engine, rollouts, sampling, pending)
        groups = [Group(ids_array(ids), [], idx, idx) for idx, ids in zip(indices, prompt_token_ids)]
        for key in sorted(rollouts):
            r = rollouts[key]
            groups[key // sampling.n].samples.append(Sample(
                ids_array(r.response_ids), np.asarray(r.logprobs, np.float32), np.asarray(r.loss_mask, bool),
                r.finish_reason, version, "".join(r.texts), tools=dict(r.stats, turns=r.turns)))
        return groups

    def _turn_done(self, rollouts, key: int, out, sampling, pending) -> None:
        r, c = rollouts[key], out.outputs[0]
        ids, text = list(c.token_ids), c.text
        call = _find_call(self.tools, text, c.stop_reason) if c.finish_reason == "stop" else None
        if call is None and isinstance(c.stop_reason, str) and text.endswith(c.stop_reason):
            text = text[:-len(c.stop_reason)]  # a user stop string: the text ends before it, as in single turns
        r.add(ids, [float(step[tok].logprob) for step, tok in zip(c.logprobs, ids)], text)
        r.turns += 1
        if c.finish_reason == "length" or len(r.response_ids) >= sampling.max_tokens:
            r.finish_reason = "length"
        elif call is not None and r.turns < self.max_turns:
            tool, arg = call
            r.stats["calls"] += 1
            pending[self.pool.submit(_timed_run, tool, arg)] = (key, tool, time.monotonic() + tool.timeout_s)
        else:
            r.finish_reason = "stop"

    def _collect(self, engine, rollouts, sampling, pending) -> None:
        """Append the observations of finished (or timed-out) calls and continue their samples."""
        now = time.monotonic()
        for fut in [f for f, (_, _, deadline) in pending.items() if f.done() or now >= deadline]:
            key, tool, deadline = pending.pop(fut)
            r = rollouts[key]
            if fut.done():
                result, status, seconds = fut.result()
            else:
                result, status, seconds = f"timeout: no answer within {tool.timeout_s:g}s", "timeout", tool.timeout_s
            r.stats["seconds"] += seconds
            r.stats["errors"] += status == "error"
            r.stats["timeouts"] += status == "timeout"
            remaining = sampling.max_tokens - len(r.response_ids)
            obs = self._observation_ids(tool, result, remaining)
            r.add(obs, None, self.tokenizer.decode(obs, skip_special_tokens=True))
            if len(r.response_ids) >= sampling.max_tokens:
                r.finish_reason = "length"
            else:
                self._submit(engine, key, r, sampling)

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
