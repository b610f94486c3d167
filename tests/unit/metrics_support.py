"""Reading a ``/metrics`` answer in the metrics tests: Prometheus text -> sample values by name and labels.

Parsed with prometheus_client's own parser, so a malformed exposition fails the test.
"""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


class Scrape:
    """One scrape: its metric families (by name) and every sample's value."""

    def __init__(self, text: str) -> None:
        self.families = {family.name: family for family in text_string_to_metric_families(text)}
        self.samples = {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in self.families.values()
            for sample in family.samples
        }

    def value(self, name: str, **labels: str) -> float:
        """The sample's value; 0 for a series not exposed yet (a labelled counter before its first use)."""
        return self.samples.get((name, frozenset(labels.items())), 0.0)

    def has(self, name: str, **labels: str) -> bool:
        return (name, frozenset(labels.items())) in self.samples

    def type_of(self, family: str) -> str:
        return self.families[family].type

    def moved(self, before: Scrape, name: str, **labels: str) -> float:
        """How much the sample grew since ``before``."""
        return self.value(name, **labels) - before.value(name, **labels)
