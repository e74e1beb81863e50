"""ui.charts: numeric ticks that cover the data, one path per series, text escaped."""

from __future__ import annotations

import re

import pytest

from ui.charts import bar_chart, line_panels, nice_ticks, tick_label


@pytest.mark.parametrize("low, high", [(0.0, 1.0), (1e-5, 3e-5), (0.7, 8.4), (-2.5, 3.0), (5.0, 5.0), (0.0, 1746.0)])
def test_ticks_are_round_increasing_and_cover_the_range(low, high):
    ticks = nice_ticks(low, high)
    assert ticks[0] <= low and ticks[-1] >= high and ticks == sorted(set(ticks))
    assert 2 <= len(ticks) <= 12
    assert [float(tick_label(t)) for t in ticks] == pytest.approx(ticks, rel=1e-2, abs=1e-12)


def test_line_panels_draw_one_path_per_series_and_escape_names():
    drawn = line_panels(
        {"loss": {"loss": [(1, 2.0), (2, 1.0), (3, 0.5)]}, "terms": {"<b>a</b>": [(1, 0.1)], "b": [(1, 0.2), (2, 0.3)]}}
    )
    assert drawn.count('class="rr-chart"') == 2 and drawn.count('class="rr-line"') == 3
    assert "<b>a</b>" not in drawn and "&lt;b&gt;a&lt;/b&gt;" in drawn
    assert re.findall(r'data-points="(\d+)"', drawn) == ["3", "1", "2"]
    assert "No curves yet" in line_panels({"loss": {}})


def test_bar_chart_has_a_bar_per_value_and_a_zero_based_axis():
    drawn = bar_chart("nDCG@10", ["run a", "run <b>"], {"first stage": [37.5, 50.0], "final": [40.0, None]})
    assert drawn.count('class="rr-bar"') == 3 and "run <b>" not in drawn
    ticks = [float(t) for t in re.findall(r'class="rr-tick rr-tick-y"[^>]*>([^<]+)<', drawn)]
    assert ticks[0] == 0 and ticks[-1] >= 50
    assert "no runs yet" in bar_chart("nDCG@10", [], {})
