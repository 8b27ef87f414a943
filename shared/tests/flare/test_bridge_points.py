"""What the bridge makes of NVFlare analytics records (the tracking writers' DXOs)."""
from __future__ import annotations

import pytest

pytest.importorskip("nvflare")

from arcflare.flare.bridge import metric_points
from nvflare.apis.analytix import AnalyticsData, AnalyticsDataType, LogWriterName


def _through_the_wire(data: AnalyticsData) -> AnalyticsData:
    """As the server receives it: DXO out of the writer, AnalyticsData for MLflow naming."""
    return AnalyticsData.from_dxo(data.to_dxo(), receiver=LogWriterName.MLFLOW)


def test_a_summary_writer_scalar_becomes_one_point_at_its_step():
    data = _through_the_wire(AnalyticsData("loss", 0.25, AnalyticsDataType.SCALAR,
                                           LogWriterName.TORCH_TB, global_step=3))

    points, refused = metric_points(data, timestamp_ms=42)

    assert [(p.key, p.value, p.step, p.timestamp_ms) for p in points] == [("loss", 0.25, 3, 42)]
    assert refused == []


def test_non_finite_values_are_named_and_not_sent_and_non_metrics_are_ignored():
    metrics = _through_the_wire(AnalyticsData(
        "m", {"acc": 0.9, "loss": float("nan"), "lr": float("inf")}, AnalyticsDataType.METRICS,
        LogWriterName.MLFLOW, global_step=1))
    params = _through_the_wire(AnalyticsData("p", {"lr": 0.1}, AnalyticsDataType.PARAMETERS,
                                             LogWriterName.MLFLOW))

    points, refused = metric_points(metrics, timestamp_ms=1)

    assert [(p.key, p.value, p.step) for p in points] == [("acc", 0.9, 1)]
    assert refused == ["loss", "lr"]
    assert metric_points(params, timestamp_ms=1) == ([], [])
