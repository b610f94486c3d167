"""Synthetic ad traffic: IncomingEvent-shaped dicts in the order an ad server would send them.

:func:`generate` yields one JSON-ready dict per send (the body a client POSTs to the ingestion
API); :func:`generate_timed` yields ``(sent_at, event)`` pairs, ``sent_at`` being the simulated
send clock. Both are deterministic for a :class:`GeneratorConfig` (seed + explicit ``start``) and
a hash key: the generator never reads the wall clock.

The traffic model, all parameters in the config:

* users with a home country (regions na/eu/apac/other at 40/30/25/5 %), an IP, a browser from
  :mod:`traffic.user_agents`, an age group and an interest segment;
* ads with Zipf popularity (a few hot ads) inside campaigns inside advertisers, each with a CPC;
* an impression -> click -> conversion funnel (CTR about 1-3 %, higher when the ad targets the
  user's segment; conversions carry ``click_id`` and revenue);
* A/B experiments on some popular ads: users are bucketed into variants "A"/"B" by a hash of the
  user id, and variant B has a real CTR lift;
* client retries (the same body, same ``event_id``, sent again seconds or minutes later), late
  events (sent minutes to hours after their event time) and send-order jitter;
* bot bursts: one IP and one user with a bot user agent clicking a few hot ads at a high rate.

Event times all fall in ``[start, start + duration)``; send times can be later (late events and
retries). A :class:`traffic.truth.Truth` passed in is filled as events are yielded.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import math
import random
import time
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from adclick.privacy import LOCAL_DEV_KEY, pseudonymise
from traffic.truth import Truth
from traffic.user_agents import BOTS, BROWSERS

DEFAULT_CLICKS = 10_000

REGION_SHARES: dict[str, float] = {"na": 0.40, "eu": 0.30, "apac": 0.25, "other": 0.05}

# Countries inside each region, with their relative traffic weight.
COUNTRY_WEIGHTS: dict[str, tuple[tuple[str, float], ...]] = {
    "na": (("US", 80), ("CA", 12), ("MX", 8)),
    "eu": (("DE", 22), ("GB", 22), ("FR", 18), ("ES", 11), ("IT", 11), ("NL", 8), ("PL", 8)),
    "apac": (("IN", 24), ("JP", 22), ("ID", 14), ("AU", 12), ("KR", 12), ("PH", 9), ("SG", 7)),
    "other": (("BR", 42), ("AR", 14), ("ZA", 14), ("CO", 10), ("EG", 10), ("NG", 10)),
}

# First octets of public IPv4 space by region (residential / mobile ranges; bots use cloud ranges).
_IP_FIRST_OCTETS: dict[str, tuple[int, ...]] = {
    "na": (23, 24, 47, 50, 63, 64, 66, 67, 68, 69, 70, 71, 72, 73, 74, 75, 76, 96, 97, 98, 99, 107, 108),
    "eu": (2, 5, 31, 37, 46, 62, 77, 78, 79, 80, 81, 82, 83, 84, 85, 86, 87, 88, 89, 90, 91, 92, 93, 94, 95),
    "apac": (1, 14, 27, 36, 39, 42, 49, 58, 59, 60, 61, 101, 110, 111, 112, 113, 114, 115, 116, 175, 180),
    "other": (41, 102, 105, 154, 177, 179, 181, 186, 187, 189, 190, 191, 196, 197, 200, 201),
}
_CLOUD_FIRST_OCTETS = (3, 18, 34, 35, 52, 54, 138, 139, 157, 159, 164, 165, 167)

AGE_GROUPS: tuple[str, ...] = ("18-24", "25-34", "35-44", "45-54", "55-64", "65+")
_AGE_WEIGHTS = (16, 27, 22, 16, 11, 8)
SEGMENTS: tuple[str, ...] = ("sports", "tech", "fashion", "travel", "finance", "gaming")

_PUBLISHERS = ("news", "sports", "tech", "recipes", "travel", "finance", "games", "weather")
_PLACEMENT_SIZES = ((728, 90), (300, 250), (320, 50), (160, 600), (300, 600), (970, 250))
_NUM_PLACEMENTS = 24
# Where the user came from to the publisher page; None = typed in / app (no referrer sent).
_REFERRERS = (
    "https://www.google.com/",
    "https://www.google.com/",
    "https://www.bing.com/",
    "https://duckduckgo.com/",
    "https://www.facebook.com/",
    "https://t.co/",
    "https://www.reddit.com/",
    None,
    None,
    None,
)

_DIURNAL_AMPLITUDE = 0.5  # peak hour = 3x the quietest hour
_DIURNAL_PEAK_HOUR = 20.0  # UTC: evening in Europe, afternoon in North America
_MS_PER_HOUR = 3_600_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_DUP = 1
_LATE = 2
_BOT = 4


@dataclass(frozen=True)
class GeneratorConfig:
    """Everything that shapes a generated run. ``start`` must be explicit (timezone-aware).

    Volume: ``clicks`` (a target for distinct clicks, bot clicks included; the realised count is
    close to it, the exact one is in the truth) or ``impressions_per_second`` (mean impression rate,
    shaped by a diurnal curve when ``diurnal``). With neither, ``clicks`` is :data:`DEFAULT_CLICKS`.
    Keep ``duration`` within the API's late-arrival horizon (7 days) if the events are to be sent.
    """

    start: datetime
    seed: int = 42
    duration: timedelta = timedelta(hours=1)
    clicks: int | None = None
    impressions_per_second: float | None = None
    num_ads: int = 200
    num_campaigns: int = 40
    num_advertisers: int = 12
    num_users: int = 5_000
    zipf_exponent: float = 1.1
    ctr_range: tuple[float, float] = (0.008, 0.02)
    segment_affinity: float = 2.0  # CTR multiplier when the ad targets the user's segment
    conversion_rate_range: tuple[float, float] = (0.02, 0.08)  # per campaign, of clicks
    num_experiments: int = 3
    variant_b_lift: float = 1.3  # CTR of variant B relative to A
    duplicate_rate: float = 0.01
    duplicate_immediate_share: float = 0.6  # of retries: within seconds; the rest minutes later
    late_fraction: float = 0.02
    min_lateness: timedelta = timedelta(minutes=2)
    max_lateness: timedelta = timedelta(hours=2)
    max_jitter: timedelta = timedelta(seconds=2)
    bot_bursts: int = 2
    bot_click_share: float = 0.03  # of the click target
    bot_clicks_per_second: float = 2.0
    diurnal: bool = True

    def __post_init__(self) -> None:
        if self.start.tzinfo is None:
            raise ValueError("start must be timezone-aware (UTC)")
        object.__setattr__(self, "start", self.start.astimezone(UTC))
        if self.duration <= timedelta(0):
            raise ValueError("duration must be positive")
        if self.clicks is not None and self.impressions_per_second is not None:
            raise ValueError("give either clicks or impressions_per_second, not both")
        if self.clicks is not None and self.clicks < 0:
            raise ValueError("clicks must be >= 0")
        if self.impressions_per_second is not None and self.impressions_per_second <= 0:
            raise ValueError("impressions_per_second must be positive")
        for name in ("num_ads", "num_campaigns", "num_advertisers", "num_users"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        for name in ("duplicate_rate", "duplicate_immediate_share", "late_fraction", "bot_click_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        if not timedelta(0) < self.min_lateness <= self.max_lateness:
            raise ValueError("need 0 < min_lateness <= max_lateness")
        if self.max_jitter >= self.min_lateness:
            raise ValueError("max_jitter must be below min_lateness (late events must stand out)")
        if self.bot_bursts < 0 or self.bot_clicks_per_second <= 0:
            raise ValueError("bot_bursts must be >= 0 and bot_clicks_per_second positive")

    @property
    def end(self) -> datetime:
        """End of the event-time range (exclusive)."""
        return self.start + self.duration


def to_ms(moment: datetime) -> int:
    """Epoch milliseconds of an aware datetime (exact, no float rounding)."""
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def from_ms(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


class _TsFormatter:
    """RFC 3339 UTC text with milliseconds and ``Z``; caches the per-second prefix."""

    def __init__(self) -> None:
        self._cache: dict[int, str] = {}

    def __call__(self, ms: int) -> str:
        sec, milli = divmod(ms, 1000)
        prefix = self._cache.get(sec)
        if prefix is None:
            if len(self._cache) > 100_000:
                self._cache.clear()
            prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
            self._cache[sec] = prefix
        return f"{prefix}.{milli:03d}Z"


def rfc3339_ms(ms: int) -> str:
    """``YYYY-MM-DDTHH:MM:SS.mmmZ`` of epoch milliseconds."""
    sec, milli = divmod(ms, 1000)
    return f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(sec))}.{milli:03d}Z"


def _weighted(rng: random.Random, pairs: tuple[tuple[str, float], ...]) -> str:
    return rng.choices([p[0] for p in pairs], weights=[p[1] for p in pairs])[0]


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _ip(rng: random.Random, octets: tuple[int, ...]) -> str:
    return f"{rng.choice(octets)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


@dataclass
class _World:
    """Dimensions of a run, as parallel lists (cheap to index in the hot loop)."""

    ad_ids: list[str]
    ad_campaign: list[str]
    ad_cpc: list[int]
    ad_ctr: list[float]
    ad_segment: list[int]
    ad_probability: list[float]
    ad_cum_weight: list[float]
    ad_experiment: list[str | None]
    campaign_conversion_rate: dict[str, float]
    campaign_landing: dict[str, str]
    campaign_order_value: dict[str, int]
    placements: list[tuple[str, str, int, int]]  # id, page base URL, width, height
    user_ids: list[str]
    user_ips: list[str]
    user_countries: list[str]
    user_agents: list[str]
    user_segments: list[int]
    ads_rows: list[dict[str, Any]]
    users_rows: list[dict[str, Any]]
    expected_ctr: float


def _build_world(config: GeneratorConfig, key: bytes) -> _World:
    rng = random.Random(f"adclick-traffic:{config.seed}:dims")
    advertisers = [f"adv-{i + 1:03d}" for i in range(config.num_advertisers)]
    adv_landing = {a: f"https://shop.{a}.example.com" for a in advertisers}
    adv_order_value = {a: rng.randint(10, 150) * 1_000_000 for a in advertisers}

    campaigns = [f"cmp-{i + 1:04d}" for i in range(config.num_campaigns)]
    campaign_adv = {
        c: advertisers[i] if i < len(advertisers) else rng.choice(advertisers)
        for i, c in enumerate(campaigns)
    }
    lo, hi = config.conversion_rate_range
    conversion_rate = {c: rng.uniform(lo, hi) for c in campaigns}

    ad_ids = [f"ad-{i + 1:05d}" for i in range(config.num_ads)]
    ad_campaign = [
        campaigns[i] if i < len(campaigns) else rng.choice(campaigns) for i in range(config.num_ads)
    ]
    ad_cpc = [rng.randint(5, 250) * 10_000 for _ in ad_ids]  # 0.05 .. 2.50 in micros
    ctr_lo, ctr_hi = config.ctr_range
    ad_ctr = [rng.uniform(ctr_lo, ctr_hi) for _ in ad_ids]
    ad_segment = [rng.randrange(len(SEGMENTS)) for _ in ad_ids]
    ranks = list(range(1, config.num_ads + 1))
    rng.shuffle(ranks)
    weights = [1.0 / rank**config.zipf_exponent for rank in ranks]
    cum = list(itertools.accumulate(weights))
    total_weight = cum[-1]
    ad_cum_weight = [c / total_weight for c in cum]
    # Experiments run on popular ads (ranks 2..n+1) so both variants see traffic.
    by_rank = sorted(range(config.num_ads), key=lambda i: ranks[i])
    ad_experiment: list[str | None] = [None] * config.num_ads
    for n, index in enumerate(by_rank[1 : 1 + config.num_experiments]):
        ad_experiment[index] = f"exp-{n + 1:02d}"

    placements = []
    for _ in range(_NUM_PLACEMENTS):
        publisher = rng.choice(_PUBLISHERS)
        width, height = rng.choice(_PLACEMENT_SIZES)
        slot = f"pl-{publisher}-{width}x{height}-{rng.randrange(1000):03d}"
        placements.append((slot, f"https://{publisher}.example.org/articles/", width, height))

    # Users: exact regional quotas, so the traffic split matches REGION_SHARES closely.
    quotas = {r: round(share * config.num_users) for r, share in REGION_SHARES.items()}
    quotas["na"] += config.num_users - sum(quotas.values())
    regions = [r for r, n in quotas.items() for _ in range(n)]
    rng.shuffle(regions)
    ua_texts = [ua.text for ua in BROWSERS]
    ua_weights = [ua.weight for ua in BROWSERS]
    user_ids, user_ips, user_countries, user_agents, user_segments, users_rows = [], [], [], [], [], []
    for region in regions:
        user_id = _uuid(rng)
        segment = rng.randrange(len(SEGMENTS))
        age_group = rng.choices(AGE_GROUPS, weights=_AGE_WEIGHTS)[0]
        user_ids.append(user_id)
        user_ips.append(_ip(rng, _IP_FIRST_OCTETS[region]))
        user_countries.append(_weighted(rng, COUNTRY_WEIGHTS[region]))
        user_agents.append(rng.choices(ua_texts, weights=ua_weights)[0])
        user_segments.append(segment)
        users_rows.append(
            {
                "user_key": pseudonymise(key, user_id, domain="user"),
                "age_group": age_group,
                "segment": SEGMENTS[segment],
            }
        )

    segment_share = [user_segments.count(s) / len(user_segments) for s in range(len(SEGMENTS))]
    probabilities = [w / total_weight for w in weights]
    expected_ctr = sum(
        p
        * ad_ctr[i]
        * (1 + (config.segment_affinity - 1) * segment_share[ad_segment[i]])
        * ((1 + config.variant_b_lift) / 2 if ad_experiment[i] else 1.0)
        for i, p in enumerate(probabilities)
    )
    ads_rows = [
        {
            "ad_id": ad_ids[i],
            "campaign_id": ad_campaign[i],
            "advertiser_id": campaign_adv[ad_campaign[i]],
            "cpc_micros": ad_cpc[i],
        }
        for i in range(config.num_ads)
    ]
    return _World(
        ad_ids=ad_ids,
        ad_campaign=ad_campaign,
        ad_cpc=ad_cpc,
        ad_ctr=ad_ctr,
        ad_segment=ad_segment,
        ad_probability=probabilities,
        ad_cum_weight=ad_cum_weight,
        ad_experiment=ad_experiment,
        campaign_conversion_rate=conversion_rate,
        campaign_landing={c: adv_landing[campaign_adv[c]] for c in campaigns},
        campaign_order_value={c: adv_order_value[campaign_adv[c]] for c in campaigns},
        placements=placements,
        user_ids=user_ids,
        user_ips=user_ips,
        user_countries=user_countries,
        user_agents=user_agents,
        user_segments=user_segments,
        ads_rows=ads_rows,
        users_rows=users_rows,
        expected_ctr=expected_ctr,
    )


def _diurnal_factor(ms: float) -> float:
    hours = ms / _MS_PER_HOUR
    return 1.0 + _DIURNAL_AMPLITUDE * math.cos(2 * math.pi * (hours - _DIURNAL_PEAK_HOUR) / 24)


def _diurnal_integral_hours(start_ms: int, end_ms: int) -> float:
    """Integral of the diurnal factor over [start, end], in hours."""
    t0, t1 = start_ms / _MS_PER_HOUR, end_ms / _MS_PER_HOUR
    period = 24 / (2 * math.pi)
    return (t1 - t0) + _DIURNAL_AMPLITUDE * period * (
        math.sin((t1 - _DIURNAL_PEAK_HOUR) / period) - math.sin((t0 - _DIURNAL_PEAK_HOUR) / period)
    )


def _volume(config: GeneratorConfig, world: _World) -> tuple[float, int]:
    """(expected impressions, bot clicks) of the run."""
    seconds = config.duration.total_seconds()
    share = config.bot_click_share if config.bot_bursts else 0.0
    if config.impressions_per_second is not None:
        impressions = config.impressions_per_second * seconds
        bot_clicks = round(impressions * world.expected_ctr * share)
        return impressions, bot_clicks
    clicks = DEFAULT_CLICKS if config.clicks is None else config.clicks
    bot_clicks = round(clicks * share)
    return max(clicks - bot_clicks, 0) / world.expected_ctr, bot_clicks


def expected_sends(config: GeneratorConfig, *, key: bytes = LOCAL_DEV_KEY) -> int:
    """About how many events a run sends, retries included (a progress bar's total; the truth
    has the exact counts afterwards)."""
    world = _build_world(config, key)
    impressions, bot_clicks = _volume(config, world)
    rates = world.campaign_conversion_rate.values()
    clicks = impressions * world.expected_ctr
    events = impressions + clicks * (1 + sum(rates) / max(len(rates), 1)) + bot_clicks
    return round(events * (1 + config.duplicate_rate))


def _bot_clicks(
    config: GeneratorConfig, world: _World, rng: random.Random, total: int
) -> tuple[list[tuple[int, dict[str, Any]]], list[dict[str, Any]]]:
    """Burst clicks ``(ts_ms, event)`` and a description of each burst."""
    start_ms, end_ms = to_ms(config.start), to_ms(config.end)
    span_ms = end_ms - start_ms
    hot_ads = sorted(range(config.num_ads), key=lambda i: -world.ad_probability[i])[:10]
    fmt = _TsFormatter()
    clicks: list[tuple[int, dict[str, Any]]] = []
    bursts: list[dict[str, Any]] = []
    per_burst = [
        total // config.bot_bursts + (1 if b < total % config.bot_bursts else 0)
        for b in range(config.bot_bursts)
    ]
    for n in per_burst:
        if n == 0:
            continue
        region = _weighted(rng, tuple(REGION_SHARES.items()))
        ip = _ip(rng, _CLOUD_FIRST_OCTETS)
        user_id = _uuid(rng)
        country = _weighted(rng, COUNTRY_WEIGHTS[region])
        agent = rng.choice(BOTS).text
        targets = rng.sample(hot_ads, k=min(rng.randint(1, 3), len(hot_ads)))
        length_ms = min(int(n / config.bot_clicks_per_second * 1000), span_ms - 1)
        burst_start = start_ms + rng.randrange(max(span_ms - length_ms, 1))
        step = length_ms / n
        slot, page, width, height = rng.choice(world.placements)
        for i in range(n):
            ts_ms = min(burst_start + int(i * step + rng.random() * step), end_ms - 1)
            ad = targets[i % len(targets)]
            event = {
                "event_id": _uuid(rng),
                "event_type": "click",
                "ad_id": world.ad_ids[ad],
                "campaign_id": world.ad_campaign[ad],
                "ts": fmt(ts_ms),
                "user_id": user_id,
                "ip": ip,
                "country": country,
                "user_agent": agent,
                "page_url": page + str(rng.randrange(100_000)),
                "placement_id": slot,
                # Scripted clicks land on the same pixel.
                "x": width // 2,
                "y": height // 2,
                "cost_micros": world.ad_cpc[ad],
            }
            clicks.append((ts_ms, event))
        bursts.append(
            {
                "ip": ip,
                "user_id": user_id,
                "user_agent": agent,
                "country": country,
                "ad_ids": [world.ad_ids[a] for a in targets],
                "start": rfc3339_ms(burst_start),
                "end": rfc3339_ms(burst_start + length_ms),
                "clicks": n,
            }
        )
    return clicks, bursts


def _run(config: GeneratorConfig, truth: Truth | None, key: bytes) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(sent_at_ms, event)`` in send order."""
    world = _build_world(config, key)
    rng = random.Random(f"adclick-traffic:{config.seed}:events")
    start_ms, end_ms = to_ms(config.start), to_ms(config.end)
    expected_impressions, bot_total = _volume(config, world)
    bot_events, bursts = _bot_clicks(config, world, rng, bot_total)
    if truth is not None:
        truth.seed = config.seed
        truth.start = rfc3339_ms(start_ms)
        truth.end = rfc3339_ms(end_ms)
        truth.ads = world.ads_rows
        truth.users = world.users_rows
        truth.bots = bursts

    fmt = _TsFormatter()
    rand = rng.random
    uid = rng.getrandbits
    UUID = uuid.UUID
    heap: list[tuple[int, int, int, dict[str, Any]]] = []
    seq = itertools.count()
    late_fraction = config.late_fraction
    duplicate_rate = config.duplicate_rate
    immediate_share = config.duplicate_immediate_share
    jitter_ms = config.max_jitter // timedelta(milliseconds=1)
    log_min_late = math.log(config.min_lateness.total_seconds() * 1000)
    log_max_late = math.log(config.max_lateness.total_seconds() * 1000)

    def push(ts_ms: int, event: dict[str, Any], flags: int) -> None:
        if rand() < late_fraction:
            sent = ts_ms + int(math.exp(rng.uniform(log_min_late, log_max_late)))
            flags |= _LATE
        else:
            sent = ts_ms + int(rand() * jitter_ms)
        heapq.heappush(heap, (sent, next(seq), flags, event))
        if rand() < duplicate_rate:
            if rand() < immediate_share:
                retry = sent + 50 + int(rand() * 3_000)
            else:
                retry = sent + 60_000 + int(rand() * 19 * 60_000)
            heapq.heappush(heap, (retry, next(seq), flags | _DUP, dict(event)))

    def drain(until_ms: float) -> Iterator[tuple[int, dict[str, Any]]]:
        while heap and heap[0][0] <= until_ms:
            sent, _, flags, event = heapq.heappop(heap)
            if truth is not None:
                truth.record(
                    event, duplicate=bool(flags & _DUP), late=bool(flags & _LATE), bot=bool(flags & _BOT)
                )
            yield sent, event

    for ts_ms, event in bot_events:
        push(ts_ms, event, _BOT)

    ad_ids, ad_campaign, ad_cpc, ad_ctr = world.ad_ids, world.ad_campaign, world.ad_cpc, world.ad_ctr
    ad_segment, ad_cum, ad_experiment = world.ad_segment, world.ad_cum_weight, world.ad_experiment
    user_ids, user_ips, user_countries = world.user_ids, world.user_ips, world.user_countries
    user_agents, user_segments = world.user_agents, world.user_segments
    placements = world.placements
    conversion_rate, landing, order_value = (
        world.campaign_conversion_rate,
        world.campaign_landing,
        world.campaign_order_value,
    )
    n_users, n_placements, n_referrers = len(user_ids), len(placements), len(_REFERRERS)
    affinity, lift = config.segment_affinity, config.variant_b_lift
    log_click_lo, log_click_hi = math.log(500), math.log(60_000)
    log_conv_lo, log_conv_hi = math.log(5_000), math.log(30 * 60_000)
    bisect_right = bisect.bisect_right
    last_ad = len(ad_ids) - 1

    # Impression arrivals: a Poisson process thinned by the diurnal curve.
    if config.diurnal:
        area_hours = _diurnal_integral_hours(start_ms, end_ms)
        peak = 1.0 + _DIURNAL_AMPLITUDE
    else:
        area_hours = (end_ms - start_ms) / _MS_PER_HOUR
        peak = 1.0
    mean_gap_ms = (area_hours * _MS_PER_HOUR) / max(expected_impressions, 1e-9) / peak
    t = float(start_ms)
    while True:
        t += rng.expovariate(1.0 / mean_gap_ms) if expected_impressions > 0 else math.inf
        if t >= end_ms:
            break
        if config.diurnal and rand() * peak > _diurnal_factor(t):
            continue
        ts_ms = int(t)
        yield from drain(ts_ms)

        a = min(bisect_right(ad_cum, rand()), last_ad)
        u = int(rand() * n_users)
        slot, page, width, height = placements[int(rand() * n_placements)]
        referrer = _REFERRERS[int(rand() * n_referrers)]
        ad_id, campaign, user_id = ad_ids[a], ad_campaign[a], user_ids[u]
        impression: dict[str, Any] = {
            "event_id": str(UUID(int=uid(128), version=4)),
            "event_type": "impression",
            "ad_id": ad_id,
            "campaign_id": campaign,
            "ts": fmt(ts_ms),
            "user_id": user_id,
            "ip": user_ips[u],
            "country": user_countries[u],
            "user_agent": user_agents[u],
            "page_url": page + str(int(rand() * 100_000)),
            "placement_id": slot,
        }
        if referrer is not None:
            impression["referrer"] = referrer
        ctr = ad_ctr[a]
        if user_segments[u] == ad_segment[a]:
            ctr *= affinity
        experiment = ad_experiment[a]
        if experiment is not None:
            variant = "B" if zlib.crc32(f"{experiment}:{user_id}".encode()) & 1 else "A"
            impression["experiment_id"] = experiment
            impression["variant"] = variant
            if variant == "B":
                ctr *= lift
        push(ts_ms, impression, 0)

        if rand() >= ctr:
            continue
        click_ms = ts_ms + int(math.exp(rng.uniform(log_click_lo, log_click_hi)))
        if click_ms >= end_ms:
            continue
        click = dict(impression)
        click_id = str(UUID(int=uid(128), version=4))
        click["event_id"] = click_id
        click["event_type"] = "click"
        click["ts"] = fmt(click_ms)
        click["x"] = int(rand() * width)
        click["y"] = int(rand() * height)
        click["cost_micros"] = ad_cpc[a]
        push(click_ms, click, 0)

        if rand() >= conversion_rate[campaign]:
            continue
        conversion_ms = click_ms + int(math.exp(rng.uniform(log_conv_lo, log_conv_hi)))
        if conversion_ms >= end_ms:
            continue
        conversion: dict[str, Any] = {
            "event_id": str(UUID(int=uid(128), version=4)),
            "event_type": "conversion",
            "ad_id": ad_id,
            "campaign_id": campaign,
            "ts": fmt(conversion_ms),
            "user_id": user_id,
            "ip": user_ips[u],
            "country": user_countries[u],
            "user_agent": user_agents[u],
            "referrer": click["page_url"],
            "page_url": landing[campaign] + "/checkout/complete",
            "click_id": click_id,
            "revenue_micros": max(
                10_000, round(order_value[campaign] * rng.lognormvariate(0, 0.5) / 10_000) * 10_000
            ),
        }
        if experiment is not None:
            conversion["experiment_id"] = experiment
            conversion["variant"] = impression["variant"]
        push(conversion_ms, conversion, 0)

    yield from drain(math.inf)


def generate(
    config: GeneratorConfig, truth: Truth | None = None, *, key: bytes = LOCAL_DEV_KEY
) -> Iterator[dict[str, Any]]:
    """IncomingEvent-shaped dicts in send order; ``truth`` (if given) is filled as they are yielded.

    ``key`` is the HMAC key of the ``user_key`` in ``truth.users`` (it must be the ingestion API's
    key for the user dimension to join with the events).
    """
    for _, event in _run(config, truth, key):
        yield event


def generate_timed(
    config: GeneratorConfig, truth: Truth | None = None, *, key: bytes = LOCAL_DEV_KEY
) -> Iterator[tuple[datetime, dict[str, Any]]]:
    """Like :func:`generate`, with each event's simulated send time (the clock a server would see)."""
    for sent_ms, event in _run(config, truth, key):
        yield from_ms(sent_ms), event
