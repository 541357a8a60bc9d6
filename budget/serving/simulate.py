"""A discrete-event simulator of one continuous-batching replica (Orca / vLLM scheduling).

Iteration-level scheduling (Yu et al., "Orca", OSDI 2022): every iteration runs the one new token
of each decoding request plus chunks of waiting prompts, up to `max_batched_tokens` tokens
(chunked prefill: Agrawal et al., "Sarathi-Serve", OSDI 2024; vLLM `--max-num-batched-tokens`),
decode tokens first. Paged KV (Kwon et al., "vLLM/PagedAttention", SOSP 2023): the cache is
`kv_blocks` blocks of `block_size` tokens. A request is admitted first-come first-served when
`max_seqs` allows and the blocks of its whole prompt + output are free; it holds them until it
finishes, so no request is ever preempted (our simplification: vLLM allocates on demand and
preempts instead; reserving up front admits fewer at once, never more). The first token comes out
of the iteration that finishes the prompt; one more per iteration after that. Step times come from
`budget.serving.steps` (the roofline of the model's ops); the clock jumps to the next arrival when
the replica is idle.

`prefilled=True` is a decode-only replica of a disaggregated deployment (DistServe, Zhong et al.
OSDI 2024; Splitwise, Patel et al. ISCA 2024): requests arrive with their prompt's KV cache and
first token, and only decode.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from budget.errors import BudgetError
from budget.serving.steps import StepModel

DEFAULT_BLOCK_SIZE = 16  # vLLM --block-size default
DEFAULT_MAX_SEQS = 256  # vLLM --max-num-seqs default (V0 engine)
DEFAULT_MAX_BATCHED_TOKENS = 2048  # our choice: vLLM's chunked-prefill guidance for latency
FAST_FORWARD = 8  # decode-only stretches longer than this many iterations are summed in numpy


@dataclass(frozen=True)
class Scheduler:
    """The batching limits of one replica."""

    kv_blocks: int
    block_size: int = DEFAULT_BLOCK_SIZE
    max_seqs: int = DEFAULT_MAX_SEQS
    max_batched_tokens: int = DEFAULT_MAX_BATCHED_TOKENS

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Trace:
    """Per-request times of one simulation (seconds) and the replica's time-averaged load."""

    arrival: np.ndarray
    first_token: np.ndarray
    finish: np.ndarray
    input_tokens: np.ndarray
    output_tokens: np.ndarray
    busy_s: float  # time spent running iterations
    kv_used_mean: float  # time-averaged tokens cached / capacity, over the busy time
    kv_reserved_peak: float  # largest share of blocks reserved at once
    iterations: int

    @property
    def ttft(self) -> np.ndarray:
        return self.first_token - self.arrival

    @property
    def tpot(self) -> np.ndarray:
        """(finish - first token) / (output - 1), requests with more than one output token."""
        many = self.output_tokens > 1
        return (self.finish[many] - self.first_token[many]) / (self.output_tokens[many] - 1)


def simulate(step: StepModel, sched: Scheduler, arrivals: np.ndarray, inputs: np.ndarray,
             outputs: np.ndarray, *, prefilled: bool = False) -> Trace:
    """Run `arrivals` (sorted, s) with their prompt and output lengths through one replica."""
    n = len(arrivals)
    arr, inp, out = arrivals.tolist(), inputs.tolist(), outputs.tolist()
    bs, cap_tokens = sched.block_size, sched.kv_blocks * sched.block_size
    need = [-(-(a + b) // bs) for a, b in zip(inp, out, strict=True)]
    if n and max(need) > sched.kv_blocks:
        i = need.index(max(need))
        raise BudgetError(f"a request of {inp[i]} + {out[i]} tokens needs {need[i]} KV blocks; the "
                          f"replica holds {sched.kv_blocks}: shorten it or add memory")
    if sched.max_batched_tokens > step.max_tokens or sched.max_seqs > len(step.head_s) - 1:
        raise BudgetError("the step model is smaller than the scheduler's batch limits")
    lin, head = step.linear_s, step.head_s
    q4, f_s, b_s = 4.0 * step.q_dim_layers, step.attn_s_per_flop, step.attn_s_per_byte
    kvb, newb = step.kv_bytes_token, step.qo_bytes_token + step.kv_bytes_token
    first, finish = [math.nan] * n, [math.nan] * n
    waiting: deque[int] = deque()
    prefilling: deque[list[int]] = deque()  # [request, prompt tokens done]
    decoding: list[tuple[int, int]] = []  # heap of (iteration it finishes on, request)
    nxt = done = it = nd = ctx_sum = 0
    free = sched.kv_blocks
    now = busy = kv_area = 0.0
    peak_reserved = 0
    max_seqs, max_tokens = sched.max_seqs, sched.max_batched_tokens
    while done < n:
        while nxt < n and arr[nxt] <= now:
            waiting.append(nxt)
            nxt += 1
        if not (waiting or prefilling or nd):
            now = arr[nxt]
            continue
        while waiting and nd + len(prefilling) < max_seqs and need[waiting[0]] <= free:
            i = waiting.popleft()
            free -= need[i]
            if not prefilled:
                prefilling.append([i, 0])
            elif out[i] == 1:
                first[i] = finish[i] = arr[i]
                free += need[i]
                done += 1
            else:
                first[i] = arr[i]
                heapq.heappush(decoding, (it + out[i] - 1, i))
                nd += 1
                ctx_sum += inp[i] + 1
        peak_reserved = max(peak_reserved, sched.kv_blocks - free)
        if not (prefilling or nd):
            continue
        if not prefilling and decoding[0][0] - it > FAST_FORWARD:  # decode-only stretch
            horizon = math.inf if waiting or nxt == n else arr[nxt]
            k, dt, area = _decode_run(nd, ctx_sum, decoding[0][0] - it - 1, now, horizon,
                                      lin[nd] + head[nd], q4 * f_s, kvb * b_s, nd * newb * b_s)
            if k:
                now, busy, kv_area = now + dt, busy + dt, kv_area + area
                it, ctx_sum = it + k, ctx_sum + nd * k
                continue
        budget = max_tokens - nd
        pre = 0
        pair = float(ctx_sum)  # sum over new tokens of the context they attend to
        kv_read = float(ctx_sum)
        emit = nd
        completed = 0
        for entry in prefilling:
            if budget <= 0:
                break
            i, s = entry
            c = min(inp[i] - s, budget)
            pair += c * (s + c)
            kv_read += s
            pre += c
            budget -= c
            entry[1] = s + c
            if s + c == inp[i]:
                completed += 1
                emit += 1
        tokens = nd + pre
        attn = max(q4 * pair * f_s, (kv_read * kvb + tokens * newb) * b_s)
        dt = lin[tokens] + head[emit] + attn
        now += dt
        busy += dt
        kv_area += dt * ctx_sum
        it += 1
        ctx_sum += nd
        while decoding and decoding[0][0] == it:
            _, i = heapq.heappop(decoding)
            finish[i] = now
            nd -= 1
            ctx_sum -= inp[i] + out[i]
            free += need[i]
            done += 1
        for _ in range(completed):
            i = prefilling.popleft()[0]
            first[i] = now
            if out[i] == 1:
                finish[i] = now
                free += need[i]
                done += 1
            else:
                heapq.heappush(decoding, (it + out[i] - 1, i))
                nd += 1
                ctx_sum += inp[i] + 1
    return Trace(arrivals, np.asarray(first), np.asarray(finish), np.asarray(inputs),
                 np.asarray(outputs), busy, kv_area / busy / cap_tokens if busy else 0.0,
                 peak_reserved / sched.kv_blocks if sched.kv_blocks else 0.0, it)


def _decode_run(nd: int, ctx: int, most: int, now: float, horizon: float, fixed: float,
                f_per_ctx: float, b_per_ctx: float, b_fixed: float) -> tuple[int, float, float]:
    """Up to `most` decode-only iterations at once, stopping before the one that would end at or
    after `horizon` (the next arrival): their count, total time and time x tokens cached. The
    context grows by `nd` a step, so step j takes fixed + max(c_j f, c_j b + b0), c_j = ctx + nd j:
    the same formula as the event loop's, summed in closed form while one term dominates."""
    c_end = ctx + nd * (most - 1)
    mem_first, mem_last = ctx * b_per_ctx + b_fixed >= ctx * f_per_ctx, \
        c_end * b_per_ctx + b_fixed >= c_end * f_per_ctx
    if mem_first != mem_last:  # the bound changes inside the run: sum it step by step
        ctxs = ctx + nd * np.arange(most, dtype=float)
        dts = fixed + np.maximum(ctxs * f_per_ctx, ctxs * b_per_ctx + b_fixed)
        ends = now + np.cumsum(dts)
        k = most if horizon == math.inf else min(most, int(np.searchsorted(ends, horizon)))
        return (k, float(ends[k - 1] - now), float(np.dot(dts[:k], ctxs[:k]))) if k else \
            (0, 0.0, 0.0)
    per, off = (b_per_ctx, b_fixed) if mem_first else (f_per_ctx, 0.0)
    alpha, beta = fixed + off + ctx * per, nd * per  # step j takes alpha + beta j
    k = most
    if horizon != math.inf:  # largest k with k alpha + beta k (k - 1) / 2 < horizon - now
        room = horizon - now
        half = alpha - beta / 2
        root = room / alpha if beta == 0 else (-half + math.sqrt(half * half + 2 * beta * room)) / beta
        k = min(most, max(0, math.ceil(root) - 1))
        while k < most and (k + 1) * alpha + beta * k * (k + 1) / 2 < room:
            k += 1
        while k > 0 and k * alpha + beta * k * (k - 1) / 2 >= room:
            k -= 1
    if k == 0:
        return 0, 0.0, 0.0
    s1, s2 = k * (k - 1) / 2, (k - 1) * k * (2 * k - 1) / 6
    total = k * alpha + beta * s1
    area = alpha * ctx * k + (alpha * nd + beta * ctx) * s1 + beta * nd * s2
    return k, total, area


def percentiles(x: np.ndarray, points: tuple[float, ...]) -> dict[str, float]:
    """{"p50": ..., ...} in milliseconds (NaN when empty)."""
    if len(x) == 0:
        return {f"p{p:g}": math.nan for p in points}
    vals = np.percentile(x, points)
    return {f"p{p:g}": float(v) * 1e3 for p, v in zip(points, vals, strict=True)}


def mean_concurrency(arrival: np.ndarray, finish: np.ndarray) -> float:
    """Time-averaged requests in the system over [first arrival, last finish] (event sweep)."""
    times = np.concatenate([arrival, finish])
    steps = np.concatenate([np.ones_like(arrival), -np.ones_like(finish)])
    order = np.argsort(times, kind="stable")
    t, level = times[order], np.cumsum(steps[order])
    return float(np.sum(level[:-1] * np.diff(t)) / (t[-1] - t[0]))
