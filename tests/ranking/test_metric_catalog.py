"""The metric catalog (shared/metric_catalog.py) is what the sources collect under: one place for
the names criteria may use, on the ranking service and in replication requests alike."""
from services.ranking.sources import SOURCES
from services.ranking.sources import datacapstats, filrep
from shared.metric_catalog import METRICS, every_metric


def test_each_source_declares_its_catalog_entry():
    assert set(SOURCES) == set(METRICS)
    for name, source in SOURCES.items():
        assert source.metrics is METRICS[name]
        assert all(metric.startswith(f"{name}.") for metric in source.metrics)


def test_listing_sources_read_a_field_for_every_declared_metric():
    assert set(filrep.FIELDS) == set(METRICS["filrep"])
    assert set(datacapstats.FIELDS) == set(METRICS["datacapstats"])


def test_every_metric_is_the_union():
    known = every_metric()
    assert len(known) == sum(len(metrics) for metrics in METRICS.values())
    assert known["filrep.reachable"] == "bool" and known["deals.acceptance_rate"] == "number"
