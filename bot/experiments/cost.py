"""VM prices, experiment cost and the per-run budget.

Prices come from SkyPilot's local catalog (``~/.sky/catalogs/<schema>/<cloud>/vms.csv``) when that file
is present; the catalog is never downloaded from here. Otherwise configured prices are used
(``{"aws/c7i.xlarge": 0.1785}`` or ``{"c7i.xlarge": 0.1785}``), else the price is unknown (None + note).
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

SECONDS_PER_HOUR = 3600.0


class BudgetExceeded(RuntimeError):
    """A charge or launch would take spending over the budget."""


@dataclass(frozen=True)
class PriceQuote:
    usd_per_hour: float | None
    source: str  # "catalog" | "configured" | "unknown"
    note: str = ""


def catalog_file(cloud: str) -> str | None:
    """Path of SkyPilot's local catalog CSV for ``cloud`` if it exists (no download)."""
    try:
        from sky.catalog import common  # local import: importing sky is slow
    except ImportError:
        return None
    path = common.get_catalog_path(f"{cloud.lower()}/vms.csv")
    return path if os.path.exists(path) else None


def _catalog_price(cloud: str, instance_type: str, region: str | None, use_spot: bool) -> float:
    import sky.catalog

    return float(sky.catalog.get_hourly_cost(instance_type, use_spot, region, None, clouds=cloud.lower()))


def quote_price(
    cloud: str,
    instance_type: str,
    region: str | None = None,
    use_spot: bool = False,
    configured: Mapping[str, float] | None = None,
) -> PriceQuote:
    """Hourly price with its source; never raises for an unknown instance."""
    note = ""
    if catalog_file(cloud):
        try:
            return PriceQuote(_catalog_price(cloud, instance_type, region, use_spot), "catalog")
        except Exception as exc:  # noqa: BLE001 - SkyPilot raises ValueError/KeyError/... for unknown types
            note = f"not in the SkyPilot catalog: {str(exc).strip().splitlines()[0] if str(exc) else exc!r}; "
    else:
        note = f"no local SkyPilot catalog for {cloud}; "
    configured = configured or {}
    kind = "spot" if use_spot else "ondemand"
    for key in (f"{cloud.lower()}/{instance_type}/{kind}", f"{cloud.lower()}/{instance_type}", instance_type):
        if key in configured:
            return PriceQuote(float(configured[key]), "configured", note + f"configured price {key!r}")
    return PriceQuote(
        None, "unknown", note + f"no configured price for {cloud}/{instance_type}: cost unknown"
    )


def instance_price(
    cloud: str,
    instance_type: str,
    region: str | None = None,
    use_spot: bool = False,
    configured: Mapping[str, float] | None = None,
) -> float | None:
    """$/hour of one VM, or None when neither the catalog nor the configuration knows it."""
    return quote_price(cloud, instance_type, region, use_spot, configured).usd_per_hour


def experiment_cost(vm_seconds: float, price_per_hour: float | None) -> float | None:
    """Cost of ``vm_seconds`` of one VM at ``price_per_hour`` (None if the price is unknown)."""
    if price_per_hour is None:
        return None
    if vm_seconds < 0 or price_per_hour < 0:
        raise ValueError("vm_seconds and price_per_hour must be >= 0")
    return vm_seconds / SECONDS_PER_HOUR * price_per_hour


@dataclass
class Estimate:
    per_arch_seconds: dict[str, float]
    per_arch_usd: dict[str, float | None]
    total_usd: float | None
    assumptions: list[str] = field(default_factory=list)


def estimate_run(
    n_candidates: int,
    archs: list[str],
    per_candidate_s: float | Mapping[str, float],
    setup_s: float | Mapping[str, float],
    prices: Mapping[str, float | None],
    *,
    baseline: bool = True,
    billing_minimum_s: float = 60.0,
) -> Estimate:
    """VM time and cost of one benchmark batch: one VM per arch running setup + every variant.

    ``per_candidate_s``: build + validate + bench seconds of one variant (a number or per arch);
    ``setup_s``: provisioning + clone/bundle + toolchain seconds per VM; ``prices``: $/h per arch.
    """
    if n_candidates < 0:
        raise ValueError("n_candidates must be >= 0")
    variants = n_candidates + (1 if baseline else 0)
    secs: dict[str, float] = {}
    usd: dict[str, float | None] = {}
    for arch in archs:
        per = per_candidate_s[arch] if isinstance(per_candidate_s, Mapping) else per_candidate_s
        setup = setup_s[arch] if isinstance(setup_s, Mapping) else setup_s
        secs[arch] = max(billing_minimum_s, setup + variants * per)
        usd[arch] = experiment_cost(secs[arch], prices.get(arch))
    known = [v for v in usd.values() if v is not None]
    total = math.fsum(known) if len(known) == len(usd) else None
    notes = [
        f"{variants} variants ({n_candidates} candidates + baseline) per VM, one VM per arch",
        f"AWS bills per second with a {billing_minimum_s:.0f} s minimum",
    ]
    notes += [f"{a}: price unknown" for a, v in usd.items() if v is None]
    return Estimate(secs, usd, total, notes)


class Budget:
    """Money left for one run; thread-safe."""

    def __init__(self, limit_usd: float, spent: Mapping[str, float] | None = None) -> None:
        if limit_usd < 0:
            raise ValueError("budget limit must be >= 0")
        self.limit_usd = float(limit_usd)
        self.spent: dict[str, float] = dict(spent or {})
        self._lock = threading.Lock()

    @property
    def total_spent(self) -> float:
        return math.fsum(self.spent.values())

    @property
    def remaining(self) -> float:
        return max(0.0, self.limit_usd - self.total_spent)

    @property
    def exhausted(self) -> bool:
        return self.total_spent >= self.limit_usd

    def can_afford(self, estimate_usd: float | None) -> bool:
        """Whether a launch estimated at ``estimate_usd`` fits; an unknown cost fits only an unspent
        budget."""
        if estimate_usd is None:
            return not self.exhausted
        return self.total_spent + estimate_usd <= self.limit_usd + 1e-12

    def reserve(self, kind: str, estimate_usd: float | None) -> None:
        """Raise BudgetExceeded unless ``estimate_usd`` fits (checked before a VM launch)."""
        if not self.can_afford(estimate_usd):
            raise BudgetExceeded(
                f"{kind}: estimated ${estimate_usd or 0:.2f} but only "
                f"${self.remaining:.2f} of ${self.limit_usd:.2f} left"
            )

    def charge(self, kind: str, usd: float | None) -> float:
        """Record spending (actual cost is always recorded, even past the limit); returns remaining."""
        if usd is None:
            return self.remaining
        if usd < 0:
            raise ValueError("cannot charge a negative amount")
        with self._lock:
            self.spent[kind] = self.spent.get(kind, 0.0) + usd
        return self.remaining

    def to_dict(self) -> dict[str, object]:
        return {"limit_usd": self.limit_usd, "spent": dict(self.spent)}

    @classmethod
    def from_dict(cls, d: Mapping[str, object]) -> Budget:
        return cls(float(d["limit_usd"]), d.get("spent") or {})  # type: ignore[arg-type]


# keys of an architecture's config that are the bot's own, not SkyPilot resources
BOT_ARCH_KEYS = ("price_per_hour", "autostop_minutes")


def split_infra(infra: str | None) -> tuple[str | None, str | None]:
    """SkyPilot's ``infra: cloud[/region[/zone]]`` -> (cloud, region); ``k8s/<ctx>`` -> ("kubernetes",
    None)."""
    if not infra:
        return None, None
    parts = [p.strip() for p in str(infra).split("/")]
    cloud = parts[0].lower() if parts[0] not in ("", "*") else None
    if cloud in ("k8s", "kubernetes"):
        return "kubernetes", None
    region = parts[1] if len(parts) > 1 and parts[1] not in ("", "*") else None
    return cloud, region


def quote_resources(cfg: Mapping[str, object]) -> PriceQuote:
    """Hourly price of one architecture's resources (SkyPilot resource syntax plus ``price_per_hour``).

    ``cloud``/``region`` or ``infra``; ``any_of``/``ordered`` alternatives are priced each and the dearest one
    counts (SkyPilot may pick any). A configured ``price_per_hour`` applies when the catalog does not know the
    instance (or when no instance type is given). Unknown -> ``usd_per_hour`` None: the caller must refuse.
    """
    base = {k: v for k, v in cfg.items() if k not in ("any_of", "ordered")}
    alternatives = cfg.get("any_of") or cfg.get("ordered")
    if alternatives:
        if not isinstance(alternatives, list):
            return PriceQuote(None, "unknown", "any_of/ordered must be a list")
        quotes = [
            quote_resources({**base, **(alt if isinstance(alt, Mapping) else {})}) for alt in alternatives
        ]
        unknown = [q for q in quotes if q.usd_per_hour is None]
        if unknown:
            return unknown[0]
        return max(quotes, key=lambda q: float(q.usd_per_hour or 0.0))
    price = cfg.get("price_per_hour")
    configured = float(price) if price is not None else None  # type: ignore[arg-type]
    cloud, region = split_infra(cfg.get("infra"))  # type: ignore[arg-type]
    cloud = cloud or (str(cfg["cloud"]).lower() if cfg.get("cloud") else None)
    region = region or (str(cfg["region"]) if cfg.get("region") else None)
    itype = str(cfg.get("instance_type") or "")
    if not itype:
        if configured is not None:
            return PriceQuote(configured, "configured", "no instance_type: configured price_per_hour")
        return PriceQuote(None, "unknown", "no instance_type and no price_per_hour: cost unknown")
    if not cloud:
        if configured is not None:
            return PriceQuote(configured, "configured", "no cloud/infra: configured price_per_hour")
        return PriceQuote(None, "unknown", f"{itype}: no cloud/infra and no price_per_hour: cost unknown")
    prices = {itype: configured} if configured is not None else None
    return quote_price(cloud, itype, region, bool(cfg.get("use_spot")), configured=prices)


def arch_quote(arch: str, cfg: Mapping[str, object], pricer: object = None) -> PriceQuote:
    """THE price of one architecture's VM, for the estimate, the deadline, the charge and the budget alike.

    ``pricer``: an executor's own pricing function ``(arch, cfg) -> PriceQuote | $/h | None`` (the SkyPilot
    executor's, which its submit also uses); default ``quote_resources`` (``infra``, ``cloud``/``region``,
    ``any_of``/``ordered``, ``price_per_hour``)."""
    got = pricer(arch, cfg) if callable(pricer) else quote_resources(cfg)
    if isinstance(got, PriceQuote):
        return got
    usd = getattr(got, "usd_per_hour", got)
    if usd is None:
        return PriceQuote(None, "unknown", getattr(got, "note", "") or f"{arch}: price unknown")
    return PriceQuote(float(usd), str(getattr(got, "source", "") or "configured"), getattr(got, "note", ""))
