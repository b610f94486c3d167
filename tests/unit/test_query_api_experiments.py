"""Query API, ``/v1/experiments/{id}``, and the A/B statistics behind it (:mod:`query_api.stats`).

The statistics are checked against values computed by hand; the endpoint over
:class:`query_api_fakes.FakeExecutor` against the same numbers.
"""

from __future__ import annotations

from datetime import date

import pytest
from query_api_fakes import FakeExecutor, TestClient

from query_api.stats import normal_interval, two_proportion_z_test, wilson_interval, z_critical


def test_experiment_compares_each_variant_with_the_first(client: TestClient, fake: FakeExecutor) -> None:
    fake.answer(
        "serving.experiments_daily",
        ("variant", "impressions", "clicks", "conversions"),
        [("A", 1000, 200, 20), ("B", 1000, 250, 30)],
    )
    r = client.get("/v1/experiments/exp-1", params={"from": "2026-01-01"})
    assert r.status_code == 200
    body = r.json()
    assert body["control"] == "A"
    a, b = body["variants"]
    assert a["is_control"] and a["z"] is None and a["p_value"] is None
    assert a["ctr"] == 0.2
    assert a["ctr_ci"] == pytest.approx([0.176377, 0.225919], abs=1e-6)
    assert b["z"] == pytest.approx(2.6774, abs=1e-4)
    assert b["p_value"] == pytest.approx(0.007420, abs=1e-6)
    assert b["significant"] is True
    assert b["lift"] == pytest.approx(0.25)
    assert b["diff_ci"] == pytest.approx([0.013464, 0.086536], abs=1e-6)
    assert fake.calls[-1][1] == ["exp-1", date(2026, 1, 1), date(2026, 1, 11)]

    other = client.get("/v1/experiments/exp-1", params={"control": "B"}).json()
    assert other["control"] == "B"
    assert other["variants"][0]["z"] == pytest.approx(-2.6774, abs=1e-4)


def test_unknown_experiment_has_no_variants(client: TestClient) -> None:
    body = client.get("/v1/experiments/none").json()
    assert body["variants"] == [] and body["control"] is None


# --- statistics ----------------------------------------------------------------------------------------


def test_two_proportion_z_test_against_hand_computed_values() -> None:
    # pooled p = 450/2000 = 0.225; se = sqrt(0.225 * 0.775 * (2/1000)) = 0.0186748; z = 0.05 / se
    pooled = two_proportion_z_test(200, 1000, 250, 1000)
    assert pooled is not None
    assert pooled.z == pytest.approx(2.67740, abs=1e-5)
    assert pooled.p_value == pytest.approx(0.0074196, abs=1e-6)
    # unpooled se = sqrt(0.2*0.8/1000 + 0.25*0.75/1000) = 0.0186414: z ~ 2.68, p ~ 0.0073
    wald = two_proportion_z_test(200, 1000, 250, 1000, pooled=False)
    assert wald is not None
    assert wald.z == pytest.approx(2.68221, abs=1e-5)
    assert wald.p_value == pytest.approx(0.0073138, abs=1e-6)
    assert wald.diff_ci == pytest.approx((0.05 - 1.959964 * 0.0186414, 0.05 + 1.959964 * 0.0186414), abs=1e-6)
    same = two_proportion_z_test(0, 50, 0, 80)
    assert same is not None and (same.z, same.p_value, same.lift) == (0.0, 1.0, None)
    with pytest.raises(ValueError, match="exceed"):
        two_proportion_z_test(11, 10, 1, 10)
    assert two_proportion_z_test(0, 0, 1, 10) is None


def test_intervals_against_hand_computed_values() -> None:
    assert z_critical(0.95) == pytest.approx(1.959964, abs=1e-6)
    # Wilson: centre (0.2 + z²/2n)/(1 + z²/n), half z*sqrt(p(1-p)/n + z²/4n²)/(1 + z²/n)
    assert wilson_interval(200, 1000) == pytest.approx((0.176377, 0.225919), abs=1e-6)
    assert normal_interval(200, 1000) == pytest.approx((0.175208, 0.224792), abs=1e-6)
    low, high = wilson_interval(0, 20)  # type: ignore[misc]
    assert low == 0.0 and high == pytest.approx(0.161125, abs=1e-6)  # the Wald interval would be [0, 0]
    assert wilson_interval(0, 0) is None


def test_z_critical_is_the_normal_quantile() -> None:
    # two-sided: P(|Z| <= z) = confidence, i.e. the (1 + confidence) / 2 quantile (tables: 1.644854,
    # 2.575829, 3.290527)
    assert z_critical(0.90) == pytest.approx(1.644854, abs=1e-6)
    assert z_critical(0.99) == pytest.approx(2.575829, abs=1e-6)
    assert z_critical(0.999) == pytest.approx(3.290527, abs=1e-6)
    for confidence in (0.0, 1.0, -0.5, 1.5):
        with pytest.raises(ValueError, match="confidence"):
            z_critical(confidence)


@pytest.mark.parametrize("trials", [1, 7, 20, 333, 1000, 4999])
def test_wilson_interval_ends_are_exact_at_zero_and_all_successes(trials: int) -> None:
    low, high = wilson_interval(0, trials)  # type: ignore[misc]
    assert low == 0.0 and 0.0 < high < 1.0
    low, high = wilson_interval(trials, trials)  # type: ignore[misc]
    assert 0.0 < low < 1.0 and high == 1.0
