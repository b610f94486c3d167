"""The stream application: bronze landing and the speed layer, one Spark application.

``adclick stream`` runs every query of it; each query has its own checkpoint directory.
"""
