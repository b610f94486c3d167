"""adclick: ad-click counting and aggregation backend (shared package).

Holds what every layer needs: the settings object, the event contract, the lake table catalog
and the SparkSession factory.
"""

__version__ = "0.1.0"
