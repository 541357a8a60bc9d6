"""One interval for GPU-hours, wall clock and dollars: a seeded, vectorised Monte Carlo.

Inputs and their distributions (each printed with the plan):

  * law: which law sizes the model (N moves the checkpoint bytes, hence goodput): one of the plan's
    laws, uniformly; with --calibrate, N log-uniform over the calibrated law's bootstrap interval;
  * step time: the MFU the run reaches, triangular(band low, the plan's MFU, band high). This is the
    step-time model's error until `budget validate` gives a residual spread: `step_time_error` is
    the one function to point at it;
  * MTBF per GPU: log-uniform between OPT-175B's and Llama 3's fleets (budget.training.goodput)
    unless --mtbf-hours fixes it;
  * failure process: interruptions Poisson in the elapsed time, each losing a uniform share of a
    checkpoint segment plus the restart (normal approximation of the sum);
  * price: uniform over the catalog's quotes of the chosen tier unless --provider fixes one; a spot
    quote brings its preemption rate.

Billed GPU-hours = elapsed hours x GPUs, elapsed = useful hours / goodput + the failure process's
deviation from its mean. With every input at its point the draws equal the point figure exactly
(same arithmetic), which the tests check. The tornado swings one input from its P10 to its P90 with
the others at their points.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

from budget.errors import BudgetError
from budget.hardware.prices import PriceRow, select
from budget.training import goodput as gp

if TYPE_CHECKING:  # numpy is imported where it is used: the CLI reads the defaults without it
    import numpy as np

DEFAULT_DRAWS = 4000
DEFAULT_SEED = 0
PERCENTILES = (10, 50, 90)


@dataclass(frozen=True)
class Reliability:
    """The plan's failure, checkpoint and price options (None: the documented default)."""

    mtbf_gpu_hours: float | None = None
    checkpoint_gbps: float | None = None
    restart_minutes: float = gp.DEFAULT_RESTART_MINUTES
    price_tier: str | None = None
    provider: str | None = None
    draws: int = DEFAULT_DRAWS
    seed: int = DEFAULT_SEED
    failure_noise: bool = True  # False: the expected failure process (a point)


@dataclass(frozen=True)
class Input:
    """One uncertain input: its point, its draws and how they are drawn."""

    name: str
    point: float
    draws: np.ndarray = field(repr=False, compare=False)
    distribution: str

    def to_dict(self) -> dict[str, Any]:

        lo, hi = percentile(self.draws, (10, 90))
        return {"name": self.name, "point": self.point, "distribution": self.distribution,
                "p10": float(lo), "p90": float(hi)}


@dataclass(frozen=True)
class Model:
    """Everything fixed: the run's FLOPs, peak, GPUs, save bandwidth, restart and interval rule."""

    training_flops: float
    peak_flops: float
    num_gpus: int
    write_gbps: float
    restart_minutes: float
    bytes_per_param: float = gp.CHECKPOINT_BYTES_PER_PARAM


def run_model(m: Model, mfu: Any, params: Any, mtbf: Any, price: Any, preempt: Any,
              k: Any = None, z: Any = None) -> dict[str, np.ndarray]:
    """Elapsed hours, billed GPU-hours and dollars for arrays of inputs (k, z: failure noise;
    None = the expected failure process)."""
    import numpy as np

    mfu, params, mtbf, price, preempt = (np.asarray(x, dtype=float)
                                         for x in (mfu, params, mtbf, price, preempt))
    useful = m.training_flops / (m.peak_flops * mfu) / 3600.0 / m.num_gpus
    save = params * m.bytes_per_param / (m.write_gbps * gp.GB) / 3600.0
    job_mtbf = 1.0 / (m.num_gpus * (1.0 / mtbf + preempt))
    restart = m.restart_minutes / 60.0 + save
    tau = np.sqrt(2.0 * save * job_mtbf)
    good = 1.0 - save / (tau + save) - (tau + save) / (2.0 * job_mtbf) - restart / job_mtbf
    good = np.maximum(good, 0.05)  # a hopeless draw: 20x, not infinity (said in the notes)
    elapsed = useful / good
    if k is not None and z is not None:
        lam = elapsed / job_mtbf
        count = np.asarray(k, dtype=float)
        elapsed = np.maximum(elapsed + (count - lam) * (restart + (tau + save) / 2.0)
                             + (tau + save) * np.sqrt(np.maximum(count, 0.0) / 12.0) * z, useful)
    billed = elapsed * m.num_gpus
    return {"elapsed_hours": elapsed, "gpu_hours": billed, "usd": billed * price,
            "goodput": good}


def step_time_error(mfu: float, band: tuple[float, float], rng: np.random.Generator,
                    n: int, residuals: Sequence[float] = ()) -> Input:
    """The step-time model's error as draws of the MFU reached. A plan timed by its layout's
    step-time model resamples that model's leave-one-out residuals on published runs (`budget
    validate`: r = ln(predicted / measured step), so the MFU reached is the predicted MFU x e^r);
    a plan priced at an assumed MFU draws triangular over the MFU band."""
    import numpy as np

    if residuals:
        r = np.asarray(residuals, dtype=float)
        draws = mfu * np.exp(r[rng.integers(0, len(r), n)])
        return Input("step time (MFU)", mfu, draws,
                     f"predicted {mfu:.0%} x e^r, r resampled from budget validate's {len(r)} "
                     f"leave-one-out residuals ({np.exp(r.min()):.2f}x-{np.exp(r.max()):.2f}x)")
    lo, hi = min(band[0], mfu), max(band[1], mfu)
    draws = np.full(n, mfu) if lo == hi else rng.triangular(lo, mfu, hi, n)
    return Input("step time (MFU)", mfu, draws,
                 f"triangular({lo:.0%}, {mfu:.0%}, {hi:.0%}): the MFU band")


def law_input(point: float, law_params: Sequence[tuple[str, float]],
              calibrated_ci: tuple[float, float] | None, rng: np.random.Generator,
              n: int) -> Input:
    """N: the calibrated law's bootstrap interval (log-uniform) or one of the laws, uniformly."""
    import numpy as np

    if calibrated_ci is not None:
        lo, hi = calibrated_ci
        draws = np.exp(rng.uniform(math.log(lo), math.log(hi), n)) if lo < hi else np.full(n, lo)
        return Input("law (N)", point, draws,
                     f"log-uniform N {lo:.3g}-{hi:.3g}: the calibrated law's bootstrap interval")
    values = np.array([p for _, p in law_params] or [point])
    return Input("law (N)", point, rng.choice(values, n),
                 f"uniform over {len(values)} law(s): N {values.min():.3g}-{values.max():.3g}")


def mtbf_input(given: float | None, rng: np.random.Generator, n: int) -> Input:
    import numpy as np

    point = gp.FAILURE_SOURCES[gp.DEFAULT_FAILURE_SOURCE].mtbf_gpu_hours if given is None else given
    if given is not None:
        return Input("MTBF per GPU", given, np.full(n, given), f"{given:,.0f} GPU-h (--mtbf-hours)")
    fleets = [s for s in gp.FAILURE_SOURCES.values() if s.all_causes]
    lo, hi = min(s.mtbf_gpu_hours for s in fleets), max(s.mtbf_gpu_hours for s in fleets)
    return Input("MTBF per GPU", point, np.exp(rng.uniform(math.log(lo), math.log(hi), n)),
                 f"log-uniform {lo:,.0f}-{hi:,.0f} GPU-h (OPT-175B to Llama 3 fleets)")


def choose_price(rows: Sequence[PriceRow], device: str, opts: Reliability) -> PriceRow | None:
    """The point price: --price-tier/--provider's cheapest match, else the device's default row."""
    if opts.price_tier is None and opts.provider is None:
        return next((r for r in rows if r.default), None)
    return select(list(rows), device, opts.price_tier, opts.provider)


@dataclass(frozen=True)
class Interval:
    """P10/P50/P90 of GPU-hours, wall clock (days) and dollars, with the inputs and the tornado."""

    draws: int
    seed: int
    percentiles: dict[str, dict[str, float] | None]  # gpu_hours, wall_days, usd -> p10/p50/p90
    point: dict[str, float | None]
    inputs: tuple[Input, ...]
    tornado: tuple[dict[str, Any], ...]  # input, usd (or GPU-hours) at its P10 and P90, swing
    tornado_unit: str
    goodput: gp.Goodput  # the point run
    price: PriceRow | None
    notes: tuple[str, ...] = ()

    def goodput_source(self) -> str:
        return goodput_source(self.goodput)

    def to_dict(self) -> dict[str, Any]:
        return {"draws": self.draws, "seed": self.seed, "percentiles": self.percentiles,
                "point": self.point, "inputs": [i.to_dict() for i in self.inputs],
                "tornado": list(self.tornado), "tornado_unit": self.tornado_unit,
                "goodput": self.goodput.to_dict(),
                "price": None if self.price is None else self.price.to_dict(),
                "notes": list(self.notes)}


def percentile(a: np.ndarray, qs: Sequence[float]) -> list[float]:
    """numpy.percentile's default ('linear', Hyndman & Fan type 7) for a 1-D array, with numpy's
    own lerp, so the figures equal np.percentile's; sorting here skips the NaN check that makes
    np.percentile import numpy.ma (16 ms of every plan)."""
    import numpy as np

    x = np.sort(np.asarray(a, dtype=float).ravel())
    out = []
    for q in qs:
        virtual = (len(x) - 1) * (q / 100.0)
        lo = int(np.floor(virtual))
        hi = min(lo + 1, len(x) - 1)
        t = virtual - lo
        below, above = x[lo], x[hi]
        diff = above - below
        out.append(float(above - diff * (1 - t) if t >= 0.5 else below + diff * t))
    return out


def _pcts(a: np.ndarray) -> dict[str, float]:
    values = percentile(a, PERCENTILES)
    return {f"p{p}": float(v) for p, v in zip(PERCENTILES, values)}


def interval(*, training_flops: float, peak_flops: float, num_gpus: int, mfu: float,
             mfu_band: tuple[float, float], params: float,
             law_params: Sequence[tuple[str, float]] = (),
             calibrated_ci: tuple[float, float] | None = None,
             price_rows: Sequence[PriceRow] = (), device: str = "",
             price_override: float | None = None,
             opts: Reliability = Reliability(),
             step_residuals: Sequence[float] = ()) -> Interval:
    """The Monte Carlo over the stated inputs (module docstring); reproducible for a seed."""
    import numpy as np

    if isinstance(opts.draws, bool) or not isinstance(opts.draws, int) or opts.draws < 1:
        raise BudgetError(f"draws {opts.draws!r} must be a whole number >= 1")
    n, rng = opts.draws, np.random.default_rng(opts.seed)
    row = choose_price(price_rows, device, opts) if price_override is None else None
    point_goodput = run_goodput(params, num_gpus, training_flops / (peak_flops * mfu) / 3600.0 / num_gpus,
                                row, opts)
    model = Model(training_flops, peak_flops, num_gpus, point_goodput.write_gbps,
                  opts.restart_minutes)
    law = law_input(params, law_params, calibrated_ci, rng, n)
    step = step_time_error(mfu, mfu_band, rng, n, step_residuals)
    mtbf = mtbf_input(opts.mtbf_gpu_hours, rng, n)
    notes: list[str] = []
    if price_override is not None:
        price = Input("price", price_override, np.full(n, price_override),
                      f"${price_override:.2f}/GPU-h (--price-per-hour)")
        preempt = np.zeros(n)
    elif row is None:
        price, preempt = Input("price", math.nan, np.full(n, math.nan), "no price"), np.zeros(n)
    else:
        quotes = [r for r in price_rows if r.tier == row.tier] if opts.provider is None else [row]
        pick = rng.integers(0, len(quotes), n)
        price = Input("price", row.usd_per_hour, np.array([quotes[i].usd_per_hour for i in pick]),
                      f"uniform over {len(quotes)} {row.tier} quote(s) "
                      f"${min(q.usd_per_hour for q in quotes):.2f}-"
                      f"${max(q.usd_per_hour for q in quotes):.2f}")
        preempt = np.array([quotes[i].preemptions_per_gpu_hour for i in pick])
    point_pre = 0.0 if row is None else row.preemptions_per_gpu_hour
    base = run_model(model, step.draws, law.draws, mtbf.draws, price.draws, preempt)
    lam = base["elapsed_hours"] / (1.0 / (num_gpus * (1.0 / mtbf.draws + preempt)))
    if opts.failure_noise:
        out = run_model(model, step.draws, law.draws, mtbf.draws, price.draws, preempt,
                        rng.poisson(lam), rng.standard_normal(n))
        failure = Input("failure process", 0.0, rng.standard_normal(n),
                        "Poisson interruptions, uniform lost work per interruption")
    else:
        out = base
        failure = Input("failure process", 0.0, np.zeros(n), "expected value only")
    pt = run_model(model, mfu, params, mtbf.point, price.point, point_pre)
    if float(np.mean(base["goodput"] <= 0.05)) > 0:
        notes.append(f"{np.mean(base['goodput'] <= 0.05):.1%} of draws hit goodput 5% (floor): "
                     "too many GPUs for the failure rate")
    priced = not math.isnan(price.point)
    inputs = (law, step, mtbf, failure, price) if priced else (law, step, mtbf, failure)
    key = "usd" if priced else "gpu_hours"
    tornado = _tornado(model, inputs, mfu, params, mtbf.point, price.point, point_pre, key)
    return Interval(
        draws=n, seed=opts.seed,
        percentiles={"gpu_hours": _pcts(out["gpu_hours"]),
                     "wall_days": _pcts(out["elapsed_hours"] / 24.0),
                     "usd": _pcts(out["usd"]) if priced else None},
        point={"gpu_hours": float(pt["gpu_hours"]), "wall_days": float(pt["elapsed_hours"]) / 24,
               "usd": float(pt["usd"]) if priced else None, "goodput": float(pt["goodput"])},
        inputs=inputs, tornado=tornado, tornado_unit="USD" if priced else "GPU-hours",
        goodput=point_goodput, price=row, notes=tuple(notes))


def _tornado(m: Model, inputs: Sequence[Input], mfu: float, params: float, mtbf: float,
             price: float, preempt: float, key: str) -> tuple[dict[str, Any], ...]:
    """Each input at its P10 and P90 with the others at their points, widest swing first."""
    import numpy as np

    bars = []
    for inp in inputs:
        ends = []
        for q in (10, 90):
            x = percentile(inp.draws, (q,))[0]
            args = {"mfu": mfu, "params": params, "mtbf": mtbf, "price": price, "preempt": preempt}
            k = z = None
            if inp.name.startswith("step"):
                args["mfu"] = x
            elif inp.name.startswith("law"):
                args["params"] = x
            elif inp.name.startswith("MTBF"):
                args["mtbf"] = x
            elif inp.name == "price":
                args["price"] = x
            else:  # failure process: count and lost work at the normal's quantile
                e = run_model(m, **args)["elapsed_hours"]
                lam = e / (1.0 / (m.num_gpus * (1.0 / mtbf + preempt)))
                k, z = lam + x * np.sqrt(lam), np.array(x)
            ends.append(float(run_model(m, **args, k=k, z=z)[key]))
        bars.append({"input": inp.name, "low": min(ends), "high": max(ends),
                     "swing": max(ends) - min(ends)})
    return tuple(sorted(bars, key=lambda b: -b["swing"]))


def run_goodput(params: float, num_gpus: int, useful_hours: float, row: PriceRow | None,
                opts: Reliability) -> gp.Goodput:
    """The point run's goodput: the failure and checkpoint model at the options, with the chosen
    price row's preemptions (budget.training.goodput.goodput). The planner's layout and the
    interval both read this one figure."""
    return gp.goodput(params=params, num_gpus=num_gpus, useful_hours=useful_hours,
                      mtbf_gpu_hours=opts.mtbf_gpu_hours, write_gbps=opts.checkpoint_gbps,
                      restart_minutes=opts.restart_minutes,
                      preemptions_per_gpu_hour=0.0 if row is None else row.preemptions_per_gpu_hour)


def goodput_source(g: gp.Goodput) -> str:
    """How the goodput was modelled, in one line (the layout section's goodput source)."""
    return (f"modelled: one interruption per {g.job_mtbf_hours:,.3g} h on {g.num_gpus:,} GPUs "
            f"({g.mtbf_gpu_hours:,.0f} GPU-h each{', with spot preemptions' if g.preemptions_per_gpu_hour else ''}); "
            f"checkpoint {g.checkpoint_bytes / 1e9:,.0f} GB in {g.save_seconds:,.3g} s every "
            f"{g.interval_hours * 60:,.3g} min; restart {g.restart_minutes:g} min + reload")


def tier_row(rows: Sequence[PriceRow], device: str, opts: Reliability,
             price_per_hour: float | None) -> PriceRow | None:
    """The row --price-tier/--provider choose (None: --price-per-hour or the default price)."""
    if opts.price_tier is None and opts.provider is None:
        return None
    if price_per_hour is not None:
        raise BudgetError("--price-per-hour sets the price; drop --price-tier/--provider, or drop "
                          "--price-per-hour to use the catalog's row")
    return select(list(rows), device, opts.price_tier, opts.provider)


def plan_interval(cost: Any, allocations: Sequence[Any], params: float,
                  price_rows: Sequence[PriceRow], opts: Reliability,
                  price_per_hour: float | None, fixed: bool = False,
                  step_residuals: Sequence[float] = ()) -> Interval:
    """The interval of a plan's cost (budget.training.time.CostEstimate): its FLOPs, peak, MFU and
    band, GPUs and price; the laws' N (a fixed model's N does not move with the law)."""
    calibrated = next((a for a in allocations if a.law == "calibrated"), None)
    ci = getattr(calibrated, "params_ci", None) if not fixed else None
    return interval(training_flops=cost.compute_flops, peak_flops=cost.peak_flops,
                    num_gpus=cost.num_gpus, mfu=cost.mfu, mfu_band=cost.mfu_band, params=params,
                    law_params=() if fixed else [(a.law, a.params) for a in allocations],
                    calibrated_ci=None if ci is None else (float(ci[0]), float(ci[1])),
                    price_rows=price_rows, device=cost.gpu, price_override=price_per_hour,
                    opts=opts, step_residuals=step_residuals)
